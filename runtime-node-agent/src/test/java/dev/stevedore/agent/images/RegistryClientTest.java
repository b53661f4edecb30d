package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Set;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import okhttp3.OkHttpClient;

class RegistryClientTest {

    @ParameterizedTest
    @CsvSource({
            "127.0.0.1:5000,       http",
            "127.1.2.3,            http",
            "localhost:5000,       http",
            "[::1]:5000,           http",
            "registry.local:5000,  http",
            "registry.local:5001,  https",
            "quay.io,              https",
            "127.0.0.1.nip.io,     https",
            "10.0.0.1:5000,        https",
    })
    void speaksPlainHttpOnlyToLoopbackAndInsecureRegistries(String registry, String scheme) {
        RegistryClient client = new RegistryClient(new OkHttpClient(), registry, "test/busybox", null,
                Set.of("registry.local:5000"));

        assertThat(client.scheme()).isEqualTo(scheme);
    }
}
