/*
 * redact/policy.c - loads the redaction policy: the built-in
 * configs/redaction.yaml merged with a user file (merge rules in that file's
 * header), and its canonical JSON form and content hash.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/yamlcfg.h"
#include "redact/internal.h"

static const char *const sens_names[FR_SENS_COUNT] = {"public", "internal", "pii", "secret"};
static const char *const act_names[FR_ACT_COUNT] = {"keep", "scan",     "mask",
                                                    "hash", "truncate", "drop"};

const char *
fr_sensitivity_name(enum fr_sensitivity s)
{
    return (unsigned)s < FR_SENS_COUNT ? sens_names[s] : "?";
}

int
fr_sensitivity_parse(const char *name)
{
    for (int i = 0; i < FR_SENS_COUNT; i++)
        if (strcmp(name, sens_names[i]) == 0)
            return i;
    return -1;
}

const char *
fr_action_name(enum fr_action_type a)
{
    return (unsigned)a < FR_ACT_COUNT ? act_names[a] : "?";
}

/* ---- freeing ---- */

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
rule_free(struct fr_path_rule *r)
{
    free_strv(r->segs, r->nsegs);
}

static void
det_free(struct fr_det_def *d)
{
    free(d->name);
    free(d->pattern);
    free(d->origin);
    free_strv(d->not_after, d->n_not_after);
}

void
fr_policy_free(struct fr_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nrules; i++)
        rule_free(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->ndets; i++)
        det_free(&p->dets[i]);
    free(p->dets);
    free_strv(p->secret_keys, p->nsecret_keys);
    free(p->json);
    free(p);
}

const char *
fr_policy_json(const struct fr_policy *p)
{
    return p->json;
}

const char *
fr_policy_id(const struct fr_policy *p)
{
    return p->id;
}

/* ---- parsing ---- */

static int
parse_action(struct fr_yaml *y, yaml_node_t *n, struct fr_action *a)
{
    const char *s = fr_yaml_scalar(n);
    if (s == NULL)
        return fr_yaml_fail(y, n, "actions: expected an action name");
    if (strncmp(s, "truncate:", 9) == 0) {
        char *end;
        unsigned long v = strtoul(s + 9, &end, 10);
        if (end == s + 9 || *end != '\0' || v == 0 || v > 1000000)
            return fr_yaml_fail(y, n, "actions: '%s': truncate:N needs N from 1 to 1000000", s);
        *a = (struct fr_action){FR_ACT_TRUNCATE, v};
        return FR_OK;
    }
    for (int i = 0; i < FR_ACT_COUNT; i++)
        if (i != FR_ACT_TRUNCATE && strcmp(s, act_names[i]) == 0) {
            *a = (struct fr_action){(enum fr_action_type)i, 0};
            return FR_OK;
        }
    return fr_yaml_fail(y, n,
                        "actions: unknown action '%s' (keep, scan, mask, hash, "
                        "truncate:N or drop)",
                        s);
}

static int
parse_tag(struct fr_yaml *y, yaml_node_t *n, const char *what, enum fr_sensitivity *out)
{
    const char *s = fr_yaml_scalar(n);
    int t = s ? fr_sensitivity_parse(s) : -1;
    if (t < 0)
        return fr_yaml_fail(y, n, "%s: '%s' is not a tag (public, internal, pii, secret)", what,
                            s ? s : "?");
    *out = (enum fr_sensitivity)t;
    return FR_OK;
}

static int
parse_actions(struct fr_yaml *y, yaml_node_t *v, struct fr_policy *p)
{
    if (v->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, v, "actions: expected a mapping of tag: action");
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
        enum fr_sensitivity t = FR_SENS_PUBLIC;
        int rc = parse_tag(y, fr_yaml_node(y, q->key), "actions", &t);
        if (rc == FR_OK)
            rc = parse_action(y, fr_yaml_node(y, q->value), &p->actions[t]);
        if (rc != FR_OK)
            return rc;
    }
    return FR_OK;
}

/* Splits a dotted path into segments. */
static int
split_path(const char *path, char ***segs, size_t *nsegs)
{
    size_t n = 1;
    for (const char *c = path; *c; c++)
        n += *c == '.';
    char **v = fr_calloc(n, sizeof *v);
    const char *s = path;
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        v[i] = fr_strndup(s, len);
        if (len == 0) {
            free_strv(v, i + 1);
            return FR_E_VALUE;
        }
        s = dot ? dot + 1 : s + len;
    }
    *segs = v;
    *nsegs = n;
    return FR_OK;
}

int
fr_path_rule_init(struct fr_path_rule *r, int kind, const char *path, enum fr_sensitivity tag)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->tag = tag;
    return split_path(path, &r->segs, &r->nsegs);
}

void
fr_path_rule_free(struct fr_path_rule *r)
{
    rule_free(r);
}

static int
parse_field(struct fr_yaml *y, yaml_node_t *n, struct fr_policy *p)
{
    if (n->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, n, "fields: expected {kind, path, tag}");
    const char *path = NULL;
    int kind = -1;
    enum fr_sensitivity tag = FR_SENS_COUNT;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = fr_yaml_node(y, q->key), *vn = fr_yaml_node(y, q->value);
        const char *k = fr_yaml_scalar(kn), *v = fr_yaml_scalar(vn);
        if (k == NULL || v == NULL)
            return fr_yaml_fail(y, kn, "fields: keys and values must be plain text");
        if (strcmp(k, "kind") == 0) {
            if (strcmp(v, "*") != 0 && (kind = fr_kind_parse(v)) < 0)
                return fr_yaml_fail(y, vn, "fields: kind '%s' is not a wire kind", v);
        } else if (strcmp(k, "path") == 0) {
            path = v;
        } else if (strcmp(k, "tag") == 0) {
            int rc = parse_tag(y, vn, "fields", &tag);
            if (rc != FR_OK)
                return rc;
        } else {
            return fr_yaml_fail(y, kn, "fields: unknown key '%s' (kind, path, tag)", k);
        }
    }
    if (path == NULL || tag == FR_SENS_COUNT)
        return fr_yaml_fail(y, n, "fields: a rule needs 'path' and 'tag'");
    struct fr_path_rule r;
    if (fr_path_rule_init(&r, kind, path, tag) != FR_OK)
        return fr_yaml_fail(y, n, "fields: path '%s' has an empty segment", path);
    p->rules = fr_realloc(p->rules, (p->nrules + 1) * sizeof *p->rules);
    p->rules[p->nrules++] = r;
    return FR_OK;
}

static ssize_t
det_find(const struct fr_policy *p, const char *name)
{
    for (size_t i = 0; i < p->ndets; i++)
        if (strcmp(p->dets[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

static void
det_remove(struct fr_policy *p, size_t i)
{
    det_free(&p->dets[i]);
    memmove(&p->dets[i], &p->dets[i + 1], (p->ndets - i - 1) * sizeof *p->dets);
    p->ndets--;
}

static int
parse_strlist(struct fr_yaml *y, yaml_node_t *v, const char *what, char ***out, size_t *n,
              bool lower)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fr_yaml_fail(y, v, "%s: expected a list", what);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = fr_yaml_node(y, *it);
        const char *s = fr_yaml_scalar(item);
        if (s == NULL || *s == '\0')
            return fr_yaml_fail(y, item, "%s: items must be non-empty text", what);
        char *c = fr_strdup(s);
        if (lower)
            for (char *q = c; *q; q++)
                *q = (char)tolower((unsigned char)*q);
        *out = fr_realloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = c;
    }
    return FR_OK;
}

static int
parse_detector(struct fr_yaml *y, yaml_node_t *n, struct fr_policy *p)
{
    if (n->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, n, "detectors: expected {name, class, pattern, ...}");
    struct fr_det_def d = {.klass = FR_DET_PII};
    int rc = FR_OK;
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
         rc == FR_OK && q < n->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = fr_yaml_node(y, q->key), *vn = fr_yaml_node(y, q->value);
        const char *k = fr_yaml_scalar(kn), *v = fr_yaml_scalar(vn);
        if (k == NULL) {
            rc = fr_yaml_fail(y, kn, "detectors: keys must be plain text");
        } else if (strcmp(k, "not_after") == 0) {
            rc = parse_strlist(y, vn, "detectors: not_after", &d.not_after, &d.n_not_after, false);
        } else if (v == NULL) {
            rc = fr_yaml_fail(y, vn, "detectors: %s: expected plain text", k);
        } else if (strcmp(k, "name") == 0) {
            free(d.name);
            d.name = fr_strdup(v);
        } else if (strcmp(k, "pattern") == 0) {
            free(d.pattern);
            d.pattern = fr_strdup(v);
        } else if (strcmp(k, "class") == 0) {
            if (strcmp(v, "secret") == 0)
                d.klass = FR_DET_SECRET;
            else if (strcmp(v, "pii") == 0)
                d.klass = FR_DET_PII;
            else
                rc = fr_yaml_fail(y, vn, "detectors: class '%s' (secret or pii)", v);
        } else if (strcmp(k, "validate") == 0) {
            d.validate = fr_validator_find(v);
            if (d.validate == NULL)
                rc = fr_yaml_fail(
                    y, vn,
                    "detectors: validate '%s' (luhn, ipv4, ipv6, phone, iban, base36, password)",
                    v);
        } else {
            rc = fr_yaml_fail(y, kn,
                              "detectors: unknown key '%s' (name, class, pattern, validate, "
                              "not_after)",
                              k);
        }
    }
    if (rc == FR_OK && (d.name == NULL || d.pattern == NULL))
        rc = fr_yaml_fail(y, n, "detectors: a detector needs 'name' and 'pattern'");
    if (rc != FR_OK) {
        det_free(&d);
        return rc;
    }
    d.origin = fr_asprintf("%s:%zu", y->name, n->start_mark.line + 1);
    ssize_t old = det_find(p, d.name);
    if (old >= 0) { /* a user detector with a built-in's name replaces it, in place */
        det_free(&p->dets[old]);
        p->dets[old] = d;
    } else {
        p->dets = fr_realloc(p->dets, (p->ndets + 1) * sizeof *p->dets);
        p->dets[p->ndets++] = d;
    }
    return FR_OK;
}

static int
parse_bool(struct fr_yaml *y, yaml_node_t *v, const char *key, bool *out)
{
    const char *s = fr_yaml_scalar(v);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
        *out = true;
    else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
        *out = false;
    else
        return fr_yaml_fail(y, v, "%s: expected true or false", key);
    return FR_OK;
}

static int
each_item(struct fr_yaml *y, yaml_node_t *v, const char *key, struct fr_policy *p,
          int (*fn)(struct fr_yaml *, yaml_node_t *, struct fr_policy *))
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fr_yaml_fail(y, v, "%s: expected a list", key);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        int rc = fn(y, fr_yaml_node(y, *it), p);
        if (rc != FR_OK)
            return rc;
    }
    return FR_OK;
}

/* Merges one YAML document into p. builtin: the embedded file (no include_builtin_*). */
static int
policy_merge(struct fr_policy *p, const char *text, size_t len, const char *name, bool builtin,
             struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open(&y, text, len, name, err);
    if (rc != FR_OK)
        return rc;
    yaml_node_t *root = fr_yaml_root(&y);
    if (root == NULL)
        goto out; /* an empty file changes nothing */
    if (root->type != YAML_MAPPING_NODE) {
        rc = fr_yaml_fail(&y, root, "expected a mapping (actions, fields, detectors, ...)");
        goto out;
    }
    /* pass 1: what to start from, so the order of keys in the file does not matter */
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start;
         rc == FR_OK && q < root->data.mapping.pairs.top; q++) {
        const char *k = fr_yaml_scalar(fr_yaml_node(&y, q->key));
        yaml_node_t *v = fr_yaml_node(&y, q->value);
        bool keep = true;
        if (k == NULL || strncmp(k, "include_builtin_", 16) != 0)
            continue;
        if (builtin) {
            rc = fr_yaml_fail(&y, v, "%s: only a user policy can say this", k);
        } else if ((rc = parse_bool(&y, v, k, &keep)) == FR_OK && !keep) {
            if (strcmp(k, "include_builtin_fields") == 0) {
                for (size_t i = 0; i < p->nrules; i++)
                    rule_free(&p->rules[i]);
                p->nrules = 0;
            } else if (strcmp(k, "include_builtin_detectors") == 0) {
                while (p->ndets > 0)
                    det_remove(p, p->ndets - 1);
            } else if (strcmp(k, "include_builtin_secret_keys") == 0) {
                free_strv(p->secret_keys, p->nsecret_keys);
                p->secret_keys = NULL;
                p->nsecret_keys = 0;
                p->key_words = false; /* only the user's own secret_keys */
            } else {
                rc = fr_yaml_fail(&y, v, "unknown key '%s'", k);
            }
        }
    }
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start;
         rc == FR_OK && q < root->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = fr_yaml_node(&y, q->key), *v = fr_yaml_node(&y, q->value);
        const char *k = fr_yaml_scalar(kn);
        if (k == NULL) {
            rc = fr_yaml_fail(&y, kn, "keys must be plain text");
        } else if (strncmp(k, "include_builtin_", 16) == 0) {
            continue;
        } else if (strcmp(k, "actions") == 0) {
            rc = parse_actions(&y, v, p);
        } else if (strcmp(k, "default_tag") == 0) {
            rc = parse_tag(&y, v, k, &p->default_tag);
        } else if (strcmp(k, "scan_replacement") == 0) {
            const char *s = fr_yaml_scalar(v);
            if (s && strcmp(s, "label") == 0)
                p->replace_with_hash = false;
            else if (s && strcmp(s, "hash") == 0)
                p->replace_with_hash = true;
            else
                rc = fr_yaml_fail(&y, v, "scan_replacement: expected label or hash");
        } else if (strcmp(k, "fields") == 0) {
            rc = each_item(&y, v, k, p, parse_field);
        } else if (strcmp(k, "detectors") == 0) {
            rc = each_item(&y, v, k, p, parse_detector);
        } else if (strcmp(k, "secret_keys") == 0) {
            rc = parse_strlist(&y, v, k, &p->secret_keys, &p->nsecret_keys, true);
        } else if (strcmp(k, "disable") == 0 && !builtin) {
            char **names = NULL;
            size_t n = 0;
            rc = parse_strlist(&y, v, k, &names, &n, false);
            for (size_t i = 0; rc == FR_OK && i < n; i++) {
                ssize_t at = det_find(p, names[i]);
                if (at < 0)
                    rc = fr_yaml_fail(&y, v, "disable: no detector named '%s'", names[i]);
                else
                    det_remove(p, (size_t)at);
            }
            free_strv(names, n);
        } else {
            rc = fr_yaml_fail(&y, kn,
                              "unknown key '%s' (actions, default_tag, scan_replacement, fields, "
                              "detectors, secret_keys, disable, include_builtin_*)",
                              k);
        }
    }
out:
    fr_yaml_close(&y);
    return rc;
}

static char *
action_text(const struct fr_action *a)
{
    if (a->type == FR_ACT_TRUNCATE)
        return fr_asprintf("truncate:%zu", a->n);
    return fr_strdup(act_names[a->type]);
}

/* Whether a pattern has ^ or $ outside a character class and unescaped: an anchor. */
static bool
pattern_anchored(const char *pat)
{
    bool in_class = false;
    for (const char *c = pat; *c != '\0'; c++) {
        if (*c == '\\') {
            if (c[1] == '\0')
                break;
            c++; /* an escaped character: never an anchor, nor a class's end */
        } else if (in_class) {
            in_class = *c != ']';
        } else if (*c == '[') {
            in_class = true;
            c += c[1] == '^'; /* a negation, not an anchor */
            c += c[1] == ']'; /* a ] first is one of the class */
        } else if (*c == '^' || *c == '$') {
            return true;
        }
    }
    return false;
}

/* The effective policy as canonical JSON (sorted keys), and its hash. */
static void
policy_finish(struct fr_policy *p)
{
    json_t *j = json_object();
    json_t *acts = json_object();
    for (int t = 0; t < FR_SENS_COUNT; t++) {
        char *s = action_text(&p->actions[t]);
        json_object_set_new(acts, sens_names[t], json_string(s));
        free(s);
    }
    json_object_set_new(j, "actions", acts);
    json_object_set_new(j, "default_tag", json_string(sens_names[p->default_tag]));
    json_object_set_new(j, "scan_replacement",
                        json_string(p->replace_with_hash ? "hash" : "label"));
    json_t *fields = json_array();
    for (size_t i = 0; i < p->nrules; i++) {
        const struct fr_path_rule *r = &p->rules[i];
        json_t *segs = json_array();
        for (size_t s = 0; s < r->nsegs; s++)
            json_array_append_new(segs, json_string(r->segs[s]));
        json_array_append_new(fields, json_pack("{s:s,s:o,s:s}", "kind",
                                                r->kind < 0 ? "*" : fr_kind_name(r->kind), "path",
                                                segs, "tag", sens_names[r->tag]));
    }
    json_object_set_new(j, "fields", fields);
    json_t *dets = json_array();
    for (size_t i = 0; i < p->ndets; i++) {
        const struct fr_det_def *d = &p->dets[i];
        json_t *na = json_array();
        for (size_t k = 0; k < d->n_not_after; k++)
            json_array_append_new(na, json_string(d->not_after[k]));
        json_array_append_new(
            dets, json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", d->name, "class",
                            d->klass == FR_DET_SECRET ? "secret" : "pii", "pattern", d->pattern,
                            "validate", d->validate ? d->validate->name : "", "not_after", na));
    }
    json_object_set_new(j, "detectors", dets);
    json_t *keys = json_array();
    for (size_t i = 0; i < p->nsecret_keys; i++)
        json_array_append_new(keys, json_string(p->secret_keys[i]));
    json_object_set_new(j, "secret_keys", keys);
    /* the key-name rules, versioned: events name the policy that redacted them (v2, since
       2026-12-07: they also read a flag before an argument, redact.c argv_flag) */
    if (p->key_words)
        json_object_set_new(j, "secret_key_words", json_string("v2"));
    /* since 2026-12-07 a string holding a JSON object or array is walked as JSON (redact.c,
       struct sub): the key-name rules reach inside a tool call's arguments */
    json_object_set_new(j, "json_in_strings", json_string("walked"));
    /* likewise what an anchor means, for the policies that have one (since 2026-12-06 ^ and $
       anchor at every value, see fr_detect_compile; before, at the event's first and last) */
    for (size_t i = 0; i < p->ndets; i++)
        if (pattern_anchored(p->dets[i].pattern)) {
            json_object_set_new(j, "anchors", json_string("per value"));
            break;
        }
    p->json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    unsigned char md[FR_SHA256_LEN];
    fr_sha256(p->json, strlen(p->json), md);
    fr_hex_encode(md, 8, p->id);
}

int
fr_policy_load_text(const char *yaml, size_t len, const char *name, struct fr_policy **out,
                    struct fr_err *err)
{
    *out = NULL;
    struct fr_policy *p = fr_calloc(1, sizeof *p);
    p->key_words = true;
    p->default_tag = FR_SENS_INTERNAL;
    p->actions[FR_SENS_PII].type = FR_ACT_SCAN;
    p->actions[FR_SENS_SECRET].type = FR_ACT_MASK;
    int rc = policy_merge(p, fr_redaction_builtin_yaml, strlen(fr_redaction_builtin_yaml),
                          "built-in redaction.yaml", true, err);
    if (rc == FR_OK && yaml != NULL)
        rc = policy_merge(p, yaml, len, name, false, err);
    if (rc != FR_OK) {
        fr_policy_free(p);
        return rc;
    }
    policy_finish(p);
    *out = p;
    return FR_OK;
}

int
fr_policy_load(const char *user_file, struct fr_policy **out, struct fr_err *err)
{
    if (user_file == NULL)
        return fr_policy_load_text(NULL, 0, NULL, out, err);
    char *text;
    size_t len;
    int rc = fr_read_file(user_file, &text, &len, err);
    if (rc != FR_OK) {
        *out = NULL;
        if (err != NULL)
            err->code = FR_E_CONFIG;
        return FR_E_CONFIG;
    }
    rc = fr_policy_load_text(text, len, user_file, out, err);
    free(text);
    return rc;
}
