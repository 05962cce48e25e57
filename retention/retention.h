/*
 * retention/retention.h - the retention manager: hot (SQLite) -> warm
 * (zstd segments) -> cold (segments also sealed with AES-256-GCM) ->
 * deleted, by age (per kind for hot) and hot size, crash-safely: a segment
 * is written to a temporary file, fsynced, renamed, its directory fsynced,
 * and only then, in one SQLite transaction, recorded in the manifest while
 * its rows leave hot. Every run starts by reconciling files and manifest.
 * Policy: configs/retention.yaml; segment layout: docs/archive-format.md.
 */
#ifndef FR_RETENTION_RETENTION_H
#define FR_RETENTION_RETENTION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/event.h"
#include "retention/hot/store.h"
#include "retention/segment.h"

struct fr_retention_policy {
    char *archive_dir;
    int64_t hot_ms;                     /* age at which events leave hot */
    int64_t hot_kind_ms[FR_KIND_COUNT]; /* per-kind override; 0 = hot_ms */
    int64_t max_hot_bytes;              /* 0 = no size bound */
    int64_t min_free_percent;           /* the agent's floor of free space on hot's disk; 0 = off */
    int64_t min_free_keep_ms;           /* under it, events this recent stay in hot; 0 = none */
    int64_t move_bytes;                 /* not an option: set for one run (the disk under the
                                           floor), this many bytes of the oldest hot rows older
                                           than min_free_keep move too, in whole segments */
    int64_t max_unshipped_ms;           /* events not shipped yet stay this much longer; 0 = no */
    int64_t warm_ms;                    /* age at which segments become cold */
    int64_t cold_ms;                    /* age at which segments are deleted */
    int64_t truncate_bytes;             /* free text kept in warm/cold records */
    int64_t segment_events;             /* hot rows per segment (one transaction) */
    char *cold_key;                     /* key file of the cold tier */
    char *archive_key;                  /* key file authenticating segments and MANIFEST */
    int64_t interval_ms;                /* the agent's schedule; 0 = off */
    int64_t verify_ms;                  /* the agent's scrub of changed segments; 0 = off */
    /* an S3-compatible bucket that holds every segment and the MANIFEST (objstore.h) */
    char *bucket_url;      /* "" = none */
    char *bucket_region;   /* SigV4 region */
    char *bucket_akey_env; /* environment variable names of the credentials */
    char *bucket_skey_env;
    char *bucket_ca_file;   /* "" = the system's CA certificates */
    int64_t bucket_keep_ms; /* local copies of uploaded segments kept this long after their
                               last write or fetch */
};

extern const char fr_retention_builtin_yaml[];

/*
 * Disk pressure (hot.min_free_percent): whether the disk holding the hot
 * store at db_path has less than that share of its size free, and if so
 * how many bytes of hot rows to move to warm to free that share again
 * (*move: the policy's move_bytes for that run). *avail and *total are the
 * disk's. false when the floor is off, the disk has room or cannot be asked.
 */
bool fr_retention_disk_pressure(const struct fr_retention_policy *p, const char *db_path,
                                int64_t *move, uint64_t *avail, uint64_t *total);

/*
 * Built-in defaults merged with path (NULL: defaults). Errors name file,
 * line, key. Relative archive_dir and cold key paths are made absolute
 * against the directory of db_path (the database the policy applies to).
 */
int fr_retention_policy_load(const char *path, const char *db_path, struct fr_retention_policy *p,
                             struct fr_err *err);
void fr_retention_policy_clear(struct fr_retention_policy *p);

/* Prints every policy option as a Markdown table (docs/config.md). */
void fr_retention_policy_markdown(FILE *out);
void fr_retention_policy_man(FILE *out);

/* What a bucket sync did (bucket.c). */
struct fr_bucket_stats {
    uint64_t uploaded, uploaded_bytes; /* segments (and MANIFEST) PUT this time */
    uint64_t deleted;                  /* objects of segments no longer in the manifest */
    uint64_t evicted, evicted_bytes;   /* local copies removed (the bucket holds them) */
    uint64_t remote;                   /* segments held only in the bucket after the sync */
    uint64_t pending;                  /* segments not (yet) in the bucket: they stay local */
    bool failed;                       /* the sync stopped on an error (the run's err says why) */
};

struct fr_retention_stats {
    uint64_t moved_events, warm_segments, records_written;
    uint64_t raw_bytes, row_bytes, file_bytes; /* row_bytes: the moved rows' JSON bodies */
    uint64_t to_cold, deleted_segments, deleted_events;
    uint64_t adopted, orphans_removed, duplicates_removed, missing_files;
    uint64_t unauthenticated;  /* segments in the folder not adopted: no valid archive-key MAC */
    uint64_t journal_repaired; /* MANIFEST records written to agree with the table again */
    uint64_t mapped;           /* segments given an archive map by reconciliation */
    int reclaimed_pages;
    int64_t ship_hold; /* the shipper's hold honoured (last row id shipped); INT64_MAX: none */
    struct fr_bucket_stats bucket; /* the bucket sync that ended the run */
    double seconds;
};

/* Progress callback: what is being done, done/total units (0 total: unknown). */
typedef void (*fr_retention_progress)(void *ud, const char *what, uint64_t done, uint64_t total);

/*
 * One run at time now_ms: reconcile, hot -> warm, warm -> cold, cold ->
 * delete, reclaim free pages. dry_run: say what would move, change nothing.
 */
int fr_retention_run(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                     bool dry_run, fr_retention_progress progress, void *ud,
                     struct fr_retention_stats *stats, struct fr_err *err);

/*
 * Makes the bucket hold what the manifest lists: uploads every segment whose
 * file changed since its upload (new, rewritten by an erasure), then the
 * MANIFEST journal, deletes the objects of segments the manifest no longer
 * lists, and removes local copies untouched for bucket.keep_local (a read
 * fetches one back). Nothing is removed locally that the bucket does not
 * hold with the same bytes. No bucket configured: nothing. Runs at the end
 * of every retention run and erasure; `archive push` runs it alone.
 */
int fr_retention_bucket_sync(struct fr_store *st, const struct fr_retention_policy *p,
                             int64_t now_ms, struct fr_bucket_stats *bs, struct fr_err *err);
/* The same, alone (`archive push`): waits for a retention run or erasure to finish first. */
int fr_retention_bucket_push(struct fr_store *st, const struct fr_retention_policy *p,
                             int64_t now_ms, struct fr_bucket_stats *bs, struct fr_err *err);

/*
 * A folder that lost its MANIFEST (a new machine, a lost disk): fetches
 * the MANIFEST from the policy's bucket and lists every segment it names as
 * held there, so that `archive rebuild` restores the manifest and reads
 * fetch the segments. A MANIFEST already in place is kept. *fetched: true
 * when one was fetched.
 */
int fr_retention_bucket_restore(const struct fr_retention_policy *p, bool *fetched,
                                struct fr_err *err);

/*
 * Central retention, for a store that does not delete rows one by one (the
 * fleet store drops whole day partitions): writes the events of [from_ms,
 * to_ms) into warm segments in the policy's archive folder, named by
 * label (the partition) and ordinal, each journaled in MANIFEST and then
 * recorded in the store's own manifest, and syncs the bucket. The rows stay
 * until the caller drops them (fr_store_prune), after this succeeded; run
 * again, it writes the same segments over (no second copy).
 */
int fr_retention_archive_range(struct fr_store *st, const struct fr_retention_policy *p,
                               const char *label, int64_t from_ms, int64_t to_ms, int64_t now_ms,
                               struct fr_retention_stats *stats, struct fr_err *err);

/* Reconciles the archive directory and the manifest (also done by every run). */
int fr_retention_reconcile(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                           struct fr_retention_stats *stats, struct fr_err *err);

/* What an erasure did (or, dry run, would do). */
struct fr_erase_stats {
    uint64_t hot_events;       /* event rows removed from hot */
    uint64_t segments_scanned; /* segments that might hold it (Bloom filter or full scan) */
    uint64_t segments_rewritten, segments_deleted;
    uint64_t records_removed; /* archive records of it */
    uint64_t bytes_rewritten; /* bytes of the segments written again */
    uint64_t pending_left;    /* erasures still pending (a segment could not be read) */
    double seconds;
};

/*
 * Erases conversations everywhere this store keeps them: hot (events,
 * index, timeline, SEM anomalies, their share of the rollups; freed space
 * zeroed, the WAL truncated), then every warm and cold segment holding a
 * record of them, written again without those records (same path, renamed
 * over the old file after it is synced; the journal and the manifest
 * updated after), a segment left empty deleted. The erasure log keeps one
 * record per conversation (its id as a keyed hash, the reason, counts):
 * tokens (a value's hmac: token as redaction stored it) erase every event
 * and archive record holding one, logged under the token; and
 * events of an erased conversation are refused by every later ingest or
 * restore. "pending" until the archive pass is done; every retention run
 * finishes pending erasures, so a kill at any step is completed by the
 * next run or erase. dry_run: counts only.
 */
int fr_retention_erase(struct fr_store *st, const struct fr_retention_policy *p,
                       const char *const *convs, size_t n, const char *const *tokens,
                       size_t ntokens, const char *reason, int64_t now_ms, bool dry_run,
                       struct fr_erase_stats *stats, struct fr_err *err);

/* What a rebuild did: segments restored, already in the table, gone, unreadable. */
struct fr_rebuild_stats {
    size_t restored, present, missing, unreadable, foreign;
};

/*
 * Rebuilds missing manifest entries from the MANIFEST file beside the
 * segments: the last line per path decides whether it should exist; each
 * such segment is verified (SHA-256) and recorded. A listed file that is
 * gone or does not verify is counted and logged, and the others are
 * restored all the same.
 */
int fr_retention_rebuild(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                         struct fr_rebuild_stats *out, struct fr_err *err);

/*
 * archive restore: puts recs (the segment's events, prepared by the caller;
 * marked restored, so they are not counted again) back into hot and removes
 * the segment's entry in one transaction, then journals the delete and
 * removes the file. *duplicates counts events hot already held.
 */
int fr_retention_restore(struct fr_store *st, const struct fr_retention_policy *p,
                         const char *segpath, struct fr_record *recs, size_t n, int64_t now_ms,
                         size_t *duplicates, struct fr_err *err);

/*
 * Loads the archive and cold key files the policy names, each only when it
 * exists or its create flag is set (then it is made, 0600); one absent
 * leaves its ring empty. Fails on a file that exists and is not a key file
 * or is readable by others. Wipe with fr_archive_keys_wipe().
 */
int fr_retention_keys(const struct fr_retention_policy *p, bool create_auth, bool create_cold,
                      struct fr_archive_keys *k, struct fr_err *err);
void fr_archive_keys_wipe(struct fr_archive_keys *k);

/* ---- bad segments (scrub.c) ---- */

/*
 * Verifies one segment file: structure, HMAC (version 3, with keys->auth)
 * or SHA-256, and, sha256 given, that its check value is the manifest's.
 * *how: FR_CHECK_NONE (version 3 without the archive key: header only),
 * FR_CHECK_SHA256 (versions 1, 2) or FR_CHECK_HMAC.
 */
enum { FR_CHECK_NONE = 0, FR_CHECK_SHA256 = 1, FR_CHECK_HMAC = 2 };
int fr_segment_verify(const char *path, const char *sha256, const struct fr_archive_keys *keys,
                      int *how, struct fr_err *err);

struct fr_scrub_stats {
    uint64_t verified, bytes; /* segments verified this pass and their bytes */
    uint64_t bad;             /* segments known bad after the pass */
    uint64_t left;            /* changed segments left for the next pass (budget) */
};

/*
 * Verifies every segment whose file changed since its last verification
 * (its stamp: size, inode, modification time), up to budget_bytes (0: no
 * bound), and marks each bad (with why) or good in the manifest.
 */
int fr_retention_scrub(struct fr_store *st, const struct fr_retention_policy *p,
                       uint64_t budget_bytes, struct fr_scrub_stats *stats, struct fr_err *err);

/*
 * Moves a bad segment aside: to the quarantine folder under the archive
 * folder, its manifest entry removed (the retention log says why), a
 * MANIFEST "delete" journaled, so no reader, run or rebuild takes it again.
 * name: as `archive list` prints it, or a path.
 */
int fr_retention_quarantine(struct fr_store *st, const struct fr_retention_policy *p,
                            const char *name, int64_t now_ms, char **moved_to, struct fr_err *err);

/* ---- reading across tiers (reader.c) ---- */

/*
 * Archived events matching f (conv_id, kind, errors_only, error_class,
 * error_code, since, until), per segment in time order; row->tier says
 * "warm" or "cold". Cold segments are read only with keys->cold (empty or keys NULL:
 * they are skipped and counted in *cold_skipped).
 */
int fr_archive_events(struct fr_store *st, const struct fr_event_filter *f,
                      const struct fr_archive_keys *keys, fr_event_cb cb, void *ud,
                      size_t *cold_skipped, struct fr_err *err);

/*
 * The events matching f in every tier: hot rows, then archived ones, read
 * in one snapshot so that a concurrent or interrupted move to warm never
 * shows a row twice or loses it (a segment still "deleting" yields only the
 * records whose hot row is gone). *cold_skipped counts the segments not
 * read: cold ones without the key, and any that does not open or read
 * (logged at warn with its name and why; the others are read all the same).
 */
int fr_tier_events(struct fr_store *st, const struct fr_event_filter *f,
                   const struct fr_archive_keys *keys, fr_event_cb cb, void *ud,
                   size_t *cold_skipped, struct fr_err *err);

/*
 * A page of fr_tier_events: *total is how many events match f in every tier
 * (f's offset and limit aside). When no archived segment can hold any of them
 * (the archive map and the segments' time ranges say so; none is opened),
 * only the page is read, from hot's index (fr_store_events_page: f->offset < 0
 * for the last ones): cb gets the page in order, and *whole is false. Otherwise
 * *whole is true and cb gets every matching event of every tier, as from
 * fr_tier_events, for the caller to order and slice.
 */
int fr_tier_events_page(struct fr_store *st, const struct fr_event_filter *f,
                        const struct fr_archive_keys *keys, fr_event_cb cb, void *ud,
                        int64_t *total, bool *whole, size_t *cold_skipped, struct fr_err *err);

/*
 * Failures matching f (errors only) in every tier, grouped by "code",
 * "class", "model", "tool" or "kind": one row per key with the number of
 * failures, of conversations hit, the first and the last time; most
 * frequent first, at most f->limit rows (0 = all). The same view as
 * fr_store_error_groups() over hot alone.
 */
int fr_tier_error_groups(struct fr_store *st, const struct fr_event_filter *f,
                         const struct fr_archive_keys *keys, const char *by, fr_error_group_cb cb,
                         void *ud, size_t *cold_skipped, struct fr_err *err);

/* Every record of one segment (cat), as JSON lines to cb. */
int fr_archive_records(const char *path, const struct fr_archive_keys *keys,
                       int (*cb)(void *ud, const char *json, size_t len), void *ud,
                       struct fr_err *err);

#endif
