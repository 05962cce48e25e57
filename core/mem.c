/*
 * core/mem.c - allocation wrappers that abort on out-of-memory.
 */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
mem_die(size_t n)
{
    fprintf(stderr, "flightrec: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
fr_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        mem_die(n);
    return p;
}

void *
fr_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        mem_die(count * size);
    return p;
}

void *
fr_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        mem_die(n);
    return q;
}

char *
fr_strdup(const char *s)
{
    return fr_strndup(s, strlen(s));
}

char *
fr_strndup(const char *s, size_t n)
{
    char *p = fr_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
fr_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        mem_die(0);
    char *p = fr_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void
fr_str_append(char *buf, size_t cap, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - 1 - *at)
        n = cap - 1 - *at;
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = '\0';
}
