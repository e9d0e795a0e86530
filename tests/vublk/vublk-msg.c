// SPDX-License-Identifier: MIT
/* vublk-msg.c: vhost-user message framing for the vublk front end: a 12-byte
 * header, the payload, file descriptors as SCM_RIGHTS on the first byte,
 * replies read with a deadline so a hung server fails a test instead of
 * hanging it.  vublk.c decides which messages to send and when. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vublk-int.h"

/* More than any message we send carries (memory table: 8 fds). */
#define VU_MAX_FDS VUBLK_MAX_REGIONS

const char *vu_request_name(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES:
		return "GET_FEATURES";
	case VU_SET_FEATURES:
		return "SET_FEATURES";
	case VU_SET_OWNER:
		return "SET_OWNER";
	case VU_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VU_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VU_GET_VRING_BASE:
		return "GET_VRING_BASE";
	case VU_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VU_SET_VRING_CALL:
		return "SET_VRING_CALL";
	case VU_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES:
		return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE:
		return "SET_VRING_ENABLE";
	case VU_GET_CONFIG:
		return "GET_CONFIG";
	case VU_GET_INFLIGHT_FD:
		return "GET_INFLIGHT_FD";
	case VU_SET_INFLIGHT_FD:
		return "SET_INFLIGHT_FD";
	}
	return "unknown request";
}

/* The socket is unusable from here on; the caller sees -ENOTCONN. */
static int vu_lost(struct vublk *dev, uint32_t request, const char *why)
{
	errmsg_set(&dev->err, "%s: %s: %s", dev->path,
		   request ? vu_request_name(request) : "socket", why);
	if (dev->sock >= 0) {
		close(dev->sock);
		dev->sock = -1;
	}
	if (dev->started) {
		dev->lost = true;
	}
	return -ENOTCONN;
}

int vu_send(struct vublk *dev, uint32_t request, uint32_t flags, const void *payload,
	    uint32_t bytes, const int *fds, unsigned int nfds)
{
	struct vu_hdr hdr = {.request = request, .flags = VU_VERSION | flags, .size = bytes};
	struct iovec iov[2] = {
		{.iov_base = &hdr, .iov_len = sizeof(hdr)},
		{.iov_base = (void *)payload, .iov_len = bytes},
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = bytes ? 2 : 1};
	size_t total = sizeof(hdr) + bytes;
	ssize_t n;

	if (dev->sock < 0) {
		errmsg_set(&dev->err, "%s: %s: not connected", dev->path, vu_request_name(request));
		return -ENOTCONN;
	}
	if (nfds > VU_MAX_FDS) {
		return -EINVAL;
	}
	if (nfds) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(dev->sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return vu_lost(dev, request, strerror(errno));
	}
	/* A Unix stream socket takes a message this small whole or not at
	 * all; a short send means the peer is going away. */
	if ((size_t)n != total) {
		return vu_lost(dev, request, "short send");
	}
	return 0;
}

/* Reads exactly 'bytes' into 'buf' within the deadline, collecting at most
 * one fd into '*fdp' if given (closing any others). */
static int vu_read_full(struct vublk *dev, uint32_t request, void *buf, size_t bytes, int *fdp)
{
	size_t done = 0;

	while (done < bytes) {
		struct pollfd pfd = {.fd = dev->sock, .events = POLLIN};
		union {
			char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = (char *)buf + done, .iov_len = bytes - done};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		int ret = poll(&pfd, 1, dev->opts.timeout_ms);
		ssize_t n;

		if (ret < 0 && errno == EINTR) {
			continue;
		}
		if (ret == 0) {
			return vu_lost(dev, request, "no reply within the timeout");
		}
		n = recvmsg(dev->sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return vu_lost(dev, request, n ? strerror(errno) : "the server closed the connection");
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
				continue;
			}
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[VU_MAX_FDS];

			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
			for (size_t i = 0; i < nfd; i++) {
				if (fdp && *fdp < 0) {
					*fdp = fds[i];
				} else {
					close(fds[i]);
				}
			}
		}
		done += n;
	}
	return 0;
}

int vu_recv(struct vublk *dev, uint32_t request, void *payload, uint32_t bytes, int *fdp)
{
	struct vu_hdr hdr;
	char sink[64];
	int ret;

	if (fdp) {
		*fdp = -1;
	}
	ret = vu_read_full(dev, request, &hdr, sizeof(hdr), fdp);
	if (ret < 0) {
		return ret;
	}
	if (hdr.request != request || !(hdr.flags & VU_FLAG_REPLY) ||
	    (hdr.flags & 3) != VU_VERSION) {
		errmsg_set(&dev->err, "%s: %s: reply is request %u flags 0x%x", dev->path,
			   vu_request_name(request), hdr.request, hdr.flags);
		ret = -EPROTO;
		goto out_close_fd;
	}
	if (hdr.size != bytes) {
		/* GET_CONFIG may legitimately differ; the caller checks. */
		if (request != VU_GET_CONFIG || hdr.size > bytes) {
			errmsg_set(&dev->err, "%s: %s: reply payload is %u bytes, expected %u",
				   dev->path, vu_request_name(request), hdr.size, bytes);
			ret = -EPROTO;
			/* Keep the stream in step for the next message. */
			while (hdr.size > 0 && ret == -EPROTO) {
				uint32_t chunk = hdr.size < sizeof(sink) ? hdr.size : sizeof(sink);

				if (vu_read_full(dev, request, sink, chunk, NULL) < 0) {
					break;
				}
				hdr.size -= chunk;
			}
			goto out_close_fd;
		}
	}
	ret = vu_read_full(dev, request, payload, hdr.size, fdp);
	if (ret < 0) {
		goto out_close_fd;
	}
	return (int)hdr.size;
out_close_fd:
	if (fdp && *fdp >= 0) {
		close(*fdp);
		*fdp = -1;
	}
	if (ret == -EPROTO) {
		vu_lost(dev, request, dev->err.msg);
	}
	return ret;
}

/* With REPLY_ACK negotiated, asks for and checks the u64 acknowledgement;
 * otherwise just sends. */
int vu_send_ack(struct vublk *dev, uint32_t request, const void *payload, uint32_t bytes,
		const int *fds, unsigned int nfds)
{
	bool ack = vu_has_feature(dev->pfeatures, VUBLK_PF_REPLY_ACK);
	uint64_t result;
	int ret;

	ret = vu_send(dev, request, ack ? VU_FLAG_NEED_REPLY : 0, payload, bytes, fds, nfds);
	if (ret < 0 || !ack) {
		return ret;
	}
	ret = vu_recv(dev, request, &result, sizeof(result), NULL);
	if (ret < 0) {
		return ret;
	}
	if (result != 0) {
		errmsg_set(&dev->err, "%s: %s: the server answered failure (%llu)", dev->path,
			   vu_request_name(request), (unsigned long long)result);
		return -EIO;
	}
	return 0;
}

int vu_get_u64(struct vublk *dev, uint32_t request, uint64_t *valp)
{
	int ret = vu_send(dev, request, 0, NULL, 0, NULL, 0);

	if (ret < 0) {
		return ret;
	}
	ret = vu_recv(dev, request, valp, sizeof(*valp), NULL);
	return ret < 0 ? ret : 0;
}

int vu_set_u64(struct vublk *dev, uint32_t request, uint64_t val)
{
	return vu_send(dev, request, 0, &val, sizeof(val), NULL, 0);
}

int vu_set_state(struct vublk *dev, uint32_t request, uint32_t index, uint32_t num)
{
	struct vu_vring_state st = {.index = index, .num = num};

	return vu_send(dev, request, 0, &st, sizeof(st), NULL, 0);
}

int vu_get_state(struct vublk *dev, uint32_t request, uint32_t index, uint32_t *nump)
{
	struct vu_vring_state st = {.index = index, .num = 0};
	int ret = vu_send(dev, request, 0, &st, sizeof(st), NULL, 0);

	if (ret < 0) {
		return ret;
	}
	ret = vu_recv(dev, request, &st, sizeof(st), NULL);
	if (ret < 0) {
		return ret;
	}
	*nump = st.num;
	return 0;
}

int vu_set_vring_fd(struct vublk *dev, uint32_t request, uint32_t index, int fd)
{
	uint64_t val = index;

	if (fd < 0) {
		val |= VU_VRING_NOFD;
	}
	return vu_send(dev, request, 0, &val, sizeof(val), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

/* True unless the server has closed its end.  The server never writes to us
 * unasked (no backend channel is negotiated), so readable means closed. */
bool vu_socket_alive(struct vublk *dev)
{
	struct pollfd pfd = {.fd = dev->sock, .events = POLLIN | POLLRDHUP};

	if (dev->sock < 0) {
		return false;
	}
	if (poll(&pfd, 1, 0) <= 0) {
		return true;
	}
	vu_lost(dev, 0, "the server closed the connection");
	return false;
}
