/*
 * retention/erase.c - erasing conversations from every tier: hot through
 * the store (fr_store_erase_hot), then the archive pass here, which writes
 * again every warm or cold segment holding a record of an erased
 * conversation without those records. Records are recognised by the keyed
 * hash of their conversation id, the only form the erasure log keeps, so
 * the pass can be finished after a crash (every retention run does) without
 * the ids in clear.
 *
 * Why segments are rewritten and not crypto-shredded: a block holds up to
 * 8000 records of many conversations, compressed together with one
 * dictionary; a key per conversation would mean a sealed part per
 * conversation per block (warm segments are not encrypted at all), far
 * more bytes and code than rewriting the few segments a conversation
 * touches, and the rewrite is checked like any other segment (HMAC, archive
 * verify). docs/security.md, Erasure.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "retention/internal.h"

struct pass {
    struct fr_store *st;
    struct fr_strmap *subjects; /* pending subject (conv hash, or hmac: token) -> struct hits */
    const char **tokens;        /* the hmac: tokens among them */
    size_t ntokens;
    struct fr_strmap *seen;  /* conv_id -> its subject's struct hits, or (void *)1: not erased */
    struct fr_seg_writer *w; /* the segment without the erased records; NULL: counting */
    uint64_t kept, removed;
    const char *const *convs; /* the ids in clear, when known: Bloom-filtered look */
    size_t nconvs;
    bool any;
};

struct hits {
    uint64_t segments, records, bytes;
    bool touched; /* in the segment being passed */
};

static const char NOT_ERASED[] = "";

static struct hits *
erased_hits(struct pass *ps, const char *conv)
{
    if (conv == NULL)
        return NULL;
    bool created;
    void **slot = fr_strmap_slot(ps->seen, conv, &created);
    if (created) {
        char subject[33];
        struct hits *h = NULL;
        if (fr_store_erase_subject(ps->st, conv, subject, NULL) == FR_OK)
            h = fr_strmap_get(ps->subjects, subject);
        *slot = h ? (void *)h : (void *)NOT_ERASED;
    }
    return *slot == NOT_ERASED ? NULL : *slot;
}

/* The hits of the first erased value's token the record holds; NULL when none. */
static struct hits *
token_hits(struct pass *ps, const char *json, size_t len)
{
    for (size_t i = 0; i < ps->ntokens; i++)
        if (memmem(json, len, ps->tokens[i], strlen(ps->tokens[i])) != NULL)
            return fr_strmap_get(ps->subjects, ps->tokens[i]);
    return NULL;
}

static int
pass_record(void *ud, const char *json, size_t len)
{
    struct pass *ps = ud;
    struct fr_ret_rec_key k;
    fr_ret_record_key(json, len, &k);
    struct hits *h = erased_hits(ps, k.conv);
    if (h == NULL)
        h = token_hits(ps, json, len);
    if (h != NULL) {
        ps->removed++;
        h->records++;
        h->touched = true;
    } else {
        if (ps->w != NULL) /* NULL: a dry run counts */
            fr_seg_writer_add(ps->w, json, len, k.ts, k.conv, k.trace);
        ps->kept++;
    }
    fr_ret_record_key_clear(&k);
    return 0;
}

/* Bloom-filtered look: whether any block that may hold one of the ids does. */
static int
look_record(void *ud, const char *json, size_t len)
{
    struct pass *ps = ud;
    struct fr_ret_rec_key k;
    fr_ret_record_key(json, len, &k);
    ps->any = erased_hits(ps, k.conv) != NULL;
    fr_ret_record_key_clear(&k);
    return ps->any ? 1 : 0;
}

static int
collect_subject(void *ud, const struct fr_erasure_row *r)
{
    struct pass *ps = ud;
    bool created;
    void **slot = fr_strmap_slot(ps->subjects, r->subject, &created);
    if (created) {
        *slot = fr_calloc(1, sizeof(struct hits));
        if (r->kind != NULL && strcmp(r->kind, "hmac") == 0) {
            ps->tokens = fr_realloc(ps->tokens, (ps->ntokens + 1) * sizeof *ps->tokens);
            ps->tokens[ps->ntokens++] = fr_strdup(r->subject);
        }
    }
    return 0;
}

struct done_ctx {
    struct fr_store *st;
    int64_t now;
    struct fr_err *err;
    int rc;
};

static int
mark_done(void *ud, const char *subject, void *value)
{
    struct done_ctx *d = ud;
    const struct hits *h = value;
    d->rc = fr_store_erase_done(d->st, subject, (int64_t)h->segments, (int64_t)h->records,
                                (int64_t)h->bytes, d->now, d->err);
    return d->rc != FR_OK;
}

static int
touched_add(void *ud, const char *key, void *value)
{
    (void)key;
    struct hits *h = value;
    if (h->touched) {
        h->segments++;
        h->bytes += *(uint64_t *)ud;
        h->touched = false;
    }
    return 0;
}

/*
 * Writes segment path again without the erased records, or deletes it when
 * none is left; a dry run only counts what it would do.
 */
static int
rewrite(struct fr_store *st, const struct fr_retention_policy *p,
        const struct fr_archive_keys *keys, struct fr_seg *seg, const char *path, struct pass *ps,
        int64_t now, bool dry_run, struct fr_erase_stats *stats, bool *unread, struct fr_err *err)
{
    const struct fr_seg_info *info = fr_seg_get_info(seg);
    bool cold = info->tier == FR_TIER_COLD;
    if (!dry_run) {
        char store_id[17] = "";
        fr_store_id(st, store_id, NULL);
        ps->w = fr_seg_writer_new(info->tier, cold ? keys->cold.key[0] : NULL, info->policy);
        fr_seg_writer_set_store(ps->w, store_id);
        fr_seg_writer_set_auth(ps->w, keys->auth.key[0]);
    }
    ps->kept = ps->removed = 0;
    struct fr_err serr = {0};
    int rc = FR_OK;
    if (fr_seg_each(seg, NULL, 0, 0, pass_record, ps, &serr) != FR_OK) {
        /* e.g. a cold segment without its key: the erasure stays pending, said why */
        fr_log(FR_LOG_ERROR, "retention", "erase: %s not read: %s", path, serr.msg);
        *unread = true;
        ps->removed = 0;
    }
    stats->records_removed += ps->removed;
    if (ps->removed == 0) {
        /* nothing of them here (the Bloom filter let it through) */
    } else if (dry_run) {
        if (ps->kept == 0)
            stats->segments_deleted++;
        else
            stats->segments_rewritten++;
    } else if (ps->kept == 0) {
        /* nothing else in it: the segment goes, as at the end of its last tier */
        rc = fr_store_manifest_remove(st, path, "erasure", now, err);
        fr_ret_crash_point("erase_after_remove");
        if (rc == FR_OK)
            rc = fr_ret_journal_append(p, "delete", NULL, path, err);
        if (rc == FR_OK && unlink(path) != 0)
            fr_log(FR_LOG_WARN, "retention", "erase: cannot remove %s", path);
        stats->segments_deleted++;
    } else if (rc == FR_OK) {
        /* written beside it, synced, renamed over it: the old file is gone at once */
        struct fr_seg_info ni;
        fr_ret_crash_point("erase_before_rewrite");
        rc = fr_seg_writer_finish(ps->w, path, &ni, err);
        fr_ret_crash_point("erase_after_rewrite");
        struct fr_manifest_row m;
        fr_ret_info_to_row(&ni, path, now, &m);
        if (rc == FR_OK)
            rc = fr_ret_journal_append(p, "add", &m, NULL, err);
        fr_ret_crash_point("erase_after_journal");
        if (rc == FR_OK)
            rc = fr_store_manifest_replace(st, path, &m, err);
        if (rc == FR_OK)
            fr_ret_map_writer(st, ps->w, path);
        stats->segments_rewritten++;
        stats->bytes_rewritten += ni.file_bytes;
        uint64_t bytes = ni.file_bytes;
        fr_strmap_each(ps->subjects, touched_add, &bytes);
    }
    fr_seg_writer_free(ps->w);
    ps->w = NULL;
    return rc;
}

/* Refreshes manifest rows whose file changed under them (a kill between rename and commit). */
static int
refresh_row(struct fr_store *st, const struct fr_retention_policy *p, struct fr_seg *seg,
            const char *path, const char *stored_sha, int64_t now, struct fr_err *err)
{
    const struct fr_seg_info *info = fr_seg_get_info(seg);
    if (strcmp(info->sha256, stored_sha) == 0)
        return FR_OK;
    struct fr_manifest_row m;
    fr_ret_info_to_row(info, path, now, &m);
    int rc = fr_ret_journal_append(p, "add", &m, NULL, err);
    if (rc == FR_OK)
        rc = fr_store_manifest_replace(st, path, &m, err);
    return rc;
}

static void
pass_free(struct pass *ps)
{
    fr_strmap_free(ps->subjects, free);
    fr_strmap_free(ps->seen, NULL);
    for (size_t i = 0; i < ps->ntokens; i++)
        free((char *)ps->tokens[i]);
    free(ps->tokens);
}

int
fr_ret_erase_archive(struct fr_store *st, const struct fr_retention_policy *p,
                     const char *const *convs, size_t nconvs, const char *const *tokens,
                     size_t ntokens, int64_t now_ms, bool dry_run, struct fr_erase_stats *stats,
                     struct fr_err *err)
{
    struct pass ps = {.st = st,
                      .subjects = fr_strmap_new(),
                      .seen = fr_strmap_new(),
                      .convs = convs,
                      .nconvs = nconvs};
    int rc = fr_store_erasures(st, true, collect_subject, &ps, err);
    if (dry_run) { /* nothing was logged: what the erasure would log */
        for (size_t i = 0; rc == FR_OK && i < nconvs; i++) {
            char subject[33];
            rc = fr_store_erase_subject(st, convs[i], subject, err);
            if (rc == FR_OK)
                collect_subject(&ps, &(struct fr_erasure_row){.subject = subject, .kind = "conv"});
        }
        for (size_t i = 0; rc == FR_OK && i < ntokens; i++)
            collect_subject(&ps, &(struct fr_erasure_row){.subject = tokens[i], .kind = "hmac"});
    }
    if (rc != FR_OK || fr_strmap_count(ps.subjects) == 0) {
        pass_free(&ps);
        return rc;
    }
    struct fr_archive_keys keys;
    if ((rc = fr_retention_keys(p, !dry_run, false, &keys, err)) != FR_OK) {
        pass_free(&ps);
        return rc;
    }
    struct paths man = {0};
    rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    /* only the ids given in clear and no older pending one: blocks are Bloom-filtered */
    bool bloom = nconvs > 0 && ps.ntokens == 0 && fr_strmap_count(ps.subjects) <= nconvs;
    bool incomplete = false;
    for (size_t i = 0; rc == FR_OK && i < man.n; i++) {
        const char *path = man.v[i];
        struct fr_seg *seg;
        struct fr_err serr = {0};
        if (fr_seg_open(path, &keys, &seg, &serr) != FR_OK) {
            fr_log(FR_LOG_ERROR, "retention", "erase: %s not read: %s", path, serr.msg);
            incomplete = true;
            continue;
        }
        if (!dry_run)
            rc = refresh_row(st, p, seg, path, man.sha[i], now_ms, err);
        ps.any = !bloom;
        for (size_t c = 0; rc == FR_OK && bloom && !ps.any && c < nconvs; c++) {
            int lrc = fr_seg_each(seg, convs[c], 0, 0, look_record, &ps, &serr);
            if (lrc != FR_OK && lrc != 1) {
                fr_log(FR_LOG_ERROR, "retention", "erase: %s not read: %s", path, serr.msg);
                incomplete = true;
                ps.any = false;
                break;
            }
        }
        if (rc == FR_OK && ps.any) {
            stats->segments_scanned++;
            bool unread = false;
            rc = rewrite(st, p, &keys, seg, path, &ps, now_ms, dry_run, stats, &unread, err);
            incomplete |= unread;
        }
        fr_seg_close(seg);
    }
    if (rc == FR_OK && !dry_run && !incomplete) {
        struct done_ctx d = {st, now_ms, err, FR_OK};
        fr_strmap_each(ps.subjects, mark_done, &d);
        rc = d.rc;
    }
    if (incomplete)
        stats->pending_left += fr_strmap_count(ps.subjects);
    fr_archive_keys_wipe(&keys);
    fr_ret_paths_free(&man);
    pass_free(&ps);
    return rc;
}

int
fr_retention_erase(struct fr_store *st, const struct fr_retention_policy *p,
                   const char *const *convs, size_t n, const char *const *tokens, size_t ntokens,
                   const char *reason, int64_t now_ms, bool dry_run, struct fr_erase_stats *stats,
                   struct fr_err *err)
{
    memset(stats, 0, sizeof *stats);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = FR_OK, lock = -1;
    /* a fleet store without an archive folder has no segments to guard (none is made) */
    if (!dry_run && (!fr_store_is_fleet(st) || access(p->archive_dir, F_OK) == 0))
        rc = fr_ret_lock(p, &lock, err);
    for (size_t i = 0; rc == FR_OK && i < n; i++) {
        int64_t events = 0;
        rc = fr_store_erase_hot(st, convs[i], reason, now_ms, dry_run, &events, err);
        stats->hot_events += (uint64_t)events;
        fr_ret_crash_point("erase_after_hot");
    }
    for (size_t i = 0; rc == FR_OK && i < ntokens; i++) {
        int64_t events = 0;
        rc = fr_store_erase_token_hot(st, tokens[i], reason, now_ms, dry_run, &events, err);
        stats->hot_events += (uint64_t)events;
    }
    if (rc == FR_OK)
        rc = fr_ret_erase_archive(st, p, convs, n, tokens, ntokens, now_ms, dry_run, stats, err);
    /* the bucket's copies of rewritten segments are replaced, of deleted ones removed, now */
    struct fr_bucket_stats bs;
    if (rc == FR_OK && !dry_run)
        rc = fr_retention_bucket_sync(st, p, now_ms, &bs, err);
    fr_ret_unlock(lock);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}
