#!/usr/bin/env bash
# Installs the Debian packages that local-up, the tests and the benchmarks need, when any is missing.
# Runs as root on Debian; safe to run again.
set -euo pipefail
packages=(runc crun conmon skopeo umoci docker-registry busybox-static attr e2fsprogs iproute2 openssl procps util-linux curl
  ca-certificates containernetworking-plugins iptables "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-prereqs: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Keep postinst scripts from starting package services (the registry, containerd): the scripts start what they
# need themselves, on ports of their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
