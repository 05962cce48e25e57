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
 * are the "events" counted, and 200 is the durable answer.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/timeutil.h"

struct body {
    char *p;
    size_t len, events;
};

struct shared {
    const char *url;
    bool otlp;
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

static void *
client(void *arg)
{
    struct shared *s = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, s->otlp ? "Content-Type: application/json"
                                                           : "Content-Type: application/x-ndjson");
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
            if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
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
        fprintf(stderr, "usage: fr-httpbench URL FILE [CLIENTS] [BATCH] [RATE]\n");
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
    struct shared s = {.url = argv[1],
                       .rate = rate,
                       .otlp = ulen >= 10 && strcmp(argv[1] + ulen - 10, "/v1/traces") == 0};
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
           "ack_p50_ms %.1f\nack_p99_ms %.1f\nretries_429 %zu\nfailures %zu\n",
           total, s.nbodies, clients, batch, el, el > 0 ? (double)total / el : 0.0,
           1000 * s.lat[s.nbodies / 2], 1000 * s.lat[(s.nbodies * 99) / 100], s.retries,
           s.failures);
    for (size_t i = 0; i < s.nbodies; i++)
        free(s.bodies[i].p);
    free(s.bodies);
    free(s.lat);
    free(t);
    curl_global_cleanup();
    return s.failures > 0;
}
