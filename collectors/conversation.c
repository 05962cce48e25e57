/*
 * collectors/conversation.c - conversation lifecycle snapshots: status,
 * runtime identity, websocket and queue gauges. The status feeds the
 * conversation index (latest status by ts_ms wins).
 */
#include "collectors/collector.h"

static const char *const conv_statuses[] = {"active", "idle", "closed", "evicted", "error", NULL};

static const struct fr_field conv_fields[] = {
    {.name = "status", .types = FR_FT_STRING, .values = conv_statuses},
    {.name = "runtime_key", .types = FR_FT_STRING},
    {.name = "runtime_fingerprint", .types = FR_FT_STRING},
    {.name = "profile_slug", .types = FR_FT_STRING},
    {.name = "ws_conns", .types = FR_FT_INT, .non_negative = true},
    {.name = "ws_conns_max", .types = FR_FT_INT, .non_negative = true},
    {.name = "queue_depth", .types = FR_FT_INT, .non_negative = true},
    {.name = "queue_depth_max", .types = FR_FT_INT, .non_negative = true},
    {.name = "stream_running", .types = FR_FT_BOOL},
    {.name = NULL},
};

static int
conv_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    ev->status = fr_data_str(ev, "status");
    return FR_OK;
}

static const int conv_kinds[] = {FR_KIND_CONVERSATION, -1};

const struct fr_collector fr_collector_conversation = {
    .name = "conversation",
    .description = "conversation lifecycle: status, runtime, websocket and queue gauges",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = conv_kinds,
    .fields = conv_fields,
    .normalize = conv_normalize,
};
