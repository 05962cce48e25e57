/*
 * retention/hot/sqlite_int.h - private to the SQLite store: the context shared by
 * its write path (sqlite.c), conversation aggregation (convagg.c) and read
 * path (sqlite_query.c).
 */
#ifndef FR_STORE_SQLITE_INT_H
#define FR_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/event.h"
#include "core/strmap.h"
#include "retention/hot/archive.h"
#include "retention/hot/store.h"

/*
 * The conversation-index delta of one conversation within one batch. Events
 * are folded in here as they are put and the deltas are upserted once per
 * conversation at commit, instead of once per event.
 */
struct sq_agg {
    char *conv_id;    /* owned */
    char *session_id; /* owned; first one seen */
    int64_t min_ts, max_ts;
    int64_t events, errors;
    char *status; /* owned; latest status by ts, NULL when none */
    int64_t status_ts;
    int64_t closed_ms, evicted_ms; /* 0 = none */
    char *runtime_key;             /* owned; of the latest turn */
    int64_t runtime_key_ts;
    char *err_class, *err_code, *err_msg; /* owned; latest error by ts */
    int64_t err_ts;
    bool has_err, panic;
};

/* The conversation index's columns, and how a delta merges into an existing row (the
   counts add up, the latest status and error win): one clause for the batch upsert and
   the re-assignment of a trace's events (sqlite_trace.c). */
#define SQ_CONV_COLUMNS                                                                            \
    "conv_id, session_id, runtime_key, runtime_key_ts_ms, status, status_ts_ms, created_ms,"       \
    " last_activity_ms, closed_ms, evicted_ms, event_count, error_count, last_error_ts_ms,"        \
    " last_error_class, last_error_code, last_error_message, panic, updated_ms"
#define SQ_CONV_MERGE                                                                              \
    " ON CONFLICT(conv_id) DO UPDATE SET"                                                          \
    " session_id = COALESCE(session_id, excluded.session_id),"                                     \
    " runtime_key = CASE WHEN excluded.runtime_key_ts_ms >= COALESCE(runtime_key_ts_ms, -1)"       \
    "   THEN excluded.runtime_key ELSE runtime_key END,"                                           \
    " runtime_key_ts_ms = CASE WHEN excluded.runtime_key_ts_ms >= COALESCE(runtime_key_ts_ms, -1)" \
    "   THEN excluded.runtime_key_ts_ms ELSE runtime_key_ts_ms END,"                               \
    " status = CASE WHEN excluded.status_ts_ms >= COALESCE(status_ts_ms, -1)"                      \
    "   THEN excluded.status ELSE status END,"                                                     \
    " status_ts_ms = CASE WHEN excluded.status_ts_ms >= COALESCE(status_ts_ms, -1)"                \
    "   THEN excluded.status_ts_ms ELSE status_ts_ms END,"                                         \
    " created_ms = MIN(created_ms, excluded.created_ms),"                                          \
    " last_activity_ms = MAX(last_activity_ms, excluded.last_activity_ms),"                        \
    " closed_ms = NULLIF(MAX(COALESCE(closed_ms, 0), COALESCE(excluded.closed_ms, 0)), 0),"        \
    " evicted_ms = NULLIF(MAX(COALESCE(evicted_ms, 0), COALESCE(excluded.evicted_ms, 0)), 0),"     \
    " event_count = event_count + excluded.event_count,"                                           \
    " error_count = error_count + excluded.error_count,"                                           \
    " last_error_class = CASE WHEN excluded.last_error_ts_ms >= COALESCE(last_error_ts_ms, -1)"    \
    "   THEN excluded.last_error_class ELSE last_error_class END,"                                 \
    " last_error_code = CASE WHEN excluded.last_error_ts_ms >= COALESCE(last_error_ts_ms, -1)"     \
    "   THEN excluded.last_error_code ELSE last_error_code END,"                                   \
    " last_error_message = CASE WHEN excluded.last_error_ts_ms >= COALESCE(last_error_ts_ms, -1)"  \
    "   THEN excluded.last_error_message ELSE last_error_message END,"                             \
    " last_error_ts_ms = CASE WHEN excluded.last_error_ts_ms >= COALESCE(last_error_ts_ms, -1)"    \
    "   THEN excluded.last_error_ts_ms ELSE last_error_ts_ms END,"                                 \
    " panic = MAX(panic, excluded.panic),"                                                         \
    " updated_ms = excluded.updated_ms"

struct sq_aggs {
    struct fr_strmap *map; /* conv_id -> struct sq_agg; created on first use */
};

void sq_aggs_add(struct sq_aggs *a, const struct fr_record *ev);
/* Calls fn for every aggregate, then empties the table. Stops at the first error. */
int sq_aggs_drain(struct sq_aggs *a, int (*fn)(void *ud, const struct sq_agg *agg), void *ud);
void sq_aggs_free(struct sq_aggs *a);

#define SQ_ROLL_MEMO 8 /* rollup entries remembered between look-ups (rollup.c) */

/* A SEM stream's largest seq stored, as learned in one transaction (rollup.c: sq_sem_check). */
struct sq_sem_known {
    uint64_t h;   /* the stream id's hash; 0 = empty */
    uint64_t txn; /* the transaction (sq_store.sem_txn) it was learned in */
    int64_t max;
};
#define SQ_SEM_KNOWN 1024 /* entries, direct-mapped by hash */

struct sq_store {
    sqlite3 *db;
    sqlite3_stmt *ins_event;     /* fr_schema_insert_event_sql */
    sqlite3_stmt *upsert_conv;   /* conversation delta upsert */
    sqlite3_stmt *upsert_roll;   /* rollup delta upsert (rollup.c) */
    sqlite3_stmt *sem_probe;     /* what a stream held before an event (rollup.c) */
    sqlite3_stmt *ins_anomaly;   /* one SEM ordering anomaly (rollup.c) */
    sqlite3_stmt *upsert_entity; /* timeline entity first/last seen (rollup.c) */
    sqlite3_stmt *has_event;     /* fr_store_has_event, prepared on first use */
    sqlite3_stmt *count_err[2];  /* a stored failure counted (sqlite.c), on first use */

    struct sq_sem_known *sem_known; /* streams' latest seq in this transaction (rollup.c) */
    uint64_t sem_txn;               /* which transaction sem_known's entries are of */

    bool in_txn;
    int64_t placeholder;     /* id of the batch's placeholder row (sq_ids_begin); 0 = none */
    int64_t last_rowid;      /* largest id the batch gave */
    sqlite3_stmt *ids_st[4]; /* sqlite.c's ids_sql, prepared on first use */
    char *path;              /* the database file, to notice it removed or replaced */
    char *dir; /* its directory, absolute: segment paths under it are stored relative */
    dev_t dev; /* its identity when opened */
    ino_t ino;
    struct sq_aggs aggs;
    struct fr_strmap *rolls;                 /* "dim|minute|k1|k2" -> struct sq_roll, per batch */
    struct sq_roll *roll_memo[SQ_ROLL_MEMO]; /* entries of rolls just used, by dimension */
    /* erasure (sqlite_erase.c) */
    unsigned char erase_key[32]; /* store_info 'erase_key' */
    bool erase_key_loaded;
    struct fr_strmap *erased;   /* conversation subjects of the log; NULL until first looked at */
    struct fr_strmap *verdicts; /* conv_id -> erased or not, while the log is unchanged */
    char **erased_tokens;       /* hmac: tokens of value erasures */
    size_t nerased_tokens;
    int64_t erased_version; /* PRAGMA data_version when it was read */
    int64_t hot_erasures;   /* conversations this connection erased from hot */
    /* trace links (sqlite_trace.c), per batch */
    struct fr_strmap *trace_links;   /* trace id -> conv id (owned) learned in the batch */
    struct fr_strmap *trace_orphans; /* trace ids of events filed under their trace */
    struct fr_strmap *trace_pairs;   /* trace id -> conv id (owned) recorded in the batch */
    sqlite3_stmt *trace_st[20];
    /* the pairs not yet merged into trace_convs (table trace_convs_new, appended to): */
    struct sq_tn_slot *tn_slots; /* its rows by trace: hashes, time and id (owned) */
    size_t tn_cap;               /* slots (a power of two, at least twice tn_rows) */
    bool tn_loaded;              /* tn_slots holds the table as of tn_version */
    bool tn_synced;              /* checked against other connections' commits in this batch */
    int64_t tn_erasures;         /* hot_erasures when loaded (an erasure changes the table) */
    int64_t tn_version;          /* PRAGMA data_version when loaded */
    int64_t tn_rows;             /* rows of the table */
    int64_t tn_max_id;           /* its largest id */
    int64_t tn_oldest_ms;        /* its oldest pair's ts_ms (0: none) */
    int64_t tn_merge_upto;       /* a merge in progress: of the rows up to this id (0: none) */
    char *tn_merge_trace;        /* where its next chunk starts (after this pair; owned) */
    char *tn_merge_conv;
    int64_t trace_pruned_ms;
    int64_t trace_prune_from;  /* ts_ms where the next step of the pair pruning starts */
    int64_t trace_pairs_added; /* pairs recorded since that pass */
    /* request and session look-up pairs (sqlite_idconv.c) */
    sqlite3_stmt *idc_st[8];
    int64_t idc_pruned_ms;
    int64_t idc_prune_from;         /* ts_ms where the next pruning step starts */
    int64_t idc_added;              /* pairs recorded since that step */
    struct sq_idc_known *idc_known; /* pairs in the table (direct-mapped, IDC_KNOWN) */
    bool idc_synced;                /* idc_known checked against other connections in this batch */
    int64_t idc_version;            /* PRAGMA data_version when it was */
    int64_t idc_erasures;           /* hot_erasures then */
    /* event parts (sqlite_parts.c) */
    sqlite3_stmt *parts_st[5];
    int64_t parts_parked; /* rows of event_parts (an upper bound after a rollback) */
    struct sq_ckpt *ckpt; /* background checkpoints (sqlite_ckpt.c); NULL when off */
    struct sq_body *body; /* body compression (sqlite_body.c); NULL on a read-only store */
};

/*
 * Segment paths in the manifest: stored relative to the database's
 * directory when under it (the data folder can be moved whole), absolute
 * otherwise. sq_rel() returns the stored form (a suffix of path, or path);
 * sq_abs() the absolute one (caller frees).
 */
const char *sq_rel(const struct sq_store *s, const char *path);
char *sq_abs(const struct sq_store *s, const char *stored);
/* Rewrites absolute manifest paths under the database's directory as relative. */
int sq_relativize_manifest(struct sq_store *s, struct fr_err *err);

/* Prepares the rollup and anomaly statements. */
int sq_rollup_prepare(struct sq_store *s, struct fr_err *err);
void sq_rollup_finalize(struct sq_store *s);

/* Adds one rollup delta (the upsert statement); SQLite's result code. */
int sq_rollup_upsert(struct sq_store *s, const char *dim, int64_t minute, const char *k1,
                     const char *k2, const struct fr_rollup_row *d);

/* Folds a stored record into the batch's rollups. */
void sq_rollup_add(struct sq_store *s, const struct fr_record *rec);

/*
 * For a stored `sem` event with stream_id and seq: compares it with what the
 * stream already holds and records a duplicate, a gap or an out-of-order
 * arrival (never rejecting the event).
 */
int sq_sem_check(struct sq_store *s, const struct fr_record *rec, int64_t rowid,
                 struct fr_err *err);
/* A row restored from an archive into this transaction: a SEM stream's seq it holds counts. */
void sq_sem_restored(struct sq_store *s, const struct fr_record *rec);
/* What sq_sem_check learned is forgotten: a transaction begins or ends. */
void sq_sem_forget(struct sq_store *s);

/* For a stored `timeline` event with an entity id: upserts the entity's first/last seen. */
int sq_timeline_upsert(struct sq_store *s, const struct fr_record *rec, struct fr_err *err);

/* The delta of one batch rollup entry (a value of s->rolls). */
struct fr_rollup_row *sq_roll_delta(void *roll);

/* Erasure (sqlite_erase.c). */
int sq_erase_subject(void *ctx, const char *conv_id, char out[33], struct fr_err *err);
bool sq_is_erased(void *ctx, const char *conv_id);
bool sq_is_erased_body(void *ctx, const char *body, size_t len);
void sq_erased_free(struct sq_store *s);
void sq_erased_refresh(struct sq_store *s);
int sq_erase_hot(void *ctx, const char *conv_id, const char *token, const char *reason,
                 int64_t now_ms, bool dry_run, int64_t *events, struct fr_err *err);
int sq_erasures(void *ctx, bool pending_only, int (*cb)(void *ud, const struct fr_erasure_row *r),
                void *ud, struct fr_err *err);
int sq_erase_done(void *ctx, const char *subject, int64_t segments, int64_t records, int64_t bytes,
                  int64_t now_ms, struct fr_err *err);
int sq_summary_merge(void *ctx, const struct fr_summary_row *r, struct fr_err *err);
int sq_summaries(void *ctx, int64_t since_ms, int limit,
                 int (*cb)(void *ud, const struct fr_summary_row *r), void *ud, struct fr_err *err);

/* Traces and conversations (sqlite_trace.c): a pair (trace, conversation) recorded as a
   link is learned or a record is stored (a trace's first pair is its link; restored rows
   link nothing); at commit, what was filed under a newly linked trace moves; drop on
   rollback. */
int sq_link_trace(void *ctx, const char *trace_id, const char *conv_id, struct fr_err *err);
int sq_trace_note(struct sq_store *s, const struct fr_record *rec, struct fr_err *err);
int sq_trace_flush(struct sq_store *s, struct fr_err *err);
void sq_trace_discard(struct sq_store *s);
void sq_trace_rollback(struct sq_store *s);
void sq_trace_free(struct sq_store *s);

/* Request and session look-up pairs (sqlite_idconv.c). */
/* Records rec's (request, conversation) and (session, conversation) pairs, unless known. */
int sq_idconv_note(struct sq_store *s, const struct fr_record *rec, int64_t now_ms,
                   struct fr_err *err);
/* A conversation's pairs to another (to NULL: deleted, as for an erased one). */
int sq_idconv_move(struct sq_store *s, const char *from, const char *to, struct fr_err *err);
/* Deletes conv's pairs that no event of it holds any more (after events erased one by one). */
int sq_idconv_tidy(struct sq_store *s, const char *conv, struct fr_err *err);
/* At commit: a pruning step once a minute; the next batch checks the known pairs again. */
int sq_idconv_flush(struct sq_store *s, int64_t now_ms, struct fr_err *err);
/* The transaction rolled back: its pairs are not stored, none is known any more. */
void sq_idconv_rollback(struct sq_store *s);
void sq_idconv_free(struct sq_store *s);
/*
 * The ids of the events whose request_id or session_id (F, a column name) is P: those of
 * the conversations it was seen in (id_convs, then each one's events in events_conv), and
 * those without a conversation from their own partial index.
 */
#define SQ_IDCONV_EVENT_IDS(F, P)                                                                  \
    "SELECT id FROM events INDEXED BY events_" F "_noconv WHERE conv_id IS NULL AND " F "_id = " P \
    " UNION ALL SELECT e.id FROM id_convs l JOIN events e ON e.conv_id = l.conv_id"                \
    " AND e.ts_ms >= l.ts_lo AND e.ts_ms <= ifnull(l.ts_hi, 9223372036854775807) AND e." F         \
    "_id = " P " WHERE l.field = '" F "_id' AND l.id = " P

/* Event parts (sqlite_parts.c): a part merged into its provider event or parked; a
   stored provider event takes its parked parts; the parked count read again. */
int sq_part_put(struct sq_store *s, const struct fr_record *rec, int64_t now_ms,
                struct fr_err *err);
int sq_parts_adopt(struct sq_store *s, const struct fr_record *rec, int64_t id, struct fr_err *err);
void sq_parts_count(struct sq_store *s);
void sq_parts_free(struct sq_store *s);

/* Upserts the batch's rollups (inside the open transaction) and empties them. */
int sq_rollup_flush(struct sq_store *s, struct fr_err *err);

/* Drops the batch's rollups (rollback). */
void sq_rollup_discard(struct sq_store *s);

/* Steps st to the end, handing each row to row_fn; finalizes st (sqlite_query.c). */
int q_run(struct sq_store *s, sqlite3_stmt *st, int (*row_fn)(sqlite3_stmt *, void *), void *ud,
          int *rows, struct fr_err *err);

/* Row function for the event columns selected by SQ_EVENT_COLUMNS; ud is a struct q_event_ctx. */
struct q_event_ctx {
    fr_event_cb cb;
    void *ud;
};
int q_event_fn(sqlite3_stmt *st, void *ud);
#define SQ_EVENT_COLUMNS                                                                           \
    "id, ts_ms, ingested_ms, kind, seq, conv_id, session_id, turn_id, run_id,"                     \
    " request_id, stream_id, event_id, trace_id, span_id, runtime_key, inference_id,"              \
    " status, provider, model, tool, duration_ms, error_class, error_code, error_message,"         \
    " fr_body(body), policy, raw"

/* The archive operations of the descriptor (sqlite_archive.c). */
int sq_due(void *ctx, const int64_t cutoff[FR_KIND_COUNT], int64_t hold_id, int64_t grace_ms,
           int64_t after_ts, int64_t after_id, int limit, fr_event_cb cb, void *ud,
           struct fr_err *err);
int sq_ship_hold_set(void *ctx, int64_t id, struct fr_err *err);
int sq_ship_hold_get(void *ctx, int64_t *id, struct fr_err *err);
int sq_archive_commit(void *ctx, const struct fr_manifest_row *m, const struct fr_row_key *rows,
                      size_t n, struct fr_err *err);
int sq_archive_finish(void *ctx, const char *path, const struct fr_row_key *rows, size_t n,
                      struct fr_err *err);
int sq_pending(void *ctx, int (*cb)(void *ud, const char *path), void *ud, struct fr_err *err);
int sq_store_id(void *ctx, char out[17], struct fr_err *err);
/* A value of store_info (store_id, erase_key) into out; FR_E_STORE when absent. */
int sq_store_info(struct sq_store *s, const char *key, char *out, size_t cap, struct fr_err *err);
int sq_delete_ids(void *ctx, const struct fr_row_key *rows, size_t n, size_t *deleted,
                  struct fr_err *err);
int sq_manifest(void *ctx, int (*cb)(void *ud, const struct fr_manifest_row *r), void *ud,
                struct fr_err *err);
int sq_manifest_replace(void *ctx, const char *old_path, const struct fr_manifest_row *m,
                        struct fr_err *err);
int sq_manifest_add(void *ctx, const struct fr_manifest_row *m, struct fr_err *err);
/* the archive map and bad segments (sqlite_map.c) */
int sq_archive_map(void *ctx, const char *path, const struct fr_archive_key *keys, size_t n,
                   struct fr_err *err);
int sq_archive_lookup(void *ctx, uint64_t hash,
                      int (*cb)(void *ud, const char *path, uint32_t block), void *ud,
                      struct fr_err *err);
int sq_segment_health(void *ctx, const char *path, const char *why, const char *checked,
                      struct fr_err *err);
int sq_manifest_remove(void *ctx, const char *path, const char *why, int64_t now_ms,
                       struct fr_err *err);
bool sq_has_event(void *ctx, int64_t id, int64_t ingested_ms);
int sq_snapshot_begin(void *ctx, bool *began, struct fr_err *err);
void sq_snapshot_end(void *ctx, bool began);
bool sq_was_removed(void *ctx, const char *path);
int sq_retention_log(void *ctx, const char *action, const char *path, int64_t events,
                     int64_t min_ts, int64_t max_ts, const char *detail, int64_t now_ms,
                     struct fr_err *err);
int sq_rollup_delta(void *ctx, const char *dim, int64_t minute_ms, const char *k1, const char *k2,
                    const struct fr_rollup_row *d, struct fr_err *err);
int64_t sq_live_bytes(void *ctx);
int sq_reclaim(void *ctx, int pages, int *freed, struct fr_err *err);
bool sq_file_gone(const struct sq_store *s);

/* The page size of a database the store creates (an existing one keeps its own). 8 and 16 KiB
   cost a little less CPU per commit but write 20-75% more bytes per event: every index leaf
   a random key touches is written whole (docs/storage.md, "Page size"). */
#define SQ_PAGE_SIZE 4096

/* The VFS that gathers a transaction's WAL frames into few writes (sqlite_walbuf.c), for the
   connections that write; NULL when it could not be registered (the default VFS then). */
#define SQ_WALBUF_VFS "fr-walbuf"
const char *sq_walbuf_vfs(void);

/* The rowids of the hot events of trace P (an SQL parameter): those without a conversation
   (events_trace_noconv), those filed under the trace, and those of each conversation the
   trace was seen in (trace_convs, and trace_convs_new: the pairs not merged yet, a bounded
   table read whole), the last two read from events_conv, which ends with trace_id (schema
   versions 15 and 16, sqlite_trace.c). */
#define SQ_TRACE_EVENT_IDS(P)                                                                      \
    "SELECT id FROM events INDEXED BY events_trace_noconv WHERE conv_id IS NULL"                   \
    " AND trace_id = " P " UNION ALL SELECT id FROM events WHERE conv_id = " P                     \
    " AND trace_id = " P " UNION ALL SELECT e.id FROM (SELECT conv_id FROM trace_convs"            \
    " WHERE trace_id = " P " UNION SELECT conv_id FROM trace_convs_new WHERE trace_id = " P        \
    ") l JOIN events e ON e.conv_id = l.conv_id AND e.trace_id = " P " WHERE l.conv_id <> " P

/*
 * The provider event of a trace (?1) and span (?2), which a part of it (OTLP content log
 * records) merges into (sqlite_parts.c): found by rowid among the trace's events. NOT INDEXED
 * keeps the outer events out of the index choice (the rowid still serves): with events_kind
 * the planner read every provider event of the store per part, 8 ms per log record at 100k
 * spans (test_store_event_parts_merge checks the plan). The same for a query by trace id
 * (sqlite_query.c).
 */
#define SQ_PART_TARGET_SQL                                                                         \
    "SELECT id, fr_body(body) FROM events NOT INDEXED WHERE id IN (" SQ_TRACE_EVENT_IDS(           \
        "?1") ") AND trace_id = ?1 AND span_id = ?2 AND kind = 'provider' ORDER BY id LIMIT 1"

/*
 * Before a trace's events filed under it (conv_id ?1 = the trace id) move to their
 * conversation ?2 (non-empty), those the conversation holds already (same event_id: a re-sent
 * span) go: each one looked up in events_event_key. "event_id IN (the conversation's
 * event ids)" read every event of the conversation per move, so a long conversation's turns
 * got slower with each (2.4 ms per turn at its start, 27 ms after 12,000 events).
 * test_store_trace_link_moves_events checks the plan.
 */
#define SQ_TRACE_DEDUP_SQL                                                                         \
    "DELETE FROM events WHERE conv_id = ?1 AND trace_id = ?1 AND event_id IS NOT NULL AND EXISTS"  \
    " (SELECT 1 FROM events d WHERE ifnull(d.conv_id, '') = ?2 AND d.event_id = events.event_id)"

/* The trace pairs appended to trace_convs_new are merged into trace_convs once it holds this
   many, or once the oldest is this old; each commit merges a chunk of this many (sqlite_trace.c,
   schema version 16). */
#define SQ_TRACE_MERGE_ROWS 8192
#define SQ_TRACE_MERGE_AGE_MS (10 * 60 * 1000LL)
#define SQ_TRACE_MERGE_CHUNK 2048

/* Background WAL checkpoints (sqlite_ckpt.c): the checkpoint thread is woken past SOFT bytes
   of WAL (4,000 pages of 4 KiB: a page that several commits rewrote is copied once;
   docs/storage.md), then again each STEP bytes more, not after every commit; it finishes a
   copy by itself once the writer is idle IDLE_MS (a pass that a reader kept from getting
   further waits twice as long, up to IDLE_MAX_MS); the writer finishes the copy itself past
   HARD. In bytes, so that the WAL's bound does not depend on the database's page size. */
#define SQ_CKPT_SOFT_BYTES (4000 * 4096)
#define SQ_CKPT_HARD_BYTES (8000 * 4096)
#define SQ_CKPT_STEP_BYTES (1000 * 4096)
#define SQ_CKPT_IDLE_MS 20
#define SQ_CKPT_IDLE_MAX_MS 1000
int sq_ckpt_start(struct sq_store *s, const char *path, const struct fr_store_opts *opts,
                  struct fr_err *err);
void sq_ckpt_stop(struct sq_store *s);
void sq_ckpt_stats(void *ctx, struct fr_store_wal_stats *out); /* the wal_stats op */

/* Compressed bodies (sqlite_body.c). sq_body_open registers fr_body(body) and
   fr_body_dict(body) (sqlite_body.h) on the store's connection and, for a writer,
   fr_zbody(text) and, when it compresses, the current dictionary. sq_body_begin (in a
   batch's transaction) notices the dictionary retired by another process's erasure.
   sq_body_bind binds a record's body to insert, compressed when a dictionary exists (what
   sq_body_pack made on a producer's thread when it used the current one); sq_body_pack is the
   pack op (any thread); sq_body_after_commit trains one when due (in the background store: on
   a thread of its own, stored and made current after a later commit); sq_body_forget (inside an
   erasure's transaction, after its rows are deleted) retires every dictionary that sampled the
   conversation or holds the token, re-encoding the rows that use it. */
int sq_body_open(struct sq_store *s, bool writer, bool compress, bool background,
                 struct fr_err *err);
int sq_body_begin(struct sq_store *s, struct fr_err *err);
void sq_body_free(struct sq_store *s);
void sq_body_bind(struct sq_store *s, sqlite3_stmt *st, int col, const struct fr_record *rec);
void sq_body_pack(void *ctx, struct fr_record *rec);
int sq_body_forget(struct sq_store *s, const char *conv_id, const char *token, struct fr_err *err);
void sq_body_after_commit(struct sq_store *s);

/* Steps st with text parameters ?1 = a and ?2 = b (NULL: not bound) to its end (or first row),
   and resets it; on failure err says what was being done. */
int sq_step_texts(sqlite3 *db, sqlite3_stmt *st, const char *a, const char *b, const char *what,
                  struct fr_err *err);

/*
 * One step of pruning a table of pairs (trace_convs, id_convs), from the oldest up: step
 * (?1 from, ?2 before, ?3 limit) answers where a step of up to limit pairs recorded from *from
 * and before before_ms ends, and how many it holds; del (?1 from, ?2 end) deletes those of
 * them whose events left hot (*deleted: how many). A step takes twice as many pairs as were
 * recorded since the last one (*added, then 0), at least 5,000, at most 50,000 (~0.1 s), and
 * starts from the first again once one holds fewer than its limit.
 */
int sq_prune_step(sqlite3 *db, sqlite3_stmt *step, sqlite3_stmt *del, int64_t before_ms,
                  int64_t *from, int64_t *added, int *deleted, const char *what,
                  struct fr_err *err);

/* "OFF", "NORMAL" or "FULL" for fr_store_opts.synchronous (clamped to 0..2). */
const char *sq_sync_name(int synchronous);
/* The integer a PRAGMA (or any one-value query) answers; 0 when it fails. */
int64_t sq_pragma_int(sqlite3 *db, const char *sql);

/* The read path (sqlite_query.c), referenced by the fr_store_sqlite descriptor. */
int fr_sqlite_conversations(void *ctx, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                            struct fr_err *err);
int fr_sqlite_conversation(void *ctx, const char *conv_id, fr_conv_cb cb, void *ud,
                           struct fr_err *err);
int fr_sqlite_count_events(void *ctx, const struct fr_event_filter *f, int64_t *n,
                           struct fr_err *err);
int fr_sqlite_events(void *ctx, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
                     struct fr_err *err);
int fr_sqlite_rollups(void *ctx, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
                      struct fr_err *err);
int fr_sqlite_anomalies(void *ctx, const char *conv_id, int64_t since_ms, fr_anomaly_cb cb,
                        void *ud, struct fr_err *err);
int fr_sqlite_error_groups(void *ctx, const struct fr_event_filter *f, const char *by,
                           fr_error_group_cb cb, void *ud, struct fr_err *err);

/* Maps a SQLite result code to FR_E_BUSY / FR_E_STORE and fills err. */
int sq_fail(sqlite3 *db, int rc, struct fr_err *err, const char *what);

/* Runs SQL with no result rows. */
int sq_exec(sqlite3 *db, const char *sql, struct fr_err *err);

/* Commits (rc FR_OK) or rolls back the transaction; returns the outcome. */
int sq_txn_end(struct sq_store *s, int rc, struct fr_err *err);

/* sql prepared once into *slot (persistent; the caller finalizes it at close), handed out
   in *out reset with its bindings cleared. */
int sq_cached(sqlite3 *db, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out,
              struct fr_err *err);

/* The trace links learned at or after since_ms (fr_store_trace_links). */
int sq_trace_links(void *ctx, int64_t since_ms,
                   int (*cb)(void *ud, const char *trace_id, const char *conv_id, int64_t ts_ms),
                   void *ud, struct fr_err *err);

#endif
