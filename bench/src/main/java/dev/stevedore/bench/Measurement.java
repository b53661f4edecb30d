package dev.stevedore.bench;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One figure a scenario reports: the median and 99th percentile of {@code n} samples in {@code unit}, optionally
 * beside the same figure measured for a peer (another implementation doing the same work), and any further
 * figures under {@code extra} keys.
 */
public record Measurement(
        String name, String unit, int n, double p50, double p99, Peer peer, Map<String, Object> extra) {

    /** The same figure for something Stevedore is compared with. */
    public record Peer(String name, double p50) {}

    public Measurement {
        extra = Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    }

    /** The median and 99th percentile of {@code samples}, which must not be empty. */
    public static Measurement of(String name, String unit, double[] samples) {
        if (samples.length == 0) {
            throw new IllegalArgumentException(name + ": no samples");
        }
        double[] sorted = samples.clone();
        Arrays.sort(sorted);
        return new Measurement(
                name, unit, sorted.length, percentile(sorted, 50), percentile(sorted, 99), null, Map.of());
    }

    /** A figure observed once, such as a total or a peak: its percentiles are the value itself. */
    public static Measurement single(String name, String unit, double value) {
        return new Measurement(name, unit, 1, value, value, null, Map.of());
    }

    /** This measurement with one more extra figure; keys keep their insertion order in the output. */
    public Measurement with(String key, Object value) {
        Map<String, Object> more = new LinkedHashMap<>(extra);
        more.put(key, value);
        return new Measurement(name, unit, n, p50, p99, peer, more);
    }

    /**
     * The median and 99th percentile of {@code samples} beside the peer's median of {@code peerSamples}, with the
     * peer's sample count and 99th percentile as extras "peer_n" and "peer_p99".
     */
    public static Measurement compared(
            String name, String unit, double[] samples, String peerName, double[] peerSamples) {
        if (peerSamples.length == 0) {
            throw new IllegalArgumentException(name + ": no samples of " + peerName);
        }
        double[] sorted = peerSamples.clone();
        Arrays.sort(sorted);
        return of(name, unit, samples)
                .withPeer(peerName, percentile(sorted, 50))
                .with("peer_n", sorted.length)
                .with("peer_p99", Report.round(percentile(sorted, 99)));
    }

    public Measurement withPeer(String peerName, double peerP50) {
        return new Measurement(name, unit, n, p50, p99, new Peer(peerName, peerP50), extra);
    }

    /** How many times the peer's median this one's is: above 1 means Stevedore is slower (or bigger). */
    public double ratioP50() {
        return peer == null || peer.p50() == 0 ? Double.NaN : p50 / peer.p50();
    }

    /** Nearest-rank percentile: always one of the samples, never an interpolation between two. */
    static double percentile(double[] sorted, double p) {
        int rank = (int) Math.ceil(p / 100 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length, rank) - 1)];
    }
}
