/*
 * retention/record.h - the warm record codec: the one place that writes and
 * reads the JSON lines stored in archive segments (docs/archive-format.md).
 *
 * Three record types, told apart by "t":
 *   event           {"t":"event","id":ROWID,"ingested_ms":MS,"body":ENVELOPE,
 *                    "status","provider","model","tool","error_class","error_code",
 *                    "error_message","duration_ms" (each when set),
 *                    "policy" (only when it differs from the segment's)}
 *   conversation    {"t":"conversation","conv_id","first_ms","last_ms","events","errors",
 *                    "input_tokens","output_tokens","error_codes":{CODE:N},"models":{MODEL:N}}
 *   runtime_minute  {"t":"runtime_minute","ts_ms","pid","process","samples",
 *                    "rss_bytes"|"cpu_pct"|"threads"|"open_fds":{"min","avg","max"}}
 */
#ifndef FR_RETENTION_RECORD_H
#define FR_RETENTION_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "retention/hot/store.h"

enum fr_warm_type { FR_WARM_OTHER, FR_WARM_EVENT, FR_WARM_CONVERSATION, FR_WARM_RUNTIME_MINUTE };

/* An event record of row r; takes ownership of body (the stored envelope). */
json_t *fr_warm_event_new(const struct fr_event_row *r, json_t *body, const char *segment_policy);

/* A conversation's summary within a segment; takes ownership of codes ({code: count}). */
struct fr_warm_conv {
    const char *conv_id;
    int64_t first_ms, last_ms, events, errors, input_tokens, output_tokens;
};
/* codes: {error code: n}; models: {model: n} (NULL: none); both taken. */
json_t *fr_warm_conversation_new(const struct fr_warm_conv *c, json_t *codes, json_t *models);

/* One minute of one process's runtime samples, downsampled. */
struct fr_warm_stat {
    double min, avg, max;
};
struct fr_warm_runtime {
    int64_t minute_ms, pid, samples;
    const char *process;
    struct fr_warm_stat rss_bytes, cpu_pct, threads, open_fds;
};
json_t *fr_warm_runtime_minute_new(const struct fr_warm_runtime *m);

/* A decoded record. */
struct fr_warm_record {
    enum fr_warm_type type;
    json_t *root;            /* owned */
    json_t *body;            /* events: the stored envelope (borrowed from root) */
    struct fr_event_row row; /* events: columns, strings borrowed from root; no body text */
};

/*
 * Decodes one line. The event row's policy is the record's own, else
 * segment_policy. A line that is not JSON is FR_E_VALUE; a record of
 * another type is FR_WARM_OTHER (newer writers may add types).
 */
int fr_warm_record_parse(const char *json, size_t len, const char *segment_policy,
                         struct fr_warm_record *out, struct fr_err *err);
void fr_warm_record_clear(struct fr_warm_record *r);

#endif
