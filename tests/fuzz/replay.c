/*
 * tests/fuzz/replay.c - runs a fuzz harness over files, without libFuzzer:
 * every seed of tests/fuzz/corpus/<name> and every crash reproducer of
 * tests/fuzz/regressions/<name>, so `make test` (gcc, ASan + UBSan in CI)
 * keeps them passing. Linked with one fuzz_<name>.c per executable.
 *
 *     fuzz_replay_<name> DIR...
 *
 * Exits non-zero when a directory holds no file (a replay that ran nothing
 * must not pass); a crash aborts through the sanitizers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

int
main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL)
            continue; /* regressions/<name> may not exist yet */
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            char *data;
            size_t len;
            struct fr_err err = {0};
            if (fr_read_file(path, &data, &len, &err) != FR_OK) {
                fprintf(stderr, "%s: %s\n", path, err.msg);
                closedir(d);
                return 1;
            }
            /* an exact-size copy, so reads past the input are caught */
            uint8_t *copy = malloc(len ? len : 1);
            memcpy(copy, data, len);
            free(data);
            LLVMFuzzerTestOneInput(copy, len);
            free(copy);
            total++;
        }
        closedir(d);
    }
    printf("replayed %zu inputs\n", total);
    return total > 0 ? 0 : 1;
}
