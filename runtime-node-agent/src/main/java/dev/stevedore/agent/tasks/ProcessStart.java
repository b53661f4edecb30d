package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * A process is its PID and its start time (field 22 of {@code /proc/PID/stat}, clock ticks since boot): a PID alone
 * is reused once its process is gone, the pair never is while the host is up. A PID the agent recorded is trusted
 * only while the process under it started when the recorded one did.
 */
final class ProcessStart {
    private static final Path PROC = Path.of("/proc");
    /** starttime is field 22; fields after the command's closing ')' start with field 3. */
    private static final int STARTTIME_AFTER_COMM = 22 - 3;

    private ProcessStart() {}

    /** What a recorded process is to the process found under its PID now. */
    enum Match {
        /** The recorded process: same start time. */
        SAME,
        /** The PID belongs to another process now. */
        OTHER,
        /** No process has the PID. */
        GONE,
        /** A process has the PID, and the record (written by an older agent) has no start time to tell whose. */
        UNKNOWN
    }

    /** Pure: the recorded start time (null: not recorded) against the one under the PID now (empty: no process). */
    static Match match(Long recorded, OptionalLong now) {
        if (now.isEmpty()) {
            return Match.GONE;
        }
        if (recorded == null) {
            return Match.UNKNOWN;
        }
        return recorded == now.getAsLong() ? Match.SAME : Match.OTHER;
    }

    /** The start time of the process with {@code pid} now, empty when there is none or it has exited (a zombie). */
    static OptionalLong of(long pid) {
        if (pid <= 0) {
            return OptionalLong.empty();
        }
        try {
            return parse(Files.readString(PROC.resolve(Long.toString(pid)).resolve("stat")));
        } catch (IOException e) {
            return OptionalLong.empty(); // gone (or going: a zombie's stat can vanish while read)
        }
    }

    /**
     * The starttime field of a {@code /proc/PID/stat} line, empty for a process that has exited. The command (field 2)
     * is in parentheses and may itself hold spaces and ')' — a process names itself — so the fields are counted from
     * the last ')'.
     */
    static OptionalLong parse(String stat) {
        int commEnd = stat.lastIndexOf(')');
        if (commEnd < 0) {
            return OptionalLong.empty();
        }
        String[] fields = stat.substring(commEnd + 1).strip().split(" +");
        // A zombie (Z) or a dying process (X) has exited: only its parent's wait is missing, which for a daemonized
        // conmon is whenever the host's init gets to it.
        if (fields.length <= STARTTIME_AFTER_COMM || fields[0].equals("Z") || fields[0].equals("X")) {
            return OptionalLong.empty();
        }
        try {
            return OptionalLong.of(Long.parseUnsignedLong(fields[STARTTIME_AFTER_COMM]));
        } catch (NumberFormatException e) {
            return OptionalLong.empty();
        }
    }
}
