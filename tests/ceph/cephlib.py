#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A one-node Ceph cluster for tests and benchmarks.

Cluster(workdir) writes its own ceph.conf and keyring in 'workdir', starts
one monitor and one OSD on 127.0.0.1 (a monitor port of its own, so a
leftover client of another cluster cannot join this one; memstore, so no
disk is touched; scrubbing off and a small memory target for a small host),
creates a replicated pool of size 1 with the rbd application, and stops both
daemons by the PIDs it started (also at exit).  start() raises Unavailable
with the reason when Ceph cannot start here; tests then exit 77 with it.

    with Cluster(workdir) as c:
        subprocess.run(["rbd", "-c", c.conf, "create", "rbd/x", "--size", "64M"])
        spec = c.spec("x")            # rbd:rbd/x:conf=...:id=admin

Run by hand: cephlib.py start DIR (prints the conf path; stops nothing),
cephlib.py stop DIR.  Python 3 standard library only.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

_live = []


@atexit.register
def _stop_all():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Unavailable(Exception):
    """Ceph cannot run on this machine (not installed, or it did not start)."""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, workdir, pool="rbd", memstore_bytes=4 << 30, timeout=10):
        self.dir = os.path.abspath(workdir)
        self.pool = pool
        self.memstore_bytes = memstore_bytes
        self.timeout = timeout
        self.conf = os.path.join(self.dir, "ceph.conf")
        self.keyring = os.path.join(self.dir, "keyring")
        self.procs = {}
        self.port = None

    # ------------------------------------------------------------ helpers
    def ceph(self, *args, check=True, timeout=60):
        """Runs the ceph CLI against this cluster; returns its stdout."""
        r = subprocess.run(["ceph", "-c", self.conf, "--connect-timeout",
                            str(self.timeout), *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"ceph {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def rbd(self, *args, check=True, timeout=120):
        r = subprocess.run(["rbd", "-c", self.conf, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"rbd {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def spec(self, image, pool=None, user="admin"):
        """The rbd: name vdiskd and the vdisk tool take for 'image'."""
        return f"rbd:{pool or self.pool}/{image}:conf={self.conf}:id={user}"

    def _log(self, name):
        return os.path.join(self.dir, "log", f"{name}.log")

    def _daemon(self, name, argv):
        out = open(os.path.join(self.dir, "log", f"{name}.out"), "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.close()
        _live.append(proc)
        self.procs[name] = proc
        with open(os.path.join(self.dir, "pids"), "a") as f:
            f.write(f"{name} {proc.pid}\n")
        return proc

    def _write_conf(self):
        fsid = str(uuid.uuid4())
        d = self.dir
        conf = f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{self.port}]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {self.keyring}
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
ms bind msgr1 = false
client mount timeout = {self.timeout}
rados mon op timeout = {self.timeout}
rados osd op timeout = {self.timeout}
# A killed client's watch (and so its exclusive lock) is noticed after this.
osd client watch timeout = 5
[mon.a]
mon data = {d}/mon
[osd.0]
osd data = {d}/osd
osd objectstore = memstore
memstore device bytes = {self.memstore_bytes}
memstore page set = true
osd memory target = 536870912
osd scrub begin hour = 0
osd scrub end hour = 0
osd scrub during recovery = false
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        return fsid

    # ---------------------------------------------------------- lifecycle
    def start(self, deadline=60):
        for prog in ("ceph-mon", "ceph-osd", "ceph", "ceph-authtool", "monmaptool", "rbd"):
            if not shutil.which(prog):
                raise Unavailable(f"{prog} is not installed (scripts/setup.sh installs Ceph)")
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("run", "log", "mon", "osd"):
            os.makedirs(os.path.join(self.dir, sub))
        self.port = _free_port()
        fsid = self._write_conf()
        t0 = time.monotonic()
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True,
                                        timeout=60)
        try:
            run("ceph-authtool", "--create-keyring", self.keyring, "--gen-key", "-n", "mon.",
                "--cap", "mon", "allow *")
            run("ceph-authtool", self.keyring, "--gen-key", "-n", "client.admin",
                "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *")
            monmap = os.path.join(self.dir, "monmap")
            run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{self.port}]",
                "--fsid", fsid, monmap)
            run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", monmap,
                "--keyring", self.keyring)
        except subprocess.CalledProcessError as e:
            raise Unavailable(f"{e.cmd[0]} failed: {(e.stderr or '').strip()[-300:]}")
        self._daemon("mon.a", ["ceph-mon", "-f", "-c", self.conf, "-i", "a"])
        try:
            osd_uuid = str(uuid.uuid4())
            osd_id = self.ceph("osd", "new", osd_uuid).strip()
            osd_keyring = os.path.join(self.dir, "osd", "keyring")
            self.ceph("auth", "get-or-create", f"osd.{osd_id}", "mon", "allow profile osd",
                      "osd", "allow *", "mgr", "allow profile osd", "-o", osd_keyring)
            run("ceph-osd", "-c", self.conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid,
                "--keyring", osd_keyring)
        except (subprocess.CalledProcessError, RuntimeError, subprocess.TimeoutExpired) as e:
            self.stop()
            raise Unavailable(f"the monitor did not take an OSD: {e}")
        self._daemon(f"osd.{osd_id}", ["ceph-osd", "-f", "-c", self.conf, "-i", osd_id,
                                       "--keyring", osd_keyring])
        try:
            self.ceph("osd", "pool", "create", self.pool, "8")
            self.ceph("osd", "pool", "application", "enable", self.pool, "rbd")
            # The pool takes writes once the OSD is up and its placement
            # groups peered; without a manager daemon the PG states are not
            # reported, so a small write is the probe.
            while True:
                osds = json.loads(self.ceph("osd", "dump", "-f", "json")).get("osds", [])
                if osds and osds[0].get("up") == 1:
                    r = subprocess.run(["rados", "-c", self.conf, "-p", self.pool, "put",
                                        "cephlib-probe", "/dev/null"], capture_output=True,
                                       timeout=60)
                    if r.returncode == 0:
                        break
                if time.monotonic() - t0 > deadline:
                    raise Unavailable(f"the pool took no write after {deadline} s "
                                      f"(osd log: {self.log_tail('osd.0', 3)})")
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise Unavailable(f"{name} exited with {proc.returncode}: "
                                          f"{self.log_tail(name)}")
                time.sleep(0.3)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            self.stop()
            raise Unavailable(str(e))
        except Unavailable:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def log_tail(self, name, lines=10):
        try:
            with open(self._log(name), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc in _live:
                _live.remove(proc)
        self.procs = {}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(f"usage: {argv[0]} start|stop DIR", file=sys.stderr)
        return 2
    if argv[1] == "start":
        c = Cluster(argv[2])
        try:
            c.start()
        except Unavailable as e:
            print(f"ceph: {e}", file=sys.stderr)
            return 77
        # Leave the daemons running for the caller: forget them here.
        _live.clear()
        print(c.conf)
        return 0
    try:
        with open(os.path.join(argv[2], "pids")) as f:
            for line in f:
                name, pid = line.split()
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
    except OSError as e:
        print(f"ceph: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
