#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd beside qemu-storage-daemon, through the project's own vhost-user-blk
front end (tests/vublk), with no guest in the way.  A benchmark, run by hand,
never by meson test.

Four systems on the same file system, all O_DIRECT with io_uring:
  vd/vdisk   vdiskd serving a vdisk image (64 KiB clusters)
  qsd/qcow2  qemu-storage-daemon exporting a qcow2 image (64 KiB clusters)
  qsd/raw    qemu-storage-daemon exporting a raw file
  vd/raw     vdiskd serving the raw file
  vd/vdisk-vol  vdiskd serving a vdisk image with volatile-map (allocating
             writes complete before their mapping is committed, as qsd's
             qcow2 does; vdiskd's default waits for the commit so that a
             completed write survives kill -9): fresh and clone cases only
  fio/raw    fio on the raw file itself, io_uring, O_DIRECT, submitting and
             reaping in batches (--iodepth_batch_submit=16
             --iodepth_batch_complete_max=32): the physical limit the others
             are measured against; one job per queue
Each case runs every system once per round, the order rotating from round to
round (this machine's speed steps by up to 2x for minutes at a time); the
table gives each system's median ops/s, the per-round range, and the ratio of
medians against the two anchors.  Cases on fresh images and linked clones
get new images every run.

With --rings, only vdiskd serving the vdisk image runs, once per ring
variant: split or packed virtqueues, with and without EVENT_IDX (vublk
--packed, --no-event-idx), the order rotating as above; the table adds
kicks and interrupts per request and vdiskd's CPU per request.

Usage: tests/bench/bench-vdiskd.py BUILD_DIR [--rounds N] [--secs S]
       [--size-mb MB] [--cases a,b,...] [--dir SCRATCH] [--rings]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import vdlib  # noqa: E402  (benchlib puts tests/vdiskd on the path)

SYSTEMS = ["vd/vdisk", "qsd/qcow2", "qsd/raw", "vd/raw", "fio/raw", "vd/vdisk-vol"]
FULL = SYSTEMS[:5]
FRESH = SYSTEMS[:4] + ["vd/vdisk-vol"]

# name: (vublk mode, block size, depth, queues, image kind, systems)
CASES = {
    "randread-4k-qd1": ("randread", "4k", 1, 1, "full", FULL),
    "randread-4k-qd32": ("randread", "4k", 32, 1, "full", FULL),
    "randread-4k-qd32-2q": ("randread", "4k", 32, 2, "full", FULL),
    "randwrite-4k-qd1": ("randwrite", "4k", 1, 1, "full", FULL),
    "randwrite-4k-qd32": ("randwrite", "4k", 32, 1, "full", FULL),
    "randwrite-4k-qd32-2q": ("randwrite", "4k", 32, 2, "full", FULL),
    "write-1m-qd4": ("write", "1m", 4, 1, "full", FULL),
    "fresh-randwrite-4k-qd32": ("randwrite", "4k", 32, 1, "fresh", FRESH),
    "clone-randwrite-4k-qd32": ("randwrite", "4k", 32, 1, "clone",
                                ["vd/vdisk", "qsd/qcow2", "vd/vdisk-vol"]),
}


Qsd = benchlib.Qsd
run = benchlib.run
cpu_seconds = benchlib.cpu_seconds
vublk_bench = benchlib.vublk_bench


class Vdiskd(vdlib.Vdiskd):
    """One vdiskd (default event mode, no hugepages) serving any number of
    disks, started and called as the tests do (tests/vdiskd/vdlib.py)."""

    def __init__(self, build, d):
        super().__init__(os.path.join(build, "tools", "vdiskd"), d,
                         args=["--hugepages", "no"])
        self.vdisk = os.path.join(build, "tools", "vdisk")
        self.d = d
        self.start()

    def serve(self, img, name, volatile=False):
        sock = os.path.join(self.d, f"vd-{name}.sock")
        if volatile:
            self.call("disk-add", image=img, socket=sock, queues=2, volatile_map=True)
        else:
            run([self.vdisk, "serve", "--ctl", self.ctl, "--socket", sock,
                 "--queues", "2", img])
        vdlib.wait_socket(sock, self.proc, "vdiskd", self.log)
        return sock

    def unserve(self, img):
        run([self.vdisk, "unserve", "--ctl", self.ctl, img])

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)


# --rings: vublk options of each variant.
RINGS = {"split": [], "split-noevidx": ["--no-event-idx"], "packed": ["--packed"],
         "packed-noevidx": ["--packed", "--no-event-idx"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dir")
    ap.add_argument("--rings", action="store_true")
    a = ap.parse_args()
    if a.rings and "--cases" not in sys.argv:
        a.cases = "randread-4k-qd1,randread-4k-qd32"
    build = os.path.abspath(a.build)
    vublk = os.path.join(build, "tests", "vublk", "vublk")
    vdisk = os.path.join(build, "tools", "vdisk")
    for t in ("qemu-storage-daemon", "qemu-img", "fio"):
        if not shutil.which(t):
            sys.exit(f"bench: {t} is missing (run scripts/setup.sh)")
    for t in (vublk, vdisk):
        if not os.access(t, os.X_OK):
            sys.exit(f"bench: no {t}; build first")
    d = os.path.abspath(a.dir or os.path.join(build, "bench-vdiskd"))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    size = a.size_mb << 20
    cases = a.cases.split(",")

    # Allocated images holding the same random data.
    raw = os.path.join(d, "full.raw")
    run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", f"count={a.size_mb}",
         "status=none"])
    # Each server locks what it serves: qsd/raw gets its own copy.
    full = {"vd/vdisk": os.path.join(d, "full.vd"),
            "qsd/qcow2": os.path.join(d, "full.qcow2"),
            "qsd/raw": os.path.join(d, "full-qsd.raw"), "vd/raw": raw}
    shutil.copyfile(raw, full["qsd/raw"])
    run([vdisk, "convert", "-O", "vdisk", raw, full["vd/vdisk"]])
    run(["qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=65536", raw,
         full["qsd/qcow2"]])
    tmpl = {"vd/vdisk": os.path.join(d, "tmpl.vd"),
            "qsd/qcow2": os.path.join(d, "tmpl.qcow2")}
    shutil.copyfile(full["vd/vdisk"], tmpl["vd/vdisk"])
    shutil.copyfile(full["qsd/qcow2"], tmpl["qsd/qcow2"])
    fresh_size = 8 * size  # mostly allocating writes for the whole run

    vd = Vdiskd(build, d)
    if a.rings:
        try:
            ring_ab(a, vd, vublk, vd.serve(full["vd/vdisk"], "full-vd"), cases)
        finally:
            vd.stop()
        shutil.rmtree(d, ignore_errors=True)
        return
    procs = []
    try:
        socks = {"vd/vdisk": vd.serve(full["vd/vdisk"], "full-vd"),
                 "vd/raw": vd.serve(raw, "full-raw")}
        q = Qsd(d, "full", [benchlib.file_node(full["qsd/qcow2"], "qcow2"),
                            benchlib.file_node(full["qsd/raw"], "raw")])
        procs.append(q)
        socks["qsd/qcow2"], socks["qsd/raw"] = q.socks
        socks["fio/raw"] = os.path.join(d, "full-fio.raw")
        shutil.copyfile(raw, socks["fio/raw"])
        results = {c: {s: [] for s in CASES[c][5]} for c in cases}
        for r in range(a.rounds):
            for c in cases:
                mode, bs, qd, nq, kind, systems = CASES[c]
                order = systems[r % len(systems):] + systems[:r % len(systems)]
                for s in order:
                    results[c][s].append(one_run(a, d, vd, vublk, vdisk, socks, s, c,
                                                 kind, mode, bs, qd, nq, tmpl,
                                                 fresh_size, r))
                print(f"round {r + 1} {c}: " + "  ".join(
                    f"{s} {results[c][s][-1]:.0f}" for s in systems), flush=True)
        idle = {"vdiskd": idle_cpu(vd, vublk, socks["vd/vdisk"]),
                "qemu-storage-daemon": idle_cpu(q, vublk, socks["qsd/qcow2"])}
        hol = hol_latency(a, d, vd, vublk, vdisk, socks, tmpl)
        extra = {"pauses": snapshot_pause(a, d, vd, vublk, socks, full["vd/vdisk"]),
                 "serve": serve_time(d, vd, vdisk)}
    finally:
        for p in procs:
            p.stop()
        vd.stop()
    report(results, cases, a, idle, hol, extra)
    shutil.rmtree(d, ignore_errors=True)


def ring_ab(a, vd, vublk, sock, cases):
    """Split against packed, with and without EVENT_IDX, on one disk."""
    names = list(RINGS)
    res = {c: {n: [] for n in names} for c in cases}
    for r in range(a.rounds):
        for c in cases:
            mode, bs, qd, nq, kind, _ = CASES[c]
            if kind != "full":
                sys.exit(f"bench: --rings runs on the allocated image only, not {c}")
            for n in names[r % len(names):] + names[:r % len(names)]:
                cpu = vd.cpu_seconds()
                j = vublk_bench(vublk, sock, mode, bs, qd, nq, a.secs, extra=RINGS[n])
                cpu = vd.cpu_seconds() - cpu
                ops = max(j["ops"], 1)
                res[c][n].append((j["ops_per_sec"], j["kicks"] / ops, j["calls"] / ops,
                                  cpu / ops * 1e6, j["lat_us"]["p50"]))
            print(f"round {r + 1} {c}: " + "  ".join(
                f"{n} {res[c][n][-1][0]:.0f}" for n in names), flush=True)
    print()
    print(f"{a.rounds} rounds x {a.secs} s per run, vdiskd serving the vdisk image; "
          "ops/s median [min-max], kicks, calls and vdiskd CPU us per request (medians)")
    for c in cases:
        base = statistics.median(v[0] for v in res[c]["split"])
        for n in names:
            v = res[c][n]
            ops = [x[0] for x in v]
            med = [statistics.median(x[i] for x in v) for i in range(1, 5)]
            print(f"{c:18} {n:15} {statistics.median(ops):>8.0f} [{min(ops):.0f}-"
                  f"{max(ops):.0f}]  x{statistics.median(ops) / base:.2f} split  "
                  f"kicks {med[0]:.3f} calls {med[1]:.3f} cpu {med[2]:.1f} us "
                  f"p50 {med[3]:.0f} us")


def fio_run(path, mode, bs, qd, nq, secs):
    cmd = ["fio", "--name=b", f"--filename={path}", "--direct=1", "--ioengine=io_uring",
           f"--rw={mode}", f"--bs={bs}", f"--iodepth={qd}", f"--numjobs={nq}",
           "--group_reporting", f"--runtime={secs}", "--time_based",
           "--output-format=json"]
    if qd > 1:
        cmd += ["--iodepth_batch_submit=16", "--iodepth_batch_complete_max=32"]
    j = json.loads(run(cmd))["jobs"][0]
    return j["read"]["iops"] + j["write"]["iops"]


def one_run(a, d, vd, vublk, vdisk, socks, s, c, kind, mode, bs, qd, nq, tmpl,
            fresh_size, r):
    if s == "fio/raw":
        return fio_run(socks[s], mode, bs, qd, nq, a.secs)
    if kind == "full":
        return vublk_bench(vublk, socks[s], mode, bs, qd, nq, a.secs)["ops_per_sec"]
    # A new image per run: fresh (nothing allocated) or a linked clone.
    name = f"{kind}-{r}-{s.replace('/', '-')}"
    if s.startswith("vd/vdisk"):
        img = os.path.join(d, name + ".vd")
        if kind == "fresh":
            run([vdisk, "create", "-q", img, str(fresh_size)])
        else:
            run([vdisk, "create", "-q", "-b", tmpl["vd/vdisk"], img])
    elif s == "qsd/qcow2":
        img = os.path.join(d, name + ".qcow2")
        if kind == "fresh":
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                 "cluster_size=65536", img, str(fresh_size)])
        else:
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                 tmpl[s], img])
    else:
        img = os.path.join(d, name + ".raw")
        with open(img, "wb") as f:
            f.truncate(fresh_size)
    if s.startswith("vd/"):
        sock = vd.serve(img, name, volatile=s == "vd/vdisk-vol")
        try:
            ops = vublk_bench(vublk, sock, mode, bs, qd, nq, a.secs)["ops_per_sec"]
        finally:
            vd.unserve(img)
    else:
        q = Qsd(d, name, [benchlib.file_node(img, "qcow2" if s == "qsd/qcow2" else "raw")])
        try:
            ops = vublk_bench(vublk, q.sock, mode, bs, qd, nq, a.secs)["ops_per_sec"]
        finally:
            q.stop()
    os.unlink(img)
    return ops


def idle_cpu(server, vublk, sock):
    """The server's CPU, as a fraction of a core, over 5 s while a front end
    with both queues started is connected and sends nothing."""
    fe = subprocess.Popen([vublk, "io", "-q", "2", "-c", "hold", sock],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if fe.stdout.readline().strip() != "hold":
            sys.exit("bench: vublk io hold failed")
        time.sleep(1)
        t0, c0 = time.monotonic(), server.cpu_seconds()
        time.sleep(5)
        return (server.cpu_seconds() - c0) / (time.monotonic() - t0)
    finally:
        fe.stdin.write("\n")
        fe.stdin.close()
        fe.wait(10)


def hol_latency(a, d, vd, vublk, vdisk, socks, tmpl):
    """p50/p99 of 4K reads at QD 1 on one disk, alone and while another disk
    of the same server takes allocating writes at QD 32 (vdiskd commits each
    group of them, two fsyncs: the flush-heavy neighbour)."""
    out = {}
    for s in ("vd/vdisk", "qsd/qcow2"):
        img = os.path.join(d, f"hol-{s.replace('/', '-')}")
        if s == "vd/vdisk":
            run([vdisk, "create", "-q", img, str(8 * (a.size_mb << 20))])
            wsock = vd.serve(img, "hol")
            q = None
        else:
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536",
                 img, str(8 * (a.size_mb << 20))])
            q = Qsd(d, "hol", [benchlib.file_node(tmpl[s], "qcow2"),
                               benchlib.file_node(img, "qcow2")])
            wsock = q.socks[1]
        rsock = socks[s] if q is None else q.socks[0]
        try:
            alone = vublk_bench(vublk, rsock, "randread", "4k", 1, 1, a.secs)["lat_us"]
            w = subprocess.Popen([vublk, "bench", "-j", "-w", "randwrite", "-b", "4k",
                                  "-d", "32", "-t", str(a.secs + 2), wsock],
                                 stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            busy = vublk_bench(vublk, rsock, "randread", "4k", 1, 1, a.secs)["lat_us"]
            wj = json.loads(w.communicate()[0])
        finally:
            if q is None:
                vd.unserve(img)
            else:
                q.stop()
        os.unlink(img)
        out[s] = (alone, busy, wj["ops_per_sec"])
    return out


def snapshot_pause(a, d, vd, vublk, socks, img, rounds=5):
    """The guest's pause (vdiskd's pause-us) for snapshot-create on a disk
    taking 4K random writes at QD 32, and the writer's p99 meanwhile."""
    pauses = []
    w = subprocess.Popen([vublk, "bench", "-j", "-w", "randwrite", "-b", "4k",
                          "-d", "32", "-t", str(rounds + 2), socks["vd/vdisk"]],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    for i in range(rounds):
        pauses.append(vd.call("snapshot-create", disk=img, name=f"p{i}")["pause-us"])
        time.sleep(0.8)
    w.communicate()
    for i in range(rounds):
        vd.call("snapshot-delete", disk=img, name=f"p{i}")
    return pauses


def serve_time(d, vd, vdisk, gib=64):
    """Time for vdiskd to start serving a fully mapped image of 'gib' GiB
    (every cluster allocated: preallocation=metadata, the file sparse)."""
    img = os.path.join(d, f"big{gib}.vd")
    run([vdisk, "create", "-q", "--preallocation=metadata", img, f"{gib}G"])
    times = []
    for i in range(3):
        t0 = time.monotonic()
        vd.serve(img, f"big{i}")
        times.append(time.monotonic() - t0)
        vd.unserve(img)
    os.unlink(img)
    return times


def report(results, cases, a, idle, hol, extra):
    print()
    print(f"{a.rounds} rounds x {a.secs} s per run; ops/s median [min-max]; "
          "ratios of medians")
    print(f"{'case':26} " + " ".join(f"{s:>22}" for s in SYSTEMS) +
          "  vd/vdisk:qcow2 vd/vdisk:qsd-raw vd/raw:qsd-raw vd/raw:fio vol:qcow2")
    for c in cases:
        med = {s: statistics.median(v) for s, v in results[c].items()}
        cells = []
        for s in SYSTEMS:
            v = results[c].get(s)
            cells.append(f"{med[s]:>7.0f} [{min(v):.0f}-{max(v):.0f}]".rjust(22)
                         if v else "-".rjust(22))

        def ratio(x, y):
            return f"{med[x] / med[y]:.2f}" if x in med and y in med and med[y] else "-"
        print(f"{c:26} " + " ".join(cells) +
              f"  {ratio('vd/vdisk', 'qsd/qcow2'):>14} {ratio('vd/vdisk', 'qsd/raw'):>16}"
              f" {ratio('vd/raw', 'qsd/raw'):>14} {ratio('vd/raw', 'fio/raw'):>10}"
              f" {ratio('vd/vdisk-vol', 'qsd/qcow2'):>9}")
    for k, v in idle.items():
        print(f"{k} CPU with a front end connected (2 queues) and no I/O: "
              f"{v * 100:.2f} % of a core")
    p = sorted(extra["pauses"])
    print(f"vdiskd snapshot-create under 4K random writes at QD 32: pause "
          f"median {statistics.median(p) / 1000:.1f} ms [{p[0] / 1000:.1f}-{p[-1] / 1000:.1f}]")
    t = sorted(extra["serve"])
    print(f"vdiskd: start serving a fully mapped 64 GiB image (vdisk serve, "
          f"round trip): median {statistics.median(t) * 1000:.0f} ms "
          f"[{t[0] * 1000:.0f}-{t[-1] * 1000:.0f}]")
    for s, (alone, busy, wops) in hol.items():
        print(f"{s}: 4K read QD1 latency p50/p99 alone {alone['p50']:.0f}/{alone['p99']:.0f} us, "
              f"beside a disk of the same server taking allocating writes "
              f"({wops:.0f}/s) {busy['p50']:.0f}/{busy['p99']:.0f} us")


if __name__ == "__main__":
    main()
