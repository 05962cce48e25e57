/*
 * tests/test_query.c - the query API's parameters (agent/api/params.c) as
 * data: allowed names, times, limits, cursors, and echoed text that is cut
 * at a character boundary.
 */
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/params.h"

#define NOW 1771357445201LL

static const char *const allowed[] = {"since", "until", "limit", "status", NULL};

struct qcase {
    const char *kv[6]; /* key, value pairs, NULL-terminated */
    bool ok;
    const char *msg; /* a part of the error, when not ok */
    int64_t since, until;
    int limit;
};

static void
test_query_common_parameters_table(void **state)
{
    (void)state;
    static const struct qcase cases[] = {
        {{NULL}, true, NULL, 0, 0, 50},
        {{"limit", "7", NULL}, true, NULL, 0, 0, 7},
        {{"limit", "0", NULL}, false, "limit: expected a whole number from 1 to 1000", 0, 0, 0},
        {{"limit", "1001", NULL}, false, "limit", 0, 0, 0},
        {{"limit", "5x", NULL}, false, "limit", 0, 0, 0},
        {{"since", "2026-02-17", NULL}, true, NULL, 1771286400000LL, 0, 50},
        {{"since", "15m", NULL}, true, NULL, NOW - 900000, 0, 50},
        {{"since", "1771357445201", NULL}, true, NULL, 1771357445201LL, 0, 50},
        {{"since", "soon", NULL}, false, "since:", 0, 0, 0},
        {{"since", "2026-02-18", "until", "2026-02-17", NULL},
         false,
         "since is after until",
         0,
         0,
         0},
        {{"bogus", "1", NULL}, false, "unknown parameter 'bogus'", 0, 0, 0},
        {{"status", "", "limit", "3", NULL}, true, NULL, 0, 0, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct qcase *c = &cases[i];
        struct fr_qparams q = {0};
        for (size_t k = 0; c->kv[k] != NULL; k += 2)
            fr_qparams_add(&q, c->kv[k], c->kv[k + 1]);
        int64_t since = 0, until = 0;
        int limit = -1;
        char msg[300] = "";
        bool ok = fr_qparams_common(&q, allowed, NOW, 50, &since, &until, &limit, msg, sizeof msg);
        if (ok != c->ok)
            fail_msg("case %zu: ok=%d, want %d (%s)", i, ok, c->ok, msg);
        if (!ok && strstr(msg, c->msg) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, c->msg);
        if (ok) {
            assert_int_equal(since, c->since);
            assert_int_equal(until, c->until);
            assert_int_equal(limit, c->limit);
        }
    }
}

/* An unknown parameter's name is echoed cut at 64 bytes, never inside a character. */
static void
test_query_echo_cut_at_character_boundary(void **state)
{
    (void)state;
    char name[200];
    memset(name, 'a', 63);
    strcpy(name + 63, "\xc3\xa9tail"); /* é straddles byte 64 */
    struct fr_qparams q = {0};
    fr_qparams_add(&q, name, "1");
    int64_t s = 0, u = 0;
    int l;
    char msg[300];
    assert_false(fr_qparams_common(&q, allowed, NOW, 50, &s, &u, &l, msg, sizeof msg));
    assert_null(strstr(msg, "\xc3'"));        /* no half character before the quote */
    assert_non_null(strstr(msg, "aaaa...'")); /* cut before it, and said so */
    char out[16];
    fr_text_cut("\xe2\x82\xac\xe2\x82\xac", 4, out, sizeof out); /* two euro signs, 6 bytes */
    assert_string_equal(out, "\xe2\x82\xac...");
    fr_text_cut("short", 64, out, sizeof out);
    assert_string_equal(out, "short");
}

static void
test_query_cursor_round_trip_and_garbage(void **state)
{
    (void)state;
    char *c = fr_cursor_encode(1771357445201LL, "conv:with:colons");
    int64_t ms = 0;
    char id[300];
    assert_true(fr_cursor_decode(c, &ms, id, sizeof id));
    assert_int_equal(ms, 1771357445201LL);
    assert_string_equal(id, "conv:with:colons");
    free(c);
    static const char *const bad[] = {"", "abc", "zz", "3a", "00313a78", "31", "xx3a31"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fr_cursor_decode(bad[i], &ms, id, sizeof id))
            fail_msg("cursor \"%s\" was accepted", bad[i]);
    char small[4];
    c = fr_cursor_encode(5, "longer-than-four");
    assert_false(fr_cursor_decode(c, &ms, small, sizeof small));
    free(c);
}

static void
test_query_too_many_parameters(void **state)
{
    (void)state;
    struct fr_qparams q = {0};
    for (int i = 0; i < FR_QPARAMS_MAX + 5; i++)
        fr_qparams_add(&q, "limit", "1");
    int64_t s = 0, u = 0;
    int l;
    char msg[300];
    assert_false(fr_qparams_common(&q, allowed, NOW, 50, &s, &u, &l, msg, sizeof msg));
    assert_non_null(strstr(msg, "too many parameters"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_common_parameters_table),
        cmocka_unit_test(test_query_echo_cut_at_character_boundary),
        cmocka_unit_test(test_query_cursor_round_trip_and_garbage),
        cmocka_unit_test(test_query_too_many_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
