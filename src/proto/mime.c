/*
 * mime.c - message builder for the API (see mime.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/base64.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "addr.h"
#include "mime.h"
#include "../util/poison.h"

/* RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998. */
#define MIME_FOLD_AT 78
#define MIME_LINE_MAX 998
/* RFC 2047 2: an encoded word is at most 75 characters. */
#define MIME_EW_MAX 75
/* "=?UTF-8?B?" + "?=" */
#define MIME_EW_OVERHEAD 12
/* RFC 2045 6.7 (5): encoded lines are at most 76 characters. */
#define MIME_QP_LINE 76
#define MIME_B64_LINE 76
/* Longest ASCII filename= fallback, so the parameter fits on one folded line. */
#define MIME_FALLBACK_MAX 60

static const char mime_hex[] = "0123456789ABCDEF";
/* RFC 2046 5.1.1: text before the first boundary, shown only by readers without MIME. */
static const char mime_preamble[] = "This is a multi-part message in MIME format.\r\n";

/* Fields the builder writes itself; an extra header may not name them (Content-* by prefix). */
static const char *const mime_owned[] = {
	"From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version",
};

struct mime_ctx {
	const struct mime_msg *m;
	struct mime_out *out;
};

/* A leaf or multipart entity: its Content-* header lines and its body, both CRLF. */
struct mime_part {
	struct buf hdr;
	struct buf body;
};

static enum mime_error
mime_fail(struct mime_ctx *c, enum mime_error e, const char *field, const char *fmt, ...)
	HK_PRINTF(4, 5);

static enum mime_error
mime_fail(struct mime_ctx *c, enum mime_error e, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n;

	snprintf(c->out->field, sizeof(c->out->field), "%s", field);
	n = snprintf(c->out->message, sizeof(c->out->message), "%s: ", c->out->field);
	HK_ASSERT(n > 0 && (size_t)n < sizeof(c->out->message));
	va_start(ap, fmt);
	vsnprintf(c->out->message + n, sizeof(c->out->message) - (size_t)n, fmt, ap);
	va_end(ap);
	return e;
}

static bool
mime_utf8_is_valid(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = str_utf8_char_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

static bool
mime_is_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* A header text check: well-formed UTF-8 with no control bytes (tab only when allowed). */
static enum mime_error
mime_check_text(struct mime_ctx *c, const char *field, const char *s, bool tab_ok)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r' || ch == '\n')
			return mime_fail(c, MIME_E_CONTROL, field, "CR or LF is not allowed");
		if ((ch < 0x20 && !(tab_ok && ch == '\t')) || ch == 0x7F)
			return mime_fail(c, MIME_E_CONTROL, field, "control character 0x%02X", ch);
	}
	if (!mime_utf8_is_valid(s, n))
		return mime_fail(c, MIME_E_UTF8, field, "not valid UTF-8");
	return MIME_OK;
}

/* ---- header writer: tracks the column so words can be folded (RFC 5322 2.2.3) ---- */

struct mime_hw {
	struct buf *out;
	size_t start; /* offset of the field in out */
	size_t col;   /* characters on the current line */
	bool has_word; /* a word is on the current line after the field name */
	bool at_fold;  /* the line is only the fold's space: the next word needs no separator */
};

static void
mime_hw_begin(struct mime_hw *w, struct buf *out, const char *name)
{
	w->out = out;
	w->start = out->len;
	buf_append_str(out, name);
	buf_putc(out, ':');
	w->col = strlen(name) + 1;
	w->has_word = false;
	w->at_fold = false;
}

static void
mime_hw_fold(struct mime_hw *w)
{
	buf_append(w->out, "\r\n ", 3);
	w->col = 1;
	w->has_word = false;
	w->at_fold = true;
}

/* One space before a word, unless a fold just put one there. */
static void
mime_hw_sep(struct mime_hw *w)
{
	if (!w->at_fold) {
		buf_putc(w->out, ' ');
		w->col++;
	}
	w->at_fold = false;
}

/* A word preceded by one space, folded first when it would pass the fold column. */
static void
mime_hw_word(struct mime_hw *w, const char *s, size_t n)
{
	if (w->has_word && w->col + 1 + n > MIME_FOLD_AT)
		mime_hw_fold(w);
	mime_hw_sep(w);
	buf_append(w->out, s, n);
	w->col += n;
	w->has_word = true;
}

/* Bytes glued to the previous word (a comma between addresses). */
static void
mime_hw_raw(struct mime_hw *w, const char *s, size_t n)
{
	buf_append(w->out, s, n);
	w->col += n;
}

static bool
mime_is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Unstructured ASCII text kept byte for byte: a fold is a CRLF put before existing white space,
 * which unfolding removes again. White space with no word after it is never folded, so no
 * continuation line is blank.
 */
static void
mime_hw_text(struct mime_hw *w, const char *s, size_t n)
{
	size_t i = 0, ws, word;

	/* An empty value gets no space, so the line does not end in white space. */
	if (n == 0)
		return;
	buf_putc(w->out, ' ');
	w->col++;
	while (i < n) {
		ws = i;
		while (ws < n && mime_is_wsp(s[ws]))
			ws++;
		word = ws;
		while (word < n && !mime_is_wsp(s[word]))
			word++;
		if (w->has_word && ws > i && word > ws && w->col + (word - i) > MIME_FOLD_AT) {
			buf_append(w->out, "\r\n", 2);
			w->col = 0;
		}
		buf_append(w->out, s + i, word - i);
		w->col += word - i;
		if (word > ws)
			w->has_word = true;
		i = word;
	}
}

/* RFC 2047 5 (3): characters a Q-encoded word may carry as themselves, in any context. */
static bool
mime_q_is_plain(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '!' || ch == '*' || ch == '+' || ch == '-' || ch == '/';
}

static size_t
mime_q_cost(unsigned char ch)
{
	return mime_q_is_plain(ch) || ch == ' ' ? 1 : 3;
}

/* Q when it is no longer than B (mostly ASCII text stays readable), else B. */
static bool
mime_ew_use_q(const char *s, size_t n)
{
	size_t i, q = 0;

	for (i = 0; i < n; i++)
		q += mime_q_cost((unsigned char)s[i]);
	return q <= (n + 2) / 3 * 4;
}

static void
mime_ew_append(struct buf *out, const char *s, size_t n, bool q)
{
	size_t i;

	if (!q) {
		base64_encode(out, s, n);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == ' ') {
			buf_putc(out, '_');
		} else if (mime_q_is_plain(ch)) {
			buf_putc(out, (char)ch);
		} else {
			buf_putc(out, '=');
			buf_putc(out, mime_hex[ch >> 4]);
			buf_putc(out, mime_hex[ch & 15]);
		}
	}
}

/*
 * The UTF-8 text s[0..n) as RFC 2047 encoded words, each within 75 characters and the fold
 * column, split only between characters. White space between encoded words is dropped when they
 * are decoded (RFC 2047 6.2), so words can be folded freely.
 */
static void
mime_hw_encoded(struct mime_hw *w, const char *s, size_t n)
{
	bool q = mime_ew_use_q(s, n);
	size_t i = 0, room, take, cost, k, payload;

	while (i < n) {
		room = MIME_FOLD_AT > w->col + 1 ? MIME_FOLD_AT - w->col - 1 : 0;
		/* Room for at least a 4-byte character in either encoding. */
		if (room < MIME_EW_OVERHEAD + 12) {
			mime_hw_fold(w);
			room = MIME_FOLD_AT - 2;
		}
		if (room > MIME_EW_MAX)
			room = MIME_EW_MAX;
		payload = room - MIME_EW_OVERHEAD;
		take = 0;
		cost = 0;
		while (i + take < n) {
			size_t add = 0;

			k = str_utf8_char_len((const unsigned char *)s + i + take, n - i - take);
			HK_ASSERT(k > 0);
			if (q) {
				size_t j;

				for (j = 0; j < k; j++)
					add += mime_q_cost((unsigned char)s[i + take + j]);
				if (cost + add > payload)
					break;
				cost += add;
			} else if ((take + k + 2) / 3 * 4 > payload) {
				break;
			}
			take += k;
		}
		HK_ASSERT(take > 0);
		mime_hw_sep(w);
		k = w->out->len;
		buf_append_str(w->out, q ? "=?UTF-8?Q?" : "=?UTF-8?B?");
		mime_ew_append(w->out, s + i, take, q);
		buf_append(w->out, "?=", 2);
		w->col += w->out->len - k;
		w->has_word = true;
		i += take;
	}
}

/* Longest line of the field written since w->start (its CRLF not counted). */
static size_t
mime_hw_longest(const struct mime_hw *w)
{
	size_t i, line = w->start, longest = 0;

	for (i = w->start; i < w->out->len; i++) {
		if (w->out->ptr[i] == '\r') {
			if (i - line > longest)
				longest = i - line;
			line = i + 2;
			i++;
		}
	}
	if (w->out->len - line > longest)
		longest = w->out->len - line;
	return longest;
}

static void
mime_hw_end(struct mime_hw *w)
{
	buf_append(w->out, "\r\n", 2);
}

/* ---- header fields ---- */

/* RFC 5322 3.2.3 atext. */
static bool
mime_is_atext(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/*
 * Text that would read as an encoded word must itself be encoded (RFC 2047 6.2 would decode it);
 * so must text with 8-bit bytes.
 */
static bool
mime_needs_encoding(const char *s, size_t n)
{
	return !mime_is_ascii(s, n) || memmem(s, n, "=?", 2) != NULL;
}

/*
 * A display name: atoms as they are when it is a phrase of atoms separated by single spaces, a
 * quoted string when it is short printable ASCII, else encoded words.
 */
static void
mime_hw_name(struct mime_hw *w, const char *s, struct buf *tmp)
{
	size_t n = strlen(s), i, word;
	bool atoms = n > 0 && s[0] != ' ' && s[n - 1] != ' ';

	if (mime_needs_encoding(s, n) || memchr(s, '\t', n) != NULL) {
		mime_hw_encoded(w, s, n);
		return;
	}
	for (i = 0; i < n && atoms; i++)
		if (!mime_is_atext((unsigned char)s[i]) && !(s[i] == ' ' && s[i + 1] != ' '))
			atoms = false;
	if (atoms) {
		for (i = 0; i < n; i = word + 1) {
			word = i;
			while (word < n && s[word] != ' ')
				word++;
			if (word - i > MIME_FOLD_AT - 2) {
				atoms = false;
				break;
			}
		}
	}
	if (atoms) {
		for (i = 0; i < n; i = word + 1) {
			word = i;
			while (word < n && s[word] != ' ')
				word++;
			mime_hw_word(w, s + i, word - i);
		}
		return;
	}
	/* RFC 5322 3.2.4: a quoted string escapes '"' and '\'. */
	buf_reset(tmp);
	buf_putc(tmp, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_putc(tmp, '\\');
		buf_putc(tmp, s[i]);
	}
	buf_putc(tmp, '"');
	if (tmp->len > MIME_FOLD_AT - 2)
		mime_hw_encoded(w, s, n);
	else
		mime_hw_word(w, tmp->ptr, tmp->len);
}

static enum mime_error
mime_check_addr(struct mime_ctx *c, const struct mime_addr *a, const char *field)
{
	struct addr_parts parts;
	const char *why = "missing";
	enum mime_error e;

	if (a->address == NULL || a->address[0] == '\0')
		return mime_fail(c, MIME_E_MISSING, field, "an address is required");
	e = mime_check_text(c, field, a->address, false);
	if (e != MIME_OK)
		return e;
	if (addr_parse(a->address, strlen(a->address), 0, &parts, &why) != ADDR_OK)
		return mime_fail(c, MIME_E_ADDRESS, field, "bad address: %s", why);
	if (a->name != NULL) {
		char sub[MIME_FIELD_MAX];

		snprintf(sub, sizeof(sub), "%s.name", field);
		return mime_check_text(c, sub, a->name, false);
	}
	return MIME_OK;
}

static enum mime_error
mime_check_list(struct mime_ctx *c, const char *what, const struct mime_addr *list, size_t n)
{
	char field[MIME_FIELD_MAX];
	enum mime_error e;
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "%s[%zu]", what, i);
		e = mime_check_addr(c, &list[i], field);
		if (e != MIME_OK)
			return e;
	}
	return MIME_OK;
}

static void
mime_write_addrs(struct buf *out, const char *name, const struct mime_addr *list, size_t n,
    struct buf *tmp)
{
	struct mime_hw w;
	size_t i;

	mime_hw_begin(&w, out, name);
	for (i = 0; i < n; i++) {
		const struct mime_addr *a = &list[i];

		if (i > 0)
			mime_hw_raw(&w, ",", 1);
		if (a->name != NULL && a->name[0] != '\0') {
			mime_hw_name(&w, a->name, tmp);
			buf_reset(tmp);
			buf_printf(tmp, "<%s>", a->address);
		} else {
			buf_reset(tmp);
			buf_append_str(tmp, a->address);
		}
		mime_hw_word(&w, tmp->ptr, tmp->len);
	}
	mime_hw_end(&w);
}

/* An unstructured field: plain when ASCII and foldable within 998, else encoded words. */
static bool
mime_write_unstructured(struct buf *out, const char *name, const char *value, bool may_encode)
{
	struct mime_hw w;
	size_t n = strlen(value), start = out->len;

	mime_hw_begin(&w, out, name);
	if (!mime_needs_encoding(value, n)) {
		mime_hw_text(&w, value, n);
		if (mime_hw_longest(&w) <= MIME_LINE_MAX) {
			mime_hw_end(&w);
			return true;
		}
		if (!may_encode) {
			buf_truncate(out, start);
			return false;
		}
		buf_truncate(out, start);
		mime_hw_begin(&w, out, name);
	}
	mime_hw_encoded(&w, value, n);
	mime_hw_end(&w);
	return true;
}

/* RFC 5322 3.6.8: ftext is printable ASCII except ':'. */
static bool
mime_is_field_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 || s[i] == ':')
			return false;
	return i > 0;
}

static enum mime_error
mime_check_header(struct mime_ctx *c, const struct mime_header *h)
{
	char field[MIME_FIELD_MAX];
	size_t i, k, n;
	enum mime_error e;

	if (h->name == NULL || h->name[0] == '\0')
		return mime_fail(c, MIME_E_HEADER_NAME, "headers", "empty header name");
	n = strlen(h->name);
	/* The field goes back to the client: only printable ASCII of the name is shown. */
	k = (size_t)snprintf(field, sizeof(field), "headers[");
	for (i = 0; i < n && i < 40; i++) {
		unsigned char ch = (unsigned char)h->name[i];

		field[k++] = ch > 32 && ch < 127 ? (char)ch : '?';
	}
	field[k++] = ']';
	field[k] = '\0';
	if (memchr(h->name, '\r', n) != NULL || memchr(h->name, '\n', n) != NULL)
		return mime_fail(c, MIME_E_CONTROL, field, "CR or LF is not allowed");
	if (!mime_is_field_name(h->name))
		return mime_fail(c, MIME_E_HEADER_NAME, field,
		    "not a header field name (printable ASCII without ':' or space)");
	if (n > MIME_FOLD_AT - 2)
		return mime_fail(c, MIME_E_HEADER_NAME, field, "header name too long");
	for (i = 0; i < HK_ARRAY_LEN(mime_owned); i++)
		if (str_eq_ci(h->name, n, mime_owned[i]))
			return mime_fail(c, MIME_E_FORBIDDEN, field, "set by the message fields");
	if (str_has_prefix_ci(h->name, n, "Content-"))
		return mime_fail(c, MIME_E_FORBIDDEN, field,
		    "Content-* fields are set by the builder");
	if (c->m->reply_to != NULL && str_eq_ci(h->name, n, "Reply-To"))
		return mime_fail(c, MIME_E_FORBIDDEN, field, "reply_to is given already");
	if (h->value == NULL)
		return mime_fail(c, MIME_E_MISSING, field, "a value is required");
	e = mime_check_text(c, field, h->value, true);
	return e;
}

/* RFC 5322 3.3 date-time and 3.6.4 msg-id as given by the caller: printable ASCII. */
static enum mime_error
mime_check_token(struct mime_ctx *c, const char *field, const char *s, bool spaces)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return mime_fail(c, MIME_E_MISSING, field, "required");
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 32 || ch > 126 || (!spaces && ch == ' '))
			return mime_fail(c, MIME_E_CONTROL, field, "printable ASCII expected");
	}
	if (i > MIME_FOLD_AT * 2)
		return mime_fail(c, MIME_E_TOO_LONG, field, "too long");
	return MIME_OK;
}

/* ---- bodies ---- */

/*
 * True when s can go as 7bit: ASCII without control bytes (tab excepted), lines within 78, no
 * white space before a line end (gateways strip it) and no "From " opening a line (mbox).
 */
static bool
mime_is_7bit_short(const char *s, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r' || ch == '\n') {
			if (col > 0 && mime_is_wsp(s[i - 1]))
				return false;
			if (ch == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			col = 0;
			continue;
		}
		if (col == 0 && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)
			return false;
		if (ch >= 0x7F || (ch < 0x20 && ch != '\t') || ++col > MIME_FOLD_AT)
			return false;
	}
	return col == 0 || !mime_is_wsp(s[n - 1]);
}

/* Lines of s with any of LF, CRLF, CR as ends, written with CRLF; a last line gets one too. */
static void
mime_body_7bit(struct buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			buf_append(out, "\r\n", 2);
		} else {
			buf_putc(out, s[i]);
		}
	}
	if (n > 0 && s[n - 1] != '\n' && s[n - 1] != '\r')
		buf_append(out, "\r\n", 2);
}

static void
mime_qp_put(struct buf *out, size_t *col, const char *tok, size_t len)
{
	/* Keep room for the '=' of a soft line break (RFC 2045 6.7 rule 5). */
	if (*col + len > MIME_QP_LINE - 1) {
		buf_append(out, "=\r\n", 3);
		*col = 0;
	}
	buf_append(out, tok, len);
	*col += len;
}

/* RFC 2045 6.7 quoted-printable with CRLF as the hard line break. */
static void
mime_body_qp(struct buf *out, const char *s, size_t n)
{
	size_t i, col = 0, line = 0;
	char enc[3];

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool eol_next;

		if (ch == '\r' || ch == '\n') {
			if (ch == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			buf_append(out, "\r\n", 2);
			col = 0;
			line = i + 1;
			continue;
		}
		eol_next = i + 1 == n || s[i + 1] == '\r' || s[i + 1] == '\n';
		/*
		 * Encode: '=', 8-bit and control bytes, white space before a line end (rule 3), and
		 * the F of "From " opening a line so mbox readers do not mangle it.
		 */
		if (ch == '=' || ch >= 0x7F || (ch < 0x20 && ch != '\t') ||
		    ((ch == ' ' || ch == '\t') && eol_next) ||
		    (i == line && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)) {
			enc[0] = '=';
			enc[1] = mime_hex[ch >> 4];
			enc[2] = mime_hex[ch & 15];
			mime_qp_put(out, &col, enc, 3);
		} else {
			enc[0] = (char)ch;
			mime_qp_put(out, &col, enc, 1);
		}
	}
	if (n > 0 && s[n - 1] != '\n' && s[n - 1] != '\r')
		buf_append(out, "\r\n", 2);
}

static enum mime_error
mime_text_part(struct mime_ctx *c, struct mime_part *p, const char *field, const char *subtype,
    const char *s, size_t n)
{
	if (!mime_utf8_is_valid(s, n))
		return mime_fail(c, MIME_E_UTF8, field, "not valid UTF-8");
	buf_printf(&p->hdr, "Content-Type: text/%s; charset=utf-8\r\n", subtype);
	if (mime_is_7bit_short(s, n)) {
		buf_append_str(&p->hdr, "Content-Transfer-Encoding: 7bit\r\n");
		mime_body_7bit(&p->body, s, n);
	} else {
		buf_append_str(&p->hdr, "Content-Transfer-Encoding: quoted-printable\r\n");
		mime_body_qp(&p->body, s, n);
	}
	/* An empty body still gets one line, so the delimiter's CRLF is never the header end's. */
	if (p->body.len == 0)
		buf_append(&p->body, "\r\n", 2);
	return MIME_OK;
}

/* ---- attachments ---- */

/* RFC 2045 5.1 token characters. */
static bool
mime_is_token_char(unsigned char ch)
{
	return ch > 32 && ch < 127 && strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

static size_t
mime_token_len(const char *s)
{
	size_t i = 0;

	while (s[i] != '\0' && mime_is_token_char((unsigned char)s[i]))
		i++;
	return i;
}

/* "type/subtype" then "; attribute=value" where value is a token or a quoted string. */
static enum mime_error
mime_check_content_type(struct mime_ctx *c, const char *field, const char *ct)
{
	const char *p = ct;
	size_t n;

	n = mime_token_len(p);
	if (n == 0 || p[n] != '/' || mime_token_len(p + n + 1) == 0)
		return mime_fail(c, MIME_E_CONTENT_TYPE, field, "expected type/subtype");
	if (str_has_prefix_ci(p, n, "multipart") || str_has_prefix_ci(p, n, "message"))
		return mime_fail(c, MIME_E_CONTENT_TYPE, field,
		    "multipart/* and message/* cannot be sent as base64 attachments");
	p += n + 1;
	p += mime_token_len(p);
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p++ != ';')
			goto bad;
		while (*p == ' ')
			p++;
		n = mime_token_len(p);
		if (n == 0 || p[n] != '=')
			goto bad;
		p += n + 1;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				else if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
					goto bad;
			}
			p++;
		} else {
			n = mime_token_len(p);
			if (n == 0)
				goto bad;
			p += n;
		}
		while (*p == ' ')
			p++;
	}
	if (p - ct > MIME_FOLD_AT * 2)
		return mime_fail(c, MIME_E_CONTENT_TYPE, field, "too long");
	return MIME_OK;
bad:
	return mime_fail(c, MIME_E_CONTENT_TYPE, field, "bad parameter list");
}

/*
 * The ASCII filename= fallback: printable ASCII kept except '"', '\' and '/'; each run of other
 * characters becomes one '_'; shortened from the middle, keeping the extension, to
 * MIME_FALLBACK_MAX. True when it equals the name.
 */
static bool
mime_fallback_name(struct buf *out, const char *s)
{
	size_t n = strlen(s), i, k, dot, keep;
	bool exact = true, replaced = false;

	buf_reset(out);
	for (i = 0; i < n; i += k) {
		k = str_utf8_char_len((const unsigned char *)s + i, n - i);
		if (k == 1 && s[i] != '"' && s[i] != '\\' && s[i] != '/') {
			buf_putc(out, s[i]);
			replaced = false;
			continue;
		}
		/* One '_' for a run of replaced characters: a Japanese name gives "_.pdf". */
		if (!replaced)
			buf_putc(out, '_');
		replaced = true;
		exact = false;
	}
	if (out->len > MIME_FALLBACK_MAX) {
		const char *dp = strrchr(out->ptr, '.');

		dot = dp != NULL ? (size_t)(dp - out->ptr) : out->len;
		keep = out->len - dot;
		if (keep > 10)
			keep = 0;
		memmove(out->ptr + MIME_FALLBACK_MAX - keep, out->ptr + out->len - keep, keep);
		buf_truncate(out, MIME_FALLBACK_MAX);
		exact = false;
	}
	return exact;
}

/* RFC 2231 attribute-char: token characters except '*', ''' and '%'. */
static bool
mime_is_attr_char(unsigned char ch)
{
	return mime_is_token_char(ch) && ch != '*' && ch != '\'' && ch != '%';
}

/* The RFC 2231 7 percent encoding of the character s[0..k) into enc; returns its length. */
static size_t
mime_pct_char(const char *s, size_t k, char *enc)
{
	size_t j, n = 0;

	for (j = 0; j < k; j++) {
		unsigned char ch = (unsigned char)s[j];

		if (mime_is_attr_char(ch)) {
			enc[n++] = (char)ch;
		} else {
			enc[n++] = '%';
			enc[n++] = mime_hex[ch >> 4];
			enc[n++] = mime_hex[ch & 15];
		}
	}
	return n;
}

/*
 * filename*=UTF-8''<pct> on one folded line when it fits, else RFC 2231 3 continuations
 * filename*0*=UTF-8''...; filename*1*=...; each within the fold column, split between characters.
 */
static void
mime_write_filename_star(struct buf *hdr, const char *s)
{
	size_t n = strlen(s), i, k, total = 0, line = 0, seg = 0, elen;
	char enc[4 * 3];
	bool empty = true;

	for (i = 0; i < n; i += k) {
		k = str_utf8_char_len((const unsigned char *)s + i, n - i);
		total += mime_pct_char(s + i, k, enc);
	}
	/* "\tfilename*=UTF-8''" is 19 columns, the tab counted as one; ';' ends the line before. */
	if (total + 19 <= MIME_FOLD_AT) {
		buf_append_str(hdr, ";\r\n\tfilename*=UTF-8''");
		for (i = 0; i < n; i += k) {
			k = str_utf8_char_len((const unsigned char *)s + i, n - i);
			buf_append(hdr, enc, mime_pct_char(s + i, k, enc));
		}
		return;
	}
	for (i = 0; i < n; i += k) {
		k = str_utf8_char_len((const unsigned char *)s + i, n - i);
		elen = mime_pct_char(s + i, k, enc);
		if (seg == 0 || (!empty && hdr->len - line + elen + 1 > MIME_FOLD_AT)) {
			buf_append(hdr, ";\r\n", 3);
			line = hdr->len;
			if (seg == 0)
				buf_append_str(hdr, "\tfilename*0*=UTF-8''");
			else
				buf_printf(hdr, "\tfilename*%zu*=", seg);
			seg++;
			empty = true;
		}
		buf_append(hdr, enc, elen);
		empty = false;
	}
}

static enum mime_error
mime_attachment_part(struct mime_ctx *c, struct mime_part *p, size_t idx, struct buf *tmp)
{
	const struct mime_attachment *a = &c->m->attachments[idx];
	char field[MIME_FIELD_MAX];
	struct buf fb = BUF_INIT;
	const char *ct = a->content_type != NULL ? a->content_type : "application/octet-stream";
	enum mime_error e;
	size_t i, k;
	bool exact;

	snprintf(field, sizeof(field), "attachments[%zu].filename", idx);
	if (a->filename == NULL || a->filename[0] == '\0')
		return mime_fail(c, MIME_E_MISSING, field, "a file name is required");
	e = mime_check_text(c, field, a->filename, false);
	if (e != MIME_OK)
		return e;
	snprintf(field, sizeof(field), "attachments[%zu].content_type", idx);
	e = mime_check_text(c, field, ct, false);
	if (e != MIME_OK)
		return e;
	e = mime_check_content_type(c, field, ct);
	if (e != MIME_OK)
		return e;
	HK_ASSERT(a->content != NULL || a->content_len == 0);

	exact = mime_fallback_name(&fb, a->filename);
	buf_printf(&p->hdr, "Content-Type: %s;\r\n\tname=\"%s\"\r\n", ct, fb.ptr);
	buf_printf(&p->hdr, "Content-Disposition: attachment;\r\n\tfilename=\"%s\"", fb.ptr);
	if (!exact)
		mime_write_filename_star(&p->hdr, a->filename);
	buf_append_str(&p->hdr, "\r\nContent-Transfer-Encoding: base64\r\n");
	buf_fini(&fb);

	buf_reset(tmp);
	base64_encode(tmp, a->content, a->content_len);
	for (i = 0; i < tmp->len; i += k) {
		k = tmp->len - i < MIME_B64_LINE ? tmp->len - i : MIME_B64_LINE;
		buf_append(&p->body, tmp->ptr + i, k);
		buf_append(&p->body, "\r\n", 2);
	}
	if (p->body.len == 0)
		buf_append(&p->body, "\r\n", 2);
	return MIME_OK;
}

/* ---- multipart ---- */

static bool
mime_parts_contain(const struct mime_part *parts, size_t n, const struct buf *b)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (memmem(parts[i].hdr.ptr, parts[i].hdr.len, b->ptr, b->len) != NULL ||
		    memmem(parts[i].body.ptr, parts[i].body.len, b->ptr, b->len) != NULL)
			return true;
	}
	return false;
}

/*
 * A boundary found in no part (RFC 2046 5.1.1): "=_hk" (never produced by base64 or
 * quoted-printable), a kind letter, the seed in hex, and a counter when needed. The kind
 * letters keep the nested boundaries from being prefixes of each other.
 */
static void
mime_boundary(struct buf *b, const struct mime_msg *m, char kind, const struct mime_part *parts,
    size_t n)
{
	unsigned counter = 0;
	size_t i;

	for (;;) {
		buf_reset(b);
		buf_printf(b, "=_hk%c_", kind);
		for (i = 0; i < m->seed_len && i < 16; i++) {
			buf_putc(b, mime_hex[m->seed[i] >> 4]);
			buf_putc(b, mime_hex[m->seed[i] & 15]);
		}
		if (counter > 0)
			buf_printf(b, ".%u", counter);
		if (!mime_parts_contain(parts, n, b))
			return;
		counter++;
	}
}

/* Wrap parts[0..n) into out as multipart/<subtype>; the parts are left as they are. */
static void
mime_multipart(const struct mime_msg *m, struct mime_part *out, const char *subtype, char kind,
    const struct mime_part *parts, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	mime_boundary(&b, m, kind, parts, n);
	buf_printf(&out->hdr, "Content-Type: multipart/%s;\r\n\tboundary=\"%s\"\r\n", subtype,
	    b.ptr);
	/*
	 * RFC 2046 5.1.1: the CRLF before a delimiter belongs to the delimiter. Every part ends
	 * with its own line break, so delimiters after the first start with one more CRLF, or a
	 * text part would lose its last line break.
	 */
	for (i = 0; i < n; i++) {
		buf_printf(&out->body, "%s--%s\r\n", i ? "\r\n" : "", b.ptr);
		buf_append(&out->body, parts[i].hdr.ptr, parts[i].hdr.len);
		buf_append(&out->body, "\r\n", 2);
		buf_append(&out->body, parts[i].body.ptr, parts[i].body.len);
	}
	buf_printf(&out->body, "\r\n--%s--\r\n", b.ptr);
	buf_fini(&b);
}

static void
mime_part_fini(struct mime_part *p)
{
	buf_fini(&p->hdr);
	buf_fini(&p->body);
}

/* ---- envelope ---- */

/* Same mailbox: local parts exactly, domains ignoring case. */
static bool
mime_same_addr(const char *a, const char *b)
{
	const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');
	size_t la, lb;

	if (at_a == NULL || at_b == NULL)
		return strcmp(a, b) == 0;
	la = (size_t)(at_a - a);
	lb = (size_t)(at_b - b);
	return la == lb && memcmp(a, b, la) == 0 && str_eq_ci(at_a, strlen(at_a), at_b);
}

static void
mime_add_rcpts(struct mime_out *out, const struct mime_addr *list, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < out->rcpt_count; j++)
			if (mime_same_addr(out->rcpts[j], list[i].address))
				break;
		if (j == out->rcpt_count)
			out->rcpts[out->rcpt_count++] = list[i].address;
	}
}

/* ---- top level ---- */

static enum mime_error
mime_check_fields(struct mime_ctx *c)
{
	const struct mime_msg *m = c->m;
	enum mime_error e;
	size_t i;

	if ((e = mime_check_addr(c, &m->from, "from")) != MIME_OK ||
	    (e = mime_check_list(c, "to", m->to, m->to_count)) != MIME_OK ||
	    (e = mime_check_list(c, "cc", m->cc, m->cc_count)) != MIME_OK ||
	    (e = mime_check_list(c, "bcc", m->bcc, m->bcc_count)) != MIME_OK)
		return e;
	if (m->to_count + m->cc_count + m->bcc_count == 0)
		return mime_fail(c, MIME_E_MISSING, "to", "at least one recipient is required");
	if (m->reply_to != NULL && (e = mime_check_addr(c, m->reply_to, "reply_to")) != MIME_OK)
		return e;
	if (m->subject != NULL && (e = mime_check_text(c, "subject", m->subject, true)) != MIME_OK)
		return e;
	for (i = 0; i < m->header_count; i++)
		if ((e = mime_check_header(c, &m->headers[i])) != MIME_OK)
			return e;
	if ((e = mime_check_token(c, "date", m->date, true)) != MIME_OK ||
	    (e = mime_check_token(c, "message_id", m->message_id, false)) != MIME_OK)
		return e;
	if (m->message_id[0] != '<' || m->message_id[strlen(m->message_id) - 1] != '>' ||
	    strchr(m->message_id, '@') == NULL)
		return mime_fail(c, MIME_E_MISSING, "message_id", "expected <left@right>");
	return MIME_OK;
}

static enum mime_error
mime_write_headers(struct mime_ctx *c, struct buf *out, struct buf *tmp)
{
	const struct mime_msg *m = c->m;
	char field[MIME_FIELD_MAX];
	size_t i;

	mime_write_addrs(out, "From", &m->from, 1, tmp);
	if (m->to_count > 0)
		mime_write_addrs(out, "To", m->to, m->to_count, tmp);
	if (m->cc_count > 0)
		mime_write_addrs(out, "Cc", m->cc, m->cc_count, tmp);
	if (m->reply_to != NULL)
		mime_write_addrs(out, "Reply-To", m->reply_to, 1, tmp);
	if (m->subject != NULL)
		(void)mime_write_unstructured(out, "Subject", m->subject, true);
	buf_printf(out, "Date: %s\r\nMessage-ID: %s\r\n", m->date, m->message_id);
	for (i = 0; i < m->header_count; i++) {
		const struct mime_header *h = &m->headers[i];

		if (!mime_write_unstructured(out, h->name, h->value, false)) {
			snprintf(field, sizeof(field), "headers[%.40s]", h->name);
			return mime_fail(c, MIME_E_TOO_LONG, field,
			    "a word is too long to fold within 998 characters");
		}
	}
	buf_append_str(out, "MIME-Version: 1.0\r\n");
	return MIME_OK;
}

static enum mime_error
mime_build_body(struct mime_ctx *c, struct mime_part *top, struct buf *tmp)
{
	const struct mime_msg *m = c->m;
	struct mime_part alt[2], *parts;
	size_t nalt = 0, nparts = 0, i, total = 1 + m->attachment_count;
	enum mime_error e = MIME_OK;

	memset(alt, 0, sizeof(alt));
	parts = xcalloc(total, sizeof(*parts));
	/* No body at all: an empty text part, unless attachments carry the message. */
	if (m->text != NULL || (m->html == NULL && m->attachment_count == 0))
		e = mime_text_part(c, &alt[nalt++], "text", "plain",
		    m->text != NULL ? m->text : "", m->text != NULL ? m->text_len : 0);
	if (e == MIME_OK && m->html != NULL)
		e = mime_text_part(c, &alt[nalt++], "html", "html", m->html, m->html_len);
	if (e != MIME_OK)
		goto done;
	if (nalt == 2) {
		mime_multipart(m, &parts[nparts++], "alternative", 'a', alt, 2);
	} else if (nalt == 1) {
		parts[nparts++] = alt[0];
		memset(&alt[0], 0, sizeof(alt[0]));
	}
	for (i = 0; i < m->attachment_count; i++) {
		e = mime_attachment_part(c, &parts[nparts++], i, tmp);
		if (e != MIME_OK)
			goto done;
	}
	if (m->attachment_count == 0) {
		*top = parts[0];
		memset(&parts[0], 0, sizeof(parts[0]));
	} else {
		mime_multipart(m, top, "mixed", 'm', parts, nparts);
	}
done:
	for (i = 0; i < total; i++)
		mime_part_fini(&parts[i]);
	mime_part_fini(&alt[0]);
	mime_part_fini(&alt[1]);
	free(parts);
	return e;
}

void
mime_out_init(struct mime_out *out)
{
	memset(out, 0, sizeof(*out));
	buf_init(&out->data);
}

void
mime_out_fini(struct mime_out *out)
{
	buf_fini(&out->data);
	free(out->rcpts);
	out->rcpts = NULL;
	out->rcpt_count = 0;
}

enum mime_error
mime_build(const struct mime_msg *m, struct mime_out *out)
{
	struct mime_ctx c = { .m = m, .out = out };
	struct mime_part top = { BUF_INIT, BUF_INIT };
	struct buf tmp = BUF_INIT;
	enum mime_error e;

	buf_reset(&out->data);
	free(out->rcpts);
	out->rcpts = NULL;
	out->rcpt_count = 0;
	out->field[0] = '\0';
	out->message[0] = '\0';

	e = mime_check_fields(&c);
	if (e == MIME_OK)
		e = mime_write_headers(&c, &out->data, &tmp);
	if (e == MIME_OK)
		e = mime_build_body(&c, &top, &tmp);
	if (e == MIME_OK) {
		buf_append(&out->data, top.hdr.ptr, top.hdr.len);
		buf_append(&out->data, "\r\n", 2);
		if (m->attachment_count > 0 || (m->text != NULL && m->html != NULL))
			buf_append_str(&out->data, mime_preamble);
		buf_append(&out->data, top.body.ptr, top.body.len);
		out->rcpts = xcalloc(m->to_count + m->cc_count + m->bcc_count, sizeof(*out->rcpts));
		mime_add_rcpts(out, m->to, m->to_count);
		mime_add_rcpts(out, m->cc, m->cc_count);
		mime_add_rcpts(out, m->bcc, m->bcc_count);
	} else {
		buf_reset(&out->data);
	}
	mime_part_fini(&top);
	buf_fini(&tmp);
	return e;
}

int
mime_error_http_status(enum mime_error e)
{
	switch (e) {
	case MIME_OK:
		return 200;
	case MIME_E_CONTROL:
	case MIME_E_UTF8:
	case MIME_E_HEADER_NAME:
		return 400;
	case MIME_E_MISSING:
	case MIME_E_ADDRESS:
	case MIME_E_FORBIDDEN:
	case MIME_E_TOO_LONG:
	case MIME_E_CONTENT_TYPE:
		return 422;
	}
	return 400;
}

const char *
mime_error_code(enum mime_error e)
{
	static const char *const names[] = {
		[MIME_OK] = "ok",
		[MIME_E_MISSING] = "missing_field",
		[MIME_E_ADDRESS] = "bad_address",
		[MIME_E_CONTROL] = "control_character",
		[MIME_E_UTF8] = "bad_utf8",
		[MIME_E_HEADER_NAME] = "bad_header_name",
		[MIME_E_FORBIDDEN] = "header_not_allowed",
		[MIME_E_TOO_LONG] = "line_too_long",
		[MIME_E_CONTENT_TYPE] = "bad_content_type",
	};

	return (size_t)e < HK_ARRAY_LEN(names) && names[e] != NULL ? names[e] : "error";
}
