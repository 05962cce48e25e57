/*
 * agent/source.h - the interface every ingest source of the agent
 * implements, and the registry the daemon starts them from.
 *
 * A source turns one transport into durable events: it is handed the
 * pipeline (agent/pipeline.h), never the agent, and submits prepared
 * records through it. The daemon starts, in registry order, every source
 * whose `enabled` says the configuration asks for it, and stops them in
 * reverse order: first `quiesce` on all (no new connections), then
 * `destroy` on each (finish in-flight work, which the writer still
 * commits, and free).
 *
 * One file per source under agent/sources/, ending in its descriptor:
 *
 *     const struct fr_source fr_source_uds = {
 *         .name = "socket", .description = "...", .enabled = uds_enabled,
 *         .init = uds_init, .destroy = uds_destroy, .describe = uds_describe,
 *     };
 *
 * and one line in agent/sources/registry.c.
 */
#ifndef FR_AGENT_SOURCE_H
#define FR_AGENT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/config.h"
#include "agent/pipeline.h"
#include "core/err.h"

struct fr_source {
    const char *name;        /* "http", "otlp", "socket", "runtime" */
    const char *description; /* one line, for `flightrec agent --help` and the docs */
    const char *options;     /* the configuration section that configures it ("http.*") */
    /* Whether the configuration turns this source on. */
    bool (*enabled)(const struct fr_config *c);
    /* Starts the source on p (borrowed until destroy); *ctx is its instance. */
    int (*init)(struct fr_pipeline *p, void **ctx, struct fr_err *err);
    /* Ends the instance: in-flight work is finished and acknowledged first. */
    void (*destroy)(void *ctx);
    /* Optional (NULL: nothing to do): stop accepting new work before any destroy. */
    void (*quiesce)(void *ctx);
    /* Optional (NULL: prints nothing): where it listens, for the "ready" line. */
    void (*describe)(void *ctx, char *buf, size_t len);
};

/* Every source, in start order. */
extern const struct fr_source *const fr_sources[];
extern const size_t fr_sources_count;

/* The source called name, or NULL. */
const struct fr_source *fr_source_find(const char *name);

#endif
