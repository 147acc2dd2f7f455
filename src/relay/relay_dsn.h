/*
 * relay_dsn.h - delivery status notifications to senders (RFC 3464), queued as new messages.
 *
 * A DSN goes to the envelope sender for recipients that bounced or expired, when their NOTIFY
 * asks for failures (or gave none: RFC 3461 4.1), never to the null sender (so DSNs never loop),
 * with MAIL FROM:<>, through the normal routes: it is committed to the spool like any message and
 * handed to the scheduler.
 * Thread: loop thread.
 */
#ifndef HK_RELAY_DSN_H
#define HK_RELAY_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "../conf/conf.h"
#include "../db/maillog.h"
#include "../sched/sched.h"
#include "../spool/spool.h"
#include "../util/buf.h"
#include "../util/id.h"

struct relay_dsn_rcpt {
	size_t index;           /* into env->rcpts */
	bool expired;           /* expired (retry.max_age) rather than bounced */
	const char *status;     /* enhanced status "5.1.1" */
	int code;               /* the remote reply code, 0 for a local failure */
	const char *diagnostic; /* the remote reply or the reason */
	const char *remote;     /* "host [addr]" of the last attempt, "" when none */
};

struct relay_dsn_ctx {
	struct spool *spool;
	struct id_gen *ids;
	struct sched *sched;
	struct maillog *ml; /* NULL: no email log */
	const struct conf *conf;
};

/*
 * Queue one DSN for the recipients in rcpts that want one. Failures are logged (the original
 * message's outcome stands either way).
 */
void relay_dsn_send(const struct relay_dsn_ctx *ctx, const struct spool_env *env,
    const struct buf *body, const struct relay_dsn_rcpt *rcpts, size_t n);

#endif
