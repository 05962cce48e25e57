/*
 * retention/map.c - keeping the archive map (retention/hot/archive.h):
 * after each segment is written its (conversation or trace, block) pairs go
 * into the store; segments without a map (written before schema 10, or a
 * kill between the segment's commit and its map) are mapped by every
 * reconciliation from their records. A map that cannot be written costs
 * only speed: the segment is read as before, through its Bloom filters.
 */
#include "core/log.h"
#include "core/mem.h"
#include "retention/internal.h"

void
fr_ret_map_writer(struct fr_store *st, const struct fr_seg_writer *w, const char *path)
{
    struct fr_archive_key *keys;
    size_t n = fr_seg_writer_map(w, &keys);
    struct fr_err err = {0};
    if (fr_store_archive_map(st, path, keys, n, &err) != FR_OK)
        fr_log(FR_LOG_WARN, "retention", "%s: no archive map (read the slower way): %s", path,
               err.msg);
    free(keys);
}

struct map_acc {
    struct fr_archive_key *v;
    size_t n, cap;
    uint32_t block;
};

static void
map_push(struct map_acc *a, char kind, const char *id)
{
    if (id == NULL || *id == '\0')
        return;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = fr_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = (struct fr_archive_key){fr_seg_key_hash(kind, id), a->block};
}

static int
map_record(void *ud, const char *json, size_t len)
{
    struct map_acc *a = ud;
    struct fr_ret_rec_key k;
    fr_ret_record_key(json, len, &k);
    map_push(a, 'c', k.conv);
    map_push(a, 't', k.trace);
    fr_ret_record_key_clear(&k);
    return 0;
}

void
fr_ret_segment_unreadable(struct fr_store *st, const char *path, const struct fr_err *why)
{
    fr_log(FR_LOG_WARN, "retention", "segment not read: %s", why->msg);
    /* a key not loaded is not the segment's fault */
    if (why->code != FR_E_CONFIG)
        fr_store_segment_health(st, path, why->msg, NULL, NULL);
}

int
fr_ret_map_segment(struct fr_store *st, struct fr_seg *seg, const char *path, struct fr_err *err)
{
    struct map_acc a = {0};
    int rc = FR_OK;
    uint64_t nblocks = fr_seg_get_info(seg)->blocks;
    for (uint32_t b = 0; rc == FR_OK && b < nblocks; b++) {
        a.block = b;
        rc = fr_seg_each_block(seg, &b, 1, map_record, &a, err);
    }
    if (rc == FR_OK)
        rc = fr_store_archive_map(st, path, a.v, a.n, err); /* duplicates are ignored */
    free(a.v);
    return rc;
}

static int
collect_unmapped(void *ud, const struct fr_manifest_row *r)
{
    return r->mapped ? 0 : fr_ret_collect_manifest(ud, r);
}

int
fr_ret_map_missing(struct fr_store *st, const struct fr_archive_keys *keys, size_t *mapped,
                   struct fr_err *err)
{
    struct paths todo = {0};
    *mapped = 0;
    int rc = fr_store_manifest(st, collect_unmapped, &todo, err);
    if (todo.n > 1) /* after an upgrade: every older segment is read once */
        fr_log(FR_LOG_INFO, "retention",
               "mapping %zu segments without an archive map (read once; reads of them use "
               "their Bloom filters until then)",
               todo.n);
    for (size_t i = 0; rc == FR_OK && i < todo.n; i++) {
        bool cold = strcmp(todo.tier[i], "cold") == 0;
        if (cold && keys->cold.n == 0)
            continue; /* read without the map when the key is there */
        struct fr_seg *seg;
        struct fr_err serr = {0};
        if (fr_seg_open(todo.v[i], keys, &seg, &serr) != FR_OK ||
            fr_ret_map_segment(st, seg, todo.v[i], &serr) != FR_OK) {
            if (serr.code == FR_E_BUSY || serr.code == FR_E_STORE)
                rc = fr_err_set(err, serr.code, "%s", serr.msg);
            else
                fr_ret_segment_unreadable(st, todo.v[i], &serr);
        } else {
            (*mapped)++;
        }
        fr_seg_close(seg);
    }
    fr_ret_paths_free(&todo);
    return rc;
}
