/*
 * agent/cli/cmd_stats.c - `flightrec errors` (failures, listed or grouped) and
 * `flightrec stats` (the per-minute rollups summed over a time range, with
 * latency percentiles estimated from the histogram buckets).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli/cli.h"
#include "collectors/collector.h"
#include "core/crypto.h"
#include "core/timeutil.h"
#include "retention/hot/store.h"
#include "retention/retention.h"

/* ---- errors ---- */

/* Failures from every tier, gathered then listed newest first. */
struct err_item {
    int64_t ts;
    char *conv, *code, *what, *msg;
    const char *tier;
};

struct err_list {
    struct err_item *v;
    size_t n, cap;
};

static int
errors_collect(void *ud, const struct fr_event_row *r)
{
    struct err_list *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    const char *what = r->model ? r->model : r->tool ? r->tool : "-";
    l->v[l->n++] = (struct err_item){r->ts_ms,
                                     strdup(r->ids[FR_ID_CONV] ? r->ids[FR_ID_CONV] : "-"),
                                     strdup(r->error_code ? r->error_code : "-"),
                                     strdup(what),
                                     strdup(r->error_message ? r->error_message : ""),
                                     !r->tier                       ? "hot"
                                     : strcmp(r->tier, "cold") == 0 ? "cold"
                                                                    : "warm"};
    return 0;
}

static int
err_cmp(const void *a, const void *b)
{
    const struct err_item *x = a, *y = b;
    return x->ts < y->ts ? 1 : x->ts > y->ts ? -1 : 0;
}

static void
errors_print(struct err_list *l, int limit, bool ndjson)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, err_cmp);
    size_t n = limit > 0 && (size_t)limit < l->n ? (size_t)limit : l->n;
    for (size_t i = 0; ndjson && i < n; i++) { /* one failure per line, for jq */
        json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "ts_ms", (json_int_t)l->v[i].ts, "tier",
                              l->v[i].tier, "conv_id", l->v[i].conv, "error_code", l->v[i].code,
                              "model_or_tool", l->v[i].what, "message", l->v[i].msg);
        fr_cli_print_json_line(j);
        json_decref(j);
    }
    if (ndjson)
        n = 0;
    if (n > 0)
        fr_cli_printf("%-24s %-5s %-14s %-34s %-18s %s\n", "TIME (UTC)", "TIER", "CONV_ID",
                      "ERROR_CODE", "MODEL/TOOL", "MESSAGE");
    for (size_t i = 0; i < l->n; i++) {
        char ts[32];
        if (i < n)
            fr_cli_printf("%-24s %-5s %-14s %-34s %-18s %s\n",
                          fr_time_format(l->v[i].ts, ts, sizeof ts), l->v[i].tier, l->v[i].conv,
                          l->v[i].code, l->v[i].what, l->v[i].msg);
        free(l->v[i].conv);
        free(l->v[i].code);
        free(l->v[i].what);
        free(l->v[i].msg);
    }
    free(l->v);
}

struct errors_groups {
    char heading[16];
    int n;
};

static int
errors_group(void *ud, const struct fr_error_group *g)
{
    struct errors_groups *c = ud;
    char a[32], b[32];
    if (c->n++ == 0)
        fr_cli_printf("%-34s %8s %6s  %-24s %s\n", c->heading, "COUNT", "CONVS", "FIRST", "LAST");
    fr_cli_printf("%-34s %8lld %6lld  %-24s %s\n", *g->key ? g->key : "-", (long long)g->count,
                  (long long)g->conversations, fr_time_format(g->first_ms, a, sizeof a),
                  fr_time_format(g->last_ms, b, sizeof b));
    return 0;
}

static void
errors_usage(FILE *out)
{
    fprintf(out, "usage: flightrec errors [OPTIONS]\n\n"
                 "Lists failures, newest first, or groups them.\n\n"
                 "options:\n"
                 "  --db PATH       database (default $FLIGHTREC_DB or ./var/flightrec.db), or\n"
                 "                  the fleet store: postgres://... (also --store; docs/fleet.md)\n"
                 "  --class C       only this error class (provider, tool, transport, ...)\n"
                 "  --code X        only this error code (provider.rate_limited, ...)\n"
                 "  --conv ID       only this conversation\n"
                 "  --since T       at or after T (2026-02-17T19:44Z, 15m, 2h, 3d, epoch ms)\n"
                 "  --until T       before T\n"
                 "  --by K          group by code, class, model, tool or kind instead of listing\n"
                 "  --ndjson        one failure per line (jq streaming)\n"
                 "  --limit N       at most N rows (default 50, 0 for all)\n"
                 "  -h, --help      this help\n");
}

int
fr_cmd_errors(int argc, char **argv)
{
    static const struct option opts[] = {
        FR_CLI_QUERY_OPTIONS,
        {"class", required_argument, NULL, 'c'},
        {"code", required_argument, NULL, 'x'},
        {"conv", required_argument, NULL, 'C'},
        {"by", required_argument, NULL, 'b'},
        {"ndjson", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_cli_query q = {.db = fr_cli_default_db(), .limit = 50};
    const char *by = NULL;
    bool ndjson = false;
    struct fr_event_filter f = {.errors_only = true, .newest_first = true};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int handled = fr_cli_query_opt("errors", c, optarg, &q);
        if (handled < 0)
            return FR_EXIT_USAGE;
        if (handled > 0)
            continue;
        switch (c) {
        case 'c':
            if (!fr_cli_error_class_ok("errors", "--class", optarg))
                return FR_EXIT_USAGE;
            f.error_class = optarg;
            break;
        case 'x':
            f.error_code = optarg;
            break;
        case 'C':
            f.conv_id = optarg;
            break;
        case 'N':
            ndjson = true;
            break;
        case 'b':
            by = optarg;
            break;
        case 'h':
            errors_usage(stdout);
            return FR_EXIT_OK;
        default:
            errors_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("errors", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    f.since_ms = q.since_ms;
    f.until_ms = q.until_ms;
    f.limit = q.limit;
    struct fr_store *st;
    int ex = fr_cli_open_store("errors", q.db, false, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    int rc, n = 0;
    if (by != NULL) {
        struct errors_groups g = {0};
        snprintf(g.heading, sizeof g.heading, "%s", by);
        for (char *p = g.heading; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        /* grouped over the same tiers as the list: hot, warm, and cold with its key */
        size_t skipped = 0;
        struct fr_archive_keys keys;
        bool has_policy;
        fr_cli_archive_keys("errors", q.db, &keys, &has_policy);
        rc = has_policy ? fr_tier_error_groups(st, &f, &keys, by, errors_group, &g, &skipped, &err)
                        : fr_store_error_groups(st, &f, by, errors_group, &g, &err);
        fr_archive_keys_wipe(&keys);
        if (rc == FR_OK && g.n == 0)
            fprintf(stderr, "no failures match\n");
        if (skipped > 0)
            fprintf(stderr, "%zu cold segments not read (no cold key)\n", skipped);
    } else {
        struct err_list l = {0};
        /* also failures that moved to the warm tier (cold ones with the cold key) */
        size_t skipped = 0;
        struct fr_archive_keys keys;
        bool has_policy;
        fr_cli_archive_keys("errors", q.db, &keys, &has_policy);
        rc = has_policy ? fr_tier_events(st, &f, &keys, errors_collect, &l, &skipped, &err)
                        : fr_store_events(st, &f, errors_collect, &l, &err);
        fr_archive_keys_wipe(&keys);
        n = (int)l.n;
        errors_print(&l, f.limit, ndjson);
        if (rc == FR_OK && n == 0)
            fprintf(stderr, "no failures match\n");
        if (skipped > 0)
            fprintf(stderr, "%zu cold segments not read (no cold key)\n", skipped);
    }
    if (rc != FR_OK)
        fprintf(stderr, "flightrec errors: %s\n", err.msg);
    fr_store_close(st);
    return fr_cli_exit_for(rc);
}

/* ---- stats ---- */

struct stats_ctx {
    const char *dim;
    int n;
};

static int
stats_row(void *ud, const struct fr_rollup_row *r)
{
    struct stats_ctx *c = ud;
    /* with token counters: provider calls, and the OTLP GenAI metrics */
    bool finish = strcmp(c->dim, "finish") == 0;
    bool provider = strcmp(c->dim, "provider") == 0 || strcmp(c->dim, "otel") == 0 || finish;
    if (c->n++ == 0) {
        if (finish) /* what each reason says of the answer: truncated, filtered, ... */
            fr_cli_printf("%-22s %-10s %-20s %8s %7s", "FINISH", "MEANING", "MODEL", "CALLS",
                          "ERRORS");
        else
            fr_cli_printf("%-22s %-20s %8s %7s", "KEY", "SUB", "CALLS", "ERRORS");
        if (provider)
            fr_cli_printf(" %11s %10s", "IN_TOKENS", "OUT_TOKENS");
        fr_cli_printf(" %8s %8s %8s %8s\n", "AVG_MS", "P50<=", "P99<=", "MAX_MS");
    }
    if (finish)
        fr_cli_printf("%-22s %-10s %-20s %8lld %7lld", r->k1, fr_finish_meaning(r->k1),
                      *r->k2 ? r->k2 : "-", (long long)r->calls, (long long)r->errors);
    else
        fr_cli_printf("%-22s %-20s %8lld %7lld", *r->k1 ? r->k1 : "-", *r->k2 ? r->k2 : "-",
                      (long long)r->calls, (long long)r->errors);
    if (provider)
        fr_cli_printf(" %11lld %10lld", (long long)r->tokens[FR_TOKEN_INPUT],
                      (long long)r->tokens[FR_TOKEN_OUTPUT]);
    if (r->lat_count > 0)
        fr_cli_printf(" %8lld %8lld %8lld %8lld\n", (long long)(r->lat_sum_ms / r->lat_count),
                      (long long)fr_rollup_quantile(r, 0.50),
                      (long long)fr_rollup_quantile(r, 0.99), (long long)r->lat_max_ms);
    else
        fr_cli_printf(" %8s %8s %8s %8s\n", "-", "-", "-", "-");
    return 0;
}

static void
stats_usage(FILE *out)
{
    fprintf(out, "usage: flightrec stats [OPTIONS]\n\n"
                 "Per-minute rollups maintained at ingest, summed over a time range.\n\n"
                 "options:\n"
                 "  --db PATH     database (default $FLIGHTREC_DB or ./var/flightrec.db), or\n"
                 "                the fleet store: postgres://... (also --store; docs/fleet.md)\n"
                 "  --by D        provider (default: per provider and model), finish (per\n"
                 "                finish reason and model, with what the reason means:\n"
                 "                complete, truncated at the token limit, filtered by a\n"
                 "                content filter or refused, tool_call, error, other), tool,\n"
                 "                transport (per path and status), error (per class and\n"
                 "                code), sem_anomaly (SEM stream ordering anomalies),\n"
                 "                otel (the GenAI metrics received over OTLP),\n"
                 "                or otel_ttft, otel_chunk (their streaming timings)\n"
                 "  --since T     from T (2026-02-17T19:44Z, 15m, 2h, 3d, epoch ms)\n"
                 "  --until T     before T\n"
                 "  --limit N     at most N rows (default 50, 0 for all)\n"
                 "  -h, --help    this help\n"
                 "Percentiles are bucket upper bounds (10, 50, 100, 250, 500 ms, 1, 2.5, 5,\n"
                 "10, 30 s) capped at the observed maximum.\n");
}

int
fr_cmd_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        FR_CLI_QUERY_OPTIONS,
        {"by", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_cli_query q = {.db = fr_cli_default_db(), .limit = 50};
    struct fr_rollup_filter f = {.dim = "provider"};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int handled = fr_cli_query_opt("stats", c, optarg, &q);
        if (handled < 0)
            return FR_EXIT_USAGE;
        if (handled > 0)
            continue;
        switch (c) {
        case 'b': {
            static const char *const dims[] = {"provider",  "finish",    "tool",
                                               "transport", "error",     "sem_anomaly",
                                               "otel",      "otel_ttft", "otel_chunk"};
            f.dim = NULL;
            for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
                if (strcmp(optarg, dims[i]) == 0)
                    f.dim = dims[i];
            if (f.dim == NULL) {
                fprintf(stderr,
                        "flightrec stats: --by: expected provider, finish, tool, transport, "
                        "error, sem_anomaly, otel, otel_ttft or otel_chunk, got '%s'\n",
                        optarg);
                return FR_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            stats_usage(stdout);
            return FR_EXIT_OK;
        default:
            stats_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("stats", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    f.since_ms = q.since_ms;
    f.until_ms = q.until_ms;
    f.limit = q.limit;
    /* rollups are per minute: say so when the range does not fall on whole minutes */
    if ((q.since_ms > 0 && q.since_ms % 60000 != 0) ||
        (q.until_ms > 0 && q.until_ms % 60000 != 0)) {
        char a[32] = "-", b[32] = "-";
        if (q.since_ms > 0)
            fr_time_format(q.since_ms - q.since_ms % 60000, a, sizeof a);
        if (q.until_ms > 0)
            fr_time_format(q.until_ms - q.until_ms % 60000, b, sizeof b);
        fprintf(stderr,
                "flightrec stats: rollups are per minute: the range is read as whole minutes, "
                "from the minute of %s to the minute of %s\n",
                a, b);
    }
    struct fr_store *st;
    int ex = fr_cli_open_store("stats", q.db, false, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    struct stats_ctx ctx = {.dim = f.dim};
    int rc = fr_store_rollups(st, &f, stats_row, &ctx, &err);
    if (rc == FR_OK && ctx.n == 0)
        fprintf(stderr, "no %s activity in that range\n", f.dim);
    if (rc != FR_OK)
        fprintf(stderr, "flightrec stats: %s\n", err.msg);
    fr_store_close(st);
    return fr_cli_exit_for(rc);
}
