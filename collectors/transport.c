/*
 * collectors/transport.c - HTTP requests and websocket lifecycle at the chat
 * server's edge. The status column holds the HTTP status code as text for
 * HTTP, and the websocket event (connect, disconnect, ping) for ws.
 */
#include <stdio.h>

#include "collectors/collector.h"

static const char *const transport_protos[] = {"http", "ws", NULL};
static const char *const transport_ws_events[] = {"connect", "disconnect", "ping", NULL};

static const struct fr_field transport_fields[] = {
    {.name = "proto", .types = FR_FT_STRING, .values = transport_protos},
    {.name = "method", .types = FR_FT_STRING},
    {.name = "path", .types = FR_FT_STRING},
    {.name = "status", .types = FR_FT_INT, .non_negative = true},
    {.name = "latency_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "bytes_in", .types = FR_FT_INT, .non_negative = true},
    {.name = "bytes_out", .types = FR_FT_INT, .non_negative = true},
    {.name = "origin", .types = FR_FT_STRING},
    {.name = "user_agent", .types = FR_FT_STRING},
    {.name = "auth_outcome", .types = FR_FT_STRING},
    {.name = "mount_prefix", .types = FR_FT_STRING},
    {.name = "event", .types = FR_FT_STRING, .values = transport_ws_events},
    {.name = "reason", .types = FR_FT_STRING},
    {.name = "rtt_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = NULL},
};

static int
transport_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    int64_t code;
    if (fr_data_int(ev, "status", &code)) {
        snprintf(ev->status_buf, sizeof ev->status_buf, "%lld", (long long)code);
        ev->status = ev->status_buf;
    } else {
        ev->status = fr_data_str(ev, "event");
    }
    ev->route = fr_data_str(ev, "path");
    ev->has_duration = fr_data_int(ev, "latency_ms", &ev->duration_ms);
    if (!ev->has_duration)
        ev->has_duration = fr_data_int(ev, "rtt_ms", &ev->duration_ms);
    return FR_OK;
}

static const int transport_kinds[] = {FR_KIND_TRANSPORT, -1};

const struct fr_collector fr_collector_transport = {
    .name = "transport",
    .description = "HTTP requests and websocket connect/disconnect/ping at the server edge",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = transport_kinds,
    .fields = transport_fields,
    .normalize = transport_normalize,
};
