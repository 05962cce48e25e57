/*
 * agent/readers.c - see readers.h. A fixed array of connections and a
 * free-list bitmap under one mutex; waiters sleep on a condition variable.
 */
#include "agent/readers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/mem.h"

struct fr_readers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n;
    struct fr_store **conns; /* n, owned */
    bool *busy;              /* n, under mu */
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

struct fr_store *
fr_readers_acquire(struct fr_readers *r)
{
    pthread_mutex_lock(&r->mu);
    for (;;) {
        for (size_t i = 0; i < r->n; i++) {
            if (!r->busy[i]) {
                r->busy[i] = true;
                pthread_mutex_unlock(&r->mu);
                return r->conns[i];
            }
        }
        pthread_cond_wait(&r->cv, &r->mu);
    }
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
    free(r);
}
