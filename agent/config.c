/*
 * agent/config.c - see config.h. One table (core/option.h) describes every
 * option: section and key, type, default, bounds, where it lives in struct
 * fr_config and what it means; loading, environment overrides, printing and
 * the reference in docs/config.md all come from that table.
 */
#include "agent/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/option.h"

static const char *const sync_modes[] = {"normal", "full", NULL};
static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const local_users[] = {"owner", "any", NULL};

#define O(field) offsetof(struct fr_config, field)
#define STR(sec, key, field, def, text)                                                            \
    {                                                                                              \
        sec, key, FR_OPT_STR, def, O(field), 0, 0, NULL, text                                      \
    }
#define SECRET(sec, key, field, text)                                                              \
    {                                                                                              \
        sec, key, FR_OPT_SECRET, "", O(field), 0, 0, NULL, text                                    \
    }
#define INT(sec, key, field, def, lo, hi, text)                                                    \
    {                                                                                              \
        sec, key, FR_OPT_INT, def, O(field), lo, hi, NULL, text                                    \
    }
#define BOOL(sec, key, field, def, text)                                                           \
    {                                                                                              \
        sec, key, FR_OPT_BOOL, def, O(field), 0, 0, NULL, text                                     \
    }

/* Every option of the agent, once: configs/flightrec.yaml and docs/config.md follow it. */
static const struct fr_option opts[] = {
    STR("storage", "path", db_path, "./var/flightrec.db",
        "The hot store (SQLite, WAL mode); created with its directory, owner-only."),
    {"storage", "synchronous", FR_OPT_ENUM, "normal", O(sync_mode), 0, 0, sync_modes,
     "normal: an acknowledged event survives a crash of the agent; full: also power loss (an "
     "fsync per commit)."},
    INT("storage", "busy_timeout_ms", busy_timeout_ms, "5000", 0, 600000,
        "How long a commit waits for a lock held by another process before failing."),
    BOOL("storage", "compress_bodies", compress_bodies, "true",
         "Store event bodies zstd-compressed with a dictionary trained from the store's own "
         "events (about half the disk); false keeps new bodies as plain JSON text. Reads handle "
         "both."),
    INT("storage", "cache_mib", cache_mib, "3", 1, 4096,
        "Page cache of each connection to the hot store (the writer's, each reader's), in MiB. "
        "A bigger one barely speeds up ingest (the OS caches the file too) and costs resident "
        "memory; it can help repeated large queries. 2 saves another MiB but cost the writer "
        "about 12% more CPU per event in a 10M-event store."),
    INT("storage", "queue_events", queue_events, "10000", 10, 10000000,
        "Events accepted but not yet committed (about 1 kB of memory each); when full, HTTP "
        "answers 429 and the socket stops reading. Also the most events one request may carry "
        "(413 above it)."),
    INT("storage", "batch_events", batch_events, "2000", 1, 100000,
        "Most events in one transaction (group commit), and lines per socket batch."),
    INT("storage", "commit_delay_ms", commit_delay_ms, "0", 0, 1000,
        "How long a transaction of fewer than 256 events waits for more before it commits. "
        "Each transaction writes every page it touches whole into the WAL (about 50 KB for one "
        "event alone), so producers that send events one at a time cost the disk that much "
        "per event; a delay gathers them into fewer transactions at the cost of that much "
        "more latency for every acknowledgement under such traffic (a client that waits for "
        "each ack before sending the next gets at most 1000/delay acks per second). 0: a "
        "transaction waits only, at most 1 ms, for requests being prepared at that moment. "
        "Read at start."),
    STR("keys", "dir", keys_dir, "",
        "Folder of the key files (hmac.key, cold.key, archive.key, signing.pem), kept apart "
        "from the data so that a copy of the data does not carry its keys (\"\" = "
        "$XDG_CONFIG_HOME/flightrec/keys, else ~/.config/flightrec/keys; "
        "$FLIGHTREC_KEYS_DIR wins). Read at start."),
    INT("ingest", "max_line_bytes", max_line_bytes, "1048576", 64, 64 << 20,
        "Longest accepted event line; a longer one is rejected on its own."),
    INT("ingest", "max_depth", max_depth, "64", 2, 1000, "Deepest accepted JSON nesting."),
    INT("ingest", "prepare_nice", prepare_nice, "10", 0, 19,
        "Niceness added to the threads that parse and redact received events (an HTTP "
        "connection from its first POST of events or OTLP on, an OTLP/gRPC request, a socket "
        "connection), so that they yield the CPU to the writer thread, which commits every "
        "event and sets the pace; at the same priority they preempted it (docs/benchmarks.md). "
        "They also yield to the service the agent sits beside. An HTTP connection keeps the "
        "value until it closes; a system call filter that refuses setpriority is said once at "
        "warn (the shipped unit allows it). 0: the agent's own priority."),
    INT("ingest", "prepare_bytes", prepare_bytes, "8388608", 65536, 1LL << 34,
        "Bytes of request bodies parsed and prepared at once, across connections. A request "
        "is worked on as a tree of JSON values, 10-20 times its body (an OTLP export of 1 MiB "
        "or more, 512 spans or log records at a time: 50-70 MiB for 8,000 spans), so a request "
        "that would pass this waits, holding only its body, until those being prepared are "
        "done; one alone always goes. Requests of a few hundred KB, as SDKs and /v1/events "
        "batches of 500 send, do not wait."),
    INT("ingest", "max_fields", max_fields, "10000", 16, 10000000,
        "Most JSON values (objects, arrays, scalars) in one event."),
    INT("ingest", "max_string_bytes", max_string_bytes, "1048576", 64, 64 << 20,
        "Longest string value or key in one event, in bytes."),
    BOOL("http", "enabled", http_enabled, "true",
         "Serve POST /v1/events, the query API, /healthz, /readyz and /metrics."),
    STR("http", "listen", http_listen, "127.0.0.1:8787",
        "HOST:PORT (IPv4); port 0 picks a free port. A non-loopback address needs a token."),
    INT("http", "max_body_bytes", http_max_body_bytes, "16777216", 1024, 1 << 30,
        "Largest request body, compressed and decompressed (413 above it)."),
    INT("http", "max_inflight_bytes", http_max_inflight_bytes, "33554432", 65536, 1LL << 34,
        "Bytes of request bodies the agent holds at once, across connections (HTTP bodies and "
        "OTLP/gRPC messages), before it works on them; a request that would pass it gets 429 "
        "(gRPC: RESOURCE_EXHAUSTED) with Retry-After at once, its body read and dropped (one "
        "request is always taken, whatever its size)."),
    INT("http", "max_connections", http_max_connections, "128", 1, 10000,
        "Connections serving requests (a thread each); 16 more are kept for /healthz, /readyz "
        "and /metrics, and a request past the limit gets 503 at once."),
    {"http", "queue_wait", FR_OPT_DURATION, "1s", O(http_queue_wait_ms), 0, 60000, NULL,
     "How long a request that stores events (POST /v1/events, OTLP/HTTP, an OTLP/gRPC call) "
     "waits at its headers, before its body is read, for room in the ingest queue "
     "(storage.queue_events). Meanwhile the body waits in the sender's socket; still no room "
     "then: 429 (gRPC: RESOURCE_EXHAUSTED) with Retry-After, the body read and dropped. 0: "
     "refuse at once."},
    {"http", "idle_timeout", FR_OPT_DURATION, "10s", O(http_idle_timeout_ms), 1000, 3600000, NULL,
     "A connection idle this long (keep-alive, or opened and never used) is closed."},
    {"http", "local_users", FR_OPT_ENUM, "owner", O(http_local_users), 0, 0, local_users,
     "Without a token, who may use /v1/ (ingest, queries, OTLP) over loopback: owner (processes "
     "of the agent's own user, and root; others get 403) or any (every local user). With a "
     "token, holding it is what counts."},
    SECRET("http", "auth_token", http_token,
           "Bearer token every /v1/ request needs (prefer auth_token_file)."),
    STR("http", "auth_token_file", http_token_file, "",
        "File holding the token (owner-only); wins over auth_token."),
    SECRET("http", "query_token", query_token,
           "Token of the read-only query API (GET /v1/...); empty: GETs use auth_token."),
    STR("http", "query_token_file", query_token_file, "",
        "File holding the query token (owner-only); wins over query_token."),
    SECRET("http", "admin_token", admin_token,
           "Token of DELETE /v1/conversations/ID (erasure); separate from the ingest and query "
           "tokens. Empty: the API erases nothing (flightrec erase still does)."),
    STR("http", "admin_token_file", admin_token_file, "",
        "File holding the admin token (owner-only); wins over admin_token."),
    BOOL("otlp", "enabled", otlp_enabled, "true",
         "OTLP/HTTP receiver, protobuf or JSON (POST /v1/traces, /v1/logs, /v1/metrics only)."),
    STR("otlp", "listen", otlp_listen, "127.0.0.1:4318", "HOST:PORT (IPv4) of the receiver."),
    STR("otlp", "grpc_listen", otlp_grpc_listen, "127.0.0.1:4317",
        "HOST:PORT (IPv4) of the OTLP/gRPC receiver (the exporters' default port); \"\" = no "
        "gRPC. Same token, limits and durable acks as OTLP/HTTP."),
    STR("otlp", "conversation_attributes", otlp_conversation_attributes,
        "gen_ai.conversation.id,session.id,conversation.id,"
        "traceloop.association.properties.conversation_id,"
        "traceloop.association.properties.session_id,ai.telemetry.metadata.conversationId,"
        "ai.telemetry.metadata.sessionId",
        "Span/log attributes naming the conversation (first present wins; else the trace id)."),
    STR("otlp", "turn_attributes", otlp_turn_attributes, "gen_ai.turn.id,turn.id",
        "Span/log attributes naming the turn."),
    BOOL("socket", "enabled", socket_enabled, "true",
         "NDJSON over a Unix stream socket, one ack line per committed batch."),
    STR("socket", "path", socket_path, "./var/flightrec.sock",
        "Created with mode 0600; a stale file from a crash is replaced."),
    INT("socket", "max_connections", socket_max_connections, "64", 1, 10000,
        "Connections served at once; one more gets an error line and is closed. Each holds "
        "at most ingest.max_line_bytes of an unfinished line."),
    {"socket", "idle_timeout", FR_OPT_DURATION, "10s", O(socket_idle_timeout_ms), 100, 3600000,
     NULL,
     "An unfinished line (bytes without their newline) that gets no byte for this long ends "
     "the connection with an error line; the lines before it are acknowledged. Waiting "
     "between whole lines is never timed out."},
    STR("redaction", "policy", redaction_policy, "",
        "A policy merged over the built-in configs/redaction.yaml (\"\" = built-in only)."),
    STR("redaction", "hmac_key", hmac_key, "",
        "HMAC key file for keyed hashes (\"\" = hmac.key in keys.dir)."),
    BOOL("redaction", "raw", raw, "false",
         "Also store the unredacted line of each changed event, sealed under raw_key."),
    STR("redaction", "raw_key", raw_key, "", "Raw-mode key file (required when raw is true)."),
    STR("taxonomy", "rules", taxonomy_rules, "",
        "Error-taxonomy rules tried before the built-in configs/error-taxonomy.yaml."),
    INT("runtime", "pid", runtime_pid, "0", 0, 4194304,
        "The chat server process to sample from /proc (0 = none)."),
    STR("runtime", "pidfile", runtime_pidfile, "",
        "Or a pidfile, re-read at every sample so a restart is followed."),
    INT("runtime", "interval_ms", runtime_interval_ms, "5000", 100, 3600000,
        "How often to sample (RSS, CPU %, threads, open fds, uptime, state), in ms."),
    BOOL("runtime", "self", runtime_self, "true", "Also sample the agent itself."),
    BOOL("retention", "enabled", retention_enabled, "true",
         "Run the retention job inside the agent, every schedule.interval of the policy."),
    STR("retention", "policy", retention_policy, "",
        "A retention policy merged over the built-in configs/retention.yaml (\"\" = built-in)."),
    SECRET("ship", "url", ship_url,
           "The fleet store every committed event is shipped to: a PostgreSQL URI "
           "(postgres://USER@HOST:PORT/DB; a password is better in ~/.pgpass or PGPASSWORD "
           "than here). \"\" = no shipping. Ingest never waits for it: while it is "
           "unreachable the backlog stays in the hot store (bounded by retention) and drains "
           "when it returns."),
    SECRET("ship", "query", query_store,
           "Where the query API (GET /v1/conversations, /v1/events, /v1/errors, ...) reads: "
           "\"\" = this agent's hot store and archives; a fleet store (postgres://...) answers "
           "for every sidecar shipping into it (connected on first use; unreachable: 503)."),
    STR("ship", "host", ship_host, "",
        "This sidecar's name in the fleet store (each row says which host it came from); "
        "\"\" = the machine's hostname."),
    INT("ship", "batch_events", ship_batch_events, "5000", 1, 1000000,
        "Most events in one shipped batch (one COPY and one transaction)."),
    {"ship", "interval", FR_OPT_DURATION, "500ms", O(ship_interval_ms), 10, 3600000, NULL,
     "How often to look for new events when caught up (a full batch is followed at once)."},
    STR("incident", "triggers", incident_triggers, "",
        "Automatic incident bundles: a rules file (configs/triggers.yaml; \"\" = none)."),
    STR("incident", "upload_config", incident_upload_config, "",
        "Upload targets and the outbox (configs/upload.yaml; \"\" = no uploads)."),
    STR("incident", "upload_to", incident_upload_to, "",
        "Target that automatic bundles are queued for."),
    STR("incident", "bundle_dir", incident_bundle_dir, "./var/bundles",
        "Where automatic bundles are written."),
    STR("incident", "signing_key", incident_signing_key, "",
        "Ed25519 signing key (\"\" = signing.pem in keys.dir, created if absent)."),
    INT("incident", "outbox_retry_ms", incident_outbox_retry_ms, "60000", 100, 86400000,
        "How often the agent retries what waits in the outbox, in ms."),
    {"log", "level", FR_OPT_ENUM, "warn", O(log_level), 0, 0, levels,
     "error, warn, info or debug; logs go to stderr and never hold payload data."},
    {0},
};

/* Variables read elsewhere, so that the misspelling check does not flag them. */
static const char *const other_env[] = {"FLIGHTREC_DB",
                                        "FLIGHTREC_CONFIG",
                                        "FLIGHTREC_RETENTION",
                                        "FLIGHTREC_TAXONOMY",
                                        "FLIGHTREC_REDACTION",
                                        "FLIGHTREC_HMAC_KEY",
                                        "FLIGHTREC_RAW_KEY",
                                        "FLIGHTREC_LOG_LEVEL",
                                        "FLIGHTREC_UPLOAD_CONFIG",
                                        NULL};

void
fr_config_defaults(struct fr_config *c)
{
    memset(c, 0, sizeof *c);
    fr_options_defaults(opts, c);
}

void
fr_config_clear(struct fr_config *c)
{
    fr_options_clear(opts, c);
    memset(c, 0, sizeof *c);
}

static void
warn_env(const char *msg)
{
    fr_log(FR_LOG_WARN, "config", "%s", msg);
}

/* Whether the host part of "host:port" is a loopback address. */
static bool
loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(n < sizeof host ? n : sizeof host - 1), listen);
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* http.listen and otlp.listen are HOST:PORT with a port: `localhost` alone would only fail at
 * start. */
static int
check_listen(const struct fr_config *c, struct fr_err *err)
{
    const char *names[] = {"http.listen", "otlp.listen", "otlp.grpc_listen"};
    const char *vals[] = {c->http_listen, c->otlp_listen, c->otlp_grpc_listen};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && vals[i][0] == '\0')
            continue; /* gRPC off */
        const char *colon = strrchr(vals[i], ':');
        char *end = NULL;
        long port = colon && colon[1] ? strtol(colon + 1, &end, 10) : -1;
        if (colon == NULL || colon == vals[i] || end == NULL || *end != '\0' || port < 0 ||
            port > 65535)
            return fr_err_set(err, FR_E_CONFIG,
                              "%s: expected HOST:PORT (e.g. 127.0.0.1:8787), got '%s'", names[i],
                              vals[i]);
    }
    return FR_OK;
}

/* A listener on a non-loopback address needs a token: anyone on the network could reach it. */
static int
check_exposure(const struct fr_config *c, const char *section, bool enabled, const char *listen,
               struct fr_err *err)
{
    if (!enabled || loopback(listen) || (c->http_token && *c->http_token) ||
        (c->http_token_file && *c->http_token_file))
        return FR_OK;
    return fr_err_set(err, FR_E_CONFIG,
                      "%s: %s is not a loopback address; set http.auth_token_file (or "
                      "http.auth_token) so that only holders of the token can send or read data",
                      section, listen);
}

bool
fr_config_exposed(const struct fr_config *c, const char **listen)
{
    if (c->http_enabled && !loopback(c->http_listen)) {
        *listen = c->http_listen;
        return true;
    }
    if (c->otlp_enabled && !loopback(c->otlp_listen)) {
        *listen = c->otlp_listen;
        return true;
    }
    if (c->otlp_enabled && c->otlp_grpc_listen[0] && !loopback(c->otlp_grpc_listen)) {
        *listen = c->otlp_grpc_listen;
        return true;
    }
    return false;
}

int
fr_config_load(const char *path, struct fr_config *c, struct fr_err *err)
{
    fr_config_defaults(c);
    int rc = path ? fr_options_load_yaml(opts, c, path, err) : FR_OK;
    /* FLIGHTREC_DB keeps working as the CLI's database variable */
    const char *db = getenv("FLIGHTREC_DB");
    if (rc == FR_OK && db && *db) {
        free(c->db_path);
        c->db_path = fr_strdup(db);
    }
    if (rc == FR_OK)
        rc = fr_options_load_env(opts, c, "FLIGHTREC", other_env, warn_env, err);
    if (rc == FR_OK)
        rc = check_listen(c, err);
    if (rc == FR_OK && c->batch_events > c->queue_events)
        rc = fr_err_set(err, FR_E_CONFIG,
                        "storage.batch_events (%lld) is larger than storage.queue_events "
                        "(%lld): a socket batch could never be queued",
                        (long long)c->batch_events, (long long)c->queue_events);
    if (rc == FR_OK)
        rc = check_exposure(c, "http.listen", c->http_enabled, c->http_listen, err);
    if (rc == FR_OK)
        rc = check_exposure(c, "otlp.listen", c->otlp_enabled, c->otlp_listen, err);
    if (rc == FR_OK)
        rc = check_exposure(c, "otlp.grpc_listen", c->otlp_enabled && c->otlp_grpc_listen[0],
                            c->otlp_grpc_listen, err);
    if (rc != FR_OK)
        fr_config_clear(c);
    return rc;
}

void
fr_config_print(const struct fr_config *c, FILE *out)
{
    fr_options_print(opts, c, out);
}

void
fr_config_markdown(FILE *out)
{
    fr_options_markdown(opts, "FLIGHTREC", out);
}

void
fr_config_man(FILE *out)
{
    fr_options_man(opts, "FLIGHTREC", out);
}

/*
 * A token shorter than this is refused: a guessable token, or an empty token
 * file, would otherwise turn authentication off or make it trivial.
 */
#define FR_TOKEN_MIN 16

/* A token given inline or in a file (owner-only, like every key file). */
static int
read_token(const char *what, const char *inline_value, const char *file, char **token,
           struct fr_err *err)
{
    *token = NULL;
    if (file && *file) {
        struct stat st;
        if (stat(file, &st) == 0 && (st.st_mode & 077))
            return fr_err_set(err, FR_E_CONFIG,
                              "token file %s: readable by group or others (mode %03o); run "
                              "chmod 600 %s",
                              file, (unsigned)(st.st_mode & 0777), file);
        size_t len;
        int rc = fr_read_file(file, token, &len, err);
        if (rc != FR_OK)
            return rc;
        while (len > 0 && isspace((unsigned char)(*token)[len - 1]))
            (*token)[--len] = '\0';
        if (len < FR_TOKEN_MIN) {
            free(*token);
            *token = NULL;
            return fr_err_set(err, FR_E_CONFIG,
                              "%s_file %s: the token is %zu bytes; at least %d are needed (an "
                              "empty file would turn authentication off)",
                              what, file, len, FR_TOKEN_MIN);
        }
        return FR_OK;
    }
    size_t len = inline_value ? strlen(inline_value) : 0;
    if (len > 0 && len < FR_TOKEN_MIN)
        return fr_err_set(err, FR_E_CONFIG, "%s: the token is %zu bytes; at least %d are needed",
                          what, len, FR_TOKEN_MIN);
    *token = fr_strdup(inline_value ? inline_value : "");
    return FR_OK;
}

int
fr_config_token(const struct fr_config *c, char **token, struct fr_err *err)
{
    return read_token("http.auth_token", c->http_token, c->http_token_file, token, err);
}

int
fr_config_query_token(const struct fr_config *c, char **token, struct fr_err *err)
{
    return read_token("http.query_token", c->query_token, c->query_token_file, token, err);
}

int
fr_config_admin_token(const struct fr_config *c, char **token, struct fr_err *err)
{
    return read_token("http.admin_token", c->admin_token, c->admin_token_file, token, err);
}
