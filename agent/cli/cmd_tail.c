/*
 * agent/cli/cmd_tail.c - `flightrec tail`: follows new events as they are
 * committed (all of them, or those of one conversation, kind or error
 * class), like `journalctl -f`. It reads the hot store only, read-only,
 * polling for rows inserted after the last one it printed.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "collectors/taxonomy.h"
#include "core/event.h"
#include "core/timeutil.h"
#include "exporters/render.h"
#include "retention/hot/store.h"

static volatile sig_atomic_t tail_stop;

static void
on_stop(int sig)
{
    (void)sig;
    tail_stop = 1;
}

struct tail_ctx {
    bool json, text;
    long long left; /* --count: events still to print; < 0 = no end */
    int64_t last_id;
};

static int
tail_row(void *ud, const struct fr_event_row *r)
{
    struct tail_ctx *c = ud;
    c->last_id = r->id;
    if (c->left == 0)
        return 0; /* only the position (the probe at start) */
    if (c->json) {
        json_t *ev = fr_render_event(r, NULL, 0);
        fr_cli_print_json_line(ev);
        json_decref(ev);
    } else {
        char ts[32], what[200] = "";
        fr_time_format(r->ts_ms, ts, sizeof ts);
        if (r->error_code)
            snprintf(what, sizeof what, "!! %s: %.120s", r->error_code,
                     r->error_message ? r->error_message : "");
        else if (r->model || r->provider)
            snprintf(what, sizeof what, "%s/%s", r->provider ? r->provider : "?",
                     r->model ? r->model : "?");
        else if (r->tool)
            snprintf(what, sizeof what, "%s", r->tool);
        fr_cli_printf("%s %-24s %-12s %-10s %s\n", ts,
                      r->ids[FR_ID_CONV] ? r->ids[FR_ID_CONV] : "-", r->kind ? r->kind : "?",
                      r->status ? r->status : "-", what);
        if (r->error_code == NULL && r->kind != NULL && strcmp(r->kind, "provider") == 0) {
            /* a call whose answer stopped at the token limit or was filtered: as `show` says */
            json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
            char note[160];
            if (fr_cli_finish_note(r, json_object_get(body, "data"), note, sizeof note))
                fr_cli_printf("%24s~~ %s\n", "", note);
            json_decref(body);
        }
        if (c->text)
            fr_cli_show_text(r);
    }
    fflush(stdout);
    if (c->left > 0)
        c->left--;
    return c->left == 0 ? FR_DECLINED : 0; /* stop the query once --count is reached */
}

static void
tail_usage(FILE *out)
{
    fprintf(out, "usage: flightrec tail [--db PATH] [--conv ID] [--kind K] [--errors]\n"
                 "                      [--error-class C] [--json | --text] [--count N]\n"
                 "                      [--from-start] [--interval MS]\n\n"
                 "Follows events as they are committed, like journalctl -f (Ctrl-C stops).\n"
                 "  --conv ID        only this conversation's events\n"
                 "  --kind K         only events of kind K\n"
                 "  --errors         only failures; --error-class C only that class\n"
                 "  --json           one JSON object per line (jq-friendly)\n"
                 "  --text           under each event, what was said (redacted, as stored):\n"
                 "                   messages and answers, tool arguments and results\n"
                 "  --count N        stop after N events (scripts, tests)\n"
                 "  --from-start     print what is stored first, then follow\n"
                 "  --interval MS    how often to look for new events (default 500)\n"
                 "A failure shows as \"!! CODE: message\"; \"~~\" under a row marks a provider\n"
                 "call that succeeded but whose answer stopped at the token limit or was\n"
                 "filtered (its finish_reason), as in show.\n");
}

int
fr_cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"conv", required_argument, NULL, 'c'},
        {"kind", required_argument, NULL, 'k'},
        {"errors", no_argument, NULL, 'e'},
        {"error-class", required_argument, NULL, 'E'},
        {"json", no_argument, NULL, 'j'},
        {"text", no_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"from-start", no_argument, NULL, 's'},
        {"interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = fr_cli_default_db();
    struct fr_event_filter f = {.by_arrival = true};
    struct tail_ctx c = {.left = -1};
    bool from_start = false;
    long interval = 500;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            f.conv_id = optarg;
            break;
        case 'k':
            if (fr_kind_parse(optarg) < 0) {
                fprintf(stderr, "flightrec tail: --kind: unknown kind '%s'\n", optarg);
                return FR_EXIT_USAGE;
            }
            f.kind = optarg;
            break;
        case 'e':
            f.errors_only = true;
            break;
        case 'E':
            if (!fr_cli_error_class_ok("tail", "--error-class", optarg))
                return FR_EXIT_USAGE;
            f.error_class = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 't':
            c.text = true;
            break;
        case 'n':
            c.left = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || c.left < 1) {
                fprintf(stderr, "flightrec tail: --count: expected a number of events >= 1\n");
                return FR_EXIT_USAGE;
            }
            break;
        case 's':
            from_start = true;
            break;
        case 'i':
            interval = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || interval < 10 || interval > 60000) {
                fprintf(stderr, "flightrec tail: --interval: milliseconds from 10 to 60000\n");
                return FR_EXIT_USAGE;
            }
            break;
        case 'h':
            tail_usage(stdout);
            return FR_EXIT_OK;
        default:
            tail_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("tail", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    if (c.json && c.text) {
        fprintf(stderr, "flightrec tail: --json and --text: one or the other (--json holds "
                        "the whole event)\n");
        return FR_EXIT_USAGE;
    }
    struct fr_store *st;
    int ex = fr_cli_open_store("tail", db, false, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    int rc = FR_OK;
    if (!from_start) { /* start after the newest row stored now */
        struct fr_event_filter last = {.by_arrival = true, .newest_first = true, .limit = 1};
        struct tail_ctx probe = {.left = 0};
        rc = fr_store_events(st, &last, tail_row, &probe, &err);
        c.last_id = probe.last_id;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    while (rc == FR_OK && !tail_stop && c.left != 0) {
        f.after_id = c.last_id;
        f.limit = 1000;
        int64_t before = c.last_id;
        rc = fr_store_events(st, &f, tail_row, &c, &err);
        if (rc > 0) /* tail_row stopped the query: --count reached */
            rc = FR_OK;
        if (rc == FR_OK && c.last_id == before && c.left != 0)
            usleep((useconds_t)interval * 1000);
    }
    if (rc != FR_OK)
        fprintf(stderr, "flightrec tail: %s\n", err.msg);
    fr_store_close(st);
    return fr_cli_exit_for(rc);
}
