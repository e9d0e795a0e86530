/* SPDX-License-Identifier: MIT */
/* fuzz_qcow2.c: libvdisk's qcow2 reader (vdisk/qcow2.c, behind vd_source)
 * under arbitrary files: it parses what `vdisk convert` and `vdisk import`
 * are given, so a hostile file must get an error, never a crash, a hang or
 * memory without bound.  Each input is written to a file of its own in a
 * private directory (the reader opens paths, and a backing file name
 * resolves against the image's directory, where only backing.raw, 64 KiB
 * of 'Z', lies: the seeds with a backing chain name it), opened
 * as a qcow2 source, and, when the open succeeds, walked extent by extent
 * with reads of what holds data.  libFuzzer binary fuzz_qcow2 (-Dfuzz=true,
 * clang) and fuzz_qcow2_replay (replay_main.c, the test suite). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_target.h"
#include "vdisk.h"

/* A walk visits at most this many extents and reads at most this much: a
 * virtual size of 2^62 bytes must not make the target run for ever. */
#define MAX_EXTENTS 512
#define MAX_READ_BYTES (4u << 20)
#define READ_CHUNK (64u << 10)

static char dir[64];
static char path[96];
static char backing[96];

static void remove_dir(void)
{
	unlink(path);
	unlink(backing);
	rmdir(dir);
}

static int write_file(const char *name, const uint8_t *data, size_t size);

static int setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	if (dir[0]) {
		return 0;
	}
	strcpy(dir, base);
	strcat(dir, "/fuzz-qcow2-XXXXXX");
	if (!mkdtemp(dir)) {
		dir[0] = 0;
		return -errno;
	}
	strcpy(path, dir);
	strcat(path, "/image.qcow2");
	strcpy(backing, dir);
	strcat(backing, "/backing.raw");
	atexit(remove_dir);
	{
		static uint8_t zs[64 << 10];

		memset(zs, 'Z', sizeof(zs));
		return write_file(backing, zs, sizeof(zs));
	}
}

static int write_file(const char *name, const uint8_t *data, size_t size)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0) {
		return -errno;
	}
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0) {
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return close(fd) == 0 ? 0 : -errno;
}

static void walk(struct vd_source *src)
{
	uint64_t size = vd_source_size_bytes(src), off = 0, read_bytes = 0;
	uint8_t *buf = malloc(READ_CHUNK);

	for (unsigned i = 0; buf && i < MAX_EXTENTS && off < size; i++) {
		uint64_t len;
		bool data;

		if (vd_source_extent(src, off, size - off, &len, &data, NULL) < 0) {
			break;
		}
		if (len == 0 || len > size - off) {
			abort(); /* vd_source_extent promised a run inside the disk */
		}
		if (data && read_bytes < MAX_READ_BYTES) {
			size_t n = len < READ_CHUNK ? (size_t)len : READ_CHUNK;

			/* The reader's answer for data it described: no crash,
			 * whatever it returns. */
			(void)vd_source_pread(src, buf, n, off, NULL);
			read_bytes += n;
		}
		off += len;
	}
	/* The end of the disk and past it read as zeros or fail cleanly. */
	if (buf && size >= 512) {
		(void)vd_source_pread(src, buf, 512, size - 512, NULL);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_source *src;

	if (setup() < 0 || write_file(path, data, size) < 0) {
		abort(); /* the machine, not the input: say so loudly */
	}
	if (vd_source_open(path, VD_FORMAT_QCOW2, 0, &src, NULL) == 0) {
		walk(src);
		vd_source_close(src);
	}
	return 0;
}

/* qcow2 has no checksums. */
void fuzz_fix_checksums(uint8_t *image, size_t size)
{
	(void)image;
	(void)size;
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

/* The header (104 bytes in version 3, its extensions after it), the L1
 * table, the refcount table, the first L2 table and the snapshot table, at
 * the offsets the header gives (QEMU's docs/interop/qcow2.txt). */
unsigned fuzz_regions(const uint8_t *img, size_t size, struct fuzz_region *r, unsigned max)
{
	uint32_t bits;
	uint64_t c, l1;
	unsigned n = 0;

	if (max < 6) {
		return 0;
	}
	r[n++] = (struct fuzz_region){0, 512};
	if (size < 104) {
		return n;
	}
	bits = be32_at(img + 20);
	c = 1ull << (bits >= 9 && bits <= 21 ? bits : 16);
	l1 = be64_at(img + 40);
	r[n++] = (struct fuzz_region){l1, (uint64_t)be32_at(img + 36) * 8};
	r[n++] = (struct fuzz_region){be64_at(img + 48), (uint64_t)be32_at(img + 56) * c};
	r[n++] = (struct fuzz_region){be64_at(img + 64), 4096};
	if (l1 < size - 8) {
		r[n++] = (struct fuzz_region){be64_at(img + l1) & 0x00fffffffffffe00ull, c};
	}
	return n;
}
