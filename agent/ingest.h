/*
 * agent/ingest.h - the ingest pipeline shared by every source (file/stdin
 * today, HTTP and the Unix socket later):
 *
 *     line --fr_ingest_prepare--> record --fr_ingest_commit--> hot store
 *          (wire parse, collector check,    (one transaction per batch;
 *           redaction, collector            durable when it returns FR_OK)
 *           normalize, stored body)
 *
 * Preparing is independent per line and may run on any thread; committing
 * is done by the single writer that owns the store.
 */
#ifndef FR_AGENT_INGEST_H
#define FR_AGENT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/event.h"
#include "core/wire.h"
#include "retention/hot/store.h"

struct fr_taxonomy;
struct fr_redactor;
struct fr_redact_counts;

/* What preparing a line needs; borrowed, shared by all threads (read-only). */
struct fr_ingest_cfg {
    struct fr_wire_limits lim;
    const struct fr_taxonomy *tax; /* NULL: no rules, every error is <class>.unknown */
    struct fr_redactor *red;       /* the redaction policy; required */
    const unsigned char *raw_key;  /* raw mode: seal the unredacted line; NULL = off */
};

/*
 * Parses and validates buf[0, len), redacts it, then normalizes the
 * redacted event into rec, a self-contained record (core/event.h) the
 * caller frees with fr_record_clear(). counts (may be NULL) adds up the
 * redaction hits; it belongs to the calling thread. On failure rec holds
 * nothing and err says which field and why.
 */
int fr_ingest_prepare(const char *buf, size_t len, const struct fr_ingest_cfg *cfg,
                      struct fr_redact_counts *counts, struct fr_record *rec, struct fr_err *err);

/*
 * The same for an already parsed envelope (one element of a JSON array
 * body); steals the reference to obj. The stored body is re-serialized.
 */
int fr_ingest_prepare_tree(json_t *obj, const struct fr_ingest_cfg *cfg,
                           struct fr_redact_counts *counts, struct fr_record *rec,
                           struct fr_err *err);

/*
 * Writes recs[0, n) in one transaction. On FR_OK every record is durable;
 * *duplicates (may be NULL) counts records already stored (same conv_id and
 * event_id), which are acknowledged but not stored twice. On failure nothing
 * of the batch is stored.
 */
int fr_ingest_commit(struct fr_store *st, struct fr_record *recs, size_t n, int64_t now_ms,
                     size_t *duplicates, struct fr_err *err);

/* A trace's conversation, learned from a span naming it (fr_store_link_trace). */
struct fr_trace_link {
    const char *trace_id, *conv_id;
};

/* fr_ingest_commit, with the trace links learned with the records, in the same transaction. */
int fr_ingest_commit_linked(struct fr_store *st, struct fr_record *recs, size_t n,
                            const struct fr_trace_link *links, size_t nlinks, int64_t now_ms,
                            size_t *duplicates, struct fr_err *err);

#endif
