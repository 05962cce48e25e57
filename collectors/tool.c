/*
 * collectors/tool.c - tool calls: identity, status, timing, retries, side
 * effects. The duration is derived from whichever two of started_ms,
 * ended_ms and duration_ms are given.
 */
#include "collectors/collector.h"

static const char *const tool_statuses[] = {"ok", "error", "timeout", "cancelled", NULL};

static const struct fr_field tool_fields[] = {
    {.name = "tool_call_id", .types = FR_FT_STRING},
    {.name = "name", .types = FR_FT_STRING},
    {.name = "version", .types = FR_FT_STRING},
    {.name = "args", .types = FR_FT_ANY},
    {.name = "result", .types = FR_FT_ANY},
    {.name = "status", .types = FR_FT_STRING, .values = tool_statuses},
    {.name = "started_ms", .types = FR_FT_INT, .non_negative = true},
    {.name = "ended_ms", .types = FR_FT_INT, .non_negative = true},
    {.name = "duration_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "retries", .types = FR_FT_INT, .non_negative = true},
    {.name = "side_effects", .types = FR_FT_ARRAY, .item_types = FR_FT_STRING},
    {.name = NULL},
};

static int
tool_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    ev->tool = fr_data_str(ev, "name");
    ev->status = fr_data_str(ev, "status");
    int64_t started, ended;
    bool has_start = fr_data_int(ev, "started_ms", &started);
    bool has_end = fr_data_int(ev, "ended_ms", &ended);
    if (fr_data_int(ev, "duration_ms", &ev->duration_ms)) {
        ev->has_duration = true;
    } else if (has_start && has_end) {
        if (ended < started)
            return fr_err_set(err, FR_E_VALUE, "data.ended_ms: is before data.started_ms");
        ev->duration_ms = ended - started;
        ev->has_duration = true;
    }
    return FR_OK;
}

static const int tool_kinds[] = {FR_KIND_TOOL, -1};

const struct fr_collector fr_collector_tool = {
    .name = "tool",
    .description = "tool calls: name, version, status, timing, retries, side effects",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = tool_kinds,
    .fields = tool_fields,
    .normalize = tool_normalize,
};
