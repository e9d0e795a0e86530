#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the disk benchmarks share: running a command, a process's CPU time,
`vublk bench` as a function, qemu-storage-daemon exporting block nodes over
vhost-user-blk, and medians with per-round ranges.  Python 3 standard
library only."""

import json
import os
import signal
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vdiskd"))
import vdlib  # noqa: E402


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw).stdout


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vublk_bench(vublk, sock, mode, bs, qd, nq, secs, size=None, extra=()):
    cmd = [vublk, "bench", "-j", "-w", mode, "-b", bs, "-d", str(qd),
           "-q", str(nq), "-t", str(secs)] + list(extra)
    if size:
        cmd += ["-s", size]
    j = json.loads(run(cmd + [sock]))
    if j.get("errors"):
        sys.exit(f"bench: {j['errors']} I/O errors on {sock}")
    return j


def file_node(img, fmt):
    """The blockdev chain of an image file in format 'fmt', O_DIRECT on
    io_uring, as the benchmarks serve every file."""
    return [f"driver=file,filename={img},cache.direct=on,aio=io_uring",
            f"driver={fmt}"]


def rbd_node(pool, image, conf, user="admin"):
    """An RBD image through QEMU's rbd driver (qemu-block-extra), without
    librbd's cache (cache.direct=on), as vdiskd's default cache mode none."""
    return [f"driver=rbd,pool={pool},image={image},conf={conf},user={user},"
            "cache.direct=on"]


class Qsd:
    """One qemu-storage-daemon exporting one vhost-user-blk socket per node
    chain: each chain is a list of --blockdev option strings, bottom first,
    each layered on the one before it (file=)."""

    def __init__(self, d, name, chains, queues=2):
        self.log = os.path.join(d, f"qsd-{name}.log")
        self.socks = []
        cmd = ["qemu-storage-daemon"]
        for i, chain in enumerate(chains):
            sock = os.path.join(d, f"qsd-{name}-{i}.sock")
            if os.path.exists(sock):
                os.unlink(sock)
            below = None
            for j, opts in enumerate(chain):
                node = f"n{i}-{j}"
                cmd += ["--blockdev", opts + (f",file={below}" if below else "") +
                        f",node-name={node}"]
                below = node
            cmd += ["--export", f"type=vhost-user-blk,id=e{i},node-name={below},"
                    f"addr.type=unix,addr.path={sock},writable=on,num-queues={queues}"]
            self.socks.append(sock)
        self.sock = self.socks[0]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        for sock in self.socks:
            vdlib.wait_socket(sock, self.proc, "qemu-storage-daemon", self.log)

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def med_range(vals):
    """'median [min-max]' of a list of numbers."""
    return f"{statistics.median(vals):.0f} [{min(vals):.0f}-{max(vals):.0f}]"
