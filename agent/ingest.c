/*
 * agent/ingest.c - see ingest.h.
 */
#include "agent/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "core/jsonmem.h"
#include "redact/redact.h"

/* Everything after parsing; buf is the producer's bytes, NULL when there are none. */
static int
prepare_event(struct fr_event *ev_, const char *buf, size_t len, const struct fr_ingest_cfg *cfg,
              struct fr_redact_counts *counts, struct fr_record *rec, struct fr_err *err)
{
    struct fr_event ev = *ev_;
    int rc;
    bool changed = false;
    rc = fr_collect_check(&ev, err);
    if (rc == FR_OK)
        rc = fr_redact_event(cfg->red, &ev, counts, NULL, NULL, &changed, err);
    if (rc == FR_OK)
        rc = fr_collect_normalize(&ev, cfg->tax, err);
    if (rc == FR_OK) {
        if (changed || buf == NULL) {
            size_t n;
            char *body = fr_wire_dump(&ev, &n);
            fr_record_from_event(rec, &ev, body, n);
            free(body);
        } else {
            /* redaction rewrote nothing: the producer's bytes are the body */
            fr_record_from_event(rec, &ev, buf, len);
        }
        fr_collect_derive(rec);
        memcpy(rec->policy, fr_policy_id(fr_redactor_policy(cfg->red)), sizeof rec->policy);
        if (changed && cfg->raw_key != NULL && buf != NULL) {
            /* bound to the row it belongs to: moved to another, it does not open */
            char aad[1200];
            size_t alen = fr_raw_aad(rec->ids[FR_ID_CONV], rec->ids[FR_ID_EVENT], rec->ts_ms,
                                     fr_kind_name(rec->kind), aad, sizeof aad);
            rc = fr_seal(cfg->raw_key, aad, alen, buf, len, &rec->raw, &rec->raw_len, err);
            if (rc != FR_OK)
                fr_record_clear(rec);
        }
    }
    fr_event_clear(&ev);
    return rc;
}

int
fr_ingest_prepare(const char *buf, size_t len, const struct fr_ingest_cfg *cfg,
                  struct fr_redact_counts *counts, struct fr_record *rec, struct fr_err *err)
{
    memset(rec, 0, sizeof *rec);
    /* the line's tree is born and dropped here: its allocations in a region (jsonmem.h) */
    fr_json_region_begin();
    struct fr_event ev;
    char *mended; /* the line mended (fr_wire_parse_mend): then what is stored */
    size_t mended_len = 0;
    int rc = fr_wire_parse_mend(buf, len, &cfg->lim, &ev, &mended, &mended_len, err);
    if (rc == FR_OK)
        rc = prepare_event(&ev, mended ? mended : buf, mended ? mended_len : len, cfg, counts, rec,
                           err);
    fr_json_region_end();
    free(mended);
    return rc;
}

int
fr_ingest_prepare_tree(json_t *obj, const struct fr_ingest_cfg *cfg,
                       struct fr_redact_counts *counts, struct fr_record *rec, struct fr_err *err)
{
    memset(rec, 0, sizeof *rec);
    /* raw mode needs the unredacted bytes: serialize before the tree is rewritten */
    size_t rawlen = 0;
    char *raw = cfg->raw_key != NULL && json_is_object(obj)
                    ? fr_json_text(obj, JSON_COMPACT, &rawlen) /* not json_dumps: jsonmem.h */
                    : NULL;
    struct fr_event ev;
    int rc = fr_wire_take(obj, &cfg->lim, &ev, err);
    if (rc == FR_OK)
        rc = prepare_event(&ev, raw, rawlen, cfg, counts, rec, err);
    free(raw);
    return rc;
}

int
fr_ingest_commit(struct fr_store *st, struct fr_record *recs, size_t n, int64_t now_ms,
                 size_t *duplicates, struct fr_err *err)
{
    return fr_ingest_commit_linked(st, recs, n, NULL, 0, now_ms, duplicates, err);
}

int
fr_ingest_commit_linked(struct fr_store *st, struct fr_record *recs, size_t n,
                        const struct fr_trace_link *links, size_t nlinks, int64_t now_ms,
                        size_t *duplicates, struct fr_err *err)
{
    size_t dups = 0;
    int rc = fr_store_begin(st, err);
    if (rc != FR_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        bool inserted;
        /* an erased conversation never comes back, whatever sends it again */
        recs[i].erased = fr_store_is_erased_record(st, &recs[i]);
        if (recs[i].erased)
            continue;
        rc = fr_store_put(st, &recs[i], now_ms, &inserted, err);
        if (rc != FR_OK) {
            fr_store_rollback(st);
            return rc;
        }
        recs[i].duplicate = !inserted;
        dups += !inserted;
    }
    for (size_t i = 0; i < nlinks; i++)
        if ((rc = fr_store_link_trace(st, links[i].trace_id, links[i].conv_id, err)) != FR_OK) {
            fr_store_rollback(st);
            return rc;
        }
    rc = fr_store_commit(st, err);
    if (rc == FR_OK && duplicates != NULL)
        *duplicates = dups;
    return rc;
}
