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

/* Closes every connection; none may be taken. fr_readers_close(NULL) does nothing. */
void fr_readers_close(struct fr_readers *r);

#endif
