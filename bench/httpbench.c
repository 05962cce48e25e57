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
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
};

static size_t
discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* grpc-status from the trailers (libcurl hands them to the header callback) */
static size_t
grpc_header(char *p, size_t s, size_t n, void *ud)
{
    if (s * n > 13 && strncasecmp(p, "grpc-status: ", 13) == 0)
        *(long *)ud = atol(p + 13);
    return s * n;
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
    long grpc_status = -1;
    if (s->mode == M_GRPC) {
        h = curl_slist_append(h, "TE: trailers");
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grpc_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &grpc_status);
        /* libcurl 7.88 fails every request on a reused HTTP/2 prior-knowledge connection
           ("Error in the HTTP2 framing layer"; the same against nghttpd), so each request
           opens its own: on loopback, with 500 spans a request, a small cost */
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    }
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
            grpc_status = -1;
            if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (s->mode == M_GRPC) /* OK; RESOURCE_EXHAUSTED is gRPC's 429 */
                status = grpc_status == 0 ? 200 : grpc_status == 8 ? 429 : 500;
            if (status == (s->otlp ? 200 : 202))
                break;
            pthread_mutex_lock(&s->mu);
            if (status == 429)
                s->retries++;
            else
                s->failures++;
            pthread_mutex_unlock(&s->mu);
            if (status != 429)
                break;
            usleep(20000);
        }
        s->lat[i] = fr_mono_s() - t0;
    }
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
        grpc_url = fr_asprintf(
            "http://%s/opentelemetry.proto.collector.trace.v1.TraceService/Export", argv[1] + 7);
        s.url = grpc_url;
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
