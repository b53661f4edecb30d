package dev.stevedore.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Writes measurements to stdout: one JSON object per line for machines, or a table for people. */
final class Report {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final PrintStream out;
    private final boolean json;
    private final List<Measurement> table = new ArrayList<>();

    Report(PrintStream out, boolean json) {
        this.out = out;
        this.json = json;
    }

    /** JSON lines go out as soon as a scenario ends, so a failure later does not lose them; the table waits. */
    void add(List<Measurement> measurements) {
        if (json) {
            measurements.forEach(m -> out.println(jsonLine(m)));
            out.flush();
        } else {
            table.addAll(measurements);
        }
    }

    void finish() {
        if (!json && !table.isEmpty()) {
            printTable();
        }
        out.flush();
    }

    static String jsonLine(Measurement m) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("name", m.name());
        line.put("unit", m.unit());
        line.put("n", m.n());
        line.put("p50", round(m.p50()));
        line.put("p99", round(m.p99()));
        if (m.peer() != null) {
            line.put("peer", m.peer().name());
            line.put("peer_p50", round(m.peer().p50()));
            line.put("ratio_p50", round(m.ratioP50()));
        }
        m.extra().forEach(line::putIfAbsent);
        try {
            return JSON.writeValueAsString(line);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write " + m.name() + " as JSON", e);
        }
    }

    private void printTable() {
        boolean peers = table.stream().anyMatch(m -> m.peer() != null);
        List<String> header = new ArrayList<>(List.of("measurement", "unit", "n", "p50", "p99"));
        if (peers) {
            header.addAll(List.of("peer", "peer p50", "ratio"));
        }
        header.add("notes");
        List<List<String>> rows = new ArrayList<>();
        rows.add(header);
        for (Measurement m : table) {
            List<String> row = new ArrayList<>(
                    List.of(m.name(), m.unit(), Integer.toString(m.n()), number(m.p50()), number(m.p99())));
            if (peers) {
                row.addAll(
                        m.peer() == null
                                ? List.of("", "", "")
                                : List.of(m.peer().name(), number(m.peer().p50()), number(m.ratioP50())));
            }
            row.add(notes(m));
            rows.add(row);
        }
        int[] widths = new int[header.size()];
        rows.forEach(row -> {
            for (int i = 0; i < row.size(); i++) {
                widths[i] = Math.max(widths[i], row.get(i).length());
            }
        });
        for (List<String> row : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < row.size(); i++) {
                // Text left, numbers right, so digits line up.
                boolean numeric = i >= 2 && i < row.size() - 1 && !(peers && i == 5);
                String cell = row.get(i);
                String pad = " ".repeat(widths[i] - cell.length());
                line.append(numeric ? pad + cell : cell + (i == row.size() - 1 ? "" : pad))
                        .append(i == row.size() - 1 ? "" : "  ");
            }
            out.println(line.toString().stripTrailing());
        }
    }

    /** The extras that fit in a cell: scalars only; breakdowns are for --json. */
    private static String notes(Measurement m) {
        return m.extra().entrySet().stream()
                .filter(e -> !(e.getValue() instanceof Map) && !(e.getValue() instanceof List))
                .map(e -> e.getKey() + "=" + (e.getValue() instanceof Double d ? number(d) : e.getValue()))
                .collect(Collectors.joining(" "));
    }

    private static String number(double value) {
        if (Double.isNaN(value)) {
            return "-";
        }
        return value == Math.rint(value) && Math.abs(value) < 1e15
                ? Long.toString((long) value)
                : String.format(java.util.Locale.ROOT, Math.abs(value) >= 100 ? "%.1f" : "%.3f", value);
    }

    /** Three decimals: more would be noise, and shorter lines are easier to compare. */
    static double round(double value) {
        return Double.isNaN(value) || Double.isInfinite(value) ? value : Math.round(value * 1000) / 1000.0;
    }
}
