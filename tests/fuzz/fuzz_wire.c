/*
 * Fuzzes the wire-format parser: one envelope per input, then the dump of what
 * parsed. And the simdjson path against jansson: whatever fr_json_fast_load
 * decides, jansson must accept with the same tree (core/jsonfast.h), and the
 * same for fr_json_fast_load_doc on a document past 16 KiB. And the
 * widening of numbers past 64 bits: the text it makes is the input with quotes
 * added, at the offsets it says; the mending of lone surrogate escapes; and
 * a mended event's text (bytes that are not UTF-8 as U+FFFD too) parses again.
 */
#include <stdlib.h>
#include <string.h>

#include "core/jsonfast.h"
#include "core/wire.h"
#include "tests/fuzz/fuzz.h"

/* Whatever load (fr_json_fast_load or _doc) decides of text, jansson must accept with the
   same tree; aborts otherwise. */
static void
fast_agrees(json_t *(*load)(const char *, size_t), const char *text, size_t len)
{
    json_t *fast = load(text, len);
    if (fast == NULL)
        return;
    json_t *slow = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
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

/* The same for a whole document past FR_JSON_FAST_MAX (fr_json_fast_load_doc, an OTLP/JSON
   export or an array body): the input as the first element of an array padded past it. */
static void
fast_doc_agrees(const uint8_t *data, size_t size)
{
    if (size == 0 || (data[0] != '{' && data[0] != '['))
        return;
    size_t len = size + FR_JSON_FAST_MAX + 2;
    char *doc = malloc(len);
    if (doc == NULL)
        return;
    doc[0] = '[';
    memcpy(doc + 1, data, size);
    memset(doc + 1 + size, ' ', FR_JSON_FAST_MAX);
    doc[len - 1] = ']';
    fast_agrees(fr_json_fast_load_doc, doc, len);
    free(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fast_agrees(fr_json_fast_load, (const char *)data, size);
    fast_doc_agrees(data, size);
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    lim.max_line = 64 * 1024;
    struct fr_event ev = {0};
    struct fr_err err = {0};
    char *wide;
    size_t wide_len;
    if (fr_wire_parse_mend((const char *)data, size, &lim, &ev, &wide, &wide_len, &err) == FR_OK) {
        size_t len;
        free(fr_wire_dump(&ev, &len));
        fr_event_clear(&ev);
        /* what is stored of a mended event parses again as it is (show, archives, bundles) */
        json_t *again = wide ? json_loadb(wide, wide_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (wide != NULL && again == NULL)
            abort();
        json_decref(again);
    }
    free(wide);
    size_t *at, nat, n;
    for (int top = 1; top <= 2; top++) {
        char *w = fr_wire_widen((const char *)data, size, top, &n, &at, &nat);
        if (w == NULL)
            continue;
        if (n != size + 2 * nat || w[n] != '\0')
            abort();
        /* each offset a quote the input did not have there; without them, the input */
        size_t from = 0, to = 0;
        for (size_t k = 0; k < nat; k++) {
            if (at[k] >= n || w[at[k]] != '"' || (k > 0 && at[k] <= at[k - 1]))
                abort();
            size_t close = at[k] + 1;
            while (close < n && w[close] != '"')
                close++;
            if (close >= n || memcmp(w + to, data + from, at[k] - to) != 0)
                abort();
            from += at[k] - to;
            if (memcmp(w + at[k] + 1, data + from, close - at[k] - 1) != 0)
                abort();
            from += close - at[k] - 1;
            to = close + 1;
        }
        if (memcmp(w + to, data + from, n - to) != 0)
            abort();
        free(at);
        free(w);
    }
    /* lone surrogate escapes: the same length, changed only at the offsets it says */
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    size_t nhalf = fr_wire_unpair(copy, size, &at, &nat);
    if (nhalf != nat)
        abort();
    for (size_t i = 0, k = 0; i < size; i++) {
        if (k < nat && i == at[k]) {
            if (memcmp(copy + i, "\\ufffd", 6) != 0)
                abort();
            i += 5;
            k++;
        } else if (copy[i] != (char)data[i]) {
            abort();
        }
    }
    free(at);
    free(copy);
    return 0;
}
