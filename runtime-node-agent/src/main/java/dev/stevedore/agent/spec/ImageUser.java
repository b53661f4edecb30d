package dev.stevedore.agent.spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * The user a container's process runs as, resolved against its root filesystem as containerd resolves it:
 * {@code oci.WithUser} (or {@code WithUserID} for a Container's numeric override), then {@code WithAdditionalGIDs}.
 * The forms of an image's User are {@code user}, {@code uid}, {@code user:group}, {@code uid:gid},
 * {@code uid:group} and {@code user:gid}:
 * <ul>
 * <li>a user name comes from the image's /etc/passwd, a group name from its /etc/group; a name that is not there
 * rejects the spec rather than run as some other user;</li>
 * <li>without a group, the gid is the user's primary group from /etc/passwd; for a uid that /etc/passwd does not
 * list, it is 0, as in containerd and Docker;</li>
 * <li>an empty User is root;</li>
 * <li>the supplementary groups are the groups of /etc/group that list the user's name as a member (not the group
 * that bears the user's own name), in the file's order, with the primary gid put first unless it is among them, as
 * containerd's {@code ensureAdditionalGids} does (since the fix of CVE-2023-25173). A uid without a name in
 * /etc/passwd has only its primary group.</li>
 * </ul>
 * HOME is not set here: runc and crun set it from the same /etc/passwd when the environment lacks it.
 * Files are read through {@link RootfsFiles}, so links never lead outside the root filesystem.
 */
final class ImageUser {
    /** Far above any real passwd or group file; keeps a hostile image from making the agent read gigabytes. */
    static final int MAX_FILE_BYTES = 4 * 1024 * 1024;

    private static final long MAX_ID = 0xFFFF_FFFFL; // uid_t and gid_t are 32-bit unsigned
    private static final Pattern NUMBER = Pattern.compile("[0-9]{1,10}");

    /** The spec's {@code process.user}. */
    record Ids(long uid, long gid, List<Long> additionalGids) {
        Ids {
            additionalGids = List.copyOf(additionalGids);
        }
    }

    private record Passwd(String name, long uid, long gid) {}

    private record Group(String name, long gid, List<String> members) {}

    private final Path rootfs;

    private ImageUser(Path rootfs) {
        this.rootfs = rootfs;
    }

    /** An image config's User (null or empty: root). */
    static Ids resolve(String user, Path rootfs) throws SpecRejectedException {
        return new ImageUser(rootfs).resolveImageUser(user);
    }

    /** A Container's numeric override; without a gid, the primary group /etc/passwd gives the uid, or 0. */
    static Ids resolve(long uid, Long gid, Path rootfs) throws SpecRejectedException {
        ImageUser image = new ImageUser(rootfs);
        checkId(uid, "spec.process.user.uid " + uid);
        Optional<Passwd> entry = image.findPasswd(e -> e.uid() == uid);
        long primary = gid != null
                ? checkId(gid, "spec.process.user.gid " + gid)
                : entry.map(Passwd::gid).orElse(0L);
        return image.withSupplementaryGroups(uid, primary, entry.map(Passwd::name));
    }

    private Ids resolveImageUser(String user) throws SpecRejectedException {
        if (user == null || user.isEmpty()) {
            return withSupplementaryGroups(0, 0, Optional.of("root"));
        }
        int colon = user.indexOf(':');
        String userPart = colon < 0 ? user : user.substring(0, colon);
        String groupPart = colon < 0 ? null : user.substring(colon + 1);
        if (userPart.isEmpty()
                || (groupPart != null && groupPart.isEmpty())
                || (groupPart != null && groupPart.contains(":"))) {
            throw new SpecRejectedException("the image's User \"" + user + "\" is not user[:group]");
        }

        Optional<Passwd> entry;
        long uid;
        if (isNumber(userPart)) {
            uid = id(userPart, user);
            entry = findPasswd(e -> e.uid() == uid);
        } else {
            entry = findPasswd(e -> e.name().equals(userPart));
            if (entry.isEmpty()) {
                throw new SpecRejectedException(unresolved(user, "user " + userPart, "/etc/passwd"));
            }
            uid = entry.get().uid();
        }

        long gid;
        if (groupPart == null) {
            gid = entry.map(Passwd::gid).orElse(0L);
        } else if (isNumber(groupPart)) {
            gid = id(groupPart, user);
        } else {
            gid = findGroups(g -> g.name().equals(groupPart)).stream()
                    .findFirst()
                    .map(Group::gid)
                    .orElseThrow(() -> new SpecRejectedException(unresolved(user, "group " + groupPart, "/etc/group")));
        }
        // containerd looks the name up again by uid: for "0:0" it is root's name, whatever the image's User said.
        Optional<String> name = findPasswd(e -> e.uid() == uid).map(Passwd::name);
        return withSupplementaryGroups(uid, gid, name);
    }

    /** The groups listing the user, in /etc/group's order; the primary gid first unless among them already. */
    private Ids withSupplementaryGroups(long uid, long gid, Optional<String> userName) throws SpecRejectedException {
        List<Long> gids = new ArrayList<>();
        if (userName.isPresent()) {
            String name = userName.get();
            findGroups(g -> !g.name().equals(name) && g.members().contains(name))
                    .forEach(g -> gids.add(g.gid()));
        }
        if (!gids.contains(gid)) {
            gids.add(0, gid);
        }
        return new Ids(uid, gid, gids);
    }

    private Optional<Passwd> findPasswd(Predicate<Passwd> match) throws SpecRejectedException {
        // name:password:uid:gid:gecos:home:shell
        for (String[] fields : lines("/etc/passwd")) {
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

    /** The matching groups of /etc/group, in the file's order. */
    private List<Group> findGroups(Predicate<Group> match) throws SpecRejectedException {
        List<Group> groups = new ArrayList<>();
        // name:password:gid:member,member
        for (String[] fields : lines("/etc/group")) {
            if (fields.length < 3 || !isNumber(fields[2]) || Long.parseLong(fields[2]) > MAX_ID) {
                continue;
            }
            List<String> members = fields.length < 4 || fields[3].isEmpty() ? List.of() : List.of(fields[3].split(","));
            Group group = new Group(fields[0], Long.parseLong(fields[2]), members);
            if (match.test(group)) {
                groups.add(group);
            }
        }
        return groups;
    }

    private List<String[]> lines(String file) throws SpecRejectedException {
        Optional<String> content = RootfsFiles.read(rootfs, file, MAX_FILE_BYTES);
        if (content.isEmpty()) {
            return List.of();
        }
        List<String[]> lines = new ArrayList<>();
        for (String line : content.get().split("\n")) {
            lines.add(line.strip().split(":", -1));
        }
        return lines;
    }

    private static boolean isNumber(String s) {
        return NUMBER.matcher(s).matches();
    }

    private static long id(String number, String user) throws SpecRejectedException {
        return checkId(Long.parseLong(number), "the image's User \"" + user + "\"");
    }

    private static long checkId(long id, String what) throws SpecRejectedException {
        if (id < 0 || id > MAX_ID) {
            throw new SpecRejectedException(what + " is not an id from 0 to " + MAX_ID);
        }
        return id;
    }

    private static String unresolved(String user, String what, String file) {
        return "the image's User \"" + user + "\" names a " + what + " that is not in the image's " + file;
    }
}
