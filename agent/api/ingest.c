/*
 * agent/api/ingest.c - the write side of the HTTP API: POST /v1/events
 * (the wire format, NDJSON or a JSON array, gzip or zstd) and OTLP/HTTP
 * JSON on /v1/traces, /v1/logs and /v1/metrics (docs/otlp.md).
 *
 * A POST is answered 202 only after the transaction holding its events
 * committed; the connection's thread waits for that. A full queue is 429
 * with Retry-After and nothing of that request is stored.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/api/api.h"
#include "agent/body.h"
#include "agent/otlp.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"

/* ---- bodies (framing in agent/body.c) ---- */

struct reject_ctx {
    struct fr_pipeline *p;
    json_t *errors;
    size_t reserved; /* queue room taken before the work (fr_pipeline_reserve) */
    struct fr_ack refusal;
};

static void
on_reject(void *ud, size_t line, const struct fr_err *e)
{
    struct reject_ctx *r = ud;
    fr_pipeline_reject(r->p, r->errors, line, e);
}

static int
on_admit(void *ud, size_t envelopes)
{
    struct reject_ctx *r = ud;
    int rc = fr_pipeline_reserve(r->p, envelopes, false, &r->refusal);
    if (rc == FR_OK)
        r->reserved = envelopes;
    return rc;
}

/* A request the queue did not admit: 429 (full now) or 413 (more than it ever holds). */
static enum MHD_Result
refused(struct fr_pipeline *p, struct MHD_Connection *c, const struct fr_ack *ack)
{
    if (ack->rc == FR_E_LIMIT)
        return fr_api_error(p, c, 413, ack->err.msg, NULL);
    if (ack->rc == FR_E_BUSY)
        return fr_api_error(p, c, MHD_HTTP_TOO_MANY_REQUESTS,
                            "ingest queue full; nothing of this request was stored, retry", "1");
    return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, ack->err.msg, "5");
}

enum MHD_Result
fr_api_post_events(struct fr_pipeline *p, struct MHD_Connection *c, struct fr_api_req *q)
{
    if (q->too_large)
        return fr_api_error(p, c, 413, "request body over http.max_body_bytes", NULL);
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body;
    size_t len = q->len;
    char *inflated = NULL;
    if (enc != NULL && strcasecmp(enc, "identity") != 0) {
        if (strcasecmp(enc, "zstd") != 0 && strcasecmp(enc, "gzip") != 0)
            return fr_api_error(p, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "Content-Encoding must be zstd, gzip or identity", NULL);
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)p->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc == FR_E_LIMIT)
            return fr_api_error(p, c, 413, "decompressed body over http.max_body_bytes", NULL);
        if (rc != FR_OK)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "body does not decompress", NULL);
        body = inflated;
    }
    struct reject_ctx rj = {.p = p, .errors = json_array()};
    struct fr_body_result res = {0};
    struct fr_live *l = fr_pipeline_live_get(p);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    int arc =
        fr_body_prepare(body ? body : "", len, &l->cfg, &counts, &res, on_reject, on_admit, &rj);
    fr_metrics_redaction(p->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_pipeline_live_put(p, l);
    free(inflated);
    if (arc != FR_OK) { /* not admitted: nothing was parsed or redacted */
        json_decref(rj.errors);
        return refused(p, c, &rj.refusal);
    }
    fr_metrics_received(p->metrics, "http", res.received);
    struct fr_ack ack;
    fr_pipeline_submit_reserved(p, res.recs, res.n, rj.reserved, &ack);
    size_t accepted = res.n, nrejected = res.rejected;
    fr_body_result_clear(&res); /* already empty when the writer took them */
    if (ack.rc != FR_OK) {
        json_decref(rj.errors);
        return refused(p, c, &ack);
    }
    size_t shown = json_array_size(rj.errors);
    json_t *out = json_pack("{s:I,s:I,s:I,s:o}", "accepted", (json_int_t)accepted, "rejected",
                            (json_int_t)nrejected, "duplicates", (json_int_t)ack.duplicates,
                            "errors", rj.errors);
    if (nrejected > shown)
        json_object_set_new(out, "errors_truncated", json_true());
    if (ack.erased > 0) /* acknowledged, so the producer does not retry, and never stored */
        json_object_set_new(out, "erased", json_integer((json_int_t)ack.erased));
    return fr_api_json(p, c, MHD_HTTP_ACCEPTED, out, NULL);
}

/* ---- OTLP/HTTP (JSON) ---- */

static enum MHD_Result
otlp_answer(struct fr_pipeline *p, struct MHD_Connection *c, const char *rejected_key,
            size_t rejected, const char *msg)
{
    json_t *body = json_object();
    if (rejected > 0 || msg)
        json_object_set_new(body, "partialSuccess",
                            json_pack("{s:I,s:s}", rejected_key, (json_int_t)rejected,
                                      "errorMessage", msg ? msg : ""));
    return fr_api_json(p, c, MHD_HTTP_OK, body, NULL);
}

/* Why items of an OTLP request were rejected: the first few distinct reasons, counted. */
struct reasons {
    char text[3][200];
    size_t count[3], n, other;
};

static void
reason_add(struct reasons *r, const char *why, size_t times)
{
    if (times == 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->text[i], why) == 0) {
            r->count[i] += times;
            return;
        }
    if (r->n == 3) {
        r->other += times;
        return;
    }
    size_t n = strlen(why), cap = sizeof r->text[r->n] - 1;
    n = n > cap ? fr_utf8_cut(why, cap) : n; /* a reason, cut at a character boundary */
    memcpy(r->text[r->n], why, n);
    r->text[r->n][n] = '\0';
    r->count[r->n++] = times;
}

/* "2 rejected: 1 x <why>; 1 x <why>" for partialSuccess.errorMessage. */
static void
reasons_text(const struct reasons *r, size_t rejected, char *out, size_t cap)
{
    size_t at = (size_t)snprintf(out, cap, "%zu rejected:", rejected);
    for (size_t i = 0; i < r->n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s %zu x %s", i ? ";" : "", r->count[i],
                               r->text[i]);
    if (r->other > 0 && at < cap)
        snprintf(out + at, cap - at, "; %zu for other reasons", r->other);
}

struct otel_ctx {
    struct fr_store *rs;
    struct fr_redactor *red;
    struct fr_otlp_metrics_state *state;
    uint64_t overflow;
    int failed;
};

#define OTEL_LABEL_MAX 128

/*
 * A metric attribute as a rollup key: a producer's text like any other, so
 * redacted (an email or a key as "model" is replaced), cut at a character
 * boundary and made valid UTF-8.
 */
static void
otel_label(struct fr_redactor *red, const char *in, char out[OTEL_LABEL_MAX + 1])
{
    char *red_text = NULL;
    size_t n = strlen(in);
    if (red != NULL && fr_redact_text(red, in, n, FR_DET_ALL, &red_text, &n) > 0)
        in = red_text;
    char *valid = fr_utf8_sanitize(in); /* U+FFFD may lengthen it: cut after */
    size_t vn = strlen(valid);
    vn = vn > OTEL_LABEL_MAX ? fr_utf8_cut(valid, OTEL_LABEL_MAX) : vn;
    memcpy(out, valid, vn);
    out[vn] = '\0';
    free(valid);
    free(red_text);
}

/* A GenAI metric delta into the "otel" rollups (through the read connection). */
static int
otel_rollup(void *ud, const struct fr_otlp_rollup *r)
{
    struct otel_ctx *c = ud;
    char system[OTEL_LABEL_MAX + 1], model[OTEL_LABEL_MAX + 1];
    otel_label(c->red, r->system, system);
    otel_label(c->red, r->model, model);
    if (!fr_otlp_series_admit(c->state, system, model)) {
        snprintf(system, sizeof system, "other");
        snprintf(model, sizeof model, "other");
        c->overflow++;
    }
    struct fr_rollup_row d = {.calls = r->calls,
                              .errors = r->errors,
                              .lat_count = r->lat_count,
                              .lat_sum_ms = r->lat_sum_ms,
                              .lat_max_ms = r->lat_max_ms};
    memcpy(d.hist, r->hist, sizeof d.hist);
    d.tokens[FR_TOKEN_INPUT] = r->input_tokens;
    d.tokens[FR_TOKEN_OUTPUT] = r->output_tokens;
    struct fr_err err = {0};
    if (fr_store_rollup_delta(c->rs, "otel", r->minute_ms, system, model, &d, &err) != FR_OK)
        c->failed++;
    return 0;
}

enum MHD_Result
fr_api_post_otlp(struct fr_pipeline *p, struct MHD_Connection *c, struct fr_api_req *q,
                 const char *url)
{
    if (q->too_large)
        return fr_api_error(p, c, 413, "request body over http.max_body_bytes", NULL);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct && strncasecmp(ct, "application/x-protobuf", 22) == 0)
        return fr_api_error(p, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "OTLP protobuf encoding is not supported: configure the exporter "
                            "for http/json (e.g. OTEL_EXPORTER_OTLP_PROTOCOL=http/json)",
                            NULL);
    if (ct && strncasecmp(ct, "application/json", 16) != 0)
        return fr_api_error(p, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "Content-Type must be application/json", NULL);
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body, *inflated = NULL;
    size_t len = q->len;
    if (enc && strcasecmp(enc, "identity") != 0) {
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)p->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc != FR_OK)
            return fr_api_error(p, c, rc == FR_E_LIMIT ? 413 : MHD_HTTP_BAD_REQUEST,
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
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    }
    bool traces = strcmp(url, "/v1/traces") == 0, logs = strcmp(url, "/v1/logs") == 0;
    const char *rkey = traces ? "rejectedSpans"
                       : logs ? "rejectedLogRecords"
                              : "rejectedDataPoints";
    if (!traces && !logs) {
        /* GenAI metrics feed their own rollup dimension ("otel"): they repeat
           what spans carry, so they are kept apart instead of added to it */
        size_t points = 0;
        struct fr_live *l = fr_pipeline_live_get(p);
        struct otel_ctx oc = {
            .rs = fr_readers_acquire(p->readers), .red = l->red, .state = p->otlp_metrics};
        pthread_mutex_lock(&p->otlp_mu); /* the cumulative-to-delta state */
        int mrc = fr_otlp_metrics(req, p->otlp_metrics, otel_rollup, &oc, &points);
        pthread_mutex_unlock(&p->otlp_mu);
        fr_readers_release(p->readers, oc.rs);
        fr_pipeline_live_put(p, l);
        if (oc.overflow > 0)
            fr_metrics_otel_overflow(p->metrics, oc.overflow);
        json_decref(req);
        if (mrc != FR_OK)
            return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                                "not an OTLP metrics request (no resourceMetrics)", NULL);
        fr_metrics_received(p->metrics, "otlp", points);
        if (oc.failed)
            return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "the store did not take the metrics; retry", "5");
        return otlp_answer(p, c, rkey, 0, NULL);
    }
    struct fr_otlp_opts o = {p->conf.otlp_conversation_attributes, p->conf.otlp_turn_attributes};
    json_t *envs = json_array();
    size_t items = 0, rejected = 0;
    int mrc = traces ? fr_otlp_traces(req, &o, envs, &items, &rejected)
                     : fr_otlp_logs(req, &o, envs, &items, &rejected);
    json_decref(req);
    if (mrc != FR_OK) {
        json_decref(envs);
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                            traces ? "not an OTLP traces request (no resourceSpans)"
                                   : "not an OTLP logs request (no resourceLogs)",
                            NULL);
    }
    size_t n = json_array_size(envs), ok = 0;
    struct reasons why = {0};
    reason_add(&why,
               traces ? "a span without startTimeUnixNano (or not an object)"
                      : "a log record without timeUnixNano or observedTimeUnixNano, or a "
                        "flightrec.kind record that does not map",
               rejected);
    struct fr_ack ack;
    if (fr_pipeline_reserve(p, n, false, &ack) != FR_OK) { /* before redaction, the cost */
        json_decref(envs);
        return refused(p, c, &ack);
    }
    struct fr_live *l = fr_pipeline_live_get(p);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    struct fr_record *recs = fr_calloc(n ? n : 1, sizeof *recs);
    size_t i;
    json_t *ev;
    json_array_foreach(envs, i, ev)
    {
        struct fr_err err = {0};
        if (fr_ingest_prepare_tree(json_incref(ev), &l->cfg, &counts, &recs[ok], &err) == FR_OK) {
            ok++;
        } else {
            rejected++;
            fr_metrics_rejected(p->metrics, err.code);
            reason_add(&why, err.msg, 1);
        }
    }
    fr_metrics_redaction(p->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_pipeline_live_put(p, l);
    json_decref(envs);
    fr_metrics_received(p->metrics, "otlp", items);
    fr_pipeline_submit_reserved(p, recs, ok, n, &ack);
    for (size_t k = 0; k < ok; k++)
        fr_record_clear(&recs[k]);
    free(recs);
    if (ack.rc != FR_OK)
        return refused(p, c, &ack);
    char msg[800];
    reasons_text(&why, rejected, msg, sizeof msg);
    return otlp_answer(p, c, rkey, rejected, rejected ? msg : NULL);
}
