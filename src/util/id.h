/*
 * id.h - queue IDs: 64 bits, time-ordered.
 *
 * Layout: 44 bits of milliseconds since 2020-01-01 UTC, 8 bits node, 12 bits sequence. Printed as
 * 16 upper-case hex digits everywhere. IDs never go backwards, even when the clock does: a clock
 * step back reuses the last millisecond and advances the sequence, borrowing the next millisecond
 * when the sequence is exhausted.
 * Thread: the generator is loop-only; format/parse are pure.
 */
#ifndef HK_ID_H
#define HK_ID_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define ID_EPOCH_MS 1577836800000ULL /* 2020-01-01T00:00:00Z */
#define ID_HEX_LEN 16

struct id_gen {
	uint64_t last_ms; /* milliseconds since ID_EPOCH_MS of the last ID */
	unsigned seq;
	unsigned node;
};

void id_gen_init(struct id_gen *g, unsigned node);
/* Make every later ID greater than id (used with IDs found in the spool at start). */
void id_gen_observe(struct id_gen *g, uint64_t id);
/* Next ID for wall-clock time now_ms (ms since the Unix epoch). */
uint64_t id_gen_next(struct id_gen *g, uint64_t now_ms);
/* Write 16 upper-case hex digits and a NUL into out. */
void id_format(uint64_t id, char out[ID_HEX_LEN + 1]);
/* Parse exactly 16 hex digits (either case). */
HK_MUST_CHECK int id_parse(const char *s, size_t n, uint64_t *out);
/* Milliseconds since the Unix epoch encoded in id. */
uint64_t id_time_ms(uint64_t id);

#endif
