package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** What task tests remove whatever happened: runtime state, cgroups and mounts of the agent root they used. */
final class LeftoverTasks {
    private LeftoverTasks() {
    }

    static void removeUnder(Path root, Runtimes runtimes) throws IOException {
        for (ConmonRuntime rt : runtimes.all()) {
            for (Map.Entry<String, String> c : rt.list().entrySet()) {
                if (c.getValue().startsWith(root.toString())) {
                    ConmonRuntime.exec(List.of(rt.binary().toString(), "delete", "--force", c.getKey()));
                    TaskResources.removeCgroups(c.getKey());
                }
            }
        }
        for (String m : Bundles.mountsUnder(root)) {
            ConmonRuntime.exec(List.of("umount", "-l", m));
        }
    }
}
