/*
 * retention/hot/archive.h - what the retention stage needs from the hot store
 * beyond ingest and queries: the oldest events, the manifest of archive
 * segments, and moving rows out in one transaction with their manifest
 * entry (so a move is all or nothing), the removal log, and reclaiming
 * free pages.
 */
#ifndef FR_STORE_ARCHIVE_H
#define FR_STORE_ARCHIVE_H

#include "retention/hot/store.h"

/* One manifest entry (strings borrowed in callbacks). */
/*
 * A hot row as an archive names it: its id and when it was ingested. A row
 * is deleted only when both match, so a segment restored into a store whose
 * ids started over can never delete an unrelated row that reused an id.
 */
struct fr_row_key {
    int64_t id, ingested_ms;
};

struct fr_manifest_row {
    const char *path;
    const char *tier; /* "warm", "cold" */
    int64_t min_ts, max_ts;
    int64_t records, raw_bytes, file_bytes;
    const char *sha256, *policy, *key_id;
    int64_t created_ms;
    bool pending;        /* state "deleting": some of its rows may still be in hot */
    bool mapped;         /* the archive map lists its blocks (fr_store_archive_map) */
    const char *bad;     /* why it was last found unreadable; NULL: not known to be bad */
    const char *checked; /* the file's stamp when last verified (fr_store_segment_health) */
};

/* One entry of the archive map: a conversation or trace (its hashed key) has records in
   this block of a segment. */
struct fr_archive_key {
    uint64_t hash;
    uint32_t block;
};

/*
 * Records the map of the segment at path (replacing any it had), in one
 * transaction; the entry must exist (gone: nothing is done). A segment
 * without a map is read as before (every block its Bloom filter admits);
 * removing or replacing its entry removes its map.
 */
int fr_store_archive_map(struct fr_store *st, const char *path, const struct fr_archive_key *keys,
                         size_t n, struct fr_err *err);

/* The mapped segments and blocks holding hash, segments in time order, blocks ascending. */
int fr_store_archive_lookup(struct fr_store *st, uint64_t hash,
                            int (*cb)(void *ud, const char *path, uint32_t block), void *ud,
                            struct fr_err *err);

/*
 * Marks a segment unreadable (why) or, why NULL, readable again; with
 * checked, also records the file stamp it was verified at (a scrub skips a
 * file whose stamp did not change). An unknown path: nothing.
 */
int fr_store_segment_health(struct fr_store *st, const char *path, const char *why,
                            const char *checked, struct fr_err *err);

/*
 * Events due to leave hot: ts_ms < cutoff[kind] (0: never), oldest first
 * (ts_ms, id), after (after_ts, after_id), at most limit. Rows as in
 * fr_store_events(). hold_id (INT64_MAX: none): a row with a larger id (not
 * shipped yet) is due only once ts_ms < cutoff[kind] - grace_ms.
 */
int fr_store_due(struct fr_store *st, const int64_t cutoff[FR_KIND_COUNT], int64_t hold_id,
                 int64_t grace_ms, int64_t after_ts, int64_t after_id, int limit, fr_event_cb cb,
                 void *ud, struct fr_err *err);

/*
 * The shipper's hold on hot (agent/ship.c): the last row id the fleet store
 * has, so that retention keeps the rows after it in hot while they wait
 * (retention.yaml, hot.max_unshipped_age). set: id < 0 clears it (no
 * shipping). get: FR_E_NOTFOUND when there is none.
 */
int fr_store_ship_hold_set(struct fr_store *st, int64_t id, struct fr_err *err);
int fr_store_ship_hold_get(struct fr_store *st, int64_t *id, struct fr_err *err);

/*
 * Records the segment in the manifest (state "deleting") together with the
 * first chunk (250) of ids[0, n) leaving hot, in one transaction; the remaining
 * chunks follow in their own short transactions (so ingest is never held up
 * for long), and a last one marks the entry "done". A crash in between
 * leaves the entry "deleting": fr_store_pending() lists it and the next
 * run's reconciliation deletes the rest.
 */
int fr_store_archive_commit(struct fr_store *st, const struct fr_manifest_row *m,
                            const struct fr_row_key *rows, size_t n, struct fr_err *err);

/* Finishes an entry left "deleting": deletes ids (chunked) and marks it done. */
int fr_store_archive_finish(struct fr_store *st, const char *path, const struct fr_row_key *rows,
                            size_t n, struct fr_err *err);

/* Manifest entries still "deleting" (paths to cb). */
int fr_store_pending(struct fr_store *st, int (*cb)(void *ud, const char *path), void *ud,
                     struct fr_err *err);

/* Deletes hot rows by key (reconciliation: rows already in a verified segment). */
int fr_store_delete_ids(struct fr_store *st, const struct fr_row_key *rows, size_t n,
                        size_t *deleted, struct fr_err *err);

/* The manifest, oldest first. */
int fr_store_manifest(struct fr_store *st, int (*cb)(void *ud, const struct fr_manifest_row *r),
                      void *ud, struct fr_err *err);

/* Replaces the entry old_path by a re-written segment (warm -> cold). */
int fr_store_manifest_replace(struct fr_store *st, const char *old_path,
                              const struct fr_manifest_row *m, struct fr_err *err);

/* Records an existing, verified segment found without an entry (rebuild); with m->pending
   it is left "deleting", as if a run had stopped before deleting its rows from hot. */
int fr_store_manifest_add(struct fr_store *st, const struct fr_manifest_row *m, struct fr_err *err);

/* ---- erasure (docs/security.md, Erasure) ---- */

/* One record of the erasure log (strings borrowed in callbacks); no content, no clear id. */
struct fr_erasure_row {
    const char *kind;    /* "conv" or "hmac" */
    const char *subject; /* conv: keyed hash of the conversation id (32 hex); hmac: the token */
    int64_t ts_ms, done_ms;
    const char *reason; /* NULL when none was given */
    const char *state;  /* "pending" until every archive copy is gone, then "done" */
    int64_t hot_events, segments, records, bytes;
};

/* The keyed hash under which the store logs conv_id (HMAC-SHA256 with its own erase key). */
int fr_store_erase_subject(struct fr_store *st, const char *conv_id, char out[33],
                           struct fr_err *err);
/*
 * Erases conv_id from hot in one transaction: its events, conversation
 * index row, timeline entities, SEM anomalies and its share of the
 * rollups, with freed space overwritten (secure_delete), together with
 * its erasure record (state "pending"); then the WAL is checkpointed and
 * truncated. *events: the event rows removed (dry_run: that would be).
 */
int fr_store_erase_hot(struct fr_store *st, const char *conv_id, const char *reason, int64_t now_ms,
                       bool dry_run, int64_t *events, struct fr_err *err);
/*
 * Erases from hot every event whose stored body holds token (a value's
 * hmac: token, as redaction stored it), with its share of the rollups, as
 * fr_store_erase_hot does for a conversation; the erasure is logged under
 * the token (kind "hmac"), and later events holding it are refused.
 */
int fr_store_erase_token_hot(struct fr_store *st, const char *token, const char *reason,
                             int64_t now_ms, bool dry_run, int64_t *events, struct fr_err *err);
/* The erasure log, oldest first (pending_only: not yet done in the archive). */
int fr_store_erasures(struct fr_store *st, bool pending_only,
                      int (*cb)(void *ud, const struct fr_erasure_row *r), void *ud,
                      struct fr_err *err);
/* Marks an erasure done, adding what the archive pass rewrote. */
int fr_store_erase_done(struct fr_store *st, const char *subject, int64_t segments, int64_t records,
                        int64_t bytes, int64_t now_ms, struct fr_err *err);

/* ---- summaries: what stays of a conversation when retention deletes its detail ---- */

struct fr_summary_row {
    const char *conv_id;
    int64_t first_ms, last_ms, events, errors, input_tokens, output_tokens;
    const char *error_codes; /* JSON {code: n} */
    const char *models;      /* JSON {model: n} */
    const char *host;        /* where it was summarized; NULL: unknown */
    int64_t summarized_ms;
};

/*
 * Adds a segment's summary of a conversation to its summary row (counts
 * summed, times widened, codes and models merged); an erased conversation
 * gets none. Inside a transaction begun with fr_store_begin() it joins it
 * (so a segment's deletion and its summary commit together).
 */
int fr_store_summary_merge(struct fr_store *st, const struct fr_summary_row *r, struct fr_err *err);
/* Summary rows, most recently active first, at most limit (0: all); since: last_ms >= since. */
int fr_store_summaries(struct fr_store *st, int64_t since_ms, int limit,
                       int (*cb)(void *ud, const struct fr_summary_row *r), void *ud,
                       struct fr_err *err);

/* Removes an entry (the segment is past its last tier) and logs the removal; inside a
   transaction begun with fr_store_begin() it joins it. */
int fr_store_manifest_remove(struct fr_store *st, const char *path, const char *why, int64_t now_ms,
                             struct fr_err *err);

/*
 * True when hot still holds the row (id, ingested_ms) that an archived
 * record came from: the segment is still "deleting", so the row must be
 * read from one tier only.
 */
bool fr_store_has_event(struct fr_store *st, int64_t id, int64_t ingested_ms);

/*
 * A read snapshot across several queries (hot rows, then the manifest), so
 * that a retention run committing in between cannot make rows appear twice
 * or not at all. Nested use is a no-op; end always succeeds.
 */
int fr_store_snapshot_begin(struct fr_store *st, bool *began, struct fr_err *err);
void fr_store_snapshot_end(struct fr_store *st, bool began);

/* True when the retention log says the segment at path was deleted. */
bool fr_store_was_removed(struct fr_store *st, const char *path);

/* Appends to the retention log. */
int fr_store_retention_log(struct fr_store *st, const char *action, const char *path,
                           int64_t events, int64_t min_ts, int64_t max_ts, const char *detail,
                           int64_t now_ms, struct fr_err *err);

/*
 * Adds one rollup delta (dim, minute, k1, k2; the counters of d) in its own
 * transaction: for aggregates that arrive without events (OTLP metrics).
 */
int fr_store_rollup_delta(struct fr_store *st, const char *dim, int64_t minute_ms, const char *k1,
                          const char *k2, const struct fr_rollup_row *d, struct fr_err *err);

/* Whether the database file was removed or replaced since it was opened. */
bool fr_store_file_gone(struct fr_store *st);

/* Bytes of the database's pages in use (page count minus free pages, times page size). */
int64_t fr_store_live_bytes(struct fr_store *st);

/* The store's own id (16 hex digits), written into every segment it archives. */
int fr_store_id(struct fr_store *st, char out[17], struct fr_err *err);

/* Returns up to pages free pages to the file system (incremental vacuum); *freed gets them. */
int fr_store_reclaim(struct fr_store *st, int pages, int *freed, struct fr_err *err);

#endif
