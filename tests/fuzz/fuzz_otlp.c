/*
 * Fuzzes the OTLP receiver's mapping (agent/otlp.c): the first byte picks
 * traces, logs or metrics, the rest is the JSON request; every envelope it
 * yields goes through the ingest pipeline (validation, redaction,
 * collectors), and metrics through the cumulative-to-delta state. Under
 * UBSan this also checks every number conversion (huge, negative, NaN).
 * A traces or logs request is also read out in parts of 2 items, as large
 * ones are (fr_otlp_pb_part, fr_json_fast_parts_next): the parts must hold
 * the items of the request read whole, in order, each under the same
 * resource and scope members.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>

#include "agent/ingest.h"
#include "agent/otlp/map.h"
#include "agent/otlp/proto.h"
#include "collectors/taxonomy.h"
#include "core/jsonfast.h"
#include "redact/redact.h"
#include "tests/fuzz/fuzz.h"

static struct fr_ingest_cfg cfg;
static struct fr_otlp_metrics_state *mstate;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_ingest_cfg(&cfg, 0);
    mstate = fr_otlp_metrics_state_new();
    return 0;
}

static int
take(void *ud, const struct fr_otlp_rollup *r)
{
    (void)ud;
    /* the deltas are plain integers: touching them is what UBSan checks */
    return r->calls < 0 || r->input_tokens < 0 || r->lat_sum_ms < 0 ? 1 : 0;
}

static const char *const keys[2][3] = {{"resourceSpans", "scopeSpans", "spans"},
                                       {"resourceLogs", "scopeLogs", "logRecords"}};

/* Appends to out, for each item of req, [outer without its middle list, middle without its
   inner list, item] (copies). */
static void
triples(const json_t *req, const char *const k[3], json_t *out)
{
    size_t i, j, n;
    json_t *r, *m, *it;
    json_array_foreach(json_object_get(req, k[0]), i, r)
    {
        json_t *rc = json_deep_copy(r);
        json_object_del(rc, k[1]);
        json_array_foreach(json_object_get(r, k[1]), j, m)
        {
            json_t *mc = json_deep_copy(m);
            json_object_del(mc, k[2]);
            json_array_foreach(json_object_get(m, k[2]), n, it)
                json_array_append_new(out, json_pack("[OOO]", rc, mc, it));
            json_decref(mc);
        }
        json_decref(rc);
    }
}

/* The parts of a traces or logs request (sig 0 or 1) agree with the request read whole. */
static void
parts_agree(int sig, bool pb, const uint8_t *body, size_t len)
{
    char why[200];
    json_t *whole = pb ? fr_otlp_pb_decode((enum fr_otlp_signal)sig, body, len, why, sizeof why)
                       : json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    struct fr_otlp_pb_parts *pp =
        pb ? fr_otlp_pb_open((enum fr_otlp_signal)sig, body, len, why, sizeof why) : NULL;
    struct fr_json_fast_parts *jp =
        pb ? NULL
           : fr_json_fast_parts_open((const char *)body, len, keys[sig][0], keys[sig][1],
                                     keys[sig][2]);
    if (pb && (pp == NULL) != (whole == NULL))
        abort(); /* unpacked whole and not in parts, or the other way round */
    json_t *got = json_array(), *want = json_array();
    int bad = 0;
    for (json_t *part; (pp != NULL || jp != NULL) && !bad;) {
        part = pp != NULL ? fr_otlp_pb_part(pp, 2) : fr_json_fast_parts_next(jp, 2, &bad);
        if (part == NULL)
            break;
        triples(part, keys[sig], got);
        json_decref(part);
    }
    if (whole != NULL && (pp != NULL || (jp != NULL && !bad))) {
        triples(whole, keys[sig], want);
        if (!json_equal(got, want))
            abort(); /* the parts lost, added, reordered or changed an item */
    }
    if (jp != NULL && bad && whole != NULL)
        abort(); /* a part refused what jansson reads whole */
    json_decref(got);
    json_decref(want);
    json_decref(whole);
    fr_otlp_pb_close(pp);
    fr_json_fast_parts_close(jp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 3 != 2)
        parts_agree(data[0] % 3, data[0] & 4, data + 1, size - 1);
    /* bit 2 of the first byte: the body is OTLP protobuf, decoded as the receiver does */
    char why[200];
    json_t *req = data[0] & 4 ? fr_otlp_pb_decode((enum fr_otlp_signal)(data[0] % 3), data + 1,
                                                  size - 1, why, sizeof why)
                              : json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (req == NULL)
        return 0;
    static const struct fr_otlp_opts o = {"gen_ai.conversation.id,session.id", "gen_ai.turn.id",
                                          NULL};
    size_t items = 0, rejected = 0;
    if (data[0] % 3 == 2) {
        if (fr_otlp_metrics(req, mstate, take, NULL, &items) == FR_OK && items > 1000000)
            abort();
    } else {
        json_t *out = json_array(), *links = json_object();
        int rc = data[0] % 3 == 0 ? fr_otlp_traces(req, &o, out, links, &items, &rejected)
                                  : fr_otlp_logs(req, &o, out, links, &items, &rejected);
        if (rc == FR_OK && rejected > items)
            abort(); /* more rejected than seen: a counting bug */
        size_t i;
        json_t *ev;
        json_array_foreach(out, i, ev)
        {
            struct fr_record rec;
            struct fr_err err = {0};
            if (fr_ingest_prepare_tree(json_incref(ev), &cfg, NULL, &rec, &err) == FR_OK)
                fr_record_clear(&rec);
        }
        json_decref(out);
        json_decref(links);
    }
    json_decref(req);
    return 0;
}
