/*
 * agent/daemon.c - see daemon.h: start-up, live state and reload, the
 * durable submit used by every source, signals and the ordered shutdown.
 */
#include "agent/daemon.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "agent/otlp.h"
#include "agent/triggers.h"
#include "collectors/taxonomy.h"
#include "retention/hot/archive.h"

/* ---- live state ---- */

void
fr_agent_live_free(struct fr_live *l)
{
    if (l == NULL)
        return;
    fr_taxonomy_free(l->tax);
    fr_redactor_free(l->red);
    OPENSSL_cleanse(l->raw_key, sizeof l->raw_key);
    free(l->token);
    free(l->query_token);
    free(l->runtime_pidfile);
    free(l);
}

int
fr_agent_live_new(const struct fr_config *c, struct fr_live **out, struct fr_err *err)
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
        rc = fr_key_load(kp, true, key, &created, err);
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
    if (rc != FR_OK) {
        fr_agent_live_free(l);
        return rc;
    }
    l->cfg.tax = l->tax;
    l->cfg.red = l->red;
    l->runtime_pid = c->runtime_pid;
    l->runtime_pidfile = fr_strdup(c->runtime_pidfile);
    l->runtime_interval_ms = c->runtime_interval_ms;
    l->runtime_self = c->runtime_self;
    l->refs = 1;
    *out = l;
    return FR_OK;
}

struct fr_live *
fr_agent_live_get(struct fr_agent *a)
{
    pthread_mutex_lock(&a->live_mu);
    struct fr_live *l = a->live;
    l->refs++;
    pthread_mutex_unlock(&a->live_mu);
    return l;
}

void
fr_agent_live_put(struct fr_agent *a, struct fr_live *l)
{
    pthread_mutex_lock(&a->live_mu);
    bool last = --l->refs == 0;
    pthread_mutex_unlock(&a->live_mu);
    if (last)
        fr_agent_live_free(l);
}

/* ---- durable submit ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct fr_batch b;
};

static void
waiter_done(struct fr_batch *b, void *ud)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    (void)b;
}

void
fr_agent_submit(struct fr_agent *a, struct fr_record *recs, size_t n, bool wait, struct fr_ack *ack)
{
    memset(ack, 0, sizeof *ack);
    if (n == 0)
        return;
    struct waiter w = {.b = {.recs = recs, .n = n, .done = waiter_done}};
    w.b.ud = &w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = fr_writer_submit(a->writer, &w.b, wait);
    if (rc == FR_OK) {
        fr_metrics_queue(a->metrics, fr_writer_queued(a->writer));
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        ack->rc = w.b.rc;
        ack->duplicates = w.b.duplicates;
        ack->err = w.b.err;
    } else {
        ack->rc = rc;
        fr_err_set(&ack->err, rc, "the ingest queue is full; retry shortly");
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

void
fr_agent_reject(struct fr_agent *a, json_t *errors, uint64_t line, const struct fr_err *e)
{
    fr_metrics_rejected(a->metrics, e->code);
    if (json_array_size(errors) < 100)
        json_array_append_new(errors,
                              json_pack("{s:I,s:s}", "line", (json_int_t)line, "error", e->msg));
}

/* ---- health ---- */

int64_t
fr_agent_store_bytes(struct fr_agent *a)
{
    int64_t total = 0;
    struct stat st;
    if (stat(a->conf.db_path, &st) == 0)
        total += st.st_size;
    char *wal = fr_asprintf("%s-wal", a->conf.db_path);
    if (stat(wal, &st) == 0)
        total += st.st_size;
    free(wal);
    return total;
}

static int
ready_probe(void *ud, const struct fr_conv_row *r)
{
    (void)ud;
    (void)r;
    return 0;
}

bool
fr_agent_ready(struct fr_agent *a, char *why, size_t whylen)
{
    size_t q = fr_writer_queued(a->writer), cap = (size_t)a->conf.queue_events;
    if (q * 10 >= cap * 9) {
        snprintf(why, whylen, "ingest queue at %zu of %zu events", q, cap);
        return false;
    }
    /* a failed last commit counts for 30 s: long enough for probes to see it,
       and readiness comes back by itself when nothing was sent since */
    pthread_mutex_lock(&a->commit_mu);
    bool failing = a->commit_error[0] != '\0' && fr_now_ms() - a->commit_error_ms < 30000;
    if (failing)
        snprintf(why, whylen, "the last commit failed: %s", a->commit_error);
    pthread_mutex_unlock(&a->commit_mu);
    if (failing)
        return false;
    if (access(a->conf.db_path, W_OK) != 0) {
        snprintf(why, whylen, "database %s is not writable: %s", a->conf.db_path, strerror(errno));
        return false;
    }
    struct fr_conv_filter f = {.limit = 1};
    struct fr_err err = {0};
    pthread_mutex_lock(&a->read_mu);
    int rc = fr_store_conversations(a->rstore, &f, ready_probe, NULL, &err);
    pthread_mutex_unlock(&a->read_mu);
    if (rc != FR_OK) {
        snprintf(why, whylen, "store: %s", err.msg);
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}

/* ---- lifecycle ---- */

static void
agent_observe(void *ud, const struct fr_record *recs, size_t n, int rc, const struct fr_err *err,
              double seconds)
{
    struct fr_agent *a = ud;
    fr_metrics_committed(a->metrics, recs, n, rc, seconds);
    /* readiness follows the last commit: a full disk or a held lock shows in /readyz */
    pthread_mutex_lock(&a->commit_mu);
    snprintf(a->commit_error, sizeof a->commit_error, "%s", rc == FR_OK ? "" : err->msg);
    a->commit_error_ms = fr_now_ms();
    pthread_mutex_unlock(&a->commit_mu);
    if (rc == FR_OK)
        fr_triggers_observe(a->triggers, recs, n);
    else if (fr_store_file_gone(a->store) && !atomic_exchange(&a->store_gone, true)) {
        /* SQLite would write on into the unlinked file: nothing more can be acked */
        fr_log(FR_LOG_ERROR, "agent",
               "database file %s was removed (or its directory): stopping with exit status 3 so "
               "that a restart (systemd: Restart=on-failure) starts a new database",
               a->conf.db_path);
        /* the main thread sees the flag within a second: the batch's 503 goes out first */
    }
}

static void
set_log_level(const char *s)
{
    int level = fr_log_level_parse(s);
    if (level >= 0)
        fr_log_threshold = level;
}

static int
record_policy(struct fr_agent *a, struct fr_live *l, struct fr_err *err)
{
    const struct fr_policy *p = fr_redactor_policy(l->red);
    return fr_store_policy(a->store, fr_policy_id(p), fr_policy_json(p), fr_now_ms(), err);
}

static void
agent_reload(struct fr_agent *a)
{
    struct fr_config c;
    struct fr_err err = {0};
    struct fr_live *l = NULL;
    if (fr_config_load(a->config_path, &c, &err) != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected, keeping the running configuration: %s",
               err.msg);
        return;
    }
    if (fr_agent_live_new(&c, &l, &err) != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected, keeping the running configuration: %s",
               err.msg);
        fr_config_clear(&c);
        return;
    }
    if (strcmp(c.db_path, a->conf.db_path) != 0 ||
        strcmp(c.http_listen, a->conf.http_listen) != 0 ||
        strcmp(c.socket_path, a->conf.socket_path) != 0 || c.http_enabled != a->conf.http_enabled ||
        c.socket_enabled != a->conf.socket_enabled || c.queue_events != a->conf.queue_events)
        fr_log(FR_LOG_WARN, "agent",
               "reload: storage, listen addresses and queue size take effect at the next "
               "start; the rest is applied now");
    /* the new policy is recorded (through the read connection; SQLite locks
       between connections) before any event can name it */
    pthread_mutex_lock(&a->read_mu);
    int rc = fr_store_policy(a->rstore, fr_policy_id(fr_redactor_policy(l->red)),
                             fr_policy_json(fr_redactor_policy(l->red)), fr_now_ms(), &err);
    pthread_mutex_unlock(&a->read_mu);
    if (rc != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected: cannot record the policy: %s", err.msg);
        fr_agent_live_free(l);
        fr_config_clear(&c);
        return;
    }
    set_log_level(c.log_level);
    pthread_mutex_lock(&a->live_mu);
    struct fr_live *old = a->live;
    a->live = l;
    pthread_mutex_unlock(&a->live_mu);
    fr_agent_live_put(a, old);
    fr_config_clear(&c);
    fr_log(FR_LOG_WARN, "agent", "configuration reloaded from %s",
           a->config_path ? a->config_path : "the environment");
}

/*
 * The data directory is created 0700 and every file in it 0600 (umask);
 * one that already existed with wider permissions is reported, not changed
 * (it may be shared on purpose), since its files stay owner-only.
 */
static void
check_data_dir(const char *db_path)
{
    const char *slash = strrchr(db_path, '/');
    if (slash == NULL || slash == db_path)
        return;
    char *dir = fr_strndup(db_path, (size_t)(slash - db_path));
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 077))
        fr_log(FR_LOG_WARN, "agent",
               "data directory %s is open to group or others (mode %03o); the files in it are "
               "owner-only, but chmod 700 %s hides even their names",
               dir, (unsigned)(st.st_mode & 0777), dir);
    free(dir);
}

int
fr_agent_run(const char *config_path)
{
    struct fr_agent a = {0};
    struct fr_err err = {0};
    /*
     * Before any thread exists (the writer and the incident worker start
     * below): every thread inherits these blocked and only main takes them,
     * in sigtimedwait. A thread created earlier would leave SIGTERM unblocked
     * and receive it whenever main is between two waits; its default action
     * kills the daemon without draining. A signal that arrives during start
     * stays pending and stops the daemon as soon as it is ready.
     */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (fr_config_load(config_path, &a.conf, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: %s\n", err.msg);
        return FR_EXIT_USAGE;
    }
    a.config_path = config_path ? fr_strdup(config_path) : NULL;
    set_log_level(a.conf.log_level);
    umask(077); /* database, WAL, keys and socket: owner only */
    pthread_mutex_init(&a.live_mu, NULL);
    pthread_mutex_init(&a.read_mu, NULL);
    pthread_mutex_init(&a.commit_mu, NULL);
    int status = FR_EXIT_OK;
    if (fr_agent_live_new(&a.conf, &a.live, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: %s\n", err.msg);
        status = FR_EXIT_USAGE;
        goto out;
    }
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.synchronous = a.conf.sync_full ? 2 : 1;
    so.busy_timeout_ms = (int)a.conf.busy_timeout_ms;
    if (fr_store_open(a.conf.db_path, &so, &a.store, &err) != FR_OK ||
        fr_store_open(a.conf.db_path, &so, &a.rstore, &err) != FR_OK ||
        record_policy(&a, a.live, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: %s\n", err.msg);
        status = FR_EXIT_FAIL;
        goto out;
    }
    check_data_dir(a.conf.db_path);
    if (fr_retention_policy_load(a.conf.retention_policy[0] ? a.conf.retention_policy : NULL,
                                 a.conf.db_path, &a.retention, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: retention: %s\n", err.msg);
        status = FR_EXIT_USAGE;
        goto out;
    }
    a.has_cold_key = fr_retention_cold_key(&a.retention, false, a.cold_key, NULL) == FR_OK;
    a.metrics = fr_metrics_new();
    a.otlp_metrics = fr_otlp_metrics_state_new();
    a.writer = fr_writer_new(a.store, (size_t)a.conf.queue_events, (size_t)a.conf.batch_events);
    a.triggers = fr_triggers_start(&a, &err);
    if (a.triggers == NULL && err.code != 0) {
        fprintf(stderr, "flightrec agent: incident: %s\n", err.msg);
        status = FR_EXIT_USAGE;
        fr_writer_free(a.writer);
        goto out;
    }
    fr_writer_observe(a.writer, agent_observe, &a);

    if (a.conf.otlp_enabled && fr_http_start(&a, a.conf.otlp_listen, &a.otlp, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: otlp: %s\n", err.msg);
        status = FR_EXIT_FAIL;
        goto stop;
    }
    if (a.conf.http_enabled && fr_http_start(&a, a.conf.http_listen, &a.http, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: http: %s\n", err.msg);
        status = FR_EXIT_FAIL;
        goto stop;
    }
    if (a.conf.socket_enabled && fr_sock_start(&a, &a.sock, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: socket: %s\n", err.msg);
        status = FR_EXIT_FAIL;
        goto stop;
    }
    a.sampler = fr_sampler_start(&a);
    if (a.conf.retention_enabled && a.retention.interval_ms > 0)
        a.retention_job = fr_retention_job_start(&a);
    fprintf(stderr, "flightrec agent: ready: db %s", a.conf.db_path);
    if (a.http)
        fprintf(stderr, ", http http://%.*s:%d", (int)strcspn(a.conf.http_listen, ":"),
                a.conf.http_listen, fr_http_port(a.http));
    if (a.sock)
        fprintf(stderr, ", socket %s", a.conf.socket_path);
    if (a.otlp)
        fprintf(stderr, ", otlp http://%.*s:%d", (int)strcspn(a.conf.otlp_listen, ":"),
                a.conf.otlp_listen, fr_http_port(a.otlp));
    fprintf(stderr, ", redaction policy %s\n", fr_policy_id(fr_redactor_policy(a.live->red)));
    fflush(stderr);

    for (;;) {
        /* signals, and once a second the database file's fate (agent_observe) */
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (atomic_load(&a.store_gone)) {
            status = FR_EXIT_FAIL;
            break;
        }
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            agent_reload(&a);
            continue;
        }
        fr_log(FR_LOG_WARN, "agent", "%s: stopping: no new connections, draining the queue",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }

stop:
    atomic_store(&a.stopping, true);
    if (a.http)
        fr_http_quiesce(a.http);
    if (a.otlp)
        fr_http_quiesce(a.otlp);
    fr_sampler_stop(a.sampler);
    fr_retention_job_stop(a.retention_job); /* waits for a run in progress to finish */
    fr_sock_stop(a.sock);                   /* finishes each connection's batch in flight */
    if (a.http)
        fr_http_stop(a.http); /* in-flight requests complete: the writer still runs */
    if (a.otlp)
        fr_http_stop(a.otlp);
    fr_writer_free(a.writer);     /* commits everything queued */
    fr_triggers_stop(a.triggers); /* bundles of rules that fired are still built */
    fprintf(stderr, "flightrec agent: stopped; every acknowledged event is committed\n");
out:
    fr_store_close(a.store);
    fr_store_close(a.rstore);
    fr_metrics_free(a.metrics);
    fr_otlp_metrics_state_free(a.otlp_metrics);
    if (a.live)
        fr_agent_live_put(&a, a.live);
    fr_config_clear(&a.conf);
    fr_retention_policy_clear(&a.retention);
    OPENSSL_cleanse(a.cold_key, sizeof a.cold_key);
    free(a.config_path);
    pthread_mutex_destroy(&a.live_mu);
    pthread_mutex_destroy(&a.read_mu);
    pthread_mutex_destroy(&a.commit_mu);
    return status;
}
