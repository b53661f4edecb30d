package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.EMPTY_ROOTFS;
import static dev.stevedore.agent.spec.Specs.SH_IMAGE;
import static dev.stevedore.agent.spec.Specs.container;
import static dev.stevedore.agent.spec.Specs.strings;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.agent.images.Platform;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SpecGeneratorTest {
    private final SpecGenerator generator = new SpecGenerator(List.of());

    @Test
    void defaultsAreContainerdsForALinuxContainer() throws Exception {
        ObjectNode spec = Specs.generate(generator, "c1", container(), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(spec.path("ociVersion").asText()).isEqualTo("1.0.2");
        JsonNode process = spec.path("process");
        assertThat(process.has("terminal")).as("false, left out").isFalse();
        assertThat(process.path("user").path("uid").asLong(-1)).isZero();
        assertThat(process.path("user").path("gid").asLong(-1)).isZero();
        assertThat(process.path("user").path("additionalGids").toString())
                .as("the primary gid, as containerd puts it")
                .isEqualTo("[0]");
        assertThat(process.path("cwd").asText()).isEqualTo("/");
        assertThat(strings(process.path("env")))
                .containsExactly("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assertThat(process.path("noNewPrivileges").asBoolean()).isTrue();
        List<String> caps = List.of(
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FSETID",
                "CAP_FOWNER",
                "CAP_MKNOD",
                "CAP_NET_RAW",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETFCAP",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT",
                "CAP_KILL",
                "CAP_AUDIT_WRITE");
        JsonNode capabilities = process.path("capabilities");
        assertThat(strings(capabilities.path("bounding"))).containsExactlyElementsOf(caps);
        assertThat(strings(capabilities.path("effective"))).containsExactlyElementsOf(caps);
        assertThat(strings(capabilities.path("permitted"))).containsExactlyElementsOf(caps);
        assertThat(capabilities.has("ambient")).isFalse();
        assertThat(capabilities.has("inheritable")).isFalse();
        assertThat(process.path("rlimits")).hasSize(1);
        assertThat(process.path("rlimits").get(0))
                .isEqualTo(Specs.json("{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}"));

        assertThat(spec.path("root")).isEqualTo(Specs.json("{\"path\":\"rootfs\"}"));
        assertThat(spec.path("hostname").asText()).isEqualTo("c1");
        List<String> destinations = new ArrayList<>();
        spec.path("mounts").forEach(m -> destinations.add(m.path("destination").asText()));
        assertThat(destinations)
                .containsExactly("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run");
        assertThat(mountAt(spec, "/sys").path("options").toString()).contains("\"ro\"");
        assertThat(mountAt(spec, "/run").path("type").asText()).isEqualTo("tmpfs");
        assertThat(mountAt(spec, "/dev").path("type").asText()).isEqualTo("tmpfs");

        JsonNode linux = spec.path("linux");
        List<String> namespaces = new ArrayList<>();
        linux.path("namespaces").forEach(n -> namespaces.add(n.path("type").asText()));
        assertThat(namespaces).containsExactlyInAnyOrder("pid", "ipc", "uts", "mount", "network");
        linux.path("namespaces")
                .forEach(n -> assertThat(n.has("path"))
                        .as("a new namespace, not a joined one")
                        .isFalse());
        assertThat(strings(linux.path("maskedPaths")))
                .containsExactly(
                        "/proc/acpi",
                        "/proc/asound",
                        "/proc/kcore",
                        "/proc/keys",
                        "/proc/latency_stats",
                        "/proc/timer_list",
                        "/proc/timer_stats",
                        "/proc/sched_debug",
                        "/sys/firmware",
                        "/proc/scsi");
        assertThat(strings(linux.path("readonlyPaths")))
                .containsExactly("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger");
        assertThat(linux.has("cgroupsPath")).as("the task's bundle sets it").isFalse();
        JsonNode devices = linux.path("resources").path("devices");
        assertThat(devices.get(0)).isEqualTo(Specs.json("{\"allow\":false,\"access\":\"rwm\"}"));
        assertThat(devices)
                .contains(Specs.json("{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rwm\"}"));
        assertThat(devices)
                .as("containerd's WithDefaultUnixDevices, nothing more")
                .hasSize(10);

        assertThat(linux.path("seccomp"))
                .as("containerd's default profile for this node and the default capabilities")
                .isEqualTo(DefaultSeccomp.CONTAINERD.profile(
                        spec, Platform.current().architecture(), System.getProperty("os.version")));
        assertThat(OciSpecTest.seccompAllowed(spec))
                .contains("read", "chroot")
                .as("what CAP_SYS_ADMIN and CAP_SYS_PTRACE would allow")
                .doesNotContain("mount", "unshare", "kcmp");
    }

    @Test
    void theHostnameIsTheShortenedId() throws Exception {
        String hexId = "0123456789abcdef".repeat(4);
        assertThat(Specs.generate(generator, hexId, container(), SH_IMAGE, EMPTY_ROOTFS)
                        .path("hostname")
                        .asText())
                .isEqualTo("0123456789ab");
        String longId = "x".repeat(100);
        assertThat(Specs.generate(generator, longId, container(), SH_IMAGE, EMPTY_ROOTFS)
                        .path("hostname")
                        .asText())
                .isEqualTo("x".repeat(63));
    }

    @Test
    void theNetworksHostnameIsTheHostnameAndTheHostNetworkLeavesTheNetworkNamespaceOut() throws Exception {
        ContainerSpec named =
                Serialization.unmarshal("image: busybox\nnetwork: {hostname: web-1}", ContainerSpec.class);
        ContainerSpec onHost = Serialization.unmarshal("image: busybox\nnetwork: {mode: host}", ContainerSpec.class);

        assertThat(Specs.generate(generator, "c1", named, SH_IMAGE, EMPTY_ROOTFS)
                        .path("hostname")
                        .asText())
                .isEqualTo("web-1");
        ObjectNode host = Specs.generate(generator, "c1", onHost, SH_IMAGE, EMPTY_ROOTFS);
        List<String> types = new ArrayList<>();
        host.path("linux")
                .path("namespaces")
                .forEach(n -> types.add(n.path("type").asText()));
        assertThat(types).containsExactly("pid", "ipc", "uts", "mount");
    }

    @Test
    void anIdThatIsNotARuntimeIdIsAProgrammingError() {
        for (String id : List.of("", "a/b", "..", ".hidden", "a b")) {
            assertThatThrownBy(() -> Specs.generate(generator, id, container(), SH_IMAGE, EMPTY_ROOTFS))
                    .as(id)
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void theImageConfigGivesCommandEnvironmentDirectoryAndUser() throws Exception {
        ImageConfig nginx = new ImageConfig(
                List.of("/docker-entrypoint.sh"),
                List.of("nginx", "-g", "daemon off;"),
                List.of("PATH=/opt/nginx/bin:/usr/bin:/bin", "NGINX_VERSION=1.27.0"),
                "/srv",
                "101:102");

        JsonNode process = Specs.generate(generator, "c1", container(), nginx, EMPTY_ROOTFS)
                .path("process");

        assertThat(strings(process.path("args")))
                .containsExactly("/docker-entrypoint.sh", "nginx", "-g", "daemon off;");
        assertThat(strings(process.path("env")))
                .containsExactly("PATH=/opt/nginx/bin:/usr/bin:/bin", "NGINX_VERSION=1.27.0");
        assertThat(process.path("cwd").asText()).isEqualTo("/srv");
        assertThat(process.path("user").path("uid").asLong()).isEqualTo(101);
        assertThat(process.path("user").path("gid").asLong()).isEqualTo(102);
    }

    @Test
    void anEntrypointAloneOrACmdAloneIsTheCommand() throws Exception {
        ImageConfig entrypointOnly = new ImageConfig(List.of("/bin/app", "--serve"), null, null, null, null);
        assertThat(strings(Specs.generate(generator, "c1", container(), entrypointOnly, EMPTY_ROOTFS)
                        .path("process")
                        .path("args")))
                .containsExactly("/bin/app", "--serve");
        assertThat(strings(Specs.generate(generator, "c1", container(), SH_IMAGE, EMPTY_ROOTFS)
                        .path("process")
                        .path("args")))
                .containsExactly("sh");
    }

    @Test
    void withoutAnyCommandTheSpecIsRejected() {
        ImageConfig none = new ImageConfig(List.of(), null, null, null, null);
        ContainerSpec emptyArgs = container(new ContainerSpec.Process(List.of(), null, null, null));
        assertThatThrownBy(() -> Specs.generate(generator, "c1", emptyArgs, none, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessage("no command: the image has no Entrypoint or Cmd and spec.process.args is empty");
    }

    @Test
    void theContainersProcessOverridesTheImage() throws Exception {
        ImageConfig image = new ImageConfig(
                List.of("/entrypoint"), List.of("serve"), List.of("FOO=image", "KEEP=1"), "/image", "nobody");
        ContainerSpec.Process process = new ContainerSpec.Process(
                List.of("/bin/echo", "hi"),
                List.of(
                        new ContainerSpec.EnvVar("FOO", "container"),
                        new ContainerSpec.EnvVar("NEW", null),
                        new ContainerSpec.EnvVar("PATH", "/only")),
                "/work",
                new ContainerSpec.User(1000L, null));

        // The image's user name is not in this rootfs, but the Container's user replaces it.
        JsonNode result = Specs.generate(generator, "c1", container(process), image, EMPTY_ROOTFS)
                .path("process");

        assertThat(strings(result.path("args")))
                .as("args replace Entrypoint and Cmd")
                .containsExactly("/bin/echo", "hi");
        assertThat(strings(result.path("env")))
                .as("same name replaced in place, new names appended")
                .containsExactly("FOO=container", "KEEP=1", "NEW=", "PATH=/only");
        assertThat(result.path("cwd").asText()).isEqualTo("/work");
        assertThat(result.path("user").path("uid").asLong()).isEqualTo(1000);
        assertThat(result.path("user").path("gid").asLong())
                .as("no /etc/passwd: gid 0, as containerd gives")
                .isZero();

        ContainerSpec.Process withGid = new ContainerSpec.Process(null, null, null, new ContainerSpec.User(5L, 6L));
        JsonNode user = Specs.generate(generator, "c1", container(withGid), image, EMPTY_ROOTFS)
                .path("process")
                .path("user");
        assertThat(user.path("uid").asLong()).isEqualTo(5);
        assertThat(user.path("gid").asLong()).isEqualTo(6);
    }

    @Test
    void theImagesEnvIsTakenAsItIsAndOnlyAnImageWithoutEnvGetsTheDefaultPath() throws Exception {
        // containerd's rule: the default PATH stands in for a missing Env, not for a missing PATH.
        ImageConfig noPath = new ImageConfig(null, List.of("sh"), List.of("A=1", "B"), null, null);
        assertThat(strings(Specs.generate(generator, "c1", container(), noPath, EMPTY_ROOTFS)
                        .path("process")
                        .path("env")))
                .containsExactly("A=1", "B");
        ImageConfig noEnv = new ImageConfig(null, List.of("sh"), List.of(), null, null);
        assertThat(strings(Specs.generate(generator, "c1", container(), noEnv, EMPTY_ROOTFS)
                        .path("process")
                        .path("env")))
                .containsExactly("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }

    @Test
    void aRelativeWorkingDirectoryIsRejected() {
        ImageConfig image = new ImageConfig(null, List.of("sh"), null, "app", null);
        assertThatThrownBy(() -> Specs.generate(generator, "c1", container(), image, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("working directory \"app\" is not an absolute path");
    }

    @Test
    void resourcesBecomeCgroupLimits() throws Exception {
        ContainerSpec.Resources resources =
                new ContainerSpec.Resources(new Quantity("64Mi"), new Quantity("500m"), 100L);

        JsonNode limits = Specs.generate(
                        generator, "c1", container(null, resources, null, null), SH_IMAGE, EMPTY_ROOTFS)
                .path("linux")
                .path("resources");

        assertThat(limits.path("memory").path("limit").asLong()).isEqualTo(67108864L);
        assertThat(limits.path("memory").path("swap").asLong())
                .as("no swap beyond the limit")
                .isEqualTo(67108864L);
        assertThat(limits.path("cpu").path("period").asLong()).isEqualTo(100000L);
        assertThat(limits.path("cpu").path("quota").asLong()).isEqualTo(50000L);
        assertThat(limits.path("pids").path("limit").asLong()).isEqualTo(100L);
        assertThat(limits.path("devices").isArray()).as("the device rules stay").isTrue();
    }

    @Test
    void cpuAndMemoryRoundUpAndTinyQuotasRiseToTheKernelsMinimum() throws Exception {
        JsonNode limits = Specs.generate(
                        generator,
                        "c1",
                        container(
                                null,
                                new ContainerSpec.Resources(new Quantity("1G"), new Quantity("1.5"), null),
                                null,
                                null),
                        SH_IMAGE,
                        EMPTY_ROOTFS)
                .path("linux")
                .path("resources");
        assertThat(limits.path("memory").path("limit").asLong()).isEqualTo(1_000_000_000L);
        assertThat(limits.path("cpu").path("quota").asLong()).isEqualTo(150000L);
        assertThat(limits.has("pids")).isFalse();

        JsonNode tiny = Specs.generate(
                        generator,
                        "c1",
                        container(
                                null,
                                new ContainerSpec.Resources(new Quantity("1500m"), new Quantity("1m"), null),
                                null,
                                null),
                        SH_IMAGE,
                        EMPTY_ROOTFS)
                .path("linux")
                .path("resources");
        assertThat(tiny.path("memory").path("limit").asLong())
                .as("1.5 bytes, rounded up")
                .isEqualTo(2L);
        assertThat(tiny.path("cpu").path("quota").asLong()).isEqualTo(1000L);
    }

    @Test
    void nonPositiveResourcesAreRejected() {
        ContainerSpec zeroMemory =
                container(null, new ContainerSpec.Resources(new Quantity("0"), null, null), null, null);
        assertThatThrownBy(() -> Specs.generate(generator, "c1", zeroMemory, SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("resources.memory must be positive");
        ContainerSpec zeroPids = container(null, new ContainerSpec.Resources(null, null, 0L), null, null);
        assertThatThrownBy(() -> Specs.generate(generator, "c1", zeroPids, SH_IMAGE, EMPTY_ROOTFS))
                .isInstanceOf(SpecRejectedException.class)
                .hasMessageContaining("resources.pids");
    }

    @Test
    void withoutResourcesOnlyTheDeviceRulesAreSet() throws Exception {
        JsonNode resources = Specs.generate(generator, "c1", container(), SH_IMAGE, EMPTY_ROOTFS)
                .path("linux")
                .path("resources");
        assertThat(resources.size()).isEqualTo(1);
        assertThat(resources.has("devices")).isTrue();
    }

    static JsonNode mountAt(JsonNode spec, String destination) {
        for (JsonNode mount : spec.path("mounts")) {
            if (mount.path("destination").asText().equals(destination)) {
                return mount;
            }
        }
        throw new AssertionError("no mount at " + destination + " in " + spec.path("mounts"));
    }
}
