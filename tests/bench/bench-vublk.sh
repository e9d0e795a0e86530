#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vhost-user-blk servers measured through vublk (tests/vublk), the project's
# own front end, with no guest in the way (a benchmark, run by hand, never by
# meson test).  Today it measures qemu-storage-daemon on a raw file, the
# anchor vdiskd will be put beside; each case prints vublk bench's ops/s and
# latency percentiles.  Both processes run on the 2-core machine at once, so
# the figures are for comparison between servers, not absolute.
#
# Usage: tests/bench/bench-vublk.sh [BUILD_DIR]
#   env: BENCH_DIR (scratch, default BUILD_DIR/bench-vublk), SIZE_MB (1024),
#        SECS (per case, 5), CASES ("randread:4k:32:1 randwrite:4k:32:1 ...")
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
vublk=$build/tests/vublk/vublk
dir=${BENCH_DIR:-$build/bench-vublk}
size_mb=${SIZE_MB:-1024}
secs=${SECS:-5}
cases=${CASES:-"randread:4k:32:1 randread:4k:1:1 randwrite:4k:32:1 read:128k:8:1 randread:4k:32:2"}

for t in qemu-storage-daemon python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -x "$vublk" ] || { echo "bench: no $vublk; build first" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
qsd_pid=
cleanup() {
	if [ -n "$qsd_pid" ]; then
		kill "$qsd_pid" 2>/dev/null || true
		wait "$qsd_pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

img=$dir/disk.raw
sock=$dir/vhost.sock
# A written file, so reads hit data rather than holes.
dd if=/dev/urandom of="$img" bs=1M count="$size_mb" status=none

start_qsd() {
	rm -f "$sock"
	qemu-storage-daemon \
		--blockdev driver=file,filename="$img",node-name=f,cache.direct=on,aio=io_uring \
		--blockdev driver=raw,file=f,node-name=d \
		--export type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path="$sock",writable=on,num-queues=4 \
		>"$dir/qsd.log" 2>&1 &
	qsd_pid=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	echo "bench: qemu-storage-daemon made no socket" >&2
	cat "$dir/qsd.log" >&2
	exit 1
}

start_qsd
printf '%-10s %-5s %-4s %-6s %10s %9s %9s %9s\n' mode bs qd queues ops/s p50_us p99_us p999_us
for c in $cases; do
	IFS=: read -r mode bs qd nq <<<"$c"
	"$vublk" bench -j -w "$mode" -b "$bs" -d "$qd" -q "$nq" -t "$secs" "$sock" |
		python3 -c 'import json,sys; j=json.load(sys.stdin); l=j["lat_us"]
print("%-10s %-5s %-4d %-6d %10d %9.1f %9.1f %9.1f" % (j["rw"], sys.argv[1], j["qd"], j["queues"],
      j["ops_per_sec"], l["p50"], l["p99"], l["p999"]))' "$bs"
done
