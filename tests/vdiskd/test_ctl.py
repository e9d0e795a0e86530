#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd's control socket without guests: bad input gets one clear error
and serves nothing half-way; the served set survives a restart; remove,
list and stats answer.

usage: test_ctl.py VDISKD VDISK WORKDIR      (exit 0 or 1)
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vdlib import RpcError, Vdiskd  # noqa: E402


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def refused(d, what, needle, **params):
    try:
        d.call("disk-add", **params)
    except RpcError as e:
        msg = str(e)
        check(needle in msg, f"{what}: refused with '{msg}'")
        check(all(x["socket"] != params.get("socket") for x in d.call("disk-list")["disks"]),
              f"{what}: nothing served")
        sock = params.get("socket")
        if sock and needle != "in use by another process" and "socket" not in what:
            check(not os.path.exists(sock), f"{what}: no socket left behind")
        return
    raise AssertionError(f"{what}: accepted")


def main():
    vdiskd, vdisk, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    img = os.path.join(work, "a.vd")
    subprocess.run([vdisk, "create", img, "16M"], check=True, stdout=subprocess.DEVNULL)
    d = Vdiskd(vdiskd, os.path.join(work, "d"))
    with d:
        s = lambda n: os.path.join(d.workdir, n + ".sock")  # noqa: E731
        refused(d, "unknown image", "No such file",
                image=os.path.join(work, "nope.vd"), socket=s("x"))
        refused(d, "relative image path", "absolute", image="a.vd", socket=s("x"))
        refused(d, "socket in a missing directory", "",
                image=img, socket=os.path.join(work, "nodir", "x.sock"))
        bad = os.path.join(work, "bad.vd")
        with open(img, "rb") as f, open(bad, "wb") as g:
            hdr = bytearray(f.read(4096))
            hdr[8:12] = b"\xff\xff\xff\xff"  # the version
            g.write(hdr)
        refused(d, "damaged image", "bad.vd", image=bad, socket=s("x"), format="vdisk")
        # A second vdiskd-like holder: the image served by another daemon.
        other = Vdiskd(vdiskd, os.path.join(work, "other")).start()
        try:
            other.call("disk-add", image=img, socket=os.path.join(other.workdir, "o.sock"))
            refused(d, "image locked by another process", "in use by process",
                    image=img, socket=s("x"))
            raw = os.path.join(work, "b.raw")
            with open(raw, "wb") as f:
                f.truncate(1 << 20)
            refused(d, "socket path in use", "in use", image=raw,
                    socket=os.path.join(other.workdir, "o.sock"))
        finally:
            other.stop()
        refused(d, "bad queue count", "queues", image=img, socket=s("x"), queues=99)
        refused(d, "unknown cache mode", "cache", image=img, socket=s("x"), cache="fast")
        refused(d, "serial too long", "serial", image=img, socket=s("x"), serial="x" * 21)

        d.call("disk-add", image=img, socket=s("a"), serial="S1", queues=2)
        check(os.path.exists(s("a")), "disk-add listens on the socket")
        refused(d, "image served twice", "already served", image=img, socket=s("b"))
        info = d.disk(img)
        check(info["size"] == 16 << 20 and info["queues"] == 2 and not info["connected"],
              f"disk-list: {info['state']}, {info['size']} bytes, {info['queues']} queues")
        st = d.call("disk-stats", disk=s("a"))
        check(st["ops"]["read"]["requests"] == 0, "disk-stats answers by socket path")
        r = d.call("snapshot-create", disk=img, name="s1")
        check("pause-us" in r, f"snapshot-create on an idle disk ({r['pause-us']} us)")
        d.call("snapshot-delete", disk=img, name="s1")
        try:
            d.call("snapshot-delete", disk=img, name="s1")
            raise AssertionError("deleting a missing snapshot was accepted")
        except RpcError as e:
            check(True, f"missing snapshot: '{e}'")
        d.call("disk-resize", disk=img, size=32 << 20)
        check(d.disk(img)["size"] == 32 << 20, "disk-resize grows the disk")
    d.start()
    with d:
        check(d.disk(img)["serial"] == "S1", "the served disk is restored after a restart")
        d.call("disk-remove", disk=img)
        check(d.call("disk-list")["disks"] == [] and not os.path.exists(s("a")),
              "disk-remove stops serving and removes the socket")
        try:
            d.call("disk-remove", disk=img)
            raise AssertionError("removing an unserved disk was accepted")
        except RpcError as e:
            check("not served" in str(e), f"removing it again: '{e}'")
    d.start()
    with d:
        check(d.call("disk-list")["disks"] == [], "the removal survives a restart")
        test_cli(d, vdisk, img)
    return 0


def test_cli(d, vdisk, img):
    """vdisk serve / ps / unserve, with the daemon found through
    $VDISKD_CTL (and --ctl)."""
    env = dict(os.environ, VDISKD_CTL=d.ctl)
    run = lambda *a: subprocess.run([vdisk] + list(a), env=env, stdout=subprocess.PIPE,  # noqa
                                    stderr=subprocess.PIPE, text=True)
    sock = os.path.join(d.workdir, "cli.sock")
    p = run("serve", img, "--socket", sock, "--queues", "2")
    check(p.returncode == 0 and os.path.exists(sock), "vdisk serve (via $VDISKD_CTL)")
    p = run("ps", "--ctl", d.ctl)
    check(p.returncode == 0 and img in p.stdout and "waiting" in p.stdout,
          "vdisk ps --ctl lists it")
    p = run("serve", img, "--socket", sock + "2")
    check(p.returncode == 1 and "already served" in p.stderr,
          f"serving it twice: {p.stderr.strip()}")
    p = run("unserve", img)
    check(p.returncode == 0 and not os.path.exists(sock), "vdisk unserve")
    p = run("unserve", img)
    check(p.returncode == 1 and "not served" in p.stderr, f"again: {p.stderr.strip()}")


if __name__ == "__main__":
    sys.exit(main())
