#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer target with clang in build-fuzz/ (once) and fuzzes
# libvdisk's image parsing for SECONDS (default 60), starting from a copy of
# the seed corpus.  New inputs collect in build-fuzz/fuzz-corpus/, crashes in
# build-fuzz/fuzz-artifacts/.  Extra arguments go to libFuzzer, e.g.
# -fork=2 -ignore_crashes=1 to keep going after a crash (README.md).
set -euo pipefail

seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	# The fuzz target brings its own sanitizer flags (tests/fuzz/meson.build).
	CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=none
fi
ninja -j1 -C "$build" tests/fuzz/fuzz_image

corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
cp -n "$root"/tests/fuzz/corpus/*.vd "$corpus"/

# 4 MiB holds every seed; 10 s per input is far beyond the work caps of
# fuzz_image.c, so a timeout is a hang in the library.
cmd=("$build/tests/fuzz/fuzz_image" -max_len=4194304 -rss_limit_mb=2048 -timeout=10
	-dict="$root/tests/fuzz/vdisk.dict" -max_total_time="$seconds"
	-artifact_prefix="$artifacts/" -print_final_stats=1 "$@" "$corpus")
echo "+ ${cmd[*]}"
exec "${cmd[@]}"
