/*
 * collectors/taxonomy.c - the error taxonomy: YAML rules (libyaml document
 * API) compiled into match structures, and classification of events.
 *
 * A rule's string lists are matched exactly; `message` is a POSIX extended
 * regular expression compiled once at load (REG_ICASE | REG_NOSUB).
 */
#include "collectors/taxonomy.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"
#include "core/yamlcfg.h"

const struct fr_field fr_error_fields[] = {
    {.name = "message", .types = FR_FT_STRING},
    {.name = "type", .types = FR_FT_STRING},
    {.name = "http_status", .types = FR_FT_INT, .non_negative = true},
    {.name = "errno", .types = FR_FT_STRING | FR_FT_INT},
    {.name = "code", .types = FR_FT_STRING | FR_FT_INT},
    {.name = "cause", .types = FR_FT_ARRAY, .item_types = FR_FT_STRING},
    {.name = "stack", .types = FR_FT_STRING},
    {.name = NULL},
};

#define TAX_MAX_LIST 16

struct tax_strings {
    char *v[TAX_MAX_LIST];
    int n;
};

struct tax_rule {
    unsigned kinds; /* bit per enum fr_kind; 0 = any */
    int status_lo[TAX_MAX_LIST], status_hi[TAX_MAX_LIST];
    int nstatus;
    struct tax_strings types, errnos, codes, statuses;
    int panic; /* -1 any, 1 must be true */
    bool has_message;
    regex_t message;
    enum fr_error_class klass;
    char code[64];
    char *safe_message; /* NULL: first line of error.message */
};

struct fr_taxonomy {
    struct tax_rule *rules;
    size_t n, cap;
};

struct fr_taxonomy *
fr_taxonomy_new(void)
{
    return fr_calloc(1, sizeof(struct fr_taxonomy));
}

static void
tax_strings_free(struct tax_strings *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
}

void
fr_taxonomy_free(struct fr_taxonomy *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        struct tax_rule *r = &t->rules[i];
        tax_strings_free(&r->types);
        tax_strings_free(&r->errnos);
        tax_strings_free(&r->codes);
        tax_strings_free(&r->statuses);
        if (r->has_message)
            regfree(&r->message);
        free(r->safe_message);
    }
    free(t->rules);
    free(t);
}

size_t
fr_taxonomy_size(const struct fr_taxonomy *t)
{
    return t ? t->n : 0;
}

/* ---- loading ---- */

struct tax_load {
    yaml_document_t *doc;
    const char *name;
    struct fr_err *err;
};

static int
tax_fail(struct tax_load *l, yaml_node_t *node, const char *fmt, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, what);
    return fr_err_set(l->err, FR_E_CONFIG, "%s:%zu: %s", l->name,
                      node ? node->start_mark.line + 1 : 0, msg);
}

static const char *
tax_scalar(yaml_node_t *n)
{
    return fr_yaml_scalar(n);
}

/* Calls fn for the scalar node, or for each scalar item of a sequence node. */
static int
tax_each(struct tax_load *l, yaml_node_t *n, const char *key,
         int (*fn)(struct tax_load *, yaml_node_t *, const char *, void *), void *ud)
{
    if (n->type == YAML_SCALAR_NODE)
        return fn(l, n, tax_scalar(n), ud);
    if (n->type != YAML_SEQUENCE_NODE)
        return tax_fail(l, n, "%s: expected a value or a list", key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, *it);
        const char *s = tax_scalar(item);
        if (s == NULL)
            return tax_fail(l, item, "%s: list items must be plain values", key);
        int rc = fn(l, item, s, ud);
        if (rc != FR_OK)
            return rc;
    }
    return FR_OK;
}

static int
tax_add_string(struct tax_load *l, yaml_node_t *n, const char *s, void *ud)
{
    struct tax_strings *list = ud;
    if (list->n == TAX_MAX_LIST)
        return tax_fail(l, n, "more than 16 values in one list%s", "");
    list->v[list->n++] = fr_strdup(s);
    return FR_OK;
}

static int
tax_add_kind(struct tax_load *l, yaml_node_t *n, const char *s, void *ud)
{
    int k = fr_kind_parse(s);
    if (k < 0)
        return tax_fail(l, n, "kind: '%s' is not a known kind", s);
    *(unsigned *)ud |= 1u << k;
    return FR_OK;
}

static int
tax_add_status(struct tax_load *l, yaml_node_t *n, const char *s, void *ud)
{
    struct tax_rule *r = ud;
    int lo, hi, used = 0;
    if (sscanf(s, "%d-%d%n", &lo, &hi, &used) == 2 && s[used] == '\0') {
        /* a range */
    } else if (sscanf(s, "%d%n", &lo, &used) == 1 && s[used] == '\0') {
        hi = lo;
    } else {
        return tax_fail(l, n, "http_status: '%s' is not a status or a range like 500-599", s);
    }
    if (lo < 100 || hi > 999 || lo > hi)
        return tax_fail(l, n, "http_status: '%s' is outside 100-999", s);
    if (r->nstatus == TAX_MAX_LIST)
        return tax_fail(l, n, "http_status: more than 16 values%s", "");
    r->status_lo[r->nstatus] = lo;
    r->status_hi[r->nstatus++] = hi;
    return FR_OK;
}

static int
tax_match_key(struct tax_load *l, struct tax_rule *r, const char *key, yaml_node_t *v)
{
    if (strcmp(key, "kind") == 0)
        return tax_each(l, v, key, tax_add_kind, &r->kinds);
    if (strcmp(key, "http_status") == 0)
        return tax_each(l, v, key, tax_add_status, r);
    if (strcmp(key, "type") == 0)
        return tax_each(l, v, key, tax_add_string, &r->types);
    if (strcmp(key, "errno") == 0)
        return tax_each(l, v, key, tax_add_string, &r->errnos);
    if (strcmp(key, "code") == 0)
        return tax_each(l, v, key, tax_add_string, &r->codes);
    if (strcmp(key, "status") == 0)
        return tax_each(l, v, key, tax_add_string, &r->statuses);
    const char *s = tax_scalar(v);
    if (strcmp(key, "panic") == 0) {
        if (s == NULL || strcmp(s, "true") != 0)
            return tax_fail(l, v, "panic: only 'true' can be matched%s", "");
        r->panic = 1;
        return FR_OK;
    }
    if (strcmp(key, "message") == 0) {
        if (s == NULL)
            return tax_fail(l, v, "message: expected a regular expression%s", "");
        int rc = regcomp(&r->message, s, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &r->message, why, sizeof why);
            return tax_fail(l, v, "message: bad regular expression: %s", why);
        }
        r->has_message = true;
        return FR_OK;
    }
    return tax_fail(l, v,
                    "match: unknown key '%s' (known: kind, http_status, type, errno, "
                    "code, status, panic, message)",
                    key);
}

static int
tax_code(struct tax_load *l, struct tax_rule *r, yaml_node_t *v)
{
    const char *s = tax_scalar(v);
    const char *dot = s ? strchr(s, '.') : NULL;
    if (dot == NULL || dot[1] == '\0' || strlen(s) >= sizeof r->code)
        return tax_fail(l, v, "code: '%s' must look like <class>.<reason>", s ? s : "");
    char klass[32];
    snprintf(klass, sizeof klass, "%.*s", (int)(dot - s), s);
    int k = fr_error_class_parse(klass);
    if (k < 0)
        return tax_fail(l, v,
                        "code: class '%s' is not one of validation, provider, tool, projection, "
                        "storage, transport, runtime",
                        klass);
    r->klass = (enum fr_error_class)k;
    snprintf(r->code, sizeof r->code, "%s", s);
    return FR_OK;
}

static int
tax_rule(struct tax_load *l, yaml_node_t *n, struct tax_rule *r)
{
    if (n->type != YAML_MAPPING_NODE)
        return tax_fail(l, n, "a rule must be a mapping with match and code%s", "");
    r->panic = -1;
    bool has_code = false;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *key = tax_scalar(k);
        int rc = FR_OK;
        if (key != NULL && strcmp(key, "match") == 0) {
            if (v->type != YAML_MAPPING_NODE)
                return tax_fail(l, v, "match: expected a mapping%s", "");
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 q < v->data.mapping.pairs.top && rc == FR_OK; q++) {
                yaml_node_t *mk = yaml_document_get_node(l->doc, q->key);
                const char *mkey = tax_scalar(mk);
                rc = mkey ? tax_match_key(l, r, mkey, yaml_document_get_node(l->doc, q->value))
                          : tax_fail(l, mk, "match: keys must be plain%s", "");
            }
        } else if (key != NULL && strcmp(key, "code") == 0) {
            rc = tax_code(l, r, v);
            has_code = true;
        } else if (key != NULL && strcmp(key, "message") == 0) {
            const char *s = tax_scalar(v);
            if (s == NULL)
                return tax_fail(l, v, "message: expected text%s", "");
            free(r->safe_message);
            r->safe_message = fr_strdup(s);
        } else {
            return tax_fail(l, k, "unknown key '%s' in a rule (known: match, code, message)",
                            key ? key : "?");
        }
        if (rc != FR_OK)
            return rc;
    }
    if (!has_code)
        return tax_fail(l, n, "a rule needs a code%s", "");
    return FR_OK;
}

static int
tax_document(struct tax_load *l, struct fr_taxonomy *t)
{
    yaml_node_t *root = yaml_document_get_root_node(l->doc);
    if (root == NULL)
        return FR_OK; /* an empty file adds no rules */
    if (root->type != YAML_MAPPING_NODE)
        return tax_fail(l, root, "expected a mapping with a 'rules' list%s", "");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *key = tax_scalar(k);
        if (key == NULL || strcmp(key, "rules") != 0)
            return tax_fail(l, k, "unknown top-level key '%s' (expected 'rules')", key ? key : "?");
        if (v->type != YAML_SEQUENCE_NODE)
            return tax_fail(l, v, "rules: expected a list%s", "");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 32;
                t->rules = fr_realloc(t->rules, t->cap * sizeof *t->rules);
            }
            struct tax_rule *r = &t->rules[t->n];
            memset(r, 0, sizeof *r);
            t->n++; /* counted before parsing so a failed rule is freed with the rest */
            int rc = tax_rule(l, yaml_document_get_node(l->doc, *it), r);
            if (rc != FR_OK)
                return rc;
        }
    }
    return FR_OK;
}

int
fr_taxonomy_add_yaml(struct fr_taxonomy *t, const char *yaml, size_t len, const char *name,
                     struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open(&y, yaml, len, name, err);
    if (rc != FR_OK)
        return rc;
    struct tax_load l = {.doc = &y.doc, .name = name, .err = err};
    rc = tax_document(&l, t);
    fr_yaml_close(&y);
    return rc;
}

int
fr_taxonomy_load(const char *user_file, struct fr_taxonomy **out, struct fr_err *err)
{
    struct fr_taxonomy *t = fr_taxonomy_new();
    int rc = FR_OK;
    if (user_file != NULL) {
        char *text;
        size_t n;
        rc = fr_read_file(user_file, &text, &n, err);
        if (rc == FR_OK) {
            rc = fr_taxonomy_add_yaml(t, text, n, user_file, err);
            free(text);
        } else {
            if (err != NULL)
                err->code = FR_E_CONFIG; /* the message already names the file */
            rc = FR_E_CONFIG;
        }
    }
    if (rc == FR_OK)
        rc = fr_taxonomy_add_yaml(t, fr_taxonomy_builtin_yaml, strlen(fr_taxonomy_builtin_yaml),
                                  "built-in error-taxonomy.yaml", err);
    if (rc != FR_OK) {
        fr_taxonomy_free(t);
        t = NULL;
    }
    *out = t;
    return rc;
}

/* ---- classification ---- */

enum fr_error_class
fr_taxonomy_class_for_kind(enum fr_kind kind)
{
    switch (kind) {
    case FR_KIND_PROVIDER:
        return FR_ECLASS_PROVIDER;
    case FR_KIND_TOOL:
        return FR_ECLASS_TOOL;
    case FR_KIND_TRANSPORT:
    case FR_KIND_SEM:
        return FR_ECLASS_TRANSPORT;
    case FR_KIND_TIMELINE:
    case FR_KIND_TURN:
        return FR_ECLASS_PROJECTION;
    case FR_KIND_CONVERSATION:
    case FR_KIND_MIDDLEWARE:
    case FR_KIND_RUNTIME:
    case FR_KIND_ERROR:
    case FR_KIND_COUNT:
        break;
    }
    return FR_ECLASS_RUNTIME;
}

/* The facts a rule is matched against, gathered once per event. */
struct tax_facts {
    enum fr_kind kind;
    int http_status; /* 0 = none */
    const char *type, *errno_s, *code, *status, *message;
    char errno_buf[24], code_buf[24];
    bool panic;
};

static bool
tax_in(const struct tax_strings *list, const char *s)
{
    if (list->n == 0)
        return true;
    if (s == NULL)
        return false;
    for (int i = 0; i < list->n; i++)
        if (strcmp(list->v[i], s) == 0)
            return true;
    return false;
}

/* error.type: the name, or a qualified name ending in it (openai.RateLimitError,
   anthropic._exceptions.OverloadedError, System.TimeoutException: the class without its
   module or namespace). */
static bool
tax_in_type(const struct tax_strings *list, const char *s)
{
    if (tax_in(list, s))
        return true;
    const char *dot = s ? strrchr(s, '.') : NULL;
    return dot != NULL && dot[1] != '\0' && tax_in(list, dot + 1);
}

static bool
tax_rule_matches(const struct tax_rule *r, const struct tax_facts *f)
{
    if (r->kinds != 0 && !(r->kinds & (1u << f->kind)))
        return false;
    if (r->nstatus > 0) {
        bool ok = false;
        for (int i = 0; i < r->nstatus && !ok; i++)
            ok = f->http_status >= r->status_lo[i] && f->http_status <= r->status_hi[i];
        if (!ok)
            return false;
    }
    if (!tax_in_type(&r->types, f->type) || !tax_in(&r->errnos, f->errno_s) ||
        !tax_in(&r->codes, f->code) || !tax_in(&r->statuses, f->status))
        return false;
    if (r->panic == 1 && !f->panic)
        return false;
    if (r->has_message && (f->message == NULL || regexec(&r->message, f->message, 0, NULL, 0)))
        return false;
    return true;
}

/* A JSON string or integer as text (errno and code may be either). */
static const char *
tax_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

/* Copies the first line of msg into out, cut at 200 bytes on a UTF-8 boundary. */
static void
tax_safe_message(const char *msg, char *out, size_t size)
{
    size_t len = strlen(msg);
    size_t n = strcspn(msg, "\r\n");
    if (n > 200)
        n = 200;
    if (n >= size)
        n = size - 1;
    while (n > 0 && n < len && ((unsigned char)msg[n] & 0xC0) == 0x80)
        n--;
    memcpy(out, msg, n);
    out[n] = '\0';
}

/* Whether an event without an `error` object still reports a failure. */
static bool
tax_implicit_failure(const struct fr_event *ev, int http_status)
{
    const char *st = ev->status;
    switch (ev->kind) {
    case FR_KIND_ERROR:
        return true;
    case FR_KIND_PROVIDER:
        return st != NULL && strcmp(st, "error") == 0;
    case FR_KIND_TOOL:
        return st != NULL && (strcmp(st, "error") == 0 || strcmp(st, "timeout") == 0);
    case FR_KIND_TRANSPORT:
        return http_status >= 400;
    default:
        return false;
    }
}

void
fr_taxonomy_classify(const struct fr_taxonomy *t, struct fr_event *ev)
{
    struct tax_facts f = {.kind = ev->kind, .status = ev->status};
    const json_t *e = ev->error;
    json_int_t hs = 0;
    if (json_is_integer(json_object_get(e, "http_status")))
        hs = json_integer_value(json_object_get(e, "http_status"));
    else if (ev->kind == FR_KIND_TRANSPORT && ev->data != NULL &&
             json_is_integer(json_object_get(ev->data, "status")))
        hs = json_integer_value(json_object_get(ev->data, "status"));
    f.http_status = hs > 0 && hs < 1000 ? (int)hs : 0;
    if (e == NULL && !tax_implicit_failure(ev, f.http_status))
        return;
    f.type = json_string_value(json_object_get(e, "type"));
    f.errno_s = tax_text(json_object_get(e, "errno"), f.errno_buf, sizeof f.errno_buf);
    f.code = tax_text(json_object_get(e, "code"), f.code_buf, sizeof f.code_buf);
    f.message = json_string_value(json_object_get(e, "message"));
    f.panic = ev->data != NULL && json_is_true(json_object_get(ev->data, "panic"));

    ev->has_error = true;
    ev->err.panic = f.panic;
    const struct tax_rule *hit = NULL;
    for (size_t i = 0; t != NULL && i < t->n && hit == NULL; i++)
        if (tax_rule_matches(&t->rules[i], &f))
            hit = &t->rules[i];
    if (hit != NULL) {
        ev->err.klass = hit->klass;
        snprintf(ev->err.code, sizeof ev->err.code, "%s", hit->code);
    } else {
        ev->err.klass = fr_taxonomy_class_for_kind(ev->kind);
        snprintf(ev->err.code, sizeof ev->err.code, "%s.unknown",
                 fr_error_class_name(ev->err.klass));
    }
    tax_safe_message(hit && hit->safe_message ? hit->safe_message : (f.message ? f.message : ""),
                     ev->err.message, sizeof ev->err.message);
}
