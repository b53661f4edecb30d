package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * An OCI runtime as the agent drives it, one container per task (the runtime id): created under a monitor that
 * writes the task's log and, when its process exits, an exit file; then started, paused, resumed, signalled and
 * deleted. {@link ConmonRuntime} is the real one (runc or crun under conmon); tests use a fake.
 */
public interface OciRuntime {

    /** runc or crun, as a Container's spec.runtime.name says. */
    String name();

    /**
     * Creates (does not start) the container; returns its init process's pid. Its exit code goes to
     * {@code exitDir/<id>}; {@code conmonDir} is the monitor's working directory.
     */
    long create(
            String id,
            Path bundle,
            Path workDir,
            Path exitDir,
            Path socketDir,
            Path conmonDir,
            Path log,
            long logSizeMax)
            throws RuntimeCommandException, IOException;

    /** Runs the created container's process: at most once per container. */
    void start(String id) throws RuntimeCommandException, IOException;

    void pause(String id) throws RuntimeCommandException, IOException;

    void resume(String id) throws RuntimeCommandException, IOException;

    /** Sends a signal by number to the container's init process. */
    void kill(String id, int signal) throws RuntimeCommandException, IOException;

    /** Removes the runtime's state and cgroup; {@code force} kills a live container first. Idempotent. */
    void delete(String id, boolean force) throws RuntimeCommandException, IOException;

    /** The runtime's status of the container (created, running, paused, stopped), empty when it has none. */
    Optional<String> state(String id) throws IOException;

    /**
     * Starts a process in the running container, as {@code runc exec} does in the foreground: {@code process} is
     * its OCI process spec; the process's pid (in the node's namespace) is written to {@code pidFile}. With a
     * terminal, the returned process's stdin and stdout are that terminal's (stderr joins stdout), and
     * {@link #resizeTerminal} sizes it.
     */
    Process exec(String id, Path process, Path pidFile, boolean terminal) throws IOException;

    /** Sets the size of the terminal of an {@link #exec} with a terminal; the process gets SIGWINCH. */
    void resizeTerminal(Process exec, int columns, int rows) throws IOException;

    /** IDs of every container this runtime knows, with their bundles. */
    Map<String, String> list() throws IOException;
}
