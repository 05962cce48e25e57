/*
 * tests/test_triggers.c - automatic incident bundles (agent/triggers.c)
 * without the daemon: the rules file's errors, and which failures fire a
 * rule, which fall in its cool-down and which the hourly cap stops, read
 * back from the metrics the agent exports; the bundles a firing builds; rules
 * on how successful calls ended (finish: filtered, length).
 */
#include "tests/support/support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline.h"
#include "agent/triggers.h"
#include "core/mem.h"

struct tfx {
    char *dir;
    struct fr_pipeline p;
};

static int
tsetup(void **state)
{
    struct tfx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    fr_pipeline_init(&f->p);
    fr_config_defaults(&f->p.conf);
    free(f->p.conf.db_path);
    f->p.conf.db_path = t_path(f->dir, "hot.db");
    free(f->p.conf.incident_bundle_dir);
    f->p.conf.incident_bundle_dir = t_path(f->dir, "bundles");
    f->p.metrics = fr_metrics_new();
    fr_store_close(t_store_open(f->dir, "hot.db"));
    *state = f;
    return 0;
}

static int
tteardown(void **state)
{
    struct tfx *f = *state;
    fr_pipeline_destroy(&f->p);
    t_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void
rules(struct tfx *f, const char *yaml)
{
    char *path = t_path(f->dir, "triggers.yaml");
    FILE *fp = fopen(path, "w");
    fputs(yaml, fp);
    fclose(fp);
    free(f->p.conf.incident_triggers);
    f->p.conf.incident_triggers = path;
}

/* One failure of conv at ts (a provider rate limit). */
static void
failure(struct fr_record *rec, const char *conv, int64_t ts)
{
    char *line = fr_asprintf("{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\","
                             "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\"},"
                             "\"error\":{\"message\":\"429 rate limited\",\"http_status\":429}}",
                             (long long)ts, conv);
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, rec, &err), FR_OK);
    assert_true(rec->has_error);
    free(line);
}

/* The value of flightrec_incident_triggers_total{rule,outcome}, 0 when absent. */
static long
trigger_count(struct tfx *f, const char *rule, const char *outcome)
{
    char *line =
        fr_asprintf("flightrec_incident_triggers_total{rule=\"%s\",outcome=\"%s\"}", rule, outcome);
    long v = t_metric(f->p.metrics, line);
    free(line);
    return v < 0 ? 0 : v;
}

static void
test_triggers_rules_file_errors(void **state)
{
    struct tfx *f = *state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"cooldown: soon\n", ":1: cooldown: 'soon' is not a duration"},
        {"max_per_hour: 0\n", ":1: max_per_hour: expected a whole number from 1 to 100000"},
        {"max_per_hour: 5x\n", ":1: max_per_hour: expected a whole number"},
        {"rules:\n  - name: a\n    error_class: provider\n    count: 0\n",
         ":4: rules.count: expected a whole number from 1 to 1000"},
        {"rules:\n  - name: a\n    error_class: provider\n    window: 10\n",
         ":4: rules.window: '10' has no unit"},
        {"rules:\n  - name: a\n    error_class: provider\n    colour: red\n",
         ":4: rules.colour: unknown option"},
        {"rules:\n  - name: a\n    error_class: provider\n    scope: team\n",
         ":4: rules.scope: expected conversation or global"},
        {"rules:\n  - error_class: provider\n", "a rule needs a name"},
        {"rules:\n  - name: a\n    count: 2\n", "error_class, error_code or finish"},
        {"rules:\n  - name: a\n    finish: filtered\n    error_class: provider\n",
         "finish matches calls that succeeded"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rules(f, cases[i].yaml);
        struct fr_err err = {0};
        struct fr_triggers *t = fr_triggers_start(&f->p, &err);
        assert_null(t);
        if (strstr(err.msg, cases[i].want) == NULL || strstr(err.msg, "triggers.yaml") == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].want);
    }
}

static size_t
bundles(struct tfx *f)
{
    DIR *d = opendir(f->p.conf.incident_bundle_dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tar.zst") != NULL && strstr(e->d_name, ".sha256") == NULL;
    if (d)
        closedir(d);
    return n;
}

/*
 * count 3 within 1m, per conversation: two failures do nothing, the third
 * fires; the fourth falls in the cool-down; another conversation fires on
 * its own; past max_per_hour a firing is refused and counted.
 */
static void
test_triggers_fire_cooldown_and_cap(void **state)
{
    struct tfx *f = *state;
    rules(f, "cooldown: 1h\nmax_per_hour: 2\nrules:\n"
             "  - name: rl\n    error_class: provider\n    count: 3\n    window: 1m\n");
    struct fr_err err = {0};
    struct fr_triggers *t = fr_triggers_start(&f->p, &err);
    assert_non_null(t);
    int64_t now = 1771357445201LL;
    struct fr_record r[3];
    for (int i = 0; i < 2; i++)
        failure(&r[i], "a", now + i);
    fr_triggers_observe(t, r, 2);
    assert_int_equal(trigger_count(f, "rl", "fired"), 0);
    failure(&r[2], "a", now + 2);
    fr_triggers_observe(t, &r[2], 1);
    assert_int_equal(trigger_count(f, "rl", "fired"), 1);
    fr_triggers_observe(t, &r[2], 1); /* a fourth failure of "a" */
    assert_int_equal(trigger_count(f, "rl", "cooldown"), 1);
    assert_int_equal(trigger_count(f, "rl", "fired"), 1);
    /* three failures spread over more than the window do not fire */
    struct fr_record s[3];
    for (int i = 0; i < 3; i++)
        failure(&s[i], "slow", now + i * 40000);
    fr_triggers_observe(t, s, 3);
    assert_int_equal(trigger_count(f, "rl", "fired"), 1);
    struct fr_record b[3];
    for (int i = 0; i < 3; i++)
        failure(&b[i], "b", now + i);
    fr_triggers_observe(t, b, 3);
    assert_int_equal(trigger_count(f, "rl", "fired"), 2);
    struct fr_record c[3];
    for (int i = 0; i < 3; i++)
        failure(&c[i], "c", now + i);
    fr_triggers_observe(t, c, 3);
    assert_int_equal(trigger_count(f, "rl", "rate_limited"), 1); /* max_per_hour: 2 */
    fr_triggers_stop(t);                                         /* builds what fired */
    assert_int_equal(bundles(f), 2);
    for (int i = 0; i < 3; i++) {
        fr_record_clear(&r[i]);
        fr_record_clear(&s[i]);
        fr_record_clear(&b[i]);
        fr_record_clear(&c[i]);
    }
}

/* A provider call of conv at ts that succeeded and ended with reason. */
static void
ended(struct fr_record *rec, const char *conv, int64_t ts, const char *reason)
{
    char *line = fr_asprintf("{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"%s\","
                             "\"data\":{\"model\":\"gemini\",\"status\":\"ok\","
                             "\"finish_reason\":\"%s\"}}",
                             (long long)ts, conv, reason);
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, rec, &err), FR_OK);
    assert_false(rec->has_error);
    free(line);
}

/*
 * finish: a rule on calls that succeeded but whose answer was filtered (by
 * what the reason means, any provider's spelling) or ended with one reason;
 * other endings and failures do not count towards it.
 */
static void
test_triggers_on_how_calls_ended(void **state)
{
    struct tfx *f = *state;
    rules(f, "rules:\n"
             "  - name: filtered\n    finish: filtered\n    count: 2\n    window: 10m\n"
             "  - name: cut\n    finish: length\n    count: 1\n");
    struct fr_err err = {0};
    struct fr_triggers *t = fr_triggers_start(&f->p, &err);
    assert_non_null(t);
    int64_t now = 1771357445201LL;
    struct fr_record r[5];
    ended(&r[0], "a", now, "SAFETY");
    ended(&r[1], "a", now + 1, "stop");
    ended(&r[2], "a", now + 2, "max_tokens"); /* truncated, but not "length" */
    failure(&r[3], "a", now + 3);
    fr_triggers_observe(t, r, 4);
    assert_int_equal(trigger_count(f, "filtered", "fired"), 0);
    assert_int_equal(trigger_count(f, "cut", "fired"), 0);
    ended(&r[4], "a", now + 4, "content_filter"); /* the second filtered answer */
    fr_triggers_observe(t, &r[4], 1);
    assert_int_equal(trigger_count(f, "filtered", "fired"), 1);
    fr_record_clear(&r[4]);
    ended(&r[4], "b", now + 5, "length");
    fr_triggers_observe(t, &r[4], 1);
    assert_int_equal(trigger_count(f, "cut", "fired"), 1);
    fr_triggers_stop(t);
    assert_int_equal(bundles(f), 2);
    for (int i = 0; i < 5; i++)
        fr_record_clear(&r[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_triggers_rules_file_errors, tsetup, tteardown),
        cmocka_unit_test_setup_teardown(test_triggers_fire_cooldown_and_cap, tsetup, tteardown),
        cmocka_unit_test_setup_teardown(test_triggers_on_how_calls_ended, tsetup, tteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
