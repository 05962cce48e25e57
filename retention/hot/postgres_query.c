/*
 * retention/hot/postgres_query.c - the read path of the PostgreSQL fleet store:
 * the same questions as the embedded store (store.h), answered across every
 * host that shipped into it. A conversation's index rows (one per host) are
 * merged as they are read (counts add up, the latest status and error win);
 * its events come from all hosts in time order. Statements are built from a
 * fixed set of clauses; every value is a parameter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retention/hot/pg_int.h"

/* A statement being built and its parameters ($1..). */
struct pgq {
    char sql[4096];
    const char *v[24];
    char nums[24][24];
    int n;
};

/* Appends clause, whose every "%s" is the parameter value v ($n). */
static void
pgq_add(struct pgq *q, const char *clause, const char *v)
{
    char ph[16], part[512];
    snprintf(ph, sizeof ph, "$%d", q->n + 1);
    q->v[q->n++] = v;
    snprintf(part, sizeof part, clause, ph, ph, ph);
    strncat(q->sql, part, sizeof q->sql - strlen(q->sql) - 1);
}

static void
pgq_int(struct pgq *q, const char *clause, int64_t v)
{
    snprintf(q->nums[q->n], sizeof q->nums[0], "%lld", (long long)v);
    pgq_add(q, clause, q->nums[q->n]);
}

static void
pgq_cat(struct pgq *q, const char *text)
{
    strncat(q->sql, text, sizeof q->sql - strlen(q->sql) - 1);
}

static PGresult *
pgq_run(struct pg_store *s, struct pgq *q, const char *what, struct fr_err *err)
{
    PGresult *r = PQexecParams(s->c, q->sql, q->n, NULL, q->v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        pg_fail(s, what, err);
        return NULL;
    }
    return r;
}

/* ---- conversations ---- */

#define PG_CONV_SELECT                                                                             \
    "SELECT conv_id, min(session_id),"                                                             \
    " (array_agg(runtime_key ORDER BY runtime_key_ts_ms DESC NULLS LAST))[1],"                     \
    " (array_agg(status ORDER BY status_ts_ms DESC NULLS LAST))[1],"                               \
    " min(created_ms), max(last_activity_ms), max(closed_ms), max(evicted_ms),"                    \
    " sum(event_count), sum(error_count),"                                                         \
    " (array_agg(last_error_class ORDER BY last_error_ts_ms DESC NULLS LAST))[1],"                 \
    " (array_agg(last_error_code ORDER BY last_error_ts_ms DESC NULLS LAST))[1],"                  \
    " (array_agg(last_error_message ORDER BY last_error_ts_ms DESC NULLS LAST))[1],"               \
    " bool_or(panic) FROM conversations c WHERE true"

static int
conv_rows(PGresult *r, fr_conv_cb cb, void *ud)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct fr_conv_row row = {
            .conv_id = pg_col_text(r, i, 0),
            .session_id = pg_col_text(r, i, 1),
            .runtime_key = pg_col_text(r, i, 2),
            .status = pg_col_text(r, i, 3),
            .created_ms = pg_col_int(r, i, 4),
            .last_activity_ms = pg_col_int(r, i, 5),
            .closed_ms = pg_col_int(r, i, 6),
            .evicted_ms = pg_col_int(r, i, 7),
            .event_count = pg_col_int(r, i, 8),
            .error_count = pg_col_int(r, i, 9),
            .last_error_class = pg_col_text(r, i, 10),
            .last_error_code = pg_col_text(r, i, 11),
            .last_error_message = pg_col_text(r, i, 12),
            .panic = pg_col_text(r, i, 13) != NULL && pg_col_text(r, i, 13)[0] == 't',
        };
        int rc = cb(ud, &row);
        if (rc != 0)
            return rc;
    }
    return FR_OK;
}

int
pg_conversations(void *ctx, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                 struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pgq q = {.sql = PG_CONV_SELECT};
    static const char *const exists[] = {
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id AND e.error_class = %s)",
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id AND e.provider = %s)",
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id AND e.model = %s)",
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id AND e.tool = %s)",
        " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = c.conv_id AND e.error_code = %s)",
    };
    const char *vals[] = {f->error_class, f->provider, f->model, f->tool, f->error_code};
    for (size_t i = 0; i < 5; i++)
        if (vals[i] != NULL)
            pgq_add(&q, exists[i], vals[i]);
    if (f->id_prefix != NULL) /* no pattern: '_' and '%' in an id are themselves */
        pgq_add(&q, " AND starts_with(c.conv_id, %s)", f->id_prefix);
    pgq_cat(&q, " GROUP BY conv_id HAVING true");
    if (f->after_conv_id != NULL) {
        pgq_int(&q, " AND (max(last_activity_ms) < %s OR (max(last_activity_ms) = %s",
                f->after_activity_ms);
        pgq_add(&q, " AND conv_id < %s))", f->after_conv_id);
    }
    if (f->since_ms)
        pgq_int(&q, " AND max(last_activity_ms) >= %s", f->since_ms);
    if (f->until_ms)
        pgq_int(&q, " AND max(last_activity_ms) < %s", f->until_ms);
    if (f->status)
        pgq_add(&q, " AND (array_agg(status ORDER BY status_ts_ms DESC NULLS LAST))[1] = %s",
                f->status);
    if (f->has_errors)
        pgq_cat(&q, " AND sum(error_count) > 0");
    pgq_cat(&q, " ORDER BY max(last_activity_ms) DESC, conv_id DESC");
    if (f->limit > 0)
        pgq_int(&q, " LIMIT %s", f->limit);
    PGresult *r = pgq_run(s, &q, "listing conversations", err);
    if (r == NULL)
        return err->code;
    int rc = conv_rows(r, cb, ud);
    PQclear(r);
    return rc;
}

int
pg_conversation(void *ctx, const char *conv_id, fr_conv_cb cb, void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pgq q = {.sql = PG_CONV_SELECT};
    char hashed[72];
    pgq_add(&q, " AND conv_id = %s GROUP BY conv_id", pg_id(conv_id, hashed));
    PGresult *r = pgq_run(s, &q, "reading a conversation", err);
    if (r == NULL)
        return err->code;
    int rc = PQntuples(r) == 0 ? fr_err_set(err, FR_E_NOTFOUND, "no conversation %s", conv_id)
                               : conv_rows(r, cb, ud);
    PQclear(r);
    return rc;
}

/* ---- events ---- */

/* Appends f's conditions to q; hc and hv (72 bytes each) hold its ids' forms, pat[0] and pat[1]
   the text patterns (the caller frees them once the statement ran). */
static void
events_where(struct pgq *q, const struct fr_event_filter *f, char *hc, char *hv, char *pat[2])
{
    if (f->conv_id)
        pgq_add(q, " AND conv_id = %s", pg_id(f->conv_id, hc));
    if (f->kind)
        pgq_add(q, " AND kind = %s", f->kind);
    if (f->since_ms)
        pgq_int(q, " AND ts_ms >= %s", f->since_ms);
    if (f->until_ms)
        pgq_int(q, " AND ts_ms < %s", f->until_ms);
    if (f->errors_only || f->error_class || f->error_code)
        pgq_cat(q, " AND error_code IS NOT NULL");
    if (f->error_class)
        pgq_add(q, " AND error_class = %s", f->error_class);
    if (f->error_code)
        pgq_add(q, " AND error_code = %s", f->error_code);
    if (f->id_value != NULL && f->id_field >= 0 && f->id_field < FR_ID_COUNT) {
        char clause[64];
        /* a column name from the fixed table */
        snprintf(clause, sizeof clause, " AND %s = %%s", fr_id_names[f->id_field]);
        pgq_add(q, clause, pg_id(f->id_value, hv));
    }
    pat[0] = pat[1] = NULL;
    if (f->text != NULL) {
        pat[0] = fr_store_text_pattern(f->text, 0);
        pat[1] = fr_store_text_pattern(f->text, 1);
        pgq_add(q, " AND (body ILIKE %s", pat[0]);
        if (pat[1] != NULL)
            pgq_add(q, " OR body ILIKE %s", pat[1]);
        pgq_cat(q, ")");
    }
    if (f->after_id > 0)
        pgq_int(q, " AND gid > %s", f->after_id);
}

int
pg_count_events(void *ctx, const struct fr_event_filter *f, int64_t *n, struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pgq q = {.sql = "SELECT count(*) FROM events WHERE true"};
    char hc[72], hv[72], *pat[2];
    events_where(&q, f, hc, hv, pat);
    PGresult *r = pgq_run(s, &q, "counting events", err);
    free(pat[0]);
    free(pat[1]);
    if (r == NULL)
        return err->code;
    *n = pg_col_int(r, 0, 0);
    PQclear(r);
    return FR_OK;
}

int
pg_events(void *ctx, const struct fr_event_filter *f, fr_event_cb cb, void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pgq q = {
        .sql = "SELECT gid, ts_ms, ingested_ms, kind, seq, NULLIF(conv_id, ''), session_id,"
               " turn_id, run_id, request_id, stream_id, event_id, trace_id, span_id,"
               " runtime_key, inference_id, status, provider, model, tool, duration_ms,"
               " error_class, error_code, error_message, body, policy FROM events WHERE true"};
    char hc[72], hv[72], *pat[2];
    events_where(&q, f, hc, hv, pat);
    /* hosts' events interleave by time; host and row make the order total */
    if (f->by_arrival)
        pgq_cat(&q, f->newest_first ? " ORDER BY gid DESC" : " ORDER BY gid");
    else
        pgq_cat(&q, f->newest_first
                        ? " ORDER BY ts_ms DESC, seq DESC NULLS LAST, ingested_ms DESC, gid DESC"
                        : " ORDER BY ts_ms, seq NULLS FIRST, ingested_ms, gid");
    if (f->limit > 0)
        pgq_int(&q, " LIMIT %s", f->limit);
    if (f->offset > 0)
        pgq_int(&q, " OFFSET %s", f->offset);
    /* streamed a row at a time (single-row mode): a day partition archived by central
       retention, or a long conversation, never sits in memory whole */
    bool sent =
        PQsendQueryParams(s->c, q.sql, q.n, NULL, q.v, NULL, NULL, 0) && PQsetSingleRowMode(s->c);
    free(pat[0]);
    free(pat[1]);
    if (!sent)
        return pg_fail(s, "reading events", err);
    int rc = FR_OK;
    PGresult *r;
    while ((r = PQgetResult(s->c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && rc == FR_OK) {
            struct fr_event_row row = {
                .id = pg_col_int(r, 0, 0),
                .ts_ms = pg_col_int(r, 0, 1),
                .ingested_ms = pg_col_int(r, 0, 2),
                .kind = pg_col_text(r, 0, 3),
                .has_seq = !PQgetisnull(r, 0, 4),
                .seq = pg_col_int(r, 0, 4),
                .status = pg_col_text(r, 0, 16),
                .provider = pg_col_text(r, 0, 17),
                .model = pg_col_text(r, 0, 18),
                .tool = pg_col_text(r, 0, 19),
                .has_duration = !PQgetisnull(r, 0, 20),
                .duration_ms = pg_col_int(r, 0, 20),
                .error_class = pg_col_text(r, 0, 21),
                .error_code = pg_col_text(r, 0, 22),
                .error_message = pg_col_text(r, 0, 23),
                .body = pg_col_text(r, 0, 24),
                .body_len = (size_t)PQgetlength(r, 0, 24),
                .policy = pg_col_text(r, 0, 25),
            };
            for (int k = 0; k < FR_ID_COUNT; k++)
                row.ids[k] = pg_col_text(r, 0, 5 + k);
            rc = cb(ud, &row); /* stopped: the rest is drained, the connection stays usable */
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == FR_OK) {
            const char *msg = PQresultErrorMessage(r);
            fr_err_set(err, FR_E_STORE, "%s: reading events: %.*s", s->safe_url,
                       (int)strcspn(msg, "\n"), msg);
            rc = FR_E_STORE;
        }
        PQclear(r);
    }
    return rc;
}

/* ---- rollups and failures ---- */

int
pg_rollups(void *ctx, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
           struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pgq q = {.sql = "SELECT k1, k2, sum(calls), sum(errors), sum(input_tokens),"
                           " sum(output_tokens), sum(cached_tokens), sum(reasoning_tokens),"
                           " sum(lat_count), sum(lat_sum_ms), max(lat_max_ms)"};
    for (int i = 0; i < FR_HIST_BUCKETS; i++) {
        char h[24];
        snprintf(h, sizeof h, ", sum(h[%d])", i + 1);
        pgq_cat(&q, h);
    }
    if (f->step_ms > 0)
        pgq_int(&q, ", minute_ms / %s::bigint * %s::bigint AS b", f->step_ms);
    else
        pgq_cat(&q, ", 0 AS b");
    pgq_add(&q, " FROM rollups WHERE dim = %s", f->dim);
    if (f->since_ms)
        pgq_int(&q, " AND minute_ms >= %s", f->since_ms - f->since_ms % 60000);
    if (f->until_ms)
        pgq_int(&q, " AND minute_ms < %s", f->until_ms);
    pgq_cat(&q, f->step_ms > 0 ? " GROUP BY b, k1, k2 ORDER BY b, sum(calls) DESC, k1, k2"
                               : " GROUP BY k1, k2 ORDER BY sum(calls) DESC, k1, k2");
    if (f->limit > 0)
        pgq_int(&q, " LIMIT %s", f->limit);
    PGresult *r = pgq_run(s, &q, "reading rollups", err);
    if (r == NULL)
        return err->code;
    int rc = FR_OK;
    for (int i = 0; rc == FR_OK && i < PQntuples(r); i++) {
        struct fr_rollup_row row = {
            .k1 = pg_col_text(r, i, 0),
            .k2 = pg_col_text(r, i, 1),
            .calls = pg_col_int(r, i, 2),
            .errors = pg_col_int(r, i, 3),
            .lat_count = pg_col_int(r, i, 8),
            .lat_sum_ms = pg_col_int(r, i, 9),
            .lat_max_ms = pg_col_int(r, i, 10),
        };
        for (int t = 0; t < FR_TOKEN_COUNT; t++)
            row.tokens[t] = pg_col_int(r, i, 4 + t);
        for (int h = 0; h < FR_HIST_BUCKETS; h++)
            row.hist[h] = pg_col_int(r, i, 11 + h);
        row.bucket_ms = pg_col_int(r, i, 11 + FR_HIST_BUCKETS);
        rc = cb(ud, &row);
    }
    PQclear(r);
    return rc;
}

int
pg_error_groups(void *ctx, const struct fr_event_filter *f, const char *by, fr_error_group_cb cb,
                void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    const char *col = fr_store_error_group_column(by, err);
    if (col == NULL)
        return err->code;
    struct pgq q;
    q.n = 0;
    snprintf(q.sql, sizeof q.sql,
             "SELECT COALESCE(%s, ''), count(*), count(DISTINCT NULLIF(conv_id, '')),"
             " min(ts_ms), max(ts_ms), %s FROM events WHERE error_code IS NOT NULL",
             col, f->group_per_conv ? "NULLIF(conv_id, '')" : "NULL::text");
    char hc[72];
    if (f->conv_id)
        pgq_add(&q, " AND conv_id = %s", pg_id(f->conv_id, hc));
    if (f->since_ms)
        pgq_int(&q, " AND ts_ms >= %s", f->since_ms);
    if (f->until_ms)
        pgq_int(&q, " AND ts_ms < %s", f->until_ms);
    if (f->error_class)
        pgq_add(&q, " AND error_class = %s", f->error_class);
    if (f->error_code)
        pgq_add(&q, " AND error_code = %s", f->error_code);
    pgq_cat(&q, f->group_per_conv ? " GROUP BY 1, 6" : " GROUP BY 1 ORDER BY 2 DESC, 1");
    if (f->limit > 0)
        pgq_int(&q, " LIMIT %s", f->limit);
    PGresult *r = pgq_run(s, &q, "grouping errors", err);
    if (r == NULL)
        return err->code;
    int rc = FR_OK;
    for (int i = 0; rc == FR_OK && i < PQntuples(r); i++) {
        struct fr_error_group g = {
            .key = pg_col_text(r, i, 0),
            .count = pg_col_int(r, i, 1),
            .conversations = pg_col_int(r, i, 2),
            .first_ms = pg_col_int(r, i, 3),
            .last_ms = pg_col_int(r, i, 4),
            .conv_id = pg_col_text(r, i, 5),
        };
        rc = cb(ud, &g);
    }
    PQclear(r);
    return rc;
}
