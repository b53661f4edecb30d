package dev.stevedore.agent.tasks;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An OCI runtime in memory: containers by id with their state, every command in {@link #calls}, and a command
 * made to fail once with {@link #failNext}. Enough to run the decisions and the executor without root.
 */
final class FakeRuntime implements OciRuntime {
    private final String name;
    private final Map<String, String> states = new LinkedHashMap<>();
    private final Map<String, String> failures = new HashMap<>();
    final List<String> calls = new ArrayList<>();
    long nextPid = 4242;

    FakeRuntime(String name) {
        this.name = name;
    }

    /** The next {@code command} (create, start, pause, resume, kill, delete) fails with this message. */
    void failNext(String command, String message) {
        failures.put(command, message);
    }

    void has(String id, String state) {
        states.put(id, state);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long create(
            String id,
            Path bundle,
            Path workDir,
            Path exitDir,
            Path socketDir,
            Path conmonDir,
            Path log,
            long logSizeMax)
            throws RuntimeCommandException {
        call("create", id);
        states.put(id, "created");
        return nextPid;
    }

    @Override
    public void start(String id) throws RuntimeCommandException {
        call("start", id);
        if (!"created".equals(states.get(id))) {
            throw new RuntimeCommandException(name + " start: cannot start a container that is " + states.get(id));
        }
        states.put(id, "running");
    }

    @Override
    public void pause(String id) throws RuntimeCommandException {
        call("pause", id);
        states.put(id, "paused");
    }

    @Override
    public void resume(String id) throws RuntimeCommandException {
        call("resume", id);
        states.put(id, "running");
    }

    @Override
    public void kill(String id, int signal) throws RuntimeCommandException {
        call("kill", id + " " + signal);
    }

    @Override
    public void delete(String id, boolean force) throws RuntimeCommandException {
        call("delete", id);
        states.remove(id);
    }

    @Override
    public Optional<String> state(String id) {
        return Optional.ofNullable(states.get(id));
    }

    @Override
    public Process exec(String id, Path process, Path pidFile, boolean terminal) {
        throw new UnsupportedOperationException("the fake runtime runs no processes");
    }

    @Override
    public void resizeTerminal(Process exec, int columns, int rows) {
        throw new UnsupportedOperationException("the fake runtime runs no processes");
    }

    @Override
    public Map<String, String> list() {
        Map<String, String> all = new LinkedHashMap<>();
        states.keySet().forEach(id -> all.put(id, "/fake/" + id));
        return all;
    }

    private void call(String command, String args) throws RuntimeCommandException {
        calls.add(command + " " + args);
        String failure = failures.remove(command);
        if (failure != null) {
            throw new RuntimeCommandException(name + " " + command + ": " + failure);
        }
    }
}
