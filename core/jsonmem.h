/*
 * core/jsonmem.h - a per-thread region for jansson's allocations.
 *
 * Ingest builds and drops a JSON tree per event (and an OTLP request's tree
 * per request): hundreds of small jansson allocations whose malloc and free
 * were a fifth of the ingest path's CPU, with lock traffic between the
 * connection threads and the writer. Between fr_json_region_begin() and
 * fr_json_region_end(), this thread's jansson allocations come from a bump
 * region of 256 KiB chunks instead; their frees do nothing (the newest one
 * gives its bytes back), and the end releases everything at once. Outside a
 * region, and past FR_JSON_REGION_MAX bytes in one, jansson uses malloc as
 * before, so the memory a region can hold is bounded.
 *
 * The rule that keeps it safe: nothing jansson allocates inside a region may
 * outlive it. A tree built in the region is decref'd before the region ends;
 * what must last (a record, a reply) is copied into memory of its own
 * (fr_malloc, fr_json_text). json_dumps() must not be called inside a region
 * when its result is freed with free(): use fr_json_text(). Regions nest; the
 * outermost end releases. The allocator is installed into jansson before
 * main() runs (a constructor), so every tree, old or new, is freed by it.
 */
#ifndef FR_CORE_JSONMEM_H
#define FR_CORE_JSONMEM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define FR_JSON_REGION_CHUNK (256u * 1024u)
#define FR_JSON_REGION_MAX (8u * 1024u * 1024u)

void fr_json_region_begin(void);
void fr_json_region_end(void);

/*
 * A region's allocations paused for a callback whose JSON must outlive it
 * (an error list the caller keeps): allocations go to malloc until resumed
 * with what suspend returned; the region's own memory stays as it is.
 */
int fr_json_region_suspend(void);
void fr_json_region_resume(int depth);

/*
 * The region's allocator itself, for another library whose allocations keep
 * the same rule (protobuf-c unpacking an OTLP request, freed before the
 * region ends): from the region inside one, malloc and free outside.
 */
void *fr_json_region_alloc(size_t n);
void fr_json_region_free(void *p);

/*
 * Drops this thread's reference to j, a tree built inside the current region
 * (a request's tree, its envelopes): when none of the region's allocations
 * went to malloc (fr_json_region_spills() 0), every node of it is region
 * memory that the region's end releases, so the walk that json_decref would
 * make through it (json_delete: ~13% of an OTLP request's CPU on the
 * connection thread) is skipped; otherwise, and outside a region, it is
 * json_decref. The caller's rule: j holds nothing made outside the region
 * (no tree from before it, nothing allocated while suspended), and nothing
 * uses j after the region ends. Sanitizer builds check the first and abort.
 */
void fr_json_region_drop(json_t *j);

/*
 * How many allocations inside this thread's region went to malloc (too big, or
 * the region full); SIZE_MAX outside a region. Unchanged across a library's
 * work means all it allocated is the region's: its frees may be skipped, the
 * region's end releases it (protobuf-c's free_unpacked walks every message).
 */
size_t fr_json_region_spills(void);
/* What this thread's current region took from its chunks (bytes), for tests and bench. */
size_t fr_json_region_used(void);
/* Whether p lies in this thread's current region. */
bool fr_json_region_owns(const void *p);

#endif
