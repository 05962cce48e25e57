/*
 * tests/test_e2e.c - end to end through the library: the generator writes a
 * file, every line is prepared and committed through the writer thread, and
 * the store's counts and one conversation's view are checked against what
 * the file holds (counted independently with jansson).
 */
#include "tests/support/support.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/writer.h"
#include "bench/gen.h"
#include "core/mem.h"

struct e2e_done {
    size_t committed;
    int failures;
};

static void
e2e_done(struct fr_batch *b, void *ud)
{
    struct e2e_done *d = ud;
    if (b->rc == FR_OK)
        d->committed += b->n;
    else
        d->failures++;
    free(b->recs);
    free(b);
}

struct view {
    size_t n;
    int64_t last_ts;
    int64_t last_id;
    bool ordered;
};

static int
view_row(void *ud, const struct fr_event_row *r)
{
    struct view *v = ud;
    if (v->n > 0 &&
        (r->ts_ms < v->last_ts || (r->ts_ms == v->last_ts && r->id < v->last_id && !r->has_seq)))
        v->ordered = false;
    v->last_ts = r->ts_ms;
    v->last_id = r->id;
    v->n++;
    return 0;
}

static int
count_convs(void *ud, const struct fr_conv_row *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

static void
test_e2e_generated_file_counts_and_view(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *file = t_path(dir, "events.ndjson");
    FILE *fp = fopen(file, "w");
    struct fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.events = 5000;
    go.seed = 7;
    assert_int_equal(fr_gen_write(fp, &go), 0);
    fclose(fp);

    /* what the file holds, counted independently */
    size_t lines = 0, in_c1 = 0;
    json_t *convs = json_object();
    fp = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        lines++;
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *c = json_string_value(json_object_get(j, "conv_id"));
        if (c != NULL)
            json_object_set_new(convs, c, json_true());
        if (c != NULL && strcmp(c, "c-000001") == 0)
            in_c1++;
        json_decref(j);
    }
    fclose(fp);
    assert_int_equal(lines, 5000);
    assert_true(in_c1 > 10);

    /* ingest through the writer thread in batches of 300 */
    struct fr_store *st = t_store_open(dir, "hot.db");
    struct fr_writer *w = fr_writer_new(st, 900, 1000);
    struct e2e_done done = {0};
    fp = fopen(file, "r");
    struct fr_batch *b = NULL;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (b == NULL) {
            b = fr_calloc(1, sizeof *b);
            b->recs = fr_calloc(300, sizeof *b->recs);
            b->done = e2e_done;
            b->ud = &done;
        }
        struct fr_err err = {0};
        if (fr_ingest_prepare(line, (size_t)len - 1, t_cfg(), NULL, &b->recs[b->n], &err) != FR_OK)
            fail_msg("generated line rejected: %s", err.msg);
        if (++b->n == 300) {
            assert_int_equal(fr_writer_submit(w, b, true), FR_OK);
            b = NULL;
        }
    }
    if (b != NULL)
        assert_int_equal(fr_writer_submit(w, b, true), FR_OK);
    fclose(fp);
    free(line);
    fr_writer_free(w);
    assert_int_equal(done.failures, 0);
    assert_int_equal(done.committed, 5000);

    /* the index holds every conversation of the file */
    size_t nconv = 0;
    struct fr_conv_filter cf = {0};
    struct fr_err err = {0};
    assert_int_equal(fr_store_conversations(st, &cf, count_convs, &nconv, &err), FR_OK);
    assert_int_equal(nconv, json_object_size(convs));
    json_decref(convs);

    /* one conversation's view: all its events, in time order */
    struct view v = {.ordered = true};
    struct fr_event_filter ef = {.conv_id = "c-000001"};
    assert_int_equal(fr_store_events(st, &ef, view_row, &v, &err), FR_OK);
    assert_int_equal(v.n, in_c1);
    assert_true(v.ordered);
    fr_store_close(st);
    t_rmtree(dir);
    free(dir);
    free(file);
}

static void
test_e2e_writer_busy_when_full_without_wait(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    struct fr_store *st = t_store_open(dir, "hot.db");
    struct fr_writer *w = fr_writer_new(st, 4, 4);
    /* fill the queue faster than it commits: with wait=false the answer is FR_E_BUSY,
       and every batch that was accepted is committed */
    struct e2e_done done = {0};
    int busy = 0, queued = 0;
    for (int i = 0; i < 200; i++) {
        struct fr_batch *b = fr_calloc(1, sizeof *b);
        b->recs = fr_calloc(2, sizeof *b->recs);
        for (int k = 0; k < 2; k++) {
            char json[128];
            snprintf(json, sizeof json,
                     "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"c\","
                     "\"event_id\":\"e%d\"}",
                     i * 2 + k);
            assert_int_equal(t_prepare(json, &b->recs[k], NULL), FR_OK);
        }
        b->n = 2;
        b->done = e2e_done;
        b->ud = &done;
        if (fr_writer_submit(w, b, false) == FR_E_BUSY) {
            busy++;
            fr_record_clear(&b->recs[0]);
            fr_record_clear(&b->recs[1]);
            free(b->recs);
            free(b);
        } else {
            queued++;
        }
    }
    fr_writer_free(w);
    assert_int_equal(done.committed, (size_t)queued * 2);
    assert_int_equal(busy + queued, 200);
    fr_store_close(st);
    t_rmtree(dir);
    free(dir);
}

/*
 * The generator's mix for prose (fr-gen --text FILE --history, bench/segment.sh): free text
 * is the file's words in order (a quote and a backslash escaped, a word that is not UTF-8
 * left out), every line is JSON, and a conversation's later provider call carries its
 * earlier user message and answer before its new one, as a stateless chat API is called.
 * A file that cannot be read fails with -1.
 */
static void
test_e2e_generator_prose_and_history(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *text = t_path(dir, "prose.txt");
    FILE *fp = fopen(text, "w");
    fputs("alpha \"quoted\" back\\slash caf\xe9 beta\n", fp);
    for (int i = 0; i < 2000; i++)
        fprintf(fp, "w%d ", i);
    fclose(fp);
    struct fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.events = 3000;
    go.seed = 5;
    go.concurrency = 2;
    go.text_path = text;
    go.history = 1;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    assert_int_equal(fr_gen_write(mem, &go), 0);
    fclose(mem);
    /* the first text (3 words at least) is the file's first words, escaped; the word that is
       not UTF-8 is left out */
    assert_non_null(strstr(out, "\"alpha \\\"quoted\\\" back\\\\slash"));
    assert_null(strstr(out, "caf"));
    bool carried = false, answered = false;
    json_t *said = json_object(); /* per conversation: its last user message */
    for (char *line = out, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        if (j == NULL)
            fail_msg("line not JSON: %s: %.200s", jerr.text, line);
        json_t *msgs =
            json_object_get(json_object_get(json_object_get(j, "data"), "request"), "messages");
        const char *conv = json_string_value(json_object_get(j, "conv_id"));
        size_t n = json_array_size(msgs);
        if (n > 0) {
            const char *before = json_string_value(json_object_get(said, conv));
            if (before != NULL) { /* the conversation's earlier message, before the new one */
                size_t at = 0;
                while (at + 1 < n &&
                       !json_equal(json_object_get(json_array_get(msgs, at), "content"),
                                   json_object_get(said, conv)))
                    at++;
                if (at + 1 >= n)
                    fail_msg("%s: a provider call without its earlier message %.60s", conv, before);
                carried = true;
            }
            for (size_t k = 1; k + 1 < n; k++) /* an answer carried: after a call that had one */
                answered =
                    answered ||
                    strcmp(json_string_value(json_object_get(json_array_get(msgs, k), "role")),
                           "assistant") == 0;
            json_object_set(said, conv, json_object_get(json_array_get(msgs, n - 1), "content"));
        }
        json_decref(j);
    }
    assert_true(carried);
    assert_true(answered);
    json_decref(said);
    free(out);
    go.text_path = t_path(dir, "missing.txt");
    mem = open_memstream(&out, &len);
    assert_int_equal(fr_gen_write(mem, &go), -1);
    fclose(mem);
    free(out);
    free((char *)go.text_path);
    free(text);
    t_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2e_generated_file_counts_and_view),
        cmocka_unit_test(test_e2e_writer_busy_when_full_without_wait),
        cmocka_unit_test(test_e2e_generator_prose_and_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
