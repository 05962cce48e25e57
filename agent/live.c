/*
 * agent/live.c - see live.h.
 */
#include "agent/live.h"

#include <unistd.h>

#include <openssl/rand.h>

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/taxonomy.h"
#include "core/log.h"
#include "core/mem.h"
#include "redact/redact.h"

void
fr_live_free(struct fr_live *l)
{
    if (l == NULL)
        return;
    fr_taxonomy_free(l->tax);
    fr_redactor_free(l->red);
    OPENSSL_cleanse(l->raw_key, sizeof l->raw_key);
    free(l->token);
    free(l->query_token);
    free(l->admin_token);
    free(l->runtime_pidfile);
    free(l);
}

int
fr_live_new(const struct fr_config *c, bool create_keys, struct fr_live **out, struct fr_err *err)
{
    *out = NULL;
    struct fr_live *l = fr_calloc(1, sizeof *l);
    fr_wire_limits_default(&l->cfg.lim);
    l->cfg.lim.max_line = (size_t)c->max_line_bytes;
    l->cfg.lim.max_depth = (int)c->max_depth;
    l->cfg.lim.max_fields = (size_t)c->max_fields;
    l->cfg.lim.max_string = (size_t)c->max_string_bytes;
    int rc = fr_taxonomy_load(c->taxonomy_rules[0] ? c->taxonomy_rules : NULL, &l->tax, err);
    struct fr_policy *p = NULL;
    if (rc == FR_OK)
        rc = fr_policy_load(c->redaction_policy[0] ? c->redaction_policy : NULL, &p, err);
    if (rc == FR_OK) {
        char *kp = fr_key_path(c->db_path, c->hmac_key, NULL, "hmac.key");
        unsigned char key[FR_KEY_LEN];
        bool created = false;
        if (!create_keys && access(kp, F_OK) != 0) {
            /* config check: the agent creates it at start; checking creates nothing */
            rc = RAND_bytes(key, sizeof key) == 1 ? FR_OK
                                                  : fr_err_set(err, FR_E_IO, "no random bytes");
        } else {
            rc = fr_key_load(kp, create_keys, key, &created, err);
        }
        if (created)
            fr_log(FR_LOG_WARN, "agent", "created HMAC key file %s (mode 0600); back it up", kp);
        free(kp);
        if (rc == FR_OK)
            rc = fr_redactor_new(p, key, &l->red, err);
        else
            fr_policy_free(p);
        OPENSSL_cleanse(key, sizeof key);
    }
    if (rc == FR_OK && c->raw) {
        if (c->raw_key[0] == '\0')
            rc = fr_err_set(err, FR_E_CONFIG,
                            "redaction.raw is on but redaction.raw_key names no key file");
        else
            rc = fr_key_load(c->raw_key, true, l->raw_key, NULL, err);
        l->cfg.raw_key = l->raw_key;
    }
    if (rc == FR_OK)
        rc = fr_config_token(c, &l->token, err);
    if (rc == FR_OK)
        rc = fr_config_query_token(c, &l->query_token, err);
    if (rc == FR_OK)
        rc = fr_config_admin_token(c, &l->admin_token, err);
    if (rc == FR_OK && l->admin_token[0] &&
        (strcmp(l->admin_token, l->token) == 0 || strcmp(l->admin_token, l->query_token) == 0))
        rc = fr_err_set(err, FR_E_CONFIG,
                        "http.admin_token is the same as the ingest or query token: erasure "
                        "needs a token of its own");
    if (rc != FR_OK) {
        fr_live_free(l);
        return rc;
    }
    l->cfg.tax = l->tax;
    l->cfg.red = l->red;
    l->runtime_pid = c->runtime_pid;
    l->runtime_pidfile = fr_strdup(c->runtime_pidfile);
    l->runtime_interval_ms = c->runtime_interval_ms;
    l->runtime_self = c->runtime_self;
    l->batch_events = c->batch_events;
    l->refs = 1;
    *out = l;
    return FR_OK;
}
