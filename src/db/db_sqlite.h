/*
 * db_sqlite.h - private to src/db: opening hikyaku.db, pragmas, schema migrations, error mapping.
 *
 * The schema of <state>/hikyaku.db is one ordered table of migrations (db_sqlite.c); version N is
 * row N. schema_version(version, name, applied_ms) records each one applied. A database newer than
 * this binary is refused, never downgraded.
 * Connections are opened SQLITE_OPEN_NOMUTEX: each is used by one thread at a time (the writer
 * connection moves from the loop to the db writer thread through the jobs queue).
 * Errors: SQLite result codes map to struct hk_err (SQLITE_FULL -> HK_E_NOSPACE, BUSY/LOCKED ->
 * HK_E_BUSY, CORRUPT/NOTADB -> HK_E_DATA, the rest HK_E_IO); text "<step>: <sqlite message>".
 * Thread: any, one connection per thread at a time.
 */
#ifndef HK_DB_SQLITE_H
#define HK_DB_SQLITE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "../util/err.h"

#define DB_SQLITE_FILE "hikyaku.db"
#define DB_SQLITE_BUSY_MS 5000

struct db_migration {
	int version;      /* 1, 2, ... in order, no gaps */
	const char *name; /* recorded in schema_version */
	const char *sql;  /* one or more statements, run in one transaction */
};

/*
 * Open path. Writable: create if missing, journal_mode=WAL, synchronous=FULL, foreign_keys=ON,
 * busy_timeout, then run pending migrations. Read-only: foreign_keys, busy_timeout, query_only;
 * the schema must already be current. Returns NULL and fills err on failure.
 */
sqlite3 *db_sqlite_open(const char *path, bool readonly, struct hk_err *err);
/* Close db (NULL is a no-op); a failure is logged, never fatal. */
void db_sqlite_close(sqlite3 *db);

/* Apply every migration newer than the database's version. */
HK_MUST_CHECK int db_sqlite_migrate(sqlite3 *db, struct hk_err *err);
/* The database's schema version (0: empty database). */
HK_MUST_CHECK int db_sqlite_version(sqlite3 *db, int *out, struct hk_err *err);
/* The newest version this binary knows. */
int db_sqlite_latest_version(void);

/* Run SQL without results (several statements allowed). */
HK_MUST_CHECK int db_sqlite_exec(sqlite3 *db, const char *sql, struct hk_err *err);
/* Prepare a statement kept for reuse (SQLITE_PREPARE_PERSISTENT). */
HK_MUST_CHECK int db_sqlite_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out,
    struct hk_err *err);
/* Fill err from the connection's last error (rc is the failing result code); returns -1. */
HK_PRINTF(4, 5) int db_sqlite_fail(struct hk_err *err, sqlite3 *db, int rc, const char *fmt, ...);

#endif
