/* SPDX-License-Identifier: MIT */
/* macflood.c: the switch tests' own traffic generator for the MAC flooding
 * attack (tests/switch/test_abuse.py).  It drives host ports of vswitchd
 * from the host side: one AF_PACKET socket per tap interface, frames sent
 * in batches with sendmmsg() at a steady rate, frames received counted.
 *
 * Roles, each on its own interface, all served by one thread:
 *   flood,IFNAME,RATE,DST        frames to DST, each from a new random
 *                                locally administered unicast MAC (what
 *                                macof does); it expects to receive nothing
 *   station,IFNAME,RATE,SRC,DST  frames from SRC to DST; it expects to
 *                                receive its peer's frames (from DST to SRC)
 *                                and nothing else
 * After --seconds it keeps receiving for --drain-ms, then prints one JSON
 * object: per role the frames sent, the sends the kernel refused, and the
 * frames received, split into expected and other.  A frame is "other" if
 * it is not the peer's unicast to us: a flooded frame, or for the flooder
 * any frame at all (a frame of the others' conversation it could sniff).
 *
 * Frames are 60 bytes with EtherType 0x88b5 (IEEE local experimental), so
 * no stack on the way answers them.  Linux only; needs CAP_NET_RAW.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROLES 8
#define FRAME_BYTES 60
#define ETHERTYPE_EXPERIMENTAL 0x88b5
#define BATCH_MAX 256  /* frames per sendmmsg() */
#define RX_BATCH 64    /* frames per recvmmsg() */
#define TICK_NS 500000 /* at most this long between two looks at the clock */
/* Behind schedule (the host was busy), a role sends at most this much of
 * its backlog per tick, so receiving never starves. */
#define CATCH_UP_MAX 4096

enum role_kind { ROLE_FLOOD, ROLE_STATION };

struct role {
	enum role_kind kind;
	char ifname[IF_NAMESIZE];
	double rate; /* frames per second */
	uint8_t src[6];
	uint8_t dst[6];
	int fd;
	uint64_t sent;
	uint64_t send_errors; /* frames the kernel refused (ENOBUFS, EAGAIN) */
	uint64_t rx;
	uint64_t rx_expected;
	uint64_t rx_other;
	uint8_t frames[BATCH_MAX][FRAME_BYTES];
	struct mmsghdr msgs[BATCH_MAX];
	struct iovec iovs[BATCH_MAX];
};

static struct role roles[MAX_ROLES];
static int n_roles;
static uint64_t rng_state;

static void usage(FILE *f)
{
	fprintf(f, "usage: macflood [--seconds S] [--drain-ms N] ROLE...\n"
		   "  ROLE is flood,IFNAME,RATE,DST_MAC or station,IFNAME,RATE,SRC_MAC,DST_MAC\n"
		   "  RATE in frames per second; S default 5, N default 500\n");
}

/* xorshift64*: fast, and random enough that no two sources repeat in a run. */
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_mac(const char *text, uint8_t *mac)
{
	unsigned int b[6];
	char tail;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6) {
		return -1;
	}
	for (int i = 0; i < 6; i++) {
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* Splits "kind,ifname,rate,mac[,mac]" into 'r'; prints why not. */
static int parse_role(char *spec, struct role *r)
{
	char *field[5], *save = NULL, *end;
	int n = 0;

	for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == 5) {
			n++;
			break;
		}
		field[n++] = tok;
	}
	if (n >= 1 && strcmp(field[0], "flood") == 0 && n == 4) {
		r->kind = ROLE_FLOOD;
	} else if (n >= 1 && strcmp(field[0], "station") == 0 && n == 5) {
		r->kind = ROLE_STATION;
	} else {
		fprintf(stderr, "macflood: bad role '%s': want flood,IFNAME,RATE,DST or "
				"station,IFNAME,RATE,SRC,DST\n", spec);
		return -1;
	}
	if (strlen(field[1]) >= sizeof(r->ifname)) {
		fprintf(stderr, "macflood: interface name '%s' too long\n", field[1]);
		return -1;
	}
	strcpy(r->ifname, field[1]);
	errno = 0;
	r->rate = strtod(field[2], &end);
	if (errno || *end || !(r->rate > 0 && r->rate <= 10e6)) {
		fprintf(stderr, "macflood: bad rate '%s': want 0 < RATE <= 10000000\n", field[2]);
		return -1;
	}
	if (r->kind == ROLE_FLOOD) {
		if (parse_mac(field[3], r->dst) < 0) {
			fprintf(stderr, "macflood: bad MAC '%s'\n", field[3]);
			return -1;
		}
		return 0;
	}
	if (parse_mac(field[3], r->src) < 0 || parse_mac(field[4], r->dst) < 0) {
		fprintf(stderr, "macflood: bad MAC in '%s,%s'\n", field[3], field[4]);
		return -1;
	}
	if (r->src[0] & 1) {
		fprintf(stderr, "macflood: source %s is a group address\n", field[3]);
		return -1;
	}
	return 0;
}

static int open_role(struct role *r)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	int one = 1;

	sll.sll_ifindex = (int)if_nametoindex(r->ifname);
	if (sll.sll_ifindex == 0) {
		fprintf(stderr, "macflood: no interface named %s\n", r->ifname);
		return -1;
	}
	r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (r->fd < 0) {
		fprintf(stderr, "macflood: AF_PACKET socket: %s\n", strerror(errno));
		return -1;
	}
	if (bind(r->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "macflood: bind to %s: %s\n", r->ifname, strerror(errno));
		return -1;
	}
	/* Our own frames are not received back; the qdisc only adds a copy. */
	(void)setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	(void)setsockopt(r->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	for (int i = 0; i < BATCH_MAX; i++) {
		uint8_t *f = r->frames[i];

		memset(f, 0, FRAME_BYTES);
		memcpy(f, r->dst, 6);
		memcpy(f + 6, r->src, 6);
		f[12] = ETHERTYPE_EXPERIMENTAL >> 8;
		f[13] = ETHERTYPE_EXPERIMENTAL & 0xff;
		r->iovs[i].iov_base = f;
		r->iovs[i].iov_len = FRAME_BYTES;
		r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
		r->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

/* A new random locally administered unicast address: bit 1 of the first
 * byte set, bit 0 clear. */
static void random_source(uint8_t *mac)
{
	uint64_t v = rng_next();

	memcpy(mac, &v, 6);
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
}

/* Sends up to 'n' frames now; returns how many the kernel took. */
static uint64_t send_batch(struct role *r, uint64_t n)
{
	int count, ret;

	count = (int)(n < BATCH_MAX ? n : BATCH_MAX);
	for (int i = 0; i < count; i++) {
		uint8_t *f = r->frames[i];
		uint64_t seq = r->sent + (uint64_t)i;

		if (r->kind == ROLE_FLOOD) {
			random_source(f + 6);
		}
		memcpy(f + 14, &seq, sizeof(seq));
	}
	ret = sendmmsg(r->fd, r->msgs, (unsigned int)count, 0);
	if (ret < 0) {
		if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR) {
			fprintf(stderr, "macflood: send on %s: %s\n", r->ifname, strerror(errno));
			exit(1);
		}
		r->send_errors += (uint64_t)count;
		return 0;
	}
	return (uint64_t)ret;
}

/* Sends what the role owes at 'elapsed' seconds into the run.  A frame the
 * kernel refused is counted and not retried: the schedule goes on. */
static void send_due(struct role *r, double elapsed)
{
	uint64_t due = (uint64_t)(r->rate * elapsed);
	uint64_t done = r->sent + r->send_errors;
	uint64_t budget = CATCH_UP_MAX;

	while (done < due && budget > 0) {
		uint64_t want = due - done < budget ? due - done : budget;
		uint64_t ok = send_batch(r, want);

		if (ok == 0) {
			break;
		}
		r->sent += ok;
		done += ok;
		budget -= ok < budget ? ok : budget;
	}
}

static void receive(struct role *r)
{
	static uint8_t bufs[RX_BATCH][2048];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iovs[RX_BATCH];
	struct sockaddr_ll from[RX_BATCH];
	int n;

	for (;;) {
		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < RX_BATCH; i++) {
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = sizeof(bufs[i]);
			msgs[i].msg_hdr.msg_iov = &iovs[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(r->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			return;
		}
		for (int i = 0; i < n; i++) {
			const uint8_t *f = bufs[i];

			if (from[i].sll_pkttype == PACKET_OUTGOING) {
				continue; /* kernels without PACKET_IGNORE_OUTGOING */
			}
			r->rx++;
			if (r->kind == ROLE_STATION && msgs[i].msg_len >= 14 &&
			    memcmp(f, r->src, 6) == 0 && memcmp(f + 6, r->dst, 6) == 0) {
				r->rx_expected++;
			} else {
				r->rx_other++;
			}
		}
	}
}

static void print_mac(const uint8_t *m)
{
	printf("\"%02x:%02x:%02x:%02x:%02x:%02x\"", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void report(double seconds)
{
	printf("{\"seconds\":%.3f,\"roles\":[", seconds);
	for (int i = 0; i < n_roles; i++) {
		const struct role *r = &roles[i];

		printf("%s{\"role\":\"%s\",\"ifname\":\"%s\",\"rate\":%.0f,", i ? "," : "",
		       r->kind == ROLE_FLOOD ? "flood" : "station", r->ifname, r->rate);
		if (r->kind == ROLE_STATION) {
			printf("\"src\":");
			print_mac(r->src);
			printf(",");
		}
		printf("\"dst\":");
		print_mac(r->dst);
		printf(",\"sent\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"rx\":%" PRIu64
		       ",\"rx_expected\":%" PRIu64 ",\"rx_other\":%" PRIu64 "}",
		       r->sent, r->send_errors, r->rx, r->rx_expected, r->rx_other);
	}
	printf("]}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double seconds = 5, drain_ms = 500, start, elapsed, end;
	struct pollfd pfds[MAX_ROLES];

	for (int i = 1; i < argc; i++) {
		char *end_p;

		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end_p);
			if (*end_p || !(seconds > 0 && seconds <= 86400)) {
				fprintf(stderr, "macflood: bad --seconds '%s'\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--drain-ms") == 0 && i + 1 < argc) {
			drain_ms = strtod(argv[++i], &end_p);
			if (*end_p || !(drain_ms >= 0 && drain_ms <= 60000)) {
				fprintf(stderr, "macflood: bad --drain-ms '%s'\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-') {
			usage(stderr);
			return 2;
		} else if (n_roles == MAX_ROLES) {
			fprintf(stderr, "macflood: at most %d roles\n", MAX_ROLES);
			return 2;
		} else if (parse_role(argv[i], &roles[n_roles++]) < 0) {
			return 2;
		}
	}
	if (n_roles == 0) {
		usage(stderr);
		return 2;
	}
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || rng_state == 0) {
		rng_state = (uint64_t)time(NULL) | 1;
	}
	for (int i = 0; i < n_roles; i++) {
		if (open_role(&roles[i]) < 0) {
			return 1;
		}
		pfds[i].fd = roles[i].fd;
		pfds[i].events = POLLIN;
	}

	start = now_s();
	end = start + seconds;
	for (;;) {
		struct timespec tick = {.tv_sec = 0, .tv_nsec = TICK_NS};
		double t = now_s();

		elapsed = (t < end ? t : end) - start;
		for (int i = 0; i < n_roles; i++) {
			send_due(&roles[i], elapsed);
			receive(&roles[i]);
		}
		if (t >= end + drain_ms / 1000) {
			break;
		}
		if (ppoll(pfds, (nfds_t)n_roles, &tick, NULL) < 0 && errno != EINTR) {
			fprintf(stderr, "macflood: ppoll: %s\n", strerror(errno));
			return 1;
		}
	}
	report(seconds);
	for (int i = 0; i < n_roles; i++) {
		close(roles[i].fd);
	}
	return 0;
}
