/*
 * bench/otlpstagebench.c - fr-otlpstagebench REQUESTS.json DB: the OTLP
 * traces path taken apart, as fr-stagebench takes /v1/events apart. Each
 * line of REQUESTS.json is an ExportTraceServiceRequest in OTLP JSON (as
 * fr-otlpgen writes them); it is encoded as protobuf (bench/otlppb.c, as an
 * SDK's proto exporter would send it), then goes through each stage of the
 * receiver in turn, timed on this thread's CPU clock:
 *   decode   protobuf to the tree the mapping reads (fr_otlp_pb_decode)
 *   map      spans to envelopes (fr_otlp_traces)
 *   prepare  each envelope validated, collected, redacted and serialized
 *            (fr_ingest_prepare_tree: the /v1/events path's parse, collect
 *            and redact stages on a tree instead of a line)
 *   store    the requests' transaction in the hot store DB, with the trace
 *            links they named (fr_ingest_commit_linked), once 2000 events are
 *            prepared, as fr-stagebench commits (and the agent's writer
 *            groups the requests waiting for it)
 * and prints microseconds per span for each, with its share, and how much
 * of the request's JSON region the tree took (a region that spills goes to
 * malloc for the rest).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/ingest.h"
#include "agent/otlp/map.h"
#include "agent/otlp/proto.h"
#include "bench/otlppb.h"
#include "bench/stagecommon.h"
#include "core/jsonmem.h"
#include "core/mem.h"
#include "core/timeutil.h"

#define CHUNK 2000 /* events a transaction holds, as fr-stagebench's */

int
main(int argc, char **argv)
{
    FILE *in;
    struct fr_err err = {0};
    struct fr_taxonomy *tax;
    struct fr_store *st;
    struct fr_ingest_cfg cfg = {0};
    fr_wire_limits_default(&cfg.lim);
    int rc = fr_bench_stages_open(argc, argv, "fr-otlpstagebench", "REQUESTS.json", &in, &cfg.red,
                                  &tax, &st);
    if (rc != 0)
        return rc;
    cfg.tax = tax;
    struct fr_config conf; /* the agent's default attributes naming conversations and turns */
    fr_config_defaults(&conf);
    struct fr_otlp_opts o = {conf.otlp_conversation_attributes, conf.otlp_turn_attributes,
                             fr_otlp_failures_new()};
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, cfg.red);
    double t_decode = 0, t_map = 0, t_prepare = 0, t_store = 0;
    size_t spans_seen = 0, stored = 0, requests = 0, pb_bytes = 0, region_max = 0;
    /* what is prepared, committed once it holds CHUNK events (and at the end) */
    struct fr_record *recs = NULL;
    struct fr_trace_link *links = NULL;
    size_t m = 0, m_cap = 0, nl = 0, nl_cap = 0;
    /* every request encoded first: the JSON trees this makes and frees would leave the heap's
       free lists full for the stages to pay for (malloc_consolidate) */
    uint8_t **pbs = NULL;
    size_t *pb_lens = NULL, nreq = 0, req_cap = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        json_error_t jerr;
        json_t *req = json_loadb(line, (size_t)len, 0, &jerr);
        if (req == NULL) {
            fprintf(stderr, "fr-otlpstagebench: line %zu: %s\n", nreq + 1, jerr.text);
            return 1;
        }
        if (nreq == req_cap) {
            req_cap = req_cap ? 2 * req_cap : 64;
            pbs = fr_realloc(pbs, req_cap * sizeof *pbs);
            pb_lens = fr_realloc(pb_lens, req_cap * sizeof *pb_lens);
        }
        pbs[nreq] = fr_bench_otlp_pb(req, &pb_lens[nreq]);
        nreq++;
        json_decref(req);
    }
    free(line);
    fclose(in);
    for (size_t r = 0; r <= nreq; r++) {
        if (r < nreq) {
            const uint8_t *pb = pbs[r];
            size_t pn = pb_lens[r];
            char why[300];
            double t0 = fr_bench_cpu_s();
            fr_json_region_begin(); /* as fr_otlp_ingest_body */
            json_t *tree = fr_otlp_pb_decode(FR_OTLP_TRACES, pb, pn, why, sizeof why);
            if (tree == NULL) {
                fprintf(stderr, "fr-otlpstagebench: request %zu: %s\n", requests + 1, why);
                return 1;
            }
            double t1 = fr_bench_cpu_s();
            json_t *envs = json_array(), *named = json_object();
            size_t spans = 0, rejected = 0;
            if (fr_otlp_traces(tree, &o, envs, named, &spans, &rejected) != FR_OK) {
                fprintf(stderr, "fr-otlpstagebench: request %zu: not a traces request\n",
                        requests + 1);
                return 1;
            }
            double t2 = fr_bench_cpu_s();
            size_t i;
            json_t *ev;
            if (m + json_array_size(envs) > m_cap) {
                m_cap = 2 * (m + json_array_size(envs));
                recs = fr_realloc(recs, m_cap * sizeof *recs);
            }
            json_array_foreach(envs, i, ev)
            {
                bool part = json_object_get(ev, "_part") != NULL;
                json_object_del(ev, "_part");
                struct fr_err e = {0};
                memset(&recs[m], 0, sizeof recs[m]);
                if (fr_ingest_prepare_tree(json_incref(ev), &cfg, &counts, &recs[m], &e) == FR_OK)
                    recs[m++].part = part;
            }
            size_t used = fr_json_region_used();
            region_max = used > region_max ? used : region_max;
            if (nl + json_object_size(named) > nl_cap) {
                nl_cap = 2 * (nl + json_object_size(named));
                links = fr_realloc(links, nl_cap * sizeof *links);
            }
            const char *trace;
            json_t *conv;
            json_object_foreach(named, trace, conv)
            {
                links[nl].trace_id = fr_strdup(trace);
                links[nl++].conv_id = fr_strdup(json_string_value(conv));
            }
            fr_json_region_drop(envs);
            fr_json_region_drop(named);
            fr_json_region_drop(tree);
            fr_json_region_end();
            double t3 = fr_bench_cpu_s();
            t_decode += t1 - t0;
            t_map += t2 - t1;
            t_prepare += t3 - t2;
            spans_seen += spans;
            pb_bytes += pn;
            requests++;
            if (m < CHUNK)
                continue;
        }
        double t3 = fr_bench_cpu_s();
        if (m > 0 &&
            fr_ingest_commit_linked(st, recs, m, links, nl, fr_now_ms(), NULL, &err) != FR_OK) {
            fprintf(stderr, "fr-otlpstagebench: %s\n", err.msg);
            return 1;
        }
        t_store += fr_bench_cpu_s() - t3;
        for (size_t j = 0; j < m; j++)
            fr_record_clear(&recs[j]);
        for (size_t j = 0; j < nl; j++) {
            free((char *)links[j].trace_id);
            free((char *)links[j].conv_id);
        }
        stored += m;
        m = nl = 0;
    }
    for (size_t r = 0; r < nreq; r++)
        free(pbs[r]);
    free(pbs);
    free(pb_lens);
    free(recs);
    free(links);
    double all = t_decode + t_map + t_prepare + t_store,
           us = 1e6 / (double)(spans_seen ? spans_seen : 1);
    printf("otlp stages (%zu requests, %zu spans, %zu bytes each in protobuf, %zu events stored; "
           "CPU microseconds per span, share):\n",
           requests, spans_seen, pb_bytes / (spans_seen ? spans_seen : 1), stored);
    printf("  decode   %6.2f  %4.1f%%\n", t_decode * us, 100 * t_decode / all);
    printf("  map      %6.2f  %4.1f%%\n", t_map * us, 100 * t_map / all);
    printf("  prepare  %6.2f  %4.1f%%\n", t_prepare * us, 100 * t_prepare / all);
    printf("  store    %6.2f  %4.1f%%\n", t_store * us, 100 * t_store / all);
    printf("  total    %6.2f  (%.0f spans/s on one core; a request's tree took up to %zu KiB "
           "of its JSON region)\n",
           all * us, (double)spans_seen / all, region_max / 1024);
    fr_redact_counts_free(&counts);
    fr_otlp_failures_free(o.failures);
    fr_config_clear(&conf);
    fr_bench_stages_close(cfg.red, tax, st);
    return 0;
}
