/*
 * retention/internal.h - shared by the files of the retention stage only:
 * the manifest helpers (manifest.c) that the mover and reconciliation both
 * use, and the test-only crash points.
 *
 *   policy.c     the retention policy (configs/retention.yaml)
 *   record.c     the warm record codec
 *   manifest.c   the MANIFEST journal beside the segments, rebuild from it, path lists
 *   reconcile.c  files vs manifest after a crash
 *   mover.c      the run: hot -> warm -> cold -> deleted
 *   reader.c     reading across tiers
 *   map.c        the archive map: which segment blocks hold a conversation or trace
 *   scrub.c      verifying changed segments, marking bad ones, quarantine
 *   segment.c    the segment file; columns.c its columnar blocks (formats 4, 5)
 */
#ifndef FR_RETENTION_INTERNAL_H
#define FR_RETENTION_INTERNAL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "retention/hot/archive.h"
#include "retention/retention.h"

/*
 * Test hook, compiled only into test builds (FR_TEST_HOOKS, make test):
 * FLIGHTREC_CRASH_AT=<point> ends the process with SIGKILL there. A release
 * build has no such switch.
 */
#ifdef FR_TEST_HOOKS
static inline void
fr_ret_crash_point(const char *name)
{
    const char *at = getenv("FLIGHTREC_CRASH_AT");
    if (at != NULL && strcmp(at, name) == 0)
        raise(SIGKILL);
}
#else
#define fr_ret_crash_point(name) ((void)0)
#endif

/*
 * A list of segment paths; read from the manifest (fr_ret_collect_manifest),
 * also each entry's tier, time range, state, check value and health (sha,
 * bad and checked NULL when the entry has none).
 */
struct paths {
    char **v;
    char **tier;
    int64_t *min_ts, *max_ts;
    bool *pending, *mapped;
    char **sha, **bad, **checked;
    size_t n;
};

/* fr_store_manifest() callback adding each entry to a struct paths. */
int fr_ret_collect_manifest(void *ud, const struct fr_manifest_row *r);
/* fr_store_pending() callback adding each path. */
int fr_ret_collect_path(void *ud, const char *path);
void fr_ret_paths_free(struct paths *p);
bool fr_ret_paths_has(const struct paths *p, const char *path);

/* The other tier's file name of a segment (x.warm.seg <-> x.cold.seg); caller frees; NULL if none.
 */
char *fr_ret_twin_path(const char *path);

/* A manifest row describing a written segment (strings borrowed from info and path). */
void fr_ret_info_to_row(const struct fr_seg_info *info, const char *path, int64_t now,
                        struct fr_manifest_row *m);

/*
 * Appends one record ("add", "adopt", "replace", "delete") to the MANIFEST
 * journal beside the segments and fsyncs it; failures are returned.
 */
int fr_ret_journal_append(const struct fr_retention_policy *p, const char *action,
                          const struct fr_manifest_row *m, const char *path, struct fr_err *err);

/*
 * Ordering that keeps the journal a superset of the table at every moment
 * (so `archive rebuild` after any kill restores all the table held): a
 * record that makes a segment exist ("add", "adopt", "replace") is
 * journaled before the database commits it; a "delete" after. A kill in
 * between leaves the journal naming a segment the table does not, which
 * the next run's reconciliation settles (adopts the file, or journals the
 * delete).
 */

/*
 * Whether the segment at path belongs to another store (its header names a
 * store id that is not ours): a store sharing the archive folder. Such a
 * file is never adopted, removed or restored.
 */
bool fr_ret_foreign(const char *path, const char *store_id);

/* The journal's last word on each path: a new object {path: record}; empty when absent. */
int fr_ret_journal_state(const struct fr_retention_policy *p, json_t **out, struct fr_err *err);

/*
 * Makes the journal agree with the table: journals "add" for every table
 * row it does not name with that tier, "delete" for every path it names
 * that neither the table nor the folder holds. *repaired counts the records.
 */
int fr_ret_journal_repair(struct fr_store *st, const struct fr_retention_policy *p,
                          size_t *repaired, struct fr_err *err);

/*
 * One archive writer at a time per archive folder: a retention run or an
 * erasure holds an exclusive lock on <archive_dir>/.lock (flock) from start
 * to end; another waits (saying so at info). *fd: -1 when nothing to unlock.
 */
int fr_ret_lock(const struct fr_retention_policy *p, int *fd, struct fr_err *err);
void fr_ret_unlock(int fd);

/* What a segment record is filed under: its conversation (NULL: none) and time. */
struct fr_ret_rec_key {
    json_t *j; /* owns conv and trace */
    const char *conv, *trace;
    int64_t ts;
};

/* The conversation and time of a segment record: an event's, a conversation summary's
   (its last_ms), a runtime minute's. */
void fr_ret_record_key(const char *json, size_t len, struct fr_ret_rec_key *k);
void fr_ret_record_key_clear(struct fr_ret_rec_key *k);

/* ---- the archive map (map.c) ---- */

/* Records the map of the segment w just wrote at path (a failure is logged: reads fall back). */
void fr_ret_map_writer(struct fr_store *st, const struct fr_seg_writer *w, const char *path);
/* Maps an open segment from its records. */
int fr_ret_map_segment(struct fr_store *st, struct fr_seg *seg, const char *path,
                       struct fr_err *err);
/* Maps every manifest entry without a map that can be read (reconciliation); *mapped counts. */
int fr_ret_map_missing(struct fr_store *st, const struct fr_archive_keys *keys, size_t *mapped,
                       struct fr_err *err);
/* Logs a segment that did not open or read and marks it bad in the manifest (why->msg),
   unless only a key was missing. */
void fr_ret_segment_unreadable(struct fr_store *st, const char *path, const struct fr_err *why);

/* Erases what pending erasures still have in the archive (erase.c; reconciliation runs it). */
int fr_ret_erase_archive(struct fr_store *st, const struct fr_retention_policy *p,
                         const char *const *convs, size_t nconvs, const char *const *tokens,
                         size_t ntokens, int64_t now_ms, bool dry_run, struct fr_erase_stats *stats,
                         struct fr_err *err);

#endif
