/*
 * agent/triggers.c - automatic incident bundles: rules (a YAML file named
 * by incident.triggers) watch committed failures; when one fires, a worker
 * thread builds a signed bundle of the conversation, queues it in the
 * outbox and tries to upload it. Deduplicated (one bundle per rule and
 * conversation per cool-down) and rate-limited (max_per_hour). The outbox is
 * retried in the background every incident.outbox_retry_ms.
 */
#include "agent/triggers.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/strmap.h"
#include "core/ticker.h"
#include "core/timeutil.h"
#include "core/yamlcfg.h"
#include "exporters/bundle.h"
#include "exporters/upload.h"

#define MAX_COUNT 1000
#define MAX_KEYS 10000

struct rule {
    char *name, *error_class, *error_code;
    char *finish; /* a provider call's finish reason, or what it means (truncated, filtered) */
    int64_t count;
    int64_t window_ms, cooldown_ms; /* cooldown 0: the file's */
    int scope;                      /* SCOPE_CONVERSATION, SCOPE_GLOBAL */
};

enum { SCOPE_CONVERSATION, SCOPE_GLOBAL };

/* Sliding window of one (rule, conversation): the last `count` failure times. */
struct window {
    int64_t *ts;
    int n, head;
    int64_t cooldown_until;
};

struct job {
    char *conv;
    char *rule;
    struct job *next;
};

struct fr_triggers {
    struct fr_pipeline *pl;
    struct rule *rules;
    size_t nrules;
    int64_t max_per_hour;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fr_strmap *windows;
    struct job *jobs;
    bool stop;
    int64_t hour_start, fired_this_hour;
    pthread_t thread;
    struct fr_upload_config up;
    bool has_upload;
};

static void
rules_free(struct fr_triggers *t)
{
    for (size_t i = 0; i < t->nrules; i++) {
        free(t->rules[i].name);
        free(t->rules[i].error_class);
        free(t->rules[i].error_code);
        free(t->rules[i].finish);
    }
    free(t->rules);
}

/* The rules file's own options (configs/triggers.yaml documents them). */
struct rules_file {
    int64_t cooldown_ms, max_per_hour;
    struct fr_triggers *t;
};

static const struct fr_option file_opts[] = {
    {"", "cooldown", FR_OPT_DURATION, "30m", offsetof(struct rules_file, cooldown_ms), 1,
     INT64_MAX / 2, NULL, "one bundle per rule and conversation per this long"},
    {"", "max_per_hour", FR_OPT_INT, "10", offsetof(struct rules_file, max_per_hour), 1, 100000,
     NULL, "bundles per hour from all rules together"},
    {0},
};

static const char *const scopes[] = {"conversation", "global", NULL};

#define R(field) offsetof(struct rule, field)
static const struct fr_option rule_opts[] = {
    {"rules", "name", FR_OPT_STR, "", R(name), 0, 0, NULL, "names the rule in metrics and files"},
    {"rules", "error_class", FR_OPT_STR, "", R(error_class), 0, 0, NULL, "a taxonomy class"},
    {"rules", "error_code", FR_OPT_STR, "", R(error_code), 0, 0, NULL, "a taxonomy code"},
    {"rules", "finish", FR_OPT_STR, "", R(finish), 0, 0, NULL,
     "a provider call that succeeded but ended so: a finish reason (length) or what it means "
     "(truncated, filtered, error)"},
    {"rules", "count", FR_OPT_INT, "1", R(count), 1, MAX_COUNT, NULL,
     "matching events that fire it"},
    {"rules", "window", FR_OPT_DURATION, "1m", R(window_ms), 1, INT64_MAX / 2, NULL,
     "within this long"},
    {"rules", "cooldown", FR_OPT_DURATION, "0", R(cooldown_ms), 0, INT64_MAX / 2, NULL,
     "this rule's own cool-down (0: the file's)"},
    {"rules", "scope", FR_OPT_ENUM, "conversation", R(scope), 0, 0, scopes,
     "per conversation, or over all of them"},
    {0},
};

/* rules: the list, the one key of the file that is not an option; each item is a table. */
static int
load_rule_list(void *ud, struct fr_yaml *y, const char *section, const char *key, void *kn,
               void *vn_)
{
    struct rules_file *f = ud;
    struct fr_triggers *t = f->t;
    yaml_node_t *vn = vn_;
    (void)kn;
    if (section[0] != '\0' || strcmp(key, "rules") != 0)
        return FR_E_NOTFOUND;
    if (vn->type != YAML_SEQUENCE_NODE)
        return fr_yaml_fail(y, vn, "rules: expected a list of rules");
    int rc = FR_OK;
    for (yaml_node_item_t *it = vn->data.sequence.items.start;
         rc == FR_OK && it < vn->data.sequence.items.top; it++) {
        yaml_node_t *rn = fr_yaml_node(y, *it);
        t->rules = fr_realloc(t->rules, (t->nrules + 1) * sizeof *t->rules);
        struct rule *r = &t->rules[t->nrules++];
        memset(r, 0, sizeof *r);
        fr_options_defaults(rule_opts, r);
        rc = fr_options_load_node(rule_opts, r, y, rn, "rules", NULL, NULL);
        fr_option_unset_empty(&r->name);
        fr_option_unset_empty(&r->error_class);
        fr_option_unset_empty(&r->error_code);
        fr_option_unset_empty(&r->finish);
        if (rc == FR_OK && (r->name == NULL || (!r->error_class && !r->error_code && !r->finish)))
            rc = fr_yaml_fail(y, rn,
                              "rules: a rule needs a name and error_class, error_code or finish");
        else if (rc == FR_OK && r->finish && (r->error_class || r->error_code))
            rc = fr_yaml_fail(y, rn,
                              "rules: finish matches calls that succeeded: not with error_class "
                              "or error_code");
    }
    return rc;
}

static int
load_rules(struct fr_triggers *t, const char *path, struct fr_err *err)
{
    char *text;
    size_t len;
    int rc = fr_read_file(path, &text, &len, err);
    if (rc != FR_OK)
        return rc;
    struct rules_file f = {.t = t};
    fr_options_defaults(file_opts, &f);
    rc = fr_options_load_text(file_opts, &f, text, len, path, load_rule_list, &f, err);
    free(text);
    t->max_per_hour = f.max_per_hour;
    for (size_t i = 0; i < t->nrules; i++)
        if (t->rules[i].cooldown_ms == 0)
            t->rules[i].cooldown_ms = f.cooldown_ms;
    return rc;
}

/* ---- the worker ---- */

int
fr_incident_bundle(struct fr_pipeline *pl, const char *rule, const char *label,
                   const struct fr_bundle_select *sel, char **out_path, struct fr_bundle_info *info,
                   struct fr_err *err)
{
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    struct fr_store *st = NULL;
    EVP_PKEY *key = NULL;
    char *keypath =
        fr_key_path(pl->conf.db_path, pl->conf.incident_signing_key, NULL, "signing.pem");
    int rc = FR_OK;
    if (access(keypath, F_OK) != 0) {
        /* the first bundle makes the signing key (and its folder, owner-only) */
        char *pub = fr_key_path(pl->conf.db_path, NULL, NULL, "signing.pub.pem");
        rc = fr_mkdirs_for(keypath, 0700, err);
        if (rc == FR_OK)
            rc = fr_ed25519_generate(keypath, pub, err);
        free(pub);
    }
    char *out = fr_asprintf("%s/incident-%s-%s-%lld.tar.zst", pl->conf.incident_bundle_dir, rule,
                            label, (long long)fr_now_ms());
    /* a producer's conv_id is not trusted as a file name: no slash, newline or control byte */
    for (char *c = strrchr(out, '/') + 1; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_'))
            *c = '_';
    if (rc == FR_OK)
        rc = fr_ed25519_load(keypath, true, &key, err);
    if (rc == FR_OK)
        rc = fr_store_open(pl->conf.db_path, &so, &st, err);
    if (rc == FR_OK && mkdir(pl->conf.incident_bundle_dir, 0700) != 0 && errno != EEXIST)
        rc = fr_err_set(err, FR_E_IO, "%s: %s", pl->conf.incident_bundle_dir, strerror(errno));
    if (rc == FR_OK)
        rc = fr_bundle_create(st, sel, fr_pipeline_archive_keys(pl), NULL, key, out, info, err);
    fr_metrics_bundle(pl->metrics, rule, rc == FR_OK);
    fr_store_close(st);
    EVP_PKEY_free(key);
    free(keypath);
    if (rc != FR_OK) {
        free(out);
        out = NULL;
    }
    *out_path = out;
    return rc;
}

static void
build_one(struct fr_triggers *t, const struct job *j)
{
    struct fr_pipeline *pl = t->pl;
    struct fr_err err = {0};
    const char *convs[1] = {j->conv};
    struct fr_bundle_select sel = {.convs = convs, .nconvs = j->conv ? 1 : 0};
    if (j->conv == NULL)
        sel.since_ms = fr_now_ms() - 3600000;
    struct fr_bundle_info info;
    char *out = NULL;
    int rc = fr_incident_bundle(pl, j->rule, j->conv ? j->conv : "all", &sel, &out, &info, &err);
    if (rc == FR_OK) {
        fr_log(FR_LOG_WARN, "trigger", "rule %s fired for %s: bundle %s", j->rule,
               j->conv ? j->conv : "(global)", out);
        if (t->has_upload && pl->conf.incident_upload_to[0]) {
            if (fr_outbox_add(&t->up, out, pl->conf.incident_upload_to, &err) == FR_OK) {
                struct fr_outbox_stats os;
                fr_outbox_flush_stats(&t->up, &os, &err);
                fr_metrics_uploads(pl->metrics, &os);
            } else {
                fr_log(FR_LOG_ERROR, "trigger", "rule %s: bundle %s not queued for upload: %s",
                       j->rule, out, err.msg);
            }
        }
    } else {
        fr_log(FR_LOG_ERROR, "trigger", "rule %s: cannot build a bundle: %s", j->rule, err.msg);
    }
    free(out);
}

static void *
worker(void *arg)
{
    struct fr_triggers *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (t->jobs == NULL) {
            /* t->cv runs on CLOCK_MONOTONIC */
            struct timespec until = fr_deadline_ms(t->pl->conf.incident_outbox_retry_ms);
            int w = pthread_cond_timedwait(&t->cv, &t->mu, &until);
            if (w != 0 && !t->stop && t->jobs == NULL && t->has_upload) {
                /* background retry of whatever waits in the outbox */
                pthread_mutex_unlock(&t->mu);
                struct fr_outbox_stats os;
                struct fr_err err = {0};
                if (fr_outbox_flush_stats(&t->up, &os, &err) == FR_OK)
                    fr_metrics_uploads(t->pl->metrics, &os);
                pthread_mutex_lock(&t->mu);
            }
            continue;
        }
        struct job *j = t->jobs;
        t->jobs = j->next;
        pthread_mutex_unlock(&t->mu);
        build_one(t, j);
        free(j->conv);
        free(j->rule);
        free(j);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- watching committed failures (writer thread) ---- */

static void
window_free(void *v)
{
    struct window *w = v;
    free(w->ts);
    free(w);
}

void
fr_triggers_observe(struct fr_triggers *t, const struct fr_record *recs, size_t n)
{
    if (t == NULL || t->nrules == 0)
        return;
    pthread_mutex_lock(&t->mu);
    int64_t now = fr_now_ms();
    if (now - t->hour_start >= 3600000) {
        t->hour_start = now;
        t->fired_this_hour = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const struct fr_record *r = &recs[i];
        if (!r->has_error && r->finish_meaning == NULL)
            continue;
        for (size_t k = 0; k < t->nrules; k++) {
            const struct rule *ru = &t->rules[k];
            if (ru->finish != NULL) { /* a call that succeeded, by how it ended */
                if (r->has_error || r->finish_meaning == NULL ||
                    (strcmp(ru->finish, r->finish_meaning) != 0 &&
                     strcmp(ru->finish, r->finish) != 0))
                    continue;
            } else if (!r->has_error) {
                continue;
            }
            if (ru->error_class && strcmp(ru->error_class, fr_error_class_name(r->err.klass)) != 0)
                continue;
            if (ru->error_code && strcmp(ru->error_code, r->err.code) != 0)
                continue;
            const char *conv = ru->scope == SCOPE_GLOBAL ? NULL : r->ids[FR_ID_CONV];
            char key[400];
            snprintf(key, sizeof key, "%s|%s", ru->name, conv ? conv : "");
            if (fr_strmap_count(t->windows) >= MAX_KEYS)
                fr_strmap_clear(t->windows, window_free); /* bounded memory */
            bool created;
            void **slot = fr_strmap_slot(t->windows, key, &created);
            if (*slot == NULL) {
                struct window *w = fr_calloc(1, sizeof *w);
                w->ts = fr_calloc((size_t)ru->count, sizeof *w->ts);
                *slot = w;
            }
            struct window *w = *slot;
            w->ts[w->head] = r->ts_ms;
            w->head = (int)((w->head + 1) % ru->count);
            if (w->n < ru->count)
                w->n++;
            /* the oldest of the last `count` failures is within the window */
            int64_t oldest = w->ts[w->n < ru->count ? 0 : w->head];
            if (w->n < ru->count || r->ts_ms - oldest > ru->window_ms)
                continue;
            if (now < w->cooldown_until) {
                fr_metrics_trigger(t->pl->metrics, ru->name, "cooldown");
                continue;
            }
            if (t->fired_this_hour >= t->max_per_hour) {
                fr_metrics_trigger(t->pl->metrics, ru->name, "rate_limited");
                continue;
            }
            w->cooldown_until = now + ru->cooldown_ms;
            t->fired_this_hour++;
            fr_metrics_trigger(t->pl->metrics, ru->name, "fired");
            struct job *j = fr_calloc(1, sizeof *j);
            j->conv = conv ? fr_strdup(conv) : NULL;
            j->rule = fr_strdup(ru->name);
            struct job **pp = &t->jobs;
            while (*pp)
                pp = &(*pp)->next;
            *pp = j;
            pthread_cond_signal(&t->cv);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* The erasure log, through a read connection: a queued bundle of an erased conversation goes. */
static bool
erased_conv(void *ud, const char *conv)
{
    struct fr_pipeline *pl = ud;
    struct fr_store *rs = fr_readers_acquire(pl->readers);
    bool erased = rs != NULL && fr_store_is_erased(rs, conv);
    fr_readers_release(pl->readers, rs);
    return erased;
}

/* The rules file and the upload configuration c names, into t. */
static int
triggers_load(struct fr_triggers *t, const struct fr_config *c, struct fr_err *err)
{
    int rc = FR_OK;
    if (c->incident_triggers[0])
        rc = load_rules(t, c->incident_triggers, err);
    if (rc == FR_OK && c->incident_upload_config[0]) {
        rc = fr_upload_config_load(c->incident_upload_config, &t->up, err);
        t->has_upload = rc == FR_OK;
        if (rc == FR_OK && c->incident_upload_to[0] &&
            !fr_upload_target_find(&t->up, c->incident_upload_to))
            rc = fr_err_set(err, FR_E_CONFIG, "incident.upload_to: no target named %s in %s",
                            c->incident_upload_to, c->incident_upload_config);
    }
    return rc;
}

static void
triggers_unload(struct fr_triggers *t)
{
    rules_free(t);
    if (t->has_upload)
        fr_upload_config_clear(&t->up);
}

int
fr_triggers_check(const struct fr_config *c, struct fr_err *err)
{
    struct fr_triggers t = {0};
    int rc = triggers_load(&t, c, err);
    triggers_unload(&t);
    return rc;
}

struct fr_triggers *
fr_triggers_start(struct fr_pipeline *pl, struct fr_err *err)
{
    const struct fr_config *c = &pl->conf;
    if (!c->incident_triggers[0] && !c->incident_upload_config[0])
        return NULL;
    struct fr_triggers *t = fr_calloc(1, sizeof *t);
    t->pl = pl;
    t->windows = fr_strmap_new();
    pthread_mutex_init(&t->mu, NULL);
    fr_cond_init_monotonic(&t->cv); /* the retry wait below is on CLOCK_MONOTONIC */
    int rc = triggers_load(t, c, err);
    t->up.erased = erased_conv;
    t->up.erased_ud = pl;
    if (rc == FR_OK && pthread_create(&t->thread, NULL, worker, t) != 0)
        rc = fr_err_set(err, FR_E_INVALID, "cannot start the trigger worker");
    if (rc != FR_OK) {
        triggers_unload(t);
        fr_strmap_free(t->windows, window_free);
        free(t);
        return NULL;
    }
    return t;
}

void
fr_triggers_stop(struct fr_triggers *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    while (t->jobs) {
        struct job *j = t->jobs;
        t->jobs = j->next;
        build_one(t, j); /* a rule that fired still gets its bundle */
        free(j->conv);
        free(j->rule);
        free(j);
    }
    rules_free(t);
    fr_strmap_free(t->windows, window_free);
    if (t->has_upload)
        fr_upload_config_clear(&t->up);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
