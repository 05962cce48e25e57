/*
 * agent/api/params.c - see params.h.
 */
#include "agent/api/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"

void
fr_qparams_add(struct fr_qparams *q, const char *key, const char *value)
{
    if (q->n == FR_QPARAMS_MAX) {
        q->dropped++;
        return;
    }
    q->key[q->n] = key;
    q->val[q->n] = value ? value : "";
    q->n++;
}

const char *
fr_qparams_get(const struct fr_qparams *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->key[i], name) == 0)
            return q->val[i][0] ? q->val[i] : NULL;
    return NULL;
}

void
fr_text_cut(const char *in, size_t max, char *out, size_t outlen)
{
    size_t n = strlen(in);
    bool cut = n > max;
    if (cut) {
        n = fr_utf8_cut(in, max); /* never half a character */
    }
    snprintf(out, outlen, "%.*s%s", (int)n, in, cut ? "..." : "");
}

static bool
qp_allowed(const struct fr_qparams *q, const char *const *allowed, char *msg, size_t msglen)
{
    if (q->dropped > 0) {
        snprintf(msg, msglen, "too many parameters (more than %d)", FR_QPARAMS_MAX);
        return false;
    }
    for (size_t i = 0; i < q->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, q->key[i]) == 0;
        if (!ok) {
            char name[80];
            fr_text_cut(q->key[i], 64, name, sizeof name);
            snprintf(msg, msglen, "unknown parameter '%s'", name);
            return false;
        }
    }
    return true;
}

static bool
qp_time(const struct fr_qparams *q, const char *name, int64_t now_ms, int64_t *out, char *msg,
        size_t msglen)
{
    const char *s = fr_qparams_get(q, name);
    struct fr_err err = {0};
    if (s != NULL && fr_time_parse(s, now_ms, out, &err) != FR_OK) {
        snprintf(msg, msglen, "%s: %s", name, err.msg);
        return false;
    }
    return true;
}

bool
fr_qparams_common(const struct fr_qparams *q, const char *const *allowed, int64_t now_ms,
                  int deflimit, int64_t *since, int64_t *until, int *limit, char *msg,
                  size_t msglen)
{
    return fr_qparams_common_max(q, allowed, now_ms, deflimit, 1000, since, until, limit, msg,
                                 msglen);
}

bool
fr_qparams_common_max(const struct fr_qparams *q, const char *const *allowed, int64_t now_ms,
                      int deflimit, int maxlimit, int64_t *since, int64_t *until, int *limit,
                      char *msg, size_t msglen)
{
    if (!qp_allowed(q, allowed, msg, msglen) || !qp_time(q, "since", now_ms, since, msg, msglen) ||
        !qp_time(q, "until", now_ms, until, msg, msglen))
        return false;
    if (*since && *until && *since > *until) {
        snprintf(msg, msglen, "since is after until: nothing can match");
        return false;
    }
    *limit = deflimit;
    const char *s = fr_qparams_get(q, "limit");
    if (s != NULL) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end != '\0' || v < 1 || v > maxlimit) {
            snprintf(msg, msglen, "limit: expected a whole number from 1 to %d", maxlimit);
            return false;
        }
        *limit = (int)v;
    }
    return true;
}

char *
fr_cursor_encode(int64_t ms, const char *id)
{
    char *plain = fr_asprintf("%lld:%s", (long long)ms, id);
    size_t n = strlen(plain);
    char *hex = fr_malloc(2 * n + 1);
    fr_hex_encode((const unsigned char *)plain, n, hex);
    free(plain);
    return hex;
}

bool
fr_cursor_decode(const char *hex, int64_t *ms, char *id, size_t idlen)
{
    size_t n = strlen(hex);
    char plain[600];
    if (n == 0 || n % 2 != 0 || n / 2 >= sizeof plain || n / 2 >= idlen + 24)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = fr_hex_digit(hex[2 * i]), lo = fr_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        plain[i] = (char)(hi << 4 | lo);
        if (plain[i] == '\0')
            return false;
    }
    plain[n / 2] = '\0';
    char *colon = strchr(plain, ':');
    if (colon == NULL || colon == plain || strlen(colon + 1) >= idlen)
        return false;
    *colon = '\0';
    char *end;
    *ms = strtoll(plain, &end, 10);
    if (*end != '\0')
        return false;
    snprintf(id, idlen, "%s", colon + 1);
    return true;
}
