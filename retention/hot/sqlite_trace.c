/*
 * retention/hot/sqlite_trace.c - traces and conversations: which
 * conversations a trace was seen in (table trace_convs, one row per pair;
 * the first is the trace's link), the late re-assignment of events that
 * were filed under their trace id because the span naming the
 * conversation had not arrived yet, and the look-up of a trace's events.
 *
 * An OTLP exporter sends a turn's spans as they end: the provider and tool
 * calls first, the root span that carries the conversation id last, often
 * in another request (any turn longer than the SDK's batch timer, or every
 * turn when the SDK is flushed per call). Those children are stored at once,
 * under conv_id = their trace id (nothing waits, nothing is lost). When a
 * trace's first conversation is learned (a stored event of the trace in a
 * conversation, or a link the OTLP mapper found), in the same transaction
 * as the batch that brought it, the trace's events move to the conversation:
 * their conv_id and the envelope's conv_id, and the conversation index (the
 * trace's counts merge into the conversation's row, the trace's row goes).
 * Events of a linked trace that arrive later (log records, a late child)
 * are moved in the transaction that stores them.
 *
 * Links count for FR_TRACE_LINK_WINDOW_MS after they were learned; events
 * already archived to warm or cold segments under the trace id stay there.
 * A trace linked to an erased conversation has its events deleted instead
 * of moved: an erased conversation never gets events back. The erasure
 * keeps its traces' links without the conversation's id (conv_id '').
 *
 * The pairs are also how a trace's events are found (SQ_TRACE_EVENT_IDS):
 * each pair's conversation's entries in events_conv, which ends with
 * trace_id, so a commit writes the index leaves of its conversations
 * rather than one leaf per trace (random 128-bit ids), which an index on
 * trace_id alone cost: 40% of the WAL pages of an OTLP commit
 * (docs/storage.md). A pair is kept while
 * the window lasts and while its events are in hot (pruned a bounded step
 * a minute, after the window).
 *
 * A new pair is not written into trace_convs but appended to trace_convs_new
 * (schema version 16): trace_convs is keyed by the random trace id, so each
 * pair written there was one more B-tree leaf in the commit's WAL pages (29%
 * of an OTLP commit's), while an append writes the table's last page. The
 * writer keeps an index of that table in memory (tn_slots: each row's hashes
 * of trace and conversation and its id, 16 bytes; a candidate is read by its
 * id), read again when another connection committed.
 * Once it holds SQ_TRACE_MERGE_ROWS pairs, or its oldest is SQ_TRACE_MERGE_AGE_MS old,
 * its rows are merged into trace_convs in key order, SQ_TRACE_MERGE_CHUNK a commit
 * (so a merge never stalls a batch); once all are in, those found in
 * trace_convs are deleted: sorted keys share leaves, so a merge writes each
 * leaf once for all of its pairs.
 * Readers read both tables (SQ_TRACE_EVENT_IDS, the view trace_pairs).
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/hot/sqlite_int.h"

enum {
    TL_LOOKUP,      /* the conversation of a trace */
    TL_COUNT,       /* what a re-assignment moves */
    TL_DEDUP,       /* copies the conversation already holds (a re-sent span) */
    TL_MOVE,        /* the events */
    TL_DROP,        /* all of them (the conversation is erased) */
    TL_MERGE,       /* the trace's index row into the conversation's */
    TL_UNCOUNT,     /* and out of the trace's */
    TL_UNINDEX,     /* the trace's row once empty */
    TL_PRUNE_STEP,  /* the pairs past the window a pruning step looks at */
    TL_PRUNE,       /* those whose events left hot */
    TL_PRUNE_PARTS, /* and parts whose event never came */
    TL_APPEND,      /* a new pair */
    TL_LOAD,        /* the pairs not merged yet */
    TL_ROW,         /* one of them */
    TL_CHUNK,       /* a merge's next pairs, in key order */
    TL_MERGE_ONE,   /* one of them */
    TL_MERGE_DONE,  /* and the merged ones gone */
    TL_COUNT_ALL
};

_Static_assert(TL_COUNT_ALL <= sizeof((struct sq_store *)0)->trace_st /
                                   sizeof((struct sq_store *)0)->trace_st[0],
               "trace_st holds every statement");

static const char *const tl_sql[TL_COUNT_ALL] = {
    /* the first is picked by tl_lookup: an ORDER BY here sorted a trace's few rows in a temporary
       B-tree, opened and closed per look-up (2.5% of an OTLP ingest's CPU, half of it that) */
    [TL_LOOKUP] = "SELECT conv_id, ts_ms FROM trace_convs WHERE trace_id = ?1 AND ts_ms >= ?2",
    [TL_COUNT] = "SELECT count(*), count(error_code) FROM events"
                 " WHERE conv_id = ?1 AND trace_id = ?1",
    [TL_DEDUP] = SQ_TRACE_DEDUP_SQL,
    [TL_MOVE] =
        "UPDATE events SET conv_id = ?2, body = fr_zbody(json_set(fr_body(body), '$.conv_id', ?2))"
        " WHERE conv_id = ?1 AND trace_id = ?1",
    [TL_DROP] = "DELETE FROM events WHERE conv_id = ?1 AND trace_id = ?1",
    [TL_MERGE] = "INSERT INTO conversations(" SQ_CONV_COLUMNS ")"
                 " SELECT ?2, session_id, runtime_key, runtime_key_ts_ms, status, status_ts_ms,"
                 " created_ms, last_activity_ms, closed_ms, evicted_ms, ?3, ?4, last_error_ts_ms,"
                 " last_error_class, last_error_code, last_error_message, panic, updated_ms"
                 " FROM conversations WHERE conv_id = ?1" SQ_CONV_MERGE,
    [TL_UNCOUNT] = "UPDATE conversations SET event_count = event_count - ?2,"
                   " error_count = MAX(0, error_count - ?3) WHERE conv_id = ?1",
    [TL_UNINDEX] = "DELETE FROM conversations WHERE conv_id = ?1 AND event_count <= 0",
    /* where a step of ?3 pairs learned from ?1 ends, before the window's start ?2 and before
       the oldest event in hot was stored (a pair learned since then most likely has events),
       and how many it holds */
    [TL_PRUNE_STEP] = "SELECT max(ts_ms), count(*) FROM (SELECT ts_ms FROM trace_convs"
                      " WHERE ts_ms >= ?1 AND ts_ms < min(?2, ifnull((SELECT ingested_ms"
                      " FROM events ORDER BY id LIMIT 1), ?2)) ORDER BY ts_ms LIMIT ?3)",
    [TL_PRUNE] = "DELETE FROM trace_convs WHERE ts_ms >= ?1 AND ts_ms <= ?2 AND NOT EXISTS"
                 " (SELECT 1 FROM events e WHERE e.conv_id = trace_convs.conv_id"
                 " AND e.trace_id = trace_convs.trace_id)",
    [TL_PRUNE_PARTS] = "DELETE FROM event_parts WHERE ts_ms < ?1",
    [TL_APPEND] = "INSERT INTO trace_convs_new(trace_id, conv_id, ts_ms) VALUES(?1, ?2, ?3)",
    [TL_LOAD] = "SELECT id, trace_id, conv_id, ts_ms FROM trace_convs_new",
    [TL_ROW] = "SELECT trace_id, conv_id, ts_ms FROM trace_convs_new WHERE id = ?1",
    /* the next ?4 pairs up to id ?1 after the pair (?2, ?3) (NULL: from the first) */
    [TL_CHUNK] = "SELECT trace_id, conv_id, ts_ms FROM trace_convs_new WHERE id <= ?1 AND"
                 " (?2 IS NULL OR trace_id > ?2 OR (trace_id = ?2 AND conv_id > ?3))"
                 " ORDER BY trace_id, conv_id LIMIT ?4",
    [TL_MERGE_ONE] = "INSERT INTO trace_convs(trace_id, conv_id, ts_ms) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(trace_id, conv_id) DO UPDATE SET ts_ms = excluded.ts_ms"
                     " WHERE excluded.ts_ms < trace_convs.ts_ms",
    /* only what is in trace_convs: a pair whose key changed behind the merge's cursor (an
       erasure by another connection) stays for the next merge */
    [TL_MERGE_DONE] = "DELETE FROM trace_convs_new WHERE id <= ?1 AND EXISTS (SELECT 1 FROM"
                      " trace_convs m WHERE m.trace_id = trace_convs_new.trace_id"
                      " AND m.conv_id = trace_convs_new.conv_id)",
};

/* A row of trace_convs_new in the writer's index of it (open addressing by trace hash; id 0:
   empty). */
struct sq_tn_slot {
    uint32_t trace_h, conv_h;
    int64_t id;
};

static void sq_trace_forget(struct sq_store *s);

static int
tl_stmt(struct sq_store *s, int which, sqlite3_stmt **out, struct fr_err *err)
{
    return sq_cached(s->db, &s->trace_st[which], tl_sql[which], out, err);
}

/* Steps a statement with text parameters (NULL ends them) to its end. */
static int
tl_run(struct sq_store *s, int which, struct fr_err *err, const char *a, const char *b)
{
    sqlite3_stmt *st = NULL;
    int rc = tl_stmt(s, which, &st, err);
    return rc != FR_OK ? rc : sq_step_texts(s->db, st, a, b, tl_sql[which], err);
}

/* How many events are filed under trace (conv_id = trace_id = trace), and with an error. */
static int
tl_count(struct sq_store *s, const char *trace, int64_t *n, int64_t *errors, struct fr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = tl_stmt(s, TL_COUNT, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        *errors = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? FR_OK : sq_fail(s->db, rc, err, "counting a trace's events");
}

/*
 * Moves the events filed under trace to conv: the copies conv already holds
 * go, the rest move, and the index rows follow with exact counts (the trace's
 * row loses all it had, conv's gains what moved). An erased conversation gets
 * nothing back: the trace's events are deleted instead.
 */
static int
tl_reassign(struct sq_store *s, const char *trace, const char *conv, struct fr_err *err)
{
    int64_t n = 0, errors = 0, moved = 0, moved_errors = 0;
    int rc = tl_count(s, trace, &n, &errors, err);
    if (rc != FR_OK || n == 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (conv[0] == '\0' || sq_is_erased(s, conv)) { /* '': the link of an erased one */
        rc = tl_run(s, TL_DROP, err, trace, NULL);
        if (rc == FR_OK)
            rc = sq_idconv_move(s, trace, NULL, err);
    } else if ((rc = tl_run(s, TL_DEDUP, err, trace, conv)) == FR_OK &&
               (rc = tl_count(s, trace, &moved, &moved_errors, err)) == FR_OK &&
               (rc = tl_run(s, TL_MOVE, err, trace, conv)) == FR_OK &&
               (rc = sq_idconv_move(s, trace, conv, err)) == FR_OK &&
               (rc = tl_stmt(s, TL_MERGE, &st, err)) == FR_OK) {
        sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, moved);
        sqlite3_bind_int64(st, 4, moved_errors);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        rc = rc == SQLITE_DONE ? FR_OK
                               : sq_fail(s->db, rc, err, "merging a trace into its conversation");
    }
    if (rc != FR_OK || (rc = tl_stmt(s, TL_UNCOUNT, &st, err)) != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n);
    sqlite3_bind_int64(st, 3, errors);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "uncounting a trace");
    return tl_run(s, TL_UNINDEX, err, trace, NULL);
}

static void
tn_put(struct sq_tn_slot *slots, size_t cap, const struct sq_tn_slot *e)
{
    size_t i = e->trace_h & (cap - 1);
    while (slots[i].id != 0)
        i = (i + 1) & (cap - 1);
    slots[i] = *e;
}

static void
tn_add(struct sq_store *s, int64_t id, const char *trace, const char *conv, int64_t ts_ms)
{
    if ((size_t)(s->tn_rows + 1) * 2 > s->tn_cap) {
        size_t cap = s->tn_cap ? s->tn_cap * 2 : 1024;
        struct sq_tn_slot *slots = fr_calloc(cap, sizeof *slots);
        for (size_t i = 0; i < s->tn_cap; i++)
            if (s->tn_slots[i].id != 0)
                tn_put(slots, cap, &s->tn_slots[i]);
        free(s->tn_slots);
        s->tn_slots = slots;
        s->tn_cap = cap;
    }
    struct sq_tn_slot e = {(uint32_t)fr_fnv1a64(trace), (uint32_t)fr_fnv1a64(conv), id};
    tn_put(s->tn_slots, s->tn_cap, &e);
    s->tn_rows++;
    if (id > s->tn_max_id)
        s->tn_max_id = id;
    if (s->tn_oldest_ms == 0 || ts_ms < s->tn_oldest_ms)
        s->tn_oldest_ms = ts_ms;
}

/* Reads trace_convs_new into tn_slots. */
static int
tn_load(struct sq_store *s, struct fr_err *err)
{
    free(s->tn_slots); /* sized again for what the table holds */
    s->tn_slots = NULL;
    s->tn_cap = 0;
    s->tn_rows = s->tn_max_id = s->tn_oldest_ms = 0;
    s->tn_loaded = false;
    sqlite3_stmt *st = NULL;
    int rc = tl_stmt(s, TL_LOAD, &st, err);
    if (rc != FR_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        tn_add(s, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
               (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "reading the trace pairs not merged yet");
    s->tn_loaded = true;
    return FR_OK;
}

/* tn_slots as the batch's transaction sees the table: read again when another connection
   committed since (PRAGMA data_version), checked once a batch. */
static int
tn_sync(struct sq_store *s, struct fr_err *err)
{
    if (s->tn_erasures != s->hot_erasures) { /* this connection erased (sqlite_erase.c) */
        s->tn_erasures = s->hot_erasures;
        sq_trace_forget(s);
    }
    if (s->tn_synced && s->tn_loaded)
        return FR_OK;
    int64_t version = sq_pragma_int(s->db, "PRAGMA data_version"); /* 0 unread: read again */
    if (!s->tn_loaded || version != s->tn_version) {
        int rc = tn_load(s, err);
        if (rc != FR_OK)
            return rc;
    }
    s->tn_version = version;
    s->tn_synced = true;
    return FR_OK;
}

/* Calls fn for each row of trace_convs_new of trace (by its hash: fn checks the row) until
   it returns non-zero (that value returned). */
static int
tn_each(struct sq_store *s, const char *trace, int (*fn)(void *ud, const struct sq_tn_slot *e),
        void *ud)
{
    if (s->tn_cap == 0)
        return 0;
    uint32_t h = (uint32_t)fr_fnv1a64(trace);
    for (size_t i = h & (s->tn_cap - 1); s->tn_slots[i].id != 0; i = (i + 1) & (s->tn_cap - 1))
        if (s->tn_slots[i].trace_h == h) {
            int rc = fn(ud, &s->tn_slots[i]);
            if (rc != 0)
                return rc;
        }
    return 0;
}

/* A candidate row read by its id: whether it is of trace (*conv then its conversation, owned,
   and *ts_ms its time; NULL when not). */
static int
tn_read(struct sq_store *s, int64_t id, const char *trace, char **conv, int64_t *ts_ms,
        struct fr_err *err)
{
    *conv = NULL;
    sqlite3_stmt *st = NULL;
    int rc = tl_stmt(s, TL_ROW, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), trace) == 0) {
        *conv = fr_strdup((const char *)sqlite3_column_text(st, 1));
        *ts_ms = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? FR_OK
               : sq_fail(s->db, rc, err, "reading a trace pair not merged yet");
}

struct tn_first {
    struct sq_store *s;
    const char *trace;
    int64_t since;
    char *best; /* owned */
    int64_t best_ts;
    struct fr_err *err;
};

/* A pair of the trace (conv, ts) kept as f's first if it is: earlier, or as early and first by
   conversation id */
static void
tn_offer(struct tn_first *f, const char *conv, int64_t ts)
{
    if (f->best == NULL || ts < f->best_ts || (ts == f->best_ts && strcmp(conv, f->best) < 0)) {
        free(f->best);
        f->best = fr_strdup(conv);
        f->best_ts = ts;
    }
}

static int
tn_first_cb(void *ud, const struct sq_tn_slot *e)
{
    struct tn_first *f = ud;
    char *conv;
    int64_t ts = 0;
    int rc = tn_read(f->s, e->id, f->trace, &conv, &ts, f->err);
    if (rc != FR_OK)
        return rc;
    if (conv != NULL && ts >= f->since)
        tn_offer(f, conv, ts);
    free(conv);
    return 0;
}

/* The trace's link within the window (*conv owned, NULL when none): its first pair since
   then (by time, then conversation id), merged or not. */
static int
tl_lookup(struct sq_store *s, const char *trace, int64_t now_ms, char **conv, struct fr_err *err)
{
    *conv = NULL;
    struct tn_first f = {s, trace, now_ms - FR_TRACE_LINK_WINDOW_MS, NULL, 0, err};
    sqlite3_stmt *st = NULL;
    int rc = tn_sync(s, err);
    if (rc != FR_OK || (rc = tl_stmt(s, TL_LOOKUP, &st, err)) != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f.since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        tn_offer(&f, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(f.best);
        return sq_fail(s->db, rc, err, "looking up a trace's conversation");
    }
    if ((rc = tn_each(s, trace, tn_first_cb, &f)) != FR_OK) {
        free(f.best);
        return rc;
    }
    *conv = f.best;
    return FR_OK;
}

/* A scan of what the store holds of a trace, merged or not: whether the pair (trace, conv) is
   one of them, and the trace's first pair since f.since. */
struct tn_scan {
    struct tn_first f;
    const char *conv;
    bool known;
};

static void
tn_scan_take(struct tn_scan *c, const char *conv, int64_t ts)
{
    c->known = c->known || strcmp(conv, c->conv) == 0;
    if (ts >= c->f.since)
        tn_offer(&c->f, conv, ts);
}

static int
tn_scan_cb(void *ud, const struct sq_tn_slot *e)
{
    struct tn_scan *c = ud;
    char *conv;
    int64_t ts = 0;
    int rc = tn_read(c->f.s, e->id, c->f.trace, &conv, &ts, c->f.err);
    if (rc == FR_OK && conv != NULL)
        tn_scan_take(c, conv, ts);
    free(conv);
    return rc;
}

/* Fills c (c->f.best owned by the caller) for its trace and conversation: one read of the
   trace's merged pairs (TL_LOOKUP from the start of time) and its pairs not merged yet. */
static int
tn_scan(struct tn_scan *c)
{
    struct sq_store *s = c->f.s;
    sqlite3_stmt *st = NULL;
    int rc = tl_stmt(s, TL_LOOKUP, &st, c->f.err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, c->f.trace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, INT64_MIN);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        tn_scan_take(c, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, c->f.err, "looking up a trace's conversation");
    return tn_each(s, c->f.trace, tn_scan_cb, c);
}

/*
 * Records the pair (trace, conv), once a batch (a trace's other conversations, rare, are
 * not remembered: their record finds the pair). A new pair that is the trace's first within
 * the window is its link when may_link: what was filed under the trace moves to conv at
 * commit (sq_trace_flush). A record of a pair already recorded in the batch costs one map
 * look-up.
 */
static int
tl_pair(struct sq_store *s, const char *trace, const char *conv, bool may_link, struct fr_err *err)
{
    if (trace == NULL || conv == NULL || *trace == '\0' || strcmp(trace, conv) == 0)
        return FR_OK;
    if (s->trace_pairs == NULL)
        s->trace_pairs = fr_strmap_new();
    bool created;
    void **slot = fr_strmap_slot(s->trace_pairs, trace, &created);
    if (!created && strcmp(*slot, conv) == 0)
        return FR_OK;
    if (created)
        *slot = fr_strdup(conv);
    if (sq_is_erased(s, conv)) /* a link named by a late span: kept without the id */
        conv = "";
    int64_t now_ms = fr_now_ms();
    /* the pair known already, and the trace's first pair in the window: one read */
    struct tn_scan c = {{s, trace, now_ms - FR_TRACE_LINK_WINDOW_MS, NULL, 0, err}, conv, false};
    int rc = tn_sync(s, err);
    if (rc == FR_OK)
        rc = tn_scan(&c);
    if (rc != FR_OK || c.known) {
        free(c.f.best);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if ((rc = tl_stmt(s, TL_APPEND, &st, err)) != FR_OK) {
        free(c.f.best);
        return rc;
    }
    bool linked = s->trace_links != NULL && fr_strmap_get(s->trace_links, trace) != NULL;
    int64_t ts_ms = now_ms + linked; /* after the batch's link, never tied with it */
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ts_ms);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(c.f.best);
        return sq_fail(s->db, rc, err, "recording a trace's conversation");
    }
    tn_add(s, sqlite3_last_insert_rowid(s->db), trace, conv, ts_ms);
    s->trace_pairs_added++;
    tn_offer(&c.f, conv, ts_ms);                              /* the new pair is a candidate too */
    if (may_link && !linked && strcmp(c.f.best, conv) == 0) { /* the trace's first: its link */
        if (s->trace_links == NULL)
            s->trace_links = fr_strmap_new();
        *fr_strmap_slot(s->trace_links, trace, &created) = c.f.best;
        return FR_OK;
    }
    free(c.f.best);
    return FR_OK;
}

/*
 * A step of merging trace_convs_new into trace_convs: started once it holds SQ_TRACE_MERGE_ROWS
 * pairs, or at the minute's pass (due) once its oldest is SQ_TRACE_MERGE_AGE_MS old; each step
 * the next SQ_TRACE_MERGE_CHUNK of the pairs it held then, in key order (a pair in both keeps
 * the earlier time); when all are in, they are deleted and tn_slots read again (the pairs
 * appended since).
 */
static int
tn_merge_step(struct sq_store *s, int64_t now_ms, bool due, struct fr_err *err)
{
    int rc = tn_sync(s, err);
    if (rc != FR_OK)
        return rc;
    if (s->tn_merge_upto == 0) {
        if (s->tn_rows < SQ_TRACE_MERGE_ROWS &&
            !(due && s->tn_rows > 0 && now_ms - s->tn_oldest_ms >= SQ_TRACE_MERGE_AGE_MS))
            return FR_OK;
        s->tn_merge_upto = s->tn_max_id;
    }
    sqlite3_stmt *q = NULL, *ins = NULL;
    if ((rc = tl_stmt(s, TL_CHUNK, &q, err)) != FR_OK ||
        (rc = tl_stmt(s, TL_MERGE_ONE, &ins, err)) != FR_OK)
        return rc;
    sqlite3_bind_int64(q, 1, s->tn_merge_upto);
    if (s->tn_merge_trace != NULL) {
        sqlite3_bind_text(q, 2, s->tn_merge_trace, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, s->tn_merge_conv, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(q, 2);
        sqlite3_bind_null(q, 3);
    }
    sqlite3_bind_int64(q, 4, SQ_TRACE_MERGE_CHUNK);
    int n = 0, src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        for (int i = 0; i < 3; i++)
            sqlite3_bind_value(ins, i + 1, sqlite3_column_value(q, i));
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) {
            sqlite3_reset(q);
            return sq_fail(s->db, rc, err, "merging trace pairs");
        }
        if (++n == SQ_TRACE_MERGE_CHUNK) { /* where the next step starts */
            free(s->tn_merge_trace);
            free(s->tn_merge_conv);
            s->tn_merge_trace = fr_strdup((const char *)sqlite3_column_text(q, 0));
            s->tn_merge_conv = fr_strdup((const char *)sqlite3_column_text(q, 1));
        }
    }
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sq_fail(s->db, src, err, "merging trace pairs");
    if (n == SQ_TRACE_MERGE_CHUNK)
        return FR_OK;
    sqlite3_stmt *del = NULL;
    if ((rc = tl_stmt(s, TL_MERGE_DONE, &del, err)) != FR_OK)
        return rc;
    sqlite3_bind_int64(del, 1, s->tn_merge_upto);
    rc = sqlite3_step(del);
    sqlite3_reset(del);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "merging trace pairs");
    sq_trace_forget(s);
    return tn_sync(s, err);
}

int
sq_link_trace(void *ctx, const char *trace_id, const char *conv_id, struct fr_err *err)
{
    return tl_pair(ctx, trace_id, conv_id, true, err);
}

int
sq_trace_note(struct sq_store *s, const struct fr_record *rec, struct fr_err *err)
{
    const char *conv = rec->ids[FR_ID_CONV], *trace = rec->ids[FR_ID_TRACE];
    if (conv == NULL || trace == NULL)
        return FR_OK;
    if (strcmp(conv, trace) != 0) /* a row restored from an archive links nothing */
        return tl_pair(s, trace, conv, !rec->restored, err);
    if (!rec->restored) { /* filed under its trace: a link may exist already */
        if (s->trace_orphans == NULL)
            s->trace_orphans = fr_strmap_new();
        bool created;
        *fr_strmap_slot(s->trace_orphans, trace, &created) = (void *)1;
    }
    return FR_OK;
}

struct tl_ctx {
    struct sq_store *s;
    struct fr_err *err;
    int64_t now_ms;
};

/* A link learned in the batch: what was filed under the trace moves. */
static int
tl_learn(void *ud, const char *trace, void *value)
{
    struct tl_ctx *c = ud;
    return tl_reassign(c->s, trace, value, c->err);
}

static int
tl_adopt(void *ud, const char *trace, void *value)
{
    (void)value;
    struct tl_ctx *c = ud;
    if (c->s->trace_links != NULL && fr_strmap_get(c->s->trace_links, trace) != NULL)
        return FR_OK; /* learned in this batch: moved by tl_learn */
    char *conv = NULL;
    int rc = tl_lookup(c->s, trace, c->now_ms, &conv, c->err);
    if (rc == FR_OK && conv != NULL)
        rc = tl_reassign(c->s, trace, conv, c->err);
    free(conv);
    return rc;
}

/*
 * One step of pruning the pairs: from where the last one ended, the next ones past the
 * window and older than hot's oldest event (twice as many as were recorded since, so that it
 * keeps up; at least 5,000, at most 50,000: ~0.1 s), those whose events all left hot
 * deleted; from the start again once a step reaches that bound.
 */
static int
tl_prune_pairs(struct sq_store *s, int64_t now_ms, struct fr_err *err)
{
    sqlite3_stmt *step = NULL, *del = NULL;
    int deleted, rc = tl_stmt(s, TL_PRUNE_STEP, &step, err);
    if (rc == FR_OK)
        rc = tl_stmt(s, TL_PRUNE, &del, err);
    return rc != FR_OK ? rc
                       : sq_prune_step(s->db, step, del, now_ms - FR_TRACE_LINK_WINDOW_MS,
                                       &s->trace_prune_from, &s->trace_pairs_added, &deleted,
                                       "pruning trace pairs", err);
}

int
sq_trace_flush(struct sq_store *s, struct fr_err *err)
{
    struct tl_ctx c = {s, err, fr_now_ms()};
    int rc = FR_OK;
    if (s->trace_links != NULL && fr_strmap_count(s->trace_links) > 0)
        rc = fr_strmap_each(s->trace_links, tl_learn, &c);
    if (rc == FR_OK && s->trace_orphans != NULL && fr_strmap_count(s->trace_orphans) > 0)
        rc = fr_strmap_each(s->trace_orphans, tl_adopt, &c);
    bool minute = c.now_ms - s->trace_pruned_ms >= 60000;
    if (rc == FR_OK && (s->tn_rows > 0 || s->tn_merge_upto > 0 || minute))
        rc = tn_merge_step(s, c.now_ms, minute, err);
    if (rc == FR_OK && minute) { /* once a minute */
        rc = tl_prune_pairs(s, c.now_ms, err);
        sqlite3_stmt *st = NULL;
        if (rc == FR_OK && (rc = tl_stmt(s, TL_PRUNE_PARTS, &st, err)) == FR_OK) {
            sqlite3_bind_int64(st, 1, c.now_ms - FR_TRACE_LINK_WINDOW_MS);
            rc = sqlite3_step(st) == SQLITE_DONE
                     ? FR_OK
                     : sq_fail(s->db, sqlite3_errcode(s->db), err, "pruning parked parts");
            sqlite3_reset(st);
            s->trace_pruned_ms = c.now_ms;
            sq_parts_count(s);
        }
    }
    sq_trace_discard(s);
    return rc;
}

void
sq_trace_discard(struct sq_store *s)
{
    if (s->trace_links != NULL)
        fr_strmap_clear(s->trace_links, free);
    if (s->trace_orphans != NULL)
        fr_strmap_clear(s->trace_orphans, NULL);
    if (s->trace_pairs != NULL)
        fr_strmap_clear(s->trace_pairs, free);
    s->tn_synced = false;
}

/* The index of trace_convs_new read again at the next use, a merge in progress dropped. */
static void
sq_trace_forget(struct sq_store *s)
{
    s->tn_loaded = false;
    s->tn_merge_upto = 0;
    free(s->tn_merge_trace);
    free(s->tn_merge_conv);
    s->tn_merge_trace = s->tn_merge_conv = NULL;
}

void
sq_trace_rollback(struct sq_store *s)
{
    sq_trace_discard(s);
    sq_trace_forget(s); /* its appends and a merge's step are undone: read again */
}

void
sq_trace_free(struct sq_store *s)
{
    fr_strmap_free(s->trace_links, free);
    fr_strmap_free(s->trace_orphans, NULL);
    fr_strmap_free(s->trace_pairs, free);
    free(s->tn_slots);
    sq_trace_forget(s);
    for (int i = 0; i < TL_COUNT_ALL; i++)
        sqlite3_finalize(s->trace_st[i]);
}

int
sq_trace_links(void *ctx, int64_t since_ms,
               int (*cb)(void *ud, const char *trace_id, const char *conv_id, int64_t ts_ms),
               void *ud, struct fr_err *err)
{
    struct sq_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT trace_id, conv_id, ts_ms FROM trace_convs WHERE ts_ms >= ?1"
                                " AND conv_id <> '' UNION ALL SELECT trace_id, conv_id, ts_ms"
                                " FROM trace_convs_new WHERE ts_ms >= ?1 AND conv_id <> ''"
                                " ORDER BY ts_ms",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s->db, rc, err, "reading trace links");
    sqlite3_bind_int64(st, 1, since_ms);
    int cbrc = FR_OK;
    while (cbrc == FR_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        cbrc = cb(ud, (const char *)sqlite3_column_text(st, 0),
                  (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
    int frc = cbrc != FR_OK ? cbrc
              : rc == SQLITE_DONE || rc == SQLITE_ROW
                  ? FR_OK
                  : sq_fail(s->db, rc, err, "reading trace links");
    sqlite3_finalize(st);
    return frc;
}
