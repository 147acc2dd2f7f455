/*
 * conn.h - helpers for line-based protocols on libevent buffers: bounded line reading and
 * timeouts.
 *
 * Invariant: conn_line_read() never looks further than max_line + 2 bytes for an end of line, so
 * a peer cannot make us buffer or scan an unbounded line; an over-long line is drained as it
 * arrives and reported once, when its end is seen.
 * Thread: loop thread (the evbuffer belongs to a bufferevent of the loop).
 */
#ifndef HK_CONN_H
#define HK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "../util/buf.h"

enum conn_line_result {
	CONN_LINE_MORE = 0, /* no complete line yet (an over-long line may be being drained) */
	CONN_LINE_OK,       /* one line ending in CRLF, returned without the CRLF */
	CONN_LINE_BARE_LF,  /* one line ending in LF without CR, returned without the LF */
	CONN_LINE_TOO_LONG, /* a line longer than max_line ended; it was discarded */
};

struct conn_lines {
	size_t max_line; /* bytes without the CRLF */
	bool skipping;   /* draining an over-long line */
};

void conn_lines_init(struct conn_lines *cl, size_t max_line);
/* Take the next line from in into out (replacing out's contents). */
enum conn_line_result conn_line_read(struct conn_lines *cl, struct evbuffer *in, struct buf *out);
/* Forget any partial over-long line (after a buffer was discarded, as at STARTTLS). */
void conn_lines_reset(struct conn_lines *cl);

/* Set the read timeout (ms; 0 = none) and a write timeout of the same length. */
void conn_set_timeout(struct bufferevent *bev, uint64_t ms);

#endif
