/*
 * agent/otlp.h - OTLP/HTTP (JSON) traces and logs mapped onto wire-format
 * envelopes, and GenAI metrics as rollup deltas; the mapping table is
 * docs/otlp.md.
 */
#ifndef FR_AGENT_OTLP_H
#define FR_AGENT_OTLP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "retention/hot/store.h"

struct fr_otlp_failures;

struct fr_otlp_opts {
    const char *conversation_attributes; /* comma-separated, first present wins */
    const char *turn_attributes;         /* comma-separated; NULL = none */
    struct fr_otlp_failures *failures;   /* recent failed calls across requests; NULL = none */
};

/*
 * The model calls and tools that failed recently (the last
 * FR_OTLP_FAILURES_WINDOW_MS, at most FR_OTLP_FAILURES_SLOTS of them), by
 * trace and message, across requests and connections (thread-safe): a step
 * that fails because of such a call is often exported in a later batch than
 * the call (its span ends last), and is then still counted once, where the
 * call failed (see fr_otlp_traces). Kept in memory only: after a restart a
 * step of a call exported before it carries its error again.
 */
#define FR_OTLP_FAILURES_WINDOW_MS (10 * 60 * 1000)
#define FR_OTLP_FAILURES_SLOTS 2048
struct fr_otlp_failures *fr_otlp_failures_new(void);
void fr_otlp_failures_free(struct fr_otlp_failures *f);

/*
 * Whether ev (an event fr_otlp_traces made) is a step that carries its own
 * error: one whose call may still come, later in the same export (a large
 * export is mapped a part at a time, and a step's instrumentation scope may
 * come before its call's).
 */
bool fr_otlp_step_failing(const json_t *ev);

/* Such a step, once the rest of its export is mapped: when a call of its trace failed with
   its message (failures), it names that call (data.failed_in) instead of carrying the error. */
void fr_otlp_step_failed_in(json_t *ev, struct fr_otlp_failures *failures);

/*
 * A request read from OTLP/JSON, put in the form the mapping reads (the
 * protobuf decoder's): the protobuf JSON mapping lets a sender write an enum
 * by name ("STATUS_CODE_ERROR", "SEVERITY_NUMBER_WARN",
 * "AGGREGATION_TEMPORALITY_DELTA") and bytes in base64, and some write trace
 * and span ids that way or in capitals; they become the numbers and the
 * lowercase hex the OTLP encoding specifies. Anything else is left as it is.
 */
void fr_otlp_json_normalize(json_t *req);

/*
 * Appends one envelope per mappable span of an ExportTraceServiceRequest to
 * out; *spans counts the spans seen, *rejected the malformed ones. Spans with
 * no flightrec kind are accepted and not stored. FR_E_VALUE when req is not
 * a traces request. links (an object, or NULL) receives trace id ->
 * conversation for every trace a span of the request names the
 * conversation of (stored spans or not: the root span of a turn often has
 * no kind); spans of a trace no span names are filed under conv_id = the
 * trace id, for the store to move once the trace is named
 * (fr_store_link_trace). A middleware span (a step: an agent, a workflow, a
 * generateText around the calls) that failed with the same message as a
 * provider or tool span of its trace, in this request or (with o->failures)
 * an earlier one, names that span (data.failed_in) instead of carrying the
 * error: one failure, counted where it happened.
 */
int fr_otlp_traces(const json_t *req, const struct fr_otlp_opts *o, json_t *out, json_t *links,
                   size_t *spans, size_t *rejected);

/*
 * The same for an ExportLogsServiceRequest: records with a flightrec.kind
 * attribute become events of that kind (body = data), other ERROR-or-worse
 * records become error events.
 */
int fr_otlp_logs(const json_t *req, const struct fr_otlp_opts *o, json_t *out, json_t *links,
                 size_t *records, size_t *rejected);

/*
 * GenAI metrics of an ExportMetricsServiceRequest as rollup deltas:
 * gen_ai.client.token.usage (sum by gen_ai.token.type) and
 * gen_ai.client.operation.duration (count, sum). Cumulative series are
 * turned into deltas against the last value seen (state keeps them, bounded).
 */
struct fr_otlp_metrics_state;
struct fr_otlp_metrics_state *fr_otlp_metrics_state_new(void);
void fr_otlp_metrics_state_free(struct fr_otlp_metrics_state *s);

/*
 * The provider/model pairs the "otel" rollups may hold: at most
 * FR_OTLP_MAX_SERIES distinct pairs are admitted (true); a new pair past
 * that is not (false: the caller counts it under "other"), so a producer
 * cannot grow the rollups and the agent's memory without bound.
 */
#define FR_OTLP_MAX_SERIES 1000
bool fr_otlp_series_admit(struct fr_otlp_metrics_state *s, const char *system, const char *model);

struct fr_otlp_rollup {
    const char *dim; /* "otel" (calls, tokens, duration), "otel_ttft", "otel_chunk" (streaming) */
    int64_t minute_ms;
    const char *system, *model;
    int64_t calls, errors, input_tokens, output_tokens, lat_count, lat_sum_ms, lat_max_ms;
    int64_t hist[FR_HIST_BUCKETS];
};

int fr_otlp_metrics(const json_t *req, struct fr_otlp_metrics_state *s,
                    int (*cb)(void *ud, const struct fr_otlp_rollup *r), void *ud, size_t *points);

#endif
