#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vswitchd and vswitchctl without guests: control errors, persistence
across restarts and crashes, and forwarding checked with DPDK testpmd
(net_virtio_user) clients: flooding within a VLAN only, tags pushed on
trunks, multiqueue receive and transmit, reconnection of client ports, pcap capture,
and an idle datapath that sleeps.

usage: test_ctl.py VSWITCHD VSWITCHCTL WORKDIR
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from switchlib import (Checks, Netns, Switch, SwitchError, Testpmd,  # noqa: E402
                       pcap_frames, vlan_of, wait_for)

VSWITCHD, VSWITCHCTL, WORKDIR = sys.argv[1:4]
check = Checks()


def fresh_dir(name):
    path = os.path.join(WORKDIR, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def rpc(sw, method, params):
    """A raw JSON-RPC call, to see the daemon's own checks and codes."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sw.ctl_path)
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": 7, "method": method,
                               "params": params}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def test_errors(d):
    with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
        sw.ctl("add-br", "br0")
        sock = os.path.join(d, "a.sock")
        sw.ctl("add-port", "br0", "a", "--type", "vhost-user", "--socket", sock,
               "--tag", "10")

        p = sw.ctl("add-port", "br0", "b", "--type", "vhost-user", "--socket",
                   os.path.join(d, "b.sock"), "--tag", "5000", check=False)
        check(p.returncode == 2 and "bad VLAN id '5000'" in p.stderr,
              "vswitchctl refuses VLAN 5000 before asking")
        r = rpc(sw, "add-port", {"bridge": "br0", "port": "b",
                                 "type": "vhost-user", "socket": sock + "x",
                                 "tag": 0})
        check(r.get("error", {}).get("code") == -32602
              and "must be 1-4094" in r["error"]["message"],
              "the daemon refuses VLAN 0 as invalid params")
        r = rpc(sw, "add-port", {"bridge": "br0", "port": "b",
                                 "type": "vhost-user", "socket": sock + "x",
                                 "vlan_mode": "trunk", "trunks": "10,5000"})
        check("error" in r, "the daemon refuses a trunk list with 5000")

        p = sw.ctl("add-port", "nobr", "b", "--type", "host", check=False)
        check(p.returncode == 1 and "no bridge named nobr" in p.stderr,
              "unknown bridge: " + p.stderr.strip())
        p = sw.ctl("del-port", "nosuch", check=False)
        check(p.returncode == 1 and "no port named nosuch" in p.stderr,
              "unknown port: " + p.stderr.strip())
        p = sw.ctl("add-br", "br0", check=False)
        check(p.returncode == 1 and "already exists" in p.stderr,
              "duplicate bridge refused")
        p = sw.ctl("add-port", "br0", "a", "--type", "vhost-user", "--socket",
                   os.path.join(d, "c.sock"), check=False)
        check(p.returncode == 1 and "already exists" in p.stderr,
              "duplicate port name refused")
        p = sw.ctl("add-port", "br0", "b", "--type", "vhost-user", "--socket",
                   sock, check=False)
        check(p.returncode == 1 and "already used by another port" in p.stderr,
              "a socket path of another port refused")

        # A socket some other process listens on.
        live = os.path.join(d, "live.sock")
        holder = socket.socket(socket.AF_UNIX)
        holder.bind(live)
        holder.listen(1)
        p = sw.ctl("add-port", "br0", "b", "--type", "vhost-user", "--socket",
                   live, check=False)
        check(p.returncode == 1 and "in use by another process" in p.stderr,
              "a live socket path refused: " + p.stderr.strip())
        holder.close()
        # Now nobody listens: the stale file is replaced.
        p = sw.ctl("add-port", "br0", "b", "--type", "vhost-user", "--socket",
                   live, check=False)
        check(p.returncode == 0, "a stale socket file is replaced")
        # A regular file is never removed.
        plain = os.path.join(d, "plain")
        open(plain, "w").close()
        p = sw.ctl("add-port", "br0", "c", "--type", "vhost-user", "--socket",
                   plain, check=False)
        check(p.returncode == 1 and os.path.isfile(plain),
              "a non-socket file at the path is refused and kept")

        p = sw.ctl("del-port", "br1", "a", check=False)
        check(p.returncode != 0, "del-port names the wrong bridge: refused")
        p = sw.ctl("set-port", "a", "--vlan-mode", "trunk", "--trunks", "10-12")
        show = sw.ctl_json("show")
        a = [x for x in show["bridges"][0]["ports"] if x["name"] == "a"][0]
        check(a["vlan_mode"] == "trunk" and a["trunks"] == "10-12"
              and "tag" not in a, "set-port switches a port to a trunk")
        sw.ctl("fdb-add", "br0", "a", "11", "52:54:00:00:00:aa")
        fdb = sw.ctl_json("fdb-show", "br0")["entries"]
        check([(e["port"], e["vlan"], e["mac"], e["static"]) for e in fdb] ==
              [("a", 11, "52:54:00:00:00:aa", True)], "fdb-add makes a static entry")
        p = sw.ctl("fdb-add", "br0", "a", "13", "52:54:00:00:00:ab", check=False)
        check(p.returncode == 1, "a static entry in a VLAN the port lacks is refused")
        p = sw.ctl("fdb-add", "br0", "a", "11", "01:00:5e:00:00:01", check=False)
        check(p.returncode == 1, "a multicast static entry is refused")
        p = sw.ctl("--json", "fdb-flush", "br0")
        check(json.loads(p.stdout)["flushed"] == 0,
              "fdb-flush keeps static entries unless --static")
        sw.ctl("fdb-del", "br0", "11", "52:54:00:00:00:aa")
        p = sw.ctl("fdb-del", "br0", "11", "52:54:00:00:00:aa", check=False)
        check(p.returncode == 1 and "no entry" in p.stderr,
              "fdb-del of a missing entry: " + p.stderr.strip())
        r = rpc(sw, "no-such-method", {})
        check(r.get("error", {}).get("code") == -32601, "unknown method")
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sw.ctl_path)
            s.sendall(b"{not json\n")
            check(b"-32700" in s.recv(4096), "malformed JSON answered")
        check(sw.ctl("version").returncode == 0, "the daemon survived all that")


def show_config(sw):
    """show without the run-time fields."""
    out = sw.ctl_json("show")
    for br in out["bridges"]:
        for p in br["ports"]:
            p.pop("link", None)
            p.pop("capture", None)
    return out


def test_persistence(d):
    sw = Switch(VSWITCHD, VSWITCHCTL, d).start()
    try:
        sw.ctl("add-br", "br0", "--mac-aging", "120")
        sw.ctl("add-br", "br1")
        sw.ctl("add-port", "br0", "v1", "--type", "vhost-user", "--socket",
               os.path.join(d, "v1.sock"), "--tag", "10", "--queues", "2",
               "--mtu", "9000")
        sw.ctl("add-port", "br0", "v2", "--type", "vhost-user-client",
               "--socket", os.path.join(d, "v2.sock"), "--vlan-mode",
               "native-untagged", "--tag", "20", "--trunks", "10,30-40")
        sw.ctl("add-port", "br1", "v3", "--type", "vhost-user", "--socket",
               os.path.join(d, "v3.sock"), "--vlan-mode", "dot1q-tunnel",
               "--tag", "100")
        sw.ctl("set-port", "v1", "--mac-limit", "16")
        sw.ctl("fdb-add", "br0", "v1", "10", "52:54:00:00:00:10")
        before = show_config(sw)
        fdb_before = sw.ctl_json("fdb-show", "br0")["entries"]

        for sig in (signal.SIGTERM, signal.SIGKILL):
            sw.stop(sig)
            sw.start()
            check(show_config(sw) == before,
                  f"configuration restored after {signal.Signals(sig).name}")
            fdb = sw.ctl_json("fdb-show", "br0")["entries"]
            check([e for e in fdb if e["static"]] ==
                  [e for e in fdb_before if e["static"]],
                  f"static MAC restored after {signal.Signals(sig).name}")
        sw.ctl("del-br", "br1")
        sw.stop()
        with open(sw.db_path) as f:
            saved = json.load(f)
        check([b["bridge"] for b in saved["bridges"]] == ["br0"],
              "del-br is saved")

        with open(sw.db_path, "w") as f:
            f.write("{ this is not json")
        sw.start()
        check(sw.ctl_json("show")["bridges"] == [],
              "a damaged configuration: the daemon starts empty")
        with open(sw.db_path) as f:
            check(f.read() == "{ this is not json",
                  "and leaves the damaged file alone until a change")
    finally:
        sw.stop()


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def testpmd_tx_total(log):
    """Sum of TX-packets over the ports in testpmd's final statistics."""
    import re
    stats = log.split("Forward statistics for port")
    total = 0
    for part in stats[1:]:
        m = re.search(r"TX-packets:\s*(\d+)", part)
        if m:
            total += int(m.group(1))
    return total


def test_forwarding(d):
    socks = {n: os.path.join(d, f"{n}.sock") for n in ("s0", "s1", "s2", "s3")}
    with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", "p0", "--type", "vhost-user", "--socket",
               socks["s0"], "--tag", "10")
        sw.ctl("add-port", "br0", "p1", "--type", "vhost-user", "--socket",
               socks["s1"], "--tag", "10")
        sw.ctl("add-port", "br0", "p2", "--type", "vhost-user", "--socket",
               socks["s2"], "--tag", "20")
        sw.ctl("add-port", "br0", "p3", "--type", "vhost-user", "--socket",
               socks["s3"], "--vlan-mode", "trunk", "--trunks", "10,20")
        sink = Testpmd("sink", d, [socks["s1"], socks["s2"], socks["s3"]],
                       mode="rxonly").start()
        try:
            wait_for("the sink's three ports up", lambda: all(
                p["link"] == "up" for p in sw.ctl_json("show")["bridges"][0]
                ["ports"][1:]))
            cap1 = os.path.join(d, "p1.pcap")
            cap3 = os.path.join(d, "p3.pcap")
            sw.ctl("capture", "p1", cap1, "--count", "20")
            sw.ctl("capture", "p3", cap3, "--count", "20")
            # Unknown unicast from an access port of VLAN 10, on two queues.
            src = Testpmd("src", d, [socks["s0"]], mode="txonly",
                          queues=2, interactive=True,
                          args=["--rxq=2", "--txq=2"]).start()
            wait_for("the source's port up", lambda: sw.ctl_json("show")[
                "bridges"][0]["ports"][0]["link"] == "up")
            src.command("start")
            wait_for("frames through p0", lambda: sw.port_stats(
                "br0", "p0")["device"]["rx_packets"] > 5000, timeout=30)
            src.command("stop")
            sent = wait_for("testpmd's statistics", lambda: testpmd_tx_total(
                src.log()), timeout=10)
            wait_for("the switch to drain both queues", lambda: sw.port_stats(
                "br0", "p0")["device"]["rx_packets"] >= sent, timeout=5)
            src.stop()
            p0 = sw.port_stats("br0", "p0")
            check(p0["device"]["rx_packets"] == sent,
                  f"every frame testpmd sent on 2 queues was received "
                  f"({sent} sent, {p0['device']['rx_packets']} received)")
            p1 = sw.port_stats("br0", "p1")
            p2 = sw.port_stats("br0", "p2")
            p3 = sw.port_stats("br0", "p3")
            check(p1["tx_packets"] == sent and p3["tx_packets"] == sent,
                  "unknown unicast flooded to both VLAN 10 ports")
            check(p2["tx_packets"] == 0, "and not to the VLAN 20 port")
            check(p0["flooded"] == sent, "counted as flooded")
            check(p1["device"]["tx_packets"] + p1["device"]["tx_dropped"]
                  == sent, "p1's device saw every copy (sent or ring full)")
            f1 = pcap_frames(cap1)
            f3 = pcap_frames(cap3)
            check(len(f1) == 20 and all(vlan_of(f) is None for f in f1),
                  "the access port's capture: 20 untagged frames")
            check(len(f3) == 20 and all(vlan_of(f) == 10 for f in f3),
                  "the trunk's capture: 20 frames tagged 10")
            check(len(f3[0]) == len(f1[0]) + 4, "the tag adds 4 bytes")
            if shutil.which("tcpdump"):
                p = subprocess.run(["tcpdump", "-nn", "-e", "-r", cap3],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
                lines = p.stdout.splitlines()
                check(p.returncode == 0 and len(lines) == 20 and
                      all("vlan 10" in ln for ln in lines),
                      "tcpdump reads the capture: 20 frames in vlan 10")
            r = sw.ctl("capture-stop", "p1")
            check("20 packets" in r.stdout, "capture-stop reports the count")

            # Idle: the event-mode datapath sleeps.
            t0 = proc_cpu_seconds(sw.pid)
            time.sleep(3)
            used = proc_cpu_seconds(sw.pid) - t0
            check(used < 0.3, f"idle with guests connected: {used:.2f} s CPU "
                  "in 3 s")
        finally:
            sink.stop()


def testpmd_xstat(pmd, port, name, timeout=10):
    """Asks an interactive testpmd for 'show port xstats PORT' and returns
    the value of counter 'name' from its answer."""
    import re
    marker = len(pmd.log_text())
    pmd.command(f"show port xstats {port}")

    def value():
        m = re.search(rf"^\s*{name}:\s*(\d+)\s*$", pmd.log_text()[marker:],
                      re.MULTILINE)
        return m and (int(m.group(1)),)
    return wait_for(f"testpmd's {name}", value, timeout=timeout)[0]


def test_multiqueue_tx(d):
    """Frames to a multiqueue client leave on all the queues it enabled,
    spread by flow: a two-queue testpmd receives 256 frames of 256 flows
    (--txonly-multi-flow) on both queues; one that offers two queues but
    enables one gets every frame on that one, none lost to the other."""
    socks = {n: os.path.join(d, f"{n}.sock") for n in ("src", "mq")}
    with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", "src", "--type", "vhost-user", "--socket",
               socks["src"], "--tag", "10")
        sw.ctl("add-port", "br0", "mq", "--type", "vhost-user", "--socket",
               socks["mq"], "--tag", "10", "--queues", "2")

        def link(port):
            return lambda: next(p for p in sw.ctl_json("show")["bridges"][0]
                                ["ports"] if p["name"] == port)["link"] == "up"
        # io mode, after 'start tx_first 8': exactly 8 bursts of 32 txonly
        # frames, then forwarding of nothing (the source receives none),
        # so the counts are exact and no ring overflows.
        src = Testpmd("mqsrc", d, [socks["src"]], mode="io", interactive=True,
                      args=["--txonly-multi-flow"]).start()
        try:
            wait_for("the source's port up", link("src"))
            for rxq in (2, 1):
                sink = Testpmd(f"mq{rxq}", d, [socks["mq"]], mode="rxonly",
                               queues=2, interactive=True,
                               args=[f"--rxq={rxq}", f"--txq={rxq}"]).start()
                try:
                    wait_for("the sink's port up", link("mq"))
                    # The link is up before testpmd has given its receive
                    # rings buffers: wait for it to forward.
                    sink.command("start")
                    wait_for("the sink forwarding", lambda: "forwards packets on"
                             in sink.log_text())
                    before = sw.port_stats("br0", "mq")["device"]
                    src.command("start tx_first 8")
                    wait_for("256 frames to the sink", lambda: sw.port_stats(
                        "br0", "mq")["device"]["tx_packets"]
                        + sw.port_stats("br0", "mq")["device"]["tx_dropped"]
                        >= before["tx_packets"] + before["tx_dropped"] + 256,
                        timeout=30)
                    src.command("stop")
                    after = sw.port_stats("br0", "mq")["device"]
                    sent = after["tx_packets"] - before["tx_packets"]
                    lost = after["tx_dropped"] - before["tx_dropped"]
                    q0 = testpmd_xstat(sink, 0, "rx_q0_good_packets")
                    if rxq == 2:
                        q1 = testpmd_xstat(sink, 0, "rx_q1_good_packets")
                        check(q0 > 0 and q1 > 0 and q0 + q1 == sent == 256,
                              f"two queues enabled: both used ({q0} and {q1} "
                              f"of {sent} sent, {lost} dropped)")
                        check(min(q0, q1) >= 256 // 4,
                              "and neither starved by 256 flows")
                    else:
                        check(q0 == sent == 256 and lost == 0,
                              f"one queue of two enabled: all on it ({q0} of "
                              f"{sent} sent, {lost} dropped)")
                finally:
                    sink.stop()
                wait_for("the sink gone", lambda: not link("mq")())
        finally:
            src.stop()


def test_reconnect(d):
    sock = os.path.join(d, "cl.sock")
    with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", "c0", "--type", "vhost-user-client",
               "--socket", sock, "--tag", "10")
        # testpmd as the vhost-user server, as QEMU with server=on.
        with Testpmd("srv", d, [sock], mode="txonly", server=True):
            def link():
                p = sw.ctl_json("show")["bridges"][0]["ports"][0]
                return p["link"] == "up"
            wait_for("the client port to connect", link, timeout=30)
            sw.stop(signal.SIGKILL)
            sw.start()
            wait_for("the client port to reconnect after a crash", link,
                     timeout=30)
            wait_for("frames after reconnecting", lambda: sw.port_stats(
                "br0", "c0")["rx_packets"] > 100, timeout=30)
            check(True, "a killed vswitchd reconnects to a running server")


def test_poll_mode(d):
    """--poll: the datapath spins on its pinned CPU and forwards the same."""
    socks = [os.path.join(d, f"q{i}.sock") for i in range(2)]
    with Switch(VSWITCHD, VSWITCHCTL, d,
                args=["--poll", "--poll-cpu", "0"]).start() as sw:
        check(sw.ctl_json("show")["mode"] == "poll", "show says poll mode")
        sw.ctl("add-br", "br0")
        for i, sock in enumerate(socks):
            sw.ctl("add-port", "br0", f"q{i}", "--type", "vhost-user",
                   "--socket", sock, "--tag", "7")
        with Testpmd("poll", d, socks, mode="txonly"):
            wait_for("frames both ways", lambda: all(
                sw.port_stats("br0", f"q{i}")["tx_packets"] > 1000
                for i in range(2)), timeout=30)
        q0 = sw.port_stats("br0", "q0")
        q1 = sw.port_stats("br0", "q1")
        check(q0["rx_packets"] == q1["tx_packets"]
              and q1["rx_packets"] == q0["tx_packets"],
              "every frame received on one port was sent on the other")


def test_host_and_uplink(d):
    """A host port (tap) and an uplink (af_packet on a veth end) in one
    VLAN: the namespace the switch runs in pings another namespace through
    the switch, in event mode, so both wake-up paths are exercised."""
    pid = os.getpid()
    with Netns(f"vsA{pid}") as a, Netns(f"vsB{pid}") as b:
        a.sh(f"ip link add vup0 type veth peer name vup1 && "
             f"ip link set vup1 netns {b.name} && ip link set vup0 up")
        b.sh("ip link set vup1 up && ip addr add 10.0.10.101/24 dev vup1")
        with Switch(VSWITCHD, VSWITCHCTL, d, netns=a).start() as sw:
            sw.ctl("add-br", "br0")
            sw.ctl("add-port", "br0", "h0", "--type", "host", "--ifname",
                   "vsh0", "--tag", "10")
            sw.ctl("add-port", "br0", "up0", "--type", "uplink", "--ifname",
                   "vup0", "--tag", "10")
            a.sh("ip addr add 10.0.10.100/24 dev vsh0")
            rc, out = a.sh("busybox ping -c 3 -W 2 10.0.10.101", check=False)
            check(rc == 0, "host port -> uplink -> other namespace: "
                  + out.strip().splitlines()[-1] if out.strip() else "")
            h0 = sw.port_stats("br0", "h0")
            up = sw.port_stats("br0", "up0")
            check(h0["rx_packets"] >= 3 and up["rx_packets"] >= 3,
                  "both ports counted the exchange")
            sw.ctl("set-port", "up0", "--tag", "20")
            rc, _ = a.sh("ip neigh flush all && "
                         "busybox ping -c 2 -W 1 10.0.10.101", check=False)
            check(rc != 0, "the uplink moved to VLAN 20: no longer reached")
            p = sw.ctl("add-port", "br0", "up2", "--type", "uplink",
                       "--ifname", "lo", check=False)
            check(p.returncode == 1 and "loopback" in p.stderr,
                  "an uplink on loopback is refused")
            p = sw.ctl("add-port", "br0", "up3", "--type", "uplink",
                       "--ifname", "vsh0", check=False)
            check(p.returncode == 1 and "already is port h0" in p.stderr,
                  "an uplink on a host port's own tap is refused")
            p = sw.ctl("add-port", "br0", "up1", "--type", "uplink",
                       "--ifname", "nosuchif0", check=False)
            check(p.returncode == 1 and "no interface named" in p.stderr,
                  "an uplink onto a missing interface is refused")


def raw_lines(sw, text, n_lines, timeout=5):
    """Sends raw bytes on a new control connection and reads n_lines."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sw.ctl_path)
        s.sendall(text.encode())
        buf = b""
        while buf.count(b"\n") < n_lines:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode().splitlines()


def test_hardening(d):
    """What a local attacker or a careless client can no longer do."""
    db = os.path.join(d, "conf.json")
    with open(db + ".tmp", "w") as f:
        f.write("{half a save")
    with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
        check(not os.path.exists(db + ".tmp"),
              "a temporary file a crash left is removed at start")
        check(os.stat(sw.ctl_path).st_mode & 0o777 == 0o660,
              "the control socket has mode 0660")
        sw.ctl("add-br", "br0")
        sock = os.path.join(d, "v.sock")
        sw.ctl("add-port", "br0", "v", "--type", "vhost-user", "--socket", sock)
        check(os.stat(sock).st_mode & 0o777 == 0o660,
              "a vhost-user socket has mode 0660 whatever the umask")

        # Embedded NUL characters are refused, not cut.
        r = rpc(sw, "add-br", {"bridge": "a\u0000../../etc"})
        check(r.get("error", {}).get("code") == -32600
              and "a" not in [b["name"] for b in sw.ctl_json("show")["bridges"]],
              "add-br with a NUL in the name is refused and makes no bridge")
        sw.ctl("add-br", "a")
        r = rpc(sw, "del-br", {"bridge": "a\u0000zzz"})
        check("error" in r and "a" in [b["name"] for b in sw.ctl_json("show")["bridges"]],
              "del-br with a NUL in the name deletes nothing")
        r = rpc(sw, "add-port", {"bridge": "a", "port": "n", "type": "vhost-user",
                                 "socket": os.path.join(d, "x.sock\u0000/etc/passwd")})
        check("error" in r and not os.path.exists(os.path.join(d, "x.sock")),
              "a socket path with a NUL is refused")
        r = rpc(sw, "add-port", {"bridge": "a", "port": "n", "type": "vhost-user",
                                 "socket": "rel.sock"})
        check(r.get("error", {}).get("code") == -32602,
              "a relative socket path is refused")

        # Captures: only new files, only in the capture directory.
        outside = os.path.join(WORKDIR, "outside.pcap")
        r = rpc(sw, "capture", {"port": "v", "file": outside})
        check(r.get("error", {}).get("data", {}).get("name") == "EPERM"
              and not os.path.exists(outside),
              "a capture outside --capture-dir is refused")
        victim = os.path.join(d, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        r = rpc(sw, "capture", {"port": "v", "file": victim})
        check("error" in r and open(victim).read() == "precious\n",
              "a capture onto an existing file is refused and the file kept")
        link = os.path.join(d, "link.pcap")
        os.symlink(victim, link)
        r = rpc(sw, "capture", {"port": "v", "file": link})
        check("error" in r and open(victim).read() == "precious\n",
              "a capture through a symlink is refused")
        r = rpc(sw, "capture", {"port": "v", "file": "rel.pcap", "count": 1})
        check("result" in r and os.path.exists(os.path.join(d, "rel.pcap")),
              "a relative capture name lands in the capture directory")
        rpc(sw, "capture-stop", {"port": "v"})

        # JSON-RPC 2.0 as specified.
        big = "123456789012345678901234567890"
        lines = raw_lines(sw, '{"jsonrpc":"2.0","method":"version"}\n'
                          '{"jsonrpc":"2.0","method":"version","id":%s}\n' % big, 1)
        check(len(lines) == 1 and ('"id":%s' % big) in lines[0],
              "a notification is not answered; a long numeric id comes back exactly")
        lines = raw_lines(sw, '{"jsonrpc":"1.0","method":"version","id":1}\n'
                          '{"jsonrpc":"2.0","method":"version","id":2} junk\n', 2)
        check(len(lines) == 2 and '"code":-32600' in lines[0] and '"code":-32700' in lines[1],
              "jsonrpc 1.0 and trailing garbage are refused")
        lines = raw_lines(sw, '[{"jsonrpc":"2.0","method":"version","id":1},'
                          '{"jsonrpc":"2.0","method":"nope","id":2}]\n', 1)
        check(len(lines) == 1 and json.loads(lines[0])[1]["error"]["code"] == -32601,
              "a batch gets an array of answers")

        # A client that pipelines 20,000 requests and never reads.
        hog = socket.socket(socket.AF_UNIX)
        hog.connect(sw.ctl_path)
        hog.setblocking(False)
        req = b'{"jsonrpc":"2.0","method":"version","id":1}\n'
        sent, stuck_since = 0, None
        while sent < 20000:
            try:
                hog.send(req)
                sent += 1
                stuck_since = None
            except BlockingIOError:
                # The daemon stops reading a client whose answers pile
                # up unread: that is the point.
                stuck_since = stuck_since or time.monotonic()
                if time.monotonic() - stuck_since > 1:
                    break
                time.sleep(0.001)
        t0 = time.monotonic()
        p = sw.ctl("--timeout", "5", "version", check=False)
        check(p.returncode == 0,
              f"version answered beside a hog that sent {sent} requests "
              f"({time.monotonic() - t0:.2f} s)")
        hog.close()

        # Idle connections cannot lock others out.
        idle = []
        for _ in range(40):
            c = socket.socket(socket.AF_UNIX)
            c.connect(sw.ctl_path)
            idle.append(c)
        p = sw.ctl("version", check=False)
        check(p.returncode == 1 and "busy" in p.stderr,
              "with every slot just taken, the CLI says the daemon is busy: "
              + p.stderr.strip())
        time.sleep(1.2)
        p = sw.ctl("show", check=False)
        check(p.returncode == 0,
              "once they idle, 40 open connections do not lock out show")
        for c in idle:
            c.close()


def main():
    os.makedirs(WORKDIR, exist_ok=True)
    # SWITCH_CTL_ONLY=name[,name]: run only those parts, while working on one.
    only = [n for n in os.environ.get("SWITCH_CTL_ONLY", "").split(",") if n]
    for name, fn in (("errors", test_errors),
                     ("hardening", test_hardening),
                     ("persistence", test_persistence),
                     ("forwarding", test_forwarding),
                     ("multiqueue-tx", test_multiqueue_tx),
                     ("reconnect", test_reconnect),
                     ("poll-mode", test_poll_mode),
                     ("host-and-uplink", test_host_and_uplink)):
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        try:
            fn(fresh_dir(name))
        except SwitchError as e:
            check(False, f"{name}: {e}")
    return check.status()


if __name__ == "__main__":
    sys.exit(main())
