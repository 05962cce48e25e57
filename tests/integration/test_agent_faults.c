/*
 * tests/integration/test_agent_faults.c - the real agent: injected faults: a held SQLite lock, the
 * data directory deleted, a read-only database, a full disk.
 */
#include "tests/integration/agent.h"

#include <sys/statvfs.h>

#include "core/timeutil.h"

/* Another process holds the write lock: 503 with the reason and Retry-After,
 * /readyz says why, and it recovers by itself when the lock goes. */
static void
test_agent_fault_sqlite_busy(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  busy_timeout_ms: 200\n", NULL);
    agent_start(a);
    char *ev = events("busy", 0, 10), *out;
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(a->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ev = events("busy", 10, 10);
    struct hdrs hd = {0};
    assert_int_equal(http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, &hd), 503);
    assert_non_null(strstr(out, "locked"));
    assert_true(atoi(hd.retry_after) > 0);
    free(out);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, "the last commit failed"));
    free(out);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    assert_int_equal(post(a, ev, NULL), 202); /* the client's retry */
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "busy"), 20);
    free(ev);
}

/* The data directory deleted under the running agent: SQLite would write on
 * into the unlinked file, so the next commit fails saying so (nothing acked),
 * the agent exits 3, and started again it begins a new database. */
static void
test_agent_fault_data_dir_deleted(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *ev = events("gone", 0, 10), *out;
    assert_int_equal(post(a, ev, NULL), 202);
    char *var = t_path(a->dir, "var");
    t_rmtree(var);
    assert_int_equal(http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, NULL), 503);
    assert_non_null(strstr(out, "was removed or replaced"));
    free(out);
    assert_int_equal(agent_wait_exit(a), 3);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "was removed (or its directory): stopping with exit status 3"));
    free(log);
    agent_start(a);
    assert_int_equal(post(a, ev, NULL), 202);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "gone"), 10);
    free(var);
    free(ev);
}

/* A read-only database: the agent refuses to start and says why; writable
 * again, it starts with the data intact. */
static void
test_agent_fault_read_only_database(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *ev = events("ro", 0, 10);
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    assert_int_equal(agent_stop(a), 0);
    char *var = t_path(a->dir, "var");
    bool mounted = false;
    if (geteuid() == 0) { /* root writes through file modes: make the filesystem read-only */
        mounted = mount(var, var, "none", MS_BIND, NULL) == 0 &&
                  mount("none", var, "none", MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0;
        if (!mounted)
            print_message("no read-only bind mount here (%s); using file modes\n", strerror(errno));
    }
    if (!mounted) {
        chmod(a->db, 0400);
        chmod(var, 0500);
    }
    char *log = agent_start_fails(a);
    if (strstr(log, "readonly") == NULL && strstr(log, "read-only") == NULL &&
        strstr(log, "not writable") == NULL)
        fail_msg("no clear reason in the log: %s", log);
    free(log);
    if (mounted)
        assert_int_equal(umount2(var, 0), 0);
    chmod(var, 0700);
    chmod(a->db, 0600);
    agent_start(a);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "ro"), 10);
    free(var);
}

/* The agent's data directory on a tmpfs of the given options (root); skips the test
   elsewhere. The caller unmounts and frees it. */
static char *
small_data_dir(struct agent *a, const char *options)
{
    char *var = t_path(a->dir, "var");
    mkdir(var, 0700);
    if (mount("tmpfs", var, "tmpfs", 0, options) != 0) {
        print_message("SKIPPED: cannot mount a small tmpfs here (%s; needs root)\n",
                      strerror(errno));
        free(var);
        skip();
    }
    return var;
}

/*
 * The agent configured with the disk floor off (hot.min_free_percent: 0),
 * for the tests of what a full disk does: with it on, a floor run (a whole
 * retention run) can move the fixtures' events, a year old and so due by
 * age, to warm while the disk fills, and these tests count the events hot
 * holds. test_agent_fault_disk_floor tests the floor.
 */
static void
agent_config_no_floor(struct agent *a)
{
    char *policy = t_path(a->dir, "no-floor.yaml");
    write_text(policy, "hot:\n  min_free_percent: 0\n");
    char *sections = fr_asprintf("retention:\n  policy: %s\n", policy);
    agent_config(a, NULL, NULL, sections);
    free(sections);
    free(policy);
}

/* The data directory on a small filesystem that fills up: ingest answers 503
 * and stops acking, the log and /readyz say why, nothing acked is lost, and
 * when space returns ingest recovers by itself. Needs a tmpfs mount (root). */
static void
test_agent_fault_disk_full(void **state)
{
    struct agent *a = *state;
    char *var = small_data_dir(a, "size=3m,mode=0700");
    agent_config_no_floor(a);
    agent_start(a);
    long acked = 0, status = 202;
    char *out = NULL;
    int b;
    for (b = 0; b < 2000 && status == 202; b++) {
        char *ev = events("full", b * 100, 100);
        free(out);
        status = http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, NULL);
        if (status == 202)
            acked += 100;
        free(ev);
    }
    assert_int_equal(status, 503);
    /* the answer names the file, the room left and what to do, not SQLite's bare words */
    char *said = fr_asprintf("the disk holding the hot store %s is full (", a->db);
    assert_non_null(strstr(out, said));
    assert_non_null(strstr(out, "free of 3.0 MiB)"));
    assert_non_null(strstr(out, "hot.max_bytes"));
    free(out);
    print_message("disk full after %ld acknowledged events\n", acked);
    /* the producer retries: more failed commits, still one line in the log */
    for (int i = 0; i < 5; i++) {
        char *ev = events("full", b * 100, 100);
        assert_int_equal(post(a, ev, NULL), 503);
        free(ev);
    }
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, said));
    free(out);
    free(said);
    wait_metric(a, "flightrec_store_disk_bytes 3145728\n");
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    long free_bytes = -1;
    const char *g = strstr(out, "\nflightrec_store_disk_free_bytes ");
    assert_non_null(g);
    free_bytes = atol(g + strlen("\nflightrec_store_disk_free_bytes "));
    assert_true(free_bytes >= 0 && free_bytes < 1024 * 1024);
    free(out);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    const char *first = strstr(log, "commit of 100 events failed: commit");
    assert_non_null(first);
    assert_non_null(strstr(first, "the disk holding the hot store"));
    assert_null(strstr(first + 1, "commit of 100 events failed"));
    assert_null(strstr(log, "commits still failing")); /* said after 30 s of them */
    free(log);
    /* space returns: the producer's retries go through, no restart */
    assert_int_equal(mount("tmpfs", var, "tmpfs", MS_REMOUNT, "size=64m,mode=0700"), 0);
    char *ev = events("full", b * 100, 100);
    long st = 0;
    for (int i = 0; i < 50 && st != 202; i++) {
        st = post(a, ev, NULL);
        if (st != 202)
            usleep(100000);
    }
    assert_int_equal(st, 202);
    free(ev);
    wait_log(a, "commits succeed again, after ");
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "full"), acked + 100);
    char ok[64] = "";
    sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    assert_int_equal(umount2(var, 0), 0);
    free(var);
}

/*
 * An agent started on a full disk (its database cannot even be opened for
 * writing: SQLite needs room for the -wal and -shm files) starts all the
 * same with ingest paused: /healthz answers, /readyz is 503 saying why,
 * reads are served, a POST is 503 naming the cause; once space is freed,
 * ingest resumes without a restart and nothing acknowledged is lost.
 */
static void
test_agent_fault_disk_full_at_start(void **state)
{
    struct agent *a = *state;
    char *var = small_data_dir(a, "size=4m,mode=0700");
    agent_config_no_floor(a);
    agent_start(a);
    char *ev = events("before", 0, 50);
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    assert_int_equal(agent_stop(a), 0);
    /* every byte left taken by another file */
    char *filler = t_path(var, "filler");
    char *cmd = fr_asprintf("dd if=/dev/zero of=%s bs=4k 2>/dev/null", filler);
    t_run(cmd, NULL, NULL);
    free(cmd);
    agent_start(a);
    wait_log(a, "starting with ingest paused");
    char *out = NULL;
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, &out, NULL), 200);
    free(out);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, "ingest paused"));
    assert_non_null(strstr(out, "no space left"));
    free(out);
    json_t *c = get_json(a, "/v1/conversations/before", 200); /* reads are served */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(c, "conversation"), "event_count")), 50);
    json_decref(c);
    ev = events("after", 0, 50);
    struct hdrs hd = {0};
    assert_int_equal(http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, &hd), 503);
    assert_non_null(strstr(out, "no space left"));
    assert_true(atoi(hd.retry_after) > 0);
    free(out);
    /* space comes back: the producer's retries go through, no restart */
    assert_int_equal(unlink(filler), 0);
    long st = 0;
    for (int i = 0; i < 100 && st != 202; i++) {
        st = post(a, ev, NULL);
        if (st != 202)
            usleep(100000);
    }
    assert_int_equal(st, 202);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 200);
    free(out);
    c = get_json(a, "/v1/conversations/after", 200); /* the read connections see new data */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(c, "conversation"), "event_count")), 50);
    json_decref(c);
    free(ev);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "before"), 50);
    assert_int_equal(count_events(a->db, "after"), 50);
    assert_int_equal(umount2(var, 0), 0);
    free(filler);
    free(var);
}

/* n events of conversation conv, each with about 4 KiB of text that compresses little. */
static char *
bulky_events(const char *conv, int n, uint64_t *seed)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t cap = (size_t)n * 4400, len = 0;
    char *s = fr_malloc(cap);
    int64_t now = fr_now_ms();
    for (int i = 0; i < n; i++) {
        char text[4097];
        for (size_t k = 0; k < sizeof text - 1; k++) {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            text[k] = (k % 9 == 8) ? ' ' : digits[*seed % 62];
        }
        text[sizeof text - 1] = '\0';
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\","
                                "\"event_id\":\"%s-%d\",\"data\":{\"name\":\"search\","
                                "\"result\":\"%s\"}}\n",
                                (long long)now, conv, conv, i, text);
    }
    return s;
}

/*
 * `flightrec retention run`, the command an operator runs by hand (the agent
 * stopped), looks at the disk floor as the agent's run does: with the disk
 * under hot.min_free_percent it says so and moves the oldest hot events to
 * warm before their age; with the floor off, the same store moves nothing
 * (its events are of now, none due). Every event stays readable.
 */
static void
test_cli_retention_run_under_disk_floor(void **state)
{
    struct agent *a = *state;
    char *var = small_data_dir(a, "size=32m,mode=0700");
    char *db = t_path(var, "db"), *file = t_path(a->dir, "bulky.ndjson");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    uint64_t seed = 88172645463325252ull;
    for (int c = 0; c < 20; c++) {
        char conv[32];
        snprintf(conv, sizeof conv, "cli-floor-%02d", c);
        char *ev = bulky_events(conv, 100, &seed);
        fputs(ev, f);
        free(ev);
    }
    fclose(f);
    char *cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, db, file);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM events", NULL, 0), 2000);
    char *off = t_path(a->dir, "floor-off.yaml"), *on = t_path(a->dir, "floor-on.yaml");
    write_text(off, "hot:\n  min_free_percent: 0\nwarm:\n  segment_events: 200\n");
    struct statvfs vfs;
    assert_int_equal(statvfs(var, &vfs), 0);
    long free_pct = (long)(100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks);
    long floor = free_pct + 10 > 90 ? 90 : free_pct + 10; /* under it, whatever the store took */
    assert_true(floor > free_pct);
    char *yaml = fr_asprintf(
        "hot:\n  min_free_percent: %ld\n  min_free_keep: 0\nwarm:\n  segment_events: 200\n", floor);
    write_text(on, yaml);
    free(yaml);
    char *out = NULL, *err = NULL;
    cmd = fr_asprintf("%s retention run --no-progress --db %s --policy %s", FR_BIN, db, off);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(cmd);
    assert_null(strstr(err, "min_free_percent"));
    assert_non_null(strstr(err, "retention: 0 events moved to warm"));
    free(out);
    free(err);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM events", NULL, 0), 2000);
    cmd = fr_asprintf("%s retention run --no-progress --db %s --policy %s", FR_BIN, db, on);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(cmd);
    char said[96];
    snprintf(said, sizeof said, "under hot.min_free_percent (%ld%%): this run also moves", floor);
    if (strstr(err, said) == NULL)
        fail_msg("not said: %s", err);
    long hot = sql_long(db, "SELECT count(*) FROM events", NULL, 0);
    assert_true(hot < 2000);
    assert_true(sql_long(db, "SELECT count(*) FROM archive_segments", NULL, 0) > 0);
    free(out);
    free(err);
    /* every event readable still: the moved ones from warm */
    cmd = fr_asprintf("%s show --db %s --json cli-floor-00", FR_BIN, db);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    free(cmd);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 100);
    json_decref(j);
    free(out);
    assert_int_equal(umount2(var, 0), 0);
    free(off);
    free(on);
    free(db);
    free(file);
    free(var);
}

/*
 * hot.min_free_percent: the data directory on a 128 MiB disk under a floor
 * of half of it, and half again as many bytes of events posted as the disk
 * holds, at a producer's pace. The agent moves the oldest hot events to warm
 * as the disk goes under the floor (its log, /readyz and /metrics say so),
 * so every event is stored and readable (the oldest from warm) instead of
 * the disk filling up: without the floor the producer's retries would never
 * be acknowledged. Events are of now, so that none is due by age.
 */
static void
test_agent_fault_disk_floor(void **state)
{
    struct agent *a = *state;
    char *var = small_data_dir(a, "size=128m,mode=0700");
    char *policy = t_path(a->dir, "floor.yaml");
    write_text(policy, "hot:\n  max_age: 0\n  min_free_percent: 50\n  min_free_keep: 0\n"
                       "warm:\n  segment_events: 2000\n"
                       "schedule:\n  interval: 0\n");
    char *sections = fr_asprintf("retention:\n  policy: %s\n", policy);
    agent_config(a, NULL, NULL, sections);
    agent_start(a);
    uint64_t seed = 88172645463325252ull;
    int posts = 480, retried = 0; /* 480 x 100 x 4 KiB: 192 MiB */
    bool said_low = false;
    for (int b = 0; b < posts; b++) {
        char conv[32];
        snprintf(conv, sizeof conv, "floor-%03d", b);
        char *ev = bulky_events(conv, 100, &seed);
        long st = 0;
        for (int i = 0; i < 600 && st != 202; i++) { /* a producer retrying for up to a minute */
            st = http(a, "POST", "/v1/events", NULL, ev, strlen(ev), NULL, NULL);
            if (st != 202) {
                retried++;
                usleep(100000);
            }
        }
        if (st != 202) {
            char *lg;
            size_t ln;
            fr_read_file(a->log, &lg, &ln, NULL);
            print_message("the agent's log:\n%s\n", lg);
            free(lg);
            fail_msg("post %d never acknowledged (status %ld): the disk filled", b, st);
        }
        free(ev);
        /* while under the floor, /readyz says so and stays 200 */
        char *ready = NULL;
        assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &ready, NULL), 200);
        said_low |= strstr(ready, "; disk: ") != NULL &&
                    strstr(ready, " free of 128.0 MiB, under hot.min_free_percent (50%)") != NULL;
        free(ready);
        usleep(20000); /* a producer's pace: at most 20 MB/s */
    }
    assert_true(said_low);
    print_message("%d posts of 100 events, %d retried\n", posts, retried);
    wait_log(a, "under hot.min_free_percent (50%): the oldest hot events move to warm now, before "
                "their age");
    wait_log(a, "for room on the disk: ");
    wait_metric(a, "flightrec_retention_disk_runs_total ");
    char *m = NULL;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL), 200);
    const char *runs = strstr(m, "\nflightrec_retention_disk_runs_total ");
    assert_non_null(runs);
    assert_true(atol(runs + strlen("\nflightrec_retention_disk_runs_total ")) >= 1);
    free(m);
    assert_int_equal(agent_stop(a), 0);
    /* the oldest left hot for warm, first: what stays in hot is the newest conversations
       (with min_free_keep 0 a slow agent, under valgrind, may have moved them all); each is
       read whole */
    assert_int_equal(count_events(a->db, "floor-000"), 0);
    bool hot = false;
    for (int b = 0; b < posts; b++) {
        char conv[32];
        snprintf(conv, sizeof conv, "floor-%03d", b);
        bool in_hot = count_events(a->db, conv) > 0;
        if (hot && !in_hot)
            fail_msg("%s left hot while an older conversation stayed", conv);
        hot = hot || in_hot;
    }
    long dups;
    assert_int_equal(count_across_tiers(a, "floor-000", &dups), 100);
    assert_int_equal(dups, 0);
    assert_int_equal(count_across_tiers(a, "floor-240", &dups), 100);
    assert_int_equal(count_across_tiers(a, "floor-479", &dups), 100);
    assert_int_equal(umount2(var, 0), 0);
    free(sections);
    free(policy);
    free(var);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_fault_sqlite_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_data_dir_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_read_only_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_disk_full_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_disk_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_retention_run_under_disk_floor, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
