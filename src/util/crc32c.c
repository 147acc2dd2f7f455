/* crc32c.c - table-driven CRC-32C (reflected polynomial 0x82F63B78). */
#include <pthread.h>

#include "crc32c.h"
#include "poison.h"

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

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
	const unsigned char *c = p;

	/*
	 * Once for the process: a thread that saw a partly built table (another thread still
	 * filling it) would compute a wrong checksum and send a good envelope to corrupt/.
	 */
	pthread_once(&crc32c_once, crc32c_make_table);
	crc = ~crc;
	while (n--)
		crc = crc32c_table[(crc ^ *c++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
