package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.Digest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ImageReferenceTest {
    private static final String HEX = "a".repeat(64);

    @ParameterizedTest
    @CsvSource({
        "busybox,                              docker.io/library/busybox:latest",
        "busybox:1.36,                         docker.io/library/busybox:1.36",
        "library/busybox,                      docker.io/library/busybox:latest",
        "docker.io/busybox,                    docker.io/library/busybox:latest",
        "index.docker.io/library/busybox:1,    docker.io/library/busybox:1",
        "bitnami/redis:7,                      docker.io/bitnami/redis:7",
        "quay.io/coreos/etcd:v3.5,             quay.io/coreos/etcd:v3.5",
        "127.0.0.1:5000/test/busybox,          127.0.0.1:5000/test/busybox:latest",
        "localhost/busybox:x,                  localhost/busybox:x",
        "registry.example.com:443/a/b/c:tag,   registry.example.com:443/a/b/c:tag",
        "[::1]:5000/busybox:1,                 [::1]:5000/busybox:1",
    })
    void normalizesAsDockerAndContainerdDo(String reference, String normalized) {
        assertThat(ImageReference.parse(reference)).hasToString(normalized);
    }

    @Test
    void aDigestDecidesWhatIsFetchedAndTheTagStaysInTheName() {
        ImageReference ref = ImageReference.parse("127.0.0.1:5000/test/busybox:1@sha256:" + HEX);

        assertThat(ref.registry()).isEqualTo("127.0.0.1:5000");
        assertThat(ref.repository()).isEqualTo("test/busybox");
        assertThat(ref.tag()).isEqualTo("1");
        assertThat(ref.digest()).isEqualTo(new Digest("sha256", HEX));
        assertThat(ref.manifestReference()).isEqualTo("sha256:" + HEX);
        assertThat(ImageReference.parse("busybox@sha256:" + HEX))
                .hasToString("docker.io/library/busybox@sha256:" + HEX)
                .extracting(ImageReference::tag)
                .isNull();
    }

    @Test
    void dockerHubIsSpokenToAtItsApiHost() {
        assertThat(ImageReference.parse("busybox").apiHost()).isEqualTo("registry-1.docker.io");
        assertThat(ImageReference.parse("quay.io/a/b").apiHost()).isEqualTo("quay.io");
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "Busybox",
                "busybox:",
                "busybox@sha256:abc",
                "busybox@md5:" + "0",
                "a//b",
                "../etc/passwd",
                "busybox:la/test",
                "registry:5000/../x",
                "-x",
                "a b"
            })
    void rejectsWhatIsNotAReference(String reference) {
        assertThatThrownBy(() -> ImageReference.parse(reference)).isInstanceOf(IllegalArgumentException.class);
    }
}
