package dev.stevedore.agent.spec;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The canonical bytes of a JSON tree: UTF-8, object keys sorted (by UTF-16 code units, as RFC 8785 does) at every
 * level, no whitespace between tokens. Two trees that differ only in key order give the same bytes, so the digest
 * of a spec does not depend on how it was built.
 */
final class CanonicalJson {
    /** A mapper's factory: writing a scalar node needs the mapper as codec. Default settings, never changed. */
    private static final JsonFactory FACTORY = new ObjectMapper().getFactory();

    private CanonicalJson() {}

    static byte[] bytes(JsonNode node) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator generator = FACTORY.createGenerator(out)) {
            write(node, generator);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // writing to memory
        }
        return out.toByteArray();
    }

    /** {@code sha256:<hex>} of the canonical bytes. */
    static String sha256(JsonNode node) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(bytes(node));
            return "sha256:" + java.util.HexFormat.of().formatHex(hash);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    private static void write(JsonNode node, JsonGenerator generator) throws IOException {
        if (node.isObject()) {
            List<String> names = new ArrayList<>();
            for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
                names.add(it.next());
            }
            names.sort(null);
            generator.writeStartObject();
            for (String name : names) {
                generator.writeFieldName(name);
                write(node.get(name), generator);
            }
            generator.writeEndObject();
        } else if (node.isArray()) {
            generator.writeStartArray();
            for (JsonNode element : node) {
                write(element, generator);
            }
            generator.writeEndArray();
        } else {
            // Scalars as Jackson writes them: stable for a given tree, which is all a digest of our own specs needs.
            generator.writeTree(node);
        }
    }
}
