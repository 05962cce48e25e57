/*
 * agent/cli_opts.c - option handling shared by the query commands
 * (conversations, errors, stats): --db, --since, --until, --limit, and the
 * "no positional arguments" check, with one wording for every error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "agent/cli.h"
#include "core/timeutil.h"

int
fr_cli_query_opt(const char *cmd, int c, const char *arg, struct fr_cli_query *q)
{
    struct fr_err err = {0};
    switch (c) {
    case 'd':
        q->db = arg;
        return 1;
    case 's':
    case 'u':
        if (fr_time_parse(arg, fr_now_ms(), c == 's' ? &q->since_ms : &q->until_ms, &err) !=
            FR_OK) {
            fprintf(stderr, "flightrec %s: --%s: %s\n", cmd, c == 's' ? "since" : "until", err.msg);
            return -1;
        }
        return 1;
    case 'l': {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 0 || v > 1000000) {
            fprintf(stderr, "flightrec %s: --limit: expected 0 to 1000000, got '%s'\n", cmd, arg);
            return -1;
        }
        q->limit = (int)v;
        return 1;
    }
    default:
        return 0;
    }
}

int
fr_cli_no_args(const char *cmd, int argc, char **argv, int optind_now)
{
    if (optind_now == argc)
        return 0;
    fprintf(stderr, "flightrec %s: unexpected argument '%s'\n", cmd, argv[optind_now]);
    return -1;
}
