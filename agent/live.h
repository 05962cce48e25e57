/*
 * agent/live.h - what a configuration reload (SIGHUP) can change without a
 * restart: ingest limits, taxonomy, redactor, tokens, the runtime sampler's
 * target. A `struct fr_live` is immutable once built and shared read-only
 * by every request thread under a reference count (fr_pipeline_live_get),
 * so a reload swaps it atomically and in-flight requests finish on the old.
 */
#ifndef FR_AGENT_LIVE_H
#define FR_AGENT_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/ingest.h"
#include "core/crypto.h"

struct fr_live {
    int refs;                 /* under the pipeline's live_mu */
    struct fr_ingest_cfg cfg; /* limits, taxonomy, redactor, raw key */
    struct fr_taxonomy *tax;  /* owned */
    struct fr_redactor *red;  /* owned */
    unsigned char raw_key[FR_KEY_LEN];
    char *token;       /* "" = no auth */
    char *query_token; /* GET /v1/...; "" = token */
    char *admin_token; /* DELETE /v1/conversations/ID; "" = erasure through the API is off */
    int64_t runtime_pid;
    char *runtime_pidfile;
    int64_t runtime_interval_ms;
    bool runtime_self;
    int64_t batch_events; /* socket batches (storage.batch_events) */
};

/* Builds the live state from a configuration (one reference); err names what failed. */
int fr_live_new(const struct fr_config *c, bool create_keys, struct fr_live **out,
                struct fr_err *err);

/* Frees l, whatever its reference count (the pipeline calls it on the last put). */
void fr_live_free(struct fr_live *l);

#endif
