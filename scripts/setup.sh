#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the project needs from Debian 12's packages, idempotently:
# packages already present cost nothing and print nothing.  Run as root (or
# with sudo available).  Used by demo.sh, test.sh and .ci/run.
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config
	liburing-dev libcmocka-dev libjson-c-dev
	libnl-3-dev libnl-route-3-dev dpdk dpdk-dev
	clang libclang-rt-14-dev python3
	qemu-utils qemu-system-x86 fio e2fsprogs
	linux-image-amd64 busybox-static cpio kmod iproute2
	openvswitch-switch-dpdk tcpdump
	ceph-mon ceph-osd ceph-common librbd-dev librados-dev qemu-block-extra
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
