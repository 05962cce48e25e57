/*
 * retention/hot/postgres_archive.c - the fleet store's archive manifest:
 * the segments central retention wrote from expired day partitions before
 * dropping them (`flightrec fleet prune --policy`), read by the same
 * cross-tier queries as the embedded store's (fr_tier_events), by `archive
 * list|verify|cat --db postgres://...`, and fetched from the policy's bucket
 * when not held locally. Table archive_segments (schema version 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "retention/hot/archive.h"
#include "retention/hot/pg_int.h"

int
pg_manifest(void *ctx, int (*cb)(void *ud, const struct fr_manifest_row *r), void *ud,
            struct fr_err *err)
{
    struct pg_store *s = ctx;
    PGresult *r = PQexec(s->c, "SELECT path, tier, min_ts, max_ts, records, raw_bytes, file_bytes,"
                               " sha256, policy, key_id, created_ms, bad, checked,"
                               " map_id IS NOT NULL FROM archive_segments ORDER BY min_ts, path");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_fail(s, "reading the archive manifest", err);
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct fr_manifest_row m = {.path = pg_col_text(r, i, 0),
                                    .tier = pg_col_text(r, i, 1),
                                    .min_ts = pg_col_int(r, i, 2),
                                    .max_ts = pg_col_int(r, i, 3),
                                    .records = pg_col_int(r, i, 4),
                                    .raw_bytes = pg_col_int(r, i, 5),
                                    .file_bytes = pg_col_int(r, i, 6),
                                    .sha256 = pg_col_text(r, i, 7),
                                    .policy = pg_col_text(r, i, 8),
                                    .key_id = pg_col_text(r, i, 9),
                                    .created_ms = pg_col_int(r, i, 10),
                                    .bad = pg_col_text(r, i, 11),
                                    .checked = pg_col_text(r, i, 12),
                                    .mapped = PQgetvalue(r, i, 13)[0] == 't'};
        if (cb(ud, &m) != 0)
            break;
    }
    PQclear(r);
    return FR_OK;
}

static int
pg_params(struct pg_store *s, const char *sql, int n, const char *const *v, const char *what,
          struct fr_err *err)
{
    PGresult *r = PQexecParams(s->c, sql, n, NULL, v, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? FR_OK : pg_fail(s, what, err);
    PQclear(r);
    return rc;
}

/* A segment's map goes with its entry (and when its file is written again). */
static int
unmap(struct pg_store *s, const char *path, struct fr_err *err)
{
    const char *v[1] = {path};
    return pg_params(s,
                     "WITH old AS (SELECT map_id FROM archive_segments WHERE path = $1"
                     " AND map_id IS NOT NULL),"
                     " d AS (DELETE FROM archive_map WHERE seg IN (SELECT map_id FROM old))"
                     " UPDATE archive_segments SET map_id = NULL WHERE path = $1"
                     " AND map_id IS NOT NULL",
                     1, v, "removing a segment's archive map", err);
}

int
pg_manifest_add(void *ctx, const struct fr_manifest_row *m, struct fr_err *err)
{
    int urc = unmap(ctx, m->path, err);
    if (urc != FR_OK)
        return urc;
    char n[6][24];
    const int64_t nums[6] = {m->min_ts,    m->max_ts,     m->records,
                             m->raw_bytes, m->file_bytes, m->created_ms};
    for (int i = 0; i < 6; i++)
        snprintf(n[i], sizeof n[i], "%lld", (long long)nums[i]);
    const char *v[11] = {m->path, m->tier,   n[0],      n[1],      n[2], n[3],
                         n[4],    m->sha256, m->policy, m->key_id, n[5]};
    return pg_params(ctx,
                     "INSERT INTO archive_segments (path, tier, min_ts, max_ts, records, raw_bytes,"
                     " file_bytes, sha256, policy, key_id, created_ms)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                     " ON CONFLICT (path) DO UPDATE SET tier = EXCLUDED.tier,"
                     " min_ts = EXCLUDED.min_ts, max_ts = EXCLUDED.max_ts,"
                     " records = EXCLUDED.records, raw_bytes = EXCLUDED.raw_bytes,"
                     " file_bytes = EXCLUDED.file_bytes, sha256 = EXCLUDED.sha256,"
                     " policy = EXCLUDED.policy, key_id = EXCLUDED.key_id, bad = NULL,"
                     " checked = NULL",
                     11, v, "recording a segment in the archive manifest", err);
}

int
pg_manifest_remove(void *ctx, const char *path, const char *why, int64_t now_ms, struct fr_err *err)
{
    (void)why;
    (void)now_ms;
    const char *v[1] = {path};
    int rc = unmap(ctx, path, err);
    if (rc != FR_OK)
        return rc;
    return pg_params(ctx, "DELETE FROM archive_segments WHERE path = $1", 1, v,
                     "removing a segment from the archive manifest", err);
}

int
pg_segment_health(void *ctx, const char *path, const char *why, const char *checked,
                  struct fr_err *err)
{
    const char *v[3] = {path, why, checked};
    return pg_params(ctx,
                     checked ? "UPDATE archive_segments SET bad = $2, checked = $3 WHERE path = $1"
                             : "UPDATE archive_segments SET bad = $2 WHERE path = $1",
                     checked ? 3 : 2, v, "recording a segment's health", err);
}

int
pg_manifest_replace(void *ctx, const char *old_path, const struct fr_manifest_row *m,
                    struct fr_err *err)
{
    int rc = pg_manifest_remove(ctx, old_path, NULL, 0, err);
    return rc == FR_OK ? pg_manifest_add(ctx, m, err) : rc;
}

/* ---- the erasure log, as the archive pass reads it ---- */

int
pg_erase_subject(void *ctx, const char *conv_id, char out[33], struct fr_err *err)
{
    struct pg_store *s = ctx;
    char hashed[72];
    const char *v[1] = {pg_id(conv_id, hashed)}; /* as the fleet store keys it */
    PGresult *r =
        PQexecParams(s->c, "SELECT left(fr_erase_subject($1), 32)", 1, NULL, v, NULL, NULL, 0);
    int rc = FR_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        rc = pg_fail(s, "keying an erasure", err);
    else
        snprintf(out, 33, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

int
pg_erasures(void *ctx, bool pending_only, int (*cb)(void *ud, const struct fr_erasure_row *r),
            void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    PGresult *r =
        PQexec(s->c, pending_only ? "SELECT kind, CASE kind WHEN 'conv' THEN left(subject, 32)"
                                    " ELSE subject END, ts_ms, done_ms, reason, state, events,"
                                    " segments, records, bytes FROM erasures"
                                    " WHERE state = 'pending' ORDER BY ts_ms"
                                  : "SELECT kind, CASE kind WHEN 'conv' THEN left(subject, 32)"
                                    " ELSE subject END, ts_ms, done_ms, reason, state, events,"
                                    " segments, records, bytes FROM erasures ORDER BY ts_ms");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_fail(s, "reading the erasure log", err);
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct fr_erasure_row e = {.kind = pg_col_text(r, i, 0),
                                   .subject = pg_col_text(r, i, 1),
                                   .ts_ms = pg_col_int(r, i, 2),
                                   .done_ms = pg_col_int(r, i, 3),
                                   .reason = pg_col_text(r, i, 4),
                                   .state = pg_col_text(r, i, 5),
                                   .hot_events = pg_col_int(r, i, 6),
                                   .segments = pg_col_int(r, i, 7),
                                   .records = pg_col_int(r, i, 8),
                                   .bytes = pg_col_int(r, i, 9)};
        if (cb(ud, &e) != 0)
            break;
    }
    PQclear(r);
    return FR_OK;
}

int
pg_erase_done(void *ctx, const char *subject, int64_t segments, int64_t records, int64_t bytes,
              int64_t now_ms, struct fr_err *err)
{
    char n[4][24];
    const int64_t nums[4] = {segments, records, bytes, now_ms};
    for (int i = 0; i < 4; i++)
        snprintf(n[i], sizeof n[i], "%lld", (long long)nums[i]);
    const char *v[5] = {subject, n[0], n[1], n[2], n[3]};
    return pg_params(ctx,
                     "UPDATE erasures SET state = 'done', done_ms = $5, segments = segments + $2,"
                     " records = records + $3, bytes = bytes + $4"
                     " WHERE state = 'pending' AND ((kind = 'conv' AND left(subject, 32) = $1)"
                     " OR (kind = 'hmac' AND subject = $1))",
                     5, v, "marking an erasure done", err);
}

/* ---- the archive map ---- */

/* Appends v to an array literal being built ("{1,2,3}"). */
static void
arr_add(char **a, size_t *len, size_t *cap, long long v)
{
    if (*len + 24 >= *cap)
        *a = fr_realloc(*a, *cap = (*cap + 24) * 2);
    *len += (size_t)snprintf(*a + *len, *cap - *len, "%s%lld", *len > 1 ? "," : "", v);
}

int
pg_archive_map(void *ctx, const char *path, const struct fr_archive_key *keys, size_t n,
               struct fr_err *err)
{
    struct pg_store *s = ctx;
    int rc = pg_exec(s, "BEGIN", "writing the archive map", err);
    if (rc == FR_OK)
        rc = unmap(s, path, err);
    size_t hl = 1, hc = 64, bl = 1, bc = 64;
    char *hs = fr_malloc(hc), *bs = fr_malloc(bc);
    hs[0] = bs[0] = '{';
    for (size_t i = 0; i < n; i++) {
        arr_add(&hs, &hl, &hc, (long long)(int64_t)keys[i].hash); /* as a signed integer */
        arr_add(&bs, &bl, &bc, (long long)keys[i].block);
    }
    hs = fr_realloc(hs, hl + 2);
    bs = fr_realloc(bs, bl + 2);
    memcpy(hs + hl, "}", 2);
    memcpy(bs + bl, "}", 2);
    const char *v[3] = {path, hs, bs};
    if (rc == FR_OK)
        rc =
            pg_params(s,
                      "WITH seg AS (UPDATE archive_segments SET map_id = nextval('archive_map_ids')"
                      " WHERE path = $1 RETURNING map_id)"
                      " INSERT INTO archive_map SELECT k.h, seg.map_id, k.b FROM seg,"
                      " unnest($2::bigint[], $3::integer[]) AS k(h, b) ON CONFLICT DO NOTHING",
                      3, v, "writing the archive map", err);
    free(hs);
    free(bs);
    if (rc == FR_OK)
        return pg_exec(s, "COMMIT", "writing the archive map", err);
    PQclear(PQexec(s->c, "ROLLBACK"));
    return rc;
}

int
pg_archive_lookup(void *ctx, uint64_t hash, int (*cb)(void *ud, const char *path, uint32_t block),
                  void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    char h[24];
    snprintf(h, sizeof h, "%lld", (long long)(int64_t)hash);
    const char *v[1] = {h};
    PGresult *r = PQexecParams(s->c,
                               "SELECT a.path, m.block FROM archive_map m"
                               " JOIN archive_segments a ON a.map_id = m.seg WHERE m.h = $1"
                               " ORDER BY a.min_ts, a.path, m.block",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_fail(s, "reading the archive map", err);
    }
    for (int i = 0; i < PQntuples(r); i++)
        if (cb(ud, PQgetvalue(r, i, 0), (uint32_t)pg_col_int(r, i, 1)) != 0)
            break;
    PQclear(r);
    return FR_OK;
}
