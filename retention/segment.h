/*
 * retention/segment.h - archive segments: one file of records (one JSON
 * object each) in zstd blocks compressed with a dictionary trained on the
 * segment's own records, a footer index (per block: offset, sizes, time
 * range, a Bloom filter of conv_ids) and a SHA-256 of the whole file. A
 * cold segment has its dictionary, blocks and footer sealed with
 * AES-256-GCM. The layout is docs/archive-format.md.
 */
#ifndef FR_RETENTION_SEGMENT_H
#define FR_RETENTION_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "retention/hot/archive.h"

enum { FR_TIER_HOT = 0, FR_TIER_WARM = 1, FR_TIER_COLD = 2 };

const char *fr_tier_name(int tier);

struct fr_seg_info {
    int tier;
    int64_t min_ts, max_ts;
    uint64_t records, blocks;
    uint64_t raw_bytes;  /* the records' JSON */
    uint64_t file_bytes; /* the segment file */
    char policy[17];     /* redaction policy id of the records */
    char key_id[17];     /* cold: hex id of the key; "" for warm */
    char sha256[65];
    char store_id[17];  /* hex id of the store that wrote it; "" (version 1) when unknown */
    bool authenticated; /* its HMAC verified with an archive key (version 3) */
};

/*
 * The keys of the archive: the cold key file's keys (seal cold parts; the
 * first seals, every one opens what it sealed) and the archive key file's
 * (authenticate every segment written since version 3 and each MANIFEST
 * journal line, so a file or line put into the archive folder by anyone
 * without the key is refused). n == 0: not loaded.
 */
struct fr_archive_keys {
    struct fr_keyring cold;
    struct fr_keyring auth;
};

struct fr_seg_writer;

/* key: the cold key (FR_KEY_LEN bytes) for a cold segment, NULL for warm. */
struct fr_seg_writer *fr_seg_writer_new(int tier, const unsigned char *key, const char *policy);
/*
 * The archive key (FR_KEY_LEN bytes): the segment is version 3, its check
 * HMAC-SHA256 with this key. NULL (the default): version 2, a bare SHA-256.
 */
void fr_seg_writer_set_auth(struct fr_seg_writer *w, const unsigned char *key);
/* The id (16 hex digits) of the store the segment belongs to; written in its header. */
void fr_seg_writer_set_store(struct fr_seg_writer *w, const char *store_id);
/* Counts into *stats where the blocks' bytes go, by codec (columns.h; NULL: not counted). */
struct fr_col_stats;
void fr_seg_writer_set_stats(struct fr_seg_writer *w, struct fr_col_stats *stats);
/* Adds one record (a JSON object, no newline); conv_id and trace_id may be NULL. */
void fr_seg_writer_add(struct fr_seg_writer *w, const char *json, size_t len, int64_t ts_ms,
                       const char *conv_id, const char *trace_id);
size_t fr_seg_writer_count(const struct fr_seg_writer *w);

/*
 * The archive map's key of an id: 64-bit FNV-1a of the kind letter ('c'
 * conversation, 't' trace), 0x1f and the id. Collisions only make a reader
 * open a block it did not need (it filters records exactly).
 */
uint64_t fr_seg_key_hash(char kind, const char *id);

/*
 * After fr_seg_writer_finish(): every (key, block) the segment holds, each
 * once, sorted; *out is the caller's to free. The store keeps them
 * (fr_store_archive_map), so a reader opens only the segments and blocks
 * that hold what it looks for.
 */
size_t fr_seg_writer_map(const struct fr_seg_writer *w, struct fr_archive_key **out);
/* Sets the redaction policy id recorded in the header. */
void fr_seg_writer_set_policy(struct fr_seg_writer *w, const char *policy);
/*
 * Writes the segment crash-safely: to path.tmp, fsync, rename to path,
 * fsync the directory. info describes what was written.
 */
int fr_seg_writer_finish(struct fr_seg_writer *w, const char *path, struct fr_seg_info *info,
                         struct fr_err *err);
void fr_seg_writer_free(struct fr_seg_writer *w);

struct fr_seg;

/*
 * Opens and checks a segment: structure, then its HMAC with keys->auth
 * (version 3) or its SHA-256 (versions 1, 2). A version 3 segment opened
 * without an archive key, or a cold one without the cold key that sealed it
 * (keys NULL, or the ring empty), gives its header only: fr_seg_get_info()
 * works, fr_seg_each() fails saying which key is needed. A wrong key fails here.
 */
int fr_seg_open(const char *path, const struct fr_archive_keys *keys, struct fr_seg **out,
                struct fr_err *err);
const struct fr_seg_info *fr_seg_get_info(const struct fr_seg *s);
/* The segment's format version (3: authenticated with an archive key). */
unsigned fr_seg_version(const struct fr_seg *s);
void fr_seg_close(struct fr_seg *s);

/*
 * Calls cb for every record of blocks that may hold conv_id (NULL: all) and
 * overlap [since, until) (0: unbounded); cb sees the record's JSON and
 * returns non-zero to stop. Records of other conversations in the same
 * block are passed too: the caller filters.
 */
int fr_seg_each(struct fr_seg *s, const char *conv_id, int64_t since_ms, int64_t until_ms,
                int (*cb)(void *ud, const char *json, size_t len), void *ud, struct fr_err *err);

/* Calls cb for every record of the listed blocks (numbers from the archive map). */
int fr_seg_each_block(struct fr_seg *s, const uint32_t *blocks, size_t n,
                      int (*cb)(void *ud, const char *json, size_t len), void *ud,
                      struct fr_err *err);

/*
 * A read of the event records whose envelope field (`field`: "conv_id",
 * "trace_id") is id: of the listed blocks (blocks NULL: of those fr_seg_each
 * picks for [since, until) and, when field is conv_id, for that conversation).
 * A columnar block (formats 4 and 5) puts together only the records that
 * hold it, and reads past the others; cb may still see other records (those
 * of older formats, a conversation summary, an id written with an escape),
 * so the caller filters as for fr_seg_each. field or id NULL: every record.
 */
struct fr_seg_query {
    const uint32_t *blocks;
    size_t n;
    const char *field, *id;
    int64_t since_ms, until_ms;
};
int fr_seg_each_event(struct fr_seg *s, const struct fr_seg_query *q,
                      int (*cb)(void *ud, const char *json, size_t len), void *ud,
                      struct fr_err *err);

#endif
