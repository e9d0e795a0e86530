#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real guests on the switch: QEMU/TCG guests with virtio-net on
vhost-user ports of vswitchd, the Linux kernel's 802.1Q as the peer.

  g1  access 10, the switch listens (QEMU reconnects as a client)
  g2  access 10, QEMU listens, the switch connects (vhost-user-client),
      two queue pairs, MTU 9000 like g1
  g3  access 20, same IP subnet as g1/g2, plus a second subnet for VLAN 20
  g4  trunk 10,20 with eth0.10 and eth0.20: Linux 8021q
  host  a tap host port in a network namespace this test makes: a trunk
      with 8021q sub-interfaces where the host kernel has 8021q, else an
      access port of VLAN 10

Checks: VLAN 10 guests ping each other (and jumbo frames pass); the
VLAN 20 guest reaches neither though it shares their subnet; the trunk
guest reaches each VLAN through its sub-interface; the host port reaches
VLAN 10 only; frames g3 sends tagged or double-tagged on its access port
reach nobody and are counted; a VLAN outside the trunk list is dropped;
vswitchd killed and restarted while the guests run: connectivity comes
back without touching them.

usage: test_guests.py VSWITCHD VSWITCHCTL WORKDIR
"""

import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "guest"))
from guestlib import Guest, GuestError, Nic  # noqa: E402
from switchlib import (Checks, Netns, Switch, SwitchError,  # noqa: E402
                       parse_ping, pcap_frames)

VSWITCHD, VSWITCHCTL, WORKDIR = sys.argv[1:4]
check = Checks()


def pings(guest, addr, count=3, size=None, iface=None):
    """How many of 'count' pings from 'guest' to 'addr' came back."""
    opts = f"-c {count} -W 2"
    if size:
        opts += f" -s {size}"
    if iface:
        opts += f" -I {iface}"
    rc, out = guest.run(f"ping {opts} {addr}", timeout=count * 3 + 15)
    return parse_ping(out)[1]


def reaches(guest, addr, **kw):
    # One retry: the first ping may wait for ARP while learning settles.
    return pings(guest, addr, **kw) > 0 or pings(guest, addr, **kw) > 0


def host_8021q(ns):
    rc, _ = ns.sh("ip link add link lo name vstestq.10 type vlan id 10",
                  check=False)
    if rc == 0:
        ns.sh("ip link del vstestq.10", check=False)
    return rc == 0


def main():
    work = os.path.abspath(WORKDIR)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ns = Netns(f"vstest{os.getpid()}")
    sw = Switch(VSWITCHD, VSWITCHCTL, os.path.join(work, "sw"), netns=ns)
    guests = []
    try:
        sw.start()
        s = {n: os.path.join(work, f"{n}.sock") for n in
             ("g1", "g2", "g3", "g4")}
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", "g1", "--type", "vhost-user", "--socket",
               s["g1"], "--tag", "10", "--mtu", "9000")
        sw.ctl("add-port", "br0", "g2", "--type", "vhost-user-client",
               "--socket", s["g2"], "--tag", "10", "--mtu", "9000")
        sw.ctl("add-port", "br0", "g3", "--type", "vhost-user", "--socket",
               s["g3"], "--tag", "20")
        sw.ctl("add-port", "br0", "g4", "--type", "vhost-user", "--socket",
               s["g4"], "--vlan-mode", "trunk", "--trunks", "10,20")
        trunk_host = host_8021q(ns)
        if trunk_host:
            sw.ctl("add-port", "br0", "host", "--type", "host", "--ifname",
                   "vsh0", "--vlan-mode", "trunk", "--trunks", "10,20")
            ns.sh("ip link add link vsh0 name vsh0.10 type vlan id 10 && "
                  "ip addr add 10.0.10.100/24 dev vsh0.10 && "
                  "ip link set vsh0.10 up")
        else:
            print("note: this host kernel has no 8021q; the host port is an "
                  "access port of VLAN 10 and the trunk peer is guest g4",
                  flush=True)
            sw.ctl("add-port", "br0", "host", "--type", "host", "--ifname",
                   "vsh0", "--tag", "10")
            ns.sh("ip addr add 10.0.10.100/24 dev vsh0")

        g1 = Guest("g1", work, nics=[Nic.vhost_user(s["g1"])],
                   ip="10.0.10.1/24", mtu=9000)
        g2 = Guest("g2", work, nics=[Nic.vhost_user(s["g2"], server=True,
                                                     queues=2)],
                   ip="10.0.10.2/24", mtu=9000)
        g3 = Guest("g3", work, nics=[Nic.vhost_user(s["g3"])],
                   ip=["10.0.10.3/24", "10.0.20.3/24"])
        g4 = Guest("g4", work, nics=[Nic.vhost_user(s["g4"])],
                   vlans=["10:10.0.10.4/24", "20:10.0.20.4/24"])
        guests = [g1, g2, g3, g4]
        # g2's QEMU is the server: start it, and the switch's client
        # connects within its one-second retry.
        for g in guests:
            g.start()
        for g in guests:
            g.wait_ready(timeout=120)
        print("guests booted in " + ", ".join(
            f"{g.name} {g.boot_seconds:.1f} s" for g in guests), flush=True)

        check(reaches(g1, "10.0.10.2"), "g1 -> g2 in VLAN 10")
        check(reaches(g2, "10.0.10.1"), "g2 -> g1 in VLAN 10")
        check(pings(g1, "10.0.10.2", count=2, size=8000) == 2,
              "8028-byte frames g1 -> g2 (MTU 9000)")
        check(not reaches(g3, "10.0.10.1") and not reaches(g3, "10.0.10.2"),
              "g3 in VLAN 20 reaches neither VLAN 10 guest")
        check(not reaches(g1, "10.0.10.3"), "g1 does not reach g3")
        check(reaches(g4, "10.0.10.1"), "trunk guest g4 reaches g1 on eth0.10")
        check(reaches(g4, "10.0.20.3"), "trunk guest g4 reaches g3 on eth0.20")
        check(reaches(g3, "10.0.20.4"), "g3 reaches the trunk's VLAN 20 side")
        rc, _ = ns.sh("busybox ping -c 2 -W 2 10.0.10.1", check=False)
        check(rc == 0, "the host port reaches g1 in VLAN 10")
        rc, _ = ns.sh("busybox ping -c 2 -W 2 10.0.10.3", check=False)
        check(rc != 0, "the host port does not reach g3 in VLAN 20")

        # The attack: g3 on an access port of VLAN 20 sends frames tagged
        # with VLAN 10, and double-tagged 20/10, to VLAN 10's addresses.
        before = sw.port_stats("br0", "g3")
        g3.run("ip link add link eth0 name eth0.10 type vlan id 10 && "
               "ip addr add 10.0.11.3/24 dev eth0.10 && ip link set eth0.10 up "
               "&& ip link add link eth0 name eth0.20 type vlan id 20 && "
               "ip link set eth0.20 up && "
               "ip link add link eth0.20 name eth0.20.10 type vlan id 10 && "
               "ip addr add 10.0.12.3/24 dev eth0.20.10 && "
               "ip link set eth0.20.10 up", check=True)
        g1.run("ip addr add 10.0.11.1/24 dev eth0 && "
               "ip addr add 10.0.12.1/24 dev eth0", check=True)
        cap = os.path.join(sw.workdir, "g1-attack.pcap")  # --capture-dir
        sw.ctl("capture", "g1", cap)
        check(pings(g3, "10.0.11.1", count=3) == 0,
              "g3's frames tagged 10 do not reach g1")
        check(pings(g3, "10.0.12.1", count=3) == 0,
              "g3's double-tagged 20/10 frames do not reach g1")
        after = sw.port_stats("br0", "g3")
        dropped = (after["rx_drops"].get("tagged-on-access", 0)
                   - before["rx_drops"].get("tagged-on-access", 0))
        check(dropped >= 6, f"{dropped} tagged frames counted as "
              "tagged-on-access on g3")
        sw.ctl("capture-stop", "g1")
        g3_mac = bytes.fromhex(g3.mac(0).replace(":", ""))
        from_g3 = [f for f in pcap_frames(cap) if f[6:12] == g3_mac]
        check(not from_g3, f"no frame from g3 reached g1's port meanwhile "
              f"({len(from_g3)})")

        # A VLAN the trunk does not carry.
        before = sw.port_stats("br0", "g4")["rx_drops"].get("vlan-not-allowed", 0)
        g4.run("ip link add link eth0 name eth0.30 type vlan id 30 && "
               "ip addr add 10.0.30.4/24 dev eth0.30 && ip link set eth0.30 up",
               check=True)
        pings(g4, "10.0.30.9", count=2)
        after = sw.port_stats("br0", "g4")["rx_drops"].get("vlan-not-allowed", 0)
        check(after > before, "VLAN 30 on the trunk dropped as vlan-not-allowed")

        fdb = sw.ctl_json("fdb-show", "br0")["entries"]
        check(any(e["port"] == "g1" and e["vlan"] == 10 for e in fdb)
              and not any(e["port"] == "g3" and e["vlan"] == 10 for e in fdb),
              "g1 learned in VLAN 10; nothing of g3 in VLAN 10")

        # Restart the switch under the running guests.
        sw.stop(signal.SIGKILL)
        sw.start()
        deadline = time.monotonic() + 60
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = pings(g1, "10.0.10.2", count=1) == 1
        check(ok, "g1 -> g2 again after vswitchd was killed and restarted")
        check(reaches(g4, "10.0.20.3"), "and the trunk works again")
        check(not reaches(g3, "10.0.10.1"), "and VLAN 20 is still apart")
    except (GuestError, SwitchError) as e:
        check(False, str(e))
    finally:
        for g in guests:
            g.stop()
        sw.stop()
        ns.close()
    return check.status()


if __name__ == "__main__":
    sys.exit(main())
