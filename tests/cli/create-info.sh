#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# create and info: every preallocation mode with 4K, 64K and 2M clusters,
# text and JSON output, size suffixes, and bad sizes refused with a message.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3

size=$((64 << 20))
for cluster in 4K 64K 2M; do
	case $cluster in
	4K) cbytes=4096 ;;
	64K) cbytes=65536 ;;
	2M) cbytes=2097152 ;;
	esac
	for prealloc in off metadata full; do
		img=$TMP/$cluster-$prealloc.vd
		expect_ok create -c "$cluster" --preallocation "$prealloc" "$img" 64M
		expect_out "Formatting '$img', fmt=vdisk size=$size cluster_size=$cbytes preallocation=$prealloc"
		[ -f "$img" ] || fail "create made no file"

		expect_ok info "$img"
		expect_out "image: $img"
		expect_out "file format: vdisk"
		expect_out "format version: 1"
		expect_out "virtual size: 64 MiB ($size bytes)"
		expect_out "cluster_size: $cbytes"
		expect_out "state: clean"
		expect_out "incompatible features: 0x0"
		expect_out "journal size:"
		expect_out "disk size:"

		expect_ok info --json "$img"
		[ "$(json_get virtual_size)" -eq "$size" ] || fail "virtual_size"
		[ "$(json_get cluster_size)" -eq "$cbytes" ] || fail "cluster_size"
		[ "$(json_get format_version)" -eq 1 ] || fail "format_version"
		[ "$(json_get format)" = vdisk ] || fail "format"
		[ "$(json_get filename)" = "$img" ] || fail "filename"
		[ "$(json_get dirty)" = false ] || fail "dirty"
		[ "$(json_get incompatible_features)" -eq 0 ] || fail "incompatible_features"
		[ "$(json_get file_length)" -eq "$(stat -c %s "$img")" ] || fail "file_length"
		alloc=$(json_get allocated_bytes)
		actual=$(json_get actual_size)
		meta=$(json_get metadata_bytes)
		[ "$meta" -gt 0 ] || fail "metadata_bytes is 0"
		json_get journal_size >/dev/null
		json_get compatible_features >/dev/null
		json_get autoclear_features >/dev/null
		case $prealloc in
		off)
			[ "$alloc" -eq 0 ] || fail "$img: $alloc bytes allocated without preallocation"
			[ "$actual" -lt $((8 << 20)) ] || fail "$img: $actual bytes on disk, too many"
			;;
		metadata)
			[ "$alloc" -eq "$size" ] || fail "$img: metadata preallocation mapped $alloc bytes"
			[ "$actual" -lt "$size" ] || fail "$img: metadata preallocation is not sparse"
			;;
		full)
			[ "$alloc" -eq "$size" ] || fail "$img: full preallocation mapped $alloc bytes"
			[ "$actual" -ge "$size" ] || fail "$img: full preallocation uses only $actual bytes"
			;;
		esac
		expect_ok check "$img"
		expect_out "No errors were found on the image."
	done
done

# Sizes in every accepted spelling.
for spelling in 1G 1g 1024M 1048576K 1.5G 1GiB 0x40000000 1073741824; do
	img=$TMP/size-$spelling.vd
	case $spelling in
	1.5G) want=1610612736 ;;
	*) want=1073741824 ;;
	esac
	expect_ok create -q "$img" "$spelling"
	[ -z "$OUT" ] || fail "create -q printed something"
	expect_ok info --output=json "$img"
	[ "$(json_get virtual_size)" -eq "$want" ] || fail "size $spelling gave $(json_get virtual_size)"
done
expect_ok create -o cluster_size=8K,preallocation=off "$TMP/o.vd" 4M
expect_out "cluster_size=8192"
expect_ok info "$TMP/o.vd"
expect_out "virtual size: 4 MiB (4194304 bytes)"

# Malformed numbers are usage errors (2); sizes the format cannot hold are
# refused by the library (1).  Either way one line, and no file left.
bad=$TMP/bad.vd
for spec in "abc 2" "-1 2" "1X 2" "12.3.4 2" "0.1K 2" "99999999999999999999 2" "100E 2" \
	"1000 1" "128P 1"; do
	set -- $spec
	expect_rc "$2" create "$bad" "$1"
	expect_one_line_error
	[ ! -e "$bad" ] || fail "create with size $1 left a file"
done
expect_rc 2 create "$bad" ""
expect_one_line_error
for spec in "x 2" "3K 1" "1K 1" "4M 1" "0x3000 1"; do
	set -- $spec
	expect_rc "$2" create -c "$1" "$bad" 1M
	expect_one_line_error
	[ ! -e "$bad" ] || fail "create with cluster size $1 left a file"
done
expect_rc 2 create --preallocation=sometimes "$bad" 1M
expect_one_line_error "sometimes"
expect_rc 2 create -o cluster_size "$bad" 1M
expect_one_line_error "cluster_size"
expect_rc 2 create -o colour=red "$bad" 1M
expect_one_line_error "colour"

# An existing file is never overwritten.
echo precious >"$TMP/exists"
before=$(sha "$TMP/exists")
expect_rc 1 create "$TMP/exists" 1M
expect_one_line_error "$TMP/exists"
[ "$(sha "$TMP/exists")" = "$before" ] || fail "create changed an existing file"

# info on a missing file.
expect_rc 1 info "$TMP/missing.vd"
expect_one_line_error "$TMP/missing.vd"
echo "create-info: ok"
