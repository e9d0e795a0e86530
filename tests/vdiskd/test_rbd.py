#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd serving Ceph RBD images (issue 12), on a one-node cluster the test
starts (tests/ceph/cephlib.py) and stops by PID; the project's vhost-user-blk
front end (tests/vublk) plays the guest.

- every request type through librbd's asynchronous calls; the data the
  front end wrote is what `rbd export` reads (any Ceph client sees it);
  write-zeroes and discard give space back; snapshots through the daemon
  are RBD snapshots; a resize reaches the front end;
- a second vdiskd (think: a second host) is refused the image with the
  exclusive lock's owner named, and serves it once the first let go;
- kill -9 of vdiskd with writes in flight (the OSD paused so they stay in
  flight): the restarted vdiskd breaks the dead one's lock, resubmits, and
  every write completes OK and reads back;
- a TCG guest whose disk is an RBD image served by vdiskd writes a
  checksummed pattern, reads it back, and `rbd export` holds it;
- configuration errors (no such pool, image or configuration file, a wrong
  key, a stopped cluster) give one sentence naming the cluster and cause,
  within the client timeout.

usage: test_rbd.py VDISKD VUBLK WORKDIR      (exit 0, 1, or 77 without Ceph)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ceph"))
sys.path.insert(0, os.path.join(HERE, "..", "guest"))

from vdlib import RpcError, Vdiskd, check, skip  # noqa: E402
import cephlib  # noqa: E402
import hashlib  # noqa: E402


def vublk(binary, *args, timeout=120):
    p = subprocess.run([binary] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return p.returncode, p.stdout


def export(c, image, work):
    out = os.path.join(work, image + ".raw")
    if os.path.exists(out):
        os.unlink(out)
    c.rbd("export", f"{c.pool}/{image}", out)
    with open(out, "rb") as f:
        return f.read()


def refused(d, what, **params):
    """disk-add must fail; returns the daemon's sentence."""
    t0 = time.monotonic()
    try:
        d.call("disk-add", **params)
    except RpcError as e:
        msg = str(e)
        print(f"  {what}: {msg} ({time.monotonic() - t0:.1f} s)")
        return msg
    raise AssertionError(f"{what}: disk-add succeeded")


def test_io(c, d, vub, work):
    c.rbd("create", f"{c.pool}/d1", "--size", "64M")
    sock = os.path.join(d.workdir, "d1.sock")
    d.call("disk-add", image=c.spec("d1"), socket=sock, queues=2, serial="rbd-d1")
    info = d.disk(sock)
    check(info["format"] == "rbd" and info["size"] == 64 << 20,
          f"disk-list shows the RBD disk: {info['format']}, {info['size']} bytes")
    rc, out = vublk(vub, "io", "-q", "2",
                    "-c", "write -S 7 0 4M", "-c", "write -P 0x5a -s 4 8M 1M",
                    "-c", "queue 1", "-c", "write -P 0x33 16M 2M", "-c", "flush",
                    "-c", "read -S 7 0 4M", "-c", "read -P 0x5a 8M 1M",
                    "-c", "zero -u 16M 1M", "-c", "read -P 0 16M 1M",
                    "-c", "read -P 0x33 17M 1M", "-c", "get-id", sock)
    print(out)
    check(rc == 0, "writes, reads, flush, write-zeroes and get-id through librbd")
    check("rbd-d1" in out, "GET_ID answers the serial")
    data = export(c, "d1", work)
    check(data[8 << 20:9 << 20] == b"\x5a" * (1 << 20) and
          data[16 << 20:17 << 20] == bytes(1 << 20) and
          data[17 << 20:18 << 20] == b"\x33" * (1 << 20),
          "rbd export reads what the front end wrote")
    rc, out = vublk(vub, "bench", "-t", "2", "-q", "2", "-d", "16", "-w", "randrw", sock)
    print(out)
    check(rc == 0 and " 0 errors" in out, "two-queue random read/write run, no error")
    before = d.disk(sock)["allocated"]
    rc, out = vublk(vub, "io", "-c", "discard 0 64M", "-c", "flush", sock)
    after = d.disk(sock)["allocated"]
    check(rc == 0 and after < before,
          f"a discard of the disk gives space back: {before} -> {after} bytes allocated")
    d.call("snapshot-create", disk=sock, name="s1")
    snaps = c.rbd("snap", "ls", f"{c.pool}/d1")
    check("s1" in snaps, "snapshot-create on the served disk makes an RBD snapshot")
    d.call("snapshot-delete", disk=sock, name="s1")
    check("s1" not in c.rbd("snap", "ls", f"{c.pool}/d1"), "snapshot-delete removes it")
    d.call("disk-resize", disk=sock, size=96 << 20)
    rc, out = vublk(vub, "info", "-j", sock)
    cap = json.loads(out)["config"]["capacity_sectors"] if rc == 0 else None
    check(cap == (96 << 20) // 512, f"the front end sees the new capacity ({cap} sectors)")
    check(str(96 << 20) in c.rbd("info", f"{c.pool}/d1", "--format", "json"),
          "the RBD image has the new size")
    return sock


def test_second_server(c, d, vdiskd, vub, work, sock):
    rc, _ = vublk(vub, "io", "-c", "write -S 11 0 1M", sock)
    check(rc == 0, "the first vdiskd writes")
    d2 = Vdiskd(vdiskd, os.path.join(work, "d2"))
    with d2:
        msg = refused(d2, "a second vdiskd on the same image", image=c.spec("d1"),
                      socket=os.path.join(d2.workdir, "x.sock"))
        check("exclusive lock" in msg and "d1" in msg,
              "a second vdiskd is refused, the lock's owner named")
        ro = os.path.join(d2.workdir, "ro.sock")
        d2.call("disk-add", image=c.spec("d1"), socket=ro, read_only=True)
        rc, _ = vublk(vub, "io", "-c", "read -S 11 0 1M", ro)
        check(rc == 0, "a read-only export of the locked image works beside it")
        d2.call("disk-remove", disk=ro)
        d.call("disk-remove", disk=sock)
        x = os.path.join(d2.workdir, "x.sock")
        d2.call("disk-add", image=c.spec("d1"), socket=x)
        rc, _ = vublk(vub, "io", "-c", "read -S 11 0 1M", "-c", "write -P 1 0 4K", x)
        check(rc == 0, "once the first let go, the second serves it read-write")


def test_kill9(c, vdiskd, vub, work):
    c.rbd("create", f"{c.pool}/k1", "--size", "32M")
    d = Vdiskd(vdiskd, os.path.join(work, "k"))
    with d:
        sock = os.path.join(d.workdir, "k1.sock")
        d.call("disk-add", image=c.spec("k1"), socket=sock)
        osd = c.procs["osd.0"]
        os.kill(osd.pid, signal.SIGSTOP)
        try:
            w = subprocess.Popen([vub, "inflight", "-n", "16", "-b", "64K", "-S", "9",
                                  "-R", "60000", sock], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            line = w.stdout.readline()
            check(line.startswith("ready") and line.split()[1] != "0",
                  f"writes are in flight in vdiskd (OSD paused): {line.strip()}")
            d.kill9()
        finally:
            os.kill(osd.pid, signal.SIGCONT)
        t0 = time.monotonic()
        d.start()
        out = w.communicate(timeout=120)[0]
        check(w.returncode == 0, "every write in flight at the kill completed OK after the "
              f"restart ({time.monotonic() - t0:.1f} s): " + " ".join(out.split()[-8:]))
        check("resubmitting" in d.log_text(), "the restarted vdiskd resubmitted them")
        rc, _ = vublk(vub, "io", "-c", "read -S 9 0 1M", sock)
        check(rc == 0, "their data reads back")


def test_guest(c, d, work):
    """A real guest (QEMU, TCG) on an RBD disk served by vdiskd."""
    if not shutil.which("qemu-system-x86_64"):
        print("note: no qemu-system-x86_64: guest case skipped")
        return
    try:
        from guestlib import Guest, Disk, find_kernel
        find_kernel()
    except Exception as e:  # no kernel or busybox: nothing to boot
        print(f"note: no guest ({e}): guest case skipped")
        return
    c.rbd("create", f"{c.pool}/g1", "--size", "64M")
    sock = os.path.join(d.workdir, "g1.sock")
    d.call("disk-add", image=c.spec("g1"), socket=sock, queues=2)
    with Guest("g", os.path.join(work, "g"), cpus=2,
               disks=[Disk.vhost_user_blk(sock, queues=2)]) as g:
        g.wait_ready()
        g.run("dd if=/dev/urandom of=/tmp/pat bs=64k count=64 2>/dev/null", check=True)
        want = g.run("md5sum /tmp/pat", check=True)[1].split()[0]
        g.run("dd if=/tmp/pat of=/dev/vda bs=64k seek=16 oflag=direct conv=fsync "
              "2>/dev/null", check=True, timeout=120)
        got = g.run("dd if=/dev/vda bs=64k skip=16 count=64 iflag=direct 2>/dev/null "
                    "| md5sum", check=True, timeout=120)[1].split()[0]
        check(got == want, "the guest reads back the pattern it wrote to its RBD disk")
    data = export(c, "g1", work)
    check(hashlib.md5(data[16 * 65536:80 * 65536]).hexdigest() == want,
          "rbd export holds the guest's pattern")
    q = d.disk(sock)["queue-requests"]
    print(f"  guest requests per queue: {q}")
    d.call("disk-remove", disk=sock)


def test_errors(c, d, work):
    sock = os.path.join(d.workdir, "e.sock")
    msg = refused(d, "missing pool", image=c.spec("d1", pool="nopool"), socket=sock)
    check("no pool 'nopool'" in msg and str(c.port) in msg,
          "a missing pool is named, with the cluster's address")
    msg = refused(d, "missing image", image=c.spec("nothere"), socket=sock)
    check("no such image" in msg, "a missing image is named")
    msg = refused(d, "missing configuration", image=f"rbd:rbd/d1:conf={work}/none.conf",
                  socket=sock)
    check("none.conf" in msg, "a missing configuration file is named")
    msg = refused(d, "bad name", image="rbd:justapool", socket=sock)
    check("rbd:POOL/IMAGE" in msg, "a malformed name gets the grammar")
    bad = os.path.join(work, "badkey.conf")
    badkr = os.path.join(work, "badkey.keyring")
    subprocess.run(["ceph-authtool", "--create-keyring", badkr, "--gen-key", "-n",
                    "client.admin"], check=True, capture_output=True)
    with open(c.conf) as f, open(bad, "w") as g:
        g.write(f.read().replace(c.keyring, badkr))
    t0 = time.monotonic()
    msg = refused(d, "wrong key", image=f"rbd:rbd/d1:conf={bad}", socket=sock)
    check("authentication" in msg and str(c.port) in msg and time.monotonic() - t0 < 30,
          "a wrong key is reported as an authentication failure, promptly")
    return bad


def test_stopped_cluster(c, d, work):
    c.stop()
    t0 = time.monotonic()
    msg = refused(d, "stopped cluster", image=c.spec("d1"),
                  socket=os.path.join(d.workdir, "s.sock"))
    took = time.monotonic() - t0
    check("no monitor answered" in msg and took < 30,
          f"a stopped cluster fails within the timeout ({took:.1f} s), not a hang")


def main():
    vdiskd, vub, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    c = cephlib.Cluster(os.path.join(work, "ceph"))
    try:
        c.start()
    except cephlib.Unavailable as e:
        skip(f"Ceph cannot start here: {e}")
    print(f"one-node Ceph cluster up in {c.start_seconds:.1f} s (mon port {c.port})")
    os.environ["VRBD_TIMEOUT"] = "5"
    try:
        d = Vdiskd(vdiskd, os.path.join(work, "d"))
        with d:
            sock = test_io(c, d, vub, work)
            test_second_server(c, d, vdiskd, vub, work, sock)
            test_guest(c, d, work)
            test_errors(c, d, work)
        test_kill9(c, vdiskd, vub, work)
        d = Vdiskd(vdiskd, os.path.join(work, "d3"))
        with d:
            test_stopped_cluster(c, d, work)
    finally:
        c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
