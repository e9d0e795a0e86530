/* SPDX-License-Identifier: MIT */
/* netlink.c: kernel interfaces through libnl-route-3: veth pairs, 802.1Q
 * sub-interfaces, and link changes (up, MTU, MAC, network namespace) on
 * any interface, taps from tap.c included.
 *
 * libnl folds the kernel's errno into its own coarser codes (ENODEV and
 * ENOENT both become "object not found"), so every socket carries an error
 * callback that keeps the kernel's own errno; vlan_nl_errno() translates
 * only the failures libnl makes itself. */
#include <errno.h>
#include <linux/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vlan.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "errmsg.h"
#include "iface.h"
#include "netlink.h"
#include "vlan.h"

struct vlan_nl {
	struct nl_sock *sk;
	int kernel_errno; /* negative errno of the kernel's last NLMSG_ERROR */
};

static int keep_kernel_errno(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct vlan_nl *nl = arg;

	nl->kernel_errno = e->error;
	return NL_STOP;
}

int vlan_nl_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
	case NLE_MISSING_ATTR:
	case NLE_IMMUTABLE:
		return -EINVAL;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_MSGSIZE:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
	case NLE_AF_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PERM:
		return -EPERM;
	default:
		return -EIO;
	}
}

/* The errno for libnl's return 'nle': the kernel's own if it sent one. */
static int call_result(struct vlan_nl *nl, int nle)
{
	if (nle >= 0) {
		return 0;
	}
	if (nl->kernel_errno < 0) {
		return nl->kernel_errno;
	}
	return vlan_nl_errno(nle);
}

int vlan_nl_open(struct vlan_nl **nlp, struct errmsg *err)
{
	struct vlan_nl *nl;
	int ret;

	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		ret = -ENOMEM;
		goto out_fail;
	}
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, keep_kernel_errno, nl);
	if (ret < 0) {
		ret = vlan_nl_errno(ret);
		goto out_sock;
	}
	ret = nl_connect(nl->sk, NETLINK_ROUTE);
	if (ret < 0) {
		ret = vlan_nl_errno(ret);
		goto out_sock;
	}
	*nlp = nl;
	return 0;
out_sock:
	nl_socket_free(nl->sk);
out_free:
	free(nl);
out_fail:
	errmsg_set(err, "cannot open an rtnetlink socket: %s", strerror(-ret));
	return ret;
}

void vlan_nl_close(struct vlan_nl *nl)
{
	if (!nl) {
		return;
	}
	nl_socket_free(nl->sk); /* closes it too */
	free(nl);
}

/* --- Helpers over libnl --- */

static int set_mac(struct rtnl_link *link, const uint8_t *mac)
{
	struct nl_addr *addr;

	addr = nl_addr_build(AF_LLC, mac, VLAN_MAC_BYTES);
	if (!addr) {
		return -ENOMEM;
	}
	rtnl_link_set_addr(link, addr); /* takes its own reference */
	nl_addr_put(addr);
	return 0;
}

/* Fetches 'name' from the kernel into '*linkp' (put it with rtnl_link_put). */
static int get_link(struct vlan_nl *nl, const char *name, struct rtnl_link **linkp)
{
	nl->kernel_errno = 0;
	return call_result(nl, rtnl_link_get_kernel(nl->sk, 0, name, linkp));
}

static int add_link(struct vlan_nl *nl, struct rtnl_link *link)
{
	nl->kernel_errno = 0;
	/* NLM_F_EXCL: an existing interface of that name is an error, never
	 * silently reconfigured. */
	return call_result(nl, rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
}

/* Looks 'name' up and applies 'changes' to it. */
static int change_link(struct vlan_nl *nl, const char *name, struct rtnl_link *changes)
{
	struct rtnl_link *orig;
	int ret;

	ret = get_link(nl, name, &orig);
	if (ret < 0) {
		return ret;
	}
	nl->kernel_errno = 0;
	ret = call_result(nl, rtnl_link_change(nl->sk, orig, changes, 0));
	rtnl_link_put(orig);
	return ret;
}

/* --- veth --- */

void vlan_veth_opts_init(struct vlan_veth_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
}

/* Names, MACs and MTU of one end. */
static int veth_end(struct rtnl_link *link, const char *name, const uint8_t *mac,
		    uint32_t mtu_bytes)
{
	rtnl_link_set_name(link, name);
	if (mtu_bytes) {
		rtnl_link_set_mtu(link, mtu_bytes);
	}
	return mac ? set_mac(link, mac) : 0;
}

static int veth_link(const struct vlan_veth_opts *opts, struct rtnl_link **linkp)
{
	struct rtnl_link *link, *peer;
	int ret;

	link = rtnl_link_veth_alloc();
	if (!link) {
		return -ENOMEM;
	}
	peer = rtnl_link_veth_get_peer(link);
	ret = veth_end(link, opts->name, opts->mac, opts->mtu_bytes);
	if (ret == 0) {
		ret = veth_end(peer, opts->peer_name, opts->peer_mac, opts->mtu_bytes);
	}
	rtnl_link_put(peer);
	if (ret < 0) {
		rtnl_link_veth_release(link);
		return ret;
	}
	*linkp = link;
	return 0;
}

int vlan_veth_create(struct vlan_nl *nl, const struct vlan_veth_opts *opts, struct errmsg *err)
{
	struct rtnl_link *link;
	int ret;

	ret = vlan_ifname_check(opts->name, "veth", err);
	if (ret == 0) {
		ret = vlan_ifname_check(opts->peer_name, "veth peer", err);
	}
	if (ret < 0) {
		return ret;
	}
	if (strcmp(opts->name, opts->peer_name) == 0) {
		errmsg_set(err, "veth %s: both ends have the same name", opts->name);
		return -EINVAL;
	}
	ret = veth_link(opts, &link);
	if (ret < 0) {
		errmsg_set(err, "veth %s: %s", opts->name, strerror(-ret));
		return ret;
	}
	ret = add_link(nl, link);
	/* Releasing a veth drops the peer's reference, which put alone leaks. */
	rtnl_link_veth_release(link);
	if (ret < 0) {
		errmsg_set(err, "veth pair %s/%s: cannot create: %s%s", opts->name, opts->peer_name,
			   vlan_iface_cause(ret), ret == -EEXIST ? " (one of the two)" : "");
	}
	return ret;
}

/* --- 802.1Q sub-interfaces --- */

void vlan_subif_opts_init(struct vlan_subif_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->tpid = VLAN_TPID_8021Q;
}

int vlan_subif_link(const struct vlan_subif_opts *opts, int parent_ifindex,
		    struct rtnl_link **linkp)
{
	uint16_t tpid = opts->tpid ? opts->tpid : VLAN_TPID_8021Q;
	struct rtnl_link *link;
	int ret;

	link = rtnl_link_vlan_alloc();
	if (!link) {
		return -ENOMEM;
	}
	rtnl_link_set_name(link, opts->name);
	rtnl_link_set_link(link, parent_ifindex);
	rtnl_link_vlan_set_id(link, opts->vid);
	/* libnl copies this into IFLA_VLAN_PROTOCOL as is, and the kernel
	 * reads that attribute big-endian. */
	rtnl_link_vlan_set_protocol(link, htons(tpid));
	if (opts->mtu_bytes) {
		rtnl_link_set_mtu(link, opts->mtu_bytes);
	}
	ret = opts->mac ? set_mac(link, opts->mac) : 0;
	if (ret < 0) {
		rtnl_link_put(link);
		return ret;
	}
	*linkp = link;
	return 0;
}

static int subif_check(const struct vlan_subif_opts *opts, struct errmsg *err)
{
	int ret;

	ret = vlan_ifname_check(opts->name, "VLAN interface", err);
	if (ret == 0) {
		ret = vlan_ifname_check(opts->parent, "VLAN parent", err);
	}
	if (ret < 0) {
		return ret;
	}
	if (opts->vid < VLAN_VID_MIN || opts->vid > VLAN_VID_MAX) {
		errmsg_set(err, "%s: VLAN ID %u is outside %d-%d", opts->name, opts->vid,
			   VLAN_VID_MIN, VLAN_VID_MAX);
		return -EINVAL;
	}
	if (opts->tpid && !vlan_tpid_is_vlan(opts->tpid)) {
		errmsg_set(err, "%s: TPID 0x%04x is neither 0x8100 nor 0x88a8", opts->name,
			   opts->tpid);
		return -EINVAL;
	}
	return 0;
}

int vlan_subif_create(struct vlan_nl *nl, const struct vlan_subif_opts *opts, struct errmsg *err)
{
	struct rtnl_link *parent, *link;
	int ret;

	ret = subif_check(opts, err);
	if (ret < 0) {
		return ret;
	}
	/* Looked up here so that a missing parent reads as such, not as the
	 * kernel's ENODEV about some unnamed device. */
	ret = get_link(nl, opts->parent, &parent);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot create VLAN %u: parent %s: %s", opts->name, opts->vid,
			   opts->parent, vlan_iface_cause(ret));
		return ret;
	}
	ret = vlan_subif_link(opts, rtnl_link_get_ifindex(parent), &link);
	rtnl_link_put(parent);
	if (ret < 0) {
		errmsg_set(err, "%s: %s", opts->name, strerror(-ret));
		return ret;
	}
	ret = add_link(nl, link);
	rtnl_link_put(link);
	if (ret == -EOPNOTSUPP) {
		errmsg_set(err, "%s: cannot create VLAN %u on %s: the kernel has no 802.1Q "
				"support (module 8021q)", opts->name, opts->vid, opts->parent);
	} else if (ret < 0) {
		errmsg_set(err, "%s: cannot create VLAN %u on %s: %s", opts->name, opts->vid,
			   opts->parent, vlan_iface_cause(ret));
	}
	return ret;
}

/* --- Any link --- */

int vlan_link_delete(struct vlan_nl *nl, const char *name, struct errmsg *err)
{
	struct rtnl_link *link;
	int ret;

	ret = vlan_ifname_check(name, "delete", err);
	if (ret < 0) {
		return ret;
	}
	link = rtnl_link_alloc();
	if (!link) {
		errmsg_set(err, "%s: cannot delete: out of memory", name);
		return -ENOMEM;
	}
	/* By name: the kernel resolves it, so no lookup can race the delete. */
	rtnl_link_set_name(link, name);
	nl->kernel_errno = 0;
	ret = call_result(nl, rtnl_link_delete(nl->sk, link));
	rtnl_link_put(link);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot delete: %s", name, vlan_iface_cause(ret));
	}
	return ret;
}

/* The shape every setter shares: check the name, fill 'changes' with
 * 'fill', apply it, and word a failure as "<name>: cannot <doing>: cause". */
static int change_named(struct vlan_nl *nl, const char *name, const char *doing,
			int (*fill)(struct rtnl_link *changes, const void *arg), const void *arg,
			struct errmsg *err)
{
	struct rtnl_link *changes;
	int ret;

	ret = vlan_ifname_check(name, doing, err);
	if (ret < 0) {
		return ret;
	}
	changes = rtnl_link_alloc();
	if (!changes) {
		ret = -ENOMEM;
		goto out_err;
	}
	ret = fill(changes, arg);
	if (ret == 0) {
		ret = change_link(nl, name, changes);
	}
	rtnl_link_put(changes);
	if (ret == 0) {
		return 0;
	}
out_err:
	errmsg_set(err, "%s: cannot %s: %s", name, doing, vlan_iface_cause(ret));
	return ret;
}

static int fill_up(struct rtnl_link *changes, const void *arg)
{
	if (*(const bool *)arg) {
		rtnl_link_set_flags(changes, IFF_UP);
	} else {
		rtnl_link_unset_flags(changes, IFF_UP);
	}
	return 0;
}

int vlan_link_set_up(struct vlan_nl *nl, const char *name, bool up, struct errmsg *err)
{
	return change_named(nl, name, up ? "set up" : "set down", fill_up, &up, err);
}

static int fill_mtu(struct rtnl_link *changes, const void *arg)
{
	rtnl_link_set_mtu(changes, *(const uint32_t *)arg);
	return 0;
}

int vlan_link_set_mtu(struct vlan_nl *nl, const char *name, uint32_t mtu_bytes,
		      struct errmsg *err)
{
	if (mtu_bytes == 0) {
		errmsg_set(err, "%s: MTU 0 is not an MTU", name ? name : "?");
		return -EINVAL;
	}
	return change_named(nl, name, "set MTU", fill_mtu, &mtu_bytes, err);
}

static int fill_mac(struct rtnl_link *changes, const void *arg)
{
	return set_mac(changes, arg);
}

int vlan_link_set_mac(struct vlan_nl *nl, const char *name, const uint8_t *mac,
		      struct errmsg *err)
{
	if (!mac) {
		errmsg_set(err, "%s: no MAC address given", name ? name : "?");
		return -EINVAL;
	}
	return change_named(nl, name, "set MAC address", fill_mac, mac, err);
}

static int fill_ns_fd(struct rtnl_link *changes, const void *arg)
{
	rtnl_link_set_ns_fd(changes, *(const int *)arg);
	return 0;
}

int vlan_link_move_to_netns_fd(struct vlan_nl *nl, const char *name, int netns_fd,
			       struct errmsg *err)
{
	if (netns_fd < 0) {
		errmsg_set(err, "%s: no network namespace descriptor given", name ? name : "?");
		return -EBADF;
	}
	return change_named(nl, name, "move to network namespace", fill_ns_fd, &netns_fd, err);
}

static int fill_ns_pid(struct rtnl_link *changes, const void *arg)
{
	rtnl_link_set_ns_pid(changes, *(const pid_t *)arg);
	return 0;
}

int vlan_link_move_to_netns_pid(struct vlan_nl *nl, const char *name, pid_t pid,
				struct errmsg *err)
{
	if (pid <= 0) {
		errmsg_set(err, "%s: process ID %d names no process", name ? name : "?", (int)pid);
		return -ESRCH;
	}
	return change_named(nl, name, "move to network namespace", fill_ns_pid, &pid, err);
}

static void fill_info(struct rtnl_link *link, struct vlan_link_info *info)
{
	struct nl_addr *addr = rtnl_link_get_addr(link);
	const char *kind = rtnl_link_get_type(link);

	memset(info, 0, sizeof(*info));
	info->ifindex = rtnl_link_get_ifindex(link);
	info->mtu_bytes = rtnl_link_get_mtu(link);
	info->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	info->parent_ifindex = rtnl_link_get_link(link);
	if (addr && nl_addr_get_len(addr) == VLAN_MAC_BYTES) {
		memcpy(info->mac, nl_addr_get_binary_addr(addr), VLAN_MAC_BYTES);
	}
	if (kind) {
		memcpy(info->kind, kind, strnlen(kind, sizeof(info->kind) - 1));
	}
}

int vlan_link_query(struct vlan_nl *nl, const char *name, struct vlan_link_info *infop,
		    struct errmsg *err)
{
	struct rtnl_link *link;
	int ret;

	ret = vlan_ifname_check(name, "query", err);
	if (ret < 0) {
		return ret;
	}
	ret = get_link(nl, name, &link);
	if (ret < 0) {
		errmsg_set(err, "%s: %s", name, vlan_iface_cause(ret));
		return ret;
	}
	fill_info(link, infop);
	rtnl_link_put(link);
	return 0;
}
