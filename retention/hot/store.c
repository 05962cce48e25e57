/*
 * retention/hot/store.c - the store handle: a descriptor (struct fr_store_ops) and
 * the context its open() created. Every call is a one-line dispatch.
 */
#include "retention/hot/store.h"

#include <stdlib.h>

#include "core/mem.h"

struct fr_store {
    const struct fr_store_ops *ops;
    void *ctx;
};

/* retention/hot/sqlite_int.h: the archive functions reach the one engine shipped */
struct sq_store;
struct sq_store *sq_of(struct fr_store *st);
struct sq_store *
sq_of(struct fr_store *st)
{
    return st->ctx;
}

void
fr_store_opts_default(struct fr_store_opts *opts)
{
    opts->create = true;
    opts->synchronous = 1;
    opts->busy_timeout_ms = 5000;
    opts->cache_kib = 16 * 1024;
}

int
fr_store_open(const char *path, const struct fr_store_opts *opts, struct fr_store **out,
              struct fr_err *err)
{
    struct fr_store_opts defaults;
    if (opts == NULL) {
        fr_store_opts_default(&defaults);
        opts = &defaults;
    }
    struct fr_store *st = fr_calloc(1, sizeof *st);
    st->ops = &fr_store_sqlite;
    int rc = st->ops->open(&st->ctx, path, opts, err);
    if (rc != FR_OK) {
        free(st);
        *out = NULL;
        return rc;
    }
    *out = st;
    return FR_OK;
}

void
fr_store_close(struct fr_store *st)
{
    if (st == NULL)
        return;
    st->ops->close(st->ctx);
    free(st);
}

int
fr_store_begin(struct fr_store *st, struct fr_err *err)
{
    return st->ops->begin(st->ctx, err);
}

int
fr_store_put(struct fr_store *st, const struct fr_record *rec, int64_t ingested_ms, bool *inserted,
             struct fr_err *err)
{
    return st->ops->put(st->ctx, rec, ingested_ms, inserted, err);
}

int
fr_store_commit(struct fr_store *st, struct fr_err *err)
{
    return st->ops->commit(st->ctx, err);
}

void
fr_store_rollback(struct fr_store *st)
{
    st->ops->rollback(st->ctx);
}

int
fr_store_conversations(struct fr_store *st, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                       struct fr_err *err)
{
    return st->ops->conversations(st->ctx, f, cb, ud, err);
}

int
fr_store_conversation(struct fr_store *st, const char *conv_id, fr_conv_cb cb, void *ud,
                      struct fr_err *err)
{
    return st->ops->conversation(st->ctx, conv_id, cb, ud, err);
}

int
fr_store_events(struct fr_store *st, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                struct fr_err *err)
{
    return st->ops->events(st->ctx, f, cb, ud, err);
}

int
fr_store_rollups(struct fr_store *st, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
                 struct fr_err *err)
{
    return st->ops->rollups(st->ctx, f, cb, ud, err);
}

int
fr_store_anomalies(struct fr_store *st, const char *conv_id, int64_t since_ms, fr_anomaly_cb cb,
                   void *ud, struct fr_err *err)
{
    return st->ops->anomalies(st->ctx, conv_id, since_ms, cb, ud, err);
}

int
fr_store_error_groups(struct fr_store *st, const struct fr_event_filter *f, const char *by,
                      fr_error_group_cb cb, void *ud, struct fr_err *err)
{
    return st->ops->error_groups(st->ctx, f, by, cb, ud, err);
}

int
fr_store_policy(struct fr_store *st, const char *id, const char *json, int64_t now_ms,
                struct fr_err *err)
{
    return st->ops->policy(st->ctx, id, json, now_ms, err);
}
