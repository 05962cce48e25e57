/*
 * core/event.c - names of kinds, ids and error classes; event cleanup.
 */
#include "core/event.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

const char *const fr_id_names[FR_ID_COUNT] = {
    "conv_id",  "session_id", "turn_id", "run_id",      "request_id",   "stream_id",
    "event_id", "trace_id",   "span_id", "runtime_key", "inference_id",
};

static const char *const kind_names[FR_KIND_COUNT] = {
    "conversation", "turn",       "timeline",  "sem",     "provider",
    "tool",         "middleware", "transport", "runtime", "error",
};

static const char *const class_names[FR_ECLASS_COUNT] = {
    "", "validation", "provider", "tool", "projection", "storage", "transport", "runtime",
};

const char *
fr_kind_name(enum fr_kind kind)
{
    if ((int)kind < 0 || kind >= FR_KIND_COUNT)
        return "?";
    return kind_names[kind];
}

int
fr_kind_parse(const char *name)
{
    for (int i = 0; i < FR_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

const char *
fr_error_class_name(enum fr_error_class klass)
{
    if ((int)klass < 0 || klass >= FR_ECLASS_COUNT)
        return "";
    return class_names[klass];
}

int
fr_error_class_parse(const char *name)
{
    for (int i = 1; i < FR_ECLASS_COUNT; i++)
        if (strcmp(name, class_names[i]) == 0)
            return i;
    return -1;
}

void
fr_event_clear(struct fr_event *ev)
{
    if (ev == NULL)
        return;
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
}

/* Copies s to *cursor and returns the copy; NULL stays NULL. */
static const char *
record_put(char **cursor, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

void
fr_record_from_event(struct fr_record *rec, const struct fr_event *ev, const char *body,
                     size_t body_len)
{
    const char *src[FR_ID_COUNT + 12];
    size_t total = body_len + 1;
    for (int i = 0; i < FR_ID_COUNT; i++)
        src[i] = ev->ids[i];
    src[FR_ID_COUNT] = ev->status;
    src[FR_ID_COUNT + 1] = ev->provider;
    src[FR_ID_COUNT + 2] = ev->model;
    src[FR_ID_COUNT + 3] = ev->tool;
    src[FR_ID_COUNT + 4] = ev->route;
    src[FR_ID_COUNT + 5] = ev->entity_id;
    src[FR_ID_COUNT + 6] = ev->entity_kind;
    src[FR_ID_COUNT + 7] = ev->err.code;
    src[FR_ID_COUNT + 8] = ev->err.message;
    src[FR_ID_COUNT + 9] = ev->request_sha256;
    src[FR_ID_COUNT + 10] = ev->response_sha256;
    src[FR_ID_COUNT + 11] = ev->finish;
    for (int i = 0; i < FR_ID_COUNT + 12; i++)
        if (src[i] != NULL)
            total += strlen(src[i]) + 1;
    memset(rec, 0, sizeof *rec);
    rec->strings = fr_malloc(total);
    char *cur = rec->strings;
    memcpy(cur, body, body_len);
    cur[body_len] = '\0';
    rec->body = cur;
    rec->body_len = body_len;
    cur += body_len + 1;
    for (int i = 0; i < FR_ID_COUNT; i++)
        rec->ids[i] = record_put(&cur, src[i]);
    rec->status = record_put(&cur, ev->status);
    rec->provider = record_put(&cur, ev->provider);
    rec->model = record_put(&cur, ev->model);
    rec->tool = record_put(&cur, ev->tool);
    char *route = cur;
    rec->route = record_put(&cur, ev->route);
    /* the route is the path alone: a query string or fragment (ids, tokens, addresses) would
       make a rollup row and a metric series per request (the body keeps the whole path) */
    if (rec->route != NULL)
        route[strcspn(route, "?#")] = '\0';
    rec->finish = record_put(&cur, ev->finish);
    rec->entity_id = record_put(&cur, ev->entity_id);
    rec->entity_kind = record_put(&cur, ev->entity_kind);
    rec->version = ev->version;
    rec->has_version = ev->has_version;
    rec->misnamed = ev->misnamed;
    rec->misnamed_field = ev->misnamed_field;
    rec->mended_at = ev->mended_at[0] != '\0' ? fr_strdup(ev->mended_at) : NULL;
    rec->kind = ev->kind;
    rec->ts_ms = ev->ts_ms;
    rec->seq = ev->seq;
    rec->has_seq = ev->has_seq;
    rec->duration_ms = ev->duration_ms;
    rec->has_duration = ev->has_duration;
    rec->has_error = ev->has_error;
    rec->err.klass = ev->err.klass;
    rec->err.code = record_put(&cur, ev->err.code);
    rec->err.message = record_put(&cur, ev->err.message);
    rec->err.panic = ev->err.panic;
    rec->request_sha256 = record_put(&cur, ev->request_sha256);
    rec->response_sha256 = record_put(&cur, ev->response_sha256);
    memcpy(rec->tokens, ev->tokens, sizeof rec->tokens);
}

void
fr_record_clear(struct fr_record *rec)
{
    if (rec == NULL)
        return;
    free(rec->strings);
    free(rec->raw);
    free(rec->packed);
    free(rec->mended_at);
    memset(rec, 0, sizeof *rec);
}

const char *
fr_record_field(const struct fr_record *rec, enum fr_record_field f)
{
    const char *v = NULL;
    switch (f) {
    case FR_RF_EMPTY:
        return "";
    case FR_RF_PROVIDER:
        v = rec->provider;
        break;
    case FR_RF_MODEL:
        v = rec->model;
        break;
    case FR_RF_TOOL:
        v = rec->tool;
        break;
    case FR_RF_ROUTE:
        return rec->route ? rec->route : "-";
    case FR_RF_STATUS:
        return rec->status ? rec->status : "-";
    case FR_RF_ERROR_CLASS:
        return fr_error_class_name(rec->err.klass);
    case FR_RF_ERROR_CODE:
        v = rec->err.code;
        break;
    case FR_RF_FINISH:
        v = rec->finish;
        break;
    }
    return v ? v : "";
}
