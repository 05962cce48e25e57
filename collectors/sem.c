/*
 * collectors/sem.c - the raw SEM transport envelope log (websocket, bus,
 * redis, replay frames), kept verbatim after redaction.
 */
#include "collectors/collector.h"

static const char *const sem_sources[] = {"websocket", "bus", "redis", "replay", NULL};

static const struct fr_field sem_fields[] = {
    {.name = "type", .types = FR_FT_STRING},
    {.name = "id", .types = FR_FT_STRING},
    {.name = "seq", .types = FR_FT_INT, .non_negative = true},
    {.name = "stream_id", .types = FR_FT_STRING},
    {.name = "data", .types = FR_FT_ANY},
    {.name = "source", .types = FR_FT_STRING, .values = sem_sources},
    {.name = NULL},
};

static int
sem_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    /* the frame type is what people filter SEM logs by */
    ev->status = fr_data_str(ev, "type");
    return FR_OK;
}

static const int sem_kinds[] = {FR_KIND_SEM, -1};

const struct fr_collector fr_collector_sem = {
    .name = "sem",
    .description = "raw SEM transport envelopes with stream ids and sequence numbers",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = sem_kinds,
    .fields = sem_fields,
    .normalize = sem_normalize,
};
