/*
 * agent/body.c - request body framing: decompression, NDJSON or JSON array,
 * each envelope through fr_ingest_prepare (see agent/body.h).
 */
#include "agent/body.h"

#include <jansson.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#include "core/crc32c.h"
#include "core/jsonfast.h"
#include "core/jsonmem.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "core/wire.h"

/* Doubles the output buffer up to max + 1 bytes (one past the limit tells it was exceeded). */
static bool
out_grow(char **buf, size_t *cap, size_t max)
{
    if (*cap >= max + 1)
        return false;
    *cap = *cap * 2 > max + 1 ? max + 1 : *cap * 2;
    *buf = fr_realloc(*buf, *cap);
    return true;
}

/* zlib's inflate with these window bits into *buf (grown up to max + 1 bytes). */
static int
zlib_inflate(const char *in, size_t n, int bits, size_t max, char **buf, size_t *cap, size_t *len)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, bits) != Z_OK)
        return FR_E_INVALID;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    int rc = FR_OK;
    for (;;) {
        if (*len == *cap && !out_grow(buf, cap, max)) {
            rc = FR_E_LIMIT;
            break;
        }
        zs.next_out = (Bytef *)*buf + *len;
        zs.avail_out = (uInt)(*cap - *len);
        int z = inflate(&zs, Z_NO_FLUSH);
        *len = *cap - zs.avail_out;
        if (z == Z_STREAM_END)
            break;
        if (z != Z_OK && !(z == Z_BUF_ERROR && zs.avail_out == 0)) {
            rc = FR_E_SYNTAX;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

bool
fr_body_encoding_known(const char *enc)
{
    static const char *const known[] = {"zstd", "gzip", "deflate", "snappy", "x-snappy-framed",
                                        "lz4"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcasecmp(enc, known[i]) == 0)
            return true;
    return false;
}

/* The out buffer holds at least need bytes (FR_E_LIMIT past max), grown as out_grow grows it. */
static int
out_reserve(char **buf, size_t *cap, size_t need, size_t max)
{
    if (need > max)
        return FR_E_LIMIT;
    while (*cap < need) /* out_grow stops at max + 1 bytes, past need */
        out_grow(buf, cap, max);
    return FR_OK;
}

/* One snappy block (the raw format: its uncompressed length first) appended to *buf; one that
   says it inflates past most bytes is malformed (a chunk of the framing format). */
static int
snappy_block(const char *in, size_t n, size_t most, size_t max, char **buf, size_t *cap,
             size_t *len)
{
    size_t ulen;
    if (snappy_uncompressed_length(in, n, &ulen) != SNAPPY_OK || ulen > most)
        return FR_E_SYNTAX;
    if (ulen > max - *len)
        return FR_E_LIMIT; /* said by the block's header: refused before it is inflated */
    int rc = out_reserve(buf, cap, *len + ulen, max);
    if (rc != FR_OK)
        return rc;
    size_t got = ulen;
    if (snappy_uncompress(in, n, *buf + *len, &got) != SNAPPY_OK || got != ulen)
        return FR_E_SYNTAX;
    *len += ulen;
    return FR_OK;
}

static const char snappy_stream_id[] = "\xff\x06\x00\x00sNaPpY";
#define SNAPPY_STREAM_ID_LEN 10
#define SNAPPY_CHUNK_MAX 65536 /* the most a chunk's data inflates to */

/* Whether in starts with the framing format's stream identifier. */
static bool
snappy_is_framed(const char *in, size_t n)
{
    return n >= SNAPPY_STREAM_ID_LEN && memcmp(in, snappy_stream_id, SNAPPY_STREAM_ID_LEN) == 0;
}

static uint32_t
le24(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

/*
 * The snappy framing format ("x-snappy-framed", and what the OpenTelemetry
 * Collector has long sent as "snappy": a feature gate of 2025,
 * confighttp.framedSnappy, moves it to the block format): a stream
 * identifier chunk, then chunks of a type byte and a 24-bit length:
 * compressed data (0x00) and
 * uncompressed data (0x01), each with the masked CRC-32C of its bytes
 * inflated, checked; padding (0xfe) and the reserved skippable types
 * (0x80-0xfd) are skipped; any other type is an error, as the format says.
 */
static int
snappy_framed(const char *in, size_t n, size_t max, char **buf, size_t *cap, size_t *len)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + n;
    if (!snappy_is_framed(in, n))
        return FR_E_SYNTAX;
    while (p < end) {
        if (end - p < 4)
            return FR_E_SYNTAX; /* a truncated chunk header */
        unsigned type = p[0];
        size_t clen = le24(p + 1);
        p += 4;
        if (clen > (size_t)(end - p))
            return FR_E_SYNTAX;
        const unsigned char *c = p;
        p += clen;
        if (type == 0xff) { /* the stream identifier again (concatenated streams) */
            if (clen != 6 || memcmp(c, snappy_stream_id + 4, 6) != 0)
                return FR_E_SYNTAX;
            continue;
        }
        if (type >= 0x80) /* padding, reserved skippable */
            continue;
        if (type > 0x01 || clen < 4)
            return FR_E_SYNTAX; /* reserved unskippable, or no room for the checksum */
        uint32_t want =
            (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
        size_t at = *len, dlen = clen - 4;
        int rc;
        if (type == 0x00) {
            rc = snappy_block((const char *)c + 4, dlen, SNAPPY_CHUNK_MAX, max, buf, cap, len);
        } else {
            if (dlen > SNAPPY_CHUNK_MAX)
                return FR_E_SYNTAX;
            rc = out_reserve(buf, cap, *len + dlen, max);
            if (rc == FR_OK) {
                memcpy(*buf + *len, c + 4, dlen);
                *len += dlen;
            }
        }
        if (rc != FR_OK)
            return rc;
        if (fr_crc32c_masked(*buf + at, *len - at) != want)
            return FR_E_SYNTAX; /* the chunk's checksum */
    }
    return FR_OK;
}

/* LZ4 frames (the format of the lz4 tool and of Go's pierrec/lz4, which the Collector uses),
   one after another. */
static int
lz4_frames(const char *in, size_t n, size_t max, char **buf, size_t *cap, size_t *len)
{
    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return FR_E_INVALID;
    /* until every byte is read and the last frame is whole (hint 0; an empty body is no
       frame), what the context still holds written out too */
    size_t pos = 0, hint = 1;
    int rc = FR_OK;
    while (rc == FR_OK && (pos < n || hint != 0)) {
        if (*len == *cap && !out_grow(buf, cap, max)) {
            rc = FR_E_LIMIT;
            break;
        }
        size_t in_sz = n - pos, out_sz = *cap - *len;
        hint = LZ4F_decompress(dctx, *buf + *len, &out_sz, in + pos, &in_sz, NULL);
        if (LZ4F_isError(hint) || (in_sz == 0 && out_sz == 0))
            rc = FR_E_SYNTAX; /* no progress with room to write: truncated, nothing will come */
        pos += in_sz;
        *len += out_sz;
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

const char *
fr_body_undecodable(char *out, size_t n, const char *what, const char *header, const char *enc)
{
    snprintf(out, n, "%s does not decompress as %s %s", what, header, enc);
    return out;
}

int
fr_body_inflate(const char *enc, const char *in, size_t n, size_t max, char **out, size_t *outlen)
{
    size_t cap = n * 4 + 4096, len = 0;
    char *buf = fr_malloc(cap);
    int rc = FR_OK;
    if (strcasecmp(enc, "zstd") == 0) {
        ZSTD_DStream *ds = ZSTD_createDStream();
        ZSTD_inBuffer ib = {in, n, 0};
        size_t r = 1;
        while (rc == FR_OK && (ib.pos < ib.size || r != 0)) {
            if (len == cap && !out_grow(&buf, &cap, max)) {
                rc = FR_E_LIMIT;
                break;
            }
            ZSTD_outBuffer ob = {buf, cap, len};
            size_t before = ib.pos;
            r = ZSTD_decompressStream(ds, &ob, &ib);
            if (ZSTD_isError(r)) {
                rc = FR_E_SYNTAX;
                break;
            }
            bool progressed = ob.pos > len || ib.pos > before;
            len = ob.pos;
            if (!progressed && ib.pos == ib.size && ob.pos < ob.size) {
                rc = FR_E_SYNTAX; /* truncated frame */
                break;
            }
        }
        ZSTD_freeDStream(ds);
    } else if (strcasecmp(enc, "x-snappy-framed") == 0) {
        rc = snappy_framed(in, n, max, &buf, &cap, &len);
    } else if (strcasecmp(enc, "snappy") == 0) {
        /* the block format, as HTTP names it; the Collector has long sent the framing format
           under this name (its receivers peek the same way): told apart by the stream
           identifier */
        rc = snappy_is_framed(in, n) ? snappy_framed(in, n, max, &buf, &cap, &len)
                                     : snappy_block(in, n, SIZE_MAX, max, &buf, &cap, &len);
    } else if (strcasecmp(enc, "lz4") == 0) {
        rc = lz4_frames(in, n, max, &buf, &cap, &len);
    } else {
        /* 15 + 32: a zlib or gzip header, detected; "deflate" without a zlib header (raw
           deflate, as some clients send it) is tried again as raw */
        rc = zlib_inflate(in, n, 15 + 32, max, &buf, &cap, &len);
        if (rc == FR_E_SYNTAX && strcasecmp(enc, "deflate") == 0) {
            len = 0;
            rc = zlib_inflate(in, n, -15, max, &buf, &cap, &len);
        }
    }
    if (rc == FR_OK && len > max)
        rc = FR_E_LIMIT;
    if (rc != FR_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = len;
    return FR_OK;
}

const char *
fr_body_sniff(const char *buf, size_t n)
{
    if (n >= 2 && memcmp(buf, "\x1f\x8b", 2) == 0)
        return "gzip";
    if (n >= 4 && memcmp(buf, "\x28\xb5\x2f\xfd", 4) == 0)
        return "zstd";
    return NULL;
}

static struct fr_record *
result_slot(struct fr_body_result *res)
{
    if (res->n == res->cap) {
        res->cap = res->cap ? res->cap * 2 : 256;
        res->recs = fr_realloc(res->recs, res->cap * sizeof *res->recs);
    }
    memset(&res->recs[res->n], 0, sizeof res->recs[res->n]);
    return &res->recs[res->n];
}

static void
rejected(struct fr_body_result *res, fr_body_reject_fn reject, void *ud, size_t line,
         const struct fr_err *e)
{
    res->rejected++;
    if (reject) { /* what it keeps outlives the array's region */
        int depth = fr_json_region_suspend();
        reject(ud, line, e);
        fr_json_region_resume(depth);
    }
}

size_t
fr_body_count_lines(const char *body, size_t len)
{
    size_t count = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(body + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - body) : len, n = end - at;
        const char *line = body + at;
        count += fr_wire_line(&line, &n);
        at = end + 1;
    }
    return count;
}

/* Where a body was mended (fr_utf8_sanitize_n, fr_wire_widen, fr_wire_unpair), as offsets in
   the mended text. */
struct body_marks {
    size_t *wide, nwide;   /* numbers JSON readers cannot hold, quoted */
    size_t *half, nhalf;   /* lone surrogate escapes made U+FFFD */
    size_t *bytes, nbytes; /* bytes that are not UTF-8 made U+FFFD */
    size_t w, h, b;        /* the next of each, as the values are read in order */
    char **at;             /* at[n]: where the n-th value's warning's mend is (owned), or NULL */
    size_t at_cap;
};

/*
 * body[0, len) mended as fr_wire_parse_mend mends a line (caller frees; *mlen its length),
 * the events' members at depth top (1: events one after another, 2: in an array), where
 * each mend is in marks (owned: body_marks_free); NULL when nothing could be mended. Bytes
 * that are not UTF-8 first (each as U+FFFD: the text grows), then numbers past 64 bits
 * (quoted: it grows again), then lone surrogate escapes (in place).
 */
static char *
body_mend(const char *body, size_t len, int top, struct body_marks *marks, size_t *mlen)
{
    size_t vlen = len;
    char *valid = fr_utf8_valid(body, len)
                      ? NULL
                      : fr_utf8_sanitize_n(body, len, &vlen, &marks->bytes, &marks->nbytes);
    const char *src = valid != NULL ? valid : body;
    char *m = fr_wire_widen(src, vlen, top, mlen, &marks->wide, &marks->nwide);
    if (m == NULL) {
        m = fr_strndup(src, vlen);
        *mlen = vlen;
    }
    free(valid);
    /* a U+FFFD's offset in the widened text: 2 more for each number quoted before it (the k-th
       quote pair was at wide[k] - 2k before; a number is never inside a string) */
    for (size_t i = 0, k = 0; i < marks->nbytes; i++) {
        while (k < marks->nwide && marks->wide[k] - 2 * k < marks->bytes[i])
            k++;
        marks->bytes[i] += 2 * k;
    }
    fr_wire_unpair(m, *mlen, &marks->half, &marks->nhalf);
    if (marks->nwide + marks->nhalf + marks->nbytes == 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void
body_marks_free(struct body_marks *marks)
{
    free(marks->wide);
    free(marks->half);
    free(marks->bytes);
    for (size_t i = 0; i < marks->at_cap; i++)
        free(marks->at[i]);
    free(marks->at);
}

/* The first of at[*i, n) in [from, end), or SIZE_MAX; *i moves past those before end (the
   values are read in order). */
static size_t
mark_first(const size_t *at, size_t n, size_t *i, size_t from, size_t end)
{
    size_t first = SIZE_MAX;
    for (; *i < n && at[*i] < end; (*i)++)
        if (at[*i] >= from && first == SIZE_MAX)
            first = at[*i];
    return first;
}

/* Appends to *mended (cap entries) what of the value at text[from, end), the n-th, was
   mended, and to marks->at where the mend its warning names is (marks NULL: nothing is kept). */
static void
body_mark(struct body_marks *marks, const char *text, size_t from, size_t end, size_t n,
          unsigned char **mended, size_t *cap)
{
    if (marks == NULL)
        return;
    if (n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *mended = fr_realloc(*mended, *cap * sizeof **mended);
    }
    /* the first mend of each kind in the value; the warning names a wide number's, else half
       a character's, else bytes' (body_warn_mended) */
    size_t wide = mark_first(marks->wide, marks->nwide, &marks->w, from, end),
           half = mark_first(marks->half, marks->nhalf, &marks->h, from, end),
           bytes = mark_first(marks->bytes, marks->nbytes, &marks->b, from, end);
    unsigned char what = (wide != SIZE_MAX ? FR_MEND_WIDE : 0) |
                         (half != SIZE_MAX ? FR_MEND_HALF : 0) |
                         (bytes != SIZE_MAX ? FR_MEND_BYTES : 0);
    (*mended)[n] = what;
    if (what == 0)
        return;
    if (n >= marks->at_cap) {
        size_t grown = n < 32 ? 64 : 2 * n;
        marks->at = fr_realloc(marks->at, grown * sizeof *marks->at);
        memset(marks->at + marks->at_cap, 0, (grown - marks->at_cap) * sizeof *marks->at);
        marks->at_cap = grown;
    }
    size_t off = wide != SIZE_MAX ? wide : half != SIZE_MAX ? half : bytes;
    char path[FR_PATH_MAX];
    if (fr_json_path_at(text + from, end - from, off - from, path, sizeof path) > 0)
        marks->at[n] = fr_strdup(path);
}

/* A prepared record of a mended value warned of it, as fr_wire_parse_mend warns of a line's
   (at: where, or NULL; taken). */
static void
body_warn_mended(struct fr_record *rec, unsigned char what, char *at)
{
    if (what != 0 && rec->misnamed == NULL) {
        rec->misnamed = what & FR_MEND_WIDE   ? FR_WIRE_WIDE
                        : what & FR_MEND_HALF ? FR_WIRE_HALF
                                              : FR_WIRE_BYTES;
        rec->misnamed_field = FR_WF_DATA;
        free(rec->mended_at);
        rec->mended_at = at;
        at = NULL;
    }
    free(at);
}

/* Where the n-th value's mend is, taken from marks (NULL: not known). */
static char *
body_mended_at(struct body_marks *marks, size_t n)
{
    if (marks == NULL || n >= marks->at_cap)
        return NULL;
    char *at = marks->at[n];
    marks->at[n] = NULL;
    return at;
}

/* Prepares the events of arr (a JSON array, in the current region), element k at line
   lines[k] (NULL: k + 1), mended[k] what of it was mended (NULL: nothing), where in marks. */
static void
body_elements(json_t *arr, const size_t *lines, const unsigned char *mended,
              struct body_marks *marks, const struct fr_ingest_cfg *cfg,
              struct fr_redact_counts *counts, struct fr_body_result *res, fr_body_reject_fn reject,
              void *ud)
{
    struct fr_err err = {0};
    size_t k;
    json_t *v;
    json_array_foreach(arr, k, v)
    {
        size_t line = lines ? lines[k] : k + 1;
        res->received++;
        struct fr_record *rec = result_slot(res);
        if (fr_ingest_prepare_tree(json_incref(v), cfg, counts, rec, &err) == FR_OK) {
            rec->line = line;
            body_warn_mended(rec, mended ? mended[k] : 0, body_mended_at(marks, k));
            res->n++;
        } else {
            rejected(res, reject, ud, line, &err);
        }
    }
}

static bool
body_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Whether the body's first event spans several lines (a pretty-printed event, as `jq .` or
   an editor writes one): its first line, from body[at], opens an object it does not close,
   and more lines follow. */
static bool
body_pretty(const char *body, size_t len, size_t at)
{
    const char *nl = memchr(body + at, '\n', len - at);
    return nl != NULL && fr_wire_line_opens(body + at, (size_t)(nl - body) - at);
}

/*
 * The body from body[at] read as a sequence of JSON values (pretty-printed events one after
 * another) into a new array, in the current region, *lines (owned) the line each starts on;
 * NULL when any of it does not parse that way, or a value is over max_line bytes: the body
 * is then read as NDJSON, whose per-line errors say what is wrong.
 */
static json_t *
body_values(const char *body, size_t len, size_t at, size_t max_line, size_t **lines,
            struct body_marks *marks, unsigned char **mended, bool *mendable)
{
    json_t *arr = json_array();
    size_t n = 0, cap = 0, mcap = 0, line = 1;
    *lines = NULL;
    *mended = NULL;
    *mendable = false;
    for (size_t q = 0; q < at; q++)
        line += body[q] == '\n';
    while (at < len) {
        json_error_t jerr;
        json_t *v = json_loadb(body + at, len - at, JSON_DISABLE_EOF_CHECK, &jerr);
        if (v == NULL || (size_t)jerr.position > max_line) {
            *mendable = v == NULL && fr_json_error_mendable(&jerr) != FR_MEND_NONE;
            json_decref(v);
            json_decref(arr);
            free(*lines);
            *lines = NULL;
            free(*mended);
            *mended = NULL;
            return NULL;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *lines = fr_realloc(*lines, cap * sizeof **lines);
        }
        size_t end = at + (size_t)jerr.position;
        body_mark(marks, body, at, end, n, mended, &mcap);
        (*lines)[n++] = line;
        json_array_append_new(arr, v);
        for (; at < end; at++)
            line += body[at] == '\n';
        for (; at < len && body_space(body[at]); at++)
            line += body[at] == '\n';
    }
    return arr;
}

/* Broken elements of one array read before the rest of it is given up. */
#define BODY_BROKEN_MAX 1000

/* An element of a JSON array that did not parse: its index and why. */
struct body_bad {
    size_t index;
    struct fr_err err;
};

static void body_bad_add(struct body_bad **bad, size_t *nbad, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
body_bad_add(struct body_bad **bad, size_t *nbad, size_t index, const char *fmt, ...)
{
    *bad = fr_realloc(*bad, (*nbad + 1) * sizeof **bad);
    struct body_bad *b = &(*bad)[(*nbad)++];
    b->index = index;
    b->err.code = FR_E_SYNTAX;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err.msg, sizeof b->err.msg, fmt, ap);
    va_end(ap);
}

/* Where reading goes on after a broken element that started in column col: the next line
   after body[from] (a line's first byte when from is the newline before it) that starts an
   object no deeper than col, as the next element of an array of one event per line, or of
   a pretty-printed one, starts; len when none does. *line is advanced to its line. */
static size_t
body_resync(const char *body, size_t len, size_t from, size_t col, size_t *line)
{
    for (size_t at = from; at < len; at++) {
        if (body[at] != '\n')
            continue;
        (*line)++;
        size_t c = 0;
        while (at + 1 + c < len && (body[at + 1 + c] == ' ' || body[at + 1 + c] == '\t'))
            c++;
        if (at + 1 + c < len && body[at + 1 + c] == '{' && c <= col)
            return at + 1 + c;
    }
    return len;
}

/*
 * The elements of the JSON array that starts at body[at] ('['), one by one, for an array
 * that does not parse as a whole (cut short, or one element broken): each element that
 * parses goes into a new array (current region); each that does not, with the line it
 * starts on and why, into *bad (owned, *nbad entries, by index), and reading goes on at the
 * next element's line (body_resync). So a broken element, or an end cut off, costs only
 * itself, as a broken line of NDJSON does. Arrays one after another (files joined) are read
 * as one, and events after the array's ']' as values one after another.
 */
static json_t *
body_array_elements(const char *body, size_t len, size_t at, size_t max_line, struct body_bad **bad,
                    size_t *nbad, struct body_marks *marks, unsigned char **mended)
{
    json_t *arr = json_array();
    size_t cap = 0;
    *mended = NULL;
    size_t k = 0, line = 1, line_at = 0; /* line_at: where the current line starts */
    bool cut = false;                    /* reading on after a broken element reached the end */
    bool after = false; /* past the array's ']': values follow without separators */
    *bad = NULL;
    *nbad = 0;
    for (size_t q = 0; q < at; q++)
        if (body[q] == '\n')
            line++, line_at = q + 1;
    at++; /* the '[' */
    for (;;) {
        for (; at < len && body_space(body[at]); at++)
            if (body[at] == '\n')
                line++, line_at = at + 1;
        if (at >= len) {
            if (!cut && !after) /* a broken last element has said so */
                body_bad_add(bad, nbad, k,
                             "the array ends without its ']' after %zu element(s): the input was "
                             "cut short; the elements before were read",
                             k);
            break;
        }
        if (body[at] == ']' && !after) {
            for (at++; at < len && body_space(body[at]); at++)
                if (body[at] == '\n')
                    line++, line_at = at + 1;
            if (at < len && body[at] == '[') /* arrays one after another (files joined) */
                at++;
            else /* events after the array, NDJSON or pretty-printed: read on */
                after = true;
            continue;
        }
        size_t col = at - line_at, start = line;
        json_error_t jerr;
        json_t *v = json_loadb(body + at, len - at, JSON_DISABLE_EOF_CHECK, &jerr);
        if (v == NULL || (size_t)jerr.position > max_line) {
            char text[JSON_ERROR_TEXT_LENGTH];
            if (v != NULL)
                body_bad_add(bad, nbad, k, "line %zu: element is %d bytes, over the %zu byte limit",
                             start, jerr.position, max_line);
            else if (json_error_code(&jerr) == json_error_premature_end_of_input)
                body_bad_add(bad, nbad, k,
                             "line %zu: the element is cut short by the end of the input (%s); "
                             "the elements before were read",
                             start, fr_json_error_text(&jerr, text, sizeof text));
            else if (fr_json_error_mendable(&jerr) != FR_MEND_NONE) { /* in an envelope field */
                struct fr_err why = {0};
                fr_wire_syntax_error(&jerr, &why); /* what a line's error says of it */
                body_bad_add(bad, nbad, k, "line %zu, in the element: %s", start, why.msg);
            } else {
                body_bad_add(bad, nbad, k, "line %zu: invalid JSON at byte %d of the element: %s",
                             start, jerr.position, fr_json_error_text(&jerr, text, sizeof text));
            }
            json_decref(v);
            k++;
            if (*nbad > BODY_BROKEN_MAX) {
                body_bad_add(bad, nbad, k,
                             "more than %d elements broken: the rest of the body is not read "
                             "(is it a JSON array of events?)",
                             BODY_BROKEN_MAX);
                break;
            }
            /* on from the line the error is on, at the earliest the next one: what the parse
               read before its error is not read again */
            size_t err_at = at + (size_t)jerr.position, from = at;
            err_at = err_at < len ? err_at : len;
            while (err_at > at && body[err_at - 1] != '\n')
                err_at--;
            if (err_at > at) {
                for (size_t q = at; q + 1 < err_at; q++)
                    line += body[q] == '\n';
                from = err_at - 1;
            }
            at = body_resync(body, len, from, col, &line);
            cut = at >= len;
            line_at = at;
            while (line_at > 0 && body[line_at - 1] != '\n')
                line_at--;
            continue;
        }
        size_t m = json_array_size(arr), end = at + (size_t)jerr.position;
        json_array_append_new(arr, v);
        k++;
        body_mark(marks, body, at, end, m, mended, &cap);
        for (; at < end; at++)
            if (body[at] == '\n')
                line++, line_at = at + 1;
        for (; at < len && body_space(body[at]); at++)
            if (body[at] == '\n')
                line++, line_at = at + 1;
        if (at < len && body[at] == ',' && !after)
            at++;
        /* else ']', the end, or (no comma) the next element: read on */
    }
    return arr;
}

/* Prepares the elements of an array read by body_array_elements: the ones in arr and the
   broken ones in bad, in the order they came. */
static void
body_salvaged(json_t *arr, const struct body_bad *bad, size_t nbad, const unsigned char *mended,
              struct body_marks *marks, const struct fr_ingest_cfg *cfg,
              struct fr_redact_counts *counts, struct fr_body_result *res, fr_body_reject_fn reject,
              void *ud)
{
    struct fr_err err = {0};
    size_t total = json_array_size(arr) + nbad;
    for (size_t idx = 0, a = 0, b = 0; idx < total; idx++) {
        res->received++;
        if (b < nbad && bad[b].index == idx) {
            rejected(res, reject, ud, idx + 1, &bad[b++].err);
            continue;
        }
        struct fr_record *rec = result_slot(res);
        unsigned char what = mended != NULL ? mended[a] : 0;
        char *at = body_mended_at(marks, a);
        if (fr_ingest_prepare_tree(json_incref(json_array_get(arr, a++)), cfg, counts, rec, &err) ==
            FR_OK) {
            rec->line = idx + 1;
            body_warn_mended(rec, what, at);
            res->n++;
        } else {
            free(at);
            rejected(res, reject, ud, idx + 1, &err);
        }
    }
}

int
fr_body_prepare(const char *body, size_t len, const struct fr_ingest_cfg *cfg,
                struct fr_redact_counts *counts, struct fr_body_result *res,
                fr_body_reject_fn reject, fr_body_admit_fn admit, void *ud)
{
    struct fr_err err = {0};
    bool pretty = false; /* a pretty-printed start that did not parse so */
    size_t i = fr_wire_bom(body, len);
    while (i < len && body_space(body[i]))
        i++;
    if (i < len && body[i] == '[') {
        json_error_t jerr;
        fr_json_region_begin(); /* the array's tree lives until its events are prepared */
        /* simdjson first, as an OTLP/JSON export (jsonfast.h); what it leaves (a key named
           twice among it), jansson reads */
        json_t *arr = fr_json_fast_load_doc(body + i, len - i);
        if (arr == NULL)
            arr = json_loadb(body + i, len - i, 0, &jerr);
        struct body_bad *bad = NULL;
        size_t nbad = 0, mended_len = 0;
        struct body_marks marks = {0};
        unsigned char *mended_el = NULL;
        char *mended = NULL; /* mended as fr_wire_parse_mend mends a line (i stays where it is) */
        if (arr == NULL && fr_json_error_mendable(&jerr) != FR_MEND_NONE)
            mended = body_mend(body, len, 2, &marks, &mended_len);
        if (arr == NULL) /* cut short, or an element broken: read what can be read */
            arr = mended ? body_array_elements(mended, mended_len, i, cfg->lim.max_line, &bad,
                                               &nbad, &marks, &mended_el)
                         : body_array_elements(body, len, i, cfg->lim.max_line, &bad, &nbad, NULL,
                                               &mended_el);
        int rc = admit ? admit(ud, json_array_size(arr) + nbad) : FR_OK;
        if (rc == FR_OK && (bad != NULL || mended_el != NULL))
            body_salvaged(arr, bad, nbad, mended_el, &marks, cfg, counts, res, reject, ud);
        else if (rc == FR_OK)
            body_elements(arr, NULL, NULL, NULL, cfg, counts, res, reject, ud);
        free(bad);
        free(mended_el);
        body_marks_free(&marks);
        free(mended);
        json_decref(arr);
        fr_json_region_end();
        return rc;
    }
    if (i < len && body_pretty(body, len, i)) {
        size_t *lines, mlen;
        unsigned char *mended_el;
        bool mendable;
        struct body_marks marks = {0};
        char *mended = NULL;
        fr_json_region_begin();
        json_t *arr =
            body_values(body, len, i, cfg->lim.max_line, &lines, NULL, &mended_el, &mendable);
        if (arr == NULL && mendable && (mended = body_mend(body, len, 1, &marks, &mlen)) != NULL)
            arr = body_values(mended, mlen, i, cfg->lim.max_line, &lines, &marks, &mended_el,
                              &mendable);
        int rc = FR_OK;
        bool read = arr != NULL;
        if (read) {
            rc = admit ? admit(ud, json_array_size(arr)) : FR_OK;
            if (rc == FR_OK)
                body_elements(arr, lines, mended_el, &marks, cfg, counts, res, reject, ud);
            json_decref(arr);
            free(lines);
            free(mended_el);
        }
        body_marks_free(&marks);
        free(mended);
        fr_json_region_end();
        if (read)
            return rc;
        pretty = true;
    }
    if (admit) {
        int rc = admit(ud, fr_body_count_lines(body, len));
        if (rc != FR_OK)
            return rc;
    }
    size_t lineno = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(body + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - body) : len, n = end - at;
        const char *line = body + at;
        at = end + 1;
        lineno++;
        if (!fr_wire_line(&line, &n))
            continue;
        res->received++;
        struct fr_record *rec = result_slot(res);
        if (n > cfg->lim.max_line) {
            fr_err_set(&err, FR_E_LIMIT, "line is %zu bytes, over the %zu byte limit", n,
                       cfg->lim.max_line);
            rejected(res, reject, ud, lineno, &err);
        } else if (fr_ingest_prepare(line, n, cfg, counts, rec, &err) == FR_OK) {
            rec->line = lineno;
            res->n++;
        } else {
            if (pretty) { /* its first line, which opened the event: why it was read so */
                size_t k = strlen(err.msg);
                snprintf(err.msg + k, sizeof err.msg - k,
                         " (the event does not end on this line: cut short, or pretty-printed "
                         "over lines that do not parse; read as NDJSON, one event per line)");
                pretty = false;
            }
            rejected(res, reject, ud, lineno, &err);
        }
    }
    return FR_OK;
}

void
fr_body_result_clear(struct fr_body_result *res)
{
    for (size_t i = 0; i < res->n; i++)
        fr_record_clear(&res->recs[i]);
    free(res->recs);
    memset(res, 0, sizeof *res);
}
