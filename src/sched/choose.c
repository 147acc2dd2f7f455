/* choose.c - the pure upstream choice; see choose.h. */
#include <stdint.h>
#include <string.h>

#include "choose.h"

#include "../util/poison.h"

#define CHOOSE_NO_EXTRA SIZE_MAX

/* Why an upstream can never take this message; CHOOSE_CAP_OK when it can. */
enum choose_cap { CHOOSE_CAP_OK, CHOOSE_CAP_SIZE, CHOOSE_CAP_SMTPUTF8, CHOOSE_CAP_8BITMIME };

struct choose_never_row {
	const char *status;
	const char *why;
};

static const struct choose_never_row choose_never_rows[] = {
	[CHOOSE_NEVER_NO_UPSTREAM] = { .status = "5.4.4", .why = "route has no upstream" },
	/* RFC 3463: 5.3.4 message too big for system. */
	[CHOOSE_NEVER_SIZE] = { .status = "5.3.4",
	    .why = "message larger than every upstream's max_size" },
	/* RFC 6531 3.5: the message needs SMTPUTF8 and no next hop offers it. */
	[CHOOSE_NEVER_SMTPUTF8] = { .status = "5.6.7",
	    .why = "message needs SMTPUTF8 and no upstream offers it" },
	/* RFC 3463: 5.6.3 conversion required but not supported. */
	[CHOOSE_NEVER_8BITMIME] = { .status = "5.6.3",
	    .why = "message needs 8BITMIME and no upstream offers it" },
	[CHOOSE_NEVER_MIXED] = { .status = "5.3.0",
	    .why = "no upstream can take this message (size, SMTPUTF8 or 8BITMIME)" },
};

static enum choose_cap
choose_capable(const struct upstream_state *st, const struct choose_msg *msg)
{
	uint64_t max = upstream_max_size(st);

	if (max != 0 && msg->size > max)
		return CHOOSE_CAP_SIZE;
	/* Before the first EHLO we do not know: try, and the session reports what it saw. */
	if (!upstream_ehlo_is_known(st))
		return CHOOSE_CAP_OK;
	if (msg->needs_smtputf8 && !upstream_ehlo_has_smtputf8(st))
		return CHOOSE_CAP_SMTPUTF8;
	if (msg->needs_8bitmime && !upstream_ehlo_has_8bitmime(st))
		return CHOOSE_CAP_8BITMIME;
	return CHOOSE_CAP_OK;
}

static uint64_t
choose_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void
choose_never(struct choose_result *out, enum choose_never n)
{
	out->kind = CHOOSE_NEVER;
	out->never = n;
	out->status = choose_never_rows[n].status;
	out->why = choose_never_rows[n].why;
}

/* The state of one capable, not excluded upstream at now: SEND into out, or its wait. */
static bool
choose_try(const struct upstream_state *st, const struct choose_msg *msg, uint64_t now_ms,
    struct choose_result *out, uint64_t *wait_ms, bool *on_event)
{
	const struct conf_upstream_limits *lim = upstream_limits(st);
	uint64_t t = now_ms, rate_at, allow, n;
	bool event = false, probe = false;

	switch (upstream_breaker_at(st, now_ms)) {
	case UPSTREAM_BREAKER_CLOSED:
		break;
	case UPSTREAM_BREAKER_OPEN:
		t = choose_max(t, upstream_open_until_ms(st));
		break;
	case UPSTREAM_BREAKER_HALF_OPEN:
		if (upstream_probe_is_busy(st))
			event = true;
		else
			probe = true;
		break;
	}
	t = choose_max(t, upstream_paused_until_ms(st));
	t = choose_max(t, upstream_quota_free_at_ms(st, now_ms, 1));
	if (upstream_conn_is_full(st))
		event = true;
	rate_at = upstream_rate_next_ms(st, now_ms);
	if (t == now_ms && !event && rate_at - now_ms <= CHOOSE_SPILL_MS) {
		allow = upstream_quota_allowance(st, now_ms);
		n = msg->n_rcpt;
		if (lim->recipients_per_message != 0 && n > lim->recipients_per_message)
			n = lim->recipients_per_message;
		if (n > allow)
			n = allow;
		out->kind = CHOOSE_SEND;
		out->n_rcpt = n;
		out->probe = probe;
		out->at_ms = rate_at;
		return true;
	}
	/* Not now: the earliest moment it could be, or only an event when no time is known. */
	t = choose_max(t, rate_at);
	if (event) {
		*on_event = true;
		if (t == now_ms)
			return false;
	}
	if (t < *wait_ms)
		*wait_ms = t;
	return false;
}

static void
choose_run(const struct choose_route *r, const struct choose_msg *msg, const bool *excluded,
    size_t extra, uint64_t now_ms, struct choose_result *out)
{
	size_t i, n_never = 0, n_skipped = 0, counts[4] = { 0 };
	uint64_t wait_ms = UINT64_MAX;
	bool on_event = false;

	HK_ASSERT(r != NULL && msg != NULL && out != NULL);
	HK_ASSERT(r->order != NULL || r->n_order == 0);
	HK_ASSERT(msg->n_rcpt >= 1);
	memset(out, 0, sizeof(*out));
	for (i = 0; i < r->n_order; i++) {
		size_t u = r->order[i];
		const struct upstream_state *st;
		enum choose_cap cap;

		HK_ASSERT(u < r->n_states && r->states[u] != NULL);
		st = r->states[u];
		cap = choose_capable(st, msg);
		if (cap != CHOOSE_CAP_OK) {
			n_never++;
			counts[cap]++;
			continue;
		}
		if (u == extra || (excluded != NULL && excluded[u])) {
			n_skipped++;
			continue;
		}
		if (choose_try(st, msg, now_ms, out, &wait_ms, &on_event)) {
			out->upstream = u;
			return;
		}
	}
	if (n_never == r->n_order) {
		if (r->n_order == 0)
			choose_never(out, CHOOSE_NEVER_NO_UPSTREAM);
		else if (counts[CHOOSE_CAP_SIZE] == n_never)
			choose_never(out, CHOOSE_NEVER_SIZE);
		else if (counts[CHOOSE_CAP_SMTPUTF8] == n_never)
			choose_never(out, CHOOSE_NEVER_SMTPUTF8);
		else if (counts[CHOOSE_CAP_8BITMIME] == n_never)
			choose_never(out, CHOOSE_NEVER_8BITMIME);
		else
			choose_never(out, CHOOSE_NEVER_MIXED);
		return;
	}
	if (n_never + n_skipped == r->n_order) {
		out->kind = CHOOSE_NONE;
		out->why = "every upstream that can take the message was tried";
		return;
	}
	out->kind = CHOOSE_WAIT;
	out->at_ms = wait_ms;
	out->on_event = on_event;
	out->why = "every eligible upstream is down, paused, full or busy";
}

void
choose_upstream(const struct choose_route *r, const struct choose_msg *msg, const bool *excluded,
    uint64_t now_ms, struct choose_result *out)
{
	choose_run(r, msg, excluded, CHOOSE_NO_EXTRA, now_ms, out);
}

bool
choose_is_last(const struct choose_route *r, const struct choose_msg *msg, const bool *excluded,
    size_t upstream, uint64_t now_ms)
{
	struct choose_result res;

	HK_ASSERT(upstream < r->n_states);
	choose_run(r, msg, excluded, upstream, now_ms, &res);
	return res.kind != CHOOSE_SEND;
}

const char *
choose_kind_name(enum choose_kind k)
{
	static const char *const names[] = {
		[CHOOSE_SEND] = "send",
		[CHOOSE_WAIT] = "wait",
		[CHOOSE_NONE] = "none",
		[CHOOSE_NEVER] = "never",
	};

	return (size_t)k < HK_ARRAY_LEN(names) ? names[k] : "unknown";
}
