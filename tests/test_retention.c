/*
 * tests/test_retention.c - archive segments (dictionary round trip,
 * corruption, cold keys) and the retention manager (tier transitions at
 * chosen clock times, downsampling, the same conversation view before and
 * after compaction, and kill -9 at every crash point of a run: afterwards
 * every event is readable exactly once across tiers).
 */
#include "tests/support/support.h"

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "retention/columns.h"
#include "retention/hot/archive.h"
#include "retention/hot/sqlite_body.h"
#include "retention/retention.h"

#ifndef FR_BIN
#error FR_BIN must name the flightrec binary
#endif

#define DAY (86400000LL)
#define BASE 1771357445201LL /* the generator's first ts_ms */

/* ---- segments ---- */

static char *
record(int i)
{
    return fr_asprintf("{\"t\":\"event\",\"id\":%d,\"body\":{\"kind\":\"tool\",\"ts_ms\":%lld,"
                       "\"conv_id\":\"c-%d\",\"data\":{\"name\":\"search\",\"result\":\"row %d "
                       "of the quarterly report for customer %d\"}}}",
                       i, BASE + i, i % 37, i, i % 101);
}

static int
collect(void *ud, const char *json, size_t len)
{
    json_t *arr = ud;
    json_array_append_new(arr, json_stringn(json, len));
    return 0;
}

static char *
write_segment(const char *dir, const char *name, int tier, const unsigned char *key, int n)
{
    char *path = t_path(dir, name);
    struct fr_seg_writer *w = fr_seg_writer_new(tier, key, "0123456789abcdef");
    for (int i = 0; i < n; i++) {
        char *r = record(i);
        char conv[16];
        snprintf(conv, sizeof conv, "c-%d", i % 37);
        fr_seg_writer_add(w, r, strlen(r), BASE + i, conv, NULL);
        free(r);
    }
    struct fr_seg_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_seg_writer_finish(w, path, &info, &err), FR_OK);
    assert_int_equal(info.records, (uint64_t)n);
    fr_seg_writer_free(w);
    return path;
}

static void
test_segment_dictionary_round_trip(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *path = write_segment(dir, "a.warm.seg", FR_TIER_WARM, NULL, 20000);
    struct fr_seg *s;
    struct fr_err err = {0};
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_OK);
    const struct fr_seg_info *in = fr_seg_get_info(s);
    assert_int_equal(in->records, 20000);
    assert_true(in->blocks >= 2);
    assert_int_equal(in->min_ts, BASE);
    assert_int_equal(in->max_ts, BASE + 19999);
    assert_string_equal(in->policy, "0123456789abcdef");
    assert_true(in->raw_bytes > 6 * in->file_bytes); /* the dictionary pays off */
    /* a dictionary was trained and stored (header bytes 44..47: its length) */
    char *bytes;
    size_t len;
    assert_int_equal(fr_read_file(path, &bytes, &len, NULL), FR_OK);
    assert_true(bytes[44] || bytes[45] || bytes[46] || bytes[47]);
    free(bytes);
    json_t *all = json_array();
    assert_int_equal(fr_seg_each(s, NULL, 0, 0, collect, all, &err), FR_OK);
    assert_int_equal(json_array_size(all), 20000);
    for (int i = 0; i < 20000; i += 997) {
        char *r = record(i);
        assert_string_equal(json_string_value(json_array_get(all, (size_t)i)), r);
        free(r);
    }
    json_decref(all);
    /* the conv_id filter never drops a record of that conversation (every block holds c-5
     * here; skipping blocks is test_segment_conv_filter_skips_blocks) */
    json_t *some = json_array();
    assert_int_equal(fr_seg_each(s, "c-5", 0, 0, collect, some, &err), FR_OK);
    size_t hits = 0;
    for (size_t i = 0; i < json_array_size(some); i++)
        hits += strstr(json_string_value(json_array_get(some, i)), "\"conv_id\":\"c-5\"") != NULL;
    assert_int_equal(hits, (20000 + 36 - 5) / 37);
    json_decref(some);
    /* a time range outside the segment reads nothing */
    some = json_array();
    assert_int_equal(fr_seg_each(s, NULL, BASE + 100000, 0, collect, some, &err), FR_OK);
    assert_int_equal(json_array_size(some), 0);
    json_decref(some);
    fr_seg_close(s);
    t_rmtree(dir);
    free(dir);
    free(path);
}

/*
 * The footer's conv_id filters let a reader skip blocks: with each
 * conversation written in one run of records (so in as few blocks as
 * possible), asking for one reads fewer records than the segment holds,
 * every one of that conversation's among them, and asking for one that is
 * not there reads none.
 */
static void
test_segment_conv_filter_skips_blocks(void **state)
{
    (void)state;
    char *dir = t_tmpdir(), *path = t_path(dir, "runs.warm.seg");
    const int n = 30000, run = 10000;
    struct fr_seg_writer *w = fr_seg_writer_new(FR_TIER_WARM, NULL, "0123456789abcdef");
    for (int i = 0; i < n; i++) {
        char *r = record(i), conv[16];
        snprintf(conv, sizeof conv, "run-%d", i / run);
        fr_seg_writer_add(w, r, strlen(r), BASE + i, conv, NULL);
        free(r);
    }
    struct fr_seg_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_seg_writer_finish(w, path, &info, &err), FR_OK);
    fr_seg_writer_free(w);
    assert_true(info.blocks >= 3);
    struct fr_seg *s;
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_OK);
    json_t *got = json_array();
    assert_int_equal(fr_seg_each(s, "run-1", 0, 0, collect, got, &err), FR_OK);
    size_t mine = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        json_t *o = json_loads(json_string_value(json_array_get(got, i)), 0, NULL);
        json_int_t id = json_integer_value(json_object_get(o, "id"));
        mine += id >= run && id < 2 * run;
        json_decref(o);
    }
    assert_int_equal(mine, run);
    assert_true(json_array_size(got) < (size_t)n);
    json_array_clear(got);
    assert_int_equal(fr_seg_each(s, "run-none", 0, 0, collect, got, &err), FR_OK);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    fr_seg_close(s);
    t_rmtree(dir);
    free(path);
    free(dir);
}

static void
test_segment_corrupt_and_truncated_detected(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *path = write_segment(dir, "b.warm.seg", FR_TIER_WARM, NULL, 3000);
    char *bytes;
    size_t len;
    assert_int_equal(fr_read_file(path, &bytes, &len, NULL), FR_OK);
    /* one flipped byte in the middle */
    bytes[len / 2] ^= 0x20;
    FILE *fp = fopen(path, "wb");
    fwrite(bytes, 1, len, fp);
    fclose(fp);
    struct fr_seg *s = NULL;
    struct fr_err err = {0};
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "SHA-256 mismatch"));
    /* cut short */
    bytes[len / 2] ^= 0x20;
    fp = fopen(path, "wb");
    fwrite(bytes, 1, len - 100, fp);
    fclose(fp);
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "truncated"));
    /* not a segment at all */
    fp = fopen(path, "wb");
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "not a flightrec segment"));
    free(bytes);
    t_rmtree(dir);
    free(dir);
    free(path);
}

static void
test_segment_cold_needs_its_key(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    unsigned char key[FR_KEY_LEN] = {9, 9, 9}, wrong[FR_KEY_LEN] = {1};
    char *path = write_segment(dir, "c.cold.seg", FR_TIER_COLD, key, 2000);
    /* nothing of the records is in the file in clear */
    char *bytes;
    size_t len;
    assert_int_equal(fr_read_file(path, &bytes, &len, NULL), FR_OK);
    assert_null(memmem(bytes, len, "quarterly", 9));
    free(bytes);
    struct fr_seg *s;
    struct fr_err err = {0};
    assert_int_equal(fr_seg_open(path, NULL, &s, &err), FR_OK); /* header and hash only */
    assert_int_equal(fr_seg_get_info(s)->tier, FR_TIER_COLD);
    json_t *all = json_array();
    assert_int_equal(fr_seg_each(s, NULL, 0, 0, collect, all, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "its key is needed"));
    fr_seg_close(s);
    struct fr_archive_keys kw = {.cold = {.n = 1}}, kr = {.cold = {.n = 2}};
    memcpy(kw.cold.key[0], wrong, FR_KEY_LEN);
    assert_int_equal(fr_seg_open(path, &kw, &s, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "does not hold"));
    /* after a rotation the key file holds the new key first and the old one after it: the
       segment sealed with the old one still opens */
    memcpy(kr.cold.key[0], wrong, FR_KEY_LEN);
    memcpy(kr.cold.key[1], key, FR_KEY_LEN);
    assert_int_equal(fr_seg_open(path, &kr, &s, &err), FR_OK);
    assert_int_equal(fr_seg_each(s, NULL, 0, 0, collect, all, &err), FR_OK);
    assert_int_equal(json_array_size(all), 2000);
    fr_seg_close(s);
    json_decref(all);
    /* the header is authenticated by the key, not only by the file's SHA-256: a time range
       edited and the trailer's hash recomputed, every sealed part refuses to open */
    assert_int_equal(fr_read_file(path, &bytes, &len, NULL), FR_OK);
    bytes[16] ^= 1; /* min_ts */
    SHA256((unsigned char *)bytes, len - 32, (unsigned char *)bytes + len - 32);
    FILE *fp = fopen(path, "wb");
    fwrite(bytes, 1, len, fp);
    fclose(fp);
    free(bytes);
    assert_int_equal(fr_seg_open(path, &kr, &s, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "moved or altered"));
    t_rmtree(dir);
    free(dir);
    free(path);
}

/* A committed key file copied where it may be loaded (0600). */
static void
load_test_key(const char *dir, const char *name, struct fr_keyring *ring)
{
    char *src = fr_asprintf("%s/segment-v3/%s", FR_TEST_DATA, name), *dst = t_path(dir, name);
    char *b;
    size_t len;
    assert_int_equal(fr_read_file(src, &b, &len, NULL), FR_OK);
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
    struct fr_err err = {0};
    assert_int_equal(fr_keyring_load(dst, false, ring, NULL, &err), FR_OK);
    free(b);
    free(src);
    free(dst);
}

static int
collect_line(void *ud, const char *json, size_t len)
{
    fwrite(json, 1, len, ud);
    fputc('\n', ud);
    return 0;
}

/*
 * Segments written by an earlier flightrec stay readable: tests/data/
 * segment-vN holds a warm and a cold segment of format version N (v3: written
 * by the code of 2026-12-01, v4: of 2026-12-04 (7cd3fac), v5: of 2026-12-07
 * (its writer as at a317032), all from fr-gen traffic with the committed test keys of
 * segment-v3) and the records they hold (`archive cat`); both must read back
 * to exactly those records, and a look-up by conversation must find its
 * records (from a columnar block, only those: fr_seg_each_event).
 */
static size_t
committed_format_readable(unsigned version)
{
    size_t read = 0;
    char *dir = t_tmpdir();
    struct fr_archive_keys keys = {0};
    load_test_key(dir, "archive.key", &keys.auth);
    load_test_key(dir, "cold.key", &keys.cold);
    char *want_path = fr_asprintf("%s/segment-v%u/records.ndjson", FR_TEST_DATA, version), *want;
    size_t want_len;
    assert_int_equal(fr_read_file(want_path, &want, &want_len, NULL), FR_OK);
    static const char *const files[] = {"warm.seg", "cold.seg"};
    for (size_t i = 0; i < 2; i++) {
        char *path = fr_asprintf("%s/segment-v%u/%s", FR_TEST_DATA, version, files[i]);
        struct fr_seg *seg;
        struct fr_err err = {0};
        assert_int_equal(fr_seg_open(path, &keys, &seg, &err), FR_OK);
        assert_int_equal(fr_seg_version(seg), version);
        assert_true(fr_seg_get_info(seg)->authenticated);
        assert_int_equal(fr_seg_get_info(seg)->tier, i == 0 ? FR_TIER_WARM : FR_TIER_COLD);
        char *got = NULL;
        size_t got_len = 0;
        FILE *mf = open_memstream(&got, &got_len);
        assert_int_equal(fr_seg_each(seg, NULL, 0, 0, collect_line, mf, &err), FR_OK);
        fclose(mf);
        if (got_len != want_len || memcmp(got, want, want_len) != 0)
            fail_msg("%s: its records differ from segment-v%u/records.ndjson", files[i], version);
        free(got);
        mf = open_memstream(&got, &got_len);
        assert_int_equal(fr_seg_each(seg, "c-000003", 0, 0, collect_line, mf, &err), FR_OK);
        fclose(mf);
        assert_non_null(strstr(got, "\"conv_id\":\"c-000003\""));
        free(got);
        /* the read of one conversation's events: in a columnar block (v4 on) exactly its event
           records, in order; in a row block every record of the blocks that may hold them */
        struct fr_seg_query q = {.field = "conv_id", .id = "c-000003"};
        mf = open_memstream(&got, &got_len);
        assert_int_equal(fr_seg_each_event(seg, &q, collect_line, mf, &err), FR_OK);
        fclose(mf);
        size_t mine = 0;
        for (char *line = want, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            *nl = '\0';
            bool is = strstr(line, "{\"t\":\"event\"") == line &&
                      strstr(line, "\"conv_id\":\"c-000003\"") != NULL;
            if (is && strstr(got, line) == NULL)
                fail_msg("%s: a record of c-000003 not read: %.80s", files[i], line);
            mine += is;
            *nl = '\n';
        }
        assert_true(mine > 5);
        if (version >= 4) {
            size_t lines = 0;
            for (const char *c = got; (c = strchr(c, '\n')) != NULL; c++)
                lines++;
            assert_int_equal(lines, mine);
        }
        free(got);
        fr_seg_close(seg);
        free(path);
        read++;
    }
    fr_archive_keys_wipe(&keys);
    free(want);
    free(want_path);
    t_rmtree(dir);
    free(dir);
    return read;
}

static void
test_segment_committed_format_v3_readable(void **state)
{
    (void)state;
    assert_int_equal(committed_format_readable(3), 2);
}

/* format 4: columnar blocks whose id columns are text (before codec 9) */
static void
test_segment_committed_format_v4_readable(void **state)
{
    (void)state;
    assert_int_equal(committed_format_readable(4), 2);
}

/* format 5, what retention writes today (written on 2026-12-07 by the writer of a317032) */
static void
test_segment_committed_format_v5_readable(void **state)
{
    (void)state;
    assert_int_equal(committed_format_readable(5), 2);
}

/* n records through the columnar codec: the block (*block, *blen) and what it decodes to. */
static char *
col_round_trip(char **rec, const size_t *len, size_t n, unsigned char **block, size_t *blen,
               size_t *olen)
{
    struct fr_err err = {0};
    assert_int_equal(fr_col_encode((const char *const *)rec, len, n, 3, block, blen, NULL, &err),
                     FR_OK);
    char *out;
    if (fr_col_decode(*block, *blen, 64 << 20, &out, olen, &err) != FR_OK)
        fail_msg("decode: %s", err.msg);
    return out;
}

/* A varint of a columnar block (docs/archive-format.md), for the tests that look inside one. */
static uint64_t
blk_varint(const unsigned char *b, size_t n, size_t *at)
{
    uint64_t v = 0;
    for (unsigned sh = 0; *at < n && sh < 64; sh += 7) {
        unsigned char c = b[(*at)++];
        v |= (uint64_t)(c & 0x7f) << sh;
        if (c < 0x80)
            break;
    }
    return v;
}

/*
 * What a block's streams took, by codec (bench/segment.sh prints it): the
 * same block as uncounted, and the counts add up to the block but for its
 * header (magic, record and stream counts).
 */
static void
test_columns_counted(void **state)
{
    (void)state;
    enum { N = 300 };
    char *rec[N];
    size_t len[N];
    for (size_t i = 0; i < N; i++) {
        rec[i] = fr_asprintf("{\"id\":%zu,\"event_id\":\"%016zx%016zx\",\"kind\":\"%s\","
                             "\"text\":\"the answer number %zu was long enough to be text\"}",
                             i, i * 7919, i * 104729, i % 3 ? "provider" : "tool", i % 7);
        len[i] = strlen(rec[i]);
    }
    unsigned char *plain, *counted;
    size_t plen, clen;
    struct fr_col_stats st = {0};
    struct fr_err err = {0};
    assert_int_equal(fr_col_encode((const char *const *)rec, len, N, 3, &plain, &plen, NULL, &err),
                     FR_OK);
    assert_int_equal(fr_col_encode((const char *const *)rec, len, N, 3, &counted, &clen, &st, &err),
                     FR_OK);
    assert_int_equal(plen, clen);
    assert_memory_equal(plain, counted, plen);
    size_t at = 4, packed = 0;
    assert_int_equal(blk_varint(counted, clen, &at), N);
    blk_varint(counted, clen, &at); /* the streams */
    for (int c = 0; c < FR_COL_CODECS; c++) {
        packed += st.packed[c];
        assert_true(st.packed[c] == 0 || strcmp(fr_col_codec_name(c), "?") != 0);
    }
    assert_int_equal(packed, clen - at);
    assert_true(st.packed[3] > 0 && st.raw[3] > 0); /* integers: id */
    assert_true(st.packed[9] > 0);                  /* hex ids: event_id */
    assert_true(st.packed[5] > 0);                  /* dictionary: kind */
    free(plain);
    free(counted);
    for (size_t i = 0; i < N; i++)
        free(rec[i]);
}

/* The codec and raw length of the block's stream named name (a column: path and type byte). */
static int
blk_stream(const unsigned char *b, size_t n, const char *name, size_t *rawlen)
{
    size_t at = 4;
    blk_varint(b, n, &at); /* records */
    uint64_t streams = blk_varint(b, n, &at);
    for (uint64_t i = 0; i < streams && at < n; i++) {
        int codec = b[at++];
        size_t nl = blk_varint(b, n, &at), nat = at;
        at += nl;
        *rawlen = blk_varint(b, n, &at);
        at += blk_varint(b, n, &at);
        if (nl == strlen(name) && memcmp(b + nat, name, nl) == 0)
            return codec;
    }
    return -1;
}

/* The block b (n bytes) with its last stream's raw bytes replaced by raw (compressed again). */
static unsigned char *
blk_with_last_raw(const unsigned char *b, size_t n, const unsigned char *raw, size_t rawlen,
                  size_t *outlen)
{
    size_t at = 4, last = 0;
    blk_varint(b, n, &at);
    uint64_t streams = blk_varint(b, n, &at);
    for (uint64_t i = 0; i < streams && at < n; i++) {
        last = at++;
        at += blk_varint(b, n, &at);
        blk_varint(b, n, &at);
        at += blk_varint(b, n, &at);
    }
    size_t nat = last + 1, nl = blk_varint(b, n, &nat), cap = ZSTD_compressBound(rawlen);
    unsigned char *o = fr_malloc(n + cap + 64), *z = fr_malloc(cap);
    size_t zn = ZSTD_compress(z, cap, raw, rawlen, 3), len = 0;
    assert_false(ZSTD_isError(zn));
    memcpy(o, b, nat + nl); /* everything before, the codec and the name */
    len = nat + nl;
    uint64_t v[2] = {rawlen, zn};
    for (int k = 0; k < 2; k++) {
        for (; v[k] >= 0x80; v[k] >>= 7)
            o[len++] = (unsigned char)(v[k] | 0x80);
        o[len++] = (unsigned char)v[k];
    }
    memcpy(o + len, z, zn);
    free(z);
    *outlen = len + zn;
    return o;
}

/* A column's raw bytes that a decoder must refuse (why: in its reason), or take (why NULL). */
struct bad_col {
    unsigned char raw[48];
    size_t len;
    const char *why;
};

/*
 * Each case as the last stream of block: the first must decode to good_len
 * bytes, each other must be refused with a reason (containing its why).
 */
static void
refuse_each(const unsigned char *block, size_t blen, const struct bad_col *bad, size_t nbad,
            size_t good_len)
{
    for (size_t i = 0; i < nbad; i++) {
        size_t n, olen;
        char *out;
        unsigned char *b = blk_with_last_raw(block, blen, bad[i].raw, bad[i].len, &n);
        struct fr_err err = {0};
        int rc = fr_col_decode(b, n, 64 << 20, &out, &olen, &err);
        if (i == 0) {
            if (rc != FR_OK)
                fail_msg("case 0: %s", err.msg);
            assert_int_equal(olen, good_len);
            free(out);
        } else {
            if (rc == FR_OK)
                fail_msg("case %zu: decoded", i);
            assert_int_equal(rc, FR_E_VALUE);
            assert_non_null(strstr(err.msg, "columnar block"));
            if (bad[i].why != NULL && strstr(err.msg, bad[i].why) == NULL)
                fail_msg("case %zu: %s", i, err.msg);
        }
        free(b);
    }
}

/*
 * An id column (codec 9 or 10) that does not add up is refused with a
 * reason, never read out of bounds: a reference to an id before the first,
 * lengths past the bytes, counts past the column or the records, a length
 * near 2^64, a form empty, too long or cut short, digits cut short.
 */
static void
test_columns_hex_ids_refused(void **state)
{
    (void)state;
    char *rec[] = {fr_strdup("{\"a\":\"0011223344556677\"}"),
                   fr_strdup("{\"a\":\"0011223344556677\"}"),
                   fr_strdup("{\"a\":\"8899aabbccddeeff\"}")};
    size_t len[] = {strlen(rec[0]), strlen(rec[1]), strlen(rec[2])}, blen, olen;
    unsigned char *block;
    char *out = col_round_trip(rec, len, 3, &block, &blen, &olen);
    assert_string_equal(out, "{\"a\":\"0011223344556677\"}\n{\"a\":\"0011223344556677\"}\n"
                             "{\"a\":\"8899aabbccddeeff\"}\n");
    free(out);
    size_t raw = 0;
    assert_int_equal(blk_stream(block, blen, "as", &raw), 9);
    static const struct bad_col bad[] = {
        /* the column as written: 3 values, references 0 1 0, lengths 8 8, then 16 bytes */
        {{3,    0,    1,    0,    8,    8,    0x00, 0x11, 0x22, 0x33, 0x44,
          0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
         22,
         NULL},
        {{3, 0, 2, 0, 8, 8, 0}, 22, "refers to none before it"},
        {{3, 1, 1, 0, 8, 8, 0}, 22, "refers to none before it"},
        {{3, 0, 1, 0, 8, 9, 0}, 22, "cut short"},
        {{3, 0, 1, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f}, 30, "cut short"},
        {{4, 0, 1, 0, 1, 8, 8, 0}, 23, "more values than its records use"},
        {{2, 0, 1, 8, 0}, 12, NULL /* fewer values than the records use */},
        {{0x7f, 0}, 2, "claims more values"},
    };
    refuse_each(block, blen, bad, sizeof bad / sizeof bad[0],
                strlen(rec[0]) + strlen(rec[1]) + strlen(rec[2]) + 3);
    free(block);
    /* one form (codec 10): "c-" and 16 digits, the c a digit too (17, the last byte half) */
    char *frec[] = {fr_strdup("{\"b\":\"c-0011223344556677\"}"),
                    fr_strdup("{\"b\":\"c-0011223344556677\"}"),
                    fr_strdup("{\"b\":\"c-8899aabbccddeeff\"}")};
    size_t flen[] = {strlen(frec[0]), strlen(frec[1]), strlen(frec[2])};
    out = col_round_trip(frec, flen, 3, &block, &blen, &olen);
    assert_int_equal(olen, flen[0] + flen[1] + flen[2] + 3);
    free(out);
    assert_int_equal(blk_stream(block, blen, "bs", &raw), 10);
#define FORM 18, 0, '-', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    static const struct bad_col fbad[] = {
        {{FORM, 3,    0,    1,    0,    0xc0, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56,
          0x67, 0x70, 0xc8, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0},
         41,
         NULL},
        {{0}, 1, "form is out of range"},
        {{0xc8, 0x01, 0}, 3, "form is out of range"},
        {{18, 0, '-'}, 3, "form is out of range"},
        {{FORM, 3, 0, 1, 0, 0xc0, 0x01, 0x12}, 27, "cut short"},
        {{FORM, 3,    0,    2,    0,    0xc0, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56,
          0x67, 0x70, 0xc8, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0},
         41,
         "refers to none before it"},
    };
#undef FORM
    refuse_each(block, blen, fbad, sizeof fbad / sizeof fbad[0], flen[0] + flen[1] + flen[2] + 3);
    for (size_t i = 0; i < 3; i++)
        free(frec[i]);
    free(block);
    for (size_t i = 0; i < 3; i++)
        free(rec[i]);
}

/*
 * Id columns (segment format 5): lowercase hex of an even length (codec 9),
 * or of one form (codec 10: UUIDs, "c-" and digits, an odd number of
 * digits), goes in binary, each id seen before in the block as how far back
 * it is among the column's distinct ids; they read back as the same text.
 * Columns that only look alike stay text: an uppercase digit, a value of
 * another length or another byte where the form has a fixed one, an empty
 * value, short codes, decimal digits alone (dates, numbers as strings). A
 * block cut short is refused.
 */
static void
test_columns_hex_ids(void **state)
{
    (void)state;
    size_t n = 2000;
    char **rec = fr_calloc(n, sizeof *rec);
    size_t *len = fr_calloc(n, sizeof *len);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char trace[33] = "", conv[17] = "";
    for (size_t i = 0; i < n; i++) {
        char ev[33];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            snprintf(ev + 16 * k, 17, "%016llx", (unsigned long long)x);
        }
        if (i % 8 == 0) /* a trace of 8 events */
            snprintf(trace, sizeof trace, "%.16s%016zx", ev + 8, i);
        if (i % 50 < 5) /* conversations come back after others */
            snprintf(conv, sizeof conv, "%016zx", (i % 50) * 7919);
        rec[i] =
            fr_asprintf("{\"event_id\":\"%s\",\"trace_id\":\"%s\",\"conv\":\"%s\","
                        "\"upper\":\"%s\",\"odd\":\"%.31s\",\"gap\":\"%s\","
                        "\"code\":\"%02zx\",\"uuid\":\"%.8s-%.4s-4%.3s-a%.3s-%.12s\","
                        "\"cid\":\"c-%.17s\",\"uuid_x\":\"%.8s%c%.4s\","
                        "\"when\":\"2026-12-04T19:%02zu:%02zuZ\",\"dec\":\"%016zu\"}",
                        ev, trace, conv, i == 1500 ? "ABCDEF0123456789" : ev + 16, ev,
                        i == 700 ? "" : ev, i % 4, ev, ev + 8, ev + 12, ev + 15, ev + 18, ev + 1,
                        ev + 2, i == 1999 ? '_' : '-', ev + 10, i / 60 % 60, i % 60, i * 7919);
        len[i] = strlen(rec[i]);
    }
    unsigned char *block;
    size_t blen, olen;
    struct fr_err err = {0};
    char *out = col_round_trip(rec, len, n, &block, &blen, &olen);
    char *at = out;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(at, '\n');
        assert_non_null(nl);
        if ((size_t)(nl - at) != len[i] || memcmp(at, rec[i], len[i]) != 0)
            fail_msg("record %zu: got %.*s, want %s", i, (int)(nl - at), at, rec[i]);
        at = nl + 1;
    }
    assert_int_equal((size_t)(at - out), olen);
    free(out);
    /* the ids in binary: 16 bytes, a reference and a length per new one */
    size_t raw = 0;
    assert_int_equal(blk_stream(block, blen, "event_ids", &raw), 9);
    assert_true(raw <= n * 18 + 8);
    assert_int_equal(blk_stream(block, blen, "trace_ids", &raw), 9);
    assert_true(raw <= n + (n / 8) * 17 + 8); /* a reference each, 250 ids */
    assert_int_equal(blk_stream(block, blen, "convs", &raw), 9);
    assert_true(raw <= n + 5 * 9 + 8);
    /* one form (codec 10): 36-byte UUIDs in 16 bytes; "c-" and 17 digits in 9 */
    assert_int_equal(blk_stream(block, blen, "uuids", &raw), 10);
    assert_true(raw <= 40 + n * 17 + 8);
    assert_int_equal(blk_stream(block, blen, "cids", &raw), 10);
    assert_true(raw <= 24 + n * 10 + 8);
    assert_int_not_equal(blk_stream(block, blen, "uuid_xs", &raw), 10); /* one '_' for '-' */
    assert_int_not_equal(blk_stream(block, blen, "whens", &raw), 10);   /* decimal digits */
    assert_int_not_equal(blk_stream(block, blen, "decs", &raw), 9);
    assert_int_not_equal(blk_stream(block, blen, "uppers", &raw), 9);
    assert_int_not_equal(blk_stream(block, blen, "odds", &raw), 9);
    assert_int_equal(blk_stream(block, blen, "odds", &raw), 10); /* 31 digits: the last byte half */
    assert_int_not_equal(blk_stream(block, blen, "gaps", &raw), 10);
    assert_int_not_equal(blk_stream(block, blen, "uppers", &raw), 10);
    assert_int_not_equal(blk_stream(block, blen, "gaps", &raw), 9);
    assert_int_not_equal(blk_stream(block, blen, "codes", &raw), 9);
    for (size_t cut = 0; cut < blen; cut += blen / 97 + 1) {
        assert_int_equal(fr_col_decode(block, cut, 64 << 20, &out, &olen, &err), FR_E_VALUE);
        assert_non_null(strstr(err.msg, "columnar block"));
    }
    free(block);
    for (size_t i = 0; i < n; i++)
        free(rec[i]);
    free(rec);
    free(len);
}

/*
 * The columnar block codec (segment format 4) gives back each compact
 * record byte for byte (escapes as they were; a record with whitespace as
 * the same JSON), for whatever records hold: nested and empty
 * objects, arrays, reals, the integer extremes, escapes, NUL, non-ASCII,
 * odd keys (empty, 0x1f, quotes), a field changing type between records,
 * repeated long values, and enough records for every codec (dictionary,
 * plain, word tokens). A block cut short or with a flipped byte is refused
 * with a reason, never read out of bounds (the suite runs under ASan).
 */
/*
 * A block cut short anywhere is refused with a reason; with a byte flipped
 * (flip xor'ed in, then taken out again) it decodes or is refused, never
 * crashes. where as fr_col_decode_where's (NULL: every record).
 */
static void
damaged_blocks_refused(unsigned char *block, size_t blen, const struct fr_col_where *where,
                       unsigned char flip)
{
    char *out;
    size_t olen;
    struct fr_err err = {0};
    for (size_t cut = 0; cut < blen; cut += blen / 97 + 1) {
        assert_int_equal(fr_col_decode_where(block, cut, 64 << 20, where, &out, &olen, &err),
                         FR_E_VALUE);
        assert_non_null(strstr(err.msg, "columnar block"));
    }
    for (size_t k = 4; k < blen; k += blen / 61 + 1) {
        block[k] ^= flip;
        if (fr_col_decode_where(block, blen, 64 << 20, where, &out, &olen, &err) == FR_OK)
            free(out);
        block[k] ^= flip;
    }
}

/*
 * fr_col_decode_where puts together exactly the records whose body's
 * conv_id is the one asked for (or written with an escape, left to the
 * caller), in order and byte for byte as the whole decode gives them, and
 * reads past every other: shapes with and without arrays (those follow a
 * program, these a walk), the same key at other paths (the record's top, a
 * nested object, an array's elements), a conv_id that is a number, a
 * conversation with no record. A block cut short or with a byte flipped is
 * a reason or a decode, never a crash.
 */
static void
test_columns_decode_where(void **state)
{
    (void)state;
    size_t n = 2400;
    char **rec = fr_calloc(n, sizeof *rec);
    size_t *len = fr_calloc(n, sizeof *len);
    int *conv = fr_calloc(n, sizeof *conv); /* its conversation c-K: K; -1 none, -2 escaped */
    for (size_t i = 0; i < n; i++) {
        unsigned k = (unsigned)(i * 7 % 11), form = (unsigned)(i % 9);
        conv[i] = (int)k;
        switch (form) {
        case 0:
        case 1:
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"v\":1,\"kind\":\"x\","
                                 "\"conv_id\":\"c-%u\",\"data\":{\"a\":%zu}}}",
                                 i, k, i * 3);
            break;
        case 2:
            rec[i] = fr_asprintf(
                "{\"t\":\"event\",\"id\":%zu,\"body\":{\"kind\":\"provider\",\"conv_id\":\"c-%u\","
                "\"data\":{\"messages\":[{\"role\":\"user\",\"content\":\"m%zu\"},{\"role\":"
                "\"assistant\",\"content\":\"r%zu\",\"n\":[%zu,%zu]}]}}}",
                i, k, i, i, i % 4, i % 5);
            break;
        case 3: /* the key at another path */
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"kind\":\"x\",\"data\":{"
                                 "\"conv_id\":\"c-%u\"},\"body\":{\"conv_id\":\"c-%u\"}}}",
                                 i, k, k);
            conv[i] = -1;
            break;
        case 4: /* a conversation summary: conv_id at the top */
            rec[i] =
                fr_asprintf("{\"t\":\"conversation\",\"conv_id\":\"c-%u\",\"events\":%zu}", k, i);
            conv[i] = -1;
            break;
        case 5: /* not a string */
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"conv_id\":%u}}", i, k);
            conv[i] = -1;
            break;
        case 6: /* written with an escape */
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"conv_id\":\"c-\\u003%u\","
                                 "\"kind\":\"x\"}}",
                                 i, k % 10);
            conv[i] = -2;
            break;
        case 7: /* the key in an array's elements too, and the record's own after them */
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"items\":[{\"conv_id\":"
                                 "\"c-%u\"},{\"conv_id\":\"c-%u\"}],\"conv_id\":\"c-%u\"}}",
                                 i, (k + 1) % 11, k, k);
            break;
        default: /* no conversation */
            rec[i] = fr_asprintf("{\"t\":\"event\",\"id\":%zu,\"body\":{\"kind\":\"runtime\"}}", i);
            conv[i] = -1;
        }
        len[i] = strlen(rec[i]);
    }
    unsigned char *block;
    size_t blen, olen;
    char *all = col_round_trip(rec, len, n, &block, &blen, &olen);
    const char *want_ids[] = {"c-0", "c-3", "c-10", "c-11"};
    for (size_t w = 0; w < sizeof want_ids / sizeof want_ids[0]; w++) {
        struct fr_col_where where = {"body\x1f"
                                     "conv_id",
                                     want_ids[w], strlen(want_ids[w])};
        struct fr_err err = {0};
        char *got;
        size_t glen;
        if (fr_col_decode_where(block, blen, 64 << 20, &where, &got, &glen, &err) != FR_OK)
            fail_msg("decode where %s: %s", want_ids[w], err.msg);
        /* the whole decode's lines of that conversation (and the escaped ones), in order */
        char *expect = fr_malloc(olen + 1);
        size_t elen = 0, kept = 0, mine = 0;
        const char *at = all;
        for (size_t i = 0; i < n; i++) {
            const char *nl = strchr(at, '\n');
            assert_non_null(nl);
            char id[16];
            snprintf(id, sizeof id, "c-%d", conv[i]);
            bool is = conv[i] >= 0 && strcmp(id, want_ids[w]) == 0;
            if (is || conv[i] == -2) {
                memcpy(expect + elen, at, (size_t)(nl - at) + 1);
                elen += (size_t)(nl - at) + 1;
                kept++;
                mine += is;
            }
            at = nl + 1;
        }
        if (glen != elen || memcmp(got, expect, glen) != 0)
            fail_msg("where %s: %zu bytes, want %zu", want_ids[w], glen, elen);
        /* the records of c-0 and c-3 are there, those of c-11 (none) not */
        if (strcmp(want_ids[w], "c-11") == 0)
            assert_int_equal(mine, 0);
        else
            assert_true(mine > 50);
        assert_true(kept < n / 3);
        free(got);
        free(expect);
    }
    /* cut short anywhere, or a byte flipped: a reason or records, never a crash */
    struct fr_col_where where = {"body\x1f"
                                 "conv_id",
                                 "c-3", 3};
    damaged_blocks_refused(block, blen, &where, 0x55);
    free(all);
    free(block);
    for (size_t i = 0; i < n; i++)
        free(rec[i]);
    free(rec);
    free(len);
    free(conv);
}

static void
test_columns_round_trip(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "{\"t\":\"event\",\"id\":1,\"body\":{\"kind\":\"tool\",\"data\":{\"a\":[1,2.5,{\"x\":null}]"
        ","
        "\"e\":{},\"r\":-0.25,\"big\":9223372036854775807,\"small\":-9223372036854775808}}}",
        "{\"\":\"empty key\",\"q\\\"k\":\"quote\\\\\",\"u\\u001fv\":\"unit "
        "sep\",\"nul\":\"a\\u0000b\","
        "\"esc\":\"\\b\\f\\n\\r\\t\\u0001\\u001f\",\"uni\":\"\\u00fc\\u65e5\\u672c "
        "\\ud83d\\ude00\"}",
        "{\"t\":\"event\",\"id\":\"now a "
        "string\",\"body\":7,\"flag\":true,\"off\":false,\"none\":null}",
        "{\"t\":\"event\",\"id\":3,\"body\":{\"kind\":[],\"data\":\"\"}}",
        "{}",
        "{\"a\":[[1,[2,\"x\"]],[],{\"k\":[true,null,1.5,-7]},\"s\"],\"b\":[],\"c\":[{}]}",
        "{\"a\":{\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
        "{ \"spaced\" : [ 1, 2 ],\n \"x\":\"\\u00e9\" }",
    };
    const size_t nodd = sizeof odd / sizeof odd[0];
    size_t n = 3000;
    char **rec = fr_calloc(n, sizeof *rec);
    size_t *len = fr_calloc(n, sizeof *len);
    const char *words[] = {"order", "refund", "the", "latency", "cluster", "token"};
    char *system = fr_strdup("You are a support agent for an online shop. Answer briefly, never "
                             "reveal internal notes, and escalate refunds over 500 EUR.");
    for (size_t i = 0; i < n; i++) {
        if (i < nodd) {
            rec[i] = fr_strdup(odd[i]);
        } else {
            char text[400] = "";
            for (size_t w = 0; w < 20 + i % 30; w++)
                snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", w ? " " : "",
                         words[(i * 7 + w * 3) % 6]);
            rec[i] = fr_asprintf(
                "{\"t\":\"event\",\"id\":%zu,\"ingested_ms\":%lld,\"body\":{\"v\":1,\"kind\":\"%"
                "s\","
                "\"ts_ms\":%lld,\"conv_id\":\"c-%zu\",\"data\":{\"messages\":[{\"role\":\"system\","
                "\"content\":\"%s\"},{\"role\":\"user\",\"content\":\"%s\"}],\"reply\":\"%s\","
                "\"n\":%lld}},\"status\":\"%s\"}",
                i, 1796152547775LL - (long long)(i % 5), i % 3 ? "provider" : "tool",
                1771357445201LL + (long long)i * 37, i / 9, system, text, text,
                (long long)(i % 2 ? -1 : 1) * (long long)i * 1000003LL, i % 7 ? "ok" : "error");
        }
        len[i] = strlen(rec[i]);
    }
    unsigned char *block;
    size_t blen, olen;
    struct fr_err err = {0};
    char *out = col_round_trip(rec, len, n, &block, &blen, &olen);
    /* record by record, its own bytes (the spaced one: the same JSON) */
    char *at = out;
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loadb(rec[i], len[i], JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        char *want = fr_strdup(rec[i]);
        char *nl = strchr(at, '\n');
        assert_non_null(nl);
        json_t *got = json_loadb(at, (size_t)(nl - at), JSON_ALLOW_NUL, NULL);
        if (i == nodd - 1
                ? !json_equal(got, j)
                : (size_t)(nl - at) != strlen(want) || memcmp(at, want, strlen(want)) != 0)
            fail_msg("record %zu: got %.*s, want %s", i, (int)(nl - at), at, want);
        json_decref(got);
        at = nl + 1;
        free(want);
        json_decref(j);
    }
    assert_int_equal((size_t)(at - out), olen);
    free(out);
    /* far smaller than the records: the system prompt is stored once, the text as tokens */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += len[i];
    assert_true(blen * 20 < total);
    /* cut short anywhere, or a byte flipped: a reason, never a crash */
    damaged_blocks_refused(block, blen, NULL, 0x41);
    /* a limit on what a block may decode to */
    assert_int_equal(fr_col_decode(block, blen, 1000, &out, &olen, &err), FR_E_VALUE);
    /* a block whose first record is empty (no shape bytes at all) */
    const char *empty[] = {"{}", "{\"a\":[]}", "{}"};
    size_t elen[] = {2, 8, 2};
    unsigned char *eb;
    size_t eblen;
    assert_int_equal(fr_col_encode(empty, elen, 3, 3, &eb, &eblen, NULL, &err), FR_OK);
    assert_int_equal(fr_col_decode(eb, eblen, 1 << 20, &out, &olen, &err), FR_OK);
    assert_string_equal(out, "{}\n{\"a\":[]}\n{}\n");
    free(out);
    free(eb);
    /* a record that is not an object is refused at encoding */
    const char *bad[] = {"[1,2]"};
    size_t badlen[] = {5};
    assert_int_equal(fr_col_encode(bad, badlen, 1, 3, &block, &blen, NULL, &err), FR_E_SYNTAX);
    free(block);
    for (size_t i = 0; i < n; i++)
        free(rec[i]);
    free(rec);
    free(len);
    free(system);
}

/* ---- the retention manager ---- */

struct rfx {
    char *dir, *db, *policy;
    struct fr_store *st;
    struct fr_retention_policy p;
};

static int
rsetup(void **state)
{
    struct rfx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    f->db = t_path(f->dir, "hot.db");
    f->policy = t_path(f->dir, "retention.yaml");
    FILE *fp = fopen(f->policy, "w");
    fprintf(fp, "warm:\n  segment_events: 1500\n  truncate_bytes: 64\nschedule:\n  interval: 0\n");
    fclose(fp);
    f->st = t_store_open(f->dir, "hot.db");
    struct fr_err err = {0};
    assert_int_equal(fr_retention_policy_load(f->policy, f->db, &f->p, &err), FR_OK);
    *state = f;
    return 0;
}

static int
rteardown(void **state)
{
    struct rfx *f = *state;
    fr_store_close(f->st);
    fr_retention_policy_clear(&f->p);
    t_rmtree(f->dir);
    free(f->dir);
    free(f->db);
    free(f->policy);
    free(f);
    return 0;
}

static int64_t
sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    fr_sqlite_body_functions(h); /* fr_body(body): stored bodies as text */
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* sql_int on a read-write connection (ATTACH needs one). */
static int64_t
sql_int_rw(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_open(db, &h);
    int64_t v = -1;
    char *s = fr_strdup(sql), *semi = strchr(s, ';');
    *semi = '\0';
    sqlite3_exec(h, s, NULL, NULL, NULL);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, semi + 1, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    free(s);
    return v;
}

struct seen {
    unsigned char *ids; /* count per hot row id */
    size_t max;
    size_t total, dups;
};

static int
see_row(void *ud, const struct fr_event_row *r)
{
    struct seen *s = ud;
    if ((size_t)r->id < s->max) {
        if (s->ids[r->id]++)
            s->dups++;
    }
    s->total++;
    return 0;
}

static int
see_row_not_runtime(void *ud, const struct fr_event_row *r)
{
    return strcmp(r->kind, "runtime") == 0 ? 0 : see_row(ud, r);
}

/*
 * Every event but runtime samples, hot and archived, counted by its original
 * row id, read as the query commands read them (fr_tier_events).
 */
static void
count_all(struct fr_store *st, const struct fr_retention_policy *p, struct seen *s)
{
    memset(s->ids, 0, s->max);
    s->total = s->dups = 0;
    struct fr_event_filter all = {0};
    struct fr_err err = {0};
    struct fr_archive_keys keys;
    assert_int_equal(fr_retention_keys(p, false, false, &keys, &err), FR_OK);
    size_t skipped;
    assert_int_equal(fr_tier_events(st, &all, &keys, see_row_not_runtime, s, &skipped, &err),
                     FR_OK);
    fr_archive_keys_wipe(&keys);
    assert_int_equal(skipped, 0);
}

struct rt_count {
    int64_t runtime_events, minute_samples, conv_records;
};

static int
count_records(void *ud, const char *json, size_t len)
{
    struct rt_count *c = ud;
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "t"));
    if (strcmp(t, "runtime_minute") == 0) {
        c->minute_samples += json_integer_value(json_object_get(j, "samples"));
        json_t *rss = json_object_get(j, "rss_bytes");
        assert_true(json_real_value(json_object_get(rss, "min")) <=
                    json_real_value(json_object_get(rss, "max")));
    } else if (strcmp(t, "conversation") == 0) {
        c->conv_records++;
    } else if (strcmp(json_string_value(json_object_get(json_object_get(j, "body"), "kind")),
                      "runtime") == 0) {
        c->runtime_events++;
    }
    json_decref(j);
    return 0;
}

/* The archive and cold keys of a policy (static storage: the last one loaded). */
static struct fr_archive_keys loaded_keys;

static const struct fr_archive_keys *
keys_of(const struct fr_retention_policy *p)
{
    assert_int_equal(fr_retention_keys(p, false, false, &loaded_keys, NULL), FR_OK);
    return &loaded_keys;
}

static int
each_segment_count(void *ud, const struct fr_manifest_row *r)
{
    struct fr_err err = {0};
    assert_int_equal(fr_archive_records(r->path, &loaded_keys, count_records, ud, &err), FR_OK);
    return 0;
}

static void
test_retention_tiers_over_time(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 6000);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events");
    int64_t errors = sql_int(f->db, "SELECT count(*) FROM events WHERE kind = 'error'");
    int64_t runtime = sql_int(f->db, "SELECT count(*) FROM events WHERE kind = 'runtime'");
    assert_true(errors > 0 && runtime > 0);
    struct fr_retention_stats s;
    struct fr_err err = {0};
    /* a day later: everything is still hot */
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(s.moved_events, 0);
    /* a dry run four days later moves nothing but says what would */
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, true, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(s.moved_events, total - errors);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), total);
    /* four days: all but `error` events (kept 14 days) go warm */
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(s.moved_events, total - errors);
    assert_true(s.warm_segments >= 2);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), errors);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'warm'"),
                     (int64_t)s.warm_segments);
    /* runtime samples are downsampled, not kept one by one */
    struct rt_count rc = {0};
    keys_of(&f->p);
    assert_int_equal(fr_store_manifest(f->st, each_segment_count, &rc, &err), FR_OK);
    assert_int_equal(rc.runtime_events, 0);
    assert_int_equal(rc.minute_samples, runtime);
    assert_true(rc.conv_records > 0);
    /* the MANIFEST file beside the segments lists them */
    char *mf = fr_asprintf("%s/MANIFEST", f->p.archive_dir), *text;
    size_t len;
    assert_int_equal(fr_read_file(mf, &text, &len, NULL), FR_OK);
    assert_non_null(strstr(text, "\"action\":\"add\""));
    free(text);
    free(mf);
    /* every other event is readable one by one, exactly once */
    struct seen seen = {fr_calloc(1, (size_t)total + 10), (size_t)total + 10, 0, 0};
    count_all(f->st, &f->p, &seen);
    assert_int_equal(seen.total, total - runtime);
    assert_int_equal(seen.dups, 0);
    /* forty days: errors leave hot; warm segments turn cold (encrypted, key created) */
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 40 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'warm'"),
                     0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'cold'") > 0);
    /* a cold segment keeps its warm time range (conversation summaries included) */
    assert_true(sql_int(f->db, "SELECT min(min_ts) FROM archive_segments") >= BASE - DAY);
    struct stat st;
    assert_int_equal(stat(f->p.cold_key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    count_all(f->st, &f->p, &seen);
    assert_int_equal(seen.total, total - runtime);
    assert_int_equal(seen.dups, 0);
    /* without the cold key, cold data cannot be read */
    struct fr_event_filter all = {0};
    size_t skipped = 0;
    struct fr_archive_keys no_cold = *keys_of(&f->p);
    no_cold.cold.n = 0;
    assert_int_equal(fr_archive_events(f->st, &all, &no_cold, see_row, &seen, &skipped, &err),
                     FR_OK);
    assert_true(skipped > 0);
    /* past a year: deleted, and the deletion recorded (records per segment) */
    int64_t held = sql_int(f->db, "SELECT sum(records) FROM archive_segments");
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 400 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), 0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM retention_log WHERE action = 'delete'") > 0);
    assert_int_equal(
        sql_int(f->db, "SELECT sum(events) FROM retention_log WHERE action = 'delete'"), held);
    free(seen.ids);
}

struct view {
    json_t *events;
};

static int
view_row(void *ud, const struct fr_event_row *r)
{
    json_array_append_new(ud, json_pack("{s:I,s:s}", "id", (json_int_t)r->id, "body", r->body));
    return 0;
}

/* Equal, except strings the warm tier cut: those keep their first bytes. */
static bool
same_modulo_truncation(json_t *a, json_t *b)
{
    if (json_is_string(a) && json_is_string(b)) {
        const char *x = json_string_value(a), *y = json_string_value(b);
        const char *cut = strstr(y, "[TRUNCATED:");
        return cut ? strncmp(x, y, (size_t)(cut - y)) == 0 : strcmp(x, y) == 0;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach(a, k,
                            v) if (!same_modulo_truncation(v, json_object_get(b, k))) return false;
        return true;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_modulo_truncation(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal(a, b);
}

static int show(const struct rfx *f, const char *args, char **out, char **err);

/* The keys of the events a page read gave, in the order given. */
struct page {
    int64_t key[64][3]; /* ts_ms, seq (-1: none), id */
    size_t n, calls;
};

static int
page_row(void *ud, const struct fr_event_row *r)
{
    struct page *p = ud;
    p->calls++;
    if (p->n < 64) {
        int64_t *k = p->key[p->n++];
        k[0] = r->ts_ms;
        k[1] = r->has_seq ? r->seq : -1;
        k[2] = r->id;
    }
    return 0;
}

static int
key_cmp(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* One page of conversation conv (kind: NULL = any) through fr_tier_events_page. */
static void
read_page(struct rfx *f, const char *conv, const char *kind, int64_t offset, int limit,
          struct page *p, int64_t *total, bool *whole)
{
    memset(p, 0, sizeof *p);
    struct fr_event_filter ef = {.conv_id = conv, .kind = kind, .offset = offset, .limit = limit};
    struct fr_err err = {0};
    size_t skipped = 9;
    assert_int_equal(
        fr_tier_events_page(f->st, &ef, keys_of(&f->p), page_row, p, total, whole, &skipped, &err),
        FR_OK);
    assert_int_equal(skipped, 0);
}

/*
 * A page of a conversation held wholly in hot is read alone from hot's index
 * (the callback sees only the page), in conversation order: time, then seq
 * (none first), then arrival, across ties of both; *total counts them all.
 * Once retention moved some of a conversation to warm, every tier is read
 * (the caller orders and slices); a conversation the archive map does not
 * name is still paged from hot.
 */
static void
test_retention_conversation_pages(void **state)
{
    struct rfx *f = *state;
    /* 40 events of one conversation, arriving out of order, with equal times and seqs */
    char *lines[40];
    for (int i = 0; i < 40; i++) {
        int ts = (i * 7) % 10, seq = (i * 3) % 4; /* seq 0: none */
        char seqf[24] = "";
        if (seq != 0)
            snprintf(seqf, sizeof seqf, ",\"seq\":%d", seq);
        /* trace ids falling as events arrive: ties are by arrival, not trace id (the
           conversation index's next column) */
        lines[i] = fr_asprintf("{\"kind\":\"%s\",\"ts_ms\":%lld,\"conv_id\":\"paged\"%s,"
                               "\"trace_id\":\"%032x\",\"data\":{\"name\":\"search\","
                               "\"status\":\"ok\"}}",
                               i % 3 == 0 ? "tool" : "middleware", BASE + ts, seqf, 100 - i);
    }
    t_ingest(f->st, (const char *const *)lines, 40);
    for (int i = 0; i < 40; i++)
        free(lines[i]);
    struct page all, p;
    int64_t total;
    bool whole;
    read_page(f, "paged", NULL, 0, 0, &all, &total, &whole);
    assert_false(whole);
    assert_int_equal(total, 40);
    assert_int_equal(all.n, 40);
    int64_t sorted[64][3];
    memcpy(sorted, all.key, sizeof all.key);
    qsort(sorted, all.n, sizeof sorted[0], key_cmp);
    assert_memory_equal(sorted, all.key, all.n * sizeof sorted[0]); /* in conversation order */
    static const int64_t pages[][2] = {{0, 7}, {7, 7}, {33, 7}, {35, 10}, {40, 5}, {90, 5}};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        read_page(f, "paged", NULL, pages[i][0], (int)pages[i][1], &p, &total, &whole);
        assert_false(whole);
        assert_int_equal(total, 40);
        size_t want = pages[i][0] >= 40                ? 0
                      : pages[i][0] + pages[i][1] > 40 ? (size_t)(40 - pages[i][0])
                                                       : (size_t)pages[i][1];
        assert_int_equal(p.calls, want); /* the page alone was read */
        if (want > 0)
            assert_memory_equal(p.key, all.key[pages[i][0]], want * sizeof sorted[0]);
    }
    /* with a kind: the page and the total of that kind */
    read_page(f, "paged", "tool", 2, 3, &p, &total, &whole);
    assert_false(whole);
    assert_int_equal(total, 14);
    assert_int_equal(p.calls, 3);

    /* generated traffic moved to warm four days on; then one conversation arrives */
    t_ingest_generated(f->st, f->dir, 3000);
    struct fr_retention_stats s;
    struct fr_err err = {0};
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_true(s.warm_segments > 0);
    read_page(f, "paged", NULL, 5, 5, &p, &total, &whole);
    assert_true(whole); /* in warm now: every tier read, every event passed on */
    assert_int_equal(total, 40);
    assert_int_equal(p.calls, 40);
    /* show's slices of it are those of the whole, sorted */
    char *out, *serr, *all_out;
    assert_int_equal(show(f, "--ndjson paged", &all_out, &serr), 0);
    free(serr);
    static const struct {
        const char *args;
        int from, to; /* the lines of the whole it prints */
    } slices[] = {{"--ndjson --last 3 paged", 37, 40},
                  {"--ndjson --offset 5 --limit 2 paged", 5, 7}};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(show(f, slices[i].args, &out, &serr), 0);
        const char *a = all_out;
        for (int k = 0; k < slices[i].from; k++)
            a = strchr(a, '\n') + 1;
        const char *b = a;
        for (int k = slices[i].from; k < slices[i].to; k++)
            b = strchr(b, '\n') + 1;
        assert_int_equal(strlen(out), (size_t)(b - a));
        assert_memory_equal(out, a, (size_t)(b - a));
        assert_non_null(strstr(serr, " of 40 events shown"));
        free(out);
        free(serr);
    }
    free(all_out);
    const char *fresh[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"fresh\",\"seq\":1,"
        "\"data\":{\"name\":\"search\",\"status\":\"ok\"}}",
        "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":\"fresh\",\"seq\":2,"
        "\"data\":{\"name\":\"search\",\"status\":\"ok\"}}",
    };
    t_ingest(f->st, fresh, 2);
    /* within the segments' time range, but the map names none for it */
    read_page(f, "fresh", NULL, 1, 5, &p, &total, &whole);
    assert_false(whole);
    assert_int_equal(total, 2);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.key[0][1], 2);
}

/*
 * Data already past cold.max_age when it leaves hot goes warm, cold and is
 * deleted in one run, its conversations summarized: the deletion reads the
 * manifest as the move to cold left it (it used to look for the warm file
 * the move had just replaced, and the cold one stayed a run longer).
 */
static void
test_retention_expires_in_the_run_that_moves_to_cold(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    struct fr_retention_stats s;
    struct fr_err err = {0};
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 400 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_true(s.warm_segments > 0);
    assert_int_equal(s.to_cold, s.warm_segments);
    assert_int_equal(s.deleted_segments, s.warm_segments);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), 0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM conversation_summaries") > 0);
}

static void
test_retention_same_view_after_compaction(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    struct fr_event_filter q = {.conv_id = "c-000003"};
    struct fr_err err = {0};
    json_t *before = json_array();
    assert_int_equal(fr_store_events(f->st, &q, view_row, before, &err), FR_OK);
    assert_true(json_array_size(before) > 10);
    struct fr_retention_stats s;
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 20 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    json_t *after = json_array();
    assert_int_equal(fr_store_events(f->st, &q, view_row, after, &err), FR_OK);
    assert_int_equal(json_array_size(after), 0);
    assert_int_equal(fr_archive_events(f->st, &q, keys_of(&f->p), view_row, after, NULL, &err),
                     FR_OK);
    assert_int_equal(json_array_size(after), json_array_size(before));
    size_t truncated = 0;
    for (size_t i = 0; i < json_array_size(before); i++) {
        json_t *x = json_array_get(before, i), *y = json_array_get(after, i);
        assert_int_equal(json_integer_value(json_object_get(x, "id")),
                         json_integer_value(json_object_get(y, "id")));
        json_t *bx = json_loads(json_string_value(json_object_get(x, "body")), 0, NULL);
        json_t *by = json_loads(json_string_value(json_object_get(y, "body")), 0, NULL);
        assert_true(same_modulo_truncation(bx, by));
        truncated += !json_equal(bx, by);
        json_decref(bx);
        json_decref(by);
    }
    assert_true(truncated > 0); /* the 64-byte truncation of this policy did apply */
    json_decref(before);
    json_decref(after);
}

/*
 * `flightrec retention run` on db with the policy at now; returns its exit
 * status and, when err is given, its stderr (the run's summary; caller frees).
 */
static int
run_retention(const char *db, const char *policy, int64_t now, char **err)
{
    char *cmd = fr_asprintf("%s retention run --db %s --policy %s --now %lld --no-progress", FR_BIN,
                            db, policy, (long long)now);
    char *out = NULL;
    int rc = t_run(cmd, &out, err);
    free(out);
    free(cmd);
    return rc;
}

/* Every event of st (but runtime samples) read exactly once across the tiers, or fail saying
   when. */
static void
expect_each_once(struct fr_store *st, const struct fr_retention_policy *p, int64_t total,
                 const char *when)
{
    struct seen seen = {fr_calloc(1, (size_t)total + 10), (size_t)total + 10, 0, 0};
    count_all(st, p, &seen);
    if (seen.total != (size_t)total || seen.dups != 0)
        fail_msg("%s: %zu events read, %zu twice, want %lld", when, seen.total, seen.dups,
                 (long long)total);
    free(seen.ids);
}

/*
 * `archive rebuild` on a copy of the store whose manifest table was emptied:
 * it never fails, restores every segment the table holds (exact: and no
 * other), and the copy reads every event exactly once (count >= 0).
 */
static void
rebuild_on_copy(struct rfx *f, const char *when, bool exact, int64_t count)
{
    char *copy = t_path(f->dir, "copy.db");
    char *cmd = fr_asprintf("rm -f %s %s-wal %s-shm && sqlite3 %s \".backup %s\" && "
                            "sqlite3 %s \"DELETE FROM archive_segments\"",
                            copy, copy, copy, f->db, copy, copy);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    cmd = fr_asprintf("%s archive rebuild --db %s --policy %s", FR_BIN, copy, f->policy);
    char *out = NULL, *err = NULL;
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("%s: archive rebuild failed: %s", when, err ? err : "");
    free(out);
    free(err);
    free(cmd);
    /* a warm segment whose cold copy the journal already names counts as kept (same events) */
    char *sql = fr_asprintf("ATTACH '%s' AS orig; SELECT count(*) FROM orig.archive_segments "
                            "WHERE path NOT IN (SELECT path FROM main.archive_segments) AND "
                            "replace(path, '.warm.seg', '.cold.seg') NOT IN "
                            "(SELECT path FROM main.archive_segments)",
                            f->db);
    int64_t lost = sql_int_rw(copy, sql);
    free(sql);
    sql = fr_asprintf("ATTACH '%s' AS orig; SELECT count(*) FROM main.archive_segments "
                      "WHERE path NOT IN (SELECT path FROM orig.archive_segments)",
                      f->db);
    int64_t extra = sql_int_rw(copy, sql);
    free(sql);
    if (lost != 0 || (exact && extra != 0))
        fail_msg("%s: the MANIFEST journal and the table disagree: rebuild lost %lld of the "
                 "table's segments and added %lld",
                 when, (long long)lost, (long long)extra);
    if (count >= 0) {
        struct fr_store *st = t_store_open(f->dir, "copy.db");
        expect_each_once(st, &f->p, count, when);
        fr_store_close(st);
    }
    free(copy);
}

/*
 * kill -9 at each point of a run, then a normal run: every event exactly
 * once; and at each of the two moments, `archive rebuild` on a copy brings
 * back everything the table holds.
 */
static void
test_retention_crash_points(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 4000);
    /* runtime samples are kept per minute in warm, so they are not counted one by one */
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    fr_store_close(f->st);
    f->st = NULL;
    struct seen seen = {fr_calloc(1, (size_t)total + 10), (size_t)total + 10, 0, 0};
    size_t crashes = 0;
    static const struct {
        const char *point;
        int day;
    } points[] = {
        {"before_segment", 4},      {"after_segment", 4},      {"after_commit", 4},
        {"after_journal", 4},       {"after_segment", 20},     {"after_cold_segment", 40},
        {"after_cold_journal", 40}, {"after_cold_commit", 40}, {"after_delete_commit", 400},
        {"mid_delete", 4},
    };
    char *tmpl = t_path(f->dir, "template.db");
    char *cp = fr_asprintf("cp %s %s", f->db, tmpl);
    assert_int_equal(t_run(cp, NULL, NULL), 0);
    free(cp);
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        /* each point from the same starting store, brought to where the point is reached */
        char *reset = fr_asprintf("rm -rf %s %s-wal %s-shm && cp %s %s", f->p.archive_dir, f->db,
                                  f->db, tmpl, f->db);
        assert_int_equal(t_run(reset, NULL, NULL), 0);
        free(reset);
        static const int before[] = {4, 40};
        for (size_t k = 0; k < 2 && before[k] < points[i].day; k++) {
            char *prep = fr_asprintf("%s retention run --db %s --policy %s --now %lld "
                                     "--no-progress",
                                     FR_BIN, f->db, f->policy, (long long)(BASE + before[k] * DAY));
            assert_int_equal(t_run(prep, NULL, NULL), 0);
            free(prep);
        }
        int64_t now = BASE + points[i].day * DAY;
        char *cmd = fr_asprintf("FLIGHTREC_CRASH_AT=%s %s retention run --db %s --policy %s "
                                "--now %lld --no-progress",
                                points[i].point, FR_BIN, f->db, f->policy, (long long)now);
        /* killed at that point: the run reaches every one of them from this state */
        if (t_run(cmd, NULL, NULL) != 0)
            crashes++;
        free(cmd);
        if (points[i].day < 400) {
            /* read before any recovery (a half-finished move): still exactly once */
            f->st = t_store_open(f->dir, "hot.db");
            count_all(f->st, &f->p, &seen);
            if (seen.total != (size_t)total || seen.dups != 0)
                fail_msg("right after a crash at %s (day %d): %zu events seen, %zu duplicates, "
                         "want %lld",
                         points[i].point, points[i].day, seen.total, seen.dups, (long long)total);
            fr_store_close(f->st);
            f->st = NULL;
        }
        char *when =
            fr_asprintf("right after a crash at %s (day %d)", points[i].point, points[i].day);
        rebuild_on_copy(f, when, false, points[i].day < 400 ? total : -1);
        free(when);
        cmd = fr_asprintf("%s retention run --db %s --policy %s --now %lld --no-progress", FR_BIN,
                          f->db, f->policy, (long long)now);
        assert_int_equal(t_run(cmd, NULL, NULL), 0);
        free(cmd);
        f->st = t_store_open(f->dir, "hot.db");
        if (points[i].day < 400) {
            count_all(f->st, &f->p, &seen);
            if (seen.total != (size_t)total || seen.dups != 0)
                fail_msg("after a crash at %s (day %d): %zu events seen, %zu duplicates, want %lld",
                         points[i].point, points[i].day, seen.total, seen.dups, (long long)total);
        } else {
            assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), 0);
        }
        fr_store_close(f->st);
        f->st = NULL;
        when = fr_asprintf("after the run that followed a crash at %s (day %d)", points[i].point,
                           points[i].day);
        rebuild_on_copy(f, when, true, points[i].day < 400 ? total : -1);
        free(when);
        /* no temporary or orphan segment files are left behind */
        char *ls = fr_asprintf("ls %s | grep -c tmp", f->p.archive_dir), *out = NULL;
        t_run(ls, &out, NULL);
        assert_int_equal(atoi(out ? out : "0"), 0);
        free(out);
        free(ls);
    }
    f->st = t_store_open(f->dir, "hot.db");
    free(seen.ids);
    free(tmpl);
    assert_int_equal(crashes, sizeof points / sizeof *points);
}

/* The size bound moves the oldest rows whatever their age; restore brings a segment back. */
static void
test_retention_size_bound_and_restore(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 6000);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events");
    fr_store_close(f->st);
    f->st = NULL;
    FILE *fp = fopen(f->policy, "a");
    fputs("hot:\n  max_bytes: 3000000\n", fp);
    fclose(fp);
    /* one hour after the data: nothing is old enough, but hot is over 3 MB */
    char *cmd = fr_asprintf("%s retention run --db %s --policy %s --now %lld --no-progress", FR_BIN,
                            f->db, f->policy, (long long)(BASE + 3600000));
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    int64_t hot = sql_int(f->db, "SELECT count(*) FROM events");
    assert_true(hot > 0 && hot < total);
    int64_t live =
        sql_int(f->db, "SELECT (page_count - freelist_count) * page_size FROM "
                       "pragma_page_count(), pragma_freelist_count(), pragma_page_size()");
    assert_true(live <= 3000000);
    /* restore the oldest segment: its events are back in hot, the segment gone */
    /* the manifest holds the path relative to the database's folder */
    char *seg = fr_asprintf("sqlite3 %s \"SELECT '%s/' || path FROM archive_segments ORDER BY "
                            "min_ts LIMIT 1\" | tr -d '\\n'",
                            f->db, f->dir),
         *path = NULL;
    t_run(seg, &path, NULL);
    free(seg);
    int64_t segs = sql_int(f->db, "SELECT count(*) FROM archive_segments");
    int64_t counted = sql_int(f->db, "SELECT sum(event_count) FROM conversations");
    int64_t calls = sql_int(f->db, "SELECT sum(calls) FROM rollups");
    cmd = fr_asprintf("%s archive restore %s --db %s --policy %s", FR_BIN, path, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "restored"));
    free(out);
    free(err);
    free(cmd);
    assert_true(sql_int(f->db, "SELECT count(*) FROM events") > hot);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), segs - 1);
    assert_int_equal(access(path, F_OK), -1);
    /* the restored events were counted when first ingested: not again */
    assert_int_equal(sql_int(f->db, "SELECT sum(event_count) FROM conversations"), counted);
    assert_int_equal(sql_int(f->db, "SELECT sum(calls) FROM rollups"), calls);
    /* and the MANIFEST journal knows the segment is gone: a rebuild does not bring it back */
    rebuild_on_copy(f, "after archive restore", true, -1);
    free(path);
    f->st = t_store_open(f->dir, "hot.db");
}

/*
 * The disk under hot.min_free_percent: the agent's run moves move_bytes of
 * the oldest rows before their age, in whole segments only, and never those
 * of the last hot.min_free_keep; fr_retention_disk_pressure says when and
 * how much.
 */
static void
test_retention_disk_pressure_moves(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 6000);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events");
    int64_t last = sql_int(f->db, "SELECT max(ts_ms) FROM events");
    int64_t first = sql_int(f->db, "SELECT min(ts_ms) FROM events");
    struct fr_retention_policy q = f->p;
    q.hot_ms = 0; /* nothing is due by age */
    memset(q.hot_kind_ms, 0, sizeof q.hot_kind_ms);
    q.segment_events = 500;
    q.move_bytes = 400000;
    q.min_free_keep_ms = (last - first) / 2; /* the newer half stays whatever the budget */
    struct fr_retention_stats s;
    struct fr_err err = {0};
    assert_int_equal(fr_retention_run(f->st, &q, last, false, NULL, NULL, &s, &err), FR_OK);
    /* whole segments, until the budget was reached */
    assert_true(s.moved_events > 0 && s.moved_events % 500 == 0);
    assert_true(s.row_bytes >= 400000);
    assert_true(s.row_bytes < 400000 + s.row_bytes / s.warm_segments);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events"),
                     total - (int64_t)s.moved_events);
    assert_true(sql_int(f->db, "SELECT max(max_ts) FROM archive_segments") <
                last - q.min_free_keep_ms);
    /* a budget past what is older than the kept span: only that, and whole segments */
    q.move_bytes = INT64_MAX / 2;
    assert_int_equal(fr_retention_run(f->st, &q, last, false, NULL, NULL, &s, &err), FR_OK);
    assert_true(sql_int(f->db, "SELECT max(max_ts) FROM archive_segments") <
                last - q.min_free_keep_ms);
    /* what is left older than that is less than a segment; the kept span is all there */
    char *older = fr_asprintf("SELECT count(*) FROM events WHERE ts_ms < %lld",
                              (long long)(last - q.min_free_keep_ms));
    int64_t left = sql_int(f->db, older);
    assert_true(s.moved_events % 500 == 0);
    assert_true(left > 0 && left < 500); /* a partial segment's worth: not written alone */
    free(older);
    char *newer = fr_asprintf("SELECT count(*) FROM events WHERE ts_ms >= %lld",
                              (long long)(last - q.min_free_keep_ms));
    assert_true(sql_int(f->db, newer) > 0);
    free(newer);
    /* when: the floor off, under it (a floor of the whole disk), and how much */
    struct fr_retention_policy d = f->p;
    int64_t move = -1;
    uint64_t avail, size;
    d.min_free_percent = 0;
    assert_false(fr_retention_disk_pressure(&d, f->db, &move, &avail, &size));
    d.min_free_percent = 100;
    assert_true(fr_retention_disk_pressure(&d, f->db, &move, &avail, &size));
    uint64_t deficit = size / 100 * 100 - avail;
    assert_int_equal(move, (int64_t)(deficit + deficit / 4 + size / 100));
}

/*
 * A MANIFEST journal that cannot be written stops the run with an error
 * naming it (it was skipped silently, so `archive rebuild` later missed the
 * segment); the run after the journal is fixed goes on.
 */
static void
test_retention_manifest_journal_error_reported(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    char *mf = fr_asprintf("%s/MANIFEST", f->p.archive_dir);
    assert_int_equal(fr_mkdirs_for(mf, 0700, NULL), FR_OK);
    assert_int_equal(mkdir(mf, 0700), 0); /* a directory where the journal file belongs */
    struct fr_retention_stats s;
    struct fr_err err = {0};
    assert_int_not_equal(
        fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err), FR_OK);
    assert_non_null(strstr(err.msg, "MANIFEST journal"));
    assert_non_null(strstr(err.msg, "archive rebuild"));
    assert_int_equal(rmdir(mf), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    free(mf);
}

/* Sums the COUNT column of `errors --by ...` output. */
static long long
group_total(const char *out)
{
    long long total = 0;
    const char *line = strchr(out, '\n'); /* after the heading */
    while (line != NULL && line[1] != '\0') {
        char key[128];
        long long count;
        if (sscanf(line + 1, "%127s %lld", key, &count) == 2)
            total += count;
        line = strchr(line + 1, '\n');
    }
    return total;
}

static void
test_retention_cli_verify_and_policy_errors(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 2000);
    int64_t failures = sql_int(f->db, "SELECT count(*) FROM events WHERE error_code IS NOT NULL");
    assert_true(failures > 0);
    /* grouped while every failure is in hot (the store groups them itself) and again once
       most are in warm (hot's per conversation and the segments' added up): the same table */
    static const char *const bys[] = {"code", "class", "kind"};
    char *before[3];
    for (size_t i = 0; i < 3; i++) {
        char *c = fr_asprintf("%s errors --db %s --by %s --limit 0", FR_BIN, f->db, bys[i]);
        assert_int_equal(t_run(c, &before[i], NULL), 0);
        free(c);
    }
    char *cmd = fr_asprintf("%s retention run --db %s --policy %s --now %lld --no-progress", FR_BIN,
                            f->db, f->policy, (long long)(BASE + 5 * DAY));
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "moved to warm"));
    free(out);
    free(err);
    free(cmd);
    /* show and errors read across tiers and say where each record came from */
    cmd = fr_asprintf("%s show --json --db %s c-000001", FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "\"tier\": \"warm\""));
    free(out);
    free(err);
    free(cmd);
    cmd = fr_asprintf("%s errors --db %s --limit 5", FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, " warm "));
    free(out);
    free(err);
    free(cmd);
    /* grouped views read the same tiers as the list: every failure, hot and warm */
    assert_true(sql_int(f->db, "SELECT count(*) FROM events WHERE error_code IS NOT NULL") <
                failures);
    for (size_t i = 0; i < sizeof bys / sizeof *bys; i++) {
        cmd = fr_asprintf("%s errors --db %s --by %s --limit 0", FR_BIN, f->db, bys[i]);
        assert_int_equal(t_run(cmd, &out, &err), 0);
        if (group_total(out) != failures)
            fail_msg("errors --by %s counts %lld failures, want %lld:\n%s", bys[i],
                     group_total(out), (long long)failures, out);
        if (strcmp(out, before[i]) != 0)
            fail_msg("errors --by %s across tiers differs from hot alone:\n%s\n--- hot\n%s", bys[i],
                     out, before[i]);
        free(before[i]);
        free(out);
        free(err);
        free(cmd);
    }
    cmd = fr_asprintf("%s archive list --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "warm "));
    assert_int_equal(strncmp(out, "TIER ", 5), 0); /* a header line */
    /* the name it prints is enough for archive cat */
    char name[128] = "";
    const char *listed = strstr(out, "seg-");
    assert_non_null(listed);
    snprintf(name, sizeof name, "%.*s", (int)strcspn(listed, " \n"), listed);
    free(out);
    free(err);
    free(cmd);
    cmd = fr_asprintf("%s archive cat %s --db %s --policy %s", FR_BIN, name, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "\"t\":"));
    free(out);
    free(err);
    free(cmd);
    /* a dry run says what it would move, with no compression ratio it cannot know */
    cmd = fr_asprintf("%s retention run --dry-run --db %s --policy %s --now %lld --no-progress",
                      FR_BIN, f->db, f->policy, (long long)(BASE + 9 * DAY));
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "(dry run)"));
    assert_null(strstr(err, ":1)"));
    free(out);
    free(err);
    free(cmd);
    /* the database's manifest can be rebuilt from the MANIFEST file */
    int64_t segs = sql_int(f->db, "SELECT count(*) FROM archive_segments");
    assert_true(segs > 0);
    char *wipe = fr_asprintf("sqlite3 %s \"DELETE FROM archive_segments\"", f->db);
    assert_int_equal(t_run(wipe, NULL, NULL), 0);
    free(wipe);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), 0);
    cmd = fr_asprintf("%s archive rebuild --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "rebuilt"));
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), segs);
    cmd = fr_asprintf("%s archive verify --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "ok "));
    free(out);
    free(err);
    /* damage one segment: verify names it and why */
    char *seg = fr_asprintf("ls %s/*.seg | head -1 | tr -d '\\n'", f->p.archive_dir), *path;
    t_run(seg, &path, NULL);
    char *bytes;
    size_t len;
    assert_int_equal(fr_read_file(path, &bytes, &len, NULL), FR_OK);
    bytes[len / 3] ^= 1;
    FILE *fp = fopen(path, "wb");
    fwrite(bytes, 1, len, fp);
    fclose(fp);
    free(bytes);
    assert_int_equal(t_run(cmd, &out, &err), 3);
    assert_non_null(strstr(out, "BAD"));
    assert_non_null(strstr(out, "authentication failed"));
    free(out);
    free(err);
    free(cmd);
    free(seg);
    free(path);
    /* a bad policy names file, line and key */
    fp = fopen(f->policy, "w");
    fputs("hot:\n  max_age: soon\n", fp);
    fclose(fp);
    cmd = fr_asprintf("%s retention run --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "retention.yaml:2: hot.max_age: 'soon' is not a duration"));
    free(out);
    free(err);
    free(cmd);
}

/*
 * Two stores in one folder share archive/: each segment carries its store's
 * id, so one store's run never adopts (or removes) the other's segments, and
 * neither loses a row to the other's reconciliation.
 */
static void
test_retention_stores_sharing_a_folder_keep_their_own(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    int64_t x_total = sql_int(f->db, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    fr_store_close(f->st);
    f->st = NULL;
    /* y: a second store beside it, with its own events, the same policy and archive folder */
    char *ydb = t_path(f->dir, "y.db");
    struct fr_store *y = t_store_open(f->dir, "y.db");
    t_ingest_generated(y, f->dir, 2000);
    fr_store_close(y);
    int64_t y_total = sql_int(ydb, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    assert_true(sql_int(ydb, "SELECT count(*) FROM store_info WHERE key = 'store_id'") == 1);
    for (int round = 0; round < 2; round++) {
        const char *dbs[] = {f->db, ydb};
        for (int k = 0; k < 2; k++) {
            char *err = NULL;
            assert_int_equal(run_retention(dbs[k], f->policy, BASE + 4 * DAY, &err), 0);
            if (strstr(err, "0 adopted") == NULL)
                fail_msg("store %d adopted another store's segment: %s", k, err);
            free(err);
        }
    }
    /* every event of each store is still readable exactly once from that store */
    const char *dbs[] = {"hot.db", "y.db"};
    int64_t totals[] = {x_total, y_total};
    for (int k = 0; k < 2; k++) {
        struct fr_store *st = t_store_open(f->dir, dbs[k]);
        expect_each_once(st, &f->p, totals[k], dbs[k]);
        fr_store_close(st);
    }
    assert_true(sql_int(ydb, "SELECT count(*) FROM archive_segments") > 0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM archive_segments") > 0);
    /* and no segment is in both manifests */
    char *sql = fr_asprintf("ATTACH '%s' AS y; SELECT count(*) FROM main.archive_segments "
                            "WHERE path IN (SELECT path FROM y.archive_segments)",
                            ydb);
    assert_int_equal(sql_int_rw(f->db, sql), 0);
    free(sql);
    free(ydb);
    f->st = t_store_open(f->dir, "hot.db");
}

/*
 * The data folder can be moved whole: the manifest holds segment paths
 * relative to the database's folder, and the MANIFEST journal names
 * relative to the archive folder, so after a move the segments verify, show
 * reads them, and the next run adopts nothing twice.
 */
static void
test_retention_data_folder_moved(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    fr_store_close(f->st);
    f->st = NULL;
    assert_int_equal(run_retention(f->db, f->policy, BASE + 4 * DAY, NULL), 0);
    int64_t segs = sql_int(f->db, "SELECT count(*) FROM archive_segments");
    assert_true(segs > 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE path LIKE '/%'"),
                     0);
    /* move everything: database, archive, keys, policy */
    char *moved = fr_asprintf("%s.moved", f->dir);
    assert_int_equal(rename(f->dir, moved), 0);
    char *db = t_path(moved, "hot.db"), *policy = t_path(moved, "retention.yaml");
    char *out = NULL, *err = NULL;
    char *cmd = fr_asprintf("%s archive verify --db %s --policy %s", FR_BIN, db, policy);
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("archive verify after the move: %s%s", out ? out : "", err ? err : "");
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(run_retention(db, policy, BASE + 4 * DAY, &err), 0);
    if (strstr(err, "0 adopted") == NULL)
        fail_msg("the run after the move adopted a segment: %s", err);
    free(err);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM archive_segments"), segs);
    /* every event still read exactly once, hot and warm */
    struct fr_store *st = t_store_open(moved, "hot.db");
    struct fr_retention_policy p;
    struct fr_err e = {0};
    assert_int_equal(fr_retention_policy_load(policy, db, &p, &e), FR_OK);
    expect_each_once(st, &p, total, "after the move");
    fr_store_close(st);
    fr_retention_policy_clear(&p);
    assert_int_equal(rename(moved, f->dir), 0);
    free(db);
    free(policy);
    free(moved);
    f->st = t_store_open(f->dir, "hot.db");
}

/*
 * show after retention: what is there is shown, what is missing is said
 * and why, with exit status 5: one unreadable segment is named and the
 * rest is read; a conversation whose detail retention deleted says so.
 */
/* Bytes of a file, to put back later. */
static char *
slurp(const char *path, size_t *len)
{
    char *b = NULL;
    assert_int_equal(fr_read_file(path, &b, len, NULL), FR_OK);
    return b;
}

static void
spit(const char *path, const char *b, size_t len)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
}

/* The segments of the manifest, absolute paths, oldest first. */
static size_t
segment_paths(const struct rfx *f, char ***out)
{
    char *sql = fr_asprintf("sqlite3 %s \"SELECT path FROM archive_segments ORDER BY min_ts, "
                            "path\"",
                            f->db),
         *rel = NULL;
    assert_int_equal(t_run(sql, &rel, NULL), 0);
    free(sql);
    size_t n = 0;
    *out = NULL;
    for (char *save = NULL, *l = strtok_r(rel, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        *out = fr_realloc(*out, (n + 1) * sizeof **out);
        (*out)[n++] = fr_asprintf("%s/%s", f->dir, l);
    }
    free(rel);
    return n;
}

static int
show(const struct rfx *f, const char *args, char **out, char **err)
{
    char *cmd = fr_asprintf("%s show --db %s %s", FR_BIN, f->db, args);
    int rc = t_run(cmd, out, err);
    free(cmd);
    return rc;
}

/*
 * The archive map: a reader opens only the segments (and blocks) that hold
 * what it looks for, so one bad segment costs only the reads that need it;
 * bad segments are found, marked, reported and quarantined; retention moves
 * the others on; segments without a map (older stores) get one.
 */
static void
test_retention_archive_map_isolates_bad_segments(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    /* one conversation only in hot, one old one with a trace id (archived) */
    char *lines[4];
    for (int i = 0; i < 2; i++) {
        lines[i] = fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"hot-only\","
                               "\"data\":{\"name\":\"search\",\"status\":\"ok\"}}",
                               (long long)(BASE + 4 * DAY - 60000 + i));
        lines[2 + i] = fr_asprintf("{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":"
                                   "\"archived-trace\",\"trace_id\":\"tr-0af7651916cd43dd\","
                                   "\"data\":{\"name\":\"search\",\"status\":\"ok\"}}",
                                   (long long)(BASE + 1000 + i));
    }
    t_ingest(f->st, (const char *const *)lines, 4);
    for (int i = 0; i < 4; i++)
        free(lines[i]);
    fr_store_close(f->st);
    f->st = NULL;
    assert_int_equal(run_retention(f->db, f->policy, BASE + 4 * DAY, NULL), 0);
    char **segs;
    size_t nseg = segment_paths(f, &segs);
    assert_true(nseg >= 2);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE map_id IS NULL"),
                     0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM archive_map") > 0);
    /* the map's key is stored: FNV-1a of kind, 0x1f, id (docs/archive-format.md) */
    assert_true(fr_seg_key_hash('c', "c-000001") == fr_fnv1a64("c\x1f"
                                                               "c-000001"));
    assert_true(fr_seg_key_hash('t', "ab") == 0xa3854eeee8a04257ULL); /* written by hand */
    char *out = NULL, *err = NULL;
    assert_int_equal(show(f, "--ndjson --trace-id tr-0af7651916cd43dd", &out, &err), 0);
    assert_non_null(strstr(out, "archived-trace"));
    assert_non_null(strstr(out, "\"tier\":\"warm\""));
    free(out);
    free(err);

    /* every segment broken: a conversation held in hot alone reads as if nothing happened */
    char *orig[64];
    size_t olen[64];
    assert_true(nseg <= 64);
    for (size_t i = 0; i < nseg; i++) {
        orig[i] = slurp(segs[i], &olen[i]);
        char *bad = fr_malloc(olen[i]);
        memcpy(bad, orig[i], olen[i]);
        bad[olen[i] / 2] ^= 0x5a;
        spit(segs[i], bad, olen[i]);
        free(bad);
    }
    assert_int_equal(show(f, "hot-only", &out, &err), 0);
    assert_null(strstr(err, "segment not read"));
    assert_null(strstr(err, "PARTIAL"));
    assert_non_null(strstr(out, "conversation hot-only"));
    free(out);
    free(err);
    /* one that needs a segment: what is there, what is not (named), exit 5 */
    assert_int_equal(show(f, "c-000001", &out, &err), 5);
    assert_non_null(strstr(err, "segment not read"));
    assert_non_null(strstr(err, "PARTIAL"));
    free(out);
    free(err);
    /* archive verify names every bad one and marks them */
    char *cmd = fr_asprintf("%s archive verify --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(cmd, &out, &err), 3);
    size_t nbad = 0;
    for (const char *at = out; (at = strstr(at, "BAD ")) != NULL; at++)
        nbad++;
    assert_int_equal(nbad, nseg);
    free(out);
    free(err);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE bad IS NOT NULL"),
                     (int64_t)nseg);
    /* archive list says so too */
    char *list = fr_asprintf("%s archive list --db %s --policy %s", FR_BIN, f->db, f->policy);
    assert_int_equal(t_run(list, &out, &err), 0);
    assert_non_null(strstr(out, "BAD: "));
    free(out);
    free(err);
    free(list);
    /* all but the newest repaired: verify clears them */
    size_t k = nseg - 1;
    for (size_t i = 0; i < k; i++)
        spit(segs[i], orig[i], olen[i]);
    assert_int_equal(t_run(cmd, &out, &err), 3);
    assert_non_null(strstr(out, strrchr(segs[k], '/') + 1));
    free(out);
    free(err);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE bad IS NOT NULL"),
                     1);
    /* the scrub (the agent's pass) finds a segment broken since: its file changed */
    spit(segs[0], "XXXXXXXX", 8);
    f->st = t_store_open(f->dir, "hot.db");
    struct fr_scrub_stats ss;
    struct fr_err ferr = {0};
    assert_int_equal(fr_retention_scrub(f->st, &f->p, 0, &ss, &ferr), FR_OK);
    assert_int_equal(ss.bad, 2);
    assert_int_equal(fr_retention_scrub(f->st, &f->p, 0, &ss, &ferr), FR_OK);
    assert_int_equal(ss.verified, 0); /* nothing changed since */
    spit(segs[0], orig[0], olen[0]);
    assert_int_equal(fr_retention_scrub(f->st, &f->p, 0, &ss, &ferr), FR_OK);
    assert_int_equal(ss.verified, 1);
    assert_int_equal(ss.bad, 1);
    fr_store_close(f->st);
    f->st = NULL;

    /* warm -> cold moves every segment but the bad one, which stays where it is */
    char *rerr = NULL;
    assert_int_equal(run_retention(f->db, f->policy, BASE + 40 * DAY, &rerr), 0);
    free(rerr);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'warm'"),
                     1);
    assert_int_equal(
        sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'warm' AND bad IS NOT "
                       "NULL"),
        1);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM archive_segments");
    assert_true(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE tier = 'cold'") >=
                (int64_t)nseg - 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE map_id IS NULL"),
                     0);

    /* quarantine: moved aside, its entry gone; reads stop tripping over it */
    char *q = fr_asprintf("%s archive quarantine --db %s --policy %s %s", FR_BIN, f->db, f->policy,
                          strrchr(segs[k], '/') + 1);
    assert_int_equal(t_run(q, &out, &err), 0);
    free(out);
    free(err);
    free(q);
    char *moved = fr_asprintf("%s/archive/quarantine%s", f->dir, strrchr(segs[k], '/'));
    assert_int_equal(access(moved, F_OK), 0);
    assert_int_equal(access(segs[k], F_OK), -1);
    free(moved);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), total - 1);
    show(f, "c-000001", &out, &err);
    assert_null(strstr(err, "segment not read"));
    free(out);
    free(err);
    assert_int_equal(t_run(cmd, &out, &err), 0); /* the archive verifies again */
    free(out);
    free(err);
    free(cmd);
    /* a store whose segments have no map (written before it existed) gets one by the next run */
    char *unmap = fr_asprintf(
        "sqlite3 %s \"DELETE FROM archive_map; UPDATE archive_segments SET map_id = NULL\"", f->db);
    assert_int_equal(t_run(unmap, NULL, NULL), 0);
    free(unmap);
    assert_int_equal(show(f, "--ndjson --trace-id tr-0af7651916cd43dd", &out, &err), 0);
    assert_non_null(strstr(out, "archived-trace")); /* read without the map */
    free(out);
    free(err);
    assert_int_equal(run_retention(f->db, f->policy, BASE + 40 * DAY, &rerr), 0);
    free(rerr);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments WHERE map_id IS NULL"),
                     0);
    assert_int_equal(show(f, "--ndjson --trace-id tr-0af7651916cd43dd", &out, &err), 0);
    assert_non_null(strstr(out, "archived-trace"));
    assert_non_null(strstr(out, "\"tier\":\"cold\""));
    free(out);
    free(err);
    for (size_t i = 0; i < nseg; i++) {
        free(orig[i]);
        free(segs[i]);
    }
    free(segs);
    f->st = t_store_open(f->dir, "hot.db");
}

static void
test_retention_show_partial_results(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    fr_store_close(f->st);
    f->st = NULL;
    assert_int_equal(run_retention(f->db, f->policy, BASE + 4 * DAY, NULL), 0);
    /* break the segment holding c-000001's oldest events */
    char path[600] = "";
    char *sql = fr_asprintf("sqlite3 %s \"SELECT path FROM archive_segments ORDER BY min_ts "
                            "LIMIT 1\" | tr -d '\\n'",
                            f->db),
         *rel = NULL;
    t_run(sql, &rel, NULL);
    free(sql);
    snprintf(path, sizeof path, "%s/%s", f->dir, rel);
    free(rel);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 200, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, 200, SEEK_SET);
    fputc(ch ^ 0xff, fp);
    fclose(fp);
    char *cmd = fr_asprintf("%s show --db %s c-000001", FR_BIN, f->db);
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 5);
    assert_non_null(strstr(err, "segment not read"));
    assert_non_null(strstr(err, strrchr(path, '/') + 1)); /* named */
    assert_non_null(strstr(err, "PARTIAL"));
    assert_non_null(strstr(out, "conversation c-000001")); /* what is there, shown */
    free(out);
    free(err);
    free(cmd);
    /* far later, everything is past cold.max_age: deleted, and show says so */
    run_retention(f->db, f->policy, BASE + 400 * DAY, NULL);
    cmd = fr_asprintf("%s show --db %s c-000002", FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, &err), 5);
    assert_non_null(strstr(err, "deleted by retention"));
    free(out);
    free(err);
    free(cmd);
    f->st = t_store_open(f->dir, "hot.db");
}

/* A copy of segment src's records as a new warm segment of store store_id, with auth (NULL: none).
 */
static void
forge_segment(const char *src, const char *dst, const char *store_id, const unsigned char *auth)
{
    json_t *recs = json_array();
    struct fr_err err = {0};
    assert_int_equal(fr_archive_records(src, &loaded_keys, collect, recs, &err), FR_OK);
    struct fr_seg_writer *w = fr_seg_writer_new(FR_TIER_WARM, NULL, "0123456789abcdef");
    fr_seg_writer_set_store(w, store_id);
    fr_seg_writer_set_auth(w, auth);
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        json_t *j = json_loads(json_string_value(r), 0, NULL);
        json_t *body = json_object_get(j, "body");
        json_t *ts = json_object_get(body ? body : j, "ts_ms");
        const char *conv = json_string_value(json_object_get(body ? body : j, "conv_id"));
        fr_seg_writer_add(w, json_string_value(r), json_string_length(r),
                          json_integer_value(ts ? ts : json_object_get(j, "last_ms")), conv, NULL);
        json_decref(j);
    }
    struct fr_seg_info info;
    assert_int_equal(fr_seg_writer_finish(w, dst, &info, &err), FR_OK);
    fr_seg_writer_free(w);
    json_decref(recs);
}

/*
 * Segments and MANIFEST lines are authenticated with the archive key: a
 * valid segment of this store's id put into the archive folder by someone
 * without the key (unkeyed, or keyed with another key) is neither adopted
 * (its rows would replace hot ones and be read twice) nor deleted, and
 * journal lines without a valid MAC are not believed by `archive rebuild`.
 * After `keys rotate archive`, what the old key authenticated still reads.
 */
static void
test_retention_forged_segments_and_journal_refused(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    int64_t total = sql_int(f->db, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    struct fr_retention_stats s;
    struct fr_err err = {0};
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_true(s.warm_segments > 0);
    int64_t segs = sql_int(f->db, "SELECT count(*) FROM archive_segments");
    char *cmd = fr_asprintf("ls %s/*.warm.seg | head -1 | tr -d '\\n'", f->p.archive_dir), *real;
    assert_int_equal(t_run(cmd, &real, NULL), 0);
    free(cmd);
    char store_id[17] = "";
    fr_store_id(f->st, store_id, NULL);
    keys_of(&f->p);
    assert_int_equal(loaded_keys.auth.n, 1);
    char *fa = t_path(f->p.archive_dir, "seg-9999999999999-forged-a.warm.seg");
    char *fb = t_path(f->p.archive_dir, "seg-9999999999999-forged-b.warm.seg");
    unsigned char other[FR_KEY_LEN] = {7, 7, 7};
    forge_segment(real, fa, store_id, NULL);  /* the old format: a bare SHA-256 */
    forge_segment(real, fb, store_id, other); /* keyed, but not with this store's key */
    struct fr_seg *seg;
    assert_int_equal(fr_seg_open(fb, &loaded_keys, &seg, &err), FR_E_AUTH);
    assert_non_null(strstr(err.msg, "authentication failed"));
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 4 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_int_equal(s.adopted, 0);
    assert_int_equal(s.unauthenticated, 2);
    assert_int_equal(s.duplicates_removed, 0);
    assert_int_equal(access(fa, F_OK), 0); /* left in place, not deleted */
    assert_int_equal(access(fb, F_OK), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), segs);
    expect_each_once(f->st, &f->p, total, "forged segments in the folder");

    /* forged journal lines: a "delete" of a real segment without a MAC, an "add" of a forged
       one with a made-up MAC; rebuild believes neither */
    char *mf = t_path(f->p.archive_dir, "MANIFEST");
    FILE *fp = fopen(mf, "a");
    const char *name = strrchr(real, '/') + 1;
    fprintf(fp, "{\"action\":\"delete\",\"path\":\"%s\"}\n", name);
    fprintf(fp, "{\"action\":\"add\",\"path\":\"seg-9999999999999-forged-a.warm.seg\",\"tier\":"
                "\"warm\",\"mac\":\"00112233445566778899aabbccddeeff\"}\n");
    fclose(fp);
    fr_store_close(f->st);
    f->st = NULL;
    rebuild_on_copy(f, "forged MANIFEST lines", true, total);

    /* rotation: a new archive key, the old one kept; old segments still verify, new ones are
       written with the new key */
    char id[FR_KEY_ID_HEX + 1];
    assert_int_equal(fr_key_rotate(f->p.archive_key, id, &err), FR_OK);
    f->st = t_store_open(f->dir, "hot.db");
    expect_each_once(f->st, &f->p, total, "after keys rotate archive");
    struct fr_archive_keys old = *keys_of(&f->p);
    assert_int_equal(old.auth.n, 2);
    memcpy(old.auth.key[0], old.auth.key[1], FR_KEY_LEN); /* the retired key alone */
    old.auth.n = 1;
    assert_int_equal(fr_retention_run(f->st, &f->p, BASE + 40 * DAY, false, NULL, NULL, &s, &err),
                     FR_OK);
    assert_true(s.to_cold > 0);
    expect_each_once(f->st, &f->p, total, "cold segments written after the rotation");
    cmd = fr_asprintf("ls %s/*.cold.seg | head -1 | tr -d '\\n'", f->p.archive_dir);
    char *cold;
    assert_int_equal(t_run(cmd, &cold, NULL), 0);
    free(cmd);
    assert_int_equal(fr_seg_open(cold, &old, &seg, &err), FR_E_AUTH); /* the new key made it */
    assert_int_equal(fr_seg_open(cold, &loaded_keys, &seg, &err), FR_OK);
    fr_seg_close(seg);
    fr_archive_keys_wipe(&old);
    free(cold);
    free(mf);
    free(fa);
    free(fb);
    free(real);
}

#define MARK "ZQXJ7Kforget"

/* Whether any file under dir (but skip) holds MARK in its bytes: the database, its WAL, every
   segment and the MANIFEST journal. */
static const char *scan_skip;
static int scan_hits;

static int
scan_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag != FTW_F || (scan_skip && strncmp(path, scan_skip, strlen(scan_skip)) == 0))
        return 0;
    char *bytes;
    size_t len;
    if (fr_read_file(path, &bytes, &len, NULL) != FR_OK)
        return 0;
    if (memmem(bytes, len, MARK, strlen(MARK)) != NULL) {
        print_message("marker found in %s\n", path);
        scan_hits++;
    }
    free(bytes);
    return 0;
}

static int
marked_record(void *ud, const char *json, size_t len)
{
    if (memmem(json, len, MARK, strlen(MARK)) != NULL)
        (*(int *)ud)++;
    return 0;
}

struct marked_ctx {
    const struct fr_archive_keys *keys;
    int records, warm, cold;
};

static int
marked_segment(void *ud, const struct fr_manifest_row *r)
{
    struct marked_ctx *c = ud;
    int n = 0;
    struct fr_err err = {0};
    assert_int_equal(fr_archive_records(r->path, c->keys, marked_record, &n, &err), FR_OK);
    c->records += n;
    c->warm += n > 0 && strcmp(r->tier, "warm") == 0;
    c->cold += n > 0 && strcmp(r->tier, "cold") == 0;
    return 0;
}

/* Where the marked conversation still is: hot rows, archive records (decoded), raw bytes. */
static void
marked_where(struct rfx *f, int64_t *hot, struct marked_ctx *arch, int *files)
{
    *hot = sql_int(f->db, "SELECT count(*) FROM events WHERE fr_body(body) LIKE '%" MARK "%'");
    struct fr_store *st = t_store_open(f->dir, "hot.db");
    struct marked_ctx c = {keys_of(&f->p), 0, 0, 0};
    struct fr_err err = {0};
    assert_int_equal(fr_store_manifest(st, marked_segment, &c, &err), FR_OK);
    fr_store_close(st);
    *arch = c;
    char *input = t_path(f->dir, "input");
    scan_skip = input;
    scan_hits = 0;
    nftw(f->dir, scan_one, 16, FTW_PHYS);
    scan_skip = NULL;
    free(input);
    *files = scan_hits;
}

/*
 * flightrec erase: a conversation with unique markers in hot, warm and cold
 * is erased everywhere: no byte of a marker in any file under the data
 * folder (database, WAL, segments, MANIFEST) nor in any decoded archive
 * record; every other event still read exactly once; `archive verify`
 * passes; `show` says it was erased; its events sent again are refused.
 * Killed at every step of the erase, the next retention run finishes it.
 */
static void
test_retention_erase_everywhere(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    int64_t others = sql_int(f->db, "SELECT count(*) FROM events WHERE kind != 'runtime'");
    fr_store_close(f->st);
    f->st = NULL;
    /* 1600 events over 40 days: cold, warm and hot at day 41, and warm segments (1500 rows)
       holding nothing else, which the erasure deletes instead of rewriting */
    char *indir = t_path(f->dir, "input"), *in = t_path(f->dir, "input/forget.ndjson");
    mkdir(indir, 0700);
    FILE *fp = fopen(in, "w");
    for (int i = 0; i < 1600; i++)
        fprintf(
            fp,
            "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"forget-me\",\"event_id\":\"fm-%d\","
            "\"data\":{\"name\":\"lookup\",\"args\":{\"q\":\"%s%04d\"},\"result\":\"%s%04dr\"}}\n",
            (long long)(BASE + i * (40 * DAY / 1600)), i, MARK, i, MARK, i);
    fclose(fp);
    char *cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, f->db, in);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    int64_t now = BASE + 41 * DAY;
    assert_int_equal(run_retention(f->db, f->policy, now, NULL), 0);
    int64_t hot;
    struct marked_ctx arch;
    int files;
    marked_where(f, &hot, &arch, &files);
    /* the conversation is in every tier before */
    assert_true(hot > 0);
    assert_true(arch.warm > 0);
    assert_true(arch.cold > 0);
    assert_true(files > 0); /* the hot rows at least are in the database file in clear */

    /* a dry run says what would go, through the same pass, and changes nothing */
    char *dry_err = NULL;
    cmd = fr_asprintf("%s erase --dry-run --conv forget-me --db %s --policy %s", FR_BIN, f->db,
                      f->policy);
    assert_int_equal(t_run(cmd, NULL, &dry_err), 0);
    free(cmd);
    /* its event records, and one summary record per segment holding it */
    char *want = fr_asprintf("%lld events would leave hot; ", (long long)hot);
    const char *at = strstr(dry_err, want);
    if (at == NULL || atoll(at + strlen(want)) < arch.records)
        fail_msg("dry run: want \"%s\" and at least %d records in: %s", want, arch.records,
                 dry_err);
    free(want);
    free(dry_err);
    int64_t hot2;
    struct marked_ctx arch2;
    marked_where(f, &hot2, &arch2, &files);
    assert_int_equal(hot2, hot);
    assert_int_equal(arch2.records, arch.records);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM erasures"), 0);
    char *tdb = t_path(f->dir, "input/tmpl.db"), *tarch = t_path(f->dir, "input/tmpl-archive");
    cmd = fr_asprintf("cp %s %s && cp -a %s %s", f->db, tdb, f->p.archive_dir, tarch);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    static const char *const points[] = {"erase_after_hot",     "erase_before_rewrite",
                                         "erase_after_rewrite", "erase_after_journal",
                                         "erase_after_remove",  NULL};
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        cmd = fr_asprintf("rm -rf %s %s-wal %s-shm %s && cp %s %s && cp -a %s %s", f->db, f->db,
                          f->db, f->p.archive_dir, tdb, f->db, tarch, f->p.archive_dir);
        assert_int_equal(t_run(cmd, NULL, NULL), 0);
        free(cmd);
        char *err = NULL;
        char *bundle = t_path(f->dir, "input/held.tar.zst");
        if (points[i] == NULL) {
            /* copies of its data outside the store: a bundle where incident create puts them,
               and one kept elsewhere that someone tries to upload afterwards */
            cmd = fr_asprintf("%s incident create --conv forget-me --db %s && %s incident create "
                              "--conv forget-me --db %s --out %s",
                              FR_BIN, f->db, FR_BIN, f->db, bundle);
            assert_int_equal(t_run(cmd, NULL, NULL), 0);
            free(cmd);
        }
        cmd = fr_asprintf("%s%s %s erase --conv forget-me --reason test --db %s --policy %s",
                          points[i] ? "FLIGHTREC_CRASH_AT=" : "", points[i] ? points[i] : "",
                          FR_BIN, f->db, f->policy);
        int rc = t_run(cmd, NULL, &err);
        free(cmd);
        if (points[i] == NULL) {
            if (rc != 0)
                fail_msg("erase failed: %s", err ? err : "");
            assert_non_null(strstr(err, "1 bundle(s) holding it removed"));
            char *ls =
                fr_asprintf("ls %s/bundles/*.tar.zst 2>/dev/null | wc -l | tr -d ' \n'", f->dir);
            char *count = NULL;
            t_run(ls, &count, NULL);
            assert_string_equal(count, "0");
            free(count);
            free(ls);
            /* the one kept elsewhere is refused for upload */
            char *up =
                fr_asprintf("%s incident upload %s --to anywhere --db %s", FR_BIN, bundle, f->db);
            char *uerr = NULL;
            assert_int_equal(t_run(up, NULL, &uerr), 3);
            assert_non_null(strstr(uerr, "which was erased"));
            free(uerr);
            free(up);
            /* erasing again with --bundles naming that folder deletes it there too */
            up = fr_asprintf("%s erase --conv forget-me --db %s --policy %s --bundles %s/input",
                             FR_BIN, f->db, f->policy, f->dir);
            assert_int_equal(t_run(up, NULL, &uerr), 0);
            assert_non_null(strstr(uerr, "1 bundle(s) holding it removed"));
            assert_int_equal(access(bundle, F_OK), -1);
            free(uerr);
            free(up);
        } else {
            if (rc == 0)
                fail_msg("%s: the erase was not killed", points[i]);
            /* the next run finishes what the kill interrupted */
            free(err);
            err = NULL;
            if (run_retention(f->db, f->policy, now, &err) != 0)
                fail_msg("%s: the run after the kill failed: %s", points[i], err ? err : "");
        }
        free(err);
        free(bundle);
        marked_where(f, &hot, &arch, &files);
        if (hot != 0 || arch.records != 0 || files != 0)
            fail_msg("%s: the conversation is still there: %lld hot rows, %d archive records, "
                     "%d files with a marker",
                     points[i] ? points[i] : "plain erase", (long long)hot, arch.records, files);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM erasures WHERE state = 'done'"), 1);
        cmd = fr_asprintf("%s archive verify --db %s --policy %s", FR_BIN, f->db, f->policy);
        char *out = NULL;
        if (t_run(cmd, &out, &err) != 0)
            fail_msg("%s: archive verify: %s%s", points[i] ? points[i] : "erase", out, err);
        free(out);
        free(err);
        free(cmd);
        struct fr_store *st = t_store_open(f->dir, "hot.db");
        expect_each_once(st, &f->p, others, points[i] ? points[i] : "after the erase");
        fr_store_close(st);
    }
    /* show says so; sent again, every event is refused */
    char *out = NULL, *err = NULL;
    cmd = fr_asprintf("%s show forget-me --db %s", FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, &err), 4);
    assert_non_null(strstr(err, "was erased at"));
    assert_non_null(strstr(err, "reason: test"));
    free(cmd);
    free(out);
    free(err);
    cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, f->db, in);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "1600 events refused: an erased conversation"));
    free(err);
    free(cmd);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM events WHERE conv_id = 'forget-me'"), 0);
    f->st = t_store_open(f->dir, "hot.db");
    free(tdb);
    free(tarch);
    free(in);
    free(indir);
}

static const char *want_token;

static int
token_record(void *ud, const char *json, size_t len)
{
    if (memmem(json, len, want_token, strlen(want_token)) != NULL)
        (*(int *)ud)++;
    return 0;
}

static int
count_token(void *ud, const struct fr_manifest_row *r)
{
    struct marked_ctx *c = ud;
    struct fr_err err = {0};
    int n = 0;
    assert_int_equal(fr_archive_records(r->path, c->keys, token_record, &n, &err), FR_OK);
    c->records += n;
    return 0;
}

/*
 * flightrec erase --hmac TOKEN: a value that leaked into several
 * conversations (stored as its keyed hash) is chased down by its token:
 * every event holding it, hot or archived, goes; the other events of the
 * same conversations stay; the value sent again is refused.
 */
static void
test_retention_erase_by_value_token(void **state)
{
    struct rfx *f = *state;
    fr_store_close(f->st);
    f->st = NULL;
    char *indir = t_path(f->dir, "input"), *in = t_path(f->dir, "input/leak.ndjson");
    char *pol = t_path(f->dir, "input/hash.yaml");
    mkdir(indir, 0700);
    FILE *fp = fopen(pol, "w");
    fputs("scan_replacement: hash\n", fp);
    fclose(fp);
    setenv("FLIGHTREC_REDACTION", pol, 1);
    fp = fopen(in, "w");
    for (int i = 0; i < 40; i++) /* 40 conversations, a leak and a clean event each, 20 days */
        fprintf(fp,
                "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"v-%d\",\"data\":{\"name\":\"m\","
                "\"args\":{\"to\":\"leaked.person@example.org\"}}}\n"
                "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"v-%d\",\"data\":{\"name\":\"m\","
                "\"args\":{\"to\":\"someone%d@example.org\"}}}\n",
                (long long)(BASE + i * DAY / 2), i, (long long)(BASE + i * DAY / 2 + 1), i, i);
    fclose(fp);
    char *cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, f->db, in);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    /* the token, as redact --explain shows it */
    char *out = NULL;
    cmd = fr_asprintf("head -1 %s | %s redact --explain --db %s - | grep -o 'hmac:[0-9a-f:]*' | "
                      "head -1 | tr -d '\\n'",
                      in, FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    free(cmd);
    assert_int_equal(strlen(out), FR_TOKEN_LEN);
    assert_int_equal(run_retention(f->db, f->policy, BASE + 20 * DAY, NULL), 0);
    assert_true(sql_int(f->db, "SELECT count(*) FROM archive_segments") > 0);
    char *sql =
        fr_asprintf("SELECT count(*) FROM events WHERE instr(fr_body(body), '%s') > 0", out);
    assert_true(sql_int(f->db, sql) > 0);
    char *err = NULL;
    cmd = fr_asprintf("%s erase --hmac %s --reason leak --db %s --policy %s", FR_BIN, out, f->db,
                      f->policy);
    if (t_run(cmd, NULL, &err) != 0)
        fail_msg("erase --hmac: %s", err);
    free(err);
    free(cmd);
    assert_int_equal(sql_int(f->db, sql), 0);
    /* archived records holding the token: none (counted through the same marker scan) */
    struct fr_store *st = t_store_open(f->dir, "hot.db");
    struct marked_ctx c = {keys_of(&f->p), 0, 0, 0};
    struct fr_err e = {0};
    want_token = out;
    assert_int_equal(fr_store_manifest(st, count_token, &c, &e), FR_OK);
    assert_int_equal(c.records, 0);
    /* the clean event of every conversation is still there, hot or archived */
    struct fr_event_filter all = {0};
    struct seen seen = {fr_calloc(1, 2000), 2000, 0, 0};
    assert_int_equal(fr_tier_events(st, &all, keys_of(&f->p), see_row, &seen, NULL, &e), FR_OK);
    assert_int_equal(seen.total, 40);
    free(seen.ids);
    fr_store_close(st);
    /* sent again: the leaking events are refused, the clean ones are duplicates or new */
    cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, f->db, in);
    assert_int_equal(t_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "40 events refused"));
    free(err);
    free(cmd);
    assert_int_equal(sql_int(f->db, sql), 0);
    unsetenv("FLIGHTREC_REDACTION");
    f->st = t_store_open(f->dir, "hot.db");
    free(sql);
    free(out);
    free(pol);
    free(in);
    free(indir);
}

/*
 * When retention deletes a conversation's last detail (past cold.max_age),
 * a summary stays: its times, event and error counts, tokens, models and
 * error codes, summed over every segment that held it, listed by
 * `conversations --summaries`; an erased conversation keeps none.
 */
static void
test_retention_summaries_outlive_detail(void **state)
{
    struct rfx *f = *state;
    t_ingest_generated(f->st, f->dir, 3000);
    /* what the summaries must add up to: every event and error of the generated store */
    int64_t events = sql_int(f->db, "SELECT count(*) FROM events WHERE conv_id IS NOT NULL AND "
                                    "kind != 'runtime'");
    int64_t errors = sql_int(f->db, "SELECT count(*) FROM events WHERE conv_id IS NOT NULL AND "
                                    "kind != 'runtime' AND error_code IS NOT NULL");
    int64_t convs = sql_int(f->db, "SELECT count(DISTINCT conv_id) FROM events WHERE kind != "
                                   "'runtime' AND conv_id IS NOT NULL");
    int64_t erased_events = sql_int(f->db, "SELECT count(*) FROM events WHERE conv_id = "
                                           "'c-000003' AND kind != 'runtime'");
    char *model = NULL;
    char *cmd = fr_asprintf("sqlite3 %s \"SELECT model FROM events WHERE model IS NOT NULL LIMIT "
                            "1\" | tr -d '\\n'",
                            f->db);
    assert_int_equal(t_run(cmd, &model, NULL), 0);
    free(cmd);
    fr_store_close(f->st);
    f->st = NULL;
    /* warm at day 4, cold at day 40, then erase one, then deleted at day 400 */
    assert_int_equal(run_retention(f->db, f->policy, BASE + 4 * DAY, NULL), 0);
    assert_int_equal(run_retention(f->db, f->policy, BASE + 40 * DAY, NULL), 0);
    char *err = NULL;
    cmd = fr_asprintf("%s erase --conv c-000003 --db %s --policy %s", FR_BIN, f->db, f->policy);
    if (t_run(cmd, NULL, &err) != 0)
        fail_msg("erase: %s", err);
    free(err);
    free(cmd);
    assert_int_equal(run_retention(f->db, f->policy, BASE + 400 * DAY, NULL), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM archive_segments"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM conversation_summaries"), convs - 1);
    assert_int_equal(
        sql_int(f->db, "SELECT count(*) FROM conversation_summaries WHERE conv_id = 'c-000003'"),
        0);
    assert_int_equal(sql_int(f->db, "SELECT sum(events) FROM conversation_summaries"),
                     events - erased_events);
    assert_true(sql_int(f->db, "SELECT sum(errors) FROM conversation_summaries") <= errors);
    assert_true(sql_int(f->db, "SELECT sum(errors) FROM conversation_summaries") > 0);
    char *out = NULL;
    cmd = fr_asprintf("%s conversations --summaries --limit 0 --db %s", FR_BIN, f->db);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "c-000001"));
    assert_null(strstr(out, "c-000003 "));
    assert_non_null(strstr(out, model)); /* the models it used */
    free(out);
    free(cmd);
    free(model);
    f->st = t_store_open(f->dir, "hot.db");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_dictionary_round_trip),
        cmocka_unit_test(test_segment_conv_filter_skips_blocks),
        cmocka_unit_test(test_segment_corrupt_and_truncated_detected),
        cmocka_unit_test(test_segment_cold_needs_its_key),
        cmocka_unit_test(test_segment_committed_format_v3_readable),
        cmocka_unit_test(test_segment_committed_format_v4_readable),
        cmocka_unit_test(test_segment_committed_format_v5_readable),
        cmocka_unit_test(test_columns_round_trip),
        cmocka_unit_test(test_columns_decode_where),
        cmocka_unit_test(test_columns_counted),
        cmocka_unit_test(test_columns_hex_ids),
        cmocka_unit_test(test_columns_hex_ids_refused),
        cmocka_unit_test_setup_teardown(test_retention_tiers_over_time, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_conversation_pages, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_expires_in_the_run_that_moves_to_cold,
                                        rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_same_view_after_compaction, rsetup,
                                        rteardown),
        cmocka_unit_test_setup_teardown(test_retention_crash_points, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_stores_sharing_a_folder_keep_their_own,
                                        rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_data_folder_moved, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_forged_segments_and_journal_refused, rsetup,
                                        rteardown),
        cmocka_unit_test_setup_teardown(test_retention_erase_everywhere, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_erase_by_value_token, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_summaries_outlive_detail, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_show_partial_results, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_archive_map_isolates_bad_segments, rsetup,
                                        rteardown),
        cmocka_unit_test_setup_teardown(test_retention_manifest_journal_error_reported, rsetup,
                                        rteardown),
        cmocka_unit_test_setup_teardown(test_retention_cli_verify_and_policy_errors, rsetup,
                                        rteardown),
        cmocka_unit_test_setup_teardown(test_retention_size_bound_and_restore, rsetup, rteardown),
        cmocka_unit_test_setup_teardown(test_retention_disk_pressure_moves, rsetup, rteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
