/*
 * retention/columns.h - the columnar block codec of segment formats 4 and 5
 * (docs/archive-format.md, Columnar blocks): a block's records (JSON
 * objects) are taken apart by field path into columns, each encoded by
 * what suits it (integers as deltas, ids in binary, repetitive strings as dictionary
 * codes, free text as word tokens with repeated long values stored once)
 * and compressed alone with zstd; decoding puts the same compact JSON
 * back together, record by record, in order.
 */
#ifndef FR_RETENTION_COLUMNS_H
#define FR_RETENTION_COLUMNS_H

#include <stddef.h>

#include "core/err.h"

struct fr_col_stats;

/*
 * Encodes n records (rec[i] of len[i] bytes, each a JSON object) into one
 * block, *out (caller frees). level: the zstd level of every column (the
 * block's table of long values: two more). stats, when not NULL, has what
 * each stream of the block took added to it.
 * FR_E_SYNTAX when a record is not a JSON object.
 */
int fr_col_encode(const char *const *rec, const size_t *len, size_t n, int level,
                  unsigned char **out, size_t *outlen, struct fr_col_stats *stats,
                  struct fr_err *err);

/* Where encoded blocks' bytes went, by the codec of their streams (docs/archive-format.md:
   1 shapes, 2 shape ids, 3 integers, ... 10 ids of one form): each stream's bytes before zstd
   and after, its header included. */
#define FR_COL_CODECS 11
struct fr_col_stats {
    size_t raw[FR_COL_CODECS], packed[FR_COL_CODECS];
};

/* Names a codec for fr_col_stats ("long text", "hex ids", ...). */
const char *fr_col_codec_name(int codec);

/*
 * Decodes a block into its records as compact JSON, one per line, each
 * followed by '\n', in *out (caller frees; NUL-terminated, *outlen without
 * the NUL). A block that is not well formed, or would decode to more than
 * max bytes, is FR_E_VALUE naming why; nothing is read out of bounds.
 */
int fr_col_decode(const unsigned char *in, size_t n, size_t max, char **out, size_t *outlen,
                  struct fr_err *err);

/*
 * What fr_col_decode_where keeps: the records whose string member at path
 * (the keys from the record's top joined by the byte 0x1f, e.g.
 * "body\x1f" "conv_id") is written value_len bytes of value between its quotes.
 * A record whose value there holds an escape is kept too, for the caller to
 * read unescaped; a record without that member is not kept.
 */
struct fr_col_where {
    const char *path;
    const char *value;
    size_t value_len;
};

/*
 * fr_col_decode writing only the records where keeps (where NULL: all of
 * them); the others are read past without being put together, which costs
 * a small part of writing them. The same checks: a block that is not well
 * formed is refused whichever records are kept.
 */
int fr_col_decode_where(const unsigned char *in, size_t n, size_t max,
                        const struct fr_col_where *where, char **out, size_t *outlen,
                        struct fr_err *err);

#endif
