/*
 * collectors/derive.c - the facts derived from a normalized event that the
 * store keeps beside it: which rollup rows it counts in (provider calls by
 * provider and model with tokens and latency, and by finish reason and
 * model; tools by name, transport by route and status, failures by class
 * and code), whether its stream is
 * checked for ordering anomalies (SEM), whether its entity's first and last
 * sighting is tracked (timeline). The store persists these generically; the
 * domain knowledge is here, with the collectors.
 */
#include "collectors/collector.h"

static void
add(struct fr_record *rec, const char *dim, enum fr_record_field k1, enum fr_record_field k2,
    bool tokens, bool latency)
{
    if (rec->nrollups < sizeof rec->rollups / sizeof rec->rollups[0])
        rec->rollups[rec->nrollups++] =
            (struct fr_rollup_key){dim, (unsigned char)k1, (unsigned char)k2, tokens, latency};
}

void
fr_collect_derive(struct fr_record *rec)
{
    rec->nrollups = 0;
    rec->finish_meaning = NULL;
    switch (rec->kind) {
    case FR_KIND_PROVIDER:
        add(rec, "provider", FR_RF_PROVIDER, FR_RF_MODEL, true, true);
        /* how calls ended, per model: answers cut at the token limit or filtered show up here
           although the call itself succeeded (fr_finish_meaning) */
        if (rec->finish != NULL && *rec->finish != '\0') {
            add(rec, "finish", FR_RF_FINISH, FR_RF_MODEL, true, true);
            rec->finish_meaning = fr_finish_meaning(rec->finish);
        }
        break;
    case FR_KIND_TOOL:
        add(rec, "tool", FR_RF_TOOL, FR_RF_EMPTY, false, true);
        break;
    case FR_KIND_TRANSPORT:
        add(rec, "transport", FR_RF_ROUTE, FR_RF_STATUS, false, true);
        break;
    default:
        break;
    }
    if (rec->has_error)
        add(rec, "error", FR_RF_ERROR_CLASS, FR_RF_ERROR_CODE, false, false);
    rec->order_check = rec->kind == FR_KIND_SEM && rec->ids[FR_ID_STREAM] != NULL && rec->has_seq;
    rec->entity_track = rec->kind == FR_KIND_TIMELINE && rec->entity_id != NULL;
}
