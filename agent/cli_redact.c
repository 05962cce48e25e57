/*
 * agent/cli_redact.c - setting up the redaction stage from command-line
 * options (shared by ingest, show --raw and redact --explain), and the
 * `flightrec redact --explain FILE` command.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "core/linereader.h"
#include "core/mem.h"
#include "core/wire.h"
#include "agent/ingest.h"
#include "redact/redact.h"
#include "retention/retention.h"

int
fr_cli_load_key(const char *cmd, const char *path, bool create, unsigned char key[FR_KEY_LEN])
{
    struct fr_err err = {0};
    bool created = false;
    if (fr_key_load(path, create, key, &created, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return FR_EXIT_USAGE;
    }
    if (created)
        fprintf(stderr, "flightrec %s: created key file %s (mode 0600); back it up\n", cmd, path);
    return FR_EXIT_OK;
}

bool
fr_cli_cold_key(const char *db, unsigned char key[FR_KEY_LEN], bool *has_policy)
{
    struct fr_retention_policy rp;
    bool loaded = fr_retention_policy_load(getenv("FLIGHTREC_RETENTION"), db, &rp, NULL) == FR_OK;
    bool has = loaded && fr_retention_cold_key(&rp, false, key, NULL) == FR_OK;
    if (loaded)
        fr_retention_policy_clear(&rp);
    if (has_policy != NULL)
        *has_policy = loaded;
    return has;
}

int
fr_cli_redactor(const char *cmd, const struct fr_cli_redact *o, struct fr_redactor **out)
{
    *out = NULL;
    const char *policy = o->policy ? o->policy : getenv("FLIGHTREC_REDACTION");
    struct fr_err err = {0};
    struct fr_policy *p;
    if (fr_policy_load(policy && *policy ? policy : NULL, &p, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: redaction policy: %s\n", cmd, err.msg);
        return FR_EXIT_USAGE;
    }
    char *kp = fr_key_path(o->db, o->hmac_key, "FLIGHTREC_HMAC_KEY", "hmac.key");
    unsigned char key[FR_KEY_LEN];
    int rc = fr_cli_load_key(cmd, kp, true, key);
    free(kp);
    if (rc != FR_EXIT_OK) {
        fr_policy_free(p);
        return rc;
    }
    if (fr_redactor_new(p, key, out, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: redaction policy: %s\n", cmd, err.msg);
        rc = FR_EXIT_USAGE;
    }
    memset(key, 0, sizeof key);
    return rc;
}

/* ---- redact --explain ---- */

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
        printf("line %llu: %s: tag %s, action %s (%zu bytes)%s%s\n", l->line, h->path,
               fr_sensitivity_name(h->tag), fr_action_name(h->action), h->end,
               h->token[0] ? " " : "", h->token);
}

static void
redact_usage(FILE *out)
{
    fprintf(out, "usage: flightrec redact --explain [OPTIONS] FILE|-\n\n"
                 "Runs the redaction policy over NDJSON events without storing anything and\n"
                 "prints, per line, which fields and detectors fired: field path, detector,\n"
                 "byte offsets in the field, and the keyed hash of the matched text. Matched\n"
                 "values are never printed, so the output is safe to share while tuning a\n"
                 "policy. Ends with hit counts per detector and per action.\n\n"
                 "options:\n"
                 "  --explain          required: explain what the policy does\n"
                 "  --redaction FILE   policy merged over the built-in one\n"
                 "                     (default $FLIGHTREC_REDACTION)\n"
                 "  --hmac-key FILE    HMAC key (default $FLIGHTREC_HMAC_KEY or keys/hmac.key\n"
                 "                     next to the database, created when absent)\n"
                 "  --db PATH          database whose key directory to use\n"
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
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        perror(path);
        fr_redactor_free(red);
        return FR_EXIT_FAIL;
    }
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, red);
    struct explain_line l = {0};
    unsigned long long bad = 0, changed = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        l.line++;
        l.hits = 0;
        struct fr_event ev;
        struct fr_err err = {0};
        bool ch = false;
        if (fr_wire_parse(line, (size_t)len, &lim, &ev, &err) != FR_OK) {
            printf("line %llu: not redacted, rejected: %s\n", l.line, err.msg);
            bad++;
            continue;
        }
        fr_redact_event(red, &ev, &counts, explain_hit, &l, &ch, &err);
        changed += ch;
        fr_event_clear(&ev);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    printf("\n%llu lines, %llu changed by the policy, %llu rejected; policy %s\n", l.line, changed,
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
    return bad > 0 ? FR_EXIT_REJECTED : FR_EXIT_OK;
}
