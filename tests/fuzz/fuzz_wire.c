/* Fuzzes the wire-format parser: one envelope per input, then the dump of what parsed. */
#include <stdlib.h>

#include "core/wire.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    lim.max_line = 64 * 1024;
    struct fr_event ev = {0};
    struct fr_err err = {0};
    if (fr_wire_parse((const char *)data, size, &lim, &ev, &err) == FR_OK) {
        size_t len;
        free(fr_wire_dump(&ev, &len));
        fr_event_clear(&ev);
    }
    return 0;
}
