/*
 * retention/hot/sqlite_body.c - stored bodies compressed with zstd and a
 * dictionary trained from the store's own events.
 *
 * An event's body (its redacted envelope, ~0.5 kB of JSON) was half of what
 * the hot store held per event. Alone, an envelope that small hardly
 * compresses; against a dictionary that knows its keys, the kinds' shapes and
 * the words that recur across conversations, it shrinks 2.5-4.5x (figures in
 * docs/storage.md, "Compressed bodies"). So once a store has taken in
 * SQ_BODY_TRAIN_BYTES of bodies as text, its writer trains a dictionary from
 * them (zstd's fastCover trainer, with a small table), keeps it in `body_dicts`, and from then on
 * stores each body as a zstd frame that names that dictionary in its header; bodies that would not
 * shrink stay text. A new dictionary is trained after every SQ_BODY_RETRAIN_BYTES compressed with
 * the current one, so that a store follows its traffic; older ones stay for the rows that use them.
 *
 * The samples are the newest few events of each conversation and kind among
 * the recent ones, so that what a dictionary holds is mostly what many
 * conversations share (keys, field values, common phrases); and they are
 * bodies as stored, i.e. after redaction. A dictionary is still made of its
 * samples' bytes, so it lists the conversations it sampled, and an erasure
 * retires every dictionary that sampled the conversation or holds the erased
 * token (sq_body_forget).
 *
 * Compressing is a sixth of the writer's work per event, and the writer is the
 * one thread every event goes through; so producers compress their records
 * before they queue them (sq_body_pack, the store's pack op), each with a
 * context of a small pool, against the current dictionary, which they share
 * with the writer (counted references: a training replaces it while they
 * use it). The writer keeps what they made when it names the dictionary
 * still current, and compresses the others itself.
 *
 * Every connection of the store reads bodies through the SQL function
 * fr_body(body) (text as it is, a frame decompressed); the writer also has
 * fr_zbody(text), which compresses with its current dictionary (the rewrites
 * of a stored body: a trace's events moved, log-event parts merged).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define ZDICT_STATIC_LINKING_ONLY /* ZDICT_optimizeTrainFromBuffer_fastCover's parameters */
#include <zdict.h>
#include <zstd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "core/timeutil.h"
#include "retention/hot/sqlite_body.h"
#include "retention/hot/sqlite_int.h"

#define SQ_BODY_LEVEL 1
#define SQ_BODY_MIN 64                               /* shorter bodies stay text */
#define SQ_BODY_DICT (64 * 1024)                     /* dictionary capacity */
#define SQ_BODY_SAMPLE_MAX 16384                     /* longer bodies are not sampled */
#define SQ_BODY_SAMPLES_MIN 100                      /* fewer: training waits for more traffic */
#define SQ_BODY_SAMPLES_BYTES_MIN (2 * SQ_BODY_DICT) /* and less */
#define SQ_BODY_SAMPLE_BYTES (1024 * 1024)
#define SQ_BODY_WINDOW 100000             /* the newest rows the samples are drawn from */
#define SQ_BODY_PER_GROUP 4               /* the most samples of one conversation and kind */
#define SQ_BODY_PER_GROUP_FEW 256         /* ... when that many are too few (a few conversations) */
#define SQ_BODY_TRAIN_BYTES (1024 * 1024) /* text bodies before the first training */
#define SQ_BODY_RETRAIN_BYTES (256LL * 1024 * 1024) /* compressed ones before the next */
/* log2 of the trainer's frequency table: zstd's default (20) allocates 6 MiB that the
   writer's heap kept after the training (+5 MiB resident for the agent's life); 16 takes
   384 KiB and trains dictionaries that compress these bodies as well (docs/storage.md) */
#define SQ_BODY_TRAIN_FLOG 16

/* A dictionary's decoder, loaded on first use. */
struct sq_ddict {
    unsigned id;
    ZSTD_DDict *dd;
};

/* What fr_body needs on one connection; freed with the connection (xDestroy). */
struct sq_unpack {
    sqlite3 *db;
    ZSTD_DCtx *dctx;
    struct sq_ddict *dicts;
    size_t n;
};

/* A dictionary's encoder, shared by the writer and the producers packing records. */
struct sq_cdict {
    ZSTD_CDict *cd;
    unsigned id;
    unsigned refs; /* under sq_body.mu */
};

#define SQ_PACK_CTX_MAX 16 /* the most producers packing at once; more: the writer packs */

/* The writer's side. */
struct sq_body {
    ZSTD_CCtx *cctx;
    struct sq_cdict *cur; /* NULL until a dictionary exists; changed by the writer under mu */
    pthread_mutex_t mu;   /* cur's changes, refs and the pool */
    ZSTD_CCtx *idle[SQ_PACK_CTX_MAX]; /* the producers' contexts not in use */
    size_t nidle, made, max;          /* made: contexts that exist; max: the most */
    sqlite3_stmt *check;              /* sq_body_begin's */
    char *buf;                        /* the latest compressed body */
    size_t cap;
    int64_t train_bytes;  /* body bytes that make the next training due */
    int64_t plain_bytes;  /* stored as text since the last training (attempt) */
    int64_t packed_bytes; /* compressed with the current dictionary */
    bool failed_said;
    bool background;         /* trainings on a thread of their own (struct body_trainer) */
    struct body_trainer *tr; /* the one running; NULL when none */
};

static bool trainer_finish(struct sq_store *s, bool keep);

static ZSTD_DDict *
unpack_dict(struct sq_unpack *u, unsigned id)
{
    for (size_t i = 0; i < u->n; i++)
        if (u->dicts[i].id == id)
            return u->dicts[i].dd;
    sqlite3_stmt *st;
    ZSTD_DDict *dd = NULL;
    if (sqlite3_prepare_v2(u->db, "SELECT dict FROM body_dicts WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        dd = ZSTD_createDDict(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    if (dd != NULL) {
        u->dicts = fr_realloc(u->dicts, (u->n + 1) * sizeof *u->dicts);
        u->dicts[u->n++] = (struct sq_ddict){id, dd};
    }
    return dd;
}

/* fr_body(body): a text body as it is; a compressed one decompressed to text. */
static void
fn_body(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    struct sq_unpack *u = sqlite3_user_data(ctx);
    const void *src = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    unsigned long long size = ZSTD_getFrameContentSize(src, n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > INT32_MAX) {
        sqlite3_result_error(ctx, "stored body is neither text nor a zstd frame", -1);
        return;
    }
    unsigned id = ZSTD_getDictID_fromFrame(src, n);
    ZSTD_DDict *dd = id != 0 ? unpack_dict(u, id) : NULL;
    if (id != 0 && dd == NULL) {
        char *msg = fr_asprintf("stored body needs dictionary %u, which body_dicts lacks", id);
        sqlite3_result_error(ctx, msg, -1);
        free(msg);
        return;
    }
    char *out = sqlite3_malloc64(size + 1);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t got = dd ? ZSTD_decompress_usingDDict(u->dctx, out, size, src, n, dd)
                    : ZSTD_decompressDCtx(u->dctx, out, size, src, n);
    if (ZSTD_isError(got) || got != size) {
        sqlite3_free(out);
        char *msg = fr_asprintf("stored body does not decompress: %s",
                                ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
        sqlite3_result_error(ctx, msg, -1);
        free(msg);
        return;
    }
    out[got] = '\0';
    sqlite3_result_text64(ctx, out, got, sqlite3_free, SQLITE_UTF8);
}

/* fr_body_dict(body): the id of the dictionary a compressed body names; NULL for text. */
static void
fn_body_dict(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_result_int64(ctx, ZSTD_getDictID_fromFrame(sqlite3_value_blob(argv[0]),
                                                       (size_t)sqlite3_value_bytes(argv[0])));
}

static void
unpack_free(void *p)
{
    struct sq_unpack *u = p;
    for (size_t i = 0; i < u->n; i++)
        ZSTD_freeDDict(u->dicts[i].dd);
    free(u->dicts);
    ZSTD_freeDCtx(u->dctx);
    free(u);
}

int
fr_sqlite_body_functions(sqlite3 *db)
{
    struct sq_unpack *u = fr_calloc(1, sizeof *u);
    u->db = db;
    u->dctx = ZSTD_createDCtx();
    /* on failure SQLite calls unpack_free itself */
    int rc = sqlite3_create_function_v2(db, "fr_body", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, u,
                                        fn_body, NULL, NULL, unpack_free);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "fr_body_dict", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                        NULL, fn_body_dict, NULL, NULL, NULL);
    return rc;
}

/* Compresses len bytes (at least SQ_BODY_MIN) into out, which holds len - 1: the frame's
   length, 0 when it would not shrink (zstd refuses a frame that does not fit). */
static size_t
body_frame(ZSTD_CCtx *cctx, const ZSTD_CDict *cd, const char *body, size_t len, void *out)
{
    size_t z = ZSTD_compress_usingCDict(cctx, out, len - 1, body, len, cd);
    return ZSTD_isError(z) ? 0 : z;
}

/* Compresses len bytes into b->buf with the writer's context; the frame's length, 0 when it
   would not shrink. */
static size_t
body_pack(struct sq_body *b, const char *body, size_t len)
{
    if (b->cur == NULL || len < SQ_BODY_MIN)
        return 0;
    if (len > b->cap) {
        b->cap = len;
        b->buf = fr_realloc(b->buf, b->cap);
    }
    return body_frame(b->cctx, b->cur->cd, body, len, b->buf);
}

/* fr_zbody(text): compressed with the writer's current dictionary, or as it was. */
static void
fn_zbody(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    struct sq_store *s = sqlite3_user_data(ctx);
    if (s->body == NULL || sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    size_t z = body_pack(s->body, text, (size_t)sqlite3_value_bytes(argv[0]));
    if (z == 0)
        sqlite3_result_value(ctx, argv[0]);
    else
        sqlite3_result_blob64(ctx, s->body->buf, z, SQLITE_TRANSIENT);
}

/* Drops a reference to c; under b->mu. */
static void
cdict_unref(struct sq_cdict *c)
{
    if (c != NULL && --c->refs == 0) {
        ZSTD_freeCDict(c->cd);
        free(c);
    }
}

/* Makes c (NULL: none) the current encoder; the writer's thread. */
static void
body_set_cur(struct sq_body *b, struct sq_cdict *c)
{
    pthread_mutex_lock(&b->mu);
    struct sq_cdict *old = b->cur;
    b->cur = c;
    cdict_unref(old);
    pthread_mutex_unlock(&b->mu);
}

/* Makes the dictionary (dict, len) current. */
static bool
body_use(struct sq_body *b, unsigned id, const void *dict, size_t len)
{
    ZSTD_CDict *cd = ZSTD_createCDict(dict, len, SQ_BODY_LEVEL);
    if (cd == NULL)
        return false;
    struct sq_cdict *c = fr_calloc(1, sizeof *c);
    c->cd = cd;
    c->id = id;
    c->refs = 1;
    body_set_cur(b, c);
    b->packed_bytes = 0;
    b->train_bytes = SQ_BODY_RETRAIN_BYTES;
    return true;
}

/* No current dictionary: bodies are stored as text until one is trained. */
static void
body_drop(struct sq_body *b)
{
    body_set_cur(b, NULL);
    b->train_bytes = SQ_BODY_TRAIN_BYTES;
}

/* Loads the newest dictionary as the current one (none: bodies stay text until one is
   trained). */
static int
body_load(struct sq_store *s, struct fr_err *err)
{
    struct sq_body *b = s->body;
    body_drop(b);
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(s->db,
                           "SELECT id, dict FROM body_dicts ORDER BY created_ms DESC, rowid DESC"
                           " LIMIT 1",
                           -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading the body dictionary");
    if (sqlite3_step(st) == SQLITE_ROW &&
        !body_use(b, (unsigned)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                  (size_t)sqlite3_column_bytes(st, 1)))
        fr_log(FR_LOG_WARN, "store",
               "body dictionary %lld is not a zstd dictionary: new bodies are stored as text "
               "until the next one is trained",
               (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    return FR_OK;
}

int
sq_body_open(struct sq_store *s, bool writer, bool compress, bool background, struct fr_err *err)
{
    int rc = fr_sqlite_body_functions(s->db);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "registering fr_body");
    if (!writer)
        return FR_OK;
    /* every writer: an erasure re-encodes rows (sq_body_forget), as text without a packer */
    rc = sqlite3_create_function_v2(s->db, "fr_zbody", 1, SQLITE_UTF8, s, fn_zbody, NULL, NULL,
                                    NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "registering fr_zbody");
    if (!compress)
        return FR_OK;
    s->body = fr_calloc(1, sizeof *s->body);
    s->body->cctx = ZSTD_createCCtx();
    pthread_mutex_init(&s->body->mu, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->body->max = cpus < 1 ? 2 : cpus >= SQ_PACK_CTX_MAX / 2 ? SQ_PACK_CTX_MAX : 2 * (size_t)cpus;
    s->body->background = background;
    return body_load(s, err);
}

int
sq_body_begin(struct sq_store *s, struct fr_err *err)
{
    struct sq_body *b = s->body;
    if (b == NULL || b->cur == NULL)
        return FR_OK;
    /* another process's erasure may have retired the current dictionary (sq_body_forget) */
    sqlite3_stmt *st;
    int rc = sq_cached(s->db, &b->check, "SELECT 1 FROM body_dicts WHERE id = ?1", &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_int64(st, 1, b->cur->id);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src == SQLITE_ROW)
        return FR_OK;
    if (src != SQLITE_DONE)
        return sq_fail(s->db, src, err, "checking the body dictionary");
    return body_load(s, err);
}

void
sq_body_free(struct sq_store *s)
{
    struct sq_body *b = s->body;
    if (b == NULL)
        return;
    trainer_finish(s, true); /* kept: the next writer compresses with it */
    body_set_cur(b, NULL);   /* the producers are done: the store closes after them */
    for (size_t i = 0; i < b->nidle; i++)
        ZSTD_freeCCtx(b->idle[i]);
    pthread_mutex_destroy(&b->mu);
    ZSTD_freeCCtx(b->cctx);
    sqlite3_finalize(b->check);
    free(b->buf);
    free(b);
    s->body = NULL;
}

void
sq_body_pack(void *ctx, struct fr_record *rec)
{
    struct sq_store *s = ctx;
    struct sq_body *b = s->body;
    if (b == NULL || rec->body_len < SQ_BODY_MIN)
        return;
    pthread_mutex_lock(&b->mu);
    struct sq_cdict *c = b->cur;
    ZSTD_CCtx *cctx = NULL;
    if (c != NULL && b->nidle > 0)
        cctx = b->idle[--b->nidle];
    else if (c != NULL && b->made < b->max && (cctx = ZSTD_createCCtx()) != NULL)
        b->made++;
    if (cctx != NULL)
        c->refs++;
    pthread_mutex_unlock(&b->mu);
    if (cctx == NULL)
        return;
    /* kept exactly sized while it waits in the queue */
    unsigned char small[4096];
    unsigned char *out = rec->body_len - 1 <= sizeof small ? small : fr_malloc(rec->body_len);
    size_t z = body_frame(cctx, c->cd, rec->body, rec->body_len, out);
    if (z > 0) {
        if (out == small)
            memcpy(rec->packed = fr_malloc(z), small, z);
        else
            rec->packed = fr_realloc(out, z);
        rec->packed_len = z;
        rec->packed_dict = c->id;
    } else if (out != small) {
        free(out);
    }
    pthread_mutex_lock(&b->mu);
    b->idle[b->nidle++] = cctx;
    cdict_unref(c);
    pthread_mutex_unlock(&b->mu);
}

void
sq_body_bind(struct sq_store *s, sqlite3_stmt *st, int col, const struct fr_record *rec)
{
    struct sq_body *b = s->body;
    const char *body = rec->body;
    size_t len = rec->body_len;
    if (b != NULL && rec->packed != NULL && b->cur != NULL && rec->packed_dict == b->cur->id) {
        b->packed_bytes += (int64_t)len;
        sqlite3_bind_blob(st, col, rec->packed, (int)rec->packed_len, SQLITE_STATIC);
        return;
    }
    size_t z = b != NULL ? body_pack(b, body, len) : 0;
    if (z > 0) {
        b->packed_bytes += (int64_t)len;
        sqlite3_bind_blob(st, col, b->buf, (int)z, SQLITE_STATIC);
        return;
    }
    if (b != NULL)
        b->plain_bytes += (int64_t)len;
    sqlite3_bind_text(st, col, body, (int)len, SQLITE_STATIC);
}

/* The samples of one training: bodies concatenated, their sizes, and the conversations
   they came from ("\nID\n..." , each once), kept with the dictionary for erasures. */
struct body_samples {
    char *buf;
    size_t *sizes;
    size_t n, total;
    char *convs;
    size_t convs_len;
};

static void
samples_add_conv(struct body_samples *x, struct fr_strmap *seen, const char *conv)
{
    bool created;
    fr_strmap_slot(seen, conv, &created);
    if (!created)
        return;
    size_t len = strlen(conv);
    x->convs = fr_realloc(x->convs, x->convs_len + len + 2);
    memcpy(x->convs + x->convs_len, conv, len);
    x->convs_len += len;
    x->convs[x->convs_len++] = '\n';
    x->convs[x->convs_len] = '\0';
}

/*
 * The samples: the newest per_group bodies of each conversation and kind
 * among the newest SQ_BODY_WINDOW rows (events without a conversation in 64
 * groups), up to SQ_BODY_SAMPLE_BYTES.
 */
static void
body_samples_of(struct sq_store *s, int per_group, struct body_samples *x)
{
    memset(x, 0, sizeof *x);
    x->convs = fr_strdup("\n");
    x->convs_len = 1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT fr_body(body), conv_id FROM events WHERE id IN (SELECT id FROM"
                           " (SELECT id, row_number() OVER (PARTITION BY ifnull(conv_id, id % 64),"
                           " kind ORDER BY id DESC) AS k FROM events WHERE id > (SELECT max(id)"
                           " FROM events) - ?1 AND kind != 'placeholder') WHERE k <= ?2)"
                           " ORDER BY id DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, SQ_BODY_WINDOW);
    sqlite3_bind_int(st, 2, per_group);
    size_t cap = 0;
    struct fr_strmap *seen = fr_strmap_new();
    x->buf = fr_malloc(SQ_BODY_SAMPLE_BYTES);
    while (x->total < SQ_BODY_SAMPLE_BYTES && sqlite3_step(st) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (len == 0 || len > SQ_BODY_SAMPLE_MAX || x->total + len > SQ_BODY_SAMPLE_BYTES)
            continue;
        if (x->n == cap) {
            cap = cap ? 2 * cap : 1024;
            x->sizes = fr_realloc(x->sizes, cap * sizeof *x->sizes);
        }
        memcpy(x->buf + x->total, sqlite3_column_text(st, 0), len);
        x->sizes[x->n++] = len;
        x->total += len;
        if (sqlite3_column_type(st, 1) == SQLITE_TEXT)
            samples_add_conv(x, seen, (const char *)sqlite3_column_text(st, 1));
    }
    fr_strmap_free(seen, NULL);
    sqlite3_finalize(st);
}

static void
samples_free(struct body_samples *x)
{
    free(x->buf);
    free(x->sizes);
    free(x->convs);
    memset(x, 0, sizeof *x);
}

static bool
samples_enough(const struct body_samples *x)
{
    return x->n >= SQ_BODY_SAMPLES_MIN && x->total >= SQ_BODY_SAMPLES_BYTES_MIN;
}

/*
 * The samples of a training: SQ_BODY_PER_GROUP of each conversation and kind, so that a
 * dictionary holds mostly what many conversations share; and when that is too few (a store
 * of a few conversations: a long agent session alone gives one group per kind), up to
 * SQ_BODY_PER_GROUP_FEW of each. With 4 per group such a store never trained, and looked for
 * samples again after every SQ_BODY_TRAIN_BYTES of bodies: a window over the newest
 * SQ_BODY_WINDOW rows each time, most of the writer's time (one conversation of 200k events:
 * ingest fell from 23k to 5-8k events/s as it grew).
 */
static void
body_samples(struct sq_store *s, struct body_samples *x)
{
    body_samples_of(s, SQ_BODY_PER_GROUP, x);
    if (!samples_enough(x)) {
        samples_free(x);
        body_samples_of(s, SQ_BODY_PER_GROUP_FEW, x);
    }
}

/* A dictionary of the samples into dict (SQ_BODY_DICT bytes): its size, or ZDICT's error. */
static size_t
body_make(const struct body_samples *x, unsigned char *dict)
{
    /* ZDICT_trainFromBuffer's own choices (fastCover, d 8, 4 steps over k) but for f */
    ZDICT_fastCover_params_t fp;
    memset(&fp, 0, sizeof fp);
    fp.d = 8;
    fp.f = SQ_BODY_TRAIN_FLOG;
    fp.steps = 4;
    fp.accel = 1;
    fp.zParams.compressionLevel = SQ_BODY_LEVEL;
    return ZDICT_optimizeTrainFromBuffer_fastCover(dict, SQ_BODY_DICT, x->buf, x->sizes,
                                                   (unsigned)x->n, &fp);
}

/* Inserts the dictionary body_make made of x (len: its result) into body_dicts, in the open
   transaction or its own: its id, 0 when it failed. */
static unsigned
body_insert(struct sq_store *s, const struct body_samples *x, const unsigned char *dict, size_t len)
{
    unsigned id = ZDICT_isError(len) ? 0 : ZDICT_getDictID(dict, len);
    sqlite3_stmt *st = NULL;
    if (id != 0 &&
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO body_dicts(id, created_ms, samples, sample_bytes,"
                           " convs, dict) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, fr_now_ms());
        sqlite3_bind_int64(st, 3, (int64_t)x->n);
        sqlite3_bind_int64(st, 4, (int64_t)x->total);
        sqlite3_bind_text(st, 5, x->convs, (int)x->convs_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, dict, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            id = 0;
    } else {
        id = 0;
    }
    sqlite3_finalize(st);
    return id;
}

/* Makes the dictionary stored as id (0: it was not) current, and says so; true when it
   became the current one. */
static bool
body_adopt(struct sq_store *s, const struct body_samples *x, const unsigned char *dict, size_t len,
           unsigned id, double seconds)
{
    struct sq_body *b = s->body;
    bool done = id != 0 && body_use(b, id, dict, len);
    if (done)
        fr_log(FR_LOG_INFO, "store",
               "trained body dictionary %u (%zu bytes) from %zu events (%zu KiB) in %.0f ms: "
               "new bodies are stored compressed with it",
               id, len, x->n, x->total / 1024, seconds * 1000);
    else if (!b->failed_said) {
        b->failed_said = true;
        fr_log(FR_LOG_WARN, "store",
               "training a body dictionary failed (%s); bodies stay as they are, tried "
               "again later",
               ZDICT_isError(len) ? ZDICT_getErrorName(len) : sqlite3_errmsg(s->db));
    }
    return done;
}

/* Makes a dictionary of x, stores it and makes it current, here (in the open transaction, or
   its own); true when it became the current one. */
static bool
train_here(struct sq_store *s, const struct body_samples *x)
{
    double t0 = fr_mono_s();
    unsigned char *dict = fr_malloc(SQ_BODY_DICT);
    size_t len = body_make(x, dict);
    bool done = body_adopt(s, x, dict, len, body_insert(s, x, dict, len), fr_mono_s() - t0);
    free(dict);
    return done;
}

/* Trains a dictionary from the samples on the writer's thread; true when it became the
   current one. */
static bool
body_train(struct sq_store *s)
{
    struct body_samples x;
    body_samples(s, &x);
    bool done = samples_enough(&x) && train_here(s, &x);
    samples_free(&x);
    return done;
}

/*
 * A training on a thread of its own (fr_store_opts.background_training):
 * making a dictionary takes ~0.1 s, and on the writer's thread every
 * producer waited for it (its acks, 4 requests of a bench run, were the
 * slowest by 100 ms). The writer takes the samples after a commit and goes
 * on; after a later commit, once the dictionary is made, it stores it and
 * makes it current (bodies meanwhile are compressed with the previous one,
 * or stay text). A training whose samples an erasure may have touched
 * meanwhile is dropped: by this store (sq_body_forget), or by another
 * process (the erasure log grew).
 */
struct body_trainer {
    pthread_t thread;
    atomic_bool made;
    struct body_samples x;
    int64_t erasures; /* the erasure log's newest id when the samples were taken */
    unsigned char dict[SQ_BODY_DICT];
    size_t len;
    double seconds;
};

static void *
trainer_main(void *arg)
{
    struct body_trainer *t = arg;
    pthread_setname_np(pthread_self(), "fr-body-train");
    double t0 = fr_mono_s();
    t->len = body_make(&t->x, t->dict);
    t->seconds = fr_mono_s() - t0;
    atomic_store(&t->made, true);
    return NULL;
}

/* The newest id of the erasure log (0: empty), or -1 when it cannot be read. */
static int64_t
erasures_newest(struct sq_store *s)
{
    sqlite3_stmt *st;
    int64_t id = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT ifnull(max(id), 0) FROM erasures", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return id;
}

/* Starts a training on its own thread; false when there are too few samples (or no thread:
   then it trained here). */
static bool
trainer_start(struct sq_store *s)
{
    struct sq_body *b = s->body;
    struct body_trainer *t = fr_calloc(1, sizeof *t);
    body_samples(s, &t->x);
    t->erasures = erasures_newest(s);
    atomic_init(&t->made, false);
    if (!samples_enough(&t->x) || t->erasures < 0) {
        samples_free(&t->x);
        free(t);
        return false;
    }
    if (pthread_create(&t->thread, NULL, trainer_main, t) != 0) {
        bool done = train_here(s, &t->x);
        samples_free(&t->x);
        free(t);
        return done;
    }
    b->tr = t;
    return true;
}

/* Waits for the running training and, when keep and no erasure happened since its samples
   were taken, stores its dictionary and makes it current (true); drops it otherwise. */
static bool
trainer_finish(struct sq_store *s, bool keep)
{
    struct body_trainer *t = s->body != NULL ? s->body->tr : NULL;
    if (t == NULL)
        return false;
    pthread_join(t->thread, NULL);
    s->body->tr = NULL;
    unsigned id = 0;
    bool dropped = !keep;
    /* the check and the dictionary's row in one write transaction: another process's erasure
       commits before it (seen here: dropped) or after it (and then retires this dictionary
       with the others that sampled what it erases, sq_body_forget) */
    if (keep && sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        dropped = erasures_newest(s) != t->erasures;
        if (!dropped)
            id = body_insert(s, &t->x, t->dict, t->len);
        if (sqlite3_exec(s->db, id != 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            id = 0;
        }
    }
    if (dropped)
        fr_log(FR_LOG_INFO, "store",
               "a body dictionary trained from samples an erasure may have held was dropped; "
               "another is trained later");
    /* not stored (id 0): said as a failure, tried again later */
    bool done = !dropped && body_adopt(s, &t->x, t->dict, t->len, id, t->seconds);
    samples_free(&t->x);
    free(t);
    return done;
}

/*
 * An erasure must leave no byte of what it erases, and a dictionary is made
 * of its samples' bytes. Every dictionary that sampled the conversation, or
 * that holds the token, is retired: a new one is trained from what the store
 * holds now (the erased rows are already gone in this transaction), the rows
 * that use the old one are compressed again with it (as text when the store
 * does not compress, or training fails), and the old one is deleted.
 */
int
sq_body_forget(struct sq_store *s, const char *conv_id, const char *token, struct fr_err *err)
{
    trainer_finish(s, false); /* its samples may hold what is erased */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id, convs, dict FROM body_dicts", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "erasing (body dictionaries)");
    int64_t *ids = NULL;
    size_t n = 0;
    char *needle = conv_id ? fr_asprintf("\n%s\n", conv_id) : NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *convs = (const char *)sqlite3_column_text(st, 1);
        const void *dict = sqlite3_column_blob(st, 2);
        size_t dlen = (size_t)sqlite3_column_bytes(st, 2);
        if ((needle && convs && strstr(convs, needle)) ||
            (token && *token && dict && memmem(dict, dlen, token, strlen(token)))) {
            ids = fr_realloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    free(needle);
    int frc = rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "erasing (body dictionaries)");
    struct sq_body *b = s->body;
    bool retrain = false;
    for (size_t i = 0; b != NULL && i < n; i++)
        retrain |= b->cur != NULL && ids[i] == (int64_t)b->cur->id;
    if (frc == FR_OK && retrain) {
        body_drop(b);
        body_train(s); /* failing, text until the next training */
    }
    for (size_t i = 0; frc == FR_OK && i < n; i++) {
        rc = sqlite3_prepare_v2(s->db,
                                "UPDATE events SET body = fr_zbody(fr_body(body))"
                                " WHERE typeof(body) = 'blob' AND fr_body_dict(body) = ?1;",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, ids[i]);
            rc = sqlite3_step(st);
            sqlite3_finalize(st);
        }
        int64_t moved = sqlite3_changes64(s->db);
        if (rc == SQLITE_DONE &&
            (rc = sqlite3_prepare_v2(s->db, "DELETE FROM body_dicts WHERE id = ?1", -1, &st,
                                     NULL)) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, ids[i]);
            rc = sqlite3_step(st);
            sqlite3_finalize(st);
        }
        if (rc != SQLITE_DONE)
            frc = sq_fail(s->db, rc, err, "erasing (re-encoding bodies)");
        else
            fr_log(FR_LOG_INFO, "store",
                   "erasure: body dictionary %lld had samples of what was erased; retired, its "
                   "%lld bodies re-encoded (%s)",
                   (long long)ids[i], (long long)moved,
                   b && b->cur ? "with a new dictionary" : "as text");
    }
    free(ids);
    return frc;
}

void
sq_body_after_commit(struct sq_store *s)
{
    struct sq_body *b = s->body;
    if (b == NULL)
        return;
    if (b->tr != NULL) { /* one at a time; made: stored and current from the next batch on */
        if (atomic_load(&b->tr->made) && trainer_finish(s, true))
            b->plain_bytes = 0;
        return;
    }
    if (b->plain_bytes + b->packed_bytes < b->train_bytes)
        return;
    bool ok = b->background ? trainer_start(s) : body_train(s); /* started, or made current */
    if (!ok || b->tr != NULL) {
        /* too few samples yet, a failure, or running: again after as much more; after each
           failure before the first dictionary twice as much (up to a retraining's), so that
           traffic that never gives enough samples is not sampled every megabyte */
        b->plain_bytes = 0;
        b->packed_bytes = 0;
        int64_t next = b->cur ? SQ_BODY_RETRAIN_BYTES : SQ_BODY_TRAIN_BYTES;
        if (!ok && b->cur == NULL)
            next = b->train_bytes < SQ_BODY_RETRAIN_BYTES / 2 ? 2 * b->train_bytes
                                                              : SQ_BODY_RETRAIN_BYTES;
        b->train_bytes = next;
        return;
    }
    b->plain_bytes = 0;
}
