/* SPDX-License-Identifier: MIT */
/* fuzz_frames.c: a libFuzzer target that puts the switch core (vswitch.h,
 * over libvlan's port decisions) under arbitrary frames, port
 * configurations and control-plane calls.  Each input (encoding in
 * fuzz_frames.h) builds two bridges the same way: A takes each burst of
 * frames through vsw_forward_burst() (with chained-buffer views and too
 * little room for outputs at times), B takes the same frames one by one
 * through vsw_forward().  Every answer of B is checked against a reference
 * model written here from vlan.h and vswitch.h, not from the code; A must
 * answer exactly as B; both must keep the same counters and forwarding
 * database.  Every output's edit is carried out on a copy of the frame
 * with the head- and tailroom the input chose, as the datapath does, and
 * the bytes that come out are checked.  A broken promise traps:
 *
 *  - an output is never the ingress port, is a port of the frame's VLAN
 *    (vlan_port_is_member()), and outputs come in ascending port order;
 *  - a dropped frame has no output and one reason; a forwarded one none;
 *  - the verdict, the output ports and the edited bytes are the model's;
 *  - after the edit, a frame sent untagged on an access port, or on a
 *    native-untagged port in its native VLAN, starts with no 802.1Q or
 *    802.1ad tag carrying a VID, looking through every priority tag (rule
 *    5 of vlan/portmode.c: the second half of the double-tagging attack);
 *    one sent tagged starts with a tag of the frame's VLAN;
 *  - edits stay inside the buffer, fail only for lack of room (-ENOSPC on a
 *    push with under 4 bytes of head- and tailroom) and then change nothing;
 *  - the counters of every port and VLAN are the model's, and rx_packets
 *    equals the frames forwarded plus every rx drop;
 *  - a burst stops early only at a frame whose VLAN needs more outputs
 *    than the room left;
 *  - every forwarding entry points to a port in use and carrying its VLAN,
 *    no port holds more learned entries than its limit, and a source just
 *    seen is found on its port unless a static entry or a full table said
 *    otherwise;
 *  - configuration calls succeed exactly when vlan.h says the options are
 *    valid, VIDs 0 and 4095 included, and explain a refusal.
 * The bridges use a fixed hash seed, so an input always runs the same way. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "fuzz_frames.h"
#include "vswitch.h"

#define HASH_SEED 0x5eed5eed5eed5eedull
#define MAX_BURST 32u
#define MAX_SLOTS (8u + 3u)
#define HDR_BYTES 64u /* template and overwrites reach this far */
#define T_START_MS 1000000u
#define PASS_GAP_MS 1000u

#define CHECK(cond)                                  \
	do {                                         \
		if (!(cond)) {                       \
			fail(__LINE__, #cond);       \
		}                                    \
	} while (0)

static void __attribute__((noreturn)) fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_frames.c:%d: broken promise: %s\n", line, what);
	__builtin_trap();
}

static const uint16_t vid_table[8] = FF_VIDS;
static const uint16_t tunnel_tpids[8] = {0, 0, 0x8100, 0x88a8, 0x9100, 0x0800, 0, 0x88a8};
static const uint16_t tag_tpids[4] = {0x8100, 0x88a8, 0x9100, 0x8100};
static const uint32_t capacities[4] = {512, 1, 4, 16};
static const uint32_t agings_s[4] = {VSW_MAC_AGING_S_DEFAULT, 1, 2, 60};
static const uint32_t bridge_limits[4] = {0, 0, 1, 3};
static const uint32_t port_limits[4] = {0, 0, 1, 4};
static const uint64_t steps_ms[8] = {0, 1, 999, 1000, 1001, 2000, 60000, 301000};
static const uint8_t macs[16][VLAN_MAC_BYTES] = {
	{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}, {2, 0, 0, 0, 0, 4},
	{2, 0, 0, 0, 0, 5}, {2, 0, 0, 0, 0, 6}, {2, 0, 0, 0, 0, 7}, {2, 0, 0, 0, 0, 8},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x00, 0x5e, 0, 0, 1},
	{0x01, 0x80, 0xc2, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {0x33, 0x33, 0, 0, 0, 1},
	{0x01, 0x80, 0xc2, 0, 0, 0x10}, {0, 0, 0, 0, 0, 1}, {0x03, 0, 0, 0, 0, 1},
};

static uint64_t frames_total, inputs_total;

uint64_t fuzz_frames_count(void)
{
	return frames_total;
}

/* --- Reading the input --- */

struct reader {
	const uint8_t *p;
	size_t left;
};

static uint8_t next_byte(struct reader *r)
{
	if (r->left == 0) {
		return 0;
	}
	r->left--;
	return *r->p++;
}

/* --- The model: port configurations --- */

struct vidmap {
	uint64_t w[64]; /* VIDs 0-4095 */
};

static void vm_add(struct vidmap *m, uint16_t vid)
{
	m->w[vid / 64] |= 1ull << (vid % 64);
}

static bool vm_has(const struct vidmap *m, uint16_t vid)
{
	return vid >= 1 && vid <= 4094 && (m->w[vid / 64] >> (vid % 64) & 1);
}

static bool vm_empty(const struct vidmap *m)
{
	for (unsigned i = 0; i < 64; i++) {
		if (m->w[i]) {
			return false;
		}
	}
	return true;
}

struct cfg {
	enum vlan_port_mode mode;
	uint16_t tag;
	bool has_trunks, has_cvlans; /* a set passed at all */
	struct vidmap trunks, cvlans;
	uint16_t tpid;               /* as passed; 0: the default */
	uint32_t mac_limit;
	bool valid;                  /* what vlan.h says of these options */
};

struct mport {
	bool in_use;
	char name[16];
	struct cfg cfg;
	struct vsw_counters c; /* what the port's counters must read */
	uint64_t forwarded;
};

struct fuzz {
	struct reader r;
	struct vsw_bridge *a, *b;
	uint16_t max_ports;
	uint32_t capacity, bridge_limit;
	uint64_t now_ms;
	unsigned name_seq;
	struct mport ports[MAX_SLOTS];
	struct vlan_set *trunks, *cvlans; /* scratch, for the options */
	uint8_t io;                       /* the current burst's io byte */
	unsigned passes;                  /* times the ops run */
};

/* What a VLAN's counters must read, for the VLANs some frame entered. */
static struct vsw_counters vlan_model[VLAN_VID_MAX + 1];
static uint16_t touched[VLAN_VID_MAX + 1];
static unsigned n_touched;
/* The payload of every frame, after its template. */
static uint8_t pattern[FF_LEN_MAX];
/* Where the datapath's tx contexts would be; only compared. */
static char tx_tokens[MAX_SLOTS];

static void touch_vlan(uint16_t vid)
{
	for (unsigned i = 0; i < n_touched; i++) {
		if (touched[i] == vid) {
			return;
		}
	}
	touched[n_touched++] = vid;
}

/* Fills a set and the model's map from a mask over the VID table; the set
 * must refuse 0 and 4095 with -EINVAL and take the others. */
static void fill_set(struct vlan_set *set, struct vidmap *m, uint8_t mask, bool range)
{
	vlan_set_clear(set);
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < 8; i++) {
		uint16_t vid = vid_table[i];
		bool ok = vid >= VLAN_VID_MIN && vid <= VLAN_VID_MAX;

		if (!(mask >> i & 1)) {
			continue;
		}
		CHECK(vlan_set_add(set, vid) == (ok ? 0 : -EINVAL));
		if (ok) {
			vm_add(m, vid);
		}
	}
	if (range) {
		CHECK(vlan_set_add_range(set, 15, 25) == 0);
		CHECK(vlan_set_add_range(set, 0, 5) == -EINVAL);
		CHECK(vlan_set_add_range(set, 4090, 4095) == -EINVAL);
		for (uint16_t v = 15; v <= 25; v++) {
			vm_add(m, v);
		}
	}
	for (unsigned i = 0; i < 8; i++) {
		CHECK(vlan_set_contains(set, vid_table[i]) == vm_has(m, vid_table[i]));
	}
}

/* Reads a port configuration into 'c' and the options that say it. */
static void read_cfg(struct fuzz *fz, struct cfg *c, struct vlan_port_opts *opts)
{
	uint8_t m = next_byte(&fz->r), t = next_byte(&fz->r), tr = next_byte(&fz->r);
	uint8_t cv = next_byte(&fz->r), tp = next_byte(&fz->r), lim = next_byte(&fz->r);
	bool trunky;

	memset(c, 0, sizeof(*c));
	vlan_port_opts_init(opts);
	c->mode = (enum vlan_port_mode)((m & 7) % 5);
	trunky = c->mode == VLAN_MODE_TRUNK || c->mode == VLAN_MODE_NATIVE_TAGGED ||
		 c->mode == VLAN_MODE_NATIVE_UNTAGGED;
	c->tag = vid_table[t & 7];
	if (c->mode == VLAN_MODE_TRUNK && !(m & FF_CFG_TAG_ANY)) {
		c->tag = 0;
	}
	if (trunky || (m & FF_CFG_TRUNKS_ANY)) {
		c->has_trunks = true;
		fill_set(fz->trunks, &c->trunks, tr, t & FF_CFG_RANGE);
		opts->trunks = fz->trunks;
	}
	if ((c->mode == VLAN_MODE_DOT1Q_TUNNEL || (m & FF_CFG_CVLANS_ANY)) && cv != 0) {
		c->has_cvlans = true;
		fill_set(fz->cvlans, &c->cvlans, cv, false);
		opts->cvlans = fz->cvlans;
	}
	if (c->mode == VLAN_MODE_DOT1Q_TUNNEL || (m & FF_CFG_TPID_ANY)) {
		c->tpid = tunnel_tpids[tp & 7];
	}
	c->mac_limit = port_limits[lim & 3];
	opts->mode = c->mode;
	opts->tag = c->tag;
	opts->tunnel_tpid = c->tpid;

	/* vlan.h's struct vlan_port_opts, field by field. */
	c->valid = true;
	if (c->mode == VLAN_MODE_TRUNK ? c->tag != 0
				       : (c->tag < VLAN_VID_MIN || c->tag > VLAN_VID_MAX)) {
		c->valid = false;
	}
	if (!trunky && c->has_trunks && !vm_empty(&c->trunks)) {
		c->valid = false;
	}
	if (c->mode != VLAN_MODE_DOT1Q_TUNNEL && (c->has_cvlans || c->tpid != 0)) {
		c->valid = false;
	}
	if (c->tpid != 0 && c->tpid != VLAN_TPID_8021Q && c->tpid != VLAN_TPID_8021AD) {
		c->valid = false;
	}
}

/* "True if the port carries VLAN 'vid' at all"; native VLANs always. */
static bool m_member(const struct cfg *c, uint16_t vid)
{
	switch (c->mode) {
	case VLAN_MODE_ACCESS:
	case VLAN_MODE_DOT1Q_TUNNEL:
		return vid == c->tag;
	case VLAN_MODE_TRUNK:
		return vm_has(&c->trunks, vid);
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		return vid == c->tag || vm_has(&c->trunks, vid);
	}
	return false;
}

/* --- The model: frames --- */

static bool is_vlan_tpid(uint16_t tpid)
{
	return tpid == VLAN_TPID_8021Q || tpid == VLAN_TPID_8021AD;
}

static uint16_t be16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

struct mtag {
	uint16_t tpid, vid;
	uint8_t pcp;
	bool dei;
};

/* The frame as the switch must read it: up to 3 tags of TPID 0x8100 or
 * 0x88a8, each with the 2 bytes after it present; 'more' if a fourth tag
 * follows. */
struct mframe {
	bool malformed;
	unsigned n_tags;
	struct mtag tags[3];
	bool more;
};

static void m_parse(const uint8_t *f, size_t len, struct mframe *mf)
{
	size_t off = VLAN_ETH_ADDRS_BYTES;

	memset(mf, 0, sizeof(*mf));
	if (len < VLAN_ETH_HDR_BYTES) {
		mf->malformed = true;
		return;
	}
	while (is_vlan_tpid(be16_at(f + off))) {
		if (mf->n_tags == 3) {
			mf->more = true;
			return;
		}
		if (off + 6 > len) {
			mf->malformed = true;
			return;
		}
		struct mtag *t = &mf->tags[mf->n_tags++];
		uint16_t tci = be16_at(f + off + 2);

		t->tpid = be16_at(f + off);
		t->vid = tci & 0xfff;
		t->pcp = (uint8_t)(tci >> 13);
		t->dei = tci & 0x1000;
		off += 4;
	}
}

/* The first VID from tag 'first' on, through priority tags; unknown past
 * the parsed tags: 4095, which no filter admits. */
static uint16_t m_inner_vid(const struct mframe *mf, unsigned first)
{
	for (unsigned i = first; i < mf->n_tags; i++) {
		if (mf->tags[i].vid != 0) {
			return mf->tags[i].vid;
		}
	}
	return mf->more ? VLAN_VID_RESERVED : 0;
}

/* The ingress decision, from the comments of vlan.h. */
struct ming {
	int drop;        /* enum vlan_drop, or -1 */
	uint16_t vid;
	bool tagged;     /* the frame keeps its VLAN's tag as its outer tag */
	bool strip;      /* its canonical form lacks its outer tag */
	struct mtag vt;  /* the tag it gets on tagged egress */
	uint16_t cvid;
};

static void m_port_vlan(const struct cfg *c, const struct mtag *prio, struct ming *in)
{
	in->vid = c->tag;
	in->vt.vid = c->tag;
	in->vt.tpid = VLAN_TPID_8021Q;
	if (c->mode == VLAN_MODE_DOT1Q_TUNNEL) {
		in->vt.tpid = c->tpid ? c->tpid : VLAN_TPID_8021AD;
	}
	if (prio) {
		in->vt.pcp = prio->pcp;
		in->vt.dei = prio->dei;
		in->strip = true;
	}
}

static void m_ingress(const struct cfg *c, const uint8_t *f, size_t len, struct ming *in)
{
	struct mframe mf;

	memset(in, 0, sizeof(*in));
	in->drop = -1;
	m_parse(f, len, &mf);
	if (mf.malformed) {
		in->drop = VLAN_DROP_MALFORMED;
		return;
	}
	if (mf.n_tags > 0 && mf.tags[0].vid == VLAN_VID_RESERVED) {
		in->drop = VLAN_DROP_RESERVED_VID;
		return;
	}
	switch (c->mode) {
	case VLAN_MODE_ACCESS:
		if (mf.n_tags == 0) {
			m_port_vlan(c, NULL, in);
		} else if (mf.n_tags == 1 && mf.tags[0].vid == 0) {
			m_port_vlan(c, &mf.tags[0], in);
		} else {
			in->drop = VLAN_DROP_TAGGED_ON_ACCESS;
		}
		return;
	case VLAN_MODE_DOT1Q_TUNNEL:
		in->cvid = m_inner_vid(&mf, 0);
		if (c->has_cvlans && in->cvid != 0 && !vm_has(&c->cvlans, in->cvid)) {
			in->drop = VLAN_DROP_NOT_ALLOWED;
			return;
		}
		m_port_vlan(c, NULL, in);
		return;
	case VLAN_MODE_TRUNK:
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		break;
	}
	if (mf.n_tags == 0 || mf.tags[0].vid == 0) {
		if (c->mode == VLAN_MODE_TRUNK) {
			in->drop = VLAN_DROP_UNTAGGED_NO_NATIVE;
		} else if (mf.n_tags == 0) {
			m_port_vlan(c, NULL, in);
		} else if (mf.n_tags > 1 || mf.more) {
			in->drop = VLAN_DROP_PRIORITY_STACKED;
		} else {
			m_port_vlan(c, &mf.tags[0], in);
		}
		return;
	}
	if (!m_member(c, mf.tags[0].vid)) {
		in->drop = VLAN_DROP_NOT_ALLOWED;
		return;
	}
	in->vid = mf.tags[0].vid;
	in->vt = mf.tags[0];
	in->tagged = true;
	in->strip = true;
	in->cvid = m_inner_vid(&mf, 1);
}

/* The egress decision: -1 and whether tagged, or the drop reason. */
static int m_egress(const struct cfg *c, const struct ming *in, bool *want_tagp)
{
	bool want_tag = c->mode == VLAN_MODE_TRUNK || c->mode == VLAN_MODE_NATIVE_TAGGED ||
			(c->mode == VLAN_MODE_NATIVE_UNTAGGED && in->vid != c->tag);

	if (!m_member(c, in->vid)) {
		return VLAN_DROP_NOT_MEMBER;
	}
	if (c->mode == VLAN_MODE_DOT1Q_TUNNEL && c->has_cvlans && in->cvid != 0 &&
	    !vm_has(&c->cvlans, in->cvid)) {
		return VLAN_DROP_NOT_MEMBER;
	}
	if (!want_tag && in->cvid != 0 && c->mode != VLAN_MODE_DOT1Q_TUNNEL) {
		return VLAN_DROP_TAG_EXPOSED;
	}
	*want_tagp = want_tag;
	return -1;
}

/* The bytes a port must send: the canonical frame, tagged if 'want_tag'. */
static size_t m_output(const uint8_t *f, size_t len, const struct ming *in, bool want_tag,
		       uint8_t *out)
{
	size_t skip = in->strip ? VLAN_TAG_BYTES : 0, n = 0;

	memcpy(out, f, VLAN_ETH_ADDRS_BYTES);
	n = VLAN_ETH_ADDRS_BYTES;
	if (want_tag) {
		uint16_t tci = (uint16_t)(in->vt.pcp << 13 | (in->vt.dei ? 0x1000 : 0) | in->vid);

		out[n++] = (uint8_t)(in->vt.tpid >> 8);
		out[n++] = (uint8_t)in->vt.tpid;
		out[n++] = (uint8_t)(tci >> 8);
		out[n++] = (uint8_t)tci;
	}
	memcpy(out + n, f + VLAN_ETH_ADDRS_BYTES + skip, len - VLAN_ETH_ADDRS_BYTES - skip);
	return n + len - VLAN_ETH_ADDRS_BYTES - skip;
}

static bool mac_unicast(const uint8_t *mac)
{
	static const uint8_t zero[VLAN_MAC_BYTES];

	return !(mac[0] & 1) && memcmp(mac, zero, VLAN_MAC_BYTES) != 0;
}

static bool mac_reserved(const uint8_t *mac)
{
	return mac[0] == 0x01 && mac[1] == 0x80 && mac[2] == 0xc2 && mac[3] == 0 && mac[4] == 0 &&
	       mac[5] <= 0x0f;
}

/* --- Checks on the bridges --- */

struct fdb_walk {
	const struct fuzz *fz;
	uint32_t entries, statics;
	uint32_t learned[MAX_SLOTS];
};

static int fdb_one(const struct vsw_fdb_entry *e, void *arg)
{
	struct fdb_walk *w = arg;
	const struct fuzz *fz = w->fz;

	CHECK(e->vid >= VLAN_VID_MIN && e->vid <= VLAN_VID_MAX);
	CHECK(mac_unicast(e->mac));
	CHECK(e->port_no < fz->max_ports && fz->ports[e->port_no].in_use);
	CHECK(m_member(&fz->ports[e->port_no].cfg, e->vid));
	CHECK(!e->is_static || e->age_ms == 0);
	w->entries++;
	w->statics += e->is_static;
	w->learned[e->port_no] += !e->is_static;
	return 0;
}

/* Field by field: the struct has padding. */
static bool same_stats(const struct vsw_fdb_stats *x, const struct vsw_fdb_stats *y)
{
	return x->entries == y->entries && x->static_entries == y->static_entries &&
	       x->capacity == y->capacity && x->learned == y->learned && x->moved == y->moved &&
	       x->expired == y->expired && x->evicted_full == y->evicted_full &&
	       x->evicted_limit == y->evicted_limit &&
	       x->static_conflicts == y->static_conflicts && x->no_space == y->no_space;
}

/* The forwarding database of B ('aged': just aged at now, so every entry
 * it holds is live); A's must have the same statistics. */
static void check_fdb(const struct fuzz *fz, bool aged)
{
	struct fdb_walk w = {.fz = fz};
	struct vsw_fdb_stats sa, sb;

	CHECK(vsw_fdb_dump(fz->b, fz->now_ms, fdb_one, &w) == 0);
	vsw_fdb_get_stats(fz->a, &sa);
	vsw_fdb_get_stats(fz->b, &sb);
	CHECK(same_stats(&sa, &sb));
	CHECK(sb.capacity == fz->capacity && sb.entries <= sb.capacity);
	CHECK(w.statics == sb.static_entries);
	CHECK(aged ? w.entries == sb.entries : w.entries <= sb.entries);
	for (unsigned p = 0; p < fz->max_ports; p++) {
		uint32_t lim = fz->ports[p].cfg.mac_limit ? fz->ports[p].cfg.mac_limit
							  : fz->bridge_limit;

		if (lim == 0 || lim > fz->capacity) {
			lim = fz->capacity;
		}
		CHECK(w.learned[p] <= lim);
	}
}

static void check_counters_of(const struct fuzz *fz, struct vsw_bridge *br)
{
	struct vsw_counters c;

	for (unsigned p = 0; p < fz->max_ports; p++) {
		const struct mport *mp = &fz->ports[p];

		if (!mp->in_use) {
			CHECK(vsw_port_get_counters(br, (uint16_t)p, &c) == -ENODEV);
			continue;
		}
		CHECK(vsw_port_get_counters(br, (uint16_t)p, &c) == 0);
		CHECK(memcmp(&c, &mp->c, sizeof(c)) == 0);
		CHECK(c.rx_packets == mp->forwarded + vsw_counters_rx_dropped(&c));
	}
	for (unsigned i = 0; i < n_touched; i++) {
		CHECK(vsw_vlan_get_counters(br, touched[i], &c) == 0);
		CHECK(memcmp(&c, &vlan_model[touched[i]], sizeof(c)) == 0);
	}
	CHECK(vsw_vlan_get_counters(br, 0, &c) == -EINVAL);
	CHECK(vsw_vlan_get_counters(br, VLAN_VID_RESERVED, &c) == -EINVAL);
}

static void check_counters(const struct fuzz *fz)
{
	check_counters_of(fz, fz->a);
	check_counters_of(fz, fz->b);
}

/* --- Frames --- */

struct frame {
	uint8_t *data;     /* exactly 'len' bytes on the heap, for ASan */
	uint32_t len;
	uint8_t *seg;      /* what the burst call sees: 'data', or a shorter copy */
	struct ming in;
};

static void read_tag(struct fuzz *fz, uint8_t *p)
{
	uint8_t a = next_byte(&fz->r), v = next_byte(&fz->r);
	uint16_t tpid = tag_tpids[a & 3];
	uint16_t vid = v < 0x80 ? vid_table[v & 7] : (uint16_t)((v & 0x7f) * 32 + 31);
	uint16_t tci = (uint16_t)(((a >> 2) & 7) << 13 | ((a >> 5) & 1) << 12 | vid);

	p[0] = (uint8_t)(tpid >> 8);
	p[1] = (uint8_t)tpid;
	p[2] = (uint8_t)(tci >> 8);
	p[3] = (uint8_t)tci;
}

static uint32_t read_len(struct fuzz *fz)
{
	uint8_t a = next_byte(&fz->r), b = next_byte(&fz->r);

	if (a < 0xe0) {
		return a;
	}
	return (uint32_t)(((a & 0x1f) << 8 | b) * FF_LEN_MAX / 0x1fff);
}

/* A frame from a template (addresses, 0-3 tags, a type, a pattern), then
 * raw overwrites in its first bytes; or the previous frame's first bytes. */
static void read_frame(struct fuzz *fz, struct frame *fr, const struct frame *prev)
{
	uint8_t tmpl[HDR_BYTES];
	uint8_t sel = next_byte(&fz->r), n;
	size_t off = 0, keep = 0;
	uint32_t seg_len;

	memset(tmpl, 0, sizeof(tmpl));
	if (sel == FF_FRAME_REPEAT && prev) {
		keep = prev->len < HDR_BYTES ? prev->len : HDR_BYTES;
		memcpy(tmpl, prev->data, keep);
	} else {
		memcpy(tmpl, macs[sel & 15], VLAN_MAC_BYTES);
		if ((sel & 15) == FF_MAC_RESERVED) {
			tmpl[5] = sel >> 4;
		}
		memcpy(tmpl + 6, macs[next_byte(&fz->r) & 15], VLAN_MAC_BYTES);
		off = VLAN_ETH_ADDRS_BYTES;
		n = next_byte(&fz->r) & 3;
		for (unsigned i = 0; i < n; i++, off += VLAN_TAG_BYTES) {
			read_tag(fz, tmpl + off);
		}
		tmpl[off++] = next_byte(&fz->r);
		tmpl[off++] = next_byte(&fz->r);
		keep = off;
	}
	fr->len = read_len(fz);
	fr->data = malloc(fr->len ? fr->len : 1);
	CHECK(fr->data);
	/* Copies, not a loop over bytes: coverage would trace each. */
	memcpy(fr->data, pattern, fr->len);
	memcpy(fr->data, tmpl, keep < fr->len ? keep : fr->len);
	n = next_byte(&fz->r) & 7;
	for (unsigned i = 0; i < n; i++) {
		uint8_t at = next_byte(&fz->r) % HDR_BYTES, v = next_byte(&fz->r);

		if (at < fr->len) {
			fr->data[at] = v;
		}
	}
	sel = next_byte(&fz->r);
	fr->seg = fr->data;
	seg_len = VSW_PEEK_BYTES + (sel & 0x3f);
	if ((sel & FF_SEG_CHAINED) && seg_len < fr->len) {
		fr->seg = malloc(seg_len);
		CHECK(fr->seg);
		memcpy(fr->seg, fr->data, seg_len);
	}
}

static void free_frame(struct frame *fr)
{
	if (fr->seg != fr->data) {
		free(fr->seg);
	}
	free(fr->data);
}

/* What B must answer for one frame, built while the model counts it. */
struct expect {
	uint16_t vid;
	uint8_t drop;
	bool flooded;
	unsigned n_outs;
	uint16_t ports[MAX_SLOTS];
	bool tagged[MAX_SLOTS];
};

static void m_offer(struct fuzz *fz, const struct frame *fr, uint16_t p, struct expect *ex)
{
	struct mport *mp = &fz->ports[p];
	struct vsw_counters *vc = &vlan_model[fr->in.vid];
	bool want_tag = false;
	int drop = m_egress(&mp->cfg, &fr->in, &want_tag);
	uint64_t len;

	if (drop >= 0) {
		mp->c.tx_drops[drop]++;
		vc->tx_drops[drop]++;
		return;
	}
	len = fr->len - (fr->in.strip ? VLAN_TAG_BYTES : 0) + (want_tag ? VLAN_TAG_BYTES : 0);
	ex->ports[ex->n_outs] = p;
	ex->tagged[ex->n_outs++] = want_tag;
	mp->c.tx_packets++;
	mp->c.tx_bytes += len;
	vc->tx_packets++;
	vc->tx_bytes += len;
}

static void m_drop(struct fuzz *fz, uint16_t in_port, struct vsw_counters *vc,
		   enum vsw_drop reason, struct expect *ex)
{
	fz->ports[in_port].c.rx_drops[reason]++;
	if (vc) {
		vc->rx_drops[reason]++;
	}
	ex->drop = (uint8_t)reason;
}

/* Counts the frame B has just decided in the model and says what B must
 * have answered.  Where the answer depends on the forwarding database, B's
 * own database is asked, after the fact: the lookup follows learning, and
 * nothing changes the table after the lookup. */
static void m_forward(struct fuzz *fz, uint16_t in_port, const struct frame *fr,
		      const struct vsw_fdb_stats *before, struct expect *ex)
{
	struct mport *in = &fz->ports[in_port];
	const uint8_t *dst = fr->data, *src = fr->data + VLAN_MAC_BYTES;
	struct vsw_counters *vc;
	struct vsw_fdb_stats after;
	int to;

	memset(ex, 0, sizeof(*ex));
	in->c.rx_packets++;
	in->c.rx_bytes += fr->len;
	if (fr->in.drop >= 0) {
		m_drop(fz, in_port, NULL, (enum vsw_drop)fr->in.drop, ex);
		return;
	}
	ex->vid = fr->in.vid;
	CHECK(m_member(&in->cfg, ex->vid));
	touch_vlan(ex->vid);
	vc = &vlan_model[ex->vid];
	vc->rx_packets++;
	vc->rx_bytes += fr->len;
	if (!mac_unicast(src)) {
		m_drop(fz, in_port, vc, VSW_DROP_BAD_SOURCE, ex);
		return;
	}
	if (mac_reserved(dst)) {
		m_drop(fz, in_port, vc, VSW_DROP_RESERVED_GROUP, ex);
		return;
	}
	vsw_fdb_get_stats(fz->b, &after);
	CHECK(vsw_fdb_lookup(fz->b, ex->vid, src, fz->now_ms) == in_port ||
	      after.static_conflicts > before->static_conflicts ||
	      after.no_space > before->no_space);
	to = dst[0] & 1 ? -ENOENT : vsw_fdb_lookup(fz->b, ex->vid, dst, fz->now_ms);
	if (to == in_port) {
		m_drop(fz, in_port, vc, VSW_DROP_SAME_PORT, ex);
		return;
	}
	if (to < 0) {
		ex->flooded = true;
		in->c.flooded++;
		vc->flooded++;
		for (uint16_t p = 0; p < fz->max_ports; p++) {
			if (p != in_port && fz->ports[p].in_use && m_member(&fz->ports[p].cfg, ex->vid)) {
				m_offer(fz, fr, p, ex);
			}
		}
	} else {
		CHECK(to < fz->max_ports && fz->ports[to].in_use);
		m_offer(fz, fr, (uint16_t)to, ex);
	}
	if (ex->n_outs == 0) {
		m_drop(fz, in_port, vc, VSW_DROP_NO_OUTPUT, ex);
	} else {
		in->forwarded++;
	}
}

/* The first VID a receiver would take the frame for, through priority
 * tags, however deep: 0 if none. */
static uint16_t exposed_vid(const uint8_t *f, size_t len)
{
	for (size_t off = VLAN_ETH_ADDRS_BYTES; off + 4 <= len; off += 4) {
		if (!is_vlan_tpid(be16_at(f + off))) {
			return 0;
		}
		if ((be16_at(f + off + 2) & 0xfff) != 0) {
			return be16_at(f + off + 2) & 0xfff;
		}
	}
	return 0;
}

/* Carries out one of B's outputs on a copy, as the datapath does, and
 * checks the bytes that come out. */
static void check_output(struct fuzz *fz, const struct frame *fr, const struct vsw_output *out,
			 bool want_tag, uint8_t *expect_buf)
{
	static const size_t heads[4] = {0, 2, 4, 128}, tails[4] = {0, 3, 4, 64};
	size_t head = heads[fz->io & 3], tail = tails[(fz->io >> 2) & 3];
	const struct cfg *pc = &fz->ports[out->port_no].cfg;
	size_t cap = head + fr->len + tail, n;
	struct vlan_buf buf;
	uint8_t *copy = malloc(cap ? cap : 1);
	const uint8_t *o;
	int ret;

	CHECK(copy);
	memcpy(copy + head, fr->data, fr->len);
	buf = (struct vlan_buf){.base = copy, .head_bytes = head, .len_bytes = fr->len,
				.cap_bytes = cap};
	ret = vsw_output_apply(out, &buf);
	if (ret == -ENOSPC) {
		/* The datapath counts the copy as tx-failed and frees it. */
		CHECK(out->edit == VSW_EDIT_PUSH && head < 4 && tail < 4);
		CHECK(buf.head_bytes == head && buf.len_bytes == fr->len);
		CHECK(memcmp(copy + head, fr->data, fr->len) == 0);
		vsw_port_count_tx_failed(fz->a, out->port_no, 1);
		vsw_port_count_tx_failed(fz->b, out->port_no, 1);
		fz->ports[out->port_no].c.tx_drops[VSW_DROP_TX_FAILED]++;
		free(copy);
		return;
	}
	CHECK(ret == 0);
	CHECK(buf.base == copy && buf.cap_bytes == cap);
	CHECK(buf.head_bytes <= cap && buf.len_bytes <= cap - buf.head_bytes);
	CHECK((int64_t)buf.len_bytes ==
	      (int64_t)fr->len + vsw_edit_delta_bytes((enum vsw_edit)out->edit));
	o = vlan_buf_data(&buf);
	n = m_output(fr->data, fr->len, &fr->in, want_tag, expect_buf);
	CHECK(buf.len_bytes == n && memcmp(o, expect_buf, n) == 0);
	if (pc->mode == VLAN_MODE_ACCESS ||
	    (pc->mode == VLAN_MODE_NATIVE_UNTAGGED && fr->in.vid == pc->tag)) {
		CHECK(!want_tag && exposed_vid(o, n) == 0);
	} else if (want_tag) {
		CHECK(n >= VLAN_ETH_HDR_BYTES + VLAN_TAG_BYTES);
		CHECK(is_vlan_tpid(be16_at(o + 12)) && (be16_at(o + 14) & 0xfff) == fr->in.vid);
	}
	free(copy);
}

/* B's answer for one frame against the model's. */
static void check_verdict(struct fuzz *fz, uint16_t in_port, const struct frame *fr,
			  const struct expect *ex, const struct vsw_verdict *v,
			  const struct vsw_output *outs, uint8_t *expect_buf)
{
	CHECK(v->first_output == 0);
	CHECK(v->vid == ex->vid && v->drop == ex->drop && v->flooded == ex->flooded);
	CHECK(v->n_outputs == ex->n_outs);
	CHECK((v->n_outputs == 0) == (v->drop != VSW_DROP_NONE));
	for (unsigned j = 0; j < v->n_outputs; j++) {
		const struct vsw_output *o = &outs[j];

		CHECK(o->port_no != in_port && o->port_no == ex->ports[j]);
		CHECK(j == 0 || o->port_no > outs[j - 1].port_no);
		CHECK(o->tx_ctx == &tx_tokens[o->port_no]);
		CHECK(vlan_port_is_member(vsw_port_vlan(fz->b, o->port_no), v->vid));
		CHECK(o->edit <= VSW_EDIT_REWRITE);
		check_output(fz, fr, o, ex->tagged[j], expect_buf);
	}
}

static bool same_output(const struct vsw_output *x, const struct vsw_output *y)
{
	return x->tx_ctx == y->tx_ctx && x->port_no == y->port_no && x->edit == y->edit &&
	       x->tag.tpid == y->tag.tpid && x->tag.vid == y->tag.vid &&
	       x->tag.pcp == y->tag.pcp && x->tag.dei == y->tag.dei;
}

/* Outputs a VLAN may need: its member ports. */
static unsigned m_members(const struct fuzz *fz, uint16_t vid)
{
	unsigned n = 0;

	for (unsigned p = 0; p < fz->max_ports; p++) {
		n += fz->ports[p].in_use && m_member(&fz->ports[p].cfg, vid);
	}
	return n;
}

static struct vsw_verdict va[MAX_BURST];
static struct vsw_output oa[MAX_BURST * MAX_SLOTS];
static struct vsw_output oa_frame[MAX_BURST][MAX_SLOTS];
static uint8_t expect_buf[FF_LEN_MAX + VLAN_TAG_BYTES];

/* Bridge A: the burst in calls of vsw_forward_burst() with the room the
 * io byte says, each resumed where the last stopped, as the datapath does. */
static void burst_a(struct fuzz *fz, uint16_t in_port, struct frame *frames, unsigned n)
{
	static const unsigned small[4] = {0, 1, 2, 0};
	struct vsw_pkt pkts[MAX_BURST];
	unsigned room = n * fz->max_ports, done = 0;

	if ((fz->io >> 4) >= 12) {
		room = (fz->io >> 4) == 15 ? fz->max_ports : small[(fz->io >> 4) - 12];
	}
	for (unsigned i = 0; i < n; i++) {
		pkts[i].data = frames[i].seg;
		pkts[i].len_bytes = frames[i].len;
	}
	while (done < n) {
		int ret = vsw_forward_burst(fz->a, in_port, pkts + done, n - done, fz->now_ms,
					    va + done, oa, room);
		unsigned used = 0;

		if (ret == -ENOSPC) {
			CHECK(frames[done].in.drop < 0 &&
			      m_members(fz, frames[done].in.vid) > room);
			room = vsw_bridge_max_ports(fz->a);
			continue;
		}
		CHECK(ret >= 1 && (unsigned)ret <= n - done);
		for (unsigned i = done; i < done + (unsigned)ret; i++) {
			CHECK(va[i].first_output == used && va[i].n_outputs <= MAX_SLOTS);
			memcpy(oa_frame[i], oa + used, va[i].n_outputs * sizeof(oa[0]));
			used += va[i].n_outputs;
		}
		CHECK(used <= room);
		done += (unsigned)ret;
		if (done < n) {
			CHECK(frames[done].in.drop < 0 &&
			      m_members(fz, frames[done].in.vid) > room - used);
		}
	}
}

static void op_burst(struct fuzz *fz)
{
	uint16_t in_port = next_byte(&fz->r) % fz->max_ports;
	unsigned n = 1 + next_byte(&fz->r) % MAX_BURST;
	struct frame frames[MAX_BURST];
	struct vsw_output ob[MAX_SLOTS];
	struct vsw_verdict vb;

	fz->io = next_byte(&fz->r);
	for (unsigned i = 0; i < n; i++) {
		read_frame(fz, &frames[i], i ? &frames[i - 1] : NULL);
	}
	if (!fz->ports[in_port].in_use) {
		struct vsw_pkt pkt = {.data = frames[0].seg, .len_bytes = frames[0].len};

		CHECK(vsw_forward_burst(fz->a, in_port, &pkt, 1, fz->now_ms, va, oa,
					MAX_SLOTS) == -ENODEV);
		CHECK(vsw_forward(fz->b, in_port, frames[0].data, frames[0].len, fz->now_ms, &vb,
				  ob, MAX_SLOTS) == -ENODEV);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		m_ingress(&fz->ports[in_port].cfg, frames[i].data, frames[i].len, &frames[i].in);
	}
	burst_a(fz, in_port, frames, n);
	for (unsigned i = 0; i < n; i++) {
		struct vsw_fdb_stats before;
		struct expect ex;
		int ret;

		vsw_fdb_get_stats(fz->b, &before);
		ret = vsw_forward(fz->b, in_port, frames[i].data, frames[i].len, fz->now_ms, &vb, ob,
				  vsw_bridge_max_ports(fz->b));
		CHECK(ret >= 0 && ret == vb.n_outputs);
		m_forward(fz, in_port, &frames[i], &before, &ex);
		check_verdict(fz, in_port, &frames[i], &ex, &vb, ob, expect_buf);
		CHECK(va[i].n_outputs == vb.n_outputs && va[i].vid == vb.vid &&
		      va[i].drop == vb.drop && va[i].flooded == vb.flooded);
		for (unsigned j = 0; j < vb.n_outputs; j++) {
			CHECK(same_output(&oa_frame[i][j], &ob[j]));
		}
	}
	frames_total += n;
	check_counters(fz);
out:
	for (unsigned i = 0; i < n; i++) {
		free_frame(&frames[i]);
	}
}

/* --- Configuration and the forwarding database --- */

static int lowest_free(const struct fuzz *fz)
{
	for (unsigned p = 0; p < fz->max_ports; p++) {
		if (!fz->ports[p].in_use) {
			return (int)p;
		}
	}
	return -1;
}

static void port_added(struct fuzz *fz, unsigned slot, const char *name, const struct cfg *c)
{
	struct mport *mp = &fz->ports[slot];

	memset(mp, 0, sizeof(*mp));
	mp->in_use = true;
	snprintf(mp->name, sizeof(mp->name), "%s", name);
	mp->cfg = *c;
}

static void op_add(struct fuzz *fz)
{
	uint8_t nb = next_byte(&fz->r);
	struct vsw_port_opts opts;
	struct errmsg ea = {{0}}, eb = {{0}};
	char name[16];
	struct cfg c;
	uint16_t na = VSW_PORT_NONE, nbp = VSW_PORT_NONE;
	int slot = lowest_free(fz), ra, rb;
	bool taken = false;

	snprintf(name, sizeof(name), "p%u", fz->name_seq++);
	if (nb & 0x80) {
		unsigned p = nb % fz->max_ports;

		if (fz->ports[p].in_use) {
			memcpy(name, fz->ports[p].name, sizeof(name));
			taken = true;
		}
	}
	vsw_port_opts_init(&opts);
	read_cfg(fz, &c, &opts.vlan);
	opts.name = name;
	opts.type = "fuzz";
	opts.tx_ctx = slot >= 0 ? &tx_tokens[slot] : NULL;
	opts.mac_limit = c.mac_limit;
	ra = vsw_port_add(fz->a, &opts, &na, &ea);
	rb = vsw_port_add(fz->b, &opts, &nbp, &eb);
	CHECK(ra == rb && na == nbp);
	if (!taken && slot >= 0 && c.valid) {
		CHECK(ra == 0 && na == slot);
		CHECK(strcmp(vsw_port_name(fz->b, na), name) == 0);
		CHECK(vsw_port_find(fz->b, name) == slot);
		port_added(fz, (unsigned)slot, name, &c);
		check_fdb(fz, false);
		return;
	}
	CHECK((taken && ra == -EEXIST) || (slot < 0 && ra == -ENOSPC) ||
	      (!c.valid && ra == -EINVAL));
	CHECK(ea.msg[0] != '\0' && strcmp(ea.msg, eb.msg) == 0);
}

static void op_set_vlan(struct fuzz *fz)
{
	uint16_t p = next_byte(&fz->r) % fz->max_ports;
	struct vlan_port_opts opts;
	struct errmsg ea = {{0}}, eb = {{0}};
	struct cfg c;
	int ra, rb;

	read_cfg(fz, &c, &opts);
	ra = vsw_port_set_vlan(fz->a, p, &opts, &ea);
	rb = vsw_port_set_vlan(fz->b, p, &opts, &eb);
	CHECK(ra == rb);
	if (!fz->ports[p].in_use) {
		CHECK(ra == -ENODEV);
		return;
	}
	if (!c.valid) {
		CHECK(ra == -EINVAL && ea.msg[0] != '\0');
		return;
	}
	CHECK(ra == 0);
	/* The MAC limit is the port's, not part of its VLAN configuration. */
	c.mac_limit = fz->ports[p].cfg.mac_limit;
	fz->ports[p].cfg = c;
	check_fdb(fz, false);
}

static void op_remove(struct fuzz *fz)
{
	uint16_t p = next_byte(&fz->r) % fz->max_ports;
	int ra = vsw_port_remove(fz->a, p), rb = vsw_port_remove(fz->b, p);

	CHECK(ra == rb && ra == (fz->ports[p].in_use ? 0 : -ENODEV));
	memset(&fz->ports[p], 0, sizeof(fz->ports[p]));
	CHECK(vsw_port_vlan(fz->b, p) == NULL);
	check_fdb(fz, false);
}

static void op_fdb_add(struct fuzz *fz)
{
	uint16_t p = next_byte(&fz->r) % fz->max_ports;
	uint16_t vid = vid_table[next_byte(&fz->r) & 7];
	const uint8_t *mac = macs[next_byte(&fz->r) & 15];
	struct vsw_fdb_stats before;
	int ra, rb;

	vsw_fdb_get_stats(fz->b, &before);
	ra = vsw_fdb_add_static(fz->a, vid, mac, p);
	rb = vsw_fdb_add_static(fz->b, vid, mac, p);
	CHECK(ra == rb);
	if (!fz->ports[p].in_use) {
		CHECK(ra == -ENODEV);
	} else if (!m_member(&fz->ports[p].cfg, vid) || !mac_unicast(mac)) {
		CHECK(ra == -EINVAL);
	} else if (ra == 0) {
		CHECK(vsw_fdb_lookup(fz->b, vid, mac, fz->now_ms) == p);
	} else {
		CHECK(ra == -ENOSPC && before.static_entries == before.capacity);
	}
	check_fdb(fz, false);
}

static void op_fdb_del(struct fuzz *fz)
{
	uint16_t vid = vid_table[next_byte(&fz->r) & 7];
	const uint8_t *mac = macs[next_byte(&fz->r) & 15];
	int ra = vsw_fdb_del(fz->a, vid, mac), rb = vsw_fdb_del(fz->b, vid, mac);

	CHECK(ra == rb && (ra == 0 || ra == -ENOENT));
	CHECK(vsw_fdb_lookup(fz->b, vid, mac, fz->now_ms) == -ENOENT);
	check_fdb(fz, false);
}

struct flush_walk {
	uint16_t port, vid;
	bool statics;
};

static int flush_left(const struct vsw_fdb_entry *e, void *arg)
{
	const struct flush_walk *w = arg;

	CHECK(!((w->port == VSW_PORT_NONE || e->port_no == w->port) &&
		(w->vid == 0 || e->vid == w->vid) && (w->statics || !e->is_static)));
	return 0;
}

static void op_flush(struct fuzz *fz)
{
	uint8_t pb = next_byte(&fz->r), vb = next_byte(&fz->r);
	struct flush_walk w = {
		.port = pb & 0x80 ? VSW_PORT_NONE : pb % fz->max_ports,
		.vid = vb & 0x80 ? 0 : vid_table[vb & 7],
		.statics = next_byte(&fz->r) & 1,
	};

	CHECK(vsw_fdb_flush(fz->a, w.port, w.vid, w.statics) ==
	      vsw_fdb_flush(fz->b, w.port, w.vid, w.statics));
	CHECK(vsw_fdb_dump(fz->b, fz->now_ms, flush_left, &w) == 0);
	check_fdb(fz, false);
}

static void op_limit(struct fuzz *fz)
{
	static const uint32_t limits[4] = {0, 1, 2, 5};
	uint16_t p = next_byte(&fz->r) % fz->max_ports;
	uint32_t lim = limits[next_byte(&fz->r) & 3];
	int ra = vsw_port_set_mac_limit(fz->a, p, lim), rb = vsw_port_set_mac_limit(fz->b, p, lim);

	CHECK(ra == rb && ra == (fz->ports[p].in_use ? 0 : -ENODEV));
	if (ra == 0) {
		fz->ports[p].cfg.mac_limit = lim;
	}
	check_fdb(fz, false);
}

static void op_age(struct fuzz *fz)
{
	CHECK(vsw_bridge_age(fz->a, fz->now_ms) == vsw_bridge_age(fz->b, fz->now_ms));
	check_fdb(fz, true);
}

/* --- The input --- */

static int setup(struct fuzz *fz)
{
	uint8_t nb = next_byte(&fz->r), sizes = next_byte(&fz->r);
	unsigned n = 2 + (nb & 0x1f) % 7;
	struct vsw_bridge_opts bo;
	struct errmsg err = {{0}};

	vsw_bridge_opts_init(&bo);
	bo.name = "fuzz";
	bo.hash_seed = HASH_SEED;
	bo.mac_capacity = capacities[sizes & 3];
	bo.mac_aging_s = agings_s[(sizes >> 2) & 3];
	bo.port_mac_limit = bridge_limits[(sizes >> 4) & 3];
	bo.max_ports = (uint16_t)(n + (sizes >> 6));
	fz->max_ports = bo.max_ports;
	fz->capacity = bo.mac_capacity;
	fz->bridge_limit = bo.port_mac_limit;
	fz->now_ms = T_START_MS;
	fz->passes = 1 + (nb >> 5);
	if (vsw_bridge_create(&bo, &fz->a, &err) < 0 || vsw_bridge_create(&bo, &fz->b, &err) < 0 ||
	    vlan_set_create(&fz->trunks) < 0 || vlan_set_create(&fz->cvlans) < 0) {
		return -ENOMEM;
	}
	CHECK(vsw_bridge_max_ports(fz->b) == fz->max_ports);
	for (unsigned i = 0; i < n; i++) {
		op_add(fz);
	}
	return 0;
}

/* The ops after the bridge's setup, to the end of the input. */
static void run_ops(struct fuzz *fz)
{
	while (fz->r.left > 0) {
		switch (next_byte(&fz->r) % FF_OP_COUNT) {
		case FF_OP_BURST:
		case FF_OP_BURST2:
		case FF_OP_BURST3:
			op_burst(fz);
			break;
		case FF_OP_TICK:
			fz->now_ms += steps_ms[next_byte(&fz->r) & 7];
			break;
		case FF_OP_AGE:
			op_age(fz);
			break;
		case FF_OP_SET_VLAN:
			op_set_vlan(fz);
			break;
		case FF_OP_REMOVE:
			op_remove(fz);
			break;
		case FF_OP_ADD:
			op_add(fz);
			break;
		case FF_OP_FDB_ADD:
			op_fdb_add(fz);
			break;
		case FF_OP_FDB_DEL:
			op_fdb_del(fz);
			break;
		case FF_OP_FLUSH:
			op_flush(fz);
			break;
		default:
			op_limit(fz);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *fz = calloc(1, sizeof(*fz));
	struct reader ops;

	CHECK(fz);
	if (pattern[1] == 0) {
		for (unsigned i = 0; i < FF_LEN_MAX; i++) {
			pattern[i] = (uint8_t)(i * 37 + 11);
		}
	}
	for (unsigned i = 0; i < n_touched; i++) {
		memset(&vlan_model[touched[i]], 0, sizeof(vlan_model[0]));
	}
	n_touched = 0;
	fz->r = (struct reader){.p = data, .left = size};
	if (setup(fz) < 0) {
		goto out;
	}
	ops = fz->r;
	for (unsigned pass = 0; pass < fz->passes; pass++) {
		fz->r = ops;
		fz->now_ms += pass ? PASS_GAP_MS : 0;
		run_ops(fz);
	}
	check_counters(fz);
	check_fdb(fz, false);
out:
	vsw_bridge_destroy(fz->a);
	vsw_bridge_destroy(fz->b);
	vlan_set_destroy(fz->trunks);
	vlan_set_destroy(fz->cvlans);
	free(fz);
	inputs_total++;
	return 0;
}

static void report(void)
{
	fprintf(stderr, "fuzz_frames: %llu frames in %llu inputs\n",
		(unsigned long long)frames_total, (unsigned long long)inputs_total);
}

/* libFuzzer calls this once; the replay program does not, and prints its
 * own summary. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	atexit(report);
	return 0;
}
