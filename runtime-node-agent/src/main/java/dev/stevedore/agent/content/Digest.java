package dev.stevedore.agent.content;

import java.util.regex.Pattern;

/** An OCI content digest, {@code algorithm:hex}. Only sha256 and sha512 are accepted: a digest names a file. */
public record Digest(String algorithm, String hex) {
    private static final Pattern SHA256 = Pattern.compile("[a-f0-9]{64}");
    private static final Pattern SHA512 = Pattern.compile("[a-f0-9]{128}");

    public Digest {
        boolean valid = switch (algorithm) {
            case "sha256" -> SHA256.matcher(hex).matches();
            case "sha512" -> SHA512.matcher(hex).matches();
            default -> false;
        };
        if (!valid) {
            throw new IllegalArgumentException("not a valid digest: " + algorithm + ":" + hex);
        }
    }

    public static Digest parse(String digest) {
        int colon = digest.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("not a valid digest: " + digest);
        }
        return new Digest(digest.substring(0, colon), digest.substring(colon + 1));
    }

    public static Digest sha256(byte[] hash) {
        return new Digest("sha256", java.util.HexFormat.of().formatHex(hash));
    }

    /** The sha256 digest of {@code content}. */
    public static Digest sha256Of(byte[] content) {
        try {
            return sha256(java.security.MessageDigest.getInstance("SHA-256").digest(content));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return algorithm + ":" + hex;
    }
}
