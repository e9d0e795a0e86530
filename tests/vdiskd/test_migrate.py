#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vdisk migrate against an image vdiskd serves (no guest): refused with one
line naming vdiskd and its pid and saying live migration is not there yet,
nothing left in the destination, the disk still served; once vdiskd lets
it go, the same command moves it.

usage: test_migrate.py VDISKD VDISK WORKDIR      (exit 0 or 1)
"""

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vdlib import Vdiskd, check  # noqa: E402


def main():
    vdiskd, vdisk, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, VDISK_DATASTORES=os.path.join(work, "registry.json"))

    def run(*args):
        return subprocess.run([vdisk, *args], env=env, capture_output=True, text=True)

    for name in ("a", "b"):
        r = run("datastore", "create", name, os.path.join(work, name))
        check(r.returncode == 0, f"datastore {name} created: {r.stderr.strip()}")
    r = run("create", "-q", "a:vm.vd", "16M")
    check(r.returncode == 0, "image created")
    img = os.path.join(work, "a", "vm.vd")
    d = Vdiskd(vdiskd, os.path.join(work, "d"))
    with d:
        sock = os.path.join(d.workdir, "vm.sock")
        d.call("disk-add", image=img, socket=sock)
        r = run("migrate", "a:vm.vd", "--to", "b")
        err = r.stderr.strip()
        check(r.returncode == 1, f"a served image is refused ({r.returncode})")
        check(err.count("\n") == 0 and err.startswith("vdisk: "), f"one line: {err}")
        check(f"vdiskd (pid {d.pid})" in err, "the refusal names vdiskd and its pid")
        check("live migration" in err, "the refusal says live migration is not there")
        with open(os.path.join(work, "b", ".vdisk-datastore.json")) as f:
            check(json.load(f)["entries"] == {}, "nothing left in the destination")
        check(any(x["socket"] == sock for x in d.call("disk-list")["disks"]),
              "the disk is still served")
        d.call("disk-remove", disk=img)
    r = run("migrate", "a:vm.vd", "--to", "b")
    check(r.returncode == 0, f"migrated once no longer served: {r.stderr.strip()}")
    check(not os.path.exists(img), "the source is gone")
    r = run("check", "b:vm.vd")
    check(r.returncode == 0, "the destination checks clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
