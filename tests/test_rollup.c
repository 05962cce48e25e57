/*
 * tests/test_rollup.c - what the collectors maintain at ingest: per-minute
 * rollups equal to the raw events they summarise, SEM ordering anomalies
 * (duplicate, gap, reorder) across batches without dropping any event,
 * provider body hashes, and the error filters and groups.
 */
#include "tests/support/support.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gen.h"
#include "core/hex.h"
#include "core/mem.h"
#include "retention/hot/sqlite_body.h"

static int64_t
q_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(fr_sqlite_body_functions(db), SQLITE_OK); /* bodies as text */
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
test_rollup_sums_equal_raw_events(void **state)
{
    struct t_store_fx *f = *state;
    t_ingest_generated(f->st, f->dir, 4000);
    static const struct {
        const char *rollup, *raw;
    } pairs[] = {
        {"SELECT sum(calls) FROM rollups WHERE dim='provider'",
         "SELECT count(*) FROM events WHERE kind='provider'"},
        {"SELECT sum(errors) FROM rollups WHERE dim='provider'",
         "SELECT count(*) FROM events WHERE kind='provider' AND error_code IS NOT NULL"},
        {"SELECT sum(input_tokens) FROM rollups WHERE dim='provider'",
         "SELECT sum(json_extract(fr_body(body), '$.data.usage.input_tokens')) FROM events"
         " WHERE kind='provider'"},
        {"SELECT sum(output_tokens) FROM rollups WHERE dim='provider'",
         "SELECT sum(json_extract(fr_body(body), '$.data.usage.output_tokens')) FROM events"
         " WHERE kind='provider'"},
        {"SELECT sum(cached_tokens) FROM rollups WHERE dim='provider'",
         "SELECT sum(json_extract(fr_body(body), '$.data.usage.cached_tokens')) FROM events"
         " WHERE kind='provider'"},
        {"SELECT sum(lat_sum_ms) FROM rollups WHERE dim='provider'",
         "SELECT sum(duration_ms) FROM events WHERE kind='provider'"},
        /* how calls ended, per finish reason and model */
        {"SELECT sum(calls) FROM rollups WHERE dim='finish'",
         "SELECT count(*) FROM events WHERE kind='provider'"
         " AND json_extract(fr_body(body), '$.data.finish_reason') <> ''"},
        {"SELECT sum(calls) FROM rollups WHERE dim='finish' AND k1='tool_calls' AND k2 <> ''",
         "SELECT count(*) FROM events WHERE kind='provider' AND model IS NOT NULL"
         " AND json_extract(fr_body(body), '$.data.finish_reason') = 'tool_calls'"},
        {"SELECT sum(output_tokens) FROM rollups WHERE dim='finish' AND k1='stop'",
         "SELECT sum(json_extract(fr_body(body), '$.data.usage.output_tokens')) FROM events"
         " WHERE kind='provider' AND json_extract(fr_body(body), '$.data.finish_reason') = 'stop'"},
        {"SELECT sum(lat_sum_ms) FROM rollups WHERE dim='finish'",
         "SELECT sum(duration_ms) FROM events WHERE kind='provider'"
         " AND json_extract(fr_body(body), '$.data.finish_reason') <> ''"},
        {"SELECT sum(calls) FROM rollups WHERE dim='tool'",
         "SELECT count(*) FROM events WHERE kind='tool'"},
        {"SELECT sum(lat_count) FROM rollups WHERE dim='tool'",
         "SELECT count(duration_ms) FROM events WHERE kind='tool'"},
        {"SELECT sum(calls) FROM rollups WHERE dim='transport' AND k2='200'",
         "SELECT count(*) FROM events WHERE kind='transport' AND status='200'"},
        {"SELECT sum(calls) FROM rollups WHERE dim='error'",
         "SELECT count(*) FROM events WHERE error_code IS NOT NULL"},
        {"SELECT sum(calls) FROM rollups WHERE dim='error' AND k2='provider.rate_limited'",
         "SELECT count(*) FROM events WHERE error_code='provider.rate_limited'"},
        {"SELECT sum(h0+h1+h2+h3+h4+h5+h6+h7+h8+h9+h10) FROM rollups",
         "SELECT sum(lat_count) FROM rollups"},
        {"SELECT max(lat_max_ms) FROM rollups WHERE dim='provider'",
         "SELECT max(duration_ms) FROM events WHERE kind='provider'"},
        {"SELECT count(*) FROM (SELECT DISTINCT minute_ms FROM rollups WHERE dim='provider')",
         "SELECT count(DISTINCT ts_ms / 60000) FROM events WHERE kind='provider'"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int64_t a = q_int(f->path, pairs[i].rollup), b = q_int(f->path, pairs[i].raw);
        if (a != b || a == 0)
            fail_msg("%s = %lld but %s = %lld", pairs[i].rollup, (long long)a, pairs[i].raw,
                     (long long)b);
    }
}

static int
collect_anomaly(void *ud, const struct fr_anomaly_row *r)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s@%lld/%lld ", r->anomaly, (long long)r->seq,
             (long long)r->expected);
    return 0;
}

#define SEM(ts, seq)                                                                               \
    "{\"kind\":\"sem\",\"ts_ms\":17713574450" #ts ",\"conv_id\":\"c\",\"stream_id\":\"st-1\","     \
    "\"seq\":" #seq "}"

static void
test_rollup_sem_anomalies_across_batches(void **state)
{
    struct t_store_fx *f = *state;
    const char *b1[] = {SEM(01, 1), SEM(02, 2)};
    const char *b2[] = {SEM(03, 2), SEM(04, 5)}; /* duplicate 2, then a gap (3 and 4 missing) */
    const char *b3[] = {SEM(05, 4), SEM(06, 6)}; /* 4 arrives late; 6 is in order */
    const char *other[] = {
        "{\"kind\":\"sem\",\"ts_ms\":1771357445007,\"conv_id\":\"c\","
        "\"stream_id\":\"st-2\",\"seq\":9}"}; /* a new stream may start anywhere */
    t_ingest(f->st, b1, 2);
    t_ingest(f->st, b2, 2);
    t_ingest(f->st, b3, 2);
    t_ingest(f->st, other, 1);
    char got[512] = "";
    struct fr_err err = {0};
    assert_int_equal(fr_store_anomalies(f->st, "c", 0, collect_anomaly, got, &err), FR_OK);
    assert_string_equal(got, "duplicate_seq@2/3 seq_gap@5/3 out_of_order@4/6 ");
    /* nothing was dropped */
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE kind='sem'"), 7);
    assert_int_equal(q_int(f->path, "SELECT sum(calls) FROM rollups WHERE dim='sem_anomaly'"), 3);
    /* and another conversation's anomalies are not listed */
    got[0] = '\0';
    assert_int_equal(fr_store_anomalies(f->st, "elsewhere", 0, collect_anomaly, got, &err), FR_OK);
    assert_string_equal(got, "");
}

/* Within one batch the writer knows a stream's latest seq without reading it again (rollup.c):
   every anomaly is still found, each against what the stream held just before it. */
static void
test_rollup_sem_anomalies_within_a_batch(void **state)
{
    struct t_store_fx *f = *state;
#define SEM2(ts, stream, seq)                                                                      \
    "{\"kind\":\"sem\",\"ts_ms\":17713574450" #ts ",\"conv_id\":\"c\",\"stream_id\":\"" stream     \
    "\",\"seq\":" #seq "}"
    const char *b[] = {
        SEM2(01, "a", 1), SEM2(02, "a", 2), SEM2(03, "b", 7),
        SEM2(04, "a", 3), SEM2(05, "a", 3), /* a duplicate right after its original */
        SEM2(06, "b", 8), SEM2(07, "a", 6), /* 4 and 5 missing */
        SEM2(08, "a", 4), SEM2(09, "a", 5), /* late, after 6: the stream's latest is still 6 */
        SEM2(10, "a", 7),                   /* in order after 6 */
        SEM2(11, "b", 8),                   /* b's duplicate, with a's in between */
        SEM2(12, "a", 8), SEM2(13, "b", 9),
    };
#undef SEM2
    t_ingest(f->st, b, sizeof b / sizeof b[0]);
    char got[512] = "";
    struct fr_err err = {0};
    assert_int_equal(fr_store_anomalies(f->st, "c", 0, collect_anomaly, got, &err), FR_OK);
    assert_string_equal(got, "duplicate_seq@3/4 seq_gap@6/4 out_of_order@4/7 out_of_order@5/7 "
                             "duplicate_seq@8/9 ");
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE kind='sem'"), 13);
}

static void
test_rollup_provider_body_hashes(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"provider\",\"ts_ms\":1771357445001,\"conv_id\":\"a\",\"data\":{\"request\":"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"m\"}}}",
        /* same request, keys in another order, other conversation: same hash */
        "{\"kind\":\"provider\",\"ts_ms\":1771357445002,\"conv_id\":\"b\",\"data\":{\"request\":"
        "{\"model\":\"m\",\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}]},"
        "\"response\":{\"content\":\"hello\"}}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357445003,\"conv_id\":\"c\",\"data\":{\"request\":"
        "{\"model\":\"m\",\"messages\":[]}}}",
    };
    t_ingest(f->st, lines, 3);
    assert_int_equal(q_int(f->path, "SELECT count(DISTINCT request_sha256) FROM events"), 2);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE request_sha256 ="
                                    " (SELECT request_sha256 FROM events WHERE conv_id='a')"),
                     2);
    assert_int_equal(q_int(f->path, "SELECT count(response_sha256) FROM events"), 1);
    assert_int_equal(q_int(f->path, "SELECT length(request_sha256) FROM events LIMIT 1"), 64);
    /* the digest of the canonical text itself: stored hashes stay comparable across versions */
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE conv_id = 'c' AND "
                                    "request_sha256 = 'f34244885bc2912271e20676d163d76ed27f7e800f"
                                    "4f1a07a39a95dd44c3c496'"),
                     1);
    /* a request longer than the digest's 4 KiB buffer: many small pieces (keys, short
       strings) and one longer than the buffer; its hash is the SHA-256 of its canonical text */
    json_t *req = json_object();
    char key[16];
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof key, "k%03d", 599 - i); /* unsorted: the canonical text sorts */
        json_object_set_new(req, key, json_integer(i));
    }
    char *big = fr_malloc(10001);
    memset(big, 'x', 10000);
    big[10000] = '\0';
    json_object_set_new(req, "big", json_string(big));
    free(big);
    char *text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL), 1);
    char want[65];
    fr_hex_encode(md, 32, want);
    free(text);
    json_t *ev = json_pack("{s:s, s:I, s:s, s:{s:o}}", "kind", "provider", "ts_ms",
                           (json_int_t)1771357445004, "conv_id", "d", "data", "request", req);
    char *line = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    const char *one[] = {line};
    t_ingest(f->st, one, 1);
    free(line);
    char *q = fr_asprintf(
        "SELECT count(*) FROM events WHERE conv_id = 'd' AND request_sha256 = '%s'", want);
    assert_int_equal(q_int(f->path, q), 1);
    free(q);
}

/* A request longer than the digest's staging buffer hashes its whole canonical text. */
static void
test_rollup_provider_long_body_hash(void **state)
{
    struct t_store_fx *f = *state;
    size_t n = 9000;
    char *text = fr_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    char *line = fr_malloc(n + 256), *canon = fr_malloc(n + 64);
    snprintf(line, n + 256,
             "{\"kind\":\"provider\",\"ts_ms\":1771357445001,\"conv_id\":\"long\",\"data\":"
             "{\"request\":{\"model\":\"m\",\"prompt\":\"%s\",\"a\":[1,{\"z\":2,\"y\":3}]}}}",
             text);
    snprintf(canon, n + 64, "{\"a\":[1,{\"y\":3,\"z\":2}],\"model\":\"m\",\"prompt\":\"%s\"}",
             text);
    unsigned char md[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(canon, strlen(canon), md, &len, EVP_sha256(), NULL), 1);
    char want[65], sql[160];
    fr_hex_encode(md, 32, want);
    const char *lines[] = {line};
    t_ingest(f->st, lines, 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE request_sha256 = '%s'", want);
    assert_int_equal(q_int(f->path, sql), 1);
    free(text);
    free(line);
    free(canon);
}

static void
test_rollup_timeline_entities_first_last_seen(void **state)
{
    struct t_store_fx *f = *state;
    const char *b1[] = {
        "{\"kind\":\"timeline\",\"ts_ms\":1771357445010,\"conv_id\":\"c\",\"data\":"
        "{\"entity_id\":\"m1\",\"entity_kind\":\"message\",\"version\":3}}",
        "{\"kind\":\"timeline\",\"ts_ms\":1771357445020,\"conv_id\":\"c\",\"data\":"
        "{\"entity_id\":\"m1\",\"version\":5}}",
    };
    /* a late, older upsert in another batch: the first seen values move back, the last do not */
    const char *b2[] = {
        "{\"kind\":\"timeline\",\"ts_ms\":1771357445005,\"conv_id\":\"c\",\"data\":"
        "{\"entity_id\":\"m1\",\"version\":1}}",
        "{\"kind\":\"timeline\",\"ts_ms\":1771357445030,\"conv_id\":\"d\",\"data\":"
        "{\"entity_id\":\"m1\",\"version\":9}}",
    };
    t_ingest(f->st, b1, 2);
    t_ingest(f->st, b2, 2);
    assert_int_equal(q_int(f->path, "SELECT first_version * 1000 + last_version FROM"
                                    " timeline_entities WHERE conv_id='c' AND entity_id='m1'"),
                     1005);
    assert_int_equal(q_int(f->path, "SELECT last_seen_ms - first_seen_ms FROM timeline_entities"
                                    " WHERE conv_id='c'"),
                     15);
    assert_int_equal(q_int(f->path, "SELECT upserts FROM timeline_entities WHERE conv_id='c'"), 3);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM timeline_entities WHERE"
                                    " entity_kind='message'"),
                     1);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM timeline_entities"), 2);
}

/* Requests to one path with different query strings or fragments are one route: one rollup
   row, whatever ids, tokens or addresses the queries held; the events keep their whole paths,
   an address in one scanned away. */
static void
test_rollup_transport_route_is_the_path(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"transport\",\"ts_ms\":1771357445010,\"conv_id\":\"c\",\"data\":"
        "{\"proto\":\"http\",\"path\":\"/v1/reset?email=jane.doe@example.org\",\"status\":200}}",
        "{\"kind\":\"transport\",\"ts_ms\":1771357445020,\"conv_id\":\"c\",\"data\":"
        "{\"proto\":\"http\",\"path\":\"/v1/reset?page=2\",\"status\":200}}",
        "{\"kind\":\"transport\",\"ts_ms\":1771357445030,\"conv_id\":\"c\",\"data\":"
        "{\"proto\":\"http\",\"path\":\"/v1/reset#top\",\"status\":200}}",
        "{\"kind\":\"transport\",\"ts_ms\":1771357445040,\"conv_id\":\"c\",\"data\":"
        "{\"proto\":\"http\",\"path\":\"/v1/chat\",\"status\":200}}",
    };
    t_ingest(f->st, lines, 4);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM rollups WHERE dim='transport'"), 2);
    assert_int_equal(
        q_int(f->path, "SELECT calls FROM rollups WHERE dim='transport' AND k1='/v1/reset'"), 3);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE kind='transport' AND"
                                    " json_extract(fr_body(body), '$.data.path') ="
                                    " '/v1/reset?email=[REDACTED:email]'"),
                     1);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM events WHERE"
                                    " instr(fr_body(body), 'jane.doe') > 0"),
                     0);
}

static int
collect_group(void *ud, const struct fr_error_group *g)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s=%lld/%lld ", g->key, (long long)g->count,
             (long long)g->conversations);
    return 0;
}

static void
test_rollup_error_filters_and_groups(void **state)
{
    struct t_store_fx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"provider\",\"ts_ms\":1771357445001,\"conv_id\":\"a\",\"data\":{\"model\":"
        "\"gpt-4o\"},\"error\":{\"http_status\":429}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357445002,\"conv_id\":\"b\",\"data\":{\"model\":"
        "\"gpt-4o\"},\"error\":{\"http_status\":429}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445003,\"conv_id\":\"a\",\"data\":{\"name\":\"sql\","
        "\"status\":\"timeout\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445004,\"conv_id\":\"a\",\"data\":{\"name\":\"sql\","
        "\"status\":\"ok\"}}",
    };
    t_ingest(f->st, lines, 4);
    char got[512] = "";
    struct fr_err err = {0};
    struct fr_event_filter all = {0};
    assert_int_equal(fr_store_error_groups(f->st, &all, "code", collect_group, got, &err), FR_OK);
    assert_string_equal(got, "provider.rate_limited=2/2 tool.timeout=1/1 ");
    got[0] = '\0';
    struct fr_event_filter tools = {.error_class = "tool"};
    assert_int_equal(fr_store_error_groups(f->st, &tools, "tool", collect_group, got, &err), FR_OK);
    assert_string_equal(got, "sql=1/1 ");
    got[0] = '\0';
    assert_int_equal(fr_store_error_groups(f->st, &all, "model", collect_group, got, &err), FR_OK);
    assert_string_equal(got, "gpt-4o=2/2 =1/1 ");
    assert_int_equal(fr_store_error_groups(f->st, &all, "colour", collect_group, got, &err),
                     FR_E_INVALID);
    got[0] = '\0';
    struct fr_event_filter one = {.limit = 1};
    assert_int_equal(fr_store_error_groups(f->st, &one, "code", collect_group, got, &err), FR_OK);
    assert_string_equal(got, "provider.rate_limited=2/2 ");
    /* a code found under two classes (a rule of one's own) is still one group, each
       conversation counted once: grouping by class and code (the index's order) would
       give two */
    assert_int_equal(q_int(f->path, "UPDATE events SET error_class = 'tool' WHERE conv_id = 'b'"
                                    " AND error_code IS NOT NULL RETURNING 1"),
                     1);
    got[0] = '\0';
    assert_int_equal(fr_store_error_groups(f->st, &all, "code", collect_group, got, &err), FR_OK);
    assert_string_equal(got, "provider.rate_limited=2/2 tool.timeout=1/1 ");
}

/* "code=failures/conversations/first/last " for each code, most failures first */
static int
collect_group_full(void *ud, const struct fr_error_group *g)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 4096 - n, "%s=%lld/%lld/%lld/%lld ", g->key, (long long)g->count,
             (long long)g->conversations, (long long)g->first_ms, (long long)g->last_ms);
    return 0;
}

/* The groups of failures by col (in f's window and class) computed by SQL of its own, as
   collect_group_full prints them, at most limit (0: all). */
static void
groups_by_sql(const char *path, const char *col, const struct fr_event_filter *f, int limit,
              char *out)
{
    char sql[600], cls[64] = "";
    if (f->error_class)
        snprintf(cls, sizeof cls, " AND error_class = '%s'", f->error_class);
    snprintf(sql, sizeof sql,
             "SELECT ifnull(%s, ''), count(*), count(DISTINCT conv_id), min(ts_ms), max(ts_ms)"
             " FROM events WHERE error_code IS NOT NULL AND ts_ms >= %lld AND (%lld = 0 OR ts_ms"
             " < %lld)%s GROUP BY %s ORDER BY 2 DESC, 1 LIMIT %d",
             col, (long long)f->since_ms, (long long)f->until_ms, (long long)f->until_ms, cls, col,
             limit > 0 ? limit : -1);
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = strlen(out);
        snprintf(out + n, 4096 - n, "%s=%lld/%lld/%lld/%lld ", sqlite3_column_text(st, 0),
                 (long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2),
                 (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* By code over the whole store: as the store answers it (got), and from events (want). */
static void
code_groups(struct t_store_fx *f, char got[4096], char want[4096])
{
    struct fr_err err = {0};
    struct fr_event_filter all = {0};
    got[0] = '\0';
    assert_int_equal(fr_store_error_groups(f->st, &all, "code", collect_group_full, got, &err),
                     FR_OK);
    groups_by_sql(f->path, "error_code", &all, 0, want);
}

static void
assert_code_groups_exact(struct t_store_fx *f)
{
    char got[4096], want[4096];
    code_groups(f, got, want);
    assert_string_equal(got, want);
    /* and the kept totals themselves, row by row */
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM (SELECT error_code, count(*) AS n,"
                                    " count(DISTINCT conv_id) AS c FROM events WHERE error_code"
                                    " IS NOT NULL GROUP BY 1) e FULL JOIN (SELECT error_code,"
                                    " sum(n) AS n, sum(convs) AS c FROM error_codes GROUP BY 1)"
                                    " k USING (error_code) WHERE e.n IS NOT k.n OR e.c IS NOT"
                                    " k.c"),
                     0);
}

/* 8000 fr-gen events of seed (their failures among them) and two failures without a
   conversation (trace t-1) into f's store; returns the generated text (the caller frees). */
static char *
ingest_failures(struct t_store_fx *f, uint64_t seed)
{
    char *file = NULL;
    size_t flen = 0;
    FILE *mf = open_memstream(&file, &flen);
    struct fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.events = 8000;
    go.seed = seed;
    assert_int_equal(fr_gen_write(mf, &go), 0);
    fclose(mf);
    static const char *lines[8192];
    size_t n = 0;
    for (char *p = file, *nl; n < 8192 && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        lines[n++] = p;
    }
    t_ingest(f->st, lines, n);
    const char *orphan[] = {
        "{\"kind\":\"provider\",\"ts_ms\":1771357445001,\"trace_id\":\"t-1\",\"data\":"
        "{\"model\":\"gpt-4o\"},\"error\":{\"http_status\":429}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445003,\"trace_id\":\"t-1\",\"data\":{\"name\":"
        "\"sql\",\"status\":\"timeout\"}}",
    };
    t_ingest(f->st, orphan, 2);
    return file;
}

/*
 * `errors --by code` over the whole store reads the totals kept as failures
 * are stored (error_codes, error_convs): they stay equal to the failures in
 * events through every kind of write of that table — ingest, a conversation
 * erased, retention's deletes of single rows, a trace's events moved to
 * their conversation, a code reclassified — and failures without a
 * conversation count as failures but not as conversations.
 */
static void
test_rollup_error_code_totals_kept_exact(void **state)
{
    struct t_store_fx *f = *state;
    char *file = ingest_failures(f, 11);
    assert_true(q_int(f->path, "SELECT count(*) FROM events WHERE error_code IS NOT NULL") > 60);
    assert_true(q_int(f->path, "SELECT count(*) FROM error_codes") >= 4);
    assert_code_groups_exact(f);

    /* the fast path reads the kept totals (not a scan): a wrong total shows */
    sql_exec(f->path, "UPDATE error_codes SET n = n + 1000 WHERE error_code = (SELECT error_code"
                      " FROM error_codes ORDER BY error_code LIMIT 1)");
    char got[4096], want[4096];
    code_groups(f, got, want);
    assert_string_not_equal(got, want);
    sql_exec(f->path, "UPDATE error_codes SET n = n - 1000 WHERE error_code = (SELECT error_code"
                      " FROM error_codes ORDER BY error_code LIMIT 1)");
    assert_code_groups_exact(f);

    /* a trace's events moved to their conversation (sqlite_trace.c's statement) */
    sql_exec(f->path, "UPDATE events SET conv_id = 'c-000001' WHERE trace_id = 't-1'");
    assert_code_groups_exact(f);
    /* a conversation erased, single rows deleted by retention, a code reclassified */
    sql_exec(f->path, "DELETE FROM events WHERE conv_id = (SELECT conv_id FROM events WHERE"
                      " error_code IS NOT NULL ORDER BY id LIMIT 1)");
    assert_code_groups_exact(f);
    sql_exec(f->path, "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE error_code IS"
                      " NOT NULL ORDER BY id DESC LIMIT 7)");
    assert_code_groups_exact(f);
    sql_exec(f->path, "UPDATE events SET error_code = 'tool.rejected' WHERE id = (SELECT id FROM"
                      " events WHERE error_code = 'tool.timeout' LIMIT 1)");
    assert_code_groups_exact(f);
    /* every failure of a code gone: its row goes too */
    sql_exec(f->path, "DELETE FROM events WHERE error_code = 'tool.rejected'");
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM error_codes WHERE error_code ="
                                    " 'tool.rejected'"),
                     0);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM error_convs WHERE error_code ="
                                    " 'tool.rejected'"),
                     0);
    assert_code_groups_exact(f);
    sql_exec(f->path, "DELETE FROM events");
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM error_codes"), 0);
    assert_int_equal(q_int(f->path, "SELECT count(*) FROM error_convs"), 0);
    free(file);
}

/*
 * `errors --by class|kind|model|tool` adds the failures up in C from the
 * failures' index (schema 18 holds those keys in it) instead of SQLite's GROUP BY and
 * count(DISTINCT): the same groups, counts, conversations (each once per
 * group; failures without one are no conversation), first and last times and
 * order (most failures first, then by key) as SQL computes them, over the
 * whole store, a window, a class, and with a limit; and the index answers
 * without reading a row.
 */
static void
test_rollup_error_groups_by_other_keys(void **state)
{
    struct t_store_fx *f = *state;
    char *file = ingest_failures(f, 5);
    assert_true(q_int(f->path, "SELECT count(DISTINCT model) FROM events WHERE error_code IS NOT"
                               " NULL") >= 3);
    assert_true(q_int(f->path, "SELECT count(*) FROM events WHERE error_code IS NOT NULL AND"
                               " conv_id IN (SELECT conv_id FROM events WHERE error_code IS NOT"
                               " NULL GROUP BY conv_id, model HAVING count(*) > 1)") > 0);
    int64_t lo = q_int(f->path, "SELECT min(ts_ms) FROM events WHERE error_code IS NOT NULL");
    int64_t hi = q_int(f->path, "SELECT max(ts_ms) FROM events WHERE error_code IS NOT NULL");
    const struct fr_event_filter filters[] = {
        {0},
        {.since_ms = lo + (hi - lo) / 3, .until_ms = hi - (hi - lo) / 3},
        {.error_class = "tool"},
        {.limit = 2},
    };
    static const char *const keys[][2] = {
        {"class", "error_class"}, {"kind", "kind"}, {"model", "model"}, {"tool", "tool"}};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
            char got[4096] = "", want[4096];
            struct fr_err err = {0};
            assert_int_equal(fr_store_error_groups(f->st, &filters[i], keys[k][0],
                                                   collect_group_full, got, &err),
                             FR_OK);
            groups_by_sql(f->path, keys[k][1], &filters[i], filters[i].limit, want);
            assert_true(strlen(want) > 0);
            assert_string_equal(got, want);
        }
    /* the whole store's failures come from the index alone */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT model, conv_id, ts_ms FROM"
                                        " events WHERE error_code IS NOT NULL",
                                        -1, &st, NULL),
                     SQLITE_OK);
    bool covering = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        covering = covering || strcmp((const char *)sqlite3_column_text(st, 3),
                                      "SCAN events USING COVERING INDEX events_error") == 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(covering);
    free(file);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollup_sums_equal_raw_events, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_sem_anomalies_across_batches, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_sem_anomalies_within_a_batch, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_provider_body_hashes, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_provider_long_body_hash, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_timeline_entities_first_last_seen,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_transport_route_is_the_path, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_error_filters_and_groups, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_error_groups_by_other_keys, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_error_code_totals_kept_exact, t_store_setup,
                                        t_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
