/*
 * retention/scrub.c - finding bad segments before a reader does: every
 * segment whose file changed since it was last verified (size, inode or
 * modification time differ from the stamp the manifest keeps) is verified
 * again (structure and HMAC or SHA-256, and the manifest's check value),
 * and marked bad or good in the manifest. The agent runs it every minute
 * within a byte budget; /readyz and /metrics report what it marked, and
 * `flightrec archive verify` marks what it finds too.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"

#include "core/log.h"
#include "core/mem.h"
#include "retention/internal.h"
#include "retention/objstore.h"

int
fr_segment_verify(const char *path, const char *sha256, const struct fr_archive_keys *keys,
                  int *how, struct fr_err *err)
{
    struct fr_seg *seg;
    *how = FR_CHECK_NONE;
    int rc = fr_seg_open(path, keys, &seg, err);
    if (rc != FR_OK)
        return rc;
    const struct fr_seg_info *info = fr_seg_get_info(seg);
    *how = fr_seg_version(seg) < 3 ? FR_CHECK_SHA256
           : info->authenticated   ? FR_CHECK_HMAC
                                   : FR_CHECK_NONE;
    if (sha256 != NULL && *sha256 && strcmp(info->sha256, sha256) != 0)
        rc = fr_err_set(err, FR_E_VALUE,
                        "segment %s: its check value differs from the manifest's (replaced or "
                        "altered)",
                        path);
    fr_seg_close(seg);
    return rc;
}

int
fr_retention_scrub(struct fr_store *st, const struct fr_retention_policy *p, uint64_t budget_bytes,
                   struct fr_scrub_stats *stats, struct fr_err *err)
{
    memset(stats, 0, sizeof *stats);
    struct paths rows = {0};
    int rc = fr_store_manifest(st, fr_ret_collect_manifest, &rows, err);
    struct fr_archive_keys keys;
    if (rc == FR_OK)
        rc = fr_retention_keys(p, false, false, &keys, err);
    if (rc != FR_OK) {
        fr_ret_paths_free(&rows);
        return rc;
    }
    for (size_t i = 0; rc == FR_OK && i < rows.n; i++) {
        const char *path = rows.v[i];
        struct stat sb;
        char stamp[96];
        uint64_t size = 0;
        if (stat(path, &sb) != 0) {
            if (fr_objstore_remote(path))
                continue; /* held only in the bucket: nothing here changed */
            snprintf(stamp, sizeof stamp, "missing");
        } else {
            size = (uint64_t)sb.st_size;
            snprintf(stamp, sizeof stamp, "%lld:%llu:%lld.%09ld", (long long)sb.st_size,
                     (unsigned long long)sb.st_ino, (long long)sb.st_mtim.tv_sec,
                     sb.st_mtim.tv_nsec);
        }
        if (rows.checked[i] != NULL && strcmp(rows.checked[i], stamp) == 0) {
            stats->bad += rows.bad[i] != NULL;
            continue; /* unchanged since it was verified */
        }
        if (stats->bytes >= budget_bytes && budget_bytes > 0) {
            stats->left++;
            continue;
        }
        struct fr_err serr = {0};
        int how;
        int vrc = fr_segment_verify(path, rows.sha[i], &keys, &how, &serr);
        stats->bytes += size;
        stats->verified++;
        if (vrc == FR_OK && how == FR_CHECK_NONE)
            continue; /* no archive key: cannot tell, nothing recorded */
        const char *why = vrc == FR_OK ? NULL : serr.msg;
        stats->bad += why != NULL;
        /* recorded first: once the line is logged, /readyz and /metrics say it too */
        rc = fr_store_segment_health(st, path, why, stamp, err);
        if (rc != FR_OK)
            break;
        if (why != NULL && (rows.bad[i] == NULL || strcmp(rows.bad[i], why) != 0))
            fr_log(FR_LOG_ERROR, "retention", "bad segment: %s", why);
        else if (why == NULL && rows.bad[i] != NULL)
            fr_log(FR_LOG_INFO, "retention", "segment %s reads again", path);
    }
    fr_archive_keys_wipe(&keys);
    fr_ret_paths_free(&rows);
    return rc;
}

/* The manifest entry whose file is named base (the name archive list prints). */
struct find_ctx {
    const char *base;
    char *path;
};

static int
find_row(void *ud, const struct fr_manifest_row *r)
{
    struct find_ctx *f = ud;
    const char *b = strrchr(r->path, '/');
    if (strcmp(b ? b + 1 : r->path, f->base) != 0)
        return 0;
    f->path = fr_strdup(r->path);
    return 1;
}

int
fr_retention_quarantine(struct fr_store *st, const struct fr_retention_policy *p, const char *name,
                        int64_t now_ms, char **moved_to, struct fr_err *err)
{
    *moved_to = NULL;
    const char *b = strrchr(name, '/');
    struct find_ctx f = {b ? b + 1 : name, NULL};
    int rc = fr_store_manifest(st, find_row, &f, err);
    if (rc != FR_OK && f.path == NULL)
        return rc;
    rc = FR_OK; /* find_row stopped the listing */
    if (f.path == NULL)
        return fr_err_set(err, FR_E_NOTFOUND,
                          "no segment %s in the manifest (flightrec archive list names them)",
                          f.base);
    char *qdir = fr_asprintf("%s/quarantine", p->archive_dir);
    char *dest = fr_asprintf("%s/%s", qdir, f.base);
    for (int k = 1; access(dest, F_OK) == 0; k++) {
        free(dest);
        dest = fr_asprintf("%s/%s.%d", qdir, f.base, k);
    }
    if (mkdir(qdir, 0700) != 0 && errno != EEXIST)
        rc = fr_err_set(err, FR_E_IO, "cannot make %s: %s", qdir, strerror(errno));
    /* the file first: a kill after this leaves an entry whose file is missing (said by every
       run; quarantine again finishes it), never a bad file a run could adopt or remove */
    if (rc == FR_OK && access(f.path, F_OK) == 0) {
        if (rename(f.path, dest) != 0)
            rc =
                fr_err_set(err, FR_E_IO, "cannot move %s to %s: %s", f.path, dest, strerror(errno));
        else if (fr_fsync_dir(qdir) != 0 || fr_fsync_dir(p->archive_dir) != 0)
            rc = fr_err_set(err, FR_E_IO, "cannot sync %s: %s", qdir, strerror(errno));
    }
    if (rc == FR_OK)
        rc = fr_store_manifest_remove(st, f.path, "quarantined", now_ms, err);
    if (rc == FR_OK)
        rc = fr_ret_journal_append(p, "delete", NULL, f.path, err);
    if (rc == FR_OK) {
        fr_log(FR_LOG_WARN, "retention", "segment %s quarantined: moved to %s", f.path, dest);
        *moved_to = dest;
        dest = NULL;
    }
    free(dest);
    free(qdir);
    free(f.path);
    return rc;
}
