/*
 * agent/otlp/ingest.c - one OTLP export request through the pipeline, for
 * every transport (ingest.h). Traces and logs become envelopes (map.c) that
 * go the way of /v1/events: queue room reserved before any redaction, each
 * envelope validated and redacted, the batch committed before the answer.
 * GenAI metrics become deltas of the "otel" rollups.
 *
 * No refusal is silent: each one is counted by signal and reason
 * (flightrec_otlp_rejected_total) and logged at warn, at most once per
 * reason and signal every FR_OTLP_WARN_EVERY_S seconds with the number
 * left unlogged, so a misconfigured exporter shows in the agent's log
 * without flooding it.
 */
#include "agent/otlp/ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ingest.h"
#include "agent/otlp/map.h"
#include "core/jsonfast.h"
#include "core/jsonmem.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "core/wire.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"

#define FR_OTLP_WARN_EVERY_S 10
/* protobuf traces and logs bodies this large are prepared in parts of this many items: an
   SDK's batch (512 spans, ~0.3 MB) stays one tree, a Collector's (8,192) is 16 of them */
#define FR_OTLP_PARTS_FROM ((size_t)1 << 20)
#define FR_OTLP_PART_ITEMS 512

static const char *const refusal_names[FR_OTLP_REFUSAL_COUNT] = {
    "ok",        "media_type", "encoding",    "malformed",
    "too_large", "queue_full", "unavailable", "invalid"};

const char *
fr_otlp_refusal_name(enum fr_otlp_refusal r)
{
    return r < FR_OTLP_REFUSAL_COUNT ? refusal_names[r] : "?";
}

int
fr_otlp_grpc_code(const struct fr_otlp_result *r)
{
    switch (r->reason) {
    case FR_OTLP_OK:
    case FR_OTLP_INVALID: /* partial success is OK with partial_success */
        return 0;
    case FR_OTLP_QUEUE_FULL:
    case FR_OTLP_TOO_LARGE:
        return 8;
    case FR_OTLP_UNAVAILABLE:
        return 14;
    default:
        return 3;
    }
}

const char *
fr_otlp_signal_name(enum fr_otlp_signal s)
{
    return s == FR_OTLP_TRACES ? "traces" : s == FR_OTLP_LOGS ? "logs" : "metrics";
}

/* ---- rejections: counted always, logged at most once per interval per kind ---- */

static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;
static double warn_last[3][FR_OTLP_REFUSAL_COUNT];
static uint64_t warn_quiet[3][FR_OTLP_REFUSAL_COUNT];

static void
rejection(struct fr_pipeline *p, enum fr_otlp_signal s, enum fr_otlp_refusal why, uint64_t items,
          const char *msg)
{
    fr_metrics_otlp_rejected(p->metrics, fr_otlp_signal_name(s), fr_otlp_refusal_name(why), items);
    double now = fr_mono_s();
    pthread_mutex_lock(&warn_mu);
    bool say = warn_last[s][why] == 0 || now - warn_last[s][why] >= FR_OTLP_WARN_EVERY_S;
    uint64_t quiet = warn_quiet[s][why];
    if (say) {
        warn_last[s][why] = now;
        warn_quiet[s][why] = 0;
    } else {
        warn_quiet[s][why]++;
    }
    pthread_mutex_unlock(&warn_mu);
    if (!say)
        return;
    char *clean = fr_utf8_sanitize(msg ? msg : "");
    if (quiet > 0)
        fr_log(FR_LOG_WARN, "otlp", "%s refused (%s): %s (and %llu more like it in the last %d s)",
               fr_otlp_signal_name(s), fr_otlp_refusal_name(why), clean, (unsigned long long)quiet,
               FR_OTLP_WARN_EVERY_S);
    else
        fr_log(FR_LOG_WARN, "otlp", "%s refused (%s): %s", fr_otlp_signal_name(s),
               fr_otlp_refusal_name(why), clean);
    free(clean);
}

void
fr_otlp_refuse(struct fr_pipeline *p, enum fr_otlp_signal s, enum fr_otlp_refusal why, int status,
               const char *retry_after, const char *msg, struct fr_otlp_result *r)
{
    r->status = status;
    r->reason = why;
    r->rejected = 0;
    r->retry_after = retry_after;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    rejection(p, s, why, 1, r->msg);
}

void
fr_otlp_refuse_ack(struct fr_pipeline *p, enum fr_otlp_signal s, const struct fr_ack *ack,
                   struct fr_otlp_result *r)
{
    if (ack->rc == FR_E_LIMIT)
        fr_otlp_refuse(p, s, FR_OTLP_TOO_LARGE, 413, NULL, ack->err.msg, r);
    else if (ack->rc == FR_E_BUSY)
        fr_otlp_refuse(p, s, FR_OTLP_QUEUE_FULL, 429, "1",
                       "ingest queue full; nothing of this request was stored, retry", r);
    else
        fr_otlp_refuse(p, s, FR_OTLP_UNAVAILABLE, 503, "5", ack->err.msg, r);
}

/* Why items of a request were rejected: the first few distinct reasons, counted. */
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

/* ---- metrics ---- */

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
    if (fr_store_rollup_delta(c->rs, r->dim, r->minute_ms, system, model, &d, &err) != FR_OK)
        c->failed++;
    return 0;
}

/* GenAI metrics feed their own rollup dimension ("otel"): they repeat what spans carry,
   so they are kept apart instead of added to it */
static void
ingest_metrics(struct fr_pipeline *p, const json_t *req, struct fr_otlp_result *r)
{
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
    if (mrc != FR_OK) {
        fr_otlp_refuse(p, FR_OTLP_METRICS, FR_OTLP_MALFORMED, 400, NULL,
                       "not an OTLP metrics request (resourceMetrics is not a list, or it is "
                       "another signal's: traces go to /v1/traces, logs to /v1/logs)",
                       r);
        return;
    }
    fr_metrics_received(p->metrics, "otlp", points);
    if (oc.failed)
        fr_otlp_refuse(p, FR_OTLP_METRICS, FR_OTLP_UNAVAILABLE, 503, "5",
                       "the store did not take the metrics; retry", r);
}

/* A request's events, prepared: what is left of it once its tree is dropped. */
struct prepared {
    struct fr_record *recs;
    size_t ok, n, rejected;
    struct fr_trace_link *links; /* the traces it named (strings owned) */
    size_t nlinks;
    struct reasons why;
    json_t *steps; /* in parts: steps carrying their own error, kept (out of the parts' region,
                      counted in n) until every part is mapped (fr_otlp_step_failing) */
    /* a large request, mapped a part at a time (NULL: read whole): one redaction policy for all
       of its parts, and what goes to /metrics kept until the request is taken (a part that
       cannot be read fast has the body read whole, and counted, again; a refused request is
       sent again) */
    struct fr_live *live;
    struct fr_redact_counts counts;
    uint64_t received;
    int *rejected_rc;
    size_t nrejected_rc;
};

static void
prepared_clear(struct prepared *pr)
{
    for (size_t k = 0; k < pr->ok; k++)
        fr_record_clear(&pr->recs[k]);
    free(pr->recs);
    for (size_t k = 0; k < pr->nlinks; k++) {
        free((char *)pr->links[k].trace_id);
        free((char *)pr->links[k].conv_id);
    }
    free(pr->links);
    json_decref(pr->steps);
    free(pr->rejected_rc);
}

/* The traces a request (or a part of one) named (trace id -> conversation), copied out of its
   tree and added to those of its earlier parts. */
static void
copy_links(const json_t *named, struct prepared *pr)
{
    const char *trace;
    json_t *conv;
    pr->links =
        fr_realloc(pr->links, (pr->nlinks + json_object_size(named) + 1) * sizeof *pr->links);
    json_object_foreach((json_t *)named, trace, conv)
    {
        size_t k = 0;
        while (k < pr->nlinks && strcmp(pr->links[k].trace_id, trace) != 0)
            k++;
        if (k < pr->nlinks) { /* named by an earlier part: the later one counts, as in a tree */
            free((char *)pr->links[k].conv_id);
            pr->links[k].conv_id = fr_strdup(json_string_value(conv));
            continue;
        }
        pr->links[pr->nlinks].trace_id = fr_strdup(trace);
        pr->links[pr->nlinks++].conv_id = fr_strdup(json_string_value(conv));
    }
}

/* Redacts and packs the events of envs into pr->recs (room for them made by the caller). */
static void
prepare_events(struct fr_pipeline *p, const json_t *envs, struct prepared *pr)
{
    bool parts = pr->live != NULL; /* the request's policy and counts (metrics_in_parts) */
    struct fr_live *l = parts ? pr->live : fr_pipeline_live_get(p);
    struct fr_redact_counts own, *counts = parts ? &pr->counts : &own;
    if (!parts)
        fr_redact_counts_init(&own, l->red);
    size_t i;
    json_t *ev;
    json_array_foreach(envs, i, ev)
    {
        struct fr_err err = {0};
        /* messages of a provider event sent apart (map.c: content_record) */
        bool part = json_object_get(ev, "_part") != NULL;
        json_object_del(ev, "_part");
        if (fr_ingest_prepare_tree(json_incref(ev), &l->cfg, counts, &pr->recs[pr->ok], &err) ==
            FR_OK) {
            pr->recs[pr->ok].part = part;
            pr->ok++;
            continue;
        }
        pr->rejected++;
        reason_add(&pr->why, err.msg, 1);
        if (!parts) {
            fr_metrics_rejected(p->metrics, err.code);
            continue;
        }
        pr->rejected_rc =
            fr_realloc(pr->rejected_rc, (pr->nrejected_rc + 1) * sizeof *pr->rejected_rc);
        pr->rejected_rc[pr->nrejected_rc++] = err.code;
    }
    if (!parts) {
        fr_metrics_redaction(p->metrics, l->red, &own);
        fr_redact_counts_free(&own);
        fr_pipeline_live_put(p, l);
    }
}

/*
 * A request in parts: one redaction policy (the live one when it began) for
 * every part, and its counts for /metrics kept apart (begin) until the
 * request is taken (end, taken true) or dropped (a part that cannot be read
 * fast, so the body is read whole and counted then; a refusal, after which
 * the sender sends it again).
 */
static void
metrics_in_parts(struct fr_pipeline *p, struct prepared *pr, bool begin, bool taken)
{
    if (begin) {
        pr->live = fr_pipeline_live_get(p);
        fr_redact_counts_init(&pr->counts, pr->live->red);
        return;
    }
    if (taken) {
        fr_metrics_received(p->metrics, "otlp", pr->received);
        fr_metrics_redaction(p->metrics, pr->live->red, &pr->counts);
        for (size_t i = 0; i < pr->nrejected_rc; i++)
            fr_metrics_rejected(p->metrics, pr->rejected_rc[i]);
    }
    fr_redact_counts_free(&pr->counts);
    fr_pipeline_live_put(p, pr->live);
    pr->live = NULL;
}

/*
 * Takes out of envs (a part's events) the steps that still carry their own
 * error, copied out of the part's region into pr->steps: their call may be
 * in a later part (a step's scope can come before its call's in an export),
 * so they are prepared after the last part (prepare_kept_steps).
 */
static void
keep_failing_steps(json_t *envs, struct prepared *pr)
{
    for (size_t i = 0; i < json_array_size(envs);) {
        json_t *ev = json_array_get(envs, i);
        if (!fr_otlp_step_failing(ev)) {
            i++;
            continue;
        }
        int depth = fr_json_region_suspend(); /* the copy outlives the part */
        if (pr->steps == NULL)
            pr->steps = json_array();
        json_array_append_new(pr->steps, json_deep_copy(ev));
        fr_json_region_resume(depth);
        json_array_remove(envs, i);
    }
}

/* The steps keep_failing_steps took, once every part is mapped: each names the call that failed
   with its message in its trace, if one did in any part (or an earlier request), then all are
   prepared as the parts' events were. */
static void
prepare_kept_steps(struct fr_pipeline *p, struct prepared *pr)
{
    if (pr->steps == NULL)
        return;
    size_t i;
    json_t *ev;
    json_array_foreach(pr->steps, i, ev)
    {
        fr_otlp_step_failed_in(ev, p->otlp_failures);
    }
    prepare_events(p, pr->steps, pr);
    json_decref(pr->steps);
    pr->steps = NULL;
}

/*
 * Maps, admits and prepares the spans or log records of req into pr, after
 * those of the request's earlier parts (their queue room grown by this
 * part's); false when the request is refused (r says why; nothing is then
 * reserved) or was a metrics request (done).
 */
static bool
prepare(struct fr_pipeline *p, enum fr_otlp_signal s, const json_t *req, struct prepared *pr,
        struct fr_otlp_result *r)
{
    if (s == FR_OTLP_METRICS) {
        ingest_metrics(p, req, r);
        return false;
    }
    bool traces = s == FR_OTLP_TRACES;
    struct fr_otlp_opts o = {p->conf.otlp_conversation_attributes, p->conf.otlp_turn_attributes,
                             p->otlp_failures};
    json_t *envs = json_array(), *named = json_object();
    size_t items = 0, rejected = 0;
    int mrc = traces ? fr_otlp_traces(req, &o, envs, named, &items, &rejected)
                     : fr_otlp_logs(req, &o, envs, named, &items, &rejected);
    pr->rejected += rejected;
    if (mrc != FR_OK) {
        json_decref(envs);
        json_decref(named);
        fr_pipeline_unreserve(p, pr->n); /* an earlier part's, if any */
        pr->n = 0;
        fr_otlp_refuse(p, s, FR_OTLP_MALFORMED, 400, NULL,
                       traces ? "not an OTLP traces request (resourceSpans is not a list, or "
                                "it is another signal's: logs go to /v1/logs, metrics to "
                                "/v1/metrics)"
                              : "not an OTLP logs request (resourceLogs is not a list, or it is "
                                "another signal's: traces go to /v1/traces, metrics to "
                                "/v1/metrics)",
                       r);
        return false;
    }
    size_t n = json_array_size(envs), from = pr->ok;
    reason_add(&pr->why,
               traces ? "a span without a startTimeUnixNano in nanoseconds since the epoch "
                        "(absent, not a number, or before 1973), or not an object"
                      : "a log record without a timeUnixNano or observedTimeUnixNano in "
                        "nanoseconds since the epoch (absent, not a number, or before 1973), or "
                        "a flightrec.kind record that does not map",
               rejected);
    struct fr_ack ack;
    /* before redaction, the cost; a refused growth gives back the earlier parts' room too */
    int rrc = pr->n == 0 ? fr_pipeline_reserve(p, n, false, &ack)
                         : fr_pipeline_rereserve(p, pr->n, pr->n + n, &ack);
    if (rrc != FR_OK) {
        pr->n = 0;
        json_decref(envs);
        json_decref(named);
        fr_otlp_refuse_ack(p, s, &ack, r);
        return false;
    }
    pr->n += n;
    pr->recs = fr_realloc(pr->recs, (pr->n + 1) * sizeof *pr->recs);
    memset(pr->recs + from, 0, (pr->n + 1 - from) * sizeof *pr->recs);
    if (traces && pr->live != NULL) /* in parts: a step's call may come in a later part */
        keep_failing_steps(envs, pr);
    prepare_events(p, envs, pr);
    fr_json_region_drop(envs); /* the region's end frees it: jsonmem.h */
    if (pr->live != NULL)
        pr->received += items;
    else
        fr_metrics_received(p->metrics, "otlp", items);
    copy_links(named, pr);
    fr_json_region_drop(named);
    return true;
}

/* Commits what prepare made (its reservation) and says how to answer. */
static void
submit(struct fr_pipeline *p, enum fr_otlp_signal s, struct prepared *pr, struct fr_otlp_result *r)
{
    /* the traces this request named are committed with its events, so that spans of them
       stored earlier (or later) under the trace id join the conversation */
    struct fr_ack ack;
    fr_pipeline_submit_linked(p, pr->recs, pr->ok, pr->n, pr->links, pr->nlinks, &ack);
    if (ack.rc != FR_OK) {
        fr_otlp_refuse_ack(p, s, &ack, r);
        return;
    }
    if (pr->rejected > 0) {
        r->rejected = (int64_t)pr->rejected;
        reasons_text(&pr->why, pr->rejected, r->msg, sizeof r->msg);
        rejection(p, s, FR_OTLP_INVALID, pr->rejected, r->msg);
    }
}

/* Whether a warning last said at *said_ms may be said again now (then it is). */
static bool
otlp_say_now(_Atomic int64_t *said_ms)
{
    int64_t now = fr_now_ms(), then = atomic_load(said_ms);
    return now - then >= FR_OTLP_WARN_EVERY_S * 1000 &&
           atomic_compare_exchange_strong(said_ms, &then, now);
}

/*
 * An OTLP/JSON body that jansson refused for half of a character (a lone UTF-16 surrogate
 * escape, which JSON.stringify, the JavaScript SDK's JSON exporter, writes for an attribute
 * or a log body cut inside an emoji) or for bytes that are not UTF-8 (a log body forwarded
 * as it was read, in Latin-1): read again with each as U+FFFD (fr_wire_mend_once), as an
 * event's line is, so one such string does not lose the whole export; said at warn at most
 * once every FR_OTLP_WARN_EVERY_S for each kind. NULL (jerr set) when it still does not parse.
 */
static json_t *
otlp_mended(const char *body, size_t len, enum fr_otlp_signal s, json_error_t *jerr)
{
    char *text = NULL; /* the body mended so far */
    size_t n = len, halves = 0, bytes = 0;
    char half_at[FR_PATH_MAX] = "", bytes_at[FR_PATH_MAX] = ""; /* the first of each kind */
    json_t *req = NULL;
    for (int round = 0; round < 2 && req == NULL; round++) { /* each kind at most once */
        enum fr_wire_mend why = fr_json_error_mendable(jerr);
        size_t *done = why == FR_MEND_HALF ? &halves : why == FR_MEND_BYTES ? &bytes : NULL;
        size_t where;
        char *next = done != NULL && *done == 0
                         ? fr_wire_mend_once(text ? text : body, n, why, 0, &n, done, &where)
                         : NULL;
        if (next == NULL)
            break;
        free(text);
        text = next;
        if (why == FR_MEND_HALF)
            fr_json_path_at(text, n, where, half_at, sizeof half_at);
        else
            fr_json_path_at(text, n, where, bytes_at, sizeof bytes_at);
        req = json_loadb(text, n, 0, jerr);
    }
    free(text);
    static _Atomic int64_t said_half_ms, said_bytes_ms;
    if (req != NULL && halves > 0 && otlp_say_now(&said_half_ms))
        fr_log(FR_LOG_WARN, "otlp",
               "%s: %zu string(s) held half of a character (a lone UTF-16 surrogate escape, as "
               "JSON.stringify writes a string cut inside an emoji); stored as U+FFFD; the "
               "first at %s",
               fr_otlp_signal_name(s), halves, half_at);
    if (req != NULL && bytes > 0 && otlp_say_now(&said_bytes_ms))
        fr_log(FR_LOG_WARN, "otlp",
               "%s: %zu byte(s) were not UTF-8 (text in Latin-1, or cut inside a character by a "
               "byte count); each stored as U+FFFD; the first at %s",
               fr_otlp_signal_name(s), bytes, bytes_at);
    return req;
}

/* The next part of a large request (NULL: none left, or *bad set: it cannot be read so). */
struct parts_src {
    struct fr_otlp_pb_parts *pb;
    struct fr_json_fast_parts *js;
};

static json_t *
parts_next(struct parts_src *src, int *bad)
{
    *bad = 0;
    if (src->pb != NULL)
        return fr_otlp_pb_part(src->pb, FR_OTLP_PART_ITEMS);
    json_t *part = fr_json_fast_parts_next(src->js, FR_OTLP_PART_ITEMS, bad);
    if (part != NULL)
        fr_otlp_json_normalize(part);
    return part;
}

/*
 * A large traces or logs request, read out and prepared in parts of
 * FR_OTLP_PART_ITEMS (fr_otlp_pb_open, fr_json_fast_parts_open): one
 * part's tree at a time, not the whole request's, so that a Collector's
 * batch of 8,192 spans does not take the agent past 100 MiB. The parts are
 * one request all the same: their events are committed together, or
 * refused together. False when a part of a JSON body could not be read so
 * (a key named twice ...: jansson reads it whole after all); what the parts
 * before it took is given back (their counts in the metrics stay). src is
 * closed either way.
 */
static bool
ingest_parts(struct fr_pipeline *p, enum fr_otlp_signal s, struct parts_src *src, size_t len,
             void (*decoded)(void *ud), void *ud, struct fr_otlp_result *r)
{
    struct prepared pr = {0};
    bool go = true, more = true;
    int bad = 0;
    metrics_in_parts(p, &pr, true, false);
    while (go && more) {
        fr_json_region_begin();
        json_t *part = parts_next(src, &bad);
        more = part != NULL; /* else all of it is prepared, or bad */
        go = !more ? !bad : prepare(p, s, part, &pr, r);
        fr_json_region_drop(part);
        fr_json_region_end();
    }
    fr_otlp_pb_close(src->pb); /* the unpacked request or the document, before the wait */
    fr_json_fast_parts_close(src->js);
    if (bad) {
        fr_pipeline_unreserve(p, pr.n);
    } else {
        if (decoded != NULL) /* all of the body read: it goes before the wait for the commit */
            decoded(ud);
        if (go)
            prepare_kept_steps(p, &pr);
        fr_pipeline_prepare_end(p, len); /* the slot too */
        if (go)
            submit(p, s, &pr, r);
    }
    metrics_in_parts(p, &pr, false, !bad && go && r->status < 400);
    prepared_clear(&pr);
    return !bad;
}

void
fr_otlp_ingest_body(struct fr_pipeline *p, enum fr_otlp_signal s, bool pb, const char *body,
                    size_t len, void (*decoded)(void *ud), void *ud, struct fr_otlp_result *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    char msg[300];
    json_t *req;
    struct prepared pr = {0};
    /* one of the pipeline's preparing slots, and the body's bytes of ingest.prepare_bytes:
       with many connections, or a Collector's batches of thousands of spans, the others wait
       holding their bodies only, not a request tree 10-20 times a body's size each */
    fr_pipeline_prepare_begin(p, len);
    if (s != FR_OTLP_METRICS && len >= FR_OTLP_PARTS_FROM) {
        size_t bom = pb ? 0 : fr_wire_bom(body, len);
        bool traces = s == FR_OTLP_TRACES;
        struct parts_src src = {
            .pb = pb ? fr_otlp_pb_open(s, body, len, msg, sizeof msg) : NULL,
            .js = pb ? NULL
                     : fr_json_fast_parts_open(
                           body + bom, len - bom, traces ? "resourceSpans" : "resourceLogs",
                           traces ? "scopeSpans" : "scopeLogs", traces ? "spans" : "logRecords")};
        if (pb && decoded != NULL) /* unpacked: the body is not read again */
            decoded(ud);
        /* done: prepared (the slot given back: ingest_parts), and answered */
        bool done = (src.pb != NULL || src.js != NULL) &&
                    ingest_parts(p, s, &src, len, pb ? NULL : decoded, ud, r);
        if (done)
            return;
        if (pb) { /* a protobuf body that does not unpack */
            fr_pipeline_prepare_end(p, len);
            fr_otlp_refuse(p, s, FR_OTLP_MALFORMED, 400, NULL, msg, r);
            return;
        }
        /* a JSON body not in parts: read whole, below */
    }
    fr_json_region_begin(); /* the request's tree and its envelopes: dropped before the wait */
    if (pb) {
        req = fr_otlp_pb_decode(s, body, len, msg, sizeof msg);
    } else {
        json_error_t jerr;
        char text[JSON_ERROR_TEXT_LENGTH];
        size_t bom = fr_wire_bom(body, len); /* as an NDJSON body's */
        /* simdjson first (3-4x fewer instructions than jansson's byte-at-a-time reader on
           OTLP's many small objects); whatever it leaves, jansson reads and words the error */
        req = fr_json_fast_load_doc(body + bom, len - bom);
        if (req == NULL)
            req = json_loadb(body + bom, len - bom, 0, &jerr);
        if (req == NULL && fr_json_error_mendable(&jerr) & (FR_MEND_HALF | FR_MEND_BYTES))
            req = otlp_mended(body + bom, len - bom, s, &jerr);
        if (req == NULL)
            snprintf(msg, sizeof msg, "body is not JSON: %s at byte %d",
                     fr_json_error_text(&jerr, text, sizeof text), jerr.position + (int)bom);
        else
            fr_otlp_json_normalize(req);
    }
    if (decoded != NULL)
        decoded(ud);
    bool go = req != NULL && prepare(p, s, req, &pr, r);
    fr_json_region_drop(req);
    fr_json_region_end();
    fr_pipeline_prepare_end(p, len);
    if (req == NULL)
        fr_otlp_refuse(p, s, FR_OTLP_MALFORMED, 400, NULL, msg, r);
    if (go)
        submit(p, s, &pr, r);
    prepared_clear(&pr);
}
