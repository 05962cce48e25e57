/*
 * agent/jobs.c - the retention job inside the agent: every
 * schedule.interval of the retention policy it runs the same job as
 * `flightrec retention run`, on its own store connection, so ingest keeps
 * flowing (each segment leaves hot in its own short transaction); and
 * every DISK_CHECK_MS it looks at the room left on the hot store's disk,
 * and runs it at once when that is under hot.min_free_percent, moving as
 * many bytes of the oldest hot events as free it again.
 */
#include "agent/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
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
    bool pressed;       /* the disk is under the floor: said once, until it is not */
    bool said_nothing;  /* said that hot had nothing more to move, this time under */
    double failed_said; /* monotonic s a failed run under the floor was last said; 0: never */
};

/* How often the room on the hot store's disk is looked at (a statvfs, a few microseconds: a
   small disk fills fast), how soon a run under the floor that failed is tried again (its
   failure said at most every DISK_IDLE_MS), and how long the job waits after a run under the
   floor that could move nothing. */
#define DISK_CHECK_MS 250
#define DISK_RETRY_MS 2000
#define DISK_IDLE_MS 60000

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

/* How the run went and what the tiers hold after it, for /metrics and the console (disk: it
   was run for room on the disk). */
static void
retention_report(struct fr_pipeline *p, struct fr_store *st, bool ok, bool disk)
{
    struct fr_retention_state r = {0};
    struct fr_err err = {0};
    fr_store_manifest(st, tier_sizes, &r, &err);
    pthread_mutex_lock(&p->retention_state.mu);
    p->retention_state.runs++;
    p->retention_state.disk_runs += disk;
    p->retention_state.failures += !ok;
    p->retention_state.last_ms = fr_now_ms();
    p->retention_state.last_ok = ok;
    memcpy(p->retention_state.segments, r.segments, sizeof r.segments);
    memcpy(p->retention_state.bytes, r.bytes, sizeof r.bytes);
    pthread_mutex_unlock(&p->retention_state.mu);
}

/* The job's own connection to the store (the writer keeps ingesting on its). */
static int
job_open(struct fr_retention_job *j, struct fr_store **st, struct fr_err *err)
{
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.busy_timeout_ms = (int)j->pl->conf.busy_timeout_ms;
    return fr_store_open(j->pl->conf.db_path, &so, st, err);
}

/*
 * One retention run under policy p on the job's own connection, its bucket
 * sync and the tiers after it reported for /metrics, /readyz and the console
 * (disk: a run for room on the disk). Returns fr_retention_run's code, or
 * the open's (*s then zero).
 */
static int
job_retention(struct fr_retention_job *j, const struct fr_retention_policy *p, bool disk,
              struct fr_retention_stats *s, struct fr_err *err)
{
    memset(s, 0, sizeof *s);
    struct fr_store *st;
    int rc = job_open(j, &st, err);
    if (rc != FR_OK)
        return rc;
    rc = fr_retention_run(st, p, fr_now_ms(), false, NULL, NULL, s, err);
    if (rc == FR_OK || s->bucket.failed)
        bucket_report(j->pl, &s->bucket, rc == FR_OK ? NULL : err->msg);
    retention_report(j->pl, st, rc == FR_OK, disk);
    fr_store_close(st);
    return rc;
}

static void
job_run_once(struct fr_retention_job *j, bool retention)
{
    struct fr_err err = {0};
    if (!retention) {
        struct fr_store *st;
        if (job_open(j, &st, &err) != FR_OK) {
            fr_log(FR_LOG_ERROR, "retention", "cannot open the store: %s", err.msg);
            return;
        }
        struct fr_scrub_stats ss;
        if (fr_retention_scrub(st, j->rp, SCRUB_BUDGET, &ss, &err) != FR_OK)
            fr_log(FR_LOG_WARN, "retention", "segment verification: %s", err.msg);
        fr_store_close(st);
        return;
    }
    struct fr_retention_stats s;
    if (job_retention(j, j->rp, false, &s, &err) == FR_OK)
        fr_log(FR_LOG_INFO, "retention",
               "%llu events to warm in %llu segments, %llu segments to cold, %llu deleted, %.2f s",
               (unsigned long long)s.moved_events, (unsigned long long)s.warm_segments,
               (unsigned long long)s.to_cold, (unsigned long long)s.deleted_segments, s.seconds);
    else
        fr_log(FR_LOG_ERROR, "retention", "run failed: %s", err.msg);
}

/*
 * The disk under hot.min_free_percent: a retention run now, in which the
 * oldest hot events also move to warm before their age, as many bytes of
 * them as fr_retention_disk_pressure says (the policy's move_bytes for this
 * run). Returns how long to wait before the next look.
 */
static int64_t
job_disk(struct fr_retention_job *j)
{
    const char *db = j->pl->conf.db_path;
    uint64_t avail, total;
    int64_t move;
    char a[32], t[32];
    if (!fr_retention_disk_pressure(j->rp, db, &move, &avail, &total)) {
        if (j->pressed) {
            fr_log(FR_LOG_WARN, "retention", "the disk holding %s has %s free of %s again", db,
                   fr_fmt_bytes(a, sizeof a, avail), fr_fmt_bytes(t, sizeof t, total));
            pthread_mutex_lock(&j->pl->retention_state.mu);
            j->pl->retention_state.disk_low[0] = '\0';
            pthread_mutex_unlock(&j->pl->retention_state.mu);
        }
        j->pressed = j->said_nothing = false;
        return DISK_CHECK_MS;
    }
    pthread_mutex_lock(&j->pl->retention_state.mu); /* for /readyz, still 200 */
    snprintf(j->pl->retention_state.disk_low, sizeof j->pl->retention_state.disk_low,
             "%s free of %s, under hot.min_free_percent (%lld%%): the oldest hot events move to "
             "warm early",
             fr_fmt_bytes(a, sizeof a, avail), fr_fmt_bytes(t, sizeof t, total),
             (long long)j->rp->min_free_percent);
    pthread_mutex_unlock(&j->pl->retention_state.mu);
    if (!j->pressed)
        fr_log(FR_LOG_WARN, "retention",
               "the disk holding %s has %s free of %s, under hot.min_free_percent (%lld%%): the "
               "oldest hot events move to warm now, before their age (not those of the last "
               "hot.min_free_keep)",
               db, fr_fmt_bytes(a, sizeof a, avail), fr_fmt_bytes(t, sizeof t, total),
               (long long)j->rp->min_free_percent);
    j->pressed = true;
    struct fr_retention_policy q = *j->rp; /* this run's: so many bytes of the oldest rows */
    q.move_bytes = move;
    struct fr_retention_stats s;
    struct fr_err err = {0};
    /* it fails on a full disk (no room for a segment either) until some is freed */
    if (job_retention(j, &q, true, &s, &err) != FR_OK) {
        double now = fr_mono_s();
        if (j->failed_said == 0 || now - j->failed_said >= DISK_IDLE_MS / 1000) {
            fr_log(FR_LOG_ERROR, "retention",
                   "run for room on the disk failed (tried again every %d s, said every %d s): "
                   "%s",
                   DISK_RETRY_MS / 1000, DISK_IDLE_MS / 1000, err.msg);
            j->failed_said = now;
        }
        return DISK_RETRY_MS;
    }
    j->failed_said = 0;
    fr_fs_space(db, &avail, &total);
    fr_log(FR_LOG_WARN, "retention",
           "for room on the disk: %llu events to warm in %llu segments (%.1f MiB of rows), "
           "%.2f s; %s free now",
           (unsigned long long)s.moved_events, (unsigned long long)s.warm_segments,
           (double)s.row_bytes / 1048576.0, s.seconds, fr_fmt_bytes(a, sizeof a, avail));
    if (s.moved_events > 0)
        return DISK_CHECK_MS;
    if (!j->said_nothing)
        fr_log(FR_LOG_WARN, "retention",
               "the disk holding %s is still under hot.min_free_percent and hot has no whole "
               "segment of events older than hot.min_free_keep left to move: what fills it is "
               "not the hot store (looked at again every %d s)",
               db, DISK_IDLE_MS / 1000);
    j->said_nothing = true;
    return DISK_IDLE_MS;
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
    /* retention every interval; between runs, changed segments verified every verify_interval,
       and the room on the disk looked at every DISK_CHECK_MS (job_disk says when next) */
    int64_t now = mono_ms(), next_run = j->rp->interval_ms > 0 ? now + j->rp->interval_ms : -1;
    int64_t next_verify = j->rp->verify_ms > 0 ? now + 1000 : -1;
    int64_t next_disk = j->rp->min_free_percent > 0 ? now : -1;
    for (;;) {
        int64_t next = -1;
        for (int k = 0; k < 3; k++) {
            int64_t at = k == 0 ? next_run : k == 1 ? next_verify : next_disk;
            if (at >= 0 && (next < 0 || at < next))
                next = at;
        }
        if (!fr_ticker_wait(&j->tick, next - now > 0 ? next - now : 0))
            break;
        now = mono_ms();
        if (next_disk >= 0 && now >= next_disk) {
            next_disk = now + job_disk(j);
            now = mono_ms();
            if ((next_run < 0 || now < next_run) && (next_verify < 0 || now < next_verify))
                continue;
        }
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
