#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The switch part of the demo: vswitchd with three small QEMU guests on
vhost-user ports, two in VLAN 10 and one in VLAN 20, all in one IP subnet,
then who can ping whom, the MAC table and the counters.

usage: demo-switch.py BUILD_DIR WORK_DIR
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "switch"))
from guestlib import Guest, Nic  # noqa: E402
from switchlib import Switch, parse_ping  # noqa: E402

BOLD, PLAIN = "\033[1m", "\033[0m"


def show(sw, *args):
    print(f"\n{BOLD}$ vswitchctl {' '.join(args)}{PLAIN}", flush=True)
    print(sw.ctl(*args).stdout, end="", flush=True)


def main():
    build, work = sys.argv[1], os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sw = Switch(os.path.join(build, "tools", "vswitchd"),
                os.path.join(build, "tools", "vswitchctl"),
                os.path.join(work, "switch"))
    plan = [("vm1", 10, "10.0.0.1"), ("vm2", 10, "10.0.0.2"),
            ("vm3", 20, "10.0.0.3")]
    guests = []
    try:
        sw.start()
        sw.ctl("add-br", "br0")
        for name, vlan, ip in plan:
            sock = os.path.join(work, f"{name}.sock")
            sw.ctl("add-port", "br0", name, "--type", "vhost-user",
                   "--socket", sock, "--tag", str(vlan))
            guests.append(Guest(name, work, nics=[Nic.vhost_user(sock)],
                                ip=f"{ip}/24"))
        show(sw, "show")
        print(f"\n{BOLD}Booting three guests under QEMU (TCG)...{PLAIN}",
              flush=True)
        for g in guests:
            g.start()
        for g in guests:
            g.wait_ready(timeout=120)
        print(f"\n{BOLD}Who can ping whom (vm1, vm2: VLAN 10; "
              f"vm3: VLAN 20; all in 10.0.0.0/24){PLAIN}")
        print("from\\to " + "".join(f"{n:>8}" for n, _, _ in plan))
        for g, (name, _, _) in zip(guests, plan):
            row = f"{name:<8}"
            for other, _, ip in plan:
                if other == name:
                    row += f"{'-':>8}"
                    continue
                _, out = g.run(f"ping -c 2 -i 0.2 -W 2 {ip}", timeout=20)
                row += f"{'yes' if parse_ping(out)[1] else 'no':>8}"
            print(row, flush=True)
        show(sw, "fdb-show", "br0")
        show(sw, "stats", "br0", "vm3")
    finally:
        for g in guests:
            g.stop()
        sw.stop()
    print(f"\nSwitch demo done: logs in {work}.")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"demo-switch: {e}")
