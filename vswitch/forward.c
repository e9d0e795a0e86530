/* SPDX-License-Identifier: MIT */
/* forward.c: the per-frame decision, called by the datapath once per burst.
 * libvlan classifies the frame on its ingress port; the MAC table learns
 * the source and names the destination's port; flooding walks the VLAN's
 * member list from bridge.c; libvlan's egress decision then says, for each
 * candidate port, whether and how the frame leaves, which becomes an edit
 * relative to the bytes as received, so the datapath touches a frame only
 * when an output needs it different.
 *
 * Rules, cited below by number:
 *  1. Nothing leaves without vlan_egress_decide() saying yes for that port:
 *     a frame can neither change VLAN nor reach a port outside its VLAN.
 *  2. The ingress port is never an output.
 *  3. Every received frame is counted once on its port: forwarded, or in
 *     exactly one rx_drops reason; once it is in a VLAN, on the VLAN too.
 *  4. A frame that does not fit in the caller's outputs has no effect at
 *     all: the check comes before any counting or learning.
 */
#include <errno.h>
#include <string.h>

#include "bridge.h"

static const char *const switch_drop_names[] = {
	[VSW_DROP_BAD_SOURCE - VLAN_DROP_COUNT] = "bad-source",
	[VSW_DROP_RESERVED_GROUP - VLAN_DROP_COUNT] = "reserved-group",
	[VSW_DROP_SAME_PORT - VLAN_DROP_COUNT] = "same-port",
	[VSW_DROP_NO_OUTPUT - VLAN_DROP_COUNT] = "no-output",
	[VSW_DROP_TX_FAILED - VLAN_DROP_COUNT] = "tx-failed",
};
_Static_assert(sizeof(switch_drop_names) / sizeof(switch_drop_names[0]) ==
		       VSW_DROP_COUNT - VLAN_DROP_COUNT,
	       "every switch drop reason has a name");

const char *vsw_drop_name(enum vsw_drop reason)
{
	if ((unsigned int)reason < VLAN_DROP_COUNT) {
		return vlan_drop_name((enum vlan_drop)reason);
	}
	if ((unsigned int)reason >= VSW_DROP_COUNT) {
		return "unknown";
	}
	return switch_drop_names[reason - VLAN_DROP_COUNT];
}

/* --- Edits --- */

int vsw_edit_delta_bytes(enum vsw_edit edit)
{
	switch (edit) {
	case VSW_EDIT_POP:
		return -VLAN_TAG_BYTES;
	case VSW_EDIT_PUSH:
		return VLAN_TAG_BYTES;
	case VSW_EDIT_NONE:
	case VSW_EDIT_REWRITE:
		break;
	}
	return 0;
}

int vsw_output_apply(const struct vsw_output *out, struct vlan_buf *buf)
{
	struct vlan_tag old;
	int ret;

	switch ((enum vsw_edit)out->edit) {
	case VSW_EDIT_NONE:
		return 0;
	case VSW_EDIT_POP:
		return vlan_tag_pop(buf, NULL);
	case VSW_EDIT_PUSH:
		return vlan_tag_push(buf, &out->tag);
	case VSW_EDIT_REWRITE:
		break;
	}
	/* The pop leaves 4 bytes of headroom, so the push cannot lack room;
	 * should it fail anyway, the old tag goes back where it was. */
	ret = vlan_tag_pop(buf, &old);
	if (ret < 0) {
		return ret;
	}
	ret = vlan_tag_push(buf, &out->tag);
	if (ret < 0) {
		(void)vlan_tag_push(buf, &old);
	}
	return ret;
}

/* libvlan describes egress relative to the frame in its VLAN (with its tag
 * kept when 'tagged'); the datapath wants it relative to what arrived,
 * which still holds the priority tag that POP_PRIORITY would have popped. */
static enum vsw_edit edit_for(enum vlan_ingress_action in, enum vlan_egress_action eg)
{
	if (eg == VLAN_EGRESS_STRIP) {
		return VSW_EDIT_POP;
	}
	if (in == VLAN_INGRESS_POP_PRIORITY) {
		return eg == VLAN_EGRESS_PUSH ? VSW_EDIT_REWRITE : VSW_EDIT_POP;
	}
	return eg == VLAN_EGRESS_PUSH ? VSW_EDIT_PUSH : VSW_EDIT_NONE;
}

/* --- One frame --- */

struct frame {
	struct vsw_bridge *br;
	uint16_t in_no;
	struct vsw_bport *in;
	const uint8_t *data;
	uint32_t len_bytes;
	struct vlan_ingress ing;
	struct vsw_counters *vc; /* the frame's VLAN's, once it has one */
	struct vsw_verdict *v;
	struct vsw_output *outs; /* this frame's first output */
	bool learn_idempotent;   /* learning the last frame's source again now
				  * would change nothing, not even a counter */
};

static bool mac_is_group(const uint8_t *mac)
{
	return mac[0] & 1;
}

static bool mac_is_zero(const uint8_t *mac)
{
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

/* 01:80:c2:00:00:00 to :0f, which 802.1D bridges consume, never forward. */
static bool mac_is_reserved_group(const uint8_t *mac)
{
	return mac[0] == 0x01 && mac[1] == 0x80 && mac[2] == 0xc2 && mac[3] == 0 && mac[4] == 0 &&
	       (mac[5] & 0xf0) == 0;
}

/* (rule 3) The frame's one drop reason. */
static void drop_frame(struct frame *f, enum vsw_drop reason)
{
	f->in->counters.rx_drops[reason]++;
	if (f->vc) {
		f->vc->rx_drops[reason]++;
	}
	f->v->drop = (uint8_t)reason;
}

/* (rule 1) Offers the frame to one port; its egress decision has the last
 * word, and a refusal counts on that port and the VLAN. */
static void offer(struct frame *f, uint16_t port_no)
{
	struct vsw_bport *port = &f->br->ports[port_no];
	struct vsw_output *out;
	struct vlan_egress eg;
	uint32_t len;

	if (vlan_egress_decide(port->vlan, &f->ing.meta,
			       f->ing.action == VLAN_INGRESS_ACCEPT_TAGGED,
			       &eg) == VLAN_EGRESS_DROP) {
		port->counters.tx_drops[eg.drop]++;
		f->vc->tx_drops[eg.drop]++;
		return;
	}
	out = &f->outs[f->v->n_outputs++];
	out->tx_ctx = port->tx_ctx;
	out->port_no = port_no;
	out->edit = (uint8_t)edit_for(f->ing.action, eg.action);
	memset(&out->tag, 0, sizeof(out->tag));
	if (eg.action == VLAN_EGRESS_PUSH) {
		out->tag = eg.push;
	}
	len = (uint32_t)((int64_t)f->len_bytes + vsw_edit_delta_bytes(out->edit));
	port->counters.tx_packets++;
	port->counters.tx_bytes += len;
	f->vc->tx_packets++;
	f->vc->tx_bytes += len;
}

/* Within the VLAN only, and (rule 2) never back where it came from.  A
 * port removed while the lists could not be rebuilt is skipped. */
static void flood(struct frame *f, uint16_t vid)
{
	const struct vsw_flood_lists *fl = &f->br->flood;
	uint32_t i;
	uint16_t p;

	f->v->flooded = true;
	f->in->counters.flooded++;
	f->vc->flooded++;
	for (i = fl->off[vid]; i < fl->off[vid + 1]; i++) {
		p = fl->ports[i];
		if (p != f->in_no && f->br->ports[p].in_use) {
			offer(f, p);
		}
	}
}

/* The frame is in VLAN 'vid' now: learn, then find its way. */
static void switch_frame(struct frame *f, uint16_t vid, uint64_t now_ms)
{
	const uint8_t *dst = f->data, *src = f->data + VLAN_MAC_BYTES;
	uint16_t to;

	if (mac_is_group(src) || mac_is_zero(src)) {
		drop_frame(f, VSW_DROP_BAD_SOURCE);
		return;
	}
	if (mac_is_reserved_group(dst)) {
		drop_frame(f, VSW_DROP_RESERVED_GROUP);
		return;
	}
	/* A refused station (static elsewhere, or no room) counts each time
	 * it is seen, so a repeat of this frame must learn again. */
	switch (vsw_mac_learn(f->br->macs, vid, src, f->in_no, now_ms)) {
	case VSW_MAC_LEARNED:
	case VSW_MAC_REFRESHED:
	case VSW_MAC_MOVED:
	case VSW_MAC_STATIC:
		f->learn_idempotent = true;
		break;
	case VSW_MAC_STATIC_CONFLICT:
	case VSW_MAC_NO_SPACE:
		break;
	}
	to = mac_is_group(dst) ? VSW_MAC_NO_PORT : vsw_mac_lookup(f->br->macs, vid, dst, now_ms);
	if (to == f->in_no) {
		drop_frame(f, VSW_DROP_SAME_PORT); /* rule 2 */
		return;
	}
	if (to == VSW_MAC_NO_PORT) {
		flood(f, vid);
	} else {
		offer(f, to);
	}
	if (f->v->n_outputs == 0) {
		drop_frame(f, VSW_DROP_NO_OUTPUT);
	}
}

/* Returns the frame's number of outputs, or -ENOSPC (rule 4) with nothing
 * done if 'room' may be too small for them. */
static int decide(struct frame *f, const struct vsw_pkt *pkt, uint64_t now_ms, unsigned int room)
{
	uint16_t vid;

	f->data = pkt->data;
	f->len_bytes = pkt->len_bytes;
	f->vc = NULL;
	f->learn_idempotent = false;
	vlan_ingress_decide(f->in->vlan, pkt->data, pkt->len_bytes, &f->ing);
	vid = f->ing.action == VLAN_INGRESS_DROP ? 0 : f->ing.meta.vlan.vid;
	if (vid != 0 && vsw_flood_count(f->br, vid) > room) {
		return -ENOSPC;
	}
	memset(f->v, 0, sizeof(*f->v));
	f->in->counters.rx_packets++;
	f->in->counters.rx_bytes += pkt->len_bytes;
	if (vid == 0) {
		drop_frame(f, (enum vsw_drop)f->ing.drop);
		return 0;
	}
	f->v->vid = vid;
	f->vc = &f->br->vlan_counters[vid];
	f->vc->rx_packets++;
	f->vc->rx_bytes += pkt->len_bytes;
	switch_frame(f, vid, now_ms);
	return f->v->n_outputs;
}

/* A frame whose first VSW_PEEK_BYTES equal those of the frame before it in
 * the burst goes the same way: the same ingress decision (the port's
 * configuration cannot change within a burst), the same source learnt at
 * the same 'now_ms', the same destination.  Bursts from one guest are
 * mostly one flow, so when the previous frame went to one known port,
 * only its counting is redone: no parse, learning or lookup.  Floods and
 * drops are decided afresh, since they count on other ports too; so is a
 * frame whose source the table refused, since each refusal counts in the
 * table's statistics ('learn_idempotent'). */
static bool repeats(const struct frame *f, const struct vsw_pkt *pkt, const struct vsw_pkt *prev,
		    const struct vsw_verdict *pv)
{
	return f->learn_idempotent && pv->n_outputs == 1 && !pv->flooded &&
	       pkt->len_bytes >= VSW_PEEK_BYTES &&
	       prev->len_bytes >= VSW_PEEK_BYTES &&
	       memcmp(pkt->data, prev->data, VSW_PEEK_BYTES) == 0;
}

/* Counts a repeated frame (see repeats()) exactly as decide() would. */
static int repeat(struct frame *f, const struct vsw_pkt *pkt, const struct vsw_verdict *pv,
		  const struct vsw_output *pout, unsigned int room)
{
	struct vsw_counters *vc = &f->br->vlan_counters[pv->vid];
	struct vsw_bport *out = &f->br->ports[pout->port_no];
	uint32_t len = (uint32_t)((int64_t)pkt->len_bytes + vsw_edit_delta_bytes(pout->edit));

	if (room < 1) {
		return -ENOSPC;
	}
	*f->v = *pv;
	f->outs[0] = *pout;
	f->in->counters.rx_packets++;
	f->in->counters.rx_bytes += pkt->len_bytes;
	vc->rx_packets++;
	vc->rx_bytes += pkt->len_bytes;
	out->counters.tx_packets++;
	out->counters.tx_bytes += len;
	vc->tx_packets++;
	vc->tx_bytes += len;
	return 1;
}

int vsw_forward_burst(struct vsw_bridge *br, uint16_t in_port, const struct vsw_pkt *pkts,
		      unsigned int n_pkts, uint64_t now_ms, struct vsw_verdict *verdicts,
		      struct vsw_output *outputs, unsigned int max_outputs)
{
	struct frame f = {.br = br, .in_no = in_port};
	unsigned int i, used = 0;
	int ret;

	f.in = vsw_bport_get(br, in_port);
	if (!f.in) {
		return -ENODEV;
	}
	for (i = 0; i < n_pkts; i++) {
		f.v = &verdicts[i];
		f.outs = outputs ? outputs + used : NULL;
		if (i > 0 && outputs && repeats(&f, &pkts[i], &pkts[i - 1], &verdicts[i - 1])) {
			ret = repeat(&f, &pkts[i], &verdicts[i - 1],
				     &outputs[verdicts[i - 1].first_output], max_outputs - used);
		} else {
			ret = decide(&f, &pkts[i], now_ms, max_outputs - used);
		}
		if (ret < 0) {
			break;
		}
		verdicts[i].first_output = used;
		used += (unsigned int)ret;
	}
	if (i == 0 && n_pkts > 0) {
		return -ENOSPC;
	}
	return (int)i;
}

int vsw_forward(struct vsw_bridge *br, uint16_t in_port, const uint8_t *frame, uint32_t len_bytes,
		uint64_t now_ms, struct vsw_verdict *verdict, struct vsw_output *outputs,
		unsigned int max_outputs)
{
	struct vsw_pkt pkt = {.data = frame, .len_bytes = len_bytes};
	int ret;

	ret = vsw_forward_burst(br, in_port, &pkt, 1, now_ms, verdict, outputs, max_outputs);
	if (ret < 0) {
		return ret;
	}
	return verdict->n_outputs;
}
