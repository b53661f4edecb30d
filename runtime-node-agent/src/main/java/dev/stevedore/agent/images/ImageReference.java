package dev.stevedore.agent.images;

import dev.stevedore.agent.content.Digest;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A normalized image reference, as the Docker CLI and containerd read one: {@code busybox} is
 * {@code docker.io/library/busybox:latest}; the first path component names a registry only if it has a dot or a
 * colon or is {@code localhost}. A digest, when given, decides what is pulled; the tag is then only kept in the name.
 *
 * @param registry {@code host[:port]} as written ({@code docker.io} for Docker Hub)
 * @param repository the path in the registry, e.g. {@code library/busybox}
 * @param tag the tag, or null when the reference has only a digest
 * @param digest the digest, or null
 */
public record ImageReference(String registry, String repository, String tag, Digest digest) {
    public static final String DOCKER_HUB = "docker.io";
    private static final String DOCKER_HUB_API = "registry-1.docker.io";

    // The distribution reference grammar, without the parts (upper case, very long names) registries refuse anyway.
    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern REGISTRY = Pattern.compile(
            "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                    + "|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?");

    public ImageReference {
        if (tag == null && digest == null) {
            throw new IllegalArgumentException("a reference needs a tag or a digest");
        }
    }

    public static ImageReference parse(String reference) {
        if (reference == null || reference.isEmpty() || reference.length() > 512) {
            throw invalid(reference);
        }
        String rest = reference;
        Digest digest = null;
        int at = rest.indexOf('@');
        if (at >= 0) {
            try {
                digest = Digest.parse(rest.substring(at + 1));
            } catch (IllegalArgumentException e) {
                throw invalid(reference);
            }
            rest = rest.substring(0, at);
        }
        String tag = null;
        int colon = rest.lastIndexOf(':');
        if (colon > rest.lastIndexOf('/')) {
            tag = rest.substring(colon + 1);
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                throw invalid(reference);
            }
        }
        String registry = DOCKER_HUB;
        int slash = rest.indexOf('/');
        if (slash > 0) {
            String first = rest.substring(0, slash);
            if (first.contains(".") || first.contains(":") || first.equals("localhost")) {
                registry = first;
                rest = rest.substring(slash + 1);
            }
        }
        if (!REGISTRY.matcher(registry).matches()) {
            throw invalid(reference);
        }
        if (registry.equals("index.docker.io")) {
            registry = DOCKER_HUB;
        }
        if (registry.equals(DOCKER_HUB) && !rest.contains("/")) {
            rest = "library/" + rest;
        }
        for (String component : rest.split("/", -1)) {
            if (!COMPONENT.matcher(component).matches()) {
                throw invalid(reference);
            }
        }
        if (tag == null && digest == null) {
            tag = "latest";
        }
        return new ImageReference(registry.toLowerCase(Locale.ROOT), rest, tag, digest);
    }

    /** The host the registry API answers on: Docker Hub's differs from its name. */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? DOCKER_HUB_API : registry;
    }

    /** What to ask the registry's manifests endpoint for: the digest when there is one. */
    public String manifestReference() {
        return digest != null ? digest.toString() : tag;
    }

    /** The full normalized name, which image records are kept under. */
    @Override
    public String toString() {
        return registry + "/" + repository + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }

    private static IllegalArgumentException invalid(String reference) {
        return new IllegalArgumentException("not a valid image reference: " + reference);
    }
}
