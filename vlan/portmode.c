/* SPDX-License-Identifier: MIT */
/* portmode.c: a port's VLAN mode and the two per-frame decisions the switch
 * makes with it: on ingress, which VLAN a frame belongs to (or why it is
 * dropped); on egress, whether it leaves tagged, untagged or not at all.
 * The semantics are Open vSwitch's vlan_mode, with three deliberate
 * differences: an empty trunk list carries no VLAN (OVS: all); VLAN 0 is
 * never a VLAN (OVS lets a trunk carry untagged frames as VLAN 0); and rule
 * 5, which OVS does not keep.
 *
 * Rules both decisions keep, cited below by number:
 *  1. A frame enters exactly one VLAN, 1-4094, or is dropped with a reason.
 *  2. An access or tunnel port never lets a guest choose its VLAN: only the
 *     port's configuration does (no tag is trusted on ingress there).
 *  3. A priority tag (VID 0) means "untagged, with this priority" only when
 *     nothing hides behind it.  A tag stacked behind one is dropped where
 *     the frame would count as untagged (access and native ports), and is
 *     read through where a VID inside matters (the customer VID of QinQ).
 *  4. A frame leaves a port only in a VLAN the port carries.
 *  5. A frame leaves untagged only if it does not then start with a tag
 *     carrying a VID, which the far end would take for the frame's VLAN
 *     (tunnel ports excepted: carrying customer tags is their job).  Rules
 *     2 and 5 close the double-tagging attack from both ends.
 * The decisions are pure functions over the port and the frame's bytes, so
 * they are safe in the datapath and tested exhaustively. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "vlan.h"

struct vlan_port {
	enum vlan_port_mode mode;
	uint16_t tag;            /* access, native or service VLAN; 0 for trunk */
	uint16_t tpid;           /* service tag TPID (tunnel), else 0x8100 */
	struct vlan_set *trunks; /* never NULL; empty for access and tunnel */
	struct vlan_set *cvlans; /* tunnel with a customer filter; else NULL */
};

static const char *const mode_names[] = {
	[VLAN_MODE_ACCESS] = "access",
	[VLAN_MODE_TRUNK] = "trunk",
	[VLAN_MODE_NATIVE_TAGGED] = "native-tagged",
	[VLAN_MODE_NATIVE_UNTAGGED] = "native-untagged",
	[VLAN_MODE_DOT1Q_TUNNEL] = "dot1q-tunnel",
};

static const char *const drop_names[] = {
	[VLAN_DROP_NONE] = "none",
	[VLAN_DROP_MALFORMED] = "malformed",
	[VLAN_DROP_RESERVED_VID] = "reserved-vid",
	[VLAN_DROP_TAGGED_ON_ACCESS] = "tagged-on-access",
	[VLAN_DROP_NOT_ALLOWED] = "vlan-not-allowed",
	[VLAN_DROP_UNTAGGED_NO_NATIVE] = "untagged-without-native",
	[VLAN_DROP_PRIORITY_STACKED] = "priority-tag-stacked",
	[VLAN_DROP_NOT_MEMBER] = "not-member",
	[VLAN_DROP_TAG_EXPOSED] = "tag-exposed",
};
_Static_assert(sizeof(drop_names) / sizeof(drop_names[0]) == VLAN_DROP_COUNT,
	       "every drop reason has a name");

const char *vlan_port_mode_name(enum vlan_port_mode mode)
{
	if ((unsigned int)mode >= sizeof(mode_names) / sizeof(mode_names[0])) {
		return "unknown";
	}
	return mode_names[mode];
}

int vlan_port_mode_parse(const char *name, enum vlan_port_mode *modep)
{
	size_t i;

	if (!name) {
		return -EINVAL;
	}
	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(name, mode_names[i]) == 0) {
			*modep = (enum vlan_port_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vlan_drop_name(enum vlan_drop reason)
{
	if ((unsigned int)reason >= VLAN_DROP_COUNT) {
		return "unknown";
	}
	return drop_names[reason];
}

/* --- Configuration --- */

void vlan_port_opts_init(struct vlan_port_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->mode = VLAN_MODE_ACCESS;
}

static bool tag_in_range(uint16_t vid)
{
	return vid >= VLAN_VID_MIN && vid <= VLAN_VID_MAX;
}

static bool has_trunks(const struct vlan_port_opts *opts)
{
	return opts->trunks && !vlan_set_is_empty(opts->trunks);
}

static int check_opts(const struct vlan_port_opts *opts, struct errmsg *err)
{
	const char *mode = vlan_port_mode_name(opts->mode);

	if ((unsigned int)opts->mode > VLAN_MODE_DOT1Q_TUNNEL) {
		errmsg_set(err, "unknown VLAN mode %d", (int)opts->mode);
		return -EINVAL;
	}
	if (opts->mode == VLAN_MODE_TRUNK && opts->tag != 0) {
		errmsg_set(err,
			   "a trunk port has no tag (got VLAN %u); use native-tagged or "
			   "native-untagged for a native VLAN",
			   opts->tag);
		return -EINVAL;
	}
	if (opts->mode != VLAN_MODE_TRUNK && !tag_in_range(opts->tag)) {
		errmsg_set(err, "a %s port needs a tag in %d-%d (got %u)", mode, VLAN_VID_MIN,
			   VLAN_VID_MAX, opts->tag);
		return -EINVAL;
	}
	if ((opts->mode == VLAN_MODE_ACCESS || opts->mode == VLAN_MODE_DOT1Q_TUNNEL) &&
	    has_trunks(opts)) {
		errmsg_set(err, "a %s port carries only its tag and takes no trunk list", mode);
		return -EINVAL;
	}
	if (opts->mode != VLAN_MODE_DOT1Q_TUNNEL && (opts->cvlans || opts->tunnel_tpid)) {
		errmsg_set(err,
			   "customer VLANs and a tunnel TPID apply only to dot1q-tunnel ports, "
			   "not to a %s port",
			   mode);
		return -EINVAL;
	}
	if (opts->tunnel_tpid && !vlan_tpid_is_vlan(opts->tunnel_tpid)) {
		errmsg_set(err, "tunnel TPID 0x%04x is neither 0x8100 nor 0x88a8",
			   opts->tunnel_tpid);
		return -EINVAL;
	}
	return 0;
}

int vlan_port_create(const struct vlan_port_opts *opts, struct vlan_port **portp,
		     struct errmsg *err)
{
	struct vlan_port *port;
	int ret;

	ret = check_opts(opts, err);
	if (ret < 0) {
		return ret;
	}
	port = calloc(1, sizeof(*port));
	if (!port) {
		ret = -ENOMEM;
		goto out_nomem;
	}
	port->mode = opts->mode;
	port->tag = opts->tag;
	port->tpid = VLAN_TPID_8021Q;
	if (port->mode == VLAN_MODE_DOT1Q_TUNNEL) {
		port->tpid = opts->tunnel_tpid ? opts->tunnel_tpid : VLAN_TPID_8021AD;
	}
	ret = vlan_set_create(&port->trunks);
	if (ret < 0) {
		goto out_free;
	}
	if (opts->trunks) {
		vlan_set_copy(port->trunks, opts->trunks);
	}
	if (opts->cvlans) {
		ret = vlan_set_clone(opts->cvlans, &port->cvlans);
		if (ret < 0) {
			goto out_trunks;
		}
	}
	*portp = port;
	return 0;
out_trunks:
	vlan_set_destroy(port->trunks);
out_free:
	free(port);
out_nomem:
	errmsg_set(err, "out of memory for a %s port", vlan_port_mode_name(opts->mode));
	return ret;
}

void vlan_port_destroy(struct vlan_port *port)
{
	if (!port) {
		return;
	}
	vlan_set_destroy(port->cvlans);
	vlan_set_destroy(port->trunks);
	free(port);
}

enum vlan_port_mode vlan_port_mode(const struct vlan_port *port)
{
	return port->mode;
}

uint16_t vlan_port_tag(const struct vlan_port *port)
{
	return port->tag;
}

const struct vlan_set *vlan_port_trunks(const struct vlan_port *port)
{
	return port->trunks;
}

const struct vlan_set *vlan_port_cvlans(const struct vlan_port *port)
{
	return port->cvlans;
}

uint16_t vlan_port_tpid(const struct vlan_port *port)
{
	return port->tpid;
}

/* The native VLAN is carried even when the trunk list leaves it out. */
static bool trunk_carries(const struct vlan_port *port, uint16_t vid)
{
	if (port->mode != VLAN_MODE_TRUNK && vid == port->tag) {
		return true;
	}
	return vlan_set_contains(port->trunks, vid);
}

/* Customer frames without a VID pass: the filter is over VLANs, 1-4094. */
static bool cvlan_allowed(const struct vlan_port *port, uint16_t cvid)
{
	return !port->cvlans || cvid == 0 || vlan_set_contains(port->cvlans, cvid);
}

bool vlan_port_is_member(const struct vlan_port *port, uint16_t vid)
{
	switch (port->mode) {
	case VLAN_MODE_ACCESS:
	case VLAN_MODE_DOT1Q_TUNNEL:
		return vid == port->tag;
	case VLAN_MODE_TRUNK:
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		return trunk_carries(port, vid);
	}
	return false;
}

/* --- Ingress --- */

/* The VID of the first tag from 'tags[first]' on that carries one, looking
 * through every priority tag: stacked priority tags must not hide a VID
 * (Linux strips them one by one).  When the parsed tags run out and yet
 * another tag follows, the VID is unknown: VLAN_VID_RESERVED, which no set
 * contains, so filters refuse the frame. */
static uint16_t inner_vid(const struct vlan_frame *f, unsigned int first)
{
	for (unsigned int i = first; i < f->n_tags; i++) {
		if (f->tags[i].vid != 0) {
			return f->tags[i].vid;
		}
	}
	if (f->n_tags == VLAN_MAX_TAGS && vlan_tpid_is_vlan(f->ethertype)) {
		return VLAN_VID_RESERVED;
	}
	return 0;
}

static enum vlan_ingress_action ingress_drop(struct vlan_ingress *out, enum vlan_drop reason)
{
	out->action = VLAN_INGRESS_DROP;
	out->drop = reason;
	return out->action;
}

/* The frame joins the port's own VLAN with priority 'prio' ('NULL': none). */
static enum vlan_ingress_action ingress_port_vlan(const struct vlan_port *port,
						  enum vlan_ingress_action action,
						  const struct vlan_tag *prio,
						  struct vlan_ingress *out)
{
	out->action = action;
	out->meta.vlan.tpid = port->tpid;
	out->meta.vlan.vid = port->tag;
	if (prio) {
		out->meta.vlan.pcp = prio->pcp;
		out->meta.vlan.dei = prio->dei;
	}
	return action;
}

/* (rule 2) No tag with a VID is trusted; (rule 3) nor one behind a priority
 * tag, which is the same attack one tag deeper. */
static enum vlan_ingress_action ingress_access(const struct vlan_port *port,
					       const struct vlan_frame *f,
					       struct vlan_ingress *out)
{
	if (f->n_tags == 0) {
		return ingress_port_vlan(port, VLAN_INGRESS_ACCEPT, NULL, out);
	}
	if (f->tags[0].vid != 0 || f->n_tags > 1) {
		return ingress_drop(out, VLAN_DROP_TAGGED_ON_ACCESS);
	}
	return ingress_port_vlan(port, VLAN_INGRESS_POP_PRIORITY, &f->tags[0], out);
}

/* Trunk and both native modes: the outer tag decides. */
static enum vlan_ingress_action ingress_trunk(const struct vlan_port *port,
					      const struct vlan_frame *f, struct vlan_ingress *out)
{
	if (f->n_tags == 0 || f->tags[0].vid == 0) {
		if (port->mode == VLAN_MODE_TRUNK) {
			return ingress_drop(out, VLAN_DROP_UNTAGGED_NO_NATIVE);
		}
		if (f->n_tags == 0) {
			return ingress_port_vlan(port, VLAN_INGRESS_ACCEPT, NULL, out);
		}
		if (f->n_tags > 1) {
			return ingress_drop(out, VLAN_DROP_PRIORITY_STACKED); /* rule 3 */
		}
		return ingress_port_vlan(port, VLAN_INGRESS_POP_PRIORITY, &f->tags[0], out);
	}
	if (!trunk_carries(port, f->tags[0].vid)) {
		return ingress_drop(out, VLAN_DROP_NOT_ALLOWED);
	}
	out->action = VLAN_INGRESS_ACCEPT_TAGGED;
	out->meta.vlan = f->tags[0];
	out->meta.cvid = inner_vid(f, 1);
	return out->action;
}

/* (rule 2) The service VLAN is the port's whatever the customer sent; the
 * customer's tags stay in the frame.  The service tag's priority is 0, as in
 * OVS: a customer does not set the provider's priority.  (rule 3) The
 * customer VID is read through a priority tag, so that the filter sees it. */
static enum vlan_ingress_action ingress_tunnel(const struct vlan_port *port,
					       const struct vlan_frame *f,
					       struct vlan_ingress *out)
{
	uint16_t cvid = inner_vid(f, 0);

	if (!cvlan_allowed(port, cvid)) {
		return ingress_drop(out, VLAN_DROP_NOT_ALLOWED);
	}
	out->meta.cvid = cvid;
	return ingress_port_vlan(port, VLAN_INGRESS_ACCEPT, NULL, out);
}

enum vlan_ingress_action vlan_ingress_decide(const struct vlan_port *port, const uint8_t *frame,
					     size_t len_bytes, struct vlan_ingress *out)
{
	struct vlan_frame f;

	memset(out, 0, sizeof(*out));
	if (vlan_frame_parse(frame, len_bytes, &f) < 0) {
		return ingress_drop(out, VLAN_DROP_MALFORMED);
	}
	if (f.n_tags > 0 && f.tags[0].vid == VLAN_VID_RESERVED) {
		return ingress_drop(out, VLAN_DROP_RESERVED_VID);
	}
	switch (port->mode) {
	case VLAN_MODE_ACCESS:
		return ingress_access(port, &f, out);
	case VLAN_MODE_TRUNK:
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		return ingress_trunk(port, &f, out);
	case VLAN_MODE_DOT1Q_TUNNEL:
		return ingress_tunnel(port, &f, out);
	}
	/* vlan_port_create() admits no other mode; fail closed regardless. */
	return ingress_drop(out, VLAN_DROP_NOT_MEMBER);
}

int vlan_ingress_apply(struct vlan_buf *buf, const struct vlan_ingress *in)
{
	switch (in->action) {
	case VLAN_INGRESS_ACCEPT:
		return 0;
	case VLAN_INGRESS_ACCEPT_TAGGED:
	case VLAN_INGRESS_POP_PRIORITY:
		return vlan_tag_pop(buf, NULL);
	case VLAN_INGRESS_DROP:
		break;
	}
	return -EINVAL;
}

/* --- Egress --- */

/* (rule 4) Whether 'port' carries the frame's VLAN, and if so tagged or not. */
static bool egress_member(const struct vlan_port *port, const struct vlan_meta *meta,
			  bool *want_tagp)
{
	uint16_t vid = meta->vlan.vid;

	switch (port->mode) {
	case VLAN_MODE_ACCESS:
		*want_tagp = false;
		return vid == port->tag;
	case VLAN_MODE_DOT1Q_TUNNEL:
		*want_tagp = false;
		return vid == port->tag && cvlan_allowed(port, meta->cvid);
	case VLAN_MODE_NATIVE_UNTAGGED:
		*want_tagp = vid != port->tag;
		return trunk_carries(port, vid);
	case VLAN_MODE_TRUNK:
	case VLAN_MODE_NATIVE_TAGGED:
		*want_tagp = true;
		return trunk_carries(port, vid);
	}
	return false;
}

enum vlan_egress_action vlan_egress_decide(const struct vlan_port *port,
					   const struct vlan_meta *meta, bool tagged,
					   struct vlan_egress *out)
{
	bool want_tag = false;

	memset(out, 0, sizeof(*out));
	if (!egress_member(port, meta, &want_tag)) {
		out->action = VLAN_EGRESS_DROP;
		out->drop = VLAN_DROP_NOT_MEMBER;
	} else if (!want_tag && meta->cvid != 0 && port->mode != VLAN_MODE_DOT1Q_TUNNEL) {
		out->action = VLAN_EGRESS_DROP; /* rule 5 */
		out->drop = VLAN_DROP_TAG_EXPOSED;
	} else if (want_tag == tagged) {
		out->action = VLAN_EGRESS_KEEP;
	} else if (tagged) {
		out->action = VLAN_EGRESS_STRIP;
	} else {
		out->action = VLAN_EGRESS_PUSH;
		out->push = meta->vlan;
		if (out->push.tpid == 0) {
			out->push.tpid = VLAN_TPID_8021Q;
		}
	}
	return out->action;
}

int vlan_egress_apply(struct vlan_buf *buf, const struct vlan_egress *eg)
{
	switch (eg->action) {
	case VLAN_EGRESS_KEEP:
		return 0;
	case VLAN_EGRESS_STRIP:
		return vlan_tag_pop(buf, NULL);
	case VLAN_EGRESS_PUSH:
		return vlan_tag_push(buf, &eg->push);
	case VLAN_EGRESS_DROP:
		break;
	}
	return -EINVAL;
}
