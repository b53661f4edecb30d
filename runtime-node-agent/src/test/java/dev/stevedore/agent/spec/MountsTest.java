package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.SpecGeneratorTest.mountAt;
import static dev.stevedore.agent.spec.Specs.EMPTY_ROOTFS;
import static dev.stevedore.agent.spec.Specs.SH_IMAGE;
import static dev.stevedore.agent.spec.Specs.strings;
import static dev.stevedore.agent.spec.Specs.withMounts;
import static dev.stevedore.agent.spec.Specs.withOciSpec;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Container's mounts, and what the node refuses whichever part of the Container asks for it. */
class MountsTest {
    @TempDir
    Path host;

    Path data;
    SpecGenerator generator;

    @BeforeEach
    void allowData() throws Exception {
        host = host.toRealPath();
        data = Files.createDirectories(host.resolve("data"));
        Files.createDirectories(data.resolve("app"));
        Files.createDirectories(host.resolve("data2"));
        Files.createDirectories(host.resolve("secret"));
        // A trailing .. in the configuration is normalized too.
        generator = new SpecGenerator(List.of(Path.of(data + "/app/..")));
    }

    @Test
    void aBindMountUnderAnAllowedHostPathIsAppendedAfterTheDefaults() throws Exception {
        ObjectNode spec = Specs.generate(
                generator,
                "c1",
                withMounts(mount("bind", data.resolve("app").toString(), "/app", "ro")),
                SH_IMAGE,
                EMPTY_ROOTFS);

        JsonNode mounts = spec.path("mounts");
        JsonNode last = mounts.get(mounts.size() - 1);
        assertThat(last.path("destination").asText()).isEqualTo("/app");
        assertThat(last.path("type").asText()).isEqualTo("bind");
        assertThat(last.path("source").asText()).isEqualTo(data.resolve("app").toString());
        assertThat(strings(last.path("options")))
                .as("rbind added, as Docker and containerd do")
                .containsExactly("ro", "rbind");
        assertThat(mounts.get(0).path("destination").asText()).isEqualTo("/proc");
    }

    @Test
    void theAllowedPathItselfAndABindByOptionAreAllowed() throws Exception {
        ObjectNode spec = Specs.generate(
                generator,
                "c1",
                withMounts(
                        mount(null, data.toString(), "/data"),
                        mount("none", data.toString() + "/", "/data-too", "rbind", "rw")),
                SH_IMAGE,
                EMPTY_ROOTFS);
        assertThat(mountAt(spec, "/data").path("type").asText())
                .as("the API's default type")
                .isEqualTo("bind");
        assertThat(mountAt(spec, "/data-too").path("source").asText()).isEqualTo(data.toString());
        assertThat(strings(mountAt(spec, "/data-too").path("options"))).containsExactly("rbind", "rw");
    }

    @Test
    void aBindMountOfAnotherHostPathIsRefused() {
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", "/etc", "/etc", "ro")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path /etc is not allowed on this node");
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", "/", "/host")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path / is not allowed on this node");
    }

    @Test
    void aSiblingWithTheSamePrefixIsNotUnderTheAllowedPath() {
        String data2 = host.resolve("data2").toString();
        assertThatThrownBy(() ->
                        Specs.generate(generator, "c1", withMounts(mount("bind", data2, "/d")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path " + data2 + " is not allowed on this node");
    }

    @Test
    void dotDotDoesNotClimbOutOfTheAllowedPath() {
        String sneaky = data + "/app/../../secret";
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", sneaky, "/s")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path " + host.resolve("secret") + " is not allowed on this node");
    }

    @Test
    void aLinkUnderTheAllowedPathToElsewhereIsRefused() throws Exception {
        Files.createSymbolicLink(data.resolve("etc"), Path.of("/etc"));
        String link = data.resolve("etc").toString();
        assertThatThrownBy(() ->
                        Specs.generate(generator, "c1", withMounts(mount("bind", link, "/e")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path " + link + " (a link to /etc) is not allowed on this node");
    }

    @Test
    void aLinkThatStaysUnderTheAllowedPathIsMountedByItsTarget() throws Exception {
        Files.createSymbolicLink(data.resolve("current"), Path.of("app"));
        ObjectNode spec = Specs.generate(
                generator,
                "c1",
                withMounts(mount("bind", data.resolve("current").toString(), "/app")),
                SH_IMAGE,
                EMPTY_ROOTFS);
        assertThat(mountAt(spec, "/app").path("source").asText())
                .isEqualTo(data.resolve("app").toString());
    }

    @Test
    void aMissingOrRelativeSourceIsRefused() {
        String missing = data.resolve("missing").toString();
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", missing, "/m")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount source " + missing + " does not exist on this node");
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", "rootfs/../..", "/m")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("must be an absolute host path");
    }

    @Test
    void theDestinationMustBeAbsoluteAndNotTheRoot() {
        String source = data.toString();
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", source, "data")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("mount destination \"data\" must be an absolute path");
        for (String root : List.of("/", "/data/..", "//")) {
            assertThatThrownBy(() -> Specs.generate(
                            generator, "c1", withMounts(mount("bind", source, root)), SH_IMAGE, EMPTY_ROOTFS))
                    .as(root)
                    .isInstanceOf(SpecRejectedException.class)
                    .hasMessage("mount destination / is the container's root");
        }
    }

    @Test
    void aPathWithANulByteIsRejectedRatherThanThrown() {
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("tmpfs", "tmpfs", "/a\0b")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("mount destination \"/a\\0b\" is not a valid path");
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withMounts(mount("bind", data + "/\0", "/b")), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("bind mount source")
                .hasMessageContaining("is not a valid path");
    }

    @Test
    void tmpfsIsAllowedButMountTypesThatReachTheHostOrUnmaskTheKernelAreNot() throws Exception {
        ObjectNode spec = Specs.generate(
                generator,
                "c1",
                withMounts(mount("tmpfs", "tmpfs", "/scratch", "size=1m", "nosuid")),
                SH_IMAGE,
                EMPTY_ROOTFS);
        assertThat(mountAt(spec, "/scratch").path("type").asText()).isEqualTo("tmpfs");

        for (String type : List.of("proc", "sysfs", "ext4", "overlay")) {
            assertThatThrownBy(() -> Specs.generate(
                            generator, "c1", withMounts(mount(type, "/dev/sda1", "/x")), SH_IMAGE, EMPTY_ROOTFS))
                    .as(type)
                    .isInstanceOf(SpecRejectedException.class)
                    .hasMessageStartingWith("mount type \"" + type + "\" at /x is not allowed on this node");
        }
    }

    @Test
    void ociSpecCannotBringWhatSpecMountsCannot() throws Exception {
        // mounts is an array: ociSpec replaces it whole, so the check runs on the merged spec.
        assertThatThrownBy(() -> Specs.generate(
                        generator,
                        "c1",
                        withOciSpec(
                                "{\"mounts\":[{\"destination\":\"/host\",\"type\":\"bind\",\"source\":\"/\",\"options\":[\"rbind\"]}]}"),
                        SH_IMAGE,
                        EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("bind mount of host path / is not allowed on this node");
        assertThatThrownBy(() -> Specs.generate(
                        generator,
                        "c1",
                        withOciSpec(
                                "{\"mounts\":[{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"rw\"]}]}"),
                        SH_IMAGE,
                        EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageStartingWith("mount type \"sysfs\" at /sys is not allowed");
        assertThatThrownBy(() -> Specs.generate(
                        generator,
                        "c1",
                        withOciSpec("{\"hooks\":{\"prestart\":[{\"path\":\"/bin/sh\"}]}}"),
                        SH_IMAGE,
                        EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageStartingWith("hooks are not allowed on this node");
        assertThatThrownBy(() -> Specs.generate(
                        generator,
                        "c1",
                        withOciSpec(
                                "{\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"/proc/1/ns/net\"}]}}"),
                        SH_IMAGE,
                        EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("joining the network namespace at /proc/1/ns/net is not allowed on this node");
        assertThatThrownBy(() -> Specs.generate(
                        generator, "c1", withOciSpec("{\"root\":{\"path\":\"/\"}}"), SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageStartingWith("root.path must stay rootfs");
    }

    @Test
    void ociSpecMayKeepOrDropTheDefaultMountsAndAddAllowedOnes() throws Exception {
        ObjectNode defaults = Specs.generate(generator, "c1", Specs.container(), SH_IMAGE, EMPTY_ROOTFS);
        String mounts = defaults.path("mounts")
                .toString()
                .replaceFirst(
                        "]$",
                        ",{\"destination\":\"/d\",\"type\":\"bind\",\"source\":\"" + data
                                + "\",\"options\":[\"rbind\",\"ro\"]}]");

        ObjectNode spec =
                Specs.generate(generator, "c1", withOciSpec("{\"mounts\":" + mounts + "}"), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(spec.path("mounts")).hasSize(8);
        assertThat(mountAt(spec, "/d").path("source").asText()).isEqualTo(data.toString());
    }

    private static ContainerSpec.Mount mount(String type, String source, String destination, String... options) {
        return new ContainerSpec.Mount(type, source, destination, options.length == 0 ? null : List.of(options));
    }
}
