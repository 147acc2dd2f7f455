/*
 * test_smtpc.c - the SMTP client against a scripted fake server on loopback, in-process on the
 * same event loop: transactions, PIPELINING, HELO fallback, AUTH, STARTTLS (certificate made
 * here), local refusals, timeouts, disconnects, connection reuse, hostile replies; and the
 * dot-stuffing of bodies (DESIGN.md 7, 13; RFC 5321, 2920, 3207, 4954).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "relay/smtpc.h"
#include "relay/smtpc_body.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/poison.h"

/* ---- a certificate for mx.test, made once ---- */

static EVP_PKEY *g_key;
static X509 *g_cert;
static char g_ca_file[64];

static void
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static int
group_setup(void **state)
{
	X509_NAME *n;
	FILE *f;
	int fd;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	g_key = EVP_EC_gen("P-256");
	assert_non_null(g_key);
	g_cert = X509_new();
	X509_set_version(g_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(g_cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(g_cert), 86400);
	X509_set_pubkey(g_cert, g_key);
	n = X509_get_subject_name(g_cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1,
	    0);
	X509_set_issuer_name(g_cert, n);
	add_ext(g_cert, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(g_cert, NID_subject_alt_name, "DNS:mx.test");
	assert_true(X509_sign(g_cert, g_key, EVP_sha256()) > 0);
	snprintf(g_ca_file, sizeof(g_ca_file), "/tmp/test_smtpc_ca_XXXXXX");
	fd = mkstemp(g_ca_file);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, g_cert), 1);
	fclose(f);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	unlink(g_ca_file);
	X509_free(g_cert);
	EVP_PKEY_free(g_key);
	return 0;
}

/* ---- the fake server ---- */

struct rule {
	const char *prefix;     /* command line prefix */
	const char *reply;      /* reply lines, CRLF-terminated */
	const char *then[3];    /* replies to the next lines, whatever they say */
};

struct fake {
	struct event_base *base;
	struct evconnlistener *lis;
	int port;
	struct bufferevent *bev;
	SSL_CTX *ssl_ctx;
	bool implicit_tls;
	const char *greeting;   /* NULL: "220 fake ESMTP" */
	const char *ehlo;       /* NULL: a plain EHLO reply */
	const struct rule *rules;
	const char *forced[3];
	size_t n_forced, next_forced;
	const char *starttls_extra; /* bytes injected after "220 ready" */
	const char *dot_reply;  /* NULL: default; "" never replies */
	bool close_in_data;
	bool starttls_then_close; /* answer 220 to STARTTLS, then close on the ClientHello */
	bool close_on_input;
	bool hold_until_data;   /* replies from MAIL on wait for DATA (proves pipelining) */
	bool in_data;
	struct buf held;
	struct buf data;        /* the last DATA bytes as received, up to and with the dot */
	struct buf cmds;        /* command lines, each ending "\n" */
	int n_conns, n_mail;
	bool got_quit, closed;
};

static void fake_read_cb(struct bufferevent *bev, void *arg);
static void fake_event_cb(struct bufferevent *bev, short what, void *arg);

static void
fake_send(struct fake *f, const char *s)
{
	if (f->hold_until_data && f->n_mail > 0)
		buf_append_str(&f->held, s);
	else
		bufferevent_write(f->bev, s, strlen(s));
}

static void
fake_close(struct fake *f)
{
	if (f->bev) {
		bufferevent_free(f->bev);
		f->bev = NULL;
	}
	f->closed = true;
}

static SSL_CTX *
fake_ssl_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, g_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, g_key), 1);
	return ctx;
}

static void
fake_starttls(struct fake *f)
{
	struct bufferevent *tls;

	if (f->ssl_ctx == NULL)
		f->ssl_ctx = fake_ssl_ctx();
	tls = bufferevent_openssl_filter_new(f->base, f->bev, SSL_new(f->ssl_ctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(tls);
	f->bev = tls;
	bufferevent_setcb(tls, fake_read_cb, NULL, fake_event_cb, f);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static const char *
fake_reply_for(struct fake *f, const char *line, size_t n)
{
	const struct rule *r;

	if (f->next_forced < f->n_forced)
		return f->forced[f->next_forced++];
	for (r = f->rules; r && r->prefix; r++) {
		if (n >= strlen(r->prefix) && memcmp(line, r->prefix, strlen(r->prefix)) == 0) {
			size_t i;

			f->n_forced = f->next_forced = 0;
			for (i = 0; i < 3 && r->then[i]; i++)
				f->forced[f->n_forced++] = r->then[i];
			return r->reply;
		}
	}
	if (n >= 4 && memcmp(line, "EHLO", 4) == 0)
		return f->ehlo ? f->ehlo : "250-fake.test\r\n250 8BITMIME\r\n";
	if (n >= 4 && memcmp(line, "HELO", 4) == 0)
		return "250 fake.test\r\n";
	if (n >= 4 && memcmp(line, "MAIL", 4) == 0)
		return "250 2.1.0 ok\r\n";
	if (n >= 4 && memcmp(line, "RCPT", 4) == 0)
		return "250 2.1.5 ok\r\n";
	if (n >= 4 && memcmp(line, "DATA", 4) == 0)
		return "354 go ahead\r\n";
	if (n >= 8 && memcmp(line, "STARTTLS", 8) == 0)
		return "220 2.0.0 ready\r\n";
	if (n >= 4 && memcmp(line, "QUIT", 4) == 0)
		return "221 2.0.0 bye\r\n";
	return "250 ok\r\n";
}

/* Data mode: collect until CRLF.CRLF, then answer the dot. */
static void
fake_data(struct fake *f, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);
	const char *end;

	if (n == 0)
		return;
	if (f->close_in_data) {
		fake_close(f);
		return;
	}
	buf_append(&f->data, evbuffer_pullup(in, (ssize_t)n), n);
	evbuffer_drain(in, n);
	end = f->data.ptr;
	if (!((f->data.len == 3 && memcmp(end, ".\r\n", 3) == 0) ||
	    (f->data.len >= 5 && memcmp(end + f->data.len - 5, "\r\n.\r\n", 5) == 0)))
		return;
	f->in_data = false;
	if (f->dot_reply == NULL)
		fake_send(f, "250 2.0.0 queued as FAKE\r\n");
	else if (f->dot_reply[0])
		fake_send(f, f->dot_reply);
}

static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;

	(void)bev;
	while (f->bev) {
		struct evbuffer *in = bufferevent_get_input(f->bev);
		char *line;
		size_t n;
		const char *reply;

		if (f->close_on_input) {
			fake_close(f);
			return;
		}
		if (f->in_data) {
			fake_data(f, in);
			return;
		}
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL)
			return;
		buf_append(&f->cmds, line, n);
		buf_putc(&f->cmds, '\n');
		reply = fake_reply_for(f, line, n);
		if (n >= 4 && memcmp(line, "MAIL", 4) == 0)
			f->n_mail++;
		if (n >= 4 && memcmp(line, "QUIT", 4) == 0)
			f->got_quit = true;
		if (n == 4 && memcmp(line, "DATA", 4) == 0) {
			fake_send(f, reply);
			if (f->hold_until_data) {
				f->hold_until_data = false;
				bufferevent_write(f->bev, f->held.ptr, f->held.len);
				buf_reset(&f->held);
			}
			if (reply[0] == '3') {
				f->in_data = true;
				buf_reset(&f->data);
			}
		} else if (n == 8 && memcmp(line, "STARTTLS", 8) == 0 && reply[0] == '2') {
			/* One write: the injected bytes arrive with the 220. */
			struct buf b = BUF_INIT;

			buf_append_str(&b, reply);
			if (f->starttls_extra)
				buf_append_str(&b, f->starttls_extra);
			bufferevent_write(f->bev, b.ptr, b.len);
			buf_fini(&b);
			evbuffer_drain(in, evbuffer_get_length(in));
			free(line);
			if (f->starttls_then_close)
				f->close_on_input = true;
			else
				fake_starttls(f);
			return;
		} else {
			fake_send(f, reply);
		}
		free(line);
	}
}

static void
fake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fake_close(f);
}

static void
fake_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct fake *f = arg;
	const char *g = f->greeting ? f->greeting : "220 fake.test ESMTP\r\n";

	(void)lis;
	(void)sa;
	(void)salen;
	f->n_conns++;
	if (f->bev)
		fake_close(f);
	f->closed = false;
	if (f->implicit_tls) {
		if (f->ssl_ctx == NULL)
			f->ssl_ctx = fake_ssl_ctx();
		f->bev = bufferevent_openssl_socket_new(f->base, fd, SSL_new(f->ssl_ctx),
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	assert_non_null(f->bev);
	bufferevent_setcb(f->bev, fake_read_cb, NULL, fake_event_cb, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
	bufferevent_write(f->bev, g, strlen(g));
}

static void
fake_start(struct fake *f, struct event_base *base)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	f->base = base;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lis = evconnlistener_new_bind(base, fake_accept_cb, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->lis);
	assert_int_equal(getsockname(evconnlistener_get_fd(f->lis), (struct sockaddr *)&sin, &len),
	    0);
	f->port = ntohs(sin.sin_port);
}

static void
fake_stop(struct fake *f)
{
	fake_close(f);
	evconnlistener_free(f->lis);
	SSL_CTX_free(f->ssl_ctx);
	buf_fini(&f->held);
	buf_fini(&f->data);
	buf_fini(&f->cmds);
}

static bool
fake_saw(const struct fake *f, const char *s)
{
	return f->cmds.ptr && strstr(f->cmds.ptr, s) != NULL;
}

/* ---- the client side ---- */

struct run {
	struct event_base *base;
	struct fake fake;
	struct smtpc_params p;
	struct smtpc *c;
	const struct smtpc_tx *tx;
	int sends;              /* transactions to run on ready, one after the other */
	bool free_in_ready, keep_after_tx;
	int ready, fails, txs;
	bool idle_in_tx;
	struct smtpc_caps caps;
	char tls[128];
	struct smtpc_failure fail;
	bool ok, maybe;
	struct smtpc_failure final;
	struct smtpc_rcpt_result rcpts[4];
	bool done, expired;
};

static void run_tx_cb(void *arg, bool ok, const struct smtpc_failure *final,
    const struct smtpc_rcpt_result *rcpts, bool maybe_delivered);

static void
run_ready_cb(void *arg, const struct smtpc_caps *caps, const char *tls)
{
	struct run *r = arg;

	r->ready++;
	r->caps = *caps;
	snprintf(r->tls, sizeof(r->tls), "%s", tls);
	if (r->free_in_ready) {
		smtpc_free(r->c);
		r->c = NULL;
		r->done = true;
		return;
	}
	if (r->tx && r->sends > 0) {
		r->sends--;
		smtpc_send(r->c, r->tx, run_tx_cb);
		return;
	}
	r->done = true;
}

static void
run_tx_cb(void *arg, bool ok, const struct smtpc_failure *final,
    const struct smtpc_rcpt_result *rcpts, bool maybe_delivered)
{
	struct run *r = arg;
	size_t i;

	r->txs++;
	r->ok = ok;
	r->maybe = maybe_delivered;
	r->final = *final;
	r->idle_in_tx = smtpc_is_idle(r->c);
	for (i = 0; i < r->tx->n_rcpts && i < 4; i++)
		r->rcpts[i] = rcpts[i];
	if (r->sends > 0 && smtpc_is_idle(r->c)) {
		r->sends--;
		smtpc_send(r->c, r->tx, run_tx_cb);
		return;
	}
	if (!r->keep_after_tx) {
		/* Freeing inside the callback must be safe. */
		smtpc_free(r->c);
		r->c = NULL;
	}
	r->done = true;
}

static void
run_fail_cb(void *arg, const struct smtpc_failure *f)
{
	struct run *r = arg;

	r->fails++;
	r->fail = *f;
	smtpc_free(r->c);
	r->c = NULL;
	r->done = true;
}

static void
run_expire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run the loop until *flag or ms pass; returns *flag. */
static bool
run_until(struct run *r, const bool *flag, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	struct event *ev;

	r->expired = false;
	ev = evtimer_new(r->base, run_expire_cb, &r->expired);
	evtimer_add(ev, &tv);
	while (!*flag && !r->expired)
		event_base_loop(r->base, EVLOOP_ONCE);
	event_free(ev);
	return *flag;
}

static void
run_init(struct run *r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->p.addr;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	assert_non_null(r->base);
	fake_start(&r->fake, r->base);
	r->p.base = r->base;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons((uint16_t)r->fake.port);
	r->p.addr_len = sizeof(*sin);
	r->p.host = "mx.test";
	r->p.helo = "client.test";
	r->p.tls = SMTPC_TLS_NONE;
	r->p.sess_id = 7;
	r->p.command_timeout_ms = 3000;
	r->p.dot_timeout_ms = 3000;
	r->p.connect_timeout_ms = 3000;
}

static void
run_start(struct run *r)
{
	r->c = smtpc_new(&r->p, run_ready_cb, run_fail_cb, r);
	assert_non_null(r->c);
	assert_true(run_until(r, &r->done, 5000));
}

static void
run_fini(struct run *r)
{
	smtpc_free(r->c);
	r->c = NULL;
	fake_stop(&r->fake);
	/* Let deferred frees run before the base goes. */
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_base_free(r->base);
}

static const char *const one_rcpt[] = { "b@y.test" };
static const struct buf small_body = { .ptr = (char *)"Subject: hi\r\n\r\nhello\r\n", .len = 22,
	.cap = 23 };
static const struct smtpc_tx tx_one = { .mail_from = "a@x.test", .size = 22, .n_rcpts = 1,
	.rcpts = one_rcpt, .body = &small_body };

/* Capture the log (debug and the SMTP client transcript) in a file. */
static int
log_capture_start(void)
{
	char name[] = "/tmp/test_smtpc_log_XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	log_set_fd(fd);
	log_set_level(LOG_LEVEL_DEBUG);
	log_set_trace(TRACE_SMTPC);
	return fd;
}

static void
log_capture_end(int fd, struct buf *out)
{
	char tmp[4096];
	ssize_t n;

	log_set_fd(2);
	log_set_level(LOG_LEVEL_INFO);
	log_set_trace(0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(out, tmp, (size_t)n);
	close(fd);
}

/* ---- tests ---- */

static void
test_plain_transaction(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.ready, 1);
	assert_int_equal(r.fails, 0);
	assert_int_equal(r.txs, 1);
	assert_true(r.ok);
	assert_false(r.maybe);
	assert_true(r.idle_in_tx);
	assert_true(r.rcpts[0].accepted);
	assert_int_equal(r.final.code, 250);
	assert_int_equal(r.final.stage, SMTPC_STAGE_DOT);
	assert_true(r.caps.esmtp);
	assert_true(r.caps.size);
	assert_true(r.caps.max_size == 1000000);
	assert_false(r.caps.pipelining);
	assert_true(fake_saw(&r.fake, "EHLO client.test\nMAIL FROM:<a@x.test> SIZE=22\n"
	    "RCPT TO:<b@y.test>\nDATA\n"));
	assert_string_equal(r.fake.data.ptr, "Subject: hi\r\n\r\nhello\r\n.\r\n");
	/* smtpc_free() in tx_cb said QUIT. */
	assert_true(run_until(&r, &r.fake.got_quit, 2000));
	run_fini(&r);
}

static void
test_pipelining_mixed_rcpts(void **state)
{
	static const char *const rcpts[] = { "a@y.test", "b@y.test", "c@y.test" };
	static const char *const notify[] = { "FAILURE", NULL, "SUCCESS,DELAY" };
	static const char *const orcpt[] = { "rfc822;a@y.test", NULL, NULL };
	static const struct rule rules[] = {
		{ .prefix = "RCPT TO:<b@", .reply = "550 5.1.1 no such user\r\n" },
		{ .prefix = NULL },
	};
	struct smtpc_tx tx = tx_one;
	struct run r;

	(void)state;
	tx.n_rcpts = 3;
	tx.rcpts = rcpts;
	tx.notify = notify;
	tx.orcpt = orcpt;
	tx.ret = "HDRS";
	tx.envid = "abc+2Bdef";
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 DSN\r\n";
	r.fake.rules = rules;
	/* The fake answers nothing before DATA: a lockstep client would hang. */
	r.fake.hold_until_data = true;
	r.tx = &tx;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.fails, 0);
	assert_int_equal(r.txs, 1);
	assert_true(r.ok);
	assert_true(r.rcpts[0].accepted);
	assert_false(r.rcpts[1].accepted);
	assert_int_equal(r.rcpts[1].fail.code, 550);
	assert_int_equal(r.rcpts[1].fail.enh_class, 5);
	assert_int_equal(r.rcpts[1].fail.enh_subject, 1);
	assert_int_equal(r.rcpts[1].fail.enh_detail, 1);
	assert_int_equal(r.rcpts[1].fail.stage, SMTPC_STAGE_RCPT);
	assert_true(r.rcpts[2].accepted);
	assert_true(fake_saw(&r.fake, "MAIL FROM:<a@x.test> RET=HDRS ENVID=abc+2Bdef\n"
	    "RCPT TO:<a@y.test> NOTIFY=FAILURE ORCPT=rfc822;a@y.test\nRCPT TO:<b@y.test>\n"
	    "RCPT TO:<c@y.test> NOTIFY=SUCCESS,DELAY\nDATA\n"));
	run_fini(&r);
}

static void
test_pipelining_all_refused_sends_rset(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "RCPT", .reply = "550 5.1.1 no\r\n" },
		{ .prefix = "DATA", .reply = "554 5.5.1 no valid recipients\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 PIPELINING\r\n";
	r.fake.rules = rules;
	r.tx = &tx_one;
	r.sends = 1;
	r.keep_after_tx = true;
	run_start(&r);
	assert_int_equal(r.txs, 1);
	assert_false(r.ok);
	assert_false(r.maybe);
	assert_false(r.rcpts[0].accepted);
	assert_int_equal(r.rcpts[0].fail.code, 550);
	assert_true(r.idle_in_tx);
	assert_true(smtpc_is_idle(r.c));
	assert_true(fake_saw(&r.fake, "DATA\nRSET\n"));
	assert_null(r.fake.data.ptr);
	run_fini(&r);
}

static void
test_lockstep_all_refused_no_data(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "RCPT", .reply = "550 5.7.1 relay denied\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.txs, 1);
	assert_false(r.ok);
	assert_int_equal(r.final.code, 550);
	assert_int_equal(r.final.stage, SMTPC_STAGE_RCPT);
	assert_true(fake_saw(&r.fake, "RCPT TO:<b@y.test>\nRSET\n"));
	assert_false(fake_saw(&r.fake, "DATA"));
	run_fini(&r);
}

static void
test_mail_refused(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "MAIL", .reply = "553 5.1.8 bad sender\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.txs, 1);
	assert_false(r.ok);
	assert_int_equal(r.final.code, 553);
	assert_int_equal(r.final.stage, SMTPC_STAGE_MAIL);
	assert_int_equal(r.rcpts[0].fail.code, 0);
	assert_false(fake_saw(&r.fake, "RCPT"));
	run_fini(&r);
}

static void
test_helo_fallback(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "EHLO", .reply = "502 5.5.1 what?\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.ready, 1);
	assert_false(r.caps.esmtp);
	assert_true(r.ok);
	assert_true(fake_saw(&r.fake,
	    "EHLO client.test\nHELO client.test\nMAIL FROM:<a@x.test>\n"));
	run_fini(&r);
}

static void
test_greeting_421(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.greeting = "421 4.3.2 too busy\r\n";
	run_start(&r);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_GREETING);
	assert_int_equal(r.fail.code, 421);
	assert_int_equal(r.fail.enh_class, 4);
	assert_int_equal(r.fail.enh_subject, 3);
	assert_string_equal(r.fail.text, "too busy");
	run_fini(&r);
}

static void
test_auth_plain(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "AUTH", .reply = "235 2.7.0 ok\r\n" },
		{ .prefix = NULL },
	};
	struct buf log = BUF_INIT;
	struct run r;
	int fd;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH LOGIN PLAIN\r\n";
	r.fake.rules = rules;

	r.p.username = "user";
	r.p.password = "pass";
	fd = log_capture_start();
	run_start(&r);
	log_capture_end(fd, &log);
	assert_int_equal(r.ready, 1);
	assert_true(r.caps.auth_plain);
	assert_true(r.caps.auth_login);
	/* base64("\0user\0pass") */
	assert_true(fake_saw(&r.fake, "\nAUTH PLAIN AHVzZXIAcGFzcw==\n"));
	/* The transcript shows the exchange, never the credentials. */
	assert_non_null(strstr(log.ptr, "line=\"AUTH PLAIN ****\""));
	assert_non_null(strstr(log.ptr, "sess=c7"));
	assert_null(strstr(log.ptr, "AHVzZXIAcGFzcw"));
	assert_null(strstr(log.ptr, "pass"));
	buf_fini(&log);
	run_fini(&r);
}

static void
test_auth_login(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "AUTH LOGIN", .reply = "334 VXNlcm5hbWU6\r\n",
		  .then = { "334 UGFzc3dvcmQ6\r\n", "235 2.7.0 ok\r\n" } },
		{ .prefix = NULL },
	};
	struct buf log = BUF_INIT;
	struct run r;
	int fd;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH=LOGIN\r\n";
	r.fake.rules = rules;

	r.p.username = "user";
	r.p.password = "pass";
	fd = log_capture_start();
	run_start(&r);
	log_capture_end(fd, &log);
	assert_int_equal(r.ready, 1);
	assert_true(fake_saw(&r.fake, "\nAUTH LOGIN\ndXNlcg==\ncGFzcw==\n"));
	assert_null(strstr(log.ptr, "dXNlcg=="));
	assert_null(strstr(log.ptr, "cGFzcw=="));
	assert_non_null(strstr(log.ptr, "line=\"****\""));
	buf_fini(&log);
	run_fini(&r);
}

static void
test_auth_refused(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "AUTH", .reply = "535 5.7.8 authentication failed\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
	r.fake.rules = rules;
	r.p.username = "user";
	r.p.password = "wrong";
	run_start(&r);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_AUTH);
	assert_int_equal(r.fail.code, 535);
	run_fini(&r);
}

static void
test_auth_without_mechanism_or_tls(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH CRAM-MD5\r\n";
	r.p.username = "user";
	r.p.password = "pass";
	run_start(&r);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_AUTH_UNSUPPORTED);
	run_fini(&r);

	/* Opportunistic without STARTTLS offered: never AUTH in clear. */
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.p.username = "user";
	r.p.password = "pass";
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_AUTH_UNSUPPORTED);
	assert_false(fake_saw(&r.fake, "AUTH"));
	run_fini(&r);
}

static void
run_starttls(struct run *r, const char *host, bool verify, const char *extra)
{
	char err[256];

	run_init(r);
	r->fake.ehlo = "250-fake.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n";
	r->fake.starttls_extra = extra;
	r->p.tls = SMTPC_TLS_STARTTLS;
	r->p.host = host;
	r->p.verify = verify;
	r->p.ssl_ctx = smtpc_ssl_ctx_new(verify ? g_ca_file : NULL, err, sizeof(err));
	assert_non_null(r->p.ssl_ctx);
	r->tx = &tx_one;
	r->sends = 1;
	run_start(r);
	SSL_CTX_free(r->p.ssl_ctx);
}

static void
test_starttls_no_verify(void **state)
{
	struct run r;

	(void)state;
	run_starttls(&r, "mx.test", false, NULL);
	assert_int_equal(r.fails, 0);
	assert_int_equal(r.ready, 1);
	assert_true(r.ok);
	assert_true(strncmp(r.tls, "TLSv1.", 6) == 0);
	assert_non_null(strchr(r.tls, ':'));
	/* RFC 3207 4.2: EHLO again over TLS. */
	assert_true(fake_saw(&r.fake, "EHLO client.test\nSTARTTLS\nEHLO client.test\nMAIL"));
	run_fini(&r);
}

static void
test_starttls_verify_host(void **state)
{
	struct run r;

	(void)state;
	run_starttls(&r, "mx.test", true, NULL);
	assert_int_equal(r.fails, 0);
	assert_true(r.ok);
	run_fini(&r);

	run_starttls(&r, "other.test", true, NULL);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_TLS);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_CERT_INVALID);
	assert_non_null(strstr(r.fail.text, "hostname mismatch"));
	assert_false(fake_saw(&r.fake, "MAIL"));
	run_fini(&r);
}

static void
test_starttls_untrusted_chain(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
	r.p.tls = SMTPC_TLS_STARTTLS;
	r.p.verify = true;
	/* An empty trust store: the self-signed certificate is not trusted. */
	r.p.ssl_ctx = SSL_CTX_new(TLS_client_method());
	run_start(&r);
	SSL_CTX_free(r.p.ssl_ctx);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_CERT_INVALID);
	run_fini(&r);
	(void)err;
}

static void
test_starttls_missing(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
	r.p.tls = SMTPC_TLS_STARTTLS;
	r.p.username = "user";
	r.p.password = "pass";
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_STARTTLS_MISSING);
	assert_false(fake_saw(&r.fake, "AUTH"));
	assert_false(fake_saw(&r.fake, "MAIL"));
	run_fini(&r);
}

static void
test_starttls_refused(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "STARTTLS", .reply = "454 4.7.0 TLS not available\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
	r.fake.rules = rules;
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_STARTTLS);
	assert_int_equal(r.fail.code, 454);
	run_fini(&r);
}

static void
test_opportunistic_plain_when_not_offered(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_true(r.ok);
	assert_string_equal(r.tls, "");
	run_fini(&r);
}

static void
test_opportunistic_tls_without_ctx(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.p.verify = true; /* ignored: opportunistic never verifies */
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.fails, 0);
	assert_true(r.ok);
	assert_true(strncmp(r.tls, "TLSv1.", 6) == 0);
	run_fini(&r);
}

static void
test_opportunistic_failed_handshake_fails(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
	r.fake.starttls_then_close = true;
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_TLS);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_TLS_FAILED);
	assert_false(fake_saw(&r.fake, "MAIL"));
	run_fini(&r);
}

static void
test_starttls_injection_dropped(void **state)
{
	struct run r;

	(void)state;
	run_starttls(&r, "mx.test", true, "250-fake.test\r\n250 AUTH PLAIN\r\n");
	assert_int_equal(r.fails, 0);
	assert_int_equal(r.ready, 1);
	assert_true(r.ok);
	assert_true(strncmp(r.tls, "TLSv1.", 6) == 0);
	run_fini(&r);
}

static void
test_implicit_tls(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	run_init(&r);
	r.fake.implicit_tls = true;
	r.p.tls = SMTPC_TLS_IMPLICIT;
	r.p.verify = true;
	r.p.ssl_ctx = smtpc_ssl_ctx_new(g_ca_file, err, sizeof(err));
	assert_non_null(r.p.ssl_ctx);
	r.tx = &tx_one;
	r.sends = 1;
	run_start(&r);
	SSL_CTX_free(r.p.ssl_ctx);
	assert_int_equal(r.fails, 0);
	assert_true(r.ok);
	assert_true(strncmp(r.tls, "TLSv1.", 6) == 0);
	assert_true(fake_saw(&r.fake, "EHLO client.test\nMAIL"));
	run_fini(&r);
}

static void
test_ssl_ctx_bad_ca_file(void **state)
{
	char err[256];

	(void)state;
	assert_null(smtpc_ssl_ctx_new("/nonexistent/ca.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

static void
test_dot_stuffing_on_the_wire(void **state)
{
	static const char body[] = ".lead\r\nmid\r\n.\r\nbare\nlf\r\n..two\r\nend";
	const struct buf b = { .ptr = (char *)body, .len = sizeof(body) - 1, .cap = sizeof(body) };
	struct smtpc_tx tx = tx_one;
	struct run r;

	(void)state;
	tx.body = &b;
	run_init(&r);
	r.tx = &tx;
	r.sends = 1;
	run_start(&r);
	assert_true(r.ok);
	assert_string_equal(r.fake.data.ptr,
	    "..lead\r\nmid\r\n..\r\nbare\r\nlf\r\n...two\r\nend\r\n.\r\n");
	run_fini(&r);
}

static void
test_body_stuffing_any_chunking(void **state)
{
	static const char body[] = ".a\r\n\r\n.\r\nb\rc\n.d\r\n";
	static const char want[] = "..a\r\n\r\n..\r\nb\r\nc\r\n..d\r\n.\r\n";
	size_t max;

	(void)state;
	for (max = 1; max < sizeof(body) + 2; max++) {
		struct smtpc_body bs;
		struct buf out = BUF_INIT;
		int guard = 0;

		smtpc_body_init(&bs, body, sizeof(body) - 1);
		while (!smtpc_body_next(&bs, &out, max))
			assert_true(++guard < 100);
		assert_true(smtpc_body_next(&bs, &out, max));
		assert_string_equal(out.ptr, want);
		buf_fini(&out);
	}
	{
		struct smtpc_body bs;
		struct buf out = BUF_INIT;

		smtpc_body_init(&bs, "", 0);
		assert_true(smtpc_body_next(&bs, &out, 10));
		assert_string_equal(out.ptr, ".\r\n");
		buf_fini(&out);
	}
}

static void
test_local_refusals(void **state)
{
	struct smtpc_tx tx = tx_one;
	struct run r;

	(void)state;
	tx.size = 5000;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 SIZE 1000\r\n";
	r.tx = &tx;
	r.sends = 1;
	r.keep_after_tx = true;
	run_start(&r);
	assert_int_equal(r.txs, 1);
	assert_false(r.ok);
	assert_int_equal(r.final.local, SMTPC_LOCAL_TOO_BIG);
	assert_int_equal(r.final.code, 0);
	assert_true(r.idle_in_tx);
	assert_false(fake_saw(&r.fake, "MAIL"));

	/* The session is still usable: the same server lacks 8BITMIME and SMTPUTF8. */
	tx.size = 10;
	tx.eightbit = true;
	r.done = false;
	smtpc_send(r.c, &tx, run_tx_cb);
	assert_true(run_until(&r, &r.done, 2000));
	assert_int_equal(r.final.local, SMTPC_LOCAL_NEEDS_8BITMIME);
	tx.eightbit = false;
	tx.smtputf8 = true;
	r.done = false;
	smtpc_send(r.c, &tx, run_tx_cb);
	assert_true(run_until(&r, &r.done, 2000));
	assert_int_equal(r.final.local, SMTPC_LOCAL_NEEDS_SMTPUTF8);
	tx.smtputf8 = false;
	tx.mail_from = "a@x.test>\r\nRCPT TO:<evil@z.test";
	r.done = false;
	smtpc_send(r.c, &tx, run_tx_cb);
	assert_true(run_until(&r, &r.done, 2000));
	assert_int_equal(r.final.local, SMTPC_LOCAL_BAD_ENVELOPE);
	assert_false(fake_saw(&r.fake, "MAIL"));
	assert_int_equal(r.txs, 4);
	run_fini(&r);
}

static void
test_8bit_params_when_offered(void **state)
{
	struct smtpc_tx tx = tx_one;
	struct run r;

	(void)state;
	tx.eightbit = true;
	tx.smtputf8 = true;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
	r.tx = &tx;
	r.sends = 1;
	run_start(&r);
	assert_true(r.ok);
	assert_true(fake_saw(&r.fake, "MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8\n"));
	run_fini(&r);
}

static void
test_timeout_after_dot_maybe_delivered(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.dot_reply = "";
	r.p.dot_timeout_ms = 200;
	r.tx = &tx_one;
	r.sends = 1;
	r.keep_after_tx = true;
	run_start(&r);
	assert_int_equal(r.txs, 1);
	assert_false(r.ok);
	assert_true(r.maybe);
	assert_int_equal(r.final.local, SMTPC_LOCAL_TIMEOUT);
	assert_int_equal(r.final.stage, SMTPC_STAGE_DOT);
	assert_false(r.idle_in_tx);
	/* Not freed in tx_cb: the session failure follows at once. */
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_TIMEOUT);
	run_fini(&r);
}

static void
test_disconnect_after_dot(void **state)
{
	static const struct rule rules[] = { { .prefix = NULL } };
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	r.fake.dot_reply = "";
	r.tx = &tx_one;
	r.sends = 1;
	r.c = NULL;
	r.c = smtpc_new(&r.p, run_ready_cb, run_fail_cb, &r);
	/* Wait for the data, then drop the connection without a reply. */
	while (!(r.fake.data.len >= 5 && !r.fake.in_data) && !r.done)
		event_base_loop(r.base, EVLOOP_ONCE);
	fake_close(&r.fake);
	assert_true(run_until(&r, &r.done, 2000));
	assert_int_equal(r.txs, 1);
	assert_true(r.maybe);
	assert_int_equal(r.final.local, SMTPC_LOCAL_DISCONNECT);
	assert_int_equal(r.fails, 0); /* freed in tx_cb: no fail_cb */
	run_fini(&r);
}

static void
test_close_mid_data(void **state)
{
	struct smtpc_tx tx = tx_one;
	struct buf big = BUF_INIT;
	struct run r;
	size_t i;

	(void)state;
	for (i = 0; i < 60000; i++)
		buf_append_str(&big, "012345678901234567890123456789012345678901234567\r\n");
	tx.body = &big;
	tx.size = big.len;
	run_init(&r);
	r.fake.close_in_data = true;
	r.tx = &tx;
	r.sends = 1;
	run_start(&r);
	assert_int_equal(r.txs, 0);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_DATA);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_DISCONNECT);
	run_fini(&r);
	buf_fini(&big);
}

static void
test_connection_refused(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct run r;
	int fd;

	(void)state;
	run_init(&r);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	((struct sockaddr_in *)&r.p.addr)->sin_port = sin.sin_port;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_CONNECT);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_REFUSED);
	assert_int_equal(r.fake.n_conns, 0);
	run_fini(&r);
}

static void
test_connection_reuse(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.ehlo = "250-fake.test\r\n250 PIPELINING\r\n";
	r.tx = &tx_one;
	r.sends = 2;
	run_start(&r);
	assert_int_equal(r.txs, 2);
	assert_true(r.ok);
	assert_int_equal(r.fake.n_conns, 1);
	assert_int_equal(r.fake.n_mail, 2);
	assert_false(fake_saw(&r.fake, "RSET"));
	run_fini(&r);
}

static void
test_malformed_reply(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "EHLO", .reply = "25O oops\r\n" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_EHLO);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_BAD_REPLY);
	run_fini(&r);
}

static void
test_hostile_replies_bounded(void **state)
{
	struct buf g = BUF_INIT;
	struct run r;
	int i;

	(void)state;
	for (i = 0; i < 5000; i++)
		buf_append_str(&g, "220-spam spam spam spam spam spam spam spam\r\n");
	buf_append_str(&g, "220 done\r\n");
	run_init(&r);
	r.fake.greeting = g.ptr;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_BAD_REPLY);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_GREETING);
	run_fini(&r);

	/* One endless line without CRLF. */
	buf_reset(&g);
	buf_append_str(&g, "220 ");
	for (i = 0; i < 100000; i++)
		buf_putc(&g, 'x');
	run_init(&r);
	r.fake.greeting = g.ptr;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_BAD_REPLY);
	assert_non_null(strstr(r.fail.text, "too long"));
	run_fini(&r);
	buf_fini(&g);
}

static void
test_command_timeout(void **state)
{
	static const struct rule rules[] = {
		{ .prefix = "EHLO", .reply = "" },
		{ .prefix = NULL },
	};
	struct run r;

	(void)state;
	run_init(&r);
	r.fake.rules = rules;
	r.p.command_timeout_ms = 150;
	run_start(&r);
	assert_int_equal(r.fails, 1);
	assert_int_equal(r.fail.stage, SMTPC_STAGE_EHLO);
	assert_int_equal(r.fail.local, SMTPC_LOCAL_TIMEOUT);
	run_fini(&r);
}

static void
test_free_in_ready_stops_callbacks(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.free_in_ready = true;
	run_start(&r);
	assert_int_equal(r.ready, 1);
	assert_true(run_until(&r, &r.fake.got_quit, 2000));
	r.done = false;
	run_until(&r, &r.done, 200);
	assert_int_equal(r.ready, 1);
	assert_int_equal(r.fails, 0);
	assert_int_equal(r.txs, 0);
	run_fini(&r);
}

static void
test_free_before_connect(void **state)
{
	struct run r;

	(void)state;
	run_init(&r);
	r.c = smtpc_new(&r.p, run_ready_cb, run_fail_cb, &r);
	smtpc_free(r.c);
	r.c = NULL;
	run_until(&r, &r.done, 200);
	assert_int_equal(r.ready + r.fails + r.txs, 0);
	run_fini(&r);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(smtpc_stage_name(SMTPC_STAGE_DOT), "dot");
	assert_string_equal(smtpc_stage_name(SMTPC_STAGE_COUNT), "unknown");
	assert_string_equal(smtpc_local_name(SMTPC_LOCAL_CERT_INVALID), "cert_invalid");
	assert_string_equal(smtpc_local_name(SMTPC_LOCAL_BAD_ENVELOPE), "bad_envelope");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_transaction),
		cmocka_unit_test(test_pipelining_mixed_rcpts),
		cmocka_unit_test(test_pipelining_all_refused_sends_rset),
		cmocka_unit_test(test_lockstep_all_refused_no_data),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_greeting_421),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_auth_login),
		cmocka_unit_test(test_auth_refused),
		cmocka_unit_test(test_auth_without_mechanism_or_tls),
		cmocka_unit_test(test_starttls_no_verify),
		cmocka_unit_test(test_starttls_verify_host),
		cmocka_unit_test(test_starttls_untrusted_chain),
		cmocka_unit_test(test_starttls_missing),
		cmocka_unit_test(test_starttls_refused),
		cmocka_unit_test(test_opportunistic_plain_when_not_offered),
		cmocka_unit_test(test_opportunistic_tls_without_ctx),
		cmocka_unit_test(test_opportunistic_failed_handshake_fails),
		cmocka_unit_test(test_starttls_injection_dropped),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_ssl_ctx_bad_ca_file),
		cmocka_unit_test(test_dot_stuffing_on_the_wire),
		cmocka_unit_test(test_body_stuffing_any_chunking),
		cmocka_unit_test(test_local_refusals),
		cmocka_unit_test(test_8bit_params_when_offered),
		cmocka_unit_test(test_timeout_after_dot_maybe_delivered),
		cmocka_unit_test(test_disconnect_after_dot),
		cmocka_unit_test(test_close_mid_data),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_connection_reuse),
		cmocka_unit_test(test_malformed_reply),
		cmocka_unit_test(test_hostile_replies_bounded),
		cmocka_unit_test(test_command_timeout),
		cmocka_unit_test(test_free_in_ready_stops_callbacks),
		cmocka_unit_test(test_free_before_connect),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
