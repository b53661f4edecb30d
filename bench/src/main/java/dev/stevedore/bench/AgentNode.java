package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.testing.ControlPlane;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real node agent (runtime-node-agent's NodeAgent) as the benchmarks run it: a JVM of its own on this machine, with
 * a state directory of its own, registered as RuntimeNode {@value #NODE}; and what the benchmarks ask of it.
 */
final class AgentNode {
    private static final Logger LOG = LoggerFactory.getLogger(AgentNode.class);
    static final String NODE = "bench-node";
    /** The agent's default, as a node runs it; its heartbeats (a status apply and a walk of the state directory) are part of what the figures include. */
    static final String HEARTBEAT = "10s";

    private AgentNode() {}

    /** Starts the agent and returns once its RuntimeNode is Ready (a watch on it, not polling). */
    static JvmProcess start(
            Path repositoryRoot,
            ControlPlane controlPlane,
            KubernetesClient client,
            List<String> jvmOptions,
            Path agentRoot,
            String scenario) {
        return start(repositoryRoot, controlPlane, client, jvmOptions, agentRoot, scenario, List.of());
    }

    /** As {@link #start(Path, ControlPlane, KubernetesClient, List, Path, String)}, with more of the agent's flags. */
    static JvmProcess start(
            Path repositoryRoot,
            ControlPlane controlPlane,
            KubernetesClient client,
            List<String> jvmOptions,
            Path agentRoot,
            String scenario,
            List<String> agentFlags) {
        List<String> args = new ArrayList<>(List.of("--root", agentRoot.toString()));
        args.addAll(agentFlags);
        JvmProcess agent = launch(
                repositoryRoot,
                controlPlane,
                jvmOptions,
                args,
                repositoryRoot.resolve("bench/target/logs/" + scenario + "-agent.log"));
        awaitReady(agent, client);
        return agent;
    }

    /** Starts the agent of node {@value #NODE} with {@code args} (--root and whatever else) besides, and returns. */
    static JvmProcess launch(
            Path repositoryRoot, ControlPlane controlPlane, List<String> jvmOptions, List<String> args, Path log) {
        List<String> all = new ArrayList<>(List.of("--node-name", NODE, "--heartbeat-interval", HEARTBEAT));
        all.addAll(args);
        return JvmProcess.agent(repositoryRoot, controlPlane.kubeconfig(), jvmOptions, all, log);
    }

    /** Returns once the agent's RuntimeNode is Ready (a watch on it, not polling); stops the agent if it is not. */
    static void awaitReady(JvmProcess agent, KubernetesClient client) {
        long started = System.nanoTime();
        try {
            client.resources(RuntimeNode.class)
                    .withName(NODE)
                    .waitUntilCondition(AgentNode::ready, 3, TimeUnit.MINUTES);
        } catch (RuntimeException e) {
            String tail = agent.logTail(40);
            agent.close();
            throw new IllegalStateException(
                    "the agent's RuntimeNode did not become Ready; the end of its log:\n" + tail, e);
        }
        LOG.info(
                "agent ready: RuntimeNode {} Ready {} ms after start", NODE, (System.nanoTime() - started) / 1_000_000);
    }

    private static boolean ready(RuntimeNode node) {
        return node != null
                && node.getStatus() != null
                && node.getStatus().conditions() != null
                && node.getStatus().conditions().stream()
                        .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /** A Container of {@code image} pinned to the agent's node; the default snapshotter (overlayfs) and command. */
    static Container container(String namespace, String name, String image) {
        Container container = new Container();
        container.setMetadata(
                new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
        container.setSpec(new ContainerSpec(image, null, null, null, NODE, null, null, null, null, null, null));
        return container;
    }

    /**
     * What the agent's state directory holds, read from disk: image records, content blobs, snapshots (of either
     * snapshotter) and Container records. "0 images, 0 blobs, 0 snapshots, 0 containers" before a cold pull.
     */
    static String inventory(Path agentRoot) {
        return count(agentRoot.resolve("images"), false) + " images, "
                + Commands.countFiles(agentRoot.resolve("content/blobs")) + " blobs, "
                + (count(agentRoot.resolve("snapshots/overlayfs"), true)
                        + count(agentRoot.resolve("snapshots/native"), true))
                + " snapshots, "
                + count(agentRoot.resolve("containers"), true) + " containers";
    }

    static boolean empty(String inventory) {
        return inventory.equals("0 images, 0 blobs, 0 snapshots, 0 containers");
    }

    /** Entries of {@code dir}: directories other than tmp when {@code directories}, else regular files other than temp files. */
    private static long count(Path dir, boolean directories) {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.filter(p -> directories
                            ? Files.isDirectory(p)
                                    && !p.getFileName().toString().equals("tmp")
                            : Files.isRegularFile(p)
                                    && !p.getFileName().toString().startsWith("."))
                    .count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
