/*
 * tests/integration/test_agent_http.c - the real agent: POST /v1/events and the query API over
 * HTTP: per-line errors, auth, compression, limits, backpressure, the connection limit.
 */
#include "tests/integration/agent.h"

#include <grp.h>
#include <pwd.h>

#include "agent/api/api.h"

/* ---- tests ---- */

/* A large body's mapping is zeroed when its request is done and given to the next large
   body (no page faults and TLB flushes per request), never to two at once. */
static void
test_agent_body_mappings_reused(void **state)
{
    (void)state;
    fr_api_body_pool_release();
    struct fr_api_req a = {0}, b = {0}, c = {0}, small = {0};
    fr_api_req_body_alloc(&a, 200000);
    assert_true(a.mapped);
    assert_true(a.cap >= 200000);
    memset(a.body, 'A', 200000);
    a.len = 200000;
    char *first = a.body;
    fr_api_req_body_free(&a);
    fr_api_req_body_alloc(&b, 150000); /* the kept one is large enough */
    assert_ptr_equal(b.body, first);
    assert_true(b.cap >= 200000);
    size_t dirty = 0;
    for (size_t i = 0; i < 200000; i++)
        dirty += b.body[i] != 0;
    assert_int_equal(dirty, 0);        /* the raw body before it is gone */
    fr_api_req_body_alloc(&c, 150000); /* nothing kept now: a mapping of its own */
    assert_true(c.mapped);
    assert_ptr_not_equal(c.body, first);
    fr_api_req_body_alloc(&small, 1000); /* small bodies stay on the heap */
    assert_false(small.mapped);
    fr_api_req_body_free(&small);
    fr_api_req_body_free(&c);
    fr_api_req_body_free(&b);
    fr_api_body_pool_release();
}

/* flightrec_ingest_seconds_count of each phase, from /metrics (each phase must be there, its
   +Inf bucket equal to its count) */
static void
phase_counts(struct agent *a, const char *const *phases, uint64_t *counts)
{
    char *out;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    for (int i = 0; i < 3; i++) {
        char key[96], inf[128];
        snprintf(key, sizeof key, "flightrec_ingest_seconds_count{phase=\"%s\"} ", phases[i]);
        snprintf(inf, sizeof inf, "flightrec_ingest_seconds_bucket{phase=\"%s\",le=\"+Inf\"} ",
                 phases[i]);
        const char *k = strstr(out, key), *b = strstr(out, inf);
        assert_non_null(k);
        assert_non_null(b);
        counts[i] = strtoull(k + strlen(key), NULL, 10);
        assert_int_equal(strtoull(b + strlen(inf), NULL, 10), counts[i]);
    }
    free(out);
}

static void
test_agent_http_ingest_query_and_errors(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *out;
    const char *body =
        "{\"kind\":\"provider\",\"ts_ms\":1771357445100,\"conv_id\":\"h-1\","
        "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"ok\"}}\n"
        "{\"kind\":\"tool\",\"ts_ms\":\"soon\",\"conv_id\":\"h-1\"}\n"
        "\n"
        "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"h-1\","
        "\"data\":{\"name\":\"search\",\"result\":\"mail a.b@example.com\"}}\n";
    assert_int_equal(post(a, body, &out), 202);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    assert_int_equal(json_integer_value(json_object_get(e0, "line")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(e0, "error")), "ts_ms"));
    json_decref(j);
    /* a JSON array body; element numbers are the "lines" */
    assert_int_equal(post(a,
                          "[{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"h-2\"},"
                          "{\"kind\":\"nope\",\"ts_ms\":1771357445300}]",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":1"));
    assert_non_null(strstr(out, "\"line\":2"));
    assert_null(strstr(out, "warnings")); /* none: the answer as before */
    free(out);

    /* read back: the conversation view, redacted */
    j = get_json(a, "/v1/conversations/h-1", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "event_count")), 2);
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, "a.b@example.com"));
    assert_non_null(strstr(dump, "[REDACTED:email]"));
    free(dump);
    json_decref(j);
    j = get_json(a, "/v1/conversations/nope", 404);
    assert_null(json_object_get(j, "did_you_mean"));
    json_decref(j);
    j = get_json(a, "/v1/conversations/h-", 404); /* an id cut short: the ones it starts */
    assert_string_equal(json_string_value(json_object_get(j, "error")), "no conversation h-");
    assert_int_equal(json_array_size(json_object_get(j, "did_you_mean")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "did_you_mean"), 0)),
                        "h-2");
    json_decref(j);
    j = get_json(a, "/v1/conversations?limit=1", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    const char *cur = json_string_value(json_object_get(j, "next_cursor"));
    assert_non_null(cur);
    char *path = fr_asprintf("/v1/conversations?limit=1&cursor=%s", cur);
    json_t *j2 = get_json(a, path, 200);
    free(path);
    assert_int_equal(json_array_size(json_object_get(j2, "conversations")), 1);
    assert_string_not_equal(
        json_string_value(
            json_object_get(json_array_get(json_object_get(j, "conversations"), 0), "conv_id")),
        json_string_value(
            json_object_get(json_array_get(json_object_get(j2, "conversations"), 0), "conv_id")));
    assert_true(json_is_null(json_object_get(j2, "next_cursor")));
    json_decref(j);
    json_decref(j2);
    j = get_json(a, "/v1/conversations?provider=openai", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    json_decref(j);
    j = get_json(a, "/v1/conversations?prefix=h-", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 2);
    json_decref(j);
    j = get_json(a, "/v1/conversations?prefix=h-2", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "conversations"), 0), "conv_id")),
                        "h-2");
    json_decref(j);
    assert_int_equal(post(a,
                          "{\"kind\":\"provider\",\"ts_ms\":1771357445400,\"conv_id\":\"h-3\","
                          "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\"},"
                          "\"error\":{\"http_status\":429,\"message\":\"slow down\"}}\n",
                          NULL),
                     202);
    j = get_json(a, "/v1/errors?by=code", 200);
    json_t *g0 = json_array_get(json_object_get(j, "groups"), 0);
    assert_string_equal(json_string_value(json_object_get(g0, "key")), "provider.rate_limited");
    assert_int_equal(json_integer_value(json_object_get(g0, "count")), 1);
    json_decref(j);
    /* look-ups by trace, request or session id (one at a time) */
    static const char traced[] =
        "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"tr-a\",\"trace_id\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"request_id\":\"req-1\"}\n"
        "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"tr-b\",\"trace_id\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n";
    assert_int_equal(post(a, traced, NULL), 202);
    j = get_json(a, "/v1/events?trace_id=4bf92f3577b34da6a3ce929d0e0e4736", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
    json_decref(j);
    j = get_json(a, "/v1/events?request_id=req-1", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
    json_decref(j);
    json_decref(get_json(a, "/v1/events?request_id=req-1&session_id=x", 400));
    j = get_json(a, "/v1/errors?class=provider", 200);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    /* one name for one thing: error_class as on /v1/events */
    j = get_json(a, "/v1/errors?error_class=provider", 200);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    json_decref(get_json(a, "/v1/errors?error_class=nonsense", 400));
    j = get_json(a, "/v1/errors?by=colour", 400);
    json_decref(j);
    j = get_json(a, "/v1/conversations?error_class=provider", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    json_decref(j);
    j = get_json(a, "/v1/events?conv_id=h-1&kind=tool", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
    json_decref(j);
    /* invalid parameters: 400 with the reason */
    j = get_json(a, "/v1/conversations?limit=0", 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "limit"));
    json_decref(j);
    j = get_json(a, "/v1/conversations?colour=red", 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "colour"));
    json_decref(j);
    j = get_json(a, "/v1/events?since=yesterday-ish", 400);
    json_decref(j);
    /* another spelling of an envelope field: stored as sent, and said in the answer, the log
       and the metrics, so the producer learns why its events belong to no conversation */
    assert_int_equal(
        post(a,
             "{\"kind\":\"tool\",\"ts_ms\":1771357445400,\"conv_id\":\"h-9\"}\n"
             "{\"kind\":\"tool\",\"ts_ms\":1771357445401,\"conversationId\":\"h-9\"}\n",
             &out),
        202);
    j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "warnings")), 1);
    json_t *w0 = json_array_get(json_object_get(j, "warnings"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "line")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(w0, "warning")),
                           "conversationId: not an envelope field (kept as an attribute); did you "
                           "mean conv_id?"));
    json_decref(j);
    wait_log(a,
             "warn http: 1 event(s) stored with a warning (a misnamed or missing envelope "
             "field, a ts_ms ahead of the clock, a value kept in another form, a duration over a "
             "day), e.g. line 2: "
             "conversationId");
    assert_int_equal(count_events(a->db, "h-9"), 1);
    /* a Go uint64 past 2^63 in data, NDJSON and in an array: stored as a string of its digits
       with a warning, not refused with the whole event */
    assert_int_equal(post(a,
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445402,\"conv_id\":\"h-wide\","
                          "\"data\":{\"hash\":14695981039346656037}}\n",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":0"));
    /* the warning names the field: its path in the event, in the text and on its own */
    assert_non_null(strstr(out, "\"warning\":\"data.hash: a number JSON readers cannot hold"));
    assert_non_null(strstr(out, "\"field\":\"data.hash\""));
    free(out);
    assert_int_equal(post(a,
                          "[{\"kind\":\"tool\",\"ts_ms\":1771357445403,\"conv_id\":\"h-wide\","
                          "\"data\":{\"hash\":18446744073709551615}},"
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445404,\"conv_id\":\"h-wide\"}]",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":2,\"rejected\":0"));
    assert_non_null(
        strstr(out, "{\"line\":1,\"warning\":\"data.hash: a number JSON readers cannot hold"));
    assert_null(strstr(out, "\"line\":2,\"warning\""));
    free(out);
    /* half of an emoji, as JSON.stringify writes a stream delta cut inside one */
    assert_int_equal(post(a,
                          "{\"kind\":\"provider\",\"ts_ms\":1771357445405,\"conv_id\":\"h-wide\","
                          "\"data\":{\"delta\":\"ok \\ud83d\"}}\n",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":0"));
    assert_non_null(strstr(out, "\"warning\":\"data.delta: a string held half of a character"));
    free(out);
    /* Latin-1 text from a C producer, and a string cut by a byte count inside a character */
    assert_int_equal(post(a,
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445406,\"conv_id\":\"h-wide\","
                          "\"data\":{\"note\":\"caf\xe9 \xe2\x82\"}}\n",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":0"));
    assert_non_null(strstr(out, "\"warning\":\"data.note: a string held bytes that are not UTF-8"));
    assert_non_null(strstr(out, "\"field\":\"data.note\""));
    free(out);
    j = get_json(a, "/v1/conversations/h-wide", 200);
    out = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(out, "\"hash\":\"14695981039346656037\""));
    assert_non_null(strstr(out, "\"hash\":\"18446744073709551615\""));
    assert_non_null(strstr(out, "\"delta\":\"ok \xef\xbf\xbd\"")); /* U+FFFD */
    assert_non_null(strstr(out, "\"note\":\"caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\""));
    free(out);
    json_decref(j);
    char *many = NULL; /* more than the answer lists */
    for (int i = 0; i < 102; i++) {
        char *line = fr_asprintf("%s{\"kind\":\"tool\",\"ts_ms\":%lld,\"traceId\":\"t%d\"}\n",
                                 many ? many : "", 1771357445500LL + i, i);
        free(many);
        many = line;
    }
    assert_int_equal(post(a, many, &out), 202);
    free(many);
    j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 102);
    assert_int_equal(json_array_size(json_object_get(j, "warnings")), 100);
    assert_true(json_is_true(json_object_get(j, "warnings_truncated")));
    json_decref(j);
    /* a body as Windows tools write it: a UTF-8 byte order mark, CRLF line ends, a line of
       only a '\r'; and a JSON array after a byte order mark */
    assert_int_equal(post(a,
                          "\xef\xbb\xbf{\"kind\":\"tool\",\"ts_ms\":1771357445600,"
                          "\"conv_id\":\"bom-1\"}\r\n\r\n"
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445601,\"conv_id\":\"bom-1\"}\r\n",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":2,\"rejected\":0"));
    free(out);
    assert_int_equal(post(a,
                          "\xef\xbb\xbf [{\"kind\":\"tool\",\"ts_ms\":1771357445602,"
                          "\"conv_id\":\"bom-1\"}]",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":0"));
    free(out);
    assert_int_equal(post(a, "\xef\xbb\xbf[{\"kind\":\"tool\",]", &out), 202);
    /* a broken element: its line, and the byte counted from the element's first */
    assert_non_null(strstr(out, "line 1: invalid JSON at byte 16 of the element"));
    free(out);
    assert_int_equal(count_events(a->db, "bom-1"), 3);
    /* an array with one element broken and its end cut off: the others stored */
    assert_int_equal(post(a,
                          "[{\"kind\":\"tool\",\"ts_ms\":1771357445603,\"conv_id\":\"arr-1\"},\n"
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445604,\"conv_id\":},\n"
                          "{\"kind\":\"tool\",\"ts_ms\":1771357445605,\"conv_id\":\"arr-1\"},\n",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":2,\"rejected\":2"));
    assert_non_null(strstr(out, "{\"line\":2,\"error\":\"line 2: invalid JSON"));
    assert_non_null(strstr(out, "{\"line\":4,\"error\":\"the array ends without its ']'"));
    free(out);
    assert_int_equal(count_events(a->db, "arr-1"), 2);
    /* a long message sent again with the next turn is known clean, not scanned again: the
       text known clean grows by it (and a few short texts a worker knew) */
    static const char msg[] = "Which gate does the evening flight to Porto leave from, and is "
                              "there a lounge near it where I can wait with two children and a "
                              "dog? We land from Madrid an hour before, at the other terminal.";
    uint64_t known[3];
    for (int turn = 0; turn < 3; turn++) {
        assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
        const char *k = strstr(out, "flightrec_redaction_text_bytes_total{by=\"known_clean\"} ");
        assert_non_null(k);
        assert_non_null(strstr(out, "flightrec_redaction_text_bytes_total{by=\"scanned\"} "));
        known[turn] = strtoull(strchr(k, '}') + 2, NULL, 10);
        free(out);
        if (turn == 2)
            break;
        char ev[768];
        snprintf(ev, sizeof ev,
                 "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"hist-1\",\"data\":{"
                 "\"provider\":\"openai\",\"request\":{\"messages\":[{\"role\":\"user\","
                 "\"content\":\"%s\"}%s]}}}\n",
                 1771357445700LL + turn, msg,
                 turn ? ",{\"role\":\"assistant\",\"content\":\"Gate 12.\"}" : "");
        assert_int_equal(post(a, ev, &out), 202);
        free(out);
    }
    assert_true(known[1] - known[0] < sizeof msg);
    assert_true(known[2] - known[1] >= sizeof msg);
    /* redaction is counted per detector and action */
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_redaction_hits_total{detector=\"email\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_redaction_actions_total{action=\"scan\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_events_rejected_total{reason=\"wrong_type\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_events_misnamed_total{field=\"conv_id\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_events_misnamed_total{field=\"trace_id\"} 102\n"));
    free(out);
    /* each request's time in each phase: one request more is one more of each */
    static const char *const phases[] = {"admission", "prepare", "commit"};
    uint64_t before[3], after[3];
    phase_counts(a, phases, before);
    assert_int_equal(
        post(a, "{\"kind\":\"tool\",\"ts_ms\":1771357445800,\"conv_id\":\"ph-1\"}\n", &out), 202);
    assert_non_null(strstr(out, "\"accepted\":1"));
    free(out);
    phase_counts(a, phases, after);
    for (int i = 0; i < 3; i++)
        assert_int_equal(after[i] - before[i], 1);
    assert_int_equal(agent_stop(a), 0);
}

static void
test_agent_auth_compression_and_limits(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  auth_token: t0ken-Secret-0123456789\n  max_body_bytes: 4096\n", NULL, NULL);
    agent_start(a);
    const char *auth[] = {"Authorization: Bearer t0ken-Secret-0123456789", NULL};
    const char *wrong[] = {"Authorization: Bearer t0ken-secret", NULL};
    char *body = events("z-1", 0, 5);
    assert_int_equal(http(a, "POST", "/v1/events", NULL, body, strlen(body), NULL, NULL), 401);
    assert_int_equal(http(a, "POST", "/v1/events", wrong, body, strlen(body), NULL, NULL), 401);
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL), 401);
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 202);

    /* zstd */
    size_t bound = ZSTD_compressBound(strlen(body));
    char *z = fr_malloc(bound);
    size_t zn = ZSTD_compress(z, bound, body, strlen(body), 3);
    const char *zh[] = {auth[0], "Content-Encoding: zstd", NULL};
    free(body);
    body = events("z-2", 10, 5);
    zn = ZSTD_compress(z, bound, body, strlen(body), 3);
    char *out;
    assert_int_equal(http(a, "POST", "/v1/events", zh, z, zn, &out, NULL), 202);
    assert_non_null(strstr(out, "\"accepted\":5"));
    free(out);
    assert_int_equal(http(a, "POST", "/v1/events", zh, "garbage!", 8, NULL, NULL), 400);
    free(z);
    /* gzip; deflate, zlib-wrapped (as HTTP defines it) and raw (as some clients send it);
       snappy, the block format as HTTP names it and the framing format the Collector sent
       under that name, and x-snappy-framed; lz4 frames */
    static const struct {
        const char *conv, *how, *header;
    } zips[] = {{"z-3", "gzip", "Content-Encoding: gzip"},
                {"z-5", "zlib", "Content-Encoding: deflate"},
                {"z-6", "raw", "Content-Encoding: deflate"},
                {"z-7", "snappy", "Content-Encoding: snappy"},
                {"z-8", "snappy-framed", "Content-Encoding: snappy"},
                {"z-9", "snappy-framed", "Content-Encoding: x-snappy-framed"},
                {"z-10", "lz4", "Content-Encoding: LZ4"},
                /* gzip or zstd with the header forgotten (or identity): told by the magic */
                {"z-12", "gzip", NULL},
                {"z-13", "zstd", "Content-Encoding: identity"}};
    size_t gn = 0;
    uint8_t *gz = NULL;
    for (size_t i = 0; i < sizeof zips / sizeof *zips; i++) {
        free(body);
        body = events(zips[i].conv, 20 + 10 * (int)i, 5);
        free(gz);
        gz = compress_as(zips[i].how, body, strlen(body), &gn);
        const char *gh[] = {auth[0], zips[i].header, NULL};
        assert_int_equal(http(a, "POST", "/v1/events", gh, gz, gn, &out, NULL), 202);
        assert_non_null(strstr(out, "\"accepted\":5"));
        free(out);
    }
    const char *bh[] = {auth[0], "Content-Encoding: br", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", bh, gz, gn, &out, NULL), 415);
    assert_non_null(strstr(out, "Content-Encoding must be zstd, gzip, deflate, snappy, "
                                "x-snappy-framed, lz4 or identity"));
    free(out);
    free(gz);
    /* a snappy chunk whose checksum does not match what it inflates to: refused whole, naming
       the encoding; a block whose header claims more than the limit: refused before it is
       inflated; a truncated lz4 frame */
    free(body);
    body = events("z-11", 80, 5);
    gz = compress_as("snappy-framed", body, strlen(body), &gn);
    gz[20 + 8] ^= 0x20; /* a byte of the first chunk's data, past its header and checksum */
    const char *sh[] = {auth[0], "Content-Encoding: x-snappy-framed", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", sh, gz, gn, &out, NULL), 400);
    assert_non_null(strstr(out, "body does not decompress as Content-Encoding x-snappy-framed"));
    free(out);
    free(gz);
    const uint8_t bomb[] = {0xff, 0xff, 0xff, 0x7f, 0x00}; /* a varint length of 256 MiB */
    const char *bmh[] = {auth[0], "Content-Encoding: snappy", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", bmh, bomb, sizeof bomb, NULL, NULL), 413);
    gz = compress_as("lz4", body, strlen(body), &gn);
    const char *lh[] = {auth[0], "Content-Encoding: lz4", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", lh, gz, gn - 6, &out, NULL), 400);
    assert_non_null(strstr(out, "body does not decompress as Content-Encoding lz4"));
    free(out);
    free(gz);
    /* over the body limit: 413, plain or once decompressed */
    free(body);
    body = events("z-4", 30, 60);
    assert_true(strlen(body) > 4096);
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 413);
    z = fr_malloc(ZSTD_compressBound(strlen(body)));
    zn = ZSTD_compress(z, ZSTD_compressBound(strlen(body)), body, strlen(body), 3);
    assert_true(zn < 4096);
    assert_int_equal(http(a, "POST", "/v1/events", zh, z, zn, NULL, NULL), 413);
    free(z);
    free(body);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "z-1"), 5);
    assert_int_equal(count_events(a->db, "z-2"), 5);
    assert_int_equal(count_events(a->db, "z-3"), 5);
    assert_int_equal(count_events(a->db, "z-5"), 5);
    assert_int_equal(count_events(a->db, "z-6"), 5);
    for (int i = 7; i <= 10; i++) {
        char conv[8];
        snprintf(conv, sizeof conv, "z-%d", i);
        assert_int_equal(count_events(a->db, conv), 5);
    }
    assert_int_equal(count_events(a->db, "z-11"), 0);
    assert_int_equal(count_events(a->db, "z-12"), 5);
    assert_int_equal(count_events(a->db, "z-13"), 5);
    assert_int_equal(count_events(a->db, "z-4"), 0);
    /* owner-only files */
    struct stat st;
    assert_int_equal(stat(a->db, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
}

/*
 * Request bodies held at once are bounded (http.max_inflight_bytes): while a
 * slow producer's upload holds the budget, another request is answered 429
 * with Retry-After at once, nothing of it parsed or stored; once the first
 * is done the retry is taken. One request is always taken, whatever its size
 * (a 190 kB one, held in a mapping of its own).
 */
static void
test_agent_inflight_bodies_bounded(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  max_inflight_bytes: 65536\n", NULL, NULL);
    agent_start(a);
    /* 60,000 bytes of events, blank lines making up the rest */
    char *evs = events("slow", 0, 100);
    size_t blen = 60000;
    assert_true(strlen(evs) < blen);
    char *body = fr_malloc(blen);
    memset(body, '\n', blen);
    memcpy(body, evs, strlen(evs));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char head[200];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                      blen);
    assert_int_equal(send(fd, head, (size_t)hn, 0), hn);
    assert_int_equal(send(fd, body, 100, 0), 100); /* and then a pause */
    /* the agent holds the slow request's 60,000 bytes (its headers said so) */
    for (int i = 0; i < 500; i++) {
        char *m = NULL;
        http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
        bool held = m != NULL && strstr(m, "flightrec_http_inflight_bytes 60000\n") != NULL;
        free(m);
        if (held)
            break;
        usleep(10000);
    }
    char *quick = events("quick", 0, 100), *out = NULL; /* about 10 kB: with those, over */
    struct hdrs hd = {0};
    assert_int_equal(http(a, "POST", "/v1/events", NULL, quick, strlen(quick), &out, &hd), 429);
    assert_int_equal(atoi(hd.retry_after), 1);
    assert_non_null(strstr(out, "max_inflight_bytes"));
    free(out);
    assert_int_equal(count_events(a->db, "quick"), 0); /* nothing of it */
    /* the slow upload ends: taken */
    for (size_t at = 100; at < blen;) {
        ssize_t w = send(fd, body + at, blen - at, 0);
        assert_true(w > 0);
        at += (size_t)w;
    }
    char resp[512] = "";
    size_t got = 0;
    for (ssize_t r;
         got < sizeof resp - 1 && (r = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0;) {
        got += (size_t)r;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\n") != NULL)
            break;
    }
    assert_non_null(strstr(resp, " 202 "));
    close(fd);
    /* and the refused one, retried */
    assert_int_equal(post(a, quick, NULL), 202);
    /* a body past 128 KiB has a mapping of its own (not heap a thread's arena keeps): taken
       whole, and its bytes given back to the budget once its events are prepared */
    char *big = events("big", 0, 1500);
    assert_true(strlen(big) > 128 * 1024);
    assert_int_equal(post(a, big, NULL), 202);
    char *m = NULL;
    http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
    assert_non_null(strstr(m, "flightrec_http_inflight_bytes 0\n"));
    free(m);
    free(big);
    /* without Content-Length (chunked), the body grows as it comes: taken whole too */
    char *ch = events("chunked", 0, 50);
    size_t cl = strlen(ch), half = cl / 2;
    char *req = fr_asprintf("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                            half, (int)half, ch, cl - half, ch + half);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(send(cfd, req, strlen(req), 0), (ssize_t)strlen(req));
    char cresp[512] = "";
    for (size_t cgot = 0; cgot < sizeof cresp - 1 && strstr(cresp, "\r\n\r\n") == NULL;) {
        ssize_t r = recv(cfd, cresp + cgot, sizeof cresp - 1 - cgot, 0);
        assert_true(r > 0);
        cgot += (size_t)r;
        cresp[cgot] = '\0';
    }
    assert_non_null(strstr(cresp, " 202 "));
    close(cfd);
    free(req);
    free(ch);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "slow"), 100);
    assert_int_equal(count_events(a->db, "quick"), 100);
    assert_int_equal(count_events(a->db, "big"), 1500);
    assert_int_equal(count_events(a->db, "chunked"), 50);
    free(quick);
    free(body);
    free(evs);
}

/*
 * A full queue answers 429 with Retry-After (at once with http.queue_wait 0),
 * stores nothing of that request, loses nothing else.
 */
static void
test_agent_backpressure_429_loses_nothing(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  queue_wait: 0s\n",
                 "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 20000\n", NULL);
    agent_start(a);
    /* the database's write lock held, a first request's 9 events wait in the queue (90%:
       not ready) */
    struct held_queue q;
    queue_hold(a, &q, "b-1", 9, NULL);
    char *second = events("b-2", 100, 8), *out;
    struct hdrs hd = {0};
    long st = http(a, "POST", "/v1/events", NULL, second, strlen(second), &out, &hd);
    assert_int_equal(st, 429);
    assert_int_equal(atoi(hd.retry_after), 1);
    assert_non_null(strstr(out, "nothing of this request was stored"));
    free(out);
    /* the OTLP receiver answers the same way (429 + Retry-After, as OTLP exporters expect) */
    static const char spans[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"10f067aa0ba902b7\","
        "\"startTimeUnixNano\":\"1771357445000000000\",\"endTimeUnixNano\":"
        "\"1771357446000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
        "\"stringValue\":\"openai\"}}]},"
        "{\"traceId\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"10f067aa0ba902b8\","
        "\"startTimeUnixNano\":\"1771357446000000000\",\"endTimeUnixNano\":"
        "\"1771357447000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
        "\"stringValue\":\"openai\"}}]}]}]}]}";
    const char *json[] = {"Content-Type: application/json", NULL};
    hd.retry_after[0] = '\0';
    assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, &hd), 429);
    assert_int_equal(atoi(hd.retry_after), 1);
    free(out);
    /* readiness reflects the full queue */
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, NULL, NULL), 503);
    long first = queue_release(&q);
    if (first != 202) { /* say what the agent saw, for the next reader of a failure */
        char *log = NULL;
        size_t len;
        if (fr_read_file(a->log, &log, &len, NULL) == FR_OK)
            fprintf(stderr, "the agent's log:\n%s\n", log);
        free(log);
    }
    assert_int_equal(first, 202);
    /* the client retries the refused request */
    assert_int_equal(post(a, second, NULL), 202);
    assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, NULL), 200);
    free(out);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "5bf92f3577b34da6a3ce929d0e0e4736"), 2);
    assert_int_equal(count_events(a->db, "b-1"), 9);
    assert_int_equal(count_events(a->db, "b-2"), 8);
    free(second);
}

/*
 * Admission at the headers (http.queue_wait): a POST arriving while the
 * queue has no room for it waits, its body unread (counted in
 * flightrec_http_queue_waiting), and is taken once a commit frees the room,
 * instead of a 429 its producer would have to retry.
 */
static void
test_agent_queue_wait_admits_when_room_frees(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  queue_wait: 30s\n",
                 "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 20000\n", NULL);
    agent_start(a);
    struct held_queue q;
    queue_hold(a, &q, "qw-1", 10, NULL); /* the whole queue, its commit held */
    struct bg_post second = {a, events("qw-2", 100, 8), 0, NULL};
    pthread_t t;
    pthread_create(&t, NULL, bg_post_main, &second);
    wait_metric(a, "\nflightrec_http_queue_waiting 1\n");
    assert_int_equal(queue_release(&q), 202);
    pthread_join(t, NULL);
    assert_int_equal(second.status, 202); /* taken once the room was free: no 429 */
    char *m = NULL;
    http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
    assert_non_null(strstr(m, "\nflightrec_http_queue_waiting 0\n"));
    assert_null(strstr(m, "flightrec_http_responses_total{code=\"429\"}"));
    free(m);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "qw-1"), 10);
    assert_int_equal(count_events(a->db, "qw-2"), 8);
    free(second.body);
}

/*
 * One request holds at most what the ingest queue holds: admission comes
 * before parsing and redaction, so a small compressed body that expands to
 * many thousands of tiny events is refused (413, nothing stored) instead of
 * being prepared whole in memory; a request that fits is accepted whole.
 */
static void
test_agent_request_bounded_by_queue(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  queue_events: 100\n  batch_events: 50\n", NULL);
    agent_start(a);
    /* 20,000 tiny valid events, zstd-compressed to a few KiB */
    char *body = events("flood", 0, 20000);
    size_t bound = ZSTD_compressBound(strlen(body));
    char *z = fr_malloc(bound);
    size_t zn = ZSTD_compress(z, bound, body, strlen(body), 19);
    assert_false(ZSTD_isError(zn));
    assert_true(zn < strlen(body) / 10);
    const char *zh[] = {"Content-Encoding: zstd", NULL};
    char *out;
    assert_int_equal(http(a, "POST", "/v1/events", zh, z, zn, &out, NULL), 413);
    assert_non_null(strstr(out, "20000 events in one request"));
    assert_non_null(strstr(out, "storage.queue_events"));
    free(out);
    /* a JSON array is counted by its elements */
    json_t *arr = json_array();
    for (int i = 0; i < 101; i++) {
        char id[32];
        snprintf(id, sizeof id, "arr-%d", i);
        json_array_append_new(arr,
                              json_pack("{s:s,s:s,s:s,s:I,s:{s:s}}", "kind", "tool", "conv_id",
                                        "arr", "event_id", id, "ts_ms",
                                        (json_int_t)1771357445000 + i, "data", "name", "search"));
    }
    char *arrs = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    assert_int_equal(http(a, "POST", "/v1/events", NULL, arrs, strlen(arrs), &out, NULL), 413);
    assert_non_null(strstr(out, "101 events in one request"));
    free(out);
    free(arrs);
    /* what fits is taken whole; blank lines are not counted as events */
    char *fits = events("fits", 0, 100), *padded = NULL;
    size_t fl = strlen(fits);
    padded = fr_malloc(fl * 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i < fl; i++) {
        padded[k++] = fits[i];
        if (fits[i] == '\n')
            padded[k++] = '\n';
    }
    padded[k] = '\0';
    assert_int_equal(http(a, "POST", "/v1/events", NULL, padded, k, &out, NULL), 202);
    assert_non_null(strstr(out, "\"accepted\":100"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "flood"), 0);
    assert_int_equal(count_events(a->db, "arr"), 0);
    assert_int_equal(count_events(a->db, "fits"), 100);
    free(padded);
    free(fits);
    free(z);
    free(body);
}

/* http.max_connections: connections past it are closed at once, never queued
 * without bound; the ones already in keep working, and room comes back. */
/* A keep-alive connection that has been served once: the server holds it, idle. */
static int
held_connection(struct agent *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)a->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "200"));
    return fd;
}

/*
 * With every request connection taken, health and metrics still answer (a
 * reserve), a query gets 503 at once instead of waiting in the backlog, and
 * a flood of connections that never send a byte does not keep /healthz from
 * answering.
 */
static void
test_agent_connection_limit(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  max_connections: 2\n", NULL, NULL);
    agent_start(a);
    int held[2];
    for (int i = 0; i < 2; i++)
        held[i] = held_connection(a);
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, NULL, NULL), 200);
    char *out = NULL;
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, "connection limit"));
    free(out);
    /* 40 connections opened and never used */
    int idle[40];
    for (int i = 0; i < 40; i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)a->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(connect(idle[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    for (int i = 0; i < 40; i++)
        close(idle[i]);
    for (int i = 0; i < 2; i++)
        close(held[i]);
    /* the closes reach the server asynchronously: queries are served again soon */
    long st = 0;
    for (int i = 0; i < 500 && st != 200; i++) {
        st = http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL);
        if (st != 200)
            usleep(10000);
    }
    assert_int_equal(st, 200);
    assert_int_equal(agent_stop(a), 0);
}

/*
 * Any bytes in a query string or path get an answer, never a crash: bad
 * UTF-8 in a parameter name, value or conversation id, and a long name
 * whose echo would cut a character in half. Every answer is valid JSON.
 */
static void
test_agent_hostile_query_strings_answered(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    struct {
        const char *path;
        long want;
    } cases[] = {
        {"/v1/events?since=%ff", 400},
        {"/v1/events?%ff=1", 400},
        {"/v1/conversations/%ff%fe", 404},
        {"/v1/conversations?cursor=%ff%00", 400},
        {"/v1/errors?class=%c3", 400},
        {"/v1/events?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%C3%A9=1", 400},
        {"/v1/events?since=2026-02-18&until=2026-02-17", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        long st = http(a, "GET", cases[i].path, NULL, NULL, 0, &out, NULL);
        if (st != cases[i].want)
            fail_msg("%s: status %ld, want %ld (%s)", cases[i].path, st, cases[i].want,
                     out ? out : "");
        json_error_t e;
        json_t *j = json_loads(out, 0, &e);
        if (j == NULL || !json_is_string(json_object_get(j, "error")))
            fail_msg("%s: the answer is not a JSON error: %s", cases[i].path, out);
        json_decref(j);
        free(out);
    }
    /* still serving */
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(agent_stop(a), 0);
}

/* The OTLP listener is for exporters: it never serves reads or the wire-format ingest. */
static void
test_agent_otlp_listener_serves_only_otlp(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    assert_int_equal(post(a, "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"o\"}", NULL),
                     202);
    int main_port = a->port, otlp = otlp_port(a);
    a->port = otlp;
    char *out = NULL;
    assert_int_equal(http(a, "GET", "/v1/conversations/o", NULL, NULL, 0, &out, NULL), 404);
    assert_null(strstr(out, "\"events\""));
    assert_non_null(strstr(out, "OTLP listener"));
    free(out);
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL), 404);
    assert_int_equal(http(a, "GET", "/v1/events", NULL, NULL, 0, NULL, NULL), 404);
    assert_int_equal(post(a, "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"x\"}", NULL),
                     404);
    const char *json[] = {"Content-Type: application/json", NULL};
    assert_int_equal(
        http(a, "POST", "/v1/traces", json, otlp_traces, strlen(otlp_traces), NULL, NULL), 200);
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    a->port = main_port;
    assert_int_equal(http(a, "GET", "/v1/conversations/o", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(agent_stop(a), 0);
}

/* Runs fn(arg) in a child process that dropped to the user nobody; its result (-1 on failure). */
static long
as_nobody(long (*fn)(void *arg), void *arg)
{
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long st = -1;
        if (setgroups(0, NULL) == 0 && setgid(pw->pw_gid) == 0 && setuid(pw->pw_uid) == 0)
            st = fn(arg);
        if (write(fds[1], &st, sizeof st) != sizeof st)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    long st = -1;
    if (read(fds[0], &st, sizeof st) != sizeof st)
        st = -1;
    close(fds[0]);
    int ws;
    waitpid(pid, &ws, 0);
    return st;
}

struct nobody_req {
    struct agent *a;
    int port;
    const char *method, *path, *body;
};

static long
nobody_http(void *arg)
{
    struct nobody_req *r = arg;
    r->a->port = r->port;
    return http(r->a, r->method, r->path, NULL, r->body, r->body ? strlen(r->body) : 0, NULL, NULL);
}

/* One request made by another local user (nobody) with libcurl; its status (-1 on failure). */
static long
http_as_nobody(struct agent *a, int port, const char *method, const char *path, const char *body)
{
    struct nobody_req r = {a, port, method, path, body};
    return as_nobody(nobody_http, &r);
}

static size_t
grpc_status_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    if (strncasecmp(ptr, "grpc-status: ", 13) == 0)
        *(long *)ud = atol(ptr + 13);
    return size * nmemb;
}

/* An OTLP/gRPC trace export (one empty request message) with libcurl over HTTP/2 (h2c, prior
   knowledge, as gRPC clients connect); the grpc-status, -1 on failure. */
static long
grpc_export(void *arg)
{
    long st = -1;
    CURL *c = curl_easy_init();
    char *url = fr_asprintf(
        "http://127.0.0.1:%d/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        *(int *)arg);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/grpc");
    hl = curl_slist_append(hl, "TE: trailers");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "\0\0\0\0\0");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 5L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grpc_status_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    struct buf b = {fr_calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_perform(c);
    free(b.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
    return st;
}

/*
 * Without a token, other local users reach nothing: the queries, ingest and
 * the OTLP receiver answer 403 to a process of another user (the kernel's
 * socket table says who owns the peer's end), health still answers; the
 * agent's own user is served. With a token, holding it is what counts; with
 * http.local_users: any, every local user is served.
 */
static void
test_agent_other_local_users_refused(void **state)
{
    struct agent *a = *state;
    if (getuid() != 0 || getpwnam("nobody") == NULL) {
        print_message("SKIPPED: needs root to act as another user (nobody)\n");
        skip();
    }
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int main_port = a->port, otlp = otlp_port(a);
    assert_int_equal(
        post(a, "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"mine\"}", NULL), 202);
    static const char ev[] = "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"theirs\"}";
    assert_int_equal(http_as_nobody(a, main_port, "GET", "/v1/conversations/mine", NULL), 403);
    assert_int_equal(http_as_nobody(a, main_port, "GET", "/v1/events?conv_id=mine", NULL), 403);
    assert_int_equal(http_as_nobody(a, main_port, "POST", "/v1/events", ev), 403);
    assert_int_equal(http_as_nobody(a, otlp, "POST", "/v1/traces", "{\"resourceSpans\":[]}"), 403);
    int gport = grpc_port(a);
    assert_int_equal(as_nobody(grpc_export, &gport), 7); /* PERMISSION_DENIED */
    assert_int_equal(http_as_nobody(a, main_port, "GET", "/healthz", NULL), 200);
    json_decref(get_json(a, "/v1/conversations/mine", 200)); /* the owner is served */
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "theirs"), 0);

    agent_config(a, "  local_users: any\n", NULL, NULL);
    agent_start(a);
    assert_int_equal(http_as_nobody(a, a->port, "GET", "/v1/conversations/mine", NULL), 200);
    assert_int_equal(agent_stop(a), 0);
}

/* A TCP connection to 127.0.0.1 from a socket made as euid (that user owns it). */
static int
connect_as(uid_t euid, int port)
{
    uid_t was = geteuid();
    assert_int_equal(seteuid(euid), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(seteuid(was), 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/*
 * The owner of a connection's far end, as the servers tell it without a
 * token: the connecting socket's user, for each of several connections
 * open at once (one looked up among many), -1 for what is not a TCP socket.
 */
static void
test_agent_peer_uid_of_local_connections(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 16), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    int port = ntohs(sa.sin_port);
    struct passwd *pw = getuid() == 0 ? getpwnam("nobody") : NULL;
    int client[6], server[6];
    for (int i = 0; i < 6; i++) {
        client[i] = connect_as(pw != NULL && i % 2 ? pw->pw_uid : geteuid(), port);
        server[i] = accept(ls, NULL, NULL);
        assert_true(server[i] >= 0);
    }
    for (int i = 0; i < 6; i++) {
        long want = pw != NULL && i % 2 ? (long)pw->pw_uid : (long)geteuid();
        assert_int_equal(fr_api_peer_uid(server[i]), want);
        assert_int_equal(fr_api_peer_uid(client[i]), (long)geteuid()); /* accepted here */
    }
    if (pw == NULL)
        print_message("(not root: every connection is the test's own user)\n");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(fr_api_peer_uid(pipefd[0]), -1);
    assert_int_equal(fr_api_peer_uid(-1), -1);
    close(pipefd[0]);
    close(pipefd[1]);
    for (int i = 0; i < 6; i++) {
        close(client[i]);
        close(server[i]);
    }
    close(ls);
}

/* At info, one log line per request: method, path (no query, no body), status, duration. */
/* The niceness in a /proc stat line: field 19, counted after the name's closing ')'. */
static int
stat_nice(const char *text)
{
    const char *f = strrchr(text, ')');
    assert_non_null(f);
    f += 2; /* field 3, the state */
    for (int field = 3; field < 19; field++)
        f = strchr(f, ' ') + 1;
    int nice = atoi(f);
    assert_true(nice >= -20 && nice <= 19);
    return nice;
}

/* The niceness (field 19 of /proc/PID/task/TID/stat) of each of pid's threads named comm,
   counted per value (nices[nice + 20]); returns how many threads were read. */
static int
thread_nices(pid_t pid, const char *comm, int nices[40])
{
    memset(nices, 0, 40 * sizeof *nices);
    char *tasks = fr_asprintf("/proc/%d/task", (int)pid);
    DIR *d = opendir(tasks);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char *path = fr_asprintf("%s/%s/stat", tasks, e->d_name), *text = NULL;
        size_t len;
        if (fr_read_file(path, &text, &len, NULL) == FR_OK) { /* a thread may just have ended */
            const char *open = strchr(text, '('), *close = strrchr(text, ')');
            assert_true(open != NULL && close != NULL);
            if ((size_t)(close - open - 1) == strlen(comm) &&
                memcmp(open + 1, comm, strlen(comm)) == 0) {
                nices[stat_nice(text) + 20]++;
                n++;
            }
        }
        free(text);
        free(path);
    }
    closedir(d);
    free(tasks);
    return n;
}

/* One request on a handle kept open (its connection, and so its daemon thread, stays). */
static long
keep_alive_request(CURL *c, struct agent *a, const char *path, const char *body)
{
    char *url = fr_asprintf("http://127.0.0.1:%d%s", a->port, path);
    struct buf b = {fr_calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (body == NULL)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    free(b.p);
    free(url);
    return status;
}

/*
 * ingest.prepare_nice: the thread of a connection that posted events runs at
 * that niceness above the agent's own (the writer keeps the CPU it needs);
 * a connection that only queries keeps the agent's priority; 0 changes none.
 */
static void
test_agent_ingest_threads_yield_to_writer(void **state)
{
    struct agent *a = *state;
    for (int pass = 0; pass < 2; pass++) {
        agent_config(a, "", "", pass == 0 ? "" : "ingest:\n  prepare_nice: 0\n");
        agent_start(a);
        int nices[40];
        char *stat = fr_asprintf("/proc/%d/stat", (int)a->pid), *text = NULL;
        size_t len;
        assert_int_equal(fr_read_file(stat, &text, &len, NULL), FR_OK);
        int base = stat_nice(text), want = pass == 0 ? (base + 10 > 19 ? 19 : base + 10) : base;
        free(text);
        free(stat);
        CURL *ingest = curl_easy_init(), *query = curl_easy_init();
        char *body = events("nice", 0, 20);
        assert_int_equal(keep_alive_request(ingest, a, "/v1/events", body), 202);
        assert_int_equal(keep_alive_request(query, a, "/v1/conversations", NULL), 200);
        assert_int_equal(keep_alive_request(ingest, a, "/v1/events", body), 202); /* same thread */
        assert_int_equal(thread_nices(a->pid, "MHD-connection", nices), 2);
        if (pass == 0) {
            assert_int_equal(nices[want + 20], 1); /* the ingesting connection's */
            assert_int_equal(nices[base + 20], 1); /* the querying one's */
        } else {
            assert_int_equal(nices[base + 20], 2);
        }
        assert_int_equal(thread_nices(a->pid, "fr-writer", nices), 1);
        assert_int_equal(nices[base + 20], 1); /* the writer keeps the agent's priority */
        curl_easy_cleanup(ingest);
        curl_easy_cleanup(query);
        free(body);
        assert_int_equal(agent_stop(a), 0);
    }
}

static void
test_agent_request_log_line(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, "log:\n  level: info\n");
    agent_start(a);
    char *ev = events("logged", 0, 2);
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    json_decref(get_json(a, "/v1/events?conv_id=logged-secret-query", 200));
    wait_log(a, "info http: POST /v1/events 202 ");
    wait_log(a, "info http: GET /v1/events 200 ");
    assert_int_equal(agent_stop(a), 0);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_null(strstr(log, "logged-secret-query")); /* never the query string */
    assert_null(strstr(log, "\"kind\""));            /* never a body */
    free(log);
}

/*
 * /v1/errors reads the tiers the CLI reads: after retention moved failures
 * to warm, the list and every grouping count all of them (warm failures
 * used to vanish from ?by= and the list), and the answer says which tiers
 * were read.
 */
/* Appends at at one provider call of conversation w-N failed with 429 at ts; the next place. */
static char *
rate_limited(char *at, long long ts, int n)
{
    return at + sprintf(at,
                        "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"w-%d\",\"data\":{"
                        "\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"error\"},"
                        "\"error\":{\"message\":\"429 Too Many Requests\"}}\n",
                        ts, n);
}

static void
test_agent_errors_api_reads_every_tier(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *body = fr_malloc(64 * 200), *at = body;
    for (int i = 0; i < 40; i++)
        at = rate_limited(at, 1771357445000LL + i, i % 7);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    assert_int_equal(agent_stop(a), 0);
    /* ten days later the failures are in warm (the default policy keeps hot 2 days) */
    char *cmd =
             fr_asprintf("%s retention run --db %s --now 2026-03-01 --no-progress", FR_BIN, a->db),
         *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(count_events(a->db, "w-0"), 0); /* none left in hot */
    agent_start(a);
    json_t *j = get_json(a, "/v1/errors?limit=1000", 200);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 40);
    json_t *read = json_object_get(json_object_get(j, "tiers"), "read");
    assert_string_equal(json_string_value(json_array_get(read, 1)), "warm");
    json_decref(j);
    j = get_json(a, "/v1/errors?by=code", 200);
    json_t *g = json_array_get(json_object_get(j, "groups"), 0);
    assert_int_equal(json_integer_value(json_object_get(g, "count")), 40);
    assert_int_equal(json_integer_value(json_object_get(g, "conversations")), 7);
    json_decref(j);
    /* a slice of a conversation in warm: taken from the whole, in its order */
    json_t *full = get_json(a, "/v1/conversations/w-0", 200);
    assert_int_equal(json_integer_value(json_object_get(full, "total_events")), 6);
    j = get_json(a, "/v1/conversations/w-0?offset=4&limit=3", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total_events")), 6);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 2);
    for (size_t i = 0; i < 2; i++)
        assert_true(json_equal(json_array_get(evs, i),
                               json_array_get(json_object_get(full, "events"), 4 + i)));
    json_decref(j);
    json_decref(full);
    j = get_json(a, "/v1/errors?limit=5", 200); /* the newest five, across tiers */
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 5);
    json_decref(j);
    /* new failures in hot: three of conversations already hit in warm, one of a new one; a
       conversation hit in both tiers counts once, and the times span both */
    long long now = (long long)time(NULL) * 1000;
    static const int convs[] = {0, 1, 1, 9};
    at = body = fr_malloc(4 * 200);
    for (int i = 0; i < 4; i++)
        at = rate_limited(at, now + i, convs[i]);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    j = get_json(a, "/v1/errors?by=code", 200);
    g = json_array_get(json_object_get(j, "groups"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "groups")), 1);
    assert_int_equal(json_integer_value(json_object_get(g, "count")), 44);
    assert_int_equal(json_integer_value(json_object_get(g, "conversations")), 8);
    assert_int_equal(json_integer_value(json_object_get(g, "first_ms")), 1771357445000LL);
    assert_int_equal(json_integer_value(json_object_get(g, "last_ms")), now + 3);
    json_decref(j);
    j = get_json(a, "/v1/errors?by=code&conv_id=w-1", 200); /* 6 in warm (1, 8, ... 36), 2 hot */
    g = json_array_get(json_object_get(j, "groups"), 0);
    assert_int_equal(json_integer_value(json_object_get(g, "count")), 8);
    assert_int_equal(json_integer_value(json_object_get(g, "conversations")), 1);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/*
 * A segment that goes bad under a running agent: its verification pass
 * (schedule.verify_interval) finds it, /readyz stays ready and names it,
 * /metrics counts it, ingest goes on; `archive quarantine` moves it aside
 * and both say so.
 */
static void
test_agent_bad_segment_reported(void **state)
{
    struct agent *a = *state;
    char *policy = t_path(a->dir, "retention.yaml");
    write_text(policy, "schedule:\n  interval: 0\n  verify_interval: 1s\n");
    char *extra = fr_asprintf("retention:\n  policy: %s\n", policy);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    char *old = events("old", 0, 50), *fresh = events("new", 0, 20);
    assert_int_equal(post(a, old, NULL), 202);
    assert_int_equal(agent_stop(a), 0);
    char *cmd = fr_asprintf("%s retention run --db %s --policy %s --now 2026-03-01 --no-progress",
                            FR_BIN, a->db, policy),
         *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    char name[300] = "";
    sql_long(a->db, "SELECT path FROM archive_segments", name, sizeof name);
    assert_true(name[0] != '\0');
    /* the manifest names it relative to the database's folder */
    char *seg = fr_asprintf("%.*s/%s", (int)(strrchr(a->db, '/') - a->db), a->db, name);
    agent_start(a);
    char *body = NULL;
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
    assert_null(strstr(body, "bad segment"));
    free(body);
    t_flip_middle_byte(seg); /* a flipped byte in the middle of it */
    wait_log(a, "bad segment");
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "1 bad segment"));
    assert_non_null(strstr(body, strrchr(seg, '/') + 1));
    free(body);
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "flightrec_archive_bad_segments 1\n"));
    free(body);
    assert_int_equal(post(a, fresh, NULL), 202); /* ingest goes on */
    assert_int_equal(count_events(a->db, "new"), 20);
    cmd = fr_asprintf("%s archive quarantine --db %s --policy %s %s", FR_BIN, a->db, policy,
                      strrchr(seg, '/') + 1);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "flightrec_archive_bad_segments 0\n"));
    free(body);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
    assert_null(strstr(body, "bad segment"));
    free(body);
    assert_int_equal(agent_stop(a), 0);
    free(seg);
    free(old);
    free(fresh);
    free(extra);
    free(policy);
}

/*
 * DELETE /v1/conversations/ID erases through the API, only with the admin
 * token (a token of its own; none set, the API erases nothing): the
 * conversation is gone, GET says it was erased, and its events sent again
 * are acknowledged as "erased" and never stored; others are untouched.
 */
static void
test_agent_erase_api(void **state)
{
    struct agent *a = *state;
    static const char gone[] =
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"gone\",\"event_id\":\"g1\"}\n"
        "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":\"gone\",\"event_id\":\"g2\"}\n";
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    assert_int_equal(post(a, gone, NULL), 202);
    char *out = NULL;
    assert_int_equal(http(a, "DELETE", "/v1/conversations/gone", NULL, NULL, 0, &out, NULL), 403);
    assert_non_null(strstr(out, "erasure through the API is off"));
    free(out);
    assert_int_equal(agent_stop(a), 0);

    char *tok = t_path(a->dir, "admin.token");
    write_text(tok, "admin-0123456789abcdef-token\n");
    chmod(tok, 0600);
    char *extra = fr_asprintf("  admin_token_file: %s\n", tok);
    agent_config(a, extra, NULL, NULL);
    agent_start(a);
    assert_int_equal(
        post(a, "{\"kind\":\"tool\",\"ts_ms\":1771357445203,\"conv_id\":\"kept\"}", NULL), 202);
    static const char *const wrong[] = {"Authorization: Bearer not-the-admin-token-at-all", NULL};
    static const char *const admin[] = {"Authorization: Bearer admin-0123456789abcdef-token", NULL};
    assert_int_equal(http(a, "DELETE", "/v1/conversations/gone", NULL, NULL, 0, NULL, NULL), 401);
    assert_int_equal(http(a, "DELETE", "/v1/conversations/gone", wrong, NULL, 0, NULL, NULL), 401);
    assert_int_equal(http(a, "DELETE", "/v1/conversations/gone?reason=user%20request", admin, NULL,
                          0, &out, NULL),
                     200);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "hot_events")), 2);
    assert_false(json_is_true(json_object_get(j, "pending")));
    json_decref(j);
    assert_int_equal(http(a, "GET", "/v1/conversations/gone", NULL, NULL, 0, &out, NULL), 404);
    assert_non_null(strstr(out, "was erased"));
    free(out);
    /* sent again: acknowledged (no retry storm), counted, never stored */
    assert_int_equal(post(a, gone, &out), 202);
    j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "erased")), 2);
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "gone"), 0);
    assert_int_equal(count_events(a->db, "kept"), 1);
    free(extra);
    free(tok);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_body_mappings_reused),
        cmocka_unit_test_setup_teardown(test_agent_http_ingest_query_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_auth_compression_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_backpressure_429_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_queue_wait_admits_when_room_frees, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_request_bounded_by_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_hostile_query_strings_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_listener_serves_only_otlp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_other_local_users_refused, setup, teardown),
        cmocka_unit_test(test_agent_peer_uid_of_local_connections),
        cmocka_unit_test_setup_teardown(test_agent_request_log_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_ingest_threads_yield_to_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_erase_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_errors_api_reads_every_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_bad_segment_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_inflight_bodies_bounded, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
