/*
 * core/strmap.c - see strmap.h. Invariant: count * 2 <= cap, cap a power of
 * two, so probing always ends at an empty slot.
 */
#include "core/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct strmap_entry {
    char *key;
    void *value;
};

struct fr_strmap {
    struct strmap_entry *e;
    size_t cap, count;
};

uint64_t
fr_fnv1a64(const char *s)
{
    return fr_fnv1a64_from(0xcbf29ce484222325ULL, s); /* the FNV offset basis */
}

uint64_t
fr_fnv1a64_from(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL; /* the FNV prime */
    return h;
}

struct fr_strmap *
fr_strmap_new(void)
{
    return fr_calloc(1, sizeof(struct fr_strmap));
}

static void
strmap_grow(struct fr_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct strmap_entry *e = fr_calloc(cap, sizeof *e);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key == NULL)
            continue;
        size_t j = fr_fnv1a64(m->e[i].key) & (cap - 1);
        while (e[j].key != NULL)
            j = (j + 1) & (cap - 1);
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
}

void **
fr_strmap_slot(struct fr_strmap *m, const char *key, bool *created)
{
    if ((m->count + 1) * 2 > m->cap)
        strmap_grow(m);
    size_t i = fr_fnv1a64(key) & (m->cap - 1);
    while (m->e[i].key != NULL) {
        if (strcmp(m->e[i].key, key) == 0) {
            *created = false;
            return &m->e[i].value;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->e[i].key = fr_strdup(key);
    m->e[i].value = NULL;
    m->count++;
    *created = true;
    return &m->e[i].value;
}

void *
fr_strmap_get(const struct fr_strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = fr_fnv1a64(key) & (m->cap - 1);
    while (m->e[i].key != NULL) {
        if (strcmp(m->e[i].key, key) == 0)
            return m->e[i].value;
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

int
fr_strmap_each(struct fr_strmap *m, int (*fn)(void *ud, const char *key, void *value), void *ud)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key == NULL)
            continue;
        int rc = fn(ud, m->e[i].key, m->e[i].value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void
fr_strmap_clear(struct fr_strmap *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key == NULL)
            continue;
        if (free_value != NULL)
            free_value(m->e[i].value);
        free(m->e[i].key);
        m->e[i].key = NULL;
    }
    m->count = 0;
}

void
fr_strmap_free(struct fr_strmap *m, void (*free_value)(void *value))
{
    if (m == NULL)
        return;
    fr_strmap_clear(m, free_value);
    free(m->e);
    free(m);
}

size_t
fr_strmap_count(const struct fr_strmap *m)
{
    return m->count;
}
