/*
 * tests/test_metrics.c - the counters /metrics renders from committed
 * batches (agent/metrics.c): by kind, by provider and model, by model and
 * what the finish reason means, by tool; label
 * values escaped; past FR_METRICS_MAX_SERIES label sets of a family a new
 * one is counted under "_other", and the sets seen before keep counting.
 */
#include "tests/support/support.h"

#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"
#include "core/mem.h"

static void
record(struct fr_record *rec, const char *json)
{
    struct fr_err err = {0};
    if (t_prepare(json, rec, &err) != FR_OK)
        fail_msg("%s: %s", json, err.msg);
}

static void
test_metrics_committed_counted_by_kind_and_label(void **state)
{
    (void)state;
    struct fr_metrics *m = fr_metrics_new();
    struct fr_record recs[5];
    memset(recs, 0, sizeof recs);
    record(
        &recs[0],
        "{\"kind\":\"provider\",\"ts_ms\":1771357445201,\"conv_id\":\"c\",\"data\":{\"provider\":"
        "\"openai\",\"model\":\"gpt-4o\",\"usage\":{\"input_tokens\":7},\"finish_reason\":"
        "\"length\"}}");
    record(
        &recs[1],
        "{\"kind\":\"provider\",\"ts_ms\":1771357445201,\"conv_id\":\"c\",\"data\":{\"provider\":"
        "\"openai\",\"model\":\"gpt-4o\",\"usage\":{\"input_tokens\":5}}}");
    record(&recs[2],
           "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"c\",\"data\":{\"name\":"
           "\"say \\\"hi\\\"\"}}");
    record(
        &recs[3],
        "{\"kind\":\"provider\",\"ts_ms\":1771357445201,\"conv_id\":\"c\",\"data\":{\"provider\":"
        "\"anthropic\",\"model\":\"claude\",\"finish_reason\":\"refusal\"}}");
    record(
        &recs[4],
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"c\",\"data\":{\"name\":\"x\"}}");
    fr_metrics_committed(m, recs, 5, FR_OK, 0.001);
    fr_metrics_committed(m, recs, 1, FR_OK, 0.001);
    assert_int_equal(t_metric(m, "flightrec_events_accepted_total{kind=\"provider\"}"), 4);
    assert_int_equal(t_metric(m, "flightrec_events_accepted_total{kind=\"tool\"}"), 2);
    assert_int_equal(
        t_metric(m, "flightrec_provider_calls_total{provider=\"openai\",model=\"gpt-4o\"}"), 3);
    assert_int_equal(
        t_metric(m, "flightrec_provider_input_tokens_total{provider=\"openai\",model=\"gpt-4o\"}"),
        19);
    assert_int_equal(
        t_metric(m, "flightrec_provider_calls_total{provider=\"anthropic\",model=\"claude\"}"), 1);
    assert_int_equal(t_metric(m, "flightrec_tool_calls_total{tool=\"say \\\"hi\\\"\"}"), 1);
    /* how the calls that named a finish reason ended (recs[0] was committed twice) */
    assert_int_equal(
        t_metric(m, "flightrec_provider_finishes_total{model=\"gpt-4o\",meaning=\"truncated\"}"),
        2);
    assert_int_equal(
        t_metric(m, "flightrec_provider_finishes_total{model=\"claude\",meaning=\"filtered\"}"), 1);
    /* a failed commit counts nothing but itself */
    fr_metrics_committed(m, recs, 5, FR_E_IO, 0.001);
    assert_int_equal(t_metric(m, "flightrec_events_accepted_total{kind=\"provider\"}"), 4);
    assert_int_equal(t_metric(m, "flightrec_commits_failed_total"), 1);
    for (size_t i = 0; i < 5; i++)
        fr_record_clear(&recs[i]);
    fr_metrics_free(m);
}

static void
test_metrics_label_sets_bounded(void **state)
{
    (void)state;
    struct fr_metrics *m = fr_metrics_new();
    struct fr_record rec;
    for (int i = 0; i < FR_METRICS_MAX_SERIES + 10; i++) {
        char *line = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"c\","
                                 "\"data\":{\"name\":\"t%d\"}}",
                                 i);
        memset(&rec, 0, sizeof rec);
        record(&rec, line);
        fr_metrics_committed(m, &rec, 1, FR_OK, 0.001);
        if (i == 0) /* a set seen before the bound keeps its own series */
            fr_metrics_committed(m, &rec, 1, FR_OK, 0.001);
        fr_record_clear(&rec);
        free(line);
    }
    assert_int_equal(t_metric(m, "flightrec_tool_calls_total{tool=\"t0\"}"), 2);
    char *last = fr_asprintf("flightrec_tool_calls_total{tool=\"t%d\"}", FR_METRICS_MAX_SERIES - 1);
    assert_int_equal(t_metric(m, last), 1);
    free(last);
    last = fr_asprintf("flightrec_tool_calls_total{tool=\"t%d\"}", FR_METRICS_MAX_SERIES);
    assert_int_equal(t_metric(m, last), -1);
    free(last);
    assert_int_equal(t_metric(m, "flightrec_tool_calls_total{tool=\"_other\"}"), 10);
    fr_metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_committed_counted_by_kind_and_label),
        cmocka_unit_test(test_metrics_label_sets_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
