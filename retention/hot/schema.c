/*
 * retention/hot/schema.c - migrations of the SQLite hot store.
 *
 * Rules: a migration is appended, never edited once released; each one must
 * work on any database at the previous version, holding data. The indexes
 * are chosen for the query patterns in docs/storage.md (conversation view,
 * time windows, failures by class/code, model and tool filters) at 10M rows;
 * partial indexes keep rows that lack the column out of the B-tree, so they
 * cost nothing on inserts of other kinds.
 */
#include "retention/hot/schema.h"

#include <stdbool.h>
#include <stdio.h>

#include "core/log.h"
#include "core/timeutil.h"

static const char *const schema_migrations[] = {
    /* version 1: event log and conversation index */
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " ingested_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " seq INTEGER,"
    " conv_id TEXT, session_id TEXT, turn_id TEXT, run_id TEXT, request_id TEXT,"
    " stream_id TEXT, event_id TEXT, trace_id TEXT, span_id TEXT, runtime_key TEXT,"
    " inference_id TEXT,"
    " status TEXT, provider TEXT, model TEXT, tool TEXT, duration_ms INTEGER,"
    " error_class TEXT, error_code TEXT, error_message TEXT,"
    " body TEXT NOT NULL);"
    "CREATE INDEX events_conv ON events(conv_id, ts_ms, seq);"
    "CREATE INDEX events_ts ON events(ts_ms);"
    "CREATE INDEX events_kind ON events(kind, ts_ms);"
    "CREATE INDEX events_error ON events(error_class, error_code, ts_ms)"
    " WHERE error_code IS NOT NULL;"
    "CREATE INDEX events_model ON events(model, ts_ms) WHERE model IS NOT NULL;"
    "CREATE INDEX events_tool ON events(tool, ts_ms) WHERE tool IS NOT NULL;"
    "CREATE UNIQUE INDEX events_event_id ON events(conv_id, event_id)"
    " WHERE event_id IS NOT NULL;"
    "CREATE TABLE conversations ("
    " conv_id TEXT PRIMARY KEY,"
    " session_id TEXT,"
    " runtime_key TEXT, runtime_key_ts_ms INTEGER,"
    " status TEXT NOT NULL, status_ts_ms INTEGER,"
    " created_ms INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL,"
    " closed_ms INTEGER, evicted_ms INTEGER,"
    " event_count INTEGER NOT NULL DEFAULT 0, error_count INTEGER NOT NULL DEFAULT 0,"
    " last_error_ts_ms INTEGER, last_error_class TEXT, last_error_code TEXT,"
    " last_error_message TEXT,"
    " panic INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX conversations_activity ON conversations(last_activity_ms);"
    "CREATE INDEX conversations_status ON conversations(status, last_activity_ms);",

    /* version 2: provider body hashes, per-minute rollups, SEM ordering anomalies */
    "ALTER TABLE events ADD COLUMN request_sha256 TEXT;"
    "ALTER TABLE events ADD COLUMN response_sha256 TEXT;"
    "CREATE INDEX events_stream ON events(stream_id, seq) WHERE kind = 'sem';"
    "CREATE TABLE rollups ("
    " dim TEXT NOT NULL, minute_ms INTEGER NOT NULL, k1 TEXT NOT NULL, k2 TEXT NOT NULL,"
    " calls INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"
    " lat_count INTEGER NOT NULL, lat_sum_ms INTEGER NOT NULL, lat_max_ms INTEGER NOT NULL,"
    " h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL,"
    " h4 INTEGER NOT NULL, h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,"
    " h8 INTEGER NOT NULL, h9 INTEGER NOT NULL, h10 INTEGER NOT NULL,"
    " PRIMARY KEY (dim, minute_ms, k1, k2)) WITHOUT ROWID;"
    "CREATE TABLE sem_anomalies ("
    " id INTEGER PRIMARY KEY, event_row INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " conv_id TEXT, stream_id TEXT NOT NULL, anomaly TEXT NOT NULL,"
    " seq INTEGER NOT NULL, expected INTEGER);"
    "CREATE INDEX sem_anomalies_conv ON sem_anomalies(conv_id, ts_ms);"
    "CREATE INDEX sem_anomalies_ts ON sem_anomalies(ts_ms);"
    "CREATE INDEX events_turn_runtime ON events(runtime_key, ts_ms) WHERE kind = 'turn';"
    "CREATE INDEX events_inference ON events(inference_id) WHERE inference_id IS NOT NULL;"
    "CREATE TABLE timeline_entities ("
    " conv_id TEXT NOT NULL, entity_id TEXT NOT NULL, entity_kind TEXT,"
    " first_version INTEGER, last_version INTEGER,"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " upserts INTEGER NOT NULL,"
    " PRIMARY KEY (conv_id, entity_id)) WITHOUT ROWID;",

    /* version 3: redaction: the policy applied to each event, sealed raw payloads */
    "ALTER TABLE events ADD COLUMN policy TEXT;"
    "ALTER TABLE events ADD COLUMN raw BLOB;"
    "CREATE TABLE redaction_policies ("
    " id TEXT PRIMARY KEY, first_used_ms INTEGER NOT NULL, policy TEXT NOT NULL) WITHOUT ROWID;",

    /* version 4: retention: the manifest of archive segments and the removal log */
    "CREATE TABLE archive_segments ("
    " path TEXT PRIMARY KEY, tier TEXT NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,"
    " records INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, file_bytes INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, policy TEXT, key_id TEXT, created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'done') WITHOUT ROWID;"
    "CREATE INDEX archive_segments_time ON archive_segments(min_ts, max_ts);"
    "CREATE TABLE retention_log ("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, action TEXT NOT NULL, path TEXT,"
    " events INTEGER NOT NULL, min_ts INTEGER, max_ts INTEGER, detail TEXT);",

    /* version 5: a producer's retry is a duplicate even without a conv_id. The unique index
       of version 1 let NULL conv_ids differ (SQLite treats NULLs as distinct), so a retried
       event without one was stored twice: keep the first copy, then index a key that is
       never NULL. */
    "DELETE FROM events WHERE conv_id IS NULL AND event_id IS NOT NULL AND id NOT IN"
    " (SELECT min(id) FROM events WHERE conv_id IS NULL AND event_id IS NOT NULL"
    "  GROUP BY event_id);"
    "DROP INDEX events_event_id;"
    "CREATE UNIQUE INDEX events_event_key ON events(ifnull(conv_id, ''), event_id)"
    " WHERE event_id IS NOT NULL;",

    /* version 6: the store's own id, written into every segment it archives, so that stores
       sharing an archive folder never adopt each other's segments */
    "CREATE TABLE store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO store_info VALUES('store_id', lower(hex(randomblob(8))));",

    /* version 7: look-ups by the ids an investigation starts from (a trace id from the APM,
       a request id from a log line, a session id from support); partial, so events without
       them cost nothing */
    "CREATE INDEX events_trace ON events(trace_id, ts_ms) WHERE trace_id IS NOT NULL;"
    "CREATE INDEX events_request ON events(request_id, ts_ms) WHERE request_id IS NOT NULL;"
    "CREATE INDEX events_session ON events(session_id, ts_ms) WHERE session_id IS NOT NULL;",

    /* version 8: the erasure log: one row per erased conversation (kind 'conv', its id only
       as a keyed hash: HMAC-SHA256 with the store's own erase_key, 16 bytes as hex) or per
       erased value (kind 'hmac', subject the value's hmac: token as redaction stored it); no
       content */
    "CREATE TABLE erasures ("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT 'conv',"
    " subject TEXT NOT NULL UNIQUE,"
    " reason TEXT, state TEXT NOT NULL, done_ms INTEGER,"
    " hot_events INTEGER NOT NULL DEFAULT 0, segments INTEGER NOT NULL DEFAULT 0,"
    " records INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO store_info VALUES('erase_key', lower(hex(randomblob(32))));"
    /* and what stays of a conversation when retention deletes its last detail */
    "CREATE TABLE conversation_summaries ("
    " conv_id TEXT PRIMARY KEY, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    " events INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " error_codes TEXT NOT NULL, models TEXT NOT NULL, host TEXT, summarized_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX conversation_summaries_last ON conversation_summaries(last_ms);",

    /* version 9: the conversation of a trace, learned from an OTLP span naming it, so that
       spans exported in other requests (before or after it) join the conversation
       (sqlite_trace.c); kept for a bounded window, pruned by time */
    "CREATE TABLE trace_convs ("
    " trace_id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, ts_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX trace_convs_ts ON trace_convs(ts_ms);"
    /* and the messages of a provider call sent apart from its span (OTLP GenAI log
       events), parked until the span's event is stored (sqlite_parts.c) */
    "CREATE TABLE event_parts ("
    " trace_id TEXT NOT NULL, span_id TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL," /* when parked */
    " body TEXT NOT NULL);"
    "CREATE INDEX event_parts_span ON event_parts(trace_id, span_id);"
    "CREATE INDEX event_parts_ts ON event_parts(ts_ms);",

    /* version 10: the archive map, so that a reader opens only the segments and blocks that
       hold a conversation or trace (hashed key, the segment's map_id, block number; written
       by retention after each segment, rebuilt by reconciliation for segments without one),
       and the segments found unreadable (bad: why; checked: the file's size, inode and mtime
       when last verified), for /readyz, /metrics and archive verify */
    "ALTER TABLE archive_segments ADD COLUMN map_id INTEGER;"
    "ALTER TABLE archive_segments ADD COLUMN bad TEXT;"
    "ALTER TABLE archive_segments ADD COLUMN checked TEXT;"
    "CREATE UNIQUE INDEX archive_segments_map ON archive_segments(map_id)"
    " WHERE map_id IS NOT NULL;"
    "CREATE TABLE archive_map ("
    " h INTEGER NOT NULL, seg INTEGER NOT NULL, block INTEGER NOT NULL,"
    " PRIMARY KEY(h, seg, block)) WITHOUT ROWID;"
    "CREATE INDEX archive_map_seg ON archive_map(seg);"
    /* a segment's entry removed or replaced (also a rewrite in place): its map goes with it */
    "CREATE TRIGGER archive_segments_unmap AFTER DELETE ON archive_segments"
    " WHEN old.map_id IS NOT NULL BEGIN DELETE FROM archive_map WHERE seg = old.map_id; END;",

    /* version 11: failures in time order (the newest first for `errors`, a window's for
       `errors --by`), with their code and conversation in the index so that grouping by code
       reads no row. Without it SQLite walked events_ts over every event to skip the sort:
       a 200k-event store read 43k pages to group 1,690 failures. Partial: only failures.
       And the conversation as the last column of the error, model and tool indexes, so that
       grouping by class and listing the conversations that hit a class, code, model or tool
       read no row either. */
    "CREATE INDEX events_error_ts ON events(ts_ms, error_code, conv_id)"
    " WHERE error_code IS NOT NULL;"
    "DROP INDEX events_error;"
    "CREATE INDEX events_error ON events(error_class, error_code, ts_ms, conv_id)"
    " WHERE error_code IS NOT NULL;"
    "DROP INDEX events_model;"
    "CREATE INDEX events_model ON events(model, ts_ms, conv_id) WHERE model IS NOT NULL;"
    "DROP INDEX events_tool;"
    "CREATE INDEX events_tool ON events(tool, ts_ms, conv_id) WHERE tool IS NOT NULL;",

    /* version 12: compressed bodies (sqlite_body.c): from here on events.body is the envelope
       as text, or a BLOB holding one zstd frame of it whose header names (Dictionary_ID) the
       dictionary of this table it was compressed with; rows written before stay text */
    "CREATE TABLE body_dicts ("
    " id INTEGER PRIMARY KEY," /* the dictionary's own Dictionary_ID */
    " created_ms INTEGER NOT NULL,"
    " samples INTEGER NOT NULL, sample_bytes INTEGER NOT NULL," /* what it was trained on */
    " convs TEXT NOT NULL," /* the conversations sampled, "\nID\n...": for erasures */
    " dict BLOB NOT NULL);",

    /* version 13: failures counted by code as they are stored, for `errors --by code` over
       the whole store (no window): per code and conversation (error_convs), and per code
       (error_codes: failures, and the conversations that have one). Triggers on events keep
       them exact through every write of the table (ingest — the store's insert since version
       14 —, erasure, retention's deletes, a trace's events moved to their conversation); a
       conversation-less failure is counted under conv_id ''. */
    "CREATE TABLE error_convs ("
    " error_class TEXT NOT NULL, error_code TEXT NOT NULL, conv_id TEXT NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY(error_class, error_code, conv_id)) WITHOUT ROWID;"
    "CREATE TABLE error_codes ("
    " error_class TEXT NOT NULL, error_code TEXT NOT NULL, n INTEGER NOT NULL,"
    " convs INTEGER NOT NULL, PRIMARY KEY(error_class, error_code)) WITHOUT ROWID;"
    "INSERT INTO error_convs SELECT ifnull(error_class, ''), error_code, ifnull(conv_id, ''),"
    " count(*) FROM events WHERE error_code IS NOT NULL GROUP BY 1, 2, 3;"
    "INSERT INTO error_codes SELECT error_class, error_code, sum(n),"
    " count(*) FILTER (WHERE conv_id != '') FROM error_convs GROUP BY 1, 2;"
    /* a pair's first failure, its last one gone */
    "CREATE TRIGGER error_convs_new AFTER INSERT ON error_convs BEGIN"
    " INSERT INTO error_codes VALUES(new.error_class, new.error_code, 0, new.conv_id != '')"
    " ON CONFLICT DO UPDATE SET convs = convs + (new.conv_id != ''); END;"
    "CREATE TRIGGER error_convs_gone AFTER DELETE ON error_convs BEGIN"
    " UPDATE error_codes SET convs = convs - (old.conv_id != '')"
    " WHERE error_class = old.error_class AND error_code = old.error_code;"
    " DELETE FROM error_codes WHERE error_class = old.error_class"
    " AND error_code = old.error_code AND n <= 0 AND convs <= 0; END;"
    "CREATE TRIGGER events_error_in AFTER INSERT ON events"
    " WHEN new.error_code IS NOT NULL BEGIN"
    " INSERT INTO error_convs VALUES(ifnull(new.error_class, ''), new.error_code,"
    " ifnull(new.conv_id, ''), 1) ON CONFLICT DO UPDATE SET n = n + 1;"
    " UPDATE error_codes SET n = n + 1"
    " WHERE error_class = ifnull(new.error_class, '') AND error_code = new.error_code; END;"
    "CREATE TRIGGER events_error_out AFTER DELETE ON events"
    " WHEN old.error_code IS NOT NULL BEGIN"
    " UPDATE error_codes SET n = n - 1"
    " WHERE error_class = ifnull(old.error_class, '') AND error_code = old.error_code;"
    " UPDATE error_convs SET n = n - 1 WHERE error_class = ifnull(old.error_class, '')"
    " AND error_code = old.error_code AND conv_id = ifnull(old.conv_id, '');"
    " DELETE FROM error_convs WHERE error_class = ifnull(old.error_class, '')"
    " AND error_code = old.error_code AND conv_id = ifnull(old.conv_id, '') AND n <= 0; END;"
    "CREATE TRIGGER events_error_moved AFTER UPDATE OF conv_id, error_class, error_code"
    " ON events WHEN old.error_code IS NOT NULL OR new.error_code IS NOT NULL BEGIN"
    " UPDATE error_codes SET n = n - 1 WHERE old.error_code IS NOT NULL"
    " AND error_class = ifnull(old.error_class, '') AND error_code = old.error_code;"
    " UPDATE error_convs SET n = n - 1 WHERE old.error_code IS NOT NULL"
    " AND error_class = ifnull(old.error_class, '') AND error_code = old.error_code"
    " AND conv_id = ifnull(old.conv_id, '');"
    " DELETE FROM error_convs WHERE old.error_code IS NOT NULL"
    " AND error_class = ifnull(old.error_class, '') AND error_code = old.error_code"
    " AND conv_id = ifnull(old.conv_id, '') AND n <= 0;"
    " INSERT INTO error_convs SELECT ifnull(new.error_class, ''), new.error_code,"
    " ifnull(new.conv_id, ''), 1 WHERE new.error_code IS NOT NULL"
    " ON CONFLICT DO UPDATE SET n = n + 1;"
    " UPDATE error_codes SET n = n + 1 WHERE new.error_code IS NOT NULL"
    " AND error_class = ifnull(new.error_class, '') AND error_code = new.error_code; END;",

    /* version 14: a stored failure is counted by the store's insert (sq_put: the same two
       statements, run for failures only), not by a trigger on every insert. The trigger made
       each insert a statement with a sub-program, so SQLite kept a statement journal for it
       (every page it changed copied first) even when its WHEN was false: 39k of the writer's
       ~122k instructions per event (callgrind, 20k fr-gen events). Delete and update keep
       their triggers (many code paths delete; few rows change). */
    "DROP TRIGGER events_error_in;",

    /* version 15: look-ups by trace id through the conversations a trace was seen in. The
       index on (trace_id) was one B-tree leaf written per trace per commit (trace ids are
       random): 40% of the WAL pages of an OTLP commit. trace_convs held one row per linked
       trace; it now holds one per (trace, conversation) pair seen (ts_ms: when first seen,
       so the first is the trace's link), and a conversation's events of a trace are read
       from events_conv, which now ends with trace_id (the conversation's entries, no row
       read); events without a conversation from an index of their own (sqlite_trace.c). */
    "CREATE TABLE trace_convs_v15 ("
    " trace_id TEXT NOT NULL, conv_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    " PRIMARY KEY (trace_id, conv_id)) WITHOUT ROWID;"
    "INSERT INTO trace_convs_v15 SELECT trace_id, conv_id, ts_ms FROM trace_convs;"
    /* the pairs of the stored events, each from its first (in insert order: no sort), a
       linked trace's link staying its first */
    "INSERT OR IGNORE INTO trace_convs_v15(trace_id, conv_id, ts_ms)"
    " SELECT e.trace_id, e.conv_id, max(e.ingested_ms, ifnull(o.ts_ms + 1, 0))"
    " FROM events e LEFT JOIN trace_convs o ON o.trace_id = e.trace_id"
    " WHERE e.trace_id IS NOT NULL AND e.conv_id IS NOT NULL AND e.conv_id <> e.trace_id"
    " ORDER BY e.id;"
    "DROP TABLE trace_convs;"
    "ALTER TABLE trace_convs_v15 RENAME TO trace_convs;"
    "CREATE INDEX trace_convs_ts ON trace_convs(ts_ms);"
    "DROP INDEX events_trace;"
    "DROP INDEX events_conv;"
    "CREATE INDEX events_conv ON events(conv_id, ts_ms, seq, trace_id);"
    "CREATE INDEX events_trace_noconv ON events(trace_id)"
    " WHERE conv_id IS NULL AND trace_id IS NOT NULL;",

    /* version 16: new (trace, conversation) pairs are appended to trace_convs_new (no index:
       a commit writes its last page or two) and merged into trace_convs in key order, in
       chunks, once it holds enough of them (sqlite_trace.c): a pair written straight into
       trace_convs, keyed by a random trace id, was one B-tree leaf per trace per commit, 29%
       of the WAL pages of an OTLP commit. trace_pairs is every pair, merged or not. */
    "CREATE TABLE trace_convs_new (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " trace_id TEXT NOT NULL, conv_id TEXT NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE VIEW trace_pairs AS SELECT trace_id, conv_id, min(ts_ms) AS ts_ms FROM"
    " (SELECT trace_id, conv_id, ts_ms FROM trace_convs UNION ALL"
    " SELECT trace_id, conv_id, ts_ms FROM trace_convs_new) GROUP BY trace_id, conv_id;",

    /* version 17: look-ups by request and session id through the conversations each id was
       seen in (id_convs: one row per pair, with the event times a look-up reads, a minute
       wider: IDC_SLACK_MS), then their events in events_conv; events without a conversation
       from partial indexes of their own (sqlite_idconv.c). The indexes events_request and
       events_session were two B-tree inserts per event: 17% of the writer's instructions. */
    "CREATE TABLE id_convs (field TEXT NOT NULL, id TEXT NOT NULL, conv_id TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL, ts_lo INTEGER NOT NULL, ts_hi INTEGER,"
    " PRIMARY KEY (field, id, conv_id)) WITHOUT ROWID;"
    "CREATE INDEX id_convs_conv ON id_convs(conv_id);"
    "CREATE INDEX id_convs_ts ON id_convs(ts_ms);"
    "INSERT OR IGNORE INTO id_convs SELECT 'request_id', request_id, conv_id, min(ingested_ms),"
    " min(ts_ms) - 60000, max(ts_ms) + 60000 FROM events"
    " WHERE request_id IS NOT NULL AND conv_id IS NOT NULL GROUP BY request_id, conv_id;"
    "INSERT OR IGNORE INTO id_convs SELECT 'session_id', session_id, conv_id, min(ingested_ms),"
    " min(ts_ms) - 60000, NULL FROM events"
    " WHERE session_id IS NOT NULL AND conv_id IS NOT NULL GROUP BY session_id, conv_id;"
    "CREATE INDEX events_request_noconv ON events(request_id)"
    " WHERE conv_id IS NULL AND request_id IS NOT NULL;"
    "CREATE INDEX events_session_noconv ON events(session_id)"
    " WHERE conv_id IS NULL AND session_id IS NOT NULL;"
    "DROP INDEX events_request;"
    "DROP INDEX events_session;",

    /* version 18: the failures' index carries the other keys `errors --by` groups by (kind,
       model, tool), so that grouping the whole store by one of them reads the index only: it
       read every failure's row for its key, scattered over the table (at 10M events, 89k
       failures: --by kind 361 ms, --by model 391 ms past the process start). Partial, so
       only failures pay for the wider entries. */
    "DROP INDEX events_error;"
    "CREATE INDEX events_error ON events(error_class, error_code, ts_ms, conv_id, kind, model,"
    " tool) WHERE error_code IS NOT NULL;",
};

#define SCHEMA_LATEST ((int)(sizeof schema_migrations / sizeof schema_migrations[0]))

const char fr_schema_insert_event_sql[] =
    "INSERT INTO events(ts_ms, ingested_ms, kind, seq, conv_id, session_id, turn_id, run_id,"
    " request_id, stream_id, event_id, trace_id, span_id, runtime_key, inference_id, status,"
    " provider, model, tool, duration_ms, error_class, error_code, error_message, body,"
    " request_sha256, response_sha256, policy, raw)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28) ON CONFLICT DO NOTHING";

int
fr_schema_latest(void)
{
    return SCHEMA_LATEST;
}

int
fr_schema_version(sqlite3 *db, int *out, struct fr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fr_err_set(err, rc == SQLITE_NOTADB ? FR_E_VERSION : FR_E_STORE,
                          "reading schema version: %s", sqlite3_errmsg(db));
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = rc == SQLITE_NOTADB ? FR_E_VERSION : FR_E_STORE;
        fr_err_set(err, code, "reading schema version: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return code;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return FR_OK;
}

static int
schema_apply(sqlite3 *db, int version, struct fr_err *err)
{
    char *msg = NULL;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, schema_migrations[version - 1], NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        int rc = fr_err_set(err, FR_E_STORE, "migrating schema to version %d: %s", version,
                            msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return FR_OK;
}

int
fr_schema_migrate(sqlite3 *db, int target, struct fr_err *err)
{
    int cur;
    int rc = fr_schema_version(db, &cur, err);
    if (rc != FR_OK)
        return rc;
    if (cur > SCHEMA_LATEST)
        return fr_err_set(err, FR_E_VERSION,
                          "database schema version %d is newer than this flightrec supports "
                          "(%d); upgrade flightrec",
                          cur, SCHEMA_LATEST);
    if (target > SCHEMA_LATEST)
        target = SCHEMA_LATEST;
    /* an upgrade of a store holding data can build indexes over every stored event: said, so
       that a pause at start on a large store is not mistaken for a hang */
    double t0 = fr_mono_s();
    if (cur >= 1 && cur < target)
        fr_log(FR_LOG_WARN, "store",
               "upgrading the schema from version %d to %d (index builds over every stored "
               "event: on a large store this can take minutes)",
               cur, target);
    /* the sorts of those index builds spill to temporary files, not to memory (the store's
       connections keep temporary data in memory: a migration of millions of events would
       hold a whole index in RAM); back to memory after */
    bool spill = cur >= 1 && cur < target &&
                 sqlite3_exec(db, "PRAGMA temp_store=FILE", NULL, NULL, NULL) == SQLITE_OK;
    for (int v = cur + 1; v <= target && rc == FR_OK; v++)
        rc = schema_apply(db, v, err);
    if (spill)
        sqlite3_exec(db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
    if (rc != FR_OK)
        return rc;
    if (cur >= 1 && cur < target)
        fr_log(FR_LOG_WARN, "store", "schema upgraded to version %d in %.1f s", target,
               fr_mono_s() - t0);
    return FR_OK;
}
