/*
 * pflog.h - Postfix-compatible delivery lines, so pflogsumm and similar tools read hikyaku's
 * deliveries (DESIGN.md 9):
 *
 *   hikyaku/smtp[812]: 0193F2A1C4000007: to=<a@example.net>, relay=smtp.example[198.51.100.7]:587,
 *     delay=1.9, delays=0.02/0.01/0.9/0.97, dsn=2.0.0, status=sent (250 2.0.0 OK)
 *
 * delays are a/b/c/d as Postfix defines them: before the queue manager, in the queue, connection
 * set-up (DNS, connect, greeting, TLS, AUTH), transmission.
 * Targets: "stderr", "syslog" (facility mail) or a file path (appended, syslog-style prefix).
 * Thread: loop thread.
 */
#ifndef HK_PFLOG_H
#define HK_PFLOG_H

#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"

struct pflog_entry {
	const char *qid;
	const char *to;
	const char *orig_to;    /* ORCPT address, NULL when absent or equal */
	const char *relay_host; /* "none" when no connection was made */
	const char *relay_addr; /* NULL: no [addr] part */
	unsigned port;
	uint64_t received_ms, attempt_start_ms, connected_ms, end_ms;
	const char *dsn;        /* "2.0.0" */
	const char *status;     /* "sent", "deferred", "bounced", "expired" */
	const char *reply;      /* the reply or reason, shown in parentheses */
};

struct pflog;

/* Open target with tag ("hikyaku"); NULL target means off (returns NULL, no error). */
struct pflog *pflog_open(const char *target, const char *tag, struct hk_err *err);
void pflog_close(struct pflog *p);
/* Append the message part of a line ("QID: to=<...>, ... status=sent (...)") to out. Pure. */
void pflog_format(struct buf *out, const struct pflog_entry *e);
/* Write one line (no-op when p is NULL). */
void pflog_write(struct pflog *p, const struct pflog_entry *e);

#endif
