/*
 * collectors/derive.c - the facts derived from a normalized event that the
 * store keeps beside it: which rollup rows it counts in (provider calls by
 * provider and model with tokens and latency, tools by name, transport by
 * route and status, failures by class and code), whether its stream is
 * checked for ordering anomalies (SEM), whether its entity's first and last
 * sighting is tracked (timeline). The store persists these generically; the
 * domain knowledge is here, with the collectors.
 */
#include "collectors/collector.h"
#include "collectors/taxonomy.h"

static void
add(struct fr_record *rec, const char *dim, const char *k1, const char *k2, bool tokens,
    bool latency)
{
    if (rec->nrollups < sizeof rec->rollups / sizeof rec->rollups[0])
        rec->rollups[rec->nrollups++] =
            (struct fr_rollup_key){dim, k1 ? k1 : "", k2 ? k2 : "", tokens, latency};
}

void
fr_collect_derive(struct fr_record *rec)
{
    rec->nrollups = 0;
    switch (rec->kind) {
    case FR_KIND_PROVIDER:
        add(rec, "provider", rec->provider, rec->model, true, true);
        break;
    case FR_KIND_TOOL:
        add(rec, "tool", rec->tool, "", false, true);
        break;
    case FR_KIND_TRANSPORT:
        add(rec, "transport", rec->route ? rec->route : "-", rec->status ? rec->status : "-", false,
            true);
        break;
    default:
        break;
    }
    if (rec->has_error)
        add(rec, "error", fr_error_class_name(rec->err.klass), rec->err.code, false, false);
    rec->order_check = rec->kind == FR_KIND_SEM && rec->ids[FR_ID_STREAM] != NULL && rec->has_seq;
    rec->entity_track = rec->kind == FR_KIND_TIMELINE && rec->entity_id != NULL;
}
