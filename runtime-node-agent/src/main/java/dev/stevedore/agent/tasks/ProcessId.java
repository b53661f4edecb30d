package dev.stevedore.agent.tasks;

/** A process as the agent records it: its PID and, where known, its start time (see {@link ProcessStart}). */
public record ProcessId(long pid, Long startTime) {}
