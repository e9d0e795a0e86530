#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd against the project's own vhost-user-blk front end (tests/vublk):
every malformed request of vublk's catalogue gets IOERR or UNSUPP on a
connection that keeps serving (strict mode), on a read-write and a
read-only disk; then a two-queue random read/write run keeps both queues
busy with no error, and the per-queue counters show it.  Everything runs
twice: on split virtqueues, then on packed ones (vublk --packed, as QEMU's
packed=on), kill -9 with requests in flight included.

usage: test_vublk.py VDISKD VUBLK WORKDIR      (exit 0 or 1)
"""

import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vdlib import Vdiskd, check  # noqa: E402


# The ring layout of the current round: vublk options after the command.
RING = []


def cmd(binary, command, *args):
    return [binary, command] + RING + list(args)


def vublk(binary, command, *args):
    p = subprocess.run(cmd(binary, command, *args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    return p.returncode, p.stdout


def main():
    vdiskd, vub, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    for ring, opts in (("split", []), ("packed", ["--packed"])):
        print(f"== {ring} virtqueues")
        RING[:] = opts
        os.makedirs(os.path.join(work, ring))
        test_ring(vdiskd, vub, os.path.join(work, ring))
    return 0


def test_ring(vdiskd, vub, work):
    raw = os.path.join(work, "r.img")
    ro = os.path.join(work, "ro.img")
    for p in (raw, ro):
        with open(p, "wb") as f:
            f.truncate(64 << 20)
    d = Vdiskd(vdiskd, os.path.join(work, "d"))
    with d:
        rw_sock = os.path.join(d.workdir, "r.sock")
        ro_sock = os.path.join(d.workdir, "ro.sock")
        d.call("disk-add", image=raw, socket=rw_sock, queues=2)
        d.call("disk-add", image=ro, socket=ro_sock, read_only=True)
        rc, out = vublk(vub, "malicious", "-s", rw_sock)
        print(out)
        check(rc == 0, "every malformed request is refused and the disk keeps serving")
        rc, out = vublk(vub, "malicious", "-s", "-c", "write-on-read-only", ro_sock)
        print(out)
        check(rc == 0, "a write to the read-only disk gets IOERR")
        check("guest error" in d.log_text(), "the daemon logged the guest's errors")
        rc, out = vublk(vub, "bench", "-t", "3", "-q", "2", "-w", "randrw", rw_sock)
        print(out)
        check(rc == 0 and " 0 errors" in out, "two-queue random read/write run, no error")
        q = d.disk(raw)["queue-requests"]
        check(q[0] > 1000 and q[1] > 1000, f"both queues served requests: {q}")
        st = d.call("disk-stats", disk=raw)["ops"]
        check(st["read"]["requests"] > 0 and st["write"]["requests"] > 0 and
              st["read"]["latency-histogram"], "disk-stats counts reads and writes with "
              f"a latency histogram (read avg {st['read']['latency-us-avg']} us)")
        rc, out = vublk(vub, "io", "-c", "write -P 0x33 1M 1M", "-c", "zero -u 1M 512K",
                        "-c", "read -P 0 1M 512K", "-c", "read -P 0x33 1536K 512K", rw_sock)
        check(rc == 0, "write-zeroes with unmap zeroes exactly its range")
        test_idle(d, vub, rw_sock)
    test_enospc(vdiskd, vub, work)


def test_kill_inflight(d, vub, mnt, img, sock):
    """kill -9 while requests are in flight (held for lack of space) and
    reads behind them completed out of order: the restarted vdiskd finds the
    writes in the inflight area and completes them, and serves none of the
    reads again."""
    img2 = os.path.join(mnt, "fresh.img")
    with open(img2, "wb") as f:
        f.truncate(16 << 20)
    sock = os.path.join(d.workdir, "fresh.sock")
    d.call("disk-add", image=img2, socket=sock)
    st = os.statvfs(mnt)
    used_k = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
    subprocess.run(["mount", "-o", f"remount,size={used_k}k", mnt], check=True)
    w = subprocess.Popen(cmd(vub, "inflight", "-n", "16", "-b", "64K", "-S", "7", "-R", "30000",
                             "-r", "5", sock), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = w.stdout.readline()
    check(line.startswith("ready") and line.split()[1] != "0",
          f"requests are in flight in vdiskd: {line.strip()}")
    d.kill9()
    subprocess.run(["mount", "-o", "remount,size=128M", mnt], check=True)
    d.start()
    out = w.communicate(timeout=60)[0]
    check(w.returncode == 0, "every write in flight at the kill completed OK after the "
          "restart, no read twice: " + " ".join(out.split()[-11:]))
    check("resubmitting" in d.log_text(), "the restarted vdiskd resubmitted them")
    rc, out = vublk(vub, "io", "-c", "read -S 7 0 1M", sock)
    check(rc == 0, "their data reads back")


def cpu_ticks(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def test_idle(d, vub, sock):
    """Event mode: a connected front end that sends nothing costs vdiskd no
    CPU."""
    hold = subprocess.Popen(cmd(vub, "io", "-q", "2", "-c", "hold", sock),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "hold"
        ring = "packed" if "--packed" in RING else "split"
        for _ in range(50):  # the front end does not wait for its last messages
            info = d.disk(sock)
            if info["virtqueues"]:
                break
            time.sleep(0.05)
        check(info["virtqueues"] == ring and info["event-idx"],
              f"disk-list shows the front end's {ring} virtqueues with EVENT_IDX")
        time.sleep(0.5)
        t0 = cpu_ticks(d.pid)
        time.sleep(3)
        used = cpu_ticks(d.pid) - t0
        check(d.disk(sock)["connected"] and used <= 3,
              f"idle with a connected front end: {used} CPU ticks in 3 s")
    finally:
        hold.communicate("\n", timeout=30)


def test_enospc(vdiskd, vub, work):
    """Writes the host file system has no room for are held, shown in
    disk-list, and complete when space comes back and the disk is told to
    retry; nothing fails in the guest."""
    if os.geteuid() != 0:
        print("note: not root, no small file system to fill: ENOSPC case skipped")
        return
    mnt = os.path.join(work, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6M", "tmpfs", mnt], check=True)
    d = Vdiskd(vdiskd, os.path.join(work, "d2"))
    try:
        img = os.path.join(mnt, "full.img")
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        sock = os.path.join(d.workdir, "f.sock")
        with d:
            d.call("disk-add", image=img, socket=sock, cache="writeback")
            cmds = []
            for i in range(10):
                cmds += ["-c", f"write -P 0x5a {i}M 1M"]
            w = subprocess.Popen(cmd(vub, "io", *cmds, sock), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            info = None
            for _ in range(100):
                info = d.disk(img)
                if info["held"]:
                    break
                time.sleep(0.1)
            check(info["state"] == "held" and info["held"] > 0 and w.poll() is None,
                  f"writes beyond the free space are held ({info['held']}, "
                  f"{info['held-reason']}), the writer waits")
            check("holding requests" in d.log_text(), "the log says requests are held")
            subprocess.run(["mount", "-o", "remount,size=128M", mnt], check=True)
            d.call("disk-retry", disk=img)
            out = w.communicate(timeout=60)[0]
            check(w.returncode == 0, "held writes complete once space is back: " +
                  out.strip().splitlines()[-1])
            rc, out = vublk(vub, "io", "-c", "read -P 0x5a 0 10M", sock)
            check(rc == 0 and d.disk(img)["held"] == 0, "their data reads back")
            test_kill_inflight(d, vub, mnt, img, sock)
    finally:
        d.stop()
        subprocess.run(["umount", "-l", mnt])


if __name__ == "__main__":
    sys.exit(main())
