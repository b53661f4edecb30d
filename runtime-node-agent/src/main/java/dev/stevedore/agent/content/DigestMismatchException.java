package dev.stevedore.agent.content;

import java.io.IOException;

/** The bytes of a blob do not hash to the digest that names them. */
public class DigestMismatchException extends IOException {
    private static final long serialVersionUID = 1L;

    public DigestMismatchException(Digest expected, Digest actual) {
        super("expected " + expected + ", got " + actual);
    }

    public DigestMismatchException(String message) {
        super(message);
    }
}
