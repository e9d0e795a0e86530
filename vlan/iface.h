/* SPDX-License-Identifier: MIT */
/* iface.h: what tap.c (tun ioctl) and netlink.c (libnl) share: the rule for
 * interface names and the words for common failures, so that both sides
 * check alike and speak alike.  Internal to libvlan. */
#ifndef VLAN_IFACE_H
#define VLAN_IFACE_H

#include <stdbool.h>

struct errmsg;

/* True if 'name' follows the rule in vlan.h. */
bool vlan_ifname_is_valid(const char *name);

/* Returns 0 if 'name' is valid, else -EINVAL with a sentence in 'err' that
 * names 'what' ("tap", "veth peer"...). */
int vlan_ifname_check(const char *name, const char *what, struct errmsg *err);

/* A short cause for negative errno 'err', worded for interfaces ("an
 * interface with that name already exists" for -EEXIST).  Static storage. */
const char *vlan_iface_cause(int err);

#endif
