/*
 * core/log.h - the one logging macro family.
 *
 *     fr_log(FR_LOG_WARN, "store", "commit failed: %s", sqlite3_errstr(rc));
 *
 * The level is checked before anything is formatted. Log ids, codes and
 * counts; never payloads (a payload may hold a secret the redactor has not
 * seen yet). Lines go to stderr as "ts level component: message".
 */
#ifndef FR_CORE_LOG_H
#define FR_CORE_LOG_H

#include <stdatomic.h>

enum fr_log_level {
    FR_LOG_ERROR = 0,
    FR_LOG_WARN = 1,
    FR_LOG_INFO = 2,
    FR_LOG_DEBUG = 3,
};

/* Messages above this level are skipped. Atomic: a reload (SIGHUP) changes it while
   other threads log; read it with relaxed order, set it with fr_log_set_level(). */
extern _Atomic int fr_log_threshold;

#define fr_log(level, component, ...)                                                              \
    do {                                                                                           \
        if ((level) <= atomic_load_explicit(&fr_log_threshold, memory_order_relaxed))              \
            fr_log_write((level), (component), __VA_ARGS__);                                       \
    } while (0)

void fr_log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the threshold (a valid level; others are ignored). */
void fr_log_set_level(int level);

/* Parses "error|warn|info|debug"; returns the level or -1. */
int fr_log_level_parse(const char *s);

/* Sets the threshold from FLIGHTREC_LOG_LEVEL when set and valid. */
void fr_log_init_from_env(void);

#endif
