#!/usr/bin/env bash
# Builds a small OCI image from Debian's busybox-static into an OCI image layout, with no registry and no
# network: /bin/busybox, one symlink per applet, /etc/passwd and /etc/group for root.
# Usage: hack/build-busybox-image.sh LAYOUT_DIR TAG
set -euo pipefail
layout=$1 tag=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -d "$layout" ] || umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$rootfs/tmp"
install -m 0755 /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" --config.cmd sh --config.env PATH=/bin --config.workingdir /
umoci gc --layout "$layout"
