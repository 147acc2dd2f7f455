/* addr.c - RFC 5321 4.1.2 mailbox syntax, RFC 6531 UTF-8, address literals. */
#include <string.h>

#include "addr.h"
#include "../util/str.h"
#include "../util/poison.h"

#define ADDR_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_LABEL_MAX 63    /* RFC 1035 2.3.4 */
#define ADDR_MAILBOX_MAX 254 /* path 256 minus the angle brackets (RFC 5321 4.5.3.1.3) */

/* RFC 5322 3.2.3 atext, as used by RFC 5321 Atom. */
static bool
addr_is_atext(unsigned char c)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";

	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && memchr(specials, c, sizeof(specials) - 1) != NULL;
}

static bool
addr_is_ld(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
addr_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static enum addr_result
addr_fail(enum addr_result r, const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return r;
}

/*
 * A non-ASCII byte at s[i]: with UTF-8 allowed, skip the whole sequence (*i ends on its last
 * byte); otherwise report. bad is the result for malformed UTF-8.
 */
static enum addr_result
addr_non_ascii(const char *s, size_t len, size_t *i, unsigned flags, enum addr_result bad,
    const char **why)
{
	size_t n = str_utf8_char_len((const unsigned char *)s + *i, len - *i);

	if (n == 0)
		return addr_fail(bad, why, "malformed UTF-8");
	if (!(flags & ADDR_ALLOW_UTF8))
		return addr_fail(ADDR_UTF8_NOT_ALLOWED, why, "UTF-8 address without SMTPUTF8");
	*i += n - 1;
	return ADDR_OK;
}

/* RFC 5321 4.1.3 Snum "." Snum "." Snum "." Snum, each 1*3DIGIT up to 255. */
static bool
addr_is_ipv4(const char *s, size_t len)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == len;
}

/*
 * RFC 5321 4.1.3 IPv6-addr (inet_pton rules): 8 groups of 1-4 hex digits, or fewer with one
 * "::" standing for at least one zero group; the last 32 bits may be dotted IPv4.
 */
static bool
addr_is_ipv6(const char *s, size_t len)
{
	size_t i = 0;
	unsigned groups = 0;
	bool gap = false;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		gap = true;
		i = 2;
		if (i == len)
			return true;
	} else if (len >= 1 && s[0] == ':') {
		return false;
	}
	while (i < len) {
		size_t start = i, hex = 0;

		while (i < len && addr_is_hex((unsigned char)s[i]) && hex < 5) {
			i++;
			hex++;
		}
		if (i < len && s[i] == '.') {
			/* Embedded IPv4 takes the last two groups and ends the address. */
			if (!addr_is_ipv4(s + start, len - start))
				return false;
			groups += 2;
			i = len;
			break;
		}
		if (hex == 0 || hex > 4)
			return false;
		groups++;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':') {
			if (gap)
				return false;
			gap = true;
			i++;
			if (i == len)
				break;
		} else if (i == len) {
			return false; /* trailing single ':' */
		}
	}
	return gap ? groups <= 7 : groups == 8;
}

/* s[0..len) starts with '[': an address literal up to and including the closing ']'. */
static enum addr_result
addr_parse_literal(const char *s, size_t len, const char **why)
{
	const char *in;
	size_t n;

	if (len < 3 || s[len - 1] != ']')
		return addr_fail(ADDR_BAD_DOMAIN, why, "unterminated address literal");
	in = s + 1;
	n = len - 2;
	if (str_has_prefix_ci(in, n, "IPv6:")) {
		if (!addr_is_ipv6(in + 5, n - 5))
			return addr_fail(ADDR_BAD_DOMAIN, why, "bad IPv6 address literal");
		return ADDR_OK;
	}
	if (!addr_is_ipv4(in, n))
		return addr_fail(ADDR_BAD_DOMAIN, why, "bad address literal");
	return ADDR_OK;
}

/* RFC 5321 4.1.2 Domain: sub-domain *("." sub-domain); RFC 6531 adds U-labels. */
static enum addr_result
addr_parse_name(const char *s, size_t len, unsigned flags, const char **why)
{
	size_t i, label = 0;
	unsigned char prev = '.';

	if (len == 0)
		return addr_fail(ADDR_BAD_DOMAIN, why, "empty domain");
	if (len > ADDR_DOMAIN_MAX)
		return addr_fail(ADDR_TOO_LONG, why, "domain longer than 255 octets");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return addr_fail(ADDR_BAD_DOMAIN, why, "empty domain label");
			if (prev == '-')
				return addr_fail(ADDR_BAD_DOMAIN, why, "label ends with '-'");
			label = 0;
		} else if (c >= 0x80) {
			size_t at = i;
			enum addr_result r = addr_non_ascii(s, len, &i, flags, ADDR_BAD_DOMAIN, why);

			if (r != ADDR_OK)
				return r;
			label += i - at + 1;
		} else if (addr_is_ld(c) || (c == '_' && (flags & ADDR_ALLOW_UNDERSCORE))) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return addr_fail(ADDR_BAD_DOMAIN, why, "label starts with '-'");
			label++;
		} else {
			return addr_fail(ADDR_BAD_DOMAIN, why, "bad character in domain");
		}
		if (label > ADDR_LABEL_MAX)
			return addr_fail(ADDR_TOO_LONG, why, "domain label longer than 63 octets");
		prev = c;
	}
	if (label == 0)
		return addr_fail(ADDR_BAD_DOMAIN, why, "domain ends with '.'");
	if (prev == '-')
		return addr_fail(ADDR_BAD_DOMAIN, why, "label ends with '-'");
	return ADDR_OK;
}

enum addr_result
addr_parse_domain(const char *s, size_t len, unsigned flags, bool *literal, const char **why)
{
	bool lit = len > 0 && s[0] == '[';

	if (literal != NULL)
		*literal = lit;
	if (len == 0)
		return addr_fail(ADDR_EMPTY, why, "empty domain");
	if (len > ADDR_DOMAIN_MAX)
		return addr_fail(ADDR_TOO_LONG, why, "domain longer than 255 octets");
	if (lit)
		return addr_parse_literal(s, len, why);
	return addr_parse_name(s, len, flags, why);
}

/* Quoted-string (RFC 5321 4.1.2) starting at s[0] == '"'; *end gets the index after it. */
static enum addr_result
addr_parse_quoted(const char *s, size_t len, unsigned flags, size_t *end, struct addr_parts *out,
    const char **why)
{
	size_t i;

	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"') {
			*end = i + 1;
			return ADDR_OK;
		}
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (i + 1 >= len || (unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
				return addr_fail(ADDR_BAD_LOCAL, why, "bad quoted pair");
			i++;
			c = (unsigned char)s[i];
		} else if (c >= 0x80) {
			enum addr_result r = addr_non_ascii(s, len, &i, flags, ADDR_BAD_LOCAL, why);

			if (r != ADDR_OK)
				return r;
			out->has_utf8 = true;
			continue;
		} else if (c < 32 || c > 126) {
			return addr_fail(ADDR_BAD_LOCAL, why, "control character in quoted string");
		}
		if (c == '%')
			out->has_percent = true;
		else if (c == '!')
			out->has_bang = true;
	}
	return addr_fail(ADDR_BAD_LOCAL, why, "unterminated quoted string");
}

/* Dot-string (RFC 5321 4.1.2) ending before '@' or the end; *end gets its length. */
static enum addr_result
addr_parse_dot_string(const char *s, size_t len, unsigned flags, size_t *end,
    struct addr_parts *out, const char **why)
{
	size_t i, atom = 0;

	for (i = 0; i < len && s[i] != '@'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (atom == 0)
				return addr_fail(ADDR_BAD_LOCAL, why, "empty atom in local part");
			atom = 0;
			continue;
		}
		if (c >= 0x80) {
			enum addr_result r = addr_non_ascii(s, len, &i, flags, ADDR_BAD_LOCAL, why);

			if (r != ADDR_OK)
				return r;
			out->has_utf8 = true;
		} else if (!addr_is_atext(c)) {
			return addr_fail(ADDR_BAD_LOCAL, why, "bad character in local part");
		} else if (c == '%') {
			out->has_percent = true;
		} else if (c == '!') {
			out->has_bang = true;
		}
		atom++;
	}
	if (atom == 0)
		return addr_fail(ADDR_BAD_LOCAL, why, i == 0 ? "empty local part" :
		    "local part ends with '.'");
	*end = i;
	return ADDR_OK;
}

enum addr_result
addr_parse(const char *s, size_t len, unsigned flags, struct addr_parts *out, const char **why)
{
	enum addr_result r;
	size_t end = 0;
	bool lit;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return addr_fail(ADDR_EMPTY, why, "empty address");
	if (s[0] == '"') {
		out->local_quoted = true;
		r = addr_parse_quoted(s, len, flags, &end, out, why);
	} else {
		r = addr_parse_dot_string(s, len, flags, &end, out, why);
	}
	if (r != ADDR_OK)
		return r;
	out->local = s;
	out->local_len = end;
	if (end == len) {
		/* RFC 5321 4.5.1: "Postmaster" (any case) without a domain, RCPT only. */
		if ((flags & ADDR_ALLOW_NO_DOMAIN) && !out->local_quoted &&
		    str_eq_ci(s, len, "postmaster"))
			return ADDR_OK;
		return addr_fail(ADDR_BAD_DOMAIN, why, "missing '@domain'");
	}
	if (s[end] != '@')
		return addr_fail(ADDR_BAD_LOCAL, why, "junk after quoted local part");
	if (end > ADDR_LOCAL_MAX)
		return addr_fail(ADDR_TOO_LONG, why, "local part longer than 64 octets");
	out->domain = s + end + 1;
	out->domain_len = len - end - 1;
	r = addr_parse_domain(out->domain, out->domain_len, flags & ADDR_ALLOW_UTF8, &lit, why);
	if (r == ADDR_EMPTY)
		return addr_fail(ADDR_BAD_DOMAIN, why, "empty domain");
	if (r != ADDR_OK)
		return r;
	out->domain_literal = lit;
	if (!lit && !out->has_utf8) {
		size_t i;

		for (i = 0; i < out->domain_len; i++) {
			if ((unsigned char)out->domain[i] >= 0x80) {
				out->has_utf8 = true;
				break;
			}
		}
	}
	if (len > ADDR_MAILBOX_MAX)
		return addr_fail(ADDR_TOO_LONG, why, "address longer than 254 octets");
	return ADDR_OK;
}
