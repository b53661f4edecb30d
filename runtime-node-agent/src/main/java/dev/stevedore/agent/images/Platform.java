package dev.stevedore.agent.images;

import java.util.Locale;

/** An OCI platform, in Go's names ({@code linux/amd64}), which is how image indexes and configs spell it. */
public record Platform(String os, String architecture) {

    /** The platform this JVM runs on. */
    public static Platform current() {
        return new Platform(goOs(System.getProperty("os.name")), goArch(System.getProperty("os.arch")));
    }

    public static Platform parse(String platform) {
        String[] parts = platform.split("/");
        if (parts.length != 2) {
            throw new IllegalArgumentException("not os/arch: " + platform);
        }
        return new Platform(parts[0], goArch(parts[1]));
    }

    public boolean matches(String os, String architecture) {
        return this.os.equals(os) && this.architecture.equals(architecture == null ? null : goArch(architecture));
    }

    static String goArch(String jvmArch) {
        String arch = jvmArch.toLowerCase(Locale.ROOT);
        return switch (arch) {
            case "x86_64", "amd64" -> "amd64";
            case "aarch64", "arm64" -> "arm64";
            case "x86", "i386", "i686" -> "386";
            default -> arch;
        };
    }

    private static String goOs(String jvmOs) {
        String os = jvmOs.toLowerCase(Locale.ROOT);
        return os.startsWith("windows") ? "windows" : os.startsWith("mac") ? "darwin" : os;
    }

    @Override
    public String toString() {
        return os + "/" + architecture;
    }
}
