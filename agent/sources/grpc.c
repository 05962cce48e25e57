/*
 * agent/sources/grpc.c - the "otlp_grpc" source: OTLP/gRPC on
 * otlp.grpc_listen (default 127.0.0.1:4317, the exporters' default port),
 * the three unary Export methods of the OTLP services:
 *
 *   /opentelemetry.proto.collector.trace.v1.TraceService/Export
 *   /opentelemetry.proto.collector.logs.v1.LogsService/Export
 *   /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
 *
 * HTTP/2 framing is libnghttp2's (server session, cleartext h2c with prior
 * knowledge, as gRPC clients speak it without TLS); gRPC's own layer is
 * small and written here: the 5-byte message prefix (messages compressed
 * per grpc-encoding: gzip, deflate, zstd, snappy or lz4), and the status in trailers. The request
 * goes through the same code as OTLP/HTTP protobuf (agent/otlp/ingest.c): same token
 * (authorization: Bearer), limits (http.max_body_bytes per message, http.max_connections
 * connections), backpressure (RESOURCE_EXHAUSTED or UNAVAILABLE with a google.rpc.RetryInfo in
 * grpc-status-details-bin) and durable acks (OK only once the events are committed).
 *
 * One thread per connection, as the HTTP server, for the HTTP/2 session;
 * each completed request is served (prepared, then committed: the durable
 * ack) on a thread of its own, at most GRPC_PARALLEL at a time per
 * connection, and answered by the connection's thread when it is done. The
 * OpenTelemetry Collector's exporter sends its queue's concurrent exports
 * (10 by default) as streams of one connection: served one after the other,
 * each would wait for the commit of the one before it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/acceptor.h"
#include "agent/api/api.h"
#include "agent/body.h"
#include "agent/otlp/ingest.h"
#include "agent/source.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"

#define GRPC_WINDOW (1 << 20) /* per stream; the connection's is 16 times that */
#define GRPC_PARALLEL 8       /* requests of one connection served at the same time */
#define GRPC_ENCODINGS "identity,gzip,deflate,zstd,snappy,lz4" /* compressed messages accepted */

struct gstream {
    int32_t id;
    enum fr_otlp_signal signal;
    bool known;          /* one of the three Export paths */
    bool grpc;           /* content-type application/grpc... */
    bool other_user;     /* refused: no token set, and the peer is another local user */
    bool authorized;     /* the bearer token, when one is set */
    bool too_large;      /* the message went over http.max_body_bytes: the rest is dropped */
    bool busy;           /* no queue room by http.queue_wait at its headers: DATA dropped */
    bool shed;           /* the agent held http.max_inflight_bytes of bodies: DATA dropped */
    char encoding[16];   /* grpc-encoding */
    struct fr_api_req b; /* its body, len, cap, mapped: the request's DATA, up to the limit */
    size_t held;         /* bytes of it counted against http.max_inflight_bytes */
    bool complete;       /* END_STREAM seen: ready to serve */
    uint8_t *resp;       /* the response message, framed */
    size_t resp_len, resp_off;
    int status;        /* grpc-status of the trailers */
    char message[300]; /* grpc-message, percent-encoded */
    char details[600]; /* grpc-status-details-bin, base64; "" = none */
    struct gstream *next_ready;
    struct gconn *conn;
    pthread_t thread; /* serving it, while serving */
    bool serving;     /* on its thread: only that thread touches it */
    bool orphaned;    /* closed (reset by the client) while served: freed when done */
};

struct gconn {
    struct fr_grpc *g;
    int fd;
    bool other_user; /* another local user (http.local_users owner): served only with a token */
    nghttp2_session *h2;
    struct gstream *ready, *ready_tail; /* completed requests not yet served, oldest first */
    int inflight;                       /* being served on their threads */
    int done_fd[2]; /* a pipe: each served request's thread writes its stream's address */
};

struct fr_grpc {
    struct fr_pipeline *p;
    struct fr_acceptor *acc;
    int port;
    char listen[80];
};

static const char *const paths[] = {
    [FR_OTLP_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [FR_OTLP_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    [FR_OTLP_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
};

/* ---- statuses ---- */

/* grpc-message is percent-encoded (the gRPC HTTP/2 protocol): printable ASCII but '%' as is. */
static void
set_status(struct gstream *s, int code, const char *msg, int retry_s)
{
    s->status = code;
    size_t o = 0;
    for (const unsigned char *m = (const unsigned char *)msg; *m && o + 4 < sizeof s->message;
         m++) {
        if (*m >= 0x20 && *m <= 0x7e && *m != '%')
            s->message[o++] = (char)*m;
        else
            o += (size_t)snprintf(s->message + o, sizeof s->message - o, "%%%02X", *m);
    }
    s->message[o] = '\0';
    s->details[0] = '\0';
    if (code != 0) {
        uint8_t *st;
        size_t n;
        fr_otlp_pb_status(code, msg, retry_s, &st, &n);
        if (4 * ((n + 2) / 3) < sizeof s->details)
            EVP_EncodeBlock((unsigned char *)s->details, st, (int)n);
        free(st);
    }
}

/* ---- one request ---- */

/* The length of a gRPC message from its 5-byte prefix (a flag, then 32 bits big-endian). */
static uint32_t
message_len(const char *prefix)
{
    const uint8_t *b = (const uint8_t *)prefix;
    return (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | (uint32_t)b[4];
}

/* The DATA kept so far go, and leave http.max_inflight_bytes. */
static void
body_drop(struct fr_pipeline *p, struct gstream *s)
{
    fr_api_req_body_free(&s->b); /* a large one's mapping zeroed and kept for the next */
    fr_pipeline_inflight_give(p, &s->held);
}

struct decoded_ctx {
    struct fr_pipeline *p;
    struct gstream *s;
    char *inflated;
};

/* The decoded request holds what is kept: the message and its inflated copy go. */
static void
body_decoded(void *ud)
{
    struct decoded_ctx *d = ud;
    free(d->inflated);
    d->inflated = NULL;
    body_drop(d->p, d->s);
}

static void
serve(struct fr_grpc *g, struct gstream *s)
{
    struct fr_pipeline *p = g->p;
    struct fr_otlp_result r;
    if (!s->known) {
        set_status(s, 12, "unknown method: flightrec serves the OTLP Export methods", 0);
        return;
    }
    if (!s->grpc) {
        fr_otlp_refuse(p, s->signal, FR_OTLP_MEDIA_TYPE, 415, NULL,
                       "content-type must be application/grpc", &r);
        set_status(s, 3, r.msg, 0);
        return;
    }
    if (s->other_user) {
        set_status(s, 7, /* PERMISSION_DENIED */
                   "no token is set, so only the agent's own user and root may send: run as that "
                   "user, or set http.auth_token_file (or http.local_users: any)",
                   0);
        return;
    }
    if (!s->authorized) {
        set_status(s, 16, "missing or wrong bearer token", 0); /* UNAUTHENTICATED */
        return;
    }
    if (s->too_large) {
        fr_otlp_refuse(p, s->signal, FR_OTLP_TOO_LARGE, 413, NULL,
                       "message over http.max_body_bytes", &r);
        set_status(s, 8, r.msg, 0);
        return;
    }
    if (s->shed) { /* as OTLP/HTTP's 429: the bodies held already are enough */
        fr_otlp_refuse(p, s->signal, FR_OTLP_QUEUE_FULL, 429, "1", FR_PIPELINE_INFLIGHT_FULL, &r);
        set_status(s, fr_otlp_grpc_code(&r), r.msg, 1);
        return;
    }
    if (s->busy) { /* no room by http.queue_wait at its headers: its DATA was dropped */
        fr_otlp_refuse_ack(p, s->signal, &(struct fr_ack){.rc = FR_E_BUSY}, &r);
        set_status(s, fr_otlp_grpc_code(&r), r.msg, atoi(r.retry_after));
        return;
    }
    /* exactly one length-prefixed message (a unary call) */
    uint32_t mlen = 0;
    if (s->b.len >= 5)
        mlen = message_len(s->b.body);
    if (s->b.len < 5 || (size_t)mlen != s->b.len - 5) {
        fr_otlp_refuse(p, s->signal, FR_OTLP_MALFORMED, 400, NULL,
                       "not one length-prefixed gRPC message", &r);
        set_status(s, 3, r.msg, 0);
        return;
    }
    char *msg = s->b.body + 5;
    struct decoded_ctx d = {p, s, NULL};
    size_t len = mlen;
    if (s->b.body[0] != 0) {
        if (!fr_body_encoding_known(s->encoding)) {
            char why[128];
            snprintf(why, sizeof why, "compressed message with grpc-encoding %s (%s)",
                     s->encoding[0] ? s->encoding : "(none)", GRPC_ENCODINGS);
            fr_otlp_refuse(p, s->signal, FR_OTLP_ENCODING, 400, NULL, why, &r);
            set_status(s, 12, r.msg, 0); /* UNIMPLEMENTED, as gRPC answers an encoding */
            return;
        }
        int rc = fr_body_inflate(s->encoding, msg, len, (size_t)p->conf.http_max_body_bytes,
                                 &d.inflated, &len);
        if (rc != FR_OK) {
            char why[96];
            fr_otlp_refuse(p, s->signal, rc == FR_E_LIMIT ? FR_OTLP_TOO_LARGE : FR_OTLP_ENCODING,
                           400, NULL,
                           rc == FR_E_LIMIT ? "decompressed message over http.max_body_bytes"
                                            : fr_body_undecodable(why, sizeof why, "message",
                                                                  "grpc-encoding", s->encoding),
                           &r);
            set_status(s, rc == FR_E_LIMIT ? 8 : 3, r.msg, 0);
            return;
        }
        msg = d.inflated;
    }
    fr_otlp_ingest_body(p, s->signal, true, msg, len, body_decoded, &d, &r);
    int code = fr_otlp_grpc_code(&r);
    if (code != 0) {
        set_status(s, code, r.msg, r.retry_after ? atoi(r.retry_after) : 0);
        return;
    }
    uint8_t *pb;
    size_t n;
    fr_otlp_pb_response(s->signal, r.rejected, r.rejected ? r.msg : NULL, &pb, &n);
    s->resp = fr_malloc(n + 5);
    s->resp[0] = 0;
    s->resp[1] = (uint8_t)(n >> 24);
    s->resp[2] = (uint8_t)(n >> 16);
    s->resp[3] = (uint8_t)(n >> 8);
    s->resp[4] = (uint8_t)n;
    memcpy(s->resp + 5, pb, n);
    s->resp_len = n + 5;
    free(pb);
    set_status(s, 0, "", 0);
}

/* ---- nghttp2 callbacks ---- */

static void
trailers(nghttp2_session *h2, struct gstream *s)
{
    char code[12];
    snprintf(code, sizeof code, "%d", s->status);
    nghttp2_nv nv[3] = {
        {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)s->message, 12, strlen(s->message),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status-details-bin", (uint8_t *)s->details, 23, strlen(s->details),
         NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_trailer(h2, s->id, nv, s->details[0] ? 3 : 2);
}

static ssize_t
read_resp(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *ud)
{
    (void)id;
    (void)ud;
    struct gstream *s = src->ptr;
    size_t n = s->resp_len - s->resp_off < len ? s->resp_len - s->resp_off : len;
    memcpy(buf, s->resp + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        trailers(h2, s);
    }
    return (ssize_t)n;
}

static void
respond(nghttp2_session *h2, struct gstream *s)
{
    nghttp2_nv hdr[3] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-accept-encoding", (uint8_t *)GRPC_ENCODINGS, 20,
         sizeof GRPC_ENCODINGS - 1, NGHTTP2_NV_FLAG_NONE}};
    if (s->resp != NULL) {
        nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_resp};
        nghttp2_submit_response(h2, s->id, hdr, 3, &dp);
        return;
    }
    /* trailers-only: the status in the one HEADERS frame that ends the stream */
    char code[12];
    snprintf(code, sizeof code, "%d", s->status);
    nghttp2_nv nv[6] = {
        hdr[0],
        hdr[1],
        hdr[2],
        {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)s->message, 12, strlen(s->message),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status-details-bin", (uint8_t *)s->details, 23, strlen(s->details),
         NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_response(h2, s->id, nv, s->details[0] ? 6 : 5, NULL);
}

static int
on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct gconn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct gstream *s = fr_calloc(1, sizeof *s);
    s->id = f->hd.stream_id;
    struct fr_live *l = fr_pipeline_live_get(c->g->p);
    /* without a token, the agent's own user and root; else the authorization header decides */
    s->authorized = l->token[0] == '\0' && !c->other_user;
    s->other_user = l->token[0] == '\0' && c->other_user;
    fr_pipeline_live_put(c->g->p, l);
    nghttp2_session_set_stream_user_data(h2, s->id, s);
    return 0;
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    struct gconn *c = ud;
    struct gstream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (s == NULL || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    const char *n = (const char *)name, *v = (const char *)value;
    if (namelen == 5 && memcmp(n, ":path", 5) == 0) {
        for (int i = 0; i < 3; i++)
            if (valuelen == strlen(paths[i]) && memcmp(v, paths[i], valuelen) == 0) {
                s->signal = (enum fr_otlp_signal)i;
                s->known = true;
            }
    } else if (namelen == 12 && memcmp(n, "content-type", 12) == 0) {
        s->grpc = valuelen >= 16 && strncasecmp(v, "application/grpc", 16) == 0 &&
                  (valuelen == 16 || v[16] == '+' || v[16] == ';');
    } else if (namelen == 13 && memcmp(n, "grpc-encoding", 13) == 0) {
        size_t k = 0; /* a name (it goes into a refusal's message): anything else as '?' */
        for (; k < valuelen && k + 1 < sizeof s->encoding; k++) {
            unsigned char ch = v[k];
            s->encoding[k] = (char)(isalnum(ch) || ch == '-' || ch == '_' ? ch : '?');
        }
        s->encoding[k] = '\0';
    } else if (namelen == 13 && memcmp(n, "authorization", 13) == 0) {
        struct fr_live *l = fr_pipeline_live_get(c->g->p);
        s->authorized = fr_api_bearer_ok(v, valuelen, l->token);
        fr_pipeline_live_put(c->g->p, l);
    }
    return 0;
}

static int
on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    struct gconn *c = ud;
    struct gstream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL || s->too_large || s->busy || s->shed || !s->authorized || !s->known)
        return 0; /* read and dropped: nothing is kept for a request that will be refused */
    size_t limit = (size_t)c->g->p->conf.http_max_body_bytes + 5;
    if (s->b.len + len > limit) {
        s->too_large = true;
        body_drop(c->g->p, s);
        return 0;
    }
    if (!fr_pipeline_inflight_take(c->g->p, &s->held, len)) {
        s->shed = true; /* refused before any work, as OTLP/HTTP */
        body_drop(c->g->p, s);
        return 0;
    }
    if (s->b.body == NULL && len >= 5) { /* the message's length: its buffer at once */
        size_t want = message_len((const char *)data);
        /* and the byte fr_api_req_body_add keeps spare: it grows only what was not announced */
        fr_api_req_body_alloc(&s->b, 5 + (want < limit - 5 ? want : limit - 5) + 1);
    }
    fr_api_req_body_add(&s->b, data, len, limit + 1);
    return 0;
}

static int
on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct gconn *c = ud;
    struct gstream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && s != NULL &&
        s->known && s->authorized && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* admission before the message is read, as for OTLP/HTTP: waits for queue room (its
           DATA left unread meanwhile), none by http.queue_wait is RESOURCE_EXHAUSTED */
        size_t none;
        s->busy = fr_pipeline_admit(c->g->p, 0, &none) != FR_OK;
    }
    if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    if (s == NULL || s->complete)
        return 0;
    s->complete = true;
    s->next_ready = NULL;
    if (c->ready_tail != NULL)
        c->ready_tail->next_ready = s;
    else
        c->ready = s;
    c->ready_tail = s;
    return 0;
}

static void
gstream_free(struct fr_pipeline *p, struct gstream *s)
{
    body_drop(p, s);
    free(s->resp);
    free(s);
}

static int
on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    struct gconn *c = ud;
    struct gstream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    if (s->serving) { /* its thread still works on it (the commit goes on): freed when done */
        s->orphaned = true;
        return 0;
    }
    struct gstream *prev = NULL;
    for (struct gstream **pp = &c->ready; *pp; prev = *pp, pp = &(*pp)->next_ready)
        if (*pp == s) { /* reset by the client before it was served */
            *pp = s->next_ready;
            if (c->ready_tail == s)
                c->ready_tail = prev;
            break;
        }
    gstream_free(c->g->p, s);
    return 0;
}

/* ---- connections ---- */

static bool
flush(struct gconn *c)
{
    for (;;) {
        const uint8_t *out;
        ssize_t n = nghttp2_session_mem_send(c->h2, &out);
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        if (!fr_send_all(c->fd, out, (size_t)n))
            return false;
    }
}

static void *
serve_main(void *arg)
{
    struct gstream *s = arg;
    struct gconn *c = s->conn;
    serve(c->g, s);
    ssize_t w; /* a pointer: far below PIPE_BUF, so written whole and read whole */
    do
        w = write(c->done_fd[1], &s, sizeof s);
    while (w < 0 && errno == EINTR);
    return NULL;
}

/* Starts serving completed requests, oldest first, while fewer than GRPC_PARALLEL are. */
static void
dispatch(struct gconn *c)
{
    while (c->ready != NULL && c->inflight < GRPC_PARALLEL) {
        struct gstream *s = c->ready;
        c->ready = s->next_ready;
        if (c->ready == NULL)
            c->ready_tail = NULL;
        s->conn = c;
        s->serving = true;
        if (pthread_create(&s->thread, NULL, serve_main, s) != 0) {
            s->serving = false; /* no thread now: served here, as one */
            serve(c->g, s);
            respond(c->h2, s);
            continue;
        }
        c->inflight++;
    }
}

/* Answers the requests whose threads are done (waits for one first when wait is set). */
static void
answer_done(struct gconn *c, bool wait)
{
    struct pollfd pf = {.fd = c->done_fd[0], .events = POLLIN};
    while (wait && poll(&pf, 1, -1) < 0 && errno == EINTR)
        ;
    struct gstream *done[GRPC_PARALLEL];
    ssize_t n;
    while ((n = read(c->done_fd[0], done, sizeof done)) > 0) /* the pipe is non-blocking */
        for (size_t i = 0; i < (size_t)n / sizeof *done; i++) {
            struct gstream *s = done[i];
            pthread_join(s->thread, NULL);
            c->inflight--;
            s->serving = false;
            if (s->orphaned)
                gstream_free(c->g->p, s);
            else
                respond(c->h2, s);
        }
}

static void
grpc_serve(void *ud, int fd, int wake_fd)
{
    struct fr_grpc *g = ud;
    struct gconn conn = {.g = g, .fd = fd}, *c = &conn;
    if (pipe(c->done_fd) != 0) {
        fr_log(FR_LOG_WARN, "otlp-grpc", "connection dropped: no pipe (%s)", strerror(errno));
        shutdown(fd, SHUT_RDWR);
        return;
    }
    fcntl(c->done_fd[0], F_SETFL, O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g->p->conf.http_local_users == 0) {
        long uid = fr_api_peer_uid(fd);
        c->other_user = !(uid == (long)getuid() || uid == 0);
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_server_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GRPC_WINDOW}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 16 * GRPC_WINDOW);
    uint8_t buf[65536];
    bool ok = flush(c);
    bool stopping = false, eof = false;
    while (ok && (c->inflight > 0 || nghttp2_session_want_read(c->h2) ||
                  nghttp2_session_want_write(c->h2))) {
        struct pollfd pf[3] = {{.fd = c->fd, .events = POLLIN},
                               {.fd = wake_fd, .events = POLLIN},
                               {.fd = c->done_fd[0], .events = POLLIN}};
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents) { /* stopping: what arrived is served and answered first */
            stopping = true;
            break;
        }
        if (pf[2].revents)
            answer_done(c, false);
        if (pf[0].revents) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            eof = n == 0;
            if (n <= 0 || nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0)
                break;
        }
        dispatch(c);
        ok = flush(c);
    }
    /* no request is left on its thread. With the agent stopping, or the client done sending,
       every request that arrived whole is served and answered (before the goodbye); after a
       failure of the connection only those being served finish (committed, not answered) */
    bool drain = stopping || eof;
    for (;;) {
        if (drain)
            dispatch(c);
        if (c->inflight == 0)
            break;
        answer_done(c, true);
    }
    if (stopping)
        nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
    if (drain)
        flush(c);
    nghttp2_session_del(c->h2); /* frees the streams left through on_close */
    close(c->done_fd[0]);
    close(c->done_fd[1]);
    shutdown(c->fd, SHUT_RDWR);
}

static void
grpc_refuse(void *ud, int fd, size_t limit)
{
    (void)ud;
    (void)fd;
    if (limit > 0)
        fr_log(FR_LOG_WARN, "otlp-grpc",
               "connection refused: %zu connections already served "
               "(http.max_connections)",
               limit);
}

static const struct fr_acceptor_ops grpc_ops = {.serve = grpc_serve, .refuse = grpc_refuse};

/* ---- the source ---- */

static bool
grpc_enabled(const struct fr_config *c)
{
    return c->otlp_enabled && c->otlp_grpc_listen[0] != '\0';
}

static int
grpc_init(struct fr_pipeline *p, void **ctx, struct fr_err *err)
{
    *ctx = NULL;
    const char *where = p->conf.otlp_grpc_listen, *colon = strrchr(where, ':');
    char host[64];
    snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - where) : 0, where);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon ? colon + 1 : "0"))};
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return fr_err_set(err, FR_E_CONFIG, "otlp.grpc_listen: '%s' is not an IPv4 HOST:PORT",
                          where);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 128) != 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        return fr_err_set(err, FR_E_IO,
                          "otlp.grpc_listen: cannot listen on %s: %s (set otlp.grpc_listen to a "
                          "free port, or \"\" for no gRPC)",
                          where, strerror(e));
    }
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    struct fr_grpc *g = fr_calloc(1, sizeof *g);
    g->p = p;
    g->port = ntohs(sa.sin_port);
    snprintf(g->listen, sizeof g->listen, "%.63s:%d", host, g->port);
    if (fr_acceptor_start(lfd, (size_t)p->conf.http_max_connections, &grpc_ops, g, &g->acc) !=
        FR_OK) {
        free(g);
        return fr_err_set(err, FR_E_IO, "otlp.grpc_listen: cannot start the receiver");
    }
    *ctx = g;
    return FR_OK;
}

static void
grpc_quiesce(void *ctx)
{
    struct fr_grpc *g = ctx;
    fr_acceptor_quiesce(g->acc);
}

static void
grpc_destroy(void *ctx)
{
    struct fr_grpc *g = ctx;
    if (g == NULL)
        return;
    fr_acceptor_stop(g->acc);   /* in-flight requests are answered, then each says goodbye */
    fr_api_body_pool_release(); /* the bodies' mappings kept, whichever server stops last */
    free(g);
}

static void
grpc_describe(void *ctx, char *buf, size_t len)
{
    struct fr_grpc *g = ctx;
    snprintf(buf, len, "otlp-grpc grpc://%s", g->listen);
}

const struct fr_source fr_source_otlp_grpc = {
    .name = "otlp_grpc",
    .description = "OTLP/gRPC (the three Export methods, protobuf, gzip, deflate, zstd, snappy or "
                   "lz4) on otlp.grpc_listen",
    .options = "otlp.*",
    .enabled = grpc_enabled,
    .init = grpc_init,
    .destroy = grpc_destroy,
    .quiesce = grpc_quiesce,
    .describe = grpc_describe,
};
