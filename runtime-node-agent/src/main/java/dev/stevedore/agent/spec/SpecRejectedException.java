package dev.stevedore.agent.spec;

/** A Container whose spec the node refuses to generate. */
public class SpecRejectedException extends Exception {
    private static final long serialVersionUID = 1L;

    public SpecRejectedException(String message) {
        super(message);
    }
}
