package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What a task leaves on the node when something goes wrong: task tests assert a finished task left none of it, and
 * remove whatever is left under the agent root they used, whatever happened.
 */
final class LeftoverTasks {
    private LeftoverTasks() {}

    /** No mount, runtime state, cgroup, bundle, exit file or conmon of the task {@code uid} is left. */
    static void assertNoneLeft(Path root, Runtimes runtimes, String uid) throws IOException {
        assertThat(MountTable.under(root.resolve("tasks").resolve(uid))).isEmpty();
        for (OciRuntime rt : runtimes.all()) {
            assertThat(rt.state(uid)).as(rt.name() + " state of " + uid).isEmpty();
        }
        try (Stream<Path> hierarchies = Files.list(Path.of("/sys/fs/cgroup"))) {
            assertThat(hierarchies.map(h -> h.resolve("stevedore").resolve(uid)))
                    .noneMatch(Files::exists);
        }
        assertThat(root.resolve("tasks").resolve(uid).resolve("bundle")).doesNotExist();
        try (Stream<Path> nodes = Files.list(Runtimes.DEFAULT_STATE_DIR.resolve("exits"))) {
            assertThat(nodes.map(node -> node.resolve(uid))).as("exit files").noneMatch(Files::exists);
        }
        assertThat(ProcessHandle.allProcesses()
                        .filter(p -> p.info()
                                .command()
                                .map(c -> c.endsWith("/conmon"))
                                .orElse(false))
                        .map(p -> String.join(" ", p.info().arguments().orElse(new String[0])))
                        .filter(args -> args.contains(uid)))
                .as("conmon of " + uid)
                .isEmpty();
    }

    static void removeUnder(Path root, Runtimes runtimes) throws IOException {
        for (OciRuntime rt : runtimes.all()) {
            for (Map.Entry<String, String> c : rt.list().entrySet()) {
                if (c.getValue().startsWith(root.toString())) {
                    try {
                        rt.delete(c.getKey(), true);
                    } catch (RuntimeCommandException e) {
                        // left for the next test run's clean-up; nothing more to do here
                    }
                    TaskResources.removeCgroups(c.getKey());
                }
            }
        }
        for (String m : MountTable.under(root)) {
            PosixFiles.unmount(Path.of(m), true); // as umount -l; the runtime's exec finds no program by PATH
        }
    }
}
