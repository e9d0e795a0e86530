/* SPDX-License-Identifier: MIT */
/* tag.c: parse, push and pop 802.1Q / 802.1ad tags in frames held in caller
 * buffers.  The per-frame primitives under portmode.c's decisions; every
 * bound is checked before a byte is touched, since frames come from guests. */
#include <errno.h>
#include <string.h>

#include "vlan.h"
#include "wire.h"

bool vlan_tpid_is_vlan(uint16_t tpid)
{
	return tpid == VLAN_TPID_8021Q || tpid == VLAN_TPID_8021AD;
}

static void tag_unpack(uint16_t tpid, uint16_t tci, struct vlan_tag *tag)
{
	tag->tpid = tpid;
	tag->vid = tci & VLAN_TCI_VID_MASK;
	tag->pcp = (uint8_t)(tci >> VLAN_TCI_PCP_SHIFT);
	tag->dei = (tci & VLAN_TCI_DEI) != 0;
}

static bool tag_is_pushable(const struct vlan_tag *tag)
{
	return tag && vlan_tpid_is_vlan(tag->tpid) && tag->vid <= VLAN_VID_MAX &&
	       tag->pcp <= VLAN_PCP_MAX;
}

static void tag_store(uint8_t *p, const struct vlan_tag *tag)
{
	struct vlan_wire_tag *wire = (struct vlan_wire_tag *)p;
	uint16_t tci;

	tci = (uint16_t)(tag->pcp << VLAN_TCI_PCP_SHIFT) | (tag->dei ? VLAN_TCI_DEI : 0) | tag->vid;
	vlan_store_be16(wire->tpid_be, tag->tpid);
	vlan_store_be16(wire->tci_be, tci);
}

/* Written so that no sum can wrap: 'head_bytes' and 'len_bytes' come from
 * callers who may have got them wrong. */
static int buf_check(const struct vlan_buf *buf)
{
	if (!buf || !buf->base || buf->head_bytes > buf->cap_bytes ||
	    buf->len_bytes > buf->cap_bytes - buf->head_bytes) {
		return -EINVAL;
	}
	if (buf->len_bytes < VLAN_ETH_HDR_BYTES) {
		return -EINVAL;
	}
	return 0;
}

int vlan_frame_parse(const uint8_t *frame, size_t len_bytes, struct vlan_frame *infop)
{
	struct vlan_frame info = {0};
	size_t off = VLAN_ETH_ADDRS_BYTES;
	uint16_t type;

	if (!frame || len_bytes < VLAN_ETH_HDR_BYTES) {
		return -EINVAL;
	}
	type = vlan_load_be16(frame + off);
	while (info.n_tags < VLAN_MAX_TAGS && vlan_tpid_is_vlan(type)) {
		/* The tag and the type field after it must both be there. */
		if (len_bytes - off < VLAN_TAG_BYTES + 2) {
			return -EINVAL;
		}
		tag_unpack(type, vlan_load_be16(frame + off + 2), &info.tags[info.n_tags]);
		info.n_tags++;
		off += VLAN_TAG_BYTES;
		type = vlan_load_be16(frame + off);
	}
	info.ethertype = type;
	info.payload_offset_bytes = off + 2;
	*infop = info;
	return 0;
}

int vlan_tag_push(struct vlan_buf *buf, const struct vlan_tag *tag)
{
	uint8_t *data;
	int ret;

	ret = buf_check(buf);
	if (ret < 0) {
		return ret;
	}
	if (!tag_is_pushable(tag)) {
		return -EINVAL;
	}
	if (buf->head_bytes >= VLAN_TAG_BYTES) {
		/* Moving the 12 address bytes is cheaper than the payload. */
		data = vlan_buf_data(buf) - VLAN_TAG_BYTES;
		memmove(data, data + VLAN_TAG_BYTES, VLAN_ETH_ADDRS_BYTES);
		buf->head_bytes -= VLAN_TAG_BYTES;
	} else if (buf->cap_bytes - buf->head_bytes - buf->len_bytes >= VLAN_TAG_BYTES) {
		data = vlan_buf_data(buf);
		memmove(data + VLAN_ETH_ADDRS_BYTES + VLAN_TAG_BYTES, data + VLAN_ETH_ADDRS_BYTES,
			buf->len_bytes - VLAN_ETH_ADDRS_BYTES);
	} else {
		return -ENOSPC;
	}
	tag_store(data + VLAN_ETH_ADDRS_BYTES, tag);
	buf->len_bytes += VLAN_TAG_BYTES;
	return 0;
}

int vlan_tag_pop(struct vlan_buf *buf, struct vlan_tag *tagp)
{
	struct vlan_tag tag;
	uint8_t *data;
	uint16_t tpid;
	int ret;

	ret = buf_check(buf);
	if (ret < 0) {
		return ret;
	}
	data = vlan_buf_data(buf);
	tpid = vlan_load_be16(data + VLAN_ETH_ADDRS_BYTES);
	if (!vlan_tpid_is_vlan(tpid)) {
		return -ENOENT;
	}
	/* Without the type field after the tag, what is left is no frame. */
	if (buf->len_bytes < VLAN_ETH_HDR_BYTES + VLAN_TAG_BYTES) {
		return -EINVAL;
	}
	tag_unpack(tpid, vlan_load_be16(data + VLAN_ETH_ADDRS_BYTES + 2), &tag);
	memmove(data + VLAN_TAG_BYTES, data, VLAN_ETH_ADDRS_BYTES);
	buf->head_bytes += VLAN_TAG_BYTES;
	buf->len_bytes -= VLAN_TAG_BYTES;
	if (tagp) {
		*tagp = tag;
	}
	return 0;
}
