/*
 * retention/hot/sqlite_query.c - the read path of the SQLite hot store: the
 * conversation index and ordered event reads. Statements are built from a
 * fixed set of clauses and every value is bound, never spliced into SQL.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/strmap.h"
#include "retention/hot/sqlite_int.h"
#include "retention/hot/store.h"

#define CONV_COLUMNS                                                                               \
    "conv_id, session_id, runtime_key, status, created_ms, last_activity_ms, closed_ms,"           \
    " evicted_ms, event_count, error_count, last_error_class, last_error_code,"                    \
    " last_error_message, panic"

static const char *
q_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static void
q_conv_row(sqlite3_stmt *st, struct fr_conv_row *r)
{
    r->conv_id = q_text(st, 0);
    r->session_id = q_text(st, 1);
    r->runtime_key = q_text(st, 2);
    r->status = q_text(st, 3);
    r->created_ms = sqlite3_column_int64(st, 4);
    r->last_activity_ms = sqlite3_column_int64(st, 5);
    r->closed_ms = sqlite3_column_int64(st, 6);
    r->evicted_ms = sqlite3_column_int64(st, 7);
    r->event_count = sqlite3_column_int64(st, 8);
    r->error_count = sqlite3_column_int64(st, 9);
    r->last_error_class = q_text(st, 10);
    r->last_error_code = q_text(st, 11);
    r->last_error_message = q_text(st, 12);
    r->panic = sqlite3_column_int(st, 13) != 0;
}

/* Steps st to the end, handing each row to row_fn. Finalizes st. */
int
q_run(struct sq_store *s, sqlite3_stmt *st, int (*row_fn)(sqlite3_stmt *, void *), void *ud,
      int *rows, struct fr_err *err)
{
    int rc, n = 0, cb_rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        cb_rc = row_fn(st, ud);
        if (cb_rc != 0)
            break;
    }
    int frc = FR_OK;
    if (cb_rc != 0)
        frc = cb_rc;
    else if (rc != SQLITE_DONE)
        frc = sq_fail(s->db, rc, err, "query");
    sqlite3_finalize(st);
    if (rows != NULL)
        *rows = n;
    return frc;
}

struct q_conv_ctx {
    fr_conv_cb cb;
    void *ud;
};

static int
q_conv_fn(sqlite3_stmt *st, void *ud)
{
    struct q_conv_ctx *c = ud;
    struct fr_conv_row r;
    q_conv_row(st, &r);
    return c->cb(c->ud, &r);
}

/*
 * A listing with a limit, of the conversations that had a model, a tool, a failure's code or
 * class, decides each conversation it lists from that value's events read newest first (one
 * value: the first of these given; fr_sqlite_conversations): its index holds ts_ms and
 * conv_id, and no event of a conversation is older than its created_ms (the least ts_ms stored
 * into it), so a conversation is decided once the value's events down to its created_ms have
 * been read (from the newest a listed conversation can hold: before --until, at most the
 * page's last activity). A listing of recent activity reads the value's recent events only; IN read
 * all of them into a temporary index first (150 ms for a model in a quarter of the conversations of
 * 10M events). An old conversation still active sends the walk back to its start; at worst the
 * walk reads what IN did.
 */
struct q_walk {
    sqlite3_stmt *ev;       /* conv_id, ts_ms of the value's events, newest first */
    struct fr_strmap *seen; /* the conversations of the events read */
    int64_t low;            /* every event at or after it has been read */
    int rc;                 /* SQLITE_ROW while events remain, then SQLITE_DONE or an error */
};

/* Reads the next event: its conversation into seen. */
static void
q_walk_step(struct q_walk *w)
{
    w->rc = sqlite3_step(w->ev);
    if (w->rc != SQLITE_ROW)
        return;
    w->low = sqlite3_column_int64(w->ev, 1);
    const char *id = q_text(w->ev, 0);
    if (id != NULL) {
        bool created;
        *fr_strmap_slot(w->seen, id, &created) = w;
    }
}

static bool
q_walk_has(struct q_walk *w, const char *conv_id, int64_t created_ms)
{
    while (w->rc == SQLITE_ROW && w->low >= created_ms)
        q_walk_step(w);
    return fr_strmap_get(w->seen, conv_id) != NULL;
}

/* A value with fewer events than this is not walked: the set IN reads is small, and SQLite
   looks its conversations up instead of scanning every conversation for the few old ones. */
#define Q_WALK_FIRST 4096

static void
q_walk_free(struct q_walk *w)
{
    sqlite3_finalize(w->ev);
    fr_strmap_free(w->seen, NULL);
}

/* Starts walking the events of `sql` (value, then the newest ts_ms a listed conversation can
   hold) and reads the first Q_WALK_FIRST: 1 when more remain (the walk goes on), 0 when they
   were all or the walk cannot be prepared (freed: IN is used), or an error. */
static int
q_walk_start(struct sq_store *s, const char *sql, const char *value, int64_t upto, struct q_walk *w,
             struct fr_err *err)
{
    *w = (struct q_walk){.low = INT64_MAX, .rc = SQLITE_ROW, .seen = fr_strmap_new()};
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &w->ev, NULL);
    if (rc != SQLITE_OK) { /* an index it names missing, say: IN needs none */
        q_walk_free(w);
        return 0;
    }
    sqlite3_bind_text(w->ev, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(w->ev, 2, upto);
    for (int i = 0; i < Q_WALK_FIRST && w->rc == SQLITE_ROW; i++)
        q_walk_step(w);
    if (w->rc == SQLITE_ROW)
        return 1;
    rc = w->rc == SQLITE_DONE ? 0 : sq_fail(s->db, w->rc, err, "listing conversations");
    q_walk_free(w);
    return rc;
}

/* q_run's callback results that are not the caller's: the limit reached, the walk failed */
#define Q_WALK_LIMIT (-1001)
#define Q_WALK_FAILED (-1002)

struct q_walk_ctx {
    fr_conv_cb cb;
    void *ud;
    struct q_walk *w;
    int left;
};

static int
q_conv_walk_fn(sqlite3_stmt *st, void *ud)
{
    struct q_walk_ctx *c = ud;
    struct fr_conv_row r;
    q_conv_row(st, &r);
    if (!q_walk_has(c->w, r.conv_id, r.created_ms))
        return c->w->rc == SQLITE_ROW || c->w->rc == SQLITE_DONE ? 0 : Q_WALK_FAILED;
    int rc = c->cb(c->ud, &r);
    if (rc != 0)
        return rc;
    return --c->left == 0 ? Q_WALK_LIMIT : 0;
}

int
fr_sqlite_conversations(void *ctx, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                        struct fr_err *err)
{
    struct sq_store *s = ctx;
    char sql[2048] = "SELECT " CONV_COLUMNS " FROM conversations c WHERE 1";
    /*
     * Conversations having an event with a value: the set of those
     * conversations read once through the value's index (the partial error,
     * model and tool indexes), then ordered. A correlated EXISTS per listed
     * conversation let SQLite search the value's index once per conversation
     * (8.6 s for --model over 200k events; 64 ms this way). The provider has
     * no index of its own: its test runs per conversation on events_conv, and
     * stops at the first provider call that matches.
     */
    static const char *const having[] = {
        " AND c.conv_id IN (SELECT e.conv_id FROM events e WHERE e.error_code IS NOT NULL"
        " AND e.error_class = :eclass)",
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id"
        " AND e.provider = :provider)",
        " AND c.conv_id IN (SELECT e.conv_id FROM events e WHERE e.model = :model)",
        " AND c.conv_id IN (SELECT e.conv_id FROM events e WHERE e.tool = :tool)",
        " AND c.conv_id IN (SELECT e.conv_id FROM events e WHERE e.error_code IS NOT NULL"
        " AND e.error_code = :ecode)",
    };
    const char *vals[] = {f->error_class, f->provider, f->model, f->tool, f->error_code};
    /* with a limit, the events of one value are walked (q_walk), in the order of these: a
       code's failures through events_error (its class is the code's part before the dot, as
       the taxonomy makes every code), a class's through events_error_ts (every failure newest
       first, its code's prefix read from the index) */
    static const char *const walk_sql[] = {
        [0] = "SELECT conv_id, ts_ms FROM events INDEXED BY events_error_ts"
              " WHERE error_code IS NOT NULL AND ts_ms <= ?2 AND error_code >= ?1 || '.'"
              " AND error_code < ?1 || '/' ORDER BY ts_ms DESC",
        [2] = "SELECT conv_id, ts_ms FROM events WHERE model = ?1 AND ts_ms <= ?2"
              " ORDER BY ts_ms DESC",
        [3] = "SELECT conv_id, ts_ms FROM events WHERE tool = ?1 AND ts_ms <= ?2"
              " ORDER BY ts_ms DESC",
        [4] = "SELECT conv_id, ts_ms FROM events WHERE error_code IS NOT NULL"
              " AND error_class = substr(?1, 1, instr(?1, '.') - 1) AND error_code = ?1"
              " AND ts_ms <= ?2 ORDER BY ts_ms DESC",
    };
    static const int walk_order[] = {2, 3, 4, 0};
    int walked = -1;
    for (size_t i = 0; f->limit > 0 && walked < 0 && i < 4; i++)
        if (vals[walk_order[i]] != NULL)
            walked = walk_order[i];
    struct q_walk w;
    if (walked >= 0) {
        /* no event of a conversation is newer than its last activity */
        int64_t upto = f->until_ms ? f->until_ms - 1 : INT64_MAX;
        if (f->after_conv_id != NULL && f->after_activity_ms < upto)
            upto = f->after_activity_ms;
        int wrc = q_walk_start(s, walk_sql[walked], vals[walked], upto, &w, err);
        if (wrc < 0)
            return wrc;
        if (wrc == 0)
            walked = -1;
    }
    for (int i = 0; i < 5; i++)
        if (vals[i] != NULL && i != walked)
            strcat(sql, having[i]);
    if (f->after_conv_id != NULL)
        strcat(sql,
               " AND (last_activity_ms < :ams OR (last_activity_ms = :ams AND conv_id < :aid))");
    /* a prefix as a range of the primary key: every UTF-8 text that starts with it sorts from it
       to it followed by 0xff, a byte no UTF-8 text holds */
    char *prefix_end = NULL;
    if (f->id_prefix != NULL) {
        strcat(sql, " AND conv_id >= :pfx AND conv_id < :pfxend");
        prefix_end = fr_asprintf("%s\xff", f->id_prefix);
    }
    if (f->since_ms)
        strcat(sql, " AND last_activity_ms >= :since");
    if (f->until_ms)
        strcat(sql, " AND last_activity_ms < :until");
    if (f->status)
        strcat(sql, " AND status = :status");
    if (f->has_errors)
        strcat(sql, " AND error_count > 0");
    strcat(sql, " ORDER BY last_activity_ms DESC, conv_id DESC");
    if (f->limit > 0 && walked < 0)
        strcat(sql, " LIMIT :limit");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        free(prefix_end);
        rc = sq_fail(s->db, rc, err, "listing conversations");
        if (walked >= 0)
            q_walk_free(&w);
        return rc;
    }
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":pfx"), f->id_prefix, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":pfxend"), prefix_end, -1,
                      SQLITE_TRANSIENT);
    free(prefix_end);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ms);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), f->until_ms);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":status"), f->status, -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
    static const char *const names[] = {":eclass", ":provider", ":model", ":tool", ":ecode"};
    for (size_t i = 0; i < 5; i++)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, names[i]), vals[i], -1,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":ams"), f->after_activity_ms);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":aid"), f->after_conv_id, -1,
                      SQLITE_STATIC);
    if (walked < 0) {
        struct q_conv_ctx c = {cb, ud};
        return q_run(s, st, q_conv_fn, &c, NULL, err);
    }
    struct q_walk_ctx c = {cb, ud, &w, f->limit};
    int frc = q_run(s, st, q_conv_walk_fn, &c, NULL, err);
    if (frc == Q_WALK_LIMIT)
        frc = FR_OK;
    else if (frc == Q_WALK_FAILED)
        frc = sq_fail(s->db, w.rc, err, "listing conversations");
    q_walk_free(&w);
    return frc;
}

int
fr_sqlite_conversation(void *ctx, const char *conv_id, fr_conv_cb cb, void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT " CONV_COLUMNS " FROM conversations WHERE conv_id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading conversation");
    sqlite3_bind_text(st, 1, conv_id, -1, SQLITE_STATIC);
    struct q_conv_ctx c = {cb, ud};
    int rows = 0;
    int frc = q_run(s, st, q_conv_fn, &c, &rows, err);
    if (frc == FR_OK && rows == 0)
        return fr_err_set(err, FR_E_NOTFOUND, "no conversation %s", conv_id);
    return frc;
}

int
q_event_fn(sqlite3_stmt *st, void *ud)
{
    struct q_event_ctx *c = ud;
    struct fr_event_row r = {0};
    r.id = sqlite3_column_int64(st, 0);
    r.ts_ms = sqlite3_column_int64(st, 1);
    r.ingested_ms = sqlite3_column_int64(st, 2);
    r.kind = q_text(st, 3);
    r.has_seq = sqlite3_column_type(st, 4) != SQLITE_NULL;
    r.seq = sqlite3_column_int64(st, 4);
    for (int i = 0; i < FR_ID_COUNT; i++)
        r.ids[i] = q_text(st, 5 + i);
    r.status = q_text(st, 16);
    r.provider = q_text(st, 17);
    r.model = q_text(st, 18);
    r.tool = q_text(st, 19);
    r.has_duration = sqlite3_column_type(st, 20) != SQLITE_NULL;
    r.duration_ms = sqlite3_column_int64(st, 20);
    r.error_class = q_text(st, 21);
    r.error_code = q_text(st, 22);
    r.error_message = q_text(st, 23);
    r.body = q_text(st, 24);
    r.body_len = (size_t)sqlite3_column_bytes(st, 24);
    r.policy = q_text(st, 25);
    r.raw = sqlite3_column_blob(st, 26);
    r.raw_len = (size_t)sqlite3_column_bytes(st, 26);
    return c->cb(c->ud, &r);
}

/* Appends f's conditions to sql (sized 3072) and takes the text patterns they name (pat[0],
   pat[1]: bound, then freed, by events_prepare). */
static void
events_where(const struct fr_event_filter *f, char *sql, char *pat[2])
{
    bool by_pairs =
        f->id_value != NULL && (f->id_field == FR_ID_TRACE || f->id_field == FR_ID_REQUEST ||
                                f->id_field == FR_ID_SESSION);
    /* by trace, request or session id: by rowid among the id's events (SQ_TRACE_EVENT_IDS,
       SQ_IDCONV_EVENT_IDS), not through the index of another filter (kind: every event of the
       kind; sqlite_int.h) */
    strcat(sql, by_pairs ? " NOT INDEXED WHERE 1" : " WHERE 1");
    if (f->conv_id)
        strcat(sql, " AND conv_id = :conv");
    if (f->kind)
        strcat(sql, " AND kind = :kind");
    if (f->since_ms)
        strcat(sql, " AND ts_ms >= :since");
    if (f->until_ms)
        strcat(sql, " AND ts_ms < :until");
    if (f->errors_only || f->error_class || f->error_code)
        strcat(sql, " AND error_code IS NOT NULL");
    if (f->error_class)
        strcat(sql, " AND error_class = :eclass");
    if (f->error_code)
        strcat(sql, " AND error_code = :ecode");
    if (f->id_value != NULL && f->id_field >= 0 && f->id_field < FR_ID_COUNT) {
        strcat(sql, " AND ");
        strcat(sql, fr_id_names[f->id_field]); /* a column name from the fixed table */
        strcat(sql, " = :idv");
        if (f->id_field == FR_ID_TRACE) /* no index on trace_id alone (sqlite_trace.c) */
            strcat(sql, " AND id IN (" SQ_TRACE_EVENT_IDS(":idv") ")");
        else if (f->id_field == FR_ID_REQUEST) /* nor on these (sqlite_idconv.c) */
            strcat(sql, " AND id IN (" SQ_IDCONV_EVENT_IDS("request", ":idv") ")");
        else if (f->id_field == FR_ID_SESSION)
            strcat(sql, " AND id IN (" SQ_IDCONV_EVENT_IDS("session", ":idv") ")");
    }
    pat[0] = pat[1] = NULL;
    if (f->text != NULL) {
        pat[0] = fr_store_text_pattern(f->text, 0);
        pat[1] = fr_store_text_pattern(f->text, 1);
        strcat(
            sql,
            pat[1]
                ? " AND (fr_body(body) LIKE :t0 ESCAPE '\\' OR fr_body(body) LIKE :t1 ESCAPE '\\')"
                : " AND fr_body(body) LIKE :t0 ESCAPE '\\'");
    }
    if (f->after_id > 0)
        strcat(sql, " AND id > :after");
}

/* Prepares sql (built by events_where) and binds f's values; the patterns are the
   statement's (freed with it) or freed here when it does not prepare. */
static int
events_prepare(struct sq_store *s, const char *sql, const struct fr_event_filter *f, char *pat[2],
               sqlite3_stmt **out, struct fr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        free(pat[0]);
        free(pat[1]);
        return sq_fail(s->db, rc, err, "reading events");
    }
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":t0"), pat[0], -1, free);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":t1"), pat[1], -1, free);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":conv"), f->conv_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":kind"), f->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ms);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), f->until_ms);
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), f->offset);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":eclass"), f->error_class, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":ecode"), f->error_code, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":idv"), f->id_value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":after"), f->after_id);
    *out = st;
    return FR_OK;
}

int
fr_sqlite_events(void *ctx, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                 struct fr_err *err)
{
    struct sq_store *s = ctx;
    /* seq NULL sorts first; id (insert order) makes the order total */
    const char *order = f->by_arrival     ? (f->newest_first ? " ORDER BY id DESC" : " ORDER BY id")
                        : f->newest_first ? " ORDER BY ts_ms DESC, seq DESC, id DESC"
                                          : " ORDER BY ts_ms, seq, id";
    char sql[3072] = "SELECT " SQ_EVENT_COLUMNS " FROM events", *pat[2];
    /* with an offset, the rows skipped are stepped over by id alone (for a conversation, in its
       covering index), then the page's rows read by rowid: an OFFSET on the whole row read
       every row it skipped, 1.5 s to reach the last page of a 200k-event conversation */
    if (f->offset > 0)
        strcat(sql, " WHERE id IN (SELECT id FROM events");
    events_where(f, sql, pat);
    strcat(sql, order);
    if (f->limit > 0 || f->offset > 0)
        strcat(sql, " LIMIT :limit OFFSET :offset");
    if (f->offset > 0) {
        strcat(sql, ")");
        strcat(sql, order);
    }
    sqlite3_stmt *st;
    int rc = events_prepare(s, sql, f, pat, &st, err);
    if (rc != FR_OK)
        return rc;
    struct q_event_ctx c = {cb, ud};
    return q_run(s, st, q_event_fn, &c, NULL, err);
}

static int
q_count_fn(sqlite3_stmt *st, void *ud)
{
    *(int64_t *)ud = sqlite3_column_int64(st, 0);
    return 0;
}

int
fr_sqlite_count_events(void *ctx, const struct fr_event_filter *f, int64_t *n, struct fr_err *err)
{
    struct sq_store *s = ctx;
    char sql[3072] = "SELECT count(*) FROM events";
    char *pat[2];
    events_where(f, sql, pat);
    sqlite3_stmt *st;
    *n = 0;
    int rc = events_prepare(s, sql, f, pat, &st, err);
    return rc != FR_OK ? rc : q_run(s, st, q_count_fn, n, NULL, err);
}

struct q_roll_ctx {
    fr_rollup_cb cb;
    void *ud;
};

static int
q_roll_fn(sqlite3_stmt *st, void *ud)
{
    struct q_roll_ctx *c = ud;
    struct fr_rollup_row r;
    r.k1 = q_text(st, 0);
    r.k2 = q_text(st, 1);
    r.calls = sqlite3_column_int64(st, 2);
    r.errors = sqlite3_column_int64(st, 3);
    for (int i = 0; i < FR_TOKEN_COUNT; i++)
        r.tokens[i] = sqlite3_column_int64(st, 4 + i);
    r.lat_count = sqlite3_column_int64(st, 8);
    r.lat_sum_ms = sqlite3_column_int64(st, 9);
    r.lat_max_ms = sqlite3_column_int64(st, 10);
    for (int i = 0; i < FR_HIST_BUCKETS; i++)
        r.hist[i] = sqlite3_column_int64(st, 11 + i);
    r.bucket_ms = sqlite3_column_int64(st, 11 + FR_HIST_BUCKETS);
    return c->cb(c->ud, &r);
}

int
fr_sqlite_rollups(void *ctx, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
                  struct fr_err *err)
{
    struct sq_store *s = ctx;
    char sql[1024] =
        "SELECT k1, k2, sum(calls), sum(errors), sum(input_tokens), sum(output_tokens),"
        " sum(cached_tokens), sum(reasoning_tokens), sum(lat_count), sum(lat_sum_ms),"
        " max(lat_max_ms), sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6),"
        " sum(h7), sum(h8), sum(h9), sum(h10), ";
    strcat(sql, f->step_ms > 0 ? "minute_ms / :step * :step AS b" : "0 AS b");
    strcat(sql, " FROM rollups WHERE dim = :dim");
    if (f->since_ms)
        strcat(sql, " AND minute_ms >= :since - :since % 60000");
    if (f->until_ms)
        strcat(sql, " AND minute_ms < :until");
    strcat(sql, f->step_ms > 0 ? " GROUP BY b, k1, k2 ORDER BY b, sum(calls) DESC, k1, k2"
                               : " GROUP BY k1, k2 ORDER BY sum(calls) DESC, k1, k2");
    if (f->limit > 0)
        strcat(sql, " LIMIT :limit");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading rollups");
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":dim"), f->dim, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ms);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), f->until_ms);
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":step"), f->step_ms);
    struct q_roll_ctx c = {cb, ud};
    return q_run(s, st, q_roll_fn, &c, NULL, err);
}

struct q_anom_ctx {
    fr_anomaly_cb cb;
    void *ud;
};

static int
q_anom_fn(sqlite3_stmt *st, void *ud)
{
    struct q_anom_ctx *c = ud;
    struct fr_anomaly_row r = {
        .ts_ms = sqlite3_column_int64(st, 0),
        .conv_id = q_text(st, 1),
        .stream_id = q_text(st, 2),
        .anomaly = q_text(st, 3),
        .seq = sqlite3_column_int64(st, 4),
        .expected = sqlite3_column_int64(st, 5),
        .event_row = sqlite3_column_int64(st, 6),
    };
    return c->cb(c->ud, &r);
}

int
fr_sqlite_anomalies(void *ctx, const char *conv_id, int64_t since_ms, fr_anomaly_cb cb, void *ud,
                    struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        s->db,
        conv_id ? "SELECT ts_ms, conv_id, stream_id, anomaly, seq, expected, event_row FROM"
                  " sem_anomalies WHERE conv_id = ?1 AND ts_ms >= ?2 ORDER BY ts_ms, id"
                : "SELECT ts_ms, conv_id, stream_id, anomaly, seq, expected, event_row FROM"
                  " sem_anomalies WHERE ts_ms >= ?2 ORDER BY ts_ms, id",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading anomalies");
    if (conv_id)
        sqlite3_bind_text(st, 1, conv_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    struct q_anom_ctx c = {cb, ud};
    return q_run(s, st, q_anom_fn, &c, NULL, err);
}

struct q_group_ctx {
    fr_error_group_cb cb;
    void *ud;
};

static int
q_group_fn(sqlite3_stmt *st, void *ud)
{
    struct q_group_ctx *c = ud;
    struct fr_error_group g = {
        .key = q_text(st, 0),
        .count = sqlite3_column_int64(st, 1),
        .conversations = sqlite3_column_int64(st, 2),
        .first_ms = sqlite3_column_int64(st, 3),
        .last_ms = sqlite3_column_int64(st, 4),
        .conv_id = q_text(st, 5),
    };
    if (g.key == NULL)
        g.key = "";
    return c->cb(c->ud, &g);
}

/* The groups of one statement, kept (error_groups' fast path checks them before handing
   them on). */
struct q_groups_kept {
    struct fr_error_group *v;
    size_t n;
};

static int
q_group_keep(void *ud, const struct fr_error_group *g)
{
    struct q_groups_kept *k = ud;
    k->v = fr_realloc(k->v, (k->n + 1) * sizeof *k->v);
    k->v[k->n] = *g;
    k->v[k->n].key = fr_strdup(g->key);
    k->v[k->n].conv_id = NULL;
    k->n++;
    return 0;
}

/* The failures' filter of f, appended to sql (cap bytes): conversation, window, class, code. */
static void
q_failure_filter(char *sql, size_t cap, const struct fr_event_filter *f)
{
    size_t n = strlen(sql);
    snprintf(sql + n, cap - n, "%s%s%s%s%s", f->conv_id ? " AND conv_id = :conv" : "",
             f->since_ms ? " AND ts_ms >= :since" : "", f->until_ms ? " AND ts_ms < :until" : "",
             f->error_class ? " AND error_class = :eclass" : "",
             f->error_code ? " AND error_code = :ecode" : "");
}

static void
q_failure_bind(sqlite3_stmt *st, const struct fr_event_filter *f)
{
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":conv"), f->conv_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ms);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), f->until_ms);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":eclass"), f->error_class, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":ecode"), f->error_code, -1,
                      SQLITE_STATIC);
}

/* The failures by col, per conversation (f->group_per_conv: one row per failure), else by
   code grouped by class and code (the failures' index order), at most limit rows (0: all). */
static int
q_groups(struct sq_store *s, const struct fr_event_filter *f, const char *col, int limit,
         fr_error_group_cb cb, void *ud, struct fr_err *err)
{
    char sql[1024];
    /* per conversation: each failure as a group of one, added up by the caller (SQLite's
       GROUP BY sorted them first: 8x slower than the scan of the index it reads) */
    if (f->group_per_conv)
        snprintf(sql, sizeof sql,
                 "SELECT %s, 1, conv_id IS NOT NULL, ts_ms, ts_ms, conv_id FROM events"
                 " WHERE error_code IS NOT NULL",
                 col);
    else
        snprintf(sql, sizeof sql,
                 "SELECT %s, count(*), count(DISTINCT conv_id), min(ts_ms), max(ts_ms), NULL"
                 " FROM events WHERE error_code IS NOT NULL",
                 col);
    q_failure_filter(sql, sizeof sql, f);
    if (!f->group_per_conv)
        strcat(sql, " GROUP BY error_class, error_code ORDER BY 2 DESC, 1");
    if (limit > 0)
        strcat(sql, " LIMIT :limit");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "grouping errors");
    q_failure_bind(st, f);
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), limit);
    struct q_group_ctx c = {cb, ud};
    return q_run(s, st, q_group_fn, &c, NULL, err);
}

/* A group of q_groups_added: one key's failures. */
struct q_added {
    struct fr_error_group g;
    char *key;
    size_t index; /* in q_added_ctx.order */
};

/* A failure's group and a 64-bit hash of its conversation (FNV-1a, mixed): the distinct
   conversations of each group are counted once the pairs are sorted (two conversations of a
   group would count as one if their hashes agreed: with 89k failures, about once in 5e9
   such stores). A hash set of the pairs cost a cache miss and a page fault per new pair. */
struct q_pair {
    size_t group;
    uint64_t conv;
};

struct q_added_ctx {
    struct fr_strmap *groups; /* key -> struct q_added */
    struct q_added **order;   /* the groups in the order they were met */
    size_t ngroups;
    struct q_pair *pairs;
    size_t npairs, cap;
};

static int
q_added_fn(sqlite3_stmt *st, void *ud)
{
    struct q_added_ctx *c = ud;
    const char *key = q_text(st, 0), *conv = q_text(st, 1);
    int64_t ts = sqlite3_column_int64(st, 2);
    key = key ? key : "";
    bool created;
    void **slot = fr_strmap_slot(c->groups, key, &created);
    if (created) {
        struct q_added *a = fr_calloc(1, sizeof *a);
        a->key = fr_strdup(key);
        a->g.key = a->key;
        a->index = c->ngroups;
        a->g.first_ms = a->g.last_ms = ts;
        *slot = a;
        c->order = fr_realloc(c->order, (c->ngroups + 1) * sizeof *c->order);
        c->order[c->ngroups++] = a;
    }
    struct q_added *a = *slot;
    a->g.count++;
    a->g.first_ms = ts < a->g.first_ms ? ts : a->g.first_ms;
    a->g.last_ms = ts > a->g.last_ms ? ts : a->g.last_ms;
    if (conv != NULL) { /* count(DISTINCT conv_id): a failure without one is no conversation */
        if (c->npairs == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 4096;
            c->pairs = fr_realloc(c->pairs, c->cap * sizeof *c->pairs);
        }
        uint64_t h = fr_fnv1a64(conv);
        h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;
        c->pairs[c->npairs++] = (struct q_pair){a->index, h ^ (h >> 32)};
    }
    return 0;
}

static int
q_pair_cmp(const void *x, const void *y)
{
    const struct q_pair *a = x, *b = y;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    return a->conv < b->conv ? -1 : a->conv > b->conv;
}

static int
q_added_cmp(const void *x, const void *y)
{
    const struct q_added *a = *(struct q_added *const *)x, *b = *(struct q_added *const *)y;
    if (a->g.count != b->g.count)
        return a->g.count > b->g.count ? -1 : 1;
    return strcmp(a->key, b->key);
}

static void
q_added_free(void *value)
{
    struct q_added *a = value;
    free(a->key);
    free(a);
}

/*
 * Grouped by class, kind, model or tool: each failure's key, conversation and
 * time read from the failures' index (it holds them all since schema 18) and
 * added up here, in the order of q_groups (the most failures first, then by
 * key). SQLite's GROUP BY and count(DISTINCT) put the failures through
 * temporary B-trees (by class only the second: the index's order), which
 * spilled past the store's small page cache: at 10M events and 89k failures,
 * --by model took 166 ms past the process start for a 22 ms read of the
 * index. By code has faster paths of its own (below), and comes here when a
 * code was found under two classes.
 */
static int
q_groups_added(struct sq_store *s, const struct fr_event_filter *f, const char *col, int limit,
               fr_error_group_cb cb, void *ud, struct fr_err *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s, conv_id, ts_ms FROM events"
             " WHERE error_code IS NOT NULL",
             col);
    q_failure_filter(sql, sizeof sql, f);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "grouping errors");
    q_failure_bind(st, f);
    struct q_added_ctx c = {.groups = fr_strmap_new()};
    rc = q_run(s, st, q_added_fn, &c, NULL, err);
    if (c.npairs > 0)
        qsort(c.pairs, c.npairs, sizeof *c.pairs, q_pair_cmp);
    for (size_t i = 0; i < c.npairs; i++)
        c.order[c.pairs[i].group]->g.conversations += i == 0 ||
                                                      c.pairs[i].group != c.pairs[i - 1].group ||
                                                      c.pairs[i].conv != c.pairs[i - 1].conv;
    if (c.ngroups > 0)
        qsort(c.order, c.ngroups, sizeof *c.order, q_added_cmp);
    for (size_t i = 0; rc == FR_OK && i < c.ngroups && (limit <= 0 || i < (size_t)limit); i++)
        if (cb(ud, &c.order[i]->g) != 0)
            break;
    free(c.order);
    free(c.pairs);
    fr_strmap_free(c.groups, q_added_free);
    return rc;
}

/* By code over the whole store (no window, conversation or class): the totals the store
   keeps as it goes (schema version 13: error_codes), each code's first and last failure
   two look-ups in events_error. Reads a row per code instead of every failure. */
static int
q_code_totals(struct sq_store *s, const struct fr_event_filter *f, struct q_groups_kept *k,
              struct fr_err *err)
{
#define Q_CODE_TS(agg)                                                                             \
    "(CASE WHEN c.error_class != '' THEN (SELECT " agg " FROM events e"                            \
    " WHERE e.error_class = c.error_class AND e.error_code = c.error_code"                         \
    " AND e.error_code IS NOT NULL) ELSE (SELECT " agg " FROM events e"                            \
    " WHERE e.error_class IS NULL AND e.error_code = c.error_code"                                 \
    " AND e.error_code IS NOT NULL) END)"
    char sql[1024] = "SELECT c.error_code, c.n, c.convs, " Q_CODE_TS("min(ts_ms)") ", " Q_CODE_TS(
        "max(ts_ms)") ", NULL FROM error_codes c WHERE c.n > 0";
#undef Q_CODE_TS
    if (f->error_code)
        strcat(sql, " AND c.error_code = :ecode");
    strcat(sql, " ORDER BY 2 DESC, 1");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the failures' totals");
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":ecode"), f->error_code, -1,
                      SQLITE_STATIC);
    struct q_group_ctx c = {q_group_keep, k};
    return q_run(s, st, q_group_fn, &c, NULL, err);
}

int
fr_sqlite_error_groups(void *ctx, const struct fr_event_filter *f, const char *by,
                       fr_error_group_cb cb, void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    const char *col = fr_store_error_group_column(by, err);
    if (col == NULL)
        return err->code;
    if (f->group_per_conv)
        return q_groups(s, f, col, f->limit, cb, ud, err);
    if (strcmp(col, "error_code") != 0)
        return q_groups_added(s, f, col, f->limit, cb, ud, err);
    /* By code: a code names its class (`<class>.<reason>`), so grouping by class and code
       gives the same groups in the order of the events_error index, without the sort of
       every failure that grouping by code alone takes (at 83k failures: 28 ms, not 84). A
       code found under two classes (a classification rule of one's own) is grouped again
       by code alone, so that its conversations count once. */
    struct q_groups_kept k = {0};
    bool whole = !f->since_ms && !f->until_ms && !f->conv_id && !f->error_class;
    int rc = whole ? q_code_totals(s, f, &k, err) : q_groups(s, f, col, 0, q_group_keep, &k, err);
    bool twice = false;
    for (size_t i = 0; rc == FR_OK && i < k.n && !twice; i++)
        for (size_t j = i + 1; j < k.n && !twice; j++)
            twice = strcmp(k.v[i].key, k.v[j].key) == 0;
    if (rc == FR_OK && twice)
        rc = q_groups_added(s, f, col, f->limit, cb, ud, err);
    for (size_t i = 0; rc == FR_OK && !twice && i < k.n && (f->limit <= 0 || i < (size_t)f->limit);
         i++)
        if (cb(ud, &k.v[i]) != 0)
            break;
    for (size_t i = 0; i < k.n; i++)
        free((char *)k.v[i].key);
    free(k.v);
    return rc;
}
