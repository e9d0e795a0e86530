/* SPDX-License-Identifier: MIT */
/* cliutil.c: the shared command-line helpers declared in cliutil.h.  Kept
 * free of any library's types so every tool of the project can link it. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "cliutil.h"

static const char *progname = "vdisk";

void cli_set_progname(const char *name) { progname = name; }

const char *cli_progname(void) { return progname; }

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_error_ret(const struct errmsg *err, const char *what, int ret)
{
	if (err && err->msg[0]) {
		cli_error("%s", err->msg);
	} else {
		cli_error("%s: %s", what, strerror(ret < 0 ? -ret : ret));
	}
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (cmd) {
		fprintf(stderr, "%s: ", cmd);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try '%s%s%s --help')\n", progname, cmd ? " " : "", cmd ? cmd : "");
}

void cli_getopt_error(const char *cmd, int c, char *const argv[])
{
	/* A long option's optopt is its 'val', which may not be a character;
	 * argv[optind - 1] names it as the user typed it. */
	if (c == ':') {
		cli_usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
	} else if (optopt > 0 && optopt < 128 && isprint(optopt)) {
		cli_usage_error(cmd, "unknown option '-%c'", optopt);
	} else {
		cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
	}
}

static unsigned digit_value(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return 99;
}

/* Consumes the digits of 'base' at '*sp'.  Counts them in '*ndigitsp' so the
 * caller can tell "" from "0". */
static int read_number(const char **sp, unsigned base, uint64_t *valp, unsigned *ndigitsp)
{
	const char *s = *sp;
	uint64_t v = 0;
	unsigned n = 0;
	bool overflow = false;

	for (; digit_value(*s) < base; s++, n++) {
		unsigned d = digit_value(*s);

		if (v > (UINT64_MAX - d) / base) {
			overflow = true;
		} else {
			v = v * base + d;
		}
	}
	*sp = s;
	*ndigitsp = n;
	*valp = v;
	return overflow ? -ERANGE : 0;
}

/* Consumes a unit suffix; returns its power of two (0 for bytes) or -1. */
static int read_suffix(const char **sp)
{
	static const char units[] = "KMGTPE";
	const char *s = *sp;
	const char *u;
	int shift = 0;

	if (*s == '\0') {
		return 0;
	}
	u = strchr(units, toupper((unsigned char)*s));
	if (u) {
		shift = 10 * (int)(u - units + 1);
		s++;
		if (s[0] == 'i' && s[1] == 'B') {
			s += 2;
		} else if (*s == 'B' || *s == 'b') {
			s++;
		}
	} else if (*s == 'B' || *s == 'b') {
		s++;
	}
	*sp = s;
	return *s ? -1 : shift;
}

int cli_parse_size(const char *str, uint64_t *bytesp)
{
	const char *s = str;
	uint64_t whole, frac = 0, bytes, pow10 = 1;
	unsigned nwhole, nfrac = 0;
	bool hex = false;
	int shift, ret;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		hex = true;
		s += 2;
	}
	ret = read_number(&s, hex ? 16 : 10, &whole, &nwhole);
	if (nwhole == 0) {
		return -EINVAL;
	}
	if (!hex && *s == '.') {
		s++;
		if (read_number(&s, 10, &frac, &nfrac) < 0 || nfrac == 0 || nfrac > 18) {
			return -EINVAL;
		}
	}
	/* A hex number cannot take a suffix: "0x1B" would be ambiguous. */
	shift = hex ? (*s ? -1 : 0) : read_suffix(&s);
	if (shift < 0 || (nfrac && shift == 0)) {
		return -EINVAL;
	}
	if (ret < 0 || whole > (UINT64_MAX >> shift)) {
		return -ERANGE;
	}
	bytes = whole << shift;
	if (nfrac) {
		unsigned __int128 part = (unsigned __int128)frac << shift;

		for (unsigned i = 0; i < nfrac; i++) {
			pow10 *= 10;
		}
		if (part % pow10) {
			return -EINVAL;
		}
		part /= pow10;
		if (part > UINT64_MAX - bytes) {
			return -ERANGE;
		}
		bytes += (uint64_t)part;
	}
	*bytesp = bytes;
	return 0;
}

int cli_parse_u64(const char *str, uint64_t *valp)
{
	const char *s = str;
	unsigned base = 10, n;
	uint64_t v;
	int ret;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	ret = read_number(&s, base, &v, &n);
	if (n == 0 || *s) {
		return -EINVAL;
	}
	if (ret < 0) {
		return ret;
	}
	*valp = v;
	return 0;
}

char *cli_human_size(uint64_t bytes, char *buf, size_t buflen)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned i = 0;

	/* Moving up at 999.5 rather than 1000 keeps "%.3g" from printing
	 * "1e+03" for values that round up to 1000. */
	while (i < 6 && v >= 999.5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, buflen, "%.3g %s", v, units[i]);
	return buf;
}

int cli_json_print(FILE *f, struct json_object *obj)
{
	const char *text =
	    json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE);

	fputs(text, f);
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t cli_json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
		return 0;
	}
	return json_object_get_uint64(v);
}

const char *cli_json_str(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v) {
		return dflt;
	}
	return json_object_get_string(v);
}
