/*
 * tests/integration/test_agent_incident.c - the real agent: automatic incident bundles, the outbox
 * across restarts, no secret in any output.
 */
#include "tests/integration/agent.h"

/* Whether the process maps a file whose name holds lib ("/libcurl.so"). */
static bool
maps_lib(pid_t pid, const char *lib)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

/* A trigger rule builds one signed bundle per conversation per cool-down. libarchive is
   opened for the first bundle, not at the agent's start, and libcurl and libpq (uploads,
   the fleet store: not configured) never (core/dl.h). */
static void
test_agent_trigger_fires_once_per_cooldown(void **state)
{
    struct agent *a = *state;
    char *rules = t_path(a->dir, "triggers.yaml"), *bundles = t_path(a->dir, "bundles");
    write_text(rules, "cooldown: 1h\nrules:\n  - name: tool_timeouts\n    error_code: "
                      "tool.timeout\n    count: 2\n    window: 1m\n");
    char *extra = fr_asprintf("incident:\n  triggers: %s\n  bundle_dir: %s\n", rules, bundles);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    assert_false(maps_lib(a->pid, "/libarchive.so"));
    assert_false(maps_lib(a->pid, "/libcurl.so"));
    assert_false(maps_lib(a->pid, "/libpq.so"));
    char *body = timeouts("t-1", 0);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    for (int i = 0; i < 3000 && count_bundles(bundles) < 1; i++)
        usleep(10000);
    assert_int_equal(count_bundles(bundles), 1);
    assert_true(maps_lib(a->pid, "/libarchive.so"));
    assert_false(maps_lib(a->pid, "/libcurl.so"));
    assert_false(maps_lib(a->pid, "/libpq.so"));
    /* the same conversation again, within the cool-down: no second bundle */
    body = timeouts("t-1", 10);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    /* another conversation: its own bundle */
    body = timeouts("t-2", 20);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    for (int i = 0; i < 3000 && count_bundles(bundles) < 2; i++)
        usleep(10000);
    char *out;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(
        out, "flightrec_incident_triggers_total{rule=\"tool_timeouts\",outcome=\"fired\"} 2"));
    assert_non_null(strstr(
        out, "flightrec_incident_triggers_total{rule=\"tool_timeouts\",outcome=\"cooldown\"} 2"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_bundles(bundles), 2);
    /* the bundles are signed with the agent's key and verify */
    char *cmd = fr_asprintf("for b in %s/*.tar.zst; do %s incident verify $b --pubkey "
                            "%s/keys/signing.pub.pem || exit 1; done",
                            bundles, FR_BIN, a->dir);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    free(extra);
    free(rules);
    free(bundles);
}

/* The outbox survives a restart of the agent, which retries it in the background. */
static void
test_agent_outbox_survives_restart(void **state)
{
    struct agent *a = *state;
    int port;
    int hold = t_hold_port(&port); /* nobody listens there yet, nor can take it */
    char *outbox = t_path(a->dir, "outbox"), *yaml = t_path(a->dir, "upload.yaml");
    char *text = fr_asprintf("outbox: %s\ntargets:\n  - name: sink\n    url: "
                             "http://127.0.0.1:%d/u/{name}\n    max_attempts: 1\n",
                             outbox, port);
    write_text(yaml, text);
    free(text);
    char *bundle = t_path(a->dir, "incident-x.tar.zst");
    write_text(bundle, "pretend bundle bytes");
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, bundle, "sink", &err), FR_OK);
    char *extra = fr_asprintf("incident:\n  upload_config: %s\n  outbox_retry_ms: 200\n", yaml);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    /* the target is down: tried, kept */
    struct fr_outbox_item *items;
    size_t n = 0;
    for (int i = 0; i < 3000; i++) {
        fr_outbox_list(c.outbox, &items, &n, &err);
        bool tried = n == 1 && items[0].attempts > 0;
        fr_outbox_items_free(items, n);
        if (tried)
            break;
        usleep(10000);
    }
    assert_int_equal(agent_stop(a), 0);
    fr_outbox_list(c.outbox, &items, &n, &err);
    assert_int_equal(n, 1);
    assert_true(items[0].attempts >= 1);
    fr_outbox_items_free(items, n);
    /* the target comes up; the restarted agent delivers and empties the outbox */
    close(hold);
    pid_t sink = sink_start(&port);
    agent_start(a);
    for (int i = 0; i < 3000; i++) {
        fr_outbox_list(c.outbox, &items, &n, &err);
        fr_outbox_items_free(items, n);
        if (n == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(n, 0);
    /* the retry counts its upload once the flush returned, just after the file left the
       outbox: the metric is looked for until then */
    wait_metric(a, "flightrec_uploads_total{result=\"sent\"} 1");
    char *out;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_outbox_bundles 0"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    fr_upload_config_clear(&c);
    free(extra);
    free(bundle);
    free(outbox);
    free(yaml);
}

/*
 * No secret in any output: the whole corpus sent in every free-text field,
 * in unknown fields, and in the places that make a line fail (kind, ts_ms,
 * an enum value, a data field's type, an over-long id, broken JSON), over
 * HTTP, the socket and OTLP, with debug logging. Then the answers, the
 * acks, /metrics, the query API, the CLI, the log and the database files
 * are searched for every needle.
 */
static void
test_agent_no_secret_in_any_output(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, "log:\n  level: debug\n");
    agent_start(a);
    char *all = fr_strdup(""), *body = fr_strdup(""), *out;
    for (size_t i = 0; i < NSECRETS; i++) {
        json_t *sj = json_string(secrets[i].text);
        char *s = json_dumps(sj, JSON_ENCODE_ANY);
        char *long_id = fr_strdup("");
        for (int r = 0; r < 16; r++) { /* over the 256-byte id limit: rejected */
            char *more = fr_asprintf("%s%s / ", long_id, secrets[i].text);
            free(long_id);
            long_id = more;
        }
        json_t *lj = json_string(long_id);
        char *l = json_dumps(lj, JSON_ENCODE_ANY);
        const long long t = 1771357445000LL + (long long)i;
        char *lines = fr_asprintf(
            "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"p-%"
            "zu\","
            "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"request\":{\"messages\":[{"
            "\"role\":\"user\",\"content\":%s}]},\"response\":{\"content\":%s}}}\n"
            "{\"v\":1,\"kind\":\"error\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"e-%"
            "zu\","
            "\"error\":{\"message\":%s,\"stack\":%s,\"cause\":[%s]}}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"t-%zu\","
            "\"session_id\":%s,"
            "\"data\":{\"name\":\"search\",\"args\":{\"q\":%s},\"result\":%s},\"note\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"data\":{\"status\":%"
            "s}}\n"
            "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":%lld,\"data\":{\"usage\":{\"input_tokens\":%"
            "s}}}\n"
            "{\"v\":1,\"kind\":%s,\"ts_ms\":%lld}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld, %s\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld, %s}\n",
            t, i, s, s, t, i, s, s, s, t, i, s, s, s, s, t, s, t, s, s, t, s, t, l, t, s, t,
            secrets[i].text); /* unquoted: what a JSON parser quotes back "near" */
        collect(&body, lines);
        free(lines);
        free(s);
        free(l);
        free(long_id);
        json_decref(sj);
        json_decref(lj);
    }
    /* HTTP */
    post(a, body, &out);
    collect(&all, out);
    free(out);
    /* the socket: the same lines, acks with their errors */
    int fd = sock_connect(a);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    shutdown(fd, SHUT_WR);
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[r] = '\0';
        collect(&all, buf);
    }
    close(fd);
    /* OTLP: a chat span with the secret as prompt and exception, an ERROR log record */
    const char *json[] = {"Content-Type: application/json", NULL};
    for (size_t i = 0; i < NSECRETS; i++) {
        json_t *sj = json_string(secrets[i].text);
        char *s = json_dumps(sj, JSON_ENCODE_ANY);
        char *spans = fr_asprintf(
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
            "\"6bf92f3577b34da6a3ce929d0e0e47%02zx\",\"spanId\":\"20f067aa0ba902%02zx\","
            "\"startTimeUnixNano\":\"1771357445000000000\",\"endTimeUnixNano\":"
            "\"1771357446000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
            "\"stringValue\":\"openai\"}},{\"key\":\"gen_ai.prompt.0.content\",\"value\":{"
            "\"stringValue\":%s}},{\"key\":\"session.id\",\"value\":{\"stringValue\":"
            "\"leak-otlp\"}}],\"events\":[{\"name\":\"exception\",\"attributes\":[{\"key\":"
            "\"exception.message\",\"value\":{\"stringValue\":%s}}]}],\"status\":{\"code\":2,"
            "\"message\":%s}}]}]}]}",
            i, i, s, s, s);
        assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, NULL),
                         200);
        collect(&all, out);
        free(out);
        char *logs = fr_asprintf(
            "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
            "\"1771357448000000000\",\"severityNumber\":17,\"body\":{\"stringValue\":%s},"
            "\"attributes\":[{\"key\":\"session.id\",\"value\":{\"stringValue\":\"leak-otlp\"}}]},"
            "{\"timeUnixNano\":\"1771357448000000000\",\"body\":{\"stringValue\":%s},"
            "\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{\"stringValue\":%s}}]}"
            "]}]}]}",
            s, s, s);
        assert_int_equal(http(a, "POST", "/v1/logs", json, logs, strlen(logs), &out, NULL), 200);
        collect(&all, out);
        free(out);
        free(logs);
        free(spans);
        free(s);
        json_decref(sj);
    }
    /* what readers see: the query API, /metrics, the CLI */
    static const char *const gets[] = {"/v1/conversations/leak",
                                       "/v1/conversations/leak-otlp",
                                       "/v1/errors",
                                       "/v1/errors?by=code",
                                       "/metrics",
                                       "/v1/events?conv_id=leak"};
    for (size_t g = 0; g < sizeof gets / sizeof gets[0]; g++) {
        assert_int_equal(http(a, "GET", gets[g], NULL, NULL, 0, &out, NULL), 200);
        collect(&all, out);
        free(out);
    }
    json_t *conv = get_json(a, "/v1/conversations/leak", 200);
    assert_int_equal(json_array_size(json_object_get(conv, "events")), 3 * NSECRETS);
    json_decref(conv);
    assert_int_equal(agent_stop(a), 0);
    static const char *const cli[] = {"show leak", "show leak-otlp", "errors", "stats --by error"};
    for (size_t c = 0; c < sizeof cli / sizeof cli[0]; c++) {
        char *cmd = fr_asprintf("%s %s --db %s", FR_BIN, cli[c], a->db), *err = NULL;
        assert_int_equal(t_run(cmd, &out, &err), 0);
        collect(&all, out);
        collect(&all, err);
        free(out);
        free(err);
        free(cmd);
    }
    if (getenv("FR_DUMP"))
        write_text(getenv("FR_DUMP"), all);
    assert_no_secret("the answers, acks, query API, /metrics and CLI output", all, strlen(all));
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_true(strstr(log, "debug") != NULL || len > 0);
    assert_no_secret("the agent's log", log, len);
    free(log);
    static const char *const suffixes[] = {"", "-wal"};
    for (size_t k = 0; k < 2; k++) {
        char *path = fr_asprintf("%s%s", a->db, suffixes[k]), *bytes;
        if (fr_read_file(path, &bytes, &len, NULL) == FR_OK) {
            assert_no_secret(path, bytes, len);
            free(bytes);
        }
        free(path);
    }
    free(all);
    free(body);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_trigger_fires_once_per_cooldown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_outbox_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_no_secret_in_any_output, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
