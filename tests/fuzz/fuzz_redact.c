/*
 * Fuzzes the redaction engine. First byte even: the rest is text for every
 * detector (one pass), and, when it parses as an envelope, the event for
 * the policy walk. Odd: the rest is a user policy (YAML) merged over the
 * built-in one and compiled.
 */
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "redact/redact.h"
#include "tests/fuzz/fuzz.h"

static struct fr_redactor *red;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct fr_policy *p;
    struct fr_err err = {0};
    if (fr_policy_load(NULL, &p, &err) != FR_OK ||
        fr_redactor_new(p, fuzz_key, &red, &err) != FR_OK)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct fr_err err = {0};
    if (data[0] & 1) {
        struct fr_policy *p;
        if (fr_policy_load_text(text, len, "fuzz.yaml", &p, &err) == FR_OK) {
            struct fr_redactor *r;
            if (fr_redactor_new(p, fuzz_key, &r, &err) == FR_OK)
                fr_redactor_free(r);
        }
        return 0;
    }
    char *out = NULL;
    size_t outlen = 0;
    fr_redact_text(red, text, len, ~0u, &out, &outlen);
    free(out);
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_event ev = {0};
    if (fr_wire_parse(text, len, &lim, &ev, &err) == FR_OK) {
        bool changed;
        fr_redact_event(red, &ev, NULL, NULL, NULL, &changed, &err);
        fr_event_clear(&ev);
    }
    return 0;
}
