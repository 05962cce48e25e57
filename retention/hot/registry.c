/*
 * retention/hot/registry.c - every store backend (struct fr_store_ops), the
 * first one the default. A new backend is one file set implementing the
 * descriptor and one line here; fr_store_open() picks it by the location's
 * scheme ("<name>://..."), so no caller changes.
 */
#include <string.h>

#include "retention/hot/store.h"

const struct fr_store_ops *const fr_store_backends[] = {
    &fr_store_sqlite,   /* a file path: the embedded default */
    &fr_store_postgres, /* postgres://...: the fleet store, fed by the agents' shippers */
};
const size_t fr_store_backends_count = sizeof fr_store_backends / sizeof fr_store_backends[0];

const struct fr_store_ops *
fr_store_find(const char *name)
{
    for (size_t i = 0; i < fr_store_backends_count; i++)
        if (strcmp(fr_store_backends[i]->name, name) == 0)
            return fr_store_backends[i];
    return NULL;
}

const struct fr_store_ops *
fr_store_backend_for(const char *location)
{
    /* libpq's other spelling of its scheme */
    if (strncmp(location, "postgresql://", 13) == 0)
        return &fr_store_postgres;
    const char *sep = strstr(location, "://");
    for (size_t i = 0; sep != NULL && i < fr_store_backends_count; i++) {
        size_t n = strlen(fr_store_backends[i]->name);
        if ((size_t)(sep - location) == n && strncmp(location, fr_store_backends[i]->name, n) == 0)
            return fr_store_backends[i];
    }
    return sep != NULL ? NULL : fr_store_backends[0];
}

bool
fr_store_location_is_fleet(const char *location)
{
    const struct fr_store_ops *ops = fr_store_backend_for(location);
    return ops != NULL && ops->ship_begin != NULL;
}
