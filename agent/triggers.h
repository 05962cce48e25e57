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

/* Loads the rules file and the upload configuration c names, as the agent does at start, and
   lets them go (`flightrec config check`). */
int fr_triggers_check(const struct fr_config *c, struct fr_err *err);

/* Feeds committed records (writer thread; cheap: firing hands off to a worker). */
void fr_triggers_observe(struct fr_triggers *t, const struct fr_record *recs, size_t n);

struct fr_bundle_select;
struct fr_bundle_info;
/*
 * Builds one signed bundle of sel in incident.bundle_dir, named
 * incident-<rule>-<label>-<ms>.tar.zst (label made safe as a file name);
 * makes the signing key on first use. *out_path (allocated) is its path.
 */
int fr_incident_bundle(struct fr_pipeline *pl, const char *rule, const char *label,
                       const struct fr_bundle_select *sel, char **out_path,
                       struct fr_bundle_info *info, struct fr_err *err);

/* Builds the bundles of rules that already fired, then stops the worker. */
void fr_triggers_stop(struct fr_triggers *t);

#endif
