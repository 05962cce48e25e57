/*
 * retention/hot/groups.c - what every backend's error grouping shares: the
 * events column each --by / ?by= value groups by (fr_store_error_group_column).
 * Calls nothing of the store, so any backend file may call it.
 */
#include <string.h>

#include "retention/hot/store.h"

const char *
fr_store_error_group_column(const char *by, struct fr_err *err)
{
    static const char *const by_names[] = {"code", "class", "model", "tool", "kind"};
    static const char *const by_cols[] = {"error_code", "error_class", "model", "tool", "kind"};
    for (size_t i = 0; i < 5; i++)
        if (strcmp(by, by_names[i]) == 0)
            return by_cols[i];
    fr_err_set(err, FR_E_INVALID, "--by: expected code, class, model, tool or kind");
    return NULL;
}
