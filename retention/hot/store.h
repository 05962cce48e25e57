/*
 * retention/hot/store.h - the hot store stage: durable, indexed storage of accepted
 * events and the conversation index derived from them.
 *
 * Writes come in batches: fr_store_begin(), any number of fr_store_put(),
 * fr_store_commit(). An event is durable (survives a crash of the process)
 * once fr_store_commit() has returned FR_OK, and not before; an ingest path
 * may only acknowledge events after that. The conversation index is updated
 * in the same transaction as the events it counts.
 *
 * Reads go through callbacks that receive rows whose strings are borrowed
 * for the duration of the call. A callback returning non-zero stops the
 * iteration; that value is returned.
 *
 * The store is a plugin type (struct fr_store_ops) so that a second engine
 * can be added; SQLite (retention/hot/sqlite*.c) is the one shipped.
 */
#ifndef FR_STORE_STORE_H
#define FR_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/event.h"
#include "core/option.h"

struct fr_store_opts {
    bool create;         /* create the file (and its directory) when missing */
    bool read_only;      /* never write the file: no migration, no journal-mode change; a file
                            that is not a flightrec database at the latest schema is refused */
    int synchronous;     /* 0 off, 1 normal (survives process crash), 2 full (power loss) */
    int busy_timeout_ms; /* wait this long for a lock before failing with FR_E_BUSY */
    int64_t cache_kib;   /* page cache size */
    bool background_checkpoint; /* the ingest writer's store: WAL checkpoints on a thread of
                                   their own, not in its commits (sqlite_ckpt.c) */
    int checkpoint_idle_ms;     /* with it: the writer idle this long after a pass that could
                                   not copy the whole WAL, the thread copies the rest (0:
                                   SQ_CKPT_IDLE_MS; negative: never, for tests) */
    bool compress_bodies;       /* store bodies zstd-compressed with a dictionary trained from
                                   the store's events (sqlite_body.c); reads handle both forms */
    bool background_training;   /* the ingest writer's store: that dictionary trained on a
                                   thread of its own, not in its commits (sqlite_body.c) */
};

void fr_store_opts_default(struct fr_store_opts *opts);

/* One conversation of the index. */
struct fr_conv_row {
    const char *conv_id;
    const char *session_id;   /* NULL when never seen */
    const char *runtime_key;  /* runtime key of the latest turn; NULL when none */
    const char *status;       /* active, idle, closed, evicted, error */
    int64_t created_ms;       /* earliest event */
    int64_t last_activity_ms; /* latest event */
    int64_t closed_ms;        /* 0 when not closed */
    int64_t evicted_ms;       /* 0 when not evicted */
    int64_t event_count;
    int64_t error_count;
    const char *last_error_class; /* NULL when no error */
    const char *last_error_code;
    const char *last_error_message;
    bool panic; /* any event of the conversation was a panic */
};

/* One stored event. */
struct fr_event_row {
    int64_t id; /* insert order; the final tie-break */
    int64_t ts_ms;
    int64_t ingested_ms;
    const char *kind;
    bool has_seq;
    int64_t seq;
    const char *ids[FR_ID_COUNT]; /* NULL when absent */
    const char *status, *provider, *model, *tool;
    bool has_duration;
    int64_t duration_ms;
    const char *error_class, *error_code, *error_message; /* NULL when no error */
    const char *body;                                     /* the envelope as JSON (core/wire.h) */
    size_t body_len;
    const char *policy; /* id of the redaction policy applied; NULL before policies existed */
    const void *raw;    /* the sealed unredacted line (raw mode); NULL when none */
    size_t raw_len;
    const char *tier; /* where it was read: NULL = hot, else "warm" or "cold" */
};

/* Latency histogram buckets of the rollups: upper bounds in ms, the last bucket is "more". */
#define FR_HIST_BUCKETS 11
extern const int64_t fr_hist_upper_ms[FR_HIST_BUCKETS - 1];

/* One rollup group: the sums over the minutes asked for. */
struct fr_rollup_row {
    const char *k1, *k2; /* per dim, see retention/hot/rollup.c */
    int64_t calls, errors, tokens[FR_TOKEN_COUNT];
    int64_t lat_count, lat_sum_ms, lat_max_ms, hist[FR_HIST_BUCKETS];
    int64_t bucket_ms; /* with a filter's step_ms: the start of this row's time bucket */
};

struct fr_rollup_filter {
    const char *dim;            /* provider, tool, transport, error, sem_anomaly, otel */
    int64_t since_ms, until_ms; /* 0 = no bound */
    int limit;                  /* 0 = no limit */
    /* > 0 (a multiple of a minute): one row per key and time bucket of this length, buckets in
       time order; 0: one row per key over the whole range */
    int64_t step_ms;
};

/* One SEM ordering anomaly. */
struct fr_anomaly_row {
    int64_t ts_ms, seq, expected, event_row;
    const char *conv_id, *stream_id, *anomaly; /* anomaly: duplicate_seq, seq_gap, out_of_order */
};

/* Failures grouped by one column. */
struct fr_error_group {
    const char *key; /* the code, model or tool ("" when absent) */
    int64_t count, conversations, first_ms, last_ms;
    const char *conv_id; /* with fr_event_filter.group_per_conv: the group's conversation */
};

struct fr_conv_filter {
    int64_t since_ms;   /* last activity at or after; 0 = no bound */
    int64_t until_ms;   /* last activity before; 0 = no bound */
    const char *status; /* NULL = any */
    bool has_errors;    /* only conversations with at least one error */
    int limit;          /* 0 = no limit */
    /* only conversations with an event of this error class / provider / model / tool /
       error code */
    const char *error_class, *provider, *model, *tool, *error_code;
    const char *id_prefix; /* only conversations whose id starts with it; NULL = any */
    /* keyset pagination: rows strictly after (in list order) this one; 0/NULL = from the top */
    int64_t after_activity_ms;
    const char *after_conv_id;
};

struct fr_event_filter {
    const char *conv_id;                  /* NULL = any; events come in conversation order then */
    const char *kind;                     /* NULL = any */
    bool errors_only;                     /* only events carrying a normalized error */
    const char *error_class, *error_code; /* NULL = any (imply errors_only) */
    bool newest_first;                    /* reverse order (for "latest failures") */
    int64_t since_ms, until_ms;           /* 0 = no bound */
    int limit;                            /* 0 = no limit */
    int64_t offset; /* skip this many of them first, in their order (fr_store_events_page:
                       < 0 for the last -offset of them) */
    /* only events whose envelope id id_field (an enum fr_id_field: FR_ID_TRACE, FR_ID_REQUEST,
       FR_ID_SESSION, ...) equals id_value; id_value NULL = no such filter */
    int id_field;
    const char *id_value;
    /* only events whose stored (redacted) envelope contains this text, as written or JSON-escaped
       (case-insensitive for ASCII letters); NULL = no such filter */
    const char *text;
    /* arrival order instead of time order (tail): rows by insertion, only those inserted after
       row after_id (0 = from the first; with newest_first, the latest first) */
    bool by_arrival;
    int64_t after_id;
    /* error_groups: groups of one key and one conversation (fr_error_group.conv_id; NULL for
       failures of no conversation), in no order, possibly several for one pair (the caller
       adds them up), so that groups read from several tiers can count the conversations
       they share once */
    bool group_per_conv;
};

typedef int (*fr_conv_cb)(void *ud, const struct fr_conv_row *row);
typedef int (*fr_event_cb)(void *ud, const struct fr_event_row *row);
typedef int (*fr_rollup_cb)(void *ud, const struct fr_rollup_row *row);
typedef int (*fr_anomaly_cb)(void *ud, const struct fr_anomaly_row *row);
typedef int (*fr_error_group_cb)(void *ud, const struct fr_error_group *row);

struct fr_manifest_row;
struct fr_row_key;
struct fr_archive_key;
struct fr_erasure_row;
struct fr_summary_row;
struct fr_prune_row;
struct fr_store_wal_stats;

struct fr_store_ops {
    const char *name;
    const char *description;
    const struct fr_option *options; /* NULL: configured through fr_store_opts */
    int (*open)(void **ctx, const char *path, const struct fr_store_opts *opts, struct fr_err *err);
    void (*close)(void *ctx);
    int (*begin)(void *ctx, struct fr_err *err);
    int (*put)(void *ctx, const struct fr_record *rec, int64_t ingested_ms, bool *inserted,
               struct fr_err *err);
    int (*commit)(void *ctx, struct fr_err *err);
    void (*pack)(void *ctx, struct fr_record *rec); /* NULL: bodies kept as given */
    void (*rollback)(void *ctx);
    int (*conversations)(void *ctx, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                         struct fr_err *err);
    int (*conversation)(void *ctx, const char *conv_id, fr_conv_cb cb, void *ud,
                        struct fr_err *err);
    int (*events)(void *ctx, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                  struct fr_err *err);
    /* How many events f matches (its limit and offset aside), without reading them. */
    int (*count_events)(void *ctx, const struct fr_event_filter *f, int64_t *n, struct fr_err *err);
    int (*rollups)(void *ctx, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
                   struct fr_err *err);
    int (*anomalies)(void *ctx, const char *conv_id, int64_t since_ms, fr_anomaly_cb cb, void *ud,
                     struct fr_err *err);
    int (*error_groups)(void *ctx, const struct fr_event_filter *f, const char *by,
                        fr_error_group_cb cb, void *ud, struct fr_err *err);
    /* Records a redaction policy (id, canonical JSON) once; events name it by id. */
    int (*policy)(void *ctx, const char *id, const char *json, int64_t now_ms, struct fr_err *err);

    /* What retention needs (retention/hot/archive.h documents each; every slot is required). */
    int (*ship_hold_set)(void *ctx, int64_t id, struct fr_err *err);
    int (*ship_hold_get)(void *ctx, int64_t *id, struct fr_err *err);
    int (*due)(void *ctx, const int64_t cutoff[FR_KIND_COUNT], int64_t hold_id, int64_t grace_ms,
               int64_t after_ts, int64_t after_id, int limit, fr_event_cb cb, void *ud,
               struct fr_err *err);
    int (*archive_commit)(void *ctx, const struct fr_manifest_row *m, const struct fr_row_key *rows,
                          size_t n, struct fr_err *err);
    int (*archive_finish)(void *ctx, const char *path, const struct fr_row_key *rows, size_t n,
                          struct fr_err *err);
    int (*pending)(void *ctx, int (*cb)(void *ud, const char *path), void *ud, struct fr_err *err);
    int (*delete_ids)(void *ctx, const struct fr_row_key *rows, size_t n, size_t *deleted,
                      struct fr_err *err);
    int (*manifest)(void *ctx, int (*cb)(void *ud, const struct fr_manifest_row *r), void *ud,
                    struct fr_err *err);
    int (*manifest_replace)(void *ctx, const char *old_path, const struct fr_manifest_row *m,
                            struct fr_err *err);
    int (*manifest_add)(void *ctx, const struct fr_manifest_row *m, struct fr_err *err);
    int (*manifest_remove)(void *ctx, const char *path, const char *why, int64_t now_ms,
                           struct fr_err *err);
    int (*archive_map)(void *ctx, const char *path, const struct fr_archive_key *keys, size_t n,
                       struct fr_err *err);
    int (*archive_lookup)(void *ctx, uint64_t hash,
                          int (*cb)(void *ud, const char *path, uint32_t block), void *ud,
                          struct fr_err *err);
    int (*segment_health)(void *ctx, const char *path, const char *why, const char *checked,
                          struct fr_err *err);
    bool (*has_event)(void *ctx, int64_t id, int64_t ingested_ms);
    int (*snapshot_begin)(void *ctx, bool *began, struct fr_err *err);
    void (*snapshot_end)(void *ctx, bool began);
    bool (*was_removed)(void *ctx, const char *path);
    int (*retention_log)(void *ctx, const char *action, const char *path, int64_t events,
                         int64_t min_ts, int64_t max_ts, const char *detail, int64_t now_ms,
                         struct fr_err *err);
    int (*rollup_delta)(void *ctx, const char *dim, int64_t minute_ms, const char *k1,
                        const char *k2, const struct fr_rollup_row *d, struct fr_err *err);
    bool (*file_gone)(void *ctx);
    int64_t (*live_bytes)(void *ctx);
    void (*wal_stats)(void *ctx, struct fr_store_wal_stats *out);
    int (*reclaim)(void *ctx, int pages, int *freed, struct fr_err *err);
    int (*store_id)(void *ctx, char out[17], struct fr_err *err);
    /* erasure (archive.h) */
    int (*erase_subject)(void *ctx, const char *conv_id, char out[33], struct fr_err *err);
    bool (*is_erased)(void *ctx, const char *conv_id);
    bool (*is_erased_body)(void *ctx, const char *body, size_t len);
    int (*erase_hot)(void *ctx, const char *conv_id, const char *token, const char *reason,
                     int64_t now_ms, bool dry_run, int64_t *events, struct fr_err *err);
    int (*erasures)(void *ctx, bool pending_only,
                    int (*cb)(void *ud, const struct fr_erasure_row *r), void *ud,
                    struct fr_err *err);
    int (*erase_done)(void *ctx, const char *subject, int64_t segments, int64_t records,
                      int64_t bytes, int64_t now_ms, struct fr_err *err);
    /* conversation membership of a trace learned in the open batch (fr_store_link_trace) */
    int (*link_trace)(void *ctx, const char *trace_id, const char *conv_id, struct fr_err *err);
    /* summaries (archive.h) */
    int (*summary_merge)(void *ctx, const struct fr_summary_row *r, struct fr_err *err);
    int (*summaries)(void *ctx, int64_t since_ms, int limit,
                     int (*cb)(void *ud, const struct fr_summary_row *r), void *ud,
                     struct fr_err *err);
    /* fleet stores (fr_store_ship_*): NULL in a store that is not fed by shipping */
    int (*ship_cursor)(void *ctx, const char *source, int64_t *last_id, struct fr_err *err);
    int (*ship_begin)(void *ctx, const char *host, bool careful, struct fr_err *err);
    int (*ship_row)(void *ctx, const struct fr_event_row *row, struct fr_err *err);
    int (*ship_end)(void *ctx, const char *source, int64_t last_id, int64_t now_ms,
                    int64_t *inserted, struct fr_err *err);
    int (*ship_link)(void *ctx, const char *trace_id, const char *conv_id, int64_t ts_ms,
                     struct fr_err *err);
    int (*trace_links)(void *ctx, int64_t since_ms,
                       int (*cb)(void *ud, const char *trace_id, const char *conv_id,
                                 int64_t ts_ms),
                       void *ud, struct fr_err *err);
    int (*prune)(void *ctx, int64_t before_ms, bool detach, bool dry_run,
                 int (*cb)(void *ud, const struct fr_prune_row *r), void *ud, struct fr_err *err);
};

/*
 * Slots a backend may leave NULL: a central store (postgres) keeps no
 * hot-row retention (due rows, archive commits), archive map, retention
 * log, trace links of its own or summaries. Reads of them then find
 * nothing; a missing log or map is skipped (segments are then read by their
 * Bloom filters); other writes fail with FR_E_INVALID naming the backend.
 * The embedded store fills every slot; the fleet store keeps an archive
 * manifest and an erasure log (its archived days, fleet prune --archive).
 */
extern const struct fr_store_ops fr_store_postgres;

extern const struct fr_store_ops fr_store_sqlite;

/* Every backend (retention/hot/registry.c), the default first. */
extern const struct fr_store_ops *const fr_store_backends[];
extern const size_t fr_store_backends_count;

/*
 * Shipping into a fleet store (agent/ship.c): rows of a sidecar's hot store,
 * exactly once in effect. fr_store_ship_cursor() reads the last row id
 * stored for source (a sidecar store's own id; 0 = none yet).
 * fr_store_ship_begin() opens a batch of rows from host, fr_store_ship_row()
 * adds one (borrowed for the call), fr_store_ship_end() stores those not
 * already there (keyed by conversation, event id or source row, and time),
 * merges the conversation index and rollups of the new ones, and moves the
 * cursor to last_id, all in one transaction; *inserted counts the new rows.
 * After a failure, fr_store_rollback() drops the batch (the cursor stays).
 * Without careful the rows are expected to be new (the fast path), and
 * fr_store_ship_end() fails with FR_E_BUSY when some were stored already
 * (or need what only the careful path makes): roll back and send the batch
 * again with careful, which checks every row.
 * FR_E_INVALID from a store that is not a fleet store.
 */
struct fr_store;
int fr_store_ship_cursor(struct fr_store *st, const char *source, int64_t *last_id,
                         struct fr_err *err);
int fr_store_ship_begin(struct fr_store *st, const char *host, bool careful, struct fr_err *err);
int fr_store_ship_row(struct fr_store *st, const struct fr_event_row *row, struct fr_err *err);
int fr_store_ship_end(struct fr_store *st, const char *source, int64_t last_id, int64_t now_ms,
                      int64_t *inserted, struct fr_err *err);
/*
 * Central retention of a fleet store: whole days of events older than
 * before_ms leave at once — each day partition that ends at or before it is
 * dropped (or, with detach, detached: kept as a table of its own, out of
 * every query, for an operator to archive) — and the conversation index
 * and rollups of that time go with them. cb hears of each partition (also
 * with dry_run, which changes nothing). FR_E_INVALID from an embedded store
 * (its retention is `flightrec retention run`).
 */
struct fr_prune_row {
    const char *partition;
    int64_t from_ms, to_ms;
    int64_t rows; /* the planner's estimate (no count of a large table) */
};
int fr_store_prune(struct fr_store *st, int64_t before_ms, bool detach, bool dry_run,
                   int (*cb)(void *ud, const struct fr_prune_row *r), void *ud, struct fr_err *err);

/*
 * Trace links (fr_store_link_trace) go with the rows: fr_store_trace_links()
 * lists those a hot store learned at or after since_ms (nothing from a store
 * that keeps none); fr_store_ship_link() adds one to the open shipped batch,
 * and the fleet store moves the trace's events there (also those another
 * sidecar ships later under the trace id).
 */
int fr_store_trace_links(struct fr_store *st, int64_t since_ms,
                         int (*cb)(void *ud, const char *trace_id, const char *conv_id,
                                   int64_t ts_ms),
                         void *ud, struct fr_err *err);
int fr_store_ship_link(struct fr_store *st, const char *trace_id, const char *conv_id,
                       int64_t ts_ms, struct fr_err *err);

/* For a backend's error_groups: the events column grouped by for by (code, class, model,
   tool, kind), or NULL with err (FR_E_INVALID) naming the choices. */
const char *fr_store_error_group_column(const char *by, struct fr_err *err);

/* Whether st is a fleet store (it takes shipped rows: its backend has ship_begin). */
bool fr_store_is_fleet(const struct fr_store *st);

/* The backend called name, or NULL. */
const struct fr_store_ops *fr_store_find(const char *name);

/*
 * The backend for a location: "<name>://..." names one (NULL when no
 * backend has that name); anything else is a file path for the default.
 */
const struct fr_store_ops *fr_store_backend_for(const char *location);

/* Whether location names a fleet store (a backend that takes shipped rows). */
bool fr_store_location_is_fleet(const char *location);

struct fr_store;

/*
 * Opens (and with opts->create, creates) the store at path, migrating its
 * schema to the latest version. opts may be NULL for defaults. Caller frees
 * with fr_store_close().
 */
int fr_store_open(const char *path, const struct fr_store_opts *opts, struct fr_store **out,
                  struct fr_err *err);
void fr_store_close(struct fr_store *st);

int fr_store_begin(struct fr_store *st, struct fr_err *err);
/*
 * Adds one normalized record (borrowed for the call) to the open batch.
 * *inserted is false when an event with the same (conv_id, event_id) is
 * already stored (a producer's retry): it is then accepted but not stored
 * twice.
 */
int fr_store_put(struct fr_store *st, const struct fr_record *rec, int64_t ingested_ms,
                 bool *inserted, struct fr_err *err);
int fr_store_commit(struct fr_store *st, struct fr_err *err);

/*
 * Prepares rec->body in the form the store keeps it (SQLite: compressed with
 * its current body dictionary) into rec->packed, so that a producer's thread
 * does that work and the one writing thread does not. Any thread may call it
 * while another writes through st. fr_store_put uses what it made when it is
 * still current (a dictionary trained since: made again there). Does nothing
 * for a store that keeps bodies as they are, for a body that would not
 * shrink, or when all of the store's packing contexts are busy.
 */
void fr_store_pack(struct fr_store *st, struct fr_record *rec);

/*
 * Within an open batch: trace_id belongs to conv_id (an OTLP span of the
 * trace named the conversation). At commit the link is kept (the first one
 * learned wins, for FR_TRACE_LINK_WINDOW_MS) and the events filed under the
 * trace id (conv_id = trace_id: stored before the naming span arrived) move
 * to the conversation; events filed under a linked trace later move in the
 * batch that stores them.
 */
#define FR_TRACE_LINK_WINDOW_MS (24 * 3600 * 1000LL)
int fr_store_link_trace(struct fr_store *st, const char *trace_id, const char *conv_id,
                        struct fr_err *err);
/*
 * Whether conv_id was erased (archive.h, fr_store_erase_hot): an ingest
 * path refuses its events, they are never stored again. Exact inside a
 * batch (fr_store_begin), also for erasures made by another process.
 */
bool fr_store_is_erased(struct fr_store *st, const char *conv_id);
/* fr_store_is_erased with the store as an opaque pointer: a callback for code that takes one
   (exporters/bundle.h, fr_erased_fn). */
bool fr_store_erased_cb(void *st, const char *conv_id);
/* Whether a record is refused by the erasure log: its conversation erased, or its body
   holding an erased value's hmac: token. */
bool fr_store_is_erased_record(struct fr_store *st, const struct fr_record *rec);
void fr_store_rollback(struct fr_store *st);

int fr_store_conversations(struct fr_store *st, const struct fr_conv_filter *f, fr_conv_cb cb,
                           void *ud, struct fr_err *err);
/* Calls cb once for conv_id; FR_E_NOTFOUND when the conversation is unknown. */
int fr_store_conversation(struct fr_store *st, const char *conv_id, fr_conv_cb cb, void *ud,
                          struct fr_err *err);
/* Events in (ts_ms, seq, insert order) order; ties never reorder between runs. */
int fr_store_events(struct fr_store *st, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                    struct fr_err *err);
/* How many events f matches, its limit and offset aside (the rows are not read). */
int fr_store_count_events(struct fr_store *st, const struct fr_event_filter *f, int64_t *n,
                          struct fr_err *err);
/* A page of fr_store_events: *total events match f (its limit and offset aside); cb gets those
   from f->offset on (f->offset < 0: the last -f->offset of them), at most f->limit (0 = all). */
int fr_store_events_page(struct fr_store *st, const struct fr_event_filter *f, fr_event_cb cb,
                         void *ud, int64_t *total, struct fr_err *err);
/* Rollup groups of one dim over a time range, busiest first (with step_ms: by time bucket). */
int fr_store_rollups(struct fr_store *st, const struct fr_rollup_filter *f, fr_rollup_cb cb,
                     void *ud, struct fr_err *err);
/*
 * Latency quantile q (0..1) of a rollup row, estimated from its histogram: the upper bound of
 * the bucket holding it, or the maximum when that is lower or the bucket is the last; -1 when
 * the row has no latency.
 */
int64_t fr_rollup_quantile(const struct fr_rollup_row *r, double q);

/*
 * The LIKE pattern (escape character '\\') finding text inside a stored envelope: form 0 as
 * JSON escapes it (quotes, backslashes, control characters), form 1 with every non-ASCII
 * character as \\uXXXX as some producers send it. Allocated; NULL for form 1 when the text
 * is all ASCII (it would be form 0 again).
 */
char *fr_store_text_pattern(const char *text, int form);

/* SEM ordering anomalies (of one conversation when conv_id is not NULL), in time order. */
int fr_store_anomalies(struct fr_store *st, const char *conv_id, int64_t since_ms, fr_anomaly_cb cb,
                       void *ud, struct fr_err *err);
/* Failures matching f grouped by "code", "class", "model" or "tool", most frequent first. */
int fr_store_error_groups(struct fr_store *st, const struct fr_event_filter *f, const char *by,
                          fr_error_group_cb cb, void *ud, struct fr_err *err);
/*
 * Records the redaction policy (id and canonical JSON) events will name;
 * idempotent. Call before the first batch made under that policy.
 */
int fr_store_policy(struct fr_store *st, const char *id, const char *json, int64_t now_ms,
                    struct fr_err *err);

/* Checkpoints of the write-ahead log, for a store opened with background_checkpoint. */
struct fr_store_wal_stats {
    uint64_t background; /* run by the store's checkpoint thread */
    uint64_t writer;     /* run by the writer itself: the WAL reached its bound */
    int frames;          /* pages in the WAL after the latest commit */
};

/* All zero for a store without background checkpoints (or a backend without a WAL). */
void fr_store_wal_stats(struct fr_store *st, struct fr_store_wal_stats *out);

#endif
