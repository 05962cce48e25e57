/*
 * exporters/upload_file.c - the file uploader: "file:///shared/bundles/{name}"
 * copies the bundle into a directory (a mounted share, a folder another
 * tool ships), crash-safely: a temporary file, fsync, rename, directory
 * fsync. The directory must exist; a missing one is not retried.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "exporters/uploader.h"

static int
file_send(const struct fr_upload_target *t, const char *url, const char *path, const char *sha256,
          uint64_t size, fr_upload_progress progress, void *ud, struct fr_upload_attempt *a)
{
    (void)t;
    (void)sha256;
    const char *dst = url + strlen("file://");
    if (strncmp(dst, "localhost/", 10) == 0)
        dst += 9;
    if (dst[0] != '/') {
        snprintf(a->why, sizeof a->why, "a file URL needs an absolute path (file:///dir/{name})");
        return FR_E_IO;
    }
    char *dir = strdup(dst);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    struct stat st;
    if (slash != NULL)
        *slash = '\0';
    bool have_dir = dir != NULL && stat(dir[0] ? dir : "/", &st) == 0 && S_ISDIR(st.st_mode);
    free(dir);
    if (!have_dir) {
        snprintf(a->why, sizeof a->why, "the destination directory does not exist");
        return FR_E_IO;
    }
    struct fr_err err = {0};
    if (fr_copy_file_atomic(path, dst, &err) != FR_OK) {
        snprintf(a->why, sizeof a->why, "%.250s", err.msg);
        a->retry = true; /* a full or briefly unmounted share may come back */
        return FR_E_IO;
    }
    if (progress)
        progress(ud, size, size);
    return FR_OK;
}

const struct fr_uploader fr_uploader_file = {
    .name = "file",
    .description = "copies into a local or mounted directory (file:///dir/{name}), crash-safely",
    .schemes = "file",
    .init = NULL,
    .destroy = NULL,
    .send = file_send,
};
