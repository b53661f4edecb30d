package dev.stevedore.testing;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The control plane of {@code hack/local-up.sh}: started detached, or reused when it already runs. */
@Command(
        name = "local-control-plane",
        mixinStandardHelpOptions = true,
        description = "Starts etcd, kube-apiserver and kube-controller-manager in the background, or reuses them.")
public final class LocalControlPlane implements Callable<Integer> {
    @Option(names = "--bin", required = true, description = "Directory with the binaries hack/build-tools.sh built.")
    Path binDir;

    @Option(
            names = "--dir",
            required = true,
            description = "State directory: PKI, etcd data, logs, PID files, kubeconfig.")
    Path dir;

    @Option(names = "--etcd-port", defaultValue = "2379", description = "etcd client port (default: ${DEFAULT-VALUE}).")
    int etcdPort;

    @Option(
            names = "--etcd-peer-port",
            defaultValue = "2380",
            description = "etcd peer port (default: ${DEFAULT-VALUE}).")
    int etcdPeerPort;

    @Option(
            names = "--apiserver-port",
            defaultValue = "6443",
            description = "kube-apiserver port (default: ${DEFAULT-VALUE}).")
    int apiServerPort;

    @Override
    public Integer call() {
        try (ControlPlane controlPlane = ControlPlane.startDetached(
                binDir, dir.toAbsolutePath(), new ControlPlane.Ports(etcdPort, etcdPeerPort, apiServerPort))) {
            System.out.println(controlPlane.kubeconfig());
        }
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new LocalControlPlane()).execute(args));
    }
}
