/* smtp_cmd.c - SMTP command line and argument parsing (server side). */
#include <string.h>

#include "smtp_cmd.h"
#include "addr.h"
#include "../util/num.h"
#include "../util/str.h"
#include "../util/xtext.h"
#include "../util/poison.h"

struct smtp_verb_info {
	const char *name;
	enum { ARG_NONE, ARG_NEEDED, ARG_OPTIONAL } arg;
};

static const struct smtp_verb_info smtp_verbs[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = { .name = "UNKNOWN", .arg = ARG_OPTIONAL },
	[SMTP_VERB_HELO] = { .name = "HELO", .arg = ARG_NEEDED },
	[SMTP_VERB_EHLO] = { .name = "EHLO", .arg = ARG_NEEDED },
	[SMTP_VERB_MAIL] = { .name = "MAIL", .arg = ARG_NEEDED },
	[SMTP_VERB_RCPT] = { .name = "RCPT", .arg = ARG_NEEDED },
	[SMTP_VERB_DATA] = { .name = "DATA", .arg = ARG_NONE },
	[SMTP_VERB_BDAT] = { .name = "BDAT", .arg = ARG_NEEDED },
	[SMTP_VERB_RSET] = { .name = "RSET", .arg = ARG_NONE },
	[SMTP_VERB_NOOP] = { .name = "NOOP", .arg = ARG_OPTIONAL },
	[SMTP_VERB_QUIT] = { .name = "QUIT", .arg = ARG_NONE },
	[SMTP_VERB_VRFY] = { .name = "VRFY", .arg = ARG_NEEDED },
	[SMTP_VERB_EXPN] = { .name = "EXPN", .arg = ARG_NEEDED },
	[SMTP_VERB_HELP] = { .name = "HELP", .arg = ARG_OPTIONAL },
	[SMTP_VERB_STARTTLS] = { .name = "STARTTLS", .arg = ARG_NONE },
	[SMTP_VERB_AUTH] = { .name = "AUTH", .arg = ARG_NEEDED },
};

static enum smtp_cmd_result
smtp_cmd_fail(enum smtp_cmd_result r, const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return r;
}

/* NUL, CR and LF never belong inside a command line (smuggling, log and envelope forgery). */
static bool
smtp_cmd_has_ctl(const char *p, size_t n)
{
	return memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL ||
	    memchr(p, '\n', n) != NULL;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB_COUNT)
		v = SMTP_VERB_UNKNOWN;
	return smtp_verbs[v].name;
}

enum smtp_cmd_result
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out, const char **why)
{
	size_t vlen = 0, a, e;
	int v;

	out->verb = SMTP_VERB_UNKNOWN;
	out->arg = NULL;
	out->arg_len = 0;
	if (smtp_cmd_has_ctl(line, len))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NUL, CR or LF in command line");
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		if (str_eq_ci(line, vlen, smtp_verbs[v].name))
			break;
	}
	if (v == SMTP_VERB_COUNT)
		return smtp_cmd_fail(SMTP_CMD_UNKNOWN, why, "unrecognised command");
	out->verb = (enum smtp_verb)v;
	/* Extra spaces around the argument are tolerated, as most servers do. */
	for (a = vlen; a < len && line[a] == ' '; a++)
		;
	for (e = len; e > a && line[e - 1] == ' '; e--)
		;
	if (e > a) {
		out->arg = line + a;
		out->arg_len = e - a;
	}
	if (smtp_verbs[v].arg == ARG_NEEDED && out->arg == NULL)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "argument required");
	if (smtp_verbs[v].arg == ARG_NONE && out->arg != NULL)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "no argument allowed");
	return SMTP_CMD_OK;
}

/*
 * Path parsing shared by MAIL and RCPT: "<" [A-d-l ":"] Mailbox ">" with the mailbox copied to
 * addr (not yet validated: that needs SMTPUTF8 from the parameters). *rest gets the index after
 * '>'.
 */
static enum smtp_cmd_result
smtp_cmd_path(const char *arg, size_t len, size_t start, char addr[SMTP_PATH_MAX], bool *had_route,
    size_t *rest, const char **why)
{
	size_t i, close = 0, mbox;
	bool quoted = false, found = false;

	if (start >= len || arg[start] != '<')
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "path must be enclosed in <>");
	for (i = start + 1; i < len; i++) {
		char c = arg[i];

		if (quoted && c == '\\' && i + 1 < len) {
			i++;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (!quoted && c == '>') {
			close = i;
			found = true;
			break;
		}
	}
	if (!found)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "missing '>'");
	if (close - start + 1 > SMTP_PATH_MAX)
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "path too long");
	mbox = start + 1;
	*had_route = false;
	if (mbox < close && arg[mbox] == '@') {
		/* RFC 5321 4.1.2 A-d-l = At-domain *( "," At-domain ) ":"; stripped (appendix C). */
		size_t p = mbox;

		for (;;) {
			size_t d = p + 1, q = d;

			while (q < close && arg[q] != ',' && arg[q] != ':')
				q++;
			if (q == close)
				return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "source route without ':'");
			if (addr_parse_domain(arg + d, q - d, 0, NULL, NULL) != ADDR_OK ||
			    arg[d] == '[')
				return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad domain in source route");
			if (arg[q] == ':') {
				mbox = q + 1;
				break;
			}
			p = q + 1;
			if (p >= close || arg[p] != '@')
				return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad source route");
		}
		*had_route = true;
	}
	if (str_copyn(addr, SMTP_PATH_MAX, arg + mbox, close - mbox) == -1)
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "path too long");
	*rest = close + 1;
	return SMTP_CMD_OK;
}

/* One esmtp-param (RFC 5321 4.1.2): keyword and optional value, borrowed from the argument. */
struct smtp_param {
	const char *key;
	size_t key_len;
	const char *val; /* NULL without "=" */
	size_t val_len;
};

/*
 * Next parameter from arg[*pos..len). Returns 1 with one, 0 at the end, or -1 (why set) on a
 * syntax error.
 */
static int
smtp_cmd_next_param(const char *arg, size_t len, size_t *pos, struct smtp_param *p,
    const char **why)
{
	size_t i = *pos, k;

	if (i < len && arg[i] != ' ') {
		smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "parameters must be separated by spaces");
		return -1;
	}
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return 0;
	k = i;
	while (i < len && arg[i] != ' ' && arg[i] != '=') {
		char c = arg[i];

		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c == '-' && i > k))) {
			smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad parameter keyword");
			return -1;
		}
		i++;
	}
	if (i == k) {
		smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "empty parameter keyword");
		return -1;
	}
	p->key = arg + k;
	p->key_len = i - k;
	p->val = NULL;
	p->val_len = 0;
	if (i < len && arg[i] == '=') {
		size_t v = ++i;

		/* esmtp-value = 1*(%d33-60 / %d62-126): no '=', no space, no control, ASCII only. */
		while (i < len && arg[i] != ' ') {
			unsigned char c = (unsigned char)arg[i];

			if (c < 33 || c > 126 || c == '=') {
				smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad character in parameter value");
				return -1;
			}
			i++;
		}
		if (i == v) {
			smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "empty parameter value");
			return -1;
		}
		p->val = arg + v;
		p->val_len = i - v;
	}
	*pos = i;
	return 1;
}

static int
smtp_cmd_hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Valid xtext (RFC 3461 4) whose decoded form has no control byte either: ORCPT and ENVID are
 * copied into DSN header fields, where an encoded CR LF would inject headers.
 */
static bool
smtp_cmd_xtext_ok(const char *p, size_t n)
{
	size_t i;

	if (!xtext_is_valid(p, n))
		return false;
	for (i = 0; i + 2 < n; i++) {
		if (p[i] == '+') {
			int v = smtp_cmd_hexval(p[i + 1]) * 16 + smtp_cmd_hexval(p[i + 2]);

			if (v < 0x20 || v == 0x7f)
				return false;
			i += 2;
		}
	}
	return true;
}

/* Map an addr_parse() failure to a command result. */
static enum smtp_cmd_result
smtp_cmd_addr_result(enum addr_result r)
{
	return r == ADDR_TOO_LONG ? SMTP_CMD_TOO_LONG : SMTP_CMD_SYNTAX;
}

/* Parse "KEY:" (case-insensitive), tolerating one space after the colon. Returns the path index. */
static bool
smtp_cmd_prefix(const char *arg, size_t len, const char *prefix, size_t *pos)
{
	size_t n = strlen(prefix);

	if (!str_has_prefix_ci(arg, len, prefix))
		return false;
	*pos = n < len && arg[n] == ' ' ? n + 1 : n;
	return true;
}

enum mail_param_bit {
	MAIL_P_SIZE = 0x1, MAIL_P_BODY = 0x2, MAIL_P_UTF8 = 0x4, MAIL_P_RET = 0x8,
	MAIL_P_ENVID = 0x10, MAIL_P_AUTH = 0x20,
};

static enum smtp_cmd_result
smtp_cmd_mail_param(const struct smtp_param *p, struct smtp_mail_args *out, unsigned *seen,
    const char **why)
{
	unsigned bit;

	if (str_eq_ci(p->key, p->key_len, "SIZE"))
		bit = MAIL_P_SIZE;
	else if (str_eq_ci(p->key, p->key_len, "BODY"))
		bit = MAIL_P_BODY;
	else if (str_eq_ci(p->key, p->key_len, "SMTPUTF8"))
		bit = MAIL_P_UTF8;
	else if (str_eq_ci(p->key, p->key_len, "RET"))
		bit = MAIL_P_RET;
	else if (str_eq_ci(p->key, p->key_len, "ENVID"))
		bit = MAIL_P_ENVID;
	else if (str_eq_ci(p->key, p->key_len, "AUTH"))
		bit = MAIL_P_AUTH;
	else
		return smtp_cmd_fail(SMTP_CMD_PARAM_UNKNOWN, why, "unknown MAIL parameter");
	if (*seen & bit)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "duplicate MAIL parameter");
	*seen |= bit;
	if (bit == MAIL_P_UTF8) {
		if (p->val != NULL)
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "SMTPUTF8 takes no value");
		out->smtputf8 = true;
		return SMTP_CMD_OK;
	}
	if (p->val == NULL)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "parameter needs a value");
	switch (bit) {
	case MAIL_P_SIZE: {
		size_t i;

		for (i = 0; i < p->val_len; i++) {
			if (p->val[i] < '0' || p->val[i] > '9')
				return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad SIZE value");
		}
		/* All digits: failure can only be overflow or over the limit. */
		if (num_parse_u64(p->val, p->val_len, HK_SIZE_MAX, &out->size) == -1)
			return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "SIZE too large");
		out->has_size = true;
		break;
	}
	case MAIL_P_BODY:
		if (str_eq_ci(p->val, p->val_len, "7BIT"))
			out->body = SMTP_BODY_7BIT;
		else if (str_eq_ci(p->val, p->val_len, "8BITMIME"))
			out->body = SMTP_BODY_8BITMIME;
		else if (str_eq_ci(p->val, p->val_len, "BINARYMIME"))
			out->body = SMTP_BODY_BINARYMIME;
		else
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad BODY value");
		break;
	case MAIL_P_RET:
		if (str_eq_ci(p->val, p->val_len, "FULL"))
			out->ret = SMTP_RET_FULL;
		else if (str_eq_ci(p->val, p->val_len, "HDRS"))
			out->ret = SMTP_RET_HDRS;
		else
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad RET value");
		break;
	case MAIL_P_ENVID:
		if (p->val_len > SMTP_ENVID_MAX)
			return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "ENVID too long");
		if (!smtp_cmd_xtext_ok(p->val, p->val_len))
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "ENVID is not valid xtext");
		if (str_copyn(out->envid, sizeof(out->envid), p->val, p->val_len) == -1)
			return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "ENVID too long");
		break;
	case MAIL_P_AUTH:
		/* RFC 4954 5: AUTH=<> or an xtext-encoded mailbox. */
		if (!(p->val_len == 2 && p->val[0] == '<' && p->val[1] == '>') &&
		    !smtp_cmd_xtext_ok(p->val, p->val_len))
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "AUTH= is not valid xtext");
		if (str_copyn(out->auth, sizeof(out->auth), p->val, p->val_len) == -1)
			return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "AUTH= too long");
		break;
	default:
		hk_panic("unhandled MAIL parameter bit %u", bit);
	}
	return SMTP_CMD_OK;
}

enum smtp_cmd_result
smtp_cmd_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out, const char **why)
{
	enum smtp_cmd_result r;
	enum addr_result ar;
	struct smtp_param p;
	struct addr_parts parts;
	unsigned seen = 0;
	size_t pos;
	int got;

	memset(out, 0, sizeof(*out));
	if (smtp_cmd_has_ctl(arg, len))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NUL, CR or LF in command line");
	if (!smtp_cmd_prefix(arg, len, "FROM:", &pos))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "expected FROM:<address>");
	r = smtp_cmd_path(arg, len, pos, out->addr, &out->had_route, &pos, why);
	if (r != SMTP_CMD_OK)
		return r;
	while ((got = smtp_cmd_next_param(arg, len, &pos, &p, why)) == 1) {
		r = smtp_cmd_mail_param(&p, out, &seen, why);
		if (r != SMTP_CMD_OK)
			return r;
	}
	if (got == -1)
		return SMTP_CMD_SYNTAX;
	if (out->addr[0] == '\0') {
		/* RFC 5321 4.5.5: the null reverse-path; a route before it makes no sense. */
		if (out->had_route)
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "source route to null sender");
		return SMTP_CMD_OK;
	}
	ar = addr_parse(out->addr, strlen(out->addr), out->smtputf8 ? ADDR_ALLOW_UTF8 : 0, &parts,
	    why);
	return ar == ADDR_OK ? SMTP_CMD_OK : smtp_cmd_addr_result(ar);
}

/* NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) (RFC 3461 4.1). */
static enum smtp_cmd_result
smtp_cmd_notify(const char *v, size_t n, unsigned *out, const char **why)
{
	size_t i = 0;

	*out = 0;
	while (i <= n) {
		size_t s = i;
		unsigned bit;

		while (i < n && v[i] != ',')
			i++;
		if (str_eq_ci(v + s, i - s, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (str_eq_ci(v + s, i - s, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (str_eq_ci(v + s, i - s, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (str_eq_ci(v + s, i - s, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad NOTIFY value");
		if (*out & bit)
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "repeated NOTIFY value");
		*out |= bit;
		i++;
	}
	if ((*out & SMTP_NOTIFY_NEVER) && *out != SMTP_NOTIFY_NEVER)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NOTIFY=NEVER cannot be combined");
	return SMTP_CMD_OK;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2). */
static enum smtp_cmd_result
smtp_cmd_orcpt(const char *v, size_t n, char out[SMTP_ORCPT_MAX + 1], const char **why)
{
	size_t i;

	if (n > SMTP_ORCPT_MAX)
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "ORCPT too long");
	for (i = 0; i < n && v[i] != ';'; i++) {
		char c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad ORCPT address type");
	}
	if (i == 0 || i == n)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "ORCPT needs type;address");
	if (i + 1 == n || !smtp_cmd_xtext_ok(v + i + 1, n - i - 1))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "ORCPT address is not valid xtext");
	if (str_copyn(out, SMTP_ORCPT_MAX + 1, v, n) == -1)
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "ORCPT too long");
	return SMTP_CMD_OK;
}

enum smtp_cmd_result
smtp_cmd_parse_rcpt(const char *arg, size_t len, bool utf8_ok, struct smtp_rcpt_args *out,
    const char **why)
{
	enum smtp_cmd_result r;
	enum addr_result ar;
	struct smtp_param p;
	struct addr_parts parts;
	bool seen_notify = false, seen_orcpt = false;
	size_t pos;
	int got;

	memset(out, 0, sizeof(*out));
	if (smtp_cmd_has_ctl(arg, len))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NUL, CR or LF in command line");
	if (!smtp_cmd_prefix(arg, len, "TO:", &pos))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "expected TO:<address>");
	r = smtp_cmd_path(arg, len, pos, out->addr, &out->had_route, &pos, why);
	if (r != SMTP_CMD_OK)
		return r;
	while ((got = smtp_cmd_next_param(arg, len, &pos, &p, why)) == 1) {
		bool notify = str_eq_ci(p.key, p.key_len, "NOTIFY");

		if (!notify && !str_eq_ci(p.key, p.key_len, "ORCPT"))
			return smtp_cmd_fail(SMTP_CMD_PARAM_UNKNOWN, why, "unknown RCPT parameter");
		if (notify ? seen_notify : seen_orcpt)
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "duplicate RCPT parameter");
		if (p.val == NULL)
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "parameter needs a value");
		if (notify) {
			seen_notify = true;
			r = smtp_cmd_notify(p.val, p.val_len, &out->notify, why);
		} else {
			seen_orcpt = true;
			r = smtp_cmd_orcpt(p.val, p.val_len, out->orcpt, why);
		}
		if (r != SMTP_CMD_OK)
			return r;
	}
	if (got == -1)
		return SMTP_CMD_SYNTAX;
	if (out->addr[0] == '\0')
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "null recipient");
	ar = addr_parse(out->addr, strlen(out->addr),
	    ADDR_ALLOW_NO_DOMAIN | (utf8_ok ? ADDR_ALLOW_UTF8 : 0), &parts, why);
	if (ar != ADDR_OK)
		return smtp_cmd_addr_result(ar);
	/* "Postmaster" without a domain is special; a routed one is nonsense. */
	if (parts.domain == NULL && out->had_route)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "source route to bare Postmaster");
	return SMTP_CMD_OK;
}

enum smtp_cmd_result
smtp_cmd_parse_bdat(const char *arg, size_t len, uint64_t max, uint64_t *size, bool *last,
    const char **why)
{
	size_t i = 0, d;

	*size = 0;
	*last = false;
	while (i < len && arg[i] >= '0' && arg[i] <= '9')
		i++;
	if (i == 0)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "BDAT needs a chunk size");
	d = i;
	if (i < len) {
		if (arg[i] != ' ' || !str_eq_ci(arg + i + 1, len - i - 1, "LAST"))
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "expected BDAT <size> [LAST]");
	}
	if (num_parse_u64(arg, d, max, size) == -1) {
		*size = 0;
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "BDAT chunk size too large");
	}
	*last = i < len;
	return SMTP_CMD_OK;
}

/* RFC 4648 4 base64 with padding, as RFC 4954 4 requires for the initial response. */
static bool
smtp_cmd_is_base64(const char *p, size_t n)
{
	size_t i, pad = 0;

	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

enum smtp_cmd_result
smtp_cmd_parse_auth(const char *arg, size_t len, char mech[21], const char **ir, size_t *ir_len,
    const char **why)
{
	size_t i;

	mech[0] = '\0';
	*ir = NULL;
	*ir_len = 0;
	if (smtp_cmd_has_ctl(arg, len))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NUL, CR or LF in command line");
	for (i = 0; i < len && arg[i] != ' '; i++) {
		char c = arg[i];

		/* RFC 4422 3.1: 1*20 of upper-case letters, digits, '-' and '_' (any case here). */
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "bad SASL mechanism name");
		if (i == 20) {
			mech[0] = '\0';
			return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "SASL mechanism name too long");
		}
		mech[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	mech[i] = '\0';
	if (i == 0)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "missing SASL mechanism");
	if (i == len)
		return SMTP_CMD_OK;
	i++;
	if (i == len || !((len - i == 1 && arg[i] == '=') || smtp_cmd_is_base64(arg + i, len - i))) {
		mech[0] = '\0';
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "initial response is not base64");
	}
	*ir = arg + i;
	*ir_len = len - i;
	return SMTP_CMD_OK;
}

enum smtp_cmd_result
smtp_cmd_parse_helo(const char *arg, size_t len, bool ehlo, char out[SMTP_DOMAIN_MAX + 1],
    const char **why)
{
	enum addr_result r;
	size_t n = 0;

	out[0] = '\0';
	if (smtp_cmd_has_ctl(arg, len))
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "NUL, CR or LF in command line");
	while (n < len && arg[n] != ' ')
		n++;
	if (n < len && ehlo)
		return smtp_cmd_fail(SMTP_CMD_SYNTAX, why, "EHLO takes one domain");
	r = addr_parse_domain(arg, n, ADDR_ALLOW_UNDERSCORE, NULL, why);
	if (r != ADDR_OK)
		return r == ADDR_TOO_LONG ? SMTP_CMD_TOO_LONG : SMTP_CMD_SYNTAX;
	if (str_copyn(out, SMTP_DOMAIN_MAX + 1, arg, n) == -1)
		return smtp_cmd_fail(SMTP_CMD_TOO_LONG, why, "domain too long");
	return SMTP_CMD_OK;
}
