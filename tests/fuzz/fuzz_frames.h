/* SPDX-License-Identifier: MIT */
/* fuzz_frames.h: the frame fuzz target (fuzz_frames.c) and its input
 * encoding, shared by the libFuzzer build, the replay program
 * (frames_replay_main.c) and the seed writer (gen_frame_seeds.c).
 *
 * An input is a byte string read front to back; a field past its end reads
 * as 0, so every input is valid.  Values are picks from small tables, so
 * that overlaps (the same VLAN on many ports, the same station twice) are
 * the rule rather than the exception, and the edge values (VID 0 and 4095,
 * TPID 0x9100) come up often:
 *
 *   bridge:  n (2 + (n & 0x1f) % 7 ports; the ops below run 1 + (n >> 5)
 *            times over, a second apart, so that a bridge, costly to make,
 *            serves more frames), sizes (FF_SIZES), then the port configs
 *   port:    mode, tag, trunks, cvlans, tpid, limit (6 bytes, FF_CFG_*)
 *   then ops until the end, each an op byte (op % FF_OP_COUNT) and its
 *   arguments:
 *     FF_OP_BURST:   in_port, count (1 + c % 32), io (FF_IO_*), frames
 *     FF_OP_TICK:    step (index into the time steps)
 *     FF_OP_AGE:     -
 *     FF_OP_SET_VLAN: port, port config
 *     FF_OP_REMOVE:  port
 *     FF_OP_ADD:     name (FF_ADD_NAME_TAKEN: an existing port's), port config
 *     FF_OP_FDB_ADD: port, vid (index), mac (index)
 *     FF_OP_FDB_DEL: vid, mac
 *     FF_OP_FLUSH:   port (>= 0x80: any), vid (index, 0x80: any), statics
 *     FF_OP_LIMIT:   port, limit
 *   frame:   dst, src (MAC picks; FF_FRAME_REPEAT as dst repeats the
 *            previous frame's first bytes), tags (count in bits 0-1; then 2
 *            bytes a tag: TPID and priority, VID), ethertype (2 raw bytes),
 *            length (2 bytes, FF_LEN_*), overwrites (count in bits 0-2; then
 *            2 bytes each: offset in the first 64 bytes, value), seg
 *            (FF_SEG_*: how much of the frame the burst call sees)
 */
#ifndef FUZZ_FRAMES_H
#define FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>

enum ff_op {
	FF_OP_BURST,
	FF_OP_BURST2, /* bursts twice as likely as anything else */
	FF_OP_BURST3,
	FF_OP_TICK,
	FF_OP_AGE,
	FF_OP_SET_VLAN,
	FF_OP_REMOVE,
	FF_OP_ADD,
	FF_OP_FDB_ADD,
	FF_OP_FDB_DEL,
	FF_OP_FLUSH,
	FF_OP_LIMIT,
	FF_OP_COUNT
};

/* n byte: ports and passes.  sizes byte: capacity (bits 0-1: 512, 1, 4,
 * 16), aging (2-3: 300, 1, 2, 60 s), port MAC limit (4-5: 0, 0, 1, 3),
 * spare port slots (6-7). */
#define FF_BRIDGE(ports, passes) ((uint8_t)(((ports) - 2) | ((passes) - 1) << 5))
#define FF_SIZES(cap, aging, limit, spare) \
	((uint8_t)((cap) | (aging) << 2 | (limit) << 4 | (spare) << 6))

/* Port config bytes.  mode: the mode in bits 0-2 (% 5); FF_CFG_TRUNKS_ANY
 * passes the trunk set whatever the mode, FF_CFG_CVLANS_ANY the cvlans set,
 * FF_CFG_TPID_ANY the TPID, FF_CFG_TAG_ANY the tag (else a trunk gets 0):
 * those make contradictory configurations, which must be refused. */
#define FF_CFG_TAG_ANY 0x10
#define FF_CFG_TPID_ANY 0x20
#define FF_CFG_CVLANS_ANY 0x40
#define FF_CFG_TRUNKS_ANY 0x80
/* tag: an index into the VID table (bits 0-2).  trunks: a bit mask over the
 * VID table (its 0 and 4095 are refused by the set and left out), plus
 * FF_CFG_RANGE in the tag byte: also 15-25.  cvlans: 0 none (NULL), else a
 * mask like trunks (so 0xc0 is the empty set).  tpid: index into the tunnel
 * TPIDs (0, 0, 0x8100, 0x88a8, 0x9100, 0x0800, 0, 0x88a8).  limit: index
 * into the MAC limits (0, 0, 1, 4). */
#define FF_CFG_RANGE 0x80

/* The VID table: ports and tags draw from it, so that they overlap. */
#define FF_VIDS {1, 10, 20, 30, 4094, 10, 0, 4095}
/* Station MACs 0-7 are unicast; then broadcast, multicast, reserved group,
 * zero, IPv6 multicast, and three more unicast ones. */
#define FF_MAC_STATIONS 8
#define FF_MAC_BROADCAST 8
#define FF_MAC_RESERVED 10
#define FF_MAC_ZERO 11
#define FF_FRAME_REPEAT 0xff

/* Tag bytes: TPID index in bits 0-1 (0x8100, 0x88a8, 0x9100, 0x8100), PCP
 * bits 2-4, DEI bit 5; VID: below 0x80 an index into the VID table, else
 * (v & 0x7f) * 32 + 31, a spread of other values up to 4095. */
#define FF_TAG(tpid_idx, pcp) ((uint8_t)((tpid_idx) | (pcp) << 2))

/* io byte: headroom (bits 0-1: 0, 2, 4, 128), tailroom (bits 2-3: 0, 3, 4,
 * 64) of the output copies, and the room for outputs (bits 4-7: below 12
 * enough for the burst, then 0, 1, 2, one frame's worth). */
#define FF_IO(head, tail, room) ((uint8_t)((head) | (tail) << 2 | (room) << 4))

/* length bytes: a first byte below 0xe0 is the length itself; else 13 bits
 * of both bytes scale to 0-9018. */
#define FF_LEN_MAX 9018u

/* seg byte: below 0x80 the burst call sees the whole frame, else only its
 * first VSW_PEEK_BYTES + (seg & 0x3f) bytes, as with an mbuf chain. */
#define FF_SEG_CHAINED 0x80

/* Runs one input.  Always returns 0; a broken promise aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Frames decided so far by this process (each through both bridges). */
uint64_t fuzz_frames_count(void);

#endif
