#!/usr/bin/env bash
# Builds the two base images of Stevedore's container images from Debian packages, with no registry and no
# container engine: mmdebstrap installs the packages into a root file system tarball, umoci makes it the single
# layer of an OCI image layout. Prints the directory that holds them:
#   java/          OCI layout, tag "base": Debian's Java 17 runtime and CA certificates, the user nonroot (65532)
#   agent/         OCI layout, tag "base": the same and the node agent's programs (runc, crun, conmon, unshare, mount,
#                  and iptables for the CNI plugins that set rules up)
#   java.tar, agent.tar   the same images as docker-archive tarballs, the local base image form Jib reads (tar://)
#
# Reproducible: file times are clamped to SOURCE_DATE_EPOCH, mmdebstrap drops its logs, caches and machine IDs, the
# apt sources and host files (resolv.conf, hostname) are not kept, and the JRE's cacerts gets fixed entry times
# (hack/ReproducibleJks.java, run by the host's java), so the result depends only on the versions of the packages the
# Debian mirror serves. Built once per key, a hash of this script (its package lists and options), of
# ReproducibleJks.java and of the mirror setting, under ${STEVEDORE_CACHE:-~/.cache/stevedore}/images/<key>.
#
# Settings (environment): STEVEDORE_CACHE; STEVEDORE_DEBIAN_MIRROR, a Debian mirror URL or a sources.list file
# (default: mmdebstrap's, Debian's mirror with the release's updates and security suites); a snapshot of the archive
# gives the same packages, and so the same images, at any later time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
java_packages=(openjdk-17-jre-headless ca-certificates)
agent_packages=("${java_packages[@]}" runc crun conmon util-linux mount iptables)
# Debian bookworm's release day: every file time in the images.
export SOURCE_DATE_EPOCH=1686355200
mirror=${STEVEDORE_DEBIAN_MIRROR:-}

key=$( (cat "$0" "$repo/hack/ReproducibleJks.java"; echo "$mirror") | sha256sum | cut -c1-16)
out="${STEVEDORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stevedore}/images/$key"
if [ -f "$out/done" ]; then
  echo "$out"
  exit 0
fi

"$repo/hack/install-prereqs.sh" mmdebstrap >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

# $1 name, then the packages: a rootfs tarball of Debian's essential packages and these, without documentation
# (but each package's copyright), manual pages or translations.
rootfs() {
  local name=$1
  shift
  echo "build-base-images: $name: debootstrapping ${suite} with $*" >&2
  # The merged-usr hook makes /bin, /sbin and /lib links into /usr itself, without the usrmerge package and the Perl
  # it needs. The other hooks' "$1" is the chroot. The JRE's postinst links its manual pages with update-alternatives,
  # which fails without their directory: it is there while packages install, gone with the links afterwards.
  # shellcheck disable=SC2016
  mmdebstrap --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include="$(IFS=,; echo "$*")" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --essential-hook='mkdir -p "$1"/usr/share/man/man1' \
    --customize-hook='rm -rf "$1"/usr/share/man "$1"/etc/resolv.conf "$1"/etc/hostname' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list' \
    --customize-hook='rm -f "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old' \
    --customize-hook='echo "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin" >> "$1"/etc/passwd' \
    --customize-hook='echo "nonroot:x:65532:" >> "$1"/etc/group' \
    --customize-hook='install -d -o 65532 -g 65532 -m 0750 "$1"/home/nonroot' \
    --customize-hook="java '$repo/hack/ReproducibleJks.java' \"\$1\"/etc/ssl/certs/java/cacerts $SOURCE_DATE_EPOCH" \
    "$suite" "$work/$name.rootfs.tar" ${mirror:+"$mirror"} >&2
}

# $1 name: the rootfs tarball as the one layer of an OCI layout, with a PATH and no command, and as docker-archive.
image() {
  local name=$1 layout="$work/$1"
  umoci init --layout "$layout"
  umoci new --image "$layout:base"
  umoci raw add-layer --image "$layout:base" --history.created "$created" \
    --history.created_by "hack/build-base-images.sh: Debian $suite, ${name} packages" "$work/$name.rootfs.tar"
  umoci config --image "$layout:base" --no-history --created "$created" --author "" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.workingdir /
  umoci gc --layout "$layout"
  skopeo copy -q "oci:$layout:base" "docker-archive:$work/$name.tar:stevedore/$name-base:$key"
}

rootfs java "${java_packages[@]}"
image java
rootfs agent "${agent_packages[@]}"
image agent
rm "$work"/*.rootfs.tar
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$work" "$out"
chmod 0755 "$out"
touch "$out/done"
echo "$out"
