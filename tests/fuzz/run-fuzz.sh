#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang in build-fuzz/ (once) and fuzzes
# one of them for SECONDS (default 60), starting from a copy of its seed
# corpus:
#   image   libvdisk's image parsing (fuzz_image, the default)
#   frames  the switch core under arbitrary frames and port configurations
#           (fuzz_frames)
#   qcow2   libvdisk's qcow2 reader, behind vdisk convert and import
#           (fuzz_qcow2)
# New inputs collect in build-fuzz/fuzz-corpus/ (frames: frames-fuzz-corpus/,
# qcow2: qcow2-fuzz-corpus/), crashes in build-fuzz/fuzz-artifacts/
# (frames-fuzz-artifacts/, qcow2-fuzz-artifacts/).  Extra
# arguments go to libFuzzer, e.g. -fork=2 -ignore_crashes=1 to keep going
# after a crash (README.md).
#   run-fuzz.sh [SECONDS] [image|frames|qcow2] [libFuzzer options]
set -euo pipefail

seconds=${1:-60}
shift || true
target=image
if [ $# -gt 0 ] && { [ "$1" = image ] || [ "$1" = frames ] || [ "$1" = qcow2 ]; }; then
	target=$1
	shift
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	# The fuzz targets bring their own sanitizer flags (tests/fuzz/meson.build).
	CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=none
fi

if [ "$target" = image ]; then
	ninja -j1 -C "$build" tests/fuzz/fuzz_image
	corpus=$build/fuzz-corpus
	artifacts=$build/fuzz-artifacts
	mkdir -p "$corpus" "$artifacts"
	cp -n "$root"/tests/fuzz/corpus/*.vd "$corpus"/
	# 4 MiB holds every seed; 10 s per input is far beyond the work caps of
	# fuzz_image.c, so a timeout is a hang in the library.
	cmd=("$build/tests/fuzz/fuzz_image" -max_len=4194304 -rss_limit_mb=2048 -timeout=10
		-dict="$root/tests/fuzz/vdisk.dict")
elif [ "$target" = qcow2 ]; then
	ninja -j1 -C "$build" tests/fuzz/fuzz_qcow2
	corpus=$build/qcow2-fuzz-corpus
	artifacts=$build/qcow2-fuzz-artifacts
	mkdir -p "$corpus" "$artifacts"
	cp -n "$root"/tests/fuzz/qcow2-corpus/*.qcow2 "$corpus"/
	# 1 MiB holds every seed; the walk is capped (fuzz_qcow2.c), so 10 s
	# per input is a hang in the reader.
	cmd=("$build/tests/fuzz/fuzz_qcow2" -max_len=1048576 -rss_limit_mb=2048 -timeout=10)
else
	ninja -j1 -C "$build" tests/fuzz/fuzz_frames
	corpus=$build/frames-fuzz-corpus
	artifacts=$build/frames-fuzz-artifacts
	mkdir -p "$corpus" "$artifacts"
	cp -n "$root"/tests/fuzz/frames-corpus/*.bin "$corpus"/
	# 64 KiB is some 6000 frames, run up to 8 times over: a few seconds
	# under ASan at worst, so 60 s is a hang.
	cmd=("$build/tests/fuzz/fuzz_frames" -max_len=65536 -rss_limit_mb=2048 -timeout=60
		-dict="$root/tests/fuzz/frames.dict")
fi
cmd+=(-max_total_time="$seconds" -artifact_prefix="$artifacts/" -print_final_stats=1 "$@"
	"$corpus")
echo "+ ${cmd[*]}"
exec "${cmd[@]}"
