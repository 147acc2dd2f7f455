/*
 * maildrop.h - mail left in the spool's maildrop/ by the sendmail command, and its pickup.
 *
 * File format (docs/sendmail.md): a spool envelope (spool_format.h, ending in its "END <crc>"
 * line) immediately followed by the body, whose length is the envelope's size record. Names are
 * "<16 hex time>.<16 hex random>"; a file is written as "." + name, fsync'ed, renamed to name,
 * and the directory fsync'ed, so a name without a leading dot is always complete.
 * maildrop/ is mode 1733: anyone may drop a file, nobody may list it. Everything in a dropped file
 * is untrusted: pickup keeps only the sender, the recipients and their DSN options, takes a fresh
 * queue ID, prepends a Received: field naming the file owner's uid, and commits through the normal
 * spool_commit(). Only after that commit is durable is the maildrop file unlinked, so a crash in
 * between delivers the message twice, never zero times.
 * Files that do not decode, are too big, are not regular files or have other links go to
 * corrupt/ with a log line. Dot files older than a day (writers that died) are removed.
 * New files are noticed through inotify (IN_MOVED_TO, IN_CLOSE_WRITE) on the loop; a timer
 * rescans every 30 s (every second without inotify) so temporary failures are retried.
 * Thread: maildrop_submit() and the codec anywhere (the sendmail command); the pickup object on
 * the loop thread only.
 */
#ifndef HK_MAILDROP_H
#define HK_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/err.h"
#include "../util/id.h"
#include "spool.h"
#include "spool_format.h"

struct event_base;

/* "<16 hex>.<16 hex>" plus NUL. */
#define MAILDROP_NAME_SIZE (2 * ID_HEX_LEN + 2)
/* Dot files (unfinished writes) older than this are removed by the pickup scan. */
#define MAILDROP_STALE_MS (24ull * 3600 * 1000)

/* Append the maildrop file for env and body[0..len) to out (env->size is set to len). */
void maildrop_encode(const struct spool_env *env, const char *body, size_t len, struct buf *out);
/*
 * Decode a maildrop file p[0..len): the envelope into out (zeroed by the caller; left empty on
 * failure), *body_off where the body starts. The body must be exactly out->size bytes long.
 * Pure.
 */
enum spool_format_result maildrop_decode(const char *p, size_t len, struct spool_env *out,
    size_t *body_off, const char **why);

/*
 * The sendmail side: write env + body into <spool_dir>/maildrop/ as described above (file mode
 * 0644, so the daemon's user can read it; the directory cannot be listed). name gets the final
 * name. Errors: HK_E_NOTFOUND (no maildrop/ directory: the daemon never ran with this spool),
 * HK_E_IO, HK_E_NOSPACE. Nothing is left behind on failure.
 */
HK_MUST_CHECK int maildrop_submit(const char *spool_dir, const struct spool_env *env,
    const char *body, size_t len, char name[MAILDROP_NAME_SIZE], struct hk_err *err);

/* Called on the loop once a picked-up message is durably queued (same shape as smtpd's). */
typedef void (*maildrop_queued_fn)(void *arg, const struct spool_env *env);

struct maildrop_params {
	struct event_base *base;
	struct spool *spool;
	struct id_gen *ids;       /* the daemon's generator (loop-only) */
	const char *hostname;     /* for the Received: field; copied */
	uint64_t max_size;        /* largest body accepted; 0: no limit */
	size_t max_rcpts;         /* most recipients accepted; 0: no limit */
	maildrop_queued_fn queued_cb;
	void *cb_arg;
};

struct maildrop_stats {
	uint64_t queued;  /* files committed to the queue and unlinked */
	uint64_t corrupt; /* files moved to corrupt/ */
	uint64_t failed;  /* commit attempts that failed (the file stays for a later scan) */
};

/*
 * Start the pickup: watch maildrop/ and scan it once the loop runs (mail dropped while the daemon
 * was down is picked up at start). NULL (err) only when the timer cannot be made; without
 * inotify it falls back to the 1 s rescan and logs that.
 */
struct maildrop *maildrop_new(const struct maildrop_params *p, struct hk_err *err);
/*
 * Stop watching and wait for the commits in flight (their queued_cb still runs): call it before
 * what queued_cb uses, and before spool_free(). NULL is a no-op.
 */
void maildrop_free(struct maildrop *md);
/* Scan maildrop/ now (the watch and timer call this too). */
void maildrop_scan(struct maildrop *md);
/* Commits in flight. */
size_t maildrop_inflight(const struct maildrop *md);
const struct maildrop_stats *maildrop_stats(const struct maildrop *md);

#endif
