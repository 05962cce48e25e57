/*
 * retention/hot/postgres.c - the fleet store: a central PostgreSQL that every
 * sidecar ships its committed events into (agent/ship.c), read by the same
 * queries as the embedded store (`--db postgres://...`, the query API).
 *
 * Schema (pg_migrations, versioned in fr_meta like SQLite's user_version):
 *  - events: partitioned by day on ts_ms (a partition per UTC day, created
 *    on first use, named events_pYYYYMMDD), so that central retention
 *    detaches or drops whole days (docs/fleet.md). Keyed (conv_id, ekey,
 *    ts_ms): conv_id leads every key so it can be the distribution column
 *    of a sharded PostgreSQL; ekey is the producer's event id when there is
 *    one (a retry sent to two replicas is one event), else host/row/ingest
 *    time of the sidecar's row. B-tree indexes only where a query looks an
 *    id up (trace, request, session); BRIN on time.
 *  - conversations, rollups: one row per conversation (per minute and key)
 *    and host, merged at read time across hosts.
 *  - ship_cursors: per sidecar store, the last row id stored, moved in the
 *    transaction that stores the rows: a batch is in whole or not at all,
 *    and a batch sent again (the agent killed after the commit, before it
 *    learned of it) inserts nothing and counts nothing twice.
 * Every value is sent as a parameter or in COPY's text format, never spliced
 * into SQL. The location (a libpq URI) may hold a password: messages name it
 * without its credentials (pg_safe_url).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/hot/pg_int.h"
#include "retention/hot/store.h"

static const char *const pg_migrations[] = {
    /* version 1 */
    "INSERT INTO fr_meta VALUES ('store_id', substr(md5(random()::text || clock_timestamp()::text),"
    " 1, 16));"
    "CREATE TABLE events ("
    " gid bigserial NOT NULL,"
    " conv_id text NOT NULL, ts_ms bigint NOT NULL, ekey text NOT NULL,"
    " host text NOT NULL, src_id bigint NOT NULL, ingested_ms bigint NOT NULL,"
    " kind text NOT NULL, seq bigint,"
    " session_id text, turn_id text, run_id text, request_id text, stream_id text,"
    " event_id text, trace_id text, span_id text, runtime_key text, inference_id text,"
    " status text, provider text, model text, tool text, duration_ms bigint,"
    " error_class text, error_code text, error_message text,"
    " body text NOT NULL, policy text,"
    " input_tokens bigint, output_tokens bigint, cached_tokens bigint, reasoning_tokens bigint,"
    " panic boolean NOT NULL, shipped_ms bigint NOT NULL,"
    " PRIMARY KEY (conv_id, ekey, ts_ms)) PARTITION BY RANGE (ts_ms);"
    "CREATE INDEX events_ts ON events USING brin (ts_ms);"
    "CREATE INDEX events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;"
    "CREATE INDEX events_request ON events (request_id) WHERE request_id IS NOT NULL;"
    "CREATE INDEX events_session ON events (session_id) WHERE session_id IS NOT NULL;"
    "CREATE TABLE conversations ("
    " conv_id text NOT NULL, host text NOT NULL, session_id text,"
    " runtime_key text, runtime_key_ts_ms bigint, status text NOT NULL, status_ts_ms bigint,"
    " created_ms bigint NOT NULL, last_activity_ms bigint NOT NULL,"
    " closed_ms bigint, evicted_ms bigint,"
    " event_count bigint NOT NULL, error_count bigint NOT NULL,"
    " last_error_ts_ms bigint, last_error_class text, last_error_code text,"
    " last_error_message text, panic boolean NOT NULL, updated_ms bigint NOT NULL,"
    " PRIMARY KEY (conv_id, host));"
    "CREATE INDEX conversations_activity ON conversations (last_activity_ms);"
    "CREATE TABLE rollups ("
    " dim text NOT NULL, minute_ms bigint NOT NULL, k1 text NOT NULL, k2 text NOT NULL,"
    " host text NOT NULL, calls bigint NOT NULL, errors bigint NOT NULL,"
    " input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,"
    " cached_tokens bigint NOT NULL, reasoning_tokens bigint NOT NULL,"
    " lat_count bigint NOT NULL, lat_sum_ms bigint NOT NULL, lat_max_ms bigint NOT NULL,"
    " h bigint[] NOT NULL,"
    " PRIMARY KEY (dim, minute_ms, k1, k2, host));"
    "CREATE TABLE ship_cursors ("
    " source text PRIMARY KEY, host text NOT NULL, last_id bigint NOT NULL,"
    " events bigint NOT NULL, updated_ms bigint NOT NULL);"
    "CREATE TABLE redaction_policies ("
    " id text PRIMARY KEY, first_used_ms bigint NOT NULL, policy text NOT NULL);"
    /* erased conversations, by a keyed hash of the id only (no content): their rows are
       deleted, and rows of them shipped later (a sidecar that has not erased yet, a batch
       in flight) are dropped on arrival */
    "INSERT INTO fr_meta VALUES ('erase_key', md5(gen_random_uuid()::text) ||"
    " md5(gen_random_uuid()::text));"
    "CREATE FUNCTION fr_erase_subject(text) RETURNS text LANGUAGE sql STABLE AS"
    " 'SELECT encode(sha256(convert_to((SELECT value FROM fr_meta WHERE key = ''erase_key'')"
    " || $1, ''UTF8'')), ''hex'')';"
    /* a trace's conversation, learned by a sidecar (an OTLP span naming it): spans filed
       under the trace id (shipped before the link, or by a sidecar that never saw the
       naming span) move to the conversation */
    "CREATE TABLE trace_links ("
    " trace_id text PRIMARY KEY, conv_id text NOT NULL, ts_ms bigint NOT NULL);"
    "CREATE INDEX trace_links_ts ON trace_links (ts_ms);"
    "CREATE TABLE erasures ("
    " subject text PRIMARY KEY, ts_ms bigint NOT NULL, reason text, events bigint NOT NULL);",
    /* version 2: the archive manifest, segments central retention wrote from expired day
       partitions (postgres_archive.c) */
    "CREATE TABLE archive_segments ("
    " path text PRIMARY KEY, tier text NOT NULL, min_ts bigint NOT NULL, max_ts bigint NOT NULL,"
    " records bigint NOT NULL, raw_bytes bigint NOT NULL, file_bytes bigint NOT NULL,"
    " sha256 text, policy text, key_id text, created_ms bigint NOT NULL, bad text, checked text,"
    " map_id bigint UNIQUE);"
    "CREATE INDEX archive_segments_time ON archive_segments (min_ts, max_ts);"
    "CREATE SEQUENCE archive_map_ids;"
    /* which blocks of which segment hold a conversation or trace (h: its 64-bit key hash) */
    "CREATE TABLE archive_map ("
    " h bigint NOT NULL, seg bigint NOT NULL, block integer NOT NULL, PRIMARY KEY (h, seg, block));"
    "CREATE INDEX archive_map_seg ON archive_map (seg);"
    /* an erasure is "pending" until the archive pass removed it from every segment */
    "ALTER TABLE erasures ADD COLUMN kind text NOT NULL DEFAULT 'conv',"
    " ADD COLUMN state text NOT NULL DEFAULT 'done', ADD COLUMN done_ms bigint,"
    " ADD COLUMN segments bigint NOT NULL DEFAULT 0, ADD COLUMN records bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN bytes bigint NOT NULL DEFAULT 0;",
    /* version 3: a provider call's finish_reason, for the rollups by finish reason */
    "ALTER TABLE events ADD COLUMN finish_reason text;",
};

#define PG_LATEST ((int)(sizeof pg_migrations / sizeof pg_migrations[0]))

/* Serializes migrations and partition creation between agents (any constant of ours). */
#define PG_LOCK_SCHEMA "7262911201"
#define PG_LOCK_PARTITION "7262911202"
#define PG_LOCK_ERASE "7262911203"

/*
 * The columns of a shipped row, in COPY order: first those the index and
 * rollups are computed from (PG_NARROW_COLUMNS: fr_narrow, and what
 * pg_insert_sql's "ins" returns), then the rest. A row's line to fr_narrow
 * is the start of its line to events (pg_ship_row writes it once).
 */
#define PG_NARROW_COLUMNS                                                                          \
    "conv_id, ts_ms, kind, session_id, runtime_key, status, provider, model, tool,"                \
    " duration_ms, error_class, error_code, error_message, input_tokens, output_tokens,"           \
    " cached_tokens, reasoning_tokens, panic, finish_reason"
#define PG_STAGE_COLUMNS                                                                           \
    PG_NARROW_COLUMNS ", ekey, host, src_id, ingested_ms, seq, turn_id, run_id, request_id,"       \
                      " stream_id, event_id, trace_id, span_id, inference_id, body, policy,"       \
                      " shipped_ms"

static const char pg_stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS fr_stage ("
    " conv_id text NOT NULL, ts_ms bigint NOT NULL, ekey text NOT NULL, host text NOT NULL,"
    " src_id bigint NOT NULL, ingested_ms bigint NOT NULL, kind text NOT NULL, seq bigint,"
    " session_id text, turn_id text, run_id text, request_id text, stream_id text,"
    " event_id text, trace_id text, span_id text, runtime_key text, inference_id text,"
    " status text, provider text, model text, tool text, duration_ms bigint,"
    " error_class text, error_code text, error_message text, body text NOT NULL, policy text,"
    " input_tokens bigint, output_tokens bigint, cached_tokens bigint, reasoning_tokens bigint,"
    " panic boolean NOT NULL, finish_reason text, shipped_ms bigint NOT NULL)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fr_narrow ("
    " conv_id text NOT NULL, ts_ms bigint NOT NULL, kind text NOT NULL, session_id text,"
    " runtime_key text, status text, provider text, model text, tool text, duration_ms bigint,"
    " error_class text, error_code text, error_message text, input_tokens bigint,"
    " output_tokens bigint, cached_tokens bigint, reasoning_tokens bigint,"
    " panic boolean NOT NULL, finish_reason text) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fr_moved (trace_id text NOT NULL, conv_id text NOT NULL)"
    " ON COMMIT DELETE ROWS";

/* A conversation index row's columns after (conv_id, host), from its events (convagg.c's
   rules): used for a batch's rows and to compute rows again after a trace moved. */
#define PG_CONV_AGG                                                                                \
    "  (array_agg(session_id ORDER BY ts_ms) FILTER (WHERE session_id IS NOT NULL))[1],"           \
    "  (array_agg(runtime_key ORDER BY ts_ms DESC)"                                                \
    "   FILTER (WHERE kind = 'turn' AND runtime_key IS NOT NULL))[1],"                             \
    "  max(ts_ms) FILTER (WHERE kind = 'turn' AND runtime_key IS NOT NULL),"                       \
    "  COALESCE((array_agg(status ORDER BY ts_ms DESC)"                                            \
    "   FILTER (WHERE kind = 'conversation' AND status IS NOT NULL))[1], 'active'),"               \
    "  max(ts_ms) FILTER (WHERE kind = 'conversation' AND status IS NOT NULL),"                    \
    "  min(ts_ms), max(ts_ms),"                                                                    \
    "  max(ts_ms) FILTER (WHERE kind = 'conversation' AND status = 'closed'),"                     \
    "  max(ts_ms) FILTER (WHERE kind = 'conversation' AND status = 'evicted'),"                    \
    "  count(*), count(*) FILTER (WHERE error_code IS NOT NULL),"                                  \
    "  max(ts_ms) FILTER (WHERE error_code IS NOT NULL),"                                          \
    "  (array_agg(error_class ORDER BY ts_ms DESC) FILTER (WHERE error_code IS NOT NULL))[1],"     \
    "  (array_agg(error_code ORDER BY ts_ms DESC) FILTER (WHERE error_code IS NOT NULL))[1],"      \
    "  (array_agg(error_message ORDER BY ts_ms DESC) FILTER (WHERE error_code IS NOT NULL))[1],"   \
    "  bool_or(panic)"

/*
 * A batch takes one of two paths. Rows expected new (the usual case) are
 * copied straight into events, and the few columns the index and rollups
 * need into fr_narrow; pg_narrow_sql computes those from fr_narrow. If any
 * row was stored already (a batch sent again) or its day has no partition
 * yet, the COPY fails, the batch is rolled back, and it is sent again
 * carefully: into fr_stage, then pg_insert_sql. Both use the same
 * aggregation (pg_insert_sql[1..3]) over "ins".
 *
 * The careful path: the rows of the batch not already stored go in; the conversation index and
 * the rollups count exactly those (RETURNING), with the embedded store's
 * rules (convagg.c, collectors/derive.c): status of the latest conversation
 * event, runtime key of the latest turn, the latest error; provider calls by
 * provider and model with tokens and latency, tools by name, failures by
 * class and code. $1 host, $2 now.
 */
static const char *const pg_insert_sql[] = {
    "WITH ins AS (INSERT INTO events (" PG_STAGE_COLUMNS ") SELECT " PG_STAGE_COLUMNS
    " FROM fr_stage s WHERE NOT EXISTS (SELECT 1 FROM erasures x"
    " WHERE x.subject = fr_erase_subject(s.conv_id)"
    " OR (x.kind = 'hmac' AND strpos(s.body, x.subject) > 0)) ON CONFLICT DO NOTHING"
    " RETURNING " PG_NARROW_COLUMNS "),",
    " conv AS (INSERT INTO conversations AS c SELECT conv_id, $1," PG_CONV_AGG ", $2::bigint"
    "  FROM ins WHERE conv_id <> '' GROUP BY conv_id"
    "  ON CONFLICT (conv_id, host) DO UPDATE SET"
    "  session_id = COALESCE(c.session_id, excluded.session_id),"
    "  runtime_key = CASE WHEN excluded.runtime_key_ts_ms >= COALESCE(c.runtime_key_ts_ms, -1)"
    "   THEN excluded.runtime_key ELSE c.runtime_key END,"
    "  runtime_key_ts_ms = GREATEST(c.runtime_key_ts_ms, excluded.runtime_key_ts_ms),"
    "  status = CASE WHEN excluded.status_ts_ms >= COALESCE(c.status_ts_ms, -1)"
    "   THEN excluded.status ELSE c.status END,"
    "  status_ts_ms = GREATEST(c.status_ts_ms, excluded.status_ts_ms),"
    "  created_ms = LEAST(c.created_ms, excluded.created_ms),"
    "  last_activity_ms = GREATEST(c.last_activity_ms, excluded.last_activity_ms),"
    "  closed_ms = GREATEST(c.closed_ms, excluded.closed_ms),"
    "  evicted_ms = GREATEST(c.evicted_ms, excluded.evicted_ms),"
    "  event_count = c.event_count + excluded.event_count,"
    "  error_count = c.error_count + excluded.error_count,"
    "  last_error_class = CASE WHEN excluded.last_error_ts_ms >= COALESCE(c.last_error_ts_ms, -1)"
    "   THEN excluded.last_error_class ELSE c.last_error_class END,"
    "  last_error_code = CASE WHEN excluded.last_error_ts_ms >= COALESCE(c.last_error_ts_ms, -1)"
    "   THEN excluded.last_error_code ELSE c.last_error_code END,"
    "  last_error_message = CASE WHEN excluded.last_error_ts_ms >= COALESCE(c.last_error_ts_ms,"
    "   -1) THEN excluded.last_error_message ELSE c.last_error_message END,"
    "  last_error_ts_ms = GREATEST(c.last_error_ts_ms, excluded.last_error_ts_ms),"
    "  panic = c.panic OR excluded.panic, updated_ms = excluded.updated_ms),",
    " parts AS ("
    "  SELECT 'provider' AS dim, ts_ms, COALESCE(provider, '') AS k1, COALESCE(model, '') AS k2,"
    "   error_code IS NOT NULL AS err, duration_ms AS dur,"
    "   COALESCE(input_tokens, 0) AS t0, COALESCE(output_tokens, 0) AS t1,"
    "   COALESCE(cached_tokens, 0) AS t2, COALESCE(reasoning_tokens, 0) AS t3"
    "  FROM ins WHERE kind = 'provider'"
    "  UNION ALL SELECT 'finish', ts_ms, finish_reason, COALESCE(model, ''),"
    "   error_code IS NOT NULL, duration_ms, COALESCE(input_tokens, 0),"
    "   COALESCE(output_tokens, 0), COALESCE(cached_tokens, 0), COALESCE(reasoning_tokens, 0)"
    "  FROM ins WHERE kind = 'provider' AND finish_reason <> ''"
    "  UNION ALL SELECT 'tool', ts_ms, COALESCE(tool, ''), '', error_code IS NOT NULL,"
    "   duration_ms, 0, 0, 0, 0 FROM ins WHERE kind = 'tool'"
    "  UNION ALL SELECT 'error', ts_ms, COALESCE(error_class, ''), error_code, true, NULL,"
    "   0, 0, 0, 0 FROM ins WHERE error_code IS NOT NULL),",
    " roll AS (INSERT INTO rollups AS r SELECT dim, ts_ms - ts_ms % 60000, k1, k2, $1,"
    "  count(*), count(*) FILTER (WHERE err), sum(t0), sum(t1), sum(t2), sum(t3),"
    "  count(dur), COALESCE(sum(dur), 0), COALESCE(max(dur), 0),"
    "  ARRAY[count(*) FILTER (WHERE dur <= 10),"
    "   count(*) FILTER (WHERE dur > 10 AND dur <= 50),"
    "   count(*) FILTER (WHERE dur > 50 AND dur <= 100),"
    "   count(*) FILTER (WHERE dur > 100 AND dur <= 250),"
    "   count(*) FILTER (WHERE dur > 250 AND dur <= 500),"
    "   count(*) FILTER (WHERE dur > 500 AND dur <= 1000),"
    "   count(*) FILTER (WHERE dur > 1000 AND dur <= 2500),"
    "   count(*) FILTER (WHERE dur > 2500 AND dur <= 5000),"
    "   count(*) FILTER (WHERE dur > 5000 AND dur <= 10000),"
    "   count(*) FILTER (WHERE dur > 10000 AND dur <= 30000),"
    "   count(*) FILTER (WHERE dur > 30000)]"
    "  FROM parts GROUP BY 1, 2, 3, 4"
    "  ON CONFLICT (dim, minute_ms, k1, k2, host) DO UPDATE SET"
    "  calls = r.calls + excluded.calls, errors = r.errors + excluded.errors,"
    "  input_tokens = r.input_tokens + excluded.input_tokens,"
    "  output_tokens = r.output_tokens + excluded.output_tokens,"
    "  cached_tokens = r.cached_tokens + excluded.cached_tokens,"
    "  reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,"
    "  lat_count = r.lat_count + excluded.lat_count,"
    "  lat_sum_ms = r.lat_sum_ms + excluded.lat_sum_ms,"
    "  lat_max_ms = GREATEST(r.lat_max_ms, excluded.lat_max_ms),"
    "  h = ARRAY(SELECT a + b FROM unnest(r.h, excluded.h) AS u(a, b)))"
    " SELECT count(*) FROM ins",
};

static const char pg_narrow_sql[] =
    "WITH ins AS (SELECT " PG_NARROW_COLUMNS " FROM fr_narrow n WHERE NOT EXISTS (SELECT 1"
    " FROM erasures x WHERE x.subject = fr_erase_subject(n.conv_id))),";

/* ... and rows holding an erased value (a token erased with --hmac), looked up by the batch's
   conversations (the primary key's prefix), only when there is such an erasure. */
static const char pg_untoken_sql[] =
    "DELETE FROM events e USING erasures x WHERE x.kind = 'hmac'"
    " AND e.conv_id = ANY(ARRAY(SELECT DISTINCT conv_id FROM fr_narrow))"
    " AND e.host = $1 AND e.shipped_ms = $2 AND strpos(e.body, x.subject) > 0";

/* The fast path copied rows of erased conversations too: out again, in the same transaction. */
static const char pg_unerase_sql[] =
    "DELETE FROM events e USING (SELECT DISTINCT n.conv_id FROM fr_narrow n JOIN erasures x"
    " ON x.subject = fr_erase_subject(n.conv_id)) d WHERE e.conv_id = d.conv_id";

/*
 * Trace links, after a batch's rows are in: the links the sidecar sent ($1
 * traces, $2 conversations, $3 times) are kept (the first one wins), then
 * every trace of them or of the batch's rows that has rows filed under its
 * id moves: copies the conversation holds already go, the rest take its id
 * (column and envelope), an erased conversation's are deleted, and the index
 * rows of both are computed again from their events, per host.
 */
static const char *const pg_link_sql[] = {
    "INSERT INTO trace_links SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])"
    " ON CONFLICT (trace_id) DO NOTHING",
    /* (nothing more to do, the usual case, when this finds no trace to move) */
    "WITH m AS (INSERT INTO fr_moved SELECT l.trace_id, l.conv_id FROM trace_links l"
    " WHERE l.trace_id IN (SELECT unnest($1::text[]) UNION SELECT conv_id FROM fr_narrow"
    " UNION SELECT conv_id FROM fr_stage)"
    " AND EXISTS (SELECT 1 FROM events e WHERE e.conv_id = l.trace_id AND e.trace_id = l.trace_id)"
    " RETURNING 1) SELECT count(*) FROM m",
    /* = ANY(ARRAY(...)): the primary key's conv_id prefix finds the rows, never a scan */
    "DELETE FROM events e USING fr_moved m WHERE e.conv_id = ANY(ARRAY(SELECT trace_id FROM"
    " fr_moved)) AND e.conv_id = m.trace_id AND e.trace_id = m.trace_id AND (EXISTS (SELECT 1"
    " FROM events c WHERE c.conv_id = m.conv_id AND c.ekey = e.ekey AND c.ts_ms = e.ts_ms)"
    " OR EXISTS (SELECT 1 FROM erasures x WHERE x.subject = fr_erase_subject(m.conv_id)))",
    "UPDATE events e SET conv_id = m.conv_id, body = replace(e.body, '\"conv_id\":' ||"
    " to_json(m.trace_id)::text, '\"conv_id\":' || to_json(m.conv_id)::text)"
    " FROM fr_moved m WHERE e.conv_id = ANY(ARRAY(SELECT trace_id FROM fr_moved))"
    " AND e.conv_id = m.trace_id AND e.trace_id = m.trace_id",
    "DELETE FROM conversations WHERE conv_id = ANY(ARRAY(SELECT trace_id FROM fr_moved"
    " UNION SELECT conv_id FROM fr_moved))",
    "INSERT INTO conversations SELECT conv_id, host," PG_CONV_AGG ", $1::bigint FROM events"
    " WHERE conv_id = ANY(ARRAY(SELECT conv_id FROM fr_moved)) GROUP BY conv_id, host",
};

static const char pg_cursor_sql[] =
    "INSERT INTO ship_cursors VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source) DO UPDATE SET"
    " host = excluded.host, last_id = GREATEST(ship_cursors.last_id, excluded.last_id),"
    " events = ship_cursors.events + excluded.events, updated_ms = excluded.updated_ms";

static void
pg_close(void *ctx)
{
    struct pg_store *s = ctx;
    if (s == NULL)
        return;
    if (s->c != NULL)
        PQfinish(s->c);
    free(s->buf.p);
    free(s->narrow.p);
    for (int i = 0; i < 3; i++)
        free(s->links[i].p);
    free(s->host);
    free(s->insert_sql);
    free(s->narrow_sql);
    free(s->safe_url);
    free(s);
}

/* The integer the first column of sql's first row holds (param: its $1, or NULL); 0 when
   there is no row. */
static int
pg_one_int(struct pg_store *s, const char *sql, const char *param, const char *what, int64_t *out,
           struct fr_err *err)
{
    PGresult *r = PQexecParams(s->c, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_fail(s, what, err);
    }
    *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return FR_OK;
}

/* The schema version in fr_meta (0: none yet). */
static int
pg_version(struct pg_store *s, int *out, struct fr_err *err)
{
    int64_t v = 0;
    int rc = pg_one_int(s, "SELECT value FROM fr_meta WHERE key = 'schema_version'", NULL,
                        "reading the schema version", &v, err);
    *out = (int)v;
    return rc;
}

static int
pg_migrate(struct pg_store *s, struct fr_err *err)
{
    int rc = pg_exec(s,
                     "SELECT pg_advisory_lock(" PG_LOCK_SCHEMA ");"
                     "CREATE TABLE IF NOT EXISTS fr_meta (key text PRIMARY KEY, value text NOT "
                     "NULL)",
                     "preparing the schema", err);
    int cur = 0;
    if (rc == FR_OK)
        rc = pg_version(s, &cur, err);
    if (rc == FR_OK && cur > PG_LATEST)
        rc = fr_err_set(err, FR_E_VERSION,
                        "%s: schema version %d is newer than this flightrec supports (%d); "
                        "upgrade flightrec",
                        s->safe_url, cur, PG_LATEST);
    for (int v = cur + 1; rc == FR_OK && v <= PG_LATEST; v++) {
        char set[160];
        snprintf(set, sizeof set,
                 "INSERT INTO fr_meta VALUES ('schema_version', '%d') ON CONFLICT (key) DO "
                 "UPDATE SET value = excluded.value",
                 v);
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", v);
        rc = pg_exec(s, "BEGIN", what, err);
        if (rc == FR_OK)
            rc = pg_exec(s, pg_migrations[v - 1], what, err);
        if (rc == FR_OK)
            rc = pg_exec(s, set, what, err);
        if (rc == FR_OK)
            rc = pg_exec(s, "COMMIT", what, err);
        if (rc != FR_OK)
            PQclear(PQexec(s->c, "ROLLBACK"));
    }
    PQclear(PQexec(s->c, "SELECT pg_advisory_unlock(" PG_LOCK_SCHEMA ")"));
    return rc;
}

static int
pg_open(void **ctx, const char *path, const struct fr_store_opts *opts, struct fr_err *err)
{
    *ctx = NULL;
    int lrc = fr_pq_load(err); /* opened now, not at every start (core/dl.h) */
    if (lrc != FR_OK)
        return lrc;
    struct pg_store *s = fr_calloc(1, sizeof *s);
    s->safe_url = pg_safe_url(path);
    /* a host that does not answer fails in 10 s, a dead peer is noticed by keepalives (the
       location's own settings win: it is expanded after these) */
    const char *const keys[] = {"connect_timeout",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "application_name",
                                "dbname",
                                NULL};
    const char *const vals[] = {"10", "30", "10", "3", "flightrec", path, NULL};
    s->c = PQconnectdbParams(keys, vals, 1);
    if (s->c == NULL || PQstatus(s->c) != CONNECTION_OK) {
        int rc = s->c ? pg_fail(s, "cannot connect", err)
                      : fr_err_set(err, FR_E_STORE, "%s: cannot connect", s->safe_url);
        pg_close(s);
        return rc;
    }
    PQclear(PQexec(s->c, "SET client_min_messages = warning"));
    int rc = FR_OK;
    if (opts->read_only) {
        int v = 0;
        struct fr_err verr = {0};
        if (pg_exec(s, "SET default_transaction_read_only = on", "opening", err) != FR_OK)
            rc = err->code;
        else if (pg_version(s, &v, &verr) != FR_OK || v == 0)
            rc = fr_err_set(err, FR_E_NOTFOUND,
                            "%s holds no flightrec store yet (an agent with ship.url set to it "
                            "creates one)",
                            s->safe_url);
        else if (v != PG_LATEST)
            rc =
                fr_err_set(err, FR_E_VERSION, "%s: schema version %d, this flightrec reads %d (%s)",
                           s->safe_url, v, PG_LATEST,
                           v > PG_LATEST ? "upgrade flightrec" : "an agent migrates it");
    } else {
        /* the staging tables live in temp_buffers: room for a batch (before their first use) */
        PQclear(PQexec(s->c, "SET temp_buffers = '64MB'"));
        rc = pg_migrate(s, err);
        if (rc == FR_OK)
            rc = pg_exec(s, pg_stage_sql, "creating the staging tables", err);
    }
    if (rc != FR_OK) {
        pg_close(s);
        return rc;
    }
    *ctx = s;
    return FR_OK;
}

/* ---- shipping ---- */

static void
buf_put(struct pg_buf *b, const char *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = fr_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* One value of a COPY text line: escaped, \N for NULL, then sep. */
static void
buf_field(struct pg_buf *b, const char *v, size_t n, char sep)
{
    if (v == NULL) {
        buf_put(b, "\\N", 2);
    } else {
        size_t run = 0;
        for (size_t i = 0; i < n; i++) {
            char e = v[i] == '\\'   ? '\\'
                     : v[i] == '\t' ? 't'
                     : v[i] == '\n' ? 'n'
                     : v[i] == '\r' ? 'r'
                                    : 0;
            if (e == 0)
                continue;
            buf_put(b, v + run, i - run);
            char esc[2] = {'\\', e};
            buf_put(b, esc, 2);
            run = i + 1;
        }
        buf_put(b, v + run, n - run);
    }
    buf_put(b, &sep, 1);
}

static void
buf_text(struct pg_buf *b, const char *v, char sep)
{
    buf_field(b, v, v ? strlen(v) : 0, sep);
}

static void
buf_int(struct pg_buf *b, bool has, int64_t v, char sep)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v);
    buf_text(b, has ? num : NULL, sep);
}

static int
pg_flush(struct pg_store *s, struct fr_err *err)
{
    if (s->buf.n > 0 && PQputCopyData(s->c, s->buf.p, (int)s->buf.n) != 1)
        return pg_fail(s, "sending rows", err);
    s->buf.n = 0;
    return FR_OK;
}

/* An element of a text[] literal: "..." with " and \ escaped. */
static void
buf_array_item(struct pg_buf *b, const char *v)
{
    buf_put(b, b->n > 1 ? ",\"" : "\"", b->n > 1 ? 2 : 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_put(b, "\\", 1);
        buf_put(b, p, 1);
    }
    buf_put(b, "\"", 1);
}

static int
pg_ship_link(void *ctx, const char *trace_id, const char *conv_id, int64_t ts_ms,
             struct fr_err *err)
{
    (void)err;
    struct pg_store *s = ctx;
    if (s->links[0].n == 0)
        for (int i = 0; i < 3; i++)
            buf_put(&s->links[i], "{", 1);
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)ts_ms);
    char ht[72], hc[72];
    buf_array_item(&s->links[0], pg_id(trace_id, ht));
    buf_array_item(&s->links[1], pg_id(conv_id, hc));
    buf_array_item(&s->links[2], ts);
    return FR_OK;
}

/* The batch's links applied (pg_link_sql), in its transaction. */
static int
pg_apply_links(struct pg_store *s, const char *now, struct fr_err *err)
{
    const char *none = "{}";
    for (int i = 0; i < 3; i++)
        buf_put(&s->links[i], s->links[i].n > 0 ? "}" : none, s->links[i].n > 0 ? 2 : 3);
    const char *p[4] = {s->links[0].p, s->links[1].p, s->links[2].p, now};
    /* each statement's parameters: the links (3), their traces (1), none, or the time */
    static const int np[] = {3, 1, 0, 0, 0, 1}, first[] = {0, 0, 0, 0, 0, 3};
    int rc = FR_OK;
    for (size_t i = 0; rc == FR_OK && i < sizeof pg_link_sql / sizeof pg_link_sql[0]; i++) {
        if (i == 0 && s->links[0].n <= 3)
            continue; /* no link in this batch */
        PGresult *r = PQexecParams(s->c, pg_link_sql[i], np[i], NULL, p + first[i], NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            rc = pg_fail(s, "moving a trace's events to its conversation", err);
        bool none = i == 1 && st == PGRES_TUPLES_OK && pg_col_int(r, 0, 0) == 0;
        PQclear(r);
        if (none)
            break;
    }
    for (int i = 0; i < 3; i++)
        s->links[i].n = 0;
    return rc;
}

/* Runs a COPY ... FROM STDIN of the whole of b. */
static int
pg_copy(struct pg_store *s, const char *sql, struct pg_buf *b, struct fr_err *err)
{
    PGresult *r = PQexec(s->c, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COPY_IN)
        return pg_fail(s, "starting COPY", err);
    int ok =
        (b->n == 0 || PQputCopyData(s->c, b->p, (int)b->n) == 1) && PQputCopyEnd(s->c, NULL) == 1;
    r = PQgetResult(s->c);
    st = PQresultStatus(r);
    PQclear(r);
    while ((r = PQgetResult(s->c)) != NULL)
        PQclear(r);
    b->n = 0;
    return ok && st == PGRES_COMMAND_OK ? FR_OK : pg_fail(s, "copying", err);
}

static int
pg_ship_begin(void *ctx, const char *host, bool careful, struct fr_err *err)
{
    struct pg_store *s = ctx;
    free(s->host);
    s->host = fr_strdup(host);
    s->buf.n = 0;
    s->narrow.n = 0;
    for (int i = 0; i < 3; i++)
        s->links[i].n = 0;
    s->careful = careful;
    s->shipped_ms = fr_now_ms();
    int rc = pg_exec(s, "BEGIN", "starting a batch", err);
    if (rc != FR_OK)
        return rc;
    s->in_txn = true;
    PGresult *r = PQexec(s->c, careful ? "COPY fr_stage (" PG_STAGE_COLUMNS ") FROM STDIN"
                                       : "COPY events (" PG_STAGE_COLUMNS ") FROM STDIN");
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COPY_IN)
        return pg_fail(s, "starting COPY", err);
    s->in_copy = true;
    return FR_OK;
}

/*
 * What the rollups and the conversation index need from the body and the row
 * does not carry: a provider call's token usage (data.usage.*) and finish
 * reason (*finish, owned by the caller; NULL when none), whether a failure was
 * a panic (data.panic, as collectors/taxonomy.c reads it). Parsed only for
 * those rows.
 */
static void
pg_body_facts(const struct fr_event_row *row, int64_t tokens[FR_TOKEN_COUNT], bool *has_tokens,
              bool *panic, char **finish)
{
    static const char *const names[FR_TOKEN_COUNT] = {"input_tokens", "output_tokens",
                                                      "cached_tokens", "reasoning_tokens"};
    memset(tokens, 0, sizeof(int64_t) * FR_TOKEN_COUNT);
    bool provider = strcmp(row->kind, "provider") == 0;
    if (!provider && row->error_code == NULL)
        return;
    json_t *doc = json_loadb(row->body, row->body_len, JSON_ALLOW_NUL, NULL);
    if (doc == NULL)
        return;
    json_t *usage = json_object_get(json_object_get(doc, "data"), "usage");
    for (int i = 0; provider && i < FR_TOKEN_COUNT; i++) {
        json_t *v = json_object_get(usage, names[i]);
        if (json_is_integer(v)) {
            tokens[i] = (int64_t)json_integer_value(v);
            *has_tokens = true;
        }
    }
    const char *fin =
        json_string_value(json_object_get(json_object_get(doc, "data"), "finish_reason"));
    if (provider && fin != NULL && *fin != '\0')
        *finish = fr_strdup(fin);
    *panic = row->error_code != NULL &&
             json_is_true(json_object_get(json_object_get(doc, "data"), "panic"));
    json_decref(doc);
}

static int
pg_ship_row(void *ctx, const struct fr_event_row *row, struct fr_err *err)
{
    struct pg_store *s = ctx;
    struct pg_buf *b = &s->buf;
    /* the ids the keys and indexes hold, bounded (pg_id) */
    char hashed[FR_ID_COUNT][72];
    const char *ids[FR_ID_COUNT];
    for (int i = 0; i < FR_ID_COUNT; i++)
        ids[i] = pg_id(row->ids[i], hashed[i]);
    int64_t tokens[FR_TOKEN_COUNT];
    bool has_tokens = false, panic = false;
    char *finish = NULL;
    pg_body_facts(row, tokens, &has_tokens, &panic, &finish);
    /* PG_NARROW_COLUMNS */
    size_t start = b->n;
    buf_text(b, ids[FR_ID_CONV] ? ids[FR_ID_CONV] : "", '\t');
    buf_int(b, true, row->ts_ms, '\t');
    buf_text(b, row->kind, '\t');
    buf_text(b, ids[FR_ID_SESSION], '\t');
    buf_text(b, ids[FR_ID_RUNTIME_KEY], '\t');
    buf_text(b, row->status, '\t');
    buf_text(b, row->provider, '\t');
    buf_text(b, row->model, '\t');
    buf_text(b, row->tool, '\t');
    buf_int(b, row->has_duration, row->duration_ms, '\t');
    buf_text(b, row->error_class, '\t');
    buf_text(b, row->error_code, '\t');
    buf_text(b, row->error_message, '\t');
    for (int i = 0; i < FR_TOKEN_COUNT; i++)
        buf_int(b, has_tokens, tokens[i], '\t');
    buf_text(b, panic ? "t" : "f", '\t');
    buf_text(b, finish, '\t');
    free(finish);
    if (!s->careful) { /* the same bytes to fr_narrow, sent after the rows */
        buf_put(&s->narrow, b->p + start, b->n - start - 1);
        buf_put(&s->narrow, "\n", 1);
    }
    /* the rest: ekey (the producer's event id, else the sidecar's row, unique across hosts by
       the host), where it came from, the other ids, the envelope */
    char ekey[400];
    if (ids[FR_ID_EVENT] == NULL)
        snprintf(ekey, sizeof ekey, "%s/%lld/%lld", s->host, (long long)row->id,
                 (long long)row->ingested_ms);
    buf_text(b, ids[FR_ID_EVENT] ? ids[FR_ID_EVENT] : ekey, '\t');
    buf_text(b, s->host, '\t');
    buf_int(b, true, row->id, '\t');
    buf_int(b, true, row->ingested_ms, '\t');
    buf_int(b, row->has_seq, row->seq, '\t');
    for (int i = FR_ID_TURN; i < FR_ID_COUNT; i++)
        if (i != FR_ID_RUNTIME_KEY)
            buf_text(b, ids[i], '\t');
    buf_field(b, row->body, row->body_len, '\t');
    buf_text(b, row->policy, '\t');
    buf_int(b, true, s->shipped_ms, '\n');
    return b->n >= (64u << 10) ? pg_flush(s, err) : FR_OK;
}

/* The day partitions the staged rows need, created once (under a lock shared by all agents). */
static int
pg_partitions(struct pg_store *s, struct fr_err *err)
{
    PGresult *days =
        PQexec(s->c, "SELECT DISTINCT floor(ts_ms / 86400000.0)::bigint FROM fr_stage");
    if (PQresultStatus(days) != PGRES_TUPLES_OK) {
        PQclear(days);
        return pg_fail(s, "reading the batch's days", err);
    }
    bool locked = false;
    int rc = FR_OK;
    for (int i = 0; rc == FR_OK && i < PQntuples(days); i++) {
        int64_t day = pg_col_int(days, i, 0);
        bool known = false;
        for (size_t k = 0; k < s->nknown && !known; k++)
            known = s->known[k] == day;
        if (known)
            continue;
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        char sql[320];
        if (!locked)
            rc = pg_exec(s, "SELECT pg_advisory_xact_lock(" PG_LOCK_PARTITION ")",
                         "locking the partitions", err);
        locked = true;
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS events_p%04d%02d%02d PARTITION OF events FOR VALUES "
                 "FROM (%lld) TO (%lld)",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, (long long)(day * 86400000),
                 (long long)((day + 1) * 86400000));
        if (rc == FR_OK)
            rc = pg_exec(s, sql, "creating a day partition", err);
        if (rc == FR_OK) {
            if (s->nknown == sizeof s->known / sizeof s->known[0])
                s->nknown = 0;
            s->known[s->nknown++] = day;
        }
    }
    PQclear(days);
    return rc;
}

static int
pg_ship_end(void *ctx, const char *source, int64_t last_id, int64_t now_ms, int64_t *inserted,
            struct fr_err *err)
{
    struct pg_store *s = ctx;
    *inserted = 0;
    int rc = pg_flush(s, err);
    if (rc != FR_OK)
        return rc;
    s->in_copy = false;
    if (PQputCopyEnd(s->c, NULL) != 1)
        return pg_fail(s, "ending COPY", err);
    PGresult *r = PQgetResult(s->c);
    ExecStatusType st = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* unique_violation: a row is there already; check_violation: no partition for its day */
    bool again = !s->careful && state != NULL &&
                 (strcmp(state, "23505") == 0 || strcmp(state, "23514") == 0);
    PQclear(r);
    while ((r = PQgetResult(s->c)) != NULL)
        PQclear(r);
    if (again)
        return fr_err_set(err, FR_E_BUSY, "%s: rows already stored or a new day: send carefully",
                          s->safe_url);
    if (st != PGRES_COMMAND_OK)
        return pg_fail(s, s->careful ? "staging rows" : "storing rows", err);
    if (s->careful) {
        rc = pg_partitions(s, err);
    } else {
        rc = pg_copy(s, "COPY fr_narrow (" PG_NARROW_COLUMNS ") FROM STDIN", &s->narrow, err);
    }
    if (rc != FR_OK)
        return rc;
    char now[24], last[24], n[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *p[5] = {s->host, now};
    if (s->insert_sql == NULL) {
        s->insert_sql = fr_asprintf("%s%s%s%s", pg_insert_sql[0], pg_insert_sql[1],
                                    pg_insert_sql[2], pg_insert_sql[3]);
        s->narrow_sql = fr_asprintf("%s%s%s%s", pg_narrow_sql, pg_insert_sql[1], pg_insert_sql[2],
                                    pg_insert_sql[3]);
    }
    /* an erasure and a batch of its rows never cross: the erasure takes this lock
       exclusively, so either it sees the batch's rows committed, or the batch sees it */
    PGresult *e = PQexec(s->c, "SELECT pg_advisory_xact_lock_shared(" PG_LOCK_ERASE "),"
                               " EXISTS (SELECT 1 FROM erasures),"
                               " EXISTS (SELECT 1 FROM erasures WHERE kind = 'hmac')");
    if (PQresultStatus(e) != PGRES_TUPLES_OK) {
        PQclear(e);
        return pg_fail(s, "reading the erasures", err);
    }
    bool erasures = PQgetvalue(e, 0, 1)[0] == 't'; /* rare: checked only when there are any */
    bool tokens = PQgetvalue(e, 0, 2)[0] == 't';
    PQclear(e);
    if (!s->careful && erasures && pg_exec(s, pg_unerase_sql, "dropping erased rows", err) != FR_OK)
        return err->code;
    if (!s->careful && tokens) {
        char shipped[24];
        snprintf(shipped, sizeof shipped, "%lld", (long long)s->shipped_ms);
        const char *tp[2] = {s->host, shipped};
        r = PQexecParams(s->c, pg_untoken_sql, 2, NULL, tp, NULL, NULL, 0);
        ExecStatusType ts = PQresultStatus(r);
        PQclear(r);
        if (ts != PGRES_COMMAND_OK)
            return pg_fail(s, "dropping rows holding an erased value", err);
    }
    r = PQexecParams(s->c, s->careful ? s->insert_sql : s->narrow_sql, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_fail(s, "storing rows", err);
    }
    *inserted = pg_col_int(r, 0, 0);
    PQclear(r);
    rc = pg_apply_links(s, now, err);
    if (rc != FR_OK)
        return rc;
    snprintf(last, sizeof last, "%lld", (long long)last_id);
    snprintf(n, sizeof n, "%lld", (long long)*inserted);
    const char *cp[5] = {source, s->host, last, n, now};
    r = PQexecParams(s->c, pg_cursor_sql, 5, NULL, cp, NULL, NULL, 0);
    st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK)
        return pg_fail(s, "moving the cursor", err);
    rc = pg_exec(s, "COMMIT", "committing a batch", err);
    s->in_txn = false;
    if (rc != FR_OK)
        s->nknown = 0; /* partitions made in the failed transaction are gone */
    return rc;
}

static int
pg_ship_cursor(void *ctx, const char *source, int64_t *last_id, struct fr_err *err)
{
    return pg_one_int(ctx, "SELECT last_id FROM ship_cursors WHERE source = $1", source,
                      "reading the cursor", last_id, err);
}

static void
pg_rollback(void *ctx)
{
    struct pg_store *s = ctx;
    if (s->in_copy) {
        PQputCopyEnd(s->c, "batch abandoned");
        PGresult *r;
        while ((r = PQgetResult(s->c)) != NULL)
            PQclear(r);
        s->in_copy = false;
    }
    if (s->in_txn)
        PQclear(PQexec(s->c, "ROLLBACK"));
    s->in_txn = false;
    s->nknown = 0;
}

/* ---- central retention ---- */

static int
pg_prune(void *ctx, int64_t before_ms, bool detach, bool dry_run,
         int (*cb)(void *ud, const struct fr_prune_row *r), void *ud, struct fr_err *err)
{
    struct pg_store *s = ctx;
    PGresult *parts = PQexec(s->c, "SELECT c.relname, c.reltuples::bigint FROM pg_inherits i"
                                   " JOIN pg_class c ON c.oid = i.inhrelid"
                                   " WHERE i.inhparent = 'events'::regclass ORDER BY c.relname");
    if (PQresultStatus(parts) != PGRES_TUPLES_OK) {
        PQclear(parts);
        return pg_fail(s, "listing the day partitions", err);
    }
    int rc = dry_run ? FR_OK : pg_exec(s, "BEGIN", "pruning", err);
    for (int i = 0; rc == FR_OK && i < PQntuples(parts); i++) {
        const char *name = PQgetvalue(parts, i, 0);
        struct tm tm = {0};
        if (strlen(name) != 16 || strncmp(name, "events_p", 8) != 0 ||
            sscanf(name + 8, "%4d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
            continue; /* not one of ours: left alone */
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        int64_t from = (int64_t)timegm(&tm) * 1000, to = from + 86400000;
        if (to > before_ms)
            continue;
        struct fr_prune_row row = {name, from, to, pg_col_int(parts, i, 1)};
        if (!dry_run) {
            char sql[160];
            snprintf(sql, sizeof sql,
                     detach ? "ALTER TABLE events DETACH PARTITION %s" : "DROP TABLE %s", name);
            rc = pg_exec(s, sql, detach ? "detaching a partition" : "dropping a partition", err);
            for (size_t k = 0; k < s->nknown; k++)
                if (s->known[k] * 86400000 == from)
                    s->known[k] = INT64_MIN; /* made again if its day is shipped again */
        }
        if (rc == FR_OK && cb != NULL)
            rc = cb(ud, &row);
    }
    PQclear(parts);
    if (!dry_run && rc == FR_OK) {
        char before[24];
        snprintf(before, sizeof before, "%lld", (long long)before_ms);
        const char *p[1] = {before};
        static const char *const sql[] = {
            "DELETE FROM conversations WHERE last_activity_ms < $1",
            "DELETE FROM rollups WHERE minute_ms < $1",
        };
        for (size_t k = 0; rc == FR_OK && k < 2; k++) {
            PGresult *r = PQexecParams(s->c, sql[k], 1, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                rc = pg_fail(s, "pruning the index", err);
            PQclear(r);
        }
    }
    if (!dry_run)
        rc = rc == FR_OK ? pg_exec(s, "COMMIT", "pruning", err)
                         : (PQclear(PQexec(s->c, "ROLLBACK")), rc);
    return rc;
}

/* ---- erasure ---- */

/*
 * A conversation (conv_id) or every event holding a keyed-hash value
 * (token, "hmac:..."): its events leave every partition and its index rows
 * go; a conversation is also recorded (a keyed hash of its id) so that its
 * rows shipped later are dropped on arrival. Rollups keep their counts (no
 * content). Idempotent: erasing again finds nothing more.
 */
static int
pg_erase_hot(void *ctx, const char *conv_id, const char *token, const char *reason, int64_t now_ms,
             bool dry_run, int64_t *events, struct fr_err *err)
{
    struct pg_store *s = ctx;
    *events = 0;
    char hashed[72];
    conv_id = conv_id ? pg_id(conv_id, hashed) : NULL; /* as it was stored */
    const char *v = conv_id ? conv_id : token;
    const char *p[3] = {v, NULL, reason};
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    p[1] = now;
    if (dry_run) {
        PGresult *r =
            PQexecParams(s->c,
                         conv_id ? "SELECT count(*) FROM events WHERE conv_id = $1"
                                 : "SELECT count(*) FROM events WHERE strpos(body, $1) > 0",
                         1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            return pg_fail(s, "counting what an erasure would remove", err);
        }
        *events = pg_col_int(r, 0, 0);
        PQclear(r);
        return FR_OK;
    }
    int rc = pg_exec(s, "BEGIN; SELECT pg_advisory_xact_lock(" PG_LOCK_ERASE ")", "erasing", err);
    PGresult *r = NULL;
    if (rc == FR_OK) {
        r = PQexecParams(s->c,
                         conv_id ? "WITH d AS (DELETE FROM events WHERE conv_id = $1 RETURNING 1)"
                                   " SELECT count(*) FROM d"
                                 : "WITH d AS (DELETE FROM events WHERE strpos(body, $1) > 0"
                                   " RETURNING 1) SELECT count(*) FROM d",
                         1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = pg_fail(s, "erasing events", err);
        else
            *events = pg_col_int(r, 0, 0);
        PQclear(r);
    }
    if (rc == FR_OK) {
        /* recorded "pending": the archive pass (archived day partitions) marks it done */
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)*events);
        const char *ep[4] = {v, now, reason, n};
        r = PQexecParams(s->c,
                         conv_id ? "INSERT INTO erasures (subject, ts_ms, reason, events, kind,"
                                   " state) VALUES (fr_erase_subject($1), $2, $3, $4, 'conv',"
                                   " 'pending') ON CONFLICT (subject) DO UPDATE SET events ="
                                   " erasures.events + excluded.events, state = 'pending'"
                                 : "INSERT INTO erasures (subject, ts_ms, reason, events, kind,"
                                   " state) VALUES ($1, $2, $3, $4, 'hmac', 'pending')"
                                   " ON CONFLICT (subject) DO UPDATE SET events ="
                                   " erasures.events + excluded.events, state = 'pending'",
                         4, NULL, ep, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = pg_fail(s, "recording the erasure", err);
        PQclear(r);
    }
    if (rc == FR_OK && conv_id != NULL) {
        r = rc == FR_OK ? PQexecParams(s->c, "DELETE FROM conversations WHERE conv_id = $1", 1,
                                       NULL, p, NULL, NULL, 0)
                        : NULL;
        if (r != NULL && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = pg_fail(s, "erasing the index", err);
        PQclear(r);
    }
    if (rc == FR_OK)
        return pg_exec(s, "COMMIT", "erasing", err);
    PQclear(PQexec(s->c, "ROLLBACK"));
    return rc;
}

static bool
pg_is_erased(void *ctx, const char *conv_id)
{
    struct pg_store *s = ctx;
    char hashed[72];
    const char *p[1] = {pg_id(conv_id, hashed)};
    PGresult *r = PQexecParams(s->c, "SELECT 1 FROM erasures WHERE subject = fr_erase_subject($1)",
                               1, NULL, p, NULL, NULL, 0);
    bool erased = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    return erased;
}

/* ---- the embedded write path does not apply: events come by shipping ---- */

static int
pg_begin(void *ctx, struct fr_err *err)
{
    (void)ctx;
    return fr_err_set(err, FR_E_INVALID,
                      "the postgres store takes events shipped from agents (ship.url), not "
                      "direct ingest");
}

static int
pg_put(void *ctx, const struct fr_record *rec, int64_t ingested_ms, bool *inserted,
       struct fr_err *err)
{
    (void)rec, (void)ingested_ms, (void)inserted;
    return pg_begin(ctx, err);
}

static int
pg_commit(void *ctx, struct fr_err *err)
{
    return pg_begin(ctx, err);
}

static int
pg_policy(void *ctx, const char *id, const char *json, int64_t now_ms, struct fr_err *err)
{
    struct pg_store *s = ctx;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *p[3] = {id, now, json};
    PGresult *r = PQexecParams(s->c,
                               "INSERT INTO redaction_policies VALUES ($1, $2, $3) ON CONFLICT "
                               "DO NOTHING",
                               3, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_COMMAND_OK ? FR_OK : pg_fail(s, "recording a policy", err);
}

static int
pg_store_id(void *ctx, char out[17], struct fr_err *err)
{
    struct pg_store *s = ctx;
    PGresult *r = PQexec(s->c, "SELECT value FROM fr_meta WHERE key = 'store_id'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
        PQclear(r);
        return pg_fail(s, "reading the store id", err);
    }
    snprintf(out, 17, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return FR_OK;
}

const struct fr_store_ops fr_store_postgres = {
    .name = "postgres",
    .description = "central PostgreSQL fed by the agents' shippers (ship.url); read by "
                   "--db postgres://...",
    .options = NULL,
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .put = pg_put,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .conversations = pg_conversations,
    .conversation = pg_conversation,
    .events = pg_events,
    .count_events = pg_count_events,
    .rollups = pg_rollups,
    .error_groups = pg_error_groups,
    .policy = pg_policy,
    .store_id = pg_store_id,
    .ship_cursor = pg_ship_cursor,
    .ship_begin = pg_ship_begin,
    .ship_row = pg_ship_row,
    .ship_end = pg_ship_end,
    .ship_link = pg_ship_link,
    .prune = pg_prune,
    .erase_hot = pg_erase_hot,
    .is_erased = pg_is_erased,
    .manifest = pg_manifest,
    .manifest_add = pg_manifest_add,
    .manifest_remove = pg_manifest_remove,
    .manifest_replace = pg_manifest_replace,
    .segment_health = pg_segment_health,
    .archive_map = pg_archive_map,
    .archive_lookup = pg_archive_lookup,
    .erase_subject = pg_erase_subject,
    .erasures = pg_erasures,
    .erase_done = pg_erase_done,
};
