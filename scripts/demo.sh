#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is needed, builds, and runs the demo on the embedded default
# datastore (demo/datastore1 inside the checkout): create a thin image, write
# to it, show info and map, check it, take a snapshot, change the disk, show
# the diff and revert, make a linked clone, and convert to raw and back.
# Then two datastores: import the image into one, snapshot it, migrate it
# to the other (cold), and list both before and after.
# Then the disk server: vdiskd serves an image to a small QEMU guest that
# writes and verifies data, a snapshot is taken while the guest writes,
# `vdisk ps` and the disk's counters are shown, then the disk moves live from
# one datastore to another while the guest writes, with progress and
# `vdisk datastore list` before and after, and the guest verifies all its
# data after the pivot (scripts/demo-disk.py).
# Then the virtual switch: three small guests on vswitchd, two in VLAN 10
# and one in VLAN 20, and who can ping whom.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=build-release
if [ ! -d "$build" ]; then
	meson setup "$build" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
vdisk=$build/tools/vdisk
ds=demo/datastore1
rm -rf demo
mkdir -p "$ds"

step() {
	printf '\n\033[1m$ %s\033[0m\n' "$*"
	"$@"
}

step "$vdisk" create -c 64K "$ds/vm1.vd" 4G
step "$vdisk" io -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 1G 64k' \
	-c 'discard 512k 256k' -c 'flush' "$ds/vm1.vd"
step "$vdisk" io -c 'read -P 0xab 0 512k' -c 'read -P 0x00 512k 256k' \
	-c 'read -P 0xcd 1G 64k' "$ds/vm1.vd"
step "$vdisk" info "$ds/vm1.vd"
step "$vdisk" map "$ds/vm1.vd"
step "$vdisk" check "$ds/vm1.vd"
# Snapshots: take one, change the disk, see what changed, go back.
step "$vdisk" snapshot create "$ds/vm1.vd" before-upgrade
step "$vdisk" io -c 'write -P 0xee 0 128k' -c 'write -P 0x77 2G 64k' "$ds/vm1.vd"
step "$vdisk" snapshot diff "$ds/vm1.vd" before-upgrade
step "$vdisk" snapshot list "$ds/vm1.vd"
step "$vdisk" snapshot revert "$ds/vm1.vd" before-upgrade
step "$vdisk" io -c 'read -P 0xab 0 128k' -c 'read -P 0x00 2G 64k' "$ds/vm1.vd"

# A linked clone of the image as a template: reads fall through, writes
# stay in the clone.
step "$vdisk" create -b vm1.vd "$ds/vm2.vd"
step "$vdisk" io -c 'write -P 0x42 1M 64k' -c 'read -P 0xab 0 128k' "$ds/vm2.vd"
step "$vdisk" info "$ds/vm2.vd"
step "$vdisk" io -c 'read -P 0x00 1M 64k' "$ds/vm1.vd"

step "$vdisk" convert -O raw "$ds/vm1.vd" "$ds/vm1.raw"
step du -h --apparent-size "$ds/vm1.raw"
step du -h "$ds/vm1.raw"
step "$vdisk" convert -f raw -O vdisk "$ds/vm1.raw" "$ds/vm1-copy.vd"
step "$vdisk" info --json "$ds/vm1-copy.vd"
printf '\nDisk demo done: the images are in %s.\n' "$ds"

# Datastores (a private registry, so the host's is untouched): import the
# image into one, snapshot it, and move it, snapshots and all, to the other
# while no one uses it (cold migration); the copy stays as thin.
printf '\n\033[1m== Datastores and cold migration\033[0m\n'
export VDISK_DATASTORES=$PWD/demo/datastores.json
step "$vdisk" datastore create gold demo/gold
step "$vdisk" datastore create fast demo/fast
step "$vdisk" import "$ds/vm1-copy.vd" gold:web.vd
step "$vdisk" snapshot create gold:web.vd golden
step "$vdisk" datastore list
step "$vdisk" migrate gold:web.vd --to fast
step "$vdisk" datastore list
step "$vdisk" ls fast
step "$vdisk" check fast:web.vd
step "$vdisk" io -c 'read -P 0xab 0 128k' fast:web.vd
unset VDISK_DATASTORES

printf '\n\033[1m== The disk server\033[0m\n'
python3 scripts/demo-disk.py "$build" demo/disk

printf '\n\033[1m== The virtual switch\033[0m\n'
python3 scripts/demo-switch.py "$build" demo/switch
