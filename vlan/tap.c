/* SPDX-License-Identifier: MIT */
/* tap.c: tap devices through the tun driver's ioctls on /dev/net/tun, since
 * rtnetlink cannot create them.  Everything after creation (up, MTU, moving
 * to a namespace, deleting a persistent device) goes through netlink.c.
 * Kept apart from netlink.c because <net/if.h>, which struct ifreq needs,
 * clashes with the <linux/if.h> that libnl's headers pull in. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "errmsg.h"
#include "iface.h"
#include "vlan.h"

void vlan_tap_opts_init(struct vlan_tap_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->owner = (uid_t)-1;
	opts->group = (gid_t)-1;
}

static int tap_ioctl(int fd, unsigned long request, void *arg)
{
	if (ioctl(fd, request, arg) < 0) {
		return -errno;
	}
	return 0;
}

/* Owner, group and MAC: all set before the device is made persistent, so a
 * failure here still leaves nothing behind once the fd closes. */
static int tap_configure(int fd, const struct vlan_tap_opts *opts, struct errmsg *err)
{
	struct ifreq ifr;
	int ret;

	if (opts->owner != (uid_t)-1) {
		ret = tap_ioctl(fd, TUNSETOWNER, (void *)(unsigned long)opts->owner);
		if (ret < 0) {
			errmsg_set(err, "tap %s: cannot set owner %u: %s", opts->name,
				   (unsigned int)opts->owner, strerror(-ret));
			return ret;
		}
	}
	if (opts->group != (gid_t)-1) {
		ret = tap_ioctl(fd, TUNSETGROUP, (void *)(unsigned long)opts->group);
		if (ret < 0) {
			errmsg_set(err, "tap %s: cannot set group %u: %s", opts->name,
				   (unsigned int)opts->group, strerror(-ret));
			return ret;
		}
	}
	if (opts->mac) {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, opts->mac, VLAN_MAC_BYTES);
		ret = tap_ioctl(fd, SIOCSIFHWADDR, &ifr);
		if (ret < 0) {
			errmsg_set(err, "tap %s: cannot set MAC address: %s", opts->name,
				   strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int tap_attach(int fd, const struct vlan_tap_opts *opts, struct errmsg *err)
{
	unsigned int flags;
	struct ifreq ifr;
	int ret;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, opts->name, strlen(opts->name));
	/* IFF_TUN_EXCL: fail on an existing device instead of attaching to it,
	 * which would hand us another user's tap. */
	flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
	if (opts->vnet_hdr) {
		flags |= IFF_VNET_HDR;
	}
	if (opts->multi_queue) {
		flags |= IFF_MULTI_QUEUE;
	}
	/* ifr_flags is a short, and IFF_TUN_EXCL its sign bit. */
	ifr.ifr_flags = (short)flags;
	ret = tap_ioctl(fd, TUNSETIFF, &ifr);
	if (ret == -EBUSY) {
		ret = -EEXIST; /* what IFF_TUN_EXCL says for "exists" */
	}
	if (ret < 0) {
		errmsg_set(err, "tap %s: cannot create: %s", opts->name, vlan_iface_cause(ret));
	}
	return ret;
}

int vlan_tap_create(const struct vlan_tap_opts *opts, int *fdp, struct errmsg *err)
{
	int fd, ret;

	ret = vlan_ifname_check(opts->name, "tap", err);
	if (ret < 0) {
		return ret;
	}
	if (!fdp && !opts->persist) {
		errmsg_set(err, "tap %s: a device that is not persistent needs its descriptor kept",
			   opts->name);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		errmsg_set(err, "tap %s: cannot open /dev/net/tun: %s", opts->name, strerror(-ret));
		return ret;
	}
	ret = tap_attach(fd, opts, err);
	if (ret < 0) {
		goto out_close;
	}
	ret = tap_configure(fd, opts, err);
	if (ret < 0) {
		goto out_close;
	}
	if (opts->persist) {
		ret = tap_ioctl(fd, TUNSETPERSIST, (void *)1UL);
		if (ret < 0) {
			errmsg_set(err, "tap %s: cannot make persistent: %s", opts->name,
				   strerror(-ret));
			goto out_close;
		}
	}
	if (fdp) {
		*fdp = fd;
	} else {
		close(fd);
	}
	return 0;
out_close:
	/* The device is not persistent yet: closing the fd removes it. */
	close(fd);
	return ret;
}
