/*
 * agent/pipeline.h - what a source is handed: the narrow door into the
 * agent's one-way flow (prepare on the source's thread -> writer thread ->
 * hot store), never the agent itself.
 *
 * A source (agent/source.h) reads its transport, turns bytes into prepared
 * records with the current live state (parse, collect, redact: see
 * agent/ingest.h), and submits them; the submit returns when the records
 * are durable, so the source acknowledges only what is committed. It
 * counts what it received and rejected through the metrics, and reads
 * the hot store through the pool of read connections.
 *
 *     struct fr_live *l = fr_pipeline_live_get(p);   current limits, redactor, tokens
 *     ... prepare records with l->cfg ...
 *     fr_pipeline_live_put(p, l);
 *     fr_pipeline_submit(p, recs, n, wait, &ack);    durable, or FR_E_BUSY (queue full)
 *
 * The daemon (agent/daemon.c) owns the pipeline, fills it at start and
 * swaps the live state on reload; everything here is thread-safe.
 */
#ifndef FR_AGENT_PIPELINE_H
#define FR_AGENT_PIPELINE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent/config.h"
#include "agent/live.h"
#include "agent/metrics.h"
#include "agent/readers.h"
#include "agent/writer.h"
#include "core/crypto.h"
#include "retention/segment.h"

struct fr_otlp_metrics_state;
struct fr_otlp_failures;

struct fr_pipeline {
    struct fr_config conf;    /* as started (owned): what needs a restart to change */
    struct fr_writer *writer; /* set by the daemon, which also frees it */
    struct fr_metrics *metrics;
    struct fr_readers *readers;       /* query connections (owned) */
    struct fr_readers *query_readers; /* with http.query_store: the fleet store's (owned) */
    struct fr_store *health; /* the readiness probe's own connection (owned), under health_mu */
    pthread_mutex_t health_mu;
    struct fr_archive_keys archive_keys;        /* cold and archive key files, loaded at start */
    struct fr_otlp_metrics_state *otlp_metrics; /* under otlp_mu (owned) */
    pthread_mutex_t otlp_mu;
    struct fr_otlp_failures *otlp_failures; /* recent failed calls, for OTLP steps (owned) */
    atomic_bool stopping;                   /* set when the agent stops: long waits end early */
    atomic_size_t http_inflight;            /* bytes of HTTP bodies and gRPC messages held now */
    atomic_size_t queue_waiting;            /* requests in fr_pipeline_admit's wait now */
    struct fr_ship_state ship;
    struct fr_bucket_state bucket;             /* written by the retention job */
    struct fr_retention_state retention_state; /* written by the retention job */

    /* private: use the functions below */
    pthread_mutex_t live_mu;
    struct fr_live *live;
    pthread_mutex_t commit_mu;
    char commit_error[sizeof((struct fr_err *)0)->msg]; /* the last commit's failure; "" after
                                                           a success */
    int64_t commit_error_ms;
    char paused[sizeof((struct fr_err *)0)->msg]; /* under commit_mu: why ingest is paused
                                                     (started on a full disk); "" when not */
    pthread_mutex_t prep_mu; /* requests being prepared now, at most prep_max */
    pthread_cond_t prep_cv;
    int prep_busy, prep_max;
    size_t prep_bytes;    /* their bodies' bytes, at most conf.prepare_bytes (or one request's) */
    int prep_queued;      /* requests waiting for bytes; later ones wait behind them */
    atomic_int preparing; /* prep_busy, for the writer to read without the lock */
    atomic_size_t body_bytes_per_event; /* recent bodies, as received (fr_pipeline_learn) */
    pthread_mutex_t misnamed_mu;        /* fr_pipeline_misnamed's warning, at most once a minute */
    double misnamed_said;               /* monotonic seconds; 0 = never */
    uint64_t misnamed_quiet;            /* events not said since */
};

/*
 * Preparing a request (parsing, redacting, building its records) takes one
 * of twice as many slots as the machine has processors, and its body's
 * bytes of ingest.prepare_bytes (a request alone always goes, whatever its
 * size): with many connections, or a few large bodies, the others wait
 * holding only their bodies, so memory and CPU go to the requests being
 * worked on, not to dozens of half-parsed ones. A request that waits for
 * bytes is not passed by later ones, so a stream of small requests cannot
 * keep a large one out. bytes: the body's as prepared (decompressed); the
 * same to fr_pipeline_prepare_end.
 */
void fr_pipeline_prepare_begin(struct fr_pipeline *p, size_t bytes);
void fr_pipeline_prepare_end(struct fr_pipeline *p, size_t bytes);
/* Requests being prepared now (between the two), for fr_writer_set_preparing (ud: the
   pipeline). */
size_t fr_pipeline_preparing(void *ud);

/* The calling thread at ingest.prepare_nice above its priority, once per thread: a thread
   that prepares received events yields the CPU to the writer (fr_pipeline_prepare_begin
   calls it; a source that prepares outside those slots calls it on its thread). */
void fr_pipeline_prepare_yield(const struct fr_pipeline *p);

/* Initializes locks and empties p; fr_pipeline_destroy() frees what p owns. */
void fr_pipeline_init(struct fr_pipeline *p);
void fr_pipeline_destroy(struct fr_pipeline *p);

/* The current live state, with a reference; give it back with fr_pipeline_live_put(). */
struct fr_live *fr_pipeline_live_get(struct fr_pipeline *p);
void fr_pipeline_live_put(struct fr_pipeline *p, struct fr_live *l);

/* Installs l (takes its reference) as the live state; the old one goes with its last user. */
void fr_pipeline_live_swap(struct fr_pipeline *p, struct fr_live *l);

/* The cold-tier key, or NULL when the retention policy names none. */
const struct fr_archive_keys *fr_pipeline_archive_keys(const struct fr_pipeline *p);

/* Result of a submitted batch. */
struct fr_ack {
    int rc; /* FR_OK: durable; FR_E_BUSY: queue full, nothing queued; FR_E_LIMIT: more
               events than the whole queue holds; else the store failed */
    size_t duplicates;
    size_t erased; /* events of erased conversations: refused, not stored */
    struct fr_err err;
};

/*
 * Queues recs[0, n) and, unless the queue was full (FR_E_BUSY with
 * wait=false), waits until their transaction committed or failed. The
 * records stay the caller's: it clears them after (fr_record_clear), on its
 * own thread, whether they were stored or not.
 */
struct fr_trace_link;
void fr_pipeline_submit(struct fr_pipeline *p, struct fr_record *recs, size_t n, bool wait,
                        struct fr_ack *ack);

/*
 * Admission before the work (see fr_writer_reserve): reserves queue room
 * for up to n events before they are parsed and redacted, so a request the
 * queue cannot hold costs nothing. FR_OK, or the refusal in ack (FR_E_BUSY
 * or FR_E_LIMIT, with the message to answer). After FR_OK, call
 * fr_pipeline_submit_reserved() exactly once with what was prepared (n may
 * be 0: the reservation is given back).
 */
int fr_pipeline_reserve(struct fr_pipeline *p, size_t n, bool wait, struct fr_ack *ack);
/*
 * Admission at a request's headers, before its body is read: waits up to
 * http.queue_wait for queue room for the events a body of body_bytes
 * probably holds (learned from the bodies counted so far, see
 * fr_pipeline_learn; at most an eighth of the queue; 0 bytes: room for one
 * event) and reserves them in
 * *reserved. FR_E_BUSY when there is none by then: answer 429 and drop the
 * body unread. While it waits, the body stays in the sender's socket (TCP
 * backpressure), so a full queue costs neither memory nor CPU. The
 * reservation is made exact with fr_pipeline_rereserve() once the body is
 * counted, or given back with fr_pipeline_unreserve().
 */
int fr_pipeline_admit(struct fr_pipeline *p, size_t body_bytes, size_t *reserved);
/* A body of bytes (as received) held n events: what fr_pipeline_admit() estimates from. */
void fr_pipeline_learn(struct fr_pipeline *p, size_t bytes, size_t n);
/* fr_pipeline_reserve() of n events for a request that holds had already (had may be 0). */
int fr_pipeline_rereserve(struct fr_pipeline *p, size_t had, size_t n, struct fr_ack *ack);
void fr_pipeline_unreserve(struct fr_pipeline *p, size_t n);
/*
 * Request bodies held at once, across connections and transports (HTTP
 * bodies, gRPC messages), bounded by http.max_inflight_bytes: counts n more
 * bytes in *held; false (nothing counted) when that would pass the bound,
 * unless the request holds all that is held now, so one request of any
 * allowed size always goes through. fr_pipeline_inflight_give() gives back
 * what *held counted (0 after).
 */
bool fr_pipeline_inflight_take(struct fr_pipeline *p, size_t *held, size_t n);
void fr_pipeline_inflight_give(struct fr_pipeline *p, size_t *held);
/* What a request refused by that bound is told (429; gRPC RESOURCE_EXHAUSTED). */
#define FR_PIPELINE_INFLIGHT_FULL                                                                  \
    "the agent holds http.max_inflight_bytes of request bodies already; nothing of this "          \
    "request was stored, retry"
void fr_pipeline_submit_reserved(struct fr_pipeline *p, struct fr_record *recs, size_t n,
                                 size_t reserved, struct fr_ack *ack);
/* The same with trace links learned with the records (committed with them, even when n is 0). */
void fr_pipeline_submit_linked(struct fr_pipeline *p, struct fr_record *recs, size_t n,
                               size_t reserved, const struct fr_trace_link *links, size_t nlinks,
                               struct fr_ack *ack);

/* Counts a rejected line and lists it (at most 100) in errors as {"line","error"}. */
void fr_pipeline_reject(struct fr_pipeline *p, json_t *errors, uint64_t line,
                        const struct fr_err *e);

/*
 * Accepted records that lack an envelope field but carry a key that most
 * likely meant it (core/wire.h: fr_wire_alias), or an error event its error:
 * counted by field (flightrec_events_misnamed_total), said at warn at most
 * once a minute per agent, naming source, and listed (at most 100) in
 * *warnings as {"line","warning"} (the array made at the first one, so a
 * request without any allocates nothing). Returns how many there are.
 */
size_t fr_pipeline_misnamed(struct fr_pipeline *p, const char *source, const struct fr_record *recs,
                            size_t n, json_t **warnings);

/* Records the result of a commit, for readiness (called on the writer thread). */
void fr_pipeline_commit_result(struct fr_pipeline *p, int rc, const struct fr_err *err);

/*
 * Ingest paused (why != NULL) or resumed (NULL): the agent started without
 * a writable store and serves reads and health; /readyz says why.
 */
void fr_pipeline_set_paused(struct fr_pipeline *p, const char *why);

/* /readyz: the store answers and the queue is below its high-water mark (90%). */
bool fr_pipeline_ready(struct fr_pipeline *p, char *why, size_t whylen);

/*
 * Archive segments marked bad (the agent's verification pass, archive
 * verify, or a retention run that could not read one): how many and, in
 * detail, the first few by name with why ("" when none).
 */
size_t fr_pipeline_bad_segments(struct fr_pipeline *p, char *detail, size_t len);

/* Size of the database and its WAL in bytes. */
int64_t fr_pipeline_store_bytes(const struct fr_pipeline *p);

#endif
