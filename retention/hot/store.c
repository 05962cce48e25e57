/*
 * retention/hot/store.c - the store handle: a descriptor (struct fr_store_ops) and
 * the context its open() created. Every call is a one-line dispatch.
 */
#include "retention/hot/store.h"

#include "retention/hot/archive.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct fr_store {
    const struct fr_store_ops *ops;
    void *ctx;
};

/* A slot the backend leaves NULL (store.h): what it does not do, said plainly. */
static int
store_unsupported(const struct fr_store *st, const char *what, struct fr_err *err)
{
    return fr_err_set(err, FR_E_INVALID, "%s: not something the %s store does", what,
                      st->ops->name);
}

void
fr_store_opts_default(struct fr_store_opts *opts)
{
    /* every field set: one added later is off, never what the stack held */
    *opts = (struct fr_store_opts){.create = true,
                                   .synchronous = 1,
                                   .busy_timeout_ms = 5000,
                                   .cache_kib = 4 * 1024,
                                   .compress_bodies = true};
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
    const struct fr_store_ops *ops = fr_store_backend_for(path);
    if (ops == NULL) {
        *out = NULL;
        return fr_err_set(err, FR_E_CONFIG,
                          "%.*s: no store backend for this scheme (known: a file path, "
                          "postgres://)",
                          (int)strcspn(path, ":"), path);
    }
    struct fr_store *st = fr_calloc(1, sizeof *st);
    st->ops = ops;
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

void
fr_store_pack(struct fr_store *st, struct fr_record *rec)
{
    if (st->ops->pack != NULL && !rec->part && rec->packed == NULL)
        st->ops->pack(st->ctx, rec);
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
fr_store_count_events(struct fr_store *st, const struct fr_event_filter *f, int64_t *n,
                      struct fr_err *err)
{
    return st->ops->count_events(st->ctx, f, n, err);
}

int
fr_store_events_page(struct fr_store *st, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                     int64_t *total, struct fr_err *err)
{
    int rc = fr_store_count_events(st, f, total, err);
    struct fr_event_filter page = *f;
    if (page.offset < 0) /* the last ones */
        page.offset = *total + page.offset > 0 ? *total + page.offset : 0;
    if (rc != FR_OK || (*total > 0 && page.offset >= *total))
        return rc;
    return fr_store_events(st, &page, cb, ud, err);
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
    if (st->ops->anomalies == NULL)
        return FR_OK;
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
    if (st->ops->policy == NULL)
        return store_unsupported(st, "policy", err);
    return st->ops->policy(st->ctx, id, json, now_ms, err);
}

/* ---- what retention needs (archive.h) ---- */

int
fr_store_due(struct fr_store *st, const int64_t cutoff[FR_KIND_COUNT], int64_t hold_id,
             int64_t grace_ms, int64_t after_ts, int64_t after_id, int limit, fr_event_cb cb,
             void *ud, struct fr_err *err)
{
    if (st->ops->due == NULL)
        return store_unsupported(st, "due", err);
    return st->ops->due(st->ctx, cutoff, hold_id, grace_ms, after_ts, after_id, limit, cb, ud, err);
}

int
fr_store_ship_hold_set(struct fr_store *st, int64_t id, struct fr_err *err)
{
    if (st->ops->ship_hold_set == NULL)
        return store_unsupported(st, "a shipping hold", err);
    return st->ops->ship_hold_set(st->ctx, id, err);
}

int
fr_store_ship_hold_get(struct fr_store *st, int64_t *id, struct fr_err *err)
{
    if (st->ops->ship_hold_get == NULL)
        return FR_E_NOTFOUND;
    return st->ops->ship_hold_get(st->ctx, id, err);
}

int
fr_store_archive_commit(struct fr_store *st, const struct fr_manifest_row *m,
                        const struct fr_row_key *rows, size_t n, struct fr_err *err)
{
    if (st->ops->archive_commit == NULL)
        return store_unsupported(st, "archive commit", err);
    return st->ops->archive_commit(st->ctx, m, rows, n, err);
}

int
fr_store_archive_finish(struct fr_store *st, const char *path, const struct fr_row_key *rows,
                        size_t n, struct fr_err *err)
{
    if (st->ops->archive_finish == NULL)
        return store_unsupported(st, "archive finish", err);
    return st->ops->archive_finish(st->ctx, path, rows, n, err);
}

int
fr_store_pending(struct fr_store *st, int (*cb)(void *ud, const char *path), void *ud,
                 struct fr_err *err)
{
    if (st->ops->pending == NULL)
        return FR_OK;
    return st->ops->pending(st->ctx, cb, ud, err);
}

int
fr_store_delete_ids(struct fr_store *st, const struct fr_row_key *rows, size_t n, size_t *deleted,
                    struct fr_err *err)
{
    if (st->ops->delete_ids == NULL)
        return store_unsupported(st, "delete ids", err);
    return st->ops->delete_ids(st->ctx, rows, n, deleted, err);
}

int
fr_store_manifest(struct fr_store *st, int (*cb)(void *ud, const struct fr_manifest_row *r),
                  void *ud, struct fr_err *err)
{
    if (st->ops->manifest == NULL)
        return FR_OK;
    return st->ops->manifest(st->ctx, cb, ud, err);
}

int
fr_store_manifest_replace(struct fr_store *st, const char *old_path,
                          const struct fr_manifest_row *m, struct fr_err *err)
{
    if (st->ops->manifest_replace == NULL)
        return store_unsupported(st, "manifest replace", err);
    return st->ops->manifest_replace(st->ctx, old_path, m, err);
}

int
fr_store_manifest_add(struct fr_store *st, const struct fr_manifest_row *m, struct fr_err *err)
{
    if (st->ops->manifest_add == NULL)
        return store_unsupported(st, "manifest add", err);
    return st->ops->manifest_add(st->ctx, m, err);
}

int
fr_store_manifest_remove(struct fr_store *st, const char *path, const char *why, int64_t now_ms,
                         struct fr_err *err)
{
    if (st->ops->manifest_remove == NULL)
        return store_unsupported(st, "manifest remove", err);
    return st->ops->manifest_remove(st->ctx, path, why, now_ms, err);
}

int
fr_store_archive_map(struct fr_store *st, const char *path, const struct fr_archive_key *keys,
                     size_t n, struct fr_err *err)
{
    if (st->ops->archive_map == NULL)
        return FR_OK; /* a store that keeps no map: its segments are read by their Bloom
                         filters */
    return st->ops->archive_map(st->ctx, path, keys, n, err);
}

int
fr_store_archive_lookup(struct fr_store *st, uint64_t hash,
                        int (*cb)(void *ud, const char *path, uint32_t block), void *ud,
                        struct fr_err *err)
{
    if (st->ops->archive_lookup == NULL)
        return FR_OK;
    return st->ops->archive_lookup(st->ctx, hash, cb, ud, err);
}

int
fr_store_segment_health(struct fr_store *st, const char *path, const char *why, const char *checked,
                        struct fr_err *err)
{
    if (st->ops->segment_health == NULL)
        return store_unsupported(st, "segment health", err);
    return st->ops->segment_health(st->ctx, path, why, checked, err);
}

bool
fr_store_has_event(struct fr_store *st, int64_t id, int64_t ingested_ms)
{
    if (st->ops->has_event == NULL)
        return false;
    return st->ops->has_event(st->ctx, id, ingested_ms);
}

int
fr_store_snapshot_begin(struct fr_store *st, bool *began, struct fr_err *err)
{
    *began = false;
    if (st->ops->snapshot_begin == NULL)
        return FR_OK;
    return st->ops->snapshot_begin(st->ctx, began, err);
}

void
fr_store_snapshot_end(struct fr_store *st, bool began)
{
    if (st->ops->snapshot_end != NULL)
        st->ops->snapshot_end(st->ctx, began);
}

bool
fr_store_was_removed(struct fr_store *st, const char *path)
{
    if (st->ops->was_removed == NULL)
        return false;
    return st->ops->was_removed(st->ctx, path);
}

int
fr_store_retention_log(struct fr_store *st, const char *action, const char *path, int64_t events,
                       int64_t min_ts, int64_t max_ts, const char *detail, int64_t now_ms,
                       struct fr_err *err)
{
    if (st->ops->retention_log == NULL)
        return FR_OK; /* a store that keeps no retention log (the fleet store's manifest is its
                         record; archive rebuild adds to it) */
    return st->ops->retention_log(st->ctx, action, path, events, min_ts, max_ts, detail, now_ms,
                                  err);
}

int
fr_store_link_trace(struct fr_store *st, const char *trace_id, const char *conv_id,
                    struct fr_err *err)
{
    if (st->ops->link_trace == NULL)
        return store_unsupported(st, "link trace", err);
    return st->ops->link_trace(st->ctx, trace_id, conv_id, err);
}

int
fr_store_rollup_delta(struct fr_store *st, const char *dim, int64_t minute_ms, const char *k1,
                      const char *k2, const struct fr_rollup_row *d, struct fr_err *err)
{
    if (st->ops->rollup_delta == NULL)
        return store_unsupported(st, "rollup delta", err);
    return st->ops->rollup_delta(st->ctx, dim, minute_ms, k1, k2, d, err);
}

bool
fr_store_file_gone(struct fr_store *st)
{
    if (st->ops->file_gone == NULL)
        return false;
    return st->ops->file_gone(st->ctx);
}

int64_t
fr_store_live_bytes(struct fr_store *st)
{
    if (st->ops->live_bytes == NULL)
        return 0;
    return st->ops->live_bytes(st->ctx);
}

void
fr_store_wal_stats(struct fr_store *st, struct fr_store_wal_stats *out)
{
    *out = (struct fr_store_wal_stats){0};
    if (st->ops->wal_stats != NULL)
        st->ops->wal_stats(st->ctx, out);
}

int
fr_store_reclaim(struct fr_store *st, int pages, int *freed, struct fr_err *err)
{
    if (st->ops->reclaim == NULL)
        return store_unsupported(st, "reclaim", err);
    return st->ops->reclaim(st->ctx, pages, freed, err);
}

int
fr_store_id(struct fr_store *st, char out[17], struct fr_err *err)
{
    if (st->ops->store_id == NULL)
        return store_unsupported(st, "store id", err);
    return st->ops->store_id(st->ctx, out, err);
}

int
fr_store_erase_subject(struct fr_store *st, const char *conv_id, char out[33], struct fr_err *err)
{
    if (st->ops->erase_subject == NULL)
        return store_unsupported(st, "erase subject", err);
    return st->ops->erase_subject(st->ctx, conv_id, out, err);
}

bool
fr_store_is_erased(struct fr_store *st, const char *conv_id)
{
    return conv_id != NULL && st->ops->is_erased != NULL && st->ops->is_erased(st->ctx, conv_id);
}

bool
fr_store_erased_cb(void *st, const char *conv_id)
{
    return fr_store_is_erased(st, conv_id);
}

bool
fr_store_is_erased_record(struct fr_store *st, const struct fr_record *rec)
{
    return fr_store_is_erased(st, rec->ids[FR_ID_CONV]) ||
           (st->ops->is_erased_body != NULL &&
            st->ops->is_erased_body(st->ctx, rec->body, rec->body_len));
}

int
fr_store_erase_hot(struct fr_store *st, const char *conv_id, const char *reason, int64_t now_ms,
                   bool dry_run, int64_t *events, struct fr_err *err)
{
    if (st->ops->erase_hot == NULL)
        return store_unsupported(st, "erase hot", err);
    return st->ops->erase_hot(st->ctx, conv_id, NULL, reason, now_ms, dry_run, events, err);
}

int
fr_store_erase_token_hot(struct fr_store *st, const char *token, const char *reason, int64_t now_ms,
                         bool dry_run, int64_t *events, struct fr_err *err)
{
    if (st->ops->erase_hot == NULL)
        return store_unsupported(st, "erase hot", err);
    return st->ops->erase_hot(st->ctx, NULL, token, reason, now_ms, dry_run, events, err);
}

int
fr_store_erasures(struct fr_store *st, bool pending_only,
                  int (*cb)(void *ud, const struct fr_erasure_row *r), void *ud, struct fr_err *err)
{
    if (st->ops->erasures == NULL)
        return FR_OK;
    return st->ops->erasures(st->ctx, pending_only, cb, ud, err);
}

int
fr_store_erase_done(struct fr_store *st, const char *subject, int64_t segments, int64_t records,
                    int64_t bytes, int64_t now_ms, struct fr_err *err)
{
    if (st->ops->erase_done == NULL)
        return store_unsupported(st, "erase done", err);
    return st->ops->erase_done(st->ctx, subject, segments, records, bytes, now_ms, err);
}

int
fr_store_summary_merge(struct fr_store *st, const struct fr_summary_row *r, struct fr_err *err)
{
    if (st->ops->summary_merge == NULL)
        return store_unsupported(st, "summary merge", err);
    return st->ops->summary_merge(st->ctx, r, err);
}

int
fr_store_summaries(struct fr_store *st, int64_t since_ms, int limit,
                   int (*cb)(void *ud, const struct fr_summary_row *r), void *ud,
                   struct fr_err *err)
{
    if (st->ops->summaries == NULL)
        return FR_OK;
    return st->ops->summaries(st->ctx, since_ms, limit, cb, ud, err);
}

/* ---- fleet stores ---- */

bool
fr_store_is_fleet(const struct fr_store *st)
{
    return st->ops->ship_begin != NULL;
}

int
fr_store_ship_cursor(struct fr_store *st, const char *source, int64_t *last_id, struct fr_err *err)
{
    if (st->ops->ship_cursor == NULL)
        return store_unsupported(st, "shipping into it (only a fleet store takes shipped rows)",
                                 err);
    return st->ops->ship_cursor(st->ctx, source, last_id, err);
}

int
fr_store_ship_begin(struct fr_store *st, const char *host, bool careful, struct fr_err *err)
{
    if (st->ops->ship_begin == NULL)
        return store_unsupported(st, "shipping into it (only a fleet store takes shipped rows)",
                                 err);
    return st->ops->ship_begin(st->ctx, host, careful, err);
}

int
fr_store_ship_row(struct fr_store *st, const struct fr_event_row *row, struct fr_err *err)
{
    return st->ops->ship_row(st->ctx, row, err);
}

int
fr_store_ship_end(struct fr_store *st, const char *source, int64_t last_id, int64_t now_ms,
                  int64_t *inserted, struct fr_err *err)
{
    return st->ops->ship_end(st->ctx, source, last_id, now_ms, inserted, err);
}

int
fr_store_prune(struct fr_store *st, int64_t before_ms, bool detach, bool dry_run,
               int (*cb)(void *ud, const struct fr_prune_row *r), void *ud, struct fr_err *err)
{
    if (st->ops->prune == NULL)
        return store_unsupported(st, "pruning day partitions (use flightrec retention run)", err);
    return st->ops->prune(st->ctx, before_ms, detach, dry_run, cb, ud, err);
}

int
fr_store_trace_links(struct fr_store *st, int64_t since_ms,
                     int (*cb)(void *ud, const char *trace_id, const char *conv_id, int64_t ts_ms),
                     void *ud, struct fr_err *err)
{
    if (st->ops->trace_links == NULL)
        return FR_OK;
    return st->ops->trace_links(st->ctx, since_ms, cb, ud, err);
}

int
fr_store_ship_link(struct fr_store *st, const char *trace_id, const char *conv_id, int64_t ts_ms,
                   struct fr_err *err)
{
    if (st->ops->ship_link == NULL)
        return store_unsupported(st, "shipping into it (only a fleet store takes shipped rows)",
                                 err);
    return st->ops->ship_link(st->ctx, trace_id, conv_id, ts_ms, err);
}
