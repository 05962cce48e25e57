/*
 * retention/bucket.c - keeps the policy's bucket holding what the manifest
 * lists (fr_retention_bucket_sync) and seeds a folder that lost its
 * MANIFEST from the bucket (fr_retention_bucket_restore). The transfers
 * and the BUCKET file are objstore.c's.
 *
 * Order, so that nothing is ever only in a place that may lose it: every
 * changed segment is PUT, then the MANIFEST journal, then the BUCKET file
 * is saved; only then are local copies evicted (the bucket holds the same
 * bytes, and a MANIFEST naming them) and the objects of segments the
 * manifest no longer lists deleted (the MANIFEST just uploaded says so).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/internal.h"
#include "retention/objstore.h"

static bool
have_bucket(const struct fr_retention_policy *p)
{
    return p->bucket_url != NULL && p->bucket_url[0] != '\0';
}

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The state's configuration follows the policy; another bucket starts from nothing. */
static void
state_for_policy(struct fr_objstate *s, const struct fr_retention_policy *p)
{
    if (s->cfg.url == NULL || strcmp(s->cfg.url, p->bucket_url) != 0) {
        if (s->cfg.url != NULL)
            fr_log(FR_LOG_INFO, "retention",
                   "bucket changed from %s to %s: every segment is uploaded again", s->cfg.url,
                   p->bucket_url);
        json_object_clear(s->objects);
    }
    free(s->cfg.url);
    free(s->cfg.region);
    free(s->cfg.access_key_env);
    free(s->cfg.secret_key_env);
    free(s->cfg.ca_file);
    s->cfg.url = fr_strdup(p->bucket_url);
    s->cfg.ca_file =
        p->bucket_ca_file && p->bucket_ca_file[0] ? fr_strdup(p->bucket_ca_file) : NULL;
    s->cfg.region = fr_strdup(p->bucket_region ? p->bucket_region : "us-east-1");
    s->cfg.access_key_env = fr_strdup(p->bucket_akey_env ? p->bucket_akey_env : "");
    s->cfg.secret_key_env = fr_strdup(p->bucket_skey_env ? p->bucket_skey_env : "");
}

/*
 * Uploads file as name unless the state says the bucket has these bytes;
 * *put: whether it was PUT now.
 */
static int
upload_if_changed(struct fr_objstate *s, const char *name, const char *file, const char *check,
                  const struct fr_archive_keys *keys, bool *put, bool *unverified, uint64_t *bytes,
                  struct fr_err *err)
{
    *unverified = false;
    *put = false;
    char stamp[96];
    if (!fr_objstore_stamp(file, stamp, sizeof stamp, NULL))
        return FR_E_NOTFOUND;
    json_t *o = json_object_get(s->objects, name);
    const char *had = json_string_value(json_object_get(o, "stamp"));
    if (had != NULL && strcmp(had, stamp) == 0)
        return FR_OK;
    char sha[65];
    int rc = fr_objstore_file_sha256(file, sha, err);
    if (rc != FR_OK)
        return rc;
    const char *had_sha = json_string_value(json_object_get(o, "sha256"));
    /* an entry without a SHA-256 was listed from the bucket's MANIFEST by a restore, and its
       file fetched from there: the bucket holds these bytes */
    bool seeded = o != NULL && had_sha == NULL;
    bool changed = !seeded && (had_sha == NULL || strcmp(had_sha, sha) != 0);
    if (changed && check != NULL) {
        /* never replace the bucket's copy with a file that does not verify (a disk that
           altered it): reading it repairs it from the bucket, or names it bad */
        int how;
        rc = fr_segment_verify(file, check, keys, &how, err);
        *unverified = rc != FR_OK;
        if (rc != FR_OK)
            return rc;
        /* hashed again only when the read repaired it (a new file: the stamp moved) */
        char now[96];
        if (fr_objstore_stamp(file, now, sizeof now, NULL) && strcmp(now, stamp) != 0) {
            snprintf(stamp, sizeof stamp, "%s", now);
            if ((rc = fr_objstore_file_sha256(file, sha, err)) != FR_OK)
                return rc;
            changed = had_sha == NULL || strcmp(had_sha, sha) != 0;
        }
    }
    if (changed) {
        rc = fr_objstore_put(&s->cfg, name, file, err);
        if (rc != FR_OK)
            return rc;
        *put = true;
        long long size = 0;
        sscanf(stamp, "%lld", &size);
        *bytes += (uint64_t)size;
    }
    json_object_set_new(s->objects, name, json_pack("{s:s,s:s}", "sha256", sha, "stamp", stamp));
    return FR_OK;
}

int
fr_retention_bucket_sync(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                         struct fr_bucket_stats *bs, struct fr_err *err)
{
    memset(bs, 0, sizeof *bs);
    if (!have_bucket(p))
        return FR_OK;
    struct fr_objstate s;
    struct fr_err lerr = {0};
    if (fr_objstate_load(p->archive_dir, &s, &lerr) != FR_OK)
        fr_log(FR_LOG_WARN, "retention", "%s; every segment is checked against the bucket again",
               lerr.msg);
    state_for_policy(&s, p);
    struct paths man = {0};
    struct fr_archive_keys keys;
    int rc = fr_retention_keys(p, false, false, &keys, err);
    if (rc != FR_OK) {
        fr_objstate_clear(&s);
        return rc;
    }
    rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    json_t *names = json_object();
    bool all_up = rc == FR_OK;
    for (size_t i = 0; rc == FR_OK && i < man.n; i++) {
        const char *name = base_name(man.v[i]);
        json_object_set_new(names, name, json_true());
        if (man.pending[i]) { /* its rows are still leaving hot: the next run */
            bs->pending++;
            all_up = false;
            continue;
        }
        bool put, unverified;
        struct fr_err uerr = {0};
        int urc = upload_if_changed(&s, name, man.v[i], man.sha[i] ? man.sha[i] : "", &keys, &put,
                                    &unverified, &bs->uploaded_bytes, &uerr);
        if (urc == FR_E_NOTFOUND && !unverified) {
            if (json_object_get(s.objects, name) != NULL)
                bs->remote++;
            else
                bs->pending++; /* missing here and not in the bucket: reconciliation says so */
            continue;
        }
        if (urc != FR_OK && unverified) {
            /* this file does not verify: not uploaded (the scrub and reads name it) */
            fr_log(FR_LOG_ERROR, "retention", "not uploaded to %s: %s", s.cfg.url, uerr.msg);
            bs->pending++;
            all_up = false;
            continue;
        }
        if (urc != FR_OK) {
            /* the bucket is down or refuses: the local copies stay, the next run tries again */
            rc = fr_err_set(err, urc,
                            "%s; %zu segment(s) not uploaded (kept locally, retried by "
                            "the next run)",
                            uerr.msg, man.n - i);
            bs->pending += man.n - i;
            all_up = false;
            break;
        }
        bs->uploaded += put;
    }
    /* the journal after the segments it names */
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir);
    bool put = false;
    if (rc == FR_OK && access(mf, F_OK) == 0) {
        uint64_t b = 0;
        bool unverified;
        rc = upload_if_changed(&s, "MANIFEST", mf, NULL, NULL, &put, &unverified, &b, err);
        bs->uploaded += put;
        bs->uploaded_bytes += b;
    }
    free(mf);
    struct fr_err serr = {0};
    int src = fr_objstate_save(p->archive_dir, &s, &serr);
    if (src != FR_OK && rc == FR_OK)
        rc = fr_err_set(err, src, "%s", serr.msg);
    /* evict local copies the bucket holds byte for byte, by the files' real age (now_ms may be
       a backfill's --now) */
    int64_t wall = fr_now_ms();
    for (size_t i = 0; rc == FR_OK && i < man.n; i++) {
        const char *name = base_name(man.v[i]);
        json_t *o = json_object_get(s.objects, name);
        char stamp[96];
        int64_t mtime = 0;
        if (man.pending[i] || o == NULL ||
            !fr_objstore_stamp(man.v[i], stamp, sizeof stamp, &mtime))
            continue;
        const char *up = json_string_value(json_object_get(o, "stamp"));
        if (up == NULL || strcmp(up, stamp) != 0 || wall - mtime < p->bucket_keep_ms)
            continue;
        long long size = 0;
        sscanf(stamp, "%lld", &size);
        if (unlink(man.v[i]) == 0) {
            bs->evicted++;
            bs->evicted_bytes += (uint64_t)size;
            bs->remote++;
        }
    }
    /* objects of segments gone from the manifest (moved to cold, expired, erased, quarantined) */
    if (rc == FR_OK && all_up) {
        const char *name;
        json_t *o, *tmp;
        json_object_foreach_safe(s.objects, tmp, name, o)
        {
            if (strcmp(name, "MANIFEST") == 0 || json_object_get(names, name) != NULL)
                continue;
            rc = fr_objstore_delete(&s.cfg, name, err);
            if (rc != FR_OK)
                break;
            json_object_del(s.objects, name);
            bs->deleted++;
        }
        src = fr_objstate_save(p->archive_dir, &s, &serr);
        if (src != FR_OK && rc == FR_OK)
            rc = fr_err_set(err, src, "%s", serr.msg);
    }
    (void)now_ms;
    bs->failed = rc != FR_OK;
    json_decref(names);
    fr_ret_paths_free(&man);
    fr_objstate_clear(&s);
    fr_archive_keys_wipe(&keys);
    return rc;
}

int
fr_retention_bucket_push(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                         struct fr_bucket_stats *bs, struct fr_err *err)
{
    int lock = -1;
    int rc = fr_ret_lock(p, &lock, err);
    if (rc == FR_OK)
        rc = fr_retention_bucket_sync(st, p, now_ms, bs, err);
    fr_ret_unlock(lock);
    return rc;
}

int
fr_retention_bucket_restore(const struct fr_retention_policy *p, bool *fetched, struct fr_err *err)
{
    *fetched = false;
    if (!have_bucket(p))
        return FR_OK;
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir);
    int rc = fr_mkdirs_for(mf, 0700, err);
    if (rc == FR_OK && access(mf, F_OK) != 0) {
        struct fr_objstate s;
        rc = fr_objstate_load(p->archive_dir, &s, err);
        if (rc == FR_OK) {
            state_for_policy(&s, p);
            rc = fr_objstore_get(&s.cfg, "MANIFEST", mf, NULL, err);
        }
        json_t *state = NULL;
        if (rc == FR_OK) {
            *fetched = true;
            rc = fr_ret_journal_state(p, &state, err);
        }
        /* every segment the journal says exists is in the bucket (the journal goes up after
           them); its bytes are checked by the segment's own MAC or SHA-256 when read */
        const char *path;
        json_t *j;
        json_object_foreach(state, path, j)
        {
            if (access(path, F_OK) != 0)
                json_object_set_new(s.objects, base_name(path), json_object());
        }
        json_decref(state);
        if (rc == FR_OK)
            rc = fr_objstate_save(p->archive_dir, &s, err);
        fr_objstate_clear(&s);
    }
    free(mf);
    return rc;
}
