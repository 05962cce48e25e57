/*
 * agent/cli/cmd_incident.c - `flightrec incident create|verify|open|keygen`
 * (exporters/bundle.h).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "core/crypto.h"
#include "core/event.h"
#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/bundle.h"
#include "exporters/upload.h"
#include "retention/retention.h"

static void
inc_usage(FILE *out)
{
    fprintf(out, "usage: flightrec incident create [--conv ID]... [--since T] [--until T]\n"
                 "                 [--error-class C] [--error-code X] [--trace-id ID]\n"
                 "                 [--out FILE] [--key FILE] [--db PATH]\n"
                 "       flightrec incident verify BUNDLE --pubkey FILE\n"
                 "       flightrec incident open BUNDLE [--pubkey FILE]\n"
                 "       flightrec incident keygen [--key FILE] [--pubkey FILE]\n"
                 "       flightrec incident upload BUNDLE --to NAME [--targets FILE]\n\n"
                 "create: one signed bundle (.tar.zst) with everything about the selected\n"
                 "conversations (named, or having a failure of --error-class/--error-code, or an\n"
                 "event of --trace-id, within --since/--until) or, with only a time range, about\n"
                 "that window: manifest.json, manifest.sig, per-domain NDJSON, summary.md and\n"
                 "replay.ndjson (ingestible again). Data comes from hot, warm and (with the\n"
                 "retention policy's cold key) cold tiers; only redacted data goes in.\n"
                 "  --out FILE     the bundle (default: bundles/incident-<ms>.tar.zst beside the\n"
                 "                 database, where the agent's triggers put theirs)\n"
                 "  --key FILE     Ed25519 private key (PEM; default $FLIGHTREC_SIGNING_KEY or\n"
                 "                 signing.pem in the keys folder, created when absent\n"
                 "                 together with signing.pub.pem; see flightrec keys)\n"
                 "  --include-raw  add the raw-mode payloads of the selected events (raw.ndjson),\n"
                 "                 still sealed with AES-256-GCM; only with the raw-mode key that\n"
                 "                 opens them (--raw-key FILE or $FLIGHTREC_RAW_KEY)\n"
                 "verify: checks the signature and every file's SHA-256; names a bad file.\n"
                 "open: prints the bundle's summary.md, after verifying it with --pubkey\n"
                 "(without, it says the bundle is unverified).\n"
                 "upload: queues the bundle in the outbox, then sends it to the named target of\n"
                 "the upload config (configs/upload.yaml; --targets or $FLIGHTREC_UPLOAD_CONFIG)\n"
                 "with retries; it leaves the outbox only after a 2xx.\n");
}

static int
inc_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"conv", required_argument, NULL, 'c'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"error-class", required_argument, NULL, 'e'},
        {"error-code", required_argument, NULL, 'x'},
        {"trace-id", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'},
        {"key", required_argument, NULL, 'k'},
        {"db", required_argument, NULL, 'd'},
        {"include-raw", no_argument, NULL, 'R'},
        {"raw-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_bundle_select sel = {0};
    const char **convs = NULL;
    const char *out = NULL, *key = getenv("FLIGHTREC_SIGNING_KEY"), *db = fr_cli_default_db();
    const char *raw_key = getenv("FLIGHTREC_RAW_KEY");
    bool include_raw = false;
    struct fr_err err = {0};
    int c, ex = FR_EXIT_OK;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            convs = fr_realloc(convs, (sel.nconvs + 1) * sizeof *convs);
            convs[sel.nconvs++] = optarg;
            break;
        case 's':
        case 'u':
            if (fr_time_parse(optarg, fr_now_ms(), c == 's' ? &sel.since_ms : &sel.until_ms,
                              &err) != FR_OK) {
                fprintf(stderr, "flightrec incident: --%s: %s\n", c == 's' ? "since" : "until",
                        err.msg);
                free(convs);
                return FR_EXIT_USAGE;
            }
            break;
        case 'e':
            sel.error_class = optarg;
            break;
        case 'x':
            sel.error_code = optarg;
            break;
        case 't':
            sel.trace_id = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'R':
            include_raw = true;
            break;
        case 'K':
            raw_key = optarg;
            break;
        case 'h':
            inc_usage(stdout);
            free(convs);
            return FR_EXIT_OK;
        default:
            inc_usage(stderr);
            free(convs);
            return FR_EXIT_USAGE;
        }
    }
    sel.convs = convs;
    struct fr_keyring rawkey;
    if (include_raw) {
        if (raw_key == NULL || *raw_key == '\0') {
            fprintf(stderr, "flightrec incident create: --include-raw needs the raw-mode key "
                            "(--raw-key FILE or $FLIGHTREC_RAW_KEY)\n");
            free(convs);
            return FR_EXIT_USAGE;
        }
        int kx = fr_cli_load_keyring("incident", raw_key, &rawkey);
        if (kx != FR_EXIT_OK) {
            free(convs);
            return kx;
        }
    }
    if (sel.error_class &&
        !fr_cli_error_class_ok("incident create", "--error-class", sel.error_class)) {
        free(convs);
        return FR_EXIT_USAGE;
    }
    if (sel.error_code) {
        size_t n = strcspn(sel.error_code, ".");
        char klass[32];
        snprintf(klass, sizeof klass, "%.*s", (int)(n < sizeof klass ? n : sizeof klass - 1),
                 sel.error_code);
        if (sel.error_code[n] != '.' || sel.error_code[n + 1] == '\0' ||
            fr_error_class_parse(klass) <= 0) {
            fprintf(stderr,
                    "flightrec incident create: --error-code: '%s' is not a taxonomy "
                    "code (<class>.<reason>, e.g. provider.rate_limited)\n",
                    sel.error_code);
            free(convs);
            return FR_EXIT_USAGE;
        }
    }
    if (sel.since_ms && sel.until_ms && sel.since_ms > sel.until_ms) {
        fprintf(stderr, "flightrec incident create: --since is after --until: nothing can match\n");
        free(convs);
        return FR_EXIT_USAGE;
    }
    if (sel.nconvs == 0 && !sel.error_class && !sel.error_code && !sel.trace_id && !sel.since_ms &&
        !sel.until_ms) {
        fprintf(stderr, "flightrec incident create: select something: --conv, --since/--until, "
                        "--error-class, --error-code or --trace-id\n");
        free(convs);
        return FR_EXIT_USAGE;
    }
    /* the store first: a selection over a file that is not a database creates no key */
    struct fr_store *st = NULL;
    EVP_PKEY *sign = NULL;
    char *keypath = fr_key_path(db, key, NULL, "signing.pem");
    ex = fr_cli_open_store("incident", db, false, &st);
    if (ex == FR_EXIT_OK && access(keypath, F_OK) != 0) {
        char *pub = fr_key_path(db, NULL, NULL, "signing.pub.pem");
        if (fr_mkdirs_for(keypath, 0700, &err) != FR_OK ||
            fr_ed25519_generate(keypath, pub, &err) != FR_OK) {
            fprintf(stderr, "flightrec incident: %s\n", err.msg);
            ex = FR_EXIT_FAIL;
        } else {
            fprintf(stderr, "flightrec incident: created signing key %s (public key %s)\n", keypath,
                    pub);
        }
        free(pub);
    }
    if (ex == FR_EXIT_OK && fr_ed25519_load(keypath, true, &sign, &err) != FR_OK) {
        fprintf(stderr, "flightrec incident: %s\n", err.msg);
        ex = FR_EXIT_USAGE;
    }
    if (ex == FR_EXIT_OK) {
        struct fr_archive_keys keys;
        fr_cli_archive_keys("incident", db, &keys, NULL);
        /* without --out, where the agent's triggers put theirs: bundles/ beside the
           database (incident.bundle_dir's default), not the current folder */
        char *defout = NULL;
        if (out == NULL) {
            char *copy = fr_strdup(db);
            char *dir = fr_asprintf("%s/bundles", dirname(copy));
            free(copy);
            defout = fr_asprintf("%s/incident-%lld.tar.zst", dir, (long long)fr_now_ms());
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                fprintf(stderr, "flightrec incident: %s: %s\n", dir, strerror(errno));
            free(dir);
            out = defout;
        }
        struct fr_bundle_info info;
        if (fr_bundle_create(st, &sel, &keys, include_raw ? &rawkey : NULL, sign, out, &info,
                             &err) != FR_OK) {
            fprintf(stderr, "flightrec incident: %s\n", err.msg);
            ex = FR_EXIT_FAIL;
        } else if (info.events == 0) {
            /* an empty bundle answers nothing: say so, leave no file */
            fprintf(stderr, "flightrec incident create: no event matches the selection\n");
            unlink(out);
            char *side = fr_asprintf("%s.sha256", out);
            unlink(side);
            free(side);
            ex = FR_EXIT_NOTFOUND;
        } else {
            printf("%s\n", out);
            fprintf(stderr,
                    "bundle %s: %zu events of %zu conversations, %zu files, %.1f kB, %.2f s\n",
                    info.id, info.events, info.conversations, info.files,
                    (double)info.bytes / 1000.0, info.seconds);
        }
        fr_archive_keys_wipe(&keys);
        free(defout);
    }
    fr_store_close(st);
    EVP_PKEY_free(sign);
    free(keypath);
    free(convs);
    fr_key_wipe(&rawkey, sizeof rawkey);
    return ex;
}

/* --targets FILE or $FLIGHTREC_UPLOAD_CONFIG; prints the error. */
static int
load_targets(const char *cmd, const char *file, struct fr_upload_config *c)
{
    if (file == NULL)
        file = getenv("FLIGHTREC_UPLOAD_CONFIG");
    if (file == NULL || *file == '\0') {
        fprintf(stderr,
                "flightrec %s: no upload config: pass --targets FILE or set "
                "FLIGHTREC_UPLOAD_CONFIG (see configs/upload.yaml)\n",
                cmd);
        return FR_EXIT_USAGE;
    }
    struct fr_err err = {0};
    if (fr_upload_config_load(file, c, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return FR_EXIT_USAGE;
    }
    return FR_EXIT_OK;
}

static void
upload_progress(void *ud, uint64_t sent, uint64_t total)
{
    (void)ud;
    if (total > 0)
        fprintf(stderr, "\r\033[Kuploading: %.1f of %.1f MB (%.0f%%)", (double)sent / 1e6,
                (double)total / 1e6, 100.0 * (double)sent / (double)total);
}

/* incident upload BUNDLE --to NAME [--targets FILE]: queued in the outbox, then sent. */
static int
inc_upload(int argc, char **argv)
{
    const char *bundle = NULL, *to = NULL, *targets = NULL, *db = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (strcmp(argv[i], "--targets") == 0 && i + 1 < argc)
            targets = argv[++i];
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else
            bundle = argv[i];
    }
    if (bundle == NULL || to == NULL) {
        fprintf(stderr, "usage: flightrec incident upload BUNDLE --to NAME [--targets FILE] "
                        "[--db PATH]\n");
        return FR_EXIT_USAGE;
    }
    /* a bundle holding a conversation erased since it was made is never sent */
    struct fr_store *est = NULL;
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.create = false;
    so.read_only = true;
    char erased[256] = "";
    if (fr_store_open(db ? db : fr_cli_default_db(), &so, &est, NULL) == FR_OK &&
        fr_bundle_holds_erased(bundle, fr_store_erased_cb, est, erased, sizeof erased)) {
        fr_store_close(est);
        char msg[800]; /* the id is producer data: written escaped */
        int len = snprintf(msg, sizeof msg,
                           "flightrec incident: %s holds conversation %s, which was erased "
                           "(flightrec erase --list): not uploaded; delete the bundle\n",
                           bundle, erased);
        fr_cli_write_safe(msg, len < (int)sizeof msg ? (size_t)len : sizeof msg - 1, stderr);
        return FR_EXIT_FAIL;
    }
    fr_store_close(est);
    struct fr_upload_config c;
    int ex = load_targets("incident", targets, &c);
    if (ex != FR_EXIT_OK)
        return ex;
    const struct fr_upload_target *t = fr_upload_target_find(&c, to);
    struct fr_err err = {0};
    if (t == NULL) {
        fprintf(stderr, "flightrec incident: no upload target named %s\n", to);
        fr_upload_config_clear(&c);
        return FR_EXIT_USAGE;
    }
    /* into the outbox first: a failed or interrupted upload is retried later */
    if (fr_outbox_add(&c, bundle, to, &err) != FR_OK) {
        fprintf(stderr, "flightrec incident: %s\n", err.msg);
        fr_upload_config_clear(&c);
        return FR_EXIT_FAIL;
    }
    const char *base = strrchr(bundle, '/');
    char *queued = fr_asprintf("%s/%s", c.outbox, base ? base + 1 : bundle);
    struct fr_upload_result res;
    bool tty = isatty(STDERR_FILENO);
    int rc = fr_upload_file(t, queued, tty ? upload_progress : NULL, NULL, &res, &err);
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc == FR_OK) {
        fr_outbox_drop(c.outbox, queued, NULL); /* its files, sidecar included */
        fprintf(stderr, "uploaded %s to %s: HTTP %ld, %.1f kB in %.4f s, %d attempt(s)\n", bundle,
                to, res.status, (double)res.bytes / 1000.0, res.seconds, res.attempts);
    } else {
        fr_outbox_record_failure(queued, res.attempts > 0 ? res.attempts : 1, err.msg);
        fprintf(stderr,
                "flightrec incident: %s; it stays in the outbox %s (flightrec outbox "
                "retry)\n",
                err.msg, c.outbox);
        ex = FR_EXIT_FAIL;
    }
    free(queued);
    fr_upload_config_clear(&c);
    return ex;
}

int
fr_cmd_outbox(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "", *targets = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--targets") == 0 && i + 1 < argc)
            targets = argv[++i];
        else
            name = argv[i];
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "retry") != 0 && strcmp(sub, "drop") != 0) {
        bool help = strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: flightrec outbox list|retry|drop [NAME] [--targets FILE]\n\n"
                "The bundles waiting for upload (the outbox of the upload config:\n"
                "--targets FILE or $FLIGHTREC_UPLOAD_CONFIG).\n"
                "list: each bundle, its target, the upload attempts so far and the last error.\n"
                "retry: sends every queued bundle again; a bundle leaves\n"
                "the outbox only after a 2xx.\n"
                "drop NAME: removes a queued bundle without sending it.\n");
        return help ? FR_EXIT_OK : FR_EXIT_USAGE;
    }
    struct fr_upload_config c;
    int ex = load_targets("outbox", targets, &c);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    if (strcmp(sub, "list") == 0) {
        struct fr_outbox_item *items;
        size_t n;
        if (fr_outbox_list(c.outbox, &items, &n, &err) == FR_OK) {
            for (size_t i = 0; i < n; i++)
                printf("%s  -> %s  attempts %d%s%s\n", items[i].file, items[i].target,
                       items[i].attempts, items[i].last_error ? "  last error: " : "",
                       items[i].last_error ? items[i].last_error : "");
            if (n == 0)
                fprintf(stderr, "the outbox %s is empty\n", c.outbox);
            fr_outbox_items_free(items, n);
        } else {
            ex = FR_EXIT_FAIL;
        }
    } else if (strcmp(sub, "retry") == 0) {
        size_t sent, failed;
        if (fr_outbox_flush(&c, &sent, &failed, &err) == FR_OK) {
            fprintf(stderr, "outbox: %zu sent, %zu still queued\n", sent, failed);
            ex = failed > 0 ? FR_EXIT_FAIL : FR_EXIT_OK;
        } else {
            ex = FR_EXIT_FAIL;
        }
    } else {
        if (name == NULL) {
            fprintf(stderr, "usage: flightrec outbox drop NAME\n");
            ex = FR_EXIT_USAGE;
        } else if (fr_outbox_drop(c.outbox, name, &err) != FR_OK) {
            ex = FR_EXIT_NOTFOUND;
        }
    }
    if (ex == FR_EXIT_FAIL || ex == FR_EXIT_NOTFOUND)
        if (err.msg[0])
            fprintf(stderr, "flightrec outbox: %s\n", err.msg);
    fr_upload_config_clear(&c);
    return ex;
}

/* Checks bundle against the public key in pub: its signature and every file. */
static int
verify_bundle(const char *sub, const char *bundle, const char *pub)
{
    struct fr_err err = {0};
    EVP_PKEY *k;
    if (fr_ed25519_load(pub, false, &k, &err) != FR_OK) {
        fprintf(stderr, "flightrec incident: %s\n", err.msg);
        return FR_EXIT_USAGE;
    }
    int rc = fr_bundle_verify(bundle, k, &err);
    EVP_PKEY_free(k);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec incident %s: %s: %s\n", sub,
                strcmp(sub, "open") == 0 ? "NOT SHOWN, verification failed" : "FAILED", err.msg);
        return FR_EXIT_FAIL;
    }
    return FR_EXIT_OK;
}

int
fr_cmd_incident(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "create") == 0)
        return inc_create(argc - 1, argv + 1);
    if (strcmp(sub, "upload") == 0)
        return inc_upload(argc, argv);
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        inc_usage(stdout);
        return FR_EXIT_OK;
    }
    struct fr_err err = {0};
    if (strcmp(sub, "keygen") == 0) {
        const char *key = NULL, *pub = NULL;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--key") == 0)
                key = argv[i + 1];
            else if (strcmp(argv[i], "--pubkey") == 0)
                pub = argv[i + 1];
        }
        if (key == NULL || pub == NULL) {
            fprintf(stderr, "usage: flightrec incident keygen --key FILE --pubkey FILE\n");
            return FR_EXIT_USAGE;
        }
        if (fr_ed25519_generate(key, pub, &err) != FR_OK) {
            fprintf(stderr, "flightrec incident: %s\n", err.msg);
            return FR_EXIT_FAIL;
        }
        return FR_EXIT_OK;
    }
    if (strcmp(sub, "verify") == 0 || (strcmp(sub, "open") == 0 && argc >= 3)) {
        bool open = strcmp(sub, "open") == 0;
        const char *bundle = NULL, *pub = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--pubkey") == 0 && i + 1 < argc)
                pub = argv[++i];
            else
                bundle = argv[i];
        }
        if (bundle == NULL || (!open && pub == NULL)) {
            fprintf(stderr, open ? "usage: flightrec incident open BUNDLE [--pubkey FILE]\n"
                                 : "usage: flightrec incident verify BUNDLE --pubkey FILE\n");
            return FR_EXIT_USAGE;
        }
        int ex = pub != NULL ? verify_bundle(sub, bundle, pub) : FR_EXIT_OK;
        if (ex != FR_EXIT_OK || !open) {
            if (ex == FR_EXIT_OK)
                printf("%s: signature and every file hash verified\n", bundle);
            return ex;
        }
        /* open: what is shown is what was signed, or it says it did not check */
        if (pub == NULL)
            fprintf(stderr, "flightrec incident open: UNVERIFIED bundle (pass --pubkey FILE to "
                            "check its signature and every file before reading it)\n");
        char *text;
        size_t len;
        if (fr_bundle_member(bundle, "summary.md", &text, &len, &err) != FR_OK) {
            fprintf(stderr, "flightrec incident: %s\n", err.msg);
            return FR_EXIT_FAIL;
        }
        fr_cli_write_safe(text, len, stdout); /* a producer's escapes never reach the terminal */
        free(text);
        return FR_EXIT_OK;
    }
    inc_usage(stderr);
    return FR_EXIT_USAGE;
}
