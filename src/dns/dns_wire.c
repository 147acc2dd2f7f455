/*
 * dns_wire.c - reading DNS messages: names with compression pointers, answer records.
 */
#include <string.h>

#include "dns_wire.h"
#include "../util/poison.h"

bool
dns_wire_is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

int
dns_wire_name(const uint8_t *p, size_t len, size_t off, bool ptr_ok, char *out, size_t size)
{
	size_t o = off, n = 0;

	HK_ASSERT(size > DNS_WIRE_HOST_MAX);
	for (;;) {
		unsigned c;
		size_t i;

		if (o >= len)
			return -1;
		c = p[o];
		if ((c & 0xc0) == 0xc0) {
			size_t to;

			/* RFC 1035 4.1.4: a pointer to an earlier occurrence of the rest. */
			if (!ptr_ok || o + 1 >= len)
				return -1;
			to = (size_t)(c & 0x3f) << 8 | p[o + 1];
			if (to >= o)
				return -1;
			o = to;
			continue;
		}
		if ((c & 0xc0) != 0)
			return -1; /* extended label types (RFC 6891 4) are not in use */
		if (c == 0)
			break;
		if (o + 1 + c > len || n + (n > 0) + c > DNS_WIRE_HOST_MAX)
			return -1;
		if (n > 0)
			out[n++] = '.';
		for (i = 0; i < c; i++) {
			unsigned char ch = p[o + 1 + i];

			if (!dns_wire_is_label_char(ch))
				return -1;
			out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		}
		o += 1 + c;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return 0;
}

/* Skip the name at *off: its labels up to the root label or a pointer, which ends it. */
static int
dns_wire_skip_name(const uint8_t *p, size_t len, size_t *off)
{
	size_t o = *off;

	for (;;) {
		if (o >= len)
			return -1;
		if ((p[o] & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return -1;
			*off = o + 2;
			return 0;
		}
		if ((p[o] & 0xc0) != 0)
			return -1;
		if (p[o] == 0) {
			*off = o + 1;
			return 0;
		}
		o += 1 + (size_t)p[o];
	}
}

int
dns_wire_answers_open(struct dns_wire_answers *w, const void *pkt, size_t len)
{
	const uint8_t *p = pkt;
	size_t off = 12;
	unsigned qd, an, i;

	memset(w, 0, sizeof(*w));
	if (p == NULL || len < 12)
		return -1;
	qd = dns_wire_be16(p + 4);
	an = dns_wire_be16(p + 6);
	for (i = 0; i < qd; i++) {
		if (dns_wire_skip_name(p, len, &off) == -1 || off + 4 > len)
			return -1;
		off += 4;
	}
	w->off = off;
	for (i = 0; i < an; i++) {
		if (dns_wire_skip_name(p, len, &off) == -1 || off + 10 > len)
			return -1;
		off += 10 + dns_wire_be16(p + off + 8);
		if (off > len)
			return -1;
	}
	w->p = p;
	w->len = len;
	w->left = an;
	return 0;
}

bool
dns_wire_answers_next(struct dns_wire_answers *w, unsigned rrtype, struct dns_rdata *rd)
{
	/* dns_wire_answers_open() checked every offset read here. */
	while (w->left > 0) {
		unsigned type, cls, rdlen;

		w->left--;
		if (dns_wire_skip_name(w->p, w->len, &w->off) == -1)
			return false;
		type = dns_wire_be16(w->p + w->off);
		cls = dns_wire_be16(w->p + w->off + 2);
		rdlen = dns_wire_be16(w->p + w->off + 8);
		w->off += 10;
		*rd = (struct dns_rdata){ .p = w->p, .p_len = w->len, .off = w->off, .len = rdlen,
			.ptr_ok = true };
		w->off += rdlen;
		if (type == rrtype && cls == DNS_WIRE_CLASS_IN)
			return true;
	}
	return false;
}
