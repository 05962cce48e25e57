/*
 * collectors/registry.c - the table of collectors (one line per plugin) and
 * fr_collect(), which runs the one owning an event's kind.
 */
#include <string.h>

#include "collectors/collector.h"
#include "collectors/taxonomy.h"
#include "core/wire.h"

extern const struct fr_collector fr_collector_conversation;
extern const struct fr_collector fr_collector_turn;
extern const struct fr_collector fr_collector_timeline;
extern const struct fr_collector fr_collector_sem;
extern const struct fr_collector fr_collector_provider;
extern const struct fr_collector fr_collector_tool;
extern const struct fr_collector fr_collector_middleware;
extern const struct fr_collector fr_collector_transport;
extern const struct fr_collector fr_collector_runtime;
extern const struct fr_collector fr_collector_error;

const struct fr_collector *const fr_collectors[] = {
    &fr_collector_conversation,
    &fr_collector_turn,
    &fr_collector_timeline,
    &fr_collector_sem,
    &fr_collector_provider,
    &fr_collector_tool,
    &fr_collector_middleware,
    &fr_collector_transport,
    &fr_collector_runtime,
    &fr_collector_error,
    NULL,
};

const struct fr_collector *
fr_collector_find(const char *name)
{
    for (size_t i = 0; fr_collectors[i] != NULL; i++)
        if (strcmp(fr_collectors[i]->name, name) == 0)
            return fr_collectors[i];
    return NULL;
}

const struct fr_collector *
fr_collector_for_kind(enum fr_kind kind)
{
    for (size_t i = 0; fr_collectors[i] != NULL; i++)
        for (const int *k = fr_collectors[i]->kinds; *k >= 0; k++)
            if (*k == (int)kind)
                return fr_collectors[i];
    return NULL;
}

int
fr_collect_check(struct fr_event *ev, struct fr_err *err)
{
    const struct fr_collector *c = fr_collector_for_kind(ev->kind);
    if (c == NULL)
        return fr_err_set(err, FR_E_KIND, "kind: no collector for %s", fr_kind_name(ev->kind));
    int rc = fr_fields_check(ev->data, c->fields, "data", err);
    if (rc != FR_OK)
        return rc;
    return fr_fields_check(ev->error, fr_error_fields, "error", err);
}

int
fr_collect(struct fr_event *ev, const struct fr_taxonomy *tax, struct fr_err *err)
{
    int rc = fr_collect_check(ev, err);
    return rc == FR_OK ? fr_collect_normalize(ev, tax, err) : rc;
}

int
fr_collect_normalize(struct fr_event *ev, const struct fr_taxonomy *tax, struct fr_err *err)
{
    const struct fr_collector *c = fr_collector_for_kind(ev->kind);
    int rc;
    if (c->normalize != NULL) {
        /* collectors in this tree keep no per-instance state yet: ctx is NULL */
        rc = c->normalize(NULL, ev, err);
        if (rc != FR_OK)
            return rc;
    }
    /* a duration of more than a day: most likely nanoseconds (a Go time.Duration sent as
       duration_ms); stored as sent, said as a misnamed field is */
    if (ev->has_duration && ev->duration_ms > FR_WIRE_LONG_MS && ev->misnamed == NULL) {
        ev->misnamed = FR_WIRE_LONG;
        ev->misnamed_field = FR_WF_DATA;
    }
    fr_taxonomy_classify(tax, ev);
    return FR_OK;
}
