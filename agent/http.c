/*
 * agent/http.c - the HTTP server (libmicrohttpd, one thread per
 * connection, keep-alive): POST /v1/events (ingest, wire-format.md), the
 * read-only query API (docs/api.md), /healthz, /readyz and /metrics.
 *
 * A POST is answered 202 only after the transaction holding its events
 * committed; the connection's thread waits for that. A full queue is 429
 * with Retry-After and nothing of that request is stored.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/body.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "agent/daemon.h"
#include "agent/otlp.h"
#include "exporters/render.h"
#include "exporters/upload.h"
#include "retention/hot/archive.h"

struct fr_http {
    struct fr_agent *a;
    struct MHD_Daemon *d;
    int port;
};

struct req {
    char *body;
    size_t len, cap;
    bool too_large;
};

/* ---- answers ---- */

static enum MHD_Result
answer(struct fr_agent *a, struct MHD_Connection *c, int status, const char *type, char *body,
       size_t len, const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after != NULL)
        MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    fr_metrics_http(a->metrics, status);
    return rc;
}

static enum MHD_Result
answer_json(struct fr_agent *a, struct MHD_Connection *c, int status, json_t *j,
            const char *retry_after)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(s);
    s = fr_realloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    return answer(a, c, status, "application/json", s, n + 1, retry_after);
}

static enum MHD_Result
answer_error(struct fr_agent *a, struct MHD_Connection *c, int status, const char *msg,
             const char *retry_after)
{
    return answer_json(a, c, status, json_pack("{s:s}", "error", msg), retry_after);
}

/* ---- auth ---- */

/* Constant-time: both sides are hashed, so neither content nor length leaks through timing. */
static bool
authorized(struct MHD_Connection *c, const char *token)
{
    if (token == NULL || token[0] == '\0')
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), want);
    SHA256((const unsigned char *)h + 7, strlen(h + 7), got);
    return CRYPTO_memcmp(want, got, sizeof want) == 0;
}

/* ---- bodies (framing in agent/body.c) ---- */

struct reject_ctx {
    struct fr_agent *a;
    json_t *errors;
};

static void
on_reject(void *ud, size_t line, const struct fr_err *e)
{
    struct reject_ctx *r = ud;
    fr_agent_reject(r->a, r->errors, line, e);
}

static enum MHD_Result
post_events(struct fr_agent *a, struct MHD_Connection *c, struct req *q)
{
    if (q->too_large)
        return answer_error(a, c, 413, "request body over http.max_body_bytes", NULL);
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body;
    size_t len = q->len;
    char *inflated = NULL;
    if (enc != NULL && strcasecmp(enc, "identity") != 0) {
        if (strcasecmp(enc, "zstd") != 0 && strcasecmp(enc, "gzip") != 0)
            return answer_error(a, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "Content-Encoding must be zstd, gzip or identity", NULL);
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)a->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc == FR_E_LIMIT)
            return answer_error(a, c, 413, "decompressed body over http.max_body_bytes", NULL);
        if (rc != FR_OK)
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "body does not decompress", NULL);
        body = inflated;
    }
    struct reject_ctx rj = {a, json_array()};
    struct fr_body_result res = {0};
    struct fr_live *l = fr_agent_live_get(a);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    fr_body_prepare(body ? body : "", len, &l->cfg, &counts, &res, on_reject, &rj);
    fr_metrics_redaction(a->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_agent_live_put(a, l);
    free(inflated);
    fr_metrics_received(a->metrics, "http", res.received);
    struct fr_ack ack;
    fr_agent_submit(a, res.recs, res.n, false, &ack);
    size_t accepted = res.n, nrejected = res.rejected;
    fr_body_result_clear(&res); /* already empty when the writer took them */
    if (ack.rc == FR_E_BUSY) {
        json_decref(rj.errors);
        return answer_error(a, c, MHD_HTTP_TOO_MANY_REQUESTS,
                            "ingest queue full; nothing of this request was stored, retry", "1");
    }
    if (ack.rc != FR_OK) {
        json_decref(rj.errors);
        return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE, ack.err.msg, "5");
    }
    size_t shown = json_array_size(rj.errors);
    json_t *out = json_pack("{s:I,s:I,s:I,s:o}", "accepted", (json_int_t)accepted, "rejected",
                            (json_int_t)nrejected, "duplicates", (json_int_t)ack.duplicates,
                            "errors", rj.errors);
    if (nrejected > shown)
        json_object_set_new(out, "errors_truncated", json_true());
    return answer_json(a, c, MHD_HTTP_ACCEPTED, out, NULL);
}

/* ---- OTLP/HTTP (JSON) ---- */

static enum MHD_Result
otlp_answer(struct fr_agent *a, struct MHD_Connection *c, const char *rejected_key, size_t rejected,
            const char *msg)
{
    json_t *body = json_object();
    if (rejected > 0 || msg)
        json_object_set_new(body, "partialSuccess",
                            json_pack("{s:I,s:s}", rejected_key, (json_int_t)rejected,
                                      "errorMessage", msg ? msg : ""));
    return answer_json(a, c, MHD_HTTP_OK, body, NULL);
}

struct otel_ctx {
    struct fr_agent *a;
    int failed;
};

/* A GenAI metric delta into the "otel" rollups (through the read connection). */
static int
otel_rollup(void *ud, const struct fr_otlp_rollup *r)
{
    struct otel_ctx *c = ud;
    struct fr_rollup_row d = {.calls = r->calls,
                              .errors = r->errors,
                              .lat_count = r->lat_count,
                              .lat_sum_ms = r->lat_sum_ms,
                              .lat_max_ms = r->lat_max_ms};
    memcpy(d.hist, r->hist, sizeof d.hist);
    d.tokens[FR_TOKEN_INPUT] = r->input_tokens;
    d.tokens[FR_TOKEN_OUTPUT] = r->output_tokens;
    struct fr_err err = {0};
    if (fr_store_rollup_delta(c->a->rstore, "otel", r->minute_ms, r->system, r->model, &d, &err) !=
        FR_OK)
        c->failed++;
    return 0;
}

static enum MHD_Result
post_otlp(struct fr_agent *a, struct MHD_Connection *c, struct req *q, const char *url)
{
    if (q->too_large)
        return answer_error(a, c, 413, "request body over http.max_body_bytes", NULL);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct && strncasecmp(ct, "application/x-protobuf", 22) == 0)
        return answer_error(a, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "OTLP protobuf encoding is not supported: configure the exporter "
                            "for http/json (e.g. OTEL_EXPORTER_OTLP_PROTOCOL=http/json)",
                            NULL);
    if (ct && strncasecmp(ct, "application/json", 16) != 0)
        return answer_error(a, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "Content-Type must be application/json", NULL);
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body, *inflated = NULL;
    size_t len = q->len;
    if (enc && strcasecmp(enc, "identity") != 0) {
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)a->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc != FR_OK)
            return answer_error(a, c, rc == FR_E_LIMIT ? 413 : MHD_HTTP_BAD_REQUEST,
                                "body does not decompress (gzip or zstd)", NULL);
        body = inflated;
    }
    json_error_t jerr;
    json_t *req = json_loadb(body ? body : "", len, 0, &jerr);
    free(inflated);
    if (req == NULL) {
        char msg[300];
        char text[JSON_ERROR_TEXT_LENGTH];
        snprintf(msg, sizeof msg, "body is not JSON: %s at byte %d",
                 fr_json_error_text(&jerr, text, sizeof text), jerr.position);
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    }
    bool traces = strcmp(url, "/v1/traces") == 0, logs = strcmp(url, "/v1/logs") == 0;
    const char *rkey = traces ? "rejectedSpans"
                       : logs ? "rejectedLogRecords"
                              : "rejectedDataPoints";
    if (!traces && !logs) {
        /* GenAI metrics feed their own rollup dimension ("otel"): they repeat
           what spans carry, so they are kept apart instead of added to it */
        size_t points = 0;
        struct otel_ctx oc = {a, 0};
        pthread_mutex_lock(&a->read_mu);
        int mrc = fr_otlp_metrics(req, a->otlp_metrics, otel_rollup, &oc, &points);
        pthread_mutex_unlock(&a->read_mu);
        json_decref(req);
        if (mrc != FR_OK)
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                                "not an OTLP metrics request (no resourceMetrics)", NULL);
        fr_metrics_received(a->metrics, "otlp", points);
        if (oc.failed)
            return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "the store did not take the metrics; retry", "5");
        return otlp_answer(a, c, rkey, 0, NULL);
    }
    struct fr_otlp_opts o = {a->conf.otlp_conversation_attributes, a->conf.otlp_turn_attributes};
    json_t *envs = json_array();
    size_t items = 0, rejected = 0;
    int mrc = traces ? fr_otlp_traces(req, &o, envs, &items, &rejected)
                     : fr_otlp_logs(req, &o, envs, &items, &rejected);
    json_decref(req);
    if (mrc != FR_OK) {
        json_decref(envs);
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                            traces ? "not an OTLP traces request (no resourceSpans)"
                                   : "not an OTLP logs request (no resourceLogs)",
                            NULL);
    }
    struct fr_live *l = fr_agent_live_get(a);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    size_t n = json_array_size(envs), ok = 0;
    struct fr_record *recs = fr_calloc(n ? n : 1, sizeof *recs);
    char first_error[512] = "";
    size_t i;
    json_t *ev;
    json_array_foreach(envs, i, ev)
    {
        struct fr_err err = {0};
        if (fr_ingest_prepare_tree(json_incref(ev), &l->cfg, &counts, &recs[ok], &err) == FR_OK) {
            ok++;
        } else {
            rejected++;
            fr_metrics_rejected(a->metrics, err.code);
            if (!first_error[0])
                snprintf(first_error, sizeof first_error, "%s", err.msg);
        }
    }
    fr_metrics_redaction(a->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_agent_live_put(a, l);
    json_decref(envs);
    fr_metrics_received(a->metrics, "otlp", items);
    struct fr_ack ack;
    fr_agent_submit(a, recs, ok, false, &ack);
    for (size_t k = 0; k < ok; k++)
        fr_record_clear(&recs[k]);
    free(recs);
    if (ack.rc == FR_E_BUSY)
        return answer_error(a, c, MHD_HTTP_TOO_MANY_REQUESTS, "ingest queue full; retry", "1");
    if (ack.rc != FR_OK)
        return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE, ack.err.msg, "5");
    return otlp_answer(a, c, rkey, rejected, rejected ? first_error : NULL);
}

/* ---- the query API ---- */

struct params {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result
check_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    struct params *p = cls;
    for (const char *const *a = p->allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return MHD_YES;
    p->bad = key;
    return MHD_NO;
}

static const char *
arg(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

/* Parses the common parameters; on error fills msg and returns false. */
static bool
parse_common(struct MHD_Connection *c, const char *const *allowed, int64_t *since, int64_t *until,
             int *limit, int deflimit, char *msg, size_t msglen)
{
    struct params p = {allowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &p);
    if (p.bad != NULL) {
        snprintf(msg, msglen, "unknown parameter '%.64s'", p.bad);
        return false;
    }
    struct fr_err err = {0};
    int64_t now = fr_now_ms();
    const char *s;
    if ((s = arg(c, "since")) && fr_time_parse(s, now, since, &err) != FR_OK) {
        snprintf(msg, msglen, "since: %s", err.msg);
        return false;
    }
    if ((s = arg(c, "until")) && fr_time_parse(s, now, until, &err) != FR_OK) {
        snprintf(msg, msglen, "until: %s", err.msg);
        return false;
    }
    *limit = deflimit;
    if ((s = arg(c, "limit"))) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end != '\0' || v < 1 || v > 1000) {
            snprintf(msg, msglen, "limit: expected a whole number from 1 to 1000");
            return false;
        }
        *limit = (int)v;
    }
    return true;
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
collect_event(void *ud, const struct fr_event_row *r)
{
    json_array_append_new(ud, fr_render_event(r, NULL, 0));
    return 0;
}

/* Cursor: hex of "<last_activity_ms>:<conv_id>" of the last row returned. */
static char *
cursor_encode(int64_t ms, const char *id)
{
    char *plain = fr_asprintf("%lld:%s", (long long)ms, id);
    size_t n = strlen(plain);
    char *hex = fr_malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)plain[i]);
    free(plain);
    return hex;
}

static bool
cursor_decode(const char *hex, int64_t *ms, char *id, size_t idlen)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n / 2 >= idlen + 24)
        return false;
    char plain[600];
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        plain[i] = (char)v;
    }
    plain[n / 2] = '\0';
    char *colon = strchr(plain, ':');
    if (colon == NULL)
        return false;
    *colon = '\0';
    char *end;
    *ms = strtoll(plain, &end, 10);
    if (*end != '\0')
        return false;
    snprintf(id, idlen, "%s", colon + 1);
    return true;
}

static enum MHD_Result
get_conversations(struct fr_agent *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"since",       "until",    "status", "has_errors",
                                          "error_class", "provider", "model",  "tool",
                                          "limit",       "cursor",   NULL};
    struct fr_conv_filter f = {0};
    char msg[600], after[300];
    int limit;
    if (!parse_common(c, allowed, &f.since_ms, &f.until_ms, &limit, 50, msg, sizeof msg))
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    const char *s;
    static const char *const statuses[] = {"active", "idle", "closed", "evicted", "error", NULL};
    if ((s = arg(c, "status"))) {
        bool ok = false;
        for (const char *const *t = statuses; *t; t++)
            ok |= strcmp(*t, s) == 0;
        if (!ok)
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                                "status: expected active, idle, closed, evicted or error", NULL);
        f.status = s;
    }
    if ((s = arg(c, "has_errors"))) {
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "has_errors: expected true or false",
                                NULL);
        f.has_errors = strcmp(s, "true") == 0;
    }
    if ((s = arg(c, "error_class"))) {
        if (fr_error_class_parse(s) <= 0)
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                                "error_class: expected validation, provider, tool, projection, "
                                "storage, transport or runtime",
                                NULL);
        f.error_class = s;
    }
    f.provider = arg(c, "provider");
    f.model = arg(c, "model");
    f.tool = arg(c, "tool");
    if ((s = arg(c, "cursor"))) {
        if (!cursor_decode(s, &f.after_activity_ms, after, sizeof after))
            return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                                "cursor: not a cursor this server returned", NULL);
        f.after_conv_id = after;
    }
    f.limit = limit + 1; /* one more tells whether there is a next page */
    struct collect col = {.arr = json_array()};
    struct fr_err err = {0};
    pthread_mutex_lock(&a->read_mu);
    int rc = fr_store_conversations(a->rstore, &f, collect_conv, &col, &err);
    pthread_mutex_unlock(&a->read_mu);
    if (rc != FR_OK) {
        json_decref(col.arr);
        return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    json_t *next = json_null();
    if (json_array_size(col.arr) > (size_t)limit) {
        json_array_remove(col.arr, (size_t)limit);
        json_t *last = json_array_get(col.arr, (size_t)limit - 1);
        char *cur = cursor_encode(json_integer_value(json_object_get(last, "last_activity_ms")),
                                  json_string_value(json_object_get(last, "conv_id")));
        next = json_string(cur);
        free(cur);
    }
    return answer_json(a, c, MHD_HTTP_OK,
                       json_pack("{s:o,s:o}", "conversations", col.arr, "next_cursor", next), NULL);
}

static enum MHD_Result
get_conversation(struct fr_agent *a, struct MHD_Connection *c, const char *id)
{
    static const char *const allowed[] = {"kind", NULL};
    struct fr_event_filter f = {.conv_id = id};
    char msg[600];
    int limit;
    int64_t unused = 0;
    if (!parse_common(c, allowed, &unused, &unused, &limit, 0, msg, sizeof msg))
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    if ((f.kind = arg(c, "kind")) && fr_kind_parse(f.kind) < 0)
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "kind: not a wire kind", NULL);
    struct collect col = {.arr = json_array()};
    json_t *events = json_array();
    struct fr_err err = {0};
    size_t cold_skipped = 0;
    pthread_mutex_lock(&a->read_mu);
    int rc = fr_store_conversation(a->rstore, id, collect_conv, &col, &err);
    /* older events of the conversation may be in warm (or cold) segments */
    if (rc == FR_OK)
        rc = fr_tier_events(a->rstore, &f, a->has_cold_key ? a->cold_key : NULL, collect_event,
                            events, &cold_skipped, &err);
    pthread_mutex_unlock(&a->read_mu);
    fr_render_sort_events(events);
    json_t *conv = json_incref(json_array_get(col.arr, 0));
    json_decref(col.arr);
    if (rc != FR_OK) {
        json_decref(conv);
        json_decref(events);
        return answer_error(a, c,
                            rc == FR_E_NOTFOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                            err.msg, NULL);
    }
    return answer_json(a, c, MHD_HTTP_OK,
                       json_pack("{s:o,s:o,s:I}", "conversation", conv, "events", events,
                                 "cold_segments_skipped", (json_int_t)cold_skipped),
                       NULL);
}

static enum MHD_Result
get_events(struct fr_agent *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"conv_id", "kind",  "error_class", "error_code",
                                          "since",   "until", "limit",       NULL};
    struct fr_event_filter f = {0};
    char msg[600];
    if (!parse_common(c, allowed, &f.since_ms, &f.until_ms, &f.limit, 100, msg, sizeof msg))
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    f.conv_id = arg(c, "conv_id");
    if ((f.kind = arg(c, "kind")) && fr_kind_parse(f.kind) < 0)
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "kind: not a wire kind", NULL);
    if ((f.error_class = arg(c, "error_class")) && fr_error_class_parse(f.error_class) <= 0)
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "error_class: not an error class", NULL);
    f.error_code = arg(c, "error_code");
    f.newest_first = f.conv_id == NULL;
    json_t *events = json_array();
    struct fr_err err = {0};
    pthread_mutex_lock(&a->read_mu);
    int rc;
    if (f.conv_id == NULL) {
        rc = fr_store_events(a->rstore, &f, collect_event, events, &err);
    } else {
        /* one conversation's events: also those that moved to the archive tiers */
        rc = fr_tier_events(a->rstore, &f, a->has_cold_key ? a->cold_key : NULL, collect_event,
                            events, NULL, &err);
        fr_render_sort_events(events);
        while (f.limit > 0 && json_array_size(events) > (size_t)f.limit)
            json_array_remove(events, json_array_size(events) - 1);
    }
    pthread_mutex_unlock(&a->read_mu);
    if (rc != FR_OK) {
        json_decref(events);
        return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    return answer_json(a, c, MHD_HTTP_OK, json_pack("{s:o}", "events", events), NULL);
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
static enum MHD_Result
get_errors(struct fr_agent *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"class", "code",  "conv_id", "since",
                                          "until", "limit", "by",      NULL};
    struct fr_event_filter f = {.errors_only = true, .newest_first = true};
    char msg[600];
    if (!parse_common(c, allowed, &f.since_ms, &f.until_ms, &f.limit, 100, msg, sizeof msg))
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    if ((f.error_class = arg(c, "class")) && fr_error_class_parse(f.error_class) <= 0)
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST, "class: not an error class", NULL);
    f.error_code = arg(c, "code");
    f.conv_id = arg(c, "conv_id");
    const char *by = arg(c, "by");
    static const char *const bys[] = {"code", "class", "model", "tool", "kind", NULL};
    bool by_ok = by == NULL;
    for (const char *const *b = bys; by && *b; b++)
        by_ok |= strcmp(*b, by) == 0;
    if (!by_ok)
        return answer_error(a, c, MHD_HTTP_BAD_REQUEST,
                            "by: expected code, class, model, tool or kind", NULL);
    json_t *rows = json_array();
    struct fr_err err = {0};
    pthread_mutex_lock(&a->read_mu);
    int rc = by ? fr_store_error_groups(a->rstore, &f, by, collect_group, rows, &err)
                : fr_store_events(a->rstore, &f, collect_event, rows, &err);
    pthread_mutex_unlock(&a->read_mu);
    if (rc != FR_OK) {
        json_decref(rows);
        return answer_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, "1");
    }
    return answer_json(a, c, MHD_HTTP_OK,
                       by ? json_pack("{s:s,s:o}", "by", by, "groups", rows)
                          : json_pack("{s:o}", "errors", rows),
                       NULL);
}

static size_t
outbox_size(struct fr_agent *a)
{
    if (!a->conf.incident_upload_config[0])
        return 0;
    struct fr_upload_config c;
    struct fr_outbox_item *items = NULL;
    size_t n = 0;
    if (fr_upload_config_load(a->conf.incident_upload_config, &c, NULL) == FR_OK) {
        fr_outbox_list(c.outbox, &items, &n, NULL);
        fr_outbox_items_free(items, n);
        fr_upload_config_clear(&c);
    }
    return n;
}

/* ---- dispatch ---- */

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)version;
    struct fr_http *h = cls;
    struct fr_agent *a = h->a;
    bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    if (*ctx == NULL) {
        struct req *q = fr_calloc(1, sizeof *q);
        *ctx = q;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long)a->conf.http_max_body_bytes)
            q->too_large = true;
        return MHD_YES;
    }
    struct req *q = *ctx;
    if (*upload_size > 0) {
        if (!q->too_large) {
            if (q->len + *upload_size > (size_t)a->conf.http_max_body_bytes) {
                q->too_large = true; /* keep reading (discarding) so the answer arrives */
            } else {
                if (q->len + *upload_size + 1 > q->cap) {
                    q->cap = (q->len + *upload_size + 1) * 2;
                    q->body = fr_realloc(q->body, q->cap);
                }
                memcpy(q->body + q->len, upload, *upload_size);
                q->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0 && get)
        return answer(a, c, MHD_HTTP_OK, "text/plain", fr_strdup("ok\n"), 3, NULL);
    if (strcmp(url, "/readyz") == 0 && get) {
        char why[300];
        bool ok = fr_agent_ready(a, why, sizeof why);
        char *body = fr_asprintf("%s\n", why);
        return answer(a, c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body,
                      strlen(body), ok ? NULL : "1");
    }
    if (strcmp(url, "/metrics") == 0 && get) {
        char why[300];
        struct fr_metrics_gauges g = {.queue_events = fr_writer_queued(a->writer),
                                      .queue_capacity = (size_t)a->conf.queue_events,
                                      .store_bytes = fr_agent_store_bytes(a),
                                      .ready = fr_agent_ready(a, why, sizeof why),
                                      .outbox = outbox_size(a)};
        size_t len;
        char *body = fr_metrics_render(a->metrics, &g, &len);
        return answer(a, c, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len, NULL);
    }
    if (strncmp(url, "/v1/", 4) != 0)
        return answer_error(a, c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
    struct fr_live *l = fr_agent_live_get(a);
    /* reads need the query token when one is set; writes always the ingest token */
    bool ok = authorized(c, get && l->query_token[0] ? l->query_token : l->token);
    fr_agent_live_put(a, l);
    if (!ok)
        return answer_error(a, c, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token", NULL);
    if (strcmp(url, "/v1/traces") == 0 || strcmp(url, "/v1/logs") == 0 ||
        strcmp(url, "/v1/metrics") == 0) {
        if (post)
            return post_otlp(a, c, q, url);
    } else if (strcmp(url, "/v1/events") == 0) {
        if (post)
            return post_events(a, c, q);
        if (get)
            return get_events(a, c);
    } else if (strcmp(url, "/v1/errors") == 0) {
        if (get)
            return get_errors(a, c);
    } else if (strcmp(url, "/v1/conversations") == 0) {
        if (get)
            return get_conversations(a, c);
    } else if (strncmp(url, "/v1/conversations/", 18) == 0 && url[18] != '\0') {
        if (get)
            return get_conversation(a, c, url + 18);
    } else {
        return answer_error(a, c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
    }
    return answer_error(a, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed here", NULL);
}

static void
completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *q = *ctx;
    if (q != NULL) {
        free(q->body);
        free(q);
        *ctx = NULL;
    }
}

int
fr_http_start(struct fr_agent *a, const char *listen, struct fr_http **out, struct fr_err *err)
{
    *out = NULL;
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host || *end != '\0' || port < 0 ||
        port > 65535)
        return fr_err_set(err, FR_E_CONFIG, "listen: expected HOST:PORT (IPv4), got '%s'", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return fr_err_set(err, FR_E_CONFIG, "listen: '%s' is not an IPv4 address", host);
    sa.sin_port = htons((uint16_t)port);
    struct fr_http *h = fr_calloc(1, sizeof *h);
    h->a = a;
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)a->conf.http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            120u, MHD_OPTION_END);
    if (h->d == NULL) {
        free(h);
        return fr_err_set(err, FR_E_IO, "cannot listen on %s (in use, or not an address here)",
                          listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : (int)port;
    *out = h;
    return FR_OK;
}

int
fr_http_port(const struct fr_http *h)
{
    return h->port;
}

void
fr_http_quiesce(struct fr_http *h)
{
    if (h != NULL) {
        MHD_socket s = MHD_quiesce_daemon(h->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

void
fr_http_stop(struct fr_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
