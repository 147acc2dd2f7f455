/*
 * notify_teams.c - the Microsoft Teams payload for a workflow ("When a Teams webhook request is
 * received") URL: {"type":"message","attachments":[{contentType adaptive card, content: card}]}
 * with an Adaptive Card 1.4: the headline (red for problems, green for recoveries), the
 * details, and a FactSet of since, affected messages, upstream reply, cause, fix. Pure.
 */
#include <stdio.h>

#include "notify_payload.h"
#include "../util/poison.h"

#define NOTIFY_TEAMS_TEXT_MAX 4000

static void
notify_teams_fact(json_t *facts, const char *title, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	json_array_append_new(facts, json_pack("{s:s,s:o}", "title", title, "value",
	    notify_json_str(value, false, NOTIFY_TEAMS_TEXT_MAX)));
}

void
notify_teams_payload(const struct alert_msg *m, struct buf *out)
{
	struct buf head = BUF_INIT, tmp = BUF_INIT;
	char when[32], age[32], count[32];
	json_t *body = json_array(), *facts = json_array(), *card;
	const char *color = m->kind == ALERT_KIND_RECOVERY ? "Good" :
	    m->kind == ALERT_KIND_TEST || m->severity == ALERT_SEVERITY_INFO ? "Accent" :
	    m->severity == ALERT_SEVERITY_WARNING ? "Warning" : "Attention";

	notify_headline(m, &head);
	json_array_append_new(body, json_pack("{s:s,s:o,s:s,s:s,s:s,s:b}", "type", "TextBlock",
	    "text", notify_json_str(head.ptr, false, NOTIFY_TEAMS_TEXT_MAX), "weight", "Bolder",
	    "size", "Medium", "color", color, "wrap", 1));
	if (m->text != NULL && m->text[0] != '\0')
		json_array_append_new(body, json_pack("{s:s,s:o,s:b}", "type", "TextBlock", "text",
		    notify_json_str(m->text, true, NOTIFY_TEAMS_TEXT_MAX), "wrap", 1));
	notify_time_human(m->since_ms, when);
	notify_age(m->since_ms, m->at_ms, age);
	buf_printf(&tmp, "%s (%s ago)", when, age);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)m->affected);
	if (m->since_ms != 0)
		notify_teams_fact(facts, "Since", tmp.ptr);
	notify_teams_fact(facts, "Affected messages", count);
	notify_teams_fact(facts, "Upstream reply", m->reply);
	notify_teams_fact(facts, "Cause", m->cause);
	notify_teams_fact(facts, "Fix", m->fix);
	notify_teams_fact(facts, "Rule", m->rule);
	notify_teams_fact(facts, "Node", m->node);
	json_array_append_new(body, json_pack("{s:s,s:o}", "type", "FactSet", "facts", facts));
	card = json_pack("{s:s,s:s,s:s,s:o}", "$schema",
	    "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
	    "version", "1.4", "body", body);
	notify_json_dump(json_pack("{s:s,s:[{s:s,s:n,s:o}]}", "type", "message", "attachments",
	    "contentType", "application/vnd.microsoft.card.adaptive", "contentUrl", "content",
	    card), out);
	buf_fini(&head);
	buf_fini(&tmp);
}
