/*
 * redact/internal.h - what the redaction stage's files share: the parsed
 * policy (policy.c) and the detector engine (detect.c) used by redact.c.
 */
#ifndef FR_REDACT_INTERNAL_H
#define FR_REDACT_INTERNAL_H

#include <hs/hs.h>
#include <pthread.h>

#include "redact/redact.h"

struct fr_action {
    enum fr_action_type type;
    size_t n; /* truncate:N */
};

/* A field rule: kind (-1 = any), dot-separated path ("*" = any one key), tag. */
struct fr_path_rule {
    int kind;
    char **segs;
    size_t nsegs;
    enum fr_sensitivity tag;
};

/* Parses path into r (FR_E_VALUE for an empty segment); used for policy
 * fields and for a producer's envelope tags. */
int fr_path_rule_init(struct fr_path_rule *r, int kind, const char *path, enum fr_sensitivity tag);
void fr_path_rule_free(struct fr_path_rule *r);

/*
 * A validator (redact/validators.c): check() says whether the candidate
 * text[start, end) of text[0, len) is really what the detector looks for.
 */
struct fr_validator {
    const char *name;        /* as the policy names it: "luhn" */
    const char *description; /* one line, for the docs */
    bool (*check)(const char *text, size_t len, size_t start, size_t end);
};

/* Every validator, ending with a NULL name. */
extern const struct fr_validator fr_validators[];

/* The validator called name, or NULL. */
const struct fr_validator *fr_validator_find(const char *name);

struct fr_det_def {
    char *name;
    unsigned klass; /* FR_DET_SECRET or FR_DET_PII */
    char *pattern;
    const struct fr_validator *validate; /* NULL: none */
    char **not_after;
    size_t n_not_after;
    char *origin; /* "file:line" for messages */
};

struct fr_policy {
    struct fr_action actions[FR_SENS_COUNT];
    enum fr_sensitivity default_tag;
    bool replace_with_hash; /* scan_replacement: hash */
    struct fr_path_rule *rules;
    size_t nrules;
    struct fr_det_def *dets;
    size_t ndets;
    char **secret_keys; /* lower case */
    size_t nsecret_keys;
    bool key_words; /* also keys that name a credential by their words (redact/keyname.h) */
    char *json;
    char id[17];
};

/* ---- detector engine ---- */

struct fr_detect;

/* A raw candidate as Vectorscan reports it, before validation. */
struct fr_det_raw {
    unsigned det;
    size_t start, end;
};

/* A final hit: validated, overlaps merged (labelled by the earliest, longest). */
struct fr_det_hit {
    unsigned det;
    size_t start, end;
};

/* Per-thread working memory of the engine. */
struct fr_det_scratch {
    hs_scratch_t *hs;
    struct fr_det_raw *raw;
    size_t nraw, capraw;
    struct fr_det_hit *hits;
    size_t nhits, caphits;
};

int fr_detect_compile(const struct fr_det_def *defs, size_t n, struct fr_detect **out,
                      struct fr_err *err);
void fr_detect_free(struct fr_detect *d);
const struct fr_det_def *fr_detect_def(const struct fr_detect *d, unsigned det);

int fr_det_scratch_init(struct fr_detect *d, struct fr_det_scratch *s, struct fr_err *err);
void fr_det_scratch_free(struct fr_det_scratch *s);

/* Fills s->raw with every candidate in text[0, len) (one Vectorscan pass). */
int fr_detect_raw(const struct fr_detect *d, struct fr_det_scratch *s, const char *text,
                  size_t len);

/*
 * Calls cb for every match end Vectorscan reports in text, per detector
 * (from is not tracked: 0); cb returns non-zero to stop. Cheaper than
 * fr_detect_raw, for finding which part of a text needs a closer look.
 */
int fr_detect_each(const struct fr_detect *d, struct fr_det_scratch *s, const char *text,
                   size_t len, int (*cb)(unsigned det, size_t from, size_t to, void *ud), void *ud);

/* Turns s->raw into s->hits: classes filter, validators, not_after, overlap merge. */
void fr_detect_resolve(const struct fr_detect *d, struct fr_det_scratch *s, const char *text,
                       size_t len, unsigned classes);

#endif
