/*
 * notify_email.c - the email channel's message: RFC 5322 with a UTF-8 Subject encoded per RFC
 * 2047 and a plain text body, built by proto/mime (the same builder as POST /api/v1/messages).
 * The message then goes through the spool like any mail (notify_params.submit). Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify_payload.h"
#include "../proto/mime.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

void
notify_email_subject(const struct alert_msg *m, struct buf *out)
{
	struct buf b = BUF_INIT;

	buf_append_str(&b, "[hikyaku");
	if (m->node != NULL && m->node[0] != '\0') {
		buf_putc(&b, ' ');
		notify_text_clean(&b, m->node, false);
	}
	buf_append_str(&b, "] ");
	notify_headline(m, &b);
	notify_text_trunc(&b, 200);
	buf_append(out, b.ptr, b.len);
	buf_fini(&b);
}

static void
notify_email_line(struct buf *out, const char *label, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	buf_printf(out, "%s: ", label);
	notify_text_clean(out, value, false);
	buf_putc(out, '\n');
}

void
notify_email_text(const struct alert_msg *m, struct buf *out)
{
	char when[32], age[32], count[32];

	notify_headline(m, out);
	buf_append_str(out, "\n\n");
	if (m->text != NULL && m->text[0] != '\0') {
		notify_text_clean(out, m->text, true);
		buf_append_str(out, "\n\n");
	}
	if (m->since_ms != 0) {
		notify_time_human(m->since_ms, when);
		notify_age(m->since_ms, m->at_ms, age);
		buf_printf(out, "Since: %s (%s ago)\n", when, age);
	}
	snprintf(count, sizeof(count), "%llu", (unsigned long long)m->affected);
	notify_email_line(out, "Affected messages", count);
	notify_email_line(out, "Upstream reply", m->reply);
	notify_email_line(out, "Cause", m->cause);
	notify_email_line(out, "Fix", m->fix);
	buf_putc(out, '\n');
	notify_email_line(out, "Severity", alert_severity_name(m->severity));
	notify_email_line(out, "Rule", m->rule);
	notify_email_line(out, "Group", m->group);
	notify_email_line(out, "Node", m->node);
	notify_email_line(out, "Alert id", m->id);
}

int
notify_email_message(const struct alert_msg *m, const char *from, char *const *to, size_t n_to,
    const char *date, const char *message_id, struct buf *out, const char **why)
{
	struct mime_addr *rcpts = xcalloc(n_to > 0 ? n_to : 1, sizeof(*rcpts));
	struct buf subject = BUF_INIT, text = BUF_INIT;
	struct mime_msg mm;
	struct mime_out mo;
	enum mime_error e;
	size_t i;

	for (i = 0; i < n_to; i++)
		rcpts[i].address = to[i];
	notify_email_subject(m, &subject);
	notify_email_text(m, &text);
	memset(&mm, 0, sizeof(mm));
	mm.from.address = from;
	mm.from.name = "hikyaku alerts";
	mm.to = rcpts;
	mm.to_count = n_to;
	mm.subject = subject.ptr;
	mm.text = text.ptr;
	mm.text_len = text.len;
	mm.date = date;
	mm.message_id = message_id;
	mime_out_init(&mo);
	e = mime_build(&mm, &mo);
	if (e == MIME_OK) {
		buf_append(out, mo.data.ptr, mo.data.len);
	} else {
		*why = mime_error_code(e);
	}
	mime_out_fini(&mo);
	buf_fini(&subject);
	buf_fini(&text);
	free(rcpts);
	return e == MIME_OK ? 0 : -1;
}
