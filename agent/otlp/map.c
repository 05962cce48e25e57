/*
 * agent/otlp.c - OTLP/HTTP JSON requests mapped onto wire-format events
 * (docs/otlp.md): GenAI spans become provider events, execute_tool spans
 * tool events, HTTP spans transport events, exception events and error.type
 * feed the error taxonomy; ERROR log records become error events. The
 * envelopes then go through the same pipeline as /v1/events.
 */
#include "agent/otlp/map.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "core/timeutil.h"
#include "core/wire.h"

/* ---- OTLP/JSON as the protobuf JSON mapping allows it ---- */

/* o[k], an id of n bytes: lowercase hex of 2n digits, from base64 of n bytes or capitals. */
static void
norm_id(json_t *o, const char *k, size_t n)
{
    const char *v = json_string_value(json_object_get(o, k));
    if (v == NULL)
        return;
    size_t len = strlen(v);
    char hex[33];
    if (len == 2 * n) {
        bool upper = false;
        for (size_t i = 0; i < len; i++) {
            if (fr_hex_digit(v[i]) < 0)
                return; /* not hex: the mapping's checks see it as sent */
            upper = upper || (v[i] >= 'A' && v[i] <= 'F');
        }
        if (!upper)
            return;
        for (size_t i = 0; i < len; i++)
            hex[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + ('a' - 'A') : v[i]);
        hex[len] = '\0';
    } else if (len == (n + 2) / 3 * 4 && len <= 24) {
        unsigned char b[18];
        int got = EVP_DecodeBlock(b, (const unsigned char *)v, (int)len);
        size_t pad = (size_t)(v[len - 1] == '=') + (size_t)(v[len - 2] == '=');
        if (got < 0 || (size_t)got - pad != n)
            return;
        fr_hex_encode(b, n, hex);
    } else {
        return;
    }
    json_object_set_new(o, k, json_string(hex));
}

/* o[k], an enum: its number for a name prefix + names[i] (i is the number). */
static void
norm_enum(json_t *o, const char *k, const char *prefix, const char *const *names, size_t n)
{
    const char *v = json_string_value(json_object_get(o, k));
    size_t pl = strlen(prefix);
    if (v == NULL || strncmp(v, prefix, pl) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v + pl, names[i]) == 0) {
            json_object_set_new(o, k, json_integer((json_int_t)i));
            return;
        }
}

static const char *const status_codes[] = {"UNSET", "OK", "ERROR"};
static const char *const severities[] = {
    "UNSPECIFIED", "TRACE",  "TRACE2", "TRACE3", "TRACE4", "DEBUG",  "DEBUG2", "DEBUG3", "DEBUG4",
    "INFO",        "INFO2",  "INFO3",  "INFO4",  "WARN",   "WARN2",  "WARN3",  "WARN4",  "ERROR",
    "ERROR2",      "ERROR3", "ERROR4", "FATAL",  "FATAL2", "FATAL3", "FATAL4"};
static const char *const temporalities[] = {"UNSPECIFIED", "DELTA", "CUMULATIVE"};

#define NAMES(a) a, sizeof a / sizeof a[0]

/* Each item of o[outer][*][middle][*][inner] (resourceSpans, scopeSpans, spans, ...). */
static void
norm_each(json_t *req, const char *outer, const char *middle, const char *inner,
          void (*fn)(json_t *item))
{
    size_t i, j, k;
    json_t *r, *sc, *item;
    json_array_foreach(json_object_get(req, outer), i, r)
    {
        json_array_foreach(json_object_get(r, middle), j, sc)
        {
            json_array_foreach(json_object_get(sc, inner), k, item) fn(item);
        }
    }
}

static void
norm_span(json_t *span)
{
    norm_id(span, "traceId", 16);
    norm_id(span, "spanId", 8);
    norm_id(span, "parentSpanId", 8);
    norm_enum(json_object_get(span, "status"), "code", "STATUS_CODE_", NAMES(status_codes));
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(span, "links"), i, l)
    {
        norm_id(l, "traceId", 16);
        norm_id(l, "spanId", 8);
    }
}

static void
norm_record(json_t *lr)
{
    norm_id(lr, "traceId", 16);
    norm_id(lr, "spanId", 8);
    norm_enum(lr, "severityNumber", "SEVERITY_NUMBER_", NAMES(severities));
}

static void
norm_metric(json_t *m)
{
    norm_enum(json_object_get(m, "histogram"), "aggregationTemporality", "AGGREGATION_TEMPORALITY_",
              NAMES(temporalities));
}

void
fr_otlp_json_normalize(json_t *req)
{
    norm_each(req, "resourceSpans", "scopeSpans", "spans", norm_span);
    norm_each(req, "resourceLogs", "scopeLogs", "logRecords", norm_record);
    norm_each(req, "resourceMetrics", "scopeMetrics", "metrics", norm_metric);
}

/* The value of an OTLP AnyValue as JSON (string, number, bool, array, object). */
static json_t *
any_value(const json_t *v)
{
    const json_t *x;
    if ((x = json_object_get(v, "stringValue")))
        return json_incref((json_t *)x);
    if ((x = json_object_get(v, "intValue"))) {
        if (json_is_string(x))
            return json_integer(strtoll(json_string_value(x), NULL, 10));
        return json_incref((json_t *)x);
    }
    if ((x = json_object_get(v, "doubleValue")))
        return json_incref((json_t *)x);
    if ((x = json_object_get(v, "boolValue")))
        return json_incref((json_t *)x);
    if ((x = json_object_get(v, "arrayValue"))) {
        json_t *arr = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(x, "values"), i, e)
            json_array_append_new(arr, any_value(e));
        return arr;
    }
    if ((x = json_object_get(v, "kvlistValue"))) {
        json_t *obj = json_object();
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(x, "values"), i, e)
        {
            const char *k = json_string_value(json_object_get(e, "key"));
            if (k)
                json_object_set_new(obj, k, any_value(json_object_get(e, "value")));
        }
        return obj;
    }
    return json_null();
}

/*
 * OTLP attribute list -> JSON object; later keys win. The protobuf decoder
 * (proto.c) hands attributes over as that object already (plain values, no
 * {"stringValue": ...} wrappers): taken as it is.
 */
static json_t *
attrs(const json_t *list)
{
    if (json_is_object(list))
        return json_incref((json_t *)list);
    json_t *o = json_object();
    size_t i;
    json_t *kv;
    json_array_foreach(list, i, kv)
    {
        const char *k = json_string_value(json_object_get(kv, "key"));
        if (k)
            json_object_set_new(o, k, any_value(json_object_get(kv, "value")));
    }
    return o;
}

static const char *
or_(const char *a, const char *b)
{
    return a ? a : b;
}

/*
 * A string node for text that is already valid UTF-8: a string of the
 * request's tree (jansson checked it, or the protobuf decoder did) or a
 * literal. json_string() would check it again, byte by byte, for every
 * field of every event.
 */
static json_t *
tree_str(const char *s)
{
    return json_string_nocheck(s);
}

/*
 * The attribute object of the span or log record being mapped, with a
 * 128-bit summary of its keys. Mapping one looks up dozens of the attribute
 * names of the conventions it reads (gen_ai.*, llm.*, traceloop.*, ai.*, ...),
 * and a span carries a few of them: a name whose bit is clear is absent
 * without jansson hashing it. Set once the object is complete (resource attributes
 * merged) and cleared before it changes or goes; the mapping only reads it.
 */
static _Thread_local struct {
    const json_t *obj;
    uint64_t bits[2];
} attr_seen;

static unsigned
attr_bit(const char *k, size_t n)
{
    uint64_t t = n; /* the name's last 8 bytes and its length: attribute names differ there */
    size_t m = n < 8 ? n : 8;
    memcpy(&t, k + n - m, m);
    t ^= (uint64_t)n << 56;
    return (unsigned)((t * UINT64_C(0x9E3779B97F4A7C15)) >> 57);
}

static void
attr_seen_set(const json_t *a)
{
    attr_seen.obj = NULL;
    attr_seen.bits[0] = attr_seen.bits[1] = 0;
    if (!json_is_object(a))
        return;
    const char *k;
    size_t n;
    json_t *v;
    json_object_keylen_foreach((json_t *)a, k, n, v)
    {
        unsigned b = attr_bit(k, n);
        attr_seen.bits[b >> 6] |= UINT64_C(1) << (b & 63);
    }
    attr_seen.obj = a;
}

/* a, the attribute object being mapped, no longer needed. */
static void
attr_done(json_t *a)
{
    attr_seen.obj = NULL;
    json_decref(a);
}

/* o[k, k + n): json_object_getn, answered NULL at once for a name the attribute object being
   mapped does not have. */
static const json_t *
getn(const json_t *o, const char *k, size_t n)
{
    if (o != NULL && o == attr_seen.obj) {
        unsigned b = attr_bit(k, n);
        if (!(attr_seen.bits[b >> 6] >> (b & 63) & 1))
            return NULL;
    }
    return json_object_getn(o, k, n);
}

static const json_t *
get(const json_t *o, const char *k)
{
    return getn(o, k, strlen(k));
}

static const char *
str(const json_t *a, const char *k)
{
    return json_string_value(get(a, k));
}

/*
 * A double from a producer as a count or a millisecond value: NaN and
 * negatives are 0, and anything past 2^53 is cut there, so the conversion
 * to an integer is always defined (3.55e+76 was undefined behaviour).
 */
static int64_t
clamp_count(double v)
{
    if (!(v > 0)) /* also NaN */
        return 0;
    if (v > 9007199254740992.0)
        return INT64_C(9007199254740992);
    return (int64_t)v;
}

/* A producer's number (integer, double, or a string holding an integer) as an integer. */
static bool
num_value(const json_t *v, json_int_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        *out = d < 0 ? -(json_int_t)clamp_count(-d) : (json_int_t)clamp_count(d);
        return true;
    }
    if (json_is_string(v)) {
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*end == '\0') {
            *out = x;
            return true;
        }
    }
    return false;
}

static bool
num(const json_t *a, const char *k, json_int_t *out)
{
    return num_value(get(a, k), out);
}

/*
 * A time in nanoseconds since the epoch (OTLP's fixed64, a decimal string or a
 * number in JSON); 0 when absent or not one ("x", "12ms", a negative number).
 * Never negative, so that end - start cannot overflow.
 */
static int64_t
nanos(const json_t *v)
{
    int64_t t = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
            return 0;
        t = strtoll(s, NULL, 10);
    } else if (json_is_integer(v)) {
        t = json_integer_value(v);
    } else if (json_is_real(v)) { /* 1.7e18: a number past what a double holds exactly */
        double d = json_real_value(v);
        t = d >= 0 && d < 9.2e18 ? (int64_t)d : 0;
    }
    return t > 0 ? t : 0;
}

/* The earliest time an item may have (the wire format's, in nanoseconds: 1973-03-03): earlier
   is a time in another unit (microseconds, milliseconds) or none. */
#define MIN_NANOS (FR_WIRE_MIN_TS_MS * INT64_C(1000000))

/*
 * The attribute key[0, len) of a: an attribute object (map.c: attrs, or the
 * protobuf decoder's), or the JSON encoding's list of {"key", "value"} read
 * as it is (a string value only; later keys win), so a look-up does not have
 * to build the object.
 */
static const json_t *
attr_getn(const json_t *a, const char *key, size_t len)
{
    if (json_is_object(a))
        return getn(a, key, len);
    const json_t *v = NULL, *kv;
    size_t i;
    json_array_foreach(a, i, kv)
    {
        const char *k = str(kv, "key");
        if (k && strlen(k) == len && memcmp(k, key, len) == 0)
            v = json_object_get(json_object_get(kv, "value"), "stringValue");
    }
    return v;
}

static bool
nonempty_string(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static bool
numeric(const json_t *v)
{
    json_int_t x;
    return num_value(v, &x);
}

/* The next name of a comma-separated list (spaces around names ignored) at *n, its length in
 *len (0 for an empty item); NULL at the list's end. */
static const char *
next_name(const char **n, size_t *len)
{
    while (**n == ' ' || **n == ',')
        (*n)++;
    if (**n == '\0')
        return NULL;
    const char *name = *n;
    size_t all = strcspn(name, ","), l = all;
    while (l > 0 && name[l - 1] == ' ')
        l--;
    *n += all;
    *len = l;
    return name;
}

/* The value of the first of names (comma-separated, spaces ignored) present in a that ok
   accepts, else NULL. */
static const json_t *
first_of(const json_t *a, const char *names, bool (*ok)(const json_t *v))
{
    const char *n = names, *name;
    size_t l;
    while ((name = next_name(&n, &l)) != NULL) {
        const json_t *v = l > 0 ? attr_getn(a, name, l) : NULL;
        if (v != NULL && ok(v))
            return v;
    }
    return NULL;
}

/* The first attribute of names present (a non-empty string) in a, else NULL. */
static const char *
first_attr(const json_t *a, const char *names)
{
    return json_string_value(first_of(a, names, nonempty_string));
}

static void
set_int(json_t *o, const char *k, const json_t *a, const char *attr)
{
    json_int_t v;
    if (num(a, attr, &v))
        json_object_set_new_nocheck(o, k, json_integer(v));
}

/* A JSON-valued attribute: structured already, or a string holding JSON. */
static json_t *
json_attr(const json_t *a, const char *k)
{
    const json_t *v = get(a, k);
    if (json_is_string(v)) {
        json_t *parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        return parsed ? parsed : json_incref((json_t *)v);
    }
    return v ? json_incref((json_t *)v) : NULL;
}

static bool
is(const char *v, const char *want)
{
    return v != NULL && strcasecmp(v, want) == 0;
}

/* The first of a comma-separated list of attributes that is a number, into o[k]. */
static void
set_first_int(json_t *o, const char *k, const json_t *a, const char *names)
{
    json_int_t v;
    if (num_value(first_of(a, names, numeric), &v))
        json_object_set_new_nocheck(o, k, json_integer(v));
}

/* A seconds attribute (a double) as milliseconds. */
static bool
seconds_ms(const json_t *a, const char *k, json_int_t *ms)
{
    const json_t *v = get(a, k);
    if (!json_is_number(v))
        return false;
    *ms = (json_int_t)clamp_count(json_number_value(v) * 1000.0);
    return true;
}

/* Every attribute under prefix (but the listed exceptions) as an object keyed by the rest. */
static json_t *
under(const json_t *a, const char *prefix, const char *except)
{
    json_t *o = NULL;
    const char *k;
    json_t *v;
    size_t n = strlen(prefix);
    json_object_foreach((json_t *)a, k, v)
    {
        if (strncmp(k, prefix, n) != 0 || k[n] == '\0' || (except && strstr(except, k + n)))
            continue;
        if (o == NULL)
            o = json_object();
        json_object_set(o, k + n, v);
    }
    return o;
}

/* prefix + "." + i + suffix into out (cap bytes): the attribute names of flattened lists, built
   for every provider span (snprintf was most of looking them up) */
static const char *
indexed_key(char *out, size_t cap, const char *prefix, int i, const char *suffix)
{
    char num[21];
    size_t a = strlen(prefix), b = fr_dec_encode(i, num), c = strlen(suffix);
    if (a + 1 + b + c + 1 > cap)
        return "";
    memcpy(out, prefix, a);
    out[a] = '.';
    memcpy(out + a + 1, num, b);
    memcpy(out + a + 1 + b, suffix, c + 1);
    return out;
}

/* {"role": role, "content": content} of strings of the request's tree (json_pack parses its
   format on every call: most of a prompt's cost) */
static json_t *
message(const char *role, const char *content)
{
    json_t *m = json_object();
    json_object_set_new_nocheck(m, "role", tree_str(role));
    json_object_set_new_nocheck(m, "content", tree_str(content));
    return m;
}

/* OpenInference's flattened messages: llm.input_messages.N.message.role/content. */
static json_t *
oi_messages(const json_t *a, const char *prefix)
{
    json_t *msgs = NULL;
    for (int i = 0; i < 256; i++) {
        char kr[96], kc[96];
        indexed_key(kr, sizeof kr, prefix, i, ".message.role");
        indexed_key(kc, sizeof kc, prefix, i, ".message.content");
        if (!str(a, kr) && !str(a, kc))
            break;
        if (msgs == NULL)
            msgs = json_array();
        json_array_append_new(msgs, message(or_(str(a, kr), ""), or_(str(a, kc), "")));
    }
    return msgs;
}

/*
 * Prompts and completions the instrumentation recorded, in any of the forms
 * instrumentations use: gen_ai.input.messages / gen_ai.output.messages
 * (current semconv, JSON), OpenLLMetry-style gen_ai.prompt.N.role/content and
 * gen_ai.completion.N.content attributes, or gen_ai.content.prompt /
 * gen_ai.content.completion span events (gen_ai.prompt / gen_ai.completion).
 */
static void
messages(json_t *data, const json_t *span, const json_t *a)
{
    json_t *in = json_attr(a, "gen_ai.input.messages");
    json_t *out = json_attr(a, "gen_ai.output.messages");
    if (in == NULL) {
        json_t *msgs = json_array();
        for (int i = 0; i < 64; i++) {
            char kr[48], kc[48];
            indexed_key(kr, sizeof kr, "gen_ai.prompt", i, ".role");
            indexed_key(kc, sizeof kc, "gen_ai.prompt", i, ".content");
            if (!str(a, kc) && !str(a, kr))
                break;
            json_array_append_new(msgs, message(or_(str(a, kr), ""), or_(str(a, kc), "")));
        }
        if (json_array_size(msgs) > 0)
            in = msgs;
        else
            json_decref(msgs);
    }
    if (in == NULL)
        in = oi_messages(a, "llm.input_messages");
    if (out == NULL)
        out = oi_messages(a, "llm.output_messages");
    if (in == NULL && str(a, "ai.prompt.messages")) /* the Vercel AI SDK: JSON text */
        in = json_attr(a, "ai.prompt.messages");
    if (out == NULL && first_attr(a, "ai.response.text")) /* the answer's text, as it is */
        out = tree_str(first_attr(a, "ai.response.text"));
    if (out == NULL && str(a, "gen_ai.completion.0.content"))
        out = tree_str(str(a, "gen_ai.completion.0.content"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(span, "events"), i, e)
    {
        const char *n = or_(str(e, "name"), "");
        bool prompt = strcmp(n, "gen_ai.content.prompt") == 0;
        if (!prompt && strcmp(n, "gen_ai.content.completion") != 0)
            continue;
        json_t *ea = attrs(json_object_get(e, "attributes"));
        json_t *v = json_attr(ea, prompt ? "gen_ai.prompt" : "gen_ai.completion");
        json_decref(ea);
        if (v == NULL)
            continue;
        json_t **slot = prompt ? &in : &out;
        if (*slot == NULL)
            *slot = v;
        else
            json_decref(v);
    }
    if (in != NULL) {
        if (!json_is_array(in)) { /* one text: one message */
            json_t *m = json_object();
            json_object_set_new_nocheck(m, "content", in);
            json_array_append_new(in = json_array(), m);
        }
        json_t *req = json_object();
        json_object_set_new_nocheck(req, "messages", in);
        json_object_set_new_nocheck(data, "request", req);
    }
    json_t *calls = str(a, "ai.response.toolCalls") ? json_attr(a, "ai.response.toolCalls") : NULL;
    if (out != NULL || calls != NULL) {
        json_t *resp = json_object();
        if (out != NULL)
            json_object_set_new_nocheck(resp, json_is_string(out) ? "content" : "messages", out);
        if (calls != NULL) /* the tools the model asked for */
            json_object_set_new_nocheck(resp, "tool_calls", calls);
        json_object_set_new_nocheck(data, "response", resp);
    }
}

/* The span's failure: exception events, error.type, an error status. */
static json_t *
span_error(const json_t *span, const json_t *a)
{
    json_t *err = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(span, "events"), i, ev)
    {
        if (strcmp(str(ev, "name") ? str(ev, "name") : "", "exception") != 0)
            continue;
        json_t *ea = attrs(json_object_get(ev, "attributes"));
        err = json_object();
        if (str(ea, "exception.message"))
            json_object_set_new_nocheck(err, "message", tree_str(str(ea, "exception.message")));
        if (str(ea, "exception.type"))
            json_object_set_new_nocheck(err, "type", tree_str(str(ea, "exception.type")));
        if (str(ea, "exception.stacktrace"))
            json_object_set_new_nocheck(err, "stack", tree_str(str(ea, "exception.stacktrace")));
        json_decref(ea);
        break;
    }
    const json_t *status = json_object_get(span, "status");
    json_int_t code = 0;
    num(status, "code", &code);
    if (err == NULL && (code == 2 || str(a, "error.type"))) {
        err = json_object();
        const char *m = str(status, "message");
        json_object_set_new_nocheck(
            err, "message", tree_str(m && *m ? m : or_(str(a, "error.type"), "span failed")));
    }
    if (err != NULL) {
        if (str(a, "error.type") && !json_object_get(err, "type"))
            json_object_set_new_nocheck(err, "type", tree_str(str(a, "error.type")));
        json_int_t hs;
        if (num(a, "http.response.status_code", &hs) || num(a, "http.status_code", &hs))
            json_object_set_new_nocheck(err, "http_status", json_integer(hs));
        else {
            /* "429 Rate limit reached ..." as the JS SDKs word it, "Error code: 429 - {...}" as
               the Python ones (openai, anthropic) do */
            const char *m = str(err, "message");
            if (m && strncmp(m, "Error code: ", 12) == 0)
                m += 12;
            if (m && m[0] >= '1' && m[0] <= '5' && m[1] >= '0' && m[1] <= '9' && m[2] >= '0' &&
                m[2] <= '9' && (m[3] == ' ' || m[3] == '\0'))
                json_object_set_new_nocheck(err, "http_status", json_integer(atoi(m)));
        }
    }
    return err;
}

/*
 * Which flightrec kind a span is, from the conventions instrumentations use:
 * the GenAI semantic conventions (gen_ai.operation.name), Traceloop /
 * OpenLLMetry (traceloop.span.kind), OpenInference (openinference.span.kind),
 * HTTP spans. NULL: no kind (accepted, not stored).
 */
static const char *
span_kind(const json_t *a, const char *op, const char *system)
{
    const char *tl = str(a, "traceloop.span.kind"), *oi = str(a, "openinference.span.kind");
    /* the Vercel AI SDK: ai.toolCall, a provider call ai.<function>.doGenerate / doStream /
       doEmbed, and the call of the function around them (its steps and tool calls) */
    const char *vai = str(a, "ai.operationId");
    if (vai != NULL && strncmp(vai, "ai.", 3) == 0) {
        const char *dot = strchr(vai + 3, '.');
        if (strcmp(vai, "ai.toolCall") == 0)
            return "tool";
        if (dot != NULL && strncmp(dot, ".do", 3) == 0)
            return "provider";
        if (dot == NULL)
            return "middleware";
    }
    if (is(op, "execute_tool") || is(op, "retrieval") || is(tl, "tool") || is(oi, "TOOL") ||
        is(oi, "RETRIEVER"))
        return "tool";
    if (is(op, "chat") || is(op, "text_completion") || is(op, "generate_content") ||
        is(op, "embeddings") || is(oi, "LLM") || is(oi, "EMBEDDING") || is(oi, "RERANKER") ||
        (op == NULL && tl == NULL && oi == NULL && system != NULL))
        return "provider";
    if (is(op, "invoke_agent") || is(op, "create_agent") || is(op, "invoke_workflow") ||
        is(tl, "workflow") || is(tl, "agent") || is(tl, "task") || is(oi, "AGENT") ||
        is(oi, "CHAIN") || is(oi, "GUARDRAIL"))
        return "middleware";
    if (str(a, "http.request.method") || str(a, "http.method"))
        return "transport";
    return NULL;
}

/*
 * A model call: GenAI semantic conventions (current names first, then the
 * older underscore ones), Traceloop's gen_ai.* and llm.* attributes,
 * OpenInference's llm.*.
 */
static void
provider_data(json_t *data, const json_t *span, const json_t *a, const char *op, const char *system,
              int64_t start, json_int_t dur)
{
    system = or_(system, first_attr(a, "llm.provider,llm.system,ai.model.provider"));
    /* the Vercel AI SDK names the provider with its API ("openai.chat", "openai.responses",
       "anthropic.messages"): the provider is the part before the dot, as the SDK's current
       OpenTelemetry integration (gen_ai.provider.name) says it */
    const char *dot = system != NULL && str(a, "ai.operationId") ? strchr(system, '.') : NULL;
    if (dot != NULL)
        json_object_set_new_nocheck(data, "provider",
                                    json_stringn_nocheck(system, (size_t)(dot - system)));
    else if (system)
        json_object_set_new_nocheck(data, "provider", tree_str(system));
    const char *model = first_attr(
        a, "gen_ai.response.model,gen_ai.request.model,llm.model_name,llm.response.model,"
           "llm.request.model,ai.response.model,ai.model.id");
    if (model)
        json_object_set_new_nocheck(data, "model", tree_str(model));
    if (op)
        json_object_set_new_nocheck(data, "operation", tree_str(op));
    json_t *usage = json_object();
    set_first_int(usage, "input_tokens", a,
                  "gen_ai.usage.input_tokens,gen_ai.usage.prompt_tokens,llm.token_count.prompt,"
                  "llm.usage.prompt_tokens,ai.usage.inputTokens,ai.usage.promptTokens,"
                  "ai.usage.tokens");
    set_first_int(usage, "output_tokens", a,
                  "gen_ai.usage.output_tokens,gen_ai.usage.completion_tokens,"
                  "llm.token_count.completion,llm.usage.completion_tokens,ai.usage.outputTokens,"
                  "ai.usage.completionTokens");
    set_first_int(usage, "cached_tokens", a,
                  "gen_ai.usage.cache_read.input_tokens,gen_ai.usage.cache_read_input_tokens,"
                  "llm.token_count.prompt_details.cache_read,ai.usage.cachedInputTokens");
    set_first_int(usage, "cache_creation_tokens", a,
                  "gen_ai.usage.cache_creation.input_tokens,"
                  "gen_ai.usage.cache_creation_input_tokens,"
                  "llm.token_count.prompt_details.cache_write");
    set_first_int(usage, "reasoning_tokens", a,
                  "gen_ai.usage.reasoning.output_tokens,gen_ai.usage.reasoning_tokens,"
                  "llm.token_count.completion_details.reasoning,ai.usage.reasoningTokens");
    json_object_set_new_nocheck(data, "usage", usage);
    const json_t *fr = get(a, "gen_ai.response.finish_reasons");
    if (json_is_array(fr) && json_is_string(json_array_get(fr, 0)))
        json_object_set_new_nocheck(data, "finish_reason", json_incref(json_array_get(fr, 0)));
    else if (json_is_string(fr))
        json_object_set_new_nocheck(data, "finish_reason", json_incref((json_t *)fr));
    else if (str(a, "ai.response.finishReason") != NULL)
        json_object_set_new_nocheck(data, "finish_reason",
                                    tree_str(str(a, "ai.response.finishReason")));
    else if (str(a, "output.value") != NULL) { /* OpenInference: the provider's response, JSON */
        json_t *out = json_attr(a, "output.value");
        json_t *r0 = json_array_get(json_object_get(out, "choices"), 0);
        if (json_is_string(json_object_get(r0, "finish_reason")))
            json_object_set(data, "finish_reason", json_object_get(r0, "finish_reason"));
        if (!json_object_get(data, "response_id") && json_is_string(json_object_get(out, "id")))
            json_object_set(data, "response_id", json_object_get(out, "id"));
        json_decref(out);
    }
    const char *rid = first_attr(a, "gen_ai.response.id,ai.response.id");
    if (rid)
        json_object_set_new_nocheck(data, "response_id", tree_str(rid));
    const char *host = first_attr(a, "server.address");
    if (host) {
        json_int_t port;
        json_object_set_new_nocheck(data, "server",
                                    num(a, "server.port", &port)
                                        ? json_sprintf("%s:%lld", host, (long long)port)
                                        : tree_str(host));
    }
    json_t *lat = json_object();
    json_object_set_new_nocheck(lat, "provider_ms", json_integer(dur));
    json_int_t ttft;
    if (seconds_ms(a, "gen_ai.response.time_to_first_chunk", &ttft) ||
        num(a, "ai.response.msToFirstChunk", &ttft)) /* the Vercel AI SDK: milliseconds */
        json_object_set_new_nocheck(lat, "ttft_ms", json_integer(ttft));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(span, "events"), i, e)
    {
        const char *n = str(e, "name");
        if (n && !json_object_get(lat, "ttft_ms") &&
            (strcmp(n, "gen_ai.content.first_token") == 0 || strcmp(n, "first_token") == 0)) {
            int64_t t = nanos(json_object_get(e, "timeUnixNano"));
            if (t > start)
                json_object_set_new_nocheck(lat, "ttft_ms", json_integer((t - start) / 1000000));
        }
    }
    json_object_set_new_nocheck(data, "latency", lat);
    messages(data, span, a);
    json_t *req = json_object_get(data, "request");
    json_t *params = under(a, "gen_ai.request.", "model");
    json_t *sys = json_attr(a, "gen_ai.system_instructions");
    if ((params || sys) && req == NULL) {
        req = json_object();
        json_object_set_new_nocheck(data, "request", req);
    }
    if (params)
        json_object_set_new_nocheck(req, "params", params);
    if (sys)
        json_object_set_new_nocheck(req, "system", sys);
}

/* A tool span: GenAI (gen_ai.tool.*), Traceloop (traceloop.entity.*), OpenInference (tool.*). */
static void
tool_data(json_t *data, const json_t *span, const json_t *a, const char *op)
{
    const char *name =
        first_attr(a, "gen_ai.tool.name,tool.name,traceloop.entity.name,ai.toolCall.name");
    if (name == NULL && is(op, "retrieval"))
        name = or_(str(a, "gen_ai.data_source.id"), "retrieval");
    json_object_set_new(
        data, "name",
        tree_str(or_(name, or_(json_string_value(json_object_get(span, "name")), "tool"))));
    const char *call = first_attr(a, "gen_ai.tool.call.id,ai.toolCall.id");
    if (call)
        json_object_set_new_nocheck(data, "tool_call_id", tree_str(call));
    static const char *const args[] = {"gen_ai.tool.call.arguments", "tool.parameters",
                                       "traceloop.entity.input", "input.value", "ai.toolCall.args"};
    static const char *const results[] = {"gen_ai.tool.call.result", "traceloop.entity.output",
                                          "output.value", "ai.toolCall.result"};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++) {
        json_t *v = json_attr(a, args[i]);
        /* Traceloop records a decorated function's call as {"args": [], "kwargs": {...}}:
           the keyword arguments are the tool's arguments */
        const json_t *kw = json_object_get(v, "kwargs");
        if (json_is_object(kw) && json_array_size(json_object_get(v, "args")) == 0 &&
            json_object_size(v) == 2) {
            json_t *inner = json_incref((json_t *)kw);
            json_decref(v);
            v = inner;
        }
        if (v != NULL) {
            json_object_set_new_nocheck(data, "args", v);
            break;
        }
    }
    for (size_t i = 0; i < sizeof results / sizeof *results; i++) {
        json_t *v = json_attr(a, results[i]);
        if (v != NULL) {
            json_object_set_new_nocheck(data, "result", v);
            break;
        }
    }
}

/* An agent, workflow, chain or guardrail step. */
static void
middleware_data(json_t *data, const json_t *span, const json_t *a, const char *op)
{
    const char *step = first_attr(a, "gen_ai.agent.name,traceloop.entity.name,"
                                     "traceloop.workflow.name,ai.telemetry.functionId");
    step = or_(step, or_(json_string_value(json_object_get(span, "name")), "step"));
    json_object_set_new_nocheck(data, "step", tree_str(step));
    const char *kind =
        or_(op, first_attr(a, "traceloop.span.kind,openinference.span.kind,ai.operationId"));
    if (kind)
        json_object_set_new_nocheck(data, "chain", json_pack("[s]", kind));
    json_t *agent = under(a, "gen_ai.agent.", NULL);
    if (agent)
        json_object_set_new_nocheck(data, "agent", agent);
    static const char *const sides[2][4] = {
        {"prompt_before", "traceloop.entity.input", "input.value", "ai.prompt"},
        {"prompt_after", "traceloop.entity.output", "output.value", "ai.response.text"}};
    for (int i = 0; i < 2; i++) {
        json_t *v = NULL;
        for (int k = 1; k < 4 && v == NULL; k++)
            v = json_attr(a, sides[i][k]);
        if (v != NULL && !json_is_string(v) && !json_is_object(v)) /* a string or an object */
            v = json_pack("{s:o}", "value", v);
        if (v != NULL)
            json_object_set_new_nocheck(data, sides[i][0], v);
    }
}

static json_t *
span_event(const json_t *span, const json_t *a, const struct fr_otlp_opts *o,
           const json_t *trace_convs)
{
    const char *op = str(a, "gen_ai.operation.name");
    const char *system = first_attr(a, "gen_ai.provider.name,gen_ai.system");
    int64_t start = nanos(json_object_get(span, "startTimeUnixNano"));
    int64_t end = nanos(json_object_get(span, "endTimeUnixNano"));
    json_t *data = json_object(), *ev = NULL;
    const char *kind = NULL;
    json_int_t dur = end > start ? (end - start) / 1000000 : 0;
    kind = span_kind(a, op, system);
    if (kind != NULL && strcmp(kind, "tool") == 0) {
        tool_data(data, span, a, op);
        json_object_set_new_nocheck(data, "duration_ms", json_integer(dur));
    } else if (kind != NULL && strcmp(kind, "middleware") == 0) {
        middleware_data(data, span, a, op);
        json_object_set_new_nocheck(data, "duration_ms", json_integer(dur));
    } else if (kind != NULL && strcmp(kind, "provider") == 0) {
        provider_data(data, span, a, op, system, start, dur);
    } else if (kind != NULL) {
        json_object_set_new_nocheck(data, "proto", tree_str("http"));
        json_object_set_new_nocheck(data, "method",
                                    tree_str(first_attr(a, "http.request.method,http.method")));
        const char *path = first_attr(a, "url.path,http.target,http.route");
        if (path)
            json_object_set_new_nocheck(data, "path", tree_str(path));
        set_int(data, "status", a, "http.response.status_code");
        if (!json_object_get(data, "status"))
            set_int(data, "status", a, "http.status_code");
        json_object_set_new_nocheck(data, "latency_ms", json_integer(dur));
    }
    if (kind == NULL) {
        json_decref(data);
        return NULL; /* not a span flightrec has a kind for: accepted, not stored */
    }
    json_t *err = span_error(span, a);
    if (strcmp(kind, "provider") == 0 || strcmp(kind, "tool") == 0)
        json_object_set_new_nocheck(data, "status", tree_str(err ? "error" : "ok"));
    const char *trace = str(span, "traceId"), *sid = str(span, "spanId");
    const char *conv = first_attr(a, o->conversation_attributes);
    if (conv == NULL && trace != NULL) /* another span of the trace named it */
        conv = json_string_value(json_object_get(trace_convs, trace));
    ev = json_object(); /* not json_pack: it parses its format for every span */
    json_object_set_new_nocheck(ev, "v", json_integer(1));
    json_object_set_new_nocheck(ev, "kind", tree_str(kind));
    json_object_set_new_nocheck(ev, "ts_ms", json_integer((json_int_t)(start / 1000000)));
    json_object_set_new_nocheck(ev, "data", data);
    json_object_set_new_nocheck(ev, "conv_id", tree_str(conv ? conv : (trace ? trace : "otlp")));
    if (trace)
        json_object_set_new_nocheck(ev, "trace_id", tree_str(trace));
    if (sid) {
        json_object_set_new_nocheck(ev, "span_id", tree_str(sid));
        json_object_set_new_nocheck(ev, "event_id", tree_str(sid));
    }
    /* the span tree: show nests a child under its parent */
    const char *parent = str(span, "parentSpanId");
    if (parent != NULL && parent[0] != '\0')
        json_object_set_new_nocheck(ev, "parent_span_id", tree_str(parent));
    const char *turn = o->turn_attributes ? first_attr(a, o->turn_attributes) : NULL;
    if (turn)
        json_object_set_new_nocheck(ev, "turn_id", tree_str(turn));
    if (err)
        json_object_set_new_nocheck(ev, "error", err);
    return ev;
}

/* Whether key is one of names (comma-separated, spaces ignored). */
static bool
listed(const char *names, const char *key)
{
    const char *n = names ? names : "", *name;
    size_t l, kl = strlen(key);
    while ((name = next_name(&n, &l)) != NULL)
        if (l == kl && memcmp(name, key, l) == 0)
            return true;
    return false;
}

/*
 * The resource namespaces of the process, host and platform (an SDK's
 * resource detectors put 10-20 such attributes on every resource: the
 * service, telemetry.sdk.*, process.*, host.*, ...). No mapping reads them,
 * and merging them into every span's attributes was 2-4 us per span of a
 * protobuf request (~10% of its CPU, with the Node.js SDK's resource).
 */
static const char *const resource_only[] = {
    "aws.",  "azure.",   "cloud.",   "container.", "deployment.", "device.",
    "faas.", "gcp.",     "heroku.",  "host.",      "k8s.",        "os.",
    "otel.", "process.", "service.", "telemetry.", "webengine."};

/* The resource's attributes a span's mapping may read: all but resource_only's namespaces,
   unless o names the attribute as a conversation or turn attribute. */
static json_t *
resource_attrs(const json_t *rs, const struct fr_otlp_opts *o)
{
    json_t *all = attrs(json_object_get(json_object_get(rs, "resource"), "attributes"));
    json_t *keep = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v)
    {
        bool skip = false;
        for (size_t i = 0; i < sizeof resource_only / sizeof *resource_only && !skip; i++)
            skip = strncmp(k, resource_only[i], strlen(resource_only[i])) == 0;
        if (skip && !listed(o->conversation_attributes, k) && !listed(o->turn_attributes, k))
            continue;
        json_object_set_nocheck(keep, k, v);
    }
    json_decref(all);
    return keep;
}

/* ---- recent failed calls, across requests ---- */

struct failure_slot {
    uint64_t key;  /* FNV-1a of trace id, 0x1f, message; 0 = empty */
    int64_t at_ms; /* when it was seen */
    char span[33]; /* the call's span id */
};

struct fr_otlp_failures {
    pthread_mutex_t mu;
    struct failure_slot slot[FR_OTLP_FAILURES_SLOTS];
};

struct fr_otlp_failures *
fr_otlp_failures_new(void)
{
    struct fr_otlp_failures *f = fr_calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void
fr_otlp_failures_free(struct fr_otlp_failures *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static uint64_t
failure_key(const char *trace, const char *msg)
{
    uint64_t h = fr_fnv1a64_from(fr_fnv1a64_from(fr_fnv1a64(trace), "\x1f"), msg);
    return h ? h : 1;
}

/* A slot per key (the table's size a power of two); a newer failure takes an older one's. */
static void
failures_put(struct fr_otlp_failures *f, const char *trace, const char *msg, const char *span,
             int64_t now)
{
    uint64_t k = failure_key(trace, msg);
    pthread_mutex_lock(&f->mu);
    struct failure_slot *s = &f->slot[k & (FR_OTLP_FAILURES_SLOTS - 1)];
    s->key = k;
    s->at_ms = now;
    snprintf(s->span, sizeof s->span, "%s", span);
    pthread_mutex_unlock(&f->mu);
}

/* The span id of the call that failed with msg in trace within the window, or NULL. */
static json_t *
failures_get(struct fr_otlp_failures *f, const char *trace, const char *msg, int64_t now)
{
    uint64_t k = failure_key(trace, msg);
    json_t *span = NULL;
    pthread_mutex_lock(&f->mu);
    const struct failure_slot *s = &f->slot[k & (FR_OTLP_FAILURES_SLOTS - 1)];
    if (s->key == k && now - s->at_ms <= FR_OTLP_FAILURES_WINDOW_MS)
        span = json_string(s->span);
    pthread_mutex_unlock(&f->mu);
    return span;
}

/*
 * A step (a middleware span: an agent, a workflow, the AI SDK's generateText)
 * that failed because a model call or tool under it did, with the same
 * message, in the same request: the failure is counted once, where it
 * happened; the step names that span (data.failed_in) instead of carrying the
 * error again as a failure of its own (a runtime.unknown besides the
 * provider.rate_limited of the call). Events out[from..].
 */
static void
steps_failed_in(json_t *out, size_t from, struct fr_otlp_failures *recent)
{
    size_t n = json_array_size(out);
    bool steps = false;
    json_t *failures = NULL; /* trace id, message -> span id of the call */
    int64_t now = fr_now_ms();
    for (size_t i = from; i < n; i++) {
        json_t *ev = json_array_get(out, i);
        const json_t *err = json_object_get(ev, "error");
        if (err == NULL)
            continue;
        const char *kind = str(ev, "kind"), *trace = str(ev, "trace_id"),
                   *msg = str(err, "message"), *span = str(ev, "span_id");
        steps = steps || is(kind, "middleware");
        if ((is(kind, "provider") || is(kind, "tool")) && trace && msg && span) {
            if (failures == NULL)
                failures = json_object();
            char *key = fr_asprintf("%s\x1f%s", trace, msg);
            json_object_set_new(failures, key, tree_str(span));
            free(key);
            if (recent != NULL)
                failures_put(recent, trace, msg, span, now);
        }
    }
    for (size_t i = from; steps && i < n; i++) {
        json_t *ev = json_array_get(out, i);
        if (!fr_otlp_step_failing(ev))
            continue;
        const char *trace = str(ev, "trace_id"),
                   *msg = str(json_object_get(ev, "error"), "message");
        char *key = fr_asprintf("%s\x1f%s", trace, msg);
        json_t *call = failures ? json_incref(json_object_get(failures, key)) : NULL;
        free(key);
        if (call == NULL && recent != NULL) /* the call came in an earlier request */
            call = failures_get(recent, trace, msg, now);
        if (call != NULL) {
            json_object_set_new(json_object_get(ev, "data"), "failed_in", call);
            json_object_del(ev, "error");
        }
    }
    json_decref(failures);
}

bool
fr_otlp_step_failing(const json_t *ev)
{
    return is(str(ev, "kind"), "middleware") && str(ev, "trace_id") != NULL &&
           str(json_object_get(ev, "error"), "message") != NULL;
}

void
fr_otlp_step_failed_in(json_t *ev, struct fr_otlp_failures *failures)
{
    if (failures == NULL || !fr_otlp_step_failing(ev))
        return;
    json_t *call = failures_get(failures, str(ev, "trace_id"),
                                str(json_object_get(ev, "error"), "message"), fr_now_ms());
    if (call != NULL) {
        json_object_set_new(json_object_get(ev, "data"), "failed_in", call);
        json_object_del(ev, "error");
    }
}

/* An OTLP request: an object whose list (resourceSpans, ...) is an array, or absent in an empty
   request ({}, as the protobuf JSON mapping writes one) but not in another signal's request. */
static bool
request_of(const json_t *req, const char *list)
{
    if (!json_is_object(req))
        return false;
    const json_t *l = json_object_get(req, list);
    if (l != NULL)
        return json_is_array(l);
    return json_object_get(req, "resourceSpans") == NULL &&
           json_object_get(req, "resourceLogs") == NULL &&
           json_object_get(req, "resourceMetrics") == NULL;
}

int
fr_otlp_traces(const json_t *req, const struct fr_otlp_opts *o, json_t *out, json_t *links,
               size_t *spans, size_t *rejected)
{
    size_t first = json_array_size(out);
    *spans = *rejected = 0;
    if (!request_of(req, "resourceSpans"))
        return FR_E_VALUE;
    size_t i, j, k;
    json_t *rs, *ss, *span;
    /* instrumentations (e.g. of an LLM SDK) do not copy the server's conversation
       attribute onto their spans: a trace's spans share the conversation one of
       them names */
    json_t *trace_convs = json_object();
    json_array_foreach(json_object_get(req, "resourceSpans"), i, rs)
    {
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, span)
            {
                const char *trace = str(span, "traceId");
                if (trace == NULL || json_object_get(trace_convs, trace))
                    continue;
                const char *conv =
                    first_attr(json_object_get(span, "attributes"), o->conversation_attributes);
                if (conv)
                    json_object_set_new(trace_convs, trace, tree_str(conv));
            }
        }
    }
    json_array_foreach(json_object_get(req, "resourceSpans"), i, rs)
    {
        json_t *res = resource_attrs(rs, o);
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, span)
            {
                (*spans)++;
                if (!json_is_object(span) ||
                    nanos(json_object_get(span, "startTimeUnixNano")) < MIN_NANOS) {
                    (*rejected)++;
                    continue;
                }
                /* span attributes over the resource's (the span's object is its own: the
                   JSON path builds it here, the protobuf tree holds it for this span only) */
                json_t *a = attrs(json_object_get(span, "attributes"));
                json_object_update_missing(a, res);
                attr_seen_set(a);
                json_t *ev = span_event(span, a, o, trace_convs);
                if (ev)
                    json_array_append_new(out, ev);
                attr_done(a);
            }
        }
        json_decref(res);
    }
    steps_failed_in(out, first, o->failures);
    if (links != NULL)
        json_object_update(links, trace_convs);
    json_decref(trace_convs);
    return FR_OK;
}

/*
 * A log record that names its flightrec kind (attribute flightrec.kind): the
 * body (a kvlist, or a string holding a JSON object) is the event's data; ids
 * from the attributes and the record's trace context. NULL when the body is
 * not an object.
 */
static json_t *
kind_record(const json_t *lr, const json_t *a, int64_t t, const struct fr_otlp_opts *o)
{
    json_t *data = any_value(json_object_get(lr, "body"));
    if (json_is_string(data)) {
        json_t *parsed = json_loads(json_string_value(data), JSON_REJECT_DUPLICATES, NULL);
        json_decref(data);
        data = parsed;
    }
    if (!json_is_object(data)) {
        json_decref(data);
        return NULL;
    }
    json_t *ev = json_pack("{s:i,s:s,s:I,s:o}", "v", 1, "kind", str(a, "flightrec.kind"), "ts_ms",
                           (json_int_t)(t / 1000000), "data", data);
    const char *trace = str(lr, "traceId"), *span = str(lr, "spanId"),
               *conv = first_attr(a, o->conversation_attributes),
               *turn = o->turn_attributes ? first_attr(a, o->turn_attributes) : NULL;
    if (conv || (trace && *trace))
        json_object_set_new_nocheck(ev, "conv_id", tree_str(conv ? conv : trace));
    if (turn)
        json_object_set_new_nocheck(ev, "turn_id", tree_str(turn));
    if (trace && *trace)
        json_object_set_new_nocheck(ev, "trace_id", tree_str(trace));
    if (span && *span)
        json_object_set_new_nocheck(ev, "span_id", tree_str(span));
    return ev;
}

/*
 * A GenAI log event carrying a model call's messages (the official
 * instrumentations' gen_ai.system/user/assistant/tool.message and
 * gen_ai.choice, the current gen_ai.client.inference.operation.details): a
 * part of the provider event of the same trace and span ("_part": the store
 * merges it into that event). NULL when the record is not one, or has no
 * span to attach to.
 */
static json_t *
content_record(const json_t *lr, const json_t *a, int64_t t, const struct fr_otlp_opts *o)
{
    const char *name = or_(str(a, "event.name"), str(lr, "eventName"));
    const char *trace = str(lr, "traceId"), *span = str(lr, "spanId");
    if (name == NULL || strncmp(name, "gen_ai.", 7) != 0 || trace == NULL || !*trace ||
        span == NULL || !*span)
        return NULL;
    static const char *const roles[][2] = {{"gen_ai.system.message", "system"},
                                           {"gen_ai.user.message", "user"},
                                           {"gen_ai.assistant.message", "assistant"},
                                           {"gen_ai.tool.message", "tool"}};
    json_t *body = any_value(json_object_get(lr, "body")), *data = NULL;
    if (json_is_string(body)) { /* the text alone */
        json_t *t = json_pack("{s:o}", "content", body);
        body = t;
    }
    for (size_t i = 0; i < sizeof roles / sizeof *roles && json_is_object(body); i++)
        if (strcmp(name, roles[i][0]) == 0) {
            json_t *m = json_deep_copy(body);
            if (!json_object_get(m, "role"))
                json_object_set_new_nocheck(m, "role", tree_str(roles[i][1]));
            if (strcmp(roles[i][1], "tool") == 0 && json_object_get(m, "id") &&
                !json_object_get(m, "tool_call_id")) {
                json_object_set(m, "tool_call_id", json_object_get(m, "id"));
                json_object_del(m, "id");
            }
            data = json_pack("{s:{s:[o]}}", "request", "messages", m);
        }
    if (data == NULL && strcmp(name, "gen_ai.choice") == 0 && json_is_object(body)) {
        json_t *m = json_object_get(body, "message");
        m = json_is_object(m) ? json_deep_copy(m) : json_object();
        if (!json_object_get(m, "role"))
            json_object_set_new_nocheck(m, "role", tree_str("assistant"));
        if (json_object_get(body, "finish_reason"))
            json_object_set(m, "finish_reason", json_object_get(body, "finish_reason"));
        if (json_object_get(body, "index"))
            json_object_set(m, "index", json_object_get(body, "index"));
        data = json_pack("{s:{s:[o]}}", "response", "messages", m);
    }
    if (data == NULL && strcmp(name, "gen_ai.client.inference.operation.details") == 0) {
        json_t *in = json_attr(a, "gen_ai.input.messages"),
               *out = json_attr(a, "gen_ai.output.messages"),
               *sys = json_attr(a, "gen_ai.system_instructions");
        data = json_object();
        if (json_is_array(in) || sys) {
            json_t *rq = json_object();
            if (json_is_array(in))
                json_object_set(rq, "messages", in);
            if (sys)
                json_object_set(rq, "system", sys);
            json_object_set_new_nocheck(data, "request", rq);
        }
        if (json_is_array(out))
            json_object_set_new_nocheck(data, "response", json_pack("{s:O}", "messages", out));
        json_decref(in);
        json_decref(out);
        json_decref(sys);
        if (json_object_size(data) == 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_decref(body);
    if (data == NULL)
        return NULL;
    const char *conv = first_attr(a, o->conversation_attributes);
    return json_pack("{s:i,s:s,s:I,s:s,s:s,s:s,s:s,s:o,s:b}", "v", 1, "kind", "provider", "ts_ms",
                     (json_int_t)(t / 1000000), "conv_id", conv ? conv : trace, "trace_id", trace,
                     "span_id", span, "event_id", span, "data", data, "_part", 1);
}

/*
 * A part appended to out, or merged into the part of the same trace and span
 * already there: the official instrumentations send each message of a call
 * as a log record of its own (a system, user, assistant or tool message per
 * input message, a choice per output), mostly in the same export, and each
 * part the store takes is a look-up of the call's event and, once it is
 * there, a rewrite of its body. One part per call and request instead of
 * one per message. Put together as they come (fr_wire_merge_part without
 * resent): records of one export are distinct, even with equal content.
 */
static void
add_part(json_t *out, json_t *parts, json_t *part)
{
    const char *trace = str(part, "trace_id"), *span = str(part, "span_id");
    char key[300];
    int n = snprintf(key, sizeof key, "%s %s", trace, span);
    json_t *have = n > 0 && (size_t)n < sizeof key ? json_object_get(parts, key) : NULL;
    if (have != NULL &&
        fr_wire_merge_part(json_object_get(have, "data"), json_object_get(part, "data"), false)) {
        json_decref(part);
        return;
    }
    if (n > 0 && (size_t)n < sizeof key)
        json_object_set(parts, key, part);
    json_array_append_new(out, part);
}

int
fr_otlp_logs(const json_t *req, const struct fr_otlp_opts *o, json_t *out, json_t *links,
             size_t *records, size_t *rejected)
{
    *records = *rejected = 0;
    if (!request_of(req, "resourceLogs"))
        return FR_E_VALUE;
    size_t i, j, k;
    json_t *rl, *sl, *lr;
    json_t *parts = json_object(); /* "trace span" -> its part in out */
    json_array_foreach(json_object_get(req, "resourceLogs"), i, rl)
    {
        json_array_foreach(json_object_get(rl, "scopeLogs"), j, sl)
        {
            json_array_foreach(json_object_get(sl, "logRecords"), k, lr)
            {
                (*records)++;
                json_int_t sev = 0;
                num(lr, "severityNumber", &sev);
                int64_t t = nanos(json_object_get(lr, "timeUnixNano"));
                if (t < MIN_NANOS)
                    t = nanos(json_object_get(lr, "observedTimeUnixNano"));
                if (t < MIN_NANOS) {
                    (*rejected)++;
                    continue;
                }
                json_t *a = attrs(json_object_get(lr, "attributes"));
                attr_seen_set(a);
                const char *ltrace = str(lr, "traceId"),
                           *lconv = first_attr(a, o->conversation_attributes);
                if (links != NULL && ltrace && *ltrace && lconv && !json_object_get(links, ltrace))
                    json_object_set_new(links, ltrace, tree_str(lconv));
                json_t *part = content_record(lr, a, t, o);
                if (part != NULL) {
                    add_part(out, parts, part);
                    attr_done(a);
                    continue;
                }
                if (str(a, "flightrec.kind") != NULL) {
                    json_t *ev = kind_record(lr, a, t, o);
                    if (ev)
                        json_array_append_new(out, ev);
                    else
                        (*rejected)++;
                    attr_done(a);
                    continue;
                }
                if (sev < 17) {
                    attr_done(a);
                    continue; /* below ERROR: accepted, nothing to record */
                }
                const json_t *body = json_object_get(json_object_get(lr, "body"), "stringValue");
                const char *msg = str(a, "exception.message")
                                      ? str(a, "exception.message")
                                      : (json_is_string(body) ? json_string_value(body) : "error");
                json_t *err = json_pack("{s:s}", "message", msg);
                if (str(a, "exception.type"))
                    json_object_set_new_nocheck(err, "type", tree_str(str(a, "exception.type")));
                if (str(a, "exception.stacktrace"))
                    json_object_set_new_nocheck(err, "stack",
                                                tree_str(str(a, "exception.stacktrace")));
                const char *trace = str(lr, "traceId"),
                           *conv = first_attr(a, o->conversation_attributes);
                json_t *ev =
                    json_pack("{s:i,s:s,s:I,s:{s:b},s:o}", "v", 1, "kind", "error", "ts_ms",
                              (json_int_t)(t / 1000000), "data", "panic", sev >= 21, "error", err);
                if (conv || (trace && *trace))
                    json_object_set_new_nocheck(ev, "conv_id", tree_str(conv ? conv : trace));
                if (trace && *trace)
                    json_object_set_new_nocheck(ev, "trace_id", tree_str(trace));
                json_array_append_new(out, ev);
                attr_done(a);
            }
        }
    }
    json_decref(parts);
    return FR_OK;
}

/* ---- metrics ---- */

struct last {
    double count, sum;
    int64_t hist[FR_HIST_BUCKETS];
};

struct fr_otlp_metrics_state {
    pthread_mutex_t mu;
    struct fr_strmap *last;   /* series -> struct last (cumulative temporality) */
    struct fr_strmap *series; /* "system\x1fmodel" admitted to the rollups */
};

struct fr_otlp_metrics_state *
fr_otlp_metrics_state_new(void)
{
    struct fr_otlp_metrics_state *s = fr_calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->last = fr_strmap_new();
    s->series = fr_strmap_new();
    return s;
}

bool
fr_otlp_series_admit(struct fr_otlp_metrics_state *s, const char *system, const char *model)
{
    char *k = fr_asprintf("%s\x1f%s", system, model);
    pthread_mutex_lock(&s->mu);
    bool ok = fr_strmap_get(s->series, k) != NULL;
    if (!ok && fr_strmap_count(s->series) < FR_OTLP_MAX_SERIES) {
        bool created;
        *fr_strmap_slot(s->series, k, &created) = (void *)1;
        ok = true;
    }
    pthread_mutex_unlock(&s->mu);
    free(k);
    return ok;
}

void
fr_otlp_metrics_state_free(struct fr_otlp_metrics_state *s)
{
    if (s == NULL)
        return;
    fr_strmap_free(s->last, free);
    fr_strmap_free(s->series, NULL);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static double
dnum(const json_t *v)
{
    if (json_is_string(v))
        return strtod(json_string_value(v), NULL);
    return json_number_value(v);
}

/*
 * An OTLP histogram point's buckets (explicitBounds in seconds) folded into
 * the rollup buckets: each OTLP bucket goes to the first rollup bucket whose
 * upper bound covers its own upper bound.
 */
static void
fold_buckets(const json_t *dp, int64_t hist[FR_HIST_BUCKETS])
{
    const json_t *bounds = json_object_get(dp, "explicitBounds");
    const json_t *counts = json_object_get(dp, "bucketCounts");
    size_t i;
    const json_t *c;
    json_array_foreach(counts, i, c)
    {
        int b = FR_HIST_BUCKETS - 1;
        if (i < json_array_size(bounds)) {
            double upper_ms = dnum(json_array_get(bounds, i)) * 1000.0;
            for (int k = 0; k < FR_HIST_BUCKETS - 1; k++)
                if ((double)fr_hist_upper_ms[k] >= upper_ms) {
                    b = k;
                    break;
                }
        }
        int64_t add = clamp_count(dnum(c));
        hist[b] = hist[b] > INT64_MAX - add ? INT64_MAX : hist[b] + add;
    }
}

/*
 * The increase since the last export of a cumulative series (the values
 * themselves for delta temporality): count, sum and histogram in place.
 */
static void
delta(struct fr_otlp_metrics_state *s, const char *series, bool cumulative, double *count,
      double *sum, int64_t hist[FR_HIST_BUCKETS])
{
    if (!cumulative)
        return;
    pthread_mutex_lock(&s->mu);
    if (fr_strmap_count(s->last) > 10000)
        fr_strmap_clear(s->last, free); /* bounded; a reset series restarts from its value */
    bool created;
    void **slot = fr_strmap_slot(s->last, series, &created);
    struct last *l = *slot;
    if (l == NULL) {
        l = fr_calloc(1, sizeof *l);
        *slot = l;
    }
    struct last now = {*count, *sum, {0}};
    memcpy(now.hist, hist, sizeof now.hist);
    if (*count >= l->count && *sum >= l->sum) { /* else: the producer restarted */
        *count -= l->count;
        *sum -= l->sum;
        for (int b = 0; b < FR_HIST_BUCKETS; b++)
            hist[b] = hist[b] >= l->hist[b] ? hist[b] - l->hist[b] : 0;
    }
    *l = now;
    pthread_mutex_unlock(&s->mu);
}

int
fr_otlp_metrics(const json_t *req, struct fr_otlp_metrics_state *s,
                int (*cb)(void *ud, const struct fr_otlp_rollup *r), void *ud, size_t *points)
{
    *points = 0;
    if (!request_of(req, "resourceMetrics"))
        return FR_E_VALUE;
    size_t i, j, k, m;
    json_t *rm, *sm, *metric, *dp;
    json_array_foreach(json_object_get(req, "resourceMetrics"), i, rm)
    {
        json_array_foreach(json_object_get(rm, "scopeMetrics"), j, sm)
        {
            json_array_foreach(json_object_get(sm, "metrics"), k, metric)
            {
                const char *name = str(metric, "name");
                bool tokens = name && strcmp(name, "gen_ai.client.token.usage") == 0;
                bool duration = name && strcmp(name, "gen_ai.client.operation.duration") == 0;
                /* streaming: time to the first chunk, and between chunks (seconds) */
                const char *timing =
                    !name                                                              ? NULL
                    : strcmp(name, "gen_ai.client.operation.time_to_first_chunk") == 0 ? "otel_ttft"
                    : strcmp(name, "gen_ai.client.operation.time_per_output_chunk") == 0
                        ? "otel_chunk"
                        : NULL;
                const json_t *h = json_object_get(metric, "histogram");
                if ((!tokens && !duration && !timing) || h == NULL)
                    continue;
                json_int_t temporality = 0;
                num(h, "aggregationTemporality", &temporality);
                json_array_foreach(json_object_get(h, "dataPoints"), m, dp)
                {
                    (*points)++;
                    json_t *a = attrs(json_object_get(dp, "attributes"));
                    size_t slen;
                    char *series = fr_json_text(a, JSON_COMPACT | JSON_SORT_KEYS, &slen);
                    char *key = fr_asprintf("%s|%s", name, series);
                    double dc = dnum(json_object_get(dp, "count"));
                    double ds = dnum(json_object_get(dp, "sum"));
                    int64_t hist[FR_HIST_BUCKETS] = {0};
                    if (duration || timing)
                        fold_buckets(dp, hist);
                    delta(s, key, temporality != 1, &dc, &ds, hist);
                    struct fr_otlp_rollup r = {
                        .dim = timing ? timing : "otel",
                        .minute_ms = nanos(json_object_get(dp, "timeUnixNano")) / 1000000,
                        .system = or_(first_attr(a, "gen_ai.provider.name,gen_ai.system"), ""),
                        .model =
                            or_(first_attr(a, "gen_ai.response.model,gen_ai.request.model"), "")};
                    if (tokens) {
                        const char *type = or_(str(a, "gen_ai.token.type"), "");
                        if (strcmp(type, "input") == 0)
                            r.input_tokens = clamp_count(ds);
                        else if (strcmp(type, "output") == 0)
                            r.output_tokens = clamp_count(ds);
                    } else {
                        r.calls = timing ? 0 : clamp_count(dc);      /* calls: from the duration */
                        if (!timing && str(a, "error.type") != NULL) /* a failed call */
                            r.errors = clamp_count(dc);
                        r.lat_count = clamp_count(dc);
                        r.lat_sum_ms = clamp_count(ds * 1000.0); /* seconds in the semconv */
                        r.lat_max_ms = clamp_count(dnum(json_object_get(dp, "max")) * 1000.0);
                        memcpy(r.hist, hist, sizeof r.hist);
                    }
                    if (r.minute_ms > 0 &&
                        (r.calls || r.lat_count || r.input_tokens || r.output_tokens))
                        cb(ud, &r);
                    free(key);
                    free(series);
                    json_decref(a);
                }
            }
        }
    }
    return FR_OK;
}
