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
    int rc;
    if (!o->create_key && access(kp, F_OK) != 0) {
        /* nothing was hashed with a key that does not exist: a temporary one shows the same
           redaction, and no key file appears where this command writes nothing */
        rc = RAND_bytes(key, sizeof key) == 1 ? FR_EXIT_OK : FR_EXIT_FAIL;
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
