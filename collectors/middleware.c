/*
 * collectors/middleware.c - middleware and agent steps: chain, step,
 * duration, decision and rationale, prompt transforms, guardrail verdicts.
 * The decision is stored in the status column.
 */
#include "collectors/collector.h"

static const struct fr_field mw_guardrail[] = {
    {.name = "action", .types = FR_FT_STRING},
    {.name = "category", .types = FR_FT_STRING},
    {.name = "score", .types = FR_FT_NUMBER},
    {.name = NULL},
};

static const struct fr_field mw_fields[] = {
    {.name = "chain", .types = FR_FT_ARRAY, .item_types = FR_FT_STRING},
    {.name = "step", .types = FR_FT_STRING},
    {.name = "duration_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "decision", .types = FR_FT_STRING},
    {.name = "rationale", .types = FR_FT_STRING},
    {.name = "prompt_before", .types = FR_FT_STRING | FR_FT_OBJECT},
    {.name = "prompt_after", .types = FR_FT_STRING | FR_FT_OBJECT},
    {.name = "guardrail", .types = FR_FT_OBJECT, .sub = mw_guardrail},
    {.name = NULL},
};

static int
mw_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    ev->status = fr_data_str(ev, "decision");
    ev->has_duration = fr_data_int(ev, "duration_ms", &ev->duration_ms);
    return FR_OK;
}

static const int mw_kinds[] = {FR_KIND_MIDDLEWARE, -1};

const struct fr_collector fr_collector_middleware = {
    .name = "middleware",
    .description = "middleware steps: chain, duration, decisions, prompt transforms, guardrails",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = mw_kinds,
    .fields = mw_fields,
    .normalize = mw_normalize,
};
