/*
 * retention/tier.h - the retention stage's interface (implementation lands
 * with the retention issue): data moves hot (the SQLite store) → warm
 * (zstd-compressed archive segments) → cold (segments also encrypted) →
 * deleted, by age and size, crash-safely.
 *
 * A tier is a plugin that writes and reads archive segments of one kind.
 */
#ifndef FR_RETENTION_TIER_H
#define FR_RETENTION_TIER_H

#include "core/err.h"
#include "core/option.h"

struct fr_tier {
    const char *name; /* "warm", "cold" */
    const char *description;
    const struct fr_option *options;             /* NULL: none */
    int (*init)(void **ctx, struct fr_err *err); /* optional */
    void (*destroy)(void *ctx);                  /* optional */
};

#endif
