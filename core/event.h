/*
 * core/event.h - the one normalized in-memory record for an event.
 *
 * An event is parsed from the wire format (core/wire.h), its kind-specific
 * fields are validated and normalized by a collector (collectors/), it is
 * redacted (redact/), and then stored (retention/hot/). struct fr_event is that
 * record at every stage. It owns the parsed JSON (root); every other pointer
 * into JSON is borrowed from root and lives exactly as long as the event.
 *
 * Unknown top-level fields are kept: they stay in root and are written to
 * the stored body as attributes, and unknown fields inside `data` stay there.
 */
#ifndef FR_CORE_EVENT_H
#define FR_CORE_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The longest path fr_json_path_at writes (core/wire.h), with its NUL. */
#define FR_PATH_MAX 96

enum fr_kind {
    FR_KIND_CONVERSATION,
    FR_KIND_TURN,
    FR_KIND_TIMELINE,
    FR_KIND_SEM,
    FR_KIND_PROVIDER,
    FR_KIND_TOOL,
    FR_KIND_MIDDLEWARE,
    FR_KIND_TRANSPORT,
    FR_KIND_RUNTIME,
    FR_KIND_ERROR,
    FR_KIND_COUNT
};

/* Token counters of a provider call, in wire order under data.usage. */
enum fr_token {
    FR_TOKEN_INPUT,
    FR_TOKEN_OUTPUT,
    FR_TOKEN_CACHED,
    FR_TOKEN_REASONING,
    FR_TOKEN_COUNT
};

/* Correlation ids of the envelope, in wire order. */
enum fr_id {
    FR_ID_CONV,
    FR_ID_SESSION,
    FR_ID_TURN,
    FR_ID_RUN,
    FR_ID_REQUEST,
    FR_ID_STREAM,
    FR_ID_EVENT,
    FR_ID_TRACE,
    FR_ID_SPAN,
    FR_ID_RUNTIME_KEY,
    FR_ID_INFERENCE,
    FR_ID_COUNT
};

/* The wire name of each id ("conv_id", ...), indexed by enum fr_id. */
extern const char *const fr_id_names[FR_ID_COUNT];

/* The error taxonomy's classes (see collectors/taxonomy.h). */
enum fr_error_class {
    FR_ECLASS_NONE = 0,
    FR_ECLASS_VALIDATION,
    FR_ECLASS_PROVIDER,
    FR_ECLASS_TOOL,
    FR_ECLASS_PROJECTION,
    FR_ECLASS_STORAGE,
    FR_ECLASS_TRANSPORT,
    FR_ECLASS_RUNTIME,
    FR_ECLASS_COUNT
};

/* A normalized error: class, stable code and a user-safe one-line message. */
struct fr_event_error {
    enum fr_error_class klass;
    char code[64];     /* "<class>.<reason>", e.g. "provider.rate_limited" */
    char message[256]; /* user-safe: first line of the message, no stack */
    bool panic;
};

struct fr_event {
    json_t *root; /* owns: the parsed envelope object */
    enum fr_kind kind;
    int64_t ts_ms; /* occurred at, from the producer */
    int64_t seq;   /* valid when has_seq */
    bool has_seq;
    const char *ids[FR_ID_COUNT]; /* borrowed from root; NULL when absent */
    json_t *data;                 /* borrowed; NULL when absent */
    json_t *error;                /* borrowed raw error object; NULL when absent */
    json_t *tags;                 /* borrowed; NULL when absent */

    /* Normalized columns, filled by the kind's collector. */
    const char *status;   /* borrowed or static; NULL when the kind has none */
    char status_buf[24];  /* backing store when status is derived (HTTP codes) */
    const char *provider; /* borrowed */
    const char *model;    /* borrowed */
    const char *tool;     /* borrowed: tool name */
    int64_t duration_ms;  /* valid when has_duration */
    bool has_duration;
    bool has_error; /* err below is valid */
    struct fr_event_error err;
    int64_t tokens[FR_TOKEN_COUNT]; /* provider usage; 0 when not given */
    const char *route;              /* borrowed: transport HTTP path (rollup key) */
    const char *finish;             /* borrowed: provider finish_reason (rollup key) */
    char request_sha256[65];        /* provider: hex SHA-256 of the request body, "" = none */
    char response_sha256[65];       /* provider: hex SHA-256 of the response body, "" = none */
    const char *entity_id;          /* borrowed: timeline entity id */
    const char *entity_kind;        /* borrowed: timeline entity kind */
    int64_t version;                /* timeline: entity version, valid when has_version */
    bool has_version;
    /* static (fr_wire_alias): a top-level key that most likely meant the envelope field
       misnamed_field, which the event lacks ("conversation_id" for conv_id), or one of
       core/wire.h's FR_WIRE_MISSING (collectors/error.c: kind error without error) and
       FR_WIRE_AHEAD (ts_ms ahead of the clock); NULL = none */
    const char *misnamed;
    int misnamed_field;
    /* where the value the warning misnamed names was mended (FR_WIRE_WIDE, FR_WIRE_HALF,
       FR_WIRE_BYTES): its path in the envelope, "data.messages[2].content"
       (fr_json_path_at); "" = not known */
    char mended_at[FR_PATH_MAX];
};

/*
 * The normalized record as it goes to the store: the event's columns and its
 * stored body, flattened so it no longer needs the JSON tree. Every string
 * points into `strings`, one allocation the record owns; this keeps queued
 * records small (about the size of the body) and cheap to free.
 */
struct fr_record {
    enum fr_kind kind;
    int64_t ts_ms;
    int64_t seq;
    bool has_seq;
    const char *ids[FR_ID_COUNT];
    const char *status, *provider, *model, *tool;
    int64_t duration_ms;
    bool has_duration;
    bool has_error;
    /* the event's error, its texts in strings ("" when none): a record waits in the ingest
       queue, so it carries no fixed-size buffers most events leave empty */
    struct fr_record_error {
        enum fr_error_class klass;
        const char *code, *message;
        bool panic;
    } err;
    int64_t tokens[FR_TOKEN_COUNT];
    const char *route;
    const char *finish;         /* provider: finish_reason */
    const char *finish_meaning; /* static (fr_collect_derive): what finish says; NULL = none */
    const char *request_sha256, *response_sha256; /* hex; "" = none */
    const char *entity_id, *entity_kind;
    int64_t version;
    bool has_version;
    const char *misnamed; /* static: as in struct fr_event; NULL = none */
    int misnamed_field;
    char *mended_at;  /* owned: as in struct fr_event; NULL = not known */
    const char *body; /* the envelope JSON (core/wire.h), after redaction */
    size_t body_len;
    char policy[17];    /* id of the redaction policy applied, "" = none */
    unsigned char *raw; /* owned: the sealed unredacted line (raw mode), NULL = none */
    size_t raw_len;
    /* owned: body as the store keeps it, made on the producer's thread (fr_store_pack) so that
       the writer's does not; NULL = none, the store makes it itself */
    unsigned char *packed;
    size_t packed_len;
    unsigned packed_dict; /* the store's dictionary it was made with */
    char *strings;        /* owns every string above */
    uint64_t line;        /* 1-based input line, for error reports; 0 when unknown */
    bool duplicate;       /* set by the commit: already stored (a retry), not stored twice */
    bool erased;          /* set by the commit: its conversation was erased; refused, not stored */
    bool restored;        /* back from an archive: counted when first ingested, so the store keeps
                             the row only (no conversation index, rollup, timeline or order check) */
    bool part;            /* not an event: messages of the provider event of the same trace and span
                             (an OTLP GenAI log record), merged into it by the store */
    /*
     * Derived facts, set by the collectors (fr_collect_derive) and persisted
     * as given by the store, which knows no kind: the per-minute rollup
     * rows this event counts in, whether its stream's order is checked
     * (stream id + seq), whether its entity's first/last seen is kept. The
     * keys name fields of the record, not pointers into it, so a record
     * stays valid when it is moved (batches are arrays that grow).
     */
    struct fr_rollup_key {
        const char *dim;      /* static */
        unsigned char k1, k2; /* enum fr_record_field */
        bool tokens, latency; /* add the token counts / the duration too */
    } rollups[3];
    size_t nrollups;
    bool order_check;
    bool entity_track;
};

/* Fields of a record a rollup key can name. */
enum fr_record_field {
    FR_RF_EMPTY, /* "" */
    FR_RF_PROVIDER,
    FR_RF_MODEL,
    FR_RF_TOOL,
    FR_RF_ROUTE,  /* "-" when none */
    FR_RF_STATUS, /* "-" when none */
    FR_RF_ERROR_CLASS,
    FR_RF_ERROR_CODE,
    FR_RF_FINISH, /* provider finish_reason */
};

/* The text of field f of rec, never NULL ("" or "-" when the record has none). */
const char *fr_record_field(const struct fr_record *rec, enum fr_record_field f);

/*
 * Flattens ev's columns and body[0, body_len) into rec (overwritten).
 * Caller frees with fr_record_clear().
 */
void fr_record_from_event(struct fr_record *rec, const struct fr_event *ev, const char *body,
                          size_t body_len);

/* Releases what rec owns and zeroes it. */
void fr_record_clear(struct fr_record *rec);

/* Wire name of a kind ("provider"), or "?" for an invalid value. */
const char *fr_kind_name(enum fr_kind kind);

/* Parses a wire kind name; returns the kind or -1. */
int fr_kind_parse(const char *name);

/* Wire name of an error class ("provider"), "" for FR_ECLASS_NONE. */
const char *fr_error_class_name(enum fr_error_class klass);

/* Parses an error class name; returns the class or -1. */
int fr_error_class_parse(const char *name);

/* Releases what the event owns and zeroes it; the struct itself is the caller's. */
void fr_event_clear(struct fr_event *ev);

#endif
