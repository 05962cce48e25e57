/*
 * tests/integration/test_agent_crash.c - the real agent: kill -9 under load, during retention and
 * during bundles and uploads (stress: ctest label "stress").
 */
#include "tests/integration/agent.h"

#include <poll.h>

/*
 * kill -9 at random moments under continuous load, FR_CRASH_ROUNDS rounds
 * (default 8): after every restart each acknowledged event is there exactly
 * once, and the database passes PRAGMA integrity_check.
 */
static void
test_agent_kill9_under_load(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  batch_events: 200\n", NULL);
    agent_start(a);
    int rounds = getenv("FR_CRASH_ROUNDS") ? atoi(getenv("FR_CRASH_ROUNDS")) : 8;
    unsigned seed = t_seed("kill -9 under load");
    print_message("kill -9 under load: %d rounds\n", rounds);
    struct loader *l = loader_start(a->port, 0);
    for (int r = 0; r < rounds; r++) {
        wait_progress(l);
        usleep((useconds_t)(20000 + rand_r(&seed) % 250000));
        long acked = loader_kill_agent(l, a);
        /* everything acknowledged so far is there, once (the batch in flight may be too) */
        long stored = count_events(a->db, "load");
        if (stored < acked || stored > acked + 50)
            fail_msg("round %d: %ld events stored, %ld acknowledged", r, stored, acked);
        char ok[64] = "";
        sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
        assert_string_equal(ok, "ok");
        loader_restart_agent(l, a);
    }
    wait_progress(l); /* the producer is served again after the last restart */
    loader_stop();
    assert_int_equal(agent_stop(a), 0);
    assert_true(l->batches > rounds);
    assert_int_equal(count_events(a->db, "load"), l->acked);
    assert_int_equal(sql_long(a->db,
                              "SELECT count(*) - count(DISTINCT event_id) FROM events WHERE "
                              "conv_id = 'load'",
                              NULL, 0),
                     0);
    char ok[64] = "";
    sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    print_message("%ld events acknowledged in %ld batches, %ld retries across %d crashes\n",
                  l->acked, l->batches, l->retries, rounds);
}

/*
 * The same during retention: the agent's retention job runs every second
 * (everything the loader sends is old enough to move to warm), the daemon
 * is killed at random moments: every acknowledged event is readable exactly
 * once across hot and warm, and the database stays intact.
 */
static void
test_agent_kill9_during_retention_under_load(void **state)
{
    struct agent *a = *state;
    char *policy = t_path(a->dir, "retention.yaml");
    write_text(policy, "schedule:\n  interval: 1s\nwarm:\n  segment_events: 2000\n");
    char *extra = fr_asprintf("retention:\n  policy: %s\n", policy);
    agent_config(a, NULL, "  batch_events: 200\n", extra);
    agent_start(a);
    unsigned seed = t_seed(__func__);
    struct loader *l = loader_start(a->port, 10000);
    for (int r = 0; r < 6; r++) {
        wait_progress(l);
        usleep((useconds_t)(300000 + rand_r(&seed) % 1500000));
        long acked = loader_kill_agent(l, a);
        char ok[64] = "";
        sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
        assert_string_equal(ok, "ok");
        long dups, n = count_across_tiers(a, "load", &dups);
        if (dups != 0 || n < acked || n > acked + 50)
            fail_msg("round %d (seed %u): %ld readable (%ld repeated), %ld acknowledged", r, seed,
                     n, dups, acked);
        loader_restart_agent(l, a);
    }
    /* let the retention job move something before the end (slow under valgrind) */
    for (int i = 0;
         i < 600 && sql_long(a->db, "SELECT count(*) FROM archive_segments", NULL, 0) == 0; i++)
        usleep(100000);
    loader_stop();
    assert_int_equal(agent_stop(a), 0);
    long dups, n = count_across_tiers(a, "load", &dups);
    assert_int_equal(dups, 0);
    assert_int_equal(n, l->acked);
    long warm = sql_long(a->db, "SELECT count(*) FROM archive_segments", NULL, 0);
    assert_true(warm > 0); /* retention did run between the crashes */
    print_message("%ld events acknowledged, %ld in hot, %ld warm segments, seed %u\n", l->acked,
                  count_events(a->db, "load"), warm, seed);
    free(extra);
    free(policy);
}

/*
 * kill -9 during bundle creation: the bundle's name only ever holds a whole,
 * verifiable bundle. kill -9 during an upload (to a target that accepts the
 * connection and never answers): the bundle stays in the outbox and a later
 * retry delivers it.
 */
static void
test_agent_kill9_during_bundle_and_upload(void **state)
{
    struct agent *a = *state;
    char *file = t_path(a->dir, "big.ndjson"), *ev = events("big", 0, 30000);
    write_text(file, ev);
    free(ev);
    char *cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, a->db, file), *out, *err;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    char *key = t_path(a->dir, "sign.pem"), *pub = t_path(a->dir, "sign.pub"),
         *bundle = t_path(a->dir, "big.tar.zst");
    cmd = fr_asprintf("%s incident keygen --key %s --pubkey %s", FR_BIN, key, pub);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    char *create = fr_asprintf("incident create --db %s --conv big --key %s --out %s", a->db, key,
                               bundle),
         *verify = fr_asprintf("%s incident verify %s --pubkey %s", FR_BIN, bundle, pub);
    unsigned seed = t_seed(__func__);
    int killed = 0;
    for (int r = 0; r < 6; r++) {
        pid_t pid = spawn_cli(create);
        usleep((useconds_t)(rand_r(&seed) % 400000));
        killed += kill(pid, SIGKILL) == 0;
        waitpid(pid, NULL, 0);
        if (access(bundle, F_OK) == 0) { /* whatever has the name is whole */
            if (t_run(verify, &out, &err) != 0)
                fail_msg("round %d: a partial bundle under the final name: %s", r, err);
            free(out);
            free(err);
        }
    }
    print_message("bundle creation killed %d times (seed %u)\n", killed, seed);
    cmd = fr_asprintf("%s %s", FR_BIN, create);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(t_run(verify, &out, &err), 0);
    free(out);
    free(err);
    /* the upload: a listener that never accepts, so the request hangs */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    char *outbox = t_path(a->dir, "outbox"), *yaml = t_path(a->dir, "upload.yaml");
    char *text = fr_asprintf("outbox: %s\ntargets:\n  - name: t\n    url: "
                             "http://127.0.0.1:%d/u/{name}\n    timeout_ms: 600000\n",
                             outbox, ntohs(sa.sin_port));
    write_text(yaml, text);
    free(text);
    char *up = fr_asprintf("incident upload %s --to t --targets %s", bundle, yaml);
    pid_t pid = spawn_cli(up);
    /* the upload has started once the CLI connected (the listener never answers) */
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 60000), 1);
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st)); /* it was still uploading */
    close(cfd);
    close(lfd);
    cmd = fr_asprintf("%s outbox list --targets %s", FR_BIN, yaml);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "big.tar.zst"));
    free(out);
    free(err);
    /* the target is back (here: a sink on another port): a retry delivers it */
    int port = 0;
    pid_t sink = sink_start(&port);
    text = fr_asprintf("outbox: %s\ntargets:\n  - name: t\n    url: "
                       "http://127.0.0.1:%d/u/{name}\n",
                       outbox, port);
    write_text(yaml, text);
    free(text);
    char *retry = fr_asprintf("%s outbox retry --targets %s", FR_BIN, yaml);
    int rc = t_run(retry, &out, &err); /* the sink listens already */
    if (rc != 0)
        fail_msg("outbox retry: %s", err);
    free(out);
    free(err);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_null(strstr(out, "big.tar.zst"));
    free(out);
    free(err);
    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    free(retry);
    free(cmd);
    free(up);
    free(yaml);
    free(outbox);
    free(create);
    free(verify);
    free(key);
    free(pub);
    free(bundle);
    free(file);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_kill9_under_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_kill9_during_retention_under_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_kill9_during_bundle_and_upload, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
