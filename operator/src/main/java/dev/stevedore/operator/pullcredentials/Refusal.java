package dev.stevedore.operator.pullcredentials;

/** A request the endpoint does not answer: the HTTP status and a reason that names what to fix, never a secret. */
final class Refusal extends Exception {
    private static final long serialVersionUID = 1L;

    static final int UNAUTHENTICATED = 401;
    static final int FORBIDDEN = 403;
    static final int NOT_FOUND = 404;
    static final int CONFLICT = 409;
    static final int BAD_REQUEST = 400;
    static final int UNAVAILABLE = 503;

    private final int status;

    Refusal(int status, String reason) {
        super(reason, null, false, false);
        this.status = status;
    }

    int status() {
        return status;
    }
}
