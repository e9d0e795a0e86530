/* SPDX-License-Identifier: MIT */
/* vset.c: sets of VLAN IDs as 4096-bit bitmaps, and their text form
 * "10,20-30" for configuration, persistence and the CLI.  Ports (portmode.c)
 * keep their trunk and customer VLAN lists in these.  Bits 0 and 4095 are
 * never set, so an empty bitmap is "no VLANs" and nothing means "all". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "vlan.h"

#define WORD_BITS 64
#define SET_WORDS (4096 / WORD_BITS)

struct vlan_set {
	uint64_t words[SET_WORDS]; /* bit v of the whole array: VID v */
};

static bool vid_is_valid(unsigned long vid)
{
	return vid >= VLAN_VID_MIN && vid <= VLAN_VID_MAX;
}

static uint64_t vid_bit(uint16_t vid)
{
	return UINT64_C(1) << (vid % WORD_BITS);
}

int vlan_set_create(struct vlan_set **setp)
{
	struct vlan_set *set;

	set = calloc(1, sizeof(*set));
	if (!set) {
		return -ENOMEM;
	}
	*setp = set;
	return 0;
}

void vlan_set_destroy(struct vlan_set *set)
{
	free(set);
}

int vlan_set_clone(const struct vlan_set *src, struct vlan_set **copyp)
{
	struct vlan_set *copy;
	int ret;

	ret = vlan_set_create(&copy);
	if (ret < 0) {
		return ret;
	}
	vlan_set_copy(copy, src);
	*copyp = copy;
	return 0;
}

void vlan_set_copy(struct vlan_set *dst, const struct vlan_set *src)
{
	*dst = *src;
}

void vlan_set_clear(struct vlan_set *set)
{
	memset(set, 0, sizeof(*set));
}

int vlan_set_add(struct vlan_set *set, uint16_t vid)
{
	if (!vid_is_valid(vid)) {
		return -EINVAL;
	}
	set->words[vid / WORD_BITS] |= vid_bit(vid);
	return 0;
}

int vlan_set_remove(struct vlan_set *set, uint16_t vid)
{
	if (!vid_is_valid(vid)) {
		return -EINVAL;
	}
	set->words[vid / WORD_BITS] &= ~vid_bit(vid);
	return 0;
}

int vlan_set_add_range(struct vlan_set *set, uint16_t first, uint16_t last)
{
	unsigned int vid;

	if (!vid_is_valid(first) || !vid_is_valid(last) || first > last) {
		return -EINVAL;
	}
	/* At most 4094 iterations, on a configuration path: clarity wins. */
	for (vid = first; vid <= last; vid++) {
		set->words[vid / WORD_BITS] |= vid_bit((uint16_t)vid);
	}
	return 0;
}

bool vlan_set_contains(const struct vlan_set *set, uint16_t vid)
{
	if (!set || !vid_is_valid(vid)) {
		return false;
	}
	return (set->words[vid / WORD_BITS] & vid_bit(vid)) != 0;
}

bool vlan_set_is_empty(const struct vlan_set *set)
{
	return vlan_set_next(set, 0) == 0;
}

bool vlan_set_equal(const struct vlan_set *a, const struct vlan_set *b)
{
	return memcmp(a->words, b->words, sizeof(a->words)) == 0;
}

unsigned int vlan_set_count(const struct vlan_set *set)
{
	unsigned int count = 0;
	size_t i;

	for (i = 0; i < SET_WORDS; i++) {
		count += (unsigned int)__builtin_popcountll(set->words[i]);
	}
	return count;
}

uint16_t vlan_set_next(const struct vlan_set *set, uint16_t after)
{
	unsigned int vid = (unsigned int)after + 1;
	uint64_t word;

	while (vid <= VLAN_VID_MAX) {
		/* Mask off the bits below 'vid' in its word, then jump to the
		 * lowest one left, or to the next word. */
		word = set->words[vid / WORD_BITS] & (~UINT64_C(0) << (vid % WORD_BITS));
		if (word) {
			vid = (vid / WORD_BITS) * WORD_BITS + (unsigned int)__builtin_ctzll(word);
			return vid <= VLAN_VID_MAX ? (uint16_t)vid : 0;
		}
		vid = (vid / WORD_BITS + 1) * WORD_BITS;
	}
	return 0;
}

/* --- Text form --- */

struct parser {
	const char *text;
	size_t pos;
	struct errmsg *err;
};

static void skip_blanks(struct parser *p)
{
	while (p->text[p->pos] == ' ' || p->text[p->pos] == '\t') {
		p->pos++;
	}
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads a decimal VID.  Values stop growing past 4095 so that a long run of
 * digits cannot overflow; they are out of range either way. */
static int parse_vid(struct parser *p, uint16_t *vidp)
{
	unsigned long value = 0;
	size_t start;

	skip_blanks(p);
	start = p->pos;
	if (!is_digit(p->text[p->pos])) {
		errmsg_set(p->err, "VLAN list \"%s\": expected a VLAN ID at offset %zu", p->text,
			   p->pos);
		return -EINVAL;
	}
	while (is_digit(p->text[p->pos])) {
		if (value <= VLAN_VID_RESERVED) {
			value = value * 10 + (unsigned long)(p->text[p->pos] - '0');
		}
		p->pos++;
	}
	if (!vid_is_valid(value)) {
		errmsg_set(p->err,
			   "VLAN list \"%s\": VLAN ID \"%.*s\" at offset %zu is outside %d-%d",
			   p->text, (int)(p->pos - start), p->text + start, start, VLAN_VID_MIN,
			   VLAN_VID_MAX);
		return -EINVAL;
	}
	*vidp = (uint16_t)value;
	skip_blanks(p);
	return 0;
}

/* item = VID [ '-' VID ] */
static int parse_item(struct parser *p, struct vlan_set *set)
{
	uint16_t first, last;
	size_t start;
	int ret;

	skip_blanks(p);
	start = p->pos;
	ret = parse_vid(p, &first);
	if (ret < 0) {
		return ret;
	}
	last = first;
	if (p->text[p->pos] == '-') {
		p->pos++;
		ret = parse_vid(p, &last);
		if (ret < 0) {
			return ret;
		}
	}
	if (first > last) {
		errmsg_set(p->err, "VLAN list \"%s\": range %u-%u at offset %zu runs backwards",
			   p->text, first, last, start);
		return -EINVAL;
	}
	return vlan_set_add_range(set, first, last);
}

int vlan_set_parse(struct vlan_set *set, const char *text, struct errmsg *err)
{
	struct parser p = {.text = text, .pos = 0, .err = err};
	struct vlan_set parsed = {{0}};
	int ret;

	if (!text) {
		errmsg_set(err, "VLAN list missing");
		return -EINVAL;
	}
	skip_blanks(&p);
	if (text[p.pos] == '\0') {
		vlan_set_clear(set);
		return 0;
	}
	for (;;) {
		ret = parse_item(&p, &parsed);
		if (ret < 0) {
			return ret;
		}
		if (text[p.pos] == '\0') {
			break;
		}
		if (text[p.pos] != ',') {
			errmsg_set(err, "VLAN list \"%s\": unexpected '%c' at offset %zu", text,
				   text[p.pos], p.pos);
			return -EINVAL;
		}
		p.pos++;
	}
	vlan_set_copy(set, &parsed);
	return 0;
}

/* Appends one item to 'buf' if it fits; '*lenp' counts what the whole text
 * needs, fitting or not. */
static void append_item(char *buf, size_t size_bytes, size_t *lenp, uint16_t first, uint16_t last)
{
	const char *comma = *lenp ? "," : "";
	char item[16];
	int n;

	if (first == last) {
		n = snprintf(item, sizeof(item), "%s%u", comma, first);
	} else {
		n = snprintf(item, sizeof(item), "%s%u-%u", comma, first, last);
	}
	if (*lenp + (size_t)n < size_bytes) {
		memcpy(buf + *lenp, item, (size_t)n + 1);
	}
	*lenp += (size_t)n;
}

int vlan_set_format(const struct vlan_set *set, char *buf, size_t size_bytes)
{
	size_t len = 0;
	uint16_t first, last;

	if (size_bytes == 0) {
		return -ENOSPC;
	}
	buf[0] = '\0';
	for (first = vlan_set_next(set, 0); first; first = vlan_set_next(set, last)) {
		last = first;
		while (vlan_set_contains(set, (uint16_t)(last + 1))) {
			last++;
		}
		append_item(buf, size_bytes, &len, first, last);
	}
	if (len >= size_bytes) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)len;
}
