package dev.stevedore.agent.tasks;

/** The OCI runtime refused or failed a command; the message is the runtime's own. */
public final class RuntimeCommandException extends Exception {
    private static final long serialVersionUID = 1L;

    public RuntimeCommandException(String message) {
        super(message);
    }
}
