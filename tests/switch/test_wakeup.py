#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Event mode's pacing never strands a frame: vswitchd in its default mode
spins while frames come, naps with guest kicks off (naps that grow while
they gather little and start over short after a full burst), then sleeps
on kicks (docs/vswitch.md, "Event mode").  A frame that arrives at any
moment of those phases, or just as one turns into the next, must get
through at once, not at the next one-second housekeeping wake-up.

tests/bench's vsw-pace client (DPDK, two net_virtio_user ports) sends one
frame after each silence in a list spanning every phase and its borders,
plus seeded random ones, and waits for each on the other port with a
100 ms deadline, well under the 1 s after which a stranded frame would be
rescued by housekeeping.  Sequences of short gaps then grow the naps to
their longest while frames keep coming, and bursts land in a long nap:
between one and two receive bursts (taken in two rounds, the nap stays
long), two bursts or more (the naps start over at the shortest); and a
full burst lands in a shortest one (the thread goes back to spinning).  Then a light load: 20,000 frames a second for a second, every
frame back within 100 ms while the naps stay long.  Then a burst of load
followed by silence: the client sends 200,000 frames a second for a
second (spinning and napping by turns); the switch's counters must show
every frame taken from the client's ring and sent on (or counted as
dropped at a full receive ring, which a client starved of CPU on a
loaded machine can cause).

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

# Microseconds (vswitch/datapath.c): the datapath judges spinning in
# windows of NAP_MIN, naps NAP_MIN first, twice as long after each nap
# that gathered under a burst (32 frames) up to NAP_MAX, and sleeps once
# IDLE passed without a frame, at the end of the nap that crosses it.
# After a frame, the naps end at 200, 400, 800, 1200 us (the last the
# sleep): around each border, and past the 1 s housekeeping wake-up.
NAP_MIN, NAP_MAX, IDLE = 100, 400, 1000


def nap_ends():
    """When, after a frame, the spinning window and each nap end, the last
    being when the switch goes to sleep."""
    t, nap, ends = NAP_MIN, NAP_MIN, [NAP_MIN]
    while t < IDLE:
        t += nap
        ends.append(t)
        nap = min(2 * nap, NAP_MAX)
    return ends


BORDER_GAPS = sorted({0, 5, 30, 50, 150, 300, 600, 950, 1050, 1300, 1600,
                      2000, 5000, 20000, 200000, 1100000, IDLE - 1, IDLE,
                      IDLE + 1} |
                     {e + d for e in nap_ends() for d in (-1, 0, 1)})
# "USxN": N frames back to back after US of silence.  Frames 300 us apart
# grow the naps to NAP_MAX (each gathers one frame); then two bursts land
# in a long nap (taken in two rounds and a third; the naps start over at
# NAP_MIN), a frame follows in the shortest nap, a full burst in the
# shortest nap (back to spinning); after the naps grew again, between one
# and two bursts in a long nap (it stays long), more than two bursts, and
# bursts just as the switch goes to sleep and while it sleeps.
GROWTH_GAPS = (["300"] * 6 + ["350x64", "50", "60x32", "20"] + ["300"] * 6
               + ["200x40", "700x33", "300x100", "1150x64", "1300x100"])


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
    gaps = [str(g) for g in BORDER_GAPS] + GROWTH_GAPS + \
        [str(rng.randrange(0, 3000)) for _ in range(40)] + \
        [f"{rng.randrange(0, 1500)}x{rng.choice([2, 16, 31, 32, 33, 63, 64, 65, 100])}"
         for _ in range(10)] + \
        [str(rng.randrange(3000, 300000)) for _ in range(5)]
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
            rc, out = pace(socks, ["--gaps", ",".join(gaps),
                                   "--deadline-ms", "100"],
                           os.path.join(d, "gaps.log"))
            lost = [ln for ln in out.splitlines() if "LOST" in ln]
            check(rc == 0 and "gaps: sent" in out and not lost,
                  f"the frames after each of {len(gaps)} silences (0 us to "
                  f"1.1 s; one frame, or a burst of up to 100) arrived "
                  f"within 100 ms"
                  + (": " + "; ".join(lost[:5]) if lost else "")
                  + ("" if "gaps: sent" in out else ": " + out[-500:]))
            rc, out = pace(socks, ["--rate", "20000", "--secs", "1",
                                   "--warmup", "0", "--deadline-ms", "100"],
                           os.path.join(d, "light.log"))
            line = next((ln for ln in out.splitlines()
                         if ln.startswith("rate:")), out[-300:])
            check(rc == 0,
                  f"20,000 frames/s for 1 s (naps at their longest): every "
                  f"frame back within 100 ms ({line})")
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
