/*
 * tests/test_body.c - request body decompression (agent/body.c,
 * fr_body_inflate) for the encodings the OpenTelemetry Collector can send
 * besides gzip and zstd: snappy (the block format, and the framing format
 * under "snappy" and "x-snappy-framed") and lz4 frames. Each decodes to the
 * exact bytes; corrupt, truncated or oversized input is refused with the
 * error the servers turn into 400 or 413.
 */
#include <lz4frame.h>
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/body.h"
#include "core/crc32c.h"
#include "core/jsonfast.h"
#include "core/mem.h"
#include "core/wire.h"
#include "support/support.h"

/* n bytes of NDJSON-like text that compresses but is not one repeated byte. */
static char *
text(size_t n)
{
    char *t = fr_malloc(n + 1);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = i % 97 == 96 ? '\n' : (char)('a' + (x >> 16) % 8);
    }
    t[n] = '\0';
    return t;
}

static void
inflates_to(const char *enc, const void *in, size_t n, const char *want, size_t want_len)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fr_body_inflate(enc, in, n, 1 << 20, &out, &len), FR_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    free(out);
}

static int
inflate_rc(const char *enc, const void *in, size_t n, size_t max)
{
    char *out = NULL;
    size_t len = 0;
    int rc = fr_body_inflate(enc, in, n, max, &out, &len);
    assert_true(rc != FR_OK || out != NULL);
    free(out);
    return rc;
}

/* CRC-32C's check value (RFC 3720's test vector: 32 zero bytes), and "123456789". */
static void
test_body_crc32c(void **state)
{
    (void)state;
    unsigned char zeros[32] = {0};
    assert_int_equal(fr_crc32c(0, zeros, sizeof zeros), 0x8a9136aa);
    assert_int_equal(fr_crc32c(0, "123456789", 9), 0xe3069283);
    /* continued over two parts = at once */
    assert_int_equal(fr_crc32c(fr_crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
}

static void
test_body_snappy_block_and_framed(void **state)
{
    (void)state;
    size_t n = 200000; /* four chunks of the framing format, stored and compressed */
    char *t = text(n);
    size_t blen = snappy_max_compressed_length(n);
    char *block = fr_malloc(blen);
    assert_int_equal(snappy_compress(t, n, block, &blen), SNAPPY_OK);
    inflates_to("snappy", block, blen, t, n);
    inflates_to("SNAPPY", block, blen, t, n);
    size_t flen;
    uint8_t *framed = t_snappy_framed(t, n, &flen);
    inflates_to("x-snappy-framed", framed, flen, t, n);
    inflates_to("snappy", framed, flen, t, n); /* told apart by its stream identifier */
    /* the block format under the framed name has no stream identifier */
    assert_int_equal(inflate_rc("x-snappy-framed", block, blen, 1 << 20), FR_E_SYNTAX);
    /* the limit: the block's header says its size, refused before inflating; the framed
       stream once its chunks pass it */
    assert_int_equal(inflate_rc("snappy", block, blen, n - 1), FR_E_LIMIT);
    assert_int_equal(inflate_rc("snappy", framed, flen, n - 1), FR_E_LIMIT);
    assert_int_equal(inflate_rc("snappy", "\xff\xff\xff\x7f", 4, 1 << 20), FR_E_LIMIT);
    /* truncated anywhere */
    assert_int_equal(inflate_rc("snappy", block, blen - 1, 1 << 20), FR_E_SYNTAX);
    assert_int_equal(inflate_rc("snappy", framed, flen - 1, 1 << 20), FR_E_SYNTAX);
    assert_int_equal(inflate_rc("snappy", framed, 12, 1 << 20), FR_E_SYNTAX);
    free(framed);
    free(block);
    free(t);
}

/* A stored chunk's byte changed: only its checksum can tell, and it does. */
static void
test_body_snappy_framed_checksum(void **state)
{
    (void)state;
    size_t n = 100000; /* the second chunk is stored (t_snappy_framed) */
    char *t = text(n);
    size_t flen;
    uint8_t *framed = t_snappy_framed(t, n, &flen);
    /* find the stored chunk: walk the chunks after the stream identifier */
    size_t at = 10, stored = 0;
    while (at < flen && stored == 0) {
        size_t clen = framed[at + 1] | (size_t)framed[at + 2] << 8 | (size_t)framed[at + 3] << 16;
        if (framed[at] == 0x01)
            stored = at;
        at += 4 + clen;
    }
    assert_true(stored > 0);
    inflates_to("x-snappy-framed", framed, flen, t, n);
    framed[stored + 8 + 100] ^= 0x01;
    assert_int_equal(inflate_rc("x-snappy-framed", framed, flen, 1 << 20), FR_E_SYNTAX);
    free(framed);
    free(t);
}

/* Chunk types: padding and reserved skippable ones are skipped, reserved unskippable ones
   refused, as is a chunk that claims more than 65,536 bytes. */
static void
test_body_snappy_framed_chunk_types(void **state)
{
    (void)state;
    const char *msg = "{\"v\":1}\n";
    uint32_t crc = fr_crc32c_masked(msg, 8);
    uint8_t s[64];
    size_t n = 0;
    memcpy(s, "\xff\x06\x00\x00sNaPpY", 10);
    n = 10;
    memcpy(s + n, "\x80\x03\x00\x00xyz", 7); /* reserved skippable */
    n += 7;
    memcpy(s + n, "\x01\x0c\x00\x00", 4); /* stored: checksum and 8 bytes */
    s[n + 4] = (uint8_t)crc, s[n + 5] = (uint8_t)(crc >> 8), s[n + 6] = (uint8_t)(crc >> 16);
    s[n + 7] = (uint8_t)(crc >> 24);
    memcpy(s + n + 8, msg, 8);
    n += 16;
    memcpy(s + n, "\xfe\x01\x00\x00\x00", 5); /* padding */
    n += 5;
    inflates_to("x-snappy-framed", s, n, msg, 8);
    uint8_t bad[64];
    memcpy(bad, s, n);
    memcpy(bad + 10, "\x02\x03\x00\x00xyz", 7); /* reserved unskippable */
    assert_int_equal(inflate_rc("x-snappy-framed", bad, n, 1 << 20), FR_E_SYNTAX);
    memcpy(bad, s, n);
    bad[10 + 7 + 1] = 0x0b; /* the stored chunk too short for its checksum and data */
    assert_int_equal(inflate_rc("x-snappy-framed", bad, n, 1 << 20), FR_E_SYNTAX);
    /* a stored chunk of 65,537 bytes */
    size_t big = 10 + 4 + 4 + 65537;
    uint8_t *b = fr_calloc(1, big);
    memcpy(b, "\xff\x06\x00\x00sNaPpY", 10);
    b[10] = 0x01;
    b[11] = (uint8_t)(65541 & 0xff), b[12] = (uint8_t)(65541 >> 8), b[13] = (uint8_t)(65541 >> 16);
    assert_int_equal(inflate_rc("x-snappy-framed", b, big, 1 << 20), FR_E_SYNTAX);
    free(b);
}

static void
test_body_lz4_frames(void **state)
{
    (void)state;
    size_t n = 300000;
    char *t = text(n);
    size_t cap = LZ4F_compressFrameBound(n, NULL) * 2;
    uint8_t *z = fr_malloc(cap);
    /* two frames one after the other, the second with a content checksum */
    size_t a = LZ4F_compressFrame(z, cap, t, n / 3, NULL);
    assert_false(LZ4F_isError(a));
    LZ4F_preferences_t pref = {0};
    pref.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    size_t b = LZ4F_compressFrame(z + a, cap - a, t + n / 3, n - n / 3, &pref);
    assert_false(LZ4F_isError(b));
    inflates_to("lz4", z, a + b, t, n);
    assert_int_equal(inflate_rc("lz4", z, a + b, n - 1), FR_E_LIMIT);
    assert_int_equal(inflate_rc("lz4", z, a + b - 3, 1 << 20), FR_E_SYNTAX); /* truncated */
    z[a + b - 2] ^= 0x10; /* the content checksum */
    assert_int_equal(inflate_rc("lz4", z, a + b, 1 << 20), FR_E_SYNTAX);
    assert_int_equal(inflate_rc("lz4", "not lz4 at all", 14, 1 << 20), FR_E_SYNTAX);
    free(z);
    free(t);
}

static void
test_body_encodings_known(void **state)
{
    (void)state;
    const char *yes[] = {"gzip", "deflate", "zstd", "snappy", "x-snappy-framed", "lz4", "LZ4"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(fr_body_encoding_known(yes[i]));
    const char *no[] = {"br", "compress", "identity", "", "snappy2", "lz4-block"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(fr_body_encoding_known(no[i]));
}

/* What a body's framing made of it: accepted records' lines and rejections' lines. */
struct framed {
    size_t rejected_lines[8], nrejected;
    char first_error[512];
};

static void
on_reject(void *ud, size_t line, const struct fr_err *e)
{
    struct framed *f = ud;
    if (f->nrejected == 0)
        snprintf(f->first_error, sizeof f->first_error, "%s", e->msg);
    if (f->nrejected < 8)
        f->rejected_lines[f->nrejected] = line;
    f->nrejected++;
}

/* body framed with a line limit: returns the accepted records' count, their lines in lines */
static size_t
frame(const char *body, size_t max_line, size_t *lines, struct framed *f)
{
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.red = t_redactor();
    if (max_line)
        cfg.lim.max_line = max_line;
    struct fr_body_result res = {0};
    memset(f, 0, sizeof *f);
    assert_int_equal(fr_body_prepare(body, strlen(body), &cfg, NULL, &res, on_reject, NULL, f),
                     FR_OK);
    size_t n = res.n;
    for (size_t i = 0; i < n && i < 8; i++)
        lines[i] = res.recs[i].line;
    assert_int_equal(res.rejected, f->nrejected);
    fr_body_result_clear(&res);
    return n;
}

/* Pretty-printed events (`jq .`, an editor): taken one after another, numbered by the line
   each starts on; a body that does not parse so is NDJSON, its valid lines kept. */
static void
test_body_pretty_printed_events(void **state)
{
    (void)state;
    size_t lines[8];
    struct framed f;
    static const char one[] = "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445100,\n"
                              "  \"data\": {\"name\": \"search\"}\n}\n";
    assert_int_equal(frame(one, 0, lines, &f), 1);
    assert_int_equal(lines[0], 1);
    assert_int_equal(f.nrejected, 0);
    /* two, the second invalid: said at the line it starts on; a BOM and blank lines first */
    static const char two[] =
        "\xef\xbb\xbf\n\n{\n \"kind\": \"tool\",\n \"ts_ms\": 1771357445100\n}\n"
        "{\n \"kind\": \"tool\",\n \"ts_ms\": \"soon\"\n}\n"
        "{\"kind\": \"tool\",\n \"ts_ms\": 1771357445101}";
    assert_int_equal(frame(two, 0, lines, &f), 2);
    assert_int_equal(lines[0], 3);
    assert_int_equal(lines[1], 11);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 7);
    assert_non_null(strstr(f.first_error, "ts_ms"));
    /* NDJSON whose first line is cut short: per line, the valid line after it kept */
    static const char cut[] = "{\"kind\":\"tool\",\"ts_ms\":17\n"
                              "{\"kind\":\"tool\",\"ts_ms\":1771357445100}\n";
    assert_int_equal(frame(cut, 0, lines, &f), 1);
    assert_int_equal(lines[0], 2);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 1);
    assert_non_null(strstr(f.first_error, "the event does not end on this line"));
    /* a pretty-printed start that does not parse: read as NDJSON, said at its first line */
    static const char bad[] = "{\n \"kind\": \"tool\",\n \"ts_ms\": 17\n"
                              "{\"kind\":\"tool\",\"ts_ms\":1771357445100}\n";
    assert_int_equal(frame(bad, 0, lines, &f), 1);
    assert_int_equal(lines[0], 4);
    assert_int_equal(f.nrejected, 3);
    assert_non_null(strstr(f.first_error, "invalid JSON"));
    assert_non_null(strstr(f.first_error, "pretty-printed over lines that do not parse"));
    /* an event over the line limit is not taken whole either: NDJSON, every line rejected */
    assert_int_equal(frame(one, 40, lines, &f), 0);
    assert_int_equal(f.nrejected, 5);
    /* pretty-printed as Python's json.dumps(indent=2) writes NaN, and a string cut inside an
       emoji: mended as a line is (kept as a string, U+FFFD), each event warned of its own */
    static const char mend[] = "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445100,\n"
                               "  \"data\": {\"score\": NaN}\n}\n"
                               "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445101\n}\n"
                               "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445102,\n"
                               "  \"data\": {\"d\": \"ok \\ud83d\"}\n}\n";
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.red = t_redactor();
    struct fr_body_result res = {0};
    assert_int_equal(fr_body_prepare(mend, strlen(mend), &cfg, NULL, &res, NULL, NULL, NULL),
                     FR_OK);
    assert_int_equal(res.n, 3);
    assert_int_equal(res.rejected, 0);
    assert_ptr_equal(res.recs[0].misnamed, FR_WIRE_WIDE);
    assert_null(res.recs[1].misnamed);
    assert_ptr_equal(res.recs[2].misnamed, FR_WIRE_HALF);
    assert_int_equal(res.recs[2].line, 10);
    fr_body_result_clear(&res);
    /* ordinary NDJSON: by line, as always */
    static const char nd[] = "{\"kind\":\"tool\",\"ts_ms\":1771357445100}\r\n\n"
                             "{\"kind\":\"tool\",\"ts_ms\":1771357445101}\n";
    assert_int_equal(frame(nd, 0, lines, &f), 2);
    assert_int_equal(lines[0], 1);
    assert_int_equal(lines[1], 3);
}

/*
 * Bytes that are not UTF-8 (a C producer's Latin-1 text) in a JSON array body and in
 * pretty-printed events: each stored as U+FFFD and its event warned, as a line is; the
 * warning goes to the element that had them, also after numbers past 64 bits in an earlier
 * element have been quoted (the text grew before them: the first such byte, 2 bytes into its
 * element, would be counted in the element before if the 4 bytes of quotes were not).
 */
static void
test_body_bytes_not_utf8_mended(void **state)
{
    (void)state;
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.red = t_redactor();
    static const char arr[] =
        "[{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"data\":{\"h\":18446744073709551616,"
        "\"g\":NaN}},{\"kind\":\"tool\",\"ts_ms\":1771357445101},"
        "{\"\xe9\":1,\"kind\":\"tool\",\"ts_ms\":1771357445102,\"data\":{\"note\":\"caf\xe9\"}},"
        "{\"kind\":\"tool\",\"ts_ms\":1771357445103,\"data\":{\"h\":-18446744073709551616}}]";
    struct fr_body_result res = {0};
    assert_int_equal(fr_body_prepare(arr, strlen(arr), &cfg, NULL, &res, NULL, NULL, NULL), FR_OK);
    assert_int_equal(res.n, 4);
    assert_int_equal(res.rejected, 0);
    assert_ptr_equal(res.recs[0].misnamed, FR_WIRE_WIDE);
    assert_null(res.recs[1].misnamed);
    assert_ptr_equal(res.recs[2].misnamed, FR_WIRE_BYTES);
    assert_ptr_equal(res.recs[3].misnamed, FR_WIRE_WIDE);
    /* each warning names where in its own element: the first mended, a key itself here */
    assert_string_equal(res.recs[0].mended_at, "data.h");
    assert_null(res.recs[1].mended_at);
    assert_string_equal(res.recs[2].mended_at, "\xef\xbf\xbd");
    assert_string_equal(res.recs[3].mended_at, "data.h");
    char *body = fr_strndup(res.recs[2].body, res.recs[2].body_len);
    assert_non_null(strstr(body, "\"note\":\"caf\xef\xbf\xbd\""));
    free(body);
    fr_body_result_clear(&res);
    static const char pretty[] = "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445100\n}\n"
                                 "{\n  \"kind\": \"tool\",\n  \"ts_ms\": 1771357445101,\n"
                                 "  \"data\": {\"note\": \"cr\xe8me\"}\n}\n";
    assert_int_equal(fr_body_prepare(pretty, strlen(pretty), &cfg, NULL, &res, NULL, NULL, NULL),
                     FR_OK);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.rejected, 0);
    assert_null(res.recs[0].misnamed);
    assert_ptr_equal(res.recs[1].misnamed, FR_WIRE_BYTES);
    assert_string_equal(res.recs[1].mended_at, "data.note");
    assert_int_equal(res.recs[1].line, 5);
    fr_body_result_clear(&res);
}

/* A JSON array that does not parse whole (an element broken, the end cut off, as a file
   being written or a truncated export has it): each element that parses is kept, each
   broken one rejected alone, numbered by element, its line in the error. */
static void
test_body_array_salvaged(void **state)
{
    (void)state;
    size_t lines[8];
    struct framed f;
#define EV(ts) "{\"kind\":\"tool\",\"ts_ms\":177135744510" #ts ",\"conv_id\":\"a\"}"
    /* one element per line, the second broken: the first and third kept */
    static const char mid[] = "[\n" EV(0) ",\n{\"kind\":\"tool\",\"ts_ms\":,},\n" EV(2) "\n]\n";
    assert_int_equal(frame(mid, 0, lines, &f), 2);
    assert_int_equal(lines[0], 1);
    assert_int_equal(lines[1], 3);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 2);
    assert_non_null(strstr(f.first_error, "line 3: invalid JSON at byte 24 of the element"));
    /* the end cut off after a whole element: both kept, the missing ']' said once */
    static const char open[] = "[" EV(0) ",\n" EV(1) ",\n";
    assert_int_equal(frame(open, 0, lines, &f), 2);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 3);
    assert_non_null(strstr(f.first_error, "ends without its ']' after 2 element(s)"));
    /* cut inside the last element: that one rejected as cut short, once */
    static const char inside[] = "[\n" EV(0) ",\n" EV(1) ",\n{\"kind\":\"to";
    assert_int_equal(frame(inside, 0, lines, &f), 2);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 3);
    assert_non_null(strstr(f.first_error, "line 4: the element is cut short by the end"));
    /* arrays one after another (files joined), then an event after them: all kept */
    static const char joined[] = "[" EV(0) "," EV(1) "]\n[\n" EV(2) "\n]\n" EV(3) "\n";
    assert_int_equal(frame(joined, 0, lines, &f), 4);
    assert_int_equal(f.nrejected, 0);
    /* pretty-printed (`jq .`), an element broken: reading goes on at the next element, not
       at an object nested in the broken one */
    static const char pretty[] =
        "[\n"
        "  {\n    \"kind\": \"tool\",\n    \"ts_ms\": 1771357445100\n  },\n"
        "  {\n    \"kind\": \"tool\",\n    \"data\": [\n"
        "      {\"a\": 1}\n    ]\n    \"ts_ms\": 1\n  },\n"
        "  {\n    \"kind\": \"tool\",\n    \"ts_ms\": 1771357445102\n  }\n"
        "]\n";
    assert_int_equal(frame(pretty, 0, lines, &f), 2);
    assert_int_equal(f.nrejected, 1);
    assert_int_equal(f.rejected_lines[0], 2);
    assert_non_null(strstr(f.first_error, "line 6: invalid JSON"));
    /* a member list left open: the error is on the next element's line, which is read */
    static const char open_obj[] = "[\n{\"kind\":\"tool\",\"data\":{\"x\":1},\n" EV(1) "\n]\n";
    assert_int_equal(frame(open_obj, 0, lines, &f), 1);
    assert_int_equal(lines[0], 2);
    assert_int_equal(f.nrejected, 1);
    assert_non_null(strstr(f.first_error, "line 2: invalid JSON"));
    /* not an array of events at all: given up after so many broken elements */
    size_t nbroken = 1500, at = 1;
    char *many = fr_malloc(nbroken * 4 + sizeof EV(9) + 2);
    many[0] = '[';
    for (size_t i = 0; i < nbroken; i++, at += 4)
        memcpy(many + at, "{x,\n", 4);
    strcpy(many + at, EV(9) "]");
    assert_int_equal(frame(many, 0, lines, &f), 0);
    assert_int_equal(f.nrejected, 1002);
    free(many);
    /* a whole array: by element, as before */
    static const char whole[] = "[" EV(0) ",\n" EV(1) "]";
    assert_int_equal(frame(whole, 0, lines, &f), 2);
    assert_int_equal(lines[1], 2);
    assert_int_equal(f.nrejected, 0);
#undef EV
}

/* An array body past FR_JSON_FAST_MAX (simdjson reads it whole, jsonfast.h): every element
   kept, numbered in order; one naming a key twice is left to jansson, and there, as for any
   array body, the last value counts (docs/redaction.md). */
static void
test_body_array_large(void **state)
{
    (void)state;
    char *body = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&body, &blen);
    fputs("[\n", f);
    for (int i = 0; i < 200; i++)
        fprintf(f,
                "%s{\"kind\":\"%s\",%s\"ts_ms\":%lld,\"conv_id\":\"big\",\"data\":{\"name\":"
                "\"lookup\",\"args\":{\"q\":\"caf\\u00e9 \xe2\x82\xac step %d\"}}}",
                i ? ",\n" : "", i == 150 ? "provider" : "tool",
                i == 150 ? "\"kind\":\"tool\"," : "", 1771357445100LL + i, i);
    fputs("\n]\n", f);
    fclose(f);
    assert_true(blen > FR_JSON_FAST_MAX);
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.red = t_redactor();
    struct fr_body_result res = {0};
    struct framed fr = {0};
    assert_int_equal(fr_body_prepare(body, blen, &cfg, NULL, &res, on_reject, NULL, &fr), FR_OK);
    assert_int_equal(fr.nrejected, 0);
    assert_int_equal(res.n, 200);
    for (size_t i = 0; i < res.n; i++) {
        assert_int_equal(res.recs[i].line, i + 1); /* a whole array: by element */
        assert_int_equal(res.recs[i].kind, FR_KIND_TOOL);
        assert_int_equal(res.recs[i].ts_ms, 1771357445100LL + (int64_t)i);
    }
    fr_body_result_clear(&res);
    free(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_crc32c),
        cmocka_unit_test(test_body_snappy_block_and_framed),
        cmocka_unit_test(test_body_snappy_framed_checksum),
        cmocka_unit_test(test_body_snappy_framed_chunk_types),
        cmocka_unit_test(test_body_lz4_frames),
        cmocka_unit_test(test_body_encodings_known),
        cmocka_unit_test(test_body_pretty_printed_events),
        cmocka_unit_test(test_body_bytes_not_utf8_mended),
        cmocka_unit_test(test_body_array_salvaged),
        cmocka_unit_test(test_body_array_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
