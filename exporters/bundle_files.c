/*
 * exporters/bundle_files.c - the member files of a bundle: one NDJSON file
 * per domain, errors.ndjson, replay.ndjson (the stored envelopes, ingestible
 * again), raw.ndjson (sealed payloads, --include-raw) and summary.md.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectors/collector.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "exporters/bundle_int.h"
#include "exporters/render.h"
#include "retention/retention.h"

static const char *
or_(const char *a, const char *b)
{
    return a ? a : b;
}

static void
file_put(struct fr_bfile *f, const char *s, size_t n)
{
    if (f->len + n + 1 > f->cap) {
        f->cap = (f->len + n + 1) * 2;
        f->data = fr_realloc(f->data, f->cap);
    }
    memcpy(f->data + f->len, s, n);
    f->len += n;
    f->data[f->len] = '\0';
}

static void
file_json(struct fr_bfile *f, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    file_put(f, s, strlen(s));
    file_put(f, "\n", 1);
    f->records++;
    free(s);
}

static void file_printf(struct fr_bfile *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
file_printf(struct fr_bfile *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n > 0)
        file_put(f, s, (size_t)n);
    free(s);
}

static const char *const file_names[F_COUNT] = {
    "conversations.ndjson", "conversation_events.ndjson",
    "turns.ndjson",         "timeline.ndjson",
    "sem.ndjson",           "provider.ndjson",
    "tool.ndjson",          "middleware.ndjson",
    "transport.ndjson",     "runtime.ndjson",
    "errors.ndjson",        "replay.ndjson",
    "raw.ndjson",           "summary.md"};

static int
kind_file(const char *kind)
{
    static const struct {
        const char *kind;
        int file;
    } map[] = {{"conversation", F_CONV_EVENTS}, {"turn", F_TURNS},
               {"timeline", F_TIMELINE},        {"sem", F_SEM},
               {"provider", F_PROVIDER},        {"tool", F_TOOL},
               {"middleware", F_MIDDLEWARE},    {"transport", F_TRANSPORT},
               {"runtime", F_RUNTIME},          {"error", F_ERRORS}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (kind && strcmp(kind, map[i].kind) == 0)
            return map[i].file;
    return F_ERRORS;
}

static const char *
meta_str(const json_t *ev, const char *k)
{
    return json_string_value(json_object_get(json_object_get(ev, "flightrec"), k));
}

static int64_t
meta_int(const json_t *ev, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(ev, "flightrec"), k));
}

static int
dur_cmp(const void *a, const void *b)
{
    int64_t x = meta_int(*(json_t *const *)a, "duration_ms"),
            y = meta_int(*(json_t *const *)b, "duration_ms");
    return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * summary.md quotes what producers sent (conversation ids, models, tool names,
 * error messages), which may hold any character: a '|' would split a table
 * cell, a newline end a list item or a row, a backtick close a code span, a
 * control character reach the terminal of whoever cats the file. md() makes a
 * Markdown-safe copy for one line: control characters written visibly (\x1b,
 * as the CLI prints them), '|' escaped in a table cell, a code span fenced by
 * more backticks than it holds; md_done() frees a line's copies.
 */
enum md_as { MD_TEXT, MD_CELL, MD_CODE };

struct md_line {
    char *s[8];
    size_t n;
};

static const char *
md(struct md_line *l, const char *s, enum md_as as, const char *none)
{
    if (s == NULL || l->n == sizeof l->s / sizeof *l->s)
        return none;
    size_t cap = 6 * strlen(s) + 1; /* a 2-byte C1 control becomes 6 ("\u009b") */
    char *esc = fr_malloc(cap);
    size_t len = fr_escape_controls(s, strlen(s), false, esc, cap), run = 0, fence = 0;
    for (size_t i = 0; i < len; i++) {
        run = esc[i] == '`' ? run + 1 : 0;
        fence = run > fence ? run : fence;
    }
    fence = as == MD_CODE ? fence + 1 : 0;
    /* a code span that starts or ends with a backtick needs a space inside its fence */
    bool pad = as == MD_CODE && len > 0 && (esc[0] == '`' || esc[len - 1] == '`');
    char *o = fr_malloc(2 * len + 2 * fence + 3), *w = o;
    memset(w, '`', fence), w += fence;
    if (pad)
        *w++ = ' ';
    for (size_t i = 0; i < len; i++) {
        if (esc[i] == '|' && as == MD_CELL)
            *w++ = '\\';
        *w++ = esc[i];
    }
    if (pad)
        *w++ = ' ';
    memset(w, '`', fence), w += fence;
    *w = '\0';
    free(esc);
    return l->s[l->n++] = o;
}

static void
md_done(struct md_line *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    l->n = 0;
}

/* summary.md: what a person reads first. */
static void
write_summary(struct fr_bfile *f, json_t *events, json_t *convs, const char *id,
              const char *sel_text)
{
    char ts[32], te[32];
    struct md_line l = {0};
    size_t n = json_array_size(events);
    file_printf(f, "# Incident bundle %s\n\nSelection: %s\n\n", id, md(&l, sel_text, MD_TEXT, ""));
    md_done(&l);
    if (n > 0) {
        fr_time_format(json_integer_value(json_object_get(json_array_get(events, 0), "ts_ms")), ts,
                       sizeof ts);
        fr_time_format(json_integer_value(json_object_get(json_array_get(events, n - 1), "ts_ms")),
                       te, sizeof te);
        file_printf(f, "%zu events, %zu conversations, from %s to %s.\n\n", n,
                    json_array_size(convs), ts, te);
    } else {
        file_printf(f, "No events matched.\n\n");
    }
    file_printf(f, "## Conversations\n\n| conversation | status | events | errors | last error |\n"
                   "| --- | --- | --- | --- | --- |\n");
    size_t i;
    json_t *c;
    json_array_foreach(convs, i, c)
    {
        json_t *le = json_object_get(c, "last_error");
        file_printf(f, "| %s | %s | %lld | %lld | %s |\n",
                    md(&l, json_string_value(json_object_get(c, "conv_id")), MD_CELL, "-"),
                    md(&l, json_string_value(json_object_get(c, "status")), MD_CELL, "-"),
                    (long long)json_integer_value(json_object_get(c, "event_count")),
                    (long long)json_integer_value(json_object_get(c, "error_count")),
                    md(&l, json_string_value(json_object_get(le, "error_code")), MD_CELL, "-"));
        md_done(&l);
    }
    file_printf(f, "\n## Timeline of failures\n\n");
    json_t *codes = json_object(), *tools = json_object();
    json_t *ev;
    size_t failures = 0;
    json_array_foreach(events, i, ev)
    {
        const char *code = meta_str(ev, "error_code");
        if (code == NULL)
            continue;
        failures++;
        fr_time_format(json_integer_value(json_object_get(ev, "ts_ms")), ts, sizeof ts);
        if (failures <= 100)
            file_printf(f, "- %s %s %s — %s\n", ts,
                        md(&l, json_string_value(json_object_get(ev, "conv_id")), MD_CODE, "`-`"),
                        md(&l, code, MD_TEXT, ""),
                        md(&l, meta_str(ev, "error_message"), MD_TEXT, ""));
        md_done(&l);
        json_object_set_new(codes, code,
                            json_integer(json_integer_value(json_object_get(codes, code)) + 1));
        const char *tool = meta_str(ev, "tool");
        if (tool)
            json_object_set_new(tools, tool,
                                json_integer(json_integer_value(json_object_get(tools, tool)) + 1));
    }
    if (failures == 0)
        file_printf(f, "No failures.\n");
    else if (failures > 100)
        file_printf(f, "- … %zu more in errors.ndjson\n", failures - 100);
    file_printf(f, "\n## Errors by code\n\n");
    const char *k;
    json_t *v;
    json_object_foreach(codes, k, v)
    {
        file_printf(f, "- %s: %lld\n", md(&l, k, MD_CODE, ""), (long long)json_integer_value(v));
        md_done(&l);
    }
    file_printf(f, "\n## Failing tools\n\n");
    if (json_object_size(tools) == 0)
        file_printf(f, "None.\n");
    json_object_foreach(tools, k, v)
    {
        file_printf(f, "- %s: %lld failures\n", md(&l, k, MD_CODE, ""),
                    (long long)json_integer_value(v));
        md_done(&l);
    }
    /* calls that succeeded but whose answer did not reach the user whole: no failure, but
       often what the user complained of */
    file_printf(f, "\n## Answers cut short\n\n");
    size_t cut = 0;
    json_array_foreach(events, i, ev)
    {
        const char *fin =
            json_string_value(json_object_get(json_object_get(ev, "data"), "finish_reason"));
        const char *meaning = fr_finish_meaning(fin);
        if (meta_str(ev, "error_code") != NULL ||
            strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "provider") != 0 ||
            fr_finish_shortfall(meaning) == NULL)
            continue;
        if (++cut <= 50) {
            fr_time_format(json_integer_value(json_object_get(ev, "ts_ms")), ts, sizeof ts);
            file_printf(f, "- %s %s %s: %s (finish_reason %s)\n", ts,
                        md(&l, json_string_value(json_object_get(ev, "conv_id")), MD_CODE, "`-`"),
                        md(&l, meta_str(ev, "model"), MD_TEXT, "?"), meaning,
                        md(&l, fin, MD_CODE, ""));
            md_done(&l);
        }
    }
    if (cut == 0)
        file_printf(f, "None: no call stopped at the token limit or was filtered.\n");
    else if (cut > 50)
        file_printf(f, "- … %zu more in provider.ndjson\n", cut - 50);
    /* slowest provider calls */
    json_t **prov = fr_malloc((n ? n : 1) * sizeof *prov);
    size_t np = 0;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "provider") == 0 &&
            json_is_integer(json_object_get(json_object_get(ev, "flightrec"), "duration_ms")))
            prov[np++] = ev;
    }
    qsort(prov, np, sizeof *prov, dur_cmp);
    file_printf(f, "\n## Slowest provider calls\n\n");
    if (np == 0)
        file_printf(f, "None with a duration.\n");
    for (size_t p = 0; p < np && p < 5; p++) {
        fr_time_format(json_integer_value(json_object_get(prov[p], "ts_ms")), ts, sizeof ts);
        file_printf(f, "- %s %s %s/%s: %lld ms\n", ts,
                    md(&l, json_string_value(json_object_get(prov[p], "conv_id")), MD_CODE, "`-`"),
                    md(&l, meta_str(prov[p], "provider"), MD_TEXT, "?"),
                    md(&l, meta_str(prov[p], "model"), MD_TEXT, "?"),
                    (long long)meta_int(prov[p], "duration_ms"));
        md_done(&l);
    }
    free(prov);
    /* runtime peaks */
    int64_t max_rss = 0, max_threads = 0;
    double max_cpu = 0;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "runtime") != 0)
            continue;
        json_t *d = json_object_get(ev, "data");
        int64_t rss = json_integer_value(json_object_get(d, "rss_bytes"));
        int64_t th = json_integer_value(json_object_get(d, "threads"));
        double cpu = json_number_value(json_object_get(d, "cpu_pct"));
        max_rss = rss > max_rss ? rss : max_rss;
        max_threads = th > max_threads ? th : max_threads;
        max_cpu = cpu > max_cpu ? cpu : max_cpu;
    }
    file_printf(f, "\n## Runtime peaks in the window\n\n");
    if (max_rss == 0 && max_threads == 0)
        file_printf(f, "No runtime samples.\n");
    else
        file_printf(f, "- RSS %.1f MiB, CPU %.1f %%, threads %lld\n", (double)max_rss / 1048576.0,
                    max_cpu, (long long)max_threads);
    json_decref(codes);
    json_decref(tools);
}

struct anomaly_ctx {
    struct fr_bfile *f;
    size_t n;
};

static int
anomaly_row(void *ud, const struct fr_anomaly_row *r)
{
    struct anomaly_ctx *c = ud;
    char ts[32];
    struct md_line l = {0};
    if (c->n++ < 50)
        file_printf(c->f, "- %s stream %s: %s at seq %lld (expected %lld)\n",
                    fr_time_format(r->ts_ms, ts, sizeof ts), md(&l, r->stream_id, MD_CODE, "`-`"),
                    r->anomaly, (long long)r->seq, (long long)r->expected);
    md_done(&l);
    return 0;
}

static int
conv_row(void *ud, const struct fr_conv_row *r)
{
    json_array_append_new(ud, fr_render_conv(r));
    return 0;
}

int
fr_bundle_build_files(struct fr_store *st, const struct fr_bundle_select *sel,
                      const struct fr_bundle_gather *g, const char *bundle_id,
                      struct fr_bfile files[F_COUNT], json_t *convrows, json_t *policies,
                      struct fr_err *err)
{
    int rc = FR_OK;
    for (int i = 0; i < F_COUNT; i++)
        files[i] = (struct fr_bfile){.name = file_names[i]};
    if (rc == FR_OK) {
        const char *conv;
        json_t *v;
        json_object_foreach(g->convs, conv, v)
        {
            /* a conversation the index no longer knows is fine; a failed read is not:
               a bundle is never signed over what could not be read */
            struct fr_err e2 = {0};
            int crc = fr_store_conversation(st, conv, conv_row, convrows, &e2);
            if (crc == FR_OK)
                file_json(&files[F_CONVS], json_array_get(convrows, json_array_size(convrows) - 1));
            else if (crc != FR_E_NOTFOUND && rc == FR_OK)
                rc = fr_err_set(err, crc, "bundle: reading conversation %s: %s", conv, e2.msg);
        }
        size_t i;
        json_t *ev;
        json_array_foreach(g->events, i, ev)
        {
            file_json(&files[kind_file(json_string_value(json_object_get(ev, "kind")))], ev);
            if (meta_str(ev, "error_code") &&
                strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "error") != 0)
                file_json(&files[F_ERRORS], ev);
            const char *pol = meta_str(ev, "redaction_policy");
            if (pol)
                json_object_set_new(policies, pol, json_true());
            /* the replay: the stored envelope, as it can be ingested again */
            json_t *wire = json_deep_copy(ev);
            json_object_del(wire, "flightrec");
            file_json(&files[F_REPLAY], wire);
            json_decref(wire);
        }
        /* --include-raw: the sealed raw-mode payloads, still encrypted */
        const char *rid;
        json_t *sealed;
        json_object_foreach(g->raw, rid, sealed)
        {
            json_t *line = json_pack("{s:I,s:O}", "id", (json_int_t)atoll(rid), "sealed", sealed);
            file_json(&files[F_RAW], line);
            json_decref(line);
        }
        char sel_text[512], since[32] = "the beginning", until[32] = "now";
        if (sel->since_ms > 0)
            fr_time_format(sel->since_ms, since, sizeof since);
        if (sel->until_ms > 0)
            fr_time_format(sel->until_ms, until, sizeof until);
        snprintf(sel_text, sizeof sel_text,
                 "%zu conversation(s) named, from %s to %s, error class %s, error code %s, "
                 "trace %s",
                 sel->nconvs, since, until, sel->error_class ? sel->error_class : "-",
                 sel->error_code ? sel->error_code : "-", sel->trace_id ? sel->trace_id : "-");
        write_summary(&files[F_SUMMARY], g->events, convrows, bundle_id, sel_text);
        file_printf(&files[F_SUMMARY], "\n## Ordering anomalies (SEM)\n\n");
        struct anomaly_ctx ac = {&files[F_SUMMARY], 0};
        json_object_foreach(g->convs, conv, v)
        {
            struct fr_err e2 = {0};
            int arc = fr_store_anomalies(st, conv, 0, anomaly_row, &ac, &e2);
            if (arc != FR_OK && rc == FR_OK)
                rc = fr_err_set(err, arc, "bundle: reading the ordering anomalies of %s: %s", conv,
                                e2.msg);
        }
        if (ac.n == 0)
            file_printf(&files[F_SUMMARY], "None.\n");
        if (g->cold_skipped > 0)
            file_printf(&files[F_SUMMARY],
                        "\n**%zu cold segments were not read (no cold key): older events may be "
                        "missing.**\n",
                        g->cold_skipped);
    }

    return rc;
}
