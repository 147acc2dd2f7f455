/*
 * spf.h - SPF records (RFC 7208): the parser and the count of DNS-querying terms.
 *
 * A record is "v=spf1" followed by terms separated by spaces: mechanisms with an optional
 * qualifier (all, include, a, mx, ptr, ip4, ip6, exists) and modifiers (redirect=, exp=, and
 * unknown name=value ones, which are allowed and ignored). Domain specs are kept as written;
 * one holding a macro ("%{d}") cannot be followed without a message and is flagged.
 * Ownership: struct spf_record is a plain value, no pointers.
 * Thread: any. Pure.
 */
#ifndef HK_SPF_H
#define HK_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPF_MAX_TERMS 64
#define SPF_DOMAIN_MAX 256
/* RFC 7208 4.6.4: at most 10 terms that query DNS, counted through include and redirect. */
#define SPF_LOOKUP_LIMIT 10

enum spf_mech {
	SPF_MECH_ALL = 0,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	char qual;                      /* '+', '-', '~' or '?' */
	char domain[SPF_DOMAIN_MAX];    /* include/exists target, a/mx/ptr domain ("": current) */
	bool has_macro;                 /* domain holds "%": cannot be followed here */
	uint8_t addr[16];               /* ip4 (first 4 bytes) / ip6 */
	unsigned prefix;                /* ip4/ip6 prefix; a/mx: IPv4 prefix (default 32) */
	unsigned prefix6;               /* a/mx: IPv6 prefix (default 128) */
};

struct spf_record {
	size_t n;
	struct spf_term terms[SPF_MAX_TERMS];
	char redirect[SPF_DOMAIN_MAX];  /* "": none */
	bool redirect_macro;
	bool has_exp;
};

enum spf_parse_result {
	SPF_PARSE_OK = 0,
	SPF_PARSE_NOT_SPF, /* not "v=spf1" (another TXT record) */
	SPF_PARSE_BAD,     /* an SPF record with a syntax error: receivers see permerror */
};

/* True when the TXT text is an SPF record: "v=spf1" alone or followed by a space (4.5). */
bool spf_is_record(const char *txt, size_t len);

/*
 * Parse an SPF record. SPF_PARSE_BAD with *why (static, plain words) naming the problem and
 * *bad_off (may be NULL) the offset of the offending term within txt.
 */
enum spf_parse_result spf_parse(const char *txt, size_t len, struct spf_record *out,
    const char **why, size_t *bad_off);

/* The DNS-querying terms of this record alone: include, a, mx, ptr, exists, and redirect. */
unsigned spf_record_lookups(const struct spf_record *r);

/* True when the term is ip4/ip6 and the address (4 or 16 bytes, by family) is inside it. */
bool spf_term_has_ip(const struct spf_term *t, const uint8_t *addr, bool v6);

/* True when addr (4 or 16 bytes) is inside addr/prefix of the same family. */
bool spf_cidr_match(const uint8_t *net, unsigned prefix, const uint8_t *addr, bool v6);

#endif
