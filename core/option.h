/*
 * core/option.h - options declared once, in a table, and read by one
 * loader: defaults, a YAML file of sections, FLIGHTREC_* environment
 * overrides, `flightrec config check` (print) and the generated reference
 * (docs/config.md, `flightrec config docs`).
 *
 * A table is an array of struct fr_option ending with {0}; each entry says
 * where its value lives in the owning struct (offsetof). The owner of a
 * table frees its strings with fr_options_clear().
 *
 *     static const struct fr_option opts[] = {
 *         {"http", "listen", FR_OPT_STR, "127.0.0.1:8787", O(listen), 0, 0, NULL,
 *          "address the HTTP API listens on"},
 *         {0},
 *     };
 *     fr_options_defaults(opts, &cfg);
 *     fr_options_load_yaml(opts, &cfg, path, &err);     errors name file, line and key
 *     fr_options_load_env(opts, &cfg, "FLIGHTREC", &err);
 */
#ifndef FR_CORE_OPTION_H
#define FR_CORE_OPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

enum fr_option_type {
    FR_OPT_END = 0,  /* terminates a table */
    FR_OPT_STR,      /* char * (owned by the struct) */
    FR_OPT_SECRET,   /* char *, printed as "***" */
    FR_OPT_INT,      /* int64_t within [min, max] */
    FR_OPT_BOOL,     /* bool: true/false, yes/no, on/off */
    FR_OPT_DURATION, /* int64_t milliseconds: 0, 250ms, 30s, 10m, 2h, 3d, 1w (fr_duration_parse) */
    FR_OPT_ENUM,     /* int: the index of the value in choices */
};

struct fr_option {
    const char *section; /* "http" */
    const char *key;     /* "listen" */
    enum fr_option_type type;
    const char *def;            /* default, as text */
    size_t offset;              /* offsetof() into the owning struct */
    int64_t min, max;           /* bounds for INT and DURATION (ms) */
    const char *const *choices; /* ENUM: NULL-terminated list of accepted values */
    const char *description;    /* one sentence for config check and docs */
};

/*
 * Parses a duration: a non-negative number and a unit, ms, s, m, h, d or w
 * ("1.5h" is allowed; "0" alone means zero). The one grammar every
 * configuration file and option of flightrec uses.
 */
int fr_duration_parse(const char *s, int64_t *ms, struct fr_err *err);

/* Sets every option of the table to its default (base is the owning struct). */
void fr_options_defaults(const struct fr_option *t, void *base);

/* For an optional string option: "" (its default) becomes NULL, "not set". */
void fr_option_unset_empty(char **s);

/* Frees the strings of the table's options and zeroes them. */
void fr_options_clear(const struct fr_option *t, void *base);

/* The entry section.key, or NULL. */
const struct fr_option *fr_options_find(const struct fr_option *t, const char *section,
                                        const char *key);

/* Sets one option from text; on failure msg says why (expected what, got what). */
bool fr_option_set(const struct fr_option *o, void *base, const char *value, char *msg,
                   size_t msglen);

/*
 * Reads a YAML mapping of sections (each a mapping of key: value) from path.
 * Options whose section is "" are plain keys at the top. An unknown section
 * or key, or a bad value, is FR_E_CONFIG with err naming file, line and key.
 */
int fr_options_load_yaml(const struct fr_option *t, void *base, const char *path,
                         struct fr_err *err);

/*
 * For a key the table does not declare (a map of per-kind values, say):
 * returns FR_OK when it took the value, FR_E_NOTFOUND when the key is
 * unknown to it too, or an error it set with fr_yaml_fail().
 */
struct fr_yaml;
typedef int (*fr_option_extra)(void *ud, struct fr_yaml *y, const char *section, const char *key,
                               void *key_node, void *value_node);

/*
 * Loads one YAML mapping node (void *: a yaml_node_t of y) into base: each
 * key must be an option of `section` in t (or taken by extra). For the
 * items of a list, such as upload targets or trigger rules, which are not
 * sections of a file. Errors name file, line and "section.key".
 */
int fr_options_load_node(const struct fr_option *t, void *base, struct fr_yaml *y, void *node,
                         const char *section, fr_option_extra extra, void *ud);

/*
 * The same from text (name is used in messages), with an optional hook for
 * keys the table does not declare. Values set here override what base held,
 * so calling it twice merges a user file over built-in text.
 */
int fr_options_load_text(const struct fr_option *t, void *base, const char *text, size_t len,
                         const char *name, fr_option_extra extra, void *ud, struct fr_err *err);

/*
 * Applies <PREFIX>_<SECTION>_<KEY> environment variables (upper case). A
 * bad value is FR_E_CONFIG naming the variable. A variable that starts with
 * <PREFIX>_ and names no option (and is not in `also`, a NULL-terminated
 * list of other variables the program reads) is reported through warn
 * with the nearest option's variable, so a misspelling is not silently
 * ignored. warn may be NULL.
 */
int fr_options_load_env(const struct fr_option *t, void *base, const char *prefix,
                        const char *const *also, void (*warn)(const char *msg), struct fr_err *err);

/* Prints the effective values as YAML; secrets as "***". */
void fr_options_print(const struct fr_option *t, const void *base, FILE *out);

/*
 * Prints the table as a Markdown reference (section, key, type, default, and
 * with prefix non-NULL the environment variable, then the description).
 */
void fr_options_markdown(const struct fr_option *t, const char *prefix, FILE *out);

/* The same reference as roff for a man page (flightrec.yaml(5)): .SS per section, .TP per key. */
void fr_options_man(const struct fr_option *t, const char *prefix, FILE *out);

/* Writes text for roff: backslashes escaped, a line starting with '.' or '\'' made literal. */
void fr_roff_write(const char *text, FILE *out);

#endif
