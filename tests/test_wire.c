/*
 * tests/test_wire.c - the wire format's envelope and every kind's `data`,
 * driven from case tables: an input line and either the expected normalized
 * columns or the expected error code and the field the message must name.
 */
#include "tests/support/support.h"

#include <stdlib.h>
#include <string.h>

#include "agent/ingest.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "core/wire.h"

#define TS "\"ts_ms\":1771357445201"

struct bad_case {
    const char *line;
    int code;
    const char *field; /* must appear in the message */
};

static const struct bad_case bad_cases[] = {
    {"not json", FR_E_SYNTAX, "invalid JSON"},
    {"{\"kind\":\"provider\"," TS, FR_E_SYNTAX, "invalid JSON"},
    {"[1,2]", FR_E_TYPE, "event must be a JSON object"},
    {"{" TS "}", FR_E_MISSING, "kind"},
    {"{\"kind\":null," TS "}", FR_E_MISSING, "kind"},
    {"{\"kind\":7," TS "}", FR_E_TYPE, "kind"},
    {"{\"kind\":\"llm\"," TS "}", FR_E_KIND, "'llm'"},
    {"{\"kind\":\"tool\"}", FR_E_MISSING, "ts_ms"},
    /* a time as text: a number in quotes (protobuf's JSON int64), a date (Go's time.Time) */
    {"{\"kind\":\"tool\",\"ts_ms\":\"1771357445201\"}", FR_E_TYPE,
     "ts_ms: must be an integer, got a number in quotes"},
    {"{\"kind\":\"tool\",\"ts_ms\":\"2026-02-17T19:44:05.201234567Z\"}", FR_E_TYPE,
     "got a date as text (RFC 3339 / ISO 8601); send milliseconds since the epoch (Go: "
     "t.UnixMilli()"},
    {"{\"kind\":\"tool\",\"ts_ms\":\"soon\"}", FR_E_TYPE,
     "ts_ms: must be an integer (milliseconds since the epoch), got a string"},
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445201.5}", FR_E_TYPE, "got 1771357445201.5 written as"},
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445201.0}", FR_E_TYPE, "send whole milliseconds"},
    {"{\"kind\":\"tool\",\"ts_ms\":1.771357445201e12}", FR_E_TYPE, "fraction or an exponent"},
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445.201}", FR_E_TYPE,
     "1771357445.201 is not an integer and looks like seconds"},
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445}", FR_E_VALUE, "seconds"},
    /* another unit by mistake (Go's UnixMicro, UnixNano): refused, the unit named */
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445201000}", FR_E_VALUE,
     "ts_ms: 1771357445201000 is after the year 5138 in milliseconds; it looks like microseconds "
     "(divide by 1000)"},
    {"{\"kind\":\"tool\",\"ts_ms\":1771357445201000000}", FR_E_VALUE,
     "looks like nanoseconds (divide by 1000000)"},
    {"{\"kind\":\"tool\",\"ts_ms\":-5}", FR_E_VALUE,
     "ts_ms: -5 is not a time in milliseconds since the epoch (before 1973)"},
    {"{\"v\":2,\"kind\":\"tool\"," TS "}", FR_E_VERSION, "v:"},
    {"{\"kind\":\"tool\"," TS ",\"conv_id\":12}", FR_E_TYPE, "conv_id"},
    {"{\"kind\":\"tool\"," TS ",\"trace_id\":[]}", FR_E_TYPE, "trace_id"},
    {"{\"kind\":\"tool\"," TS ",\"seq\":\"3\"}", FR_E_TYPE, "seq"},
    {"{\"kind\":\"tool\"," TS ",\"seq\":-1}", FR_E_VALUE, "seq"},
    {"{\"kind\":\"tool\"," TS ",\"data\":[]}", FR_E_TYPE, "data"},
    {"{\"kind\":\"tool\"," TS ",\"error\":\"boom\"}", FR_E_TYPE, "error"},
    {"{\"kind\":\"tool\"," TS ",\"tags\":{\"data.args\":\"top\"}}", FR_E_VALUE, "tags: entry 1"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"http_status\":\"429\"}}", FR_E_TYPE,
     "error.http_status"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"cause\":[1]}}", FR_E_TYPE, "error.cause[0]"},
    {"{\"kind\":\"tool\",\"ts_ms\":99999999999999999999}", FR_E_VALUE, "out of range"},
    /* a byte that is not UTF-8 outside a string (inside one it is mended: below) */
    {"{\"kind\":\"tool\"," TS ",\"x\":1\xff}", FR_E_UTF8, "invalid UTF-8 at byte 42"},
    {"{\"kind\":\"tool\"," TS ",\"x\":\"a\\u0000b\"}", FR_E_SYNTAX, "NUL"},
    /* every kind: a known field of the wrong type or outside its domain */
    {"{\"kind\":\"conversation\"," TS ",\"data\":{\"status\":\"sleeping\"}}", FR_E_VALUE,
     "data.status"},
    {"{\"kind\":\"conversation\"," TS ",\"data\":{\"ws_conns\":\"2\"}}", FR_E_TYPE,
     "data.ws_conns"},
    {"{\"kind\":\"turn\"," TS ",\"data\":{\"phase\":\"late\"}}", FR_E_VALUE, "data.phase"},
    {"{\"kind\":\"turn\"," TS ",\"data\":{\"payload\":\"text\"}}", FR_E_TYPE, "data.payload"},
    {"{\"kind\":\"turn\"," TS ",\"data\":{\"block_hashes\":[\"a\",2]}}", FR_E_TYPE,
     "data.block_hashes[1]"},
    {"{\"kind\":\"timeline\"," TS ",\"data\":{\"version\":\"3\"}}", FR_E_TYPE, "data.version"},
    {"{\"kind\":\"sem\"," TS ",\"data\":{\"source\":\"carrier-pigeon\"}}", FR_E_VALUE,
     "data.source"},
    {"{\"kind\":\"sem\"," TS ",\"data\":{\"seq\":-4}}", FR_E_VALUE, "data.seq"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"model\":4}}", FR_E_TYPE, "data.model"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"usage\":{\"input_tokens\":1.5}}}", FR_E_TYPE,
     "data.usage.input_tokens"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"latency\":{\"ttft_ms\":-2}}}", FR_E_VALUE,
     "data.latency.ttft_ms"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"status\":\"fine\"}}", FR_E_VALUE, "data.status"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"status\":\"weird\"}}", FR_E_VALUE, "data.status"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"side_effects\":\"rm\"}}", FR_E_TYPE,
     "data.side_effects"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"started_ms\":10,\"ended_ms\":5}}", FR_E_VALUE,
     "data.ended_ms"},
    {"{\"kind\":\"middleware\"," TS ",\"data\":{\"chain\":\"a,b\"}}", FR_E_TYPE, "data.chain"},
    {"{\"kind\":\"middleware\"," TS ",\"data\":{\"guardrail\":{\"score\":\"high\"}}}", FR_E_TYPE,
     "data.guardrail.score"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"smtp\"}}", FR_E_VALUE, "data.proto"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"status\":\"200\"}}", FR_E_TYPE, "data.status"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"event\":\"wave\"}}", FR_E_VALUE, "data.event"},
    {"{\"kind\":\"runtime\"," TS ",\"data\":{\"rss_bytes\":-1}}", FR_E_VALUE, "data.rss_bytes"},
    {"{\"kind\":\"runtime\"," TS ",\"data\":{\"deps\":{\"redis\":\"meh\"}}}", FR_E_VALUE,
     "data.deps.redis"},
    {"{\"kind\":\"error\"," TS ",\"data\":{\"panic\":\"yes\"}}", FR_E_TYPE, "data.panic"},
};

static void
test_wire_bad_lines_rejected_with_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct fr_record rec;
        struct fr_err err = {0};
        int rc = t_prepare(bad_cases[i].line, &rec, &err);
        if (rc != bad_cases[i].code || strstr(err.msg, bad_cases[i].field) == NULL)
            fail_msg("case %zu (%s): got %s '%s', want %s naming '%s'", i, bad_cases[i].line,
                     fr_rc_name(rc), err.msg, fr_rc_name(bad_cases[i].code), bad_cases[i].field);
        assert_null(rec.strings);
    }
    /* the range's ends, in milliseconds: 1973 and the year 5138 */
    struct fr_record rec;
    struct fr_err err = {0};
    static const char *const ends[] = {"{\"kind\":\"tool\",\"ts_ms\":99999999999999}",
                                       "{\"kind\":\"tool\",\"ts_ms\":100000000000}"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(t_prepare(ends[i], &rec, &err), FR_OK);
        fr_record_clear(&rec);
    }
    /* more than a day ahead of the clock: stored, with a warning; less: no warning */
    for (int ahead = 0; ahead < 2; ahead++) {
        char *line = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld}",
                                 (long long)(fr_now_ms() + (ahead ? 2 : 0) * FR_WIRE_AHEAD_MS));
        assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
        free(line);
        if (!ahead) {
            assert_null(rec.misnamed);
            fr_record_clear(&rec);
            continue;
        }
        assert_ptr_equal(rec.misnamed, FR_WIRE_AHEAD);
        assert_int_equal(rec.misnamed_field, FR_WF_TS);
        char text[240];
        assert_non_null(
            strstr(fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text),
                   "ts_ms: more than a day ahead of this agent's clock"));
        fr_record_clear(&rec);
    }
}

/*
 * A number past what a 64-bit integer or a double holds (a Go uint64 hash of 2^63 or more)
 * in data, error, tags or a producer's own field: the event is stored with it as a string of
 * its digits, and a warning, where jansson would refuse the whole event. In an envelope
 * field (ts_ms, seq, an id) it is refused as before; numbers in strings are left alone.
 */
static void
test_wire_wide_numbers_kept_as_strings(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    const char *line =
        "{\"kind\":\"tool\"," TS ",\"data\":{\"h\":14695981039346656037,"
        "\"s\":\"a \\\"99999999999999999999\\\" quoted\",\"max\":9223372036854775807,"
        "\"min\":-9223372036854775808,\"under\":-9223372036854775809,"
        "\"r\":-1e400,\"a\":[1,18446744073709551616]},\"x\":99999999999999999999}";
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_WIDE);
    char *body = fr_strndup(rec.body, rec.body_len);
    static const char *const want[] = {
        "\"h\":\"14695981039346656037\"",     "\"s\":\"a \\\"99999999999999999999\\\" quoted\"",
        "\"max\":9223372036854775807",        "\"min\":-9223372036854775808",
        "\"under\":\"-9223372036854775809\"", "\"r\":\"-1e400\"",
        "\"a\":[1,\"18446744073709551616\"]", "\"x\":\"99999999999999999999\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (strstr(body, want[i]) == NULL)
            fail_msg("%s not in %s", want[i], body);
    free(body);
    char text[360];
    assert_non_null(
        strstr(fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text),
               "a number JSON readers cannot hold"));
    /* the warning names where: the first value quoted */
    assert_string_equal(rec.mended_at, "data.h");
    assert_ptr_equal(strstr(fr_wire_warning_text(rec.misnamed, rec.misnamed_field, rec.mended_at,
                                                 text, sizeof text),
                            "data.h: a number JSON readers cannot hold"),
                     text);
    fr_record_clear(&rec);
    /* NaN and Infinity, as Python's json.dumps writes them: kept as strings too, but not a
       key or a string that holds the word */
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS ",\"data\":{\"s\":NaN,\"hi\":Infinity,"
                               "\"lo\":[-Infinity],\"NaNa\":\"NaN x\"}}",
                               &rec, &err),
                     FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_WIDE);
    body = fr_strndup(rec.body, rec.body_len);
    assert_non_null(strstr(
        body, "{\"s\":\"NaN\",\"hi\":\"Infinity\",\"lo\":[\"-Infinity\"],\"NaNa\":\"NaN x\"}"));
    free(body);
    fr_record_clear(&rec);
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS ",\"seq\":NaN}", &rec, &err), FR_E_SYNTAX);
    assert_non_null(strstr(err.msg, "NaN and Infinity are not JSON"));
    /* in ts_ms or seq: refused, as a number that does not fit there */
    assert_int_equal(t_prepare("{\"kind\":\"tool\",\"ts_ms\":17713574452010000000000}", &rec, &err),
                     FR_E_VALUE);
    assert_non_null(strstr(err.msg, "number out of range at byte 46"));
    assert_int_equal(
        t_prepare("{\"kind\":\"tool\"," TS ",\"seq\":18446744073709551615}", &rec, &err),
        FR_E_VALUE);
    /* nothing to quote: no copy; an array's events' members are one level down */
    size_t n, *at, nat;
    assert_null(fr_wire_widen("{\"a\":1,\"b\":\"18446744073709551616\"}", 33, 1, &n, &at, &nat));
    assert_null(at);
    const char arr[] = "[{\"ts_ms\":18446744073709551616,\"data\":{\"h\":18446744073709551616}}]";
    char *w = fr_wire_widen(arr, sizeof arr - 1, 2, &n, &at, &nat);
    assert_non_null(w);
    assert_string_equal(
        w, "[{\"ts_ms\":18446744073709551616,\"data\":{\"h\":\"18446744073709551616\"}}]");
    assert_int_equal(n, strlen(w));
    assert_int_equal(nat, 1);
    assert_int_equal(at[0], strlen("[{\"ts_ms\":18446744073709551616,\"data\":{\"h\":"));
    free(at);
    free(w);
}

/*
 * Half of a character: JavaScript's JSON.stringify writes a lone UTF-16 surrogate as an
 * escape (a string cut inside an emoji by slice()); jansson refuses it, and the event with
 * it. It is stored as U+FFFD with a warning; a pair stays one character, an escaped
 * backslash before "ud83d" is text. An event with a wide number too is mended of both.
 */
static void
test_wire_lone_surrogates_mended(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    const char *line = "{\"kind\":\"provider\"," TS ",\"data\":{\"d\":\"ok \\ud83d\","
                       "\"e\":\"\\uDE00 end\",\"p\":\"\\ud83d\\ude00\",\"t\":\"\\\\ud83d\"}}";
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_HALF);
    char *body = fr_strndup(rec.body, rec.body_len);
    assert_non_null(strstr(body, "\"d\":\"ok \\ufffd\""));
    assert_non_null(strstr(body, "\"e\":\"\\ufffd end\""));
    assert_non_null(strstr(body, "\"p\":\"\\ud83d\\ude00\""));
    assert_non_null(strstr(body, "\"t\":\"\\\\ud83d\""));
    free(body);
    char text[320];
    assert_non_null(
        strstr(fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text),
               "half of a character"));
    assert_string_equal(rec.mended_at, "data.d");
    fr_record_clear(&rec);
    /* both in one event: two rounds; the first mended names the warning */
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS ",\"data\":{\"h\":18446744073709551616,"
                               "\"d\":\"\\ud800\"}}",
                               &rec, &err),
                     FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_WIDE);
    assert_string_equal(rec.mended_at, "data.h"); /* the warning's kind's */
    body = fr_strndup(rec.body, rec.body_len);
    assert_non_null(strstr(body, "\"h\":\"18446744073709551616\",\"d\":\"\\ufffd\""));
    free(body);
    fr_record_clear(&rec);
    /* another invalid escape is still refused */
    assert_int_equal(
        t_prepare("{\"kind\":\"tool\"," TS ",\"data\":{\"d\":\"\\u00zz\"}}", &rec, &err),
        FR_E_SYNTAX);
    /* fr_wire_unpair: in place, the offsets of what it wrote */
    char buf[] = "[\"\\ud83d\", \"\\ud83d\\udc4d\", \"x\\udfff\"]";
    size_t *at, nat;
    assert_int_equal(fr_wire_unpair(buf, strlen(buf), &at, &nat), 2);
    assert_string_equal(buf, "[\"\\ufffd\", \"\\ud83d\\udc4d\", \"x\\ufffd\"]");
    assert_int_equal(nat, 2);
    assert_int_equal(at[0], 2);
    assert_int_equal(at[1], 29);
    free(at);
}

/*
 * Bytes that are not UTF-8 inside a string (a C producer's Latin-1 text, a string cut by a byte
 * count inside a character): jansson refuses them, and the event with them. Each is stored as
 * U+FFFD, with a warning; valid characters stay, redaction still reads the text, and a line
 * that also holds a number past 64 bits is mended of both (the first mended names the
 * warning). A byte outside any string, or a line with a NUL byte, is still refused, with the
 * error of the line as sent.
 */
static void
test_wire_invalid_utf8_mended(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    const char *line = "{\"kind\":\"provider\"," TS ",\"data\":{\"d\":\"caf\xe9 au lait\","
                       "\"cut\":\"10 \xe2\x82\",\"ok\":\"na\xc3\xafve \xe2\x82\xac\","
                       "\"k\":\"\xff key sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE\"}}";
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_BYTES);
    char *body = fr_strndup(rec.body, rec.body_len);
    assert_non_null(strstr(body, "\"d\":\"caf\xef\xbf\xbd au lait\""));
    assert_non_null(strstr(body, "\"cut\":\"10 \xef\xbf\xbd\xef\xbf\xbd\""));
    assert_non_null(strstr(body, "\"ok\":\"na\xc3\xafve \xe2\x82\xac\""));
    assert_null(strstr(body, "Zq8XbN3kLm5PqR7sT9vW2yA4cE")); /* redacted all the same */
    assert_true(fr_utf8_valid(body, strlen(body)));
    free(body);
    char text[320];
    assert_non_null(
        strstr(fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text),
               "bytes that are not UTF-8"));
    assert_string_equal(rec.mended_at, "data.d");
    fr_record_clear(&rec);
    /* with a wide number: two rounds, the first mended names the warning */
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS ",\"data\":{\"h\":18446744073709551616,"
                               "\"d\":\"\xe9\"}}",
                               &rec, &err),
                     FR_OK);
    assert_ptr_equal(rec.misnamed, FR_WIRE_WIDE);
    assert_string_equal(rec.mended_at, "data.h");
    body = fr_strndup(rec.body, rec.body_len);
    assert_non_null(strstr(body, "\"h\":\"18446744073709551616\",\"d\":\"\xef\xbf\xbd\""));
    free(body);
    fr_record_clear(&rec);
    /* a NUL byte after it: refused as sent */
    static const char nul[] = "{\"kind\":\"tool\"," TS ",\"x\":\"\xe9\",\"y\":\"a\0b\"}";
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_event ev = {0};
    char *mended = NULL;
    size_t mlen = 0;
    assert_int_equal(fr_wire_parse_mend(nul, sizeof nul - 1, &lim, &ev, &mended, &mlen, &err),
                     FR_E_UTF8);
    assert_null(mended);
    assert_non_null(strstr(err.msg, "invalid UTF-8 at byte"));
}

/* The path of the value at an offset: what a mended value's warning names. */
static const char *
path_of(const char *text, const char *at, char *out, size_t cap)
{
    const char *p = strstr(text, at);
    assert_non_null(p);
    fr_json_path_at(text, strlen(text), (size_t)(p - text), out, cap);
    return out;
}

/*
 * fr_json_path_at: members by key, elements by index, a key with an escaped quote or a
 * string with brackets and commas before it, a key that is itself the mended text, keys
 * too long to write whole (a map keyed by a token: its first 12 bytes), bytes of a key not
 * yet mended (as '?'), a path deeper than it names, a buffer too short (cut at a
 * character), and an offset in no member.
 */
static void
test_wire_json_path_at(void **state)
{
    (void)state;
    char out[FR_PATH_MAX];
    assert_string_equal(path_of("{\"a\":{\"b\":[1,{\"c\":\"xyz\"}]}}", "y", out, sizeof out),
                        "a.b[1].c");
    assert_string_equal(
        path_of("{\"data\":{\"s\":\"a\\\",[{b\",\"q\\\"k\":[[0],[\"X\"]]}}", "X", out, sizeof out),
        "data.q\\\"k[1][0]");
    assert_string_equal(path_of("{\"data\":{\"k\xef\xbf\xbd\":1}}", "\xef", out, sizeof out),
                        "data.k\xef\xbf\xbd");
    assert_string_equal(path_of("{\"tags\":{\"sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE1234\":\"v\"}}",
                                "\"v", out, sizeof out),
                        "tags.sk-proj-Zq8X...");
    assert_string_equal(path_of("{\"\xe9t\xe9\":[\"V\"]}", "V", out, sizeof out), "?t?[0]");
    char deep[256] = "{\"a\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    strcat(deep, "\"D\"");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    assert_string_equal(path_of(deep, "D", out, sizeof out),
                        "a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]..");
    char small[6]; /* room for two two-byte characters and half of a third: cut before it */
    assert_string_equal(path_of("{\"\xc3\xa9\xc3\xa9\xc3\xa9\":\"Z\"}", "Z", small, sizeof small),
                        "\xc3\xa9\xc3\xa9");
    assert_int_equal(fr_json_path_at("{\"a\":1}", 7, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

/* A duration of more than a day: most likely a Go time.Duration (nanoseconds) sent as
   milliseconds; stored as sent, with a warning. A long but plausible one gets none. */
static void
test_wire_duration_in_nanoseconds_warned(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    static const char *const lines[] = {
        "{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"t\",\"duration_ms\":1250000000}}",
        "{\"kind\":\"provider\"," TS ",\"data\":{\"latency\":{\"provider_ms\":2400000000}}}",
        "{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"t\",\"duration_ms\":3600000}}",
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(t_prepare(lines[i], &rec, &err), FR_OK);
        if (i == 2) {
            assert_null(rec.misnamed); /* an hour: long, not absurd */
        } else {
            assert_ptr_equal(rec.misnamed, FR_WIRE_LONG);
            assert_true(rec.has_duration);
            char text[320];
            assert_non_null(
                strstr(fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text),
                       "it looks like nanoseconds, as Go's time.Duration marshals"));
        }
        fr_record_clear(&rec);
    }
}

struct good_case {
    const char *line;
    enum fr_kind kind;
    const char *status, *provider, *model, *tool;
    int64_t duration;       /* -1 = none */
    const char *error_code; /* NULL = no error */
};

static const struct good_case good_cases[] = {
    {"{\"kind\":\"conversation\"," TS ",\"conv_id\":\"c1\",\"data\":{\"status\":\"idle\","
     "\"ws_conns\":2,\"stream_running\":true}}",
     FR_KIND_CONVERSATION, "idle", NULL, NULL, NULL, -1, NULL},
    {"{\"kind\":\"turn\"," TS ",\"data\":{\"phase\":\"post_inference\",\"payload\":{},"
     "\"block_hashes\":[\"h1\"]}}",
     FR_KIND_TURN, "post_inference", NULL, NULL, NULL, -1, NULL},
    {"{\"kind\":\"timeline\"," TS ",\"data\":{\"entity_id\":\"m1\",\"version\":4,"
     "\"payload\":[1]}}",
     FR_KIND_TIMELINE, NULL, NULL, NULL, NULL, -1, NULL},
    {"{\"kind\":\"sem\"," TS ",\"stream_id\":\"st\",\"seq\":3,\"data\":{\"type\":\"llm.delta\","
     "\"source\":\"redis\",\"data\":\"x\"}}",
     FR_KIND_SEM, "llm.delta", NULL, NULL, NULL, -1, NULL},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\","
     "\"usage\":{\"input_tokens\":10},\"latency\":{\"provider_ms\":812.5},\"status\":\"ok\"}}",
     FR_KIND_PROVIDER, "ok", "openai", "gpt-4o", NULL, 812, NULL},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"status\":\"error\"},\"error\":{\"message\":"
     "\"429 Too Many Requests\\nretry later\",\"http_status\":429}}",
     FR_KIND_PROVIDER, "error", NULL, NULL, NULL, -1, "provider.rate_limited"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"search\",\"started_ms\":100,"
     "\"ended_ms\":350,\"status\":\"ok\",\"side_effects\":[\"db\"]}}",
     FR_KIND_TOOL, "ok", NULL, NULL, "search", 250, NULL},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"s\",\"duration_ms\":70}}", FR_KIND_TOOL, NULL,
     NULL, NULL, "s", 70, NULL},
    {"{\"kind\":\"middleware\"," TS ",\"data\":{\"chain\":[\"a\"],\"step\":\"a\","
     "\"duration_ms\":4,\"decision\":\"allow\",\"prompt_before\":{\"x\":1}}}",
     FR_KIND_MIDDLEWARE, "allow", NULL, NULL, NULL, 4, NULL},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"http\",\"status\":503,"
     "\"latency_ms\":12}}",
     FR_KIND_TRANSPORT, "503", NULL, NULL, NULL, 12, "transport.http_5xx"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"ws\",\"event\":\"ping\","
     "\"rtt_ms\":3}}",
     FR_KIND_TRANSPORT, "ping", NULL, NULL, NULL, 3, NULL},
    {"{\"kind\":\"runtime\"," TS ",\"data\":{\"pid\":1,\"cpu_pct\":12.5,"
     "\"deps\":{\"redis\":\"down\"}}}",
     FR_KIND_RUNTIME, NULL, NULL, NULL, NULL, -1, NULL},
    {"{\"kind\":\"error\"," TS ",\"data\":{\"panic\":true},\"error\":{\"message\":\"boom\","
     "\"stack\":\"goroutine 1\"}}",
     FR_KIND_ERROR, "panic", NULL, NULL, NULL, -1, "runtime.panic"},
    /* unknown fields anywhere are kept, nulls mean absent, v defaults to 1 */
    {"{\"kind\":\"tool\"," TS ",\"conv_id\":null,\"extra\":{\"a\":[1,2]},\"data\":{\"name\":"
     "\"t\",\"new_field\":true,\"status\":null}}",
     FR_KIND_TOOL, NULL, NULL, NULL, "t", -1, NULL},
};

static void
assert_str_or_null(const char *got, const char *want, size_t i)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
        fail_msg("case %zu: got '%s', want '%s'", i, got ? got : "(null)", want ? want : "(null)");
}

static void
test_wire_every_kind_normalized(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct good_case *c = &good_cases[i];
        struct fr_record rec;
        struct fr_err err = {0};
        if (t_prepare(c->line, &rec, &err) != FR_OK)
            fail_msg("case %zu rejected: %s", i, err.msg);
        assert_int_equal(rec.kind, c->kind);
        assert_int_equal(rec.ts_ms, 1771357445201LL);
        assert_str_or_null(rec.status, c->status, i);
        assert_str_or_null(rec.provider, c->provider, i);
        assert_str_or_null(rec.model, c->model, i);
        assert_str_or_null(rec.tool, c->tool, i);
        assert_int_equal(rec.has_duration, c->duration >= 0);
        if (c->duration >= 0)
            assert_int_equal(rec.duration_ms, c->duration);
        assert_int_equal(rec.has_error, c->error_code != NULL);
        if (c->error_code)
            assert_string_equal(rec.err.code, c->error_code);
        /* the stored body is the envelope as it came */
        assert_int_equal(rec.body_len, strlen(c->line));
        assert_memory_equal(rec.body, c->line, rec.body_len);
        fr_record_clear(&rec);
    }
}

static void
test_wire_ids_and_seq_extracted(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    const char *line = "{\"v\":1,\"kind\":\"sem\"," TS ",\"conv_id\":\"c-4f1a\","
                       "\"session_id\":\"s-77\",\"turn_id\":\"t-3\",\"run_id\":\"r-19\","
                       "\"request_id\":\"req\",\"stream_id\":\"st-2\",\"event_id\":\"e-1\","
                       "\"seq\":193,\"trace_id\":\"4bf9\",\"span_id\":\"00f0\","
                       "\"runtime_key\":\"default@v3\",\"inference_id\":\"inf-5\","
                       "\"conv_extra\":\"\"}";
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    static const char *const want[FR_ID_COUNT] = {"c-4f1a", "s-77",       "t-3",  "r-19",
                                                  "req",    "st-2",       "e-1",  "4bf9",
                                                  "00f0",   "default@v3", "inf-5"};
    for (int i = 0; i < FR_ID_COUNT; i++)
        assert_string_equal(rec.ids[i], want[i]);
    assert_true(rec.has_seq);
    assert_int_equal(rec.seq, 193);
    fr_record_clear(&rec);
}

/* The envelope's names, found by length and then compared: each id at its own index, the fixed
   fields, and nothing else (a producer's own fields, near misses). */
static void
test_wire_field_names(void **state)
{
    (void)state;
    for (int i = 0; i < FR_ID_COUNT; i++)
        assert_int_equal(fr_wire_field(fr_id_names[i], strlen(fr_id_names[i])), i);
    static const struct {
        const char *key;
        int field;
    } cases[] = {
        {"v", FR_WF_V},
        {"kind", FR_WF_KIND},
        {"ts_ms", FR_WF_TS},
        {"seq", FR_WF_SEQ},
        {"data", FR_WF_DATA},
        {"error", FR_WF_ERROR},
        {"tags", FR_WF_TAGS},
        {"", -1},
        {"w", -1},
        {"conv_i", -1},
        {"conv_idx", -1},
        {"Kind", -1},
        {"trace_ix", -1},
        {"inference_ix", -1},
        {"inference_id_", -1},
        {"a_rather_long_key_of_a_producer", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (fr_wire_field(cases[i].key, strlen(cases[i].key)) != cases[i].field)
            fail_msg("'%s': %d, want %d", cases[i].key,
                     fr_wire_field(cases[i].key, strlen(cases[i].key)), cases[i].field);
}

/* A producer's other spelling of an envelope field: named in the error when the field is
   required (kind, ts_ms), carried on the record as a warning when the event is accepted without
   the field it meant, and nothing when the field is there too or the key is the producer's own. */
static void
test_wire_misnamed_fields(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(
        t_prepare("{\"kind\":\"tool\"," TS ",\"conversation_id\":\"c-9\"}", &rec, &err), FR_OK);
    assert_null(rec.ids[FR_ID_CONV]); /* not guessed: stored as sent, with the warning */
    assert_non_null(rec.misnamed);
    assert_string_equal(rec.misnamed, "conversation_id");
    assert_int_equal(rec.misnamed_field, FR_ID_CONV);
    char text[240];
    const char *w = fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text);
    assert_non_null(strstr(w, "conversation_id: not an envelope field"));
    assert_non_null(strstr(w, "did you mean conv_id?"));
    assert_non_null(strstr(w, "no conversation"));
    fr_record_clear(&rec);

    /* the first field in envelope order that is missing (trace_id before data); a null field
       is one not sent */
    static const struct {
        const char *line, *key;
        int field;
    } warned[] = {
        {"{\"kind\":\"tool\"," TS ",\"payload\":{},\"traceId\":\"ab\"}", "traceId", FR_ID_TRACE},
        {"{\"kind\":\"tool\"," TS ",\"payload\":{},\"trace_id\":\"ab\"}", "payload", FR_WF_DATA},
        {"{\"kind\":\"tool\"," TS ",\"conv_id\":null,\"convId\":\"c\"}", "convId", FR_ID_CONV},
    };
    for (size_t i = 0; i < sizeof warned / sizeof warned[0]; i++) {
        assert_int_equal(t_prepare(warned[i].line, &rec, &err), FR_OK);
        assert_non_null(rec.misnamed);
        assert_string_equal(rec.misnamed, warned[i].key);
        assert_int_equal(rec.misnamed_field, warned[i].field);
        fr_record_clear(&rec);
    }

    /* the field is there too, or the key is a producer's own: no warning */
    static const char *const quiet[] = {
        "{\"kind\":\"tool\"," TS ",\"conv_id\":\"c\",\"conversation_id\":\"c\"}",
        "{\"kind\":\"tool\"," TS ",\"data\":{},\"payload\":{}}",
        "{\"kind\":\"tool\"," TS ",\"version\":\"2.1\",\"session\":{},\"parent_span_id\":\"a\"}",
        "{\"kind\":\"tool\"," TS ",\"type\":\"x\",\"timestamp\":1}", /* kind, ts_ms there */
        "{\"kind\":\"tool\"," TS ",\"ConversationId\":\"c\",\"conversation_idx\":\"c\"}",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        assert_int_equal(t_prepare(quiet[i], &rec, &err), FR_OK);
        if (rec.misnamed != NULL)
            fail_msg("%s: warned of '%s'", quiet[i], rec.misnamed);
        fr_record_clear(&rec);
    }

    /* an error event without its failure: missing by any name */
    static const char *const failureless[] = {
        "{\"kind\":\"error\"," TS ",\"data\":{\"message\":\"boom\"}}",
        "{\"kind\":\"error\"," TS ",\"error\":null}",
    };
    for (size_t i = 0; i < sizeof failureless / sizeof failureless[0]; i++) {
        assert_int_equal(t_prepare(failureless[i], &rec, &err), FR_OK);
        assert_non_null(rec.misnamed);
        assert_string_equal(rec.misnamed, "");
        assert_int_equal(rec.misnamed_field, FR_WF_ERROR);
        w = fr_wire_misnamed_text(rec.misnamed, rec.misnamed_field, text, sizeof text);
        assert_non_null(strstr(w, "error: missing; an event of kind error carries its failure"));
        assert_non_null(strstr(w, "runtime.unknown"));
        fr_record_clear(&rec);
    }
    assert_int_equal(
        t_prepare("{\"kind\":\"error\"," TS ",\"error\":{\"message\":\"boom\"}}", &rec, &err),
        FR_OK);
    assert_null(rec.misnamed);
    fr_record_clear(&rec);
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS "}", &rec, &err), FR_OK); /* not needed */
    assert_null(rec.misnamed);
    fr_record_clear(&rec);

    /* required fields: the error names the key the producer sent instead */
    assert_int_equal(t_prepare("{\"kind\":\"tool\",\"timestamp\":1771357445201}", &rec, &err),
                     FR_E_MISSING);
    assert_non_null(strstr(err.msg, "ts_ms: missing (required); the event has 'timestamp'"));
    assert_non_null(strstr(err.msg, "milliseconds"));
    assert_int_equal(t_prepare("{\"type\":\"tool\"," TS ",\"conversationId\":\"c\"}", &rec, &err),
                     FR_E_MISSING);
    assert_non_null(strstr(err.msg, "kind: missing (required); the event has 'type'"));
    assert_int_equal(t_prepare("{\"kind\":\"tool\",\"conversation_id\":\"c\"}", &rec, &err),
                     FR_E_MISSING);
    assert_string_equal(err.msg, "ts_ms: missing (required)"); /* no other key for it */

    /* the spelling quoted is the table's, never the producer's bytes */
    const char *spelled = NULL;
    assert_int_equal(fr_wire_alias("traceId", 7, &spelled), FR_ID_TRACE);
    assert_string_equal(spelled, "traceId");
    assert_int_equal(fr_wire_alias("traceIdentifier", 7, &spelled), FR_ID_TRACE); /* by length */
    assert_int_equal(fr_wire_alias("trace", 5, &spelled), -1);
    assert_string_equal(fr_wire_field_name(FR_ID_INFERENCE), "inference_id");
    assert_string_equal(fr_wire_field_name(FR_WF_TS), "ts_ms");
}

static void
test_wire_error_message_is_first_line_only(void **state)
{
    (void)state;
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(t_prepare("{\"kind\":\"tool\"," TS ",\"error\":{\"message\":\"dial tcp: "
                               "timeout\\ngoroutine 1 [running]\"}}",
                               &rec, &err),
                     FR_OK);
    assert_string_equal(rec.err.message, "dial tcp: timeout");
    assert_string_equal(rec.err.code, "tool.timeout");
    fr_record_clear(&rec);
}

static char *
nested(int depth)
{
    size_t len = strlen("{\"kind\":\"tool\"," TS ",\"extra\":") + 2 * (size_t)depth + 8;
    char *s = fr_malloc(len);
    char *p = s + sprintf(s, "{\"kind\":\"tool\"," TS ",\"extra\":");
    for (int i = 0; i < depth; i++)
        *p++ = '[';
    for (int i = 0; i < depth; i++)
        *p++ = ']';
    strcpy(p, "}");
    return s;
}

/* The serialized envelope equals jansson's own, below, at and past the stack buffer's size. */
static void
test_wire_dump_any_size(void **state)
{
    (void)state;
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    const size_t sizes[] = {0, 100, 8100, 8191, 8192, 8193, 20000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *text = fr_malloc(n + 1), *line = fr_malloc(n + 256);
        for (size_t k = 0; k < n; k++)
            text[k] = (char)('a' + k % 26);
        text[n] = '\0';
        /* spaces in the line: the dump is the compact form, not the bytes as they came */
        snprintf(line, n + 256,
                 "{ \"kind\": \"tool\", " TS ", \"conv_id\": \"c\", \"data\": {\"tool\": \"t\", "
                 "\"args\": {\"q\": \"%s\", \"n\": [1, 2]}}}",
                 text);
        struct fr_event ev = {0};
        struct fr_err err = {0};
        if (fr_wire_parse(line, strlen(line), &lim, &ev, &err) != FR_OK)
            fail_msg("size %zu rejected: %s", n, err.msg);
        size_t len = 0;
        char *got = fr_wire_dump(&ev, &len), *want = json_dumps(ev.root, JSON_COMPACT);
        assert_int_equal(len, strlen(want));
        assert_int_equal(strlen(got), len);
        assert_string_equal(got, want);
        free(got);
        free(want);
        fr_event_clear(&ev);
        free(text);
        free(line);
    }
}

/* ---- fr_json_text against jansson's own dump, on random trees ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Bytes that exercise every path of the escaper: plain runs longer and shorter than a word,
   each escape, other controls and NUL, DEL, 2- to 4-byte UTF-8, '/'. */
static size_t
random_text(char *out, size_t cap)
{
    static const char *const pieces[] = {"a",
                                         "plain text longer than eight bytes",
                                         "\"",
                                         "\\",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "/",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "0123456",
                                         "\x1b[31m"};
    size_t n = 0, parts = rnd(6);
    for (size_t i = 0; i < parts; i++) {
        const char *p = pieces[rnd(sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p);
        if (n + k + 1 >= cap)
            break;
        memcpy(out + n, p, k);
        n += k;
    }
    if (rnd(8) == 0 && n + 1 < cap) /* a NUL inside */
        out[n++] = '\0';
    return n;
}

static json_t *
random_tree(int depth)
{
    char text[128];
    switch (depth > 4 ? rnd(6) : rnd(8)) {
    case 0:
        return json_stringn(text, random_text(text, sizeof text));
    case 1: {
        static const json_int_t ints[] = {0, -1, 7, INT64_MAX, INT64_MIN, 1771357445201};
        return rnd(2) ? json_integer(ints[rnd(6)]) : json_integer((json_int_t)rnd(1000000));
    }
    case 2: {
        static const double reals[] = {0.5, -2.25, 0.1, 1e300, 3.0, 1e-7};
        return json_real(reals[rnd(6)]);
    }
    case 3:
        return json_true();
    case 4:
        return json_false();
    case 5:
        return json_null();
    case 6: {
        json_t *a = json_array();
        for (uint32_t i = rnd(5); i > 0; i--)
            json_array_append_new(a, random_tree(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t i = rnd(40); i > 0; i--) {
            size_t n = random_text(text, sizeof text);
            if (rnd(3) == 0) /* keys one a prefix of another: the sort's tie on length */
                n = rnd(3);
            json_object_setn_new(o, text, n, random_tree(depth + 1));
        }
        return o;
    }
    }
}

/* jansson's text, NULL where jansson refuses */
static char *
jansson_text(const json_t *j, size_t flags, size_t *len)
{
    char *s = json_dumps(j, flags);
    if (s != NULL)
        *len = strlen(s); /* a NUL in the text comes out escaped */
    return s;
}

static void
test_wire_json_text_matches_jansson(void **state)
{
    (void)state;
    const size_t flag_sets[] = {JSON_COMPACT, JSON_COMPACT | JSON_SORT_KEYS,
                                JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY,
                                JSON_COMPACT | JSON_ENCODE_ANY, JSON_INDENT(2)};
    for (int round = 0; round < 3000; round++) {
        json_t *t = random_tree(0);
        for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
            size_t n = 0, want_n = 0;
            char *got = fr_json_text(t, flag_sets[f], &n);
            char *want = jansson_text(t, flag_sets[f], &want_n);
            if (want == NULL) {
                assert_null(got);
                continue;
            }
            assert_non_null(got);
            assert_int_equal(n, want_n);
            assert_memory_equal(got, want, n);
            free(got);
            free(want);
        }
        json_decref(t);
    }
    /* a string that is not UTF-8 (made without jansson's check): no text, as jansson */
    json_t *bad = json_pack("{s:o}", "k", json_stringn_nocheck("ok \xff no", 7));
    size_t n;
    assert_null(json_dumps(bad, JSON_COMPACT));
    assert_null(fr_json_text(bad, JSON_COMPACT, &n));
    json_decref(bad);
    /* nested past the walk's own depth: the rest left to jansson, the same text */
    json_t *deep = json_array(), *at = deep;
    for (int i = 0; i < 600; i++) {
        json_t *next = json_pack("{s:[]}", "k\n");
        json_array_append_new(at, next);
        at = json_object_get(next, "k\n");
    }
    char *got = fr_json_text(deep, JSON_COMPACT, &n), *want = json_dumps(deep, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(deep);
}

static void
test_wire_limits_enforced(void **state)
{
    (void)state;
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_event ev;
    struct fr_err err = {0};
    /* depth: 61 nested arrays under the root is within 64, 70 is not */
    char *ok = nested(61);
    assert_int_equal(fr_wire_parse(ok, strlen(ok), &lim, &ev, &err), FR_OK);
    fr_event_clear(&ev);
    char *deep = nested(70);
    assert_int_equal(fr_wire_parse(deep, strlen(deep), &lim, &ev, &err), FR_E_DEPTH);
    assert_non_null(strstr(err.msg, "64"));
    char *very_deep = nested(5000); /* past jansson's own limit: still a clean error */
    assert_int_equal(fr_wire_parse(very_deep, strlen(very_deep), &lim, &ev, &err), FR_E_DEPTH);
    free(ok);
    free(deep);
    free(very_deep);
    /* line length */
    lim.max_line = 32;
    const char *line = "{\"kind\":\"tool\"," TS ",\"data\":{}}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_E_LIMIT);
    /* value count */
    fr_wire_limits_default(&lim);
    lim.max_fields = 5;
    line = "{\"kind\":\"tool\"," TS ",\"data\":{\"a\":1,\"b\":2,\"c\":3}}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_E_LIMIT);
    /* id length */
    fr_wire_limits_default(&lim);
    lim.max_id_len = 4;
    line = "{\"kind\":\"tool\"," TS ",\"conv_id\":\"c-12345\"}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_E_LIMIT);
    assert_non_null(strstr(err.msg, "conv_id"));
    /* string and key length */
    fr_wire_limits_default(&lim);
    lim.max_string = 8;
    line = "{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"a-long-tool-name\"}}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_E_LIMIT);
    assert_non_null(strstr(err.msg, "a string of 16 bytes, over the 8 byte limit"));
    line = "{\"kind\":\"tool\"," TS ",\"data\":{\"a-very-long-key\":1}}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_E_LIMIT);
    assert_non_null(strstr(err.msg, "a key of 15 bytes"));
    line = "{\"kind\":\"tool\"," TS ",\"data\":{\"name\":\"short\"}}";
    assert_int_equal(fr_wire_parse(line, strlen(line), &lim, &ev, &err), FR_OK);
    fr_event_clear(&ev);
}

/* What every source drops before the parser: a byte order mark, a CR, blank lines. */
static void
test_wire_line_trimmed(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: blank, skipped */
    } cases[] = {
        {"{\"a\":1}", "{\"a\":1}"},
        {"\xef\xbb\xbf{\"a\":1}", "{\"a\":1}"},
        {"\xef\xbb\xbf{\"a\":1}\r", "{\"a\":1}"},
        {" {\"a\":1} \r", " {\"a\":1} "},
        {"\xef\xbb\xbf", NULL},
        {"\xef\xbb\xbf \t\r", NULL},
        {"", NULL},
        {"\r", NULL},
        {"\xef\xbb", "\xef\xbb"},           /* not a whole mark: the parser says why */
        {"x\xef\xbb\xbf", "x\xef\xbb\xbf"}, /* only at the start */
        {"\xef\xbb\xbf\xef\xbb\xbf{}", "\xef\xbb\xbf{}"}, /* one mark */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *line = cases[i].in;
        size_t len = strlen(line);
        bool content = fr_wire_line(&line, &len);
        if (cases[i].out == NULL) {
            assert_false(content);
            continue;
        }
        assert_true(content);
        assert_int_equal(len, strlen(cases[i].out));
        assert_memory_equal(line, cases[i].out, len);
    }
    assert_int_equal(fr_wire_bom("\xef\xbb\xbf[", 4), 3);
    assert_int_equal(fr_wire_bom("\xef\xbb\xbf", 2), 0); /* the length is respected */
    assert_int_equal(fr_wire_bom("[", 1), 0);
}

static void
test_wire_array_element_taken(void **state)
{
    (void)state;
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    json_t *arr = json_loads("[{\"kind\":\"runtime\"," TS "}, 5]", 0, NULL);
    struct fr_event ev;
    struct fr_err err = {0};
    assert_int_equal(fr_wire_take(json_incref(json_array_get(arr, 0)), &lim, &ev, &err), FR_OK);
    assert_int_equal(ev.kind, FR_KIND_RUNTIME);
    fr_event_clear(&ev);
    assert_int_equal(fr_wire_take(json_incref(json_array_get(arr, 1)), &lim, &ev, &err), FR_E_TYPE);
    json_decref(arr);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_bad_lines_rejected_with_field),
        cmocka_unit_test(test_wire_wide_numbers_kept_as_strings),
        cmocka_unit_test(test_wire_lone_surrogates_mended),
        cmocka_unit_test(test_wire_invalid_utf8_mended),
        cmocka_unit_test(test_wire_json_path_at),
        cmocka_unit_test(test_wire_duration_in_nanoseconds_warned),
        cmocka_unit_test(test_wire_every_kind_normalized),
        cmocka_unit_test(test_wire_ids_and_seq_extracted),
        cmocka_unit_test(test_wire_field_names),
        cmocka_unit_test(test_wire_misnamed_fields),
        cmocka_unit_test(test_wire_dump_any_size),
        cmocka_unit_test(test_wire_json_text_matches_jansson),
        cmocka_unit_test(test_wire_error_message_is_first_line_only),
        cmocka_unit_test(test_wire_limits_enforced),
        cmocka_unit_test(test_wire_array_element_taken),
        cmocka_unit_test(test_wire_line_trimmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
