/*
 * tests/test_store.c - the SQLite hot store: migrations from every earlier
 * version, ordering and tie-breaks, conversation-index semantics (also
 * across batches and out-of-order arrival), duplicates, filters and empty
 * results. Each test gets a fresh temporary directory.
 */
#include "tests/support/support.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/hot/archive.h"
#include "retention/hot/schema.h"
#include "retention/hot/sqlite_body.h"
#include "retention/hot/sqlite_int.h"

/* ---- collecting callbacks ---- */

struct ids {
    char *v[64];
    size_t n;
};

static int
collect_event_id(void *ud, const struct fr_event_row *r)
{
    struct ids *ids = ud;
    if (ids->n < 64)
        ids->v[ids->n++] = fr_strdup(r->ids[FR_ID_EVENT] ? r->ids[FR_ID_EVENT] : "-");
    return 0;
}

static int
collect_conv_id(void *ud, const struct fr_conv_row *r)
{
    struct ids *ids = ud;
    if (ids->n < 64)
        ids->v[ids->n++] = fr_strdup(r->conv_id);
    return 0;
}

static void
ids_free(struct ids *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        free(ids->v[i]);
    ids->n = 0;
}

static char *
ids_join(const struct ids *ids)
{
    size_t len = 1;
    for (size_t i = 0; i < ids->n; i++)
        len += strlen(ids->v[i]) + 1;
    char *s = fr_calloc(1, len);
    for (size_t i = 0; i < ids->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, ids->v[i]);
    }
    return s;
}

struct conv_copy {
    int calls;
    char status[32], runtime_key[32], last_error_code[64], session_id[32];
    int64_t created, last, closed, evicted, events, errors;
    bool panic;
};

static int
copy_conv(void *ud, const struct fr_conv_row *r)
{
    struct conv_copy *c = ud;
    c->calls++;
    snprintf(c->status, sizeof c->status, "%s", r->status);
    snprintf(c->runtime_key, sizeof c->runtime_key, "%s", r->runtime_key ? r->runtime_key : "");
    snprintf(c->last_error_code, sizeof c->last_error_code, "%s",
             r->last_error_code ? r->last_error_code : "");
    snprintf(c->session_id, sizeof c->session_id, "%s", r->session_id ? r->session_id : "");
    c->created = r->created_ms;
    c->last = r->last_activity_ms;
    c->closed = r->closed_ms;
    c->evicted = r->evicted_ms;
    c->events = r->event_count;
    c->errors = r->error_count;
    c->panic = r->panic;
    return 0;
}

static struct conv_copy
get_conv(struct fr_store *st, const char *id)
{
    struct conv_copy c = {0};
    struct fr_err err = {0};
    if (fr_store_conversation(st, id, copy_conv, &c, &err) != FR_OK)
        fail_msg("conversation %s: %s", id, err.msg);
    return c;
}

/* ---- migrations ---- */

static void id_events(struct fr_store *st, int field, const char *v, char out[512]);

static void
test_store_migrate_from_every_version_keeps_data(void **state)
{
    struct t_store_fx *f = *state;
    int latest = fr_schema_latest();
    assert_true(latest >= 1);
    for (int v = 0; v < latest; v++) {
        char name[32];
        snprintf(name, sizeof name, "v%d.db", v);
        char *path = t_path(f->dir, name);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        struct fr_err err = {0};
        assert_int_equal(fr_schema_migrate(db, v, &err), FR_OK);
        int got;
        assert_int_equal(fr_schema_version(db, &got, &err), FR_OK);
        assert_int_equal(got, v);
        if (v >= 1) /* a row as version 1 wrote it */
            assert_int_equal(
                sqlite3_exec(db,
                             "INSERT INTO events(ts_ms, ingested_ms, kind, conv_id, body,"
                             " request_id, session_id)"
                             " VALUES(1771357445201, 1, 'tool', 'old', '{}', 'r-old', 's-old');"
                             "INSERT INTO events(ts_ms, ingested_ms, kind, body, request_id)"
                             " VALUES(1771357445202, 1, 'tool', '{}', 'r-none');"
                             "INSERT INTO conversations(conv_id, status, created_ms,"
                             " last_activity_ms, event_count, updated_ms)"
                             " VALUES('old', 'closed', 1771357445201, 1771357445201, 1, 1);",
                             NULL, NULL, NULL),
                SQLITE_OK);
        if (v >= 17) /* and its id pairs, as the store writes them since version 17 */
            assert_int_equal(
                sqlite3_exec(db,
                             "INSERT INTO id_convs VALUES('request_id', 'r-old', 'old', 1,"
                             " 1771357385201, 1771357505201);"
                             "INSERT INTO id_convs VALUES('session_id', 's-old', 'old', 1,"
                             " 1771357385201, NULL);",
                             NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);

        struct fr_store *st;
        assert_int_equal(fr_store_open(path, NULL, &st, &err), FR_OK);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(fr_schema_version(db, &got, &err), FR_OK);
        assert_int_equal(got, latest);
        sqlite3_close(db);
        if (v >= 1) {
            struct conv_copy c = get_conv(st, "old");
            assert_string_equal(c.status, "closed");
            assert_int_equal(c.events, 1);
            /* found by request and session id, with or without a conversation */
            char out[512];
            id_events(st, FR_ID_REQUEST, "r-old", out);
            assert_string_equal(out, "-(old) ");
            id_events(st, FR_ID_SESSION, "s-old", out);
            assert_string_equal(out, "-(old) ");
            id_events(st, FR_ID_REQUEST, "r-none", out);
            assert_string_equal(out, "-(-) ");
        }
        /* and the migrated store takes new events */
        const char *line = "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"old\"}";
        t_ingest(st, &line, 1);
        fr_store_close(st);
        free(path);
    }
}

static void
test_store_newer_schema_refused(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "future.db");
    sqlite3 *db;
    sqlite3_open(path, &db);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", fr_schema_latest() + 5);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    struct fr_store *st;
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(path, NULL, &st, &err), FR_E_VERSION);
    assert_non_null(strstr(err.msg, "newer"));
    assert_null(st);
    free(path);
}

static void
test_store_garbage_file_is_clear_error(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "garbage.db");
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file at all\n", fp);
    fclose(fp);
    struct fr_store *st;
    struct fr_err err = {0};
    int rc = fr_store_open(path, NULL, &st, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "not a database"));
    assert_non_null(strstr(err.msg, path));
    free(path);
}

static void
test_store_missing_without_create_not_found(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "absent.db");
    struct fr_store_opts o;
    fr_store_opts_default(&o);
    o.create = false;
    struct fr_store *st;
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(path, &o, &st, &err), FR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "no database"));
    free(path);
}

/* ---- ordering ---- */

static void
test_store_events_ordered_by_ts_seq_then_arrival(void **state)
{
    struct t_store_fx *f = *state;
    const char *batch1[] = {
        "{\"kind\":\"sem\",\"ts_ms\":1771357445003,\"conv_id\":\"c\",\"seq\":1,\"event_id\":\"E\"}",
        "{\"kind\":\"sem\",\"ts_ms\":1771357445001,\"conv_id\":\"c\",\"seq\":5,\"event_id\":\"D\"}",
        "{\"kind\":\"sem\",\"ts_ms\":1771357445001,\"conv_id\":\"c\",\"seq\":2,\"event_id\":\"B\"}",
        "{\"kind\":\"sem\",\"ts_ms\":1771357445001,\"conv_id\":\"c\",\"event_id\":\"A\"}",
    };
    const char *batch2[] = {
        "{\"kind\":\"sem\",\"ts_ms\":1771357445002,\"conv_id\":\"c\",\"event_id\":\"F\"}",
        /* same ts and seq as B: arrival order breaks the tie */
        "{\"kind\":\"sem\",\"ts_ms\":1771357445001,\"conv_id\":\"c\",\"seq\":2,\"event_id\":\"C\"}",
        "{\"kind\":\"sem\",\"ts_ms\":1771357445000,\"conv_id\":\"other\",\"event_id\":\"X\"}",
    };
    t_ingest(f->st, batch1, 4);
    t_ingest(f->st, batch2, 3);
    struct fr_event_filter flt = {.conv_id = "c"};
    struct fr_err err = {0};
    for (int run = 0; run < 2; run++) { /* reading twice gives the same order */
        struct ids ids = {0};
        assert_int_equal(fr_store_events(f->st, &flt, collect_event_id, &ids, &err), FR_OK);
        char *got = ids_join(&ids);
        assert_string_equal(got, "A,B,C,D,F,E");
        free(got);
        ids_free(&ids);
    }
}

/* ---- conversation index ---- */

static const char *const conv_batch1[] = {
    "{\"kind\":\"conversation\",\"ts_ms\":1771357445100,\"conv_id\":\"c1\",\"session_id\":\"s1\","
    "\"data\":{\"status\":\"active\"}}",
    "{\"kind\":\"turn\",\"ts_ms\":1771357445120,\"conv_id\":\"c1\",\"runtime_key\":\"default@v1\","
    "\"data\":{\"phase\":\"final\"}}",
    "{\"kind\":\"provider\",\"ts_ms\":1771357445150,\"conv_id\":\"c1\",\"data\":{\"status\":"
    "\"error\"},\"error\":{\"message\":\"429 Too Many Requests\",\"http_status\":429}}",
};
static const char *const conv_batch2[] = {
    "{\"kind\":\"conversation\",\"ts_ms\":1771357445300,\"conv_id\":\"c1\","
    "\"data\":{\"status\":\"closed\"}}",
    /* a profile switch: the later turn runs on another runtime */
    "{\"kind\":\"turn\",\"ts_ms\":1771357445200,\"conv_id\":\"c1\",\"runtime_key\":\"research@v2\","
    "\"data\":{\"phase\":\"final\"}}",
    /* late arrivals, older than what is known: must not override status or last error */
    "{\"kind\":\"conversation\",\"ts_ms\":1771357445050,\"conv_id\":\"c1\","
    "\"data\":{\"status\":\"error\"}}",
    "{\"kind\":\"tool\",\"ts_ms\":1771357445090,\"conv_id\":\"c1\",\"error\":{\"message\":\"t\"}}",
    /* a runtime_key on a non-turn event must not change the current one */
    "{\"kind\":\"provider\",\"ts_ms\":1771357445250,\"conv_id\":\"c1\",\"runtime_key\":\"x@v9\"}",
};

static void
test_store_conversation_upsert_latest_by_time(void **state)
{
    struct t_store_fx *f = *state;
    t_ingest(f->st, conv_batch1, 3);
    struct conv_copy c = get_conv(f->st, "c1");
    assert_string_equal(c.status, "active");
    assert_string_equal(c.runtime_key, "default@v1");
    assert_string_equal(c.last_error_code, "provider.rate_limited");
    assert_int_equal(c.events, 3);
    assert_int_equal(c.errors, 1);

    t_ingest(f->st, conv_batch2, 5);
    c = get_conv(f->st, "c1");
    assert_string_equal(c.status, "closed");
    assert_int_equal(c.closed, 1771357445300LL);
    assert_int_equal(c.evicted, 0);
    assert_string_equal(c.runtime_key, "research@v2");
    assert_string_equal(c.session_id, "s1");
    assert_int_equal(c.created, 1771357445050LL);
    assert_int_equal(c.last, 1771357445300LL);
    assert_int_equal(c.events, 8);
    assert_int_equal(c.errors, 2);
    assert_string_equal(c.last_error_code, "provider.rate_limited");
}

static void
test_store_profile_switch_keeps_earlier_turns(void **state)
{
    struct t_store_fx *f = *state;
    t_ingest(f->st, conv_batch1, 3);
    t_ingest(f->st, conv_batch2, 5);
    struct fr_event_filter flt = {.conv_id = "c1", .kind = "turn"};
    struct fr_err err = {0};
    struct ids ids = {0};
    assert_int_equal(fr_store_events(f->st, &flt, collect_event_id, &ids, &err), FR_OK);
    assert_int_equal(ids.n, 2);
    ids_free(&ids);
    /* read the runtime keys of the turns in order */
    sqlite3 *db;
    char *path = t_path(f->dir, "hot.db");
    sqlite3_open(path, &db);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db,
                       "SELECT group_concat(runtime_key) FROM (SELECT runtime_key FROM events "
                       "WHERE kind='turn' ORDER BY ts_ms)",
                       -1, &q, NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "default@v1,research@v2");
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(path);
}

static void
test_store_index_independent_of_batching(void **state)
{
    struct t_store_fx *f = *state;
    /* all eight events in one batch, in reverse arrival order */
    const char *all[8];
    for (int i = 0; i < 3; i++)
        all[i] = conv_batch2[4 - i];
    all[3] = conv_batch2[1];
    all[4] = conv_batch2[0];
    for (int i = 0; i < 3; i++)
        all[5 + i] = conv_batch1[2 - i];
    struct fr_store *one = t_store_open(f->dir, "one.db");
    t_ingest(one, all, 8);
    /* and one event per batch */
    for (int i = 0; i < 8; i++)
        t_ingest(f->st, &all[7 - i], 1);
    struct conv_copy a = get_conv(one, "c1"), b = get_conv(f->st, "c1");
    assert_string_equal(a.status, b.status);
    assert_string_equal(a.runtime_key, b.runtime_key);
    assert_string_equal(a.last_error_code, b.last_error_code);
    assert_int_equal(a.created, b.created);
    assert_int_equal(a.last, b.last);
    assert_int_equal(a.closed, b.closed);
    assert_int_equal(a.events, b.events);
    assert_int_equal(a.errors, b.errors);
    assert_string_equal(a.status, "closed");
    fr_store_close(one);
}

static void
test_store_duplicate_event_id_stored_once(void **state)
{
    struct t_store_fx *f = *state;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"c\","
                       "\"event_id\":\"e-1\",\"error\":{\"message\":\"x\"}}";
    const char *same_id_other_conv = "{\"kind\":\"tool\",\"ts_ms\":1771357445100,"
                                     "\"conv_id\":\"d\",\"event_id\":\"e-1\"}";
    t_ingest(f->st, &line, 1);
    t_ingest(f->st, &line, 1); /* a producer's retry */
    t_ingest(f->st, &same_id_other_conv, 1);
    struct conv_copy c = get_conv(f->st, "c");
    assert_int_equal(c.events, 1);
    assert_int_equal(c.errors, 1);
    assert_int_equal(get_conv(f->st, "d").events, 1);
    /* an event_id without a conv_id (runtime samples, process-wide events) is deduplicated
       too: SQLite's unique index let NULL conv_ids differ, so a retry was stored twice */
    const char *no_conv = "{\"kind\":\"runtime\",\"ts_ms\":1771357445100,"
                          "\"event_id\":\"rt-1\",\"data\":{\"pid\":1}}";
    bool inserted[2];
    for (int i = 0; i < 2; i++) {
        struct fr_record rec;
        struct fr_err err = {0};
        assert_int_equal(t_prepare(no_conv, &rec, &err), FR_OK);
        assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
        assert_int_equal(fr_store_put(f->st, &rec, 1, &inserted[i], &err), FR_OK);
        assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
        fr_record_clear(&rec);
    }
    assert_true(inserted[0]);
    assert_false(inserted[1]);
}

static int
count_rows(void *ud, const struct fr_event_row *r)
{
    (void)r;
    (*(long *)ud)++;
    return 0;
}

static int
max_row_id(void *ud, const struct fr_event_row *r)
{
    if (r->id > *(int64_t *)ud)
        *(int64_t *)ud = r->id;
    return 0;
}

/*
 * Row ids only grow, even when the newest rows are gone (retention moved a
 * quiet store's every row to warm, the newest conversation was erased):
 * readers that resume "after row N" (the shipper, tail) would otherwise skip
 * the next events for good. The placeholder that holds the numbering is
 * never committed.
 */
static void
test_store_row_ids_never_reused(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"a\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445101,\"conv_id\":\"a\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445102,\"conv_id\":\"b\"}",
    };
    t_ingest(f->st, lines, 3);
    int64_t before = 0;
    struct fr_event_filter all = {.id_field = -1, .by_arrival = true};
    struct fr_err err = {0};
    assert_int_equal(fr_store_events(f->st, &all, max_row_id, &before, &err), FR_OK);
    assert_int_equal(before, 3);
    /* every row leaves (as retention's move of everything to warm does) */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    const char *next = "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"c\"}";
    t_ingest(f->st, &next, 1);
    t_ingest(f->st, &next, 1); /* no event id: a second row */
    int64_t last = 0;
    struct fr_event_filter later = {.id_field = -1, .by_arrival = true, .after_id = before};
    assert_int_equal(fr_store_events(f->st, &later, max_row_id, &last, &err), FR_OK);
    assert_int_equal(last, 5); /* the two new rows are 4 and 5, after the cursor */
    long n = 0;
    struct fr_event_filter every = {.id_field = -1, .by_arrival = true};
    assert_int_equal(fr_store_events(f->st, &every, count_rows, &n, &err), FR_OK);
    assert_int_equal(n, 2); /* and no placeholder was left behind */
}

/* The version 5 migration keeps the first copy of events a NULL conv_id let in twice. */
static void
test_store_migration_removes_null_conv_duplicates(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "v4dups.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    struct fr_err err = {0};
    assert_int_equal(fr_schema_migrate(db, 4, &err), FR_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO events(ts_ms, ingested_ms, kind, event_id, body)"
                                  " VALUES(1, 1, 'runtime', 'x', '{\"n\":1}'),"
                                  " (1, 2, 'runtime', 'x', '{\"n\":2}'),"
                                  " (1, 1, 'runtime', 'y', '{}'), (1, 1, 'runtime', NULL, '{}'),"
                                  " (1, 1, 'runtime', NULL, '{}');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(fr_schema_migrate(db, fr_schema_latest(), &err), FR_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(event_id = 'x'),"
                                        " max(CASE WHEN event_id = 'x' THEN body END)"
                                        " FROM events",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 4); /* events without an id are all kept */
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "{\"n\":1}");
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
}

static void
test_store_empty_results_are_empty(void **state)
{
    struct t_store_fx *f = *state;
    struct fr_conv_filter cf = {0};
    struct fr_err err = {0};
    struct ids ids = {0};
    assert_int_equal(fr_store_conversations(f->st, &cf, collect_conv_id, &ids, &err), FR_OK);
    assert_int_equal(ids.n, 0);
    struct fr_event_filter ef = {.conv_id = "nobody"};
    assert_int_equal(fr_store_events(f->st, &ef, collect_event_id, &ids, &err), FR_OK);
    assert_int_equal(ids.n, 0);
    struct conv_copy c = {0};
    assert_int_equal(fr_store_conversation(f->st, "nobody", copy_conv, &c, &err), FR_E_NOTFOUND);
    assert_int_equal(c.calls, 0);
}

/* The ids of the conversations a filter lists, comma-joined, most recent first. */
static char *
conv_list(struct fr_store *st, const struct fr_conv_filter *cf)
{
    struct fr_err err = {0};
    struct ids ids = {0};
    assert_int_equal(fr_store_conversations(st, cf, collect_conv_id, &ids, &err), FR_OK);
    char *s = ids_join(&ids);
    ids_free(&ids);
    return s;
}

/* A filter and the conversations it must list, comma-joined, most recent first. */
struct conv_case {
    struct fr_conv_filter cf;
    const char *want;
};

static void
assert_conv_lists(struct fr_store *st, const struct conv_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *got = conv_list(st, &cases[i].cf);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, got, cases[i].want);
        free(got);
    }
}

static void
test_store_conversation_filters(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"conversation\",\"ts_ms\":1771357445100,\"conv_id\":\"a\",\"data\":"
        "{\"status\":\"closed\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"b\",\"error\":{}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"c\"}",
        "{\"kind\":\"runtime\",\"ts_ms\":1771357445400}", /* no conversation */
    };
    t_ingest(f->st, lines, 4);
    const struct conv_case cases[] = {
        {{0}, "c,b,a"}, /* most recent activity first */
        {{.has_errors = true}, "b"},
        {{.status = "closed"}, "a"},
        {{.since_ms = 1771357445150LL, .limit = 1}, "c"},
    };
    assert_conv_lists(f->st, cases, sizeof cases / sizeof cases[0]);
}

/* Conversations by the start of their id: an id cut short; every UTF-8 text and the
   pattern characters of other stores ('_', '%') are themselves. */
static void
test_store_conversation_id_prefix(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"ab\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"abc\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"abd\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445400,\"conv_id\":\"b\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445500,\"conv_id\":\"\\u00e91\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445600,\"conv_id\":\"\\u00e9\\ud83d\\ude002\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445700,\"conv_id\":\"a_%\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445800,\"conv_id\":\"a\"}",
    };
    t_ingest(f->st, lines, sizeof lines / sizeof lines[0]);
    const struct conv_case cases[] = {
        {{.id_prefix = "ab"}, "abd,abc,ab"},
        {{.id_prefix = "abc"}, "abc"},
        {{.id_prefix = "a"}, "a,a_%,abd,abc,ab"},
        {{.id_prefix = "a", .limit = 2}, "a,a_%"},
        {{.id_prefix = "a_"}, "a_%"},
        {{.id_prefix = "a%"}, ""},
        {{.id_prefix = "\xc3\xa9"},
         "\xc3\xa9\xf0\x9f\x98\x80"
         "2,\xc3\xa9"
         "1"},
        {{.id_prefix = "\xc3\xa9\xf0\x9f"},
         "\xc3\xa9\xf0\x9f\x98\x80"
         "2"},
        {{.id_prefix = "ab", .since_ms = 1771357445250LL}, "abd"},
        {{.id_prefix = "abcd"}, ""},
        {{.id_prefix = "c"}, ""},
    };
    assert_conv_lists(f->st, cases, sizeof cases / sizeof cases[0]);
}

/*
 * Conversations by what their events hold: a failure's class or code, a
 * provider, a model, a tool; each alone and combined, ordered by activity,
 * limited; a conversation with several matching events is listed once.
 */
static void
test_store_conversation_event_filters(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"provider\",\"ts_ms\":1771357445100,\"conv_id\":\"p1\",\"data\":"
        "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"ok\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357445110,\"conv_id\":\"p1\",\"data\":"
        "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"ok\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357445200,\"conv_id\":\"p2\",\"data\":"
        "{\"provider\":\"anthropic\",\"model\":\"claude\",\"status\":\"error\"},"
        "\"error\":{\"http_status\":429,\"message\":\"slow down\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"t1\",\"data\":"
        "{\"name\":\"search\",\"status\":\"ok\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445400,\"conv_id\":\"t2\",\"data\":"
        "{\"name\":\"search\",\"status\":\"error\"},\"error\":{\"type\":\"Timeout\","
        "\"message\":\"timed out\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357445500,\"conv_id\":\"t2\",\"data\":"
        "{\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"status\":\"ok\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445600,\"conv_id\":\"t3\",\"data\":"
        "{\"name\":\"sql\",\"status\":\"ok\"}}",
    };
    t_ingest(f->st, lines, sizeof lines / sizeof lines[0]);
    const struct conv_case cases[] = {
        {{.provider = "openai"}, "t2,p1"},
        {{.provider = "anthropic"}, "p2"},
        {{.model = "gpt-4o"}, "p1"},
        {{.model = "gpt-4o-mini"}, "t2"},
        {{.model = "none"}, ""},
        {{.tool = "search"}, "t2,t1"},
        {{.tool = "search", .limit = 1}, "t2"},
        {{.tool = "search", .model = "gpt-4o-mini"}, "t2"},
        {{.tool = "sql", .provider = "openai"}, ""},
        {{.error_class = "provider"}, "p2"},
        {{.error_class = "tool"}, "t2"},
        {{.error_code = "provider.rate_limited"}, "p2"},
        {{.error_code = "tool.timeout"}, "t2"},
        {{.error_code = "tool.timeout", .provider = "openai"}, "t2"},
        {{.error_class = "tool", .until_ms = 1771357445350LL}, ""},
        {{.provider = "openai", .since_ms = 1771357445200LL}, "t2"},
    };
    assert_conv_lists(f->st, cases, sizeof cases / sizeof cases[0]);
}

/* One provider call of model in conv at ts; m-common's are rate limited (provider.rate_limited). */
static char *
model_line(const char *conv, const char *model, int64_t ts)
{
    bool failed = strcmp(model, "m-common") == 0;
    return fr_asprintf("{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"data\":"
                       "{\"provider\":\"openai\",\"model\":\"%s\",\"status\":\"%s\"}%s}",
                       (long long)ts, conv, model, failed ? "error" : "ok",
                       failed ? ",\"error\":{\"http_status\":429,\"message\":\"slow down\"}" : "");
}

/*
 * A model with more events than a listing reads before it walks them (sqlite_query.c's
 * Q_WALK_FIRST): its conversations are decided from its events read newest first, each
 * down to the conversation's created_ms. One created long ago that is active now, one whose
 * call arrived after its later events (its created_ms moved back), one recent without the
 * model; limits, a page after a row, --until, and a tool alongside. The calls failed, so
 * their code's and their class's failures are walked the same way.
 */
static void
test_store_conversation_model_walk(void **state)
{
    struct t_store_fx *f = *state;
    const int64_t t0 = 1771357445000LL;
    enum { CONVS = 60, CALLS = 80 }; /* 4,800 calls of m-common */
    char **lines = fr_calloc(CONVS * CALLS + 9, sizeof *lines);
    size_t n = 0;
    for (int c = 0; c < CONVS; c++) {
        char conv[8];
        snprintf(conv, sizeof conv, "w%02d", c);
        for (int i = 0; i < CALLS; i++)
            lines[n++] = model_line(conv, "m-common", t0 + c * 1000 + i);
    }
    /* created long before the rest with one call, active after all of them with another model */
    lines[n++] = model_line("old-active", "m-common", t0 - 100000);
    lines[n++] = model_line("old-active", "other", t0 + 1000000);
    lines[n++] = model_line("recent-other", "other", t0 + 999999);
    lines[n++] = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"recent-other\","
                             "\"data\":{\"name\":\"fetch\",\"status\":\"error\"},\"error\":"
                             "{\"type\":\"Timeout\",\"message\":\"timed out\"}}",
                             (long long)(t0 + 999998));
    lines[n++] = model_line("late", "other", t0 + 500000);
    lines[n++] = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"w58\",\"data\":"
                             "{\"name\":\"search\",\"status\":\"ok\"}}",
                             (long long)(t0 + 58000 + 500));
    for (size_t at = 0; at < n; at += 500)
        t_ingest(f->st, (const char *const *)lines + at, n - at < 500 ? n - at : 500);
    /* late's call comes after its later event, with an older time */
    char *late = model_line("late", "m-common", t0 - 200000);
    t_ingest(f->st, (const char *const *)&late, 1);
    free(late);
    const struct conv_case cases[] = {
        {{.model = "m-common", .limit = 5}, "old-active,late,w59,w58,w57"},
        {{.model = "m-common", .limit = 2}, "old-active,late"},
        {{.model = "m-common",
          .limit = 3,
          .after_activity_ms = t0 + 500000,
          .after_conv_id = "late"},
         "w59,w58,w57"},
        {{.model = "m-common", .limit = 2, .until_ms = t0 + 58000}, "w57,w56"},
        {{.model = "m-common", .limit = 3, .since_ms = t0 + 400000}, "old-active,late"},
        {{.model = "m-common", .tool = "search", .limit = 5}, "w58"},
        {{.model = "other", .limit = 5}, "old-active,recent-other,late"},
        {{.model = "none", .limit = 5}, ""},
        /* the calls failed: their code's and their class's failures walked the same way */
        {{.error_code = "provider.rate_limited", .limit = 5}, "old-active,late,w59,w58,w57"},
        {{.error_code = "provider.rate_limited", .limit = 2, .until_ms = t0 + 58000}, "w57,w56"},
        {{.error_class = "provider", .limit = 5}, "old-active,late,w59,w58,w57"},
        {{.error_class = "provider",
          .limit = 3,
          .after_activity_ms = t0 + 500000,
          .after_conv_id = "late"},
         "w59,w58,w57"},
        {{.error_class = "tool", .limit = 5}, "recent-other"},
        {{.error_class = "provider", .tool = "search", .limit = 5}, "w58"},
    };
    assert_conv_lists(f->st, cases, sizeof cases / sizeof cases[0]);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static int
conv_count(void *ud, const struct fr_conv_row *r)
{
    int64_t *out = ud;
    out[0] = r->event_count;
    out[1] = r->error_count;
    return 0;
}

/* event_count and error_count of a conversation's index row; -1 when it has none. */
static void
conv_counts(struct fr_store *st, const char *conv, int64_t out[2])
{
    struct fr_err err = {0};
    out[0] = out[1] = -1;
    int rc = fr_store_conversation(st, conv, conv_count, out, &err);
    assert_true(rc == FR_OK || rc == FR_E_NOTFOUND);
}

/* One OTLP-style event of trace T filed under conv (T itself when the span named none). */
static void
put_span(struct fr_store *st, const char *conv, const char *span, int64_t ts, bool failed)
{
    char *line =
        fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"trace_id\":"
                    "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"%s\",\"event_id\":\"%s\","
                    "\"data\":{\"name\":\"t\",\"status\":\"%s\"}%s}",
                    (long long)ts, conv, span, span, failed ? "error" : "ok",
                    failed ? ",\"error\":{\"message\":\"timeout\",\"type\":\"Timeout\"}" : "");
    const char *lines[] = {line};
    t_ingest(st, lines, 1);
    free(line);
}

/* Whether the plan of sql on the store at path (its top-level step, or any step) names want
   and never avoid. */
static void
assert_plan(const char *path, const char *sql, const char *want, const char *avoid)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(fr_sqlite_body_functions(h), SQLITE_OK);
    char *q = fr_asprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, q, -1, &st, NULL), SQLITE_OK);
    bool wanted = false, avoided = true;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        wanted = wanted || strstr(detail, want) != NULL;
        avoided = avoided && strstr(detail, avoid) == NULL;
    }
    sqlite3_finalize(st);
    free(q);
    sqlite3_close(h);
    if (!wanted || !avoided)
        fail_msg("plan of %s: %s%s", sql, wanted ? "" : "no ", wanted ? avoid : want);
}

/* Spans filed under their trace id move to the conversation once a span of the trace names
   it (in a later transaction), with the index; later spans of the trace move as they come,
   also after the store is reopened (the link is durable). */
static void
test_store_trace_link_moves_events(void **state)
{
    struct t_store_fx *f = *state;
    const char *T = "4bf92f3577b34da6a3ce929d0e0e4736";
    put_span(f->st, T, "s1", 1771357445000, false);
    put_span(f->st, T, "s2", 1771357445100, true);
    int64_t c[2];
    conv_counts(f->st, T, c);
    assert_int_equal(c[0], 2);
    /* the root span's request: no stored event of its own, only the link */
    struct fr_err err = {0};
    assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
    assert_int_equal(fr_store_link_trace(f->st, T, "conv-X", &err), FR_OK);
    assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
    conv_counts(f->st, T, c);
    assert_int_equal(c[0], -1); /* the trace's index row is gone */
    conv_counts(f->st, "conv-X", c);
    assert_int_equal(c[0], 2);
    assert_int_equal(c[1], 1);
    char *db = fr_strdup(f->path);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM events WHERE conv_id = 'conv-X'"
                              " AND json_extract(body, '$.conv_id') = 'conv-X'",
                              NULL, 0),
                     2);
    /* a late child, after a reopen: moved in its own transaction */
    fr_store_close(f->st);
    f->st = t_store_open(f->dir, "hot.db");
    put_span(f->st, T, "s3", 1771357445200, false);
    conv_counts(f->st, "conv-X", c);
    assert_int_equal(c[0], 3);
    conv_counts(f->st, T, c);
    assert_int_equal(c[0], -1);
    /* a re-sent span the conversation already holds is not duplicated */
    put_span(f->st, T, "s1", 1771357445000, false);
    conv_counts(f->st, "conv-X", c);
    assert_int_equal(c[0], 3);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM events", NULL, 0), 3);
    /* a trace naming an erased conversation: its events are deleted, never moved there */
    int64_t erased_n;
    assert_int_equal(
        fr_store_erase_hot(f->st, "conv-E", "test", fr_now_ms(), false, &erased_n, &err), FR_OK);
    const char *U = "6bf92f3577b34da6a3ce929d0e0e4736";
    char *line = fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":"
                             "\"%s\",\"trace_id\":\"%s\",\"span_id\":\"u1\",\"event_id\":\"u1\","
                             "\"data\":{\"name\":\"t\"}}",
                             U, U);
    const char *lines[] = {line};
    t_ingest(f->st, lines, 1);
    free(line);
    assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
    assert_int_equal(fr_store_link_trace(f->st, U, "conv-E", &err), FR_OK);
    assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
    conv_counts(f->st, "conv-E", c);
    assert_int_equal(c[0], -1);
    conv_counts(f->st, U, c);
    assert_int_equal(c[0], -1);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM events WHERE trace_id = "
                              "'6bf92f3577b34da6a3ce929d0e0e4736'",
                              NULL, 0),
                     0);
    /* the first link wins: another conversation naming the trace changes nothing */
    assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
    assert_int_equal(fr_store_link_trace(f->st, T, "conv-Y", &err), FR_OK);
    assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
    conv_counts(f->st, "conv-Y", c);
    assert_int_equal(c[0], -1);
    /* an erased conversation's id is kept nowhere, not in the links (named before or after
       the erasure), and a late span of its trace is dropped */
    assert_int_equal(
        fr_store_erase_hot(f->st, "conv-X", "test", fr_now_ms(), false, &erased_n, &err), FR_OK);
    assert_int_equal(erased_n, 3);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM trace_pairs WHERE conv_id IN"
                              " ('conv-X', 'conv-E')",
                              NULL, 0),
                     0);
    put_span(f->st, T, "s4", 1771357445400, false);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM events", NULL, 0), 0);
    conv_counts(f->st, T, c);
    assert_int_equal(c[0], -1);
    /* the re-sent spans of a moved trace are found per event in events_event_key, not by
       reading every event of the conversation per move */
    assert_plan(db, SQ_TRACE_DEDUP_SQL, "events_event_key", "SCAN");
    free(db);
}

/* Appends "span(conv) " of each event to the string ud (a 512-byte buffer). */
static int
list_spans(void *ud, const struct fr_event_row *r)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s(%s) ", r->ids[FR_ID_SPAN] ? r->ids[FR_ID_SPAN] : "-",
             r->ids[FR_ID_CONV] ? r->ids[FR_ID_CONV] : "-");
    return 0;
}

/* The events of trace id T as list_spans writes them, in time order. */
static void
trace_events(struct fr_store *st, const char *trace, char out[512])
{
    out[0] = '\0';
    struct fr_event_filter f = {.id_field = FR_ID_TRACE, .id_value = trace};
    struct fr_err err = {0};
    assert_int_equal(fr_store_events(st, &f, list_spans, out, &err), FR_OK);
}

/* The spans (their event ids) of the events whose request or session id is v, as list_spans. */
static void
id_events(struct fr_store *st, int field, const char *v, char out[512])
{
    out[0] = '\0';
    struct fr_event_filter f = {.id_field = field, .id_value = v};
    struct fr_err err = {0};
    assert_int_equal(fr_store_events(st, &f, list_spans, out, &err), FR_OK);
}

/* A tool event with span (and event) id span, in conv (NULL: none), with a request and a
   session id (NULL: none). */
static char *
id_line_at(const char *conv, const char *span, const char *req, const char *ses, int64_t ts)
{
    char convf[64] = "", reqf[64] = "", sesf[64] = "";
    if (conv != NULL)
        snprintf(convf, sizeof convf, "\"conv_id\":\"%s\",", conv);
    if (req != NULL)
        snprintf(reqf, sizeof reqf, "\"request_id\":\"%s\",", req);
    if (ses != NULL)
        snprintf(sesf, sizeof sesf, "\"session_id\":\"%s\",", ses);
    return fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,%s%s%s"
                       "\"span_id\":\"%s\",\"event_id\":\"%s\",\"data\":{\"name\":\"t\"}}",
                       (long long)ts, convf, reqf, sesf, span, span);
}

static char *
id_line(const char *conv, const char *span, const char *req, const char *ses)
{
    return id_line_at(conv, span, req, ses, 1771357445000);
}

static void
ingest_id_lines(struct fr_store *st, char **lines, size_t n)
{
    t_ingest(st, (const char *const *)lines, n);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
}

/* Look-ups by request and session id go through one row per (id, conversation) pair, written
   once however many events and batches carry it (no index of events per id: schema 17);
   events without a conversation are found too; the pairs follow a trace's events to their
   conversation and go with an erased conversation, or with the last event holding the id
   (erased by value), or once their conversation left hot. */
static void
test_store_id_pairs(void **state)
{
    struct t_store_fx *f = *state;
    char *b1[] = {id_line("c1", "e1", "r1", "s1"), id_line("c1", "e2", "r1", "s1"),
                  id_line("c1", "e3", "r1", "s1"), id_line("c2", "e4", "r2", "s1"),
                  id_line(NULL, "e5", "r3", "s2")};
    ingest_id_lines(f->st, b1, 5);
    char *b2[] = {id_line("c1", "e6", "r4", "s1"), id_line("c2", "e7", "r2", "s1")};
    ingest_id_lines(f->st, b2, 2);
    char *db = fr_strdup(f->path);
    /* r1/c1, r2/c2, r4/c1, s1/c1, s1/c2 */
    assert_int_equal(sql_long(db, "SELECT count(*) FROM id_convs", NULL, 0), 5);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM sqlite_schema WHERE name IN"
                              " ('events_request', 'events_session')",
                              NULL, 0),
                     0);
    char out[512];
    id_events(f->st, FR_ID_REQUEST, "r1", out);
    assert_string_equal(out, "e1(c1) e2(c1) e3(c1) ");
    /* an event of r1 from before those, in a later batch: the look-up reads from its time */
    char *b0[] = {id_line_at("c1", "e0", "r1", NULL, 1771356845000)};
    ingest_id_lines(f->st, b0, 1);
    id_events(f->st, FR_ID_REQUEST, "r1", out);
    assert_string_equal(out, "e0(c1) e1(c1) e2(c1) e3(c1) ");
    /* and one from after them: up to its time */
    char *bz[] = {id_line_at("c1", "ez", "r1", NULL, 1771358045000)};
    ingest_id_lines(f->st, bz, 1);
    id_events(f->st, FR_ID_REQUEST, "r1", out);
    assert_string_equal(out, "e0(c1) e1(c1) e2(c1) e3(c1) ez(c1) ");
    id_events(f->st, FR_ID_REQUEST, "r3", out); /* no conversation */
    assert_string_equal(out, "e5(-) ");
    id_events(f->st, FR_ID_SESSION, "s1", out);
    assert_non_null(strstr(out, "e4(c2)"));
    assert_non_null(strstr(out, "e6(c1)"));
    assert_non_null(strstr(out, "e7(c2)"));
    assert_null(strstr(out, "e5"));
    id_events(f->st, FR_ID_SESSION, "s2", out);
    assert_string_equal(out, "e5(-) ");
    id_events(f->st, FR_ID_REQUEST, "nope", out);
    assert_string_equal(out, "");

    /* a pair forgotten by another connection is written again by the writer's next batch */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_exec(h, "DELETE FROM id_convs WHERE id = 's1' AND conv_id = 'c1'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(h), 1);
    sqlite3_close(h);
    char *b4[] = {id_line("c1", "e9", "r6", "s1")};
    ingest_id_lines(f->st, b4, 1);
    id_events(f->st, FR_ID_SESSION, "s1", out);
    assert_non_null(strstr(out, "e1(c1)"));
    assert_non_null(strstr(out, "e9(c1)"));
    /* filed under a trace, then moved to its conversation: the pair moves with the events */
    const char *T = "4bf92f3577b34da6a3ce929d0e0e4736";
    char *b3[] = {fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":1771357445000,\"conv_id\":"
                              "\"%s\",\"trace_id\":\"%s\",\"request_id\":\"r5\",\"span_id\":"
                              "\"e8\",\"event_id\":\"e8\",\"data\":{\"name\":\"t\"}}",
                              T, T)};
    ingest_id_lines(f->st, b3, 1);
    struct fr_err err = {0};
    assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
    assert_int_equal(fr_store_link_trace(f->st, T, "c1", &err), FR_OK);
    assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM id_convs WHERE conv_id ="
                              " '4bf92f3577b34da6a3ce929d0e0e4736'",
                              NULL, 0),
                     0);
    id_events(f->st, FR_ID_REQUEST, "r5", out);
    assert_string_equal(out, "e8(c1) ");

    /* an erased conversation's pairs go with it */
    int64_t erased_n;
    assert_int_equal(fr_store_erase_hot(f->st, "c2", "test", fr_now_ms(), false, &erased_n, &err),
                     FR_OK);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM id_convs WHERE conv_id = 'c2'", NULL, 0),
                     0);
    id_events(f->st, FR_ID_REQUEST, "r2", out);
    assert_string_equal(out, "");
    /* events erased by a value they hold (here r4, e6's request id): the pairs no event of
       their conversation holds any more go, the others stay */
    assert_int_equal(
        fr_store_erase_token_hot(f->st, "\"r4\"", "test", fr_now_ms(), false, &erased_n, &err),
        FR_OK);
    assert_int_equal(erased_n, 1);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM id_convs WHERE id = 'r4'", NULL, 0), 0);
    assert_int_equal(sql_long(db,
                              "SELECT count(*) FROM id_convs WHERE conv_id = 'c1'"
                              " AND id IN ('r1', 's1')",
                              NULL, 0),
                     2);
    /* pruning (at a store's first commit, then once a minute): the pairs of a conversation
       with nothing left in hot go, the others stay */
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_exec(h,
                                  "UPDATE id_convs SET ts_ms = 1000;"
                                  "INSERT INTO id_convs VALUES('request_id', 'r-gone', 'c-gone',"
                                  " 1000, 1000, 1000)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    long kept = sql_long(db, "SELECT count(*) FROM id_convs WHERE conv_id = 'c1'", NULL, 0);
    assert_true(kept >= 3);
    fr_store_close(f->st);
    f->st = t_store_open(f->dir, "hot.db");
    char *b5[] = {id_line("c3", "e10", NULL, NULL)};
    ingest_id_lines(f->st, b5, 1);
    assert_int_equal(
        sql_long(db, "SELECT count(*) FROM id_convs WHERE conv_id = 'c-gone'", NULL, 0), 0);
    assert_int_equal(sql_long(db, "SELECT count(*) FROM id_convs WHERE conv_id = 'c1'", NULL, 0),
                     kept);
    id_events(f->st, FR_ID_REQUEST, "r1", out);
    assert_string_equal(out, "e0(c1) e1(c1) e2(c1) e3(c1) ez(c1) ");
    free(db);
}

/* A record of kind of trace, span (also its event id) at ts, in conv (NULL: none). */
static char *
trace_line(const char *conv, const char *trace, const char *span, int64_t ts, const char *kind)
{
    char convf[96] = "";
    if (conv != NULL)
        snprintf(convf, sizeof convf, "\"conv_id\":\"%s\",", conv);
    return fr_asprintf("{\"v\":1,\"kind\":\"%s\",\"ts_ms\":%lld,%s\"trace_id\":\"%s\","
                       "\"span_id\":\"%s\",\"event_id\":\"%s\",\"data\":{\"name\":\"t\"}}",
                       kind, (long long)ts, convf, trace, span, span);
}

/* Look-ups by trace id go through the conversations the trace was seen in (schema version
   15, no index on trace_id alone): every event of the trace is found — without a
   conversation, filed under the trace then moved, in each of two conversations — and no
   other trace's; a log record's messages reach their provider event in the batch that
   stored it; a pair past the window stays while its events are in hot, one whose events
   left goes. */
static void
test_store_trace_lookup_through_pairs(void **state)
{
    struct t_store_fx *f = *state;
    const char *T = "7bf92f3577b34da6a3ce929d0e0e4736", *U = "8bf92f3577b34da6a3ce929d0e0e4736";
    struct fr_record recs[5];
    struct fr_err err = {0};
    char *lines[5] = {
        trace_line(NULL, T, "n1", 1771357445000, "tool"), /* no conversation */
        trace_line(T, T, "o1", 1771357445100, "tool"),    /* filed under its trace */
        trace_line("c-one", T, "a1", 1771357445200, "provider"),
        fr_asprintf("{\"v\":1,\"kind\":\"provider\",\"ts_ms\":1771357445200,\"conv_id\":\"c-one\","
                    "\"trace_id\":\"%s\",\"span_id\":\"a1\",\"data\":{\"request\":{\"messages\":"
                    "[{\"role\":\"user\",\"content\":\"hello\"}]}}}",
                    T),
        trace_line("c-one", U, "u1", 1771357445300, "tool"),
    };
    for (int i = 0; i < 5; i++)
        assert_int_equal(t_prepare(lines[i], &recs[i], &err), FR_OK);
    recs[3].part = true; /* a log record's messages, in the batch of their event */
    assert_int_equal(fr_ingest_commit(f->st, recs, 5, fr_now_ms(), NULL, &err), FR_OK);
    for (int i = 0; i < 5; i++) {
        fr_record_clear(&recs[i]);
        free(lines[i]);
    }
    char *two = trace_line("c-two", T, "b1", 1771357445400, "tool");
    t_ingest(f->st, (const char *const *)&two, 1);
    free(two);
    char got[512];
    trace_events(f->st, T, got);
    /* o1 moved to c-one, the trace's first conversation */
    assert_string_equal(got, "n1(-) o1(c-one) a1(c-one) b1(c-two) ");
    trace_events(f->st, U, got);
    assert_string_equal(got, "u1(c-one) ");
    assert_int_equal(sql_long(f->path,
                              "SELECT json_extract(fr_body(body), '$.data.request.messages[0]."
                              "content') = 'hello' FROM events WHERE span_id = 'a1'",
                              NULL, 0),
                     1);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM event_parts", NULL, 0), 0);
    /* every pair past the window; one of them has no event left */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE trace_convs SET ts_ms = 1000;"
                                  "UPDATE trace_convs_new SET ts_ms = 1000;"
                                  "INSERT INTO trace_convs VALUES('gone-trace', 'c-gone', 1000)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    /* recorded pairs are appended to trace_convs_new until merged (schema version 16) */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs_new", NULL, 0), 3);
    fr_store_close(f->st); /* a store prunes at its first commit, then once a minute */
    f->st = t_store_open(f->dir, "hot.db");
    const char *other = "{\"kind\":\"tool\",\"ts_ms\":1771357445500,\"conv_id\":\"c-x\"}";
    t_ingest(f->st, &other, 1);
    /* the appended pairs, 10 minutes old, were merged at that commit, before the pruning */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs_new", NULL, 0), 0);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs", NULL, 0), 3);
    assert_int_equal(sql_long(f->path,
                              "SELECT count(*) FROM trace_convs WHERE trace_id = 'gone-trace'",
                              NULL, 0),
                     0);
    trace_events(f->st, T, got);
    assert_string_equal(got, "n1(-) o1(c-one) a1(c-one) b1(c-two) ");
    /* the link is past its window: a new child filed under the trace stays there */
    char *late = trace_line(T, T, "o2", 1771357445600, "tool");
    t_ingest(f->st, (const char *const *)&late, 1);
    free(late);
    trace_events(f->st, T, got);
    assert_string_equal(
        got, "n1(-) o1(c-one) a1(c-one) b1(c-two) o2(7bf92f3577b34da6a3ce929d0e0e4736) ");
}

/* Commits one batch of n tool events, event i of trace merge_trace(i) in conversation
   "c-<i % 40>". */
static void
merge_trace(int i, char out[33])
{
    snprintf(out, 33, "%08x%024x", (unsigned)i * 2654435761u, (unsigned)i); /* not in order */
}

static void
merge_batch(struct fr_store *st, int first, int n)
{
    char **lines = fr_malloc((size_t)n * sizeof *lines);
    for (int i = 0; i < n; i++) {
        char trace[33], conv[16], span[16];
        merge_trace(first + i, trace);
        snprintf(conv, sizeof conv, "c-%d", (first + i) % 40);
        snprintf(span, sizeof span, "s%d", first + i);
        lines[i] = trace_line(conv, trace, span, 1771357445000 + first + i, "tool");
    }
    t_ingest(st, (const char *const *)lines, (size_t)n);
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* A span of trace filed under the trace (the span named no conversation): where it went. */
static void
orphan_lands(struct fr_store *st, const char *trace, const char *span, const char *want)
{
    char *line = trace_line(trace, trace, span, 1771357500000, "tool");
    t_ingest(st, (const char *const *)&line, 1);
    free(line);
    char got[512], expect[128];
    trace_events(st, trace, got);
    snprintf(expect, sizeof expect, "%s(%s) ", span, want);
    assert_non_null(strstr(got, expect));
}

/* The process's write system calls so far (/proc/self/io: syscw). */
static long long
write_calls(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    assert_non_null(fp);
    char line[128];
    long long n = -1;
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "syscw: %lld", &n) == 1)
            break;
    fclose(fp);
    return n;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

/*
 * The writer's VFS (sqlite_walbuf.c) gathers a transaction's WAL frames into
 * few writes, and every byte of a commit is in the file when the commit
 * returns (another connection reads it all); a transaction that spilled
 * frames and rolled back leaves nothing to overwrite what another connection
 * commits next (its buffered frames reach the file while it still holds the
 * write lock: SQLite's undo reads pages back through the WAL, and the lock's
 * release flushes what is left; this case passes with either alone).
 */
static void
test_store_wal_frames_gathered(void **state)
{
    struct t_store_fx *f = *state;
    const char *vfs = sq_walbuf_vfs();
    assert_non_null(vfs);
    char *path = fr_asprintf("%s/walbuf.db", f->dir), *wal = fr_asprintf("%s-wal", path);
    sqlite3 *a, *b;
    assert_int_equal(sqlite3_open_v2(path, &a, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    exec_ok(a, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               " CREATE TABLE t(x BLOB)");
    long long before = write_calls();
    assert_true(before >= 0);
    exec_ok(a,
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)"
            " INSERT INTO t SELECT randomblob(3000) FROM n; COMMIT");
    long long calls = write_calls() - before;
    /* 200 pages and more: 400 write calls and more, one by one */
    assert_true(calls > 0 && calls < 40);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal((sb.st_size - 32) % (24 + 4096), 0); /* whole frames, none held back */
    assert_true((sb.st_size - 32) / (24 + 4096) >= 200);
    assert_int_equal(sqlite3_open_v2(path, &b, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t", NULL, 0), 200);
    /* a transaction larger than the cache spills frames, then rolls back; b commits next */
    exec_ok(a, "PRAGMA cache_size=10; BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
               " SELECT i + 1 FROM n WHERE i < 300) INSERT INTO t SELECT randomblob(3000) FROM n");
    exec_ok(a, "ROLLBACK");
    exec_ok(b, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)"
               " INSERT INTO t SELECT zeroblob(3000) FROM n");
    exec_ok(a, "PRAGMA cache_size=-2000; SELECT count(*) FROM t"); /* a's next use of its WAL */
    /* storage.synchronous: full: the commit's sync comes after its frames */
    exec_ok(a, "PRAGMA synchronous=FULL; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
               " FROM n WHERE i < 20) INSERT INTO t SELECT randomblob(3000) FROM n");
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t", NULL, 0), 270);
    /* a write that fails (the file may not grow: EFBIG, as a full disk's ENOSPC) fails the
       commit, and nothing of it is seen */
    exec_ok(a, "PRAGMA synchronous=NORMAL; PRAGMA wal_checkpoint(TRUNCATE)");
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 16 * (24 + 4096); /* the WAL (empty again) takes 16 frames; the commit is not
                                        written to the database file, only a checkpoint is */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = sqlite3_exec(a,
                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                          " WHERE i < 100) INSERT INTO t SELECT randomblob(3000) FROM n",
                          NULL, NULL, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_xfsz);
    assert_int_not_equal(rc, SQLITE_OK);
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t", NULL, 0), 270);
    exec_ok(a, "INSERT INTO t VALUES (zeroblob(10))"); /* and the next commit goes in */
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t", NULL, 0), 271);
    sqlite3_close(a);
    sqlite3_close(b);
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t", NULL, 0), 271);
    assert_int_equal(sql_long(path, "SELECT count(*) FROM t WHERE x = zeroblob(3000)", NULL, 0),
                     50);
    char ok[16];
    assert_int_equal(sql_long(path, "PRAGMA integrity_check", ok, sizeof ok), 0);
    assert_string_equal(ok, "ok");
    free(path);
    free(wal);
}

/* A write with no room (SQLITE_FULL: a full disk; here the file may not grow past
   max_page_count) is said naming the file and the room its disk has, with what to do, not as
   SQLite's bare "database or disk is full". */
static void
test_store_full_said(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "small.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE t(x); PRAGMA max_page_count = 8");
    int rc = sqlite3_exec(db,
                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                          " WHERE i < 100) INSERT INTO t SELECT randomblob(3000) FROM n",
                          NULL, NULL, NULL);
    assert_int_equal(rc, SQLITE_FULL);
    struct fr_err err = {0};
    assert_int_equal(sq_fail(db, rc, &err, "commit"), FR_E_STORE);
    char *grow = fr_asprintf("commit: the hot store %s may not grow (database or disk is full) "
                             "though its disk has ",
                             path);
    char *full = fr_asprintf("commit: the disk holding the hot store %s is full (", path);
    if (strncmp(err.msg, grow, strlen(grow)) == 0) /* its disk has room: a limit */
        assert_non_null(strstr(err.msg, " free: a file size limit (ulimit -f"));
    else if (strncmp(err.msg, full, strlen(full)) == 0) /* under 64 MiB left there */
        assert_non_null(strstr(err.msg, "hot.max_bytes"));
    else
        fail_msg("said: %s", err.msg);
    free(grow);
    free(full);
    sqlite3_close(db);
    free(path);
}

/* A trace's link is its first merged pair within the window by time, then by conversation
   id, whatever order trace_convs keeps them in (its key: trace, conversation): a late span of
   the trace goes to the earliest conversation, and of two as early, to the first by id. */
static void
test_store_trace_first_pair_by_time(void **state)
{
    struct t_store_fx *f = *state;
    const char *W = "9af92f3577b34da6a3ce929d0e0e4736", *V = "9bf92f3577b34da6a3ce929d0e0e4736";
    long long now = (long long)fr_now_ms();
    char *sql =
        fr_asprintf("INSERT INTO trace_convs VALUES('%s', 'c-a', %lld), ('%s', 'c-b', %lld),"
                    " ('%s', 'c-old', %lld),"
                    " ('%s', 'c-z', %lld), ('%s', 'c-y', %lld), ('%s', 'c-x', %lld)",
                    W, now - 1000, W, now - 2000, W, now - 48 * 3600 * 1000LL, V, now - 3000, V,
                    now - 3000, V, now - 1000);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(sql);
    orphan_lands(f->st, W, "w1", "c-b"); /* c-a comes first by key; c-old is past the window */
    orphan_lands(f->st, V, "v1", "c-y");
}

/* New trace pairs are appended to trace_convs_new and merged into trace_convs in key order, a
   chunk a commit, once it holds SQ_TRACE_MERGE_ROWS (schema version 16): each pair is recorded
   once, and a trace's events are found and its link followed before, during and after the
   merge; pairs another connection appended are seen. */
static void
test_store_trace_pairs_merge(void **state)
{
    struct t_store_fx *f = *state;
    enum { BATCH = 500 };
    int start = (SQ_TRACE_MERGE_ROWS + BATCH - 1) / BATCH; /* the batch that starts the merge */
    int held = start * BATCH;                              /* the pairs that merge takes */
    int steps = held / SQ_TRACE_MERGE_CHUNK + 1;           /* its commits, the last deletes */
    assert_true(steps >= 3);
    int b = 0;
    for (; b < start; b++)
        merge_batch(f->st, b * BATCH, BATCH);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs", NULL, 0),
                     SQ_TRACE_MERGE_CHUNK);
    merge_batch(f->st, b++ * BATCH, BATCH);
    /* half-way: the first chunks merged, every pair still in trace_convs_new, once */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs", NULL, 0),
                     2 * SQ_TRACE_MERGE_CHUNK);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs_new", NULL, 0), b * BATCH);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_pairs", NULL, 0), b * BATCH);
    /* the first chunk holds the smallest trace ids, not the first ones recorded */
    char got[512], trace[33];
    sql_long(f->path,
             "SELECT max(trace_id) < (SELECT max(trace_id) FROM trace_convs_new)"
             " FROM trace_convs",
             got, sizeof got);
    assert_string_equal(got, "1");
    for (int i = 0; i < b * BATCH; i += 997) {
        char want[64];
        merge_trace(i, trace);
        trace_events(f->st, trace, got);
        snprintf(want, sizeof want, "s%d(c-%d) ", i, i % 40);
        assert_string_equal(got, want);
    }
    merge_trace(1, trace);
    orphan_lands(f->st, trace, "late1", "c-1");
    b++; /* that was a commit too */
    for (; b < start + steps - 1; b++)
        merge_batch(f->st, b * BATCH, BATCH);
    /* done: what it took is in trace_convs alone, what came since in trace_convs_new */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs", NULL, 0), held);
    int after = (b - 1) * BATCH - held; /* the orphan's commit appended no pair */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs_new", NULL, 0), after);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_pairs", NULL, 0), held + after);
    merge_trace(7, trace);
    orphan_lands(f->st, trace, "late7", "c-7"); /* merged */
    char conv[16];
    merge_trace(held + 3, trace); /* recorded after the merge started: not merged */
    snprintf(conv, sizeof conv, "c-%d", (held + 3) % 40);
    orphan_lands(f->st, trace, "late-new", conv);
    /* a pair appended by another connection is seen by this one */
    struct fr_store *other = t_store_open(f->dir, "hot.db");
    char *line =
        trace_line("c-other", "aaaabbbbccccddddeeeeffff00001111", "o1", 1771357500000, "tool");
    t_ingest(other, (const char *const *)&line, 1);
    free(line);
    fr_store_close(other);
    orphan_lands(f->st, "aaaabbbbccccddddeeeeffff00001111", "o2", "c-other");
}

/* A merge of the trace pairs that another connection's erasure changes behind its cursor:
   the pair (T, c-z) not merged yet becomes (T, '') (the erased conversation's id kept nowhere),
   a key the merge has passed; it is not deleted with the merged ones but stays for the next
   merge, so that T's first pair still drops T's late spans. */
static void
test_store_trace_merge_survives_erasure(void **state)
{
    struct t_store_fx *f = *state;
    const char *T = "m0000000000000000000000000000000";
    int n = SQ_TRACE_MERGE_ROWS, k = 0;
    char **lines = fr_malloc((size_t)n * sizeof *lines);
    /* keys in order: CHUNK - 1 fillers, (T, c-a) closing the first chunk, (T, c-z), fillers */
    lines[k++] = trace_line("c-z", T, "tz", 1771357445000, "tool"); /* T's first: its link */
    lines[k++] = trace_line("c-a", T, "ta", 1771357445001, "tool");
    for (int i = 0; i < SQ_TRACE_MERGE_CHUNK - 1; i++, k++) {
        char tr[40], sp[16];
        snprintf(tr, sizeof tr, "a%031d", i);
        snprintf(sp, sizeof sp, "a%d", i);
        lines[k] = trace_line("c-f", tr, sp, 1771357445002 + i, "tool");
    }
    for (int i = 0; k < n; i++, k++) {
        char tr[40], sp[16];
        snprintf(tr, sizeof tr, "z%031d", i);
        snprintf(sp, sizeof sp, "z%d", i);
        lines[k] = trace_line("c-f", tr, sp, 1771357450000 + i, "tool");
    }
    t_ingest(f->st, (const char *const *)lines, (size_t)n); /* the merge starts: one chunk */
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    char got[512];
    sql_long(f->path, "SELECT group_concat(conv_id) FROM trace_convs WHERE trace_id LIKE 'm%'", got,
             sizeof got);
    assert_string_equal(got, "c-a");
    struct fr_store *other = t_store_open(f->dir, "hot.db");
    struct fr_err err = {0};
    int64_t erased = 0;
    assert_int_equal(fr_store_erase_hot(other, "c-z", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    assert_int_equal(erased, 1);
    fr_store_close(other);
    for (int i = 0; i < n / SQ_TRACE_MERGE_CHUNK + 1; i++) { /* the merge's other steps */
        char line[128];
        snprintf(line, sizeof line,
                 "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"c-x\",\"event_id\":\"x%d\"}",
                 1771357460000LL + i, i);
        const char *one = line;
        t_ingest(f->st, &one, 1);
    }
    /* merged and deleted, but for the pair the merge could not take */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM trace_convs", NULL, 0), n - 1);
    sql_long(f->path, "SELECT group_concat(trace_id || '/' || conv_id) FROM trace_convs_new", got,
             sizeof got);
    assert_string_equal(got, "m0000000000000000000000000000000/");
    /* T's late span is dropped, not filed under T */
    char *late = trace_line(T, T, "late", 1771357470000, "tool");
    t_ingest(f->st, (const char *const *)&late, 1);
    free(late);
    assert_int_equal(
        sql_long(f->path, "SELECT count(*) FROM events WHERE span_id IN ('late', 'tz')", NULL, 0),
        0);
}

/* The version 15 migration records the pairs of the stored events, the trace's link still
   its first, and trace look-ups find what version 14 stored. */
static void
test_store_migration_builds_trace_pairs(void **state)
{
    struct t_store_fx *f = *state;
    char *path = t_path(f->dir, "v14.db");
    sqlite3 *db;
    struct fr_err err = {0};
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(fr_schema_migrate(db, 14, &err), FR_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "INSERT INTO events(ts_ms, ingested_ms, kind, conv_id, trace_id, span_id, body)"
            " VALUES(1771357445000, 100, 'tool', 'c1', 'T', 's1', '{}'),"
            " (1771357445100, 200, 'tool', 'c2', 'T', 's2', '{}'),"
            " (1771357445200, 300, 'tool', 'T', 'T', 's3', '{}'),"
            " (1771357445300, 400, 'tool', 'c1', NULL, 's4', '{}');"
            "INSERT INTO trace_convs VALUES('T', 'c2', 150);",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct fr_store *st;
    assert_int_equal(fr_store_open(path, NULL, &st, &err), FR_OK);
    char got[512];
    sql_long(path,
             "SELECT group_concat(conv_id || '@' || ts_ms, ' ') FROM"
             " (SELECT * FROM trace_convs ORDER BY ts_ms)",
             got, sizeof got);
    assert_string_equal(got, "c2@150 c1@151"); /* c2 linked first stays the link */
    assert_int_equal(
        sql_long(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'events_trace'", NULL, 0),
        0);
    trace_events(st, "T", got);
    assert_string_equal(got, "s1(c1) s2(c2) s3(T) ");
    fr_store_close(st);
    free(path);
}

/* Commits one part (messages of the provider event of trace T, span sp). */
static void
put_part(struct fr_store *st, const char *span, const char *side, const char *msg)
{
    char *line = fr_asprintf(
        "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":1771357445000,\"conv_id\":\"c-parts\","
        "\"trace_id\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"%s\",\"event_id\":\"%s\","
        "\"data\":{\"%s\":{\"messages\":[%s]}}}",
        span, span, side, msg);
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    rec.part = true;
    assert_int_equal(fr_ingest_commit(st, &rec, 1, fr_now_ms(), NULL, &err), FR_OK);
    fr_record_clear(&rec);
    free(line);
}

/* Messages sent apart from their provider event (OTLP GenAI log events) are merged into
   it: parked when they come first, merged at once when they come after, never twice; they
   are not events (no row, no count). */
static void
test_store_event_parts_merge(void **state)
{
    struct t_store_fx *f = *state;
    put_part(f->st, "a1", "request", "{\"role\":\"user\",\"content\":\"first\"}");
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM event_parts", NULL, 0), 1);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM events", NULL, 0), 0);
    const char *ev =
        "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":1771357445000,\"conv_id\":\"c-parts\","
        "\"trace_id\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"a1\",\"event_id\":\"a1\","
        "\"data\":{\"provider\":\"openai\",\"model\":\"m\"}}";
    t_ingest(f->st, &ev, 1);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM event_parts", NULL, 0), 0);
    put_part(f->st, "a1", "request", "{\"role\":\"user\",\"content\":\"second\"}");
    put_part(f->st, "a1", "response", "{\"role\":\"assistant\",\"content\":\"answer\"}");
    put_part(f->st, "a1", "request", "{\"role\":\"user\",\"content\":\"second\"}"); /* again */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM events", NULL, 0), 1);
    assert_int_equal(
        sql_long(f->path, "SELECT json_array_length(body, '$.data.request.messages') FROM events",
                 NULL, 0),
        2);
    /* a call's messages as one export carried them: equal ones at different places all stay;
       the same export again adds nothing; one that goes on from where the call ends adds the
       rest */
#define YES "{\"role\":\"user\",\"content\":\"yes\"}"
#define OK "{\"role\":\"assistant\",\"content\":\"ok\"}"
    put_part(f->st, "a1", "request", YES "," OK "," YES);
    put_part(f->st, "a1", "request", YES "," OK "," YES); /* re-sent */
    put_part(f->st, "a1", "request", YES ",{\"role\":\"user\",\"content\":\"more\"}");
#undef YES
#undef OK
    assert_int_equal(
        sql_long(f->path, "SELECT json_array_length(body, '$.data.request.messages') FROM events",
                 NULL, 0),
        6);
    char got[400];
    sql_long(f->path,
             "SELECT group_concat(value ->> 'content', ' ') FROM events,"
             " json_each(events.body, '$.data.request.messages')",
             got, sizeof got);
    assert_string_equal(got, "first second yes ok yes more");
    assert_int_equal(sql_long(f->path,
                              "SELECT json_extract(body, '$.data.request.messages[0]."
                              "content') = 'first' FROM events",
                              NULL, 0),
                     1);
    assert_int_equal(sql_long(f->path,
                              "SELECT json_extract(body, '$.data.response.messages[0]."
                              "content') = 'answer' FROM events",
                              NULL, 0),
                     1);
    assert_int_equal(sql_long(f->path,
                              "SELECT event_count FROM conversations WHERE conv_id = 'c-parts'",
                              NULL, 0),
                     1);
    /* a part finds its event by rowid among its trace's events, not by reading every
       provider event of the store (events_kind) */
    assert_plan(f->path, SQ_PART_TARGET_SQL, "INTEGER PRIMARY KEY (rowid=?)", "events_kind");
}

/* ---- WAL checkpoints ---- */

/* Commits 250 distinct events of ~2 KB (ids from *next on); the WAL pages after it. */
static int
ckpt_batch(struct fr_store *st, int *next)
{
    char pad[2001];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char *owned[250];
    const char *lines[250];
    for (int i = 0; i < 250; i++, (*next)++) {
        owned[i] = fr_asprintf("{\"v\":1,\"kind\":\"middleware\",\"ts_ms\":%lld,\"conv_id\":"
                               "\"c%d\",\"event_id\":\"e%d\",\"data\":{\"step\":\"%s\"}}",
                               1700000000000LL + *next, *next % 97, *next, pad);
        lines[i] = owned[i];
    }
    t_ingest(st, lines, 250);
    for (int i = 0; i < 250; i++)
        free(owned[i]);
    struct fr_store_wal_stats ws;
    fr_store_wal_stats(st, &ws);
    return ws.frames;
}

/* Waits (up to max_ms) until the store has run more than `had` background passes; their
   count. */
static uint64_t
ckpt_wait_background(struct fr_store *st, uint64_t had, int max_ms)
{
    struct fr_store_wal_stats ws;
    fr_store_wal_stats(st, &ws);
    for (int waited = 0; ws.background <= had && waited < max_ms; waited += 10) {
        usleep(10000);
        fr_store_wal_stats(st, &ws);
    }
    return ws.background;
}

/* The ingest writer's store copies its WAL back on a thread of its own: SQLite's usual 1,000
   pages pass without any checkpoint; past 16 MB of WAL (4,000 pages of 4 KiB; here 2,000 of
   the database's 8 KiB) a background pass runs and the writer's commits do not checkpoint;
   over more commits than the bound the WAL stays within it (32 MB and a commit); every event
   reads back. A store opened without the option reports nothing (SQLite checkpoints in its
   commits). The writer's own pass at the bound shows in the ingest bench (docs/storage.md). */
static void
test_store_background_checkpoint(void **state)
{
    struct t_store_fx *f = *state;
    struct fr_store_wal_stats ws;
    fr_store_wal_stats(f->st, &ws);
    assert_true(ws.background == 0 && ws.writer == 0 && ws.frames == 0);
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.background_checkpoint = true;
    so.compress_bodies = false; /* the page counts below are of these bodies' size */
    char *path = t_path(f->dir, "ckpt.db");
    struct fr_store *st = NULL;
    struct fr_err err = {0};
    /* a database made with 8 KiB pages (an existing file keeps its own): the bounds are bytes */
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=8192; CREATE TABLE t(a); DROP TABLE t",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fr_store_open(path, &so, &st, &err), FR_OK);
    int page = 8192, soft = 4000 * 4096 / page, hard = 8000 * 4096 / page;
    int next = 0, frames = 0, most = 0, grew = 0;
    while ((frames = ckpt_batch(st, &next)) < soft) { /* up to the thread's point */
        grew = frames > grew ? frames : grew;
        fr_store_wal_stats(st, &ws);
        assert_true(ws.background == 0 && ws.writer == 0); /* SQLite's 1,000 did not run one */
    }
    assert_true(ckpt_wait_background(st, 0, 20000) >= 1);
    fr_store_wal_stats(st, &ws);
    assert_int_equal(ws.writer, 0); /* the commits left it to the thread */
    assert_true(grew > 0);
    /* more pages of commits than the bound: the WAL never holds more than it plus a commit */
    int per_commit = frames - grew + 1;
    for (int written = 0; written < hard + hard / 8; written += per_commit) {
        frames = ckpt_batch(st, &next);
        most = frames > most ? frames : most;
    }
    assert_true(most <= hard + 2 * per_commit);
    char *wal = fr_asprintf("%s-wal", path);
    struct stat wst;
    assert_int_equal(stat(wal, &wst), 0);
    assert_true(wst.st_size <= (int64_t)(hard + 2 * per_commit) * (page + 24) + 32);
    fr_store_close(st); /* stops the thread; the last close folds the WAL in */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), next);
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(wal);
    free(path);
}

/* A store of the writer's kind (background checkpoints, the idle catch-up after idle_ms, -1
   off) at dir/name, committed past the thread's point while *rd, a reader, holds its
   snapshot from before (so no pass can copy the whole WAL, and it cannot start again); the
   WAL's frames after the last commit, *next the next event's number. */
static int
ckpt_past_soft(struct t_store_fx *f, const char *name, int idle_ms, struct fr_store **st,
               sqlite3 **rd, int *next)
{
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.background_checkpoint = true;
    so.checkpoint_idle_ms = idle_ms;
    so.compress_bodies = false; /* the page counts are of these bodies' size */
    char *path = t_path(f->dir, name);
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(path, &so, st, &err), FR_OK);
    *next = 0;
    int frames = ckpt_batch(*st, next);
    assert_int_equal(sqlite3_open_v2(path, rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(*rd, "BEGIN; SELECT count(*) FROM events", NULL, NULL, NULL),
                     SQLITE_OK);
    while (frames < SQ_CKPT_SOFT_BYTES / 4096)
        frames = ckpt_batch(*st, next);
    free(path);
    return frames;
}

/* Past the thread's point, a new pass is asked for only once SQ_CKPT_STEP_BYTES more of WAL
   were written since the last was asked, not after every commit: small transactions (a socket
   client's events one at a time) otherwise had the thread run a pass, with its two fsyncs,
   after nearly each of them (16 HTTP clients of one event each: 1,080 passes and 1,436
   fdatasyncs for 20,000 events). The reader keeps the frames growing here (and the thread's
   copy when the writer is idle is off: a slow commit must not look like one). */
static void
test_store_checkpoint_passes_spaced(void **state)
{
    struct fr_store *st;
    sqlite3 *rd;
    int next, step = SQ_CKPT_STEP_BYTES / 4096;
    int frames = ckpt_past_soft(*state, "spaced.db", -1, &st, &rd, &next);
    int asked = frames; /* the commit past the point asked for the first pass */
    uint64_t passes = ckpt_wait_background(st, 0, 2000);
    assert_int_equal(passes, 1);
    int commits = 0;
    for (;;) {
        int before = frames;
        frames = ckpt_batch(st, &next);
        assert_true(frames > before); /* the reader's snapshot: the WAL did not start again */
        if (frames - asked >= step)
            break;
        usleep(20000); /* time for a pass, were one asked for */
        struct fr_store_wal_stats ws;
        fr_store_wal_stats(st, &ws);
        assert_int_equal(ws.background, passes);
        commits++;
    }
    assert_true(commits >= 3); /* several commits passed without a pass */
    assert_int_equal(ckpt_wait_background(st, passes, 2000), passes + 1);
    sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(rd);
    fr_store_close(st);
}

/* A pass that could not copy the whole WAL (a reader held its snapshot) is finished by the
   thread once the writer has been idle SQ_CKPT_IDLE_MS, and the next commit starts the WAL
   again from its beginning: passes coming only every SQ_CKPT_STEP_BYTES, the thread rarely
   catches up while the writer is busy, and the WAL would otherwise grow to the writer's bound
   after every burst. */
static void
test_store_checkpoint_idle_catches_up(void **state)
{
    struct fr_store *st;
    sqlite3 *rd;
    int next, frames = ckpt_past_soft(*state, "idle.db", 0, &st, &rd, &next);
    uint64_t passes = ckpt_wait_background(st, 0, 2000);
    assert_true(passes >= 1); /* behind: it could not copy past the reader's snapshot */
    assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(rd);
    /* the reader gone and no commit for SQ_CKPT_IDLE_MS: the thread copies the rest. A pass
       that began before the reader went may still end after, short of it, so up to three;
       an idle pass that got no further backs off up to 1 s, hence the wait's 5 s */
    struct fr_store_wal_stats ws;
    fr_store_wal_stats(st, &ws);
    passes = ws.background;
    bool restarted = false;
    for (int tries = 0; tries < 3 && !restarted; tries++) {
        uint64_t now = ckpt_wait_background(st, passes, 5000);
        assert_true(now > passes);
        passes = now;
        int before = frames;
        frames = ckpt_batch(st, &next);
        restarted = frames < before / 2; /* started again from its beginning */
    }
    assert_true(restarted);
    fr_store_close(st);
}

/* ---- compressed bodies ---- */

/* Event n: a middleware step of conversation c(n % 53) with ~1.8 kB of words. */
static int body_convs = 53; /* the conversations body_line's events go round */

static char *
body_line(int n)
{
    static const char *const words[] = {"the",    "model",  "answered", "with",  "a",
                                        "tool",   "call",   "timeout",  "retry", "user",
                                        "asked",  "about",  "refunds",  "order", "status",
                                        "policy", "window", "context",  "limit", "stream"};
    char text[2048];
    size_t o = 0;
    unsigned x = (unsigned)n * 2654435761u;
    while (o < 1800) {
        x = x * 1103515245u + 12345u;
        o += (size_t)snprintf(text + o, sizeof text - o, "%s ", words[(x >> 16) % 20]);
    }
    text[o - 1] = '\0';
    return fr_asprintf("{\"v\":1,\"kind\":\"middleware\",\"ts_ms\":%lld,\"conv_id\":\"c%d\","
                       "\"event_id\":\"b%d\",\"data\":{\"step\":\"s%d\",\"note\":\"%s\"}}",
                       1700000000000LL + n, n % body_convs, n, n, text);
}

/* Ingests events [from, to) in batches of 100. */
static void
put_bodies(struct fr_store *st, int from, int to)
{
    for (int n = from; n < to; n += 100) {
        char *owned[100];
        const char *lines[100];
        int k = 0;
        for (; k < 100 && n + k < to; k++)
            lines[k] = owned[k] = body_line(n + k);
        t_ingest(st, lines, (size_t)k);
        for (int i = 0; i < k; i++)
            free(owned[i]);
    }
}

struct body_check {
    int rows, same;
};

static int
check_body(void *ud, const struct fr_event_row *r)
{
    struct body_check *c = ud;
    int n = atoi(r->ids[FR_ID_EVENT] + 1);
    char *want = body_line(n);
    c->rows++;
    c->same += r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0;
    free(want);
    return 0;
}

/* Every stored body reads back byte for byte; the number of rows read. */
static int
bodies_read_back(struct fr_store *st, int expect)
{
    struct fr_event_filter ef = {0};
    ef.kind = "middleware";
    struct body_check c = {0};
    struct fr_err err = {0};
    assert_int_equal(fr_store_events(st, &ef, check_body, &c, &err), FR_OK);
    assert_int_equal(c.rows, expect);
    assert_int_equal(c.same, expect);
    return c.rows;
}

/* How many of events [0, to) belong to conversation c<k>. */
static int
conv_share(int to, int k)
{
    return to / 53 + (to % 53 > k);
}

/* The id of the only body dictionary; fails unless there is exactly one. */
static long
only_dict(const char *path)
{
    assert_int_equal(sql_long(path, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
    return sql_long(path, "SELECT id FROM body_dicts", NULL, 0);
}

/* A store of one conversation (a long agent session: one group of samples per kind) trains
   its dictionary too, from more of that conversation's bodies, and compresses with it. */
static void
test_store_bodies_compressed_one_conversation(void **state)
{
    struct t_store_fx *f = *state;
    body_convs = 1;
    put_bodies(f->st, 0, 800);
    body_convs = 53;
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
    assert_int_equal(sql_long(f->path, "SELECT count(DISTINCT conv_id) FROM events", NULL, 0), 1);
    assert_true(sql_long(f->path, "SELECT count(*) FROM events WHERE typeof(body) = 'blob'", NULL,
                         0) >= 100);
    assert_true(sql_long(f->path,
                         "SELECT instr(convs, char(10) || 'c0' || char(10)) FROM body_dicts", NULL,
                         0) > 0);
}

/* Once a store has taken 1 MiB of bodies as text, it trains a dictionary from them and
   stores later bodies compressed with it (a fraction of their size); every body reads back
   byte for byte, by the store (also read-only and reopened) and through fr_body(); text
   search, a trace's move and merged parts work on compressed rows; a store opened without
   compression writes text and still reads the compressed rows. */
static void
test_store_bodies_compressed(void **state)
{
    struct t_store_fx *f = *state;
    put_bodies(f->st, 0, 500); /* ~0.9 MiB: below the training point */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM body_dicts", NULL, 0), 0);
    put_bodies(f->st, 500, 700);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
    put_bodies(f->st, 700, 1000);
    long packed =
        sql_long(f->path, "SELECT count(*) FROM events WHERE typeof(body) = 'blob'", NULL, 0);
    assert_true(packed >= 300);
    /* the compressed rows: under a third of their text (words from a 20-word vocabulary) */
    assert_true(3 * sql_long(f->path,
                             "SELECT sum(length(body)) FROM events WHERE typeof(body) = 'blob'",
                             NULL, 0) <
                sql_long(f->path,
                         "SELECT sum(length(fr_body(body))) FROM events"
                         " WHERE typeof(body) = 'blob'",
                         NULL, 0));
    bodies_read_back(f->st, 1000);
    /* text search reads compressed bodies */
    struct fr_event_filter ef = {0};
    ef.text = "s977";
    struct ids got = {0};
    struct fr_err err = {0};
    assert_int_equal(fr_store_events(f->st, &ef, collect_event_id, &got, &err), FR_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.v[0], "b977");
    ids_free(&got);
    /* reopened: the same dictionary, new rows compressed with it */
    fr_store_close(f->st);
    f->st = t_store_open(f->dir, "hot.db");
    put_bodies(f->st, 1000, 1100);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
    assert_int_equal(
        sql_long(f->path, "SELECT count(*) FROM events WHERE typeof(body) = 'blob'", NULL, 0),
        packed + 100);
    bodies_read_back(f->st, 1100);
    /* a trace's events moved to its conversation, and parts merged, on compressed rows */
    const char *T = "4bf92f3577b34da6a3ce929d0e0e4736";
    put_span(f->st, T, "s1-with-a-longer-span-id-so-that-the-body-compresses", 1771357445000,
             false);
    assert_int_equal(fr_store_begin(f->st, &err), FR_OK);
    assert_int_equal(fr_store_link_trace(f->st, T, "conv-X", &err), FR_OK);
    assert_int_equal(fr_store_commit(f->st, &err), FR_OK);
    assert_int_equal(sql_long(f->path,
                              "SELECT count(*) FROM events WHERE conv_id = 'conv-X' AND"
                              " typeof(body) = 'blob' AND"
                              " json_extract(fr_body(body), '$.conv_id') = 'conv-X'",
                              NULL, 0),
                     1);
    const char *ev =
        "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":1771357445000,\"conv_id\":\"c-parts\","
        "\"trace_id\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"a1\",\"event_id\":\"a1\","
        "\"data\":{\"provider\":\"openai\",\"model\":\"the model answered with a tool call\"}}";
    t_ingest(f->st, &ev, 1);
    put_part(f->st, "a1", "request", "{\"role\":\"user\",\"content\":\"the user asked about\"}");
    assert_int_equal(sql_long(f->path,
                              "SELECT json_extract(fr_body(body), '$.data.request.messages[0]."
                              "content') = 'the user asked about' FROM events WHERE"
                              " event_id = 'a1' AND typeof(body) = 'blob'",
                              NULL, 0),
                     1);
    /* erasing a conversation its dictionary sampled: the dictionary is replaced by one
       trained without it, and every row re-encoded; the others read back */
    long d1 = only_dict(f->path);
    int64_t erased = 0;
    assert_int_equal(fr_store_erase_hot(f->st, "c5", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    assert_int_equal(erased, conv_share(1100, 5));
    long d2 = only_dict(f->path);
    assert_true(d2 != d1);
    assert_int_equal(sql_long(f->path,
                              "SELECT instr(convs, char(10) || 'c5' || char(10)) FROM body_dicts",
                              NULL, 0),
                     0);
    assert_int_equal(sql_long(f->path,
                              "SELECT instr(convs, char(10) || 'c6' || char(10)) > 0 FROM"
                              " body_dicts",
                              NULL, 0),
                     1);
    char *q = fr_asprintf("SELECT count(*) FROM events WHERE fr_body_dict(body) = %ld", d1);
    assert_int_equal(sql_long(f->path, q, NULL, 0), 0);
    free(q);
    q = fr_asprintf("SELECT count(*) FROM events WHERE fr_body_dict(body) = %ld", d2);
    assert_true(sql_long(f->path, q, NULL, 0) >= packed + 100 - conv_share(1100, 5));
    free(q);
    bodies_read_back(f->st, 1100 - conv_share(1100, 5));
    /* read-only, and a writer that does not compress */
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.read_only = true;
    struct fr_store *ro = NULL;
    assert_int_equal(fr_store_open(f->path, &so, &ro, &err), FR_OK);
    bodies_read_back(ro, 1100 - conv_share(1100, 5));
    fr_store_close(ro);
    fr_store_close(f->st);
    fr_store_opts_default(&so);
    so.compress_bodies = false;
    assert_int_equal(fr_store_open(f->path, &so, &f->st, &err), FR_OK);
    put_bodies(f->st, 1100, 1200);
    assert_int_equal(sql_long(f->path,
                              "SELECT count(*) FROM events WHERE typeof(body) = 'text'"
                              " AND kind = 'middleware' AND CAST(substr(event_id, 2) AS"
                              " INTEGER) >= 1100",
                              NULL, 0),
                     100 - (conv_share(1200, 5) - conv_share(1100, 5))); /* c5's are refused */
    int left = 1200 - conv_share(1200, 5);
    bodies_read_back(f->st, left);
    /* erased by a store that does not compress: the rows go back to text, the dictionary */
    assert_int_equal(fr_store_erase_hot(f->st, "c6", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM body_dicts", NULL, 0), 0);
    assert_int_equal(
        sql_long(f->path, "SELECT count(*) FROM events WHERE typeof(body) = 'blob'", NULL, 0), 0);
    bodies_read_back(f->st, left - conv_share(1200, 6));
}

/* A store that trains its body dictionaries in the background, on path. */
static struct fr_store *
open_background(const char *path)
{
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.background_training = true;
    struct fr_store *st = NULL;
    struct fr_err err = {0};
    assert_int_equal(fr_store_open(path, &so, &st, &err), FR_OK);
    return st;
}

/* Ingests batches of 100 from *n on until path holds a body dictionary (waits for the
   training's thread, at most two minutes: valgrind makes it slow). */
static void
put_until_dict(struct fr_store *st, const char *path, int *n)
{
    double until = fr_mono_s() + 120;
    while (sql_long(path, "SELECT count(*) FROM body_dicts", NULL, 0) == 0 && fr_mono_s() < until) {
        put_bodies(st, *n, *n + 100);
        *n += 100;
        usleep(10000);
    }
    assert_int_equal(sql_long(path, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
}

/* Does the only dictionary of path list conversation conv among its samples? */
static long
dict_sampled(const char *path, const char *conv)
{
    char *q =
        fr_asprintf("SELECT instr(convs, char(10) || '%s' || char(10)) > 0 FROM body_dicts", conv);
    long r = sql_long(path, q, NULL, 0);
    free(q);
    return r;
}

/* The ingest writer's store trains its dictionaries on a thread of their own: the commit
   that makes one due returns without it (on the writer's thread it was there at once), a
   later commit stores it and later bodies are compressed with it; a training whose samples
   an erasure may have held is dropped, whether this store erased or another one did while it
   ran; a store closed while one runs keeps it. */
static void
test_store_bodies_trained_in_background(void **state)
{
    struct t_store_fx *f = *state;
    struct fr_err err = {0};
    int64_t erased = 0;
    /* this store erases: the running training is dropped, the next one lacks the erased */
    char *x = t_path(f->dir, "x.db");
    struct fr_store *st = open_background(x);
    /* 500 events are ~0.9 MiB: the last batch's commit makes a training due, none follows */
    put_bodies(st, 0, 600);
    assert_int_equal(sql_long(x, "SELECT count(*) FROM body_dicts", NULL, 0), 0);
    assert_int_equal(fr_store_erase_hot(st, "c5", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    assert_int_equal(erased, conv_share(600, 5));
    int n = 600;
    put_until_dict(st, x, &n);
    assert_int_equal(dict_sampled(x, "c5"), 0);
    assert_int_equal(dict_sampled(x, "c6"), 1);
    long text = sql_long(x, "SELECT count(*) FROM events WHERE typeof(body) = 'text'", NULL, 0);
    put_bodies(st, n, n + 100);
    n += 100;
    assert_int_equal(
        sql_long(x, "SELECT count(*) FROM events WHERE typeof(body) = 'text'", NULL, 0),
        text); /* every new body compressed */
    bodies_read_back(st, n - conv_share(n, 5));
    fr_store_close(st);
    /* another store erases while a training runs: dropped at the next commit */
    char *y = t_path(f->dir, "y.db");
    st = open_background(y);
    put_bodies(st, 0, 600);
    assert_int_equal(sql_long(y, "SELECT count(*) FROM body_dicts", NULL, 0), 0);
    struct fr_store *other = t_store_open(f->dir, "y.db");
    assert_int_equal(fr_store_erase_hot(other, "c7", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    fr_store_close(other);
    n = 600;
    put_until_dict(st, y, &n);
    assert_int_equal(dict_sampled(y, "c7"), 0); /* the running training had sampled it */
    assert_int_equal(dict_sampled(y, "c8"), 1);
    fr_store_close(st);
    /* closed while a training runs: the dictionary is kept for the next writer */
    char *z = t_path(f->dir, "z.db");
    st = open_background(z);
    put_bodies(st, 0, 600);
    assert_int_equal(sql_long(z, "SELECT count(*) FROM body_dicts", NULL, 0), 0);
    fr_store_close(st);
    assert_int_equal(sql_long(z, "SELECT count(*) FROM body_dicts", NULL, 0), 1);
    free(x);
    free(y);
    free(z);
}

/* Records of events [from, to) prepared (not stored), each packed by the store. */
static struct fr_record *
packed_records(struct fr_store *st, int from, int to)
{
    struct fr_record *recs = fr_calloc((size_t)(to - from), sizeof *recs);
    struct fr_err err = {0};
    for (int n = from; n < to; n++) {
        char *line = body_line(n);
        if (t_prepare(line, &recs[n - from], &err) != FR_OK)
            fail_msg("event %d did not prepare: %s", n, err.msg);
        free(line);
        fr_store_pack(st, &recs[n - from]);
    }
    return recs;
}

static void
records_free(struct fr_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fr_record_clear(&recs[i]);
    free(recs);
}

struct pack_job {
    struct fr_store *st;
    int from;
    struct fr_record *recs;
};

static void *
pack_thread(void *arg)
{
    struct pack_job *j = arg;
    /* prepared by the main thread (the test's redactor is not shared); packed here */
    for (int i = 0; i < 300; i++)
        fr_store_pack(j->st, &j->recs[i]);
    return NULL;
}

/* A producer's thread compresses a record's body with the store's current dictionary
   (fr_store_pack), so that the writer does not: the store keeps those bytes as they are. A
   record packed with a dictionary that an erasure has retired since is compressed again
   by the store, and every body reads back byte for byte, also when threads pack while the
   writer erases (ThreadSanitizer in CI). */
static void
test_store_bodies_packed_by_producer(void **state)
{
    struct t_store_fx *f = *state;
    struct fr_err err = {0};
    /* no dictionary yet: nothing to pack with */
    struct fr_record *r = packed_records(f->st, 2000, 2001);
    assert_null(r[0].packed);
    records_free(r, 1);
    put_bodies(f->st, 0, 700);
    long d1 = only_dict(f->path);
    r = packed_records(f->st, 700, 703);
    for (int i = 0; i < 3; i++) {
        assert_non_null(r[i].packed);
        assert_true(3 * r[i].packed_len < r[i].body_len);
        assert_int_equal(r[i].packed_dict, d1);
    }
    /* the store takes the producer's bytes: given b701's, b700 reads as b701's text */
    unsigned char *p0 = r[0].packed;
    size_t l0 = r[0].packed_len;
    r[0].packed = r[1].packed;
    r[0].packed_len = r[1].packed_len;
    r[1].packed = p0;
    r[1].packed_len = l0;
    assert_int_equal(fr_ingest_commit(f->st, r, 1, fr_now_ms(), NULL, &err), FR_OK);
    assert_int_equal(sql_long(f->path,
                              "SELECT json_extract(fr_body(body), '$.event_id') = 'b701' FROM"
                              " events WHERE event_id = 'b700'",
                              NULL, 0),
                     1);
    /* b702, packed with d1; erasing c11 (b700's conversation, which d1 sampled) retires d1
       before b702 is stored */
    int64_t erased = 0;
    assert_int_equal(fr_store_erase_hot(f->st, "c11", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    long d2 = only_dict(f->path);
    assert_true(d2 != d1);
    assert_int_equal(fr_ingest_commit(f->st, &r[2], 1, fr_now_ms(), NULL, &err), FR_OK);
    assert_int_equal(
        sql_long(f->path, "SELECT fr_body_dict(body) FROM events WHERE event_id = 'b702'", NULL, 0),
        d2);
    records_free(r, 3);
    /* two threads pack while the writer erases (twice: the dictionary changes under them) */
    struct pack_job jobs[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        jobs[t] = (struct pack_job){f->st, 1000 + 300 * t, NULL};
        jobs[t].recs = fr_calloc(300, sizeof *jobs[t].recs);
        for (int i = 0; i < 300; i++) {
            char *line = body_line(jobs[t].from + i);
            assert_int_equal(t_prepare(line, &jobs[t].recs[i], &err), FR_OK);
            free(line);
        }
        assert_int_equal(pthread_create(&th[t], NULL, pack_thread, &jobs[t]), 0);
    }
    assert_int_equal(fr_store_erase_hot(f->st, "c5", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    assert_int_equal(fr_store_erase_hot(f->st, "c6", "test", fr_now_ms(), false, &erased, &err),
                     FR_OK);
    /* how many were packed depends on timing: none while an erasure has no dictionary yet */
    int stored = 0;
    for (int t = 0; t < 2; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(fr_ingest_commit(f->st, jobs[t].recs, 300, fr_now_ms(), NULL, &err),
                         FR_OK);
        for (int i = 0; i < 300; i++)
            stored += !jobs[t].recs[i].erased;
        records_free(jobs[t].recs, 300);
    }
    int want = 600, before = 700; /* of [1000, 1600) and [0, 700): the erased ones refused */
    for (int k = 5; k <= 11; k += k == 6 ? 5 : 1) { /* c5, c6, c11 */
        want -= conv_share(1600, k) - conv_share(1000, k);
        before -= conv_share(700, k);
    }
    assert_int_equal(stored, want);
    /* every row reads back: none names a dictionary body_dicts lacks */
    assert_int_equal(sql_long(f->path,
                              "SELECT count(*) FROM events WHERE typeof(body) = 'blob' AND"
                              " fr_body_dict(body) NOT IN (SELECT id FROM body_dicts)",
                              NULL, 0),
                     0);
    bodies_read_back(f->st, before + 1 + stored);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_migrate_from_every_version_keeps_data,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_row_ids_never_reused, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_id_pairs, t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_link_moves_events, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_event_parts_merge, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_lookup_through_pairs, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_wal_frames_gathered, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpoint_passes_spaced, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpoint_idle_catches_up, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_full_said, t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_first_pair_by_time, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_pairs_merge, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_merge_survives_erasure, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_migration_builds_trace_pairs, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_newer_schema_refused, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_garbage_file_is_clear_error, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_missing_without_create_not_found, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_events_ordered_by_ts_seq_then_arrival,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_conversation_upsert_latest_by_time,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_profile_switch_keeps_earlier_turns,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_index_independent_of_batching, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_migration_removes_null_conv_duplicates,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_duplicate_event_id_stored_once, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_empty_results_are_empty, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_conversation_filters, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_conversation_id_prefix, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_conversation_event_filters, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_conversation_model_walk, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_background_checkpoint, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_bodies_packed_by_producer, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_bodies_compressed_one_conversation,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_bodies_compressed, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_store_bodies_trained_in_background, t_store_setup,
                                        t_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
