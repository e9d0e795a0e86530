#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The disk server part of the demo: vdiskd serves a vdisk image of datastore
ds1 to a small QEMU guest (TCG) over vhost-user-blk.  The guest writes data
and reads it back with a checksum; a snapshot is taken while a writer in the
guest runs; `vdisk ps` and the disk's counters (disk-stats) are shown; then
the disk moves live to datastore ds2 while the guest writes and verifies
numbered blocks, with progress, and the guest verifies all its data after
the pivot; then everything started here is stopped by its PID and the image
is checked offline: it holds the guest's data, and the snapshot holds
exactly one instant of the writer's blocks.

usage: demo-disk.py BUILD_DIR WORK_DIR
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "vdiskd"))
from guestlib import Disk, Guest, GuestError  # noqa: E402
from vdlib import RpcError, Vdiskd  # noqa: E402

BOLD, PLAIN = "\033[1m", "\033[0m"
MB = 1 << 20
DATA_MB = 16        # checksummed data the guest writes at offset 0
BLK_BASE = 64 * MB  # where the writer's numbered 4 KiB blocks go
MIG_BASE = 128 * MB  # where the blocks written during the migration go
# Guest shell code: block i of the migration writer (its number and the md5
# of it, in $e), and the same bytes read back from the disk.
BLOCK_OF = "b=$(printf 'mig%06d' $i); e=\"$b $(echo $b | md5sum | head -c 32)\""
READ_BACK = (f"dd if=/dev/vda bs=4096 skip=$(({MIG_BASE // 4096}+i)) count=1 iflag=direct "
             "2>/dev/null | head -c 42")


class Demo:
    def __init__(self, build, work):
        self.vdisk = os.path.join(build, "tools", "vdisk")
        self.work = work
        # Two datastores of the demo's own (a private registry): the disk
        # lives in ds1, then moves to ds2 while the guest runs.
        self.spec = "ds1:vm1.vd"
        self.image = os.path.join(work, "ds1", "vm1.vd")
        # Unix socket paths must fit in 107 bytes, wherever the checkout is.
        self.run_dir = tempfile.mkdtemp(prefix="vdemo")
        self.sock = os.path.join(self.run_dir, "vm1.sock")
        # Its log, database and pidfile stay with the demo's files.
        self.d = Vdiskd(os.path.join(build, "tools", "vdiskd"),
                        os.path.join(work, "vdiskd"))
        self.d.ctl = os.path.join(self.run_dir, "vdiskd.sock")
        os.environ["VDISK_DATASTORES"] = os.path.join(work, "datastores.json")
        self.env = dict(os.environ, VDISKD_CTL=self.d.ctl)

    def rel(self, path):
        return os.path.relpath(path, ROOT) if path.startswith(ROOT + "/") else path

    def step(self, *argv):
        """Run a vdisk command from the checkout, as the demo shows it."""
        shown = [self.rel(self.vdisk)] + [self.rel(a) for a in argv[1:]]
        print(f"\n{BOLD}$ {shlex.join(shown)}{PLAIN}", flush=True)
        subprocess.run([self.vdisk] + list(argv[1:]), check=True, cwd=ROOT,
                       env=self.env)

    def rpc(self, method, **params):
        """A JSON-RPC call to vdiskd's control socket, shown as sent."""
        shown = {k.replace("_", "-"): self.rel(v) if isinstance(v, str) else v
                 for k, v in params.items()}
        print(f"\n{BOLD}-> vdiskd {method} {shown}{PLAIN}", flush=True)
        res = self.d.call(method, **params)
        return res

    def guest(self, g, cmd, timeout=120):
        rc, out = g.run(cmd, timeout=timeout)
        if rc != 0:
            raise RuntimeError(f"guest: {cmd!r} exited {rc}:\n{out}")
        return out


def huge_free_mb():
    free = size_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                free = int(line.split()[1])
            elif line.startswith("Hugepagesize:"):
                size_kb = int(line.split()[1])
    return free * size_kb // 1024


def show_stats(stats):
    """disk-stats as a table: per operation, requests, bytes, errors and
    latency (mean, and the histogram's bucket holding the median and the
    99th percentile)."""
    print(f"{'op':<13}{'requests':>9}{'bytes':>12}{'errors':>7}"
          f"{'avg us':>9}{'p50 <us':>9}{'p99 <us':>9}")
    for op, o in stats["ops"].items():
        if not o["requests"]:
            continue
        pct = {}
        for p in (0.5, 0.99):
            seen = 0
            for b in o["latency-histogram"]:
                seen += b["count"]
                if seen >= p * o["requests"]:
                    pct[p] = b["lt-us"] if b["lt-us"] is not None else "more"
                    break
        print(f"{op:<13}{o['requests']:>9}{o['bytes']:>12}{o['errors']:>7}"
              f"{o['latency-us-avg']:>9}{pct.get(0.5, '-'):>9}"
              f"{pct.get(0.99, '-'):>9}")
    print(flush=True)


def migrate(demo, g, want, nblk):
    """The disk moves from ds1 to ds2 while the guest writes numbered,
    checksummed blocks and reads each back; then the guest verifies all it
    ever wrote."""
    print(f"\n{BOLD}guest# a writer writes numbered, checksummed 4 KiB blocks and "
          f"reads each back, while the disk moves live from ds1 to ds2{PLAIN}",
          flush=True)
    demo.step("vdisk", "datastore", "list")
    demo.guest(g, "rm -f /tmp/mstop /tmp/mdone /tmp/mn; (i=0; while [ ! -e /tmp/mstop ]; "
               f"do {BLOCK_OF}; printf \"$e\" | dd of=/dev/vda bs=4096 "
               f"seek=$(({MIG_BASE // 4096}+i)) conv=sync oflag=direct 2>/dev/null "
               f"|| echo WFAIL; [ \"$({READ_BACK})\" = \"$e\" ] || echo RFAIL $i; "
               "i=$((i+1)); echo $i >/tmp/mn; done; touch /tmp/mdone) >/tmp/mw.log 2>&1 &")
    g.wait_until('[ "$(cat /tmp/mn 2>/dev/null || echo 0)" -ge 5 ]', 120,
                 "the guest's writer did not start")
    # 8 MiB/s, so that the copy lasts long enough to watch; -p draws a
    # progress line on a terminal, --status shows the job from anywhere.
    argv = ["migrate", "-p", "--bandwidth", "8M", demo.spec, "--to", "ds2"]
    print(f"\n{BOLD}$ {shlex.join([demo.rel(demo.vdisk)] + argv)} &{PLAIN}", flush=True)
    mig = subprocess.Popen([demo.vdisk] + argv, cwd=ROOT, env=demo.env)
    time.sleep(1)
    while mig.poll() is None:
        subprocess.run([demo.vdisk, "migrate", "--status", demo.spec], cwd=ROOT, env=demo.env)
        time.sleep(1)
    if mig.returncode != 0:
        raise RuntimeError(f"vdisk migrate exited with {mig.returncode}")
    demo.guest(g, "touch /tmp/mstop")
    g.wait_until("test -e /tmp/mdone", 60, "the guest's writer did not stop")
    if demo.guest(g, "cat /tmp/mw.log").strip():
        raise RuntimeError("the guest's writer saw an error during the migration")
    n = int(demo.guest(g, "cat /tmp/mn").strip())
    demo.image = os.path.join(demo.work, "ds2", "vm1.vd")
    demo.spec = "ds2:vm1.vd"
    demo.step("vdisk", "datastore", "list")
    demo.step("vdisk", "ps")
    print(f"\n{BOLD}guest# after the pivot: verify the {DATA_MB} MiB, the snapshot "
          f"writer's {nblk} blocks and the migration writer's {n}{PLAIN}", flush=True)
    got = demo.guest(g, f"dd if=/dev/vda bs=1M count={DATA_MB} iflag=direct "
                     "2>/dev/null | md5sum").split()[0]
    bad = demo.guest(g, f"i=0; while [ $i -lt {n} ]; do {BLOCK_OF}; "
                     f"[ \"$({READ_BACK})\" = \"$e\" ] || echo $i; i=$((i+1)); done",
                     timeout=300).split()
    bad += demo.guest(g, f"i=0; while [ $i -lt {nblk} ]; do "
                      f"dd if=/dev/vda bs=4096 skip=$(({BLK_BASE // 4096}+i)) count=1 "
                      "iflag=direct 2>/dev/null | head -c 9 | grep -q $(printf 'blk%06d' $i) "
                      "|| echo s$i; i=$((i+1)); done", timeout=300).split()
    print(f"md5 {got} (written {want}); numbered blocks wrong: {len(bad)}", flush=True)
    if got != want or bad:
        raise RuntimeError("the guest does not read what it wrote after the migration")
    print("the guest reads everything it wrote, before and during the migration",
          flush=True)


def run(demo):
    g = None
    try:
        demo.step("vdisk", "datastore", "create", "ds1", os.path.join(demo.work, "ds1"))
        demo.step("vdisk", "datastore", "create", "ds2", os.path.join(demo.work, "ds2"))
        demo.step("vdisk", "create", demo.spec, "256M")
        demo.d.start()
        print(f"\n{BOLD}vdiskd started{PLAIN} (pid {demo.d.pid}, control socket "
              f"{demo.d.ctl}; hugepages: {huge_free_mb()} MiB free, so "
              f"{'hugepages' if huge_free_mb() >= 128 else '--no-huge'}); "
              f"the vdisk commands below find it through $VDISKD_CTL",
              flush=True)
        demo.step("vdisk", "serve", "--socket", demo.sock, "--serial",
                  "DEMO-VM1", demo.spec)
        demo.step("vdisk", "ps")
        g = Guest("vm1", os.path.join(demo.work, "guest"),
                  disks=[Disk.vhost_user_blk(demo.sock)])
        print(f"\n{BOLD}Booting a guest under QEMU (TCG) on the served disk..."
              f"{PLAIN}", flush=True)
        g.start()
        g.wait_ready(timeout=180)
        print(f"guest ready in {g.boot_seconds:.1f} s (QEMU pid {g.pid}); "
              f"its disk: /dev/vda, serial "
              f"{demo.guest(g, 'cat /sys/block/vda/serial').strip()}, "
              f"{int(demo.guest(g, 'cat /sys/block/vda/size')) * 512 // MB} MiB",
              flush=True)

        print(f"\n{BOLD}guest# write {DATA_MB} MiB of random data to /dev/vda, "
              f"read it back, compare checksums{PLAIN}", flush=True)
        demo.guest(g, f"dd if=/dev/urandom of=/tmp/data bs=1M count={DATA_MB} "
                   "2>/dev/null")
        want = demo.guest(g, "md5sum /tmp/data").split()[0]
        demo.guest(g, f"dd if=/tmp/data of=/dev/vda bs=1M oflag=direct "
                   "conv=fsync 2>/dev/null")
        got = demo.guest(g, f"dd if=/dev/vda bs=1M count={DATA_MB} iflag=direct "
                         "2>/dev/null | md5sum").split()[0]
        print(f"written  md5 {want}\nread back md5 {got}", flush=True)
        if got != want:
            raise RuntimeError("the guest read back other data than it wrote")
        print("the data read back is the data written", flush=True)

        print(f"\n{BOLD}guest# a writer numbers 4 KiB blocks, one after the "
              f"other; a snapshot is taken while it runs{PLAIN}", flush=True)
        # It runs until told to stop, then writes 20 more blocks, so the
        # snapshot falls inside the run however fast the host is.
        demo.guest(g, "rm -f /tmp/n /tmp/stop /tmp/done; (i=0; extra=20; "
                   "while [ $i -lt 4000 ] && [ $extra -gt 0 ]; do "
                   "printf 'blk%06d' $i | dd of=/dev/vda bs=4096 "
                   f"seek=$(({BLK_BASE // 4096}+i)) conv=sync oflag=direct "
                   "2>/dev/null || echo FAIL; i=$((i+1)); echo $i >/tmp/n; "
                   "[ -e /tmp/stop ] && extra=$((extra-1)); done; "
                   "touch /tmp/done) >/tmp/w.log 2>&1 &")
        g.wait_until('[ "$(cat /tmp/n 2>/dev/null || echo 0)" -ge 20 ]', 120,
                     "the guest's writer did not start")
        # The image is served: the tool asks vdiskd, which drains the
        # guest's writes so that the snapshot is one instant.
        demo.step("vdisk", "snapshot", "create", demo.image, "while-running")
        demo.guest(g, "touch /tmp/stop")
        demo.step("vdisk", "snapshot", "list", demo.image)
        demo.step("vdisk", "info", demo.image)
        g.wait_until("test -e /tmp/done", 180, "the guest's writer did not finish")
        if demo.guest(g, "cat /tmp/w.log").strip():
            raise RuntimeError("the guest's writer saw an I/O error")
        nblk = int(demo.guest(g, "cat /tmp/n").strip())
        print(f"\nthe writer wrote {nblk} blocks without an error", flush=True)

        demo.step("vdisk", "ps")
        stats = demo.rpc("disk-stats", disk=demo.image)
        show_stats(stats)
        migrate(demo, g, want, nblk)
    finally:
        if g is not None:
            print(f"{BOLD}Stopping the guest (pid {g.pid}){PLAIN}", flush=True)
            g.stop()
    demo.step("vdisk", "unserve", demo.spec)
    print(f"\n{BOLD}Stopping vdiskd (pid {demo.d.pid}){PLAIN}", flush=True)
    rc = demo.d.stop()
    if rc != 0:
        raise RuntimeError(f"vdiskd exited with status {rc}")

    # Offline: the image is the tool's again.
    demo.step("vdisk", "check", demo.image)
    demo.step("vdisk", "snapshot", "diff", demo.image, "while-running")
    raw = os.path.join(demo.work, "vm1.raw")
    demo.step("vdisk", "convert", "-O", "raw", demo.image, raw)
    with open(raw, "rb") as f:
        data = f.read(DATA_MB * MB)
    if hashlib.md5(data).hexdigest() != want:
        raise RuntimeError("the image does not hold the guest's data")
    print(f"the image holds the guest's {DATA_MB} MiB (md5 {want})", flush=True)
    # The snapshot, read from a reverted copy: a prefix of the blocks.
    snap = os.path.join(demo.work, "vm1-at-snapshot.vd")
    shutil.copyfile(demo.image, snap)
    demo.step("vdisk", "snapshot", "revert", snap, "while-running")
    demo.step("vdisk", "convert", "-O", "raw", snap, raw)
    with open(raw, "rb") as f:
        f.seek(BLK_BASE)
        blocks = f.read(nblk * 4096)
    os.unlink(raw)
    state = ""
    for i in range(nblk):
        blk = blocks[i * 4096:(i + 1) * 4096]
        state += ("D" if blk == (b"blk%06d" % i).ljust(4096, b"\0") else
                  "Z" if blk == bytes(4096) else "X")
    k = state.find("Z")
    if "X" in state or k <= 0 or "D" in state[k:]:
        raise RuntimeError(f"the snapshot is not one instant: {state}")
    print(f"the snapshot holds blocks 0..{k - 1} of the {nblk} written, none "
          "after them and none torn: the instant it was taken", flush=True)


def main():
    build, work = sys.argv[1], os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    demo = Demo(build, work)
    try:
        run(demo)
    finally:
        # Idempotent: stops vdiskd by its PID if an error came first.
        demo.d.stop()
        shutil.rmtree(demo.run_dir, ignore_errors=True)
    print(f"\nDisk server demo done: images and logs in {demo.rel(work)}.")


if __name__ == "__main__":
    try:
        main()
    except (subprocess.CalledProcessError, RuntimeError, GuestError,
            RpcError) as e:
        sys.exit(f"demo-disk: {e}")
