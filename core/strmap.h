/*
 * core/strmap.h - a small string-keyed hash map (open addressing, FNV-1a)
 * for per-batch aggregation. Keys are copied; values are the caller's.
 */
#ifndef FR_CORE_STRMAP_H
#define FR_CORE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * 64-bit FNV-1a of a NUL-terminated string. Fixed forever: besides this
 * map, the archive segments' conv_id filters are built from it
 * (docs/archive-format.md), so segments written earlier stay readable.
 */
uint64_t fr_fnv1a64(const char *s);
/* The same hash continued over s from h (a hash of what came before). */
uint64_t fr_fnv1a64_from(uint64_t h, const char *s);

struct fr_strmap;

struct fr_strmap *fr_strmap_new(void);

/*
 * The value slot for key, created (holding NULL, *created = true) when the
 * key is new. The pointer is valid until the next insertion.
 */
void **fr_strmap_slot(struct fr_strmap *m, const char *key, bool *created);

/* The value stored under key, NULL when absent (never inserts). */
void *fr_strmap_get(const struct fr_strmap *m, const char *key);

/* Calls fn for every entry; stops at and returns the first non-zero result. */
int fr_strmap_each(struct fr_strmap *m, int (*fn)(void *ud, const char *key, void *value),
                   void *ud);

/* Removes every entry, passing each value to free_value (may be NULL). */
void fr_strmap_clear(struct fr_strmap *m, void (*free_value)(void *value));

/* Clears and frees m; NULL does nothing. */
void fr_strmap_free(struct fr_strmap *m, void (*free_value)(void *value));

size_t fr_strmap_count(const struct fr_strmap *m);

#endif
