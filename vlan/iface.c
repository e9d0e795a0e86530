/* SPDX-License-Identifier: MIT */
/* iface.c: interface name checks and failure wording shared by tap.c and
 * netlink.c.  Names are checked here before any system call so that a bad
 * one gets a sentence saying why rather than the kernel's bare EINVAL. */
#include <errno.h>
#include <string.h>

#include "errmsg.h"
#include "iface.h"
#include "vlan.h"

/* The kernel's dev_valid_name(), plus '%': "tap%d" would let the kernel
 * choose, and then the caller would not know the name it asked for. */
bool vlan_ifname_is_valid(const char *name)
{
	size_t len;

	if (!name) {
		return false;
	}
	len = strnlen(name, VLAN_IFNAME_BYTES);
	if (len == 0 || len >= VLAN_IFNAME_BYTES) {
		return false;
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		return false;
	}
	return strpbrk(name, "/:% \t\n\v\f\r") == NULL;
}

int vlan_ifname_check(const char *name, const char *what, struct errmsg *err)
{
	if (vlan_ifname_is_valid(name)) {
		return 0;
	}
	if (!name) {
		errmsg_set(err, "%s: no interface name given", what);
	} else {
		errmsg_set(err, "%s: \"%.*s\" is not a valid interface name (1-%d bytes, "
				"no '/', ':', '%%' or blanks)",
			   what, 64, name, VLAN_IFNAME_BYTES - 1);
	}
	return -EINVAL;
}

const char *vlan_iface_cause(int err)
{
	switch (err) {
	case -EEXIST:
		return "an interface with that name already exists";
	case -EPERM:
	case -EACCES:
		return "not permitted (CAP_NET_ADMIN is needed in the network namespace)";
	case -ENODEV:
		return "no such interface";
	case -EOPNOTSUPP:
		return "not supported by this kernel";
	default:
		return strerror(-err);
	}
}
