package dev.stevedore.agent.fs;

import com.sun.jna.LastErrorException;

/**
 * Whether a failure is the file system out of space (ENOSPC) or its quota reached (EDQUOT). The JDK reports both
 * as a plain IOException with strerror's text, JNA as {@link LastErrorException} with the errno; neither has a type
 * of its own, so the cause chain is searched for either form.
 */
public final class DiskFull {
    private static final int ENOSPC = 28;
    private static final int EDQUOT = 122;
    private static final String NO_SPACE = "No space left on device";
    private static final String QUOTA = "Disk quota exceeded";

    private DiskFull() {}

    public static boolean causedBy(Throwable failure) {
        for (Throwable e = failure; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof LastErrorException errno
                    && (errno.getErrorCode() == ENOSPC || errno.getErrorCode() == EDQUOT)) {
                return true;
            }
            String message = e.getMessage();
            if (message != null && (message.contains(NO_SPACE) || message.contains(QUOTA))) {
                return true;
            }
        }
        return false;
    }
}
