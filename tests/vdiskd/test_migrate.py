#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Live migration of a served disk between datastores, driven by the
project's vhost-user-blk front end (tests/vublk) as the guest:

  live      a writer rewrites random blocks during the whole copy (and a
            bandwidth limit changed while it runs); after the pivot the same
            connection reads every block back with its last pattern; the
            source is gone, the copy checks clean and is as thin;
  snaps     an image with two snapshots moves with them, each reading as
            before, and a linked clone keeps its template;
  cancel    a cancel mid-copy, and one while the snapshots are copied,
            leave the source in charge, nothing in the destination; the
            copy keeps to its bandwidth;
  kill      kill -9 of vdiskd mid-copy, and deaths before the copy (the mirror
            just installed) and at the pivot (before the switch, after it,
            after the save): the restarted daemon serves the image in
            charge, the job finishes, no data is lost;
  full      a destination that fills up ends the job cleanly, the guest
            never sees an error;
  busy      a writer as fast as it can go for the whole job: it still ends.

usage: test_migrate.py VDISKD VDISK VUBLK WORKDIR      (exit 0, 1 or 77)
"""

import json
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

sys.path.insert(0, os.path.join(HERE, "..", "vublk"))
from vdlib import Vdiskd, check, skip  # noqa: E402
from test_qsd import pattern  # noqa: E402  (what vublk io write -S writes)

BLOCK = 64 * 1024


class Env:
    def __init__(self, vdiskd, vdisk, vub, work):
        self.vdiskd, self.vdisk, self.vub, self.work = vdiskd, vdisk, vub, work
        self.env = dict(os.environ, VDISK_DATASTORES=os.path.join(work, "registry.json"))

    def run(self, *args, ok=True, env=None):
        r = subprocess.run([self.vdisk, *args], env=env or self.env, capture_output=True,
                           text=True, timeout=300)
        if ok and r.returncode != 0:
            raise AssertionError(f"vdisk {' '.join(args)}: {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def daemon(self, name, extra_env=None):
        d = Vdiskd(self.vdiskd, os.path.join(self.work, name))
        d.env_extra = extra_env
        return d

    def io(self, sock, *cmds):
        args = [self.vub, "io"]
        for c in cmds:
            args += ["-c", c]
        p = subprocess.run(args + [sock], capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr

    def manifest(self, ds):
        with open(os.path.join(self.work, ds, ".vdisk-datastore.json")) as f:
            return json.load(f)["entries"]

    def info(self, spec):
        return json.loads(self.run("info", "--json", spec).stdout)


def start(d, env):
    """Starts vdiskd with the test's registry (and any extra variables); the
    vdisk tool talks to it from now on."""
    e_ctl = d.ctl
    env.env["VDISKD_CTL"] = e_ctl
    old = dict(os.environ)
    os.environ["VDISK_DATASTORES"] = env.env["VDISK_DATASTORES"]
    if getattr(d, "env_extra", None):
        os.environ.update(d.env_extra)
    try:
        d.start()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return d


def wait_job(d, image, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        jobs = d.call("migrate-status")["jobs"]
        job = next((j for j in jobs if j["disk"] == image or j["source"] == image), None)
        if job and not job["running"]:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"the job did not end: {jobs}")
        time.sleep(0.05)


def wait_phase(d, phase, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = d.call("migrate-status")["jobs"]
        if jobs and jobs[0]["phase"] == phase and jobs[0]["done"] > 0:
            return jobs[0]
        time.sleep(0.02)
    raise AssertionError(f"phase {phase} not reached: {d.call('migrate-status')}")


def fill(e, sock, nblocks, seed0):
    """Writes block i with seed seed0+i; returns {block: seed}."""
    cmds = [f"write -S {seed0 + i} {i * BLOCK} {BLOCK}" for i in range(nblocks)]
    rc, out = e.io(sock, *cmds)
    check(rc == 0, f"{nblocks} blocks written before the migration")
    return {i: seed0 + i for i in range(nblocks)}


def rewrites(seeds, n, rnd_seed, seed0):
    """n writes of random blocks among 'seeds' (updated to the last seed
    of each), as vublk io commands."""
    rnd = random.Random(rnd_seed)
    cmds = []
    for k in range(n):
        b = rnd.randrange(len(seeds))
        seeds[b] = seed0 + k
        cmds.append(f"write -S {seeds[b]} {b * BLOCK} {BLOCK}")
    return cmds


def verify_cmds(seeds):
    return [f"read -S {s} {b * BLOCK} {BLOCK}" for b, s in sorted(seeds.items())]


def test_live(e):
    e.run("create", "-q", "a:vm.vd", "64M")
    d = start(e.daemon("d-live"), e)
    with d:
        img = os.path.join(e.work, "a", "vm.vd")
        sock = os.path.join(d.workdir, "vm.sock")
        d.call("disk-add", image="a:vm.vd", socket=sock)
        seeds = fill(e, sock, 512, 1000)
        alloc_src = d.call("disk-info", disk=sock)["allocated_bytes"]
        # A slow copy (8 MiB/s: about 4 s) so the writer runs during it.
        mig = subprocess.Popen([e.vdisk, "migrate", "a:vm.vd", "--to", "b",
                                "--bandwidth", "8M"], env=e.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        wait_phase(d, "copy")
        cmds = rewrites(seeds, 600, 7, 5000)
        writer = subprocess.Popen([e.vub, "io"] + sum([["-c", c] for c in cmds], [])
                                  + ["-c", "hold"] + sum([["-c", c] for c in verify_cmds(seeds)], [])
                                  + [sock], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        st = d.call("migrate-status")["jobs"][0]
        check(st["phase"] == "copy" and st["total"] >= 32 << 20,
              f"status during the copy: phase {st['phase']}, {st['done']} of {st['total']}")
        r = e.run("migrate", "--status", "a:vm.vd")
        check("a:vm.vd -> b:vm.vd: copy" in r.stdout, f"--status: {r.stdout.strip()}")
        # Faster from here: the limit changes while the job runs.
        e.run("migrate", "--bandwidth", "0", "a:vm.vd")
        check(d.call("migrate-status")["jobs"][0]["bandwidth"] == 0, "bandwidth changed live")
        out, err = mig.communicate(timeout=120)
        check(mig.returncode == 0 and "b:vm.vd" in out, f"vdisk migrate: {out.strip()} {err.strip()}")
        writer.stdin.write("\n")
        writer.stdin.flush()
        wout, _ = writer.communicate(timeout=120)
        check(writer.returncode == 0,
              "every block reads its last pattern through the same connection after the pivot")
        job = wait_job(d, "a:vm.vd")
        check(job["phase"] == "done" and job["pivot-us"] < 1000000,
              f"job done, pivot pause {job['pivot-us']} us")
        dst = os.path.join(e.work, "b", "vm.vd")
        check(d.disk(sock)["image"] == dst, "vdiskd serves the destination")
        check(not os.path.exists(img) and "vm.vd" not in e.manifest("a"), "the source is gone")
        check(e.manifest("b")["vm.vd"]["state"] == "ready", "the destination is ready")
        with open(d.db) as f:
            saved = json.load(f)["disks"][0]
        check(saved["image"] == dst and not saved.get("migration"), "the saved set names it")
        # And back again, by the name it has now.
        r = e.run("migrate", "b:vm.vd", "--to", "a:back/vm.vd")
        check(d.disk(sock)["image"] == os.path.join(e.work, "a", "back", "vm.vd")
              and not os.path.exists(dst), f"and back to a at a new path: {r.stdout.strip()}")
        verify(e, sock, seeds, "every block reads right after the way back")
        r = e.run("migrate", "a:back/vm.vd", "--to", "b:vm.vd")
        d.call("disk-remove", disk=sock)
    r = e.run("check", "b:vm.vd")
    check(r.returncode == 0, "vdisk check on the destination is clean")
    alloc = e.info("b:vm.vd")["allocated_bytes"]
    check(abs(alloc - alloc_src) <= alloc_src // 100,
          f"as thin as the source: {alloc} bytes allocated, the source {alloc_src}")
    r = e.run("io", "-c", "read -P 0 32M 32M", "b:vm.vd")
    check(r.returncode == 0, "the unwritten half reads zeros")


def test_snaps(e):
    e.run("create", "-q", "a:tpl.vd", "16M")
    e.run("io", "-c", "write -P 0x55 0 16M", "a:tpl.vd")
    e.run("template", "a:tpl.vd")
    e.run("create", "-q", "-b", "tpl.vd", "a:s.vd")
    d = start(e.daemon("d-snaps"), e)
    with d:
        sock = os.path.join(d.workdir, "s.sock")
        d.call("disk-add", image="a:s.vd", socket=sock)
        rc, _ = e.io(sock, "write -P 0x11 0 4M")
        d.call("snapshot-create", disk=sock, name="s1")
        rc2, _ = e.io(sock, "write -P 0x22 2M 4M")
        d.call("snapshot-create", disk=sock, name="s2")
        rc3, _ = e.io(sock, "write -P 0x33 5M 1M", "zero 8M 1M")
        check(rc == rc2 == rc3 == 0, "data and two snapshots written")
        r = e.run("migrate", "a:s.vd", "--to", "b")
        check(r.returncode == 0, f"a clone with snapshots migrated: {r.stdout.strip()}")
        rc, out = e.io(sock, "read -P 0x11 0 2M", "read -P 0x22 2M 3M", "read -P 0x33 5M 1M",
                       "read -P 0 8M 1M", "read -P 0x55 9M 7M")
        check(rc == 0, f"the guest reads its disk after the pivot {out.strip()[-200:]}")
        d.call("disk-remove", disk=sock)
    info = e.info("b:s.vd")
    snaps = [s["name"] for s in info["snapshots"]]
    check(snaps == ["s1", "s2"], f"the snapshots moved: {snaps}")
    check(os.path.realpath(os.path.join(e.work, "b", info["backing_file"]))
          == os.path.join(e.work, "a", "tpl.vd"), f"the clone keeps its template: {info['backing_file']}")
    check(e.run("check", "b:s.vd").returncode == 0, "the copy checks clean")
    e.run("snapshot", "revert", "b:s.vd", "s2")
    r = e.run("io", "-c", "read -P 0x11 0 2M", "-c", "read -P 0x22 2M 4M",
              "-c", "read -P 0x55 6M 10M", "b:s.vd", ok=False)
    check(r.returncode == 0, f"snapshot s2 reads as it was taken {r.stdout[-300:]}")
    e.run("snapshot", "revert", "b:s.vd", "s1")
    r = e.run("io", "-c", "read -P 0x11 0 4M", "-c", "read -P 0x55 4M 12M", "b:s.vd", ok=False)
    check(r.returncode == 0, f"snapshot s1 reads as it was taken {r.stdout[-300:]}")


def serve_filled(e, name, spec, size="64M", nblocks=256, daemon_env=None):
    """A daemon serving a new image 'spec' filled with seeded blocks."""
    e.run("create", "-q", spec, size)
    d = start(e.daemon(name, daemon_env), e)
    sock = os.path.join(d.workdir, "disk.sock")
    d.call("disk-add", image=spec, socket=sock)
    return d, sock, fill(e, sock, nblocks, 100)


def verify(e, sock, seeds, what):
    rc, out = e.io(sock, *verify_cmds(seeds))
    check(rc == 0, what + ("" if rc == 0 else f": {out[-300:]}"))


def in_charge(e, ds, rel, other_ds):
    """The entry of 'rel' in 'ds' is ready and 'other_ds' holds none."""
    ent = e.manifest(ds).get(rel)
    return (ent is not None and ent["state"] == "ready" and not ent.get("moving_to")
            and rel not in e.manifest(other_ds)
            and not os.path.exists(os.path.join(e.work, other_ds, rel)))


def test_cancel(e):
    d, sock, seeds = serve_filled(e, "d-cancel", "a:c.vd")
    with d:
        d.call("migrate-start", disk=sock, to="b", bandwidth=2 << 20)
        wait_phase(d, "copy")
        time.sleep(1)
        job = d.call("migrate-status", disk=sock)["jobs"][0]
        # An upper bound only: a slow machine copies less, never more.
        check(0 < job["done"] <= 2 * (2 << 20) + job["elapsed-ms"] * (2 << 20) // 1000,
              f"the copy keeps to its bandwidth: {job['done']} bytes in {job['elapsed-ms']} ms "
              "at 2 MiB/s")
        r = e.run("migrate", "--cancel", "a:c.vd")
        check(r.returncode == 0, "vdisk migrate --cancel")
        job = d.call("migrate-status", disk=sock)["jobs"][0]
        check(job["phase"] == "cancelled", f"the job says cancelled ({job['phase']})")
        check(in_charge(e, "a", "c.vd", "b"), "the source is in charge, nothing in b")
        check(d.disk(sock)["image"] == os.path.join(e.work, "a", "c.vd"), "still served")
        verify(e, sock, seeds, "the guest reads its data after the cancel")
        # Started again, it finishes; --keep-source leaves the source as an
        # image of its own.
        r = e.run("migrate", "--keep-source", "a:c.vd", "--to", "b")
        check(r.returncode == 0, "a second run finishes")
        verify(e, sock, seeds, "and the guest reads its data from b")
        check(d.disk(sock)["image"] == os.path.join(e.work, "b", "c.vd"), "b:c.vd is served")
        ent = e.manifest("a").get("c.vd") or {}
        check(ent.get("state") == "ready" and not ent.get("moving_to")
              and e.run("check", "a:c.vd").returncode == 0,
              "--keep-source: a:c.vd stays, an independent image that checks clean")
        raw = os.path.join(e.work, "kept.raw")
        e.run("convert", "-O", "raw", "a:c.vd", raw)
        with open(raw, "rb") as f:
            data = f.read()
        os.unlink(raw)
        check(all(data[b * BLOCK:(b + 1) * BLOCK] == pattern(s, b * BLOCK, BLOCK)
                  for b, s in seeds.items()), "the kept source holds every block")
        d.call("disk-remove", disk=sock)


def test_kill(e):
    d, sock, seeds = serve_filled(e, "d-kill", "a:k.vd")
    with d:
        d.call("migrate-start", disk=sock, to="b", bandwidth=4 << 20)
        wait_phase(d, "copy")
        d.kill9()
        check(in_charge(e, "a", "k.vd", "b") or e.manifest("b").get("k.vd", {}).get(
            "state") == "incomplete", "killed mid-copy: the source is the image")
        start(d, e)
        verify(e, sock, seeds, "the restarted vdiskd serves the source, every block right")
        job = wait_job(d, "a:k.vd")
        check(job["phase"] == "done", f"the job was taken up and finished ({job['phase']})")
        check(in_charge(e, "b", "k.vd", "a"), "b:k.vd is the image, a:k.vd gone")
        verify(e, sock, seeds, "the guest reads its data from b")
        d.call("disk-remove", disk=sock)
    # Deaths inside the pivot, where a kill from outside cannot aim.
    for n, (at, home) in enumerate((("copy", "a"), ("pivot", "a"), ("switched", "b"),
                                    ("saved", "b"))):
        rel = f"p{n}.vd"
        d, sock, seeds = serve_filled(e, f"d-{at}", f"a:{rel}", size="16M", nblocks=64,
                                      daemon_env={"VDISKD_MIGRATE_CRASH_AT": at})
        d.call("migrate-start", disk=sock, to="b")
        d.proc.wait(60)
        d.proc = None
        d.env_extra = None
        a_ent = e.manifest("a").get(rel)
        b_ent = e.manifest("b").get(rel)
        check((b_ent or {}).get("state") == ("ready" if home == "b" else "incomplete"),
              f"died at {at}: {home}:{rel} is the image ({a_ent}, {b_ent})")
        start(d, e)
        with d:
            verify(e, sock, seeds, f"after a death at {at}, the restarted vdiskd serves "
                   "every block right")
            if home == "a":
                job = wait_job(d, f"a:{rel}")
                check(job["phase"] == "done", f"the job was taken up ({job['phase']})")
            check(d.disk(sock)["image"] == os.path.join(e.work, "b", rel),
                  f"after a death at {at}, b:{rel} is served")
            if at == "saved":
                # The saved set named b already: the old copy waits for the
                # command that finishes it, as after a cold migration.
                r = e.run("migrate", f"a:{rel}", "--to", "b", ok=False)
                check(r.returncode == 0, f"vdisk migrate finishes it: {r.stdout.strip()}")
            check(in_charge(e, "b", rel, "a"), f"a:{rel} is gone")
            d.call("disk-remove", disk=sock)


def test_snapshot_phase(e):
    """Cancel, then kill -9, while the snapshots are being copied."""
    d, sock, seeds = serve_filled(e, "d-phase", "a:ph.vd", size="32M", nblocks=128)
    with d:
        d.call("snapshot-create", disk=sock, name="s1")
        seeds.update(fill(e, sock, 64, 7000))
        d.call("migrate-start", disk=sock, to="b", bandwidth=1 << 20)
        wait_phase(d, "snapshots")
        d.call("migrate-cancel", disk=sock)
        check(in_charge(e, "a", "ph.vd", "b"), "cancelled while copying the snapshots: the "
              "source is in charge, nothing in b")
        d.call("migrate-start", disk=sock, to="b", bandwidth=1 << 20)
        wait_phase(d, "snapshots")
        d.kill9()
        start(d, e)
        verify(e, sock, seeds, "killed while copying the snapshots: the restarted vdiskd "
               "serves every block")
        job = d.call("migrate-status", disk=sock)["jobs"][0]
        check(job["running"] and job["bandwidth"] == 1 << 20,
              "the job was taken up with its bandwidth")
        e.run("migrate", "--bandwidth", "0", "a:ph.vd")
        job = wait_job(d, "a:ph.vd")
        check(job["phase"] == "done", f"and finished ({job['phase']})")
        verify(e, sock, seeds, "every block reads right from b")
        d.call("disk-remove", disk=sock)
    info = e.info("b:ph.vd")
    check([s["name"] for s in info["snapshots"]] == ["s1"] and
          e.run("check", "b:ph.vd").returncode == 0, "b:ph.vd has its snapshot, checks clean")


def test_full(e):
    mnt = os.path.join(e.work, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", mnt], check=True)
    try:
        e.run("datastore", "create", "small", os.path.join(mnt, "ds"))
        d, sock, seeds = serve_filled(e, "d-full", "a:f.vd", size="64M", nblocks=400)
        with d:
            writer = subprocess.Popen(
                [e.vub, "io"] + sum([["-c", c] for c in verify_cmds(seeds)], []) + [sock],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            r = e.run("migrate", "a:f.vd", "--to", "small", ok=False)
            err = r.stderr.strip()
            check(r.returncode == 1 and "No space left" in err and err.count("\n") == 0,
                  f"a destination that fills up fails the job: {err}")
            writer.wait(120)
            check(writer.returncode == 0, "the guest saw no error meanwhile")
            ent = e.manifest("a")["f.vd"]
            with open(os.path.join(mnt, "ds", ".vdisk-datastore.json")) as f:
                small = json.load(f)["entries"]
            check(ent["state"] == "ready" and not ent.get("moving_to") and small == {},
                  "the source is in charge, small has no entry")
            check(os.listdir(os.path.join(mnt, "ds")) in (
                [".vdisk-datastore.json", ".vdisk-datastore.lock"],
                [".vdisk-datastore.lock", ".vdisk-datastore.json"]), "no file left behind")
            verify(e, sock, seeds, "every block reads right afterwards")
            d.call("disk-remove", disk=sock)
    finally:
        subprocess.run(["umount", "-l", mnt])


def test_busy(e):
    """A writer rewriting as fast as it can for the whole job."""
    d, sock, seeds = serve_filled(e, "d-busy", "a:w.vd", nblocks=256)
    with d:
        cmds = rewrites(seeds, 6000, 11, 90000)
        # Its output is not read: a line per write would fill a pipe.
        writer = subprocess.Popen([e.vub, "io"] + sum([["-c", c] for c in cmds], [])
                                  + [sock], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(0.3)
        r = e.run("migrate", "a:w.vd", "--to", "b", ok=False)
        busy = writer.poll() is None
        check(r.returncode == 0, f"the job ends under a writer at full speed "
              f"(still writing at the end: {busy}): {r.stdout.strip()}")
        writer.wait(300)
        check(writer.returncode == 0, "every write succeeded")
        verify(e, sock, seeds, "every block has its last pattern")
        d.call("disk-remove", disk=sock)


def main():
    vdiskd, vdisk, vub, work = sys.argv[1:]
    if os.geteuid() != 0:
        skip("needs root (tmpfs for the full-destination case)")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    e = Env(vdiskd, vdisk, vub, work)
    for name in ("a", "b"):
        e.run("datastore", "create", name, os.path.join(work, name))
    test_live(e)
    test_snaps(e)
    test_cancel(e)
    test_kill(e)
    test_snapshot_phase(e)
    test_full(e)
    test_busy(e)


if __name__ == "__main__":
    main()
