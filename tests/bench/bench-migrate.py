#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Live migration of a served disk (vdiskd's migrate-start, issue 9) beside
qemu-storage-daemon's blockdev-mirror, under a guest writer, with qemu-img
convert as the copy-bandwidth reference.  A benchmark, run by hand, never by
meson test.

The disk: SIZE GiB, the first ALLOC MiB holding random data (allocated), the
rest never written.  The same data as a vdisk image (64 KiB clusters) and a
qcow2 image (64 KiB clusters).  The writer, the project's vhost-user-blk
front end (vublk bench, one queue, QD 1), rewrites random 4K blocks of the
allocated part, either at a fixed rate (--rate, default 2000 writes/s) or as
fast as it goes; it starts two seconds before the copy (the baseline) and
runs until a second after it ends.  --bandwidth limits both migrations.
Systems, each run on a fresh copy of the source:

  vd            vdiskd serving the vdisk image in datastore A; migrate-start
                to datastore B (bandwidth 0: no limit); until phase done
                (the copy, the pivot, and the source's deletion)
  qsd-bg        qemu-storage-daemon exporting the qcow2; blockdev-mirror to a
                new qcow2 (sync=full, copy-mode=background), job-complete
                once ready; until BLOCK_JOB_COMPLETED
  qsd-wb        the same with copy-mode=write-blocking
  img-raw       qemu-img convert -O raw of the qcow2, no writer (the
  img-qcow2     reference: copy bandwidth), and -O qcow2
  vdisk-convert vdisk convert of the vdisk image, no writer

All of them O_DIRECT (vdiskd; qsd cache.direct=on, aio=io_uring; qemu-img
-t none -T none) except vdisk convert, which goes through the page cache
and fsyncs its output at the end.

Per run: the total time; allocated bytes / time; the destination's
allocation (st_blocks) against the source's just before the copy; the
writer's longest stall during the copy (the largest latency of a write
submitted before the pivot window and still in flight at the start or
later); the stall at the pivot (the largest latency of a write submitted
from 20 ms before the pivot window to its end: vdiskd's window runs from the last status poll (every 20 ms) that
saw the copy phase to the first that saw the job ended, so it holds the
pivot and what follows it (the source's close and deletion); qsd's from
job-complete to BLOCK_JOB_COMPLETED); vdiskd's own pause (pivot-us); whether
it converged (ended on its own within --timeout).  The writer reports the
largest latency per 10 ms, by submission time (vublk bench --timeline 10),
on CLOCK_MONOTONIC, which Python's time.monotonic_ns() reads too.

Rounds rotate the order of the systems (this machine's speed steps by up to
2x for minutes at a time); the tables give medians and per-round ranges.

Usage: tests/bench/bench-migrate.py BUILD_DIR [--rounds N] [--size-gb G]
       [--alloc-mb M] [--rate OPS] [--systems a,b,...] [--writers rate,full]
       [--bandwidth MIB_S] [--timeout S] [--dir SCRATCH] [--save DIR]
Quick check: --size-gb 1 --alloc-mb 256 --rounds 1
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vdiskd"))
import vdlib  # noqa: E402

MIGRATIONS = ["vd", "qsd-bg", "qsd-wb"]
COPIES = ["img-raw", "img-qcow2", "vdisk-convert"]
STEP_MS = 10
POLL_S = 0.02
# The writer's start to the copy's: vublk's connection to vdiskd takes about
# a second here (to qsd's a few ms); what is left of this is the baseline.
WARMUP_S = 2

# The issue's targets.
T_TIME = 1.2        # total time within 1.2x of allocated / reference bandwidth
T_ALLOC = 0.01      # destination allocation within 1% of the source's
T_PIVOT_MS = 10
T_COPY_MS = 100


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw).stdout


def allocated(path):
    return os.stat(path).st_blocks * 512


def write_bytes(pid):
    """Bytes the process caused to be written to storage so far."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


class Qmp:
    """A QMP connection: commands in order, events kept until asked for."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b""
        self.events = []
        self._read(None)  # the greeting
        self.cmd("qmp_capabilities")

    def _read(self, deadline):
        """One message, or None once the monotonic 'deadline' has passed."""
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.s], [], [], left)[0]:
                    return None
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("qemu-storage-daemon closed its monitor")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            m = self._read(None)
            if "event" in m:
                self.events.append(m)
            elif "error" in m:
                raise RuntimeError(f"{name}: {m['error']}")
            else:
                return m["return"]

    def event(self, names, timeout):
        """The first event named in 'names' (kept or new), or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m["event"] in names:
                    return self.events.pop(i)
            m = self._read(deadline)
            if m is None:
                return None
            self.events.append(m)

    def close(self):
        self.s.close()


class Qsd:
    """qemu-storage-daemon exporting one qcow2 over vhost-user-blk, with a
    QMP monitor."""

    def __init__(self, d, name, img):
        self.log = os.path.join(d, f"qsd-{name}.log")
        self.sock = os.path.join(d, f"qsd-{name}.sock")
        self.qmp_path = os.path.join(d, f"qsd-{name}.qmp")
        for p in (self.sock, self.qmp_path):
            if os.path.exists(p):
                os.unlink(p)
        cmd = ["qemu-storage-daemon",
               "--chardev", f"socket,id=mon,path={self.qmp_path},server=on,wait=off",
               "--monitor", "chardev=mon",
               "--blockdev", f"driver=file,filename={img},node-name=f0,"
               "cache.direct=on,aio=io_uring",
               "--blockdev", "driver=qcow2,file=f0,node-name=d0",
               "--export", "type=vhost-user-blk,id=e0,node-name=d0,"
               f"addr.type=unix,addr.path={self.sock},writable=on,num-queues=1"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        vdlib.wait_socket(self.sock, self.proc, "qemu-storage-daemon", self.log)
        vdlib.wait_socket(self.qmp_path, self.proc, "qemu-storage-daemon", self.log)
        self.qmp = Qmp(self.qmp_path)

    def stop(self):
        try:
            self.qmp.close()
        except OSError:
            pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Writer:
    """vublk bench rewriting random 4K blocks of the allocated part at QD 1,
    at 'rate' writes/s (0: as fast as it goes), until stopped."""

    def __init__(self, vublk, sock, span, rate):
        cmd = [vublk, "bench", "-j", "-w", "randwrite", "-b", "4k", "-d", "1",
               "-q", "1", "-t", "1800", "-s", str(span), "-T", str(STEP_MS)]
        if rate:
            cmd += ["-r", str(rate)]
        self.proc = subprocess.Popen(cmd + [sock], stdout=subprocess.PIPE, text=True)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(60)
        j = json.loads(out)
        if j.get("errors") or self.proc.returncode != 0:
            sys.exit(f"bench: the writer saw {j.get('errors')} errors "
                     f"(exit {self.proc.returncode})")
        return j


def stall_ms(tl, lo_ns, hi_ns, reach=None):
    """The largest latency, in ms, of a write submitted in [lo_ns, hi_ns);
    with 'reach', only of writes that may still have been in flight then
    (an interval's largest write ends after 'reach'), or with reach < 0
    only of those that surely ended before -reach."""
    step = int(tl["step_ms"] * 1e6)
    best = 0.0
    for i, m in enumerate(tl["max_us"]):
        t = tl["start_ns"] + i * step
        end = t + step + int(m * 1000)
        if reach is not None and (end <= reach if reach >= 0 else end > -reach):
            continue
        if t + step > lo_ns and t < hi_ns:
            best = max(best, m / 1000)
    return best


def writes_in(tl, lo_ns, hi_ns):
    step = int(tl["step_ms"] * 1e6)
    return sum(n for i, n in enumerate(tl["ops"])
               if lo_ns <= tl["start_ns"] + i * step < hi_ns)


class Bench:
    def __init__(self, a, build, d):
        self.a, self.d = a, d
        self.vublk = os.path.join(build, "tests", "vublk", "vublk")
        self.vdisk = os.path.join(build, "tools", "vdisk")
        self.env = dict(os.environ, VDISK_DATASTORES=os.path.join(d, "registry.json"))
        self.n = 0

    def vd(self, *args):
        return subprocess.run([self.vdisk, *args], env=self.env, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True).stdout

    def prepare(self, build):
        a, d = self.a, self.d
        self.alloc = a.alloc_mb << 20
        raw = os.path.join(d, "data.raw")
        run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", f"count={a.alloc_mb}",
             "status=none"])
        os.truncate(raw, a.size_gb << 30)
        self.tmpl_vd = os.path.join(d, "tmpl.vd")
        self.tmpl_qcow2 = os.path.join(d, "tmpl.qcow2")
        run([self.vdisk, "convert", "-O", "vdisk", raw, self.tmpl_vd])
        run(["qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=65536", raw,
             self.tmpl_qcow2])
        os.unlink(raw)
        for ds in ("a", "b"):
            self.vd("datastore", "create", ds, os.path.join(d, ds))
        os.environ["VDISK_DATASTORES"] = self.env["VDISK_DATASTORES"]
        self.daemon = vdlib.Vdiskd(os.path.join(build, "tools", "vdiskd"),
                                   os.path.join(d, "vdiskd"), args=["--hugepages", "no"])
        self.daemon.start()

    def one(self, system, writer):
        self.n += 1
        self.label = (system, writer)
        if system == "vd":
            return self.vd_migrate(writer)
        if system.startswith("qsd"):
            return self.qsd_mirror(system[4:], writer)
        return self.copy(system)

    def finish(self, r, t0, t1, win, tl, wj):
        """Stall figures from the writer's timeline."""
        r["writer_ops_s"] = writes_in(tl, t0, t1) / ((t1 - t0) / 1e9) if t1 > t0 else 0
        # A write in flight when the job starts belongs to the job: the
        # baseline holds only writes that ended before it.
        r["base_ms"] = stall_ms(tl, tl["start_ns"], t0, reach=-t0)
        if win:
            r["copy_ms"] = stall_ms(tl, tl["start_ns"], win[0], reach=t0)
            r["pivot_ms"] = stall_ms(tl, win[0] - 2 * STEP_MS * 10**6, win[1])
            r["window_ms"] = (win[1] - win[0]) / 1e6
        else:
            r["copy_ms"] = stall_ms(tl, tl["start_ns"], t1, reach=t0)
            r["pivot_ms"] = None
        r["max_ms"] = wj["lat_us"]["max"] / 1000
        if self.a.save:
            with open(os.path.join(self.a.save, f"run{self.n}.json"), "w") as f:
                json.dump({"system": self.label, "result": r, "t0": t0, "t1": t1, "window": win,
                           "writer": wj}, f)
        return r

    def vd_migrate(self, writer):
        name = f"m{self.n}.vd"
        self.vd("import", "-f", "vdisk", self.tmpl_vd, f"a:{name}")
        src = os.path.join(self.d, "a", name)
        dst = os.path.join(self.d, "b", name)
        sock = os.path.join(self.daemon.workdir, f"m{self.n}.sock")
        self.daemon.call("disk-add", image=f"a:{name}", socket=sock)
        vdlib.wait_socket(sock, self.daemon.proc, "vdiskd", self.daemon.log)
        w = Writer(self.vublk, sock, self.alloc, writer)
        time.sleep(WARMUP_S)
        src_alloc = allocated(src)
        wb0 = write_bytes(self.daemon.pid)
        t0 = time.monotonic_ns()
        self.daemon.call("migrate-start", disk=sock, to="b", bandwidth=self.a.bandwidth << 20)
        last_copy = t0
        converged = True
        while True:
            now = time.monotonic_ns()
            job = self.daemon.call("migrate-status", disk=sock)["jobs"][0]
            if job["phase"] in ("prepare", "snapshots", "copy"):
                last_copy = now
            if not job["running"]:
                break
            if converged and now - t0 > self.a.timeout * 10**9:
                self.daemon.call("migrate-cancel", disk=sock)
                converged = False
            time.sleep(POLL_S)
        t1 = t0 + job["elapsed-ms"] * 10**6
        wb = write_bytes(self.daemon.pid) - wb0
        time.sleep(1)
        wj = w.stop()
        ok = converged and job["phase"] == "done"
        r = {"converged": ok, "secs": job["elapsed-ms"] / 1000,
             "src_alloc": src_alloc, "dst_alloc": allocated(dst) if ok else 0,
             "server_wrote": wb, "pause_ms": job.get("pivot-us", 0) / 1000,
             "mirrored": job["mirrored"]}
        self.finish(r, t0, t1, (last_copy, now) if ok else None,
                    wj["timeline"], wj)
        self.daemon.call("disk-remove", disk=sock)
        self.vd("rm", f"b:{name}" if ok else f"a:{name}")
        return r

    def qsd_mirror(self, mode, writer):
        mode = {"bg": "background", "wb": "write-blocking"}[mode]
        src = os.path.join(self.d, f"m{self.n}.qcow2")
        dst = os.path.join(self.d, f"m{self.n}-dst.qcow2")
        run(["cp", "--sparse=always", self.tmpl_qcow2, src])
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", dst,
             str(self.a.size_gb << 30)])
        q = Qsd(self.d, f"m{self.n}", src)
        try:
            q.qmp.cmd("blockdev-add", driver="file", filename=dst, **{"node-name": "tf"},
                      cache={"direct": True}, aio="io_uring")
            q.qmp.cmd("blockdev-add", driver="qcow2", file="tf", **{"node-name": "t0"})
            w = Writer(self.vublk, q.sock, self.alloc, writer)
            time.sleep(WARMUP_S)
            src_alloc = allocated(src)
            wb0 = write_bytes(q.proc.pid)
            t0 = time.monotonic_ns()
            q.qmp.cmd("blockdev-mirror", **{"job-id": "m", "copy-mode": mode},
                      device="d0", target="t0", sync="full", speed=self.a.bandwidth << 20)
            ev = q.qmp.event(("BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"), self.a.timeout)
            win, t1, converged = None, None, False
            if ev and ev["event"] == "BLOCK_JOB_READY":
                c0 = time.monotonic_ns()
                q.qmp.cmd("job-complete", id="m")
                ev = q.qmp.event(("BLOCK_JOB_COMPLETED",), self.a.timeout)
                t1 = time.monotonic_ns()
                converged = bool(ev) and "error" not in ev["data"]
                win = (c0, t1)
            if not converged:
                t1 = time.monotonic_ns()
                try:
                    q.qmp.cmd("block-job-cancel", device="m", force=True)
                    q.qmp.event(("BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED"), 60)
                except RuntimeError:
                    pass
                win = None
            wb = write_bytes(q.proc.pid) - wb0
            time.sleep(1)
            wj = w.stop()
            r = {"converged": converged, "secs": (t1 - t0) / 1e9, "src_alloc": src_alloc,
                 "dst_alloc": allocated(dst) if converged else 0, "server_wrote": wb,
                 "pause_ms": None, "mirrored": None}
            self.finish(r, t0, t1, win, wj["timeline"], wj)
        finally:
            q.stop()
        os.unlink(src)
        os.unlink(dst)
        return r

    def copy(self, system):
        if system == "vdisk-convert":
            src, dst = self.tmpl_vd, os.path.join(self.d, f"c{self.n}.vd")
            cmd = [self.vdisk, "convert", "-O", "vdisk", src, dst]
        else:
            fmt = system[4:]
            src, dst = self.tmpl_qcow2, os.path.join(self.d, f"c{self.n}.{fmt}")
            cmd = ["qemu-img", "convert", "-t", "none", "-T", "none", "-O", fmt]
            if fmt == "qcow2":
                cmd += ["-o", "cluster_size=65536"]
            cmd += [src, dst]
        t0 = time.monotonic_ns()
        run(cmd)
        t1 = time.monotonic_ns()
        r = {"converged": True, "secs": (t1 - t0) / 1e9, "src_alloc": allocated(src),
             "dst_alloc": allocated(dst), "server_wrote": None, "pause_ms": None,
             "mirrored": None, "copy_ms": None, "pivot_ms": None, "base_ms": None,
             "max_ms": None, "writer_ops_s": None}
        os.unlink(dst)
        return r


def med(vals):
    vals = [v for v in vals if v is not None]
    return (statistics.median(vals), min(vals), max(vals)) if vals else None


def cell(m, fmt):
    if m is None:
        return "-"
    return f"{fmt.format(m[0])} [{fmt.format(m[1])}-{fmt.format(m[2])}]"


def report(a, res, keys):
    ref = {}
    for s in ("img-raw", "img-qcow2"):
        if s in res:
            ok = [r for r in res[s] if r["converged"]]
            ref[s] = statistics.median(r["src_alloc"] / r["secs"] for r in ok)
    print()
    print(f"disk {a.size_gb} GiB, {a.alloc_mb} MiB allocated; writer 4K random rewrites "
          f"at QD 1, {a.rate}/s or full speed; migration bandwidth "
          f"{f'{a.bandwidth} MiB/s' if a.bandwidth else 'unlimited'}; {a.rounds} round(s); "
          "median [min-max] over rounds")
    best = max(ref.values()) if ref else None
    if best:
        print("reference copy bandwidth (best median of qemu-img convert): "
              f"{best / 2**20:.0f} MiB/s (" + ", ".join(
                  f"{s} {v / 2**20:.0f}" for s, v in ref.items()) + ")")
    print(f"targets: time <= {T_TIME}x allocated/reference"
          + (f" = {T_TIME * a.alloc_mb / (best / 2**20):.2f} s" if best else "")
          + f"; destination allocation within {T_ALLOC * 100:.0f}% of the source; "
          f"pivot stall < {T_PIVOT_MS} ms; copy stall < {T_COPY_MS} ms")
    hdr = ["system", "writer", "conv", "time s", "MiB/s", "x ref", "dst/src alloc",
           "copy stall ms", "pivot stall ms", "vd pause ms", "base stall ms",
           "writes/s", "server wrote MiB"]
    rows = [hdr]
    for k in keys:
        rs = res[k]
        ok = [r for r in rs if r["converged"]]
        system, writer = k if isinstance(k, tuple) else (k, "-")
        t = med([r["secs"] for r in ok])
        bw = med([r["src_alloc"] / r["secs"] / 2**20 for r in ok])
        x = med([r["secs"] / (r["src_alloc"] / best) for r in ok]) if best else None
        rows.append([system, {0: "full", "-": "-"}.get(writer, str(writer)), f"{len(ok)}/{len(rs)}", cell(t, "{:.2f}"),
                     cell(bw, "{:.0f}"), cell(x, "{:.2f}"),
                     cell(med([r["dst_alloc"] / r["src_alloc"] for r in ok]), "{:.4f}"),
                     cell(med([r["copy_ms"] for r in ok]), "{:.1f}"),
                     cell(med([r["pivot_ms"] for r in ok]), "{:.1f}"),
                     cell(med([r["pause_ms"] for r in ok]), "{:.2f}"),
                     cell(med([r["base_ms"] for r in ok]), "{:.1f}"),
                     cell(med([r["writer_ops_s"] for r in ok]), "{:.0f}"),
                     cell(med([r["server_wrote"] / 2**20 if r["server_wrote"] is not None
                               else None for r in ok]), "{:.0f}")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    for i, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    for k in keys:
        for r in res[k]:
            miss = []
            if not r["converged"]:
                miss.append("did not converge")
            elif r["pivot_ms"] is not None or r["copy_ms"] is not None:
                if best and r["secs"] > T_TIME * r["src_alloc"] / best:
                    miss.append(f"time {r['secs'] / (r['src_alloc'] / best):.2f}x")
                if abs(r["dst_alloc"] / r["src_alloc"] - 1) > T_ALLOC:
                    miss.append(f"allocation {r['dst_alloc'] / r['src_alloc']:.4f}")
                if r["pivot_ms"] is not None and r["pivot_ms"] >= T_PIVOT_MS:
                    miss.append(f"pivot stall {r['pivot_ms']:.1f} ms")
                if r["copy_ms"] is not None and r["copy_ms"] >= T_COPY_MS:
                    miss.append(f"copy stall {r['copy_ms']:.1f} ms")
            if miss:
                print(f"missed: {k}: " + ", ".join(miss))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size-gb", type=int, default=4)
    ap.add_argument("--alloc-mb", type=int, default=1024)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--systems", default=",".join(MIGRATIONS + COPIES))
    ap.add_argument("--writers", default="rate,full")
    ap.add_argument("--bandwidth", type=int, default=0,
                    help="MiB/s for the migrations (migrate-start's bandwidth, "
                    "blockdev-mirror's speed); 0: none")
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds before a job that has not ended is cancelled")
    ap.add_argument("--dir")
    ap.add_argument("--save", help="a directory for each run's figures and the "
                    "writer's timeline (runN.json)")
    a = ap.parse_args()
    if a.save:
        a.save = os.path.abspath(a.save)
        os.makedirs(a.save, exist_ok=True)
    build = os.path.abspath(a.build)
    for t in ("qemu-storage-daemon", "qemu-img"):
        if not shutil.which(t):
            sys.exit(f"bench: {t} is missing (run scripts/setup.sh)")
    for t in ("tests/vublk/vublk", "tools/vdisk", "tools/vdiskd"):
        if not os.access(os.path.join(build, t), os.X_OK):
            sys.exit(f"bench: no {t} in {build}; build first")
    d = os.path.abspath(a.dir or os.path.join(build, "bench-migrate"))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    systems = a.systems.split(",")
    writers = {"rate": a.rate, "full": 0}
    keys = []
    for s in systems:
        if s in MIGRATIONS:
            keys += [(s, writers[w]) for w in a.writers.split(",")]
        elif s in COPIES:
            keys.append(s)
        else:
            sys.exit(f"bench: unknown system {s}")
    b = Bench(a, build, d)
    b.prepare(build)
    res = {k: [] for k in keys}
    try:
        for rnd in range(a.rounds):
            order = keys[rnd % len(keys):] + keys[:rnd % len(keys)]
            for k in order:
                system, writer = k if isinstance(k, tuple) else (k, None)
                r = b.one(system, writer)
                res[k].append(r)
                print(f"round {rnd + 1} {system}"
                      + (f" writer {writer or 'full'}" if writer is not None else "")
                      + f": {'done' if r['converged'] else 'NOT CONVERGED'} "
                      f"{r['secs']:.2f} s, dst/src {r['dst_alloc'] / r['src_alloc']:.4f}"
                      + (f", copy stall {r['copy_ms']:.1f} ms" if r["copy_ms"] is not None
                         else "")
                      + (f", pivot stall {r['pivot_ms']:.1f} ms" if r["pivot_ms"] is not None
                         else "")
                      + (f" (vdiskd pause {r['pause_ms']:.2f} ms)" if r["pause_ms"] else "")
                      + (f", {r['writer_ops_s']:.0f} writes/s" if r["writer_ops_s"] else ""),
                      flush=True)
    finally:
        b.daemon.stop()
    report(a, res, keys)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
