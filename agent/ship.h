/*
 * agent/ship.h - the shipper: every committed event of the hot store, in
 * insertion order, into the fleet store named by ship.url (agent/ship.c).
 */
#ifndef FR_AGENT_SHIP_H
#define FR_AGENT_SHIP_H

#include "agent/pipeline.h"

#include "retention/hot/store.h"

struct fr_shipper;

/* What one batch did. */
struct fr_ship_batch {
    size_t rows;            /* read from the hot store and sent */
    int64_t inserted;       /* of those, new to the fleet store */
    int64_t first_ingested; /* ingested_ms of the first row sent (0: none) */
    int64_t last_ingested;  /* and of the last */
};

/*
 * Ships up to limit rows of local after *cursor to central (host names
 * this sidecar, source its store id: fr_store_id) in one fleet-store
 * transaction and moves *cursor; nothing is moved on failure (the batch is
 * dropped: fr_store_rollback). The agent's shipper and `flightrec ship` run this.
 */
int fr_ship_batch(struct fr_store *local, struct fr_store *central, const char *source,
                  const char *host, int limit, int64_t *cursor, struct fr_ship_batch *out,
                  struct fr_err *err);

/*
 * Starts the shipping thread (pl borrowed until fr_shipper_stop()); it
 * reports into pl->ship. NULL when ship.url is "" or the thread cannot
 * start (logged).
 */
struct fr_shipper *fr_shipper_start(struct fr_pipeline *pl);

/* Ends a batch in progress (it is shipped again next time, never twice in effect), stops,
   frees s (NULL: nothing). */
void fr_shipper_stop(struct fr_shipper *s);

#endif
