/*
 * tests/integration/test_agent_fleet.c - three real agents (separate
 * processes and data directories) ship into one real PostgreSQL server
 * (Debian's, started here by scripts/pg-test.sh on a Unix socket in a
 * temporary directory, torn down after): a conversation spread over all
 * three reads back whole and in order through `flightrec show --db
 * postgres://...`; kill -9 of agents and a PostgreSQL restart in the middle
 * lose and duplicate nothing (exact ids, and the conversation index counts
 * each event once); while PostgreSQL is down, ingest goes on, the lag is in
 * /metrics and /readyz, and the backlog drains when it returns.
 */
#include "tests/integration/agent.h"

#include "core/timeutil.h"
#include "retention/hot/archive.h"
#include "retention/hot/store.h"

#define AGENTS 3

struct fleet {
    char *pgdir, *uri;
    struct agent *a[AGENTS];
};

static char *
pg_script(const char *cmd, const char *dir)
{
    char *line = fr_asprintf("%s/scripts/pg-test.sh %s %s", FR_SOURCE_DIR, cmd, dir);
    char *out = NULL, *err = NULL;
    int rc = t_run(line, &out, &err);
    if (rc != 0)
        fail_msg("%s: exit %d: %s", line, rc, err);
    free(line);
    free(err);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static void
fleet_agent_start(struct fleet *f, int i)
{
    /* pod0's query API reads the fleet store */
    char *extra = fr_asprintf("ship:\n  url: \"%s\"\n  host: pod%d\n  interval: 50ms\n"
                              "  batch_events: 40\n  query: \"%s\"\n",
                              f->uri, i, i == 0 ? f->uri : "");
    /* pod0 takes erasures through its API */
    char *tok = t_path(f->a[i]->dir, "admin.token");
    write_text(tok, "admin-0123456789abcdef-token\n");
    chmod(tok, 0600);
    char *http_extra = fr_asprintf("  admin_token_file: %s\n", tok);
    agent_config(f->a[i], i == 0 ? http_extra : NULL, NULL, extra);
    free(http_extra);
    free(tok);
    free(extra);
    agent_start(f->a[i]);
}

static int
fleet_setup(void **state)
{
    struct fleet *f = fr_calloc(1, sizeof *f);
    f->pgdir = t_tmpdir();
    f->uri = pg_script("start", f->pgdir);
    for (int i = 0; i < AGENTS; i++) {
        void *st;
        setup(&st);
        f->a[i] = st;
        fleet_agent_start(f, i);
    }
    *state = f;
    return 0;
}

static int
fleet_teardown(void **state)
{
    struct fleet *f = *state;
    for (int i = 0; i < AGENTS; i++) {
        void *st = f->a[i];
        teardown(&st);
    }
    free(pg_script("kill", f->pgdir));
    t_rmtree(f->pgdir);
    free(f->pgdir);
    free(f->uri);
    free(f);
    return 0;
}

/* What the fleet store holds of one conversation. */
struct central {
    long rows;
    int64_t last_ts;
    bool ordered;
    char **ids; /* event ids in read order */
    size_t nids;
};

static int
central_row(void *ud, const struct fr_event_row *r)
{
    struct central *c = ud;
    if (r->ts_ms < c->last_ts)
        c->ordered = false;
    c->last_ts = r->ts_ms;
    c->ids = fr_realloc(c->ids, (c->nids + 1) * sizeof *c->ids);
    c->ids[c->nids++] = fr_strdup(r->ids[FR_ID_EVENT] ? r->ids[FR_ID_EVENT] : "");
    c->rows++;
    return 0;
}

static void
central_free(struct central *c)
{
    for (size_t i = 0; i < c->nids; i++)
        free(c->ids[i]);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static int
conv_count(void *ud, const struct fr_conv_row *r)
{
    *(int64_t *)ud = r->event_count;
    return 0;
}

/* Reads conv from the fleet store; *indexed = its event count in the conversation index. */
static void
central_read(struct fleet *f, const char *conv, struct central *c, int64_t *indexed)
{
    memset(c, 0, sizeof *c);
    c->ordered = true;
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.read_only = true;
    so.create = false;
    struct fr_store *st;
    struct fr_err err = {0};
    *indexed = -1;
    if (fr_store_open(f->uri, &so, &st, &err) != FR_OK)
        return; /* not there yet (no schema before the first agent ships) */
    struct fr_event_filter ef = {.conv_id = conv, .id_field = -1};
    assert_int_equal(fr_store_events(st, &ef, central_row, c, &err), FR_OK);
    struct fr_err cerr = {0};
    int64_t n = -1;
    if (fr_store_conversation(st, conv, conv_count, &n, &cerr) == FR_OK)
        *indexed = n;
    fr_store_close(st);
}

/* Waits (up to 60 s) until the fleet store holds want events of conv. */
static void
wait_central(struct fleet *f, const char *conv, long want, struct central *c, int64_t *indexed)
{
    for (int i = 0; i < 600; i++) {
        central_read(f, conv, c, indexed);
        if (c->rows >= want && *indexed >= want)
            return;
        central_free(c);
        usleep(100 * 1000);
    }
    central_read(f, conv, c, indexed);
    fail_msg("the fleet store holds %ld events of %s (index %lld), want %ld", c->rows, conv,
             (long long)*indexed, want);
}

/* Events of conv numbered from..from+n-1 (ts in that order); odd ones without an event id
   when with_ids is false (then only the sidecar's row identifies them). */
static char *
fleet_events_at(int64_t base_ms, const char *conv, int from, int n, bool all_ids)
{
    size_t cap = (size_t)n * 260 + 1, len = 0;
    char *s = fr_malloc(cap);
    s[0] = '\0';
    for (int i = from; i < from + n; i++) {
        char id[48] = "";
        if (all_ids || i % 2 == 0)
            snprintf(id, sizeof id, "\"event_id\":\"e-%06d\",", i);
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",%s"
                                "\"data\":{\"name\":\"search\",\"status\":\"ok\","
                                "\"args\":{\"q\":\"n%d\"}}}\n",
                                (long long)(base_ms + i * 10), conv, id, i);
    }
    return s;
}

static char *
fleet_events(const char *conv, int from, int n, bool all_ids)
{
    return fleet_events_at(1771357445000LL, conv, from, n, all_ids);
}

/*
 * One conversation, its turns landing on three replicas: read back from the
 * fleet store whole, in time order, counted once in the merged index, the
 * same through the CLI (`show --db postgres://`).
 */
static void
test_fleet_conversation_across_three_agents(void **state)
{
    struct fleet *f = *state;
    /* interleaved: event i goes to agent i % 3, so the order is only right when merged */
    for (int i = 0; i < 60; i++) {
        char *body = fleet_events("spread", i, 1, true);
        assert_int_equal(post(f->a[i % AGENTS], body, NULL), 202);
        free(body);
    }
    struct central c;
    int64_t indexed;
    wait_central(f, "spread", 60, &c, &indexed);
    assert_int_equal(c.rows, 60);
    assert_int_equal(indexed, 60);
    assert_true(c.ordered);
    for (size_t i = 0; i < c.nids; i++) {
        char want[32];
        snprintf(want, sizeof want, "e-%06zu", i);
        assert_string_equal(c.ids[i], want);
    }
    central_free(&c);

    /* the CLI against the fleet store: the conversation, its 60 events, in order */
    char *cmd = fr_asprintf("%s show spread --json --db '%s'", FR_BIN, f->uri), *out = NULL;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    json_t *evs = json_object_get(doc, "events");
    assert_int_equal(json_array_size(evs), 60);
    for (size_t i = 0; i < 60; i++) {
        char want[32];
        snprintf(want, sizeof want, "e-%06zu", i);
        const char *id = json_string_value(json_object_get(json_array_get(evs, i), "event_id"));
        assert_non_null(id);
        assert_string_equal(id, want);
    }
    json_decref(doc);
    free(out);
    free(cmd);
    /* pod0's query API answers for the fleet: all 60, though it took only 20 itself */
    json_t *api = get_json(f->a[0], "/v1/conversations/spread", 200);
    assert_int_equal(json_array_size(json_object_get(api, "events")), 60);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(api, "conversation"), "event_count")),
        60);
    json_decref(api);
    /* a page of it, counted and read by the fleet store */
    api = get_json(f->a[0], "/v1/conversations/spread?offset=10&limit=5", 200);
    assert_int_equal(json_integer_value(json_object_get(api, "total_events")), 60);
    evs = json_object_get(api, "events");
    assert_int_equal(json_array_size(evs), 5);
    for (size_t i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "e-%06zu", 10 + i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(evs, i), "event_id")),
                            want);
    }
    json_decref(api);
    api = get_json(f->a[1], "/v1/conversations/spread", 200); /* pod1's: its own 20 */
    assert_int_equal(json_array_size(json_object_get(api, "events")), 20);
    json_decref(api);
    /* ship.url must name a fleet store: a file path (or an unknown scheme) is refused at
       start, without echoing a password */
    struct agent *bad = f->a[2];
    assert_int_equal(agent_stop(bad), 0);
    static const char *const wrong[] = {"/var/lib/flightrec/other.db",
                                        "mysql://root:hunter2-secret@db/x"};
    for (size_t i = 0; i < 2; i++) {
        char *sec = fr_asprintf("ship:\n  url: \"%s\"\n", wrong[i]);
        agent_config(bad, NULL, NULL, sec);
        free(sec);
        char *log = agent_start_fails(bad);
        assert_non_null(strstr(log, "ship.url: expected a fleet store location"));
        assert_null(strstr(log, "hunter2"));
        free(log);
    }
    bad->pid = 0;
    /* the conversation list merges the three hosts' index rows into one */
    cmd = fr_asprintf("%s conversations --json --db '%s'", FR_BIN, f->uri);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    doc = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(doc), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(doc, 0), "event_count")),
                     60);
    json_decref(doc);
    free(out);
    free(cmd);
}

/*
 * kill -9 of agents at random moments while they ship, and a PostgreSQL
 * restart in the middle: every acknowledged event is in the fleet store
 * exactly once (ids compared one by one; half of them without a producer id,
 * identified only by the sidecar's row), and the conversation index counts
 * each once (a batch shipped twice is not counted twice).
 */
static void
test_fleet_kill9_and_postgres_restart(void **state)
{
    struct fleet *f = *state;
    unsigned seed = t_seed("fleet kill -9");
    int rounds = 6, per = 37, next = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < AGENTS; i++) {
            char *body = fleet_events("crash", next, per, false);
            assert_int_equal(post(f->a[i], body, NULL), 202);
            free(body);
            next += per;
        }
        if (r == rounds / 2) {
            free(pg_script("kill", f->pgdir)); /* a crash of the server, mid-stream */
            usleep(300 * 1000);
            free(pg_script("start", f->pgdir));
        }
        int victim = (int)(rand_r(&seed) % AGENTS);
        usleep((useconds_t)(rand_r(&seed) % 120) * 1000);
        struct agent *a = f->a[victim];
        assert_int_equal(kill(a->pid, SIGKILL), 0);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
        agent_start(a);
    }
    struct central c;
    int64_t indexed;
    wait_central(f, "crash", next, &c, &indexed);
    /* a moment more: anything shipped twice would show now */
    central_free(&c);
    usleep(500 * 1000);
    central_read(f, "crash", &c, &indexed);
    assert_int_equal(c.rows, next);
    assert_int_equal(indexed, next);
    assert_true(c.ordered);
    for (size_t i = 0; i < c.nids; i++) {
        char want[32] = "";
        if (i % 2 == 0)
            snprintf(want, sizeof want, "e-%06zu", i);
        assert_string_equal(c.ids[i], want);
    }
    central_free(&c);
    print_message("fleet: %d events over %d kill -9 rounds and a PostgreSQL crash\n", next, rounds);
}

static int count_row(void *ud, const struct fr_event_row *r);

static int
tool_calls(void *ud, const struct fr_rollup_row *r)
{
    *(int64_t *)ud += r->calls;
    return 0;
}

/*
 * The fleet store's side of exactly once, without timing luck: the same
 * batch shipped again (an agent killed after the commit, before it learned
 * of it) is refused whole by the fast path and, sent carefully, stores
 * nothing, counts nothing twice, and never moves the cursor back; new rows
 * on the fast path are stored and counted once; a store that is not a fleet
 * store refuses shipped rows, saying so.
 */
static void
test_fleet_store_batch_shipped_twice(void **state)
{
    struct fleet *f = *state;
    struct fr_store *st;
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(f->uri, NULL, &st, &err), FR_OK);
    /* rounds: 0 careful (its day has no partition yet: the fast path would refuse it),
       1 the same rows on the fast path: refused (FR_E_BUSY), nothing kept,
       2 the same rows carefully, with an older cursor: nothing new, the cursor stays,
       3 three new rows on the fast path: stored and counted */
    static const bool careful[] = {true, false, true, false};
    static const int64_t last[] = {102, 102, 101, 105};
    static const int64_t want[] = {3, -1, 0, 3};
    for (int round = 0; round < 4; round++) {
        assert_int_equal(fr_store_ship_begin(st, "podX", careful[round], &err), FR_OK);
        int first = round == 3 ? 3 : 0;
        for (int i = first; i < first + 3; i++) {
            char body[160], eid[16];
            snprintf(body, sizeof body, "{\"kind\":\"tool\",\"n\":%d}", i);
            snprintf(eid, sizeof eid, "e-%d", i);
            struct fr_event_row r = {.id = 100 + i,
                                     .ts_ms = 1771357445000LL + i,
                                     .ingested_ms = 1771357446000LL,
                                     .kind = "tool",
                                     .tool = "search",
                                     .has_duration = true,
                                     .duration_ms = 40,
                                     .body = body,
                                     .body_len = strlen(body)};
            r.ids[FR_ID_CONV] = "twice";
            r.ids[FR_ID_EVENT] = i % 2 ? NULL : eid; /* half identified by the row only */
            assert_int_equal(fr_store_ship_row(st, &r, &err), FR_OK);
        }
        int64_t inserted = -1;
        int rc = fr_store_ship_end(st, "src-twice", last[round], 1, &inserted, &err);
        if (want[round] < 0) {
            assert_int_equal(rc, FR_E_BUSY);
            fr_store_rollback(st);
            continue;
        }
        assert_int_equal(rc, FR_OK);
        assert_int_equal(inserted, want[round]);
    }
    int64_t cursor = 0;
    assert_int_equal(fr_store_ship_cursor(st, "src-twice", &cursor, &err), FR_OK);
    assert_int_equal(cursor, 105);
    assert_int_equal(fr_store_ship_cursor(st, "src-unknown", &cursor, &err), FR_OK);
    assert_int_equal(cursor, 0);
    int64_t indexed = -1, calls = 0;
    assert_int_equal(fr_store_conversation(st, "twice", conv_count, &indexed, &err), FR_OK);
    assert_int_equal(indexed, 6);
    struct fr_rollup_filter rf = {.dim = "tool"};
    assert_int_equal(fr_store_rollups(st, &rf, tool_calls, &calls, &err), FR_OK);
    assert_int_equal(calls, 6);
    /* an id past what a B-tree entry holds is keyed by its digest, and still found by itself
       (else its batch, and every retry, would fail for good) */
    char *long_id = fr_malloc(4001);
    uint32_t x = 2463534242u; /* incompressible: a compressible one would fit compressed */
    for (int i = 0; i < 4000; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        long_id[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
    }
    long_id[4000] = '\0';
    assert_int_equal(fr_store_ship_begin(st, "podX", true, &err), FR_OK);
    struct fr_event_row lr = {.id = 200,
                              .ts_ms = 1771357445500LL,
                              .ingested_ms = 1771357446000LL,
                              .kind = "tool",
                              .tool = "search",
                              .body = "{}",
                              .body_len = 2};
    lr.ids[FR_ID_CONV] = long_id;
    lr.ids[FR_ID_TRACE] = long_id;
    lr.ids[FR_ID_EVENT] = long_id;
    assert_int_equal(fr_store_ship_row(st, &lr, &err), FR_OK);
    int64_t got = -1;
    assert_int_equal(fr_store_ship_end(st, "src-long", 200, 1, &got, &err), FR_OK);
    assert_int_equal(got, 1);
    long nlong = 0;
    struct fr_event_filter lf = {.conv_id = long_id, .id_field = -1};
    assert_int_equal(fr_store_events(st, &lf, count_row, &nlong, &err), FR_OK);
    assert_int_equal(nlong, 1);
    struct fr_event_filter tf = {.id_field = FR_ID_TRACE, .id_value = long_id};
    nlong = 0;
    assert_int_equal(fr_store_events(st, &tf, count_row, &nlong, &err), FR_OK);
    assert_int_equal(nlong, 1);
    free(long_id);
    /* what a fleet store does not keep is refused by name, not crashed on */
    assert_int_equal(fr_store_link_trace(st, "trace-1", "twice", &err), FR_E_INVALID);
    assert_non_null(strstr(err.msg, "postgres"));
    fr_store_close(st);

    /* the embedded store takes no shipped rows */
    struct agent *a = f->a[0];
    struct fr_store *local;
    assert_int_equal(fr_store_open(a->db, NULL, &local, &err), FR_OK);
    assert_int_equal(fr_store_ship_begin(local, "podX", false, &err), FR_E_INVALID);
    assert_non_null(strstr(err.msg, "sqlite"));
    fr_store_close(local);
}

/*
 * The fleet store answers as the embedded store does: generated traffic
 * (every kind, errors, tokens, statuses) stored by `flightrec ingest` and
 * sent by `flightrec ship` gives the same conversation list, rollups and
 * error groups from both, line for line (its conversation index and
 * rollups are computed in SQL from the shipped rows, by the embedded
 * store's rules).
 */
static void
test_fleet_queries_match_the_hot_store(void **state)
{
    struct fleet *f = *state;
    char *dir = t_tmpdir(), *db = t_path(dir, "local.db"), *err = NULL;
    char *cmd = fr_asprintf("%s --events 4000 --seed 11 | %s ingest --no-progress --db %s -",
                            FR_GEN, FR_BIN, db);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    /* in two runs with a small batch: the second one continues from the cursor */
    cmd = fr_asprintf("%s ship --no-progress --batch 700 --host one --to '%s' --db %s", FR_BIN,
                      f->uri, db);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "4000 events (4000 new)"));
    free(err);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, " 0 events (0 new)"));
    free(err);
    free(cmd);
    static const char *const queries[] = {
        "conversations --limit 1000",
        "conversations --has-errors --limit 1000",
        "stats",
        "stats --by tool",
        "stats --by error",
        "stats --by finish",
        "errors --by code",
        "errors --by model",
        "conversations --json --limit 5",
        "conversations --prefix c-00001 --limit 1000",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char *local = NULL, *fleet = NULL;
        cmd = fr_asprintf("%s %s --db %s", FR_BIN, queries[i], db);
        assert_int_equal(t_run(cmd, &local, NULL), 0);
        free(cmd);
        cmd = fr_asprintf("%s %s --store '%s'", FR_BIN, queries[i], f->uri);
        assert_int_equal(t_run(cmd, &fleet, NULL), 0);
        free(cmd);
        if (strcmp(local, fleet) != 0)
            fail_msg("flightrec %s: the fleet store answers differently\n--- hot\n%.2000s\n"
                     "--- fleet\n%.2000s",
                     queries[i], local, fleet);
        assert_true(strlen(local) > 100);
        free(local);
        free(fleet);
    }
    t_rmtree(dir);
    free(db);
    free(dir);
}

static int
count_row(void *ud, const struct fr_event_row *r)
{
    (void)r;
    (*(long *)ud)++;
    return 0;
}

/*
 * Central retention: `flightrec fleet prune` drops whole day partitions
 * past --keep (nothing with --dry-run), their conversations leave the
 * index, and the days kept are untouched.
 */
static void
test_fleet_prune_drops_old_days(void **state)
{
    struct fleet *f = *state;
    struct fr_store *st;
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(f->uri, NULL, &st, &err), FR_OK);
    int64_t now = fr_now_ms(), day = 86400000;
    static const char *const convs[] = {"old5", "old3", "today"};
    const int64_t ts[] = {now - 5 * day, now - 3 * day, now - 60000};
    assert_int_equal(fr_store_ship_begin(st, "podP", true, &err), FR_OK);
    for (int i = 0; i < 3; i++) {
        struct fr_event_row r = {.id = i + 1,
                                 .ts_ms = ts[i],
                                 .ingested_ms = ts[i],
                                 .kind = "tool",
                                 .tool = "search",
                                 .body = "{}",
                                 .body_len = 2};
        r.ids[FR_ID_CONV] = convs[i];
        assert_int_equal(fr_store_ship_row(st, &r, &err), FR_OK);
    }
    int64_t inserted;
    assert_int_equal(fr_store_ship_end(st, "src-prune", 3, now, &inserted, &err), FR_OK);
    assert_int_equal(inserted, 3);
    fr_store_close(st);

    char *cmd = fr_asprintf("%s fleet prune --store '%s' --keep 2d --dry-run", FR_BIN, f->uri),
         *out = NULL;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "would drop"));
    free(out);
    free(cmd);
    cmd = fr_asprintf("%s fleet prune --store '%s' --keep 2d", FR_BIN, f->uri);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    /* two days went, each named */
    int dropped = 0;
    for (const char *p = out; (p = strstr(p, "dropped events_p")) != NULL; p++)
        dropped++;
    assert_int_equal(dropped, 2);
    free(out);
    free(cmd);
    assert_int_equal(fr_store_open(f->uri, NULL, &st, &err), FR_OK);
    for (int i = 0; i < 3; i++) {
        long n = 0;
        struct fr_event_filter ef = {.conv_id = convs[i], .id_field = -1};
        assert_int_equal(fr_store_events(st, &ef, count_row, &n, &err), FR_OK);
        assert_int_equal(n, i == 2 ? 1 : 0);
        int64_t indexed = -1;
        int rc = fr_store_conversation(st, convs[i], conv_count, &indexed, &err);
        assert_int_equal(rc, i == 2 ? FR_OK : FR_E_NOTFOUND);
    }
    fr_store_close(st);
    /* the embedded store says where its retention is */
    cmd = fr_asprintf("%s fleet prune --store %s --keep 2d", FR_BIN, f->a[0]->db);
    char *errs = NULL;
    assert_int_not_equal(t_run(cmd, NULL, &errs), 0);
    assert_non_null(strstr(errs, "retention run"));
    free(errs);
    free(cmd);
}

/*
 * Central retention moves expired days into segments in a bucket before it
 * drops them (`fleet prune --archive`): the conversation, spread over two
 * hosts, still reads back whole and in order through the CLI and the query
 * API (fetched from the bucket), `archive verify` checks the segment, and an
 * erasure writes the bucket's copy again without the conversation.
 */
static void
test_fleet_prune_archives_days_into_the_bucket(void **state)
{
    struct fleet *f = *state;
    for (int i = 0; i < 40; i++) {
        char *body = fleet_events(i < 30 ? "kept" : "other", i, 1, true);
        assert_int_equal(post(f->a[i % 2], body, NULL), 202);
        free(body);
    }
    struct central c;
    int64_t indexed;
    wait_central(f, "kept", 30, &c, &indexed);
    central_free(&c);
    wait_central(f, "other", 10, &c, &indexed);
    central_free(&c);
    char *s3data = t_path(f->a[0]->dir, "s3data");
    int port = 0;
    pid_t s3 = t_s3rver_start(s3data, "fleet", &port);
    setenv("FR_TEST_S3_KEY", "S3RVER", 1);
    setenv("FR_TEST_S3_SECRET", "S3RVER", 1);
    /* the machine that archives has pod0's keys (its query API reads the segments) */
    char *keys = t_path(f->a[0]->dir, "keys");
    setenv("FLIGHTREC_KEYS_DIR", keys, 1);
    free(keys);
    char *policy = t_path(f->a[0]->dir, "central.yaml"),
         *archive = t_path(f->a[0]->dir, "central-archive");
    char *text = fr_asprintf("archive_dir: %s\nbucket:\n  url: http://127.0.0.1:%d/fleet/central\n"
                             "  access_key_env: FR_TEST_S3_KEY\n"
                             "  secret_key_env: FR_TEST_S3_SECRET\n  keep_local: 0s\n",
                             archive, port);
    write_text(policy, text);
    free(text);
    char *cmd = fr_asprintf("%s fleet prune --store '%s' --keep 2d --archive %s", FR_BIN, f->uri,
                            policy),
         *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "archived events_p20260217: 40 events in 1 segments"));
    assert_non_null(strstr(out, "dropped events_p20260217"));
    free(out);
    free(err);
    free(cmd);
    /* in the bucket, with the MANIFEST; not kept locally (keep_local 0s) */
    char *mobj = fr_asprintf("%s/fleet/central/MANIFEST._S3rver_object", s3data);
    assert_int_equal(access(mobj, F_OK), 0);
    free(mobj);
    cmd = fr_asprintf("ls %s/fleet/central | grep -c 'warm[.]seg[.]_S3rver_object$'", s3data);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_int_equal(atoi(out), 1);
    free(out);
    free(cmd);
    cmd = fr_asprintf("ls %s | grep -c '[.]seg$'", archive);
    t_run(cmd, &out, NULL);
    assert_int_equal(atoi(out), 0);
    free(out);
    /* the archive map says no segment holds a conversation it never saw: none is fetched */
    char *nosuch =
        fr_asprintf("FLIGHTREC_RETENTION=%s %s show nosuch --db '%s'", policy, FR_BIN, f->uri);
    assert_int_equal(t_run(nosuch, NULL, NULL), 4);
    free(nosuch);
    t_run(cmd, &out, NULL);
    assert_int_equal(atoi(out), 0);
    free(out);
    free(cmd);
    /* read back from the archive: whole, in order, by the CLI and by pod0's query API */
    cmd =
        fr_asprintf("FLIGHTREC_RETENTION=%s %s show kept --json --db '%s'", policy, FR_BIN, f->uri);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "read from the archive"));
    json_t *doc = json_loads(out, 0, NULL);
    json_t *evs = json_object_get(doc, "events");
    assert_int_equal(json_array_size(evs), 30);
    for (size_t i = 0; i < 30; i++) {
        char want[32];
        snprintf(want, sizeof want, "e-%06zu", i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(evs, i), "event_id")),
                            want);
    }
    json_decref(doc);
    free(out);
    free(err);
    free(cmd);
    json_t *api = get_json(f->a[0], "/v1/conversations/kept", 200);
    assert_true(json_is_null(json_object_get(api, "conversation"))); /* no longer indexed */
    evs = json_object_get(api, "events");
    assert_int_equal(json_array_size(evs), 30);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 29), "event_id")),
                        "e-000029");
    json_decref(api);
    cmd = fr_asprintf("%s archive verify --db '%s' --policy %s", FR_BIN, f->uri, policy);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "ok "));
    assert_non_null(strstr(out, "(authenticated)"));
    free(out);
    free(cmd);
    /* erased: the bucket's copy is written again without it */
    cmd = fr_asprintf("FLIGHTREC_RETENTION=%s %s erase --conv kept --db '%s'", policy, FR_BIN,
                      f->uri);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "1 segments rewritten"));
    free(out);
    free(err);
    free(cmd);
    cmd = fr_asprintf("ls %s/fleet/central | grep 'warm[.]seg[.]_S3rver_object$' | sed "
                      "'s/[.]_S3rver_object$//'",
                      s3data);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    char seg[400];
    snprintf(seg, sizeof seg, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    free(cmd);
    cmd = fr_asprintf("%s archive cat %s --db '%s' --policy %s", FR_BIN, seg, f->uri, policy);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_null(strstr(out, "\"kept\""));
    assert_non_null(strstr(out, "\"other\""));
    free(out);
    free(cmd);
    t_s3rver_stop(s3);
    free(policy);
    free(archive);
    free(s3data);
}

/*
 * An erasure reaches the fleet store: DELETE /v1/conversations/ID on one
 * agent removes the conversation's events shipped by every agent, its index
 * rows go, a read says it was erased; rows of it that another agent (which
 * did not erase it) ships later are dropped on arrival; `flightrec erase
 * --db postgres://...` erases there directly.
 */
static void
test_fleet_erasure_reaches_the_fleet_store(void **state)
{
    struct fleet *f = *state;
    for (int i = 0; i < 2; i++) {
        char *body = fleet_events("secret", i * 10, 10, true);
        assert_int_equal(post(f->a[i], body, NULL), 202);
        free(body);
    }
    char *body = fleet_events("other", 0, 5, true);
    assert_int_equal(post(f->a[2], body, NULL), 202);
    free(body);
    struct central c;
    int64_t indexed;
    wait_central(f, "secret", 20, &c, &indexed);
    central_free(&c);
    wait_central(f, "other", 5, &c, &indexed);
    central_free(&c);

    static const char *const admin[] = {"Authorization: Bearer admin-0123456789abcdef-token", NULL};
    char *out = NULL;
    assert_int_equal(
        http(f->a[0], "DELETE", "/v1/conversations/secret", admin, NULL, 0, &out, NULL), 200);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "hot_events")), 10);
    assert_int_equal(json_integer_value(json_object_get(j, "fleet_events")), 20);
    json_decref(j);
    free(out);
    central_read(f, "secret", &c, &indexed);
    assert_int_equal(c.rows, 0);
    assert_int_equal(indexed, -1);
    central_free(&c);
    char *cmd = fr_asprintf("%s show secret --store '%s'", FR_BIN, f->uri), *err = NULL;
    assert_int_not_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "erased"));
    free(err);
    free(cmd);

    /* pod1 never erased it: what it still ships of it is dropped on arrival */
    body = fleet_events("secret", 100, 10, true);
    assert_int_equal(post(f->a[1], body, NULL), 202);
    free(body);
    body = fleet_events("marker", 0, 3, true);
    assert_int_equal(post(f->a[1], body, NULL), 202);
    free(body);
    wait_central(f, "marker", 3, &c, &indexed);
    central_free(&c);
    central_read(f, "secret", &c, &indexed);
    assert_int_equal(c.rows, 0);
    central_free(&c);

    /* and the command line erases in the fleet store directly */
    cmd = fr_asprintf("%s erase --conv other --db '%s'", FR_BIN, f->uri);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "5 events removed from the fleet store"));
    free(err);
    free(cmd);
    central_read(f, "other", &c, &indexed);
    assert_int_equal(c.rows, 0);
    central_free(&c);

    /* a value erased there (--hmac) is dropped on arrival too, whoever ships it later */
    static const char token[] = "hmac:00ab:0123456789abcdef";
    cmd = fr_asprintf("%s erase --hmac %s --db '%s'", FR_BIN, token, f->uri);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    free(err);
    free(cmd);
    body = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":1771357446000,\"conv_id\":\"tok\","
                       "\"event_id\":\"t-1\",\"data\":{\"name\":\"search\",\"args\":{\"q\":"
                       "\"%s\"}}}\n{\"kind\":\"tool\",\"ts_ms\":1771357446001,\"conv_id\":"
                       "\"tok\",\"event_id\":\"t-2\",\"data\":{\"name\":\"search\"}}\n",
                       token);
    assert_int_equal(post(f->a[2], body, NULL), 202);
    free(body);
    wait_central(f, "tok", 1, &c, &indexed);
    for (int i = 0; i < 20; i++) { /* a second batch could still bring it: it never does */
        assert_int_equal(c.rows, 1);
        assert_string_equal(c.ids[0], "t-2");
        central_free(&c);
        usleep(100 * 1000);
        central_read(f, "tok", &c, &indexed);
    }
    central_free(&c);
}

/* One OTLP/JSON span of trace T; conv (NULL: none) as gen_ai.conversation.id. */
static char *
span(const char *span_id, const char *name, const char *op, const char *conv, int sec)
{
    return fr_asprintf(
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[]},\"scopeSpans\":[{\"spans\":[{"
        "\"traceId\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"%s\",\"name\":\"%s\","
        "\"startTimeUnixNano\":\"%d000000000\",\"endTimeUnixNano\":\"%d500000000\","
        "\"attributes\":[{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"%s\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}}%s%s%s]"
        "}]}]}]}",
        span_id, name, sec, sec, op,
        conv ? ",{\"key\":\"gen_ai.conversation.id\","
               "\"value\":{\"stringValue\":\""
             : "",
        conv ? conv : "", conv ? "\"}}" : "");
}

static long
post_traces(struct agent *a, const char *body)
{
    int port = a->port;
    a->port = otlp_port(a);
    const char *json[] = {"Content-Type: application/json", NULL};
    long st = http(a, "POST", "/v1/traces", json, body, strlen(body), NULL, NULL);
    a->port = port;
    return st;
}

/*
 * A turn's spans exported in several requests (children first, the span
 * naming the conversation last) reach the fleet store under the trace id
 * first; once the naming span's link is shipped they move to the
 * conversation there too — also the spans another sidecar exported for the
 * same trace, which never saw the naming span.
 */
static void
test_fleet_trace_spans_move_to_their_conversation(void **state)
{
    struct fleet *f = *state;
    /* pod0: a provider call of the trace, no conversation named yet */
    char *b = span("00f067aa0ba90001", "chat gpt-4o", "chat", NULL, 1771357445);
    assert_int_equal(post_traces(f->a[0], b), 200);
    free(b);
    /* pod1: a tool call of the same trace (its own export) */
    b = span("00f067aa0ba90002", "execute_tool search", "execute_tool", NULL, 1771357446);
    assert_int_equal(post_traces(f->a[1], b), 200);
    free(b);
    struct central c;
    int64_t indexed;
    wait_central(f, "5bf92f3577b34da6a3ce929d0e0e4736", 2, &c, &indexed);
    central_free(&c);
    /* pod0: the root span names the conversation */
    b = span("00f067aa0ba90000", "invoke_agent", "invoke_agent", "otel-conv-1", 1771357447);
    assert_int_equal(post_traces(f->a[0], b), 200);
    free(b);
    wait_central(f, "otel-conv-1", 3, &c, &indexed);
    assert_int_equal(c.rows, 3);
    assert_int_equal(indexed, 3);
    assert_true(c.ordered);
    central_free(&c);
    central_read(f, "5bf92f3577b34da6a3ce929d0e0e4736", &c, &indexed);
    assert_int_equal(c.rows, 0);
    assert_int_equal(indexed, -1);
    central_free(&c);
    /* the envelopes say so too */
    char *cmd = fr_asprintf("%s show otel-conv-1 --json --store '%s'", FR_BIN, f->uri), *out;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_null(strstr(out, "\"conv_id\": \"5bf92f3577b34da6a3ce929d0e0e4736\""));
    free(out);
    free(cmd);
}

static double
metric(struct agent *a, const char *name)
{
    char *out = NULL;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    char *needle = fr_asprintf("\n%s ", name), *p = strstr(out, needle);
    double v = p ? atof(p + strlen(needle)) : -1;
    free(needle);
    free(out);
    return v;
}

/*
 * PostgreSQL down: the agents keep taking events (202), /metrics says the
 * shipper is down and how far behind, /readyz stays 200 and says why; once
 * it is back the backlog drains and the lag returns to 0.
 */
static void
test_fleet_postgres_down_backlog_drains(void **state)
{
    struct fleet *f = *state;
    char *body = fleet_events("outage", 0, 20, true);
    assert_int_equal(post(f->a[0], body, NULL), 202);
    free(body);
    struct central c;
    int64_t indexed;
    wait_central(f, "outage", 20, &c, &indexed);
    central_free(&c);
    assert_true(metric(f->a[0], "flightrec_ship_up") == 1);

    free(pg_script("stop", f->pgdir));
    body = fleet_events("outage", 20, 200, true);
    assert_int_equal(post(f->a[0], body, NULL), 202); /* ingest goes on */
    free(body);
    for (int i = 0; i < 200 && metric(f->a[0], "flightrec_ship_lag_seconds") < 1.0; i++)
        usleep(50 * 1000);
    assert_true(metric(f->a[0], "flightrec_ship_up") == 0);
    assert_true(metric(f->a[0], "flightrec_ship_lag_seconds") >= 1.0);
    assert_true(metric(f->a[0], "flightrec_ship_failures_total") >= 1);
    char *ready = NULL;
    assert_int_equal(http(f->a[0], "GET", "/readyz", NULL, NULL, 0, &ready, NULL), 200);
    assert_non_null(strstr(ready, "ship: "));
    assert_null(strstr(ready, "postgresql://flightrec@")); /* the location is named safely */
    free(ready);

    /* the fleet query API cannot reach it: 503, the server named without credentials */
    char *answer = NULL;
    assert_int_equal(http(f->a[0], "GET", "/v1/conversations/outage", NULL, NULL, 0, &answer, NULL),
                     503);
    assert_null(strstr(answer, "flightrec@"));
    free(answer);

    free(pg_script("start", f->pgdir));
    wait_central(f, "outage", 220, &c, &indexed);
    /* and once it is back, the next request reconnects */
    json_t *api = get_json(f->a[0], "/v1/conversations/outage", 200);
    assert_int_equal(json_array_size(json_object_get(api, "events")), 220);
    json_decref(api);
    assert_int_equal(c.rows, 220);
    assert_int_equal(indexed, 220);
    central_free(&c);
    for (int i = 0; i < 200 && metric(f->a[0], "flightrec_ship_lag_seconds") > 0; i++)
        usleep(50 * 1000);
    assert_true(metric(f->a[0], "flightrec_ship_lag_seconds") == 0);
    assert_true(metric(f->a[0], "flightrec_ship_up") == 1);
    assert_true(metric(f->a[0], "flightrec_ship_events_total") == 220);
}

/*
 * While the fleet store is away, retention keeps the events the agent has
 * not shipped in hot (hot.max_unshipped_age), past their hot.max_age: they
 * reach the fleet store when it returns, and only then move to warm.
 */
static void
test_fleet_unshipped_events_stay_in_hot(void **state)
{
    struct fleet *f = *state;
    struct agent *a = f->a[2];
    assert_int_equal(agent_stop(a), 0);
    free(pg_script("stop", f->pgdir));
    char *policy = t_path(a->dir, "retention.yaml");
    write_text(policy, "hot:\n  max_age: 1s\nschedule:\n  interval: 1s\n  verify_interval: 0\n");
    char *extra = fr_asprintf("ship:\n  url: \"%s\"\n  host: pod2\n  interval: 50ms\n"
                              "retention:\n  policy: %s\n",
                              f->uri, policy);
    agent_config(a, NULL, NULL, extra);
    free(extra);
    agent_start(a);
    char *body = fleet_events_at(fr_now_ms() - 10000, "held", 0, 50, true);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    /* several retention runs later, all of them still in hot, none archived */
    usleep(3500 * 1000);
    assert_int_equal(count_events(a->db, "held"), 50);
    assert_int_equal(sql_long(a->db, "SELECT count(*) FROM archive_segments", NULL, 0), 0);
    /* back: shipped, then moved */
    free(pg_script("start", f->pgdir));
    struct central c;
    int64_t indexed;
    wait_central(f, "held", 50, &c, &indexed);
    central_free(&c);
    for (int i = 0; i < 300 && count_events(a->db, "held") > 0; i++)
        usleep(100 * 1000);
    assert_int_equal(count_events(a->db, "held"), 0);
    long dups = 0;
    assert_int_equal(count_across_tiers(a, "held", &dups), 50);
    assert_int_equal(dups, 0);
    free(policy);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fleet_conversation_across_three_agents, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_kill9_and_postgres_restart, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_store_batch_shipped_twice, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_queries_match_the_hot_store, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_prune_drops_old_days, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_prune_archives_days_into_the_bucket, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_erasure_reaches_the_fleet_store, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_trace_spans_move_to_their_conversation,
                                        fleet_setup, fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_postgres_down_backlog_drains, fleet_setup,
                                        fleet_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_unshipped_events_stay_in_hot, fleet_setup,
                                        fleet_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
