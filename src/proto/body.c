/*
 * body.c - DATA scanner and BDAT chunk checker.
 *
 * Hot path: inside a line the scanner looks for the next CR with memchr, checks the run before it
 * for LF with memchr, and copies the run (with its CRLF when both are in this feed) in one
 * buf_append. Per-byte work is only the 8-bit/NUL check, done a word at a time and skipped once
 * both flags are set.
 * Spoiled data (bare CR or LF) still yields CRLF-only output: each bare CR or LF is written as
 * CRLF, but it never puts the scanner at the start of a line, so it can neither end the data nor
 * unstuff a dot.
 */
#include <string.h>

#include "body.h"
#include "../util/poison.h"

enum body_state {
	BODY_ST_BOL = 0, /* at the start of a line: after a real CRLF, or at the start */
	BODY_ST_DOT,     /* start of line, then "." */
	BODY_ST_DOT_CR,  /* start of line, then ".\r" */
	BODY_ST_MID,     /* inside a line */
	BODY_ST_CR,      /* inside a line, then "\r" */
	BODY_ST_DONE,
};

static const char body_crlf[2] = { '\r', '\n' };

void
body_scan_init(struct body_scan *sc, uint64_t max_size, size_t max_line)
{
	memset(sc, 0, sizeof(*sc));
	sc->state = BODY_ST_BOL;
	sc->max_size = max_size;
	sc->max_line = max_line;
}

bool
body_scan_is_done(const struct body_scan *sc)
{
	return sc->done;
}

/* Flag 8-bit and NUL bytes in p[0..n), a word at a time. */
static void
body_check_bytes(struct body_scan *sc, const char *p, size_t n)
{
	const uint64_t high = 0x8080808080808080ull, ones = 0x0101010101010101ull;
	size_t i = 0;

	if ((sc->flags & (BODY_FLAG_8BIT | BODY_FLAG_NUL)) == (BODY_FLAG_8BIT | BODY_FLAG_NUL))
		return;
	if (!(sc->flags & BODY_FLAG_8BIT)) {
		for (; i + 8 <= n; i += 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if (w & high)
				break;
		}
		for (; i < n; i++) {
			if ((unsigned char)p[i] >= 0x80) {
				sc->flags |= BODY_FLAG_8BIT;
				break;
			}
		}
	}
	if (!(sc->flags & BODY_FLAG_NUL)) {
		for (i = 0; i + 8 <= n; i += 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if ((w - ones) & ~w & high)
				break;
		}
		if (memchr(p + i, '\0', n - i) != NULL)
			sc->flags |= BODY_FLAG_NUL;
	}
}

/* Count n canonical bytes and append them unless the body is already too big. */
static inline void
body_emit(struct body_scan *sc, struct buf *out, const char *p, size_t n)
{
	uint64_t size;

	if (__builtin_add_overflow(sc->size, (uint64_t)n, &size))
		size = UINT64_MAX;
	sc->size = size;
	if (sc->max_size != 0 && size > sc->max_size)
		sc->flags |= BODY_FLAG_TOO_BIG;
	if (!(sc->flags & BODY_FLAG_TOO_BIG))
		buf_append(out, p, n);
}

/* Text bytes of the current line (no CR/LF among them). */
static inline void
body_text(struct body_scan *sc, struct buf *out, const char *p, size_t n)
{
	if (n == 0)
		return;
	body_check_bytes(sc, p, n);
	sc->line_len += n;
	if (sc->max_line != 0 && sc->line_len > sc->max_line)
		sc->flags |= BODY_FLAG_LONG_LINE;
	body_emit(sc, out, p, n);
}

/* A line break: CRLF when real, or a bare CR/LF (flagged) written as CRLF all the same. */
static inline void
body_break(struct body_scan *sc, struct buf *out, unsigned bare_flag)
{
	sc->flags |= bare_flag;
	sc->line_len = 0;
	body_emit(sc, out, body_crlf, 2);
}

/*
 * Scan text in a line starting at in[i]: copy up to the next CR or LF and handle it. Returns
 * the new index and sets sc->state. bol_state is the state after a real CRLF: BODY_ST_BOL for
 * DATA, BODY_ST_MID for BDAT (no dot handling).
 */
static size_t
body_scan_run(struct body_scan *sc, const char *in, size_t len, size_t i, struct buf *out,
    int bol_state)
{
	const char *p = in + i, *cr, *lf, *stop;
	size_t n = len - i, run;

	cr = memchr(p, '\r', n);
	lf = memchr(p, '\n', cr != NULL ? (size_t)(cr - p) : n);
	stop = lf != NULL ? lf : cr;
	if (stop == NULL) {
		body_text(sc, out, p, n);
		sc->state = BODY_ST_MID;
		return len;
	}
	run = (size_t)(stop - p);
	if (stop == lf) {
		/* LF without CR before it. */
		body_text(sc, out, p, run);
		body_break(sc, out, BODY_FLAG_BARE_LF);
		sc->state = BODY_ST_MID;
		return i + run + 1;
	}
	if (run + 1 == n) {
		/* CR at the end of this feed: the next one decides. */
		body_text(sc, out, p, run);
		sc->state = BODY_ST_CR;
		return len;
	}
	if (stop[1] != '\n') {
		body_text(sc, out, p, run);
		body_break(sc, out, BODY_FLAG_BARE_CR);
		sc->state = BODY_ST_MID;
		return i + run + 1;
	}
	/* The common case: a whole line and its CRLF, copied in one go. */
	if (run > 0) {
		body_check_bytes(sc, p, run);
		sc->line_len += run;
		if (sc->max_line != 0 && sc->line_len > sc->max_line)
			sc->flags |= BODY_FLAG_LONG_LINE;
	}
	sc->line_len = 0;
	body_emit(sc, out, p, run + 2);
	sc->state = bol_state;
	return i + run + 2;
}

enum body_scan_result
body_scan_feed(struct body_scan *sc, const char *in, size_t len, struct buf *out,
    size_t *consumed)
{
	size_t i = 0;

	HK_ASSERT(!sc->done);
	while (i < len) {
		char c = in[i];

		switch (sc->state) {
		case BODY_ST_BOL:
			if (c == '.') {
				sc->state = BODY_ST_DOT;
				i++;
			} else {
				i = body_scan_run(sc, in, len, i, out, BODY_ST_BOL);
			}
			break;
		case BODY_ST_DOT:
			if (c == '\r') {
				sc->state = BODY_ST_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* "\r\n.\n" is not the end (smuggling); keep the dot as text. */
				body_text(sc, out, ".", 1);
				body_break(sc, out, BODY_FLAG_BARE_LF);
				sc->state = BODY_ST_MID;
				i++;
			} else {
				/*
				 * RFC 5321 4.5.2: a line starting with "." and having more characters
				 * loses the first one, so ".." gives "." and ".x" gives "x".
				 */
				i = body_scan_run(sc, in, len, i, out, BODY_ST_BOL);
			}
			break;
		case BODY_ST_DOT_CR:
			if (c == '\n') {
				sc->state = BODY_ST_DONE;
				sc->done = true;
				*consumed = i + 1;
				return BODY_SCAN_DONE;
			}
			/* "\r\n.\r" then not LF: the CR is bare; the byte is looked at again. */
			body_break(sc, out, BODY_FLAG_BARE_CR);
			sc->state = BODY_ST_MID;
			break;
		case BODY_ST_MID:
			i = body_scan_run(sc, in, len, i, out, BODY_ST_BOL);
			break;
		case BODY_ST_CR:
			if (c == '\n') {
				body_break(sc, out, 0);
				sc->state = BODY_ST_BOL;
				i++;
			} else {
				body_break(sc, out, BODY_FLAG_BARE_CR);
				sc->state = BODY_ST_MID;
			}
			break;
		default:
			hk_panic("body scanner in state %d", sc->state);
		}
	}
	*consumed = len;
	return BODY_SCAN_MORE;
}

void
body_chunk_feed(struct body_scan *sc, const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	HK_ASSERT(!sc->done);
	while (i < len) {
		if (sc->state == BODY_ST_CR) {
			if (in[i] == '\n') {
				body_break(sc, out, 0);
				i++;
			} else {
				body_break(sc, out, BODY_FLAG_BARE_CR);
			}
			sc->state = BODY_ST_MID;
			continue;
		}
		/* RFC 3030 2: chunks are raw; no dot-stuffing and no terminator. */
		i = body_scan_run(sc, in, len, i, out, BODY_ST_MID);
	}
}

void
body_chunk_finish(struct body_scan *sc)
{
	HK_ASSERT(!sc->done);
	/*
	 * A missing final CRLF spoils the message; a pending CR was never written, so the output
	 * still holds no bare CR or LF.
	 */
	if (sc->state == BODY_ST_CR)
		sc->flags |= BODY_FLAG_BARE_CR;
	else if (sc->line_len > 0)
		sc->flags |= BODY_FLAG_BARE_LF;
	sc->state = BODY_ST_DONE;
	sc->done = true;
}
