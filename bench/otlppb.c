/*
 * bench/otlppb.c - an OTLP JSON ExportTraceServiceRequest re-encoded as
 * protobuf with the generated code of agent/otlp/otlp.proto, as an SDK's
 * proto or gRPC exporter would send the same spans (ids as bytes, times and
 * integers as numbers). For fr-httpbench's protobuf and gRPC modes.
 */
#include "bench/otlppb.h"

#include <stdlib.h>
#include <string.h>

#include "agent/otlp/otlp.pb-c.h"
#include "core/hex.h"
#include "core/mem.h"

/* Everything allocated for one request, freed at once. */
struct arena {
    void **p;
    size_t n, cap;
};

static void *
take(struct arena *a, size_t size)
{
    if (a->n == a->cap)
        a->p = fr_realloc(a->p, (a->cap = a->cap ? 2 * a->cap : 256) * sizeof *a->p);
    return a->p[a->n++] = fr_calloc(1, size ? size : 1);
}

static ProtobufCBinaryData
hexbytes(struct arena *a, const char *hex)
{
    size_t n = hex ? strlen(hex) / 2 : 0;
    uint8_t *b = take(a, n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(fr_hex_digit(hex[2 * i]) << 4 | fr_hex_digit(hex[2 * i + 1]));
    return (ProtobufCBinaryData){n, b};
}

static const char *
str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static uint64_t
u64(const json_t *v)
{
    return json_is_string(v) ? strtoull(json_string_value(v), NULL, 10)
                             : (uint64_t)json_integer_value(v);
}

static FrOtlp__KeyValue **kvs(struct arena *a, const json_t *list, size_t *n);

static FrOtlp__AnyValue *
any(struct arena *a, const json_t *v)
{
    FrOtlp__AnyValue *o = take(a, sizeof *o);
    fr_otlp__any_value__init(o);
    const json_t *x;
    if ((x = json_object_get(v, "stringValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        o->string_value = (char *)json_string_value(x);
    } else if ((x = json_object_get(v, "intValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_INT_VALUE;
        o->int_value = (int64_t)u64(x);
    } else if ((x = json_object_get(v, "doubleValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
        o->double_value = json_number_value(x);
    } else if ((x = json_object_get(v, "boolValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
        o->bool_value = json_is_true(x);
    } else if ((x = json_object_get(v, "arrayValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
        FrOtlp__ArrayValue *arr = take(a, sizeof *arr);
        fr_otlp__array_value__init(arr);
        const json_t *vals = json_object_get(x, "values");
        arr->n_values = json_array_size(vals);
        arr->values = take(a, arr->n_values * sizeof *arr->values);
        for (size_t i = 0; i < arr->n_values; i++)
            arr->values[i] = any(a, json_array_get(vals, i));
        o->array_value = arr;
    } else if ((x = json_object_get(v, "kvlistValue"))) {
        o->value_case = FR_OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
        FrOtlp__KeyValueList *l = take(a, sizeof *l);
        fr_otlp__key_value_list__init(l);
        l->values = kvs(a, json_object_get(x, "values"), &l->n_values);
        o->kvlist_value = l;
    }
    return o;
}

static FrOtlp__KeyValue **
kvs(struct arena *a, const json_t *list, size_t *n)
{
    *n = json_array_size(list);
    FrOtlp__KeyValue **out = take(a, *n * sizeof *out);
    for (size_t i = 0; i < *n; i++) {
        const json_t *e = json_array_get(list, i);
        out[i] = take(a, sizeof *out[i]);
        fr_otlp__key_value__init(out[i]);
        out[i]->key = (char *)json_string_value(json_object_get(e, "key"));
        out[i]->value = any(a, json_object_get(e, "value"));
    }
    return out;
}

static FrOtlp__Span *
span(struct arena *a, const json_t *j)
{
    FrOtlp__Span *s = take(a, sizeof *s);
    fr_otlp__span__init(s);
    s->trace_id = hexbytes(a, json_string_value(json_object_get(j, "traceId")));
    s->span_id = hexbytes(a, json_string_value(json_object_get(j, "spanId")));
    s->parent_span_id = hexbytes(a, json_string_value(json_object_get(j, "parentSpanId")));
    s->name = (char *)str(j, "name");
    s->kind = (int32_t)json_integer_value(json_object_get(j, "kind"));
    s->start_time_unix_nano = u64(json_object_get(j, "startTimeUnixNano"));
    s->end_time_unix_nano = u64(json_object_get(j, "endTimeUnixNano"));
    s->attributes = kvs(a, json_object_get(j, "attributes"), &s->n_attributes);
    const json_t *evs = json_object_get(j, "events");
    s->n_events = json_array_size(evs);
    s->events = take(a, s->n_events * sizeof *s->events);
    for (size_t i = 0; i < s->n_events; i++) {
        const json_t *e = json_array_get(evs, i);
        FrOtlp__SpanEvent *ev = s->events[i] = take(a, sizeof *ev);
        fr_otlp__span_event__init(ev);
        ev->name = (char *)str(e, "name");
        ev->time_unix_nano = u64(json_object_get(e, "timeUnixNano"));
        ev->attributes = kvs(a, json_object_get(e, "attributes"), &ev->n_attributes);
    }
    const json_t *st = json_object_get(j, "status");
    if (st != NULL) {
        s->status = take(a, sizeof *s->status);
        fr_otlp__status__init(s->status);
        s->status->code = (int32_t)json_integer_value(json_object_get(st, "code"));
        s->status->message = (char *)str(st, "message");
    }
    return s;
}

uint8_t *
fr_bench_otlp_pb(const json_t *req, size_t *len)
{
    struct arena a = {0};
    FrOtlp__ExportTraceServiceRequest r = FR_OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    const json_t *rss = json_object_get(req, "resourceSpans");
    r.n_resource_spans = json_array_size(rss);
    r.resource_spans = take(&a, r.n_resource_spans * sizeof *r.resource_spans);
    for (size_t i = 0; i < r.n_resource_spans; i++) {
        const json_t *rsj = json_array_get(rss, i);
        FrOtlp__ResourceSpans *rs = r.resource_spans[i] = take(&a, sizeof *rs);
        fr_otlp__resource_spans__init(rs);
        rs->resource = take(&a, sizeof *rs->resource);
        fr_otlp__resource__init(rs->resource);
        rs->resource->attributes =
            kvs(&a, json_object_get(json_object_get(rsj, "resource"), "attributes"),
                &rs->resource->n_attributes);
        const json_t *sss = json_object_get(rsj, "scopeSpans");
        rs->n_scope_spans = json_array_size(sss);
        rs->scope_spans = take(&a, rs->n_scope_spans * sizeof *rs->scope_spans);
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const json_t *spans = json_object_get(json_array_get(sss, k), "spans");
            FrOtlp__ScopeSpans *ss = rs->scope_spans[k] = take(&a, sizeof *ss);
            fr_otlp__scope_spans__init(ss);
            ss->n_spans = json_array_size(spans);
            ss->spans = take(&a, ss->n_spans * sizeof *ss->spans);
            for (size_t m = 0; m < ss->n_spans; m++)
                ss->spans[m] = span(&a, json_array_get(spans, m));
        }
    }
    *len = fr_otlp__export_trace_service_request__get_packed_size(&r);
    uint8_t *out = fr_malloc(*len ? *len : 1);
    fr_otlp__export_trace_service_request__pack(&r, out);
    for (size_t i = 0; i < a.n; i++)
        free(a.p[i]);
    free(a.p);
    return out;
}
