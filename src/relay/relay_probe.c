/*
 * relay_probe.c - the connection test's state machine (relay_probe.h): one connection, one
 * step at a time, each step timed and recorded, the first failure diagnosed. Its own small
 * client rather than smtpc, because a test wants what delivery hides: every reply, the EHLO
 * keywords, the certificate even when it is bad, and which of the steps broke.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "relay_probe.h"
#include "smtpc.h"
#include "../proto/smtp_reply.h"
#include "../util/base64.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define PROBE_LINE_MAX 4096
#define PROBE_CONNECT_MS 10000
#define PROBE_COMMAND_MS 30000

enum probe_state {
	PROBE_ST_DNS = 0,
	PROBE_ST_CONNECT,
	PROBE_ST_TLS,
	PROBE_ST_GREETING,
	PROBE_ST_EHLO,
	PROBE_ST_STARTTLS,
	PROBE_ST_STARTTLS_HS,
	PROBE_ST_AUTH_PLAIN,
	PROBE_ST_AUTH_LOGIN_USER,
	PROBE_ST_AUTH_LOGIN_PASS,
	PROBE_ST_AUTH_LOGIN_DONE,
	PROBE_ST_MAIL,
	PROBE_ST_RCPT,
	PROBE_ST_RSET,
	PROBE_ST_DATA,
	PROBE_ST_DOT,
	PROBE_ST_QUIT,
	PROBE_ST_DONE,
};

struct relay_probe {
	struct event_base *base;
	struct dns *dns;
	char *host, *helo, *username, *password, *password_error, *ca_file;
	char *mail_from, *rcpt_to;
	unsigned port;
	enum conf_tls tls;
	bool verify;
	uint64_t connect_ms, command_ms, now_ms, id;
	relay_probe_done_fn done_cb;
	void *arg;

	enum probe_state st;
	bool dns_pending, cancelled, finishing;
	struct dns_addr_result addrs;
	size_t addr_i;
	struct bufferevent *raw, *bev; /* bev: raw, or the TLS filter over it */
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned char first_rx[5];     /* first record header received in a handshake */
	bool first_rx_seen;
	struct event *timer, *finish_ev;
	uint64_t step_t0;
	bool step_open;
	bool offers_starttls, offers_plain, offers_login, offers_auth;
	bool tls_on;
	struct smtp_reply reply;
	struct relay_probe_report rep;
};

static void probe_read_cb(struct bufferevent *bev, void *arg);
static void probe_event_cb(struct bufferevent *bev, short what, void *arg);
static void probe_connect_next(struct relay_probe *p);

/* ---- steps and the end ---- */

/* Copy display text, cut to fit (report fields are for people; the cut is harmless). */
static void
probe_cpy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct relay_probe_step *
probe_cur(struct relay_probe *p)
{
	HK_ASSERT(p->rep.n_steps > 0);
	return &p->rep.steps[p->rep.n_steps - 1];
}

static void
probe_step_begin(struct relay_probe *p, enum relay_probe_step_kind k, uint64_t timeout_ms)
{
	struct relay_probe_step *s;
	struct timeval tv;

	HK_ASSERT(p->rep.n_steps < RELAY_PROBE_MAX_STEPS);
	s = &p->rep.steps[p->rep.n_steps++];
	memset(s, 0, sizeof(*s));
	s->kind = k;
	p->step_t0 = clock_mono_ms();
	p->step_open = true;
	tv.tv_sec = (time_t)(timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((timeout_ms % 1000) * 1000);
	evtimer_add(p->timer, &tv);
}

HK_PRINTF(2, 3) static void
probe_detail(struct relay_probe *p, const char *fmt, ...)
{
	struct relay_probe_step *s = probe_cur(p);
	size_t n = strlen(s->detail);
	va_list ap;

	if (n > 0 && n + 2 < sizeof(s->detail)) {
		s->detail[n++] = ';';
		s->detail[n++] = ' ';
		s->detail[n] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(s->detail + n, sizeof(s->detail) - n, fmt, ap);
	va_end(ap);
}

static void
probe_step_end(struct relay_probe *p, bool ok)
{
	struct relay_probe_step *s = probe_cur(p);

	if (!p->step_open)
		return;
	p->step_open = false;
	s->ok = ok;
	s->duration_ms = clock_mono_ms() - p->step_t0;
	evtimer_del(p->timer);
}

static void
probe_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_probe *p = arg;

	(void)fd;
	(void)what;
	if (p->done_cb)
		p->done_cb(p->arg, &p->rep);
	relay_probe_cancel(p);
}

/* End the test: close the connection, report from the loop (never inside a caller's call). */
static void
probe_finish(struct relay_probe *p)
{
	if (p->finishing)
		return;
	p->finishing = true;
	p->st = PROBE_ST_DONE;
	evtimer_del(p->timer);
	if (p->bev) {
		bufferevent_disable(p->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(p->bev, NULL, NULL, NULL, NULL);
	}
	p->rep.ok = !p->rep.failed;
	event_active(p->finish_ev, EV_TIMEOUT, 0);
}

/* The current step failed. */
static void
probe_fail(struct relay_probe *p, enum relay_probe_local local, const char *text)
{
	struct relay_probe_step *s = probe_cur(p);
	struct relay_probe_failure f;

	probe_step_end(p, false);
	if (local != RELAY_PROBE_LOCAL_NONE && text)
		probe_detail(p, "%s", text);
	p->rep.failed = true;
	p->rep.failed_step = p->rep.n_steps - 1;
	memset(&f, 0, sizeof(f));
	f.step = s->kind;
	f.local = local;
	f.code = local == RELAY_PROBE_LOCAL_NONE ? s->code : 0;
	f.enh_class = s->enh_class;
	f.enh_subject = s->enh_subject;
	f.enh_detail = s->enh_detail;
	f.text = local == RELAY_PROBE_LOCAL_NONE ? s->reply : text;
	f.port = p->port;
	f.tls = p->tls;
	f.verify = p->verify;
	relay_probe_diagnose(&f, &p->rep.advice);
	log_info("probe", "step_failed", "sess=probe upstream=%s step=%s code=%d advice=%s",
	    log_q(p->rep.upstream), relay_probe_step_name(s->kind), f.code, p->rep.advice.id);
	/* A polite end when the dialogue is still in step; no reply awaited. */
	if (p->bev && p->st >= PROBE_ST_EHLO && local == RELAY_PROBE_LOCAL_NONE)
		bufferevent_write(p->bev, "QUIT\r\n", 6);
	probe_finish(p);
}

/* The current step failed with the reply just read. */
static void
probe_fail_reply(struct relay_probe *p)
{
	probe_fail(p, RELAY_PROBE_LOCAL_NONE, NULL);
}

static void
probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_probe *p = arg;
	char why[96];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "no answer within %llu s", (unsigned long long)
	    ((p->st == PROBE_ST_CONNECT ? p->connect_ms : p->command_ms) + 999) / 1000);
	if (p->st == PROBE_ST_CONNECT && p->addr_i + 1 < p->addrs.n) {
		probe_detail(p, "%s: timed out", p->rep.address);
		p->addr_i++;
		probe_connect_next(p);
		return;
	}
	probe_fail(p, RELAY_PROBE_LOCAL_TIMEOUT, why);
}

/* ---- sending ---- */

/* One command line; wiped after writing, as AUTH lines carry the password. */
HK_PRINTF(2, 3) static void
probe_send(struct relay_probe *p, const char *fmt, ...)
{
	struct buf line = BUF_INIT;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	HK_ASSERT(n >= 0);
	buf_reserve(&line, (size_t)n + 3);
	va_start(ap, fmt);
	vsnprintf(line.ptr, (size_t)n + 1, fmt, ap);
	va_end(ap);
	line.len = (size_t)n;
	buf_append(&line, "\r\n", 2);
	bufferevent_write(p->bev, line.ptr, line.len);
	OPENSSL_cleanse(line.ptr, line.len);
	buf_fini(&line);
}

static void
probe_ehlo(struct relay_probe *p, bool after_tls)
{
	p->st = PROBE_ST_EHLO;
	p->offers_starttls = p->offers_plain = p->offers_login = p->offers_auth = false;
	probe_step_begin(p, RELAY_PROBE_EHLO, p->command_ms);
	probe_detail(p, "EHLO %s%s", p->helo, after_tls ? " (after TLS)" : "");
	probe_send(p, "EHLO %s", p->helo);
}

/* Build the test message: traceable subject and Message-ID, CRLF, dot-stuffed, final dot. */
static void
probe_message(struct relay_probe *p, struct buf *out)
{
	char date[64], when[32], idhex[ID_HEX_LEN + 1];
	time_t t = (time_t)(p->now_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	id_format(p->id, idhex);
	snprintf(p->rep.subject, sizeof(p->rep.subject), "hikyaku connection test %s %s", idhex,
	    when);
	snprintf(p->rep.message_id, sizeof(p->rep.message_id), "<test.%s@%s>", idhex, p->helo);
	buf_append_str(out, "From: <");
	buf_append_str(out, p->mail_from);
	buf_append_str(out, ">\r\nTo: <");
	buf_append_str(out, p->rcpt_to);
	buf_append_str(out, ">\r\nSubject: ");
	buf_append_str(out, p->rep.subject);
	buf_append_str(out, "\r\nDate: ");
	buf_append_str(out, date);
	buf_append_str(out, "\r\nMessage-ID: ");
	buf_append_str(out, p->rep.message_id);
	buf_append_str(out, "\r\nX-Hikyaku-Test: ");
	buf_append_str(out, idhex);
	buf_append_str(out, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	    "\r\nThis is a connection test sent by hikyaku through the upstream \"");
	buf_append_str(out, p->rep.upstream);
	buf_append_str(out, "\".\r\nTest id ");
	buf_append_str(out, idhex);
	buf_append_str(out, ", sent ");
	buf_append_str(out, when);
	buf_append_str(out, ". It needs no answer and may be deleted.\r\n.\r\n");
	/* No line above starts with '.', so no dot-stuffing is needed (RFC 5321 4.5.2). */
}

/* ---- TLS ---- */

static void
probe_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
    void *arg)
{
	struct relay_probe *p = arg;

	(void)version;
	(void)ssl;
	if (write_p == 0 && content_type == SSL3_RT_HEADER && len >= 5 && !p->first_rx_seen) {
		memcpy(p->first_rx, buf, 5);
		p->first_rx_seen = true;
	}
}

static bool
probe_host_is_ip(const char *h)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

static void
probe_name(X509_NAME *n, char *out, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	out[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(b, &data);
	if (len > 0)
		snprintf(out, size, "%.*s", (int)len, data);
	BIO_free(b);
}

/* Fill rep.cert; the local failure kind when verification is required and fails. */
static enum relay_probe_local
probe_cert(struct relay_probe *p, char *why, size_t whylen)
{
	struct relay_probe_cert *c = &p->rep.cert;
	X509 *x = SSL_get1_peer_certificate(p->ssl);
	const ASN1_TIME *na;
	struct tm tm;
	int day = 0, sec = 0;
	long v;

	probe_cpy(c->protocol, sizeof(c->protocol), SSL_get_version(p->ssl));
	probe_cpy(c->cipher, sizeof(c->cipher), SSL_get_cipher_name(p->ssl));
	why[0] = '\0';
	if (x == NULL) {
		probe_cpy(c->verify_error, sizeof(c->verify_error), "no certificate sent");
		snprintf(why, whylen, "the server sent no certificate");
		return p->verify ? RELAY_PROBE_LOCAL_CERT_OTHER : RELAY_PROBE_LOCAL_NONE;
	}
	c->present = true;
	probe_name(X509_get_subject_name(x), c->subject, sizeof(c->subject));
	probe_name(X509_get_issuer_name(x), c->issuer, sizeof(c->issuer));
	na = X509_get0_notAfter(x);
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(c->not_after, sizeof(c->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ASN1_TIME_diff(&day, &sec, NULL, na) == 1)
		c->days_left = day - (day == 0 && sec < 0 ? 1 : 0);
	if (probe_host_is_ip(p->host))
		c->host_match = X509_check_ip_asc(x, p->host, 0) == 1;
	else
		c->host_match = X509_check_host(x, p->host, 0,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
	v = SSL_get_verify_result(p->ssl);
	c->chain_ok = v == X509_V_OK;
	c->verified = c->chain_ok && c->host_match;
	X509_free(x);
	ERR_clear_error();
	if (!c->chain_ok)
		probe_cpy(c->verify_error, sizeof(c->verify_error),
		    X509_verify_cert_error_string(v));
	else if (!c->host_match)
		snprintf(c->verify_error, sizeof(c->verify_error), "certificate is not for %s",
		    p->host);
	if (c->verified || !p->verify)
		return RELAY_PROBE_LOCAL_NONE;
	if (!c->chain_ok) {
		struct buf b = BUF_INIT;

		buf_append_str(&b, c->verify_error);
		buf_append_str(&b, "; subject ");
		buf_append_str(&b, c->subject);
		buf_append_str(&b, ", issuer ");
		buf_append_str(&b, c->issuer);
		probe_cpy(why, whylen, b.ptr);
		buf_fini(&b);
		switch (v) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
			return RELAY_PROBE_LOCAL_CERT_EXPIRED;
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
			return RELAY_PROBE_LOCAL_CERT_SELF_SIGNED;
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		case X509_V_ERR_CERT_UNTRUSTED:
			return RELAY_PROBE_LOCAL_CERT_UNTRUSTED;
		default:
			return RELAY_PROBE_LOCAL_CERT_OTHER;
		}
	}
	snprintf(why, whylen, "certificate subject %s does not cover %s", c->subject, p->host);
	return RELAY_PROBE_LOCAL_CERT_MISMATCH;
}

static void
probe_tls_start(struct relay_probe *p)
{
	struct evbuffer *in;
	struct bufferevent *bev;
	char err[256];

	if (p->ctx == NULL) {
		p->ctx = smtpc_ssl_ctx_new(p->ca_file, err, sizeof(err));
		if (p->ctx == NULL) {
			probe_fail(p, RELAY_PROBE_LOCAL_CA_FILE, err);
			return;
		}
	}
	p->ssl = SSL_new(p->ctx);
	if (p->ssl == NULL) {
		ERR_clear_error();
		probe_fail(p, RELAY_PROBE_LOCAL_TLS_FAILED, "SSL_new failed");
		return;
	}
	/* Verification is judged after the handshake, so a bad certificate can be shown. */
	SSL_set_verify(p->ssl, SSL_VERIFY_NONE, NULL);
	if (!probe_host_is_ip(p->host))
		SSL_set_tlsext_host_name(p->ssl, p->host);
	SSL_set_msg_callback(p->ssl, probe_msg_cb);
	SSL_set_msg_callback_arg(p->ssl, p);
	p->first_rx_seen = false;
	/* RFC 3207: nothing the server sent in clear survives into TLS. */
	in = bufferevent_get_input(p->raw);
	evbuffer_drain(in, evbuffer_get_length(in));
	bev = bufferevent_openssl_filter_new(p->base, p->raw, p->ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(p->ssl);
		p->ssl = NULL;
		ERR_clear_error();
		probe_fail(p, RELAY_PROBE_LOCAL_TLS_FAILED, "cannot create the TLS filter");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	p->bev = bev;
	bufferevent_setcb(p->bev, probe_read_cb, NULL, probe_event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

static void
probe_tls_done(struct relay_probe *p)
{
	enum relay_probe_local bad;
	char why[512];

	p->tls_on = true;
	bad = probe_cert(p, why, sizeof(why));
	probe_detail(p, "%s %s", p->rep.cert.protocol, p->rep.cert.cipher);
	if (bad != RELAY_PROBE_LOCAL_NONE) {
		probe_fail(p, bad, why);
		return;
	}
	probe_detail(p, "certificate %s", p->rep.cert.verified ? "verified" :
	    "NOT verified (verify: false)");
	probe_step_end(p, true);
	if (p->st == PROBE_ST_TLS) {
		p->st = PROBE_ST_GREETING;
		probe_step_begin(p, RELAY_PROBE_GREETING, p->command_ms);
		return;
	}
	/* RFC 3207 4.2: forget what was learnt in clear and ask again. */
	probe_ehlo(p, true);
}

static void
probe_tls_failed(struct relay_probe *p)
{
	unsigned long e = bufferevent_get_openssl_error(p->bev);
	char why[256] = "connection closed during the handshake";

	if (p->first_rx_seen && p->first_rx[0] >= '2' && p->first_rx[0] <= '5' &&
	    p->first_rx[1] >= '0' && p->first_rx[1] <= '9' && p->first_rx[2] >= '0' &&
	    p->first_rx[2] <= '9') {
		ERR_clear_error();
		snprintf(why, sizeof(why), "the server answered in plain text: \"%.3s...\"",
		    (const char *)p->first_rx);
		probe_fail(p, RELAY_PROBE_LOCAL_TLS_PLAINTEXT, why);
		return;
	}
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	probe_fail(p, RELAY_PROBE_LOCAL_TLS_FAILED, why);
}

/* ---- replies ---- */

/* EHLO keywords: remember STARTTLS and AUTH mechanisms, keep the list for the report. */
static void
probe_ehlo_keywords(struct relay_probe *p)
{
	const char *t = p->reply.text, *nl;
	struct buf kw = BUF_INIT;
	bool first = true;

	for (; *t; t = nl ? nl + 1 : t + strlen(t)) {
		size_t n;

		nl = strchr(t, '\n');
		n = nl ? (size_t)(nl - t) : strlen(t);
		if (first) {
			first = false; /* the server's name and greeting */
		} else if (n > 0) {
			char line[512];
			char *tok, *save = NULL;

			snprintf(line, sizeof(line), "%.*s", (int)n, t);
			if (kw.len)
				buf_putc(&kw, '\n');
			buf_append_str(&kw, line);
			if (str_eq_ci(line, n, "STARTTLS"))
				p->offers_starttls = true;
			if (str_has_prefix_ci(line, n, "AUTH ") || str_has_prefix_ci(line, n, "AUTH=")) {
				p->offers_auth = true;
				for (tok = strtok_r(line + 5, " ", &save); tok;
				    tok = strtok_r(NULL, " ", &save)) {
					if (str_eq_ci(tok, strlen(tok), "PLAIN"))
						p->offers_plain = true;
					if (str_eq_ci(tok, strlen(tok), "LOGIN"))
						p->offers_login = true;
				}
			}
		}
		if (nl == NULL)
			break;
	}
	probe_cpy(p->rep.extensions, sizeof(p->rep.extensions), kw.ptr);
	buf_fini(&kw);
}

static void
probe_auth(struct relay_probe *p)
{
	struct buf raw = BUF_INIT, b64 = BUF_INIT;

	p->st = PROBE_ST_AUTH_PLAIN;
	probe_step_begin(p, RELAY_PROBE_AUTH, p->command_ms);
	probe_cpy(p->rep.username, sizeof(p->rep.username), p->username);
	if (p->password == NULL) {
		probe_fail(p, RELAY_PROBE_LOCAL_NO_PASSWORD, p->password_error ? p->password_error :
		    "no password_file configured");
		return;
	}
	if (!p->offers_auth && p->offers_starttls && !p->tls_on) {
		probe_fail(p, RELAY_PROBE_LOCAL_AUTH_NEEDS_TLS, "AUTH is not offered before "
		    "STARTTLS");
		return;
	}
	if (!p->offers_plain && !p->offers_login) {
		probe_fail(p, RELAY_PROBE_LOCAL_AUTH_MISSING, p->offers_auth ? "AUTH offered "
		    "without PLAIN or LOGIN" : "AUTH not offered");
		return;
	}
	if (p->offers_plain) {
		probe_cpy(p->rep.auth_mechanism, sizeof(p->rep.auth_mechanism), "PLAIN");
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		buf_putc(&raw, '\0');
		buf_append_str(&raw, p->username);
		buf_putc(&raw, '\0');
		buf_append_str(&raw, p->password);
		base64_encode(&b64, raw.ptr, raw.len);
		probe_send(p, "AUTH PLAIN %s", b64.ptr);
	} else {
		probe_cpy(p->rep.auth_mechanism, sizeof(p->rep.auth_mechanism), "LOGIN");
		p->st = PROBE_ST_AUTH_LOGIN_USER;
		probe_send(p, "AUTH LOGIN");
	}
	probe_detail(p, "%s as %s", p->rep.auth_mechanism, p->username);
	if (raw.ptr)
		OPENSSL_cleanse(raw.ptr, raw.len);
	if (b64.ptr)
		OPENSSL_cleanse(b64.ptr, b64.len);
	buf_fini(&raw);
	buf_fini(&b64);
}

static void
probe_login_send(struct relay_probe *p, const char *s)
{
	struct buf b64 = BUF_INIT;

	base64_encode(&b64, s, strlen(s));
	probe_send(p, "%s", b64.ptr ? b64.ptr : "");
	if (b64.ptr)
		OPENSSL_cleanse(b64.ptr, b64.len);
	buf_fini(&b64);
}

static void
probe_mail(struct relay_probe *p)
{
	p->st = PROBE_ST_MAIL;
	probe_step_begin(p, RELAY_PROBE_MAIL, p->command_ms);
	probe_detail(p, "MAIL FROM:<%s>", p->mail_from);
	probe_send(p, "MAIL FROM:<%s>", p->mail_from);
}

static void
probe_quit(struct relay_probe *p)
{
	p->st = PROBE_ST_QUIT;
	probe_step_begin(p, RELAY_PROBE_QUIT, p->command_ms);
	probe_send(p, "QUIT");
}

/* After EHLO (and after STARTTLS's EHLO): TLS, AUTH or the envelope, whichever comes next. */
static void
probe_after_ehlo(struct relay_probe *p)
{
	if (p->tls == CONF_TLS_STARTTLS && !p->tls_on) {
		p->st = PROBE_ST_STARTTLS;
		probe_step_begin(p, RELAY_PROBE_STARTTLS, p->command_ms);
		if (!p->offers_starttls) {
			probe_fail(p, RELAY_PROBE_LOCAL_STARTTLS_MISSING, "STARTTLS not offered");
			return;
		}
		probe_send(p, "STARTTLS");
		return;
	}
	if (p->username != NULL) {
		probe_auth(p);
		return;
	}
	probe_mail(p);
}

static void
probe_reply_to_step(struct relay_probe *p)
{
	struct relay_probe_step *s = probe_cur(p);

	s->code = p->reply.code;
	s->enh_class = p->reply.enh_class;
	s->enh_subject = p->reply.enh_subject;
	s->enh_detail = p->reply.enh_detail;
	probe_cpy(s->reply, sizeof(s->reply), p->reply.text);
}

static void
probe_reply(struct relay_probe *p)
{
	int code = p->reply.code;
	bool ok2 = code / 100 == 2;

	/* AUTH's 334 challenges are not shown: they may echo what was sent. */
	if (!(code == 334 && p->st >= PROBE_ST_AUTH_PLAIN && p->st <= PROBE_ST_AUTH_LOGIN_DONE))
		probe_reply_to_step(p);
	switch (p->st) {
	case PROBE_ST_GREETING:
		if (code != 220)
			goto fail;
		probe_step_end(p, true);
		probe_ehlo(p, false);
		return;
	case PROBE_ST_EHLO:
		if (!ok2)
			goto fail;
		probe_ehlo_keywords(p);
		probe_step_end(p, true);
		probe_after_ehlo(p);
		return;
	case PROBE_ST_STARTTLS:
		if (code != 220)
			goto fail;
		p->st = PROBE_ST_STARTTLS_HS;
		probe_tls_start(p);
		return;
	case PROBE_ST_AUTH_LOGIN_USER:
		if (code != 334)
			goto fail;
		p->st = PROBE_ST_AUTH_LOGIN_PASS;
		probe_login_send(p, p->username);
		return;
	case PROBE_ST_AUTH_LOGIN_PASS:
		if (code != 334)
			goto fail;
		p->st = PROBE_ST_AUTH_LOGIN_DONE;
		probe_login_send(p, p->password);
		return;
	case PROBE_ST_AUTH_PLAIN:
	case PROBE_ST_AUTH_LOGIN_DONE:
		if (code != 235)
			goto fail;
		probe_step_end(p, true);
		probe_mail(p);
		return;
	case PROBE_ST_MAIL:
		if (!ok2)
			goto fail;
		probe_step_end(p, true);
		if (p->rcpt_to == NULL) {
			p->st = PROBE_ST_RSET;
			probe_step_begin(p, RELAY_PROBE_RSET, p->command_ms);
			probe_detail(p, "no --to: transaction reset, nothing sent");
			probe_send(p, "RSET");
			return;
		}
		p->st = PROBE_ST_RCPT;
		probe_step_begin(p, RELAY_PROBE_RCPT, p->command_ms);
		probe_detail(p, "RCPT TO:<%s>", p->rcpt_to);
		probe_send(p, "RCPT TO:<%s>", p->rcpt_to);
		return;
	case PROBE_ST_RSET:
		if (!ok2)
			goto fail;
		probe_step_end(p, true);
		probe_quit(p);
		return;
	case PROBE_ST_RCPT:
		if (!ok2)
			goto fail;
		probe_step_end(p, true);
		p->st = PROBE_ST_DATA;
		probe_step_begin(p, RELAY_PROBE_DATA, p->command_ms);
		probe_send(p, "DATA");
		return;
	case PROBE_ST_DATA: {
		struct buf msg = BUF_INIT;

		if (code != 354)
			goto fail;
		p->st = PROBE_ST_DOT;
		probe_message(p, &msg);
		probe_detail(p, "Subject: %s; Message-ID: %s", p->rep.subject, p->rep.message_id);
		bufferevent_write(p->bev, msg.ptr, msg.len);
		buf_fini(&msg);
		return;
	}
	case PROBE_ST_DOT:
		if (!ok2)
			goto fail;
		probe_step_end(p, true);
		probe_quit(p);
		return;
	case PROBE_ST_QUIT:
		probe_step_end(p, true);
		probe_finish(p);
		return;
	default:
		/* A reply nobody asked for (before the handshake ...): a protocol error. */
		probe_fail(p, RELAY_PROBE_LOCAL_BAD_REPLY, "unexpected reply");
		return;
	}
fail:
	probe_fail_reply(p);
}

/* ---- I/O callbacks ---- */

static void
probe_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay_probe *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *why = NULL;
	size_t n;
	char *line;

	while (!p->finishing && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		enum smtp_reply_result r;

		if (p->st == PROBE_ST_STARTTLS_HS || p->st == PROBE_ST_TLS || !p->step_open) {
			free(line);
			continue;
		}
		r = smtp_reply_feed(&p->reply, line, n, &why);
		if (r == SMTP_REPLY_BAD) {
			char t[160];

			snprintf(t, sizeof(t), "malformed reply (%s): \"%.60s\"", why, line);
			free(line);
			probe_fail(p, RELAY_PROBE_LOCAL_BAD_REPLY, t);
			return;
		}
		free(line);
		if (r == SMTP_REPLY_DONE) {
			probe_reply(p);
			smtp_reply_init(&p->reply);
			/* STARTTLS's 220: the rest of the input was drained by the TLS start. */
			if (p->st == PROBE_ST_STARTTLS_HS)
				return;
		}
	}
	if (!p->finishing && evbuffer_get_length(in) > PROBE_LINE_MAX)
		probe_fail(p, RELAY_PROBE_LOCAL_BAD_REPLY, "reply line too long");
}

static void
probe_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay_probe *p = arg;

	(void)bev;
	if (p->finishing)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (p->st == PROBE_ST_CONNECT) {
			probe_step_end(p, true);
			if (p->tls == CONF_TLS_IMPLICIT) {
				p->st = PROBE_ST_TLS;
				probe_step_begin(p, RELAY_PROBE_TLS, p->command_ms);
				probe_tls_start(p);
			} else {
				p->st = PROBE_ST_GREETING;
				probe_step_begin(p, RELAY_PROBE_GREETING, p->command_ms);
			}
			return;
		}
		if (p->st == PROBE_ST_TLS || p->st == PROBE_ST_STARTTLS_HS)
			probe_tls_done(p);
		return;
	}
	if (p->st == PROBE_ST_CONNECT) {
		int e = EVUTIL_SOCKET_ERROR();
		char why[160];

		snprintf(why, sizeof(why), "%s: %s", p->rep.address, e ? strerror(e) :
		    "connection failed");
		if (p->addr_i + 1 < p->addrs.n) {
			probe_detail(p, "%s", why);
			p->addr_i++;
			probe_connect_next(p);
			return;
		}
		probe_fail(p, e == ECONNREFUSED ? RELAY_PROBE_LOCAL_REFUSED :
		    RELAY_PROBE_LOCAL_UNREACHABLE, why);
		return;
	}
	if (p->st == PROBE_ST_TLS || p->st == PROBE_ST_STARTTLS_HS) {
		probe_tls_failed(p);
		return;
	}
	if (p->st == PROBE_ST_QUIT) {
		/* Closing after QUIT without 221 is harmless. */
		probe_detail(p, "closed by the server");
		probe_step_end(p, true);
		probe_finish(p);
		return;
	}
	probe_fail(p, RELAY_PROBE_LOCAL_DISCONNECT, (what & BEV_EVENT_EOF) ?
	    "the server closed the connection" : "connection lost");
}

/* ---- DNS and connect ---- */

static void
probe_connect_next(struct relay_probe *p)
{
	const struct sockaddr_storage *ss = &p->addrs.addrs[p->addr_i];
	char ip[INET6_ADDRSTRLEN] = "?";
	struct timeval tv;

	if (p->bev) {
		bufferevent_free(p->bev);
		p->bev = p->raw = NULL;
	}
	if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
	snprintf(p->rep.address, sizeof(p->rep.address), "%s", ip);
	/* The port travels separately from the resolver's answer. */
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)&p->addrs.addrs[p->addr_i])->sin6_port = htons(
		    (uint16_t)p->port);
	else
		((struct sockaddr_in *)&p->addrs.addrs[p->addr_i])->sin_port = htons(
		    (uint16_t)p->port);
	p->raw = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	HK_ASSERT(p->raw != NULL);
	p->bev = p->raw;
	bufferevent_setcb(p->raw, probe_read_cb, NULL, probe_event_cb, p);
	bufferevent_enable(p->raw, EV_READ | EV_WRITE);
	tv.tv_sec = (time_t)(p->connect_ms / 1000);
	tv.tv_usec = (suseconds_t)((p->connect_ms % 1000) * 1000);
	evtimer_add(p->timer, &tv);
	if (bufferevent_socket_connect(p->raw, (struct sockaddr *)&p->addrs.addrs[p->addr_i],
	    (int)p->addrs.lens[p->addr_i]) != 0) {
		/* Reported through the event callback on the loop (deferred callbacks). */
		log_debug("probe", "connect_failed_at_once", "sess=probe addr=%s", ip);
	}
}

static void
probe_dns_cb(void *arg, const struct dns_addr_result *r)
{
	struct relay_probe *p = arg;
	struct buf list = BUF_INIT;
	size_t i;

	p->dns_pending = false;
	if (p->cancelled) {
		relay_probe_cancel(p);
		return;
	}
	if (r->status != DNS_OK || r->n == 0) {
		char why[200];

		snprintf(why, sizeof(why), "%s: %s%s%s", p->host, dns_status_name(r->status),
		    r->why[0] ? ", " : "", r->why);
		probe_fail(p, r->status == DNS_TEMPFAIL || r->status == DNS_BOGUS ?
		    RELAY_PROBE_LOCAL_DNS_TEMP : RELAY_PROBE_LOCAL_DNS_NXDOMAIN, why);
		return;
	}
	p->addrs = *r;
	for (i = 0; i < r->n; i++) {
		char ip[INET6_ADDRSTRLEN] = "?";
		const struct sockaddr_storage *ss = &r->addrs[i];

		if (ss->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
			    sizeof(ip));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip,
			    sizeof(ip));
		if (i)
			buf_append_str(&list, ", ");
		buf_append_str(&list, ip);
	}
	probe_detail(p, "%s -> %s%s", p->host, list.ptr, r->secure ? " (DNSSEC)" : "");
	buf_fini(&list);
	probe_step_end(p, true);
	p->st = PROBE_ST_CONNECT;
	p->addr_i = 0;
	probe_step_begin(p, RELAY_PROBE_CONNECT, p->connect_ms);
	probe_detail(p, "port %u", p->port);
	probe_connect_next(p);
}

/* ---- life ---- */

struct relay_probe *
relay_probe_start(const struct relay_probe_params *pp, relay_probe_done_fn done_cb, void *arg)
{
	const struct conf_upstream *up = pp->up;
	struct relay_probe *p = xcalloc(1, sizeof(*p));

	p->base = pp->base;
	p->dns = pp->dns;
	p->host = xstrdup(up->host);
	p->helo = xstrdup(up->helo ? up->helo : (pp->helo ? pp->helo : "localhost"));
	p->username = up->username ? xstrdup(up->username) : NULL;
	p->password = pp->password ? xstrdup(pp->password) : NULL;
	p->password_error = pp->password_error ? xstrdup(pp->password_error) : NULL;
	p->ca_file = up->ca_file ? xstrdup(up->ca_file) : NULL;
	if (pp->mail_from)
		p->mail_from = xstrdup(pp->mail_from);
	else if (up->username && relay_probe_addr_is_valid(up->username))
		p->mail_from = xstrdup(up->username);
	else {
		struct buf b = BUF_INIT;

		buf_append_str(&b, "postmaster@");
		buf_append_str(&b, p->helo);
		p->mail_from = buf_steal(&b);
	}
	p->rcpt_to = pp->rcpt_to ? xstrdup(pp->rcpt_to) : NULL;
	p->port = up->port;
	p->tls = up->tls;
	p->verify = up->verify;
	p->connect_ms = pp->connect_timeout_ms ? pp->connect_timeout_ms : PROBE_CONNECT_MS;
	p->command_ms = pp->command_timeout_ms ? pp->command_timeout_ms : PROBE_COMMAND_MS;
	p->now_ms = pp->now_ms;
	p->id = pp->id;
	p->done_cb = done_cb;
	p->arg = arg;
	smtp_reply_init(&p->reply);
	probe_cpy(p->rep.upstream, sizeof(p->rep.upstream), up->name);
	probe_cpy(p->rep.host, sizeof(p->rep.host), up->host);
	p->rep.port = up->port;
	p->rep.tls = up->tls;
	p->rep.verify = up->verify;
	id_format(pp->id, p->rep.id);
	probe_cpy(p->rep.mail_from, sizeof(p->rep.mail_from), p->mail_from);
	probe_cpy(p->rep.rcpt_to, sizeof(p->rep.rcpt_to), p->rcpt_to);
	p->timer = evtimer_new(p->base, probe_timer_cb, p);
	p->finish_ev = event_new(p->base, -1, 0, probe_finish_cb, p);
	HK_ASSERT(p->timer != NULL && p->finish_ev != NULL);
	log_info("probe", "start", "sess=probe upstream=%s host=%s port=%u tls=%s to=%s",
	    log_q(up->name), log_q(up->host), up->port, relay_probe_tls_name(up->tls),
	    p->rcpt_to ? log_q(p->rcpt_to) : "-");
	p->st = PROBE_ST_DNS;
	probe_step_begin(p, RELAY_PROBE_DNS, p->connect_ms);
	p->dns_pending = true;
	dns_addrs(p->dns, p->host, probe_dns_cb, p);
	return p;
}

void
relay_probe_cancel(struct relay_probe *p)
{
	if (p == NULL)
		return;
	/* The resolver cannot forget a query: the probe goes when its answer comes. */
	if (p->dns_pending) {
		p->cancelled = true;
		evtimer_del(p->timer);
		return;
	}
	/* The TLS filter (BEV_OPT_CLOSE_ON_FREE) frees its SSL and the socket under it. */
	if (p->bev)
		bufferevent_free(p->bev);
	if (p->ctx)
		SSL_CTX_free(p->ctx);
	if (p->timer)
		event_free(p->timer);
	if (p->finish_ev)
		event_free(p->finish_ev);
	if (p->password) {
		OPENSSL_cleanse(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->host);
	free(p->helo);
	free(p->username);
	free(p->password_error);
	free(p->ca_file);
	free(p->mail_from);
	free(p->rcpt_to);
	free(p);
}
