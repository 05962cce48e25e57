/*
 * collectors/turn.c - per-phase turn snapshots. The phase is stored in the
 * status column so "all final turns" is an indexed-column filter; the
 * envelope's runtime_key and inference_id are kept as columns by the store.
 */
#include "collectors/collector.h"

static const char *const turn_phases[] = {"draft", "pre_inference", "post_inference", "final",
                                          NULL};

static const struct fr_field turn_fields[] = {
    {.name = "phase", .types = FR_FT_STRING, .values = turn_phases},
    {.name = "payload", .types = FR_FT_OBJECT},
    {.name = "block_hashes", .types = FR_FT_ARRAY, .item_types = FR_FT_STRING},
    {.name = NULL},
};

static int
turn_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    ev->status = fr_data_str(ev, "phase");
    return FR_OK;
}

static const int turn_kinds[] = {FR_KIND_TURN, -1};

const struct fr_collector fr_collector_turn = {
    .name = "turn",
    .description = "turn snapshots per phase (draft, pre/post inference, final)",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = turn_kinds,
    .fields = turn_fields,
    .normalize = turn_normalize,
};
