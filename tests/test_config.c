/*
 * tests/test_config.c - the option loader (core/option.h) and the agent's
 * configuration (agent/config.h): defaults, YAML errors that name file,
 * line and key, environment overrides, misspelled variables, durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/config.h"
#include "core/mem.h"
#include "core/option.h"
#include "support/support.h"

struct demo {
    char *name;
    int64_t n, wait_ms;
    bool on;
    int mode;
};

static const char *const modes[] = {"fast", "safe", NULL};

static const struct fr_option demo_opts[] = {
    {"a", "name", FR_OPT_STR, "x", offsetof(struct demo, name), 0, 0, NULL, "a name"},
    {"a", "n", FR_OPT_INT, "5", offsetof(struct demo, n), 1, 10, NULL, "a number"},
    {"b", "wait", FR_OPT_DURATION, "30s", offsetof(struct demo, wait_ms), 0, 86400000, NULL,
     "a wait"},
    {"b", "on", FR_OPT_BOOL, "false", offsetof(struct demo, on), 0, 0, NULL, "a switch"},
    {"b", "mode", FR_OPT_ENUM, "safe", offsetof(struct demo, mode), 0, 0, modes, "a mode"},
    {0},
};

static char *
write_tmp(const char *dir, const char *name, const char *text)
{
    char *p = t_path(dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return p;
}

static void
test_duration_one_grammar(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {{"0", 0},        {"250ms", 250},    {"30s", 30000},    {"1.5h", 5400000},
              {"10m", 600000}, {"3d", 259200000}, {"1w", 604800000}, {"0s", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        struct fr_err err = {0};
        assert_int_equal(fr_duration_parse(ok[i].in, &ms, &err), FR_OK);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "s", "-5s", "10", "10x", "abc", "5 m", "1e30w"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 0;
        struct fr_err err = {0};
        assert_int_equal(fr_duration_parse(bad[i], &ms, &err), FR_E_INVALID);
        assert_true(err.msg[0] != '\0');
    }
}

static void
test_options_yaml_errors_name_file_line_key(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    struct {
        const char *yaml, *want;
    } cases[] = {
        {"a:\n  n: 11\n", ":2: a.n: expected a whole number from 1 to 10, got '11'"},
        {"a:\n  name: y\nb:\n  wait: 10\n", ":4: b.wait: '10' has no unit"},
        {"b:\n  mode: quick\n", ":2: b.mode: expected fast or safe, got 'quick'"},
        {"a:\n  nope: 1\n", ":2: a.nope: unknown option"},
        /* a misspelled or misplaced key: what it most likely meant */
        {"a:\n  nmae: y\n", ":2: a.nmae: unknown option; did you mean a.name?"},
        {"a:\n  wait: 1s\n", ":2: a.wait: unknown option; did you mean b.wait?"},
        {"b:\n  mod: fast\n", ":2: b.mod: unknown option; did you mean b.mode?"},
        {"b:\n  a: 1\n", ":2: b.a: unknown option; a is a section of its own, at the top level"},
        {"c:\n  n: 1\n", ":1: unknown section 'c' (a, b)"},
        {"b:\n  on: maybe\n", ":2: b.on: expected true or false, got 'maybe'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = write_tmp(dir, "demo.yaml", cases[i].yaml);
        struct demo d;
        memset(&d, 0, sizeof d);
        fr_options_defaults(demo_opts, &d);
        struct fr_err err = {0};
        assert_int_equal(fr_options_load_yaml(demo_opts, &d, p, &err), FR_E_CONFIG);
        if (strstr(err.msg, cases[i].want) == NULL || strstr(err.msg, "demo.yaml") == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
        fr_options_clear(demo_opts, &d);
        free(p);
    }
    /* nothing near: no guess */
    char *p = write_tmp(dir, "demo.yaml", "a:\n  qqqqqqqq: 1\n");
    struct demo d;
    memset(&d, 0, sizeof d);
    fr_options_defaults(demo_opts, &d);
    struct fr_err err = {0};
    assert_int_equal(fr_options_load_yaml(demo_opts, &d, p, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "a.qqqqqqqq: unknown option"));
    assert_null(strstr(err.msg, "did you mean"));
    fr_options_clear(demo_opts, &d);
    free(p);
    t_rmtree(dir);
    free(dir);
}

static char last_warning[512];

static void
keep_warning(const char *msg)
{
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static void
test_options_env_overrides_and_misspellings(void **state)
{
    (void)state;
    struct demo d;
    memset(&d, 0, sizeof d);
    fr_options_defaults(demo_opts, &d);
    assert_string_equal(d.name, "x");
    assert_int_equal(d.wait_ms, 30000);
    assert_int_equal(d.mode, 1);
    setenv("FRT_B_WAIT", "2m", 1);
    setenv("FRT_B_MODEE", "fast", 1); /* a misspelling */
    struct fr_err err = {0};
    last_warning[0] = '\0';
    assert_int_equal(fr_options_load_env(demo_opts, &d, "FRT", NULL, keep_warning, &err), FR_OK);
    assert_int_equal(d.wait_ms, 120000);
    assert_int_equal(d.mode, 1); /* the misspelled variable changed nothing ... */
    assert_non_null(strstr(last_warning, "FRT_B_MODEE names no option"));
    assert_non_null(strstr(last_warning, "did you mean FRT_B_MODE?")); /* ... and was named */
    unsetenv("FRT_B_MODEE");
    setenv("FRT_A_N", "zero", 1);
    assert_int_equal(fr_options_load_env(demo_opts, &d, "FRT", NULL, NULL, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "environment FRT_A_N: expected a whole number"));
    unsetenv("FRT_A_N");
    unsetenv("FRT_B_WAIT");
    fr_options_clear(demo_opts, &d);
    assert_null(d.name);
}

static void
test_config_agent_listen_needs_a_port(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *p = write_tmp(dir, "a.yaml", "http:\n  listen: localhost\n");
    struct fr_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_config_load(p, &c, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "http.listen: expected HOST:PORT"));
    free(p);
    p = write_tmp(dir, "b.yaml", "storage:\n  synchronous: full\nlog:\n  level: debug\n");
    memset(&err, 0, sizeof err);
    assert_int_equal(fr_config_load(p, &c, &err), FR_OK);
    assert_int_equal(c.sync_mode, 1);
    assert_int_equal(c.log_level, 3);
    assert_string_equal(c.http_listen, "127.0.0.1:8787");
    fr_config_clear(&c);
    free(p);
    t_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_one_grammar),
        cmocka_unit_test(test_options_yaml_errors_name_file_line_key),
        cmocka_unit_test(test_options_env_overrides_and_misspellings),
        cmocka_unit_test(test_config_agent_listen_needs_a_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
