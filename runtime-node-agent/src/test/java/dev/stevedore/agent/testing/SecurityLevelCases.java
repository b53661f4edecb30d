package dev.stevedore.agent.testing;

import java.util.List;

/**
 * One Container per rule of the security levels (docs/security-levels.md) that breaks only that rule, with the
 * field and problem both the admission policy and the node agent name: the table of the unit test and the IT.
 */
public final class SecurityLevelCases {
    /** Where the host-paths case binds from: a host path the node allows, so only the level refuses it. */
    public static final String HOST_PATH = "HOST_PATH";

    /** What restricted asks for, and nothing more: a non-root user, a read-only root, no capabilities. */
    private static final String RESTRICTED_OCI_SPEC =
            "root: {readonly: true}, process: {capabilities: {bounding: [], effective: [], permitted: []}}";

    /**
     * The most a restricted Container may ask for: every ociSpec path of the allowlist, every safe sysctl, the
     * cgroup namespace, more masks, CAP_NET_BIND_SERVICE. Admission and the node must both let it through, so their
     * lists cannot drift apart unnoticed.
     */
    public static final String MOST_RESTRICTED_ALLOWS = """
            process: {args: ['true'], user: {uid: 1000}}
            ociSpec:
              hostname: web
              domainname: example.org
              root: {readonly: true}
              process:
                args: ['true']
                env: [PATH=/bin]
                cwd: /
                rlimits: [{type: RLIMIT_NOFILE, hard: 512, soft: 512}]
                noNewPrivileges: true
                apparmorProfile: stevedore-default
                selinuxLabel: 'system_u:system_r:container_t:s0'
                capabilities:
                  bounding: [CAP_NET_BIND_SERVICE]
                  effective: [CAP_NET_BIND_SERVICE]
                  permitted: [CAP_NET_BIND_SERVICE]
                  inheritable: []
                  ambient: [CAP_NET_BIND_SERVICE]
              linux:
                namespaces: [{type: pid}, {type: network}, {type: ipc}, {type: uts}, {type: mount}, {type: cgroup}]
                maskedPaths: [/proc/acpi, /proc/asound, /proc/kcore, /proc/keys, /proc/latency_stats, /proc/timer_list,
                  /proc/timer_stats, /proc/sched_debug, /sys/firmware, /proc/scsi, /proc/extra]
                readonlyPaths: [/proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger, /proc/extra]
                sysctl:
                  kernel.shm_rmid_forced: '1'
                  net.ipv4.ip_local_port_range: '1024 65000'
                  net.ipv4.ip_local_reserved_ports: '8080'
                  net.ipv4.ip_unprivileged_port_start: '80'
                  net.ipv4.ping_group_range: '0 0'
                  net.ipv4.tcp_syncookies: '1'
                  net.ipv4.tcp_keepalive_time: '600'
                  net.ipv4.tcp_fin_timeout: '30'
                  net.ipv4.tcp_keepalive_intvl: '60'
                  net.ipv4.tcp_keepalive_probes: '5'
                  net.ipv4.tcp_rmem: '4096 87380 6291456'
                  net.ipv4.tcp_wmem: '4096 16384 4194304'
                resources:
                  memory: {limit: 67108864}
                  cpu: {quota: 50000, period: 100000}
                  pids: {limit: 10}
                  hugepageLimits: []
            """;

    private SecurityLevelCases() {}

    /**
     * @param spec the Container's spec beside its image and node, YAML
     * @param violation the field and what is wrong there, before ", which the LEVEL level of namespace ..."
     * @param refusedAtAdmission false where only the node can tell (the image's user)
     * @param securityModule the Linux security module (apparmor, selinux) the case's spec needs to run: runc refuses
     *        a profile or label for a module the host's kernel does not have
     */
    public record Case(
            String name,
            String level,
            String spec,
            String violation,
            boolean refusedAtAdmission,
            String securityModule) {
        public String spec(String hostPath) {
            return spec.replace(HOST_PATH, hostPath);
        }

        public String message(String namespace) {
            return violation + ", which the " + level + " level of namespace \"" + namespace + "\" does not allow";
        }

        @Override
        public String toString() {
            return name;
        }
    }

    public static final List<Case> CASES = List.of(
            baseline(
                    "ocispec-keys",
                    "ociSpec: {process: {oomScoreAdj: 100}}",
                    "spec.ociSpec.process.oomScoreAdj is set"),
            baseline(
                    "capabilities",
                    "ociSpec: {process: {capabilities: {bounding: [CAP_SYS_ADMIN], effective: [CAP_SYS_ADMIN], "
                            + "permitted: [CAP_SYS_ADMIN]}}}",
                    "spec.ociSpec.process.capabilities.bounding holds CAP_SYS_ADMIN"),
            baseline(
                    "namespaces",
                    "ociSpec: {linux: {namespaces: [{type: pid}, {type: ipc}, {type: uts}, {type: mount}]}}",
                    "spec.ociSpec.linux.namespaces lacks the network namespace"),
            baseline("host-network", "network: {mode: host}", "spec.network.mode is host"),
            baseline(
                    "devices",
                    "ociSpec: {linux: {devices: [{path: /dev/net/tun, type: c, major: 10, minor: 200, fileMode: 438}]}}",
                    "spec.ociSpec.linux.devices is set"),
            baseline(
                    "device-rules",
                    "ociSpec: {linux: {resources: {devices: [{allow: true, access: rwm}]}}}",
                    "spec.ociSpec.linux.resources.devices is set"),
            baseline(
                    "masked-paths",
                    "ociSpec: {linux: {maskedPaths: []}}",
                    "spec.ociSpec.linux.maskedPaths lacks /proc/acpi"),
            baseline(
                    "readonly-paths",
                    "ociSpec: {linux: {readonlyPaths: [/proc/bus]}}",
                    "spec.ociSpec.linux.readonlyPaths lacks /proc/fs"),
            baseline(
                    "seccomp",
                    "ociSpec: {linux: {seccomp: {defaultAction: SCMP_ACT_ALLOW}}}",
                    "spec.ociSpec.linux.seccomp is set"),
            baseline(
                    "no-new-privileges",
                    "ociSpec: {process: {noNewPrivileges: false}}",
                    "spec.ociSpec.process.noNewPrivileges is not true"),
            baseline(
                    "sysctls",
                    "ociSpec: {linux: {sysctl: {kernel.msgmax: '65536'}}}",
                    "spec.ociSpec.linux.sysctl sets kernel.msgmax"),
            new Case(
                    "apparmor",
                    "baseline",
                    "process: {args: ['true']}\nociSpec: {process: {apparmorProfile: unconfined}}",
                    "spec.ociSpec.process.apparmorProfile is \"unconfined\"",
                    true,
                    "apparmor"),
            new Case(
                    "selinux",
                    "baseline",
                    "process: {args: ['true']}\nociSpec: {process: {selinuxLabel: 'system_u:system_r:spc_t:s0'}}",
                    "spec.ociSpec.process.selinuxLabel has type \"spc_t\"",
                    true,
                    "selinux"),
            baseline(
                    "host-paths",
                    "mounts: [{source: " + HOST_PATH + ", destination: /data}]",
                    "spec.mounts binds host path " + HOST_PATH),
            restricted(
                    "restricted-capabilities",
                    "1000",
                    "root: {readonly: true}, process: {capabilities: {bounding: [CAP_NET_BIND_SERVICE, CAP_CHOWN]}}",
                    "spec.ociSpec.process.capabilities.bounding holds CAP_CHOWN"),
            restricted(
                    "default-capabilities",
                    "1000",
                    "root: {readonly: true}",
                    "spec.ociSpec.process.capabilities.bounding holds CAP_CHOWN"),
            restricted("run-as-non-root", "0", RESTRICTED_OCI_SPEC, "spec.process.user.uid is 0"),
            new Case(
                    "image-user-root",
                    "restricted",
                    "process: {args: ['true']}\nociSpec: {" + RESTRICTED_OCI_SPEC + "}",
                    "spec.process.user is not set and the image's user is root (uid 0)",
                    false,
                    null),
            restricted(
                    "read-only-root",
                    "1000",
                    "process: {capabilities: {bounding: [], effective: [], permitted: []}}",
                    "spec.ociSpec.root.readonly is not true"));

    private static Case baseline(String name, String spec, String violation) {
        return new Case(name, "baseline", "process: {args: ['true']}\n" + spec, violation, true, null);
    }

    private static Case restricted(String name, String uid, String ociSpec, String violation) {
        return new Case(
                name,
                "restricted",
                "process: {args: ['true'], user: {uid: " + uid + "}}\nociSpec: {" + ociSpec + "}",
                violation,
                true,
                null);
    }
}
