/*
 * agent/cli/cmd_keys.c - `flightrec keys`: where each key file is, whether
 * it exists, its mode and key ids (never key material), and `keys rotate`:
 * a new current key, the old ones kept in the same file to read what they
 * sealed, hashed or authenticated (core/crypto.h, docs/security.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cli/cli.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "retention/retention.h"

static void
keys_usage(FILE *out)
{
    fprintf(out, "usage: flightrec keys [list] [--db PATH]\n"
                 "       flightrec keys rotate hmac|cold|archive|FILE [--db PATH]\n\n"
                 "Where flightrec's keys are (the keys folder: $FLIGHTREC_KEYS_DIR, else the\n"
                 "keys.dir of $FLIGHTREC_CONFIG, else ~/.config/flightrec/keys), whether each\n"
                 "exists, its mode and the ids of the keys it holds. Key material is never\n"
                 "printed.\n\n"
                 "rotate makes a new current key and keeps the old ones in the same file, so\n"
                 "what they sealed (cold segments), hashed (hmac: tokens, which name their key)\n"
                 "or authenticated (segments, MANIFEST lines) stays readable; new data uses the\n"
                 "new key. A running agent uses a rotated key after a restart (hmac: after\n"
                 "SIGHUP). Back the keys folder up after a rotation. FILE rotates any key file\n"
                 "(e.g. the raw-mode key).\n\n"
                 "  --db PATH   the database whose retention policy names the cold and archive\n"
                 "              keys (default $FLIGHTREC_DB or ./var/flightrec.db)\n");
}

struct key_file {
    const char *name, *what;
    char *path;
};

/* The key files this database uses, by the same rules as the commands that use them. */
static void
key_files(const char *db, struct key_file kf[4])
{
    struct fr_retention_policy rp;
    bool loaded = fr_retention_policy_load(getenv("FLIGHTREC_RETENTION"), db, &rp, NULL) == FR_OK;
    kf[0] = (struct key_file){"hmac", "keyed hashes (hmac: tokens)",
                              fr_key_path(db, NULL, "FLIGHTREC_HMAC_KEY", "hmac.key")};
    kf[1] = (struct key_file){"cold", "seals cold segments",
                              loaded ? fr_strdup(rp.cold_key)
                                     : fr_key_path(db, NULL, NULL, "cold.key")};
    kf[2] = (struct key_file){"archive", "authenticates segments and MANIFEST",
                              loaded ? fr_strdup(rp.archive_key)
                                     : fr_key_path(db, NULL, NULL, "archive.key")};
    kf[3] =
        (struct key_file){"signing", "signs incident bundles (Ed25519)",
                          fr_key_path(db, getenv("FLIGHTREC_SIGNING_KEY"), NULL, "signing.pem")};
    if (loaded)
        fr_retention_policy_clear(&rp);
}

static int
keys_list(const char *db)
{
    char *dir = fr_keys_dir();
    printf("keys folder: %s\n", dir);
    free(dir);
    struct key_file kf[4];
    key_files(db, kf);
    printf("%-8s %-5s %-5s %-17s %s\n", "KEY", "MODE", "KEYS", "CURRENT ID", "FILE");
    for (int i = 0; i < 4; i++) {
        struct stat st;
        if (stat(kf[i].path, &st) != 0) {
            printf("%-8s %-5s %-5s %-17s %s (absent: %s; made by the first command that needs "
                   "it)\n",
                   kf[i].name, "-", "-", "-", kf[i].path, kf[i].what);
            continue;
        }
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        if (i == 3) { /* a PEM key pair, rotated with incident keygen */
            printf("%-8s %-5s %-5s %-17s %s\n", kf[i].name, mode, "1", "(Ed25519)", kf[i].path);
            continue;
        }
        struct fr_keyring ring;
        struct fr_err err = {0};
        if (fr_keyring_load(kf[i].path, false, &ring, NULL, &err) != FR_OK) {
            printf("%-8s %-5s %-5s %-17s %s: %s\n", kf[i].name, mode, "?", "-", kf[i].path,
                   err.msg);
            continue;
        }
        char id[FR_KEY_ID_HEX + 1];
        fr_key_id_hex(ring.key[0], id);
        printf("%-8s %-5s %-5zu %-17s %s\n", kf[i].name, mode, ring.n, id, kf[i].path);
        for (size_t k = 1; k < ring.n; k++) {
            fr_key_id_hex(ring.key[k], id);
            printf("%-8s %-5s %-5s %-17s (retired, kept for reading)\n", "", "", "", id);
        }
        fr_key_wipe(&ring, sizeof ring);
    }
    for (int i = 0; i < 4; i++)
        free(kf[i].path);
    return FR_EXIT_OK;
}

static int
keys_rotate(const char *db, const char *which)
{
    struct key_file kf[4];
    key_files(db, kf);
    const char *path = strchr(which, '/') ? which : NULL;
    for (int i = 0; i < 3 && path == NULL; i++)
        if (strcmp(which, kf[i].name) == 0)
            path = kf[i].path;
    int ex = FR_EXIT_OK;
    if (path == NULL) {
        fprintf(stderr,
                "flightrec keys rotate: '%s' is not hmac, cold, archive or a key file path "
                "(signing keys: flightrec incident keygen)\n",
                which);
        ex = FR_EXIT_USAGE;
    } else {
        char id[FR_KEY_ID_HEX + 1];
        struct fr_err err = {0};
        if (fr_key_rotate(path, id, &err) != FR_OK) {
            fprintf(stderr, "flightrec keys rotate: %s\n", err.msg);
            ex = err.code == FR_E_LIMIT ? FR_EXIT_FAIL : FR_EXIT_NOTFOUND;
        } else {
            printf("rotated %s: new current key %s; the previous keys stay in the file for "
                   "reading\n",
                   path, id);
            fprintf(stderr,
                    "flightrec keys: back up %s now; a running agent uses the new key "
                    "after a restart\n",
                    path);
        }
    }
    for (int i = 0; i < 4; i++)
        free(kf[i].path);
    return ex;
}

int
fr_cmd_keys(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+d:h", longopts, NULL)) != -1) {
        if (c == 'd') {
            db = optarg;
        } else if (c == 'h') {
            keys_usage(stdout);
            return FR_EXIT_OK;
        } else {
            keys_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    /* options may also follow the subcommand */
    const char *sub = optind < argc ? argv[optind++] : "list";
    const char *which = NULL;
    if (strcmp(sub, "rotate") == 0 && optind < argc && argv[optind][0] != '-')
        which = argv[optind++];
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (c != 'd') {
            keys_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? FR_EXIT_OK : FR_EXIT_USAGE;
        }
        db = optarg;
    }
    if (fr_cli_no_args("keys", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    if (db == NULL)
        db = fr_cli_default_db();
    if (strcmp(sub, "list") == 0)
        return keys_list(db);
    if (strcmp(sub, "rotate") == 0 && which != NULL)
        return keys_rotate(db, which);
    keys_usage(stderr);
    return FR_EXIT_USAGE;
}
