/*
 * spf.c - SPF record syntax (RFC 7208 4.5, 5, 6, 12).
 */
#include <arpa/inet.h>
#include <string.h>

#include "../util/num.h"
#include "../util/str.h"
#include "spf.h"
#include "../util/poison.h"

bool
spf_is_record(const char *txt, size_t len)
{
	return len >= 6 && str_has_prefix_ci(txt, len, "v=spf1") && (len == 6 || txt[6] == ' ');
}

static bool
spf_eq(const char *p, size_t n, const char *word)
{
	return str_eq_ci(p, n, word);
}

/* A domain-spec (RFC 7208 7.1, 12): printable ASCII without space; macros kept as text. */
static int
spf_domain(const char *p, size_t n, struct spf_term *t, const char **why)
{
	size_t i;

	if (n == 0 || n >= sizeof(t->domain)) {
		*why = n == 0 ? "a mechanism names an empty domain" : "a domain is too long";
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f) {
			*why = "a domain holds a byte that is not printable ASCII";
			return -1;
		}
		if (c == '%')
			t->has_macro = true;
	}
	memcpy(t->domain, p, n);
	t->domain[n] = '\0';
	str_lower(t->domain);
	if (!t->has_macro && (strchr(t->domain, '.') == NULL || t->domain[0] == '.')) {
		*why = "a domain is not a fully qualified name";
		return -1;
	}
	return 0;
}

/* "/N" or "//N" or "/N//M" after a/mx; ip4/ip6 take one. p points after the domain. */
static int
spf_cidrs(const char *p, size_t n, struct spf_term *t, bool two, const char **why)
{
	uint64_t v;
	size_t i = 0, j;

	*why = "a CIDR length is malformed";
	if (n == 0)
		return 0;
	if (p[0] != '/')
		return -1;
	if (two && n >= 2 && p[1] == '/') {
		if (num_parse_u64(p + 2, n - 2, 128, &v) == -1)
			return -1;
		t->prefix6 = (unsigned)v;
		return 0;
	}
	for (j = 1; j < n && p[j] != '/'; j++)
		;
	if (num_parse_u64(p + 1, j - 1, 128, &v) == -1)
		return -1;
	t->prefix = (unsigned)v;
	i = j;
	if (i == n)
		return 0;
	if (!two || n - i < 3 || p[i + 1] != '/' ||
	    num_parse_u64(p + i + 2, n - i - 2, 128, &v) == -1)
		return -1;
	t->prefix6 = (unsigned)v;
	return 0;
}

static int
spf_ip(const char *p, size_t n, struct spf_term *t, bool v6, const char **why)
{
	char text[64];
	size_t slash;
	uint64_t v;

	for (slash = 0; slash < n && p[slash] != '/'; slash++)
		;
	*why = v6 ? "an ip6: address is malformed" : "an ip4: address is malformed";
	if (slash == 0 || slash >= sizeof(text))
		return -1;
	memcpy(text, p, slash);
	text[slash] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, text, t->addr) != 1)
		return -1;
	t->prefix = v6 ? 128 : 32;
	if (slash < n) {
		if (num_parse_u64(p + slash + 1, n - slash - 1, v6 ? 128 : 32, &v) == -1) {
			*why = "an ip4:/ip6: prefix length is malformed or too long";
			return -1;
		}
		t->prefix = (unsigned)v;
	}
	return 0;
}

/* One mechanism (qualifier already removed). */
static int
spf_mech(const char *p, size_t n, struct spf_term *t, const char **why)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = {
		{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE }, { "a", SPF_MECH_A },
		{ "mx", SPF_MECH_MX }, { "ptr", SPF_MECH_PTR }, { "ip4", SPF_MECH_IP4 },
		{ "ip6", SPF_MECH_IP6 }, { "exists", SPF_MECH_EXISTS },
	};
	size_t name_len, i;
	const char *rest;
	size_t rest_len;

	for (name_len = 0; name_len < n && p[name_len] != ':' && p[name_len] != '/'; name_len++)
		;
	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		if (spf_eq(p, name_len, mechs[i].name))
			break;
	}
	if (i == sizeof(mechs) / sizeof(mechs[0])) {
		*why = "unknown mechanism";
		return -1;
	}
	t->mech = mechs[i].mech;
	t->prefix = 32;
	t->prefix6 = 128;
	rest = p + name_len;
	rest_len = n - name_len;
	switch (t->mech) {
	case SPF_MECH_ALL:
		if (rest_len != 0) {
			*why = "\"all\" takes no argument";
			return -1;
		}
		return 0;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (rest_len < 2 || rest[0] != ':') {
			*why = "include: and exists: need a domain";
			return -1;
		}
		return spf_domain(rest + 1, rest_len - 1, t, why);
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (rest_len < 2 || rest[0] != ':') {
			*why = "ip4: and ip6: need an address";
			return -1;
		}
		return spf_ip(rest + 1, rest_len - 1, t, t->mech == SPF_MECH_IP6, why);
	case SPF_MECH_A:
	case SPF_MECH_MX:
	case SPF_MECH_PTR:
		if (rest_len > 0 && rest[0] == ':') {
			size_t d = 1;

			while (d < rest_len && rest[d] != '/')
				d++;
			if (spf_domain(rest + 1, d - 1, t, why) == -1)
				return -1;
			rest += d;
			rest_len -= d;
		}
		if (t->mech == SPF_MECH_PTR) {
			if (rest_len != 0) {
				*why = "\"ptr\" takes no CIDR length";
				return -1;
			}
			return 0;
		}
		if (spf_cidrs(rest, rest_len, t, true, why) == -1)
			return -1;
		if (t->prefix > 32) {
			*why = "an IPv4 CIDR length is over 32";
			return -1;
		}
		return 0;
	}
	return -1;
}

enum spf_parse_result
spf_parse(const char *txt, size_t len, struct spf_record *out, const char **why,
    size_t *bad_off)
{
	size_t i = 6;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (bad_off != NULL)
		*bad_off = 0;
	if (!spf_is_record(txt, len)) {
		*why = "not an SPF record";
		return SPF_PARSE_NOT_SPF;
	}
	while (i < len) {
		size_t start, n, eq;
		const char *p;

		while (i < len && txt[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && txt[i] != ' ')
			i++;
		p = txt + start;
		n = i - start;
		if (bad_off != NULL)
			*bad_off = start;
		for (eq = 0; eq < n && p[eq] != '=' && p[eq] != ':' && p[eq] != '/'; eq++)
			;
		if (eq < n && p[eq] == '=') {
			/* A modifier (RFC 7208 6); unknown ones are ignored (6: MUST ignore). */
			struct spf_term tmp;

			memset(&tmp, 0, sizeof(tmp));
			if (eq == 0) {
				*why = "a modifier has no name";
				return SPF_PARSE_BAD;
			}
			if (spf_eq(p, eq, "redirect")) {
				if (out->redirect[0] != '\0') {
					*why = "redirect= appears twice";
					return SPF_PARSE_BAD;
				}
				if (spf_domain(p + eq + 1, n - eq - 1, &tmp, why) == -1)
					return SPF_PARSE_BAD;
				memcpy(out->redirect, tmp.domain, sizeof(out->redirect));
				out->redirect_macro = tmp.has_macro;
			} else if (spf_eq(p, eq, "exp")) {
				if (out->has_exp) {
					*why = "exp= appears twice";
					return SPF_PARSE_BAD;
				}
				if (spf_domain(p + eq + 1, n - eq - 1, &tmp, why) == -1)
					return SPF_PARSE_BAD;
				out->has_exp = true;
			}
			continue;
		}
		if (out->n == SPF_MAX_TERMS) {
			*why = "too many terms";
			return SPF_PARSE_BAD;
		}
		{
			struct spf_term *t = &out->terms[out->n];

			memset(t, 0, sizeof(*t));
			t->qual = '+';
			if (p[0] == '+' || p[0] == '-' || p[0] == '~' || p[0] == '?') {
				t->qual = p[0];
				p++;
				n--;
			}
			if (n == 0 || spf_mech(p, n, t, why) == -1) {
				if (*why == NULL)
					*why = "a qualifier without a mechanism";
				return SPF_PARSE_BAD;
			}
			out->n++;
		}
	}
	if (bad_off != NULL)
		*bad_off = 0;
	return SPF_PARSE_OK;
}

unsigned
spf_record_lookups(const struct spf_record *r)
{
	unsigned n = r->redirect[0] != '\0';
	size_t i;

	for (i = 0; i < r->n; i++) {
		switch (r->terms[i].mech) {
		case SPF_MECH_INCLUDE:
		case SPF_MECH_A:
		case SPF_MECH_MX:
		case SPF_MECH_PTR:
		case SPF_MECH_EXISTS:
			n++;
			break;
		default:
			break;
		}
	}
	return n;
}

bool
spf_cidr_match(const uint8_t *net, unsigned prefix, const uint8_t *addr, bool v6)
{
	unsigned bits = v6 ? 128 : 32, full, rem;

	if (prefix > bits)
		return false;
	full = prefix / 8;
	rem = prefix % 8;
	if (memcmp(net, addr, full) != 0)
		return false;
	if (rem == 0)
		return true;
	return ((net[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rem))) == 0;
}

bool
spf_term_has_ip(const struct spf_term *t, const uint8_t *addr, bool v6)
{
	if (t->mech == SPF_MECH_IP4 && !v6)
		return spf_cidr_match(t->addr, t->prefix, addr, false);
	if (t->mech == SPF_MECH_IP6 && v6)
		return spf_cidr_match(t->addr, t->prefix, addr, true);
	return false;
}
