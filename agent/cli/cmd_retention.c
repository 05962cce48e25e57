/*
 * agent/cli/cmd_retention.c - `flightrec retention run` and `flightrec archive
 * list|verify|cat|restore` (retention/retention.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "agent/ingest.h"
#include "collectors/taxonomy.h"
#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"
#include "retention/objstore.h"
#include "retention/record.h"
#include "retention/retention.h"

struct ret_opts {
    const char *db, *policy;
    int64_t now;
    bool dry_run, progress;
};

static void
ret_usage(FILE *out)
{
    fprintf(
        out,
        "usage: flightrec retention run [--dry-run] [--now T] [--policy FILE] [--db PATH]\n"
        "       flightrec archive list|verify|rebuild|push [--db PATH] [--policy FILE]\n"
        "       flightrec archive cat|restore|quarantine SEGMENT [--db PATH] [--policy FILE]\n\n"
        "retention run: moves events past hot.max_age into warm segments, warm segments\n"
        "past warm.max_age to cold (encrypted with cold.key), deletes what is past\n"
        "cold.max_age, after reconciling the archive directory with the manifest.\n"
        "Safe to interrupt at any point and to run next to the agent (cron, the\n"
        "systemd timer configs/flightrec-retention.timer).\n\n"
        "options:\n"
        "  --policy FILE  retention policy merged over configs/retention.yaml\n"
        "                 (default $FLIGHTREC_RETENTION)\n"
        "  --now T        act as if it were T (ISO-8601, epoch ms): for tests and backfills\n"
        "  --dry-run      report what would move; change nothing\n"
        "  --db PATH      database (default $FLIGHTREC_DB or ./var/flightrec.db)\n"
        "  --no-progress  no progress line, even on a terminal\n"
        "archive list: the segments (tier, time range, records, sizes, ratio; BAD and why for\n"
        "one marked unreadable).\n"
        "archive verify: re-reads every segment, checks its structure and its HMAC\n"
        "(or SHA-256), lists every bad one and marks it in the manifest (the agent's\n"
        "/readyz and /metrics report it); exits 1 when any is bad.\n"
        "archive quarantine SEGMENT: moves a bad segment into quarantine/ under the\n"
        "archive folder and removes its manifest entry: reads stop naming it.\n"
        "archive cat SEGMENT: its records as JSON lines (cold: needs cold.key).\n"
        "archive restore SEGMENT: puts its events back into hot (with the truncation\n"
        "the warm tier applied) and removes the segment.\n"
        "archive rebuild: re-creates manifest entries missing from the database from\n"
        "the MANIFEST file beside the segments (each segment verified first); with a\n"
        "bucket in the policy and no MANIFEST here, from the bucket's.\n"
        "archive push: uploads to the policy's bucket what it does not hold yet (every\n"
        "retention run and erasure does this at its end) and evicts local copies past\n"
        "bucket.keep_local. A segment held only in the bucket is fetched by the first\n"
        "read that needs it (list marks it \"bucket\").\n");
}

static int
ret_parse(const char *cmd, int argc, char **argv, struct ret_opts *o)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"policy", required_argument, NULL, 'p'},
        {"now", required_argument, NULL, 'n'},
        {"dry-run", no_argument, NULL, 'r'},
        {"no-progress", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->db = fr_cli_default_db();
    o->policy = getenv("FLIGHTREC_RETENTION");
    o->now = fr_now_ms();
    o->progress = isatty(STDERR_FILENO);
    optind = 1;
    int c;
    struct fr_err err = {0};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'p':
            o->policy = optarg;
            break;
        case 'n':
            if (fr_time_parse(optarg, fr_now_ms(), &o->now, &err) != FR_OK) {
                fprintf(stderr, "flightrec %s: --now: %s\n", cmd, err.msg);
                return -1;
            }
            break;
        case 'r':
            o->dry_run = true;
            break;
        case 'P':
            o->progress = false;
            break;
        case 'h':
            ret_usage(stdout);
            return 1;
        default:
            ret_usage(stderr);
            return -1;
        }
    }
    return 0;
}

static void
ret_progress(void *ud, const char *what, uint64_t done, uint64_t total)
{
    (void)ud;
    (void)total;
    fprintf(stderr, "\r\033[K%s: %llu events", what, (unsigned long long)done);
}

static int
ret_setup(const char *cmd, struct ret_opts *o, struct fr_retention_policy *p, struct fr_store **st,
          bool create)
{
    struct fr_err err = {0};
    if (fr_retention_policy_load(o->policy && *o->policy ? o->policy : NULL, o->db, p, &err) !=
        FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return FR_EXIT_USAGE;
    }
    int ex = FR_EXIT_OK;
    if (create) {
        /* archive rebuild on a new machine: the database is made, the archive fills it */
        struct fr_store_opts so;
        fr_store_opts_default(&so);
        if (fr_store_open(o->db, &so, st, &err) != FR_OK) {
            fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
            ex = fr_cli_exit_for(err.code);
        }
    } else {
        ex = fr_cli_open_store(cmd, o->db, true, st);
    }
    if (ex != FR_EXIT_OK)
        fr_retention_policy_clear(p);
    return ex;
}

/* What a bucket sync did, one line (retention run, archive push). */
static void
print_bucket(const char *url, const struct fr_bucket_stats *bs)
{
    fprintf(stderr,
            "bucket %s: %llu objects uploaded (%.1f MB), %llu deleted, %llu local copies evicted "
            "(%.1f MB); %llu segments held only there, %llu not there yet\n",
            url, (unsigned long long)bs->uploaded, (double)bs->uploaded_bytes / 1e6,
            (unsigned long long)bs->deleted, (unsigned long long)bs->evicted,
            (double)bs->evicted_bytes / 1e6, (unsigned long long)bs->remote,
            (unsigned long long)bs->pending);
}

static int
cmd_run(int argc, char **argv)
{
    struct ret_opts o = {0};
    int prc = ret_parse("retention", argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    struct fr_retention_policy p;
    struct fr_store *st;
    int ex = ret_setup("retention", &o, &p, &st, false);
    if (ex != FR_EXIT_OK)
        return ex;
    /* under the disk floor, as the agent's run does: the oldest hot events go to warm early */
    uint64_t avail, total;
    int64_t move;
    if (fr_retention_disk_pressure(&p, o.db, &move, &avail, &total)) {
        p.move_bytes = move;
        char a[32], t[32], m[32];
        fprintf(stderr,
                "the disk holding %s has %s free of %s, under hot.min_free_percent (%lld%%): "
                "this run %s the oldest hot events to warm before their age, about %s of rows "
                "(not those of the last hot.min_free_keep)%s\n",
                o.db, fr_fmt_bytes(a, sizeof a, avail), fr_fmt_bytes(t, sizeof t, total),
                (long long)p.min_free_percent, o.dry_run ? "would also move" : "also moves",
                fr_fmt_bytes(m, sizeof m, (uint64_t)move),
                o.dry_run ? "; the dry run's count below is of the events due by age alone" : "");
    }
    struct fr_retention_stats s;
    struct fr_err err = {0};
    int rc = fr_retention_run(st, &p, o.now, o.dry_run, o.progress ? ret_progress : NULL, NULL, &s,
                              &err);
    if (o.progress)
        fputs("\r\033[K", stderr);
    /* a dry run writes nothing: there is no compressed size, so no ratio to show */
    char sizes[96];
    if (o.dry_run || s.file_bytes == 0)
        snprintf(sizes, sizeof sizes, "%.1f MB of rows", (double)s.row_bytes / 1e6);
    else
        snprintf(sizes, sizeof sizes, "%.1f MB of rows -> %.1f MB, %.1f:1",
                 (double)s.row_bytes / 1e6, (double)s.file_bytes / 1e6,
                 (double)s.row_bytes / (double)s.file_bytes);
    fprintf(stderr,
            "retention%s: %llu events %s warm in %llu segments (%s), %llu segments %s cold, %llu "
            "%s deleted; reconcile: %llu adopted, %llu "
            "orphans removed, %llu duplicate rows removed, %llu missing, %llu MANIFEST records "
            "repaired; %d pages reclaimed; %.2f s\n",
            o.dry_run ? " (dry run)" : "", (unsigned long long)s.moved_events,
            o.dry_run ? "would move to" : "moved to", (unsigned long long)s.warm_segments, sizes,
            (unsigned long long)s.to_cold, o.dry_run ? "would move to" : "moved to",
            (unsigned long long)s.deleted_segments, o.dry_run ? "would be" : "segments",
            (unsigned long long)s.adopted, (unsigned long long)s.orphans_removed,
            (unsigned long long)s.duplicates_removed, (unsigned long long)s.missing_files,
            (unsigned long long)s.journal_repaired, s.reclaimed_pages, s.seconds);
    if (s.ship_hold != INT64_MAX)
        fprintf(stderr,
                "events after row %lld are not shipped to the fleet store yet: kept in hot up to "
                "hot.max_unshipped_age past their age\n",
                (long long)s.ship_hold);
    if (!o.dry_run && p.bucket_url[0] != '\0')
        print_bucket(p.bucket_url, &s.bucket);
    if (rc != FR_OK)
        fprintf(stderr, "flightrec retention: %s\n", err.msg);
    fr_store_close(st);
    fr_retention_policy_clear(&p);
    return rc == FR_OK ? FR_EXIT_OK : FR_EXIT_FAIL;
}

struct list_ctx {
    bool verify;
    const struct fr_archive_keys *keys;
    int bad;
    int rows;
    /* verify: what to record in the manifest once the listing is done */
    char **path, **why;
    size_t n;
};

static void
list_note(struct list_ctx *c, const char *path, const char *why)
{
    c->path = fr_realloc(c->path, (c->n + 1) * sizeof *c->path);
    c->why = fr_realloc(c->why, (c->n + 1) * sizeof *c->why);
    c->path[c->n] = fr_strdup(path);
    c->why[c->n++] = why ? fr_strdup(why) : NULL;
}

/* Records verify's findings (bad, or good again) in the manifest; frees them. */
static void
list_record(struct list_ctx *c, struct fr_store *st)
{
    for (size_t i = 0; i < c->n; i++) {
        struct fr_err err = {0};
        if (fr_store_segment_health(st, c->path[i], c->why[i], NULL, &err) != FR_OK)
            fprintf(stderr, "flightrec archive verify: not recorded: %s\n", err.msg);
        free(c->path[i]);
        free(c->why[i]);
    }
    free(c->path);
    free(c->why);
}

static int
list_row(void *ud, const struct fr_manifest_row *r)
{
    struct list_ctx *c = ud;
    char a[32], b[32];
    fr_time_format(r->min_ts, a, sizeof a);
    fr_time_format(r->max_ts, b, sizeof b);
    if (!c->verify) {
        if (c->rows++ == 0)
            printf("%-5s %-24s    %-24s %8s %10s    %11s %7s  %s\n", "TIER", "FROM (UTC)",
                   "TO (UTC)", "RECORDS", "ROWS MB", "FILE MB", "RATIO", "SEGMENT");
        const char *name = strrchr(r->path, '/');
        printf("%-5s %s .. %s %8lld %10.1f -> %10.1f %6.1f:1  %s%s%s%s\n", r->tier, a, b,
               (long long)r->records, (double)r->raw_bytes / 1e6, (double)r->file_bytes / 1e6,
               r->file_bytes ? (double)r->raw_bytes / (double)r->file_bytes : 0.0,
               name ? name + 1 : r->path,
               access(r->path, F_OK) != 0 && fr_objstore_remote(r->path) ? "  (bucket)" : "",
               r->bad ? "  BAD: " : "", r->bad ? r->bad : "");
        return 0;
    }
    struct fr_err err = {0};
    bool cold = strcmp(r->tier, "cold") == 0;
    int how;
    int rc = fr_segment_verify(r->path, r->sha256, c->keys, &how, &err);
    if (rc == FR_OK) {
        printf("ok    %s%s\n", r->path,
               how == FR_CHECK_NONE           ? " (header only: no archive key to check it)"
               : cold && c->keys->cold.n == 0 ? " (checked; contents sealed: no cold key)"
               : how == FR_CHECK_HMAC         ? " (authenticated)"
                                              : " (SHA-256: written before archive keys)");
        if (how != FR_CHECK_NONE && r->bad != NULL)
            list_note(c, r->path, NULL);
    } else {
        printf("BAD   %s: %s\n", r->path, err.msg);
        c->bad++;
        list_note(c, r->path, err.msg);
    }
    return 0;
}

static int
cat_line(void *ud, const char *json, size_t len)
{
    (void)ud;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    return 0;
}

struct restore_ctx {
    const struct fr_ingest_cfg *cfg;
    struct fr_record *recs;
    size_t n, cap, restored, bad;
};

static int
restore_line(void *ud, const char *json, size_t len)
{
    struct restore_ctx *c = ud;
    struct fr_warm_record wr;
    if (fr_warm_record_parse(json, len, NULL, &wr, NULL) == FR_OK && wr.type == FR_WARM_EVENT) {
        char *body = json_dumps(wr.body, JSON_COMPACT);
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 1024;
            c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
        }
        struct fr_err err = {0};
        if (body &&
            fr_ingest_prepare(body, strlen(body), c->cfg, NULL, &c->recs[c->n], &err) == FR_OK)
            c->n++;
        else
            c->bad++;
        free(body);
    }
    fr_warm_record_clear(&wr);
    return 0;
}

static int
cmd_archive(int argc, char **argv)
{
    if (argc < 2) {
        ret_usage(stderr);
        return FR_EXIT_USAGE;
    }
    const char *sub = argv[1];
    struct ret_opts o = {0};
    int prc = ret_parse("archive", argc - 1, argv + 1, &o);
    if (prc != 0)
        return prc > 0 ? FR_EXIT_OK : FR_EXIT_USAGE;
    bool needs_seg =
        strcmp(sub, "cat") == 0 || strcmp(sub, "restore") == 0 || strcmp(sub, "quarantine") == 0;
    bool rebuild = strcmp(sub, "rebuild") == 0, push = strcmp(sub, "push") == 0;
    if (!needs_seg && !rebuild && !push && strcmp(sub, "list") != 0 && strcmp(sub, "verify") != 0) {
        fprintf(stderr,
                "flightrec archive: unknown subcommand '%s' (list, verify, cat, restore, "
                "quarantine, rebuild, push)\n",
                sub);
        return FR_EXIT_USAGE;
    }
    const char *segpath = needs_seg && optind + 1 < argc ? argv[optind + 1] : NULL;
    if (needs_seg && segpath == NULL) {
        fprintf(stderr, "flightrec archive %s: expected a SEGMENT path\n", sub);
        return FR_EXIT_USAGE;
    }
    struct fr_retention_policy p;
    struct fr_store *st;
    int ex = ret_setup("archive", &o, &p, &st, rebuild);
    if (ex != FR_EXIT_OK)
        return ex;
    /* the name `archive list` prints is enough: it is looked for in the archive folder */
    char *named = NULL;
    if (segpath != NULL && access(segpath, F_OK) != 0) {
        const char *base = strrchr(segpath, '/');
        named = fr_asprintf("%s/%s", p.archive_dir, base ? base + 1 : segpath);
        segpath = named;
    }
    struct fr_archive_keys keys;
    struct fr_err err = {0};
    int rc = fr_retention_keys(&p, false, false, &keys, &err);
    if (rc != FR_OK) {
        /* said below */
    } else if (push) {
        struct fr_bucket_stats bs = {0};
        if (p.bucket_url[0] == '\0')
            rc = fr_err_set(&err, FR_E_CONFIG, "the retention policy names no bucket (bucket.url)");
        if (rc == FR_OK) {
            rc = fr_retention_bucket_push(st, &p, o.now, &bs, &err);
            print_bucket(p.bucket_url, &bs);
        }
    } else if (rebuild) {
        struct fr_rebuild_stats rs;
        bool fetched = false;
        rc = fr_retention_bucket_restore(&p, &fetched, &err);
        if (fetched)
            fprintf(stderr, "fetched the MANIFEST from %s\n", p.bucket_url);
        if (rc == FR_OK)
            rc = fr_retention_rebuild(st, &p, fr_now_ms(), &rs, &err);
        if (rc == FR_OK) {
            fprintf(stderr,
                    "rebuilt %zu manifest entries from the MANIFEST file (%zu already there, %zu "
                    "of another store sharing the folder left alone)\n",
                    rs.restored, rs.present, rs.foreign);
            if (rs.missing + rs.unreadable > 0) {
                fprintf(stderr,
                        "flightrec archive rebuild: %zu listed segments are gone and %zu do not "
                        "verify (named above); their events cannot be read\n",
                        rs.missing, rs.unreadable);
                ex = FR_EXIT_FAIL;
            }
        }
    } else if (!needs_seg) {
        struct list_ctx c = {.verify = strcmp(sub, "verify") == 0, .keys = &keys};
        rc = fr_store_manifest(st, list_row, &c, &err);
        list_record(&c, st);
        if (rc == FR_OK && c.bad > 0) {
            fprintf(stderr,
                    "flightrec archive verify: %d segments failed (named above); reads skip "
                    "them and say so; `flightrec archive quarantine NAME` moves one aside\n",
                    c.bad);
            ex = FR_EXIT_FAIL;
        }
    } else if (strcmp(sub, "quarantine") == 0) {
        char *moved = NULL;
        rc = fr_retention_quarantine(st, &p, argv[optind + 1], fr_now_ms(), &moved, &err);
        if (rc == FR_OK)
            fprintf(stderr,
                    "moved to %s; its manifest entry is removed (the events it held are no "
                    "longer read)\n",
                    moved);
        free(moved);
    } else if (strcmp(sub, "cat") == 0) {
        rc = fr_archive_records(segpath, &keys, cat_line, NULL, &err);
    } else {
        struct fr_cli_redact ro = {.db = o.db, .create_key = true};
        struct fr_redactor *red = NULL;
        struct fr_taxonomy *tax = NULL;
        ex = fr_cli_redactor("archive", &ro, &red);
        if (ex == FR_EXIT_OK && fr_taxonomy_load(NULL, &tax, &err) == FR_OK) {
            struct fr_ingest_cfg cfg = {.tax = tax, .red = red};
            fr_wire_limits_default(&cfg.lim);
            struct restore_ctx c = {.cfg = &cfg};
            rc = fr_archive_records(segpath, &keys, restore_line, &c, &err);
            size_t dups = 0;
            if (rc == FR_OK)
                rc = fr_retention_restore(st, &p, segpath, c.recs, c.n, fr_now_ms(), &dups, &err);
            if (rc == FR_OK) {
                fprintf(stderr,
                        "restored %zu events into hot (%zu already there, %zu unreadable)\n", c.n,
                        dups, c.bad);
            }
            for (size_t i = 0; i < c.n; i++)
                fr_record_clear(&c.recs[i]);
            free(c.recs);
        }
        fr_taxonomy_free(tax);
        fr_redactor_free(red);
    }
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec archive %s: %s\n", sub, err.msg);
        ex = FR_EXIT_FAIL;
    }
    fr_archive_keys_wipe(&keys);
    free(named);
    fr_store_close(st);
    fr_retention_policy_clear(&p);
    return ex;
}

int
fr_cmd_retention(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        ret_usage(stdout);
        return FR_EXIT_OK;
    }
    ret_usage(stderr);
    return FR_EXIT_USAGE;
}

int
fr_cmd_archive(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        ret_usage(stdout);
        return FR_EXIT_OK;
    }
    return cmd_archive(argc, argv);
}
