/*
 * idem.c - Idempotency-Key rows in hikyaku.db, read and written on one worker thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "idem.h"
#include "db_sqlite.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct idem {
	char *path;
	struct jobs *hub;
	struct jobs_pool *pool;
	sqlite3 *db; /* used only on the worker */
	size_t inflight;
};

struct idem_job {
	struct idem *id;
	bool store;
	char *key;
	unsigned char hash[IDEM_HASH_LEN];
	int status;
	char *response;
	uint64_t now_ms;
	int rc;
	struct hk_err err;
	struct idem_entry entry;
	idem_lookup_fn lookup_cb;
	idem_store_fn store_cb;
	void *arg;
};

struct idem *
idem_new(const char *state_dir, struct jobs *hub)
{
	struct idem *id = xcalloc(1, sizeof(*id));
	size_t n = strlen(state_dir) + sizeof(DB_SQLITE_FILE) + 2;

	id->path = xmalloc(n);
	snprintf(id->path, n, "%s/%s", state_dir, DB_SQLITE_FILE);
	id->hub = hub;
	id->pool = jobs_pool_new(hub, "idem", 1);
	return id;
}

void
idem_free(struct idem *id)
{
	if (id == NULL)
		return;
	while (id->inflight > 0)
		jobs_wait_completions(id->hub);
	jobs_pool_free(id->pool);
	db_sqlite_close(id->db);
	free(id->path);
	free(id);
}

bool
idem_key_is_valid(const char *key)
{
	size_t i;

	for (i = 0; key[i] != '\0'; i++) {
		if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e || i >= IDEM_KEY_MAX)
			return false;
	}
	return i > 0;
}

static int
idem_db(struct idem *id, struct hk_err *err)
{
	if (id->db == NULL)
		id->db = db_sqlite_open(id->path, false, err);
	return id->db == NULL ? -1 : 0;
}

static int
idem_do_lookup(struct idem_job *j)
{
	static const char sql[] = "SELECT request_sha256, status, response, created_ms"
				  " FROM idempotency WHERE key = ? AND created_ms >= ?";
	sqlite3 *db = j->id->db;
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_sqlite_prepare(db, sql, &st, &j->err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, j->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(j->now_ms > IDEM_TTL_MS ? j->now_ms - IDEM_TTL_MS
									 : 0));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(st, 0);
		const unsigned char *resp = sqlite3_column_text(st, 2);

		j->entry.found = true;
		if (h != NULL && sqlite3_column_bytes(st, 0) == IDEM_HASH_LEN)
			memcpy(j->entry.hash, h, IDEM_HASH_LEN);
		j->entry.status = sqlite3_column_int(st, 1);
		j->response = xstrdup(resp ? (const char *)resp : "");
		j->entry.created_ms = (uint64_t)sqlite3_column_int64(st, 3);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		db_sqlite_fail(&j->err, db, rc, "idempotency lookup");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
idem_do_store(struct idem_job *j)
{
	static const char del[] = "DELETE FROM idempotency WHERE created_ms < ?";
	static const char ins[] = "INSERT OR REPLACE INTO idempotency"
				  " (key, request_sha256, status, response, created_ms)"
				  " VALUES (?, ?, ?, ?, ?)";
	sqlite3 *db = j->id->db;
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_sqlite_prepare(db, del, &st, &j->err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(j->now_ms > IDEM_TTL_MS ? j->now_ms - IDEM_TTL_MS
									 : 0));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_sqlite_fail(&j->err, db, rc, "idempotency expiry");
	if (db_sqlite_prepare(db, ins, &st, &j->err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, j->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, j->hash, IDEM_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, j->status);
	sqlite3_bind_text(st, 4, j->response, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)j->now_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_sqlite_fail(&j->err, db, rc, "idempotency store");
}

static void
idem_work(void *arg)
{
	struct idem_job *j = arg;

	if (idem_db(j->id, &j->err) == -1) {
		j->rc = -1;
		return;
	}
	j->rc = j->store ? idem_do_store(j) : idem_do_lookup(j);
}

static void
idem_done(void *arg)
{
	struct idem_job *j = arg;

	j->id->inflight--;
	if (j->rc == -1)
		log_warn("idem", "db_failed", "sess=api err=%s", log_q(j->err.text));
	if (j->store) {
		j->store_cb(j->arg, j->rc, &j->err);
	} else {
		if (j->rc == -1)
			memset(&j->entry, 0, sizeof(j->entry));
		j->entry.response = j->response;
		j->lookup_cb(j->arg, j->rc, &j->err, &j->entry);
	}
	free(j->key);
	free(j->response);
	free(j);
}

static struct idem_job *
idem_job_new(struct idem *id, const char *key, uint64_t now_ms, void *arg)
{
	struct idem_job *j = xcalloc(1, sizeof(*j));

	HK_ASSERT_LOOP();
	j->id = id;
	j->key = xstrdup(key);
	j->now_ms = now_ms;
	j->arg = arg;
	id->inflight++;
	return j;
}

void
idem_lookup(struct idem *id, const char *key, uint64_t now_ms, idem_lookup_fn done_cb, void *arg)
{
	struct idem_job *j = idem_job_new(id, key, now_ms, arg);

	j->lookup_cb = done_cb;
	jobs_pool_submit(id->pool, idem_work, idem_done, j);
}

void
idem_store(struct idem *id, const char *key, const unsigned char hash[IDEM_HASH_LEN], int status,
    const char *response, uint64_t now_ms, idem_store_fn done_cb, void *arg)
{
	struct idem_job *j = idem_job_new(id, key, now_ms, arg);

	j->store = true;
	memcpy(j->hash, hash, IDEM_HASH_LEN);
	j->status = status;
	j->response = xstrdup(response);
	j->store_cb = done_cb;
	jobs_pool_submit(id->pool, idem_work, idem_done, j);
}
