/*
 * agent/jobs.c - the retention job inside the agent: every
 * schedule.interval of the retention policy it runs the same job as
 * `flightrec retention run`, on its own store connection, so ingest keeps
 * flowing (each segment leaves hot in its own short transaction).
 */
#include "agent/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/ticker.h"
#include "core/timeutil.h"
#include "retention/hot/archive.h"

struct fr_retention_job {
    struct fr_pipeline *pl;               /* borrowed */
    const struct fr_retention_policy *rp; /* borrowed */
    pthread_t thread;
    struct fr_ticker tick;
};

/* Up to this many bytes of changed segments verified per pass (the rest: next pass). */
#define SCRUB_BUDGET (256ull << 20)

/* What the run's bucket sync did, for /metrics and /readyz (error: it failed, and why). */
static void
bucket_report(struct fr_pipeline *p, const struct fr_bucket_stats *bs, const char *error)
{
    pthread_mutex_lock(&p->bucket.mu);
    if (p->bucket.enabled) {
        p->bucket.up = error == NULL && bs->pending == 0;
        p->bucket.uploads += (int64_t)bs->uploaded;
        p->bucket.evicted += (int64_t)bs->evicted;
        p->bucket.failures += error != NULL;
        p->bucket.remote = (int64_t)bs->remote;
        p->bucket.pending = (int64_t)bs->pending;
        snprintf(p->bucket.error, sizeof p->bucket.error, "%.511s", error ? error : "");
    }
    pthread_mutex_unlock(&p->bucket.mu);
}

static int
tier_sizes(void *ud, const struct fr_manifest_row *m)
{
    struct fr_retention_state *r = ud;
    int t = strcmp(m->tier, "cold") == 0;
    r->segments[t]++;
    r->bytes[t] += m->file_bytes;
    return 0;
}

/* How the run went and what the tiers hold after it, for /metrics and the console. */
static void
retention_report(struct fr_pipeline *p, struct fr_store *st, bool ok)
{
    struct fr_retention_state r = {0};
    struct fr_err err = {0};
    fr_store_manifest(st, tier_sizes, &r, &err);
    pthread_mutex_lock(&p->retention_state.mu);
    p->retention_state.runs++;
    p->retention_state.failures += !ok;
    p->retention_state.last_ms = fr_now_ms();
    p->retention_state.last_ok = ok;
    memcpy(p->retention_state.segments, r.segments, sizeof r.segments);
    memcpy(p->retention_state.bytes, r.bytes, sizeof r.bytes);
    pthread_mutex_unlock(&p->retention_state.mu);
}

static void
job_run_once(struct fr_retention_job *j, bool retention)
{
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.busy_timeout_ms = (int)j->pl->conf.busy_timeout_ms;
    struct fr_store *st;
    struct fr_err err = {0};
    struct fr_retention_stats s;
    if (fr_store_open(j->pl->conf.db_path, &so, &st, &err) != FR_OK) {
        fr_log(FR_LOG_ERROR, "retention", "cannot open the store: %s", err.msg);
        return;
    }
    if (!retention) {
        struct fr_scrub_stats ss;
        if (fr_retention_scrub(st, j->rp, SCRUB_BUDGET, &ss, &err) != FR_OK)
            fr_log(FR_LOG_WARN, "retention", "segment verification: %s", err.msg);
    } else if (fr_retention_run(st, j->rp, fr_now_ms(), false, NULL, NULL, &s, &err) == FR_OK) {
        fr_log(FR_LOG_INFO, "retention",
               "%llu events to warm in %llu segments, %llu segments to cold, %llu deleted, %.2f s",
               (unsigned long long)s.moved_events, (unsigned long long)s.warm_segments,
               (unsigned long long)s.to_cold, (unsigned long long)s.deleted_segments, s.seconds);
        bucket_report(j->pl, &s.bucket, NULL);
        retention_report(j->pl, st, true);
    } else {
        fr_log(FR_LOG_ERROR, "retention", "run failed: %s", err.msg);
        if (s.bucket.failed)
            bucket_report(j->pl, &s.bucket, err.msg);
        retention_report(j->pl, st, false);
    }
    fr_store_close(st);
}

static int64_t
mono_ms(void)
{
    return (int64_t)(fr_mono_s() * 1000.0);
}

static void *
job_main(void *arg)
{
    struct fr_retention_job *j = arg;
    /* retention every interval; between runs, changed segments verified every verify_interval */
    int64_t now = mono_ms(), next_run = j->rp->interval_ms > 0 ? now + j->rp->interval_ms : -1;
    int64_t next_verify = j->rp->verify_ms > 0 ? now + 1000 : -1;
    for (;;) {
        int64_t next = next_run < 0                                 ? next_verify
                       : next_verify < 0 || next_run <= next_verify ? next_run
                                                                    : next_verify;
        if (!fr_ticker_wait(&j->tick, next - now > 0 ? next - now : 0))
            break;
        now = mono_ms();
        bool run = next_run >= 0 && now >= next_run;
        job_run_once(j, run);
        now = mono_ms();
        if (run)
            next_run = now + j->rp->interval_ms;
        if (next_verify >= 0 && (run || now >= next_verify))
            next_verify = now + j->rp->verify_ms;
    }
    return NULL;
}

struct fr_retention_job *
fr_retention_job_start(struct fr_pipeline *pl, const struct fr_retention_policy *rp)
{
    struct fr_retention_job *j = fr_calloc(1, sizeof *j);
    j->pl = pl;
    pthread_mutex_lock(&pl->bucket.mu);
    pl->bucket.enabled = rp->interval_ms > 0 && rp->bucket_url != NULL && rp->bucket_url[0];
    pthread_mutex_unlock(&pl->bucket.mu);
    j->rp = rp;
    fr_ticker_init(&j->tick);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        fr_log(FR_LOG_ERROR, "retention", "cannot start the retention job");
        fr_ticker_destroy(&j->tick);
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
    fr_ticker_stop(&j->tick);
    pthread_join(j->thread, NULL);
    fr_ticker_destroy(&j->tick);
    free(j);
}
