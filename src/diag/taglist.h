/*
 * taglist.h - "tag=value; tag=value" lists (RFC 6376 3.2), as DKIM key records and DMARC
 * records (RFC 7489 6.4) are written.
 *
 * Whitespace around tags, "=" and values is skipped; a trailing ";" is allowed. Values are
 * borrowed slices of the input.
 * Thread: any. Pure.
 */
#ifndef HK_TAGLIST_H
#define HK_TAGLIST_H

#include <stdbool.h>
#include <stddef.h>

struct taglist {
	const char *p;
	size_t len, off;
};

struct taglist_tag {
	const char *name, *value;
	size_t name_len, value_len;
};

void taglist_init(struct taglist *tl, const char *p, size_t len);
/*
 * The next tag into *t: 1 when one was read, 0 at the end, -1 when malformed (no "=", an empty
 * or invalid name) with *why (static).
 */
int taglist_next(struct taglist *tl, struct taglist_tag *t, const char **why);

#endif
