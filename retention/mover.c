/*
 * retention/mover.c - the retention run: hot rows past their age (or over
 * the size bound) are built into warm segments, one segment per short
 * transaction; warm segments past warm.max_age are re-sealed as cold;
 * segments past cold.max_age are deleted; free pages are given back.
 */
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
#include "core/strmap.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "retention/internal.h"
#include "retention/record.h"

/* Cuts strings in v longer than max bytes (UTF-8 safe), in place. */
static void
truncate_text(json_t *v, size_t max)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n <= max)
            return;
        const char *s = json_string_value(v);
        size_t cut = fr_utf8_cut(s, max);
        char *t = fr_asprintf("%.*s[TRUNCATED:%zu]", (int)cut, s, n);
        json_string_set(v, t);
        free(t);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) truncate_text(c, max);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) truncate_text(c, max);
    }
}

struct minmax {
    double min, max, sum;
};

static void
mm_add(struct minmax *m, double v, uint64_t n)
{
    if (n == 0 || v < m->min)
        m->min = v;
    if (n == 0 || v > m->max)
        m->max = v;
    m->sum += v;
}

struct rt_minute {
    int64_t minute;
    int64_t pid;
    char process[16];
    uint64_t n;
    struct minmax rss, cpu, threads, fds;
};

struct conv_sum {
    char *conv;
    int64_t first, last, events, errors, in_tok, out_tok;
    json_t *codes, *models;
};

struct batch {
    char store_id[17]; /* written into every segment */
    const struct fr_retention_policy *p;
    struct fr_seg_writer *w;
    struct fr_row_key *ids; /* the rows in the segment, to delete from hot */
    size_t n, cap;
    int64_t last_ts, last_id;
    uint64_t row_bytes;
    struct rt_minute *rt;
    size_t nrt, caprt;
    struct conv_sum *cs;
    size_t ncs, capcs;
    struct fr_strmap *cs_at; /* conv_id -> its index in cs + 1 */
    char policy[17];
};

/* The batch's summary of conv (a hash look-up: a day of a busy fleet holds many). */
static struct conv_sum *
conv_sum_get(struct batch *b, const char *conv)
{
    if (b->cs_at == NULL)
        b->cs_at = fr_strmap_new();
    bool created;
    void **slot = fr_strmap_slot(b->cs_at, conv, &created);
    if (!created)
        return &b->cs[(uintptr_t)*slot - 1];
    *slot = (void *)(uintptr_t)(b->ncs + 1);
    if (b->ncs == b->capcs) {
        b->capcs = b->capcs ? b->capcs * 2 : 64;
        b->cs = fr_realloc(b->cs, b->capcs * sizeof *b->cs);
    }
    struct conv_sum *c = &b->cs[b->ncs++];
    *c =
        (struct conv_sum){.conv = fr_strdup(conv), .codes = json_object(), .models = json_object()};
    return c;
}

static double
num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void
runtime_add(struct batch *b, const struct fr_event_row *r, json_t *body)
{
    json_t *d = json_object_get(body, "data");
    int64_t minute = r->ts_ms - r->ts_ms % 60000;
    int64_t pid = json_integer_value(json_object_get(d, "pid"));
    const char *proc = json_string_value(json_object_get(d, "process"));
    struct rt_minute *m = NULL;
    for (size_t i = b->nrt; i-- > 0;)
        if (b->rt[i].minute == minute && b->rt[i].pid == pid) {
            m = &b->rt[i];
            break;
        }
    if (m == NULL) {
        if (b->nrt == b->caprt) {
            b->caprt = b->caprt ? b->caprt * 2 : 64;
            b->rt = fr_realloc(b->rt, b->caprt * sizeof *b->rt);
        }
        m = &b->rt[b->nrt++];
        memset(m, 0, sizeof *m);
        m->minute = minute;
        m->pid = pid;
        snprintf(m->process, sizeof m->process, "%s", proc ? proc : "");
    }
    mm_add(&m->rss, num(d, "rss_bytes"), m->n);
    mm_add(&m->cpu, num(d, "cpu_pct"), m->n);
    mm_add(&m->threads, num(d, "threads"), m->n);
    mm_add(&m->fds, num(d, "open_fds"), m->n);
    m->n++;
}

static struct fr_warm_stat
mm_stat(const struct minmax *m, uint64_t n)
{
    return (struct fr_warm_stat){m->min, n ? m->sum / (double)n : 0.0, m->max};
}

static void
add_record(struct batch *b, json_t *rec, int64_t ts, const char *conv, const char *trace)
{
    char *s = json_dumps(rec, JSON_COMPACT);
    fr_seg_writer_add(b->w, s, strlen(s), ts, conv, trace);
    free(s);
    json_decref(rec);
}

static int
batch_row(void *ud, const struct fr_event_row *r)
{
    struct batch *b = ud;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->ids = fr_realloc(b->ids, b->cap * sizeof *b->ids);
    }
    b->ids[b->n++] = (struct fr_row_key){r->id, r->ingested_ms};
    b->last_ts = r->ts_ms;
    b->last_id = r->id;
    b->row_bytes += r->body_len;
    if (r->policy && !b->policy[0])
        snprintf(b->policy, sizeof b->policy, "%s", r->policy);
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    if (body == NULL)
        body = json_object();
    if (strcmp(r->kind, "runtime") == 0) {
        runtime_add(b, r, body);
        json_decref(body);
        return 0;
    }
    const char *conv = r->ids[FR_ID_CONV];
    if (conv != NULL) {
        struct conv_sum *c = conv_sum_get(b, conv);
        if (c->events == 0 || r->ts_ms < c->first)
            c->first = r->ts_ms;
        if (c->events == 0 || r->ts_ms > c->last)
            c->last = r->ts_ms;
        c->events++;
        if (r->error_code) {
            c->errors++;
            json_t *cnt = json_object_get(c->codes, r->error_code);
            json_object_set_new(c->codes, r->error_code, json_integer(json_integer_value(cnt) + 1));
        }
        if (r->model != NULL) {
            json_t *cnt = json_object_get(c->models, r->model);
            json_object_set_new(c->models, r->model, json_integer(json_integer_value(cnt) + 1));
        }
        json_t *usage = json_object_get(json_object_get(body, "data"), "usage");
        c->in_tok += json_integer_value(json_object_get(usage, "input_tokens"));
        c->out_tok += json_integer_value(json_object_get(usage, "output_tokens"));
    }
    truncate_text(json_object_get(body, "data"), (size_t)b->p->truncate_bytes);
    truncate_text(json_object_get(body, "error"), (size_t)b->p->truncate_bytes);
    add_record(b, fr_warm_event_new(r, body, b->policy), r->ts_ms, conv, r->ids[FR_ID_TRACE]);
    return 0;
}

static void
batch_finish_records(struct batch *b)
{
    for (size_t i = 0; i < b->ncs; i++) {
        struct conv_sum *c = &b->cs[i];
        struct fr_warm_conv wc = {c->conv,   c->first,  c->last,   c->events,
                                  c->errors, c->in_tok, c->out_tok};
        add_record(b, fr_warm_conversation_new(&wc, c->codes, c->models), c->last, c->conv, NULL);
        c->codes = c->models = NULL;
    }
    for (size_t i = 0; i < b->nrt; i++) {
        struct rt_minute *m = &b->rt[i];
        struct fr_warm_runtime wr = {.minute_ms = m->minute,
                                     .pid = m->pid,
                                     .samples = (int64_t)m->n,
                                     .process = m->process,
                                     .rss_bytes = mm_stat(&m->rss, m->n),
                                     .cpu_pct = mm_stat(&m->cpu, m->n),
                                     .threads = mm_stat(&m->threads, m->n),
                                     .open_fds = mm_stat(&m->fds, m->n)};
        add_record(b, fr_warm_runtime_minute_new(&wr), m->minute, NULL, NULL);
    }
}

static void
batch_reset(struct batch *b)
{
    fr_seg_writer_free(b->w);
    b->w = NULL;
    for (size_t i = 0; i < b->ncs; i++) {
        free(b->cs[i].conv);
        json_decref(b->cs[i].codes);
        json_decref(b->cs[i].models);
    }
    if (b->cs_at != NULL)
        fr_strmap_clear(b->cs_at, NULL);
    b->ncs = b->nrt = b->n = 0;
    b->row_bytes = 0;
    b->policy[0] = '\0';
}

/* A writer for the batch's next warm segment (store id and archive key in its header). */
static void
batch_writer(struct batch *b, const struct fr_archive_keys *keys)
{
    b->w = fr_seg_writer_new(FR_TIER_WARM, NULL, NULL);
    fr_seg_writer_set_store(b->w, b->store_id);
    fr_seg_writer_set_auth(b->w, keys->auth.n ? keys->auth.key[0] : NULL);
}

/*
 * Seals the batch's rows as the warm segment at path and journals it
 * ("add" first: the journal may name a segment the manifest lacks, never
 * the reverse); *info and *m describe it (m's strings borrowed from info,
 * path and the batch), stats count it.
 */
static int
batch_seal(struct batch *b, const char *path, int64_t now, struct fr_seg_info *info,
           struct fr_manifest_row *m, struct fr_retention_stats *stats, struct fr_err *err)
{
    batch_finish_records(b);
    fr_seg_writer_set_policy(b->w, b->policy); /* recorded in the header */
    fr_ret_crash_point("before_segment");
    int rc = fr_seg_writer_finish(b->w, path, info, err);
    fr_ret_crash_point("after_segment");
    if (rc != FR_OK)
        return rc;
    fr_ret_info_to_row(info, path, now, m);
    m->policy = b->policy;
    rc = fr_ret_journal_append(b->p, "add", m, NULL, err);
    fr_ret_crash_point("after_journal");
    stats->warm_segments++;
    stats->records_written += info->records;
    stats->raw_bytes += info->raw_bytes;
    stats->file_bytes += info->file_bytes;
    return rc;
}

/*
 * Moves the rows cutoff[] makes due into warm segments, oldest first, one
 * segment at a time; with max_bytes, only while hot holds more live bytes;
 * with budget, until that many bytes of rows moved, and only whole segments
 * (a disk under the floor checked every 250 ms would otherwise write a
 * segment of a few rows each time).
 */
static int
move_segments(struct fr_store *st, const struct fr_retention_policy *p, const int64_t *cutoff,
              int64_t hold_id, int64_t max_bytes, int64_t budget, int64_t now, bool dry_run,
              fr_retention_progress progress, void *ud, struct fr_retention_stats *stats,
              struct fr_err *err)
{
    uint64_t moved_before = stats->row_bytes;
    struct batch b = {.p = p};
    fr_store_id(st, b.store_id, NULL);
    struct fr_archive_keys keys;
    int rc = dry_run ? FR_OK : fr_retention_keys(p, true, false, &keys, err);
    if (rc != FR_OK || dry_run)
        memset(&keys, 0, sizeof keys);
    int64_t after_ts = INT64_MIN, after_id = 0;
    for (; rc == FR_OK;) {
        if (max_bytes > 0 && fr_store_live_bytes(st) <= max_bytes)
            break;
        if (budget > 0 && stats->row_bytes - moved_before >= (uint64_t)budget)
            break;
        batch_writer(&b, &keys);
        rc = fr_store_due(st, cutoff, hold_id, p->max_unshipped_ms, after_ts, after_id,
                          (int)p->segment_events, batch_row, &b, err);
        if (rc != FR_OK || b.n == 0 || (budget > 0 && b.n < (size_t)p->segment_events))
            break;
        after_ts = b.last_ts;
        after_id = b.last_id;
        stats->moved_events += b.n;
        stats->row_bytes += b.row_bytes;
        if (dry_run)
            stats->warm_segments++; /* the segments this run would write */
        if (!dry_run) {
            /* named by the last ts, the store and the first row id: unique also among stores
               sharing the folder (same times and row ids would name the same file), and
               sorts by time */
            char *path = b.store_id[0]
                             ? fr_asprintf("%s/seg-%013lld-%s-%lld.warm.seg", p->archive_dir,
                                           (long long)b.last_ts, b.store_id, (long long)b.ids[0].id)
                             : fr_asprintf("%s/seg-%013lld-%lld.warm.seg", p->archive_dir,
                                           (long long)b.last_ts, (long long)b.ids[0].id);
            struct fr_seg_info info;
            struct fr_manifest_row m;
            rc = batch_seal(&b, path, now, &info, &m, stats, err);
            if (rc == FR_OK)
                rc = fr_store_archive_commit(st, &m, b.ids, b.n, err);
            fr_ret_crash_point("after_commit");
            if (rc == FR_OK)
                fr_ret_map_writer(st, b.w, path);
            free(path);
        }
        if (progress)
            progress(ud, "hot -> warm", stats->moved_events, 0);
        batch_reset(&b);
        if (rc != FR_OK)
            break;
    }
    batch_reset(&b);
    free(b.ids);
    free(b.rt);
    free(b.cs);
    fr_strmap_free(b.cs_at, NULL);
    fr_archive_keys_wipe(&keys);
    return rc;
}

static int
hot_to_warm(struct fr_store *st, const struct fr_retention_policy *p, int64_t now, bool dry_run,
            fr_retention_progress progress, void *ud, struct fr_retention_stats *stats,
            struct fr_err *err)
{
    int64_t cutoff[FR_KIND_COUNT];
    bool any = false;
    for (int k = 0; k < FR_KIND_COUNT; k++) {
        int64_t age = p->hot_kind_ms[k] ? p->hot_kind_ms[k] : p->hot_ms;
        cutoff[k] = age > 0 ? now - age : 0;
        any |= cutoff[k] > 0;
    }
    /* rows the agent has not shipped to the fleet store yet stay, up to hot.max_unshipped_age
       longer (the events after the shipper's hold) */
    int64_t hold = INT64_MAX;
    if (p->max_unshipped_ms > 0 && fr_store_ship_hold_get(st, &hold, NULL) != FR_OK)
        hold = INT64_MAX;
    stats->ship_hold = hold;
    int rc = FR_OK;
    if (any)
        rc = move_segments(st, p, cutoff, hold, 0, 0, now, dry_run, progress, ud, stats, err);
    /* the size bound: the oldest rows of any age leave while hot is over it (shipped or not:
       the disk comes first) */
    if (rc == FR_OK && p->max_hot_bytes > 0 && !dry_run &&
        fr_store_live_bytes(st) > p->max_hot_bytes) {
        for (int k = 0; k < FR_KIND_COUNT; k++)
            cutoff[k] = INT64_MAX;
        rc = move_segments(st, p, cutoff, INT64_MAX, p->max_hot_bytes, 0, now, dry_run, progress,
                           ud, stats, err);
    }
    /* the disk under hot.min_free_percent (the agent): this many bytes of the oldest rows too,
       but not those of the last hot.min_free_keep */
    if (rc == FR_OK && p->move_bytes > 0 && !dry_run) {
        for (int k = 0; k < FR_KIND_COUNT; k++)
            cutoff[k] = p->min_free_keep_ms > 0 ? now - p->min_free_keep_ms : INT64_MAX;
        rc = move_segments(st, p, cutoff, INT64_MAX, 0, p->move_bytes, now, dry_run, progress, ud,
                           stats, err);
    }
    return rc;
}

struct copy_ctx {
    struct fr_seg_writer *w;
};

static int
copy_record(void *ud, const char *json, size_t len)
{
    struct copy_ctx *c = ud;
    struct fr_ret_rec_key k;
    fr_ret_record_key(json, len, &k);
    fr_seg_writer_add(c->w, json, len, k.ts, k.conv, k.trace);
    fr_ret_record_key_clear(&k);
    return 0;
}

static int
warm_to_cold(struct fr_store *st, const struct fr_retention_policy *p, const struct paths *man,
             int64_t now, bool dry_run, struct fr_retention_stats *stats, struct fr_err *err)
{
    if (p->warm_ms <= 0)
        return FR_OK;
    struct fr_archive_keys keys;
    bool have_key = false;
    int rc = FR_OK;
    for (size_t i = 0; rc == FR_OK && i < man->n; i++) {
        if (strcmp(man->tier[i], "warm") != 0 || man->max_ts[i] >= now - p->warm_ms)
            continue;
        stats->to_cold++;
        if (dry_run)
            continue;
        if (!have_key) {
            rc = fr_retention_keys(p, true, true, &keys, err);
            if (rc != FR_OK)
                break;
            have_key = true;
        }
        struct fr_seg *seg;
        struct fr_err serr = {0};
        if (fr_seg_open(man->v[i], &keys, &seg, &serr) != FR_OK) {
            /* one bad segment stays where it is (named, marked); the others move on */
            fr_ret_segment_unreadable(st, man->v[i], &serr);
            stats->to_cold--;
            continue;
        }
        struct copy_ctx c = {
            fr_seg_writer_new(FR_TIER_COLD, keys.cold.key[0], fr_seg_get_info(seg)->policy)};
        char store_id[17] = "";
        fr_store_id(st, store_id, NULL);
        fr_seg_writer_set_store(c.w, store_id);
        fr_seg_writer_set_auth(c.w, keys.auth.key[0]);
        if (fr_seg_each(seg, NULL, 0, 0, copy_record, &c, &serr) != FR_OK) {
            fr_seg_close(seg);
            fr_seg_writer_free(c.w);
            fr_ret_segment_unreadable(st, man->v[i], &serr);
            stats->to_cold--;
            continue;
        }
        fr_seg_close(seg);
        char *cold = fr_ret_twin_path(man->v[i]);
        struct fr_seg_info info;
        rc = fr_seg_writer_finish(c.w, cold, &info, err);
        fr_ret_crash_point("after_cold_segment");
        if (rc == FR_OK) {
            struct fr_manifest_row m;
            fr_ret_info_to_row(&info, cold, now, &m);
            rc = fr_ret_journal_append(p, "replace", &m, NULL, err);
            fr_ret_crash_point("after_cold_journal");
            if (rc == FR_OK)
                rc = fr_store_manifest_replace(st, man->v[i], &m, err);
            fr_ret_crash_point("after_cold_commit");
            if (rc == FR_OK) {
                fr_ret_map_writer(st, c.w, cold);
                unlink(man->v[i]);
            }
        }
        fr_seg_writer_free(c.w);
        free(cold);
    }
    if (have_key)
        fr_archive_keys_wipe(&keys);
    return rc;
}

struct sum_ctx {
    struct fr_store *st;
    char host[256];
    int64_t now;
    struct fr_err *err;
    int rc;
};

/* A segment's conversation record into the conversation's summary row. */
static int
sum_record(void *ud, const char *json, size_t len)
{
    struct sum_ctx *c = ud;
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "t"));
    const char *conv = json_string_value(json_object_get(j, "conv_id"));
    if (t != NULL && strcmp(t, "conversation") == 0 && conv != NULL) {
        char *codes = json_dumps(json_object_get(j, "error_codes"), JSON_COMPACT | JSON_ENCODE_ANY);
        char *models = json_dumps(json_object_get(j, "models"), JSON_COMPACT | JSON_ENCODE_ANY);
        struct fr_summary_row r = {
            .conv_id = conv,
            .first_ms = json_integer_value(json_object_get(j, "first_ms")),
            .last_ms = json_integer_value(json_object_get(j, "last_ms")),
            .events = json_integer_value(json_object_get(j, "events")),
            .errors = json_integer_value(json_object_get(j, "errors")),
            .input_tokens = json_integer_value(json_object_get(j, "input_tokens")),
            .output_tokens = json_integer_value(json_object_get(j, "output_tokens")),
            .error_codes = codes,
            .models = models,
            .host = c->host[0] ? c->host : NULL,
            .summarized_ms = c->now,
        };
        c->rc = fr_store_summary_merge(c->st, &r, c->err);
        free(codes);
        free(models);
    }
    json_decref(j);
    return c->rc != FR_OK;
}

/*
 * Segments past cold.max_age are deleted; what they said of each
 * conversation (times, counts, tokens, error codes, models) is added to its
 * summary row in the same transaction as the manifest removal.
 */
static int
expire(struct fr_store *st, const struct fr_retention_policy *p, const struct paths *man,
       int64_t now, bool dry_run, struct fr_retention_stats *stats, struct fr_err *err)
{
    if (p->cold_ms <= 0)
        return FR_OK;
    int rc = FR_OK;
    struct fr_archive_keys keys;
    bool have_keys = false;
    struct sum_ctx sc = {.st = st, .now = now, .err = err};
    gethostname(sc.host, sizeof sc.host - 1);
    for (size_t i = 0; rc == FR_OK && i < man->n; i++) {
        if (man->max_ts[i] >= now - p->cold_ms)
            continue;
        stats->deleted_segments++;
        if (dry_run)
            continue;
        if (!have_keys && (rc = fr_retention_keys(p, false, false, &keys, err)) != FR_OK)
            break;
        have_keys = true;
        rc = fr_store_begin(st, err);
        struct fr_seg *seg;
        struct fr_err serr = {0};
        if (rc == FR_OK && fr_seg_open(man->v[i], &keys, &seg, &serr) == FR_OK) {
            sc.rc = FR_OK;
            if (fr_seg_each(seg, NULL, 0, 0, sum_record, &sc, &serr) != FR_OK && sc.rc == FR_OK)
                fr_log(FR_LOG_WARN, "retention", "%s: conversation summaries not kept: %s",
                       man->v[i], serr.msg);
            rc = sc.rc;
            fr_seg_close(seg);
        } else if (rc == FR_OK) {
            fr_log(FR_LOG_WARN, "retention", "%s: conversation summaries not kept: %s", man->v[i],
                   serr.msg);
        }
        if (rc == FR_OK)
            rc = fr_store_manifest_remove(st, man->v[i], "past cold.max_age", now, err);
        if (rc == FR_OK)
            rc = fr_store_commit(st, err);
        else
            fr_store_rollback(st);
        fr_ret_crash_point("after_delete_commit");
        if (rc == FR_OK)
            rc = fr_ret_journal_append(p, "delete", NULL, man->v[i], err);
        if (rc == FR_OK)
            unlink(man->v[i]);
    }
    if (have_keys)
        fr_archive_keys_wipe(&keys);
    return rc;
}

int
fr_retention_restore(struct fr_store *st, const struct fr_retention_policy *p, const char *segpath,
                     struct fr_record *recs, size_t n, int64_t now_ms, size_t *duplicates,
                     struct fr_err *err)
{
    *duplicates = 0;
    int rc = fr_store_begin(st, err);
    for (size_t i = 0; rc == FR_OK && i < n; i++) {
        bool inserted;
        recs[i].restored = true;
        /* an erased conversation's events are not restored (the segment still goes) */
        recs[i].erased = fr_store_is_erased_record(st, &recs[i]);
        if (recs[i].erased)
            continue;
        rc = fr_store_put(st, &recs[i], now_ms, &inserted, err);
        *duplicates += !inserted;
    }
    /* one transaction: a kill leaves the events either in the segment or in hot */
    if (rc == FR_OK)
        rc = fr_store_manifest_remove(st, segpath, "restored into hot", now_ms, err);
    if (rc == FR_OK)
        rc = fr_store_commit(st, err);
    else
        fr_store_rollback(st);
    if (rc == FR_OK)
        rc = fr_ret_journal_append(p, "delete", NULL, segpath, err);
    if (rc == FR_OK)
        unlink(segpath);
    return rc;
}

int
fr_retention_run(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                 bool dry_run, fr_retention_progress progress, void *ud,
                 struct fr_retention_stats *stats, struct fr_err *err)
{
    memset(stats, 0, sizeof *stats);
    stats->ship_hold = INT64_MAX;
    if (fr_store_is_fleet(st))
        return fr_err_set(err, FR_E_INVALID,
                          "the fleet store's retention drops whole days: flightrec fleet prune "
                          "--store URI --keep DURATION [--archive POLICY]");
    double t0 = fr_mono_s();
    int rc = FR_OK, lock = -1;
    if (!dry_run) {
        rc = fr_mkdirs_for(p->archive_dir, 0700, err);
        if (rc == FR_OK && mkdir(p->archive_dir, 0700) != 0 && errno != EEXIST)
            rc = fr_err_set(err, FR_E_IO, "%s: %s", p->archive_dir, strerror(errno));
        if (rc == FR_OK)
            rc = fr_ret_lock(p, &lock, err);
        if (rc == FR_OK)
            rc = fr_retention_reconcile(st, p, now_ms, stats, err);
    }
    if (rc == FR_OK)
        rc = hot_to_warm(st, p, now_ms, dry_run, progress, ud, stats, err);
    struct paths man = {0};
    if (rc == FR_OK)
        rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    if (rc == FR_OK)
        rc = warm_to_cold(st, p, &man, now_ms, dry_run, stats, err);
    /* the manifest as warm -> cold left it: a segment it moved is expired under its cold name
       (the warm one is gone), in this run if it is old enough */
    if (rc == FR_OK && !dry_run) {
        fr_ret_paths_free(&man);
        rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    }
    if (rc == FR_OK)
        rc = expire(st, p, &man, now_ms, dry_run, stats, err);
    fr_ret_paths_free(&man);
    if (rc == FR_OK && !dry_run) {
        /* give the pages the moved rows used back, a bounded step at a time */
        int freed = 0;
        do {
            rc = fr_store_reclaim(st, 2000, &freed, err);
            stats->reclaimed_pages += freed;
        } while (rc == FR_OK && freed > 0);
    }
    /* the bucket holds what the manifest now lists (nothing configured: nothing done) */
    if (rc == FR_OK && !dry_run)
        rc = fr_retention_bucket_sync(st, p, now_ms, &stats->bucket, err);
    fr_ret_unlock(lock);
    stats->seconds = fr_mono_s() - t0;
    return rc;
}

/* ---- central retention: a range of a store that keeps no archive of its own rows ---- */

struct range_ctx {
    struct batch b;
    struct fr_store *st;
    const char *label;
    int64_t from_ms, now;
    struct fr_archive_keys *keys;
    struct fr_retention_stats *stats;
    struct fr_seg_info *infos; /* segments written, recorded in the manifest after the read */
    char **paths;
    size_t nsegs;
    int rc;
    struct fr_err *err;
};

/* Seals the rows gathered so far as the range's next segment (journaled, not yet recorded). */
static int
range_flush(struct range_ctx *c)
{
    struct batch *b = &c->b;
    if (b->n == 0)
        return FR_OK;
    /* named by the range and its ordinal: archiving the same range again (a prune that
       stopped before dropping it) writes the same names over, never a second copy */
    char *path =
        fr_asprintf("%s/seg-%013lld-%s-%s-%04zu.warm.seg", b->p->archive_dir, (long long)c->from_ms,
                    b->store_id[0] ? b->store_id : "fleet", c->label, c->nsegs);
    c->stats->moved_events += b->n;
    c->stats->row_bytes += b->row_bytes;
    struct fr_seg_info info;
    struct fr_manifest_row m;
    int rc = batch_seal(b, path, c->now, &info, &m, c->stats, c->err);
    if (rc == FR_OK) {
        c->infos = fr_realloc(c->infos, (c->nsegs + 1) * sizeof *c->infos);
        c->paths = fr_realloc(c->paths, (c->nsegs + 1) * sizeof *c->paths);
        c->infos[c->nsegs] = info;
        c->paths[c->nsegs++] = path;
    } else {
        free(path);
    }
    batch_reset(b);
    return rc;
}

static int
range_row(void *ud, const struct fr_event_row *r)
{
    struct range_ctx *c = ud;
    if (c->b.w == NULL)
        batch_writer(&c->b, c->keys);
    batch_row(&c->b, r);
    if (c->b.n >= (size_t)c->b.p->segment_events) {
        c->rc = range_flush(c);
        if (c->rc != FR_OK)
            return c->rc;
    }
    return 0;
}

int
fr_retention_archive_range(struct fr_store *st, const struct fr_retention_policy *p,
                           const char *label, int64_t from_ms, int64_t to_ms, int64_t now_ms,
                           struct fr_retention_stats *stats, struct fr_err *err)
{
    struct fr_archive_keys keys;
    int rc = fr_mkdirs_for(p->archive_dir, 0700, err);
    if (rc == FR_OK && mkdir(p->archive_dir, 0700) != 0 && errno != EEXIST)
        rc = fr_err_set(err, FR_E_IO, "%s: %s", p->archive_dir, strerror(errno));
    if (rc != FR_OK)
        return rc;
    int lock = -1;
    rc = fr_ret_lock(p, &lock, err);
    if (rc == FR_OK)
        rc = fr_retention_keys(p, true, false, &keys, err);
    if (rc != FR_OK) {
        fr_ret_unlock(lock);
        return rc;
    }
    struct range_ctx c = {.b = {.p = p},
                          .st = st,
                          .label = label,
                          .from_ms = from_ms,
                          .now = now_ms,
                          .keys = &keys,
                          .stats = stats,
                          .err = err};
    fr_store_id(st, c.b.store_id, NULL);
    /* streamed in time order: the store's connection is busy until the read ends, so the
       segments are recorded in the manifest after it */
    struct fr_event_filter f = {.since_ms = from_ms, .until_ms = to_ms, .id_field = -1};
    rc = fr_store_events(st, &f, range_row, &c, err);
    if (rc == FR_OK && c.rc != FR_OK)
        rc = c.rc;
    if (rc == FR_OK)
        rc = range_flush(&c);
    for (size_t i = 0; i < c.nsegs; i++) {
        struct fr_manifest_row m;
        fr_ret_info_to_row(&c.infos[i], c.paths[i], now_ms, &m);
        if (rc == FR_OK)
            rc = fr_store_manifest_add(st, &m, err);
        free(c.paths[i]);
    }
    free(c.infos);
    free(c.paths);
    /* each new segment's map, read back from its records (the connection was busy while they
       were written): a read of one conversation opens only the segments and blocks holding it */
    size_t mapped = 0;
    if (rc == FR_OK)
        rc = fr_ret_map_missing(st, &keys, &mapped, err);
    batch_reset(&c.b);
    free(c.b.ids);
    free(c.b.rt);
    free(c.b.cs);
    fr_strmap_free(c.b.cs_at, NULL);
    fr_archive_keys_wipe(&keys);
    if (rc == FR_OK)
        rc = fr_retention_bucket_sync(st, p, now_ms, &stats->bucket, err);
    fr_ret_unlock(lock);
    return rc;
}
