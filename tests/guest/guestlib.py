#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot small Linux guests under QEMU TCG for the integration tests.

A guest is the host's distro kernel (the newest /boot/vmlinuz-*) with a
busybox-static initramfs built here, booted with ``-accel tcg`` (nested KVM
hangs while booting Linux on this kind of machine) and RAM from a shared
memfd, so vhost-user back ends (vswitchd, vdiskd) can map it.  The guest
needs no disk.  Its /init loads the virtio and 802.1Q modules, configures
eth0 (and more NICs) from ``vs.*`` kernel parameters, prints a ready line
and then runs a root shell on the serial console, which the harness drives
through QEMU's stdio.

Typical use::

    from guestlib import Guest, Nic

    with Guest("a", workdir, nics=[Nic.vhost_user(sock)],
               ip="10.0.0.1/24", vlans=["10:10.0.10.1/24"]) as a:
        a.wait_ready()
        rc, out = a.run("ping -c 1 -W 2 10.0.0.2")

The ``with`` block starts the guest if needed and always stops it; guests
that are still running when Python exits are stopped by an atexit hook, and
QEMU gets SIGKILL from the kernel if this process dies without running it
(PR_SET_PDEATHSIG).  Everything the console printed goes to
``guest.console_log``; QEMU's own stderr goes to ``guest.qemu_log``.

Errors: problems raise GuestError (GuestTimeout, also a TimeoutError, when
something took too long); the exception text carries the tail of the
console and of QEMU's stderr.  Guest.run() returns the command's exit status
and does not raise for a non-zero one unless asked to (check=True).

Environment overrides: VS_QEMU (QEMU binary), VS_GUEST_KERNEL (a vmlinuz;
its modules are looked up in /lib/modules/<version from its file name>, or
VS_GUEST_MODULES), VS_BUSYBOX (a static busybox).

Python 3 standard library only.
"""

import atexit
import base64
import ctypes
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import weakref

__all__ = [
    "Guest", "Nic", "Disk", "GuestError", "GuestTimeout",
    "build_initramfs", "find_kernel", "free_tcp_port", "MODULES",
]

QEMU = os.environ.get("VS_QEMU", "qemu-system-x86_64")
BUSYBOX = os.environ.get("VS_BUSYBOX", "/bin/busybox")

# Loaded by /init in this order.  Modules built into the kernel (or absent)
# are skipped when the initramfs is built; build_initramfs() records which.
MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net",
    "llc", "stp", "garp", "mrp", "8021q",
]

READY = "VSGUEST-READY"
# Bump when the initramfs layout changes in a way the cache key cannot see.
_FORMAT = 1
_UNIX_PATH_MAX = 107


class GuestError(Exception):
    """A guest failed to build, boot, answer or stop as expected."""


class GuestTimeout(GuestError, TimeoutError):
    """A guest did not become ready, or a command did not finish, in time."""


# --------------------------------------------------------------------------
# Kernel and initramfs

def _version_key(s):
    """Sort key for versions like 6.1.0-56-amd64: numbers compare as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p)
            for p in re.findall(r"\d+|[^\d]+", s)]


def find_kernel():
    """Return (vmlinuz_path, version, modules_dir) of the kernel to boot.

    The newest /boot/vmlinuz-* by version (not `uname -r`: the host may run
    another kernel, e.g. in a container), or VS_GUEST_KERNEL.  The modules
    directory is /lib/modules/<version>, or VS_GUEST_MODULES.
    """
    path = os.environ.get("VS_GUEST_KERNEL")
    if path:
        if not os.path.isfile(path):
            raise GuestError(f"VS_GUEST_KERNEL={path}: no such file")
    else:
        names = [n for n in os.listdir("/boot")
                 if n.startswith("vmlinuz-") and
                 os.path.isfile(os.path.join("/boot", n))]
        if not names:
            raise GuestError("no /boot/vmlinuz-*: install linux-image-amd64")
        names.sort(key=lambda n: _version_key(n[len("vmlinuz-"):]))
        path = os.path.join("/boot", names[-1])
    base = os.path.basename(path)
    version = base[len("vmlinuz-"):] if base.startswith("vmlinuz-") else ""
    moddir = os.environ.get("VS_GUEST_MODULES") or \
        os.path.join("/lib/modules", version)
    if not os.access(path, os.R_OK):
        raise GuestError(f"{path} is not readable")
    return path, version, moddir


def _norm_mod(n):
    return n.replace("-", "_")


def _module_table(moddir):
    """(files, deps, builtin) of a kernel's module tree: files maps each
    module name to its .ko path and deps to the names it needs (all of
    them, as modules.dep lists them), from modules.dep; builtin is the set
    of names in modules.builtin."""
    files, deps = {}, {}

    def name_of(rel):
        return _norm_mod(re.sub(r"\.ko(\.(xz|gz|zst))?$", "",
                                os.path.basename(rel)))

    try:
        with open(os.path.join(moddir, "modules.dep")) as f:
            for line in f:
                rel, _, need = line.partition(":")
                rel = rel.strip()
                if not rel:
                    continue
                files[name_of(rel)] = os.path.join(moddir, rel)
                deps[name_of(rel)] = [name_of(d) for d in need.split()]
    except FileNotFoundError:
        raise GuestError(f"{moddir}/modules.dep missing: no modules for "
                         "this kernel")
    builtin = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            for line in f:
                builtin.add(name_of(line.strip()))
    except FileNotFoundError:
        pass
    return files, deps, builtin


def _find_modules(moddir, extra=()):
    """Map each module to load, in load order, to a .ko path, "builtin"
    or None.

    MODULES first (absent ones are tolerated: None), then each name in
    `extra` preceded by the modules it depends on according to
    modules.dep, so that insmod in this order finds every symbol.  An
    extra module that is neither a file nor built in raises GuestError:
    the caller asked for it.  Soft dependencies (modinfo's softdep, e.g.
    ext4's "pre: crc32c") are not followed; name them in `extra`.
    """
    files, deps, builtin = _module_table(moddir)
    found = {}
    for m in MODULES:
        if _norm_mod(m) in files and os.path.exists(files[_norm_mod(m)]):
            found[m] = files[_norm_mod(m)]
        elif _norm_mod(m) in builtin:
            found[m] = "builtin"
        else:
            found[m] = None
    loaded = {_norm_mod(m) for m in found}

    def add(name, chain):
        n = _norm_mod(name)
        if n in loaded:
            return
        if n in chain:
            raise GuestError(f"module dependency loop: {chain + [n]}")
        if n in files and os.path.exists(files[n]):
            # modules.dep lists every module n needs, directly or not;
            # adding each one's own dependencies first orders them.
            for d in deps.get(n, []):
                add(d, chain + [n])
            found[n] = files[n]
        elif n in builtin:
            found[n] = "builtin"
        else:
            raise GuestError(f"module {name} not found in {moddir}")
        loaded.add(n)

    for m in extra:
        add(m, [])
    return found


def _shared_libs(binary):
    """The files the dynamic loader maps for `binary`: (path it is looked
    up as, host file) pairs, the loader itself included, from ldd.  Empty
    for a static binary."""
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        if "not a dynamic executable" in r.stdout:
            return []
        raise GuestError(f"ldd {binary} failed: {r.stdout.strip()}")
    libs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise GuestError(f"{binary}: library {line.split()[0]} not found")
        m = re.match(r"(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            libs.append((m.group(1), os.path.realpath(m.group(1))))
    return libs


def _find_binaries(binaries):
    """Map each path to put in the initramfs to the host file behind it,
    for `binaries` (absolute paths or names looked up in PATH, /usr/sbin
    and /sbin) and their shared libraries; the binaries keep the path
    they have on the host."""
    out = {}
    for b in binaries:
        path = b if os.path.isabs(b) else shutil.which(
            b, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if not path or not os.path.isfile(path):
            raise GuestError(f"binary {b} not found on the host")
        out[os.path.abspath(path)] = os.path.realpath(path)
        for where, real in _shared_libs(path):
            out[where] = real
    return out


def _read_module(path):
    """The module's ELF bytes; busybox insmod cannot read compressed ones."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        if not shutil.which("zstd"):
            raise GuestError(f"{path}: need zstd to decompress it")
        return subprocess.run(["zstd", "-dc", path], check=True,
                              stdout=subprocess.PIPE).stdout
    return data


class _Cpio:
    """Writer for the "newc" cpio format the kernel unpacks as initramfs."""

    def __init__(self, f):
        self.f = f
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0,
                  len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + name_b)
        self.f.write(b"\0" * (-(len(hdr) + len(name_b)) % 4))
        self.f.write(data)
        self.f.write(b"\0" * (-len(data) % 4))

    def dir(self, name, mode=0o755):
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def trailer(self):
        self._entry("TRAILER!!!", 0)


# The guest's /init.  Kernel parameters it reads (all from /proc/cmdline):
#   vs.name=NAME           hostname
#   vs.ip=A/P[,A/P...]     addresses of eth0
#   vs.mtu=N               MTU of eth0 (set before its VLANs are made)
#   vs.vlan=VID[:A/P[+A/P]][,VID...]   eth0.VID subinterfaces
#   vs.IF.ip= vs.IF.mtu= vs.IF.vlan=   the same for interface IF (eth1, ...)
#   vs.debug               keep kernel messages on the console
INIT = r"""#!/bin/sh
# /init of a vswitch test guest, generated by tests/guest/guestlib.py.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
cmdline=$(cat /proc/cmdline)
case " $cmdline " in
*" vs.debug "*|*" vs.debug=1 "*) ;;
*) dmesg -n 1 ;;
esac
errors=0
err() { echo "vsguest: ERROR: $*"; errors=$((errors + 1)); }

for m in $(cat /etc/vs-modules); do
	insmod "/lib/modules/$m.ko" || err "insmod $m failed"
done
ip link set lo up

: > /run/vs-net
for arg in $cmdline; do
	case "$arg" in
	vs.*=*) ;;
	*) continue ;;
	esac
	key=${arg%%=*}
	val=${arg#*=}
	key=${key#vs.}
	case "$key" in
	*.*) ifc=${key%.*}; key=${key##*.} ;;
	*) ifc=eth0 ;;
	esac
	case "$key" in
	name) hostname "$val" ;;
	ip|vlan|mtu) echo "$ifc $key $(echo "$val" | tr , ' ')" >> /run/vs-net ;;
	*) err "unknown parameter $arg" ;;
	esac
done

for ifc in $(cut -d' ' -f1 /run/vs-net | sort -u); do
	n=0
	while [ ! -e "/sys/class/net/$ifc" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if [ ! -e "/sys/class/net/$ifc" ]; then
		err "no interface $ifc"
		continue
	fi
	for mtu in $(sed -n "s/^$ifc mtu //p" /run/vs-net); do
		ip link set "$ifc" mtu "$mtu" || err "mtu $mtu on $ifc"
	done
	ip link set "$ifc" up || err "link $ifc up"
	for a in $(sed -n "s/^$ifc ip //p" /run/vs-net); do
		ip addr add "$a" dev "$ifc" || err "address $a on $ifc"
	done
	for v in $(sed -n "s/^$ifc vlan //p" /run/vs-net); do
		vid=${v%%:*}
		sub=$ifc.$vid
		ip link add link "$ifc" name "$sub" type vlan id "$vid" ||
			vconfig add "$ifc" "$vid" || { err "vlan $sub"; continue; }
		ip link set "$sub" up || err "link $sub up"
		case "$v" in
		*:*)
			for a in $(echo "${v#*:}" | tr + ' '); do
				ip addr add "$a" dev "$sub" || err "address $a on $sub"
			done ;;
		esac
	done
done

echo "@READY@ errors=$errors"
while :; do
	setsid cttyhack sh -c 'stty -echo -ixon 2>/dev/null; PS1="# "; export PS1; exec sh -i'
	sleep 0.2
done
""".replace("@READY@", READY)


def _stat_sig(path):
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def build_initramfs(workdir, modules=(), binaries=()):
    """Build (or reuse) the guest initramfs in workdir; return its path.

    modules: more kernel modules for /init to load, after MODULES, by name
    (e.g. ["crc32c_generic", "ext4"]); the modules each one needs are found
    in modules.dep and loaded first.  binaries: host programs to copy in
    with the shared libraries ldd finds for them, at their host paths
    (e.g. ["mke2fs"] gives /usr/sbin/mke2fs and /lib/x86_64-linux-gnu/
    libext2fs.so.2, ...).  Run such a program by its full path: busybox's
    sh runs its own applet of that name (mke2fs, fstrim, ...) first,
    whatever PATH says.  A missing module or binary raises GuestError.

    The file is workdir/initramfs-<key>.cpio.gz (initramfs-<extras>-<key>
    when modules or binaries are given, <extras> a hash of the two lists)
    where key hashes the kernel, busybox, module and binary files (path,
    size, mtime) and the /init script, so it is rebuilt only when one of
    them changed; older initramfs files with the same extras in workdir are
    removed.  Safe to call from several processes at once (written to a
    temporary name, then renamed).  A JSON manifest next to it (same name,
    .json) lists the modules included, built in, or missing, and the host
    files copied in.
    """
    os.makedirs(workdir, exist_ok=True)
    kernel, version, moddir = find_kernel()
    if not os.path.isfile(BUSYBOX):
        raise GuestError(f"{BUSYBOX} missing: install busybox-static")
    modules, binaries = list(modules), list(binaries)
    mods = _find_modules(moddir, modules)
    bins = _find_binaries(binaries)
    sig = {
        "format": _FORMAT, "kernel": _stat_sig(kernel), "version": version,
        "busybox": _stat_sig(BUSYBOX), "init": INIT,
        "modules": {m: (_stat_sig(p) if p not in (None, "builtin") else p)
                    for m, p in mods.items()},
        "files": {dst: _stat_sig(src) for dst, src in bins.items()},
    }
    key = hashlib.sha256(json.dumps(sig, sort_keys=True).encode()) \
        .hexdigest()[:16]
    # Guests with other extras may share workdir: each kind keeps its file.
    flavor = ""
    if modules or binaries:
        flavor = hashlib.sha256(json.dumps([modules, binaries]).encode()) \
            .hexdigest()[:8] + "-"
    out = os.path.join(workdir, f"initramfs-{flavor}{key}.cpio.gz")
    if os.path.exists(out):
        return out

    applets = subprocess.run([BUSYBOX, "--list-full"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout.split()
    buf = io.BytesIO()
    cpio = _Cpio(buf)
    dirs = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "etc",
            "lib", "lib/modules", "proc", "sys", "tmp", "run", "root", "var"]
    for d in dirs:
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    with open(BUSYBOX, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    for a in applets:
        a = a.strip("/")
        # A copied program at an applet's path takes its place.
        if a and a != "bin/busybox" and os.path.dirname(a) in dirs + [""] \
                and "/" + a not in bins:
            cpio.symlink(a, "/bin/busybox")
    made = set(dirs)
    for dst, src in sorted(bins.items()):
        rel = dst.strip("/")
        # The kernel's unpacker makes no parent directories.
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                cpio.dir(d)
                made.add(d)
        with open(src, "rb") as f:
            cpio.file(rel, f.read(), 0o755)
    loaded = []
    for m, p in mods.items():
        if p not in (None, "builtin"):
            cpio.file(f"lib/modules/{m}.ko", _read_module(p))
            loaded.append(m)
    cpio.file("etc/vs-modules", ("\n".join(loaded) + "\n").encode())
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")
    cpio.file("etc/hosts", b"127.0.0.1 localhost\n")
    cpio.file("init", INIT.encode(), 0o755)
    cpio.trailer()

    tmp = f"{out}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6,
                           mtime=0) as gz:
            gz.write(buf.getvalue())
    manifest = {
        "kernel": kernel, "version": version, "busybox": BUSYBOX,
        "modules": loaded,
        "builtin": [m for m, p in mods.items() if p == "builtin"],
        "missing": [m for m, p in mods.items() if p is None],
        "files": bins,
    }
    with open(tmp + ".json", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp + ".json", out[:-len(".cpio.gz")] + ".json")
    os.replace(tmp, out)
    stale = re.compile(r"initramfs-%s[0-9a-f]{16}\.(cpio\.gz|json)" %
                       re.escape(flavor))
    for n in os.listdir(workdir):
        if stale.fullmatch(n) and not n.startswith(f"initramfs-{flavor}{key}"):
            try:
                os.unlink(os.path.join(workdir, n))
            except OSError:
                pass
    return out


# --------------------------------------------------------------------------
# Devices

def free_tcp_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tcp_listening(port):
    """True if something listens on TCP port `port` (any local address)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and \
                            int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def _check_unix_path(path):
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        raise GuestError(f"unix socket path longer than {_UNIX_PATH_MAX} "
                         f"bytes: {path}; use a shorter workdir")


def _norm_addrs(ip):
    if ip is None:
        return []
    if isinstance(ip, str):
        return [a for a in ip.split(",") if a]
    return list(ip)


def _norm_vlans(vlans):
    """vlans as "VID[:ADDR[+ADDR]]" strings.

    Accepts a dict {vid: addr | [addr, ...] | None}, or a list of ints,
    (vid, addr-or-list-or-None) pairs, or strings "VID[:ADDR]"; a string
    may hold several comma-separated entries.
    """
    if vlans is None:
        return []
    if isinstance(vlans, dict):
        vlans = list(vlans.items())
    elif isinstance(vlans, (str, int)):
        vlans = [vlans]
    out = []
    for v in vlans:
        if isinstance(v, str):
            out.extend(x for x in v.split(",") if x)
            continue
        if isinstance(v, int):
            vid, addrs = v, []
        else:
            vid, addrs = v
            addrs = _norm_addrs(addrs)
        if not 1 <= int(vid) <= 4094:
            raise ValueError(f"bad VLAN id {vid}")
        out.append(str(int(vid)) + (":" + "+".join(addrs) if addrs else ""))
    return out


class Nic:
    """One virtio-net-pci NIC of a guest and the QEMU back end behind it.

    kind is "vhost-user", "socket" or "user"; use the class methods:

    Nic.vhost_user(path, server=False, queues=1)
        vhost-user; the guest is the client (connects to the switch's
        socket, reconnect=1 so it reconnects when the switch restarts) or,
        with server=True, QEMU creates the socket and the switch connects.
        QEMU does not start the guest CPU until the back end is connected,
        so the boot (and wait_ready's timeout) starts then.  queues > 1
        gives the device mq=on; the guest uses min(queues, cpus) queue
        pairs (the virtio_net default; busybox has no ethtool -L), so
        give the Guest cpus=queues to use them all.  vhost-user NICs get
        vectors=0 (legacy INTx, no MSI-X): QEMU 7.2 under TCG segfaults
        as soon as the guest starts a vhost-user NIC with MSI-X.
        msix=True (or VS_GUEST_MSIX=1) keeps MSI-X, vectors=2*queues+2
        when queues > 1, for a QEMU without that bug.
    Nic.socket_listen(port) / Nic.socket_connect(port)
        a QEMU "-netdev socket" wire between two guests over TCP on
        127.0.0.1: one listens, the other connects (Guest.start() of the
        connecting one waits until the port listens).  For testing the
        harness without a switch.
    Nic.user()
        QEMU's user-mode network (slirp).  Harness self-tests only: it
        reaches the host's network.

    mac defaults to 52:54:xx:xx:xx:nn, derived from the guest name and the
    NIC's index.  ip, vlans and mtu configure this NIC inside the guest
    (see Guest).  A NIC's interface in the guest is ethN, N its index in
    Guest(nics=[...]).
    """

    KINDS = ("vhost-user", "socket", "user")

    def __init__(self, kind, *, path=None, server=False, queues=1,
                 listen=None, connect=None, host="127.0.0.1", mac=None,
                 ip=None, vlans=None, mtu=None, msix=None):
        if kind not in self.KINDS:
            raise ValueError(f"Nic kind must be one of {self.KINDS}")
        if kind == "vhost-user" and not path:
            raise ValueError("a vhost-user Nic needs path=")
        if kind == "socket" and (listen is None) == (connect is None):
            raise ValueError("a socket Nic needs exactly one of listen=, "
                             "connect=")
        if queues < 1 or (queues > 1 and kind != "vhost-user"):
            raise ValueError("queues > 1 only for vhost-user")
        self.kind, self.path, self.server, self.queues = \
            kind, path, server, queues
        self.listen, self.connect, self.host = listen, connect, host
        self.mac, self.ip, self.vlans, self.mtu = mac, ip, vlans, mtu
        self.msix = msix if msix is not None else \
            os.environ.get("VS_GUEST_MSIX") == "1"

    @classmethod
    def vhost_user(cls, path, server=False, queues=1, **kw):
        return cls("vhost-user", path=path, server=server, queues=queues,
                   **kw)

    @classmethod
    def socket_listen(cls, port, **kw):
        return cls("socket", listen=port, **kw)

    @classmethod
    def socket_connect(cls, port, **kw):
        return cls("socket", connect=port, **kw)

    @classmethod
    def user(cls, **kw):
        return cls("user", **kw)

    def __repr__(self):
        what = self.path or self.listen or self.connect or ""
        return f"Nic({self.kind!r}, {what!r})"

    def _args(self, i, mac):
        if self.kind == "vhost-user":
            _check_unix_path(self.path)
            cs = (f"socket,id=c{i},path={self.path}," +
                  ("server=on,wait=off" if self.server else "reconnect=1"))
            net = ["-chardev", cs, "-netdev",
                   f"vhost-user,id=n{i},chardev=c{i},queues={self.queues}"]
        elif self.kind == "socket":
            addr = (f"listen={self.host}:{self.listen}" if self.listen
                    is not None else f"connect={self.host}:{self.connect}")
            net = ["-netdev", f"socket,id=n{i},{addr}"]
        else:
            net = ["-netdev", f"user,id=n{i},restrict=on"]
        dev = f"virtio-net-pci,netdev=n{i},mac={mac},romfile="
        if self.kind == "vhost-user" and not self.msix:
            # QEMU 7.2 under TCG segfaults in msix_set_vector_notifiers
            # when vhost-user starts with MSI-X (it takes the KVM irqfd
            # path): legacy INTx, which vectors=0 selects, works.
            dev += ",vectors=0"
            if self.queues > 1:
                dev += ",mq=on"
        elif self.queues > 1:
            dev += f",mq=on,vectors={2 * self.queues + 2}"
        return net + ["-device", dev]


class Disk:
    """One virtio block device of a guest (/dev/vda, vdb, ... in order).

    Disk.vhost_user_blk(path, server=False, queues=1, packed=False)
        vhost-user-blk, e.g. served by vdiskd or qemu-storage-daemon; the
        guest connects to path (reconnect=1), or creates it with server=True;
        packed=True offers packed virtqueues (packed=on).
    Disk.file(path, fmt="raw", readonly=False)
        an image file opened by QEMU itself (virtio-blk-pci).
    """

    def __init__(self, kind, path, *, server=False, queues=1, fmt="raw",
                 readonly=False, packed=False):
        if kind not in ("vhost-user-blk", "file"):
            raise ValueError("Disk kind is vhost-user-blk or file")
        self.kind, self.path, self.server, self.queues = \
            kind, path, server, queues
        self.packed = packed
        self.fmt, self.readonly = fmt, readonly

    @classmethod
    def vhost_user_blk(cls, path, server=False, queues=1, packed=False):
        return cls("vhost-user-blk", path, server=server, queues=queues, packed=packed)

    @classmethod
    def file(cls, path, fmt="raw", readonly=False):
        return cls("file", path, fmt=fmt, readonly=readonly)

    def _args(self, i):
        if self.kind == "vhost-user-blk":
            _check_unix_path(self.path)
            cs = (f"socket,id=d{i},path={self.path}," +
                  ("server=on,wait=off" if self.server else "reconnect=1"))
            return ["-chardev", cs, "-device",
                    f"vhost-user-blk-pci,chardev=d{i},num-queues={self.queues}" +
                    (",packed=on" if self.packed else "")]
        ro = ",readonly=on" if self.readonly else ""
        return ["-blockdev",
                f"driver=file,node-name=f{i},filename={self.path}{ro}",
                "-blockdev", f"driver={self.fmt},node-name=d{i},file=f{i}{ro}",
                "-device", f"virtio-blk-pci,drive=d{i}"]


# --------------------------------------------------------------------------
# Process handling

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup(parent):
    # SIGKILL QEMU when the thread that forked it dies.  _spawn() forks from
    # a thread that lives as long as this process does.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


_spawn_lock = threading.Lock()
_spawn_thread = None
_spawn_jobs = []
_spawn_cv = threading.Condition(_spawn_lock)


def _spawner():
    while True:
        with _spawn_cv:
            while not _spawn_jobs:
                _spawn_cv.wait()
            fn, box, done = _spawn_jobs.pop(0)
        try:
            box.append((True, fn()))
        except BaseException as e:  # handed to the caller
            box.append((False, e))
        done.set()


def _spawn(argv, **kw):
    """subprocess.Popen(argv) from a process-long thread (see _child_setup)."""
    global _spawn_thread
    parent = os.getpid()
    fn = lambda: subprocess.Popen(  # noqa: E731
        argv, preexec_fn=lambda: _child_setup(parent), **kw)
    box, done = [], threading.Event()
    with _spawn_cv:
        if _spawn_thread is None or not _spawn_thread.is_alive():
            _spawn_thread = threading.Thread(target=_spawner, daemon=True,
                                             name="guestlib-spawner")
            _spawn_thread.start()
        _spawn_jobs.append((fn, box, done))
        _spawn_cv.notify()
    done.wait()
    ok, val = box[0]
    if not ok:
        raise val
    return val


_live = weakref.WeakSet()


@atexit.register
def _stop_all():
    for g in list(_live):
        try:
            g.stop()
        except Exception:
            pass


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# The guest

class Guest:
    """A QEMU/TCG guest with a root shell on its serial console.

    Guest(name, workdir, nics=[Nic...], ip=None, vlans=None, mtu=None,
          mem_mb=256, disks=[Disk...], cpus=1, ipv6=False, qmp=False,
          append="", extra_args=[], initrd=None, debug=False,
          modules=[], binaries=[])

    name       used for the hostname, log file names and default MACs.
    workdir    directory for logs, sockets and (unless initrd is given) the
               cached initramfs; created if missing.  Keep it short: unix
               socket paths must fit in 107 bytes.
    ip, vlans, mtu
               configure eth0 (the first NIC), unless that Nic sets its own.
               ip: "10.0.0.1/24", or a list / comma-separated string.
               vlans: ["10:10.0.10.1/24", "20"], {10: "10.0.10.1/24"},
               [(10, "10.0.10.1/24")] or "10:10.0.10.1/24,20"; each makes
               eth0.VID (ip link ... type vlan id VID) with the addresses.
               mtu: int, set on eth0 before its VLANs are created (so they
               inherit it).
    ipv6       False (default) boots with ipv6.disable_ipv6=1, so guests
               send no router solicitations, MLD or DAD frames that would
               disturb MAC-learning and flood tests.  True to use IPv6.
    qmp        True to open a QMP socket (workdir/NAME.qmp) for Guest.qmp().
    append     more kernel parameters; extra_args more QEMU arguments.
    debug      keep kernel messages on the console (else only emergencies
               are printed, so they do not interleave with command output;
               `dmesg` in the guest still has everything).
    modules, binaries
               more kernel modules (with what they depend on) for /init to
               load, and host programs to copy in with their shared
               libraries: see build_initramfs().  E.g. modules=
               ["crc32c_generic", "ext4"], binaries=["mke2fs"] for a guest
               that makes (/usr/sbin/mke2fs -t ext4: by its full path, or
               busybox's applet runs) and mounts an ext4 file system.

    Files: console_log (NAME.console.log, everything the serial console
    printed, raw), qemu_log (NAME.qemu.log, QEMU's stderr), argv (the QEMU
    command line, also written to NAME.cmdline).

    Inside the guest: busybox only, root, no disk needed, /tmp and /run are
    tmpfs, NICs are eth0, eth1, ... in the order given.
    """

    def __init__(self, name, workdir, nics=(), ip=None, vlans=None, mtu=None,
                 mem_mb=256, disks=(), cpus=1, ipv6=False, qmp=False,
                 append="", extra_args=(), initrd=None, debug=False,
                 modules=(), binaries=()):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ValueError(f"guest name {name!r}: use letters, digits, "
                             "- and _")
        self.name = name
        self.workdir = os.path.abspath(workdir)
        self.nics = list(nics)
        self.disks = list(disks)
        self.ip, self.vlans, self.mtu = ip, vlans, mtu
        self.mem_mb, self.cpus = mem_mb, cpus
        self.ipv6, self.debug = ipv6, debug
        self.append, self.extra_args = append, list(extra_args)
        self.initrd = initrd
        self.modules, self.binaries = list(modules), list(binaries)
        self.console_log = os.path.join(self.workdir, f"{name}.console.log")
        self.qemu_log = os.path.join(self.workdir, f"{name}.qemu.log")
        self.qmp_path = (os.path.join(self.workdir, f"{name}.qmp")
                         if qmp else None)
        self.argv = None
        self.proc = None
        self._buf = bytearray()
        self._cv = threading.Condition()
        self._eof = False
        self._reader = None
        self._log = None
        self._run_lock = threading.Lock()
        self._ready = False
        self.boot_seconds = None

    # ---- life cycle

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def mac(self, i):
        """MAC address of NIC i."""
        if self.nics[i].mac:
            return self.nics[i].mac
        h = hashlib.sha256(self.name.encode()).digest()
        return "52:54:%02x:%02x:%02x:%02x" % (h[0], h[1], h[2], i & 0xff)

    def _kernel_params(self):
        p = ["console=ttyS0", "quiet", "panic=-1", f"vs.name={self.name}"]
        if not self.ipv6:
            p.append("ipv6.disable_ipv6=1")
        if self.debug:
            p.append("vs.debug")
        for i, nic in enumerate(self.nics):
            ip, vlans, mtu = nic.ip, nic.vlans, nic.mtu
            if i == 0:
                ip = ip if ip is not None else self.ip
                vlans = vlans if vlans is not None else self.vlans
                mtu = mtu if mtu is not None else self.mtu
            pre = "vs." if i == 0 else f"vs.eth{i}."
            if mtu:
                p.append(f"{pre}mtu={int(mtu)}")
            if _norm_addrs(ip):
                p.append(f"{pre}ip=" + ",".join(_norm_addrs(ip)))
            if _norm_vlans(vlans):
                p.append(f"{pre}vlan=" + ",".join(_norm_vlans(vlans)))
        if not self.nics and (self.ip or self.vlans or self.mtu):
            raise GuestError("ip/vlans/mtu given but the guest has no NIC")
        if any(re.search(r"\s", x) for x in p):
            raise ValueError(f"whitespace in a kernel parameter: {p}")
        if self.append:
            p.append(self.append)
        s = " ".join(p)
        if len(s) > 2000:
            raise GuestError("kernel command line too long")
        return s

    def _build_argv(self):
        kernel = find_kernel()[0]
        initrd = self.initrd or build_initramfs(self.workdir, self.modules,
                                                self.binaries)
        m = self.mem_mb
        argv = [QEMU, "-name", self.name, "-nodefaults", "-nographic",
                "-display", "none", "-no-reboot", "-accel", "tcg",
                "-smp", str(self.cpus), "-m", f"{m}M",
                "-object", f"memory-backend-memfd,id=mem,size={m}M,share=on",
                "-numa", "node,memdev=mem",
                "-kernel", kernel, "-initrd", initrd,
                "-append", self._kernel_params(),
                "-chardev", "stdio,id=ser,signal=off",
                "-serial", "chardev:ser"]
        if self.qmp_path:
            _check_unix_path(self.qmp_path)
            argv += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        for i, nic in enumerate(self.nics):
            argv += nic._args(i, self.mac(i))
        for i, d in enumerate(self.disks):
            argv += d._args(i)
        return argv + self.extra_args

    def start(self):
        """Launch QEMU and return at once (the guest boots meanwhile).

        Waits only for what must exist before others can proceed: the
        listening port of a socket NIC this guest connects to (up to 30 s),
        and the unix sockets QEMU creates itself (server-mode vhost-user
        NICs and disks, QMP), so a back end may connect right after start().
        """
        if self.running():
            raise GuestError(f"{self.name}: already running")
        restart = self.proc is not None
        if restart:
            self.stop()
            self._buf = bytearray()
            self._eof = False
        os.makedirs(self.workdir, exist_ok=True)
        self.argv = self._build_argv()
        with open(os.path.join(self.workdir, f"{self.name}.cmdline"), "w") \
                as f:
            f.write(shlex.join(self.argv) + "\n")
        for nic in self.nics:
            if nic.kind == "socket" and nic.connect is not None:
                deadline = time.monotonic() + 30
                while not _tcp_listening(nic.connect):
                    if time.monotonic() > deadline:
                        raise GuestTimeout(
                            f"{self.name}: nothing listens on port "
                            f"{nic.connect} (start the listening guest "
                            "first)")
                    time.sleep(0.05)
        self._log = open(self.console_log, "ab" if restart else "wb")
        with open(self.qemu_log, "wb") as err:
            self._t0 = time.monotonic()
            self.proc = _spawn(self.argv, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=err,
                               start_new_session=True, close_fds=True)
        _live.add(self)
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"guestlib-{self.name}")
        self._reader.start()
        sockets = [n.path for n in self.nics
                   if n.kind == "vhost-user" and n.server]
        sockets += [d.path for d in self.disks
                    if d.kind == "vhost-user-blk" and d.server]
        if self.qmp_path:
            sockets.append(self.qmp_path)
        deadline = time.monotonic() + 30
        for path in sockets:
            while not os.path.exists(path):
                self._check_alive("creating its sockets")
                if time.monotonic() > deadline:
                    raise GuestTimeout(f"{self.name}: QEMU did not create "
                                       f"{path}" + self._diag())
                time.sleep(0.02)
        return self

    def _read_loop(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                self._log.write(data)
                self._log.flush()
            with self._cv:
                if not data:
                    self._eof = True
                else:
                    self._buf += data
                self._cv.notify_all()
            if not data:
                return

    def _diag(self):
        return (f"\n--- console ({self.console_log}), last lines:\n"
                f"{_tail(self.console_log)}\n--- QEMU stderr "
                f"({self.qemu_log}):\n{_tail(self.qemu_log, 20)}")

    def _check_alive(self, doing):
        if self.proc is None:
            raise GuestError(f"{self.name}: not started")
        rc = self.proc.poll()
        if rc is not None:
            raise GuestError(f"{self.name}: QEMU exited with status {rc} "
                             f"while {doing}" + self._diag())

    def _wait_for(self, pattern, start, deadline, doing):
        """Wait until regex `pattern` (bytes) matches _buf from `start`."""
        rx = re.compile(pattern)
        with self._cv:
            while True:
                m = rx.search(self._buf, start)
                if m:
                    return m
                if b"Kernel panic" in self._buf[max(0, start - 64):]:
                    break
                if self._eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestTimeout(f"{self.name}: timed out while "
                                       f"{doing}" + self._diag())
                self._cv.wait(min(left, 0.5))
        if self.proc.poll() is None:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
        self._check_alive(doing)
        raise GuestError(f"{self.name}: console closed (or kernel panic) "
                         f"while {doing}" + self._diag())

    def wait_ready(self, timeout=60):
        """Wait until /init has configured the network and the shell answers.

        Raises GuestError if /init reported an error (a module that would
        not load, an address or VLAN that could not be set), if QEMU exits,
        or GuestTimeout after `timeout` seconds from this call.  Sets
        boot_seconds (time from start() to ready).
        """
        if self._ready:
            return self
        deadline = time.monotonic() + timeout
        m = self._wait_for(re.escape(READY.encode()) + rb" errors=(\d+)", 0,
                           deadline, "booting")
        if int(m.group(1)):
            raise GuestError(f"{self.name}: /init reported {m.group(1)} "
                             "error(s)" + self._diag())
        self._ready = True
        rc, _ = self.run("true", timeout=max(1, deadline - time.monotonic()))
        if rc != 0:
            raise GuestError(f"{self.name}: shell does not work" +
                             self._diag())
        self.boot_seconds = time.monotonic() - self._t0
        return self

    def _send(self, line):
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._check_alive("sending a command")
            raise GuestError(f"{self.name}: cannot write to the console")

    def run(self, cmd, timeout=30, check=False):
        """Run shell command `cmd` in the guest; return (rc, output).

        cmd runs as `sh -c cmd` under the console's root shell, with stdin
        from /dev/null; it may span several lines and use any quoting (it
        travels base64-encoded).  Each call gets a fresh `sh -c`, so cd and
        variables do not carry over.  Background jobs (`cmd &`) keep
        running.  output is stdout and stderr together, as the serial
        console printed it, with CR removed.  Kernel messages of level
        KERN_EMERG could appear in it.

        On timeout, sends ^C (SIGINT to the command), resynchronises the
        console and raises GuestTimeout.  check=True raises GuestError when
        rc != 0.  Calls on one guest are serialised.
        """
        if not self._ready:
            raise GuestError(f"{self.name}: run() before wait_ready()")
        with self._run_lock:
            self._check_alive("running a command")
            nonce = secrets.token_hex(6)
            b64 = base64.b64encode(cmd.encode()).decode()
            with self._cv:
                start = len(self._buf)
            # The console's canonical mode takes at most 4095 bytes a line.
            if len(b64) <= 3000:
                fetch = f"echo {b64} | base64 -d"
            else:
                tmp = f"/tmp/.vscmd.{nonce}"
                for i in range(0, len(b64), 3000):
                    self._send(f"echo {b64[i:i + 3000]} >> {tmp}")
                fetch = f"base64 -d {tmp}; rm -f {tmp}"
            # The quotes keep the markers in the (normally off) echo of
            # this line from matching.
            self._send(f'echo __B""_{nonce}; sh -c "$({fetch})" </dev/null;'
                       f' echo __E""_{nonce}_$?')
            deadline = time.monotonic() + timeout
            try:
                b = self._wait_for(rb"__B_%s\r?\n" % nonce.encode(), start,
                                   deadline, f"running {cmd!r}")
                e = self._wait_for(rb"__E_%s_(\d+)\r?\n" % nonce.encode(),
                                   b.end(), deadline, f"running {cmd!r}")
            except GuestTimeout:
                self._resync()
                raise
            with self._cv:
                out = bytes(self._buf[b.end():e.start()])
        rc = int(e.group(1))
        text = out.decode("utf-8", "replace").replace("\r", "")
        if check and rc != 0:
            raise GuestError(f"{self.name}: {cmd!r} exited {rc}:\n{text}")
        return rc, text

    def _resync(self):
        """After a timeout: interrupt the command, wait for a fresh prompt."""
        try:
            self.proc.stdin.write(b"\x03")
            self.proc.stdin.flush()
            time.sleep(0.2)
            nonce = secrets.token_hex(6)
            with self._cv:
                start = len(self._buf)
            self._send(f'echo __S""_{nonce}')
            self._wait_for(rb"__S_%s\r?\n" % nonce.encode(), start,
                           time.monotonic() + 10, "resynchronising")
        except GuestError:
            pass

    def write_file(self, path, data, mode=None, timeout=60):
        """Write bytes or str `data` to `path` in the guest (small files:
        it travels over the serial console, base64-encoded)."""
        if isinstance(data, str):
            data = data.encode()
        b64 = base64.encodebytes(data).decode()
        q = shlex.quote(path)
        cmd = f"base64 -d > {q} <<'__VSEOF__'\n{b64}__VSEOF__\n"
        if mode is not None:
            cmd += f"chmod {mode:o} {q}\n"
        self.run(cmd, timeout=timeout, check=True)

    def wait_carrier(self, ifname="eth0", up=True, timeout=30):
        """Wait until ifname's carrier is up (or down, up=False).

        A vhost-user NIC has no carrier until the back end has set up its
        rings, and after a QMP set_link or a switch restart it changes
        while the guest runs; send traffic only once this returns.
        """
        want = "1" if up else "0"
        self.wait_until(f"[ \"$(cat /sys/class/net/{ifname}/carrier 2>/dev/null)\" = {want} ]",
                        timeout, f"{ifname} carrier not {'up' if up else 'down'}")

    def wait_until(self, cond, timeout, what):
        """Wait until the guest shell condition `cond` holds, testing it
        every 0.1 s inside the guest (one console round trip); GuestTimeout
        naming `what` after `timeout` seconds."""
        cmd = (f"i=0; until {cond}; do i=$((i+1)); "
               f"[ $i -gt {int(timeout * 10)} ] && exit 1; sleep 0.1; done")
        rc, _ = self.run(cmd, timeout=timeout + 15)
        if rc != 0:
            raise GuestTimeout(f"{self.name}: {what} after {timeout} s")

    def console_text(self):
        """Everything the console printed so far, decoded, CR removed."""
        with self._cv:
            return bytes(self._buf).decode("utf-8", "replace") \
                .replace("\r", "")

    def qmp(self, execute, **arguments):
        """Run one QMP command (Guest(qmp=True)); return its "return" value.

        E.g. g.qmp("set_link", name="n0", up=False) takes NIC 0's link down
        (netdev ids are n0, n1, ...; device ids are not set).
        """
        if not self.qmp_path:
            raise GuestError(f"{self.name}: started without qmp=True")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self.qmp_path)
            f = s.makefile("rwb")

            def call(cmd, args=None):
                msg = {"execute": cmd}
                if args:
                    msg["arguments"] = args
                f.write(json.dumps(msg).encode() + b"\n")
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        raise GuestError(f"{self.name}: QMP closed")
                    r = json.loads(line)
                    if "return" in r:
                        return r["return"]
                    if "error" in r:
                        raise GuestError(f"{self.name}: QMP {cmd}: "
                                         f"{r['error']}")

            json.loads(f.readline())  # greeting
            call("qmp_capabilities")
            return call(execute, arguments)

    def stop(self, timeout=10):
        """Stop QEMU (SIGTERM, then SIGKILL) and clean up; idempotent.

        Kills only the process start() made, waits for it, closes the
        console, and removes the unix sockets QEMU created as a server.
        """
        p = self.proc
        if p is not None:
            if p.poll() is None:
                try:
                    p.terminate()
                    p.wait(timeout / 2)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout / 2)
            for f in (p.stdin,):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass
            if self._reader:
                self._reader.join(5)
            try:
                p.stdout.close()
            except (OSError, ValueError):
                pass
        if self._log:
            self._log.close()
            self._log = None
        paths = [n.path for n in self.nics
                 if n.kind == "vhost-user" and n.server]
        paths += [d.path for d in self.disks
                  if d.kind == "vhost-user-blk" and d.server]
        if self.qmp_path:
            paths.append(self.qmp_path)
        if p is not None:
            for path in paths:
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        os.unlink(path)
                except OSError:
                    pass
        _live.discard(self)
        self._ready = False
        return p.returncode if p is not None else None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return f"Guest({self.name!r}, pid={self.pid})"


# --------------------------------------------------------------------------
# Command line, for debugging by hand

def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(
        prog="guestlib.py", description="Build the test guests' initramfs, "
        "or boot one guest (no NIC unless --socket-listen/--socket-connect) "
        "and run commands in it.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("initramfs", help="build (or reuse) the initramfs in "
                       "WORKDIR; print its path and manifest")
    p.add_argument("workdir")
    p.add_argument("--module", action="append", default=[])
    p.add_argument("--binary", action="append", default=[])
    p = sub.add_parser("run", help="boot a guest, run each -c COMMAND, "
                       "print the output and exit statuses, stop it")
    p.add_argument("workdir")
    p.add_argument("-c", "--command", action="append", default=[],
                   dest="commands", help="a command to run (repeatable)")
    p.add_argument("--name", default="manual")
    p.add_argument("--ip")
    p.add_argument("--vlan", action="append")
    p.add_argument("--mtu", type=int)
    p.add_argument("--socket-listen", type=int, metavar="PORT")
    p.add_argument("--socket-connect", type=int, metavar="PORT")
    p.add_argument("--vhost-user", metavar="SOCK",
                   help="a vhost-user NIC, QEMU as client")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--module", action="append", default=[],
                   help="another kernel module to load (repeatable)")
    p.add_argument("--binary", action="append", default=[],
                   help="a host program to copy in (repeatable)")
    a = ap.parse_args(argv)
    if a.cmd == "initramfs":
        path = build_initramfs(a.workdir, a.module, a.binary)
        print(path)
        with open(path[:-len(".cpio.gz")] + ".json") as f:
            print(f.read())
        return 0
    nics = []
    if a.socket_listen is not None:
        nics.append(Nic.socket_listen(a.socket_listen))
    if a.socket_connect is not None:
        nics.append(Nic.socket_connect(a.socket_connect))
    if a.vhost_user:
        nics.append(Nic.vhost_user(a.vhost_user))
    worst = 0
    with Guest(a.name, a.workdir, nics=nics, ip=a.ip, vlans=a.vlan,
               mtu=a.mtu, debug=a.debug, modules=a.module,
               binaries=a.binary) as g:
        g.wait_ready()
        print(f"# booted in {g.boot_seconds:.1f} s; console log "
              f"{g.console_log}", flush=True)
        for c in a.commands:
            rc, out = g.run(c, timeout=120)
            print(f"# {c}  -> exit {rc}\n{out}", end="", flush=True)
            worst = worst or rc
    return worst


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
