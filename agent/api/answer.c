/*
 * agent/api/answer.c - replies of the HTTP API (and the release of a
 * request's body once it is no longer needed). Every reply path survives
 * any bytes in any input: text echoed from a request is made valid UTF-8
 * before it reaches jansson, and a JSON value that could not be built is
 * answered 500 instead of dereferenced.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "agent/api/api.h"
#include "core/mem.h"
#include "core/utf8.h"

_Thread_local int fr_api_answered_status;

/* Answers this large or larger are sent gzip-compressed to a client that accepts it. */
#define FR_GZIP_MIN (64 * 1024)

/*
 * body gzip-compressed (level 1: a long conversation's JSON shrinks about
 * sixfold in ~6 ms per MB, far less than sending it costs a browser); NULL
 * when it did not shrink or zlib failed (then the body goes as it is).
 */
static char *
gzip_body(const char *body, size_t len, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len);
    char *out = fr_malloc(cap);
    z.next_in = (Bytef *)body;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || *out_len >= len) {
        free(out);
        return NULL;
    }
    return out;
}

/* Whether the request's Accept-Encoding names gzip (not with q=0). */
static bool
accepts_gzip(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    const char *g = ae ? strstr(ae, "gzip") : NULL;
    return g != NULL && strncmp(g + 4, ";q=0", 4) != 0 && strncmp(g + 4, "; q=0", 5) != 0;
}

enum MHD_Result
fr_api_answer(struct fr_pipeline *p, struct MHD_Connection *c, int status, const char *type,
              char *body, size_t len, const char *retry_after)
{
    bool gz = false;
    if (len >= FR_GZIP_MIN && len <= UINT32_MAX && accepts_gzip(c)) {
        size_t zl;
        char *z = gzip_body(body, len, &zl);
        if (z != NULL) {
            free(body);
            body = z;
            len = zl;
            gz = true;
        }
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (gz)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (len >= FR_GZIP_MIN || gz)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (retry_after != NULL)
        MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    return fr_api_queue(p, c, status, r);
}

enum MHD_Result
fr_api_queue(struct fr_pipeline *p, struct MHD_Connection *c, int status, struct MHD_Response *r)
{
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    fr_metrics_http(p->metrics, status);
    fr_api_answered_status = status;
    return rc;
}

enum MHD_Result
fr_api_json(struct fr_pipeline *p, struct MHD_Connection *c, int status, json_t *j,
            const char *retry_after)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        static const char fail[] = "{\"error\":\"the reply could not be encoded\"}\n";
        return fr_api_answer(p, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                             fr_strdup(fail), sizeof fail - 1, NULL);
    }
    size_t n = strlen(s);
    s = fr_realloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    return fr_api_answer(p, c, status, "application/json", s, n + 1, retry_after);
}

enum MHD_Result
fr_api_error(struct fr_pipeline *p, struct MHD_Connection *c, int status, const char *msg,
             const char *retry_after)
{
    char *clean = fr_utf8_sanitize(msg);
    json_t *j = json_pack("{s:s}", "error", clean);
    free(clean);
    return fr_api_json(p, c, status, j, retry_after);
}

void
fr_api_req_release(struct fr_pipeline *p, struct fr_api_req *q)
{
    fr_pipeline_inflight_give(p, &q->held);
    fr_api_req_body_free(q);
}

#define FR_API_BODY_MAP_BYTES (128 * 1024)

/*
 * Mappings of finished bodies kept for the next ones: a new mapping for every large body
 * cost its pages' first-touch faults (one per 4 KiB) and, when unmapped, a TLB flush on every
 * core, ~4% of the agent's CPU on 500-event requests. At most BODY_POOL of them, BODY_POOL_BYTES
 * together, so what is kept is what the busiest moments use at once anyway (a peak's RSS
 * does not grow); their bytes are zeroed when kept (a raw body holds what redaction removes).
 */
#define BODY_POOL 4
#define BODY_POOL_BYTES (1024 * 1024)

static struct {
    pthread_mutex_t mu;
    void *p[BODY_POOL];
    size_t cap[BODY_POOL], n, bytes;
} body_pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* A kept mapping of at least cap bytes (the smallest), or NULL (*got its size). */
static void *
pool_take(size_t cap, size_t *got)
{
    pthread_mutex_lock(&body_pool.mu);
    size_t best = body_pool.n;
    for (size_t i = 0; i < body_pool.n; i++)
        if (body_pool.cap[i] >= cap &&
            (best == body_pool.n || body_pool.cap[i] < body_pool.cap[best]))
            best = i;
    void *m = NULL;
    if (best < body_pool.n) {
        m = body_pool.p[best];
        *got = body_pool.cap[best];
        body_pool.bytes -= *got;
        body_pool.n--;
        body_pool.p[best] = body_pool.p[body_pool.n];
        body_pool.cap[best] = body_pool.cap[body_pool.n];
    }
    pthread_mutex_unlock(&body_pool.mu);
    return m;
}

/* Keeps a mapping (true), or leaves it to the caller to unmap. */
static bool
pool_keep(void *m, size_t cap)
{
    pthread_mutex_lock(&body_pool.mu);
    bool kept = body_pool.n < BODY_POOL && body_pool.bytes + cap <= BODY_POOL_BYTES;
    if (kept) {
        body_pool.p[body_pool.n] = m;
        body_pool.cap[body_pool.n++] = cap;
        body_pool.bytes += cap;
    }
    pthread_mutex_unlock(&body_pool.mu);
    return kept;
}

void
fr_api_body_pool_release(void)
{
    pthread_mutex_lock(&body_pool.mu);
    for (size_t i = 0; i < body_pool.n; i++)
        munmap(body_pool.p[i], body_pool.cap[i]);
    body_pool.n = body_pool.bytes = 0;
    pthread_mutex_unlock(&body_pool.mu);
}

void
fr_api_req_body_alloc(struct fr_api_req *q, size_t cap)
{
    q->mapped = false;
    q->cap = cap;
    if (cap >= FR_API_BODY_MAP_BYTES) {
        cap = (cap + 65535) & ~(size_t)65535; /* bodies of about one size share their mappings */
        void *m = pool_take(cap, &q->cap);
        if (m == NULL) {
            m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            q->cap = cap;
        }
        q->mapped = m != MAP_FAILED;
        q->body = q->mapped ? m : fr_malloc(cap);
    } else {
        q->body = fr_malloc(cap);
    }
}

/* To cap bytes (the first q->len kept), on the heap. */
static void
body_grow(struct fr_api_req *q, size_t cap)
{
    if (!q->mapped) {
        q->body = fr_realloc(q->body, cap);
        q->cap = cap;
        return;
    }
    char *heap = fr_malloc(cap); /* a mapping is never grown in place */
    memcpy(heap, q->body, q->len);
    size_t len = q->len;
    fr_api_req_body_free(q);
    q->body = heap;
    q->len = len;
    q->cap = cap;
}

void
fr_api_req_body_add(struct fr_api_req *q, const void *data, size_t n, size_t max)
{
    if (q->len + n + 1 > q->cap) {
        size_t cap = (q->len + n + 1) * 2;
        body_grow(q, cap > max ? max : cap);
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
}

void
fr_api_req_body_free(struct fr_api_req *q)
{
    if (q->mapped) {
        explicit_bzero(q->body, q->len);
        if (!pool_keep(q->body, q->cap))
            munmap(q->body, q->cap);
    } else {
        free(q->body);
    }
    q->body = NULL;
    q->mapped = false;
    q->len = q->cap = 0;
}
