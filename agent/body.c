/*
 * agent/body.c - request body framing: decompression, NDJSON or JSON array,
 * each envelope through fr_ingest_prepare (see agent/body.h).
 */
#include "agent/body.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#include "core/jsonmem.h"
#include "core/mem.h"

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
    return strcasecmp(enc, "zstd") == 0 || strcasecmp(enc, "gzip") == 0 ||
           strcasecmp(enc, "deflate") == 0;
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

static bool
blank_line(const char *line, size_t n)
{
    for (size_t q = 0; q < n; q++)
        if (line[q] != ' ' && line[q] != '\t' && line[q] != '\r')
            return false;
    return true;
}

size_t
fr_body_count_lines(const char *body, size_t len)
{
    size_t count = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(body + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - body) : len;
        count += !blank_line(body + at, end - at);
        at = end + 1;
    }
    return count;
}

int
fr_body_prepare(const char *body, size_t len, const struct fr_ingest_cfg *cfg,
                struct fr_redact_counts *counts, struct fr_body_result *res,
                fr_body_reject_fn reject, fr_body_admit_fn admit, void *ud)
{
    struct fr_err err = {0};
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i < len && body[i] == '[') {
        json_error_t jerr;
        fr_json_region_begin(); /* the array's tree lives until its events are prepared */
        json_t *arr = json_loadb(body, len, 0, &jerr);
        int rc = admit && json_is_array(arr) ? admit(ud, json_array_size(arr)) : FR_OK;
        if (rc != FR_OK) {
            json_decref(arr);
            fr_json_region_end();
            return rc;
        }
        if (!json_is_array(arr)) {
            char text[JSON_ERROR_TEXT_LENGTH];
            fr_err_set(&err, FR_E_SYNTAX, "body: a JSON array that does not parse: %s at byte %d",
                       fr_json_error_text(&jerr, text, sizeof text), jerr.position);
            res->received++;
            rejected(res, reject, ud, 1, &err);
        } else {
            size_t k;
            json_t *v;
            json_array_foreach(arr, k, v)
            {
                res->received++;
                struct fr_record *rec = result_slot(res);
                if (fr_ingest_prepare_tree(json_incref(v), cfg, counts, rec, &err) == FR_OK) {
                    rec->line = k + 1;
                    res->n++;
                } else {
                    rejected(res, reject, ud, k + 1, &err);
                }
            }
        }
        json_decref(arr);
        fr_json_region_end();
        return FR_OK;
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
        if (blank_line(line, n))
            continue;
        if (n > 0 && line[n - 1] == '\r')
            n--;
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
