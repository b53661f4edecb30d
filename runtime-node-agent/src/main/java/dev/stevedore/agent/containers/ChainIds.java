package dev.stevedore.agent.containers;

import dev.stevedore.agent.content.Digest;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/**
 * Chain IDs, the OCI image spec's names for a stack of layers: the first is the first layer's diff ID, each next
 * one sha256 of "parent-chain-id diff-id". Equal stacks in different images share snapshots through them.
 */
public final class ChainIds {
    private ChainIds() {}

    public static List<String> of(List<Digest> diffIds) {
        List<String> chain = new ArrayList<>(diffIds.size());
        String parent = null;
        for (Digest diffId : diffIds) {
            parent = parent == null ? diffId.toString() : sha256(parent + " " + diffId);
            chain.add(parent);
        }
        return chain;
    }

    private static String sha256(String text) {
        try {
            return Digest.sha256(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)))
                    .toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
