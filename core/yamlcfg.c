/*
 * core/yamlcfg.c - see yamlcfg.h.
 */
#include "core/yamlcfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
fr_yaml_open(struct fr_yaml *y, const char *text, size_t len, const char *name, struct fr_err *err)
{
    memset(y, 0, sizeof *y);
    y->name = name;
    y->err = err;
    yaml_parser_initialize(&y->parser);
    yaml_parser_set_input_string(&y->parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&y->parser, &y->doc)) {
        int rc = fr_err_set(err, FR_E_CONFIG, "%s:%zu: %s", name, y->parser.problem_mark.line + 1,
                            y->parser.problem ? y->parser.problem : "YAML syntax error");
        yaml_parser_delete(&y->parser);
        return rc;
    }
    return FR_OK;
}

int
fr_yaml_open_file(struct fr_yaml *y, const char *path, struct fr_err *err)
{
    char *text;
    size_t len;
    int rc = fr_read_file(path, &text, &len, err);
    if (rc != FR_OK) {
        if (err)
            err->code = FR_E_CONFIG;
        return FR_E_CONFIG;
    }
    rc = fr_yaml_open(y, text, len, path, err);
    free(text); /* libyaml has built the document: the text is no longer needed */
    return rc;
}

void
fr_yaml_close(struct fr_yaml *y)
{
    yaml_document_delete(&y->doc);
    yaml_parser_delete(&y->parser);
}

int
fr_yaml_fail(struct fr_yaml *y, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fr_err_set(y->err, FR_E_CONFIG, "%s:%zu: %s", y->name, n ? n->start_mark.line + 1 : 0,
                      msg);
}

yaml_node_t *
fr_yaml_root(struct fr_yaml *y)
{
    return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *
fr_yaml_node(struct fr_yaml *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

const char *
fr_yaml_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}
