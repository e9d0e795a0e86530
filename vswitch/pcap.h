/* SPDX-License-Identifier: MIT */
/* pcap.h: writes the frames seen on a port to a classic libpcap file
 * (LINKTYPE_ETHERNET, microsecond timestamps) that tcpdump -r, tshark -r
 * and Wireshark read.  The datapath opens one per captured port and
 * direction; the switch core does not capture by itself, since it never
 * holds the bytes the datapath finally sends.  No rotation: open, write,
 * close.  One thread at a time per handle.
 */
#ifndef VSW_PCAP_H
#define VSW_PCAP_H

#include <stdint.h>
#include <sys/uio.h>

struct errmsg;
struct vsw_pcap;

/* libpcap's MAXIMUM_SNAPLEN: what tcpdump itself captures by default, and
 * far above a 9000-byte jumbo frame. */
#define VSW_PCAP_SNAP_DEFAULT 262144u
#define VSW_PCAP_MAGIC_US 0xa1b2c3d4u /* written in host order; readers swap */
#define VSW_PCAP_LINKTYPE_ETHERNET 1
#define VSW_PCAP_FILE_HDR_BYTES 24
#define VSW_PCAP_REC_HDR_BYTES 16

/* Creates (or truncates) 'path', mode 0600 since frames carry guests'
 * traffic, and writes the file header.  'snap_bytes' (1 to
 * VSW_PCAP_SNAP_DEFAULT; 0: the default) caps the bytes kept per frame; the
 * record still says the frame's full length.  Returns 0 with a handle in
 * '*pcapp', or a negative errno with a sentence in 'err'. */
int vsw_pcap_open(const char *path, uint32_t snap_bytes, struct vsw_pcap **pcapp,
		  struct errmsg *err);

/* Appends a frame of 'len_bytes' at 'frame' (frames start at the
 * destination MAC, no FCS), stamped 'time_us' microseconds after the Unix
 * epoch.  Buffered: the bytes reach the file when the buffer fills, on
 * vsw_pcap_flush() or on close.  Returns 0 or a negative errno; after a
 * write error every call returns that error and the file keeps whole
 * records only, up to the failure. */
int vsw_pcap_write(struct vsw_pcap *pcap, uint64_t time_us, const void *frame,
		   uint32_t len_bytes);
/* The same for a frame in 'iovcnt' pieces (a chain of mbufs). */
int vsw_pcap_writev(struct vsw_pcap *pcap, uint64_t time_us, const struct iovec *iov,
		    unsigned int iovcnt);
/* Writes out what is buffered.  Returns 0 or a negative errno. */
int vsw_pcap_flush(struct vsw_pcap *pcap);
/* Flushes, closes and frees 'pcap' (NULL: no-op) and returns the first
 * error the handle met, 0 if none.  The handle is gone either way. */
int vsw_pcap_close(struct vsw_pcap *pcap);
/* Frames written so far (buffered or not). */
uint64_t vsw_pcap_frames(const struct vsw_pcap *pcap);

#endif
