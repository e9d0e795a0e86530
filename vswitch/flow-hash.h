/* SPDX-License-Identifier: MIT */
/* flow-hash.h: which of a multiqueue port's transmit queues a frame takes.
 * The datapath spreads the frames for a port with several queues by a hash
 * of their flow, so that the guest's receive work spreads over its vCPUs
 * while the frames of one flow keep their order (one flow, one queue).  The
 * port's provider then moves a queue the guest has not enabled onto one it
 * has (vsw_queue_remap), so no frame is lost to the guest's choice of how
 * many queues to use.  Pure functions, no DPDK, so they are unit-tested on
 * their own (tests/unit/vswitch/test_flow_hash.c).
 *
 * A flow is what the frame's headers say, read from the first 'len_bytes':
 * both MAC addresses, the VLAN ids of up to VLAN_MAX_TAGS tags, the type,
 * and for IPv4 and IPv6 the addresses, the protocol and, for TCP, UDP and
 * SCTP, the ports.  Fragments of IPv4 (and IPv6 packets with extension
 * headers) are hashed without ports, so every fragment of a datagram takes
 * the queue of its first.  The hash is not keyed: whoever controls a flow's
 * headers can pick the victim's queue, but can flood that guest anyway;
 * the MAC table, where a chosen collision would cost everyone, is keyed.
 */
#ifndef VSW_FLOW_HASH_H
#define VSW_FLOW_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The flow hash of the frame at 'frame' (starting at the destination MAC);
 * never reads past 'len_bytes'.  A frame too short for a header hashes on
 * what it has. */
uint32_t vsw_flow_hash(const uint8_t *frame, size_t len_bytes);

/* The queue in 0..n_queues-1 for 'hash' (n_queues >= 1): the hash's high
 * bits scaled, which spreads as evenly as a modulo without a division. */
static inline uint16_t vsw_flow_queue(uint32_t hash, uint16_t n_queues)
{
	return (uint16_t)(((uint64_t)hash * n_queues) >> 32);
}

/* The queue to use for 'queue' when bit q of 'enabled' says queue q is
 * enabled: 'queue' itself if it is, else the (queue mod n)-th of the n
 * enabled ones, so the flows of a disabled queue stay together and the
 * disabled queues' share is spread over the enabled ones.  With nothing
 * enabled, 'queue' (the send then fails as it would have).  Queues from 32
 * up are treated as disabled. */
uint16_t vsw_queue_remap(uint32_t enabled, uint16_t queue);

#endif
