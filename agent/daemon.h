/*
 * agent/daemon.h - `flightrec agent`: the sidecar process.
 *
 *   HTTP (agent/http.c) ─┐
 *   Unix socket (sock.c) ├─ prepare on their own threads ─► writer (group commit) ─► store
 *   runtime sampler ─────┘        (parse, check, redact,      bounded queue: full =
 *                                  normalize)                 429 / stop reading
 *
 * An ack (HTTP 202, socket ack line) is sent only after the transaction
 * holding those events committed. Queries use their own read connection.
 * SIGTERM/SIGINT stop accepting, drain the queue, commit and exit 0;
 * SIGHUP reloads the configuration (a bad file is rejected, the old kept).
 */
#ifndef FR_AGENT_DAEMON_H
#define FR_AGENT_DAEMON_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent/config.h"
#include "agent/ingest.h"
#include "agent/metrics.h"
#include "agent/writer.h"
#include "redact/redact.h"
#include "retention/hot/store.h"
#include "retention/retention.h"

/* What a reload can change; shared read-only by request threads, refcounted. */
struct fr_live {
    int refs;                 /* under fr_agent.live_mu */
    struct fr_ingest_cfg cfg; /* limits, taxonomy, redactor, raw key */
    struct fr_taxonomy *tax;  /* owned */
    struct fr_redactor *red;  /* owned */
    unsigned char raw_key[FR_KEY_LEN];
    char *token;       /* "" = no auth */
    char *query_token; /* GET /v1/...; "" = token */
    int64_t runtime_pid;
    char *runtime_pidfile;
    int64_t runtime_interval_ms;
    bool runtime_self;
};

struct fr_http;
struct fr_sock;
struct fr_sampler;

struct fr_agent {
    struct fr_config conf;   /* as started: what needs a restart to change */
    char *config_path;       /* NULL: defaults and environment only */
    struct fr_store *store;  /* the writer's */
    struct fr_store *rstore; /* queries', under read_mu */
    pthread_mutex_t read_mu;
    struct fr_writer *writer;
    struct fr_metrics *metrics;
    pthread_mutex_t live_mu;
    struct fr_live *live;
    struct fr_http *http;
    struct fr_http *otlp; /* the OTLP port: the same server on otlp.listen */
    struct fr_sock *sock;
    struct fr_sampler *sampler;
    atomic_bool stopping;
    atomic_bool store_gone; /* the database file vanished: stop, exit 3 (restart starts anew) */
    pthread_mutex_t commit_mu;
    char commit_error[sizeof((struct fr_err *)0)->msg]; /* the last commit's failure; "" after a
                                                        success */
    int64_t commit_error_ms;                            /* when it happened */
    char *policy_id; /* of the current policy, recorded in the store */
    struct fr_retention_policy retention;
    unsigned char cold_key[FR_KEY_LEN];
    bool has_cold_key;
    struct fr_retention_job *retention_job;
    struct fr_triggers *triggers;
    struct fr_otlp_metrics_state *otlp_metrics;
};

/* The current live state, with a reference; release with fr_agent_live_put(). */
struct fr_live *fr_agent_live_get(struct fr_agent *a);
void fr_agent_live_put(struct fr_agent *a, struct fr_live *l);

/* Result of a submitted batch. */
struct fr_ack {
    int rc; /* FR_OK: durable; FR_E_BUSY: queue full, nothing queued; else the store failed */
    size_t duplicates;
    struct fr_err err;
};

/*
 * Queues recs[0, n) (moved: the caller's array is zeroed) and, unless the
 * queue was full (FR_E_BUSY with wait=false), waits until their transaction
 * committed or failed.
 */
void fr_agent_submit(struct fr_agent *a, struct fr_record *recs, size_t n, bool wait,
                     struct fr_ack *ack);

/* Counts a rejected line and lists it (at most 100) in errors as {"line","error"}. */
void fr_agent_reject(struct fr_agent *a, json_t *errors, uint64_t line, const struct fr_err *e);

/* /readyz: the store answers and the queue is below its high-water mark (90%). */
bool fr_agent_ready(struct fr_agent *a, char *why, size_t whylen);

/* Size of the database and its WAL in bytes. */
int64_t fr_agent_store_bytes(struct fr_agent *a);

/* Builds the live state from a configuration; err names what failed. */
int fr_agent_live_new(const struct fr_config *c, struct fr_live **out, struct fr_err *err);
void fr_agent_live_free(struct fr_live *l);

/* Runs the agent until SIGTERM/SIGINT; returns the process exit status. */
int fr_agent_run(const char *config_path);

/* Servers (agent/http.c, agent/sock.c, agent/sampler.c). */
int fr_http_start(struct fr_agent *a, const char *listen, struct fr_http **out, struct fr_err *err);
void fr_http_quiesce(struct fr_http *h); /* stop accepting new connections */
void fr_http_stop(struct fr_http *h);    /* finish in-flight requests, free */
int fr_http_port(const struct fr_http *h);

int fr_sock_start(struct fr_agent *a, struct fr_sock **out, struct fr_err *err);
void fr_sock_stop(struct fr_sock *s);

/* The retention job on the policy's schedule, with its own store connection (agent/jobs.c). */
struct fr_retention_job;
struct fr_retention_job *fr_retention_job_start(struct fr_agent *a);
void fr_retention_job_stop(struct fr_retention_job *j);

struct fr_sampler *fr_sampler_start(struct fr_agent *a);
void fr_sampler_stop(struct fr_sampler *s);

#endif
