/*
 * httpc.c - libcurl multi on the libevent loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to call it back (timer
 * callback); each socket gets one persistent event, the multi handle one timer. Whenever an
 * event fires we hand it to curl_multi_socket_action() and then collect finished transfers
 * with curl_multi_info_read(). Done callbacks run only from there, never from inside a curl
 * callback, so they may start new transfers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "httpc.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define HTTPC_BODY_KEEP 512
#define HTTPC_RETRY_AFTER_MAX (7u * 86400u)

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct httpc_xfer *xfers;
	size_t n_active;
};

struct httpc_xfer {
	struct httpc *h;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char *username, *password;
	httpc_done_fn done;
	void *ctx;
	struct buf reply;          /* first HTTPC_BODY_KEEP bytes */
	char retry_after[64];
	bool has_retry_after;
	uint64_t started_ms;
	char errbuf[CURL_ERROR_SIZE];
	struct httpc_xfer *prev, *next;
};

/* One watched socket: its event, owned through curl_multi_assign(). */
struct httpc_sock {
	struct event *ev;
	curl_socket_t fd;
};

static bool httpc_curl_ready;

/* ---- pure helpers ---- */

bool
httpc_is_ok(const struct httpc_result *r)
{
	return r->status >= 200 && r->status <= 299;
}

bool
httpc_is_retryable(const struct httpc_result *r)
{
	if (r->transport_error || r->status == 0)
		return true;
	return r->status == 408 || r->status == 425 || r->status == 429 || r->status >= 500;
}

int
httpc_retry_after_parse(const char *v, uint64_t now_ms, uint64_t *out_ms)
{
	uint64_t secs;
	time_t t;
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' ||
	    v[n - 1] == '\n'))
		n--;
	if (n == 0)
		return -1;
	/* RFC 9110 10.2.3: delay-seconds or an HTTP-date. */
	if (v[0] >= '0' && v[0] <= '9') {
		if (num_parse_u64(v, n, UINT64_MAX, &secs) == -1)
			return -1;
		if (secs > HTTPC_RETRY_AFTER_MAX)
			secs = HTTPC_RETRY_AFTER_MAX;
		*out_ms = secs * 1000;
		return 0;
	}
	{
		char date[64];

		if (str_copyn(date, sizeof(date), v, n) == -1)
			return -1;
		t = curl_getdate(date, NULL);
	}
	if (t == (time_t)-1)
		return -1;
	if ((uint64_t)t * 1000 <= now_ms) {
		*out_ms = 0;
		return 0;
	}
	*out_ms = (uint64_t)t * 1000 - now_ms;
	if (*out_ms > (uint64_t)HTTPC_RETRY_AFTER_MAX * 1000)
		*out_ms = (uint64_t)HTTPC_RETRY_AFTER_MAX * 1000;
	return 0;
}

uint64_t
httpc_retry_delay_ms(const struct httpc_result *r, unsigned attempt, uint64_t base_ms,
    uint64_t max_ms)
{
	uint64_t d = base_ms;
	unsigned i;

	if (r != NULL && (r->status == 429 || r->status == 503) && r->has_retry_after)
		return r->retry_after_ms < max_ms ? r->retry_after_ms : max_ms;
	for (i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}

/* ---- curl plumbing ---- */

static void httpc_check_done(struct httpc *h);

static void
httpc_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	(void)curl_multi_socket_action(h->multi, fd, flags, &running);
	httpc_check_done(h);
}

static int
httpc_socket_fn(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct httpc *h = userp;
	struct httpc_sock *hs = socketp;
	short events = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			event_free(hs->ev);
			free(hs);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (hs == NULL) {
		hs = xcalloc(1, sizeof(*hs));
		hs->fd = s;
		curl_multi_assign(h->multi, s, hs);
	} else {
		event_free(hs->ev);
	}
	hs->ev = event_new(h->base, s, events, httpc_sock_cb, h);
	if (hs->ev == NULL)
		hk_panic("event_new failed");
	event_add(hs->ev, NULL);
	return 0;
}

static void
httpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int running;

	(void)fd;
	(void)what;
	(void)curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check_done(h);
}

static int
httpc_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	/* 0 means "at once": still through the loop, never from inside curl. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

static size_t
httpc_write_fn(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_xfer *x = arg;
	size_t len = size * n;

	if (x->reply.len < HTTPC_BODY_KEEP)
		buf_append(&x->reply, p, len < HTTPC_BODY_KEEP - x->reply.len ? len :
		    HTTPC_BODY_KEEP - x->reply.len);
	return len;
}

static size_t
httpc_header_fn(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_xfer *x = arg;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t vlen = len - (sizeof(name) - 1);

		if (vlen < sizeof(x->retry_after)) {
			memcpy(x->retry_after, p + sizeof(name) - 1, vlen);
			x->retry_after[vlen] = '\0';
			x->has_retry_after = true;
		}
	}
	return len;
}

static void
httpc_unlink(struct httpc_xfer *x)
{
	struct httpc *h = x->h;

	if (x->prev)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	h->n_active--;
}

static void
httpc_xfer_free(struct httpc_xfer *x)
{
	curl_multi_remove_handle(x->h->multi, x->easy);
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x->username);
	free(x->password);
	buf_fini(&x->reply);
	free(x);
}

static void
httpc_finish(struct httpc_xfer *x, CURLcode rc)
{
	struct httpc_result r;
	long status = 0;

	memset(&r, 0, sizeof(r));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	r.status = rc == CURLE_OK ? status : 0;
	r.transport_error = rc != CURLE_OK;
	r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
	r.error = rc == CURLE_OK ? "" : (x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	if (x->has_retry_after &&
	    httpc_retry_after_parse(x->retry_after, clock_now_ms(), &r.retry_after_ms) == 0)
		r.has_retry_after = true;
	buf_putc(&x->reply, '\0');
	r.body = x->reply.ptr;
	r.body_len = x->reply.len - 1;
	r.duration_ms = clock_mono_ms() - x->started_ms;
	httpc_unlink(x);
	x->done(x->ctx, &r);
	httpc_xfer_free(x);
}

static void
httpc_check_done(struct httpc *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct httpc_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		HK_ASSERT(x != NULL);
		httpc_finish(x, msg->data.result);
	}
}

/* ---- public ---- */

struct httpc *
httpc_new(struct event_base *base, struct hk_err *err)
{
	struct httpc *h;

	if (!httpc_curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return (void)hk_err_set(err, HK_E_CONFIG, "libcurl cannot start"), NULL;
		httpc_curl_ready = true;
	}
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, httpc_timer_cb, h);
	if (h->multi == NULL || h->timer == NULL) {
		hk_err_set(err, HK_E_CONFIG, "libcurl multi handle cannot be created");
		httpc_free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_fn);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_fn);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	while (h->xfers != NULL) {
		struct httpc_xfer *x = h->xfers;

		httpc_unlink(x);
		httpc_xfer_free(x);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->timer)
		event_free(h->timer);
	free(h);
}

size_t
httpc_active(const struct httpc *h)
{
	return h->n_active;
}

struct httpc_xfer *
httpc_post(struct httpc *h, const struct httpc_req *r, httpc_done_fn done, void *ctx,
    struct hk_err *err)
{
	struct httpc_xfer *x;
	struct buf line = BUF_INIT;
	size_t i;

	if (strncasecmp(r->url, "http://", 7) != 0 && strncasecmp(r->url, "https://", 8) != 0) {
		hk_err_set(err, HK_E_CONFIG, "not an http(s) URL");
		return NULL;
	}
	x = xcalloc(1, sizeof(*x));
	x->h = h;
	x->done = done;
	x->ctx = ctx;
	x->easy = curl_easy_init();
	if (x->easy == NULL) {
		free(x);
		hk_err_set(err, HK_E_BUSY, "libcurl: no handle");
		return NULL;
	}
	x->body = xmemdup(r->body_len ? r->body : "", r->body_len + 1);
	buf_printf(&line, "Content-Type: %s", r->content_type);
	x->headers = curl_slist_append(x->headers, line.ptr);
	/* No "Expect: 100-continue" round trip for small bodies. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	for (i = 0; i < r->n_headers; i++)
		x->headers = curl_slist_append(x->headers, r->headers[i]);
	buf_fini(&line);
	curl_easy_setopt(x->easy, CURLOPT_URL, r->url);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(r->timeout_ms < 10000 ? r->timeout_ms : 10000));
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "hikyaku-alert/1");
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, httpc_write_fn);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, httpc_header_fn);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	if (r->username != NULL) {
		x->username = xstrdup(r->username);
		x->password = xstrdup(r->password ? r->password : "");
		curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(x->easy, CURLOPT_USERNAME, x->username);
		curl_easy_setopt(x->easy, CURLOPT_PASSWORD, x->password);
	}
	x->started_ms = clock_mono_ms();
	x->next = h->xfers;
	if (x->next)
		x->next->prev = x;
	h->xfers = x;
	h->n_active++;
	if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
		httpc_unlink(x);
		httpc_xfer_free(x);
		hk_err_set(err, HK_E_BUSY, "libcurl: cannot add the transfer");
		return NULL;
	}
	return x;
}

void
httpc_cancel(struct httpc_xfer *x)
{
	if (x == NULL)
		return;
	httpc_unlink(x);
	httpc_xfer_free(x);
}
