// Command kstatus prints the kstatus result (the status Flux, kubectl wait and apply --prune tooling compute) of
// each Kubernetes object it reads: a stream of YAML or JSON documents on stdin, a List's items included. One line
// per object: "<kind>/<namespace>/<name> <status> <reason> <message>", the reason that of the Reconciling or Stalled
// condition kstatus went by ("-" if none). With -argocd-cm, it prints instead what the Argo CD resource health
// checks in that argocd-cm ConfigMap (resource.customizations.health.<group>_<kind>) return, run by gopher-lua as
// Argo CD runs them: "<kind>/<namespace>/<name> <health> - <message>". The tests use it to check
// that Stevedore's statuses read as GitOps tools read them; it is a test tool, not product code.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	sigsyaml "sigs.k8s.io/yaml"
)

func main() {
	argocdCM := flag.String("argocd-cm", "", "an argocd-cm ConfigMap (YAML) whose Lua health checks to run instead of kstatus")
	flag.Parse()
	compute := kstatus
	if *argocdCM != "" {
		checks, err := readHealthChecks(*argocdCM)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
		compute = checks.health
	}
	if err := run(os.Stdin, os.Stdout, compute); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

// A status, a reason and a message for one object.
type computeFunc func(obj *unstructured.Unstructured) (string, string, string, error)

func run(in io.Reader, out io.Writer, compute computeFunc) error {
	reader := yaml.NewYAMLReader(bufio.NewReader(in))
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(document)) == 0 {
			continue
		}
		json, err := yaml.ToJSON(document)
		if err != nil {
			return err
		}
		// The unstructured JSON decoder keeps integers int64, as kstatus's accessors expect (a plain map would
		// hold float64).
		decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(json, nil, nil)
		if err != nil {
			return err
		}
		var objects []unstructured.Unstructured
		switch o := decoded.(type) {
		case *unstructured.UnstructuredList:
			objects = o.Items
		case *unstructured.Unstructured:
			objects = []unstructured.Unstructured{*o}
		}
		for i := range objects {
			obj := &objects[i]
			result, reason, message, err := compute(obj)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", obj.GetKind(), obj.GetName(), err)
			}
			if reason == "" {
				reason = "-"
			}
			if _, err := fmt.Fprintf(out, "%s/%s/%s %s %s %s\n", obj.GetKind(), obj.GetNamespace(), obj.GetName(), result, reason, message); err != nil {
				return err
			}
		}
	}
}

func kstatus(obj *unstructured.Unstructured) (string, string, string, error) {
	result, err := status.Compute(obj)
	if err != nil {
		return "", "", "", err
	}
	reason := ""
	if len(result.Conditions) > 0 {
		reason = result.Conditions[0].Reason
	}
	return string(result.Status), reason, result.Message, nil
}

// Lua health checks by "<group>_<kind>", as argocd-cm keys them.
type healthChecks map[string]string

func readHealthChecks(path string) (healthChecks, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := sigsyaml.UnmarshalStrict(raw, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	checks := healthChecks{}
	const prefix = "resource.customizations.health."
	for key, script := range cm.Data {
		if len(key) > len(prefix) && key[:len(prefix)] == prefix {
			checks[key[len(prefix):]] = script
		}
	}
	return checks, nil
}

// health runs the object's check as Argo CD does: the object as the global obj, the returned table's status and
// message are the health.
func (checks healthChecks) health(obj *unstructured.Unstructured) (string, string, string, error) {
	gvk := obj.GroupVersionKind()
	script, ok := checks[gvk.Group+"_"+gvk.Kind]
	if !ok {
		return "", "", "", fmt.Errorf("no health check for %s_%s", gvk.Group, gvk.Kind)
	}
	state := lua.NewState()
	defer state.Close()
	state.SetGlobal("obj", toLua(state, obj.Object))
	if err := state.DoString(script); err != nil {
		return "", "", "", err
	}
	returned, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", "", errors.New("the health check returned no table")
	}
	return returned.RawGetString("status").String(), "", lua.LVAsString(returned.RawGetString("message")), nil
}

func toLua(state *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case map[string]interface{}:
		table := state.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	case []interface{}:
		table := state.NewTable()
		for _, item := range v {
			table.Append(toLua(state, item))
		}
		return table
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	default:
		return lua.LNil
	}
}
