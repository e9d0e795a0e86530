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
# A short libFuzzer run over the image parser (clang; a longer one:
# tests/fuzz/run-fuzz.sh SECONDS).  Before meson test, whose summary stays
# the last thing printed.
fuzz_log=$build/fuzz-run.log
if ! FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-$PWD/build-fuzz} bash tests/fuzz/run-fuzz.sh \
	"${FUZZ_SECONDS:-20}" >"$fuzz_log" 2>&1; then
	tail -n 40 "$fuzz_log" >&2
	echo "test: the fuzzer found a bug (log: $fuzz_log)" >&2
	exit 1
fi
grep -E '^(stat::number_of_executed_units|#[0-9]+ *DONE)' "$fuzz_log" | tail -n 2 || true
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
