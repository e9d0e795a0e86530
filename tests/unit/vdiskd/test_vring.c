// SPDX-License-Identifier: MIT
/* test_vring.c: tools/vring.c against rings laid out by hand in local
 * memory, with rte_vhost's calls replaced by the fakes below (the library
 * is not linked; rte_vhost_va_from_guest_pa is inline and maps through a
 * memory table made here).  Packed chains across the wrap, completions out
 * of order, the walk's refusals in both layouts, the interrupt decisions of
 * EVENT_IDX, and a packed ring restarted from the inflight area. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vring.h"

#define RAM_GPA 0x100000ull
#define RAM_BYTES (64u << 10)
#define QSIZE 8
#define AVAIL_F (1u << VRING_PACKED_DESC_F_AVAIL)
#define USED_F (1u << VRING_PACKED_DESC_F_USED)

/* The fake device: one queue. */
static struct {
	uint8_t *ram;
	struct rte_vhost_memory *mem;
	struct rte_vhost_vring vr;
	uint16_t base_avail, base_used;
	bool from_inflight;   /* rte_vhost_get_vring_base_from_inflight works */
	uint16_t inflight_base;
	struct rte_vhost_inflight_info_packed *ipacked;
	struct rte_vhost_resubmit_info *resubmit;
	int set_calls, clr_calls, last_io_calls;
	uint16_t last_set_head, last_set_last;
} dev;

int rte_vhost_get_vhost_vring(int vid, uint16_t idx, struct rte_vhost_vring *vr)
{
	(void)vid;
	(void)idx;
	*vr = dev.vr;
	return 0;
}

int rte_vhost_get_vhost_ring_inflight(int vid, uint16_t idx, struct rte_vhost_ring_inflight *r)
{
	(void)vid;
	(void)idx;
	if (!dev.ipacked) {
		return -1;
	}
	r->inflight_packed = dev.ipacked;
	r->resubmit_inflight = dev.resubmit;
	return 0;
}

int rte_vhost_get_vring_base(int vid, uint16_t idx, uint16_t *a, uint16_t *u)
{
	(void)vid;
	(void)idx;
	*a = dev.base_avail;
	*u = dev.base_used;
	return 0;
}

int rte_vhost_get_vring_base_from_inflight(int vid, uint16_t idx, uint16_t *a, uint16_t *u)
{
	(void)vid;
	(void)idx;
	if (!dev.from_inflight) {
		return -1;
	}
	*a = *u = dev.inflight_base;
	return 0;
}

int rte_vhost_set_inflight_desc_split(int vid, uint16_t idx, uint16_t head)
{
	(void)vid;
	(void)idx;
	(void)head;
	dev.set_calls++;
	return 0;
}

int rte_vhost_set_inflight_desc_packed(int vid, uint16_t idx, uint16_t head, uint16_t last,
				       uint16_t *entry)
{
	(void)vid;
	(void)idx;
	dev.set_calls++;
	dev.last_set_head = head;
	dev.last_set_last = last;
	*entry = head; /* any entry below the ring size */
	return 0;
}

int rte_vhost_clr_inflight_desc_split(int vid, uint16_t idx, uint16_t used, uint16_t head)
{
	(void)vid;
	(void)idx;
	(void)used;
	(void)head;
	dev.clr_calls++;
	return 0;
}

int rte_vhost_clr_inflight_desc_packed(int vid, uint16_t idx, uint16_t entry)
{
	(void)vid;
	(void)idx;
	(void)entry;
	dev.clr_calls++;
	return 0;
}

int rte_vhost_set_last_inflight_io_split(int vid, uint16_t idx, uint16_t head)
{
	(void)vid;
	(void)idx;
	(void)head;
	dev.last_io_calls++;
	return 0;
}

int rte_vhost_set_last_inflight_io_packed(int vid, uint16_t idx, uint16_t entry)
{
	(void)vid;
	(void)idx;
	(void)entry;
	dev.last_io_calls++;
	return 0;
}

static uint64_t gpa(const void *p)
{
	return RAM_GPA + (uint64_t)((const uint8_t *)p - dev.ram);
}

/* Guest RAM, and the ring at its start: packed (descriptors, driver and
 * device event structures) or split (descriptors, avail, used). */
static int setup(void **state)
{
	(void)state;
	memset(&dev, 0, sizeof(dev));
	dev.ram = aligned_alloc(4096, RAM_BYTES);
	memset(dev.ram, 0, RAM_BYTES);
	dev.mem = calloc(1, sizeof(*dev.mem) + sizeof(dev.mem->regions[0]));
	dev.mem->nregions = 1;
	dev.mem->regions[0].guest_phys_addr = RAM_GPA;
	dev.mem->regions[0].host_user_addr = (uintptr_t)dev.ram;
	dev.mem->regions[0].size = RAM_BYTES;
	dev.vr.desc = (struct vring_desc *)dev.ram;
	dev.vr.avail = (struct vring_avail *)(dev.ram + 0x1000);
	dev.vr.used = (struct vring_used *)(dev.ram + 0x2000);
	dev.vr.size = QSIZE;
	dev.vr.kickfd = -1;
	dev.vr.callfd = eventfd(0, EFD_NONBLOCK);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(dev.vr.callfd);
	free(dev.ram);
	free(dev.mem);
	return 0;
}

static const uint64_t PACKED = (1ull << VIRTIO_F_RING_PACKED);
static const uint64_t EVENT_IDX = (1ull << VIRTIO_RING_F_EVENT_IDX);

static struct vring_packed_desc *pdesc(uint16_t pos)
{
	return &dev.vr.desc_packed[pos];
}

/* What a driver does: the descriptors of one chain at 'pos' with wrap
 * counter 'wrap', the id in each (Linux's way), the head made available
 * last. */
static void driver_chain(uint16_t pos, bool wrap, uint16_t id, unsigned n, uint32_t len)
{
	for (unsigned i = n; i-- > 0;) {
		uint16_t at = (uint16_t)((pos + i) % QSIZE);
		bool w = pos + i >= QSIZE ? !wrap : wrap;

		pdesc(at)->addr = gpa(dev.ram + 0x8000 + 0x1000 * i);
		pdesc(at)->len = len;
		pdesc(at)->id = id;
		pdesc(at)->flags = (uint16_t)((i + 1 < n ? VR_F_NEXT : 0) |
					      (w ? AVAIL_F : USED_F));
	}
}

static uint64_t calls(void)
{
	uint64_t n = 0;

	if (read(dev.vr.callfd, &n, sizeof(n)) != sizeof(n)) {
		return 0;
	}
	return n;
}

static void test_vring_packed_takes_chains_across_the_wrap(void **state)
{
	struct vr_queue q;
	struct vr_elem e;
	struct vr_walk w;
	struct vr_desc d;
	const char *why;

	(void)state;
	/* Start at position 6 of the first lap, tracked in an inflight area. */
	dev.ipacked = calloc(1, sizeof(*dev.ipacked) + QSIZE * sizeof(dev.ipacked->desc[0]));
	dev.base_avail = dev.base_used = 6 | 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED, dev.mem), 0);
	assert_true(q.packed && q.inflight && q.avail == 6 && q.avail_wrap);
	assert_int_equal(vr_peek(&q, &e, &why), 0);
	driver_chain(6, true, 5, 3, 512); /* slots 6, 7, then 0 of lap 2 */
	assert_int_equal(vr_peek(&q, &e, &why), 1);
	assert_int_equal(e.id, 5);
	assert_int_equal(e.ndesc, 3);
	vr_take(&q, &e);
	assert_int_equal(dev.last_set_head, 6);
	assert_int_equal(dev.last_set_last, 0);
	assert_true(q.avail == 1 && !q.avail_wrap);
	vr_walk_init(&w, &q, &e, 16);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vr_walk_next(&w, &d, &why), 1);
		assert_int_equal(d.addr, gpa(dev.ram + 0x8000 + 0x1000 * i));
		assert_int_equal(d.last, i == 2);
	}
	assert_int_equal(vr_walk_next(&w, &d, &why), 0);
	/* The used entry goes at slot 6 with both bits of wrap counter 1, and
	 * the used position moves by the chain's three slots. */
	vr_push(&q, &e, 513);
	assert_int_equal(pdesc(6)->id, 5);
	assert_int_equal(pdesc(6)->len, 513);
	assert_int_equal(pdesc(6)->flags & (AVAIL_F | USED_F), AVAIL_F | USED_F);
	assert_true(q.used == 1 && !q.used_wrap);
	assert_int_equal(dev.last_io_calls, 1);
	assert_int_equal(dev.clr_calls, 1);
	/* Slot 1 of lap 2 is not available until the driver writes it. */
	assert_int_equal(vr_peek(&q, &e, &why), 0);
	vr_fini(&q);
	free(dev.ipacked);
}

static void test_vring_packed_completes_out_of_order(void **state)
{
	struct vr_queue q;
	struct vr_elem a, b;
	const char *why;

	(void)state;
	dev.base_avail = dev.base_used = 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED, dev.mem), 0);
	driver_chain(0, true, 3, 2, 512); /* A: slots 0-1 */
	driver_chain(2, true, 4, 3, 512); /* B: slots 2-4 */
	assert_int_equal(vr_peek(&q, &a, &why), 1);
	vr_take(&q, &a);
	assert_int_equal(vr_peek(&q, &b, &why), 1);
	vr_take(&q, &b);
	assert_int_equal(b.id, 4);
	/* B first: its used entry takes slot 0 (A's head), A's then slot 3. */
	vr_push(&q, &b, 0);
	vr_push(&q, &a, 0);
	assert_int_equal(pdesc(0)->id, 4);
	assert_int_equal(pdesc(3)->id, 3);
	assert_int_equal(q.used, 5);
	assert_int_equal(q.avail, 5);
	vr_fini(&q);
}

static void test_vring_packed_refuses_broken_chains(void **state)
{
	struct vr_queue q;
	struct vr_elem e;
	const char *why = NULL;

	(void)state;
	dev.base_avail = dev.base_used = 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED, dev.mem), 0);
	/* NEXT on the last slot the driver made available. */
	driver_chain(0, true, 1, 2, 512);
	pdesc(1)->flags |= VR_F_NEXT;
	assert_int_equal(vr_peek(&q, &e, &why), -EPROTO);
	assert_non_null(strstr(why, "not made available"));
	/* Every slot available with NEXT: longer than the ring. */
	driver_chain(0, true, 1, QSIZE, 512);
	pdesc(QSIZE - 1)->flags |= VR_F_NEXT;
	assert_int_equal(vr_peek(&q, &e, &why), -EPROTO);
	assert_non_null(strstr(why, "longer than the ring"));
	vr_fini(&q);
}

/* One chain of one descriptor (packed) or at head 0 (split) whose walk
 * must fail with 'err'. */
static void expect_walk_error(struct vr_queue *q, int err, const char *what)
{
	struct vr_elem e;
	struct vr_walk w;
	struct vr_desc d;
	const char *why = NULL;
	int ret;

	assert_int_equal(vr_peek(q, &e, &why), 1);
	vr_take(q, &e);
	vr_walk_init(&w, q, &e, 16);
	while ((ret = vr_walk_next(&w, &d, &why)) > 0) {
	}
	assert_int_equal(ret, err);
	assert_non_null(strstr(why, what));
	vr_push(q, &e, 0);
}

static void test_vring_walk_refuses_bad_indirect_tables(void **state)
{
	struct vring_packed_desc *ptable = (struct vring_packed_desc *)(dev.ram + 0x4000);
	struct vr_queue q;

	(void)state;
	dev.base_avail = dev.base_used = 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED, dev.mem), 0);
	/* A table holding an indirect descriptor. */
	ptable[0] = (struct vring_packed_desc){.addr = gpa(dev.ram + 0x8000), .len = 16};
	ptable[1] = (struct vring_packed_desc){.addr = gpa(ptable), .len = 32,
					       .flags = VR_F_INDIRECT};
	driver_chain(0, true, 0, 1, 32);
	pdesc(0)->addr = gpa(ptable);
	pdesc(0)->flags |= VR_F_INDIRECT;
	expect_walk_error(&q, -EINVAL, "misplaced indirect");
	/* 40 bytes: not a whole number of descriptors. */
	driver_chain(1, true, 1, 1, 40);
	pdesc(1)->addr = gpa(ptable);
	pdesc(1)->flags |= VR_F_INDIRECT;
	expect_walk_error(&q, -EINVAL, "bad indirect table length");
	/* Beyond guest RAM. */
	driver_chain(2, true, 2, 1, 32);
	pdesc(2)->addr = RAM_GPA + RAM_BYTES;
	pdesc(2)->flags |= VR_F_INDIRECT;
	expect_walk_error(&q, -EFAULT, "outside guest memory");
	/* INDIRECT and NEXT together. */
	driver_chain(3, true, 3, 2, 32);
	pdesc(3)->addr = gpa(ptable);
	pdesc(3)->flags |= VR_F_INDIRECT;
	expect_walk_error(&q, -EINVAL, "misplaced indirect");
	vr_fini(&q);
}

static void test_vring_split_walk_stops_loops_and_bad_links(void **state)
{
	struct vr_queue q;

	(void)state;
	assert_int_equal(vr_init(&q, 0, 0, 0, dev.mem), 0);
	assert_false(q.packed);
	/* Head 0 pointing at itself. */
	dev.vr.desc[0] = (struct vring_desc){.addr = gpa(dev.ram + 0x8000), .len = 16,
					     .flags = VR_F_NEXT, .next = 0};
	dev.vr.avail->ring[0] = 0;
	dev.vr.avail->idx = 1;
	expect_walk_error(&q, -E2BIG, "too long or looping");
	/* Head 1 naming descriptor 0xffff next. */
	dev.vr.desc[1] = (struct vring_desc){.addr = gpa(dev.ram + 0x8000), .len = 16,
					     .flags = VR_F_NEXT, .next = 0xffff};
	dev.vr.avail->ring[1] = 1;
	dev.vr.avail->idx = 2;
	expect_walk_error(&q, -EINVAL, "out of the table");
	vr_fini(&q);
}

static void test_vring_split_event_idx_calls_when_used_event_is_passed(void **state)
{
	uint16_t *used_event = (uint16_t *)&dev.vr.avail->ring[QSIZE];
	struct vr_elem e = {.id = 0, .ndesc = 1};
	struct vr_queue q;

	(void)state;
	assert_int_equal(vr_init(&q, 0, 0, EVENT_IDX, dev.mem), 0);
	/* The first interrupt is always sent. */
	vr_push(&q, &e, 1);
	vr_notify(&q);
	assert_int_equal(calls(), 1);
	/* The driver wants one when entry 3 is used: not at 2, at 3 and 4
	 * (the second push passes it). */
	*used_event = 3;
	vr_push(&q, &e, 1);
	vr_notify(&q);
	assert_int_equal(calls(), 0);
	vr_push(&q, &e, 1);
	vr_push(&q, &e, 1);
	vr_notify(&q);
	assert_int_equal(calls(), 1);
	/* Without EVENT_IDX the flag decides. */
	vr_fini(&q);
	assert_int_equal(vr_init(&q, 0, 0, 0, dev.mem), 0);
	dev.vr.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vr_push(&q, &e, 1);
	vr_notify(&q);
	assert_int_equal(calls(), 0);
	vr_fini(&q);
}

static void test_vring_packed_event_idx_counts_the_previous_lap(void **state)
{
	struct vr_queue q;
	struct vr_elem e = {.id = 0, .ndesc = 3, .inflight = UINT16_MAX};

	(void)state;
	dev.base_avail = dev.base_used = 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED | EVENT_IDX, dev.mem), 0);
	vr_push(&q, &e, 0);
	vr_notify(&q); /* the first one, always */
	assert_int_equal(calls(), 1);
	/* Used now at 3 of lap 1; the driver wants slot 7 of lap 1. */
	dev.vr.driver_event->off_wrap = 7 | 1u << 15;
	dev.vr.driver_event->flags = VRING_PACKED_EVENT_FLAG_DESC;
	vr_push(&q, &e, 0); /* 3..5 */
	vr_notify(&q);
	assert_int_equal(calls(), 0);
	vr_push(&q, &e, 0); /* 6, 7, 0 of lap 2: passes slot 7 of lap 1 */
	vr_notify(&q);
	assert_int_equal(calls(), 1);
	assert_false(q.used_wrap);
	/* Slot 2 of lap 2 (wrap counter 0). */
	dev.vr.driver_event->off_wrap = 2;
	vr_push(&q, &e, 0); /* 1..3 of lap 2: passes 2 */
	vr_notify(&q);
	assert_int_equal(calls(), 1);
	dev.vr.driver_event->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	vr_push(&q, &e, 0);
	vr_notify(&q);
	assert_int_equal(calls(), 0);
	vr_fini(&q);
}

static void test_vring_packed_restarts_from_the_inflight_area(void **state)
{
	struct rte_vhost_resubmit_desc list[2] = {{.index = 4, .counter = 9},
						  {.index = 1, .counter = 8}};
	struct rte_vhost_resubmit_info ri = {.resubmit_list = list, .resubmit_num = 2};
	struct rte_vhost_inflight_info_packed *inf;
	struct vr_queue q;
	struct vr_elem e;
	struct vr_walk w;
	struct vr_desc d;
	const char *why;

	(void)state;
	inf = calloc(1, sizeof(*inf) + QSIZE * sizeof(inf->desc[0]));
	/* Entry 1: two copies (1 -> 5), buffer id 6 in the last; entry 4:
	 * one copy, id 2.  QEMU's base is stale; the area says slot 3 of
	 * lap 2. */
	inf->desc[1] = (struct rte_vhost_inflight_desc_packed){
		.inflight = 1, .next = 5, .last = 5, .num = 2, .addr = gpa(dev.ram + 0x8000),
		.len = 16, .flags = VR_F_NEXT};
	inf->desc[5] = (struct rte_vhost_inflight_desc_packed){
		.id = 6, .addr = gpa(dev.ram + 0x9000), .len = 1, .flags = VR_F_WRITE};
	inf->desc[4] = (struct rte_vhost_inflight_desc_packed){
		.inflight = 1, .last = 4, .num = 1, .id = 2, .addr = gpa(dev.ram + 0xa000),
		.len = 1, .flags = VR_F_WRITE};
	dev.ipacked = inf;
	dev.resubmit = &ri;
	dev.from_inflight = true;
	dev.inflight_base = 3;
	dev.base_avail = dev.base_used = 1u << 15;
	assert_int_equal(vr_init(&q, 0, 0, PACKED, dev.mem), 0);
	assert_true(q.inflight && q.avail == 3 && !q.avail_wrap && q.used == 3);
	/* Oldest first (the end of the list), each moving the avail
	 * position by its slots. */
	assert_int_equal(vr_resubmitted(&q, &e), 1);
	assert_true(e.resubmitted && e.id == 6 && e.ndesc == 2 && e.inflight == 1);
	vr_walk_init(&w, &q, &e, 16);
	assert_int_equal(vr_walk_next(&w, &d, &why), 1);
	assert_true(d.addr == gpa(dev.ram + 0x8000) && !d.last && !(d.flags & VR_F_WRITE));
	assert_int_equal(vr_walk_next(&w, &d, &why), 1);
	assert_true(d.addr == gpa(dev.ram + 0x9000) && d.last && (d.flags & VR_F_WRITE));
	assert_int_equal(vr_walk_next(&w, &d, &why), 0);
	assert_int_equal(vr_resubmitted(&q, &e), 1);
	assert_true(e.id == 2 && e.ndesc == 1);
	assert_int_equal(vr_resubmitted(&q, &e), 0);
	assert_int_equal(q.avail, 6);
	assert_int_equal(dev.set_calls, 0); /* marked already */
	vr_fini(&q);
	free(inf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vring_packed_takes_chains_across_the_wrap,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vring_packed_completes_out_of_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vring_packed_refuses_broken_chains, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vring_walk_refuses_bad_indirect_tables, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vring_split_walk_stops_loops_and_bad_links,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_vring_split_event_idx_calls_when_used_event_is_passed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vring_packed_event_idx_counts_the_previous_lap,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vring_packed_restarts_from_the_inflight_area,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
