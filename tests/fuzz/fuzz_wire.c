/*
 * Fuzzes the wire-format parser: one envelope per input, then the dump of what
 * parsed. And the simdjson path against jansson: whatever fr_json_fast_load
 * decides, jansson must accept with the same tree (core/jsonfast.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/jsonfast.h"
#include "core/wire.h"
#include "tests/fuzz/fuzz.h"

static void
fast_agrees(const uint8_t *data, size_t size)
{
    json_t *fast = fr_json_fast_load((const char *)data, size);
    if (fast == NULL)
        return;
    json_t *slow = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (slow == NULL)
        abort(); /* simdjson accepted what jansson refuses */
    char *a = json_dumps(fast, JSON_COMPACT);
    char *b = json_dumps(slow, JSON_COMPACT);
    if (a == NULL || b == NULL || strcmp(a, b) != 0 || !json_equal(fast, slow))
        abort(); /* a different tree */
    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fast_agrees(data, size);
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
