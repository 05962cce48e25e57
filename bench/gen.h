/*
 * bench/gen.h - deterministic generator of realistic wire-format events.
 *
 * The same options always give the same bytes. The mix follows a chat
 * server's life: several conversations interleaved in time, each with a
 * websocket connect, turns (draft, middleware steps, provider calls, tool
 * calls, SEM frames, a timeline upsert, final), HTTP requests, process
 * runtime samples, and failures at realistic rates (rate limits, context
 * length, tool timeouts, abnormal websocket closes, a rare panic).
 */
#ifndef FR_BENCH_GEN_H
#define FR_BENCH_GEN_H

#include <stdint.h>
#include <stdio.h>

struct fr_gen_opts {
    uint64_t seed;      /* same seed, same output */
    uint64_t events;    /* exact number of lines written */
    int concurrency;    /* conversations open at once (default 8) */
    int64_t base_ms;    /* ts_ms of the first event */
    const char *prefix; /* conversation id prefix (default "c") */
    int sensitive_pct;  /* user messages carrying a secret or personal datum (default 0) */
    int hard;           /* high-entropy ids and varied free text (a large vocabulary) */
    /* free text taken from this file of prose instead of made up: its words in order, each
       passage once (from the start again at its end); NULL: made-up words */
    const char *text_path;
    int history; /* a provider call's request carries its conversation's earlier messages */
};

void fr_gen_opts_default(struct fr_gen_opts *o);

/* Writes o->events NDJSON lines to out. Returns 0, or -1 on a write error or when
   o->text_path cannot be read or holds no words (said on stderr). */
int fr_gen_write(FILE *out, const struct fr_gen_opts *o);

#endif
