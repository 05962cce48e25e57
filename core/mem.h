/*
 * core/mem.h - allocation wrappers. On out-of-memory they log and abort, so
 * callers need no untestable NULL branches. Anything sized by input must be
 * checked against a configured limit *before* allocating (FR_E_LIMIT).
 * Everything returned is freed with free().
 */
#ifndef FR_CORE_MEM_H
#define FR_CORE_MEM_H

#include <stddef.h>

void *fr_malloc(size_t n);
void *fr_calloc(size_t count, size_t size);
void *fr_realloc(void *p, size_t n);
char *fr_strdup(const char *s);
char *fr_strndup(const char *s, size_t n);
/* s appended to the string being built in buf (cap bytes) at *at, cut where it does not fit,
   and a NUL after it; *at moves past what was copied. A key built of parts, without printf. */
void fr_str_append(char *buf, size_t cap, size_t *at, const char *s);
/* printf into a new string; caller frees. */
char *fr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
