/*
 * retention/hot/sqlite_erase.c - erasure and summaries in the SQLite hot store: a
 * conversation's rows removed with secure_delete (freed cells zeroed) in
 * one transaction with its erasure record, the WAL checkpointed and
 * truncated, and the erasure log that keeps an erased conversation from
 * coming back (the ids only as keyed hashes: the log holds no content).
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/wire.h"
#include "retention/hot/sqlite_int.h"

/* The store's erasure key (store_info 'erase_key', 32 random bytes as hex), read once. */
static int
erase_key(struct sq_store *s, struct fr_err *err)
{
    if (s->erase_key_loaded)
        return FR_OK;
    char hex[2 * sizeof s->erase_key + 1];
    int rc = sq_store_info(s, "erase_key", hex, sizeof hex, err);
    bool ok = rc == FR_OK && strlen(hex) == 2 * sizeof s->erase_key;
    for (size_t i = 0; ok && i < sizeof s->erase_key; i++) {
        int hi = fr_hex_digit(hex[2 * i]), lo = fr_hex_digit(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        s->erase_key[i] = (unsigned char)(hi << 4 | lo);
    }
    OPENSSL_cleanse(hex, sizeof hex);
    if (!ok)
        return rc != FR_OK ? rc : fr_err_set(err, FR_E_STORE, "the store's erasure key is damaged");
    s->erase_key_loaded = true;
    return FR_OK;
}

int
sq_erase_subject(void *ctx, const char *conv_id, char out[33], struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = erase_key(s, err);
    if (rc != FR_OK)
        return rc;
    unsigned char md[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), s->erase_key, sizeof s->erase_key, (const unsigned char *)conv_id,
         strlen(conv_id), md, &n);
    fr_hex_encode(md, 16, out);
    return FR_OK;
}

/* Reloads the erased subjects when another connection committed since the last look. */
static void
erased_refresh(struct sq_store *s)
{
    sqlite3_stmt *q;
    int64_t version = sq_pragma_int(s->db, "PRAGMA data_version");
    if (s->erased != NULL && version == s->erased_version)
        return;
    if (s->erased == NULL) {
        s->erased = fr_strmap_new();
        s->verdicts = fr_strmap_new();
    }
    fr_strmap_clear(s->erased, NULL);
    fr_strmap_clear(s->verdicts, NULL);
    for (size_t i = 0; i < s->nerased_tokens; i++)
        free(s->erased_tokens[i]);
    s->nerased_tokens = 0;
    s->erased_version = version;
    if (sqlite3_prepare_v2(s->db, "SELECT kind, subject FROM erasures", -1, &q, NULL) != SQLITE_OK)
        return; /* an older read-only store: nothing erased */
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(q, 0);
        const char *subject = (const char *)sqlite3_column_text(q, 1);
        if (kind != NULL && strcmp(kind, "hmac") == 0) {
            s->erased_tokens =
                fr_realloc(s->erased_tokens, (s->nerased_tokens + 1) * sizeof *s->erased_tokens);
            s->erased_tokens[s->nerased_tokens++] = fr_strdup(subject);
            continue;
        }
        bool created;
        void **slot = fr_strmap_slot(s->erased, subject, &created);
        *slot = (void *)1;
    }
    sqlite3_finalize(q);
}

void
sq_erased_refresh(struct sq_store *s)
{
    erased_refresh(s);
}

bool
sq_is_erased_body(void *ctx, const char *body, size_t len)
{
    struct sq_store *s = ctx;
    if (!s->in_txn)
        erased_refresh(s);
    for (size_t i = 0; body != NULL && i < s->nerased_tokens; i++)
        if (memmem(body, len, s->erased_tokens[i], strlen(s->erased_tokens[i])) != NULL)
            return true;
    return false;
}

void
sq_erased_free(struct sq_store *s)
{
    fr_strmap_free(s->erased, NULL);
    s->erased = NULL;
    fr_strmap_free(s->verdicts, NULL);
    s->verdicts = NULL;
    for (size_t i = 0; i < s->nerased_tokens; i++)
        free(s->erased_tokens[i]);
    free(s->erased_tokens);
    s->erased_tokens = NULL;
    s->nerased_tokens = 0;
    OPENSSL_cleanse(s->erase_key, sizeof s->erase_key);
}

bool
sq_is_erased(void *ctx, const char *conv_id)
{
    struct sq_store *s = ctx;
    if (!s->in_txn) /* inside a write transaction no other connection commits */
        erased_refresh(s);
    if (conv_id == NULL || s->erased == NULL || fr_strmap_count(s->erased) == 0)
        return false;
    /* once the log is not empty every event asks: one HMAC per conversation, not per event */
    static const char yes[] = "erased", no[] = "kept";
    const char *v = fr_strmap_get(s->verdicts, conv_id);
    if (v != NULL)
        return v == yes;
    char subject[33];
    if (sq_erase_subject(s, conv_id, subject, NULL) != FR_OK)
        return false;
    bool erased = fr_strmap_get(s->erased, subject) != NULL;
    if (fr_strmap_count(s->verdicts) >= 65536) /* bounded: the active conversations */
        fr_strmap_clear(s->verdicts, NULL);
    bool created;
    *fr_strmap_slot(s->verdicts, conv_id, &created) = (void *)(erased ? yes : no);
    return erased;
}

/* Takes one stored event's share out of the rollups: the same rows its ingest added. */
static void
rollup_take_out(struct sq_store *s, sqlite3_stmt *q)
{
    const char *body = (const char *)sqlite3_column_text(q, 1);
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    lim.max_line = (size_t)sqlite3_column_bytes(q, 1) + 1;
    struct fr_event ev;
    if (body == NULL || fr_wire_parse(body, strlen(body), &lim, &ev, NULL) != FR_OK)
        return;
    if (fr_collect(&ev, NULL, NULL) == FR_OK) {
        struct fr_record rec;
        fr_record_from_event(&rec, &ev, body, strlen(body));
        /* the stored columns are what ingest classified (with its taxonomy): they decide */
        const char *klass = (const char *)sqlite3_column_text(q, 2);
        const char *code = (const char *)sqlite3_column_text(q, 3);
        rec.has_error = code != NULL;
        if (code != NULL) {
            int k = klass ? fr_error_class_parse(klass) : -1;
            rec.err.klass = k > 0 ? (enum fr_error_class)k : rec.err.klass;
            rec.err.code = code; /* the row's: used before the next step */
        }
        fr_collect_derive(&rec);
        sq_rollup_add(s, &rec);
        fr_record_clear(&rec);
    }
    fr_event_clear(&ev);
}

/* Negates the batch's rollup deltas (they were folded in as additions). */
static int
roll_negate(void *ud, const char *key, void *value)
{
    (void)ud;
    (void)key;
    struct fr_rollup_row *d = sq_roll_delta(value);
    d->calls = -d->calls;
    d->errors = -d->errors;
    for (int t = 0; t < FR_TOKEN_COUNT; t++)
        d->tokens[t] = -d->tokens[t];
    d->lat_count = -d->lat_count;
    d->lat_sum_ms = -d->lat_sum_ms;
    d->lat_max_ms = 0; /* a maximum cannot be taken back; it holds no content */
    for (int b = 0; b < FR_HIST_BUCKETS; b++)
        d->hist[b] = -d->hist[b];
    return 0;
}

/* Runs sql with ?1 = text (NULL: not bound) and ?2 = id. */
static int
exec_one(struct sq_store *s, const char *sql, const char *text, int64_t id, struct fr_err *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (text != NULL)
            sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, id);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "erasing");
}

/* The events a token erasure removes, one by one: the row, its anomalies, its count. */
struct row_ref {
    int64_t id;
    char *conv;
};

int
sq_erase_hot(void *ctx, const char *conv_id, const char *token, const char *reason, int64_t now_ms,
             bool dry_run, int64_t *events, struct fr_err *err)
{
    struct sq_store *s = ctx;
    *events = 0;
    char subject[33];
    int rc = conv_id != NULL ? sq_erase_subject(s, conv_id, subject, err) : FR_OK;
    if (rc != FR_OK)
        return rc;
    struct row_ref *refs = NULL;
    size_t nrefs = 0;
    /* freed cells and pages are overwritten with zeros: no byte of the rows stays behind */
    if (!dry_run && (rc = sq_exec(s->db, "PRAGMA secure_delete = ON", err)) != FR_OK)
        return rc;
    rc = sq_exec(s->db, dry_run ? "BEGIN" : "BEGIN IMMEDIATE", err);
    sqlite3_stmt *q = NULL;
    if (rc == FR_OK) {
        /* a token: every event whose stored body holds it (a scan of the bodies) */
        int src = sqlite3_prepare_v2(
            s->db,
            conv_id != NULL
                ? "SELECT id, fr_body(body), error_class, error_code, conv_id FROM events"
                  " WHERE conv_id = ?1"
                : "SELECT id, b, error_class, error_code, conv_id FROM"
                  " (SELECT id, fr_body(body) AS b, error_class, error_code, conv_id FROM events)"
                  " WHERE instr(b, ?1) > 0",
            -1, &q, NULL);
        if (src != SQLITE_OK)
            rc = sq_fail(s->db, src, err, "erasing");
    }
    if (rc == FR_OK) {
        sqlite3_bind_text(q, 1, conv_id != NULL ? conv_id : token, -1, SQLITE_STATIC);
        int src;
        while ((src = sqlite3_step(q)) == SQLITE_ROW) {
            (*events)++;
            if (!dry_run)
                rollup_take_out(s, q);
            if (conv_id == NULL) {
                refs = fr_realloc(refs, (nrefs + 1) * sizeof *refs);
                const char *conv = (const char *)sqlite3_column_text(q, 4);
                refs[nrefs++] =
                    (struct row_ref){sqlite3_column_int64(q, 0), conv ? fr_strdup(conv) : NULL};
            }
        }
        if (src != SQLITE_DONE)
            rc = sq_fail(s->db, src, err, "erasing");
    }
    sqlite3_finalize(q);
    if (rc == FR_OK && !dry_run) {
        fr_strmap_each(s->rolls, roll_negate, NULL);
        rc = sq_rollup_flush(s, err);
    } else {
        sq_rollup_discard(s);
    }
    static const char *const deletes[] = {
        "DELETE FROM conversation_summaries WHERE conv_id = ?1",
        "DELETE FROM events WHERE conv_id = ?1",
        "DELETE FROM sem_anomalies WHERE conv_id = ?1",
        "DELETE FROM timeline_entities WHERE conv_id = ?1",
        "DELETE FROM conversations WHERE conv_id = ?1",
        "DELETE FROM id_convs WHERE conv_id = ?1", /* its request and session look-ups */
        /* a trace of it keeps a link without the id (''), so that its late spans are
           dropped, not filed under the trace (sqlite_trace.c) */
        "UPDATE OR REPLACE trace_convs SET conv_id = '' WHERE conv_id = ?1",
        "UPDATE trace_convs_new SET conv_id = '' WHERE conv_id = ?1",
    };
    for (size_t i = 0;
         conv_id != NULL && rc == FR_OK && !dry_run && i < sizeof deletes / sizeof deletes[0]; i++)
        rc = exec_one(s, deletes[i], conv_id, 0, err);
    if (conv_id != NULL && !dry_run)
        s->hot_erasures++; /* the writer's index of trace_convs_new is read again */
    for (size_t i = 0; rc == FR_OK && !dry_run && i < nrefs; i++) {
        rc = exec_one(s, "DELETE FROM events WHERE id = ?2", NULL, refs[i].id, err);
        if (rc == FR_OK)
            rc = exec_one(s, "DELETE FROM sem_anomalies WHERE event_row = ?2", NULL, refs[i].id,
                          err);
        if (rc == FR_OK && refs[i].conv != NULL)
            rc = exec_one(s,
                          "UPDATE conversations SET event_count = max(event_count - 1, 0)"
                          " WHERE conv_id = ?1 AND ?2 = ?2",
                          refs[i].conv, 0, err);
    }
    /* the request and session look-ups of those conversations that no event holds any more
       (the erased value may be one of those ids), once per conversation */
    struct fr_strmap *tidied = fr_strmap_new();
    for (size_t i = 0; rc == FR_OK && !dry_run && i < nrefs; i++) {
        bool first = false;
        if (refs[i].conv != NULL)
            fr_strmap_slot(tidied, refs[i].conv, &first);
        if (first)
            rc = sq_idconv_tidy(s, refs[i].conv, err);
    }
    fr_strmap_free(tidied, NULL);
    for (size_t i = 0; i < nrefs; i++)
        free(refs[i].conv);
    free(refs);
    /* and the compression dictionaries made from its bytes (sqlite_body.c) */
    if (rc == FR_OK && !dry_run)
        rc = sq_body_forget(s, conv_id, token, err);
    if (rc == FR_OK && !dry_run) {
        rc = sqlite3_prepare_v2(
            s->db,
            "INSERT INTO erasures(ts_ms, subject, reason, state, hot_events, kind) VALUES(?1, ?2,"
            " ?3, 'pending', ?4, ?5) ON CONFLICT(subject) DO UPDATE SET state = 'pending',"
            " done_ms = NULL,"
            " hot_events = hot_events + excluded.hot_events,"
            " reason = COALESCE(excluded.reason, reason)",
            -1, &q, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(q, 1, now_ms);
            sqlite3_bind_text(q, 2, conv_id != NULL ? subject : token, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 5, conv_id != NULL ? "conv" : "hmac", -1, SQLITE_STATIC);
            if (reason != NULL && *reason)
                sqlite3_bind_text(q, 3, reason, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(q, 3);
            sqlite3_bind_int64(q, 4, *events);
            rc = sqlite3_step(q);
            sqlite3_finalize(q);
        }
        rc = rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "recording the erasure");
    }
    if (dry_run)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    else if (rc == FR_OK)
        rc = sq_exec(s->db, "COMMIT", err);
    else
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->erased_version = -1; /* its own commit does not change data_version: read again */
    if (!dry_run) {
        sqlite3_exec(s->db, "PRAGMA secure_delete = OFF", NULL, NULL, NULL);
        /* the WAL held the rows' pages: copied back (zeroed) and truncated */
        if (rc == FR_OK)
            sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    return rc;
}

struct erasure_ctx {
    int (*cb)(void *ud, const struct fr_erasure_row *r);
    void *ud;
};

static int
erasure_fn(sqlite3_stmt *q, void *ud)
{
    struct erasure_ctx *c = ud;
    struct fr_erasure_row r = {
        .subject = (const char *)sqlite3_column_text(q, 0),
        .ts_ms = sqlite3_column_int64(q, 1),
        .done_ms = sqlite3_column_int64(q, 2),
        .reason = (const char *)sqlite3_column_text(q, 3),
        .state = (const char *)sqlite3_column_text(q, 4),
        .hot_events = sqlite3_column_int64(q, 5),
        .segments = sqlite3_column_int64(q, 6),
        .records = sqlite3_column_int64(q, 7),
        .bytes = sqlite3_column_int64(q, 8),
        .kind = (const char *)sqlite3_column_text(q, 9),
    };
    return c->cb(c->ud, &r);
}

int
sq_erasures(void *ctx, bool pending_only, int (*cb)(void *ud, const struct fr_erasure_row *r),
            void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(
        s->db,
        pending_only ? "SELECT subject, ts_ms, done_ms, reason, state, hot_events, segments,"
                       " records, bytes, kind FROM erasures WHERE state = 'pending' ORDER BY id"
                     : "SELECT subject, ts_ms, done_ms, reason, state, hot_events, segments,"
                       " records, bytes, kind FROM erasures ORDER BY id",
        -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the erasure log");
    struct erasure_ctx c = {cb, ud};
    return q_run(s, q, erasure_fn, &c, NULL, err);
}

int
sq_erase_done(void *ctx, const char *subject, int64_t segments, int64_t records, int64_t bytes,
              int64_t now_ms, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "UPDATE erasures SET state = 'done', done_ms = ?2,"
                                " segments = segments + ?3, records = records + ?4,"
                                " bytes = bytes + ?5 WHERE subject = ?1",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, subject, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, now_ms);
        sqlite3_bind_int64(q, 3, segments);
        sqlite3_bind_int64(q, 4, records);
        sqlite3_bind_int64(q, 5, bytes);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "recording the erasure");
}

/* {k: n} + {k: n}, as JSON text (caller frees). */
static char *
merge_counts(const char *a, const char *b)
{
    json_t *x = a ? json_loads(a, 0, NULL) : NULL, *y = b ? json_loads(b, 0, NULL) : NULL;
    if (!json_is_object(x)) {
        json_decref(x);
        x = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach(y, k, v)
    {
        json_t *old = json_object_get(x, k);
        json_object_set_new(x, k, json_integer(json_integer_value(old) + json_integer_value(v)));
    }
    char *out = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(x);
    json_decref(y);
    return out;
}

int
sq_summary_merge(void *ctx, const struct fr_summary_row *r, struct fr_err *err)
{
    struct sq_store *s = ctx;
    if (sq_is_erased(s, r->conv_id))
        return FR_OK;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT first_ms, last_ms, events, errors, input_tokens,"
                                " output_tokens, error_codes, models FROM conversation_summaries"
                                " WHERE conv_id = ?1",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading a conversation summary");
    sqlite3_bind_text(q, 1, r->conv_id, -1, SQLITE_STATIC);
    struct fr_summary_row m = *r;
    char *codes = NULL, *models = NULL;
    if (sqlite3_step(q) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(q, 0), last = sqlite3_column_int64(q, 1);
        m.first_ms = first < m.first_ms ? first : m.first_ms;
        m.last_ms = last > m.last_ms ? last : m.last_ms;
        m.events += sqlite3_column_int64(q, 2);
        m.errors += sqlite3_column_int64(q, 3);
        m.input_tokens += sqlite3_column_int64(q, 4);
        m.output_tokens += sqlite3_column_int64(q, 5);
        codes = merge_counts((const char *)sqlite3_column_text(q, 6), r->error_codes);
        models = merge_counts((const char *)sqlite3_column_text(q, 7), r->models);
    } else {
        codes = merge_counts(NULL, r->error_codes);
        models = merge_counts(NULL, r->models);
    }
    sqlite3_finalize(q);
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT OR REPLACE INTO conversation_summaries VALUES(?1, ?2, ?3, ?4,"
                            " ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                            -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, m.conv_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, m.first_ms);
        sqlite3_bind_int64(q, 3, m.last_ms);
        sqlite3_bind_int64(q, 4, m.events);
        sqlite3_bind_int64(q, 5, m.errors);
        sqlite3_bind_int64(q, 6, m.input_tokens);
        sqlite3_bind_int64(q, 7, m.output_tokens);
        sqlite3_bind_text(q, 8, codes, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, models, -1, SQLITE_STATIC);
        if (m.host != NULL)
            sqlite3_bind_text(q, 10, m.host, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(q, 10);
        sqlite3_bind_int64(q, 11, m.summarized_ms);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    free(codes);
    free(models);
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "writing a conversation summary");
}

struct summary_ctx {
    int (*cb)(void *ud, const struct fr_summary_row *r);
    void *ud;
};

static int
summary_fn(sqlite3_stmt *q, void *ud)
{
    struct summary_ctx *c = ud;
    struct fr_summary_row r = {
        .conv_id = (const char *)sqlite3_column_text(q, 0),
        .first_ms = sqlite3_column_int64(q, 1),
        .last_ms = sqlite3_column_int64(q, 2),
        .events = sqlite3_column_int64(q, 3),
        .errors = sqlite3_column_int64(q, 4),
        .input_tokens = sqlite3_column_int64(q, 5),
        .output_tokens = sqlite3_column_int64(q, 6),
        .error_codes = (const char *)sqlite3_column_text(q, 7),
        .models = (const char *)sqlite3_column_text(q, 8),
        .host = (const char *)sqlite3_column_text(q, 9),
        .summarized_ms = sqlite3_column_int64(q, 10),
    };
    return c->cb(c->ud, &r);
}

int
sq_summaries(void *ctx, int64_t since_ms, int limit,
             int (*cb)(void *ud, const struct fr_summary_row *r), void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT conv_id, first_ms, last_ms, events, errors, input_tokens,"
                                " output_tokens, error_codes, models, host, summarized_ms"
                                " FROM conversation_summaries WHERE last_ms >= ?1"
                                " ORDER BY last_ms DESC, conv_id LIMIT ?2",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading conversation summaries");
    sqlite3_bind_int64(q, 1, since_ms);
    sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1);
    struct summary_ctx c = {cb, ud};
    return q_run(s, q, summary_fn, &c, NULL, err);
}
