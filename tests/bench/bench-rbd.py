#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd serving a Ceph RBD image beside qemu-storage-daemon exporting one
through QEMU's rbd driver, both over vhost-user-blk, driven by the project's
front end (tests/vublk) with no guest in the way.  A benchmark, run by hand,
never by meson test.

The cluster is the tests' one-node cluster (tests/ceph/cephlib.py: one
monitor, one memstore OSD on 127.0.0.1), started and stopped here.  Two
images of the same size, each written in full first, one per system, both
without librbd's cache (vdiskd's default cache mode none; qsd
cache.direct=on).  Each round runs every case on both systems, the order
alternating from round to round; the table gives median ops/s with the
per-round range and the ratio vdiskd : qsd.  `rbd bench` on a third image
is the cluster's own figure for the same pattern (librbd in one process, no
vhost-user in between), the limit both are measured against.

Usage: tests/bench/bench-rbd.py BUILD_DIR [--rounds N] [--secs S]
       [--size-mb MB] [--cases a,b,...] [--dir SCRATCH]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ceph"))
import benchlib  # noqa: E402
import cephlib  # noqa: E402
import vdlib  # noqa: E402

# name: (vublk mode, block size, depth, rbd bench io-type/pattern)
CASES = {
    "randread-4k-qd1": ("randread", "4k", 1, ("read", "rand")),
    "randread-4k-qd32": ("randread", "4k", 32, ("read", "rand")),
    "randwrite-4k-qd1": ("randwrite", "4k", 1, ("write", "rand")),
    "randwrite-4k-qd32": ("randwrite", "4k", 32, ("write", "rand")),
    "write-1m-qd4": ("write", "1m", 4, ("write", "seq")),
}
SYSTEMS = ["vdiskd", "qsd", "rbd-bench"]


def rbd_bench(c, image, io_type, pattern, bs, qd, secs, size_mb):
    """ops/s of `rbd bench` for about 'secs' seconds of the pattern."""
    total = min(size_mb << 20, 1 << 30)
    out = c.rbd("bench", "--io-type", io_type, "--io-pattern", pattern, "--io-size", bs,
                "--io-threads", str(qd), "--io-total", str(total),
                f"{c.pool}/{image}", timeout=secs * 20 + 60)
    m = re.search(r"elapsed:\s*([\d.]+)\s+ops:\s*(\d+)\s+ops/sec:\s*([\d.]+)", out)
    if not m:
        sys.exit(f"rbd bench: cannot read its result:\n{out}")
    return float(m.group(3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dir", default="/tmp/bench-rbd")
    a = ap.parse_args()
    cases = a.cases.split(",")
    for t in ("qemu-storage-daemon", "rbd"):
        if not shutil.which(t):
            sys.exit(f"{t} is not installed (scripts/setup.sh)")
    build = os.path.abspath(a.build)
    vublk = os.path.join(build, "tests", "vublk", "vublk")
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    c = cephlib.Cluster(os.path.join(a.dir, "ceph"),
                        memstore_bytes=max(4 << 30, (a.size_mb << 20) * 4))
    c.start()
    vd = qsd = None
    try:
        for img in ("vd", "qsd", "lim"):
            c.rbd("create", f"{c.pool}/{img}", "--size", f"{a.size_mb}M")
            c.rbd("bench", "--io-type", "write", "--io-pattern", "seq", "--io-size", "4M",
                  "--io-threads", "4", "--io-total", f"{a.size_mb}M", f"{c.pool}/{img}")
        vd = vdlib.Vdiskd(os.path.join(build, "tools", "vdiskd"), os.path.join(a.dir, "vd"),
                          args=["--hugepages", "no"]).start()
        vsock = os.path.join(vd.workdir, "vd.sock")
        vd.call("disk-add", image=c.spec("vd"), socket=vsock, queues=2)
        vdlib.wait_socket(vsock, vd.proc, "vdiskd", vd.log)
        qsd = benchlib.Qsd(a.dir, "rbd", [benchlib.rbd_node(c.pool, "qsd", c.conf)])
        socks = {"vdiskd": vsock, "qsd": qsd.sock}
        res = {k: {s: [] for s in SYSTEMS} for k in cases}
        for r in range(a.rounds):
            for k in cases:
                mode, bs, qd, (io_type, pattern) = CASES[k]
                order = SYSTEMS if r % 2 == 0 else list(reversed(SYSTEMS))
                for s in order:
                    if s == "rbd-bench":
                        v = rbd_bench(c, "lim", io_type, pattern, bs, qd, a.secs, a.size_mb)
                    else:
                        v = benchlib.vublk_bench(vublk, socks[s], mode, bs, qd, 1,
                                                 a.secs)["ops_per_sec"]
                    res[k][s].append(v)
                    print(f"round {r + 1} {k} {s}: {v:.0f} ops/s", flush=True)
    finally:
        if qsd:
            qsd.stop()
        if vd:
            vd.stop()
        c.stop()
    print()
    print(f"{a.rounds} rounds x {a.secs} s; {a.size_mb} MiB images; ops/s median [min-max]")
    print(f"{'case':20} " + " ".join(f"{s:>20}" for s in SYSTEMS) +
          "  vdiskd:qsd  vdiskd:rbd-bench")
    for k in cases:
        med = {s: statistics.median(v) for s, v in res[k].items()}
        print(f"{k:20} " + " ".join(f"{benchlib.med_range(res[k][s]):>20}" for s in SYSTEMS) +
              f"  {med['vdiskd'] / med['qsd']:10.2f}  {med['vdiskd'] / med['rbd-bench']:16.2f}")


if __name__ == "__main__":
    main()
