/*
 * taglist.c - tag=value lists (RFC 6376 3.2).
 */
#include <string.h>

#include "taglist.h"
#include "../util/poison.h"

void
taglist_init(struct taglist *tl, const char *p, size_t len)
{
	tl->p = p;
	tl->len = len;
	tl->off = 0;
}

static bool
taglist_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
taglist_next(struct taglist *tl, struct taglist_tag *t, const char **why)
{
	const char *p = tl->p;
	size_t i = tl->off, end, e;

	for (;;) {
		while (i < tl->len && taglist_is_ws(p[i]))
			i++;
		if (i == tl->len) {
			tl->off = i;
			return 0;
		}
		if (p[i] != ';')
			break;
		/* Empty spec between two ";": tolerated, as common records have "; ;". */
		i++;
	}
	for (end = i; end < tl->len && p[end] != ';'; end++)
		;
	tl->off = end < tl->len ? end + 1 : end;
	for (e = i; e < end && p[e] != '='; e++)
		;
	if (e == end) {
		*why = "a tag without \"=\"";
		return -1;
	}
	t->name = p + i;
	t->name_len = e - i;
	while (t->name_len > 0 && taglist_is_ws(t->name[t->name_len - 1]))
		t->name_len--;
	if (t->name_len == 0) {
		*why = "a tag without a name";
		return -1;
	}
	for (size_t k = 0; k < t->name_len; k++) {
		char c = t->name[k];

		/* RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC (letters, digits, "_"). */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (k > 0 && c >= '0' && c <= '9'))) {
			*why = "a tag name holds a byte a tag name cannot have";
			return -1;
		}
	}
	e++;
	while (e < end && taglist_is_ws(p[e]))
		e++;
	t->value = p + e;
	t->value_len = end - e;
	while (t->value_len > 0 && taglist_is_ws(t->value[t->value_len - 1]))
		t->value_len--;
	return 1;
}
