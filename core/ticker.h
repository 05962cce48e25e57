/*
 * core/ticker.h - a stoppable periodic wait for background threads (the
 * runtime sampler, the retention job, the outbox retries).
 *
 * Waits are timed on CLOCK_MONOTONIC, so a wall-clock step (NTP, a manual
 * date change) neither fires a job early nor stalls it for hours.
 *
 *     fr_ticker_init(&t);
 *     while (fr_ticker_wait(&t, interval_ms))   (thread: false once stopped)
 *         work();
 *     fr_ticker_stop(&t);                       (other thread: wakes it)
 *     ... join ...; fr_ticker_destroy(&t);
 */
#ifndef FR_CORE_TICKER_H
#define FR_CORE_TICKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct fr_ticker {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    bool stop;         /* under mu */
};

void fr_ticker_init(struct fr_ticker *t);

/* Initializes cv to time its waits on CLOCK_MONOTONIC (for threads with a queue of their own). */
void fr_cond_init_monotonic(pthread_cond_t *cv);
void fr_ticker_destroy(struct fr_ticker *t);

/* CLOCK_MONOTONIC ms milliseconds from now (ms < 0: now): the deadline of a timed wait on a
   cond from fr_cond_init_monotonic(). */
struct timespec fr_deadline_ms(int64_t ms);

/* Sleeps ms milliseconds or until stopped; true when the time ran out, false once stopped. */
bool fr_ticker_wait(struct fr_ticker *t, int64_t ms);

/* True once fr_ticker_stop() was called. */
bool fr_ticker_stopped(struct fr_ticker *t);

/* Wakes every waiter; from then on fr_ticker_wait() returns false at once. */
void fr_ticker_stop(struct fr_ticker *t);

#endif
