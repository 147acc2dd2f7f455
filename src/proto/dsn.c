/* dsn.c - RFC 3464 delivery status notifications and the RFC 3461 NOTIFY rule. */
#include <string.h>

#include "dsn.h"
#include "../util/xtext.h"
#include "../util/poison.h"

/* Fold or wrap before this column; RFC 5322 2.1.1 recommends 78. */
#define DSN_WRAP 76
/* A word longer than this is cut, so no line can reach the 998-octet limit. */
#define DSN_WORD_MAX 900
/* RFC 5322 2.1.1: at most 998 octets before CRLF. */
#define DSN_LINE_MAX 998

bool
dsn_should_send(unsigned notify, enum dsn_state state, const char *sender)
{
	/* RFC 5321 4.5.5 / RFC 3461 6.2: never notify the null reverse-path. */
	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
		return false;
	if ((notify & DSN_NOTIFY_NEVER) != 0)
		return false;
	switch (state) {
	case DSN_STATE_BOUNCED:
	case DSN_STATE_EXPIRED:
		/* RFC 3461 4.1: without NOTIFY, failures are reported. */
		return notify == 0 || (notify & DSN_NOTIFY_FAILURE) != 0;
	case DSN_STATE_DELAYED:
		return (notify & DSN_NOTIFY_DELAY) != 0;
	case DSN_STATE_SENT:
		return (notify & DSN_NOTIFY_SUCCESS) != 0;
	case DSN_STATE_SUPPRESSED:
		return false;
	}
	return false;
}

void
dsn_format_date(struct buf *out, int64_t t)
{
	static const char wdays[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t days = t / 86400, secs = t % 86400, z, era, doe, yoe, doy, mp, y, m, d;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	/* Proleptic Gregorian calendar from days since 1970-01-01 (a Thursday). */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2 ? 1 : 0);
	buf_printf(out, "%s, %d %s %04lld %02d:%02d:%02d +0000", wdays[((days % 7) + 7) % 7],
	    (int)d, months[m - 1], (long long)y, (int)(secs / 3600), (int)(secs / 60 % 60),
	    (int)(secs % 60));
}

/* Text from peers or configuration, made safe for a 7-bit line: no control or 8-bit bytes. */
static inline char
dsn_safe_char(unsigned char c)
{
	if (c < 32 || c == 127)
		return ' ';
	if (c >= 128)
		return '?';
	return (char)c;
}

/*
 * Append the words of s[0..n) starting at column col, wrapping before DSN_WRAP with CRLF and
 * cont (a fold " " for fields, an indent for prose); ends with CRLF. Runs of blanks collapse to
 * one space; a word over DSN_WORD_MAX is cut into pieces on separate lines.
 */
static void
dsn_words(struct buf *out, size_t col, const char *cont, const char *s, size_t n)
{
	size_t i = 0, start, wl, take, cont_len = strlen(cont);
	bool first = true;

	while (i < n) {
		while (i < n && dsn_safe_char((unsigned char)s[i]) == ' ')
			i++;
		if (i >= n)
			break;
		start = i;
		while (i < n && dsn_safe_char((unsigned char)s[i]) != ' ')
			i++;
		wl = i - start;
		while (wl > 0) {
			take = wl > DSN_WORD_MAX ? DSN_WORD_MAX : wl;
			if (!first && col + 1 + take > DSN_WRAP) {
				buf_append(out, "\r\n", 2);
				buf_append(out, cont, cont_len);
				col = cont_len;
			} else if (!first) {
				buf_putc(out, ' ');
				col++;
			}
			for (size_t k = 0; k < take; k++)
				buf_putc(out, dsn_safe_char((unsigned char)s[start + k]));
			col += take;
			start += take;
			wl -= take;
			first = false;
		}
	}
	buf_append(out, "\r\n", 2);
}

/* "Name: value" as a folded field. */
static void
dsn_field(struct buf *out, const char *name, const char *value, size_t n)
{
	buf_append_str(out, name);
	buf_append(out, ": ", 2);
	dsn_words(out, strlen(name) + 2, " ", value, n);
}

static void
dsn_field_str(struct buf *out, const char *name, const char *value)
{
	dsn_field(out, name, value, strlen(value));
}

static void
dsn_field_date(struct buf *out, const char *name, int64_t t)
{
	buf_append_str(out, name);
	buf_append(out, ": ", 2);
	dsn_format_date(out, t);
	buf_append(out, "\r\n", 2);
}

/* The reply as one line: "550 5.1.1 text" (lines joined by spaces, cleaned by the caller). */
static void
dsn_reply_text(struct buf *tmp, const struct smtp_reply *r)
{
	buf_printf(tmp, "%03d", r->code);
	if (r->enh_class != 0)
		buf_printf(tmp, " %d.%d.%d", r->enh_class, r->enh_subject, r->enh_detail);
	if (r->text_len > 0) {
		buf_putc(tmp, ' ');
		buf_append(tmp, r->text, r->text_len);
	}
}

static bool
dsn_is_ascii_print(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
			return false;
	return true;
}

/* Next code point of UTF-8 s[*i..n), U+FFFD for a malformed sequence. */
static uint32_t
dsn_utf8_next(const char *s, size_t n, size_t *i)
{
	unsigned char c = (unsigned char)s[(*i)++];
	size_t more = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
	uint32_t cp = more == 3 ? c & 0x07u : more == 2 ? c & 0x0fu : c & 0x1fu;

	if (c < 0x80)
		return c;
	if (more == 0 || c >= 0xf5)
		return 0xfffd;
	while (more-- > 0) {
		if (*i >= n || ((unsigned char)s[*i] & 0xc0) != 0x80)
			return 0xfffd;
		cp = cp << 6 | ((unsigned char)s[(*i)++] & 0x3fu);
	}
	return cp;
}

/*
 * An address field value: "rfc822; addr" when ASCII, else RFC 6533 3 "utf-8; " with
 * utf-8-addr-xtext (\x{HEX} for every character that is not plain printable ASCII).
 */
static void
dsn_address(struct buf *tmp, const char *type_sep, const char *a, size_t n)
{
	size_t i = 0;
	uint32_t cp;

	if (dsn_is_ascii_print(a, n)) {
		buf_printf(tmp, "rfc822%s", type_sep);
		buf_append(tmp, a, n);
		return;
	}
	buf_printf(tmp, "utf-8%s", type_sep);
	while (i < n) {
		cp = dsn_utf8_next(a, n, &i);
		if (cp > 32 && cp < 127 && cp != '+' && cp != '=' && cp != '\\')
			buf_putc(tmp, (char)cp);
		else
			buf_printf(tmp, "\\x{%X}", (unsigned)cp);
	}
}

/* RFC 3464 2.2.1 / 2.3.1: ENVID and ORCPT are written xtext-decoded when that is plain text. */
static void
dsn_decoded(struct buf *tmp, const char *x, size_t n)
{
	size_t mark = tmp->len;

	if (xtext_decode(tmp, x, n) == 0 && dsn_is_ascii_print(tmp->ptr + mark, tmp->len - mark))
		return;
	buf_truncate(tmp, mark);
	buf_append(tmp, x, n);
}

/* How the original may be returned. */
struct dsn_scan {
	size_t hdr_len; /* header section, through the CRLF of its last field */
	bool hdr_ok;    /* CRLF-only lines of at most 998 octets, no NUL */
	bool full_ok;
	bool hdr_8bit;
	bool full_8bit;
};

static void
dsn_scan_msg(const char *m, size_t n, struct dsn_scan *sc)
{
	size_t i, line_start = 0;
	bool in_hdr = true, ok = true, eight = false;

	memset(sc, 0, sizeof(*sc));
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m[i];

		if (c == '\n' || (c == '\r' && (i + 1 >= n || m[i + 1] != '\n')) || c == '\0')
			ok = false;
		if (c >= 0x80)
			eight = true;
		if (c == '\r' && i + 1 < n && m[i + 1] == '\n') {
			if (i - line_start > DSN_LINE_MAX)
				ok = false;
			if (in_hdr && i == line_start) {
				/* The empty line ends the header section. */
				in_hdr = false;
				sc->hdr_len = line_start;
				sc->hdr_ok = ok;
				sc->hdr_8bit = eight;
			}
			i++;
			line_start = i + 1;
		}
	}
	if (n - line_start > DSN_LINE_MAX)
		ok = false;
	if (in_hdr) {
		/* No body: all of it is header; it must end with CRLF to be a section. */
		sc->hdr_len = n;
		sc->hdr_ok = ok && line_start == n;
		sc->hdr_8bit = eight;
	}
	sc->full_ok = ok && line_start == n;
	sc->full_8bit = eight;
}

static bool
dsn_is_hostname(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* "c.s.d": class in classes (a string of digits), subject and detail 1..3 digits. */
static bool
dsn_is_status(const char *s, const char *classes)
{
	size_t i = 2, k;

	if (s == NULL || s[0] == '\0' || strchr(classes, s[0]) == NULL || s[1] != '.')
		return false;
	for (k = 0; s[i] >= '0' && s[i] <= '9'; i++)
		k++;
	if (k < 1 || k > 3 || s[i++] != '.')
		return false;
	for (k = 0; s[i] >= '0' && s[i] <= '9'; i++)
		k++;
	return k >= 1 && k <= 3 && s[i] == '\0';
}

static const char *
dsn_check(const struct dsn_report *rep)
{
	size_t i;

	if (rep->reporting_mta == NULL || !dsn_is_hostname(rep->reporting_mta))
		return "reporting_mta must be a host name";
	if (rep->queue_id == NULL || strlen(rep->queue_id) != 16 ||
	    strspn(rep->queue_id, "0123456789ABCDEFabcdef") != 16)
		return "queue_id must be 16 hex digits";
	if (rep->sender == NULL || rep->sender[0] == '\0' || strcmp(rep->sender, "<>") == 0)
		return "no DSN to the null sender";
	if (strpbrk(rep->sender, "<>\r\n") != NULL ||
	    !dsn_is_ascii_print(rep->sender, strlen(rep->sender)))
		return "sender has a byte that cannot go into To:";
	if (rep->nrcpts == 0 || rep->rcpts == NULL)
		return "no recipients";
	if (rep->msg == NULL && rep->msg_len != 0)
		return "msg_len without msg";
	for (i = 0; i < rep->nrcpts; i++) {
		const struct dsn_rcpt *r = &rep->rcpts[i];

		if (r->address == NULL || r->address[0] == '\0')
			return "recipient without address";
		if (!dsn_is_status(r->status, rep->type == DSN_TYPE_DELAY ? "4" : "45"))
			return rep->type == DSN_TYPE_DELAY ? "delayed status must be 4.x.x" :
							     "failed status must be 4.x.x or 5.x.x";
		if (r->remote_mta != NULL && !dsn_is_hostname(r->remote_mta))
			return "remote_mta must be a host name";
	}
	return NULL;
}

/* True when b[0..n) occurs in s[0..len). */
static bool
dsn_contains(const char *s, size_t len, const char *b, size_t n)
{
	return s != NULL && memmem(s, len, b, n) != NULL;
}

/*
 * A boundary that occurs nowhere in the parts (RFC 2046 5.1.1), peer text included: derived from
 * the queue id and the time, with a counter added until it is unique.
 */
static void
dsn_boundary(struct buf *b, const struct dsn_report *rep, const struct buf *parts)
{
	unsigned n = 0;

	for (;;) {
		buf_reset(b);
		buf_printf(b, "=_%s.%lld/%s", rep->queue_id, (long long)rep->now,
		    rep->reporting_mta);
		if (n > 0)
			buf_printf(b, ".%u", n);
		if (!dsn_contains(rep->msg, rep->msg_len, b->ptr, b->len) &&
		    !dsn_contains(parts->ptr, parts->len, b->ptr, b->len))
			return;
		n++;
	}
}

static void
dsn_human_rcpt(struct buf *out, struct buf *tmp, const struct dsn_report *rep,
    const struct dsn_rcpt *r)
{
	buf_reset(tmp);
	buf_printf(tmp, "<%s>: ", r->address);
	if (rep->type == DSN_TYPE_DELAY) {
		buf_append_str(tmp, "not delivered yet; we keep trying");
		if (r->will_retry_until != 0) {
			buf_append_str(tmp, " until ");
			dsn_format_date(tmp, r->will_retry_until);
		}
		buf_putc(tmp, '.');
	} else if (r->expired) {
		buf_append_str(tmp, "we gave up: it could not be delivered since ");
		dsn_format_date(tmp, rep->arrival);
		buf_putc(tmp, '.');
	} else {
		buf_append_str(tmp, "delivery failed.");
	}
	dsn_words(out, 0, "    ", tmp->ptr, tmp->len);
	if (r->explain != NULL) {
		buf_reset(tmp);
		buf_printf(tmp, "What happened: %s", r->explain->cause);
		buf_append(out, "    ", 4);
		dsn_words(out, 4, "    ", tmp->ptr, tmp->len);
		buf_reset(tmp);
		buf_printf(tmp, "What to do: %s", r->explain->fix);
		buf_append(out, "    ", 4);
		dsn_words(out, 4, "    ", tmp->ptr, tmp->len);
	}
	buf_reset(tmp);
	if (r->reply != NULL) {
		if (r->remote_mta != NULL)
			buf_printf(tmp, "%s said: ", r->remote_mta);
		else
			buf_append_str(tmp, "The server said: ");
		dsn_reply_text(tmp, r->reply);
	} else if (r->local_diagnostic != NULL) {
		buf_printf(tmp, "Reason: %s", r->local_diagnostic);
	}
	if (tmp->len > 0) {
		buf_append(out, "    ", 4);
		dsn_words(out, 4, "    ", tmp->ptr, tmp->len);
	}
	buf_append(out, "\r\n", 2);
}

static void
dsn_human(struct buf *out, struct buf *tmp, const struct dsn_report *rep, int returned)
{
	static const char *const closing[] = {
		"The original message is not attached.",
		"The headers of the original message are attached.",
		"The original message is attached.",
	};
	size_t i;

	buf_append_str(out, "Content-Description: Notification\r\n"
			    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	buf_reset(tmp);
	buf_printf(tmp, "This is the mail relay at %s.", rep->reporting_mta);
	dsn_words(out, 0, "", tmp->ptr, tmp->len);
	buf_append(out, "\r\n", 2);
	if (rep->type == DSN_TYPE_DELAY)
		buf_append_str(out, "Your message has not been delivered yet to the recipients "
				    "below. It stays\r\nqueued and is retried; you do not need "
				    "to send it again.\r\n\r\n");
	else
		buf_append_str(out, "Your message could not be delivered to the recipients "
				    "below. This is final:\r\nthe message will not be retried.\r\n"
				    "\r\n");
	for (i = 0; i < rep->nrcpts; i++)
		dsn_human_rcpt(out, tmp, rep, &rep->rcpts[i]);
	buf_append_str(out, closing[returned]);
	buf_append(out, "\r\n", 2);
}

static void
dsn_status_part(struct buf *out, struct buf *tmp, const struct dsn_report *rep)
{
	size_t i;

	buf_append_str(out, "Content-Description: Delivery report\r\n"
			    "Content-Type: message/delivery-status\r\n\r\n");
	/* RFC 3464 2.2: per-message fields, in the order of the grammar. */
	if (rep->envid != NULL) {
		buf_reset(tmp);
		dsn_decoded(tmp, rep->envid, strlen(rep->envid));
		dsn_field(out, "Original-Envelope-Id", tmp->ptr, tmp->len);
	}
	buf_reset(tmp);
	buf_printf(tmp, "dns; %s", rep->reporting_mta);
	dsn_field(out, "Reporting-MTA", tmp->ptr, tmp->len);
	dsn_field_str(out, "X-Hikyaku-Queue-ID", rep->queue_id);
	dsn_field_date(out, "Arrival-Date", rep->arrival);
	/* RFC 3464 2.3: one block of per-recipient fields each, after an empty line. */
	for (i = 0; i < rep->nrcpts; i++) {
		const struct dsn_rcpt *r = &rep->rcpts[i];

		buf_append(out, "\r\n", 2);
		if (r->orcpt != NULL) {
			const char *semi = strchr(r->orcpt, ';');

			buf_reset(tmp);
			if (semi != NULL) {
				buf_append(tmp, r->orcpt, (size_t)(semi - r->orcpt) + 1);
				dsn_decoded(tmp, semi + 1, strlen(semi + 1));
			} else {
				buf_append_str(tmp, r->orcpt);
			}
			dsn_field(out, "Original-Recipient", tmp->ptr, tmp->len);
		}
		buf_reset(tmp);
		dsn_address(tmp, ";", r->address, strlen(r->address));
		dsn_field(out, "Final-Recipient", tmp->ptr, tmp->len);
		dsn_field_str(out, "Action", rep->type == DSN_TYPE_DELAY ? "delayed" : "failed");
		dsn_field_str(out, "Status", r->status);
		if (r->remote_mta != NULL) {
			buf_reset(tmp);
			buf_printf(tmp, "dns; %s", r->remote_mta);
			dsn_field(out, "Remote-MTA", tmp->ptr, tmp->len);
		}
		buf_reset(tmp);
		if (r->reply != NULL) {
			buf_append_str(tmp, "smtp; ");
			dsn_reply_text(tmp, r->reply);
		} else if (r->local_diagnostic != NULL) {
			buf_printf(tmp, "X-Hikyaku; %s", r->local_diagnostic);
		}
		if (tmp->len > 0)
			dsn_field(out, "Diagnostic-Code", tmp->ptr, tmp->len);
		if (r->last_attempt != 0)
			dsn_field_date(out, "Last-Attempt-Date", r->last_attempt);
		if (rep->type == DSN_TYPE_DELAY && r->will_retry_until != 0)
			dsn_field_date(out, "Will-Retry-Until", r->will_retry_until);
	}
}

/* 0 nothing, 1 headers, 2 full message; *eight tells whether it has 8-bit bytes. */
static int
dsn_choose_return(const struct dsn_report *rep, const struct dsn_scan *sc, bool *eight)
{
	size_t max = rep->max_full != 0 ? rep->max_full : DSN_MAX_FULL_DEFAULT;

	*eight = false;
	if (rep->msg == NULL)
		return 0;
	if (rep->type == DSN_TYPE_FAILURE && rep->ret == DSN_RET_FULL && sc->full_ok &&
	    rep->msg_len <= max) {
		*eight = sc->full_8bit;
		return 2;
	}
	/* Headers bigger than the bound are not returned either. */
	if (sc->hdr_ok && sc->hdr_len > 0 && sc->hdr_len <= max) {
		*eight = sc->hdr_8bit;
		return 1;
	}
	return 0;
}

enum dsn_result
dsn_build(const struct dsn_report *rep, struct buf *out, unsigned *out_flags, const char **why)
{
	struct buf bnd = BUF_INIT, tmp = BUF_INIT, human = BUF_INIT, status = BUF_INIT;
	struct dsn_scan sc;
	const char *bad;
	bool eight;
	int returned;

	bad = dsn_check(rep);
	if (bad != NULL) {
		if (why != NULL)
			*why = bad;
		return DSN_BAD_INPUT;
	}
	dsn_scan_msg(rep->msg != NULL ? rep->msg : "", rep->msg_len, &sc);
	returned = dsn_choose_return(rep, &sc, &eight);
	dsn_human(&human, &tmp, rep, returned);
	dsn_status_part(&status, &tmp, rep);
	/* Both parts hold peer text, so the boundary is checked against them too. */
	buf_reset(&tmp);
	buf_append(&tmp, human.ptr, human.len);
	buf_append(&tmp, status.ptr, status.len);
	dsn_boundary(&bnd, rep, &tmp);

	dsn_field_date(out, "Date", rep->now);
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", rep->reporting_mta);
	buf_printf(out, "To: <%s>\r\n", rep->sender);
	dsn_field_str(out, "Subject", rep->type == DSN_TYPE_DELAY ?
	    "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender");
	buf_printf(out, "Message-ID: <%s.%lld.dsn@%s>\r\n", rep->queue_id, (long long)rep->now,
	    rep->reporting_mta);
	/* RFC 3834 5: machine-generated; auto-responders must not answer it. */
	buf_append_str(out, "Auto-Submitted: auto-replied\r\n");
	buf_append_str(out, "MIME-Version: 1.0\r\n");
	buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			"\tboundary=\"%s\"\r\n", bnd.ptr);
	buf_append_str(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	buf_printf(out, "--%s\r\n", bnd.ptr);
	buf_append(out, human.ptr, human.len);
	buf_printf(out, "\r\n--%s\r\n", bnd.ptr);
	buf_append(out, status.ptr, status.len);
	if (returned == 2) {
		buf_printf(out, "\r\n--%s\r\n", bnd.ptr);
		buf_append_str(out, "Content-Description: Undelivered Message\r\n"
				    "Content-Type: message/rfc822\r\n");
		if (eight)
			buf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
		buf_append(out, "\r\n", 2);
		buf_append(out, rep->msg, rep->msg_len);
	} else if (returned == 1) {
		buf_printf(out, "\r\n--%s\r\n", bnd.ptr);
		buf_append_str(out, "Content-Description: Undelivered Message Headers\r\n"
				    "Content-Type: text/rfc822-headers\r\n");
		if (eight)
			buf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
		buf_append(out, "\r\n", 2);
		buf_append(out, rep->msg, sc.hdr_len);
	}
	buf_printf(out, "\r\n--%s--\r\n", bnd.ptr);
	if (out_flags != NULL)
		*out_flags = eight ? DSN_OUT_8BIT : 0;
	buf_fini(&bnd);
	buf_fini(&tmp);
	buf_fini(&human);
	buf_fini(&status);
	return DSN_OK;
}
