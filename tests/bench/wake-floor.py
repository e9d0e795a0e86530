#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The floor under event mode's first frame after idle, without the switch:
how long a thread asleep in epoll_wait on CPU 0 takes to run again after
another thread on CPU 1 writes its eventfd (a guest's kick is such a
write), after a silence.  Twice, interleaved: with CPU 0 idle (its vCPU
halts, as under a sleeping vswitchd), and with a SCHED_IDLE process
spinning on CPU 0 (the vCPU never halts, as under a polling thread or a
guest kernel with idle=poll; the spinner yields at once to the woken
thread).  The difference is what waking a halted vCPU costs on this host.

usage: wake-floor.py [GAP_S (1.0)] [REPEAT (10)]
prints, per case, p50 and max of the wake-up latency in microseconds.
"""

import os
import select
import sys
import time

GAP_S = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def sleeper(efd, out_w):
    """On CPU 0: wait on the eventfd, report when it ran again."""
    os.sched_setaffinity(0, {0})
    ep = select.epoll()
    ep.register(efd, select.EPOLLIN)
    while True:
        ep.poll()
        t1 = time.monotonic_ns()
        if os.eventfd_read(efd) > 1:
            os._exit(0)  # the parent's way of saying stop
        os.write(out_w, t1.to_bytes(8, "little"))


def spinner():
    os.sched_setaffinity(0, {0})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        pass


def measure(busy):
    efd = os.eventfd(0)
    r, w = os.pipe()
    kids = []
    pid = os.fork()
    if pid == 0:
        sleeper(efd, w)
    kids.append(pid)
    if busy:
        pid = os.fork()
        if pid == 0:
            spinner()
        kids.append(pid)
    lat = []
    for _ in range(REPEAT):
        time.sleep(GAP_S)
        t0 = time.monotonic_ns()
        os.eventfd_write(efd, 1)
        t1 = int.from_bytes(os.read(r, 8), "little")
        lat.append((t1 - t0) / 1000)
    os.eventfd_write(efd, 2)
    for k in kids[1:]:
        os.kill(k, 9)
    for k in kids:
        os.waitpid(k, 0)
    os.close(efd)
    os.close(r)
    os.close(w)
    lat.sort()
    return lat[len(lat) // 2], lat[-1]


def main():
    os.sched_setaffinity(0, {1})
    res = {"idle": [], "busy": []}
    for _ in range(2):
        for case in ("idle", "busy"):
            res[case].append(measure(case == "busy"))
    for case, runs in res.items():
        print(f"wake-floor: CPU 0 {case}: after {GAP_S} s of silence, "
              f"p50 / max of {REPEAT} (us), per run: "
              + "; ".join(f"{p:.0f} / {m:.0f}" for p, m in runs))


if __name__ == "__main__":
    main()
