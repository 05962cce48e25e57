/*
 * retention/segment.c - see segment.h and docs/archive-format.md.
 */
#include "retention/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "retention/columns.h"
#include "retention/objstore.h"

#define SEG_MAGIC "FRSEG001"
#define SEG_END "FRSEGEND"
#define SEG_HEADER 80
#define SEG_TRAILER 56
#define SEG_VERSION                                                                                \
    5 /* 2: store id in the header; cold parts bound to header and index;                          \
         3: the trailer's check is HMAC-SHA256 with the archive key;                               \
         4: the same, with columnar blocks (retention/columns.c) and no dictionary;                \
         5: the same, id columns in binary (codecs 9, 10) */
#define SEG_VERSION_MIN 1
#define PART_DICT 0xfffffffeu
#define PART_FOOTER 0xffffffffu
#define BLOCK_RECORDS 8000
#define BLOCK_BYTES (4u << 20)
/* No block a writer makes decompresses to more: a 4 MiB block plus one record of the largest line.
 */
#define BLOCK_USIZE_MAX ((size_t)BLOCK_BYTES + ((size_t)64 << 20))

/* Whether [off, off + len) lies within [lo, hi), without overflow. */
static bool
span_within(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
    return off >= lo && off <= hi && len <= hi - off;
}
#define BLOOM_BYTES 256
#define DICT_CAP (64 * 1024)
#define TRAIN_BYTES (4u << 20)
#define LEVEL 13
#define COL_LEVEL 3 /* the zstd level of every column of a columnar block */

const char *
fr_tier_name(int tier)
{
    return tier == FR_TIER_WARM ? "warm" : tier == FR_TIER_COLD ? "cold" : "hot";
}

/* ---- little-endian fields ---- */

static void
put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void
put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* ---- Bloom filter of conv_ids: 2048 bits, 3 probes from a 64-bit FNV-1a ---- */

static void
bloom_add(unsigned char *b, const char *conv)
{
    uint64_t h = fr_fnv1a64(conv), h1 = h & 0xffffffff, h2 = h >> 32;
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t bit = (h1 + i * h2) % (BLOOM_BYTES * 8);
        b[bit / 8] |= (unsigned char)(1u << (bit % 8));
    }
}

static bool
bloom_has(const unsigned char *b, const char *conv)
{
    uint64_t h = fr_fnv1a64(conv), h1 = h & 0xffffffff, h2 = h >> 32;
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t bit = (h1 + i * h2) % (BLOOM_BYTES * 8);
        if (!(b[bit / 8] & (1u << (bit % 8))))
            return false;
    }
    return true;
}

/* ---- writer ---- */

struct wrec {
    size_t off, len;
    int64_t ts;
    char *conv, *trace;
    uint32_t block; /* set by finish */
};

struct fr_seg_writer {
    int tier;
    unsigned char key[FR_KEY_LEN];
    bool has_key;
    unsigned char auth[FR_KEY_LEN]; /* the archive key (version 3); has_auth false: version 2 */
    bool has_auth;
    char policy[17];
    unsigned char store[8];        /* the owning store's id */
    unsigned char hdr[SEG_HEADER]; /* once written: the associated data of every cold part */
    char *buf; /* the records not yet in an encoded block (version 4), or all of them */
    size_t len, cap;
    struct wrec *recs;
    size_t n, ncap;
    /* version 4: each block is encoded as soon as it is full, so the writer holds one block of
       records at a time (and its buffer stays warm), plus the encoded blocks */
    struct enc_block {
        unsigned char *p;
        size_t len, first, count, usize;
    } * eb;
    size_t neb, capeb;
    size_t pend, pend_bytes; /* first record not in an encoded block; its bytes and later ones' */
    struct fr_err enc_err;   /* the first encoding failure, reported by finish */
    struct fr_col_stats *stats; /* where the blocks' bytes go, when asked (bench/segbench.c) */
};

void
fr_seg_writer_set_auth(struct fr_seg_writer *w, const unsigned char *key)
{
    w->has_auth = key != NULL;
    if (key != NULL)
        memcpy(w->auth, key, FR_KEY_LEN);
}

void
fr_seg_writer_set_stats(struct fr_seg_writer *w, struct fr_col_stats *stats)
{
    w->stats = stats;
}

void
fr_seg_writer_set_store(struct fr_seg_writer *w, const char *store_id)
{
    memset(w->store, 0, sizeof w->store);
    for (size_t i = 0; store_id && i < 8 && store_id[2 * i] && store_id[2 * i + 1]; i++) {
        int hi = fr_hex_digit(store_id[2 * i]), lo = fr_hex_digit(store_id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            break;
        w->store[i] = (unsigned char)(hi << 4 | lo);
    }
}

/*
 * A cold part's associated data: the segment's whole header (tier, times,
 * counts, key id, store id, policy: all authenticated by the key) and the
 * part's place in it, so a sealed block moved to another segment or
 * position, or a header edited, does not open.
 */
static void
part_aad(const unsigned char hdr[SEG_HEADER], uint32_t index, unsigned char aad[SEG_HEADER + 4])
{
    memcpy(aad, hdr, SEG_HEADER);
    for (int i = 0; i < 4; i++)
        aad[SEG_HEADER + i] = (unsigned char)(index >> (8 * i));
}

struct fr_seg_writer *
fr_seg_writer_new(int tier, const unsigned char *key, const char *policy)
{
    struct fr_seg_writer *w = fr_calloc(1, sizeof *w);
    w->tier = tier;
    if (key != NULL) {
        memcpy(w->key, key, FR_KEY_LEN);
        w->has_key = true;
    }
    snprintf(w->policy, sizeof w->policy, "%s", policy ? policy : "");
    return w;
}

/* The end (exclusive) of the block that starts at record i. */
static size_t
seg_block_end(const struct fr_seg_writer *w, size_t i, size_t *bytes)
{
    size_t j = i;
    *bytes = 0;
    while (j < w->n && j - i < BLOCK_RECORDS && *bytes < BLOCK_BYTES)
        *bytes += w->recs[j++].len + 1;
    return j;
}

/*
 * Version 4: encodes every record not yet in a block into columnar blocks
 * (the same boundaries as the row format's: 8000 records or 4 MiB) and
 * drops their bytes. A failure is kept for finish to report.
 */
static void
seg_encode_pending(struct fr_seg_writer *w)
{
    while (w->pend < w->n && w->enc_err.code == FR_OK) {
        size_t bytes, i = w->pend, j = seg_block_end(w, i, &bytes);
        const char **rec = fr_malloc((j - i) * sizeof *rec);
        size_t *len = fr_malloc((j - i) * sizeof *len);
        for (size_t k = i; k < j; k++) {
            rec[k - i] = w->buf + w->recs[k].off;
            len[k - i] = w->recs[k].len;
            w->recs[k].block = (uint32_t)w->neb;
        }
        unsigned char *col = NULL;
        size_t clen = 0;
        if (fr_col_encode(rec, len, j - i, COL_LEVEL, &col, &clen, w->stats, &w->enc_err) ==
            FR_OK) {
            if (w->neb == w->capeb) {
                w->capeb = w->capeb ? w->capeb * 2 : 8;
                w->eb = fr_realloc(w->eb, w->capeb * sizeof *w->eb);
            }
            w->eb[w->neb++] = (struct enc_block){col, clen, i, j - i, bytes};
        }
        free(rec);
        free(len);
        w->pend = j;
    }
    /* every record is in a block: the buffer starts over (its memory kept) */
    w->len = 0;
    w->pend_bytes = 0;
}

void
fr_seg_writer_add(struct fr_seg_writer *w, const char *json, size_t len, int64_t ts_ms,
                  const char *conv_id, const char *trace_id)
{
    if (w->len + len + 1 > w->cap) {
        w->cap = (w->len + len + 1) * 2;
        w->buf = fr_realloc(w->buf, w->cap);
    }
    memcpy(w->buf + w->len, json, len);
    if (w->n == w->ncap) {
        w->ncap = w->ncap ? w->ncap * 2 : 1024;
        w->recs = fr_realloc(w->recs, w->ncap * sizeof *w->recs);
    }
    w->recs[w->n++] = (struct wrec){w->len,
                                    len,
                                    ts_ms,
                                    conv_id ? fr_strdup(conv_id) : NULL,
                                    trace_id && *trace_id ? fr_strdup(trace_id) : NULL,
                                    0};
    w->len += len;
    w->buf[w->len++] = '\n';
    w->pend_bytes += len + 1;
    if (w->has_auth && (w->n - w->pend == BLOCK_RECORDS || w->pend_bytes >= BLOCK_BYTES))
        seg_encode_pending(w);
}

void
fr_seg_writer_set_policy(struct fr_seg_writer *w, const char *policy)
{
    snprintf(w->policy, sizeof w->policy, "%s", policy ? policy : "");
}

size_t
fr_seg_writer_count(const struct fr_seg_writer *w)
{
    return w->n;
}

uint64_t
fr_seg_key_hash(char kind, const char *id)
{
    /* FNV-1a 64 over the kind letter, a separator and the id */
    const char pre[3] = {kind, 0x1f, 0};
    return fr_fnv1a64_from(fr_fnv1a64(pre), id);
}

static int
key_cmp(const void *a, const void *b)
{
    const struct fr_archive_key *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->block < y->block ? -1 : x->block > y->block;
}

size_t
fr_seg_writer_map(const struct fr_seg_writer *w, struct fr_archive_key **out)
{
    struct fr_archive_key *k = fr_malloc((2 * w->n + 1) * sizeof *k);
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->recs[i].conv)
            k[n++] =
                (struct fr_archive_key){fr_seg_key_hash('c', w->recs[i].conv), w->recs[i].block};
        if (w->recs[i].trace)
            k[n++] =
                (struct fr_archive_key){fr_seg_key_hash('t', w->recs[i].trace), w->recs[i].block};
    }
    qsort(k, n, sizeof *k, key_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || key_cmp(&k[u - 1], &k[i]) != 0)
            k[u++] = k[i];
    *out = k;
    return u;
}

void
fr_seg_writer_free(struct fr_seg_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->recs[i].conv);
        free(w->recs[i].trace);
    }
    free(w->recs);
    free(w->buf);
    for (size_t i = 0; i < w->neb; i++)
        free(w->eb[i].p);
    free(w->eb);
    OPENSSL_cleanse(w->key, sizeof w->key);
    free(w);
}

/* An output file with a running SHA-256, or HMAC-SHA256 with the archive key (mac). */
struct out {
    int fd;
    EVP_MD_CTX *sha;
    EVP_MAC_CTX *mac;
    uint64_t off;
    bool bad;
};

static void
out_write(struct out *o, const void *p, size_t n)
{
    if (o->mac != NULL)
        EVP_MAC_update(o->mac, p, n);
    else
        EVP_DigestUpdate(o->sha, p, n);
    const char *c = p;
    while (n > 0 && !o->bad) {
        ssize_t w = write(o->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->bad = true;
            break;
        }
        c += w;
        n -= (size_t)w;
        o->off += (uint64_t)w;
    }
}

/* Writes part `index`, sealed when the segment is cold. Returns the bytes written. */
static size_t
out_part(struct out *o, struct fr_seg_writer *w, uint32_t index, const void *p, size_t n)
{
    if (w->tier != FR_TIER_COLD) {
        out_write(o, p, n);
        return n;
    }
    unsigned char *sealed;
    size_t slen;
    unsigned char aad[SEG_HEADER + 4];
    part_aad(w->hdr, index, aad);
    if (fr_seal(w->key, aad, sizeof aad, p, n, &sealed, &slen, NULL) != FR_OK) {
        o->bad = true;
        return 0;
    }
    out_write(o, sealed, slen);
    free(sealed);
    return slen;
}

/* fsync()s the directory holding path. */
static int
fsync_dir(const char *path)
{
    char *copy = fr_strdup(path);
    int rc = fr_fsync_dir(dirname(copy));
    free(copy);
    return rc;
}

/*
 * Trains a zstd dictionary on (a prefix of) the segment's own records into
 * dict (DICT_CAP bytes); returns its length, 0 for plain zstd (too few or
 * too uniform records).
 */
static size_t
seg_train_dict(const struct fr_seg_writer *w, unsigned char *dict)
{
    size_t nsamp = 0, sbytes = 0;
    while (nsamp < w->n && sbytes + w->recs[nsamp].len + 1 <= TRAIN_BYTES)
        sbytes += w->recs[nsamp++].len + 1;
    if (nsamp < 16)
        return 0;
    size_t *sizes = fr_malloc(nsamp * sizeof *sizes);
    for (size_t i = 0; i < nsamp; i++)
        sizes[i] = w->recs[i].len + 1;
    size_t dlen = ZDICT_trainFromBuffer(dict, DICT_CAP, w->buf, sizes, (unsigned)nsamp);
    free(sizes);
    return ZDICT_isError(dlen) ? 0 : dlen;
}

/* The fixed header (docs/archive-format.md); blocks and dictionary length included. */
static void
seg_header(const struct fr_seg_writer *w, int64_t min_ts, int64_t max_ts, uint32_t nblocks,
           size_t dict_len, unsigned char hdr[SEG_HEADER])
{
    memset(hdr, 0, SEG_HEADER);
    memcpy(hdr, SEG_MAGIC, 8);
    put32(hdr + 8, w->has_auth ? SEG_VERSION : 2);
    put32(hdr + 12, (uint32_t)w->tier);
    put64(hdr + 16, (uint64_t)min_ts);
    put64(hdr + 24, (uint64_t)max_ts);
    put64(hdr + 32, w->n);
    put32(hdr + 40, nblocks);
    put32(hdr + 44, (uint32_t)dict_len);
    if (w->tier == FR_TIER_COLD) {
        fr_key_id(w->key, hdr + 48);
    }
    memcpy(hdr + 56, w->store, 8);
    memcpy(hdr + 64, w->policy, strlen(w->policy));
}

/* Compresses and writes every block, describing each in blocks (the footer's list). */
static int
seg_write_blocks(struct out *o, struct fr_seg_writer *w, ZSTD_CCtx *cctx, ZSTD_CDict *cdict,
                 json_t *blocks, struct fr_seg_info *info, const char *path, struct fr_err *err)
{
    size_t cap = ZSTD_compressBound(BLOCK_BYTES + 65536) + 1024;
    char *cbuf = fr_malloc(cap);
    int rc = FR_OK;
    for (size_t i = 0, b = 0; i < w->n && !o->bad; b++) {
        size_t bytes;
        size_t j = w->has_auth ? i + w->eb[b].count : seg_block_end(w, i, &bytes);
        if (w->has_auth)
            bytes = w->eb[b].usize;
        unsigned char bloom[BLOOM_BYTES] = {0};
        int64_t bmin = INT64_MAX, bmax = INT64_MIN;
        for (size_t k = i; k < j; k++) {
            w->recs[k].block = (uint32_t)json_array_size(blocks);
            if (w->recs[k].conv)
                bloom_add(bloom, w->recs[k].conv);
            bmin = w->recs[k].ts < bmin ? w->recs[k].ts : bmin;
            bmax = w->recs[k].ts > bmax ? w->recs[k].ts : bmax;
        }
        const void *part = cbuf;
        size_t clen;
        if (w->has_auth) { /* version 4: the block encoded as its records came */
            part = w->eb[b].p;
            clen = w->eb[b].len;
        } else {
            const char *src = w->buf + w->recs[i].off;
            if (ZSTD_compressBound(bytes) > cap) {
                cap = ZSTD_compressBound(bytes);
                cbuf = fr_realloc(cbuf, cap);
            }
            clen = cdict ? ZSTD_compress_usingCDict(cctx, cbuf, cap, src, bytes, cdict)
                         : ZSTD_compressCCtx(cctx, cbuf, cap, src, bytes, LEVEL);
            if (ZSTD_isError(clen)) {
                rc = fr_err_set(err, FR_E_INVALID, "segment %s: zstd: %s", path,
                                ZSTD_getErrorName(clen));
                break;
            }
        }
        uint64_t off = o->off;
        size_t written = out_part(o, w, (uint32_t)json_array_size(blocks), part, clen);
        char hex[2 * BLOOM_BYTES + 1];
        fr_hex_encode(bloom, BLOOM_BYTES, hex);
        json_array_append_new(blocks,
                              json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "off", (json_int_t)off,
                                        "len", (json_int_t)written, "usize", (json_int_t)bytes,
                                        "records", (json_int_t)(j - i), "min_ts", (json_int_t)bmin,
                                        "max_ts", (json_int_t)bmax, "bloom", hex));
        info->raw_bytes += bytes;
        i = j;
    }
    free(cbuf);
    return rc;
}

/* The footer (block list), the trailer and the SHA-256 of everything before it. */
static void
seg_write_tail(struct out *o, struct fr_seg_writer *w, json_t *blocks, struct fr_seg_info *info)
{
    json_t *footer = json_pack("{s:O}", "blocks", blocks);
    char *ftext = json_dumps(footer, JSON_COMPACT);
    json_decref(footer);
    uint64_t foff = o->off;
    size_t flen = out_part(o, w, PART_FOOTER, ftext, strlen(ftext));
    free(ftext);
    unsigned char trailer[24];
    put64(trailer, foff);
    put64(trailer + 8, flen);
    memcpy(trailer + 16, SEG_END, 8);
    out_write(o, trailer, sizeof trailer);
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t maclen = 0;
    if (o->mac != NULL)
        EVP_MAC_final(o->mac, md, &maclen, sizeof md);
    else
        EVP_DigestFinal_ex(o->sha, md, &mdlen);
    /* the hash itself is not hashed */
    const char *c = (const char *)md;
    size_t left = 32;
    while (left > 0 && !o->bad) {
        ssize_t wr = write(o->fd, c, left);
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr <= 0) {
            o->bad = true;
            break;
        }
        c += wr;
        left -= (size_t)wr;
    }
    o->off += 32;
    fr_hex_encode(md, 32, info->sha256);
}

/* What the manifest records of the segment. */
static void
seg_fill_info(const struct fr_seg_writer *w, int64_t min_ts, int64_t max_ts, uint32_t nblocks,
              uint64_t file_bytes, struct fr_seg_info *info)
{
    info->tier = w->tier;
    info->min_ts = min_ts;
    info->max_ts = max_ts;
    info->records = w->n;
    info->blocks = nblocks;
    info->file_bytes = file_bytes;
    snprintf(info->policy, sizeof info->policy, "%s", w->policy);
    if (w->tier == FR_TIER_COLD) {
        fr_key_id_hex(w->key, info->key_id);
    }
}

/* Writes the whole segment to o (open on the temporary file). */
static int
seg_write(struct out *o, struct fr_seg_writer *w, struct fr_seg_info *info, const char *path,
          struct fr_err *err)
{
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    for (size_t i = 0; i < w->n; i++) {
        min_ts = w->recs[i].ts < min_ts ? w->recs[i].ts : min_ts;
        max_ts = w->recs[i].ts > max_ts ? w->recs[i].ts : max_ts;
    }
    uint32_t nblocks = 0;
    if (w->has_auth) {
        seg_encode_pending(w); /* the last block (or all of them: auth set after the records) */
        if (w->enc_err.code != FR_OK)
            return fr_err_set(err, w->enc_err.code, "segment %s: %s", path, w->enc_err.msg);
        nblocks = (uint32_t)w->neb;
    }
    for (size_t i = 0, bytes; !w->has_auth && i < w->n; nblocks++)
        i = seg_block_end(w, i, &bytes);
    unsigned char *dict = fr_malloc(DICT_CAP);
    /* columnar blocks (version 4) need no dictionary: each column is compressed alone */
    size_t dlen = w->has_auth ? 0 : seg_train_dict(w, dict);
    unsigned char *dict_bytes = NULL;
    size_t dict_out_len = 0;
    int rc = FR_OK;
    /* the header first: a cold dictionary is sealed bound to it (its sealed size is known) */
    size_t dict_stored = dlen == 0 ? 0 : w->tier == FR_TIER_COLD ? dlen + FR_SEAL_OVERHEAD : dlen;
    seg_header(w, min_ts, max_ts, nblocks, dict_stored, w->hdr);
    if (dlen > 0 && w->tier == FR_TIER_COLD) {
        unsigned char aad[SEG_HEADER + 4];
        part_aad(w->hdr, PART_DICT, aad);
        rc = fr_seal(w->key, aad, sizeof aad, dict, dlen, &dict_bytes, &dict_out_len, err);
        if (rc == FR_OK && dict_out_len != dict_stored)
            rc = fr_err_set(err, FR_E_INVALID, "segment %s: sealed dictionary size", path);
    } else if (dlen > 0) {
        dict_bytes = fr_malloc(dlen);
        memcpy(dict_bytes, dict, dlen);
        dict_out_len = dlen;
    }
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CDict *cdict = dlen ? ZSTD_createCDict(dict, dlen, LEVEL) : NULL;
    json_t *blocks = json_array();
    if (rc == FR_OK) {
        out_write(o, w->hdr, sizeof w->hdr);
        out_write(o, dict_bytes, dict_out_len);
        rc = seg_write_blocks(o, w, cctx, cdict, blocks, info, path, err);
    }
    if (rc == FR_OK)
        seg_write_tail(o, w, blocks, info);
    seg_fill_info(w, min_ts, max_ts, nblocks, o->off, info);
    json_decref(blocks);
    free(dict_bytes);
    free(dict);
    ZSTD_freeCDict(cdict);
    ZSTD_freeCCtx(cctx);
    return rc;
}

int
fr_seg_writer_finish(struct fr_seg_writer *w, const char *path, struct fr_seg_info *info,
                     struct fr_err *err)
{
    memset(info, 0, sizeof *info);
    if (w->n == 0)
        return fr_err_set(err, FR_E_INVALID, "segment %s: no records", path);
    char *tmp = fr_asprintf("%s.tmp", path);
    int rc = fr_mkdirs_for(path, 0700, err);
    struct out o = {.fd = -1};
    if (rc == FR_OK) {
        o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (o.fd < 0)
            rc = fr_err_set(err, FR_E_IO, "%s: %s", tmp, strerror(errno));
    }
    EVP_MAC *hmac = NULL;
    if (rc == FR_OK && w->has_auth) {
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        o.mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
        if (o.mac == NULL || EVP_MAC_init(o.mac, w->auth, FR_KEY_LEN, params) != 1)
            rc = fr_err_set(err, FR_E_INVALID, "segment %s: HMAC-SHA256 unavailable", path);
    } else if (rc == FR_OK) {
        o.sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(o.sha, EVP_sha256(), NULL);
    }
    if (rc == FR_OK)
        rc = seg_write(&o, w, info, path, err);
    if (rc == FR_OK && (o.bad || fsync(o.fd) != 0))
        rc = fr_err_set(err, FR_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (o.fd >= 0 && close(o.fd) != 0 && rc == FR_OK)
        rc = fr_err_set(err, FR_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    EVP_MD_CTX_free(o.sha);
    EVP_MAC_CTX_free(o.mac);
    EVP_MAC_free(hmac);
    if (rc == FR_OK && rename(tmp, path) != 0)
        rc = fr_err_set(err, FR_E_IO, "rename %s: %s", tmp, strerror(errno));
    if (rc == FR_OK && fsync_dir(path) != 0)
        rc = fr_err_set(err, FR_E_IO, "fsync of the directory of %s failed", path);
    if (rc != FR_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- reader ---- */

struct fr_seg {
    char *path;
    unsigned char *data;
    size_t len;
    struct fr_seg_info info;
    bool unverified; /* version 3 without the archive key: header only */
    bool has_key;
    unsigned char key[FR_KEY_LEN];
    ZSTD_DDict *ddict;
    json_t *blocks;
};

static int
seg_bad(const char *path, const char *why, struct fr_err *err)
{
    return fr_err_set(err, FR_E_VALUE, "segment %s: %s", path, why);
}

/* Unseals (cold) or borrows part `index`; *owned says whether to free *out. */
static int
seg_part(struct fr_seg *s, uint32_t index, const unsigned char *p, size_t n, unsigned char **out,
         size_t *outlen, bool *owned, struct fr_err *err)
{
    if (s->info.tier != FR_TIER_COLD) {
        *out = (unsigned char *)p;
        *outlen = n;
        *owned = false;
        return FR_OK;
    }
    *owned = true;
    unsigned char aad[SEG_HEADER + 4];
    part_aad(s->data, index, aad);
    bool v1 = get32(s->data + 8) == 1; /* version 1 parts carry no associated data */
    int rc = fr_unseal(s->key, v1 ? NULL : aad, v1 ? 0 : sizeof aad, p, n, out, outlen, err);
    if (rc != FR_OK)
        fr_err_set(err, rc,
                   "segment %s: a sealed part does not open with this key where it is "
                   "(a different key, or moved or altered)",
                   s->path);
    return rc;
}

/*
 * The trailer's check of a version 3 segment: HMAC-SHA256 with one of the
 * archive keys (the current one first). *verified false: no key to check it with.
 */
static int
seg_check_mac(const char *path, const unsigned char *d, size_t len,
              const struct fr_archive_keys *keys, unsigned char md[32], bool *verified,
              struct fr_err *err)
{
    *verified = false;
    if (keys == NULL || keys->auth.n == 0) {
        memcpy(md, d + len - 32, 32);
        return FR_OK;
    }
    for (size_t k = 0; k < keys->auth.n; k++) {
        unsigned int mdlen = 0;
        HMAC(EVP_sha256(), keys->auth.key[k], FR_KEY_LEN, d, len - 32, md, &mdlen);
        if (CRYPTO_memcmp(md, d + len - 32, 32) == 0) {
            *verified = true;
            return FR_OK;
        }
    }
    return fr_err_set(err, FR_E_AUTH,
                      "segment %s: authentication failed: not written with this store's archive "
                      "key (altered, forged, written by another store, or with a key no longer "
                      "in archive.key)",
                      path);
}

static int seg_open_once(const char *path, const struct fr_archive_keys *keys, struct fr_seg **out,
                         struct fr_err *err);

int
fr_seg_open(const char *path, const struct fr_archive_keys *keys, struct fr_seg **out,
            struct fr_err *err)
{
    int rc = seg_open_once(path, keys, out, err);
    if (rc == FR_OK || rc == FR_E_IO || rc == FR_E_NOTFOUND)
        return rc;
    /* unreadable here, its bytes not those uploaded: the bucket's copy replaces it (the bad
       file kept in quarantine/) */
    struct fr_err rerr = {0};
    if (fr_objstore_repair(path, &rerr) != FR_OK)
        return rc;
    fr_log(FR_LOG_WARN, "retention", "%s; replaced by the bucket's copy", err->msg);
    return seg_open_once(path, keys, out, err);
}

static int
seg_open_once(const char *path, const struct fr_archive_keys *keys, struct fr_seg **out,
              struct fr_err *err)
{
    const unsigned char *key = NULL;
    *out = NULL;
    char *data;
    size_t len;
    int rc = fr_read_file(path, &data, &len, err);
    if (rc != FR_OK && access(path, F_OK) != 0 && errno == ENOENT) {
        /* evicted after it reached the bucket: fetched back into place */
        struct fr_err ferr = {0};
        int frc = fr_objstore_fetch(path, &ferr);
        if (frc == FR_OK)
            rc = fr_read_file(path, &data, &len, err);
        else if (frc != FR_E_NOTFOUND)
            rc = fr_err_set(err, frc, "%s", ferr.msg);
    }
    if (rc != FR_OK)
        return rc;
    struct fr_seg *s = fr_calloc(1, sizeof *s);
    s->path = fr_strdup(path);
    s->data = (unsigned char *)data;
    s->len = len;
    const unsigned char *d = s->data;
    if (len < SEG_HEADER + SEG_TRAILER || memcmp(d, SEG_MAGIC, 8) != 0) {
        rc = seg_bad(path, "not a flightrec segment, or truncated", err);
        goto fail;
    }
    if (get32(d + 8) < SEG_VERSION_MIN || get32(d + 8) > SEG_VERSION) {
        rc = fr_err_set(err, FR_E_VERSION, "segment %s: format version %u is not supported", path,
                        get32(d + 8));
        goto fail;
    }
    if (memcmp(d + len - 40, SEG_END, 8) != 0) {
        rc = seg_bad(path, "no end marker: the file is truncated", err);
        goto fail;
    }
    unsigned char md[32];
    if (get32(d + 8) >= 3) {
        rc = seg_check_mac(path, d, len, keys, md, &s->info.authenticated, err);
        if (rc != FR_OK)
            goto fail;
        s->unverified = !s->info.authenticated;
    } else {
        fr_sha256(d, len - 32, md);
        if (memcmp(md, d + len - 32, 32) != 0) {
            rc = seg_bad(path, "SHA-256 mismatch: the file is corrupt", err);
            goto fail;
        }
    }
    fr_hex_encode(md, 32, s->info.sha256);
    s->info.tier = (int)get32(d + 12);
    s->info.min_ts = (int64_t)get64(d + 16);
    s->info.max_ts = (int64_t)get64(d + 24);
    s->info.records = get64(d + 32);
    s->info.blocks = get32(d + 40);
    s->info.file_bytes = len;
    memcpy(s->info.policy, d + 64, 16);
    s->info.policy[16] = '\0';
    static const unsigned char none[8] = {0};
    if (memcmp(d + 56, none, 8) != 0)
        fr_hex_encode(d + 56, 8, s->info.store_id);
    uint32_t dict_len = get32(d + 44);
    uint64_t foff = get64(d + len - 56), flen = get64(d + len - 48);
    if (!span_within(SEG_HEADER, dict_len, 0, len - SEG_TRAILER) ||
        !span_within(foff, flen, SEG_HEADER, len - SEG_TRAILER)) {
        rc = seg_bad(path, "offsets point outside the file", err);
        goto fail;
    }
    if (s->unverified) {
        *out = s; /* header only: readable with the archive key */
        return FR_OK;
    }
    if (s->info.tier == FR_TIER_COLD) {
        fr_hex_encode(d + 48, 8, s->info.key_id);
        key = keys != NULL ? fr_keyring_find(&keys->cold, d + 48) : NULL;
        if (key == NULL && keys != NULL && keys->cold.n > 0) {
            rc = fr_err_set(err, FR_E_VALUE,
                            "segment %s: sealed with cold key %s, which the cold key file does "
                            "not hold (a different key file?)",
                            path, s->info.key_id);
            goto fail;
        }
        if (key == NULL) {
            *out = s; /* hash and header only: readable with the key */
            return FR_OK;
        }
        memcpy(s->key, key, FR_KEY_LEN);
        s->has_key = true;
    }
    unsigned char *plain;
    size_t plen;
    bool owned;
    if (dict_len > 0) {
        rc = seg_part(s, PART_DICT, d + SEG_HEADER, dict_len, &plain, &plen, &owned, err);
        if (rc != FR_OK)
            goto fail;
        s->ddict = ZSTD_createDDict(plain, plen);
        if (owned)
            free(plain);
    }
    rc = seg_part(s, PART_FOOTER, d + foff, flen, &plain, &plen, &owned, err);
    if (rc != FR_OK)
        goto fail;
    json_t *footer = json_loadb((const char *)plain, plen, 0, NULL);
    if (owned)
        free(plain);
    s->blocks = json_incref(json_object_get(footer, "blocks"));
    json_decref(footer);
    if (!json_is_array(s->blocks) || json_array_size(s->blocks) != s->info.blocks) {
        rc = seg_bad(path, "footer index does not parse or disagrees with the header", err);
        goto fail;
    }
    size_t i;
    json_t *b;
    json_array_foreach(s->blocks, i, b) s->info.raw_bytes +=
        (uint64_t)json_integer_value(json_object_get(b, "usize"));
    *out = s;
    return FR_OK;
fail:
    fr_seg_close(s);
    return rc;
}

unsigned
fr_seg_version(const struct fr_seg *s)
{
    return get32(s->data + 8);
}

const struct fr_seg_info *
fr_seg_get_info(const struct fr_seg *s)
{
    return &s->info;
}

void
fr_seg_close(struct fr_seg *s)
{
    if (s == NULL)
        return;
    ZSTD_freeDDict(s->ddict);
    json_decref(s->blocks);
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s->data);
    free(s->path);
    free(s);
}

static bool
bloom_hex_has(const char *hex, const char *conv)
{
    unsigned char b[BLOOM_BYTES];
    if (hex == NULL || strlen(hex) != 2 * BLOOM_BYTES)
        return true; /* no filter: look */
    for (int k = 0; k < BLOOM_BYTES; k++) {
        unsigned v;
        if (sscanf(hex + 2 * k, "%2x", &v) != 1)
            return true;
        b[k] = (unsigned char)v;
    }
    return bloom_has(b, conv);
}

static int
seg_readable(const struct fr_seg *s, struct fr_err *err)
{
    if (s->unverified)
        return fr_err_set(err, FR_E_CONFIG,
                          "segment %s is authenticated with the archive key (archive.key in "
                          "the keys folder), which is not loaded: it is not read unchecked",
                          s->path);
    if (s->info.tier == FR_TIER_COLD && !s->has_key)
        return fr_err_set(err, FR_E_CONFIG,
                          "segment %s is cold (encrypted): its key is needed to read it", s->path);
    return FR_OK;
}

/* Decompresses block i and passes its records to cb; *stop: cb asked to stop. */
static int
seg_read_block(struct fr_seg *s, ZSTD_DCtx *dctx, size_t i, const struct fr_col_where *where,
               int (*cb)(void *ud, const char *json, size_t len), void *ud, int *stop,
               struct fr_err *err)
{
    json_t *b = json_array_get(s->blocks, i);
    if (b == NULL)
        return seg_bad(s->path, "the map names a block the segment does not have", err);
    uint64_t off = (uint64_t)json_integer_value(json_object_get(b, "off"));
    uint64_t len = (uint64_t)json_integer_value(json_object_get(b, "len"));
    size_t usize = (size_t)json_integer_value(json_object_get(b, "usize"));
    if (!span_within(off, len, SEG_HEADER, s->len - SEG_TRAILER))
        return seg_bad(s->path, "a block points outside the file", err);
    if (usize > BLOCK_USIZE_MAX)
        return seg_bad(s->path, "a block claims a size no writer makes", err);
    unsigned char *comp;
    size_t clen;
    bool owned;
    int rc = seg_part(s, (uint32_t)i, s->data + off, len, &comp, &clen, &owned, err);
    if (rc != FR_OK)
        return rc;
    char *plain = NULL;
    size_t got = 0;
    if (fr_seg_version(s) >= 4) {
        struct fr_err cerr = {0};
        int crc = fr_col_decode_where(comp, clen, BLOCK_USIZE_MAX, where, &plain, &got, &cerr);
        if (owned)
            free(comp);
        if (crc != FR_OK)
            return seg_bad(s->path, cerr.msg, err);
        usize = got;
    } else {
        plain = fr_malloc(usize + 1);
        got = s->ddict ? ZSTD_decompress_usingDDict(dctx, plain, usize, comp, clen, s->ddict)
                       : ZSTD_decompressDCtx(dctx, plain, usize, comp, clen);
        if (owned)
            free(comp);
        if (ZSTD_isError(got) || got != usize) {
            free(plain);
            return seg_bad(s->path, "a block does not decompress", err);
        }
    }
    for (size_t at = 0; at < usize && !*stop;) {
        char *nl = memchr(plain + at, '\n', usize - at);
        size_t n = nl ? (size_t)(nl - (plain + at)) : usize - at;
        plain[at + n] = '\0';
        *stop = cb(ud, plain + at, n);
        at += n + 1;
    }
    free(plain);
    return FR_OK;
}

/* The listed blocks' records (where: only those it keeps, in a columnar block). */
static int
seg_read_blocks(struct fr_seg *s, const uint32_t *blocks, size_t n,
                const struct fr_col_where *where, int (*cb)(void *ud, const char *json, size_t len),
                void *ud, struct fr_err *err)
{
    int rc = seg_readable(s, err);
    if (rc != FR_OK)
        return rc;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    int stop = 0;
    for (size_t i = 0; i < n && !stop && rc == FR_OK; i++)
        rc = seg_read_block(s, dctx, blocks[i], where, cb, ud, &stop, err);
    ZSTD_freeDCtx(dctx);
    return rc;
}

/* The blocks whose time range and Bloom filter admit the query, then those. */
static int
seg_read_picked(struct fr_seg *s, const char *conv_id, int64_t since_ms, int64_t until_ms,
                const struct fr_col_where *where, int (*cb)(void *ud, const char *json, size_t len),
                void *ud, struct fr_err *err)
{
    size_t n = 0, i;
    uint32_t *pick = fr_malloc((json_array_size(s->blocks) + 1) * sizeof *pick);
    json_t *b;
    json_array_foreach(s->blocks, i, b)
    {
        int64_t bmin = json_integer_value(json_object_get(b, "min_ts"));
        int64_t bmax = json_integer_value(json_object_get(b, "max_ts"));
        if ((since_ms && bmax < since_ms) || (until_ms && bmin >= until_ms))
            continue;
        if (conv_id && !bloom_hex_has(json_string_value(json_object_get(b, "bloom")), conv_id))
            continue;
        pick[n++] = (uint32_t)i;
    }
    int rc = seg_read_blocks(s, pick, n, where, cb, ud, err);
    free(pick);
    return rc;
}

int
fr_seg_each(struct fr_seg *s, const char *conv_id, int64_t since_ms, int64_t until_ms,
            int (*cb)(void *ud, const char *json, size_t len), void *ud, struct fr_err *err)
{
    return seg_read_picked(s, conv_id, since_ms, until_ms, NULL, cb, ud, err);
}

int
fr_seg_each_block(struct fr_seg *s, const uint32_t *blocks, size_t n,
                  int (*cb)(void *ud, const char *json, size_t len), void *ud, struct fr_err *err)
{
    return seg_read_blocks(s, blocks, n, NULL, cb, ud, err);
}

int
fr_seg_each_event(struct fr_seg *s, const struct fr_seg_query *q,
                  int (*cb)(void *ud, const char *json, size_t len), void *ud, struct fr_err *err)
{
    /* an event record's envelope is its member "body" */
    char path[32];
    struct fr_col_where w = {path, q->id, q->id ? strlen(q->id) : 0};
    bool where = q->field != NULL && q->id != NULL && strlen(q->field) < sizeof path - 5;
    if (where)
        snprintf(path, sizeof path, "body\x1f%s", q->field);
    const char *conv = q->field && strcmp(q->field, "conv_id") == 0 ? q->id : NULL;
    return q->blocks != NULL
               ? seg_read_blocks(s, q->blocks, q->n, where ? &w : NULL, cb, ud, err)
               : seg_read_picked(s, conv, q->since_ms, q->until_ms, where ? &w : NULL, cb, ud, err);
}
