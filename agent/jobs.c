/*
 * agent/jobs.c - the retention job inside the agent: every
 * schedule.interval of the retention policy it runs the same job as
 * `flightrec retention run`, on its own store connection, so ingest keeps
 * flowing (each segment leaves hot in its own short transaction).
 */
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "agent/daemon.h"

struct fr_retention_job {
    struct fr_agent *a;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *
job_main(void *arg)
{
    struct fr_retention_job *j = arg;
    struct fr_agent *a = j->a;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += a->retention.interval_ms / 1000;
        until.tv_nsec += (a->retention.interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!j->stop && pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0)
            ;
        if (j->stop)
            break;
        pthread_mutex_unlock(&j->mu);
        struct fr_store_opts so;
        fr_store_opts_default(&so);
        so.busy_timeout_ms = (int)a->conf.busy_timeout_ms;
        struct fr_store *st;
        struct fr_err err = {0};
        struct fr_retention_stats s;
        if (fr_store_open(a->conf.db_path, &so, &st, &err) == FR_OK) {
            if (fr_retention_run(st, &a->retention, fr_now_ms(), false, NULL, NULL, &s, &err) ==
                FR_OK)
                fr_log(FR_LOG_INFO, "retention",
                       "%llu events to warm in %llu segments, %llu segments to cold, %llu "
                       "deleted, %.2f s",
                       (unsigned long long)s.moved_events, (unsigned long long)s.warm_segments,
                       (unsigned long long)s.to_cold, (unsigned long long)s.deleted_segments,
                       s.seconds);
            else
                fr_log(FR_LOG_ERROR, "retention", "run failed: %s", err.msg);
            fr_store_close(st);
        } else {
            fr_log(FR_LOG_ERROR, "retention", "cannot open the store: %s", err.msg);
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

struct fr_retention_job *
fr_retention_job_start(struct fr_agent *a)
{
    struct fr_retention_job *j = fr_calloc(1, sizeof *j);
    j->a = a;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        fr_log(FR_LOG_ERROR, "retention", "cannot start the retention job");
        free(j);
        return NULL;
    }
    return j;
}

void
fr_retention_job_stop(struct fr_retention_job *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}
