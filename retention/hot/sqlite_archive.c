/*
 * retention/hot/sqlite_archive.c - see archive.h (SQLite).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "retention/hot/archive.h"
#include "retention/hot/sqlite_int.h"

int
sq_due(void *ctx, const int64_t cutoff[FR_KIND_COUNT], int64_t hold_id, int64_t grace_ms,
       int64_t after_ts, int64_t after_id, int limit, fr_event_cb cb, void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    char sql[2048] = "SELECT " SQ_EVENT_COLUMNS " FROM events WHERE (ts_ms > ?1 OR (ts_ms = ?1"
                     " AND id > ?2)) AND (0";
    for (int k = 0; k < FR_KIND_COUNT; k++) {
        if (cutoff[k] <= 0)
            continue;
        size_t n = strlen(sql);
        if (hold_id == INT64_MAX)
            snprintf(sql + n, sizeof sql - n, " OR (kind = '%s' AND ts_ms < %lld)", fr_kind_name(k),
                     (long long)cutoff[k]);
        else /* not shipped yet: held until grace_ms past its age */
            snprintf(sql + n, sizeof sql - n,
                     " OR (kind = '%s' AND ts_ms < %lld AND (id <= %lld OR ts_ms < %lld))",
                     fr_kind_name(k), (long long)cutoff[k], (long long)hold_id,
                     (long long)(cutoff[k] - grace_ms));
    }
    strcat(sql, ") ORDER BY ts_ms, id LIMIT ?3");
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "selecting events due for the warm tier");
    sqlite3_bind_int64(q, 1, after_ts);
    sqlite3_bind_int64(q, 2, after_id);
    sqlite3_bind_int(q, 3, limit);
    struct q_event_ctx c = {cb, ud};
    return q_run(s, q, q_event_fn, &c, NULL, err);
}

/* Ends the transaction begun with BEGIN IMMEDIATE: COMMIT when rc is FR_OK, else ROLLBACK. */
const char *
sq_rel(const struct sq_store *s, const char *path)
{
    size_t n = s->dir ? strlen(s->dir) : 0;
    if (path != NULL && n > 0 && strncmp(path, s->dir, n) == 0 && path[n] == '/')
        return path + n + 1;
    return path;
}

char *
sq_abs(const struct sq_store *s, const char *stored)
{
    if (stored == NULL)
        return NULL;
    if (stored[0] == '/' || s->dir == NULL)
        return fr_strdup(stored);
    return fr_asprintf("%s/%s", s->dir, stored);
}

int
sq_relativize_manifest(struct sq_store *s, struct fr_err *err)
{
    if (s->dir == NULL)
        return FR_OK;
    char *prefix = fr_asprintf("%s/", s->dir);
    sqlite3_stmt *q;
    bool any = false;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT 1 FROM archive_segments WHERE substr(path, 1, ?1) = ?2 LIMIT 1",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int(q, 1, (int)strlen(prefix));
        sqlite3_bind_text(q, 2, prefix, -1, SQLITE_STATIC);
        any = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
    }
    int rc = SQLITE_OK;
    if (any && (rc = sqlite3_prepare_v2(s->db,
                                        "UPDATE archive_segments SET path = substr(path, ?1 + 1)"
                                        " WHERE substr(path, 1, ?1) = ?2",
                                        -1, &q, NULL)) == SQLITE_OK) {
        sqlite3_bind_int(q, 1, (int)strlen(prefix));
        sqlite3_bind_text(q, 2, prefix, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    free(prefix);
    return rc == SQLITE_OK ? FR_OK : sq_fail(s->db, rc, err, "making manifest paths relative");
}

/* A transaction of its own, or a savepoint inside the caller's (archive restore). */
static int
txn_begin_nested(struct sq_store *s, bool *nested, struct fr_err *err)
{
    *nested = !sqlite3_get_autocommit(s->db);
    return sq_exec(s->db, *nested ? "SAVEPOINT archive_change" : "BEGIN IMMEDIATE", err);
}

static int
txn_end_nested(struct sq_store *s, bool nested, int rc, struct fr_err *err)
{
    if (!nested)
        return sq_txn_end(s, rc, err);
    if (rc == FR_OK)
        return sq_exec(s->db, "RELEASE archive_change", err);
    sqlite3_exec(s->db, "ROLLBACK TO archive_change; RELEASE archive_change", NULL, NULL, NULL);
    return rc;
}

static void
bind_manifest(const struct sq_store *s, sqlite3_stmt *q, const struct fr_manifest_row *m)
{
    sqlite3_bind_text(q, 1, sq_rel(s, m->path), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, m->tier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, m->min_ts);
    sqlite3_bind_int64(q, 4, m->max_ts);
    sqlite3_bind_int64(q, 5, m->records);
    sqlite3_bind_int64(q, 6, m->raw_bytes);
    sqlite3_bind_int64(q, 7, m->file_bytes);
    sqlite3_bind_text(q, 8, m->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 9, m->policy && *m->policy ? m->policy : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 10, m->key_id && *m->key_id ? m->key_id : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 11, m->created_ms);
}

static const char manifest_insert[] =
    "INSERT INTO archive_segments(path, tier, min_ts, max_ts, records, raw_bytes, file_bytes,"
    " sha256, policy, key_id, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

static int
manifest_exec(struct sq_store *s, const char *sql, const struct fr_manifest_row *m,
              const char *extra, struct fr_err *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (m != NULL)
            bind_manifest(s, q, m);
        if (extra != NULL)
            sqlite3_bind_text(q, 12, extra, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "updating the archive manifest");
}

static int
delete_ids(struct sq_store *s, const struct fr_row_key *rows, size_t n, size_t *deleted,
           struct fr_err *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE id = ?1 AND ingested_ms = ?2", -1,
                                &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "deleting archived rows");
    size_t del = 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(q, 1, rows[i].id);
        sqlite3_bind_int64(q, 2, rows[i].ingested_ms);
        rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(q);
            return sq_fail(s->db, rc, err, "deleting archived rows");
        }
        del += (size_t)sqlite3_changes(s->db);
    }
    sqlite3_finalize(q);
    if (deleted != NULL)
        *deleted = del;
    return FR_OK;
}

#define DELETE_CHUNK 250

static int
set_state(struct sq_store *s, const char *path, const char *state, struct fr_err *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, "UPDATE archive_segments SET state = ?2 WHERE path = ?1", -1,
                                &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, state, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "updating the archive manifest");
}

/* Deletes ids in chunks, one short transaction each, then marks path done. */
static int
delete_rest(struct sq_store *s, const char *path, const struct fr_row_key *rows, size_t n,
            struct fr_err *err)
{
    int rc = FR_OK;
    for (size_t at = 0; rc == FR_OK && at < n; at += DELETE_CHUNK) {
        size_t k = n - at < DELETE_CHUNK ? n - at : DELETE_CHUNK;
        rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
        if (rc == FR_OK)
            rc = delete_ids(s, rows + at, k, NULL, err);
        rc = sq_txn_end(s, rc, err);
        /* leave the write lock free for a moment: ingest commits go first */
        usleep(2000);
    }
    if (rc == FR_OK)
        rc = set_state(s, path, "done", err);
    /* checkpoint the WAL this move grew here, not in the ingest writer's next commit */
    if (rc == FR_OK)
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc;
}

int
sq_archive_commit(void *ctx, const struct fr_manifest_row *m, const struct fr_row_key *rows,
                  size_t n, struct fr_err *err)
{
    struct sq_store *s = ctx;
    size_t first = n < DELETE_CHUNK ? n : DELETE_CHUNK;
    int rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc != FR_OK)
        return rc;
    rc = manifest_exec(s, manifest_insert, m, NULL, err);
    if (rc == FR_OK)
        rc = set_state(s, m->path, "deleting", err);
    if (rc == FR_OK)
        rc = delete_ids(s, rows, first, NULL, err);
    if (rc == FR_OK)
        rc = sq_retention_log(ctx, "archive", m->path, (int64_t)n, m->min_ts, m->max_ts, m->tier,
                              m->created_ms, err);
    rc = sq_txn_end(s, rc, err);
    if (rc != FR_OK)
        return rc;
#ifdef FR_TEST_HOOKS
    /* test hook (test builds only): between the first chunk and the rest */
    if (getenv("FLIGHTREC_CRASH_AT") && strcmp(getenv("FLIGHTREC_CRASH_AT"), "mid_delete") == 0)
        raise(SIGKILL);
#endif
    return delete_rest(s, m->path, rows + first, n - first, err);
}

int
sq_archive_finish(void *ctx, const char *path, const struct fr_row_key *rows, size_t n,
                  struct fr_err *err)
{
    return delete_rest(((struct sq_store *)ctx), path, rows, n, err);
}

struct pend_ctx {
    const struct sq_store *s;
    int (*cb)(void *, const char *);
    void *ud;
};

static int
pend_fn(sqlite3_stmt *q, void *ud)
{
    struct pend_ctx *c = ud;
    char *path = sq_abs(c->s, (const char *)sqlite3_column_text(q, 0));
    int rc = c->cb(c->ud, path);
    free(path);
    return rc;
}

int
sq_pending(void *ctx, int (*cb)(void *ud, const char *path), void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT path FROM archive_segments WHERE state = 'deleting' ORDER BY path", -1, &q,
        NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the archive manifest");
    struct pend_ctx c = {s, cb, ud};
    return q_run(s, q, pend_fn, &c, NULL, err);
}

int
sq_delete_ids(void *ctx, const struct fr_row_key *rows, size_t n, size_t *deleted,
              struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc != FR_OK)
        return rc;
    rc = delete_ids(s, rows, n, deleted, err);
    rc = sq_txn_end(s, rc, err);
    return rc;
}

int
sq_manifest_add(void *ctx, const struct fr_manifest_row *m, struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = manifest_exec(s, manifest_insert, m, NULL, err);
    /* some of its rows may still be in hot: readers skip those, reconciliation deletes them */
    if (rc == FR_OK && m->pending)
        rc = set_state(s, m->path, "deleting", err);
    return rc;
}

struct man_ctx {
    const struct sq_store *s;
    int (*cb)(void *, const struct fr_manifest_row *);
    void *ud;
};

static int
man_fn(sqlite3_stmt *q, void *ud)
{
    struct man_ctx *c = ud;
    char *path = sq_abs(c->s, (const char *)sqlite3_column_text(q, 0));
    struct fr_manifest_row r = {
        .path = path,
        .tier = (const char *)sqlite3_column_text(q, 1),
        .min_ts = sqlite3_column_int64(q, 2),
        .max_ts = sqlite3_column_int64(q, 3),
        .records = sqlite3_column_int64(q, 4),
        .raw_bytes = sqlite3_column_int64(q, 5),
        .file_bytes = sqlite3_column_int64(q, 6),
        .sha256 = (const char *)sqlite3_column_text(q, 7),
        .policy = (const char *)sqlite3_column_text(q, 8),
        .key_id = (const char *)sqlite3_column_text(q, 9),
        .created_ms = sqlite3_column_int64(q, 10),
        .pending = sqlite3_column_text(q, 11) != NULL &&
                   strcmp((const char *)sqlite3_column_text(q, 11), "deleting") == 0,
        .mapped = sqlite3_column_type(q, 12) != SQLITE_NULL,
        .bad = (const char *)sqlite3_column_text(q, 13),
        .checked = (const char *)sqlite3_column_text(q, 14),
    };
    int rc = c->cb(c->ud, &r);
    free(path);
    return rc;
}

int
sq_manifest(void *ctx, int (*cb)(void *ud, const struct fr_manifest_row *r), void *ud,
            struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT path, tier, min_ts, max_ts, records, raw_bytes, file_bytes,"
                                " sha256, policy, key_id, created_ms, state, map_id, bad, checked"
                                " FROM archive_segments"
                                " ORDER BY min_ts, path",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the archive manifest");
    struct man_ctx c = {s, cb, ud};
    return q_run(s, q, man_fn, &c, NULL, err);
}

int
sq_manifest_replace(void *ctx, const char *old_path, const struct fr_manifest_row *m,
                    struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc != FR_OK)
        return rc;
    sqlite3_stmt *q;
    rc = sqlite3_prepare_v2(s->db, "DELETE FROM archive_segments WHERE path = ?1", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, old_path), -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? FR_OK : FR_E_STORE;
        sqlite3_finalize(q);
    } else {
        rc = FR_E_STORE;
    }
    if (rc != FR_OK)
        rc = sq_fail(s->db, SQLITE_ERROR, err, "updating the archive manifest");
    if (rc == FR_OK)
        rc = manifest_exec(s, manifest_insert, m, NULL, err);
    if (rc == FR_OK)
        rc = sq_retention_log(ctx, m->tier, m->path, m->records, m->min_ts, m->max_ts, old_path,
                              m->created_ms, err);
    rc = sq_txn_end(s, rc, err);
    return rc;
}

int
sq_manifest_remove(void *ctx, const char *path, const char *why, int64_t now_ms, struct fr_err *err)
{
    struct sq_store *s = ctx;
    bool nested;
    int rc = txn_begin_nested(s, &nested, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_stmt *q;
    int64_t records = 0, min_ts = 0, max_ts = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT records, min_ts, max_ts FROM archive_segments WHERE path = ?1",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            records = sqlite3_column_int64(q, 0);
            min_ts = sqlite3_column_int64(q, 1);
            max_ts = sqlite3_column_int64(q, 2);
        }
        sqlite3_finalize(q);
    }
    rc = sqlite3_prepare_v2(s->db, "DELETE FROM archive_segments WHERE path = ?1", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    rc = rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "updating the archive manifest");
    if (rc == FR_OK)
        rc = sq_retention_log(ctx, "delete", path, records, min_ts, max_ts, why, now_ms, err);
    return txn_end_nested(s, nested, rc, err);
}

bool
sq_has_event(void *ctx, int64_t id, int64_t ingested_ms)
{
    /* called per record of a segment still being deleted: one statement, kept */
    struct sq_store *s = ctx;
    if (s->has_event == NULL &&
        sqlite3_prepare_v2(s->db, "SELECT 1 FROM events WHERE id = ?1 AND ingested_ms = ?2", -1,
                           &s->has_event, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(s->has_event, 1, id);
    sqlite3_bind_int64(s->has_event, 2, ingested_ms);
    bool found = sqlite3_step(s->has_event) == SQLITE_ROW;
    sqlite3_reset(s->has_event);
    return found;
}

int
sq_snapshot_begin(void *ctx, bool *began, struct fr_err *err)
{
    struct sq_store *s = ctx;
    *began = false;
    if (!sqlite3_get_autocommit(s->db))
        return FR_OK; /* already inside a transaction: that is the snapshot */
    int rc = sq_exec(s->db, "BEGIN DEFERRED", err);
    *began = rc == FR_OK;
    return rc;
}

void
sq_snapshot_end(void *ctx, bool began)
{
    if (began)
        sqlite3_exec(((struct sq_store *)ctx)->db, "COMMIT", NULL, NULL, NULL);
}

bool
sq_was_removed(void *ctx, const char *path)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    bool found = false;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT 1 FROM retention_log WHERE action = 'delete' AND path IN "
                           "(?1, ?2)",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, sq_rel(s, path), -1, SQLITE_STATIC);
        found = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
    }
    return found;
}

int
sq_retention_log(void *ctx, const char *action, const char *path, int64_t events, int64_t min_ts,
                 int64_t max_ts, const char *detail, int64_t now_ms, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO retention_log(ts_ms, action, path, events, min_ts,"
                                " max_ts, detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, now_ms);
        sqlite3_bind_text(q, 2, action, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, sq_rel(ctx, path), -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, events);
        sqlite3_bind_int64(q, 5, min_ts);
        sqlite3_bind_int64(q, 6, max_ts);
        sqlite3_bind_text(q, 7, detail, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "writing the retention log");
}

int
sq_rollup_delta(void *ctx, const char *dim, int64_t minute_ms, const char *k1, const char *k2,
                const struct fr_rollup_row *d, struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc != FR_OK)
        return rc;
    int src = sq_rollup_upsert(s, dim, minute_ms - minute_ms % 60000, k1, k2, d);
    if (src != SQLITE_DONE)
        rc = sq_fail(s->db, src, err, "updating rollups");
    return sq_txn_end(s, rc, err);
}

int64_t
sq_live_bytes(void *ctx)
{
    sqlite3 *db = ((struct sq_store *)ctx)->db;
    return (sq_pragma_int(db, "PRAGMA page_count") - sq_pragma_int(db, "PRAGMA freelist_count")) *
           sq_pragma_int(db, "PRAGMA page_size");
}

int
sq_reclaim(void *ctx, int pages, int *freed, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int before = 0, after = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA freelist_count", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            before = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", pages);
    int rc = sq_exec(s->db, sql, err);
    if (sqlite3_prepare_v2(s->db, "PRAGMA freelist_count", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            after = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    if (freed != NULL)
        *freed = before > after ? before - after : 0;
    return rc;
}

int
sq_store_info(struct sq_store *s, const char *key, char *out, size_t cap, struct fr_err *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM store_info WHERE key = ?1", -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the store's info");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? FR_OK : fr_err_set(err, FR_E_STORE, "the store has no %s", key);
}

int
sq_ship_hold_set(void *ctx, int64_t id, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                id < 0 ? "DELETE FROM store_info WHERE key = 'ship_hold'"
                                       : "INSERT OR REPLACE INTO store_info"
                                         " VALUES('ship_hold', CAST(?1 AS TEXT))",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (id >= 0)
            sqlite3_bind_int64(q, 1, id);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "recording the shipping hold");
}

int
sq_ship_hold_get(void *ctx, int64_t *id, struct fr_err *err)
{
    char v[32];
    struct fr_err e = {0};
    if (sq_store_info(ctx, "ship_hold", v, sizeof v, &e) != FR_OK) {
        (void)err;
        return FR_E_NOTFOUND;
    }
    *id = strtoll(v, NULL, 10);
    return FR_OK;
}

int
sq_store_id(void *ctx, char out[17], struct fr_err *err)
{
    return sq_store_info(ctx, "store_id", out, 17, err);
}
