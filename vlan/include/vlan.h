/* SPDX-License-Identifier: MIT */
/* vlan.h: libvlan, the VLAN layer under the switch.  Four parts, each usable
 * on its own: tags (parse, push and pop 802.1Q / 802.1ad tags in a frame held
 * in a plain byte buffer), VLAN sets (VIDs 1-4094, text form "10,20-30"),
 * ports (Open vSwitch's vlan_mode semantics and the pure per-frame ingress
 * and egress decisions), and kernel interfaces (tap, veth, 802.1Q
 * sub-interfaces) through the tun ioctl and libnl-route-3.
 *
 * Conventions for the whole header:
 *  - Functions return 0 (or a count) on success and a negative errno on
 *    failure; out-parameters ending in 'p' are written only on success.
 *  - Calls a user must understand take a last 'struct errmsg *err' (NULL
 *    allowed) and leave one sentence in it on failure.
 *  - Nothing prints, exits or keeps global state.  Any function may run on
 *    any thread; a handle must not be modified while another thread uses
 *    it, and const handles may be shared by any number of readers.
 *  - Frames are Ethernet frames without FCS, starting at the destination
 *    MAC.  Nothing here reads or writes outside the bounds it is given.
 */
#ifndef VLAN_H
#define VLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct errmsg;

/* ---------------------------------------------------------------- Tags */

#define VLAN_TPID_8021Q 0x8100  /* customer tag (C-tag) */
#define VLAN_TPID_8021AD 0x88a8 /* service tag (S-tag), the outer tag of QinQ */

#define VLAN_VID_MIN 1
#define VLAN_VID_MAX 4094     /* 4095 is reserved by 802.1Q */
#define VLAN_VID_RESERVED 4095
#define VLAN_PCP_MAX 7

#define VLAN_MAC_BYTES 6
#define VLAN_ETH_ADDRS_BYTES 12 /* destination and source MAC: a tag goes right after */
#define VLAN_ETH_HDR_BYTES 14   /* the shortest frame any function here accepts */
#define VLAN_TAG_BYTES 4        /* TPID and TCI */
/* Tags a parse looks at: QinQ, plus a priority tag the customer VID may hide
 * behind (S-tag, priority tag, C-tag). */
#define VLAN_MAX_TAGS 3

/* One tag, unpacked.  'vid' 0 makes a priority tag (priority without a VLAN). */
struct vlan_tag {
	uint16_t tpid; /* VLAN_TPID_8021Q or VLAN_TPID_8021AD */
	uint16_t vid;  /* 0-4095; only 0-4094 may be pushed */
	uint8_t pcp;   /* priority code point, 0-7 */
	bool dei;      /* drop eligible indicator */
};

/* True if 'tpid' starts a tag this library understands (0x8100, 0x88a8). */
bool vlan_tpid_is_vlan(uint16_t tpid);

/* A frame in a caller-owned buffer: the frame is the 'len_bytes' bytes at
 * 'base + head_bytes', inside 'cap_bytes' bytes of 'base'.  Room before the
 * frame (headroom) lets a push move only the 12 address bytes, as with an
 * rte_mbuf or an sk_buff; without headroom a push moves the rest of the frame
 * back into the tailroom instead.  A pop always adds to the headroom, so the
 * frame may start at another offset afterwards: use vlan_buf_data(). */
struct vlan_buf {
	uint8_t *base;
	size_t head_bytes;
	size_t len_bytes;
	size_t cap_bytes;
};

static inline uint8_t *vlan_buf_data(const struct vlan_buf *buf)
{
	return buf->base + buf->head_bytes;
}

/* What vlan_frame_parse() found. */
struct vlan_frame {
	unsigned int n_tags;                 /* 0..VLAN_MAX_TAGS, outer first */
	struct vlan_tag tags[VLAN_MAX_TAGS];
	uint16_t ethertype;                  /* the type field after those tags */
	size_t payload_offset_bytes;         /* first byte after 'ethertype' */
};

/* Reads the tags at the start of the 'len_bytes' bytes at 'frame' into
 * '*infop'.  A frame with more than VLAN_MAX_TAGS tags reports the first
 * VLAN_MAX_TAGS, and its 'ethertype' is then the next TPID.  Returns 0, or
 * -EINVAL if 'frame' is NULL, shorter than an Ethernet header, or ends
 * inside a tag or before the type field after one.  Pure. */
int vlan_frame_parse(const uint8_t *frame, size_t len_bytes, struct vlan_frame *infop);

/* Inserts 'tag' as the new outer tag of the frame in 'buf' (an existing tag
 * becomes the inner one), using headroom if there are 4 bytes of it, else
 * tailroom.  Returns 0; -EINVAL if 'buf' is inconsistent (head + len beyond
 * cap), the frame is shorter than an Ethernet header, or 'tag' has an
 * unknown TPID, a VID above 4094 or a PCP above 7; -ENOSPC if neither
 * headroom nor tailroom has 4 bytes.  On failure 'buf' is unchanged. */
int vlan_tag_push(struct vlan_buf *buf, const struct vlan_tag *tag);

/* Removes the outer tag of the frame in 'buf' and, if 'tagp' is non-null,
 * stores it there.  The frame then starts 4 bytes later in 'base'.  Returns
 * 0; -ENOENT if the frame is not tagged; -EINVAL if 'buf' is inconsistent
 * or the frame is too short for its header or tag.  On failure 'buf' is
 * unchanged. */
int vlan_tag_pop(struct vlan_buf *buf, struct vlan_tag *tagp);

/* ----------------------------------------------------------- VLAN sets */

/* A set of VLAN IDs, 1-4094 (opaque: a 512-byte bitmap).  VID 0 and 4095 are
 * never members.  An empty set means "no VLANs", never "all". */
struct vlan_set;

/* The longest text vlan_set_format() writes, with its NUL: each VID printed
 * at most once, at most 4 digits and one separator each. */
#define VLAN_SET_TEXT_MAX_BYTES (4094 * 5 + 1)

/* Allocates an empty set into '*setp'.  Returns 0 or -ENOMEM. */
int vlan_set_create(struct vlan_set **setp);
/* Frees 'set' (NULL: no-op). */
void vlan_set_destroy(struct vlan_set *set);
/* Allocates a copy of 'src' into '*copyp'.  Returns 0 or -ENOMEM. */
int vlan_set_clone(const struct vlan_set *src, struct vlan_set **copyp);
/* Makes 'dst' hold exactly the members of 'src'. */
void vlan_set_copy(struct vlan_set *dst, const struct vlan_set *src);
/* Removes every member. */
void vlan_set_clear(struct vlan_set *set);

/* Adds, or removes, 'vid'.  Returns 0, or -EINVAL if 'vid' is not 1-4094. */
int vlan_set_add(struct vlan_set *set, uint16_t vid);
int vlan_set_remove(struct vlan_set *set, uint16_t vid);
/* Adds 'first' to 'last' inclusive.  Returns 0, or -EINVAL (set unchanged) if
 * either is outside 1-4094 or 'first' > 'last'. */
int vlan_set_add_range(struct vlan_set *set, uint16_t first, uint16_t last);

/* True if 'vid' is a member; false for a NULL 'set' and for 0 and 4095. */
bool vlan_set_contains(const struct vlan_set *set, uint16_t vid);
bool vlan_set_is_empty(const struct vlan_set *set);
bool vlan_set_equal(const struct vlan_set *a, const struct vlan_set *b);
/* Number of members, 0-4094. */
unsigned int vlan_set_count(const struct vlan_set *set);
/* The smallest member greater than 'after', or 0 if none.  Iterate with
 * for (v = vlan_set_next(s, 0); v; v = vlan_set_next(s, v)). */
uint16_t vlan_set_next(const struct vlan_set *set, uint16_t after);

/* Replaces the members of 'set' with the list in 'text': comma-separated
 * VIDs and inclusive ranges ("10,20-30"), blanks allowed around items.  An
 * empty or blank 'text' gives the empty set.  Returns 0, or -EINVAL with a
 * sentence naming the offending offset in 'err'; on failure 'set' is
 * unchanged. */
int vlan_set_parse(struct vlan_set *set, const char *text, struct errmsg *err);

/* Writes 'set' as text vlan_set_parse() reads back ("10,20-30", runs of two
 * or more as ranges, "" for the empty set) into 'buf' of 'size_bytes'.
 * Returns the text's length without the NUL, or -ENOSPC (with 'buf' an
 * empty string if 'size_bytes' > 0).  VLAN_SET_TEXT_MAX_BYTES always fits. */
int vlan_set_format(const struct vlan_set *set, char *buf, size_t size_bytes);

/* --------------------------------------------------------------- Ports */

/* A port's VLAN mode, as Open vSwitch's Port vlan_mode column:
 *  ACCESS           one VLAN ('tag'), untagged on the wire; tagged frames
 *                   are dropped, even those tagged with 'tag'.  Priority
 *                   tagged frames (VID 0) count as untagged, priority kept.
 *  TRUNK            the VLANs in 'trunks', tagged on the wire; untagged and
 *                   priority-tagged frames are dropped (no native VLAN).
 *  NATIVE_TAGGED    a trunk whose untagged frames belong to 'tag', the
 *                   native VLAN; egress in it is tagged.
 *  NATIVE_UNTAGGED  the same, but egress in the native VLAN is untagged.
 *  DOT1Q_TUNNEL     QinQ: every frame belongs to the service VLAN 'tag',
 *                   whatever the customer's tags; the service tag is pushed
 *                   on ingress and popped on egress, and the customer's tags
 *                   ride inside untouched, optionally filtered by 'cvlans'.
 * In native modes the native VLAN is carried whether or not 'trunks' lists
 * it, as OVS forces it into the trunk set. */
enum vlan_port_mode {
	VLAN_MODE_ACCESS,
	VLAN_MODE_TRUNK,
	VLAN_MODE_NATIVE_TAGGED,
	VLAN_MODE_NATIVE_UNTAGGED,
	VLAN_MODE_DOT1Q_TUNNEL,
};

/* "access", "trunk", "native-tagged", "native-untagged", "dot1q-tunnel"
 * (OVS's spelling); "unknown" for other values.  Static storage. */
const char *vlan_port_mode_name(enum vlan_port_mode mode);
/* Reads one of the names above into '*modep'.  Returns 0 or -EINVAL. */
int vlan_port_mode_parse(const char *name, enum vlan_port_mode *modep);

struct vlan_port_opts {
	enum vlan_port_mode mode;       /* default VLAN_MODE_ACCESS */
	uint16_t tag;                   /* access, native or service VLAN, 1-4094;
					 * must be 0 for TRUNK */
	const struct vlan_set *trunks;  /* trunk and native modes: VLANs carried
					 * tagged; NULL or empty: none.  Must be
					 * NULL or empty for the other modes. */
	const struct vlan_set *cvlans;  /* DOT1Q_TUNNEL only: customer VLANs let
					 * through; NULL: all.  The customer VID
					 * is read through a priority tag;
					 * frames without one (untagged, or
					 * priority tagged alone) always pass. */
	uint16_t tunnel_tpid;           /* DOT1Q_TUNNEL: TPID of the service tag;
					 * 0 means VLAN_TPID_8021AD */
};

/* A port's VLAN configuration (opaque, immutable once made).  To change a
 * port, make a new one and swap the pointer; the old one may be destroyed
 * once no thread still decides with it. */
struct vlan_port;

void vlan_port_opts_init(struct vlan_port_opts *opts);
/* Checks 'opts' and makes a port from it into '*portp'; the sets are copied,
 * so they may change or go away afterwards.  Returns 0; -EINVAL with a
 * sentence in 'err' for a contradictory or out-of-range option; -ENOMEM. */
int vlan_port_create(const struct vlan_port_opts *opts, struct vlan_port **portp,
		     struct errmsg *err);
/* Frees 'port' (NULL: no-op). */
void vlan_port_destroy(struct vlan_port *port);

enum vlan_port_mode vlan_port_mode(const struct vlan_port *port);
/* The access, native or service VLAN; 0 for a trunk. */
uint16_t vlan_port_tag(const struct vlan_port *port);
/* The trunk set (empty if none); borrowed until the port is destroyed. */
const struct vlan_set *vlan_port_trunks(const struct vlan_port *port);
/* The customer VLAN filter, or NULL for none; borrowed likewise. */
const struct vlan_set *vlan_port_cvlans(const struct vlan_port *port);
/* The TPID of the service tag (DOT1Q_TUNNEL), else VLAN_TPID_8021Q. */
uint16_t vlan_port_tpid(const struct vlan_port *port);
/* True if the port carries VLAN 'vid' at all (for flooding and learning). */
bool vlan_port_is_member(const struct vlan_port *port, uint16_t vid);

/* Why a frame was dropped; use as an index into per-port counters. */
enum vlan_drop {
	VLAN_DROP_NONE,
	VLAN_DROP_MALFORMED,        /* shorter than its Ethernet header or tag */
	VLAN_DROP_RESERVED_VID,     /* outer tag carries VID 4095 */
	VLAN_DROP_TAGGED_ON_ACCESS, /* tag with a VID on an access port: the
				     * double-tagging attack starts here */
	VLAN_DROP_NOT_ALLOWED,      /* VLAN not in trunks, or customer VLAN not
				     * in cvlans */
	VLAN_DROP_UNTAGGED_NO_NATIVE, /* untagged or priority tagged on a trunk */
	VLAN_DROP_PRIORITY_STACKED, /* priority tag with another tag behind it on
				     * a native port: treating it as untagged
				     * would smuggle the inner tag in */
	VLAN_DROP_NOT_MEMBER,       /* egress: the port is not in the VLAN */
	VLAN_DROP_TAG_EXPOSED,      /* egress: sent untagged, the frame would
				     * start with a tag the far end takes for
				     * its VLAN: the second half of the
				     * double-tagging attack */
	VLAN_DROP_COUNT             /* number of values above */
};

/* "none", "malformed", "reserved-vid", "tagged-on-access", "vlan-not-allowed",
 * "untagged-without-native", "priority-tag-stacked", "not-member",
 * "tag-exposed"; "unknown" for other values.  Static storage. */
const char *vlan_drop_name(enum vlan_drop reason);

/* What the switch carries beside a frame once ingress has classified it. */
struct vlan_meta {
	struct vlan_tag vlan; /* 'vid': the frame's VLAN, 1-4094; 'pcp', 'dei':
			       * its priority; 'tpid': the TPID to tag it with
			       * on a trunk (the received one, 0x8100 from an
			       * access or native port, the service TPID from
			       * a tunnel port) */
	uint16_t cvid;        /* VID of the first tag inside the frame's
			       * VLAN (the customer's, in QinQ), looking
			       * through every priority tag; 0 if none;
			       * VLAN_VID_RESERVED if the VLAN_MAX_TAGS
			       * tags read carry none and another follows */
};

enum vlan_ingress_action {
	VLAN_INGRESS_DROP,          /* 'drop' says why */
	VLAN_INGRESS_ACCEPT,        /* the frame carries no tag of its VLAN */
	VLAN_INGRESS_ACCEPT_TAGGED, /* its outer tag is its VLAN's tag */
	VLAN_INGRESS_POP_PRIORITY,  /* its outer tag is a priority tag: pop it,
				     * then as ACCEPT (the priority is in meta) */
};

struct vlan_ingress {
	enum vlan_ingress_action action;
	enum vlan_drop drop;   /* VLAN_DROP_NONE unless action is DROP */
	struct vlan_meta meta; /* valid unless action is DROP */
};

/* Decides which VLAN the 'len_bytes' bytes at 'frame', received on 'port',
 * belong to, or why they are dropped, into '*out'; returns 'out->action'.
 * Only the outer VLAN_MAX_TAGS tags are read.  Pure: no side effect, the
 * same answer for the same input; safe in the datapath. */
enum vlan_ingress_action vlan_ingress_decide(const struct vlan_port *port, const uint8_t *frame,
					     size_t len_bytes, struct vlan_ingress *out);

/* Brings the frame in 'buf' to the switch's canonical form, untagged in its
 * VLAN: pops the outer tag for ACCEPT_TAGGED and POP_PRIORITY, does nothing
 * for ACCEPT.  Returns 0, -EINVAL for a DROP decision, or vlan_tag_pop()'s
 * error.  A caller may instead keep an ACCEPT_TAGGED frame's tag and tell the
 * egress decision so ('tagged'). */
int vlan_ingress_apply(struct vlan_buf *buf, const struct vlan_ingress *in);

enum vlan_egress_action {
	VLAN_EGRESS_DROP,  /* 'drop' says why */
	VLAN_EGRESS_KEEP,  /* send as is */
	VLAN_EGRESS_STRIP, /* pop the frame's outer tag (its VLAN tag) */
	VLAN_EGRESS_PUSH,  /* push 'push' */
};

struct vlan_egress {
	enum vlan_egress_action action;
	enum vlan_drop drop;  /* VLAN_DROP_NONE unless action is DROP */
	struct vlan_tag push; /* the tag to push when action is PUSH */
};

/* Decides how a frame described by 'meta' leaves through 'port', into
 * '*out'; returns 'out->action'.  'tagged' says whether the frame still
 * carries its VLAN's tag as its outer tag (false in canonical form); it
 * changes how a frame leaves, never whether.  Dropped: a frame whose VLAN
 * the port does not carry, or, on a tunnel port, whose customer VLAN
 * 'cvlans' excludes (NOT_MEMBER); a frame with an inner VID ('meta->cvid')
 * that an access or native-untagged port would send untagged (TAG_EXPOSED;
 * OVS sends it, letting it hop VLANs at the next switch).  Pure, as above. */
enum vlan_egress_action vlan_egress_decide(const struct vlan_port *port,
					   const struct vlan_meta *meta, bool tagged,
					   struct vlan_egress *out);

/* Carries out 'eg' on the frame in 'buf'.  Returns 0, -EINVAL for a DROP
 * decision, or the error of vlan_tag_pop() / vlan_tag_push(). */
int vlan_egress_apply(struct vlan_buf *buf, const struct vlan_egress *eg);

/* --------------------------------------------------- Kernel interfaces */

/* Interface names are 1-15 bytes without '/', ':', '%' or blanks, and not
 * "." or ".." (the kernel's rule, plus '%', which would let the kernel pick
 * the name).  These calls need CAP_NET_ADMIN in the network namespace they
 * act in: -EPERM otherwise.  An existing name gives -EEXIST. */
#define VLAN_IFNAME_BYTES 16 /* IFNAMSIZ, with the NUL */

struct vlan_tap_opts {
	const char *name;     /* required */
	bool persist;         /* outlive the file descriptor (TUNSETPERSIST) */
	bool vnet_hdr;        /* frames carry a virtio-net header (IFF_VNET_HDR) */
	bool multi_queue;     /* IFF_MULTI_QUEUE */
	const uint8_t *mac;   /* VLAN_MAC_BYTES bytes; NULL: the kernel's random one */
	uid_t owner;          /* may attach without CAP_NET_ADMIN; (uid_t)-1: none */
	gid_t group;          /* likewise for a group; (gid_t)-1: none */
};

void vlan_tap_opts_init(struct vlan_tap_opts *opts);
/* Creates a tap device in the caller's network namespace with the tun ioctl
 * (netlink cannot).  Stores the open file descriptor (O_CLOEXEC, blocking)
 * in '*fdp', which owns it; 'fdp' may be NULL only for a persistent device,
 * whose descriptor is then closed.  A device that is not persistent
 * vanishes when its last descriptor closes.  Returns 0; -EEXIST if any
 * interface has that name; -EINVAL; -EPERM; -ENOENT without /dev/net/tun.
 * On failure no device is left behind.  Delete a persistent one with
 * vlan_link_delete(). */
int vlan_tap_create(const struct vlan_tap_opts *opts, int *fdp, struct errmsg *err);

/* An rtnetlink socket, bound to the network namespace of the thread that
 * opened it: every call through it acts there, even after the thread moves.
 * One thread at a time. */
struct vlan_nl;

/* Returns 0 with a new handle in '*nlp', or a negative errno. */
int vlan_nl_open(struct vlan_nl **nlp, struct errmsg *err);
/* Closes 'nl' (NULL: no-op). */
void vlan_nl_close(struct vlan_nl *nl);

struct vlan_veth_opts {
	const char *name;          /* required */
	const char *peer_name;     /* required */
	const uint8_t *mac;        /* NULL: random */
	const uint8_t *peer_mac;   /* NULL: random */
	uint32_t mtu_bytes;        /* both ends; 0: kernel default */
};

void vlan_veth_opts_init(struct vlan_veth_opts *opts);
/* Creates a veth pair, both ends down.  Returns 0; -EEXIST if either name is
 * taken; -EINVAL; -EPERM; -EOPNOTSUPP if the kernel has no veth. */
int vlan_veth_create(struct vlan_nl *nl, const struct vlan_veth_opts *opts, struct errmsg *err);

struct vlan_subif_opts {
	const char *parent;        /* required: the interface the tags go out on */
	const char *name;          /* required */
	uint16_t vid;              /* 1-4094 */
	uint16_t tpid;             /* VLAN_TPID_8021Q or _8021AD; 0: 8021Q */
	const uint8_t *mac;        /* set in the create request; NULL: parent's */
	uint32_t mtu_bytes;        /* 0: the parent's */
};

void vlan_subif_opts_init(struct vlan_subif_opts *opts);
/* Creates a VLAN sub-interface of 'parent', down.  Returns 0; -EINVAL for a
 * bad VID, TPID or name; -ENODEV if 'parent' does not exist; -EEXIST;
 * -EPERM; -EOPNOTSUPP if the kernel has no 802.1Q support (8021q). */
int vlan_subif_create(struct vlan_nl *nl, const struct vlan_subif_opts *opts, struct errmsg *err);

/* Deletes interface 'name' (a veth deletes its peer too).  Returns 0, or
 * -ENODEV if there is none, -EPERM, -EOPNOTSUPP if it cannot be deleted. */
int vlan_link_delete(struct vlan_nl *nl, const char *name, struct errmsg *err);
/* Sets 'name' administratively up or down. -ENODEV if there is none. */
int vlan_link_set_up(struct vlan_nl *nl, const char *name, bool up, struct errmsg *err);
/* Sets the MTU; -EINVAL if the device refuses it (or 'mtu_bytes' is 0). */
int vlan_link_set_mtu(struct vlan_nl *nl, const char *name, uint32_t mtu_bytes,
		      struct errmsg *err);
/* Sets the MAC address ('mac': VLAN_MAC_BYTES bytes). */
int vlan_link_set_mac(struct vlan_nl *nl, const char *name, const uint8_t *mac,
		      struct errmsg *err);
/* Moves 'name' into the network namespace of 'netns_fd' (an open
 * /proc/PID/ns/net or /run/netns/NAME), or of process 'pid'.  The interface
 * goes down and keeps its name; -EEXIST if the target has that name, -ESRCH
 * for a missing process, -EINVAL for an fd that is no network namespace. */
int vlan_link_move_to_netns_fd(struct vlan_nl *nl, const char *name, int netns_fd,
			       struct errmsg *err);
int vlan_link_move_to_netns_pid(struct vlan_nl *nl, const char *name, pid_t pid,
				struct errmsg *err);

/* What vlan_link_query() reads back. */
struct vlan_link_info {
	int ifindex;
	uint32_t mtu_bytes;
	bool up;                       /* administratively */
	uint8_t mac[VLAN_MAC_BYTES];   /* zero if the link has no 6-byte address */
	int parent_ifindex;            /* the 'link' of a VLAN or veth end; 0 if none */
	char kind[VLAN_IFNAME_BYTES];  /* "veth", "vlan", "tun"...; "" if none */
};

/* Reads the state of 'name' into '*infop'.  Returns 0 or -ENODEV. */
int vlan_link_query(struct vlan_nl *nl, const char *name, struct vlan_link_info *infop,
		    struct errmsg *err);

#endif
