package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeDeleteTest {
    @TempDir
    Path base;

    private Path outside;
    private Path tree;

    /** A tree whose symlinks aim out of it, at a directory with a file that must survive every delete. */
    @BeforeEach
    void treeWithSymlinksOut() throws IOException {
        outside = Files.createDirectory(base.resolve("outside"));
        Files.writeString(outside.resolve("precious"), "keep me");
        tree = base.resolve("tree");
        Files.createDirectories(tree.resolve("a/b"));
        Files.writeString(tree.resolve("a/b/file"), "x");
        Files.createSymbolicLink(tree.resolve("a/to-dir"), outside);
        Files.createSymbolicLink(tree.resolve("a/b/to-file"), outside.resolve("precious"));
        Files.createSymbolicLink(tree.resolve("dangling"), base.resolve("nowhere"));
    }

    /** A deep tree left by a failed test is beyond JUnit's own (recursive) clean-up: rm's fts walk handles it. */
    @AfterEach
    void removeWhatAFailedDeleteLeft() throws Exception {
        Path deep = base.resolve("deep");
        if (Files.exists(deep, LinkOption.NOFOLLOW_LINKS)) {
            new ProcessBuilder("rm", "-rf", deep.toString()).inheritIO().start().waitFor();
        }
    }

    @Test
    void deletesATreeAndItsSymlinksButNotWhatTheyPointAt() throws IOException {
        SafeDelete.deleteTree(tree);

        assertThat(tree).doesNotExist();
        assertOutsideUntouched();
    }

    @Test
    void aSymlinkGivenAsTheTreeIsDeletedNotFollowed() throws IOException {
        Path link = Files.createSymbolicLink(base.resolve("link"), outside);

        SafeDelete.deleteTree(link);

        assertThat(Files.exists(link, LinkOption.NOFOLLOW_LINKS)).isFalse();
        assertOutsideUntouched();
    }

    @Test
    void deletesAFile() throws IOException {
        Path file = Files.writeString(base.resolve("file"), "x");

        SafeDelete.deleteTree(file);

        assertThat(file).doesNotExist();
    }

    @Test
    void deletingWhatIsAbsentDoesNothing() throws IOException {
        SafeDelete.deleteTree(base.resolve("absent"));
        SafeDelete.deleteTree(base.resolve("absent/below"));

        assertThat(tree).exists();
    }

    @Test
    void deletingContentsKeepsTheDirectory() throws IOException {
        SafeDelete.deleteContents(tree);

        assertThat(tree).isEmptyDirectory();
        assertOutsideUntouched();
    }

    /**
     * What a container can make in its upper directory: a chain of directories far deeper than a thread stack
     * holds frames for (the agent runs with -Xss512k) and than a process may hold descriptors, with a file at the
     * bottom. It is deleted on a thread with the agent's stack size.
     */
    @Test
    void deletesATreeDeeperThanTheStackAndTheDescriptorLimit() throws Exception {
        Path deep = deepTree(base.resolve("deep"), 20_000);
        Throwable[] failure = new Throwable[1];
        Thread thread = new Thread(
                null,
                () -> {
                    try {
                        SafeDelete.deleteTree(deep);
                    } catch (Throwable e) {
                        failure[0] = e;
                    }
                },
                "delete",
                512 * 1024);
        thread.start();
        thread.join(Duration.ofMinutes(2).toMillis());

        assertThat(thread.isAlive()).as("still deleting after 2 minutes").isFalse();
        assertThat(failure[0]).isNull();
        assertThat(deep).doesNotExist();
    }

    @Test
    void deletesTheContentsOfADeepTree() throws IOException {
        Path deep = deepTree(base.resolve("deep"), 3_000);

        SafeDelete.deleteContents(deep);

        assertThat(deep).isEmptyDirectory();
    }

    /**
     * A chain of {@code depth} directories named d, with a file at the bottom. Built in rounds of chains short
     * enough for a path (PATH_MAX is 4096 bytes): each round makes a new short chain and moves the deep one into it.
     */
    static Path deepTree(Path top, int depth) throws IOException {
        int round = 1_000;
        Path chain = Path.of("d" + "/d".repeat(round - 1));
        Path deep = Files.createDirectories(top.resolveSibling("round").resolve(chain));
        Files.writeString(deep.resolve("bottom"), "x");
        Files.move(top.resolveSibling("round"), top);
        for (int made = round; made < depth; made += round) {
            Path next = Files.createDirectories(top.resolveSibling("round").resolve(chain));
            Files.move(top, next.resolve("d"));
            Files.move(top.resolveSibling("round"), top);
        }
        return top;
    }

    private void assertOutsideUntouched() throws IOException {
        try (Stream<Path> children = Files.list(outside)) {
            assertThat(children).containsExactly(outside.resolve("precious"));
        }
        assertThat(Files.readString(outside.resolve("precious"))).isEqualTo("keep me");
    }
}
