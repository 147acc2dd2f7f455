/*
 * smtpd_data.c - message content: DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030), the Received:
 * header, Message-ID/Date for authenticated submission, and the spool commit.
 *
 * The content is always read to its real end before any verdict, so the client and we agree on
 * where the next command starts:
 * - a bare CR or LF anywhere: 554 5.6.11 (SMTP smuggling defence, DESIGN.md 13);
 * - more than limits.max_message_size: 552 5.3.4 (also for a SIZE= declaration, at MAIL);
 * - a line longer than limits.max_line: 500 5.5.2 "Line too long" (DESIGN.md 6 table; we never
 *   fold or truncate content);
 * - a NUL byte: 554 5.6.0.
 * BDAT chunks are accepted (250) until LAST; the verdict comes with the reply to BDAT LAST.
 * The commit is asynchronous: the session reads no commands until it completes; pipelined input
 * stays buffered and runs after "250 2.0.0 Ok: queued as <ID>".
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>

#include "../proto/header.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "smtpd_int.h"
#include "../util/poison.h"

struct smtpd_commit {
	LIST_ENTRY(smtpd_commit) link;
	struct smtpd *sd;         /* NULL once smtpd is freed */
	struct smtpd_session *s;  /* NULL once the session is gone */
	unsigned long sess_id;
	struct spool_env env;
	char qid[ID_HEX_LEN + 1];
};

bool
smtpd_data_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	if (cmd->arg != NULL) {
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: DATA" };
		return false;
	}
	return true;
}

static void
smtpd_content_start(struct smtpd_session *s)
{
	buf_reset(&s->tx.body);
	body_scan_init(&s->tx.scan, s->conf->limits.max_message_size, s->conf->limits.max_line);
}

void
smtpd_data_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_content_start(s);
	smtpd_enter_state(s, SMTPD_STATE_DATA);
	smtpd_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

bool
smtpd_bdat_size(const struct smtp_cmd *cmd, uint64_t *size)
{
	const char *why;
	bool last;

	if (cmd->arg == NULL)
		return false;
	return smtp_cmd_parse_bdat(cmd->arg, cmd->arg_len, HK_SIZE_MAX, size, &last, &why) ==
	    SMTP_CMD_OK;
}

bool
smtpd_bdat_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	const char *why;

	if (cmd->arg == NULL || smtp_cmd_parse_bdat(cmd->arg, cmd->arg_len, HK_SIZE_MAX,
	    &a->bdat.size, &a->bdat.last, &why) != SMTP_CMD_OK) {
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: BDAT size [LAST]" };
		return false;
	}
	return true;
}

void
smtpd_bdat_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	if (!s->tx.chunking) {
		s->tx.chunking = true;
		smtpd_content_start(s);
	}
	s->tx.chunk_left = a->bdat.size;
	s->tx.chunk_last = a->bdat.last;
	smtpd_enter_state(s, SMTPD_STATE_BDAT);
}

/* ---- commit ---- */

static void
smtpd_commit_free(struct smtpd_commit *c)
{
	spool_env_fini(&c->env);
	free(c);
}

void
smtpd_commit_detach(struct smtpd_commit *c)
{
	c->s = NULL;
}

void
smtpd_commits_orphan(struct smtpd *sd)
{
	struct smtpd_commit *c;

	while ((c = LIST_FIRST(&sd->commits)) != NULL) {
		LIST_REMOVE(c, link);
		c->sd = NULL;
	}
}

static void
smtpd_commit_reply_error(struct smtpd_session *s, const struct hk_err *err)
{
	if (err != NULL && err->code == HK_E_NOSPACE)
		smtpd_reply(s, 452, "4.3.1", "Insufficient system storage");
	else
		smtpd_reply(s, 451, "4.3.0", "Local error in processing, try again later");
}

static void
smtpd_commit_done_cb(int rc, const struct hk_err *err, void *arg)
{
	struct smtpd_commit *c = arg;
	struct smtpd_session *s = c->s;

	if (c->sd != NULL)
		LIST_REMOVE(c, link);
	if (rc == 0) {
		log_info("smtpd", "queued", "qid=%s sess=%lu from=%s nrcpt=%zu size=%llu%s", c->qid,
		    c->sess_id, log_q(c->env.from), c->env.n_rcpts,
		    (unsigned long long)c->env.size, s == NULL ? " session=gone" : "");
		/* Queued even when the client left: the scheduler must still learn of it. */
		if (c->sd != NULL && c->sd->queued_cb != NULL)
			c->sd->queued_cb(c->sd->cb_arg, &c->env);
	} else {
		log_warn("smtpd", "commit_failed", "qid=%s sess=%lu err=%s errno=%d text=%s",
		    c->qid, c->sess_id, hk_err_code_name(err != NULL ? err->code : HK_E_IO),
		    err != NULL ? err->sys_errno : 0, log_q(err != NULL ? err->text : ""));
	}
	if (s != NULL) {
		s->commit = NULL;
		if (rc == 0) {
			s->nmessages++;
			smtpd_reply(s, 250, "2.0.0", "Ok: queued as %s", c->qid);
		} else {
			smtpd_commit_reply_error(s, err);
		}
		smtpd_tx_reset(s);
		smtpd_enter_state(s, SMTPD_STATE_HELO);
		smtpd_session_resume(s);
	}
	if (c->sd != NULL)
		smtpd_commit_finished(c->sd);
	smtpd_commit_free(c);
}

static const char *
smtpd_protocol(const struct smtpd_session *s)
{
	static const char *const names[] = { "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" };

	if (!s->esmtp)
		return "SMTP";
	return names[(s->in_tls ? 2 : 0) + (s->auth_user != NULL ? 1 : 0)];
}

/* RFC 5321 4.4 trace line, plus RFC 3848 protocol names and the TLS parameters in a comment. */
static void
smtpd_received(const struct smtpd_session *s, const struct smtpd_commit *c, uint64_t now_ms,
    struct buf *out)
{
	const char *colon;

	/* The sendmail socket: the uid is what is known of the sender, as for the maildrop. */
	if (s->local)
		buf_printf(out, "Received: from local (uid %u)\r\n", s->local_uid);
	else
		buf_printf(out, "Received: from %s (%s%s%s)\r\n",
		    s->helo[0] != '\0' ? s->helo : "unknown",
		    s->peer.ss_family == AF_INET6 && strchr(s->ip, ':') != NULL ? "[IPv6:" : "[",
		    s->ip, "]");
	buf_printf(out, "\tby %s (hikyaku) with %s id %s", s->conf->hostname, smtpd_protocol(s),
	    c->qid);
	if (s->in_tls && s->tls_desc[0] != '\0') {
		colon = strchr(s->tls_desc, ':');
		if (colon != NULL)
			buf_printf(out, "\r\n\t(version=%.*s cipher=%s)",
			    (int)(colon - s->tls_desc), s->tls_desc, colon + 1);
	}
	if (c->env.n_rcpts == 1)
		buf_printf(out, "\r\n\tfor <%s>", c->env.rcpts[0].addr);
	buf_append_str(out, "; ");
	header_format_date(out, (int64_t)(now_ms / 1000), 0);
	buf_append_str(out, "\r\n");
}

/* The body as committed: trace header, submission fixes, then what the client sent. */
static void
smtpd_build_body(struct smtpd_session *s, const struct smtpd_commit *c, uint64_t now_ms,
    struct buf *out)
{
	const struct buf *b = &s->tx.body;

	buf_reserve(out, b->len + 1024);
	smtpd_received(s, c, now_ms, out);
	/*
	 * Authenticated or local submission (RFC 6409 8.2, 8.3): complete what a bare client left
	 * out.
	 */
	if (s->auth_user != NULL || s->local) {
		if (!header_has_field(b->ptr, b->len, "Message-ID"))
			buf_printf(out, "Message-ID: <%s@%s>\r\n", c->qid, s->conf->hostname);
		if (!header_has_field(b->ptr, b->len, "Date")) {
			buf_append_str(out, "Date: ");
			header_format_date(out, (int64_t)(now_ms / 1000), 0);
			buf_append_str(out, "\r\n");
		}
	}
	buf_append(out, b->ptr, b->len);
	buf_fini(&s->tx.body);
}

static char *
smtpd_dup_or_null(const char *p)
{
	return p != NULL && p[0] != '\0' ? xstrdup(p) : NULL;
}

static void
smtpd_commit_start(struct smtpd_session *s)
{
	struct smtpd *sd = s->sd;
	struct smtpd_commit *c;
	struct buf body = BUF_INIT;
	struct hk_err err;
	uint64_t now_ms = clock_now_ms();

	c = xcalloc(1, sizeof(*c));
	c->sd = sd;
	c->s = s;
	c->sess_id = s->id;
	/* The transaction's envelope moves into the commit. */
	c->env = s->tx.env;
	memset(&s->tx.env, 0, sizeof(s->tx.env));
	c->env.id = id_gen_next(sd->ids, now_ms);
	id_format(c->env.id, c->qid);
	c->env.received_ms = now_ms;
	c->env.source = xstrdup(s->local ? "sendmail" : "smtp");
	c->env.listener = xstrdup(s->lst->name != NULL ? s->lst->name : s->lst->addr.text);
	c->env.auth_user = smtpd_dup_or_null(s->auth_user);
	c->env.client = smtpd_dup_or_null(s->ip);
	c->env.helo = smtpd_dup_or_null(s->helo);
	c->env.next_attempt_ms = 0;
	smtpd_build_body(s, c, now_ms, &body);
	c->env.size = body.len;
	c->env.subject = header_subject(body.ptr, body.len);
	c->env.from_domain = header_from_domain(body.ptr, body.len);
	memset(&err, 0, sizeof(err));
	if (spool_commit(sd->spool, &c->env, &body, smtpd_commit_done_cb, c, &err) == -1) {
		log_warn("smtpd", "commit_failed", "qid=%s sess=%lu err=%s errno=%d text=%s",
		    c->qid, s->id, hk_err_code_name(err.code), err.sys_errno, log_q(err.text));
		buf_fini(&body);
		smtpd_commit_reply_error(s, &err);
		smtpd_commit_free(c);
		smtpd_tx_reset(s);
		smtpd_enter_state(s, SMTPD_STATE_HELO);
		return;
	}
	buf_fini(&body);
	LIST_INSERT_HEAD(&sd->commits, c, link);
	s->commit = c;
	smtpd_enter_state(s, SMTPD_STATE_COMMIT);
}

/* The content has been read to its end: refuse it or commit it. */
static void
smtpd_content_end(struct smtpd_session *s)
{
	unsigned flags = s->tx.scan.flags;
	const char *why = NULL;

	if (flags & BODY_FLAG_TOO_BIG) {
		why = "too_big";
		smtpd_reply_error(s, 552, "5.3.4", "Message size exceeds fixed limit");
	} else if (flags & (BODY_FLAG_BARE_LF | BODY_FLAG_BARE_CR)) {
		why = "bare_cr_lf";
		smtpd_reply_error(s, 554, "5.6.11",
		    "Bare CR or LF in message, only CRLF is allowed");
	} else if (flags & BODY_FLAG_LONG_LINE) {
		why = "long_line";
		smtpd_reply_error(s, 500, "5.5.2", "Line too long");
	} else if (flags & BODY_FLAG_NUL) {
		why = "nul";
		smtpd_reply_error(s, 554, "5.6.0", "NUL byte in message");
	}
	if (why != NULL) {
		log_info("smtpd", "message_rejected", "sess=%lu client=%s from=%s why=%s size=%llu",
		    s->id, s->ip, log_q(s->tx.env.from != NULL ? s->tx.env.from : ""), why,
		    (unsigned long long)s->tx.scan.size);
		smtpd_tx_reset(s);
		if (s->state != SMTPD_STATE_CLOSING)
			smtpd_enter_state(s, SMTPD_STATE_HELO);
		return;
	}
	smtpd_commit_start(s);
}

static bool
smtpd_data_feed_text(struct smtpd_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	size_t consumed;
	enum body_scan_result r;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		r = body_scan_feed(&s->tx.scan, v.iov_base, v.iov_len, &s->tx.body, &consumed);
		evbuffer_drain(in, consumed);
		if (r == BODY_SCAN_DONE) {
			smtpd_content_end(s);
			return true;
		}
	}
	return false;
}

static bool
smtpd_data_feed_chunk(struct smtpd_session *s, struct evbuffer *in)
{
	struct smtpd_tx *tx = &s->tx;
	struct evbuffer_iovec v;
	size_t n;

	while (tx->chunk_left > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) <= 0 || v.iov_len == 0)
			return false;
		n = v.iov_len;
		if (n > tx->chunk_left)
			n = (size_t)tx->chunk_left;
		body_chunk_feed(&tx->scan, v.iov_base, n, &tx->body);
		evbuffer_drain(in, n);
		tx->chunk_left -= n;
	}
	if (tx->chunk_last) {
		body_chunk_finish(&tx->scan);
		smtpd_content_end(s);
		return true;
	}
	smtpd_enter_state(s, SMTPD_STATE_CHUNKING);
	smtpd_reply(s, 250, "2.0.0", "%llu octets received", (unsigned long long)tx->scan.size);
	return true;
}

bool
smtpd_data_feed(struct smtpd_session *s, struct evbuffer *in)
{
	if (s->state == SMTPD_STATE_BDAT)
		return smtpd_data_feed_chunk(s, in);
	return smtpd_data_feed_text(s, in);
}
