#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Self-test of the guest harness, without the switch.

Boots guests two at a time joined by a QEMU "-netdev socket" wire (one
listens on 127.0.0.1, the other connects) and checks: the guests boot with
no disk, eth0 and the vs.vlan subinterfaces exist with the vs.mtu MTU, the
guests ping each other untagged (also 8000-byte pings) and over VLAN 10,
and a guest with only VLAN 20 cannot reach a VLAN 10 address while the
untagged wire still works.  It also exercises the harness API: exit
statuses, quoting, multi-line and long commands, timeouts, write_file, QMP
set_link, and that stop() leaves no process or socket behind.

Exit status: 0 pass, 1 fail (the failing step is printed), 77 skip (no
QEMU, kernel or busybox).  Usage: selftest.py [--workdir DIR] [--keep]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
from guestlib import Guest, GuestError, GuestTimeout, Nic  # noqa: E402


class StepFailed(Exception):
    pass


class Steps:
    def __init__(self):
        self.t0 = time.monotonic()
        self.current = None
        self.times = []

    def step(self, name):
        self.current = name
        self.t_step = time.monotonic()
        print(f"--- {name}", flush=True)

    def done(self):
        dt = time.monotonic() - self.t_step
        self.times.append((self.current, dt))
        print(f"    ok ({dt:.1f} s)", flush=True)


def expect(cond, what):
    if not cond:
        raise StepFailed(what)


def ping(g, addr, count=5, size=None, wait=5):
    # busybox ping: -W is how long to wait for replies once all -c packets
    # are sent (default 10 s), and -w does not shorten that.
    s = f" -s {size}" if size else ""
    return g.run(f"ping -c {count} -i 0.2 -W {wait}{s} {addr}",
                 timeout=count + wait + 15)


def must_ping(g, addr, **kw):
    rc, out = ping(g, addr, **kw)
    expect(rc == 0, f"{g.name} cannot ping {addr}:\n{out}")


def must_not_ping(g, addr):
    rc, out = ping(g, addr, count=2, wait=2)
    expect(rc != 0, f"{g.name} pinged {addr} but must not:\n{out}")


def vlan_rx_packets(g, dev):
    rc, out = g.run(f"cat /proc/net/vlan/{dev}")
    expect(rc == 0, f"{g.name}: no /proc/net/vlan/{dev}:\n{out}")
    for line in out.splitlines():
        if line.strip().startswith("total frames received"):
            return int(line.split()[-1])
    raise StepFailed(f"{g.name}: cannot parse /proc/net/vlan/{dev}:\n{out}")


def check_gone(guests):
    for g in guests:
        expect(not g.running(), f"{g.name}: QEMU still running")
        try:
            os.kill(g.pid, 0)
            raise StepFailed(f"{g.name}: pid {g.pid} still exists")
        except ProcessLookupError:
            pass
        if g.qmp_path:
            expect(not os.path.exists(g.qmp_path),
                   f"{g.name}: {g.qmp_path} left behind")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="default: a new directory in /tmp")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory even on success")
    ap.add_argument("--vhost", action="store_true",
                    help="also boot two guests on vhost-user NICs served by "
                    "dpdk-testpmd (io forwarding; busy-polls one core), one "
                    "guest as client with 2 queues, one as server, and "
                    "restart testpmd to check that both reconnect")
    ap.add_argument("--vhost-only", action="store_true",
                    help="only the --vhost steps")
    args = ap.parse_args()

    if not shutil.which(guestlib.QEMU):
        print(f"SKIP: {guestlib.QEMU} not found")
        return 77
    try:
        guestlib.find_kernel()
    except GuestError as e:
        print(f"SKIP: {e}")
        return 77
    if not os.path.exists(guestlib.BUSYBOX):
        print(f"SKIP: {guestlib.BUSYBOX} not found")
        return 77

    workdir = args.workdir or tempfile.mkdtemp(prefix="vsguest-")
    os.makedirs(workdir, exist_ok=True)
    st = Steps()
    guests = []
    ok = False
    try:
        if not args.vhost_only:
            run_steps(st, workdir, guests)
        if args.vhost or args.vhost_only:
            run_vhost_steps(st, workdir, guests)
        ok = True
    except (StepFailed, GuestError, OSError, ValueError) as e:
        print(f"FAILED at step: {st.current}\n{e}", file=sys.stderr)
        for g in guests:
            print(f"    console log of {g.name}: {g.console_log}",
                  file=sys.stderr)
    finally:
        for g in guests:
            g.stop()
        if _testpmd:
            _testpmd.stop()
    total = time.monotonic() - st.t0
    boots = [g.boot_seconds for g in guests if g.boot_seconds]
    if boots:
        print(f"boot time (start() to ready, two guests booting at once): "
              f"min {min(boots):.1f} s, max {max(boots):.1f} s")
    print(f"self-test {'passed' if ok else 'FAILED'} in {total:.1f} s")
    if ok and not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work directory: {workdir}")
    return 0 if ok else 1


def run_steps(st, workdir, guests):
    st.step("build the initramfs")
    t = time.monotonic()
    initrd = guestlib.build_initramfs(workdir)
    built = time.monotonic() - t
    t = time.monotonic()
    expect(guestlib.build_initramfs(workdir) == initrd, "cache key changed")
    cached = time.monotonic() - t
    print(f"    {initrd} ({os.path.getsize(initrd) // 1024} KiB, built in "
          f"{built:.1f} s, cached call {cached * 1000:.0f} ms)")
    with open(initrd[:-len(".cpio.gz")] + ".json") as f:
        print("    manifest:", " ".join(f.read().split()))
    st.done()

    # Phase 1: a and b on one wire, untagged and VLAN 10, MTU 9000.
    st.step("boot a (listen) and b (connect) on a socket wire")
    port = guestlib.free_tcp_port()
    a = Guest("a", workdir, nics=[Nic.socket_listen(port)], ip="10.0.0.1/24",
              vlans="10:10.0.10.1/24", mtu=9000, qmp=True)
    b = Guest("b", workdir, nics=[Nic.socket_connect(port)],
              ip="10.0.0.2/24", vlans=[(10, "10.0.10.2/24")], mtu=9000)
    guests += [a, b]
    a.start()
    b.start()
    a.wait_ready()
    b.wait_ready()
    print(f"    booted in {a.boot_seconds:.1f} s and {b.boot_seconds:.1f} s")
    st.done()

    st.step("no disk needed (/dev/vda absent)")
    for g in (a, b):
        rc, out = g.run("test -e /dev/vda || grep -q vda /proc/partitions")
        expect(rc != 0, f"{g.name} has a /dev/vda:\n{out}")
    st.done()

    st.step("ip -o link shows eth0 and eth0.10 with MTU 9000")
    for g in (a, b):
        rc, out = g.run("ip -o link")
        expect(rc == 0, f"{g.name}: ip -o link failed:\n{out}")
        links = {ln.split(":")[1].strip().split("@")[0]: ln
                 for ln in out.splitlines() if ":" in ln}
        expect("eth0" in links, f"{g.name}: no eth0 in:\n{out}")
        expect("eth0.10" in links, f"{g.name}: no eth0.10 in:\n{out}")
        expect(" mtu 9000 " in links["eth0"], f"{g.name}: eth0 MTU:\n{out}")
        expect(a.mac(0) in links["eth0"] if g is a else True,
               f"a: eth0 has not MAC {a.mac(0)}:\n{out}")
    st.done()

    st.step("a and b ping each other on 10.0.0.1/2")
    must_ping(a, "10.0.0.2")
    must_ping(b, "10.0.0.1")
    st.done()

    st.step("8000-byte pings (MTU 9000 from vs.mtu)")
    must_ping(a, "10.0.0.2", size=8000)
    st.done()

    st.step("a and b ping each other over VLAN 10 (10.0.10.1/2)")
    before = vlan_rx_packets(b, "eth0.10")
    must_ping(a, "10.0.10.2")
    must_ping(b, "10.0.10.1")
    after = vlan_rx_packets(b, "eth0.10")
    expect(after >= before + 3,
           f"b: eth0.10 received {after - before} frames, expected >= 3")
    st.done()

    st.step("harness: exit status, quoting, multi-line and long commands")
    rc, out = a.run("echo 'it''s \"quoted\"' $((6*7)); exit 3")
    expect((rc, out) == (3, 'its "quoted" 42\n'), f"got {(rc, out)!r}")
    rc, out = a.run("for i in 1 2; do\n  echo line$i\ndone\nfalse")
    expect((rc, out) == (1, "line1\nline2\n"), f"got {(rc, out)!r}")
    rc, out = a.run("echo err >&2; cat")  # stdin is /dev/null
    expect((rc, out) == (0, "err\n"), f"got {(rc, out)!r}")
    long = "x" * 9000
    rc, out = a.run(f"v={long}; echo ${{#v}}")
    expect((rc, out) == (0, "9000\n"), f"long command: {(rc, out)!r}")
    try:
        a.run("check-fails", check=True)
        raise StepFailed("check=True did not raise")
    except GuestError:
        pass
    st.done()

    st.step("harness: write_file, timeout and resynchronisation")
    data = bytes(range(256)) * 40
    a.write_file("/tmp/blob", data, mode=0o600)
    rc, out = a.run("md5sum /tmp/blob; stat -c %a /tmp/blob")
    import hashlib
    expect(out.split() == [hashlib.md5(data).hexdigest(), "/tmp/blob",
                           "600"], f"write_file: {out!r}")
    t = time.monotonic()
    try:
        a.run("sleep 30", timeout=2)
        raise StepFailed("run() did not time out")
    except GuestTimeout:
        pass
    expect(time.monotonic() - t < 15, "timeout took too long")
    rc, out = a.run("echo alive")
    expect((rc, out) == (0, "alive\n"), f"after timeout: {(rc, out)!r}")
    st.done()

    st.step("harness: QMP set_link down stops the ping, up restores it")
    expect(a.qmp("query-status")["status"] == "running", "query-status")
    a.qmp("set_link", name="n0", up=False)
    a.wait_carrier("eth0", up=False)
    must_not_ping(a, "10.0.0.2")
    a.qmp("set_link", name="n0", up=True)
    a.wait_carrier("eth0")
    must_ping(a, "10.0.0.2")
    st.done()

    st.step("stop a and b: nothing left behind")
    a.stop()
    b.stop()
    check_gone((a, b))
    st.done()

    # Phase 2: c has only VLAN 20, with an address in VLAN 10's subnet.
    st.step("boot a2 (VLAN 10) and c (VLAN 20 only)")
    port = guestlib.free_tcp_port()
    a2 = Guest("a2", workdir, nics=[Nic.socket_listen(port)],
               ip="10.0.0.1/24", vlans={10: "10.0.10.1/24"})
    c = Guest("c", workdir, nics=[Nic.socket_connect(port)],
              ip="10.0.0.3/24", vlans=["20:10.0.10.3/24"])
    guests += [a2, c]
    with a2, c:
        a2.wait_ready()
        c.wait_ready()
        print(f"    booted in {a2.boot_seconds:.1f} s and "
              f"{c.boot_seconds:.1f} s")
        st.done()

        st.step("c reaches a2 untagged (the wire works)")
        must_ping(c, "10.0.0.1")
        st.done()

        st.step("c (VLAN 20 only) cannot ping a2's VLAN 10 address")
        rc, out = c.run("ip -o link")
        expect("eth0.20" in out and "eth0.10" not in out,
               f"c: links:\n{out}")
        must_not_ping(c, "10.0.10.1")
        must_not_ping(a2, "10.0.10.3")
        st.done()

        st.step("a2 adds VLAN 20 at run time: now c answers on it")
        a2.run("ip link add link eth0 name eth0.20 type vlan id 20 && "
               "ip link set eth0.20 up && "
               "ip addr add 10.0.20.1/24 dev eth0.20",
               check=True)
        c.run("ip addr add 10.0.20.3/24 dev eth0.20", check=True)
        must_ping(a2, "10.0.20.3")
        st.done()

    st.step("stop a2 and c via the with block: nothing left behind")
    check_gone((a2, c))
    st.done()


class TestPmd:
    """dpdk-testpmd forwarding between two vhost-user ports (io mode)."""

    def __init__(self, workdir, ifaces):
        self.workdir, self.ifaces = workdir, ifaces
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        argv = ["dpdk-testpmd", "-l", "0,1", "--no-huge", "-m", "1024",
                "--no-pci", "--file-prefix", f"vsguest{os.getpid()}"]
        for i, (path, client) in enumerate(self.ifaces):
            argv += ["--vdev", f"net_vhost{i},iface={path},queues=2,"
                     f"client={int(client)}"]
        argv += ["--", "--forward-mode=io", "--auto-start", "--rxq=2",
                 "--txq=2", "--nb-cores=1", "--total-num-mbufs=8192"]
        self.log = os.path.join(self.workdir, f"testpmd{self.n}.log")
        with open(self.log, "wb") as log:
            # Without --stats-period testpmd runs until a line on stdin.
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                         stdout=log, stderr=log,
                                         start_new_session=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdin.close()


_testpmd = None


def run_vhost_steps(st, workdir, guests):
    global _testpmd
    if not shutil.which("dpdk-testpmd"):
        print("--- vhost-user steps skipped: no dpdk-testpmd")
        return
    st.step("vhost-user: boot a (client) and b (server), 2 queues each, "
            "behind dpdk-testpmd")
    sa = os.path.join(workdir, "va.sock")
    sb = os.path.join(workdir, "vb.sock")
    a = Guest("va", workdir, nics=[Nic.vhost_user(sa, queues=2)], cpus=2,
              ip="10.0.0.1/24", vlans="10:10.0.10.1/24")
    # testpmd's io forwarding maps queue N of one port to queue N of the
    # other, so both guests need the same number of queue pairs.
    b = Guest("vb", workdir, nics=[Nic.vhost_user(sb, server=True,
                                                  queues=2)], cpus=2,
              ip="10.0.0.2/24", vlans="10:10.0.10.2/24")
    guests += [a, b]
    b.start()  # creates vb.sock; its CPU waits for testpmd to connect
    a.start()  # connects to va.sock, retrying until testpmd listens
    _testpmd = TestPmd(workdir, [(sa, False), (sb, True)])
    _testpmd.start()
    a.wait_ready(timeout=120)
    b.wait_ready(timeout=120)
    print(f"    booted in {a.boot_seconds:.1f} s and {b.boot_seconds:.1f} s")
    st.done()

    st.step("vhost-user: carrier, 2 queue pairs, pings through testpmd")
    for g in (a, b):
        rc, out = g.run("ls /sys/class/net/eth0/queues")
        expect(out.split() == ["rx-0", "rx-1", "tx-0", "tx-1"],
               f"{g.name}: queues: {out!r}")
        g.wait_carrier()
    must_ping(a, "10.0.0.2")
    must_ping(b, "10.0.10.1")
    st.done()

    st.step("vhost-user: restart testpmd; both guests reconnect")
    _testpmd.stop()
    a.wait_carrier(up=False)
    _testpmd.start()
    for g in (a, b):
        g.wait_carrier()
    must_ping(a, "10.0.0.2")
    must_ping(b, "10.0.10.1")
    st.done()

    st.step("vhost-user: stop; the server socket is removed")
    a.stop()
    b.stop()
    _testpmd.stop()
    check_gone((a, b))
    expect(not os.path.exists(sb), f"{sb} left behind")
    st.done()


if __name__ == "__main__":
    sys.exit(main())
