/*
 * relay_dsn.c - build an RFC 3464 delivery status notification and queue it like any message.
 *
 * Shape (RFC 3462 multipart/report, RFC 3464 message/delivery-status, RFC 3834 Auto-Submitted):
 * a human-readable part with each recipient, the reply and what it means; the machine-readable
 * part with per-message and per-recipient fields; the returned content as text/rfc822-headers
 * (RET=HDRS or no RET) or message/rfc822 (RET=FULL, up to RELAY_DSN_FULL_MAX bytes). Every line
 * is CRLF and at most 998 octets; peer text is stripped of control bytes, so a hostile reply
 * cannot add header fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay_dsn.h"
#include "../proto/explain.h"
#include "../proto/header.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/xtext.h"
#include "../util/poison.h"

#define RELAY_DSN_FULL_MAX (10u << 20) /* RET=FULL above this returns the headers only */
#define RELAY_DSN_TEXT_MAX 900         /* a diagnostic inside one line */

struct relay_dsn_job {
	struct relay_dsn_ctx ctx;
	struct spool_env env;
	char qid[ID_HEX_LEN + 1];
};

/* Append s without control bytes, cut to max octets. */
static void
relay_dsn_clean(struct buf *out, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max; s++, n++)
		buf_putc(out, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void
relay_dsn_date(struct buf *out, uint64_t ms)
{
	header_format_date(out, (int64_t)(ms / 1000), 0);
}

static bool
relay_dsn_wanted(unsigned notify)
{
	/* RFC 3461 4.1: no NOTIFY means NOTIFY=FAILURE (DELAY is up to the MTA; not sent). */
	if (notify == 0)
		return true;
	return (notify & SMTP_NOTIFY_NEVER) == 0 && (notify & SMTP_NOTIFY_FAILURE) != 0;
}

/* "rfc822;a+2Bb@x" -> "rfc822; a+b@x" (RFC 3464 2.3.1 wants the decoded address). */
static void
relay_dsn_orcpt(struct buf *out, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	struct buf dec = BUF_INIT;

	if (semi == NULL || xtext_decode(&dec, semi + 1, strlen(semi + 1)) == -1) {
		buf_fini(&dec);
		return;
	}
	buf_append_str(out, "Original-Recipient: ");
	relay_dsn_clean(out, orcpt, (size_t)(semi - orcpt));
	buf_append_str(out, "; ");
	relay_dsn_clean(out, dec.ptr, RELAY_DSN_TEXT_MAX);
	buf_append_str(out, "\r\n");
	buf_fini(&dec);
}

static void
relay_dsn_human(struct buf *out, const struct spool_env *env, const struct relay_dsn_rcpt *r,
    size_t n, const char *host)
{
	size_t i;

	buf_printf(out, "This is the mail system at host %s.\r\n\r\n", host);
	buf_append_str(out, "Your message could not be delivered to one or more recipients.\r\n"
	    "It is attached below.\r\n\r\n");
	for (i = 0; i < n; i++) {
		const struct explain_entry *e;
		int cls = 0, subj = 0, det = 0;

		if (sscanf(r[i].status, "%d.%d.%d", &cls, &subj, &det) != 3)
			cls = subj = det = 0;
		e = explain_lookup(cls == 2 ? 250 : cls * 100 + 50, cls, subj, det, r[i].diagnostic,
		    strlen(r[i].diagnostic));
		buf_putc(out, '<');
		relay_dsn_clean(out, env->rcpts[r[i].index].addr, RELAY_DSN_TEXT_MAX);
		buf_append_str(out, r[i].expired ? ">: gave up after retrying for too long: " : ">: ");
		relay_dsn_clean(out, r[i].diagnostic, RELAY_DSN_TEXT_MAX);
		buf_append_str(out, "\r\n");
		if (e != NULL && e->cause != NULL) {
			buf_append_str(out, "    What it means: ");
			relay_dsn_clean(out, e->cause, RELAY_DSN_TEXT_MAX);
			buf_append_str(out, "\r\n");
		}
		if (e != NULL && e->fix != NULL) {
			buf_append_str(out, "    What to do: ");
			relay_dsn_clean(out, e->fix, RELAY_DSN_TEXT_MAX);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "\r\n");
	}
}

static void
relay_dsn_status(struct buf *out, const struct spool_env *env, const struct relay_dsn_rcpt *r,
    size_t n, const char *host, uint64_t now)
{
	size_t i;

	buf_printf(out, "Reporting-MTA: dns; %s\r\n", host);
	if (env->envid != NULL) {
		buf_append_str(out, "Original-Envelope-Id: ");
		relay_dsn_clean(out, env->envid, 100);
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "Arrival-Date: ");
	relay_dsn_date(out, env->received_ms);
	buf_append_str(out, "\r\n");
	for (i = 0; i < n; i++) {
		const struct spool_rcpt *sr = &env->rcpts[r[i].index];
		size_t h;

		buf_append_str(out, "\r\nFinal-Recipient: rfc822; ");
		relay_dsn_clean(out, sr->addr, RELAY_DSN_TEXT_MAX);
		buf_append_str(out, "\r\n");
		if (sr->orcpt)
			relay_dsn_orcpt(out, sr->orcpt);
		buf_printf(out, "Action: failed\r\nStatus: %s\r\n",
		    r[i].status[0] ? r[i].status : (r[i].expired ? "4.4.7" : "5.0.0"));
		h = r[i].remote ? strcspn(r[i].remote, " ") : 0;
		if (h > 0) {
			buf_append_str(out, "Remote-MTA: dns; ");
			relay_dsn_clean(out, r[i].remote, h);
			buf_append_str(out, "\r\n");
		}
		if (r[i].diagnostic && r[i].diagnostic[0]) {
			buf_append_str(out, "Diagnostic-Code: smtp; ");
			relay_dsn_clean(out, r[i].diagnostic, RELAY_DSN_TEXT_MAX);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "Last-Attempt-Date: ");
		relay_dsn_date(out, now);
		buf_append_str(out, "\r\n");
	}
}

static void
relay_dsn_build(struct buf *out, const struct relay_dsn_ctx *ctx, const struct spool_env *env,
    const struct buf *body, const struct relay_dsn_rcpt *r, size_t n, uint64_t dsn_id, uint64_t now)
{
	const char *host = ctx->conf->hostname;
	char qid[ID_HEX_LEN + 1], bnd[64];
	bool full = env->ret == SMTP_RET_FULL && body->len <= RELAY_DSN_FULL_MAX;
	size_t hlen = header_section_len(body->ptr, body->len);

	id_format(dsn_id, qid);
	snprintf(bnd, sizeof(bnd), "%s/%s", qid, host);
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
	buf_append_str(out, "To: <");
	relay_dsn_clean(out, env->from, RELAY_DSN_TEXT_MAX);
	buf_append_str(out, ">\r\n");
	buf_append_str(out, "Subject: Undelivered Mail Returned to Sender\r\n");
	buf_append_str(out, "Date: ");
	relay_dsn_date(out, now);
	buf_printf(out, "\r\nMessage-ID: <%s.dsn@%s>\r\n", qid, host);
	buf_append_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n", bnd);
	buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n", bnd);
	relay_dsn_human(out, env, r, n, host);
	buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n", bnd);
	relay_dsn_status(out, env, r, n, host, now);
	buf_printf(out, "\r\n--%s\r\n", bnd);
	if (full) {
		buf_append_str(out, "Content-Description: Undelivered Message\r\n"
		    "Content-Type: message/rfc822\r\n\r\n");
		buf_append(out, body->ptr, body->len);
	} else {
		buf_append_str(out, "Content-Description: Undelivered Message Headers\r\n"
		    "Content-Type: text/rfc822-headers\r\n\r\n");
		buf_append(out, body->ptr, hlen);
	}
	if (out->len < 2 || memcmp(out->ptr + out->len - 2, "\r\n", 2) != 0)
		buf_append_str(out, "\r\n");
	buf_printf(out, "\r\n--%s--\r\n", bnd);
}

static void
relay_dsn_committed(int rc, const struct hk_err *err, void *arg)
{
	struct relay_dsn_job *job = arg;

	if (rc == -1) {
		log_error("relay", "dsn_failed", "qid=%s for=%s err=%s", job->qid,
		    log_q(job->env.rcpts[0].addr), log_q(err ? err->text : "?"));
	} else {
		log_info("relay", "dsn_queued", "qid=%s to=%s", job->qid,
		    log_q(job->env.rcpts[0].addr));
		if (job->ctx.ml)
			maillog_received(job->ctx.ml, &job->env, "Undelivered Mail Returned to Sender");
		sched_add(job->ctx.sched, job->env.id, 0);
	}
	spool_env_fini(&job->env);
	free(job);
}

void
relay_dsn_send(const struct relay_dsn_ctx *ctx, const struct spool_env *env,
    const struct buf *body, const struct relay_dsn_rcpt *rcpts, size_t n)
{
	struct relay_dsn_rcpt *want;
	struct relay_dsn_job *job;
	struct buf msg = BUF_INIT;
	struct hk_err err = { 0 };
	uint64_t now = clock_now_ms();
	char orig[ID_HEX_LEN + 1];
	size_t i, k = 0;

	/* Never to the null sender: a DSN must not cause another (RFC 3461 6.2). */
	if (env->from == NULL || env->from[0] == '\0')
		return;
	want = xcalloc(n, sizeof(*want));
	for (i = 0; i < n; i++) {
		if (relay_dsn_wanted(env->rcpts[rcpts[i].index].notify))
			want[k++] = rcpts[i];
	}
	id_format(env->id, orig);
	if (k == 0) {
		free(want);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->ctx = *ctx;
	job->env.id = id_gen_next(ctx->ids, now);
	id_format(job->env.id, job->qid);
	job->env.received_ms = now;
	job->env.from = xstrdup("");
	job->env.source = xstrdup("dsn");
	job->env.next_attempt_ms = now;
	spool_env_add_rcpt(&job->env, env->from, SMTP_NOTIFY_NEVER, NULL);
	relay_dsn_build(&msg, ctx, env, body, want, k, job->env.id, now);
	free(want);
	job->env.size = msg.len;
	log_info("relay", "dsn", "qid=%s about=%s to=%s recipients=%zu", job->qid, orig,
	    log_q(env->from), k);
	if (spool_commit(ctx->spool, &job->env, &msg, relay_dsn_committed, job, &err) == -1) {
		log_error("relay", "dsn_failed", "qid=%s about=%s err=%s", job->qid, orig,
		    log_q(err.text));
		spool_env_fini(&job->env);
		free(job);
	}
	buf_fini(&msg);
}
