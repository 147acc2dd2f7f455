/*
 * smtpc_body.h - the DATA body as it goes on the wire (private to smtpc).
 *
 * RFC 5321 4.5.2: a line starting with "." gets another "."; every line ends in CRLF (a bare CR
 * or LF is sent as CRLF, so nothing we emit can end DATA early on a lenient server); a body not
 * ending in a line end gets one; then ".\r\n" ends the data.
 * Ownership: the body bytes are borrowed for the life of the struct. Pure. Thread: any.
 */
#ifndef HK_SMTPC_BODY_H
#define HK_SMTPC_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"

struct smtpc_body {
	const char *p;
	size_t len;
	size_t off;  /* next source byte */
	bool bol;    /* off is at the start of a line */
	bool done;   /* the final ".\r\n" was produced */
};

void smtpc_body_init(struct smtpc_body *b, const char *p, size_t len);
/*
 * Append about max source bytes (at least one, a line end may run two over) of the body to out,
 * dot-stuffed; after the last byte append the missing line end and ".\r\n". Returns true once the
 * end was appended (later calls append nothing).
 */
bool smtpc_body_next(struct smtpc_body *b, struct buf *out, size_t max);

#endif
