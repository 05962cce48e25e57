/*
 * tests/integration/test_agent_bucket.c - archives in an S3-compatible
 * bucket (s3rver on loopback, SigV4-signed): the agent's own retention job
 * uploads every segment and the MANIFEST and evicts the local copies; reads
 * (the query API, `show`) fetch a segment back, verified; a copy altered in
 * the bucket is refused and named; the bucket down keeps everything local
 * until `archive push`; warm -> cold and erasure replace and delete the
 * objects; a new machine rebuilds its manifest from the bucket alone.
 */
#include "tests/integration/agent.h"

#include <dirent.h>
#include <stdarg.h>

#include "core/fsutil.h"

#define BUCKET "arch"

struct bfx {
    struct agent *a;
    char *s3data, *policy, *archive;
    int port;
    pid_t s3;
};

static int
bsetup(void **state)
{
    void *st;
    setup(&st);
    struct bfx *f = fr_calloc(1, sizeof *f);
    f->a = st;
    f->s3data = t_path(f->a->dir, "s3data");
    f->policy = t_path(f->a->dir, "retention.yaml");
    f->archive = t_path(f->a->dir, "var/archive");
    f->s3 = t_s3rver_start(f->s3data, BUCKET, &f->port);
    /* s3rver's account */
    setenv("FR_TEST_S3_KEY", "S3RVER", 1);
    setenv("FR_TEST_S3_SECRET", "S3RVER", 1);
    *state = f;
    return 0;
}

static int
bteardown(void **state)
{
    struct bfx *f = *state;
    if (f->s3 > 0)
        t_s3rver_stop(f->s3);
    void *st = f->a;
    teardown(&st);
    free(f->s3data);
    free(f->policy);
    free(f->archive);
    free(f);
    return 0;
}

/*
 * A policy with the bucket (prefix host1, given with a trailing slash): warm
 * segments turn cold at warm_age, the agent's job runs every interval (and
 * verifies as often; "0": never), local copies stay keep_local.
 */
static void
write_policy(struct bfx *f, const char *warm_age, const char *interval, const char *keep_local)
{
    char *text = fr_asprintf("hot:\n  max_age: 1h\nwarm:\n  max_age: %s\ncold:\n  max_age: 0\n"
                             "schedule:\n  interval: %s\n  verify_interval: %s\n"
                             "bucket:\n  url: http://127.0.0.1:%d/" BUCKET "/host1/\n"
                             "  access_key_env: FR_TEST_S3_KEY\n"
                             "  secret_key_env: FR_TEST_S3_SECRET\n  keep_local: %s\n",
                             warm_age, interval, interval, f->port, keep_local);
    write_text(f->policy, text);
    free(text);
}

/* Where s3rver keeps an object's bytes. */
static char *
object_path(struct bfx *f, const char *name)
{
    return fr_asprintf("%s/" BUCKET "/host1/%s._S3rver_object", f->s3data, name);
}

/* The segment files held locally, and the name of the last one seen. */
static int
local_segments(struct bfx *f, char *name, size_t cap)
{
    DIR *d = opendir(f->archive);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".seg") == 0) {
            n++;
            if (name)
                snprintf(name, cap, "%s", e->d_name);
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The one segment the manifest lists (its file name). */
static void
manifest_segment(struct bfx *f, char *name, size_t cap)
{
    char path[400] = "";
    sql_long(f->a->db, "SELECT path FROM archive_segments", path, sizeof path);
    assert_true(path[0] != '\0');
    const char *b = strrchr(path, '/');
    snprintf(name, cap, "%s", b ? b + 1 : path);
}

/* Runs a flightrec command line (FR_BIN prefixed); returns the exit code. */
static int
fr(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args = NULL;
    assert_true(vasprintf(&args, fmt, ap) >= 0);
    va_end(ap);
    char *cmd =
        fr_asprintf("FLIGHTREC_RETENTION='%s' %s %s", getenv("FR_TEST_POLICY"), FR_BIN, args);
    int rc = t_run(cmd, out, err);
    free(cmd);
    free(args);
    return rc;
}

/* The event ids `show --json` reads for conv, in order, comma-joined. */
static char *
show_ids(const char *db, const char *conv, int *exit_code, char **err)
{
    char *out = NULL;
    *exit_code = fr(&out, err, "show %s --json --db %s", conv, db);
    json_t *j = json_loads(out ? out : "", 0, NULL);
    free(out);
    size_t cap = 16, len = 0;
    char *ids = fr_malloc(cap);
    ids[0] = '\0';
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        const char *id = json_string_value(json_object_get(e, "event_id"));
        size_t n = strlen(id ? id : "?") + 2;
        if (len + n >= cap)
            ids = fr_realloc(ids, cap = (len + n) * 2);
        len += (size_t)snprintf(ids + len, cap - len, "%s%s", len ? "," : "", id ? id : "?");
    }
    json_decref(j);
    return ids;
}

/* The ids events(conv, from, n) sends, as show_ids joins them. */
static char *
want_ids(int from, int n)
{
    char *s = fr_strdup("");
    for (int i = from; i < from + n; i++) {
        char *t = fr_asprintf("%s%se-%d", s, i > from ? "," : "", i);
        free(s);
        s = t;
    }
    return s;
}

/* Events of two conversations (old ts) into a fresh database with the CLI, moved to warm. */
static void
archive_two(struct bfx *f, int *run_exit, char **run_err)
{
    char *a = events("conv-a", 0, 40), *b = events("conv-b", 100, 25);
    char *file = t_path(f->a->dir, "events.ndjson");
    char *both = fr_asprintf("%s%s", a, b);
    write_text(file, both);
    char *out = NULL;
    assert_int_equal(fr(&out, NULL, "ingest --db %s %s", f->a->db, file), 0);
    free(out);
    *run_exit =
        fr(&out, run_err, "retention run --no-progress --db %s --policy %s", f->a->db, f->policy);
    free(out);
    free(file);
    free(both);
    free(a);
    free(b);
}

/*
 * The agent's retention job puts the segment and the MANIFEST in the bucket
 * and removes the local copy; the query API reads the conversation whole
 * (the segment fetched back); `archive list` says where a segment is.
 */
static void
test_bucket_agent_uploads_and_reads_back(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "1s", "0s"); /* the job (and its verification) every second */
    char *extra = fr_asprintf("retention:\n  policy: %s\n", f->policy);
    agent_config(f->a, NULL, NULL, extra);
    free(extra);
    agent_start(f->a);
    char *old = events("old", 0, 50);
    assert_int_equal(post(f->a, old, NULL), 202);
    free(old);
    /* moved, uploaded, evicted */
    char name[300] = "";
    char *manifest = object_path(f, "MANIFEST");
    for (int i = 0; i < 300; i++) {
        name[0] = '\0';
        char path[400] = "";
        sql_long(f->a->db, "SELECT path FROM archive_segments", path, sizeof path);
        if (path[0] != '\0')
            snprintf(name, sizeof name, "%s", strrchr(path, '/') + 1);
        char *obj = name[0] ? object_path(f, name) : NULL;
        bool done = obj && access(obj, F_OK) == 0 && access(manifest, F_OK) == 0 &&
                    local_segments(f, NULL, 0) == 0;
        free(obj);
        if (done)
            break;
        usleep(100 * 1000);
    }
    assert_true(name[0] != '\0');
    assert_int_equal(local_segments(f, NULL, 0), 0);
    char *obj = object_path(f, name);
    assert_int_equal(access(obj, F_OK), 0);
    assert_int_equal(access(manifest, F_OK), 0);
    /* the list says so */
    setenv("FR_TEST_POLICY", f->policy, 1);
    char *out = NULL;
    assert_int_equal(fr(&out, NULL, "archive list --db %s --policy %s", f->a->db, f->policy), 0);
    assert_non_null(strstr(out, name));
    assert_non_null(strstr(out, "(bucket)"));
    free(out);
    /* the API reads it whole, in order, from warm */
    json_t *j = get_json(f->a, "/v1/conversations/old", 200);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 50);
    for (size_t i = 0; i < 50; i++) {
        char want[16];
        snprintf(want, sizeof want, "e-%zu", i);
        json_t *e = json_array_get(evs, i);
        assert_string_equal(json_string_value(json_object_get(e, "event_id")), want);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(e, "flightrec"), "tier")), "warm");
    }
    json_decref(j);
    char *body = NULL;
    assert_int_equal(http(f->a, "GET", "/metrics", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "flightrec_archive_bucket_up 1\n"));
    assert_non_null(strstr(body, "flightrec_archive_bucket_remote_segments 1\n"));
    free(body);
    /* the bucket away: ingest and retention go on, the segment stays local, both say so */
    t_s3rver_stop(f->s3);
    f->s3 = 0;
    old = events("later", 1000, 30);
    assert_int_equal(post(f->a, old, NULL), 202);
    free(old);
    wait_log(f->a, "not uploaded");
    assert_int_equal(http(f->a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "archive bucket: "));
    free(body);
    assert_int_equal(http(f->a, "GET", "/metrics", NULL, NULL, 0, &body, NULL), 200);
    assert_non_null(strstr(body, "flightrec_archive_bucket_up 0\n"));
    free(body);
    assert_true(local_segments(f, NULL, 0) >= 1);
    /* back: the next run uploads and evicts it */
    f->s3 = t_s3rver_start(f->s3data, BUCKET, &f->port);
    for (int i = 0; i < 300 && local_segments(f, NULL, 0) > 0; i++)
        usleep(100 * 1000);
    assert_int_equal(local_segments(f, NULL, 0), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(http(f->a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
        bool clear = strstr(body, "archive bucket") == NULL;
        free(body);
        if (clear)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(http(f->a, "GET", "/readyz", NULL, NULL, 0, &body, NULL), 200);
    assert_null(strstr(body, "archive bucket"));
    free(body);
    assert_int_equal(agent_stop(f->a), 0);
    free(obj);
    free(manifest);
}

/*
 * A copy altered in the bucket is refused (its SHA-256 is not the one
 * uploaded), named, and the read says it is partial; restored, it reads.
 */
static void
test_bucket_altered_object_refused(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "0", "0s");
    setenv("FR_TEST_POLICY", f->policy, 1);
    int rx;
    char *rerr = NULL;
    archive_two(f, &rx, &rerr);
    assert_int_equal(rx, 0);
    assert_non_null(strstr(rerr, "1 local copies evicted"));
    free(rerr);
    char name[300];
    manifest_segment(f, name, sizeof name);
    char *obj = object_path(f, name);
    t_flip_middle_byte(obj);
    int ex;
    char *serr = NULL;
    char *ids = show_ids(f->a->db, "conv-a", &ex, &serr);
    assert_int_equal(ex, 5); /* partial */
    assert_non_null(strstr(serr, name));
    assert_non_null(strstr(serr, "SHA-256"));
    assert_int_equal(local_segments(f, NULL, 0), 0); /* nothing altered was kept */
    free(ids);
    free(serr);
    t_flip_middle_byte(obj); /* back as it was */
    ids = show_ids(f->a->db, "conv-a", &ex, NULL);
    assert_int_equal(ex, 0);
    char *want = want_ids(0, 40);
    assert_string_equal(ids, want);
    free(want);
    free(ids);
    free(obj);
}

/*
 * A local copy that went bad on disk is replaced by the bucket's (the bad
 * file kept in quarantine/) by the first read that meets it, and a bad
 * local file never replaces the bucket's good copy.
 */
static void
test_bucket_repairs_a_bad_local_copy(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "0", "1d");
    setenv("FR_TEST_POLICY", f->policy, 1);
    int rx;
    archive_two(f, &rx, NULL);
    assert_int_equal(rx, 0);
    char name[300];
    assert_int_equal(local_segments(f, name, sizeof name), 1); /* kept: keep_local 1d */
    char *local = fr_asprintf("%s/%s", f->archive, name), *obj = object_path(f, name);
    char *good, *up;
    size_t glen, ulen;
    struct fr_err err = {0};
    assert_int_equal(fr_read_file(local, &good, &glen, &err), FR_OK);
    /* the disk alters it (and its time): a push verifies before it uploads, repairs it */
    t_flip_middle_byte(local);
    char *out = NULL, *serr = NULL;
    assert_int_equal(fr(&out, &serr, "archive push --db %s --policy %s", f->a->db, f->policy), 0);
    assert_non_null(strstr(serr, "replaced by the bucket's copy"));
    assert_non_null(strstr(serr, "0 objects uploaded"));
    free(out);
    free(serr);
    assert_int_equal(fr_read_file(obj, &up, &ulen, &err), FR_OK);
    assert_int_equal(ulen, glen);
    assert_memory_equal(up, good, glen); /* the bucket still holds the good bytes */
    free(up);
    assert_int_equal(fr_read_file(local, &up, &ulen, &err), FR_OK);
    assert_memory_equal(up, good, glen); /* and so does the folder again */
    free(up);
    /* again, met by a read this time */
    t_flip_middle_byte(local);
    int ex;
    char *ids = show_ids(f->a->db, "conv-a", &ex, &serr), *want = want_ids(0, 40);
    assert_int_equal(ex, 0);
    assert_string_equal(ids, want);
    assert_non_null(strstr(serr, "replaced by the bucket's copy"));
    free(serr);
    free(ids);
    free(want);
    char *q = fr_asprintf("ls %s/quarantine | wc -l", f->archive);
    assert_int_equal(t_run(q, &out, NULL), 0);
    assert_int_equal(atoi(out), 2);
    free(out);
    free(q);
    free(good);
    free(local);
    free(obj);
}

/*
 * The bucket down: the run says so and keeps every local copy; nothing is
 * lost; `archive push` uploads and evicts once it is back.
 */
static void
test_bucket_down_keeps_local_copies(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "0", "0s");
    setenv("FR_TEST_POLICY", f->policy, 1);
    t_s3rver_stop(f->s3);
    f->s3 = 0;
    int rx;
    char *rerr = NULL;
    archive_two(f, &rx, &rerr);
    assert_int_not_equal(rx, 0);
    assert_non_null(strstr(rerr, "kept locally"));
    char *url = fr_asprintf("http://127.0.0.1:%d/" BUCKET "/host1", f->port);
    assert_non_null(strstr(rerr, url));
    free(url);
    free(rerr);
    assert_int_equal(local_segments(f, NULL, 0), 1);
    int ex;
    char *ids = show_ids(f->a->db, "conv-b", &ex, NULL), *want = want_ids(100, 25);
    assert_int_equal(ex, 0);
    assert_string_equal(ids, want);
    free(ids);
    f->s3 = t_s3rver_start(f->s3data, BUCKET, &f->port);
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "archive push --db %s --policy %s", f->a->db, f->policy), 0);
    assert_non_null(strstr(err, "2 objects uploaded"));
    assert_non_null(strstr(err, "1 local copies evicted"));
    free(out);
    free(err);
    assert_int_equal(local_segments(f, NULL, 0), 0);
    ids = show_ids(f->a->db, "conv-b", &ex, NULL);
    assert_int_equal(ex, 0);
    assert_string_equal(ids, want);
    free(ids);
    free(want);
}

/*
 * A new machine with the keys and the policy only: `archive rebuild`
 * fetches the MANIFEST, and every conversation reads back from the bucket.
 */
static void
test_bucket_rebuild_on_a_new_machine(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "0", "0s");
    setenv("FR_TEST_POLICY", f->policy, 1);
    int rx;
    archive_two(f, &rx, NULL);
    assert_int_equal(rx, 0);
    char *db2 = t_path(f->a->dir, "new-machine/flightrec.db");
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "archive rebuild --db %s --policy %s", db2, f->policy), 0);
    assert_non_null(strstr(err, "fetched the MANIFEST"));
    assert_non_null(strstr(err, "rebuilt 1 manifest entries"));
    free(out);
    free(err);
    int ex;
    char *ids = show_ids(db2, "conv-a", &ex, &err), *want = want_ids(0, 40);
    assert_int_equal(ex, 0);
    assert_string_equal(ids, want);
    assert_non_null(strstr(err, "read from the archive"));
    free(err);
    free(ids);
    free(want);
    ids = show_ids(db2, "conv-b", &ex, NULL);
    want = want_ids(100, 25);
    assert_string_equal(ids, want);
    free(ids);
    free(want);
    free(db2);
}

/*
 * Warm -> cold replaces the object (the warm one is deleted from the
 * bucket); an erasure writes the object again without the conversation.
 */
static void
test_bucket_follows_tiers_and_erasure(void **state)
{
    struct bfx *f = *state;
    write_policy(f, "3650d", "0", "0s");
    setenv("FR_TEST_POLICY", f->policy, 1);
    int rx;
    archive_two(f, &rx, NULL);
    assert_int_equal(rx, 0);
    char warm[300];
    manifest_segment(f, warm, sizeof warm);
    char *wobj = object_path(f, warm);
    assert_int_equal(access(wobj, F_OK), 0);
    write_policy(f, "1d", "0", "0s"); /* past warm.max_age */
    char *out = NULL, *err = NULL;
    assert_int_equal(
        fr(&out, &err, "retention run --no-progress --db %s --policy %s", f->a->db, f->policy), 0);
    assert_non_null(strstr(err, "1 segments moved to cold"));
    assert_non_null(strstr(err, "1 deleted"));
    free(out);
    free(err);
    char cold[300];
    manifest_segment(f, cold, sizeof cold);
    assert_non_null(strstr(cold, ".cold.seg"));
    char *cobj = object_path(f, cold);
    assert_int_equal(access(cobj, F_OK), 0);
    assert_int_not_equal(access(wobj, F_OK), 0);
    /* erase conv-a: the object holds conv-b only afterwards */
    assert_int_equal(fr(&out, &err, "erase --conv conv-a --db %s --policy %s", f->a->db, f->policy),
                     0);
    assert_non_null(strstr(err, "archive records removed, 1 segments rewritten"));
    free(out);
    free(err);
    /* the erasure's own sync uploaded the new bytes (and, keep_local 0, evicted them) */
    assert_int_equal(local_segments(f, NULL, 0), 0);
    /* read from the bucket's copy */
    assert_int_equal(
        fr(&out, &err, "archive cat %s --db %s --policy %s", cold, f->a->db, f->policy), 0);
    assert_null(strstr(out, "conv-a"));
    assert_non_null(strstr(out, "\"e-124\""));
    free(out);
    free(err);
    free(cobj);
    free(wobj);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bucket_agent_uploads_and_reads_back, bsetup,
                                        bteardown),
        cmocka_unit_test_setup_teardown(test_bucket_altered_object_refused, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bucket_repairs_a_bad_local_copy, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bucket_down_keeps_local_copies, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bucket_rebuild_on_a_new_machine, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bucket_follows_tiers_and_erasure, bsetup, bteardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
