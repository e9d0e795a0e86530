#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run vdiskd for the disk server's tests.

Vdiskd(binary, workdir) starts the daemon with a private control socket,
database and pidfile in 'workdir' and stops it by the PID it started (also
at exit); call() sends one JSON-RPC request to its control socket, and
raises RpcError with the daemon's sentence when it answers with an error.
kill9() kills it the hard way, start() brings it back on the same files.

Python 3 standard library only.
"""

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time

_live = []


@atexit.register
def _stop_all():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def track(proc):
    """Kills 'proc' at exit if it still runs (for helpers that start
    long-running processes of their own, such as tests/ceph/cephlib.py)."""
    _live.append(proc)


def untrack(proc):
    if proc in _live:
        _live.remove(proc)


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(error.get("message"))
        self.error = error


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def require(*programs):
    for p in programs:
        if not any(os.access(os.path.join(d, p), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            skip(f"{p} not installed")


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_socket(path, proc, what, log, seconds=20):
    """Waits for the Unix socket 'path' that 'proc' (None: any process)
    makes; exits the benchmark with the tail of 'log' if it never comes."""
    for _ in range(int(seconds / 0.05)):
        if os.path.exists(path):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit(f"bench: {what} made no socket {path}:\n{tail(log)}")


def check(cond, what):
    """A test's assertion: prints "ok: WHAT", or raises with WHAT."""
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


class Vdiskd:
    def __init__(self, binary, workdir, args=()):
        self.binary = binary
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.ctl = os.path.join(self.workdir, "vdiskd.sock")
        self.db = os.path.join(self.workdir, "disks.json")
        self.pidfile = os.path.join(self.workdir, "vdiskd.pid")
        self.log = os.path.join(self.workdir, "vdiskd.log")
        self.args = list(args)
        self.proc = None
        self._id = 0

    def start(self, timeout=30):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--ctl", self.ctl, "--db", self.db,
             "--pidfile", self.pidfile] + self.args,
            stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        _live.append(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdiskd exited with {self.proc.returncode}:\n"
                                   + tail(self.log))
            if os.path.exists(self.pidfile):
                try:
                    with open(self.pidfile) as f:
                        if int(f.read().strip()) == self.proc.pid:
                            return self
                except (OSError, ValueError):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("vdiskd did not start:\n" + tail(self.log))
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def call(self, method, timeout=60, **params):
        self._id += 1
        req = {"jsonrpc": "2.0", "id": self._id, "method": method,
               "params": {k.replace("_", "-"): v for k, v in params.items()}}
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.ctl)
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("vdiskd closed the connection:\n" + tail(self.log))
                buf += chunk
        ans = json.loads(buf)
        if "error" in ans:
            raise RpcError(ans["error"])
        return ans["result"]

    def disk(self, name):
        disks = self.call("disk-list", disk=name)["disks"]
        assert len(disks) == 1, disks
        return disks[0]

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        if not self.proc:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
