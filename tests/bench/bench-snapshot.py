#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Snapshot creation time, vdisk beside qcow2, in one run.

A 64 GiB image with 1, 4 and 16 GiB allocated (made with
preallocation=metadata at that size, then grown to 64 GiB, so every cluster
of the first N GiB is mapped without writing data), for both formats; then
`vdisk snapshot create` and `qemu-img snapshot -c` are timed (whole
commands: process start, open, snapshot, close; median of 5).  qcow2
internal snapshots copy the L1 table and raise the refcount of every
allocated cluster, so their cost grows with the allocation; ours raise one
refcount per L2 table.

Usage: tests/bench/bench-snapshot.py [BUILD_DIR]   (env BENCH_DIR)
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build-release")
vdisk = os.path.join(build, "tools", "vdisk")
latency = os.path.join(build, "tests", "bench", "snapshot-latency")
work = os.environ.get("BENCH_DIR", os.path.join(build, "bench-snap"))
RUNS = 5


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def timed(*cmd):
    t = time.perf_counter()
    run(*cmd)
    return (time.perf_counter() - t) * 1000


def prepare(gib):
    vd = os.path.join(work, f"a{gib}.vd")
    qc = os.path.join(work, f"a{gib}.qcow2")
    run(vdisk, "create", "-q", "--preallocation", "metadata", vd, f"{gib}G")
    run(vdisk, "resize", vd, "64G")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o",
        "preallocation=metadata,cluster_size=65536", qc, f"{gib}G")
    run("qemu-img", "resize", "-q", qc, "64G")
    return vd, qc


def main():
    if not os.access(vdisk, os.X_OK):
        sys.exit(f"bench: no {vdisk}; build first")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rows = []
    try:
        for gib in (1, 4, 16):
            vd, qc = prepare(gib)
            v = [timed(vdisk, "snapshot", "create", vd, f"s{i}") for i in range(RUNS)]
            q = [timed("qemu-img", "snapshot", "-c", f"s{i}", qc) for i in range(RUNS)]
            # The snapshot call alone, without process start, open and close.
            lib = float(subprocess.run([latency, vd, str(RUNS)], check=True,
                                       capture_output=True, text=True).stdout)
            rows.append((gib, statistics.median(v), statistics.median(q), lib))
            os.unlink(vd)
            os.unlink(qc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| allocated of 64 GiB | vdisk snapshot create (ms) | qemu-img snapshot -c (ms) "
          "| qcow2 / vdisk | vd_snapshot_create call alone (ms) |")
    print("|---:|---:|---:|---:|---:|")
    for gib, v, q, lib in rows:
        print(f"| {gib} GiB | {v:.1f} | {q:.1f} | {q / v:.1f}x | {lib:.2f} |")
    print(f"\n16 GiB / 1 GiB: vdisk command {rows[2][1] / rows[0][1]:.2f}, "
          f"vdisk call {rows[2][3] / rows[0][3]:.2f}, qcow2 {rows[2][2] / rows[0][2]:.2f}")


if __name__ == "__main__":
    main()
