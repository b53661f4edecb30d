package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.stream.Stream;
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

    private void assertOutsideUntouched() throws IOException {
        try (Stream<Path> children = Files.list(outside)) {
            assertThat(children).containsExactly(outside.resolve("precious"));
        }
        assertThat(Files.readString(outside.resolve("precious"))).isEqualTo("keep me");
    }
}
