/*
 * retention/hot/sqlite_util.c - the small helpers every file of the SQLite
 * store shares (error mapping, statements with no rows, statements prepared
 * once, the synchronous setting's name), kept apart so that
 * the write path, rollups and reads depend on them and not on each other.
 */
#include <sqlite3.h>

#include "retention/hot/sqlite_int.h"

int
sq_fail(sqlite3 *db, int rc, struct fr_err *err, const char *what)
{
    int primary = rc & 0xff;
    int code = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? FR_E_BUSY : FR_E_STORE;
    return fr_err_set(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int
sq_exec(sqlite3 *db, const char *sql, struct fr_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, err, sql);
    return FR_OK;
}

int
sq_cached(sqlite3 *db, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out, struct fr_err *err)
{
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return sq_fail(db, rc, err, sql);
    }
    *out = *slot;
    sqlite3_reset(*out);
    sqlite3_clear_bindings(*out);
    return FR_OK;
}

int
sq_txn_end(struct sq_store *s, int rc, struct fr_err *err)
{
    if (rc == FR_OK)
        rc = sq_exec(s->db, "COMMIT", err);
    if (rc != FR_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
sq_step_texts(sqlite3 *db, sqlite3_stmt *st, const char *a, const char *b, const char *what,
              struct fr_err *err)
{
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b != NULL)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? FR_OK : sq_fail(db, rc, err, what);
}

const char *
sq_sync_name(int synchronous)
{
    static const char *const names[] = {"OFF", "NORMAL", "FULL"};
    return names[synchronous < 0 ? 0 : synchronous > 2 ? 2 : synchronous];
}

int64_t
sq_pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return v;
}
