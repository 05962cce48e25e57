/*
 * agent/metrics.c - see metrics.h. One mutex guards everything: updates
 * are a few per transaction or request, never per byte.
 */
#include "agent/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/strmap.h"
#include "exporters/upload.h"
#include "redact/redact.h"
#include "retention/hot/store.h"

/* Latency buckets (seconds) of the commit and per-call histograms. */
static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof buckets / sizeof buckets[0])

struct hist {
    uint64_t b[NB + 1];
    uint64_t count;
    double sum;
};

static void
hist_add(struct hist *h, double v)
{
    size_t i = 0;
    while (i < NB && v > buckets[i])
        i++;
    h->b[i]++;
    h->count++;
    h->sum += v;
}

/* One labelled series: counters and an optional histogram. */
struct series {
    uint64_t c[4];
    struct hist h;
};

/* A family of series keyed by their rendered label set ("a=\"x\",b=\"y\""). */
struct family {
    struct fr_strmap *map;
};

struct fr_metrics {
    pthread_mutex_t mu;
    struct family received, rejected, http, accepted, redact_hits, redact_actions, samples;
    struct family provider, finish, tool, errors, route, triggers, bundles, otlp_rejected;
    struct family misnamed, phases;
    uint64_t uploads_sent, uploads_failed_http, uploads_failed_transport, uploads_failed_config;
    uint64_t upload_retries;
    struct hist commit;
    uint64_t commits_failed, duplicates, redact_changed, redact_scanned, redact_known;
    uint64_t otel_overflow; /* OTLP metric points counted under "other" (series cap) */
    size_t queue_high;
    int watched_pid;
    bool watched_up;
};

static void
family_init(struct family *f)
{
    f->map = fr_strmap_new();
}

static void
family_free(struct family *f)
{
    fr_strmap_free(f->map, free);
}

/* Escapes a label value per the exposition format. */
static void
label_esc(char *out, size_t cap, const char *v)
{
    size_t k = 0;
    for (; v && *v && k + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[k++] = '\\';
            out[k++] = *v;
        } else if (*v == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = *v;
        }
    }
    out[k] = '\0';
}

#define KEY_CAP 512

/* The key of a label set (pairs of name, value; NULL-terminated) into key, each value as
   "_other" when other. */
static void
family_key(char key[KEY_CAP], va_list ap, bool other)
{
    char v[160];
    size_t k = 0;
    key[0] = '\0';
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (k > 0)
            fr_str_append(key, KEY_CAP, &k, ",");
        fr_str_append(key, KEY_CAP, &k, name);
        fr_str_append(key, KEY_CAP, &k, "=\"");
        if (other) {
            fr_str_append(key, KEY_CAP, &k, "_other");
        } else {
            label_esc(v, sizeof v, value);
            fr_str_append(key, KEY_CAP, &k, v);
        }
        fr_str_append(key, KEY_CAP, &k, "\"");
    }
}

/*
 * The series for labels (pairs of name, value; NULL-terminated), created
 * when new. Called for every committed event on the writer's thread: the
 * key is built with copies, not printf, and the "_other" key only when a new
 * label set finds the family full.
 */
static struct series *
family_get(struct family *f, ...)
{
    char key[KEY_CAP];
    va_list ap;
    va_start(ap, f);
    family_key(key, ap, false);
    va_end(ap);
    struct series *s = fr_strmap_get(f->map, key);
    if (s != NULL)
        return s;
    if (fr_strmap_count(f->map) >= FR_METRICS_MAX_SERIES) {
        /* over the bound: a new label set is counted under "_other" */
        va_start(ap, f);
        family_key(key, ap, true);
        va_end(ap);
    }
    bool created;
    void **slot = fr_strmap_slot(f->map, key, &created);
    if (*slot == NULL)
        *slot = fr_calloc(1, sizeof(struct series));
    return *slot;
}

struct fr_metrics *
fr_metrics_new(void)
{
    struct fr_metrics *m = fr_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    struct family *fs[] = {&m->received,    &m->rejected,       &m->http,          &m->accepted,
                           &m->redact_hits, &m->redact_actions, &m->samples,       &m->provider,
                           &m->finish,      &m->tool,           &m->errors,        &m->route,
                           &m->triggers,    &m->bundles,        &m->otlp_rejected, &m->misnamed,
                           &m->phases};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++)
        family_init(fs[i]);
    return m;
}

void
fr_metrics_free(struct fr_metrics *m)
{
    if (m == NULL)
        return;
    struct family *fs[] = {&m->received,    &m->rejected,       &m->http,          &m->accepted,
                           &m->redact_hits, &m->redact_actions, &m->samples,       &m->provider,
                           &m->finish,      &m->tool,           &m->errors,        &m->route,
                           &m->triggers,    &m->bundles,        &m->otlp_rejected, &m->misnamed,
                           &m->phases};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++)
        family_free(fs[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void
fr_metrics_received(struct fr_metrics *m, const char *source, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->received, "source", source, NULL)->c[0] += n;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_otel_overflow(struct fr_metrics *m, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    m->otel_overflow += n;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_rejected(struct fr_metrics *m, int rc)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->rejected, "reason", fr_rc_name(rc), NULL)->c[0]++;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_ingest_phase(struct fr_metrics *m, const char *phase, double seconds)
{
    pthread_mutex_lock(&m->mu);
    hist_add(&family_get(&m->phases, "phase", phase, NULL)->h, seconds);
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_http(struct fr_metrics *m, int status)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    pthread_mutex_lock(&m->mu);
    family_get(&m->http, "code", code, NULL)->c[0]++;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_queue(struct fr_metrics *m, size_t depth)
{
    pthread_mutex_lock(&m->mu);
    if (depth > m->queue_high)
        m->queue_high = depth;
    pthread_mutex_unlock(&m->mu);
}

/* The series a batch's previous record of a family used, with its label values (the
   record's strings, compared by content). */
struct memo {
    const char *a, *b;
    struct series *s;
};

/* family_get(f, la, a[, lb, b]) (lb NULL: one label), the series m holds when its values are
   the same. */
static struct series *
memo_get(struct memo *m, struct family *f, const char *la, const char *a, const char *lb,
         const char *b)
{
    b = lb != NULL ? b : "";
    if (m->s != NULL && strcmp(m->a, a) == 0 && strcmp(m->b, b) == 0)
        return m->s;
    struct series *s = lb != NULL ? family_get(f, la, a, lb, b, NULL) : family_get(f, la, a, NULL);
    *m = (struct memo){a, b, s};
    return s;
}

/*
 * A batch's records counted. On the writer's thread after every commit: a
 * series the previous record of its family used (a batch's calls mostly share
 * a provider and model) is taken without building its key.
 */
void
fr_metrics_committed(struct fr_metrics *m, const struct fr_record *recs, size_t n, int rc,
                     double seconds)
{
    pthread_mutex_lock(&m->mu);
    if (rc != FR_OK) {
        m->commits_failed++;
        pthread_mutex_unlock(&m->mu);
        return;
    }
    hist_add(&m->commit, seconds);
    uint64_t by_kind[FR_KIND_COUNT] = {0}; /* one look-up per kind of the batch */
    struct memo provider = {0}, finish = {0}, tool = {0}, errors = {0};
    for (size_t i = 0; i < n; i++) {
        const struct fr_record *r = &recs[i];
        if (r->part)
            continue; /* messages of an event, not one */
        if ((unsigned)r->kind < FR_KIND_COUNT)
            by_kind[r->kind]++;
        double lat = r->has_duration ? (double)r->duration_ms / 1000.0 : -1;
        const char *model = r->model ? r->model : "";
        if (r->kind == FR_KIND_PROVIDER) {
            const char *prov = r->provider ? r->provider : "";
            struct series *s = memo_get(&provider, &m->provider, "provider", prov, "model", model);
            s->c[0]++;
            s->c[1] += r->has_error;
            s->c[2] += (uint64_t)(r->tokens[FR_TOKEN_INPUT] > 0 ? r->tokens[FR_TOKEN_INPUT] : 0);
            s->c[3] += (uint64_t)(r->tokens[FR_TOKEN_OUTPUT] > 0 ? r->tokens[FR_TOKEN_OUTPUT] : 0);
            if (lat >= 0)
                hist_add(&s->h, lat);
            const char *meaning = r->finish_meaning; /* how it ended: truncated, filtered, ... */
            if (meaning != NULL)
                memo_get(&finish, &m->finish, "model", model, "meaning", meaning)->c[0]++;
        } else if (r->kind == FR_KIND_TOOL) {
            const char *name = r->tool ? r->tool : "";
            struct series *s = memo_get(&tool, &m->tool, "tool", name, NULL, NULL);
            s->c[0]++;
            s->c[1] += r->has_error;
            if (lat >= 0)
                hist_add(&s->h, lat);
        } else if (r->kind == FR_KIND_TRANSPORT && r->route != NULL) {
            family_get(&m->route, "path", r->route, "status", r->status ? r->status : "", NULL)
                ->c[0]++;
        }
        if (r->has_error) {
            const char *klass = fr_error_class_name(r->err.klass);
            const char *code = r->err.code ? r->err.code : "";
            memo_get(&errors, &m->errors, "class", klass, "code", code)->c[0]++;
        }
    }
    for (int k = 0; k < FR_KIND_COUNT; k++)
        if (by_kind[k] > 0)
            family_get(&m->accepted, "kind", fr_kind_name((enum fr_kind)k), NULL)->c[0] +=
                by_kind[k];
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_redaction(struct fr_metrics *m, const struct fr_redactor *r,
                     const struct fr_redact_counts *c)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < c->ndetectors; i++)
        if (c->hits[i] > 0)
            family_get(&m->redact_hits, "detector", fr_redactor_detector_name(r, i), NULL)->c[0] +=
                c->hits[i];
    for (int a = 0; a < FR_ACT_COUNT; a++)
        if (c->actions[a] > 0)
            family_get(&m->redact_actions, "action", fr_action_name(a), NULL)->c[0] +=
                c->actions[a];
    m->redact_changed += c->events_changed;
    m->redact_scanned += c->bytes_scanned;
    m->redact_known += c->bytes_known;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_misnamed(struct fr_metrics *m, const char *field, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->misnamed, "field", field, NULL)->c[0] += n;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_otlp_rejected(struct fr_metrics *m, const char *signal, const char *reason, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->otlp_rejected, "signal", signal, "reason", reason, NULL)->c[0] += n;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_trigger(struct fr_metrics *m, const char *rule, const char *outcome)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->triggers, "rule", rule, "outcome", outcome, NULL)->c[0]++;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_bundle(struct fr_metrics *m, const char *rule, bool ok)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->bundles, "rule", rule, "result", ok ? "ok" : "failed", NULL)->c[0]++;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_uploads(struct fr_metrics *m, const struct fr_outbox_stats *st)
{
    pthread_mutex_lock(&m->mu);
    m->uploads_sent += st->sent;
    m->uploads_failed_http += st->failed_http;
    m->uploads_failed_transport += st->failed_transport;
    m->uploads_failed_config += st->failed_config;
    m->upload_retries += st->retries;
    pthread_mutex_unlock(&m->mu);
}

void
fr_metrics_sample(struct fr_metrics *m, const char *target, int pid, bool ok)
{
    pthread_mutex_lock(&m->mu);
    family_get(&m->samples, "target", target, "result", ok ? "ok" : "failed", NULL)->c[0]++;
    if (strcmp(target, "watched") == 0) {
        m->watched_pid = pid;
        m->watched_up = ok;
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

struct out {
    char *buf;
    size_t len, cap;
};

static void
put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)n;
        o->buf = fr_realloc(o->buf, o->cap);
    }
}

static void
head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct each_ctx {
    struct out *o;
    const char *name;
    int idx;      /* counter index, or -1 for the histogram */
    double scale; /* multiplier of the counter */
};

static void
hist_render(struct out *o, const char *name, const char *labels, const struct hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < NB; i++) {
        cum += h->b[i];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, buckets[i],
            (unsigned long long)cum);
    }
    cum += h->b[NB];
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    if (labels[0])
        put(o, "%s_sum{%s} %g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
            (unsigned long long)h->count);
    else
        put(o, "%s_sum %g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static int
each_series(void *ud, const char *key, void *value)
{
    struct each_ctx *c = ud;
    const struct series *s = value;
    if (c->idx < 0)
        hist_render(c->o, c->name, key, &s->h);
    else
        put(c->o, "%s{%s} %llu\n", c->name, key, (unsigned long long)s->c[c->idx]);
    return 0;
}

static void
family_render(struct out *o, struct family *f, const char *name, const char *type, const char *help,
              int idx)
{
    head(o, name, type, help);
    struct each_ctx c = {o, name, idx, 1};
    fr_strmap_each(f->map, each_series, &c);
}

char *
fr_metrics_render(struct fr_metrics *m, const struct fr_metrics_gauges *g, size_t *len)
{
    struct out o = {fr_malloc(8192), 0, 8192};
    pthread_mutex_lock(&m->mu);
    if (g->queue_events > m->queue_high)
        m->queue_high = g->queue_events;
    family_render(&o, &m->received, "flightrec_events_received_total", "counter",
                  "Event lines received, by source.", 0);
    family_render(&o, &m->accepted, "flightrec_events_accepted_total", "counter",
                  "Events committed to the hot store (durable), by kind.", 0);
    family_render(&o, &m->rejected, "flightrec_events_rejected_total", "counter",
                  "Event lines rejected, by reason.", 0);
    family_render(&o, &m->http, "flightrec_http_responses_total", "counter",
                  "HTTP answers, by status code.", 0);
    head(&o, "flightrec_otlp_metric_series_overflow_total", "counter",
         "OTLP GenAI metric points counted under provider and model \"other\": past the cap "
         "of distinct provider/model pairs.");
    put(&o, "flightrec_otlp_metric_series_overflow_total %llu\n",
        (unsigned long long)m->otel_overflow);
    head(&o, "flightrec_queue_events", "gauge", "Events queued for the writer, not yet committed.");
    put(&o, "flightrec_queue_events %zu\n", g->queue_events);
    head(&o, "flightrec_queue_capacity_events", "gauge",
         "Queue bound; past it ingest answers 429.");
    put(&o, "flightrec_queue_capacity_events %zu\n", g->queue_capacity);
    head(&o, "flightrec_queue_high_water_events", "gauge", "Highest queue depth seen.");
    put(&o, "flightrec_queue_high_water_events %zu\n", m->queue_high);
    head(&o, "flightrec_commit_seconds", "histogram", "Duration of a group commit.");
    hist_render(&o, "flightrec_commit_seconds", "", &m->commit);
    family_render(&o, &m->phases, "flightrec_ingest_seconds", "histogram",
                  "Time an ingest request spent in each phase before its answer: admission "
                  "(waiting for a preparing slot), prepare (framing, parsing, collecting, "
                  "redacting, on the receiving thread), commit (queued for the writer and in "
                  "its transaction, until durable).",
                  -1);
    head(&o, "flightrec_commits_failed_total", "counter", "Transactions that failed.");
    put(&o, "flightrec_commits_failed_total %llu\n", (unsigned long long)m->commits_failed);
    head(&o, "flightrec_store_bytes", "gauge", "Size of the hot store (database and WAL).");
    put(&o, "flightrec_store_bytes %lld\n", (long long)g->store_bytes);
    if (g->disk_bytes > 0) {
        head(&o, "flightrec_store_disk_free_bytes", "gauge",
             "Bytes left for the agent on the file system holding the hot store; at 0 every "
             "commit fails and ingest is refused (docs/storage.md, When the disk fills).");
        put(&o, "flightrec_store_disk_free_bytes %lld\n", (long long)g->disk_free_bytes);
        head(&o, "flightrec_store_disk_bytes", "gauge",
             "Size of the file system holding the hot store.");
        put(&o, "flightrec_store_disk_bytes %lld\n", (long long)g->disk_bytes);
    }
    if (g->wal != NULL) {
        head(&o, "flightrec_store_wal_checkpoints_total", "counter",
             "WAL checkpoints of the hot store, by who ran them: the store's background thread, "
             "or the writer once the WAL reached its bound (docs/storage.md, Checkpoints).");
        put(&o, "flightrec_store_wal_checkpoints_total{by=\"background\"} %llu\n",
            (unsigned long long)g->wal->background);
        put(&o, "flightrec_store_wal_checkpoints_total{by=\"writer\"} %llu\n",
            (unsigned long long)g->wal->writer);
        head(&o, "flightrec_store_wal_pages", "gauge",
             "Pages in the hot store's WAL after the latest commit.");
        put(&o, "flightrec_store_wal_pages %d\n", g->wal->frames);
    }
    head(&o, "flightrec_ready", "gauge", "1 when /readyz answers 200.");
    put(&o, "flightrec_ready %d\n", g->ready);
    family_render(&o, &m->samples, "flightrec_runtime_samples_total", "counter",
                  "Runtime sampler attempts, by target and result.", 0);
    head(&o, "flightrec_runtime_target_up", "gauge",
         "1 when the watched process was found at the last sample.");
    put(&o, "flightrec_runtime_target_up{pid=\"%d\"} %d\n", m->watched_pid, m->watched_up);
    family_render(&o, &m->redact_hits, "flightrec_redaction_hits_total", "counter",
                  "Detector hits replaced before storage, by detector.", 0);
    family_render(&o, &m->redact_actions, "flightrec_redaction_actions_total", "counter",
                  "Values changed by the redaction policy, by action.", 0);
    head(&o, "flightrec_redaction_events_changed_total", "counter",
         "Events the redaction policy changed.");
    put(&o, "flightrec_redaction_events_changed_total %llu\n",
        (unsigned long long)m->redact_changed);
    head(&o, "flightrec_redaction_text_bytes_total", "counter",
         "Text of events (values, keys, ids; a byte more each) by what redaction did with it: "
         "scanned by the detectors, or known clean from an earlier event's scan and not scanned "
         "again (a conversation's history that a provider request sends again).");
    put(&o, "flightrec_redaction_text_bytes_total{by=\"scanned\"} %llu\n",
        (unsigned long long)m->redact_scanned);
    put(&o, "flightrec_redaction_text_bytes_total{by=\"known_clean\"} %llu\n",
        (unsigned long long)m->redact_known);
    family_render(&o, &m->provider, "flightrec_provider_calls_total", "counter",
                  "LLM provider calls, by provider and model.", 0);
    family_render(&o, &m->provider, "flightrec_provider_errors_total", "counter",
                  "Failed LLM provider calls, by provider and model.", 1);
    family_render(&o, &m->provider, "flightrec_provider_input_tokens_total", "counter",
                  "Input tokens, by provider and model.", 2);
    family_render(&o, &m->provider, "flightrec_provider_output_tokens_total", "counter",
                  "Output tokens, by provider and model.", 3);
    family_render(&o, &m->provider, "flightrec_provider_latency_seconds", "histogram",
                  "Provider call latency, by provider and model.", -1);
    family_render(&o, &m->finish, "flightrec_provider_finishes_total", "counter",
                  "LLM provider calls that named a finish reason, by model and what the reason "
                  "means (complete, truncated, filtered, tool_call, error, other).",
                  0);
    family_render(&o, &m->tool, "flightrec_tool_calls_total", "counter", "Tool calls, by tool.", 0);
    family_render(&o, &m->tool, "flightrec_tool_errors_total", "counter",
                  "Failed tool calls, by tool.", 1);
    family_render(&o, &m->tool, "flightrec_tool_latency_seconds", "histogram",
                  "Tool call duration, by tool.", -1);
    family_render(&o, &m->errors, "flightrec_errors_total", "counter",
                  "Failures, by error class and code.", 0);
    family_render(&o, &m->route, "flightrec_transport_requests_total", "counter",
                  "Chat server HTTP requests, by route and status.", 0);
    family_render(&o, &m->otlp_rejected, "flightrec_otlp_rejected_total", "counter",
                  "OTLP requests refused whole (reason media_type, encoding, malformed, "
                  "too_large, queue_full, unavailable) and items refused inside accepted "
                  "requests (reason invalid), by signal.",
                  0);
    family_render(&o, &m->misnamed, "flightrec_events_misnamed_total", "counter",
                  "Accepted events without an envelope field but with a key that most likely "
                  "meant it (conversation_id for conv_id, ...), or without the error of an event "
                  "of kind error, by the field.",
                  0);
    family_render(&o, &m->triggers, "flightrec_incident_triggers_total", "counter",
                  "Incident trigger evaluations that matched, by rule and outcome.", 0);
    family_render(&o, &m->bundles, "flightrec_incident_bundles_total", "counter",
                  "Incident bundles built by triggers, by rule and result.", 0);
    head(&o, "flightrec_uploads_total", "counter", "Bundle upload attempts from the outbox.");
    put(&o, "flightrec_uploads_total{result=\"sent\"} %llu\n", (unsigned long long)m->uploads_sent);
    put(&o, "flightrec_uploads_total{result=\"failed\",reason=\"http_status\"} %llu\n",
        (unsigned long long)m->uploads_failed_http);
    put(&o, "flightrec_uploads_total{result=\"failed\",reason=\"transport\"} %llu\n",
        (unsigned long long)m->uploads_failed_transport);
    put(&o, "flightrec_uploads_total{result=\"failed\",reason=\"no_target\"} %llu\n",
        (unsigned long long)m->uploads_failed_config);
    head(&o, "flightrec_upload_retries_total", "counter", "Upload attempts beyond the first.");
    put(&o, "flightrec_upload_retries_total %llu\n", (unsigned long long)m->upload_retries);
    head(&o, "flightrec_outbox_bundles", "gauge", "Bundles waiting in the outbox.");
    put(&o, "flightrec_outbox_bundles %zu\n", g->outbox);
    head(&o, "flightrec_http_inflight_bytes", "gauge",
         "Bytes of request bodies (HTTP) and OTLP/gRPC messages held now (bounded by "
         "http.max_inflight_bytes).");
    put(&o, "flightrec_http_inflight_bytes %zu\n", g->inflight_bytes);
    head(&o, "flightrec_http_queue_waiting", "gauge",
         "POSTs to /v1/events and OTLP/HTTP and OTLP/gRPC calls waiting at their headers for "
         "ingest queue room (http.queue_wait), their bodies unread.");
    put(&o, "flightrec_http_queue_waiting %zu\n", g->queue_waiting);
    head(&o, "flightrec_archive_bad_segments", "gauge",
         "Archive segments found unreadable (corrupt, altered, missing); /readyz names them.");
    put(&o, "flightrec_archive_bad_segments %zu\n", g->bad_segments);
    if (g->retention != NULL && g->retention->runs > 0) {
        const struct fr_retention_state *r = g->retention;
        head(&o, "flightrec_retention_runs_total", "counter",
             "Retention runs of the agent's job (result: ok or failed).");
        put(&o, "flightrec_retention_runs_total{result=\"ok\"} %lld\n",
            (long long)(r->runs - r->failures));
        put(&o, "flightrec_retention_runs_total{result=\"failed\"} %lld\n", (long long)r->failures);
        head(&o, "flightrec_retention_disk_runs_total", "counter",
             "Retention runs started because the hot store's disk had less free than "
             "hot.min_free_percent (the oldest hot events moved to warm early).");
        put(&o, "flightrec_retention_disk_runs_total %lld\n", (long long)r->disk_runs);
        head(&o, "flightrec_retention_last_run_timestamp_seconds", "gauge",
             "When the last retention run ended (Unix seconds).");
        put(&o, "flightrec_retention_last_run_timestamp_seconds %lld\n",
            (long long)(r->last_ms / 1000));
        head(&o, "flightrec_retention_last_run_ok", "gauge", "1 when the last run finished.");
        put(&o, "flightrec_retention_last_run_ok %d\n", r->last_ok ? 1 : 0);
        head(&o, "flightrec_archive_segments", "gauge", "Archive segments per tier (manifest).");
        head(&o, "flightrec_archive_bytes", "gauge", "Bytes of archive segments per tier.");
        for (int t = 0; t < 2; t++) {
            const char *tier = t == 0 ? "warm" : "cold";
            put(&o, "flightrec_archive_segments{tier=\"%s\"} %lld\n", tier,
                (long long)r->segments[t]);
            put(&o, "flightrec_archive_bytes{tier=\"%s\"} %lld\n", tier, (long long)r->bytes[t]);
        }
    }
    if (g->bucket != NULL && g->bucket->enabled) {
        head(&o, "flightrec_archive_bucket_up", "gauge",
             "1 when the last retention run uploaded every segment due to the bucket "
             "(bucket.url).");
        put(&o, "flightrec_archive_bucket_up %d\n", g->bucket->up ? 1 : 0);
        head(&o, "flightrec_archive_bucket_uploads_total", "counter",
             "Objects (segments, the MANIFEST) uploaded to the bucket.");
        put(&o, "flightrec_archive_bucket_uploads_total %lld\n", (long long)g->bucket->uploads);
        head(&o, "flightrec_archive_bucket_failures_total", "counter",
             "Retention runs whose bucket sync failed (everything stayed local).");
        put(&o, "flightrec_archive_bucket_failures_total %lld\n", (long long)g->bucket->failures);
        head(&o, "flightrec_archive_bucket_pending_segments", "gauge",
             "Segments not in the bucket yet, kept locally.");
        put(&o, "flightrec_archive_bucket_pending_segments %lld\n", (long long)g->bucket->pending);
        head(&o, "flightrec_archive_bucket_remote_segments", "gauge",
             "Segments held only in the bucket (their local copies evicted).");
        put(&o, "flightrec_archive_bucket_remote_segments %lld\n", (long long)g->bucket->remote);
    }
    if (g->ship != NULL && g->ship->enabled) {
        head(&o, "flightrec_ship_up", "gauge",
             "1 when the last attempt to ship reached the fleet store (ship.url).");
        put(&o, "flightrec_ship_up %d\n", g->ship->up ? 1 : 0);
        head(&o, "flightrec_ship_lag_seconds", "gauge",
             "Age of the oldest committed event not yet in the fleet store; 0 = caught up.");
        put(&o, "flightrec_ship_lag_seconds %.3f\n", (double)g->ship->lag_ms / 1000.0);
        head(&o, "flightrec_ship_events_total", "counter",
             "Events the fleet store took as new (a batch sent again counts once).");
        put(&o, "flightrec_ship_events_total %lld\n", (long long)g->ship->shipped);
        head(&o, "flightrec_ship_batches_total", "counter",
             "Batches committed in the fleet store.");
        put(&o, "flightrec_ship_batches_total %lld\n", (long long)g->ship->batches);
        head(&o, "flightrec_ship_failures_total", "counter",
             "Shipping attempts that failed (fleet store unreachable or refusing); retried.");
        put(&o, "flightrec_ship_failures_total %lld\n", (long long)g->ship->failures);
    }
    pthread_mutex_unlock(&m->mu);
    *len = o.len;
    return o.buf;
}
