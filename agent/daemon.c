/*
 * agent/daemon.c - see daemon.h: start-up, reload, signals and the ordered
 * shutdown. The daemon owns the pipeline and starts the sources that the
 * registry (agent/sources/registry.c) and the configuration name.
 */
#include "agent/daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli/cli.h"
#include "agent/jobs.h"
#include "agent/otlp/map.h"
#include "agent/ship.h"
#include "agent/source.h"
#include "agent/triggers.h"
#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"

#define FR_READERS 4 /* query connections: concurrent reads that do not wait on each other */

struct fr_agent {
    struct fr_pipeline p;   /* what the sources are handed */
    char *config_path;      /* NULL: defaults and environment only */
    struct fr_store *store; /* the writer's; NULL while ingest is paused (full disk at start),
                               then set once on the writer thread (agent_reopen) */
    bool readers_ro;        /* the read connections were opened read-only (full disk) */
    atomic_bool store_gone; /* the database file vanished: stop, exit 3 (restart starts anew) */
    struct fr_retention_policy retention;
    struct fr_retention_job *retention_job;
    struct fr_shipper *shipper;
    struct fr_triggers *triggers;
    void *source_ctx[16]; /* per fr_sources[i]; NULL when not started */
};

/* ---- lifecycle ---- */

static void
agent_observe(void *ud, const struct fr_record *recs, size_t n, int rc, const struct fr_err *err,
              double seconds)
{
    struct fr_agent *a = ud;
    fr_metrics_committed(a->p.metrics, recs, n, rc, seconds);
    /* readiness follows the last commit: a full disk or a held lock shows in /readyz */
    fr_pipeline_commit_result(&a->p, rc, err);
    if (rc == FR_OK)
        fr_triggers_observe(a->triggers, recs, n);
    else if (a->store != NULL && fr_store_file_gone(a->store) &&
             !atomic_exchange(&a->store_gone, true)) {
        /* SQLite would write on into the unlinked file: nothing more can be acked */
        fr_log(FR_LOG_ERROR, "agent",
               "database file %s was removed (or its directory): stopping with exit status 3 so "
               "that a restart (systemd: Restart=on-failure) starts a new database",
               a->p.conf.db_path);
        /* the main thread sees the flag within a second: the batch's 503 goes out first */
    }
}

static void
set_log_level(int level)
{
    fr_log_set_level(level);
}

static int
record_policy(struct fr_store *st, struct fr_live *l, struct fr_err *err)
{
    const struct fr_policy *p = fr_redactor_policy(l->red);
    return fr_store_policy(st, fr_policy_id(p), fr_policy_json(p), fr_now_ms(), err);
}

static void
agent_reload(struct fr_agent *a)
{
    struct fr_config c;
    struct fr_err err = {0};
    struct fr_live *l = NULL;
    const struct fr_config *run = &a->p.conf;
    if (fr_config_load(a->config_path, &c, &err) != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected, keeping the running configuration: %s",
               err.msg);
        return;
    }
    if (fr_live_new(&c, true, &l, &err) != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected, keeping the running configuration: %s",
               err.msg);
        fr_config_clear(&c);
        return;
    }
    /* listeners are not re-bound: their exposure is the running configuration's */
    const char *bound;
    if (fr_config_exposed(run, &bound) && l->token[0] == '\0') {
        fr_log(FR_LOG_ERROR, "agent",
               "reload rejected, keeping the running configuration: the agent listens on %s, "
               "not loopback, and the new configuration has no http.auth_token(_file)",
               bound);
        fr_live_free(l);
        fr_config_clear(&c);
        return;
    }
    if (strcmp(c.db_path, run->db_path) != 0 || strcmp(c.http_listen, run->http_listen) != 0 ||
        strcmp(c.socket_path, run->socket_path) != 0 || strcmp(c.keys_dir, run->keys_dir) != 0 ||
        c.http_enabled != run->http_enabled || c.socket_enabled != run->socket_enabled ||
        c.queue_events != run->queue_events || c.batch_events != run->batch_events ||
        c.commit_delay_ms != run->commit_delay_ms)
        fr_log(FR_LOG_WARN, "agent",
               "reload: storage, keys.dir, listen addresses and queue size take effect at the next "
               "start; the rest is applied now");
    /* the new policy is recorded (through a read connection; SQLite locks
       between connections) before any event can name it */
    int rc;
    if (a->readers_ro) { /* started on a full disk: a connection of its own, if it can write */
        struct fr_store *ws = NULL;
        struct fr_store_opts so;
        fr_store_opts_default(&so);
        so.create = false;
        rc = fr_store_open(run->db_path, &so, &ws, &err);
        if (rc == FR_OK)
            rc = record_policy(ws, l, &err);
        fr_store_close(ws);
    } else {
        struct fr_store *rs = fr_readers_acquire(a->p.readers);
        rc = record_policy(rs, l, &err);
        fr_readers_release(a->p.readers, rs);
    }
    if (rc != FR_OK) {
        fr_log(FR_LOG_ERROR, "agent", "reload rejected: cannot record the policy: %s", err.msg);
        fr_live_free(l);
        fr_config_clear(&c);
        return;
    }
    set_log_level(c.log_level);
    fr_pipeline_live_swap(&a->p, l);
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

static void
agent_store_opts(const struct fr_config *c, struct fr_store_opts *so)
{
    fr_store_opts_default(so);
    so->synchronous = c->sync_mode == 1 ? 2 : 1;
    so->busy_timeout_ms = (int)c->busy_timeout_ms;
    so->compress_bodies = c->compress_bodies;
    so->cache_kib = c->cache_mib * 1024;
}

/* Whether the filesystem holding path has (almost) no space left. */
static bool
disk_full(const char *path)
{
    uint64_t avail, total;
    return fr_fs_space(path, &avail, &total) && avail < (uint64_t)1 << 20;
}

/*
 * The writer's store once space came back (on the writer thread): the
 * current policy is recorded before any event names it.
 */
static int
agent_reopen(void *ud, struct fr_store **st, struct fr_err *err)
{
    struct fr_agent *a = ud;
    struct fr_store_opts so;
    agent_store_opts(&a->p.conf, &so);
    so.background_checkpoint = true;
    so.background_training = true;
    int rc = fr_store_open(a->p.conf.db_path, &so, st, err);
    if (rc != FR_OK) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        fr_err_set(err, rc, "ingest paused: %s (%.400s)",
                   disk_full(a->p.conf.db_path) ? "no space left for the database"
                                                : "the database cannot be opened for writing",
                   msg);
    }
    if (rc == FR_OK) {
        struct fr_live *l = fr_pipeline_live_get(&a->p);
        rc = record_policy(*st, l, err);
        fr_pipeline_live_put(&a->p, l);
        if (rc != FR_OK) {
            fr_store_close(*st);
            *st = NULL;
        }
    }
    if (rc != FR_OK)
        return rc;
    a->store = *st;
    /* the read-only connections may read a snapshot (see sq_open): open them anew */
    fr_readers_refresh(a->p.readers, a->p.conf.db_path, &so);
    struct fr_store *health = NULL;
    struct fr_err herr = {0};
    if (fr_store_open(a->p.conf.db_path, &so, &health, &herr) == FR_OK) {
        pthread_mutex_lock(&a->p.health_mu);
        struct fr_store *old = a->p.health;
        a->p.health = health;
        pthread_mutex_unlock(&a->p.health_mu);
        fr_store_close(old);
    }
    fr_pipeline_set_paused(&a->p, NULL);
    fr_log(FR_LOG_WARN, "agent", "ingest resumed: %s can be written again", a->p.conf.db_path);
    return FR_OK;
}

/*
 * Opens the writer's store, the read pool and the health connection;
 * records the policy. On a full disk the database may not open for
 * writing (SQLite needs its -wal and -shm files): the agent then starts
 * with ingest paused, reads and health served from read-only connections,
 * and the writer opens the store again once space returns.
 */
static int
agent_open_stores(struct fr_agent *a, struct fr_err *err)
{
    const struct fr_config *c = &a->p.conf;
    struct fr_store_opts so;
    agent_store_opts(c, &so);
    so.background_checkpoint = true; /* the writer's: its commits never wait for a checkpoint */
    so.background_training = true;   /* nor for a body dictionary */
    int rc = fr_store_open(c->db_path, &so, &a->store, err);
    if (rc != FR_OK && access(c->db_path, F_OK) == 0 && disk_full(c->db_path)) {
        fr_log(FR_LOG_ERROR, "agent",
               "no space left beside %s (%s): starting with ingest paused; reads and health are "
               "served, and ingest resumes by itself once space is freed",
               c->db_path, err->msg);
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "no space left for the database (%.400s)", err->msg);
        fr_pipeline_set_paused(&a->p, why);
        fr_err_clear(err);
        so.read_only = true;
        a->readers_ro = true;
        rc = FR_OK;
    }
    so.background_checkpoint = false; /* one checkpoint thread: the writer's store has it */
    if (rc == FR_OK)
        rc = fr_readers_open(c->db_path, &so, FR_READERS, &a->p.readers, err);
    if (rc == FR_OK)
        rc = fr_store_open(c->db_path, &so, &a->p.health, err);
    if (rc == FR_OK && c->query_store[0]) {
        if (fr_store_backend_for(c->query_store) == NULL)
            return fr_err_set(err, FR_E_CONFIG,
                              "ship.query: not a store location (postgres://...)");
        struct fr_store_opts qo;
        fr_store_opts_default(&qo);
        qo.read_only = true;
        qo.create = false;
        a->p.query_readers = fr_readers_open_lazy(c->query_store, &qo, FR_READERS);
    }
    if (rc == FR_OK && a->store != NULL)
        rc = record_policy(a->store, a->p.live, err);
    return rc;
}

/* Starts every source the configuration turns on, in registry order. */
static int
agent_start_sources(struct fr_agent *a)
{
    for (size_t i = 0; i < fr_sources_count && i < sizeof a->source_ctx / sizeof(void *); i++) {
        const struct fr_source *src = fr_sources[i];
        if (!src->enabled(&a->p.conf))
            continue;
        struct fr_err err = {0};
        if (src->init(&a->p, &a->source_ctx[i], &err) != FR_OK) {
            fprintf(stderr, "flightrec agent: %s: %s\n", src->name, err.msg);
            a->source_ctx[i] = NULL;
            return FR_EXIT_FAIL;
        }
    }
    return FR_EXIT_OK;
}

static void
agent_print_ready(struct fr_agent *a)
{
    /* one write: stderr is unbuffered, and a reader of the log (a supervisor,
     * the integration tests) must never see half the line */
    char *line = fr_asprintf("flightrec agent: ready: db %s", a->p.conf.db_path);
    for (size_t i = 0; i < fr_sources_count; i++) {
        char where[600];
        if (a->source_ctx[i] == NULL || fr_sources[i]->describe == NULL)
            continue;
        fr_sources[i]->describe(a->source_ctx[i], where, sizeof where);
        char *longer = fr_asprintf("%s, %s", line, where);
        free(line);
        line = longer;
    }
    fprintf(stderr, "%s, redaction policy %s\n", line,
            fr_policy_id(fr_redactor_policy(a->p.live->red)));
    free(line);
    /* what start-up built and dropped (the detectors' compilation above all) stays resident
       in the heap otherwise: several MiB of a sidecar's footprint for nothing */
    malloc_trim(0);
}

/*
 * The ordered stop: no new connections anywhere, the retention job's run
 * finished, each source's in-flight work completed (the writer still
 * commits it), then the writer drains the queue.
 */
static void
agent_stop_sources(struct fr_agent *a)
{
    atomic_store(&a->p.stopping, true);
    for (size_t i = 0; i < fr_sources_count; i++)
        if (a->source_ctx[i] != NULL && fr_sources[i]->quiesce != NULL)
            fr_sources[i]->quiesce(a->source_ctx[i]);
    fr_retention_job_stop(a->retention_job);
    a->retention_job = NULL;
    fr_shipper_stop(a->shipper); /* the rest is shipped by the next start, from the cursor */
    a->shipper = NULL;
    for (size_t i = fr_sources_count; i-- > 0;) {
        if (a->source_ctx[i] != NULL)
            fr_sources[i]->destroy(a->source_ctx[i]);
        a->source_ctx[i] = NULL;
    }
}

/* Waits for signals (and once a second checks the database file); returns the exit status. */
static int
agent_wait(struct fr_agent *a, const sigset_t *sigs)
{
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (atomic_load(&a->store_gone))
            return FR_EXIT_FAIL;
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            agent_reload(a);
            continue;
        }
        fr_log(FR_LOG_WARN, "agent", "%s: stopping: no new connections, draining the queue",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return FR_EXIT_OK;
    }
}

/* Puts "what: " before err's message. */
static void
err_prefix(struct fr_err *err, const char *what)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    fr_err_set(err, err->code, "%s: %s", what, msg);
}

/* Everything after the configuration: stores, writer, jobs, sources. */
static int
agent_start(struct fr_agent *a, struct fr_err *err)
{
    if (fr_live_new(&a->p.conf, true, &a->p.live, err) != FR_OK)
        return FR_EXIT_USAGE;
    /* a fleet store, not a file: said at start, not once a minute in the log */
    const char *ship = a->p.conf.ship_url;
    if (ship[0] && !fr_store_location_is_fleet(ship)) {
        fr_err_set(err, FR_E_CONFIG,
                   "ship.url: expected a fleet store location (postgres://USER@HOST/DB), not "
                   "\"%.*s...\"",
                   (int)strcspn(ship, ":@/"), ship);
        return FR_EXIT_USAGE;
    }
    if (agent_open_stores(a, err) != FR_OK)
        return FR_EXIT_FAIL;
    check_data_dir(a->p.conf.db_path);
    const char *rp = a->p.conf.retention_policy;
    if (fr_retention_policy_load(rp[0] ? rp : NULL, a->p.conf.db_path, &a->retention, err) !=
        FR_OK) {
        err_prefix(err, "retention");
        return FR_EXIT_USAGE;
    }
    /* the archive key is made now when absent, so the reads of this run can check the
       segments that its retention job, or `flightrec retention run` from a timer, writes;
       the cold key is made by the first move to cold */
    if (fr_retention_keys(&a->retention, true, false, &a->p.archive_keys, err) != FR_OK) {
        err_prefix(err, "retention");
        return FR_EXIT_USAGE;
    }
    /* the shipper's hold on hot (retention keeps what it has not shipped): none without
       shipping; from the first row when shipping starts with nothing shipped yet */
    int64_t hold;
    struct fr_err herr = {0};
    if (a->store != NULL && !ship[0])
        fr_store_ship_hold_set(a->store, -1, &herr);
    else if (a->store != NULL && fr_store_ship_hold_get(a->store, &hold, NULL) != FR_OK)
        fr_store_ship_hold_set(a->store, 0, &herr);
    if (herr.code != 0)
        fr_log(FR_LOG_WARN, "ship", "%s", herr.msg);
    a->p.metrics = fr_metrics_new();
    a->p.otlp_metrics = fr_otlp_metrics_state_new();
    a->p.writer =
        fr_writer_new(a->store, (size_t)a->p.conf.queue_events, (size_t)a->p.conf.batch_events);
    a->triggers = fr_triggers_start(&a->p, err);
    if (a->triggers == NULL && err->code != 0) {
        err_prefix(err, "incident");
        return FR_EXIT_USAGE;
    }
    fr_writer_observe(a->p.writer, agent_observe, a);
    fr_writer_set_preparing(a->p.writer, fr_pipeline_preparing, &a->p, FR_WRITER_GATHER_MS);
    fr_writer_set_commit_delay(a->p.writer, (int)a->p.conf.commit_delay_ms);
    if (a->store == NULL)
        fr_writer_set_reopen(a->p.writer, agent_reopen, a);
    return FR_EXIT_OK;
}

int
fr_agent_run(const char *config_path)
{
    struct fr_agent a = {0};
    struct fr_err err = {0};
    fr_redact_isolate_compile(true); /* the detectors' compiler never mapped in (redact.h) */
    /* glibc gives each of up to 8 x cores threads its own heap arena; with one thread per
       connection each arena keeps its share of the queue's records and its free chunks (64
       connections: ~5 MiB more peak RSS than 2 x cores arenas, at the same events/s) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, (int)(cores > 1 ? 2 * cores : 2));
    /* glibc maps allocations past 128 KiB on their own, but raises that threshold to the size
       of every such block freed (up to 32 MiB): after the first large request buffers, those
       came from the arenas and stayed there, split and half used. A fixed threshold turns the
       raising off: blocks past 512 KiB (a request body over ~900 events, a large batch's
       arrays) go back to the system when freed, smaller ones (a 500-event body) are reused
       from the arenas. bench/run.sh's 4-client HTTP load, the binaries alternated: peak RSS
       31.3-31.4 -> 29.7-30.1 MiB */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);
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
    fr_pipeline_init(&a.p);
    atomic_init(&a.store_gone, false);
    if (fr_config_load(config_path, &a.p.conf, &err) != FR_OK) {
        fprintf(stderr, "flightrec agent: %s\n", err.msg);
        fr_pipeline_destroy(&a.p);
        return FR_EXIT_USAGE;
    }
    a.config_path = config_path ? fr_strdup(config_path) : NULL;
    set_log_level(a.p.conf.log_level);
    fr_keys_dir_configure(a.p.conf.keys_dir);
    umask(077); /* database, WAL, keys and socket: owner only */
    int status = agent_start(&a, &err);
    if (status != FR_EXIT_OK)
        fprintf(stderr, "flightrec agent: %s\n", err.msg);
    if (status == FR_EXIT_OK)
        status = agent_start_sources(&a);
    if (status == FR_EXIT_OK) {
        if (a.p.conf.retention_enabled &&
            (a.retention.interval_ms > 0 || a.retention.verify_ms > 0 ||
             a.retention.min_free_percent > 0))
            a.retention_job = fr_retention_job_start(&a.p, &a.retention);
        a.shipper = fr_shipper_start(&a.p);
        agent_print_ready(&a);
        status = agent_wait(&a, &sigs);
    }
    agent_stop_sources(&a);
    if (a.p.writer != NULL) {
        fr_writer_free(a.p.writer);   /* commits everything queued */
        fr_triggers_stop(a.triggers); /* bundles of rules that fired are still built */
        if (status != FR_EXIT_USAGE)
            fprintf(stderr, "flightrec agent: stopped; every acknowledged event is committed\n");
    }
    fr_store_close(a.store);
    fr_retention_policy_clear(&a.retention);
    fr_pipeline_destroy(&a.p);
    free(a.config_path);
    return status;
}
