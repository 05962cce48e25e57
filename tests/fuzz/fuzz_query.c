/*
 * Fuzzes the query API's parameter handling (agent/api/params.c) with what
 * an HTTP client controls: the input is a query string ("k=v&k2=v2", any
 * bytes), split as the server splits it; the common parameters are
 * checked, a cursor decoded, and every message made must stay a valid
 * C string that jansson accepts once the reply path makes it UTF-8.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/params.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct fr_qparams q = {0};
    for (char *save = NULL, *kv = strtok_r(text, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq != NULL)
            *eq++ = '\0';
        fr_qparams_add(&q, kv, eq ? eq : "");
    }
    static const char *const allowed[] = {"since", "until", "limit", "cursor", "conv_id", NULL};
    int64_t since = 0, until = 0, ms = 0;
    int limit = 0;
    char msg[600], id[300];
    if (!fr_qparams_common(&q, allowed, 1771357445201LL, 50, &since, &until, &limit, msg,
                           sizeof msg)) {
        if (strlen(msg) >= sizeof msg)
            abort();
    } else if (limit < 1 || limit > 1000 || (since && until && since > until)) {
        abort();
    }
    const char *c = fr_qparams_get(&q, "cursor");
    if (c != NULL && fr_cursor_decode(c, &ms, id, sizeof id) && strlen(id) >= sizeof id)
        abort();
    char cut[80];
    fr_text_cut(text, 64, cut, sizeof cut);
    free(text);
    return 0;
}
