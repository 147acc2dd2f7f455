/*
 * idem.h - Idempotency-Key store of the sending API (DESIGN.md 11): the first answer given for a
 * key, kept IDEM_TTL_MS, in the idempotency table of <state>/hikyaku.db.
 *
 * The API checks a key before it commits a message and stores the 202 after the commit, so a
 * client retrying with the same key and body gets the same answer and no second message.
 * Lookups and stores run in order on one "idem" worker with its own connection (opened on first
 * use); rows older than the TTL are ignored and deleted as stores go by.
 * Ownership: keys, digests and responses are copied in; an entry passed to a done callback is
 * borrowed for the call.
 * Thread: loop thread; done callbacks run on the loop through the hub's completions.
 */
#ifndef HK_IDEM_H
#define HK_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"
#include "../util/err.h"

#define IDEM_TTL_MS (24ULL * 3600 * 1000)
#define IDEM_KEY_MAX 255
#define IDEM_HASH_LEN 32

struct idem;

struct idem_entry {
	bool found;
	unsigned char hash[IDEM_HASH_LEN];
	int status;
	const char *response;
	uint64_t created_ms;
};

/* rc -1: the database failed (err says why; entry is then not found). */
typedef void (*idem_lookup_fn)(void *arg, int rc, const struct hk_err *err,
    const struct idem_entry *entry);
typedef void (*idem_store_fn)(void *arg, int rc, const struct hk_err *err);

/* Prepare the store on <state_dir>/hikyaku.db (the email log created its schema). Never fails. */
struct idem *idem_new(const char *state_dir, struct jobs *hub);
/* Wait for jobs in flight (their callbacks run), stop the worker, close. NULL is a no-op. */
void idem_free(struct idem *id);

/* Is key an acceptable Idempotency-Key: 1..IDEM_KEY_MAX printable ASCII characters? */
bool idem_key_is_valid(const char *key);

/* Find key's entry younger than IDEM_TTL_MS at now_ms; done_cb(arg, ...) later on the loop. */
void idem_lookup(struct idem *id, const char *key, uint64_t now_ms, idem_lookup_fn done_cb,
    void *arg);
/* Store (replace) key's entry made at now_ms and drop expired ones; done_cb later on the loop. */
void idem_store(struct idem *id, const char *key, const unsigned char hash[IDEM_HASH_LEN],
    int status, const char *response, uint64_t now_ms, idem_store_fn done_cb, void *arg);

#endif
