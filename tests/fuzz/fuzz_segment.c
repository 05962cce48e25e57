/*
 * Fuzzes the archive segment reader: open (structure, HMAC or SHA-256, cold
 * decryption), then every record, and the records of one conversation or trace. First byte odd: the
 * input is taken as is (the check must catch it); even: the trailing check (HMAC-SHA256 with the
 * fuzz key for version 3, else SHA-256) is recomputed over the mutated
 * bytes first, so the structure behind it (header, footer index, blocks,
 * dictionary) is what gets fuzzed. The fuzz key is both the cold and the
 * archive key.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
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
        bool v3 = size > 12 && fixed[8] >= 3;
        unsigned int n = 0;
        if (v3)
            HMAC(EVP_sha256(), fuzz_key, sizeof fuzz_key, fixed, size - SHA256_DIGEST_LENGTH,
                 fixed + size - SHA256_DIGEST_LENGTH, &n);
        else
            SHA256(fixed, size - SHA256_DIGEST_LENGTH, fixed + size - SHA256_DIGEST_LENGTH);
        data = fixed;
    }
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    struct fr_seg *s;
    struct fr_err err = {0};
    static struct fr_archive_keys keys = {.cold = {.n = 1}, .auth = {.n = 1}};
    memcpy(keys.cold.key[0], fuzz_key, sizeof fuzz_key);
    memcpy(keys.auth.key[0], fuzz_key, sizeof fuzz_key);
    if (fr_seg_open(path, &keys, &s, &err) == FR_OK) {
        size_t bytes = 0;
        fr_seg_each(s, NULL, 0, 0, each, &bytes, &err);
        fr_seg_each(s, "c-1", 0, 0, each, &bytes, &err);
        /* the reads that put together only one conversation's or trace's records */
        struct fr_seg_query q = {.field = "conv_id", .id = "c-1"};
        fr_seg_each_event(s, &q, each, &bytes, &err);
        q.field = "trace_id";
        q.id = "0af7651916cd43dd8448eb211c80319c";
        fr_seg_each_event(s, &q, each, &bytes, &err);
        fr_seg_close(s);
    }
    close(fd);
    free(fixed);
    return 0;
}
