/*
 * tests/test_writer.c - the writer thread (agent/writer.c): group commit of
 * several batches in one transaction, and what each batch is told.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Submits gate's batch and returns once the writer thread is inside its done() (held). */
static void
held_gate(struct fr_writer *w, struct held *gate, const char *const *lines, size_t n)
{
    held_init(gate, lines, n, true);
    assert_int_equal(fr_writer_submit(w, &gate->b, true), FR_OK);
    held_wait(gate, &gate->in_done);
}

/* Lets the writer thread out of h's done(). */
static void
held_release(struct held *h)
{
    pthread_mutex_lock(&h->mu);
    h->release = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Queues a and b behind the held gate, lets the gate go and waits for both: one transaction. */
static void
held_two_behind(struct fr_writer *w, struct held *gate, struct held *a, struct held *b)
{
    assert_int_equal(fr_writer_submit(w, &a->b, false), FR_OK);
    assert_int_equal(fr_writer_submit(w, &b->b, false), FR_OK);
    held_release(gate);
    held_wait(a, &a->finished);
    held_wait(b, &b->finished);
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
    held_gate(w, &gate, first, 2); /* the writer thread is inside gate's done() */
    held_init(&a, fresh, 1, false);
    held_init(&b, first, 2, false); /* the retry of gate's events */
    held_two_behind(w, &gate, &a, &b);
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

/* Producers preparing now, as the test says; and whether the writer asked. */
struct preparing {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n;
    bool asked;
    size_t calls;          /* past 10,000 it says 0: a writer spinning on it stops */
    size_t txns, sizes[4]; /* the transactions committed and their events */
};

static size_t
preparing_count(void *ud)
{
    struct preparing *p = ud;
    pthread_mutex_lock(&p->mu);
    p->asked = true;
    pthread_cond_broadcast(&p->cv);
    size_t n = ++p->calls > 10000 ? 0 : p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void
preparing_observe(void *ud, const struct fr_record *recs, size_t n, int rc,
                  const struct fr_err *err, double seconds)
{
    struct preparing *p = ud;
    (void)recs, (void)rc, (void)err, (void)seconds;
    pthread_mutex_lock(&p->mu);
    if (p->txns < 4)
        p->sizes[p->txns] = n;
    p->txns++;
    pthread_mutex_unlock(&p->mu);
}

/* Waits (up to 10 s) until the writer asks who is preparing; then it is told n. */
static void
preparing_asked(struct preparing *p, size_t n)
{
    pthread_mutex_lock(&p->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!p->asked && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
        ;
    assert_true(p->asked);
    p->n = n;
    pthread_mutex_unlock(&p->mu);
}

/* A writer (transactions of at most max_txn events) that asks p who is preparing (n at first),
   waiting wait_ms at most for them, and counts its transactions in p. */
static struct fr_writer *
preparing_writer(struct t_store_fx *f, struct preparing *p, size_t n, size_t max_txn, int wait_ms)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    struct fr_writer *w = fr_writer_new(f->st, 1000, max_txn);
    fr_writer_observe(w, preparing_observe, p);
    fr_writer_set_preparing(w, preparing_count, p, wait_ms);
    return w;
}

/* Submits first; once the writer took it and asks who is preparing, tells it `then` and
   submits second; waits until both are committed. */
static void
preparing_pair(struct fr_writer *w, struct preparing *p, struct held *first, struct held *second,
               size_t then)
{
    assert_int_equal(fr_writer_submit(w, &first->b, false), FR_OK);
    preparing_asked(p, then);
    assert_int_equal(fr_writer_submit(w, &second->b, false), FR_OK);
    held_wait(first, &first->finished);
    held_wait(second, &second->finished);
    assert_int_equal(first->b.rc, FR_OK);
    assert_int_equal(second->b.rc, FR_OK);
}

static void
preparing_free(struct preparing *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

/* "{... tool event n of conversation conv ...}", owned by the caller */
static char *
tool_line(const char *conv, int n)
{
    return fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"event_id\":\"e%d\"}",
                       1771357445300LL + n, conv, n);
}

/*
 * A transaction of one event, with another producer preparing its batch, waits for that
 * batch and commits both together (one event per request otherwise cost each its own
 * transaction, ~12 WAL pages); with nobody preparing, one event commits alone at once. A
 * batch that does not fit in the transaction ends the waiting (it goes in the next), with the
 * producers still preparing: the writer does not spin on it.
 */
static void
test_writer_small_txn_gathers_preparing(void **state)
{
    struct t_store_fx *f = *state;
    static const char *const convs[6] = {"g1", "g2", "g3", "g4", "g4", "g5"};
    char *l[6];
    for (int i = 0; i < 6; i++)
        l[i] = tool_line(convs[i], i + 1);
    const char *one[] = {l[0]}, *two[] = {l[1]}, *three[] = {l[2]}, *pair[] = {l[3], l[4]},
               *six[] = {l[5]};
    struct preparing prep, busy;
    struct held a, b, c, d, e;
    /* a long wait, so that the result does not depend on how fast this thread is */
    struct fr_writer *w = preparing_writer(f, &prep, 1, 100, 2000);
    held_init(&a, one, 1, false);
    held_init(&b, two, 1, false);
    preparing_pair(w, &prep, &a, &b, 0); /* the preparing producer submits b */
    assert_int_equal(prep.txns, 1);
    assert_int_equal(prep.sizes[0], 2);
    /* nobody preparing: committed alone */
    held_init(&c, three, 1, false);
    assert_int_equal(fr_writer_submit(w, &c.b, false), FR_OK);
    held_wait(&c, &c.finished);
    assert_int_equal(c.b.rc, FR_OK);
    assert_int_equal(prep.txns, 2);
    assert_int_equal(prep.sizes[1], 1);
    fr_writer_free(w);
    /* transactions of 2 at most: the pair does not fit beside the one event */
    w = preparing_writer(f, &busy, 1, 2, 200);
    held_init(&d, six, 1, false);
    held_init(&e, pair, 2, false);
    preparing_pair(w, &busy, &d, &e, 1);
    assert_int_equal(busy.txns, 2);
    assert_int_equal(busy.sizes[0], 1);
    assert_int_equal(busy.sizes[1], 2);
    assert_true(busy.calls < 100);
    fr_writer_free(w);
    struct held *all[] = {&a, &b, &c, &d, &e};
    for (size_t i = 0; i < 5; i++)
        held_free(all[i]);
    for (int i = 0; i < 6; i++)
        free(l[i]);
    preparing_free(&prep);
    preparing_free(&busy);
}

/*
 * storage.commit_delay_ms: with nobody preparing, a transaction of one event still waits (here
 * up to 5 s) for more, and commits as soon as it holds 256 events: the first event and a
 * batch of 255 sent after the writer took it are one transaction.
 */
static void
test_writer_commit_delay_gathers(void **state)
{
    struct t_store_fx *f = *state;
    char *owned[256];
    for (int i = 0; i < 256; i++)
        owned[i] = tool_line(i == 0 ? "d1" : "d2", i);
    const char *one[] = {owned[0]};
    struct preparing prep;
    struct fr_writer *w = preparing_writer(f, &prep, 0, 1000, 1); /* nobody preparing */
    fr_writer_set_commit_delay(w, 5000);
    struct held a, b;
    held_init(&a, one, 1, false);
    held_init(&b, (const char *const *)owned + 1, 255, false);
    preparing_pair(w, &prep, &a, &b, 0); /* the writer took the one event and waits */
    assert_int_equal(prep.txns, 1);
    assert_int_equal(prep.sizes[0], 256);
    fr_writer_free(w);
    held_free(&a);
    held_free(&b);
    for (int i = 0; i < 256; i++)
        free(owned[i]);
    preparing_free(&prep);
}

/*
 * A batch that keeps its records (a producer waiting for its commit) gets them back stored and
 * whole, to free on its own thread; another batch of the same transaction has its records
 * cleared by the writer. (A writer that cleared the kept records too fails the first check on
 * them.)
 */
static void
test_writer_keep_records_left_to_producer(void **state)
{
    struct t_store_fx *f = *state;
    static const char *const one[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"k1\",\"event_id\":\"e1\"}",
    };
    static const char *const two[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":\"k2\",\"event_id\":\"e2\"}",
    };
    struct fr_writer *w = fr_writer_new(f->st, 100, 100);
    struct held gate, kept, cleared;
    held_gate(w, &gate, one, 1);
    held_init(&kept, two, 1, false);
    kept.b.keep_records = true;
    held_init(&cleared, one, 1, false); /* a retry: in the same transaction as kept */
    held_two_behind(w, &gate, &kept, &cleared);
    assert_int_equal(kept.b.rc, FR_OK);
    assert_non_null(kept.b.recs[0].ids[FR_ID_CONV]); /* still the producer's */
    assert_string_equal(kept.b.recs[0].ids[FR_ID_CONV], "k2");
    assert_null(cleared.b.recs[0].ids[FR_ID_CONV]); /* cleared by the writer */
    assert_int_equal(sql_long(f->path, "SELECT count(*) FROM events WHERE conv_id = 'k2'", NULL, 0),
                     1);
    fr_record_clear(&kept.b.recs[0]);
    fr_writer_free(w);
    held_free(&gate);
    held_free(&kept);
    held_free(&cleared);
}

struct submitter {
    struct fr_writer *w;
    struct fr_batch *b;
    int rc;
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *
submit_waiting(void *arg)
{
    struct submitter *s = arg;
    int rc = fr_writer_submit(s->w, s->b, true);
    pthread_mutex_lock(&s->mu);
    s->rc = rc;
    s->done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/*
 * Backpressure: while the queue holds its bound, a submit without wait is
 * refused with FR_E_BUSY (nothing queued) and one with wait blocks until
 * the writer made room; every batch is committed in the end.
 */
static void
test_writer_full_queue_busy_then_waits(void **state)
{
    struct t_store_fx *f = *state;
    static const char *const one[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"q\",\"event_id\":\"g\"}"};
    static const char *const filling[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":\"q\",\"event_id\":\"a\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445203,\"conv_id\":\"q\",\"event_id\":\"b\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445205,\"conv_id\":\"q\",\"event_id\":\"h\"}"};
    static const char *const three[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445204,\"conv_id\":\"q\",\"event_id\":\"c\"}"};
    struct fr_writer *w = fr_writer_new(f->st, 3, 100); /* room for 3 events */
    struct held gate, full, busy, later;
    held_init(&gate, one, 1, true);
    assert_int_equal(fr_writer_submit(w, &gate.b, true), FR_OK);
    /* the writer is held in gate's done(): gate's event is committed and its room given back
       before the answer (a producer that sends again at once must find it) */
    held_wait(&gate, &gate.in_done);
    assert_int_equal(fr_writer_queued(w), 0);
    held_init(&full, filling, 3, false);
    assert_int_equal(fr_writer_submit(w, &full.b, false), FR_OK); /* 3 of 3 */
    assert_int_equal(fr_writer_queued(w), 3);
    held_init(&busy, three, 1, false);
    assert_int_equal(fr_writer_submit(w, &busy.b, false), FR_E_BUSY);
    assert_int_equal(fr_writer_queued(w), 3); /* nothing of the refused batch was queued */
    held_init(&later, three, 1, false);
    struct submitter sub = {.w = w, .b = &later.b};
    pthread_mutex_init(&sub.mu, NULL);
    pthread_cond_init(&sub.cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_waiting, &sub), 0);
    pthread_mutex_lock(&gate.mu);
    gate.release = true; /* the writer goes on: room appears, the waiting submit gets in */
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    pthread_join(th, NULL);
    assert_int_equal(sub.rc, FR_OK);
    held_wait(&later, &later.finished);
    held_wait(&full, &full.finished);
    assert_int_equal(full.b.rc, FR_OK);
    assert_int_equal(later.b.rc, FR_OK);
    fr_writer_free(w);
    for (size_t i = 0; i < busy.b.n; i++)
        fr_record_clear(&busy.b.recs[i]);
    held_free(&gate);
    held_free(&full);
    held_free(&busy);
    held_free(&later);
    pthread_cond_destroy(&sub.cv);
    pthread_mutex_destroy(&sub.mu);
}

/*
 * Admission before the work: a reservation counts as queued (others are
 * refused while it holds the room), a batch submitted against it gives back
 * what it did not use, and a batch larger than the whole queue is refused
 * (FR_E_LIMIT) even when the queue is empty.
 */
static void
test_writer_reservation_and_oversized_batch(void **state)
{
    struct t_store_fx *f = *state;
    static const char *const two[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445301,\"conv_id\":\"r\",\"event_id\":\"a\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445302,\"conv_id\":\"r\",\"event_id\":\"b\"}"};
    static const char *const four[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445303,\"conv_id\":\"r\",\"event_id\":\"c\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445304,\"conv_id\":\"r\",\"event_id\":\"d\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445305,\"conv_id\":\"r\",\"event_id\":\"e\"}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445306,\"conv_id\":\"r\",\"event_id\":\"f\"}"};
    struct fr_writer *w = fr_writer_new(f->st, 3, 100);
    struct held big;
    held_init(&big, four, 4, false);
    assert_int_equal(fr_writer_submit(w, &big.b, true), FR_E_LIMIT); /* never fits, no wait */
    assert_int_equal(fr_writer_reserve(w, 4, true), FR_E_LIMIT);
    assert_int_equal(fr_writer_queued(w), 0);
    assert_int_equal(fr_writer_reserve(w, 3, false), FR_OK); /* three envelopes to prepare */
    assert_int_equal(fr_writer_reserve(w, 1, false), FR_E_BUSY);
    struct held used;
    held_init(&used, two, 2, true); /* one of the three was rejected while preparing */
    fr_writer_submit_reserved(w, &used.b, 3);
    held_wait(&used, &used.in_done);          /* committed; the writer holds in done() */
    assert_int_equal(fr_writer_queued(w), 0); /* all of it came back before the answer */
    assert_int_equal(fr_writer_reserve(w, 1, false), FR_OK);
    fr_writer_unreserve(w, 1);
    pthread_mutex_lock(&used.mu);
    used.release = true;
    pthread_cond_broadcast(&used.cv);
    pthread_mutex_unlock(&used.mu);
    assert_int_equal(used.b.rc, FR_OK);
    /* the whole queue again, once the writer gave the committed batch's room back */
    assert_int_equal(fr_writer_reserve(w, 3, true), FR_OK);
    fr_writer_unreserve(w, 3);
    held_wait(&used, &used.finished);
    fr_writer_free(w);
    for (size_t i = 0; i < big.b.n; i++)
        fr_record_clear(&big.b.recs[i]);
    held_free(&big);
    held_free(&used);
}

struct within {
    struct fr_writer *w;
    size_t n;
    atomic_int rc; /* -1 until fr_writer_reserve_within returned */
};

static void *
within_main(void *arg)
{
    struct within *x = arg;
    atomic_store(&x->rc, fr_writer_reserve_within(x->w, x->n, 30.0));
    return NULL;
}

/*
 * Admission at the headers: a reservation that waits for room (at most as
 * long as asked) and is made exact once the body is counted. No room by the
 * deadline is FR_E_BUSY; a waiter gets its room when a reservation is given
 * back; growing a reservation past the queue gives all of it back.
 */
static void
test_writer_reserve_within_and_rereserve(void **state)
{
    struct t_store_fx *f = *state;
    struct fr_writer *w = fr_writer_new(f->st, 10, 100);
    assert_int_equal(fr_writer_reserve_within(w, 11, 0), FR_E_LIMIT);
    assert_int_equal(fr_writer_reserve_within(w, 8, 0), FR_OK);
    assert_int_equal(fr_writer_reserve_within(w, 3, 0.05), FR_E_BUSY); /* waited, none came */
    assert_int_equal(fr_writer_queued(w), 8);
    assert_int_equal(fr_writer_reserve_within(w, 0, 0), FR_OK); /* room for one: takes none */
    assert_int_equal(fr_writer_queued(w), 8);
    /* the estimate made exact: down gives back, up takes more while there is room */
    assert_int_equal(fr_writer_rereserve(w, 8, 6), FR_OK);
    assert_int_equal(fr_writer_queued(w), 6);
    assert_int_equal(fr_writer_rereserve(w, 6, 10), FR_OK);
    assert_int_equal(fr_writer_queued(w), 10);
    assert_int_equal(fr_writer_reserve_within(w, 0, 0), FR_E_BUSY); /* full: not one more */
    assert_int_equal(fr_writer_rereserve(w, 0, 1), FR_E_BUSY);
    assert_int_equal(fr_writer_queued(w), 10);
    /* a waiter is woken by the room given back, and takes it */
    struct within x = {w, 4, -1};
    pthread_t t;
    pthread_create(&t, NULL, within_main, &x);
    usleep(20000);
    assert_int_equal(atomic_load(&x.rc), -1); /* still waiting: the queue is full */
    assert_int_equal(fr_writer_rereserve(w, 10, 5), FR_OK);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&x.rc), FR_OK);
    assert_int_equal(fr_writer_queued(w), 9);
    /* more than the queue ever holds: refused, the whole reservation given back */
    assert_int_equal(fr_writer_rereserve(w, 5, 11), FR_E_LIMIT);
    assert_int_equal(fr_writer_queued(w), 4);
    fr_writer_unreserve(w, 4);
    assert_int_equal(fr_writer_queued(w), 0);
    fr_writer_free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_keep_records_left_to_producer, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_group_commit_duplicates_per_batch,
                                        t_store_setup, t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_small_txn_gathers_preparing, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_commit_delay_gathers, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_full_queue_busy_then_waits, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_reservation_and_oversized_batch, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test_setup_teardown(test_writer_reserve_within_and_rereserve, t_store_setup,
                                        t_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
