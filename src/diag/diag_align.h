/*
 * diag_align.h - DMARC relaxed alignment (RFC 7489 3.1) by organizational domain, and the SPF
 * include each well-known upstream provider needs.
 *
 * The organizational domain is the registrable domain under the Public Suffix List (libpsl's
 * built-in list; without one, the last two labels).
 * Thread: any. Pure (libpsl's built-in data is in memory).
 */
#ifndef HK_DIAG_ALIGN_H
#define HK_DIAG_ALIGN_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct conf_route;

/* The organizational domain of domain (lower case) into out; -1 when it does not fit. */
int diag_align_org_domain(const char *domain, char *out, size_t size);
/* Relaxed alignment: both domains have the same organizational domain (case-insensitive). */
bool diag_align_is_aligned(const char *a, const char *b);
/* The domain part of an address ("user@Example.COM" -> "Example.COM"); NULL without "@". */
const char *diag_align_addr_domain(const char *addr);

/* The SPF include a provider's submission host needs, e.g. smtp.gmail.com -> _spf.google.com. */
struct diag_provider {
	const char *host_suffix; /* matched against the end of the upstream host, at a dot */
	const char *name;
	const char *spf_include;
};
/* The provider of host, or NULL when it is not a known one. */
const struct diag_provider *diag_align_provider(const char *host);

/*
 * The route mail from sender_domain takes: the first route whose match.sender_domain lists it
 * or has no sender_domain list (other match keys are ignored here). NULL when none.
 */
const struct conf_route *diag_align_route(const struct conf *c, const char *sender_domain);

/*
 * The From: check before sending: when the route of from_domain starts with an upstream that
 * authenticates (username with a domain), true and a sentence in why (for logs and the API)
 * when from_domain cannot align with that account's domain. False when aligned, unknown, or
 * the route goes direct to MX.
 */
bool diag_align_from_is_unaligned(const struct conf *c, const char *from_domain, char *why,
    size_t size);

#endif
