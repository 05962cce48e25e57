/*
 * retention/hot/sqlite_map.c - the archive map (schema version 10): which
 * blocks of which segments hold a conversation or a trace, keyed by the
 * id's 64-bit hash (retention/segment.h), so a reader opens only those;
 * and the segments found unreadable, which /readyz, /metrics and archive
 * verify report. Removing or replacing a manifest entry removes its map
 * (a trigger), so a map never outlives the file it describes.
 */
#include <sqlite3.h>

#include "retention/hot/sqlite_int.h"

static int
map_fail(struct sq_store *s, int rc, struct fr_err *err)
{
    return sq_fail(s->db, rc, err, "writing the archive map");
}

int
sq_archive_map(void *ctx, const char *path, const struct fr_archive_key *keys, size_t n,
               struct fr_err *err)
{
    struct sq_store *s = ctx;
    int rc = sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc != FR_OK)
        return rc;
    sqlite3_stmt *q = NULL;
    int64_t id = 0;
    /* the old map goes (a segment rewritten in place keeps its path), a new id is drawn */
    int src = sqlite3_prepare_v2(s->db,
                                 "DELETE FROM archive_map WHERE seg ="
                                 " (SELECT map_id FROM archive_segments WHERE path = ?1)",
                                 -1, &q, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        src = sqlite3_step(q);
        sqlite3_finalize(q);
        src = src == SQLITE_DONE ? SQLITE_OK : src;
    }
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(s->db,
                                 "UPDATE archive_segments SET map_id ="
                                 " (SELECT ifnull(max(map_id), 0) + 1 FROM archive_segments)"
                                 " WHERE path = ?1 RETURNING map_id",
                                 -1, &q, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        src = sqlite3_step(q);
        if (src == SQLITE_ROW)
            id = sqlite3_column_int64(q, 0);
        src = src == SQLITE_ROW || src == SQLITE_DONE ? SQLITE_OK : src;
        sqlite3_finalize(q);
    }
    if (src == SQLITE_OK && id > 0)
        src = sqlite3_prepare_v2(
            s->db, "INSERT OR IGNORE INTO archive_map(h, seg, block) VALUES(?1, ?2, ?3)", -1, &q,
            NULL);
    for (size_t i = 0; src == SQLITE_OK && id > 0 && i < n; i++) {
        sqlite3_bind_int64(q, 1, (int64_t)keys[i].hash);
        sqlite3_bind_int64(q, 2, id);
        sqlite3_bind_int64(q, 3, keys[i].block);
        src = sqlite3_step(q);
        sqlite3_reset(q);
        src = src == SQLITE_DONE ? SQLITE_OK : src;
    }
    if (id > 0)
        sqlite3_finalize(q);
    if (src != SQLITE_OK)
        rc = map_fail(s, src, err);
    return sq_txn_end(s, rc, err);
}

struct look_ctx {
    const struct sq_store *s;
    int (*cb)(void *, const char *, uint32_t);
    void *ud;
};

static int
look_fn(sqlite3_stmt *q, void *ud)
{
    struct look_ctx *c = ud;
    char *path = sq_abs(c->s, (const char *)sqlite3_column_text(q, 0));
    int rc = c->cb(c->ud, path, (uint32_t)sqlite3_column_int64(q, 1));
    free(path);
    return rc;
}

int
sq_archive_lookup(void *ctx, uint64_t hash, int (*cb)(void *ud, const char *path, uint32_t block),
                  void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT a.path, m.block FROM archive_map m"
                                " JOIN archive_segments a ON a.map_id = m.seg WHERE m.h = ?1"
                                " ORDER BY a.min_ts, a.path, m.block",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the archive map");
    sqlite3_bind_int64(q, 1, (int64_t)hash);
    struct look_ctx c = {s, cb, ud};
    return q_run(s, q, look_fn, &c, NULL, err);
}

int
sq_segment_health(void *ctx, const char *path, const char *why, const char *checked,
                  struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *q;
    int rc =
        sqlite3_prepare_v2(s->db,
                           "UPDATE archive_segments SET bad = ?2, checked = ifnull(?3, checked)"
                           " WHERE path = ?1 AND (bad IS NOT ?2 OR checked IS NOT ?3)",
                           -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sq_rel(s, path), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, why, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, checked, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
    }
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "marking a segment unreadable");
}
