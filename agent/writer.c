/*
 * agent/writer.c - see writer.h.
 *
 * Invariants: `queued` is the sum of n over the batches in the queue plus
 * those being committed; a batch's done() is called exactly once, after its
 * transaction has committed or failed.
 */
#include "agent/writer.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/ticker.h"
#include "core/timeutil.h"

struct fr_writer {
    struct fr_store *store;
    size_t max_queued, max_txn;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct fr_batch *head, *tail;
    size_t queued; /* queued, being committed, or reserved (fr_writer_reserve) */
    size_t peak;   /* the most queued since the queue last ran empty */
    bool stopping;
    bool committing; /* the writer thread is in a transaction */
    pthread_t thread;
    struct fr_record *txn; /* the writer thread's scratch: records of one transaction */
    size_t txn_cap;
    struct fr_trace_link *links; /* the links of the batches of one transaction */
    size_t links_cap;
    fr_writer_observer observer;
    void *observer_ud;
    fr_writer_preparing preparing; /* producers preparing batches now: a small transaction
                                      waits a moment for theirs (writer_gather) */
    void *preparing_ud;
    int gather_ms;           /* the most a small transaction waits for them */
    int delay_ms;            /* storage.commit_delay_ms: it waits this long for anyone's */
    fr_writer_reopen reopen; /* while store is NULL */
    void *reopen_ud;
    double reopen_at; /* monotonic seconds of the last attempt */
    struct fr_err reopen_err;
    struct fr_store_wal_stats wal; /* as of the latest commit */
    /* commits failing in a row (the writer thread's own): said at the first, then once every
       FAIL_SAY_EVERY_S while they go on, and when one succeeds again */
    uint64_t failing, failing_events;
    double failing_since, failing_said;
};

#define FAIL_SAY_EVERY_S 30
/* A transaction of fewer events than this waits a moment for the batches of producers
   preparing theirs now (writer_gather) */
#define WRITER_GATHER_EVENTS 256

/* The store, opened again if the writer has none yet (rate-limited); NULL with *err set. */
static struct fr_store *
writer_store(struct fr_writer *w, struct fr_err *err)
{
    if (w->store == NULL && w->reopen != NULL && fr_mono_s() - w->reopen_at >= 1.0) {
        w->reopen_at = fr_mono_s();
        struct fr_store *st = NULL;
        fr_err_clear(&w->reopen_err);
        if (w->reopen(w->reopen_ud, &st, &w->reopen_err) == FR_OK) {
            pthread_mutex_lock(&w->mu); /* writer_pack reads it on the producers' threads */
            w->store = st;
            pthread_mutex_unlock(&w->mu);
        }
    }
    if (w->store == NULL)
        *err = w->reopen_err;
    return w->store;
}

/* Takes the queued batches, in order, whose events fit in room (with first, at least one
   batch, whatever its size); NULL when the first does not fit. */
static struct fr_batch *
writer_take(struct fr_writer *w, size_t room, bool first, size_t *events)
{
    struct fr_batch *head = w->head, *last = NULL;
    size_t n = 0;
    for (struct fr_batch *b = w->head; b != NULL; b = b->next) {
        if ((last != NULL || !first) && n + b->n > room)
            break;
        n += b->n;
        last = b;
    }
    *events = n;
    if (last == NULL)
        return NULL;
    w->head = last->next;
    if (w->head == NULL)
        w->tail = NULL;
    last->next = NULL;
    return head;
}

/*
 * A small transaction (events one or a few per request, each request its own transaction
 * otherwise) waits, under w->mu, at most gather_ms for the batches of the producers
 * preparing theirs right now, and takes them too: a transaction writes every page it touches
 * whole into the WAL (~12 pages for one event), so one transaction of several requests writes
 * several times less than one each. Nothing waits when no producer is preparing (a lone
 * client posting one event at a time is answered as soon as its own commit is done), unless
 * a commit delay is set (storage.commit_delay_ms): then it waits that long for anyone's.
 */
static void
writer_gather(struct fr_writer *w, struct fr_batch *list, size_t *events)
{
    if ((w->preparing == NULL && w->delay_ms <= 0) || *events >= WRITER_GATHER_EVENTS)
        return;
    struct fr_batch *tail = list;
    while (tail->next != NULL)
        tail = tail->next;
    struct timespec until = fr_deadline_ms(w->delay_ms > w->gather_ms ? w->delay_ms : w->gather_ms);
    while (*events < WRITER_GATHER_EVENTS && !w->stopping) {
        /* asked every time (a commit delay waits whatever it says) */
        size_t busy = w->preparing != NULL ? w->preparing(w->preparing_ud) : 0;
        if (busy == 0 && w->delay_ms <= 0)
            break;
        if (w->head == NULL && pthread_cond_timedwait(&w->not_empty, &w->mu, &until) == ETIMEDOUT &&
            w->head == NULL)
            break;
        if (w->head == NULL)
            continue; /* woken for nothing */
        size_t n;
        struct fr_batch *more = writer_take(w, w->max_txn - *events, false, &n);
        if (more == NULL)
            break; /* the next batch does not fit in this transaction: it goes in the next */
        tail->next = more;
        while (tail->next != NULL)
            tail = tail->next;
        *events += n;
    }
}

/*
 * The log's account of failing commits: a full disk or a broken store fails
 * every commit while producers retry, and a line per commit would flood the
 * log (on that same disk, often) with one message. The first failure is said
 * at once, then one line every FAIL_SAY_EVERY_S while they go on, with how
 * many, and the first commit that succeeds after them ends the outage.
 */
static void
writer_say(struct fr_writer *w, int rc, size_t events, const struct fr_err *err)
{
    if (rc == FR_OK && w->failing == 0) /* every commit but an outage's: no clock read */
        return;
    double now = fr_mono_s();
    if (rc == FR_OK) {
        fr_log(FR_LOG_WARN, "writer",
               "commits succeed again, after %llu failed in a row over %.0f s (%llu events "
               "refused then; their producers were told to retry)",
               (unsigned long long)w->failing, now - w->failing_since,
               (unsigned long long)w->failing_events);
        w->failing = w->failing_events = 0;
        return;
    }
    if (w->failing++ == 0) {
        w->failing_since = w->failing_said = now;
        fr_log(FR_LOG_ERROR, "writer",
               "commit of %zu events failed: %s (refused, their producers told to retry; while "
               "commits go on failing this is said every %d s)",
               events, err->msg, FAIL_SAY_EVERY_S);
    } else if (now - w->failing_said >= FAIL_SAY_EVERY_S) {
        w->failing_said = now;
        fr_log(FR_LOG_ERROR, "writer",
               "commits still failing: %llu in a row over %.0f s (%llu events refused), the "
               "latest: %s",
               (unsigned long long)w->failing, now - w->failing_since,
               (unsigned long long)(w->failing_events + events), err->msg);
    }
    w->failing_events += events;
}

static void
writer_commit(struct fr_writer *w, struct fr_batch *list, size_t events)
{
    /* the store takes an array; gather the batches' records (moved, not copied) */
    if (events > w->txn_cap) {
        w->txn_cap = events;
        w->txn = fr_realloc(w->txn, events * sizeof *w->txn);
    }
    size_t k = 0, nlinks = 0;
    for (struct fr_batch *b = list; b != NULL; b = b->next) {
        for (size_t i = 0; i < b->n; i++)
            w->txn[k++] = b->recs[i];
        nlinks += b->nlinks;
    }
    if (nlinks > w->links_cap) {
        w->links_cap = nlinks;
        w->links = fr_realloc(w->links, nlinks * sizeof *w->links);
    }
    nlinks = 0;
    for (struct fr_batch *b = list; b != NULL; b = b->next)
        for (size_t i = 0; i < b->nlinks; i++)
            w->links[nlinks++] = b->links[i];
    struct fr_err err = {0};
    size_t dups = 0;
    double t0 = fr_mono_s();
    int rc;
    if (writer_store(w, &err) == NULL) {
        rc = err.code ? err.code : FR_E_STORE; /* said at start and by /readyz: not per batch */
        if (err.code == 0)
            fr_err_set(&err, rc, "the database cannot be opened for writing");
    } else {
        rc = fr_ingest_commit_linked(w->store, w->txn, events, w->links, nlinks, fr_now_ms(), &dups,
                                     &err);
        writer_say(w, rc, events, &err);
        struct fr_store_wal_stats wal;
        fr_store_wal_stats(w->store, &wal);
        pthread_mutex_lock(&w->mu);
        w->wal = wal;
        pthread_mutex_unlock(&w->mu);
    }
    if (w->observer != NULL)
        w->observer(w->observer_ud, w->txn, events, rc, &err, fr_mono_s() - t0);
    /* each batch is told its own duplicates (a producer's retry), not another's */
    size_t at = 0;
    for (struct fr_batch *b = list; b != NULL; b = b->next) {
        b->duplicates = b->erased = 0;
        for (size_t i = 0; i < b->n; i++, at++) {
            b->duplicates += rc == FR_OK && w->txn[at].duplicate;
            b->erased += rc == FR_OK && w->txn[at].erased;
        }
        if (b->erased > 0)
            fr_log(FR_LOG_WARN, "writer",
                   "%zu events of erased conversations refused (docs/security.md, Erasure)",
                   b->erased);
    }
    (void)dups;
    for (struct fr_batch *b = list, *next; b != NULL; b = next) {
        next = b->next;
        /* FR_E_BUSY means "queue full" to callers; a database lock held too long
           is a store failure (503 with its reason), not backpressure */
        b->rc = rc == FR_E_BUSY ? FR_E_STORE : rc;
        b->err = err;
        for (size_t i = 0; !b->keep_records && i < b->n; i++)
            fr_record_clear(&b->recs[i]); /* w->txn holds copies: not used again */
        size_t n = b->n;
        /* the room is given back before the answer: a producer that sends again as soon
           as it is acknowledged must find it (it was refused 429 now and then) */
        pthread_mutex_lock(&w->mu);
        w->queued -= n;
        bool trim = w->queued == 0 && w->peak >= w->max_queued / 4;
        if (w->queued == 0)
            w->peak = 0;
        pthread_cond_broadcast(&w->not_full);
        pthread_mutex_unlock(&w->mu);
        b->done(b, b->ud); /* may free the batch */
        /* after a burst, give the memory its records held back to the system: glibc keeps
           freed heap otherwise, and a sidecar's footprint is what its host sees */
        if (trim)
            malloc_trim(0);
    }
}

static void *
writer_main(void *arg)
{
    struct fr_writer *w = arg;
    pthread_setname_np(pthread_self(), "fr-writer");
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->not_empty, &w->mu);
        if (w->head == NULL && w->stopping)
            break;
        size_t events;
        struct fr_batch *list = writer_take(w, w->max_txn, true, &events);
        writer_gather(w, list, &events);
        w->committing = true;
        pthread_mutex_unlock(&w->mu);
        writer_commit(w, list, events);
        pthread_mutex_lock(&w->mu);
        w->committing = false;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct fr_writer *
fr_writer_new(struct fr_store *st, size_t max_queued_events, size_t max_txn_events)
{
    struct fr_writer *w = fr_calloc(1, sizeof *w);
    w->store = st;
    w->max_queued = max_queued_events;
    w->max_txn = max_txn_events;
    pthread_mutex_init(&w->mu, NULL);
    fr_cond_init_monotonic(&w->not_empty); /* writer_gather's wait */
    fr_cond_init_monotonic(&w->not_full);  /* fr_writer_reserve_within's wait */
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        fr_log(FR_LOG_ERROR, "writer", "cannot start the writer thread");
        abort();
    }
    return w;
}

void
fr_writer_set_reopen(struct fr_writer *w, fr_writer_reopen fn, void *ud)
{
    w->reopen = fn;
    w->reopen_ud = ud;
}

void
fr_writer_set_preparing(struct fr_writer *w, fr_writer_preparing fn, void *ud, int wait_ms)
{
    w->preparing = fn;
    w->preparing_ud = ud;
    w->gather_ms = wait_ms;
}

void
fr_writer_set_commit_delay(struct fr_writer *w, int ms)
{
    w->delay_ms = ms;
}

void
fr_writer_observe(struct fr_writer *w, fr_writer_observer fn, void *ud)
{
    w->observer = fn;
    w->observer_ud = ud;
}

/* Waits (or not) until n more events fit; under w->mu. */
static int
writer_room(struct fr_writer *w, size_t n, bool wait, const struct timespec *until)
{
    if (n > w->max_queued)
        return FR_E_LIMIT;
    while (w->queued + n > w->max_queued) {
        if (!wait)
            return FR_E_BUSY;
        if (until == NULL)
            pthread_cond_wait(&w->not_full, &w->mu);
        else if (pthread_cond_timedwait(&w->not_full, &w->mu, until) != 0 &&
                 w->queued + n > w->max_queued)
            return FR_E_BUSY; /* the deadline passed */
    }
    return FR_OK;
}

static void
writer_enqueue(struct fr_writer *w, struct fr_batch *b)
{
    b->next = NULL;
    if (w->tail != NULL)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
    if (w->queued > w->peak)
        w->peak = w->queued;
    pthread_cond_signal(&w->not_empty);
}

/* The store's share of the work done on the producer's thread, before the batch is queued
   (fr_store_pack), when the writer is the slower side: the batch will wait for it (it is in a
   transaction, or batches are queued). When it is idle, it has time to spare and does that
   itself, and the producer goes on sooner (one reader of `flightrec ingest` feeding the
   writer is the slower of the two). */
static void
writer_pack(struct fr_writer *w, struct fr_batch *b)
{
    pthread_mutex_lock(&w->mu);
    struct fr_store *st = w->store; /* set once (reopened), closed after the producers stop */
    bool behind = w->committing || w->head != NULL;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; st != NULL && behind && i < b->n; i++)
        fr_store_pack(st, &b->recs[i]);
}

int
fr_writer_submit(struct fr_writer *w, struct fr_batch *b, bool wait)
{
    writer_pack(w, b);
    pthread_mutex_lock(&w->mu);
    int rc = writer_room(w, b->n, wait, NULL);
    if (rc == FR_OK) {
        w->queued += b->n;
        writer_enqueue(w, b);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int
fr_writer_reserve(struct fr_writer *w, size_t n, bool wait)
{
    pthread_mutex_lock(&w->mu);
    int rc = writer_room(w, n, wait, NULL);
    if (rc == FR_OK)
        w->queued += n;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int
fr_writer_reserve_within(struct fr_writer *w, size_t n, double wait_s)
{
    struct timespec until = fr_deadline_ms((int64_t)(wait_s * 1000.0));
    pthread_mutex_lock(&w->mu);
    int rc = writer_room(w, n > 0 ? n : 1, wait_s > 0, &until);
    if (rc == FR_OK)
        w->queued += n;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int
fr_writer_rereserve(struct fr_writer *w, size_t had, size_t n)
{
    pthread_mutex_lock(&w->mu);
    int rc = n > w->max_queued                                  ? FR_E_LIMIT
             : n > had && w->queued + (n - had) > w->max_queued ? FR_E_BUSY
                                                                : FR_OK;
    w->queued = w->queued - had + (rc == FR_OK ? n : 0);
    if (rc != FR_OK || n < had)
        pthread_cond_broadcast(&w->not_full);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void
fr_writer_unreserve(struct fr_writer *w, size_t n)
{
    pthread_mutex_lock(&w->mu);
    w->queued -= n;
    pthread_cond_broadcast(&w->not_full);
    pthread_mutex_unlock(&w->mu);
}

void
fr_writer_submit_reserved(struct fr_writer *w, struct fr_batch *b, size_t reserved)
{
    writer_pack(w, b);
    pthread_mutex_lock(&w->mu);
    /* the batch holds at most what was reserved (rejected envelopes are not queued) */
    w->queued -= reserved - b->n;
    if (b->n < reserved)
        pthread_cond_broadcast(&w->not_full);
    writer_enqueue(w, b);
    pthread_mutex_unlock(&w->mu);
}

size_t
fr_writer_queued(struct fr_writer *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->queued;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void
fr_writer_wal_stats(struct fr_writer *w, struct fr_store_wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->wal;
    pthread_mutex_unlock(&w->mu);
}

void
fr_writer_free(struct fr_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->not_empty);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->not_empty);
    pthread_cond_destroy(&w->not_full);
    free(w->txn);
    free(w->links);
    free(w);
}
