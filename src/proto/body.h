/*
 * body.h - the DATA scanner (RFC 5321 4.1.1.4, 4.5.2): turns the wire stream after DATA into the
 * canonical body (CRLF lines, dot-unstuffed) and finds the end of data.
 *
 * Only CRLF "." CRLF ends the data (the initial CRLF may be the one ending the DATA command
 * itself: the scanner starts "at the beginning of a line"). A bare LF or a bare CR anywhere in the
 * data spoils the transaction (SMTP smuggling defence): the scanner keeps reading to the real end
 * and reports it, so the server can reply 554 5.6.11 and discard. Lines longer than max_line
 * (excluding CRLF) are reported the same way with their own flag.
 * Output: appended to the caller's buffer; nothing is appended once the body exceeds max_size
 * (the flag says so; the scanner still finds the end). max_size 0 and max_line 0 mean no limit.
 * The output never holds a bare CR or LF: in spoiled data each bare CR or LF is written as CRLF
 * (it does not start a line for end-of-data or dot purposes).
 * Pure. Thread: any.
 */
#ifndef HK_BODY_H
#define HK_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

enum body_scan_result {
	BODY_SCAN_MORE = 0, /* all input consumed; need more */
	BODY_SCAN_DONE,     /* end of data found; *consumed says how much input belonged to DATA */
};

#define BODY_FLAG_BARE_LF 0x1u
#define BODY_FLAG_BARE_CR 0x2u
#define BODY_FLAG_TOO_BIG 0x4u
#define BODY_FLAG_LONG_LINE 0x8u
#define BODY_FLAG_8BIT 0x10u /* a byte >= 0x80 was seen */
#define BODY_FLAG_NUL 0x20u

struct body_scan {
	int state;        /* internal */
	unsigned flags;   /* BODY_FLAG_* seen so far */
	uint64_t size;    /* canonical body bytes so far (counted even past max_size) */
	uint64_t max_size;
	size_t max_line;
	size_t line_len;  /* bytes in the current line */
	bool done;
};

void body_scan_init(struct body_scan *sc, uint64_t max_size, size_t max_line);
/*
 * Consume in[0..len), appending canonical body bytes to out. Returns BODY_SCAN_DONE when the
 * terminating CRLF.CRLF was consumed (bytes after it are left: *consumed < len), else
 * BODY_SCAN_MORE with *consumed == len. Calling it again after DONE is a bug (assertion).
 */
enum body_scan_result body_scan_feed(struct body_scan *sc, const char *in, size_t len,
    struct buf *out, size_t *consumed);
bool body_scan_is_done(const struct body_scan *sc);

/*
 * BDAT chunks are raw (no dot-stuffing, RFC 3030): check a chunk for bare CR/LF and long lines
 * and append it. Same flags and size accounting; call body_chunk_finish() after the LAST chunk
 * (a final line without CRLF is flagged BODY_FLAG_BARE_LF, a final lone CR BODY_FLAG_BARE_CR;
 * neither is appended). body_scan_is_done() is true after body_chunk_finish().
 */
void body_chunk_feed(struct body_scan *sc, const char *in, size_t len, struct buf *out);
void body_chunk_finish(struct body_scan *sc);

#endif
