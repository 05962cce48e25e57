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
    size_t links;           /* trace links sent */
    int64_t inserted;       /* of those, new to the fleet store */
    int64_t first_ingested; /* ingested_ms of the first row sent (0: none) */
    int64_t last_ingested;  /* and of the last */
};

/* Where shipping stands: the last row shipped (from the fleet store's cursor) and the
   trace links learned from then on that still have to go (0: all that are kept). */
struct fr_ship_pos {
    int64_t cursor;
    int64_t links_ms;
};

/*
 * Ships up to limit rows of local after pos->cursor, and the trace links it
 * learned since pos->links_ms, to central (host names this sidecar, source
 * its store id: fr_store_id) in one fleet-store transaction and moves pos;
 * nothing moves on failure (the batch is dropped: fr_store_rollback). The
 * agent's shipper and `flightrec ship` run this.
 */
int fr_ship_batch(struct fr_store *local, struct fr_store *central, const char *source,
                  const char *host, int limit, struct fr_ship_pos *pos, struct fr_ship_batch *out,
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
