/*
 * core/wire.c - envelope parsing and validation for wire format version 1.
 *
 * Order of checks (the first failure is reported): JSON syntax and UTF-8
 * (jansson), top-level object, depth and value count, `v`, `kind`, `ts_ms`,
 * ids, `seq`, `data`, `error`, `tags`.
 */
#include "core/wire.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/jsonfast.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"

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
        size_t klen; /* jansson keeps it: no strlen of every key */
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, klen, child)
        {
            if (klen > lim->max_string)
                return fr_err_set(err, FR_E_LIMIT, "a key of %zu bytes, over the %zu byte limit",
                                  klen, lim->max_string);
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

int
fr_wire_syntax_error(const json_error_t *jerr, struct fr_err *err)
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
        return fr_err_set(err, FR_E_VALUE,
                          "number out of range at byte %d: past what a 64-bit integer or a double "
                          "holds, in ts_ms, seq, v or an id, which must hold a number that fits "
                          "(elsewhere one is kept as a string)",
                          jerr->position);
    case json_error_duplicate_key:
        /* the key is not quoted: it may be anything, a secret included */
        return fr_err_set(err, FR_E_SYNTAX,
                          "duplicate key in an object at byte %d: each key may appear once (a "
                          "parser keeping the last one would store what was never checked)",
                          jerr->position);
    default: {
        char text[JSON_ERROR_TEXT_LENGTH];
        if (strstr(jerr->text, "invalid token near 'NaN'") != NULL ||
            strstr(jerr->text, "invalid token near 'Infinity'") != NULL)
            return fr_err_set(err, FR_E_SYNTAX,
                              "invalid JSON at byte %d: NaN and Infinity are not JSON (Python's "
                              "json.dumps writes them unless allow_nan=False); in ts_ms, seq, v "
                              "or an id no such value is taken (elsewhere one is kept as a "
                              "string)",
                              jerr->position);
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

int
fr_wire_field(const char *key, size_t len)
{
    /* by length first: one or two compares for any key, instead of one per name */
    static const struct {
        const char *name;
        int field;
    } by_len[13][3] = {
        [1] = {{"v", FR_WF_V}},
        [3] = {{"seq", FR_WF_SEQ}},
        [4] = {{"kind", FR_WF_KIND}, {"data", FR_WF_DATA}, {"tags", FR_WF_TAGS}},
        [5] = {{"ts_ms", FR_WF_TS}, {"error", FR_WF_ERROR}},
        [6] = {{"run_id", FR_ID_RUN}},
        [7] = {{"conv_id", FR_ID_CONV}, {"turn_id", FR_ID_TURN}, {"span_id", FR_ID_SPAN}},
        [8] = {{"event_id", FR_ID_EVENT}, {"trace_id", FR_ID_TRACE}},
        [9] = {{"stream_id", FR_ID_STREAM}},
        [10] = {{"session_id", FR_ID_SESSION}, {"request_id", FR_ID_REQUEST}},
        [11] = {{"runtime_key", FR_ID_RUNTIME_KEY}},
        [12] = {{"inference_id", FR_ID_INFERENCE}},
    };
    if (len >= sizeof by_len / sizeof by_len[0])
        return -1;
    for (int i = 0; i < 3 && by_len[len][i].name != NULL; i++)
        if (memcmp(key, by_len[len][i].name, len) == 0)
            return by_len[len][i].field;
    return -1;
}

const char *
fr_wire_field_name(int field)
{
    static const char *const names[FR_WF_COUNT - FR_ID_COUNT] = {"v",    "kind",  "ts_ms", "seq",
                                                                 "data", "error", "tags"};
    if (field >= 0 && field < FR_ID_COUNT)
        return fr_id_names[field];
    if (field >= FR_ID_COUNT && field < FR_WF_COUNT)
        return names[field - FR_ID_COUNT];
    return "?";
}

/* Other spellings of the envelope's fields that producers send: other libraries' names
   (OpenTelemetry's traceId, "timestamp", "type") and camelCase. Only unambiguous ones: a
   top-level "version" or "session" is as likely a producer's own field. */
#define ALIAS(k, f)                                                                                \
    {                                                                                              \
        k, sizeof k - 1, f                                                                         \
    }
static const struct {
    const char *key;
    size_t len;
    int field;
} aliases[] = {
    ALIAS("conversation_id", FR_ID_CONV),
    ALIAS("conversationId", FR_ID_CONV),
    ALIAS("conversationID", FR_ID_CONV),
    ALIAS("convId", FR_ID_CONV),
    ALIAS("sessionId", FR_ID_SESSION),
    ALIAS("sessionID", FR_ID_SESSION),
    ALIAS("turnId", FR_ID_TURN),
    ALIAS("runId", FR_ID_RUN),
    ALIAS("requestId", FR_ID_REQUEST),
    ALIAS("req_id", FR_ID_REQUEST),
    ALIAS("streamId", FR_ID_STREAM),
    ALIAS("eventId", FR_ID_EVENT),
    ALIAS("traceId", FR_ID_TRACE),
    ALIAS("traceID", FR_ID_TRACE),
    ALIAS("spanId", FR_ID_SPAN),
    ALIAS("spanID", FR_ID_SPAN),
    ALIAS("runtimeKey", FR_ID_RUNTIME_KEY),
    ALIAS("inferenceId", FR_ID_INFERENCE),
    ALIAS("type", FR_WF_KIND),
    ALIAS("event_type", FR_WF_KIND),
    ALIAS("eventType", FR_WF_KIND),
    ALIAS("ts", FR_WF_TS),
    ALIAS("timestamp", FR_WF_TS),
    ALIAS("timestamp_ms", FR_WF_TS),
    ALIAS("timestampMs", FR_WF_TS),
    ALIAS("time", FR_WF_TS),
    ALIAS("time_ms", FR_WF_TS),
    ALIAS("tsMs", FR_WF_TS),
    ALIAS("sequence", FR_WF_SEQ),
    ALIAS("payload", FR_WF_DATA),
};

#undef ALIAS

int
fr_wire_alias(const char *key, size_t len, const char **spelled)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (aliases[i].len == len && memcmp(aliases[i].key, key, len) == 0) {
            *spelled = aliases[i].key;
            return aliases[i].field;
        }
    return -1;
}

const char FR_WIRE_MISSING[] = "", FR_WIRE_AHEAD[] = "+ahead", FR_WIRE_WIDE[] = "+wide",
           FR_WIRE_HALF[] = "+half", FR_WIRE_BYTES[] = "+bytes", FR_WIRE_LONG[] = "+long";

const char *
fr_wire_misnamed_text(const char *key, int field, char *out, size_t cap)
{
    if (key == FR_WIRE_AHEAD) {
        snprintf(out, cap,
                 "%s: more than a day ahead of this agent's clock; stored as sent, but its "
                 "conversation sorts first and stays in hot until that time has passed: check "
                 "the producer's clock (and that ts_ms is UTC milliseconds).",
                 fr_wire_field_name(field));
        return out;
    }
    if (key == FR_WIRE_WIDE) {
        snprintf(out, cap,
                 "a number JSON readers cannot hold (past 64 bits: a uint64 of 2^63 or more, a "
                 "hash, an id; or NaN or Infinity, which Python's json.dumps writes) is stored "
                 "as a string of its text; send such values as strings.");
        return out;
    }
    if (key == FR_WIRE_LONG) {
        snprintf(out, cap,
                 "the event's duration (data.duration_ms; for a provider call "
                 "data.latency.provider_ms; for transport latency_ms or rtt_ms) is more than a "
                 "day: it looks like nanoseconds, as Go's time.Duration marshals (send "
                 "d.Milliseconds()). Stored as sent; it counts in the latency figures.");
        return out;
    }
    if (key == FR_WIRE_HALF) {
        snprintf(out, cap,
                 "a string held half of a character (a lone UTF-16 surrogate escape such as "
                 "\\ud83d, which JavaScript's JSON.stringify writes for a string cut inside an "
                 "emoji), which is not text; stored as U+FFFD. Cut strings by code point.");
        return out;
    }
    if (key == FR_WIRE_BYTES) {
        snprintf(out, cap,
                 "a string held bytes that are not UTF-8 (text in Latin-1 or Windows-1252, or "
                 "cut inside a character by a byte count); each stored as U+FFFD. Send UTF-8, "
                 "cut by character.");
        return out;
    }
    if (key == FR_WIRE_MISSING) { /* by no other name: an error event without its failure */
        snprintf(out, cap,
                 "%s: missing; an event of kind error carries its failure there "
                 "({\"message\", \"type\", \"http_status\", ...}). Without it the failure is "
                 "filed as runtime.unknown, with no message.",
                 fr_wire_field_name(field));
        return out;
    }
    const char *loses = field == FR_ID_CONV    ? "Without it the event belongs to no conversation."
                        : field == FR_WF_DATA  ? "A kind's fields are read from data only."
                        : field == FR_WF_SEQ   ? "Without it the event has no sequence number."
                        : field == FR_ID_TRACE ? "Without it the event joins no trace."
                                               : "The event is stored without one.";
    snprintf(out, cap, "%s: not an envelope field (kept as an attribute); did you mean %s? %s", key,
             fr_wire_field_name(field), loses);
    return out;
}

/* The error for a required field (kind, ts_ms) missing, with the key the producer most
   likely meant it by. */
static int
wire_missing(struct fr_err *err, int field, const char *misnamed)
{
    const char *name = fr_wire_field_name(field);
    if (misnamed != NULL)
        return fr_err_set(
            err, FR_E_MISSING, "%s: missing (required); the event has '%s': %s", name, misnamed,
            field == FR_WF_TS ? "the envelope names it ts_ms, integer milliseconds since the epoch"
                              : "the envelope names it kind (provider, tool, turn, ...)");
    return fr_err_set(err, FR_E_MISSING, "%s: missing (required)", name);
}

/* The error for a ts_ms out of range (1973 to 5138 in milliseconds), naming the unit it most
   likely is. */
static int
wire_bad_ts(long long ts, struct fr_err *err)
{
    if (ts >= FR_WIRE_MAX_TS_MS) {
        bool ns = ts >= 100000000000000000LL;
        return fr_err_set(err, FR_E_VALUE,
                          "ts_ms: %lld is after the year 5138 in milliseconds; it looks like %s "
                          "(divide by %s), not milliseconds since the epoch",
                          ts, ns ? "nanoseconds" : "microseconds", ns ? "1000000" : "1000");
    }
    if (ts >= 100000000LL) /* 1973 to 5138 in seconds */
        return fr_err_set(err, FR_E_VALUE,
                          "ts_ms: %lld is before 1973; it looks like seconds, not milliseconds",
                          ts);
    return fr_err_set(err, FR_E_VALUE,
                      "ts_ms: %lld is not a time in milliseconds since the epoch (before 1973)",
                      ts);
}

/* ts_ms sent as a string: a date and time (Go's time.Time, an ISO 8601 log stamp) or a
   number in quotes (an int64 as protobuf's JSON mapping writes it) is named as such, with how
   to send it; the value itself is not repeated. */
static int
wire_ts_string(const char *s, size_t n, struct fr_err *err)
{
    bool digits = n > 0 && n <= 20;
    for (size_t i = 0; i < n && digits; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (digits)
        return fr_err_set(err, FR_E_TYPE,
                          "ts_ms: must be an integer, got a number in quotes (as protobuf's JSON "
                          "writes an int64); send it as a JSON number");
    bool date = n >= 10;
    for (size_t i = 0; i < 10 && date; i++)
        date = i == 4 || i == 7 ? s[i] == '-' : s[i] >= '0' && s[i] <= '9';
    if (date)
        return fr_err_set(err, FR_E_TYPE,
                          "ts_ms: must be an integer, got a date as text (RFC 3339 / ISO 8601); "
                          "send milliseconds since the epoch (Go: t.UnixMilli(), JavaScript: "
                          "Date.parse(s), Python: int(dt.timestamp() * 1000))");
    return fr_err_set(err, FR_E_TYPE,
                      "ts_ms: must be an integer (milliseconds since the epoch), got a string");
}

static int
wire_envelope(json_t *root, const struct fr_wire_limits *lim, struct fr_event *ev,
              struct fr_err *err)
{
    size_t count = 0;
    int rc = wire_check_shape(root, 1, &count, lim, err);
    if (rc != FR_OK)
        return rc;

    /* the envelope's fields in one pass over the keys, not a look-up by each name */
    json_t *f[FR_WF_COUNT] = {0};
    const char *key;
    size_t klen;
    json_t *val;
    /* producers' keys that most likely meant a field: alias[i] set where bit i of aliased is
       (an event rarely has one: nothing to clear or scan for it) */
    const char *alias[FR_WF_COUNT];
    uint32_t aliased = 0;
    _Static_assert(FR_WF_COUNT <= 32, "aliased holds a bit per field");
    json_object_keylen_foreach(root, key, klen, val)
    {
        int w = fr_wire_field(key, klen);
        if (w >= 0) {
            f[w] = val;
        } else {
            const char *spelled;
            int a = fr_wire_alias(key, klen, &spelled);
            if (a >= 0) {
                alias[a] = spelled;
                aliased |= UINT32_C(1) << a;
            }
        }
    }
    for (uint32_t m = aliased; m != 0 && ev->misnamed == NULL; m &= m - 1) {
        int i = __builtin_ctz(m);                 /* envelope order: ids first */
        if (f[i] == NULL || json_is_null(f[i])) { /* the field it meant is absent */
            ev->misnamed = alias[i];
            ev->misnamed_field = i;
        }
    }

    json_t *v = f[FR_WF_V];
    if (v != NULL && !(json_is_integer(v) && json_integer_value(v) == 1))
        return fr_err_set(err, FR_E_VERSION, "v: only wire format version 1 is supported");

    json_t *kind = f[FR_WF_KIND];
    if (kind == NULL || json_is_null(kind))
        return wire_missing(err, FR_WF_KIND, aliased >> FR_WF_KIND & 1 ? alias[FR_WF_KIND] : NULL);
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

    json_t *ts = f[FR_WF_TS];
    if (ts == NULL || json_is_null(ts))
        return wire_missing(err, FR_WF_TS, aliased >> FR_WF_TS & 1 ? alias[FR_WF_TS] : NULL);
    if (json_is_real(ts)) { /* a float: say which (a producer's time.time() * 1000, seconds) */
        double d = json_real_value(ts);
        if (d >= 1e8 && d < (double)FR_WIRE_MIN_TS_MS) /* 1973 to 5138 in seconds */
            return fr_err_set(err, FR_E_TYPE,
                              "ts_ms: %.17g is not an integer and looks like seconds; send whole "
                              "milliseconds since the epoch",
                              d);
        return fr_err_set(err, FR_E_TYPE,
                          "ts_ms: must be an integer (milliseconds since the epoch), got %.17g "
                          "written as a number with a fraction or an exponent; send whole "
                          "milliseconds",
                          d);
    }
    if (json_is_string(ts)) /* a time written as text: say how to send it */
        return wire_ts_string(json_string_value(ts), json_string_length(ts), err);
    if (!json_is_integer(ts))
        return fr_err_set(err, FR_E_TYPE,
                          "ts_ms: must be an integer (milliseconds since the epoch), got %s",
                          fr_json_type_phrase(ts));
    ev->ts_ms = json_integer_value(ts);
    if (ev->ts_ms < FR_WIRE_MIN_TS_MS || ev->ts_ms >= FR_WIRE_MAX_TS_MS)
        return wire_bad_ts(ev->ts_ms, err);
    if (ev->misnamed == NULL && ev->ts_ms > fr_now_ms() + FR_WIRE_AHEAD_MS) {
        ev->misnamed = FR_WIRE_AHEAD; /* said as a misnamed field is (fr_wire_misnamed_text) */
        ev->misnamed_field = FR_WF_TS;
    }

    for (int i = 0; i < FR_ID_COUNT; i++) {
        json_t *id = f[i];
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

    json_t *seq = f[FR_WF_SEQ];
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
        json_t *o = f[FR_WF_DATA + i];
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

size_t
fr_wire_bom(const char *buf, size_t len)
{
    return len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

bool
fr_wire_line_opens(const char *line, size_t len)
{
    size_t at = 0;
    while (at < len && (line[at] == ' ' || line[at] == '\t'))
        at++;
    while (len > at && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    return at < len && line[at] == '{' && line[len - 1] != '}';
}

bool
fr_wire_line(const char **line, size_t *len)
{
    size_t bom = fr_wire_bom(*line, *len);
    *line += bom;
    *len -= bom;
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    for (size_t i = 0; i < *len; i++)
        if ((*line)[i] != ' ' && (*line)[i] != '\t' && (*line)[i] != '\r')
            return true;
    return false;
}

/* Whether the number text[0, n) is one jansson refuses as out of range: an integer (no '.',
   'e' or 'E') past 64 bits, or a real past a double's range. */
static bool
wire_number_wide(const char *text, size_t n)
{
    bool real = memchr(text, '.', n) || memchr(text, 'e', n) || memchr(text, 'E', n);
    if (!real) {
        bool neg = n > 0 && text[0] == '-';
        const char *d = text + neg;
        size_t nd = n - neg;
        const char *max = neg ? "9223372036854775808" : "9223372036854775807";
        return nd > 19 || (nd == 19 && memcmp(d, max, 19) > 0);
    }
    char small[64], *t = n < sizeof small ? small : fr_malloc(n + 1);
    memcpy(t, text, n);
    t[n] = '\0';
    errno = 0;
    double v = strtod(t, NULL);
    bool wide = errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL);
    if (t != small)
        free(t);
    return wide;
}

/* The length of the NaN, Infinity or -Infinity at p[0, n) (what Python's json.dumps writes
   for such a float), or 0. */
static size_t
wire_nonfinite(const char *p, size_t n)
{
    static const char *const names[] = {"NaN", "Infinity", "-Infinity"};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(names[k]);
        if (n >= l && memcmp(p, names[k], l) == 0 &&
            (n == l || !((p[l] >= 'a' && p[l] <= 'z') || (p[l] >= 'A' && p[l] <= 'Z'))))
            return l;
    }
    return 0;
}

static bool
wire_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

char *
fr_wire_widen(const char *buf, size_t len, int top, size_t *outlen, size_t **at, size_t *nat)
{
    char *o = NULL;
    size_t olen = 0, copied = 0, n_at = 0, key = 0, klen = 0;
    int depth = 0;
    if (at != NULL)
        *at = NULL;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '"') { /* a string, skipped whole; at depth top the last one is the key of the
                           top-level field a number or a container that follows is under */
            size_t s = ++i;
            for (; i < len && buf[i] != '"'; i++)
                i += buf[i] == '\\';
            if (depth == top)
                key = s, klen = (i < len ? i : len) - s;
            continue;
        }
        depth += (c == '{' || c == '[') - (c == '}' || c == ']');
        size_t j = i + wire_nonfinite(buf + i, len - i); /* NaN, Infinity, -Infinity */
        bool wide = j > i;
        if (!wide && c != '-' && (c < '0' || c > '9'))
            continue;
        if (!wide) {
            while (j < len && wire_number_char(buf[j]))
                j++;
            wide = wire_number_wide(buf + i, j - i);
        }
        int f = fr_wire_field(buf + key, klen);
        bool envelope = f >= 0 && f != FR_WF_DATA && f != FR_WF_ERROR && f != FR_WF_TAGS;
        if (depth >= top && !envelope && wide) {
            /* what came before it, then it quoted: at most len + 2 per number in all */
            o = fr_realloc(o, olen + (i - copied) + (j - i) + 2 + (len - j) + 1);
            memcpy(o + olen, buf + copied, i - copied);
            olen += i - copied;
            if (at != NULL) {
                *at = fr_realloc(*at, (n_at + 1) * sizeof **at);
                (*at)[n_at] = olen;
            }
            n_at++;
            o[olen++] = '"';
            memcpy(o + olen, buf + i, j - i);
            olen += j - i;
            o[olen++] = '"';
            copied = j;
        }
        i = j - 1;
    }
    if (n_at == 0)
        return NULL;
    memcpy(o + olen, buf + copied, len - copied); /* room left by the last realloc */
    olen += len - copied;
    o[olen] = '\0';
    *outlen = olen;
    if (nat != NULL)
        *nat = n_at;
    return o;
}

static int
wire_hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

size_t
fr_wire_unpair(char *buf, size_t len, size_t **at, size_t *nat)
{
    size_t n = 0;
    if (at != NULL)
        *at = NULL;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '"') {
            in = !in;
            continue;
        }
        if (!in || buf[i] != '\\')
            continue;
        if (i + 5 >= len || buf[i + 1] != 'u') {
            i++; /* another escape: its letter is not a quote */
            continue;
        }
        int v = wire_hex4(buf + i + 2);
        if (v >= 0xd800 && v <= 0xdbff && i + 11 < len && buf[i + 6] == '\\' && buf[i + 7] == 'u' &&
            wire_hex4(buf + i + 8) >= 0xdc00 && wire_hex4(buf + i + 8) <= 0xdfff) {
            i += 11; /* a pair: one character */
            continue;
        }
        if (v >= 0xd800 && v <= 0xdfff) { /* half of one: U+FFFD, the same six bytes long */
            memcpy(buf + i, "\\ufffd", 6);
            if (at != NULL) {
                *at = fr_realloc(*at, (n + 1) * sizeof **at);
                (*at)[n] = i;
            }
            n++;
        }
        i += 5;
    }
    if (nat != NULL)
        *nat = n;
    return n;
}

char *
fr_wire_mend_once(const char *text, size_t len, enum fr_wire_mend why, int top, size_t *outlen,
                  size_t *count, size_t *first)
{
    char *out = NULL;
    size_t n = 0, *at = NULL, nat = 0;
    size_t **atp = first != NULL ? &at : NULL, *natp = first != NULL ? &nat : NULL;
    *outlen = len;
    if (why == FR_MEND_WIDE) {
        out = fr_wire_widen(text, len, top, outlen, atp, natp);
        n = out != NULL ? (*outlen - len) / 2 : 0; /* two quotes each */
    } else if (why == FR_MEND_HALF) {
        out = fr_strndup(text, len);
        n = fr_wire_unpair(out, len, atp, natp);
    } else if (why == FR_MEND_BYTES) {
        out = fr_utf8_sanitize_n(text, len, outlen, atp, natp);
        n = (*outlen - len) / 2; /* each such byte became three */
    }
    if (first != NULL)
        *first = nat > 0 ? at[0] : 0;
    free(at);
    if (n == 0) {
        free(out);
        return NULL;
    }
    *count = n;
    return out;
}

/* Appends s[0, n) to out (cap bytes, *len used), cut at a character when it does not fit;
   false when it did not all fit. */
static bool
path_put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    bool all = *len + n < cap;
    if (!all) {
        n = cap - 1 - *len;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) /* s[n] continues a character */
            n--;
    }
    if (fr_utf8_valid(s, n)) {
        memcpy(out + *len, s, n);
    } else { /* a key not mended yet (another kind's round was first): text, as '?' */
        for (size_t i = 0; i < n; i++)
            out[*len + i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    }
    *len += n;
    out[*len] = '\0';
    return all;
}

#define PATH_DEPTH 16   /* levels a path names */
#define PATH_KEY_MAX 32 /* bytes of a key written whole */
#define PATH_KEY_CUT 12 /* bytes written of a longer one */

size_t
fr_json_path_at(const char *text, size_t len, size_t off, char *out, size_t cap)
{
    struct {
        bool arr;
        size_t idx;          /* an array's: the element's index */
        size_t key, key_len; /* an object's: the member's key, text[key, key + key_len) */
        bool has_key;
    } st[PATH_DEPTH];
    size_t depth = 0; /* open arrays and objects (deeper than PATH_DEPTH: not named) */
    bool want_key = false;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    off = off < len ? off : len;
    for (size_t i = 0; i < off; i++) {
        char c = text[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && text[j] != '"')
                j += text[j] == '\\' ? 2 : 1;
            j = j < len ? j : len;
            if (want_key && depth > 0 && depth <= PATH_DEPTH) { /* a key: its member's name */
                st[depth - 1].key = i + 1;
                st[depth - 1].key_len = j - i - 1;
                st[depth - 1].has_key = true;
            }
            if (j >= off) /* off is in this string */
                break;
            want_key = false;
            i = j;
        } else if (c == '{' || c == '[') {
            if (depth < PATH_DEPTH)
                st[depth].arr = c == '[', st[depth].idx = 0, st[depth].has_key = false;
            depth++;
            want_key = c == '{';
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            want_key = false;
        } else if (c == ',' && depth > 0 && depth <= PATH_DEPTH) {
            st[depth - 1].idx++;
            want_key = !st[depth - 1].arr;
        } else if (c == ',') {
            want_key = false; /* deeper than named: its keys are not kept */
        }
    }
    size_t n = 0;
    size_t named = depth < PATH_DEPTH ? depth : PATH_DEPTH;
    for (size_t k = 0; k < named; k++) {
        char buf[32];
        bool fit = true;
        if (st[k].arr) {
            int w = snprintf(buf, sizeof buf, "[%zu]", st[k].idx);
            fit = path_put(out, cap, &n, buf, (size_t)w);
        } else if (st[k].has_key) {
            const char *key = text + st[k].key;
            size_t klen = st[k].key_len;
            bool cut = klen > PATH_KEY_MAX;
            if (n > 0)
                fit = path_put(out, cap, &n, ".", 1);
            if (cut) {
                klen = PATH_KEY_CUT;
                while (klen > 0 && ((unsigned char)key[klen] & 0xc0) == 0x80)
                    klen--;
            }
            fit = fit && path_put(out, cap, &n, key, klen);
            if (cut)
                fit = fit && path_put(out, cap, &n, "...", 3);
        }
        if (!fit)
            return n;
    }
    if (depth > PATH_DEPTH)
        path_put(out, cap, &n, "..", 2);
    return n;
}

const char *
fr_wire_warning_text(const char *key, int field, const char *at, char *out, size_t cap)
{
    if (at == NULL || at[0] == '\0' || cap < 8)
        return fr_wire_misnamed_text(key, field, out, cap);
    int w = snprintf(out, cap, "%s: ", at);
    size_t used = w > 0 && (size_t)w < cap ? (size_t)w : 0;
    fr_wire_misnamed_text(key, field, out + used, cap - used);
    return out;
}

/* fr_wire_parse; *why (when not NULL) says what of the text's refusal fr_wire_parse_mend can
   mend (fr_json_error_mendable). */
static int
wire_parse(const char *buf, size_t len, const struct fr_wire_limits *lim, struct fr_event *ev,
           struct fr_err *err, enum fr_wire_mend *why)
{
    memset(ev, 0, sizeof *ev);
    if (why != NULL)
        *why = FR_MEND_NONE;
    if (len > lim->max_line)
        return fr_err_set(err, FR_E_LIMIT, "line is %zu bytes, over the %zu byte limit", len,
                          lim->max_line);
    json_error_t jerr;
    /* duplicate keys are refused: the tree keeps the last value, the producer's bytes (stored
       when redaction changed nothing) hold both, so a secret could pass unscanned */
    json_t *root = fr_json_fast_load(buf, len); /* jansson's tree, built faster (jsonfast.h) */
    if (root == NULL && (root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        if (why != NULL)
            *why = fr_json_error_mendable(&jerr);
        return fr_wire_syntax_error(&jerr, err);
    }
    return fr_wire_take(root, lim, ev, err);
}

enum fr_wire_mend
fr_json_error_mendable(const json_error_t *jerr)
{
    if (json_error_code(jerr) == json_error_invalid_utf8)
        return FR_MEND_BYTES;
    if (json_error_code(jerr) == json_error_numeric_overflow ||
        strncmp(jerr->text, "invalid token", 13) == 0) /* NaN, Infinity: fr_wire_widen sees */
        return FR_MEND_WIDE;
    /* jansson says "invalid Unicode '\uD83D'" of a surrogate escape not in a pair (its code is
       the general invalid_syntax) */
    static const char half[] = "invalid Unicode '\\u";
    const char *t = jerr->text + sizeof half - 1;
    if (strncmp(jerr->text, half, sizeof half - 1) != 0 || (t[0] != 'D' && t[0] != 'd'))
        return FR_MEND_NONE;
    return (t[1] >= '8' && t[1] <= '9') || (t[1] >= 'A' && t[1] <= 'F') ||
                   (t[1] >= 'a' && t[1] <= 'f')
               ? FR_MEND_HALF
               : FR_MEND_NONE;
}

int
fr_wire_parse_mend(const char *buf, size_t len, const struct fr_wire_limits *lim,
                   struct fr_event *ev, char **mended, size_t *mended_len, struct fr_err *err)
{
    *mended = NULL;
    const char *text = buf, *warn = NULL;
    size_t tlen = len;
    int rc;
    struct fr_err first = {0}; /* the line's own error, as it came */
    bool bytes = false;
    char at[FR_PATH_MAX] = ""; /* where the first mend was (fr_json_path_at) */
    /* at most one round each: a number past 64 bits, a lone surrogate, bytes that are not
       UTF-8 (jansson stops at the first, so an event with all three takes three) */
    for (int round = 0;; round++) {
        enum fr_wire_mend why;
        rc = wire_parse(text, tlen, lim, ev, err, round < 3 ? &why : NULL);
        if (round == 0 && rc != FR_OK && err != NULL)
            first = *err;
        if (rc == FR_OK || round == 3 || why == FR_MEND_NONE)
            break;
        size_t nlen, count, where;
        char *next = fr_wire_mend_once(text, tlen, why, 1, &nlen, &count, &where);
        if (next == NULL)
            break;
        if (warn == NULL) /* the warning names the first kind mended, and where it was */
            fr_json_path_at(next, nlen, where, at, sizeof at);
        bytes = bytes || why == FR_MEND_BYTES;
        free(*mended);
        *mended = next;
        text = next;
        tlen = nlen;
        warn = warn                   ? warn
               : why == FR_MEND_WIDE  ? FR_WIRE_WIDE
               : why == FR_MEND_BYTES ? FR_WIRE_BYTES
                                      : FR_WIRE_HALF;
    }
    if (rc != FR_OK) {
        free(*mended);
        *mended = NULL;
        if (bytes && rc == FR_E_SYNTAX && err != NULL) { /* a byte outside a string: as sent */
            *err = first;
            rc = first.code;
        }
        return rc;
    }
    *mended_len = tlen;
    if (warn != NULL && ev->misnamed == NULL) {
        ev->misnamed = warn;
        ev->misnamed_field = FR_WF_DATA; /* its count's label: where such values mostly are */
        memcpy(ev->mended_at, at, sizeof at);
    }
    return FR_OK;
}

int
fr_wire_parse(const char *buf, size_t len, const struct fr_wire_limits *lim, struct fr_event *ev,
              struct fr_err *err)
{
    return wire_parse(buf, len, lim, ev, err, NULL);
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

/* dump_piece's common case inlined: the walk below appends a few bytes at a time */
static inline void
emit(struct dump_buf *b, const char *piece, size_t size)
{
    if (b->heap == NULL && b->n + size <= sizeof b->stack) {
        memcpy(b->stack + b->n, piece, size);
        b->n += size;
    } else {
        dump_piece(piece, size, b);
    }
}

/*
 * ---- compact JSON text, as jansson writes it ----
 *
 * jansson's json_dump_callback() checks and escapes a string one code point
 * at a time, through a callback per run: the stored body of every event and
 * the canonical text of every provider request were ~60 instructions per
 * byte, the largest part of preparing an OTLP span. The walk below writes
 * the same bytes (tests/test_wire.c compares the two on random trees) for
 * the flags flightrec uses (JSON_COMPACT, with JSON_SORT_KEYS and
 * JSON_ENCODE_ANY), eight bytes at a time while no byte needs a look:
 * strings escaped as jansson escapes them (\" \\ \b \f \n \r \t, other
 * controls as \u00XX), UTF-8 checked as jansson checks it (an invalid
 * string fails the whole text), keys in insertion order or sorted by bytes
 * then length. Reals, and trees nested past TEXT_MAX_DEPTH, are left to
 * jansson itself.
 */
#define TEXT_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
#define TEXT_MAX_DEPTH 256

/* Non-zero when a byte of the 8-byte word is a control, '"', '\\' or not ASCII (which byte
   is not said: a borrow may mark the bytes above one too). */
static inline uint64_t
word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t ctl = (w - 0x20 * ones) & ~w;
    uint64_t q = w ^ (0x22 * ones), bs = w ^ (0x5c * ones);
    return (ctl | w | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs;
}

static int
text_string(struct dump_buf *b, const char *s, size_t n)
{
    emit(b, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_special(w) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = fr_utf8_seq(s + i, n - i);
            if (k == 0)
                return -1; /* as jansson: not UTF-8, no text */
            i += k;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        emit(b, s + run, i - run);
        /* jansson's escapes: a letter for these, \u00XX (upper-case) for other controls */
        static const char letter[0x60] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                          ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
        char esc[8] = {'\\', letter[c]};
        emit(b, esc, letter[c] ? 2 : (size_t)snprintf(esc, sizeof esc, "\\u%04X", c));
        run = ++i;
    }
    emit(b, s + run, n - run);
    emit(b, "\"", 1);
    return 0;
}

struct text_key {
    const char *k;
    size_t len;
    json_t *v;
};

static int
text_key_cmp(const void *a, const void *b)
{
    const struct text_key *x = a, *y = b;
    int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static int text_value(struct dump_buf *b, const json_t *j, size_t flags, int depth);

static int
text_member(struct dump_buf *b, bool first, const char *k, size_t klen, const json_t *v,
            size_t flags, int depth)
{
    if (!first)
        emit(b, ",", 1);
    if (text_string(b, k, klen) != 0)
        return -1;
    emit(b, ":", 1);
    return text_value(b, v, flags, depth + 1);
}

static int
text_object(struct dump_buf *b, const json_t *j, size_t flags, int depth)
{
    emit(b, "{", 1);
    int rc = 0;
    if (flags & JSON_SORT_KEYS) {
        size_t n = json_object_size(j), i = 0;
        struct text_key small[32];
        struct text_key *keys = n <= 32 ? small : fr_malloc(n * sizeof *keys);
        for (void *it = json_object_iter((json_t *)j); it != NULL && i < n;
             it = json_object_iter_next((json_t *)j, it), i++)
            keys[i] = (struct text_key){json_object_iter_key(it), json_object_iter_key_len(it),
                                        json_object_iter_value(it)};
        qsort(keys, i, sizeof *keys, text_key_cmp);
        for (size_t k = 0; k < i && rc == 0; k++)
            rc = text_member(b, k == 0, keys[k].k, keys[k].len, keys[k].v, flags, depth);
        if (keys != small)
            free(keys);
    } else {
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it != NULL && rc == 0;
             it = json_object_iter_next((json_t *)j, it), first = false)
            rc = text_member(b, first, json_object_iter_key(it), json_object_iter_key_len(it),
                             json_object_iter_value(it), flags, depth);
    }
    emit(b, "}", 1);
    return rc;
}

static int
text_value(struct dump_buf *b, const json_t *j, size_t flags, int depth)
{
    if (depth > TEXT_MAX_DEPTH)
        return json_dump_callback(j, dump_piece, b, flags | JSON_ENCODE_ANY);
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return text_object(b, j, flags, depth);
    case JSON_ARRAY: {
        emit(b, "[", 1);
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                emit(b, ",", 1);
            if (text_value(b, json_array_get(j, i), flags, depth + 1) != 0)
                return -1;
        }
        emit(b, "]", 1);
        return 0;
    }
    case JSON_STRING:
        return text_string(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: { /* not printf, which was a tenth of the dump */
        char num[21];
        emit(b, num, fr_dec_encode(json_integer_value(j), num));
        return 0;
    }
    case JSON_TRUE:
        emit(b, "true", 4);
        return 0;
    case JSON_FALSE:
        emit(b, "false", 5);
        return 0;
    case JSON_NULL:
        emit(b, "null", 4);
        return 0;
    default: /* a real: jansson's own digits */
        return json_dump_callback(j, dump_piece, b, flags | JSON_ENCODE_ANY);
    }
}

char *
fr_json_text(const json_t *j, size_t flags, size_t *len)
{
    struct dump_buf b;
    b.heap = NULL;
    b.n = b.cap = 0;
    char *s;
    int rc;
    if ((flags & ~(size_t)TEXT_FLAGS) != 0 || !(flags & JSON_COMPACT) || j == NULL)
        rc = json_dump_callback(j, dump_piece, &b, flags);
    else if (!(flags & JSON_ENCODE_ANY) && !json_is_object(j) && !json_is_array(j))
        rc = -1; /* as jansson: only an object or an array without JSON_ENCODE_ANY */
    else
        rc = text_value(&b, j, flags, 0);
    if (rc != 0) {
        free(b.heap); /* not UTF-8, or out of memory */
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
    /* simdjson where it reads exactly as jansson (jsonfast.h): the read paths parse every
       stored body they show (a 200k-event conversation's show: 60% of its time in jansson) */
    json_t *parsed = fr_json_fast_load(body, body_len);
    if (parsed == NULL)
        parsed = json_loadb(body, body_len, 0, NULL);
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return NULL;
    }
    return parsed;
}

/* Whether arr[at, at + n) equals from[0, n). */
static bool
run_equal(const json_t *arr, size_t at, const json_t *from, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!json_equal(json_array_get(arr, at + k), json_array_get(from, k)))
            return false;
    return true;
}

/*
 * Appends the messages of from (an array) to into[key] (created). A part is a call's messages
 * as one export carried them, in order: when into holds them already as one run (the export
 * re-sent), nothing is added; else they are added after the longest run of them into ends
 * with (the rest of a call whose first messages came in an earlier export, or on the span).
 * Equal messages at different places of a call (a user who says "yes" twice) both stay:
 * skipping every message equal to one there lost them.
 */
static void
append_messages(json_t *into, const char *key, const json_t *from, bool resent)
{
    if (!json_is_array(from))
        return;
    json_t *arr = json_object_get(into, key);
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(into, key, arr);
    }
    size_t have = json_array_size(arr), n = json_array_size(from), skip = 0;
    if (resent) {
        for (size_t at = 0; n > 0 && at + n <= have; at++)
            if (run_equal(arr, at, from, n))
                return;
        for (size_t k = n < have ? n : have; k > 0 && skip == 0; k--)
            if (run_equal(arr, have - k, from, k))
                skip = k;
    }
    for (size_t i = skip; i < n; i++)
        json_array_append(arr, json_array_get(from, i));
}

/* The side (request or response) of data, created when missing; NULL when it is not an object. */
static json_t *
side(json_t *data, const char *name)
{
    json_t *o = json_object_get(data, name);
    if (o == NULL) {
        o = json_object();
        json_object_set_new(data, name, o);
    }
    return json_is_object(o) ? o : NULL;
}

bool
fr_wire_merge_part(json_t *data, const json_t *part, bool resent)
{
    if (!json_is_object(data) || !json_is_object(part))
        return false;
    static const char *const sides[] = {"request", "response"};
    for (int i = 0; i < 2; i++) {
        json_t *from = json_object_get(part, sides[i]);
        json_t *into = json_is_object(from) ? side(data, sides[i]) : NULL;
        if (into == NULL)
            continue;
        append_messages(into, "messages", json_object_get(from, "messages"), resent);
        const char *k;
        json_t *v;
        json_object_foreach(from, k, v)
        {
            if (strcmp(k, "messages") != 0 && json_object_get(into, k) == NULL)
                json_object_set(into, k, v); /* system instructions, ... */
        }
    }
    return true;
}
