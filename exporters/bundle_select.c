/*
 * exporters/bundle_select.c - what goes into a bundle: the conversations
 * named, or those with a matching failure or trace, read from every tier;
 * the runtime samples around them; each event once.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "exporters/bundle_int.h"
#include "exporters/render.h"
#include "retention/retention.h"

static int64_t
meta_id(const json_t *ev)
{
    return json_integer_value(json_object_get(json_object_get(ev, "flightrec"), "id"));
}

static int
take_event(void *ud, const struct fr_event_row *r)
{
    struct fr_bundle_gather *g = ud;
    json_array_append_new(g->events, fr_render_event(r, NULL, 0));
    if (g->raw_key != NULL && r->raw != NULL && r->raw_len > 0) {
        /* only with the key that opens it; it goes in still sealed */
        unsigned char *pt;
        size_t ptlen;
        char aad[1200];
        size_t alen =
            fr_raw_aad(r->ids[FR_ID_CONV], r->ids[FR_ID_EVENT], r->ts_ms, r->kind, aad, sizeof aad);
        if (fr_unseal_ring(g->raw_key, aad, alen, r->raw, r->raw_len, &pt, &ptlen, NULL) == FR_OK) {
            OPENSSL_cleanse(pt, ptlen);
            free(pt);
            char *b64 = fr_malloc(4 * ((r->raw_len + 2) / 3) + 1);
            EVP_EncodeBlock((unsigned char *)b64, r->raw, (int)r->raw_len);
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)r->id);
            json_object_set_new(g->raw, key, json_string(b64));
            free(b64);
        } else {
            g->raw_failed++;
        }
    }
    json_object_set_new(g->tiers, r->tier ? r->tier : "hot", json_true());
    return 0;
}

/* Adds the conversation of a matching failure or trace event to the set. */
static int
take_conv(void *ud, const struct fr_event_row *r)
{
    struct fr_bundle_gather *g = ud;
    if (g->sel->trace_id &&
        (!r->ids[FR_ID_TRACE] || strcmp(r->ids[FR_ID_TRACE], g->sel->trace_id) != 0))
        return 0;
    if (r->ids[FR_ID_CONV])
        json_object_set_new(g->convs, r->ids[FR_ID_CONV], json_true());
    return 0;
}

void
fr_bundle_gather_clear(struct fr_bundle_gather *g)
{
    json_decref(g->convs);
    json_decref(g->events);
    json_decref(g->tiers);
    json_decref(g->raw);
    memset(g, 0, sizeof *g);
}

int
fr_bundle_gather(struct fr_store *st, const struct fr_bundle_select *sel,
                 const struct fr_archive_keys *keys, const struct fr_keyring *raw_key,
                 struct fr_bundle_gather *g, struct fr_err *err)
{
    *g = (struct fr_bundle_gather){
        json_object(), json_array(), json_object(), sel, raw_key, json_object(), 0, 0};
    int rc = FR_OK;
    for (size_t i = 0; i < sel->nconvs; i++)
        json_object_set_new(g->convs, sel->convs[i], json_true());
    bool by_conv = sel->nconvs > 0 || sel->error_class || sel->error_code || sel->trace_id;
    if (sel->error_class || sel->error_code || sel->trace_id) {
        struct fr_event_filter f = {.since_ms = sel->since_ms,
                                    .until_ms = sel->until_ms,
                                    .error_class = sel->error_class,
                                    .error_code = sel->error_code};
        rc = fr_tier_events(st, &f, keys, take_conv, g, &g->cold_skipped, err);
    }
    if (rc == FR_OK && by_conv) {
        const char *conv;
        json_t *v;
        json_object_foreach(g->convs, conv, v)
        {
            struct fr_event_filter f = {
                .conv_id = conv, .since_ms = sel->since_ms, .until_ms = sel->until_ms};
            size_t skipped = 0;
            rc = fr_tier_events(st, &f, keys, take_event, g, &skipped, err);
            g->cold_skipped += skipped;
            if (rc != FR_OK)
                break;
        }
    } else if (rc == FR_OK) {
        struct fr_event_filter f = {.since_ms = sel->since_ms, .until_ms = sel->until_ms};
        rc = fr_tier_events(st, &f, keys, take_event, g, &g->cold_skipped, err);
        size_t i;
        json_t *ev;
        json_array_foreach(g->events, i, ev)
        {
            const char *c = json_string_value(json_object_get(ev, "conv_id"));
            if (c)
                json_object_set_new(g->convs, c, json_true());
        }
    }
    fr_render_sort_events(g->events);
    /* runtime samples around the selected events: peaks near the failures */
    size_t n = json_array_size(g->events);
    if (rc == FR_OK && by_conv && n > 0) {
        int64_t lo = json_integer_value(json_object_get(json_array_get(g->events, 0), "ts_ms"));
        int64_t hi = json_integer_value(json_object_get(json_array_get(g->events, n - 1), "ts_ms"));
        struct fr_event_filter f = {
            .kind = "runtime", .since_ms = lo - 300000, .until_ms = hi + 300001};
        size_t skipped = 0;
        rc = fr_tier_events(st, &f, keys, take_event, g, &skipped, err);
        fr_render_sort_events(g->events);
    }
    /* an event read both from hot and from a segment still leaving hot: keep one */
    json_t *seen = json_object();
    for (size_t i = 0; i < json_array_size(g->events);) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)meta_id(json_array_get(g->events, i)));
        if (json_object_get(seen, key)) {
            json_array_remove(g->events, i);
            continue;
        }
        json_object_set_new(seen, key, json_true());
        i++;
    }
    json_decref(seen);
    n = json_array_size(g->events);
    return rc;
}
