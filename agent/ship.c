/*
 * agent/ship.c - the shipper: reads the hot store's committed events after a
 * cursor, in insertion order, and writes them to the fleet store in batches
 * (retention/hot/postgres.c: COPY into a staging table, insert what is not
 * there yet, move the cursor, one transaction).
 *
 * Exactly once in effect: the cursor lives in the fleet store and moves in
 * the transaction that stores the rows, so a batch is in whole or not at
 * all; a kill -9 after that commit, before the agent learned of it, ships
 * the batch again, and the fleet store's keys take none of it twice. Ingest
 * never waits for the shipper: it reads on its own connection, and while
 * the fleet store is unreachable the backlog is simply the hot store's rows
 * after the cursor, retried with a backoff up to 30 s and drained in full
 * batches when it returns; retention keeps those rows in hot (the hold this
 * file records after every batch, hot.max_unshipped_age).
 */
#include "agent/ship.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/ticker.h"
#include "core/timeutil.h"
#include "retention/hot/store.h"

struct fr_shipper {
    struct fr_pipeline *pl; /* borrowed */
    pthread_t thread;
    struct fr_ticker tick;
    char host[256];
    char source[17]; /* the hot store's own id: the cursor's key */
    struct fr_store *local, *central;
    bool have_cursor;
    struct fr_ship_pos pos;
    int64_t backoff_ms;
    int64_t logged_ms; /* when the last failure was logged (one a minute) */
};

/* One batch in progress. */
struct batch {
    struct fr_store *central;
    struct fr_err *err;
    struct fr_ship_batch *out;
    int64_t last_id;
    int rc;
};

static int
batch_row(void *ud, const struct fr_event_row *row)
{
    struct batch *b = ud;
    if (b->out->rows == 0)
        b->out->first_ingested = row->ingested_ms;
    b->out->rows++;
    b->last_id = row->id;
    b->out->last_ingested = row->ingested_ms;
    b->rc = fr_store_ship_row(b->central, row, b->err);
    return b->rc != FR_OK ? 1 : 0;
}

struct links {
    struct fr_store *central;
    struct fr_err *err;
    size_t n;
    int64_t max_ms;
};

static int
link_row(void *ud, const char *trace_id, const char *conv_id, int64_t ts_ms)
{
    struct links *l = ud;
    l->n++;
    if (ts_ms > l->max_ms)
        l->max_ms = ts_ms;
    return fr_store_ship_link(l->central, trace_id, conv_id, ts_ms, l->err);
}

int
fr_ship_batch(struct fr_store *local, struct fr_store *central, const char *source,
              const char *host, int limit, struct fr_ship_pos *pos, struct fr_ship_batch *out,
              struct fr_err *err)
{
    /* the fast path first; a batch partly stored already (sent again after a crash) or
       opening a new day goes again carefully */
    for (int careful = 0;; careful++) {
        memset(out, 0, sizeof *out);
        struct batch b = {.central = central, .err = err, .out = out};
        struct fr_event_filter f = {
            .by_arrival = true, .after_id = pos->cursor, .limit = limit, .id_field = -1};
        struct links l = {.central = central, .err = err, .max_ms = pos->links_ms - 1};
        b.last_id = pos->cursor;
        int rc = fr_store_ship_begin(central, host, careful > 0, err);
        if (rc == FR_OK) {
            rc = fr_store_events(local, &f, batch_row, &b, err);
            if (rc == 1)
                rc = b.rc;
        }
        if (rc == FR_OK)
            rc = fr_store_trace_links(local, pos->links_ms, link_row, &l, err);
        out->links = l.n;
        if (rc == FR_OK && out->rows == 0 && l.n == 0) {
            fr_store_rollback(central); /* nothing to send: the empty batch is dropped */
            return FR_OK;
        }
        if (rc == FR_OK)
            rc = fr_store_ship_end(central, source, b.last_id, fr_now_ms(), &out->inserted, err);
        if (rc == FR_OK) {
            pos->cursor = b.last_id;
            pos->links_ms = l.max_ms + 1;
            return FR_OK;
        }
        fr_store_rollback(central);
        if (rc != FR_E_BUSY || careful > 0)
            return rc;
        fr_err_clear(err);
    }
}

static void
report(struct fr_shipper *s, bool up, int64_t lag_ms, int64_t shipped, const char *error)
{
    struct fr_ship_state *st = &s->pl->ship;
    pthread_mutex_lock(&st->mu);
    st->up = up;
    st->lag_ms = lag_ms;
    if (error != NULL) {
        st->failures++;
        snprintf(st->error, sizeof st->error, "%s", error);
    } else {
        st->error[0] = '\0';
        if (shipped >= 0) {
            st->shipped += shipped;
            st->batches++;
        }
    }
    pthread_mutex_unlock(&st->mu);
}

static int
first_row(void *ud, const struct fr_event_row *row)
{
    *(int64_t *)ud = row->ingested_ms;
    return 1;
}

/* When the oldest event after the last cursor known was stored (0: none waits). */
static int64_t
oldest_unshipped(struct fr_shipper *s)
{
    int64_t ms = 0;
    struct fr_event_filter f = {
        .by_arrival = true, .after_id = s->pos.cursor, .limit = 1, .id_field = -1};
    if (s->local != NULL)
        fr_store_events(s->local, &f, first_row, &ms, NULL);
    return ms;
}

/* A failure: said once a minute in the log, always in /readyz and /metrics. */
static void
fail(struct fr_shipper *s, const char *msg, int64_t oldest_ms)
{
    int64_t now = fr_now_ms();
    if (oldest_ms <= 0)
        oldest_ms = oldest_unshipped(s);
    if (now - s->logged_ms >= 60000) {
        fr_log(FR_LOG_WARN, "ship", "%s (retrying; events stay in the hot store)", msg);
        s->logged_ms = now;
    }
    int64_t lag = oldest_ms > 0 ? now - oldest_ms : 0;
    report(s, false, lag > 0 ? lag : 0, -1, msg);
    /* a broken connection is not reused: the next attempt connects again */
    fr_store_close(s->central);
    s->central = NULL;
    s->have_cursor = false;
    s->backoff_ms = s->backoff_ms == 0          ? 500
                    : s->backoff_ms * 2 > 30000 ? 30000
                                                : s->backoff_ms * 2;
}

/* Retention keeps the rows after the cursor in hot (hot.max_unshipped_age): told where. */
static void
hold(struct fr_shipper *s)
{
    struct fr_err err = {0};
    if (fr_store_ship_hold_set(s->local, s->pos.cursor, &err) != FR_OK)
        fr_log(FR_LOG_WARN, "ship", "%s (retention may move rows not shipped yet)", err.msg);
}

static int
open_stores(struct fr_shipper *s, struct fr_err *err)
{
    struct fr_store_opts so;
    if (s->local == NULL) {
        fr_store_opts_default(&so);
        so.create = false; /* writes only its hold on hot (fr_store_ship_hold_set) */
        so.busy_timeout_ms = (int)s->pl->conf.busy_timeout_ms;
        if (fr_store_open(s->pl->conf.db_path, &so, &s->local, err) != FR_OK)
            return err->code;
        if (fr_store_id(s->local, s->source, err) != FR_OK) {
            fr_store_close(s->local);
            s->local = NULL;
            return err->code;
        }
    }
    if (s->central == NULL) {
        fr_store_opts_default(&so);
        if (fr_store_open(s->pl->conf.ship_url, &so, &s->central, err) != FR_OK)
            return err->code;
    }
    if (!s->have_cursor) {
        if (fr_store_ship_cursor(s->central, s->source, &s->pos.cursor, err) != FR_OK)
            return err->code;
        s->have_cursor = true;
        hold(s);
    }
    return FR_OK;
}

/* One batch; true when it was full (more may be waiting). */
static bool
ship_once(struct fr_shipper *s)
{
    struct fr_err err = {0};
    if (open_stores(s, &err) != FR_OK) {
        fail(s, err.msg, 0);
        return false;
    }
    struct fr_ship_batch b;
    int limit = (int)s->pl->conf.ship_batch_events;
    if (fr_ship_batch(s->local, s->central, s->source, s->host, limit, &s->pos, &b, &err) !=
        FR_OK) {
        fail(s, err.msg, b.first_ingested);
        return false;
    }
    s->backoff_ms = 0;
    if (b.rows > 0)
        hold(s);
    bool full = b.rows >= (size_t)limit;
    int64_t lag = full ? fr_now_ms() - b.last_ingested : 0;
    report(s, true, lag > 0 ? lag : 0, b.rows > 0 ? b.inserted : -1, NULL);
    if (b.rows > 0)
        fr_log(FR_LOG_DEBUG, "ship", "%zu events shipped (%lld new), cursor %lld", b.rows,
               (long long)b.inserted, (long long)s->pos.cursor);
    return full;
}

static void *
ship_main(void *arg)
{
    struct fr_shipper *s = arg;
    int64_t wait = 0;
    while (fr_ticker_wait(&s->tick, wait)) {
        bool more = ship_once(s);
        wait = more ? 0 : s->backoff_ms > 0 ? s->backoff_ms : s->pl->conf.ship_interval_ms;
    }
    fr_store_close(s->central);
    fr_store_close(s->local);
    return NULL;
}

struct fr_shipper *
fr_shipper_start(struct fr_pipeline *pl)
{
    if (pl->conf.ship_url == NULL || pl->conf.ship_url[0] == '\0')
        return NULL;
    struct fr_shipper *s = fr_calloc(1, sizeof *s);
    s->pl = pl;
    if (pl->conf.ship_host[0])
        snprintf(s->host, sizeof s->host, "%s", pl->conf.ship_host);
    else if (gethostname(s->host, sizeof s->host - 1) != 0 || s->host[0] == '\0')
        snprintf(s->host, sizeof s->host, "unknown");
    pthread_mutex_lock(&pl->ship.mu);
    pl->ship.enabled = true;
    pthread_mutex_unlock(&pl->ship.mu);
    fr_ticker_init(&s->tick);
    if (pthread_create(&s->thread, NULL, ship_main, s) != 0) {
        fr_log(FR_LOG_ERROR, "ship", "cannot start the shipper");
        fr_ticker_destroy(&s->tick);
        free(s);
        return NULL;
    }
    return s;
}

void
fr_shipper_stop(struct fr_shipper *s)
{
    if (s == NULL)
        return;
    fr_ticker_stop(&s->tick);
    pthread_join(s->thread, NULL);
    fr_ticker_destroy(&s->tick);
    free(s);
}
