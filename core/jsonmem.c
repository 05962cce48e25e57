/*
 * core/jsonmem.c - see jsonmem.h.
 *
 * A region is a list of chunks, each FR_JSON_REGION_CHUNK bytes mapped at an
 * address that is a multiple of its size, so "is this pointer mine" is a
 * mask and a look through at most FR_JSON_REGION_MAX / FR_JSON_REGION_CHUNK
 * chunk addresses; a pointer that is not (malloc'd outside the region, or
 * before it) goes to free(). Released chunks wait in a pool shared by the
 * threads, so a busy agent does not map and fault in fresh pages per
 * request: an OTLP request of 500 spans takes ~3.4 MiB of region, and with
 * a pool of 1 MiB its unmapped chunks were 1.7 page faults per span, half of
 * the agent's system time (bench/otlp.sh). The pool holds what regions
 * gave back, up to two full regions (16 MiB): the chunks concurrent
 * requests had mapped at once, so it does not raise the peak RSS, and
 * /v1/events lines, whose regions take a chunk or two, never fill it. Under
 * AddressSanitizer the pool is off and a released chunk is unmapped, so a
 * tree that outlived its region faults in the tests.
 */
#include "core/jsonmem.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define CHUNK ((size_t)FR_JSON_REGION_CHUNK)
#define MAX_CHUNKS (FR_JSON_REGION_MAX / FR_JSON_REGION_CHUNK)
#define BIG (CHUNK / 8) /* larger allocations (a long string's copy) go to malloc */

#if defined(__SANITIZE_ADDRESS__)
#define POOL_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_MAX 0
#endif
#endif
#ifndef POOL_MAX
#define POOL_MAX (2 * MAX_CHUNKS)
#endif
/* sanitizer builds (the tests) check that a tree dropped without its walk is all the region's */
#define DROP_CHECK (POOL_MAX == 0)

struct region {
    int depth;       /* begins not yet ended */
    char *cur, *end; /* free bytes of the newest chunk */
    char *last;      /* the newest allocation: freeing it gives its bytes back */
    size_t used;     /* bytes handed out (for fr_json_region_used) */
    size_t spills;   /* allocations inside the region that went to malloc */
    size_t nchunks;
    uintptr_t chunks[MAX_CHUNKS];
};

static __thread struct region reg;

#if POOL_MAX > 0
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static void *pool[POOL_MAX];
static size_t npool;
#endif

static void *
chunk_map(void)
{
    /* twice the size, then the unaligned head and tail unmapped */
    char *p = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
    size_t head = a - (uintptr_t)p;
    if (head > 0)
        munmap(p, head);
    if (CHUNK - head > 0)
        munmap((char *)a + CHUNK, CHUNK - head);
    return (void *)a;
}

static void *
chunk_take(void)
{
#if POOL_MAX > 0
    pthread_mutex_lock(&pool_mu);
    void *c = npool > 0 ? pool[--npool] : NULL;
    pthread_mutex_unlock(&pool_mu);
    if (c != NULL)
        return c;
#endif
    return chunk_map();
}

static void
chunk_give(void *c)
{
#if POOL_MAX > 0
    pthread_mutex_lock(&pool_mu);
    bool kept = npool < POOL_MAX;
    if (kept)
        pool[npool++] = c;
    pthread_mutex_unlock(&pool_mu);
    if (kept)
        return;
#endif
    munmap(c, CHUNK);
}

static bool
grow(void)
{
    if (reg.nchunks == MAX_CHUNKS)
        return false;
    char *c = chunk_take();
    if (c == NULL)
        return false;
    reg.chunks[reg.nchunks++] = (uintptr_t)c;
    reg.cur = c;
    reg.end = c + CHUNK;
    return true;
}

void *
fr_json_region_alloc(size_t n)
{
    if (reg.depth > 0 && n <= BIG) {
        size_t need = (n + 15) & ~(size_t)15; /* malloc's alignment */
        if ((size_t)(reg.end - reg.cur) >= need || grow()) {
            char *p = reg.cur;
            reg.cur += need;
            reg.last = p;
            reg.used += need;
            return p;
        }
    }
    if (reg.depth > 0)
        reg.spills++;
    return malloc(n);
}

bool
fr_json_region_owns(const void *p)
{
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)(CHUNK - 1);
    for (size_t i = reg.nchunks; i-- > 0;) /* the newest chunk first */
        if (reg.chunks[i] == base)
            return true;
    return false;
}

void
fr_json_region_free(void *p)
{
    if (p == NULL)
        return;
    if (reg.nchunks > 0 && fr_json_region_owns(p)) {
        if (p == reg.last) { /* a string buffer outgrown, a temporary: its bytes again */
            reg.used -= (size_t)(reg.cur - reg.last);
            reg.cur = reg.last;
            reg.last = NULL;
        }
        return;
    }
    free(p);
}

__attribute__((constructor)) static void
install(void)
{
    json_set_alloc_funcs(fr_json_region_alloc, fr_json_region_free);
}

void
fr_json_region_begin(void)
{
    reg.depth++;
}

void
fr_json_region_end(void)
{
    if (reg.depth == 0 || --reg.depth > 0)
        return;
    for (size_t i = 0; i < reg.nchunks; i++)
        chunk_give((void *)reg.chunks[i]);
    reg.nchunks = 0;
    reg.cur = reg.end = reg.last = NULL;
    reg.used = 0;
    reg.spills = 0;
}

int
fr_json_region_suspend(void)
{
    int depth = reg.depth;
    reg.depth = 0; /* frees still know the region's chunks: fr_json_region_owns */
    return depth;
}

void
fr_json_region_resume(int depth)
{
    reg.depth = depth;
}

#if DROP_CHECK
/* Every node of j, and every string's bytes, from the region (or a jansson singleton). */
static bool
all_in_region(json_t *j)
{
    if (j == NULL || j->refcount == (size_t)-1) /* true, false, null: never freed */
        return true;
    if (!fr_json_region_owns(j))
        return false;
    const char *k;
    json_t *v;
    size_t i;
    switch (json_typeof(j)) {
    case JSON_STRING:
        return fr_json_region_owns(json_string_value(j));
    case JSON_OBJECT:
        json_object_foreach(j, k, v)
        {
            if (!all_in_region(v))
                return false;
        }
        return true;
    case JSON_ARRAY:
        json_array_foreach(j, i, v)
        {
            if (!all_in_region(v))
                return false;
        }
        return true;
    default:
        return true;
    }
}
#endif

void
fr_json_region_drop(json_t *j)
{
    if (j == NULL)
        return;
    if (reg.depth == 0 || reg.spills != 0) { /* something of it may be malloc's */
        json_decref(j);
        return;
    }
#if DROP_CHECK
    if (!all_in_region(j)) {
        fprintf(stderr, "fr_json_region_drop: a tree with nodes from outside the region\n");
        abort();
    }
#endif
    /* all of it is the region's: its end releases it; the walk of json_delete is skipped */
}

size_t
fr_json_region_spills(void)
{
    return reg.depth > 0 ? reg.spills : SIZE_MAX;
}

size_t
fr_json_region_used(void)
{
    return reg.used;
}
