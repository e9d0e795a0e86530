#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Event mode's pacing never strands a frame: vswitchd in its default mode
spins while frames come, naps with guest kicks off, then sleeps on kicks
(docs/vswitch.md, "Event mode").  A frame that arrives at any moment of
those phases, or just as one turns into the next, must get through at
once, not at the next one-second housekeeping wake-up.

tests/bench's vsw-pace client (DPDK, two net_virtio_user ports) sends one
frame after each silence in a list spanning every phase and its borders,
plus seeded random ones, and waits for each on the other port with a
100 ms deadline, well under the 1 s after which a stranded frame would be
rescued by housekeeping.  Then a burst of load followed by silence: the
client sends 200,000 frames a second for a second (spinning and napping
by turns); the switch's counters must show every frame taken from the
client's ring and sent on (or counted as dropped at a full receive ring,
which a client starved of CPU on a loaded machine can cause).

usage: test_wakeup.py VSWITCHD VSWITCHCTL VSW_PACE WORKDIR
"""

import os
import random
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from switchlib import Checks, Switch, SwitchError, wait_for  # noqa: E402

VSWITCHD, VSWITCHCTL, VSW_PACE, WORKDIR = sys.argv[1:5]
check = Checks()

# Microseconds.  The datapath judges spinning in 100 us windows, naps 100 us
# at a time and sleeps after 1000 us without a frame: around each border,
# and past the 1 s housekeeping wake-up.
BORDER_GAPS = [0, 5, 30, 50, 99, 100, 101, 150, 200, 500, 950, 999, 1000,
               1001, 1050, 1200, 2000, 5000, 20000, 200000, 1100000]


def pace(socks, args, log):
    """Runs vsw-pace on the two sockets; returns (status, output)."""
    argv = ["taskset", "-c", "1", VSW_PACE, "-l", "1", "--no-pci",
            "--no-huge", "--no-shconf", "-m", "256",
            "--file-prefix", f"vswake-{os.getpid()}", "--log-level=warning",
            "--vdev", f"net_virtio_user0,path={socks[0]},queues=1,"
            "mac=02:00:00:00:00:00",
            "--vdev", f"net_virtio_user1,path={socks[1]},queues=1,"
            "mac=02:00:00:00:00:01", "--"] + args
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=240, env=env)
    with open(log, "w") as f:
        f.write(p.stdout)
    return p.returncode, p.stdout


def main():
    d = os.path.join(WORKDIR, "wakeup")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    socks = [os.path.join(d, f"w{i}.sock") for i in range(2)]
    seed = int(os.environ.get("WAKEUP_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    gaps = BORDER_GAPS + [rng.randrange(0, 3000) for _ in range(40)] + \
        [rng.randrange(3000, 300000) for _ in range(5)]
    print(f"random gaps from seed {seed} (WAKEUP_SEED={seed} repeats them)",
          flush=True)
    try:
        with Switch(VSWITCHD, VSWITCHCTL, d).start() as sw:
            check(sw.ctl_json("show")["mode"] == "event",
                  "vswitchd runs in event mode by default")
            sw.ctl("add-br", "br0")
            for i, sock in enumerate(socks):
                sw.ctl("add-port", "br0", f"w{i}", "--type", "vhost-user",
                       "--socket", sock, "--tag", "10")
            wait_for("both sockets", lambda: all(os.path.exists(s)
                                                 for s in socks))
            rc, out = pace(socks, ["--gaps", ",".join(map(str, gaps)),
                                   "--deadline-ms", "100"],
                           os.path.join(d, "gaps.log"))
            lost = [ln for ln in out.splitlines() if "LOST" in ln]
            check(rc == 0 and "gaps: sent" in out and not lost,
                  f"a frame after each of {len(gaps)} silences (0 us to "
                  f"1.1 s) arrived within 100 ms"
                  + (": " + "; ".join(lost[:5]) if lost else "")
                  + ("" if "gaps: sent" in out else ": " + out[-500:]))
            before = [sw.port_stats("br0", f"w{i}")["device"] for i in (0, 1)]
            rc, out = pace(socks, ["--rate", "200000", "--secs", "1",
                                   "--warmup", "0", "--deadline-ms", "500"],
                           os.path.join(d, "rate.log"))
            after = [sw.port_stats("br0", f"w{i}")["device"] for i in (0, 1)]
            line = next((ln for ln in out.splitlines()
                         if ln.startswith("rate:")), out[-300:])
            m = re.search(r" sent (\d+) received (\d+) ", line)
            sent, got = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
            taken = after[0]["rx_packets"] - before[0]["rx_packets"]
            given = after[1]["tx_packets"] - before[1]["tx_packets"]
            full = after[1]["tx_dropped"] - before[1]["tx_dropped"]
            # A frame the client's receive ring had no room for (the
            # client starved of CPU) is a counted drop, not a stranded one.
            check(taken == sent,
                  f"200,000 frames/s for 1 s, then silence: the switch took "
                  f"every frame from the ring ({sent} sent, {taken} taken)")
            check(given == got and given + full == sent,
                  f"and sent each on (the client received {got}, the switch "
                  f"sent {given}, {full} found the client's ring full)")
    except (SwitchError, subprocess.TimeoutExpired) as e:
        check(False, f"wakeup: {e}")
    return check.status()


if __name__ == "__main__":
    sys.exit(main())
