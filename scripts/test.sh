#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is needed, builds with AddressSanitizer and UBSan and
# warnings as errors, and runs the whole test suite (meson test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BUILD_DIR:-build-test}
if [ ! -d "$build" ]; then
	meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >/dev/null
fi
ninja -C "$build" >/dev/null
# Short libFuzzer runs over the image parser, the switch core's frame
# handling and the qcow2 reader (clang; a longer one: tests/fuzz/run-fuzz.sh
# SECONDS [image|frames|qcow2]).  Before meson test, whose summary stays the
# last thing printed.
fuzz_run() {
	local what=$1 seconds=$2 log=$build/fuzz-run-$1.log

	if ! FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-$PWD/build-fuzz} bash tests/fuzz/run-fuzz.sh \
		"$seconds" "$what" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		echo "test: the $what fuzzer found a bug (log: $log)" >&2
		exit 1
	fi
	grep -E '^(stat::number_of_executed_units|#[0-9]+ *DONE|fuzz_frames:)' "$log" |
		tail -n 3 || true
}
fuzz_run image "${FUZZ_SECONDS:-20}"
fuzz_run frames "${FUZZ_FRAMES_SECONDS:-10}"
fuzz_run qcow2 "${FUZZ_QCOW2_SECONDS:-10}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
rc=0
meson test -C "$build" --print-errorlogs --num-processes 2 "$@" || rc=$?
# A test that cannot run here (no Ceph cluster could start, no guest
# kernel) exits 77; say why, since meson prints only SKIP.
grep -h '^SKIP: ' "$build/meson-logs/testlog.txt" 2>/dev/null | sort -u | sed 's/^/test: /' >&2 || true
exit "$rc"
