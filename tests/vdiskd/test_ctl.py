#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdiskd's control socket without guests: bad input gets one clear error
and serves nothing half-way; the served set survives a restart; remove,
list and stats answer.  The vdisk tool on served images: serve, ps,
unserve; snapshot create/delete/list, resize and info go through the
daemon; an image some other process holds keeps the lock's error; images
named by their datastore ("NAME:rel", "[NAME] rel").

usage: test_ctl.py VDISKD VDISK WORKDIR      (exit 0 or 1)
"""

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vdlib import RpcError, Vdiskd, check  # noqa: E402


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
    # A private datastore registry for the tool and every daemon started
    # here: the host's is never read or changed.
    os.environ["VDISK_DATASTORES"] = os.path.join(work, "datastores.json")
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
        # volatile-map (allocating writes complete before their commit) is
        # an opt-in kept across restarts; the default is durable.
        d.call("disk-add", image=img, socket=s("v"), **{"volatile-map": True})
        check(d.disk(img)["volatile-map"] is True, "disk-add takes volatile-map")
    d.start()
    with d:
        check(d.disk(img)["volatile-map"] is True, "volatile-map survives a restart")
        d.call("disk-remove", disk=img)
        d.call("disk-add", image=img, socket=s("v"))
        check(d.disk(img)["volatile-map"] is False, "the default is a durable mapping")
        d.call("disk-remove", disk=img)
        test_cli(d, vdisk, img)
        test_served(d, vdisk, img)
        test_locked(d, vdisk, img)
        test_datastore(d, vdisk, work)
    return 0


def tool(d, vdisk):
    """Runs the vdisk tool with $VDISKD_CTL naming the daemon 'd'."""
    env = dict(os.environ, VDISKD_CTL=d.ctl)
    return lambda *a: subprocess.run([vdisk] + list(a), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)


def snapshot_names(listing):
    return [s["name"] for s in json.loads(listing)]


def test_served(d, vdisk, img):
    """snapshot create/delete/list, resize and info on an image vdiskd
    serves: through the daemon, the results visible to it and, after
    unserve, in the file."""
    run = tool(d, vdisk)
    sock = os.path.join(d.workdir, "served.sock")
    p = run("serve", img, "--socket", sock)
    check(p.returncode == 0, "serve the image again")
    size0 = d.disk(img)["size"]
    # Through a symbolic link: the daemon is matched by file, not by name.
    link = os.path.join(d.workdir, "link.vd")
    os.symlink(img, link)
    p = run("snapshot", "create", link, "before")
    check(p.returncode == 0, f"vdisk snapshot create on a served image: {p.stderr.strip()}")
    check("created by vdiskd" in p.stdout and "paused" in p.stdout,
          f"it says the daemon made it and the guest's pause: {p.stdout.strip()}")
    p = run("snapshot", "create", "-q", img, "second")
    check(p.returncode == 0 and p.stdout == "", "a second one, -q printing nothing")
    info = d.call("disk-info", disk=img)
    check([s["name"] for s in info["snapshots"]] == ["before", "second"],
          "the daemon's disk-info lists both snapshots")
    p = run("snapshot", "list", "--json", img)
    check(p.returncode == 0 and snapshot_names(p.stdout) == ["before", "second"],
          "vdisk snapshot list --json on a served image asks the daemon")
    p = run("snapshot", "list", img)
    check(p.returncode == 0 and "before" in p.stdout and "Snapshot list:" in p.stdout,
          "vdisk snapshot list (text) on a served image")
    p = run("snapshot", "delete", img, "second")
    check(p.returncode == 0, "vdisk snapshot delete on a served image")
    p = run("snapshot", "delete", img, "second")
    check(p.returncode == 1 and "second" in p.stderr and "vdisk:" in p.stderr,
          f"deleting it again: the daemon's sentence: {p.stderr.strip()}")
    p = run("snapshot", "revert", img, "before")
    check(p.returncode == 1 and "served by vdiskd" in p.stderr and "unserve" in p.stderr,
          f"revert on a served image refuses: {p.stderr.strip()}")
    p = run("resize", img, "+16M")
    check(p.returncode == 0 and "Image resized." in p.stdout,
          "vdisk resize +16M on a served image")
    check(d.disk(img)["size"] == size0 + (16 << 20), "the daemon serves the new size")
    p = run("resize", img, "--shrink", "8M")
    check(p.returncode == 1 and "grow" in p.stderr,
          f"shrinking a served disk refuses: {p.stderr.strip()}")
    p = run("info", img)
    want = f"served by: vdiskd (pid {d.pid}, control socket {d.ctl})"
    check(p.returncode == 0 and want in p.stdout and f"served on: {sock}" in p.stdout
          and f"image: {img}" in p.stdout and "before" in p.stdout,
          "vdisk info on a served image names vdiskd's pid and sockets")
    p = run("info", "--json", img)
    j = json.loads(p.stdout) if p.returncode == 0 else {}
    sb = j.get("served_by") or {}
    check(sb.get("pid") == d.pid and sb.get("control_socket") == d.ctl
          and sb.get("socket") == sock and j.get("virtual_size") == size0 + (16 << 20),
          "vdisk info --json: served_by and the size the daemon serves")
    other = os.path.join(d.workdir, "nobody.sock")
    p = subprocess.run([vdisk, "info", "--ctl", other, img], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    check(p.returncode == 1 and "in use by process" in p.stderr,
          f"info --ctl naming no daemon: the lock's error: {p.stderr.strip()}")
    p = run("unserve", img)
    check(p.returncode == 0, "unserve")
    p = run("snapshot", "list", "--json", img)
    check(p.returncode == 0 and snapshot_names(p.stdout) == ["before"],
          "offline, the image holds exactly the snapshot left")
    p = run("info", "--json", img)
    j = json.loads(p.stdout)
    check(j["virtual_size"] == size0 + (16 << 20) and j["served_by"] is None,
          "offline, the image has the new size and info says nobody serves it")
    # Read-only serving: the shared lock lets a reader open the file, and
    # info must still say who serves it; changes are refused.
    p = run("serve", "--read-only", img, "--socket", sock)
    check(p.returncode == 0, "serve read-only")
    p = run("info", img)
    check(p.returncode == 0 and "read-only" in p.stdout and want in p.stdout,
          "info on a read-only served image names the server")
    p = run("snapshot", "create", img, "ro")
    check(p.returncode == 1 and "read-only" in p.stderr,
          f"snapshot create on a read-only served disk: {p.stderr.strip()}")
    check(run("unserve", img).returncode == 0, "unserve")
    # Served under a name that is not the file's canonical path: found by
    # the file it is.
    d.call("disk-add", image=link, socket=sock)
    p = run("snapshot", "create", img, "via-link")
    check(p.returncode == 0 and "via-link" in
          [s["name"] for s in d.call("disk-info", disk=link)["snapshots"]],
          f"an image served as {link} is found by its file: {p.stderr.strip()}")
    d.call("disk-remove", disk=link)
    check(run("snapshot", "delete", img, "via-link").returncode == 0, "offline delete")
    os.unlink(link)


def test_locked(d, vdisk, img):
    """An image another process (not the daemon) holds: the daemon is asked,
    does not serve it, and the commands keep the lock's clear error."""
    run = tool(d, vdisk)
    holder = subprocess.Popen([vdisk, "io", img], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        holder.stdin.write("write 0 4k\n")
        holder.stdin.flush()
        line = holder.stdout.readline()
        check("wrote" in line, f"a vdisk io process holds the image: {line.strip()}")
        for args in (["snapshot", "create", img, "x"], ["resize", img, "+1M"],
                     ["info", img], ["snapshot", "list", img]):
            p = run(*args)
            check(p.returncode == 1 and f"in use by process {holder.pid}" in p.stderr,
                  f"vdisk {args[0]} {args[1]}: {p.stderr.strip()}")
    finally:
        holder.stdin.close()
        holder.wait(timeout=20)
    p = run("snapshot", "list", "--json", img)
    check(p.returncode == 0 and "x" not in snapshot_names(p.stdout),
          "nothing was changed")


def test_datastore(d, vdisk, work):
    """Images named by their datastore, through vdisk serve and disk-add."""
    run = tool(d, vdisk)
    check(run("datastore", "create", "tds", os.path.join(work, "ds")).returncode == 0,
          "a private datastore")
    check(run("create", "tds:sub/c.vd", "8M").returncode == 0, "an image in it")
    host = os.path.realpath(os.path.join(work, "ds", "sub", "c.vd"))
    sock = os.path.join(d.workdir, "ds.sock")
    p = run("serve", "tds:sub/c.vd", "--socket", sock)
    check(p.returncode == 0 and d.disk(host)["socket"] == sock,
          f"vdisk serve tds:sub/c.vd serves {host} {p.stderr.strip()}")
    p = run("snapshot", "create", "[tds] sub/c.vd", "s")
    check(p.returncode == 0 and [s["name"] for s in d.call("disk-info", disk=host)
                                 ["snapshots"]] == ["s"],
          "snapshot create '[tds] sub/c.vd' through the daemon")
    p = run("info", "tds:sub/c.vd")
    check(p.returncode == 0 and "image: tds:sub/c.vd" in p.stdout and "served by" in p.stdout,
          "info tds:sub/c.vd names the server")
    p = run("unserve", "tds:sub/c.vd")
    check(p.returncode == 0 and d.call("disk-list")["disks"] == [], "vdisk unserve tds:sub/c.vd")
    for spec in ("tds:sub/c.vd", "[tds] sub/c.vd"):
        r = d.call("disk-add", image=spec, socket=sock)
        check(r["image"] == host, f"disk-add image='{spec}' resolves to {r['image']}")
        d.call("disk-remove", disk=host)
    refused(d, "unknown datastore", "no datastore named nods", image="nods:x.vd", socket=sock)
    refused(d, "'..' in a datastore path", "..", image="tds:../x.vd", socket=sock)
    # A template (clones read it) is served read-only or not at all, by
    # the tool and by disk-add alike.
    check(run("create", "tds:t.vd", "8M").returncode == 0 and
          run("template", "tds:t.vd").returncode == 0, "a template in the datastore")
    p = run("serve", "tds:t.vd", "--socket", sock)
    check(p.returncode != 0 and "is template tds:t.vd" in p.stderr and
          d.call("disk-list")["disks"] == [],
          f"vdisk serve refuses a template read-write: {p.stderr.strip()}")
    refused(d, "a template read-write", "is template tds:t.vd", image="tds:t.vd", socket=sock)
    r = d.call("disk-add", image="tds:t.vd", socket=sock, **{"read-only": True})
    check(d.disk(r["image"])["read-only"] is True, "disk-add serves a template read-only")
    d.call("disk-remove", disk=r["image"])


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
