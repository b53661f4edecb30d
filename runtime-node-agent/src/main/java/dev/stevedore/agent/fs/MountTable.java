package dev.stevedore.agent.fs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** This process's mount points, from /proc/self/mounts. */
public final class MountTable {
    private MountTable() {}

    public static boolean isMountPoint(Path path) throws IOException {
        return mountPoints().contains(path.toAbsolutePath().normalize().toString());
    }

    /** The mount points at or below {@code dir}, in mount order (unmount them in reverse). */
    public static List<String> under(Path dir) throws IOException {
        String prefix = dir.toAbsolutePath().normalize().toString();
        return mountPoints().stream()
                .filter(m -> m.equals(prefix) || m.startsWith(prefix + "/"))
                .toList();
    }

    static List<String> mountPoints() throws IOException {
        List<String> points = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
            String[] fields = line.split(" ");
            if (fields.length > 1) {
                points.add(unescape(fields[1]));
            }
        }
        return points;
    }

    /** The kernel writes space, tab, newline and backslash in a mount point as octal escapes (\040). */
    private static String unescape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                out.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
