/*
 * agent/cli/cmd_ship.c - `flightrec ship`: the agent's shipper run once, from
 * the command line: every event of a hot store not yet in the fleet store
 * (after its cursor there), in batches, until caught up (agent/ship.h).
 * For a backfill, a store written by `flightrec ingest`, or shipping from
 * cron instead of the agent.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "agent/ship.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/timeutil.h"
#include "retention/retention.h"

static void
ship_usage(FILE *out)
{
    fprintf(out, "usage: flightrec ship --to URI [--db PATH] [--host NAME] [--batch N]\n\n"
                 "Ships the events of a hot store that the fleet store does not have yet (from\n"
                 "this store's cursor there) and exits once caught up. Exactly once in effect,\n"
                 "like the agent's shipper (docs/fleet.md); safe to run next to an agent that\n"
                 "ships the same store.\n\n"
                 "options:\n"
                 "  --to URI       the fleet store: postgres://USER@HOST:PORT/DB (a password is\n"
                 "                 better in ~/.pgpass or PGPASSWORD)\n"
                 "  --db PATH      database (default $FLIGHTREC_DB or ./var/flightrec.db)\n"
                 "  --host NAME    this store's host name in the fleet store (default: hostname)\n"
                 "  --batch N      events per batch (default 5000)\n"
                 "  --no-progress  no progress line, even on a terminal\n"
                 "  -h, --help     this help\n"
                 "Exit status: 0 caught up, 2 usage error, 3 a store failed (what was shipped\n"
                 "before stays shipped; run it again to go on).\n");
}

int
fr_cmd_ship(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},
        {"host", required_argument, NULL, 'H'},
        {"batch", required_argument, NULL, 'b'},
        {"no-progress", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *db = fr_cli_default_db();
    char host[256] = "";
    long batch = 5000;
    bool progress = isatty(STDERR_FILENO);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            to = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'H':
            snprintf(host, sizeof host, "%s", optarg);
            break;
        case 'b': {
            char *end;
            batch = strtol(optarg, &end, 10);
            if (*end != '\0' || batch < 1 || batch > 1000000) {
                fprintf(stderr, "flightrec ship: --batch: expected 1 to 1000000, got %s\n", optarg);
                return FR_EXIT_USAGE;
            }
            break;
        }
        case 'P':
            progress = false;
            break;
        case 'h':
            ship_usage(stdout);
            return FR_EXIT_OK;
        default:
            ship_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (to == NULL || optind != argc) {
        fprintf(stderr, "flightrec ship: %s\n",
                to == NULL ? "--to URI is required (the fleet store)" : "unexpected argument");
        ship_usage(stderr);
        return FR_EXIT_USAGE;
    }
    if (host[0] == '\0' && (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0'))
        snprintf(host, sizeof host, "unknown");
    struct fr_store *local, *central;
    int ex = fr_cli_open_store("ship", db, false, &local);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    char source[17];
    if (fr_store_id(local, source, &err) != FR_OK ||
        fr_store_open(to, NULL, &central, &err) != FR_OK) {
        fprintf(stderr, "flightrec ship: %s\n", err.msg);
        fr_store_close(local);
        return FR_EXIT_FAIL;
    }
    struct fr_ship_pos pos = {0, 0};
    int64_t rows = 0, inserted = 0;
    double started = fr_mono_s(), last = 0;
    int rc = fr_store_ship_cursor(central, source, &pos.cursor, &err);
    for (;;) {
        struct fr_ship_batch b;
        if (rc == FR_OK)
            rc = fr_ship_batch(local, central, source, host, (int)batch, &pos, &b, &err);
        if (rc != FR_OK)
            break;
        rows += (int64_t)b.rows;
        inserted += b.inserted;
        double now = fr_mono_s();
        if (progress && now - last >= 0.25) {
            last = now;
            fprintf(stderr, "\r\033[K%lld events shipped (%lld new), %.0f events/s",
                    (long long)rows, (long long)inserted,
                    now > started ? (double)rows / (now - started) : 0.0);
        }
        if (b.rows < (size_t)batch)
            break;
    }
    double el = fr_mono_s() - started;
    if (progress)
        fputs("\r\033[K", stderr);
    fr_store_close(central);
    fr_store_close(local);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec ship: %s (after %lld events; run it again to go on)\n", err.msg,
                (long long)rows);
        return FR_EXIT_FAIL;
    }
    fprintf(stderr,
            "shipped %s as %s: %lld events (%lld new) in %.2f s, %.0f events/s; caught up at row "
            "%lld\n",
            db, host, (long long)rows, (long long)inserted, el, el > 0 ? (double)rows / el : 0.0,
            (long long)pos.cursor);
    return FR_EXIT_OK;
}

static void
fleet_usage(FILE *out)
{
    fprintf(out, "usage: flightrec fleet prune --store URI --keep DURATION [--archive POLICY]\n"
                 "                             [--detach] [--dry-run]\n\n"
                 "Central retention of the fleet store: every day partition of events that ended\n"
                 "more than DURATION ago (30d, 72h) is dropped whole, or with --detach detached\n"
                 "(kept as a table of its own, out of every query, to archive), and the\n"
                 "conversation index and rollups of that time go with it. No row is deleted one\n"
                 "by one. Run it from cron on one machine.\n"
                 "With --archive, each such day is first written into warm segments the way\n"
                 "`retention run` writes hot rows (the policy's archive_dir, relative to the\n"
                 "working directory; its bucket, keys and truncation), recorded in the fleet\n"
                 "store's archive manifest, uploaded, and only then dropped: `show`, `errors`\n"
                 "and `archive list|verify|cat --db URI` read them from there.\n\n"
                 "options:\n"
                 "  --store URI      the fleet store (postgres://...)\n"
                 "  --keep DURATION  how much history stays (whole UTC days are kept)\n"
                 "  --archive POLICY write each day into segments first (a retention policy)\n"
                 "  --detach         detach the partitions instead of dropping them\n"
                 "  --dry-run        list what would go; change nothing\n"
                 "  -h, --help       this help\n");
}

struct prune_print {
    bool dry_run, detach;
    int n;
};

static int
prune_print_row(void *ud, const struct fr_prune_row *r)
{
    struct prune_print *p = ud;
    char from[40], to[40];
    char rows[40] = "events not yet counted (no ANALYZE)";
    if (r->rows >= 0)
        snprintf(rows, sizeof rows, "~%lld events", (long long)r->rows);
    printf("%s %s  %s .. %s  %s\n",
           p->dry_run  ? "would drop"
           : p->detach ? "detached"
                       : "dropped",
           r->partition, fr_time_format(r->from_ms, from, sizeof from),
           fr_time_format(r->to_ms, to, sizeof to), rows);
    p->n++;
    return 0;
}

struct part_list {
    struct fr_prune_row *v;
    size_t n;
};

static int
part_collect(void *ud, const struct fr_prune_row *r)
{
    struct part_list *l = ud;
    l->v = fr_realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n] = *r;
    l->v[l->n++].partition = fr_strdup(r->partition);
    return 0;
}

/* Writes every day partition that prune will drop into segments first (--archive). */
static int
fleet_archive(struct fr_store *st, const char *policy, const char *store, int64_t before,
              int64_t now, struct fr_err *err)
{
    struct fr_retention_policy p;
    int rc = fr_retention_policy_load(policy, store, &p, err);
    if (rc != FR_OK)
        return rc;
    struct part_list l = {0};
    rc = fr_store_prune(st, before, false, true, part_collect, &l, err);
    for (size_t i = 0; rc == FR_OK && i < l.n; i++) {
        struct fr_retention_stats s = {0};
        double t0 = fr_mono_s();
        rc = fr_retention_archive_range(st, &p, l.v[i].partition, l.v[i].from_ms, l.v[i].to_ms, now,
                                        &s, err);
        if (rc == FR_OK)
            printf("archived %s: %llu events in %llu segments (%.1f MB of rows -> %.1f MB) in "
                   "%s, %.1f s%s%s\n",
                   l.v[i].partition, (unsigned long long)s.moved_events,
                   (unsigned long long)s.warm_segments, (double)s.row_bytes / 1e6,
                   (double)s.file_bytes / 1e6, p.archive_dir, fr_mono_s() - t0,
                   p.bucket_url[0] ? ", uploaded to " : "", p.bucket_url);
        fflush(stdout);
    }
    for (size_t i = 0; i < l.n; i++)
        free((char *)l.v[i].partition);
    free(l.v);
    fr_retention_policy_clear(&p);
    if (rc != FR_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        fr_err_set(err, rc, "archiving before the drop: %s (nothing was dropped)", why);
    }
    return rc;
}

int
fr_cmd_fleet(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "prune") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            fleet_usage(stdout);
            return FR_EXIT_OK;
        }
        fleet_usage(stderr);
        return FR_EXIT_USAGE;
    }
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},
        {"keep", required_argument, NULL, 'k'},
        {"detach", no_argument, NULL, 'D'},
        {"dry-run", no_argument, NULL, 'n'},
        {"archive", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL, *archive = NULL;
    int64_t keep = -1;
    struct prune_print pp = {0};
    struct fr_err err = {0};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            store = optarg;
            break;
        case 'k':
            if (fr_duration_parse(optarg, &keep, &err) != FR_OK || keep <= 0) {
                fprintf(stderr, "flightrec fleet prune: --keep: %s\n",
                        err.msg[0] ? err.msg : "must be more than 0");
                return FR_EXIT_USAGE;
            }
            break;
        case 'a':
            archive = optarg;
            break;
        case 'D':
            pp.detach = true;
            break;
        case 'n':
            pp.dry_run = true;
            break;
        case 'h':
            fleet_usage(stdout);
            return FR_EXIT_OK;
        default:
            fleet_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (store == NULL || keep < 0 || optind != argc) {
        fprintf(stderr, "flightrec fleet prune: %s\n",
                store == NULL ? "--store URI is required"
                : keep < 0    ? "--keep DURATION is required (how much history stays)"
                              : "unexpected argument");
        return FR_EXIT_USAGE;
    }
    struct fr_store *st;
    int ex = fr_cli_open_store("fleet prune", store, !pp.dry_run, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    int64_t now = fr_now_ms(), before = now - keep; /* one cutoff: what is archived is dropped */
    int rc = FR_OK;
    if (archive != NULL && !pp.dry_run)
        rc = fleet_archive(st, archive, store, before, now, &err);
    if (rc == FR_OK)
        rc = fr_store_prune(st, before, pp.detach, pp.dry_run, prune_print_row, &pp, &err);
    fr_store_close(st);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec fleet prune: %s\n", err.msg);
        return fr_cli_exit_for(rc);
    }
    if (pp.n == 0)
        printf("no day partition ended before the kept history: nothing to prune\n");
    return FR_EXIT_OK;
}
