// Command kstatus prints the kstatus result (the status Flux, kubectl wait and apply --prune tooling compute) of
// each Kubernetes object it reads: a stream of YAML or JSON documents on stdin, a List's items included. One line
// per object: "<kind>/<namespace>/<name> <status> <message>". The tests use it to check that Stevedore's statuses
// read as GitOps tools read them; it is a test tool, not product code.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	decoder := yaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	for {
		var obj unstructured.Unstructured
		if err := decoder.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if obj.Object == nil {
			continue
		}
		if obj.IsList() {
			if err := obj.EachListItem(func(item runtime.Object) error { return print(out, item.(*unstructured.Unstructured)) }); err != nil {
				return err
			}
			continue
		}
		if err := print(out, &obj); err != nil {
			return err
		}
	}
}

func print(out io.Writer, obj *unstructured.Unstructured) error {
	result, err := status.Compute(obj)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", obj.GetKind(), obj.GetName(), err)
	}
	_, err = fmt.Fprintf(out, "%s/%s/%s %s %s\n", obj.GetKind(), obj.GetNamespace(), obj.GetName(), result.Status, result.Message)
	return err
}
