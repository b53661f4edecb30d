import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Sets the creation time of every entry of a JKS keystore to one time and signs it again with its password, so the
 * same certificates give the same bytes: Debian's ca-certificates-java stamps each entry of the JRE's cacerts with the
 * time of the build. hack/build-base-images.sh runs it as {@code java hack/ReproducibleJks.java FILE EPOCH_SECONDS}.
 *
 * <p>The JKS format (the JDK's sun.security.provider.JavaKeyStore): magic, version 2, the entry count, then per entry
 * a tag, the alias and the creation time in milliseconds before the entry itself; last, SHA-1 over the password
 * (UTF-16BE), the words "Mighty Aphrodite" and every byte before it.
 */
public final class ReproducibleJks {
    private static final int MAGIC = 0xFEEDFEED;
    private static final int PRIVATE_KEY = 1;
    private static final int TRUSTED_CERT = 2;
    private static final int DIGEST_BYTES = 20;
    private static final String PASSWORD = "changeit"; // Debian's, the JDK's default

    public static void main(String[] args) throws IOException, NoSuchAlgorithmException {
        Path file = Path.of(args[0]);
        long millis = Long.parseLong(args[1]) * 1000;
        byte[] store = Files.readAllBytes(file);
        ByteBuffer jks = ByteBuffer.wrap(store, 0, store.length - DIGEST_BYTES);
        if (jks.getInt() != MAGIC || jks.getInt() != 2) {
            throw new IOException(file + " is not a JKS keystore of version 2");
        }
        int count = jks.getInt();
        for (int i = 0; i < count; i++) {
            int tag = jks.getInt();
            skipUtf(jks); // alias
            jks.putLong(millis);
            if (tag == PRIVATE_KEY) {
                skip(jks, jks.getInt());
                int chain = jks.getInt();
                for (int c = 0; c < chain; c++) {
                    skipCertificate(jks);
                }
            } else if (tag == TRUSTED_CERT) {
                skipCertificate(jks);
            } else {
                throw new IOException(file + ": unknown entry tag " + tag);
            }
        }
        if (jks.hasRemaining()) {
            throw new IOException(file + ": " + jks.remaining() + " bytes after the last entry");
        }
        MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
        sha1.update(PASSWORD.getBytes(StandardCharsets.UTF_16BE));
        sha1.update("Mighty Aphrodite".getBytes(StandardCharsets.UTF_8));
        sha1.update(store, 0, store.length - DIGEST_BYTES);
        System.arraycopy(sha1.digest(), 0, store, store.length - DIGEST_BYTES, DIGEST_BYTES);
        Files.write(file, store);
    }

    private static void skipCertificate(ByteBuffer jks) {
        skipUtf(jks); // the certificate type
        skip(jks, jks.getInt());
    }

    private static void skipUtf(ByteBuffer jks) {
        skip(jks, Short.toUnsignedInt(jks.getShort()));
    }

    private static void skip(ByteBuffer jks, int bytes) {
        jks.position(jks.position() + bytes);
    }
}
