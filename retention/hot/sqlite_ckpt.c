/*
 * retention/hot/sqlite_ckpt.c - WAL checkpoints off the writer's thread.
 *
 * SQLite's default copies the WAL back into the database inside the commit
 * that makes it pass 1,000 pages: the writer thread then also writes those
 * pages again and waits for the fsync of the database file, while every
 * producer waits for its acknowledgement. Measured on the ingest path
 * (docs/storage.md, "Checkpoints"), that took a third of the writer's time.
 *
 * A store opened with fr_store_opts.background_checkpoint instead installs
 * a WAL hook on its connection: past SQ_CKPT_SOFT_BYTES of WAL (16 MB: 4,000
 * pages of 4 KiB, not SQLite's 1,000 pages: a page rewritten by several
 * commits is copied back once per pass)
 * it wakes a thread of its own, which runs PASSIVE checkpoints through a
 * second connection (they take no lock a writer or reader waits for); then
 * again each SQ_CKPT_STEP_BYTES (4 MB) more, not after every commit: each
 * pass syncs the WAL and the database, and transactions of one event each
 * had it run after nearly every one of them. A WAL
 * restarts from its beginning only when a checkpoint has copied all of it
 * before the next write begins, which a thread racing a busy writer may not
 * manage; so past SQ_CKPT_HARD_BYTES (32 MB) the writer waits for the
 * thread's pass and finishes the copy itself, as SQLite's default would have
 * done all along. The WAL file thus stays under SQ_CKPT_HARD_BYTES plus one
 * transaction, whatever the database's page size.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/ticker.h"
#include "retention/hot/sqlite_int.h"

struct sq_ckpt {
    sqlite3 *db; /* the thread's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    bool want, running, stop;
    atomic_uint_least64_t background, writer; /* checkpoints run, by thread */
    atomic_int frames;                        /* WAL pages after the latest commit */
    atomic_uint_least64_t commits;            /* the writer's, counted by the hook */
    int soft, hard, step; /* the bounds and the pages between passes, in pages of this database */
    int asked;            /* the writer's own: WAL pages when it last asked for a pass */
    int idle_ms;          /* the writer idle this long: the thread finishes a copy (< 0 never) */
    int last_rc;          /* the latest failure said, not repeated */
};

/* After each commit on the writer's connection (SQLite's WAL hook). */
static int
ckpt_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    struct sq_ckpt *c = ud;
    atomic_store(&c->frames, frames);
    atomic_fetch_add(&c->commits, 1);
    if (frames < c->asked) /* the WAL started again from its beginning */
        c->asked = 0;
    if (frames < c->soft || (frames < c->hard && frames - c->asked < c->step))
        return SQLITE_OK;
    pthread_mutex_lock(&c->mu);
    if (frames < c->hard) {
        c->asked = frames;
        c->want = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        return SQLITE_OK;
    }
    c->want = false; /* the writer finishes this one: no new pass starts meanwhile */
    while (c->running)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    int log = 0;
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, NULL);
    atomic_fetch_add(&c->writer, 1);
    atomic_store(&c->frames, log);
    return SQLITE_OK;
}

/*
 * The thread: a pass when a commit asks for one; and, after a pass that left
 * frames behind (the writer went on meanwhile), another once the writer has
 * committed nothing for idle_ms (SQ_CKPT_IDLE_MS): that one copies the rest, and the
 * next write starts the WAL again from its beginning instead of growing it
 * to the writer's bound (passes come only every SQ_CKPT_STEP_BYTES now, so
 * the thread rarely catches up by itself while the writer is busy).
 */
static void *
ckpt_main(void *arg)
{
    struct sq_ckpt *c = arg;
    bool behind = false; /* the latest pass left frames not copied */
    bool idle = false;   /* this pass is the thread's own, the writer idle */
    int copied = -1;     /* frames copied as of the latest pass */
    int wait_ms = c->idle_ms;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->want && !c->stop && behind && c->idle_ms > 0) {
            uint64_t seen = atomic_load(&c->commits);
            struct timespec until = fr_deadline_ms(wait_ms);
            while (!c->want && !c->stop &&
                   pthread_cond_timedwait(&c->wake, &c->mu, &until) != ETIMEDOUT)
                ;
            if (!c->want && !c->stop && atomic_load(&c->commits) == seen)
                c->want = idle = true; /* the writer is idle: finish the copy */
        }
        while (!c->want && !c->stop)
            pthread_cond_wait(&c->wake, &c->mu);
        if (c->stop)
            break;
        c->want = false;
        c->running = true;
        pthread_mutex_unlock(&c->mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* SQLITE_BUSY: another checkpoint (retention's, erasure's) runs; the next commit asks
           again. Anything else is said once: the writer's own pass bounds the WAL anyway */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != c->last_rc)
            fr_log(FR_LOG_WARN, "store",
                   "background WAL checkpoint failed: %s; the writer checkpoints past %d pages",
                   sqlite3_errmsg(c->db), c->hard);
        c->last_rc = rc;
        /* a reader's snapshot may keep a pass from copying it all: an idle pass that got no
           further waits twice as long before the next (up to SQ_CKPT_IDLE_MAX_MS) */
        behind = rc == SQLITE_OK && done < log;
        if (!idle || done > copied)
            wait_ms = c->idle_ms;
        else if (wait_ms < SQ_CKPT_IDLE_MAX_MS)
            wait_ms = 2 * wait_ms < SQ_CKPT_IDLE_MAX_MS ? 2 * wait_ms : SQ_CKPT_IDLE_MAX_MS;
        copied = done;
        idle = false;
        pthread_mutex_lock(&c->mu);
        c->running = false;
        if (rc == SQLITE_OK)
            atomic_fetch_add(&c->background, 1);
        pthread_cond_broadcast(&c->idle);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int
sq_ckpt_start(struct sq_store *s, const char *path, const struct fr_store_opts *opts,
              struct fr_err *err)
{
    struct sq_ckpt *c = fr_calloc(1, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /* the checkpoint syncs as the writer's setting says; a first read puts the connection
       in WAL mode (a checkpoint on a connection that never read is a no-op) */
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s; SELECT count(*) FROM sqlite_schema",
             sq_sync_name(opts->synchronous));
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        fr_err_set(err, FR_E_STORE, "opening the checkpoint connection: %s",
                   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        free(c);
        return FR_E_STORE;
    }
    int64_t page = sq_pragma_int(c->db, "PRAGMA page_size");
    if (page <= 0)
        page = SQ_PAGE_SIZE;
    c->soft = (int)(SQ_CKPT_SOFT_BYTES / page);
    c->hard = (int)(SQ_CKPT_HARD_BYTES / page);
    c->step = (int)(SQ_CKPT_STEP_BYTES / page);
    c->idle_ms = opts->checkpoint_idle_ms == 0 ? SQ_CKPT_IDLE_MS : opts->checkpoint_idle_ms;
    pthread_mutex_init(&c->mu, NULL);
    fr_cond_init_monotonic(&c->wake); /* ckpt_main's wait for an idle writer */
    pthread_cond_init(&c->idle, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->wake);
        pthread_cond_destroy(&c->idle);
        sqlite3_close(c->db);
        free(c);
        return fr_err_set(err, FR_E_STORE, "cannot start the checkpoint thread");
    }
    s->ckpt = c;
    sqlite3_wal_hook(s->db, ckpt_hook, c); /* replaces SQLite's checkpoint at 1,000 pages */
    return FR_OK;
}

void
sq_ckpt_stop(struct sq_store *s)
{
    struct sq_ckpt *c = s->ckpt;
    if (c == NULL)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->idle);
    free(c);
    s->ckpt = NULL;
}

void
sq_ckpt_stats(void *ctx, struct fr_store_wal_stats *out)
{
    const struct sq_ckpt *c = ((const struct sq_store *)ctx)->ckpt;
    *out = (struct fr_store_wal_stats){0};
    if (c == NULL)
        return;
    out->background = c->background;
    out->writer = c->writer;
    out->frames = c->frames;
}
