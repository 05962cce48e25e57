/*
 * core/timeutil.c - time parsing and formatting for the CLI and query API.
 */
#include "core/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
fr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
fr_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
time_parse_duration(const char *s, int64_t now_ms, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (end == s || errno != 0 || n < 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    int64_t unit;
    switch (*end) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    case 'w':
        unit = 7 * 86400 * 1000LL;
        break;
    default:
        return -1;
    }
    if (n > INT64_MAX / unit)
        return -1;
    *out = now_ms - n * unit;
    return 0;
}

static int
time_parse_iso(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
        return -1;
    const char *p = s + used;
    if (*p == 'T' || *p == ' ') {
        int u2 = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &u2) != 2 || u2 != 5)
            return -1;
        p += 1 + u2;
        if (*p == ':') {
            if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
                return -1;
            sec = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
            if (*p == '.') {
                int digits = 0;
                p++;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3)
                        ms = ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return -1;
                for (; digits < 3; digits++)
                    ms *= 10;
            }
        }
    }
    if (*p == 'Z')
        p++;
    if (*p != '\0')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out = (int64_t)t * 1000 + ms;
    return 0;
}

int
fr_time_parse(const char *s, int64_t now_ms, int64_t *out, struct fr_err *err)
{
    if (s == NULL || *s == '\0')
        return fr_err_set(err, FR_E_INVALID, "empty time");
    size_t len = strlen(s);
    if (time_parse_duration(s, now_ms, out) == 0)
        return FR_OK;
    if (len > 10 || (len == 10 && s[4] != '-')) {
        /* all digits and long: epoch milliseconds */
        size_t i = 0;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i == len) {
            errno = 0;
            long long v = strtoll(s, NULL, 10);
            /* the same rule as an event's ts_ms: a number before 1973 is seconds, said so */
            if (errno == 0 && v < 100000000000LL)
                return fr_err_set(err, FR_E_INVALID,
                                  "time '%s' is before 1973 as milliseconds: it looks like "
                                  "seconds; give epoch milliseconds (%s000)",
                                  s, s);
            if (errno == 0) {
                *out = v;
                return FR_OK;
            }
        }
    }
    if (time_parse_iso(s, out) == 0)
        return FR_OK;
    return fr_err_set(err, FR_E_INVALID,
                      "cannot read time '%s': use 2026-02-17T19:44:05Z, a duration back from "
                      "now such as 15m, 2h, 3d, or epoch milliseconds",
                      s);
}

char *
fr_time_format(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int rem = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem);
    return buf;
}
