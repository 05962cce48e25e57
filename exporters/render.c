/*
 * exporters/render.c - see render.h.
 */
#include "exporters/render.h"

#include "retention/hot/archive.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/wire.h"

json_t *
fr_render_conv(const struct fr_conv_row *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "conv_id", json_string(r->conv_id));
    json_object_set_new(o, "session_id", r->session_id ? json_string(r->session_id) : json_null());
    json_object_set_new(o, "status", json_string(r->status));
    json_object_set_new(o, "current_runtime_key",
                        r->runtime_key ? json_string(r->runtime_key) : json_null());
    json_object_set_new(o, "created_ms", json_integer(r->created_ms));
    json_object_set_new(o, "last_activity_ms", json_integer(r->last_activity_ms));
    json_object_set_new(o, "closed_ms", r->closed_ms ? json_integer(r->closed_ms) : json_null());
    json_object_set_new(o, "evicted_ms", r->evicted_ms ? json_integer(r->evicted_ms) : json_null());
    json_object_set_new(o, "event_count", json_integer(r->event_count));
    json_object_set_new(o, "error_count", json_integer(r->error_count));
    json_t *le = json_null();
    if (r->last_error_code) {
        le = json_object();
        json_object_set_new(le, "error_class", json_string(r->last_error_class));
        json_object_set_new(le, "error_code", json_string(r->last_error_code));
        json_object_set_new(le, "message", json_string(r->last_error_message));
    }
    json_object_set_new(o, "last_error", le);
    json_object_set_new(o, "panic", json_boolean(r->panic));
    return o;
}

/* The normalized columns of an event row ("flightrec" of the rendered event). */
static json_t *
render_meta(const struct fr_event_row *r, bool raw)
{
    json_t *meta = json_object();
    if (raw)
        json_object_set_new(meta, "raw", json_true());
    if (r->policy)
        json_object_set_new(meta, "redaction_policy", json_string(r->policy));
    json_object_set_new(meta, "id", json_integer(r->id));
    json_object_set_new(meta, "ingested_ms", json_integer(r->ingested_ms));
    json_object_set_new(meta, "tier", json_string(r->tier ? r->tier : "hot"));
    if (r->status)
        json_object_set_new(meta, "status", json_string(r->status));
    if (r->provider)
        json_object_set_new(meta, "provider", json_string(r->provider));
    if (r->model)
        json_object_set_new(meta, "model", json_string(r->model));
    if (r->tool)
        json_object_set_new(meta, "tool", json_string(r->tool));
    if (r->has_duration)
        json_object_set_new(meta, "duration_ms", json_integer(r->duration_ms));
    if (r->error_code) {
        json_object_set_new(meta, "error_class", json_string(r->error_class));
        json_object_set_new(meta, "error_code", json_string(r->error_code));
        json_object_set_new(meta, "error_message", json_string(r->error_message));
    }
    return meta;
}

json_t *
fr_render_event(const struct fr_event_row *r, const char *raw, size_t rawlen)
{
    json_t *ev = raw ? fr_wire_load_body(raw, rawlen) : fr_wire_load_body(r->body, r->body_len);
    if (ev == NULL)
        ev = json_object();
    json_object_set_new(ev, "flightrec", render_meta(r, raw != NULL));
    return ev;
}

/* JSON's insignificant whitespace. */
static bool
json_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* j as compact text, then released; "{}" if jansson failed (only on out-of-memory). */
static char *
dump_compact(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s ? s : fr_strdup("{}");
}

char *
fr_render_event_text(const struct fr_event_row *r, size_t *len)
{
    const char *b = r->body;
    size_t n = r->body_len, first = 0;
    while (n > 0 && json_ws(b[n - 1]))
        n--;
    while (first < n && json_ws(b[first]))
        first++;
    /* the stored text as it is, the normalized columns spliced in before its last brace; a
       body that is not plainly one object, or that names "flightrec" itself, goes through
       the parser (the column must win) */
    if (n < first + 2 || b[first] != '{' || b[n - 1] != '}' ||
        memmem(b + first, n - first, "\"flightrec\"", 11) != NULL) {
        char *s = dump_compact(fr_render_event(r, NULL, 0));
        *len = strlen(s);
        return s;
    }
    char *m = dump_compact(render_meta(r, false));
    size_t inner = first + 1;
    while (inner < n - 1 && json_ws(b[inner]))
        inner++;
    bool empty = inner == n - 1; /* "{}": no comma before the spliced member */
    size_t ml = strlen(m), body = n - 1 - first;
    char *out = fr_malloc(body + ml + 16);
    memcpy(out, b + first, body);
    size_t o = body;
    if (!empty)
        out[o++] = ',';
    memcpy(out + o, "\"flightrec\":", 12);
    o += 12;
    memcpy(out + o, m, ml);
    o += ml;
    out[o++] = '}';
    out[o] = '\0';
    *len = o;
    free(m);
    return out;
}

static int64_t
ev_int(const json_t *ev, const char *k, int64_t dflt)
{
    const json_t *v = json_object_get(ev, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* (ts_ms, seq, stored id): a conversation's order, whichever tier an event came from. */
static int
event_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t k1[3] = {ev_int(x, "ts_ms", 0), ev_int(x, "seq", -1),
                     ev_int(json_object_get(x, "flightrec"), "id", 0)};
    int64_t k2[3] = {ev_int(y, "ts_ms", 0), ev_int(y, "seq", -1),
                     ev_int(json_object_get(y, "flightrec"), "id", 0)};
    for (int i = 0; i < 3; i++)
        if (k1[i] != k2[i])
            return k1[i] < k2[i] ? -1 : 1;
    return 0;
}

void
fr_render_sort_events_dir(json_t *events, bool newest_first)
{
    size_t n = json_array_size(events);
    if (n < 2)
        return;
    json_t **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(events, i));
    qsort(v, n, sizeof *v, event_cmp);
    json_array_clear(events);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(events, v[newest_first ? n - 1 - i : i]);
    free(v);
}

void
fr_render_sort_events(json_t *events)
{
    fr_render_sort_events_dir(events, false);
}

void
fr_render_texts_add(struct fr_render_texts *l, int64_t ts_ms, int64_t seq, int64_t id, char *text,
                    size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = fr_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (struct fr_render_text){ts_ms, seq, id, text, len};
}

static int
text_cmp(const void *a, const void *b)
{
    const struct fr_render_text *x = a, *y = b;
    int64_t k1[3] = {x->ts_ms, x->seq, x->id}, k2[3] = {y->ts_ms, y->seq, y->id};
    for (int i = 0; i < 3; i++)
        if (k1[i] != k2[i])
            return k1[i] < k2[i] ? -1 : 1;
    return 0;
}

void
fr_render_texts_sort(struct fr_render_texts *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, text_cmp);
}

size_t
fr_render_texts_page(struct fr_render_texts *l, int64_t offset, int limit)
{
    fr_render_texts_sort(l);
    size_t n = l->n, from;
    if (offset < 0) /* the last ones */
        from = (uint64_t)-offset < n ? n - (size_t)-offset : 0;
    else
        from = (uint64_t)offset < n ? (size_t)offset : n;
    size_t to = limit > 0 && from + (size_t)limit < n ? from + (size_t)limit : n;
    for (size_t i = 0; i < l->n; i++)
        if (i < from || i >= to)
            free(l->v[i].text);
    if (from > 0 && to > from)
        memmove(l->v, l->v + from, (to - from) * sizeof *l->v);
    l->n = to - from;
    return from;
}

void
fr_render_texts_free(struct fr_render_texts *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
    memset(l, 0, sizeof *l);
}

json_t *
fr_render_summary(const struct fr_summary_row *r)
{
    json_t *codes = r->error_codes ? json_loads(r->error_codes, 0, NULL) : NULL;
    json_t *models = r->models ? json_loads(r->models, 0, NULL) : NULL;
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:s?,s:I}", "conv_id", r->conv_id,
                     "first_ms", (json_int_t)r->first_ms, "last_ms", (json_int_t)r->last_ms,
                     "events", (json_int_t)r->events, "errors", (json_int_t)r->errors,
                     "input_tokens", (json_int_t)r->input_tokens, "output_tokens",
                     (json_int_t)r->output_tokens, "error_codes", codes ? codes : json_object(),
                     "models", models ? models : json_object(), "host", r->host, "summarized_ms",
                     (json_int_t)r->summarized_ms);
}
