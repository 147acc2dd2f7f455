/*
 * choose.h - which upstream takes a message now (DESIGN.md 7 "Choosing an upstream").
 *
 * Pure: the answer depends only on the route, the upstream states, the message facts, the
 * exclude set and now_ms; nothing is changed. The caller acts on a CHOOSE_SEND by calling
 * upstream_send_begin() with the result's at_ms, n_rcpt and probe.
 *
 * Rules, in route order, starting at the TOP for every message (so traffic returns to the primary
 * by itself once it recovers):
 * - never for this message (skipped; all of them never -> CHOOSE_NEVER): max_size or the EHLO SIZE
 *   below the message size, SMTPUTF8 or 8BITMIME needed but the last EHLO did not offer it;
 * - not now (skipped, but remembered for the wait): breaker open, half-open with its probe already
 *   in flight, SPILL-paused, per_day or per_hour window full;
 * - spill: all `connections` busy, or the next `rate` slot more than CHOOSE_SPILL_MS away;
 * - otherwise SEND, at the rate slot (now or at most CHOOSE_SPILL_MS later), with
 *   min(recipients left, recipients_per_message, quota allowance) recipients: the caller puts the
 *   rest into further transactions. A half-open upstream is taken as its one probe.
 * If no upstream can send now: CHOOSE_WAIT until the earliest window reset, half-open time, pause
 * end or rate slot among the skipped ones, and on_event when a busy connection or an in-flight
 * probe is among the reasons (re-run when one ends: its time is unknown).
 *
 * Ownership: the route borrows its arrays; results point only to static strings.
 * Thread: any (reads the states; the loop owns them).
 * Failure: none; misuse (index out of range, no recipients) is a bug and aborts.
 */
#ifndef HK_SCHED_CHOOSE_H
#define HK_SCHED_CHOOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

/* A rate or connection wait longer than this spills the message to the next upstream. */
#define CHOOSE_SPILL_MS 1000u

/* A route's upstreams in order, and the runtime state of every configured upstream. */
struct choose_route {
	const size_t *order; /* indexes into states (conf_route.upstreams) */
	size_t n_order;
	const struct upstream_state *const *states; /* by conf upstream index */
	size_t n_states;
};

struct choose_msg {
	uint64_t size;       /* bytes as sent (CRLF body plus added headers) */
	bool needs_smtputf8; /* non-ASCII addresses or headers */
	bool needs_8bitmime; /* 8-bit body */
	uint64_t n_rcpt;     /* recipients still to deliver, >= 1 */
};

enum choose_kind {
	CHOOSE_SEND,  /* send to upstream now (or at at_ms, within CHOOSE_SPILL_MS) */
	CHOOSE_WAIT,  /* nothing can take it now: re-run at at_ms and/or on an upstream event */
	CHOOSE_NONE,  /* all that could ever take it are excluded: the last verdict stands */
	CHOOSE_NEVER, /* no upstream of the route can ever take it: BOUNCE with status and why */
};

enum choose_never {
	CHOOSE_NEVER_NO_UPSTREAM, /* the route lists no upstream */
	CHOOSE_NEVER_SIZE,        /* larger than every max_size / EHLO SIZE */
	CHOOSE_NEVER_SMTPUTF8,    /* needs SMTPUTF8, no upstream offers it */
	CHOOSE_NEVER_8BITMIME,    /* needs 8BITMIME, no upstream offers it */
	CHOOSE_NEVER_MIXED,       /* each upstream fails for one of the above, not all the same */
};

struct choose_result {
	enum choose_kind kind;
	size_t upstream; /* SEND: conf upstream index */
	uint64_t n_rcpt; /* SEND: recipients in this transaction (the first n_rcpt left) */
	bool probe;      /* SEND: the breaker is half-open; this message is its one probe */
	uint64_t at_ms;  /* SEND: start (>= now); WAIT: re-run then (UINT64_MAX: no timer) */
	bool on_event;   /* WAIT: also re-run when a connection is freed or a probe ends */
	enum choose_never never; /* NEVER: which reason */
	const char *status;      /* NEVER: enhanced status code for the DSN ("5.3.4") */
	const char *why;         /* WAIT, NONE, NEVER: a short static text for logs and DSNs */
};

/*
 * Choose an upstream for msg at now_ms. excluded is NULL or has n_states entries; true entries
 * (upstreams that already gave a NEXT verdict in this pass) are passed over.
 */
void choose_upstream(const struct choose_route *r, const struct choose_msg *msg,
    const bool *excluded, uint64_t now_ms, struct choose_result *out);

/*
 * True when upstream is the last eligible one for msg: with it and the excluded ones left out, no
 * upstream can take the message now (choose_upstream() would not answer CHOOSE_SEND). A NEXT-class
 * failure on the last eligible upstream becomes DEFER (4xx) or BOUNCE (5xx), DESIGN.md 7.
 */
bool choose_is_last(const struct choose_route *r, const struct choose_msg *msg,
    const bool *excluded, size_t upstream, uint64_t now_ms);

/* "send", "wait", "none", "never". */
const char *choose_kind_name(enum choose_kind k);

#endif
