/*
 * tests/integration/test_agent_console.c - the web console (/ui/, docs/console.md)
 * in a real browser: a real agent with a query token, loaded over HTTP with
 * conversations whose content is known (failures, a SEM duplicate, planted
 * secrets, a conversation id and a tool argument holding markup and terminal
 * escapes, text in a non-Latin script, a 10,000-event conversation, runtime
 * samples), then tests/ui/console.mjs drives headless Chromium through every
 * view and asserts what is on screen against the API and `flightrec errors`.
 * Screenshots land in the build directory (console-screenshots/).
 */
#include <stdarg.h>

#include "agent.h"
#include "core/timeutil.h"

static const char token[] = "console-query-token-0123456789";

/* Posts NDJSON with the ingest token; every line must be accepted. */
static void
post_all(struct agent *a, const char *ndjson, int lines)
{
    static const char *const auth[] = {"Authorization: Bearer console-ingest-token-0123456789",
                                       "Content-Type: application/x-ndjson", NULL};
    char *out = NULL;
    assert_int_equal(http(a, "POST", "/v1/events", auth, ndjson, strlen(ndjson), &out, NULL), 202);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    if (json_integer_value(json_object_get(j, "accepted")) != lines)
        fail_msg("not every line accepted: %s", out);
    json_decref(j);
    free(out);
}

static void
append(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    assert_true(vasprintf(&line, fmt, ap) >= 0);
    va_end(ap);
    char *n = fr_asprintf("%s%s\n", *s ? *s : "", line);
    free(*s);
    free(line);
    *s = n;
}

/* The conversations the browser test knows about; returns how many lines. */
static int
load_known(struct agent *a, int64_t t)
{
    char *s = NULL;
    int n = 0;
    const char *c = "ui-err-1", *tr = "4bf92f3577b34da6a3ce929d0e0e4736";
    append(&s,
           "{\"kind\":\"turn\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\",\"trace_id\":"
           "\"%s\",\"data\":{\"phase\":\"draft\"}}",
           (long long)t, c, tr);
    append(&s,
           "{\"kind\":\"middleware\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\","
           "\"data\":{\"step\":\"guardrail\",\"duration_ms\":12,\"decision\":\"allow\","
           "\"guardrail\":{\"action\":\"allow\",\"category\":\"pii\",\"score\":0.1}}}",
           (long long)t + 5, c);
    append(
        &s,
        "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\","
        "\"trace_id\":\"%s\",\"span_id\":\"00f067aa0ba902b7\",\"request_id\":\"req-ui-1\","
        "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"request\":{\"system\":\"You "
        "are a weather bot\",\"messages\":[{\"role\":\"user\",\"content\":\"\u6771\u4eac\u306e"
        "\u5929\u6c17\u306f\uff1f my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 and mail "
        "jane.doe@example.com\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
        "\"text\":\"checking\"},{\"type\":\"tool-call\",\"toolName\":\"weather\",\"input\":{"
        "\"city\":\"Tokyo\"}}]}]},\"response\":{\"content\":\"sunny\"},\"usage\":{\"input_tokens\":"
        "120,"
        "\"output_tokens\":30},\"finish_reason\":\"stop\",\"latency\":{\"queue_ms\":20,"
        "\"provider_ms\":900,\"ttft_ms\":250},\"status\":\"ok\"}}",
        (long long)t + 20, c, tr);
    append(&s,
           "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\",\"trace_id\":"
           "\"%s\",\"data\":{\"tool_call_id\":\"call-1\",\"name\":\"weather\",\"args\":{\"city\":"
           "\"Tokyo\"},\"status\":\"timeout\",\"started_ms\":%lld,\"ended_ms\":%lld},\"error\":{"
           "\"message\":\"tool weather timed out after 5000 ms\",\"type\":\"timeout\"}}",
           (long long)t + 950, c, tr, (long long)t + 950, (long long)t + 5950);
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\","
           "\"trace_id\":\"%s\",\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\","
           "\"retries\":2,\"status\":\"error\",\"latency\":{\"provider_ms\":300}},\"error\":{"
           "\"message\":\"429 Too Many Requests: rate limit reached\",\"http_status\":429}}",
           (long long)t + 6000, c, tr);
    /* the retried call succeeded, but its answer stopped at the token limit */
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\","
           "\"trace_id\":\"%s\",\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\","
           "\"finish_reason\":\"length\",\"status\":\"ok\",\"usage\":{\"output_tokens\":"
           "4096},\"latency\":{\"provider_ms\":8000}}}",
           (long long)t + 6200, c, tr);
    for (int k = 0; k < 2; k++) /* the same sequence number twice: a SEM duplicate */
        append(&s,
               "{\"kind\":\"sem\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"stream_id\":\"st-1\","
               "\"seq\":7,\"data\":{\"type\":\"delta\",\"id\":\"m%d\",\"seq\":7,\"stream_id\":"
               "\"st-1\",\"source\":\"websocket\"}}",
               (long long)t + 6400 + k, c, k);
    append(&s,
           "{\"kind\":\"turn\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"turn_id\":\"t-1\",\"data\":{"
           "\"phase\":\"final\"}}",
           (long long)t + 6500, c);
    n += 9;
    for (int i = 0; i < 8; i++) /* runtime samples across the turn, for the strip chart */
        append(&s,
               "{\"kind\":\"runtime\",\"ts_ms\":%lld,\"data\":{\"cpu_pct\":%d,\"rss_bytes\":%d}}",
               (long long)t + i * 900, 10 + i * 7, 50000000 + i * 3000000);
    n += 8;
    /* markup and a terminal escape in an id and in a tool's arguments */
    append(&s,
           "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"<script>window.__pwned=1</"
           "script>\\u001b[31m\",\"data\":{\"name\":\"render\",\"args\":{\"html\":\"<img src=x "
           "onerror=\\\"window.__pwned=2\\\">\"},\"status\":\"ok\"}}",
           (long long)t + 100);
    n++;
    for (int i = 0; i < 3; i++) {
        append(&s,
               "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"ui-ok-%d\",\"data\":{"
               "\"provider\":\"anthropic\",\"model\":\"claude-sonnet\",\"usage\":{"
               "\"input_tokens\":10,\"output_tokens\":5},\"latency\":{\"provider_ms\":%d},"
               "\"status\":\"ok\"}}",
               (long long)t + 200 + i, i, 100 + i * 50);
        n++;
    }
    post_all(a, s, n);
    free(s);
    return n;
}

/* One conversation of n events (provider, tool and middleware in turn), in batches. */
static void
load_big(struct agent *a, int64_t t, int n)
{
    for (int from = 0; from < n; from += 1000) {
        char *s = NULL;
        for (int i = from; i < from + 1000 && i < n; i++) {
            if (i % 3 == 0)
                append(&s,
                       "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"ui-big\",\"turn_id\":"
                       "\"t-%d\",\"seq\":%d,\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\","
                       "\"latency\":{\"provider_ms\":%d},\"status\":\"ok\"}}",
                       (long long)t + i * 10, i / 3, i, 20 + i % 40);
            else if (i % 3 == 1)
                append(&s,
                       "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"ui-big\",\"turn_id\":"
                       "\"t-%d\",\"seq\":%d,\"data\":{\"name\":\"search\",\"args\":{\"q\":\"item "
                       "%d\"},\"status\":\"ok\"}}",
                       (long long)t + i * 10, i / 3, i, i);
            else
                append(&s,
                       "{\"kind\":\"middleware\",\"ts_ms\":%lld,\"conv_id\":\"ui-big\",\"turn_id\":"
                       "\"t-%d\",\"seq\":%d,\"data\":{\"step\":\"log\",\"duration_ms\":1}}",
                       (long long)t + i * 10, i / 3, i);
        }
        post_all(a, s, from + 1000 <= n ? 1000 : n - from);
        free(s);
    }
}

/* `flightrec errors --since 1h` over the agent's store: the failures it lists. */
static long
cli_errors(struct agent *a)
{
    char *cmd = fr_asprintf("%s errors --db %s --since 1h --limit 0 --ndjson", FR_BIN, a->db);
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    long n = 0;
    for (const char *p = out; *p; p++)
        n += *p == '\n';
    free(cmd);
    free(out);
    free(err);
    return n;
}

static void
test_agent_console_in_a_browser(void **state)
{
    struct agent *a = *state;
    char *qfile = fr_asprintf("%s/query.token", a->dir), *wfile = fr_asprintf("%s/w.token", a->dir);
    write_text(qfile, token);
    write_text(wfile, "console-ingest-token-0123456789");
    chmod(qfile, 0600);
    chmod(wfile, 0600);
    char *extra = fr_asprintf("  auth_token_file: %s\n  query_token_file: %s\n", wfile, qfile);
    char *inc = fr_asprintf("incident:\n  bundle_dir: %s/bundles\n", a->dir);
    agent_config(a, extra, NULL, inc);
    agent_start(a);
    int64_t t = fr_now_ms() - 10 * 60 * 1000;
    load_known(a, t);
    /* under valgrind (make valgrind) the agent is ~50x slower: the memory check needs the
       same paths, not the same size */
    bool slow = getenv("FR_AGENT_WRAPPER") != NULL;
    int big = slow ? 1500 : 10000;
    load_big(a, t - 5 * 60 * 1000, big);
    long errors = cli_errors(a);
    assert_int_equal(errors, 2); /* the tool timeout and the 429 */
    /* the big conversation moves to warm (the rest is younger than 12 minutes): the console
       shows every event's tier and reads warm segments */
    char *pol = fr_asprintf("%s/retention.yaml", a->dir);
    write_text(pol, "hot:\n  max_age: 12m\n");
    char *rcmd =
        fr_asprintf("%s retention run --no-progress --db %s --policy %s", FR_BIN, a->db, pol);
    char *rout = NULL, *rerr = NULL;
    if (t_run(rcmd, &rout, &rerr) != 0)
        fail_msg("%s: %s", rcmd, rerr);
    free(rout);
    free(rerr);
    free(rcmd);
    free(pol);

    char *expect = fr_asprintf("%s/expect.json", a->dir);
    json_t *e = json_pack("{s:i,s:i,s:s,s:s,s:s,s:i,s:I,s:[s,s],s:s,s:s,s:[s,s]}", "conversations",
                          6, "conversations_with_errors", 1, "error_conv", "ui-err-1",
                          "hostile_conv", "<script>window.__pwned=1</script>\x1b[31m", "big_conv",
                          "ui-big", "big_events", big, "errors_total", (json_int_t)errors,
                          "error_codes", "tool.timeout", "provider.rate_limited", "trace_id",
                          "4bf92f3577b34da6a3ce929d0e0e4736", "model", "claude-sonnet", "secrets",
                          "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "jane.doe@example.com");
    json_object_set_new(e, "text_query", json_string("\u6771\u4eac\u306e\u5929\u6c17"));
    assert_int_equal(json_dump_file(e, expect, 0), 0);
    json_decref(e);

    char *shots = fr_asprintf("%s/console-screenshots", FR_BUILD_DIR);
    char *cmd =
        fr_asprintf("FR_UI_TIMEOUT_MS=%d FR_UI_INGEST_TOKEN=%s node %s/tests/ui/console.mjs "
                    "http://127.0.0.1:%d %s %s %s",
                    slow ? 300000 : 30000, "console-ingest-token-0123456789", FR_SOURCE_DIR,
                    a->port, token, shots, expect);
    char *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    if (rc != 0)
        fail_msg("%s\nstdout:\n%s\nstderr:\n%s", cmd, out, err);
    printf("%s", out);
    free(out);
    free(err);
    free(cmd);
    free(shots);
    free(expect);
    free(extra);
    free(inc);
    free(qfile);
    free(wfile);
    assert_int_equal(agent_stop(a), 0);
}

/* curl's view of one request (headers and status), for what the test HTTP client does not keep. */
static char *
curl_headers(struct agent *a, const char *args, const char *path)
{
    char *cmd =
        fr_asprintf("curl -s -D - -o /dev/null %s 'http://127.0.0.1:%d%s'", args, a->port, path);
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(cmd);
    free(err);
    return out;
}

static size_t
array_len(json_t *j, const char *key)
{
    return json_array_size(json_object_get(j, key));
}

/*
 * The API the console reads, exactly: rollups per time step, text search (as written, as
 * \uXXXX, LIKE wildcards taken literally, ASCII case), a slice of a conversation, the index
 * look-up, the error-code filter, incident bundles, gzip answers, the /ui/ files' headers.
 */
static void
test_agent_console_api(void **state)
{
    struct agent *a = *state;
    char *inc = fr_asprintf("incident:\n  bundle_dir: %s/bundles\n", a->dir);
    agent_config(a, NULL, NULL, inc);
    agent_start(a);
    int64_t m = (fr_now_ms() / 60000 - 30) * 60000; /* a minute boundary, 30 min ago */
    char *s = NULL;
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"api-1\",\"data\":{\"provider\":"
           "\"openai\",\"model\":\"gpt-4o\",\"status\":\"error\"},\"error\":{\"message\":\"429\","
           "\"http_status\":429}}",
           (long long)m + 5000);
    append(&s,
           "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"api-1\",\"data\":{\"name\":\"w\","
           "\"status\":\"timeout\"},\"error\":{\"message\":\"timed out\",\"type\":\"timeout\"}}",
           (long long)m + 125000);
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"api-1\",\"data\":{\"provider\":"
           "\"openai\",\"model\":\"gpt-4o\",\"status\":\"ok\",\"finish_reason\":\"length\","
           "\"latency\":{\"provider_ms\":40}}}",
           (long long)m + 130000);
    /* the producer escaped its non-ASCII text; LIKE's wildcards in a message */
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"api-2\",\"data\":{\"request\":{"
           "\"content\":\"weather in \\u6771\\u4eac? Tokyo 100%%_done\"}}}",
           (long long)m + 1000);
    append(&s,
           "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"api-3\",\"data\":{\"request\":{"
           "\"content\":\"100xxdone\"}}}",
           (long long)m + 2000);
    assert_int_equal(post(a, s, NULL), 202);
    free(s);

    /* rollups by class and code, one row per minute step */
    char *path = fr_asprintf("/v1/stats?by=error&since=%lld&until=%lld&step=1m", (long long)m,
                             (long long)m + 600000);
    json_t *j = get_json(a, path, 200);
    free(path);
    assert_int_equal(json_integer_value(json_object_get(j, "step_ms")), 60000);
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    assert_int_equal(json_integer_value(json_object_get(r0, "bucket_ms")), m);
    assert_string_equal(json_string_value(json_object_get(r0, "k2")), "provider.rate_limited");
    assert_int_equal(json_integer_value(json_object_get(r1, "bucket_ms")), m + 120000);
    assert_string_equal(json_string_value(json_object_get(r1, "k2")), "tool.timeout");
    assert_int_equal(json_integer_value(json_object_get(r1, "calls")), 1);
    json_decref(j);
    j = get_json(a, "/v1/stats?by=provider&since=2h", 200);
    size_t ri;
    json_t *row;
    r0 = NULL;
    json_array_foreach(json_object_get(j, "rows"), ri, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "k1")), "openai") == 0)
            r0 = row;
    }
    assert_non_null(r0);
    assert_string_equal(json_string_value(json_object_get(r0, "k2")), "gpt-4o");
    assert_int_equal(json_integer_value(json_object_get(r0, "calls")), 2);
    assert_int_equal(json_integer_value(json_object_get(r0, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r0, "latency"), "p50_ms")),
                     40);
    json_decref(j);
    /* how calls ended: the one that named a finish reason, and what the reason means */
    j = get_json(a, "/v1/stats?by=finish&since=2h", 200);
    rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 1);
    r0 = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "k1")), "length");
    assert_string_equal(json_string_value(json_object_get(r0, "k2")), "gpt-4o");
    assert_string_equal(json_string_value(json_object_get(r0, "meaning")), "truncated");
    assert_int_equal(json_integer_value(json_object_get(r0, "calls")), 1);
    json_decref(j);
    /* what finish reasons mean, as the console asks for its marks */
    j = get_json(a, "/v1/finish-meanings?reason=length&reason=SAFETY&reason=tool-calls,stop", 200);
    json_t *fm = json_object_get(j, "meanings");
    assert_int_equal(json_object_size(fm), 3);
    assert_string_equal(json_string_value(json_object_get(fm, "length")), "truncated");
    assert_string_equal(json_string_value(json_object_get(fm, "SAFETY")), "filtered");
    assert_string_equal(json_string_value(json_object_get(fm, "tool-calls,stop")), "tool_call");
    json_t *cut = json_object_get(j, "cut_short"); /* what the console marks, and its words */
    assert_int_equal(json_object_size(cut), 2);
    assert_string_equal(json_string_value(json_object_get(cut, "length")),
                        "stopped at the token limit");
    assert_string_equal(json_string_value(json_object_get(cut, "SAFETY")),
                        "was filtered or refused");
    json_decref(j);
    json_decref(get_json(a, "/v1/finish-meanings?colour=red", 400));
    json_decref(get_json(a, "/v1/stats?by=error&since=1h&step=90s", 400));
    json_decref(get_json(a, "/v1/stats?by=nope", 400));

    /* text: as the producer escaped it, any script; wildcards literal; ASCII case folded */
    static const char *const finds[][2] = {
        {"/v1/events?text=%E6%9D%B1%E4%BA%AC", "api-2"}, /* 東京 */
        {"/v1/events?text=100%25_done", "api-2"},
        {"/v1/events?text=TOKYO", "api-2"},
    };
    for (size_t i = 0; i < 3; i++) {
        j = get_json(a, finds[i][0], 200);
        json_t *evs = json_object_get(j, "events");
        assert_int_equal(json_array_size(evs), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "conv_id")),
                            finds[i][1]);
        json_decref(j);
    }

    /* a slice of a conversation, in its order; the index row alone; the look-up */
    json_t *full = get_json(a, "/v1/conversations/api-1", 200);
    assert_int_equal(json_integer_value(json_object_get(full, "total_events")), 3);
    j = get_json(a, "/v1/conversations/api-1?offset=1&limit=1", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total_events")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 1);
    assert_int_equal(array_len(j, "events"), 1);
    assert_true(json_equal(json_array_get(json_object_get(j, "events"), 0),
                           json_array_get(json_object_get(full, "events"), 1)));
    json_decref(j);
    json_decref(full);
    j = get_json(a, "/v1/conversations/api-1?summary=true", 200);
    assert_null(json_object_get(j, "events"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "event_count")), 3);
    json_decref(j);
    j = get_json(a, "/v1/conversations?conv_id=api-1", 200);
    assert_int_equal(array_len(j, "conversations"), 1);
    json_decref(j);
    j = get_json(a, "/v1/conversations?conv_id=nope", 200);
    assert_int_equal(array_len(j, "conversations"), 0);
    json_decref(j);
    j = get_json(a, "/v1/conversations?error_code=tool.timeout", 200);
    assert_int_equal(array_len(j, "conversations"), 1);
    json_decref(j);

    /* incident bundles: made, listed, downloaded; a path is not a name */
    char *out = NULL;
    assert_int_equal(http(a, "POST", "/v1/incidents", NULL, "", 0, &out, NULL), 400);
    free(out);
    assert_int_equal(http(a, "POST", "/v1/incidents?conv_id=api-1", NULL, "", 0, &out, NULL), 201);
    j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "events")), 3);
    char *name = fr_strdup(json_string_value(json_object_get(j, "name")));
    json_decref(j);
    j = get_json(a, "/v1/incidents", 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "bundles"), 0), "name")),
                        name);
    json_decref(j);
    path = fr_asprintf("/v1/incidents/%s", name);
    struct hdrs hd = {0};
    assert_int_equal(http(a, "GET", path, NULL, NULL, 0, &out, &hd), 200);
    assert_true(hd.body_len > 4 && memcmp(out, "\x28\xb5\x2f\xfd", 4) == 0); /* zstd */
    free(out);
    free(path);
    free(name);
    json_decref(get_json(a, "/v1/incidents/..%2Fquery.token", 404));

    /* a large answer is gzip-compressed for a client that asks for it, and only then */
    s = events("api-big", 0, 600);
    assert_int_equal(post(a, s, NULL), 202);
    free(s);
    char *h = curl_headers(a, "-H 'Accept-Encoding: gzip'", "/v1/conversations/api-big");
    assert_non_null(strcasestr(h, "content-encoding: gzip"));
    free(h);
    h = curl_headers(a, "", "/v1/conversations/api-big");
    assert_null(strcasestr(h, "content-encoding"));
    free(h);

    /* the console's files: strict CSP, no token needed, / goes there */
    h = curl_headers(a, "", "/ui/");
    assert_non_null(strstr(h, "200"));
    assert_non_null(
        strcasestr(h, "content-security-policy: default-src 'none'; script-src 'self'"));
    assert_non_null(strcasestr(h, "x-content-type-options: nosniff"));
    free(h);
    h = curl_headers(a, "", "/");
    assert_non_null(strstr(h, "302"));
    assert_non_null(strcasestr(h, "location: /ui/"));
    free(h);
    h = curl_headers(a, "", "/ui/nope.js");
    assert_non_null(strstr(h, "404"));
    free(h);
    free(inc);
    assert_int_equal(agent_stop(a), 0);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_console_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_console_in_a_browser, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER"))
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
