/*
 * agent/cli/cmd_erase.c - `flightrec erase`: removes conversations from
 * every tier this store keeps (retention/erase.c), records each erasure in
 * the erasure log (its id as a keyed hash, the reason, what was touched),
 * and lists that log. docs/security.md, Erasure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli/cli.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/upload.h"
#include "retention/hot/archive.h"
#include "retention/retention.h"

static void
erase_usage(FILE *out)
{
    fprintf(out, "usage: flightrec erase --conv ID [--conv ID]... [--reason TEXT] [--dry-run]\n"
                 "                       [--db PATH] [--policy FILE]\n"
                 "       flightrec erase --list [--db PATH]\n\n"
                 "Removes conversations from everywhere this store keeps them: hot (events,\n"
                 "conversation index, timeline, SEM anomalies, their share of the rollups; the\n"
                 "freed space overwritten and the WAL truncated) and every warm or cold segment\n"
                 "holding a record of them (written again without those records; one left\n"
                 "empty is deleted). Each erasure is logged (the id only as a keyed hash, the\n"
                 "reason, counts): events of an erased conversation are refused by every later\n"
                 "ingest, agent or archive restore. A kill at any step is finished by the next\n"
                 "erase or retention run. Cold segments need the cold key; without it the\n"
                 "erasure stays pending (exit 3) until run again with it.\n\n"
                 "  --conv ID      a conversation to erase (repeatable)\n"
                 "  --reason TEXT  why (kept in the erasure log; no personal data, please)\n"
                 "  --bundles DIR  incident bundles to look through: those holding an erased\n"
                 "                 conversation are deleted (default: bundles/ beside the db)\n"
                 "  --targets FILE upload config whose outbox is looked through the same way\n"
                 "                 (default $FLIGHTREC_UPLOAD_CONFIG)\n"
                 "  --dry-run      say what would be removed, change nothing\n"
                 "  --list         the erasure log, oldest first\n"
                 "  --db PATH      the database (default $FLIGHTREC_DB or ./var/flightrec.db)\n"
                 "  --policy FILE  retention policy naming the archive and keys (default\n"
                 "                 $FLIGHTREC_RETENTION, else the built-in one)\n");
}

/* Bundles and queued uploads holding an erased conversation: copies of its data, removed. */
static int
erase_copies(struct fr_store *st, const char *db, const char *bundles, const char *targets)
{
    char *dflt = NULL;
    if (bundles == NULL) { /* where incident create puts them by default */
        char *copy = fr_strdup(db);
        char *slash = strrchr(copy, '/');
        dflt = slash ? (*slash = '\0', fr_asprintf("%s/bundles", copy)) : fr_strdup("bundles");
        free(copy);
        bundles = dflt;
    }
    struct fr_erased_copies c;
    struct fr_err err = {0};
    int rc = fr_erase_copies(bundles, targets, fr_store_erased_cb, st, &c, &err);
    if (rc != FR_OK)
        fprintf(stderr, "flightrec erase: copies: %s\n", err.msg);
    fprintf(stderr, "erase: %zu bundle(s) holding it removed from %s", c.bundles, bundles);
    if (c.outbox[0])
        fprintf(stderr, ", %zu queued upload(s) from the outbox %s\n", c.queued, c.outbox);
    else
        fprintf(stderr, " (no upload config: the outbox was not looked at; --targets)\n");
    free(dflt);
    return rc == FR_OK ? FR_EXIT_OK : FR_EXIT_FAIL;
}

/* hmac:<4 hex>:<16 hex> (key ids) or hmac:<16 hex> (before them). */
static bool
token_ok(const char *t)
{
    if (strncmp(t, "hmac:", 5) != 0)
        return false;
    t += 5;
    size_t n = strlen(t);
    if (n == 21 && t[4] == ':')
        return strspn(t, "0123456789abcdef") == 4 && strspn(t + 5, "0123456789abcdef") == 16;
    return n == 16 && strspn(t, "0123456789abcdef") == 16;
}

static int
list_row(void *ud, const struct fr_erasure_row *r)
{
    int *n = ud;
    if ((*n)++ == 0)
        printf("%-24s %-4s %-8s %-32s %8s %8s %8s  %s\n", "ERASED (UTC)", "KIND", "STATE",
               "SUBJECT", "HOT", "SEGS", "RECORDS", "REASON");
    char t[32];
    fr_time_format(r->ts_ms, t, sizeof t);
    fr_cli_printf("%-24s %-4s %-8s %-32s %8lld %8lld %8lld  %s\n", t, r->kind ? r->kind : "conv",
                  r->state, r->subject, (long long)r->hot_events, (long long)r->segments,
                  (long long)r->records, r->reason ? r->reason : "-");
    return 0;
}

struct erase_opts {
    const char **convs, **tokens; /* room for argc each */
    size_t n, ntokens;
    const char *reason, *db, *policy, *bundles, *targets;
    bool dry_run, list;
};

/* Parses the options into o; -1 to go on, else the exit status. */
static int
erase_parse(int argc, char **argv, struct erase_opts *o)
{
    static const struct option longopts[] = {{"conv", required_argument, NULL, 'c'},
                                             {"hmac", required_argument, NULL, 'H'},
                                             {"bundles", required_argument, NULL, 'B'},
                                             {"targets", required_argument, NULL, 'T'},
                                             {"reason", required_argument, NULL, 'r'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"list", no_argument, NULL, 'L'},
                                             {"db", required_argument, NULL, 'd'},
                                             {"policy", required_argument, NULL, 'p'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:H:B:T:r:nLd:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (*optarg == '\0') {
                fprintf(stderr, "flightrec erase: --conv: an empty id\n");
                return FR_EXIT_USAGE;
            }
            o->convs[o->n++] = optarg;
            break;
        case 'H':
            if (!token_ok(optarg)) {
                fprintf(stderr,
                        "flightrec erase: --hmac: not a keyed-hash token (hmac:<4 hex>:<16 hex>, "
                        "or hmac:<16 hex> from before key ids)\n");
                return FR_EXIT_USAGE;
            }
            o->tokens[o->ntokens++] = optarg;
            break;
        case 'B':
            o->bundles = optarg;
            break;
        case 'T':
            o->targets = optarg;
            break;
        case 'r':
            o->reason = optarg;
            break;
        case 'n':
            o->dry_run = true;
            break;
        case 'L':
            o->list = true;
            break;
        case 'd':
            o->db = optarg;
            break;
        case 'p':
            o->policy = optarg;
            break;
        case 'h':
            erase_usage(stdout);
            return FR_EXIT_OK;
        default:
            erase_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("erase", argc, argv, optind) != 0 || (o->n + o->ntokens == 0) == !o->list) {
        if (optind == argc)
            fprintf(stderr,
                    "flightrec erase: give --conv ID or --hmac TOKEN (one or more), or --list\n");
        return FR_EXIT_USAGE;
    }
    if (o->db == NULL)
        o->db = fr_cli_default_db();
    return -1;
}

static int
erase_list(struct fr_store *st, const char *db)
{
    struct fr_err err = {0};
    int rows = 0;
    int rc = fr_store_erasures(st, false, list_row, &rows, &err);
    if (rc == FR_OK && rows == 0)
        fprintf(stderr, "nothing was erased in %s\n", db);
    if (rc != FR_OK)
        fprintf(stderr, "flightrec erase: %s\n", err.msg);
    return rc == FR_OK ? FR_EXIT_OK : FR_EXIT_FAIL;
}

/*
 * A fleet store (docs/fleet.md) erases the same way: its events and index
 * rows go, a conversation's rows shipped later are dropped on arrival, and
 * the segments central retention archived its days into (fleet prune
 * --archive) are written again without it, in the bucket too.
 */
static int
erase_run(struct fr_store *st, const struct erase_opts *o)
{
    bool fleet = fr_store_is_fleet(st);
    struct fr_err err = {0};
    struct fr_retention_policy p;
    const char *policy = o->policy && *o->policy ? o->policy : NULL;
    if (fr_retention_policy_load(policy, o->db, &p, &err) != FR_OK) {
        fprintf(stderr, "flightrec erase: %s\n", err.msg);
        return FR_EXIT_USAGE;
    }
    struct fr_erase_stats s;
    int rc = fr_retention_erase(st, &p, o->convs, o->n, o->tokens, o->ntokens, o->reason,
                                fr_now_ms(), o->dry_run, &s, &err);
    bool dry = o->dry_run;
    fprintf(stderr,
            "erase%s: %zu conversation(s), %zu value(s): %llu events %s %s; %llu archive "
            "records %s, %llu segments %s and %llu deleted (%.1f MB written); %.2f s\n",
            dry ? " (dry run)" : "", o->n, o->ntokens, (unsigned long long)s.hot_events,
            dry ? "would leave" : "removed from", fleet ? "the fleet store" : "hot",
            (unsigned long long)s.records_removed, dry ? "would go" : "removed",
            (unsigned long long)s.segments_rewritten, dry ? "would be rewritten" : "rewritten",
            (unsigned long long)s.segments_deleted, (double)s.bytes_rewritten / 1e6, s.seconds);
    int ex = FR_EXIT_OK;
    if (rc == FR_OK && !dry && o->n > 0 && !fleet)
        ex = erase_copies(st, o->db, o->bundles, o->targets);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec erase: %s\n", err.msg);
        ex = FR_EXIT_FAIL;
    } else if (s.pending_left > 0) {
        fprintf(stderr,
                "flightrec erase: not finished: a segment could not be read (named above); the "
                "erasure stays pending, and the next erase or retention run with the keys "
                "finishes it\n");
        ex = FR_EXIT_FAIL;
    }
    fr_retention_policy_clear(&p);
    return ex;
}

int
fr_cmd_erase(int argc, char **argv)
{
    struct erase_opts o = {.convs = fr_calloc((size_t)argc, sizeof *o.convs),
                           .tokens = fr_calloc((size_t)argc, sizeof *o.tokens),
                           .policy = getenv("FLIGHTREC_RETENTION"),
                           .targets = getenv("FLIGHTREC_UPLOAD_CONFIG")};
    int ex = erase_parse(argc, argv, &o);
    struct fr_store *st = NULL;
    if (ex < 0)
        ex = fr_cli_open_store("erase", o.db, !o.list && !o.dry_run, &st);
    if (ex == FR_EXIT_OK && st != NULL)
        ex = o.list ? erase_list(st, o.db) : erase_run(st, &o);
    fr_store_close(st);
    free(o.convs);
    free(o.tokens);
    return ex;
}
