#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The guest-level sanity row of issue 8's benchmark: one QEMU guest (TCG,
the test recipe of tests/guest) with two vhost-user-blk disks, one served by
vdiskd (a vdisk image, 64 KiB clusters) and one exported by
qemu-storage-daemon (a qcow2 image, 64 KiB clusters), both fully written
first.  In the guest, dd with O_DIRECT reads and writes each disk in turn,
the order alternating from round to round; MB/s per disk, medians and
ranges, and the ratio.  Under TCG the guest itself costs much of each
request, so this only shows that nothing is far off in a real guest; the
servers are compared in bench-vdiskd.py.  A benchmark, run by hand.

Usage: tests/bench/bench-vdiskd-guest.py BUILD_DIR [--rounds N] [--mb MB]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vdiskd"))
sys.path.insert(0, os.path.join(HERE, "..", "guest"))
import vdlib  # noqa: E402
from guestlib import Disk, Guest  # noqa: E402


def run(cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True).stdout


def dd_rate(g, cmd, nbytes, overhead):
    """MB/s of a dd in the guest, timed from the host (busybox's dd prints
    no rate): the command's wall time less a console round trip."""
    t0 = time.monotonic()
    rc, out = g.run(cmd + " 2>&1", timeout=600)
    secs = time.monotonic() - t0 - overhead
    if rc != 0:
        sys.exit(f"bench: guest: {cmd}: {out}")
    return nbytes / max(secs, 1e-3) / 1e6


def console_overhead(g):
    """The median wall time of running 'true' in the guest."""
    t = []
    for _ in range(7):
        t0 = time.monotonic()
        g.run("true")
        t.append(time.monotonic() - t0)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=int, default=64)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    work = os.path.join(build, "bench-vdiskd-guest")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    size_mb = 2 * a.mb
    raw = os.path.join(work, "data.raw")
    run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", f"count={size_mb}", "status=none"])
    vd_img, q_img = os.path.join(work, "d.vd"), os.path.join(work, "d.qcow2")
    run([os.path.join(build, "tools", "vdisk"), "convert", "-O", "vdisk", raw, vd_img])
    run(["qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=65536", raw, q_img])
    vd = vdlib.Vdiskd(os.path.join(build, "tools", "vdiskd"), os.path.join(work, "vd"),
                      args=["--hugepages", "no"]).start()
    vd_sock, q_sock = os.path.join(work, "vd.sock"), os.path.join(work, "q.sock")
    qsd = None
    try:
        vd.call("disk-add", image=vd_img, socket=vd_sock)
        qsd = subprocess.Popen(
            ["qemu-storage-daemon",
             "--blockdev", f"driver=file,filename={q_img},node-name=f,"
             "cache.direct=on,aio=io_uring",
             "--blockdev", "driver=qcow2,file=f,node-name=d",
             "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
             f"addr.path={q_sock},writable=on"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(q_sock):
                break
            time.sleep(0.05)
        g = Guest("b", os.path.join(work, "g"),
                  disks=[Disk.vhost_user_blk(vd_sock), Disk.vhost_user_blk(q_sock)])
        rates = {}
        with g:
            g.wait_ready(timeout=180)
            overhead = console_overhead(g)
            devs = {"vdiskd/vdisk": "/dev/vda", "qsd/qcow2": "/dev/vdb"}
            for r in range(a.rounds):
                order = list(devs) if r % 2 == 0 else list(reversed(devs))
                for kind, bs, count in (("read-4k", "4k", a.mb * 256),
                                        ("write-4k", "4k", a.mb * 256),
                                        ("read-1m", "1M", a.mb)):
                    for s in order:
                        dev = devs[s]
                        if kind.startswith("read"):
                            cmd = f"dd if={dev} of=/dev/null bs={bs} count={count} iflag=direct"
                        else:
                            cmd = (f"dd if=/dev/zero of={dev} bs={bs} count={count} "
                                   f"seek={a.mb} oflag=direct")
                        nbytes = a.mb << 20
                        rates.setdefault(kind, {}).setdefault(s, []).append(
                            dd_rate(g, cmd, nbytes, overhead))
                print(f"round {r + 1}: " + "  ".join(
                    f"{k} " + " ".join(f"{s} {v[s][-1]:.1f}" for s in devs)
                    for k, v in rates.items()), flush=True)
    finally:
        if qsd:
            qsd.send_signal(signal.SIGTERM)
            qsd.wait(10)
        vd.stop()
    print(f"\n{a.rounds} rounds, dd with O_DIRECT in a TCG guest, MB/s median [min-max]")
    for kind, v in rates.items():
        m = {s: statistics.median(x) for s, x in v.items()}
        cells = "  ".join(f"{s} {m[s]:.1f} [{min(v[s]):.1f}-{max(v[s]):.1f}]" for s in v)
        print(f"{kind:9} {cells}  ratio vdiskd:qsd {m['vdiskd/vdisk'] / m['qsd/qcow2']:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
