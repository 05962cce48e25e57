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

#include "agent/otlp.h"
#include "core/mem.h"

static const struct fr_otlp_opts opts = {"gen_ai.conversation.id,session.id", "gen_ai.turn.id"};

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
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_OK);
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
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_OK);
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
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_OK);
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
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_OK);
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
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_OK);
    assert_int_equal(spans, 2);
    assert_int_equal(rejected, 1);
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    json_decref(req);
    /* not a traces request at all */
    req = json_loads("{\"resourceLogs\":[]}", 0, &e);
    out = json_array();
    assert_int_equal(fr_otlp_traces(req, &opts, out, &spans, &rejected), FR_E_VALUE);
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
    assert_int_equal(fr_otlp_logs(req, &opts, out, &recs, &rejected), FR_OK);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_otlp_chat_span_becomes_provider_event),
        cmocka_unit_test(test_otlp_failed_span_carries_error_and_status),
        cmocka_unit_test(test_otlp_tool_and_other_spans),
        cmocka_unit_test(test_otlp_malformed_items_rejected_not_fatal),
        cmocka_unit_test(test_otlp_error_log_record_becomes_error_event),
        cmocka_unit_test(test_otlp_cumulative_metrics_become_deltas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
