package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.snapshots.Mount;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bundle's staged bind mounts, as root with real mounts: what the spec gives runc, and a release (at a task's end,
 * or the sweep after a crash) that unmounts them before it deletes the bundle, so that no host file under a bind
 * source is ever deleted with it.
 */
class BundlesMountIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<Mount> ROOTFS = List.of(new Mount("tmpfs", "tmpfs", List.of()));

    @TempDir
    Path tmp;

    Path allowed;
    Path data;
    Path bundle;
    Path spec;

    @BeforeEach
    void hostDirectoryAndSpec() throws IOException {
        allowed = Files.createDirectory(tmp.resolve("allowed"));
        data = Files.createDirectory(allowed.resolve("data"));
        Files.writeString(data.resolve("precious"), "host file");
        bundle = tmp.resolve("bundle");
        spec = tmp.resolve("spec.json");
        Files.writeString(spec, """
                {"root": {"path": "rootfs"},
                 "mounts": [{"destination": "/data", "type": "bind", "source": "%s", "options": ["rbind", "ro"]},
                            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []}]}
                """.formatted(data));
    }

    @AfterEach
    void nothingMountedAndTheHostFileKept() throws IOException {
        assertThat(MountTable.under(tmp)).isEmpty();
        assertThat(data.resolve("precious")).hasContent("host file");
    }

    @Test
    void theSpecMountsAStagedBindThatTheReleaseUnmountsBeforeDeleting() throws IOException {
        Bundles.create(bundle, spec, "uid", ROOTFS, new BindSources(List.of(allowed)), (s, b) -> {});

        JsonNode mounts = JSON.readTree(bundle.resolve("config.json").toFile()).path("mounts");
        Path staged = bundle.resolve("binds/0");
        assertThat(mounts.get(0).path("source").asText()).isEqualTo(staged.toString());
        assertThat(mounts.get(1).path("source").asText()).isEqualTo("tmpfs");
        assertThat(MountTable.isMountPoint(staged)).isTrue();
        assertThat(staged.resolve("precious")).hasContent("host file");

        Bundles.release(bundle);

        assertThat(bundle).doesNotExist();
    }

    @Test
    void aSourceSwappedForASymlinkIsNotMountedAndTheReleaseLeavesNothing() throws IOException {
        Path elsewhere = Files.createDirectory(tmp.resolve("elsewhere"));
        Files.move(data, allowed.resolve("data-moved"));
        Files.createSymbolicLink(data, elsewhere);

        assertThatThrownBy(() ->
                        Bundles.create(bundle, spec, "uid", ROOTFS, new BindSources(List.of(allowed)), (s, b) -> {}))
                .hasMessage("bind mount source " + data + " changed since the Container was prepared: " + data
                        + " has a symbolic link in it; not mounted");
        Bundles.release(bundle);

        assertThat(bundle).doesNotExist();
        Files.delete(data);
        Files.move(allowed.resolve("data-moved"), data);
    }
}
