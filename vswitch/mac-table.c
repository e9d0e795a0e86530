/* SPDX-License-Identifier: MIT */
/* mac-table.c: the forwarding database behind mac-table.h.  A chained hash
 * over a fixed array of entries; entries, buckets and the per-port state are
 * allocated once, at create, so learning at line rate never allocates.
 *
 * Invariants, cited below by number:
 *  1. An entry is free if and only if its key is 0 (VID 0 is never stored);
 *     free entries are chained through 'chain' from 'free_head'.
 *  2. A learned (dynamic) entry sits on exactly one port's LRU list, the
 *     port it points to, oldest first; a static entry sits on none.
 *  3. ports[p].count is the length of p's LRU list; statics never count, so
 *     neither the port limit nor eviction ever touches them.
 *  4. 'heap' is a max-heap of every port number by count, and
 *     ports[heap[i]].heap_pos == i: the biggest learner is heap[0].
 *  5. Since 'now_ms' never decreases and a refresh moves an entry to the
 *     tail, each LRU list is ordered by 'seen_ms': aging stops at the first
 *     live entry of each list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mac-table.h"

#define NIL UINT32_MAX

struct mac_entry {
	uint64_t key;     /* vid << 48 | MAC, 0 when free (rule 1) */
	uint64_t seen_ms; /* last time a frame from it arrived; 0 when static */
	uint32_t chain;   /* next in the bucket, or in the free list */
	uint32_t prev;    /* neighbours on the port's LRU list (rule 2) */
	uint32_t next;
	uint16_t port;
	bool is_static;
};

struct port_state {
	uint32_t head;     /* oldest learned entry, NIL if none */
	uint32_t tail;     /* newest */
	uint32_t count;    /* learned entries (rule 3) */
	uint32_t limit;    /* most learned entries allowed, >= 1 */
	uint32_t heap_pos; /* index in 'heap' (rule 4) */
	uint64_t learned;       /* counters of struct vsw_mac_port_stats */
	uint64_t evicted_limit;
	uint64_t evicted_full;
};

struct vsw_mac_table {
	struct mac_entry *entries; /* 'capacity' of them */
	uint32_t *buckets;         /* heads of the chains, NIL if empty */
	uint32_t bucket_mask;      /* bucket count (a power of 2) minus 1 */
	uint32_t capacity;
	uint32_t free_head;
	uint32_t default_limit;
	uint64_t aging_ms;
	uint64_t seed;
	uint64_t last_reclaim_ms; /* when a full table last tried vsw_mac_age() */
	uint16_t n_ports;
	struct port_state *ports;
	uint16_t *heap;
	struct vsw_mac_stats stats;
};

/* --- Keys and hashing --- */

static uint64_t key_make(uint16_t vid, const uint8_t *mac)
{
	uint64_t key = vid;
	int i;

	for (i = 0; i < 6; i++) {
		key = key << 8 | mac[i];
	}
	return key;
}

static uint16_t key_vid(uint64_t key)
{
	return (uint16_t)(key >> 48);
}

static void key_mac(uint64_t key, uint8_t *mac)
{
	int i;

	for (i = 5; i >= 0; i--) {
		mac[i] = (uint8_t)key;
		key >>= 8;
	}
}

/* A keyed 64-bit finaliser (MurmurHash3's fmix64): every key bit reaches
 * every bucket bit, and without the seed a guest cannot pick MACs that pile
 * into one chain. */
static uint32_t bucket_of(const struct vsw_mac_table *t, uint64_t key)
{
	uint64_t h = key ^ t->seed;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (uint32_t)h & t->bucket_mask;
}

static bool mac_is_unicast(const uint8_t *mac)
{
	static const uint8_t zero[6];

	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

/* An entry not seen for the aging time is gone.  Time going backwards would
 * be a caller's bug; it then reads as "just seen" rather than wrapping. */
static bool entry_expired(const struct vsw_mac_table *t, const struct mac_entry *e,
			  uint64_t now_ms)
{
	return !e->is_static && now_ms >= e->seen_ms && now_ms - e->seen_ms >= t->aging_ms;
}

static uint32_t find(const struct vsw_mac_table *t, uint64_t key)
{
	uint32_t i;

	for (i = t->buckets[bucket_of(t, key)]; i != NIL; i = t->entries[i].chain) {
		if (t->entries[i].key == key) {
			return i;
		}
	}
	return NIL;
}

/* --- The heap of ports by learned count (rule 4) --- */

static void heap_swap(struct vsw_mac_table *t, uint32_t a, uint32_t b)
{
	uint16_t pa = t->heap[a], pb = t->heap[b];

	t->heap[a] = pb;
	t->heap[b] = pa;
	t->ports[pb].heap_pos = a;
	t->ports[pa].heap_pos = b;
}

static bool heap_above(const struct vsw_mac_table *t, uint32_t a, uint32_t b)
{
	return t->ports[t->heap[a]].count > t->ports[t->heap[b]].count;
}

static void heap_up(struct vsw_mac_table *t, uint32_t i)
{
	while (i > 0 && heap_above(t, i, (i - 1) / 2)) {
		heap_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct vsw_mac_table *t, uint32_t i)
{
	uint32_t child, best;

	for (;;) {
		best = i;
		child = 2 * i + 1;
		if (child < t->n_ports && heap_above(t, child, best)) {
			best = child;
		}
		if (child + 1 < t->n_ports && heap_above(t, child + 1, best)) {
			best = child + 1;
		}
		if (best == i) {
			return;
		}
		heap_swap(t, i, best);
		i = best;
	}
}

/* --- Port LRU lists (rules 2, 3, 5) --- */

static void lru_append(struct vsw_mac_table *t, uint32_t i)
{
	struct mac_entry *e = &t->entries[i];
	struct port_state *p = &t->ports[e->port];

	e->prev = p->tail;
	e->next = NIL;
	if (p->tail != NIL) {
		t->entries[p->tail].next = i;
	} else {
		p->head = i;
	}
	p->tail = i;
	p->count++;
	heap_up(t, p->heap_pos);
}

static void lru_unlink(struct vsw_mac_table *t, uint32_t i)
{
	struct mac_entry *e = &t->entries[i];
	struct port_state *p = &t->ports[e->port];

	if (e->prev != NIL) {
		t->entries[e->prev].next = e->next;
	} else {
		p->head = e->next;
	}
	if (e->next != NIL) {
		t->entries[e->next].prev = e->prev;
	} else {
		p->tail = e->prev;
	}
	e->prev = NIL;
	e->next = NIL;
	p->count--;
	heap_down(t, p->heap_pos);
}

/* A refresh keeps the list ordered by 'seen_ms' (rule 5) without touching
 * the count, so the heap needs no fixing. */
static void lru_touch(struct vsw_mac_table *t, uint32_t i)
{
	struct mac_entry *e = &t->entries[i];
	struct port_state *p = &t->ports[e->port];

	if (p->tail == i) {
		return;
	}
	if (e->prev != NIL) {
		t->entries[e->prev].next = e->next;
	} else {
		p->head = e->next;
	}
	t->entries[e->next].prev = e->prev;
	e->prev = p->tail;
	e->next = NIL;
	t->entries[p->tail].next = i;
	p->tail = i;
}

/* --- Entries --- */

static void entry_remove(struct vsw_mac_table *t, uint32_t i)
{
	struct mac_entry *e = &t->entries[i];
	uint32_t *link = &t->buckets[bucket_of(t, e->key)];

	while (*link != i) {
		link = &t->entries[*link].chain;
	}
	*link = e->chain;
	if (e->is_static) {
		t->stats.static_entries--;
	} else {
		lru_unlink(t, i);
	}
	e->key = 0; /* rule 1 */
	e->chain = t->free_head;
	t->free_head = i;
	t->stats.entries--;
}

/* Takes a free entry and hashes it in under 'key'; the caller has made room. */
static uint32_t entry_insert(struct vsw_mac_table *t, uint64_t key, uint16_t port)
{
	uint32_t i = t->free_head, b = bucket_of(t, key);
	struct mac_entry *e = &t->entries[i];

	t->free_head = e->chain;
	e->key = key;
	e->port = port;
	e->chain = t->buckets[b];
	t->buckets[b] = i;
	t->stats.entries++;
	return i;
}

/* Evicts the least recently seen learned entry of 'port', counting it in the
 * table's and the port's counters: 'full' says which pair. */
static void evict_oldest(struct vsw_mac_table *t, uint16_t port, bool full)
{
	entry_remove(t, t->ports[port].head);
	if (full) {
		t->stats.evicted_full++;
		t->ports[port].evicted_full++;
	} else {
		t->stats.evicted_limit++;
		t->ports[port].evicted_limit++;
	}
}

/* Frees one entry for a new one: first what has expired (at most one scan
 * per distinct 'now_ms', which bounds the cost under a flood of new MACs to
 * one scan per burst), then the oldest of the biggest learner.  Returns
 * false if only static entries are left. */
static bool make_room(struct vsw_mac_table *t, uint64_t now_ms)
{
	if (t->free_head != NIL) {
		return true;
	}
	if (now_ms != t->last_reclaim_ms) {
		t->last_reclaim_ms = now_ms;
		if (vsw_mac_age(t, now_ms) > 0) {
			return true;
		}
	}
	if (t->ports[t->heap[0]].count == 0) {
		return false;
	}
	evict_oldest(t, t->heap[0], true);
	return true;
}

/* Makes room for one more learned entry on 'port' under its limit. */
static void keep_port_limit(struct vsw_mac_table *t, uint16_t port)
{
	if (t->ports[port].count >= t->ports[port].limit) {
		evict_oldest(t, port, false);
	}
}

static enum vsw_mac_learn learn_new(struct vsw_mac_table *t, uint64_t key, uint16_t port,
				    uint64_t now_ms)
{
	uint32_t i;

	keep_port_limit(t, port);
	if (!make_room(t, now_ms)) {
		t->stats.no_space++;
		return VSW_MAC_NO_SPACE;
	}
	i = entry_insert(t, key, port);
	t->entries[i].is_static = false;
	t->entries[i].seen_ms = now_ms;
	lru_append(t, i);
	t->stats.learned++;
	t->ports[port].learned++;
	return VSW_MAC_LEARNED;
}

static enum vsw_mac_learn learn_move(struct vsw_mac_table *t, uint32_t i, uint16_t port,
				     uint64_t now_ms)
{
	struct mac_entry *e = &t->entries[i];

	/* The entry moving belongs to another port, so this never evicts it. */
	keep_port_limit(t, port);
	lru_unlink(t, i);
	e->port = port;
	e->seen_ms = now_ms;
	lru_append(t, i);
	t->stats.moved++;
	t->ports[port].learned++;
	return VSW_MAC_MOVED;
}

enum vsw_mac_learn vsw_mac_learn(struct vsw_mac_table *t, uint16_t vid, const uint8_t *mac,
				 uint16_t port, uint64_t now_ms)
{
	uint64_t key = key_make(vid, mac);
	uint32_t i = find(t, key);
	struct mac_entry *e;

	if (i == NIL) {
		return learn_new(t, key, port, now_ms);
	}
	e = &t->entries[i];
	if (e->is_static) {
		if (e->port == port) {
			return VSW_MAC_STATIC;
		}
		t->stats.static_conflicts++;
		return VSW_MAC_STATIC_CONFLICT;
	}
	if (entry_expired(t, e, now_ms)) {
		/* Gone already, whatever port it was on: a new station. */
		entry_remove(t, i);
		t->stats.expired++;
		return learn_new(t, key, port, now_ms);
	}
	if (e->port != port) {
		return learn_move(t, i, port, now_ms);
	}
	e->seen_ms = now_ms;
	lru_touch(t, i);
	return VSW_MAC_REFRESHED;
}

uint16_t vsw_mac_lookup(const struct vsw_mac_table *t, uint16_t vid, const uint8_t *mac,
			uint64_t now_ms)
{
	uint32_t i = find(t, key_make(vid, mac));

	if (i == NIL || entry_expired(t, &t->entries[i], now_ms)) {
		return VSW_MAC_NO_PORT;
	}
	return t->entries[i].port;
}

static bool vid_valid(uint16_t vid)
{
	return vid >= 1 && vid <= 4094;
}

int vsw_mac_add_static(struct vsw_mac_table *t, uint16_t vid, const uint8_t *mac, uint16_t port)
{
	uint64_t key;
	uint32_t i;

	if (!vid_valid(vid) || !mac || !mac_is_unicast(mac) || port >= t->n_ports) {
		return -EINVAL;
	}
	key = key_make(vid, mac);
	i = find(t, key);
	if (i != NIL) {
		entry_remove(t, i);
	}
	/* A static entry is the administrator's word: it may evict learned
	 * ones, but never another static one. */
	if (t->free_head == NIL && t->ports[t->heap[0]].count > 0) {
		evict_oldest(t, t->heap[0], true);
	}
	if (t->free_head == NIL) {
		return -ENOSPC;
	}
	i = entry_insert(t, key, port);
	t->entries[i].is_static = true;
	t->entries[i].seen_ms = 0;
	t->entries[i].prev = NIL;
	t->entries[i].next = NIL;
	t->stats.static_entries++;
	return 0;
}

int vsw_mac_del(struct vsw_mac_table *t, uint16_t vid, const uint8_t *mac)
{
	uint32_t i;

	if (!vid_valid(vid) || !mac) {
		return -ENOENT;
	}
	i = find(t, key_make(vid, mac));
	if (i == NIL) {
		return -ENOENT;
	}
	entry_remove(t, i);
	return 0;
}

uint32_t vsw_mac_flush(struct vsw_mac_table *t, uint16_t port, uint16_t vid, bool statics)
{
	uint32_t i, n = 0;
	struct mac_entry *e;

	for (i = 0; i < t->capacity; i++) {
		e = &t->entries[i];
		if (e->key == 0 || (e->is_static && !statics)) {
			continue;
		}
		if ((port != VSW_MAC_NO_PORT && e->port != port) ||
		    (vid != 0 && key_vid(e->key) != vid)) {
			continue;
		}
		entry_remove(t, i);
		n++;
	}
	return n;
}

uint32_t vsw_mac_flush_vids(struct vsw_mac_table *t, uint16_t port,
			    bool (*gone)(uint16_t vid, void *arg), void *arg)
{
	uint32_t i, n = 0;
	struct mac_entry *e;

	for (i = 0; i < t->capacity; i++) {
		e = &t->entries[i];
		if (e->key != 0 && e->port == port && gone(key_vid(e->key), arg)) {
			entry_remove(t, i);
			n++;
		}
	}
	return n;
}

uint32_t vsw_mac_age(struct vsw_mac_table *t, uint64_t now_ms)
{
	uint32_t n = 0, i;
	uint16_t port;

	for (port = 0; port < t->n_ports; port++) {
		/* rule 5: the first live entry ends the port's expired run */
		for (i = t->ports[port].head; i != NIL && entry_expired(t, &t->entries[i], now_ms);
		     i = t->ports[port].head) {
			entry_remove(t, i);
			n++;
		}
	}
	t->stats.expired += n;
	return n;
}

int vsw_mac_set_port_limit(struct vsw_mac_table *t, uint16_t port, uint32_t limit)
{
	if (port >= t->n_ports) {
		return -EINVAL;
	}
	if (limit == 0 || limit > t->capacity) {
		limit = t->capacity;
	}
	t->ports[port].limit = limit;
	while (t->ports[port].count > limit) {
		evict_oldest(t, port, false);
	}
	return 0;
}

uint32_t vsw_mac_port_count(const struct vsw_mac_table *t, uint16_t port)
{
	if (port >= t->n_ports) {
		return 0;
	}
	return t->ports[port].count;
}

void vsw_mac_get_stats(const struct vsw_mac_table *t, struct vsw_mac_stats *stats)
{
	*stats = t->stats;
}

int vsw_mac_get_port_stats(const struct vsw_mac_table *t, uint16_t port,
			   struct vsw_mac_port_stats *stats)
{
	const struct port_state *p;

	if (port >= t->n_ports) {
		return -EINVAL;
	}
	p = &t->ports[port];
	stats->entries = p->count;
	stats->limit = p->limit;
	stats->learned = p->learned;
	stats->evicted_limit = p->evicted_limit;
	stats->evicted_full = p->evicted_full;
	return 0;
}

void vsw_mac_clear_port_stats(struct vsw_mac_table *t, uint16_t port)
{
	if (port < t->n_ports) {
		t->ports[port].learned = 0;
		t->ports[port].evicted_limit = 0;
		t->ports[port].evicted_full = 0;
	}
}

int vsw_mac_foreach(const struct vsw_mac_table *t, uint64_t now_ms,
		    int (*cb)(const struct vsw_mac_info *info, void *arg), void *arg)
{
	const struct mac_entry *e;
	struct vsw_mac_info info;
	uint32_t i;
	int ret;

	for (i = 0; i < t->capacity; i++) {
		e = &t->entries[i];
		if (e->key == 0 || entry_expired(t, e, now_ms)) {
			continue;
		}
		key_mac(e->key, info.mac);
		info.vid = key_vid(e->key);
		info.port = e->port;
		info.is_static = e->is_static;
		info.seen_ms = e->seen_ms;
		ret = cb(&info, arg);
		if (ret != 0) {
			return ret;
		}
	}
	return 0;
}

/* --- Life cycle --- */

static uint32_t buckets_for(uint32_t capacity)
{
	uint32_t n = 1;

	/* Twice as many buckets as entries: chains average half an entry. */
	while (n < 2 * capacity) {
		n <<= 1;
	}
	return n;
}

static void table_init(struct vsw_mac_table *t)
{
	uint32_t i;

	for (i = 0; i <= t->bucket_mask; i++) {
		t->buckets[i] = NIL;
	}
	for (i = 0; i < t->capacity; i++) {
		t->entries[i].chain = i + 1 < t->capacity ? i + 1 : NIL;
	}
	t->free_head = 0;
	for (i = 0; i < t->n_ports; i++) {
		t->ports[i].head = NIL;
		t->ports[i].tail = NIL;
		t->ports[i].limit = t->default_limit;
		t->ports[i].heap_pos = i;
		t->heap[i] = (uint16_t)i;
	}
}

int vsw_mac_table_create(const struct vsw_mac_table_opts *opts, struct vsw_mac_table **tablep)
{
	struct vsw_mac_table *t;
	uint32_t n_buckets;

	if (!opts || opts->capacity == 0 || opts->capacity > VSW_MAC_CAPACITY_MAX ||
	    opts->aging_ms == 0 || opts->n_ports == 0 || opts->n_ports == VSW_MAC_NO_PORT) {
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		return -ENOMEM;
	}
	n_buckets = buckets_for(opts->capacity);
	t->entries = calloc(opts->capacity, sizeof(*t->entries));
	t->buckets = calloc(n_buckets, sizeof(*t->buckets));
	t->ports = calloc(opts->n_ports, sizeof(*t->ports));
	t->heap = calloc(opts->n_ports, sizeof(*t->heap));
	if (!t->entries || !t->buckets || !t->ports || !t->heap) {
		vsw_mac_table_destroy(t);
		return -ENOMEM;
	}
	t->capacity = opts->capacity;
	t->bucket_mask = n_buckets - 1;
	t->aging_ms = opts->aging_ms;
	t->seed = opts->seed;
	t->n_ports = opts->n_ports;
	t->default_limit = opts->port_limit && opts->port_limit < opts->capacity ? opts->port_limit
										   : opts->capacity;
	t->last_reclaim_ms = UINT64_MAX;
	table_init(t);
	*tablep = t;
	return 0;
}

void vsw_mac_table_destroy(struct vsw_mac_table *t)
{
	if (!t) {
		return;
	}
	free(t->heap);
	free(t->ports);
	free(t->buckets);
	free(t->entries);
	free(t);
}
