#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Datastores as the tool shows them, on a private registry
# ($VDISK_DATASTORES): create, list and remove them; create, import,
# export, list and delete their images by both spellings of a name;
# templates and clones; the overcommit limit; images in use; names that
# try to leave the datastore; many processes creating at once.  qemu-img
# is the oracle for what import and export carry.  Every process this
# starts is stopped by its PID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 mkfifo qemu-img qemu-io

export VDISK_DATASTORES=$TMP/registry.json
cleanup()
{
	stop_holders
	chmod -R u+w "$TMP" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# Prints expression $1 evaluated on the JSON in OUT as 'd'.
jq_py()
{
	printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(str(v).lower() if isinstance(v, bool) else v)' "$1"
}

# --- datastores
expect_ok datastore create ds1 "$TMP/one"
expect_ok datastore create --max-overcommit 2.5 ds2 "$TMP/two"
[ -f "$TMP/one/.vdisk-datastore.json" ] || fail "no manifest"
expect_rc 1 datastore create ds1 "$TMP/three"
expect_one_line_error "a datastore named ds1 already exists"
expect_rc 1 datastore create ds3 "$TMP/one"
expect_one_line_error "is already datastore ds1"
expect_rc 1 datastore create ds3 "$TMP/one/inner"
expect_one_line_error "one inside the other"
expect_rc 1 datastore create 'bad/name' "$TMP/bad"
expect_one_line_error "not a datastore name"
# "rbd:POOL/IMAGE" names a Ceph image: no datastore may be called rbd.
expect_rc 1 datastore create rbd "$TMP/rbd"
expect_one_line_error "not rbd"
expect_rc 2 datastore create --max-overcommit -1 ds3 "$TMP/three"
expect_rc 2 datastore frobnicate
expect_ok datastore list
expect_out "ds1"
expect_out "$TMP/two"
expect_ok datastore list --json
[ "$(jq_py 'len(d)')" = 2 ] || fail "list --json has not two datastores"
[ "$(jq_py 'd[1]["max_overcommit"]')" = 2.5 ] || fail "limit not listed"
[ "$(jq_py 'd[0]["capacity"] > 0 and d[0]["free"] <= d[0]["capacity"]')" = true ] ||
	fail "capacity/free"

# --- images by both spellings, registered on creation
expect_ok create ds1:vm/a.vd 1G
expect_out "Formatting 'ds1:vm/a.vd'"
[ -f "$TMP/one/vm/a.vd" ] || fail "create ds1:vm/a.vd made no file"
expect_ok create -q "[ds1] b.vd" 64M
expect_ok io -q -c 'write -P 0x5a 0 1M' "[ds1] b.vd"
expect_ok io -q -r -c 'read -P 0x5a 0 1M' ds1:b.vd
expect_ok info --json ds1:vm/a.vd
[ "$(json_get virtual_size)" = $((1 << 30)) ] || fail "info through a datastore name"
# A host path inside a datastore is registered just the same.
expect_ok create -q "$TMP/one/c.vd" 1M
expect_ok ls --json ds1
[ "$(jq_py '[e["path"] for e in d]')" = "['b.vd', 'c.vd', 'vm/a.vd']" ] || fail "ls paths"
[ "$(jq_py 'd[2]["virtual_size"]')" = $((1 << 30)) ] || fail "ls virtual size"
[ "$(jq_py 'd[0]["kind"] + d[0]["state"]')" = imageready ] || fail "ls kind"
[ "$(jq_py 'd[0]["allocated"] >= 1048576')" = true ] || fail "ls allocated"
expect_ok datastore list --json
[ "$(jq_py 'd[0]["provisioned"]')" = $(((1 << 30) + (64 << 20) + (1 << 20))) ] ||
	fail "provisioned is not the sum of virtual sizes"
expect_rc 1 create ds1:b.vd 1M
expect_one_line_error "ds1:b.vd already exists"

# --- names that leave the datastore are refused, and make nothing
expect_rc 1 create 'ds1:../escape.vd' 1M
expect_one_line_error "'..' may not leave the datastore"
expect_rc 1 create 'ds1:/tmp/abs.vd' 1M
expect_one_line_error "must be relative"
ln -s /tmp "$TMP/one/out"
expect_rc 1 create ds1:out/x.vd 1M
expect_one_line_error "symbolic link leading outside"
expect_rc 1 info ds1:out/x.vd
expect_rc 1 create nosuch:x.vd 1M
expect_one_line_error "no datastore named nosuch"
expect_rc 1 info 'ds1:.vdisk-datastore.json'
[ ! -e "$TMP/escape.vd" ] && [ ! -e /tmp/abs.vd ] && [ ! -e /tmp/x.vd ] || fail "an escape made a file"

# --- import and export, with qemu-img as the oracle
qemu-img create -q -f qcow2 "$TMP/src.qcow2" 32M
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' -c 'write -P 0x22 20M 64k' "$TMP/src.qcow2" >/dev/null
qemu-img convert -O raw "$TMP/src.qcow2" "$TMP/ref.raw"
expect_ok import "$TMP/src.qcow2" ds2:imported.vd
expect_ok export ds2:imported.vd "$TMP/out.raw"
cmp "$TMP/ref.raw" "$TMP/out.raw" || fail "qcow2 -> import -> export differs from qemu-img"
# Thin: the copy holds about what was written, not 32M.
[ "$(disk_bytes "$TMP/two/imported.vd")" -lt $((8 << 20)) ] || fail "import is not thin"
expect_ok export -O vdisk "[ds2] imported.vd" "$TMP/out.vd"
expect_ok io -r -c 'read -P 0x22 20M 64k' "$TMP/out.vd"
expect_ok import -f raw "$TMP/ref.raw" ds2:raw/from-raw.vd
expect_ok export ds2:raw/from-raw.vd "$TMP/out2.raw"
cmp "$TMP/ref.raw" "$TMP/out2.raw" || fail "raw import/export round trip"
head -c 1M /dev/urandom >"$TMP/cd.iso"
expect_ok import --iso "$TMP/cd.iso" ds2:media/cd.iso
cmp "$TMP/cd.iso" "$TMP/two/media/cd.iso" || fail "ISO not copied byte for byte"
expect_ok ls --json ds2
[ "$(jq_py '[e["kind"] for e in d]')" = "['image', 'iso', 'image']" ] || fail "ISO kind"
expect_rc 2 import "$TMP/ref.raw" "$TMP/elsewhere.vd"
expect_one_line_error "not in a datastore"
expect_rc 1 import "$TMP/ref.raw" ds2:imported.vd
expect_one_line_error "already exists"
mkfifo "$TMP/fifo"
expect_rc 1 import "$TMP/fifo" ds2:fifo.vd
[ ! -e "$TMP/two/fifo.vd" ] || fail "a refused import left a file"

# --- overcommit: the limit refuses with the figures, set changes it
expect_ok datastore set --max-overcommit 0.000001 ds2
expect_rc 1 create ds2:huge.vd 1T
expect_one_line_error "datastore ds2: adding huge.vd (1 TiB) would provision"
expect_err "over the overcommit limit of 0.00"
expect_rc 1 import "$TMP/ref.raw" ds2:refused.vd
expect_one_line_error "overcommit limit"
[ ! -e "$TMP/two/huge.vd" ] && [ ! -e "$TMP/two/refused.vd" ] || fail "a refused create made a file"
expect_ok datastore set --max-overcommit none ds2
expect_ok create -q ds2:huge.vd 1T
expect_rc 2 datastore set ds2

# --- templates and linked clones, across datastores
expect_ok template ds1:b.vd
[ "$(stat -c %a "$TMP/one/b.vd")" = 444 ] || fail "template mode"
expect_rc 1 io -c 'write 0 4k' ds1:b.vd
expect_one_line_error "is template ds1:b.vd"
expect_rc 1 io -c 'write 0 4k' "$TMP/one/b.vd"
expect_one_line_error "read-only"
expect_ok create -b ds1:b.vd ds1:vm/clone.vd
expect_out "backing_file=../b.vd"
expect_ok create -q -b "[ds1] b.vd" ds2:clone2.vd
expect_ok io -r -c 'read -P 0x5a 0 1M' ds2:clone2.vd
expect_ok io -c 'write -P 0x77 0 4k' ds1:vm/clone.vd
# rebase takes the datastore spelling too, and stores a path.
expect_ok rebase -u -b ds1:b.vd ds1:vm/clone.vd
expect_ok info --json ds1:vm/clone.vd
[ "$(json_get backing_file)" = ../b.vd ] || fail "rebase -b NAME:PATH stored $(json_get backing_file)"
expect_ok ls ds1
expect_out "template"
expect_out "ds1:b.vd"
expect_ok ls --json ds2
[ "$(jq_py '[e["backing_chain"] for e in d if e["path"] == "clone2.vd"][0]')" = "['$TMP/one/b.vd']" ] ||
	fail "ls backing chain"
expect_rc 1 rm ds1:b.vd
expect_one_line_error "2 clones use it"
expect_rc 1 template --clear ds1:b.vd
expect_ok rm ds1:vm/clone.vd
expect_ok rm ds2:clone2.vd
expect_ok template --clear ds1:b.vd
expect_ok io -q -c 'write 0 4k' ds1:b.vd
expect_ok rm ds1:b.vd
[ ! -e "$TMP/one/b.vd" ] || fail "rm left the file"

# --- in use: a vdisk io holding an image is named, and rm is refused
mkfifo "$TMP/hold"
"$VDISK" io ds1:c.vd <"$TMP/hold" >"$TMP/hold.out" 2>&1 &
holder=$!
holders+=("$holder")
exec 3>"$TMP/hold"
printf 'write 0 4k\n' >&3
for _ in $(seq 200); do
	grep -q wrote "$TMP/hold.out" && break
	sleep 0.05
done
expect_rc 1 rm ds1:c.vd
expect_one_line_error "ds1:c.vd is in use by vdisk (pid $holder)"
expect_ok ls --json ds1
[ "$(jq_py '[e["users"] for e in d if e["path"] == "c.vd"][0]')" = "vdisk (pid $holder)" ] ||
	fail "ls does not name the holder"
exec 3>&-
wait "$holder" || true
holders=()
expect_ok rm ds1:c.vd

# --- eight processes creating in one datastore at once lose no entry
pids=()
for i in $(seq 8); do
	"$VDISK" create -q "ds1:par/img$i.vd" 1M >"$TMP/par$i.log" 2>&1 &
	pids+=($!)
done
for pid in "${pids[@]}"; do
	wait "$pid" || fail "a parallel create failed: $(cat "$TMP"/par*.log)"
done
expect_ok ls --json ds1
[ "$(jq_py 'len([e for e in d if e["path"].startswith("par/")])')" = 8 ] ||
	fail "parallel creates lost an entry"

# --- removing datastores: refused while full, files kept unless told
expect_rc 1 datastore remove ds1
expect_one_line_error "holds"
expect_rc 2 datastore remove --delete-files ds1
expect_ok datastore remove --force ds1
[ -f "$TMP/one/vm/a.vd" ] || fail "remove --force deleted files"
expect_rc 1 ls ds1
expect_one_line_error "no datastore named ds1"
# Registering the directory again finds its images.
expect_ok datastore create ds1 "$TMP/one"
expect_ok ls --json ds1
[ "$(jq_py 'len(d)')" = 9 ] || fail "re-registered datastore lost entries"
expect_ok datastore remove --force --delete-files ds1
[ ! -e "$TMP/one/vm/a.vd" ] || fail "--delete-files left an image"
expect_ok datastore list --json
[ "$(jq_py '[x["name"] for x in d]')" = "['ds2']" ] || fail "list after remove"
echo "datastore: all checks passed"
