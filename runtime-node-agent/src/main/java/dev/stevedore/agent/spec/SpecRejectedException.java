package dev.stevedore.agent.spec;

/**
 * A Container whose spec the node refuses to generate. The message is meant for the Container's status: it says
 * what is wrong in terms of the Container's spec or its image, never with a stack trace's vocabulary.
 */
public class SpecRejectedException extends Exception {
    private static final long serialVersionUID = 1L;

    public SpecRejectedException(String message) {
        super(message);
    }
}
