/*
 * agent/otlp/proto.c - OTLP protobuf requests decoded with protobuf-c (the C
 * code generated from agent/otlp/otlp.proto) into the OTLP JSON tree, and
 * responses encoded.
 *
 * protobuf-c unpacks nested messages recursively without a depth limit, and
 * AnyValue nests without bound (a list of lists of ...): a small walk over
 * the wire format, guided by the generated descriptors, checks the nesting
 * first, so a crafted body is refused instead of exhausting the stack.
 */
#include "agent/otlp/proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/otlp/otlp.pb-c.h"
#include "core/hex.h"
#include "core/jsonmem.h"
#include "core/mem.h"
#include "core/utf8.h"

/* ---- the depth check ---- */

static bool
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Walks one message of type d: well-formed tags, and its message fields nested at most
   FR_OTLP_PB_MAX_DEPTH deep. Unknown fields are skipped, as protobuf-c skips them. */
static bool
walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > FR_OTLP_PB_MAX_DEPTH)
        return false;
    while (p < end) {
        uint64_t tag, n;
        if (!varint(&p, end, &tag))
            return false;
        switch (tag & 7) {
        case 0:
            if (!varint(&p, end, &n))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2: {
            if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
                return false;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= 0xffffffffu
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                    : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !walk(f->descriptor, p, p + n, depth + 1))
                return false;
            p += n;
            break;
        }
        default: /* groups (3, 4) are not in OTLP; 6 and 7 do not exist */
            return false;
        }
    }
    return true;
}

/* ---- to the JSON tree ---- */

/* A string of the request: protobuf-c does not check UTF-8, so it is checked here (once: the
   mapping takes the tree's strings as valid), and text that is not is repaired, never passed on. */
static json_t *
jstr(const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    if (fr_utf8_valid(s, n))
        return json_stringn_nocheck(s, n);
    char *ok = fr_utf8_sanitize(s);
    json_t *j = json_string_nocheck(ok);
    free(ok);
    return j;
}

static json_t *
jhex(const ProtobufCBinaryData *b)
{
    if (b->len == 0)
        return NULL;
    char small[65]; /* a trace id is 16 bytes, a span id 8 */
    char *h = b->len <= 32 ? small : fr_malloc(2 * b->len + 1);
    fr_hex_encode(b->data, b->len, h);
    json_t *j = json_stringn_nocheck(h, 2 * b->len); /* hex digits */
    if (h != small)
        free(h);
    return j;
}

/* o[key] = v (its reference taken), a key that is not UTF-8 repaired, never passed on. */
static void
set_key(json_t *o, const char *key, json_t *v)
{
    key = key ? key : "";
    if (fr_utf8_valid(key, strlen(key))) {
        json_object_set_new_nocheck(o, key, v);
        return;
    }
    char *ok = fr_utf8_sanitize(key);
    json_object_set_new_nocheck(o, ok, v);
    free(ok);
}

static void
set_opt(json_t *o, const char *k, json_t *v)
{
    if (v != NULL)
        json_object_set_new(o, k, v);
}

static json_t *kvs_wrapped(size_t n, FrOtlp__KeyValue **kv);

static json_t *
any(const FrOtlp__AnyValue *v)
{
    if (v == NULL)
        return json_object();
    switch (v->value_case) {
    case FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE:
        return json_pack("{s:o}", "stringValue", jstr(v->string_value));
    case FR_OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
        return json_pack("{s:b}", "boolValue", v->bool_value);
    case FR_OTLP__ANY_VALUE__VALUE_INT_VALUE:
        return json_pack("{s:I}", "intValue", (json_int_t)v->int_value);
    case FR_OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return json_pack("{s:f}", "doubleValue", v->double_value);
    case FR_OTLP__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->array_value->n_values; i++)
            json_array_append_new(a, any(v->array_value->values[i]));
        return json_pack("{s:{s:o}}", "arrayValue", "values", a);
    }
    case FR_OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
        return json_pack("{s:{s:o}}", "kvlistValue", "values",
                         kvs_wrapped(v->kvlist_value->n_values, v->kvlist_value->values));
    case FR_OTLP__ANY_VALUE__VALUE_BYTES_VALUE: { /* as hex, like the ids */
        json_t *h = jhex(&v->bytes_value);
        return json_pack("{s:o}", "bytesValue", h ? h : json_string(""));
    }
    default:
        return json_object();
    }
}

/* An AnyValue as the plain JSON value it holds (string, number, bool, array, object). */
static json_t *
plain(const FrOtlp__AnyValue *v)
{
    if (v == NULL)
        return json_null();
    switch (v->value_case) {
    case FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE:
        return jstr(v->string_value);
    case FR_OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case FR_OTLP__ANY_VALUE__VALUE_INT_VALUE:
        return json_integer((json_int_t)v->int_value);
    case FR_OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return json_real(v->double_value);
    case FR_OTLP__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->array_value->n_values; i++)
            json_array_append_new(a, plain(v->array_value->values[i]));
        return a;
    }
    case FR_OTLP__ANY_VALUE__VALUE_KVLIST_VALUE: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->kvlist_value->n_values; i++)
            set_key(o, v->kvlist_value->values[i]->key, plain(v->kvlist_value->values[i]->value));
        return o;
    }
    case FR_OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
        json_t *h = jhex(&v->bytes_value);
        return h ? h : json_string("");
    }
    default:
        return json_null();
    }
}

/*
 * Attributes as the object the mapping reads (map.c: attrs), later keys
 * winning: not the JSON encoding's list of {"key", "value": {"stringValue"}}
 * (built only to be turned into this object again).
 */
static json_t *
kvs(size_t n, FrOtlp__KeyValue **kv)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        set_key(o, kv[i]->key, plain(kv[i]->value));
    return o;
}

/* A kvlist in the wrapped form of the JSON encoding (log bodies: map.c: any_value). */
static json_t *
kvs_wrapped(size_t n, FrOtlp__KeyValue **kv)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:o,s:o}", "key", jstr(kv[i]->key), "value", any(kv[i]->value)));
    return a;
}

static json_t *
resource(const FrOtlp__Resource *r)
{
    return json_pack("{s:o}", "attributes",
                     r ? kvs(r->n_attributes, r->attributes) : json_object());
}

static json_t *
span(const FrOtlp__Span *s)
{
    json_t *o = json_object(); /* not json_pack: it parses its format for every span */
    json_object_set_new_nocheck(o, "name", jstr(s->name));
    json_object_set_new_nocheck(o, "kind", json_integer((json_int_t)s->kind));
    if (s->start_time_unix_nano != 0) /* absent on the wire: the JSON path's "missing" */
        json_object_set_new_nocheck(
            o, "startTimeUnixNano",
            json_integer((json_int_t)(s->start_time_unix_nano & INT64_MAX)));
    json_object_set_new_nocheck(o, "endTimeUnixNano",
                                json_integer((json_int_t)(s->end_time_unix_nano & INT64_MAX)));
    json_object_set_new_nocheck(o, "attributes", kvs(s->n_attributes, s->attributes));
    set_opt(o, "traceId", jhex(&s->trace_id));
    set_opt(o, "spanId", jhex(&s->span_id));
    set_opt(o, "parentSpanId", jhex(&s->parent_span_id));
    json_t *evs = json_array();
    for (size_t i = 0; i < s->n_events; i++) {
        const FrOtlp__SpanEvent *e = s->events[i];
        json_array_append_new(evs, json_pack("{s:o,s:I,s:o}", "name", jstr(e->name), "timeUnixNano",
                                             (json_int_t)(e->time_unix_nano & INT64_MAX),
                                             "attributes", kvs(e->n_attributes, e->attributes)));
    }
    json_object_set_new_nocheck(o, "events", evs);
    if (s->status != NULL) {
        json_t *st = json_object();
        json_object_set_new_nocheck(st, "code", json_integer(s->status->code));
        json_object_set_new_nocheck(st, "message", jstr(s->status->message));
        json_object_set_new_nocheck(o, "status", st);
    }
    return o;
}

/* Where a request read out in parts is: resource i, scope j, item k. */
struct part_at {
    size_t i, j, k;
};

/*
 * The spans of r from *at on, at most max of them, as a request of their own
 * (each with its resource); *at is then where the next part starts. A part
 * that fills up inside a scope ends there, and the next goes on in it.
 */
static json_t *
traces_part(const FrOtlp__ExportTraceServiceRequest *r, struct part_at *at, size_t max)
{
    json_t *rss = json_array();
    size_t n = 0;
    for (; at->i < r->n_resource_spans && n < max; at->i++, at->j = 0) {
        const FrOtlp__ResourceSpans *rs = r->resource_spans[at->i];
        json_t *sss = json_array();
        for (; at->j < rs->n_scope_spans && n < max; at->j++, at->k = 0) {
            const FrOtlp__ScopeSpans *ss = rs->scope_spans[at->j];
            json_t *spans = json_array();
            for (; at->k < ss->n_spans && n < max; at->k++, n++)
                json_array_append_new(spans, span(ss->spans[at->k]));
            json_array_append_new(sss, json_pack("{s:o}", "spans", spans));
            if (at->k < ss->n_spans)
                break; /* full: the next part goes on in this scope */
        }
        json_array_append_new(
            rss, json_pack("{s:o,s:o}", "resource", resource(rs->resource), "scopeSpans", sss));
        if (at->j < rs->n_scope_spans)
            break;
    }
    return json_pack("{s:o}", "resourceSpans", rss);
}

static json_t *
log_record(const FrOtlp__LogRecord *l)
{
    json_t *o =
        json_pack("{s:i,s:o,s:o}", "severityNumber", l->severity_number, "severityText",
                  jstr(l->severity_text), "attributes", kvs(l->n_attributes, l->attributes));
    if (l->time_unix_nano)
        json_object_set_new(o, "timeUnixNano",
                            json_integer((json_int_t)(l->time_unix_nano & INT64_MAX)));
    if (l->observed_time_unix_nano)
        json_object_set_new(o, "observedTimeUnixNano",
                            json_integer((json_int_t)(l->observed_time_unix_nano & INT64_MAX)));
    if (l->body != NULL)
        json_object_set_new(o, "body", any(l->body));
    if (l->event_name != NULL && l->event_name[0] != '\0')
        json_object_set_new(o, "eventName", jstr(l->event_name));
    set_opt(o, "traceId", jhex(&l->trace_id));
    set_opt(o, "spanId", jhex(&l->span_id));
    return o;
}

/* The log records of r from *at on, at most max of them (traces_part). */
static json_t *
logs_part(const FrOtlp__ExportLogsServiceRequest *r, struct part_at *at, size_t max)
{
    json_t *rls = json_array();
    size_t n = 0;
    for (; at->i < r->n_resource_logs && n < max; at->i++, at->j = 0) {
        const FrOtlp__ResourceLogs *rl = r->resource_logs[at->i];
        json_t *sls = json_array();
        for (; at->j < rl->n_scope_logs && n < max; at->j++, at->k = 0) {
            const FrOtlp__ScopeLogs *sl = rl->scope_logs[at->j];
            json_t *recs = json_array();
            for (; at->k < sl->n_log_records && n < max; at->k++, n++)
                json_array_append_new(recs, log_record(sl->log_records[at->k]));
            json_array_append_new(sls, json_pack("{s:o}", "logRecords", recs));
            if (at->k < sl->n_log_records)
                break;
        }
        json_array_append_new(
            rls, json_pack("{s:o,s:o}", "resource", resource(rl->resource), "scopeLogs", sls));
        if (at->j < rl->n_scope_logs)
            break;
    }
    return json_pack("{s:o}", "resourceLogs", rls);
}

static json_t *
histogram(const FrOtlp__Histogram *h)
{
    json_t *dps = json_array();
    for (size_t i = 0; i < h->n_data_points; i++) {
        const FrOtlp__HistogramDataPoint *dp = h->data_points[i];
        json_t *counts = json_array(), *bounds = json_array();
        for (size_t b = 0; b < dp->n_bucket_counts; b++)
            json_array_append_new(counts,
                                  json_integer((json_int_t)(dp->bucket_counts[b] & INT64_MAX)));
        for (size_t b = 0; b < dp->n_explicit_bounds; b++)
            json_array_append_new(bounds, json_real(dp->explicit_bounds[b]));
        json_array_append_new(dps,
                              json_pack("{s:o,s:I,s:I,s:f,s:f,s:o,s:o}", "attributes",
                                        kvs(dp->n_attributes, dp->attributes), "timeUnixNano",
                                        (json_int_t)(dp->time_unix_nano & INT64_MAX), "count",
                                        (json_int_t)(dp->count & INT64_MAX), "sum", dp->sum, "max",
                                        dp->max, "bucketCounts", counts, "explicitBounds", bounds));
    }
    return json_pack("{s:i,s:o}", "aggregationTemporality", h->aggregation_temporality,
                     "dataPoints", dps);
}

static json_t *
metrics(const FrOtlp__ExportMetricsServiceRequest *r)
{
    json_t *rms = json_array();
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const FrOtlp__ResourceMetrics *rm = r->resource_metrics[i];
        json_t *sms = json_array();
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            json_t *ms = json_array();
            for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                const FrOtlp__Metric *m = rm->scope_metrics[j]->metrics[k];
                json_t *mo = json_pack("{s:o,s:o}", "name", jstr(m->name), "unit", jstr(m->unit));
                if (m->histogram != NULL)
                    json_object_set_new(mo, "histogram", histogram(m->histogram));
                json_array_append_new(ms, mo);
            }
            json_array_append_new(sms, json_pack("{s:o}", "metrics", ms));
        }
        json_array_append_new(
            rms, json_pack("{s:o,s:o}", "resource", resource(rm->resource), "scopeMetrics", sms));
    }
    return json_pack("{s:o}", "resourceMetrics", rms);
}

static const ProtobufCMessageDescriptor *const request_desc[] = {
    [FR_OTLP_TRACES] = &fr_otlp__export_trace_service_request__descriptor,
    [FR_OTLP_LOGS] = &fr_otlp__export_logs_service_request__descriptor,
    [FR_OTLP_METRICS] = &fr_otlp__export_metrics_service_request__descriptor,
};

/* protobuf-c's allocations in the caller's JSON region, as the tree made from them (bump
   allocation, released at once: a request's unpacking is thousands of small mallocs) */
static void *
pb_alloc(void *ud, size_t n)
{
    (void)ud;
    return fr_json_region_alloc(n);
}

static void
pb_free(void *ud, void *p)
{
    (void)ud;
    fr_json_region_free(p);
}

static ProtobufCAllocator pb_allocator = {.alloc = pb_alloc, .free = pb_free};

/* Whether buf is a request of d that protobuf-c may unpack (why filled when not). */
static bool
well_formed(const ProtobufCMessageDescriptor *d, const void *buf, size_t len, char *why,
            size_t why_cap)
{
    if (walk(d, buf, (const uint8_t *)buf + len, 0))
        return true;
    snprintf(why, why_cap,
             "body is not an OTLP protobuf %s (malformed, or nested more than %d deep)",
             d->short_name, FR_OTLP_PB_MAX_DEPTH);
    return false;
}

json_t *
fr_otlp_pb_decode(enum fr_otlp_signal s, const void *buf, size_t len, char *why, size_t why_cap)
{
    const ProtobufCMessageDescriptor *d = request_desc[s];
    if (!well_formed(d, buf, len, why, why_cap))
        return NULL;
    size_t spills = fr_json_region_spills();
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &pb_allocator, len, buf);
    /* all of it in the region: its end frees it (free_unpacked only walks the messages) */
    bool in_region = spills != SIZE_MAX && fr_json_region_spills() == spills;
    if (m == NULL) {
        snprintf(why, why_cap, "body is not an OTLP protobuf %s", d->short_name);
        return NULL;
    }
    struct part_at all = {0};
    json_t *out =
        s == FR_OTLP_TRACES ? traces_part((FrOtlp__ExportTraceServiceRequest *)m, &all, SIZE_MAX)
        : s == FR_OTLP_LOGS ? logs_part((FrOtlp__ExportLogsServiceRequest *)m, &all, SIZE_MAX)
                            : metrics((FrOtlp__ExportMetricsServiceRequest *)m);
    if (!in_region)
        protobuf_c_message_free_unpacked(m, &pb_allocator);
    return out;
}

struct fr_otlp_pb_parts {
    enum fr_otlp_signal s;
    ProtobufCMessage *m; /* malloc'd: it outlives the parts' regions */
    struct part_at at;
};

struct fr_otlp_pb_parts *
fr_otlp_pb_open(enum fr_otlp_signal s, const void *buf, size_t len, char *why, size_t why_cap)
{
    const ProtobufCMessageDescriptor *d = request_desc[s];
    if (s == FR_OTLP_METRICS || !well_formed(d, buf, len, why, why_cap))
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (m == NULL) {
        snprintf(why, why_cap, "body is not an OTLP protobuf %s", d->short_name);
        return NULL;
    }
    struct fr_otlp_pb_parts *p = fr_calloc(1, sizeof *p);
    p->s = s;
    p->m = m;
    return p;
}

json_t *
fr_otlp_pb_part(struct fr_otlp_pb_parts *p, size_t max_items)
{
    if (p->s == FR_OTLP_TRACES) {
        const FrOtlp__ExportTraceServiceRequest *r = (FrOtlp__ExportTraceServiceRequest *)p->m;
        return p->at.i < r->n_resource_spans ? traces_part(r, &p->at, max_items) : NULL;
    }
    const FrOtlp__ExportLogsServiceRequest *r = (FrOtlp__ExportLogsServiceRequest *)p->m;
    return p->at.i < r->n_resource_logs ? logs_part(r, &p->at, max_items) : NULL;
}

void
fr_otlp_pb_close(struct fr_otlp_pb_parts *p)
{
    if (p == NULL)
        return;
    protobuf_c_message_free_unpacked(p->m, NULL);
    free(p);
}

static void
pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = fr_malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, *out);
}

void
fr_otlp_pb_response(enum fr_otlp_signal s, int64_t rejected, const char *msg, uint8_t **out,
                    size_t *len)
{
    bool partial = rejected > 0 || msg != NULL;
    char *m = (char *)(msg ? msg : "");
    if (s == FR_OTLP_TRACES) {
        FrOtlp__ExportTracePartialSuccess ps = FR_OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        FrOtlp__ExportTraceServiceResponse r = FR_OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        ps.rejected_spans = rejected;
        ps.error_message = m;
        r.partial_success = partial ? &ps : NULL;
        pack(&r.base, out, len);
    } else if (s == FR_OTLP_LOGS) {
        FrOtlp__ExportLogsPartialSuccess ps = FR_OTLP__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        FrOtlp__ExportLogsServiceResponse r = FR_OTLP__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        ps.rejected_log_records = rejected;
        ps.error_message = m;
        r.partial_success = partial ? &ps : NULL;
        pack(&r.base, out, len);
    } else {
        FrOtlp__ExportMetricsPartialSuccess ps = FR_OTLP__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
        FrOtlp__ExportMetricsServiceResponse r = FR_OTLP__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        ps.rejected_data_points = rejected;
        ps.error_message = m;
        r.partial_success = partial ? &ps : NULL;
        pack(&r.base, out, len);
    }
}

void
fr_otlp_pb_status(int code, const char *msg, int retry_s, uint8_t **out, size_t *len)
{
    FrOtlp__RpcStatus st = FR_OTLP__RPC_STATUS__INIT;
    st.code = code;
    st.message = (char *)(msg ? msg : "");
    FrOtlp__Duration d = FR_OTLP__DURATION__INIT;
    FrOtlp__RetryInfo ri = FR_OTLP__RETRY_INFO__INIT;
    FrOtlp__ProtoAny any = FR_OTLP__PROTO_ANY__INIT, *anyp = &any;
    uint8_t *ri_buf = NULL;
    if (retry_s > 0) {
        d.seconds = retry_s;
        ri.retry_delay = &d;
        size_t n;
        pack(&ri.base, &ri_buf, &n);
        any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
        any.value = (ProtobufCBinaryData){n, ri_buf};
        st.n_details = 1;
        st.details = &anyp;
    }
    pack(&st.base, out, len);
    free(ri_buf);
}
