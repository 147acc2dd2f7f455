/*
 * num.h - parsing numbers that come from outside (SMTP, config, HTTP, files).
 *
 * Digits only: no sign, no spaces, no base prefixes, an explicit maximum. Units for durations
 * (s m h d), sizes (K M G, powers of 1024) and rates (N/s N/m N/h).
 * Thread: any. Pure.
 */
#ifndef HK_NUM_H
#define HK_NUM_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define HK_SIZE_MAX ((uint64_t)1 << 50)

/* Parse s[0..n) as a decimal number <= max. -1 on empty input, a non-digit or overflow. */
HK_MUST_CHECK int num_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);
/* Same, stopping at the NUL. */
HK_MUST_CHECK int num_parse_u64z(const char *s, uint64_t max, uint64_t *out);
/* Parse a hex number of 1..16 digits (either case). */
HK_MUST_CHECK int num_parse_hex64(const char *s, size_t n, uint64_t *out);
/* *out = a + b; -1 on overflow. */
static inline HK_MUST_CHECK int
num_add_size(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}
/* "30s", "5m", "2h", "5d", "250ms" -> milliseconds. A bare number means seconds. */
HK_MUST_CHECK int num_parse_duration_ms(const char *s, uint64_t *out);
/* "512K", "25M", "1G", "4096" -> bytes. */
HK_MUST_CHECK int num_parse_size(const char *s, uint64_t *out);
/* "10/s", "600/m", "100/h" -> count and period in milliseconds. */
HK_MUST_CHECK int num_parse_rate(const char *s, uint64_t *count, uint64_t *period_ms);

#endif
