/*
 * bench/otlpgen.c - `fr-otlpgen`: OTLP/HTTP JSON trace requests for the
 * receiver benchmark, one ExportTraceServiceRequest per line, each holding
 * BATCH spans. Spans come in turns of four, as an instrumented chat server
 * exports them: the HTTP server span of the request, a chat call with
 * usage, prompt and completion (PCT% of prompts carry a secret, so redaction
 * has work), an execute_tool span, and a second chat call. Every 25th chat
 * call fails with a 429 (exception event). Each request's resource holds what
 * the OpenTelemetry JS SDK's default resource detectors put there (service,
 * telemetry.sdk.*, process.*, host.*: 15 attributes). Deterministic for a seed.
 *
 * Which conversation a turn belongs to: by default the turns go round 5,000
 * conversations, so a request's 125 turns are of 125 conversations (a busy
 * server). With --concurrency C, C conversations are open at once, as
 * fr-gen's are: each turn is of one of them at random, and one that has had
 * its 5 to 25 turns (60 spans on average, as many as fr-gen's conversations
 * have events) is replaced by a new one. fr-gen's default is 8; the same C
 * gives both generators' traffic the same spread over conversations, which
 * weighs on what a stored item costs (a page of each conversation-keyed
 * index per conversation in a transaction: docs/otlp.md, Benchmarks).
 *
 *     fr-otlpgen [--spans N] [--batch B] [--seed S] [--sensitive PCT] [--concurrency C]
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t rng;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static json_t *
kv(const char *k, json_t *v)
{
    const char *type = json_is_string(v) ? "stringValue" : "intValue";
    if (json_is_integer(v)) { /* OTLP JSON carries 64-bit integers as strings */
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        json_decref(v);
        v = json_string(buf);
    }
    return json_pack("{s:s,s:{s:o}}", "key", k, "value", type, v);
}

static const char *const words[] = {
    "please", "summarize", "the",     "quarterly", "report",   "and",   "list",
    "open",   "incidents", "for",     "payments",  "service",  "with",  "their",
    "owners", "status",    "weather", "in",        "Paris",    "today", "tomorrow",
    "order",  "refund",    "account", "migration", "database", "retry", "latency"};

static char *
text(size_t bytes, bool secret)
{
    char *s = malloc(bytes + 64);
    size_t n = 0;
    while (n < bytes) {
        const char *w = words[next() % (sizeof words / sizeof words[0])];
        n += (size_t)sprintf(s + n, "%s ", w);
    }
    if (secret)
        n += (size_t)sprintf(s + n, "my key is sk-proj-%016" PRIx64 "abcdEFGH", next());
    s[n] = '\0';
    return s;
}

static char *
hex(char *buf, size_t digits)
{
    for (size_t i = 0; i < digits; i++)
        buf[i] = "0123456789abcdef"[next() % 16];
    buf[digits] = '\0';
    return buf;
}

/* A resource as the OpenTelemetry JS SDK's default detectors describe a Node.js service. */
static json_t *
sdk_resource(void)
{
    static const char *const str[][2] = {
        {"service.name", "chat-server"},
        {"telemetry.sdk.language", "nodejs"},
        {"telemetry.sdk.name", "opentelemetry"},
        {"telemetry.sdk.version", "2.2.0"},
        {"process.executable.name", "node"},
        {"process.executable.path", "/usr/local/bin/node"},
        {"process.command", "/srv/chat/server.js"},
        {"process.runtime.version", "20.20.2"},
        {"process.runtime.name", "nodejs"},
        {"process.runtime.description", "Node.js"},
        {"process.owner", "chat"},
        {"host.name", "chat-7f9c8d5b4-x2k9q"},
        {"host.arch", "amd64"},
        {"host.id", "9f2c1e0b7a6d4c3e8b1a2f3e4d5c6b7a"},
    };
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof str / sizeof *str; i++)
        json_array_append_new(a, kv(str[i][0], json_string(str[i][1])));
    json_array_append_new(a, kv("process.pid", json_integer(41234)));
    return a;
}

static json_t *
span(const char *trace, const char *name, int64_t start_ns, int64_t dur_ns, json_t *attrs)
{
    char sid[17], a[32], b[32];
    snprintf(a, sizeof a, "%" PRId64, start_ns);
    snprintf(b, sizeof b, "%" PRId64, start_ns + dur_ns);
    return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o}", "traceId", trace, "spanId", hex(sid, 16),
                     "name", name, "kind", 3, "startTimeUnixNano", a, "endTimeUnixNano", b,
                     "attributes", attrs);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spans", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},
        {"sensitive", required_argument, NULL, 'S'},
        {"concurrency", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long spans = 100000, batch = 500, pct = 5, concurrency = 0;
    rng = 88172645463325252ULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            spans = atol(optarg);
            break;
        case 'b':
            batch = atol(optarg);
            break;
        case 's':
            rng ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ULL;
            break;
        case 'S':
            pct = atol(optarg);
            break;
        case 'c':
            concurrency = atol(optarg);
            if (concurrency <= 0) {
                fprintf(stderr, "fr-otlpgen: --concurrency must be positive\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: fr-otlpgen [--spans N] [--batch B] [--seed S] "
                            "[--sensitive PCT] [--concurrency C]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (spans <= 0 || batch <= 0) {
        fprintf(stderr, "fr-otlpgen: --spans and --batch must be positive\n");
        return 2;
    }
    int64_t t = 1771357440000LL * 1000000LL;
    long made = 0, chats = 0, opened = 0;
    char trace[33], conv[32];
    /* --concurrency: the open conversations and the turns each has left */
    long *open = calloc((size_t)(concurrency > 0 ? concurrency : 1), sizeof *open),
         *left = calloc((size_t)(concurrency > 0 ? concurrency : 1), sizeof *left);
    for (long i = 0; i < concurrency; i++) {
        open[i] = opened++;
        left[i] = 5 + (long)(next() % 21);
    }
    while (made < spans) {
        json_t *list = json_array();
        for (long i = 0; i < batch && made < spans; i++, made++) {
            int step = (int)(made % 4);
            if (step == 0) {
                hex(trace, 32);
                if (concurrency > 0) {
                    long at = (long)(next() % (uint64_t)concurrency);
                    snprintf(conv, sizeof conv, "conv-%ld", open[at]);
                    if (--left[at] == 0) { /* its last turn: a new conversation opens */
                        open[at] = opened++;
                        left[at] = 5 + (long)(next() % 21);
                    }
                } else {
                    snprintf(conv, sizeof conv, "conv-%ld", (made / 4) % 5000);
                }
            }
            t += 1000000LL * (int64_t)(1 + next() % 40);
            json_t *a = json_array();
            json_array_append_new(a, kv("gen_ai.conversation.id", json_string(conv)));
            if (step == 0) {
                json_array_append_new(a, kv("http.request.method", json_string("POST")));
                json_array_append_new(a, kv("url.path", json_string("/api/chat")));
                json_array_append_new(a, kv("http.response.status_code", json_integer(200)));
                json_array_append_new(list, span(trace, "POST /api/chat", t, 1800000000LL, a));
            } else if (step == 2) {
                json_array_append_new(a, kv("gen_ai.operation.name", json_string("execute_tool")));
                json_array_append_new(a, kv("gen_ai.tool.name", json_string("get_weather")));
                json_array_append_new(a, kv("gen_ai.tool.call.id", json_string("call_1")));
                json_array_append_new(list, span(trace, "execute_tool get_weather", t,
                                                 (int64_t)(5 + next() % 200) * 1000000LL, a));
            } else {
                chats++;
                char *prompt = text(300, (long)(next() % 100) < pct), *answer = text(200, false);
                json_array_append_new(a, kv("gen_ai.operation.name", json_string("chat")));
                json_array_append_new(a, kv("gen_ai.system", json_string("openai")));
                json_array_append_new(a, kv("gen_ai.request.model", json_string("gpt-4o")));
                json_array_append_new(
                    a, kv("gen_ai.response.model", json_string("gpt-4o-2024-08-06")));
                json_array_append_new(a, kv("gen_ai.usage.input_tokens",
                                            json_integer((json_int_t)(80 + next() % 900))));
                json_array_append_new(a, kv("gen_ai.usage.output_tokens",
                                            json_integer((json_int_t)(10 + next() % 300))));
                json_array_append_new(a, kv("gen_ai.prompt.0.role", json_string("user")));
                json_array_append_new(a, kv("gen_ai.prompt.0.content", json_string(prompt)));
                json_array_append_new(a, kv("gen_ai.completion.0.content", json_string(answer)));
                free(prompt);
                free(answer);
                json_t *s =
                    span(trace, "chat gpt-4o", t, (int64_t)(200 + next() % 3000) * 1000000LL, a);
                if (chats % 25 == 0) {
                    char ts[32];
                    snprintf(ts, sizeof ts, "%" PRId64, t);
                    json_object_set_new(s, "status", json_pack("{s:i}", "code", 2));
                    json_object_set_new(
                        s, "events",
                        json_pack("[{s:s,s:s,s:[o,o]}]", "name", "exception", "timeUnixNano", ts,
                                  "attributes", kv("exception.type", json_string("RateLimitError")),
                                  kv("exception.message",
                                     json_string("429 Rate limit reached for gpt-4o"))));
                }
                json_array_append_new(list, s);
            }
        }
        json_t *req = json_pack("{s:[{s:{s:o},s:[{s:{s:s},s:o}]}]}", "resourceSpans", "resource",
                                "attributes", sdk_resource(), "scopeSpans", "scope", "name",
                                "fr-otlpgen", "spans", list);
        char *line = json_dumps(req, JSON_COMPACT);
        puts(line);
        free(line);
        json_decref(req);
    }
    free(open);
    free(left);
    return 0;
}
