/*
 * Fuzzes the HTTP ingest handler's body framing (agent/body.c): the first
 * byte picks the Content-Encoding (identity, gzip, zstd, snappy, x-snappy-framed,
 * lz4), the rest is the
 * body: decompressed under a limit, framed as NDJSON or a JSON array, every
 * envelope through the ingest pipeline (validation, redaction, collectors).
 */
#include <stdlib.h>

#include "agent/body.h"
#include "collectors/taxonomy.h"
#include "redact/redact.h"
#include "tests/fuzz/fuzz.h"

static struct fr_ingest_cfg cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_ingest_cfg(&cfg, 64 * 1024);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const enc[] = {NULL, "gzip", "zstd", "snappy", "x-snappy-framed", "lz4"};
    const char *e = enc[data[0] % (sizeof enc / sizeof *enc)];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *inflated = NULL;
    if (e != NULL) {
        if (fr_body_inflate(e, body, len, 1 << 20, &inflated, &len) != FR_OK)
            return 0;
        body = inflated;
    }
    struct fr_body_result res = {0};
    fr_body_prepare(body, len, &cfg, NULL, &res, NULL, NULL, NULL);
    fr_body_result_clear(&res);
    free(inflated);
    return 0;
}
