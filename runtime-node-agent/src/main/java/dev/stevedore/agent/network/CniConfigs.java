package dev.stevedore.agent.network;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's CNI networks: the {@code .conflist}, {@code .conf} and {@code .json} files of its configuration
 * directory in the order of their names, as libcni lists them; the first is the default, as containerd's CRI plugin
 * takes it. Read again at each task start, so a network an administrator (or a network add-on) installs is used at
 * once. A file that does not parse is skipped with a warning (once per file and error), as libcni skips it.
 */
public final class CniConfigs {
    private static final Logger LOG = LoggerFactory.getLogger(CniConfigs.class);

    private final Path dir;
    private final Set<String> warned = ConcurrentHashMap.newKeySet();

    public CniConfigs(Path dir) {
        this.dir = dir;
    }

    public Path dir() {
        return dir;
    }

    /** The networks in the directory, the default first; several files of one name: the first counts. */
    public List<CniNetwork> load() {
        List<Path> files;
        try (Stream<Path> entries = Files.list(dir)) {
            files = entries.filter(CniConfigs::isConfigFile).sorted().toList();
        } catch (NoSuchFileException e) {
            return List.of();
        } catch (IOException e) {
            LOG.warn("listing the CNI configuration directory {}: {}", dir, e.toString());
            return List.of();
        }
        List<CniNetwork> networks = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (Path file : files) {
            try {
                byte[] json = Files.readAllBytes(file);
                CniNetwork network =
                        CniNetwork.parse(json, file.getFileName().toString().endsWith(".conflist"));
                if (names.add(network.name())) {
                    networks.add(network);
                }
            } catch (IOException e) {
                if (warned.add(file + ": " + e.getMessage())) {
                    LOG.warn("skipping the CNI configuration {}: {}", file, e.getMessage());
                }
            }
        }
        return networks;
    }

    /** The network named {@code name}, or the default one for null. */
    public Optional<CniNetwork> find(String name) {
        List<CniNetwork> networks = load();
        if (name == null || name.isEmpty()) {
            return networks.stream().findFirst();
        }
        return networks.stream().filter(n -> n.name().equals(name)).findFirst();
    }

    private static boolean isConfigFile(Path file) {
        String name = file.getFileName().toString();
        return Files.isRegularFile(file)
                && (name.endsWith(".conflist") || name.endsWith(".conf") || name.endsWith(".json"));
    }
}
