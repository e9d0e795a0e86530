#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs vswitchd beside its anchors in one go and prints forwarding rates
# with ratios (a benchmark, run by hand, never by meson test):
#
#   vswitchd-event  this project's switch, release build, in its default
#                event mode (no options: its EAL pins it to CPU 0), bridge
#                br0 with two vhost-user ports; SYSTEMS name: event
#   vswitchd-poll   the same with --poll --poll-cpu 0; SYSTEMS name: vswitchd
#   testpmd-io   the limit: dpdk-testpmd io forwarding between two net_vhost
#                ports (no switching at all), forwarding lcore on CPU 0
#   ovs-dpdk     Open vSwitch with DPDK (ovs-vswitchd-dpdk), a netdev bridge
#                with two dpdkvhostuser ports, NORMAL forwarding, PMD on
#                CPU 0; a private ovsdb-server and ovs-vswitchd with their
#                own run dir in our temp dir (and their own network
#                namespace, for the bridge's tap port)
#
# Each switch is driven by ONE client process (DESIGN.md, "How it is
# tested": on 2 cores, a sending and a receiving process beside the switch
# measure the scheduler): a dpdk-testpmd with two net_virtio_user ports,
# one forwarding lcore on CPU 1, mac forwarding with --port-topology=loop
# (what a port receives goes back out of the same port, source MAC its own,
# destination the other port's), so a fixed set of frames circulates
# client -> switch -> client, half of them each way through the switch.
# The client starts with "start tx_first" (BURSTS bursts of 32 frames per
# port, default 1: 64 frames circulate); the sum of both ports' Rx-pps is
# the switch's forwarding rate; the median of SECS one-second periods after
# WARMUP is a case's figure.  All cases run ROUNDS times, round after round
# (this machine's speed steps by up to 1.5x for minutes at a time, outside
# our control), and the table gives the median of the rounds, each round's
# figure, and the ratios of the medians with their range within a round.  "lost" is frames sent minus frames received at the
# end: the frames in flight (64) plus any the switch dropped.
#
# Frames: the client's buffers carry 60 and 1514 bytes (--txpkts), which
# are the 64- and 1518-byte Ethernet frames of the usual tables counted
# with an FCS; virtio carries no FCS.  In the access/trunk setup the frames
# on the trunk side carry a 4-byte 802.1Q tag more (64 and 1518 bytes).
#
# VLAN setups: "access" = both ports access VLAN 10; "trunk" = p0 access
# VLAN 10, p1 trunk carrying VLAN 10: a tag is pushed p0 -> p1 and popped
# p1 -> p0 (testpmd's mac forwarding returns a frame with the tag it came
# with; that is why the loop topology: with the default paired one a
# tagged frame from p1 would be sent into the access port p0 and dropped).
# The client's bursts on port 1 are untagged, so the trunk port drops them
# (both switches do): there port 0 sends twice as many, so 64 frames
# circulate in both setups.  testpmd-io does no VLAN work; its row is the
# limit for both setups.
#
# Then, in the same round, light load (LIGHT_SYSTEMS: event, poll, ovs; access
# VLAN 10 on both ports), driven by tests/bench/vsw-pace on CPU 1 (one
# thread, two net_virtio_user ports): LIGHT_PPS evenly spaced 64-byte
# frames p0 -> p1 for LIGHT_SECS after 1 s, the switch's CPU time (every
# thread, schedstat) over that window and each frame's latency (p50, p99);
# then, for vswitchd only, IDLE_REPEAT frames each after 1 s of silence
# (the latency of the first frame after idle; the round's p50 and max).
#
# Then the idle cost: vswitchd in its default event mode with two
# vhost-user ports and a connected but silent client (testpmd rxonly, no
# --tx-first); its CPU time (utime+stime, /proc/PID/stat) over IDLE_SECS.
#
# Hugepages (HUGEPAGES=auto|yes|no, default auto): with auto or yes, and
# none reserved, the script reserves 1024 x 2 MiB (root), mounts a
# hugetlbfs in its temp dir, and restores both at the end; the three
# switches then run with hugepages (--in-memory), the client always with
# --no-huge.  With no (or auto without root) all run with --no-huge.
#
# Usage: tests/bench/bench-vswitch.sh [BUILD_DIR]
#   env: SECS (10) WARMUP (3) ROUNDS (3) IDLE_SECS (10) HUGEPAGES (auto)
#        SIZES ("64 1518") VLANS ("access trunk") SYSTEMS ("io vswitchd event ovs")
#        LIGHT_SYSTEMS ("event poll ovs"; "" for none) LIGHT_PPS (100000)
#        LIGHT_SECS (5) IDLE_REPEAT (10)
#        BURSTS (1) MAX_LOAD (unset: do not wait for a quiet machine)
#        KEEP_TMP=1 keeps the temp dir with every log.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
vswitchd=$build/tools/vswitchd
secs=${SECS:-10}
warmup=${WARMUP:-3}
idle_secs=${IDLE_SECS:-10}
huge_mode=${HUGEPAGES:-auto}
bursts=${BURSTS:-1}
rounds=${ROUNDS:-3}
rnd=1
sizes=${SIZES:-64 1518}
vlans=${VLANS:-access trunk}
systems=${SYSTEMS:-io vswitchd event ovs}
light_systems=${LIGHT_SYSTEMS-event poll ovs}
light_pps=${LIGHT_PPS:-100000}
light_secs=${LIGHT_SECS:-5}
idle_repeat=${IDLE_REPEAT:-10}
vsw_pace=$build/tests/bench/vsw-pace
schema=/usr/share/openvswitch/vswitch.ovsschema

ovs_vswitchd=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if [ ! -x "$ovs_vswitchd" ]; then
	ovs_vswitchd=$(update-alternatives --list ovs-vswitchd 2>/dev/null | grep dpdk | head -n1 || true)
fi
for t in dpdk-testpmd python3 ovsdb-tool ovsdb-server ovs-vsctl unshare; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
done
[ -x "$vsw_pace" ] || [ -z "$light_systems" ] || { echo "bench: no $vsw_pace; build it: ninja -C $build tests/bench/vsw-pace" >&2; exit 1; }
[ -x "$vswitchd" ] || { echo "bench: no $vswitchd; build it: meson setup build-release -Dtests=false --buildtype=release && ninja -C build-release tools/vswitchd" >&2; exit 1; }
[ -n "$ovs_vswitchd" ] && [ -x "$ovs_vswitchd" ] || { echo "bench: no ovs-vswitchd with DPDK (openvswitch-switch-dpdk)" >&2; exit 1; }
[ -r "$schema" ] || { echo "bench: no $schema" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench: needs 2 CPUs (0 and 1)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-vswitch.XXXXXX)
pids=()
old_nr_huge=
huge_mnt=

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

forget_pid() {
	local p keep=()
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]+"${keep[@]}"}")
}

# stop PID...: stops the given processes we started, last first.
stop() {
	local i
	for ((i = $#; i >= 1; i--)); do
		stop_pid "${!i}"
		forget_pid "${!i}"
	done
}

cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}"
	done
	if [ -n "$huge_mnt" ]; then
		umount "$huge_mnt" 2>/dev/null || echo "bench: cannot unmount $huge_mnt" >&2
	fi
	if [ -n "$old_nr_huge" ]; then
		echo "$old_nr_huge" >/proc/sys/vm/nr_hugepages ||
			echo "bench: cannot restore nr_hugepages=$old_nr_huge" >&2
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "bench: logs kept in $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# MAX_LOAD=0.5: wait (up to 20 minutes) for a 1-minute load average under it.
if [ -n "${MAX_LOAD:-}" ]; then
	for ((i = 0; i < 120; i++)); do
		python3 -c "import os, sys; sys.exit(os.getloadavg()[0] >= $MAX_LOAD)" && break
		[ "$i" = 0 ] && echo "bench-vswitch: waiting for load < $MAX_LOAD ($(cut -d' ' -f1 /proc/loadavg))" >&2
		sleep 10
	done
fi

# ------------------------------------------------------------ hugepages
use_huge=0
free_huge_mb() {
	awk '/^HugePages_Free:/ {f = $2} /^Hugepagesize:/ {s = $2} END {print int(f * s / 1024)}' /proc/meminfo
}
if [ "$huge_mode" != no ]; then
	if [ "$(free_huge_mb)" -lt 1536 ] && [ "$(id -u)" = 0 ] &&
		[ "$(cat /proc/sys/vm/nr_hugepages)" = 0 ]; then
		old_nr_huge=0
		echo 1024 >/proc/sys/vm/nr_hugepages || true
	fi
	if [ "$(free_huge_mb)" -ge 1536 ]; then
		# DPDK finds hugetlbfs mounts in /proc/mounts; ours lives in tmp.
		if ! grep -q '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts && [ "$(id -u)" = 0 ]; then
			mkdir -p "$tmp/huge"
			mount -t hugetlbfs -o pagesize=2M nodev "$tmp/huge" && huge_mnt=$tmp/huge
		fi
		use_huge=1
	elif [ "$huge_mode" = yes ]; then
		echo "bench: HUGEPAGES=yes but fewer than 1536 MiB of hugepages are free" >&2
		exit 1
	fi
fi
if [ "$use_huge" = 1 ]; then
	server_mem=(--in-memory)
	vsw_huge=yes
	huge_text="hugepages (2 MiB, --in-memory) for the switches, --no-huge for the client"
else
	server_mem=(--no-huge --no-shconf)
	vsw_huge=no
	huge_text="no hugepages (--no-huge) anywhere"
fi

# ------------------------------------------------------------ helpers
wait_for() { # PATH SECONDS PID: waits until PATH exists (and PID lives)
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -e "$1" ] && return 0
		kill -0 "$3" 2>/dev/null || { echo "bench: process $3 died waiting for $1" >&2; return 1; }
		sleep 0.1
	done
	echo "bench: timed out waiting for $1" >&2
	return 1
}

cat >"$tmp/rpc.py" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"jsonrpc": "2.0", "id": 1, "method": sys.argv[2],
       "params": json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}}
s.sendall((json.dumps(req) + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
r = json.loads(buf)
if "error" in r:
    sys.exit("vswitchd %s: %s" % (sys.argv[2], r["error"]["message"]))
print(json.dumps(r["result"]))
EOF
rpc() { python3 "$tmp/rpc.py" "$@"; }

# The client's Rx-pps figures: median over $secs periods after $warmup;
# the loss from its final statistics.  Prints "MPPS LOST".
cat >"$tmp/parse.py" <<'EOF'
import re, statistics, sys
log, warmup, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(log, errors="replace").read()
periods, cur, port = [], {}, None
for line in text.splitlines():
    m = re.search(r"NIC statistics for port (\d+)", line)
    if m:
        port = int(m.group(1))
        if port in cur:
            periods.append(cur)
            cur = {}
        continue
    m = re.search(r"Rx-pps:\s+(\d+)", line)
    if m and port is not None:
        cur[port] = int(m.group(1))
if len(cur) == 2:
    periods.append(cur)
sums = [p.get(0, 0) + p.get(1, 0) for p in periods]
# sums[0] is the show before "start tx_first"; then one per second.
window = sums[1 + warmup:1 + warmup + secs]
if len(window) < max(1, secs // 2):
    print("bench: %s: only %d periods with traffic" % (log, len(window)), file=sys.stderr)
if not window:
    window = [0]
# The last show, after "stop": what was sent and never came back.
tx = [int(x) for x in re.findall(r"TX-packets:\s+(\d+)\s+TX-errors", text)]
rx = [int(x) for x in re.findall(r"RX-packets:\s+(\d+)\s+RX-missed", text)]
lost = sum(tx[-2:]) - sum(rx[-2:]) if len(tx) >= 2 and len(rx) >= 2 else -1
print("%.3f %d %d" % (statistics.median(window) / 1e6, lost, len(window) if sum(window) else 0))
EOF

n_client=0
# run_client SOCK0 SOCK1 FRAME LOG [VLAN]: the traffic for one case; sets
# client_result to "MPPS LOST PERIODS".  The client runs interactive (-i)
# with its commands from a FIFO: --tx-first would send its burst the moment
# the links are up, before a switch may have enabled the other port's
# queues (Open vSwitch then drops the burst), and it can only send one
# burst.  So: wait for the prompt, let the switch settle 2 s, "start
# tx_first N", then "show port stats all" once a second (testpmd divides
# by the time since the last show).  In the trunk setup port 1's bursts
# are untagged and dropped by the trunk port, so twice as many are sent to
# keep 32 x BURSTS x 2 frames circulating.
client_result=
client_hook=
run_client() {
	local s0=$1 s1=$2 frame=$3 log=$4 vlan=${5:-access} pid n=$bursts fd i
	n_client=$((n_client + 1))
	[ "$vlan" = trunk ] && n=$((2 * bursts))
	rm -f "$log.fifo"
	mkfifo "$log.fifo"
	# Line-buffered, so that the echo of a command never splits a line.
	taskset -c 0,1 stdbuf -oL dpdk-testpmd -l 0,1 --main-lcore 0 --no-pci --no-huge --no-shconf -m 512 \
		--file-prefix "bv$$-cl$n_client" \
		--vdev "net_virtio_user0,path=$s0,queues=1,mac=02:00:00:00:00:00" \
		--vdev "net_virtio_user1,path=$s1,queues=1,mac=02:00:00:00:00:01" \
		-- -i --total-num-mbufs=16384 --forward-mode=mac \
		--eth-peer=0,02:00:00:00:00:01 --eth-peer=1,02:00:00:00:00:00 \
		--port-topology=loop --nb-cores=1 --txpkts=$((frame - 4)) \
		<"$log.fifo" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	exec {fd}>"$log.fifo"
	for ((i = 0; i < 300; i++)); do
		grep -q 'testpmd>' "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'testpmd>' "$log"; then
		echo "bench: the client did not start; see $log" >&2
		exec {fd}>&-
		stop "$pid"
		client_result="0.000 -1 0"
		return
	fi
	sleep 2
	echo "show port stats all" >&"$fd"
	echo "start tx_first $n" >&"$fd"
	for ((i = 0; i < warmup + secs + 1; i++)); do
		sleep 1
		echo "show port stats all" >&"$fd"
	done
	# Counters while the ports are still connected (OVS forgets a vhost
	# port's counters when its client goes).
	[ -z "$client_hook" ] || $client_hook
	echo "stop" >&"$fd"
	for ((i = 0; i < 50; i++)); do
		grep -q '^Done\.' "$log" && break
		sleep 0.1
	done
	echo "show port stats all" >&"$fd"
	sleep 0.5
	echo "quit" >&"$fd"
	exec {fd}>&-
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	stop "$pid"
	client_result=$(python3 "$tmp/parse.py" "$log" "$warmup" "$secs")
}

# start_vswitchd DIR MODE(poll|event) VLAN: starts it, sets vsw_pid.
vsw_pid=
start_vswitchd() {
	local d=$1 mode=$2 vlan=$3 pid args=()
	mkdir -p "$d"
	[ "$mode" = poll ] && args=(--poll --poll-cpu 0)
	"$vswitchd" --ctl "$d/ctl.sock" --db "$d/conf.json" --hugepages "$vsw_huge" \
		"${args[@]}" >"$d/vswitchd.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	vsw_pid=$pid
	wait_for "$d/ctl.sock" 30 "$pid"
	rpc "$d/ctl.sock" add-br '{"bridge":"br0"}' >/dev/null
	rpc "$d/ctl.sock" add-port "{\"bridge\":\"br0\",\"port\":\"p0\",\"type\":\"vhost-user\",\"socket\":\"$d/p0.sock\",\"tag\":10}" >/dev/null
	if [ "$vlan" = trunk ]; then
		rpc "$d/ctl.sock" add-port "{\"bridge\":\"br0\",\"port\":\"p1\",\"type\":\"vhost-user\",\"socket\":\"$d/p1.sock\",\"vlan_mode\":\"trunk\",\"trunks\":\"10\"}" >/dev/null
	else
		rpc "$d/ctl.sock" add-port "{\"bridge\":\"br0\",\"port\":\"p1\",\"type\":\"vhost-user\",\"socket\":\"$d/p1.sock\",\"tag\":10}" >/dev/null
	fi
	wait_for "$d/p1.sock" 10 "$pid"
}

# Switch-side drop counters of vswitchd, one line.
vswitchd_drops() {
	rpc "$1" stats '{"bridge":"br0"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
out = []
for p in r["ports"]:
    d = p.get("device", {})
    bits = ["rx %d tx %d" % (p["rx_packets"], p["tx_packets"])]
    for k in ("rx_dropped", "tx_dropped"):
        if p.get(k):
            bits.append("%s %d" % (k, p[k]))
    for k in ("rx_dropped", "tx_dropped", "rx_errors", "tx_errors"):
        if d.get(k):
            bits.append("device %s %d" % (k, d[k]))
    for k in ("rx_drops", "tx_drops"):
        for reason, n in sorted(p.get(k, {}).items()):
            bits.append("%s %s %d" % (k, reason, n))
    out.append("%s: %s" % (p["name"], ", ".join(bits)))
print("; ".join(out))'
}

results=$tmp/results.tsv
light=$tmp/light.tsv
notes=$tmp/notes.txt
: >"$results"
: >"$light"
: >"$notes"

case_vswitchd() { # FRAME VLAN MODE(poll|event)
	local d=$tmp/r$rnd-vsw-$3-$1-$2 name=vswitchd-$3
	start_vswitchd "$d" "$3" "$2"
	hook_vswitchd() { echo "r$rnd $name $1 $2: $(vswitchd_drops "$d/ctl.sock")" >>"$notes"; }
	client_hook="hook_vswitchd $1 $2"
	run_client "$d/p0.sock" "$d/p1.sock" "$1" "$d/client.log" "$2"
	client_hook=
	stop "$vsw_pid"
	grep -iE 'error|fail|drop' "$d/vswitchd.log" | grep -v 'FAILED: 0' | sed "s|^|r$rnd $name $1 $2 log: |" | head -n 5 >>"$notes" || true
	printf '%s\t%s\t%s\t%s\t%s\n' "$rnd" "$name" "$1" "$2" "$client_result" >>"$results"
}

case_io() { # FRAME
	local d=$tmp/r$rnd-io-$1 pid
	mkdir -p "$d"
	taskset -c 0,1 dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci "${server_mem[@]}" -m 512 \
		--file-prefix "bv$$-io" \
		--vdev "net_vhost0,iface=$d/p0.sock,queues=1" \
		--vdev "net_vhost1,iface=$d/p1.sock,queues=1" \
		-- --forward-mode=io --nb-cores=1 --total-num-mbufs=16384 --stats-period 1 \
		</dev/null >"$d/testpmd.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_for "$d/p1.sock" 30 "$pid"
	sleep 1
	run_client "$d/p0.sock" "$d/p1.sock" "$1" "$d/client.log"
	stop "$pid"
	python3 - "$d/testpmd.log" "r$rnd testpmd-io $1" >>"$notes" <<'EOF'
import re, sys
t = open(sys.argv[1], errors="replace").read()
d = re.findall(r"(RX|TX)-dropped:\s+(\d+)", t)
bad = [x for x in d if int(x[1])]
print("%s: final drops %s" % (sys.argv[2], bad if bad else "none"))
EOF
	printf '%s\ttestpmd-io\t%s\t-\t%s\n' "$rnd" "$1" "$client_result" >>"$results"
}

# start_ovs DIR VLAN: a private ovsdb-server and ovs-vswitchd-dpdk with
# bridge br0 and vhost-user ports DIR/p0 and DIR/p1; sets ovs_pids
# (ovsdb-server, ovs-vswitchd).
ovs_pids=()
start_ovs() {
	local d=$1 dbpid vspid vsctl extra
	mkdir -p "$d"
	export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
	ovsdb-tool create "$d/conf.db" "$schema"
	ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --unixctl="$d/ovsdb-server.ctl" \
		--pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" >/dev/null 2>&1 &
	dbpid=$!
	pids+=("$dbpid")
	wait_for "$d/db.sock" 10 "$dbpid"
	vsctl=(ovs-vsctl --db="unix:$d/db.sock" --timeout=30)
	# per-port-memory: the shared pool for MTU 1500 is 262144 mbufs, which
	# does not fit in 1 GiB (and takes 10 s to fault in without hugepages);
	# per port it is about 20000.
	# OVS adds --in-memory itself unless it is given --legacy-mem, which
	# --no-huge implies and which --in-memory refuses.
	extra="--no-pci -m 1024 --file-prefix bv$$-ovs"
	[ "$use_huge" = 1 ] || extra="$extra --no-huge --no-shconf --legacy-mem"
	"${vsctl[@]}" --no-wait init
	"${vsctl[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true \
		other_config:pmd-cpu-mask=0x1 other_config:dpdk-lcore-mask=0x2 \
		other_config:per-port-memory=true \
		"other_config:dpdk-extra=\"$extra\""
	# Its own network namespace: the netdev bridge's local port is a tap.
	unshare --net "$ovs_vswitchd" "unix:$d/db.sock" --unixctl="$d/ovs-vswitchd.ctl" \
		--pidfile="$d/ovs-vswitchd.pid" --log-file="$d/ovs-vswitchd.log" >/dev/null 2>&1 &
	vspid=$!
	pids+=("$vspid")
	"${vsctl[@]}" add-br br0 -- set Bridge br0 datapath_type=netdev
	"${vsctl[@]}" add-port br0 p0 tag=10 -- set Interface p0 type=dpdkvhostuser
	if [ "$2" = trunk ]; then
		"${vsctl[@]}" add-port br0 p1 vlan_mode=trunk trunks=10 -- set Interface p1 type=dpdkvhostuser
	else
		"${vsctl[@]}" add-port br0 p1 tag=10 -- set Interface p1 type=dpdkvhostuser
	fi
	wait_for "$d/p1" 30 "$vspid"
	sleep 1
	ovs_pids=("$dbpid" "$vspid")
}

# stop_ovs DIR LABEL: stops it and notes what it logged.
stop_ovs() {
	local d=$1
	stop "${ovs_pids[@]}"
	# Less the known noise: the deprecation notice for dpdkvhostuser, DPDK's
	# telemetry, no kernel datapath module, our own SIGTERM.
	grep -E '\|(ERR|WARN|EMER)\|' "$d/ovs-vswitchd.log" |
		grep -vE 'considered deprecated|TELEMETRY: No legacy|enumerate system datapaths|terminating with signal 15' | sed "s|^|$2 log: |" | head -n 8 >>"$notes" || true
	unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
}

case_ovs() { # FRAME VLAN
	local d=$tmp/r$rnd-ovs-$1-$2
	start_ovs "$d" "$2"
	hook_ovs() {
		ovs-appctl -t "$d/ovs-vswitchd.ctl" dpctl/show -s >"$d/dp-stats.txt" 2>&1 || true
		ovs-appctl -t "$d/ovs-vswitchd.ctl" dpif-netdev/pmd-stats-show >"$d/pmd-stats.txt" 2>&1 || true
	}
	client_hook=hook_ovs
	run_client "$d/p0" "$d/p1" "$1" "$d/client.log" "$2"
	client_hook=
	python3 - "$d/dp-stats.txt" "r$rnd ovs-dpdk $1 $2" >>"$notes" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
out, name = [], None
for line in text.splitlines():
    m = re.match(r"\s+port \d+: (\S+)", line)
    if m:
        name = m.group(1)
        continue
    m = re.match(r"\s+(RX|TX) packets:(\d+) errors:(\d+) dropped:(\d+)", line)
    if m and name:
        d, pk, err, drop = m.group(1).lower(), m.group(2), int(m.group(3)), int(m.group(4))
        bits = "%s %s %s" % (name, d, pk)
        if err:
            bits += " errors %d" % err
        if drop:
            bits += " dropped %d" % drop
        out.append(bits)
m = re.search(r"lookups: (.*)", text)
print("%s: %s%s" % (sys.argv[2], "; ".join(out) or text.strip()[:200],
                    "; lookups " + m.group(1) if m else ""))
EOF
	stop_ovs "$d" "r$rnd ovs-dpdk $1 $2"
	printf '%s\tovs-dpdk\t%s\t%s\t%s\n' "$rnd" "$1" "$2" "$client_result" >>"$results"
}

# run_pace SOCK0 SOCK1 LOG ARGS...: tests/bench/vsw-pace on the two
# sockets, on CPU 1 like the testpmd client.
run_pace() {
	local s0=$1 s1=$2 log=$3
	shift 3
	n_client=$((n_client + 1))
	taskset -c 1 "$vsw_pace" -l 1 --no-pci --no-huge --no-shconf -m 256 \
		--file-prefix "bv$$-cl$n_client" --log-level=warning \
		--vdev "net_virtio_user0,path=$s0,queues=1,mac=02:00:00:00:00:00" \
		--vdev "net_virtio_user1,path=$s1,queues=1,mac=02:00:00:00:00:01" \
		-- "$@" >"$log" 2>&1 || true
}

# case_light SYSTEM (event|poll|ovs): access VLAN 10 on both ports; CPU of
# the switch and latency at LIGHT_PPS evenly spaced 64-byte frames, then
# (not for OVS) the latency of a frame after 1 s of silence, IDLE_REPEAT
# times.  One row of light.tsv.
case_light() {
	local sys=$1 d=$tmp/r$rnd-light-$1 s0 s1 pid
	if [ "$sys" = ovs ]; then
		start_ovs "$d" access
		s0=$d/p0 s1=$d/p1 pid=${ovs_pids[1]}
	else
		start_vswitchd "$d" "$sys" access
		s0=$d/p0.sock s1=$d/p1.sock pid=$vsw_pid
	fi
	run_pace "$s0" "$s1" "$d/rate.log" --rate "$light_pps" --secs "$light_secs" --warmup 1 \
		--cpu-pid "$pid"
	: >"$d/idle.log"
	[ "$sys" = ovs ] || [ "$idle_repeat" = 0 ] ||
		run_pace "$s0" "$s1" "$d/idle.log" --gaps 1000000 --repeat "$idle_repeat"
	if [ "$sys" = ovs ]; then
		stop_ovs "$d" "r$rnd ovs-dpdk light"
	else
		stop "$vsw_pid"
	fi
	python3 - "$d/rate.log" "$d/idle.log" "$rnd" "$sys" >>"$light" <<'EOF2'
import re, sys
rate, idle = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def f(pat, text, default="nan"):
    m = re.search(pat, text, re.M)
    return m.group(1) if m else default
print("\t".join([sys.argv[3], sys.argv[4], f(r"switch_cpu_pct (\S+)", rate),
    f(r"^latency: .*p50_us (\S+)", rate), f(r"^latency: .*p99_us (\S+)", rate),
    f(r"sent_pps (\S+)", rate), f(r" lost (\d+)", rate, "-1"),
    f(r"^gap_us .*p50_us (\S+)", idle), f(r"^gap_us .*max_us (\S+)", idle),
    f(r"gaps: sent \d+ lost (\d+)", idle, "-")]))
EOF2
}

echo "bench-vswitch: $(date '+%Y-%m-%d %H:%M'), $(nproc) CPUs, $huge_text"
echo "bench-vswitch: load before: $(cut -d' ' -f1-3 /proc/loadavg); $secs s per case after $warmup s warm-up"
for ((rnd = 1; rnd <= rounds; rnd++)); do
[ "$rounds" = 1 ] || echo "bench-vswitch: round $rnd of $rounds" >&2
for frame in $sizes; do
	case " $systems " in *" io "*) case_io "$frame" ;; esac
	for vlan in $vlans; do
		case " $systems " in *" vswitchd "*) case_vswitchd "$frame" "$vlan" poll ;; esac
		case " $systems " in *" event "*) case_vswitchd "$frame" "$vlan" event ;; esac
		case " $systems " in *" ovs "*) case_ovs "$frame" "$vlan" ;; esac
	done
done
for sys in $light_systems; do
	case_light "$sys"
done
done
echo "bench-vswitch: load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ idle CPU
idle_line=
if [ "$idle_secs" -gt 0 ]; then
	d=$tmp/idle
	start_vswitchd "$d" event access
	vpid=$vsw_pid
	n_client=$((n_client + 1))
	taskset -c 0,1 dpdk-testpmd -l 0,1 --main-lcore 0 --no-pci --no-huge --no-shconf -m 512 \
		--file-prefix "bv$$-cl$n_client" \
		--vdev "net_virtio_user0,path=$d/p0.sock,queues=1,mac=02:00:00:00:00:00" \
		--vdev "net_virtio_user1,path=$d/p1.sock,queues=1,mac=02:00:00:00:00:01" \
		-- --total-num-mbufs=16384 --forward-mode=rxonly --nb-cores=1 --stats-period 5 \
		</dev/null >"$d/client.log" 2>&1 &
	cpid=$!
	pids+=("$cpid")
	sleep 3
	ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
	# The same in ns (run time of every thread), for a finer reading.
	run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{n += $1} END {print n}'; }
	t0=$(ticks "$vpid")
	n0=$(run_ns "$vpid")
	s0=$(date +%s.%N)
	sleep "$idle_secs"
	t1=$(ticks "$vpid")
	n1=$(run_ns "$vpid")
	s1=$(date +%s.%N)
	links=$(rpc "$d/ctl.sock" show | python3 -c 'import json,sys; print(",".join(p["name"] + "=" + p["link"] for b in json.load(sys.stdin)["bridges"] for p in b["ports"]))')
	stop "$vpid" "$cpid"
	idle_line=$(python3 -c "print('%.2f' % (($t1 - $t0) / $(getconf CLK_TCK) / ($s1 - $s0) * 100))")
	idle_ns=$(python3 -c "print('%.3f' % (($n1 - $n0) / 1e9 / ($s1 - $s0) * 100))")
	echo "vswitchd idle (event mode, client connected, links $links): $idle_line% of one core over ${idle_secs} s from utime+stime ($((t1 - t0)) ticks), $idle_ns% from schedstat" >>"$notes"
fi

# ------------------------------------------------------------ report
python3 - "$results" "$idle_line" "$light" <<'EOF'
import math, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
idle = sys.argv[2]
runs, lost, order = {}, {}, []
for rnd, sysname, frame, vlan, r in rows:
    key = (sysname, frame, vlan)
    if key not in runs:
        order.append(key)
    runs.setdefault(key, {})[rnd] = float(r.split()[0])
    lost[key] = max(lost.get(key, 0), int(r.split()[1]))
med = {k: statistics.median(v.values()) for k, v in runs.items()}
def ratio(a, b):
    """Ratio of the medians, and the range of the ratios within each round."""
    if a not in runs or b not in runs or not med[b]:
        return "-"
    text = "%.2fx" % (med[a] / med[b])
    per = [runs[a][r] / runs[b][r] for r in runs[a] if r in runs[b] and runs[b][r]]
    if len(per) > 1:
        text += " (%.2f-%.2f)" % (min(per), max(per))
    return text
print()
print("| system | frame (bytes, with FCS) | VLAN setup | Mpps (median) | each round | lost | vs OVS | vs testpmd-io | vs poll mode |")
print("|---|---:|---|---:|---|---:|---:|---:|---:|")
missed = []
def want(key, other, floor, what):
    if other in med and med[other] and med[key] / med[other] < floor:
        missed.append("%s %s %s: %.2fx %s (target %.1fx)" % (
            key[0], key[1], key[2], med[key] / med[other], what, floor))
for key in order:
    sysname, frame, vlan = key
    io = ("testpmd-io", frame, "-")
    ovs = ("ovs-dpdk", frame, vlan)
    poll = ("vswitchd-poll", frame, vlan)
    setup = {"access": "access/access", "trunk": "access/trunk", "-": "none (io)"}[vlan]
    each = " / ".join("%.2f" % runs[key][r] for r in sorted(runs[key], key=int))
    vsw = sysname.startswith("vswitchd")
    print("| %s | %s | %s | %.2f | %s | %d | %s | %s | %s |" % (
        sysname, frame, setup, med[key], each, lost[key],
        ratio(key, ovs) if vsw else "-",
        ratio(key, io) if sysname != "testpmd-io" else "-",
        ratio(key, poll) if sysname == "vswitchd-event" else "-"))
    if sysname == "vswitchd-poll":
        want(key, ovs, 1.0, "OVS")
        want(key, io, 0.8, "testpmd-io")
    if sysname == "vswitchd-event":
        want(key, ovs, 1.2, "OVS")
        want(key, poll, 0.9, "poll mode")
print()
print("ratios: of the medians; in brackets the lowest and highest ratio within one round")
print("lost: most frames sent minus frames received back in a round (64 in flight at the stop, + 64 dropped by the trunk port)")
light = [l.rstrip("\n").split("\t") for l in open(sys.argv[3]) if l.strip()]
if light:
    names = {"event": "vswitchd-event", "poll": "vswitchd-poll", "ovs": "ovs-dpdk"}
    by = {}
    for r in light:
        by.setdefault(r[1], []).append(r)
    print()
    print("| system | switch CPU, % of a core: median (each round) | frames/s sent | lost | latency p50 / p99 (us) | after 1 s silence: p50 / max (us) |")
    print("|---|---|---:|---:|---|---|")
    def med_of(rs, i):
        v = [float(r[i]) for r in rs if r[i] not in ("nan", "-")]
        return statistics.median(v) if v else math.nan
    for sysname, rs in by.items():
        each = " / ".join(r[2] for r in rs)
        idle_lat = "-" if sysname == "ovs" else "%.0f / %.0f" % (med_of(rs, 7), med_of(rs, 8))
        print("| %s | %.1f (%s) | %.0f | %d | %.0f / %.0f | %s |" % (
            names.get(sysname, sysname), med_of(rs, 2), each, med_of(rs, 5),
            max(int(r[6]) for r in rs), med_of(rs, 3), med_of(rs, 4), idle_lat))
        if sysname == "event":
            if not med_of(rs, 2) < 10:
                missed.append("event mode CPU at light load %.1f%% (target < 10%%)" % med_of(rs, 2))
            if not med_of(rs, 8) < 100:
                missed.append("event mode latency after 1 s silence, worst %.0f us (target p99 < 100 us)" % med_of(rs, 8))
    print()
    print("light load: evenly spaced 64-byte frames from vsw-pace, p0 -> p1; CPU: every thread of the switch (schedstat);")
    print("after 1 s silence: medians over the rounds of each round's p50 and max (max of IDLE_REPEAT frames stands for p99)")
if idle:
    print("vswitchd idle CPU (event mode, silent client): %s%% of one core (target < 1%%)%s"
          % (idle, "" if float(idle) < 1.0 else "  -- TARGET MISSED"))
    if float(idle) >= 1.0:
        missed.append("idle CPU %s%%" % idle)
print("targets (poll >= 1.0x OVS and >= 0.8x testpmd-io; event >= 1.2x OVS and >= 0.9x poll, < 10% CPU at light load, p99 < 100 us after 1 s idle, idle < 1%): " +
      ("met" if not missed else "MISSED: " + "; ".join(missed)))
EOF
echo
echo "notes:"
cat "$notes"
