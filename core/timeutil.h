/*
 * core/timeutil.h - wall-clock helpers. All times in flightrec are integer
 * milliseconds since the Unix epoch, UTC.
 */
#ifndef FR_CORE_TIMEUTIL_H
#define FR_CORE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Current wall-clock time in ms. */
int64_t fr_now_ms(void);

/* Monotonic clock in seconds, for measuring rates and durations. */
double fr_mono_s(void);

/*
 * Parses a user-given point in time relative to now_ms:
 *   - an ISO-8601 UTC time: 2026-02-17, 2026-02-17T19:44, 2026-02-17T19:44:05(.201)(Z)
 *   - a duration back from now: 90s, 15m, 2h, 3d, 1w
 *   - epoch milliseconds: 1771357445201
 * Returns FR_OK and sets *out, or FR_E_INVALID with a message naming what.
 */
int fr_time_parse(const char *s, int64_t now_ms, int64_t *out, struct fr_err *err);

/* Formats ms as 2026-02-17T19:44:05.201Z into buf (at least 32 bytes). */
char *fr_time_format(int64_t ms, char *buf, size_t size);

#endif
