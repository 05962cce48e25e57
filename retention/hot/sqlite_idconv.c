/*
 * retention/hot/sqlite_idconv.c - look-ups by request id and session id
 * through the conversations each id was seen in (table id_convs, one row per
 * (field, id, conversation) pair; schema version 17).
 *
 * Until version 16 both ids had an index on events of their own
 * (events_request, events_session): two more B-tree inserts per stored
 * event, 17% of the writer's instructions (callgrind, 10k fr-gen events:
 * 73.8k per event with them, 61.3k without) on the thread that bounds the
 * HTTP path. A request's events (a turn: its provider and tool calls, steps,
 * transport) and a session's share a conversation, so one row serves them
 * all, and it is written once: the writer remembers the pairs it knows to be
 * stored, with the times they cover (idc_known, direct-mapped by the pair's
 * hash: a session's pair with its conversation comes again in every batch of
 * it), and forgets them when a transaction rolls back, when this connection
 * deletes or moves pairs, and when another connection committed (PRAGMA
 * data_version), so a pair is never skipped that is not stored.
 *
 * A look-up (SQ_IDCONV_EVENT_IDS) reads each pair's conversation's events in
 * events_conv within the pair's event times (ts_lo to ts_hi, widened by
 * IDC_SLACK_MS past an event of the pair that comes from outside them, so
 * that a request's events write its row once; a session's pair has no end)
 * and keeps those with the id: a request of a long conversation reads its
 * own few seconds of it, not all of it; events without a
 * conversation come from partial indexes of their own (events_request_noconv,
 * events_session_noconv: rare in chat traffic, so cheap to keep).
 *
 * The pairs follow their conversation: when a trace's events filed under
 * the trace id move to their conversation (sqlite_trace.c), so do its pairs
 * (sq_idconv_move); an erased conversation's go with it, and after events
 * erased one by one, the pairs of their conversations no event holds any
 * more (sqlite_erase.c, sq_idconv_tidy). Once a minute a bounded step deletes
 * the pairs whose conversation has no event left in hot (archived), from the
 * oldest pairs up, as trace pairs are pruned.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "retention/hot/sqlite_int.h"

enum {
    IDC_PUT,        /* a pair */
    IDC_MOVE,       /* a conversation's pairs to another */
    IDC_DROP,       /* and what did not move (already there), or an erased one's */
    IDC_PRUNE_STEP, /* where a pruning step ends */
    IDC_PRUNE,      /* the pairs in it whose conversation left hot */
    IDC_TIDY_REQ,   /* a conversation's request pairs no event of it holds */
    IDC_TIDY_SES,   /* and session pairs */
    IDC_COUNT_ALL
};

_Static_assert(IDC_COUNT_ALL <=
                   sizeof((struct sq_store *)0)->idc_st / sizeof((struct sq_store *)0)->idc_st[0],
               "idc_st holds every statement");

static const char *const idc_sql[IDC_COUNT_ALL] = {
    /* ts_lo, ts_hi: the earliest and latest event time of the pair, where a look-up reads
       (ts_hi NULL for a session: it lasts as long as its conversations) */
    [IDC_PUT] = "INSERT INTO id_convs(field, id, conv_id, ts_ms, ts_lo, ts_hi)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET"
                " ts_lo = min(ts_lo, excluded.ts_lo), ts_hi = max(ts_hi, excluded.ts_hi)"
                " WHERE excluded.ts_lo < ts_lo OR excluded.ts_hi > ts_hi",
    [IDC_MOVE] = "INSERT INTO id_convs(field, id, conv_id, ts_ms, ts_lo, ts_hi) SELECT field, id,"
                 " ?2, ts_ms, ts_lo, ts_hi FROM id_convs WHERE conv_id = ?1 ORDER BY field, id"
                 " ON CONFLICT DO UPDATE SET ts_lo = min(ts_lo, excluded.ts_lo),"
                 " ts_hi = max(ts_hi, excluded.ts_hi)",
    [IDC_DROP] = "DELETE FROM id_convs WHERE conv_id = ?1",
    /* where a step of ?3 pairs recorded from ?1 ends, before ?2 and before the oldest event
       in hot was stored (a pair recorded since then most likely has events), and how many */
    [IDC_PRUNE_STEP] = "SELECT max(ts_ms), count(*) FROM (SELECT ts_ms FROM id_convs"
                       " WHERE ts_ms >= ?1 AND ts_ms < min(?2, ifnull((SELECT ingested_ms"
                       " FROM events ORDER BY id LIMIT 1), ?2)) ORDER BY ts_ms LIMIT ?3)",
    [IDC_PRUNE] = "DELETE FROM id_convs WHERE ts_ms >= ?1 AND ts_ms <= ?2 AND NOT EXISTS"
                  " (SELECT 1 FROM events e WHERE e.conv_id = id_convs.conv_id)",
    [IDC_TIDY_REQ] = "DELETE FROM id_convs WHERE conv_id = ?1 AND field = 'request_id'"
                     " AND id NOT IN (SELECT request_id FROM events WHERE conv_id = ?1"
                     " AND request_id IS NOT NULL)",
    [IDC_TIDY_SES] = "DELETE FROM id_convs WHERE conv_id = ?1 AND field = 'session_id'"
                     " AND id NOT IN (SELECT session_id FROM events WHERE conv_id = ?1"
                     " AND session_id IS NOT NULL)",
};

#define IDC_KNOWN 8192 /* 192 KiB */
/* bounds are written this much wider than the event that moved them: the next events of a
   request (later by seconds) fall inside and write nothing */
#define IDC_SLACK_MS (60 * 1000) /* also in schema version 17's migration */

/* A pair known to be stored: its hash (0: none), and times within its [ts_lo, ts_hi]. */
struct sq_idc_known {
    uint64_t h;
    int64_t lo, hi;
};

static void
idc_forget(struct sq_store *s)
{
    if (s->idc_known != NULL)
        memset(s->idc_known, 0, IDC_KNOWN * sizeof *s->idc_known);
}

/* The known pairs, as of other connections' commits and this one's erasures. */
static void
idc_sync(struct sq_store *s)
{
    if (s->idc_known == NULL)
        s->idc_known = fr_calloc(IDC_KNOWN, sizeof *s->idc_known);
    if (s->idc_erasures != s->hot_erasures) {
        s->idc_erasures = s->hot_erasures;
        idc_forget(s);
    }
    if (s->idc_synced)
        return;
    int64_t version = sq_pragma_int(s->db, "PRAGMA data_version");
    if (version == 0 || version != s->idc_version)
        idc_forget(s);
    s->idc_version = version;
    s->idc_synced = true;
}

static int
idc_stmt(struct sq_store *s, int which, sqlite3_stmt **out, struct fr_err *err)
{
    return sq_cached(s->db, &s->idc_st[which], idc_sql[which], out, err);
}

/* Steps a statement with text parameters ?1 and ?2 (b may be NULL: not bound) to its end. */
static int
idc_run(struct sq_store *s, int which, const char *a, const char *b, struct fr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = idc_stmt(s, which, &st, err);
    return rc != FR_OK ? rc : sq_step_texts(s->db, st, a, b, "id look-up pairs", err);
}

/* The pair (field, id, conv) over event time ts; bounded: with an end (ts_hi), as a request's. */
static int
idc_put(struct sq_store *s, const char *field, bool bounded, const char *id, const char *conv,
        int64_t ts, int64_t now_ms, struct fr_err *err)
{
    idc_sync(s);
    uint64_t h =
        fr_fnv1a64_from(fr_fnv1a64_from(fr_fnv1a64_from(fr_fnv1a64(field), "\x1f"), id), "\x1f");
    h = fr_fnv1a64_from(h, conv);
    h = h ? h : 1;
    struct sq_idc_known *slot = &s->idc_known[h & (IDC_KNOWN - 1)];
    if (slot->h == h && ts >= slot->lo && (!bounded || ts <= slot->hi))
        return FR_OK; /* in the table (or recorded in this transaction), over ts */
    sqlite3_stmt *st = NULL;
    int rc = idc_stmt(s, IDC_PUT, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, field, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, conv, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    int64_t lo = ts - IDC_SLACK_MS, hi = ts + IDC_SLACK_MS;
    sqlite3_bind_int64(st, 5, lo);
    if (bounded)
        sqlite3_bind_int64(st, 6, hi);
    else
        sqlite3_bind_null(st, 6);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "recording a request's or session's conversation");
    s->idc_added += sqlite3_changes(s->db);
    /* stored now over [lo, hi] (the row's own bounds, if wider, were kept) */
    if (slot->h != h) {
        *slot = (struct sq_idc_known){h, lo, hi};
    } else {
        slot->lo = lo < slot->lo ? lo : slot->lo;
        slot->hi = hi > slot->hi ? hi : slot->hi;
    }
    return FR_OK;
}

int
sq_idconv_note(struct sq_store *s, const struct fr_record *rec, int64_t now_ms, struct fr_err *err)
{
    const char *conv = rec->ids[FR_ID_CONV];
    if (conv == NULL) /* found through the _noconv indexes */
        return FR_OK;
    int rc = FR_OK;
    if (rec->ids[FR_ID_REQUEST] != NULL)
        rc = idc_put(s, "request_id", true, rec->ids[FR_ID_REQUEST], conv, rec->ts_ms, now_ms, err);
    if (rc == FR_OK && rec->ids[FR_ID_SESSION] != NULL) /* a session lasts: no end */
        rc =
            idc_put(s, "session_id", false, rec->ids[FR_ID_SESSION], conv, rec->ts_ms, now_ms, err);
    return rc;
}

int
sq_idconv_move(struct sq_store *s, const char *from, const char *to, struct fr_err *err)
{
    idc_forget(s);
    int rc = to != NULL ? idc_run(s, IDC_MOVE, from, to, err) : FR_OK;
    return rc == FR_OK ? idc_run(s, IDC_DROP, from, NULL, err) : rc;
}

int
sq_idconv_tidy(struct sq_store *s, const char *conv, struct fr_err *err)
{
    idc_forget(s);
    int rc = idc_run(s, IDC_TIDY_REQ, conv, NULL, err);
    return rc == FR_OK ? idc_run(s, IDC_TIDY_SES, conv, NULL, err) : rc;
}

/* One step of pruning (see the top of the file and sq_prune_step). */
static int
idc_prune(struct sq_store *s, int64_t now_ms, struct fr_err *err)
{
    sqlite3_stmt *step = NULL, *del = NULL;
    int deleted = 0, rc = idc_stmt(s, IDC_PRUNE_STEP, &step, err);
    if (rc == FR_OK)
        rc = idc_stmt(s, IDC_PRUNE, &del, err);
    if (rc == FR_OK)
        rc = sq_prune_step(s->db, step, del, now_ms, &s->idc_prune_from, &s->idc_added, &deleted,
                           "pruning id look-up pairs", err);
    if (deleted > 0)
        idc_forget(s);
    return rc;
}

int
sq_idconv_flush(struct sq_store *s, int64_t now_ms, struct fr_err *err)
{
    int rc = FR_OK;
    if (now_ms - s->idc_pruned_ms >= 60000) {
        rc = idc_prune(s, now_ms, err);
        s->idc_pruned_ms = now_ms;
    }
    s->idc_synced = false;
    return rc;
}

void
sq_idconv_rollback(struct sq_store *s)
{
    idc_forget(s); /* the batch's pairs are not stored */
    s->idc_synced = false;
}

void
sq_idconv_free(struct sq_store *s)
{
    free(s->idc_known);
    s->idc_known = NULL;
    for (int i = 0; i < IDC_COUNT_ALL; i++)
        sqlite3_finalize(s->idc_st[i]);
}
