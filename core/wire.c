/*
 * core/wire.c - envelope parsing and validation for wire format version 1.
 *
 * Order of checks (the first failure is reported): JSON syntax and UTF-8
 * (jansson), top-level object, depth and value count, `v`, `kind`, `ts_ms`,
 * ids, `seq`, `data`, `error`, `tags`.
 */
#include "core/wire.h"

#include <string.h>

#include "core/jsonfast.h"
#include "core/mem.h"

void
fr_wire_limits_default(struct fr_wire_limits *lim)
{
    lim->max_line = 1024 * 1024;
    lim->max_depth = 64;
    lim->max_fields = 10000;
    lim->max_id_len = 256;
    lim->max_string = 1 << 20;
}

const char *
fr_json_type_phrase(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a non-integer number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/*
 * Walks the tree; fails when deeper than max_depth, holding more than
 * max_fields values, or with a string or key longer than max_string bytes.
 */
static int
wire_check_shape(const json_t *v, int depth, size_t *count, const struct fr_wire_limits *lim,
                 struct fr_err *err)
{
    if (depth > lim->max_depth)
        return fr_err_set(err, FR_E_DEPTH, "JSON nested deeper than %d levels", lim->max_depth);
    if (++*count > lim->max_fields)
        return fr_err_set(err, FR_E_LIMIT, "more than %zu JSON values in one event",
                          lim->max_fields);
    if (json_is_string(v) && json_string_length(v) > lim->max_string)
        return fr_err_set(err, FR_E_LIMIT, "a string of %zu bytes, over the %zu byte limit",
                          json_string_length(v), lim->max_string);
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            if (strlen(key) > lim->max_string)
                return fr_err_set(err, FR_E_LIMIT, "a key of %zu bytes, over the %zu byte limit",
                                  strlen(key), lim->max_string);
            int rc = wire_check_shape(child, depth + 1, count, lim, err);
            if (rc != FR_OK)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            int rc = wire_check_shape(child, depth + 1, count, lim, err);
            if (rc != FR_OK)
                return rc;
        }
    }
    return FR_OK;
}

static int
wire_syntax_error(const json_error_t *jerr, struct fr_err *err)
{
    switch (json_error_code(jerr)) {
    case json_error_invalid_utf8:
        return fr_err_set(err, FR_E_UTF8, "invalid UTF-8 at byte %d", jerr->position);
    case json_error_stack_overflow:
        return fr_err_set(err, FR_E_DEPTH, "JSON nested too deeply");
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return fr_err_set(err, FR_E_SYNTAX, "NUL character in a string at byte %d", jerr->position);
    case json_error_numeric_overflow:
        return fr_err_set(err, FR_E_VALUE, "number out of range at byte %d", jerr->position);
    case json_error_duplicate_key:
        /* the key is not quoted: it may be anything, a secret included */
        return fr_err_set(err, FR_E_SYNTAX,
                          "duplicate key in an object at byte %d: each key may appear once (a "
                          "parser keeping the last one would store what was never checked)",
                          jerr->position);
    default: {
        char text[JSON_ERROR_TEXT_LENGTH];
        return fr_err_set(err, FR_E_SYNTAX, "invalid JSON at byte %d: %s", jerr->position,
                          fr_json_error_text(jerr, text, sizeof text));
    }
    }
}

const char *
fr_json_error_text(const json_error_t *jerr, char *out, size_t n)
{
    snprintf(out, n, "%s", jerr->text);
    char *near = strstr(out, " near '");
    if (near != NULL)
        *near = '\0';
    return out;
}

static int
wire_envelope(json_t *root, const struct fr_wire_limits *lim, struct fr_event *ev,
              struct fr_err *err)
{
    size_t count = 0;
    int rc = wire_check_shape(root, 1, &count, lim, err);
    if (rc != FR_OK)
        return rc;

    json_t *v = json_object_get(root, "v");
    if (v != NULL && !(json_is_integer(v) && json_integer_value(v) == 1))
        return fr_err_set(err, FR_E_VERSION, "v: only wire format version 1 is supported");

    json_t *kind = json_object_get(root, "kind");
    if (kind == NULL || json_is_null(kind))
        return fr_err_set(err, FR_E_MISSING, "kind: missing (required)");
    if (!json_is_string(kind))
        return fr_err_set(err, FR_E_TYPE, "kind: must be a string, got %s",
                          fr_json_type_phrase(kind));
    int k = fr_kind_parse(json_string_value(kind));
    if (k < 0) {
        /* echoed only when it looks like a kind name (a typo): a producer's value
           in an error message may be anything, a secret included */
        const char *v = json_string_value(kind);
        bool word = json_string_length(kind) <= 24 &&
                    strspn(v, "abcdefghijklmnopqrstuvwxyz_") == json_string_length(kind);
        char shown[48];
        if (word)
            snprintf(shown, sizeof shown, "'%s'", v);
        else
            snprintf(shown, sizeof shown, "a string of %zu bytes", json_string_length(kind));
        return fr_err_set(err, FR_E_KIND,
                          "kind: %s is not a known kind (expected conversation, turn, "
                          "timeline, sem, provider, tool, middleware, transport, runtime or error)",
                          shown);
    }
    ev->kind = (enum fr_kind)k;

    json_t *ts = json_object_get(root, "ts_ms");
    if (ts == NULL || json_is_null(ts))
        return fr_err_set(err, FR_E_MISSING, "ts_ms: missing (required)");
    if (!json_is_integer(ts))
        return fr_err_set(err, FR_E_TYPE,
                          "ts_ms: must be an integer (milliseconds since the epoch), got %s",
                          fr_json_type_phrase(ts));
    ev->ts_ms = json_integer_value(ts);
    if (ev->ts_ms < FR_WIRE_MIN_TS_MS)
        return fr_err_set(err, FR_E_VALUE,
                          "ts_ms: %lld is before 1973; it looks like seconds, not milliseconds",
                          (long long)ev->ts_ms);

    for (int i = 0; i < FR_ID_COUNT; i++) {
        json_t *id = json_object_get(root, fr_id_names[i]);
        if (id == NULL || json_is_null(id))
            continue;
        if (!json_is_string(id))
            return fr_err_set(err, FR_E_TYPE, "%s: must be a string, got %s", fr_id_names[i],
                              fr_json_type_phrase(id));
        if (json_string_length(id) > lim->max_id_len)
            return fr_err_set(err, FR_E_LIMIT, "%s: longer than %zu bytes", fr_id_names[i],
                              lim->max_id_len);
        if (json_string_length(id) == 0)
            continue;
        ev->ids[i] = json_string_value(id);
    }

    json_t *seq = json_object_get(root, "seq");
    if (seq != NULL && !json_is_null(seq)) {
        if (!json_is_integer(seq))
            return fr_err_set(err, FR_E_TYPE, "seq: must be an integer, got %s",
                              fr_json_type_phrase(seq));
        if (json_integer_value(seq) < 0)
            return fr_err_set(err, FR_E_VALUE, "seq: must not be negative");
        ev->seq = json_integer_value(seq);
        ev->has_seq = true;
    }

    static const char *const objects[] = {"data", "error", "tags"};
    json_t **slots[] = {&ev->data, &ev->error, &ev->tags};
    for (int i = 0; i < 3; i++) {
        json_t *o = json_object_get(root, objects[i]);
        if (o == NULL || json_is_null(o))
            continue;
        if (!json_is_object(o))
            return fr_err_set(err, FR_E_TYPE, "%s: must be an object, got %s", objects[i],
                              fr_json_type_phrase(o));
        *slots[i] = o;
    }
    if (ev->tags != NULL) {
        const char *path;
        json_t *tag;
        size_t at = 0;
        json_object_foreach(ev->tags, path, tag)
        {
            at++;
            const char *t = json_is_string(tag) ? json_string_value(tag) : "";
            /* the key is a producer's text (it could hold anything): named by position */
            if (strcmp(t, "public") != 0 && strcmp(t, "internal") != 0 && strcmp(t, "pii") != 0 &&
                strcmp(t, "secret") != 0)
                return fr_err_set(err, FR_E_VALUE,
                                  "tags: entry %zu: a tag must be public, internal, pii or secret",
                                  at);
        }
    }
    return FR_OK;
}

int
fr_wire_take(json_t *obj, const struct fr_wire_limits *lim, struct fr_event *ev, struct fr_err *err)
{
    memset(ev, 0, sizeof *ev);
    if (!json_is_object(obj)) {
        int rc = fr_err_set(err, FR_E_TYPE, "event must be a JSON object, got %s",
                            fr_json_type_phrase(obj));
        json_decref(obj);
        return rc;
    }
    ev->root = obj;
    int rc = wire_envelope(obj, lim, ev, err);
    if (rc != FR_OK)
        fr_event_clear(ev);
    return rc;
}

int
fr_wire_parse(const char *buf, size_t len, const struct fr_wire_limits *lim, struct fr_event *ev,
              struct fr_err *err)
{
    memset(ev, 0, sizeof *ev);
    if (len > lim->max_line)
        return fr_err_set(err, FR_E_LIMIT, "line is %zu bytes, over the %zu byte limit", len,
                          lim->max_line);
    json_error_t jerr;
    /* duplicate keys are refused: the tree keeps the last value, the producer's bytes (stored
       when redaction changed nothing) hold both, so a secret could pass unscanned */
    json_t *root = fr_json_fast_load(buf, len); /* jansson's tree, built faster (jsonfast.h) */
    if (root == NULL && (root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return wire_syntax_error(&jerr, err);
    return fr_wire_take(root, lim, ev, err);
}

/*
 * The serializer's output gathered on the stack while it fits (an envelope
 * is a few hundred bytes to a few KiB), then on the heap: one allocation of
 * the final size instead of a buffer doubled from 16 bytes.
 */
struct dump_buf {
    char *heap;
    size_t n, cap;
    char stack[8192];
};

static int
dump_piece(const char *piece, size_t size, void *ud)
{
    struct dump_buf *b = ud;
    if (b->heap == NULL && b->n + size <= sizeof b->stack) {
        memcpy(b->stack + b->n, piece, size);
    } else {
        if (b->heap == NULL || b->n + size > b->cap) {
            size_t cap = 2 * (b->n + size);
            char *grown = fr_realloc(b->heap, cap);
            if (b->heap == NULL)
                memcpy(grown, b->stack, b->n);
            b->heap = grown;
            b->cap = cap;
        }
        memcpy(b->heap + b->n, piece, size);
    }
    b->n += size;
    return 0;
}

char *
fr_json_text(const json_t *j, size_t flags, size_t *len)
{
    struct dump_buf b;
    b.heap = NULL;
    b.n = b.cap = 0;
    char *s;
    if (json_dump_callback(j, dump_piece, &b, flags) != 0) {
        free(b.heap); /* jansson fails here only on out-of-memory */
        return NULL;
    }
    if (b.heap == NULL) {
        s = fr_malloc(b.n + 1);
        memcpy(s, b.stack, b.n);
        s[b.n] = '\0';
    } else {
        s = fr_realloc(b.heap, b.n + 1);
        s[b.n] = '\0';
    }
    *len = b.n;
    return s;
}

char *
fr_wire_dump(const struct fr_event *ev, size_t *len)
{
    char *s = fr_json_text(ev->root, JSON_COMPACT, len);
    if (s == NULL) {
        s = fr_strdup("{}");
        *len = 2;
    }
    return s;
}

json_t *
fr_wire_load_body(const char *body, size_t body_len)
{
    json_t *parsed = json_loadb(body, body_len, 0, NULL);
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return NULL;
    }
    return parsed;
}
