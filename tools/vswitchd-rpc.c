/* SPDX-License-Identifier: MIT */
/* vswitchd-rpc.c: the methods of docs/vswitch-rpc.md.  Each one checks its
 * parameters, calls the datapath (vswitch-dp.h) or, under its lock, the
 * switch core, and builds its result.  Parameter errors and -EINVAL from
 * the libraries answer "invalid params"; everything else "failed". */
#include <errno.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vlan.h"
#include "vswitch-dp.h"
#include "vswitch.h"
#include "vswitchd.h"

_Static_assert(VSW_VLAN_MAX == VLAN_VID_MAX, "one VLAN range for client and daemon");

/* sun_path less its NUL. */
#define SOCKET_PATH_MAX_BYTES 107

#define DP(c) vswd_dp(rpc_call_ctx(c))

#ifndef VSW_VERSION
#define VSW_VERSION "unknown"
#endif

/* ---------------------------------------------------------- Parameters */

/* A name member (bridge, port): the character set of the protocol. */
static int get_name(struct rpc_call *c, const char *key, bool required, const char **outp)
{
	int ret = rpc_get_str(c, key, required, outp);

	if (ret == 0 && *outp && !vsw_name_valid(*outp)) {
		errmsg_set(rpc_call_err(c), "bad %s name '%s': use 1-%d of A-Z a-z 0-9 _ . : -", key, *outp,
			   VSW_NAME_BYTES - 1);
		return -EINVAL;
	}
	return ret;
}

/* An integer member in [min, max]; returns 1 if present, 0 if absent.
 * VLAN ids get the protocol's own sentence. */
static int get_uint(struct rpc_call *c, const char *key, uint64_t min, uint64_t max,
		    uint64_t *outp)
{
	struct json_object *v = rpc_param(c, key);
	int ret = rpc_get_uint(c, key, min, max, outp);

	if (ret == -EINVAL && json_object_is_type(v, json_type_int) &&
	    (strcmp(key, "tag") == 0 || strcmp(key, "vlan") == 0)) {
		errmsg_set(rpc_call_err(c), "bad VLAN id %lld: must be 1-%d",
			   (long long)json_object_get_int64(v), VLAN_VID_MAX);
	}
	return ret;
}

static int parse_mac(struct rpc_call *c, const char *text, uint8_t *mac)
{
	unsigned int b[6];
	char tail;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6) {
		errmsg_set(rpc_call_err(c), "bad MAC address '%s': want six hex bytes like 52:54:00:12:34:56",
			   text);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++) {
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static void format_mac(const uint8_t *mac, char *buf, size_t size)
{
	snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
}

/* ---------------------------------------------------------- VLAN opts */

/* A port's VLAN settings being put together from parameters, starting
 * from its current ones (set-port) or the defaults (add-port). */
struct vlan_edit {
	struct vlan_port_opts opts;
	struct vlan_set *trunks;
	struct vlan_set *cvlans;
};

static int vlan_edit_init(struct vlan_edit *e, const struct vlan_port *cur)
{
	int ret;

	memset(e, 0, sizeof(*e));
	vlan_port_opts_init(&e->opts);
	ret = vlan_set_create(&e->trunks);
	if (ret == 0) {
		ret = vlan_set_create(&e->cvlans);
	}
	if (ret < 0) {
		return ret;
	}
	if (cur) {
		e->opts.mode = vlan_port_mode(cur);
		e->opts.tag = vlan_port_tag(cur);
		if (e->opts.mode == VLAN_MODE_DOT1Q_TUNNEL) {
			e->opts.tunnel_tpid = vlan_port_tpid(cur);
		}
		vlan_set_copy(e->trunks, vlan_port_trunks(cur));
		if (vlan_port_cvlans(cur)) {
			vlan_set_copy(e->cvlans, vlan_port_cvlans(cur));
			e->opts.cvlans = e->cvlans;
		}
	}
	e->opts.trunks = e->trunks;
	return 0;
}

static void vlan_edit_free(struct vlan_edit *e)
{
	vlan_set_destroy(e->trunks);
	vlan_set_destroy(e->cvlans);
}

/* Applies vlan_mode, tag, trunks and cvlans from the parameters.  A new
 * mode starts from that mode's defaults: an access port's tag is not
 * silently kept as a trunk's native VLAN. */
static int vlan_edit_apply(struct rpc_call *c, struct vlan_edit *e, bool *anyp)
{
	const char *mode, *trunks, *cvlans;
	uint64_t tag;
	int ret, has_tag;

	if ((ret = rpc_get_str(c, "vlan_mode", false, &mode)) < 0 ||
	    (ret = rpc_get_str(c, "trunks", false, &trunks)) < 0 ||
	    (ret = rpc_get_str(c, "cvlans", false, &cvlans)) < 0) {
		return ret;
	}
	has_tag = get_uint(c, "tag", 1, VLAN_VID_MAX, &tag);
	if (has_tag < 0) {
		return has_tag;
	}
	*anyp = mode || trunks || cvlans || has_tag;
	if (mode) {
		enum vlan_port_mode m;

		if (vlan_port_mode_parse(mode, &m) < 0) {
			errmsg_set(rpc_call_err(c), "bad VLAN mode '%s': want access, trunk, native-untagged, "
					   "native-tagged or dot1q-tunnel", mode);
			return -EINVAL;
		}
		e->opts.mode = m;
		e->opts.tag = 0;
		vlan_set_clear(e->trunks);
		e->opts.cvlans = NULL;
	}
	if (has_tag) {
		e->opts.tag = (uint16_t)tag;
	}
	if (e->opts.mode == VLAN_MODE_ACCESS && e->opts.tag == 0) {
		e->opts.tag = 1; /* Open vSwitch's and every switch's default VLAN */
	}
	if (trunks && vlan_set_parse(e->trunks, trunks, rpc_call_err(c)) < 0) {
		return -EINVAL;
	}
	if (cvlans) {
		if (vlan_set_parse(e->cvlans, cvlans, rpc_call_err(c)) < 0) {
			return -EINVAL;
		}
		e->opts.cvlans = e->cvlans;
	}
	return 0;
}

static void vlan_to_json(const struct vlan_port *v, struct json_object *o)
{
	char text[VLAN_SET_TEXT_MAX_BYTES];

	json_object_object_add(o, "vlan_mode",
			       json_object_new_string(vlan_port_mode_name(vlan_port_mode(v))));
	if (vlan_port_tag(v)) {
		json_object_object_add(o, "tag", json_object_new_int(vlan_port_tag(v)));
	}
	if (vlan_port_mode(v) != VLAN_MODE_ACCESS && vlan_port_mode(v) != VLAN_MODE_DOT1Q_TUNNEL) {
		vlan_set_format(vlan_port_trunks(v), text, sizeof(text));
		json_object_object_add(o, "trunks", json_object_new_string(text));
	}
	if (vlan_port_cvlans(v)) {
		vlan_set_format(vlan_port_cvlans(v), text, sizeof(text));
		json_object_object_add(o, "cvlans", json_object_new_string(text));
	}
}

/* ------------------------------------------------------------ Bridges */

static int m_add_br(struct rpc_call *c)
{
	struct vsw_bridge_opts opts;
	const char *name;
	uint64_t v;
	int ret;

	vsw_bridge_opts_init(&opts);
	if ((ret = get_name(c, "bridge", true, &name)) < 0) {
		return ret;
	}
	opts.name = name;
	if ((ret = get_uint(c, "mac_aging_s", 1, UINT32_MAX, &v)) < 0) {
		return ret;
	}
	if (ret) {
		opts.mac_aging_s = (uint32_t)v;
	}
	if ((ret = get_uint(c, "mac_capacity", 1, VSW_MAC_CAPACITY_MAX, &v)) < 0) {
		return ret;
	}
	if (ret) {
		opts.mac_capacity = (uint32_t)v;
	}
	ret = vsw_dp_bridge_add(DP(c), &opts, rpc_call_err(c));
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_del_br(struct rpc_call *c)
{
	const char *name;
	int ret = get_name(c, "bridge", true, &name);

	if (ret == 0) {
		ret = vsw_dp_bridge_del(DP(c), name, rpc_call_err(c));
	}
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

/* -------------------------------------------------------------- Ports */

/* An uplink on a loopback interface would hand every frame the switch
 * sends straight back to it, and one on an interface that already is a
 * port (a host port's tap) would join the switch to itself: either makes a
 * forwarding loop, so both are refused. */
static int check_uplink(struct rpc_call *c, const char *ifname)
{
	struct ifreq ifr = {0};
	struct vsw_dp_bridge_info br;
	int fd, ret = 0;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK)) {
		ret = -EINVAL;
		errmsg_set(rpc_call_err(c), "uplink on %s refused: a loopback interface sends every "
			   "frame back to the switch", ifname);
	}
	if (fd >= 0) {
		close(fd);
	}
	vsw_dp_lock(DP(c));
	for (unsigned int i = 0; ret == 0 && vsw_dp_bridge_at(DP(c), i, &br) == 0; i++) {
		for (uint16_t p = 0; ret == 0 && p < vsw_bridge_max_ports(br.bridge); p++) {
			const char *name = vsw_port_name(br.bridge, p);
			struct vsw_dp_port_info info;

			if (name && vsw_dp_port_info(DP(c), name, &info) == 0 &&
			    strncmp(info.type, "vhost-user", 10) != 0 &&
			    strcmp(info.path, ifname) == 0) {
				ret = -EADDRINUSE;
				errmsg_set(rpc_call_err(c), "uplink on %s refused: the interface already "
					   "is port %s of bridge %s", ifname, name, br.name);
			}
		}
	}
	vsw_dp_unlock(DP(c));
	return ret;
}

static int m_add_port(struct rpc_call *c)
{
	struct vsw_dp_port_config cfg;
	struct vlan_edit e;
	const char *bridge, *sock, *ifname;
	uint64_t v;
	uint16_t port_no;
	bool any;
	int ret;

	vsw_dp_port_config_init(&cfg);
	if ((ret = get_name(c, "bridge", true, &bridge)) < 0 ||
	    (ret = get_name(c, "port", true, &cfg.name)) < 0 ||
	    (ret = rpc_get_str(c, "type", true, &cfg.type)) < 0 ||
	    (ret = rpc_get_path(c, "socket", false, SOCKET_PATH_MAX_BYTES, &sock)) < 0 ||
	    (ret = rpc_get_str(c, "ifname", false, &ifname)) < 0) {
		return ret;
	}
	if (strncmp(cfg.type, "vhost-user", 10) == 0) {
		if (!sock) {
			errmsg_set(rpc_call_err(c), "port %s: type %s needs a socket path", cfg.name, cfg.type);
			return -EINVAL;
		}
		cfg.path = sock;
	} else {
		cfg.path = ifname ? ifname : cfg.name;
		if (strcmp(cfg.type, "uplink") == 0 && (ret = check_uplink(c, cfg.path)) < 0) {
			return ret;
		}
	}
	if ((ret = get_uint(c, "queues", 1, VSW_PORT_MAX_QUEUES, &v)) < 0) {
		return ret;
	}
	cfg.queues = ret ? (uint16_t)v : 8;
	if ((ret = get_uint(c, "mtu", VSW_PORT_MTU_MIN, VSW_PORT_MTU_MAX, &v)) < 0) {
		return ret;
	}
	cfg.mtu_bytes = ret ? (uint32_t)v : 1500;
	if ((ret = get_uint(c, "mac_limit", 0, UINT32_MAX, &v)) < 0) {
		return ret;
	}
	cfg.mac_limit = ret ? (uint32_t)v : 0;
	ret = vlan_edit_init(&e, NULL);
	if (ret == 0) {
		ret = vlan_edit_apply(c, &e, &any);
	}
	if (ret == 0) {
		cfg.vlan = e.opts;
		ret = vsw_dp_port_add(DP(c), bridge, &cfg, &port_no, rpc_call_err(c));
	}
	vlan_edit_free(&e);
	/* rte_vhost creates the socket with the umask's mode; QEMU running
	 * in the socket group needs 0660 (docs/vswitch-rpc.md). */
	if (ret == 0 && strcmp(cfg.type, "vhost-user") == 0) {
		ret = rpc_unix_set_mode(sock, 0660, vswd_socket_group(rpc_call_ctx(c)),
					rpc_call_err(c));
		if (ret < 0) {
			vsw_dp_port_del(DP(c), cfg.name, NULL);
		}
	}
	if (ret == 0) {
		rpc_call_set_changed(c);
		json_object_object_add(rpc_call_result(c), "port_no", json_object_new_int(port_no));
	}
	return ret;
}

static int m_del_port(struct rpc_call *c)
{
	struct vsw_dp_port_info info;
	const char *bridge, *port;
	int ret;

	if ((ret = get_name(c, "port", true, &port)) < 0 ||
	    (ret = get_name(c, "bridge", false, &bridge)) < 0) {
		return ret;
	}
	if (bridge) {
		vsw_dp_lock(DP(c));
		ret = vsw_dp_port_info(DP(c), port, &info);
		if (ret == 0 && strcmp(info.bridge, bridge) != 0) {
			errmsg_set(rpc_call_err(c), "port %s is on bridge %s, not %s", port, info.bridge,
				   bridge);
			ret = -EINVAL;
		}
		vsw_dp_unlock(DP(c));
		if (ret == -EINVAL) {
			return ret;
		}
	}
	ret = vsw_dp_port_del(DP(c), port, rpc_call_err(c));
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_set_port(struct rpc_call *c)
{
	struct vsw_dp_port_info info;
	struct vsw_dp_bridge_info br;
	struct vlan_edit e;
	const char *port;
	uint64_t limit;
	bool any = false;
	int ret, has_limit;

	if ((ret = get_name(c, "port", true, &port)) < 0) {
		return ret;
	}
	has_limit = get_uint(c, "mac_limit", 0, UINT32_MAX, &limit);
	if (has_limit < 0) {
		return has_limit;
	}
	vsw_dp_lock(DP(c));
	ret = vsw_dp_port_info(DP(c), port, &info);
	if (ret == 0) {
		vsw_dp_bridge_find(DP(c), info.bridge, &br);
		ret = vlan_edit_init(&e, vsw_port_vlan(br.bridge, info.port_no));
	}
	vsw_dp_unlock(DP(c));
	if (ret == -ENODEV) {
		errmsg_set(rpc_call_err(c), "no port named %s", port);
		return ret;
	}
	if (ret < 0) {
		return ret;
	}
	ret = vlan_edit_apply(c, &e, &any);
	if (ret == 0 && !any && !has_limit) {
		errmsg_set(rpc_call_err(c), "set-port %s: nothing to set", port);
		ret = -EINVAL;
	}
	if (ret == 0 && any) {
		ret = vsw_dp_port_set_vlan(DP(c), port, &e.opts, rpc_call_err(c));
	}
	if (ret == 0 && has_limit) {
		ret = vsw_dp_port_set_mac_limit(DP(c), port, (uint32_t)limit, rpc_call_err(c));
	}
	vlan_edit_free(&e);
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

/* --------------------------------------------------------------- Show */

/* One port as add-port parameters ('config') or for show. */
static struct json_object *port_json(struct vsw_dp *dp, const struct vsw_dp_bridge_info *br,
				     uint16_t port_no, bool config)
{
	const char *name = vsw_port_name(br->bridge, port_no);
	struct vsw_dp_port_info info;
	struct json_object *o;

	if (!name || vsw_dp_port_info(dp, name, &info) < 0) {
		return NULL;
	}
	o = json_object_new_object();
	if (config) {
		json_object_object_add(o, "bridge", json_object_new_string(br->name));
		json_object_object_add(o, "port", json_object_new_string(name));
	} else {
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "port_no", json_object_new_int(port_no));
	}
	json_object_object_add(o, "type", json_object_new_string(info.type));
	json_object_object_add(o, strncmp(info.type, "vhost-user", 10) == 0 ? "socket" : "ifname",
			       json_object_new_string(info.path));
	vlan_to_json(vsw_port_vlan(br->bridge, port_no), o);
	json_object_object_add(o, "queues", json_object_new_int(info.queues));
	json_object_object_add(o, "mtu", json_object_new_int64(info.mtu_bytes));
	json_object_object_add(o, "mac_limit", json_object_new_int64(info.mac_limit));
	if (!config) {
		json_object_object_add(o, "link", json_object_new_string(info.link_up ? "up"
										      : "down"));
		if (info.capture_file) {
			struct json_object *cap = json_object_new_object();

			json_object_object_add(cap, "running",
					       json_object_new_boolean(info.capturing));
			json_object_object_add(cap, "file",
					       json_object_new_string(info.capture_file));
			json_object_object_add(cap, "packets",
					       json_object_new_int64((int64_t)info.captured));
			json_object_object_add(o, "capture", cap);
		}
	}
	return o;
}

static struct json_object *bridge_json(struct vsw_dp *dp, const struct vsw_dp_bridge_info *br,
				       bool config)
{
	struct json_object *o = json_object_new_object(), *ports = json_object_new_array();

	json_object_object_add(o, config ? "bridge" : "name", json_object_new_string(br->name));
	json_object_object_add(o, "mac_aging_s", json_object_new_int64(br->mac_aging_s));
	json_object_object_add(o, "mac_capacity", json_object_new_int64(br->mac_capacity));
	for (int p = vsw_port_next(br->bridge, -1); p >= 0; p = vsw_port_next(br->bridge, p)) {
		struct json_object *po = port_json(dp, br, (uint16_t)p, config);

		if (po) {
			json_object_array_add(ports, po);
		}
	}
	json_object_object_add(o, "ports", ports);
	return o;
}

static int m_show(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	struct json_object *bridges = json_object_new_array();
	const char *only;
	int ret;

	if ((ret = get_name(c, "bridge", false, &only)) < 0) {
		json_object_put(bridges);
		return ret;
	}
	vsw_dp_lock(DP(c));
	if (only && vsw_dp_bridge_find(DP(c), only, &br) < 0) {
		errmsg_set(rpc_call_err(c), "no bridge named %s", only);
		ret = -ENODEV;
	}
	for (unsigned int i = 0; ret == 0 && vsw_dp_bridge_at(DP(c), i, &br) == 0; i++) {
		if (!only || strcmp(only, br.name) == 0) {
			json_object_array_add(bridges, bridge_json(DP(c), &br, false));
		}
	}
	json_object_object_add(rpc_call_result(c), "mode",
			       json_object_new_string(vsw_dp_polling(DP(c)) ? "poll" : "event"));
	vsw_dp_unlock(DP(c));
	json_object_object_add(rpc_call_result(c), "bridges", bridges);
	return ret;
}

/* ---------------------------------------------------------------- FDB */

/* Looks up the bridge named by the "bridge" parameter; lock held. */
static int lookup_bridge(struct rpc_call *c, struct vsw_dp_bridge_info *br)
{
	const char *name;
	int ret = get_name(c, "bridge", true, &name);

	if (ret == 0 && vsw_dp_bridge_find(DP(c), name, br) < 0) {
		errmsg_set(rpc_call_err(c), "no bridge named %s", name);
		ret = -ENODEV;
	}
	return ret;
}

struct fdb_walk {
	const struct vsw_bridge *bridge;
	struct json_object *entries;
	bool statics_only;
};

static int fdb_entry_json(const struct vsw_fdb_entry *e, void *arg)
{
	struct fdb_walk *w = arg;
	struct json_object *o;
	char mac[18];

	if (w->statics_only && !e->is_static) {
		return 0;
	}
	o = json_object_new_object();
	format_mac(e->mac, mac, sizeof(mac));
	json_object_object_add(o, "port",
			       json_object_new_string(vsw_port_name(w->bridge, e->port_no)));
	json_object_object_add(o, "vlan", json_object_new_int(e->vid));
	json_object_object_add(o, "mac", json_object_new_string(mac));
	if (!w->statics_only) {
		json_object_object_add(o, "static", json_object_new_boolean(e->is_static));
		json_object_object_add(o, "age_s", json_object_new_int64((int64_t)(e->age_ms / 1000)));
	}
	json_object_array_add(w->entries, o);
	return 0;
}

static int m_fdb_show(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	struct fdb_walk w = {.entries = json_object_new_array()};
	int ret;

	vsw_dp_lock(DP(c));
	ret = lookup_bridge(c, &br);
	if (ret == 0) {
		w.bridge = br.bridge;
		vsw_fdb_dump(br.bridge, vsw_dp_now_ms(), fdb_entry_json, &w);
	}
	vsw_dp_unlock(DP(c));
	json_object_object_add(rpc_call_result(c), "entries", w.entries);
	return ret;
}

/* The port number of the "port" parameter on 'br'; lock held. */
static int lookup_port(struct rpc_call *c, const struct vsw_dp_bridge_info *br, bool required)
{
	const char *name;
	int ret = get_name(c, "port", required, &name), p;

	if (ret < 0) {
		return ret;
	}
	if (!name) {
		return VSW_PORT_NONE;
	}
	p = vsw_port_find(br->bridge, name);
	if (p < 0) {
		errmsg_set(rpc_call_err(c), "no port named %s on bridge %s", name, br->name);
		return -ENODEV;
	}
	return p;
}

/* The "mac" and "vlan" members naming one station, both required. */
static int get_station(struct rpc_call *c, const char **textp, uint8_t *mac, uint64_t *vidp)
{
	int ret = rpc_get_str(c, "mac", true, textp);

	if (ret == 0) {
		ret = parse_mac(c, *textp, mac);
	}
	if (ret == 0) {
		ret = get_uint(c, "vlan", 1, VLAN_VID_MAX, vidp);
		if (ret == 0) {
			errmsg_set(rpc_call_err(c), "missing parameter 'vlan'");
			ret = -EINVAL;
		}
	}
	return ret < 0 ? ret : 0;
}

static int m_fdb_add(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	const char *mac_text;
	uint8_t mac[6];
	uint64_t vid;
	int ret, port;

	if ((ret = get_station(c, &mac_text, mac, &vid)) < 0) {
		return ret;
	}
	vsw_dp_lock(DP(c));
	ret = lookup_bridge(c, &br);
	port = ret < 0 ? ret : lookup_port(c, &br, true);
	ret = port < 0 ? port : vsw_fdb_add_static(br.bridge, (uint16_t)vid, mac, (uint16_t)port);
	vsw_dp_unlock(DP(c));
	if (ret == -EINVAL && port >= 0) {
		errmsg_set(rpc_call_err(c), "cannot add %s in VLAN %u: a multicast or zero MAC, or a port "
				   "not in that VLAN", mac_text, (unsigned int)vid);
	} else if (ret == -ENOSPC) {
		errmsg_set(rpc_call_err(c), "the MAC table is full of static entries");
	}
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_fdb_del(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	const char *mac_text;
	uint8_t mac[6];
	uint64_t vid;
	int ret;

	if ((ret = get_station(c, &mac_text, mac, &vid)) < 0) {
		return ret;
	}
	vsw_dp_lock(DP(c));
	ret = lookup_bridge(c, &br);
	if (ret == 0) {
		ret = vsw_fdb_del(br.bridge, (uint16_t)vid, mac);
		if (ret == -ENOENT) {
			errmsg_set(rpc_call_err(c), "no entry for %s in VLAN %u", mac_text, (unsigned int)vid);
		}
	}
	vsw_dp_unlock(DP(c));
	if (ret == 0) {
		rpc_call_set_changed(c);
	}
	return ret;
}

static int m_fdb_flush(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	bool statics = false;
	uint64_t vid = 0;
	uint32_t n = 0;
	int ret, port;

	if ((ret = get_uint(c, "vlan", 1, VLAN_VID_MAX, &vid)) < 0 ||
	    (ret = rpc_get_bool(c, "static", &statics)) < 0) {
		return ret;
	}
	vsw_dp_lock(DP(c));
	ret = lookup_bridge(c, &br);
	port = ret < 0 ? ret : lookup_port(c, &br, false);
	if (port >= 0) {
		n = vsw_fdb_flush(br.bridge, (uint16_t)port, (uint16_t)vid, statics);
	}
	vsw_dp_unlock(DP(c));
	if (port < 0) {
		return port;
	}
	if (statics && n > 0) {
		rpc_call_set_changed(c);
	}
	json_object_object_add(rpc_call_result(c), "flushed", json_object_new_int64(n));
	return 0;
}

/* -------------------------------------------------------------- Stats */

static void counters_json(const struct vsw_counters *k, struct json_object *o)
{
	struct json_object *rx = json_object_new_object(), *tx = json_object_new_object();

	json_object_object_add(o, "rx_packets", json_object_new_int64((int64_t)k->rx_packets));
	json_object_object_add(o, "rx_bytes", json_object_new_int64((int64_t)k->rx_bytes));
	json_object_object_add(o, "tx_packets", json_object_new_int64((int64_t)k->tx_packets));
	json_object_object_add(o, "tx_bytes", json_object_new_int64((int64_t)k->tx_bytes));
	json_object_object_add(o, "flooded", json_object_new_int64((int64_t)k->flooded));
	json_object_object_add(o, "rx_dropped",
			       json_object_new_int64((int64_t)vsw_counters_rx_dropped(k)));
	json_object_object_add(o, "tx_dropped",
			       json_object_new_int64((int64_t)vsw_counters_tx_dropped(k)));
	for (int r = 0; r < VSW_DROP_COUNT; r++) {
		if (k->rx_drops[r]) {
			json_object_object_add(rx, vsw_drop_name(r),
					       json_object_new_int64((int64_t)k->rx_drops[r]));
		}
		if (k->tx_drops[r]) {
			json_object_object_add(tx, vsw_drop_name(r),
					       json_object_new_int64((int64_t)k->tx_drops[r]));
		}
	}
	json_object_object_add(o, "rx_drops", rx);
	json_object_object_add(o, "tx_drops", tx);
}

static struct json_object *device_json(const struct vsw_port_stats *s)
{
	struct json_object *o = json_object_new_object();
	const struct {
		const char *name;
		uint64_t value;
	} f[] = {
		{"rx_packets", s->rx_packets}, {"rx_bytes", s->rx_bytes},
		{"rx_dropped", s->rx_dropped}, {"rx_errors", s->rx_errors},
		{"tx_packets", s->tx_packets}, {"tx_bytes", s->tx_bytes},
		{"tx_dropped", s->tx_dropped}, {"tx_errors", s->tx_errors},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		json_object_object_add(o, f[i].name, json_object_new_int64((int64_t)f[i].value));
	}
	return o;
}

static void stats_port(struct rpc_call *c, const struct vsw_dp_bridge_info *br, uint16_t p,
		       struct json_object *ports)
{
	const char *name = vsw_port_name(br->bridge, p);
	struct vsw_dp_port_info info;
	struct vsw_counters k;
	struct json_object *o;

	if (!name || vsw_port_get_counters(br->bridge, p, &k) < 0 ||
	    vsw_dp_port_info(DP(c), name, &info) < 0) {
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	counters_json(&k, o);
	json_object_object_add(o, "device", device_json(&info.device));
	json_object_array_add(ports, o);
}

static int m_stats(struct rpc_call *c)
{
	struct vsw_dp_bridge_info br;
	struct json_object *ports = json_object_new_array(), *vlans = json_object_new_array();
	int ret, port;

	vsw_dp_lock(DP(c));
	ret = lookup_bridge(c, &br);
	port = ret < 0 ? ret : lookup_port(c, &br, false);
	if (port >= 0 && port != VSW_PORT_NONE) {
		stats_port(c, &br, (uint16_t)port, ports);
	} else if (port >= 0) {
		for (int p = vsw_port_next(br.bridge, -1); p >= 0; p = vsw_port_next(br.bridge, p)) {
			stats_port(c, &br, (uint16_t)p, ports);
		}
	}
	for (uint16_t vid = 1; port >= 0 && vid <= VLAN_VID_MAX; vid++) {
		struct vsw_counters k;
		struct json_object *o;

		if (vsw_vlan_get_counters(br.bridge, vid, &k) < 0 ||
		    (k.rx_packets == 0 && k.tx_packets == 0)) {
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "vlan", json_object_new_int(vid));
		counters_json(&k, o);
		json_object_array_add(vlans, o);
	}
	vsw_dp_unlock(DP(c));
	json_object_object_add(rpc_call_result(c), "ports", ports);
	json_object_object_add(rpc_call_result(c), "vlans", vlans);
	return port < 0 ? port : 0;
}

/* ------------------------------------------------------------ Capture */

/* Captures are written only under the capture directory (vswitchd
 * --capture-dir) and only as new files (pcap.c): whoever can reach the
 * control socket must not be able to make root overwrite a file, or create
 * one where another program would read it (a cron directory).  A relative
 * name is taken in that directory, never in the daemon's own working
 * directory.  Stores the resolved path in 'out'. */
static int capture_path(struct rpc_call *c, const char *file, char *out, size_t size)
{
	const char *dir = vswd_capture_dir(rpc_call_ctx(c));
	char real_dir[PATH_MAX], full[PATH_MAX], real_parent[PATH_MAX];
	char *slash;
	const char *base;
	size_t n;

	if (!realpath(dir, real_dir)) {
		errmsg_set(rpc_call_err(c), "capture directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (snprintf(full, sizeof(full), "%s%s%s", file[0] == '/' ? "" : real_dir,
		     file[0] == '/' ? "" : "/", file) >= (int)sizeof(full)) {
		errmsg_set(rpc_call_err(c), "capture file name too long");
		return -ENAMETOOLONG;
	}
	slash = strrchr(full, '/');
	base = slash + 1;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		errmsg_set(rpc_call_err(c), "capture file '%s' names a directory", file);
		return -EINVAL;
	}
	*slash = '\0';
	if (!realpath(full[0] ? full : "/", real_parent)) {
		errmsg_set(rpc_call_err(c), "capture file '%s': directory %s: %s", file,
			   full[0] ? full : "/", strerror(errno));
		return -errno;
	}
	n = strlen(real_dir);
	if (strcmp(real_dir, "/") != 0 && strcmp(real_parent, real_dir) != 0 &&
	    !(strncmp(real_parent, real_dir, n) == 0 && real_parent[n] == '/')) {
		errmsg_set(rpc_call_err(c),
			   "capture file '%s' is outside the capture directory %s (vswitchd "
			   "--capture-dir)", file, real_dir);
		return -EPERM;
	}
	if (snprintf(out, size, "%s/%s", strcmp(real_parent, "/") ? real_parent : "", base) >=
	    (int)size) {
		errmsg_set(rpc_call_err(c), "capture file name too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static int m_capture(struct rpc_call *c)
{
	char path[PATH_MAX];
	const char *port, *file;
	uint64_t count = 0, seconds = 0;
	int ret;

	if ((ret = get_name(c, "port", true, &port)) < 0 ||
	    (ret = rpc_get_str(c, "file", true, &file)) < 0 ||
	    (ret = get_uint(c, "count", 1, UINT64_MAX >> 1, &count)) < 0 ||
	    (ret = get_uint(c, "seconds", 1, 86400 * 365, &seconds)) < 0) {
		return ret;
	}
	ret = capture_path(c, file, path, sizeof(path));
	if (ret < 0) {
		return ret;
	}
	return vsw_dp_capture_start(DP(c), port, path, count, (uint32_t)seconds, rpc_call_err(c));
}

static int m_capture_stop(struct rpc_call *c)
{
	struct vsw_dp_port_info info;
	char file[PATH_MAX] = "";
	const char *port;
	uint64_t frames;
	int ret;

	if ((ret = get_name(c, "port", true, &port)) < 0) {
		return ret;
	}
	vsw_dp_lock(DP(c));
	if (vsw_dp_port_info(DP(c), port, &info) == 0 && info.capture_file) {
		snprintf(file, sizeof(file), "%s", info.capture_file);
	}
	vsw_dp_unlock(DP(c));
	ret = vsw_dp_capture_stop(DP(c), port, &frames, rpc_call_err(c));
	if (ret == 0) {
		json_object_object_add(rpc_call_result(c), "packets", json_object_new_int64((int64_t)frames));
		json_object_object_add(rpc_call_result(c), "file", json_object_new_string(file));
	}
	return ret;
}

static int m_version(struct rpc_call *c)
{
	json_object_object_add(rpc_call_result(c), "version", json_object_new_string(VSW_VERSION));
	return 0;
}

/* ---------------------------------------------------------- Dispatch */

const struct rpc_method vswd_methods[] = {
	{"add-br", m_add_br},       {"del-br", m_del_br},         {"add-port", m_add_port},
	{"del-port", m_del_port},   {"set-port", m_set_port},     {"show", m_show},
	{"fdb-show", m_fdb_show},   {"fdb-add", m_fdb_add},       {"fdb-del", m_fdb_del},
	{"fdb-flush", m_fdb_flush}, {"stats", m_stats},           {"capture", m_capture},
	{"capture-stop", m_capture_stop}, {"version", m_version},
};
const size_t vswd_n_methods = sizeof(vswd_methods) / sizeof(vswd_methods[0]);

static void dump_statics(struct vsw_dp *dp, const struct vsw_dp_bridge_info *br,
			 struct json_object *fdb)
{
	struct fdb_walk w = {.bridge = br->bridge, .entries = json_object_new_array(),
			     .statics_only = true};
	size_t n;

	vsw_fdb_dump(br->bridge, vsw_dp_now_ms(), fdb_entry_json, &w);
	n = json_object_array_length(w.entries);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(w.entries, i);

		json_object_object_add(e, "bridge", json_object_new_string(br->name));
		json_object_array_add(fdb, json_object_get(e));
	}
	json_object_put(w.entries);
}

struct json_object *rpc_config_dump(struct vsw_dp *dp)
{
	struct json_object *root = json_object_new_object(), *bridges = json_object_new_array();
	struct json_object *fdb = json_object_new_array();
	struct vsw_dp_bridge_info br;

	vsw_dp_lock(dp);
	for (unsigned int i = 0; vsw_dp_bridge_at(dp, i, &br) == 0; i++) {
		json_object_array_add(bridges, bridge_json(dp, &br, true));
		dump_statics(dp, &br, fdb);
	}
	vsw_dp_unlock(dp);
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "bridges", bridges);
	json_object_object_add(root, "fdb", fdb);
	return root;
}
