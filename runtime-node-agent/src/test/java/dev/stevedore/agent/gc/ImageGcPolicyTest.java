package dev.stevedore.agent.gc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** kubelet's image GC decision: nothing up to the high threshold, then least recently used down to the low one. */
class ImageGcPolicyTest {
    private static final ImageGcPolicy KUBELET = ImageGcPolicy.DEFAULTS;
    private static final long MIB = 1 << 20;
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @Test
    void atOrUnderTheHighThresholdNothingGoesHoweverOldTheImages() {
        List<ImageGcPolicy.Candidate> old = List.of(image("old", 50, 0), image("older", 50, -3600));

        assertThat(KUBELET.toDelete(disk(85), old)).isEmpty();
        assertThat(KUBELET.toDelete(disk(10), old)).isEmpty();
    }

    @Test
    void aboveTheHighThresholdTheLeastRecentlyUsedGoUntilTheLowThresholdIsReached() {
        // 90 MiB of 100 used: 10 MiB must go to be at 80%.
        List<ImageGcPolicy.Candidate> candidates = List.of(
                image("used-a-minute-ago", 6, -60),
                image("used-an-hour-ago", 6, -3600),
                image("used-just-now", 50, 0),
                image("used-a-day-ago", 3, -86400));

        assertThat(names(KUBELET.toDelete(disk(90), candidates)))
                .containsExactly("used-a-day-ago", "used-an-hour-ago", "used-a-minute-ago");
    }

    @Test
    void whenTheUnusedImagesCannotFreeEnoughAllOfThemGo() {
        List<ImageGcPolicy.Candidate> candidates = List.of(image("b", 1, -10), image("a", 2, -20));

        assertThat(names(KUBELET.toDelete(disk(99), candidates))).containsExactly("a", "b");
    }

    @Test
    void imagesLastUsedAtTheSameTimeGoLargestFirstThenByName() {
        List<ImageGcPolicy.Candidate> candidates =
                List.of(image("small", 1, 0), image("z-large", 10, 0), image("a-large", 10, 0));

        assertThat(names(KUBELET.toDelete(disk(86), candidates))).containsExactly("a-large");
        assertThat(names(KUBELET.toDelete(disk(100), candidates))).containsExactly("a-large", "z-large");
    }

    @Test
    void diskPressureIsLessFreeThanTheThreshold() {
        assertThat(KUBELET.diskPressure(disk(89))).isFalse();
        assertThat(KUBELET.diskPressure(disk(90))).isFalse();
        assertThat(KUBELET.diskPressure(disk(91))).isTrue();
        assertThat(KUBELET.diskPressure(new DiskUsage(0, 0)))
                .as("a file system of no size")
                .isTrue();
    }

    @Test
    void thresholdsArePercentagesAndTheLowOneIsUnderTheHighOne() {
        assertThatThrownBy(() -> new ImageGcPolicy(80, 80, 10))
                .hasMessage("--image-gc-low-threshold (80) must be less than --image-gc-high-threshold (80)");
        assertThatThrownBy(() -> new ImageGcPolicy(101, 80, 10))
                .hasMessage("--image-gc-high-threshold must be a percentage from 0 to 100, not 101");
        assertThatThrownBy(() -> new ImageGcPolicy(85, 80, -1))
                .hasMessage("--disk-pressure-threshold must be a percentage from 0 to 100, not -1");
    }

    /** 100 MiB, {@code usedPercent} of it used. */
    private static DiskUsage disk(int usedPercent) {
        return new DiskUsage(100 * MIB, (100 - usedPercent) * MIB);
    }

    private static ImageGcPolicy.Candidate image(String name, long mib, long lastUsedSeconds) {
        return new ImageGcPolicy.Candidate(name, mib * MIB, T0.plusSeconds(lastUsedSeconds));
    }

    private static List<String> names(List<ImageGcPolicy.Candidate> chosen) {
        return chosen.stream().map(ImageGcPolicy.Candidate::image).toList();
    }
}
