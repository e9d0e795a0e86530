# SPDX-License-Identifier: MIT
# lib.sh: sourced by every tests/cli script.  Takes the vdisk binary as $1,
# makes a scratch directory removed on exit, and offers run/expect helpers
# that capture a command's output and fail on any sanitizer report.

set -euo pipefail

VDISK=${1:?usage: $0 PATH_TO_VDISK}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Processes a script leaves running (vdisk io holding an image): it adds
# their PIDs to 'holders', and its exit trap calls stop_holders, which stops
# each by its PID.
holders=()
stop_holders()
{
	local pid

	for pid in "${holders[@]}"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	holders=()
}
OUT=
ERR=
RC=0
# python3 may be a slow wrapper (pyenv's shim); ask it once for the real
# interpreter, since the JSON checks run it many times.
PYTHON=python3
if command -v python3 >/dev/null 2>&1; then
	PYTHON=$(python3 -c 'import sys; print(sys.executable)')
fi

fail()
{
	echo "FAIL: $*" >&2
	if [ -n "$OUT$ERR" ]; then
		printf -- '--- stdout:\n%s\n--- stderr:\n%s\n' "$OUT" "$ERR" >&2
	fi
	exit 1
}

need()
{
	for p in "$@"; do
		if ! command -v "$p" >/dev/null 2>&1; then
			echo "SKIP: $p is not installed" >&2
			exit 77
		fi
	done
}

# Runs vdisk with the given arguments; sets OUT, ERR and RC.  A sanitizer
# report or a death by signal fails the test whatever the caller expects.
run()
{
	set +e
	"$VDISK" "$@" >"$TMP/.out" 2>"$TMP/.err"
	RC=$?
	set -e
	OUT=$(cat "$TMP/.out")
	ERR=$(cat "$TMP/.err")
	if grep -qE 'Sanitizer|runtime error:' "$TMP/.err"; then
		fail "vdisk $* produced a sanitizer report"
	fi
	if [ "$RC" -ge 128 ]; then
		fail "vdisk $* died with status $RC"
	fi
}

# Like run, with standard input from the file $1.
run_stdin()
{
	local in=$1
	shift
	set +e
	"$VDISK" "$@" <"$in" >"$TMP/.out" 2>"$TMP/.err"
	RC=$?
	set -e
	OUT=$(cat "$TMP/.out")
	ERR=$(cat "$TMP/.err")
	if grep -qE 'Sanitizer|runtime error:' "$TMP/.err" || [ "$RC" -ge 128 ]; then
		fail "vdisk $* crashed or reported a sanitizer error"
	fi
}

expect_ok()
{
	run "$@"
	[ "$RC" -eq 0 ] || fail "vdisk $* exited $RC, expected 0"
}

expect_rc()
{
	local want=$1
	shift
	run "$@"
	[ "$RC" -eq "$want" ] || fail "vdisk $* exited $RC, expected $want"
}

# The failure was reported as one "vdisk: ..." line on stderr.
expect_one_line_error()
{
	local lines
	lines=$(printf '%s\n' "$ERR" | wc -l)
	[ -n "$ERR" ] && [ "$lines" -eq 1 ] || fail "expected one line on stderr, got $lines"
	case $ERR in
	"vdisk: "*) ;;
	*) fail "stderr does not start with 'vdisk: '" ;;
	esac
	if [ $# -gt 0 ]; then
		case $ERR in
		*"$1"*) ;;
		*) fail "stderr does not mention '$1'" ;;
		esac
	fi
}

expect_out()
{
	case $OUT in
	*"$1"*) ;;
	*) fail "stdout lacks '$1'" ;;
	esac
}

expect_err()
{
	case $ERR in
	*"$1"*) ;;
	*) fail "stderr lacks '$1'" ;;
	esac
}

# Prints key $1 of the JSON object in OUT (python3 parses it, so this also
# checks OUT is valid JSON).
json_get()
{
	printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys
d = json.load(sys.stdin)
v = d[sys.argv[1]]
print(str(v).lower() if isinstance(v, bool) else v)' "$1"
}

sha()
{
	sha256sum "$1" | cut -d' ' -f1
}

# Bytes the file occupies on disk.
disk_bytes()
{
	du --block-size=1 "$1" | cut -f1
}
