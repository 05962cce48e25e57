/*
 * core/err.h - return codes and the error-reporting convention.
 *
 * A function that can fail returns an int: 0 (FR_OK) on success, a negative
 * enum fr_rc on failure. FR_DECLINED (positive) is used only by plugins that
 * say "not mine, pass it on"; it never means success of the call itself.
 * Codes are only ever added, never renumbered: fr_rc_name() is the stable
 * token for programs and metrics, fr_strerror() the fixed phrase for people.
 *
 * A failing function may fill an optional struct fr_err with the code and one
 * sentence saying which line, field or key failed and why. fr_err_set()
 * returns the code, so a failure stays one line:
 *
 *     if (len > max)
 *         return fr_err_set(err, FR_E_LIMIT, "line %zu: %zu bytes", n, len);
 */
#ifndef FR_CORE_ERR_H
#define FR_CORE_ERR_H

#include <stddef.h>

enum fr_rc {
    FR_DECLINED = 1,     /* plugin: not mine, pass it on */
    FR_OK = 0,           /* success */
    FR_E_INVALID = -1,   /* invalid argument or usage */
    FR_E_IO = -2,        /* file or socket I/O failed */
    FR_E_STORE = -3,     /* the hot store failed */
    FR_E_LIMIT = -4,     /* a configured limit was exceeded */
    FR_E_SYNTAX = -5,    /* input is not valid JSON */
    FR_E_UTF8 = -6,      /* input is not valid UTF-8 */
    FR_E_MISSING = -7,   /* a required field is missing */
    FR_E_TYPE = -8,      /* a field has the wrong JSON type */
    FR_E_VALUE = -9,     /* a field has a value outside its domain */
    FR_E_KIND = -10,     /* unknown event kind */
    FR_E_DEPTH = -11,    /* JSON nested too deeply */
    FR_E_VERSION = -12,  /* unsupported wire or schema version */
    FR_E_NOTFOUND = -13, /* the thing asked for does not exist */
    FR_E_BUSY = -14,     /* resource busy, try again */
    FR_E_CONFIG = -15,   /* bad configuration */
    FR_E_TIMEOUT = -16,  /* a peer stalled past its time limit */
    FR_E_AUTH = -17,     /* data failed authentication with the keys at hand */
};

/* The largest magnitude of a code defined above; used by tables and tests. */
#define FR_RC_MIN FR_E_AUTH

struct fr_err {
    int code;      /* an enum fr_rc, 0 when no error was set */
    char msg[512]; /* one sentence for people; never holds payload data */
};

/*
 * Fills err (when not NULL) with code and a printf-style message and returns
 * code. A NULL err is allowed so callers that do not care can pass NULL.
 */
int fr_err_set(struct fr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to "no error". */
void fr_err_clear(struct fr_err *err);

/* Stable lower-case token for a code, e.g. "missing_field"; "unknown" if not a code. */
const char *fr_rc_name(int rc);

/* Fixed human phrase for a code, e.g. "a required field is missing". */
const char *fr_strerror(int rc);

#endif
