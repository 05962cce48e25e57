/*
 * bench/httpbench.c - the HTTP ingest path under load: C concurrent
 * keep-alive clients (libcurl, one thread each) post the events of an
 * NDJSON file in batches of B lines to POST /v1/events. Every 202 means
 * durable; a 429 is retried after its Retry-After (counted). Reports the
 * sustained rate and the ack latency (p50, p99) of the requests.
 *
 *     fr-httpbench URL FILE [CLIENTS] [BATCH] [RATE]
 *
 * RATE (events/s, all clients together): paced load instead of as fast as
 * possible, for measuring ack latency next to other work (retention).
 *
 * A URL ending in /v1/traces switches to OTLP: every line of FILE is one
 * ExportTraceServiceRequest (bench/otlpgen.c; BATCH is ignored), its spans
 * are the "events" counted, and 200 is the durable answer. MODE (6th
 * argument) says how it is sent: json (as it is), proto (re-encoded as
 * protobuf, application/x-protobuf) or grpc (protobuf over OTLP/gRPC: the URL
 * is then grpc://HOST:PORT, HTTP/2 without TLS, grpc-status 0 the durable
 * answer, RESOURCE_EXHAUSTED retried like a 429).
 *
 * With FR_HTTPBENCH_DUMP=PATH (proto or grpc), the encoded requests are
 * written to PATH instead of sent, for bench/grpc-mux.mjs.
 *
 * gRPC is sent with libnghttp2 (a client session per client thread, one
 * connection kept open, one request at a time, as an SDK's exporter sends):
 * libcurl 7.88 fails every request on a reused HTTP/2 prior-knowledge
 * connection ("Error in the HTTP2 framing layer"; the same against nghttpd),
 * so through it each request had to open its own connection.
 */
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/otlppb.h"
#include "core/mem.h"
#include "core/timeutil.h"

struct body {
    char *p;
    size_t len, events;
};

enum mode { M_NDJSON, M_JSON, M_PROTO, M_GRPC };

struct shared {
    const char *url;
    const char *grpc_host, *grpc_port; /* gRPC: where to connect */
    bool otlp;
    enum mode mode;
    size_t bytes;       /* of every body */
    double rate, start; /* paced: request i is sent no earlier than start + i*batch/rate */
    struct body *bodies;
    size_t nbodies;
    size_t next; /* under mu */
    pthread_mutex_t mu;
    double *lat; /* per body, seconds */
    size_t retries, failures;
    size_t acked;  /* events of the requests acknowledged; under mu */
    char why[256]; /* the first failure; under mu */
};

static size_t
discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* ---- gRPC over one kept HTTP/2 connection (libnghttp2) ---- */

struct h2 {
    int fd;
    nghttp2_session *ss;
    int32_t stream;
    long grpc_status;
    bool closed;
    const char *body;
    size_t len, off;
};

static int
h2_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)ss, (void)flags;
    struct h2 *c = ud;
    if (f->hd.stream_id == c->stream && nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        char v[16] = "";
        memcpy(v, value, vlen < 15 ? vlen : 15);
        c->grpc_status = atol(v);
    }
    return 0;
}

static int
h2_close(nghttp2_session *ss, int32_t id, uint32_t code, void *ud)
{
    (void)ss, (void)code;
    struct h2 *c = ud;
    if (id == c->stream)
        c->closed = true;
    return 0;
}

static ssize_t
h2_read(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t n, uint32_t *flags,
        nghttp2_data_source *src, void *ud)
{
    (void)ss, (void)id, (void)src;
    struct h2 *c = ud;
    size_t k = c->len - c->off < n ? c->len - c->off : n;
    memcpy(buf, c->body + c->off, k);
    c->off += k;
    if (c->off == c->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

static void
h2_drop(struct h2 *c)
{
    if (c->ss != NULL)
        nghttp2_session_del(c->ss);
    if (c->fd >= 0)
        close(c->fd);
    c->ss = NULL;
    c->fd = -1;
}

/* Connects and starts a client session (false on failure). */
static bool
h2_open(struct h2 *c, const struct shared *s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(s->grpc_host, s->grpc_port, &hints, &ai) != 0)
        return false;
    c->fd = socket(ai->ai_family, ai->ai_socktype, 0);
    bool ok = c->fd >= 0 && connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    /* as gRPC's own clients (and libcurl for the HTTP modes) do: a request's last DATA frame
       is not held back by Nagle's algorithm until the agent acknowledges the ones before it */
    int one = 1;
    if (ok)
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!ok) {
        h2_drop(c);
        return false;
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_close);
    nghttp2_session_client_new(&c->ss, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->ss, NGHTTP2_FLAG_NONE, NULL, 0);
    return true;
}

/* One request on the connection (opened when needed): its grpc-status, -1 when it failed. */
static long
h2_post(struct h2 *c, const struct shared *s, const struct body *b, const char *authority)
{
    if (c->ss == NULL && !h2_open(c, s))
        return -1;
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {NV(":method", "POST"),
                         NV(":scheme", "http"),
                         NV(":authority", authority),
                         NV(":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
                         NV("content-type", "application/grpc"),
                         NV("te", "trailers")};
#undef NV
    nghttp2_data_provider dp = {.read_callback = h2_read};
    c->body = b->p;
    c->len = b->len;
    c->off = 0;
    c->closed = false;
    c->grpc_status = -1;
    c->stream = nghttp2_submit_request(c->ss, NULL, hdrs, sizeof hdrs / sizeof hdrs[0], &dp, c);
    while (c->stream > 0 && !c->closed) {
        const uint8_t *out;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->ss, &out)) > 0)
            for (ssize_t w = 0; w < n;) {
                ssize_t k = write(c->fd, out + w, (size_t)(n - w));
                if (k <= 0)
                    goto broken;
                w += k;
            }
        if (n < 0 || c->closed)
            break;
        uint8_t in[16384];
        ssize_t r = read(c->fd, in, sizeof in);
        if (r <= 0 || nghttp2_session_mem_recv(c->ss, in, (size_t)r) < 0)
            goto broken;
    }
    if (c->closed)
        return c->grpc_status;
broken:
    h2_drop(c); /* the next request connects again */
    return -1;
}

static void *
client(void *arg)
{
    struct shared *s = arg;
    CURL *c = curl_easy_init();
    static const char *const types[] = {
        "Content-Type: application/x-ndjson", "Content-Type: application/json",
        "Content-Type: application/x-protobuf", "Content-Type: application/grpc"};
    struct curl_slist *h = curl_slist_append(NULL, types[s->mode]);
    struct h2 g = {.fd = -1};
    char *authority = s->mode == M_GRPC ? fr_asprintf("%s:%s", s->grpc_host, s->grpc_port) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        size_t i = s->next++;
        pthread_mutex_unlock(&s->mu);
        if (i >= s->nbodies)
            break;
        if (s->rate > 0) {
            double due = s->start + (double)i * (double)s->bodies[0].events / s->rate;
            double wait = due - fr_mono_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->bodies[i].p);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)s->bodies[i].len);
        double t0 = fr_mono_s();
        for (;;) {
            long status = 0;
            CURLcode cc = CURLE_OK;
            if (s->mode == M_GRPC) { /* OK; RESOURCE_EXHAUSTED is gRPC's 429 */
                long grpc_status = h2_post(&g, s, &s->bodies[i], authority);
                status = grpc_status == 0 ? 200 : grpc_status == 8 ? 429 : 500;
            } else if ((cc = curl_easy_perform(c)) == CURLE_OK) {
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            }
            bool ok = status == (s->otlp ? 200 : 202);
            pthread_mutex_lock(&s->mu);
            if (ok)
                s->acked += s->bodies[i].events;
            else if (status == 429)
                s->retries++;
            else if (s->failures++ == 0 && cc != CURLE_OK)
                snprintf(s->why, sizeof s->why, "%s", curl_easy_strerror(cc));
            else if (s->failures == 1) /* the first, answered */
                snprintf(s->why, sizeof s->why, "status %ld", status);
            pthread_mutex_unlock(&s->mu);
            if (ok || status != 429)
                break;
            usleep(20000);
        }
        s->lat[i] = fr_mono_s() - t0;
    }
    h2_drop(&g);
    free(authority);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

/* v as 4 bytes, most significant first (gRPC's message length; the dump's fields) */
static void
be32(uint8_t *out, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        out[b] = (uint8_t)(v >> (24 - 8 * b));
}

static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: fr-httpbench URL FILE [CLIENTS] [BATCH] [RATE] [json|proto|grpc]\n");
        return 2;
    }
    int clients = argc > 3 ? atoi(argv[3]) : 4;
    size_t batch = argc > 4 ? (size_t)atol(argv[4]) : 500;
    double rate = argc > 5 ? atof(argv[5]) : 0;
    FILE *in = fopen(argv[2], "r");
    if (in == NULL) {
        perror(argv[2]);
        return 1;
    }
    size_t ulen = strlen(argv[1]);
    const char *mode = argc > 6 ? argv[6] : "json";
    struct shared s = {.url = argv[1],
                       .rate = rate,
                       .otlp = ulen >= 10 && strcmp(argv[1] + ulen - 10, "/v1/traces") == 0};
    char *grpc_url = NULL;
    if (strcmp(mode, "grpc") == 0 && strncmp(argv[1], "grpc://", 7) == 0) {
        grpc_url = fr_strdup(argv[1] + 7); /* HOST:PORT */
        char *colon = strrchr(grpc_url, ':');
        if (colon == NULL) {
            fprintf(stderr, "fr-httpbench: %s: no port\n", argv[1]);
            return 2;
        }
        *colon = '\0';
        s.grpc_host = grpc_url;
        s.grpc_port = colon + 1;
        s.otlp = true;
        s.mode = M_GRPC;
    } else if (s.otlp) {
        s.mode = strcmp(mode, "proto") == 0 ? M_PROTO : M_JSON;
    }
    if (s.otlp)
        batch = 1;
    pthread_mutex_init(&s.mu, NULL);
    size_t cap = 64, total = 0;
    s.bodies = fr_calloc(cap, sizeof *s.bodies);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    struct body cur = {0};
    size_t curcap = 0;
    for (;;) {
        len = getline(&line, &lcap, in);
        if (len > 0) {
            if (cur.len + (size_t)len > curcap) {
                curcap = (cur.len + (size_t)len) * 2;
                cur.p = fr_realloc(cur.p, curcap);
            }
            memcpy(cur.p + cur.len, line, (size_t)len);
            cur.len += (size_t)len;
            size_t n = 1;
            if (s.otlp) { /* the spans of the request */
                n = 0;
                for (const char *p = strstr(line, "\"spanId\""); p; p = strstr(p + 1, "\"spanId\""))
                    n++;
            }
            cur.events += n;
            total += n;
        }
        if ((len <= 0 && cur.events > 0) || cur.events >= batch) {
            if (s.nbodies == cap)
                s.bodies = fr_realloc(s.bodies, (cap *= 2) * sizeof *s.bodies);
            s.bodies[s.nbodies++] = cur;
            cur = (struct body){0};
            curcap = 0;
        }
        if (len <= 0)
            break;
    }
    free(line);
    fclose(in);
    for (size_t i = 0; i < s.nbodies; i++) { /* protobuf: as an SDK's exporter would send it */
        if (s.mode == M_PROTO || s.mode == M_GRPC) {
            json_t *req = json_loadb(s.bodies[i].p, s.bodies[i].len, 0, NULL);
            size_t n;
            uint8_t *pb = fr_bench_otlp_pb(req, &n);
            json_decref(req);
            free(s.bodies[i].p);
            size_t pre = s.mode == M_GRPC ? 5 : 0; /* gRPC's message prefix */
            s.bodies[i].p = fr_malloc(n + pre);
            if (pre) {
                s.bodies[i].p[0] = 0;
                be32((uint8_t *)s.bodies[i].p + 1, (uint32_t)n);
            }
            memcpy(s.bodies[i].p + pre, pb, n);
            s.bodies[i].len = n + pre;
            free(pb);
        }
        s.bytes += s.bodies[i].len;
    }
    const char *dump = getenv("FR_HTTPBENCH_DUMP");
    if (dump != NULL && (s.mode == M_PROTO || s.mode == M_GRPC)) {
        /* the encoded requests for another client (bench/grpc-mux.mjs), not sent: per request
           its length and its spans (32-bit big-endian each), then the protobuf message */
        FILE *out = fopen(dump, "wb");
        if (out == NULL) {
            perror(dump);
            return 1;
        }
        size_t pre = s.mode == M_GRPC ? 5 : 0;
        for (size_t i = 0; i < s.nbodies; i++) {
            uint8_t hdr[8];
            be32(hdr, (uint32_t)(s.bodies[i].len - pre));
            be32(hdr + 4, (uint32_t)s.bodies[i].events);
            fwrite(hdr, 1, 8, out);
            fwrite(s.bodies[i].p + pre, 1, s.bodies[i].len - pre, out);
            free(s.bodies[i].p);
        }
        free(s.bodies);
        free(grpc_url);
        return fclose(out) == 0 ? 0 : 1;
    }
    s.lat = fr_calloc(s.nbodies, sizeof *s.lat);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t *t = fr_calloc((size_t)clients, sizeof *t);
    double t0 = fr_mono_s();
    s.start = t0;
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client, &s);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    double el = fr_mono_s() - t0;
    qsort(s.lat, s.nbodies, sizeof *s.lat, dbl_cmp);
    if (s.failures > 0) /* the figures count only what was acknowledged: not a measurement */
        fprintf(stderr,
                "fr-httpbench: %zu of %zu requests failed (the first: %s); %zu of %zu events "
                "acknowledged\n",
                s.failures, s.nbodies, s.why, s.acked, total);
    total = s.acked;
    printf("events %zu\nrequests %zu\nclients %d\nbatch %zu\nseconds %.3f\nevents_per_s %.0f\n"
           "bytes_per_event %.0f\nmb_per_s %.1f\n"
           "ack_p50_ms %.1f\nack_p99_ms %.1f\nretries_429 %zu\nfailures %zu\n",
           total, s.nbodies, clients, batch, el, el > 0 ? (double)total / el : 0.0,
           total ? (double)s.bytes / (double)total : 0.0, el > 0 ? (double)s.bytes / el / 1e6 : 0.0,
           1000 * s.lat[s.nbodies / 2], 1000 * s.lat[(s.nbodies * 99) / 100], s.retries,
           s.failures);
    for (size_t i = 0; i < s.nbodies; i++)
        free(s.bodies[i].p);
    free(s.bodies);
    free(s.lat);
    free(t);
    free(grpc_url);
    curl_global_cleanup();
    return s.failures > 0;
}
