/*
 * smtpd_session.c - one SMTP server session: the state machine, the command table, the
 * dispatcher, replies and the connection's life (greeting, STARTTLS, timeouts, close).
 *
 * Input is processed in order from the bufferevent's input buffer (RFC 2920): each complete line
 * is dispatched, replies accumulate in s->out and are flushed after a LAST_IN_GROUP command or when
 * the input runs dry. While a commit or a password check runs the session is suspended: input
 * stays buffered (bounded by the read watermark) and is processed after the reply.
 *
 * Policy choices (documented here because clients see them):
 * - A client that sends anything before the greeting gets "554 5.5.0" and is disconnected (early
 *   talkers are spam engines, not MTAs; RFC 5321 4.3.1 has clients wait for the greeting). With
 *   no greeting pause (the default), the greeting goes out at once and reading stays off until
 *   the socket is first readable; then the kernel's receive timestamp of the first byte
 *   (SO_TIMESTAMPNS, set on the listener) says whether it arrived before the greeting was queued.
 *   A polite client cannot send before receiving the greeting, so this never refuses one, and
 *   it costs no latency. With limits.greet_pause > 0 the greeting also waits that long.
 * - A command line ending in a bare LF is refused with 500 5.5.2 (only CRLF ends a line).
 * - A malformed BDAT line is answered 501 and the connection closed: its chunk size is unknown,
 *   so the following octets cannot be told from commands.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "../net/tls.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/xtext.h"
#include "smtpd_int.h"
#include "../util/poison.h"

#define SMTPD_READ_HIGH_WATER (256u * 1024u)
#define SMTPD_CLOSE_POLL_MS 20
#define SMTPD_CLOSE_MAX_MS 5000

static void smtpd_session_process(struct smtpd_session *s);
static void smtpd_session_setup_bev(struct smtpd_session *s);
static void smtpd_greet_and_watch(struct smtpd_session *s);

static const char *const smtpd_state_names[SMTPD_STATE_COUNT] = {
	[SMTPD_STATE_CONNECTED] = "connected",
	[SMTPD_STATE_TLS] = "tls",
	[SMTPD_STATE_GREETED] = "greeted",
	[SMTPD_STATE_HELO] = "helo",
	[SMTPD_STATE_MAIL] = "mail",
	[SMTPD_STATE_RCPT] = "rcpt",
	[SMTPD_STATE_DATA] = "data",
	[SMTPD_STATE_CHUNKING] = "chunking",
	[SMTPD_STATE_BDAT] = "bdat",
	[SMTPD_STATE_AUTH] = "auth",
	[SMTPD_STATE_AUTH_CHECK] = "auth_check",
	[SMTPD_STATE_COMMIT] = "commit",
	[SMTPD_STATE_CLOSING] = "closing",
};

const char *
smtpd_state_name(enum smtpd_state st)
{
	return (unsigned)st < SMTPD_STATE_COUNT ? smtpd_state_names[st] : "?";
}

/* ---- replies ---- */

void
smtpd_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
{
	size_t start = s->out.len;
	va_list ap;

	if (enh != NULL)
		buf_printf(&s->out, "%d %s ", code, enh);
	else
		buf_printf(&s->out, "%d ", code);
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	log_trace(TRACE_SMTPD, "smtpd", "send", "sess=%lu line=%s", s->id,
	    log_qn(s->out.ptr + start, s->out.len - start));
	buf_append(&s->out, "\r\n", 2);
}

static void
smtpd_reply_more(struct smtpd_session *s, int code, const char *text)
{
	size_t start = s->out.len;

	buf_printf(&s->out, "%d-%s", code, text);
	log_trace(TRACE_SMTPD, "smtpd", "send", "sess=%lu line=%s", s->id,
	    log_qn(s->out.ptr + start, s->out.len - start));
	buf_append(&s->out, "\r\n", 2);
}

void
smtpd_reply_error(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	smtpd_reply(s, code, enh, "%s", text);
	s->errors++;
	if (s->conf->limits.max_errors > 0 && s->errors >= s->conf->limits.max_errors &&
	    s->state != SMTPD_STATE_CLOSING) {
		log_info("smtpd", "too_many_errors", "sess=%lu client=%s errors=%u", s->id, s->ip,
		    s->errors);
		smtpd_reply(s, 421, "4.7.0", "Too many errors, closing connection");
		smtpd_session_close(s);
	}
}

/*
 * Send what the replies put in s->out. On plain TCP (or the local socket) with nothing queued
 * before it, the reply is written at once: replies are small and the socket buffer nearly always
 * has room, and the bufferevent's way (arm the write event, wait for epoll to say writable, write,
 * disarm) costs two epoll_ctl calls and a loop iteration per reply: 14 per message. Whatever the
 * socket does not take (a full buffer, an error to report) goes through the bufferevent, in order.
 * TLS sessions always go through it.
 */
void
smtpd_session_flush(struct smtpd_session *s)
{
	ssize_t n = 0;

	if (s->out.len == 0 || s->bev == NULL)
		return;
	if (bufferevent_get_underlying(s->bev) == NULL &&
	    bufferevent_openssl_get_ssl(s->bev) == NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		n = send(bufferevent_getfd(s->bev), s->out.ptr, s->out.len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			n = 0; /* EAGAIN, or an error the bufferevent's write reports */
	}
	if ((size_t)n < s->out.len)
		bufferevent_write(s->bev, s->out.ptr + n, s->out.len - (size_t)n);
	buf_reset(&s->out);
}

/* ---- state ---- */

void
smtpd_enter_state(struct smtpd_session *s, enum smtpd_state st)
{
	uint64_t timeout;

	if (s->state == st)
		return;
	log_debug("smtpd", "state", "sess=%lu old=%s new=%s", s->id, smtpd_state_name(s->state),
	    smtpd_state_name(st));
	s->state = st;
	if (s->bev == NULL)
		return;
	switch (st) {
	case SMTPD_STATE_DATA:
	case SMTPD_STATE_BDAT:
	case SMTPD_STATE_CHUNKING:
		timeout = s->conf->limits.data_timeout_ms;
		break;
	case SMTPD_STATE_COMMIT:
	case SMTPD_STATE_AUTH_CHECK:
	case SMTPD_STATE_CLOSING:
		/* Our own work, or the close poll, bounds these states. */
		timeout = 0;
		break;
	default:
		timeout = s->conf->limits.command_timeout_ms;
		break;
	}
	conn_set_timeout(s->bev, timeout);
}

void
smtpd_tx_reset(struct smtpd_session *s)
{
	spool_env_fini(&s->tx.env);
	buf_fini(&s->tx.body);
	memset(&s->tx, 0, sizeof(s->tx));
}

/* ---- commands ---- */

static bool
smtpd_helo_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	const char *why;

	if (smtp_cmd_parse_helo(cmd->arg, cmd->arg_len, cmd->verb == SMTP_VERB_EHLO, a->helo,
	    &why) != SMTP_CMD_OK) {
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: EHLO hostname" };
		return false;
	}
	return true;
}

static void
smtpd_ehlo_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	char line[64];

	smtpd_tx_reset(s);
	if (str_copy(s->helo, sizeof(s->helo), a->helo) == -1)
		s->helo[0] = '\0';
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	smtpd_enter_state(s, SMTPD_STATE_HELO);
	if (!s->esmtp) {
		smtpd_reply(s, 250, NULL, "%s", s->conf->hostname);
		return;
	}
	smtpd_reply_more(s, 250, s->conf->hostname);
	smtpd_reply_more(s, 250, "PIPELINING");
	snprintf(line, sizeof(line), "SIZE %llu",
	    (unsigned long long)s->conf->limits.max_message_size);
	smtpd_reply_more(s, 250, line);
	smtpd_reply_more(s, 250, "8BITMIME");
	smtpd_reply_more(s, 250, "SMTPUTF8");
	smtpd_reply_more(s, 250, "ENHANCEDSTATUSCODES");
	smtpd_reply_more(s, 250, "CHUNKING");
	if (s->lst->tls == CONF_TLS_STARTTLS && !s->in_tls && s->tls_ctx != NULL)
		smtpd_reply_more(s, 250, "STARTTLS");
	if (smtpd_auth_is_offered(s))
		smtpd_reply_more(s, 250, "AUTH PLAIN LOGIN");
	smtpd_reply(s, 250, NULL, "DSN");
}

static bool
smtpd_mail_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	const char *why;

	switch (smtp_cmd_parse_mail(cmd->arg, cmd->arg_len, &a->mail, &why)) {
	case SMTP_CMD_OK:
		break;
	case SMTP_CMD_PARAM_UNKNOWN:
		*r = (struct smtpd_reply){ 555, "5.5.4", "Unsupported MAIL parameter" };
		return false;
	default:
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: MAIL FROM:<address>" };
		return false;
	}
	if (a->mail.has_size && a->mail.size > s->conf->limits.max_message_size) {
		*r = (struct smtpd_reply){ 552, "5.3.4", "Message size exceeds fixed limit" };
		return false;
	}
	if (a->mail.body == SMTP_BODY_BINARYMIME) {
		*r = (struct smtpd_reply){ 555, "5.5.4", "BODY=BINARYMIME not supported" };
		return false;
	}
	if (a->mail.smtputf8 && !s->esmtp) {
		*r = (struct smtpd_reply){ 555, "5.5.4", "SMTPUTF8 needs EHLO" };
		return false;
	}
	return true;
}

static void
smtpd_mail_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	struct smtpd_tx *tx = &s->tx;
	struct buf envid = BUF_INIT;

	smtpd_tx_reset(s);
	tx->active = true;
	tx->env.from = xstrdup(a->mail.addr);
	tx->env.ret = a->mail.ret;
	tx->env.body = a->mail.body;
	tx->env.smtputf8 = a->mail.smtputf8;
	/* The parser has checked it is valid xtext, so decoding cannot fail. */
	if (a->mail.envid[0] != '\0') {
		if (xtext_decode(&envid, a->mail.envid, strlen(a->mail.envid)) == 0)
			tx->env.envid = buf_steal(&envid);
		buf_fini(&envid);
	}
	/*
	 * RFC 4954 5: AUTH=<mailbox> is only trusted from an authenticated, trusted client; we keep
	 * no AUTH= value, which is the same as treating every one as AUTH=<>.
	 */
	smtpd_enter_state(s, SMTPD_STATE_MAIL);
	smtpd_reply(s, 250, "2.1.0", "Ok");
}

static bool
smtpd_rcpt_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	const char *why;

	switch (smtp_cmd_parse_rcpt(cmd->arg, cmd->arg_len, s->tx.env.smtputf8, &a->rcpt, &why)) {
	case SMTP_CMD_OK:
		break;
	case SMTP_CMD_PARAM_UNKNOWN:
		*r = (struct smtpd_reply){ 555, "5.5.4", "Unsupported RCPT parameter" };
		return false;
	default:
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: RCPT TO:<address>" };
		return false;
	}
	if (s->tx.env.n_rcpts >= s->conf->limits.max_recipients) {
		*r = (struct smtpd_reply){ 452, "4.5.3", "Too many recipients" };
		return false;
	}
	return true;
}

/* Old relay tricks: user%host@relay, host!user@relay and source routes are never relayed. */
static bool
smtpd_rcpt_is_routed(const struct smtp_rcpt_args *r)
{
	const char *at;

	if (r->had_route)
		return true;
	at = strrchr(r->addr, '@');
	if (at == NULL)
		at = r->addr + strlen(r->addr);
	return memchr(r->addr, '%', (size_t)(at - r->addr)) != NULL ||
	    memchr(r->addr, '!', (size_t)(at - r->addr)) != NULL;
}

static bool
smtpd_relay_is_allowed(const struct smtpd_session *s)
{
	/* The sendmail socket: a local user submits, as through the maildrop. */
	if (s->local)
		return true;
	if ((s->lst->relay & CONF_RELAY_AUTHENTICATED) && s->auth_user != NULL)
		return true;
	if ((s->lst->relay & CONF_RELAY_NETWORKS) &&
	    (s->peer.ss_family == AF_INET || s->peer.ss_family == AF_INET6) &&
	    conf_networks_contain(s->conf, (const struct sockaddr *)&s->peer))
		return true;
	return false;
}

static void
smtpd_rcpt_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	bool routed = smtpd_rcpt_is_routed(&a->rcpt);

	if (routed || !smtpd_relay_is_allowed(s)) {
		log_info("smtpd", "relay_denied", "sess=%lu client=%s user=%s from=%s to=%s why=%s",
		    s->id, s->ip, log_q(s->auth_user != NULL ? s->auth_user : ""),
		    log_q(s->tx.env.from), log_q(a->rcpt.addr), routed ? "routed" : "policy");
		smtpd_reply_error(s, 554, "5.7.1", "Relay access denied");
		return;
	}
	spool_env_add_rcpt(&s->tx.env, a->rcpt.addr, a->rcpt.notify,
	    a->rcpt.orcpt[0] != '\0' ? a->rcpt.orcpt : NULL);
	smtpd_enter_state(s, SMTPD_STATE_RCPT);
	smtpd_reply(s, 250, "2.1.5", "Ok");
}

static void
smtpd_rset_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_tx_reset(s);
	if (s->state != SMTPD_STATE_GREETED)
		smtpd_enter_state(s, SMTPD_STATE_HELO);
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

static void
smtpd_noop_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

static void
smtpd_quit_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_reply(s, 221, "2.0.0", "Bye");
	smtpd_session_close(s);
}

static void
smtpd_vrfy_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	/* RFC 5321 3.5.3: 252 when we will not verify but would accept the mail. */
	smtpd_reply(s, 252, "2.5.0",
	    "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
smtpd_expn_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_reply(s, 502, "5.5.1", "EXPN not implemented");
}

static void
smtpd_help_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY "
	    "STARTTLS AUTH HELP; see RFC 5321");
}

static bool
smtpd_starttls_check(const struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a, struct smtpd_reply *r)
{
	if (s->lst->tls != CONF_TLS_STARTTLS || s->in_tls) {
		*r = (struct smtpd_reply){ 502, "5.5.1", "STARTTLS not available" };
		return false;
	}
	if (s->tls_ctx == NULL) {
		*r = (struct smtpd_reply){ 454, "4.7.0",
		    "TLS not available due to temporary reason" };
		return false;
	}
	if (cmd->arg != NULL) {
		*r = (struct smtpd_reply){ 501, "5.5.4", "Syntax: STARTTLS" };
		return false;
	}
	return true;
}

/* Start the server side of a TLS handshake on the current connection. */
static int
smtpd_session_start_tls(struct smtpd_session *s)
{
	struct bufferevent *under = s->bev;
	struct bufferevent *bev;
	struct evbuffer *in;
	SSL *ssl;

	ssl = SSL_new(s->tls_ctx);
	if (ssl == NULL)
		return -1;
	/*
	 * RFC 3207 5 and DESIGN.md 13: whatever the client sent after STARTTLS in the clear must
	 * not be run as if it had come over TLS (command injection). Drop it all.
	 */
	in = bufferevent_get_input(under);
	evbuffer_drain(in, evbuffer_get_length(in));
	conn_lines_reset(&s->lines);
	conn_set_timeout(under, 0);
	bufferevent_setwatermark(under, EV_READ, 0, 0);
	bev = bufferevent_openssl_filter_new(s->sd->base, under, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	s->bev = bev;
	smtpd_session_setup_bev(s);
	return 0;
}

static void
smtpd_starttls_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	smtpd_reply(s, 220, "2.0.0", "Ready to start TLS");
	smtpd_session_flush(s);
	if (smtpd_session_start_tls(s) == -1) {
		log_warn("smtpd", "tls_failed", "sess=%lu client=%s step=setup", s->id, s->ip);
		smtpd_reply(s, 421, "4.7.0", "TLS setup failed, closing connection");
		smtpd_session_close(s);
		return;
	}
	smtpd_enter_state(s, SMTPD_STATE_TLS);
}

#define SMTPD_AFTER_GREETING                                                                \
	(SMTPD_IN(SMTPD_STATE_GREETED) | SMTPD_IN(SMTPD_STATE_HELO) | SMTPD_IN(SMTPD_STATE_MAIL) | \
	    SMTPD_IN(SMTPD_STATE_RCPT) | SMTPD_IN(SMTPD_STATE_CHUNKING))

static const struct smtpd_cmd smtpd_cmds[SMTP_VERB_COUNT] = {
	[SMTP_VERB_EHLO] = { .verb = "EHLO", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP,
	    .check = smtpd_helo_check, .proceed = smtpd_ehlo_proceed },
	[SMTP_VERB_HELO] = { .verb = "HELO", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP,
	    .check = smtpd_helo_check, .proceed = smtpd_ehlo_proceed },
	[SMTP_VERB_MAIL] = { .verb = "MAIL", .states = SMTPD_IN(SMTPD_STATE_HELO),
	    .flags = SMTPD_CMD_NEEDS_AUTH,
	    .check = smtpd_mail_check, .proceed = smtpd_mail_proceed },
	[SMTP_VERB_RCPT] = { .verb = "RCPT",
	    .states = SMTPD_IN(SMTPD_STATE_MAIL) | SMTPD_IN(SMTPD_STATE_RCPT),
	    .flags = SMTPD_CMD_NEEDS_AUTH,
	    .check = smtpd_rcpt_check, .proceed = smtpd_rcpt_proceed },
	[SMTP_VERB_DATA] = { .verb = "DATA", .states = SMTPD_IN(SMTPD_STATE_RCPT),
	    .flags = SMTPD_CMD_NEEDS_AUTH | SMTPD_CMD_LAST_IN_GROUP,
	    .check = smtpd_data_check, .proceed = smtpd_data_proceed },
	/* RFC 3030 4.2: BDAT may be pipelined; BDAT LAST waits for the commit anyway. */
	[SMTP_VERB_BDAT] = { .verb = "BDAT",
	    .states = SMTPD_IN(SMTPD_STATE_RCPT) | SMTPD_IN(SMTPD_STATE_CHUNKING),
	    .flags = SMTPD_CMD_NEEDS_AUTH,
	    .check = smtpd_bdat_check, .proceed = smtpd_bdat_proceed },
	[SMTP_VERB_RSET] = { .verb = "RSET", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS, .proceed = smtpd_rset_proceed },
	[SMTP_VERB_NOOP] = { .verb = "NOOP", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP, .proceed = smtpd_noop_proceed },
	[SMTP_VERB_QUIT] = { .verb = "QUIT", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP, .proceed = smtpd_quit_proceed },
	[SMTP_VERB_VRFY] = { .verb = "VRFY", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_LAST_IN_GROUP, .proceed = smtpd_vrfy_proceed },
	[SMTP_VERB_EXPN] = { .verb = "EXPN", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_LAST_IN_GROUP, .proceed = smtpd_expn_proceed },
	[SMTP_VERB_HELP] = { .verb = "HELP", .states = SMTPD_AFTER_GREETING,
	    .flags = SMTPD_CMD_PRE_TLS, .proceed = smtpd_help_proceed },
	[SMTP_VERB_STARTTLS] = { .verb = "STARTTLS",
	    .states = SMTPD_IN(SMTPD_STATE_GREETED) | SMTPD_IN(SMTPD_STATE_HELO),
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP,
	    .check = smtpd_starttls_check, .proceed = smtpd_starttls_proceed },
	/* AUTH before TLS gets its own reply (538 5.7.11) from its check. */
	[SMTP_VERB_AUTH] = { .verb = "AUTH", .states = SMTPD_IN(SMTPD_STATE_HELO),
	    .flags = SMTPD_CMD_PRE_TLS | SMTPD_CMD_LAST_IN_GROUP,
	    .check = smtpd_auth_check, .proceed = smtpd_auth_proceed },
};

const struct smtpd_cmd *
smtpd_cmd_find(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT || smtpd_cmds[verb].verb == NULL)
		return NULL;
	return &smtpd_cmds[verb];
}

/* A refused BDAT still announces its octets: skip them so they are never read as commands. */
static void
smtpd_refuse(struct smtpd_session *s, const struct smtp_cmd *cmd, int code, const char *enh,
    const char *text)
{
	uint64_t size;

	if (cmd->verb == SMTP_VERB_BDAT && smtpd_bdat_size(cmd, &size))
		s->skip_octets = size;
	smtpd_reply_error(s, code, enh, text);
}

static const char *
smtpd_sequence_text(const struct smtpd_session *s, enum smtp_verb verb)
{
	if (s->state == SMTPD_STATE_GREETED)
		return "Send EHLO/HELO first";
	if (verb == SMTP_VERB_DATA && s->state == SMTPD_STATE_CHUNKING)
		return "DATA cannot follow BDAT";
	if ((verb == SMTP_VERB_RCPT || verb == SMTP_VERB_DATA || verb == SMTP_VERB_BDAT) &&
	    s->state == SMTPD_STATE_HELO)
		return "Need MAIL command";
	if ((verb == SMTP_VERB_DATA || verb == SMTP_VERB_BDAT) && s->state == SMTPD_STATE_MAIL)
		return "Need RCPT command";
	if (verb == SMTP_VERB_MAIL && s->tx.active)
		return "Nested MAIL command";
	return "Bad sequence of commands";
}

static void
smtpd_trace_command(const struct smtpd_session *s, const char *line, size_t len)
{
	const char *sp;

	/* Never log credentials: AUTH keeps only its mechanism. */
	if (len >= 5 && str_has_prefix_ci(line, len, "AUTH ")) {
		sp = memchr(line + 5, ' ', len - 5);
		if (sp != NULL) {
			log_trace(TRACE_SMTPD, "smtpd", "recv", "sess=%lu line=%s masked=yes",
			    s->id, log_qn(line, (size_t)(sp - line)));
			return;
		}
	}
	log_trace(TRACE_SMTPD, "smtpd", "recv", "sess=%lu line=%s", s->id, log_qn(line, len));
}

static void
smtpd_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	const struct smtpd_cmd *row;
	struct smtpd_reply r;
	union smtpd_args a;
	struct smtp_cmd cmd;
	const char *why = NULL;
	enum smtp_cmd_result rc;

	s->ncommands++;
	smtpd_trace_command(s, line, len);
	memset(&cmd, 0, sizeof(cmd));
	rc = smtp_cmd_parse(line, len, &cmd, &why);
	if (rc == SMTP_CMD_UNKNOWN) {
		smtpd_reply_error(s, 500, "5.5.2", "Command unrecognized");
		return;
	}
	if (rc != SMTP_CMD_OK) {
		if (str_has_prefix_ci(line, len, "BDAT")) {
			smtpd_reply_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
			smtpd_session_close(s);
			return;
		}
		smtpd_reply_error(s, 501, "5.5.4", why != NULL ? why : "Syntax error");
		return;
	}
	row = smtpd_cmd_find(cmd.verb);
	if (row == NULL) {
		smtpd_reply_error(s, 500, "5.5.2", "Command unrecognized");
		return;
	}
	if ((row->states & SMTPD_IN(s->state)) == 0) {
		smtpd_refuse(s, &cmd, 503, "5.5.1", smtpd_sequence_text(s, cmd.verb));
		goto out;
	}
	if (s->tls_required && !s->in_tls && (row->flags & SMTPD_CMD_PRE_TLS) == 0) {
		smtpd_refuse(s, &cmd, 530, "5.7.0", "Must issue a STARTTLS command first");
		goto out;
	}
	if ((row->flags & SMTPD_CMD_NEEDS_AUTH) && s->lst->auth == CONF_AUTH_REQUIRED &&
	    s->auth_user == NULL) {
		smtpd_refuse(s, &cmd, 530, "5.7.0", "Authentication required");
		goto out;
	}
	memset(&a, 0, sizeof(a));
	if (row->check != NULL && !row->check(s, &cmd, &a, &r)) {
		smtpd_refuse(s, &cmd, r.code, r.enh, r.text);
		goto out;
	}
	row->proceed(s, &cmd, &a);
out:
	if (row->flags & SMTPD_CMD_LAST_IN_GROUP)
		smtpd_session_flush(s);
}

/* ---- the connection ---- */

static uint64_t
smtpd_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
smtpd_greet(struct smtpd_session *s)
{
	s->greet_ns = smtpd_realtime_ns();
	smtpd_reply(s, 220, NULL, "%s ESMTP hikyaku", s->conf->hostname);
	smtpd_enter_state(s, SMTPD_STATE_GREETED);
	smtpd_session_flush(s);
}

static bool
smtpd_session_is_drained(struct smtpd_session *s)
{
	struct bufferevent *under;

	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return false;
	under = bufferevent_get_underlying(s->bev);
	return under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

static void
smtpd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	struct timeval tv = { 0, SMTPD_CLOSE_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (s->state == SMTPD_STATE_CONNECTED) {
		smtpd_greet_and_watch(s);
		return;
	}
	if (s->state != SMTPD_STATE_CLOSING)
		return;
	/* The close poll: free once our last reply left, or give up on a client that reads not. */
	if (smtpd_session_is_drained(s) ||
	    ++s->close_polls * SMTPD_CLOSE_POLL_MS >= SMTPD_CLOSE_MAX_MS) {
		smtpd_session_destroy(s);
		return;
	}
	evtimer_add(s->timer, &tv);
}

void
smtpd_session_close(struct smtpd_session *s)
{
	struct timeval tv = { 0, 0 };

	if (s->state == SMTPD_STATE_CLOSING)
		return;
	smtpd_session_flush(s);
	smtpd_enter_state(s, SMTPD_STATE_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	evtimer_del(s->timer);
	evtimer_add(s->timer, &tv);
}

static void
smtpd_early_talker(struct smtpd_session *s)
{
	log_info("smtpd", "early_talker", "sess=%lu client=%s", s->id, s->ip);
	smtpd_reply(s, 554, "5.5.0", "Protocol error: talking before the greeting");
	s->errors++;
	smtpd_session_close(s);
}

/*
 * True when the first byte waiting on fd was received before greet_ns. Peeks, so the data stays
 * for the bufferevent. No timestamp (option unsupported): false, never a false refusal.
 */
static bool
smtpd_arrived_before(evutil_socket_t fd, uint64_t greet_ns)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	char c;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = &c;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	if (recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT) <= 0)
		return false;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		struct timespec ts;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec < greet_ns;
	}
	return false;
}

static void
smtpd_early_drop(struct smtpd_session *s, evutil_socket_t fd)
{
	char junk[4096];
	int i;

	/* Discard what the client sent, so closing does not reset the connection before it has read
	 * our 554. */
	for (i = 0; i < 16 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	smtpd_early_talker(s);
}

static void
smtpd_pregreet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	bool early = (what & EV_READ) && smtpd_arrived_before(fd, s->greet_ns);
	int off = 0;

	/* One test per connection: stop timestamping, hand reading to the bufferevent. */
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &off, sizeof(off)) == -1)
		log_debug("smtpd", "rx_timestamps_off_failed", "sess=%lu errno=%d", s->id, errno);
	event_free(s->pregreet);
	s->pregreet = NULL;
	if (early) {
		smtpd_early_drop(s, fd);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
}

/*
 * End of the greeting pause (or none): a client whose bytes are already here talked first and
 * gets 554 as its first reply; otherwise greet now and test the first bytes' receive time.
 */
static uint64_t
smtpd_greet_pause_ms(const struct smtpd_session *s)
{
	return s->conf->limits.greet_pause_ms ? s->conf->limits.greet_pause_ms :
	    s->sd->greet_delay_ms;
}

static void
smtpd_greet_and_watch(struct smtpd_session *s)
{
	evutil_socket_t fd = bufferevent_getfd(s->bev);
	struct timeval tv;
	char c;

	if (smtpd_greet_pause_ms(s) > 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
		smtpd_early_drop(s, fd);
		return;
	}
	tv.tv_sec = (time_t)(s->conf->limits.command_timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((s->conf->limits.command_timeout_ms % 1000) * 1000);
	s->pregreet = event_new(s->sd->base, fd, EV_READ, smtpd_pregreet_cb, s);
	HK_ASSERT(s->pregreet != NULL);
	event_add(s->pregreet, &tv);
	smtpd_greet(s);
}

static void
smtpd_session_process(struct smtpd_session *s)
{
	struct evbuffer *in;
	enum conn_line_result r;
	uint64_t n;

	if (s->processing)
		return;
	s->processing = true;
	for (;;) {
		/* The bufferevent changes at STARTTLS: fetch the input buffer each time. */
		in = bufferevent_get_input(s->bev);
		switch (s->state) {
		case SMTPD_STATE_CLOSING:
		case SMTPD_STATE_COMMIT:
		case SMTPD_STATE_AUTH_CHECK:
		case SMTPD_STATE_TLS:
			goto out;
		case SMTPD_STATE_CONNECTED:
			if (evbuffer_get_length(in) > 0)
				smtpd_early_talker(s);
			goto out;
		case SMTPD_STATE_DATA:
		case SMTPD_STATE_BDAT:
			if (!smtpd_data_feed(s, in))
				goto out;
			continue;
		default:
			break;
		}
		if (s->skip_octets > 0) {
			n = evbuffer_get_length(in);
			if (n > s->skip_octets)
				n = s->skip_octets;
			evbuffer_drain(in, (size_t)n);
			s->skip_octets -= n;
			if (s->skip_octets > 0)
				goto out;
			continue;
		}
		r = conn_line_read(&s->lines, in, &s->line);
		switch (r) {
		case CONN_LINE_MORE:
			goto out;
		case CONN_LINE_TOO_LONG:
			if (s->state == SMTPD_STATE_AUTH)
				smtpd_enter_state(s, SMTPD_STATE_HELO);
			smtpd_reply_error(s, 500, "5.5.2", "Line too long");
			break;
		case CONN_LINE_BARE_LF:
			if (s->state == SMTPD_STATE_AUTH)
				smtpd_enter_state(s, SMTPD_STATE_HELO);
			smtpd_reply_error(s, 500, "5.5.2", "Line must end with CRLF");
			break;
		case CONN_LINE_OK:
			if (s->state == SMTPD_STATE_AUTH)
				smtpd_auth_line(s, s->line.ptr, s->line.len);
			else
				smtpd_dispatch(s, s->line.ptr, s->line.len);
			break;
		}
	}
out:
	s->processing = false;
	/* RFC 2920: the input ran dry (or we wait for our own work): send what is pending. */
	smtpd_session_flush(s);
}

void
smtpd_session_resume(struct smtpd_session *s)
{
	smtpd_session_flush(s);
	if (s->state == SMTPD_STATE_CLOSING)
		return;
	if (s->sd->shutting && s->state != SMTPD_STATE_COMMIT &&
	    s->state != SMTPD_STATE_AUTH_CHECK) {
		smtpd_session_shutdown(s);
		return;
	}
	smtpd_session_process(s);
}

void
smtpd_session_shutdown(struct smtpd_session *s)
{
	switch (s->state) {
	case SMTPD_STATE_CLOSING:
	case SMTPD_STATE_COMMIT:
	case SMTPD_STATE_AUTH_CHECK:
		/* Finish the work in flight first; resume() comes back here. */
		return;
	default:
		break;
	}
	smtpd_reply(s, 421, "4.3.2", "Service shutting down, closing connection");
	smtpd_session_close(s);
}

static void
smtpd_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	smtpd_session_process(arg);
}

static void
smtpd_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;

	(void)bev;
	if (s->state == SMTPD_STATE_CLOSING && smtpd_session_is_drained(s))
		smtpd_session_destroy(s);
}

static void
smtpd_tls_established(struct smtpd_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	bool implicit = !s->in_tls && s->lst->tls == CONF_TLS_IMPLICIT && s->helo[0] == '\0' &&
	    s->ncommands == 0;

	s->in_tls = true;
	tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
	log_debug("smtpd", "tls_started", "sess=%lu client=%s tls=%s", s->id, s->ip, s->tls_desc);
	/* RFC 3207 4.2: forget everything learnt before TLS; the client starts with EHLO. */
	smtpd_tx_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	free(s->auth_user);
	s->auth_user = NULL;
	if (implicit) {
		smtpd_greet(s);
	} else {
		smtpd_enter_state(s, SMTPD_STATE_GREETED);
	}
	smtpd_session_process(s);
}

static void
smtpd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *s = arg;
	const char *reason;
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTPD_STATE_TLS)
			smtpd_tls_established(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SMTPD_STATE_CLOSING) {
			smtpd_session_destroy(s);
			return;
		}
		log_info("smtpd", "timeout", "sess=%lu client=%s state=%s", s->id, s->ip,
		    smtpd_state_name(s->state));
		if (what & BEV_EVENT_WRITING) {
			smtpd_session_destroy(s);
			return;
		}
		smtpd_reply(s, 421, "4.4.2", "Timeout, closing connection");
		smtpd_session_close(s);
		return;
	}
	if (s->state == SMTPD_STATE_TLS && (what & BEV_EVENT_ERROR)) {
		e = bufferevent_get_openssl_error(bev);
		reason = e != 0 ? ERR_reason_error_string(e) : NULL;
		if (reason == NULL && EVUTIL_SOCKET_ERROR() != 0)
			reason = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
		if (reason == NULL)
			reason = "handshake failed";
		log_info("smtpd", "tls_failed", "sess=%lu client=%s reason=%s", s->id, s->ip,
		    log_q(reason));
	} else if ((what & BEV_EVENT_ERROR) && s->state != SMTPD_STATE_CLOSING &&
	    EVUTIL_SOCKET_ERROR() != 0) {
		log_debug("smtpd", "conn_error", "sess=%lu client=%s err=%s", s->id, s->ip,
		    log_q(evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
	}
	smtpd_session_destroy(s);
}

static void
smtpd_session_setup_bev(struct smtpd_session *s)
{
	size_t high = SMTPD_READ_HIGH_WATER;

	/* Room for at least two maximal lines, so the line reader can always make progress. */
	if (high < 2 * ((size_t)s->conf->limits.max_line + 2))
		high = 2 * ((size_t)s->conf->limits.max_line + 2);
	bufferevent_setcb(s->bev, smtpd_read_cb, smtpd_write_cb, smtpd_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, high);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	conn_set_timeout(s->bev, s->conf->limits.command_timeout_ms);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

struct smtpd_session *
smtpd_session_new(struct smtpd *sd, evutil_socket_t fd, const struct sockaddr *sa, int salen,
    size_t listener_index)
{
	struct smtpd_session *s;
	struct timeval tv;
	SSL *ssl;

	s = xcalloc(1, sizeof(*s));
	s->sd = sd;
	s->id = ++sd->next_id;
	s->conf = conf_ref(sd->conf);
	if (listener_index == SMTPD_LOCAL) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		s->local = true;
		s->lst = &sd->local_lst;
		/* No credentials is impossible on a Unix stream socket; nobody's uid if it happens. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
			s->local_uid = (unsigned)cred.uid;
		else
			s->local_uid = 65534;
	} else {
		s->lst = &s->conf->listeners[listener_index];
	}
	if (sd->tls_ctx != NULL && s->lst->tls != CONF_TLS_NONE) {
		SSL_CTX_up_ref(sd->tls_ctx);
		s->tls_ctx = sd->tls_ctx;
	}
	if (salen > 0 && (size_t)salen <= sizeof(s->peer))
		memcpy(&s->peer, sa, (size_t)salen);
	smtpd_sockaddr_text(sa, s->ip, sizeof(s->ip));
	s->tls_required = s->lst->tls == CONF_TLS_STARTTLS && s->lst->auth == CONF_AUTH_REQUIRED &&
	    !s->lst->allow_insecure_auth;
	conn_lines_init(&s->lines, s->conf->limits.max_line);
	buf_init(&s->line);
	buf_init(&s->out);
	buf_init(&s->auth_user_buf);
	s->state = SMTPD_STATE_CONNECTED;
	s->timer = evtimer_new(sd->base, smtpd_timer_cb, s);
	HK_ASSERT(s->timer != NULL);
	if (s->lst->tls == CONF_TLS_IMPLICIT) {
		ssl = s->tls_ctx != NULL ? SSL_new(s->tls_ctx) : NULL;
		s->bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(sd->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (s->bev == NULL && ssl != NULL)
			SSL_free(ssl);
		s->state = SMTPD_STATE_TLS;
	} else {
		s->bev = bufferevent_socket_new(sd->base, fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	}
	if (s->bev == NULL) {
		log_error("smtpd", "session_failed", "sess=%lu client=%s why=%s", s->id, s->ip,
		    s->lst->tls == CONF_TLS_IMPLICIT ? "tls setup" : "bufferevent");
		evutil_closesocket(fd);
		event_free(s->timer);
		SSL_CTX_free(s->tls_ctx);
		conf_unref(s->conf);
		buf_fini(&s->line);
		buf_fini(&s->out);
		buf_fini(&s->auth_user_buf);
		free(s);
		return NULL;
	}
	if (s->lst->tls == CONF_TLS_IMPLICIT)
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	smtpd_session_setup_bev(s);
	if (s->local)
		log_info("smtpd", "connect", "sess=%lu client=%s listener=sendmail uid=%u", s->id,
		    s->ip, s->local_uid);
	else
		log_info("smtpd", "connect", "sess=%lu client=%s listener=%s", s->id, s->ip,
		    log_q(s->lst->name != NULL ? s->lst->name : s->lst->addr.text));
	if (s->state == SMTPD_STATE_CONNECTED) {
		/* Nothing is read before the greeting: early bytes stay in the kernel for the test. */
		bufferevent_disable(s->bev, EV_READ);
		uint64_t pause = smtpd_greet_pause_ms(s);

		if (pause == 0) {
			smtpd_greet_and_watch(s);
		} else {
			tv.tv_sec = (time_t)(pause / 1000);
			tv.tv_usec = (suseconds_t)((pause % 1000) * 1000);
			evtimer_add(s->timer, &tv);
		}
	}
	return s;
}

void
smtpd_session_destroy(struct smtpd_session *s)
{
	log_info("smtpd", "disconnect", "sess=%lu client=%s commands=%u messages=%u errors=%u",
	    s->id, s->ip, s->ncommands, s->nmessages, s->errors);
	if (s->commit != NULL)
		smtpd_commit_detach(s->commit);
	if (s->auth_job != NULL)
		smtpd_auth_job_detach(s->auth_job);
	smtpd_tx_reset(s);
	if (s->pregreet != NULL)
		event_free(s->pregreet);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	event_free(s->timer);
	buf_fini(&s->line);
	buf_fini(&s->out);
	buf_fini(&s->auth_user_buf);
	free(s->auth_user);
	SSL_CTX_free(s->tls_ctx);
	conf_unref(s->conf);
	smtpd_session_gone(s->sd, s);
	free(s);
}
