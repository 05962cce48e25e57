/*
 * agent/sources/uds.c - the Unix domain socket ingest server: NDJSON in, one ack
 * line per batch out ({"ack_seq":K,"accepted":N,"rejected":M}, plus
 * "errors":[{"line":L,"error":"..."}] when lines were rejected, and
 * "warnings":[{"line":L,"warning":"..."}] when stored events lack an envelope
 * field they most likely meant by another key, as conversation_id). A batch
 * ends when the client pauses (nothing more to read right now) or at
 * storage.batch_events lines; its ack is written after its transaction
 * committed. While the writer's queue is full the connection's thread
 * waits, so the socket is not read: backpressure reaches the producer
 * through the kernel's socket buffer, and nothing is dropped.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/acceptor.h"
#include "agent/source.h"
#include "core/fsutil.h"
#include "core/linereader.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/wire.h"
#include "redact/redact.h"

struct fr_sock {
    struct fr_pipeline *pl;
    struct fr_acceptor *acc;
    char *path;
};

/* An ack or an error line; a client that went away loses only the line: its events are
   stored all the same. */
static void
write_all(int fd, const char *s, size_t n)
{
    (void)fr_send_all(fd, s, n);
}

struct pending {
    struct fr_record *recs;
    size_t n, cap, rejected;
    json_t *errors;
    uint64_t ack_seq;
};

static void
flush(struct fr_pipeline *pl, int fd, struct pending *p)
{
    if (p->n == 0 && p->rejected == 0)
        return;
    struct fr_ack ack;
    size_t n = p->n;
    fr_pipeline_submit(pl, p->recs, p->n, true, &ack);
    json_t *warnings = NULL;
    if (ack.rc == FR_OK)
        fr_pipeline_misnamed(pl, "socket", p->recs, p->n, &warnings);
    for (size_t i = 0; i < p->n; i++)
        fr_record_clear(&p->recs[i]);
    p->n = 0;
    json_t *out =
        json_pack("{s:I,s:I,s:I,s:I}", "ack_seq", (json_int_t)++p->ack_seq, "accepted",
                  (json_int_t)(ack.rc == FR_OK ? n : 0), "rejected", (json_int_t)p->rejected,
                  "duplicates", (json_int_t)(ack.rc == FR_OK ? ack.duplicates : 0));
    if (ack.rc != FR_OK)
        json_object_set_new(out, "error", json_string(ack.err.msg));
    if (ack.rc == FR_OK && ack.erased > 0)
        json_object_set_new(out, "erased", json_integer((json_int_t)ack.erased));
    if (json_array_size(p->errors) > 0)
        json_object_set_new(out, "errors", p->errors);
    else
        json_decref(p->errors);
    if (warnings != NULL)
        json_object_set_new(out, "warnings", warnings);
    p->errors = json_array();
    p->rejected = 0;
    char *line = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    size_t len = strlen(line);
    line = fr_realloc(line, len + 2);
    line[len] = '\n';
    write_all(fd, line, len + 1);
    free(line);
}

static void
reject(struct fr_pipeline *pl, struct pending *p, uint64_t line, const struct fr_err *e)
{
    p->rejected++;
    fr_pipeline_reject(pl, p->errors, line, e);
}

static bool
readable_now(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, 0) > 0;
}

/* Reports the batch's redaction counts and takes the current live state: a reload reaches
   a long-lived connection at its next batch, not only new connections. */
static struct fr_live *
live_refresh(struct fr_pipeline *pl, struct fr_live *l, struct fr_redact_counts *counts)
{
    fr_metrics_redaction(pl->metrics, l->red, counts);
    struct fr_live *now = fr_pipeline_live_get(pl);
    if (now == l) { /* no reload since: the same counters, zeroed, nothing allocated */
        fr_pipeline_live_put(pl, now);
        memset(counts->hits, 0, counts->ndetectors * sizeof *counts->hits);
        memset(counts->actions, 0, sizeof counts->actions);
        counts->events_changed = counts->bytes_scanned = counts->bytes_known = 0;
        return l;
    }
    fr_redact_counts_free(counts);
    fr_pipeline_live_put(pl, l);
    fr_redact_counts_init(counts, now->red);
    return now;
}

static void
uds_serve(void *ud, int fd, int wake_fd)
{
    (void)wake_fd; /* stopping shuts the reading side: the line reader sees the end */
    struct fr_sock *s = ud;
    struct fr_pipeline *pl = s->pl;
    fr_pipeline_prepare_yield(pl);
    struct fr_live *l = fr_pipeline_live_get(pl);
    size_t batch = (size_t)pl->conf.batch_events;
    struct pending p = {.errors = json_array()};
    p.recs = fr_calloc(batch, sizeof *p.recs);
    struct fr_redact_counts counts;
    fr_redact_counts_init(&counts, l->red);
    struct fr_linereader *lr = fr_linereader_new(fd, l->cfg.lim.max_line);
    fr_linereader_set_idle_timeout(lr, (int)pl->conf.socket_idle_timeout_ms);
    int end = 0;
    for (;;) {
        /* the client paused: acknowledge what it sent so far */
        if ((p.n > 0 || p.rejected > 0) && !fr_linereader_buffered(lr) && !readable_now(fd)) {
            flush(pl, fd, &p);
        }
        const char *line;
        size_t len;
        bool too_long;
        uint64_t lineno;
        int rc = fr_linereader_next(lr, &line, &len, &too_long, &lineno);
        if (rc <= 0) {
            end = rc;
            break;
        }
        if (p.n == 0 && p.rejected == 0)
            l = live_refresh(pl, l, &counts); /* a new batch starts on the current state */
        struct fr_err err = {0};
        if (too_long) {
            fr_metrics_received(pl->metrics, "socket", 1);
            fr_err_set(&err, FR_E_LIMIT, "line is %zu bytes, over the %zu byte limit", len,
                       l->cfg.lim.max_line);
            reject(pl, &p, lineno, &err);
            continue;
        }
        if (!fr_wire_line(&line, &len))
            continue;
        fr_metrics_received(pl->metrics, "socket", 1);
        if (fr_ingest_prepare(line, len, &l->cfg, &counts, &p.recs[p.n], &err) == FR_OK) {
            p.recs[p.n].line = lineno;
            p.n++;
        } else {
            reject(pl, &p, lineno, &err);
        }
        if (p.n == batch) {
            flush(pl, fd, &p);
        }
    }
    flush(pl, fd, &p);
    if (end == FR_E_TIMEOUT) {
        /* said on the connection, so the producer knows why it was closed */
        char msg[200];
        int n = snprintf(msg, sizeof msg,
                         "{\"error\":\"an unfinished line got no byte for %lld ms "
                         "(socket.idle_timeout): connection closed; end every line with a "
                         "newline\"}\n",
                         (long long)pl->conf.socket_idle_timeout_ms);
        write_all(fd, msg, (size_t)n);
        fr_metrics_rejected(pl->metrics, FR_E_TIMEOUT);
        fr_log(FR_LOG_WARN, "socket", "connection closed: an unfinished line stalled for %lld ms",
               (long long)pl->conf.socket_idle_timeout_ms);
    }
    fr_metrics_redaction(pl->metrics, l->red, &counts);
    fr_redact_counts_free(&counts);
    fr_linereader_free(lr);
    json_decref(p.errors);
    free(p.recs);
    fr_pipeline_live_put(pl, l);
    shutdown(fd, SHUT_WR); /* the client sees the end of the acks */
}

/* One connection more than socket.max_connections: said on it, so the producer knows why. */
static void
uds_refuse(void *ud, int fd, size_t limit)
{
    struct fr_sock *s = ud;
    if (limit == 0)
        return; /* stopping */
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "{\"error\":\"too many connections (socket.max_connections %zu); "
                     "retry later\"}\n",
                     limit);
    write_all(fd, msg, (size_t)n);
    fr_metrics_rejected(s->pl->metrics, FR_E_BUSY);
    fr_log(FR_LOG_WARN, "socket", "connection refused: %zu connections already served", limit);
}

static const struct fr_acceptor_ops uds_ops = {.serve = uds_serve, .refuse = uds_refuse};

static int
uds_start(struct fr_pipeline *pl, struct fr_sock **out, struct fr_err *err)
{
    *out = NULL;
    const char *path = pl->conf.socket_path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return fr_err_set(err, FR_E_CONFIG, "socket.path: longer than %zu bytes",
                          sizeof sa.sun_path - 1);
    strcpy(sa.sun_path, path);
    int rc = fr_mkdirs_for(path, 0700, err);
    if (rc != FR_OK)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fr_err_set(err, FR_E_IO, "socket: %s", strerror(errno));
    /* a socket file left by a crash is replaced; one with a live agent behind it is not */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(probe);
        if (live) {
            close(fd);
            return fr_err_set(err, FR_E_IO, "%s: another agent is listening there", path);
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, 64) != 0) {
        rc = fr_err_set(err, FR_E_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    struct fr_sock *s = fr_calloc(1, sizeof *s);
    s->pl = pl;
    s->path = fr_strdup(path);
    if (fr_acceptor_start(fd, (size_t)pl->conf.socket_max_connections, &uds_ops, s, &s->acc) !=
        FR_OK) {
        free(s->path);
        free(s);
        return fr_err_set(err, FR_E_IO, "cannot start the socket server");
    }
    *out = s;
    return FR_OK;
}

static void
uds_stop(struct fr_sock *s)
{
    if (s == NULL)
        return;
    /* each connection stops reading, commits and acknowledges what it has, and ends */
    fr_acceptor_stop(s->acc);
    unlink(s->path);
    free(s->path);
    free(s);
}

/* ---- the source ---- */

static bool
uds_enabled(const struct fr_config *c)
{
    return c->socket_enabled;
}

static int
uds_init(struct fr_pipeline *pl, void **ctx, struct fr_err *err)
{
    struct fr_sock *s = NULL;
    int rc = uds_start(pl, &s, err);
    *ctx = s;
    return rc;
}

static void
uds_destroy(void *ctx)
{
    uds_stop(ctx);
}

static void
uds_describe(void *ctx, char *buf, size_t len)
{
    const struct fr_sock *s = ctx;
    snprintf(buf, len, "socket %s", s->path);
}

const struct fr_source fr_source_uds = {
    .name = "socket",
    .description = "NDJSON over a Unix stream socket, one ack line per committed batch",
    .options = "socket.*",
    .enabled = uds_enabled,
    .init = uds_init,
    .destroy = uds_destroy,
    .quiesce = NULL,
    .describe = uds_describe,
};
