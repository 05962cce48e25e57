/*
 * agent/config.h - the agent's configuration: one YAML file of sections
 * (configs/flightrec.yaml documents every option and its default), each
 * option overridable by an environment variable FLIGHTREC_<SECTION>_<KEY>
 * (e.g. FLIGHTREC_HTTP_LISTEN). Unknown keys and bad values are errors that
 * name the key and the line.
 */
#ifndef FR_AGENT_CONFIG_H
#define FR_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

struct fr_config {
    /* storage */
    char *db_path;
    char *keys_dir; /* "": $XDG_CONFIG_HOME/flightrec/keys (core/crypto.h) */
    int sync_mode;  /* 0 normal, 1 full */
    int64_t busy_timeout_ms;
    int64_t cache_mib;
    bool compress_bodies;
    int64_t queue_events;
    int64_t batch_events;
    int64_t commit_delay_ms;
    /* ingest limits */
    int64_t max_line_bytes;
    int64_t max_depth;
    int64_t prepare_nice;
    int64_t prepare_bytes;
    int64_t max_fields;
    int64_t max_string_bytes;
    /* http */
    bool http_enabled;
    char *http_listen; /* host:port; port 0 = any free port */
    int64_t http_max_body_bytes;
    int64_t http_max_inflight_bytes; /* request bodies held at once, across connections */
    int64_t http_max_connections;
    int64_t http_idle_timeout_ms; /* an idle keep-alive or half-open connection is closed */
    int64_t http_queue_wait_ms;   /* a POST waits this long at its headers for queue room */
    char *http_token;             /* bearer token; "" = no auth */
    int64_t http_local_users;     /* without a token: 0 owner (and root) only, 1 any local user */
    char *http_token_file;        /* file holding the token */
    char *query_token;            /* bearer token of the read-only query API; "" = http_token */
    char *query_token_file;       /* file holding it */
    char *admin_token;            /* bearer token of DELETE /v1/conversations/ID; "" = none */
    char *admin_token_file;       /* file holding it */
    /* otlp */
    bool otlp_enabled;
    char *otlp_listen;
    char *otlp_grpc_listen; /* "" = no gRPC */
    char *otlp_conversation_attributes;
    char *otlp_turn_attributes;
    /* socket */
    bool socket_enabled;
    char *socket_path;
    int64_t socket_max_connections; /* more are answered with an error line and closed */
    int64_t socket_idle_timeout_ms; /* an unfinished line stalled this long ends the connection */
    /* redaction */
    char *redaction_policy;
    char *hmac_key;
    bool raw;
    char *raw_key;
    /* taxonomy */
    char *taxonomy_rules;
    /* runtime sampler */
    int64_t runtime_pid;
    char *runtime_pidfile;
    int64_t runtime_interval_ms;
    bool runtime_self;
    /* retention */
    bool retention_enabled;
    char *retention_policy;
    /* ship (agent/ship.c) */
    char *ship_url;    /* "" = no shipping */
    char *query_store; /* ship.query: "" = the hot store */
    char *ship_host;
    int64_t ship_batch_events;
    int64_t ship_interval_ms;
    /* incident */
    char *incident_triggers;      /* rules file; "" = no automatic bundles */
    char *incident_upload_config; /* upload targets file; "" = no uploads */
    char *incident_upload_to;     /* target for automatic bundles */
    char *incident_bundle_dir;
    char *incident_signing_key;
    int64_t incident_outbox_retry_ms;
    /* log */
    int log_level; /* FR_LOG_ERROR .. FR_LOG_DEBUG */
};

/* Defaults for every option (as documented in configs/flightrec.yaml). */
void fr_config_defaults(struct fr_config *c);

/*
 * Defaults, then the file (NULL: none), then FLIGHTREC_* environment
 * variables. On error err names the file (or variable), line and key.
 */
int fr_config_load(const char *path, struct fr_config *c, struct fr_err *err);

/* Frees every string of c. */
void fr_config_clear(struct fr_config *c);

/* Prints the effective configuration as YAML; secrets are shown as "***". */
void fr_config_print(const struct fr_config *c, FILE *out);

/* Prints every option as the Markdown reference of docs/config.md. */
void fr_config_markdown(FILE *out);
/* The same as roff (flightrec.yaml(5)). */
void fr_config_man(FILE *out);

/* Whether a listener of c is on a non-loopback address; *listen names it. */
bool fr_config_exposed(const struct fr_config *c, const char **listen);

/*
 * The bearer token from http_token or http_token_file (at least 16 bytes
 * when set; an empty or short token file is an error, never "no auth") (caller frees); "" when
 * none. */
int fr_config_token(const struct fr_config *c, char **token, struct fr_err *err);

/* The query API's own token (query_token or query_token_file); "" = the one above. */
int fr_config_query_token(const struct fr_config *c, char **token, struct fr_err *err);
/* The admin token (erasure through the API); "" = none: the API erases nothing. */
int fr_config_admin_token(const struct fr_config *c, char **token, struct fr_err *err);

#endif
