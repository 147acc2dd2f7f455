/*
 * notify.c - delivering one alert notice to one named channel: the channel table, secrets read
 * from files, sending (HTTP through httpc, email through notify_params.submit), retries with
 * exponential backoff and Retry-After, logs and counters.
 *
 * A send is one op made of parts: one part per HTTP request (a Twilio channel sends one SMS per
 * number) or one email submission. Payloads are built once, when the send starts (webhook
 * signatures at each attempt: the timestamp is the attempt's). A part that fails is logged
 * (event=channel_failed) and retried after backoff while the channel's retries last; the op
 * ends when every part has ended, succeeded only if all did. An op that failed is logged at
 * error level with the alert's title (event=alert_not_delivered) and counted: never silently.
 *
 * Channels are reference counted: a reload builds a new table, and sends in flight finish
 * with the channel (and secrets) they started with. Counters live per channel name in a list
 * that only grows, so a reload does not reset them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "httpc.h"
#include "notify.h"
#include "notify_payload.h"
#include "../proto/header.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define NOTIFY_SECRET_MAX 8192

struct notify_counter {
	char *name;
	char *type;
	uint64_t ok, failed, retries;
};

struct notify_chan {
	int refs;
	struct conf *conf;                   /* referenced: cc points into it */
	const struct conf_alert_channel *cc;
	struct notify_counter *ctr;
	char *url;                           /* slack, teams, webhook: resolved URL */
	struct buf key;                      /* webhook: the HMAC key */
	char *sid, *token;                   /* twilio */
};

struct notify_op;

/* Outcome token of an email submission: the part may be gone when done arrives. */
struct notify_submit_tok {
	struct notify_part *part; /* NULL once the part is gone */
};

struct notify_part {
	struct notify_op *op;
	char *label;             /* "" or the Twilio number, for logs */
	char *url;
	struct buf body;
	const char *content_type;
	unsigned attempt;
	bool ended;
	struct httpc_xfer *xfer;
	struct notify_submit_tok *tok;
	struct event *timer;
};

struct notify_op {
	struct notify *n;
	struct notify_chan *ch;
	char *title;
	char *msg_id;            /* webhook-id, stable across retries */
	struct notify_part *parts;
	size_t n_parts, pending;
	bool failed;
	char *why;
	notify_done_fn done;
	void *ctx;
	struct notify_op *prev, *next;
};

struct notify {
	struct event_base *base;
	struct conf *conf;
	notify_submit_fn submit;
	void *submit_arg;
	struct httpc *http;
	struct notify_chan **chans;
	size_t n_chans;
	struct notify_counter **ctrs;
	size_t n_ctrs;
	struct notify_op *ops;
	uint64_t seq;
};

static const char *const notify_type_names[] = {
	[CONF_CHANNEL_EMAIL] = "email",
	[CONF_CHANNEL_SLACK] = "slack",
	[CONF_CHANNEL_TEAMS] = "teams",
	[CONF_CHANNEL_TWILIO] = "twilio",
	[CONF_CHANNEL_WEBHOOK] = "webhook",
};

/* ---- channels ---- */

/* The first line of a secret file, surrounding white space removed. */
static int
notify_read_secret(const char *path, const char *what, char **out, struct hk_err *err)
{
	struct buf b = BUF_INIT;
	size_t start = 0, end;
	int fd = fsops_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);

	if (fd == -1)
		return hk_err_sys(err, errno, "%s %s", what, path);
	if (fsops_read_all(fd, &b, NOTIFY_SECRET_MAX) == -1) {
		hk_err_sys(err, errno, "%s %s", what, path);
		fsops_close(fd);
		buf_fini(&b);
		return -1;
	}
	fsops_close(fd);
	while (start < b.len && (b.ptr[start] == ' ' || b.ptr[start] == '\t' ||
	    b.ptr[start] == '\r' || b.ptr[start] == '\n'))
		start++;
	end = start;
	while (end < b.len && b.ptr[end] != '\r' && b.ptr[end] != '\n')
		end++;
	while (end > start && (b.ptr[end - 1] == ' ' || b.ptr[end - 1] == '\t'))
		end--;
	if (end == start) {
		buf_fini(&b);
		return hk_err_set(err, HK_E_CONFIG, "%s %s is empty", what, path);
	}
	*out = xstrndup(b.ptr + start, end - start);
	buf_fini(&b);
	return 0;
}

static struct notify_counter *
notify_counter_get(struct notify *n, const struct conf_alert_channel *cc)
{
	struct notify_counter *c;
	size_t i;

	for (i = 0; i < n->n_ctrs; i++) {
		if (strcmp(n->ctrs[i]->name, cc->name) == 0 &&
		    strcmp(n->ctrs[i]->type, notify_type_names[cc->type]) == 0)
			return n->ctrs[i];
	}
	c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(cc->name);
	c->type = xstrdup(notify_type_names[cc->type]);
	n->ctrs = xreallocarray(n->ctrs, n->n_ctrs + 1, sizeof(*n->ctrs));
	n->ctrs[n->n_ctrs++] = c;
	return c;
}

static void
notify_chan_unref(struct notify_chan *ch)
{
	if (ch == NULL || --ch->refs > 0)
		return;
	conf_unref(ch->conf);
	free(ch->url);
	buf_fini(&ch->key);
	free(ch->sid);
	free(ch->token);
	free(ch);
}

static struct notify_chan *
notify_chan_new(struct notify *n, struct conf *conf, const struct conf_alert_channel *cc,
    struct hk_err *err)
{
	struct notify_chan *ch = xcalloc(1, sizeof(*ch));
	char *secret = NULL;

	ch->refs = 1;
	ch->conf = conf_ref(conf);
	ch->cc = cc;
	switch (cc->type) {
	case CONF_CHANNEL_SLACK:
	case CONF_CHANNEL_TEAMS:
	case CONF_CHANNEL_WEBHOOK:
		if (cc->url != NULL)
			ch->url = xstrdup(cc->url);
		else if (notify_read_secret(cc->url_file, "url_file", &ch->url, err) == -1)
			goto fail;
		if (strncasecmp(ch->url, "http://", 7) != 0 &&
		    strncasecmp(ch->url, "https://", 8) != 0) {
			hk_err_set(err, HK_E_CONFIG, "url_file %s does not hold an http(s) URL",
			    cc->url_file);
			goto fail;
		}
		if (cc->type != CONF_CHANNEL_WEBHOOK)
			break;
		if (notify_read_secret(cc->secret_file, "secret_file", &secret, err) == -1)
			goto fail;
		if (notify_webhook_secret_parse(secret, &ch->key) == -1) {
			hk_err_set(err, HK_E_CONFIG, "secret_file %s: expected whsec_ and base64",
			    cc->secret_file);
			goto fail;
		}
		break;
	case CONF_CHANNEL_TWILIO:
		if (notify_read_secret(cc->account_sid_file, "account_sid_file", &ch->sid,
		    err) == -1 ||
		    notify_read_secret(cc->auth_token_file, "auth_token_file", &ch->token,
		    err) == -1)
			goto fail;
		break;
	case CONF_CHANNEL_EMAIL:
		break;
	}
	free(secret);
	ch->ctr = notify_counter_get(n, cc);
	return ch;
fail:
	free(secret);
	notify_chan_unref(ch);
	return NULL;
}

/* Channels of conf, or -1 with err naming the channel that cannot be set up. */
static int
notify_load(struct notify *n, struct conf *conf, struct notify_chan ***out, struct hk_err *err)
{
	struct notify_chan **v = xcalloc(conf->n_alert_channels + 1, sizeof(*v));
	size_t i, j;

	for (i = 0; i < conf->n_alert_channels; i++) {
		struct hk_err e = { 0 };

		v[i] = notify_chan_new(n, conf, &conf->alert_channels[i], &e);
		if (v[i] == NULL) {
			hk_err_set(err, e.code ? e.code : HK_E_CONFIG, "alerts.channels %s: %s",
			    conf->alert_channels[i].name, e.text);
			for (j = 0; j < i; j++)
				notify_chan_unref(v[j]);
			free(v);
			return -1;
		}
	}
	*out = v;
	return 0;
}

static void
notify_chans_free(struct notify_chan **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		notify_chan_unref(v[i]);
	free(v);
}

static struct notify_chan *
notify_find(const struct notify *n, const char *name)
{
	size_t i;

	for (i = 0; i < n->n_chans; i++) {
		if (strcmp(n->chans[i]->cc->name, name) == 0)
			return n->chans[i];
	}
	return NULL;
}

/* ---- sending ---- */

static void notify_part_start(struct notify_part *p);

static void
notify_op_finish(struct notify_op *op)
{
	struct notify *n = op->n;
	struct notify_chan *ch = op->ch;
	size_t i;

	if (op->failed) {
		ch->ctr->failed++;
		log_error("alert", "alert_not_delivered", "sess=alert channel=%s type=%s title=%s "
		    "err=%s", ch->cc->name, notify_type_names[ch->cc->type], log_q(op->title),
		    log_q(op->why ? op->why : "failed"));
	} else {
		ch->ctr->ok++;
		log_info("alert", "alert_sent", "sess=alert channel=%s type=%s title=%s",
		    ch->cc->name, notify_type_names[ch->cc->type], log_q(op->title));
	}
	if (op->prev)
		op->prev->next = op->next;
	else
		n->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	if (op->done)
		op->done(op->ctx, !op->failed, op->failed ? (op->why ? op->why : "failed") : NULL);
	for (i = 0; i < op->n_parts; i++) {
		struct notify_part *p = &op->parts[i];

		free(p->label);
		free(p->url);
		buf_fini(&p->body);
		if (p->timer)
			event_free(p->timer);
	}
	free(op->parts);
	free(op->title);
	free(op->msg_id);
	free(op->why);
	notify_chan_unref(ch);
	free(op);
}

static void
notify_part_end(struct notify_part *p, bool ok, const char *why)
{
	struct notify_op *op = p->op;

	p->ended = true;
	if (!ok) {
		op->failed = true;
		if (op->why == NULL)
			op->why = xstrdup(why);
	}
	if (--op->pending == 0)
		notify_op_finish(op);
}

static void
notify_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_part_start(arg);
}

/* An attempt failed: log it, then retry later or end the part. r may be NULL (not HTTP). */
static void
notify_part_failed(struct notify_part *p, const struct httpc_result *r, bool retryable,
    const char *why)
{
	struct notify_op *op = p->op;
	const struct conf_alert_channel *cc = op->ch->cc;
	uint64_t delay = 0;
	bool again = retryable && p->attempt <= cc->retries;

	if (again)
		delay = httpc_retry_delay_ms(r, p->attempt, cc->backoff_ms, cc->backoff_max_ms);
	log_warn("alert", "channel_failed", "sess=alert channel=%s type=%s status=%ld attempt=%u "
	    "of=%u%s%s err=%s action=%s retry_in_ms=%llu", cc->name, notify_type_names[cc->type],
	    r ? r->status : 0L, p->attempt, cc->retries + 1, p->label[0] ? " to=" : "",
	    p->label[0] ? log_q(p->label) : "", log_q(why), again ? "retry" : "give_up",
	    (unsigned long long)delay);
	if (!again) {
		notify_part_end(p, false, why);
		return;
	}
	op->ch->ctr->retries++;
	if (p->timer == NULL)
		p->timer = evtimer_new(op->n->base, notify_retry_cb, p);
	if (p->timer == NULL)
		hk_panic("evtimer_new failed");
	{
		struct timeval tv = { .tv_sec = (time_t)(delay / 1000),
			.tv_usec = (suseconds_t)(delay % 1000 * 1000) };

		evtimer_add(p->timer, &tv);
	}
}

static void
notify_http_done_cb(void *ctx, const struct httpc_result *r)
{
	struct notify_part *p = ctx;
	struct buf why = BUF_INIT;

	p->xfer = NULL;
	if (httpc_is_ok(r)) {
		notify_part_end(p, true, NULL);
		return;
	}
	if (r->transport_error) {
		buf_printf(&why, "%s%s", r->timed_out ? "timeout: " : "", r->error);
	} else {
		size_t i;

		buf_printf(&why, "HTTP %ld", r->status);
		if (r->body_len > 0) {
			buf_append_str(&why, ": ");
			/* One line of the reply, enough to see "invalid_token" or "no_service". */
			for (i = 0; i < r->body_len && i < 200 && r->body[i] != '\n'; i++)
				buf_putc(&why, (unsigned char)r->body[i] < 0x20 ? ' ' : r->body[i]);
		}
	}
	notify_part_failed(p, r, httpc_is_retryable(r), why.ptr);
	buf_fini(&why);
}

static void
notify_submit_done_cb(void *ctx, int rc, const char *why)
{
	struct notify_submit_tok *tok = ctx;
	struct notify_part *p = tok->part;

	free(tok);
	if (p == NULL)
		return;
	p->tok = NULL;
	if (rc == 0)
		notify_part_end(p, true, NULL);
	else
		notify_part_failed(p, NULL, true, why ? why : "the spool refused the message");
}

static void
notify_part_start_email(struct notify_part *p)
{
	struct notify_op *op = p->op;
	struct notify *n = op->n;
	const struct conf_alert_channel *cc = op->ch->cc;
	struct hk_err err = { 0 };

	if (n->submit == NULL) {
		notify_part_failed(p, NULL, false, "no submission path for email alerts");
		return;
	}
	p->tok = xcalloc(1, sizeof(*p->tok));
	p->tok->part = p;
	if (n->submit(n->submit_arg, cc->from, cc->to, cc->n_to, p->body.ptr, p->body.len,
	    notify_submit_done_cb, p->tok, &err) == -1) {
		free(p->tok);
		p->tok = NULL;
		notify_part_failed(p, NULL, true, err.text[0] ? err.text : "submission refused");
	}
}

static void
notify_part_start(struct notify_part *p)
{
	struct notify_op *op = p->op;
	struct notify_chan *ch = op->ch;
	struct httpc_req req;
	struct buf sig = BUF_INIT, h_id = BUF_INIT, h_ts = BUF_INIT, h_sig = BUF_INIT;
	const char *headers[3];
	struct hk_err err = { 0 };

	p->attempt++;
	if (ch->cc->type == CONF_CHANNEL_EMAIL) {
		notify_part_start_email(p);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.url = p->url;
	req.content_type = p->content_type;
	req.body = p->body.ptr;
	req.body_len = p->body.len;
	req.timeout_ms = ch->cc->timeout_ms;
	if (ch->cc->type == CONF_CHANNEL_TWILIO) {
		req.username = ch->sid;
		req.password = ch->token;
	}
	if (ch->cc->type == CONF_CHANNEL_WEBHOOK) {
		uint64_t ts = clock_now_ms() / 1000;

		notify_webhook_signature(ch->key.ptr, ch->key.len, op->msg_id, ts, p->body.ptr,
		    p->body.len, &sig);
		buf_printf(&h_id, "webhook-id: %s", op->msg_id);
		buf_printf(&h_ts, "webhook-timestamp: %llu", (unsigned long long)ts);
		buf_printf(&h_sig, "webhook-signature: %s", sig.ptr);
		headers[0] = h_id.ptr;
		headers[1] = h_ts.ptr;
		headers[2] = h_sig.ptr;
		req.headers = headers;
		req.n_headers = 3;
	}
	p->xfer = httpc_post(op->n->http, &req, notify_http_done_cb, p, &err);
	buf_fini(&sig);
	buf_fini(&h_id);
	buf_fini(&h_ts);
	buf_fini(&h_sig);
	if (p->xfer == NULL)
		notify_part_failed(p, NULL, err.code == HK_E_BUSY, err.text);
}

static struct notify_part *
notify_op_add_part(struct notify_op *op, const char *label)
{
	struct notify_part *p;

	op->parts = xreallocarray(op->parts, op->n_parts + 1, sizeof(*op->parts));
	p = &op->parts[op->n_parts++];
	memset(p, 0, sizeof(*p));
	p->op = op;
	p->label = xstrdup(label);
	buf_init(&p->body);
	return p;
}

/* Build every part's payload for m. -1 with err when the email cannot be built. */
static int
notify_op_build(struct notify_op *op, const struct alert_msg *m, struct hk_err *err)
{
	const struct conf_alert_channel *cc = op->ch->cc;
	struct notify_part *p;
	struct buf text = BUF_INIT, date = BUF_INIT, msgid = BUF_INIT;
	const char *why = NULL;
	size_t i;
	int rc = 0;

	switch (cc->type) {
	case CONF_CHANNEL_SLACK:
		p = notify_op_add_part(op, "");
		p->url = xstrdup(op->ch->url);
		p->content_type = "application/json";
		notify_slack_payload(m, &p->body);
		break;
	case CONF_CHANNEL_TEAMS:
		p = notify_op_add_part(op, "");
		p->url = xstrdup(op->ch->url);
		p->content_type = "application/json";
		notify_teams_payload(m, &p->body);
		break;
	case CONF_CHANNEL_WEBHOOK:
		p = notify_op_add_part(op, "");
		p->url = xstrdup(op->ch->url);
		p->content_type = "application/json";
		notify_webhook_payload(m, &p->body);
		break;
	case CONF_CHANNEL_TWILIO:
		notify_twilio_text(m, &text);
		for (i = 0; i < cc->n_to; i++) {
			struct buf url = BUF_INIT;

			p = notify_op_add_part(op, cc->to[i]);
			notify_twilio_url(cc->base_url, op->ch->sid, &url);
			p->url = buf_steal(&url);
			p->content_type = "application/x-www-form-urlencoded";
			notify_twilio_form(cc->to[i], cc->from, text.ptr, &p->body);
		}
		break;
	case CONF_CHANNEL_EMAIL:
		p = notify_op_add_part(op, "");
		header_format_date(&date, (int64_t)(clock_now_ms() / 1000), 0);
		buf_printf(&msgid, "<alert.%s@%s>", op->msg_id + 4,
		    op->ch->conf->hostname ? op->ch->conf->hostname : "localhost");
		if (notify_email_message(m, cc->from, cc->to, cc->n_to, date.ptr, msgid.ptr,
		    &p->body, &why) == -1)
			rc = hk_err_set(err, HK_E_DATA, "the alert email cannot be built: %s", why);
		break;
	}
	buf_fini(&text);
	buf_fini(&date);
	buf_fini(&msgid);
	return rc;
}

int
notify_send(struct notify *n, const char *channel, const struct alert_msg *m,
    notify_done_fn done, void *ctx, struct hk_err *err)
{
	struct notify_chan *ch = notify_find(n, channel);
	struct notify_op *op;
	size_t i;

	HK_ASSERT_LOOP();
	if (ch == NULL) {
		struct buf names = BUF_INIT;

		for (i = 0; i < n->n_chans; i++)
			buf_printf(&names, "%s%s", i ? ", " : "", n->chans[i]->cc->name);
		hk_err_set(err, HK_E_NOTFOUND, "no alert channel %s (configured: %s)",
		    log_q(channel), names.len ? names.ptr : "none");
		buf_fini(&names);
		return -1;
	}
	op = xcalloc(1, sizeof(*op));
	op->n = n;
	op->ch = ch;
	ch->refs++;
	op->title = xstrdup(m->title ? m->title : "");
	op->msg_id = xasprintf("msg_%llx%04llx", (unsigned long long)clock_now_ms(),
	    (unsigned long long)(++n->seq & 0xffff));
	op->done = done;
	op->ctx = ctx;
	op->next = n->ops;
	if (op->next)
		op->next->prev = op;
	n->ops = op;
	if (notify_op_build(op, m, err) == -1) {
		/* Counted and logged like any failure, but the caller hears it at once. */
		op->done = NULL;
		op->failed = true;
		op->why = xstrdup(err->text);
		notify_op_finish(op);
		return -1;
	}
	op->pending = op->n_parts;
	log_info("alert", "alert_sending", "sess=alert channel=%s type=%s kind=%s title=%s",
	    ch->cc->name, notify_type_names[ch->cc->type], alert_kind_name(m->kind),
	    log_q(op->title));
	/* Parts may end at once (no submission path): keep op alive until all have started. */
	op->pending++;
	for (i = 0; i < op->n_parts; i++)
		notify_part_start(&op->parts[i]);
	if (--op->pending == 0)
		notify_op_finish(op);
	return 0;
}

bool
notify_has_channel(const struct notify *n, const char *channel)
{
	return notify_find(n, channel) != NULL;
}

void
notify_stats(const struct notify *n, void (*each)(void *ctx, const struct notify_channel_stats *s),
    void *ctx)
{
	size_t i;

	for (i = 0; i < n->n_chans; i++) {
		const struct notify_counter *c = n->chans[i]->ctr;
		struct notify_channel_stats s = { .name = c->name, .type = c->type,
			.sent_ok = c->ok, .sent_failed = c->failed, .retries = c->retries };

		each(ctx, &s);
	}
}

/* ---- life ---- */

struct notify *
notify_new(const struct notify_params *p, struct hk_err *err)
{
	struct notify *n = xcalloc(1, sizeof(*n));

	n->base = p->base;
	n->conf = conf_ref(p->conf);
	n->submit = p->submit;
	n->submit_arg = p->submit_arg;
	n->http = httpc_new(p->base, err);
	if (n->http == NULL || notify_load(n, n->conf, &n->chans, err) == -1) {
		notify_free(n);
		return NULL;
	}
	n->n_chans = n->conf->n_alert_channels;
	return n;
}

int
notify_reload(struct notify *n, struct conf *conf, struct hk_err *err)
{
	struct notify_chan **v;

	if (notify_load(n, conf, &v, err) == -1)
		return -1;
	notify_chans_free(n->chans, n->n_chans);
	n->chans = v;
	n->n_chans = conf->n_alert_channels;
	conf_unref(n->conf);
	n->conf = conf_ref(conf);
	return 0;
}

void
notify_free(struct notify *n)
{
	size_t i;

	if (n == NULL)
		return;
	while (n->ops != NULL) {
		struct notify_op *op = n->ops;

		for (i = 0; i < op->n_parts; i++) {
			struct notify_part *p = &op->parts[i];

			if (p->ended)
				continue;
			httpc_cancel(p->xfer);
			p->xfer = NULL;
			if (p->tok)
				p->tok->part = NULL;
			p->tok = NULL;
			if (p->timer)
				evtimer_del(p->timer);
			op->failed = true;
			if (op->why == NULL)
				op->why = xstrdup("shutting down");
		}
		op->pending = 0;
		notify_op_finish(op);
	}
	httpc_free(n->http);
	notify_chans_free(n->chans, n->n_chans);
	for (i = 0; i < n->n_ctrs; i++) {
		free(n->ctrs[i]->name);
		free(n->ctrs[i]->type);
		free(n->ctrs[i]);
	}
	free(n->ctrs);
	conf_unref(n->conf);
	free(n);
}
