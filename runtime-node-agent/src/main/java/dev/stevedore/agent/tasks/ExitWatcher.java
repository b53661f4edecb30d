package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches conmon's exit directories (inotify through {@link WatchService}) and calls back with the runtime id as
 * soon as an exit file appears; files already there at start (exits while the agent was down) are reported too.
 */
public final class ExitWatcher implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExitWatcher.class);
    private final List<Path> dirs;
    private final Consumer<String> onExit;
    private final WatchService watcher;
    private final Thread thread;

    public ExitWatcher(List<Path> dirs, Consumer<String> onExit) throws IOException {
        this.dirs = List.copyOf(dirs);
        this.onExit = onExit;
        this.watcher = FileSystems.getDefault().newWatchService();
        for (Path dir : dirs) {
            dir.register(watcher, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY);
        }
        this.thread = new Thread(this::loop, "task-exit-watcher");
        this.thread.setDaemon(true);
    }

    /** Starts watching, after reporting the exit files already present. */
    public void start() {
        rescan();
        thread.start();
    }

    private void rescan() {
        for (Path dir : dirs) {
            try (Stream<Path> files = Files.list(dir)) {
                files.map(p -> p.getFileName().toString())
                        .filter(n -> !n.startsWith("."))
                        .forEach(this::fire);
            } catch (IOException e) {
                LOG.warn("listing {}: {}", dir, e.toString());
            }
        }
    }

    private void loop() {
        while (true) {
            WatchKey key;
            try {
                key = watcher.take();
            } catch (InterruptedException | ClosedWatchServiceException e) {
                return;
            }
            for (WatchEvent<?> event : key.pollEvents()) {
                if (event.kind() == StandardWatchEventKinds.OVERFLOW) {
                    rescan();
                } else if (event.context() instanceof Path name
                        && !name.toString().startsWith(".")) {
                    fire(name.toString());
                }
            }
            if (!key.reset()) {
                return;
            }
        }
    }

    private void fire(String id) {
        try {
            onExit.accept(id);
        } catch (java.lang.RuntimeException e) {
            LOG.warn("exit of {}: {}", id, e.toString());
        }
    }

    @Override
    public void close() throws IOException {
        watcher.close();
        thread.interrupt();
    }
}
