/*
 * tests/test_taxonomy.c - the error taxonomy: a case per built-in code (and
 * a check that every code in configs/error-taxonomy.yaml has a case), the
 * fallback to "<class>.unknown", user rules overriding the built-ins, and
 * clear errors for bad rule files. Also what a provider call's finish
 * reason says of its answer (not a failure: the call succeeded).
 */
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "collectors/taxonomy.h"
#include "core/mem.h"

#define TS "\"ts_ms\":1771357445201"

struct tax_case {
    const char *line;
    const char *code; /* NULL: not a failure */
};

static const struct tax_case tax_cases[] = {
    /* provider */
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":401}}", "provider.auth"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":403}}", "provider.auth"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"authentication_error\"}}",
     "provider.auth"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":404,\"message\":\"no such model\"}}",
     "provider.not_found"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"The model gpt-9 does not exist\"}}",
     "provider.not_found"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":429}}", "provider.rate_limited"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"rate_limit_error\"}}",
     "provider.rate_limited"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"Rate limit reached for org\"}}",
     "provider.rate_limited"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":529}}", "provider.overloaded"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"overloaded_error\"}}",
     "provider.overloaded"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"Overloaded\"}}",
     "provider.overloaded"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":500}}", "provider.server_error"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":504}}", "provider.timeout"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"errno\":\"ETIMEDOUT\"}}", "provider.timeout"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"context deadline exceeded\"}}",
     "provider.timeout"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":400,\"code\":"
     "\"context_length_exceeded\"}}",
     "provider.context_length_exceeded"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":400,\"message\":\"This model's "
     "maximum context length is 128000 tokens\"}}",
     "provider.context_length_exceeded"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"code\":\"content_filter\"}}",
     "provider.content_filtered"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"blocked by the content filter\"}}",
     "provider.content_filtered"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":400}}", "provider.invalid_request"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"invalid_request_error\"}}",
     "provider.invalid_request"},
    /* out of credits: a 429 retrying does not cure (OpenAI's insufficient_quota), 402s and
       Anthropic's credit balance; not a rate limit */
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":429,\"code\":"
     "\"insufficient_quota\",\"message\":\"You exceeded your current quota, please check your "
     "plan and billing details.\"}}",
     "provider.quota_exhausted"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"429 You exceeded your current "
     "quota\"}}",
     "provider.quota_exhausted"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":402}}", "provider.quota_exhausted"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":400,\"message\":\"Your credit "
     "balance is too low to access the Anthropic API.\"}}",
     "provider.quota_exhausted"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"code\":\"invalid_api_key\"}}", "provider.auth"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"Incorrect API key provided\"}}",
     "provider.auth"},
    /* abandoned by the caller */
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"AbortError\",\"message\":\"This "
     "operation was aborted\"}}",
     "provider.cancelled"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"Request was aborted.\"}}",
     "provider.cancelled"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"Post \\\"https://api.openai.com/v1/"
     "chat/completions\\\": context canceled\"}}",
     "provider.cancelled"},
    /* the SDKs' exception classes, qualified by their module (OTLP's exception.type) */
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"openai.RateLimitError\"}}",
     "provider.rate_limited"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"openai.RateLimitError\",\"http_status\":"
     "429,\"message\":\"Error code: 429 - {'error': {'message': 'You exceeded your current "
     "quota', 'type': 'insufficient_quota'}}\"}}",
     "provider.quota_exhausted"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"anthropic.AuthenticationError\"}}",
     "provider.auth"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"openai.APITimeoutError\",\"message\":"
     "\"Request timed out.\"}}",
     "provider.timeout"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"anthropic.InternalServerError\"}}",
     "provider.server_error"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"openai.BadRequestError\"}}",
     "provider.invalid_request"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"MyRateLimitError\"}}",
     "provider.unknown"},
    /* never answered */
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"errno\":\"ECONNREFUSED\"}}",
     "provider.connection_failed"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"type\":\"APIConnectionError\",\"message\":"
     "\"Connection error.\"}}",
     "provider.connection_failed"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"dial tcp: lookup api.openai.com: "
     "no such host\"}}",
     "provider.connection_failed"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"socket hang up\"}}",
     "provider.connection_failed"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":502,\"message\":\"upstream connect "
     "error: connection refused\"}}",
     "provider.server_error"},
    {"{\"kind\":\"provider\"," TS ",\"error\":{\"message\":\"dial tcp 10.0.0.1:443: i/o "
     "timeout\"}}",
     "provider.timeout"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"status\":\"error\"}}", "provider.unknown"},
    {"{\"kind\":\"provider\"," TS ",\"data\":{\"status\":\"ok\"}}", NULL},
    /* tool */
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"status\":\"timeout\"}}", "tool.timeout"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"errno\":\"ETIMEDOUT\"}}", "tool.timeout"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"message\":\"call timed out\"}}", "tool.timeout"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"status\":\"cancelled\"},\"error\":{}}",
     "tool.cancelled"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"message\":\"context canceled\"}}", "tool.cancelled"},
    {"{\"kind\":\"tool\"," TS ",\"error\":{\"message\":\"invalid arguments: missing q\"}}",
     "tool.invalid_args"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"status\":\"error\"}}", "tool.failed"},
    {"{\"kind\":\"tool\"," TS ",\"data\":{\"status\":\"cancelled\"}}", NULL},
    /* transport */
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"ws\",\"event\":\"disconnect\"},"
     "\"error\":{\"message\":\"websocket: close 1006 (abnormal closure)\"}}",
     "transport.ws_abnormal_close"},
    {"{\"kind\":\"transport\"," TS ",\"error\":{\"errno\":\"ECONNRESET\"}}",
     "transport.connection_reset"},
    {"{\"kind\":\"transport\"," TS ",\"error\":{\"message\":\"read: connection reset by peer\"}}",
     "transport.connection_reset"},
    {"{\"kind\":\"transport\"," TS ",\"error\":{\"errno\":\"ETIMEDOUT\"}}", "transport.timeout"},
    {"{\"kind\":\"transport\"," TS ",\"error\":{\"message\":\"i/o timeout\"}}",
     "transport.timeout"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"http\",\"status\":502}}",
     "transport.http_5xx"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"http\",\"status\":404}}",
     "transport.http_4xx"},
    {"{\"kind\":\"transport\"," TS ",\"data\":{\"proto\":\"http\",\"status\":200}}", NULL},
    /* storage, under any kind */
    {"{\"kind\":\"timeline\"," TS ",\"error\":{\"message\":\"database is locked\"}}",
     "storage.busy"},
    {"{\"kind\":\"error\"," TS ",\"error\":{\"message\":\"SQLITE_LOCKED: table is locked\"}}",
     "storage.locked"},
    {"{\"kind\":\"turn\"," TS ",\"error\":{\"message\":\"write: no space left on device\"}}",
     "storage.disk_full"},
    {"{\"kind\":\"turn\"," TS ",\"error\":{\"errno\":\"ENOSPC\"}}", "storage.disk_full"},
    {"{\"kind\":\"error\"," TS ",\"error\":{\"message\":\"database disk image is malformed\"}}",
     "storage.corrupt"},
    /* runtime */
    {"{\"kind\":\"error\"," TS ",\"data\":{\"panic\":true},\"error\":{\"message\":\"nil map\"}}",
     "runtime.panic"},
    {"{\"kind\":\"error\"," TS ",\"error\":{\"message\":\"fatal error: out of memory\"}}",
     "runtime.out_of_memory"},
    {"{\"kind\":\"runtime\"," TS ",\"error\":{\"errno\":\"ENOMEM\"}}", "runtime.out_of_memory"},
    {"{\"kind\":\"error\"," TS ",\"error\":{\"message\":\"all goroutines are asleep - "
     "deadlock!\"}}",
     "runtime.deadlock"},
    /* validation */
    {"{\"kind\":\"middleware\"," TS ",\"error\":{\"type\":\"validation_error\"}}",
     "validation.invalid_input"},
    {"{\"kind\":\"middleware\"," TS ",\"error\":{\"code\":\"invalid_argument\"}}",
     "validation.invalid_input"},
    {"{\"kind\":\"middleware\"," TS ",\"error\":{\"message\":\"validation failed: name\"}}",
     "validation.invalid_input"},
    /* unknown: class from the kind */
    {"{\"kind\":\"sem\"," TS ",\"error\":{\"message\":\"weird\"}}", "transport.unknown"},
    {"{\"kind\":\"timeline\"," TS ",\"error\":{\"message\":\"weird\"}}", "projection.unknown"},
    {"{\"kind\":\"middleware\"," TS ",\"error\":{\"message\":\"weird\"}}", "runtime.unknown"},
    {"{\"kind\":\"error\"," TS "}", "runtime.unknown"},
};

static void
test_taxonomy_builtin_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tax_cases / sizeof tax_cases[0]; i++) {
        struct fr_record rec;
        struct fr_err err = {0};
        if (t_prepare(tax_cases[i].line, &rec, &err) != FR_OK)
            fail_msg("case %zu rejected: %s", i, err.msg);
        const char *want = tax_cases[i].code;
        if (rec.has_error != (want != NULL) || (want && strcmp(rec.err.code, want) != 0))
            fail_msg("case %zu (%s): got %s, want %s", i, tax_cases[i].line,
                     rec.has_error ? rec.err.code : "no error", want ? want : "no error");
        if (want) {
            char klass[32];
            snprintf(klass, sizeof klass, "%.*s", (int)strcspn(want, "."), want);
            assert_string_equal(fr_error_class_name(rec.err.klass), klass);
        }
        fr_record_clear(&rec);
    }
}

static void
test_taxonomy_every_builtin_code_has_a_case(void **state)
{
    (void)state;
    const char *p = fr_taxonomy_builtin_yaml;
    int codes = 0;
    while ((p = strstr(p, "\n    code: ")) != NULL) {
        p += strlen("\n    code: ");
        char code[64];
        snprintf(code, sizeof code, "%.*s", (int)strcspn(p, "\n"), p);
        bool found = false;
        for (size_t i = 0; i < sizeof tax_cases / sizeof tax_cases[0] && !found; i++)
            found = tax_cases[i].code && strcmp(tax_cases[i].code, code) == 0;
        if (!found)
            fail_msg("built-in code %s has no test case", code);
        codes++;
    }
    assert_true(codes >= 25);
}

static void
test_taxonomy_safe_message_from_rule(void **state)
{
    (void)state;
    struct fr_record rec;
    assert_int_equal(t_prepare("{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":401,"
                               "\"message\":\"Incorrect API key provided: sk-abc\"}}",
                               &rec, NULL),
                     FR_OK);
    assert_string_equal(rec.err.message, "the provider rejected the credentials");
    fr_record_clear(&rec);
}

static char *
write_rules(const char *dir, const char *text)
{
    char *path = t_path(dir, "rules.yaml");
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void
test_taxonomy_user_rules_override_builtin(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *path = write_rules(dir, "rules:\n"
                                  "  - match: {kind: provider, http_status: 429}\n"
                                  "    code: provider.quota_exhausted\n"
                                  "    message: monthly quota used up\n"
                                  "  - match: {code: [E_BILLING, 402]}\n"
                                  "    code: provider.billing\n");
    struct fr_taxonomy *tax;
    struct fr_err err = {0};
    assert_int_equal(fr_taxonomy_load(path, &tax, &err), FR_OK);
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.tax = tax;
    static const struct {
        const char *line, *code;
    } cases[] = {
        {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":429}}",
         "provider.quota_exhausted"},
        {"{\"kind\":\"tool\"," TS ",\"error\":{\"code\":402}}", "provider.billing"},
        /* built-ins still apply after the user's rules */
        {"{\"kind\":\"provider\"," TS ",\"error\":{\"http_status\":401}}", "provider.auth"},
    };
    for (size_t i = 0; i < 3; i++) {
        struct fr_record rec;
        assert_int_equal(
            fr_ingest_prepare(cases[i].line, strlen(cases[i].line), &cfg, NULL, &rec, &err), FR_OK);
        assert_string_equal(rec.err.code, cases[i].code);
        if (i == 0)
            assert_string_equal(rec.err.message, "monthly quota used up");
        fr_record_clear(&rec);
    }
    assert_true(fr_taxonomy_size(tax) > 2);
    fr_taxonomy_free(tax);
    t_rmtree(dir);
    free(dir);
    free(path);
}

static void
test_taxonomy_bad_rule_files_name_line_and_key(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"rules:\n  - match: {kind: provider}\n    code: provider\n", ":3: code: 'provider'"},
        {"rules:\n  - match: {kind: llm}\n    code: provider.x\n", ":2: kind: 'llm'"},
        {"rules:\n  - match: {colour: red}\n    code: provider.x\n", "unknown key 'colour'"},
        {"rules:\n  - match: {message: \"(\"}\n    code: tool.x\n", "bad regular expression"},
        {"rules:\n  - match: {http_status: 7000}\n    code: tool.x\n", "outside 100-999"},
        {"rules:\n  - code: disk.full\n", "class 'disk'"},
        {"rules:\n  - match: {kind: tool}\n", ":2: a rule needs a code"},
        {"rules:\n  - match: {kind: tool}\n    code: tool.x\n    colour: red\n",
         ":4: unknown key 'colour'"},
        {"rulez: []\n", "unknown top-level key 'rulez'"},
        {"rules:\n  - match: {kind: [tool\n", "rules.yaml:"},
    };
    char *dir = t_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_rules(dir, cases[i].yaml);
        struct fr_taxonomy *tax;
        struct fr_err err = {0};
        assert_int_equal(fr_taxonomy_load(path, &tax, &err), FR_E_CONFIG);
        assert_null(tax);
        if (strstr(err.msg, cases[i].want) == NULL || strstr(err.msg, "rules.yaml") == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, cases[i].want);
        free(path);
    }
    struct fr_taxonomy *tax;
    struct fr_err err = {0};
    char *missing = t_path(dir, "absent.yaml");
    assert_int_equal(fr_taxonomy_load(missing, &tax, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "absent.yaml"));
    free(missing);
    t_rmtree(dir);
    free(dir);
}

/* The providers' and SDKs' spellings of how a call ended, each to what it says of the answer. */
static void
test_finish_reason_meanings(void **state)
{
    (void)state;
    static const struct {
        const char *reason, *meaning;
    } cases[] = {
        {"stop", "complete"},          /* OpenAI, Mistral, the Vercel AI SDK */
        {"end_turn", "complete"},      /* Anthropic, Bedrock */
        {"STOP", "complete"},          /* Gemini */
        {"COMPLETE", "complete"},      /* Cohere */
        {"stop_sequence", "complete"}, /* Anthropic */
        {"length", "truncated"},       /* OpenAI: the answer hit max_tokens */
        {"max_tokens", "truncated"},   /* Anthropic */
        {"MAX_TOKENS", "truncated"},   /* Gemini, Cohere */
        {"model_length", "truncated"}, /* Mistral: the context ran out */
        {"content_filter", "filtered"},
        {"content-filter", "filtered"}, /* the Vercel AI SDK */
        {"SAFETY", "filtered"},         /* Gemini */
        {"RECITATION", "filtered"},
        {"refusal", "filtered"},              /* Anthropic */
        {"guardrail_intervened", "filtered"}, /* Bedrock */
        {"tool_calls", "tool_call"},
        {"tool-calls", "tool_call"},
        {"tool_use", "tool_call"},
        {"error", "error"},
        {"MALFORMED_FUNCTION_CALL", "error"},
        {"pause_turn", "other"},
        {"", "other"},
        {"stopped", "other"}, /* whole words only */
        /* one reason per choice (the OTLP mapping joins gen_ai.response.finish_reasons): the
           most severe */
        {"tool-calls,stop", "tool_call"},
        {"stop,length", "truncated"},
        {"stop, content_filter", "filtered"},
        {",", "other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(fr_finish_meaning(cases[i].reason), cases[i].meaning) != 0)
            fail_msg("'%s': %s, expected %s", cases[i].reason, fr_finish_meaning(cases[i].reason),
                     cases[i].meaning);
    assert_string_equal(fr_finish_meaning(NULL), "other");
    /* which meanings mark a call whose answer did not reach the user whole */
    assert_string_equal(fr_finish_shortfall("truncated"), "stopped at the token limit");
    assert_string_equal(fr_finish_shortfall("filtered"), "was filtered or refused");
    assert_string_equal(fr_finish_shortfall("error"), "ended in an error");
    assert_null(fr_finish_shortfall("complete"));
    assert_null(fr_finish_shortfall("tool_call"));
    assert_null(fr_finish_shortfall("other"));
    assert_null(fr_finish_shortfall(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taxonomy_builtin_cases),
        cmocka_unit_test(test_taxonomy_every_builtin_code_has_a_case),
        cmocka_unit_test(test_taxonomy_safe_message_from_rule),
        cmocka_unit_test(test_taxonomy_user_rules_override_builtin),
        cmocka_unit_test(test_taxonomy_bad_rule_files_name_line_and_key),
        cmocka_unit_test(test_finish_reason_meanings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
