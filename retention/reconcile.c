/*
 * retention/reconcile.c - after a crash, the archive folder and the
 * manifest are made to agree: segments left "deleting" are finished, a
 * segment written but never recorded is adopted (its rows leave hot),
 * leftovers of finished transitions are removed, and the MANIFEST journal
 * is brought back in line with the table. Every run starts here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/internal.h"
#include "retention/objstore.h"
#include "retention/record.h"

/* A segment whose deletion was committed but whose file survived a crash. */
static bool
was_deleted(struct fr_store *st, const char *path)
{
    return fr_store_was_removed(st, path);
}

struct id_list {
    struct fr_row_key *v;
    size_t n, cap;
};

static int
collect_ids(void *ud, const char *json, size_t len)
{
    struct id_list *l = ud;
    struct fr_warm_record r;
    if (fr_warm_record_parse(json, len, NULL, &r, NULL) == FR_OK && r.type == FR_WARM_EVENT) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->v = fr_realloc(l->v, l->cap * sizeof *l->v);
        }
        l->v[l->n++] = (struct fr_row_key){r.row.id, r.row.ingested_ms};
    }
    fr_warm_record_clear(&r);
    return 0;
}

int
fr_retention_reconcile(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                       struct fr_retention_stats *stats, struct fr_err *err)
{
    struct paths man = {0};
    int rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    if (rc != FR_OK)
        return rc;
    struct fr_archive_keys keys;
    rc = fr_retention_keys(p, true, false, &keys, err);
    if (rc != FR_OK) {
        fr_ret_paths_free(&man);
        return rc;
    }
    bool have_cold = keys.cold.n > 0;
    char store_id[17] = "";
    fr_store_id(st, store_id, NULL); /* "" (an older store): every segment is taken as ours */
    DIR *d = opendir(p->archive_dir);
    struct dirent *e;
    while (rc == FR_OK && d != NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *path = fr_asprintf("%s/%s", p->archive_dir, e->d_name);
        if (n > 8 && strcmp(e->d_name + n - 8, ".seg.tmp") == 0) {
            unlink(path); /* a segment whose writing never finished */
            stats->orphans_removed++;
        } else if (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0 &&
                   !fr_ret_paths_has(&man, path) && !fr_ret_foreign(path, store_id)) {
            char *twin = fr_ret_twin_path(path);
            struct fr_seg *seg = NULL;
            struct fr_err serr = {0};
            bool cold_file = strstr(path, ".cold.seg") != NULL;
            int orc = fr_seg_open(path, &keys, &seg, &serr);
            bool authentic = orc == FR_OK && fr_seg_get_info(seg)->authenticated;
            if (orc == FR_E_AUTH || (orc == FR_OK && !authentic)) {
                /* not written with this store's archive key: never adopted (its rows would
                   replace hot ones), never deleted (it may be someone's data): left, said */
                fr_log(FR_LOG_WARN, "retention", "%s is not adopted: %s; left in place", path,
                       orc != FR_OK ? serr.msg
                                    : "it is not authenticated with the archive key (written "
                                      "before archive keys, or not by flightrec)");
                stats->unauthenticated++;
            } else if (twin && fr_ret_paths_has(&man, twin) && cold_file && orc == FR_OK &&
                       have_cold) {
                /* warm -> cold was cut short after the cold file was in place: finish it */
                struct fr_manifest_row m;
                fr_ret_info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
                rc = fr_ret_journal_append(p, "replace", &m, NULL, err);
                if (rc == FR_OK)
                    rc = fr_store_manifest_replace(st, twin, &m, err);
                if (rc == FR_OK) {
                    unlink(twin);
                    stats->adopted++;
                }
            } else if ((twin && fr_ret_paths_has(&man, twin)) || orc != FR_OK ||
                       was_deleted(st, path)) {
                /* a leftover of a finished transition, or not a valid segment */
                if (orc != FR_OK)
                    fr_log(FR_LOG_WARN, "retention", "removing %s: %s", path, serr.msg);
                unlink(path);
                stats->orphans_removed++;
                rc = fr_store_retention_log(st, "remove_orphan", path, 0, 0, 0,
                                            orc != FR_OK ? serr.msg : "superseded", now_ms, err);
            } else {
                /* written and synced, but the run stopped before the manifest: adopt it,
                   and remove from hot the rows it already holds */
                struct id_list ids = {0};
                rc = fr_seg_each(seg, NULL, 0, 0, collect_ids, &ids, err);
                struct fr_manifest_row m;
                fr_ret_info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
                if (rc == FR_OK)
                    rc = fr_ret_journal_append(p, "adopt", &m, NULL, err);
                if (rc == FR_OK)
                    rc = fr_store_archive_commit(st, &m, ids.v, ids.n, err);
                if (rc == FR_OK) {
                    stats->adopted++;
                    stats->duplicates_removed += ids.n;
                }
                free(ids.v);
            }
            fr_seg_close(seg);
            free(twin);
        }
        free(path);
    }
    if (d != NULL)
        closedir(d);
    /* entries whose rows were still leaving hot when a run stopped */
    struct paths pend = {0};
    if (rc == FR_OK)
        rc = fr_store_pending(st, fr_ret_collect_path, &pend, err);
    for (size_t i = 0; rc == FR_OK && i < pend.n; i++) {
        struct fr_seg *seg;
        rc = fr_seg_open(pend.v[i], &keys, &seg, err);
        if (rc != FR_OK)
            break;
        struct id_list ids = {0};
        rc = fr_seg_each(seg, NULL, 0, 0, collect_ids, &ids, err);
        fr_seg_close(seg);
        size_t before = ids.n;
        if (rc == FR_OK)
            rc = fr_store_archive_finish(st, pend.v[i], ids.v, ids.n, err);
        if (rc == FR_OK)
            stats->duplicates_removed += before;
        free(ids.v);
    }
    fr_ret_paths_free(&pend);
    /* an erasure a kill interrupted is finished: its conversation leaves the archive */
    if (rc == FR_OK) {
        struct fr_erase_stats es = {0};
        rc = fr_ret_erase_archive(st, p, NULL, 0, NULL, 0, now_ms, false, &es, err);
        if (es.segments_rewritten + es.segments_deleted > 0)
            fr_log(FR_LOG_WARN, "retention",
                   "finished a pending erasure: %llu segments rewritten, %llu deleted, %llu "
                   "records removed",
                   (unsigned long long)es.segments_rewritten,
                   (unsigned long long)es.segments_deleted, (unsigned long long)es.records_removed);
    }
    /* segments without a map (older ones, adopted or rebuilt ones, a kill before the map
       was written) get one, so readers open only the blocks they need */
    size_t mapped = 0;
    if (rc == FR_OK)
        rc = fr_ret_map_missing(st, &keys, &mapped, err);
    stats->mapped += mapped;
    /* the journal agrees with the table again, whatever step a kill interrupted */
    size_t repaired = 0;
    if (rc == FR_OK)
        rc = fr_ret_journal_repair(st, p, &repaired, err);
    stats->journal_repaired += repaired;
    for (size_t i = 0; i < man.n; i++)
        if (access(man.v[i], F_OK) != 0 && !fr_objstore_remote(man.v[i])) {
            stats->missing_files++;
            fr_log(FR_LOG_ERROR, "retention", "segment %s is in the manifest but missing",
                   man.v[i]);
        }
    fr_archive_keys_wipe(&keys);
    fr_ret_paths_free(&man);
    return rc;
}
