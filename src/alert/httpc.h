/*
 * httpc.h - outgoing HTTP requests for the alert channels: libcurl's multi interface driven by
 * the libevent loop (CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION mapped to events and one
 * timer), so a slow or dead endpoint never blocks the loop (DESIGN.md 2 and 10).
 *
 * One request is one POST; the outcome (HTTP status, or a transport error) comes back once,
 * on the loop, through the request's done callback. Only http:// and https:// are allowed, no
 * redirect is followed (an alert must not be bounced to another host), certificates are
 * verified. Retrying is the caller's choice: httpc_is_retryable() and httpc_retry_delay_ms()
 * say when and how long (Retry-After honoured on 429 and 503).
 * Ownership: the request's strings are copied by httpc_post(); the result given to done is
 * borrowed for the call.
 * Thread: loop thread only (the pure helpers: any).
 */
#ifndef HK_HTTPC_H
#define HK_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../util/common.h"
#include "../util/err.h"

struct httpc;
struct httpc_xfer;

struct httpc_req {
	const char *url;
	const char *content_type;   /* "application/json" ... */
	const char *const *headers; /* extra "Name: value" lines */
	size_t n_headers;
	const char *body;
	size_t body_len;
	const char *username;       /* HTTP basic auth when not NULL */
	const char *password;
	uint64_t timeout_ms;        /* whole request */
};

struct httpc_result {
	long status;             /* HTTP status; 0 when no reply arrived */
	bool transport_error;    /* connect, TLS, timeout, reset ... (status 0) */
	bool timed_out;
	const char *error;       /* one line: the transport error, or "" */
	bool has_retry_after;
	uint64_t retry_after_ms; /* from Retry-After (delta seconds or an HTTP date) */
	const char *body;        /* the first bytes of the reply body (NUL-terminated) */
	size_t body_len;
	uint64_t duration_ms;
};

typedef void (*httpc_done_fn)(void *ctx, const struct httpc_result *r);

/* A client on base. NULL and err when libcurl cannot be set up. */
struct httpc *httpc_new(struct event_base *base, struct hk_err *err);
/* Abort every transfer (their done callbacks are not called) and free. NULL: no-op. */
void httpc_free(struct httpc *h);

/*
 * Start POSTing r. done runs exactly once, later on the loop, unless httpc_cancel() comes
 * first. NULL and err when the request cannot be set up (bad URL scheme, out of handles).
 */
struct httpc_xfer *httpc_post(struct httpc *h, const struct httpc_req *r, httpc_done_fn done,
    void *ctx, struct hk_err *err);
/* Abort x; its done callback will not run. NULL: no-op. */
void httpc_cancel(struct httpc_xfer *x);
/* Transfers in flight. */
size_t httpc_active(const struct httpc *h);

/* Pure helpers. */

/* Is a later attempt worth it: transport errors, 408, 425, 429 and 5xx; never other 4xx. */
bool httpc_is_retryable(const struct httpc_result *r);
/* Is this a success (2xx)? */
bool httpc_is_ok(const struct httpc_result *r);
/*
 * Parse a Retry-After value: delta seconds ("120") or an HTTP date, relative to now_ms (wall
 * clock). 0 and *out_ms (0 for a date in the past); -1 when malformed.
 */
HK_MUST_CHECK int httpc_retry_after_parse(const char *v, uint64_t now_ms, uint64_t *out_ms);
/*
 * Wait before attempt number attempt + 1 (attempt >= 1 just failed): Retry-After when r (may be
 * NULL) is a 429 or 503 that carried one, else base_ms doubled per attempt; both capped at
 * max_ms.
 */
uint64_t httpc_retry_delay_ms(const struct httpc_result *r, unsigned attempt, uint64_t base_ms,
    uint64_t max_ms);

#endif
