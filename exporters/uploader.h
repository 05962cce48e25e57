/*
 * exporters/uploader.h - the interface every uploader implements, and the
 * registry fr_upload_file() picks one from by the target URL's scheme.
 *
 * An uploader makes one attempt to send a finished file; retries, backoff
 * (exponential, full jitter, Retry-After honoured), the Idempotency-Key and
 * the result are the caller's (exporters/upload.c), the same for all.
 *
 * One file per uploader, ending in its descriptor:
 *
 *     const struct fr_uploader fr_uploader_file = {
 *         .name = "file", .description = "...", .schemes = "file",
 *         .init = NULL, .destroy = NULL, .send = file_send,
 *     };
 *
 * and one line in exporters/uploaders.c.
 */
#ifndef FR_EXPORTERS_UPLOADER_H
#define FR_EXPORTERS_UPLOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "exporters/upload.h"

/* What one attempt says. */
struct fr_upload_attempt {
    long status;        /* the protocol's status (HTTP), 0 when none */
    long retry_after_s; /* asked for by the server, -1 when not */
    bool retry;         /* a failure that may succeed when tried again */
    char why[300];      /* what failed, for the error and the outbox */
};

struct fr_uploader {
    const char *name;        /* "http", "file" */
    const char *description; /* one line */
    const char *schemes;     /* URL schemes it takes, comma-separated: "http,https" */
    /* Optional (NULL: none): process-wide set-up and tear-down. */
    int (*init)(struct fr_err *err);
    void (*destroy)(void);
    /*
     * Sends path (size bytes, SHA-256 sha256 in hex) to url (the target's
     * URL with {name} expanded). FR_OK when the receiver has it; otherwise
     * fills a (never a secret) and returns FR_E_IO.
     */
    int (*send)(const struct fr_upload_target *t, const char *url, const char *path,
                const char *sha256, uint64_t size, fr_upload_progress progress, void *ud,
                struct fr_upload_attempt *a);
};

/* Every uploader (exporters/uploaders.c). */
extern const struct fr_uploader *const fr_uploaders[];
extern const size_t fr_uploaders_count;

/* The uploader whose schemes include url's scheme, or NULL. */
const struct fr_uploader *fr_uploader_for_url(const char *url);

#endif
