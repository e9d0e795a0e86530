#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the seed corpus of fuzz_qcow2 (tests/fuzz/qcow2-corpus/) with QEMU's
# own tools: small images of each layout the reader must handle (versions 2
# and 3, 512-byte to 16 KiB clusters, refcount widths 1 and 64, zero
# clusters, an internal snapshot, a raw backing file named backing.raw, as
# fuzz_qcow2.c provides one) and two it must refuse (compressed clusters,
# extended L2 entries).  Run by hand when the set should change:
#   tests/fuzz/gen-qcow2-seeds.sh [DIR]
set -euo pipefail
out=${1:-$(cd "$(dirname "$0")" && pwd)/qcow2-corpus}
mkdir -p "$out"
cd "$out"
rm -f ./*.qcow2
qi() { qemu-io "$@" >/dev/null; }
mk() { qemu-img create -q -f qcow2 "$@"; }
mk -o cluster_size=512 v3-c512.qcow2 256K
qi -c 'write -P 0x11 0 4K' -c 'write -P 0x22 100K 1K' -c 'write -z 8K 4K' \
	-c 'discard 100K 512' v3-c512.qcow2
mk -o compat=0.10,cluster_size=4096 v2-c4k.qcow2 1M
qi -c 'write -P 0x33 0 12K' -c 'write -P 0x44 512K 4K' v2-c4k.qcow2
mk -o cluster_size=4096,refcount_bits=1 v3-rc1.qcow2 1M
qi -c 'write -P 0x55 4K 8K' v3-rc1.qcow2
mk -o cluster_size=4096,refcount_bits=64 v3-rc64.qcow2 1M
qi -c 'write -P 0x66 0 4K' -c 'write -z -u 8K 4K' v3-rc64.qcow2
mk -o cluster_size=4096 v3-snap.qcow2 1M
qi -c 'write -P 0x77 0 8K' v3-snap.qcow2
qemu-img snapshot -c s1 v3-snap.qcow2
qi -c 'write -P 0x78 4K 4K' v3-snap.qcow2
mk -o cluster_size=4096 v3-compressed.qcow2 1M
qi -c 'write -c -P 0x79 0 4K' v3-compressed.qcow2
mk -o cluster_size=16384,extended_l2=on v3-extl2.qcow2 1M
qi -c 'write -P 0x7a 0 2K' v3-extl2.qcow2
head -c 65536 /dev/zero | tr '\0' Z >backing.raw
mk -o cluster_size=4096 -b backing.raw -F raw v3-backing.qcow2 128K
qi -c 'write -P 0x7b 4K 4K' v3-backing.qcow2
rm backing.raw
ls -l "$out"
