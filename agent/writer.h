/*
 * agent/writer.h - the single writer that owns the hot store.
 *
 * Sources (the ingest command, HTTP and socket servers) prepare records on
 * their own threads and submit them as batches. One writer thread takes
 * every batch queued so far (up to max_txn_events) and commits them in one
 * transaction (group commit), then calls each batch's done() callback: from
 * that moment, and not before, the batch's events are durable and may be
 * acknowledged. When the writer is busy (a batch will wait for it),
 * submitting also does, on the submitter's thread, the part of the store's
 * work that needs no transaction (fr_store_pack: the bodies compressed), so
 * that the one writer thread does less per event; when it is idle, it does
 * that itself. That thread is named "fr-writer" (top -H,
 * /proc/PID/task/TID/comm).
 *
 * The queue is bounded in events: fr_writer_submit() either waits for room
 * or, with wait=false, returns FR_E_BUSY so a server can answer 429 and a
 * stream can stop reading (backpressure). Nothing is ever dropped silently.
 */
#ifndef FR_AGENT_WRITER_H
#define FR_AGENT_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/ingest.h"
#include "retention/hot/store.h"

struct fr_batch {
    struct fr_record *recs; /* owned by the batch; cleared by the writer after commit, unless: */
    size_t n;
    /* the records are left to the producer to clear after done() (a producer that waits for
       its commit frees on its own thread what it allocated: frees of another thread's
       allocations cost the writer, the slower side, ~5% of its time) */
    bool keep_records;
    const struct fr_trace_link *links; /* borrowed until done(): learned with the records */
    size_t nlinks;
    /* result, valid in done() */
    int rc;            /* FR_OK when every record is durable */
    size_t duplicates; /* records already stored (acknowledged, not stored twice) */
    size_t erased;     /* records of erased conversations (acknowledged, refused: not stored) */
    struct fr_err err;
    /* completion: called on the writer thread; may free the batch */
    void (*done)(struct fr_batch *b, void *ud);
    void *ud;
    struct fr_batch *next; /* queue link, owned by the writer */
};

struct fr_writer;

/*
 * Starts the writer thread on st (borrowed; must outlive the writer).
 * max_queued_events bounds the queue; max_txn_events bounds one transaction.
 */
struct fr_writer *fr_writer_new(struct fr_store *st, size_t max_queued_events,
                                size_t max_txn_events);

/*
 * Queues b. With wait, blocks until there is room; without, returns
 * FR_E_BUSY when the queue is full. A batch larger than the whole queue is
 * FR_E_LIMIT: it could never fit, and admitting it would let one request
 * hold more memory than the queue bounds.
 */
int fr_writer_submit(struct fr_writer *w, struct fr_batch *b, bool wait);

/*
 * Admission before the work: reserves room for n events that are still to
 * be prepared (parsed, redacted), with the same results as
 * fr_writer_submit(). A source that reserved either submits the prepared
 * batch (b->n <= n) with fr_writer_submit_reserved(), which gives back what
 * it did not use, or gives the whole reservation back with
 * fr_writer_unreserve().
 */
int fr_writer_reserve(struct fr_writer *w, size_t n, bool wait);
void fr_writer_submit_reserved(struct fr_writer *w, struct fr_batch *b, size_t reserved);
void fr_writer_unreserve(struct fr_writer *w, size_t n);
/*
 * fr_writer_reserve() waiting at most wait_s seconds for room: FR_OK (n
 * reserved), FR_E_BUSY (still no room) or FR_E_LIMIT (n > the queue). n 0
 * waits for room for one event and reserves nothing.
 */
int fr_writer_reserve_within(struct fr_writer *w, size_t n, double wait_s);
/*
 * A reservation of had events made n, without waiting: FR_OK, or
 * FR_E_BUSY / FR_E_LIMIT with the whole reservation given back. had may be 0.
 */
int fr_writer_rereserve(struct fr_writer *w, size_t had, size_t n);

/*
 * A writer started without a store (st NULL: the agent started on a full
 * disk, reads only) calls reopen on its thread before a commit, at most
 * once a second, until it returns FR_OK with a store (owned by the caller,
 * which closes it after fr_writer_free); until then every batch fails with
 * reopen's reason. Set before the first submit.
 */
typedef int (*fr_writer_reopen)(void *ud, struct fr_store **st, struct fr_err *err);
void fr_writer_set_reopen(struct fr_writer *w, fr_writer_reopen fn, void *ud);

/*
 * Called on the writer thread after every transaction, before the batches'
 * done(): its records (borrowed), the result and how long the commit took.
 * Set before the first submit.
 */
typedef void (*fr_writer_observer)(void *ud, const struct fr_record *recs, size_t n, int rc,
                                   const struct fr_err *err, double seconds);
void fr_writer_observe(struct fr_writer *w, fr_writer_observer fn, void *ud);

/*
 * How many producers are preparing a batch right now (they will submit it in
 * a moment): a transaction of few events waits at most wait_ms for theirs
 * (the agent: FR_WRITER_GATHER_MS), so that requests of one event each share
 * a transaction (and its WAL pages, ~12 for one event) instead of committing
 * one by one. Called on the writer thread under its lock: must not block.
 * Set before the first submit.
 */
typedef size_t (*fr_writer_preparing)(void *ud);
void fr_writer_set_preparing(struct fr_writer *w, fr_writer_preparing fn, void *ud, int wait_ms);
#define FR_WRITER_GATHER_MS 1
/*
 * A transaction of few events waits up to ms (0: not at all) for more, from
 * any producer, before it commits (storage.commit_delay_ms): fewer, larger
 * transactions for producers that send events one at a time, for that much
 * more ack latency. Set before the first submit.
 */
void fr_writer_set_commit_delay(struct fr_writer *w, int ms);

/* Events queued and not yet committed (for readiness and metrics). */
size_t fr_writer_queued(struct fr_writer *w);

/* The store's WAL checkpoints as of the latest commit (for metrics). */
void fr_writer_wal_stats(struct fr_writer *w, struct fr_store_wal_stats *out);

/* Commits everything queued, stops the thread and frees w. */
void fr_writer_free(struct fr_writer *w);

#endif
