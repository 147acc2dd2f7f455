/*
 * relay_dsn.c - queue RFC 3464 delivery status notifications built by proto/dsn like any message:
 * committed to the spool from <>, to the original sender, then handed to the scheduler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay_dsn.h"
#include "../proto/dsn.h"
#include "../proto/explain.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/xtext.h"
#include "../util/poison.h"

#define DNS_NAME_MAX_DSN 256 /* a Remote-MTA host name */

struct relay_dsn_job {
	struct relay_dsn_ctx ctx;
	struct spool_env env;
	char qid[ID_HEX_LEN + 1];
};

static unsigned
relay_dsn_notify(unsigned smtp_notify)
{
	unsigned n = 0;

	if (smtp_notify & SMTP_NOTIFY_NEVER)
		n |= DSN_NOTIFY_NEVER;
	if (smtp_notify & SMTP_NOTIFY_SUCCESS)
		n |= DSN_NOTIFY_SUCCESS;
	if (smtp_notify & SMTP_NOTIFY_FAILURE)
		n |= DSN_NOTIFY_FAILURE;
	if (smtp_notify & SMTP_NOTIFY_DELAY)
		n |= DSN_NOTIFY_DELAY;
	return n;
}

/* The reply a recipient's verdict came from, for Diagnostic-Code and the explanation. */
static void
relay_dsn_reply(const struct relay_dsn_rcpt *r, struct smtp_reply *rep)
{
	size_t n = strlen(r->diagnostic ? r->diagnostic : "");

	smtp_reply_init(rep);
	rep->code = r->code;
	if (sscanf(r->status, "%d.%d.%d", &rep->enh_class, &rep->enh_subject,
	    &rep->enh_detail) != 3)
		rep->enh_class = rep->enh_subject = rep->enh_detail = 0;
	if (n > SMTP_REPLY_MAX_TEXT)
		n = SMTP_REPLY_MAX_TEXT;
	memcpy(rep->text, r->diagnostic ? r->diagnostic : "", n);
	rep->text[n] = '\0';
	rep->text_len = n;
	rep->nlines = 1;
}

/* Build the DSN for the recipients in r (all wanting one). -1 with *why on bad input. */
static int
relay_dsn_build(struct buf *out, const struct relay_dsn_ctx *ctx, const struct spool_env *env,
    const struct buf *body, const struct relay_dsn_rcpt *r, size_t n, uint64_t now,
    unsigned *flags, const char **why)
{
	struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	struct smtp_reply *reps = xcalloc(n, sizeof(*reps));
	char (*remote)[DNS_NAME_MAX_DSN] = xcalloc(n, sizeof(*remote));
	struct buf envid = BUF_INIT;
	struct dsn_report rep;
	char qid[ID_HEX_LEN + 1];
	enum dsn_result res;
	size_t i;

	id_format(env->id, qid);
	for (i = 0; i < n; i++) {
		const struct spool_rcpt *sr = &env->rcpts[r[i].index];
		size_t h = r[i].remote ? strcspn(r[i].remote, " ") : 0;

		dr[i].address = sr->addr;
		dr[i].orcpt = sr->orcpt;
		dr[i].status = r[i].status[0] ? r[i].status : (r[i].expired ? "4.4.7" : "5.0.0");
		dr[i].expired = r[i].expired;
		if (h > 0 && h < DNS_NAME_MAX_DSN) {
			memcpy(remote[i], r[i].remote, h);
			dr[i].remote_mta = remote[i];
		}
		if (r[i].code >= 400) {
			relay_dsn_reply(&r[i], &reps[i]);
			dr[i].reply = &reps[i];
			dr[i].explain = explain_reply_in(ctx->conf->explain_rows,
			    ctx->conf->n_explain_rows, &reps[i]);
		} else {
			dr[i].local_diagnostic = r[i].diagnostic;
		}
		dr[i].last_attempt = (int64_t)(now / 1000);
	}
	memset(&rep, 0, sizeof(rep));
	rep.type = DSN_TYPE_FAILURE;
	rep.reporting_mta = ctx->conf->hostname;
	rep.queue_id = qid;
	rep.sender = env->from;
	if (env->envid != NULL) {
		xtext_encode(&envid, env->envid, strlen(env->envid));
		rep.envid = envid.ptr;
	}
	rep.ret = env->ret == SMTP_RET_FULL ? DSN_RET_FULL :
	    env->ret == SMTP_RET_HDRS ? DSN_RET_HDRS : DSN_RET_NONE;
	rep.arrival = (int64_t)(env->received_ms / 1000);
	rep.now = (int64_t)(now / 1000);
	rep.rcpts = dr;
	rep.nrcpts = n;
	rep.msg = body->ptr;
	rep.msg_len = body->len;
	res = dsn_build(&rep, out, flags, why);
	buf_fini(&envid);
	free(remote);
	free(reps);
	free(dr);
	return res == DSN_OK ? 0 : -1;
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
	const char *why = NULL;
	unsigned flags = 0;
	size_t i, k = 0;

	/* Never to the null sender: a DSN must not cause another (RFC 3461 6.2). */
	if (env->from == NULL || env->from[0] == '\0')
		return;
	want = xcalloc(n, sizeof(*want));
	for (i = 0; i < n; i++) {
		if (dsn_should_send(relay_dsn_notify(env->rcpts[rcpts[i].index].notify),
		    rcpts[i].expired ? DSN_STATE_EXPIRED : DSN_STATE_BOUNCED, env->from))
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
	if (relay_dsn_build(&msg, ctx, env, body, want, k, now, &flags, &why) == -1) {
		log_error("relay", "dsn_failed", "qid=%s about=%s why=%s", job->qid, orig, why);
		free(want);
		spool_env_fini(&job->env);
		free(job);
		buf_fini(&msg);
		return;
	}
	free(want);
	if (flags & DSN_OUT_8BIT)
		job->env.body = SMTP_BODY_8BITMIME;
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
