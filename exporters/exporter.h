/*
 * exporters/exporter.h - the exporter stage's interface (implementation
 * lands with the incident-bundle and daemon issues): exporters turn stored
 * data into something that leaves the machine (signed incident bundles,
 * metrics), and uploaders move a finished file to a target (file, HTTP PUT,
 * S3) with retries.
 */
#ifndef FR_EXPORTERS_EXPORTER_H
#define FR_EXPORTERS_EXPORTER_H

#include "core/err.h"
#include "core/option.h"

struct fr_exporter {
    const char *name; /* "bundle", "metrics" */
    const char *description;
    const struct fr_option *options;             /* NULL: none */
    int (*init)(void **ctx, struct fr_err *err); /* optional */
    void (*destroy)(void *ctx);                  /* optional */
};

struct fr_uploader {
    const char *name; /* "file", "put", "s3" */
    const char *description;
    const struct fr_option *options;             /* NULL: none */
    int (*init)(void **ctx, struct fr_err *err); /* optional */
    void (*destroy)(void *ctx);                  /* optional */
    /* Uploads the file at path; err names the HTTP status or transport error. */
    int (*upload)(void *ctx, const char *path, struct fr_err *err);
};

#endif
