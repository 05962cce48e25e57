/*
 * agent/api/params.h - the query API's parameters, parsed without the HTTP
 * server so that they can be tested as data: the common ones (since, until,
 * limit, and no parameter the endpoint does not know), paging cursors, and
 * cutting echoed text at a character boundary.
 */
#ifndef FR_AGENT_API_PARAMS_H
#define FR_AGENT_API_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FR_QPARAMS_MAX 32

/* A request's query parameters (strings borrowed from the server). */
struct fr_qparams {
    size_t n;
    const char *key[FR_QPARAMS_MAX];
    const char *val[FR_QPARAMS_MAX];
    size_t dropped; /* parameters past FR_QPARAMS_MAX */
};

void fr_qparams_add(struct fr_qparams *q, const char *key, const char *value);

/* The value of name; NULL when absent or empty. */
const char *fr_qparams_get(const struct fr_qparams *q, const char *name);

/*
 * Checks that every parameter is in allowed (NULL-terminated) and parses
 * since and until (fr_time_parse, relative to now_ms; since must not be
 * after until) and limit (1 to 1000, default deflimit). On an error, msg
 * says which parameter and why (an echoed name is cut at a character
 * boundary) and false is returned.
 */
bool fr_qparams_common(const struct fr_qparams *q, const char *const *allowed, int64_t now_ms,
                       int deflimit, int64_t *since, int64_t *until, int *limit, char *msg,
                       size_t msglen);

/* The same with limit allowed up to maxlimit. */
bool fr_qparams_common_max(const struct fr_qparams *q, const char *const *allowed, int64_t now_ms,
                           int deflimit, int maxlimit, int64_t *since, int64_t *until, int *limit,
                           char *msg, size_t msglen);

/* Cursor of the conversation list: hex of "<last_activity_ms>:<conv_id>". Caller frees. */
char *fr_cursor_encode(int64_t ms, const char *id);
/* false when hex is not a cursor fr_cursor_encode() made (or id would not fit idlen). */
bool fr_cursor_decode(const char *hex, int64_t *ms, char *id, size_t idlen);

/*
 * Copies at most max bytes of in to out (outlen bytes), never cutting a
 * UTF-8 sequence in half, and "..." when it cut.
 */
void fr_text_cut(const char *in, size_t max, char *out, size_t outlen);

#endif
