/*
 * agent/triggers.h - automatic incident bundles and background uploads
 * (see triggers.c; the rule file format is in configs/triggers.yaml).
 */
#ifndef FR_AGENT_TRIGGERS_H
#define FR_AGENT_TRIGGERS_H

#include "agent/pipeline.h"

struct fr_triggers;

/* NULL with err unset when neither triggers nor uploads are configured. */
struct fr_triggers *fr_triggers_start(struct fr_pipeline *pl, struct fr_err *err);

/* Feeds committed records (writer thread; cheap: firing hands off to a worker). */
void fr_triggers_observe(struct fr_triggers *t, const struct fr_record *recs, size_t n);

/* Builds the bundles of rules that already fired, then stops the worker. */
void fr_triggers_stop(struct fr_triggers *t);

#endif
