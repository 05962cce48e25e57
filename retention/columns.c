/*
 * retention/columns.c - see columns.h; the byte layout is in
 * docs/archive-format.md (Columnar blocks).
 */
#include "retention/columns.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/mem.h"

#define COL_MAGIC "FRC1"
/* codecs of a stream */
enum {
    C_SHAPES = 1,
    C_IDS = 2,
    C_INT = 3,
    C_PLAIN = 4,
    C_DICT = 5,
    C_TEXT = 6,
    C_REFS = 7,
    C_LONGS = 8,
    C_HEX = 9,    /* segment format 5 */
    C_IDFORM = 10 /* segment format 5 */
};
_Static_assert(C_IDFORM < FR_COL_CODECS, "fr_col_stats has a slot for every codec");
#define FIXED_STREAMS 3 /* shapes, shape ids, long values; then the columns */
/* shape tags */
#define T_INT 'i'
#define T_STR 's'
#define T_JSON 'j'
#define T_TRUE 't'
#define T_FALSE 'f'
#define T_NULL 'n'
#define T_OBJ '{'
#define T_END '}'
#define T_ARR '['
#define MAX_DEPTH 256 /* objects and arrays nested deeper are refused (the wire allows 64) */
#define TEXT_TOKENS_PER_WORD 16 /* text coding only when each distinct token recurs this often */
#define LONG_VALUE 64           /* text values this long or longer are stored once per block */
#define LONGS_LEVEL 2           /* the long values' zstd level: this many above the columns' */
#define FORM_MAX 128            /* ids of one form (codec 10) are at most this long */
#define HEX_MIN_AVG 8           /* hex columns whose values average this many digits are ids */

/* ---- growable bytes and varints ---- */

struct bytes {
    unsigned char *p;
    size_t len, cap;
};

static void
b_put(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap || b->p == NULL) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = fr_realloc(b->p, b->cap);
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void
b_byte(struct bytes *b, unsigned char c)
{
    b_put(b, &c, 1);
}

static void
b_varint(struct bytes *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    do {
        t[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    b_put(b, t, n);
}

static void
b_str(struct bytes *b, const void *p, size_t n)
{
    b_varint(b, n);
    b_put(b, p, n);
}

/* A reader over bytes: every get fails (sets bad) rather than read past the end. */
struct rd {
    const unsigned char *p;
    size_t len, at;
    bool bad;
};

static uint64_t
r_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->at >= r->len) {
            r->bad = true;
            return 0;
        }
        unsigned char c = r->p[r->at++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static const unsigned char *
r_bytes(struct rd *r, size_t n)
{
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->at;
    r->at += n;
    return p;
}

/* ---- a map from byte strings to dense ids (keys kept in one arena) ---- */

struct hmap {
    uint32_t *slot; /* id + 1; 0 empty */
    size_t cap;     /* power of two */
    struct bytes keys;
    size_t *off;
    uint32_t *len;
    uint64_t *hash;
    uint32_t *count;
    size_t n, ncap;
};

/* A fast 64-bit hash of bytes (eight at a time; only this process uses it). */
static uint64_t
hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n > 0)
        memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static void
hm_grow(struct hmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint32_t *slot = fr_calloc(cap, sizeof *slot);
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->hash[i] & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
}

/* The id of key (added when new; *created says so); its count goes up by one. */
static uint32_t
hm_id(struct hmap *m, const void *key, size_t n, bool *created)
{
    if ((m->n + 1) * 2 > m->cap)
        hm_grow(m);
    uint64_t h = hash_bytes(key, n);
    size_t j = h & (m->cap - 1);
    for (; m->slot[j]; j = (j + 1) & (m->cap - 1)) {
        uint32_t i = m->slot[j] - 1;
        if (m->hash[i] == h && m->len[i] == n &&
            (n == 0 || memcmp(m->keys.p + m->off[i], key, n) == 0)) {
            m->count[i]++;
            if (created)
                *created = false;
            return i;
        }
    }
    if (m->n == m->ncap) {
        m->ncap = m->ncap ? m->ncap * 2 : 256;
        m->off = fr_realloc(m->off, m->ncap * sizeof *m->off);
        m->len = fr_realloc(m->len, m->ncap * sizeof *m->len);
        m->hash = fr_realloc(m->hash, m->ncap * sizeof *m->hash);
        m->count = fr_realloc(m->count, m->ncap * sizeof *m->count);
    }
    m->off[m->n] = m->keys.len;
    m->len[m->n] = (uint32_t)n;
    m->hash[m->n] = h;
    m->count[m->n] = 1;
    b_put(&m->keys, key, n);
    m->slot[j] = (uint32_t)m->n + 1;
    if (created)
        *created = true;
    return (uint32_t)m->n++;
}

/* The id of key, or -1 (never inserts). */
static int64_t
hm_find(const struct hmap *m, const void *key, size_t n)
{
    if (m->cap == 0)
        return -1;
    uint64_t h = hash_bytes(key, n);
    for (size_t j = h & (m->cap - 1); m->slot[j]; j = (j + 1) & (m->cap - 1)) {
        uint32_t i = m->slot[j] - 1;
        if (m->hash[i] == h && m->len[i] == n &&
            (n == 0 || memcmp(m->keys.p + m->off[i], key, n) == 0))
            return i;
    }
    return -1;
}

static void
hm_free(struct hmap *m)
{
    free(m->slot);
    free(m->keys.p);
    free(m->off);
    free(m->len);
    free(m->hash);
    free(m->count);
    memset(m, 0, sizeof *m);
}

/* ---- encoding ---- */

/* One column: the values of one field path and type, in record order. */
struct col {
    int kind;          /* T_INT, T_STR, T_JSON */
    struct bytes name; /* path (keys joined by 0x1f) and the kind byte */
    int64_t *iv;       /* T_INT */
    struct bytes sv;   /* strings: each as varint length and bytes */
    size_t n, cap;
    size_t total; /* bytes of the strings */
};

struct enc {
    struct hmap colmap; /* name -> index in cols */
    struct col *cols;
    size_t ncols, capcols;
    struct hmap shapes;
    struct bytes ids; /* shape id per record, varints */
    struct bytes shape, path;
    struct hmap longs; /* the block's long values, each once (C_REFS columns point into it) */
};

static void
col_int(struct col *c, int64_t v)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->iv = fr_realloc(c->iv, c->cap * sizeof *c->iv);
    }
    c->iv[c->n++] = v;
}

static void
col_str(struct col *c, const char *s, size_t n)
{
    b_str(&c->sv, s, n);
    c->n++;
    c->total += n;
}

/*
 * The scanner: a record's JSON text taken apart without building a tree.
 * Keys and strings are kept as they stand between their quotes (escapes
 * included), so decoding writes them back byte for byte; numbers that are
 * plain integers become integers, arrays and other numbers their text.
 * Leaves are staged per record and go to their columns only once the whole
 * record scanned, so a record that does not (not from jansson: whitespace,
 * a syntax error) leaves nothing behind and is normalized by jansson first.
 */
struct leaf {
    uint32_t col;
    int64_t iv;
    const char *p;
    size_t n;
};

struct scan {
    struct enc *e;
    const char *p, *end;
    struct leaf *v;
    size_t n, cap;
    int depth;
    struct bytes *elem; /* per depth: the shape of the array element being scanned */
};

static void
sc_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Past a string whose opening quote s->p is at; *body, *n: what is between the quotes. */
static bool
sc_string(struct scan *s, const char **body, size_t *n)
{
    const char *q = ++s->p;
    while (q < s->end && *q != '"') {
        if ((unsigned char)*q < 0x20)
            return false;
        q += *q == '\\' ? 2 : 1;
    }
    if (q >= s->end)
        return false;
    *body = s->p;
    *n = (size_t)(q - s->p);
    s->p = q + 1;
    return true;
}

static void
sc_leaf(struct scan *s, int kind, int64_t iv, const char *p, size_t n)
{
    struct enc *e = s->e;
    size_t plen = e->path.len;
    b_byte(&e->path, (unsigned char)kind);
    bool created;
    uint32_t id = hm_id(&e->colmap, e->path.p, e->path.len, &created);
    if (created) {
        if (e->ncols == e->capcols) {
            e->capcols = e->capcols ? e->capcols * 2 : 32;
            e->cols = fr_realloc(e->cols, e->capcols * sizeof *e->cols);
        }
        struct col *c = &e->cols[e->ncols++];
        memset(c, 0, sizeof *c);
        c->kind = kind;
        b_put(&c->name, e->path.p, e->path.len);
    }
    e->path.len = plen;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = fr_realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (struct leaf){id, iv, p, n};
}

/* A plain integer that fits 64 bits: -?[0-9]+ without a leading zero. */
static bool
sc_int(const char *p, size_t n, int64_t *out)
{
    size_t i = p[0] == '-';
    if (i == n || n - i > 19 || (p[i] == '0' && n - i > 1))
        return false;
    uint64_t v = 0;
    for (size_t k = i; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[k] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (i ? 1u : 0u))
        return false;
    *out = i ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool sc_value(struct scan *s, struct bytes *sh, int *tag);

/* An object whose '{' s->p is at: its members into sh (each tag, key, value part), then '}'
   unless root (a record's shape is its members alone). */
static bool
sc_object(struct scan *s, struct bytes *sh, bool root)
{
    struct enc *e = s->e;
    if (++s->depth > MAX_DEPTH)
        return false;
    s->p++;
    sc_ws(s);
    bool ok = true;
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            const char *key;
            size_t klen;
            sc_ws(s);
            if (s->p >= s->end || *s->p != '"' || !sc_string(s, &key, &klen)) {
                ok = false;
                break;
            }
            sc_ws(s);
            if (s->p >= s->end || *s->p++ != ':') {
                ok = false;
                break;
            }
            size_t plen = e->path.len;
            if (plen)
                b_byte(&e->path, 0x1f);
            b_put(&e->path, key, klen);
            size_t at = sh->len;
            b_byte(sh, 0); /* the tag, set once the value is seen */
            b_str(sh, key, klen);
            int tag;
            ok = sc_value(s, sh, &tag);
            sh->p[at] = (unsigned char)tag;
            e->path.len = plen;
            if (!ok)
                break;
            sc_ws(s);
            if (s->p >= s->end) {
                ok = false;
                break;
            }
            char c = *s->p++;
            if (c == '}')
                break;
            if (c != ',') {
                ok = false;
                break;
            }
        }
    }
    if (!root)
        b_byte(sh, T_END);
    s->depth--;
    return ok;
}

/* The bytes an element's shape is built in, one per depth (never moved: nested calls hold
   pointers into the list while deeper ones append). */
static struct bytes *
sc_elem_shape(struct scan *s)
{
    if (s->elem == NULL)
        s->elem = fr_calloc(MAX_DEPTH + 2, sizeof *s->elem);
    return &s->elem[s->depth];
}

/* A leaf of the column at the current path plus suffix (0x1e and a letter: arrays' own). */
static void
sc_array_leaf(struct scan *s, char what, int64_t v)
{
    struct enc *e = s->e;
    size_t plen = e->path.len;
    b_byte(&e->path, 0x1e);
    b_byte(&e->path, (unsigned char)what);
    sc_leaf(s, T_INT, v, NULL, 0);
    e->path.len = plen;
}

/*
 * An array whose '[' s->p is at: its length goes to the column path+0x1e+'n', each
 * element's shape (its tag and, for an object, its members) to the shapes and its id to
 * path+0x1e+'e', and the elements' values to the columns under path+0x1e.
 */
static bool
sc_array(struct scan *s)
{
    struct enc *e = s->e;
    if (++s->depth > MAX_DEPTH)
        return false;
    s->p++;
    size_t plen = e->path.len, count = 0;
    bool ok = true;
    sc_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
    } else {
        for (;;) {
            sc_ws(s);
            e->path.len = plen;
            b_byte(&e->path, 0x1e);
            struct bytes *sh = sc_elem_shape(s);
            sh->len = 0;
            b_byte(sh, 0);
            int tag;
            ok = sc_value(s, sh, &tag);
            if (!ok)
                break;
            sh->p[0] = (unsigned char)tag;
            e->path.len = plen;
            sc_array_leaf(s, 'e', hm_id(&e->shapes, sh->p, sh->len, NULL));
            count++;
            sc_ws(s);
            if (s->p >= s->end) {
                ok = false;
                break;
            }
            char c = *s->p++;
            if (c == ']')
                break;
            if (c != ',') {
                ok = false;
                break;
            }
        }
    }
    e->path.len = plen;
    if (ok)
        sc_array_leaf(s, 'n', (int64_t)count);
    s->depth--;
    return ok;
}

/* One value at s->p (the path is its own): *tag says what it is; objects add to sh. */
static bool
sc_value(struct scan *s, struct bytes *sh, int *tag)
{
    sc_ws(s);
    if (s->p >= s->end)
        return false;
    char c = *s->p;
    if (c == '"') {
        const char *b;
        size_t n;
        *tag = T_STR;
        if (!sc_string(s, &b, &n))
            return false;
        sc_leaf(s, T_STR, 0, b, n);
        return true;
    }
    if (c == '{') {
        *tag = T_OBJ;
        return sc_object(s, sh, false);
    }
    if (c == '[') {
        *tag = T_ARR;
        return sc_array(s);
    }
    static const struct {
        const char *lit;
        int tag;
    } lits[] = {{"true", T_TRUE}, {"false", T_FALSE}, {"null", T_NULL}};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(lits[k].lit);
        if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lits[k].lit, n) == 0) {
            *tag = lits[k].tag;
            s->p += n;
            return true;
        }
    }
    const char *b = s->p;
    while (s->p < s->end && *s->p != ',' && *s->p != ']' && *s->p != '}' && *s->p != ' ' &&
           *s->p != '\n' && *s->p != '\t' && *s->p != '\r')
        s->p++;
    if (s->p == b || (*b != '-' && (*b < '0' || *b > '9')))
        return false;
    int64_t iv;
    *tag = sc_int(b, (size_t)(s->p - b), &iv) ? T_INT : T_JSON;
    sc_leaf(s, *tag, *tag == T_INT ? iv : 0, b, (size_t)(s->p - b));
    return true;
}

/* One record into the shapes and columns; false when its text does not scan. */
static bool
enc_record(struct enc *e, struct scan *s, const char *rec, size_t len)
{
    s->p = rec;
    s->end = rec + len;
    s->n = 0;
    s->depth = 0;
    e->shape.len = e->path.len = 0;
    sc_ws(s);
    if (s->p >= s->end || *s->p != '{' || !sc_object(s, &e->shape, true))
        return false;
    sc_ws(s);
    if (s->p != s->end)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        struct col *c = &e->cols[s->v[i].col];
        if (c->kind == T_INT)
            col_int(c, s->v[i].iv);
        else
            col_str(c, s->v[i].p, s->v[i].n);
    }
    b_varint(&e->ids, hm_id(&e->shapes, e->shape.p, e->shape.len, NULL));
    return true;
}

/* Text: maximal runs of word bytes (letters, digits, '_', any non-ASCII) or of the others. */
static bool
word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c == '_';
}

static size_t
token_end(const unsigned char *s, size_t at, size_t n)
{
    bool w = word_byte(s[at]);
    size_t j = at + 1;
    while (j < n && word_byte(s[j]) == w && j - at < 255)
        j++;
    /* a word takes the one space after it: text is mostly words and single spaces */
    if (w && j < n && s[j] == ' ')
        j++;
    return j;
}

struct token_order {
    uint32_t count, id;
};

static int
by_count(const void *a, const void *b)
{
    const struct token_order *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * A text column: repeated long values stored once (a value is a reference
 * to the k-th long value seen), the others as token ids into the column's
 * token list, most frequent first (one varint byte for the first 128).
 */
static bool
enc_text(const struct col *c, struct bytes *raw)
{
    struct hmap tokens = {0}, longs = {0};
    /* pass 1: per value, a reference to an earlier long value (k + 1) or 0 and its tokens'
       ids (kept, so that pass 2 hashes nothing) */
    uint32_t *ref = fr_malloc((c->n + 1) * sizeof *ref), *ids = NULL, *ntoks;
    ntoks = fr_malloc((c->n + 1) * sizeof *ntoks);
    size_t nids = 0, capids = 0;
    struct rd r = {c->sv.p, c->sv.len, 0, false};
    for (size_t i = 0; i < c->n; i++) {
        size_t n = r_varint(&r);
        const unsigned char *s = r_bytes(&r, n);
        ref[i] = ntoks[i] = 0;
        if (n >= LONG_VALUE) {
            bool created;
            uint32_t k = hm_id(&longs, s, n, &created);
            if (!created) {
                ref[i] = k + 1;
                continue;
            }
        }
        for (size_t at = 0; at < n; ntoks[i]++) {
            size_t j = token_end(s, at, n);
            if (nids == capids) {
                capids = capids ? capids * 2 : 1024;
                ids = fr_realloc(ids, capids * sizeof *ids);
            }
            ids[nids++] = hm_id(&tokens, s + at, j - at, NULL);
            at = j;
        }
        /* a vocabulary that keeps growing this fast will not pay: stop looking */
        if (nids >= 4096 && tokens.n * 4 > nids)
            break;
    }
    /* a vocabulary much smaller than the text: token ids pay; else the bytes are left to zstd */
    bool use = tokens.n * TEXT_TOKENS_PER_WORD <= nids;
    if (use) {
        struct token_order *ord = fr_malloc((tokens.n + 1) * sizeof *ord);
        for (size_t i = 0; i < tokens.n; i++)
            ord[i] = (struct token_order){tokens.count[i], (uint32_t)i};
        qsort(ord, tokens.n, sizeof *ord, by_count);
        uint32_t *rank = fr_malloc((tokens.n + 1) * sizeof *rank);
        b_varint(raw, tokens.n);
        for (size_t i = 0; i < tokens.n; i++) {
            rank[ord[i].id] = (uint32_t)i;
            b_str(raw, tokens.keys.p + tokens.off[ord[i].id], tokens.len[ord[i].id]);
        }
        /* pass 2: the values */
        b_varint(raw, c->n);
        for (size_t i = 0, t = 0; i < c->n; i++) {
            b_varint(raw, ref[i]);
            if (ref[i])
                continue;
            b_varint(raw, ntoks[i]);
            for (uint32_t k = 0; k < ntoks[i]; k++)
                b_varint(raw, rank[ids[t++]]);
        }
        free(ord);
        free(rank);
    }
    free(ref);
    free(ntoks);
    free(ids);
    hm_free(&tokens);
    hm_free(&longs);
    return use;
}

static int
hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Whether a column holds ids, and of which kind, in one pass: C_HEX when
 * every value is lowercase hex digits, an even, non-zero number of them, 8
 * or more on average; else C_IDFORM when every value has one form: the same
 * length, hex digits where the first value has them (8 or more) and its byte
 * everywhere else (UUIDs, "c-" and hex); form[k] is then 0 where a digit
 * goes, else that byte. Either needs a letter a-f among the digits: decimal
 * digits alone (dates, numbers as strings) compress better as text than at
 * four bits each. 0: neither.
 */
static int
id_kind(const struct col *c, unsigned char form[FORM_MAX], size_t *flen)
{
    struct rd r = {c->sv.p, c->sv.len, 0, false};
    bool hex = c->n > 0 && c->total >= HEX_MIN_AVG * c->n, same = c->n > 0, letter = false;
    size_t n0 = 0;
    for (size_t i = 0; i < c->n && (hex || same); i++) {
        size_t n = r_varint(&r);
        const unsigned char *s = r_bytes(&r, n);
        if (i == 0) { /* the form: the first value's digits and other bytes */
            size_t digits = 0;
            n0 = n;
            same = n0 >= HEX_MIN_AVG && n0 <= FORM_MAX;
            for (size_t k = 0; same && k < n0; k++)
                digits += (form[k] = hex_digit(s[k]) >= 0 ? 0 : s[k]) == 0;
            same = same && digits >= HEX_MIN_AVG;
        }
        hex = hex && n > 0 && n % 2 == 0;
        same = same && n == n0;
        for (size_t k = 0; k < n && (hex || same); k++) {
            bool digit = hex_digit(s[k]) >= 0; /* where a form has a byte, it is no digit */
            hex = hex && digit;
            same = same && (form[k] == 0 ? digit : s[k] == form[k]);
            letter |= digit && s[k] >= 'a';
        }
    }
    if (!letter)
        return 0;
    *flen = n0;
    return hex ? C_HEX : same ? C_IDFORM : 0;
}

/*
 * Ids: per value a reference, 0 for a value not seen before in the column,
 * else how far back it is among the distinct values (1: the last new one;
 * ids recur close to where they first occurred: a trace's events, a
 * conversation's turns); then the new values' digits, two in a byte. A hex
 * column (codec 9, form NULL) has every byte a digit and gives each new
 * value's length; a column of one form (codec 10) gives the form once, up
 * front, and only the digits of each value. Random ids cost their entropy,
 * not that of their text.
 */
static void
enc_ids(const struct col *c, const unsigned char *form, size_t flen, struct bytes *raw)
{
    struct hmap d = {0};
    struct bytes lens = {0}, bin = {0};
    struct rd r = {c->sv.p, c->sv.len, 0, false};
    if (form != NULL) {
        b_varint(raw, flen);
        b_put(raw, form, flen);
    }
    b_varint(raw, c->n);
    for (size_t i = 0; i < c->n; i++) {
        size_t n = r_varint(&r);
        const unsigned char *s = r_bytes(&r, n);
        bool created;
        uint32_t id = hm_id(&d, s, n, &created);
        if (!created) {
            b_varint(raw, d.n - id);
            continue;
        }
        b_varint(raw, 0);
        if (form == NULL)
            b_varint(&lens, n / 2);
        int hi = -1; /* the digit waiting for its pair */
        for (size_t k = 0; k < n; k++) {
            if (form != NULL && form[k] != 0)
                continue;
            if (hi < 0) {
                hi = hex_digit(s[k]);
            } else {
                b_byte(&bin, (unsigned char)(hi << 4 | hex_digit(s[k])));
                hi = -1;
            }
        }
        if (hi >= 0) /* an odd number of digits: the last one's byte ends in 0 */
            b_byte(&bin, (unsigned char)(hi << 4));
    }
    b_put(raw, lens.p, lens.len);
    b_put(raw, bin.p, bin.len);
    free(lens.p);
    free(bin.p);
    hm_free(&d);
}

/* Which codec suits a string column, and its raw stream. */
static int
enc_strings(struct enc *e, const struct col *c, struct bytes *raw)
{
    unsigned char form[FORM_MAX];
    size_t flen;
    int ids = c->kind == T_STR ? id_kind(c, form, &flen) : 0;
    if (ids != 0) {
        enc_ids(c, ids == C_IDFORM ? form : NULL, flen, raw);
        return ids;
    }
    /* free text (values of 24 bytes or more on average): word tokens, if they pay; else the
       bytes, each long value that occurred before as a reference to its first copy */
    if (c->total >= 24 * c->n && enc_text(c, raw))
        return C_TEXT;
    if (c->total >= 24 * c->n) {
        struct rd r = {c->sv.p, c->sv.len, 0, false};
        b_varint(raw, c->n);
        for (size_t i = 0; i < c->n; i++) {
            size_t n = r_varint(&r);
            const unsigned char *v = r_bytes(&r, n);
            if (n >= LONG_VALUE) { /* in the block's table of long values, once */
                b_varint(raw, (uint64_t)hm_id(&e->longs, v, n, NULL) + 1);
                continue;
            }
            b_varint(raw, 0);
            b_str(raw, v, n);
        }
        return C_REFS;
    }
    struct hmap d = {0};
    struct rd r = {c->sv.p, c->sv.len, 0, false};
    uint32_t *code = fr_malloc((c->n + 1) * sizeof *code);
    for (size_t i = 0; i < c->n; i++) {
        size_t n = r_varint(&r);
        code[i] = hm_id(&d, r_bytes(&r, n), n, NULL);
    }
    int codec;
    if (d.n * 4 <= c->n || d.n <= 1) {
        codec = C_DICT;
        b_varint(raw, d.n);
        for (size_t i = 0; i < d.n; i++)
            b_str(raw, d.keys.p + d.off[i], d.len[i]);
        b_varint(raw, c->n);
        for (size_t i = 0; i < c->n; i++)
            b_varint(raw, code[i]);
    } else {
        codec = C_PLAIN;
        b_varint(raw, c->n);
        b_put(raw, c->sv.p, c->sv.len);
    }
    free(code);
    hm_free(&d);
    return codec;
}

/* One stream: its header and raw compressed, through z (a scratch buffer kept between calls). */
static void
enc_stream(struct bytes *out, int codec, const void *name, size_t nlen, const struct bytes *raw,
           int level, ZSTD_CCtx *cctx, struct bytes *z, struct fr_col_stats *stats)
{
    size_t at = out->len;
    size_t cap = ZSTD_compressBound(raw->len);
    if (z->cap < cap) {
        z->cap = cap;
        z->p = fr_realloc(z->p, cap);
    }
    size_t zn = ZSTD_compressCCtx(cctx, z->p, cap, raw->p, raw->len, level);
    b_byte(out, (unsigned char)codec);
    b_str(out, name, nlen);
    b_varint(out, raw->len);
    if (ZSTD_isError(zn))
        zn = 0; /* cannot happen with a bound-sized buffer; an empty stream then fails to read */
    b_str(out, z->p, zn);
    if (stats != NULL && codec > 0 && codec < FR_COL_CODECS) {
        stats->raw[codec] += raw->len;
        stats->packed[codec] += out->len - at;
    }
}

const char *
fr_col_codec_name(int codec)
{
    static const char *const names[FR_COL_CODECS] = {
        [C_SHAPES] = "record shapes", [C_IDS] = "shape ids",     [C_INT] = "integers",
        [C_PLAIN] = "plain strings",  [C_DICT] = "dictionary",   [C_TEXT] = "word tokens",
        [C_REFS] = "free text",       [C_LONGS] = "long values", [C_HEX] = "hex ids",
        [C_IDFORM] = "formed ids"};
    return codec > 0 && codec < FR_COL_CODECS && names[codec] ? names[codec] : "?";
}

int
fr_col_encode(const char *const *rec, const size_t *len, size_t n, int level, unsigned char **out,
              size_t *outlen, struct fr_col_stats *stats, struct fr_err *err)
{
    struct enc e = {0};
    int rc = FR_OK;
    struct scan sc = {.e = &e};
    for (size_t i = 0; i < n && rc == FR_OK; i++) {
        if (enc_record(&e, &sc, rec[i], len[i]))
            continue;
        /* not jansson's compact form: normalized by jansson, then scanned */
        json_t *o = json_loadb(rec[i], len[i], JSON_ALLOW_NUL, NULL);
        char *t = json_is_object(o) ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (t == NULL || !enc_record(&e, &sc, t, strlen(t)))
            rc = fr_err_set(err, FR_E_SYNTAX, "columnar block: record %zu is not a JSON object",
                            i + 1);
        free(t);
    }
    free(sc.v);
    for (size_t i = 0; sc.elem != NULL && i < MAX_DEPTH + 2; i++)
        free(sc.elem[i].p);
    free(sc.elem);
    struct bytes o = {0}, cols = {0}, raw = {0}, zbuf = {0};
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (rc == FR_OK) {
        /* the columns first (they fill the table of long values), written after it */
        for (size_t i = 0; i < e.ncols; i++) {
            struct col *c = &e.cols[i];
            raw.len = 0;
            int codec = C_INT;
            if (c->kind == T_INT) {
                b_varint(&raw, c->n);
                uint64_t prev = 0;
                for (size_t k = 0; k < c->n; k++) {
                    uint64_t v = (uint64_t)c->iv[k], d = v - prev;
                    /* zigzag of the difference as a signed number */
                    b_varint(&raw, (d << 1) ^ (uint64_t)((int64_t)d >> 63));
                    prev = v;
                }
            } else {
                codec = enc_strings(&e, c, &raw);
            }
            enc_stream(&cols, codec, c->name.p, c->name.len, &raw, level, cctx, &zbuf, stats);
        }
        b_put(&o, COL_MAGIC, 4);
        b_varint(&o, n);
        b_varint(&o, FIXED_STREAMS + e.ncols);
        raw.len = 0;
        b_varint(&raw, e.shapes.n);
        for (size_t i = 0; i < e.shapes.n; i++)
            b_str(&raw, e.shapes.keys.p + e.shapes.off[i], e.shapes.len[i]);
        enc_stream(&o, C_SHAPES, "", 0, &raw, level, cctx, &zbuf, stats);
        enc_stream(&o, C_IDS, "", 0, &e.ids, level, cctx, &zbuf, stats);
        raw.len = 0;
        b_varint(&raw, e.longs.n);
        for (size_t i = 0; i < e.longs.n; i++)
            b_str(&raw, e.longs.keys.p + e.longs.off[i], e.longs.len[i]);
        /* the block's long free text, most of its bytes when its text is varied: two levels
           more save ~5% of them for 5-7% of the writer's time (bench/segment.sh, --hard) */
        enc_stream(&o, C_LONGS, "", 0, &raw, level + LONGS_LEVEL, cctx, &zbuf, stats);
        b_put(&o, cols.p, cols.len);
    }
    free(cols.p);
    hm_free(&e.longs);
    ZSTD_freeCCtx(cctx);
    free(raw.p);
    free(zbuf.p);
    for (size_t i = 0; i < e.ncols; i++) {
        free(e.cols[i].name.p);
        free(e.cols[i].iv);
        free(e.cols[i].sv.p);
    }
    free(e.cols);
    hm_free(&e.colmap);
    hm_free(&e.shapes);
    free(e.ids.p);
    free(e.shape.p);
    free(e.path.p);
    if (rc != FR_OK) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *outlen = o.len;
    return FR_OK;
}

/* ---- decoding ---- */

/* A column being read: its values as (pointer, length) or integers, and the next one. */
struct dcol {
    int codec;
    int kind;
    unsigned char *raw; /* the decompressed stream (owned) */
    size_t n, next;
    int64_t *iv;
    const unsigned char **sp;
    size_t *sl;
    struct bytes text; /* C_TEXT: the values rebuilt */
};

static int
dec_bad(struct fr_err *err, const char *why)
{
    return fr_err_set(err, FR_E_VALUE, "columnar block: %s", why);
}

/* An id column's values (enc_ids; form: codec 10) spelled out again in c->text. */
static int
dec_ids(struct dcol *c, struct rd *r, size_t max, bool has_form, struct fr_err *err)
{
    const unsigned char *form = NULL;
    size_t flen = 0, digits = 0;
    if (has_form) {
        flen = r_varint(r);
        form = flen >= 1 && flen <= FORM_MAX ? r_bytes(r, flen) : NULL;
        if (form == NULL)
            return dec_bad(err, "an id column's form is out of range");
        for (size_t k = 0; k < flen; k++)
            digits += form[k] == 0;
    }
    c->n = r_varint(r);
    if (c->n > r->len)
        return dec_bad(err, "a column claims more values than it holds");
    uint64_t *ref = fr_malloc((c->n + 1) * sizeof *ref);
    size_t nnew = 0;
    for (size_t i = 0; i < c->n; i++)
        nnew += (ref[i] = r_varint(r)) == 0;
    size_t *off = fr_malloc((nnew + 1) * sizeof *off), *len = fr_malloc((nnew + 1) * sizeof *len);
    size_t total = 0; /* bytes of digits */
    for (size_t k = 0; k < nnew && !r->bad; k++) {
        len[k] = has_form ? (digits + 1) / 2 : r_varint(r);
        total += len[k] < max ? len[k] : max;
    }
    const unsigned char *bin = r_bytes(r, total);
    int rc = FR_OK;
    if (r->bad || bin == NULL)
        rc = dec_bad(err, "an id column is cut short");
    else if ((has_form ? nnew * flen : 2 * total) > max)
        rc = dec_bad(err, "an id column decodes to more than a block may");
    static const char hexd[] = "0123456789abcdef";
    for (size_t k = 0, nib = 0; rc == FR_OK && k < nnew; k++) {
        off[k] = c->text.len;
        size_t n = has_form ? flen : 2 * len[k];
        for (size_t j = 0; j < n; j++) {
            if (form != NULL && form[j] != 0) {
                b_byte(&c->text, form[j]);
                continue;
            }
            unsigned char byte = bin[nib / 2];
            b_byte(&c->text, (unsigned char)hexd[nib % 2 ? byte & 15 : byte >> 4]);
            nib++;
        }
        nib += nib % 2; /* a value's digits start on a byte */
        len[k] = n;
    }
    c->sp = fr_malloc((c->n + 1) * sizeof *c->sp);
    c->sl = fr_malloc((c->n + 1) * sizeof *c->sl);
    for (size_t i = 0, seen = 0; rc == FR_OK && i < c->n; i++) {
        if (ref[i] > seen) {
            rc = dec_bad(err, "an id refers to none before it");
            break;
        }
        size_t k = ref[i] == 0 ? seen++ : seen - ref[i];
        c->sp[i] = c->text.p + off[k];
        c->sl[i] = len[k];
    }
    free(ref);
    free(off);
    free(len);
    return rc;
}

/* Values of a string column: (pointer, length) pairs into raw or text. */
static int
dec_strings(struct dcol *c, struct rd *r, size_t max, const struct dcol *longs, struct fr_err *err)
{
    if (c->codec == C_HEX || c->codec == C_IDFORM)
        return dec_ids(c, r, max, c->codec == C_IDFORM, err);
    if (c->codec == C_PLAIN) {
        c->n = r_varint(r);
        if (c->n > r->len)
            return dec_bad(err, "a column claims more values than it holds");
        c->sp = fr_malloc((c->n + 1) * sizeof *c->sp);
        c->sl = fr_malloc((c->n + 1) * sizeof *c->sl);
        for (size_t i = 0; i < c->n && !r->bad; i++) {
            c->sl[i] = r_varint(r);
            c->sp[i] = r_bytes(r, c->sl[i]);
        }
        return r->bad ? dec_bad(err, "a string column is cut short") : FR_OK;
    }
    if (c->codec == C_REFS) {
        c->n = r_varint(r);
        if (c->n > r->len)
            return dec_bad(err, "a column claims more values than it holds");
        c->sp = fr_malloc((c->n + 1) * sizeof *c->sp);
        c->sl = fr_malloc((c->n + 1) * sizeof *c->sl);
        int rc = FR_OK;
        for (size_t i = 0; i < c->n && rc == FR_OK; i++) {
            uint64_t ref = r_varint(r);
            if (ref > longs->n) {
                rc = dec_bad(err, "a value refers past the block's long values");
            } else if (ref > 0) {
                c->sp[i] = longs->sp[ref - 1];
                c->sl[i] = longs->sl[ref - 1];
            } else {
                c->sl[i] = r_varint(r);
                c->sp[i] = r_bytes(r, c->sl[i]);
                if (r->bad)
                    rc = dec_bad(err, "a string column is cut short");
            }
        }
        return rc;
    }
    size_t nd = r_varint(r);
    if (nd > r->len)
        return dec_bad(err, "a dictionary claims more entries than it holds");
    const unsigned char **dp = fr_malloc((nd + 1) * sizeof *dp);
    size_t *dl = fr_malloc((nd + 1) * sizeof *dl);
    for (size_t i = 0; i < nd && !r->bad; i++) {
        dl[i] = r_varint(r);
        dp[i] = r_bytes(r, dl[i]);
    }
    c->n = r_varint(r);
    int rc = FR_OK;
    if (r->bad || c->n > r->len) {
        rc = dec_bad(err, "a dictionary column is cut short");
        c->n = 0;
    }
    c->sp = fr_malloc((c->n + 1) * sizeof *c->sp);
    c->sl = fr_malloc((c->n + 1) * sizeof *c->sl);
    size_t *toff = c->codec == C_TEXT ? fr_malloc((c->n + 1) * sizeof *toff) : NULL;
    size_t nlong = 0, *tlong = c->codec == C_TEXT ? fr_malloc((c->n + 1) * sizeof *tlong) : NULL;
    for (size_t i = 0; i < c->n && rc == FR_OK; i++) {
        if (c->codec == C_DICT) {
            uint64_t k = r_varint(r);
            if (r->bad || k >= nd) {
                rc = dec_bad(err, "a dictionary code is out of range");
                break;
            }
            c->sp[i] = dp[k];
            c->sl[i] = dl[k];
            continue;
        }
        uint64_t ref = r_varint(r);
        if (ref > 0) {
            if (ref > nlong) {
                rc = dec_bad(err, "a repeated value refers to none before it");
                break;
            }
            toff[i] = toff[tlong[ref - 1]];
            c->sl[i] = c->sl[tlong[ref - 1]];
            continue;
        }
        uint64_t nt = r_varint(r);
        if (nt > r->len) {
            rc = dec_bad(err, "a text value claims more tokens than the column holds");
            break;
        }
        toff[i] = c->text.len;
        for (uint64_t t = 0; t < nt; t++) {
            uint64_t k = r_varint(r);
            if (r->bad || k >= nd) {
                rc = dec_bad(err, "a token id is out of range");
                break;
            }
            b_put(&c->text, dp[k], dl[k]);
            if (c->text.len > max) {
                rc = dec_bad(err, "a text column decodes to more than a block may");
                break;
            }
        }
        c->sl[i] = c->text.len - toff[i];
        if (c->sl[i] >= LONG_VALUE)
            tlong[nlong++] = i;
    }
    if (rc == FR_OK && r->bad)
        rc = dec_bad(err, "a column is cut short");
    for (size_t i = 0; c->codec == C_TEXT && rc == FR_OK && i < c->n; i++)
        c->sp[i] = c->text.p + toff[i]; /* text no longer moves */
    free(toff);
    free(tlong);
    free(dp);
    free(dl);
    return rc;
}

/* A string as it stood between its quotes (escapes kept). */
static void
put_quoted(struct bytes *o, const unsigned char *s, size_t n)
{
    b_byte(o, '"');
    b_put(o, s, n);
    b_byte(o, '"');
}

/*
 * A record shape's program: the columns its records read, in order, when it
 * holds no array (what a record of it reads then follows from the shape
 * alone). Made by the first record of the shape, it spares the others a
 * look-up by path per value, and lets a record that is not wanted be passed
 * over by moving its columns on.
 */
struct prog {
    uint32_t *col;
    size_t n, cap;
    int state;  /* 0 not made yet, 1 made, 2 the shape holds an array: none */
    int wanted; /* values the shape takes from the column of fr_col_where: -1 not counted yet */
};

struct dec {
    struct hmap colmap; /* name -> index */
    struct dcol *cols;
    size_t ncols;
    struct bytes path;
    const struct dcol *shapes;
    int depth;
    struct fr_err *err;
    const struct prog *run; /* the record's program, followed instead of looking columns up */
    size_t ran;             /* the next step of run */
    struct prog *making;    /* the program being made by this record's walk */
    bool array;             /* this record's walk met an array */
};

/* The column of the current path and kind, with a value left; NULL (err set) when none. */
static struct dcol *
dec_col(struct dec *d, int kind)
{
    int64_t ci;
    if (d->run != NULL) {
        ci = d->ran < d->run->n ? (int64_t)d->run->col[d->ran++] : -1;
    } else {
        b_byte(&d->path, (unsigned char)kind);
        ci = hm_find(&d->colmap, d->path.p, d->path.len);
        d->path.len--;
    }
    struct dcol *c = ci >= 0 ? &d->cols[ci] : NULL;
    if (c == NULL || c->kind != kind || c->next >= c->n) {
        dec_bad(d->err, c == NULL ? "a shape names a column the block lacks"
                                  : "a column runs short of its records");
        return NULL;
    }
    if (d->making != NULL) {
        struct prog *m = d->making;
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->col = fr_realloc(m->col, m->cap * sizeof *m->col);
        }
        m->col[m->n++] = (uint32_t)ci;
    }
    return c;
}

/* The next integer of the array column path + 0x1e + what; -1 (err set) when none. */
static int64_t
dec_array_int(struct dec *d, char what)
{
    size_t plen = d->path.len;
    b_byte(&d->path, 0x1e);
    b_byte(&d->path, (unsigned char)what);
    struct dcol *c = dec_col(d, T_INT);
    d->path.len = plen;
    if (c == NULL)
        return -1;
    int64_t v = c->iv[c->next++];
    if (v < 0) {
        dec_bad(d->err, "an array's length or element shape is negative");
        return -1;
    }
    return v;
}

static int dec_value(struct dec *d, struct rd *sh, int tag, struct bytes *o);

/* An object's members from the shape (root: a record's, to the shape's end), then '}'. */
static int
dec_members(struct dec *d, struct rd *sh, bool root, struct bytes *o)
{
    if (o != NULL)
        b_byte(o, '{');
    for (bool first = true;; first = false) {
        if (sh->at >= sh->len) {
            if (root)
                break;
            return dec_bad(d->err, "a shape leaves an object open");
        }
        unsigned char tag = sh->p[sh->at++];
        if (tag == T_END) {
            if (root)
                return dec_bad(d->err, "a shape closes more objects than it opens");
            break;
        }
        size_t klen = r_varint(sh);
        const unsigned char *key = r_bytes(sh, klen);
        if (sh->bad)
            return dec_bad(d->err, "a shape is cut short");
        if (o != NULL) {
            if (!first)
                b_byte(o, ',');
            put_quoted(o, key, klen);
            b_byte(o, ':');
        }
        size_t plen = d->path.len;
        if (d->run == NULL) { /* a program knows the columns without their paths */
            if (plen)
                b_byte(&d->path, 0x1f);
            b_put(&d->path, key, klen);
        }
        int rc = dec_value(d, sh, tag, o);
        d->path.len = plen;
        if (rc != FR_OK)
            return rc;
    }
    if (o != NULL)
        b_byte(o, '}');
    return FR_OK;
}

/* One value of the kind tag names, at the current path. */
static int
dec_value(struct dec *d, struct rd *sh, int tag, struct bytes *o)
{
    if (tag == T_OBJ || tag == T_ARR) {
        if (d->depth >= MAX_DEPTH)
            return dec_bad(d->err, "a shape nests deeper than a writer does");
        d->depth++;
        int rc = FR_OK;
        if (tag == T_OBJ) {
            rc = dec_members(d, sh, false, o);
        } else {
            d->array = true;
            int64_t n = d->run != NULL ? -1 : dec_array_int(d, 'n');
            if (d->run != NULL) /* a program is made only of shapes without arrays */
                dec_bad(d->err, "a shape with an array ran as a program");
            rc = n < 0 ? FR_E_VALUE : FR_OK;
            if (o != NULL)
                b_byte(o, '[');
            size_t plen = d->path.len;
            for (int64_t i = 0; rc == FR_OK && i < n; i++) {
                int64_t id = dec_array_int(d, 'e');
                if (id < 0 || (uint64_t)id >= d->shapes->n) {
                    rc = id < 0 ? FR_E_VALUE
                                : dec_bad(d->err, "an element's shape id is out of range");
                    break;
                }
                struct rd er = {d->shapes->sp[id], d->shapes->sl[id], 0, false};
                if (er.len == 0) {
                    rc = dec_bad(d->err, "an element's shape is empty");
                    break;
                }
                if (i > 0 && o != NULL)
                    b_byte(o, ',');
                b_byte(&d->path, 0x1e);
                rc = dec_value(d, &er, er.p[er.at++], o);
                d->path.len = plen;
                if (rc == FR_OK && er.at != er.len)
                    rc = dec_bad(d->err, "an element's shape has bytes left over");
            }
            if (o != NULL)
                b_byte(o, ']');
        }
        d->depth--;
        return rc;
    }
    if (tag == T_TRUE || tag == T_FALSE || tag == T_NULL) {
        const char *lit = tag == T_TRUE ? "true" : tag == T_FALSE ? "false" : "null";
        if (o != NULL)
            b_put(o, lit, strlen(lit));
        return FR_OK;
    }
    if (tag != T_INT && tag != T_STR && tag != T_JSON)
        return dec_bad(d->err, "a shape holds an unknown tag");
    struct dcol *c = dec_col(d, tag);
    if (c == NULL)
        return FR_E_VALUE;
    size_t k = c->next++;
    if (o == NULL) {
        /* passed over */
    } else if (tag == T_INT) {
        char num[24];
        int nn = snprintf(num, sizeof num, "%lld", (long long)c->iv[k]);
        b_put(o, num, (size_t)nn);
    } else if (tag == T_STR) {
        put_quoted(o, c->sp[k], c->sl[k]);
    } else {
        b_put(o, c->sp[k], c->sl[k]);
    }
    return FR_OK;
}

/*
 * Writes one record from its shape (o NULL: reads past it), following the
 * shape's program when it has one and making it at the shape's first record;
 * FR_OK or why not.
 */
static int
dec_record(struct dec *d, const unsigned char *shape, size_t slen, struct prog *pg, struct bytes *o)
{
    if (pg->state == 1 && o == NULL) { /* passed over: its columns move on */
        for (size_t i = 0; i < pg->n; i++) {
            struct dcol *c = &d->cols[pg->col[i]];
            if (c->next >= c->n)
                return dec_bad(d->err, "a column runs short of its records");
            c->next++;
        }
        return FR_OK;
    }
    struct rd r = {shape, slen, 0, false};
    d->path.len = 0;
    d->depth = 0;
    d->array = false;
    d->run = pg->state == 1 ? pg : NULL;
    d->ran = 0;
    d->making = pg->state == 0 ? pg : NULL;
    int rc = dec_members(d, &r, true, o);
    if (rc == FR_OK && d->run != NULL && d->ran != pg->n)
        rc = dec_bad(d->err, "a record read fewer values than its shape's program");
    if (rc == FR_OK && pg->state == 0)
        pg->state = d->array ? 2 : 1;
    if (pg->state != 1) { /* made only by a whole walk of a shape without arrays */
        pg->n = 0;
        if (rc != FR_OK)
            pg->state = 0;
    }
    d->run = NULL;
    d->making = NULL;
    return rc;
}

/*
 * How many values a record of this shape takes from the column named
 * `name` (a path and its type byte): its members' paths followed through
 * the shape's objects (arrays hold none of their own: their elements' paths
 * carry 0x1e, which `name` does not); -1 when the shape is not well formed.
 */
static int
shape_takes(const unsigned char *shape, size_t slen, const unsigned char *name, size_t nlen,
            struct bytes *path)
{
    struct rd r = {shape, slen, 0, false};
    size_t stack[MAX_DEPTH];
    int depth = 0, n = 0;
    path->len = 0;
    while (r.at < r.len) {
        unsigned char tag = r.p[r.at++];
        if (tag == T_END) {
            if (depth == 0)
                return -1;
            path->len = stack[--depth];
            continue;
        }
        size_t klen = r_varint(&r);
        const unsigned char *key = r_bytes(&r, klen);
        if (r.bad)
            return -1;
        size_t plen = path->len;
        if (plen)
            b_byte(path, 0x1f);
        b_put(path, key, klen);
        if (tag == T_OBJ) {
            if (depth == MAX_DEPTH)
                return -1;
            stack[depth++] = plen;
            continue;
        }
        b_byte(path, tag);
        if (path->len == nlen && memcmp(path->p, name, nlen) == 0)
            n++;
        path->len = plen;
    }
    return depth == 0 ? n : -1;
}

static void
dcol_free(struct dcol *c)
{
    free(c->raw);
    free(c->iv);
    free(c->sp);
    free(c->sl);
    free(c->text.p);
}

int
fr_col_decode(const unsigned char *in, size_t n, size_t max, char **out, size_t *outlen,
              struct fr_err *err)
{
    return fr_col_decode_where(in, n, max, NULL, out, outlen, err);
}

/* Whether a string as it stands between its quotes may be the one where looks for (one with an
   escape is read out and left to the caller, who reads it unescaped). */
static bool
where_may_be(const struct fr_col_where *w, const unsigned char *v, size_t len)
{
    return (len == w->value_len && memcmp(v, w->value, len) == 0) || memchr(v, '\\', len) != NULL;
}

int
fr_col_decode_where(const unsigned char *in, size_t n, size_t max, const struct fr_col_where *where,
                    char **out, size_t *outlen, struct fr_err *err)
{
    struct rd r = {in, n, 0, false};
    const unsigned char *magic = r_bytes(&r, 4);
    if (magic == NULL || memcmp(magic, COL_MAGIC, 4) != 0)
        return dec_bad(err, "no FRC1 mark: not a columnar block");
    size_t nrec = r_varint(&r), nstreams = r_varint(&r);
    if (r.bad || nstreams < FIXED_STREAMS || nstreams > n || nrec > max)
        return dec_bad(err, "its counts are out of range");
    struct dec d = {0};
    d.cols = fr_calloc(nstreams, sizeof *d.cols);
    d.ncols = nstreams;
    int rc = FR_OK;
    size_t budget = max; /* decompressed bytes allowed in all */
    for (size_t i = 0; i < nstreams && rc == FR_OK; i++) {
        struct dcol *c = &d.cols[i];
        c->codec = r.at < r.len ? r.p[r.at++] : 0;
        size_t nlen = r_varint(&r);
        const unsigned char *name = r_bytes(&r, nlen);
        size_t rawlen = r_varint(&r), zlen = r_varint(&r);
        const unsigned char *z = r_bytes(&r, zlen);
        if (r.bad || c->codec < C_SHAPES || c->codec > C_IDFORM || rawlen > budget) {
            rc = dec_bad(err, "a stream header is cut short or out of range");
            break;
        }
        bool fixed = c->codec == C_SHAPES || c->codec == C_IDS || c->codec == C_LONGS;
        if ((i < FIXED_STREAMS) != fixed ||
            (i < FIXED_STREAMS && c->codec != (i == 2 ? C_LONGS : (int)i + C_SHAPES))) {
            rc = dec_bad(err, "its streams are out of order");
            break;
        }
        budget -= rawlen;
        c->raw = fr_malloc(rawlen + 1);
        size_t got = ZSTD_decompress(c->raw, rawlen, z, zlen);
        if (ZSTD_isError(got) || got != rawlen) {
            rc = dec_bad(err, "a stream does not decompress");
            break;
        }
        if (i >= FIXED_STREAMS) {
            if (nlen == 0) {
                rc = dec_bad(err, "a column has no name");
                break;
            }
            c->kind = name[nlen - 1];
            bool created;
            hm_id(&d.colmap, name, nlen, &created);
            if (!created) {
                rc = dec_bad(err, "two columns share a name");
                break;
            }
        }
        struct rd cr = {c->raw, rawlen, 0, false};
        if (c->codec == C_SHAPES || c->codec == C_LONGS) {
            c->codec = C_PLAIN; /* a list of strings, read as one */
            rc = dec_strings(c, &cr, budget, &d.cols[2], err);
        } else if (c->codec == C_IDS) {
            if (nrec > rawlen) {
                rc = dec_bad(err, "fewer shape ids than records");
                break;
            }
            c->iv = fr_malloc((nrec + 1) * sizeof *c->iv);
            for (size_t k = 0; k < nrec; k++)
                c->iv[k] = (int64_t)r_varint(&cr);
            c->n = nrec;
            if (cr.bad)
                rc = dec_bad(err, "the shape ids are cut short");
        } else if (c->codec == C_INT) {
            c->n = r_varint(&cr);
            if (c->n > rawlen || c->kind != T_INT) {
                rc = dec_bad(err, "an integer column is out of range");
                break;
            }
            c->iv = fr_malloc((c->n + 1) * sizeof *c->iv);
            uint64_t prev = 0;
            for (size_t k = 0; k < c->n; k++) {
                uint64_t z = r_varint(&cr), dlt = (z >> 1) ^ (0 - (z & 1));
                prev += dlt;
                c->iv[k] = (int64_t)prev;
            }
            if (cr.bad)
                rc = dec_bad(err, "an integer column is cut short");
        } else {
            if ((c->kind != T_STR && c->kind != T_JSON) ||
                (c->codec >= C_HEX && c->kind != T_STR)) {
                rc = dec_bad(err, "a string column has another type");
                break;
            }
            rc = dec_strings(c, &cr, budget, &d.cols[2], err);
            if (rc == FR_OK && c->text.len > budget)
                rc = dec_bad(err, "it decodes to more than a block may");
            else if (rc == FR_OK)
                budget -= c->text.len;
        }
    }
    /* the columns' index in colmap is their stream number minus the fixed ones */
    struct dcol *shapes = &d.cols[0], *ids = &d.cols[1];
    struct dec dd = {.colmap = d.colmap,
                     .cols = d.cols + FIXED_STREAMS,
                     .ncols = nstreams - FIXED_STREAMS,
                     .shapes = shapes,
                     .err = err};
    struct bytes o = {0};
    struct prog *progs = rc == FR_OK ? fr_calloc(shapes->n + 1, sizeof *progs) : NULL;
    for (size_t i = 0; progs != NULL && i < shapes->n; i++)
        progs[i].wanted = -1;
    /* the column where names: its path and the string type byte */
    struct dcol *wcol = NULL;
    struct bytes wname = {0}, scratch = {0};
    if (rc == FR_OK && where != NULL) {
        b_put(&wname, where->path, strlen(where->path));
        b_byte(&wname, T_STR);
        int64_t wi = hm_find(&d.colmap, wname.p, wname.len);
        wcol = wi >= 0 ? &dd.cols[wi] : NULL;
    }
    for (size_t i = 0; rc == FR_OK && i < nrec; i++) {
        uint64_t s = (uint64_t)ids->iv[i];
        if (s >= shapes->n) {
            rc = dec_bad(err, "a record's shape id is out of range");
            break;
        }
        struct prog *pg = &progs[s];
        bool want = true;
        if (where != NULL) {
            if (pg->wanted < 0)
                pg->wanted =
                    shape_takes(shapes->sp[s], shapes->sl[s], wname.p, wname.len, &scratch);
            if (pg->wanted < 0) {
                rc = dec_bad(err, "a record's shape is not well formed");
                break;
            }
            want = false;
            for (size_t k = 0; wcol != NULL && k < (size_t)pg->wanted; k++) {
                size_t at = wcol->next + k;
                if (at >= wcol->n) {
                    rc = dec_bad(err, "a column runs short of its records");
                    break;
                }
                want = want || where_may_be(where, wcol->sp[at], wcol->sl[at]);
            }
            if (rc != FR_OK)
                break;
        }
        rc = dec_record(&dd, shapes->sp[s], shapes->sl[s], pg, want ? &o : NULL);
        if (want)
            b_byte(&o, '\n');
        if (o.len > max)
            rc = dec_bad(err, "it decodes to more than a block may");
    }
    for (size_t i = 0; progs != NULL && i < shapes->n; i++)
        free(progs[i].col);
    free(progs);
    free(wname.p);
    free(scratch.p);
    for (size_t i = FIXED_STREAMS; rc == FR_OK && i < nstreams; i++)
        if (d.cols[i].next != d.cols[i].n)
            rc = dec_bad(err, "a column holds more values than its records use");
    free(dd.path.p);
    for (size_t i = 0; i < nstreams; i++)
        dcol_free(&d.cols[i]);
    free(d.cols);
    hm_free(&d.colmap);
    if (rc != FR_OK) {
        free(o.p);
        return rc;
    }
    b_byte(&o, '\0');
    *out = (char *)o.p;
    *outlen = o.len - 1;
    return FR_OK;
}
