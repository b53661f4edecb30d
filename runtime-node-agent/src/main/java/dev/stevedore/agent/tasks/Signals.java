package dev.stevedore.agent.tasks;

import java.util.Map;

/** Linux signal names and numbers (x86_64 and arm64 agree on these). */
final class Signals {
    private static final Map<String, Integer> NUMBERS = Map.ofEntries(
            Map.entry("SIGHUP", 1),
            Map.entry("SIGINT", 2),
            Map.entry("SIGQUIT", 3),
            Map.entry("SIGILL", 4),
            Map.entry("SIGTRAP", 5),
            Map.entry("SIGABRT", 6),
            Map.entry("SIGBUS", 7),
            Map.entry("SIGFPE", 8),
            Map.entry("SIGKILL", 9),
            Map.entry("SIGUSR1", 10),
            Map.entry("SIGSEGV", 11),
            Map.entry("SIGUSR2", 12),
            Map.entry("SIGPIPE", 13),
            Map.entry("SIGALRM", 14),
            Map.entry("SIGTERM", 15),
            Map.entry("SIGSTKFLT", 16),
            Map.entry("SIGCHLD", 17),
            Map.entry("SIGCONT", 18),
            Map.entry("SIGSTOP", 19),
            Map.entry("SIGTSTP", 20),
            Map.entry("SIGTTIN", 21),
            Map.entry("SIGTTOU", 22),
            Map.entry("SIGURG", 23),
            Map.entry("SIGXCPU", 24),
            Map.entry("SIGXFSZ", 25),
            Map.entry("SIGVTALRM", 26),
            Map.entry("SIGPROF", 27),
            Map.entry("SIGWINCH", 28),
            Map.entry("SIGIO", 29),
            Map.entry("SIGPWR", 30),
            Map.entry("SIGSYS", 31));

    private Signals() {}

    static int number(String name) {
        if (name == null) {
            return 15;
        }
        if (name.startsWith("SIGRTMIN+")) {
            return 34 + Integer.parseInt(name.substring("SIGRTMIN+".length()));
        }
        Integer n = NUMBERS.get(name.startsWith("SIG") ? name : "SIG" + name);
        if (n == null) {
            throw new IllegalArgumentException("unknown signal " + name);
        }
        return n;
    }

    static String name(int number) {
        for (Map.Entry<String, Integer> e : NUMBERS.entrySet()) {
            if (e.getValue() == number) {
                return e.getKey();
            }
        }
        return number >= 34 && number <= 64 ? "SIGRTMIN+" + (number - 34) : null;
    }
}
