/*
 * addr.h - RFC 5321 4.1.2 mailbox syntax (with RFC 6531 UTF-8 when allowed).
 *
 * Mailbox = Local-part "@" ( Domain / address-literal ); Local-part = Dot-string / Quoted-string.
 * Pure; results point into the caller's input.
 * Thread: any.
 */
#ifndef HK_ADDR_H
#define HK_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_ALLOW_UTF8 0x1u     /* RFC 6531: UTF-8 in local part and domain */
#define ADDR_ALLOW_NO_DOMAIN 0x2u /* accept "postmaster" without a domain (RCPT only) */
#define ADDR_ALLOW_UNDERSCORE 0x4u /* '_' in domain labels (addr_parse_domain for HELO/EHLO) */

enum addr_result {
	ADDR_OK = 0,
	ADDR_EMPTY,
	ADDR_BAD_LOCAL,
	ADDR_BAD_DOMAIN,
	ADDR_TOO_LONG, /* local part > 64 octets, domain > 255, whole > 254 (RFC 5321 4.5.3.1) */
	ADDR_UTF8_NOT_ALLOWED,
};

struct addr_parts {
	const char *local; /* as written, quotes included */
	size_t local_len;
	const char *domain; /* NULL only with ADDR_ALLOW_NO_DOMAIN */
	size_t domain_len;
	bool local_quoted;
	bool domain_literal; /* [1.2.3.4] or [IPv6:...] */
	bool has_utf8;
	bool has_percent;   /* '%' in the local part: old-style relay routing */
	bool has_bang;      /* '!' in the local part: UUCP-style routing */
};

/*
 * Parse the mailbox s[0..len) (no angle brackets). On ADDR_OK out describes it; on failure *why
 * (when why is not NULL) gets a static explanation. UTF-8 must be well-formed and is accepted only
 * with ADDR_ALLOW_UTF8. Only IPv4 and IPv6 address literals are accepted.
 */
enum addr_result addr_parse(const char *s, size_t len, unsigned flags, struct addr_parts *out,
    const char **why);
/*
 * Parse a bare Domain or address-literal (HELO/EHLO argument, source-route hop). Flags:
 * ADDR_ALLOW_UTF8 (U-labels), ADDR_ALLOW_UNDERSCORE. *literal (when not NULL) tells whether it
 * was an address literal. ADDR_TOO_LONG above 255 octets or a label above 63.
 */
enum addr_result addr_parse_domain(const char *s, size_t len, unsigned flags, bool *literal,
    const char **why);

#endif
