/*
 * exporters/bundle_erase.c - bundles and queued uploads that hold an
 * erased conversation (retention/erase.c erases the store; these are copies
 * of its data outside it): found by their conversations.ndjson member and
 * removed, and refused for upload.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "exporters/bundle.h"

bool
fr_bundle_holds_erased(const char *path, fr_erased_fn is_erased, void *ud, char *conv_out,
                       size_t conv_len)
{
    char *text = NULL;
    size_t len = 0;
    if (fr_bundle_member(path, "conversations.ndjson", &text, &len, NULL) != FR_OK)
        return false;
    bool hit = false;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && !hit;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *conv = json_string_value(json_object_get(j, "conv_id"));
        if (conv != NULL && is_erased(ud, conv)) {
            hit = true;
            if (conv_out != NULL)
                snprintf(conv_out, conv_len, "%s", conv);
        }
        json_decref(j);
    }
    free(text);
    return hit;
}

int
fr_bundles_erase(const char *dir, fr_erased_fn is_erased, void *ud, size_t *removed,
                 struct fr_err *err)
{
    (void)err;
    DIR *d = opendir(dir);
    if (d == NULL)
        return FR_OK; /* no such folder: nothing in it */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 8, ".tar.zst") != 0)
            continue;
        char *path = fr_asprintf("%s/%s", dir, e->d_name);
        if (fr_bundle_holds_erased(path, is_erased, ud, NULL, 0)) {
            char *side = fr_asprintf("%s.sha256", path);
            unlink(path);
            unlink(side);
            free(side);
            (*removed)++;
        }
        free(path);
    }
    closedir(d);
    return FR_OK;
}
