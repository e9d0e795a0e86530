/* SPDX-License-Identifier: MIT */
/* test_netlink.c: kernel interfaces (vlan/tap.c, vlan/netlink.c) for real.
 * The request builder and error mapping run in the test process; everything
 * that touches the kernel runs in a forked child inside a network namespace
 * it creates, so the host's interfaces are never seen or touched, and the
 * parent checks afterwards that none of the test's names leaked out.
 * Results are read back through libnl and if_nametoindex() directly, not
 * through the library under test.  Without the right to create a namespace
 * the kernel half exits 77 (skip). */
#include <net/if.h> /* before any <linux/if.h>, which libc-compat then defers to */

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vlan.h>

#include "errmsg.h"
#include "iface.h"
#include "netlink.h"
#include "vlan.h"

#define SKIP_EXIT 77

/* Every name a test may create; teardown deletes whatever is left. */
static const char *const test_names[] = {
	"vt-tap0", "vt-tap1", "vt-a", "vt-b", "vt-c", "vt-d", "vt-a.10", "vt-a.20",
};

static const uint8_t mac_a[VLAN_MAC_BYTES] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x01};
static const uint8_t mac_b[VLAN_MAC_BYTES] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x02};

/* --- Independent observers (libnl and libc, not the library) --- */

static struct nl_sock *observer;

/* The kernel's view of 'name', or NULL; put it with rtnl_link_put. */
static struct rtnl_link *observe(const char *name)
{
	struct rtnl_link *link = NULL;

	if (rtnl_link_get_kernel(observer, 0, name, &link) < 0) {
		return NULL;
	}
	return link;
}

static bool exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static void assert_mac(struct rtnl_link *link, const uint8_t *mac)
{
	struct nl_addr *addr = rtnl_link_get_addr(link);

	assert_non_null(addr);
	assert_int_equal(nl_addr_get_len(addr), VLAN_MAC_BYTES);
	assert_memory_equal(nl_addr_get_binary_addr(addr), mac, VLAN_MAC_BYTES);
}

/* Runs 'name' lookups in the namespace of 'netns_fd', then comes back. */
static bool exists_in(int netns_fd, const char *name)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	bool found;

	assert_true(self >= 0);
	assert_int_equal(setns(netns_fd, CLONE_NEWNET), 0);
	found = exists(name);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	return found;
}

/* A new network namespace, kept alive by the returned fd alone; the caller
 * stays where it was. */
static int netns_new(void)
{
	int self, other;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0);
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	other = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	return other;
}

/* Turns CAP_NET_ADMIN off or back on in the effective set; it stays in the
 * permitted set, so it can come back. */
static void net_admin_effective(bool on)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	assert_int_equal(syscall(SYS_capget, &hdr, data), 0);
	if (on) {
		data[0].effective |= 1u << CAP_NET_ADMIN;
	} else {
		data[0].effective &= ~(1u << CAP_NET_ADMIN);
	}
	assert_int_equal(syscall(SYS_capset, &hdr, data), 0);
}

/* --- Fixtures for the namespace group --- */

struct ctx {
	struct vlan_nl *nl;
	struct errmsg err;
};

static struct ctx ctx;

static int ns_group_setup(void **state)
{
	observer = nl_socket_alloc();
	if (!observer || nl_connect(observer, NETLINK_ROUTE) < 0) {
		return -1;
	}
	if (vlan_nl_open(&ctx.nl, &ctx.err) < 0) {
		return -1;
	}
	*state = &ctx;
	return 0;
}

static int ns_group_teardown(void **state)
{
	vlan_nl_close(ctx.nl);
	nl_socket_free(observer);
	return 0;
}

static int ns_test_teardown(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(test_names) / sizeof(test_names[0]); i++) {
		vlan_link_delete(ctx.nl, test_names[i], NULL);
	}
	ctx.err.msg[0] = '\0';
	return 0;
}

static void make_tap(const char *name)
{
	struct vlan_tap_opts opts;

	vlan_tap_opts_init(&opts);
	opts.name = name;
	opts.persist = true;
	assert_int_equal(vlan_tap_create(&opts, NULL, &ctx.err), 0);
}

static void make_veth_with(struct vlan_nl *nl, const char *name, const char *peer)
{
	struct vlan_veth_opts opts;

	vlan_veth_opts_init(&opts);
	opts.name = name;
	opts.peer_name = peer;
	assert_int_equal(vlan_veth_create(nl, &opts, &ctx.err), 0);
}

static void make_veth(const char *name, const char *peer)
{
	make_veth_with(ctx.nl, name, peer);
}

static void assert_err_says(const char *words)
{
	if (!strstr(ctx.err.msg, words)) {
		fail_msg("error \"%s\" does not say \"%s\"", ctx.err.msg, words);
	}
}

/* --- Pure: request building, error mapping, names --- */

static void test_subif_request_carries_vid_parent_mac_and_big_endian_tpid(void **state)
{
	struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1], *data[IFLA_VLAN_MAX + 1];
	struct vlan_subif_opts opts;
	struct rtnl_link *link;
	struct nl_msg *msg;
	const uint8_t *tpid;

	vlan_subif_opts_init(&opts);
	opts.parent = "eth0";
	opts.name = "eth0.300";
	opts.vid = 300;
	opts.tpid = VLAN_TPID_8021AD;
	opts.mac = mac_a;
	opts.mtu_bytes = 1496;
	assert_int_equal(vlan_subif_link(&opts, 7, &link), 0);
	assert_int_equal(rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &msg), 0);
	assert_int_equal(nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL),
			 0);
	assert_int_equal(nla_get_u32(tb[IFLA_LINK]), 7);
	assert_string_equal(nla_get_string(tb[IFLA_IFNAME]), "eth0.300");
	assert_int_equal(nla_get_u32(tb[IFLA_MTU]), 1496);
	assert_memory_equal(nla_data(tb[IFLA_ADDRESS]), mac_a, VLAN_MAC_BYTES);
	assert_int_equal(nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL), 0);
	assert_string_equal(nla_get_string(info[IFLA_INFO_KIND]), "vlan");
	assert_int_equal(nla_parse_nested(data, IFLA_VLAN_MAX, info[IFLA_INFO_DATA], NULL), 0);
	assert_int_equal(nla_get_u16(data[IFLA_VLAN_ID]), 300);
	tpid = nla_data(data[IFLA_VLAN_PROTOCOL]);
	assert_int_equal(tpid[0], 0x88); /* the kernel reads it big-endian */
	assert_int_equal(tpid[1], 0xa8);
	nlmsg_free(msg);
	rtnl_link_put(link);
}

static void test_subif_request_defaults_to_8021q_and_no_mac(void **state)
{
	struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1], *data[IFLA_VLAN_MAX + 1];
	struct vlan_subif_opts opts;
	struct rtnl_link *link;
	struct nl_msg *msg;
	const uint8_t *tpid;

	vlan_subif_opts_init(&opts);
	opts.parent = "eth0";
	opts.name = "eth0.5";
	opts.vid = 5;
	opts.tpid = 0;
	assert_int_equal(vlan_subif_link(&opts, 3, &link), 0);
	assert_int_equal(rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &msg), 0);
	assert_int_equal(nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL),
			 0);
	assert_null(tb[IFLA_ADDRESS]);
	assert_null(tb[IFLA_MTU]);
	assert_int_equal(nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL), 0);
	assert_int_equal(nla_parse_nested(data, IFLA_VLAN_MAX, info[IFLA_INFO_DATA], NULL), 0);
	tpid = nla_data(data[IFLA_VLAN_PROTOCOL]);
	assert_int_equal(tpid[0], 0x81);
	assert_int_equal(tpid[1], 0x00);
	nlmsg_free(msg);
	rtnl_link_put(link);
}

static void test_libnl_codes_map_to_errno(void **state)
{
	assert_int_equal(vlan_nl_errno(0), 0);
	assert_int_equal(vlan_nl_errno(-NLE_NOMEM), -ENOMEM);
	assert_int_equal(vlan_nl_errno(-NLE_EXIST), -EEXIST);
	assert_int_equal(vlan_nl_errno(-NLE_OBJ_NOTFOUND), -ENODEV);
	assert_int_equal(vlan_nl_errno(-NLE_PERM), -EPERM);
	assert_int_equal(vlan_nl_errno(-NLE_OPNOTSUPP), -EOPNOTSUPP);
	assert_int_equal(vlan_nl_errno(-NLE_INVAL), -EINVAL);
	assert_int_equal(vlan_nl_errno(-NLE_BAD_SOCK), -EBADF);
	assert_int_equal(vlan_nl_errno(-NLE_PARSE_ERR), -EIO);
	assert_int_equal(vlan_nl_errno(-9999), -EIO);
}

static void test_interface_names_follow_kernel_rule(void **state)
{
	static const char *const good[] = {"a", "eth0", "vt-a.10", "123456789012345", "x_y"};
	static const char *const bad[] = {
		"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb", "tap%d", "a\n",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_true(vlan_ifname_is_valid(good[i]));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(vlan_ifname_is_valid(bad[i]));
	}
	assert_false(vlan_ifname_is_valid(NULL));
}

static void test_errors_are_worded_for_interfaces(void **state)
{
	assert_non_null(strstr(vlan_iface_cause(-EEXIST), "already exists"));
	assert_non_null(strstr(vlan_iface_cause(-EPERM), "CAP_NET_ADMIN"));
	assert_non_null(strstr(vlan_iface_cause(-ENODEV), "no such interface"));
	assert_string_equal(vlan_iface_cause(-ENOSPC), strerror(ENOSPC));
}

/* --- Taps --- */

static void test_persistent_tap_outlives_its_fd_until_deleted(void **state)
{
	struct rtnl_link *link;

	make_tap("vt-tap0");
	assert_true(exists("vt-tap0"));
	link = observe("vt-tap0");
	assert_non_null(link);
	assert_string_equal(rtnl_link_get_type(link), "tun");
	rtnl_link_put(link);
	assert_int_equal(vlan_link_delete(ctx.nl, "vt-tap0", &ctx.err), 0);
	assert_false(exists("vt-tap0"));
}

static void test_tap_that_is_not_persistent_vanishes_with_its_fd(void **state)
{
	struct vlan_tap_opts opts;
	int fd = -1;

	vlan_tap_opts_init(&opts);
	opts.name = "vt-tap0";
	assert_int_equal(vlan_tap_create(&opts, &fd, &ctx.err), 0);
	assert_true(fd >= 0);
	assert_true(exists("vt-tap0"));
	assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	close(fd);
	assert_false(exists("vt-tap0"));
}

static void test_tap_gets_requested_mac_and_flags(void **state)
{
	struct vlan_tap_opts opts;
	struct rtnl_link *link;
	struct ifreq ifr;
	int fd = -1;

	vlan_tap_opts_init(&opts);
	opts.name = "vt-tap1";
	opts.mac = mac_b;
	opts.vnet_hdr = true;
	opts.multi_queue = true;
	opts.owner = 4242;
	assert_int_equal(vlan_tap_create(&opts, &fd, &ctx.err), 0);
	memset(&ifr, 0, sizeof(ifr));
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_string_equal(ifr.ifr_name, "vt-tap1");
	assert_true(ifr.ifr_flags & IFF_TAP);
	assert_true(ifr.ifr_flags & IFF_NO_PI);
	assert_true(ifr.ifr_flags & IFF_VNET_HDR);
	assert_true(ifr.ifr_flags & IFF_MULTI_QUEUE);
	assert_false(ifr.ifr_flags & IFF_PERSIST);
	link = observe("vt-tap1");
	assert_non_null(link);
	assert_mac(link, mac_b);
	rtnl_link_put(link);
	close(fd);
}

static void test_tap_with_taken_name_fails_with_eexist(void **state)
{
	struct vlan_tap_opts opts;
	int fd = -1;

	make_tap("vt-tap0");
	vlan_tap_opts_init(&opts);
	opts.name = "vt-tap0";
	assert_int_equal(vlan_tap_create(&opts, &fd, &ctx.err), -EEXIST);
	assert_int_equal(fd, -1);
	assert_err_says("vt-tap0");
	assert_err_says("already exists");
	/* A name taken by another kind of interface is no different. */
	make_veth("vt-a", "vt-b");
	opts.name = "vt-b";
	opts.persist = true;
	assert_int_equal(vlan_tap_create(&opts, NULL, &ctx.err), -EEXIST);
	assert_true(exists("vt-tap0")); /* the first is untouched */
}

static void test_tap_rejects_bad_names_before_creating_anything(void **state)
{
	static const char *const bad[] = {"", "vt-0123456789abc", "vt/a", "vt:a", "vt a", "vt%d"};
	struct vlan_tap_opts opts;
	size_t i;

	vlan_tap_opts_init(&opts);
	opts.persist = true;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts.name = bad[i];
		assert_int_equal(vlan_tap_create(&opts, NULL, &ctx.err), -EINVAL);
		assert_err_says("not a valid interface name");
	}
	opts.name = NULL;
	assert_int_equal(vlan_tap_create(&opts, NULL, &ctx.err), -EINVAL);
	assert_false(exists("tap0"));
}

static void test_tap_that_is_not_persistent_needs_fd(void **state)
{
	struct vlan_tap_opts opts;

	vlan_tap_opts_init(&opts);
	opts.name = "vt-tap0";
	assert_int_equal(vlan_tap_create(&opts, NULL, &ctx.err), -EINVAL);
	assert_false(exists("vt-tap0"));
}

/* --- veth --- */

static void test_veth_pair_gets_names_macs_mtu_and_peers(void **state)
{
	struct vlan_veth_opts opts;
	struct rtnl_link *a, *b;

	vlan_veth_opts_init(&opts);
	opts.name = "vt-a";
	opts.peer_name = "vt-b";
	opts.mac = mac_a;
	opts.peer_mac = mac_b;
	opts.mtu_bytes = 9000;
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), 0);
	a = observe("vt-a");
	b = observe("vt-b");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(rtnl_link_get_type(a), "veth");
	assert_mac(a, mac_a);
	assert_mac(b, mac_b);
	assert_int_equal(rtnl_link_get_mtu(a), 9000);
	assert_int_equal(rtnl_link_get_mtu(b), 9000);
	assert_int_equal(rtnl_link_get_link(a), rtnl_link_get_ifindex(b));
	assert_int_equal(rtnl_link_get_link(b), rtnl_link_get_ifindex(a));
	assert_false(rtnl_link_get_flags(a) & IFF_UP);
	rtnl_link_put(a);
	rtnl_link_put(b);
	/* Deleting one end takes the other with it. */
	assert_int_equal(vlan_link_delete(ctx.nl, "vt-b", &ctx.err), 0);
	assert_false(exists("vt-a"));
}

static void test_veth_with_either_name_taken_fails_with_eexist(void **state)
{
	struct vlan_veth_opts opts;

	make_veth("vt-a", "vt-b");
	vlan_veth_opts_init(&opts);
	opts.name = "vt-a";
	opts.peer_name = "vt-c";
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), -EEXIST);
	assert_err_says("already exists");
	opts.name = "vt-c";
	opts.peer_name = "vt-b";
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), -EEXIST);
	assert_false(exists("vt-c"));
}

static void test_veth_rejects_bad_or_equal_names(void **state)
{
	struct vlan_veth_opts opts;

	vlan_veth_opts_init(&opts);
	opts.name = "vt-a";
	opts.peer_name = "vt-a";
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), -EINVAL);
	assert_err_says("same name");
	opts.peer_name = NULL;
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), -EINVAL);
	assert_err_says("veth peer");
	opts.peer_name = "vt:b";
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), -EINVAL);
	assert_false(exists("vt-a"));
}

/* --- Link changes --- */

static void test_link_goes_up_and_down(void **state)
{
	struct rtnl_link *link;

	make_veth("vt-a", "vt-b");
	assert_int_equal(vlan_link_set_up(ctx.nl, "vt-a", true, &ctx.err), 0);
	link = observe("vt-a");
	assert_true(rtnl_link_get_flags(link) & IFF_UP);
	rtnl_link_put(link);
	assert_int_equal(vlan_link_set_up(ctx.nl, "vt-a", false, &ctx.err), 0);
	link = observe("vt-a");
	assert_false(rtnl_link_get_flags(link) & IFF_UP);
	rtnl_link_put(link);
}

static void test_link_mtu_changes_and_bad_mtu_fails_with_einval(void **state)
{
	struct vlan_link_info info;
	struct rtnl_link *link;

	make_tap("vt-tap0");
	assert_int_equal(vlan_link_set_mtu(ctx.nl, "vt-tap0", 1400, &ctx.err), 0);
	link = observe("vt-tap0");
	assert_int_equal(rtnl_link_get_mtu(link), 1400);
	rtnl_link_put(link);
	assert_int_equal(vlan_link_set_mtu(ctx.nl, "vt-tap0", 10, &ctx.err), -EINVAL);
	assert_err_says("vt-tap0: cannot set MTU");
	assert_int_equal(vlan_link_set_mtu(ctx.nl, "vt-tap0", 0, &ctx.err), -EINVAL);
	assert_int_equal(vlan_link_query(ctx.nl, "vt-tap0", &info, &ctx.err), 0);
	assert_int_equal(info.mtu_bytes, 1400);
}

static void test_link_mac_changes(void **state)
{
	struct rtnl_link *link;

	make_veth("vt-a", "vt-b");
	assert_int_equal(vlan_link_set_mac(ctx.nl, "vt-a", mac_b, &ctx.err), 0);
	link = observe("vt-a");
	assert_mac(link, mac_b);
	rtnl_link_put(link);
	assert_int_equal(vlan_link_set_mac(ctx.nl, "vt-a", NULL, &ctx.err), -EINVAL);
}

static void test_query_reports_what_the_kernel_has(void **state)
{
	struct vlan_link_info info;
	struct vlan_veth_opts opts;

	vlan_veth_opts_init(&opts);
	opts.name = "vt-a";
	opts.peer_name = "vt-b";
	opts.mac = mac_a;
	opts.mtu_bytes = 2000;
	assert_int_equal(vlan_veth_create(ctx.nl, &opts, &ctx.err), 0);
	assert_int_equal(vlan_link_set_up(ctx.nl, "vt-a", true, &ctx.err), 0);
	assert_int_equal(vlan_link_query(ctx.nl, "vt-a", &info, &ctx.err), 0);
	assert_int_equal(info.ifindex, (int)if_nametoindex("vt-a"));
	assert_int_equal(info.parent_ifindex, (int)if_nametoindex("vt-b"));
	assert_int_equal(info.mtu_bytes, 2000);
	assert_true(info.up);
	assert_memory_equal(info.mac, mac_a, VLAN_MAC_BYTES);
	assert_string_equal(info.kind, "veth");
}

static void test_changes_to_missing_interface_fail_with_enodev(void **state)
{
	struct vlan_link_info info;
	int netns = netns_new();

	assert_int_equal(vlan_link_set_up(ctx.nl, "vt-d", true, &ctx.err), -ENODEV);
	assert_err_says("vt-d: cannot set up: no such interface");
	assert_int_equal(vlan_link_set_mtu(ctx.nl, "vt-d", 1500, &ctx.err), -ENODEV);
	assert_int_equal(vlan_link_set_mac(ctx.nl, "vt-d", mac_a, &ctx.err), -ENODEV);
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-d", netns, &ctx.err), -ENODEV);
	assert_int_equal(vlan_link_delete(ctx.nl, "vt-d", &ctx.err), -ENODEV);
	assert_err_says("vt-d: cannot delete");
	assert_int_equal(vlan_link_query(ctx.nl, "vt-d", &info, &ctx.err), -ENODEV);
	close(netns);
}

/* --- Network namespaces --- */

static void test_veth_end_moves_into_namespace_by_fd(void **state)
{
	int netns = netns_new();

	make_veth("vt-a", "vt-b");
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-b", netns, &ctx.err), 0);
	assert_false(exists("vt-b"));
	assert_true(exists("vt-a"));
	assert_true(exists_in(netns, "vt-b"));
	close(netns); /* teardown deletes vt-a, and vt-b goes with it */
}

static void test_tap_moves_into_namespace_of_pid(void **state)
{
	int netns = netns_new();
	int ready[2], hold[2];
	pid_t pid;
	char byte;
	int status;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Lives in 'netns' until the test closes 'hold'. */
		close(ready[0]);
		close(hold[1]);
		if (setns(netns, CLONE_NEWNET) < 0 || write(ready[1], "r", 1) != 1) {
			_exit(1);
		}
		while (read(hold[0], &byte, 1) > 0) {
		}
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	make_tap("vt-tap0");
	assert_int_equal(vlan_link_move_to_netns_pid(ctx.nl, "vt-tap0", pid, &ctx.err), 0);
	assert_false(exists("vt-tap0"));
	assert_true(exists_in(netns, "vt-tap0"));
	close(hold[1]);
	close(ready[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(netns);
}

static void test_move_onto_taken_name_fails_with_eexist(void **state)
{
	int netns = netns_new();

	make_tap("vt-b");
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-b", netns, &ctx.err), 0);
	make_tap("vt-b");
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-b", netns, &ctx.err), -EEXIST);
	assert_err_says("already exists");
	assert_true(exists("vt-b"));
	assert_true(exists_in(netns, "vt-b"));
	close(netns);
}

static void test_handle_acts_in_namespace_it_was_opened_in(void **state)
{
	struct vlan_nl *there;
	int netns = netns_new();
	int self;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(setns(netns, CLONE_NEWNET), 0);
	assert_int_equal(vlan_nl_open(&there, &ctx.err), 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	make_veth("vt-c", "vt-d");
	assert_int_equal(vlan_link_set_up(there, "vt-c", true, &ctx.err), -ENODEV);
	make_veth_with(there, "vt-a", "vt-b");
	assert_true(exists_in(netns, "vt-a"));
	assert_false(exists("vt-a"));
	vlan_nl_close(there);
	close(netns);
}

static void test_move_to_bad_namespace_fails(void **state)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	make_tap("vt-tap0");
	assert_int_equal(vlan_link_move_to_netns_pid(ctx.nl, "vt-tap0", 0x3ffffff0, &ctx.err),
			 -ESRCH);
	assert_int_equal(vlan_link_move_to_netns_pid(ctx.nl, "vt-tap0", 0, &ctx.err), -ESRCH);
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-tap0", -1, &ctx.err), -EBADF);
	assert_int_equal(vlan_link_move_to_netns_fd(ctx.nl, "vt-tap0", devnull, &ctx.err),
			 -EINVAL);
	assert_true(exists("vt-tap0"));
	close(devnull);
}

/* --- 802.1Q sub-interfaces --- */

/* Creates 'opts' or skips the test if the kernel has no 8021q. */
static void make_subif_or_skip(const struct vlan_subif_opts *opts)
{
	int ret = vlan_subif_create(ctx.nl, opts, &ctx.err);

	if (ret == -EOPNOTSUPP) {
		assert_err_says("8021q");
		print_message("kernel without 802.1Q support: %s\n", ctx.err.msg);
		skip();
	}
	assert_int_equal(ret, 0);
}

static void test_subif_created_on_veth_with_vid_mac_and_mtu(void **state)
{
	struct vlan_subif_opts opts;
	struct rtnl_link *link;

	make_veth("vt-a", "vt-b");
	vlan_subif_opts_init(&opts);
	opts.parent = "vt-a";
	opts.name = "vt-a.10";
	opts.vid = 10;
	opts.mac = mac_b;
	opts.mtu_bytes = 1400;
	make_subif_or_skip(&opts);
	link = observe("vt-a.10");
	assert_non_null(link);
	assert_string_equal(rtnl_link_get_type(link), "vlan");
	assert_int_equal(rtnl_link_vlan_get_id(link), 10);
	assert_int_equal(rtnl_link_vlan_get_protocol(link), htons(VLAN_TPID_8021Q));
	assert_int_equal(rtnl_link_get_link(link), (int)if_nametoindex("vt-a"));
	assert_int_equal(rtnl_link_get_mtu(link), 1400);
	assert_mac(link, mac_b);
	rtnl_link_put(link);
}

static void test_subif_with_8021ad_tpid(void **state)
{
	struct vlan_subif_opts opts;
	struct rtnl_link *link;

	make_veth("vt-a", "vt-b");
	vlan_subif_opts_init(&opts);
	opts.parent = "vt-a";
	opts.name = "vt-a.20";
	opts.vid = 20;
	opts.tpid = VLAN_TPID_8021AD;
	make_subif_or_skip(&opts);
	link = observe("vt-a.20");
	assert_non_null(link);
	assert_int_equal(rtnl_link_vlan_get_protocol(link), htons(VLAN_TPID_8021AD));
	rtnl_link_put(link);
}

static void test_subif_with_bad_vid_or_tpid_fails_with_einval(void **state)
{
	const uint16_t bad_vids[] = {0, 4095, 4096, 0xffff};
	struct vlan_subif_opts opts;
	size_t i;

	make_veth("vt-a", "vt-b");
	vlan_subif_opts_init(&opts);
	opts.parent = "vt-a";
	opts.name = "vt-a.10";
	for (i = 0; i < sizeof(bad_vids) / sizeof(bad_vids[0]); i++) {
		opts.vid = bad_vids[i];
		assert_int_equal(vlan_subif_create(ctx.nl, &opts, &ctx.err), -EINVAL);
		assert_err_says("outside 1-4094");
	}
	opts.vid = 10;
	opts.tpid = 0x0800;
	assert_int_equal(vlan_subif_create(ctx.nl, &opts, &ctx.err), -EINVAL);
	assert_err_says("TPID 0x0800");
	assert_false(exists("vt-a.10"));
}

static void test_subif_on_missing_parent_fails_with_enodev(void **state)
{
	struct vlan_subif_opts opts;

	vlan_subif_opts_init(&opts);
	opts.parent = "vt-d";
	opts.name = "vt-a.10";
	opts.vid = 10;
	assert_int_equal(vlan_subif_create(ctx.nl, &opts, &ctx.err), -ENODEV);
	assert_err_says("parent vt-d: no such interface");
	assert_false(exists("vt-a.10"));
}

static void test_subif_with_taken_name_fails_with_eexist(void **state)
{
	struct vlan_subif_opts opts;

	make_veth("vt-a", "vt-b");
	vlan_subif_opts_init(&opts);
	opts.parent = "vt-a";
	opts.name = "vt-b";
	opts.vid = 10;
	assert_int_equal(vlan_subif_create(ctx.nl, &opts, &ctx.err), -EEXIST);
	assert_err_says("already exists");
}

/* --- Permissions --- */

static void test_without_cap_net_admin_everything_fails_with_eperm(void **state)
{
	struct vlan_veth_opts veth;
	struct vlan_tap_opts tap;
	int ret_tap, ret_veth, ret_up, ret_del;

	make_tap("vt-tap0");
	vlan_tap_opts_init(&tap);
	tap.name = "vt-tap1";
	tap.persist = true;
	vlan_veth_opts_init(&veth);
	veth.name = "vt-a";
	veth.peer_name = "vt-b";

	net_admin_effective(false);
	ret_tap = vlan_tap_create(&tap, NULL, &ctx.err);
	ret_veth = vlan_veth_create(ctx.nl, &veth, &ctx.err);
	ret_up = vlan_link_set_up(ctx.nl, "vt-tap0", true, &ctx.err);
	ret_del = vlan_link_delete(ctx.nl, "vt-tap0", &ctx.err);
	net_admin_effective(true);

	assert_int_equal(ret_tap, -EPERM);
	assert_int_equal(ret_veth, -EPERM);
	assert_int_equal(ret_up, -EPERM);
	assert_int_equal(ret_del, -EPERM);
	assert_err_says("CAP_NET_ADMIN");
	assert_false(exists("vt-tap1"));
	assert_false(exists("vt-a"));
	assert_true(exists("vt-tap0"));
}

static void test_close_accepts_null(void **state)
{
	vlan_nl_close(NULL);
}

#define NS_TEST(fn) cmocka_unit_test_teardown(fn, ns_test_teardown)

/* Runs in a fresh network namespace; returns the process exit status. */
static int run_namespace_group(void)
{
	const struct CMUnitTest tests[] = {
		NS_TEST(test_persistent_tap_outlives_its_fd_until_deleted),
		NS_TEST(test_tap_that_is_not_persistent_vanishes_with_its_fd),
		NS_TEST(test_tap_gets_requested_mac_and_flags),
		NS_TEST(test_tap_with_taken_name_fails_with_eexist),
		NS_TEST(test_tap_rejects_bad_names_before_creating_anything),
		NS_TEST(test_tap_that_is_not_persistent_needs_fd),
		NS_TEST(test_veth_pair_gets_names_macs_mtu_and_peers),
		NS_TEST(test_veth_with_either_name_taken_fails_with_eexist),
		NS_TEST(test_veth_rejects_bad_or_equal_names),
		NS_TEST(test_link_goes_up_and_down),
		NS_TEST(test_link_mtu_changes_and_bad_mtu_fails_with_einval),
		NS_TEST(test_link_mac_changes),
		NS_TEST(test_query_reports_what_the_kernel_has),
		NS_TEST(test_changes_to_missing_interface_fail_with_enodev),
		NS_TEST(test_veth_end_moves_into_namespace_by_fd),
		NS_TEST(test_tap_moves_into_namespace_of_pid),
		NS_TEST(test_move_onto_taken_name_fails_with_eexist),
		NS_TEST(test_handle_acts_in_namespace_it_was_opened_in),
		NS_TEST(test_move_to_bad_namespace_fails),
		NS_TEST(test_subif_created_on_veth_with_vid_mac_and_mtu),
		NS_TEST(test_subif_with_8021ad_tpid),
		NS_TEST(test_subif_with_bad_vid_or_tpid_fails_with_einval),
		NS_TEST(test_subif_on_missing_parent_fails_with_enodev),
		NS_TEST(test_subif_with_taken_name_fails_with_eexist),
		NS_TEST(test_without_cap_net_admin_everything_fails_with_eperm),
		NS_TEST(test_close_accepts_null),
	};

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_netlink: cannot make a network namespace (%s): skipped\n",
			strerror(errno));
		return SKIP_EXIT;
	}
	return cmocka_run_group_tests_name("vlan_netlink_ns", tests, ns_group_setup,
					   ns_group_teardown) ? 1 : 0;
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_subif_request_carries_vid_parent_mac_and_big_endian_tpid),
		cmocka_unit_test(test_subif_request_defaults_to_8021q_and_no_mac),
		cmocka_unit_test(test_libnl_codes_map_to_errno),
		cmocka_unit_test(test_interface_names_follow_kernel_rule),
		cmocka_unit_test(test_errors_are_worded_for_interfaces),
	};
	bool host_had[sizeof(test_names) / sizeof(test_names[0])];
	int failed, status;
	size_t i;
	pid_t pid;

	failed = cmocka_run_group_tests_name("vlan_netlink", pure, NULL, NULL);
	for (i = 0; i < sizeof(test_names) / sizeof(test_names[0]); i++) {
		host_had[i] = exists(test_names[i]);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("test_netlink: fork");
		return 1;
	}
	if (pid == 0) {
		exit(run_namespace_group()); /* exit, not _exit: LeakSanitizer runs at exit */
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		fprintf(stderr, "test_netlink: namespace child died\n");
		return 1;
	}
	for (i = 0; i < sizeof(test_names) / sizeof(test_names[0]); i++) {
		if (exists(test_names[i]) != host_had[i]) {
			fprintf(stderr, "test_netlink: %s changed in the host namespace\n",
				test_names[i]);
			return 1;
		}
	}
	if (failed) {
		return 1;
	}
	return WEXITSTATUS(status);
}
