/*
 * retention/hot/sqlite.c - the SQLite hot store: opening, migrations, and the write
 * path (batches of events plus the conversation-index upserts they imply,
 * committed in one BEGIN IMMEDIATE transaction).
 *
 * Durability: WAL mode. With synchronous=NORMAL (the default) a committed
 * transaction survives a crash of the process; synchronous=FULL adds
 * survival of a power loss at the cost of an fsync per commit.
 * Files are created with owner-only permissions (the caller's umask is
 * tightened around the open).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/hot/schema.h"
#include "retention/hot/sqlite_int.h"
#include "retention/hot/store.h"

static const char sq_upsert_conv_sql[] =
    "INSERT INTO conversations(" SQ_CONV_COLUMNS ")"
    " VALUES(?1, ?2, ?3, ?4, COALESCE(?5, 'active'), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18)" SQ_CONV_MERGE;

static void
sq_close(void *ctx)
{
    struct sq_store *s = ctx;
    if (s == NULL)
        return;
    if (s->in_txn)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sq_ckpt_stop(s);
    sq_aggs_free(&s->aggs);
    sqlite3_finalize(s->ins_event);
    sqlite3_finalize(s->upsert_conv);
    sqlite3_finalize(s->has_event);
    for (size_t i = 0; i < sizeof s->count_err / sizeof s->count_err[0]; i++)
        sqlite3_finalize(s->count_err[i]);
    for (size_t i = 0; i < sizeof s->ids_st / sizeof s->ids_st[0]; i++)
        sqlite3_finalize(s->ids_st[i]);
    sq_rollup_finalize(s);
    sq_erased_free(s);
    sq_trace_free(s);
    sq_idconv_free(s);
    sq_parts_free(s);
    sq_body_free(s); /* its statement before the connection closes */
    sqlite3_close(s->db);
    free(s->path);
    free(s->dir);
    free(s);
}

static int
sq_configure(struct sq_store *s, const struct fr_store_opts *opts, struct fr_err *err)
{
    char sql[256];
    sqlite3_busy_timeout(s->db, opts->busy_timeout_ms);
    if (opts->read_only) {
        snprintf(sql, sizeof sql, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-%lld;",
                 (long long)opts->cache_kib);
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? FR_OK : sq_fail(s->db, rc, err, "opening the database to read");
    }
    snprintf(sql, sizeof sql,
             "PRAGMA page_size=%d; PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
             " PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-%lld;",
             SQ_PAGE_SIZE, sq_sync_name(opts->synchronous), (long long)opts->cache_kib);
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    /* the reason, not the PRAGMA list: "disk I/O error" on a full disk, "not a database" */
    return rc == SQLITE_OK
               ? FR_OK
               : sq_fail(s->db, rc, err, "opening the database (WAL journal, settings)");
}

/* Whether the database file or its directory cannot be written (EROFS included). */
static bool
sq_read_only(const char *path)
{
    if (access(path, W_OK) != 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        return true;
    char *dir = fr_strdup(path), *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    bool ro = access(slash ? dir : ".", W_OK) != 0 && (errno == EACCES || errno == EROFS);
    free(dir);
    return ro;
}

/*
 * A read-only open checks what the file is instead of migrating it: a
 * flightrec database at this version, or a clear refusal (another
 * program's SQLite file, an empty file, an older or newer schema).
 */
static int
sq_check_schema(struct sq_store *s, const char *path, struct fr_err *err)
{
    int version = 0;
    struct fr_err verr = {0};
    int rc = fr_schema_version(s->db, &version, &verr);
    sqlite3_stmt *q;
    bool has_events = false;
    if (rc == FR_OK &&
        sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_master WHERE name = 'events'", -1, &q,
                           NULL) == SQLITE_OK) {
        has_events = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_finalize(q);
    }
    if (rc != FR_OK || version == 0 || !has_events)
        return fr_err_set(err, FR_E_VERSION,
                          "%s is not a flightrec database (no flightrec schema in it; it was left "
                          "as it is)",
                          path);
    if (version > fr_schema_latest())
        return fr_err_set(err, FR_E_VERSION,
                          "%s: database schema version %d is newer than this flightrec supports "
                          "(%d); upgrade flightrec",
                          path, version, fr_schema_latest());
    if (version < fr_schema_latest())
        return fr_err_set(err, FR_E_VERSION,
                          "%s: database schema version %d is older than this flightrec's (%d); "
                          "start the agent or run `flightrec retention run` once to migrate it",
                          path, version, fr_schema_latest());
    return FR_OK;
}

/* "file:PATH?immutable=1", the path's URI-special characters escaped. */
static char *
sq_immutable_uri(const char *path)
{
    size_t n = strlen(path);
    char *uri = fr_malloc(n * 3 + 32), *o = uri;
    o += sprintf(o, "file:");
    for (const char *p = path; *p; p++)
        o += *p == '?' || *p == '#' || *p == '%' ? sprintf(o, "%%%02X", (unsigned char)*p)
                                                 : sprintf(o, "%c", *p);
    sprintf(o, "?immutable=1");
    return uri;
}

static int sq_open_as(void **ctx, const char *path, const struct fr_store_opts *opts,
                      bool immutable, struct fr_err *err);

/*
 * A read-only open of a database in WAL mode needs its -shm file, which a
 * full disk may not have room for. When there is no WAL content to miss
 * (no -wal file, or an empty one), the file is then read as immutable: a
 * snapshot of what it holds, which is all there is while nothing can be
 * written.
 */
static int
sq_open(void **ctx, const char *path, const struct fr_store_opts *opts, struct fr_err *err)
{
    int rc = sq_open_as(ctx, path, opts, false, err);
    if (rc == FR_OK || !opts->read_only || rc == FR_E_NOTFOUND || rc == FR_E_VERSION)
        return rc;
    char *wal = fr_asprintf("%s-wal", path);
    struct stat st;
    bool no_wal = stat(wal, &st) != 0 || st.st_size == 0;
    free(wal);
    if (!no_wal)
        return rc;
    struct fr_err ierr = {0};
    if (sq_open_as(ctx, path, opts, true, &ierr) != FR_OK)
        return rc;
    fr_err_clear(err);
    return FR_OK;
}

/*
 * SQLite's allocation statistics (sqlite3_memory_used, which flightrec never
 * reads) cost a global mutex and a malloc_usable_size() on every one of its
 * allocations, ~70 per stored event: off, before SQLite initializes, the
 * writer's commit takes 10.6% fewer instructions (callgrind, docs/storage.md).
 * The constructor runs before main, so before any connection is opened.
 */
__attribute__((constructor)) static void
sq_no_memstatus(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
sq_open_as(void **ctx, const char *path, const struct fr_store_opts *opts, bool immutable,
           struct fr_err *err)
{
    *ctx = NULL;
    int flags = (opts->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                SQLITE_OPEN_NOMUTEX | (immutable ? SQLITE_OPEN_URI : 0);
    if (opts->create && !opts->read_only) {
        int rc = fr_mkdirs_for(path, 0700, err);
        if (rc != FR_OK)
            return rc;
        flags |= SQLITE_OPEN_CREATE;
    } else if (access(path, F_OK) != 0) {
        return fr_err_set(err, FR_E_NOTFOUND,
                          "no database at %s (ingest events first, or pass --db PATH)", path);
    }
    struct sq_store *s = fr_calloc(1, sizeof *s);
    mode_t old = umask(077);
    char *uri = immutable ? sq_immutable_uri(path) : NULL;
    int rc =
        sqlite3_open_v2(uri ? uri : path, &s->db, flags, opts->read_only ? NULL : sq_walbuf_vfs());
    free(uri);
    umask(old);
    if (rc != SQLITE_OK) {
        fr_err_set(err, FR_E_STORE, "cannot open database %s: %s", path,
                   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(s);
        return FR_E_STORE;
    }
    sqlite3_extended_result_codes(s->db, 1);
    struct stat st;
    if (stat(path, &st) == 0) {
        s->path = fr_strdup(path);
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        char *copy = fr_strdup(path), *real = realpath(dirname(copy), NULL);
        s->dir = real ? fr_strdup(real) : NULL;
        free(real);
        free(copy);
    }
    int frc = sq_configure(s, opts, err);
    if (frc == FR_OK)
        frc = opts->read_only ? sq_check_schema(s, path, err)
                              : fr_schema_migrate(s->db, fr_schema_latest(), err);
    if (frc == FR_OK && !opts->read_only)
        frc = sq_relativize_manifest(s, err);
    if (frc == FR_OK)
        frc = sq_body_open(s, !opts->read_only, opts->compress_bodies, opts->background_training,
                           err);
    if (frc == FR_OK &&
        (rc = sqlite3_prepare_v3(s->db, fr_schema_insert_event_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->ins_event, NULL)) != SQLITE_OK)
        frc = sq_fail(s->db, rc, err, "preparing event insert");
    if (frc == FR_OK &&
        (rc = sqlite3_prepare_v3(s->db, sq_upsert_conv_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->upsert_conv, NULL)) != SQLITE_OK)
        frc = sq_fail(s->db, rc, err, "preparing conversation upsert");
    if (frc == FR_OK)
        frc = sq_rollup_prepare(s, err);
    if (frc == FR_OK)
        sq_parts_count(s);
    if (frc == FR_OK && opts->background_checkpoint && !opts->read_only && s->path != NULL)
        frc = sq_ckpt_start(s, s->path, opts, err);
    if (frc != FR_OK) {
        if (err != NULL && !opts->read_only && sq_read_only(path)) {
            fr_err_set(err, FR_E_STORE,
                       "database %s is read-only (file mode, directory or a read-only "
                       "filesystem): flightrec writes it and its -wal and -shm files beside it",
                       path);
        } else if (err != NULL && strstr(err->msg, path) == NULL) {
            /* say which database: the caller's message may come from deep inside */
            char *msg = fr_asprintf("%s: %s", path, err->msg);
            snprintf(err->msg, sizeof err->msg, "%s", msg);
            free(msg);
        }
        sq_close(s);
        return frc;
    }
    *ctx = s;
    return FR_OK;
}

/* Whether the file opened was removed or replaced since (SQLite would go on
 * writing to the unlinked inode, and every commit would vanish at close). */
bool
sq_file_gone(const struct sq_store *s)
{
    struct stat st;
    return s->path != NULL &&
           (stat(s->path, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino);
}

/*
 * Row ids only grow. SQLite gives a new row the largest id in the table plus
 * one, so once the newest rows are gone (retention moved everything of a
 * quiet sidecar to warm; the newest conversation erased) it would hand out
 * ids again that readers have passed already: the shipper's and `tail`'s
 * cursors ("rows after id N") would skip the new events for good. The
 * largest id ever given is kept in store_info ('events_hwm', at each
 * commit); a batch that finds the table below it holds a placeholder row at
 * that id for its length (never committed), so its rows are numbered after it.
 */
enum { IDS_PROBE, IDS_HOLD, IDS_RELEASE, IDS_KEEP, IDS_COUNT };

static const char *const ids_sql[IDS_COUNT] = {
    [IDS_PROBE] = "SELECT ifnull((SELECT max(id) FROM events), 0),"
                  " ifnull((SELECT CAST(value AS INTEGER) FROM store_info"
                  " WHERE key = 'events_hwm'), 0)",
    [IDS_HOLD] = "INSERT INTO events(id, ts_ms, ingested_ms, kind, body)"
                 " VALUES(?1, 0, 0, 'placeholder', '{}')",
    [IDS_RELEASE] = "DELETE FROM events WHERE id = ?1",
    [IDS_KEEP] = "INSERT INTO store_info VALUES('events_hwm', CAST(?1 AS TEXT))"
                 " ON CONFLICT(key) DO UPDATE SET value = CAST(max(CAST(value AS INTEGER), ?1)"
                 " AS TEXT)",
};

/* Runs ids_sql[which] (cached) with ?1 = v to its end; SQLITE_OK or SQLite's error. */
static int
sq_ids_step(struct sq_store *s, int which, int64_t v)
{
    sqlite3_stmt *st;
    struct fr_err ignored = {0};
    if (sq_cached(s->db, &s->ids_st[which], ids_sql[which], &st, &ignored) != FR_OK)
        return sqlite3_errcode(s->db);
    sqlite3_bind_int64(st, 1, v);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
sq_ids_begin(struct sq_store *s, struct fr_err *err)
{
    s->placeholder = 0;
    s->last_rowid = 0;
    sqlite3_stmt *st;
    int rc = sq_cached(s->db, &s->ids_st[IDS_PROBE], ids_sql[IDS_PROBE], &st, err);
    if (rc != FR_OK)
        return rc;
    int64_t max = 0, hwm = 0;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        max = sqlite3_column_int64(st, 0);
        hwm = sqlite3_column_int64(st, 1);
        src = SQLITE_OK;
    }
    sqlite3_reset(st);
    if (src == SQLITE_OK && max < hwm && (src = sq_ids_step(s, IDS_HOLD, hwm)) == SQLITE_OK)
        s->placeholder = hwm;
    return src == SQLITE_OK ? FR_OK : sq_fail(s->db, src, err, "begin (row ids)");
}

/* Before COMMIT: the placeholder goes, the largest id given is kept. */
static int
sq_ids_commit(struct sq_store *s)
{
    int rc = SQLITE_OK;
    if (s->placeholder > 0)
        rc = sq_ids_step(s, IDS_RELEASE, s->placeholder);
    if (rc == SQLITE_OK && s->last_rowid > 0)
        rc = sq_ids_step(s, IDS_KEEP, s->last_rowid);
    s->placeholder = 0;
    s->last_rowid = 0;
    return rc;
}

static int
sq_begin(void *ctx, struct fr_err *err)
{
    struct sq_store *s = ctx;
    if (sq_file_gone(s))
        return fr_err_set(err, FR_E_STORE,
                          "database file %s was removed or replaced while open; nothing more "
                          "can be stored in it (the agent stops; restarted, it starts a new one)",
                          s->path);
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "begin");
    s->in_txn = true;
    sq_sem_forget(s);     /* what an earlier transaction learned of SEM streams */
    sq_erased_refresh(s); /* exact for the batch: no other connection commits until it ends */
    int frc = sq_body_begin(s, err);
    return frc == FR_OK ? sq_ids_begin(s, err) : frc;
}

static void
sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A stored failure counted in error_convs and error_codes (schema version 14: what the
   trigger events_error_in did; error_convs_new adds a new pair's row to error_codes). */
static int
sq_count_error(struct sq_store *s, const struct fr_record *ev, struct fr_err *err)
{
    static const char *const sql[2] = {
        "INSERT INTO error_convs VALUES(?1, ?2, ?3, 1) ON CONFLICT DO UPDATE SET n = n + 1",
        "UPDATE error_codes SET n = n + 1 WHERE error_class = ?1 AND error_code = ?2",
    };
    const char *conv = ev->ids[FR_ID_CONV] != NULL ? ev->ids[FR_ID_CONV] : "";
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        int rc = sq_cached(s->db, &s->count_err[i], sql[i], &st, err);
        if (rc != FR_OK)
            return rc;
        sqlite3_bind_text(st, 1, fr_error_class_name(ev->err.klass), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ev->err.code, -1, SQLITE_STATIC);
        if (i == 0)
            sqlite3_bind_text(st, 3, conv, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE)
            return sq_fail(s->db, src, err, "counting a failure");
    }
    return FR_OK;
}

static int
sq_put(void *ctx, const struct fr_record *ev, int64_t ingested_ms, bool *inserted,
       struct fr_err *err)
{
    struct sq_store *s = ctx;
    if (ev->part) { /* not a row of its own: merged into its event, or parked until it comes */
        *inserted = true;
        return sq_part_put(s, ev, ingested_ms, err);
    }
    sqlite3_stmt *st = s->ins_event;
    sqlite3_bind_int64(st, 1, ev->ts_ms);
    sqlite3_bind_int64(st, 2, ingested_ms);
    sqlite3_bind_text(st, 3, fr_kind_name(ev->kind), -1, SQLITE_STATIC);
    if (ev->has_seq)
        sqlite3_bind_int64(st, 4, ev->seq);
    else
        sqlite3_bind_null(st, 4);
    for (int i = 0; i < FR_ID_COUNT; i++)
        sq_bind_text(st, 5 + i, ev->ids[i]);
    sq_bind_text(st, 16, ev->status);
    sq_bind_text(st, 17, ev->provider);
    sq_bind_text(st, 18, ev->model);
    sq_bind_text(st, 19, ev->tool);
    if (ev->has_duration)
        sqlite3_bind_int64(st, 20, ev->duration_ms);
    else
        sqlite3_bind_null(st, 20);
    if (ev->has_error) {
        sqlite3_bind_text(st, 21, fr_error_class_name(ev->err.klass), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 22, ev->err.code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 23, ev->err.message, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 21);
        sqlite3_bind_null(st, 22);
        sqlite3_bind_null(st, 23);
    }
    sq_body_bind(s, st, 24, ev);
    sq_bind_text(st, 25, ev->request_sha256 && ev->request_sha256[0] ? ev->request_sha256 : NULL);
    sq_bind_text(st, 26,
                 ev->response_sha256 && ev->response_sha256[0] ? ev->response_sha256 : NULL);
    sq_bind_text(st, 27, ev->policy[0] ? ev->policy : NULL);
    if (ev->raw != NULL)
        sqlite3_bind_blob(st, 28, ev->raw, (int)ev->raw_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 28);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "inserting event");
    *inserted = sqlite3_changes(s->db) > 0;
    int64_t rowid = sqlite3_last_insert_rowid(s->db);
    if (*inserted && rowid > s->last_rowid)
        s->last_rowid = rowid;
    if (*inserted && ev->has_error && ev->err.code != NULL &&
        (rc = sq_count_error(s, ev, err)) != FR_OK) /* restored rows count too: they are rows */
        return rc;
    /* a restored row's trace is found again too (it links nothing) */
    if (*inserted && (rc = sq_trace_note(s, ev, err)) != FR_OK)
        return rc;
    if (*inserted && (rc = sq_idconv_note(s, ev, ingested_ms, err)) != FR_OK)
        return rc;
    if (*inserted && ev->restored)
        sq_sem_restored(s, ev);
    if (!*inserted || ev->restored)
        return FR_OK;
    sq_aggs_add(&s->aggs, ev);
    sq_rollup_add(s, ev);
    rc = sq_timeline_upsert(s, ev, err);
    if (rc == FR_OK)
        rc = sq_parts_adopt(s, ev, rowid, err);
    if (rc != FR_OK)
        return rc;
    return sq_sem_check(s, ev, rowid, err);
}

static void
sq_bind_opt_int(sqlite3_stmt *st, int i, bool present, int64_t v)
{
    if (present)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int
sq_upsert_one(void *ud, const struct sq_agg *g)
{
    struct sq_store *s = ud;
    sqlite3_stmt *st = s->upsert_conv;
    sq_bind_text(st, 1, g->conv_id);
    sq_bind_text(st, 2, g->session_id);
    sq_bind_text(st, 3, g->runtime_key);
    sq_bind_opt_int(st, 4, g->runtime_key != NULL, g->runtime_key_ts);
    sq_bind_text(st, 5, g->status);
    sq_bind_opt_int(st, 6, g->status != NULL, g->status_ts);
    sqlite3_bind_int64(st, 7, g->min_ts);
    sqlite3_bind_int64(st, 8, g->max_ts);
    sq_bind_opt_int(st, 9, g->closed_ms != 0, g->closed_ms);
    sq_bind_opt_int(st, 10, g->evicted_ms != 0, g->evicted_ms);
    sqlite3_bind_int64(st, 11, g->events);
    sqlite3_bind_int64(st, 12, g->errors);
    sq_bind_opt_int(st, 13, g->has_err, g->err_ts);
    sq_bind_text(st, 14, g->err_class);
    sq_bind_text(st, 15, g->err_code);
    sq_bind_text(st, 16, g->err_msg);
    sqlite3_bind_int(st, 17, g->panic);
    sqlite3_bind_int64(st, 18, g->max_ts);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FR_OK : rc;
}

static void
sq_rollback(void *ctx)
{
    struct sq_store *s = ctx;
    sq_aggs_drain(&s->aggs, NULL, NULL);
    sq_rollup_discard(s);
    sq_trace_rollback(s);
    sq_idconv_rollback(s);
    bool reread = s->in_txn;
    if (s->in_txn)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_txn = false;
    sq_sem_forget(s); /* the streams' rows of the batch are gone */
    if (reread)
        sq_parts_count(s); /* a parked part may have been rolled back, or an unpark */
}

static int
sq_commit(void *ctx, struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = sq_aggs_drain(&s->aggs, sq_upsert_one, s);
    if (rc != FR_OK) {
        int frc = sq_fail(s->db, rc, err, "updating conversation index");
        sq_rollback(s);
        return frc;
    }
    rc = sq_trace_flush(s, err); /* after the index upsert: it merges index rows */
    if (rc == FR_OK)             /* after the trace moves, which move pairs too */
        rc = sq_idconv_flush(s, fr_now_ms(), err);
    if (rc == FR_OK)
        rc = sq_rollup_flush(s, err);
    if (rc == FR_OK && (rc = sq_ids_commit(s)) != SQLITE_OK)
        rc = sq_fail(s->db, rc, err, "commit (row ids)");
    if (rc != FR_OK) {
        sq_rollback(s);
        return rc;
    }
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int frc = sq_fail(s->db, rc, err, "commit");
        sq_rollback(s);
        return frc;
    }
    s->in_txn = false;
    sq_sem_forget(s);
    sq_body_after_commit(s); /* a dictionary trained when due, out of the batch's transaction */
    return FR_OK;
}

static int
sq_policy(void *ctx, const char *id, const char *json, int64_t now_ms, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO redaction_policies(id, first_used_ms, policy)"
                                " VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "recording redaction policy");
}

static bool
sq_op_file_gone(void *ctx)
{
    return sq_file_gone(ctx);
}

const struct fr_store_ops fr_store_sqlite = {
    .name = "sqlite",
    .description = "embedded SQLite database in WAL mode (the default hot store)",
    .options = NULL,
    .open = sq_open,
    .close = sq_close,
    .trace_links = sq_trace_links,
    .begin = sq_begin,
    .put = sq_put,
    .commit = sq_commit,
    .pack = sq_body_pack,
    .rollback = sq_rollback,
    .conversations = fr_sqlite_conversations,
    .conversation = fr_sqlite_conversation,
    .events = fr_sqlite_events,
    .count_events = fr_sqlite_count_events,
    .rollups = fr_sqlite_rollups,
    .anomalies = fr_sqlite_anomalies,
    .error_groups = fr_sqlite_error_groups,
    .policy = sq_policy,
    .due = sq_due,
    .ship_hold_set = sq_ship_hold_set,
    .ship_hold_get = sq_ship_hold_get,
    .archive_commit = sq_archive_commit,
    .archive_finish = sq_archive_finish,
    .pending = sq_pending,
    .delete_ids = sq_delete_ids,
    .manifest = sq_manifest,
    .manifest_replace = sq_manifest_replace,
    .manifest_add = sq_manifest_add,
    .manifest_remove = sq_manifest_remove,
    .archive_map = sq_archive_map,
    .archive_lookup = sq_archive_lookup,
    .segment_health = sq_segment_health,
    .has_event = sq_has_event,
    .snapshot_begin = sq_snapshot_begin,
    .snapshot_end = sq_snapshot_end,
    .was_removed = sq_was_removed,
    .retention_log = sq_retention_log,
    .rollup_delta = sq_rollup_delta,
    .link_trace = sq_link_trace,
    .file_gone = sq_op_file_gone,
    .live_bytes = sq_live_bytes,
    .wal_stats = sq_ckpt_stats,
    .reclaim = sq_reclaim,
    .store_id = sq_store_id,
    .erase_subject = sq_erase_subject,
    .is_erased = sq_is_erased,
    .is_erased_body = sq_is_erased_body,
    .erase_hot = sq_erase_hot,
    .erasures = sq_erasures,
    .erase_done = sq_erase_done,
    .summary_merge = sq_summary_merge,
    .summaries = sq_summaries,
};
