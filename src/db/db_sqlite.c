/* db_sqlite.c - open hikyaku.db with the required pragmas and bring its schema up to date. */
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db_sqlite.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/poison.h"

/*
 * The schema. Append rows; never edit one that has shipped (a database that ran it would not
 * run it again).
 *
 * Statuses are the words of DESIGN.md 14 (queued, deferred, sent, bounced, expired, held,
 * suppressed) plus "deleted" (removed by an admin before it finished). IDs are the 64-bit queue
 * IDs stored as SQLite's signed 64-bit integers. Addresses compare case-insensitively (NOCASE),
 * so filters and the indexes behind them agree.
 *
 * Indexes follow the `hikyaku log` / GET /api/v1/messages filters (newest first, cursor = id):
 *   status    messages_status (status, id)
 *   from      messages_from (mail_from, id)
 *   to        recipients_address (address, message_id)
 *   since/until  the primary key (IDs are time-ordered) and messages_received (received_ms)
 *   upstream  recipients_upstream (last upstream per recipient) and events_upstream (any attempt)
 *   q         messages_fts (FTS5 over subject, sender and recipients; rowid = message id)
 * Message detail reads events by events_message (message_id, id); quota rebuild at start reads
 * events_sent (partial: accepted attempts only).
 */
static const char db_sqlite_v1[] =
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" received_ms INTEGER NOT NULL,"
	" mail_from TEXT NOT NULL COLLATE NOCASE,"
	" subject TEXT NOT NULL DEFAULT '',"
	" size INTEGER NOT NULL DEFAULT 0,"
	" source TEXT NOT NULL DEFAULT '',"
	" listener TEXT,"
	" auth_user TEXT,"
	" client TEXT,"
	" helo TEXT,"
	" envid TEXT,"
	" n_rcpts INTEGER NOT NULL DEFAULT 0,"
	" status TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" resent_from INTEGER," /* no foreign key: retention may remove the original */
	" body_kept INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX messages_status ON messages(status, id);"
	"CREATE INDEX messages_from ON messages(mail_from, id);"
	"CREATE INDEX messages_received ON messages(received_ms);"
	"CREATE INDEX messages_resent_from ON messages(resent_from) WHERE resent_from IS NOT NULL;"
	"CREATE TABLE recipients ("
	" message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" address TEXT NOT NULL COLLATE NOCASE,"
	" status TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" last_code INTEGER,"
	" last_enhanced TEXT,"
	" last_text TEXT,"
	" upstream TEXT,"
	" remote_host TEXT,"
	" maybe_delivered INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (message_id, idx)"
	") WITHOUT ROWID;"
	"CREATE INDEX recipients_address ON recipients(address, message_id);"
	"CREATE INDEX recipients_upstream ON recipients(upstream, message_id)"
	" WHERE upstream IS NOT NULL;"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	" time_ms INTEGER NOT NULL,"
	" type TEXT NOT NULL,"
	" rcpt TEXT," /* NULL: the whole message */
	" n_rcpts INTEGER NOT NULL DEFAULT 0," /* recipients the event applied to */
	" upstream TEXT,"
	" remote_host TEXT,"
	" remote_addr TEXT,"
	" tls TEXT,"
	" code INTEGER,"
	" enhanced TEXT,"
	" text TEXT,"
	" duration_ms INTEGER,"
	" result TEXT,"
	" maybe_delivered INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX events_message ON events(message_id, id);"
	"CREATE INDEX events_upstream ON events(upstream, message_id) WHERE type = 'attempt';"
	"CREATE INDEX events_sent ON events(time_ms, upstream)"
	" WHERE type = 'attempt' AND result = 'sent';"
	"CREATE VIRTUAL TABLE messages_fts USING fts5(subject, mail_from, rcpt_to,"
	" tokenize = 'unicode61 remove_diacritics 2');"
	"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
	" DELETE FROM messages_fts WHERE rowid = old.id;"
	" END;";

/*
 * Idempotency-Key of the sending API (src/db/idem.c): the answer given to the first request with
 * a key, kept 24 h; request_sha256 tells a replay from a different request reusing the key.
 */
static const char db_sqlite_v2[] =
	"CREATE TABLE idempotency ("
	" key TEXT PRIMARY KEY,"
	" request_sha256 BLOB NOT NULL,"
	" status INTEGER NOT NULL,"
	" response TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX idempotency_created ON idempotency(created_ms);";

static const struct db_migration db_sqlite_migrations[] = {
	{ .version = 1, .name = "email log: messages, recipients, events, fts", .sql = db_sqlite_v1 },
	{ .version = 2, .name = "api: idempotency keys", .sql = db_sqlite_v2 },
};

static enum hk_err_code
db_sqlite_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return HK_E_NOSPACE;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return HK_E_BUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
		return HK_E_DATA;
	default:
		return HK_E_IO;
	}
}

int
db_sqlite_fail(struct hk_err *err, sqlite3 *db, int rc, const char *fmt, ...)
{
	char step[HK_ERR_TEXT_MAX];
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	int sys = db ? sqlite3_system_errno(db) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	if (err == NULL)
		return -1;
	hk_err_set(err, db_sqlite_code(rc), "%s: %s%s%s", step, msg, sys ? ": " : "",
	    sys ? strerror(sys) : "");
	err->sys_errno = sys;
	return -1;
}

int
db_sqlite_exec(sqlite3 *db, const char *sql, struct hk_err *err)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_sqlite_fail(err, db, rc, "exec");
	return 0;
}

int
db_sqlite_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, struct hk_err *err)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);

	if (rc != SQLITE_OK) {
		*out = NULL;
		return db_sqlite_fail(err, db, rc, "prepare");
	}
	return 0;
}

int
db_sqlite_latest_version(void)
{
	return db_sqlite_migrations[HK_ARRAY_LEN(db_sqlite_migrations) - 1].version;
}

int
db_sqlite_version(sqlite3 *db, int *out, struct hk_err *err)
{
	static const char sql[] =
		"SELECT coalesce(max(version), 0) FROM schema_version";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(err, db, rc, "read schema_version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_sqlite_fail(err, db, rc, "read schema_version");
		sqlite3_finalize(st);
		return -1;
	}
	*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* One migration and its schema_version row in one transaction: all or nothing. */
static int
db_sqlite_apply(sqlite3 *db, const struct db_migration *m, struct hk_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_sqlite_exec(db, "BEGIN IMMEDIATE", err) == -1)
		return -1;
	rc = sqlite3_exec(db, m->sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		db_sqlite_fail(err, db, rc, "migration %d (%s)", m->version, m->name);
		goto fail;
	}
	rc = sqlite3_prepare_v2(db,
	    "INSERT INTO schema_version(version, name, applied_ms) VALUES (?1, ?2, ?3)", -1, &st,
	    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, m->version);
		sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)clock_now_ms());
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		db_sqlite_fail(err, db, rc, "record migration %d", m->version);
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		db_sqlite_fail(err, db, rc, "commit migration %d", m->version);
		goto fail;
	}
	log_info("db", "migrated", "sess=main version=%d name=%s", m->version, log_q(m->name));
	return 0;
fail:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
db_sqlite_migrate(sqlite3 *db, struct hk_err *err)
{
	int version, latest = db_sqlite_latest_version();
	size_t i;

	if (db_sqlite_exec(db,
	    "CREATE TABLE IF NOT EXISTS schema_version ("
	    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
	    err) == -1)
		return -1;
	if (db_sqlite_version(db, &version, err) == -1)
		return -1;
	if (version > latest)
		return hk_err_set(err, HK_E_DATA,
		    "database schema version %d is newer than this program's %d", version,
		    latest);
	for (i = 0; i < HK_ARRAY_LEN(db_sqlite_migrations); i++) {
		const struct db_migration *m = &db_sqlite_migrations[i];

		HK_ASSERT(m->version == (int)i + 1);
		if (m->version <= version)
			continue;
		if (db_sqlite_apply(db, m, err) == -1)
			return -1;
	}
	return 0;
}

/* Pragmas whose result must be checked by reading it back. */
static int
db_sqlite_pragma_expect(sqlite3 *db, const char *sql, const char *want, struct hk_err *err)
{
	sqlite3_stmt *st;
	int rc;
	bool ok;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(err, db, rc, "%s", sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_sqlite_fail(err, db, rc, "%s", sql);
		sqlite3_finalize(st);
		return -1;
	}
	ok = sqlite3_column_text(st, 0) != NULL &&
	    strcmp((const char *)sqlite3_column_text(st, 0), want) == 0;
	sqlite3_finalize(st);
	if (!ok)
		return hk_err_set(err, HK_E_IO, "%s: not in effect", sql);
	return 0;
}

sqlite3 *
db_sqlite_open(const char *path, bool readonly, struct hk_err *err)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int rc, version;

	if (!sqlite3_threadsafe()) {
		hk_err_set(err, HK_E_CONFIG, "SQLite was built without thread support");
		return NULL;
	}
	flags |= readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		db_sqlite_fail(err, db, rc, "open %s", path);
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	rc = sqlite3_busy_timeout(db, DB_SQLITE_BUSY_MS);
	if (rc != SQLITE_OK) {
		db_sqlite_fail(err, db, rc, "busy_timeout %s", path);
		goto fail;
	}
	if (db_sqlite_exec(db, "PRAGMA foreign_keys = ON", err) == -1 ||
	    db_sqlite_pragma_expect(db, "PRAGMA foreign_keys", "1", err) == -1)
		goto fail;
	if (readonly) {
		if (db_sqlite_exec(db, "PRAGMA query_only = ON", err) == -1 ||
		    db_sqlite_version(db, &version, err) == -1)
			goto fail;
		if (version != db_sqlite_latest_version()) {
			hk_err_set(err, HK_E_DATA, "%s: schema version %d, expected %d", path,
			    version, db_sqlite_latest_version());
			goto fail;
		}
		return db;
	}
	/* WAL: readers never block the writer; FULL: a commit survives power loss. */
	if (db_sqlite_pragma_expect(db, "PRAGMA journal_mode = WAL", "wal", err) == -1 ||
	    db_sqlite_exec(db, "PRAGMA synchronous = FULL", err) == -1 ||
	    db_sqlite_pragma_expect(db, "PRAGMA synchronous", "2", err) == -1)
		goto fail;
	if (db_sqlite_migrate(db, err) == -1)
		goto fail;
	return db;
fail:
	if (err != NULL && strstr(err->text, path) == NULL) {
		char text[HK_ERR_TEXT_MAX];
		int sys = err->sys_errno;

		snprintf(text, sizeof(text), "%s", err->text);
		hk_err_set(err, err->code, "%s: %s", path, text);
		err->sys_errno = sys;
	}
	db_sqlite_close(db);
	return NULL;
}

void
db_sqlite_close(sqlite3 *db)
{
	int rc;

	if (db == NULL)
		return;
	rc = sqlite3_close(db);
	if (rc != SQLITE_OK)
		log_error("db", "close_failed", "sess=main err=%s", log_q(sqlite3_errstr(rc)));
}
