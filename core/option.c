/*
 * core/option.c - see option.h.
 */
#include "core/option.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/yamlcfg.h"

extern char **environ;

int
fr_duration_parse(const char *s, int64_t *ms, struct fr_err *err)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 7 * 86400000LL}};
    char *end;
    if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return fr_err_set(err, FR_E_INVALID,
                          "'%s' is not a duration (a number and ms, s, m, h, d or w: 30s, 10m)",
                          s ? s : "");
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return fr_err_set(err, FR_E_INVALID, "'%s' is not a duration", s);
    if (*end == '\0') {
        if (v != 0)
            return fr_err_set(err, FR_E_INVALID,
                              "'%s' has no unit: write %sms, %ss, %sm, %sh or %sd", s, s, s, s, s,
                              s);
        *ms = 0;
        return FR_OK;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        double total = v * (double)units[i].ms;
        if (total > 9.2e18)
            return fr_err_set(err, FR_E_INVALID, "'%s' is too long a duration", s);
        *ms = (int64_t)total;
        return FR_OK;
    }
    return fr_err_set(err, FR_E_INVALID, "'%s': unknown unit '%s' (ms, s, m, h, d or w)", s, end);
}

static void *
slot(const struct fr_option *o, void *base)
{
    return (char *)base + o->offset;
}

static bool
is_string(const struct fr_option *o)
{
    return o->type == FR_OPT_STR || o->type == FR_OPT_SECRET;
}

bool
fr_option_set(const struct fr_option *o, void *base, const char *v, char *msg, size_t msglen)
{
    void *p = slot(o, base);
    switch (o->type) {
    case FR_OPT_END:
        break;
    case FR_OPT_STR:
    case FR_OPT_SECRET:
        free(*(char **)p);
        *(char **)p = fr_strdup(v);
        return true;
    case FR_OPT_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || n < o->min || n > o->max) {
            snprintf(msg, msglen, "expected a whole number from %lld to %lld, got '%s'",
                     (long long)o->min, (long long)o->max, v);
            return false;
        }
        *(int64_t *)p = n;
        return true;
    }
    case FR_OPT_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0) {
            *(bool *)p = true;
            return true;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0) {
            *(bool *)p = false;
            return true;
        }
        snprintf(msg, msglen, "expected true or false, got '%s'", v);
        return false;
    case FR_OPT_DURATION: {
        struct fr_err e = {0};
        int64_t ms;
        if (fr_duration_parse(v, &ms, &e) != FR_OK) {
            snprintf(msg, msglen, "%.200s", e.msg);
            return false;
        }
        if (ms < o->min || ms > o->max) {
            snprintf(msg, msglen, "'%s' is outside %lld ms to %lld ms", v, (long long)o->min,
                     (long long)o->max);
            return false;
        }
        *(int64_t *)p = ms;
        return true;
    }
    case FR_OPT_ENUM: {
        size_t n = 0;
        for (; o->choices[n] != NULL; n++) {
            if (strcmp(o->choices[n], v) == 0) {
                *(int *)p = (int)n;
                return true;
            }
        }
        size_t at = (size_t)snprintf(msg, msglen, "expected ");
        for (size_t i = 0; i < n && at < msglen; i++)
            at += (size_t)snprintf(msg + at, msglen - at, "%s%s", o->choices[i],
                                   i + 2 < n    ? ", "
                                   : i + 2 == n ? " or "
                                                : "");
        if (at < msglen)
            snprintf(msg + at, msglen - at, ", got '%s'", v);
        return false;
    }
    }
    snprintf(msg, msglen, "unsupported option type");
    return false;
}

void
fr_options_defaults(const struct fr_option *t, void *base)
{
    char msg[256];
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++)
        fr_option_set(o, base, o->def, msg, sizeof msg);
}

void
fr_option_unset_empty(char **s)
{
    if (*s != NULL && (*s)[0] == '\0') {
        free(*s);
        *s = NULL;
    }
}

void
fr_options_clear(const struct fr_option *t, void *base)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        if (is_string(o)) {
            free(*(char **)slot(o, base));
            *(char **)slot(o, base) = NULL;
        }
    }
}

const struct fr_option *
fr_options_find(const struct fr_option *t, const char *section, const char *key)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++)
        if (strcmp(o->section, section) == 0 && strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

/* "storage, ingest, http, ..." (the sections in table order). */
static void
section_list(const struct fr_option *t, char *out, size_t n)
{
    size_t at = 0;
    out[0] = '\0';
    for (const struct fr_option *o = t; o->type != FR_OPT_END && at < n; o++)
        if (o->section[0] == '\0' || o == t || strcmp(o[-1].section, o->section) != 0)
            at += (size_t)snprintf(out + at, n - at, "%s%s", at ? ", " : "",
                                   o->section[0] ? o->section : o->key);
}

static bool
section_known(const struct fr_option *t, const char *s)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++)
        if (strcmp(o->section, s) == 0)
            return true;
    return false;
}

/* "section.key", or "key" for the top level. */
static void
full_name(const char *section, const char *key, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s", section, section[0] ? "." : "", key ? key : "?");
}

/* Levenshtein distance of two short names (capped at 64 characters). */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof prev);
    }
    return prev[lb];
}

/*
 * What an unknown section.key most likely meant, written into out: a section of its own
 * (key is a section's name), the same key in another section, or the declared option
 * nearest by name (within an edit distance of 3, a prefix of its key counting as 1: max_body
 * for max_body_bytes); false when nothing is near.
 */
static bool
option_like(const struct fr_option *t, const char *section, const char *key, char *out, size_t n)
{
    for (const struct fr_option *o = t; section[0] != '\0' && o->type != FR_OPT_END; o++)
        if (o->section[0] != '\0' && strcmp(o->section, section) != 0 &&
            edit_distance(key, o->section) <= (strlen(key) >= 6 ? 2 : 0)) {
            snprintf(out, n, "%s is a section of its own, at the top level", o->section);
            return true;
        }
    char name[160], cand[160];
    full_name(section, key, name, sizeof name);
    const struct fr_option *best = NULL;
    size_t best_d = (size_t)-1, klen = strlen(key);
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        full_name(o->section, o->key, cand, sizeof cand);
        size_t d = strcmp(o->key, key) == 0 ? 0 : edit_distance(name, cand);
        if (d > 1 && klen >= 4 && strcmp(o->section, section) == 0 &&
            strncmp(o->key, key, klen) == 0)
            d = 1;
        if (d < best_d) {
            best = o;
            best_d = d;
        }
    }
    if (best == NULL || best_d > 3)
        return false;
    full_name(best->section, best->key, cand, sizeof cand);
    snprintf(out, n, "did you mean %s?", cand);
    return true;
}

/* One key: value of section (declared, or taken by extra). */
static int
load_pair(const struct fr_option *t, void *base, struct fr_yaml *y, const char *section,
          yaml_node_t *kn, yaml_node_t *vn, fr_option_extra extra, void *ud)
{
    const char *key = fr_yaml_scalar(kn), *val = fr_yaml_scalar(vn);
    const struct fr_option *o = key ? fr_options_find(t, section, key) : NULL;
    char name[160], msg[256];
    full_name(section, key, name, sizeof name);
    if (o == NULL && key != NULL && extra != NULL) {
        int rc = extra(ud, y, section, key, kn, vn);
        if (rc != FR_E_NOTFOUND)
            return rc;
    }
    if (o == NULL) {
        char like[200];
        if (key != NULL && option_like(t, section, key, like, sizeof like))
            return fr_yaml_fail(y, kn, "%s: unknown option; %s", name, like);
        return fr_yaml_fail(y, kn, "%s: unknown option", name);
    }
    if (val == NULL)
        return fr_yaml_fail(y, vn, "%s: expected a single value", name);
    if (!fr_option_set(o, base, val, msg, sizeof msg))
        return fr_yaml_fail(y, vn, "%s: %s", name, msg);
    return FR_OK;
}

static int
load_section(const struct fr_option *t, void *base, struct fr_yaml *y, const char *section,
             yaml_node_t *sv, fr_option_extra extra, void *ud)
{
    int rc = FR_OK;
    for (yaml_node_pair_t *q = sv->data.mapping.pairs.start;
         rc == FR_OK && q < sv->data.mapping.pairs.top; q++)
        rc = load_pair(t, base, y, section, fr_yaml_node(y, q->key), fr_yaml_node(y, q->value),
                       extra, ud);
    return rc;
}

int
fr_options_load_node(const struct fr_option *t, void *base, struct fr_yaml *y, void *node,
                     const char *section, fr_option_extra extra, void *ud)
{
    yaml_node_t *n = node;
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, n, "%s: expected a mapping", section);
    return load_section(t, base, y, section, n, extra, ud);
}

static int
load_root(const struct fr_option *t, void *base, struct fr_yaml *y, fr_option_extra extra, void *ud)
{
    yaml_node_t *root = fr_yaml_root(y);
    char sections[512];
    section_list(t, sections, sizeof sections);
    if (root == NULL)
        return FR_OK;
    if (root->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, root, "expected a mapping of sections (%s)", sections);
    int rc = FR_OK;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         rc == FR_OK && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *sk = fr_yaml_node(y, p->key), *sv = fr_yaml_node(y, p->value);
        const char *section = fr_yaml_scalar(sk);
        if (section != NULL && fr_options_find(t, "", section) != NULL) {
            rc = load_pair(t, base, y, "", sk, sv, extra, ud); /* a top-level option */
        } else if (section != NULL && !section_known(t, section) && extra != NULL &&
                   (rc = extra(ud, y, "", section, sk, sv)) != FR_E_NOTFOUND) {
            continue; /* a top-level key the hook takes (a list, say) */
        } else if (section == NULL || !section_known(t, section)) {
            rc =
                fr_yaml_fail(y, sk, "unknown section '%s' (%s)", section ? section : "?", sections);
        } else if (sv->type == YAML_SCALAR_NODE && fr_yaml_scalar(sv)[0] == '\0') {
            continue; /* an empty section: all defaults */
        } else if (sv->type != YAML_MAPPING_NODE) {
            rc = fr_yaml_fail(y, sv, "%s: expected a mapping of options", section);
        } else {
            rc = load_section(t, base, y, section, sv, extra, ud);
        }
    }
    return rc;
}

int
fr_options_load_yaml(const struct fr_option *t, void *base, const char *path, struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open_file(&y, path, err);
    if (rc != FR_OK)
        return rc;
    rc = load_root(t, base, &y, NULL, NULL);
    fr_yaml_close(&y);
    return rc;
}

int
fr_options_load_text(const struct fr_option *t, void *base, const char *text, size_t len,
                     const char *name, fr_option_extra extra, void *ud, struct fr_err *err)
{
    struct fr_yaml y;
    int rc = fr_yaml_open(&y, text, len, name, err);
    if (rc != FR_OK)
        return rc;
    rc = load_root(t, base, &y, extra, ud);
    fr_yaml_close(&y);
    return rc;
}

/* PREFIX_SECTION_KEY in upper case into out. */
static void
env_name(const char *prefix, const struct fr_option *o, char *out, size_t n)
{
    int len = snprintf(out, n, "%s_%s_%s", prefix, o->section, o->key);
    for (int k = 0; k < len && (size_t)k < n; k++)
        out[k] = (char)toupper((unsigned char)out[k]);
}

static void
warn_unknown_env(const struct fr_option *t, const char *prefix, const char *const *also,
                 void (*warn)(const char *msg))
{
    size_t plen = strlen(prefix);
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || strncmp(*e, prefix, plen) != 0 || (*e)[plen] != '_')
            continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        bool known = false;
        for (const char *const *a = also; a && *a && !known; a++)
            known = strcmp(*a, name) == 0;
        char best[128] = "";
        size_t best_d = (size_t)-1;
        for (const struct fr_option *o = t; o->type != FR_OPT_END && !known; o++) {
            char cand[128];
            env_name(prefix, o, cand, sizeof cand);
            size_t d = edit_distance(name, cand);
            known = d == 0;
            if (d < best_d) {
                best_d = d;
                snprintf(best, sizeof best, "%s", cand);
            }
        }
        if (known)
            continue;
        char msg[400];
        if (best[0] && best_d <= 3)
            snprintf(msg, sizeof msg, "environment %s names no option; did you mean %s?", name,
                     best);
        else
            snprintf(msg, sizeof msg, "environment %s names no option; it is ignored", name);
        warn(msg);
    }
}

int
fr_options_load_env(const struct fr_option *t, void *base, const char *prefix,
                    const char *const *also, void (*warn)(const char *msg), struct fr_err *err)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        char name[128];
        env_name(prefix, o, name, sizeof name);
        const char *v = getenv(name);
        char msg[256];
        if (v != NULL && !fr_option_set(o, base, v, msg, sizeof msg))
            return fr_err_set(err, FR_E_CONFIG, "environment %s: %s", name, msg);
    }
    if (warn != NULL)
        warn_unknown_env(t, prefix, also, warn);
    return FR_OK;
}

static void
print_duration(int64_t ms, FILE *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"w", 7 * 86400000LL}, {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        fputs("0", out);
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            fprintf(out, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    fprintf(out, "%lldms", (long long)ms);
}

void
fr_options_print(const struct fr_option *t, const void *base, FILE *out)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        if (o->section[0] && (o == t || strcmp(o[-1].section, o->section) != 0))
            fprintf(out, "%s:\n", o->section);
        const void *p = (const char *)base + o->offset;
        fprintf(out, "%s%s: ", o->section[0] ? "  " : "", o->key);
        switch (o->type) {
        case FR_OPT_END:
            break;
        case FR_OPT_STR:
        case FR_OPT_SECRET: {
            const char *s = *(char *const *)p;
            if (o->type == FR_OPT_SECRET && s && *s)
                fputs("\"***\"", out);
            else
                fprintf(out, "\"%s\"", s ? s : "");
            break;
        }
        case FR_OPT_INT:
            fprintf(out, "%lld", (long long)*(const int64_t *)p);
            break;
        case FR_OPT_BOOL:
            fputs(*(const bool *)p ? "true" : "false", out);
            break;
        case FR_OPT_DURATION:
            print_duration(*(const int64_t *)p, out);
            break;
        case FR_OPT_ENUM:
            fputs(o->choices[*(const int *)p], out);
            break;
        }
        fputc('\n', out);
    }
}

static const char *
type_name(const struct fr_option *o)
{
    switch (o->type) {
    case FR_OPT_STR:
        return "string";
    case FR_OPT_SECRET:
        return "secret string";
    case FR_OPT_INT:
        return "integer";
    case FR_OPT_BOOL:
        return "boolean";
    case FR_OPT_DURATION:
        return "duration";
    case FR_OPT_ENUM:
        return "one of";
    case FR_OPT_END:
        break;
    }
    return "?";
}

void
fr_options_markdown(const struct fr_option *t, const char *prefix, FILE *out)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        if (o == t || strcmp(o[-1].section, o->section) != 0)
            fprintf(out,
                    "\n## `%s`\n\n| key | type | default | environment | meaning |\n"
                    "| --- | --- | --- | --- | --- |\n",
                    o->section);
        char env[128];
        env_name(prefix, o, env, sizeof env);
        fprintf(out, "| `%s.%s` | %s", o->section, o->key, type_name(o));
        if (o->type == FR_OPT_ENUM)
            for (size_t i = 0; o->choices[i]; i++)
                fprintf(out, "%s`%s`", i ? ", " : " ", o->choices[i]);
        if (o->type == FR_OPT_INT)
            fprintf(out, " (%lld to %lld)", (long long)o->min, (long long)o->max);
        fprintf(out, " | `%s` |", o->def[0] ? o->def : "\"\"");
        if (prefix) {
            char env[128];
            env_name(prefix, o, env, sizeof env);
            fprintf(out, " `%s` |", env);
        }
        fprintf(out, " %s |\n", o->description ? o->description : "");
    }
}

void
fr_roff_write(const char *text, FILE *out)
{
    bool bol = true;
    for (const char *p = text; *p; p++) {
        if (bol && (*p == '.' || *p == '\''))
            fputs("\\&", out);
        if (*p == '\\')
            fputs("\\e", out);
        else if (*p == '-')
            fputs("\\-", out);
        else
            fputc(*p, out);
        bol = *p == '\n';
    }
}

void
fr_options_man(const struct fr_option *t, const char *prefix, FILE *out)
{
    for (const struct fr_option *o = t; o->type != FR_OPT_END; o++) {
        if (o == t || strcmp(o[-1].section, o->section) != 0) {
            fputs(".SS ", out);
            fr_roff_write(o->section[0] ? o->section : "(top level)", out);
            fputc('\n', out);
        }
        fputs(".TP\n.B ", out);
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", o->section, o->section[0] ? "." : "", o->key);
        fr_roff_write(name, out);
        fputc('\n', out);
        char line[512];
        int n = snprintf(line, sizeof line, "%s", type_name(o));
        if (o->type == FR_OPT_ENUM)
            for (size_t i = 0; o->choices[i] && n < (int)sizeof line; i++)
                n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", i ? ", " : ": ",
                              o->choices[i]);
        if (o->type == FR_OPT_INT && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " (%lld to %lld)", (long long)o->min,
                          (long long)o->max);
        if (n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, "; default %s",
                          o->def[0] ? o->def : "\"\"");
        if (prefix != NULL && n < (int)sizeof line) {
            char env[128];
            env_name(prefix, o, env, sizeof env);
            snprintf(line + n, sizeof line - (size_t)n, "; environment %s", env);
        }
        fr_roff_write(line, out);
        fputs(".\n.br\n", out);
        fr_roff_write(o->description ? o->description : "", out);
        fputc('\n', out);
    }
}
