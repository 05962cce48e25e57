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
    [PT_TARGET] = "SELECT id, body FROM events WHERE trace_id = ?1 AND span_id = ?2"
                  " AND kind = 'provider' ORDER BY id LIMIT 1",
    [PT_UPDATE] = "UPDATE events SET body = ?2 WHERE id = ?1",
    [PT_PARK] = "INSERT INTO event_parts(trace_id, span_id, ts_ms, body) VALUES(?1, ?2, ?3, ?4)",
    [PT_PARKED] = "SELECT rowid, body FROM event_parts WHERE trace_id = ?1 AND span_id = ?2"
                  " ORDER BY rowid",
    [PT_UNPARK] = "DELETE FROM event_parts WHERE trace_id = ?1 AND span_id = ?2",
};

static int
pt_stmt(struct sq_store *s, int which, sqlite3_stmt **out, struct fr_err *err)
{
    if (s->parts_st[which] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, pt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->parts_st[which], NULL);
        if (rc != SQLITE_OK)
            return sq_fail(s->db, rc, err, "preparing event parts");
    }
    *out = s->parts_st[which];
    sqlite3_reset(*out);
    sqlite3_clear_bindings(*out);
    return FR_OK;
}

/* Appends the items of from (an array) to into[key] (created), skipping equal ones. */
static void
append_unique(json_t *into, const char *key, const json_t *from)
{
    if (!json_is_array(from))
        return;
    json_t *arr = json_object_get(into, key);
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(into, key, arr);
    }
    size_t i, j;
    json_t *v, *have;
    json_array_foreach(from, i, v)
    {
        bool dup = false;
        json_array_foreach(arr, j, have) dup = dup || json_equal(have, v);
        if (!dup)
            json_array_append(arr, v);
    }
}

/* The side (request or response) of data, created when missing; NULL when it is not an object. */
static json_t *
side(json_t *data, const char *name)
{
    json_t *o = json_object_get(data, name);
    if (o == NULL) {
        o = json_object();
        json_object_set_new(data, name, o);
    }
    return json_is_object(o) ? o : NULL;
}

/* body with the part's messages merged in; NULL when either is not an envelope. */
static char *
merge(const char *body, size_t len, const char *part, size_t part_len)
{
    json_t *b = json_loadb(body, len, 0, NULL), *p = json_loadb(part, part_len, 0, NULL);
    char *out = NULL;
    json_t *bd = json_object_get(b, "data"), *pd = json_object_get(p, "data");
    if (json_is_object(bd) && json_is_object(pd)) {
        static const char *const sides[] = {"request", "response"};
        for (int i = 0; i < 2; i++) {
            json_t *from = json_object_get(pd, sides[i]);
            if (!json_is_object(from))
                continue;
            json_t *into = side(bd, sides[i]);
            if (into == NULL)
                continue;
            append_unique(into, "messages", json_object_get(from, "messages"));
            const char *k;
            json_t *v;
            json_object_foreach(from, k, v) if (strcmp(k, "messages") != 0 &&
                                                json_object_get(into, k) == NULL)
                json_object_set(into, k, v); /* system instructions, ... */
        }
        out = json_dumps(b, JSON_COMPACT);
    }
    json_decref(b);
    json_decref(p);
    return out;
}

/* Merges part into the event with this id (its body as given); FR_OK when written. */
static int
pt_apply(struct sq_store *s, int64_t id, const char *body, size_t len, const char *part,
         size_t part_len, struct fr_err *err)
{
    char *merged = merge(body, len, part, part_len);
    if (merged == NULL)
        return FR_OK; /* nothing to merge into: the part is dropped, the event untouched */
    sqlite3_stmt *st = NULL;
    int rc = pt_stmt(s, PT_UPDATE, &st, err);
    if (rc == FR_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, merged, -1, free);
        merged = NULL;
        rc = sqlite3_step(st) == SQLITE_DONE
                 ? FR_OK
                 : sq_fail(s->db, sqlite3_errcode(s->db), err, "merging an event part");
        sqlite3_reset(st);
    }
    free(merged);
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
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        char *body = fr_malloc(len + 1);
        memcpy(body, sqlite3_column_text(st, 1), len);
        body[len] = '\0';
        sqlite3_reset(st);
        rc = pt_apply(s, id, body, len, rec->body, rec->body_len, err);
        free(body);
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
    /* the event's body, merged with each parked part in turn */
    char *body = fr_malloc(rec->body_len + 1);
    memcpy(body, rec->body, rec->body_len);
    body[rec->body_len] = '\0';
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *merged = merge(body, strlen(body), (const char *)sqlite3_column_text(st, 1),
                             (size_t)sqlite3_column_bytes(st, 1));
        if (merged != NULL) {
            free(body);
            body = merged;
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(body);
        return sq_fail(s->db, rc, err, "reading parked event parts");
    }
    rc = FR_OK;
    if (n > 0) {
        if ((rc = pt_stmt(s, PT_UPDATE, &st, err)) == FR_OK) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, body, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE
                     ? FR_OK
                     : sq_fail(s->db, sqlite3_errcode(s->db), err, "merging parked parts");
            sqlite3_reset(st);
        }
        if (rc == FR_OK && (rc = pt_stmt(s, PT_UNPARK, &st, err)) == FR_OK) {
            sqlite3_bind_text(st, 1, trace, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, span, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE
                     ? FR_OK
                     : sq_fail(s->db, sqlite3_errcode(s->db), err, "unparking event parts");
            sqlite3_reset(st);
            s->parts_parked -= n;
        }
    }
    free(body);
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
