/* id.c - time-ordered queue IDs. */
#include "id.h"
#include "num.h"
#include "poison.h"

#define ID_SEQ_BITS 12
#define ID_NODE_BITS 8
#define ID_SEQ_MAX ((1u << ID_SEQ_BITS) - 1)

void
id_gen_init(struct id_gen *g, unsigned node)
{
	g->last_ms = 0;
	g->seq = 0;
	g->node = node & 0xffu;
}

void
id_gen_observe(struct id_gen *g, uint64_t id)
{
	uint64_t ms = id >> (ID_SEQ_BITS + ID_NODE_BITS);
	unsigned node = (unsigned)(id >> ID_SEQ_BITS) & ((1u << ID_NODE_BITS) - 1);
	unsigned seq = (unsigned)(id & ID_SEQ_MAX);

	if (ms < g->last_ms)
		return;
	/*
	 * An ID of a higher node (a spool moved between nodes) sorts above all of ours in its
	 * millisecond, whatever our sequence: only the next millisecond is safe, so mark this one
	 * as used up.
	 */
	if (node > g->node)
		seq = ID_SEQ_MAX;
	if (ms > g->last_ms || seq > g->seq) {
		g->last_ms = ms;
		g->seq = seq;
	}
}

uint64_t
id_gen_next(struct id_gen *g, uint64_t now_ms)
{
	uint64_t ms = now_ms > ID_EPOCH_MS ? now_ms - ID_EPOCH_MS : 0;

	if (ms > g->last_ms) {
		g->last_ms = ms;
		g->seq = 0;
	} else if (g->seq < ID_SEQ_MAX) {
		g->seq++;
	} else {
		g->last_ms++;
		g->seq = 0;
	}
	return (g->last_ms << (ID_SEQ_BITS + ID_NODE_BITS)) | ((uint64_t)g->node << ID_SEQ_BITS) |
	    g->seq;
}

void
id_format(uint64_t id, char out[ID_HEX_LEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	int i;

	for (i = ID_HEX_LEN - 1; i >= 0; i--) {
		out[i] = hex[id & 15];
		id >>= 4;
	}
	out[ID_HEX_LEN] = '\0';
}

int
id_parse(const char *s, size_t n, uint64_t *out)
{
	if (n != ID_HEX_LEN)
		return -1;
	return num_parse_hex64(s, n, out);
}

uint64_t
id_time_ms(uint64_t id)
{
	return (id >> (ID_SEQ_BITS + ID_NODE_BITS)) + ID_EPOCH_MS;
}
