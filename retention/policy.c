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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/timeutil.h"
#include "core/yamlcfg.h"
#include "retention/internal.h"

#define P(field) offsetof(struct fr_retention_policy, field)

/* Every option of a retention policy, once (configs/retention.yaml documents them). */
static const struct fr_option pol_opts[] = {
    {"", "archive_dir", FR_OPT_STR, "archive", P(archive_dir), 0, 0, NULL,
     "Where segments and the MANIFEST journal go; relative to the database's directory."},
    {"", "archive_key", FR_OPT_STR, "", P(archive_key), 0, 0, NULL,
     "Key file that authenticates segments and MANIFEST journal lines (HMAC-SHA256; \"\" = "
     "archive.key in the keys folder, created by the first retention run); a relative path is "
     "relative to the database's directory."},
    {"hot", "max_age", FR_OPT_DURATION, "3d", P(hot_ms), 0, INT64_MAX / 2, NULL,
     "Age at which events leave hot for warm (0: never by age)."},
    {"hot", "max_bytes", FR_OPT_INT, "0", P(max_hot_bytes), 0, INT64_MAX / 2, NULL,
     "Most bytes of live rows in hot; past it the oldest leave whatever their age (0: no bound)."},
    {"hot", "min_free_percent", FR_OPT_INT, "5", P(min_free_percent), 0, 90, NULL,
     "The agent's floor of free space on the disk holding the hot store, in percent of its "
     "size: under it (looked at every 250 ms) the oldest hot events move to warm at once, "
     "before their age and without waiting for the schedule, in whole segments, as many as it "
     "takes to free that share again, so that the recorder keeps recording and does not fill "
     "the disk of the service it sits beside; `flightrec retention run` does the same when the "
     "disk is under it (0: off; docs/storage.md, When the disk fills)."},
    {"hot", "min_free_keep", FR_OPT_DURATION, "1h", P(min_free_keep_ms), 0, INT64_MAX / 2, NULL,
     "Under hot.min_free_percent, events this recent stay in hot all the same: the last hour "
     "keeps its full fidelity when something else fills the disk (0: any may move)."},
    {"hot", "max_unshipped_age", FR_OPT_DURATION, "7d", P(max_unshipped_ms), 0, INT64_MAX / 2, NULL,
     "While the agent ships to a fleet store (ship.url), events not shipped yet stay in hot up "
     "to this much longer than their age (the fleet store down): past it they move all the "
     "same and never reach it (0: no hold)."},
    {"warm", "max_age", FR_OPT_DURATION, "30d", P(warm_ms), 0, INT64_MAX / 2, NULL,
     "Age at which warm segments become cold."},
    {"warm", "truncate_bytes", FR_OPT_INT, "512", P(truncate_bytes), 16, INT64_MAX / 2, NULL,
     "Free text kept per string in warm and cold records."},
    {"warm", "segment_events", FR_OPT_INT, "20000", P(segment_events), 100, 10000000, NULL,
     "Hot rows per segment (one short transaction each)."},
    {"cold", "max_age", FR_OPT_DURATION, "365d", P(cold_ms), 0, INT64_MAX / 2, NULL,
     "Age at which cold segments are deleted (0: never)."},
    {"cold", "key", FR_OPT_STR, "", P(cold_key), 0, 0, NULL,
     "Key file of the cold tier (AES-256-GCM; \"\" = cold.key in the keys folder, "
     "docs/security.md); a relative path is relative to the database's directory."},
    {"schedule", "interval", FR_OPT_DURATION, "1h", P(interval_ms), 0, INT64_MAX / 2, NULL,
     "How often the agent runs retention (0: only `flightrec retention run`)."},
    {"schedule", "verify_interval", FR_OPT_DURATION, "1m", P(verify_ms), 0, INT64_MAX / 2, NULL,
     "How often the agent verifies segments whose files changed since they were last verified "
     "(up to 256 MiB a pass), so /readyz and /metrics name a bad segment before a read meets "
     "it (0: only `flightrec archive verify`)."},
    {"bucket", "url", FR_OPT_STR, "", P(bucket_url), 0, 0, NULL,
     "An S3-compatible bucket (and prefix) that holds every segment and the MANIFEST, "
     "path-style: https://s3.eu-west-1.amazonaws.com/BUCKET/PREFIX, http://127.0.0.1:9000/BUCKET "
     "(MinIO); \"\" = none. One prefix per store."},
    {"bucket", "region", FR_OPT_STR, "us-east-1", P(bucket_region), 0, 0, NULL,
     "The bucket's region (SigV4 signing)."},
    {"bucket", "access_key_env", FR_OPT_STR, "", P(bucket_akey_env), 0, 0, NULL,
     "Environment variable holding the access key id (\"\" = unsigned requests)."},
    {"bucket", "secret_key_env", FR_OPT_STR, "", P(bucket_skey_env), 0, 0, NULL,
     "Environment variable holding the secret access key."},
    {"bucket", "ca_file", FR_OPT_STR, "", P(bucket_ca_file), 0, 0, NULL,
     "CA certificates (PEM) that verify the endpoint, e.g. a MinIO with a private CA (\"\" = "
     "the system's); a relative path is relative to the database's directory."},
    {"bucket", "keep_local", FR_OPT_DURATION, "1d", P(bucket_keep_ms), 0, INT64_MAX / 2, NULL,
     "How long a segment's local copy stays after it is in the bucket, counted from its last "
     "write or fetch (0: removed as soon as it is uploaded; a read fetches it back)."},
    {0},
};

/* hot.kinds: {kind: age}, the one part of a policy that is a map, not an option. */
static int
pol_kinds(void *ud, struct fr_yaml *y, const char *section, const char *key, void *kn_, void *vn_)
{
    struct fr_retention_policy *p = ud;
    yaml_node_t *v = vn_;
    (void)kn_;
    if (strcmp(section, "hot") != 0 || strcmp(key, "kinds") != 0)
        return FR_E_NOTFOUND;
    if (v->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, v, "hot.kinds: expected kind: age pairs");
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
        yaml_node_t *kk = fr_yaml_node(y, q->key), *kv = fr_yaml_node(y, q->value);
        const char *kind = fr_yaml_scalar(kk), *age = fr_yaml_scalar(kv);
        int kidx = kind ? fr_kind_parse(kind) : -1;
        if (kidx < 0)
            return fr_yaml_fail(y, kk, "hot.kinds: '%s' is not a wire kind", kind ? kind : "?");
        struct fr_err e = {0};
        if (age == NULL || fr_duration_parse(age, &p->hot_kind_ms[kidx], &e) != FR_OK)
            return fr_yaml_fail(y, kv, "hot.kinds.%s: %s", kind,
                                age ? e.msg : "expected a duration");
    }
    return FR_OK;
}

static int
pol_merge(struct fr_retention_policy *p, const char *text, size_t len, const char *name,
          struct fr_err *err)
{
    return fr_options_load_text(pol_opts, p, text, len, name, pol_kinds, p, err);
}

void
fr_retention_policy_man(FILE *out)
{
    fr_options_man(pol_opts, NULL, out);
    fputs(".TP\n.B hot.kinds.KIND\nduration.\n.br\nA kind's own hot age (e.g. error: 14d), over "
          "hot.max_age.\n",
          out);
}

void
fr_retention_policy_markdown(FILE *out)
{
    fr_options_markdown(pol_opts, NULL, out);
    fputs("| `hot.kinds.KIND` | duration | — | A kind's own hot age (e.g. `error: 14d`), over "
          "hot.max_age. |\n",
          out);
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

/* A key file option: "" = name in the keys folder, as every other key; relative = to base. */
static void
key_file(char **path, const char *db_path, const char *base, const char *name)
{
    if ((*path)[0] != '\0') {
        absolutize(path, base);
        return;
    }
    free(*path);
    *path = fr_key_path(db_path, NULL, NULL, name);
}

/*
 * The folder relative policy paths start from, absolute: the database's
 * (also when it does not exist yet: archive rebuild on a new machine), or
 * for a fleet store the working directory. Caller frees.
 */
static char *
fleet_or_db_folder(const char *db_path, bool fleet)
{
    char *cwd = getcwd(NULL, 0);
    const char *slash = fleet ? NULL : strrchr(db_path, '/');
    char *dir =
        slash ? fr_strndup(db_path, slash == db_path ? 1 : (size_t)(slash - db_path)) : NULL;
    char *real = dir ? realpath(dir, NULL) : NULL;
    char *base = real                   ? real
                 : dir && dir[0] == '/' ? fr_strdup(dir)
                 : dir                  ? fr_asprintf("%s/%s", cwd ? cwd : ".", dir)
                                        : fr_strdup(cwd ? cwd : ".");
    if (base != real)
        free(real);
    free(dir);
    free(cwd);
    return base;
}

int
fr_retention_policy_load(const char *path, const char *db_path, struct fr_retention_policy *p,
                         struct fr_err *err)
{
    memset(p, 0, sizeof *p);
    fr_options_defaults(pol_opts, p);
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
    if (rc == FR_OK && p->bucket_url[0] != '\0') {
        size_t n = strlen(p->bucket_url);
        while (n > 0 && p->bucket_url[n - 1] == '/')
            p->bucket_url[--n] = '\0';
        if (strncmp(p->bucket_url, "http://", 7) != 0 && strncmp(p->bucket_url, "https://", 8) != 0)
            rc = fr_err_set(err, FR_E_CONFIG,
                            "%s: bucket.url: '%s' is not an http(s):// URL (path-style: "
                            "https://ENDPOINT/BUCKET[/PREFIX])",
                            path ? path : "retention policy", p->bucket_url);
        else if ((p->bucket_akey_env[0] == '\0') != (p->bucket_skey_env[0] == '\0'))
            rc = fr_err_set(err, FR_E_CONFIG,
                            "%s: bucket: access_key_env and secret_key_env go together",
                            path ? path : "retention policy");
    }
    if (rc == FR_OK && db_path != NULL) {
        /* relative paths are relative to the database's folder; a fleet store's
           (postgres://...) to the working directory, its keys in the keys folder */
        bool fleet = strstr(db_path, "://") != NULL;
        char *base = fleet_or_db_folder(db_path, fleet);
        absolutize(&p->archive_dir, base);
        absolutize(&p->bucket_ca_file, base);
        key_file(&p->cold_key, fleet ? NULL : db_path, base, "cold.key");
        key_file(&p->archive_key, fleet ? NULL : db_path, base, "archive.key");
        free(base);
    }
    if (rc != FR_OK)
        fr_retention_policy_clear(p);
    return rc;
}

void
fr_retention_policy_clear(struct fr_retention_policy *p)
{
    fr_options_clear(pol_opts, p);
    memset(p, 0, sizeof *p);
}

int
fr_retention_keys(const struct fr_retention_policy *p, bool create_auth, bool create_cold,
                  struct fr_archive_keys *k, struct fr_err *err)
{
    memset(k, 0, sizeof *k);
    int rc = FR_OK;
    if (p->archive_key != NULL && p->archive_key[0] != '\0' &&
        (create_auth || access(p->archive_key, F_OK) == 0)) {
        bool created = false;
        rc = fr_keyring_load(p->archive_key, create_auth, &k->auth, &created, err);
        if (created)
            fr_log(FR_LOG_WARN, "retention",
                   "created archive key file %s (mode 0600); back it up with the other keys",
                   p->archive_key);
    }
    if (rc == FR_OK && p->cold_key != NULL && p->cold_key[0] != '\0' &&
        (create_cold || access(p->cold_key, F_OK) == 0))
        rc = fr_keyring_load(p->cold_key, create_cold, &k->cold, NULL, err);
    if (rc != FR_OK)
        fr_archive_keys_wipe(k);
    return rc;
}

void
fr_archive_keys_wipe(struct fr_archive_keys *k)
{
    fr_key_wipe(k, sizeof *k);
}

bool
fr_retention_disk_pressure(const struct fr_retention_policy *p, const char *db_path, int64_t *move,
                           uint64_t *avail, uint64_t *total)
{
    if (p->min_free_percent <= 0 || !fr_fs_space(db_path, avail, total) || *total == 0)
        return false;
    uint64_t floor = *total / 100 * (uint64_t)p->min_free_percent;
    if (*avail >= floor)
        return false;
    /* moved rows come back as segments (~1/8 of them), and a row's bytes are less than the
       pages its row and index entries free: a quarter more than the deficit, and 1% of the
       disk more, so that the next look does not find it just under again */
    uint64_t deficit = floor - *avail;
    *move = (int64_t)(deficit + deficit / 4 + *total / 100);
    return true;
}
