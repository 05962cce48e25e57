/*
 * retention/retention.c - see retention.h.
 */
#include "retention/retention.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
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
#include "retention/hot/archive.h"

/*
 * Test hook, compiled only into test builds (FR_TEST_HOOKS, make test):
 * FLIGHTREC_CRASH_AT=<point> ends the process with SIGKILL there. A release
 * build has no such switch.
 */
#ifdef FR_TEST_HOOKS
static void
crash_point(const char *name)
{
    const char *at = getenv("FLIGHTREC_CRASH_AT");
    if (at != NULL && strcmp(at, name) == 0)
        raise(SIGKILL);
}
#else
#define crash_point(name) ((void)0)
#endif

/* ---- policy ---- */

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

/* ---- building warm records ---- */

/* Cuts strings in v longer than max bytes (UTF-8 safe), in place. */
static void
truncate_text(json_t *v, size_t max)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n <= max)
            return;
        const char *s = json_string_value(v);
        size_t cut = max;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        char *t = fr_asprintf("%.*s[TRUNCATED:%zu]", (int)cut, s, n);
        json_string_set(v, t);
        free(t);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) truncate_text(c, max);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) truncate_text(c, max);
    }
}

struct minmax {
    double min, max, sum;
};

static void
mm_add(struct minmax *m, double v, uint64_t n)
{
    if (n == 0 || v < m->min)
        m->min = v;
    if (n == 0 || v > m->max)
        m->max = v;
    m->sum += v;
}

struct rt_minute {
    int64_t minute;
    int64_t pid;
    char process[16];
    uint64_t n;
    struct minmax rss, cpu, threads, fds;
};

struct conv_sum {
    char *conv;
    int64_t first, last, events, errors, in_tok, out_tok;
    json_t *codes;
};

struct batch {
    const struct fr_retention_policy *p;
    struct fr_seg_writer *w;
    int64_t *ids;
    size_t n, cap;
    int64_t last_ts, last_id;
    uint64_t row_bytes;
    struct rt_minute *rt;
    size_t nrt, caprt;
    struct conv_sum *cs;
    size_t ncs, capcs;
    char policy[17];
};

static struct conv_sum *
conv_sum_get(struct batch *b, const char *conv)
{
    for (size_t i = b->ncs; i-- > 0;)
        if (strcmp(b->cs[i].conv, conv) == 0)
            return &b->cs[i];
    if (b->ncs == b->capcs) {
        b->capcs = b->capcs ? b->capcs * 2 : 64;
        b->cs = fr_realloc(b->cs, b->capcs * sizeof *b->cs);
    }
    struct conv_sum *c = &b->cs[b->ncs++];
    *c = (struct conv_sum){.conv = fr_strdup(conv), .codes = json_object()};
    return c;
}

static double
num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void
runtime_add(struct batch *b, const struct fr_event_row *r, json_t *body)
{
    json_t *d = json_object_get(body, "data");
    int64_t minute = r->ts_ms - r->ts_ms % 60000;
    int64_t pid = json_integer_value(json_object_get(d, "pid"));
    const char *proc = json_string_value(json_object_get(d, "process"));
    struct rt_minute *m = NULL;
    for (size_t i = b->nrt; i-- > 0;)
        if (b->rt[i].minute == minute && b->rt[i].pid == pid) {
            m = &b->rt[i];
            break;
        }
    if (m == NULL) {
        if (b->nrt == b->caprt) {
            b->caprt = b->caprt ? b->caprt * 2 : 64;
            b->rt = fr_realloc(b->rt, b->caprt * sizeof *b->rt);
        }
        m = &b->rt[b->nrt++];
        memset(m, 0, sizeof *m);
        m->minute = minute;
        m->pid = pid;
        snprintf(m->process, sizeof m->process, "%s", proc ? proc : "");
    }
    mm_add(&m->rss, num(d, "rss_bytes"), m->n);
    mm_add(&m->cpu, num(d, "cpu_pct"), m->n);
    mm_add(&m->threads, num(d, "threads"), m->n);
    mm_add(&m->fds, num(d, "open_fds"), m->n);
    m->n++;
}

static json_t *
mm_json(const struct minmax *m, uint64_t n)
{
    return json_pack("{s:f,s:f,s:f}", "min", m->min, "avg", n ? m->sum / (double)n : 0.0, "max",
                     m->max);
}

static void
add_record(struct batch *b, json_t *rec, int64_t ts, const char *conv)
{
    char *s = json_dumps(rec, JSON_COMPACT);
    fr_seg_writer_add(b->w, s, strlen(s), ts, conv);
    free(s);
    json_decref(rec);
}

static int
batch_row(void *ud, const struct fr_event_row *r)
{
    struct batch *b = ud;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->ids = fr_realloc(b->ids, b->cap * sizeof *b->ids);
    }
    b->ids[b->n++] = r->id;
    b->last_ts = r->ts_ms;
    b->last_id = r->id;
    b->row_bytes += r->body_len;
    if (r->policy && !b->policy[0])
        snprintf(b->policy, sizeof b->policy, "%s", r->policy);
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    if (body == NULL)
        body = json_object();
    if (strcmp(r->kind, "runtime") == 0) {
        runtime_add(b, r, body);
        json_decref(body);
        return 0;
    }
    const char *conv = r->ids[FR_ID_CONV];
    if (conv != NULL) {
        struct conv_sum *c = conv_sum_get(b, conv);
        if (c->events == 0 || r->ts_ms < c->first)
            c->first = r->ts_ms;
        if (c->events == 0 || r->ts_ms > c->last)
            c->last = r->ts_ms;
        c->events++;
        if (r->error_code) {
            c->errors++;
            json_t *cnt = json_object_get(c->codes, r->error_code);
            json_object_set_new(c->codes, r->error_code, json_integer(json_integer_value(cnt) + 1));
        }
        json_t *usage = json_object_get(json_object_get(body, "data"), "usage");
        c->in_tok += json_integer_value(json_object_get(usage, "input_tokens"));
        c->out_tok += json_integer_value(json_object_get(usage, "output_tokens"));
    }
    truncate_text(json_object_get(body, "data"), (size_t)b->p->truncate_bytes);
    truncate_text(json_object_get(body, "error"), (size_t)b->p->truncate_bytes);
    /* kind, ts_ms, seq and the ids are in the body; the policy is the segment's unless it differs
     */
    json_t *rec = json_pack("{s:s,s:I,s:I,s:o}", "t", "event", "id", (json_int_t)r->id,
                            "ingested_ms", (json_int_t)r->ingested_ms, "body", body);
    const char *policy = r->policy && strcmp(r->policy, b->policy) != 0 ? r->policy : NULL;
    const char *cols[] = {"status",      "provider",   "model",         "tool",
                          "error_class", "error_code", "error_message", "policy"};
    const char *vals[] = {r->status,      r->provider,   r->model,         r->tool,
                          r->error_class, r->error_code, r->error_message, policy};
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        if (vals[i] != NULL)
            json_object_set_new(rec, cols[i], json_string(vals[i]));
    if (r->has_duration)
        json_object_set_new(rec, "duration_ms", json_integer(r->duration_ms));
    add_record(b, rec, r->ts_ms, conv);
    return 0;
}

static void
batch_finish_records(struct batch *b)
{
    for (size_t i = 0; i < b->ncs; i++) {
        struct conv_sum *c = &b->cs[i];
        add_record(b,
                   json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "t", "conversation",
                             "conv_id", c->conv, "first_ms", (json_int_t)c->first, "last_ms",
                             (json_int_t)c->last, "events", (json_int_t)c->events, "errors",
                             (json_int_t)c->errors, "input_tokens", (json_int_t)c->in_tok,
                             "output_tokens", (json_int_t)c->out_tok, "error_codes", c->codes),
                   c->last, c->conv);
        c->codes = NULL;
    }
    for (size_t i = 0; i < b->nrt; i++) {
        struct rt_minute *m = &b->rt[i];
        add_record(b,
                   json_pack("{s:s,s:I,s:I,s:s,s:I,s:o,s:o,s:o,s:o}", "t", "runtime_minute",
                             "ts_ms", (json_int_t)m->minute, "pid", (json_int_t)m->pid, "process",
                             m->process, "samples", (json_int_t)m->n, "rss_bytes",
                             mm_json(&m->rss, m->n), "cpu_pct", mm_json(&m->cpu, m->n), "threads",
                             mm_json(&m->threads, m->n), "open_fds", mm_json(&m->fds, m->n)),
                   m->minute, NULL);
    }
}

static void
batch_reset(struct batch *b)
{
    fr_seg_writer_free(b->w);
    b->w = NULL;
    for (size_t i = 0; i < b->ncs; i++) {
        free(b->cs[i].conv);
        json_decref(b->cs[i].codes);
    }
    b->ncs = b->nrt = b->n = 0;
    b->row_bytes = 0;
    b->policy[0] = '\0';
}

/* ---- the MANIFEST file beside the segments ---- */

/*
 * Appends one record to the MANIFEST journal and fsyncs it. A failure is
 * returned, never skipped: the database already holds the change, but
 * `archive rebuild` would not know it, so the run stops and says so.
 */
static int
manifest_file_append(const struct fr_retention_policy *p, const char *action,
                     const struct fr_manifest_row *m, const char *path, struct fr_err *err)
{
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir);
    int fd = open(mf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = fr_err_set(err, FR_E_IO,
                            "MANIFEST journal %s: cannot open: %s (the change is in the database; "
                            "archive rebuild would miss it)",
                            mf, strerror(errno));
        free(mf);
        return rc;
    }
    json_t *j = m ? json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "action", action, "path",
                              m->path, "tier", m->tier, "min_ts", (json_int_t)m->min_ts, "max_ts",
                              (json_int_t)m->max_ts, "records", (json_int_t)m->records, "raw_bytes",
                              (json_int_t)m->raw_bytes, "file_bytes", (json_int_t)m->file_bytes,
                              "sha256", m->sha256)
                  : json_pack("{s:s,s:s}", "action", action, "path", path);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(s);
    s = fr_realloc(s, n + 2);
    s[n] = '\n';
    int rc = FR_OK;
    if (write(fd, s, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0)
        rc = fr_err_set(err, FR_E_IO,
                        "MANIFEST journal %s: cannot append %s of %s: %s (the change is in the "
                        "database; archive rebuild would miss it)",
                        mf, action, m ? m->path : path, strerror(errno));
    if (close(fd) != 0 && rc == FR_OK)
        rc = fr_err_set(err, FR_E_IO, "MANIFEST journal %s: %s", mf, strerror(errno));
    free(mf);
    free(s);
    return rc;
}

static void
info_to_row(const struct fr_seg_info *info, const char *path, int64_t now,
            struct fr_manifest_row *m)
{
    *m = (struct fr_manifest_row){.path = path,
                                  .tier = fr_tier_name(info->tier),
                                  .min_ts = info->min_ts,
                                  .max_ts = info->max_ts,
                                  .records = (int64_t)info->records,
                                  .raw_bytes = (int64_t)info->raw_bytes,
                                  .file_bytes = (int64_t)info->file_bytes,
                                  .sha256 = info->sha256,
                                  .policy = info->policy,
                                  .key_id = info->key_id,
                                  .created_ms = now};
}

/* ---- reconcile ---- */

struct paths {
    char **v;
    char **tier;
    int64_t *max_ts;
    size_t n;
};

static int
collect_manifest(void *ud, const struct fr_manifest_row *r)
{
    struct paths *p = ud;
    p->v = fr_realloc(p->v, (p->n + 1) * sizeof *p->v);
    p->tier = fr_realloc(p->tier, (p->n + 1) * sizeof *p->tier);
    p->max_ts = fr_realloc(p->max_ts, (p->n + 1) * sizeof *p->max_ts);
    p->v[p->n] = fr_strdup(r->path);
    p->tier[p->n] = fr_strdup(r->tier);
    p->max_ts[p->n] = r->max_ts;
    p->n++;
    return 0;
}

static int
collect_path(void *ud, const char *path)
{
    struct paths *p = ud;
    p->v = fr_realloc(p->v, (p->n + 1) * sizeof *p->v);
    p->tier = fr_realloc(p->tier, (p->n + 1) * sizeof *p->tier);
    p->max_ts = fr_realloc(p->max_ts, (p->n + 1) * sizeof *p->max_ts);
    p->v[p->n] = fr_strdup(path);
    p->tier[p->n] = fr_strdup("");
    p->max_ts[p->n] = 0;
    p->n++;
    return 0;
}

static void
paths_free(struct paths *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i]);
        free(p->tier[i]);
    }
    free(p->v);
    free(p->tier);
    free(p->max_ts);
    memset(p, 0, sizeof *p);
}

static bool
paths_has(const struct paths *p, const char *path)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i], path) == 0)
            return true;
    return false;
}

/* A segment whose deletion was committed but whose file survived a crash. */
static bool
was_deleted(struct fr_store *st, const char *path)
{
    return fr_store_was_removed(st, path);
}

struct id_list {
    int64_t *v;
    size_t n, cap;
};

static int
collect_ids(void *ud, const char *json, size_t len)
{
    struct id_list *l = ud;
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "t"));
    if (t && strcmp(t, "event") == 0) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->v = fr_realloc(l->v, l->cap * sizeof *l->v);
        }
        l->v[l->n++] = json_integer_value(json_object_get(j, "id"));
    }
    json_decref(j);
    return 0;
}

/* The other tier's file name of a segment (x.warm.seg <-> x.cold.seg). */
static char *
twin_path(const char *path)
{
    const char *w = strstr(path, ".warm.seg"), *c = strstr(path, ".cold.seg");
    if (w)
        return fr_asprintf("%.*s.cold.seg", (int)(w - path), path);
    if (c)
        return fr_asprintf("%.*s.warm.seg", (int)(c - path), path);
    return NULL;
}

int
fr_retention_reconcile(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                       struct fr_retention_stats *stats, struct fr_err *err)
{
    struct paths man = {0};
    int rc = fr_store_manifest(st, collect_manifest, &man, err);
    if (rc != FR_OK)
        return rc;
    unsigned char cold[FR_KEY_LEN];
    bool have_cold = fr_retention_cold_key(p, false, cold, NULL) == FR_OK;
    DIR *d = opendir(p->archive_dir);
    struct dirent *e;
    while (rc == FR_OK && d != NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *path = fr_asprintf("%s/%s", p->archive_dir, e->d_name);
        if (n > 8 && strcmp(e->d_name + n - 8, ".seg.tmp") == 0) {
            unlink(path); /* a segment whose writing never finished */
            stats->orphans_removed++;
        } else if (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0 && !paths_has(&man, path)) {
            char *twin = twin_path(path);
            struct fr_seg *seg = NULL;
            struct fr_err serr = {0};
            bool cold_file = strstr(path, ".cold.seg") != NULL;
            int orc = fr_seg_open(path, cold_file && have_cold ? cold : NULL, &seg, &serr);
            if (twin && paths_has(&man, twin) && cold_file && orc == FR_OK && have_cold) {
                /* warm -> cold was cut short after the cold file was in place: finish it */
                struct fr_manifest_row m;
                info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
                rc = fr_store_manifest_replace(st, twin, &m, err);
                if (rc == FR_OK)
                    rc = manifest_file_append(p, "replace", &m, NULL, err);
                if (rc == FR_OK) {
                    unlink(twin);
                    stats->adopted++;
                }
            } else if ((twin && paths_has(&man, twin)) || orc != FR_OK || was_deleted(st, path)) {
                /* a leftover of a finished transition, or not a valid segment */
                if (orc != FR_OK)
                    fr_log(FR_LOG_WARN, "retention", "removing %s: %s", path, serr.msg);
                unlink(path);
                stats->orphans_removed++;
                rc = fr_store_retention_log(st, "remove_orphan", path, 0, 0, 0,
                                            orc != FR_OK ? serr.msg : "superseded", now_ms, err);
            } else {
                /* written and synced, but the run stopped before the manifest: adopt it,
                   and remove from hot the rows it already holds */
                struct id_list ids = {0};
                rc = fr_seg_each(seg, NULL, 0, 0, collect_ids, &ids, err);
                struct fr_manifest_row m;
                info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
                if (rc == FR_OK)
                    rc = fr_store_archive_commit(st, &m, ids.v, ids.n, err);
                if (rc == FR_OK)
                    rc = manifest_file_append(p, "adopt", &m, NULL, err);
                if (rc == FR_OK) {
                    stats->adopted++;
                    stats->duplicates_removed += ids.n;
                }
                free(ids.v);
            }
            fr_seg_close(seg);
            free(twin);
        }
        free(path);
    }
    if (d != NULL)
        closedir(d);
    /* entries whose rows were still leaving hot when a run stopped */
    struct paths pend = {0};
    if (rc == FR_OK)
        rc = fr_store_pending(st, collect_path, &pend, err);
    for (size_t i = 0; rc == FR_OK && i < pend.n; i++) {
        struct fr_seg *seg;
        bool cold_file = strstr(pend.v[i], ".cold.seg") != NULL;
        rc = fr_seg_open(pend.v[i], cold_file && have_cold ? cold : NULL, &seg, err);
        if (rc != FR_OK)
            break;
        struct id_list ids = {0};
        rc = fr_seg_each(seg, NULL, 0, 0, collect_ids, &ids, err);
        fr_seg_close(seg);
        size_t before = ids.n;
        if (rc == FR_OK)
            rc = fr_store_archive_finish(st, pend.v[i], ids.v, ids.n, err);
        if (rc == FR_OK)
            stats->duplicates_removed += before;
        free(ids.v);
    }
    paths_free(&pend);
    for (size_t i = 0; i < man.n; i++)
        if (access(man.v[i], F_OK) != 0) {
            stats->missing_files++;
            fr_log(FR_LOG_ERROR, "retention", "segment %s is in the manifest but missing",
                   man.v[i]);
        }
    OPENSSL_cleanse(cold, sizeof cold);
    paths_free(&man);
    return rc;
}

/* ---- rebuilding the manifest from the MANIFEST file ---- */

int
fr_retention_rebuild(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                     size_t *restored, struct fr_err *err)
{
    *restored = 0;
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir), *text;
    size_t len;
    int rc = fr_read_file(mf, &text, &len, err);
    free(mf);
    if (rc != FR_OK)
        return rc;
    /* the last word on each path: present (with its tier) or deleted */
    json_t *state = json_object();
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        const char *action = json_string_value(json_object_get(j, "action"));
        const char *path = json_string_value(json_object_get(j, "path"));
        if (action && path) {
            if (strcmp(action, "delete") == 0) {
                json_object_del(state, path);
            } else {
                if (strcmp(action, "replace") == 0) {
                    char *twin = twin_path(path);
                    if (twin)
                        json_object_del(state, twin);
                    free(twin);
                }
                json_object_set(state, path, j);
            }
        }
        json_decref(j);
    }
    free(text);
    struct paths man = {0};
    rc = fr_store_manifest(st, collect_manifest, &man, err);
    unsigned char cold[FR_KEY_LEN];
    bool have_cold = fr_retention_cold_key(p, false, cold, NULL) == FR_OK;
    const char *path;
    json_t *j;
    json_object_foreach(state, path, j)
    {
        if (rc != FR_OK)
            break;
        if (paths_has(&man, path))
            continue;
        struct fr_seg *seg;
        bool cold_file = strstr(path, ".cold.seg") != NULL;
        rc = fr_seg_open(path, cold_file && have_cold ? cold : NULL, &seg, err);
        if (rc != FR_OK)
            break;
        struct fr_manifest_row m;
        info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
        rc = fr_store_manifest_add(st, &m, err);
        if (rc == FR_OK)
            rc = fr_store_retention_log(st, "rebuild", path, m.records, m.min_ts, m.max_ts,
                                        "from MANIFEST", now_ms, err);
        fr_seg_close(seg);
        if (rc == FR_OK)
            (*restored)++;
    }
    OPENSSL_cleanse(cold, sizeof cold);
    paths_free(&man);
    json_decref(state);
    return rc;
}

/* ---- the run ---- */

/*
 * Moves the rows cutoff[] makes due into warm segments, oldest first, one
 * segment at a time; with max_bytes, only while hot holds more live bytes.
 */
static int
move_segments(struct fr_store *st, const struct fr_retention_policy *p, const int64_t *cutoff,
              int64_t max_bytes, int64_t now, bool dry_run, fr_retention_progress progress,
              void *ud, struct fr_retention_stats *stats, struct fr_err *err)
{
    struct batch b = {.p = p};
    int rc = FR_OK;
    int64_t after_ts = INT64_MIN, after_id = 0;
    for (;;) {
        if (max_bytes > 0 && fr_store_live_bytes(st) <= max_bytes)
            break;
        b.w = fr_seg_writer_new(FR_TIER_WARM, NULL, NULL);
        rc = fr_store_due(st, cutoff, after_ts, after_id, (int)p->segment_events, batch_row, &b,
                          err);
        if (rc != FR_OK || b.n == 0)
            break;
        after_ts = b.last_ts;
        after_id = b.last_id;
        stats->moved_events += b.n;
        stats->row_bytes += b.row_bytes;
        if (dry_run)
            stats->warm_segments++; /* the segments this run would write */
        if (!dry_run) {
            batch_finish_records(&b);
            /* named by the first row id and the last ts: unique, and sorts by time */
            char *path = fr_asprintf("%s/seg-%013lld-%lld.warm.seg", p->archive_dir,
                                     (long long)b.last_ts, (long long)b.ids[0]);
            fr_seg_writer_set_policy(b.w, b.policy); /* recorded in the header */
            struct fr_seg_info info;
            crash_point("before_segment");
            rc = fr_seg_writer_finish(b.w, path, &info, err);
            crash_point("after_segment");
            if (rc == FR_OK) {
                struct fr_manifest_row m;
                info_to_row(&info, path, now, &m);
                m.policy = b.policy;
                rc = fr_store_archive_commit(st, &m, b.ids, b.n, err);
                crash_point("after_commit");
                if (rc == FR_OK)
                    rc = manifest_file_append(p, "add", &m, NULL, err);
                stats->warm_segments++;
                stats->records_written += info.records;
                stats->raw_bytes += info.raw_bytes;
                stats->file_bytes += info.file_bytes;
            }
            free(path);
        }
        if (progress)
            progress(ud, "hot -> warm", stats->moved_events, 0);
        batch_reset(&b);
        if (rc != FR_OK)
            break;
    }
    batch_reset(&b);
    free(b.ids);
    free(b.rt);
    free(b.cs);
    return rc;
}

static int
hot_to_warm(struct fr_store *st, const struct fr_retention_policy *p, int64_t now, bool dry_run,
            fr_retention_progress progress, void *ud, struct fr_retention_stats *stats,
            struct fr_err *err)
{
    int64_t cutoff[FR_KIND_COUNT];
    bool any = false;
    for (int k = 0; k < FR_KIND_COUNT; k++) {
        int64_t age = p->hot_kind_ms[k] ? p->hot_kind_ms[k] : p->hot_ms;
        cutoff[k] = age > 0 ? now - age : 0;
        any |= cutoff[k] > 0;
    }
    int rc = FR_OK;
    if (any)
        rc = move_segments(st, p, cutoff, 0, now, dry_run, progress, ud, stats, err);
    /* the size bound: the oldest rows of any age leave while hot is over it */
    if (rc == FR_OK && p->max_hot_bytes > 0 && !dry_run &&
        fr_store_live_bytes(st) > p->max_hot_bytes) {
        for (int k = 0; k < FR_KIND_COUNT; k++)
            cutoff[k] = INT64_MAX;
        rc = move_segments(st, p, cutoff, p->max_hot_bytes, now, dry_run, progress, ud, stats, err);
    }
    return rc;
}

struct copy_ctx {
    struct fr_seg_writer *w;
};

static int
copy_record(void *ud, const char *json, size_t len)
{
    struct copy_ctx *c = ud;
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *body = json_object_get(j, "body");
    const char *conv = json_string_value(json_object_get(j, "conv_id"));
    if (conv == NULL)
        conv = json_string_value(json_object_get(body, "conv_id"));
    /* the time the warm writer gave it: an event's ts_ms, a runtime minute's
       ts_ms, a conversation summary's last_ms */
    json_t *ts = json_object_get(body ? body : j, "ts_ms");
    if (ts == NULL)
        ts = json_object_get(j, "last_ms");
    fr_seg_writer_add(c->w, json, len, json_integer_value(ts), conv);
    json_decref(j);
    return 0;
}

static int
warm_to_cold(struct fr_store *st, const struct fr_retention_policy *p, const struct paths *man,
             int64_t now, bool dry_run, struct fr_retention_stats *stats, struct fr_err *err)
{
    if (p->warm_ms <= 0)
        return FR_OK;
    unsigned char key[FR_KEY_LEN];
    bool have_key = false;
    int rc = FR_OK;
    for (size_t i = 0; rc == FR_OK && i < man->n; i++) {
        if (strcmp(man->tier[i], "warm") != 0 || man->max_ts[i] >= now - p->warm_ms)
            continue;
        stats->to_cold++;
        if (dry_run)
            continue;
        if (!have_key) {
            rc = fr_retention_cold_key(p, true, key, err);
            if (rc != FR_OK)
                break;
            have_key = true;
        }
        struct fr_seg *seg;
        rc = fr_seg_open(man->v[i], NULL, &seg, err);
        if (rc != FR_OK)
            break;
        struct copy_ctx c = {fr_seg_writer_new(FR_TIER_COLD, key, fr_seg_get_info(seg)->policy)};
        rc = fr_seg_each(seg, NULL, 0, 0, copy_record, &c, err);
        fr_seg_close(seg);
        char *cold = twin_path(man->v[i]);
        struct fr_seg_info info;
        if (rc == FR_OK)
            rc = fr_seg_writer_finish(c.w, cold, &info, err);
        fr_seg_writer_free(c.w);
        crash_point("after_cold_segment");
        if (rc == FR_OK) {
            struct fr_manifest_row m;
            info_to_row(&info, cold, now, &m);
            rc = fr_store_manifest_replace(st, man->v[i], &m, err);
            crash_point("after_cold_commit");
            if (rc == FR_OK)
                rc = manifest_file_append(p, "replace", &m, NULL, err);
            if (rc == FR_OK)
                unlink(man->v[i]);
        }
        free(cold);
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int
expire(struct fr_store *st, const struct fr_retention_policy *p, const struct paths *man,
       int64_t now, bool dry_run, struct fr_retention_stats *stats, struct fr_err *err)
{
    if (p->cold_ms <= 0)
        return FR_OK;
    int rc = FR_OK;
    for (size_t i = 0; rc == FR_OK && i < man->n; i++) {
        if (man->max_ts[i] >= now - p->cold_ms)
            continue;
        stats->deleted_segments++;
        if (dry_run)
            continue;
        rc = fr_store_manifest_remove(st, man->v[i], "past cold.max_age", now, err);
        crash_point("after_delete_commit");
        if (rc == FR_OK)
            rc = manifest_file_append(p, "delete", NULL, man->v[i], err);
        if (rc == FR_OK)
            unlink(man->v[i]);
    }
    return rc;
}

int
fr_retention_run(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                 bool dry_run, fr_retention_progress progress, void *ud,
                 struct fr_retention_stats *stats, struct fr_err *err)
{
    memset(stats, 0, sizeof *stats);
    double t0 = fr_mono_s();
    int rc = FR_OK;
    if (!dry_run) {
        rc = fr_mkdirs_for(p->archive_dir, 0700, err);
        if (rc == FR_OK && mkdir(p->archive_dir, 0700) != 0 && errno != EEXIST)
            rc = fr_err_set(err, FR_E_IO, "%s: %s", p->archive_dir, strerror(errno));
        if (rc == FR_OK)
            rc = fr_retention_reconcile(st, p, now_ms, stats, err);
    }
    if (rc == FR_OK)
        rc = hot_to_warm(st, p, now_ms, dry_run, progress, ud, stats, err);
    struct paths man = {0};
    if (rc == FR_OK)
        rc = fr_store_manifest(st, collect_manifest, &man, err);
    if (rc == FR_OK)
        rc = warm_to_cold(st, p, &man, now_ms, dry_run, stats, err);
    if (rc == FR_OK)
        rc = expire(st, p, &man, now_ms, dry_run, stats, err);
    paths_free(&man);
    if (rc == FR_OK && !dry_run) {
        /* give the pages the moved rows used back, a bounded step at a time */
        int freed = 0;
        do {
            rc = fr_store_reclaim(st, 2000, &freed, err);
            stats->reclaimed_pages += freed;
        } while (rc == FR_OK && freed > 0);
    }
    stats->seconds = fr_mono_s() - t0;
    return rc;
}
