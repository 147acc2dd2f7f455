/*
 * maillog.h - the email log: every message and every attempt, in SQLite (DESIGN.md 8).
 *
 * maillog is the only writer. Calls on the loop only queue an event (copied); one db writer
 * thread inserts them in batches (one transaction per batch, WAL, synchronous=FULL) and runs
 * done callbacks on the loop through jobs completions. Schema migrations run at open. The spool
 * stays the source of truth: the log is derived and can be rebuilt.
 * Thread: loop thread (the writer thread is internal).
 */
#ifndef HK_MAILLOG_H
#define HK_MAILLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"
#include "../spool/spool_format.h"
#include "../util/err.h"

struct maillog;

enum maillog_event {
	MAILLOG_RECEIVED = 0,
	MAILLOG_ATTEMPT,
	MAILLOG_SENT,
	MAILLOG_DEFERRED,
	MAILLOG_BOUNCED,
	MAILLOG_EXPIRED,
	MAILLOG_RESENT,
	MAILLOG_SUPPRESSED,
	MAILLOG_COMPLAINT,
	MAILLOG_HELD,
	MAILLOG_RELEASED,
	MAILLOG_DELETED,
	MAILLOG_EVENT_COUNT,
};

/*
 * One delivery attempt to one recipient (or, rcpt NULL, to every recipient still queued or
 * deferred). Updates the recipient's attempts, last reply and upstream; never its status (that is
 * maillog_status()). Attempts with result "sent" feed maillog_upstream_counts().
 */
struct maillog_attempt {
	uint64_t id;
	uint64_t time_ms;
	const char *rcpt;        /* NULL: all recipients of the transaction */
	const char *upstream;    /* upstream name, or "mx" */
	const char *remote_host; /* host name */
	const char *remote_addr; /* IP text */
	const char *tls;         /* "TLSv1.3:..." or "" */
	int code;                /* reply code, 0 for local failures */
	const char *enhanced;    /* "5.1.1" or "" */
	const char *text;        /* reply text or local reason */
	uint64_t duration_ms;
	const char *result;      /* "sent", "deferred", "bounced", "next", "spill" */
	bool maybe_delivered;
};

/*
 * Open (create) <state>/hikyaku.db, apply schema migrations and start the writer thread (a
 * 1-thread "db" pool on hub). NULL and err when the state directory is missing or unwritable or
 * the database cannot be opened or migrated.
 */
struct maillog *maillog_open(const char *state_dir, struct jobs *hub, struct hk_err *err);
/*
 * Flush queued events (waiting on hub's completions, which may run other pools' done_fns too)
 * and close. NULL is a no-op.
 */
void maillog_close(struct maillog *ml);

/* A message was accepted: its envelope and (for search) subject from the body's header. */
void maillog_received(struct maillog *ml, const struct spool_env *env, const char *subject);
void maillog_attempt(struct maillog *ml, const struct maillog_attempt *a);
/*
 * A recipient changed status (sent, deferred, bounced, expired, suppressed, held, ...); rcpt NULL:
 * every recipient the event may apply to. Final is final: deferred and held apply only to
 * queued/deferred recipients, expired and deleted only to unfinished ones (queued, deferred,
 * held), released turns held back into queued; sent, bounced and suppressed apply to any (a DSN
 * or complaint may come back after delivery). resent and complaint only record the event, and
 * received/attempt passed here are recorded as plain events. detail is the reply or reason.
 * The message status is then recomputed: the worst unfinished recipient status, held > deferred
 * > queued; once all are final, the worst final one, bounced > expired > deleted > suppressed >
 * sent. "deleted" is a status added to DESIGN.md 14's list for an admin delete.
 */
void maillog_status(struct maillog *ml, uint64_t id, const char *rcpt, enum maillog_event ev,
    uint64_t time_ms, const char *detail);

/*
 * A resend: new_id (already logged with maillog_received) was made from old_id's kept body.
 * Sets the new message's resent_from and records a "resent" event on both (text: the other id).
 */
void maillog_resent(struct maillog *ml, uint64_t new_id, uint64_t old_id, uint64_t time_ms);

/* id's body was kept for resend (bodies_keep): sets the message's body_kept flag. */
void maillog_body_kept(struct maillog *ml, uint64_t id);

/*
 * Retention (log.retention): the writer deletes, in one batch, up to limit messages with their
 * recipients and events, oldest ID first, choosing only finished ones: every recipient final
 * (sent, bounced, expired, deleted, suppressed), received and last changed before cutoff_ms, and
 * no event at or after cutoff_ms. A message still queued, deferred or held is never chosen.
 * done_cb then runs on the loop with rc 0 and the IDs deleted (borrowed for the call; n < limit
 * means nothing more is due), or rc -1 (the batch failed; nothing was deleted).
 */
typedef void (*maillog_prune_fn)(void *arg, int rc, const uint64_t *ids, size_t n);
void maillog_prune(struct maillog *ml, uint64_t cutoff_ms, size_t limit, maillog_prune_fn done_cb,
    void *arg);

/*
 * Run done_cb on the loop once every event queued so far is committed (the spool finishes a
 * message only after its terminal events are durable). rc is -1 when a batch holding events
 * queued before the barrier failed twice and was dropped. Always called from a jobs completion,
 * never from inside maillog_barrier().
 */
void maillog_barrier(struct maillog *ml, void (*done_cb)(void *arg, int rc), void *arg);

/*
 * Per upstream, recipients accepted since since_ms, per minute (to rebuild quota windows).
 * Synchronous, on a separate read connection: committed rows only. minute_ms is the start of
 * the minute (ms since the epoch); calls come in time order.
 */
typedef void (*maillog_count_fn)(void *arg, const char *upstream, uint64_t minute_ms,
    uint64_t count);
HK_MUST_CHECK int maillog_upstream_counts(struct maillog *ml, uint64_t since_ms,
    maillog_count_fn cb, void *arg, struct hk_err *err);

/* Events queued and not yet committed (metrics, back-pressure). */
size_t maillog_pending(const struct maillog *ml);
/* Events lost to batches that failed twice since open (metrics, alerts). */
uint64_t maillog_dropped(const struct maillog *ml);
const char *maillog_event_name(enum maillog_event ev);

#endif
