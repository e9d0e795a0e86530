/* SPDX-License-Identifier: MIT */
/* test_pcap.c: the pcap writer (vswitch/pcap.c).  Files are read back by a
 * parser written here from the format, then by tcpdump -r and tshark -r
 * when they are installed (each case skips without its reader), and a
 * write failure is forced with RLIMIT_FSIZE to show that the file keeps
 * whole records only. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc-fail.h"
#include "errmsg.h"
#include "frames.h"
#include "pcap.h"

#define TS0 1700000000123456ull /* 2023-11-14 22:13:20.123456 UTC, in µs */
#define MAX_FILE_BYTES (4u << 20)

static char dir[64];
static char path[128];

static int dir_setup(void **state)
{
	strcpy(dir, "/tmp/vsw-pcap-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* AppArmor lets Debian's tcpdump read files named *.pcap only. */
	snprintf(path, sizeof(path), "%s/capture.pcap", dir);
	return 0;
}

static int dir_teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4); /* host order, as written */
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

/* Reads the whole file at 'path' into a buffer the caller frees. */
static uint8_t *slurp(size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(MAX_FILE_BYTES);

	assert_non_null(f);
	assert_non_null(buf);
	*lenp = fread(buf, 1, MAX_FILE_BYTES, f);
	fclose(f);
	return buf;
}

struct rec {
	uint32_t sec, usec, incl, orig;
	const uint8_t *data;
};

/* Checks the file header and splits the records into 'recs'; returns how
 * many.  Fails the test on a torn record. */
static unsigned int parse(const uint8_t *file, size_t len, uint32_t snap, struct rec *recs,
			  unsigned int max)
{
	size_t off = VSW_PCAP_FILE_HDR_BYTES;
	unsigned int n = 0;

	assert_true(len >= VSW_PCAP_FILE_HDR_BYTES);
	assert_int_equal(rd32(file), 0xa1b2c3d4);
	assert_int_equal(rd16(file + 4), 2);
	assert_int_equal(rd16(file + 6), 4);
	assert_int_equal(rd32(file + 8), 0);
	assert_int_equal(rd32(file + 12), 0);
	assert_int_equal(rd32(file + 16), snap);
	assert_int_equal(rd32(file + 20), 1); /* LINKTYPE_ETHERNET */
	while (off < len) {
		assert_true(len - off >= VSW_PCAP_REC_HDR_BYTES);
		assert_true(n < max);
		recs[n].sec = rd32(file + off);
		recs[n].usec = rd32(file + off + 4);
		recs[n].incl = rd32(file + off + 8);
		recs[n].orig = rd32(file + off + 12);
		assert_true(recs[n].usec < 1000000);
		assert_true(recs[n].incl <= snap && recs[n].incl <= recs[n].orig);
		off += VSW_PCAP_REC_HDR_BYTES;
		assert_true(len - off >= recs[n].incl);
		recs[n].data = file + off;
		off += recs[n].incl;
		n++;
	}
	return n;
}

static struct vsw_pcap *open_ok(uint32_t snap)
{
	struct vsw_pcap *pc = NULL;
	struct errmsg err = {{0}};

	assert_int_equal(vsw_pcap_open(path, snap, &pc, &err), 0);
	assert_non_null(pc);
	return pc;
}

/* The frames most cases write: a small untagged one, a tagged one and a
 * 9000-byte jumbo frame. */
static uint8_t small[64], tagged[68], jumbo[9000];
static size_t small_len, tagged_len, jumbo_len;

static void frames_make(void)
{
	const struct ftag q10 = {TPID_Q, 10, 3};

	small_len = frame_make(small, mac_bcast, station(1), NULL, 0, MIN_PAYLOAD_BYTES, 1);
	tagged_len = frame_make(tagged, station(2), station(1), &q10, 1, MIN_PAYLOAD_BYTES, 2);
	jumbo_len = frame_make(jumbo, station(1), station(2), NULL, 0, 9000 - 14, 3);
}

static void write_three(struct vsw_pcap *pc)
{
	frames_make();
	assert_int_equal(vsw_pcap_write(pc, TS0, small, (uint32_t)small_len), 0);
	assert_int_equal(vsw_pcap_write(pc, TS0 + 1, tagged, (uint32_t)tagged_len), 0);
	assert_int_equal(vsw_pcap_write(pc, TS0 + 1000000, jumbo, (uint32_t)jumbo_len), 0);
	assert_int_equal(vsw_pcap_frames(pc), 3);
}

static void test_file_format_read_back(void **state)
{
	struct vsw_pcap *pc = open_ok(0);
	struct rec recs[4];
	struct stat st;
	uint8_t *file;
	size_t len;

	write_three(pc);
	assert_int_equal(vsw_pcap_close(pc), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	file = slurp(&len);
	assert_int_equal(parse(file, len, VSW_PCAP_SNAP_DEFAULT, recs, 4), 3);
	assert_int_equal(recs[0].sec, 1700000000);
	assert_int_equal(recs[0].usec, 123456);
	assert_int_equal(recs[1].usec, 123457);
	assert_int_equal(recs[2].sec, 1700000001);
	assert_int_equal(recs[0].incl, small_len);
	assert_memory_equal(recs[0].data, small, small_len);
	assert_memory_equal(recs[1].data, tagged, tagged_len);
	assert_int_equal(recs[2].incl, 9000);
	assert_int_equal(recs[2].orig, 9000);
	assert_memory_equal(recs[2].data, jumbo, jumbo_len);
	free(file);
}

static void test_snap_length_truncates_but_keeps_length(void **state)
{
	struct vsw_pcap *pc = open_ok(64);
	struct rec recs[4];
	uint8_t *file;
	size_t len;

	write_three(pc);
	assert_int_equal(vsw_pcap_close(pc), 0);
	file = slurp(&len);
	assert_int_equal(parse(file, len, 64, recs, 4), 3);
	assert_int_equal(recs[0].incl, 60);
	assert_int_equal(recs[1].incl, 64);
	assert_int_equal(recs[1].orig, 64);
	assert_int_equal(recs[2].incl, 64);
	assert_int_equal(recs[2].orig, 9000);
	assert_memory_equal(recs[2].data, jumbo, 64);
	free(file);
}

static void test_writev_equals_write(void **state)
{
	struct vsw_pcap *pc = open_ok(100);
	struct iovec iov[3];
	struct rec recs[4];
	uint8_t *file;
	size_t len;

	frames_make();
	iov[0] = (struct iovec){.iov_base = jumbo, .iov_len = 10};
	iov[1] = (struct iovec){.iov_base = jumbo + 10, .iov_len = 0};
	iov[2] = (struct iovec){.iov_base = jumbo + 10, .iov_len = jumbo_len - 10};
	assert_int_equal(vsw_pcap_writev(pc, TS0, iov, 3), 0);
	assert_int_equal(vsw_pcap_writev(pc, TS0, iov, 0), 0); /* an empty frame */
	assert_int_equal(vsw_pcap_close(pc), 0);
	file = slurp(&len);
	assert_int_equal(parse(file, len, 100, recs, 4), 2);
	assert_int_equal(recs[0].orig, 9000);
	assert_memory_equal(recs[0].data, jumbo, 100);
	assert_int_equal(recs[1].orig, 0);
	free(file);
}

static void test_buffered_until_flush_and_beyond_buffer(void **state)
{
	struct vsw_pcap *pc = open_ok(0);
	struct rec *recs = calloc(400, sizeof(*recs));
	struct stat st;
	uint8_t *file;
	size_t len;
	unsigned int i;

	frames_make();
	assert_int_equal(vsw_pcap_write(pc, TS0, small, (uint32_t)small_len), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, VSW_PCAP_FILE_HDR_BYTES);
	assert_int_equal(vsw_pcap_flush(pc), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, VSW_PCAP_FILE_HDR_BYTES + 16 + small_len);
	/* 300 jumbo frames fill the buffer ten times over. */
	for (i = 0; i < 300; i++) {
		jumbo[100] = (uint8_t)i;
		assert_int_equal(vsw_pcap_write(pc, TS0 + i, jumbo, (uint32_t)jumbo_len), 0);
	}
	assert_int_equal(vsw_pcap_close(pc), 0);
	file = slurp(&len);
	assert_int_equal(parse(file, len, VSW_PCAP_SNAP_DEFAULT, recs, 400), 301);
	for (i = 0; i < 300; i++) {
		assert_int_equal(recs[1 + i].data[100], (uint8_t)i);
		assert_int_equal(recs[1 + i].incl, 9000);
	}
	free(recs);
	free(file);
}

static void test_open_errors(void **state)
{
	struct vsw_pcap *pc = NULL;
	struct errmsg err = {{0}};
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/no/such/dir.pcap", dir);
	assert_int_equal(vsw_pcap_open(missing, 0, &pc, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no/such/dir.pcap"));
	assert_int_equal(vsw_pcap_open(path, VSW_PCAP_SNAP_DEFAULT + 1, &pc, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "snap length"));
	assert_int_equal(vsw_pcap_open(NULL, 0, &pc, NULL), -EINVAL);
	/* Captures are created only as new files (issue 11): an existing
	 * file, even a device, is never opened, let alone truncated. */
	assert_int_equal(vsw_pcap_open("/dev/full", 0, &pc, &err), -EEXIST);
	assert_null(pc);
	assert_int_equal(vsw_pcap_close(NULL), 0);
}

/* RLIMIT_FSIZE makes write() fail part-way (EFBIG, with SIGXFSZ ignored),
 * like a full disk. */
static void test_write_error_sticky_and_file_keeps_whole_records(void **state)
{
	struct rlimit old, lim;
	struct vsw_pcap *pc = open_ok(0);
	struct rec recs[64];
	uint8_t *file;
	size_t len;
	int i, ret = 0;

	frames_make();
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 300000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	/* The 256 KiB buffer takes 29 jumbo records: the first flush fits
	 * under the limit, the second goes over it part-way. */
	for (i = 0; i < 100 && ret == 0; i++) {
		ret = vsw_pcap_write(pc, TS0 + (uint64_t)i, jumbo, (uint32_t)jumbo_len);
	}
	assert_int_equal(ret, -EFBIG);
	assert_int_equal(i, 59);
	assert_int_equal(vsw_pcap_write(pc, TS0, small, (uint32_t)small_len), -EFBIG);
	assert_int_equal(vsw_pcap_flush(pc), -EFBIG);
	assert_int_equal(vsw_pcap_close(pc), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	file = slurp(&len);
	assert_int_equal(parse(file, len, VSW_PCAP_SNAP_DEFAULT, recs, 64), 29);
	free(file);
}

static void test_frame_longer_than_a_record_can_say(void **state)
{
	struct vsw_pcap *pc = open_ok(0);
	struct iovec iov[2] = {{.iov_base = small, .iov_len = UINT32_MAX},
			       {.iov_base = small, .iov_len = 1}};

	assert_int_equal(vsw_pcap_writev(pc, TS0, iov, 2), -EINVAL); /* nothing read */
	assert_int_equal(vsw_pcap_frames(pc), 0);
	assert_int_equal(vsw_pcap_close(pc), 0);
}

static int open_attempt(void *arg)
{
	struct errmsg err = {{0}};
	int ret;

	ret = vsw_pcap_open(path, 0, arg, &err);
	if (ret == -ENOMEM) {
		assert_non_null(strstr(err.msg, "out of memory"));
	}
	return ret;
}

static void test_open_out_of_memory(void **state)
{
	struct vsw_pcap *pc = NULL;

	assert_int_equal(alloc_fail_walk(open_attempt, &pc), 2);
	assert_int_equal(vsw_pcap_close(pc), 0);
}

/* --- Real readers --- */

/* The full path of 'tool', looked up like a shell would plus the sbin
 * directories, or NULL. */
static const char *find_tool(const char *tool)
{
	static char found[256];
	static const char *const dirs[] = {"/usr/bin", "/usr/sbin", "/bin", "/sbin",
					   "/usr/local/bin", "/usr/local/sbin"};
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(found, sizeof(found), "%s/%s", dirs[i], tool);
		if (access(found, X_OK) == 0) {
			return found;
		}
	}
	return NULL;
}

/* Runs 'cmd' and returns its output (stdout and stderr) in 'out'. */
static int run(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n;

	assert_non_null(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	return pclose(p);
}

static unsigned int count_lines(const char *text)
{
	unsigned int n = 0;

	for (; *text; text++) {
		n += *text == '\n';
	}
	return n;
}

static void test_tcpdump_reads_capture(void **state)
{
	const char *tcpdump = find_tool("tcpdump");
	struct vsw_pcap *pc;
	char cmd[512], out[8192];

	if (!tcpdump) {
		skip();
	}
	pc = open_ok(0);
	write_three(pc);
	assert_int_equal(vsw_pcap_close(pc), 0);
	/* -tt prints the timestamps as seconds.microseconds; -e the link
	 * header with the frame's length; -Z root since the file is 0600. */
	snprintf(cmd, sizeof(cmd), "%s -Z root -tt -e -nn -r %s 2>&1", tcpdump, path);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "reading from file"));
	assert_non_null(strstr(out, "1700000000.123456 02:5a:00:00:00:01 > ff:ff:ff:ff:ff:ff"));
	assert_non_null(strstr(out, "1700000000.123457 02:5a:00:00:00:01 > 02:5a:00:00:00:02"));
	assert_non_null(strstr(out, "vlan 10, p 3"));
	assert_non_null(strstr(out, "1700000001.123456"));
	assert_non_null(strstr(out, "length 9000"));
	assert_int_equal(count_lines(out), 4); /* the banner and three frames */
}

static void test_tshark_reads_capture(void **state)
{
	const char *tshark = find_tool("tshark");
	struct vsw_pcap *pc;
	char cmd[512], out[8192];

	if (!tshark) {
		skip();
	}
	pc = open_ok(0);
	write_three(pc);
	assert_int_equal(vsw_pcap_close(pc), 0);
	snprintf(cmd, sizeof(cmd),
		 "%s -r %s -T fields -e frame.time_epoch -e frame.len -e vlan.id 2>/dev/null",
		 tshark, path);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, "1700000000.123456"));
	assert_non_null(strstr(out, "\t9000\t"));
	assert_non_null(strstr(out, "\t64\t10"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, dir_setup, dir_teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_format_read_back),
		T(test_snap_length_truncates_but_keeps_length),
		T(test_writev_equals_write),
		T(test_buffered_until_flush_and_beyond_buffer),
		T(test_open_errors),
		T(test_write_error_sticky_and_file_keeps_whole_records),
		T(test_frame_longer_than_a_record_can_say),
		T(test_open_out_of_memory),
		T(test_tcpdump_reads_capture),
		T(test_tshark_reads_capture),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
