/*
 * collectors/runtime.c - process health samples of the chat server (pushed
 * by it, or sampled from /proc by the agent): memory, CPU, threads, GC,
 * descriptors, SQLite contention, dependency health.
 */
#include <string.h>

#include "collectors/collector.h"

static const struct fr_field runtime_fields[] = {
    {.name = "build_sha", .types = FR_FT_STRING},
    {.name = "version", .types = FR_FT_STRING},
    {.name = "pid", .types = FR_FT_INT, .non_negative = true},
    {.name = "uptime_s", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "rss_bytes", .types = FR_FT_INT, .non_negative = true},
    {.name = "cpu_pct", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "threads", .types = FR_FT_INT, .non_negative = true},
    {.name = "goroutines", .types = FR_FT_INT, .non_negative = true},
    {.name = "gc_pause_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "open_fds", .types = FR_FT_INT, .non_negative = true},
    {.name = "sqlite_busy", .types = FR_FT_INT, .non_negative = true},
    {.name = "deps", .types = FR_FT_OBJECT},
    {.name = NULL},
};

static int
runtime_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    if (ev->data == NULL)
        return FR_OK;
    json_t *deps = json_object_get(ev->data, "deps");
    if (json_is_object(deps)) {
        const char *name;
        json_t *state;
        json_object_foreach(deps, name, state)
        {
            const char *s = json_string_value(state);
            if (s == NULL || (strcmp(s, "up") != 0 && strcmp(s, "down") != 0))
                return fr_err_set(err, FR_E_VALUE, "data.deps.%.64s: must be up or down", name);
        }
    }
    return FR_OK;
}

static const int runtime_kinds[] = {FR_KIND_RUNTIME, -1};

const struct fr_collector fr_collector_runtime = {
    .name = "runtime",
    .description = "process health samples: RSS, CPU, threads, GC, fds, dependency health",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = runtime_kinds,
    .fields = runtime_fields,
    .normalize = runtime_normalize,
};
