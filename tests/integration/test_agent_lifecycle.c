/*
 * tests/integration/test_agent_lifecycle.c - the real agent: metrics, the runtime sampler, reload,
 * shutdown, config check, hardening.
 */
#include "tests/integration/agent.h"

static void
test_agent_metrics_and_runtime_sampler(void **state)
{
    struct agent *a = *state;
    /* a stand-in chat server, followed through its pidfile across a restart */
    pid_t child = fork();
    if (child == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    char *pidfile = t_path(a->dir, "chat.pid");
    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "%d\n", child);
    write_text(pidfile, pidtext);
    char *extra = fr_asprintf("  pidfile: %s\n  interval_ms: 100\n", pidfile);
    agent_config(a, NULL, NULL, NULL);
    /* the runtime section is already written with self: false; append options to it */
    char *text;
    size_t len;
    assert_int_equal(fr_read_file(a->config, &text, &len, NULL), FR_OK);
    char *full = fr_asprintf("%s", text);
    char *at = strstr(full, "runtime:\n");
    char *cfg =
        fr_asprintf("%.*sruntime:\n%s%s", (int)(at - full), full, extra, at + strlen("runtime:\n"));
    write_text(a->config, cfg);
    free(text);
    free(full);
    free(cfg);
    free(extra);
    agent_start(a);
    char *body = events("m-1", 0, 3), *out;
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    /* samples of the watched process arrive every 100 ms (waits are generous for ASan) */
    size_t seen = 0;
    for (int i = 0; i < 400 && seen < 2; i++) {
        usleep(50000);
        seen = runtime_samples(a, child, true);
    }
    assert_true(seen >= 2);
    /* the watched process restarts with a new pid: the sampler follows */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pid_t child2 = fork();
    if (child2 == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    snprintf(pidtext, sizeof pidtext, "%d\n", child2);
    write_text(pidfile, pidtext);
    seen = 0;
    for (int i = 0; i < 400 && seen < 1; i++) {
        usleep(50000);
        seen = runtime_samples(a, child2, false);
    }
    assert_true(seen >= 1);
    kill(child2, SIGKILL);
    waitpid(child2, NULL, 0);

    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_events_accepted_total{kind=\"tool\"} 3"));
    assert_non_null(strstr(out, "flightrec_events_received_total{source=\"http\"} 3"));
    assert_non_null(strstr(out, "flightrec_tool_calls_total{tool=\"search\"} 3"));
    assert_non_null(strstr(out, "# TYPE flightrec_commit_seconds histogram"));
    assert_non_null(
        strstr(out, "flightrec_runtime_samples_total{target=\"watched\",result=\"ok\"}"));
    assert_non_null(strstr(out, "flightrec_store_bytes "));
    /* the writer's store checkpoints on its own thread (3 events: none needed yet) */
    assert_non_null(strstr(out, "flightrec_store_wal_checkpoints_total{by=\"background\"} 0\n"));
    assert_non_null(strstr(out, "flightrec_store_wal_checkpoints_total{by=\"writer\"} 0\n"));
    assert_non_null(strstr(out, "flightrec_store_wal_pages "));
    free(out);
    free(pidfile);
    assert_int_equal(agent_stop(a), 0);
}

static void
test_agent_reload_keeps_old_config_on_error(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *body = events("r-1", 0, 2);
    assert_int_equal(post(a, body, NULL), 202);
    /* a bad file: rejected, the agent keeps serving with the old settings */
    char *good;
    size_t len;
    assert_int_equal(fr_read_file(a->config, &good, &len, NULL), FR_OK);
    char *bad = fr_asprintf("%sbogus_section: 1\n", good);
    write_text(a->config, bad);
    kill(a->pid, SIGHUP);
    wait_log(a, "reload rejected");
    wait_log(a, "bogus_section");
    assert_int_equal(post(a, body, NULL), 202);
    /* a good file with a token: applied at once */
    char *with_token = fr_asprintf("%s", good);
    char *http_at = strstr(with_token, "http:\n");
    char *cfg = fr_asprintf("%.*shttp:\n  auth_token: n3w-token-0123456789\n%s",
                            (int)(http_at - with_token), with_token, http_at + 6);
    write_text(a->config, cfg);
    kill(a->pid, SIGHUP);
    wait_log(a, "configuration reloaded");
    assert_int_equal(post(a, body, NULL), 401);
    const char *auth[] = {"Authorization: Bearer n3w-token-0123456789", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 202);
    /* a storage setting read at start (the writer's commit delay): said to wait for a restart */
    char *storage_at = strstr(cfg, "storage:\n");
    assert_non_null(storage_at);
    char *delayed = fr_asprintf("%.*sstorage:\n  commit_delay_ms: 5\n%s", (int)(storage_at - cfg),
                                cfg, storage_at + strlen("storage:\n"));
    write_text(a->config, delayed);
    kill(a->pid, SIGHUP);
    wait_log(a, "take effect at the next start");
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 202);
    free(delayed);
    free(cfg);
    free(with_token);
    free(bad);
    free(good);
    free(body);
    assert_int_equal(agent_stop(a), 0);
}

/* SIGTERM drains and exits 0; kill -9 right after acks loses no acked event. */
static void
test_agent_shutdown_and_crash(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    long acked = 0;
    for (int r = 0; r < 20; r++) {
        char *body = events("k-1", r * 50, 50);
        if (post(a, body, NULL) == 202)
            acked += 50;
        free(body);
    }
    assert_int_equal(acked, 1000);
    kill(a->pid, SIGKILL); /* no chance to flush anything after the acks */
    waitpid(a->pid, NULL, 0);
    a->pid = 0;
    assert_int_equal(count_events(a->db, "k-1"), acked);
    /* it starts again over the stale socket file, and stops cleanly */
    agent_start(a);
    assert_true(assert_threads_block_stop_signals(a->pid) >= 3); /* writer, servers, sampler */
    int fd = sock_connect(a);
    char *ev = events("k-2", 0, 4);
    assert_int_equal(write(fd, ev, strlen(ev)), (ssize_t)strlen(ev));
    char *ack = read_line(fd);
    assert_non_null(strstr(ack, "\"accepted\":4"));
    free(ack);
    free(ev);
    close(fd);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "k-2"), 4);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "every acknowledged event is committed"));
    free(log);
}

static void
test_agent_config_check(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  auth_token: hush-hush-0123456789\n", NULL, NULL);
    char *cmd = fr_asprintf("%s config check %s", FR_BIN, a->config), *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "auth_token: \"***\""));
    assert_null(strstr(out, "hush-hush-0123456789"));
    assert_non_null(strstr(out, "listen: \"127.0.0.1:0\""));
    free(out);
    free(err);
    free(cmd);
    /* checking creates nothing: no key file, no database (the agent makes them at start) */
    char *keys = t_path(a->dir, "var/keys");
    assert_int_equal(access(keys, F_OK), -1);
    assert_int_equal(access(a->db, F_OK), -1);
    free(keys);
    /* FLIGHTREC_<SECTION>_<KEY> overrides one option; a bad value names the variable */
    cmd = fr_asprintf("FLIGHTREC_HTTP_LISTEN=127.0.0.1:9999 %s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "listen: \"127.0.0.1:9999\""));
    free(out);
    free(err);
    free(cmd);
    cmd = fr_asprintf("FLIGHTREC_STORAGE_QUEUE_EVENTS=many %s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "FLIGHTREC_STORAGE_QUEUE_EVENTS"));
    free(out);
    free(err);
    free(cmd);
    write_text(a->config, "http:\n  listen: 127.0.0.1:1\n  max_body_bytes: lots\n");
    cmd = fr_asprintf("%s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "flightrec.yaml:3: http.max_body_bytes: expected a whole number"));
    free(out);
    free(err);
    /* the incident rules the agent would load at start: the shipped example, and a bad rule
       named by file and line, before the agent is started with it */
    char *text = fr_asprintf("incident:\n  triggers: %s/configs/triggers.yaml\n", FR_SOURCE_DIR);
    write_text(a->config, text);
    free(text);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    char *rules = t_path(a->dir, "rules.yaml");
    write_text(rules,
               "rules:\n  - name: cut\n    finish: truncated\n    error_code: tool.timeout\n");
    text = fr_asprintf("incident:\n  triggers: %s\n", rules);
    write_text(a->config, text);
    free(text);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "rules.yaml:2: rules: finish matches calls that succeeded"));
    free(out);
    free(err);
    free(rules);
    free(cmd);
}

/* Hardening: exposure needs a token, readers and writers hold different
 * tokens, token files must be owner-only, data files are owner-only. */
static void
test_agent_hardening(void **state)
{
    struct agent *a = *state;
    /* a non-loopback listener without a token is refused, naming the option */
    write_text(a->config, "http:\n  listen: 0.0.0.0:0\n");
    char *cmd = fr_asprintf("%s config check %s", FR_BIN, a->config), *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "http.listen: 0.0.0.0:0 is not a loopback address"));
    free(out);
    free(err);
    write_text(a->config, "otlp:\n  listen: 10.0.0.1:4318\n");
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "otlp.listen: 10.0.0.1:4318 is not a loopback address"));
    free(out);
    free(err);
    /* a token too short to keep anyone out is refused, and so is an empty token file */
    write_text(a->config, "http:\n  listen: 0.0.0.0:0\n  auth_token: w\n");
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "http.auth_token: the token is 1 bytes; at least 16"));
    free(out);
    free(err);
    char *empty = t_path(a->dir, "empty.token");
    write_text(empty, "  \n");
    chmod(empty, 0600);
    char *text = fr_asprintf("http:\n  listen: 0.0.0.0:0\n  auth_token_file: %s\n", empty);
    write_text(a->config, text);
    free(text);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "the token is 0 bytes"));
    assert_non_null(strstr(err, empty));
    free(out);
    free(err);
    free(empty);
    write_text(a->config, "http:\n  listen: 0.0.0.0:0\n  auth_token: w-0123456789abcdef\n");
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    /* a token file open to others is refused at start */
    char *wfile = t_path(a->dir, "write.token"), *rfile = t_path(a->dir, "read.token");
    write_text(wfile, "writer-secret-0123456789\n");
    write_text(rfile, "reader-secret-0123456789\n");
    chmod(wfile, 0644);
    chmod(rfile, 0600);
    char *extra = fr_asprintf("  auth_token_file: %s\n  query_token_file: %s\n", wfile, rfile);
    agent_config(a, extra, NULL, NULL);
    a->pid = fork();
    if (a->pid == 0) {
        int null = open("/dev/null", O_WRONLY),
            log = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null, 1);
        dup2(log, 2);
        execl(FR_BIN, FR_BIN, "agent", "--config", a->config, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(a->pid, &st, 0);
    a->pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "readable by group or others (mode 644); run chmod 600"));
    assert_null(strstr(log, "writer-secret-0123456789"));
    free(log);
    /* writers and readers: each token opens only its side */
    chmod(wfile, 0600);
    agent_start(a);
    char *ev = events("h-1", 0, 2);
    const char *wauth[] = {"Authorization: Bearer writer-secret-0123456789", NULL};
    const char *rauth[] = {"Authorization: Bearer reader-secret-0123456789", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", wauth, ev, strlen(ev), &out, NULL), 202);
    free(out);
    assert_int_equal(http(a, "POST", "/v1/events", rauth, ev, strlen(ev), &out, NULL), 401);
    free(out);
    assert_int_equal(http(a, "GET", "/v1/conversations/h-1", wauth, NULL, 0, &out, NULL), 401);
    free(out);
    assert_int_equal(http(a, "GET", "/v1/conversations/h-1", rauth, NULL, 0, &out, NULL), 200);
    free(out);
    assert_int_equal(agent_stop(a), 0);
    /* the data directory and its files are owner-only */
    struct stat sb;
    char *dir = t_path(a->dir, "var");
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(a->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* a data directory opened up by someone is reported at start */
    chmod(dir, 0755);
    agent_start(a);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "is open to group or others (mode 755)"));
    free(log);
    free(dir);
    free(ev);
    free(extra);
    free(wfile);
    free(rfile);
}

/*
 * Listeners are not re-bound on reload: a reload that drops the token while
 * the agent listens on a non-loopback address is refused, and requests
 * without the token stay refused.
 */
static void
test_agent_reload_keeps_token_while_exposed(void **state)
{
    struct agent *a = *state;
    char *tok = t_path(a->dir, "ingest.token");
    write_text(tok, "exposed-token-0123456789\n");
    chmod(tok, 0600);
    char *base = fr_asprintf("storage:\n  path: %s\nsocket:\n  path: %s\notlp:\n  enabled: "
                             "false\nruntime:\n  self: false\n",
                             a->db, a->sock);
    char *with = fr_asprintf("%shttp:\n  listen: 0.0.0.0:0\n  auth_token_file: %s\n", base, tok);
    write_text(a->config, with);
    agent_start(a);
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL), 401);
    /* the new file is fine on its own (loopback, no token), but the bound listener is not */
    char *without = fr_asprintf("%shttp:\n  listen: 127.0.0.1:0\n", base);
    write_text(a->config, without);
    kill(a->pid, SIGHUP);
    wait_log(a, "reload rejected");
    wait_log(a, "listens on 0.0.0.0:0, not loopback");
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL), 401);
    const char *auth[] = {"Authorization: Bearer exposed-token-0123456789", NULL};
    assert_int_equal(http(a, "GET", "/v1/conversations", auth, NULL, 0, NULL, NULL), 200);
    assert_int_equal(agent_stop(a), 0);
    free(without);
    free(with);
    free(base);
    free(tok);
}

/*
 * keys.dir: the agent keeps its keys in the folder the configuration names
 * (not beside the database): the HMAC key, and the archive key that
 * authenticates the segments its retention job writes, made 0600 at start.
 * $FLIGHTREC_KEYS_DIR, when set, wins.
 */
static void
test_agent_keys_dir(void **state)
{
    struct agent *a = *state;
    char *saved = fr_strdup(getenv("FLIGHTREC_KEYS_DIR"));
    unsetenv("FLIGHTREC_KEYS_DIR");
    char *dir = t_path(a->dir, "etc/keys"), *extra = fr_asprintf("keys:\n  dir: %s\n", dir);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    assert_int_equal(agent_stop(a), 0);
    setenv("FLIGHTREC_KEYS_DIR", saved, 1);
    const char *names[] = {"hmac.key", "archive.key"};
    for (int i = 0; i < 2; i++) {
        char *k = t_path(dir, names[i]);
        struct stat st;
        if (stat(k, &st) != 0)
            fail_msg("%s was not made in keys.dir", k);
        assert_int_equal(st.st_mode & 0777, 0600);
        free(k);
    }
    char *beside = t_path(a->dir, "var/keys");
    assert_int_equal(access(beside, F_OK), -1);
    free(beside);
    free(extra);
    free(dir);
    free(saved);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_metrics_and_runtime_sampler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_reload_keeps_old_config_on_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_shutdown_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_config_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_hardening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_keys_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_reload_keeps_token_while_exposed, setup,
                                        teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
