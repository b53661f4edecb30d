package dev.stevedore.kubectl;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

/**
 * The user's terminal for {@code exec -t}, through {@code stty} on {@code /dev/tty} (Java has no terminal API): raw
 * while the exec runs, so every key goes to the process, and restored afterwards; and its size.
 */
final class Terminal implements AutoCloseable {
    private final String saved;

    private Terminal(String saved) {
        this.saved = saved;
    }

    /** Puts the terminal in raw mode; empty when there is no terminal. */
    static Optional<Terminal> raw() {
        try {
            String saved = stty("-g").strip();
            stty("raw", "-echo");
            return Optional.of(new Terminal(saved));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Columns and rows, or empty when unknown. */
    static Optional<int[]> size() {
        try {
            String[] rowsColumns = stty("size").strip().split("\\s+");
            int rows = Integer.parseInt(rowsColumns[0]);
            int columns = Integer.parseInt(rowsColumns[1]);
            return rows > 0 && columns > 0 ? Optional.of(new int[] {columns, rows}) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    @Override
    public void close() {
        try {
            stty(saved);
        } catch (IOException e) {
            System.err.println("warning: the terminal's settings were not restored (run: stty sane)");
        }
    }

    private static String stty(String... args) throws IOException {
        List<String> command = new java.util.ArrayList<>(List.of("stty"));
        command.addAll(List.of(args));
        Process stty = new ProcessBuilder(command)
                .redirectInput(new File("/dev/tty"))
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        String out = new String(stty.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (stty.waitFor() != 0) {
                throw new IOException("stty " + String.join(" ", args) + " failed");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return out;
    }
}
