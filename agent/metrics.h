/*
 * agent/metrics.h - the agent's counters, gauges and histograms, rendered
 * in the Prometheus text exposition format for GET /metrics.
 *
 * Families with labels taken from the data (provider, model, tool, error
 * code, HTTP route) are bounded: past FR_METRICS_MAX_SERIES label sets a
 * family counts new ones under the label value "_other", so a producer
 * cannot blow up the agent's memory or a scraper's.
 */
#ifndef FR_AGENT_METRICS_H
#define FR_AGENT_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

#define FR_METRICS_MAX_SERIES 200

struct fr_metrics;
struct fr_redactor;
struct fr_redact_counts;
struct fr_store_wal_stats;

struct fr_metrics *fr_metrics_new(void);
void fr_metrics_free(struct fr_metrics *m);

/* Lines received from a source ("http", "socket", "runtime"). */
void fr_metrics_received(struct fr_metrics *m, const char *source, uint64_t n);
/* OTLP metric points folded into provider/model "other" past the series cap. */
void fr_metrics_otel_overflow(struct fr_metrics *m, uint64_t n);
/* OTLP requests refused whole, or items refused inside an accepted one, by signal and reason. */
void fr_metrics_otlp_rejected(struct fr_metrics *m, const char *signal, const char *reason,
                              uint64_t n);
/* n accepted events that lack an envelope field but have a key that meant it (or an error event
   its error), by the field. */
void fr_metrics_misnamed(struct fr_metrics *m, const char *field, uint64_t n);
/* A rejected line, by reason (fr_rc_name of its error). */
void fr_metrics_rejected(struct fr_metrics *m, int rc);
/* An HTTP answer by status code. */
void fr_metrics_http(struct fr_metrics *m, int status);
/* An ingest request's time in one phase ("admission", "prepare", "commit"; fr_pipeline). */
void fr_metrics_ingest_phase(struct fr_metrics *m, const char *phase, double seconds);
/* The committed records of one transaction (writer thread), and its duration. */
void fr_metrics_committed(struct fr_metrics *m, const struct fr_record *recs, size_t n, int rc,
                          double seconds);
/* Adds a thread's redaction counters (names from r). */
void fr_metrics_redaction(struct fr_metrics *m, const struct fr_redactor *r,
                          const struct fr_redact_counts *c);
/* Runtime sampler: one sample taken of target ("watched" or "self"), or a failed attempt. */
void fr_metrics_sample(struct fr_metrics *m, const char *target, int pid, bool ok);

/* Incident bundles: a trigger outcome ("fired", "cooldown", "rate_limited"),
 * a bundle built (or failed), uploads sent / failed. */
void fr_metrics_trigger(struct fr_metrics *m, const char *rule, const char *outcome);
void fr_metrics_bundle(struct fr_metrics *m, const char *rule, bool ok);
struct fr_outbox_stats;
void fr_metrics_uploads(struct fr_metrics *m, const struct fr_outbox_stats *st);

/* What the shipper (agent/ship.c) reports, read by /readyz and /metrics; under mu. */
struct fr_ship_state {
    pthread_mutex_t mu;
    bool enabled;     /* ship.url is set */
    bool up;          /* the last attempt reached the fleet store */
    int64_t lag_ms;   /* age of the oldest committed event not yet shipped; 0 = caught up */
    int64_t shipped;  /* events the fleet store took as new */
    int64_t batches;  /* batches committed there */
    int64_t failures; /* attempts that failed (unreachable, refused) */
    char error[256];  /* the last failure, "" after a success */
};

/* The archive bucket as the retention job last found it (bucket.url, docs/fleet.md). */
struct fr_bucket_state {
    pthread_mutex_t mu;
    bool enabled;     /* the retention policy names a bucket and the agent runs retention */
    bool up;          /* the last sync reached it and uploaded everything due */
    int64_t uploads;  /* objects PUT */
    int64_t failures; /* syncs that failed */
    int64_t evicted;  /* local copies removed (the bucket holds them) */
    int64_t remote;   /* segments held only in the bucket after the last sync */
    int64_t pending;  /* segments not in the bucket yet (kept locally) */
    char error[512];  /* the last failure, "" after a success */
};

/* The agent's retention job as it last ran (the console's Health view, /metrics). */
struct fr_retention_state {
    pthread_mutex_t mu;
    int64_t runs, failures;
    int64_t disk_runs;             /* of them, run for room on the disk (hot.min_free_percent) */
    char disk_low[160];            /* while the disk is under that floor, what /readyz says */
    int64_t last_ms;               /* when the last run ended; 0: none yet */
    bool last_ok;                  /* it finished without an error */
    int64_t segments[2], bytes[2]; /* warm [0] and cold [1], from the manifest after it */
};

/* Gauges read at scrape time. */
struct fr_metrics_gauges {
    size_t queue_events, queue_capacity;
    int64_t store_bytes;
    int64_t disk_free_bytes, disk_bytes; /* the file system holding the hot store; 0: unknown */
    int ready;
    size_t outbox;                    /* bundles waiting for upload */
    size_t bad_segments;              /* archive segments marked bad */
    size_t inflight_bytes;            /* HTTP request bodies held now */
    size_t queue_waiting;             /* HTTP requests waiting at their headers for queue room */
    const struct fr_ship_state *ship; /* NULL: not rendered */
    const struct fr_bucket_state *bucket;       /* NULL: not rendered */
    const struct fr_retention_state *retention; /* NULL or no run yet: not rendered */
    const struct fr_store_wal_stats *wal;       /* NULL: not rendered */
};

/* Renders everything; caller frees. *len gets the length. */
char *fr_metrics_render(struct fr_metrics *m, const struct fr_metrics_gauges *g, size_t *len);

/* Highest queue depth seen; updated by fr_metrics_queue(). */
void fr_metrics_queue(struct fr_metrics *m, size_t depth);

#endif
