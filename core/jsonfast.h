/*
 * core/jsonfast.h - one JSON line parsed with simdjson into a jansson tree.
 *
 * jansson's parser reads a byte at a time through a stream callback; on
 * event lines of ~0.5 kB it took 60% of the ingest thread's instructions.
 * simdjson (Debian's libsimdjson-dev, through the one C++ file
 * core/jsonfast.cc) validates and indexes the line with SIMD instructions,
 * and the same jansson tree is built from its document: 4x fewer
 * instructions for parsing and building (figures in docs/architecture.md,
 * "The path of one event").
 *
 * It decides only what it decides exactly as json_loadb(buf, len,
 * JSON_REJECT_DUPLICATES) would: it returns NULL, and the caller parses with
 * jansson (which also writes the error message, line and column), for any
 * line simdjson refuses, and for what simdjson accepts and jansson does not
 * or reads differently: a duplicate key, a NUL (\u0000) in a string or key,
 * an integer past int64, a top-level value that is not an object or array,
 * a byte-order mark; and for lines longer than FR_JSON_FAST_MAX, so that the
 * parsers' memory stays small (a few kept, each sized for one line).
 * tests/test_core.c and the fuzz harness tests/fuzz/fuzz_wire.c compare the
 * two parsers' trees.
 */
#ifndef FR_CORE_JSONFAST_H
#define FR_CORE_JSONFAST_H

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FR_JSON_FAST_MAX (16 * 1024)
#define FR_JSON_FAST_DOC_MAX (16 * 1024 * 1024) /* http.max_body_bytes' default */

/* The tree of buf[0..len), as jansson would build it; NULL: parse it with jansson. */
json_t *fr_json_fast_load(const char *buf, size_t len);

/*
 * The same for a whole request body (an OTLP/JSON export: ~0.5 MB for 500 spans), up to
 * FR_JSON_FAST_DOC_MAX: a document past FR_JSON_FAST_MAX goes to one of two parsers kept
 * for documents (while sized for 1 MiB or less), or to one of its own, freed after it. Its
 * answer is json_loadb(buf, len, JSON_REJECT_DUPLICATES)'s or NULL, so a caller that
 * accepts duplicate keys (flags 0) still gets jansson's tree for them: NULL sends it there.
 */
json_t *fr_json_fast_load_doc(const char *buf, size_t len);

/*
 * A request body read out in parts, for a large OTLP/JSON export (8,000
 * spans: a tree of ~100 MiB made at once): the body is parsed once (its
 * simdjson document, ~3 bytes per byte), and each fr_json_fast_parts_next
 * builds the tree of a document of its own, {outer: [...]}, holding the
 * next max items: the elements of the inner lists of the middle lists of
 * the outer list (resourceSpans / scopeSpans / spans), each under a copy of
 * its outer and middle elements' other members, in order. NULL from open
 * for what fr_json_fast_load_doc leaves to jansson, and when the body has
 * no outer list or is not of that shape (an element not an object, a
 * middle or inner member not a list): read it whole then. next gives NULL
 * once all were given (*bad 0), or, *bad 1, when a part holds what
 * jansson reads otherwise (a duplicate key, a NUL, an integer past int64):
 * the caller then reads the whole body with jansson after all. The three
 * keys are kept by p, not copied (string literals).
 */
struct fr_json_fast_parts;
struct fr_json_fast_parts *fr_json_fast_parts_open(const char *buf, size_t len, const char *outer,
                                                   const char *middle, const char *inner);
json_t *fr_json_fast_parts_next(struct fr_json_fast_parts *p, size_t max, int *bad);
void fr_json_fast_parts_close(struct fr_json_fast_parts *p);

#ifdef __cplusplus
}
#endif

#endif
