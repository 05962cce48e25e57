/*
 * core/yamlcfg.h - reading YAML configuration files (libyaml document API)
 * with errors that name the file and line. Shared by every configuration
 * reader: the error taxonomy, the redaction policy, the agent's config.
 */
#ifndef FR_CORE_YAMLCFG_H
#define FR_CORE_YAMLCFG_H

#include <stddef.h>
#include <yaml.h>

#include "core/err.h"
#include "core/fsutil.h"

struct fr_yaml {
    yaml_parser_t parser;
    yaml_document_t doc;
    const char *name; /* file name for messages (borrowed) */
    struct fr_err *err;
};

/*
 * Parses text[0, len) as one YAML document. On a syntax error err says
 * "<name>:<line>: <problem>" and nothing needs closing.
 */
int fr_yaml_open(struct fr_yaml *y, const char *text, size_t len, const char *name,
                 struct fr_err *err);
void fr_yaml_close(struct fr_yaml *y);

/* Reads the file at path and parses it (errors: FR_E_IO/FR_E_CONFIG naming the file). */
int fr_yaml_open_file(struct fr_yaml *y, const char *path, struct fr_err *err);

/* Sets y->err to "<name>:<line of n>: <message>" (FR_E_CONFIG) and returns it. */
int fr_yaml_fail(struct fr_yaml *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The root node, NULL for an empty document. */
yaml_node_t *fr_yaml_root(struct fr_yaml *y);
yaml_node_t *fr_yaml_node(struct fr_yaml *y, int id);

/* The text of a scalar node; NULL when n is not a scalar. */
const char *fr_yaml_scalar(const yaml_node_t *n);

#endif
