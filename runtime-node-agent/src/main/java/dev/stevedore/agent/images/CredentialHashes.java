package dev.stevedore.agent.images;

import dev.stevedore.agent.fs.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Keyed hashes of registry credentials, HMAC-SHA256 under a random key of this node, for the image records to say
 * which credentials pulled an image without holding them. The key lies beside the records, readable by root only
 * (AtomicFiles writes 0600): without it a hash read off the disk cannot be tested against guessed passwords, and
 * the same password hashes differently on every node.
 */
final class CredentialHashes {
    private static final int KEY_BYTES = 32;

    private final Path keyFile;
    private byte[] key;

    CredentialHashes(Path keyFile) {
        this.keyFile = keyFile;
    }

    /** The hash of {@code auth} as credentials for {@code registry} ({@code host[:port]}). */
    String of(String registry, RegistryAuth auth) throws IOException {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key(), "HmacSHA256"));
            // NUL cannot occur in a host name and separates fields that may hold anything else.
            String message = registry + '\0' + auth.username() + '\0' + auth.password();
            return HexFormat.of().formatHex(mac.doFinal(message.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("every JDK has HmacSHA256", e);
        }
    }

    /** Read once, made on first use: a key of another length is a write a crash cut short, and is replaced. */
    private synchronized byte[] key() throws IOException {
        if (key == null) {
            try {
                byte[] stored = Files.readAllBytes(keyFile);
                key = stored.length == KEY_BYTES ? stored : null;
            } catch (NoSuchFileException none) {
                key = null;
            }
            if (key == null) {
                byte[] fresh = new byte[KEY_BYTES];
                new SecureRandom().nextBytes(fresh);
                AtomicFiles.write(keyFile, fresh);
                key = fresh;
            }
        }
        return key;
    }
}
