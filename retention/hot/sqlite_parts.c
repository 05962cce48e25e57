/*
 * retention/hot/sqlite_parts.c - parts of a provider event that arrive on
 * their own: OTLP log records carrying a model call's messages (the
 * official instrumentations send prompts and completions as log events,
 * gen_ai.user.message, gen_ai.choice, ..., with the trace and span of the
 * call's span). A part is a record with `part` set, data holding
 * request.messages and/or response.messages (already validated and
 * redacted like any event); it is merged into the provider event of the
 * same trace and span — at once when that event is stored, or parked in
 * event_parts until it is, whichever comes first. Messages append in
 * arrival order; one already there (a re-sent log record) is not added
 * twice. Parked parts are pruned with the trace links, FR_TRACE_LINK_WINDOW_MS
 * after they were parked.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/wire.h"
#include "retention/hot/sqlite_int.h"

enum {
    PT_TARGET, /* the provider event of a trace and span */
    PT_UPDATE, /* its new body */
    PT_PARK,   /* a part whose event is not stored yet */
    PT_PARKED, /* the parts of a trace and span */
    PT_UNPARK,
    PT_COUNT_ALL
};

static const char *const pt_sql[PT_COUNT_ALL] = {
    [PT_TARGET] = SQ_PART_TARGET_SQL,
    [PT_UPDATE] = "UPDATE events SET body = fr_zbody(?2) WHERE id = ?1",
    [PT_PARK] = "INSERT INTO event_parts(trace_id, span_id, ts_ms, body) VALUES(?1, ?2, ?3, ?4)",
    [PT_PARKED] = "SELECT rowid, body FROM event_parts WHERE trace_id = ?1 AND span_id = ?2"
                  " ORDER BY rowid",
    [PT_UNPARK] = "DELETE FROM event_parts WHERE trace_id = ?1 AND span_id = ?2",
};

static int
pt_stmt(struct sq_store *s, int which, sqlite3_stmt **out, struct fr_err *err)
{
    return sq_cached(s->db, &s->parts_st[which], pt_sql[which], out, err);
}

/* The part's messages merged into the event's envelope b (a tree); false when either is not
   an envelope with data. */
static bool
merge_into(json_t *b, const char *part, size_t part_len)
{
    json_t *p = fr_wire_load_body(part, part_len);
    bool ok = fr_wire_merge_part(json_object_get(b, "data"), json_object_get(p, "data"), true);
    json_decref(p);
    return ok;
}

/* Steps a statement whose parameters are the trace and span ids. */
static int
pt_run(struct sq_store *s, int which, const char *trace, const char *span, struct fr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pt_stmt(s, which, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, span, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, pt_sql[which]);
}

/* Writes the envelope b as the body of the event with this id. */
static int
pt_write(struct sq_store *s, int64_t id, const json_t *b, struct fr_err *err)
{
    char *body = json_dumps(b, JSON_COMPACT);
    sqlite3_stmt *st = NULL;
    int rc = body ? pt_stmt(s, PT_UPDATE, &st, err) : FR_OK; /* NULL: left as it was */
    if (body != NULL && rc == FR_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, body, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        rc = rc == SQLITE_DONE ? FR_OK : sq_fail(s->db, rc, err, "merging an event part");
    }
    free(body);
    return rc;
}

int
sq_part_put(struct sq_store *s, const struct fr_record *rec, int64_t now_ms, struct fr_err *err)
{
    const char *trace = rec->ids[FR_ID_TRACE], *span = rec->ids[FR_ID_SPAN];
    if (trace == NULL || span == NULL)
        return FR_OK; /* nothing to attach it to */
    sqlite3_stmt *st = NULL;
    int rc = pt_stmt(s, PT_TARGET, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, span, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        json_t *b = fr_wire_load_body((const char *)sqlite3_column_text(st, 1),
                                      (size_t)sqlite3_column_bytes(st, 1));
        sqlite3_reset(st);
        /* nothing to merge into: the part is dropped, the event untouched */
        rc = merge_into(b, rec->body, rec->body_len) ? pt_write(s, id, b, err) : FR_OK;
        json_decref(b);
        return rc;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "finding an event part's event");
    if ((rc = pt_stmt(s, PT_PARK, &st, err)) != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, span, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms); /* when parked: pruned FR_TRACE_LINK_WINDOW_MS after */
    sqlite3_bind_text(st, 4, rec->body, (int)rec->body_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "parking an event part");
    s->parts_parked++;
    return FR_OK;
}

int
sq_parts_adopt(struct sq_store *s, const struct fr_record *rec, int64_t id, struct fr_err *err)
{
    const char *trace = rec->ids[FR_ID_TRACE], *span = rec->ids[FR_ID_SPAN];
    if (s->parts_parked <= 0 || rec->kind != FR_KIND_PROVIDER || trace == NULL || span == NULL)
        return FR_OK;
    sqlite3_stmt *st = NULL;
    int rc = pt_stmt(s, PT_PARKED, &st, err);
    if (rc != FR_OK)
        return rc;
    sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, span, -1, SQLITE_STATIC);
    /* the event's envelope parsed once, every parked part merged in, written once */
    json_t *b = NULL;
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (b == NULL)
            b = fr_wire_load_body(rec->body, rec->body_len);
        merge_into(b, (const char *)sqlite3_column_text(st, 1),
                   (size_t)sqlite3_column_bytes(st, 1));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        rc = sq_fail(s->db, rc, err, "reading parked event parts");
    else if (n == 0)
        rc = FR_OK;
    else if ((rc = pt_write(s, id, b, err)) == FR_OK &&
             (rc = pt_run(s, PT_UNPARK, trace, span, err)) == FR_OK)
        s->parts_parked -= n;
    json_decref(b);
    return rc;
}

void
sq_parts_count(struct sq_store *s)
{
    sqlite3_stmt *st = NULL;
    s->parts_parked = 1; /* unknown: look */
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM event_parts", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->parts_parked = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
}

void
sq_parts_free(struct sq_store *s)
{
    for (int i = 0; i < PT_COUNT_ALL; i++)
        sqlite3_finalize(s->parts_st[i]);
}
