/*
 * Fuzzes the archive segment reader: open (structure, SHA-256, cold
 * decryption), then every record. First byte odd: the input is taken as is
 * (the checksum must catch it); even: the trailing SHA-256 is recomputed
 * over the mutated bytes first, so the structure behind the checksum
 * (header, footer index, blocks, dictionary) is what gets fuzzed.
 */
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "retention/segment.h"
#include "tests/fuzz/fuzz.h"

static int
each(void *ud, const char *json, size_t len)
{
    (void)json;
    *(size_t *)ud += len;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool raw = data[0] & 1;
    data++;
    size--;
    uint8_t *fixed = NULL;
    if (!raw && size > SHA256_DIGEST_LENGTH) {
        fixed = malloc(size);
        memcpy(fixed, data, size);
        SHA256(fixed, size - SHA256_DIGEST_LENGTH, fixed + size - SHA256_DIGEST_LENGTH);
        data = fixed;
    }
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    struct fr_seg *s;
    struct fr_err err = {0};
    if (fr_seg_open(path, fuzz_key, &s, &err) == FR_OK) {
        size_t bytes = 0;
        fr_seg_each(s, NULL, 0, 0, each, &bytes, &err);
        fr_seg_each(s, "c-1", 0, 0, each, &bytes, &err);
        fr_seg_close(s);
    }
    close(fd);
    free(fixed);
    return 0;
}
