/*
 * retention/hot/pg_int.h - private to the PostgreSQL fleet store: the
 * context shared by its write path (postgres.c) and read path
 * (postgres_query.c).
 */
#ifndef FR_STORE_PG_INT_H
#define FR_STORE_PG_INT_H

#include "retention/hot/pq_dl.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "retention/hot/store.h"

struct pg_buf {
    char *p;
    size_t n, cap;
};

struct pg_store {
    PGconn *c;
    char *safe_url; /* the location without credentials, for messages */
    bool in_txn, in_copy;
    char *host;           /* of the batch being shipped */
    char *insert_sql;     /* pg_insert_sql joined, on first use */
    struct pg_buf buf;    /* COPY data not yet sent */
    struct pg_buf narrow; /* the batch's fr_narrow rows (the fast path) */
    struct pg_buf
        links[3]; /* the batch's trace links: text[] literals of traces, conversations, times */
    bool careful; /* the batch goes through fr_stage (pg_insert_sql) */
    int64_t shipped_ms; /* when the batch began */
    char *narrow_sql;   /* pg_narrow_sql joined, on first use */
    int64_t known[64];  /* days whose partition exists */
    size_t nknown;
};

char *pg_safe_url(const char *url);
/* An id as the fleet store keys it: itself, or past PG_ID_MAX bytes "sha256:<hex>" (out, 72). */
#define PG_ID_MAX 1024
const char *pg_id(const char *id, char out[72]);
int pg_fail(struct pg_store *s, const char *what, struct fr_err *err);
int pg_exec(struct pg_store *s, const char *sql, const char *what, struct fr_err *err);
/* A result's column as an integer (NULL: 0) or text (NULL: NULL). */
int64_t pg_col_int(PGresult *r, int row, int col);
const char *pg_col_text(PGresult *r, int row, int col);

int pg_conversations(void *ctx, const struct fr_conv_filter *f, fr_conv_cb cb, void *ud,
                     struct fr_err *err);
int pg_conversation(void *ctx, const char *conv_id, fr_conv_cb cb, void *ud, struct fr_err *err);
int pg_count_events(void *ctx, const struct fr_event_filter *f, int64_t *n, struct fr_err *err);
int pg_events(void *ctx, const struct fr_event_filter *f, fr_event_cb cb, void *ud,
              struct fr_err *err);
int pg_rollups(void *ctx, const struct fr_rollup_filter *f, fr_rollup_cb cb, void *ud,
               struct fr_err *err);
int pg_error_groups(void *ctx, const struct fr_event_filter *f, const char *by,
                    fr_error_group_cb cb, void *ud, struct fr_err *err);

/* postgres_archive.c: the archive manifest (schema version 2) */
struct fr_manifest_row;
int pg_manifest(void *ctx, int (*cb)(void *ud, const struct fr_manifest_row *r), void *ud,
                struct fr_err *err);
int pg_manifest_add(void *ctx, const struct fr_manifest_row *m, struct fr_err *err);
int pg_manifest_remove(void *ctx, const char *path, const char *why, int64_t now_ms,
                       struct fr_err *err);
int pg_segment_health(void *ctx, const char *path, const char *why, const char *checked,
                      struct fr_err *err);
struct fr_archive_key;
int pg_archive_map(void *ctx, const char *path, const struct fr_archive_key *keys, size_t n,
                   struct fr_err *err);
int pg_archive_lookup(void *ctx, uint64_t hash,
                      int (*cb)(void *ud, const char *path, uint32_t block), void *ud,
                      struct fr_err *err);
int pg_manifest_replace(void *ctx, const char *old_path, const struct fr_manifest_row *m,
                        struct fr_err *err);
/* the erasure log's archive side: subjects as the archive pass keys them (32 hex) */
struct fr_erasure_row;
int pg_erase_subject(void *ctx, const char *conv_id, char out[33], struct fr_err *err);
int pg_erasures(void *ctx, bool pending_only, int (*cb)(void *ud, const struct fr_erasure_row *r),
                void *ud, struct fr_err *err);
int pg_erase_done(void *ctx, const char *subject, int64_t segments, int64_t records, int64_t bytes,
                  int64_t now_ms, struct fr_err *err);

#endif
