/*
 * agent/jobs.h - the retention job inside the agent (agent/jobs.c).
 */
#ifndef FR_AGENT_JOBS_H
#define FR_AGENT_JOBS_H

#include "agent/pipeline.h"
#include "retention/retention.h"

struct fr_retention_job;

/*
 * Every rp->interval_ms (CLOCK_MONOTONIC) runs the same job as `flightrec
 * retention run`, on its own store connection. pl and rp are borrowed until
 * fr_retention_job_stop(). NULL when the thread cannot start (logged).
 */
struct fr_retention_job *fr_retention_job_start(struct fr_pipeline *pl,
                                                const struct fr_retention_policy *rp);

/* Waits for a run in progress to finish, then stops and frees j (NULL: nothing). */
void fr_retention_job_stop(struct fr_retention_job *j);

#endif
