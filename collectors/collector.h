/*
 * collectors/collector.h - the collector stage: one plugin per telemetry
 * domain that validates a kind's `data` fields and normalizes the event into
 * the store's columns (status, provider, model, tool, duration).
 *
 * A collector is a const descriptor (the type); fr_collect() runs the one
 * registered for an event's kind. Adding a domain is adding one file that
 * ends in `const struct fr_collector fr_collector_<name> = {...}` and one
 * line in collectors/registry.c.
 */
#ifndef FR_COLLECTORS_COLLECTOR_H
#define FR_COLLECTORS_COLLECTOR_H

#include <stdbool.h>

#include "core/err.h"
#include "core/event.h"
#include "core/option.h"

/* JSON types a known field may have (a bit set). null always means "absent". */
enum fr_ftype {
    FR_FT_STRING = 1 << 0,
    FR_FT_INT = 1 << 1,
    FR_FT_NUMBER = 1 << 2, /* integer or real */
    FR_FT_BOOL = 1 << 3,
    FR_FT_OBJECT = 1 << 4,
    FR_FT_ARRAY = 1 << 5,
    FR_FT_ANY = 0x3f,
};

/* A known field of a kind's `data` (tables end with a {NULL} row). */
struct fr_field {
    const char *name;
    unsigned types;             /* enum fr_ftype bits */
    const char *const *values;  /* allowed strings, NULL-terminated; NULL = any */
    const struct fr_field *sub; /* known fields of an object value; NULL = any */
    bool non_negative;          /* numbers must be >= 0 */
    unsigned item_types;        /* arrays: type bits of every item; 0 = any */
};

struct fr_collector {
    const char *name;
    const char *description;
    const struct fr_option *options;             /* NULL: no options */
    int (*init)(void **ctx, struct fr_err *err); /* optional: NULL = no state */
    void (*destroy)(void *ctx);                  /* optional */
    const int *kinds;                            /* enum fr_kind values, ended by -1 */
    const struct fr_field *fields;               /* known `data` fields, checked before normalize */
    /* Fills ev's normalized columns. Optional: NULL = nothing beyond the error. */
    int (*normalize)(void *ctx, struct fr_event *ev, struct fr_err *err);
};

/* Looks a collector up by name; NULL when none. */
const struct fr_collector *fr_collector_find(const char *name);

/* The collector that owns kind; NULL only if the registry misses a kind (a bug). */
const struct fr_collector *fr_collector_for_kind(enum fr_kind kind);

/* All registered collectors, NULL-terminated. */
extern const struct fr_collector *const fr_collectors[];

struct fr_taxonomy;

/*
 * Validates ev->data against the kind's field table, normalizes the columns
 * and classifies the error with tax (collectors/taxonomy.h; NULL = no
 * rules). On failure err names the field.
 */
int fr_collect(struct fr_event *ev, const struct fr_taxonomy *tax, struct fr_err *err);

/*
 * fr_collect() in its two halves, for the ingest pipeline which redacts in
 * between: check validates the raw input (so errors are about what the
 * producer sent), normalize derives columns, hashes and the error taxonomy
 * from the redacted tree (so no column holds what redaction removed).
 */
int fr_collect_check(struct fr_event *ev, struct fr_err *err);
int fr_collect_normalize(struct fr_event *ev, const struct fr_taxonomy *tax, struct fr_err *err);

/*
 * Sets the derived facts of a record made from a normalized event (rollup
 * rows, ordering check, entity tracking: see struct fr_record), so that the
 * store persists them without knowing any kind (collectors/derive.c).
 */
void fr_collect_derive(struct fr_record *rec);

/*
 * Checks obj against a field table; prefix names the enclosing path for
 * messages ("data"). Exposed for tests and for collectors with nested objects.
 */
int fr_fields_check(const json_t *obj, const struct fr_field *fields, const char *prefix,
                    struct fr_err *err);

/*
 * What a provider call's finish_reason says about its answer, across the
 * providers' and SDKs' spellings (OpenAI, Anthropic, Gemini, Bedrock, Cohere,
 * Mistral, the Vercel AI SDK; case and '-' / '_' ignored): "complete",
 * "truncated" (the token limit: length, max_tokens), "filtered" (a content
 * filter, a safety block or a refusal), "tool_call", "error", or "other". A
 * comma-separated list (one reason per choice, as the OTLP mapping joins
 * them) says the most severe of its reasons. NULL or "": "other".
 */
const char *fr_finish_meaning(const char *reason);

/*
 * For a meaning of fr_finish_meaning whose call succeeded but whose answer did
 * not reach the user whole (truncated, filtered, error), what happened to the
 * answer: "stopped at the token limit", "was filtered or refused", "ended in
 * an error"; NULL for the others. `show`, `tail`, the bundle summary and the
 * console (GET /v1/finish-meanings) mark those calls by it.
 */
const char *fr_finish_shortfall(const char *meaning);

/* Helpers for normalize(): borrowed string / integer of data.<key>, or NULL / false. */
const char *fr_data_str(const struct fr_event *ev, const char *key);
bool fr_data_int(const struct fr_event *ev, const char *key, int64_t *out);
bool fr_json_int_at(const json_t *obj, const char *key, int64_t *out);

#endif
