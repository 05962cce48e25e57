/*
 * retention/policy.c - the retention policy: the built-in
 * configs/retention.yaml merged with the user's file (errors name file,
 * line and key), paths made absolute against the database's directory, and
 * the cold key it names.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/timeutil.h"
#include "core/yamlcfg.h"
#include "retention/internal.h"

static int
pol_scalar(struct fr_yaml *y, yaml_node_t *v, const char *key, const char **out)
{
    *out = fr_yaml_scalar(v);
    if (*out == NULL)
        return fr_yaml_fail(y, v, "%s: expected a single value", key);
    return FR_OK;
}

static int
pol_duration(struct fr_yaml *y, yaml_node_t *v, const char *key, int64_t *ms)
{
    const char *s;
    int rc = pol_scalar(y, v, key, &s);
    struct fr_err e = {0};
    if (rc == FR_OK && fr_duration_parse(s, ms, &e) != FR_OK)
        rc = fr_yaml_fail(y, v, "%s: %s", key, e.msg);
    return rc;
}

static int
pol_int(struct fr_yaml *y, yaml_node_t *v, const char *key, int64_t min, int64_t *out)
{
    const char *s;
    int rc = pol_scalar(y, v, key, &s);
    char *end = NULL;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (rc == FR_OK && (*s == '\0' || *end != '\0' || n < min))
        rc =
            fr_yaml_fail(y, v, "%s: expected a whole number of at least %lld", key, (long long)min);
    if (rc == FR_OK)
        *out = n;
    return rc;
}

static int
pol_str(struct fr_yaml *y, yaml_node_t *v, const char *key, char **out)
{
    const char *s;
    int rc = pol_scalar(y, v, key, &s);
    if (rc == FR_OK) {
        free(*out);
        *out = fr_strdup(s);
    }
    return rc;
}

/* Calls fn(key, value) for each pair of a mapping node. */
#define EACH_PAIR(y, node, k, v)                                                                   \
    for (yaml_node_pair_t *pp_ = (node)->data.mapping.pairs.start;                                 \
         pp_ < (node)->data.mapping.pairs.top &&                                                   \
         ((k) = fr_yaml_node((y), pp_->key), (v) = fr_yaml_node((y), pp_->value), 1);              \
         pp_++)

static int
pol_section(struct fr_yaml *y, const char *section, yaml_node_t *m, struct fr_retention_policy *p)
{
    if (m->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, m, "%s: expected a mapping", section);
    yaml_node_t *kn, *v;
    int rc = FR_OK;
    EACH_PAIR(y, m, kn, v)
    {
        const char *k = fr_yaml_scalar(kn);
        char full[96];
        snprintf(full, sizeof full, "%s.%s", section, k ? k : "?");
        if (k == NULL)
            rc = fr_yaml_fail(y, kn, "%s: keys must be plain text", section);
        else if (strcmp(section, "hot") == 0 && strcmp(k, "max_age") == 0)
            rc = pol_duration(y, v, full, &p->hot_ms);
        else if (strcmp(section, "hot") == 0 && strcmp(k, "max_bytes") == 0)
            rc = pol_int(y, v, full, 0, &p->max_hot_bytes);
        else if (strcmp(section, "hot") == 0 && strcmp(k, "kinds") == 0) {
            if (v->type != YAML_MAPPING_NODE) {
                rc = fr_yaml_fail(y, v, "hot.kinds: expected kind: age pairs");
            } else {
                yaml_node_t *kk, *kv;
                EACH_PAIR(y, v, kk, kv)
                {
                    const char *kind = fr_yaml_scalar(kk);
                    int kidx = kind ? fr_kind_parse(kind) : -1;
                    if (kidx < 0) {
                        rc = fr_yaml_fail(y, kk, "hot.kinds: '%s' is not a wire kind",
                                          kind ? kind : "?");
                        break;
                    }
                    rc = pol_duration(y, kv, "hot.kinds", &p->hot_kind_ms[kidx]);
                    if (rc != FR_OK)
                        break;
                }
            }
        } else if (strcmp(section, "warm") == 0 && strcmp(k, "max_age") == 0)
            rc = pol_duration(y, v, full, &p->warm_ms);
        else if (strcmp(section, "warm") == 0 && strcmp(k, "truncate_bytes") == 0)
            rc = pol_int(y, v, full, 16, &p->truncate_bytes);
        else if (strcmp(section, "warm") == 0 && strcmp(k, "segment_events") == 0)
            rc = pol_int(y, v, full, 100, &p->segment_events);
        else if (strcmp(section, "cold") == 0 && strcmp(k, "max_age") == 0)
            rc = pol_duration(y, v, full, &p->cold_ms);
        else if (strcmp(section, "cold") == 0 && strcmp(k, "key") == 0)
            rc = pol_str(y, v, full, &p->cold_key);
        else if (strcmp(section, "schedule") == 0 && strcmp(k, "interval") == 0)
            rc = pol_duration(y, v, full, &p->interval_ms);
        else
            rc = fr_yaml_fail(y, kn, "%s: unknown option", full);
        if (rc != FR_OK)
            return rc;
    }
    return rc;
}

static int
pol_merge(struct fr_retention_policy *p, const char *text, size_t len, const char *name,
          struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open(&y, text, len, name, err);
    if (rc != FR_OK)
        return rc;
    yaml_node_t *root = fr_yaml_root(&y);
    if (root != NULL && root->type != YAML_MAPPING_NODE)
        rc = fr_yaml_fail(&y, root, "expected a mapping (archive_dir, hot, warm, cold, schedule)");
    if (rc == FR_OK && root != NULL) {
        yaml_node_t *kn, *v;
        EACH_PAIR(&y, root, kn, v)
        {
            const char *k = fr_yaml_scalar(kn);
            if (k && strcmp(k, "archive_dir") == 0)
                rc = pol_str(&y, v, k, &p->archive_dir);
            else if (k && (strcmp(k, "hot") == 0 || strcmp(k, "warm") == 0 ||
                           strcmp(k, "cold") == 0 || strcmp(k, "schedule") == 0))
                rc = pol_section(&y, k, v, p);
            else
                rc = fr_yaml_fail(&y, kn,
                                  "unknown key '%s' (archive_dir, hot, warm, cold, schedule)",
                                  k ? k : "?");
            if (rc != FR_OK)
                break;
        }
    }
    fr_yaml_close(&y);
    return rc;
}

/* Makes *path absolute against base when it is relative. */
static void
absolutize(char **path, const char *base)
{
    if (*path == NULL || (*path)[0] == '/' || (*path)[0] == '\0')
        return;
    char *abs = fr_asprintf("%s/%s", base, *path);
    free(*path);
    *path = abs;
}

int
fr_retention_policy_load(const char *path, const char *db_path, struct fr_retention_policy *p,
                         struct fr_err *err)
{
    memset(p, 0, sizeof *p);
    int rc = pol_merge(p, fr_retention_builtin_yaml, strlen(fr_retention_builtin_yaml),
                       "built-in retention.yaml", err);
    if (rc == FR_OK && path != NULL) {
        char *text;
        size_t len;
        rc = fr_read_file(path, &text, &len, err);
        if (rc == FR_OK) {
            rc = pol_merge(p, text, len, path, err);
            free(text);
        }
    }
    if (rc == FR_OK && p->cold_ms > 0 && p->warm_ms > p->cold_ms)
        rc = fr_err_set(err, FR_E_CONFIG, "%s: warm.max_age is longer than cold.max_age",
                        path ? path : "retention policy");
    if (rc == FR_OK && db_path != NULL) {
        char *copy = fr_strdup(db_path);
        char *slash = strrchr(copy, '/');
        if (slash)
            *slash = '\0';
        char *real = realpath(slash ? copy : ".", NULL);
        absolutize(&p->archive_dir, real ? real : (slash ? copy : "."));
        absolutize(&p->cold_key, real ? real : (slash ? copy : "."));
        free(real);
        free(copy);
    }
    if (rc != FR_OK)
        fr_retention_policy_clear(p);
    return rc;
}

void
fr_retention_policy_clear(struct fr_retention_policy *p)
{
    free(p->archive_dir);
    free(p->cold_key);
    memset(p, 0, sizeof *p);
}

int
fr_retention_cold_key(const struct fr_retention_policy *p, bool create,
                      unsigned char key[FR_KEY_LEN], struct fr_err *err)
{
    if (p->cold_key == NULL || p->cold_key[0] == '\0')
        return fr_err_set(err, FR_E_NOTFOUND, "the retention policy names no cold key");
    if (!create && access(p->cold_key, F_OK) != 0)
        return fr_err_set(err, FR_E_NOTFOUND, "cold key %s does not exist", p->cold_key);
    return fr_key_load(p->cold_key, create, key, NULL, err);
}
