/*
 * agent/api/ingest.c - the write side of the HTTP API: POST /v1/events
 * (the wire format, NDJSON or a JSON array, gzip or zstd) and OTLP/HTTP
 * (JSON or protobuf) on /v1/traces, /v1/logs and /v1/metrics (docs/otlp.md).
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
#include "agent/otlp/ingest.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"

/* ---- bodies (framing in agent/body.c) ---- */

struct reject_ctx {
    struct fr_pipeline *p;
    json_t *errors;
    size_t bytes;    /* the body as received: what admission learns from */
    size_t early;    /* queue room reserved at the headers, until on_admit makes it exact */
    size_t reserved; /* queue room taken before the work (fr_pipeline_rereserve) */
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
    fr_pipeline_learn(r->p, r->bytes, envelopes);
    int rc = fr_pipeline_rereserve(r->p, r->early, envelopes, &r->refusal);
    r->early = 0;
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
    if (q->shed)
        return fr_api_error(p, c, MHD_HTTP_TOO_MANY_REQUESTS, FR_PIPELINE_INFLIGHT_FULL, "1");
    if (q->busy) /* full when its headers arrived: its body was dropped unread */
        return refused(p, c, &(struct fr_ack){.rc = FR_E_BUSY});
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body;
    size_t len = q->len;
    char *inflated = NULL;
    if (enc == NULL || strcasecmp(enc, "identity") == 0) /* compressed, the header forgotten */
        enc = fr_body_sniff(q->body ? q->body : "", q->len);
    if (enc != NULL) {
        if (!fr_body_encoding_known(enc))
            return fr_api_error(p, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "Content-Encoding must be " FR_BODY_ENCODINGS " or identity", NULL);
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)p->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc == FR_E_LIMIT)
            return fr_api_error(p, c, 413, "decompressed body over http.max_body_bytes", NULL);
        if (rc != FR_OK) {
            char why[96];
            return fr_api_error(
                p, c, MHD_HTTP_BAD_REQUEST,
                fr_body_undecodable(why, sizeof why, "body", "Content-Encoding", enc), NULL);
        }
        body = inflated;
    }
    struct reject_ctx rj = {.p = p, .errors = json_array(), .bytes = q->len, .early = q->reserved};
    q->reserved = 0;
    struct fr_body_result res = {0};
    struct fr_live *l = fr_pipeline_live_get(p);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    fr_pipeline_prepare_begin(p, len);
    int arc =
        fr_body_prepare(body ? body : "", len, &l->cfg, &counts, &res, on_reject, on_admit, &rj);
    fr_pipeline_prepare_end(p, len);
    fr_pipeline_unreserve(p, rj.early); /* still held: the body was refused before its count */
    fr_metrics_redaction(p->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_pipeline_live_put(p, l);
    free(inflated);
    fr_api_req_release(p, q); /* the records hold what is kept; the body goes now */
    if (arc != FR_OK) {       /* not admitted: nothing was parsed or redacted */
        json_decref(rj.errors);
        return refused(p, c, &rj.refusal);
    }
    fr_metrics_received(p->metrics, "http", res.received);
    struct fr_ack ack;
    fr_pipeline_submit_reserved(p, res.recs, res.n, rj.reserved, &ack);
    size_t accepted = res.n, nrejected = res.rejected;
    json_t *warnings = NULL;
    size_t nwarnings =
        ack.rc == FR_OK ? fr_pipeline_misnamed(p, "http", res.recs, res.n, &warnings) : 0;
    fr_body_result_clear(&res); /* the records, stored or not, freed here (not by the writer) */
    if (ack.rc != FR_OK) {
        json_decref(rj.errors);
        json_decref(warnings);
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
    if (nwarnings > json_array_size(warnings))
        json_object_set_new(out, "warnings_truncated", json_true());
    if (warnings != NULL) /* stored, but most likely not as the producer meant */
        json_object_set_new(out, "warnings", warnings);
    return fr_api_json(p, c, MHD_HTTP_ACCEPTED, out, NULL);
}

/* ---- OTLP/HTTP (JSON and protobuf) ---- */

/* The answer in the request's own encoding: JSON, or protobuf (google.rpc.Status on errors). */
static enum MHD_Result
otlp_answer(struct fr_pipeline *p, struct MHD_Connection *c, enum fr_otlp_signal s, bool pb,
            const struct fr_otlp_result *r)
{
    if (pb) {
        uint8_t *body;
        size_t len;
        if (r->status == 200)
            fr_otlp_pb_response(s, r->rejected, r->rejected ? r->msg : NULL, &body, &len);
        else
            fr_otlp_pb_status(fr_otlp_grpc_code(r), r->msg,
                              r->retry_after ? atoi(r->retry_after) : 0, &body, &len);
        return fr_api_answer(p, c, r->status, "application/x-protobuf", (char *)body, len,
                             r->retry_after);
    }
    if (r->status != 200)
        return fr_api_error(p, c, r->status, r->msg, r->retry_after);
    static const char *const rkey[] = {"rejectedSpans", "rejectedLogRecords", "rejectedDataPoints"};
    json_t *body = json_object();
    if (r->rejected > 0)
        json_object_set_new(
            body, "partialSuccess",
            json_pack("{s:I,s:s}", rkey[s], (json_int_t)r->rejected, "errorMessage", r->msg));
    return fr_api_json(p, c, MHD_HTTP_OK, body, NULL);
}

struct decoded_ctx {
    struct fr_pipeline *p;
    struct fr_api_req *q;
    char *inflated;
};

/* The decoded request holds what is kept: the body goes (and leaves http.max_inflight_bytes). */
static void
body_decoded(void *ud)
{
    struct decoded_ctx *d = ud;
    free(d->inflated);
    fr_api_req_release(d->p, d->q);
}

/* 415: a header's value (what) the receiver does not take, saying what it takes; logged and
   counted as why. */
static enum MHD_Result
otlp_unsupported(struct fr_pipeline *p, struct MHD_Connection *c, enum fr_otlp_signal s,
                 enum fr_otlp_refusal why, bool pb, const char *what, const char *value,
                 const char *takes)
{
    char msg[200];
    struct fr_otlp_result r;
    snprintf(msg, sizeof msg, "%s %.60s: OTLP/HTTP takes %s", what, value, takes);
    fr_otlp_refuse(p, s, why, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL, msg, &r);
    return otlp_answer(p, c, s, pb, &r);
}

enum MHD_Result
fr_api_post_otlp(struct fr_pipeline *p, struct MHD_Connection *c, struct fr_api_req *q,
                 const char *url)
{
    enum fr_otlp_signal s = strcmp(url, "/v1/traces") == 0 ? FR_OTLP_TRACES
                            : strcmp(url, "/v1/logs") == 0 ? FR_OTLP_LOGS
                                                           : FR_OTLP_METRICS;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    /* application/x-protobuf as OTLP specifies; application/protobuf as some senders write it */
    bool pb = ct && (strncasecmp(ct, "application/x-protobuf", 22) == 0 ||
                     strncasecmp(ct, "application/protobuf", 20) == 0);
    struct fr_otlp_result r;
    if (q->too_large) {
        fr_otlp_refuse(p, s, FR_OTLP_TOO_LARGE, 413, NULL, "request body over http.max_body_bytes",
                       &r);
        return otlp_answer(p, c, s, pb, &r);
    }
    if (q->shed) {
        fr_otlp_refuse(p, s, FR_OTLP_QUEUE_FULL, 429, "1", FR_PIPELINE_INFLIGHT_FULL, &r);
        return otlp_answer(p, c, s, pb, &r);
    }
    if (q->busy) { /* full when its headers arrived: its body was dropped unread */
        fr_otlp_refuse_ack(p, s, &(struct fr_ack){.rc = FR_E_BUSY}, &r);
        return otlp_answer(p, c, s, pb, &r);
    }
    if (!pb && ct && strncasecmp(ct, "application/json", 16) != 0)
        return otlp_unsupported(p, c, s, FR_OTLP_MEDIA_TYPE, false, "Content-Type", ct,
                                "application/x-protobuf or application/json");
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char *body = q->body, *inflated = NULL;
    size_t len = q->len;
    if (enc && strcasecmp(enc, "identity") != 0) {
        if (!fr_body_encoding_known(enc))
            return otlp_unsupported(p, c, s, FR_OTLP_ENCODING, pb, "Content-Encoding", enc,
                                    FR_BODY_ENCODINGS " or identity");
        int rc = fr_body_inflate(enc, q->body, q->len, (size_t)p->conf.http_max_body_bytes,
                                 &inflated, &len);
        if (rc != FR_OK) {
            char why[96];
            fr_otlp_refuse(p, s, rc == FR_E_LIMIT ? FR_OTLP_TOO_LARGE : FR_OTLP_ENCODING,
                           rc == FR_E_LIMIT ? 413 : MHD_HTTP_BAD_REQUEST, NULL,
                           rc == FR_E_LIMIT ? "decompressed body over http.max_body_bytes"
                                            : fr_body_undecodable(why, sizeof why, "body",
                                                                  "Content-Encoding", enc),
                           &r);
            return otlp_answer(p, c, s, pb, &r);
        }
        body = inflated;
    }
    struct decoded_ctx d = {p, q, inflated};
    fr_otlp_ingest_body(p, s, pb, body ? body : "", len, body_decoded, &d, &r);
    return otlp_answer(p, c, s, pb, &r);
}
