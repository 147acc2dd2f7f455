/*
 * test_notify.c - the alert channels' pure parts: payload builders against golden files
 * (tests/data/notify/<case>.in -> <case>.<channel>.ref; HK_GOLDEN_UPDATE=1 rewrites them), the
 * shape of each payload, the Standard Webhooks signature against the specification's published
 * vector, Twilio's form and length limit, the retry helpers of httpc, and the alerts.channels
 * configuration checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert/httpc.h"
#include "alert/notify_payload.h"
#include "conf/conf.h"
#include "util/buf.h"
#include "util/poison.h"

/* ---- helpers ---- */

static void
test_read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(out, tmp, n);
	fclose(f);
}

static void
test_write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b->ptr ? b->ptr : "", 1, b->len, f), b->len);
	fclose(f);
}

/* An alert_msg from "key: value" lines; "\n" in a value is a line break. */
struct test_msg {
	struct alert_msg m;
	char *vals[16];
	size_t n;
};

static const char *
test_keep(struct test_msg *t, const char *v)
{
	struct buf b = BUF_INIT;

	for (; *v; v++) {
		if (v[0] == '\\' && v[1] == 'n') {
			buf_putc(&b, '\n');
			v++;
		} else {
			buf_putc(&b, *v);
		}
	}
	assert_true(t->n < 16);
	t->vals[t->n++] = buf_steal(&b);
	return t->vals[t->n - 1];
}

static void
test_msg_load(const char *name, struct test_msg *t)
{
	struct buf path = BUF_INIT, raw = BUF_INIT;
	char *line, *save = NULL;

	memset(t, 0, sizeof(*t));
	buf_printf(&path, "%s/notify/%s.in", getenv("HK_DATA_DIR"), name);
	test_read_file(path.ptr, &raw);
	for (line = strtok_r(raw.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		const char *v;

		assert_non_null(colon);
		*colon = '\0';
		v = colon[1] == ' ' ? colon + 2 : colon + 1;
		if (strcmp(line, "kind") == 0)
			t->m.kind = strcmp(v, "open") == 0 ? ALERT_KIND_OPEN : strcmp(v, "digest") == 0 ?
			    ALERT_KIND_DIGEST : strcmp(v, "escalation") == 0 ? ALERT_KIND_ESCALATION :
			    strcmp(v, "recovery") == 0 ? ALERT_KIND_RECOVERY : ALERT_KIND_TEST;
		else if (strcmp(line, "severity") == 0)
			t->m.severity = strcmp(v, "critical") == 0 ? ALERT_SEVERITY_CRITICAL :
			    strcmp(v, "warning") == 0 ? ALERT_SEVERITY_WARNING : ALERT_SEVERITY_INFO;
		else if (strcmp(line, "since_ms") == 0)
			t->m.since_ms = strtoull(v, NULL, 10);
		else if (strcmp(line, "at_ms") == 0)
			t->m.at_ms = strtoull(v, NULL, 10);
		else if (strcmp(line, "affected") == 0)
			t->m.affected = strtoull(v, NULL, 10);
		else if (strcmp(line, "id") == 0)
			t->m.id = test_keep(t, v);
		else if (strcmp(line, "rule") == 0)
			t->m.rule = test_keep(t, v);
		else if (strcmp(line, "group") == 0)
			t->m.group = test_keep(t, v);
		else if (strcmp(line, "title") == 0)
			t->m.title = test_keep(t, v);
		else if (strcmp(line, "text") == 0)
			t->m.text = test_keep(t, v);
		else if (strcmp(line, "reply") == 0)
			t->m.reply = test_keep(t, v);
		else if (strcmp(line, "cause") == 0)
			t->m.cause = test_keep(t, v);
		else if (strcmp(line, "fix") == 0)
			t->m.fix = test_keep(t, v);
		else if (strcmp(line, "node") == 0)
			t->m.node = test_keep(t, v);
		else
			fail_msg("%s.in: unknown key %s", name, line);
	}
	buf_fini(&path);
	buf_fini(&raw);
}

static void
test_msg_fini(struct test_msg *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->vals[i]);
}

static void
test_golden_check(const char *name, const char *channel, const struct buf *got)
{
	struct buf path = BUF_INIT, ref = BUF_INIT;

	buf_printf(&path, "%s/notify/%s.%s.ref", getenv("HK_DATA_DIR"), name, channel);
	if (getenv("HK_GOLDEN_UPDATE") != NULL) {
		test_write_file(path.ptr, got);
	} else {
		test_read_file(path.ptr, &ref);
		if (ref.len != got->len || memcmp(ref.ptr, got->ptr, got->len) != 0)
			fail_msg("%s.%s differs from its .ref:\n%.*s", name, channel, (int)got->len,
			    got->ptr);
	}
	buf_fini(&path);
	buf_fini(&ref);
}

static const char *const golden_cases[] = { "upstream_down", "recovery", "hostile", "test" };

static void
test_golden(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(golden_cases); i++) {
		struct test_msg t;
		struct buf b = BUF_INIT;
		char *to[] = { "ops@example.com", "oncall@example.net" };
		const char *why = NULL;

		test_msg_load(golden_cases[i], &t);
		notify_slack_payload(&t.m, &b);
		buf_putc(&b, '\n');
		test_golden_check(golden_cases[i], "slack", &b);
		buf_reset(&b);
		notify_teams_payload(&t.m, &b);
		buf_putc(&b, '\n');
		test_golden_check(golden_cases[i], "teams", &b);
		buf_reset(&b);
		notify_webhook_payload(&t.m, &b);
		buf_putc(&b, '\n');
		test_golden_check(golden_cases[i], "webhook", &b);
		buf_reset(&b);
		notify_twilio_text(&t.m, &b);
		buf_putc(&b, '\n');
		test_golden_check(golden_cases[i], "twilio", &b);
		buf_reset(&b);
		assert_int_equal(notify_email_message(&t.m, "alerts@relay.example", to, 2,
		    "Tue, 03 Mar 2026 10:00:00 +0000", "<alert.1@relay.example>", &b, &why), 0);
		test_golden_check(golden_cases[i], "email", &b);
		buf_fini(&b);
		test_msg_fini(&t);
	}
}

/* ---- payload shapes ---- */

static json_t *
test_json(void (*fn)(const struct alert_msg *, struct buf *), const struct alert_msg *m)
{
	struct buf b = BUF_INIT;
	json_error_t e;
	json_t *j;

	fn(m, &b);
	j = json_loadb(b.ptr, b.len, 0, &e);
	if (j == NULL)
		fail_msg("not JSON (%s): %s", e.text, b.ptr);
	buf_fini(&b);
	return j;
}

static const struct alert_msg test_m = {
	.kind = ALERT_KIND_OPEN, .severity = ALERT_SEVERITY_CRITICAL, .id = "upstream_down:primary",
	.rule = "upstream_down", .group = "primary", .title = "Upstream primary is down",
	.text = "3 connection failures <in a row> & counting", .since_ms = 1772530200000ull,
	.at_ms = 1772532000000ull, .affected = 42, .reply = "535 5.7.8 `bad` credentials",
	.cause = "The upstream refused the password.", .fix = "Check password_file.",
	.node = "relay1",
};

static void
test_slack_shape(void **state)
{
	json_t *j = test_json(notify_slack_payload, &test_m), *blocks, *fields;
	const char *s;

	(void)state;
	blocks = json_object_get(j, "blocks");
	assert_true(json_array_size(blocks) >= 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 0), "type")),
	    "header");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(blocks,
	    0), "text"), "text")), "Alert: Upstream primary is down");
	/* mrkdwn: "<" and "&" would be links and entities. */
	s = json_string_value(json_object_get(json_object_get(json_array_get(blocks, 1), "text"),
	    "text"));
	assert_string_equal(s, "3 connection failures &lt;in a row&gt; &amp; counting");
	fields = json_object_get(json_array_get(blocks, 2), "fields");
	assert_int_equal(json_array_size(fields), 5);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(fields, 0),
	    "text")), "*Since*\n2026-03-03 09:30:00 UTC (30m ago)"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 1), "text")),
	    "*Affected messages*\n42");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 2), "text")),
	    "*Upstream reply*\n`535 5.7.8 'bad' credentials`");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 4), "text")),
	    "*Fix*\nCheck password_file.");
	assert_string_equal(json_string_value(json_object_get(j, "text")),
	    "Alert: Upstream primary is down");
	json_decref(j);
}

static void
test_teams_shape(void **state)
{
	json_t *j = test_json(notify_teams_payload, &test_m), *att, *card, *body, *facts;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
	att = json_array_get(json_object_get(j, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(att, "contentType")),
	    "application/vnd.microsoft.card.adaptive");
	assert_true(json_is_null(json_object_get(att, "contentUrl")));
	card = json_object_get(att, "content");
	assert_string_equal(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
	assert_string_equal(json_string_value(json_object_get(card, "version")), "1.4");
	body = json_object_get(card, "body");
	assert_string_equal(json_string_value(json_object_get(json_array_get(body, 0), "color")),
	    "Attention");
	facts = json_object_get(json_array_get(body, 2), "facts");
	assert_string_equal(json_string_value(json_object_get(json_array_get(facts, 1), "title")),
	    "Affected messages");
	assert_string_equal(json_string_value(json_object_get(json_array_get(facts, 1), "value")),
	    "42");
	json_decref(j);
}

static void
test_webhook_shape(void **state)
{
	json_t *j = test_json(notify_webhook_payload, &test_m), *data;
	struct alert_msg m = test_m;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "type")), "alert.open");
	assert_string_equal(json_string_value(json_object_get(j, "timestamp")),
	    "2026-03-03T10:00:00Z");
	data = json_object_get(j, "data");
	assert_int_equal(json_integer_value(json_object_get(data, "affected")), 42);
	assert_string_equal(json_string_value(json_object_get(data, "severity")), "critical");
	json_decref(j);
	m.kind = ALERT_KIND_RECOVERY;
	m.reply = NULL;
	j = test_json(notify_webhook_payload, &m);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "alert.recovery");
	assert_true(json_is_null(json_object_get(json_object_get(j, "data"), "reply")));
	json_decref(j);
	assert_string_equal(notify_webhook_type(ALERT_KIND_DIGEST), "alert.digest");
	assert_string_equal(notify_webhook_type(ALERT_KIND_ESCALATION), "alert.escalation");
	assert_string_equal(notify_webhook_type(ALERT_KIND_TEST), "alert.test");
}

/* The vector published with the Standard Webhooks specification (checked with Python hmac). */
static void
test_webhook_signature_vector(void **state)
{
	struct buf key = BUF_INIT, sig = BUF_INIT;
	static const char body[] = "{\"test\": 2432232314}";

	(void)state;
	assert_int_equal(notify_webhook_secret_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
	    &key), 0);
	assert_int_equal(key.len, 24);
	notify_webhook_signature(key.ptr, key.len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
	    body, sizeof(body) - 1, &sig);
	assert_string_equal(sig.ptr, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	/* A changed timestamp changes the signature (replays with a new time fail). */
	buf_reset(&sig);
	notify_webhook_signature(key.ptr, key.len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
	    body, sizeof(body) - 1, &sig);
	assert_string_not_equal(sig.ptr, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_int_equal(notify_webhook_secret_parse("whsec_***not base64", &key), -1);
	assert_int_equal(notify_webhook_secret_parse("whsec_", &key), -1);
	buf_fini(&key);
	buf_fini(&sig);
}

static void
test_twilio_form_and_limit(void **state)
{
	struct buf b = BUF_INIT, text = BUF_INIT, big = BUF_INIT;
	struct alert_msg m = test_m;
	size_t i, chars = 0;

	(void)state;
	notify_twilio_form("+15551234567", "+15557654321", "a b&c=d\n\xc3\xa9", &b);
	assert_string_equal(b.ptr, "To=%2B15551234567&From=%2B15557654321&Body=a%20b%26c%3Dd%0A"
	    "%C3%A9");
	buf_reset(&b);
	notify_twilio_url("http://127.0.0.1:9/", "AC123", &b);
	assert_string_equal(b.ptr, "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json");
	/* 3000 two-byte characters: cut to 1600 characters, never inside one. */
	for (i = 0; i < 3000; i++)
		buf_append_str(&big, "\xc3\xa9");
	m.text = big.ptr;
	m.cause = big.ptr;
	notify_twilio_text(&m, &text);
	for (i = 0; i < text.len; i++)
		chars += ((unsigned char)text.ptr[i] & 0xc0) != 0x80;
	assert_int_equal(chars, NOTIFY_SMS_MAX);
	assert_memory_equal(text.ptr + text.len - 3, "\xe2\x80\xa6", 3);
	buf_fini(&b);
	buf_fini(&text);
	buf_fini(&big);
}

static void
test_text_clean(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	/* Invalid UTF-8 (overlong, lone continuation, surrogate) and control bytes. */
	notify_text_clean(&b, "a\xc0\xaf" "b\x80" "c\xed\xa0\x80" "d\r\ne\tf\x1b", true);
	assert_string_equal(b.ptr, "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd"
	    "\xef\xbf\xbd\xef\xbf\xbd" "d \ne f ");
	buf_reset(&b);
	notify_text_clean(&b, "x\ny", false);
	assert_string_equal(b.ptr, "x y");
	buf_reset(&b);
	buf_append_str(&b, "abcdef");
	notify_text_trunc(&b, 6);
	assert_string_equal(b.ptr, "abcdef");
	notify_text_trunc(&b, 4);
	assert_string_equal(b.ptr, "abc\xe2\x80\xa6");
	buf_fini(&b);
}

static void
test_email_subject_encoded(void **state)
{
	struct buf b = BUF_INIT;
	struct alert_msg m = test_m;
	char *to[] = { "ops@example.com" };
	const char *why = NULL;

	(void)state;
	m.title = "Upstream \xe5\x87\xba\xe5\x8f\xa3 is down";
	assert_int_equal(notify_email_message(&m, "alerts@relay.example", to, 1,
	    "Tue, 03 Mar 2026 10:00:00 +0000", "<a.1@relay.example>", &b, &why), 0);
	/* RFC 2047: the header is ASCII, the UTF-8 title an encoded word. */
	assert_non_null(strstr(b.ptr, "Subject: =?UTF-8?"));
	assert_null(strstr(b.ptr, "\xe5\x87\xba"));
	assert_non_null(strstr(b.ptr, "To: ops@example.com\r\n"));
	assert_non_null(strstr(b.ptr, "Message-ID: <a.1@relay.example>\r\n"));
	buf_reset(&b);
	to[0] = "not an address";
	assert_int_equal(notify_email_message(&m, "alerts@relay.example", to, 1,
	    "Tue, 03 Mar 2026 10:00:00 +0000", "<a.1@relay.example>", &b, &why), -1);
	assert_non_null(why);
	buf_fini(&b);
}

/* ---- httpc helpers ---- */

static void
test_retry_after(void **state)
{
	uint64_t ms = 0;
	/* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
	uint64_t now = 784111777000ull;

	(void)state;
	assert_int_equal(httpc_retry_after_parse(" 120\r\n", now, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(httpc_retry_after_parse("Sun, 06 Nov 1994 08:49:47 GMT", now, &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(httpc_retry_after_parse("Sun, 06 Nov 1994 08:49:00 GMT", now, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(httpc_retry_after_parse("", now, &ms), -1);
	assert_int_equal(httpc_retry_after_parse("12x", now, &ms), -1);
	assert_int_equal(httpc_retry_after_parse("soon", now, &ms), -1);
}

static void
test_retry_delay(void **state)
{
	struct httpc_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(httpc_retry_delay_ms(NULL, 1, 1000, 60000), 1000);
	assert_int_equal(httpc_retry_delay_ms(NULL, 2, 1000, 60000), 2000);
	assert_int_equal(httpc_retry_delay_ms(NULL, 4, 1000, 60000), 8000);
	assert_int_equal(httpc_retry_delay_ms(NULL, 30, 1000, 60000), 60000);
	r.status = 429;
	r.has_retry_after = true;
	r.retry_after_ms = 7000;
	assert_int_equal(httpc_retry_delay_ms(&r, 1, 1000, 60000), 7000);
	r.retry_after_ms = 3600000;
	assert_int_equal(httpc_retry_delay_ms(&r, 1, 1000, 60000), 60000);
	/* Retry-After counts only on 429 and 503. */
	r.status = 500;
	r.retry_after_ms = 7000;
	assert_int_equal(httpc_retry_delay_ms(&r, 1, 1000, 60000), 1000);
	r.status = 503;
	assert_int_equal(httpc_retry_delay_ms(&r, 1, 1000, 60000), 7000);
}

static void
test_retryable(void **state)
{
	struct httpc_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.transport_error = true;
	assert_true(httpc_is_retryable(&r));
	r.transport_error = false;
	r.status = 429;
	assert_true(httpc_is_retryable(&r));
	r.status = 503;
	assert_true(httpc_is_retryable(&r));
	r.status = 404;
	assert_false(httpc_is_retryable(&r));
	r.status = 400;
	assert_false(httpc_is_retryable(&r));
	r.status = 204;
	assert_true(httpc_is_ok(&r));
	r.status = 302;
	assert_false(httpc_is_ok(&r));
}

/* ---- configuration ---- */

static const char test_conf_head[] =
	"listen: [{address: \"127.0.0.1:2525\"}]\n"
	"upstreams: [{name: up, host: 127.0.0.1, port: 2526, tls: none}]\n"
	"routes: [{name: all, upstreams: [up]}]\n"
	"alerts:\n"
	"  channels:\n";

static int
test_conf(const char *channels, struct conf **out, struct buf *diag_text)
{
	struct conf_diag diag;
	struct buf yaml = BUF_INIT;
	int rc;

	buf_printf(&yaml, "%s%s", test_conf_head, channels);
	conf_diag_init(&diag);
	rc = conf_load_string("t.yaml", yaml.ptr, yaml.len, false, out, &diag);
	buf_reset(diag_text);
	if (diag.text.len)
		buf_append(diag_text, diag.text.ptr, diag.text.len);
	conf_diag_fini(&diag);
	buf_fini(&yaml);
	return rc;
}

static void
test_conf_channels_ok(void **state)
{
	struct conf *c = NULL;
	struct buf d = BUF_INIT;

	(void)state;
	assert_int_equal(test_conf(
	    "    - {name: ops-mail, type: email, from: alerts@example.com, to: [ops@example.com]}\n"
	    "    - {name: chat, type: slack, url_file: /etc/hikyaku/slack.url}\n"
	    "    - {name: teams, type: teams, url: \"https://example.webhook.office.com/x\"}\n"
	    "    - {name: sms, type: twilio, account_sid_file: /a, auth_token_file: /b,\n"
	    "       from: \"+15550001111\", to: [\"+15550002222\"], retries: 1, backoff: 100ms}\n"
	    "    - {name: hook, type: webhook, url: \"http://127.0.0.1:9/x\", secret_file: /s}\n",
	    &c, &d), 0);
	assert_int_equal(c->n_alert_channels, 5);
	assert_int_equal(c->alert_channels[0].type, CONF_CHANNEL_EMAIL);
	assert_int_equal(c->alert_channels[0].timeout_ms, 10000);
	assert_int_equal(c->alert_channels[0].retries, 3);
	assert_string_equal(c->alert_channels[3].base_url, "https://api.twilio.com");
	assert_int_equal(c->alert_channels[3].retries, 1);
	assert_int_equal(c->alert_channels[3].backoff_ms, 100);
	assert_int_equal(c->alert_channels[4].type, CONF_CHANNEL_WEBHOOK);
	conf_unref(c);
	buf_fini(&d);
}

static void
test_conf_channels_bad(void **state)
{
	static const struct {
		const char *yaml, *expect;
	} cases[] = {
		{ "    - {name: a, type: slack, url: \"ftp://x/y\"}\n", "an http:// or https:// URL" },
		{ "    - {name: a, type: slack}\n", "needs either url or url_file" },
		{ "    - {name: a, type: slack, url: \"https://x/\", url_file: /f}\n", "not both" },
		{ "    - {name: a, type: webhook, url: \"https://x/\"}\n", "needs secret_file" },
		{ "    - {name: a, type: twilio, account_sid_file: /a, auth_token_file: /b, "
		  "from: \"+15550001111\", to: [\"5551\"]}\n", "E.164" },
		{ "    - {name: a, type: email, from: x@example.com, to: [ops]}\n",
		  "\"ops\" is not a mail address" },
		{ "    - {name: a, type: email, from: x@example.com, to: []}\n", "at least one" },
		{ "    - {name: a, type: email, to: [o@example.com], url: \"https://x/\"}\n",
		  "url is not a key of a email channel" },
		{ "    - {name: a, type: discord, url: \"https://x/\"}\n", "discord" },
		{ "    - {name: a, type: slack, url: \"https://x/\"}\n"
		  "    - {name: a, type: teams, url: \"https://x/\"}\n",
		  "t.yaml:7:14: alerts.channels[1]: duplicate name \"a\"" },
	};
	struct conf *c = NULL;
	struct buf d = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(cases); i++) {
		if (test_conf(cases[i].yaml, &c, &d) != -1)
			fail_msg("case %zu accepted", i);
		if (strstr(d.ptr, cases[i].expect) == NULL)
			fail_msg("case %zu: %s", i, d.ptr);
	}
	buf_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_slack_shape),
		cmocka_unit_test(test_teams_shape),
		cmocka_unit_test(test_webhook_shape),
		cmocka_unit_test(test_webhook_signature_vector),
		cmocka_unit_test(test_twilio_form_and_limit),
		cmocka_unit_test(test_text_clean),
		cmocka_unit_test(test_email_subject_encoded),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_conf_channels_ok),
		cmocka_unit_test(test_conf_channels_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
