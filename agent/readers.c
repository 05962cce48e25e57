/*
 * agent/readers.c - see readers.h. A fixed array of connections and a
 * free-list bitmap under one mutex; waiters sleep on a condition variable.
 */
#include "agent/readers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"

struct fr_readers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n;
    struct fr_store **conns; /* n, owned */
    bool *busy;              /* n, under mu */
    unsigned *gen;           /* n, under mu: the generation each connection was opened in */
    unsigned want;           /* under mu: connections of an older generation are reopened */
    char *path;              /* under mu: where and how to reopen */
    struct fr_store_opts opts;
};

int
fr_readers_open(const char *path, const struct fr_store_opts *opts, size_t n,
                struct fr_readers **out, struct fr_err *err)
{
    *out = NULL;
    if (n == 0)
        n = 1;
    struct fr_readers *r = fr_calloc(1, sizeof *r);
    r->conns = fr_calloc(n, sizeof *r->conns);
    r->busy = fr_calloc(n, sizeof *r->busy);
    r->gen = fr_calloc(n, sizeof *r->gen);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    for (size_t i = 0; i < n; i++) {
        int rc = fr_store_open(path, opts, &r->conns[i], err);
        r->n = i + (rc == FR_OK);
        if (rc != FR_OK) {
            fr_readers_close(r);
            return rc;
        }
    }
    *out = r;
    return FR_OK;
}

/* Replaces connection i (taken by the caller) by one opened as the last refresh asked. */
static void
readers_reopen(struct fr_readers *r, size_t i)
{
    struct fr_store *st = NULL;
    struct fr_err err = {0};
    if (fr_store_open(r->path, &r->opts, &st, &err) != FR_OK) {
        fr_log(FR_LOG_WARN, "readers", "cannot reopen a read connection: %s", err.msg);
        return; /* the old one keeps serving; the next acquire tries again */
    }
    fr_store_close(r->conns[i]);
    r->conns[i] = st;
    r->gen[i] = r->want;
}

void
fr_readers_refresh(struct fr_readers *r, const char *path, const struct fr_store_opts *opts)
{
    pthread_mutex_lock(&r->mu);
    free(r->path);
    r->path = fr_strdup(path);
    r->opts = *opts;
    r->want++;
    pthread_mutex_unlock(&r->mu);
}

/* Waits for a free slot, marks it taken and returns its index (mu held on return). */
static size_t
readers_slot(struct fr_readers *r)
{
    pthread_mutex_lock(&r->mu);
    for (;;) {
        for (size_t i = 0; i < r->n; i++) {
            if (!r->busy[i]) {
                r->busy[i] = true;
                if (r->gen[i] != r->want) /* taken, so no one else uses it meanwhile */
                    readers_reopen(r, i);
                return i;
            }
        }
        pthread_cond_wait(&r->cv, &r->mu);
    }
}

struct fr_store *
fr_readers_acquire(struct fr_readers *r)
{
    size_t i = readers_slot(r);
    struct fr_store *st = r->conns[i];
    pthread_mutex_unlock(&r->mu);
    return st;
}

void
fr_readers_release(struct fr_readers *r, struct fr_store *st)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        if (r->conns[i] == st) {
            r->busy[i] = false;
            break;
        }
    }
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

struct fr_readers *
fr_readers_open_lazy(const char *path, const struct fr_store_opts *opts, size_t n)
{
    struct fr_readers *r = fr_calloc(1, sizeof *r);
    r->n = n > 0 ? n : 1;
    r->conns = fr_calloc(r->n, sizeof *r->conns);
    r->busy = fr_calloc(r->n, sizeof *r->busy);
    r->gen = fr_calloc(r->n, sizeof *r->gen);
    r->path = fr_strdup(path);
    r->opts = *opts;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return r;
}

struct fr_store *
fr_readers_take(struct fr_readers *r, struct fr_err *err)
{
    size_t i = readers_slot(r);
    struct fr_store *st = r->conns[i];
    if (st != NULL) {
        pthread_mutex_unlock(&r->mu);
        return st;
    }
    /* the slot holds no connection yet: open it outside the lock (it may take seconds) */
    char *path = fr_strdup(r->path);
    struct fr_store_opts opts = r->opts;
    pthread_mutex_unlock(&r->mu);
    int rc = fr_store_open(path, &opts, &st, err);
    free(path);
    pthread_mutex_lock(&r->mu);
    if (rc == FR_OK) {
        r->conns[i] = st;
    } else {
        r->busy[i] = false;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return rc == FR_OK ? st : NULL;
}

void
fr_readers_give(struct fr_readers *r, struct fr_store *st, bool broken)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        if (r->conns[i] == st) {
            if (broken)
                r->conns[i] = NULL;
            r->busy[i] = false;
            break;
        }
    }
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (broken)
        fr_store_close(st);
}

void
fr_readers_close(struct fr_readers *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        fr_store_close(r->conns[i]);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->conns);
    free(r->busy);
    free(r->gen);
    free(r->path);
    free(r);
}
