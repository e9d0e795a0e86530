/* SPDX-License-Identifier: MIT */
/* bridge.c: everything in vswitch.h but the per-frame decision (forward.c):
 * bridges and their ports, the per-VLAN flood lists rebuilt on each port
 * change, counters, and the forwarding database calls over mac-table.c.
 * Configuration may allocate and fail; it leaves the bridge as it was when
 * it does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bridge.h"
#include "errmsg.h"

/* --- Bridges --- */

void vsw_bridge_opts_init(struct vsw_bridge_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->mac_capacity = VSW_MAC_CAPACITY_DEFAULT;
	opts->mac_aging_s = VSW_MAC_AGING_S_DEFAULT;
	opts->max_ports = VSW_MAX_PORTS_DEFAULT;
}

static int check_bridge_opts(const struct vsw_bridge_opts *opts, const char *name,
			     struct errmsg *err)
{
	if (strlen(name) == 0 || strlen(name) >= VSW_NAME_BYTES) {
		errmsg_set(err, "a bridge name has 1-%d bytes", VSW_NAME_BYTES - 1);
		return -EINVAL;
	}
	if (opts->mac_capacity == 0 || opts->mac_capacity > VSW_MAC_CAPACITY_MAX) {
		errmsg_set(err, "%s: MAC table capacity %u is not in 1-%u", name,
			   opts->mac_capacity, VSW_MAC_CAPACITY_MAX);
		return -EINVAL;
	}
	if (opts->mac_aging_s == 0) {
		errmsg_set(err, "%s: MAC aging time must be at least 1 s", name);
		return -EINVAL;
	}
	if (opts->max_ports == 0 || opts->max_ports >= VSW_PORT_NONE) {
		errmsg_set(err, "%s: max_ports %u is not in 1-%u", name, opts->max_ports,
			   VSW_PORT_NONE - 1);
		return -EINVAL;
	}
	return 0;
}

/* Without getrandom() the seed is still unknown to guests: the heap address
 * differs on every run under ASLR. */
static uint64_t pick_seed(const struct vsw_bridge *br)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed) || seed == 0) {
		seed = (uint64_t)(uintptr_t)br * 0x9e3779b97f4a7c15ull + 1;
	}
	return seed;
}

static int flood_rebuild(struct vsw_bridge *br);

static int bridge_alloc(struct vsw_bridge *br, const struct vsw_bridge_opts *opts)
{
	struct vsw_mac_table_opts mopts = {
		.capacity = opts->mac_capacity,
		.aging_ms = (uint64_t)opts->mac_aging_s * 1000,
		.n_ports = opts->max_ports,
		.port_limit = opts->port_mac_limit,
		.seed = opts->hash_seed ? opts->hash_seed : pick_seed(br),
	};
	int ret;

	br->ports = calloc(opts->max_ports, sizeof(*br->ports));
	br->vlan_counters = calloc(VSW_VID_SLOTS, sizeof(*br->vlan_counters));
	if (!br->ports || !br->vlan_counters) {
		return -ENOMEM;
	}
	ret = vsw_mac_table_create(&mopts, &br->macs);
	if (ret < 0) {
		return ret;
	}
	return flood_rebuild(br);
}

int vsw_bridge_create(const struct vsw_bridge_opts *opts, struct vsw_bridge **brp,
		      struct errmsg *err)
{
	const char *name = opts->name ? opts->name : "bridge";
	struct vsw_bridge *br;
	int ret;

	ret = check_bridge_opts(opts, name, err);
	if (ret < 0) {
		return ret;
	}
	br = calloc(1, sizeof(*br));
	if (!br) {
		errmsg_set(err, "%s: out of memory", name);
		return -ENOMEM;
	}
	strcpy(br->name, name);
	br->max_ports = opts->max_ports;
	br->mac_capacity = opts->mac_capacity;
	br->port_mac_limit = opts->port_mac_limit;
	ret = bridge_alloc(br, opts);
	if (ret < 0) {
		errmsg_set(err, "%s: out of memory for %u ports and %u MAC entries", name,
			   opts->max_ports, opts->mac_capacity);
		vsw_bridge_destroy(br);
		return ret;
	}
	*brp = br;
	return 0;
}

void vsw_bridge_destroy(struct vsw_bridge *br)
{
	uint16_t i;

	if (!br) {
		return;
	}
	for (i = 0; br->ports && i < br->max_ports; i++) {
		vlan_port_destroy(br->ports[i].vlan);
	}
	free(br->flood.off);
	free(br->flood.ports);
	vsw_mac_table_destroy(br->macs);
	free(br->vlan_counters);
	free(br->ports);
	free(br);
}

const char *vsw_bridge_name(const struct vsw_bridge *br)
{
	return br->name;
}

uint16_t vsw_bridge_max_ports(const struct vsw_bridge *br)
{
	return br->max_ports;
}

uint32_t vsw_bridge_age(struct vsw_bridge *br, uint64_t now_ms)
{
	return vsw_mac_age(br->macs, now_ms);
}

/* --- Flood lists --- */

/* Builds every VLAN's member list anew and swaps it in; on -ENOMEM the old
 * lists stay.  Membership is libvlan's vlan_port_is_member(), the same
 * answer the egress decision gives, asked once per port change rather than
 * once per frame. */
static int flood_rebuild(struct vsw_bridge *br)
{
	struct vsw_flood_lists fl;
	uint32_t n = 0;
	uint16_t vid, p;

	fl.off = calloc(VSW_VID_SLOTS + 1, sizeof(*fl.off));
	if (!fl.off) {
		return -ENOMEM;
	}
	for (vid = VLAN_VID_MIN; vid <= VLAN_VID_MAX; vid++) {
		for (p = 0; p < br->max_ports; p++) {
			n += br->ports[p].in_use && vlan_port_is_member(br->ports[p].vlan, vid);
		}
	}
	fl.ports = malloc((n ? n : 1) * sizeof(*fl.ports));
	if (!fl.ports) {
		free(fl.off);
		return -ENOMEM;
	}
	n = 0;
	for (vid = 0; vid < VSW_VID_SLOTS; vid++) {
		fl.off[vid] = n;
		for (p = 0; vid >= VLAN_VID_MIN && p < br->max_ports; p++) {
			if (br->ports[p].in_use && vlan_port_is_member(br->ports[p].vlan, vid)) {
				fl.ports[n++] = p;
			}
		}
	}
	fl.off[VSW_VID_SLOTS] = n;
	free(br->flood.off);
	free(br->flood.ports);
	br->flood = fl;
	return 0;
}

/* --- Ports --- */

void vsw_port_opts_init(struct vsw_port_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	vlan_port_opts_init(&opts->vlan);
}

static int check_port_opts(const struct vsw_bridge *br, const struct vsw_port_opts *opts,
			   struct errmsg *err)
{
	const char *type = opts->type ? opts->type : "";

	if (!opts->name || strlen(opts->name) == 0 || strlen(opts->name) >= VSW_NAME_BYTES) {
		errmsg_set(err, "%s: a port name has 1-%d bytes", br->name, VSW_NAME_BYTES - 1);
		return -EINVAL;
	}
	if (strlen(type) >= VSW_PORT_TYPE_BYTES) {
		errmsg_set(err, "%s: port %s: type '%s' is longer than %d bytes", br->name,
			   opts->name, type, VSW_PORT_TYPE_BYTES - 1);
		return -EINVAL;
	}
	if (vsw_port_find(br, opts->name) >= 0) {
		errmsg_set(err, "%s: there is a port named %s already", br->name, opts->name);
		return -EEXIST;
	}
	return 0;
}

static int free_slot(const struct vsw_bridge *br)
{
	uint16_t p;

	for (p = 0; p < br->max_ports; p++) {
		if (!br->ports[p].in_use) {
			return p;
		}
	}
	return -ENOSPC;
}

/* libvlan's sentence names no port; prefix the bridge and the port. */
static int make_vlan_port(const struct vsw_bridge *br, const char *name,
			  const struct vlan_port_opts *opts, struct vlan_port **vlanp,
			  struct errmsg *err)
{
	struct errmsg why = {{0}};
	int ret;

	ret = vlan_port_create(opts, vlanp, &why);
	if (ret < 0) {
		errmsg_set(err, "%s: port %s: %s", br->name, name, why.msg);
	}
	return ret;
}

int vsw_port_add(struct vsw_bridge *br, const struct vsw_port_opts *opts, uint16_t *port_nop,
		 struct errmsg *err)
{
	struct vsw_bport *port;
	struct vlan_port *vlan;
	int ret, slot;

	ret = check_port_opts(br, opts, err);
	if (ret < 0) {
		return ret;
	}
	slot = free_slot(br);
	if (slot < 0) {
		errmsg_set(err, "%s: all %u ports are in use", br->name, br->max_ports);
		return slot;
	}
	ret = make_vlan_port(br, opts->name, &opts->vlan, &vlan, err);
	if (ret < 0) {
		return ret;
	}
	port = &br->ports[slot];
	memset(port, 0, sizeof(*port));
	port->in_use = true;
	port->vlan = vlan;
	ret = flood_rebuild(br);
	if (ret < 0) {
		errmsg_set(err, "%s: port %s: out of memory", br->name, opts->name);
		goto out_release;
	}
	strcpy(port->name, opts->name);
	strcpy(port->type, opts->type ? opts->type : "");
	port->tx_ctx = opts->tx_ctx;
	port->mac_limit = opts->mac_limit;
	vsw_mac_set_port_limit(br->macs, (uint16_t)slot,
			       opts->mac_limit ? opts->mac_limit : br->port_mac_limit);
	/* The number may have served a removed port: its losses are not ours. */
	vsw_mac_clear_port_stats(br->macs, (uint16_t)slot);
	*port_nop = (uint16_t)slot;
	return 0;
out_release:
	port->in_use = false;
	port->vlan = NULL;
	vlan_port_destroy(vlan);
	return ret;
}

int vsw_port_remove(struct vsw_bridge *br, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	if (!port) {
		return -ENODEV;
	}
	vsw_mac_flush(br->macs, port_no, 0, true);
	port->in_use = false;
	/* Shrinking needs memory too; should it fail, the stale lists only
	 * name a port that is no longer in use, which forwarding skips. */
	(void)flood_rebuild(br);
	vlan_port_destroy(port->vlan);
	memset(port, 0, sizeof(*port));
	return 0;
}

static bool vid_left(uint16_t vid, void *arg)
{
	return !vlan_port_is_member(arg, vid);
}

int vsw_port_set_vlan(struct vsw_bridge *br, uint16_t port_no, const struct vlan_port_opts *vlan,
		      struct errmsg *err)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);
	struct vlan_port *old, *fresh;
	int ret;

	if (!port) {
		errmsg_set(err, "%s: no port %u", br->name, port_no);
		return -ENODEV;
	}
	ret = make_vlan_port(br, port->name, vlan, &fresh, err);
	if (ret < 0) {
		return ret;
	}
	old = port->vlan;
	port->vlan = fresh;
	ret = flood_rebuild(br);
	if (ret < 0) {
		port->vlan = old;
		vlan_port_destroy(fresh);
		errmsg_set(err, "%s: port %s: out of memory", br->name, port->name);
		return ret;
	}
	vsw_mac_flush_vids(br->macs, port_no, vid_left, fresh);
	vlan_port_destroy(old);
	return 0;
}

int vsw_port_set_mac_limit(struct vsw_bridge *br, uint16_t port_no, uint32_t mac_limit)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	if (!port) {
		return -ENODEV;
	}
	port->mac_limit = mac_limit;
	return vsw_mac_set_port_limit(br->macs, port_no,
				      mac_limit ? mac_limit : br->port_mac_limit);
}

int vsw_port_find(const struct vsw_bridge *br, const char *name)
{
	uint16_t p;

	for (p = 0; name && p < br->max_ports; p++) {
		if (br->ports[p].in_use && strcmp(br->ports[p].name, name) == 0) {
			return p;
		}
	}
	return -ENOENT;
}

int vsw_port_next(const struct vsw_bridge *br, int after)
{
	int p;

	for (p = after < 0 ? 0 : after + 1; p < br->max_ports; p++) {
		if (br->ports[p].in_use) {
			return p;
		}
	}
	return -ENOENT;
}

const char *vsw_port_name(const struct vsw_bridge *br, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	return port ? port->name : NULL;
}

const char *vsw_port_type(const struct vsw_bridge *br, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	return port ? port->type : NULL;
}

const struct vlan_port *vsw_port_vlan(const struct vsw_bridge *br, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	return port ? port->vlan : NULL;
}

void *vsw_port_tx_ctx(const struct vsw_bridge *br, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	return port ? port->tx_ctx : NULL;
}

/* --- Counters --- */

int vsw_port_get_counters(const struct vsw_bridge *br, uint16_t port_no,
			  struct vsw_counters *out)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	if (!port) {
		return -ENODEV;
	}
	*out = port->counters;
	return 0;
}

int vsw_vlan_get_counters(const struct vsw_bridge *br, uint16_t vid, struct vsw_counters *out)
{
	if (vid < VLAN_VID_MIN || vid > VLAN_VID_MAX) {
		return -EINVAL;
	}
	*out = br->vlan_counters[vid];
	return 0;
}

static uint64_t drops_sum(const uint64_t *drops)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < VSW_DROP_COUNT; i++) {
		sum += drops[i];
	}
	return sum;
}

uint64_t vsw_counters_rx_dropped(const struct vsw_counters *c)
{
	return drops_sum(c->rx_drops);
}

uint64_t vsw_counters_tx_dropped(const struct vsw_counters *c)
{
	return drops_sum(c->tx_drops);
}

void vsw_port_count_tx_failed(struct vsw_bridge *br, uint16_t port_no, uint32_t n_pkts)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	if (port) {
		port->counters.tx_drops[VSW_DROP_TX_FAILED] += n_pkts;
	}
}

/* --- Forwarding database --- */

int vsw_fdb_add_static(struct vsw_bridge *br, uint16_t vid, const uint8_t *mac, uint16_t port_no)
{
	struct vsw_bport *port = vsw_bport_get(br, port_no);

	if (!port) {
		return -ENODEV;
	}
	/* An entry no frame could follow would only hide the station. */
	if (!vlan_port_is_member(port->vlan, vid)) {
		return -EINVAL;
	}
	return vsw_mac_add_static(br->macs, vid, mac, port_no);
}

int vsw_fdb_del(struct vsw_bridge *br, uint16_t vid, const uint8_t *mac)
{
	return vsw_mac_del(br->macs, vid, mac);
}

uint32_t vsw_fdb_flush(struct vsw_bridge *br, uint16_t port_no, uint16_t vid, bool statics)
{
	return vsw_mac_flush(br->macs, port_no, vid, statics);
}

struct dump_ctx {
	uint64_t now_ms;
	int (*cb)(const struct vsw_fdb_entry *entry, void *arg);
	void *arg;
};

static int dump_one(const struct vsw_mac_info *info, void *arg)
{
	const struct dump_ctx *ctx = arg;
	struct vsw_fdb_entry entry;

	memcpy(entry.mac, info->mac, sizeof(entry.mac));
	entry.vid = info->vid;
	entry.port_no = info->port;
	entry.is_static = info->is_static;
	entry.age_ms = 0;
	if (!info->is_static && ctx->now_ms > info->seen_ms) {
		entry.age_ms = ctx->now_ms - info->seen_ms;
	}
	return ctx->cb(&entry, ctx->arg);
}

int vsw_fdb_dump(const struct vsw_bridge *br, uint64_t now_ms,
		 int (*cb)(const struct vsw_fdb_entry *entry, void *arg), void *arg)
{
	struct dump_ctx ctx = {.now_ms = now_ms, .cb = cb, .arg = arg};

	return vsw_mac_foreach(br->macs, now_ms, dump_one, &ctx);
}

int vsw_fdb_lookup(const struct vsw_bridge *br, uint16_t vid, const uint8_t *mac,
		   uint64_t now_ms)
{
	uint16_t port;

	if (vid < VLAN_VID_MIN || vid > VLAN_VID_MAX || !mac) {
		return -ENOENT;
	}
	port = vsw_mac_lookup(br->macs, vid, mac, now_ms);
	return port == VSW_MAC_NO_PORT ? -ENOENT : port;
}

void vsw_fdb_get_stats(const struct vsw_bridge *br, struct vsw_fdb_stats *stats)
{
	struct vsw_mac_stats ms;

	vsw_mac_get_stats(br->macs, &ms);
	stats->entries = ms.entries;
	stats->static_entries = ms.static_entries;
	stats->capacity = br->mac_capacity;
	stats->learned = ms.learned;
	stats->moved = ms.moved;
	stats->expired = ms.expired;
	stats->evicted_full = ms.evicted_full;
	stats->evicted_limit = ms.evicted_limit;
	stats->static_conflicts = ms.static_conflicts;
	stats->no_space = ms.no_space;
}

int vsw_port_get_fdb_stats(const struct vsw_bridge *br, uint16_t port_no,
			   struct vsw_port_fdb_stats *stats)
{
	struct vsw_mac_port_stats ps;

	if (!vsw_bport_get(br, port_no) ||
	    vsw_mac_get_port_stats(br->macs, port_no, &ps) < 0) {
		return -ENODEV;
	}
	stats->entries = ps.entries;
	stats->limit = ps.limit;
	stats->learned = ps.learned;
	stats->evicted_limit = ps.evicted_limit;
	stats->evicted_full = ps.evicted_full;
	return 0;
}
