/*
 * notify_slack.c - the Slack incoming-webhook payload: Block Kit blocks (a header, the details,
 * a section of fields: since, affected messages, upstream reply, cause, fix; a context line)
 * plus "text", the fallback Slack shows in notifications. Pure.
 *
 * Slack's limits: header text 150 characters, section text 3000, a field 2000, 10 fields.
 * mrkdwn gives "&", "<" and ">" meaning (links, mentions): they are escaped in alert text.
 */
#include <stdio.h>
#include <string.h>

#include "notify_payload.h"
#include "../util/poison.h"

#define NOTIFY_SLACK_HEADER_MAX 150
#define NOTIFY_SLACK_SECTION_MAX 3000
#define NOTIFY_SLACK_FIELD_MAX 2000

/* Append s escaped for mrkdwn (RFC-free: Slack's "escaping text" rules). */
static void
notify_slack_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			buf_append_str(out, "&amp;");
		else if (*s == '<')
			buf_append_str(out, "&lt;");
		else if (*s == '>')
			buf_append_str(out, "&gt;");
		else
			buf_putc(out, *s);
	}
}

/* An mrkdwn text object "*label*\nvalue" (value cleaned, escaped, cut), or NULL for no value. */
static json_t *
notify_slack_field(const char *label, const char *value, bool code)
{
	struct buf clean = BUF_INIT, text = BUF_INIT;
	json_t *j;

	if (value == NULL || value[0] == '\0')
		return NULL;
	notify_text_clean(&clean, value, !code);
	/* A backquote inside would end the code span early. */
	for (size_t i = 0; code && i < clean.len; i++) {
		if (clean.ptr[i] == '`')
			clean.ptr[i] = '\'';
	}
	buf_printf(&text, "*%s*\n%s", label, code ? "`" : "");
	notify_slack_escape(&text, clean.ptr ? clean.ptr : "");
	notify_text_trunc(&text, NOTIFY_SLACK_FIELD_MAX - 1);
	if (code)
		buf_putc(&text, '`');
	j = json_pack("{s:s,s:o}", "type", "mrkdwn", "text", notify_json_str(text.ptr, true, 0));
	buf_fini(&clean);
	buf_fini(&text);
	return j;
}

void
notify_slack_payload(const struct alert_msg *m, struct buf *out)
{
	struct buf head = BUF_INIT, text = BUF_INIT, tmp = BUF_INIT;
	char when[32], age[32], count[32];
	json_t *blocks = json_array(), *fields = json_array(), *f;
	json_t *root;

	notify_headline(m, &head);
	json_array_append_new(blocks, json_pack("{s:s,s:{s:s,s:o,s:b}}", "type", "header",
	    "text", "type", "plain_text", "text",
	    notify_json_str(head.ptr, false, NOTIFY_SLACK_HEADER_MAX), "emoji", 1));
	if (m->text != NULL && m->text[0] != '\0') {
		notify_text_clean(&tmp, m->text, true);
		notify_slack_escape(&text, tmp.ptr ? tmp.ptr : "");
		json_array_append_new(blocks, json_pack("{s:s,s:{s:s,s:o}}", "type", "section",
		    "text", "type", "mrkdwn", "text",
		    notify_json_str(text.ptr, true, NOTIFY_SLACK_SECTION_MAX)));
	}
	notify_time_human(m->since_ms, when);
	notify_age(m->since_ms, m->at_ms, age);
	buf_reset(&tmp);
	buf_printf(&tmp, "%s (%s ago)", when, age);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)m->affected);
	if (m->since_ms != 0 && (f = notify_slack_field("Since", tmp.ptr, false)) != NULL)
		json_array_append_new(fields, f);
	if ((f = notify_slack_field("Affected messages", count, false)) != NULL)
		json_array_append_new(fields, f);
	if ((f = notify_slack_field("Upstream reply", m->reply, true)) != NULL)
		json_array_append_new(fields, f);
	if ((f = notify_slack_field("Cause", m->cause, false)) != NULL)
		json_array_append_new(fields, f);
	if ((f = notify_slack_field("Fix", m->fix, false)) != NULL)
		json_array_append_new(fields, f);
	json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "section", "fields", fields));
	buf_reset(&tmp);
	buf_printf(&tmp, "%s · %s", alert_severity_name(m->severity), alert_kind_name(m->kind));
	if (m->rule != NULL && m->rule[0] != '\0')
		buf_printf(&tmp, " · rule %s", m->rule);
	if (m->group != NULL && m->group[0] != '\0')
		buf_printf(&tmp, " · %s", m->group);
	if (m->node != NULL && m->node[0] != '\0')
		buf_printf(&tmp, " · node %s", m->node);
	buf_reset(&text);
	notify_slack_escape(&text, tmp.ptr);
	json_array_append_new(blocks, json_pack("{s:s,s:[{s:s,s:o}]}", "type", "context",
	    "elements", "type", "mrkdwn", "text", notify_json_str(text.ptr, false, 0)));
	/* The fallback "text" is mrkdwn too: "<!channel>" in a title must not ping anyone. */
	buf_reset(&text);
	notify_slack_escape(&text, head.ptr);
	root = json_pack("{s:o,s:o}", "text", notify_json_str(text.ptr, false, 0), "blocks",
	    blocks);
	notify_json_dump(root, out);
	buf_fini(&head);
	buf_fini(&text);
	buf_fini(&tmp);
}
