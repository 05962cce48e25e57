/*
 * redact/redact.h - the redaction stage: nothing a detector can recognise
 * reaches disk in clear.
 *
 * A policy (configs/redaction.yaml, merged with an optional user file)
 * gives every stored value a sensitivity tag (public < internal < pii <
 * secret) from field-path rules, secret key names and the producer's
 * envelope `tags` (which can raise a tag, never lower it), and an action
 * per tag: keep, scan, mask, hash, truncate:N, drop. Detectors are regular
 * expressions with optional validators, compiled into one Vectorscan
 * database and run in one pass over an event's text. Secret detectors run
 * on every string that is kept in any form.
 *
 *     policy  = fr_policy_load(user_file)      (YAML, errors name file:line)
 *     r       = fr_redactor_new(policy, key)   (compiles the detectors)
 *     fr_redact_event(r, ev, ...)              (rewrites ev->root in place)
 *
 * A redactor is immutable once built and may be shared by threads;
 * per-call working memory comes from an internal pool.
 */
#ifndef FR_REDACT_REDACT_H
#define FR_REDACT_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/event.h"

enum fr_sensitivity {
    FR_SENS_PUBLIC,
    FR_SENS_INTERNAL,
    FR_SENS_PII,
    FR_SENS_SECRET,
    FR_SENS_COUNT
};

enum fr_action_type {
    FR_ACT_KEEP,
    FR_ACT_SCAN,
    FR_ACT_MASK,
    FR_ACT_HASH,
    FR_ACT_TRUNCATE,
    FR_ACT_DROP,
    FR_ACT_COUNT
};

/* Detector classes (bits): secret detectors run on every kept string. */
enum { FR_DET_SECRET = 1u << 0, FR_DET_PII = 1u << 1, FR_DET_ALL = 3u };

const char *fr_sensitivity_name(enum fr_sensitivity s);
int fr_sensitivity_parse(const char *name); /* -1 when unknown */
const char *fr_action_name(enum fr_action_type a);

/* ---- policy (policy.c) ---- */

struct fr_policy;

/* The built-in policy's YAML text (configs/redaction.yaml, embedded). */
extern const char fr_redaction_builtin_yaml[];

/*
 * The built-in policy merged with user_file (NULL: built-in only). See the
 * header of configs/redaction.yaml for the merge rules. err names file,
 * line and key of a bad entry. Caller frees with fr_policy_free().
 */
int fr_policy_load(const char *user_file, struct fr_policy **out, struct fr_err *err);

/* Same, with the user policy given as text (name is used in messages). */
int fr_policy_load_text(const char *yaml, size_t len, const char *name, struct fr_policy **out,
                        struct fr_err *err);
void fr_policy_free(struct fr_policy *p);

/* The effective policy as canonical JSON, and the first 16 hex digits of its SHA-256. */
const char *fr_policy_json(const struct fr_policy *p);
const char *fr_policy_id(const struct fr_policy *p);

/* ---- the redactor (redact.c) ---- */

struct fr_redactor;

/*
 * Compiles policy's detectors; takes ownership of policy (also on failure).
 * key is the deployment's HMAC key (FR_KEY_LEN bytes, copied).
 */
int fr_redactor_new(struct fr_policy *policy, const unsigned char key[FR_KEY_LEN],
                    struct fr_redactor **out, struct fr_err *err);
void fr_redactor_free(struct fr_redactor *r);
/*
 * From now on, compile detectors in a child process and load its serialized
 * databases (the long-running agent: it never maps in Vectorscan's compiler,
 * 4-5 MiB of code). Falls back to compiling here if the child fails.
 */
void fr_redact_isolate_compile(bool on);
/* How many compilations a child process did (tests, diagnostics). */
size_t fr_redact_isolated_compiles(void);

const struct fr_policy *fr_redactor_policy(const struct fr_redactor *r);
size_t fr_redactor_detectors(const struct fr_redactor *r);
const char *fr_redactor_detector_name(const struct fr_redactor *r, size_t i);

/* Hit and action counters; one per thread, added up by the owner. */
struct fr_redact_counts {
    uint64_t *hits; /* per detector, fr_redactor_detectors() entries */
    size_t ndetectors;
    uint64_t actions[FR_ACT_COUNT]; /* values an action changed */
    uint64_t events_changed;
    uint64_t bytes_scanned; /* text the detectors scanned (each value and a newline) */
    uint64_t bytes_known;   /* text not scanned: known clean from an earlier event's scan */
};
void fr_redact_counts_init(struct fr_redact_counts *c, const struct fr_redactor *r);
void fr_redact_counts_add(struct fr_redact_counts *dst, const struct fr_redact_counts *src);
void fr_redact_counts_free(struct fr_redact_counts *c);

/* What fr_redact_event() did to one value, for `flightrec redact --explain`. */
struct fr_redact_hit {
    const char *path;     /* "data.request.messages.0.content"; "<key>" suffix for a key */
    const char *detector; /* NULL for a whole-value action */
    enum fr_sensitivity tag;
    enum fr_action_type action;
    size_t start, end; /* byte offsets of the hit in the value; whole value for actions */
    const char *token; /* "hmac:<16 hex>" of the matched or whole value, never the value */
    const char *rule;  /* why a whole value was tagged secret by its key ("key name means
                          password", "secret_keys: authorization"), NULL otherwise */
};
typedef void (*fr_redact_explain_fn)(void *ud, const struct fr_redact_hit *hit);

/*
 * Redacts ev's data, error and attribute fields in place (envelope ids,
 * kind, ts_ms, v, seq and tags are public and left alone). *changed says
 * whether anything was rewritten, so the caller knows whether the producer's
 * bytes may still be stored. counts and explain may be NULL.
 */
int fr_redact_event(struct fr_redactor *r, struct fr_event *ev, struct fr_redact_counts *counts,
                    fr_redact_explain_fn explain, void *ud, bool *changed, struct fr_err *err);

/*
 * Redacts one text with the detectors of the classes given (FR_DET_*):
 * *out is the new text (caller frees) or NULL when nothing was hit. Returns
 * the number of hits. For tests, the benchmark and tools.
 */
size_t fr_redact_text(struct fr_redactor *r, const char *text, size_t len, unsigned classes,
                      char **out, size_t *outlen);

#endif
