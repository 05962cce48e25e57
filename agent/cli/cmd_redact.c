/*
 * agent/cli/cmd_redact.c - `flightrec redact --explain FILE`: runs the
 * redaction policy over NDJSON events without storing anything and prints
 * what it would do (never a matched value), and `--policy`.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "agent/cli/zinput.h"
#include "agent/ingest.h"
#include "core/linereader.h"
#include "core/mem.h"
#include "core/wire.h"
#include "redact/redact.h"

struct explain_line {
    unsigned long long line;
    unsigned hits;
};

static void
explain_hit(void *ud, const struct fr_redact_hit *h)
{
    struct explain_line *l = ud;
    l->hits++;
    if (h->detector != NULL)
        printf("line %llu: %s: %s [%zu,%zu) %s (field action %s)\n", l->line, h->path, h->detector,
               h->start, h->end, h->token, fr_action_name(h->action));
    else
        printf("line %llu: %s: tag %s, action %s (%zu bytes)%s%s%s%s%s\n", l->line, h->path,
               fr_sensitivity_name(h->tag), fr_action_name(h->action), h->end,
               h->token[0] ? " " : "", h->token, h->rule ? " (key rule: " : "",
               h->rule ? h->rule : "", h->rule ? ")" : "");
}

static void
redact_usage(FILE *out)
{
    fprintf(out, "usage: flightrec redact --explain [OPTIONS] FILE|-\n\n"
                 "Runs the redaction policy over NDJSON events (plain, gzip or zstd) without\n"
                 "storing anything and prints, per line, which fields and detectors fired:\n"
                 "field path, detector, byte offsets in the field, and the keyed hash of the\n"
                 "matched text. Matched values are never printed, so the output is safe to\n"
                 "share while tuning a policy. Ends with hit counts per detector and per\n"
                 "action.\n\n"
                 "options:\n"
                 "  --explain          required: explain what the policy does\n"
                 "  --redaction FILE   policy merged over the built-in one\n"
                 "                     (default $FLIGHTREC_REDACTION)\n"
                 "  --hmac-key FILE    HMAC key (default $FLIGHTREC_HMAC_KEY or hmac.key in\n"
                 "                     the keys folder, created when absent)\n"
                 "  --db PATH          database (a key still kept beside it is found)\n"
                 "  --policy           print the effective policy as JSON and its id, then exit\n"
                 "  -h, --help         this help\n");
}

int
fr_cmd_redact(int argc, char **argv)
{
    static const struct option opts[] = {
        {"explain", no_argument, NULL, 'x'},
        {"redaction", required_argument, NULL, 'r'},
        {"hmac-key", required_argument, NULL, 'k'},
        {"db", required_argument, NULL, 'd'},
        {"policy", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_cli_redact ro = {.db = fr_cli_default_db()};
    bool explain = false, show_policy = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'x':
            explain = true;
            break;
        case 'r':
            ro.policy = optarg;
            break;
        case 'k':
            ro.hmac_key = optarg;
            break;
        case 'd':
            ro.db = optarg;
            break;
        case 'p':
            show_policy = true;
            break;
        case 'h':
            redact_usage(stdout);
            return FR_EXIT_OK;
        default:
            redact_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (!show_policy && (!explain || optind != argc - 1)) {
        fprintf(stderr, "flightrec redact: expected --explain and one FILE (or - for stdin)\n");
        redact_usage(stderr);
        return FR_EXIT_USAGE;
    }
    struct fr_redactor *red;
    int rc = fr_cli_redactor("redact", &ro, &red);
    if (rc != FR_EXIT_OK)
        return rc;
    if (show_policy) {
        const struct fr_policy *p = fr_redactor_policy(red);
        printf("%s\n%s\n", fr_policy_id(p), fr_policy_json(p));
        fr_redactor_free(red);
        return FR_EXIT_OK;
    }
    const char *path = argv[optind];
    int src = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC), fd = src;
    if (fd < 0) {
        perror(path);
        fr_redactor_free(red);
        return FR_EXIT_FAIL;
    }
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, red);
    struct explain_line l = {0};
    unsigned long long bad = 0, changed = 0, lines = 0; /* lines: not blank ones */
    struct fr_err err = {0};
    struct fr_zinput *z; /* a gzip or zstd input: read decompressed, as by ingest */
    char pre[4];
    size_t npre;
    int status = FR_EXIT_OK;
    if (fr_zinput_open(fd, &z, &fd, pre, &npre, &err) != FR_OK) {
        fprintf(stderr, "flightrec redact: %s: %s\n", path, err.msg);
        status = FR_EXIT_FAIL;
    }
    struct fr_linereader *lr = status == FR_EXIT_OK ? fr_linereader_new(fd, lim.max_line) : NULL;
    if (lr != NULL)
        fr_linereader_preload(lr, pre, npre);
    const char *text;
    size_t n;
    bool too_long;
    uint64_t lineno;
    rc = 0;
    while (lr != NULL && (rc = fr_linereader_next(lr, &text, &n, &too_long, &lineno)) == 1) {
        l.line = lineno;
        if (too_long) {
            printf("line %llu: not redacted, rejected: line is %zu bytes, over the %zu byte "
                   "limit\n",
                   l.line, n, lim.max_line);
            lines++;
            bad++;
            continue;
        }
        if (!fr_wire_line(&text, &n)) /* blank: skipped, as by ingest */
            continue;
        lines++;
        l.hits = 0;
        struct fr_event ev;
        bool ch = false;
        char *mended; /* read as ingest reads it: a value it mends, mended */
        size_t mended_len;
        if (fr_wire_parse_mend(text, n, &lim, &ev, &mended, &mended_len, &err) != FR_OK) {
            printf("line %llu: not redacted, rejected: %s\n", l.line, err.msg);
            bad++;
            continue;
        }
        free(mended);
        fr_redact_event(red, &ev, &counts, explain_hit, &l, &ch, &err);
        changed += ch;
        fr_event_clear(&ev);
    }
    if (rc < 0) {
        perror(path);
        status = FR_EXIT_FAIL;
    }
    fr_linereader_free(lr);
    if (fr_zinput_close(z, &err) != FR_OK) {
        fprintf(stderr, "flightrec redact: %s: %s\n", path, err.msg);
        status = FR_EXIT_FAIL;
    }
    if (src != STDIN_FILENO)
        close(src);
    printf("\n%llu lines, %llu changed by the policy, %llu rejected; policy %s\n", lines, changed,
           bad, fr_policy_id(fr_redactor_policy(red)));
    printf("hits per detector:");
    for (size_t i = 0; i < counts.ndetectors; i++)
        if (counts.hits[i] > 0)
            printf(" %s=%llu", fr_redactor_detector_name(red, i),
                   (unsigned long long)counts.hits[i]);
    printf("\nvalues changed per action:");
    for (int a = 0; a < FR_ACT_COUNT; a++)
        if (counts.actions[a] > 0)
            printf(" %s=%llu", fr_action_name(a), (unsigned long long)counts.actions[a]);
    printf("\n");
    fr_redact_counts_free(&counts);
    fr_redactor_free(red);
    return status != FR_EXIT_OK ? status : bad > 0 ? FR_EXIT_REJECTED : FR_EXIT_OK;
}
