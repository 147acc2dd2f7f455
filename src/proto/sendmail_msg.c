/*
 * sendmail_msg.c - read a message as a sendmail command gets it; see sendmail_msg.h.
 *
 * Two passes: the input is cut into CRLF lines (line ends, "." and the mbox line handled there),
 * then the header section is walked field by field to drop Bcc, collect -t recipients and note
 * which of From, Date and Message-ID are present.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "header.h"
#include "sendmail_msg.h"
#include "../util/base64.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

/* RFC 2047 2: an encoded word is at most 75 characters; "=?UTF-8?B?" + "?=" leave 63, so 45
 * bytes (60 base64 characters) per word. */
#define SENDMAIL_MSG_WORD_BYTES 45

void
sendmail_msg_init(struct sendmail_msg *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->body);
	buf_init(&m->bad);
}

void
sendmail_msg_fini(struct sendmail_msg *m)
{
	size_t i;

	for (i = 0; i < m->n_rcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	buf_fini(&m->body);
	buf_fini(&m->bad);
	memset(m, 0, sizeof(*m));
}

/*
 * Pass 1: in -> CRLF lines in out. Stops at a lone "." line unless dot_is_data. Returns
 * SENDMAIL_MSG_OK or BAD_DATA.
 */
static enum sendmail_msg_result
sendmail_msg_lines(const char *in, size_t len, bool dot_is_data, struct buf *out, const char **why)
{
	size_t pos = 0;
	bool first = true;

	while (pos < len) {
		const char *lf = memchr(in + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - in) : len, next = lf ? end + 1 : len, n;

		n = end - pos;
		if (n > 0 && lf != NULL && in[end - 1] == '\r')
			n--;
		if (memchr(in + pos, '\0', n) != NULL) {
			*why = "NUL byte in the message";
			return SENDMAIL_MSG_BAD_DATA;
		}
		if (memchr(in + pos, '\r', n) != NULL) {
			*why = "CR without LF in the message";
			return SENDMAIL_MSG_BAD_DATA;
		}
		if (!dot_is_data && n == 1 && in[pos] == '.')
			break;
		/* An mbox separator line ("From sender date") is not part of the message. */
		if (!(first && n >= 5 && memcmp(in + pos, "From ", 5) == 0)) {
			buf_append(out, in + pos, n);
			buf_append(out, "\r\n", 2);
		}
		first = false;
		pos = next;
	}
	return SENDMAIL_MSG_OK;
}

/* Length of the field name when line[0..n) starts a header field ("Name:" or "Name :"). */
static size_t
sendmail_msg_field_name(const char *line, size_t n)
{
	size_t i = 0, name;

	while (i < n && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127 &&
	    line[i] != ':')
		i++;
	name = i;
	/* RFC 5322 4.5.3 obs-optional: white space before the colon. */
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (name == 0 || i >= n || line[i] != ':')
		return 0;
	return name;
}

static bool
sendmail_msg_has_rcpt(const struct sendmail_msg *m, const char *a, size_t n)
{
	size_t i;

	for (i = 0; i < m->n_rcpts; i++) {
		if (str_eq_ci(a, n, m->rcpts[i]))
			return true;
	}
	return false;
}

struct sendmail_msg_elem {
	struct buf text;  /* outside angle brackets and comments */
	struct buf angle; /* inside the angle brackets */
	bool has_angle;   /* a '<' was seen */
	bool in_angle;    /* ... and its '>' not yet */
};

static bool
sendmail_msg_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum sendmail_msg_result
sendmail_msg_bad(struct sendmail_msg *m, const char *v, size_t n, const char **why,
    const char *text)
{
	*why = text;
	buf_reset(&m->bad);
	buf_append(&m->bad, v, n);
	return SENDMAIL_MSG_BAD_ADDR;
}

/* One finished list element: the address in it is checked and kept; empty ones are skipped. */
static enum sendmail_msg_result
sendmail_msg_elem_end(struct sendmail_msg_elem *e, const struct sendmail_msg_opts *o,
    struct sendmail_msg *m, const char **why)
{
	struct buf *b = e->has_angle ? &e->angle : &e->text;
	struct addr_parts parts;
	const char *p = b->ptr ? b->ptr : "", *colon;
	size_t n = b->len;
	enum sendmail_msg_result res = SENDMAIL_MSG_OK;

	while (n > 0 && sendmail_msg_is_wsp(*p)) {
		p++;
		n--;
	}
	while (n > 0 && sendmail_msg_is_wsp(p[n - 1]))
		n--;
	/* RFC 5322 4.4 obs-route "<@hop,@hop:user@domain>": only the mailbox counts. */
	if (e->has_angle && n > 0 && p[0] == '@' && (colon = memchr(p, ':', n)) != NULL) {
		n -= (size_t)(colon + 1 - p);
		p = colon + 1;
	}
	if (n == 0)
		goto out;
	if (addr_parse(p, n, ADDR_ALLOW_UTF8, &parts, why) != ADDR_OK) {
		res = sendmail_msg_bad(m, p, n, why, *why);
		goto out;
	}
	if (sendmail_msg_has_rcpt(m, p, n))
		goto out;
	if (o->max_rcpts && m->n_rcpts >= o->max_rcpts) {
		*why = "too many recipients";
		res = SENDMAIL_MSG_TOO_MANY_RCPTS;
		goto out;
	}
	m->rcpts = xreallocarray(m->rcpts, m->n_rcpts + 1, sizeof(*m->rcpts));
	m->rcpts[m->n_rcpts++] = xstrndup(p, n);
out:
	buf_reset(&e->text);
	buf_reset(&e->angle);
	e->has_angle = e->in_angle = false;
	return res;
}

/*
 * RFC 5322 3.4 address-list in v[0..n) (unfolded): mailboxes, "name <addr>", groups
 * "name: a, b;", comments (nested, with quoted pairs), quoted strings and domain literals.
 */
static enum sendmail_msg_result
sendmail_msg_addr_list(const char *v, size_t n, const struct sendmail_msg_opts *o,
    struct sendmail_msg *m, const char **why)
{
	struct sendmail_msg_elem e;
	enum sendmail_msg_result res = SENDMAIL_MSG_OK;
	unsigned depth = 0;
	bool quote = false, literal = false, group = false;
	size_t i;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < n && res == SENDMAIL_MSG_OK; i++) {
		char c = v[i];
		struct buf *t = e.in_angle ? &e.angle : &e.text;

		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (quote || literal) {
			buf_putc(t, c);
			if (c == '\\' && i + 1 < n)
				buf_putc(t, v[++i]);
			else if ((quote && c == '"') || (literal && c == ']'))
				quote = literal = false;
			continue;
		}
		/* After "<addr>" only white space and comments may come before ',' or ';'. */
		if (e.has_angle && !e.in_angle && c != ',' && c != ';' && c != '(' &&
		    !sendmail_msg_is_wsp(c)) {
			res = sendmail_msg_bad(m, v, n, why, "text after an angle address");
			break;
		}
		switch (c) {
		case '"':
			quote = true;
			buf_putc(t, c);
			break;
		case '[':
			literal = true;
			buf_putc(t, c);
			break;
		case '(':
			depth = 1;
			buf_putc(t, ' ');
			break;
		case '<':
			if (e.has_angle) {
				res = sendmail_msg_bad(m, v, n, why, "two angle addresses in one");
				break;
			}
			e.has_angle = e.in_angle = true;
			break;
		case '>':
			if (!e.in_angle) {
				res = sendmail_msg_bad(m, v, n, why, "'>' without '<'");
				break;
			}
			e.in_angle = false;
			break;
		case ',':
			if (e.in_angle)
				buf_putc(t, c); /* obs-route list */
			else
				res = sendmail_msg_elem_end(&e, o, m, why);
			break;
		case ':':
			if (e.in_angle) {
				buf_putc(t, c);
				break;
			}
			if (group) {
				res = sendmail_msg_bad(m, v, n, why, "group inside a group");
				break;
			}
			/* The display name of a group is not an address. */
			group = true;
			buf_reset(&e.text);
			break;
		case ';':
			if (e.in_angle) {
				res = sendmail_msg_bad(m, v, n, why, "';' inside an angle address");
				break;
			}
			/* Ends a group; outside one, taken as the ',' some programs mean by it. */
			res = sendmail_msg_elem_end(&e, o, m, why);
			group = false;
			break;
		default:
			buf_putc(t, c);
			break;
		}
	}
	if (res == SENDMAIL_MSG_OK && (quote || literal || depth > 0 || e.in_angle)) {
		res = sendmail_msg_bad(m, v, n, why, quote ? "unterminated quoted string" :
		    literal ? "unterminated domain literal" : depth > 0 ? "unterminated comment" :
		    "unterminated angle address");
	}
	if (res == SENDMAIL_MSG_OK)
		res = sendmail_msg_elem_end(&e, o, m, why);
	buf_fini(&e.text);
	buf_fini(&e.angle);
	return res;
}

/* Unfold field[0..n) (name included) and return the value after the colon in *v. */
static void
sendmail_msg_unfold(const char *field, size_t n, struct buf *v)
{
	const char *colon = memchr(field, ':', n);
	size_t i;

	buf_reset(v);
	for (i = (size_t)(colon - field) + 1; i < n; i++) {
		if (field[i] == '\r' || field[i] == '\n')
			continue;
		buf_putc(v, field[i]);
	}
}

static bool
sendmail_msg_is_atext_phrase(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr(" !#$%&'*+-/=?^_`{|}~", c) != NULL) || c == 0)
			return false;
		if (c == ' ' && s[i + 1] == ' ')
			return false;
	}
	return true;
}

int
sendmail_msg_phrase(struct buf *out, const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	bool ascii = true;
	size_t i, k, start;

	for (i = 0; i < len; i += k) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return -1;
		k = str_utf8_char_len(s + i, len - i);
		if (k == 0)
			return -1;
		if (k > 1)
			ascii = false;
	}
	if (ascii && sendmail_msg_is_atext_phrase(name, len)) {
		buf_append(out, name, len);
		return 0;
	}
	if (ascii) {
		/* RFC 5322 3.2.4: a quoted string escapes only '"' and '\'. */
		buf_putc(out, '"');
		for (i = 0; i < len; i++) {
			if (name[i] == '"' || name[i] == '\\')
				buf_putc(out, '\\');
			buf_putc(out, name[i]);
		}
		buf_putc(out, '"');
		return 0;
	}
	/* RFC 2047 5(3): words never split a character, so cut only at sequence starts. */
	for (start = 0; start < len; start = i) {
		i = start;
		while (i < len) {
			k = str_utf8_char_len(s + i, len - i);
			if (i + k - start > SENDMAIL_MSG_WORD_BYTES)
				break;
			i += k;
		}
		if (start > 0)
			buf_append_str(out, "\r\n ");
		buf_append_str(out, "=?UTF-8?B?");
		base64_encode(out, name + start, i - start);
		buf_append_str(out, "?=");
	}
	return 0;
}

static enum sendmail_msg_result
sendmail_msg_add_from(const struct sendmail_msg_opts *o, struct buf *out, const char **why)
{
	buf_append_str(out, "From: ");
	if (o->from_name != NULL && o->from_name[0] != '\0') {
		if (sendmail_msg_phrase(out, o->from_name, strlen(o->from_name)) == -1) {
			*why = "the full name (-F) has a control character or is not UTF-8";
			return SENDMAIL_MSG_BAD_NAME;
		}
		buf_printf(out, " <%s>\r\n", o->from_addr);
	} else {
		buf_printf(out, "%s\r\n", o->from_addr);
	}
	return SENDMAIL_MSG_OK;
}

/* Is field (name length nl) one of the recipient fields -t reads? */
static bool
sendmail_msg_is_rcpt_field(const char *f, size_t nl)
{
	return str_eq_ci(f, nl, "To") || str_eq_ci(f, nl, "Cc") || str_eq_ci(f, nl, "Bcc");
}

/* Pass 2 over the CRLF lines in src: header fields into m->body, then the rest. */
static enum sendmail_msg_result
sendmail_msg_headers(const struct buf *src, const struct sendmail_msg_opts *o,
    struct sendmail_msg *m, const char **why)
{
	const char *p = src->ptr ? src->ptr : "";
	size_t pos = 0, len = src->len;
	struct buf v = BUF_INIT;
	enum sendmail_msg_result res = SENDMAIL_MSG_OK;
	bool has_from = false, has_date = false, has_msgid = false;

	while (pos < len && res == SENDMAIL_MSG_OK) {
		const char *line = p + pos;
		size_t n = (size_t)((const char *)memchr(line, '\n', len - pos) - line) + 1, nl, end;

		if (n == 2)
			break; /* the empty line; the body follows */
		nl = sendmail_msg_field_name(line, n - 2);
		if (nl == 0)
			break; /* not a header: the body starts here */
		end = pos + n;
		/* Continuation lines start with white space (RFC 5322 2.2.3). */
		while (end < len && (p[end] == ' ' || p[end] == '\t'))
			end += (size_t)((const char *)memchr(p + end, '\n', len - end) - (p + end)) + 1;
		has_from = has_from || str_eq_ci(line, nl, "From");
		has_date = has_date || str_eq_ci(line, nl, "Date");
		has_msgid = has_msgid || str_eq_ci(line, nl, "Message-ID");
		if (o->extract_rcpts && sendmail_msg_is_rcpt_field(line, nl)) {
			sendmail_msg_unfold(line, end - pos, &v);
			res = sendmail_msg_addr_list(v.ptr, v.len, o, m, why);
		}
		/* Bcc recipients stay hidden from the others (RFC 5322 3.6.3). */
		if (!str_eq_ci(line, nl, "Bcc"))
			buf_append(&m->body, line, end - pos);
		pos = end;
	}
	buf_fini(&v);
	if (res != SENDMAIL_MSG_OK)
		return res;
	if (!has_from) {
		res = sendmail_msg_add_from(o, &m->body, why);
		if (res != SENDMAIL_MSG_OK)
			return res;
		m->added_from = true;
	}
	if (!has_date) {
		buf_append_str(&m->body, "Date: ");
		header_format_date(&m->body, o->now, o->tz_minutes);
		buf_append_str(&m->body, "\r\n");
		m->added_date = true;
	}
	if (!has_msgid) {
		buf_printf(&m->body, "Message-ID: %s\r\n", o->message_id);
		m->added_msgid = true;
	}
	buf_append(&m->body, "\r\n", 2);
	/* Skip the empty line that ended the header section; it was written just above. */
	if (pos + 2 <= len && p[pos] == '\r' && p[pos + 1] == '\n')
		pos += 2;
	buf_append(&m->body, p + pos, len - pos);
	return SENDMAIL_MSG_OK;
}

enum sendmail_msg_result
sendmail_msg_parse(const char *in, size_t len, const struct sendmail_msg_opts *o,
    struct sendmail_msg *m, const char **why)
{
	struct buf lines = BUF_INIT;
	const char *dummy;
	enum sendmail_msg_result res;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	/* The input alone may already be too big (CRLF only adds). */
	if (o->max_size && len > o->max_size) {
		*why = "message too big";
		return SENDMAIL_MSG_TOO_BIG;
	}
	res = sendmail_msg_lines(in, len, o->dot_is_data, &lines, why);
	if (res == SENDMAIL_MSG_OK)
		res = sendmail_msg_headers(&lines, o, m, why);
	buf_fini(&lines);
	if (res == SENDMAIL_MSG_OK && o->max_size && m->body.len > o->max_size) {
		*why = "message too big";
		res = SENDMAIL_MSG_TOO_BIG;
	}
	return res;
}
