/*
 * core/err.c - the fixed tables behind fr_rc_name() and fr_strerror(), and
 * fr_err_set(). The tables are indexed by -code so adding a code means adding
 * one row at the end of each.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *phrase;
} err_table[] = {
    [0] = {"ok", "success"},
    [1] = {"invalid", "invalid argument"},
    [2] = {"io", "input/output error"},
    [3] = {"store", "hot store error"},
    [4] = {"limit", "limit exceeded"},
    [5] = {"json_syntax", "not valid JSON"},
    [6] = {"invalid_utf8", "not valid UTF-8"},
    [7] = {"missing_field", "a required field is missing"},
    [8] = {"wrong_type", "a field has the wrong type"},
    [9] = {"bad_value", "a field has a value outside its domain"},
    [10] = {"unknown_kind", "unknown event kind"},
    [11] = {"too_deep", "JSON nested too deeply"},
    [12] = {"unsupported_version", "unsupported version"},
    [13] = {"not_found", "not found"},
    [14] = {"busy", "resource busy"},
    [15] = {"config", "bad configuration"},
    [16] = {"timeout", "timed out"},
    [17] = {"auth", "authentication failed"},
};

int
fr_err_set(struct fr_err *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void
fr_err_clear(struct fr_err *err)
{
    if (err == NULL)
        return;
    err->code = FR_OK;
    err->msg[0] = '\0';
}

const char *
fr_rc_name(int rc)
{
    if (rc == FR_DECLINED)
        return "declined";
    if (rc > 0 || rc < FR_RC_MIN)
        return "unknown";
    return err_table[-rc].name;
}

const char *
fr_strerror(int rc)
{
    if (rc == FR_DECLINED)
        return "declined by plugin";
    if (rc > 0 || rc < FR_RC_MIN)
        return "unknown error";
    return err_table[-rc].phrase;
}
