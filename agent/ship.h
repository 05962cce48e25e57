/*
 * agent/ship.h - the shipper: every committed event of the hot store, in
 * insertion order, into the fleet store named by ship.url (agent/ship.c).
 */
#ifndef FR_AGENT_SHIP_H
#define FR_AGENT_SHIP_H

#include "agent/pipeline.h"

struct fr_shipper;

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
