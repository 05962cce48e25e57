/*
 * collectors/taxonomy.h - normalizes an event's raw failure into the product
 * taxonomy: error_class (validation, provider, tool, projection, storage,
 * transport, runtime), a stable error_code "<class>.<reason>" and a
 * user-safe one-line message (no stack, no cause chain).
 *
 * The taxonomy is data: rules in YAML (configs/error-taxonomy.yaml, which is
 * also embedded as the built-in rules). Rules are tried in order, first
 * match wins; without a match an error gets "<class>.unknown" with the class
 * inferred from the event's kind.
 */
#ifndef FR_COLLECTORS_TAXONOMY_H
#define FR_COLLECTORS_TAXONOMY_H

#include <stddef.h>

#include "collectors/collector.h"
#include "core/err.h"
#include "core/event.h"

/* Known fields of the raw `error` object (wire format); checked by fr_collect(). */
extern const struct fr_field fr_error_fields[];

struct fr_taxonomy;

/* The built-in rules' YAML text (configs/error-taxonomy.yaml, embedded). */
extern const char fr_taxonomy_builtin_yaml[];

/*
 * Builds a taxonomy: the rules of user_file first (when not NULL), then the
 * built-in rules. err names the file, line and key of a bad rule.
 * Caller frees with fr_taxonomy_free().
 */
int fr_taxonomy_load(const char *user_file, struct fr_taxonomy **out, struct fr_err *err);

/* Appends the rules of a YAML text; name is used in error messages. */
int fr_taxonomy_add_yaml(struct fr_taxonomy *t, const char *yaml, size_t len, const char *name,
                         struct fr_err *err);

/* An empty taxonomy (no rules: everything is "<class>.unknown"). */
struct fr_taxonomy *fr_taxonomy_new(void);
void fr_taxonomy_free(struct fr_taxonomy *t);

/* Number of rules. */
size_t fr_taxonomy_size(const struct fr_taxonomy *t);

/* The class an unclassified error of this kind belongs to. */
enum fr_error_class fr_taxonomy_class_for_kind(enum fr_kind kind);

/*
 * Fills ev->err and ev->has_error when the event is a failure (see the
 * YAML file's header for which events are); leaves has_error false
 * otherwise. t may be NULL (no rules).
 */
void fr_taxonomy_classify(const struct fr_taxonomy *t, struct fr_event *ev);

#endif
