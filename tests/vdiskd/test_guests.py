#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd with real QEMU guests (TCG): data written through vhost-user-blk
reads back and is in the image offline; an ext4 file system made and
filled in the guest (e2fsprogs' mke2fs) is in the image offline, and fstrim
gives a deleted file's space back; GET_ID; read-only disks; discard gives
space back; resize reaches the guest; a snapshot taken while the
guest writes holds exactly one instant; kill -9 of vdiskd during guest
writes loses nothing; a disk on packed virtqueues (packed=on) carries a
pattern and survives the kill -9 too; a disk moves live between two datastores while the
guest writes and verifies a checksummed pattern, and afterwards the guest
verifies all its data.

usage: test_guests.py VDISKD VDISK WORKDIR      (exit 0, 1, or 77: skip)
"""

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "guest"))

from vdlib import Vdiskd, require, skip, check  # noqa: E402

MB = 1 << 20


def sh(*argv):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True).stdout


class Env:
    def __init__(self, vdiskd, vdisk, work):
        self.vdisk = vdisk
        self.work = work
        self.d = Vdiskd(vdiskd, os.path.join(work, "d"))

    def image(self, name, size, fmt="vdisk"):
        path = os.path.join(self.work, name)
        if fmt == "vdisk":
            sh(self.vdisk, "create", path, str(size))
        else:
            with open(path, "wb") as f:
                f.truncate(size)
        return path

    def sock(self, name):
        return os.path.join(self.d.workdir, name + ".sock")

    def raw_file(self, image, out):
        """The guest's view of a vdisk image, read offline into raw file
        'out' (vdisk convert -O raw)."""
        if os.path.exists(out):
            os.unlink(out)
        sh(self.vdisk, "convert", "-O", "raw", image, out)
        return out

    def raw_of(self, image, snapshot=None):
        """The guest's view of a vdisk image, read offline."""
        src = image
        if snapshot:
            src = image + ".snapcopy"
            shutil.copyfile(image, src)
            sh(self.vdisk, "snapshot", "revert", src, snapshot)
        out = self.raw_file(src, image + ".raw")
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        if snapshot:
            os.unlink(src)
        return data


def guest_md5(g, dev, nbytes):
    rc, out = g.run(f"dd if={dev} bs=64k count={nbytes // 65536} iflag=direct "
                    "2>/dev/null | md5sum", timeout=120)
    assert rc == 0, out
    return out.split()[0]


def test_pattern(env, g, raw_img, vd_img):
    """A checksummed pattern written by the guest reads back through vdiskd
    and is in the image files offline."""
    g.run("dd if=/dev/urandom of=/tmp/pat bs=64k count=64 2>/dev/null", check=True)
    rc, out = g.run("md5sum /tmp/pat", check=True)
    want = out.split()[0]
    for dev in ("/dev/vda", "/dev/vdb"):
        g.run(f"dd if=/tmp/pat of={dev} bs=64k seek=16 oflag=direct conv=fsync "
              "2>/dev/null", check=True, timeout=120)
        got = g.run(f"dd if={dev} bs=64k skip=16 count=64 iflag=direct 2>/dev/null "
                    "| md5sum", check=True, timeout=120)[1].split()[0]
        check(got == want, f"{dev}: pattern reads back through vdiskd")
    with open(raw_img, "rb") as f:
        f.seek(16 * 65536)
        off_raw = hashlib.md5(f.read(64 * 65536)).hexdigest()
    check(off_raw == want, "raw image holds the pattern offline")
    env.d.call("disk-flush", disk=vd_img)
    shutil.copyfile(vd_img, vd_img + ".copy")
    data = env.raw_of(vd_img + ".copy")
    os.unlink(vd_img + ".copy")
    check(hashlib.md5(data[16 * 65536:80 * 65536]).hexdigest() == want,
          "vdisk image holds the pattern offline (vdisk convert -O raw)")


def host_tool(name):
    """An e2fsprogs program of the host (scripts/setup.sh installs them);
    /usr/sbin is not in every user's PATH."""
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert path, f"{name} not found: install e2fsprogs (scripts/setup.sh)"
    return path


def debugfs(raw, request):
    """stdout of debugfs -R REQUEST on a raw image, read-only (debugfs
    prints its errors, e.g. a missing file, on stderr and exits 0)."""
    r = subprocess.run([host_tool("debugfs"), "-R", request, raw], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.stdout


def test_filesystem(env, g, fs_img, dev="/dev/vdd"):
    """The guest makes an ext4 file system with the host's mke2fs, writes
    files, deletes a big one and runs fstrim (the image shrinks), and
    unmounts; the image, read offline, holds a clean file system with the
    files and their content."""
    blk = os.path.basename(dev)
    rc, out = g.run(f"cat /sys/block/{blk}/queue/discard_max_bytes", check=True)
    check(int(out) > 0, f"{dev} offers discard (discard_max_bytes {out.strip()})")
    # No lazy initialisation: ext4lazyinit would zero inode tables in the
    # background while the allocation is measured.
    g.run(f"/usr/sbin/mke2fs -t ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 {dev}",
          check=True, timeout=120)
    g.run(f"mkdir -p /mnt && mount -t ext4 {dev} /mnt", check=True)
    hello = b"hello from a vdiskd guest\n"
    g.run("printf 'hello from a vdiskd guest\\n' > /mnt/hello.txt && "
          "seq 1 20000 > /mnt/seq.txt && mkdir /mnt/dir && "
          "dd if=/dev/urandom of=/mnt/dir/rand.bin bs=64k count=16 2>/dev/null",
          check=True, timeout=60)
    rand_md5 = g.run("md5sum /mnt/dir/rand.bin", check=True)[1].split()[0]
    g.run("sync", check=True, timeout=60)
    a0 = env.d.disk(fs_img)["allocated"]
    g.run("dd if=/dev/urandom of=/mnt/big bs=1M count=16 2>/dev/null && sync",
          check=True, timeout=120)
    a1 = env.d.disk(fs_img)["allocated"]
    rc, trimmed = g.run("rm /mnt/big && sync && fstrim -v /mnt", check=True, timeout=120)
    a2 = env.d.disk(fs_img)["allocated"]
    # 64 KiB clusters: the file's first and last may hold older blocks.
    check(a1 >= a0 + 15 * MB and a2 <= a1 - 14 * MB,
          f"fstrim after deleting a 16 MiB file gives its space back to the image "
          f"({a0} -> {a1} -> {a2} bytes allocated; {trimmed.strip()})")
    g.run("umount /mnt", check=True, timeout=60)

    env.d.call("disk-flush", disk=fs_img)
    copy = fs_img + ".copy"
    shutil.copyfile(fs_img, copy)
    raw = env.raw_file(copy, fs_img + ".raw")
    os.unlink(copy)
    r = subprocess.run([host_tool("e2fsck"), "-f", "-n", raw], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "e2fsck -fn finds the image's file system clean"
          + ("" if r.returncode == 0 else ":\n" + r.stdout))
    names = set()
    for line in debugfs(raw, "ls -p /").decode().splitlines():
        # ls -p: /inode/mode/uid/gid/name/size/
        f = line.strip().split("/")
        if len(f) >= 7:
            names.add(f[5])
    check(names == {".", "..", "lost+found", "hello.txt", "seq.txt", "dir"},
          f"the root directory holds the files written, not the deleted one ({sorted(names)})")
    check(debugfs(raw, "cat /hello.txt") == hello, "hello.txt has its content")
    seq = "".join(f"{i}\n" for i in range(1, 20001)).encode()
    check(debugfs(raw, "cat /seq.txt") == seq, "seq.txt has its content (seq 1 20000)")
    got = hashlib.md5(debugfs(raw, "cat /dir/rand.bin")).hexdigest()
    check(got == rand_md5, "dir/rand.bin has the guest's 1 MiB of random data (md5)")
    os.unlink(raw)


def test_multiqueue(env, g, vd_img):
    """num-queues=2 with two vCPUs: blk-mq sends each CPU's requests to its
    own queue, and vdiskd serves both."""
    before = env.d.disk(vd_img)["queue-requests"]
    for cpu in (1, 2):
        g.run(f"taskset {cpu} dd if=/dev/vdb of=/dev/null bs=4k count=200 iflag=direct "
              "2>/dev/null", check=True, timeout=60)
    after = env.d.disk(vd_img)["queue-requests"]
    check(env.d.disk(vd_img)["active-queues"] == 2 and
          all(a - b >= 200 for a, b in zip(after, before)),
          f"both queues of the 2-queue disk carry requests ({before} -> {after})")


def test_serial_and_ro(env, g):
    rc, out = g.run("cat /sys/block/vda/serial", check=True)
    check(out.strip() == "VDTEST-SERIAL-1", f"GET_ID gives the serial ({out.strip()!r})")
    rc, out = g.run("cat /sys/block/vdc/ro", check=True)
    check(out.strip() == "1", "read-only disk is read-only in the guest")
    rc, out = g.run("dd if=/dev/zero of=/dev/vdc bs=4k count=1 oflag=direct 2>&1")
    check(rc != 0, f"guest cannot write the read-only disk ({out.strip()[:60]})")


def test_discard(env, g, vd_img):
    info0 = env.d.disk(vd_img)["allocated"]
    g.run("dd if=/dev/urandom of=/dev/vdb bs=1M count=8 seek=32 oflag=direct "
          "conv=fsync 2>/dev/null", check=True, timeout=120)
    info1 = env.d.disk(vd_img)["allocated"]
    g.run("blkdiscard -o $((32*1024*1024)) -l $((8*1024*1024)) /dev/vdb", check=True)
    info2 = env.d.disk(vd_img)["allocated"]
    check(info1 >= info0 + 8 * MB and info2 <= info1 - 7 * MB,
          f"blkdiscard gives space back ({info0} -> {info1} -> {info2} bytes)")
    rc, out = g.run("dd if=/dev/vdb bs=1M count=8 skip=32 iflag=direct 2>/dev/null "
                    "| md5sum", check=True)
    zero = hashlib.md5(bytes(8 * MB)).hexdigest()
    check(out.split()[0] == zero, "discarded range reads as zeros")


def test_resize(env, g, vd_img):
    before = int(g.run("cat /sys/block/vdb/size", check=True)[1])
    res = env.d.call("disk-resize", disk=vd_img, size=96 * MB)
    deadline = time.monotonic() + 20
    after = before
    while time.monotonic() < deadline and after == before:
        after = int(g.run("cat /sys/block/vdb/size", check=True)[1])
        time.sleep(0.2)
    check(after == 96 * MB // 512,
          f"resized disk shows its new size in the guest ({before} -> {after} sectors, "
          f"pause {res['pause-us']} us)")


def test_snapshot(env, g, vd_img):
    """Blocks written one after the other: the snapshot holds a prefix of
    them, with no torn block and nothing after the instant."""
    # The writer runs until told to stop, then writes 20 more blocks, so
    # the snapshot falls strictly inside the run on a fast or slow host.
    g.run("rm -f /tmp/done /tmp/stop /tmp/n; (i=0; extra=20; "
          "while [ $i -lt 4000 ] && [ $extra -gt 0 ]; do printf 'blk%06d' $i | "
          "dd of=/dev/vdb bs=4096 seek=$((4096+i)) conv=sync oflag=direct "
          "2>/dev/null || echo FAIL; i=$((i+1)); echo $i >/tmp/n; "
          "[ -e /tmp/stop ] && extra=$((extra-1)); done; touch /tmp/done) "
          ">/tmp/snapw.log 2>&1 &", check=True)
    g.wait_until('[ "$(cat /tmp/n 2>/dev/null || echo 0)" -ge 20 ]', 120,
                 "the snapshot writer did not start")
    res = env.d.call("snapshot-create", disk=vd_img, name="mid")
    g.run("touch /tmp/stop", check=True)
    g.wait_until("test -e /tmp/done", 180, "the snapshot writer did not finish")
    check(g.run("cat /tmp/snapw.log", check=True)[1].strip() == "",
          "writer saw no error during the snapshot")
    nblk = int(g.run("cat /tmp/n", check=True)[1].strip())
    data = env.raw_of(vd_img, snapshot="mid")
    base = 4096 * 4096
    state = []
    for i in range(nblk):
        blk = data[base + i * 4096: base + (i + 1) * 4096]
        want = (b"blk%06d" % i).ljust(4096, b"\0")
        state.append("D" if blk == want else "Z" if blk == bytes(4096) else "X")
    s = "".join(state)
    k = s.find("Z")
    check("X" not in s and (k < 0 or "D" not in s[k:]) and 0 < k < nblk,
          f"snapshot holds blocks 0..{k - 1} of {nblk} written, none after, none torn "
          f"(pause {res['pause-us']} us)")
    # The image is open (and locked) in vdiskd: flush it, read a copy.
    env.d.call("disk-flush", disk=vd_img)
    shutil.copyfile(vd_img, vd_img + ".copy")
    cur = env.raw_of(vd_img + ".copy")
    os.unlink(vd_img + ".copy")
    check(all(cur[base + i * 4096: base + i * 4096 + 9] == b"blk%06d" % i
              for i in range(nblk)), "the disk itself has every block")
    env.d.call("snapshot-delete", disk=vd_img, name="mid")


def test_packed(env, g, dev="/dev/vdf"):
    """The disk QEMU started with packed=on runs on packed virtqueues with
    EVENT_IDX (the guest's virtio feature bits 34 and 29), and a checksummed
    pattern reads back through them."""
    name = os.path.basename(dev)
    feats = g.run(f"cat /sys/block/{name}/device/features", check=True)[1].strip()
    check(len(feats) > 34 and feats[34] == "1" and feats[29] == "1",
          f"{dev}: the guest drives packed virtqueues with EVENT_IDX ({feats[:40]})")
    g.run("dd if=/dev/urandom of=/tmp/ppat bs=64k count=64 2>/dev/null", check=True)
    want = g.run("md5sum /tmp/ppat", check=True)[1].split()[0]
    g.run(f"dd if=/tmp/ppat of={dev} bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null",
          check=True, timeout=120)
    got = g.run(f"dd if={dev} bs=64k skip=16 count=64 iflag=direct 2>/dev/null | md5sum",
                check=True, timeout=120)[1].split()[0]
    check(got == want, f"{dev}: pattern reads back through packed virtqueues")


def test_kill9(env, g, vd_img, devs=("/dev/vdb", "/dev/vdf")):
    """kill -9 of vdiskd while the guest writes to a split-ring and a
    packed-ring disk: both writers finish without an error and their data
    verifies."""
    g.run("dd if=/dev/urandom of=/tmp/big bs=1M count=24 2>/dev/null", check=True)
    want = g.run("md5sum /tmp/big", check=True)[1].split()[0]
    # The range is fresh: the writes allocate clusters, and what vdiskd
    # completed before the kill must survive it without a guest flush.
    for i, dev in enumerate(devs):
        g.run(f"rm -f /tmp/kdone{i}; (dd if=/tmp/big of={dev} bs=4k seek=8192 oflag=direct "
              f"2>/tmp/kerr{i}; echo $? > /tmp/kdone{i}) >/dev/null 2>&1 &", check=True)
    time.sleep(0.7)
    before = env.d.disk(vd_img)["bytes-written"]
    running = [g.run(f"test -e /tmp/kdone{i}")[0] != 0 for i in range(len(devs))]
    env.d.kill9()
    time.sleep(0.5)
    env.d.start()
    for i, dev in enumerate(devs):
        g.wait_until(f"test -e /tmp/kdone{i}", 180,
                     f"the writer on {dev} did not finish after the restart")
        rc = g.run(f"cat /tmp/kdone{i}", check=True)[1].strip()
        err = g.run(f"cat /tmp/kerr{i}")[1]
        check(running[i], f"the writer on {dev} was still running when vdiskd was killed")
        check(rc == "0", f"writer on {dev} finished without an I/O error across kill -9 "
              f"({before} bytes written to vdb before the kill): {err.strip()[:80]}")
        got = g.run(f"dd if={dev} bs=64k skip=512 count=384 iflag=direct 2>/dev/null "
                    "| md5sum", check=True, timeout=120)[1].split()[0]
        check(got == want, f"data written to {dev} across the restart verifies")
    rc, out = g.run("dmesg | grep -i -E 'I/O error|blk_update_request' | head -3")
    check(out.strip() == "", "no I/O error in the guest's kernel log")
    # Whether a request was in flight at the kill is luck; say which.
    print("note: the restarted vdiskd resubmitted requests left in flight"
          if "resubmitting" in env.d.log_text() else
          "note: no request was in flight at the kill")


# Block i of the migration test: its number and the md5 of it (42 bytes),
# as guest shell code setting $e; and the same bytes read back.
BLOCK_OF = "b=$(printf 'blk%06d' $i); e=\"$b $(echo $b | md5sum | head -c 32)\""
READ_BACK = ("dd if=/dev/vde bs=4096 skip=$((4096+i)) count=1 iflag=direct 2>/dev/null "
             "| head -c 42")


def test_live_migration(env, g, spec, sock):
    """The guest writes numbered, checksummed blocks and reads each back at
    once, all the time its disk (/dev/vde, datastore a) moves to datastore
    b; then it verifies everything it wrote."""
    g.run("dd if=/dev/urandom of=/tmp/m bs=1M count=8 2>/dev/null && "
          "dd if=/tmp/m of=/dev/vde bs=1M oflag=direct conv=fsync 2>/dev/null", check=True)
    want = g.run("md5sum /tmp/m", check=True)[1].split()[0]
    # Block i at 16 MiB + 4 KiB * i: its number and its data's md5, read
    # back and compared after each write.  Runs until /tmp/mstop.
    g.run("rm -f /tmp/mstop /tmp/mdone /tmp/mn; (i=0; while [ ! -e /tmp/mstop ]; do "
          f"{BLOCK_OF}; printf \"$e\" | dd of=/dev/vde bs=4096 seek=$((4096+i)) conv=sync "
          "oflag=direct 2>/dev/null || echo WFAIL; "
          f"[ \"$({READ_BACK})\" = \"$e\" ] || echo RFAIL $i; i=$((i+1)); echo $i >/tmp/mn; "
          "done; touch /tmp/mdone) >/tmp/mw.log 2>&1 &", check=True)
    g.wait_until('[ "$(cat /tmp/mn 2>/dev/null || echo 0)" -ge 10 ]', 120,
                 "the migration writer did not start")
    n0 = int(g.run("cat /tmp/mn")[1].strip())
    # 4 MiB/s: the 8 MiB copy takes a few seconds of the writer's life.
    r = subprocess.run([env.vdisk, "migrate", spec, "--to", "b", "--bandwidth", "4M"],
                       env=env.tool_env, capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"vdisk migrate of the running guest's disk: "
          f"{r.stdout.strip()} {r.stderr.strip()}")
    n1 = int(g.run("cat /tmp/mn")[1].strip())
    g.run("touch /tmp/mstop", check=True)
    g.wait_until("test -e /tmp/mdone", 60, "the migration writer did not stop")
    nblk = int(g.run("cat /tmp/mn", check=True)[1].strip())
    check(n1 > n0 and g.run("cat /tmp/mw.log", check=True)[1].strip() == "",
          f"the guest wrote and verified blocks {n0}..{n1} while its disk moved, no error")
    check(guest_md5(g, "/dev/vde", 8 * MB) == want, "after the pivot the guest reads "
          "its 8 MiB back")
    bad = g.run(f"i=0; while [ $i -lt {nblk} ]; do {BLOCK_OF}; "
                f"[ \"$({READ_BACK})\" = \"$e\" ] || echo $i; i=$((i+1)); done",
                check=True, timeout=300)[1].split()
    check(not bad, f"and all {nblk} numbered blocks ({len(bad)} wrong)")
    dst = os.path.join(env.work, "b", "mig.vd")
    check(env.d.disk(sock)["image"] == dst, "vdiskd serves it from datastore b")
    check(not os.path.exists(os.path.join(env.work, "a", "mig.vd")), "the source is gone")
    env.d.call("disk-flush", disk=sock)
    alloc = env.d.call("disk-info", disk=sock)["allocated_bytes"]
    # What the guest wrote: 8 MiB, and nblk 4 KiB blocks in 64 KiB clusters.
    expect = 8 * MB + (nblk * 4096 + 65535) // 65536 * 65536
    check(abs(alloc - expect) <= expect // 100,
          f"thin: {alloc} bytes allocated for the {expect} the guest wrote")
    return dst


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    vdiskd, vdisk, work = sys.argv[1:]
    require("qemu-system-x86_64")
    try:
        from guestlib import Guest, Disk, find_kernel
        find_kernel()
    except Exception as e:  # no kernel or busybox: nothing to boot
        skip(f"no guest: {e}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = Env(vdiskd, vdisk, work)
    raw_img = env.image("raw.img", 64 * MB, fmt="raw")
    vd_img = env.image("disk.vd", 64 * MB)
    ro_img = env.image("ro.vd", 16 * MB)
    fs_img = env.image("fs.vd", 64 * MB)
    packed_img = env.image("packed.vd", 64 * MB)
    # Two datastores for the live migration; vdiskd and the tool share
    # their registry.
    os.environ["VDISK_DATASTORES"] = os.path.join(work, "registry.json")
    env.tool_env = dict(os.environ, VDISKD_CTL=env.d.ctl)
    for ds in ("a", "b"):
        sh(vdisk, "datastore", "create", ds, os.path.join(work, ds))
    sh(vdisk, "create", "a:mig.vd", str(32 * MB))
    with env.d:
        env.d.call("disk-add", image=raw_img, socket=env.sock("raw"),
                   serial="VDTEST-SERIAL-1")
        env.d.call("disk-add", image=vd_img, socket=env.sock("vd"), queues=2)
        env.d.call("disk-add", image=ro_img, socket=env.sock("ro"), read_only=True)
        env.d.call("disk-add", image=fs_img, socket=env.sock("fs"))
        env.d.call("disk-add", image="a:mig.vd", socket=env.sock("mig"))
        env.d.call("disk-add", image=packed_img, socket=env.sock("packed"), queues=2)
        # ext4 and its checksum algorithm (a soft dependency modules.dep
        # does not list), e2fsprogs' mke2fs (busybox's makes only ext2).
        g = Guest("g", os.path.join(work, "g"), cpus=2, disks=[
            Disk.vhost_user_blk(env.sock("raw")),
            Disk.vhost_user_blk(env.sock("vd"), queues=2),
            Disk.vhost_user_blk(env.sock("ro")),
            Disk.vhost_user_blk(env.sock("fs")),
            Disk.vhost_user_blk(env.sock("mig")),
            Disk.vhost_user_blk(env.sock("packed"), queues=2, packed=True)],
            modules=["crc32c_generic", "ext4"], binaries=["mke2fs"])
        with g:
            g.wait_ready(timeout=180)
            test_pattern(env, g, raw_img, vd_img)
            test_filesystem(env, g, fs_img)
            test_multiqueue(env, g, vd_img)
            test_serial_and_ro(env, g)
            test_discard(env, g, vd_img)
            test_resize(env, g, vd_img)
            test_snapshot(env, g, vd_img)
            test_packed(env, g)
            test_kill9(env, g, vd_img)
            mig = test_live_migration(env, g, "a:mig.vd", env.sock("mig"))
            q = env.d.disk(vd_img)["queue-requests"]
            print(f"per-queue requests of the 2-queue disk: {q}")
        env.d.call("disk-remove", disk=env.sock("mig"))
    r = subprocess.run([vdisk, "check", mig], capture_output=True, text=True)
    check(r.returncode == 0, f"vdisk check on the destination is clean {r.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
