/*
 * tests/integration/test_agent_otlp.c - the real agent: the OTLP/HTTP receiver, with hand-made
 * requests and the real OpenTelemetry SDK.
 */
#include "tests/integration/agent.h"

#include "agent/otlp/map.h"
#include "agent/otlp/otlp.pb-c.h"
#include "core/hex.h"
#include "core/jsonfast.h"

#include <openssl/evp.h>
#include <sqlite3.h>

/* OTLP/HTTP JSON: GenAI spans become provider and tool events, the 429 is classified. */
static void
test_agent_otlp_traces(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int main_port = a->port, otlp = otlp_port(a);
    a->port = otlp; /* the OTLP port, as an exporter would use it */
    const char *json[] = {"Content-Type: application/json", NULL};
    char *out;
    assert_int_equal(
        http(a, "POST", "/v1/traces", json, otlp_traces, strlen(otlp_traces), &out, NULL), 200);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "partialSuccess"), "rejectedSpans")),
        1);
    json_decref(j);
    free(out);
    /* protobuf that is not an OTLP request: 400, answered in protobuf (a google.rpc.Status) */
    const char *proto[] = {"Content-Type: application/x-protobuf", NULL};
    struct hdrs h = {0};
    assert_int_equal(http(a, "POST", "/v1/traces", proto,
                          "\x0a\x05"
                          "ab",
                          4, &out, &h),
                     400);
    assert_string_equal(h.content_type, "application/x-protobuf");
    FrOtlp__RpcStatus *st = fr_otlp__rpc_status__unpack(NULL, h.body_len, (uint8_t *)out);
    assert_non_null(st);
    assert_int_equal(st->code, 3); /* INVALID_ARGUMENT */
    assert_non_null(strstr(st->message, "ExportTraceServiceRequest"));
    fr_otlp__rpc_status__free_unpacked(st, NULL);
    free(out);
    /* an empty request ({}, as the protobuf JSON mapping writes one) is a success on every
       signal; another signal's request is refused saying where it belongs */
    static const char *const signals[] = {"/v1/traces", "/v1/logs", "/v1/metrics"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(http(a, "POST", signals[i], json, "{}", 2, NULL, NULL), 200);
    /* after a UTF-8 byte order mark too (RFC 8259 lets a parser ignore it) */
    assert_int_equal(http(a, "POST", "/v1/traces", json, "\xef\xbb\xbf{}", 5, NULL, NULL), 200);
    const char *other = "{\"resourceLogs\":[]}";
    assert_int_equal(http(a, "POST", "/v1/traces", json, other, strlen(other), &out, NULL), 400);
    assert_non_null(strstr(out, "logs go to /v1/logs"));
    free(out);
    /* a media type the receiver does not take: 415, said, and counted by reason */
    const char *text[] = {"Content-Type: text/plain", NULL};
    assert_int_equal(http(a, "POST", "/v1/traces", text, "x", 1, &out, NULL), 415);
    assert_non_null(strstr(out, "application/x-protobuf"));
    free(out);
    wait_log(a, "traces refused (media_type): Content-Type text/plain");
    wait_log(a, "traces refused (malformed): body is not an OTLP protobuf");
    char *m;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL), 200);
    assert_non_null(
        strstr(m, "flightrec_otlp_rejected_total{signal=\"traces\",reason=\"media_type\"} 1\n"));
    assert_non_null(
        strstr(m, "flightrec_otlp_rejected_total{signal=\"traces\",reason=\"malformed\"} 2\n"));
    /* the malformed span of the JSON request above, counted as an item */
    assert_non_null(
        strstr(m, "flightrec_otlp_rejected_total{signal=\"traces\",reason=\"invalid\"} 1\n"));
    free(m);
    /* an ERROR log record becomes an error event (its severity by name, as the protobuf JSON
       mapping allows) */
    const char *logs = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
                       "\"1771357448000000000\",\"severityNumber\":\"SEVERITY_NUMBER_ERROR\","
                       "\"body\":{\"stringValue\":\"worker "
                       "crashed\"},\"attributes\":[{\"key\":\"session.id\",\"value\":{"
                       "\"stringValue\":\"o-1\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, logs, strlen(logs), &out, NULL), 200);
    free(out);
    /* a record naming its kind becomes that event (body = data); a body that is
       not an object is counted in rejectedLogRecords */
    const char *kinds =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357449000000000\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"name\","
        "\"value\":{\"stringValue\":\"lookup\"}},{\"key\":\"status\",\"value\":{"
        "\"stringValue\":\"ok\"}}]}},\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{"
        "\"stringValue\":\"tool\"}},{\"key\":\"session.id\",\"value\":{\"stringValue\":"
        "\"o-1\"}}]},{\"timeUnixNano\":\"1771357449000000000\",\"body\":{\"stringValue\":"
        "\"not json\"},\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{"
        "\"stringValue\":\"tool\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, kinds, strlen(kinds), &out, NULL), 200);
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "partialSuccess"),
                                                        "rejectedLogRecords")),
                     1);
    /* and says why, counted (it was always empty) */
    const char *why =
        json_string_value(json_object_get(json_object_get(j, "partialSuccess"), "errorMessage"));
    assert_non_null(why);
    assert_non_null(strstr(why, "1 rejected: 1 x "));
    json_decref(j);
    free(out);
    /* GenAI metrics, cumulative: the second export counts only the increase */
    for (int round = 1; round <= 2; round++) {
        char *m = otlp_metrics(round == 1 ? 100 : 150, round == 1 ? 2 : 3, round == 1 ? 1.5 : 2.5);
        assert_int_equal(http(a, "POST", "/v1/metrics", json, m, strlen(m), &out, NULL), 200);
        free(out);
        free(m);
    }
    /* half of an emoji in a log body, as JSON.stringify writes a string cut inside one: the
       export is read with it as U+FFFD, not refused whole (and said) */
    const char *half =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357449500000000\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"name\","
        "\"value\":{\"stringValue\":\"cut \\ud83d\"}}]}},\"attributes\":[{\"key\":"
        "\"flightrec.kind\",\"value\":{\"stringValue\":\"tool\"}},{\"key\":\"session.id\","
        "\"value\":{\"stringValue\":\"o-half\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, half, strlen(half), &out, NULL), 200);
    free(out);
    wait_log(a, "logs: 1 string(s) held half of a character");
    wait_log(a, "the first at resourceLogs[0].scopeLogs[0].logRecords[0].body.kvlistValue.values["
                "0].value.stringValue");
    /* a log body forwarded as it was read, in Latin-1: the same, said of its bytes */
    const char *latin1 =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357449600000000\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"name\","
        "\"value\":{\"stringValue\":\"cr\xe8me\"}}]}},\"attributes\":[{\"key\":"
        "\"flightrec.kind\",\"value\":{\"stringValue\":\"tool\"}},{\"key\":\"session.id\","
        "\"value\":{\"stringValue\":\"o-half\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, latin1, strlen(latin1), &out, NULL), 200);
    free(out);
    wait_log(a, "logs: 1 byte(s) were not UTF-8");
    wait_log(a, "each stored as U+FFFD; the first at resourceLogs[0].scopeLogs[0].logRecords[0]."
                "body.kvlistValue.values[0].value.stringValue");
    /* an export past FR_JSON_FAST_MAX (simdjson reads it, with a parser of its own): all of its
       records stored; one names a key twice, which simdjson leaves to jansson, read as before
       (the last one counts) */
    char *big = NULL;
    size_t bigcap = 0;
    FILE *bf = open_memstream(&big, &bigcap);
    fputs("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[", bf);
    for (int i = 0; i < 100; i++)
        fprintf(bf,
                "%s{\"timeUnixNano\":\"17713574497%08d\",%s\"body\":{\"kvlistValue\":{"
                "\"values\":[{\"key\":\"name\",\"value\":{\"stringValue\":\"step %d of a "
                "long export, \\u00e9t\\u00e9 \\ud83d\\ude00\"}}]}},\"attributes\":[{\"key\":"
                "\"flightrec.kind\",\"value\":{\"stringValue\":\"tool\"}},{\"key\":"
                "\"session.id\",\"value\":{\"stringValue\":\"o-big\"}}]}",
                i ? "," : "", i * 1000,
                i == 42 ? "\"severityText\":\"DEBUG\",\"severityText\":\"INFO\"," : "", i);
    fputs("]}]}]}", bf);
    fclose(bf);
    assert_true(bigcap > FR_JSON_FAST_MAX);
    assert_int_equal(http(a, "POST", "/v1/logs", json, big, bigcap, &out, NULL), 200);
    free(out);
    free(big);
    int64_t calls, in_tokens, avg_ms;
    otel_stats(a, "gpt-4o-2024-08-06", &calls, &in_tokens, &avg_ms);
    assert_int_equal(calls, 3);
    assert_int_equal(in_tokens, 150);
    assert_int_equal(avg_ms, 833);
    a->port = main_port;
    j = get_json(a, "/v1/conversations/o-half", 200);
    char *halfdump = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(halfdump, "\"name\":\"cut \xef\xbf\xbd\"")); /* U+FFFD */
    assert_non_null(strstr(halfdump, "\"name\":\"cr\xef\xbf\xbdme\""));
    free(halfdump);
    json_decref(j);
    j = get_json(a, "/v1/conversations/o-1", 200);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 5);
    json_t *bigconv = get_json(a, "/v1/conversations/o-big", 200);
    json_t *bigevs = json_object_get(bigconv, "events");
    assert_int_equal(json_array_size(bigevs), 100);
    char *bigdump = json_dumps(json_array_get(bigevs, 99), JSON_COMPACT);
    assert_non_null(
        strstr(bigdump, "step 99 of a long export, \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"));
    free(bigdump);
    json_decref(bigconv);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(evs, 4), "flightrec"), "tool")),
                        "lookup");
    json_t *call = json_array_get(evs, 0), *tool = json_array_get(evs, 1),
           *limited = json_array_get(evs, 2);
    assert_string_equal(json_string_value(json_object_get(call, "kind")), "provider");
    json_t *meta = json_object_get(call, "flightrec");
    assert_string_equal(json_string_value(json_object_get(meta, "model")), "gpt-4o-2024-08-06");
    assert_int_equal(json_integer_value(json_object_get(meta, "duration_ms")), 1250);
    json_t *usage = json_object_get(json_object_get(call, "data"), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 120);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 45);
    assert_string_equal(json_string_value(json_object_get(call, "trace_id")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    char *dump = json_dumps(call, 0);
    assert_null(strstr(dump, "Zq8XbN3k")); /* redacted like any free text */
    free(dump);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(call, "data"), "response"), "content")),
                        "Sunny, 21C"); /* from the gen_ai.content.completion span event */
    json_t *parts = json_object_get(
        json_array_get(json_object_get(json_object_get(json_object_get(limited, "data"), "request"),
                                       "messages"),
                       0),
        "parts");
    const char *said = json_string_value(json_object_get(json_array_get(parts, 0), "content"));
    assert_non_null(said);
    assert_null(strstr(said, "jane.doe@example.com")); /* structured messages, redacted */
    assert_non_null(strstr(said, "mail "));
    assert_string_equal(json_string_value(json_object_get(tool, "kind")), "tool");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(tool, "flightrec"), "tool")),
        "get_weather");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(limited, "flightrec"), "error_code")),
        "provider.rate_limited");
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 3), "kind")),
                        "error");
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/*
 * One turn of tests/otlp/sdk.mjs as the agent stored it: exactly the three
 * provider calls (one a 429), the tool call with its arguments and result,
 * the models, tokens and finish reasons, the prompt's card number redacted,
 * and every event in the named conversation — none left under the trace id.
 */
static const char *
sget_(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(none)";
}

static void
assert_sdk_turn(struct agent *a, const char *conv)
{
    char *path = fr_asprintf("/v1/conversations/%s", conv);
    json_t *j = get_json(a, path, 200);
    free(path);
    json_t *evs = json_object_get(j, "events"), *e;
    size_t i, providers = 0, tools = 0, limited = 0;
    json_int_t in_tokens = 0, out_tokens = 0;
    char finish[64] = "";
    json_array_foreach(evs, i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *meta = json_object_get(e, "flightrec"), *data = json_object_get(e, "data");
        const char *code = json_string_value(json_object_get(meta, "error_code"));
        assert_string_equal(json_string_value(json_object_get(e, "conv_id")), conv);
        if (strcmp(kind, "provider") == 0) {
            providers++;
            if (code && strcmp(code, "provider.rate_limited") == 0) {
                limited++;
                json_t *in = json_object_get(json_object_get(data, "request"), "messages");
                assert_string_equal(sget_(json_array_get(in, 0), "content"), "Again");
                continue;
            }
            assert_string_equal(json_string_value(json_object_get(meta, "model")),
                                "gpt-4o-2024-08-06");
            json_t *u = json_object_get(data, "usage");
            in_tokens += json_integer_value(json_object_get(u, "input_tokens"));
            out_tokens += json_integer_value(json_object_get(u, "output_tokens"));
            strncat(finish, json_string_value(json_object_get(data, "finish_reason")),
                    sizeof finish - strlen(finish) - 2);
            strcat(finish, ",");
            /* the messages, sent as log events apart from the span, attached to it */
            json_t *in = json_object_get(json_object_get(data, "request"), "messages");
            json_t *out = json_object_get(json_object_get(data, "response"), "messages");
            if (providers == 1) {
                assert_int_equal(json_array_size(in), 2);
                assert_string_equal(sget_(json_array_get(in, 0), "role"), "system");
                assert_string_equal(sget_(json_array_get(in, 0), "content"),
                                    "You are a weather bot.");
                assert_string_equal(sget_(json_array_get(in, 1), "content"),
                                    "Weather in Paris? My card is [REDACTED:card_number]");
                assert_int_equal(json_array_size(out), 1);
                assert_string_equal(sget_(json_array_get(out, 0), "finish_reason"), "tool_calls");
            } else {
                assert_string_equal(sget_(json_array_get(in, 0), "content"), "Thanks");
                assert_int_equal(json_array_size(out), 1);
                assert_string_equal(sget_(json_array_get(out, 0), "content"),
                                    "It is sunny in Paris.");
            }
        } else if (strcmp(kind, "tool") == 0) {
            tools++;
            assert_string_equal(json_string_value(json_object_get(meta, "tool")), "get_weather");
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(data, "args"), "city")), "Paris");
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(data, "result"), "sky")),
                "sunny");
        }
    }
    assert_int_equal(providers, 3);
    assert_int_equal(limited, 1);
    assert_int_equal(tools, 1);
    assert_int_equal(json_array_size(evs), 4);
    assert_int_equal(in_tokens, 101 + 102);
    assert_int_equal(out_tokens, 21 + 22);
    assert_string_equal(finish, "tool_calls,stop,");
    char *dump = json_dumps(evs, 0);
    assert_null(strstr(dump, "4111 1111 1111 1111"));
    free(dump);
    json_decref(j);
}

/*
 * The SDK as deployments configure it, by environment only: OTLP/HTTP
 * protobuf (the specified default, here gzip-compressed), JSON and gRPC, each
 * with the batch processor on different schedules — everything at shutdown,
 * a flush after every call (each child span exported alone, long before
 * the root span naming the conversation), and a short batch timer with
 * pauses between calls. Every turn lands whole in its conversation.
 */
static void
test_agent_otlp_sdk_transports_and_schedules(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int otlp = otlp_port(a);
    int grpc = grpc_port(a);
    static const struct {
        const char *conv, *env, *schedule;
        bool grpc;
    } runs[] = {
        {"sdk-proto-gzip", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "shutdown", false},
        {"sdk-proto-flush", "", "flush-each", false},
        {"sdk-proto-paced", "OTEL_BSP_SCHEDULE_DELAY=40 OTEL_BLRP_SCHEDULE_DELAY=40", "paced",
         false},
        {"sdk-json-flush", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "flush-each", false},
        {"sdk-grpc-gzip", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_COMPRESSION=gzip",
         "shutdown", true},
        {"sdk-grpc-flush", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "flush-each", true},
    };
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        char *cmd = fr_asprintf("env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d "
                                "OTEL_METRICS_EXPORTER=otlp OTEL_TRACES_EXPORTER=otlp "
                                "OTEL_LOGS_EXPORTER=otlp %s node %s/tests/otlp/sdk.mjs %s %s",
                                runs[r].grpc ? grpc : otlp, runs[r].env, FR_SOURCE_DIR,
                                runs[r].conv, runs[r].schedule),
             *out = NULL, *err = NULL;
        int rc = t_run(cmd, &out, &err);
        if (rc != 0)
            fail_msg("%s failed (%d): %s", cmd, rc, err);
        free(out);
        free(err);
        free(cmd);
        assert_sdk_turn(a, runs[r].conv);
    }
    /* and what an engineer sees: flightrec show of one of them */
    char *cmd = fr_asprintf("%s show sdk-json-flush --db %s", FR_BIN, a->db), *out, *err;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "openai/gpt-4o-2024-08-06 in=101 out=21"));
    assert_non_null(strstr(out, "openai/gpt-4o-2024-08-06 in=102 out=22"));
    assert_non_null(strstr(out, "get_weather call=call_1"));
    assert_non_null(strstr(out, "!! provider.rate_limited: 429"));
    free(out);
    free(err);
    free(cmd);
    /* no conversation was left named by a trace id */
    json_t *j = get_json(a, "/v1/conversations?limit=100", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")),
                     sizeof runs / sizeof *runs);
    json_decref(j);
    /* the SDK's GenAI metrics over protobuf reached the otel rollups: two successful
       calls per run (the 429 is counted as a call with an error.type) */
    int64_t calls, m_in, avg;
    otel_stats(a, "gpt-4o-2024-08-06", &calls, &m_in, &avg);
    assert_int_equal(calls, 2 * (int64_t)(sizeof runs / sizeof *runs));
    assert_int_equal(m_in, (101 + 102) * (int64_t)(sizeof runs / sizeof *runs));
    assert_int_equal(agent_stop(a), 0);
}

/* One raw gRPC call through tests/otlp/grpc-probe.mjs (@grpc/grpc-js); the parsed answer. With
   an encoding, msg is already compressed that way (sent over node:http2). */
static json_t *
grpc_call_enc(struct agent *a, const char *method, const void *msg, size_t len, const char *token,
              const char *encoding)
{
    char *file = t_path(a->dir, "grpc-request.bin");
    write_bytes(file, msg, len);
    char *cmd = fr_asprintf("node %s/tests/otlp/grpc-probe.mjs 127.0.0.1:%d %s %s '%s' %s",
                            FR_SOURCE_DIR, grpc_port(a), method, file, token ? token : "",
                            encoding ? encoding : ""),
         *out = NULL, *err = NULL;
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("%s failed: %s", cmd, err);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    free(out);
    free(err);
    free(cmd);
    free(file);
    return j;
}

static json_t *
grpc_call(struct agent *a, const char *method, const void *msg, size_t len, const char *token)
{
    return grpc_call_enc(a, method, msg, len, token, NULL);
}

static uint8_t *
b64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *out = fr_malloc(n + 4);
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    assert_true(got >= 0);
    *len = (size_t)got - (n >= 1 && s[n - 1] == '=') - (n >= 2 && s[n - 2] == '=');
    return out;
}

/*
 * Compressed OTLP as collectors send it when told to (the Collector's
 * compression: gzip, zstd, deflate, snappy, lz4): OTLP/HTTP protobuf with
 * Content-Encoding zstd, deflate (zlib-wrapped, and raw as some clients send
 * it), snappy (block and framed) and lz4, and OTLP/gRPC messages with
 * grpc-encoding zstd, deflate, snappy and lz4, each stored; an
 * encoding the agent cannot read is refused by name (HTTP 415, gRPC
 * UNIMPLEMENTED naming what it takes, as grpc-accept-encoding does), logged
 * and counted, and nothing of it stored.
 */
static void
test_agent_otlp_compression(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int main_port = a->port;
    a->port = otlp_port(a);
    static const struct {
        const char *conv, *how, *header, *type;
    } https[] = {
        {"c-http-zstd", "zstd", "Content-Encoding: zstd", "application/x-protobuf"},
        {"c-http-zlib", "zlib", "Content-Encoding: deflate", "application/x-protobuf"},
        {"c-http-raw", "raw", "Content-Encoding: Deflate", "application/protobuf"},
        {"c-http-snappy", "snappy", "Content-Encoding: snappy", "application/x-protobuf"},
        {"c-http-framed", "snappy-framed", "Content-Encoding: snappy", "application/x-protobuf"},
        {"c-http-lz4", "lz4", "Content-Encoding: lz4", "application/x-protobuf"}};
    for (size_t i = 0; i < sizeof https / sizeof *https; i++) {
        size_t len, zlen;
        uint8_t *req = t_otlp_pb_traces(https[i].conv, &len);
        uint8_t *z = compress_as(https[i].how, req, len, &zlen);
        char type[64];
        snprintf(type, sizeof type, "Content-Type: %s", https[i].type);
        const char *hdr[] = {type, https[i].header, NULL};
        assert_int_equal(http(a, "POST", "/v1/traces", hdr, z, zlen, NULL, NULL), 200);
        free(z);
        free(req);
    }
    size_t len;
    uint8_t *req = t_otlp_pb_traces("c-http-br", &len);
    const char *br[] = {"Content-Type: application/x-protobuf", "Content-Encoding: br", NULL};
    struct hdrs h = {0};
    char *out = NULL;
    assert_int_equal(http(a, "POST", "/v1/traces", br, req, len, &out, &h), 415);
    FrOtlp__RpcStatus *st = fr_otlp__rpc_status__unpack(NULL, h.body_len, (uint8_t *)out);
    assert_non_null(st);
    assert_non_null(strstr(st->message,
                           "Content-Encoding br: OTLP/HTTP takes zstd, gzip, deflate, snappy, "
                           "x-snappy-framed, lz4 or identity"));
    fr_otlp__rpc_status__free_unpacked(st, NULL);
    free(out);
    free(req);
    wait_log(a, "traces refused (encoding): Content-Encoding br");
    const char *trace = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    static const struct {
        const char *conv, *how, *encoding;
    } grpcs[] = {{"c-grpc-zstd", "zstd", "zstd"},
                 {"c-grpc-zlib", "zlib", "deflate"},
                 {"c-grpc-snappy", "snappy-framed", "snappy"},
                 {"c-grpc-lz4", "lz4", "lz4"}};
    for (size_t i = 0; i < sizeof grpcs / sizeof *grpcs; i++) {
        size_t zlen;
        req = t_otlp_pb_traces(grpcs[i].conv, &len);
        uint8_t *z = compress_as(grpcs[i].how, req, len, &zlen);
        json_t *j = grpc_call_enc(a, trace, z, zlen, NULL, grpcs[i].encoding);
        assert_int_equal(json_integer_value(json_object_get(j, "code")), 0);
        assert_string_equal(json_string_value(json_object_get(j, "accept_encoding")),
                            "identity,gzip,deflate,zstd,snappy,lz4");
        json_decref(j);
        free(z);
        free(req);
    }
    req = t_otlp_pb_traces("c-grpc-br", &len);
    json_t *j = grpc_call_enc(a, trace, req, len, NULL, "br");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 12); /* UNIMPLEMENTED */
    assert_non_null(strstr(json_string_value(json_object_get(j, "details")),
                           "grpc-encoding br (identity,gzip,deflate,zstd,snappy,lz4)"));
    json_decref(j);
    free(req);
    a->port = main_port;
    char *m;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL), 200);
    assert_non_null(
        strstr(m, "flightrec_otlp_rejected_total{signal=\"traces\",reason=\"encoding\"} 2\n"));
    free(m);
    assert_int_equal(agent_stop(a), 0);
    const char *stored[] = {"c-http-zstd",   "c-http-zlib", "c-http-raw",  "c-http-snappy",
                            "c-http-framed", "c-http-lz4",  "c-grpc-zstd", "c-grpc-zlib",
                            "c-grpc-snappy", "c-grpc-lz4"};
    for (size_t i = 0; i < sizeof stored / sizeof *stored; i++)
        if (count_events(a->db, stored[i]) != 1)
            fail_msg("%s: %ld events stored, not 1", stored[i], count_events(a->db, stored[i]));
    assert_int_equal(count_events(a->db, "c-http-br"), 0);
    assert_int_equal(count_events(a->db, "c-grpc-br"), 0);
}

/*
 * OTLP/gRPC with a raw client: the token, an unknown method, a message that
 * is not OTLP, a good request (committed, partial success for its bad span,
 * in the conversation), and a full queue answered RESOURCE_EXHAUSTED with a
 * RetryInfo of 1 s, nothing stored; the retry is stored once.
 */
static void
test_agent_otlp_grpc(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  auth_token: grpc-token-0123456789\n",
                 "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 20000\n", NULL);
    agent_start(a);
    const char *trace = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    size_t len;
    uint8_t *req = t_otlp_pb_traces("conv-grpc", &len);
    json_t *j = grpc_call(a, trace, req, len, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 16); /* UNAUTHENTICATED */
    json_decref(j);
    j = grpc_call(a, "/opentelemetry.proto.collector.trace.v1.TraceService/Other", req, len,
                  "grpc-token-0123456789");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 12); /* UNIMPLEMENTED */
    json_decref(j);
    j = grpc_call(a, trace,
                  "\x0a\x05"
                  "ab",
                  4, "grpc-token-0123456789");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 3); /* INVALID_ARGUMENT */
    assert_non_null(strstr(json_string_value(json_object_get(j, "details")),
                           "not an OTLP protobuf ExportTraceServiceRequest"));
    json_decref(j);
    assert_int_equal(count_events(a->db, "conv-grpc"), 0);
    j = grpc_call(a, trace, req, len, "grpc-token-0123456789");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 0);
    size_t rlen;
    uint8_t *resp = b64(json_string_value(json_object_get(j, "response")), &rlen);
    FrOtlp__ExportTraceServiceResponse *r =
        fr_otlp__export_trace_service_response__unpack(NULL, rlen, resp);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_spans, 1);
    fr_otlp__export_trace_service_response__free_unpacked(r, NULL);
    free(resp);
    json_decref(j);
    assert_int_equal(count_events(a->db, "conv-grpc"), 1); /* committed before the answer */
    /* a full queue: RESOURCE_EXHAUSTED with when to retry, nothing stored */
    const char *hdr[] = {"Authorization: Bearer grpc-token-0123456789", NULL};
    struct held_queue q;
    queue_hold(a, &q, "g-1", 10, hdr); /* the whole queue */
    uint8_t *req2 = t_otlp_pb_traces("conv-grpc-2", &len);
    j = grpc_call(a, trace, req2, len, "grpc-token-0123456789");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 8); /* RESOURCE_EXHAUSTED */
    uint8_t *det = b64(json_string_value(json_object_get(j, "status_details")), &rlen);
    FrOtlp__RpcStatus *st = fr_otlp__rpc_status__unpack(NULL, rlen, det);
    assert_non_null(st);
    assert_int_equal(st->n_details, 1);
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    FrOtlp__RetryInfo *ri =
        fr_otlp__retry_info__unpack(NULL, st->details[0]->value.len, st->details[0]->value.data);
    assert_non_null(ri);
    assert_int_equal(ri->retry_delay->seconds, 1);
    fr_otlp__retry_info__free_unpacked(ri, NULL);
    fr_otlp__rpc_status__free_unpacked(st, NULL);
    free(det);
    json_decref(j);
    assert_int_equal(queue_release(&q), 202);
    assert_int_equal(count_events(a->db, "conv-grpc-2"), 0);
    /* the exporter's retry: stored once */
    j = grpc_call(a, trace, req2, len, "grpc-token-0123456789");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 0);
    json_decref(j);
    assert_int_equal(count_events(a->db, "conv-grpc-2"), 1);
    free(req2);
    free(req);
    assert_int_equal(agent_stop(a), 0);
}

struct bg_grpc {
    struct agent *a;
    const uint8_t *msg;
    size_t len;
    json_t *answer;
};

static void *
bg_grpc_main(void *arg)
{
    struct bg_grpc *b = arg;
    b->answer = grpc_call(b->a, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                          b->msg, b->len, NULL);
    return NULL;
}

/*
 * Admission at a gRPC call's headers, as for OTLP/HTTP: with the queue full
 * the call waits (http.queue_wait), its message unread, and is served once a
 * commit frees the room: OK and stored, where it used to be
 * RESOURCE_EXHAUSTED.
 */
static void
test_agent_otlp_grpc_waits_for_room(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  queue_wait: 60s\n",
                 "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 20000\n", NULL);
    agent_start(a);
    struct held_queue q;
    queue_hold(a, &q, "gw-1", 10, NULL); /* the whole queue, its commit held */
    struct bg_grpc b = {a, NULL, 0, NULL};
    uint8_t *req = t_otlp_pb_traces("conv-grpc-wait", &b.len);
    b.msg = req;
    pthread_t t;
    pthread_create(&t, NULL, bg_grpc_main, &b);
    wait_metric(a, "\nflightrec_http_queue_waiting 1\n"); /* once node started and called */
    assert_int_equal(queue_release(&q), 202);
    pthread_join(t, NULL);
    assert_int_equal(json_integer_value(json_object_get(b.answer, "code")), 0); /* OK */
    json_decref(b.answer);
    assert_int_equal(count_events(a->db, "conv-grpc-wait"), 1);
    assert_int_equal(agent_stop(a), 0);
    free(req);
}

struct bg_mux {
    char *cmd, *out;
};

static void *
bg_mux_main(void *arg)
{
    struct bg_mux *b = arg;
    char *err = NULL;
    if (t_run(b->cmd, &b->out, &err) != 0)
        fprintf(stderr, "%s failed: %s\n", b->cmd, err);
    free(err);
    return NULL;
}

/* The answer of call i among the lines grpc-mux.mjs printed: its gRPC status code. */
static json_int_t
mux_code(const char *out, int i)
{
    char want[32];
    snprintf(want, sizeof want, "{\"call\":%d,", i);
    const char *line = out ? strstr(out, want) : NULL;
    if (line == NULL)
        fail_msg("no answer to call %d in: %s", i, out ? out : "(nothing)");
    json_t *j = json_loadb(line, strcspn(line, "\n"), 0, NULL);
    assert_non_null(j);
    json_int_t code = json_integer_value(json_object_get(j, "code"));
    json_decref(j);
    return code;
}

/*
 * The streams of one gRPC connection are served side by side, as the
 * Collector's exporter sends its concurrent exports: with the first call's
 * commit held (the database locked), the next two calls on the same
 * connection are prepared and queued meanwhile (one after the other, they
 * waited unread behind it). One of them is cancelled by the client while it
 * waits for its commit; its events are still stored, and every other call
 * is answered OK.
 */
static void
test_agent_otlp_grpc_streams_in_parallel(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  busy_timeout_ms: 60000\n", NULL);
    agent_start(a);
    const char *convs[3] = {"mux-a", "mux-b", "mux-c"};
    char *files[3];
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *req = t_otlp_pb_traces(convs[i], &len);
        char name[32];
        snprintf(name, sizeof name, "mux-%d.bin", i);
        files[i] = t_path(a->dir, name);
        write_bytes(files[i], req, len);
        free(req);
    }
    sqlite3 *lock;
    assert_int_equal(sqlite3_open(a->db, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    const char *m = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    struct bg_mux b = {fr_asprintf("node %s/tests/otlp/grpc-mux.mjs 127.0.0.1:%d %s %s=%s "
                                   "%s=%s %s=%s=cancel",
                                   FR_SOURCE_DIR, grpc_port(a), a->dir, m, files[0], m, files[1], m,
                                   files[2]),
                       NULL};
    pthread_t t;
    pthread_create(&t, NULL, bg_mux_main, &b);
    wait_metric(a, "\nflightrec_queue_events 1\n"); /* the first call, its commit waiting */
    char *go = t_path(a->dir, "go"), *cancel = t_path(a->dir, "cancel");
    write_text(go, "");
    /* the two others, on the same connection, queued while the first one waits */
    wait_metric(a, "\nflightrec_queue_events 3\n");
    write_text(cancel, ""); /* the third one's client gives up (RST_STREAM) */
    char *cancelled = t_path(a->dir, "cancelled");
    for (int i = 0; i < 6000 && access(cancelled, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(cancelled, F_OK), 0);
    free(cancelled);
    usleep(100000); /* the reset on its way to the agent before the commit can answer */
    assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    pthread_join(t, NULL);
    assert_int_equal(mux_code(b.out, 0), 0);
    assert_int_equal(mux_code(b.out, 1), 0);
    assert_int_equal(mux_code(b.out, 2), 1); /* CANCELLED, on the client's side */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(count_events(a->db, convs[i]), 1);
        free(files[i]);
    }
    assert_int_equal(agent_stop(a), 0);
    free(go);
    free(cancel);
    free(b.cmd);
    free(b.out);
}

/* t_otlp_pb_traces(conv) with pad bytes more as an unknown field (15, length-delimited), which
   the decoder skips; *len its length. */
static uint8_t *
padded_traces(const char *conv, size_t pad, size_t *len)
{
    size_t n;
    uint8_t *req = t_otlp_pb_traces(conv, &n);
    req = fr_realloc(req, n + 8 + pad);
    req[n++] = 15 << 3 | 2;
    for (size_t v = pad; v != 0; v >>= 7)
        req[n++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    memset(req + n, 'x', pad);
    *len = n + pad;
    return req;
}

/*
 * Large gRPC messages (128 KiB and more: each in a mapping of its own, kept
 * for the next one, as large HTTP bodies are) are read whole and stored, one
 * after the other on mappings of two sizes: each call's span once, in its
 * conversation.
 */
static void
test_agent_otlp_grpc_large_messages(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    const char *trace = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const size_t pads[3] = {300000, 200000, 600000};
    for (int i = 0; i < 3; i++) {
        char conv[32];
        snprintf(conv, sizeof conv, "grpc-large-%d", i);
        size_t len;
        uint8_t *req = padded_traces(conv, pads[i], &len);
        json_t *j = grpc_call(a, trace, req, len, NULL);
        assert_int_equal(json_integer_value(json_object_get(j, "code")), 0);
        json_decref(j);
        free(req);
        assert_int_equal(count_events(a->db, conv), 1);
    }
    assert_int_equal(agent_stop(a), 0);
}

/*
 * gRPC messages count against http.max_inflight_bytes with HTTP bodies, as
 * they arrive: with a first call's 30,000 bytes held (its message half sent),
 * a second call on the same connection whose message would take the bodies
 * held past 65,536 bytes is RESOURCE_EXHAUSTED, nothing of it stored, before
 * any work; the first one, finished, is stored, and what it held is given
 * back once decoded. Without the bound, a connection's 100 streams could
 * each hold a message of http.max_body_bytes.
 */
static void
test_agent_otlp_grpc_bodies_bounded(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  max_inflight_bytes: 65536\n", NULL, NULL);
    agent_start(a);
    size_t n;
    uint8_t *req = padded_traces("grpc-held", 40000, &n);
    char *file = t_path(a->dir, "held.bin");
    write_bytes(file, req, n);
    struct bg_mux b = {fr_asprintf("node %s/tests/otlp/grpc-held.mjs 127.0.0.1:%d %s "
                                   "/opentelemetry.proto.collector.trace.v1.TraceService/Export "
                                   "%s 30000",
                                   FR_SOURCE_DIR, grpc_port(a), a->dir, file),
                       NULL};
    pthread_t t;
    pthread_create(&t, NULL, bg_mux_main, &b);
    wait_metric(a, "\nflightrec_http_inflight_bytes 30000\n"); /* the first call's part */
    char *go = t_path(a->dir, "go");
    write_text(go, "");
    pthread_join(t, NULL);
    assert_int_equal(mux_code(b.out, 1), 8); /* RESOURCE_EXHAUSTED */
    assert_non_null(strstr(b.out, "http.max_inflight_bytes"));
    assert_int_equal(mux_code(b.out, 0), 0);
    assert_int_equal(count_events(a->db, "grpc-held"), 1); /* the first call's span, once */
    char *m = NULL;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL), 200);
    assert_non_null(strstr(m, "\nflightrec_http_inflight_bytes 0\n"));
    assert_non_null(
        strstr(m, "flightrec_otlp_rejected_total{signal=\"traces\",reason=\"queue_full\"} 1\n"));
    free(m);
    assert_int_equal(agent_stop(a), 0);
    free(go);
    free(file);
    free(req);
    free(b.cmd);
    free(b.out);
}

/* Runs one of the scripts of tests/otlp/ against the OTLP port; the conversation it names. */
static json_t *
run_instrumented(struct agent *a, const char *script, const char *conv, const char *schedule)
{
    char *cmd = fr_asprintf("node %s/tests/otlp/%s http://127.0.0.1:%d %s %s", FR_SOURCE_DIR,
                            script, otlp_port(a), conv, schedule ? schedule : ""),
         *out = NULL, *err = NULL;
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("%s failed: %s", cmd, err);
    free(out);
    free(err);
    free(cmd);
    char *path = fr_asprintf("/v1/conversations/%s", conv);
    json_t *j = get_json(a, path, 200);
    free(path);
    return j;
}

/* What a turn of the mock LLM (tests/otlp/mockllm.mjs) left in a conversation, by kind. */
struct turn_tally {
    size_t providers, failed, tools, steps, failed_in;
    json_int_t in, out, cached;
    char finish[64];
};

/* Tallies the events of conversation conv (the API's answer j): every one in conv; the model
   calls that succeeded with their model, provider "openai" and messages; the tool
   get_weather({"city":"Paris"}) -> {"sky":"sunny"}; the steps named "answer"; and the email of
   the prompt redacted. */
static void
tally_turn(json_t *j, const char *conv, struct turn_tally *t)
{
    memset(t, 0, sizeof *t);
    json_t *evs = json_object_get(j, "events"), *e;
    size_t i;
    json_array_foreach(evs, i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *data = json_object_get(e, "data"), *meta = json_object_get(e, "flightrec");
        assert_string_equal(json_string_value(json_object_get(e, "conv_id")), conv);
        if (strcmp(kind, "provider") == 0 && json_object_get(meta, "error_code") != NULL) {
            t->failed++;
            assert_string_equal(sget_(meta, "error_code"), "provider.rate_limited");
        } else if (strcmp(kind, "provider") == 0) {
            t->providers++;
            assert_string_equal(sget_(data, "model"), "gpt-4o-2024-08-06");
            assert_string_equal(sget_(data, "provider"), "openai");
            json_t *u = json_object_get(data, "usage");
            t->in += json_integer_value(json_object_get(u, "input_tokens"));
            t->out += json_integer_value(json_object_get(u, "output_tokens"));
            t->cached += json_integer_value(json_object_get(u, "cached_tokens"));
            strncat(t->finish, sget_(data, "finish_reason"),
                    sizeof t->finish - strlen(t->finish) - 2);
            strcat(t->finish, ",");
            assert_non_null(json_object_get(json_object_get(data, "request"), "messages"));
        } else if (strcmp(kind, "tool") == 0) {
            t->tools++;
            assert_string_equal(sget_(data, "name"), "get_weather");
            assert_string_equal(sget_(json_object_get(data, "args"), "city"), "Paris");
            assert_string_equal(sget_(json_object_get(data, "result"), "sky"), "sunny");
        } else if (strcmp(kind, "middleware") == 0) {
            t->steps++;
            assert_string_equal(sget_(data, "step"), "answer");
            t->failed_in += json_object_get(data, "failed_in") != NULL;
        }
    }
    char *dump = json_dumps(evs, 0);
    assert_null(strstr(dump, "jane.doe@example.com")); /* the prompt, redacted */
    assert_non_null(strstr(dump, "[REDACTED:email]"));
    free(dump);
}

/*
 * The other widespread instrumentations, as their users run them: Traceloop's
 * SDK (its own protobuf exporter, a workflow, a tool, the conversation as an
 * association property) and OpenInference (Arize's OpenAI instrumentation,
 * the conversation as its session). Neither exports a span for the call that
 * failed with 429 (their instrumentations end no span on that error), so
 * each turn holds two model calls.
 */
static void
test_agent_otlp_traceloop_and_openinference(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    static const char *const scripts[] = {"traceloop.mjs", "openinference.mjs"};
    static const char *const convs[] = {"tl-conv", "oi-conv"};
    for (int r = 0; r < 2; r++) {
        json_t *j = run_instrumented(a, scripts[r], convs[r], NULL);
        struct turn_tally t;
        tally_turn(j, convs[r], &t);
        assert_int_equal(t.providers, 2);
        assert_int_equal(t.failed, 0);
        assert_int_equal(t.tools, 1);
        assert_int_equal(t.steps, r == 0 ? 1 : 0); /* Traceloop's workflow */
        assert_int_equal(t.in, 101 + 102);
        assert_int_equal(t.out, 21 + 22);
        assert_int_equal(t.cached, r == 0 ? 0 : 10 + 20); /* OpenInference carries the cache */
        assert_string_equal(t.finish, r == 0 ? "tool_call,stop," : "tool_calls,stop,");
        json_decref(j);
    }
    assert_int_equal(agent_stop(a), 0);
}

/*
 * The Vercel AI SDK (ai 6 with @ai-sdk/openai) and its built-in OpenTelemetry
 * spans (ai.* attributes: ai.generateText, ai.generateText.doGenerate,
 * ai.toolCall): a call asking for the tool, the tool, the answer, then a call
 * refused with 429, in the conversation its telemetry metadata names.
 */
static void
test_agent_otlp_vercel_ai_sdk(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    json_t *j = run_instrumented(a, "vercel.mjs", "vercel-conv", NULL);
    struct turn_tally t;
    tally_turn(j, "vercel-conv", &t);
    assert_int_equal(t.providers, 2);
    assert_int_equal(t.failed, 1);
    /* the call around the refused one failed with it: counted once, in the call */
    assert_int_equal(t.failed_in, 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 1);
    assert_int_equal(t.tools, 1);
    assert_int_equal(t.steps, 2); /* the two generateText calls */
    assert_int_equal(t.in, 101 + 102);
    assert_int_equal(t.out, 21 + 22);
    assert_int_equal(t.cached, 10 + 20);
    assert_string_equal(t.finish, "tool-calls,stop,");
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *data = json_object_get(e, "data");
        if (strcmp(kind, "tool") == 0)
            assert_string_equal(sget_(data, "tool_call_id"), "call_1");
        if (strcmp(kind, "middleware") == 0)
            assert_null(json_object_get(json_object_get(e, "flightrec"), "error_code"));
        if (strcmp(kind, "provider") == 0 && json_object_get(e, "error") == NULL)
            assert_non_null(json_object_get(data, "response"));
    }
    char *dump = json_dumps(json_object_get(j, "events"), 0);
    assert_non_null(strstr(dump, "It is sunny in Paris."));
    free(dump);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/* A failed span of conversation conv-steps (trace 4bf9...) as an OTLP/JSON request. */
static char *
failed_span_request(const char *span_id, const char *op, const char *msg)
{
    json_t *req = json_pack(
        "{s:[{s:[{s:[{s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:{s:s}},{s:s,s:{s:s}}],s:{s:i,s:s}}]}]}]}",
        "resourceSpans", "scopeSpans", "spans", "traceId", "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId", span_id, "name", op, "startTimeUnixNano", "1771357445201000000",
        "endTimeUnixNano", "1771357445301000000", "attributes", "key", "gen_ai.operation.name",
        "value", "stringValue", op, "key", "gen_ai.conversation.id", "value", "stringValue",
        "conv-steps", "status", "code", 2, "message", msg);
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return s;
}

/*
 * A step (an agent span) that failed because of its model call, exported in
 * a later request than the call (its span ends last: a batch timer or a
 * per-span exporter between them), is one failure, in the call: the step
 * names the call (data.failed_in). A step failing otherwise keeps its error.
 */
static void
test_agent_otlp_step_fails_in_an_earlier_request(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int main_port = a->port;
    a->port = otlp_port(a);
    const char *json[] = {"Content-Type: application/json", NULL};
    char *reqs[] = {
        failed_span_request("00000000000000c1", "chat", "429 Rate limit reached"),
        failed_span_request("00000000000000a1", "invoke_agent", "429 Rate limit reached"),
        failed_span_request("00000000000000a2", "invoke_agent", "guardrail refused")};
    for (size_t i = 0; i < 3; i++) { /* one request after the other */
        assert_int_equal(http(a, "POST", "/v1/traces", json, reqs[i], strlen(reqs[i]), NULL, NULL),
                         200);
        free(reqs[i]);
    }
    a->port = main_port;
    json_t *j = get_json(a, "/v1/conversations/conv-steps", 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 2);
    json_t *e;
    size_t i, seen = 0;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        const char *span = json_string_value(json_object_get(e, "span_id"));
        const char *code =
            json_string_value(json_object_get(json_object_get(e, "flightrec"), "error_code"));
        const json_t *failed_in = json_object_get(json_object_get(e, "data"), "failed_in");
        if (strcmp(span, "00000000000000c1") == 0) {
            assert_string_equal(code, "provider.rate_limited");
        } else if (strcmp(span, "00000000000000a1") == 0) {
            assert_null(code);
            assert_string_equal(json_string_value(failed_in), "00000000000000c1");
        } else {
            assert_string_equal(code, "runtime.unknown");
            assert_null(failed_in);
        }
        seen++;
    }
    assert_int_equal(seen, 3);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/* The spans of big_export: chat calls of conversations conv-big-0..12, each with ~900 bytes of
   prompt (with ud, spans 2000 on of conversation ud); span 10 names trace 7a for conv-link, and
   span 1200, in the third part, is of that trace without naming a conversation; span 500 (a chat)
   and 600 (its step), in two parts, failed with one message; so did span 100 (a step, in the
   first part) and 1100 (its chat, in the third), the step first as when its instrumentation
   scope comes before its call's in the export. */
/* A span of big_fill that failed with msg in trace (every byte trace_byte) of conv: the chat
   call, or the agent step over it. */
static void
big_failing(struct t_pb_span *s, uint8_t trace_byte, const char *conv, bool call, const char *msg)
{
    memset(s->trace, trace_byte, sizeof s->trace);
    s->vals[2] = (char *)conv;
    s->vals[0] = call ? "chat" : "invoke_agent";
    s->status = 2;
    s->status_msg = msg;
}

static void
big_fill(size_t i, struct t_pb_span *s, void *ud)
{
    static char pads[26][901]; /* kept until the request is packed */
    static char convs[13][32];
    if (ud != NULL) /* other spans, all of conversation ud */
        i += 2000;
    char *pad = pads[i % 26], *conv = convs[i / 100 % 13];
    memset(pad, 'a' + (int)(i % 26), sizeof pads[0] - 1);
    snprintf(conv, sizeof convs[0], "conv-big-%u", (unsigned)(i / 100 % 13));
    snprintf(s->name, sizeof s->name, "chat %zu", i);
    s->trace[0] = 0x10;
    s->trace[15] = (uint8_t)i; /* a trace of its own, but for those below */
    s->trace[14] = (uint8_t)(i >> 8);
    s->span[0] = 0x20;
    s->span[6] = (uint8_t)(i >> 8);
    s->span[7] = (uint8_t)i;
    s->keys[0] = "gen_ai.operation.name";
    s->vals[0] = "chat";
    s->keys[1] = "gen_ai.system";
    s->vals[1] = "openai";
    s->keys[2] = "gen_ai.conversation.id";
    s->vals[2] = conv;
    s->keys[3] = "gen_ai.prompt";
    s->vals[3] = pad;
    s->nattr = 4;
    if (ud != NULL)
        s->vals[2] = (char *)ud;
    if (i == 10 || i == 1200) {
        memset(s->trace, 0x7a, sizeof s->trace);
        s->vals[2] = "conv-link";
        s->nattr = i == 10 ? 4 : 2; /* 1200 names no conversation */
    }
    if (i == 500 || i == 600)
        big_failing(s, 0x5f, "conv-fail", i == 500, "429 Rate limit reached");
    if (i == 100 || i == 1100)
        big_failing(s, 0x6e, "conv-fail-later", i == 1100,
                    "500 The server had an error while processing your request");
}

/*
 * A Collector's large protobuf export (1,300 spans, 1.3 MB: read out in
 * parts of 512 spans, agent/otlp/ingest.c) is one request all the same:
 * every span stored; a trace named in the first part takes a span of it in
 * the third; a step failing in the second part names the call that failed in
 * the first (data.failed_in) and is not a second error, nor is a step in the
 * first part whose call failed in the third. With room in the
 * queue for fewer than all of its spans, nothing of it is stored (413, as
 * for a body read whole), the room of the parts prepared is given back, and
 * the next request goes in.
 */
static void
test_agent_otlp_protobuf_large_export(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  queue_events: 1200\n  batch_events: 500\n", NULL);
    agent_start(a);
    int main_port = a->port;
    a->port = otlp_port(a);
    const size_t nscopes[1] = {1}, nspans[1] = {1300};
    size_t len;
    uint8_t *req = t_otlp_pb_layout(1, nscopes, nspans, big_fill, NULL, &len);
    assert_true(len > (1u << 20));
    const char *proto[] = {"Content-Type: application/x-protobuf", NULL};
    /* more spans than the queue holds: refused whole, when its third part does not fit */
    assert_int_equal(http(a, "POST", "/v1/traces", proto, (const char *)req, len, NULL, NULL), 413);
    assert_int_equal(sql_long(a->db, "SELECT count(*) FROM events", NULL, 0), 0);
    /* the 1,024 reserved for its first two parts were given back: 700 spans go in */
    const size_t fewer[1] = {700};
    size_t len700;
    uint8_t *req700 = t_otlp_pb_layout(1, nscopes, fewer, big_fill, "conv-room", &len700);
    assert_int_equal(http(a, "POST", "/v1/traces", proto, (const char *)req700, len700, NULL, NULL),
                     200);
    free(req700);
    assert_int_equal(count_events(a->db, "conv-room"), 700);
    a->port = main_port;
    assert_int_equal(agent_stop(a), 0);
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    main_port = a->port;
    a->port = otlp_port(a);
    assert_int_equal(http(a, "POST", "/v1/traces", proto, (const char *)req, len, NULL, NULL), 200);
    free(req);
    a->port = main_port;
    char conv[32];
    for (int c = 0; c < 13; c++) {
        snprintf(conv, sizeof conv, "conv-big-%d", c);
        assert_int_equal(count_events(a->db, conv),
                         c == 0 || c == 1 || c == 5 || c == 6 || c == 11 || c == 12 ? 99 : 100);
    }
    assert_int_equal(count_events(a->db, "conv-link"), 2);
    assert_int_equal(sql_long(a->db, "SELECT count(*) FROM events", NULL, 0), 2000);
    json_t *j = get_json(a, "/v1/conversations/conv-fail", 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 1);
    json_t *e;
    size_t i, seen = 0;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        const json_t *failed_in = json_object_get(json_object_get(e, "data"), "failed_in");
        if (strcmp(json_string_value(json_object_get(e, "span_id")), "2000000000000258") == 0)
            assert_string_equal(json_string_value(failed_in), "20000000000001f4");
        seen++;
    }
    assert_int_equal(seen, 2);
    json_decref(j);
    /* the step came a thousand spans before its call: counted once all the same */
    j = get_json(a, "/v1/conversations/conv-fail-later", 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 1);
    seen = 0;
    size_t steps = 0;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        const json_t *failed_in = json_object_get(json_object_get(e, "data"), "failed_in");
        if (strcmp(json_string_value(json_object_get(e, "span_id")), "2000000000000064") == 0) {
            assert_string_equal(json_string_value(failed_in), "200000000000044c");
            assert_null(json_object_get(e, "error"));
            steps++;
        }
        seen++;
    }
    assert_int_equal(seen, 2);
    assert_int_equal(steps, 1);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/* The spans of big_fill (ud as there) as an OTLP/JSON export of one resource; the span at
   dup (if any) names "name" twice. Caller frees. */
static char *
big_json(size_t n, const char *ud, size_t dup)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fputs("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
          "\"value\":{\"stringValue\":\"r0\"}}]},\"scopeSpans\":[{\"spans\":[",
          f);
    for (size_t i = 0; i < n; i++) {
        struct t_pb_span sp = {0};
        big_fill(i, &sp, (void *)ud);
        char trace[33], span[17];
        fr_hex_encode(sp.trace, 16, trace);
        fr_hex_encode(sp.span, 8, span);
        uint64_t start = (1771357445201ull + i) * 1000000ull;
        fprintf(f,
                "%s{\"traceId\":\"%s\",\"spanId\":\"%s\",\"name\":\"%s\",%s"
                "\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\",\"attributes\":[",
                i ? "," : "", trace, span, i == dup ? "first" : sp.name,
                i == dup ? "\"name\":\"second\"," : "", (unsigned long long)start,
                (unsigned long long)start + 5000000ull);
        for (size_t a = 0; a < sp.nattr; a++)
            fprintf(f, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":\"%s\"}}", a ? "," : "",
                    sp.keys[a], sp.vals[a]);
        fputs("]", f);
        if (sp.status != 0)
            fprintf(f, ",\"status\":{\"code\":%d,\"message\":\"%s\"}", sp.status, sp.status_msg);
        fputs("}", f);
    }
    fputs("]}]}]}", f);
    fclose(f);
    return out;
}

/*
 * The same export in OTLP/JSON (1.4 MB: read out in parts of 512 spans from
 * its simdjson document, agent/otlp/ingest.c) stores what the protobuf one
 * does; one whose span in the second part names a key twice is read whole
 * by jansson after all (OTLP's reader takes the last value) and stored all
 * the same, its spans counted once in /metrics.
 */
static void
test_agent_otlp_json_large_export(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int main_port = a->port;
    a->port = otlp_port(a);
    const char *json[] = {"Content-Type: application/json", NULL};
    char *body = big_json(1300, NULL, SIZE_MAX);
    assert_true(strlen(body) > (1u << 20));
    assert_int_equal(http(a, "POST", "/v1/traces", json, body, strlen(body), NULL, NULL), 200);
    free(body);
    body = big_json(1300, "conv-dup", 900);
    assert_int_equal(http(a, "POST", "/v1/traces", json, body, strlen(body), NULL, NULL), 200);
    free(body);
    a->port = main_port;
    /* each span counted once in /metrics: the first part of the one read whole again was not
       counted when it was read in parts (it was: 3,112) */
    char *metrics = NULL;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &metrics, NULL), 200);
    if (strstr(metrics, "flightrec_events_received_total{source=\"otlp\"} 2600\n") == NULL)
        fail_msg("received: %.60s",
                 strstr(metrics, "flightrec_events_received_total{source=\"otlp\"}"));
    free(metrics);
    assert_int_equal(count_events(a->db, "conv-big-7"), 100);
    assert_int_equal(count_events(a->db, "conv-link"), 2);
    assert_int_equal(count_events(a->db, "conv-dup"), 1300);
    assert_int_equal(sql_long(a->db, "SELECT count(*) FROM events", NULL, 0), 2600);
    json_t *j = get_json(a, "/v1/conversations/conv-fail", 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 1);
    json_decref(j);
    j = get_json(a, "/v1/conversations/conv-fail-later", 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "error_count")), 1);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/* One duration point of a GenAI call (delta temporality) with the given attributes. */
static void
metric_point(json_t *points, const char *system, const char *model)
{
    json_array_append_new(
        points, json_pack("{s:s,s:s,s:f,s:f,s:[{s:s,s:{s:s}},{s:s,s:{s:s}}]}", "timeUnixNano",
                          "1771357448000000000", "count", "1", "sum", 0.5, "max", 0.5, "attributes",
                          "key", "gen_ai.system", "value", "stringValue", system, "key",
                          "gen_ai.response.model", "value", "stringValue", model));
}

static char *
metrics_request(json_t *points)
{
    json_t *req = json_pack("{s:[{s:[{s:[{s:s,s:{s:i,s:o}}]}]}]}", "resourceMetrics",
                            "scopeMetrics", "metrics", "name", "gen_ai.client.operation.duration",
                            "histogram", "aggregationTemporality", 1, "dataPoints", points);
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return s;
}

/*
 * OTLP metric attributes are a producer's text like any other: an email or
 * a key given as provider or model is redacted before it becomes a rollup
 * key, a long one is cut, and distinct provider/model pairs past the cap
 * are counted under "other" (and in /metrics) instead of growing without
 * bound.
 */
static void
test_agent_otlp_metric_attributes_redacted_and_bounded(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    const char *json[] = {"Content-Type: application/json", NULL};
    json_t *points = json_array();
    metric_point(points, "sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE", "jane.doe@example.com");
    char *body = metrics_request(points), *out;
    assert_int_equal(http(a, "POST", "/v1/metrics", json, body, strlen(body), &out, NULL), 200);
    free(out);
    free(body);
    points = json_array();
    for (int i = 0; i < FR_OTLP_MAX_SERIES + 200; i++) {
        char model[32];
        snprintf(model, sizeof model, "m-%05d", i);
        metric_point(points, "openai", model);
    }
    body = metrics_request(points);
    assert_int_equal(http(a, "POST", "/v1/metrics", json, body, strlen(body), &out, NULL), 200);
    free(out);
    free(body);
    char *metrics;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &metrics, NULL), 200);
    /* the first request's pair took one of the slots */
    assert_non_null(strstr(metrics, "flightrec_otlp_metric_series_overflow_total 201\n"));
    free(metrics);
    assert_int_equal(agent_stop(a), 0);
    char *cmd = fr_asprintf("%s stats --db %s --by otel --limit 0", FR_BIN, a->db), *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_null(strstr(out, "Zq8XbN3k"));
    assert_null(strstr(out, "jane.doe"));
    assert_non_null(strstr(out, "[REDACTED:"));
    assert_non_null(strstr(out, "other"));
    assert_non_null(strstr(out, "m-00998"));
    assert_null(strstr(out, "m-01100"));
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(sql_long(a->db,
                              "SELECT count(DISTINCT k1 || '|' || k2) FROM rollups WHERE "
                              "dim = 'otel'",
                              NULL, 0),
                     FR_OTLP_MAX_SERIES + 1);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_otlp_traces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_sdk_transports_and_schedules, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_grpc_waits_for_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_grpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_compression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_grpc_streams_in_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_grpc_bodies_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_grpc_large_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_vercel_ai_sdk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_protobuf_large_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_json_large_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_step_fails_in_an_earlier_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_traceloop_and_openinference, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_metric_attributes_redacted_and_bounded,
                                        setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
