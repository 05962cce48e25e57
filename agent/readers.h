/*
 * agent/readers.h - a small pool of read connections to the hot store.
 *
 * Query API requests, OTLP metric rollups and bundle reads each take a
 * connection for the length of one request, so a slow read (a cold
 * segment, a large conversation) holds up only itself, not every other
 * query. Readiness and /metrics never take one of these: the pipeline
 * keeps a separate health connection (fr_pipeline_ready), so a pool busy
 * with slow reads cannot fail a health probe.
 */
#ifndef FR_AGENT_READERS_H
#define FR_AGENT_READERS_H

#include <stdbool.h>
#include <stddef.h>

#include "retention/hot/store.h"

struct fr_readers;

/* Opens n (>= 1) connections to path with opts. Caller frees with fr_readers_close(). */
int fr_readers_open(const char *path, const struct fr_store_opts *opts, size_t n,
                    struct fr_readers **out, struct fr_err *err);

/* Waits for a free connection and takes it; give it back with fr_readers_release(). */
struct fr_store *fr_readers_acquire(struct fr_readers *r);
void fr_readers_release(struct fr_readers *r, struct fr_store *st);

/*
 * From now on each connection is opened again (path, opts) the next time
 * it is taken: the agent started on a full disk with read-only
 * connections, and space came back.
 */
void fr_readers_refresh(struct fr_readers *r, const char *path, const struct fr_store_opts *opts);

/*
 * A pool whose n connections are opened when first taken (a fleet store
 * that may be away when the agent starts): fr_readers_take() opens one if
 * needed and returns NULL with err when it cannot; fr_readers_give() with
 * broken (the read failed in the store) closes it, so the next take opens a
 * new one. Never fails to create the pool.
 */
struct fr_readers *fr_readers_open_lazy(const char *path, const struct fr_store_opts *opts,
                                        size_t n);
struct fr_store *fr_readers_take(struct fr_readers *r, struct fr_err *err);
void fr_readers_give(struct fr_readers *r, struct fr_store *st, bool broken);

/* Closes every connection; none may be taken. fr_readers_close(NULL) does nothing. */
void fr_readers_close(struct fr_readers *r);

#endif
