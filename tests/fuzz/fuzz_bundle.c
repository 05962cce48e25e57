/*
 * Fuzzes the incident bundle reader: verification (tar + zstd container,
 * manifest, signature, per-file hashes) and member extraction. The seeds
 * are signed with the test key whose public half is tests/fuzz/bundle-test.pub.
 */
#include <stdlib.h>
#include <unistd.h>

#include "exporters/bundle.h"
#include "tests/fuzz/fuzz.h"

static EVP_PKEY *pub;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct fr_err err = {0};
    if (fr_ed25519_load(FR_SOURCE_DIR "/tests/fuzz/bundle-test.pub", false, &pub, &err) != FR_OK)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    struct fr_err err = {0};
    fr_bundle_verify(path, pub, &err);
    char *m = NULL;
    size_t len;
    if (fr_bundle_member(path, "manifest.json", &m, &len, &err) == FR_OK)
        free(m);
    close(fd);
    return 0;
}
