/*
 * bench/stagebench.c - fr-stagebench FILE DB: the ingest path taken apart,
 * so a regression points at its stage. The events of FILE (NDJSON) go
 * through each stage in turn, 2000 at a time, each stage timed on this
 * thread's CPU clock over the whole chunk:
 *   parse    wire parse and validation (fr_wire_parse)
 *   collect  the collectors' check, normalization, the stored record
 *            (serialized again only when redaction changed the event)
 *   redact   the default policy (fr_redact_event)
 *   store    the batch's transaction in the hot store DB (fr_ingest_commit:
 *            event rows, conversation index, turns, timeline, rollups)
 * and prints microseconds per event for each, with its share.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ingest.h"
#include "bench/stagecommon.h"
#include "collectors/collector.h"
#include "collectors/taxonomy.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/wire.h"
#include "redact/redact.h"
#include "retention/hot/store.h"

#define CHUNK 2000

int
main(int argc, char **argv)
{
    FILE *in;
    struct fr_err err = {0};
    struct fr_redactor *red;
    struct fr_taxonomy *tax;
    struct fr_store *st;
    int rc =
        fr_bench_stages_open(argc, argv, "fr-stagebench", "EVENTS.ndjson", &in, &red, &tax, &st);
    if (rc != 0)
        return rc;
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, red);
    char **lines = fr_calloc(CHUNK, sizeof *lines);
    size_t *lens = fr_calloc(CHUNK, sizeof *lens);
    struct fr_event *ev = fr_calloc(CHUNK, sizeof *ev);
    bool *ok = fr_calloc(CHUNK, sizeof *ok), *changed = fr_calloc(CHUNK, sizeof *changed);
    struct fr_record *rec = fr_calloc(CHUNK, sizeof *rec);
    double t_parse = 0, t_collect = 0, t_redact = 0, t_store = 0;
    size_t total = 0, stored = 0;
    char *line = NULL;
    size_t cap = 0;
    for (bool more = true; more;) {
        size_t n = 0;
        ssize_t len;
        while (n < CHUNK && (len = getline(&line, &cap, in)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
            lines[n] = fr_strndup(line, (size_t)len);
            lens[n++] = (size_t)len;
        }
        more = n == CHUNK;
        double t0 = fr_bench_cpu_s();
        memset(ev, 0, n * sizeof *ev);
        for (size_t i = 0; i < n; i++)
            ok[i] = fr_wire_parse(lines[i], lens[i], &lim, &ev[i], NULL) == FR_OK;
        double t1 = fr_bench_cpu_s();
        for (size_t i = 0; i < n; i++)
            ok[i] = ok[i] && fr_collect_check(&ev[i], NULL) == FR_OK;
        double t2 = fr_bench_cpu_s();
        for (size_t i = 0; i < n; i++)
            ok[i] = ok[i] &&
                    fr_redact_event(red, &ev[i], &counts, NULL, NULL, &changed[i], NULL) == FR_OK;
        double t3 = fr_bench_cpu_s();
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (ok[i] && fr_collect_normalize(&ev[i], tax, NULL) == FR_OK) {
                if (changed[i]) {
                    size_t bl;
                    char *body = fr_wire_dump(&ev[i], &bl);
                    fr_record_from_event(&rec[m], &ev[i], body, bl);
                    free(body);
                } else {
                    fr_record_from_event(&rec[m], &ev[i], lines[i], lens[i]);
                }
                fr_collect_derive(&rec[m]);
                memcpy(rec[m].policy, fr_policy_id(fr_redactor_policy(red)), sizeof rec[m].policy);
                m++;
            }
            if (ev[i].root != NULL)
                fr_event_clear(&ev[i]);
        }
        double t4 = fr_bench_cpu_s();
        if (m > 0 && fr_ingest_commit(st, rec, m, fr_now_ms(), NULL, &err) != FR_OK) {
            fprintf(stderr, "fr-stagebench: %s\n", err.msg);
            return 1;
        }
        double t5 = fr_bench_cpu_s();
        t_parse += t1 - t0;
        t_collect += (t2 - t1) + (t4 - t3);
        t_redact += t3 - t2;
        t_store += t5 - t4;
        for (size_t i = 0; i < m; i++)
            fr_record_clear(&rec[i]);
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
        total += n;
        stored += m;
    }
    double all = t_parse + t_collect + t_redact + t_store, us = 1e6 / (double)(total ? total : 1);
    printf("stages (%zu events, %zu stored; CPU microseconds per event, share):\n", total, stored);
    printf("  parse    %6.2f  %4.1f%%\n", t_parse * us, 100 * t_parse / all);
    printf("  collect  %6.2f  %4.1f%%\n", t_collect * us, 100 * t_collect / all);
    printf("  redact   %6.2f  %4.1f%%\n", t_redact * us, 100 * t_redact / all);
    printf("  store    %6.2f  %4.1f%%\n", t_store * us, 100 * t_store / all);
    printf("  total    %6.2f  (%.0f events/s on one core)\n", all * us, (double)total / all);
    free(line);
    fclose(in);
    free(lines);
    free(lens);
    free(ev);
    free(ok);
    free(changed);
    free(rec);
    fr_redact_counts_free(&counts);
    fr_bench_stages_close(red, tax, st);
    return 0;
}
