/*
 * dns_wire.h - reading DNS messages (RFC 1035 4.1): names, with compression pointers, and the
 * records of the answer section, as host names fit for the rest of the relay.
 *
 * Invariants: every offset is checked against the length before it is read; compression
 * pointers are followed only to earlier offsets, so a hostile packet cannot loop.
 * Ownership: results point into the caller's packet and live as long as it does.
 * Thread: any. Pure.
 */
#ifndef HK_DNS_WIRE_H
#define HK_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/common.h"

#define DNS_WIRE_CLASS_IN 1
/* RFC 1035 2.3.4: 255 octets on the wire, so at most 253 characters written out. */
#define DNS_WIRE_HOST_MAX 253

/* One record's data: p[off..off+len), inside a whole message (ptr_ok) or on its own. */
struct dns_rdata {
	const uint8_t *p;
	size_t p_len;
	size_t off, len;
	bool ptr_ok;
};

/* A walk over the answer section of one message. */
struct dns_wire_answers {
	const uint8_t *p;
	size_t len;
	size_t off;    /* next record */
	unsigned left; /* answer records not yet read */
};

/* Big-endian 16 bits at p. */
static inline unsigned
dns_wire_be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* A byte a host name label may hold: letters, digits, "-", and "_" (service labels). */
bool dns_wire_is_label_char(unsigned char c);

/*
 * Read the name at off of p[0..len) into out (size > DNS_WIRE_HOST_MAX): lower case, no
 * trailing dot, "." for the root. With ptr_ok, compression pointers are followed. -1 when
 * malformed, too long, or a label holds a byte a host name cannot have.
 */
HK_MUST_CHECK int dns_wire_name(const uint8_t *p, size_t len, size_t off, bool ptr_ok, char *out,
    size_t size);

/*
 * Check the header, question and answer sections of the message pkt[0..len) and start a walk
 * over its answers. -1 when any part of them is malformed (nothing then is to be trusted).
 */
HK_MUST_CHECK int dns_wire_answers_open(struct dns_wire_answers *w, const void *pkt, size_t len);
/* The next answer record of type rrtype and class IN into *rd; false at the end. */
bool dns_wire_answers_next(struct dns_wire_answers *w, unsigned rrtype, struct dns_rdata *rd);

#endif
