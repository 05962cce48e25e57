/*
 * agent/config.c - see config.h. One table describes every option: its
 * section and key, type, default, whether it is a secret, and where it
 * lives in struct fr_config; loading, environment overrides and printing
 * all walk that table.
 */
#include "agent/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "core/yamlcfg.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_SYNC, OPT_LEVEL };

struct opt {
    const char *section, *key;
    enum opt_type type;
    size_t off;
    const char *def;
    int64_t min, max; /* OPT_INT */
    bool secret;
};

#define O(field) offsetof(struct fr_config, field)

static const struct opt opts[] = {
    {"storage", "path", OPT_STR, O(db_path), "./var/flightrec.db", 0, 0, false},
    {"storage", "synchronous", OPT_SYNC, O(sync_full), "normal", 0, 0, false},
    {"storage", "busy_timeout_ms", OPT_INT, O(busy_timeout_ms), "5000", 0, 600000, false},
    {"storage", "queue_events", OPT_INT, O(queue_events), "20000", 10, 10000000, false},
    {"storage", "batch_events", OPT_INT, O(batch_events), "2000", 1, 100000, false},
    {"ingest", "max_line_bytes", OPT_INT, O(max_line_bytes), "1048576", 64, 64 << 20, false},
    {"ingest", "max_depth", OPT_INT, O(max_depth), "64", 2, 1000, false},
    {"ingest", "max_fields", OPT_INT, O(max_fields), "10000", 16, 10000000, false},
    {"ingest", "max_string_bytes", OPT_INT, O(max_string_bytes), "1048576", 64, 64 << 20, false},
    {"http", "enabled", OPT_BOOL, O(http_enabled), "true", 0, 0, false},
    {"http", "listen", OPT_STR, O(http_listen), "127.0.0.1:8787", 0, 0, false},
    {"http", "max_body_bytes", OPT_INT, O(http_max_body_bytes), "16777216", 1024, 1 << 30, false},
    {"http", "max_connections", OPT_INT, O(http_max_connections), "128", 1, 10000, false},
    {"http", "auth_token", OPT_STR, O(http_token), "", 0, 0, true},
    {"http", "auth_token_file", OPT_STR, O(http_token_file), "", 0, 0, false},
    {"http", "query_token", OPT_STR, O(query_token), "", 0, 0, true},
    {"http", "query_token_file", OPT_STR, O(query_token_file), "", 0, 0, false},
    {"otlp", "enabled", OPT_BOOL, O(otlp_enabled), "true", 0, 0, false},
    {"otlp", "listen", OPT_STR, O(otlp_listen), "127.0.0.1:4318", 0, 0, false},
    {"otlp", "conversation_attributes", OPT_STR, O(otlp_conversation_attributes),
     "gen_ai.conversation.id,session.id,conversation.id", 0, 0, false},
    {"otlp", "turn_attributes", OPT_STR, O(otlp_turn_attributes), "gen_ai.turn.id,turn.id", 0, 0,
     false},
    {"socket", "enabled", OPT_BOOL, O(socket_enabled), "true", 0, 0, false},
    {"socket", "path", OPT_STR, O(socket_path), "./var/flightrec.sock", 0, 0, false},
    {"socket", "max_connections", OPT_INT, O(socket_max_connections), "64", 1, 10000, false},
    {"redaction", "policy", OPT_STR, O(redaction_policy), "", 0, 0, false},
    {"redaction", "hmac_key", OPT_STR, O(hmac_key), "", 0, 0, false},
    {"redaction", "raw", OPT_BOOL, O(raw), "false", 0, 0, false},
    {"redaction", "raw_key", OPT_STR, O(raw_key), "", 0, 0, false},
    {"taxonomy", "rules", OPT_STR, O(taxonomy_rules), "", 0, 0, false},
    {"runtime", "pid", OPT_INT, O(runtime_pid), "0", 0, 4194304, false},
    {"runtime", "pidfile", OPT_STR, O(runtime_pidfile), "", 0, 0, false},
    {"runtime", "interval_ms", OPT_INT, O(runtime_interval_ms), "5000", 100, 3600000, false},
    {"runtime", "self", OPT_BOOL, O(runtime_self), "true", 0, 0, false},
    {"retention", "enabled", OPT_BOOL, O(retention_enabled), "true", 0, 0, false},
    {"retention", "policy", OPT_STR, O(retention_policy), "", 0, 0, false},
    {"incident", "triggers", OPT_STR, O(incident_triggers), "", 0, 0, false},
    {"incident", "upload_config", OPT_STR, O(incident_upload_config), "", 0, 0, false},
    {"incident", "upload_to", OPT_STR, O(incident_upload_to), "", 0, 0, false},
    {"incident", "bundle_dir", OPT_STR, O(incident_bundle_dir), "./var/bundles", 0, 0, false},
    {"incident", "signing_key", OPT_STR, O(incident_signing_key), "", 0, 0, false},
    {"incident", "outbox_retry_ms", OPT_INT, O(incident_outbox_retry_ms), "60000", 100, 86400000,
     false},
    {"log", "level", OPT_LEVEL, O(log_level), "warn", 0, 0, false},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const char *const levels[] = {"error", "warn", "info", "debug"};

/* Sets one option from text; msg gets the reason on failure. */
static bool
opt_set(struct fr_config *c, const struct opt *o, const char *v, char *msg, size_t msglen)
{
    char *base = (char *)c + o->off;
    switch (o->type) {
    case OPT_STR:
        free(*(char **)base);
        *(char **)base = fr_strdup(v);
        return true;
    case OPT_INT: {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < o->min || n > o->max) {
            snprintf(msg, msglen, "expected a whole number from %lld to %lld, got '%s'",
                     (long long)o->min, (long long)o->max, v);
            return false;
        }
        *(int64_t *)base = n;
        return true;
    }
    case OPT_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)
            *(bool *)base = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0)
            *(bool *)base = false;
        else {
            snprintf(msg, msglen, "expected true or false, got '%s'", v);
            return false;
        }
        return true;
    case OPT_SYNC:
        if (strcmp(v, "normal") == 0 || strcmp(v, "full") == 0) {
            *(bool *)base = strcmp(v, "full") == 0;
            return true;
        }
        snprintf(msg, msglen,
                 "expected normal (survives a crash of the agent) or full (survives "
                 "power loss), got '%s'",
                 v);
        return false;
    case OPT_LEVEL:
        for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
            if (strcmp(v, levels[i]) == 0) {
                free(*(char **)base);
                *(char **)base = fr_strdup(v);
                return true;
            }
        snprintf(msg, msglen, "expected error, warn, info or debug, got '%s'", v);
        return false;
    }
    return false;
}

void
fr_config_defaults(struct fr_config *c)
{
    memset(c, 0, sizeof *c);
    char msg[256];
    for (size_t i = 0; i < NOPTS; i++)
        opt_set(c, &opts[i], opts[i].def, msg, sizeof msg);
}

void
fr_config_clear(struct fr_config *c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == OPT_STR || opts[i].type == OPT_LEVEL)
            free(*(char **)((char *)c + opts[i].off));
    memset(c, 0, sizeof *c);
}

static const struct opt *
opt_find(const char *section, const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

static bool
section_known(const char *s)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].section, s) == 0)
            return true;
    return false;
}

static int
config_file(const char *path, struct fr_config *c, struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open_file(&y, path, err);
    if (rc != FR_OK)
        return rc;
    yaml_node_t *root = fr_yaml_root(&y);
    if (root != NULL && root->type != YAML_MAPPING_NODE)
        rc = fr_yaml_fail(&y, root, "expected a mapping of sections (storage, http, ...)");
    for (yaml_node_pair_t *p = root ? root->data.mapping.pairs.start : NULL;
         rc == FR_OK && root && root->type == YAML_MAPPING_NODE && p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *sk = fr_yaml_node(&y, p->key), *sv = fr_yaml_node(&y, p->value);
        const char *section = fr_yaml_scalar(sk);
        if (section == NULL || !section_known(section)) {
            rc = fr_yaml_fail(&y, sk,
                              "unknown section '%s' (storage, ingest, http, socket, redaction, "
                              "taxonomy, runtime, retention, incident, otlp, log)",
                              section ? section : "?");
            break;
        }
        if (sv->type == YAML_SCALAR_NODE && fr_yaml_scalar(sv)[0] == '\0')
            continue; /* an empty section: all defaults */
        if (sv->type != YAML_MAPPING_NODE) {
            rc = fr_yaml_fail(&y, sv, "%s: expected a mapping of options", section);
            break;
        }
        for (yaml_node_pair_t *q = sv->data.mapping.pairs.start;
             rc == FR_OK && q < sv->data.mapping.pairs.top; q++) {
            yaml_node_t *kn = fr_yaml_node(&y, q->key), *vn = fr_yaml_node(&y, q->value);
            const char *key = fr_yaml_scalar(kn), *val = fr_yaml_scalar(vn);
            const struct opt *o = key ? opt_find(section, key) : NULL;
            char msg[256];
            if (o == NULL)
                rc = fr_yaml_fail(&y, kn, "%s.%s: unknown option", section, key ? key : "?");
            else if (val == NULL)
                rc = fr_yaml_fail(&y, vn, "%s.%s: expected a single value", section, key);
            else if (!opt_set(c, o, val, msg, sizeof msg))
                rc = fr_yaml_fail(&y, vn, "%s.%s: %s", section, key, msg);
        }
    }
    fr_yaml_close(&y);
    return rc;
}

/* Whether the host part of "host:port" is a loopback address. */
static bool
loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(n < sizeof host ? n : sizeof host - 1), listen);
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* A listener on a non-loopback address needs a token: anyone on the network could reach it. */
static int
check_exposure(const struct fr_config *c, const char *section, bool enabled, const char *listen,
               struct fr_err *err)
{
    if (!enabled || loopback(listen) || (c->http_token && *c->http_token) ||
        (c->http_token_file && *c->http_token_file))
        return FR_OK;
    return fr_err_set(err, FR_E_CONFIG,
                      "%s.listen: %s is not a loopback address; set http.auth_token_file (or "
                      "http.auth_token) so that only holders of the token can send or read data",
                      section, listen);
}

int
fr_config_load(const char *path, struct fr_config *c, struct fr_err *err)
{
    fr_config_defaults(c);
    int rc = path ? config_file(path, c, err) : FR_OK;
    /* FLIGHTREC_DB keeps working as the CLI's database variable */
    const char *db = getenv("FLIGHTREC_DB");
    if (rc == FR_OK && db && *db) {
        free(c->db_path);
        c->db_path = fr_strdup(db);
    }
    for (size_t i = 0; rc == FR_OK && i < NOPTS; i++) {
        char name[96];
        int n = snprintf(name, sizeof name, "FLIGHTREC_%s_%s", opts[i].section, opts[i].key);
        for (int k = 0; k < n; k++)
            name[k] = (char)toupper((unsigned char)name[k]);
        const char *v = getenv(name);
        char msg[256];
        if (v != NULL && !opt_set(c, &opts[i], v, msg, sizeof msg))
            rc = fr_err_set(err, FR_E_CONFIG, "environment %s: %s", name, msg);
    }
    if (rc == FR_OK)
        rc = check_exposure(c, "http", c->http_enabled, c->http_listen, err);
    if (rc == FR_OK)
        rc = check_exposure(c, "otlp", c->otlp_enabled, c->otlp_listen, err);
    if (rc != FR_OK)
        fr_config_clear(c);
    return rc;
}

void
fr_config_print(const struct fr_config *c, FILE *out)
{
    const char *section = "";
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        if (strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(out, "%s:\n", section);
        }
        const char *base = (const char *)c + o->off;
        fprintf(out, "  %s: ", o->key);
        switch (o->type) {
        case OPT_STR:
        case OPT_LEVEL: {
            const char *s = *(char *const *)base;
            if (o->secret && s && *s)
                fputs("\"***\"\n", out);
            else
                fprintf(out, "\"%s\"\n", s ? s : "");
            break;
        }
        case OPT_INT:
            fprintf(out, "%lld\n", (long long)*(const int64_t *)base);
            break;
        case OPT_BOOL:
            fprintf(out, "%s\n", *(const bool *)base ? "true" : "false");
            break;
        case OPT_SYNC:
            fprintf(out, "%s\n", *(const bool *)base ? "full" : "normal");
            break;
        }
    }
}

/* A token given inline or in a file (owner-only, like every key file). */
static int
read_token(const char *inline_value, const char *file, char **token, struct fr_err *err)
{
    *token = NULL;
    if (file && *file) {
        struct stat st;
        if (stat(file, &st) == 0 && (st.st_mode & 077))
            return fr_err_set(err, FR_E_CONFIG,
                              "token file %s: readable by group or others (mode %03o); run "
                              "chmod 600 %s",
                              file, (unsigned)(st.st_mode & 0777), file);
        size_t len;
        int rc = fr_read_file(file, token, &len, err);
        if (rc != FR_OK)
            return rc;
        while (len > 0 && isspace((unsigned char)(*token)[len - 1]))
            (*token)[--len] = '\0';
        return FR_OK;
    }
    *token = fr_strdup(inline_value ? inline_value : "");
    return FR_OK;
}

int
fr_config_token(const struct fr_config *c, char **token, struct fr_err *err)
{
    return read_token(c->http_token, c->http_token_file, token, err);
}

int
fr_config_query_token(const struct fr_config *c, char **token, struct fr_err *err)
{
    return read_token(c->query_token, c->query_token_file, token, err);
}
