/*
 * tests/test_pipeline.c - the pipeline's preparing slots (agent/pipeline.c,
 * fr_pipeline_prepare_begin): a request waits while its body would take the
 * bytes being prepared past ingest.prepare_bytes, and goes when those ahead
 * are done; a request alone goes whatever its size; later requests wait
 * behind one waiting for bytes, so a large one is not kept out.
 */
#include "tests/support/support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "agent/pipeline.h"
#include "core/mem.h"

struct preparer {
    struct fr_pipeline *p;
    size_t bytes;
    atomic_bool in; /* past fr_pipeline_prepare_begin */
    atomic_bool leave;
    pthread_t thread;
};

static void *
prepare_main(void *arg)
{
    struct preparer *r = arg;
    fr_pipeline_prepare_begin(r->p, r->bytes);
    atomic_store(&r->in, true);
    while (!atomic_load(&r->leave))
        usleep(1000);
    fr_pipeline_prepare_end(r->p, r->bytes);
    return NULL;
}

static void
start(struct preparer *r, struct fr_pipeline *p, size_t bytes)
{
    r->p = p;
    r->bytes = bytes;
    atomic_init(&r->in, false);
    atomic_init(&r->leave, false);
    assert_int_equal(pthread_create(&r->thread, NULL, prepare_main, r), 0);
}

/* Waits until r is in (it must get there: the test fails after 10 s, not hangs). */
static void
wait_in(struct preparer *r)
{
    for (int i = 0; i < 10000 && !atomic_load(&r->in); i++)
        usleep(1000);
    assert_true(atomic_load(&r->in));
}

static void
finish(struct preparer *r)
{
    atomic_store(&r->leave, true);
    assert_int_equal(pthread_join(r->thread, NULL), 0);
}

/* Whether r is still waiting once the others' state has settled: it cannot get in before one
   of them leaves, so a short look suffices (a wrong admission shows at once). */
static bool
waiting(struct preparer *r)
{
    usleep(50 * 1000);
    return !atomic_load(&r->in);
}

static void
test_pipeline_prepare_bytes_bounded(void **state)
{
    (void)state;
    struct fr_pipeline p;
    fr_pipeline_init(&p);
    fr_config_defaults(&p.conf);
    p.conf.prepare_bytes = 1000;
    p.conf.prepare_nice = 0; /* the test's threads keep their priority */
    struct preparer big, other, small, huge;
    /* alone, a body past the bound goes */
    start(&huge, &p, 5000);
    wait_in(&huge);
    /* anything after it waits for it */
    start(&small, &p, 10);
    assert_true(waiting(&small));
    finish(&huge);
    wait_in(&small);
    /* 610 bytes in (with the 10): another 600 would pass 1000 and waits; a later 300, which
       would fit, waits behind it (a stream of small requests cannot keep it out) */
    start(&big, &p, 600);
    wait_in(&big);
    start(&other, &p, 600);
    assert_true(waiting(&other));
    struct preparer fits;
    start(&fits, &p, 300);
    assert_true(waiting(&fits));
    assert_true(waiting(&other));
    finish(&big); /* 10 in: the 600 goes, then the 300 fits beside it */
    wait_in(&other);
    wait_in(&fits);
    finish(&other);
    finish(&fits);
    finish(&small);
    assert_int_equal(p.prep_busy, 0);
    assert_int_equal(p.prep_bytes, 0);
    /* the count bound holds as before: prep_max requests of no size, the next waits */
    struct preparer *many = fr_calloc((size_t)p.prep_max + 1, sizeof *many);
    for (int i = 0; i < p.prep_max; i++) {
        start(&many[i], &p, 0);
        wait_in(&many[i]);
    }
    start(&many[p.prep_max], &p, 0);
    assert_true(waiting(&many[p.prep_max]));
    finish(&many[0]);
    wait_in(&many[p.prep_max]);
    for (int i = 1; i <= p.prep_max; i++)
        finish(&many[i]);
    free(many);
    fr_pipeline_destroy(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_prepare_bytes_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
