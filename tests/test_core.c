/*
 * tests/test_core.c - core utilities: the bounded line reader, time parsing
 * and formatting, error-code names.
 */
#include "tests/support/support.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/dl.h"
#include "core/jsonfast.h"
#include "core/jsonmem.h"
#include "core/linereader.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "core/timeutil.h"
#include "core/utf8.h"

/* Reads all of input through a line reader with max_line; returns "len:text|" per line. */
static char *
read_all(const char *input, size_t input_len, size_t max_line)
{
    /* a temporary file, not a pipe: inputs are larger than a pipe's buffer */
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(fwrite(input, 1, input_len, tmp), input_len);
    fflush(tmp);
    rewind(tmp);
    struct fr_linereader *lr = fr_linereader_new(fileno(tmp), max_line);
    char *out = fr_calloc(1, 4096);
    const char *line;
    size_t len;
    bool too_long;
    uint64_t lineno;
    while (fr_linereader_next(lr, &line, &len, &too_long, &lineno) == 1) {
        size_t o = strlen(out);
        if (too_long)
            snprintf(out + o, 4096 - o, "%llu:LONG(%zu)|", (unsigned long long)lineno, len);
        else
            snprintf(out + o, 4096 - o, "%llu:%.*s|", (unsigned long long)lineno, (int)len, line);
    }
    fr_linereader_free(lr);
    fclose(tmp);
    return out;
}

static void
test_linereader_crlf_blank_and_no_final_newline(void **state)
{
    (void)state;
    const char in[] = "a\r\nbb\n\nccc";
    char *got = read_all(in, sizeof in - 1, 16);
    assert_string_equal(got, "1:a|2:bb|3:|4:ccc|");
    free(got);
}

static void
test_linereader_long_line_skipped_next_read(void **state)
{
    (void)state;
    /* a 100 000-byte line with an 8-byte limit: reported, then the next line is read */
    size_t n = 100000;
    char *in = fr_malloc(n + 16);
    memset(in, 'x', n);
    memcpy(in + n, "\nok\n", 4);
    char *got = read_all(in, n + 4, 8);
    assert_string_equal(got, "1:LONG(100000)|2:ok|");
    free(got);
    free(in);
    /* exactly at the limit is fine, one byte over is not */
    got = read_all("12345678\n123456789\n", 19, 8);
    assert_string_equal(got, "1:12345678|2:LONG(9)|");
    free(got);
}

static void
test_linereader_empty_input_no_lines(void **state)
{
    (void)state;
    char *got = read_all("", 0, 8);
    assert_string_equal(got, "");
    free(got);
}

static void
test_time_parse_forms(void **state)
{
    (void)state;
    int64_t now = 1771357445201LL, t;
    struct fr_err err = {0};
    assert_int_equal(fr_time_parse("2026-02-17T19:44:05.201Z", now, &t, &err), FR_OK);
    assert_int_equal(t, 1771357445201LL);
    assert_int_equal(fr_time_parse("2026-02-17T19:44", now, &t, &err), FR_OK);
    assert_int_equal(t, 1771357440000LL);
    assert_int_equal(fr_time_parse("2026-02-17", now, &t, &err), FR_OK);
    assert_int_equal(t, 1771286400000LL);
    assert_int_equal(fr_time_parse("15m", now, &t, &err), FR_OK);
    assert_int_equal(t, now - 15 * 60000);
    assert_int_equal(fr_time_parse("3d", now, &t, &err), FR_OK);
    assert_int_equal(t, now - 3 * 86400000LL);
    assert_int_equal(fr_time_parse("1771357445201", now, &t, &err), FR_OK);
    assert_int_equal(t, 1771357445201LL);
    assert_int_equal(fr_time_parse("yesterday", now, &t, &err), FR_E_INVALID);
    assert_non_null(strstr(err.msg, "yesterday"));
    assert_int_equal(fr_time_parse("2026-13-01", now, &t, &err), FR_E_INVALID);
    assert_int_equal(fr_time_parse("5x", now, &t, &err), FR_E_INVALID);
    /* seconds where milliseconds belong are refused, as at ingest, not read as 1970 */
    assert_int_equal(fr_time_parse("1771357445", now, &t, &err), FR_E_INVALID);
    assert_non_null(strstr(err.msg, "looks like seconds"));
    assert_non_null(strstr(err.msg, "1771357445000"));
}

static void
test_time_format_round_trip(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(fr_time_format(1771357445201LL, buf, sizeof buf),
                        "2026-02-17T19:44:05.201Z");
    int64_t t;
    assert_int_equal(fr_time_parse(buf, 0, &t, NULL), FR_OK);
    assert_int_equal(t, 1771357445201LL);
}

static void
test_err_names_stable(void **state)
{
    (void)state;
    assert_string_equal(fr_rc_name(FR_E_MISSING), "missing_field");
    assert_string_equal(fr_rc_name(FR_E_TYPE), "wrong_type");
    assert_string_equal(fr_rc_name(FR_E_KIND), "unknown_kind");
    assert_string_equal(fr_rc_name(-999), "unknown");
    for (int rc = FR_RC_MIN; rc <= 0; rc++)
        assert_true(strlen(fr_rc_name(rc)) > 0 && strlen(fr_strerror(rc)) > 0);
    struct fr_err err;
    assert_int_equal(fr_err_set(&err, FR_E_LIMIT, "line %d", 7), FR_E_LIMIT);
    assert_string_equal(err.msg, "line 7");
    assert_int_equal(fr_err_set(NULL, FR_E_IO, "ignored"), FR_E_IO);
}

/* A key built of parts: each part copied while it fits, the string always ended, never past
   its buffer (the metrics' and rollups' keys of long labels). */
static void
test_str_append_cuts_at_capacity(void **state)
{
    (void)state;
    char buf[8] = "";
    size_t at = 0;
    fr_str_append(buf, sizeof buf, &at, "ab");
    fr_str_append(buf, sizeof buf, &at, "");
    fr_str_append(buf, sizeof buf, &at, "cd");
    assert_string_equal(buf, "abcd");
    assert_int_equal(at, 4);
    fr_str_append(buf, sizeof buf, &at, "efghij");
    assert_string_equal(buf, "abcdefg"); /* 7 bytes and the NUL */
    assert_int_equal(at, 7);
    fr_str_append(buf, sizeof buf, &at, "k");
    assert_string_equal(buf, "abcdefg");
    assert_int_equal(at, 7);
}

/* The archive segments' conv_id filters depend on this hash: the FNV reference values. */
static void
test_fnv1a64_reference_values(void **state)
{
    (void)state;
    assert_int_equal(fr_fnv1a64(""), 0xcbf29ce484222325ULL);
    assert_int_equal(fr_fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
    assert_int_equal(fr_fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

/* Text made valid UTF-8: each byte that is not part of a character as U+FFFD, characters
   and NUL bytes kept, the offsets of what was written said in order. */
static void
test_utf8_sanitize_offsets(void **state)
{
    (void)state;
    static const char in[] = "caf\xe9 \xc3\xa9\0\xe2\x82 \xed\xa0\x80!";
    size_t n, *at, nat;
    char *out = fr_utf8_sanitize_n(in, sizeof in - 1, &n, &at, &nat);
    static const char want[] = "caf\xef\xbf\xbd \xc3\xa9\0\xef\xbf\xbd\xef\xbf\xbd "
                               "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, n);
    assert_true(fr_utf8_valid(out, n));
    assert_int_equal(nat, 6); /* é, the cut euro sign's 2 bytes, the encoded surrogate's 3 */
    assert_int_equal(at[0], 3);
    assert_int_equal(at[1], 10);
    assert_int_equal(at[2], 13);
    for (size_t i = 0; i < nat; i++)
        assert_memory_equal(out + at[i], "\xef\xbf\xbd", 3);
    free(at);
    free(out);
    out = fr_utf8_sanitize("ok \xc3\xa9");
    assert_string_equal(out, "ok \xc3\xa9");
    free(out);
}

/*
 * One log call, one line: a newline, carriage return or escape sequence in
 * a message (an id or name a producer chose) is written visibly, so it can
 * neither forge a second log line nor drive the reader's terminal.
 */
static void
test_log_line_cannot_be_forged(void **state)
{
    (void)state;
    char out[128];
    fr_escape_controls("a\nb\x1b[2J\r\tc\xc2\x9b", 12, false, out, sizeof out);
    assert_string_equal(out, "a\\x0ab\\x1b[2J\\x0d\tc\\u009b");
    fr_escape_controls("x\ny", 3, true, out, sizeof out);
    assert_string_equal(out, "x\ny");
    fr_escape_controls("\x1b\x1b\x1b\x1b", 4, false, out, 10); /* cut, never overrun */
    assert_true(strlen(out) < 10);
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    fr_log(FR_LOG_ERROR, "test", "conversation %s failed",
           "c-1\n2026-01-01T00:00:00Z error agent: forged");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    assert_non_null(strstr(buf, "c-1\\x0a2026"));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
}

/*
 * jansson's allocations inside a region come from the region and are
 * released at its end, nesting included; a tree from before the region is
 * freed by free() when dropped inside it (LeakSanitizer and valgrind would
 * report it otherwise), and a long string's copy stays with malloc.
 */
static void
test_json_region_owns_and_releases(void **state)
{
    (void)state;
    json_t *before = json_pack("{s:s,s:[i,i]}", "k", "value before", "a", 1, 2);
    assert_false(fr_json_region_owns(before));
    assert_int_equal(fr_json_region_used(), 0);
    assert_true(fr_json_region_spills() == SIZE_MAX); /* no region */
    fr_json_region_begin();
    json_t *tree =
        json_pack("{s:s,s:{s:[s,s]}}", "kind", "provider", "data", "messages", "hello", "world");
    assert_true(fr_json_region_owns(tree));
    assert_int_equal(fr_json_region_spills(), 0); /* all of it from the chunks */
    assert_true(fr_json_region_used() > 0);
    json_object_set_new(before, "late", json_string("from the region"));
    json_object_del(before, "late"); /* a region value dropped from an older tree */
    json_decref(before);             /* freed by free(), inside the region */
    fr_json_region_begin();          /* nested: the outer region goes on */
    json_t *inner = json_string("inner");
    fr_json_region_end();
    assert_true(fr_json_region_owns(inner));
    char *big = fr_malloc(FR_JSON_REGION_CHUNK);
    memset(big, 'x', FR_JSON_REGION_CHUNK - 1);
    big[FR_JSON_REGION_CHUNK - 1] = '\0';
    json_t *long_text = json_string(big); /* its copy is too big for a chunk: malloc'd */
    free(big);
    assert_false(fr_json_region_owns(json_string_value(long_text)));
    assert_int_equal(fr_json_region_spills(), 1); /* and counted: its free may not be skipped */
    assert_int_equal(strlen(json_string_value(long_text)), FR_JSON_REGION_CHUNK - 1);
    json_decref(long_text);
    int depth = fr_json_region_suspend(); /* what a callback keeps beyond the region */
    json_t *kept = json_string("kept");
    fr_json_region_resume(depth);
    assert_false(fr_json_region_owns(kept));
    assert_true(fr_json_region_owns(json_string_value(json_object_get(tree, "kind"))));
    json_decref(inner);
    json_decref(tree);
    fr_json_region_end();
    assert_string_equal(json_string_value(kept), "kept");
    json_decref(kept);
    assert_int_equal(fr_json_region_used(), 0);
    assert_true(fr_json_region_spills() == SIZE_MAX);
    fr_json_region_begin(); /* a new region counts from 0 */
    assert_int_equal(fr_json_region_spills(), 0);
    fr_json_region_end();
    assert_false(fr_json_region_owns(tree));
    json_t *after = json_string("after");
    assert_false(fr_json_region_owns(after));
    json_decref(after);
}

/*
 * fr_json_region_drop skips the walk through a tree that is all the
 * region's (a node it holds another reference to keeps its count: nothing
 * was released one by one), and is json_decref when the region spilled to
 * malloc (the tree is walked and its malloc'd parts freed) or outside one.
 */
static void
test_json_region_drop(void **state)
{
    (void)state;
    fr_json_region_begin();
    json_t *shared = json_string("held twice");
    json_t *tree = json_pack("{s:s,s:[O]}", "kind", "provider", "list", shared);
    assert_int_equal(shared->refcount, 2);
    fr_json_region_drop(tree);
    assert_int_equal(shared->refcount, 2); /* not walked: the region's end releases it */
    json_t *tree2 = json_pack("{s:[O]}", "list", shared);
    assert_int_equal(shared->refcount, 3);
    char *big = fr_malloc(FR_JSON_REGION_CHUNK);
    memset(big, 'x', FR_JSON_REGION_CHUNK - 1);
    big[FR_JSON_REGION_CHUNK - 1] = '\0';
    json_object_set_new(tree2, "long", json_string(big)); /* malloc'd: the region spilled */
    free(big);
    assert_int_equal(fr_json_region_spills(), 1);
    fr_json_region_drop(tree2); /* walked: the long string freed (LeakSanitizer, valgrind) */
    assert_int_equal(shared->refcount, 2);
    fr_json_region_end();
    json_t *outside = json_pack("{s:O}", "k", json_null());
    json_t *v = json_string("outside a region");
    json_object_set(outside, "v", v);
    fr_json_region_drop(outside); /* json_decref */
    assert_int_equal(v->refcount, 1);
    json_decref(v);
}

/*
 * The simdjson parser builds exactly jansson's tree (the same values, types,
 * key order: the compact dumps are byte for byte equal), and leaves to
 * jansson every line it would refuse or read differently.
 */
/* Whether simdjson decided the text (load: fr_json_fast_load or _doc); when it did, jansson
   agrees on the tree. */
static bool
fast_vs_jansson_with(json_t *(*load)(const char *, size_t), const char *text, size_t len)
{
    json_t *fast = load(text, len);
    json_t *slow = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    bool decided = fast != NULL;
    if (fast != NULL) {
        if (slow == NULL)
            fail_msg("%.60s: simdjson accepted what jansson refuses", text);
        char *a = json_dumps(fast, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(slow, JSON_COMPACT | JSON_ENCODE_ANY);
        if (strcmp(a, b) != 0 || !json_equal(fast, slow))
            fail_msg("%.60s: simdjson %s, jansson %s", text, a, b);
        free(a);
        free(b);
    }
    json_decref(fast);
    json_decref(slow);
    return decided;
}

static bool
fast_vs_jansson(const char *text, size_t len)
{
    return fast_vs_jansson_with(fr_json_fast_load, text, len);
}

static void
test_json_fast_matches_jansson(void **state)
{
    (void)state;
    /* 1: simdjson decides (and must agree); 0: left to jansson; -1: either */
    static const struct {
        const char *text;
        int fast;
    } cases[] = {
        {"{\"kind\":\"provider\",\"data\":{\"model\":\"m\",\"usage\":{\"input_tokens\":12}}}", 1},
        {"{ \"a\" :\t[ 1 , 2 ,\r\n{\"b\":null} ] , \"c\":true,\"d\":false }\n", 1},
        {"[1,\"two\",3.5,[],{}]", 1},
        {"{\"z\":1,\"a\":2,\"m\":3}", 1},
        {"{\"a\":1,\"a\":2}", 0},
        {"{\"a\":{\"b\":1,\"b\":1}}", 0},
        {"{\"s\":\"x\\u0000y\"}", 0},
        {"{\"k\\u0000\":1}", 0},
        {"{\"n\":9223372036854775807,\"m\":-9223372036854775808}", 1},
        {"{\"n\":9223372036854775808}", 0},
        {"{\"n\":18446744073709551616}", 0},
        {"{\"n\":123456789012345678901234567890}", 0},
        {"{\"r\":1e400}", 0},
        {"{\"r\":-1e400}", 0},
        {"{\"r\":1e-400}", -1},
        {"{\"r\":-0,\"s\":-0.0,\"t\":0e0}", -1},
        {"{\"r\":1.0,\"s\":1E2,\"t\":1e+2,\"u\":0.1,\"v\":-2.5e-3}", 1},
        {"{\"r\":1.7976931348623157e308,\"s\":5e-324,\"t\":2.2250738585072014e-308}", 1},
        {"{\"r\":0.30000000000000004,\"s\":123456789.123456789}", 1},
        {"{\"s\":\"\\ud83d\\ude00 \\u00e9 \\u20ac\"}", 1},
        {"{\"s\":\"\\ud800\"}", -1},
        {"{\"s\":\"\\udc00x\"}", -1},
        {"{\"s\":\"\\ud800\\u0041\"}", -1},
        {"{\"s\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", 1},
        {"{\"s\":\"\xff\"}", 0},
        {"{\"s\":\"\xc3\"}", 0},
        {"{\"s\":\"\xed\xa0\x80\"}", 0}, /* a surrogate encoded in UTF-8 */
        {"{\"s\":\"a\x01"
         "b\"}",
         0},
        {"{\"s\":\"\\b\\f\\n\\r\\t\\\"\\\\\\/\"}", 1},
        {"{\"s\":\"\\x\"}", 0},
        {"\"string\"", 0},
        {"42", 0},
        {"null", 0},
        {"{} x", 0},
        {"{}{}", 0},
        {"{}  \n", 1},
        {"\xef\xbb\xbf{}", 0},
        {"", 0},
        {"   ", 0},
        {"{\"n\":01}", 0},
        {"{\"n\":1.}", 0},
        {"{\"n\":.5}", 0},
        {"{\"n\":+1}", 0},
        {"{\"n\":-}", 0},
        {"{\"n\":NaN}", 0},
        {"{\"a\":[1,]}", 0},
        {"{\"a\":1,}", 0},
        {"{'a':1}", 0},
        {"{\"a\" 1}", 0},
        {"[", 0},
        {"{\"a\":tru}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool decided = fast_vs_jansson(cases[i].text, strlen(cases[i].text));
        if (cases[i].fast >= 0 && decided != (cases[i].fast == 1))
            fail_msg("%.60s: simdjson %s, expected otherwise", cases[i].text,
                     decided ? "decided" : "left it to jansson");
    }
    /* nested past simdjson's depth (1024), within jansson's (2048) */
    size_t depth = 1500, n = 2 * depth;
    char *deep = fr_malloc(n + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[n] = '\0';
    assert_false(fast_vs_jansson(deep, n));
    free(deep);
    /* a line past FR_JSON_FAST_MAX: jansson's */
    size_t big = FR_JSON_FAST_MAX + 100;
    char *line = fr_malloc(big + 1);
    memset(line, 'x', big);
    memcpy(line, "{\"s\":\"", 6);
    memcpy(line + big - 2, "\"}", 2);
    line[big] = '\0';
    assert_false(fast_vs_jansson(line, big));
    line[FR_JSON_FAST_MAX - 2] = '"'; /* one of exactly the limit: simdjson's */
    line[FR_JSON_FAST_MAX - 1] = '}';
    assert_true(fast_vs_jansson(line, FR_JSON_FAST_MAX));
    free(line);
    /* not NUL-terminated: only len bytes are read */
    assert_true(fast_vs_jansson("{\"a\":1}GARBAGE", 7));
}

/*
 * A whole request body (an OTLP/JSON export) past FR_JSON_FAST_MAX: simdjson
 * decides it with a parser of its own, to the same tree as jansson's, and
 * leaves to jansson what it leaves on a line (a duplicate key, a NUL, an
 * integer past int64, bytes that are not UTF-8, a byte order mark) however
 * deep in the document, and a body past FR_JSON_FAST_DOC_MAX.
 */
/* The names of the items of (a part of) an OTLP-shaped document in order, each with its
   outer and middle elements' tags, as "r0/s0:i0 ..." (appended to *out). */
static void
parts_items(const json_t *doc, char **out, size_t *n)
{
    size_t i, j, k;
    json_t *r, *m, *it;
    json_array_foreach(json_object_get(doc, "resourceSpans"), i, r)
    {
        const char *rt = json_string_value(json_object_get(json_object_get(r, "resource"), "tag"));
        assert_non_null(rt);
        json_array_foreach(json_object_get(r, "scopeSpans"), j, m)
        {
            const char *mt = json_string_value(json_object_get(m, "schemaUrl"));
            assert_non_null(mt);
            json_array_foreach(json_object_get(m, "spans"), k, it)
            {
                char *next = fr_asprintf("%s%s/%s:%s ", *out ? *out : "", rt, mt,
                                         json_string_value(json_object_get(it, "name")));
                free(*out);
                *out = next;
                (*n)++;
            }
        }
    }
}

/* An OTLP-shaped JSON document: resources r0..r3 (r1: a scope without spans, then 300
   spans; r2: no scopeSpans at all), span i named "i<i>"; `extra` is put in span 900's object
   (a duplicate key, say). */
static char *
parts_doc(const char *extra)
{
    const size_t counts[4][2] = {{700, 0}, {0, 300}, {0, 0}, {30, 0}};
    char *d = fr_strdup("{\"resourceSpans\":[");
    size_t i = 0;
    for (int r = 0; r < 4; r++) {
        char *next = fr_asprintf("%s%s{\"resource\":{\"tag\":\"r%d\"}%s", d, r ? "," : "", r,
                                 r == 2 ? "" : ",\"scopeSpans\":[");
        free(d);
        d = next;
        for (int m = 0; r != 2 && m < (r == 1 ? 2 : 1); m++) {
            next = fr_asprintf("%s%s{\"schemaUrl\":\"s%d\",\"spans\":[", d, m ? "," : "", m);
            free(d);
            d = next;
            for (size_t k = 0; k < counts[r][m]; k++, i++) {
                next = fr_asprintf("%s%s{\"name\":\"i%zu\",\"n\":%zu%s}", d, k ? "," : "", i, i,
                                   i == 900 && extra ? extra : "");
                free(d);
                d = next;
            }
            next = fr_asprintf("%s]}", d);
            free(d);
            d = next;
        }
        next = fr_asprintf("%s%s}", d, r == 2 ? "" : "]");
        free(d);
        d = next;
    }
    char *next = fr_asprintf("%s],\"other\":1}", d);
    free(d);
    return next;
}

/*
 * A document read out in parts (fr_json_fast_parts_open): every item once,
 * in order, at most max in a part, each under copies of its outer and middle
 * elements' other members; the same items as the document read whole. A
 * part holding a duplicate key is not built (*bad): jansson reads such a
 * body; a body of another shape, or a byte order mark, is not opened.
 */
static void
test_json_fast_parts(void **state)
{
    (void)state;
    char *doc = parts_doc(NULL), *want = NULL, *got = NULL;
    size_t len = strlen(doc), n = 0;
    json_t *whole = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(whole);
    parts_items(whole, &want, &n);
    assert_int_equal(n, 1030);
    json_decref(whole);
    struct fr_json_fast_parts *p =
        fr_json_fast_parts_open(doc, len, "resourceSpans", "scopeSpans", "spans");
    assert_non_null(p);
    const size_t sizes[3] = {512, 512, 6};
    int bad;
    n = 0;
    for (size_t k = 0; k < 3; k++) {
        json_t *part = fr_json_fast_parts_next(p, 512, &bad);
        assert_non_null(part);
        assert_int_equal(bad, 0);
        assert_null(json_object_get(part, "other")); /* the root's other members: not read */
        size_t before = n;
        parts_items(part, &got, &n);
        assert_int_equal(n - before, sizes[k]);
        json_decref(part);
    }
    assert_null(fr_json_fast_parts_next(p, 512, &bad));
    assert_int_equal(bad, 0);
    fr_json_fast_parts_close(p);
    assert_string_equal(got, want);
    assert_non_null(strstr(got, "r0/s0:i699 r1/s1:i700 "));
    assert_non_null(strstr(got, "r1/s1:i999 r3/s0:i1000 "));
    free(got);
    free(want);
    free(doc);
    /* a key named twice in span 900 (the second part): the first part is built, the second
       is not */
    doc = parts_doc(",\"name\":\"again\"");
    p = fr_json_fast_parts_open(doc, strlen(doc), "resourceSpans", "scopeSpans", "spans");
    assert_non_null(p);
    json_t *part = fr_json_fast_parts_next(p, 512, &bad);
    assert_non_null(part);
    json_decref(part);
    assert_null(fr_json_fast_parts_next(p, 512, &bad));
    assert_int_equal(bad, 1);
    fr_json_fast_parts_close(p);
    free(doc);
    /* a list named twice: jansson's reader takes the last, simdjson's look-up the first; the
       part is not built (a middle or inner list), or the body not opened (the outer list) */
    const char *twice[] = {
        "{\"resourceSpans\":[{\"scopeSpans\":[],\"scopeSpans\":[{\"spans\":[{}]}]}]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[],\"spans\":[{}]}]}]}"};
    for (size_t i = 0; i < 2; i++) {
        p = fr_json_fast_parts_open(twice[i], strlen(twice[i]), "resourceSpans", "scopeSpans",
                                    "spans");
        assert_non_null(p);
        assert_null(fr_json_fast_parts_next(p, 512, &bad));
        assert_int_equal(bad, 1);
        fr_json_fast_parts_close(p);
    }
    const char *outer2 = "{\"resourceSpans\":[],\"resourceSpans\":[{}]}";
    assert_null(
        fr_json_fast_parts_open(outer2, strlen(outer2), "resourceSpans", "scopeSpans", "spans"));
    /* other shapes, a byte order mark, invalid JSON: not opened */
    const char *no[] = {"{\"resourceSpans\":{}}",
                        "{\"resourceSpans\":[1]}",
                        "{\"resourceSpans\":[{\"scopeSpans\":{}}]}",
                        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":7}]}]}",
                        "{\"resourceLogs\":[]}",
                        "\xef\xbb\xbf{\"resourceSpans\":[]}",
                        "{\"resourceSpans\":[}",
                        "[]"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_null(
            fr_json_fast_parts_open(no[i], strlen(no[i]), "resourceSpans", "scopeSpans", "spans"));
}

static void
test_json_fast_doc_matches_jansson(void **state)
{
    (void)state;
    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);
    fputs("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[", f);
    for (int i = 0; i < 400; i++)
        fprintf(
            f,
            "%s{\"traceId\":\"%032x\",\"startTimeUnixNano\":\"1771357449%09d\",\"kind\":%d,"
            "\"attributes\":[{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":%d}},"
            "{\"key\":\"score\",\"value\":{\"doubleValue\":%d.25}},{\"key\":\"ok\",\"value\":"
            "{\"boolValue\":%s}},{\"key\":\"prompt\",\"value\":{\"stringValue\":\"caf\\u00e9 "
            "\\ud83d\\ude00 \xe2\x82\xac \\\"q\\\" %d\"}}],\"events\":[],\"status\":null}",
            i ? "," : "", i, i, i % 5, i * 7, i, i % 2 ? "true" : "false", i);
    fputs("]}]}]}", f);
    fclose(f);
    assert_true(len > FR_JSON_FAST_MAX);
    assert_true(fast_vs_jansson_with(fr_json_fast_load_doc, doc, len));
    assert_false(fast_vs_jansson(doc, len)); /* a line that long: left to jansson */
    /* what simdjson leaves to jansson, in the middle of the document */
    static const struct {
        const char *from, *to;
    } left[] = {
        {"\"kind\":2,", "\"kind\":2,\"kind\":3,"},        /* a duplicate key */
        {"\"kind\":2,", "\"kind\":\"a\\u0000b\","},       /* a NUL in a string */
        {"\"kind\":2,", "\"kind\":9223372036854775808,"}, /* past int64 */
        {"\"kind\":2,", "\"kind\":\"\xff\","},            /* not UTF-8 */
        {"\"kind\":2,", "\"kind\":2,,"},                  /* not JSON */
    };
    const char *at = strstr(doc + len / 2, "\"kind\":2,");
    assert_non_null(at);
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        size_t head = (size_t)(at - doc), from = strlen(left[i].from), to = strlen(left[i].to);
        char *bad = fr_malloc(len - from + to);
        memcpy(bad, doc, head);
        memcpy(bad + head, left[i].to, to);
        memcpy(bad + head + to, at + from, len - head - from);
        json_t *fast = fr_json_fast_load_doc(bad, len - from + to);
        if (fast != NULL)
            fail_msg("%s: simdjson decided it", left[i].to);
        free(bad);
    }
    char *bom = fr_malloc(len + 3);
    memcpy(bom, "\xef\xbb\xbf", 3);
    memcpy(bom + 3, doc, len);
    assert_null(fr_json_fast_load_doc(bom, len + 3));
    free(bom);
    free(doc);
    /* past FR_JSON_FAST_DOC_MAX: jansson's */
    size_t huge = FR_JSON_FAST_DOC_MAX + 1;
    char *h = fr_malloc(huge);
    memset(h, ' ', huge);
    memcpy(h, "{}", 2);
    assert_null(fr_json_fast_load_doc(h, huge));
    json_t *at_max = fr_json_fast_load_doc(h, FR_JSON_FAST_DOC_MAX);
    assert_non_null(at_max);
    json_decref(at_max);
    free(h);
}

/*
 * A region holds at most FR_JSON_REGION_MAX bytes: past it, allocations
 * are malloc'd (and freed) as outside one, so a huge request cannot grow
 * the agent's memory through it.
 */
static void
test_json_region_bounded(void **state)
{
    (void)state;
    fr_json_region_begin();
    json_t *arr = json_array();
    char text[200];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    size_t n = 2 * FR_JSON_REGION_MAX / sizeof text, owned = 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(text));
    for (size_t i = 0; i < n; i++)
        owned += fr_json_region_owns(json_string_value(json_array_get(arr, i)));
    assert_true(fr_json_region_used() <= FR_JSON_REGION_MAX);
    assert_true(owned > n / 4);
    assert_true(owned < n);
    assert_false(fr_json_region_owns(json_string_value(json_array_get(arr, n - 1))));
    json_decref(arr);
    fr_json_region_end();
    assert_int_equal(fr_json_region_used(), 0);
}

/* Two tables of libm's functions (core/dl.h), one of them naming a function libm lacks, and
   one of a library that is not there. */
#define T_LIBM_FUNCTIONS(X) X(cos) X(sqrt)
FR_DL_DECLARE(tlibm, T_LIBM_FUNCTIONS)
FR_DL_DEFINE(tlibm, T_LIBM_FUNCTIONS, "libm.so.6", "the test's cosines")

double fr_test_no_such_function(double);
#define T_LACKS_FUNCTIONS(X) X(cos) X(fr_test_no_such_function)
FR_DL_DECLARE(tlacks, T_LACKS_FUNCTIONS)
FR_DL_DEFINE(tlacks, T_LACKS_FUNCTIONS, "libm.so.6", "the test's lookups")

#define T_NONE_FUNCTIONS(X) X(cos)
FR_DL_DECLARE(tnone, T_NONE_FUNCTIONS)
FR_DL_DEFINE(tnone, T_NONE_FUNCTIONS, "libflightrec-test-none.so.0", "the test's features")

/* A library opened when first needed: its functions through the table; a library that is
   missing, or lacks a function, is a clear error naming it and what needs it, every time. */
static void
test_dl_opens_when_needed(void **state)
{
    (void)state;
    struct fr_err err = {0};
    assert_int_equal(fr_tlibm_load(&err), FR_OK);
    volatile double x = 0.0; /* not folded at compile time */
    assert_true(fr_tlibm()->cos(x) == 1.0);
    assert_true(fr_tlibm()->sqrt(x + 16.0) == 4.0);
    assert_int_equal(fr_tlibm_load(NULL), FR_OK); /* again: the same table */

    assert_int_equal(fr_tlacks_load(&err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "libm.so.6, needed for the test's lookups, lacks the function "
                                    "fr_test_no_such_function"));

    for (int i = 0; i < 2; i++) { /* the first outcome, kept */
        fr_err_clear(&err);
        assert_int_equal(fr_tnone_load(&err), FR_E_CONFIG);
        assert_non_null(strstr(err.msg, "libflightrec-test-none.so.0, needed for the test's "
                                        "features, could not be opened: "));
        assert_non_null(strstr(err.msg, "No such file"));
    }

    /* a call through a table whose library cannot be opened (no fr_*_load first: a bug) exits
       70 with the message, instead of calling through a NULL pointer */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        volatile double y = fr_tnone()->cos(0.0);
        (void)y;
        _exit(0);
    }
    close(fds[1]);
    char out[600] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 70);
    assert_non_null(strstr(out, "flightrec: libflightrec-test-none.so.0, needed for the test's "
                                "features, could not be opened: "));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linereader_crlf_blank_and_no_final_newline),
        cmocka_unit_test(test_linereader_long_line_skipped_next_read),
        cmocka_unit_test(test_linereader_empty_input_no_lines),
        cmocka_unit_test(test_time_parse_forms),
        cmocka_unit_test(test_time_format_round_trip),
        cmocka_unit_test(test_err_names_stable),
        cmocka_unit_test(test_str_append_cuts_at_capacity),
        cmocka_unit_test(test_fnv1a64_reference_values),
        cmocka_unit_test(test_utf8_sanitize_offsets),
        cmocka_unit_test(test_log_line_cannot_be_forged),
        cmocka_unit_test(test_json_region_owns_and_releases),
        cmocka_unit_test(test_json_region_drop),
        cmocka_unit_test(test_json_fast_matches_jansson),
        cmocka_unit_test(test_json_fast_doc_matches_jansson),
        cmocka_unit_test(test_json_fast_parts),
        cmocka_unit_test(test_json_region_bounded),
        cmocka_unit_test(test_dl_opens_when_needed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
