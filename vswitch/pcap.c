/* SPDX-License-Identifier: MIT */
/* pcap.c: the classic libpcap file format behind pcap.h.  A 24-byte file
 * header (magic, version 2.4, zone 0, sigfigs 0, snaplen, link type), then
 * per frame a 16-byte record header (seconds, microseconds, bytes kept,
 * frame length) and the bytes kept, all in host byte order, which readers
 * detect from the magic.
 *
 * The buffer always holds whole records (it is sized for the largest one),
 * so a failed flush can cut the file back to where that flush began and the
 * file never ends in half a record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "pcap.h"

#define PCAP_VERSION_MAJOR 2
#define PCAP_VERSION_MINOR 4
#define PCAP_BUF_MIN_BYTES (64u * 1024) /* enough records per write() */

struct pcap_file_hdr {
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	int32_t thiszone; /* GMT offset of the timestamps: always 0 */
	uint32_t sigfigs; /* accuracy of the timestamps: always 0 */
	uint32_t snaplen;
	uint32_t linktype;
};
_Static_assert(sizeof(struct pcap_file_hdr) == VSW_PCAP_FILE_HDR_BYTES, "pcap file header");

struct pcap_rec_hdr {
	uint32_t ts_sec;
	uint32_t ts_usec;
	uint32_t incl_len; /* bytes kept, <= snaplen */
	uint32_t orig_len; /* the frame's length */
};
_Static_assert(sizeof(struct pcap_rec_hdr) == VSW_PCAP_REC_HDR_BYTES, "pcap record header");

struct vsw_pcap {
	int fd;
	int error;           /* first error met, sticky; 0 if none */
	uint32_t snap_bytes;
	uint8_t *buf;
	size_t buf_bytes;    /* capacity, >= one record of 'snap_bytes' */
	size_t used_bytes;
	uint64_t file_bytes; /* written to the file: whole records */
	uint64_t frames;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t done;

	while (n > 0) {
		done = write(fd, p, n);
		if (done < 0 && errno == EINTR) {
			continue;
		}
		if (done < 0) {
			return -errno;
		}
		if (done == 0) {
			return -EIO;
		}
		p += done;
		n -= (size_t)done;
	}
	return 0;
}

int vsw_pcap_flush(struct vsw_pcap *pc)
{
	int ret;

	if (pc->error) {
		return pc->error;
	}
	ret = write_all(pc->fd, pc->buf, pc->used_bytes);
	if (ret < 0) {
		/* Whatever part went out ends mid-record: cut it off.  Should
		 * that fail too, the write's error is still the one to report. */
		if (ftruncate(pc->fd, (off_t)pc->file_bytes) < 0) {
			pc->error = ret;
		}
		pc->error = ret;
		return ret;
	}
	pc->file_bytes += pc->used_bytes;
	pc->used_bytes = 0;
	return 0;
}

static void append(struct vsw_pcap *pc, const void *p, size_t n)
{
	memcpy(pc->buf + pc->used_bytes, p, n);
	pc->used_bytes += n;
}

static size_t iov_total(const struct iovec *iov, unsigned int iovcnt)
{
	size_t total = 0;
	unsigned int i;

	for (i = 0; i < iovcnt; i++) {
		total += iov[i].iov_len;
	}
	return total;
}

int vsw_pcap_writev(struct vsw_pcap *pc, uint64_t time_us, const struct iovec *iov,
		    unsigned int iovcnt)
{
	size_t len = iov_total(iov, iovcnt), keep, piece;
	struct pcap_rec_hdr rec;
	unsigned int i;
	int ret;

	if (pc->error) {
		return pc->error;
	}
	if (len > UINT32_MAX) {
		return -EINVAL;
	}
	keep = len < pc->snap_bytes ? len : pc->snap_bytes;
	if (pc->buf_bytes - pc->used_bytes < sizeof(rec) + keep) {
		ret = vsw_pcap_flush(pc);
		if (ret < 0) {
			return ret;
		}
	}
	rec.ts_sec = (uint32_t)(time_us / 1000000);
	rec.ts_usec = (uint32_t)(time_us % 1000000);
	rec.incl_len = (uint32_t)keep;
	rec.orig_len = (uint32_t)len;
	append(pc, &rec, sizeof(rec));
	for (i = 0; i < iovcnt && keep > 0; i++) {
		piece = iov[i].iov_len < keep ? iov[i].iov_len : keep;
		append(pc, iov[i].iov_base, piece);
		keep -= piece;
	}
	pc->frames++;
	return 0;
}

int vsw_pcap_write(struct vsw_pcap *pc, uint64_t time_us, const void *frame, uint32_t len_bytes)
{
	struct iovec iov = {.iov_base = (void *)frame, .iov_len = len_bytes};

	return vsw_pcap_writev(pc, time_us, &iov, 1);
}

static int write_file_header(struct vsw_pcap *pc)
{
	struct pcap_file_hdr hdr = {
		.magic = VSW_PCAP_MAGIC_US,
		.version_major = PCAP_VERSION_MAJOR,
		.version_minor = PCAP_VERSION_MINOR,
		.thiszone = 0,
		.sigfigs = 0,
		.snaplen = pc->snap_bytes,
		.linktype = VSW_PCAP_LINKTYPE_ETHERNET,
	};

	append(pc, &hdr, sizeof(hdr));
	return vsw_pcap_flush(pc);
}

/* The buffer holds at least one whole record of the largest size (see the
 * top of the file). */
static size_t buf_bytes_for(uint32_t snap_bytes)
{
	size_t n = VSW_PCAP_REC_HDR_BYTES + (size_t)snap_bytes;

	return n < PCAP_BUF_MIN_BYTES ? PCAP_BUF_MIN_BYTES : n;
}

int vsw_pcap_open(const char *path, uint32_t snap_bytes, struct vsw_pcap **pcapp,
		  struct errmsg *err)
{
	struct vsw_pcap *pc;
	int ret;

	if (snap_bytes == 0) {
		snap_bytes = VSW_PCAP_SNAP_DEFAULT;
	}
	if (!path || snap_bytes > VSW_PCAP_SNAP_DEFAULT) {
		errmsg_set(err, "%s: snap length %u is not in 1-%u", path ? path : "(null)",
			   snap_bytes, VSW_PCAP_SNAP_DEFAULT);
		return -EINVAL;
	}
	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		goto out_nomem;
	}
	pc->snap_bytes = snap_bytes;
	pc->buf_bytes = buf_bytes_for(snap_bytes);
	pc->buf = malloc(pc->buf_bytes);
	if (!pc->buf) {
		free(pc);
		goto out_nomem;
	}
	/* Only a new file, never through a symlink: a capture must not
	 * overwrite anything, whoever asked for it. */
	pc->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (pc->fd < 0) {
		ret = -errno;
		errmsg_set(err, "%s: cannot create the capture file: %s", path, strerror(-ret));
		goto out_free;
	}
	ret = write_file_header(pc);
	if (ret < 0) {
		errmsg_set(err, "%s: cannot write the pcap header: %s", path, strerror(-ret));
		goto out_close;
	}
	*pcapp = pc;
	return 0;
out_close:
	close(pc->fd);
out_free:
	free(pc->buf);
	free(pc);
	return ret;
out_nomem:
	errmsg_set(err, "%s: out of memory for a capture buffer", path);
	return -ENOMEM;
}

int vsw_pcap_close(struct vsw_pcap *pc)
{
	int ret;

	if (!pc) {
		return 0;
	}
	ret = vsw_pcap_flush(pc);
	if (close(pc->fd) < 0 && ret == 0) {
		ret = -errno;
	}
	free(pc->buf);
	free(pc);
	return ret;
}

uint64_t vsw_pcap_frames(const struct vsw_pcap *pc)
{
	return pc->frames;
}
