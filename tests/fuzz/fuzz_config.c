/* Fuzzes the agent configuration parser (YAML, every key and value check). */
#include <unistd.h>

#include "agent/config.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    struct fr_config c;
    struct fr_err err = {0};
    fr_config_load(path, &c, &err);
    fr_config_clear(&c);
    close(fd);
    return 0;
}
