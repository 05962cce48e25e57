/*
 * agent/pipeline.c - see pipeline.h: the live state's reference counting,
 * the durable submit every source uses, readiness.
 */
#include "agent/pipeline.h"

#include <errno.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/otlp/map.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/wire.h"
#include "retention/hot/archive.h"

void
fr_pipeline_init(struct fr_pipeline *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->live_mu, NULL);
    pthread_mutex_init(&p->commit_mu, NULL);
    pthread_mutex_init(&p->misnamed_mu, NULL);
    pthread_mutex_init(&p->health_mu, NULL);
    pthread_mutex_init(&p->otlp_mu, NULL);
    pthread_mutex_init(&p->prep_mu, NULL);
    pthread_mutex_init(&p->ship.mu, NULL);
    pthread_mutex_init(&p->bucket.mu, NULL);
    pthread_mutex_init(&p->retention_state.mu, NULL);
    pthread_cond_init(&p->prep_cv, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->prep_max = cpus > 1 ? (int)(2 * cpus) : 2;
    atomic_init(&p->stopping, false);
    atomic_init(&p->http_inflight, 0);
    atomic_init(&p->preparing, 0);
    p->otlp_failures = fr_otlp_failures_new();
}

/*
 * Once per thread: an HTTP connection's (until it closes), a gRPC request's, a
 * socket connection's. The writer is the one thread every event goes through;
 * threads preparing requests at its priority preempted it in the middle of
 * its transactions (perf sched, 4 HTTP clients: 0.48 s of a 2.6 s run), and it
 * then waited for batches while they ran short of time (docs/benchmarks.md).
 * Linux lets an unprivileged thread raise its niceness only, so it is not
 * given back.
 */
void
fr_pipeline_prepare_yield(const struct fr_pipeline *p)
{
    static _Thread_local bool done;
    if (done || p->conf.prepare_nice <= 0)
        return;
    done = true;
    id_t tid = (id_t)gettid();
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno != 0)
        return;
    int want = cur + (int)p->conf.prepare_nice > 19 ? 19 : cur + (int)p->conf.prepare_nice;
    static atomic_bool said;
    if (want > cur && setpriority(PRIO_PROCESS, tid, want) != 0 && !atomic_exchange(&said, true))
        fr_log(FR_LOG_WARN, "pipeline",
               "ingest.prepare_nice: the threads preparing received events cannot lower their "
               "priority (setpriority: %s; a system call filter?), so they compete with the "
               "writer: set 0 to silence this, or allow setpriority",
               strerror(errno));
}

#define FR_PREPARE_TRIM_BYTES (4u << 20) /* a body this large: malloc_trim after it */

/* When the preparing of this thread's request began (its prepare phase, fr_metrics). */
static _Thread_local double prepare_t0;

void
fr_pipeline_prepare_begin(struct fr_pipeline *p, size_t bytes)
{
    fr_pipeline_prepare_yield(p);
    double t0 = fr_mono_s();
    size_t max = p->conf.prepare_bytes > 0 ? (size_t)p->conf.prepare_bytes : SIZE_MAX;
    bool queued = false; /* this request waits for bytes: later ones wait behind it */
    pthread_mutex_lock(&p->prep_mu);
    for (;;) {
        bool over = p->prep_busy > 0 && (bytes > max || p->prep_bytes > max - bytes);
        if (over && !queued) {
            queued = true;
            p->prep_queued++;
        }
        if (p->prep_busy < p->prep_max && !over && (queued || p->prep_queued == 0))
            break;
        pthread_cond_wait(&p->prep_cv, &p->prep_mu);
    }
    if (queued && --p->prep_queued == 0)
        pthread_cond_broadcast(&p->prep_cv); /* those behind it may fit beside it */
    p->prep_busy++;
    p->prep_bytes += bytes;
    atomic_fetch_add(&p->preparing, 1);
    pthread_mutex_unlock(&p->prep_mu);
    prepare_t0 = fr_mono_s();
    if (p->metrics != NULL)
        fr_metrics_ingest_phase(p->metrics, "admission", prepare_t0 - t0);
}

void
fr_pipeline_prepare_end(struct fr_pipeline *p, size_t bytes)
{
    if (p->metrics != NULL)
        fr_metrics_ingest_phase(p->metrics, "prepare", fr_mono_s() - prepare_t0);
    pthread_mutex_lock(&p->prep_mu);
    p->prep_busy--;
    p->prep_bytes -= bytes;
    atomic_fetch_sub(&p->preparing, 1);
    /* with a request waiting for bytes, every waiter (the one the freed room lets in may not
       be the next in line); else they wait for a slot only, and one gets it (a woken one that
       finds itself over the bytes waits for bytes: some request is then still in) */
    if (p->prep_queued > 0)
        pthread_cond_broadcast(&p->prep_cv);
    else
        pthread_cond_signal(&p->prep_cv);
    pthread_mutex_unlock(&p->prep_mu);
    /* a large body's tree went past its region to this thread's malloc arena (10-20 times
       the body): given back now, not kept in an arena the next large body, on another
       connection's thread, does not use (four 7 MB exports one after another: 210 MiB) */
    if (bytes >= FR_PREPARE_TRIM_BYTES)
        malloc_trim(0);
}

size_t
fr_pipeline_preparing(void *ud)
{
    struct fr_pipeline *p = ud;
    int n = atomic_load(&p->preparing);
    return n > 0 ? (size_t)n : 0;
}

void
fr_pipeline_destroy(struct fr_pipeline *p)
{
    fr_readers_close(p->readers);
    fr_readers_close(p->query_readers);
    fr_store_close(p->health);
    fr_metrics_free(p->metrics);
    fr_otlp_metrics_state_free(p->otlp_metrics);
    fr_otlp_failures_free(p->otlp_failures);
    if (p->live != NULL)
        fr_live_free(p->live);
    fr_config_clear(&p->conf);
    OPENSSL_cleanse(&p->archive_keys, sizeof p->archive_keys);
    pthread_mutex_destroy(&p->live_mu);
    pthread_mutex_destroy(&p->commit_mu);
    pthread_mutex_destroy(&p->misnamed_mu);
    pthread_mutex_destroy(&p->health_mu);
    pthread_mutex_destroy(&p->otlp_mu);
    pthread_mutex_destroy(&p->prep_mu);
    pthread_mutex_destroy(&p->ship.mu);
    pthread_mutex_destroy(&p->bucket.mu);
    pthread_mutex_destroy(&p->retention_state.mu);
    pthread_cond_destroy(&p->prep_cv);
}

/* ---- live state ---- */

struct fr_live *
fr_pipeline_live_get(struct fr_pipeline *p)
{
    pthread_mutex_lock(&p->live_mu);
    struct fr_live *l = p->live;
    l->refs++;
    pthread_mutex_unlock(&p->live_mu);
    return l;
}

void
fr_pipeline_live_put(struct fr_pipeline *p, struct fr_live *l)
{
    pthread_mutex_lock(&p->live_mu);
    bool last = --l->refs == 0;
    pthread_mutex_unlock(&p->live_mu);
    if (last)
        fr_live_free(l);
}

void
fr_pipeline_live_swap(struct fr_pipeline *p, struct fr_live *l)
{
    pthread_mutex_lock(&p->live_mu);
    struct fr_live *old = p->live;
    p->live = l;
    pthread_mutex_unlock(&p->live_mu);
    if (old != NULL)
        fr_pipeline_live_put(p, old);
}

const struct fr_archive_keys *
fr_pipeline_archive_keys(const struct fr_pipeline *p)
{
    return &p->archive_keys;
}

/* ---- durable submit ---- */

/* Why a batch of n events was not queued (FR_E_BUSY: full now; FR_E_LIMIT: never fits). */
static void
pipeline_refusal(struct fr_pipeline *p, int rc, size_t n, struct fr_ack *ack)
{
    ack->rc = rc;
    if (rc == FR_E_LIMIT)
        fr_err_set(&ack->err, rc,
                   "%zu events in one request, over the ingest queue of %lld "
                   "(storage.queue_events): split it into smaller requests",
                   n, (long long)p->conf.queue_events);
    else
        fr_err_set(&ack->err, rc, "the ingest queue is full; retry shortly");
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct fr_batch b;
};

static void
waiter_done(struct fr_batch *b, void *ud)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    (void)b;
}

/* Submits recs (against a reservation when reserved > 0) and waits for the commit. */
static void
pipeline_submit(struct fr_pipeline *p, struct fr_record *recs, size_t n, bool wait, size_t reserved,
                const struct fr_trace_link *links, size_t nlinks, struct fr_ack *ack)
{
    struct waiter w = {.b = {.recs = recs,
                             .n = n,
                             .keep_records = true, /* the caller clears them (on its own thread) */
                             .links = links,
                             .nlinks = nlinks,
                             .done = waiter_done}};
    w.b.ud = &w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = FR_OK;
    double t0 = fr_mono_s();
    if (reserved > 0)
        fr_writer_submit_reserved(p->writer, &w.b, reserved);
    else
        rc = fr_writer_submit(p->writer, &w.b, wait);
    if (rc == FR_OK) {
        fr_metrics_queue(p->metrics, fr_writer_queued(p->writer));
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        fr_metrics_ingest_phase(p->metrics, "commit", fr_mono_s() - t0);
        ack->rc = w.b.rc;
        ack->duplicates = w.b.duplicates;
        ack->erased = w.b.erased;
        ack->err = w.b.err;
    } else {
        pipeline_refusal(p, rc, n, ack);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

void
fr_pipeline_submit(struct fr_pipeline *p, struct fr_record *recs, size_t n, bool wait,
                   struct fr_ack *ack)
{
    memset(ack, 0, sizeof *ack);
    if (n > 0)
        pipeline_submit(p, recs, n, wait, 0, NULL, 0, ack);
}

int
fr_pipeline_reserve(struct fr_pipeline *p, size_t n, bool wait, struct fr_ack *ack)
{
    memset(ack, 0, sizeof *ack);
    int rc = n > 0 ? fr_writer_reserve(p->writer, n, wait) : FR_OK;
    if (rc != FR_OK)
        pipeline_refusal(p, rc, n, ack);
    return rc;
}

int
fr_pipeline_admit(struct fr_pipeline *p, size_t body_bytes, size_t *reserved)
{
    size_t per = atomic_load(&p->body_bytes_per_event);
    size_t n = per > 0 ? body_bytes / per : 0;
    /* at most an eighth of the queue: an estimate from other producers' bodies (compressed,
       larger events) may be far too high, and must not make this one wait for an empty
       queue; the count decides the rest (and 413 for a request that never fits) */
    size_t cap = (size_t)p->conf.queue_events / 8 > 0 ? (size_t)p->conf.queue_events / 8 : 1;
    if (n > cap)
        n = cap;
    *reserved = 0;
    int rc = fr_writer_reserve_within(p->writer, n, 0);
    if (rc == FR_E_BUSY && p->conf.http_queue_wait_ms > 0) { /* counted while it waits */
        atomic_fetch_add(&p->queue_waiting, 1);
        /* in slices, so that a stopping agent does not wait for the whole of it */
        double until = fr_mono_s() + (double)p->conf.http_queue_wait_ms / 1000.0, left;
        while (rc == FR_E_BUSY && (left = until - fr_mono_s()) > 0 && !atomic_load(&p->stopping))
            rc = fr_writer_reserve_within(p->writer, n, left < 0.1 ? left : 0.1);
        atomic_fetch_sub(&p->queue_waiting, 1);
    }
    if (rc == FR_OK)
        *reserved = n;
    return rc;
}

void
fr_pipeline_learn(struct fr_pipeline *p, size_t bytes, size_t n)
{
    if (n == 0)
        return;
    size_t per = bytes / n > 0 ? bytes / n : 1, was = atomic_load(&p->body_bytes_per_event);
    /* a moving average over about eight bodies: one odd body moves it little */
    atomic_store(&p->body_bytes_per_event, was == 0 ? per : (7 * was + per) / 8);
}

int
fr_pipeline_rereserve(struct fr_pipeline *p, size_t had, size_t n, struct fr_ack *ack)
{
    memset(ack, 0, sizeof *ack);
    int rc = fr_writer_rereserve(p->writer, had, n);
    if (rc != FR_OK)
        pipeline_refusal(p, rc, n, ack);
    return rc;
}

void
fr_pipeline_unreserve(struct fr_pipeline *p, size_t n)
{
    if (n > 0)
        fr_writer_unreserve(p->writer, n);
}

bool
fr_pipeline_inflight_take(struct fr_pipeline *p, size_t *held, size_t n)
{
    size_t cap = (size_t)p->conf.http_max_inflight_bytes;
    size_t cur = atomic_load(&p->http_inflight);
    do {
        if (cur + n > cap && cur > *held)
            return false;
    } while (!atomic_compare_exchange_weak(&p->http_inflight, &cur, cur + n));
    *held += n;
    return true;
}

void
fr_pipeline_inflight_give(struct fr_pipeline *p, size_t *held)
{
    atomic_fetch_sub(&p->http_inflight, *held);
    *held = 0;
}

void
fr_pipeline_submit_reserved(struct fr_pipeline *p, struct fr_record *recs, size_t n,
                            size_t reserved, struct fr_ack *ack)
{
    fr_pipeline_submit_linked(p, recs, n, reserved, NULL, 0, ack);
}

void
fr_pipeline_submit_linked(struct fr_pipeline *p, struct fr_record *recs, size_t n, size_t reserved,
                          const struct fr_trace_link *links, size_t nlinks, struct fr_ack *ack)
{
    memset(ack, 0, sizeof *ack);
    if (n == 0 && nlinks == 0) {
        if (reserved > 0)
            fr_writer_unreserve(p->writer, reserved);
        return;
    }
    pipeline_submit(p, recs, n, false, reserved, links, nlinks, ack);
}

void
fr_pipeline_reject(struct fr_pipeline *p, json_t *errors, uint64_t line, const struct fr_err *e)
{
    fr_metrics_rejected(p->metrics, e->code);
    if (json_array_size(errors) < 100)
        json_array_append_new(errors,
                              json_pack("{s:I,s:s}", "line", (json_int_t)line, "error", e->msg));
}

/* ---- misnamed envelope fields ---- */

#define MISNAMED_WARN_EVERY_S 60

size_t
fr_pipeline_misnamed(struct fr_pipeline *p, const char *source, const struct fr_record *recs,
                     size_t n, json_t **warnings)
{
    uint64_t by_field[FR_WF_COUNT] = {0};
    const struct fr_record *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct fr_record *r = &recs[i];
        if (r->misnamed == NULL || r->misnamed_field < 0 || r->misnamed_field >= FR_WF_COUNT)
            continue;
        by_field[r->misnamed_field]++;
        if (first == NULL)
            first = r;
        if (*warnings == NULL)
            *warnings = json_array();
        if (json_array_size(*warnings) < 100) {
            char text[360];
            json_t *w = json_pack("{s:I,s:s}", "line", (json_int_t)r->line, "warning",
                                  fr_wire_warning_text(r->misnamed, r->misnamed_field, r->mended_at,
                                                       text, sizeof text));
            if (w != NULL && r->mended_at != NULL) /* where a value was mended: its path */
                json_object_set_new(w, "field", json_string(r->mended_at));
            json_array_append_new(*warnings, w);
        }
    }
    if (first == NULL)
        return 0;
    uint64_t total = 0;
    for (int f = 0; f < FR_WF_COUNT; f++) {
        if (by_field[f] > 0)
            fr_metrics_misnamed(p->metrics, fr_wire_field_name(f), by_field[f]);
        total += by_field[f];
    }
    pthread_mutex_lock(&p->misnamed_mu);
    double now = fr_mono_s();
    bool say = p->misnamed_said == 0 || now - p->misnamed_said >= MISNAMED_WARN_EVERY_S;
    uint64_t quiet = p->misnamed_quiet;
    if (say) {
        p->misnamed_said = now;
        p->misnamed_quiet = 0;
    } else {
        p->misnamed_quiet += total;
    }
    pthread_mutex_unlock(&p->misnamed_mu);
    if (!say)
        return (size_t)total;
    char text[360];
    fr_wire_warning_text(first->misnamed, first->misnamed_field, first->mended_at, text,
                         sizeof text);
    if (quiet > 0)
        fr_log(
            FR_LOG_WARN, source,
            "%llu event(s) stored with a warning (a misnamed or missing envelope field, a ts_ms "
            "ahead of the clock, a value kept in another form, a duration over a day), e.g. line "
            "%llu: %s (and %llu "
            "more in the last %d s; flightrec_events_misnamed_total)",
            (unsigned long long)total, (unsigned long long)first->line, text,
            (unsigned long long)quiet, MISNAMED_WARN_EVERY_S);
    else
        fr_log(
            FR_LOG_WARN, source,
            "%llu event(s) stored with a warning (a misnamed or missing envelope field, a ts_ms "
            "ahead of the clock, a value kept in another form, a duration over a day), e.g. line "
            "%llu: %s",
            (unsigned long long)total, (unsigned long long)first->line, text);
    return (size_t)total;
}

/* ---- health ---- */

void
fr_pipeline_commit_result(struct fr_pipeline *p, int rc, const struct fr_err *err)
{
    pthread_mutex_lock(&p->commit_mu);
    snprintf(p->commit_error, sizeof p->commit_error, "%s", rc == FR_OK ? "" : err->msg);
    p->commit_error_ms = fr_now_ms();
    pthread_mutex_unlock(&p->commit_mu);
}

int64_t
fr_pipeline_store_bytes(const struct fr_pipeline *p)
{
    int64_t total = 0;
    struct stat st;
    if (stat(p->conf.db_path, &st) == 0)
        total += st.st_size;
    char *wal = fr_asprintf("%s-wal", p->conf.db_path);
    if (stat(wal, &st) == 0)
        total += st.st_size;
    free(wal);
    return total;
}

struct bad_acc {
    char *detail;
    size_t len, n;
};

static int
bad_row(void *ud, const struct fr_manifest_row *r)
{
    struct bad_acc *a = ud;
    if (r->bad == NULL)
        return 0;
    size_t at = strlen(a->detail);
    const char *name = strrchr(r->path, '/');
    if (a->n < 3 && at + 1 < a->len)
        snprintf(a->detail + at, a->len - at, "%s%s (%s)", a->n ? "; " : "",
                 name ? name + 1 : r->path, r->bad);
    a->n++;
    return 0;
}

size_t
fr_pipeline_bad_segments(struct fr_pipeline *p, char *detail, size_t len)
{
    struct bad_acc a = {detail, len, 0};
    detail[0] = '\0';
    pthread_mutex_lock(&p->health_mu);
    fr_store_manifest(p->health, bad_row, &a, NULL);
    pthread_mutex_unlock(&p->health_mu);
    return a.n;
}

static int
ready_probe(void *ud, const struct fr_conv_row *r)
{
    (void)ud;
    (void)r;
    return 0;
}

void
fr_pipeline_set_paused(struct fr_pipeline *p, const char *why)
{
    pthread_mutex_lock(&p->commit_mu);
    snprintf(p->paused, sizeof p->paused, "%s", why ? why : "");
    pthread_mutex_unlock(&p->commit_mu);
}

bool
fr_pipeline_ready(struct fr_pipeline *p, char *why, size_t whylen)
{
    pthread_mutex_lock(&p->commit_mu);
    bool paused = p->paused[0] != '\0';
    if (paused)
        snprintf(why, whylen,
                 "ingest paused: %s; reads are served, and ingest resumes by itself once the "
                 "database can be written",
                 p->paused);
    pthread_mutex_unlock(&p->commit_mu);
    if (paused)
        return false;
    size_t q = fr_writer_queued(p->writer), cap = (size_t)p->conf.queue_events;
    if (q * 10 >= cap * 9) {
        snprintf(why, whylen, "ingest queue at %zu of %zu events", q, cap);
        return false;
    }
    /* a failed last commit counts for 30 s: long enough for probes to see it,
       and readiness comes back by itself when nothing was sent since */
    pthread_mutex_lock(&p->commit_mu);
    bool failing = p->commit_error[0] != '\0' && fr_now_ms() - p->commit_error_ms < 30000;
    if (failing)
        snprintf(why, whylen, "the last commit failed: %s", p->commit_error);
    pthread_mutex_unlock(&p->commit_mu);
    if (failing)
        return false;
    if (access(p->conf.db_path, W_OK) != 0) {
        snprintf(why, whylen, "database %s is not writable: %s", p->conf.db_path, strerror(errno));
        return false;
    }
    /* the probe's own connection: queries holding the read pool never delay it */
    struct fr_conv_filter f = {.limit = 1};
    struct fr_err err = {0};
    pthread_mutex_lock(&p->health_mu);
    int rc = fr_store_conversations(p->health, &f, ready_probe, NULL, &err);
    pthread_mutex_unlock(&p->health_mu);
    if (rc != FR_OK) {
        snprintf(why, whylen, "store: %s", err.msg);
        return false;
    }
    /* a bad segment costs only the reads that need it: ready, and said */
    char bad[400];
    size_t nbad = fr_pipeline_bad_segments(p, bad, sizeof bad);
    if (nbad > 0)
        snprintf(why, whylen,
                 "ok; archive: %zu bad segment(s), reads that need them are partial "
                 "(flightrec archive verify; archive quarantine NAME): %s",
                 nbad, bad);
    else
        snprintf(why, whylen, "ok");
    /* shipping behind or failing never stops ingest: said, not refused */
    pthread_mutex_lock(&p->ship.mu);
    if (p->ship.enabled && (p->ship.error[0] || p->ship.lag_ms >= 10000)) {
        size_t n = strlen(why);
        snprintf(why + n, whylen - n, "; ship: %.1f s behind%s%s", (double)p->ship.lag_ms / 1000,
                 p->ship.error[0] ? ", " : "", p->ship.error);
    }
    pthread_mutex_unlock(&p->ship.mu);
    /* nor does an archive bucket that is away: said, the segments stay local */
    pthread_mutex_lock(&p->bucket.mu);
    if (p->bucket.enabled && p->bucket.error[0]) {
        size_t n = strlen(why);
        snprintf(why + n, whylen - n, "; archive bucket: %lld segment(s) not uploaded, %s",
                 (long long)p->bucket.pending, p->bucket.error);
    }
    pthread_mutex_unlock(&p->bucket.mu);
    /* nor a disk under the floor: the oldest hot events leave early (agent/jobs.c) */
    pthread_mutex_lock(&p->retention_state.mu);
    if (p->retention_state.disk_low[0] != '\0') {
        size_t n = strlen(why);
        snprintf(why + n, whylen - n, "; disk: %s", p->retention_state.disk_low);
    }
    pthread_mutex_unlock(&p->retention_state.mu);
    return true;
}
