package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * containerd's default seccomp profile ({@code contrib/seccomp} DefaultProfile: what its CRI plugin gives
 * RuntimeDefault and {@code ctr run --seccomp} writes), computed for a finished spec. The rules are data, in
 * {@code containerd-default-seccomp.json}: {@code architectures} maps a Go architecture name to the profile's
 * architectures; each entry of {@code syscalls} is a rule of the runtime spec ({@code names}, {@code action},
 * {@code errnoRet}, {@code args}) with the conditions under which containerd adds it:
 * <ul>
 * <li>{@code arches} / {@code exceptArches}: only on / not on these Go architectures;</li>
 * <li>{@code minKernel}: only on a kernel at least this {@code major.minor};</li>
 * <li>{@code cap}: only when the bounding set has this capability;</li>
 * <li>{@code withoutCap}: only when the bounding set lacks it.</li>
 * </ul>
 * The profile lists the rules in containerd's order: those without a capability condition, then those a capability
 * adds, in the order of the bounding set (each capability once), then those its absence adds. The errno numbers are those of every
 * architecture but MIPS.
 */
final class DefaultSeccomp {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Set<String> RULE_KEYS = Set.of("names", "action", "errnoRet", "args");
    private static final Set<String> CONDITION_KEYS =
            Set.of("arches", "exceptArches", "minKernel", "cap", "withoutCap");
    private static final Pattern KERNEL_VERSION = Pattern.compile("^(\\d{1,9})\\.(\\d{1,9})");
    /** After the constants above, which loading uses. */
    static final DefaultSeccomp CONTAINERD = load("containerd-default-seccomp.json");

    private final String defaultAction;
    private final Map<String, List<String>> architectures;
    private final List<Rule> rules;

    /** One rule and its conditions; an empty set or a null is no condition. */
    private record Rule(
            ObjectNode syscall,
            Set<String> arches,
            Set<String> exceptArches,
            KernelVersion minKernel,
            String cap,
            String withoutCap) {

        boolean appliesOn(String arch, KernelVersion kernel) {
            return (arches.isEmpty() || arches.contains(arch))
                    && !exceptArches.contains(arch)
                    && (minKernel == null || (kernel != null && kernel.atLeast(minKernel)));
        }
    }

    /** A kernel's {@code major.minor}, all that containerd compares. */
    private record KernelVersion(long major, long minor) {
        boolean atLeast(KernelVersion other) {
            return major != other.major ? major > other.major : minor >= other.minor;
        }

        /** The version at the start of a release such as {@code 6.1.0-13-amd64}, or null, as containerd parses it. */
        static KernelVersion parse(String release) {
            Matcher matcher = KERNEL_VERSION.matcher(release == null ? "" : release);
            if (!matcher.find()) {
                return null;
            }
            return new KernelVersion(Long.parseLong(matcher.group(1)), Long.parseLong(matcher.group(2)));
        }
    }

    private DefaultSeccomp(String defaultAction, Map<String, List<String>> architectures, List<Rule> rules) {
        this.defaultAction = defaultAction;
        this.architectures = architectures;
        this.rules = rules;
    }

    /**
     * The profile for {@code spec} (its {@code process.capabilities.bounding} decides the capability rules) on a node
     * of Go architecture {@code arch} whose kernel release is {@code kernelRelease} ({@code uname -r}; when it does
     * not start with {@code major.minor}, as with containerd, no kernel-dependent rule applies).
     */
    ObjectNode profile(JsonNode spec, String arch, String kernelRelease) {
        // Each capability once: containerd adds a listed-twice capability's rules twice, which lets a spec's author
        // grow the profile without bound.
        Set<String> bounding = new LinkedHashSet<>();
        spec.path("process").path("capabilities").path("bounding").forEach(cap -> bounding.add(cap.asText()));
        KernelVersion kernel = KernelVersion.parse(kernelRelease);

        ObjectNode profile = MAPPER.createObjectNode();
        profile.put("defaultAction", defaultAction);
        List<String> profileArches = architectures.getOrDefault(arch, List.of());
        if (!profileArches.isEmpty()) {
            ArrayNode list = profile.putArray("architectures");
            profileArches.forEach(list::add);
        }
        ArrayNode syscalls = profile.putArray("syscalls");
        Predicate<Rule> here = rule -> rule.appliesOn(arch, kernel);
        add(syscalls, here.and(rule -> rule.cap() == null && rule.withoutCap() == null));
        for (String cap : bounding) {
            add(syscalls, here.and(rule -> cap.equals(rule.cap())));
        }
        add(syscalls, here.and(rule -> rule.withoutCap() != null && !bounding.contains(rule.withoutCap())));
        return profile;
    }

    private void add(ArrayNode syscalls, Predicate<Rule> applies) {
        rules.stream()
                .filter(applies)
                .forEach(rule -> syscalls.add(rule.syscall().deepCopy()));
    }

    static DefaultSeccomp load(String resource) {
        try (InputStream in = DefaultSeccomp.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("seccomp rules " + resource + " are missing from the agent");
            }
            return parse(MAPPER.readTree(in));
        } catch (IOException e) {
            throw new UncheckedIOException("seccomp rules " + resource + " are not JSON", e);
        }
    }

    /** The rules from their JSON; a key the evaluator does not know fails here, not as a silently wider profile. */
    static DefaultSeccomp parse(JsonNode json) {
        Map<String, List<String>> architectures = new LinkedHashMap<>();
        json.path("architectures")
                .properties()
                .forEach(arch -> architectures.put(arch.getKey(), strings(arch.getValue())));
        List<Rule> rules = new ArrayList<>();
        for (JsonNode entry : json.path("syscalls")) {
            ObjectNode syscall = MAPPER.createObjectNode();
            entry.properties().forEach(field -> {
                if (RULE_KEYS.contains(field.getKey())) {
                    syscall.set(field.getKey(), field.getValue().deepCopy());
                } else if (!CONDITION_KEYS.contains(field.getKey())) {
                    throw new IllegalArgumentException("seccomp rule " + entry + ": unknown key " + field.getKey());
                }
            });
            if (!syscall.path("names").isArray() || !syscall.path("action").isTextual()) {
                throw new IllegalArgumentException("seccomp rule " + entry + " needs names and an action");
            }
            rules.add(new Rule(
                    syscall,
                    new HashSet<>(strings(entry.path("arches"))),
                    new HashSet<>(strings(entry.path("exceptArches"))),
                    entry.has("minKernel")
                            ? requireVersion(entry.path("minKernel").asText())
                            : null,
                    entry.has("cap") ? entry.path("cap").asText() : null,
                    entry.has("withoutCap") ? entry.path("withoutCap").asText() : null));
        }
        return new DefaultSeccomp(json.path("defaultAction").asText(), architectures, List.copyOf(rules));
    }

    private static KernelVersion requireVersion(String version) {
        KernelVersion parsed = KernelVersion.parse(version);
        if (parsed == null) {
            throw new IllegalArgumentException("seccomp rule: minKernel " + version + " is not major.minor");
        }
        return parsed;
    }

    private static List<String> strings(JsonNode array) {
        List<String> strings = new ArrayList<>();
        array.forEach(value -> strings.add(value.asText()));
        return strings;
    }
}
