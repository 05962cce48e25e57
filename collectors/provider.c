/*
 * collectors/provider.c - LLM provider calls: provider, model, usage,
 * finish reason, retries, latency breakdown. The duration column is the
 * provider latency (latency.provider_ms). Request and response bodies get a
 * SHA-256 of their canonical form (compact, keys sorted), so identical
 * prompts are found across conversations without reading the bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"
#include "core/crypto.h"
#include "core/hex.h"
#include "core/wire.h"

static const char *const provider_statuses[] = {"ok", "error", NULL};

static const struct fr_field provider_usage[] = {
    {.name = "input_tokens", .types = FR_FT_INT, .non_negative = true},
    {.name = "output_tokens", .types = FR_FT_INT, .non_negative = true},
    {.name = "cached_tokens", .types = FR_FT_INT, .non_negative = true},
    {.name = "reasoning_tokens", .types = FR_FT_INT, .non_negative = true},
    {.name = NULL},
};

static const struct fr_field provider_latency[] = {
    {.name = "queue_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "provider_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "postprocess_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = "ttft_ms", .types = FR_FT_NUMBER, .non_negative = true},
    {.name = NULL},
};

static const struct fr_field provider_fields[] = {
    {.name = "provider", .types = FR_FT_STRING},
    {.name = "model", .types = FR_FT_STRING},
    {.name = "model_version", .types = FR_FT_STRING},
    {.name = "request", .types = FR_FT_OBJECT},
    {.name = "response", .types = FR_FT_OBJECT},
    {.name = "usage", .types = FR_FT_OBJECT, .sub = provider_usage},
    {.name = "finish_reason", .types = FR_FT_STRING},
    {.name = "retries", .types = FR_FT_INT, .non_negative = true},
    {.name = "backoff_cause", .types = FR_FT_STRING},
    {.name = "latency", .types = FR_FT_OBJECT, .sub = provider_latency},
    {.name = "status", .types = FR_FT_STRING, .values = provider_statuses},
    {.name = NULL},
};

/* Hex SHA-256 of the canonical JSON of v into out (65 bytes); "" when v is absent. */
static void
provider_hash(const json_t *v, char out[65])
{
    out[0] = '\0';
    if (v == NULL || json_is_null(v))
        return;
    size_t n;
    char *canon = fr_json_text(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY, &n);
    if (canon == NULL)
        return;
    unsigned char md[FR_SHA256_LEN];
    if (fr_sha256(canon, n, md))
        fr_hex_encode(md, sizeof md, out);
    free(canon);
}

static int
provider_normalize(void *ctx, struct fr_event *ev, struct fr_err *err)
{
    (void)ctx;
    (void)err;
    static const char *const token_keys[FR_TOKEN_COUNT] = {"input_tokens", "output_tokens",
                                                           "cached_tokens", "reasoning_tokens"};
    json_t *usage = ev->data ? json_object_get(ev->data, "usage") : NULL;
    for (int i = 0; i < FR_TOKEN_COUNT; i++)
        fr_json_int_at(usage, token_keys[i], &ev->tokens[i]);
    if (ev->data != NULL) {
        provider_hash(json_object_get(ev->data, "request"), ev->request_sha256);
        provider_hash(json_object_get(ev->data, "response"), ev->response_sha256);
    }
    ev->provider = fr_data_str(ev, "provider");
    ev->model = fr_data_str(ev, "model");
    ev->status = fr_data_str(ev, "status");
    ev->finish = fr_data_str(ev, "finish_reason");
    json_t *latency = ev->data ? json_object_get(ev->data, "latency") : NULL;
    ev->has_duration = fr_json_int_at(latency, "provider_ms", &ev->duration_ms);
    return FR_OK;
}

static const int provider_kinds[] = {FR_KIND_PROVIDER, -1};

const struct fr_collector fr_collector_provider = {
    .name = "provider",
    .description = "LLM provider calls: model, usage, finish reason, retries, latency",
    .options = NULL,
    .init = NULL,
    .destroy = NULL,
    .kinds = provider_kinds,
    .fields = provider_fields,
    .normalize = provider_normalize,
};

/* ---- finish reasons ---- */

/* The meanings, most severe first: a list's meaning is its first one found. */
static const struct {
    const char *meaning;
    const char *shortfall;         /* what the user got instead of the whole answer; NULL: it */
    const char *const reasons[14]; /* compared lowercase, '-' read as '_' */
} finish_meanings[] = {
    {"filtered",
     "was filtered or refused",
     {"content_filter", "content_filtered", "safety", "recitation", "blocklist",
      "prohibited_content", "spii", "image_safety", "refusal", "guardrail_intervened",
      "error_toxic", NULL}},
    {"truncated",
     "stopped at the token limit",
     {"length", "max_tokens", "model_length", "max_output_tokens", "model_context_window_exceeded",
      NULL}},
    {"error",
     "ended in an error",
     {"error", "malformed_function_call", "unexpected_tool_call", NULL}},
    {"tool_call", NULL, {"tool_calls", "tool_call", "tool_use", "function_call", NULL}},
    {"complete", NULL, {"stop", "end_turn", "stop_sequence", "complete", "end", "eos", NULL}},
};

const char *
fr_finish_meaning(const char *reason)
{
    size_t best = sizeof finish_meanings / sizeof finish_meanings[0];
    for (const char *at = reason; at != NULL && *at != '\0';) {
        size_t n = strcspn(at, ",");
        char one[40];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof one; i++) {
            char c = at[i];
            if (c == ' ')
                continue;
            one[k++] = c == '-' ? '_' : (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        one[k] = '\0';
        for (size_t m = 0; m < best; m++)
            for (const char *const *r = finish_meanings[m].reasons; *r != NULL; r++)
                if (strcmp(one, *r) == 0) {
                    best = m;
                    break;
                }
        at += n + (at[n] == ',');
    }
    return best < sizeof finish_meanings / sizeof finish_meanings[0] ? finish_meanings[best].meaning
                                                                     : "other";
}

const char *
fr_finish_shortfall(const char *meaning)
{
    for (size_t m = 0; meaning != NULL && m < sizeof finish_meanings / sizeof finish_meanings[0];
         m++)
        if (strcmp(meaning, finish_meanings[m].meaning) == 0)
            return finish_meanings[m].shortfall;
    return NULL;
}
