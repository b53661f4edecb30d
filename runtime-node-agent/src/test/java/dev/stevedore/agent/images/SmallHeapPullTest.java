package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.SocketPolicy;
import okio.Buffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Huge and endless registry bodies against a pull in a JVM started with the agent's shipped options
 * (runtime-node-agent/jvm.options, -Xmx128m): each body is 192 MiB, more than that heap can hold, so a pull that
 * buffered one would end in an OutOfMemoryError rather than the refusal asserted. A forked JVM is the decisive
 * check: the limit is the one the agent runs with, and an allocation the test JVM's larger heap would absorb fails.
 */
class SmallHeapPullTest {
    private static final Path JVM_OPTIONS = Path.of("jvm.options");
    private static final int HUGE = 192 * 1024 * 1024;
    private static final Buffer HUGE_BODY = new Buffer();

    @TempDir
    Path root;

    private ScriptedRegistry registry;
    private final ImageBlobs image = ImageBlobs.small();

    @BeforeAll
    static void makeHugeBody() {
        byte[] chunk = new byte[1024 * 1024];
        for (int i = 0; i < HUGE / chunk.length; i++) {
            HUGE_BODY.write(chunk);
        }
    }

    @AfterAll
    static void freeHugeBody() {
        HUGE_BODY.clear();
    }

    @BeforeEach
    void start() {
        registry = new ScriptedRegistry("127.0.0.1");
        image.serve(registry, "1");
    }

    @AfterEach
    void stop() throws IOException {
        registry.close();
    }

    @Test
    void theForkedPullRunsUnderTheShippedHeapLimit() throws Exception {
        assertThat(Files.readAllLines(JVM_OPTIONS)).contains("-Xmx128m");

        List<String> output = pullInAgentJvm();

        assertThat(output.get(0)).startsWith("max heap ");
        assertThat(Long.parseLong(output.get(0).substring("max heap ".length())))
                .isLessThanOrEqualTo(128L << 20);
        assertThat(output)
                .last()
                .asString()
                .startsWith("pulled "
                        + java.util.Objects.requireNonNull(
                                        dev.stevedore.agent.content.Digest.sha256Of(image.manifest()))
                                .toString());
    }

    @Test
    void aHugeManifestWithoutContentLength() throws Exception {
        registry.on(ScriptedRegistry.manifestPath("1"), () -> huge().setHeader("Content-Type", Oci.OCI_MANIFEST));

        assertThat(pullInAgentJvm()).last().asString().startsWith("failed InvalidImage: manifest 1 is larger than");
        assertNoPartialDownloads();
    }

    @Test
    void aHugeConfigBehindASmallDescriptor() throws Exception {
        registry.blob(image.configDigest(), this::huge);

        assertThat(pullInAgentJvm())
                .last()
                .asString()
                .startsWith("failed DigestMismatch:")
                .contains("larger than the expected " + image.config().length + " bytes");
        assertNoPartialDownloads();
    }

    @Test
    void anEndlessLayer() throws Exception {
        registry.blob(image.layerDigest(), this::huge);

        assertThat(pullInAgentJvm())
                .last()
                .asString()
                .startsWith("failed DigestMismatch:")
                .contains("larger than the expected " + image.layer().length + " bytes");
        assertNoPartialDownloads();
    }

    @Test
    void aHugeTokenResponse() throws Exception {
        registry.on(
                ScriptedRegistry.manifestPath("1"),
                () -> new MockResponse()
                        .setResponseCode(401)
                        .setHeader("WWW-Authenticate", "Bearer realm=\"" + registry.url("/token") + "\""));
        registry.on("/token", this::huge);

        assertThat(pullInAgentJvm()).last().asString().startsWith("failed InvalidImage: token is larger than");
    }

    @Test
    void aHugeErrorBody() throws Exception {
        registry.on(ScriptedRegistry.manifestPath("1"), () -> huge().setResponseCode(404));

        assertThat(pullInAgentJvm()).last().asString().startsWith("failed ManifestUnknown: manifest 1: HTTP 404");
    }

    /** 192 MiB, its end the connection's close: no Content-Length warns the reader. */
    private MockResponse huge() {
        return new MockResponse()
                .setBody(HUGE_BODY.clone())
                .removeHeader("Content-Length")
                .setSocketPolicy(SocketPolicy.DISCONNECT_AT_END);
    }

    private List<String> pullInAgentJvm() throws IOException, InterruptedException {
        Path output = root.resolve("pull.out");
        Process process = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "@" + JVM_OPTIONS.toAbsolutePath(),
                        "-cp",
                        System.getProperty("java.class.path"),
                        PullMain.class.getName(),
                        registry.reference("1"),
                        root.resolve("agent").toString())
                .redirectErrorStream(true)
                .redirectOutput(output.toFile())
                .start();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError("the pull did not end in 120s: " + Files.readString(output));
        }
        String text = Files.readString(output);
        assertThat(process.exitValue()).as(text).isZero();
        return text.lines()
                .filter(l -> l.startsWith("max heap") || l.startsWith("pulled") || l.startsWith("failed"))
                .toList();
    }

    private void assertNoPartialDownloads() throws IOException {
        try (Stream<Path> ingest = Files.list(root.resolve("agent/content/ingest"))) {
            assertThat(ingest).isEmpty();
        }
        try (Stream<Path> records = Files.list(root.resolve("agent/images"))) {
            assertThat(records.filter(f -> f.toString().endsWith(".json"))).isEmpty();
        }
    }
}
