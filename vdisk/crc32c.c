/* SPDX-License-Identifier: MIT */
/* crc32c.c: CRC-32C (Castagnoli), guarding the header and journal
 * transactions.  Table-driven; metadata is small, so speed matters little. */
#include "internal.h"

static uint32_t table[256];
static bool table_ready;

static void build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++) {
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		}
		table[i] = c;
	}
	table_ready = true;
}

/* Start with crc 0; chains: vd_crc32c(vd_crc32c(0, a, n), b, m). */
uint32_t vd_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!table_ready) {
		build_table();
	}
	crc = ~crc;
	while (len--) {
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	}
	return ~crc;
}
