/*
 * bench/stagecommon.h - what fr-stagebench and fr-otlpstagebench share: the
 * thread's CPU clock and the stages' set-up (the default redaction policy
 * with a fixed key, the built-in taxonomy, a fresh hot store).
 */
#ifndef FR_BENCH_STAGECOMMON_H
#define FR_BENCH_STAGECOMMON_H

#include <stdio.h>

#include "collectors/taxonomy.h"
#include "redact/redact.h"
#include "retention/hot/store.h"

/* This thread's CPU time in seconds. */
double fr_bench_cpu_s(void);

/* `prog INPUT NEW.db` (input names what INPUT holds, for the usage line): INPUT opened as
   *in, the default policy's redactor, the built-in taxonomy and the store at NEW.db
   (created). 0, or the exit code after saying why. */
int fr_bench_stages_open(int argc, char **argv, const char *prog, const char *input, FILE **in,
                         struct fr_redactor **red, struct fr_taxonomy **tax, struct fr_store **st);

void fr_bench_stages_close(struct fr_redactor *red, struct fr_taxonomy *tax, struct fr_store *st);

#endif
