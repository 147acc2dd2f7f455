/* smtpc_body.c - dot-stuffing and line-end repair of an outgoing DATA body. */
#include <string.h>

#include "smtpc_body.h"
#include "../util/poison.h"

void
smtpc_body_init(struct smtpc_body *b, const char *p, size_t len)
{
	b->p = p;
	b->len = len;
	b->off = 0;
	b->bol = true;
	b->done = false;
}

bool
smtpc_body_next(struct smtpc_body *b, struct buf *out, size_t max)
{
	size_t start = b->off;

	if (b->done)
		return true;
	if (max == 0)
		max = 1;
	while (b->off < b->len && b->off - start < max) {
		const char *p = b->p + b->off;
		size_t left = b->len - b->off, room = max - (b->off - start);
		size_t scan = left < room ? left : room, n;
		const char *lf, *cr;

		/* RFC 5321 4.5.2: a leading dot is doubled on the wire. */
		if (b->bol && *p == '.')
			buf_putc(out, '.');
		b->bol = false;
		lf = memchr(p, '\n', scan);
		n = lf ? (size_t)(lf - p) : scan;
		cr = memchr(p, '\r', n);
		if (cr)
			n = (size_t)(cr - p);
		buf_append(out, p, n);
		b->off += n;
		if (lf == NULL && cr == NULL)
			continue;
		/* A line end: CRLF as is; a bare CR or LF becomes CRLF (no smuggling out). */
		if (b->p[b->off] == '\r' && b->off + 1 < b->len && b->p[b->off + 1] == '\n')
			b->off += 2;
		else
			b->off += 1;
		buf_append(out, "\r\n", 2);
		b->bol = true;
	}
	if (b->off < b->len)
		return false;
	if (!b->bol)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
	b->done = true;
	return true;
}
