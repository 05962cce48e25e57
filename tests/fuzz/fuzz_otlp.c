/*
 * Fuzzes the OTLP receiver's mapping (agent/otlp.c): the first byte picks
 * traces, logs or metrics, the rest is the JSON request; every envelope it
 * yields goes through the ingest pipeline (validation, redaction,
 * collectors), and metrics through the cumulative-to-delta state. Under
 * UBSan this also checks every number conversion (huge, negative, NaN).
 */
#include <jansson.h>
#include <stdlib.h>

#include "agent/ingest.h"
#include "agent/otlp/map.h"
#include "agent/otlp/proto.h"
#include "collectors/taxonomy.h"
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
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
