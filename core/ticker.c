/*
 * core/ticker.c - see ticker.h.
 */
#include "core/ticker.h"

#include <time.h>

void
fr_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void
fr_ticker_init(struct fr_ticker *t)
{
    pthread_mutex_init(&t->mu, NULL);
    fr_cond_init_monotonic(&t->cv);
    t->stop = false;
}

void
fr_ticker_destroy(struct fr_ticker *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

struct timespec
fr_deadline_ms(int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (ms < 0)
        ms = 0;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

bool
fr_ticker_wait(struct fr_ticker *t, int64_t ms)
{
    struct timespec until = fr_deadline_ms(ms);
    pthread_mutex_lock(&t->mu);
    /* a spurious wake-up or a signal for another waiter goes back to sleep */
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
        ;
    bool ran_out = !t->stop;
    pthread_mutex_unlock(&t->mu);
    return ran_out;
}

bool
fr_ticker_stopped(struct fr_ticker *t)
{
    pthread_mutex_lock(&t->mu);
    bool s = t->stop;
    pthread_mutex_unlock(&t->mu);
    return s;
}

void
fr_ticker_stop(struct fr_ticker *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}
