/* SPDX-License-Identifier: MIT */
/* netlink.h: the parts of netlink.c that tests reach directly: the libnl
 * error translation and the VLAN create request, whose TPID byte order the
 * kernel cannot be asked about where it lacks 8021q.  Internal to libvlan. */
#ifndef VLAN_NETLINK_H
#define VLAN_NETLINK_H

#include <netlink/route/link.h>

#include "vlan.h"

/* The negative errno for libnl error code 'nle' (negative, as libnl returns
 * it).  Used only when the kernel sent no errno of its own, that is when
 * libnl failed before or after talking to it. */
int vlan_nl_errno(int nle);

/* Builds the link object of a VLAN sub-interface from 'opts' on parent
 * 'parent_ifindex', opts already checked, into '*linkp' (the caller puts it
 * with rtnl_link_put).  Returns 0 or -ENOMEM. */
int vlan_subif_link(const struct vlan_subif_opts *opts, int parent_ifindex,
		    struct rtnl_link **linkp);

#endif
