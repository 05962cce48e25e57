/*
 * retention/hot/convagg.c - per-batch aggregation of conversation-index deltas.
 *
 * Semantics, applied identically here and in the upsert (sqlite.c), so that
 * the result does not depend on how events are split into batches:
 *  - created = min(ts), last activity = max(ts), counts add up;
 *  - status is that of the latest `conversation` event by ts (a tie goes to
 *    the one stored later); closed/evicted times are the latest such status;
 *  - runtime_key is that of the latest `turn` event carrying one, so a later
 *    profile switch never rewrites what earlier turns ran with;
 *  - the last error is the latest error by ts.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "retention/hot/sqlite_int.h"

static void
agg_set(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? fr_strdup(value) : NULL;
}

static struct sq_agg *
agg_get(struct sq_aggs *a, const char *conv_id, int64_t ts)
{
    if (a->map == NULL)
        a->map = fr_strmap_new();
    bool created;
    void **slot = fr_strmap_slot(a->map, conv_id, &created);
    if (created) {
        struct sq_agg *g = fr_calloc(1, sizeof *g);
        g->conv_id = fr_strdup(conv_id);
        g->min_ts = g->max_ts = ts;
        *slot = g;
    }
    return *slot;
}

void
sq_aggs_add(struct sq_aggs *a, const struct fr_record *ev)
{
    const char *conv = ev->ids[FR_ID_CONV];
    if (conv == NULL)
        return;
    struct sq_agg *g = agg_get(a, conv, ev->ts_ms);
    g->events++;
    if (ev->ts_ms < g->min_ts)
        g->min_ts = ev->ts_ms;
    if (ev->ts_ms > g->max_ts)
        g->max_ts = ev->ts_ms;
    if (g->session_id == NULL && ev->ids[FR_ID_SESSION] != NULL)
        agg_set(&g->session_id, ev->ids[FR_ID_SESSION]);
    if (ev->kind == FR_KIND_CONVERSATION && ev->status != NULL) {
        if (g->status == NULL || ev->ts_ms >= g->status_ts) {
            agg_set(&g->status, ev->status);
            g->status_ts = ev->ts_ms;
        }
        if (strcmp(ev->status, "closed") == 0 && ev->ts_ms > g->closed_ms)
            g->closed_ms = ev->ts_ms;
        if (strcmp(ev->status, "evicted") == 0 && ev->ts_ms > g->evicted_ms)
            g->evicted_ms = ev->ts_ms;
    }
    if (ev->kind == FR_KIND_TURN && ev->ids[FR_ID_RUNTIME_KEY] != NULL &&
        (g->runtime_key == NULL || ev->ts_ms >= g->runtime_key_ts)) {
        agg_set(&g->runtime_key, ev->ids[FR_ID_RUNTIME_KEY]);
        g->runtime_key_ts = ev->ts_ms;
    }
    if (ev->has_error) {
        g->errors++;
        if (!g->has_err || ev->ts_ms >= g->err_ts) {
            agg_set(&g->err_class, fr_error_class_name(ev->err.klass));
            agg_set(&g->err_code, ev->err.code);
            agg_set(&g->err_msg, ev->err.message);
            g->err_ts = ev->ts_ms;
            g->has_err = true;
        }
        g->panic = g->panic || ev->err.panic;
    }
}

static void
agg_free(void *p)
{
    struct sq_agg *g = p;
    free(g->conv_id);
    free(g->session_id);
    free(g->status);
    free(g->runtime_key);
    free(g->err_class);
    free(g->err_code);
    free(g->err_msg);
    free(g);
}

struct agg_drain {
    int (*fn)(void *ud, const struct sq_agg *agg);
    void *ud;
};

static int
agg_drain_one(void *ud, const char *key, void *value)
{
    (void)key;
    struct agg_drain *d = ud;
    return d->fn(d->ud, value);
}

int
sq_aggs_drain(struct sq_aggs *a, int (*fn)(void *ud, const struct sq_agg *agg), void *ud)
{
    if (a->map == NULL)
        return FR_OK;
    struct agg_drain d = {fn, ud};
    int rc = fn != NULL ? fr_strmap_each(a->map, agg_drain_one, &d) : FR_OK;
    fr_strmap_clear(a->map, agg_free);
    return rc;
}

void
sq_aggs_free(struct sq_aggs *a)
{
    fr_strmap_free(a->map, agg_free);
    a->map = NULL;
}
