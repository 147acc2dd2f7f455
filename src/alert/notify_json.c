/*
 * notify_json.c - text helpers every channel's payload builder shares: cleaning alert text,
 * cutting on character boundaries, times and headlines. Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify_payload.h"
#include "../util/str.h"
#include "../util/poison.h"

void
notify_text_clean(struct buf *out, const char *s, bool keep_lf)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len;

	if (s == NULL)
		return;
	n = strlen(s);
	while (n > 0) {
		len = str_utf8_char_len(p, n);
		if (len == 0) {
			buf_append_str(out, "\xef\xbf\xbd");
			len = 1;
		} else if (len == 1 && *p == '\n' && keep_lf) {
			buf_putc(out, '\n');
		} else if (len == 1 && (*p < 0x20 || *p == 0x7f)) {
			buf_putc(out, ' ');
		} else {
			buf_append(out, p, len);
		}
		p += len;
		n -= len;
	}
}

void
notify_text_trunc(struct buf *b, size_t max)
{
	size_t i = 0, chars = 0, cut = 0;

	while (i < b->len) {
		if (chars == max - 1)
			cut = i;
		if (chars == max)
			break;
		i++;
		while (i < b->len && ((unsigned char)b->ptr[i] & 0xc0) == 0x80)
			i++;
		chars++;
	}
	if (i >= b->len)
		return;
	buf_truncate(b, cut);
	buf_append_str(b, "\xe2\x80\xa6");
}

static void
notify_tm(uint64_t ms, struct tm *tm)
{
	time_t t = (time_t)(ms / 1000);

	if (gmtime_r(&t, tm) == NULL)
		memset(tm, 0, sizeof(*tm));
}

void
notify_time_human(uint64_t ms, char out[32])
{
	struct tm tm;

	notify_tm(ms, &tm);
	if (strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		out[0] = '\0';
}

void
notify_time_iso(uint64_t ms, char out[32])
{
	struct tm tm;

	notify_tm(ms, &tm);
	if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

void
notify_age(uint64_t since_ms, uint64_t at_ms, char out[32])
{
	uint64_t s = at_ms > since_ms ? (at_ms - since_ms) / 1000 : 0;

	if (s < 60)
		snprintf(out, 32, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, 32, "%llum", (unsigned long long)(s / 60));
	else if (s < 86400)
		snprintf(out, 32, "%lluh %llum", (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60));
	else
		snprintf(out, 32, "%llud %lluh", (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
}

const char *
notify_kind_word(enum alert_kind k)
{
	switch (k) {
	case ALERT_KIND_OPEN:
		return "Alert";
	case ALERT_KIND_DIGEST:
		return "Digest";
	case ALERT_KIND_ESCALATION:
		return "Escalation";
	case ALERT_KIND_RECOVERY:
		return "Recovered";
	case ALERT_KIND_TEST:
		return "Test";
	}
	return "Alert";
}

void
notify_headline(const struct alert_msg *m, struct buf *out)
{
	buf_append_str(out, notify_kind_word(m->kind));
	buf_append_str(out, ": ");
	notify_text_clean(out, m->title ? m->title : "(no title)", false);
}

const char *
alert_kind_name(enum alert_kind k)
{
	switch (k) {
	case ALERT_KIND_OPEN:
		return "open";
	case ALERT_KIND_DIGEST:
		return "digest";
	case ALERT_KIND_ESCALATION:
		return "escalation";
	case ALERT_KIND_RECOVERY:
		return "recovery";
	case ALERT_KIND_TEST:
		return "test";
	}
	return "open";
}

const char *
alert_severity_name(enum alert_severity s)
{
	switch (s) {
	case ALERT_SEVERITY_INFO:
		return "info";
	case ALERT_SEVERITY_WARNING:
		return "warning";
	case ALERT_SEVERITY_CRITICAL:
		return "critical";
	}
	return "info";
}

json_t *
notify_json_str(const char *s, bool keep_lf, size_t max)
{
	struct buf b = BUF_INIT;
	json_t *j;

	notify_text_clean(&b, s ? s : "", keep_lf);
	if (max > 0)
		notify_text_trunc(&b, max);
	j = json_stringn(b.ptr ? b.ptr : "", b.len);
	buf_fini(&b);
	if (j == NULL)
		hk_panic("json_stringn refused cleaned text");
	return j;
}

void
notify_json_dump(json_t *j, struct buf *out)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (text == NULL)
		hk_panic("json_dumps failed");
	buf_append_str(out, text);
	free(text);
}
