/*
 * agent/cli/keys.c - keys and the redaction stage from command-line
 * options (shared by ingest, show --raw, redact --explain, incident and the
 * tier reads): key files, the cold-tier key, the redactor.
 */
#include <getopt.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "agent/ingest.h"
#include "core/crypto.h"
#include "core/linereader.h"
#include "core/mem.h"
#include "core/wire.h"
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

int
fr_cli_load_keyring(const char *cmd, const char *path, struct fr_keyring *ring)
{
    struct fr_err err = {0};
    if (fr_keyring_load(path, false, ring, NULL, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return FR_EXIT_USAGE;
    }
    return FR_EXIT_OK;
}

bool
fr_cli_archive_keys(const char *cmd, const char *db, struct fr_archive_keys *k, bool *has_policy)
{
    memset(k, 0, sizeof *k);
    struct fr_retention_policy rp;
    struct fr_err err = {0};
    bool loaded = fr_retention_policy_load(getenv("FLIGHTREC_RETENTION"), db, &rp, NULL) == FR_OK;
    if (loaded && fr_retention_keys(&rp, false, false, k, &err) != FR_OK)
        fprintf(stderr, "flightrec %s: %s (archived segments it protects are not read)\n", cmd,
                err.msg);
    if (loaded)
        fr_retention_policy_clear(&rp);
    if (has_policy != NULL)
        *has_policy = loaded;
    return k->cold.n > 0;
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
    int rc;
    if (!o->create_key && access(kp, F_OK) != 0) {
        /* nothing was hashed with a key that does not exist: a temporary one shows the same
           redaction, and no key file appears where this command writes nothing */
        rc = RAND_bytes(key, sizeof key) == 1 ? FR_EXIT_OK : FR_EXIT_FAIL;
        if (!o->quiet)
            fprintf(stderr,
                    "flightrec %s: no HMAC key at %s: hmac: tokens below come from a temporary key "
                    "and match nothing stored\n",
                    cmd, kp);
    } else {
        rc = fr_cli_load_key(cmd, kp, o->create_key, key);
    }
    free(kp);
    if (rc != FR_EXIT_OK) {
        fr_policy_free(p);
        return rc;
    }
    if (fr_redactor_new(p, key, out, &err) != FR_OK) {
        fprintf(stderr, "flightrec %s: redaction policy: %s\n", cmd, err.msg);
        rc = FR_EXIT_USAGE;
    }
    fr_key_wipe(key, sizeof key);
    return rc;
}
