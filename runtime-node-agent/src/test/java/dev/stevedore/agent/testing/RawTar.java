package dev.stevedore.agent.testing;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * Writes tar headers block by block, for what no tar writer produces: extended headers one after another before
 * one entry, streams longer than memory. Names are at most 100 bytes (no prefix field); the caller closes the
 * stream.
 */
public final class RawTar {
    private static final int BLOCK = 512;

    private final OutputStream out;

    public RawTar(OutputStream out) {
        this.out = out;
    }

    /** A PAX extended header ('x') with these records; it applies to the next entry. */
    public RawTar pax(String... records) {
        StringBuilder data = new StringBuilder();
        for (String record : records) {
            data.append(paxRecord(record));
        }
        byte[] bytes = data.toString().getBytes(StandardCharsets.UTF_8);
        header("PaxHeader", 'x', 0644, bytes.length);
        return data(bytes);
    }

    /** One PAX record, {@code "LEN key=value\n"}, its length counting itself. */
    public static String paxRecord(String keyValue) {
        int length = keyValue.length() + 2;
        while (Integer.toString(length).length() + keyValue.length() + 2 != length) {
            length = Integer.toString(length).length() + keyValue.length() + 2;
        }
        return length + " " + keyValue + "\n";
    }

    public RawTar dir(String name) {
        header(name, '5', 0755, 0);
        return this;
    }

    public RawTar file(String name, byte[] content) {
        header(name, '0', 0644, content.length);
        return data(content);
    }

    public RawTar symlink(String name, String target) {
        byte[] block = headerBlock(name, '2', 0777, 0);
        byte[] link = target.getBytes(StandardCharsets.UTF_8);
        if (link.length > 100) {
            throw new IllegalArgumentException("link target over 100 bytes: " + target);
        }
        System.arraycopy(link, 0, block, 157, link.length);
        return write(checksummed(block));
    }

    /** Zero bytes, as many as asked: after the end of an archive, the padding no reader needs. */
    public RawTar zeros(int count) {
        return write(new byte[count]);
    }

    /** The two zero blocks that end an archive. */
    public RawTar end() {
        return write(new byte[2 * BLOCK]);
    }

    private void header(String name, char type, int mode, long size) {
        write(checksummed(headerBlock(name, type, mode, size)));
    }

    private RawTar data(byte[] bytes) {
        write(bytes);
        return write(new byte[(BLOCK - bytes.length % BLOCK) % BLOCK]);
    }

    private static byte[] headerBlock(String name, char type, int mode, long size) {
        byte[] block = new byte[BLOCK];
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        if (n.length > 100) {
            throw new IllegalArgumentException("name over 100 bytes: " + name);
        }
        System.arraycopy(n, 0, block, 0, n.length);
        octal(block, 100, 8, mode);
        octal(block, 108, 8, 0);
        octal(block, 116, 8, 0);
        octal(block, 124, 12, size);
        octal(block, 136, 12, 0);
        block[156] = (byte) type;
        System.arraycopy("ustar\u000000".getBytes(StandardCharsets.US_ASCII), 0, block, 257, 8);
        return block;
    }

    private static byte[] checksummed(byte[] block) {
        java.util.Arrays.fill(block, 148, 156, (byte) ' ');
        long sum = 0;
        for (byte b : block) {
            sum += b & 0xff;
        }
        octal(block, 148, 7, sum);
        return block;
    }

    private static void octal(byte[] block, int off, int len, long value) {
        String s = String.format("%0" + (len - 1) + "o", value);
        System.arraycopy(s.getBytes(StandardCharsets.US_ASCII), 0, block, off, len - 1);
    }

    private RawTar write(byte[] bytes) {
        try {
            out.write(bytes);
            return this;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
