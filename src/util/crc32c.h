/*
 * crc32c.h - CRC-32C (Castagnoli), the envelope checksum.
 * Thread: any. Pure.
 */
#ifndef HK_CRC32C_H
#define HK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over p[0..n); start with crc = 0. crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
