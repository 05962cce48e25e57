/*
 * collectors/error.c - standalone failures (panics, recovered errors) that
 * are not part of another kind's event. The failure itself is in `error`.
 */
#include "collectors/collector.h"
#include "core/wire.h"

static const struct fr_field error_fields[] = {
    {.name = "panic", .types = FR_FT_BOOL},
    {.name = "where", .types = FR_FT_STRING},
    {.name = NULL},
};

static int
error_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    if (ev->data != NULL && json_is_true(json_object_get(ev->data, "panic")))
        ev->status = "panic";
    if (ev->error == NULL && ev->misnamed == NULL) { /* its failure missing: a warning */
        ev->misnamed = FR_WIRE_MISSING;              /* (core/wire.h: fr_wire_misnamed_text) */
        ev->misnamed_field = FR_WF_ERROR;
    }
    return FR_OK;
}

static const int error_kinds[] = {FR_KIND_ERROR, -1};

const struct fr_collector fr_collector_error = {
    .name = "error",
    .description = "standalone failures: panics and errors outside another event",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = error_kinds,
    .fields = error_fields,
    .normalize = error_normalize,
};
