/*
 * agent/sources/runtime.c - the runtime collector's own sampler: every
 * runtime.interval_ms it reads the watched chat server process
 * (runtime.pid, or runtime.pidfile, re-read each time so a restarted
 * process is followed) and the agent itself from /proc, and stores each
 * sample as a `runtime` event (rss_bytes, cpu_pct, threads, open_fds,
 * uptime_s, state; data.process says "watched" or "agent").
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/source.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ticker.h"
#include "core/timeutil.h"
#include "redact/redact.h"

struct proc_prev {
    int pid;
    unsigned long long start, cpu_ticks;
    double at;
};

struct fr_sampler {
    struct fr_pipeline *pl;
    pthread_t thread;
    struct fr_ticker tick;
    struct proc_prev watched, self;
};

struct proc_sample {
    char state;
    long threads;
    unsigned long long rss_bytes, start_ticks, cpu_ticks;
    int open_fds;
    double uptime_s, cpu_pct;
};

/* Reads /proc/<pid>; false when the process does not exist (or cannot be read). */
static bool
proc_read(int pid, struct proc_prev *prev, struct proc_sample *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields start after the last ')' */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    unsigned long long utime, stime, start;
    long threads, rss_pages;
    char state;
    if (sscanf(p + 2,
               "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld %*d %llu "
               "%*u %ld",
               &state, &utime, &stime, &threads, &start, &rss_pages) != 6)
        return false;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    double uptime = 0;
    fp = fopen("/proc/uptime", "r");
    if (fp != NULL) {
        if (fscanf(fp, "%lf", &uptime) != 1)
            uptime = 0;
        fclose(fp);
    }
    out->state = state;
    out->threads = threads;
    out->rss_bytes = (unsigned long long)rss_pages * (unsigned long long)page;
    out->start_ticks = start;
    out->cpu_ticks = utime + stime;
    out->uptime_s = uptime - (double)start / (double)tick;
    double now = fr_mono_s();
    /* CPU % over the interval since the previous sample of the same process */
    out->cpu_pct = 0;
    if (prev->pid == pid && prev->start == start && now > prev->at)
        out->cpu_pct =
            100.0 * (double)(out->cpu_ticks - prev->cpu_ticks) / (double)tick / (now - prev->at);
    *prev = (struct proc_prev){pid, start, out->cpu_ticks, now};
    out->open_fds = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            out->open_fds += e->d_name[0] != '.';
        closedir(d);
    }
    return true;
}

static int
pid_from_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    int pid = 0;
    if (fscanf(fp, "%d", &pid) != 1)
        pid = 0;
    fclose(fp);
    return pid > 0 ? pid : 0;
}

static void
sample_one(struct fr_sampler *s, struct fr_live *l, const char *who, int pid,
           struct proc_prev *prev)
{
    struct fr_pipeline *pl = s->pl;
    struct proc_sample ps;
    if (!proc_read(pid, prev, &ps)) {
        fr_metrics_sample(pl->metrics, strcmp(who, "agent") == 0 ? "self" : "watched", pid, false);
        fr_log(FR_LOG_INFO, "runtime", "process %d (%s) not found", pid, who);
        return;
    }
    char *line = fr_asprintf(
        "{\"kind\":\"runtime\",\"ts_ms\":%lld,\"data\":{\"process\":\"%s\",\"pid\":%d,"
        "\"uptime_s\":%.0f,\"rss_bytes\":%llu,\"cpu_pct\":%.1f,\"threads\":%ld,\"open_fds\":%d,"
        "\"state\":\"%c\"}}",
        (long long)fr_now_ms(), who, pid, ps.uptime_s, ps.rss_bytes, ps.cpu_pct, ps.threads,
        ps.open_fds, ps.state);
    struct fr_record rec;
    struct fr_err err = {0};
    fr_metrics_received(pl->metrics, "runtime", 1);
    if (fr_ingest_prepare(line, strlen(line), &l->cfg, NULL, &rec, &err) == FR_OK) {
        struct fr_ack ack;
        fr_pipeline_submit(pl, &rec, 1, true, &ack);
        fr_record_clear(&rec);
        fr_metrics_sample(pl->metrics, strcmp(who, "agent") == 0 ? "self" : "watched", pid,
                          ack.rc == FR_OK);
    } else {
        fr_log(FR_LOG_ERROR, "runtime", "sample rejected: %s", err.msg);
    }
    free(line);
}

static void *
sampler_main(void *arg)
{
    struct fr_sampler *s = arg;
    int64_t interval = 0;
    while (interval == 0 || fr_ticker_wait(&s->tick, interval)) {
        struct fr_live *l = fr_pipeline_live_get(s->pl);
        int pid = (int)l->runtime_pid;
        if (l->runtime_pidfile[0])
            pid = pid_from_file(l->runtime_pidfile);
        if (pid > 0)
            sample_one(s, l, "watched", pid, &s->watched);
        else if (l->runtime_pidfile[0])
            fr_metrics_sample(s->pl->metrics, "watched", 0, false);
        if (l->runtime_self)
            sample_one(s, l, "agent", (int)getpid(), &s->self);
        interval = l->runtime_interval_ms > 0 ? l->runtime_interval_ms : 1000;
        fr_pipeline_live_put(s->pl, l);
    }
    return NULL;
}

/* ---- the source ---- */

static bool
runtime_enabled(const struct fr_config *c)
{
    (void)c;
    return true; /* it samples nothing until runtime.* names a process or runtime.self is on */
}

static int
runtime_init(struct fr_pipeline *pl, void **ctx, struct fr_err *err)
{
    struct fr_sampler *s = fr_calloc(1, sizeof *s);
    s->pl = pl;
    fr_ticker_init(&s->tick);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        fr_ticker_destroy(&s->tick);
        free(s);
        *ctx = NULL;
        return fr_err_set(err, FR_E_IO, "runtime: cannot start the sampler thread");
    }
    *ctx = s;
    return FR_OK;
}

static void
runtime_destroy(void *ctx)
{
    struct fr_sampler *s = ctx;
    if (s == NULL)
        return;
    fr_ticker_stop(&s->tick);
    pthread_join(s->thread, NULL);
    fr_ticker_destroy(&s->tick);
    free(s);
}

const struct fr_source fr_source_runtime = {
    .name = "runtime",
    .description = "samples the watched chat server and the agent from /proc as runtime events",
    .options = "runtime.*",
    .enabled = runtime_enabled,
    .init = runtime_init,
    .destroy = runtime_destroy,
    .quiesce = NULL,
    .describe = NULL,
};
