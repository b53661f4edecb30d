package dev.stevedore.agent.spec;

import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * The uid and gid of an image config's User, resolved as containerd's {@code oci.WithUser} does. The forms are
 * {@code user}, {@code uid}, {@code user:group}, {@code uid:gid}, {@code uid:group} and {@code user:gid}:
 * <ul>
 * <li>numbers are taken as they are, without looking at the image;</li>
 * <li>a user name comes from the image's /etc/passwd, a group name from its /etc/group: when it is not there
 * (or the root filesystem is not given) the spec is rejected rather than run as some other user;</li>
 * <li>without a group, the gid is the user's primary group from /etc/passwd; for a numeric uid that /etc/passwd
 * does not list, it is 0, as in containerd and Docker;</li>
 * <li>an empty User is root, 0:0.</li>
 * </ul>
 * Files are read through {@link RootfsFiles}, so links never lead outside the root filesystem.
 */
final class ImageUser {
    /** Far above any real passwd or group file; keeps a hostile image from making the agent read gigabytes. */
    static final int MAX_FILE_BYTES = 4 * 1024 * 1024;
    private static final long MAX_ID = 0xFFFF_FFFFL; // uid_t and gid_t are 32-bit unsigned
    private static final Pattern NUMBER = Pattern.compile("[0-9]{1,10}");

    record Ids(long uid, long gid) {
    }

    private ImageUser() {
    }

    /**
     * @param rootfs the container's root filesystem, or null: then only numeric users resolve
     */
    static Ids resolve(String user, Path rootfs) throws SpecRejectedException {
        if (user == null || user.isEmpty()) {
            return new Ids(0, 0);
        }
        int colon = user.indexOf(':');
        String userPart = colon < 0 ? user : user.substring(0, colon);
        String groupPart = colon < 0 ? null : user.substring(colon + 1);
        if (userPart.isEmpty() || (groupPart != null && groupPart.isEmpty())) {
            throw new SpecRejectedException("the image's User \"" + user + "\" is not user[:group]");
        }

        Optional<Passwd> entry;
        long uid;
        if (isNumber(userPart)) {
            uid = id(userPart, user);
            // Only needed for the primary group; a uid the image does not list is still a valid uid.
            entry = groupPart == null ? findPasswd(rootfs, e -> e.uid() == uid) : Optional.empty();
        } else {
            entry = findPasswd(rootfs, e -> e.name().equals(userPart));
            if (entry.isEmpty()) {
                throw new SpecRejectedException(unresolved(user, "user " + userPart, "/etc/passwd", rootfs));
            }
            uid = entry.get().uid();
        }

        long gid;
        if (groupPart == null) {
            gid = entry.map(Passwd::gid).orElse(0L);
        } else if (isNumber(groupPart)) {
            gid = id(groupPart, user);
        } else {
            gid = findGroup(rootfs, groupPart).orElseThrow(() -> new SpecRejectedException(
                    unresolved(user, "group " + groupPart, "/etc/group", rootfs)));
        }
        return new Ids(uid, gid);
    }

    private record Passwd(String name, long uid, long gid) {
    }

    private static Optional<Passwd> findPasswd(Path rootfs, Predicate<Passwd> match) throws SpecRejectedException {
        if (rootfs == null) {
            return Optional.empty();
        }
        Optional<String> content = RootfsFiles.read(rootfs, "/etc/passwd", MAX_FILE_BYTES);
        if (content.isEmpty()) {
            return Optional.empty();
        }
        // name:password:uid:gid:gecos:home:shell
        for (String line : content.get().split("\n")) {
            String[] fields = line.split(":", -1);
            if (fields.length < 4 || !isNumber(fields[2]) || !isNumber(fields[3])) {
                continue; // comments, NIS "+" lines, damaged lines: skipped, as libc does
            }
            long uid = Long.parseLong(fields[2]);
            long gid = Long.parseLong(fields[3]);
            if (uid > MAX_ID || gid > MAX_ID) {
                continue;
            }
            Passwd entry = new Passwd(fields[0], uid, gid);
            if (match.test(entry)) {
                return Optional.of(entry);
            }
        }
        return Optional.empty();
    }

    private static Optional<Long> findGroup(Path rootfs, String name) throws SpecRejectedException {
        if (rootfs == null) {
            return Optional.empty();
        }
        Optional<String> content = RootfsFiles.read(rootfs, "/etc/group", MAX_FILE_BYTES);
        if (content.isEmpty()) {
            return Optional.empty();
        }
        // name:password:gid:members
        for (String line : content.get().split("\n")) {
            String[] fields = line.split(":", -1);
            if (fields.length >= 3 && fields[0].equals(name) && isNumber(fields[2])
                    && Long.parseLong(fields[2]) <= MAX_ID) {
                return Optional.of(Long.parseLong(fields[2]));
            }
        }
        return Optional.empty();
    }

    private static boolean isNumber(String s) {
        return NUMBER.matcher(s).matches();
    }

    private static long id(String number, String user) throws SpecRejectedException {
        long id = Long.parseLong(number);
        if (id > MAX_ID) {
            throw new SpecRejectedException("the image's User \"" + user + "\" has an id above " + MAX_ID);
        }
        return id;
    }

    private static String unresolved(String user, String what, String file, Path rootfs) {
        return rootfs == null
                ? "the image's User \"" + user + "\" names a " + what + ", which needs the image's " + file
                        + " and the root filesystem is not available"
                : "the image's User \"" + user + "\" names a " + what + " that is not in the image's " + file;
    }
}
