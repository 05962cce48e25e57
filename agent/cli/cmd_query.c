/*
 * agent/cli/cmd_query.c - `flightrec conversations` and `flightrec show`: the
 * conversation index by recent activity, and one conversation's events in
 * order, as a table for people or JSON for programs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli/cli.h"
#include "core/timeutil.h"
#include "core/wire.h"
#include "exporters/render.h"
#include "retention/hot/archive.h"
#include "retention/hot/store.h"

static int
conv_collect_json(void *ud, const struct fr_conv_row *r)
{
    json_array_append_new(ud, fr_render_conv(r));
    return 0;
}

static int
conv_print_row(void *ud, const struct fr_conv_row *r)
{
    int *n = ud;
    char ts[32];
    if ((*n)++ == 0)
        fr_cli_printf("%-24s %-8s %7s %6s  %-24s %-16s %s\n", "CONV_ID", "STATUS", "EVENTS",
                      "ERRORS", "LAST_ERROR", "RUNTIME", "LAST_ACTIVITY");
    fr_cli_printf("%-24s %-8s %7lld %6lld  %-24s %-16s %s\n", r->conv_id, r->status,
                  (long long)r->event_count, (long long)r->error_count,
                  r->last_error_code ? r->last_error_code : "-",
                  r->runtime_key ? r->runtime_key : "-",
                  fr_time_format(r->last_activity_ms, ts, sizeof ts));
    return 0;
}

static int
summary_collect_json(void *ud, const struct fr_summary_row *r)
{
    json_array_append_new(ud, fr_render_summary(r));
    return 0;
}

static int
summary_print_row(void *ud, const struct fr_summary_row *r)
{
    int *n = ud;
    char a[32], b[32];
    if ((*n)++ == 0)
        fr_cli_printf("%-24s %-24s %-24s %7s %6s %10s  %s\n", "CONV_ID", "FIRST", "LAST", "EVENTS",
                      "ERRORS", "TOKENS", "MODELS / ERROR CODES");
    fr_cli_printf("%-24s %-24s %-24s %7lld %6lld %10lld  %s %s\n", r->conv_id,
                  fr_time_format(r->first_ms, a, sizeof a), fr_time_format(r->last_ms, b, sizeof b),
                  (long long)r->events, (long long)r->errors,
                  (long long)(r->input_tokens + r->output_tokens), r->models ? r->models : "{}",
                  r->error_codes ? r->error_codes : "{}");
    return 0;
}

static void
conversations_usage(FILE *out)
{
    fprintf(out,
            "usage: flightrec conversations [OPTIONS]\n\n"
            "Lists conversations, most recently active first.\n\n"
            "options:\n"
            "  --db PATH       database (default $FLIGHTREC_DB or ./var/flightrec.db), or\n"
            "                  the fleet store: postgres://... (also --store; docs/fleet.md)\n"
            "  --since T       active at or after T (2026-02-17T19:44Z, 15m, 2h, 3d, or "
            "epoch ms)\n"
            "  --until T       active before T\n"
            "  --status S      active, idle, closed, evicted or error\n"
            "  --has-errors    only conversations with at least one error\n"
            "  --class C       only those with a failure of class C (validation, provider,\n"
            "                  tool, projection, storage, transport, runtime)\n"
            "  --code CODE     only those with a failure of this code (provider.rate_limited)\n"
            "  --provider P    only those with a call to provider P\n"
            "  --model M       only those with a call to model M\n"
            "  --tool T        only those that called tool T\n"
            "  --prefix P      only those whose id starts with P (a conversation id cut\n"
            "                  short in a log line or a chat)\n"
            "  --summaries     what stays of conversations whose detail retention deleted\n"
            "                  (times, counts, tokens, models, error codes), newest first\n"
            "  --limit N       at most N conversations (default 50, 0 for all)\n"
            "  --json          a JSON array instead of a table\n"
            "  --ndjson        one conversation per line (jq streaming)\n"
            "  -h, --help      this help\n");
}

int
fr_cmd_conversations(int argc, char **argv)
{
    static const struct option opts[] = {
        FR_CLI_QUERY_OPTIONS,
        {"status", required_argument, NULL, 'S'},
        {"has-errors", no_argument, NULL, 'E'},
        {"class", required_argument, NULL, 'c'},
        {"code", required_argument, NULL, 'x'},
        {"provider", required_argument, NULL, 'P'},
        {"model", required_argument, NULL, 'm'},
        {"tool", required_argument, NULL, 't'},
        {"prefix", required_argument, NULL, 'p'},
        {"summaries", no_argument, NULL, 'M'},
        {"json", no_argument, NULL, 'j'},
        {"ndjson", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_cli_query q = {.db = fr_cli_default_db(), .limit = 50};
    struct fr_conv_filter f = {0};
    bool json = false, ndjson = false, summaries = false;
    struct fr_err err = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int handled = fr_cli_query_opt("conversations", c, optarg, &q);
        if (handled < 0)
            return FR_EXIT_USAGE;
        if (handled > 0)
            continue;
        switch (c) {
        case 'S': {
            static const char *const ok[] = {"active", "idle", "closed", "evicted", "error"};
            bool found = false;
            for (size_t i = 0; i < 5; i++)
                found = found || strcmp(optarg, ok[i]) == 0;
            if (!found) {
                fprintf(stderr,
                        "flightrec conversations: --status: expected active, idle, "
                        "closed, evicted or error, got '%s'\n",
                        optarg);
                return FR_EXIT_USAGE;
            }
            f.status = optarg;
            break;
        }
        case 'E':
            f.has_errors = true;
            break;
        case 'c':
            if (!fr_cli_error_class_ok("conversations", "--class", optarg))
                return FR_EXIT_USAGE;
            f.error_class = optarg;
            break;
        case 'x':
            f.error_code = optarg;
            break;
        case 'P':
            f.provider = optarg;
            break;
        case 'm':
            f.model = optarg;
            break;
        case 't':
            f.tool = optarg;
            break;
        case 'p':
            if (*optarg == '\0') {
                fprintf(stderr, "flightrec conversations: --prefix: expected the start of a "
                                "conversation id, got ''\n");
                return FR_EXIT_USAGE;
            }
            f.id_prefix = optarg;
            break;
        case 'M':
            summaries = true;
            break;
        case 'j':
            json = true;
            break;
        case 'n':
            ndjson = true;
            break;
        case 'h':
            conversations_usage(stdout);
            return FR_EXIT_OK;
        default:
            conversations_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("conversations", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    if (summaries && (f.status || f.has_errors || f.error_class || f.error_code || f.provider ||
                      f.model || f.tool || f.id_prefix || q.until_ms)) {
        fprintf(stderr, "flightrec conversations: --summaries takes only --since and --limit (a "
                        "summary keeps counts, not the events these filters read)\n");
        return FR_EXIT_USAGE;
    }
    f.since_ms = q.since_ms;
    f.until_ms = q.until_ms;
    f.limit = q.limit;
    struct fr_store *st;
    int ex = fr_cli_open_store("conversations", q.db, false, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    int rc, n = 0;
    if (summaries && !json && !ndjson) {
        rc = fr_store_summaries(st, f.since_ms, f.limit, summary_print_row, &n, &err);
        if (rc == FR_OK && n == 0)
            fprintf(stderr, "no conversation summaries (none was past its last tier)\n");
    } else if (json || ndjson) {
        json_t *arr = json_array();
        rc = summaries
                 ? fr_store_summaries(st, f.since_ms, f.limit, summary_collect_json, arr, &err)
                 : fr_store_conversations(st, &f, conv_collect_json, arr, &err);
        if (rc == FR_OK && json)
            json_dumpf(arr, stdout, JSON_INDENT(2)), fputc('\n', stdout);
        size_t i;
        json_t *v;
        if (rc == FR_OK && ndjson) /* one conversation per line, for jq streaming */
            json_array_foreach(arr, i, v) fr_cli_print_json_line(v);
        json_decref(arr);
    } else {
        rc = fr_store_conversations(st, &f, conv_print_row, &n, &err);
        if (rc == FR_OK && n == 0)
            fprintf(stderr, "no conversations match\n");
    }
    if (rc != FR_OK)
        fprintf(stderr, "flightrec conversations: %s\n", err.msg);
    fr_store_close(st);
    return fr_cli_exit_for(rc);
}
