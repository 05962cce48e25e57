/*
 * core/log.c - fr_log() backend: one line per call to stderr, written with a
 * single fputs so lines from different threads do not interleave.
 */
#include "core/log.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

_Atomic int fr_log_threshold = FR_LOG_WARN;

void
fr_log_set_level(int level)
{
    if (level >= FR_LOG_ERROR && level <= FR_LOG_DEBUG)
        atomic_store_explicit(&fr_log_threshold, level, memory_order_relaxed);
}

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void
fr_log_write(int level, const char *component, const char *fmt, ...)
{
    char line[1024];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(
        line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
        log_names[level < 0   ? 0
                  : level > 3 ? 3
                              : level],
        component);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one event, one line: a newline or an escape sequence in a producer's id or text
       that reached a message cannot forge a log line or drive the reader's terminal */
    fr_escape_controls(msg, strlen(msg), false, line + n, sizeof line - (size_t)n - 1);
    size_t len = strlen(line);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

int
fr_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, log_names[i]) == 0)
            return i;
    return -1;
}

void
fr_log_init_from_env(void)
{
    const char *s = getenv("FLIGHTREC_LOG_LEVEL");
    if (s == NULL)
        return;
    int level = fr_log_level_parse(s);
    fr_log_set_level(level);
}
