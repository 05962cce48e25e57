/*
 * agent/sources/registry.c - every ingest source the agent can start, in
 * start order (agent/source.h). A new source is one file and one line.
 */
#include <string.h>

#include "agent/source.h"

extern const struct fr_source fr_source_otlp;
extern const struct fr_source fr_source_http;
extern const struct fr_source fr_source_uds;
extern const struct fr_source fr_source_runtime;
extern const struct fr_source fr_source_otlp_grpc;

const struct fr_source *const fr_sources[] = {
    &fr_source_http, &fr_source_uds, &fr_source_otlp, &fr_source_otlp_grpc, &fr_source_runtime,
};
const size_t fr_sources_count = sizeof fr_sources / sizeof fr_sources[0];

const struct fr_source *
fr_source_find(const char *name)
{
    for (size_t i = 0; i < fr_sources_count; i++)
        if (strcmp(fr_sources[i]->name, name) == 0)
            return fr_sources[i];
    return NULL;
}
