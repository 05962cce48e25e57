/*
 * retention/hot/groups.c - what every backend's reads share: the events
 * column each --by / ?by= value groups by (fr_store_error_group_column),
 * the LIKE pattern of a text search (fr_store_text_pattern) and latency
 * quantiles of rollup rows (fr_rollup_quantile). Calls nothing of the
 * store, so any backend file may call it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "retention/hot/store.h"

const char *
fr_store_error_group_column(const char *by, struct fr_err *err)
{
    static const char *const by_names[] = {"code", "class", "model", "tool", "kind"};
    static const char *const by_cols[] = {"error_code", "error_class", "model", "tool", "kind"};
    for (size_t i = 0; i < 5; i++)
        if (strcmp(by, by_names[i]) == 0)
            return by_cols[i];
    fr_err_set(err, FR_E_INVALID, "--by: expected code, class, model, tool or kind, got '%s'", by);
    return NULL;
}

int64_t
fr_rollup_quantile(const struct fr_rollup_row *r, double q)
{
    if (r->lat_count == 0)
        return -1;
    int64_t want = (int64_t)(q * (double)r->lat_count + 0.999999), seen = 0;
    for (int b = 0; b < FR_HIST_BUCKETS; b++) {
        seen += r->hist[b];
        if (seen >= want)
            return b < FR_HIST_BUCKETS - 1 && fr_hist_upper_ms[b] < r->lat_max_ms
                       ? fr_hist_upper_ms[b]
                       : r->lat_max_ms;
    }
    return r->lat_max_ms;
}

char *
fr_store_text_pattern(const char *text, int form)
{
    json_t *s = json_string(text);
    char *enc = s ? json_dumps(s, JSON_ENCODE_ANY | (form == 1 ? JSON_ENSURE_ASCII : 0)) : NULL;
    json_decref(s);
    if (enc == NULL)
        return NULL;
    size_t n = strlen(enc);
    bool ascii = true;
    for (const char *c = text; *c; c++)
        ascii &= (unsigned char)*c < 0x80;
    if (form == 1 && ascii) {
        free(enc);
        return NULL;
    }
    /* enc is "...": its inside, with LIKE's wildcards and the escape character escaped */
    char *out = fr_malloc(2 * n + 3), *o = out;
    *o++ = '%';
    for (size_t i = 1; i + 1 < n; i++) {
        if (enc[i] == '%' || enc[i] == '_' || enc[i] == '\\')
            *o++ = '\\';
        *o++ = enc[i];
    }
    *o++ = '%';
    *o = '\0';
    free(enc);
    return out;
}
