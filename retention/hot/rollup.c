/*
 * retention/hot/rollup.c - per-minute rollups maintained at ingest, and SEM stream
 * ordering anomalies.
 *
 * Rollups live in one table keyed (dim, minute_ms, k1, k2):
 *   dim          k1                k2            counts
 *   provider     provider          model         calls, errors, tokens, latency
 *   finish       finish_reason     model         calls, errors, tokens, latency
 *                (provider calls that named one)
 *   tool         tool name         ""            calls, errors, latency
 *   transport    HTTP path or "-"  status        calls, errors, latency
 *   error        error_class       error_code    calls (= errors)
 *   sem_anomaly  anomaly           ""            calls
 *   otel         provider          model         calls, errors, tokens, latency
 *                (OTLP GenAI metrics, fr_store_rollup_delta, not from events)
 * Latency is a fixed-bucket histogram (fr_hist_upper_ms) plus count, sum
 * and max, so percentiles can be estimated and sums stay exact. A batch's
 * deltas are folded in memory and upserted once per key at commit, in the
 * same transaction as the events they count.
 *
 * Also here: the timeline entity index (first/last seen version and time of
 * every entity of a conversation; versions by min/max, so late arrivals do
 * not roll it back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/mem.h"
#include "retention/hot/sqlite_int.h"
#include "retention/hot/store.h"

const int64_t fr_hist_upper_ms[FR_HIST_BUCKETS - 1] = {10,   50,   100,  250,   500,
                                                       1000, 2500, 5000, 10000, 30000};

struct sq_roll {
    const char *dim; /* static */
    int64_t minute;
    char *k1, *k2;
    struct fr_rollup_row d; /* the batch's delta (its k1, k2 unused) */
};

static const char roll_upsert_sql[] =
    "INSERT INTO rollups VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    " ON CONFLICT(dim, minute_ms, k1, k2) DO UPDATE SET"
    " calls = calls + excluded.calls, errors = errors + excluded.errors,"
    " input_tokens = input_tokens + excluded.input_tokens,"
    " output_tokens = output_tokens + excluded.output_tokens,"
    " cached_tokens = cached_tokens + excluded.cached_tokens,"
    " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,"
    " lat_count = lat_count + excluded.lat_count, lat_sum_ms = lat_sum_ms + excluded.lat_sum_ms,"
    " lat_max_ms = MAX(lat_max_ms, excluded.lat_max_ms),"
    " h0 = h0 + excluded.h0, h1 = h1 + excluded.h1, h2 = h2 + excluded.h2,"
    " h3 = h3 + excluded.h3, h4 = h4 + excluded.h4, h5 = h5 + excluded.h5,"
    " h6 = h6 + excluded.h6, h7 = h7 + excluded.h7, h8 = h8 + excluded.h8,"
    " h9 = h9 + excluded.h9, h10 = h10 + excluded.h10";

static const char sem_probe_sql[] =
    "SELECT (SELECT max(seq) FROM events WHERE kind = 'sem' AND stream_id = ?1 AND id <> ?3),"
    " EXISTS(SELECT 1 FROM events WHERE kind = 'sem' AND stream_id = ?1 AND seq = ?2"
    " AND id <> ?3)";

static const char ins_anomaly_sql[] =
    "INSERT INTO sem_anomalies(event_row, ts_ms, conv_id, stream_id, anomaly, seq, expected)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";

static const char upsert_entity_sql[] =
    "INSERT INTO timeline_entities(conv_id, entity_id, entity_kind, first_version, last_version,"
    " first_seen_ms, last_seen_ms, upserts) VALUES(?1, ?2, ?3, ?4, ?4, ?5, ?5, 1)"
    " ON CONFLICT(conv_id, entity_id) DO UPDATE SET"
    " entity_kind = COALESCE(excluded.entity_kind, entity_kind),"
    " first_version = MIN(COALESCE(first_version, excluded.first_version),"
    "   COALESCE(excluded.first_version, first_version)),"
    " last_version = MAX(COALESCE(last_version, excluded.last_version),"
    "   COALESCE(excluded.last_version, last_version)),"
    " first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),"
    " last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),"
    " upserts = upserts + 1";

int
sq_timeline_upsert(struct sq_store *s, const struct fr_record *rec, struct fr_err *err)
{
    if (!rec->entity_track)
        return FR_OK;
    sqlite3_stmt *st = s->upsert_entity;
    sqlite3_bind_text(st, 1, rec->ids[FR_ID_CONV] ? rec->ids[FR_ID_CONV] : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rec->entity_id, -1, SQLITE_STATIC);
    if (rec->entity_kind)
        sqlite3_bind_text(st, 3, rec->entity_kind, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (rec->has_version)
        sqlite3_bind_int64(st, 4, rec->version);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, rec->ts_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "updating the timeline entity index");
    return FR_OK;
}

int
sq_rollup_prepare(struct sq_store *s, struct fr_err *err)
{
    int rc;
    if ((rc = sqlite3_prepare_v3(s->db, roll_upsert_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->upsert_roll, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(s->db, sem_probe_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->sem_probe,
                                 NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(s->db, ins_anomaly_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->ins_anomaly, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(s->db, upsert_entity_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->upsert_entity, NULL)) != SQLITE_OK)
        return sq_fail(s->db, rc, err, "preparing rollup statements");
    s->rolls = fr_strmap_new();
    return FR_OK;
}

static void
roll_free(void *p)
{
    struct sq_roll *r = p;
    free(r->k1);
    free(r->k2);
    free(r);
}

void
sq_rollup_finalize(struct sq_store *s)
{
    sqlite3_finalize(s->upsert_roll);
    sqlite3_finalize(s->sem_probe);
    sqlite3_finalize(s->ins_anomaly);
    free(s->sem_known);
    s->sem_known = NULL;
    sqlite3_finalize(s->upsert_entity);
    fr_strmap_free(s->rolls, roll_free);
    s->rolls = NULL;
}

/*
 * The batch's entry of (dim, minute of ts, k1, k2), made when new. Called for
 * each rollup of every stored event, on the writer's thread: an entry just
 * used for the same dimension is taken without a look-up (a batch's records
 * mostly share their minute, provider and model), and the map's key is built
 * by copies, not printf.
 */
static struct sq_roll *
roll_get(struct sq_store *s, const char *dim, int64_t ts, const char *k1, const char *k2)
{
    int64_t minute = ts - ts % 60000;
    struct sq_roll **memo = &s->roll_memo[((uintptr_t)dim >> 4) % SQ_ROLL_MEMO];
    struct sq_roll *m = *memo;
    if (m != NULL && m->dim == dim && m->minute == minute && strcmp(m->k1, k1) == 0 &&
        strcmp(m->k2, k2) == 0)
        return m;
    char key[600];
    size_t k = 0;
    fr_str_append(key, sizeof key, &k, dim);
    key[k++] = '\x1f';
    k += fr_dec_encode(minute, key + k);
    key[k++] = '\x1f';
    fr_str_append(key, sizeof key, &k, k1);
    if (k < sizeof key - 1)
        key[k++] = '\x1f';
    fr_str_append(key, sizeof key, &k, k2);
    bool created;
    void **slot = fr_strmap_slot(s->rolls, key, &created);
    if (created) {
        struct sq_roll *r = fr_calloc(1, sizeof *r);
        r->dim = dim;
        r->minute = minute;
        r->k1 = fr_strdup(k1);
        r->k2 = fr_strdup(k2);
        *slot = r;
    }
    return *memo = *slot;
}

/* The batch's entries gone: so are those remembered. */
static void
roll_clear(struct sq_store *s)
{
    fr_strmap_clear(s->rolls, roll_free);
    memset(s->roll_memo, 0, sizeof s->roll_memo);
}

struct fr_rollup_row *
sq_roll_delta(void *roll)
{
    return &((struct sq_roll *)roll)->d;
}

static void
roll_latency(struct sq_roll *r, const struct fr_record *rec)
{
    if (!rec->has_duration)
        return;
    int64_t d = rec->duration_ms < 0 ? 0 : rec->duration_ms;
    int b = 0;
    while (b < FR_HIST_BUCKETS - 1 && d > fr_hist_upper_ms[b])
        b++;
    r->d.hist[b]++;
    r->d.lat_count++;
    r->d.lat_sum_ms += d;
    if (d > r->d.lat_max_ms)
        r->d.lat_max_ms = d;
}

void
sq_rollup_add(struct sq_store *s, const struct fr_record *rec)
{
    /* the rows are the collectors' decision (fr_collect_derive); here they are only counted */
    for (size_t i = 0; i < rec->nrollups; i++) {
        const struct fr_rollup_key *k = &rec->rollups[i];
        struct sq_roll *r = roll_get(s, k->dim, rec->ts_ms, fr_record_field(rec, k->k1),
                                     fr_record_field(rec, k->k2));
        r->d.calls++;
        r->d.errors += rec->has_error;
        if (k->tokens)
            for (int t = 0; t < FR_TOKEN_COUNT; t++)
                r->d.tokens[t] += rec->tokens[t];
        if (k->latency)
            roll_latency(r, rec);
    }
}

int
sq_rollup_upsert(struct sq_store *s, const char *dim, int64_t minute, const char *k1,
                 const char *k2, const struct fr_rollup_row *d)
{
    sqlite3_stmt *st = s->upsert_roll;
    sqlite3_bind_text(st, 1, dim, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, minute);
    sqlite3_bind_text(st, 3, k1, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k2, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, d->calls);
    sqlite3_bind_int64(st, 6, d->errors);
    for (int i = 0; i < FR_TOKEN_COUNT; i++)
        sqlite3_bind_int64(st, 7 + i, d->tokens[i]);
    sqlite3_bind_int64(st, 11, d->lat_count);
    sqlite3_bind_int64(st, 12, d->lat_sum_ms);
    sqlite3_bind_int64(st, 13, d->lat_max_ms);
    for (int i = 0; i < FR_HIST_BUCKETS; i++)
        sqlite3_bind_int64(st, 14 + i, d->hist[i]);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

static int
roll_upsert_one(void *ud, const char *key, void *value)
{
    (void)key;
    struct sq_store *s = ud;
    const struct sq_roll *r = value;
    int rc = sq_rollup_upsert(s, r->dim, r->minute, r->k1, r->k2, &r->d);
    return rc == SQLITE_DONE ? 0 : rc;
}

int
sq_rollup_flush(struct sq_store *s, struct fr_err *err)
{
    int rc = fr_strmap_each(s->rolls, roll_upsert_one, s);
    roll_clear(s);
    if (rc != 0)
        return sq_fail(s->db, rc, err, "updating rollups");
    return FR_OK;
}

void
sq_rollup_discard(struct sq_store *s)
{
    roll_clear(s);
}

/*
 * The probe below reads a stream's rows twice (its largest seq, and one
 * equal to the event's): a quarter of fr-gen's events are SEM, and a
 * streamed answer is dozens of them. Within one transaction the writer
 * remembers each stream's largest seq it stored or read (nothing else
 * writes to the database meanwhile: the connection holds the write lock,
 * and this connection's erasures and archive moves are transactions of
 * their own), so the next chunk of a stream in order (seq = that + 1) is
 * known to be neither a duplicate, nor a gap, nor out of order without a
 * read. Any other seq is probed as before; entries of an earlier
 * transaction count for nothing.
 */
static struct sq_sem_known *
sem_slot(struct sq_store *s, const char *stream, uint64_t *h)
{
    if (s->sem_known == NULL)
        s->sem_known = fr_calloc(SQ_SEM_KNOWN, sizeof *s->sem_known);
    *h = fr_fnv1a64(stream);
    *h = *h ? *h : 1;
    return &s->sem_known[*h & (SQ_SEM_KNOWN - 1)];
}

void
sq_sem_forget(struct sq_store *s)
{
    s->sem_txn++;
}

void
sq_sem_restored(struct sq_store *s, const struct fr_record *rec)
{
    const char *stream = rec->ids[FR_ID_STREAM];
    if (rec->kind != FR_KIND_SEM || stream == NULL || !rec->has_seq)
        return;
    uint64_t h;
    struct sq_sem_known *k = sem_slot(s, stream, &h);
    if (k->h == h && k->txn == s->sem_txn && rec->seq > k->max)
        k->max = rec->seq;
}

int
sq_sem_check(struct sq_store *s, const struct fr_record *rec, int64_t rowid, struct fr_err *err)
{
    const char *stream = rec->ids[FR_ID_STREAM];
    if (!rec->order_check || stream == NULL || !rec->has_seq)
        return FR_OK;
    uint64_t h;
    struct sq_sem_known *k = sem_slot(s, stream, &h);
    bool known = k->h == h && k->txn == s->sem_txn;
    if (known && k->max < INT64_MAX && rec->seq == k->max + 1) {
        k->max = rec->seq; /* the next in order: nothing to record */
        return FR_OK;
    }
    sqlite3_stmt *st = s->sem_probe;
    sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, rec->seq);
    sqlite3_bind_int64(st, 3, rowid);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return sq_fail(s->db, rc, err, "checking SEM stream order");
    }
    bool first = sqlite3_column_type(st, 0) == SQLITE_NULL;
    int64_t max = sqlite3_column_int64(st, 0);
    bool dup = sqlite3_column_int(st, 1) != 0;
    sqlite3_reset(st);
    /* the stream's largest seq now, this event's included */
    *k = (struct sq_sem_known){
        .h = h, .txn = s->sem_txn, .max = first || rec->seq > max ? rec->seq : max};
    const char *anomaly = NULL;
    if (first)
        return FR_OK; /* a stream may start at any seq */
    if (dup)
        anomaly = "duplicate_seq";
    else if (rec->seq > max + 1)
        anomaly = "seq_gap";
    else if (rec->seq < max)
        anomaly = "out_of_order";
    if (anomaly == NULL)
        return FR_OK;
    st = s->ins_anomaly;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int64(st, 2, rec->ts_ms);
    if (rec->ids[FR_ID_CONV])
        sqlite3_bind_text(st, 3, rec->ids[FR_ID_CONV], -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, stream, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, anomaly, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, rec->seq);
    sqlite3_bind_int64(st, 7, max + 1);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s->db, rc, err, "recording a SEM anomaly");
    roll_get(s, "sem_anomaly", rec->ts_ms, anomaly, "")->d.calls++;
    return FR_OK;
}
