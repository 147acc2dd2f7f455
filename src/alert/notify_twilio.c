/*
 * notify_twilio.c - Twilio SMS: the message text (at most 1,600 characters, Twilio's limit),
 * the form body of POST /2010-04-01/Accounts/{AccountSid}/Messages.json (To, From, Body,
 * application/x-www-form-urlencoded) and its URL. One request per recipient number. Pure.
 */
#include <stdio.h>
#include <string.h>

#include "notify_payload.h"
#include "../util/poison.h"

void
notify_twilio_text(const struct alert_msg *m, struct buf *out)
{
	struct buf b = BUF_INIT;
	char when[32], age[32];

	notify_headline(m, &b);
	if (m->since_ms != 0) {
		notify_time_human(m->since_ms, when);
		notify_age(m->since_ms, m->at_ms, age);
		buf_printf(&b, "\nSince %s (%s)", when, age);
	}
	buf_printf(&b, "\nAffected messages: %llu", (unsigned long long)m->affected);
	if (m->reply != NULL && m->reply[0] != '\0') {
		buf_append_str(&b, "\nReply: ");
		notify_text_clean(&b, m->reply, false);
	}
	if (m->cause != NULL && m->cause[0] != '\0') {
		buf_append_str(&b, "\nCause: ");
		notify_text_clean(&b, m->cause, false);
	}
	if (m->fix != NULL && m->fix[0] != '\0') {
		buf_append_str(&b, "\nFix: ");
		notify_text_clean(&b, m->fix, false);
	}
	if (m->node != NULL && m->node[0] != '\0')
		buf_printf(&b, "\n(%s)", m->node);
	notify_text_trunc(&b, NOTIFY_SMS_MAX);
	buf_append(out, b.ptr, b.len);
	buf_fini(&b);
}

/* RFC 3986 unreserved bytes stay; every other byte is %XX (form encoding, space as %20). */
static void
notify_form_escape(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			buf_putc(out, (char)c);
		} else {
			buf_putc(out, '%');
			buf_putc(out, hex[c >> 4]);
			buf_putc(out, hex[c & 15]);
		}
	}
}

void
notify_twilio_form(const char *to, const char *from, const char *text, struct buf *out)
{
	buf_append_str(out, "To=");
	notify_form_escape(out, to);
	buf_append_str(out, "&From=");
	notify_form_escape(out, from);
	buf_append_str(out, "&Body=");
	notify_form_escape(out, text);
}

void
notify_twilio_url(const char *base, const char *sid, struct buf *out)
{
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	buf_append(out, base, n);
	buf_append_str(out, "/2010-04-01/Accounts/");
	notify_form_escape(out, sid);
	buf_append_str(out, "/Messages.json");
}
