/*
 * retention/objstore.h - an S3-compatible bucket behind the archive folder:
 * objects PUT, GET and DELETE with libcurl (SigV4 signing, TLS verified),
 * and the folder's BUCKET file, which says which bucket holds its segments
 * and which of them are there (name -> SHA-256 of the file's bytes and the
 * local file's stamp when it was uploaded). A segment whose local copy was
 * evicted is fetched back into place by the first read that needs it
 * (fr_seg_open), verified against that SHA-256. docs/fleet.md, Object storage.
 */
#ifndef FR_RETENTION_OBJSTORE_H
#define FR_RETENTION_OBJSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct fr_objstore {
    char *url;            /* http(s)://host[:port]/bucket[/prefix] (no trailing slash) */
    char *region;         /* SigV4 region, e.g. us-east-1 */
    char *access_key_env; /* names of the environment variables holding the credentials; */
    char *secret_key_env; /* "" or NULL: requests go unsigned */
    char *ca_file;        /* CA certificates to verify the endpoint with; NULL: the system's */
};

/* Uploads the local file as object name (one PUT, streamed). */
int fr_objstore_put(const struct fr_objstore *o, const char *name, const char *file,
                    struct fr_err *err);
/*
 * Downloads object name into file, crash-safely (temporary file, fsync,
 * rename); sha256 (64 hex digits, or NULL / "" for none) must match the
 * bytes. FR_E_NOTFOUND when the bucket has no such object.
 */
int fr_objstore_get(const struct fr_objstore *o, const char *name, const char *file,
                    const char *sha256, struct fr_err *err);
/* Deletes object name (one that is already gone is not an error). */
int fr_objstore_delete(const struct fr_objstore *o, const char *name, struct fr_err *err);

/* The BUCKET file of an archive folder. */
struct fr_objstate {
    struct fr_objstore cfg;
    json_t *objects; /* {name: {"sha256": hex, "stamp": "size:ino:mtime"}} */
};

/* Reads <dir>/BUCKET; absent: an empty state (cfg.url NULL) and FR_OK. */
int fr_objstate_load(const char *dir, struct fr_objstate *s, struct fr_err *err);
/* Writes <dir>/BUCKET crash-safely (mode 0600). */
int fr_objstate_save(const char *dir, const struct fr_objstate *s, struct fr_err *err);
void fr_objstate_clear(struct fr_objstate *s);

/* A local file's stamp "size:inode:mtime" (NULL buf: missing); *mtime_ms its modification time. */
bool fr_objstore_stamp(const char *path, char *buf, size_t cap, int64_t *mtime_ms);

/*
 * The segment at path is missing locally: when its folder's BUCKET lists
 * it, downloads it into place and returns FR_OK; FR_E_NOTFOUND when no
 * bucket holds it (err untouched); any other failure names the object.
 */
int fr_objstore_fetch(const char *path, struct fr_err *err);

/*
 * The segment at path does not read, and its bytes are not those uploaded
 * (their SHA-256 differs from the BUCKET entry's): moves it into
 * <folder>/quarantine/ and fetches the bucket's copy into place; FR_OK when
 * done. FR_E_NOTFOUND when the bucket holds no copy to trust (not listed,
 * listed without a SHA-256, or the same bytes: the fault is not the file's).
 * A failed fetch puts the bad file back.
 */
int fr_objstore_repair(const char *path, struct fr_err *err);

/* SHA-256 of a file's bytes, hex. */
int fr_objstore_file_sha256(const char *path, char out[65], struct fr_err *err);

/* Whether path's folder's BUCKET lists the file (a copy is in the bucket). */
bool fr_objstore_remote(const char *path);

#endif
