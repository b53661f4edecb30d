package dev.stevedore.agent.snapshots;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A strict reader of ustar, GNU and PAX tar streams, as image layers use them. It exists, instead of
 * commons-compress' reader, because that one decodes every PAX value as UTF-8 and so corrupts binary xattrs such
 * as security.capability; and because a hostile layer is better met by a parser that accepts only what layers
 * need: sparse files, multi-volume and unknown entry types are rejected.
 */
final class TarReader {
    private static final int BLOCK = 512;

    private static final String XATTR_PREFIX = "SCHILY.xattr.";

    private final InputStream in;
    private final LayerLimits limits;
    private final byte[] header = new byte[BLOCK];
    private long remaining;
    private long padding;
    private long entries;
    /** What the extended headers before the next entry may still hold: bytes, and PAX records. */
    private long metaBudget;

    private long paxRecordBudget;

    TarReader(InputStream in, LayerLimits limits) {
        this.in = in;
        this.limits = limits;
    }

    /** The next entry, or null at the end of the archive. Skips what is left of the previous entry's data. */
    TarEntry next() throws IOException {
        skip(remaining + padding);
        remaining = 0;
        padding = 0;
        Map<String, byte[]> pax = new HashMap<>();
        String longName = null;
        String longLink = null;
        metaBudget = limits.maxPaxSize();
        paxRecordBudget = limits.maxPaxRecords();
        while (true) {
            if (!readHeader()) {
                return null;
            }
            char typeflag = (char) header[156];
            long size = number(124, 12, "size");
            switch (typeflag) {
                case 'x' -> pax.putAll(parsePax(readMeta(size)));
                case 'g' -> readMeta(size); // global PAX headers: ignored, as containerd does
                case 'L' -> longName = cString(readMeta(size));
                case 'K' -> longLink = cString(readMeta(size));
                default -> {
                    if (++entries > limits.maxEntries()) {
                        throw LayerLimits.exceeded("entries", limits.maxEntries(), LayerLimits.MAX_ENTRIES_FLAG);
                    }
                    return entry(typeflag, size, pax, longName, longLink);
                }
            }
        }
    }

    /** The data of the entry {@link #next} returned last. */
    InputStream content() {
        return new InputStream() {
            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (remaining == 0) {
                    return -1;
                }
                int n = in.read(b, off, (int) Math.min(len, remaining));
                if (n < 0) {
                    throw new LayerRejectedException("truncated archive");
                }
                remaining -= n;
                return n;
            }
        };
    }

    private TarEntry entry(char typeflag, long size, Map<String, byte[]> pax, String longName, String longLink)
            throws IOException {
        String name = present(pax, "path") ? utf8(pax.get("path")) : longName != null ? longName : ustarName();
        String link =
                present(pax, "linkpath") ? utf8(pax.get("linkpath")) : longLink != null ? longLink : string(157, 100);
        if (present(pax, "size")) {
            size = decimal(pax.get("size"), "size");
        }
        TarEntry.Type type = switch (typeflag) {
            case '0', '7' -> TarEntry.Type.FILE;
            case '\0' -> name.endsWith("/") ? TarEntry.Type.DIRECTORY : TarEntry.Type.FILE; // pre-POSIX tars
            case '1' -> TarEntry.Type.HARDLINK;
            case '2' -> TarEntry.Type.SYMLINK;
            case '3' -> TarEntry.Type.CHAR_DEVICE;
            case '4' -> TarEntry.Type.BLOCK_DEVICE;
            case '5' -> TarEntry.Type.DIRECTORY;
            case '6' -> TarEntry.Type.FIFO;
            default ->
                throw new LayerRejectedException("unsupported tar entry type '" + printable(typeflag) + "': " + name);
        };
        if (pax.keySet().stream().anyMatch(k -> k.startsWith("GNU.sparse."))) {
            throw new LayerRejectedException("sparse files are not supported: " + name);
        }
        long uid = present(pax, "uid") ? decimal(pax.get("uid"), "uid") : number(108, 8, "uid");
        long gid = present(pax, "gid") ? decimal(pax.get("gid"), "gid") : number(116, 8, "gid");
        if (uid > 0xffffffffL || gid > 0xffffffffL) {
            throw new LayerRejectedException("uid/gid out of range: " + name);
        }
        FileTime mtime = present(pax, "mtime")
                ? paxTime(pax.get("mtime"))
                : FileTime.from(Instant.ofEpochSecond(number(136, 12, "mtime")));
        Map<String, byte[]> xattrs = new LinkedHashMap<>();
        pax.forEach((k, v) -> {
            if (k.startsWith(XATTR_PREFIX) && k.length() > XATTR_PREFIX.length()) {
                xattrs.put(k.substring(XATTR_PREFIX.length()), v);
            }
        });
        boolean device = type == TarEntry.Type.CHAR_DEVICE || type == TarEntry.Type.BLOCK_DEVICE;
        // Only regular files have data. As Go's archive/tar reads them (isHeaderOnlyType), and so the image tools
        // built on it, any other entry's size is ignored: the next header follows right after this one.
        long dataSize = type == TarEntry.Type.FILE ? size : 0;
        remaining = dataSize;
        padding = (BLOCK - dataSize % BLOCK) % BLOCK;
        return new TarEntry(
                name,
                type,
                dataSize,
                mode(),
                (int) uid,
                (int) gid,
                mtime,
                link,
                device ? number(329, 8, "devmajor") : 0,
                device ? number(337, 8, "devminor") : 0,
                xattrs);
    }

    /** Reads one header block; false at the end of the archive (a zero block, or the stream's end). */
    private boolean readHeader() throws IOException {
        int n = in.readNBytes(header, 0, BLOCK);
        if (n == 0) {
            return false;
        }
        if (n < BLOCK) {
            throw new LayerRejectedException("truncated archive");
        }
        boolean zero = true;
        for (byte b : header) {
            zero &= b == 0;
        }
        if (zero) {
            return false;
        }
        long expected = number(148, 8, "checksum");
        long unsigned = 0;
        long signed = 0;
        for (int i = 0; i < BLOCK; i++) {
            byte b = i >= 148 && i < 156 ? (byte) ' ' : header[i];
            unsigned += b & 0xff;
            signed += b;
        }
        if (expected != unsigned && expected != signed) {
            throw new LayerRejectedException("not a tar archive (bad header checksum)");
        }
        return true;
    }

    /**
     * An extended header's data, within what the headers before one entry may hold altogether; each header's own
     * block counts too, so that a stream of empty extended headers ends.
     */
    private byte[] readMeta(long size) throws IOException {
        if (size + BLOCK > metaBudget) {
            throw LayerLimits.exceeded(
                    "bytes of extended (PAX) headers for one entry",
                    limits.maxPaxSize(),
                    LayerLimits.MAX_PAX_SIZE_FLAG);
        }
        metaBudget -= size + BLOCK;
        byte[] data = in.readNBytes((int) size);
        if (data.length < size) {
            throw new LayerRejectedException("truncated archive");
        }
        skip((BLOCK - size % BLOCK) % BLOCK);
        return data;
    }

    /** PAX records are {@code "LEN KEY=VALUE\n"}; values stay bytes because xattr values are binary. */
    private Map<String, byte[]> parsePax(byte[] data) throws LayerRejectedException {
        Map<String, byte[]> records = new HashMap<>();
        int pos = 0;
        while (pos < data.length) {
            if (--paxRecordBudget < 0) {
                throw LayerLimits.exceeded(
                        "PAX records for one entry", limits.maxPaxRecords(), LayerLimits.MAX_PAX_RECORDS_FLAG);
            }
            int space = indexOf(data, (byte) ' ', pos, Math.min(data.length, pos + 20));
            long len = space < 0 ? -1 : decimal(Arrays.copyOfRange(data, pos, space), "PAX record length");
            if (len < 5 || pos + len > data.length || data[(int) (pos + len - 1)] != '\n') {
                throw new LayerRejectedException("malformed PAX header");
            }
            int end = (int) (pos + len - 1);
            int equals = indexOf(data, (byte) '=', space + 1, end);
            if (equals < 0) {
                throw new LayerRejectedException("malformed PAX header");
            }
            String key = new String(data, space + 1, equals - space - 1, StandardCharsets.UTF_8);
            records.put(key, Arrays.copyOfRange(data, equals + 1, end));
            pos = end + 1;
        }
        return records;
    }

    private String ustarName() {
        String name = string(0, 100);
        boolean posixUstar =
                Arrays.equals(Arrays.copyOfRange(header, 257, 263), "ustar\0".getBytes(StandardCharsets.US_ASCII));
        String prefix = posixUstar ? string(345, 155) : "";
        return prefix.isEmpty() ? name : prefix + "/" + name;
    }

    private int mode() throws LayerRejectedException {
        return (int) (number(100, 8, "mode") & 07777);
    }

    /** A numeric header field: octal ASCII, or GNU base-256 when the high bit of the first byte is set. */
    private long number(int off, int len, String field) throws LayerRejectedException {
        if ((header[off] & 0x80) != 0) {
            if ((header[off] & 0x40) != 0) {
                throw new LayerRejectedException("negative " + field + " in tar header");
            }
            long v = header[off] & 0x3f;
            for (int i = 1; i < len; i++) {
                if (v >>> 55 != 0) {
                    throw new LayerRejectedException(field + " too large in tar header");
                }
                v = (v << 8) | (header[off + i] & 0xff);
            }
            return v;
        }
        long v = 0;
        int i = off;
        int end = off + len;
        while (i < end && (header[i] == ' ' || header[i] == 0)) {
            i++;
        }
        for (; i < end && header[i] != ' ' && header[i] != 0; i++) {
            if (header[i] < '0' || header[i] > '7' || v >>> 60 != 0) {
                throw new LayerRejectedException("invalid " + field + " in tar header");
            }
            v = (v << 3) | (header[i] - '0');
        }
        return v;
    }

    private static long decimal(byte[] value, String field) throws LayerRejectedException {
        String s = new String(value, StandardCharsets.US_ASCII);
        try {
            long v = Long.parseLong(s);
            if (v < 0) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new LayerRejectedException("invalid " + field + " in PAX header: " + s);
        }
    }

    private static FileTime paxTime(byte[] value) throws LayerRejectedException {
        String s = new String(value, StandardCharsets.US_ASCII);
        try {
            BigDecimal seconds = new BigDecimal(s);
            return FileTime.from(Instant.ofEpochSecond(
                    seconds.longValue(),
                    seconds.remainder(BigDecimal.ONE).movePointRight(9).intValue()));
        } catch (NumberFormatException | ArithmeticException | java.time.DateTimeException e) {
            throw new LayerRejectedException("invalid mtime in PAX header: " + s);
        }
    }

    private String string(int off, int len) {
        int end = off;
        while (end < off + len && header[end] != 0) {
            end++;
        }
        return new String(header, off, end - off, StandardCharsets.UTF_8);
    }

    private static String cString(byte[] data) {
        int end = indexOf(data, (byte) 0, 0, data.length);
        return new String(data, 0, end < 0 ? data.length : end, StandardCharsets.UTF_8);
    }

    /** An empty PAX value unsets the field, so the ustar header's value applies. */
    private static boolean present(Map<String, byte[]> pax, String key) {
        return pax.containsKey(key) && pax.get(key).length > 0;
    }

    private static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    private static int indexOf(byte[] data, byte b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (data[i] == b) {
                return i;
            }
        }
        return -1;
    }

    private static String printable(char c) {
        return c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c);
    }

    private void skip(long n) throws IOException {
        try {
            in.skipNBytes(n);
        } catch (EOFException e) {
            throw new LayerRejectedException("truncated archive");
        }
    }
}
