/* crc32c.c - table-driven CRC-32C (reflected polynomial 0x82F63B78). */
#include "crc32c.h"
#include "poison.h"

static uint32_t crc32c_table[256];

static void
crc32c_make_table(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

uint32_t
crc32c(uint32_t crc, const void *p, size_t n)
{
	static __thread int ready; /* the table is idempotent; per-thread flag avoids a race */
	const unsigned char *c = p;

	if (!ready) {
		if (crc32c_table[1] == 0)
			crc32c_make_table();
		ready = 1;
	}
	crc = ~crc;
	while (n--)
		crc = crc32c_table[(crc ^ *c++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
