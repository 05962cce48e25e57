/*
 * retention/reader.c - reading archived events back: the manifest says
 * which segments overlap the time range, each segment's footer says which
 * blocks may hold the conversation, and only those blocks are
 * decompressed. Events come back as struct fr_event_row with their tier.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "retention/hot/archive.h"
#include "retention/internal.h"
#include "retention/record.h"
#include "retention/retention.h"

/* The blocks of one segment the archive map names. */
struct blocks {
    uint32_t *v;
    size_t n;
};

static int
hit_fn(void *ud, const char *path, uint32_t block)
{
    bool created;
    void **slot = fr_strmap_slot(ud, path, &created);
    struct blocks *b = *slot;
    if (created)
        b = *slot = fr_calloc(1, sizeof *b);
    b->v = fr_realloc(b->v, (b->n + 1) * sizeof *b->v);
    b->v[b->n++] = block;
    return 0;
}

static void
blocks_free(void *v)
{
    struct blocks *b = v;
    free(b->v);
    free(b);
}

struct each_ctx {
    struct fr_store *st;
    bool pending; /* the segment's rows are still being deleted from hot */
    const struct fr_event_filter *f;
    const char *tier;
    const char *policy; /* the segment's */
    const char *needle; /* the id looked for, quoted, as it appears in the record; NULL: none */
    fr_event_cb cb;
    void *ud;
    int rc;
};

static int
each_record(void *ud, const char *json, size_t len)
{
    struct each_ctx *c = ud;
    const struct fr_event_filter *f = c->f;
    /* a record of another conversation or trace (most of a block) is not parsed at all */
    if (c->needle != NULL && memmem(json, len, c->needle, strlen(c->needle)) == NULL)
        return 0;
    struct fr_warm_record wr;
    if (fr_warm_record_parse(json, len, c->policy, &wr, NULL) != FR_OK ||
        wr.type != FR_WARM_EVENT) {
        fr_warm_record_clear(&wr);
        return 0;
    }
    struct fr_event_row r = wr.row;
    r.tier = c->tier;
    bool keep = r.kind != NULL;
    keep =
        keep && (!f->conv_id || (r.ids[FR_ID_CONV] && strcmp(f->conv_id, r.ids[FR_ID_CONV]) == 0));
    keep = keep && (f->id_value == NULL || f->id_field < 0 || f->id_field >= FR_ID_COUNT ||
                    (r.ids[f->id_field] && strcmp(f->id_value, r.ids[f->id_field]) == 0));
    keep = keep && (!f->kind || strcmp(f->kind, r.kind) == 0);
    keep = keep && (!(f->errors_only || f->error_class || f->error_code) || r.error_code);
    keep =
        keep && (!f->error_class || (r.error_class && strcmp(f->error_class, r.error_class) == 0));
    keep = keep && (!f->error_code || (r.error_code && strcmp(f->error_code, r.error_code) == 0));
    keep =
        keep && (!f->since_ms || r.ts_ms >= f->since_ms) && (!f->until_ms || r.ts_ms < f->until_ms);
    /* a row not yet deleted from hot was read there */
    keep = keep && !(c->pending && fr_store_has_event(c->st, r.id, r.ingested_ms));
    int stop = 0;
    if (keep) {
        char *b = json_dumps(wr.body, JSON_COMPACT);
        r.body = b;
        r.body_len = b ? strlen(b) : 0;
        stop = c->cb(c->ud, &r);
        free(b);
    }
    fr_warm_record_clear(&wr);
    if (stop)
        c->rc = stop;
    return stop;
}

/* "id" as JSON writes it, when that is the id itself in quotes (nothing to escape). */
static char *
plain_needle(const char *id)
{
    if (id == NULL || *id == '\0')
        return NULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == '"' || *p == '\\' || *p >= 0x7f)
            return NULL;
    return fr_asprintf("\"%s\"", id);
}

/*
 * The map key of what f looks for: its conversation, or the trace id it
 * names; 0 when it looks for neither (every segment of its time range is read).
 */
static uint64_t
filter_key(const struct fr_event_filter *f, const char **id, const char **field)
{
    *id = NULL;
    *field = NULL;
    if (f->conv_id != NULL) {
        *id = f->conv_id;
        *field = "conv_id";
        return fr_seg_key_hash('c', f->conv_id);
    }
    if (f->id_value != NULL && f->id_field == FR_ID_TRACE) {
        *id = f->id_value;
        *field = "trace_id";
        return fr_seg_key_hash('t', f->id_value);
    }
    return 0;
}

/* Whether segment i of l may hold events f looks for (key: filter_key's, hits: the archive
   map's segments for it): its time range overlaps f's, and the map names it when it is mapped
   (a mapped segment the map does not name for this id holds none of it: not opened). */
static bool
seg_may_hold(const struct paths *l, size_t i, const struct fr_event_filter *f, uint64_t key,
             struct fr_strmap *hits)
{
    if ((f->since_ms && l->max_ts[i] < f->since_ms) || (f->until_ms && l->min_ts[i] >= f->until_ms))
        return false;
    return key == 0 || !l->mapped[i] || fr_strmap_get(hits, l->v[i]) != NULL;
}

/* *may: whether any archived segment may hold events f looks for (none opened). */
static int
archive_may_hold(struct fr_store *st, const struct fr_event_filter *f, bool *may,
                 struct fr_err *err)
{
    struct paths l = {0};
    const char *id, *field;
    uint64_t key = filter_key(f, &id, &field);
    struct fr_strmap *hits = fr_strmap_new();
    int rc = fr_store_manifest(st, fr_ret_collect_manifest, &l, err);
    if (rc == FR_OK && key != 0 && l.n > 0)
        rc = fr_store_archive_lookup(st, key, hit_fn, hits, err);
    *may = false;
    for (size_t i = 0; rc == FR_OK && i < l.n && !*may; i++)
        *may = seg_may_hold(&l, i, f, key, hits);
    fr_strmap_free(hits, blocks_free);
    fr_ret_paths_free(&l);
    return rc;
}

int
fr_archive_events(struct fr_store *st, const struct fr_event_filter *f,
                  const struct fr_archive_keys *keys, fr_event_cb cb, void *ud,
                  size_t *cold_skipped, struct fr_err *err)
{
    struct paths l = {0};
    if (cold_skipped)
        *cold_skipped = 0;
    const char *id, *field;
    uint64_t key = filter_key(f, &id, &field);
    struct fr_strmap *hits = fr_strmap_new(); /* path -> struct blocks */
    int rc = fr_store_manifest(st, fr_ret_collect_manifest, &l, err);
    if (rc == FR_OK && key != 0)
        rc = fr_store_archive_lookup(st, key, hit_fn, hits, err);
    char *needle = plain_needle(id);
    for (size_t i = 0; rc == FR_OK && i < l.n; i++) {
        if (!seg_may_hold(&l, i, f, key, hits))
            continue;
        const struct blocks *b = key != 0 && l.mapped[i] ? fr_strmap_get(hits, l.v[i]) : NULL;
        bool cold = strcmp(l.tier[i], "cold") == 0;
        if (cold && (keys == NULL || keys->cold.n == 0)) {
            if (cold_skipped)
                (*cold_skipped)++;
            continue;
        }
        struct fr_seg *seg;
        struct fr_err serr = {0};
        /* one bad segment breaks nothing else: it is named, counted and skipped */
        if (fr_seg_open(l.v[i], keys, &seg, &serr) != FR_OK) {
            fr_log(FR_LOG_WARN, "retention", "segment not read: %s", serr.msg);
            if (cold_skipped)
                (*cold_skipped)++;
            continue;
        }
        struct each_ctx c = {st,     l.pending[i], f,  l.tier[i], fr_seg_get_info(seg)->policy,
                             needle, cb,           ud, 0};
        struct fr_seg_query sq = {b ? b->v : NULL, b ? b->n : 0, field, id,
                                  f->since_ms,     f->until_ms};
        int src = fr_seg_each_event(seg, &sq, each_record, &c, &serr);
        fr_seg_close(seg);
        if (c.rc) {
            rc = c.rc; /* the caller stopped */
        } else if (src != FR_OK) {
            fr_log(FR_LOG_WARN, "retention", "segment read in part: %s", serr.msg);
            if (cold_skipped)
                (*cold_skipped)++;
        }
    }
    free(needle);
    fr_strmap_free(hits, blocks_free);
    fr_ret_paths_free(&l);
    return rc;
}

/* Counts the events passed on to cb. */
struct count_ctx {
    fr_event_cb cb;
    void *ud;
    int64_t n;
};

static int
count_fn(void *ud, const struct fr_event_row *r)
{
    struct count_ctx *c = ud;
    c->n++;
    return c->cb(c->ud, r);
}

int
fr_tier_events(struct fr_store *st, const struct fr_event_filter *f,
               const struct fr_archive_keys *keys, fr_event_cb cb, void *ud, size_t *cold_skipped,
               struct fr_err *err)
{
    if (cold_skipped)
        *cold_skipped = 0;
    bool began;
    int rc = fr_store_snapshot_begin(st, &began, err);
    if (rc == FR_OK)
        rc = fr_store_events(st, f, cb, ud, err);
    if (rc == FR_OK)
        rc = fr_archive_events(st, f, keys, cb, ud, cold_skipped, err);
    fr_store_snapshot_end(st, began);
    return rc;
}

int
fr_tier_events_page(struct fr_store *st, const struct fr_event_filter *f,
                    const struct fr_archive_keys *keys, fr_event_cb cb, void *ud, int64_t *total,
                    bool *whole, size_t *cold_skipped, struct fr_err *err)
{
    if (cold_skipped)
        *cold_skipped = 0;
    *total = 0;
    *whole = false;
    bool began, may = true;
    int rc = fr_store_snapshot_begin(st, &began, err);
    if (rc == FR_OK)
        rc = archive_may_hold(st, f, &may, err);
    if (rc == FR_OK && !may) { /* hot alone: the page is read from its index */
        rc = fr_store_events_page(st, f, cb, ud, total, err);
    } else if (rc == FR_OK) { /* every tier (in this snapshot), for the caller to slice */
        struct fr_event_filter all = *f;
        all.limit = 0;
        all.offset = 0;
        struct count_ctx cc = {cb, ud, 0};
        *whole = true;
        rc = fr_tier_events(st, &all, keys, count_fn, &cc, cold_skipped, err);
        *total = cc.n;
    }
    fr_store_snapshot_end(st, began);
    return rc;
}

int
fr_archive_records(const char *path, const struct fr_archive_keys *keys,
                   int (*cb)(void *ud, const char *json, size_t len), void *ud, struct fr_err *err)
{
    struct fr_seg *seg;
    int rc = fr_seg_open(path, keys, &seg, err);
    if (rc != FR_OK)
        return rc;
    rc = fr_seg_each(seg, NULL, 0, 0, cb, ud, err);
    fr_seg_close(seg);
    return rc;
}

/* One group of failures: how many, when, and the distinct conversations hit. */
struct group {
    int64_t count, first_ms, last_ms;
    struct fr_strmap *convs; /* conv_id -> (unused); NULL: counted by the store (convs_n) */
    int64_t convs_n;
};

struct group_acc {
    const char *by;
    struct fr_strmap *groups; /* key -> struct group */
    struct fr_error_group *rows;
    size_t n;
};

static const char *
group_key(const struct fr_event_row *r, const char *by)
{
    const char *k = strcmp(by, "code") == 0    ? r->error_code
                    : strcmp(by, "class") == 0 ? r->error_class
                    : strcmp(by, "model") == 0 ? r->model
                    : strcmp(by, "tool") == 0  ? r->tool
                                               : r->kind;
    return k ? k : "";
}

/* Adds count failures of key, conversation conv (NULL: none), between first and last. */
static void
group_add(struct group_acc *a, const char *key, const char *conv, int64_t count, int64_t first,
          int64_t last)
{
    bool created;
    void **slot = fr_strmap_slot(a->groups, key, &created);
    struct group *g = *slot;
    if (created) {
        g = *slot = fr_calloc(1, sizeof *g);
        g->first_ms = first;
        g->last_ms = last;
        g->convs = fr_strmap_new();
    }
    g->count += count;
    g->first_ms = first < g->first_ms ? first : g->first_ms;
    g->last_ms = last > g->last_ms ? last : g->last_ms;
    if (conv != NULL && conv[0] != '\0') /* none (the fleet store writes "" for none) */
        fr_strmap_slot(g->convs, conv, &created);
}

/* A failure read from an archive segment. */
static int
group_row(void *ud, const struct fr_event_row *r)
{
    struct group_acc *a = ud;
    group_add(a, group_key(r, a->by), r->ids[FR_ID_CONV], 1, r->ts_ms, r->ts_ms);
    return 0;
}

/* A whole group counted by the store (every failure of the window in hot). */
static int
group_whole(void *ud, const struct fr_error_group *g)
{
    struct group_acc *a = ud;
    bool created;
    void **slot = fr_strmap_slot(a->groups, g->key, &created);
    if (created) /* the store's groups have distinct keys */
        *slot = fr_calloc(1, sizeof(struct group));
    struct group *x = *slot;
    *x = (struct group){g->count, g->first_ms, g->last_ms, NULL, g->conversations};
    return 0;
}

/* The hot tier's failures of one key and conversation, counted by the store. */
static int
group_hot(void *ud, const struct fr_error_group *g)
{
    group_add(ud, g->key, g->conv_id, g->count, g->first_ms, g->last_ms);
    return 0;
}

static int
group_to_row(void *ud, const char *key, void *value)
{
    struct group_acc *a = ud;
    const struct group *g = value;
    a->rows[a->n++] = (struct fr_error_group){
        .key = key,
        .count = g->count,
        .conversations = g->convs ? (int64_t)fr_strmap_count(g->convs) : g->convs_n,
        .first_ms = g->first_ms,
        .last_ms = g->last_ms};
    return 0;
}

static void
group_free(void *value)
{
    struct group *g = value;
    fr_strmap_free(g->convs, NULL);
    free(g);
}

static int
group_cmp(const void *a, const void *b)
{
    const struct fr_error_group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Whether a segment of the manifest overlaps the filter's time window (ud: struct
   seg_overlap). */
struct seg_overlap {
    const struct fr_event_filter *f;
    bool any;
};

static int
seg_overlaps(void *ud, const struct fr_manifest_row *r)
{
    struct seg_overlap *o = ud;
    o->any |= !((o->f->since_ms && r->max_ts < o->f->since_ms) ||
                (o->f->until_ms && r->min_ts >= o->f->until_ms));
    return 0;
}

int
fr_tier_error_groups(struct fr_store *st, const struct fr_event_filter *f,
                     const struct fr_archive_keys *keys, const char *by, fr_error_group_cb cb,
                     void *ud, size_t *cold_skipped, struct fr_err *err)
{
    if (fr_store_error_group_column(by, err) == NULL) /* the store's choices, checked first */
        return err->code;
    struct fr_event_filter all = *f;
    all.errors_only = true;
    all.limit = 0;
    all.newest_first = false;
    struct group_acc a = {.by = by, .groups = fr_strmap_new()};
    /* hot: the store's groups of one key and conversation (SQLite: one per failure, read from
       a failure index, no row), so that a conversation hit in hot and in a segment counts
       once; segments: their failures, record by record */
    struct fr_event_filter pairs = all;
    pairs.group_per_conv = true;
    if (cold_skipped)
        *cold_skipped = 0;
    bool began;
    int rc = fr_store_snapshot_begin(st, &began, err);
    /* no segment in the window (all of it still in hot): the store groups by itself, with
       no set of conversations per group built here (at 83k failures the sets were 2/3 of
       the time); sorted below like the other groups */
    struct seg_overlap o = {f, false};
    if (rc == FR_OK)
        rc = fr_store_manifest(st, seg_overlaps, &o, err);
    if (rc == FR_OK && !o.any)
        rc = fr_store_error_groups(st, &all, by, group_whole, &a, err);
    else if (rc == FR_OK)
        rc = fr_store_error_groups(st, &pairs, by, group_hot, &a, err);
    if (rc == FR_OK && o.any)
        rc = fr_archive_events(st, &all, keys, group_row, &a, cold_skipped, err);
    fr_store_snapshot_end(st, began);
    size_t n = fr_strmap_count(a.groups);
    a.rows = fr_calloc(n ? n : 1, sizeof *a.rows);
    fr_strmap_each(a.groups, group_to_row, &a);
    qsort(a.rows, a.n, sizeof *a.rows, group_cmp);
    for (size_t i = 0; rc == FR_OK && i < a.n && (f->limit <= 0 || i < (size_t)f->limit); i++)
        if (cb(ud, &a.rows[i]) != 0)
            break;
    free(a.rows);
    fr_strmap_free(a.groups, group_free);
    return rc;
}
