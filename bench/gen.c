/*
 * bench/gen.c - see gen.h. Output is plain ASCII built from a word list, so
 * no JSON escaping is needed; the words of a text file (--text) are escaped
 * as they are loaded.
 */
#include "bench/gen.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"

static const char *const gen_words[] = {
    "the",      "request",  "model",   "answer",  "customer", "order",    "refund",   "please",
    "summary",  "deploy",   "cluster", "latency", "invoice",  "search",   "document", "policy",
    "account",  "shipping", "status",  "because", "weather",  "tomorrow", "report",   "quarter",
    "revenue",  "table",    "column",  "query",   "timeout",  "retry",    "function", "argument",
    "result",   "explain",  "example", "could",   "would",    "should",   "python",   "golang",
    "database", "index",    "schema",  "migrate", "backup",   "restore",  "ticket",   "priority",
    "support",  "agent",    "tool",    "context", "window",   "token",    "budget",   "limit",
    "user",     "message",  "thread",  "session", "profile",  "router",   "stream",   "and",
    "with",     "from",     "into",    "about",   "what",     "when",     "where",    "which",
    "there",    "their",    "other",   "after",   "before",
};
#define GEN_NWORDS (sizeof gen_words / sizeof gen_words[0])

static const char *const gen_models[] = {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4",
                                         "gemini-2.0-flash"};
static const char *const gen_providers[] = {"openai", "openai", "anthropic", "google"};
static const char *const gen_tools[] = {"search_docs", "get_order", "create_ticket", "run_sql",
                                        "fetch_url"};

struct gen_rng {
    uint64_t s;
};

static uint64_t
gen_next(struct gen_rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static unsigned
gen_below(struct gen_rng *r, unsigned n)
{
    return (unsigned)(gen_next(r) % n);
}

static bool
gen_chance(struct gen_rng *r, unsigned per_mille)
{
    return gen_below(r, 1000) < per_mille;
}

/*
 * --hard: a word of a large made-up vocabulary (syllables spelled from its
 * rank), ranks drawn log-uniformly over 1..60000 (a Zipf-like law, as in
 * real text), some capitalized, numbers and identifiers between them.
 */
static void
gen_hard_word(FILE *out, struct gen_rng *r)
{
    static const char cons[] = "bcdfghjklmnprstvwz", vow[] = "aeiou";
    unsigned pick = gen_below(r, 100);
    if (pick < 6) {
        fprintf(out, "%u", gen_below(r, 1000000));
        return;
    }
    if (pick < 9) {
        fprintf(out, "%c%c%c-%04x", 'A' + gen_below(r, 26), 'A' + gen_below(r, 26),
                'A' + gen_below(r, 26), gen_below(r, 65536));
        return;
    }
    double u = (double)(gen_next(r) >> 11) / 9007199254740992.0;
    unsigned rank = (unsigned)exp(u * log(60000.0)), k = rank;
    bool cap = gen_chance(r, 60);
    do {
        char syl[3] = {cons[k % 18], vow[(k / 18) % 5], 0};
        if (cap) {
            syl[0] = (char)(syl[0] - 'a' + 'A');
            cap = false;
        }
        fputs(syl, out);
        k /= 90;
    } while (k > 0);
}

struct gen;
static void gen_text(struct gen *g, unsigned min_words, unsigned max_words);

/* One conversation's state. step walks through the script of gen_conv_step(). */
struct gen_conv {
    char *hist; /* --history: the earlier messages, as JSON objects joined by commas (owned) */
    size_t hist_len;
    unsigned id;
    unsigned turns, turn, step, sem_seq, tool_pending, eid;
    unsigned model;
    char runtime_key[24];
    bool done;
    uint64_t rid;        /* --hard: the conversation's random id */
    uint64_t trace[2];   /* --hard: the current turn's trace id */
    unsigned trace_turn; /* turn + 1 the trace id was drawn for */
};

/* --text: the words of a file of prose, JSON-escaped, each its own string */
struct gen_words {
    char *buf;    /* the words, NUL-terminated one after another (owned) */
    char **words; /* into buf (owned) */
    size_t n, next;
};

struct gen {
    struct gen_words text; /* n == 0: made-up words */
    FILE *out;
    struct gen_rng rng;
    const struct fr_gen_opts *o;
    int64_t now;
    uint64_t written;
    unsigned next_conv;
};

static void
gen_text(struct gen *g, unsigned min_words, unsigned max_words)
{
    struct gen_rng *r = &g->rng;
    unsigned n = min_words + gen_below(r, max_words - min_words + 1);
    for (unsigned i = 0; i < n; i++) {
        if (g->text.n > 0) {
            fprintf(g->out, "%s%s", i ? " " : "", g->text.words[g->text.next]);
            g->text.next = (g->text.next + 1) % g->text.n;
            continue;
        }
        if (!g->o->hard) {
            fprintf(g->out, "%s%s", i ? " " : "", gen_words[gen_below(r, GEN_NWORDS)]);
            continue;
        }
        if (i > 0)
            fputs(gen_chance(r, 80) ? ". " : gen_chance(r, 100) ? ", " : " ", g->out);
        gen_hard_word(g->out, r);
    }
}

/* gen_text's words as a string (caller frees), for what is written twice: a message that a
   later request of --history carries again. */
static char *
gen_text_str(struct gen *g, unsigned min_words, unsigned max_words)
{
    char *s = NULL;
    size_t len = 0;
    FILE *out = g->out, *mem = open_memstream(&s, &len);
    if (mem == NULL)
        abort();
    g->out = mem;
    gen_text(g, min_words, max_words);
    fclose(mem);
    g->out = out;
    return s;
}

/* Appends {"role":role,"content":content} to c's history (content JSON-escaped already). */
static void
gen_remember(struct gen_conv *c, const char *role, const char *content, const char *more)
{
    size_t add = strlen(role) + strlen(content) + strlen(more) + 32;
    c->hist = fr_realloc(c->hist, c->hist_len + add);
    c->hist_len +=
        (size_t)snprintf(c->hist + c->hist_len, add, "%s{\"role\":\"%s\",\"content\":\"%s%s\"}",
                         c->hist_len ? "," : "", role, content, more);
}

static void
gen_head(struct gen *g, struct gen_conv *c, const char *kind)
{
    fprintf(g->out, "{\"v\":1,\"kind\":\"%s\",\"ts_ms\":%lld", kind, (long long)g->now);
    if (c != NULL && g->o->hard) {
        /* high-entropy ids, as UUID- and W3C-trace-id-minting servers send them */
        if (c->trace_turn != c->turn + 1) {
            c->trace[0] = gen_next(&g->rng);
            c->trace[1] = gen_next(&g->rng);
            c->trace_turn = c->turn + 1;
        }
        fprintf(g->out,
                ",\"conv_id\":\"%s-%016llx\",\"session_id\":\"%016llx\",\"event_id\":"
                "\"%016llx%016llx\"",
                g->o->prefix, (unsigned long long)c->rid, (unsigned long long)(c->rid * 31),
                (unsigned long long)gen_next(&g->rng), (unsigned long long)gen_next(&g->rng));
        if (c->turn > 0)
            fprintf(g->out, ",\"turn_id\":\"t-%04u\",\"request_id\":\"%016llx\"", c->turn,
                    (unsigned long long)c->trace[1] * 3);
        fprintf(g->out, ",\"trace_id\":\"%016llx%016llx\"", (unsigned long long)c->trace[0],
                (unsigned long long)c->trace[1]);
    } else if (c != NULL) {
        fprintf(g->out,
                ",\"conv_id\":\"%s-%06u\",\"session_id\":\"s-%06u\",\"event_id\":\"e-%u-%u\"",
                g->o->prefix, c->id, c->id, c->id, ++c->eid);
        if (c->turn > 0)
            fprintf(g->out, ",\"turn_id\":\"t-%04u\",\"request_id\":\"req-%u-%u\"", c->turn, c->id,
                    c->turn);
        fprintf(g->out, ",\"trace_id\":\"%016llx%016llx\"", (unsigned long long)c->id * 7919,
                (unsigned long long)c->turn);
    }
}

static void
gen_provider(struct gen *g, struct gen_conv *c)
{
    struct gen_rng *r = &g->rng;
    unsigned m = c->model;
    bool rate = gen_chance(r, 40), ctxlen = !rate && gen_chance(r, 8);
    gen_head(g, c, "provider");
    fprintf(g->out,
            ",\"runtime_key\":\"%s\",\"inference_id\":\"inf-%u-%u\",\"data\":{\"provider\":\"%s\","
            "\"model\":\"%s\",\"request\":{\"messages\":[{\"role\":\"system\",\"content\":\"",
            c->runtime_key, c->id, c->turn, gen_providers[m], gen_models[m]);
    gen_text(g, 10, 25);
    fputs("\"},", g->out);
    if (g->o->history && c->hist_len > 0) /* as a chat server sends a conversation's turn */
        fprintf(g->out, "%s,", c->hist);
    char *user = gen_text_str(g, 30, 110);
    const char *said = "";
    if (g->o->sensitive_pct > 0 && gen_chance(r, 10u * (unsigned)g->o->sensitive_pct)) {
        /* what users paste: keys, contact details, card numbers (fake ones) */
        static const char *const pasted[] = {
            " my key is sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ please check",
            " mail me at jane.doe@example.org or call +1 (415) 555-0132",
            " card 4242 4242 4242 4242 exp 12/29",
            " Authorization: Bearer tok_9f8e7d6c5b4a3f2e1d0c failed from 198.51.100.23",
            " token ghp_R4nd0mT0k3nV4lu3Abcdefghij1234567890 in the CI logs",
        };
        said = pasted[gen_below(r, sizeof pasted / sizeof *pasted)];
    }
    fprintf(g->out, "{\"role\":\"user\",\"content\":\"%s%s\"}]}", user, said);
    if (g->o->history)
        gen_remember(c, "user", user, said);
    free(user);
    if (rate || ctxlen) {
        fprintf(g->out,
                ",\"retries\":%u,\"status\":\"error\",\"latency\":{\"queue_ms\":%u,"
                "\"provider_ms\":%u}}",
                rate ? 3 : 0, gen_below(r, 20), 50 + gen_below(r, 400));
        if (rate)
            fprintf(g->out,
                    ",\"error\":{\"message\":\"429 Too Many Requests: rate limit "
                    "reached for %s\",\"type\":\"rate_limit_error\",\"http_status\":429}",
                    gen_models[m]);
        else
            fputs(",\"error\":{\"message\":\"This model's maximum context length is 128000 "
                  "tokens\",\"type\":\"invalid_request_error\",\"code\":"
                  "\"context_length_exceeded\",\"http_status\":400}",
                  g->out);
    } else {
        char *answer = gen_text_str(g, 30, 120);
        fprintf(g->out, ",\"response\":{\"content\":\"%s", answer);
        if (g->o->history)
            gen_remember(c, "assistant", answer, "");
        free(answer);
        fprintf(g->out,
                "\"},\"usage\":{\"input_tokens\":%u,\"output_tokens\":%u,\"cached_tokens\":%u},"
                "\"finish_reason\":\"%s\",\"retries\":0,\"latency\":{\"queue_ms\":%u,"
                "\"provider_ms\":%u,\"postprocess_ms\":%u,\"ttft_ms\":%u},\"status\":\"ok\"}",
                200 + gen_below(r, 3000), 20 + gen_below(r, 600), gen_below(r, 1024),
                c->tool_pending ? "tool_calls" : "stop", gen_below(r, 30), 300 + gen_below(r, 4000),
                gen_below(r, 15), 150 + gen_below(r, 600));
    }
    fputs("}\n", g->out);
}

static void
gen_tool(struct gen *g, struct gen_conv *c)
{
    struct gen_rng *r = &g->rng;
    bool timeout = gen_chance(r, 60);
    unsigned dur = timeout ? 30000 : 20 + gen_below(r, 2000);
    gen_head(g, c, "tool");
    fprintf(g->out,
            ",\"data\":{\"tool_call_id\":\"call-%u-%u\",\"name\":\"%s\",\"version\":\"1.%u\","
            "\"args\":{\"query\":\"",
            c->id, c->turn, gen_tools[c->id % 5], c->id % 3);
    gen_text(g, 3, 12);
    fprintf(g->out, "\"},\"status\":\"%s\",\"started_ms\":%lld,\"ended_ms\":%lld,\"retries\":0",
            timeout ? "timeout" : "ok", (long long)(g->now - dur), (long long)g->now);
    if (!timeout) {
        fputs(",\"result\":{\"text\":\"", g->out);
        gen_text(g, 10, 40);
        fputs("\"}}", g->out);
    } else {
        fputs("},\"error\":{\"message\":\"tool call exceeded 30s deadline\",\"errno\":"
              "\"ETIMEDOUT\"}",
              g->out);
    }
    fputs("}\n", g->out);
}

static void
gen_small(struct gen *g, struct gen_conv *c, unsigned step)
{
    struct gen_rng *r = &g->rng;
    switch (step) {
    case 0: /* HTTP request that starts the turn */
        gen_head(g, c, "transport");
        fprintf(g->out,
                ",\"data\":{\"proto\":\"http\",\"method\":\"POST\",\"path\":\"/chat\","
                "\"status\":%u,\"latency_ms\":%u,\"bytes_in\":%u,\"bytes_out\":%u,"
                "\"origin\":\"https://app.example.com\",\"user_agent\":\"Mozilla/5.0\","
                "\"auth_outcome\":\"ok\",\"mount_prefix\":\"/\"}}\n",
                gen_chance(r, 5) ? 502 : 200, 5 + gen_below(r, 90), 200 + gen_below(r, 2000),
                100 + gen_below(r, 400));
        break;
    case 1:
        gen_head(g, c, "turn");
        fprintf(g->out,
                ",\"runtime_key\":\"%s\",\"data\":{\"phase\":\"draft\",\"payload\":{"
                "\"blocks\":[{\"role\":\"user\",\"text\":\"",
                c->runtime_key);
        gen_text(g, 8, 40);
        fputs("\"}]}}}\n", g->out);
        break;
    case 2:
    case 3:
        gen_head(g, c, "middleware");
        fprintf(g->out,
                ",\"data\":{\"chain\":[\"profile-router\",\"guardrail\",\"inference\"],"
                "\"step\":\"%s\",\"duration_ms\":%u,\"decision\":\"%s\",\"rationale\":\"",
                step == 2 ? "profile-router" : "guardrail", 1 + gen_below(r, 40),
                step == 2 ? "route:default" : "allow");
        gen_text(g, 4, 12);
        fprintf(g->out,
                "\",\"guardrail\":{\"action\":\"allow\",\"category\":\"none\","
                "\"score\":0.0%u}}}\n",
                gen_below(r, 9));
        break;
    case 4: /* SEM frames of the streamed answer */
        gen_head(g, c, "sem");
        c->sem_seq += gen_chance(r, 10) ? 0 : 1; /* rare duplicate seq */
        fprintf(g->out,
                ",\"stream_id\":\"st-%u-%u\",\"seq\":%u,\"data\":{\"type\":\"llm.delta\","
                "\"id\":\"m-%u\",\"seq\":%u,\"source\":\"websocket\",\"data\":{\"delta\":\"",
                c->id, c->turn, c->sem_seq, c->turn, c->sem_seq);
        gen_text(g, 3, 15);
        fputs("\"}}}\n", g->out);
        break;
    case 5:
        gen_head(g, c, "timeline");
        fprintf(g->out,
                ",\"data\":{\"entity_id\":\"msg-%u-%u\",\"entity_kind\":\"message\","
                "\"version\":%u,\"payload\":{\"role\":\"assistant\",\"status\":\"complete\"}}}\n",
                c->id, c->turn, c->turn * 3);
        break;
    default:
        gen_head(g, c, "turn");
        fprintf(g->out,
                ",\"runtime_key\":\"%s\",\"inference_id\":\"inf-%u-%u\",\"data\":{\"phase\":"
                "\"final\",\"block_hashes\":[\"b%08x\",\"b%08x\"]}}\n",
                c->runtime_key, c->id, c->turn, (unsigned)gen_next(r), (unsigned)gen_next(r));
        break;
    }
}

/* Emits the next event of c's script; marks it done after its last event. */
static void
gen_conv_step(struct gen *g, struct gen_conv *c)
{
    struct gen_rng *r = &g->rng;
    if (c->turn == 0 && c->step == 0) {
        gen_head(g, c, "conversation");
        fprintf(g->out,
                ",\"runtime_key\":\"%s\",\"data\":{\"status\":\"active\",\"runtime_key\":\"%s\","
                "\"profile_slug\":\"default\",\"ws_conns\":1,\"ws_conns_max\":1,"
                "\"queue_depth\":0,\"stream_running\":false}}\n",
                c->runtime_key, c->runtime_key);
        c->step = 1;
        return;
    }
    if (c->turn == 0) {
        gen_head(g, c, "transport");
        fputs(",\"data\":{\"proto\":\"ws\",\"event\":\"connect\",\"path\":\"/ws\"}}\n", g->out);
        c->turn = 1;
        c->step = 0;
        return;
    }
    if (c->turn > c->turns) {
        bool abnormal = gen_chance(r, 30);
        if (c->step == 0) {
            gen_head(g, c, "transport");
            fprintf(g->out,
                    ",\"data\":{\"proto\":\"ws\",\"event\":\"disconnect\",\"reason\":\"%s\"}",
                    abnormal ? "abnormal closure (1006)" : "normal closure");
            if (abnormal)
                fputs(",\"error\":{\"message\":\"websocket: close 1006 (abnormal closure): "
                      "unexpected EOF\"}",
                      g->out);
            fputs("}\n", g->out);
            c->step = 1;
            return;
        }
        gen_head(g, c, "conversation");
        fprintf(g->out, ",\"data\":{\"status\":\"%s\",\"ws_conns\":0,\"ws_conns_max\":1}}\n",
                gen_chance(r, 150) ? "evicted" : "closed");
        c->done = true;
        return;
    }
    /* inside a turn: 0 http, 1 draft, 2-3 middleware, 4 provider, [5 tool, 6 provider],
       7-9 sem frames, 10 timeline, 11 final */
    if (c->step == 5 && !c->tool_pending)
        c->step = 7;
    unsigned s = c->step++;
    if (s <= 3) {
        gen_small(g, c, s);
    } else if (s == 4) {
        c->tool_pending = gen_chance(r, 350);
        gen_provider(g, c);
    } else if (s == 5 && c->tool_pending) {
        gen_tool(g, c);
    } else if (s == 6 && c->tool_pending) {
        c->tool_pending = 0;
        gen_provider(g, c);
    } else if (s >= 7 && s <= 9) {
        gen_small(g, c, 4);
    } else if (s == 10) {
        gen_small(g, c, 5);
    } else if (s == 11) {
        gen_small(g, c, 6);
        c->turn++;
        c->step = 0;
        c->sem_seq = 0;
        if (gen_chance(r, 100)) /* profile switch between turns */
            snprintf(c->runtime_key, sizeof c->runtime_key, "research@v%u", 1 + c->turn % 4);
    }
}

static void
gen_conv_start(struct gen *g, struct gen_conv *c)
{
    free(c->hist);
    memset(c, 0, sizeof *c);
    c->id = ++g->next_conv;
    if (g->o->hard) /* drawn only then: default output stays as it was for a seed */
        c->rid = gen_next(&g->rng);
    c->turns = 2 + gen_below(&g->rng, 7);
    c->model = gen_below(&g->rng, 4);
    snprintf(c->runtime_key, sizeof c->runtime_key, "default@v%u", 2 + c->id % 2);
}

static void
gen_runtime(struct gen *g)
{
    struct gen_rng *r = &g->rng;
    bool panic = gen_chance(r, 20);
    if (panic) {
        gen_head(g, NULL, "error");
        fputs(",\"data\":{\"panic\":true,\"where\":\"webchat.(*Conversation).stream\"},"
              "\"error\":{\"message\":\"runtime error: invalid memory address or nil pointer "
              "dereference\",\"stack\":\"goroutine 17 [running]:\\nmain.stream()\\n\\t/app/"
              "stream.go:88\"}}\n",
              g->out);
        return;
    }
    gen_head(g, NULL, "runtime");
    fprintf(g->out,
            ",\"data\":{\"build_sha\":\"3f2c9a1\",\"version\":\"1.8.2\",\"pid\":4242,"
            "\"uptime_s\":%lld,\"rss_bytes\":%u,\"cpu_pct\":%u.%u,\"threads\":%u,"
            "\"goroutines\":%u,\"gc_pause_ms\":%u,\"open_fds\":%u,\"sqlite_busy\":%u,"
            "\"deps\":{\"redis\":\"up\",\"openai\":\"%s\"}}}\n",
            (long long)((g->now - g->o->base_ms) / 1000), 80000000 + gen_below(r, 40000000),
            gen_below(r, 90), gen_below(r, 10), 20 + gen_below(r, 10), 100 + gen_below(r, 400),
            gen_below(r, 5), 40 + gen_below(r, 60), gen_below(r, 3),
            gen_chance(r, 20) ? "down" : "up");
}

void
fr_gen_opts_default(struct fr_gen_opts *o)
{
    o->seed = 42;
    o->events = 10000;
    o->concurrency = 8;
    o->base_ms = 1771357445201LL; /* 2026-02-17T19:44:05.201Z */
    o->prefix = "c";
    o->hard = 0;
    o->sensitive_pct = 0;
    o->text_path = NULL;
    o->history = 0;
}

static bool
gen_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Loads path's words into w: split at white space, each JSON-escaped; a word that is not
   UTF-8 or holds a control character is left out. false (said) when none is left. */
static bool
gen_words_load(struct gen_words *w, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fr-gen: --text %s: %s\n", path, strerror(errno));
        return false;
    }
    char *raw = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            raw = fr_realloc(raw, cap);
        }
        got = fread(raw + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    w->buf = fr_malloc(2 * len + 1); /* a byte escaped is two */
    size_t o = 0, wcap = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && gen_space(raw[i]))
            i++;
        size_t from = i;
        bool plain = true;
        for (; i < len && !gen_space(raw[i]); i++)
            plain = plain && (unsigned char)raw[i] >= 0x20 && raw[i] != 0x7f;
        if (i == from || !plain || !fr_utf8_valid(raw + from, i - from))
            continue;
        if (w->n == wcap) {
            wcap = wcap ? 2 * wcap : 4096;
            w->words = fr_realloc(w->words, wcap * sizeof *w->words);
        }
        w->words[w->n++] = (char *)(uintptr_t)o; /* an offset until buf is whole */
        for (size_t k = from; k < i; k++) {
            if (raw[k] == '"' || raw[k] == '\\')
                w->buf[o++] = '\\';
            w->buf[o++] = raw[k];
        }
        w->buf[o++] = '\0';
    }
    free(raw);
    for (size_t k = 0; k < w->n; k++)
        w->words[k] = w->buf + (uintptr_t)w->words[k];
    if (w->n == 0)
        fprintf(stderr, "fr-gen: --text %s: no words in it\n", path);
    return w->n > 0;
}

int
fr_gen_write(FILE *out, const struct fr_gen_opts *o)
{
    struct gen g = {.out = out, .o = o, .now = o->base_ms};
    g.rng.s = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    if (o->text_path != NULL && !gen_words_load(&g.text, o->text_path)) {
        free(g.text.buf);
        free(g.text.words);
        return -1;
    }
    int n = o->concurrency > 0 ? o->concurrency : 1;
    struct gen_conv *convs = fr_calloc((size_t)n, sizeof *convs);
    for (int i = 0; i < n; i++)
        gen_conv_start(&g, &convs[i]);
    for (g.written = 0; g.written < o->events; g.written++) {
        g.now += 1 + gen_below(&g.rng, 120);
        if (g.written % 25 == 24) {
            gen_runtime(&g);
            continue;
        }
        struct gen_conv *c = &convs[gen_below(&g.rng, (unsigned)n)];
        gen_conv_step(&g, c);
        if (c->done)
            gen_conv_start(&g, c);
    }
    for (int i = 0; i < n; i++)
        free(convs[i].hist);
    free(convs);
    free(g.text.buf);
    free(g.text.words);
    return ferror(out) ? -1 : 0;
}
