/*
 * exporters/upload.h - uploading finished files (incident bundles) with
 * libcurl: HTTP PUT (e.g. a pre-signed object-store URL) or POST
 * multipart/form-data, optional S3 SigV4 signing, TLS verified by default,
 * retries with exponential backoff and full jitter honoring Retry-After,
 * an Idempotency-Key header carrying the file's SHA-256. Targets are named
 * in an upload config file (configs/upload.yaml); secrets come from files
 * or the environment, never from the command line.
 */
#ifndef FR_EXPORTERS_UPLOAD_H
#define FR_EXPORTERS_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum fr_upload_method { FR_UPLOAD_PUT, FR_UPLOAD_POST };

struct fr_upload_target {
    char *name;
    char *url;         /* "{name}" is replaced by the file's base name */
    int method;        /* enum fr_upload_method */
    char **headers;    /* "Name: value"; just "Name" when the value comes from header_src */
    char **header_src; /* per header: NULL, or "env:VAR" / "file:PATH", read only when this
                          target uploads (a missing secret fails its uploads, no other's) */
    size_t nheaders;
    char *ca_file, *client_cert, *client_key;
    char *aws_sigv4;          /* e.g. "aws:amz:us-east-1:s3"; NULL = off */
    char *aws_access_key_env; /* the variables holding the S3 credentials */
    char *aws_secret_key_env;
    char *aws_user;     /* "access:secret" from the environment, set while uploading */
    int64_t timeout_ms; /* whole request */
    int64_t connect_timeout_ms;
    int64_t max_attempts;
    int64_t backoff_base_ms, backoff_max_ms;
};

struct fr_upload_config {
    struct fr_upload_target *targets;
    size_t ntargets;
    char *outbox;             /* directory of queued uploads */
    int64_t outbox_max_bytes; /* most bytes queued (default 1 GiB) */
    /* set by the caller, may be NULL: a queued bundle holding a conversation this says was
       erased is dropped from the outbox, never sent (exporters/bundle.h) */
    bool (*erased)(void *ud, const char *conv_id);
    void *erased_ud;
};

/* Loads an upload config (errors name file, line and key). */
int fr_upload_config_load(const char *path, struct fr_upload_config *c, struct fr_err *err);
void fr_upload_config_clear(struct fr_upload_config *c);
const struct fr_upload_target *fr_upload_target_find(const struct fr_upload_config *c,
                                                     const char *name);

struct fr_upload_result {
    long status; /* last HTTP status, 0 when none */
    int attempts;
    double seconds;
    uint64_t bytes;
};

/* Progress: bytes sent of total. */
typedef void (*fr_upload_progress)(void *ud, uint64_t sent, uint64_t total);

/*
 * Uploads path to t, retrying transport errors, 408, 429 and 5xx. FR_OK on a
 * 2xx; otherwise err names the HTTP status or the curl error of the last try.
 */
int fr_upload_file(const struct fr_upload_target *t, const char *path, fr_upload_progress progress,
                   void *ud, struct fr_upload_result *res, struct fr_err *err);

/* ---- the outbox: queued uploads that survive restarts ---- */

/*
 * Copies path into c's outbox for target (atomically: temp file, fsync,
 * rename). FR_E_LIMIT when it would take the outbox past outbox_max_bytes:
 * the bundle stays where it is and err says what to do.
 */
int fr_outbox_add(const struct fr_upload_config *c, const char *path, const char *target,
                  struct fr_err *err);

struct fr_outbox_item {
    char *file;   /* path in the outbox */
    char *target; /* target name */
    int attempts;
    char *last_error;
};

/* Lists the outbox (caller frees with fr_outbox_items_free). */
int fr_outbox_list(const char *outbox, struct fr_outbox_item **items, size_t *n,
                   struct fr_err *err);
void fr_outbox_items_free(struct fr_outbox_item *items, size_t n);

/* What one pass over the outbox did. */
struct fr_outbox_stats {
    size_t sent, failed;
    size_t retries;                                      /* attempts beyond the first */
    size_t failed_http, failed_transport, failed_config; /* failures by reason */
};

/* Tries every queued upload once; sent ones leave the outbox (only after a 2xx). */
int fr_outbox_flush_stats(const struct fr_upload_config *c, struct fr_outbox_stats *st,
                          struct fr_err *err);

/* The same, counting only sent and failed. */
/* Adds a failed upload's attempts and its error to the queued bundle's record (outbox list). */
void fr_outbox_record_failure(const char *queued, int attempts, const char *why);

int fr_outbox_flush(const struct fr_upload_config *c, size_t *sent, size_t *failed,
                    struct fr_err *err);

/* What fr_erase_copies removed. */
struct fr_erased_copies {
    size_t bundles, queued;
    char outbox[512]; /* the outbox looked through; "" when no upload config was given */
};

/*
 * Copies of erased conversations' data outside the store: the bundles in
 * bundle_dir and the queued uploads of the upload config (NULL or "": no
 * outbox) holding a conversation erased() says was erased, removed.
 */
int fr_erase_copies(const char *bundle_dir, const char *upload_config,
                    bool (*erased)(void *ud, const char *conv_id), void *ud,
                    struct fr_erased_copies *out, struct fr_err *err);

/* Removes every queued upload holding a conversation erased() says was erased. */
int fr_outbox_drop_erased(const char *outbox, bool (*erased)(void *ud, const char *conv_id),
                          void *ud, size_t *removed, struct fr_err *err);

/* Removes one queued upload (by its file name in the outbox). */
int fr_outbox_drop(const char *outbox, const char *name, struct fr_err *err);

#endif
