/*
 * agent/api/query.c - the read-only query API (docs/api.md): conversations
 * (paged by cursor), one conversation across tiers, events, errors (listed
 * or grouped). Each request takes one connection of the read pool.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/api.h"
#include "agent/api/params.h"
#include "collectors/collector.h"
#include "collectors/taxonomy.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "exporters/render.h"
#include "retention/hot/archive.h"
#include "retention/retention.h"

/*
 * The store the query API reads: the hot store's read pool, or with
 * ship.query the fleet store's (opened on first use; a connection
 * that failed is opened again by the next request, so a restart of the
 * fleet store costs one 503). NULL with err when it cannot be reached.
 */
static struct fr_store *
q_take(struct fr_pipeline *p, struct fr_err *err)
{
    if (p->query_readers == NULL)
        return fr_readers_acquire(p->readers);
    return fr_readers_take(p->query_readers, err);
}

static void
q_give(struct fr_pipeline *p, struct fr_store *rs, int rc)
{
    if (p->query_readers == NULL)
        fr_readers_release(p->readers, rs);
    else
        fr_readers_give(p->query_readers, rs, rc == FR_E_STORE);
}

static enum MHD_Result
take_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    fr_qparams_add(cls, key, value);
    return MHD_YES;
}

void
fr_api_qparams(struct MHD_Connection *c, struct fr_qparams *q)
{
    memset(q, 0, sizeof *q);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_param, q);
}

/* The request's parameters; then the common ones are checked (see params.h). */
static bool
parse_common(struct MHD_Connection *c, struct fr_qparams *q, const char *const *allowed,
             int64_t *since, int64_t *until, int *limit, int deflimit, char *msg, size_t msglen)
{
    fr_api_qparams(c, q);
    return fr_qparams_common(q, allowed, fr_now_ms(), deflimit, since, until, limit, msg, msglen);
}

struct collect {
    json_t *arr;
    int64_t last_ms;
    char last_id[300];
};

static int
collect_conv(void *ud, const struct fr_conv_row *r)
{
    struct collect *c = ud;
    json_array_append_new(c->arr, fr_render_conv(r));
    c->last_ms = r->last_activity_ms;
    snprintf(c->last_id, sizeof c->last_id, "%s", r->conv_id);
    return 0;
}

static int
collect_conv_id(void *ud, const struct fr_conv_row *r)
{
    json_array_append_new(ud, json_string(r->conv_id));
    return 0;
}

/* The ids of up to 5 conversations that start with id (one cut short), newest first. */
static json_t *
conv_ids_prefixed(struct fr_store *rs, const char *id)
{
    json_t *ids = json_array();
    struct fr_conv_filter pf = {.id_prefix = id, .limit = 5};
    struct fr_err ignored = {0};
    if (rs != NULL && fr_store_conversations(rs, &pf, collect_conv_id, ids, &ignored) != FR_OK)
        json_array_clear(ids);
    return ids;
}

static int
collect_event(void *ud, const struct fr_event_row *r)
{
    json_array_append_new(ud, fr_render_event(r, NULL, 0));
    return 0;
}

enum MHD_Result
fr_api_get_conversations(struct fr_pipeline *p, struct MHD_Connection *c)
{
    static const char *const allowed[] = {
        "since", "until", "status", "has_errors", "error_class", "error_code", "provider",
        "model", "tool",  "limit",  "cursor",     "conv_id",     "prefix",     NULL};
    struct fr_conv_filter f = {0};
    char msg[600], after[300];
    int limit;
    struct fr_qparams q;
    if (!parse_common(c, &q, allowed, &f.since_ms, &f.until_ms, &limit, 50, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    const char *s;
    static const char *const statuses[] = {"active", "idle", "closed", "evicted", "error", NULL};
    if ((s = fr_qparams_get(&q, "status"))) {
        bool ok = false;
        for (const char *const *t = statuses; *t; t++)
            ok |= strcmp(*t, s) == 0;
        if (!ok)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "status: expected active, idle, closed, evicted or error", NULL);
        f.status = s;
    }
    if ((s = fr_qparams_get(&q, "has_errors"))) {
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "has_errors: expected true or false",
                                NULL);
        f.has_errors = strcmp(s, "true") == 0;
    }
    if ((s = fr_qparams_get(&q, "error_class"))) {
        if (fr_error_class_parse(s) <= 0)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "error_class: expected validation, provider, tool, projection, "
                                "storage, transport or runtime",
                                NULL);
        f.error_class = s;
    }
    f.error_code = fr_qparams_get(&q, "error_code");
    f.provider = fr_qparams_get(&q, "provider");
    f.model = fr_qparams_get(&q, "model");
    f.tool = fr_qparams_get(&q, "tool");
    f.id_prefix = fr_qparams_get(&q, "prefix");
    if ((s = fr_qparams_get(&q, "cursor"))) {
        if (!fr_cursor_decode(s, &f.after_activity_ms, after, sizeof after))
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "cursor: not a cursor this server returned", NULL);
        f.after_conv_id = after;
    }
    f.limit = limit + 1; /* one more tells whether there is a next page */
    /* conv_id: that conversation's index row alone, or an empty list (a look-up, never 404) */
    const char *id = fr_qparams_get(&q, "conv_id");
    struct collect col = {.arr = json_array()};
    struct fr_err err = {0};
    struct fr_store *rs = q_take(p, &err);
    int rc = rs == NULL ? err.code
             : id       ? fr_store_conversation(rs, id, collect_conv, &col, &err)
                        : fr_store_conversations(rs, &f, collect_conv, &col, &err);
    if (id != NULL && rc == FR_E_NOTFOUND)
        rc = FR_OK;
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(col.arr);
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    json_t *next = json_null();
    if (json_array_size(col.arr) > (size_t)limit) {
        json_array_remove(col.arr, (size_t)limit);
        json_t *last = json_array_get(col.arr, (size_t)limit - 1);
        char *cur = fr_cursor_encode(json_integer_value(json_object_get(last, "last_activity_ms")),
                                     json_string_value(json_object_get(last, "conv_id")));
        next = json_string(cur);
        free(cur);
    }
    return fr_api_json(p, c, MHD_HTTP_OK,
                       json_pack("{s:o,s:o}", "conversations", col.arr, "next_cursor", next), NULL);
}

/* Events rendered as text (fr_render_event_text) with their conversation-order keys. */
static int
collect_event_text(void *ud, const struct fr_event_row *r)
{
    size_t n = 0;
    char *s = fr_render_event_text(r, &n);
    fr_render_texts_add(ud, r->ts_ms, r->has_seq ? r->seq : -1, r->id, s, n);
    return 0;
}

/* ?summary=true: the index row alone (live views poll it; the events are read when it moved). */
static enum MHD_Result
conversation_summary(struct fr_pipeline *p, struct MHD_Connection *c, const char *id)
{
    struct collect col = {.arr = json_array()};
    struct fr_err err = {0};
    struct fr_store *rs = q_take(p, &err);
    int rc = rs == NULL ? err.code : fr_store_conversation(rs, id, collect_conv, &col, &err);
    if (rc == FR_E_NOTFOUND && fr_store_is_erased(rs, id))
        fr_err_set(&err, rc, "conversation %.200s was erased: nothing of it is kept", id);
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(col.arr);
        return fr_api_error(p, c,
                            rc == FR_E_NOTFOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                            err.msg, NULL);
    }
    json_t *conv = json_incref(json_array_get(col.arr, 0));
    json_decref(col.arr);
    return fr_api_json(p, c, MHD_HTTP_OK, json_pack("{s:o}", "conversation", conv), NULL);
}

static int
collect_anomaly(void *ud, const struct fr_anomaly_row *r)
{
    json_array_append_new(ud, json_pack("{s:I,s:s?,s:s,s:I,s:I,s:I}", "ts_ms", (json_int_t)r->ts_ms,
                                        "stream_id", r->stream_id, "anomaly", r->anomaly, "seq",
                                        (json_int_t)r->seq, "expected", (json_int_t)r->expected,
                                        "event_row", (json_int_t)r->event_row));
    return 0;
}

enum MHD_Result
fr_api_get_conversation(struct fr_pipeline *p, struct MHD_Connection *c, const char *id)
{
    static const char *const allowed[] = {"kind", "summary", "offset", "limit", NULL};
    struct fr_event_filter f = {.conv_id = id};
    char msg[600];
    int limit;
    int64_t unused = 0;
    struct fr_qparams q;
    fr_api_qparams(c, &q);
    if (!fr_qparams_common_max(&q, allowed, fr_now_ms(), 1000, 100000, &unused, &unused, &limit,
                               msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    if ((f.kind = fr_qparams_get(&q, "kind")) && fr_kind_parse(f.kind) < 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "kind: not a wire kind", NULL);
    const char *summary = fr_qparams_get(&q, "summary");
    if (summary != NULL && strcmp(summary, "true") != 0 && strcmp(summary, "false") != 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "summary: expected true or false", NULL);
    if (summary != NULL && strcmp(summary, "true") == 0)
        return conversation_summary(p, c, id);
    /* a slice of the events in conversation order (a long conversation shown while the rest
       loads); without limit, every event from offset on */
    long long offset = 0;
    const char *off = fr_qparams_get(&q, "offset");
    char *end = NULL;
    if (off != NULL && ((offset = strtoll(off, &end, 10)) < 0 || *end != '\0'))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "offset: expected an integer >= 0", NULL);
    struct collect col = {.arr = json_array()};
    struct fr_render_texts events = {0};
    struct fr_err err = {0};
    size_t cold_skipped = 0;
    struct fr_store *rs = q_take(p, &err);
    int rc = rs == NULL ? err.code : fr_store_conversation(rs, id, collect_conv, &col, &err);
    bool unindexed = false;
    if (rc == FR_E_NOTFOUND && fr_store_is_erased(rs, id)) {
        fr_err_set(&err, rc, "conversation %.200s was erased: nothing of it is kept", id);
    } else if (rc == FR_E_NOTFOUND) {
        /* no longer indexed (its days pruned from the fleet store, a database rebuilt from
           its archive): the archive may still hold its events */
        unindexed = true;
        rc = FR_OK;
    }
    /* older events of the conversation may be in warm (or cold) segments; when none can be,
       only the slice is read (a long conversation's pages, each in milliseconds) */
    int64_t total = 0;
    bool whole = true;
    f.offset = offset;
    f.limit = fr_qparams_get(&q, "limit") != NULL ? limit : 0;
    if (rc == FR_OK)
        rc = fr_tier_events_page(rs, &f, fr_pipeline_archive_keys(p), collect_event_text, &events,
                                 &total, &whole, &cold_skipped, &err);
    json_t *prefixed = NULL; /* not found: the conversations whose id starts with it */
    if (rc == FR_OK && unindexed && total == 0) {
        rc = fr_err_set(&err, FR_E_NOTFOUND, "no conversation %.200s", id);
        prefixed = conv_ids_prefixed(rs, id);
    }
    json_t *anomalies = json_array();
    if (rc == FR_OK)
        rc = fr_store_anomalies(rs, id, 0, collect_anomaly, anomalies, &err);
    q_give(p, rs, rc);
    json_t *conv = json_incref(json_array_get(col.arr, 0));
    json_decref(col.arr);
    if (rc != FR_OK) {
        json_decref(conv);
        fr_render_texts_free(&events);
        json_decref(anomalies);
        if (prefixed != NULL && json_array_size(prefixed) > 0) {
            char *clean = fr_utf8_sanitize(err.msg);
            json_t *j = json_pack("{s:s,s:o}", "error", clean, "did_you_mean", prefixed);
            free(clean);
            return fr_api_json(p, c, MHD_HTTP_NOT_FOUND, j, NULL);
        }
        json_decref(prefixed);
        return fr_api_error(p, c,
                            rc == FR_E_NOTFOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                            err.msg, NULL);
    }
    json_decref(prefixed);
    /* a long conversation is the largest answer: written as text, no tree per event; from
       every tier, the whole sorted and its slice kept (a page read alone comes sorted) */
    size_t at = (uint64_t)offset < (uint64_t)total ? (size_t)offset : (size_t)total;
    if (whole)
        at = fr_render_texts_page(&events, f.offset, f.limit);
    char *cj = conv ? json_dumps(conv, JSON_COMPACT) : NULL,
         *aj = json_dumps(anomalies, JSON_COMPACT);
    json_decref(conv);
    json_decref(anomalies);
    size_t size = 128 + (cj ? strlen(cj) : 4) + (aj ? strlen(aj) : 2);
    for (size_t i = 0; i < events.n; i++)
        size += events.v[i].len + 1;
    char *out = fr_malloc(size), *o = out;
    o += sprintf(o, "{\"conversation\":%s,\"total_events\":%lld,\"offset\":%zu,\"events\":[",
                 cj ? cj : "null", (long long)total, at);
    for (size_t i = 0; i < events.n; i++) {
        if (i > 0)
            *o++ = ',';
        memcpy(o, events.v[i].text, events.v[i].len);
        o += events.v[i].len;
    }
    o += sprintf(o, "],\"anomalies\":%s,\"cold_segments_skipped\":%zu}\n", aj ? aj : "[]",
                 cold_skipped);
    free(cj);
    free(aj);
    fr_render_texts_free(&events);
    return fr_api_answer(p, c, MHD_HTTP_OK, "application/json", out, (size_t)(o - out), NULL);
}

enum MHD_Result
fr_api_get_events(struct fr_pipeline *p, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"conv_id",    "kind",         "error_class", "error_code",
                                          "since",      "until",        "limit",       "trace_id",
                                          "request_id", "session_id",   "turn_id",     "span_id",
                                          "event_id",   "inference_id", "text",        NULL};
    struct fr_event_filter f = {0};
    char msg[600];
    struct fr_qparams q;
    if (!parse_common(c, &q, allowed, &f.since_ms, &f.until_ms, &f.limit, 100, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    f.conv_id = fr_qparams_get(&q, "conv_id");
    if ((f.kind = fr_qparams_get(&q, "kind")) && fr_kind_parse(f.kind) < 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "kind: not a wire kind", NULL);
    if ((f.error_class = fr_qparams_get(&q, "error_class")) &&
        fr_error_class_parse(f.error_class) <= 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "error_class: not an error class", NULL);
    f.error_code = fr_qparams_get(&q, "error_code");
    /* look-ups by the ids an investigation starts from, one at a time: trace, request and
       session are indexed and read from every tier; the others scan the hot tier */
    static const int idf[] = {FR_ID_TRACE, FR_ID_REQUEST, FR_ID_SESSION,  FR_ID_TURN,
                              FR_ID_SPAN,  FR_ID_EVENT,   FR_ID_INFERENCE};
    for (size_t i = 0; i < sizeof idf / sizeof *idf; i++) {
        const char *v = fr_qparams_get(&q, fr_id_names[idf[i]]);
        if (v == NULL)
            continue;
        if (f.id_value != NULL)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "give one of trace_id, request_id, session_id, turn_id, span_id, "
                                "event_id, inference_id",
                                NULL);
        f.id_field = idf[i];
        f.id_value = v;
    }
    /* text: a scan of the hot tier's stored (redacted) envelopes, newest first */
    if ((f.text = fr_qparams_get(&q, "text")) != NULL && strlen(f.text) > 200)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "text: at most 200 bytes", NULL);
    bool indexed_id =
        f.id_value != NULL &&
        (f.id_field == FR_ID_TRACE || f.id_field == FR_ID_REQUEST || f.id_field == FR_ID_SESSION);
    bool hot_only = (f.conv_id == NULL && !indexed_id) || f.text != NULL;
    f.newest_first = hot_only;
    json_t *events = json_array();
    struct fr_err err = {0};
    struct fr_store *rs = q_take(p, &err);
    int rc;
    if (rs == NULL) {
        rc = err.code;
    } else if (hot_only) {
        rc = fr_store_events(rs, &f, collect_event, events, &err);
    } else {
        /* one conversation's (or one trace's, request's, session's) events: also those that
           moved to the archive tiers */
        rc = fr_tier_events(rs, &f, fr_pipeline_archive_keys(p), collect_event, events, NULL, &err);
        fr_render_sort_events(events);
        while (f.limit > 0 && json_array_size(events) > (size_t)f.limit)
            json_array_remove(events, json_array_size(events) - 1);
    }
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(events);
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    return fr_api_json(p, c, MHD_HTTP_OK, json_pack("{s:o}", "events", events), NULL);
}

static int
collect_group(void *ud, const struct fr_error_group *g)
{
    json_array_append_new(
        ud, json_pack("{s:s,s:I,s:I,s:I,s:I}", "key", g->key, "count", (json_int_t)g->count,
                      "conversations", (json_int_t)g->conversations, "first_ms",
                      (json_int_t)g->first_ms, "last_ms", (json_int_t)g->last_ms));
    return 0;
}

/* GET /v1/errors: failures, newest first, or grouped (?by=) like `flightrec errors`. */
enum MHD_Result
fr_api_get_errors(struct fr_pipeline *p, struct MHD_Connection *c)
{
    /* error_class and error_code, as on /v1/events; class and code are kept as aliases */
    static const char *const allowed[] = {"error_class", "error_code", "class", "code", "conv_id",
                                          "since",       "until",      "limit", "by",   NULL};
    struct fr_event_filter f = {.errors_only = true, .newest_first = true};
    char msg[600];
    struct fr_qparams q;
    if (!parse_common(c, &q, allowed, &f.since_ms, &f.until_ms, &f.limit, 100, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    f.error_class = fr_qparams_get(&q, "error_class");
    if (f.error_class == NULL)
        f.error_class = fr_qparams_get(&q, "class");
    if (f.error_class && fr_error_class_parse(f.error_class) <= 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "error_class: not an error class", NULL);
    f.error_code = fr_qparams_get(&q, "error_code");
    if (f.error_code == NULL)
        f.error_code = fr_qparams_get(&q, "code");
    f.conv_id = fr_qparams_get(&q, "conv_id");
    const char *by = fr_qparams_get(&q, "by");
    static const char *const bys[] = {"code", "class", "model", "tool", "kind", NULL};
    bool by_ok = by == NULL;
    for (const char *const *b = bys; by && *b; b++)
        by_ok |= strcmp(*b, by) == 0;
    if (!by_ok)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                            "by: expected code, class, model, tool or kind", NULL);
    /* every read covers the same tiers: hot, warm, and cold when the agent has its key */
    json_t *rows = json_array();
    struct fr_err err = {0};
    size_t skipped = 0;
    struct fr_store *rs = q_take(p, &err);
    int rc;
    if (rs == NULL) {
        rc = err.code;
    } else if (by) {
        rc = fr_tier_error_groups(rs, &f, fr_pipeline_archive_keys(p), by, collect_group, rows,
                                  &skipped, &err);
    } else {
        /* the newest `limit` of hot, and every archived failure (segments are read in time
           order, so their newest are known only at the end), in one snapshot */
        struct fr_event_filter archived = f;
        archived.limit = 0;
        bool began;
        rc = fr_store_snapshot_begin(rs, &began, &err);
        if (rc == FR_OK)
            rc = fr_store_events(rs, &f, collect_event, rows, &err);
        if (rc == FR_OK)
            rc = fr_archive_events(rs, &archived, fr_pipeline_archive_keys(p), collect_event, rows,
                                   &skipped, &err);
        fr_store_snapshot_end(rs, began);
    }
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(rows);
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    if (!by) { /* newest first across the tiers, then the limit */
        fr_render_sort_events_dir(rows, true);
        while (f.limit > 0 && json_array_size(rows) > (size_t)f.limit)
            json_array_remove(rows, json_array_size(rows) - 1);
    }
    json_t *tiers = json_pack("{s:[s,s],s:b,s:I}", "read", "hot", "warm", "cold",
                              fr_pipeline_archive_keys(p)->cold.n > 0, "cold_segments_skipped",
                              (json_int_t)skipped);
    return fr_api_json(p, c, MHD_HTTP_OK,
                       by ? json_pack("{s:s,s:o,s:o}", "by", by, "groups", rows, "tiers", tiers)
                          : json_pack("{s:o,s:o}", "errors", rows, "tiers", tiers),
                       NULL);
}

static int
collect_summary(void *ud, const struct fr_summary_row *r)
{
    json_array_append_new(ud, fr_render_summary(r));
    return 0;
}

enum MHD_Result
fr_api_get_summaries(struct fr_pipeline *p, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"since", "limit", NULL};
    int64_t since = 0, until = 0;
    int limit;
    char msg[600];
    struct fr_qparams q;
    if (!parse_common(c, &q, allowed, &since, &until, &limit, 100, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    json_t *rows = json_array();
    struct fr_err err = {0};
    struct fr_store *rs = q_take(p, &err);
    int rc =
        rs == NULL ? err.code : fr_store_summaries(rs, since, limit, collect_summary, rows, &err);
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(rows);
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, NULL);
    }
    return fr_api_json(p, c, MHD_HTTP_OK, json_pack("{s:o}", "summaries", rows), NULL);
}

struct stats_rows {
    json_t *arr;
    bool bucketed;
    bool finish; /* by=finish: each row says what its reason means */
};

static int
collect_stat(void *ud, const struct fr_rollup_row *r)
{
    struct stats_rows *c = ud;
    json_t *lat = json_null();
    if (r->lat_count > 0)
        lat = json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)r->lat_count, "sum_ms",
                        (json_int_t)r->lat_sum_ms, "max_ms", (json_int_t)r->lat_max_ms, "p50_ms",
                        (json_int_t)fr_rollup_quantile(r, 0.50), "p99_ms",
                        (json_int_t)fr_rollup_quantile(r, 0.99));
    json_t *row = json_pack(
        "{s:s,s:s,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:o}", "k1", r->k1 ? r->k1 : "", "k2",
        r->k2 ? r->k2 : "", "calls", (json_int_t)r->calls, "errors", (json_int_t)r->errors,
        "tokens", "input", (json_int_t)r->tokens[FR_TOKEN_INPUT], "output",
        (json_int_t)r->tokens[FR_TOKEN_OUTPUT], "cached", (json_int_t)r->tokens[FR_TOKEN_CACHED],
        "reasoning", (json_int_t)r->tokens[FR_TOKEN_REASONING], "latency", lat);
    if (row != NULL && c->bucketed)
        json_object_set_new(row, "bucket_ms", json_integer(r->bucket_ms));
    if (row != NULL && c->finish)
        json_object_set_new(row, "meaning", json_string(fr_finish_meaning(r->k1)));
    json_array_append_new(c->arr, row);
    return 0;
}

/*
 * GET /v1/finish-meanings?reason=R[&reason=R2...]: what each provider finish
 * reason says of the call's answer (fr_finish_meaning: complete, truncated,
 * filtered, tool_call, error, other) and, for those whose answer did not reach
 * the user whole, what happened to it (fr_finish_shortfall), so that the
 * console marks such calls with the same rules as `show` and `stats --by finish`.
 */
enum MHD_Result
fr_api_get_finish_meanings(struct fr_pipeline *p, struct MHD_Connection *c)
{
    struct fr_qparams q;
    fr_api_qparams(c, &q);
    if (q.dropped > 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "reason: at most 32 in one request", NULL);
    json_t *m = json_object(), *cut = json_object();
    for (size_t i = 0; i < q.n; i++) {
        if (strcmp(q.key[i], "reason") != 0) {
            char name[80], msg[160];
            fr_text_cut(q.key[i], 60, name, sizeof name);
            snprintf(msg, sizeof msg, "unknown parameter '%s' (expected reason)", name);
            json_decref(m);
            json_decref(cut);
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
        }
        /* a reason that is not UTF-8 is left out: jansson takes no such key */
        const char *meaning = fr_finish_meaning(q.val[i]), *what = fr_finish_shortfall(meaning);
        json_object_set_new(m, q.val[i], json_string(meaning));
        if (what != NULL)
            json_object_set_new(cut, q.val[i], json_string(what));
    }
    return fr_api_json(p, c, MHD_HTTP_OK, json_pack("{s:o,s:o}", "meanings", m, "cut_short", cut),
                       NULL);
}

/* GET /v1/stats: the per-minute rollups summed over a range, per key or per key and time step. */
enum MHD_Result
fr_api_get_stats(struct fr_pipeline *p, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"by", "since", "until", "step", "limit", NULL};
    static const char *const dims[] = {"provider",    "finish", "tool",      "transport",  "error",
                                       "sem_anomaly", "otel",   "otel_ttft", "otel_chunk", NULL};
    struct fr_rollup_filter f = {0};
    char msg[600];
    struct fr_qparams q;
    if (!parse_common(c, &q, allowed, &f.since_ms, &f.until_ms, &f.limit, 1000, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    const char *by = fr_qparams_get(&q, "by");
    for (const char *const *d = dims; by && *d && f.dim == NULL; d++)
        if (strcmp(*d, by) == 0)
            f.dim = *d;
    if (f.dim == NULL)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                            "by: expected provider, finish, tool, transport, error, sem_anomaly,"
                            " otel, otel_ttft or otel_chunk",
                            NULL);
    const char *step = fr_qparams_get(&q, "step");
    if (step != NULL) {
        struct fr_err perr = {0};
        if (fr_duration_parse(step, &f.step_ms, &perr) != FR_OK || f.step_ms < 60000 ||
            f.step_ms % 60000 != 0)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "step: expected whole minutes (1m, 5m, 1h, 1d)", NULL);
        if (f.since_ms == 0)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "step: needs since", NULL);
        int64_t until = f.until_ms ? f.until_ms : fr_now_ms();
        if ((until - f.since_ms) / f.step_ms > 10000)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "step: more than 10000 steps in the range; take a longer step",
                                NULL);
        f.limit = 0; /* every key of every step: bounded by the steps above */
    }
    struct stats_rows rows = {
        .arr = json_array(), .bucketed = f.step_ms > 0, .finish = strcmp(f.dim, "finish") == 0};
    struct fr_err err = {0};
    struct fr_store *rs = q_take(p, &err);
    int rc = rs == NULL ? err.code : fr_store_rollups(rs, &f, collect_stat, &rows, &err);
    q_give(p, rs, rc);
    if (rc != FR_OK) {
        json_decref(rows.arr);
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    json_t *j = json_pack("{s:s,s:o}", "by", f.dim, "rows", rows.arr);
    if (j != NULL && f.step_ms > 0)
        json_object_set_new(j, "step_ms", json_integer(f.step_ms));
    return fr_api_json(p, c, MHD_HTTP_OK, j, NULL);
}
