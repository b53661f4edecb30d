package dev.stevedore.agent.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stevedore.agent.images.ImageConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageUserTest {
    @TempDir
    Path dir;

    Path rootfs;

    @BeforeEach
    void rootfsWithUsers() throws Exception {
        rootfs = Files.createDirectories(dir.resolve("rootfs"));
        Files.createDirectories(rootfs.resolve("etc"));
        Files.writeString(rootfs.resolve("etc/passwd"), """
                root:x:0:0:root:/root:/bin/sh
                # a comment
                +nis
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
                app:x:1000:1001::/home/app:/bin/sh
                """);
        Files.writeString(rootfs.resolve("etc/group"), """
                root:x:0:
                nogroup:x:65534:
                staff:x:50:app
                app:x:1001:app
                video:x:44:nobody,app
                """);
    }

    /** The ids with the primary gid as the only supplementary group. */
    private static ImageUser.Ids ids(long uid, long gid, long... more) {
        List<Long> gids = new java.util.ArrayList<>(List.of(gid));
        for (long g : more) {
            gids.add(g);
        }
        return new ImageUser.Ids(uid, gid, gids);
    }

    @Test
    void withoutPasswdAndGroupNumbersAreTakenAsTheyAre() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertThat(ImageUser.resolve("", empty)).isEqualTo(ids(0, 0));
        assertThat(ImageUser.resolve(null, empty)).isEqualTo(ids(0, 0));
        assertThat(ImageUser.resolve("1234:5678", empty)).isEqualTo(ids(1234, 5678));
        assertThat(ImageUser.resolve("4294967295:0", empty)).isEqualTo(ids(4294967295L, 0));
        assertThat(ImageUser.resolve("1234", empty))
                .as("no passwd to ask: gid 0")
                .isEqualTo(ids(1234, 0));
    }

    @Test
    void namesComeFromTheImagesPasswdAndGroupWithTheUsersSupplementaryGroups() throws Exception {
        assertThat(ImageUser.resolve("nobody", rootfs)).isEqualTo(ids(65534, 65534, 44));
        // app is listed in staff, video and its own group app: containerd leaves the group of the same name out.
        assertThat(ImageUser.resolve("app", rootfs)).isEqualTo(ids(1000, 1001, 50, 44));
        assertThat(ImageUser.resolve("app:staff", rootfs))
                .as("a primary gid among them stays in its place")
                .isEqualTo(new ImageUser.Ids(1000, 50, List.of(50L, 44L)));
        assertThat(ImageUser.resolve("app:video", rootfs)).isEqualTo(new ImageUser.Ids(1000, 44, List.of(50L, 44L)));
        assertThat(ImageUser.resolve("app:7", rootfs)).isEqualTo(ids(1000, 7, 50, 44));
        assertThat(ImageUser.resolve("1000", rootfs))
                .as("primary group of a listed uid")
                .isEqualTo(ids(1000, 1001, 50, 44));
        assertThat(ImageUser.resolve("1000:1000", rootfs)).isEqualTo(ids(1000, 1000, 50, 44));
        assertThat(ImageUser.resolve("4242", rootfs))
                .as("an unlisted uid is still a uid")
                .isEqualTo(ids(4242, 0));
        assertThat(ImageUser.resolve("4242:nogroup", rootfs)).isEqualTo(ids(4242, 65534));
        assertThat(ImageUser.resolve("", rootfs))
                .as("root is in no other group")
                .isEqualTo(ids(0, 0));
    }

    @Test
    void aContainersNumericUserIsResolvedLikeKubeletsRunAsUser() throws Exception {
        assertThat(ImageUser.resolve(1000, null, rootfs)).isEqualTo(ids(1000, 1001, 50, 44));
        assertThat(ImageUser.resolve(1000, 9L, rootfs)).isEqualTo(ids(1000, 9, 50, 44));
        assertThat(ImageUser.resolve(4242, null, rootfs)).isEqualTo(ids(4242, 0));
        assertThatThrownBy(() -> ImageUser.resolve(-1, null, rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("spec.process.user.uid -1");
    }

    @Test
    void theGeneratorResolvesTheImageUserInTheRootfs() throws Exception {
        ImageConfig image = new ImageConfig(null, List.of("sh"), null, null, "nobody");
        JsonNode user = Specs.generate(new SpecGenerator(List.of()), "c1", Specs.container(), image, rootfs)
                .path("process")
                .path("user");
        assertThat(user.path("uid").asLong()).isEqualTo(65534);
        assertThat(user.path("gid").asLong()).isEqualTo(65534);
    }

    @Test
    void whatCannotBeResolvedIsRejected() {
        assertThatThrownBy(() -> ImageUser.resolve("postgres", rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage(
                        "the image's User \"postgres\" names a user postgres that is not in the image's /etc/passwd");
        assertThatThrownBy(() -> ImageUser.resolve("app:wheel", rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("the image's User \"app:wheel\" names a group wheel that is not in the image's /etc/group");
        for (String malformed : List.of(":", "app:", ":1", "4294967296", "1:2:3")) {
            assertThatThrownBy(() -> ImageUser.resolve(malformed, rootfs))
                    .as(malformed)
                    .isInstanceOf(SpecRejectedException.class);
        }
    }

    @Test
    void aPasswdLinkedOutsideTheRootfsIsNotFollowed() throws Exception {
        Path outside = Files.writeString(dir.resolve("host-passwd"), "intruder:x:4242:4242::/:/bin/sh\n");
        Files.delete(rootfs.resolve("etc/passwd"));

        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), outside.toAbsolutePath());
        assertThatThrownBy(() -> ImageUser.resolve("intruder", rootfs))
                .as("an absolute target starts at the rootfs")
                .isInstanceOf(SpecRejectedException.class);

        Files.delete(rootfs.resolve("etc/passwd"));
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("../../../../../../../../../../" + outside));
        assertThatThrownBy(() -> ImageUser.resolve("intruder", rootfs))
                .as(".. stops at the rootfs")
                .isInstanceOf(SpecRejectedException.class);

        Files.delete(rootfs.resolve("etc/passwd"));
        Files.delete(rootfs.resolve("etc/group"));
        Files.delete(rootfs.resolve("etc"));
        Files.createSymbolicLink(rootfs.resolve("etc"), dir);
        Files.writeString(dir.resolve("passwd"), "intruder:x:4242:4242::/:/bin/sh\n");
        assertThatThrownBy(() -> ImageUser.resolve("intruder", rootfs))
                .as("a linked directory is resolved in the rootfs too")
                .isInstanceOf(SpecRejectedException.class);
    }

    @Test
    void linksInsideTheRootfsAreFollowedThere() throws Exception {
        Path lib = Files.createDirectories(rootfs.resolve("usr/lib"));
        Files.move(rootfs.resolve("etc/passwd"), lib.resolve("passwd"));
        // Absolute, as images have them: it means the rootfs's /usr/lib, not the host's.
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("/usr/lib/passwd"));
        assertThat(ImageUser.resolve("app", rootfs)).isEqualTo(ids(1000, 1001, 50, 44));

        Files.delete(rootfs.resolve("etc/passwd"));
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("../usr/./lib/../lib/passwd"));
        assertThat(ImageUser.resolve("app", rootfs)).isEqualTo(ids(1000, 1001, 50, 44));
    }

    @Test
    void aLinkLoopOrANonFileEndsTheLookup() throws Exception {
        Files.delete(rootfs.resolve("etc/passwd"));
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("passwd"));
        assertThatThrownBy(() -> ImageUser.resolve("app", rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("not in the image's /etc/passwd");

        Files.delete(rootfs.resolve("etc/passwd"));
        Files.createDirectory(rootfs.resolve("etc/passwd"));
        assertThatThrownBy(() -> ImageUser.resolve("app", rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("the image's /etc/passwd is not a regular file");
    }

    @Test
    void anOversizedPasswdIsRefused() throws Exception {
        Files.write(rootfs.resolve("etc/passwd"), new byte[ImageUser.MAX_FILE_BYTES + 1]);
        assertThatThrownBy(() -> ImageUser.resolve("app", rootfs))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("is larger than");
    }
}
