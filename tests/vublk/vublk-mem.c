// SPDX-License-Identifier: MIT
/* vublk-mem.c: the guest RAM of the vublk front end.  One memfd, mapped once
 * here and sliced into up to eight memory-table regions (the same file at
 * different mmap offsets), optionally with guest-physical holes between
 * them so tests can aim descriptors into a hole.  A page allocator hands
 * out blocks for rings and request buffers that never straddle regions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vublk-int.h"

#define PAGE_BYTES 4096u

int mem_init(struct vublk_mem *mem, const struct vublk_opts *opts, struct errmsg *err)
{
	uint64_t per = (opts->mem_bytes / opts->mem_regions + PAGE_BYTES - 1) & ~(uint64_t)(PAGE_BYTES - 1);
	int ret;

	memset(mem, 0, sizeof(*mem));
	mem->nregions = opts->mem_regions;
	mem->region_bytes = per;
	mem->region_gap_bytes = opts->region_gap_bytes;
	mem->bytes = per * mem->nregions;
	mem->npages = mem->bytes / PAGE_BYTES;
	mem->fd = memfd_create("vublk-guest-ram", MFD_CLOEXEC);
	if (mem->fd < 0) {
		ret = -errno;
		errmsg_set(err, "guest RAM: memfd_create: %s", strerror(-ret));
		return ret;
	}
	if (ftruncate(mem->fd, mem->bytes) < 0) {
		ret = -errno;
		errmsg_set(err, "guest RAM: cannot size the memfd to %llu bytes: %s",
			   (unsigned long long)mem->bytes, strerror(-ret));
		goto out_close;
	}
	mem->base = mmap(NULL, mem->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
	if (mem->base == MAP_FAILED) {
		ret = -errno;
		errmsg_set(err, "guest RAM: mmap: %s", strerror(-ret));
		goto out_close;
	}
	mem->alloc_pages = calloc(mem->npages, sizeof(*mem->alloc_pages));
	mem->page_used = calloc(mem->npages, 1);
	if (!mem->alloc_pages || !mem->page_used) {
		ret = -ENOMEM;
		errmsg_set(err, "guest RAM: out of memory for the page map");
		goto out_unmap;
	}
	return 0;
out_unmap:
	free(mem->alloc_pages);
	free(mem->page_used);
	munmap(mem->base, mem->bytes);
out_close:
	close(mem->fd);
	mem->fd = -1;
	return ret;
}

void mem_fini(struct vublk_mem *mem)
{
	if (mem->fd < 0) {
		return;
	}
	free(mem->alloc_pages);
	free(mem->page_used);
	munmap(mem->base, mem->bytes);
	close(mem->fd);
	mem->fd = -1;
}

/* First fit, restarting the run at each region boundary. */
void *mem_alloc(struct vublk_mem *mem, uint64_t bytes)
{
	uint32_t want = (bytes + PAGE_BYTES - 1) / PAGE_BYTES;
	uint32_t per_region = mem->region_bytes / PAGE_BYTES;
	uint32_t run = 0;

	if (want == 0) {
		want = 1;
	}
	for (uint32_t p = 0; p < mem->npages; p++) {
		if (p % per_region == 0) {
			run = 0;
		}
		run = mem->page_used[p] ? 0 : run + 1;
		if (run == want) {
			uint32_t first = p + 1 - want;

			memset(mem->page_used + first, 1, want);
			mem->alloc_pages[first] = want;
			memset(mem->base + (uint64_t)first * PAGE_BYTES, 0, (uint64_t)want * PAGE_BYTES);
			return mem->base + (uint64_t)first * PAGE_BYTES;
		}
	}
	return NULL;
}

void mem_free(struct vublk_mem *mem, void *ptr)
{
	uint64_t off;
	uint32_t first;

	if (!ptr) {
		return;
	}
	off = (uint8_t *)ptr - mem->base;
	first = off / PAGE_BYTES;
	if ((uint8_t *)ptr < mem->base || off >= mem->bytes || off % PAGE_BYTES ||
	    !mem->alloc_pages[first]) {
		return; /* not ours: ignore, as free(3) cannot */
	}
	memset(mem->page_used + first, 0, mem->alloc_pages[first]);
	mem->alloc_pages[first] = 0;
}

uint64_t mem_gpa(const struct vublk_mem *mem, const void *ptr)
{
	const uint8_t *p = ptr;
	uint64_t off;

	if (p < mem->base || p >= mem->base + mem->bytes) {
		return UINT64_MAX;
	}
	off = p - mem->base;
	return off + (off / mem->region_bytes) * mem->region_gap_bytes;
}

void mem_table(const struct vublk_mem *mem, struct vu_mem_table *table)
{
	memset(table, 0, sizeof(*table));
	table->nregions = mem->nregions;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		uint64_t off = i * mem->region_bytes;

		table->regions[i].gpa = off + i * mem->region_gap_bytes;
		table->regions[i].bytes = mem->region_bytes;
		table->regions[i].uaddr = (uint64_t)(uintptr_t)(mem->base + off);
		table->regions[i].mmap_offset = off;
	}
}

void *vublk_alloc(struct vublk *dev, size_t bytes)
{
	return mem_alloc(&dev->mem, bytes);
}

void vublk_free(struct vublk *dev, void *ptr)
{
	mem_free(&dev->mem, ptr);
}

uint64_t vublk_gpa(const struct vublk *dev, const void *ptr)
{
	return mem_gpa(&dev->mem, ptr);
}

unsigned int vublk_regions(const struct vublk *dev, struct vublk_region *regions)
{
	struct vu_mem_table table;

	mem_table(&dev->mem, &table);
	for (unsigned int i = 0; i < table.nregions; i++) {
		regions[i].gpa = table.regions[i].gpa;
		regions[i].bytes = table.regions[i].bytes;
		regions[i].host = (void *)(uintptr_t)table.regions[i].uaddr;
	}
	return table.nregions;
}

void vublk_fill_free(struct vublk *dev, uint8_t byte)
{
	const struct vublk_mem *mem = &dev->mem;

	for (uint32_t p = 0; p < mem->npages; p++) {
		if (!mem->page_used[p]) {
			memset(mem->base + (uint64_t)p * PAGE_BYTES, byte, PAGE_BYTES);
		}
	}
}

uint64_t vublk_check_free(const struct vublk *dev, uint8_t byte, uint64_t *first_gpap)
{
	const struct vublk_mem *mem = &dev->mem;
	uint8_t clean[PAGE_BYTES];
	uint64_t bad = 0;

	memset(clean, byte, sizeof(clean));
	for (uint32_t p = 0; p < mem->npages; p++) {
		const uint8_t *page = mem->base + (uint64_t)p * PAGE_BYTES;

		if (mem->page_used[p] || !memcmp(page, clean, PAGE_BYTES)) {
			continue;
		}
		for (uint32_t i = 0; i < PAGE_BYTES; i++) {
			if (page[i] != byte) {
				if (bad++ == 0 && first_gpap) {
					*first_gpap = mem_gpa(mem, page + i);
				}
			}
		}
	}
	return bad;
}
