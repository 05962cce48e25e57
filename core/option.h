/*
 * core/option.h - the option table type every plugin and the agent declare
 * their settings with: key, type, default, where it lives (offsetof), bounds
 * and a description. The same table is read by the configuration loader, the
 * FLIGHTREC_* environment overrides, `flightrec config check` and the docs.
 */
#ifndef FR_CORE_OPTION_H
#define FR_CORE_OPTION_H

#include <stddef.h>
#include <stdint.h>

enum fr_option_type {
    FR_OPT_END = 0, /* terminates a table */
    FR_OPT_INT,     /* int64_t */
    FR_OPT_SIZE,    /* size_t, accepts 64KiB / 1MiB / 2GiB suffixes */
    FR_OPT_BOOL,    /* bool */
    FR_OPT_STRING,  /* char * (owned by the config) */
    FR_OPT_SECRET,  /* char *, printed as *** */
};

struct fr_option {
    const char *key; /* dotted path, e.g. "limits.max_line" */
    enum fr_option_type type;
    const char *def;         /* default, as text */
    size_t offset;           /* offsetof() into the owning struct */
    int64_t min, max;        /* bounds for INT and SIZE */
    const char *description; /* one sentence for config check and docs */
};

#endif
