/*
 * tests/test_otlp.c - the OTLP mapping (agent/otlp.c) on hand-made
 * requests, without a server: spans to provider, tool and transport
 * envelopes, failures to the taxonomy's inputs, log records, rejected
 * items, and GenAI metrics from cumulative series to deltas.
 */
#include "tests/support/support.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/otlp/map.h"
#include "agent/otlp/otlp.pb-c.h"
#include "agent/otlp/proto.h"
#include "core/jsonmem.h"
#include "core/mem.h"
#include "core/wire.h"

static const struct fr_otlp_opts opts = {"gen_ai.conversation.id,session.id", "gen_ai.turn.id",
                                         NULL};

/* A traces request with one span (attrs is the JSON of its attribute list). */
static json_t *
one_span(const char *name, const char *attrs, const char *extra)
{
    char *text = fr_asprintf(
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"chat\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\",\"name\":\"%s\","
        "\"startTimeUnixNano\":\"1771357445201000000\",\"endTimeUnixNano\":"
        "\"1771357446401000000\",\"attributes\":[%s]%s}]}]}]}",
        name, attrs, extra ? extra : "");
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    free(text);
    return j;
}

static const char *
sget(const json_t *o, const char *path)
{
    /* "a.b.c": nested object lookup */
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *k = strtok(buf, "."); k && cur; k = strtok(NULL, "."))
        cur = json_object_get(cur, k);
    return json_string_value(cur);
}

static json_int_t
iget(const json_t *o, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(o, a), b));
}

static void
test_otlp_chat_span_becomes_provider_event(void **state)
{
    (void)state;
    json_t *req = one_span(
        "chat gpt-4o",
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
        "{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":\"gpt-4o-2024-08-06\"}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"120\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"45\"}},"
        "{\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"arrayValue\":{\"values\":"
        "[{\"stringValue\":\"stop\"}]}}},"
        "{\"key\":\"gen_ai.conversation.id\",\"value\":{\"stringValue\":\"conv-9\"}}",
        NULL);
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 1);
    assert_int_equal(rejected, 0);
    assert_int_equal(json_array_size(out), 1);
    json_t *ev = json_array_get(out, 0);
    assert_string_equal(sget(ev, "kind"), "provider");
    assert_string_equal(sget(ev, "conv_id"), "conv-9");
    assert_string_equal(sget(ev, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sget(ev, "span_id"), "00f067aa0ba902b7");
    assert_string_equal(sget(ev, "data.provider"), "openai");
    assert_string_equal(sget(ev, "data.model"), "gpt-4o-2024-08-06");
    assert_string_equal(sget(ev, "data.finish_reason"), "stop");
    json_t *usage = json_object_get(json_object_get(ev, "data"), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 120);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 45);
    assert_int_equal(json_integer_value(json_object_get(ev, "ts_ms")), 1771357445201);
    assert_int_equal(iget(json_object_get(ev, "data"), "latency", "provider_ms"), 1200);
    json_decref(out);
    json_decref(req);
}

static void
test_otlp_failed_span_carries_error_and_status(void **state)
{
    (void)state;
    json_t *req = one_span(
        "chat",
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}}",
        ",\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"1771357446401000000\","
        "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":"
        "\"RateLimitError\"}},{\"key\":\"exception.message\",\"value\":{\"stringValue\":"
        "\"429 Rate limit reached\"}}]}],\"status\":{\"code\":2,\"message\":\"429 Rate limit\"}");
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    json_t *ev = json_array_get(out, 0);
    assert_non_null(ev);
    json_t *err = json_object_get(ev, "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "429 Rate limit reached");
    assert_int_equal(json_integer_value(json_object_get(err, "http_status")), 429);
    /* no conversation attribute: the trace id names the conversation */
    assert_string_equal(sget(ev, "conv_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(out);
    json_decref(req);
    /* as the Python SDKs word it: "Error code: 529 - {...}", a qualified exception type */
    req = one_span(
        "chat", "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}}",
        ",\"events\":[{\"name\":\"exception\",\"attributes\":[{\"key\":"
        "\"exception.type\",\"value\":{\"stringValue\":\"anthropic.InternalServerError\"}},"
        "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"Error code: 529 - "
        "{'type': 'error', 'error': {'type': 'overloaded_error'}}\"}}]}],\"status\":{"
        "\"code\":2}");
    out = json_array();
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    err = json_object_get(json_array_get(out, 0), "error");
    assert_int_equal(json_integer_value(json_object_get(err, "http_status")), 529);
    assert_string_equal(sget(err, "type"), "anthropic.InternalServerError");
    json_decref(out);
    json_decref(req);
}

static void
test_otlp_tool_and_other_spans(void **state)
{
    (void)state;
    json_t *req = one_span("execute_tool search",
                           "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":"
                           "\"execute_tool\"}},{\"key\":\"gen_ai.tool.name\",\"value\":{"
                           "\"stringValue\":\"web_search\"}},{\"key\":\"gen_ai.tool.call.id\","
                           "\"value\":{\"stringValue\":\"call_1\"}}",
                           NULL);
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    json_t *ev = json_array_get(out, 0);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.name"), "web_search");
    assert_string_equal(sget(ev, "data.tool_call_id"), "call_1");
    json_decref(out);
    json_decref(req);
    /* a span with no flightrec kind: seen, accepted, not stored */
    req = one_span("db query", "{\"key\":\"db.system\",\"value\":{\"stringValue\":\"pg\"}}", NULL);
    out = json_array();
    spans = rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 1);
    assert_int_equal(rejected, 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(req);
}

static void
test_otlp_malformed_items_rejected_not_fatal(void **state)
{
    (void)state;
    json_error_t e;
    json_t *req = json_loads(
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"ab\",\"spanId\":\"cd\","
        "\"name\":\"broken\"},{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":"
        "\"00f067aa0ba902b8\",\"name\":\"chat\",\"startTimeUnixNano\":\"1771357445201000000\","
        "\"endTimeUnixNano\":\"1771357445301000000\",\"attributes\":[{\"key\":"
        "\"gen_ai.system\",\"value\":{\"stringValue\":\"anthropic\"}}]}]}]}]}",
        0, &e);
    assert_non_null(req);
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 2);
    assert_int_equal(rejected, 1);
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    json_decref(req);
    /* a start time that is not nanoseconds since the epoch: a word, digits with a unit, a
       negative number, milliseconds (before 1973 as nanoseconds) — each rejected, not stored
       at the epoch; a number (not a string) and one in exponent form are times */
    static const struct {
        const char *json;
        bool time;
    } starts[] = {{"\"x\"", false},
                  {"\"1771357445201ms\"", false},
                  {"-5", false},
                  {"\"\"", false},
                  {"1771357445201", false},
                  {"1771357445201000000", true},
                  {"1.7713574452015e18", true}};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
        char *text = fr_asprintf(
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
            "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b8\",\"name\":"
            "\"chat\",\"startTimeUnixNano\":%s,\"endTimeUnixNano\":\"1771357445301000000\","
            "\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":"
            "\"anthropic\"}}]}]}]}]}",
            starts[i].json);
        req = json_loads(text, 0, &e);
        assert_non_null(req);
        out = json_array();
        assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
        bool time = starts[i].time;
        assert_int_equal(rejected, time ? 0 : 1);
        assert_int_equal(json_array_size(out), time ? 1 : 0);
        if (time)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(out, 0), "ts_ms")),
                             1771357445201);
        json_decref(out);
        json_decref(req);
        free(text);
    }
    /* not a traces request at all: another signal's, or its list not a list */
    static const char *const not_traces[] = {"{\"resourceLogs\":[]}", "{\"resourceSpans\":{}}",
                                             "[]"};
    for (size_t i = 0; i < sizeof not_traces / sizeof *not_traces; i++) {
        req = json_loads(not_traces[i], 0, &e);
        out = json_array();
        assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_E_VALUE);
        json_decref(out);
        json_decref(req);
    }
    /* an empty request, as the protobuf JSON mapping writes one: nothing, accepted */
    req = json_loads("{}", 0, &e);
    out = json_array();
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 0);
    assert_int_equal(json_array_size(out), 0);
    assert_int_equal(fr_otlp_logs(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(req);
}

static void
test_otlp_error_log_record_becomes_error_event(void **state)
{
    (void)state;
    json_error_t e;
    json_t *req = json_loads(
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357445201000000\",\"severityNumber\":17,\"body\":{\"stringValue\":\"tool "
        "timed out\"},\"attributes\":[{\"key\":\"session.id\",\"value\":{\"stringValue\":"
        "\"s-1\"}}]},{\"timeUnixNano\":\"1771357445202000000\",\"severityNumber\":9,\"body\":"
        "{\"stringValue\":\"fine\"}}]}]}]}",
        0, &e);
    assert_non_null(req);
    json_t *out = json_array();
    size_t recs = 0, rejected = 0;
    assert_int_equal(fr_otlp_logs(req, &opts, out, NULL, &recs, &rejected), FR_OK);
    assert_int_equal(recs, 2);
    assert_int_equal(rejected, 0);
    assert_int_equal(json_array_size(out), 1); /* INFO is accepted, not stored */
    json_t *ev = json_array_get(out, 0);
    assert_string_equal(sget(ev, "kind"), "error");
    assert_string_equal(sget(ev, "conv_id"), "s-1");
    assert_string_equal(sget(ev, "error.message"), "tool timed out");
    json_decref(out);
    json_decref(req);
}

struct deltas {
    int64_t calls, input, lat_sum;
    int n;
};

static int
take_delta(void *ud, const struct fr_otlp_rollup *r)
{
    struct deltas *d = ud;
    d->calls += r->calls;
    d->input += r->input_tokens;
    d->lat_sum += r->lat_sum_ms;
    d->n++;
    return 0;
}

static json_t *
metrics_req(int count, int tokens, double seconds)
{
    char *t = fr_asprintf(
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"gen_ai.client.token.usage\",\"histogram\":{\"aggregationTemporality\":2,"
        "\"dataPoints\":[{\"timeUnixNano\":\"1771357448000000000\",\"count\":\"%d\",\"sum\":%d,"
        "\"attributes\":[{\"key\":\"gen_ai.token.type\",\"value\":{\"stringValue\":\"input\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}}]}]}},"
        "{\"name\":\"gen_ai.client.operation.duration\",\"histogram\":{"
        "\"aggregationTemporality\":2,\"dataPoints\":[{\"timeUnixNano\":"
        "\"1771357448000000000\",\"count\":\"%d\",\"sum\":%f,\"attributes\":[{\"key\":"
        "\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}}]}]}}]}]}]}",
        count, tokens, count, seconds);
    json_t *j = json_loads(t, 0, NULL);
    free(t);
    assert_non_null(j);
    return j;
}

static void
test_otlp_cumulative_metrics_become_deltas(void **state)
{
    (void)state;
    struct fr_otlp_metrics_state *s = fr_otlp_metrics_state_new();
    struct deltas d = {0};
    size_t points = 0;
    json_t *r1 = metrics_req(3, 300, 1.5), *r2 = metrics_req(5, 420, 2.5);
    assert_int_equal(fr_otlp_metrics(r1, s, take_delta, &d, &points), FR_OK);
    assert_int_equal(d.calls, 3);
    assert_int_equal(d.input, 300);
    assert_int_equal(d.lat_sum, 1500);
    memset(&d, 0, sizeof d);
    assert_int_equal(fr_otlp_metrics(r2, s, take_delta, &d, &points), FR_OK);
    assert_int_equal(d.calls, 2); /* 5 - 3: the second export repeats the first */
    assert_int_equal(d.input, 120);
    assert_int_equal(d.lat_sum, 1000);
    json_decref(r1);
    json_decref(r2);
    fr_otlp_metrics_state_free(s);
}

struct timing {
    char dim[16];
    int64_t calls, lat_count, lat_sum;
};

static int
take_timing(void *ud, const struct fr_otlp_rollup *r)
{
    struct timing *t = ud;
    snprintf(t->dim, sizeof t->dim, "%s", r->dim);
    t->calls += r->calls;
    t->lat_count += r->lat_count;
    t->lat_sum += r->lat_sum_ms;
    return 0;
}

/* The streaming metrics: time to the first chunk as its own rollup dimension, no calls. */
static void
test_otlp_streaming_metrics(void **state)
{
    (void)state;
    json_t *req = json_loads(
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":"
        "\"gen_ai.client.operation.time_to_first_chunk\",\"histogram\":{"
        "\"aggregationTemporality\":1,\"dataPoints\":[{\"timeUnixNano\":\"1771357448000000000\","
        "\"count\":\"4\",\"sum\":1.2,\"attributes\":[{\"key\":\"gen_ai.provider.name\",\"value\":"
        "{\"stringValue\":\"openai\"}}]}]}}]}]}]}",
        0, NULL);
    assert_non_null(req);
    struct fr_otlp_metrics_state *s = fr_otlp_metrics_state_new();
    struct timing t = {0};
    size_t points = 0;
    assert_int_equal(fr_otlp_metrics(req, s, take_timing, &t, &points), FR_OK);
    assert_string_equal(t.dim, "otel_ttft");
    assert_int_equal(t.calls, 0); /* calls come from the duration metric only */
    assert_int_equal(t.lat_count, 4);
    assert_int_equal(t.lat_sum, 1200);
    json_decref(req);
    fr_otlp_metrics_state_free(s);
}

#define SA(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define IA(k, v) "{\"key\":\"" k "\",\"value\":{\"intValue\":\"" v "\"}}"
#define DA(k, v) "{\"key\":\"" k "\",\"value\":{\"doubleValue\":" v "}}"

/* One span of attrs mapped with opts o: its event (owned), NULL when none. */
static json_t *
map_one_with(const char *name, const char *attrs, const struct fr_otlp_opts *o)
{
    json_t *req = one_span(name, attrs, NULL);
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, o, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(rejected, 0);
    json_t *ev = json_incref(json_array_get(out, 0));
    json_decref(out);
    json_decref(req);
    return ev;
}

/* Maps a one-span request with the attributes (JSON fragments, NULL-terminated). */
static json_t *
map_list_with(const char *const *kv, const struct fr_otlp_opts *o)
{
    size_t n = 1;
    for (const char *const *k = kv; *k; k++)
        n += strlen(*k) + 1;
    char *joined = fr_calloc(1, n);
    for (const char *const *k = kv; *k; k++) {
        if (k != kv)
            strcat(joined, ",");
        strcat(joined, *k);
    }
    json_t *ev = map_one_with("s", joined, o);
    free(joined);
    return ev;
}

static json_t *
map_list(const char *const *kv)
{
    return map_list_with(kv, &opts);
}

/* The GenAI semantic conventions as of semconv 1.37+: the dotted usage names, streaming,
   response id, server, request parameters, system instructions, tool arguments/results,
   the agent and workflow operations. */
static void
test_otlp_current_genai_conventions(void **state)
{
    (void)state;
    static const char *const chat[] = {
        SA("gen_ai.operation.name", "chat"),
        SA("gen_ai.provider.name", "anthropic"),
        SA("gen_ai.request.model", "claude-x"),
        IA("gen_ai.usage.input_tokens", "900"),
        IA("gen_ai.usage.output_tokens", "70"),
        IA("gen_ai.usage.cache_read.input_tokens", "512"),
        IA("gen_ai.usage.cache_creation.input_tokens", "64"),
        IA("gen_ai.usage.reasoning.output_tokens", "33"),
        DA("gen_ai.response.time_to_first_chunk", "0.25"),
        SA("gen_ai.response.id", "msg_01"),
        SA("server.address", "api.anthropic.com"),
        IA("server.port", "443"),
        DA("gen_ai.request.temperature", "0.2"),
        IA("gen_ai.request.max_tokens", "1024"),
        SA("gen_ai.system_instructions",
           "[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"Be brief\\\"}]"),
        NULL};
    json_t *ev = map_list(chat);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "kind"), "provider");
    json_t *d = json_object_get(ev, "data");
    assert_string_equal(sget(d, "provider"), "anthropic");
    assert_string_equal(sget(d, "operation"), "chat");
    assert_int_equal(iget(d, "usage", "input_tokens"), 900);
    assert_int_equal(iget(d, "usage", "cached_tokens"), 512);
    assert_int_equal(iget(d, "usage", "cache_creation_tokens"), 64);
    assert_int_equal(iget(d, "usage", "reasoning_tokens"), 33);
    assert_int_equal(iget(d, "latency", "ttft_ms"), 250);
    assert_string_equal(sget(d, "response_id"), "msg_01");
    assert_string_equal(sget(d, "server"), "api.anthropic.com:443");
    json_t *params = json_object_get(json_object_get(d, "request"), "params");
    assert_int_equal(json_integer_value(json_object_get(params, "max_tokens")), 1024);
    assert_null(json_object_get(params, "model"));
    assert_string_equal(
        sget(json_array_get(json_object_get(json_object_get(d, "request"), "system"), 0),
             "content"),
        "Be brief");
    json_decref(ev);
    /* a tool call's arguments and result, JSON in strings */
    static const char *const tool[] = {SA("gen_ai.operation.name", "execute_tool"),
                                       SA("gen_ai.tool.name", "search"),
                                       SA("gen_ai.tool.call.arguments", "{\\\"q\\\":\\\"rain\\\"}"),
                                       SA("gen_ai.tool.call.result", "[1,2]"), NULL};
    ev = map_list(tool);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.args.q"), "rain");
    assert_int_equal(json_array_size(json_object_get(json_object_get(ev, "data"), "result")), 2);
    json_decref(ev);
    /* embeddings are model calls; agents and workflows are steps; retrieval a tool */
    static const char *const emb[] = {SA("gen_ai.operation.name", "embeddings"),
                                      SA("gen_ai.provider.name", "openai"), NULL};
    ev = map_list(emb);
    assert_string_equal(sget(ev, "kind"), "provider");
    json_decref(ev);
    static const char *const agent[] = {SA("gen_ai.operation.name", "invoke_agent"),
                                        SA("gen_ai.agent.name", "planner"),
                                        SA("gen_ai.agent.id", "ag_7"), NULL};
    ev = map_list(agent);
    assert_string_equal(sget(ev, "kind"), "middleware");
    assert_string_equal(sget(ev, "data.step"), "planner");
    assert_string_equal(sget(ev, "data.agent.id"), "ag_7");
    json_decref(ev);
    static const char *const retrieval[] = {SA("gen_ai.operation.name", "retrieval"),
                                            SA("gen_ai.data_source.id", "kb"), NULL};
    ev = map_list(retrieval);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.name"), "kb");
    json_decref(ev);
}

/* Traceloop / OpenLLMetry and OpenInference spans onto the same events. */
static void
test_otlp_traceloop_and_openinference(void **state)
{
    (void)state;
    static const char *const tl_tool[] = {
        SA("traceloop.span.kind", "tool"), SA("traceloop.entity.name", "get_weather"),
        SA("traceloop.entity.input", "{\\\"city\\\":\\\"Oslo\\\"}"),
        SA("traceloop.entity.output", "\\\"snow\\\""), NULL};
    json_t *ev = map_list(tl_tool);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.name"), "get_weather");
    assert_string_equal(sget(ev, "data.args.city"), "Oslo");
    assert_string_equal(sget(ev, "data.result"), "snow");
    json_decref(ev);
    static const char *const tl_flow[] = {SA("traceloop.span.kind", "workflow"),
                                          SA("traceloop.entity.name", "answer"), NULL};
    ev = map_list(tl_flow);
    assert_string_equal(sget(ev, "kind"), "middleware");
    assert_string_equal(sget(ev, "data.step"), "answer");
    json_decref(ev);
    static const char *const oi_llm[] = {
        SA("openinference.span.kind", "LLM"),
        SA("llm.model_name", "gpt-4o-mini"),
        SA("llm.provider", "openai"),
        IA("llm.token_count.prompt", "40"),
        IA("llm.token_count.completion", "9"),
        IA("llm.token_count.prompt_details.cache_read", "32"),
        SA("llm.input_messages.0.message.role", "user"),
        SA("llm.input_messages.0.message.content", "hi, I am bob@example.com"),
        SA("llm.output_messages.0.message.role", "assistant"),
        SA("llm.output_messages.0.message.content", "hello"),
        NULL};
    ev = map_list(oi_llm);
    assert_string_equal(sget(ev, "kind"), "provider");
    json_t *d = json_object_get(ev, "data");
    assert_string_equal(sget(d, "model"), "gpt-4o-mini");
    assert_string_equal(sget(d, "provider"), "openai");
    assert_int_equal(iget(d, "usage", "input_tokens"), 40);
    assert_int_equal(iget(d, "usage", "output_tokens"), 9);
    assert_int_equal(iget(d, "usage", "cached_tokens"), 32);
    json_t *in = json_object_get(json_object_get(d, "request"), "messages");
    assert_string_equal(sget(json_array_get(in, 0), "content"), "hi, I am bob@example.com");
    json_t *outm = json_object_get(json_object_get(d, "response"), "messages");
    assert_string_equal(sget(json_array_get(outm, 0), "content"), "hello");
    json_decref(ev);
    /* OpenLLMetry's flattened prompt, past one digit: every message, in order */
    static const char *const tl_llm[] = {SA("gen_ai.operation.name", "chat"),
                                         SA("gen_ai.system", "openai"),
                                         SA("gen_ai.prompt.0.role", "user"),
                                         SA("gen_ai.prompt.0.content", "m0"),
                                         SA("gen_ai.prompt.1.role", "assistant"),
                                         SA("gen_ai.prompt.1.content", "m1"),
                                         SA("gen_ai.prompt.2.role", "user"),
                                         SA("gen_ai.prompt.2.content", "m2"),
                                         SA("gen_ai.prompt.3.role", "assistant"),
                                         SA("gen_ai.prompt.3.content", "m3"),
                                         SA("gen_ai.prompt.4.role", "user"),
                                         SA("gen_ai.prompt.4.content", "m4"),
                                         SA("gen_ai.prompt.5.role", "assistant"),
                                         SA("gen_ai.prompt.5.content", "m5"),
                                         SA("gen_ai.prompt.6.role", "user"),
                                         SA("gen_ai.prompt.6.content", "m6"),
                                         SA("gen_ai.prompt.7.role", "assistant"),
                                         SA("gen_ai.prompt.7.content", "m7"),
                                         SA("gen_ai.prompt.8.role", "user"),
                                         SA("gen_ai.prompt.8.content", "m8"),
                                         SA("gen_ai.prompt.9.role", "assistant"),
                                         SA("gen_ai.prompt.9.content", "m9"),
                                         SA("gen_ai.prompt.10.role", "user"),
                                         SA("gen_ai.prompt.10.content", "m10"),
                                         SA("gen_ai.prompt.11.role", "assistant"),
                                         SA("gen_ai.prompt.11.content", "m11"),
                                         NULL};
    ev = map_list(tl_llm);
    in = json_object_get(json_object_get(json_object_get(ev, "data"), "request"), "messages");
    assert_int_equal(json_array_size(in), 12);
    assert_string_equal(sget(json_array_get(in, 10), "content"), "m10");
    assert_string_equal(sget(json_array_get(in, 11), "role"), "assistant");
    json_decref(ev);
    /* the older span-event form: a plain prompt text is one message; a completion text is
       the response's content */
    json_t *req =
        one_span("chat", SA("gen_ai.operation.name", "chat") "," SA("gen_ai.system", "openai"),
                 ",\"events\":[{\"name\":\"gen_ai.content.prompt\",\"timeUnixNano\":"
                 "\"1771357445201000000\",\"attributes\":[" SA(
                     "gen_ai.prompt", "plain text") "]},"
                                                    "{\"name\":\"gen_ai.content.completion\","
                                                    "\"timeUnixNano\":\"1771357445301000000\","
                                                    "\"attributes\":[" SA("gen_ai.completion",
                                                                          "the answer") "]}]");
    json_t *evs = json_array(), *links = json_object();
    size_t spans, rejected;
    assert_int_equal(fr_otlp_traces(req, &opts, evs, links, &spans, &rejected), FR_OK);
    d = json_object_get(json_array_get(evs, 0), "data");
    in = json_object_get(json_object_get(d, "request"), "messages");
    assert_int_equal(json_array_size(in), 1);
    assert_string_equal(sget(json_array_get(in, 0), "content"), "plain text");
    assert_null(json_object_get(json_array_get(in, 0), "role"));
    assert_string_equal(sget(d, "response.content"), "the answer");
    json_decref(evs);
    json_decref(links);
    json_decref(req);
    static const char *const oi_tool[] = {SA("openinference.span.kind", "TOOL"),
                                          SA("tool.name", "calc"),
                                          SA("input.value", "{\\\"x\\\":1}"), NULL};
    ev = map_list(oi_tool);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.name"), "calc");
    json_decref(ev);
}

/* A span naming the conversation names its trace; the others of the trace follow. */
static void
test_otlp_links_name_traces(void **state)
{
    (void)state;
    json_t *req = one_span("turn", SA("gen_ai.conversation.id", "conv-L"), NULL);
    json_t *out = json_array(), *links = json_object();
    size_t spans, rejected;
    assert_int_equal(fr_otlp_traces(req, &opts, out, links, &spans, &rejected), FR_OK);
    assert_int_equal(json_array_size(out), 0); /* the turn span itself has no kind */
    assert_string_equal(sget(links, "4bf92f3577b34da6a3ce929d0e0e4736"), "conv-L");
    json_decref(out);
    json_decref(links);
    json_decref(req);
}

/*
 * Resource attributes under a span's: what the mapping reads falls back to the resource
 * (the provider, the conversation), and an attribute of a process/host namespace, which is
 * not merged into the spans, still names the conversation when it is configured to.
 */
static void
test_otlp_resource_attributes(void **state)
{
    (void)state;
    const char *text =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"nodejs\"}},"
        "{\"key\":\"process.pid\",\"value\":{\"intValue\":\"4242\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h1\"}},"
        "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"conv-R\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"anthropic\"}},"
        "{\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.5}}]},"
        "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"spanId\":\"00f067aa0ba902b7\",\"name\":\"chat\",\"startTimeUnixNano\":"
        "\"1771357445201000000\",\"endTimeUnixNano\":\"1771357446401000000\",\"attributes\":["
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"claude\"}}]}]}]}]}";
    json_error_t e;
    json_t *req = json_loads(text, 0, &e);
    assert_non_null(req);
    /* service.instance.id named as a conversation attribute: taken from the resource */
    const struct fr_otlp_opts named = {"gen_ai.conversation.id,service.instance.id", NULL, NULL};
    const struct fr_otlp_opts plain = {"gen_ai.conversation.id", "process.pid", NULL};
    for (int round = 0; round < 2; round++) {
        json_t *out = json_array();
        size_t spans, rejected;
        assert_int_equal(
            fr_otlp_traces(req, round == 0 ? &named : &plain, out, NULL, &spans, &rejected), FR_OK);
        assert_int_equal(json_array_size(out), 1);
        json_t *ev = json_array_get(out, 0);
        assert_string_equal(sget(ev, "kind"), "provider");
        assert_string_equal(sget(ev, "data.provider"), "anthropic");
        assert_string_equal(sget(ev, "conv_id"),
                            round == 0 ? "conv-R" : "4bf92f3577b34da6a3ce929d0e0e4736");
        /* the request parameters of the resource are the span's too; process.pid (a number)
           is not a turn id */
        json_t *params =
            json_object_get(json_object_get(json_object_get(ev, "data"), "request"), "params");
        assert_true(json_is_number(json_object_get(params, "temperature")));
        assert_null(json_object_get(ev, "turn_id"));
        json_decref(out);
    }
    json_decref(req);
}

/* Decoded inside a request's region, protobuf-c's messages are left to the region's end
   unless one of its allocations went to malloc (a value past a chunk's eighth): then
   they are freed one by one. LeakSanitizer and valgrind check both ways. */
/* The first span of a decoded traces request. */
static const json_t *
first_span(const json_t *req)
{
    const json_t *rs = json_array_get(json_object_get(req, "resourceSpans"), 0);
    const json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    return json_array_get(json_object_get(ss, "spans"), 0);
}

static const char *
decoded_conv(const json_t *req)
{
    /* attributes as the object the mapping reads (proto.c: kvs) */
    return json_string_value(
        json_object_get(json_object_get(first_span(req), "attributes"), "gen_ai.conversation.id"));
}

static void
test_otlp_protobuf_in_region(void **state)
{
    (void)state;
    size_t big_len = FR_JSON_REGION_CHUNK / 4;
    char *big = fr_malloc(big_len + 1);
    memset(big, 'c', big_len);
    big[big_len] = '\0';
    const char *convs[2] = {"conv-small", big};
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *buf = t_otlp_pb_traces(convs[i], &len);
        char why[200];
        fr_json_region_begin();
        size_t spills = fr_json_region_spills();
        json_t *req = fr_otlp_pb_decode(FR_OTLP_TRACES, buf, len, why, sizeof why);
        assert_non_null(req);
        assert_string_equal(decoded_conv(req), convs[i]);
        /* the small one whole in the region; the long value (and its JSON copy) not */
        if (i == 0)
            assert_int_equal(fr_json_region_spills(), spills);
        else
            assert_true(fr_json_region_spills() >= spills + 2);
        json_decref(req);
        fr_json_region_end();
        free(buf);
    }
    free(big);
}

/* The Vercel AI SDK's spans (experimental_telemetry): the function's call, its provider calls
   (doGenerate, doStream) and tool calls, with the conversation named in its metadata. */
static void
test_otlp_vercel_ai_sdk(void **state)
{
    (void)state;
    static const struct fr_otlp_opts vo = {"ai.telemetry.metadata.conversationId", NULL, NULL};
    static const char *const outer[] = {
        SA("operation.name", "ai.generateText chat"),
        SA("ai.operationId", "ai.generateText"),
        SA("ai.model.id", "gpt-4o"),
        SA("ai.model.provider", "openai.chat"),
        SA("ai.telemetry.functionId", "chat"),
        SA("ai.telemetry.metadata.conversationId", "conv-v"),
        SA("ai.prompt", "{\\\"prompt\\\":\\\"weather in Paris?\\\"}"),
        SA("ai.response.text", "It is sunny."),
        IA("ai.usage.promptTokens", "50"),
        NULL};
    json_t *ev = map_list_with(outer, &vo);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "kind"), "middleware");
    assert_string_equal(sget(ev, "conv_id"), "conv-v");
    assert_string_equal(sget(ev, "data.step"), "chat");
    assert_string_equal(sget(ev, "data.prompt_before.prompt"), "weather in Paris?");
    assert_string_equal(sget(ev, "data.prompt_after"), "It is sunny.");
    json_decref(ev);

    static const char *const call[] = {
        SA("ai.operationId", "ai.generateText.doGenerate"),
        SA("ai.model.id", "gpt-4o"),
        SA("ai.model.provider", "openai.chat"),
        SA("gen_ai.system", "openai.chat"),
        SA("gen_ai.response.model", "gpt-4o-2024-08-06"),
        SA("ai.telemetry.metadata.conversationId", "conv-v"),
        SA("ai.prompt.messages", "[{\\\"role\\\":\\\"user\\\",\\\"content\\\":[{\\\"type\\\":"
                                 "\\\"text\\\",\\\"text\\\":\\\"weather in Paris?\\\"}]}]"),
        SA("ai.response.toolCalls", "[{\\\"toolCallType\\\":\\\"function\\\",\\\"toolCallId\\\":"
                                    "\\\"call_1\\\",\\\"toolName\\\":\\\"weather\\\",\\\"args\\\":"
                                    "\\\"{}\\\"}]"),
        SA("ai.response.finishReason", "tool-calls"),
        SA("ai.response.id", "resp_1"),
        IA("ai.usage.inputTokens", "40"),
        IA("ai.usage.outputTokens", "12"),
        IA("ai.usage.cachedInputTokens", "8"),
        NULL};
    ev = map_list_with(call, &vo);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "kind"), "provider");
    assert_string_equal(sget(ev, "conv_id"), "conv-v");
    assert_string_equal(sget(ev, "data.provider"), "openai"); /* the API (.chat) left out */
    assert_string_equal(sget(ev, "data.model"), "gpt-4o-2024-08-06");
    assert_string_equal(sget(ev, "data.finish_reason"), "tool-calls");
    assert_string_equal(sget(ev, "data.response_id"), "resp_1");
    json_t *data = json_object_get(ev, "data");
    assert_int_equal(iget(data, "usage", "input_tokens"), 40);
    assert_int_equal(iget(data, "usage", "output_tokens"), 12);
    assert_int_equal(iget(data, "usage", "cached_tokens"), 8);
    json_t *m0 = json_array_get(json_object_get(json_object_get(data, "request"), "messages"), 0);
    assert_string_equal(sget(json_array_get(json_object_get(m0, "content"), 0), "text"),
                        "weather in Paris?");
    json_t *tc =
        json_array_get(json_object_get(json_object_get(data, "response"), "tool_calls"), 0);
    assert_string_equal(sget(tc, "toolName"), "weather");
    json_decref(ev);

    /* a streamed call of an SDK version without the gen_ai.* names */
    static const char *const stream[] = {SA("ai.operationId", "ai.streamText.doStream"),
                                         SA("ai.model.id", "claude-sonnet-4"),
                                         SA("ai.model.provider", "anthropic.messages"),
                                         SA("ai.response.text", "Sunny, 21 degrees."),
                                         DA("ai.response.msToFirstChunk", "312.5"),
                                         IA("ai.usage.promptTokens", "61"),
                                         IA("ai.usage.completionTokens", "9"),
                                         NULL};
    ev = map_list_with(stream, &vo);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "kind"), "provider");
    assert_string_equal(sget(ev, "data.provider"), "anthropic");
    assert_string_equal(sget(ev, "data.model"), "claude-sonnet-4");
    assert_string_equal(sget(ev, "data.response.content"), "Sunny, 21 degrees.");
    data = json_object_get(ev, "data");
    assert_int_equal(iget(data, "usage", "input_tokens"), 61);
    assert_int_equal(iget(data, "usage", "output_tokens"), 9);
    assert_int_equal(iget(data, "latency", "ttft_ms"), 312);
    json_decref(ev);

    static const char *const tool[] = {SA("ai.operationId", "ai.toolCall"),
                                       SA("ai.toolCall.name", "weather"),
                                       SA("ai.toolCall.id", "call_1"),
                                       SA("ai.toolCall.args", "{\\\"city\\\":\\\"Paris\\\"}"),
                                       SA("ai.toolCall.result", "{\\\"temp\\\":21}"),
                                       NULL};
    ev = map_list_with(tool, &vo);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "kind"), "tool");
    assert_string_equal(sget(ev, "data.name"), "weather");
    assert_string_equal(sget(ev, "data.tool_call_id"), "call_1");
    assert_string_equal(sget(ev, "data.args.city"), "Paris");
    assert_int_equal(iget(json_object_get(ev, "data"), "result", "temp"), 21);
    json_decref(ev);
}

/* A failed span of trace 4bf9...: its id, gen_ai.operation.name and status message. */
static json_t *
failed_span(const char *span_id, const char *op, const char *msg)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:{s:s}}],s:{s:i,s:s}}", "traceId",
                     "4bf92f3577b34da6a3ce929d0e0e4736", "spanId", span_id, "startTimeUnixNano",
                     "1771357445201000000", "endTimeUnixNano", "1771357445301000000", "attributes",
                     "key", "gen_ai.operation.name", "value", "stringValue", op, "status", "code",
                     2, "message", msg);
}

/* A step that failed because a call under it did (the same message, the same trace and
   request) names the call instead of carrying the failure again; one that failed otherwise
   keeps its error. */
static void
test_otlp_step_failed_in_its_call(void **state)
{
    (void)state;
    json_t *req =
        json_pack("{s:[{s:[{s:[o,o,o]}]}]}", "resourceSpans", "scopeSpans", "spans",
                  failed_span("00000000000000c1", "chat", "429 Rate limit reached"),
                  failed_span("00000000000000a1", "invoke_agent", "429 Rate limit reached"),
                  failed_span("00000000000000a2", "invoke_agent", "guardrail refused the answer"));
    assert_non_null(req);
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(json_array_size(out), 3);
    json_t *call = json_array_get(out, 0), *step = json_array_get(out, 1),
           *other = json_array_get(out, 2);
    assert_non_null(json_object_get(call, "error"));
    assert_null(json_object_get(step, "error"));
    assert_string_equal(sget(step, "data.failed_in"), "00000000000000c1");
    assert_string_equal(sget(other, "error.message"), "guardrail refused the answer");
    assert_null(json_object_get(json_object_get(other, "data"), "failed_in"));
    json_decref(out);
    json_decref(req);
}

/* The same when the step comes in a later request than its call (its span ends last, after
   the batch the call went out in): the agent's recent failures remember the call across
   requests. Without them, or for another trace or message, the step keeps its error. */
static json_t *
map_spans(const struct fr_otlp_opts *o, json_t *spans)
{
    json_t *req = json_pack("{s:[{s:[{s:o}]}]}", "resourceSpans", "scopeSpans", "spans", spans);
    assert_non_null(req);
    json_t *out = json_array();
    size_t n = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, o, out, NULL, &n, &rejected), FR_OK);
    json_decref(req);
    return out;
}

static void
test_otlp_step_failed_in_an_earlier_request(void **state)
{
    (void)state;
    struct fr_otlp_opts with = opts;
    with.failures = fr_otlp_failures_new();
    json_t *first = map_spans(
        &with, json_pack("[o,o]", failed_span("00000000000000c1", "chat", "429 Rate limit reached"),
                         failed_span("00000000000000c2", "execute_tool", "tool timed out")));
    assert_non_null(json_object_get(json_array_get(first, 0), "error"));
    assert_non_null(json_object_get(json_array_get(first, 1), "error"));
    json_decref(first);
    json_t *later = failed_span("00000000000000a1", "invoke_agent", "429 Rate limit reached"),
           *other_trace = failed_span("00000000000000a3", "invoke_agent", "tool timed out"),
           *other_msg = failed_span("00000000000000a4", "invoke_agent", "429 rate limit");
    json_object_set_new(other_trace, "traceId", json_string("0af7651916cd43dd8448eb211c80319c"));
    json_t *steps = json_pack("[O,o,O,O]", later,
                              failed_span("00000000000000a2", "invoke_agent", "tool timed out"),
                              other_trace, other_msg);
    json_t *out = map_spans(&with, json_deep_copy(steps));
    assert_int_equal(json_array_size(out), 4);
    assert_null(json_object_get(json_array_get(out, 0), "error"));
    assert_string_equal(sget(json_array_get(out, 0), "data.failed_in"), "00000000000000c1");
    assert_null(json_object_get(json_array_get(out, 1), "error"));
    assert_string_equal(sget(json_array_get(out, 1), "data.failed_in"), "00000000000000c2");
    assert_string_equal(sget(json_array_get(out, 2), "error.message"), "tool timed out");
    assert_string_equal(sget(json_array_get(out, 3), "error.message"), "429 rate limit");
    json_decref(out);
    /* without the agent's memory of earlier requests: every step keeps its error */
    out = map_spans(&opts, steps);
    for (size_t i = 0; i < json_array_size(out); i++)
        assert_non_null(json_object_get(json_array_get(out, i), "error"));
    json_decref(out);
    json_decref(later);
    json_decref(other_trace);
    json_decref(other_msg);
    fr_otlp_failures_free(with.failures);
}

/* OTLP/JSON as the protobuf JSON mapping lets a sender write it: enums by name, ids in
   base64 or capitals; read as the numbers and lowercase hex. */
static void
test_otlp_json_enum_names_and_base64_ids(void **state)
{
    (void)state;
    json_t *req = one_span(
        "chat",
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.conversation.id\",\"value\":{\"stringValue\":\"conv-b64\"}}",
        ",\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"upstream reset\"},"
        "\"links\":[{\"traceId\":\"S/kvNXezTaajzpKdDg5HNg==\",\"spanId\":\"APBnqgupArc=\"}]");
    json_t *span = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(req, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    json_object_set_new(span, "traceId", json_string("S/kvNXezTaajzpKdDg5HNg=="));
    json_object_set_new(span, "spanId", json_string("00F067AA0BA902B7"));
    json_object_set_new(span, "parentSpanId", json_string("not an id"));
    fr_otlp_json_normalize(req);
    assert_string_equal(sget(json_array_get(json_object_get(span, "links"), 0), "traceId"),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sget(json_array_get(json_object_get(span, "links"), 0), "spanId"),
                        "00f067aa0ba902b7");
    assert_string_equal(sget(span, "parentSpanId"), "not an id"); /* left as sent */
    json_t *out = json_array();
    size_t spans = 0, rejected = 0;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    json_t *ev = json_array_get(out, 0);
    assert_non_null(ev);
    assert_string_equal(sget(ev, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sget(ev, "span_id"), "00f067aa0ba902b7");
    assert_string_equal(sget(ev, "error.message"), "upstream reset");
    assert_string_equal(sget(ev, "data.status"), "error");
    json_decref(out);
    json_decref(req);

    /* severity by name: ERROR stored, INFO not */
    req = json_loads(
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357445201000000\",\"severityNumber\":\"SEVERITY_NUMBER_ERROR\",\"body\":"
        "{\"stringValue\":\"tool timed out\"},\"traceId\":\"S/kvNXezTaajzpKdDg5HNg==\"},"
        "{\"timeUnixNano\":\"1771357445202000000\",\"severityNumber\":\"SEVERITY_NUMBER_INFO\","
        "\"body\":{\"stringValue\":\"fine\"}}]}]}]}",
        0, NULL);
    assert_non_null(req);
    fr_otlp_json_normalize(req);
    out = json_array();
    size_t recs = 0;
    assert_int_equal(fr_otlp_logs(req, &opts, out, NULL, &recs, &rejected), FR_OK);
    assert_int_equal(json_array_size(out), 1);
    assert_string_equal(sget(json_array_get(out, 0), "error.message"), "tool timed out");
    assert_string_equal(sget(json_array_get(out, 0), "conv_id"),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(out);
    json_decref(req);

    /* temporality by name: a delta series is taken as it is (a number it could not read was
       taken as cumulative: 5 - 3) */
    struct fr_otlp_metrics_state *st = fr_otlp_metrics_state_new();
    struct deltas d = {0};
    size_t points = 0;
    for (int i = 0; i < 2; i++) {
        req = metrics_req(3 + 2 * i, 300, 1.5);
        size_t k;
        json_t *m;
        json_array_foreach(
            json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(req, "resourceMetrics"), 0),
                                    "scopeMetrics"),
                    0),
                "metrics"),
            k, m) json_object_set_new(json_object_get(m, "histogram"), "aggregationTemporality",
                                      json_string("AGGREGATION_TEMPORALITY_DELTA"));
        fr_otlp_json_normalize(req);
        memset(&d, 0, sizeof d);
        assert_int_equal(fr_otlp_metrics(req, st, take_delta, &d, &points), FR_OK);
        json_decref(req);
    }
    assert_int_equal(d.calls, 5);
    fr_otlp_metrics_state_free(st);
}

static void
parts_fill(size_t i, struct t_pb_span *s, void *ud)
{
    (void)ud;
    snprintf(s->name, sizeof s->name, "s%zu", i);
    s->trace[0] = s->span[0] = 1;
    s->span[7] = (uint8_t)i;
}

/* The span names of a (part of a) request in order, with their resources' names, as
   "r0:s0 r0:s1 ..." (appended to out). */
static void
parts_names(const json_t *req, char **out, size_t *n)
{
    size_t i, j, k;
    json_t *rs, *ss, *sp;
    json_array_foreach(json_object_get(req, "resourceSpans"), i, rs)
    {
        /* attributes as the object the mapping reads (proto.c: kvs) */
        const char *res = json_string_value(json_object_get(
            json_object_get(json_object_get(rs, "resource"), "attributes"), "service.name"));
        assert_non_null(res);
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, sp)
            {
                char *next = fr_asprintf("%s%s:%s ", *out ? *out : "", res,
                                         json_string_value(json_object_get(sp, "name")));
                free(*out);
                *out = next;
                (*n)++;
            }
        }
    }
}

/*
 * A large request read out in parts (fr_otlp_pb_open): every span once, in
 * order, each under its own resource, at most max in a part; a part that
 * fills up inside a scope or a resource goes on there in the next. Resources
 * and scopes without spans are passed over. The parts together are the
 * request fr_otlp_pb_decode reads whole.
 */
static void
test_otlp_protobuf_parts(void **state)
{
    (void)state;
    /* r0: 700 spans; r1: an empty scope, then 300; r2: no scope; r3: 30 */
    const size_t nscopes[4] = {1, 2, 0, 1}, nspans[4] = {700, 0, 300, 30};
    size_t len;
    uint8_t *buf = t_otlp_pb_layout(4, nscopes, nspans, parts_fill, NULL, &len);
    char why[200];
    json_t *whole = fr_otlp_pb_decode(FR_OTLP_TRACES, buf, len, why, sizeof why);
    assert_non_null(whole);
    char *want = NULL, *got = NULL;
    size_t n = 0;
    parts_names(whole, &want, &n);
    assert_int_equal(n, 1030);
    json_decref(whole);
    struct fr_otlp_pb_parts *p = fr_otlp_pb_open(FR_OTLP_TRACES, buf, len, why, sizeof why);
    assert_non_null(p);
    const size_t sizes[3] = {512, 512, 6}; /* the second: r0's last 188, r1's 300, r3's first 24 */
    n = 0;
    for (size_t k = 0; k < 3; k++) {
        json_t *part = fr_otlp_pb_part(p, 512);
        assert_non_null(part);
        size_t before = n;
        parts_names(part, &got, &n);
        assert_int_equal(n - before, sizes[k]);
        json_decref(part);
    }
    assert_null(fr_otlp_pb_part(p, 512));
    assert_string_equal(got, want);
    assert_non_null(strstr(got, "r0:s699 r1:s700 "));
    assert_non_null(strstr(got, "r1:s999 r3:s1000 "));
    fr_otlp_pb_close(p);
    free(got);
    /* a logs body is not a traces request: refused as fr_otlp_pb_decode refuses it */
    assert_null(fr_otlp_pb_open(FR_OTLP_TRACES, buf, len - 3, why, sizeof why));
    assert_non_null(strstr(why, "ExportTraceServiceRequest"));
    assert_null(fr_otlp_pb_open(FR_OTLP_METRICS, buf, len, why, sizeof why));
    free(want);
    free(buf);
}

/* Protobuf decodes to the tree the JSON path maps: ids as hex, the same event. */
static void
test_otlp_protobuf_maps_like_json(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = t_otlp_pb_traces("conv-pb", &len);
    char why[200];
    json_t *req = fr_otlp_pb_decode(FR_OTLP_TRACES, buf, len, why, sizeof why);
    assert_non_null(req);
    json_t *out = json_array();
    size_t spans, rejected;
    assert_int_equal(fr_otlp_traces(req, &opts, out, NULL, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 2);
    assert_int_equal(rejected, 1);
    json_t *ev = json_array_get(out, 0);
    assert_string_equal(sget(ev, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(sget(ev, "span_id"), "00f067aa0ba902b7");
    assert_string_equal(sget(ev, "conv_id"), "conv-pb");
    assert_int_equal(iget(ev, "data", "duration_ms") +
                         iget(json_object_get(ev, "data"), "usage", "input_tokens"),
                     77);
    assert_int_equal(iget(json_object_get(ev, "data"), "latency", "provider_ms"), 1200);
    json_decref(out);
    json_decref(req);
    /* a truncated body, and a logs body posted as traces field garbage, are refused */
    assert_null(fr_otlp_pb_decode(FR_OTLP_TRACES, buf, len - 3, why, sizeof why));
    assert_non_null(strstr(why, "ExportTraceServiceRequest"));
    free(buf);
    /* a response with partial success round-trips */
    uint8_t *resp;
    size_t rlen;
    fr_otlp_pb_response(FR_OTLP_TRACES, 1, "1 rejected", &resp, &rlen);
    FrOtlp__ExportTraceServiceResponse *r =
        fr_otlp__export_trace_service_response__unpack(NULL, rlen, resp);
    assert_non_null(r);
    assert_int_equal(r->partial_success->rejected_spans, 1);
    fr_otlp__export_trace_service_response__free_unpacked(r, NULL);
    free(resp);
}

/* An attribute value nested past FR_OTLP_PB_MAX_DEPTH is refused before protobuf-c
   recurses into it (100,000 levels would exhaust the stack); strings that are not UTF-8
   are repaired. */
static void
test_otlp_protobuf_depth_and_utf8(void **state)
{
    (void)state;
    /* AnyValue{array_value{values: AnyValue{array_value{...}}}}: each level 0x2a <len> 0x0a <len>
     */
    size_t levels = 100000, cap = levels * 12 + 64, n = 0;
    uint8_t *b = fr_malloc(cap), *tmp = fr_malloc(cap);
    b[n++] = 0x08; /* innermost: bool_value = 1... as AnyValue field 2 */
    b[0] = 0x10;
    b[n++] = 1;
    for (size_t i = 0; i < levels; i++) {
        /* wrap: ArrayValue{values(1): b} then AnyValue{array_value(5): that} */
        for (int w = 0; w < 2; w++) {
            uint8_t hdr[12];
            size_t h = 0;
            hdr[h++] = w == 0 ? 0x0a : 0x2a;
            for (size_t x = n;; x >>= 7) {
                hdr[h++] = (uint8_t)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
                if (x < 0x80)
                    break;
            }
            memcpy(tmp, hdr, h);
            memcpy(tmp + h, b, n);
            n += h;
            uint8_t *t = b;
            b = tmp;
            tmp = t;
            if (n + 24 > cap)
                fail_msg("buffer");
        }
    }
    /* as the body (5) of a LogRecord in ScopeLogs (2) in ResourceLogs (2) in the request (1) */
    static const uint8_t path[] = {0x2a, 0x12, 0x12, 0x0a};
    for (size_t w = 0; w < sizeof path; w++) {
        uint8_t hdr[12];
        size_t h = 0;
        hdr[h++] = path[w];
        for (size_t x = n;; x >>= 7) {
            hdr[h++] = (uint8_t)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
            if (x < 0x80)
                break;
        }
        memcpy(tmp, hdr, h);
        memcpy(tmp + h, b, n);
        n += h;
        uint8_t *t = b;
        b = tmp;
        tmp = t;
    }
    free(tmp);
    char why[200];
    json_t *j = fr_otlp_pb_decode(FR_OTLP_LOGS, b, n, why, sizeof why);
    assert_null(j);
    assert_non_null(strstr(why, "nested more than 64 deep"));
    free(b);
    /* a span name, and an attribute's key, that are not UTF-8 */
    FrOtlp__Span sp = FR_OTLP__SPAN__INIT, *spp = &sp;
    sp.name = "bad \xff\xfe name";
    sp.start_time_unix_nano = 1;
    FrOtlp__AnyValue av = FR_OTLP__ANY_VALUE__INIT;
    av.value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    av.string_value = "v";
    FrOtlp__KeyValue kv = FR_OTLP__KEY_VALUE__INIT, kv2 = FR_OTLP__KEY_VALUE__INIT;
    FrOtlp__KeyValue *kvp[] = {&kv, &kv2};
    kv.key = "key\xc3";
    kv.value = &av;
    /* a value that is not UTF-8 past its first eight bytes (the checker's word at a time) */
    FrOtlp__AnyValue bad = FR_OTLP__ANY_VALUE__INIT;
    bad.value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    bad.string_value = "a value longer than a word \xed\xa0\x80 (a surrogate)";
    kv2.key = "gen_ai.request.model";
    kv2.value = &bad;
    sp.n_attributes = 2;
    sp.attributes = kvp;
    size_t len;
    uint8_t *buf = t_otlp_pb_pack(&spp, 1, &len);
    j = fr_otlp_pb_decode(FR_OTLP_TRACES, buf, len, why, sizeof why);
    assert_non_null(j);
    const char *name = json_string_value(json_object_get(first_span(j), "name"));
    assert_non_null(name);
    assert_non_null(strstr(name, "\xef\xbf\xbd")); /* U+FFFD */
    const json_t *attrs = json_object_get(first_span(j), "attributes");
    assert_int_equal(json_object_size(attrs), 2); /* kept, its key repaired */
    assert_string_equal(json_string_value(json_object_get(attrs, "key\xef\xbf\xbd")), "v");
    const char *model = json_string_value(json_object_get(attrs, "gen_ai.request.model"));
    assert_non_null(model);
    assert_non_null(strstr(model, "word \xef\xbf\xbd"));
    /* every string of the tree is UTF-8: its text can be written */
    size_t tlen;
    char *text = fr_json_text(j, JSON_COMPACT, &tlen);
    assert_non_null(text);
    free(text);
    json_decref(j);
    free(buf);
}

/* GenAI log events become parts of their provider event (same trace and span), one per call
   and request. */
static void
test_otlp_content_log_events_become_parts(void **state)
{
    (void)state;
    static const char text[] =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
        "{\"timeUnixNano\":\"1771357445000000000\",\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"spanId\":\"00f067aa0ba902b7\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":"
        "\"content\","
        "\"value\":{\"stringValue\":\"hello\"}}]}},\"attributes\":[{\"key\":\"event.name\","
        "\"value\":{\"stringValue\":\"gen_ai.user.message\"}}]},"
        "{\"timeUnixNano\":\"1771357445000000000\",\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"spanId\":\"00f067aa0ba902b7\",\"eventName\":\"gen_ai.choice\",\"body\":{\"kvlistValue\":"
        "{\"values\":[{\"key\":\"finish_reason\",\"value\":{\"stringValue\":\"stop\"}},{\"key\":"
        "\"message\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"content\",\"value\":{"
        "\"stringValue\":\"hi\"}}]}}}]}}},"
        "{\"timeUnixNano\":\"1771357445000000000\",\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"spanId\":\"00f067aa0ba902b7\",\"eventName\":\"gen_ai.client.inference.operation."
        "details\","
        "\"attributes\":[{\"key\":\"gen_ai.input.messages\",\"value\":{\"stringValue\":"
        "\"[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":"
        "\\\"q\\\"}]}]\"}}]},"
        "{\"timeUnixNano\":\"1771357445000000000\",\"body\":{\"stringValue\":\"no span\"},"
        "\"attributes\":[{\"key\":\"event.name\",\"value\":{\"stringValue\":"
        "\"gen_ai.user.message\"}}]},"
        "{\"timeUnixNano\":\"1771357446000000000\",\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"11a8bd6661791518\","
        "\"eventName\":\"gen_ai.system.message\",\"body\":{\"stringValue\":\"be brief\"}},"
        "{\"timeUnixNano\":\"1771357445000000000\",\"traceId\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"spanId\":\"00f067aa0ba902b7\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":"
        "\"content\","
        "\"value\":{\"stringValue\":\"hello\"}}]}},\"attributes\":[{\"key\":\"event.name\","
        "\"value\":{\"stringValue\":\"gen_ai.user.message\"}}]}]}]}]}";
    json_t *req = json_loads(text, 0, NULL), *out = json_array();
    assert_non_null(req);
    size_t recs, rejected;
    assert_int_equal(fr_otlp_logs(req, &opts, out, NULL, &recs, &rejected), FR_OK);
    assert_int_equal(recs, 6);
    /* one part per call: the records of span 00f0... (a user message, a choice, the
       operation details, the same user message again) make one; span 11a8... its own; the one
       without a span has nothing to join */
    assert_int_equal(json_array_size(out), 2);
    json_t *call = json_array_get(out, 0), *other = json_array_get(out, 1);
    assert_true(json_is_true(json_object_get(call, "_part")));
    assert_string_equal(sget(call, "kind"), "provider");
    assert_string_equal(sget(call, "event_id"), "00f067aa0ba902b7");
    json_t *data = json_object_get(call, "data");
    json_t *in = json_object_get(json_object_get(data, "request"), "messages");
    json_t *resp = json_object_get(json_object_get(data, "response"), "messages");
    /* in order, the repeated message too: records of one export are distinct */
    assert_int_equal(json_array_size(in), 3);
    assert_string_equal(sget(json_array_get(in, 0), "role"), "user");
    assert_string_equal(sget(json_array_get(in, 0), "content"), "hello");
    assert_string_equal(sget(json_array_get(in, 1), "role"), "user");
    assert_non_null(json_object_get(json_array_get(in, 1), "parts"));
    assert_string_equal(sget(json_array_get(in, 2), "content"), "hello");
    assert_int_equal(json_array_size(resp), 1);
    assert_string_equal(sget(json_array_get(resp, 0), "content"), "hi");
    assert_string_equal(sget(json_array_get(resp, 0), "finish_reason"), "stop");
    assert_string_equal(sget(other, "span_id"), "11a8bd6661791518");
    json_t *sys = json_array_get(
        json_object_get(json_object_get(json_object_get(other, "data"), "request"), "messages"), 0);
    assert_string_equal(sget(sys, "role"), "system");
    assert_string_equal(sget(sys, "content"), "be brief");
    json_decref(out);
    json_decref(req);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_otlp_chat_span_becomes_provider_event),
        cmocka_unit_test(test_otlp_current_genai_conventions),
        cmocka_unit_test(test_otlp_traceloop_and_openinference),
        cmocka_unit_test(test_otlp_links_name_traces),
        cmocka_unit_test(test_otlp_resource_attributes),
        cmocka_unit_test(test_otlp_content_log_events_become_parts),
        cmocka_unit_test(test_otlp_protobuf_maps_like_json),
        cmocka_unit_test(test_otlp_json_enum_names_and_base64_ids),
        cmocka_unit_test(test_otlp_vercel_ai_sdk),
        cmocka_unit_test(test_otlp_step_failed_in_its_call),
        cmocka_unit_test(test_otlp_step_failed_in_an_earlier_request),
        cmocka_unit_test(test_otlp_protobuf_in_region),
        cmocka_unit_test(test_otlp_protobuf_depth_and_utf8),
        cmocka_unit_test(test_otlp_failed_span_carries_error_and_status),
        cmocka_unit_test(test_otlp_tool_and_other_spans),
        cmocka_unit_test(test_otlp_malformed_items_rejected_not_fatal),
        cmocka_unit_test(test_otlp_error_log_record_becomes_error_event),
        cmocka_unit_test(test_otlp_cumulative_metrics_become_deltas),
        cmocka_unit_test(test_otlp_streaming_metrics),
        cmocka_unit_test(test_otlp_protobuf_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
