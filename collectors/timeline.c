/*
 * collectors/timeline.c - timeline projection entity upserts. The entity id,
 * kind and version feed the store's timeline_entities table (first and last
 * seen versions and times per entity of a conversation).
 */
#include "collectors/collector.h"

static const struct fr_field timeline_fields[] = {
    {.name = "entity_id", .types = FR_FT_STRING},
    {.name = "entity_kind", .types = FR_FT_STRING},
    {.name = "version", .types = FR_FT_INT, .non_negative = true},
    {.name = "payload", .types = FR_FT_ANY},
    {.name = NULL},
};

static int
timeline_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    ev->entity_id = fr_data_str(ev, "entity_id");
    ev->entity_kind = fr_data_str(ev, "entity_kind");
    ev->has_version = fr_data_int(ev, "version", &ev->version);
    return FR_OK;
}

static const int timeline_kinds[] = {FR_KIND_TIMELINE, -1};

const struct fr_collector fr_collector_timeline = {
    .name = "timeline",
    .description = "timeline projection entity upserts with versions",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = timeline_kinds,
    .fields = timeline_fields,
    .normalize = timeline_normalize,
};
