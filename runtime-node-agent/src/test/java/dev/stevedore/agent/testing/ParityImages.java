package dev.stevedore.agent.testing;

import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Images shaped like the ones users run, for comparing Stevedore with containerd: named users with supplementary
 * groups (as nginx, postgres and redis images have), each form of the image config's User, a missing working
 * directory, a merged /usr, a /tmp of mode 1777 that an upper layer only implies, and an Env without PATH. Built
 * with umoci from Debian's busybox-static into one OCI layout; {@link #push} sends a tag to a registry, with zstd
 * layers on request.
 */
public final class ParityImages {
    public static final String BASE = "base";
    /** /etc/passwd and /etc/group with a user app (1000, primary group 1001) in groups staff (50) and video (44). */
    public static final String USERS = "users";

    public static final String USER_NAME = "user-name";
    public static final String USER_UID_GID = "user-uid-gid";
    public static final String USER_NAME_GROUP = "user-name-group";
    public static final String USER_UID = "user-uid";
    public static final String MISSING_WORKDIR = "missing-workdir";
    /** /bin a symbolic link to usr/bin, as Debian 12 and Fedora have it. */
    public static final String MERGED_USR = "merged-usr";
    /** A top layer with tmp/marker and no tmp/ entry: the /tmp of mode 1777 below must stay as it is. */
    public static final String IMPLIED_TMP = "implied-tmp";

    public static final String ENV_WITHOUT_PATH = "env-without-path";

    private final Path layout;
    private final Path scratch;

    private ParityImages(Path layout, Path scratch) {
        this.layout = layout;
        this.scratch = scratch;
    }

    /** Builds every image into {@code dir/layout}. */
    public static ParityImages build(Path dir) {
        ParityImages images = new ParityImages(dir.resolve("layout"), dir);
        images.buildAll();
        return images;
    }

    private void buildAll() {
        TestImages.run(
                Tools.repositoryRoot().resolve("hack/build-busybox-image.sh").toString(), layout.toString(), BASE);
        tag(BASE, USERS);
        changeRootfs(USERS, rootfs -> {
            write(rootfs.resolve("etc/passwd"), """
                    root:x:0:0:root:/root:/bin/sh
                    app:x:1000:1001:an application:/home/app:/bin/sh
                    nobody:x:65534:65534:nobody:/nonexistent:/bin/false
                    """);
            write(rootfs.resolve("etc/group"), """
                    root:x:0:
                    wheel:x:10:root
                    video:x:44:nobody,app
                    staff:x:50:app
                    app:x:1001:app
                    nogroup:x:65534:
                    """);
            Files.createDirectories(rootfs.resolve("home/app"));
        });
        config(USERS, USER_NAME, "--config.user", "app");
        config(USERS, USER_UID_GID, "--config.user", "1000:50");
        config(USERS, USER_NAME_GROUP, "--config.user", "app:staff");
        config(USERS, USER_UID, "--config.user", "1000");
        config(BASE, MISSING_WORKDIR, "--config.workingdir", "/srv/app/data");
        config(BASE, ENV_WITHOUT_PATH, "--clear=config.env", "--config.env", "GREETING=hello");
        buildMergedUsr();
        tag(BASE, IMPLIED_TMP);
        TestImages.run(
                "umoci",
                "raw",
                "add-layer",
                "--image",
                ref(IMPLIED_TMP),
                impliedTmpLayer().toString());
    }

    /** busybox and its applets in /usr/bin, /bin a link to it. */
    private void buildMergedUsr() {
        TestImages.run("umoci", "new", "--image", ref(MERGED_USR));
        changeRootfs(MERGED_USR, rootfs -> {
            Path usrBin = Files.createDirectories(rootfs.resolve("usr/bin"));
            Files.copy(Path.of("/bin/busybox"), usrBin.resolve("busybox"));
            for (String applet : busyboxApplets()) {
                Files.createSymbolicLink(usrBin.resolve(applet), Path.of("busybox"));
            }
            Files.createSymbolicLink(rootfs.resolve("bin"), Path.of("usr/bin"));
            Files.createDirectories(rootfs.resolve("etc"));
            write(rootfs.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
            for (String dir : List.of("tmp", "proc", "sys", "dev", "root")) {
                Files.createDirectories(rootfs.resolve(dir));
            }
        });
        TestImages.run(
                "umoci",
                "config",
                "--image",
                ref(MERGED_USR),
                "--config.cmd",
                "sh",
                "--config.env",
                "PATH=/usr/bin:/bin");
    }

    private Path impliedTmpLayer() {
        Path tar = scratch.resolve("implied-tmp.tar");
        try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
            byte[] content = "implied parent\n".getBytes(StandardCharsets.UTF_8);
            TarArchiveEntry entry = new TarArchiveEntry("tmp/marker");
            entry.setMode(0100644);
            entry.setSize(content.length);
            out.putArchiveEntry(entry);
            out.write(content);
            out.closeArchiveEntry();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return tar;
    }

    /** Pushes a tag to {@code destination} ({@code host:port/repo:tag}); {@code zstd} recompresses its layers. */
    public void push(String tag, String destination, boolean zstd) {
        List<String> command = new ArrayList<>(List.of("skopeo", "copy", "--quiet", "--dest-tls-verify=false"));
        if (zstd) {
            command.addAll(List.of("--dest-compress-format", "zstd"));
        }
        command.addAll(List.of("oci:" + ref(tag), "docker://" + destination));
        TestImages.run(command.toArray(String[]::new));
    }

    private interface RootfsChange {
        void apply(Path rootfs) throws IOException;
    }

    private void changeRootfs(String tag, RootfsChange change) {
        Path bundle = scratch.resolve("bundle-" + tag);
        TestImages.run("umoci", "unpack", "--image", ref(tag), bundle.toString());
        try {
            change.apply(bundle.resolve("rootfs"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        TestImages.run("umoci", "repack", "--image", ref(tag), bundle.toString());
    }

    private void config(String from, String tag, String... options) {
        tag(from, tag);
        List<String> command = new ArrayList<>(List.of("umoci", "config", "--image", ref(tag)));
        command.addAll(List.of(options));
        TestImages.run(command.toArray(String[]::new));
    }

    private void tag(String from, String tag) {
        TestImages.run("umoci", "tag", "--image", ref(from), tag);
    }

    private String ref(String tag) {
        return layout + ":" + tag;
    }

    private static List<String> busyboxApplets() {
        try {
            Process process = new ProcessBuilder("/bin/busybox", "--list")
                    .redirectErrorStream(true)
                    .start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            process.waitFor();
            return out.lines().filter(a -> !a.isBlank() && !a.equals("busybox")).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void write(Path file, String content) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, content);
    }
}
