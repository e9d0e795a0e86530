/* SPDX-License-Identifier: MIT */
/* memfile.c: the in-memory host file of memfile.h.  The whole capped
 * length is mapped at once, untouched pages cost nothing and read as zeros,
 * so the file grows without copies: what lies between the length and the
 * cap stays zero (truncation clears what it cuts off). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memfile.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Mappings kept for the next file: faulting a fresh mapping's pages in
 * costs more than clearing the bytes a run may have touched, and the fuzz
 * target makes three files per input.  Not thread-safe, as nothing here
 * is. */
#define POOL_SLOTS 2u

static struct {
	uint8_t *data;
	uint64_t cap_bytes;
} pool[POOL_SLOTS];

int memfile_init(struct memfile *mf, const void *data, size_t size, uint64_t max_bytes)
{
	uint64_t map = max_bytes > size ? max_bytes : size;
	void *p = MAP_FAILED;

	memset(mf, 0, sizeof(*mf));
	map = map ? map : 1;
	for (unsigned i = 0; i < POOL_SLOTS && p == MAP_FAILED; i++) {
		if (pool[i].data && pool[i].cap_bytes == map) {
			p = pool[i].data;
			pool[i].data = NULL;
		}
	}
	if (p == MAP_FAILED) {
		p = mmap(NULL, map, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	}
	if (p == MAP_FAILED) {
		return -ENOMEM;
	}
	mf->data = p;
	if (size) {
		memcpy(mf->data, data, size);
	}
	mf->size_bytes = size;
	mf->dirty_bytes = size;
	mf->cap_bytes = map;
	mf->max_bytes = max_bytes;
	mf->budget_bytes = UINT64_MAX;
	return 0;
}

void memfile_fini(struct memfile *mf)
{
	unsigned i = 0;

	if (!mf->data) {
		return;
	}
	while (i < POOL_SLOTS && pool[i].data) {
		i++;
	}
	if (i < POOL_SLOTS) {
		memset(mf->data, 0, min_u64(mf->dirty_bytes, mf->cap_bytes));
		pool[i].data = mf->data;
		pool[i].cap_bytes = mf->cap_bytes;
	} else {
		munmap(mf->data, mf->cap_bytes);
	}
	mf->data = NULL;
}

uint8_t *memfile_bytes(const struct memfile *mf)
{
	uint8_t *copy = calloc(1, mf->size_bytes ? mf->size_bytes : 1);

	if (copy) {
		memcpy(copy, mf->data, min_u64(mf->size_bytes, mf->cap_bytes));
	}
	return copy;
}

/* A write on a read-only open breaks the library's contract (vdisk.h):
 * crash loudly, so that the fuzzer keeps the input. */
static void check_writable(const struct memfile *mf, const char *what)
{
	if (mf->read_only) {
		fprintf(stderr, "memfile: %s on an image opened read-only\n", what);
		abort();
	}
}

static bool spend(struct memfile *mf, uint64_t bytes)
{
	if (bytes > mf->budget_bytes) {
		mf->budget_bytes = 0;
		return false;
	}
	mf->budget_bytes -= bytes;
	return true;
}

/* Zeros [off, off+len) inside the mapping; whole pages are handed back,
 * which is cheaper than writing them (the file shrinks by megabytes when an
 * image is closed). */
static void zero_range(struct memfile *mf, uint64_t off, uint64_t len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t first = (off + page - 1) & ~(page - 1), end = (off + len) & ~(page - 1);

	if (first >= end || madvise(mf->data + first, end - first, MADV_DONTNEED) < 0) {
		memset(mf->data + off, 0, len);
		return;
	}
	memset(mf->data + off, 0, first - off);
	memset(mf->data + end, 0, off + len - end);
}

static ssize_t mf_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct memfile *mf = arg;
	uint64_t n, held;

	if (!spend(mf, len)) {
		return -EIO;
	}
	if (off >= mf->size_bytes) {
		return 0;
	}
	n = min_u64(len, mf->size_bytes - off);
	held = off < mf->cap_bytes ? min_u64(n, mf->cap_bytes - off) : 0;
	memcpy(buf, mf->data + off, held);
	memset((uint8_t *)buf + held, 0, n - held);
	return n;
}

static ssize_t mf_pwrite(void *arg, const void *buf, size_t len, uint64_t off)
{
	struct memfile *mf = arg;

	check_writable(mf, "write");
	if (!spend(mf, len)) {
		return -EIO;
	}
	if (off > mf->max_bytes || len > mf->max_bytes - off) {
		return -EFBIG;
	}
	memcpy(mf->data + off, buf, len);
	if (off + len > mf->dirty_bytes) {
		mf->dirty_bytes = off + len;
	}
	if (off + len > mf->size_bytes) {
		mf->size_bytes = off + len;
	}
	return len;
}

static int mf_sync(void *arg)
{
	struct memfile *mf = arg;

	check_writable(mf, "sync");
	if (mf->sync_hook) {
		mf->sync_hook(mf->sync_hook_arg, mf);
	}
	return 0;
}

static int mf_punch(void *arg, uint64_t off, uint64_t len)
{
	struct memfile *mf = arg;
	uint64_t end = min_u64(mf->size_bytes, mf->cap_bytes);

	check_writable(mf, "punch");
	if (len > UINT64_MAX - off) {
		return -EINVAL;
	}
	/* Only a freed cluster is punched, and cluster 0 is never free: the
	 * allocator took the header for a free cluster. */
	if (mf->keep_header && off < VD_HEADER_BYTES && len) {
		fprintf(stderr, "memfile: punch of 0x%llx+0x%llx destroys the header\n",
			(unsigned long long)off, (unsigned long long)len);
		abort();
	}
	if (off < end) {
		zero_range(mf, off, min_u64(len, end - off));
	}
	return 0;
}

static int mf_truncate(void *arg, uint64_t size)
{
	struct memfile *mf = arg;
	uint64_t end = min_u64(mf->size_bytes, mf->cap_bytes);

	check_writable(mf, "truncate");
	if (size > mf->max_bytes) {
		return -EFBIG;
	}
	/* What lies past the new end must read as zeros if it grows again. */
	if (size < end) {
		zero_range(mf, size, end - size);
	}
	mf->size_bytes = size;
	return 0;
}

static int mf_size(void *arg, uint64_t *sizep)
{
	*sizep = ((struct memfile *)arg)->size_bytes;
	return 0;
}

const struct vd_file_ops memfile_ops = {
	.pread = mf_pread,
	.pwrite = mf_pwrite,
	.sync = mf_sync,
	.punch = mf_punch,
	.truncate = mf_truncate,
	.size = mf_size,
};
