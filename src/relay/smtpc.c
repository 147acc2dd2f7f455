/*
 * smtpc.c - the SMTP client session (DESIGN.md 7 "Client"): connect, greeting, EHLO/HELO,
 * STARTTLS or implicit TLS, AUTH, then transactions with PIPELINING (separate send and receive
 * cursors) or in lockstep.
 *
 * Every libevent callback holds the session (busy) while it runs; smtpc_free() inside a user
 * callback only marks it doomed, and the outermost callback frees it on the way out. After every
 * user callback the code checks smtpc_gone() and stops touching the session.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../util/base64.h"
#include "../util/buf.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "smtpc.h"
#include "smtpc_body.h"
#include "../util/poison.h"

#define SMTPC_CONNECT_TIMEOUT_MS 10000u
#define SMTPC_COMMAND_TIMEOUT_MS 60000u
#define SMTPC_DOT_TIMEOUT_MS 600000u
/* Longest reply line taken (RFC 5321 4.5.3.1.5 says 512; some servers send more). */
#define SMTPC_LINE_MAX 4096u
/* Body streaming: keep at most this much queued per bufferevent, refill below the low mark. */
#define SMTPC_BODY_HIGH (256u * 1024u)
#define SMTPC_BODY_LOW (64u * 1024u)
#define SMTPC_BODY_CHUNK (64u * 1024u)

enum smtpc_state {
	SMTPC_ST_CONNECTING = 0,
	SMTPC_ST_TLS,        /* handshake (implicit or after STARTTLS) */
	SMTPC_ST_GREETING,
	SMTPC_ST_EHLO,
	SMTPC_ST_HELO,
	SMTPC_ST_STARTTLS,
	SMTPC_ST_AUTH_PLAIN,
	SMTPC_ST_AUTH_LOGIN, /* "AUTH LOGIN" sent */
	SMTPC_ST_AUTH_USER,  /* user name sent */
	SMTPC_ST_AUTH_PASS,  /* password sent */
	SMTPC_ST_IDLE,
	SMTPC_ST_TX,         /* MAIL, RCPTs, DATA: replies counted by the receive cursor */
	SMTPC_ST_BODY,       /* streaming the body */
	SMTPC_ST_DOT,        /* final dot sent, waiting for the reply */
	SMTPC_ST_DOT_ABORT,  /* lone dot after a 354 that came with no recipient accepted */
	SMTPC_ST_RSET,
	SMTPC_ST_LOCAL,      /* a local refusal waits for the deferred event */
	SMTPC_ST_DEAD,
};

static const char *const smtpc_state_names[] = {
	[SMTPC_ST_CONNECTING] = "connecting", [SMTPC_ST_TLS] = "tls",
	[SMTPC_ST_GREETING] = "greeting", [SMTPC_ST_EHLO] = "ehlo", [SMTPC_ST_HELO] = "helo",
	[SMTPC_ST_STARTTLS] = "starttls", [SMTPC_ST_AUTH_PLAIN] = "auth_plain",
	[SMTPC_ST_AUTH_LOGIN] = "auth_login", [SMTPC_ST_AUTH_USER] = "auth_user",
	[SMTPC_ST_AUTH_PASS] = "auth_pass", [SMTPC_ST_IDLE] = "idle", [SMTPC_ST_TX] = "tx",
	[SMTPC_ST_BODY] = "body", [SMTPC_ST_DOT] = "dot", [SMTPC_ST_DOT_ABORT] = "dot_abort",
	[SMTPC_ST_RSET] = "rset", [SMTPC_ST_LOCAL] = "local", [SMTPC_ST_DEAD] = "dead",
};

/* One transaction: copies of the caller's envelope and the results so far. */
struct smtpc_txd {
	char *mail_from, *ret, *envid;
	uint64_t size;
	bool eightbit, smtputf8;
	size_t n;
	char **rcpts, **notify, **orcpt;
	const struct buf *body;
	smtpc_tx_fn cb;
	struct smtpc_rcpt_result *res;
	size_t sent;   /* send cursor over MAIL, RCPT 0..n-1, DATA */
	size_t recvd;  /* receive cursor over the same sequence */
	size_t n_accepted;
	bool pipelined, mail_ok;
	struct smtpc_failure final;
	struct smtpc_body bs;
};

struct smtpc {
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *host, *helo, *username, *password;
	enum smtpc_tls_mode tls;
	bool verify;
	SSL_CTX *ssl_ctx; /* referenced or created here; freed with the session */
	struct dns_tlsa_record *tlsa; /* DANE records (RFC 7672), n_tlsa of them */
	size_t n_tlsa;
	bool dane;        /* this handshake is authenticated by TLSA records */
	uint64_t connect_ms, command_ms, dot_ms;
	unsigned long sess;
	smtpc_ready_fn ready_cb;
	smtpc_fail_fn fail_cb;
	void *arg;

	enum smtpc_state state;
	struct bufferevent *raw; /* the socket */
	struct bufferevent *bev; /* where we read and write: raw, or the TLS filter over it */
	SSL *ssl;                /* owned by bev */
	bool tls_on, greeted;
	struct event *timer, *later;
	struct smtp_reply reply;
	struct smtpc_caps caps;
	struct smtpc_failure pending; /* failure waiting for the deferred event */
	bool have_pending;
	struct smtpc_txd *tx;
	unsigned busy;
	bool doomed, failed;
	char tls_desc[128];
	char peer[INET6_ADDRSTRLEN];
	struct buf out;
};

static void smtpc_read(struct smtpc *c);
static void smtpc_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_write_cb(struct bufferevent *bev, void *arg);
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);

static void
smtpc_setcb(struct smtpc *c)
{
	bufferevent_setcb(c->bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTPC_BODY_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

const char *
smtpc_stage_name(enum smtpc_stage s)
{
	static const char *const names[SMTPC_STAGE_COUNT] = {
		[SMTPC_STAGE_CONNECT] = "connect", [SMTPC_STAGE_GREETING] = "greeting",
		[SMTPC_STAGE_EHLO] = "ehlo", [SMTPC_STAGE_STARTTLS] = "starttls",
		[SMTPC_STAGE_TLS] = "tls", [SMTPC_STAGE_AUTH] = "auth", [SMTPC_STAGE_MAIL] = "mail",
		[SMTPC_STAGE_RCPT] = "rcpt", [SMTPC_STAGE_DATA] = "data", [SMTPC_STAGE_DOT] = "dot",
		[SMTPC_STAGE_RSET] = "rset",
	};

	return (unsigned)s < SMTPC_STAGE_COUNT && names[s] ? names[s] : "unknown";
}

const char *
smtpc_local_name(enum smtpc_local l)
{
	static const char *const names[] = {
		[SMTPC_LOCAL_NONE] = "none", [SMTPC_LOCAL_REFUSED] = "refused",
		[SMTPC_LOCAL_TIMEOUT] = "timeout", [SMTPC_LOCAL_DISCONNECT] = "disconnect",
		[SMTPC_LOCAL_TLS_FAILED] = "tls_failed",
		[SMTPC_LOCAL_CERT_INVALID] = "cert_invalid",
		[SMTPC_LOCAL_STARTTLS_MISSING] = "starttls_missing",
		[SMTPC_LOCAL_BAD_REPLY] = "bad_reply",
		[SMTPC_LOCAL_AUTH_UNSUPPORTED] = "auth_unsupported",
		[SMTPC_LOCAL_TOO_BIG] = "too_big",
		[SMTPC_LOCAL_NEEDS_SMTPUTF8] = "needs_smtputf8",
		[SMTPC_LOCAL_NEEDS_8BITMIME] = "needs_8bitmime",
		[SMTPC_LOCAL_BAD_ENVELOPE] = "bad_envelope",
	};

	return (unsigned)l < HK_ARRAY_LEN(names) && names[l] ? names[l] : "unknown";
}

/* ---- small helpers ---- */

static bool
smtpc_gone(const struct smtpc *c)
{
	return c->doomed || c->state == SMTPC_ST_DEAD;
}

static void
smtpc_arm(struct smtpc *c, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

static void
smtpc_disarm(struct smtpc *c)
{
	evtimer_del(c->timer);
}

static bool
smtpc_is_ip(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* Envelope values go on a command line: no control bytes (CR/LF injection) anywhere. */
static bool
smtpc_is_clean(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

/* An ESMTP parameter value (xtext, NOTIFY list, RET): printable ASCII without spaces. */
static bool
smtpc_is_param(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 0x20 || ch >= 0x7f || ch == '=')
			return false;
	}
	return true;
}

static enum smtpc_stage
smtpc_stage(const struct smtpc *c)
{
	switch (c->state) {
	case SMTPC_ST_CONNECTING: return SMTPC_STAGE_CONNECT;
	case SMTPC_ST_TLS: return SMTPC_STAGE_TLS;
	case SMTPC_ST_GREETING: return SMTPC_STAGE_GREETING;
	case SMTPC_ST_EHLO:
	case SMTPC_ST_HELO: return SMTPC_STAGE_EHLO;
	case SMTPC_ST_STARTTLS: return SMTPC_STAGE_STARTTLS;
	case SMTPC_ST_AUTH_PLAIN:
	case SMTPC_ST_AUTH_LOGIN:
	case SMTPC_ST_AUTH_USER:
	case SMTPC_ST_AUTH_PASS: return SMTPC_STAGE_AUTH;
	case SMTPC_ST_TX:
		if (c->tx == NULL || c->tx->recvd == 0)
			return SMTPC_STAGE_MAIL;
		return c->tx->recvd <= c->tx->n ? SMTPC_STAGE_RCPT : SMTPC_STAGE_DATA;
	case SMTPC_ST_BODY: return SMTPC_STAGE_DATA;
	case SMTPC_ST_DOT:
	case SMTPC_ST_DOT_ABORT: return SMTPC_STAGE_DOT;
	case SMTPC_ST_RSET: return SMTPC_STAGE_RSET;
	case SMTPC_ST_IDLE:
	case SMTPC_ST_LOCAL:
	case SMTPC_ST_DEAD: break;
	}
	return SMTPC_STAGE_MAIL;
}

static void
smtpc_set_state(struct smtpc *c, enum smtpc_state st)
{
	if (c->state != st)
		log_debug("smtpc", "state", "sess=c%lu from=%s to=%s", c->sess,
		    smtpc_state_names[c->state], smtpc_state_names[st]);
	c->state = st;
}

HK_PRINTF(4, 5) static void
smtpc_failure_local(struct smtpc_failure *f, enum smtpc_stage stage, enum smtpc_local local,
    const char *fmt, ...)
{
	va_list ap;

	memset(f, 0, sizeof(*f));
	f->stage = stage;
	f->local = local;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

/* The reply's code, enhanced code and text (lines joined by spaces, cut to fit). */
static void
smtpc_failure_reply(struct smtpc_failure *f, enum smtpc_stage stage, const struct smtp_reply *r)
{
	size_t i, n = r->text_len < sizeof(f->text) - 1 ? r->text_len : sizeof(f->text) - 1;

	memset(f, 0, sizeof(*f));
	f->stage = stage;
	f->local = SMTPC_LOCAL_NONE;
	f->code = r->code;
	f->enh_class = r->enh_class;
	f->enh_subject = r->enh_subject;
	f->enh_detail = r->enh_detail;
	for (i = 0; i < n; i++)
		f->text[i] = r->text[i] == '\n' ? ' ' : r->text[i];
	f->text[n] = '\0';
}

/* ---- output ---- */

/* Queue one command line in c->out; shown (NULL: the line) is what the transcript says. */
HK_PRINTF(3, 4) static void
smtpc_add(struct smtpc *c, const char *shown, const char *fmt, ...)
{
	size_t start = c->out.len;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	log_trace(TRACE_SMTPC, "smtpc", "send", "sess=c%lu line=%s", c->sess,
	    shown ? log_q(shown) : log_qn(c->out.ptr + start, c->out.len - start));
	buf_append(&c->out, "\r\n", 2);
}

/* Write the queued lines and expect a reply within the command timeout. */
static void
smtpc_flush(struct smtpc *c)
{
	if (c->out.len) {
		bufferevent_write(c->bev, c->out.ptr, c->out.len);
		/* The lines may hold AUTH secrets: leave no copy behind. */
		OPENSSL_cleanse(c->out.ptr, c->out.len);
		buf_reset(&c->out);
	}
	smtpc_arm(c, c->command_ms);
}

/* ---- ending: transaction results and session failures ---- */

static void
smtpc_txd_free(struct smtpc_txd *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->rcpts[i]);
		free(t->notify[i]);
		free(t->orcpt[i]);
	}
	free(t->rcpts);
	free(t->notify);
	free(t->orcpt);
	free(t->res);
	free(t->mail_from);
	free(t->ret);
	free(t->envid);
	free(t);
}

/* Close the connection now (no more events); the session struct stays until smtpc_free(). */
static void
smtpc_kill_io(struct smtpc *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->raw = NULL;
		c->ssl = NULL;
	}
	smtpc_disarm(c);
	event_del(c->later);
}

static void
smtpc_fail_with(struct smtpc *c, const struct smtpc_failure *f)
{
	if (c->failed || c->doomed)
		return;
	c->failed = true;
	smtpc_kill_io(c);
	smtpc_set_state(c, SMTPC_ST_DEAD);
	smtpc_txd_free(c->tx);
	c->tx = NULL;
	log_debug("smtpc", "session_failed", "sess=c%lu host=%s peer=%s stage=%s local=%s code=%d "
	    "why=%s", c->sess, log_q(c->host), c->peer, smtpc_stage_name(f->stage),
	    smtpc_local_name(f->local), f->code, log_q(f->text));
	if (c->fail_cb)
		c->fail_cb(c->arg, f);
}

HK_PRINTF(4, 5) static void
smtpc_fail_local(struct smtpc *c, enum smtpc_stage stage, enum smtpc_local local,
    const char *fmt, ...)
{
	struct smtpc_failure f;
	va_list ap;

	memset(&f, 0, sizeof(f));
	f.stage = stage;
	f.local = local;
	va_start(ap, fmt);
	vsnprintf(f.text, sizeof(f.text), fmt, ap);
	va_end(ap);
	smtpc_fail_with(c, &f);
}

static void
smtpc_fail_reply(struct smtpc *c, enum smtpc_stage stage)
{
	struct smtpc_failure f;

	smtpc_failure_reply(&f, stage, &c->reply);
	smtpc_fail_with(c, &f);
}

/* Report the transaction; the session is idle again unless it is already dead. */
static void
smtpc_tx_end(struct smtpc *c, bool ok, bool maybe_delivered)
{
	struct smtpc_txd *t = c->tx;

	c->tx = NULL;
	if (c->state != SMTPC_ST_DEAD) {
		smtpc_disarm(c);
		smtpc_set_state(c, SMTPC_ST_IDLE);
	}
	log_debug("smtpc", "tx_done", "sess=c%lu ok=%d accepted=%zu of=%zu stage=%s local=%s "
	    "code=%d maybe_delivered=%d", c->sess, ok, t->n_accepted, t->n,
	    smtpc_stage_name(t->final.stage), smtpc_local_name(t->final.local), t->final.code,
	    maybe_delivered);
	if (t->cb && !c->doomed)
		t->cb(c->arg, ok, &t->final, t->res, maybe_delivered);
	smtpc_txd_free(t);
}

/*
 * The connection is lost (timeout, disconnect, garbage). After the final dot the message may
 * have been delivered: tx_cb says so first; in the closing RSET the transaction's outcome is
 * known already. Then the session fails.
 */
/*
 * After the final dot was queued and the connection went away: could the server have received
 * the dot? Not when some of it still sits in our buffers or in the kernel's send queue unacked
 * (SIOCOUTQ), nor when the peer reset the connection (it closed with our data unread). Then the
 * message certainly was not taken, and the failure is one before the dot (next upstream),
 * rather than "may have been delivered".
 */
static bool
smtpc_dot_may_have_arrived(struct smtpc *c, bool reset)
{
	int fd, unsent = 0;

	if (reset)
		return false;
	if (c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return false;
	if (c->raw && c->raw != c->bev && evbuffer_get_length(bufferevent_get_output(c->raw)) > 0)
		return false;
	fd = c->raw ? bufferevent_getfd(c->raw) : (c->bev ? bufferevent_getfd(c->bev) : -1);
	if (fd >= 0 && ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
		return false;
	return true;
}

static void
smtpc_lost_ex(struct smtpc *c, enum smtpc_local local, const char *text, bool reset)
{
	struct smtpc_failure f;
	enum smtpc_state st = c->state;

	smtpc_failure_local(&f, smtpc_stage(c), local, "%s", text);
	if (c->tx && st == SMTPC_ST_DOT && local == SMTPC_LOCAL_DISCONNECT &&
	    !smtpc_dot_may_have_arrived(c, reset)) {
		f.stage = SMTPC_STAGE_DATA;
		smtpc_fail_with(c, &f);
		return;
	}
	if (c->tx && (st == SMTPC_ST_DOT || st == SMTPC_ST_DOT_ABORT || st == SMTPC_ST_RSET)) {
		bool maybe = st == SMTPC_ST_DOT;

		if (maybe)
			c->tx->final = f;
		smtpc_kill_io(c);
		smtpc_set_state(c, SMTPC_ST_DEAD);
		smtpc_tx_end(c, false, maybe);
		if (c->doomed)
			return;
	}
	smtpc_fail_with(c, &f);
}

static void
smtpc_lost(struct smtpc *c, enum smtpc_local local, const char *text)
{
	smtpc_lost_ex(c, local, text, false);
}

/* ---- TLS ---- */

SSL_CTX *
smtpc_ssl_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	unsigned long e;

	if (ctx == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto fail;
	}
	return ctx;
fail:
	e = ERR_get_error();
	if (err && errlen) {
		char why[256] = "unknown error";

		if (e)
			ERR_error_string_n(e, why, sizeof(why));
		if (ca_file && ca_file[0])
			snprintf(err, errlen, "ca_file %s: %s", ca_file, why);
		else
			snprintf(err, errlen, "client TLS context: %s", why);
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static bool
smtpc_verifies(const struct smtpc *c)
{
	return c->verify && c->tls != SMTPC_TLS_OPPORTUNISTIC;
}

/*
 * DANE for this handshake (RFC 7672): the TLSA records become the only trust anchors; DANE-EE(3)
 * matches the server's own key or certificate without name checks (3.1.1), DANE-TA(2) a CA in
 * the chain, with the MX host name as reference identifier (3.2.2). When no record is usable the
 * session stays encrypted but unauthenticated (2.2). -1: failed and reported.
 */
static int
smtpc_dane_setup(struct smtpc *c, SSL *ssl)
{
	size_t i, usable = 0;

	if (SSL_CTX_dane_enable(c->ssl_ctx) <= 0 || SSL_dane_enable(ssl, c->host) <= 0) {
		ERR_clear_error();
		smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_TLS_FAILED,
		    "cannot enable DANE verification");
		return -1;
	}
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (i = 0; i < c->n_tlsa; i++) {
		const struct dns_tlsa_record *t = &c->tlsa[i];

		if (t->usage != 2 && t->usage != 3)
			continue; /* PKIX-TA(0), PKIX-EE(1): not for SMTP (3.1.3) */
		if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len) > 0)
			usable++;
	}
	ERR_clear_error();
	c->dane = usable > 0;
	c->verify = c->dane;
	SSL_set_verify(ssl, c->dane ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (!c->dane)
		log_info("smtpc", "dane_unusable", "sess=c%lu host=%s action=%s", c->sess,
		    log_q(c->host), log_q("TLS required, certificate not checked (RFC 7672 2.2)"));
	return 0;
}

/* Wrap the socket in a TLS client filter and start the handshake. */
static void
smtpc_tls_start(struct smtpc *c)
{
	struct bufferevent *bev;
	struct evbuffer *in;
	SSL *ssl;

	if (smtpc_verifies(c) && c->host[0] == '\0') {
		smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_CERT_INVALID,
		    "no host name to verify the certificate against");
		return;
	}
	if (c->ssl_ctx == NULL) {
		char err[256];

		/* No context from the caller: verification needs the trust store, else bare. */
		if (smtpc_verifies(c)) {
			c->ssl_ctx = smtpc_ssl_ctx_new(NULL, err, sizeof(err));
		} else {
			snprintf(err, sizeof(err), "cannot create a TLS context");
			c->ssl_ctx = SSL_CTX_new(TLS_client_method());
			if (c->ssl_ctx)
				SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
			ERR_clear_error();
		}
		if (c->ssl_ctx == NULL) {
			smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_TLS_FAILED, "%s", err);
			return;
		}
	}
	ssl = SSL_new(c->ssl_ctx);
	if (ssl == NULL) {
		ERR_clear_error();
		smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_TLS_FAILED, "SSL_new failed");
		return;
	}
	/* RFC 6066 3: SNI carries host names only, never address literals. */
	if (!smtpc_is_ip(c->host) && c->host[0])
		SSL_set_tlsext_host_name(ssl, c->host);
	if (c->n_tlsa > 0) {
		if (smtpc_dane_setup(c, ssl) == -1) {
			SSL_free(ssl);
			return;
		}
	} else if (smtpc_verifies(c)) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (smtpc_is_ip(c->host))
			X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
		else
			X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	/* RFC 3207 / DESIGN.md 13: nothing the server sent in clear survives into TLS. */
	in = bufferevent_get_input(c->raw);
	evbuffer_drain(in, evbuffer_get_length(in));
	bev = bufferevent_openssl_filter_new(c->base, c->raw, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		ERR_clear_error();
		smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_TLS_FAILED,
		    "cannot create TLS filter");
		return;
	}
	c->bev = bev;
	c->ssl = ssl;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	smtpc_set_state(c, SMTPC_ST_TLS);
	smtpc_setcb(c);
	smtpc_arm(c, c->command_ms);
}

static void
smtpc_ehlo(struct smtpc *c)
{
	memset(&c->caps, 0, sizeof(c->caps));
	smtpc_add(c, NULL, "EHLO %s", c->helo);
	smtpc_flush(c);
	smtpc_set_state(c, SMTPC_ST_EHLO);
}

static void
smtpc_tls_done(struct smtpc *c)
{
	if (smtpc_verifies(c)) {
		long v = SSL_get_verify_result(c->ssl);

		if (v != X509_V_OK || SSL_get0_peer_certificate(c->ssl) == NULL) {
			smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_CERT_INVALID,
			    "%scertificate of %s: %s", c->dane ? "DANE: TLSA records do not match the " : "",
			    c->host, v != X509_V_OK ? X509_verify_cert_error_string(v) : "none sent");
			return;
		}
	}
	c->tls_on = true;
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s:%s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	log_debug("smtpc", "tls_up", "sess=c%lu host=%s tls=%s verified=%d dane=%d", c->sess,
	    log_q(c->host), c->tls_desc, smtpc_verifies(c), c->dane);
	if (!c->greeted) {
		smtpc_set_state(c, SMTPC_ST_GREETING);
		smtpc_arm(c, c->command_ms);
		return;
	}
	/* RFC 3207 4.2: forget what was learnt in clear and ask again. */
	smtpc_ehlo(c);
}

static void
smtpc_tls_failed(struct smtpc *c)
{
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	unsigned long e = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
	char why[256] = "connection closed during the handshake";

	if (smtpc_verifies(c) && v != X509_V_OK) {
		ERR_clear_error();
		smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_CERT_INVALID,
		    "%scertificate of %s: %s", c->dane ? "DANE: TLSA records do not match the " : "",
		    c->host, X509_verify_cert_error_string(v));
		return;
	}
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	smtpc_fail_local(c, SMTPC_STAGE_TLS, SMTPC_LOCAL_TLS_FAILED, "TLS handshake: %s", why);
}

/* ---- greeting, EHLO, AUTH ---- */

/* One EHLO keyword line: "SIZE 10240000", "AUTH PLAIN LOGIN", "AUTH=LOGIN". */
static void
smtpc_ehlo_line(struct smtpc *c, const char *p, size_t len)
{
	struct smtpc_caps *k = &c->caps;
	size_t kw = 0, i;

	while (kw < len && p[kw] != ' ' && p[kw] != '=')
		kw++;
	if (str_eq_ci(p, kw, "PIPELINING")) {
		k->pipelining = true;
	} else if (str_eq_ci(p, kw, "CHUNKING")) {
		k->chunking = true;
	} else if (str_eq_ci(p, kw, "SMTPUTF8")) {
		k->smtputf8 = true;
	} else if (str_eq_ci(p, kw, "8BITMIME")) {
		k->eightbitmime = true;
	} else if (str_eq_ci(p, kw, "DSN")) {
		k->dsn = true;
	} else if (str_eq_ci(p, kw, "STARTTLS")) {
		k->starttls = true;
	} else if (str_eq_ci(p, kw, "SIZE")) {
		uint64_t n;

		k->size = true;
		if (kw < len && num_parse_u64(p + kw + 1, len - kw - 1, UINT64_MAX, &n) == 0)
			k->max_size = n;
	} else if (str_eq_ci(p, kw, "AUTH")) {
		for (i = kw; i < len;) {
			size_t j;

			while (i < len && (p[i] == ' ' || p[i] == '='))
				i++;
			for (j = i; j < len && p[j] != ' '; j++)
				;
			if (str_eq_ci(p + i, j - i, "PLAIN"))
				k->auth_plain = true;
			else if (str_eq_ci(p + i, j - i, "LOGIN"))
				k->auth_login = true;
			i = j;
		}
	}
}

static void
smtpc_parse_ehlo(struct smtpc *c)
{
	const char *p = c->reply.text, *end = p + c->reply.text_len, *nl;

	memset(&c->caps, 0, sizeof(c->caps));
	c->caps.esmtp = true;
	/* The first line is the server's name and greeting; keywords follow, one a line. */
	nl = memchr(p, '\n', (size_t)(end - p));
	while (nl) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		smtpc_ehlo_line(c, p, (size_t)((nl ? nl : end) - p));
	}
}

static void
smtpc_ready(struct smtpc *c)
{
	smtpc_disarm(c);
	smtpc_set_state(c, SMTPC_ST_IDLE);
	log_debug("smtpc", "ready", "sess=c%lu host=%s peer=%s esmtp=%d pipelining=%d size=%" PRIu64
	    " tls=%s", c->sess, log_q(c->host), c->peer, c->caps.esmtp, c->caps.pipelining,
	    c->caps.max_size, c->tls_desc[0] ? c->tls_desc : "none");
	if (c->ready_cb)
		c->ready_cb(c->arg, &c->caps, c->tls_desc);
}

static void
smtpc_auth_plain(struct smtpc *c)
{
	struct buf raw = BUF_INIT, b64 = BUF_INIT;

	/* RFC 4616: authzid NUL authcid NUL passwd, sent as the initial response (RFC 4954 4). */
	buf_putc(&raw, '\0');
	buf_append_str(&raw, c->username);
	buf_putc(&raw, '\0');
	buf_append_str(&raw, c->password ? c->password : "");
	base64_encode(&b64, raw.ptr, raw.len);
	smtpc_add(c, "AUTH PLAIN ****", "AUTH PLAIN %s", b64.ptr);
	OPENSSL_cleanse(raw.ptr, raw.len);
	OPENSSL_cleanse(b64.ptr, b64.len);
	buf_fini(&raw);
	buf_fini(&b64);
	smtpc_flush(c);
	smtpc_set_state(c, SMTPC_ST_AUTH_PLAIN);
}

static void
smtpc_auth_login_send(struct smtpc *c, const char *secret)
{
	struct buf b64 = BUF_INIT;

	base64_encode(&b64, secret, strlen(secret));
	smtpc_add(c, "****", "%s", b64.ptr);
	OPENSSL_cleanse(b64.ptr, b64.len);
	buf_fini(&b64);
	smtpc_flush(c);
}

/* After EHLO/HELO (and TLS): authenticate when configured, else ready. */
static void
smtpc_auth_or_ready(struct smtpc *c)
{
	if (c->username == NULL) {
		smtpc_ready(c);
		return;
	}
	if (!c->tls_on) {
		if (c->tls != SMTPC_TLS_NONE) {
			smtpc_fail_local(c, SMTPC_STAGE_AUTH, SMTPC_LOCAL_AUTH_UNSUPPORTED,
			    "no AUTH without TLS");
			return;
		}
		/* The upstream is configured tls: none with credentials: its operator's choice. */
		log_warn("smtpc", "auth_in_clear", "sess=c%lu host=%s peer=%s", c->sess,
		    log_q(c->host), c->peer);
	}
	if (c->caps.auth_plain)
		smtpc_auth_plain(c);
	else if (c->caps.auth_login) {
		smtpc_add(c, NULL, "AUTH LOGIN");
		smtpc_flush(c);
		smtpc_set_state(c, SMTPC_ST_AUTH_LOGIN);
	} else
		smtpc_fail_local(c, SMTPC_STAGE_AUTH, SMTPC_LOCAL_AUTH_UNSUPPORTED,
		    "credentials configured, server offers neither AUTH PLAIN nor LOGIN");
}

static bool
smtpc_helo_fallback(int code)
{
	/* Servers without ESMTP answer EHLO with one of these (RFC 5321 4.1.4, 3.2). */
	return code == 500 || code == 501 || code == 502 || code == 504 || code == 554;
}

static void
smtpc_ehlo_reply(struct smtpc *c)
{
	int code = c->reply.code;

	if (code / 100 != 2) {
		if (c->tls == SMTPC_TLS_STARTTLS && !c->tls_on) {
			smtpc_fail_local(c, SMTPC_STAGE_EHLO, SMTPC_LOCAL_STARTTLS_MISSING,
			    "EHLO refused (%d), STARTTLS required", code);
			return;
		}
		if (smtpc_helo_fallback(code)) {
			smtpc_add(c, NULL, "HELO %s", c->helo);
			smtpc_flush(c);
			smtpc_set_state(c, SMTPC_ST_HELO);
			return;
		}
		smtpc_fail_reply(c, SMTPC_STAGE_EHLO);
		return;
	}
	smtpc_parse_ehlo(c);
	if (!c->tls_on && (c->tls == SMTPC_TLS_STARTTLS || c->tls == SMTPC_TLS_OPPORTUNISTIC)) {
		if (c->caps.starttls) {
			smtpc_add(c, NULL, "STARTTLS");
			smtpc_flush(c);
			smtpc_set_state(c, SMTPC_ST_STARTTLS);
			return;
		}
		if (c->tls == SMTPC_TLS_STARTTLS) {
			smtpc_fail_local(c, SMTPC_STAGE_STARTTLS, SMTPC_LOCAL_STARTTLS_MISSING,
			    "STARTTLS required but not offered");
			return;
		}
	}
	smtpc_auth_or_ready(c);
}

static void
smtpc_helo_reply(struct smtpc *c)
{
	if (c->reply.code / 100 != 2) {
		smtpc_fail_reply(c, SMTPC_STAGE_EHLO);
		return;
	}
	memset(&c->caps, 0, sizeof(c->caps));
	if (c->tls == SMTPC_TLS_STARTTLS && !c->tls_on) {
		smtpc_fail_local(c, SMTPC_STAGE_STARTTLS, SMTPC_LOCAL_STARTTLS_MISSING,
		    "STARTTLS required, server speaks only HELO");
		return;
	}
	smtpc_auth_or_ready(c);
}

static void
smtpc_auth_reply(struct smtpc *c)
{
	int code = c->reply.code;

	switch (c->state) {
	case SMTPC_ST_AUTH_PLAIN:
	case SMTPC_ST_AUTH_PASS:
		if (code == 235) {
			log_debug("smtpc", "auth_ok", "sess=c%lu host=%s", c->sess, log_q(c->host));
			smtpc_ready(c);
			return;
		}
		break;
	case SMTPC_ST_AUTH_LOGIN:
		if (code == 334) {
			smtpc_auth_login_send(c, c->username);
			smtpc_set_state(c, SMTPC_ST_AUTH_USER);
			return;
		}
		break;
	case SMTPC_ST_AUTH_USER:
		if (code == 334) {
			smtpc_auth_login_send(c, c->password ? c->password : "");
			smtpc_set_state(c, SMTPC_ST_AUTH_PASS);
			return;
		}
		break;
	default:
		break;
	}
	smtpc_fail_reply(c, SMTPC_STAGE_AUTH);
}

/* ---- transactions ---- */

static void
smtpc_add_rcpt(struct smtpc *c, size_t k)
{
	struct smtpc_txd *t = c->tx;
	size_t start = c->out.len;

	buf_printf(&c->out, "RCPT TO:<%s>", t->rcpts[k]);
	if (c->caps.dsn && t->notify[k])
		buf_printf(&c->out, " NOTIFY=%s", t->notify[k]);
	if (c->caps.dsn && t->orcpt[k])
		buf_printf(&c->out, " ORCPT=%s", t->orcpt[k]);
	log_trace(TRACE_SMTPC, "smtpc", "send", "sess=c%lu line=%s", c->sess,
	    log_qn(c->out.ptr + start, c->out.len - start));
	buf_append(&c->out, "\r\n", 2);
}

static void
smtpc_add_mail(struct smtpc *c)
{
	struct smtpc_txd *t = c->tx;
	size_t start = c->out.len;

	buf_printf(&c->out, "MAIL FROM:<%s>", t->mail_from);
	if (c->caps.size)
		buf_printf(&c->out, " SIZE=%" PRIu64, t->size);
	if (t->eightbit)
		buf_append_str(&c->out, " BODY=8BITMIME");
	if (t->smtputf8)
		buf_append_str(&c->out, " SMTPUTF8");
	if (c->caps.dsn && t->ret)
		buf_printf(&c->out, " RET=%s", t->ret);
	if (c->caps.dsn && t->envid)
		buf_printf(&c->out, " ENVID=%s", t->envid);
	log_trace(TRACE_SMTPC, "smtpc", "send", "sess=c%lu line=%s", c->sess,
	    log_qn(c->out.ptr + start, c->out.len - start));
	buf_append(&c->out, "\r\n", 2);
}

static void
smtpc_rset(struct smtpc *c)
{
	smtpc_add(c, NULL, "RSET");
	smtpc_flush(c);
	smtpc_set_state(c, SMTPC_ST_RSET);
}

/* Queue body bytes while the output is short; the write callback asks for more. */
static void
smtpc_body_fill(struct smtpc *c)
{
	struct smtpc_txd *t = c->tx;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (evbuffer_get_length(out) < SMTPC_BODY_HIGH) {
		bool done;

		buf_reset(&c->out);
		done = smtpc_body_next(&t->bs, &c->out, SMTPC_BODY_CHUNK);
		bufferevent_write(c->bev, c->out.ptr, c->out.len);
		buf_reset(&c->out);
		if (done) {
			log_trace(TRACE_SMTPC, "smtpc", "send",
			    "sess=c%lu body_bytes=%zu line=\".\"", c->sess, t->bs.len);
			smtpc_set_state(c, SMTPC_ST_DOT);
			smtpc_arm(c, c->dot_ms);
			return;
		}
	}
	/* Progress re-arms the timer: a big body to a slow server is not a timeout. */
	smtpc_arm(c, c->command_ms);
}

static void
smtpc_data_reply(struct smtpc *c)
{
	struct smtpc_txd *t = c->tx;
	const struct smtp_reply *r = &c->reply;

	if (r->code == 354) {
		if (t->mail_ok && t->n_accepted > 0) {
			smtpc_set_state(c, SMTPC_ST_BODY);
			smtpc_body_init(&t->bs, t->body ? t->body->ptr : "",
			    t->body ? t->body->len : 0);
			smtpc_body_fill(c);
			return;
		}
		/* RFC 2920 3.1: DATA accepted although nothing else was: end it empty. */
		smtpc_add(c, NULL, ".");
		smtpc_flush(c);
		smtpc_set_state(c, SMTPC_ST_DOT_ABORT);
		return;
	}
	if (t->mail_ok && t->n_accepted > 0)
		smtpc_failure_reply(&t->final, SMTPC_STAGE_DATA, r);
	if (t->mail_ok)
		smtpc_rset(c);
	else
		smtpc_tx_end(c, false, false);
}

/* A reply to MAIL, RCPT or DATA, taken in order by the receive cursor. */
static void
smtpc_tx_reply(struct smtpc *c)
{
	struct smtpc_txd *t = c->tx;
	const struct smtp_reply *r = &c->reply;
	bool ok = r->code / 100 == 2;
	size_t i = t->recvd;

	if (r->code == 421) {
		/* The server is closing: a session failure, not this transaction's verdict. */
		smtpc_fail_reply(c, smtpc_stage(c));
		return;
	}
	t->recvd++;
	if (i == 0) {
		t->mail_ok = ok;
		if (!ok)
			smtpc_failure_reply(&t->final, SMTPC_STAGE_MAIL, r);
	} else if (i <= t->n) {
		struct smtpc_rcpt_result *res = &t->res[i - 1];

		if (t->mail_ok && ok) {
			res->accepted = true;
			t->n_accepted++;
		} else if (t->mail_ok) {
			smtpc_failure_reply(&res->fail, SMTPC_STAGE_RCPT, r);
			t->final = res->fail;
		}
	} else {
		smtpc_data_reply(c);
		return;
	}
	if (t->recvd < t->sent) {
		smtpc_arm(c, c->command_ms);
		return;
	}
	/* Lockstep (no PIPELINING): the next command depends on this reply. */
	if (!t->mail_ok) {
		smtpc_tx_end(c, false, false);
		return;
	}
	if (i < t->n) {
		smtpc_add_rcpt(c, i);
		t->sent++;
		smtpc_flush(c);
		return;
	}
	if (t->n_accepted == 0) {
		smtpc_rset(c);
		return;
	}
	smtpc_add(c, NULL, "DATA");
	t->sent++;
	smtpc_flush(c);
}

static void
smtpc_dot_reply(struct smtpc *c)
{
	struct smtpc_txd *t = c->tx;
	const struct smtp_reply *r = &c->reply;

	smtpc_failure_reply(&t->final, SMTPC_STAGE_DOT, r);
	if (r->code == 421) {
		struct smtpc_failure f = t->final;

		smtpc_kill_io(c);
		smtpc_set_state(c, SMTPC_ST_DEAD);
		smtpc_tx_end(c, false, false);
		if (!c->doomed)
			smtpc_fail_with(c, &f);
		return;
	}
	smtpc_tx_end(c, r->code / 100 == 2 && t->n_accepted > 0, false);
}

static void
smtpc_rset_reply(struct smtpc *c)
{
	struct smtpc_failure f;

	if (c->reply.code / 100 == 2) {
		smtpc_tx_end(c, false, false);
		return;
	}
	smtpc_failure_reply(&f, SMTPC_STAGE_RSET, &c->reply);
	smtpc_kill_io(c);
	smtpc_set_state(c, SMTPC_ST_DEAD);
	smtpc_tx_end(c, false, false);
	if (!c->doomed)
		smtpc_fail_with(c, &f);
}

/* ---- input ---- */

static void
smtpc_on_reply(struct smtpc *c)
{
	switch (c->state) {
	case SMTPC_ST_GREETING:
		if (c->reply.code != 220) {
			smtpc_fail_reply(c, SMTPC_STAGE_GREETING);
			return;
		}
		c->greeted = true;
		smtpc_ehlo(c);
		return;
	case SMTPC_ST_EHLO:
		smtpc_ehlo_reply(c);
		return;
	case SMTPC_ST_HELO:
		smtpc_helo_reply(c);
		return;
	case SMTPC_ST_STARTTLS:
		if (c->reply.code != 220) {
			smtpc_fail_reply(c, SMTPC_STAGE_STARTTLS);
			return;
		}
		smtpc_tls_start(c);
		return;
	case SMTPC_ST_AUTH_PLAIN:
	case SMTPC_ST_AUTH_LOGIN:
	case SMTPC_ST_AUTH_USER:
	case SMTPC_ST_AUTH_PASS:
		smtpc_auth_reply(c);
		return;
	case SMTPC_ST_TX:
		smtpc_tx_reply(c);
		return;
	case SMTPC_ST_DOT:
		smtpc_dot_reply(c);
		return;
	case SMTPC_ST_DOT_ABORT:
		smtpc_tx_end(c, false, false);
		return;
	case SMTPC_ST_RSET:
		smtpc_rset_reply(c);
		return;
	case SMTPC_ST_BODY:
		/* A reply while we stream: the server gave up on the data. */
		smtpc_fail_reply(c, SMTPC_STAGE_DATA);
		return;
	case SMTPC_ST_IDLE:
	case SMTPC_ST_LOCAL:
		if (c->reply.code == 421)
			smtpc_fail_reply(c, SMTPC_STAGE_MAIL);
		else
			smtpc_fail_local(c, SMTPC_STAGE_MAIL, SMTPC_LOCAL_BAD_REPLY,
			    "unexpected reply %d while idle", c->reply.code);
		return;
	case SMTPC_ST_CONNECTING:
	case SMTPC_ST_TLS:
	case SMTPC_ST_DEAD:
		break;
	}
	hk_panic("smtpc: reply in state %s", smtpc_state_names[c->state]);
}

/* Take complete lines while the state wants replies; one reply at a time, bounded. */
static void
smtpc_read(struct smtpc *c)
{
	char line[SMTPC_LINE_MAX + 1];

	while (!smtpc_gone(c) && c->state != SMTPC_ST_CONNECTING && c->state != SMTPC_ST_TLS) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		struct evbuffer_ptr eol;
		size_t eol_len = 0, n;
		enum smtp_reply_result res;
		const char *why = NULL;

		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > SMTPC_LINE_MAX)
				smtpc_lost(c, SMTPC_LOCAL_BAD_REPLY, "reply line too long");
			return;
		}
		n = (size_t)eol.pos;
		if (n > SMTPC_LINE_MAX) {
			smtpc_lost(c, SMTPC_LOCAL_BAD_REPLY, "reply line too long");
			return;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		log_trace(TRACE_SMTPC, "smtpc", "recv", "sess=c%lu line=%s", c->sess,
		    log_qn(line, n));
		res = smtp_reply_feed(&c->reply, line, n, &why);
		if (res == SMTP_REPLY_MORE)
			continue;
		if (res == SMTP_REPLY_BAD) {
			char text[160];

			snprintf(text, sizeof(text), "malformed reply: %s", why ? why : "?");
			smtp_reply_init(&c->reply);
			smtpc_lost(c, SMTPC_LOCAL_BAD_REPLY, text);
			return;
		}
		smtpc_on_reply(c);
		smtp_reply_init(&c->reply);
	}
}

/* ---- libevent callbacks ---- */

static void
smtpc_hold(struct smtpc *c)
{
	c->busy++;
}

static void smtpc_destroy(struct smtpc *c);

static void
smtpc_release(struct smtpc *c)
{
	HK_ASSERT(c->busy > 0);
	if (--c->busy == 0 && c->doomed)
		smtpc_destroy(c);
}

static void
smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_hold(c);
	smtpc_read(c);
	smtpc_release(c);
}

static void
smtpc_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_hold(c);
	if (!smtpc_gone(c) && c->state == SMTPC_ST_BODY)
		smtpc_body_fill(c);
	smtpc_release(c);
}

static void
smtpc_connected(struct smtpc *c)
{
	if (c->state == SMTPC_ST_TLS) {
		smtpc_tls_done(c);
		return;
	}
	if (c->state != SMTPC_ST_CONNECTING)
		return;
	log_debug("smtpc", "connected", "sess=c%lu host=%s peer=%s", c->sess, log_q(c->host),
	    c->peer);
	if (c->tls == SMTPC_TLS_IMPLICIT) {
		smtpc_tls_start(c);
		return;
	}
	smtpc_set_state(c, SMTPC_ST_GREETING);
	smtpc_arm(c, c->command_ms);
}

static void
smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	smtpc_hold(c);
	if (smtpc_gone(c)) {
		/* nothing */
	} else if (what & BEV_EVENT_CONNECTED) {
		smtpc_connected(c);
	} else if (c->state == SMTPC_ST_CONNECTING) {
		smtpc_fail_local(c, SMTPC_STAGE_CONNECT, SMTPC_LOCAL_REFUSED, "connect to %s: %s",
		    c->peer, err ? evutil_socket_error_to_string(err) : "failed");
	} else if (c->state == SMTPC_ST_TLS) {
		smtpc_tls_failed(c);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		char text[200];

		/* Lines that came with the close (a 421, a final reply) count first. */
		smtpc_read(c);
		if (!smtpc_gone(c)) {
			if (what & BEV_EVENT_EOF || err == 0)
				snprintf(text, sizeof(text), "connection closed by the server");
			else
				snprintf(text, sizeof(text), "connection error: %s",
				    evutil_socket_error_to_string(err));
			ERR_clear_error();
			smtpc_lost_ex(c, SMTPC_LOCAL_DISCONNECT, text,
			    (what & BEV_EVENT_ERROR) && (err == ECONNRESET || err == EPIPE));
		}
	}
	smtpc_release(c);
}

static void
smtpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	char text[128];

	(void)fd;
	(void)what;
	smtpc_hold(c);
	if (!smtpc_gone(c)) {
		snprintf(text, sizeof(text), "timeout in state %s", smtpc_state_names[c->state]);
		if (c->state == SMTPC_ST_CONNECTING)
			smtpc_fail_local(c, SMTPC_STAGE_CONNECT, SMTPC_LOCAL_TIMEOUT, "%s", text);
		else
			smtpc_lost(c, SMTPC_LOCAL_TIMEOUT, text);
	}
	smtpc_release(c);
}

/* Deferred work, so no callback runs inside smtpc_new() or smtpc_send(). */
static void
smtpc_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	smtpc_hold(c);
	if (c->have_pending) {
		struct smtpc_failure f = c->pending;

		c->have_pending = false;
		smtpc_fail_with(c, &f);
	} else if (!smtpc_gone(c) && c->state == SMTPC_ST_LOCAL) {
		smtpc_tx_end(c, false, false);
	}
	smtpc_release(c);
}

static void
smtpc_defer(struct smtpc *c)
{
	struct timeval zero = { 0, 0 };

	evtimer_add(c->later, &zero);
}

/* ---- public ---- */

static void
smtpc_peer_text(struct smtpc *c)
{
	const void *a = NULL;

	if (c->addr.ss_family == AF_INET)
		a = &((const struct sockaddr_in *)&c->addr)->sin_addr;
	else if (c->addr.ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)&c->addr)->sin6_addr;
	if (a == NULL || inet_ntop(c->addr.ss_family, a, c->peer, sizeof(c->peer)) == NULL)
		snprintf(c->peer, sizeof(c->peer), "-");
}

struct smtpc *
smtpc_new(const struct smtpc_params *p, smtpc_ready_fn ready_cb, smtpc_fail_fn fail_cb, void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	HK_ASSERT(p->base != NULL);
	HK_ASSERT(p->addr_len <= sizeof(c->addr));
	c->base = p->base;
	memcpy(&c->addr, &p->addr, p->addr_len);
	c->addr_len = p->addr_len;
	c->host = xstrdup(p->host ? p->host : "");
	c->helo = xstrdup(p->helo && p->helo[0] ? p->helo : "localhost");
	c->username = p->username ? xstrdup(p->username) : NULL;
	c->password = p->password ? xstrdup(p->password) : NULL;
	c->tls = p->tls;
	c->verify = p->verify;
	if (p->n_tlsa > 0) {
		HK_ASSERT(p->tls == SMTPC_TLS_STARTTLS || p->tls == SMTPC_TLS_IMPLICIT);
		c->tlsa = xmemdup(p->tlsa, p->n_tlsa * sizeof(*p->tlsa));
		c->n_tlsa = p->n_tlsa;
		c->verify = true;
	}
	if (p->ssl_ctx) {
		SSL_CTX_up_ref(p->ssl_ctx);
		c->ssl_ctx = p->ssl_ctx;
	}
	c->connect_ms = p->connect_timeout_ms ? p->connect_timeout_ms : SMTPC_CONNECT_TIMEOUT_MS;
	c->command_ms = p->command_timeout_ms ? p->command_timeout_ms : SMTPC_COMMAND_TIMEOUT_MS;
	c->dot_ms = p->dot_timeout_ms ? p->dot_timeout_ms : SMTPC_DOT_TIMEOUT_MS;
	c->sess = p->sess_id;
	c->ready_cb = ready_cb;
	c->fail_cb = fail_cb;
	c->arg = arg;
	c->state = SMTPC_ST_CONNECTING;
	smtp_reply_init(&c->reply);
	buf_init(&c->out);
	smtpc_peer_text(c);
	c->timer = evtimer_new(c->base, smtpc_timer_cb, c);
	c->later = evtimer_new(c->base, smtpc_later_cb, c);
	HK_ASSERT(c->timer && c->later);

	log_debug("smtpc", "connect", "sess=c%lu host=%s peer=%s tls=%d verify=%d", c->sess,
	    log_q(c->host), c->peer, (int)c->tls, c->verify);
	c->raw = bufferevent_socket_new(c->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->raw == NULL) {
		smtpc_failure_local(&c->pending, SMTPC_STAGE_CONNECT, SMTPC_LOCAL_REFUSED,
		    "cannot create a socket");
		goto later;
	}
	c->bev = c->raw;
	smtpc_setcb(c);
	/* The TLS filter stops at the socket's high-water mark: bounded memory for big bodies. */
	bufferevent_setwatermark(c->raw, EV_WRITE, SMTPC_BODY_LOW, SMTPC_BODY_HIGH);
	if (bufferevent_socket_connect(c->raw, (struct sockaddr *)&c->addr, (int)c->addr_len)) {
		int err = EVUTIL_SOCKET_ERROR();

		smtpc_failure_local(&c->pending, SMTPC_STAGE_CONNECT, SMTPC_LOCAL_REFUSED,
		    "connect to %s: %s", c->peer,
		    err ? evutil_socket_error_to_string(err) : "failed");
		goto later;
	}
	smtpc_arm(c, c->connect_ms);
	return c;
later:
	c->have_pending = true;
	smtpc_defer(c);
	return c;
}

static char *
smtpc_dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A reason to refuse tx here without a word to the server, else SMTPC_LOCAL_NONE. */
static enum smtpc_local
smtpc_tx_check(const struct smtpc *c, const struct smtpc_txd *t, char *why, size_t whylen)
{
	size_t i;

	if (!smtpc_is_clean(t->mail_from)) {
		snprintf(why, whylen, "control bytes in the sender");
		return SMTPC_LOCAL_BAD_ENVELOPE;
	}
	if ((t->ret && !smtpc_is_param(t->ret)) || (t->envid && !smtpc_is_param(t->envid))) {
		snprintf(why, whylen, "bad RET or ENVID value");
		return SMTPC_LOCAL_BAD_ENVELOPE;
	}
	for (i = 0; i < t->n; i++) {
		if (!smtpc_is_clean(t->rcpts[i]) ||
		    (t->notify[i] && !smtpc_is_param(t->notify[i])) ||
		    (t->orcpt[i] && !smtpc_is_param(t->orcpt[i]))) {
			snprintf(why, whylen, "bad bytes in recipient %zu or its parameters", i);
			return SMTPC_LOCAL_BAD_ENVELOPE;
		}
	}
	if (c->caps.size && c->caps.max_size && t->size > c->caps.max_size) {
		snprintf(why, whylen, "message size %" PRIu64 " exceeds the server's SIZE %" PRIu64,
		    t->size, c->caps.max_size);
		return SMTPC_LOCAL_TOO_BIG;
	}
	if (t->smtputf8 && !c->caps.smtputf8) {
		snprintf(why, whylen, "message needs SMTPUTF8, server lacks it");
		return SMTPC_LOCAL_NEEDS_SMTPUTF8;
	}
	if (t->eightbit && !c->caps.eightbitmime) {
		snprintf(why, whylen, "8-bit body, server lacks 8BITMIME");
		return SMTPC_LOCAL_NEEDS_8BITMIME;
	}
	return SMTPC_LOCAL_NONE;
}

void
smtpc_send(struct smtpc *c, const struct smtpc_tx *tx, smtpc_tx_fn tx_cb)
{
	struct smtpc_txd *t;
	enum smtpc_local local;
	char why[200];
	size_t i;

	HK_ASSERT(smtpc_is_idle(c));
	HK_ASSERT(tx->n_rcpts > 0 && tx->rcpts != NULL);
	t = xcalloc(1, sizeof(*t));
	t->mail_from = xstrdup(tx->mail_from ? tx->mail_from : "");
	t->ret = smtpc_dup_or_null(tx->ret);
	t->envid = smtpc_dup_or_null(tx->envid);
	t->size = tx->size;
	t->eightbit = tx->eightbit;
	t->smtputf8 = tx->smtputf8;
	t->n = tx->n_rcpts;
	t->rcpts = xcalloc(t->n, sizeof(char *));
	t->notify = xcalloc(t->n, sizeof(char *));
	t->orcpt = xcalloc(t->n, sizeof(char *));
	t->res = xcalloc(t->n, sizeof(*t->res));
	for (i = 0; i < t->n; i++) {
		t->rcpts[i] = xstrdup(tx->rcpts[i]);
		t->notify[i] = smtpc_dup_or_null(tx->notify ? tx->notify[i] : NULL);
		t->orcpt[i] = smtpc_dup_or_null(tx->orcpt ? tx->orcpt[i] : NULL);
	}
	t->body = tx->body;
	t->cb = tx_cb;
	c->tx = t;

	local = smtpc_tx_check(c, t, why, sizeof(why));
	if (local != SMTPC_LOCAL_NONE) {
		smtpc_failure_local(&t->final, SMTPC_STAGE_MAIL, local, "%s", why);
		smtpc_set_state(c, SMTPC_ST_LOCAL);
		smtpc_defer(c);
		return;
	}
	smtpc_set_state(c, SMTPC_ST_TX);
	t->pipelined = c->caps.pipelining;
	smtpc_add_mail(c);
	t->sent = 1;
	if (t->pipelined) {
		/* RFC 2920 3.1: MAIL, every RCPT and DATA in one write; replies come in order. */
		for (i = 0; i < t->n; i++)
			smtpc_add_rcpt(c, i);
		smtpc_add(c, NULL, "DATA");
		t->sent = t->n + 2;
	}
	smtpc_flush(c);
}

bool
smtpc_is_idle(const struct smtpc *c)
{
	return c != NULL && !c->doomed && c->state == SMTPC_ST_IDLE;
}

const char *
smtpc_tls(const struct smtpc *c)
{
	return c->tls_desc;
}

const char *
smtpc_peer(const struct smtpc *c)
{
	return c->peer;
}

/* Best effort: QUIT straight to the socket (never blocks, never waits for 221). */
static void
smtpc_quit(struct smtpc *c)
{
	static const char quit[] = "QUIT\r\n";
	struct evbuffer *out;
	evutil_socket_t fd;

	if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return;
	log_trace(TRACE_SMTPC, "smtpc", "send", "sess=c%lu line=\"QUIT\"", c->sess);
	out = bufferevent_get_output(c->raw);
	if (c->ssl) {
		/* The filter's BIO writes the record into the socket's output buffer. */
		if (SSL_write(c->ssl, quit, (int)sizeof(quit) - 1) <= 0) {
			ERR_clear_error();
			return;
		}
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	} else {
		evbuffer_add(out, quit, sizeof(quit) - 1);
	}
	fd = bufferevent_getfd(c->raw);
	if (fd >= 0 && evbuffer_get_length(out)) {
		size_t n = evbuffer_get_length(out);
		const unsigned char *p = evbuffer_pullup(out, (ssize_t)n);

		if (p)
			(void)send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
}

static void
smtpc_destroy(struct smtpc *c)
{
	smtpc_kill_io(c);
	event_free(c->timer);
	event_free(c->later);
	smtpc_txd_free(c->tx);
	SSL_CTX_free(c->ssl_ctx);
	free(c->tlsa);
	if (c->password) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->username);
	free(c->host);
	free(c->helo);
	buf_fini(&c->out);
	free(c);
}

void
smtpc_free(struct smtpc *c)
{
	if (c == NULL || c->doomed)
		return;
	c->ready_cb = NULL;
	c->fail_cb = NULL;
	if (c->tx)
		c->tx->cb = NULL;
	if (c->state == SMTPC_ST_IDLE)
		smtpc_quit(c);
	log_debug("smtpc", "close", "sess=c%lu host=%s state=%s", c->sess, log_q(c->host),
	    smtpc_state_names[c->state]);
	if (c->busy) {
		c->doomed = true;
		smtpc_kill_io(c);
		return;
	}
	smtpc_destroy(c);
}
