#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run vswitchd, vswitchctl and DPDK testpmd clients for the switch tests.

Switch(vswitchd, vswitchctl, workdir, netns=None) starts the daemon with a
private control socket and configuration file in 'workdir', optionally
inside a network namespace (so its host ports and uplinks live there), and
stops it by the PID it started.  ctl() runs vswitchctl against it.
Testpmd(...) runs one dpdk-testpmd with net_virtio_user ports as a traffic
source and sink.  Netns(name) makes a network namespace and removes it.

Python 3 standard library only; every process started here is stopped by
its PID, also at exit.
"""

import atexit
import json
import os
import re
import signal
import subprocess
import time

_live = []


def _stop_all():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_stop_all)


class SwitchError(Exception):
    pass


def _tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Netns:
    """A network namespace made for one test, removed on exit."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.sh("ip link set lo up")

    def sh(self, cmd, check=True):
        """Runs a shell command inside; returns (rc, output)."""
        p = subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if check and p.returncode != 0:
            raise SwitchError(f"in netns {self.name}: {cmd}: {p.stdout}")
        return p.returncode, p.stdout

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name],
                       stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Switch:
    """vswitchd with its own control socket and database in 'workdir'."""

    def __init__(self, vswitchd, vswitchctl, workdir, netns=None, args=()):
        self.vswitchd, self.vswitchctl = vswitchd, vswitchctl
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.ctl_path = os.path.join(self.workdir, "vswitchd.sock")
        self.db_path = os.path.join(self.workdir, "conf.json")
        self.log_path = os.path.join(self.workdir, "vswitchd.log")
        self.netns = netns
        self.args = list(args)
        self.proc = None
        self.starts = 0

    def start(self, timeout=30):
        argv = [self.vswitchd, "--ctl", self.ctl_path, "--db", self.db_path,
                "--capture-dir", self.workdir, "--hugepages", "no"] + self.args
        if self.netns:
            # ip netns exec execs the daemon: the PID stays the daemon's.
            argv = ["ip", "netns", "exec", self.netns.name] + argv
        env = dict(os.environ)
        # DPDK's EAL keeps a few allocations until exit; ours are checked
        # by the unit tests.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"==== start {self.starts}\n")
        log.flush()
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        log.close()
        _live.append(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SwitchError("vswitchd exited with status "
                                  f"{self.proc.returncode}:\n"
                                  + _tail(self.log_path))
            if os.path.exists(self.ctl_path) and \
                    self.ctl("version", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise SwitchError("vswitchd did not answer within "
                          f"{timeout} s:\n" + _tail(self.log_path))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon; returns its exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise SwitchError("vswitchd did not stop on "
                                  f"{signal.Signals(sig).name}")
        rc = self.proc.returncode
        _live.remove(self.proc)
        self.proc = None
        return rc

    def ctl(self, *args, check=True):
        """Runs vswitchctl; returns the CompletedProcess (text)."""
        p = subprocess.run([self.vswitchctl, "--ctl", self.ctl_path]
                           + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        if check and p.returncode != 0:
            raise SwitchError(f"vswitchctl {' '.join(map(str, args))}: "
                              f"status {p.returncode}: {p.stderr.strip()}")
        return p

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args).stdout)

    def port_stats(self, bridge, port):
        return self.ctl_json("stats", bridge, port)["ports"][0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Testpmd:
    """dpdk-testpmd with net_virtio_user ports on the given vhost-user
    sockets, as a traffic source and sink.

    mode: a testpmd forwarding mode ("txonly", "rxonly", "mac", "io").
    server: the sockets are created by testpmd (virtio-user server mode),
    for vhost-user-client switch ports.
    """

    def __init__(self, name, workdir, sockets, mode="rxonly", macs=None,
                 server=False, args=(), lcores="0,1", queues=1,
                 interactive=False):
        self.name = name
        self.workdir = os.path.abspath(workdir)
        self.log_path = os.path.join(self.workdir, f"testpmd-{name}.log")
        argv = ["dpdk-testpmd", "-l", lcores, "--no-pci", "--no-huge",
                "--no-shconf", "-m", "512",
                "--file-prefix", f"vstest-{name}-{os.getpid()}"]
        for i, sock in enumerate(sockets):
            dev = f"net_virtio_user{i},path={sock},queues={queues}"
            if macs:
                dev += f",mac={macs[i]}"
            if server:
                dev += ",server=1"
            argv += ["--vdev", dev]
        argv += ["--", "--total-num-mbufs=16384", f"--forward-mode={mode}",
                 "--nb-cores=1"]
        # Interactive: forwarding starts and stops on command() while the
        # ports stay connected, so nothing in flight is lost to a
        # disconnect.  Else it forwards from the start until stop().
        argv += ["-i"] if interactive else ["--stats-period", "1"]
        if interactive:
            # Its statistics must reach the log as printed, not at exit;
            # stdbuf execs testpmd, so the PID stays testpmd's.
            argv = ["stdbuf", "-oL"] + argv
        argv += list(args)
        self.interactive = interactive
        self.argv = argv
        self.proc = None

    def start(self):
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if self.interactive else subprocess.DEVNULL,
            text=True)
        log.close()
        _live.append(self.proc)
        return self

    def command(self, line):
        """Sends one command to an interactive testpmd."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc and self.interactive and self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc and self.proc.poll() is None:
            # SIGINT: testpmd stops its ports and says goodbye to the
            # vhost-user peer before exiting.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _live:
            _live.remove(self.proc)
        self.proc = None

    def log(self):
        return _tail(self.log_path, 200)

    def log_text(self):
        """The whole log so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Checks:
    """Prints each check as ok/FAIL and remembers the failures, so a test
    goes on after one and reports them all."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)

    def status(self):
        """0 if every check passed, else 1 (printing how many failed)."""
        if self.failures:
            print(f"{len(self.failures)} check(s) failed", flush=True)
            return 1
        return 0


def wait_for(what, fn, timeout=20, interval=0.2):
    """Calls fn() until it returns something true; raises SwitchError with
    'what' after 'timeout' seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SwitchError(f"timed out waiting for {what}")
        time.sleep(interval)


def pcap_frames(path):
    """The frames of a classic pcap file, as bytes, in order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SwitchError(f"{path}: no pcap header")
    magic = int.from_bytes(data[:4], "little")
    order = "little" if magic == 0xa1b2c3d4 else "big"
    if int.from_bytes(data[:4], order) != 0xa1b2c3d4:
        raise SwitchError(f"{path}: not a pcap file")
    if int.from_bytes(data[20:24], order) != 1:
        raise SwitchError(f"{path}: not Ethernet")
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = int.from_bytes(data[off + 8:off + 12], order)
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    if off != len(data):
        raise SwitchError(f"{path}: a truncated record")
    return frames


def vlan_of(frame):
    """The outer 802.1Q VID of a frame, or None if untagged."""
    if len(frame) >= 18 and frame[12:14] == b"\x81\x00":
        return int.from_bytes(frame[14:16], "big") & 0xfff
    return None


def parse_ping(out):
    """(transmitted, received) from ping's summary line."""
    m = re.search(r"(\d+) packets transmitted, (\d+) (packets )?received", out)
    if not m:
        return (0, 0)
    return int(m.group(1)), int(m.group(2))
