/*
 * tests/test_writer.c - the writer thread (agent/writer.c): group commit of
 * several batches in one transaction, and what each batch is told.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/writer.h"
#include "core/mem.h"
#include "support/support.h"

/* A batch whose done() can hold the writer thread until the test releases it. */
struct held {
    struct fr_batch b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool in_done, release, finished;
};

static void
held_done(struct fr_batch *b, void *ud)
{
    struct held *h = ud;
    (void)b;
    pthread_mutex_lock(&h->mu);
    h->in_done = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->release)
        pthread_cond_wait(&h->cv, &h->mu);
    h->finished = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void
held_init(struct held *h, const char *const *lines, size_t n, bool hold)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->release = !hold;
    h->b.recs = fr_calloc(n, sizeof *h->b.recs);
    h->b.n = n;
    h->b.done = held_done;
    h->b.ud = h;
    for (size_t i = 0; i < n; i++) {
        struct fr_err err = {0};
        assert_int_equal(t_prepare(lines[i], &h->b.recs[i], &err), FR_OK);
    }
}

static void
held_wait(struct held *h, bool *flag)
{
    pthread_mutex_lock(&h->mu);
    while (!*flag)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void
held_free(struct held *h)
{
    free(h->b.recs);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

/*
 * Two batches committed in one transaction: the one holding a producer's
 * retry is told its duplicates, the other none (they were all credited to
 * the first batch of the transaction before).
 */
static void
test_writer_group_commit_duplicates_per_batch(void **state)
{
    struct t_store_fx *f = *state;
    static const char *const first[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"c1\",\"event_id\":\"e1\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":\"c1\",\"event_id\":\"e2\"}",
    };
    static const char *const fresh[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445203,\"conv_id\":\"c2\",\"event_id\":\"e3\"}",
    };
    struct fr_writer *w = fr_writer_new(f->st, 100, 100);
    struct held gate, a, b;
    held_init(&gate, first, 2, true);
    assert_int_equal(fr_writer_submit(w, &gate.b, true), FR_OK);
    held_wait(&gate, &gate.in_done); /* the writer thread is inside gate's done() */
    held_init(&a, fresh, 1, false);
    held_init(&b, first, 2, false); /* the retry of gate's events */
    assert_int_equal(fr_writer_submit(w, &a.b, false), FR_OK);
    assert_int_equal(fr_writer_submit(w, &b.b, false), FR_OK);
    pthread_mutex_lock(&gate.mu);
    gate.release = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    held_wait(&a, &a.finished);
    held_wait(&b, &b.finished);
    assert_int_equal(gate.b.rc, FR_OK);
    assert_int_equal(gate.b.duplicates, 0);
    assert_int_equal(a.b.rc, FR_OK);
    assert_int_equal(b.b.rc, FR_OK);
    assert_int_equal(a.b.duplicates, 0);
    assert_int_equal(b.b.duplicates, 2);
    fr_writer_free(w);
    held_free(&gate);
    held_free(&a);
    held_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_group_commit_duplicates_per_batch,
                                        t_store_setup, t_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
