/*
 * redact/detect.c - the detector engine: every detector's pattern compiled
 * into one Vectorscan block-mode database (start-of-match: leftmost), so a
 * text is matched against all of them in a single pass. Candidates then go
 * through the detector's validator (Luhn, IPv4/IPv6 syntax, phone digit
 * count) and its not_after context, and overlapping hits are merged so no
 * part of a secret survives between two replacements.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "redact/internal.h"

struct fr_detect {
    hs_database_t *db;             /* with start of match: for rewriting one value */
    hs_database_t *ends;           /* end offsets only (much cheaper): for finding the values */
    const struct fr_det_def *defs; /* borrowed from the policy */
    size_t n;
};

int
fr_detect_compile(const struct fr_det_def *defs, size_t n, struct fr_detect **out,
                  struct fr_err *err)
{
    *out = NULL;
    struct fr_detect *d = fr_calloc(1, sizeof *d);
    d->defs = defs;
    d->n = n;
    if (n == 0) {
        *out = d; /* no detectors: every scan finds nothing */
        return FR_OK;
    }
    const char **pats = fr_calloc(n, sizeof *pats);
    unsigned *flags = fr_calloc(n, sizeof *flags);
    unsigned *ids = fr_calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        pats[i] = defs[i].pattern;
        flags[i] = HS_FLAG_SOM_LEFTMOST;
        ids[i] = (unsigned)i;
    }
    hs_compile_error_t *cerr = NULL;
    hs_error_t hrc =
        hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &d->db, &cerr);
    if (hrc == HS_SUCCESS) {
        for (size_t i = 0; i < n; i++)
            flags[i] = 0;
        hrc = hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &d->ends, &cerr);
    }
    free(pats);
    free(flags);
    free(ids);
    if (hrc != HS_SUCCESS) {
        int rc;
        if (cerr != NULL && cerr->expression >= 0 && (size_t)cerr->expression < n)
            rc = fr_err_set(err, FR_E_CONFIG, "%s: detector '%s': pattern: %s",
                            defs[cerr->expression].origin, defs[cerr->expression].name,
                            cerr->message);
        else
            rc = fr_err_set(err, FR_E_CONFIG, "detectors: cannot compile: %s",
                            cerr ? cerr->message : "unknown error");
        hs_free_compile_error(cerr);
        hs_free_database(d->db);
        free(d);
        return rc;
    }
    *out = d;
    return FR_OK;
}

void
fr_detect_free(struct fr_detect *d)
{
    if (d == NULL)
        return;
    hs_free_database(d->db);
    hs_free_database(d->ends);
    free(d);
}

const struct fr_det_def *
fr_detect_def(const struct fr_detect *d, unsigned det)
{
    return &d->defs[det];
}

int
fr_det_scratch_init(struct fr_detect *d, struct fr_det_scratch *s, struct fr_err *err)
{
    memset(s, 0, sizeof *s);
    if (d->db != NULL && (hs_alloc_scratch(d->db, &s->hs) != HS_SUCCESS ||
                          hs_alloc_scratch(d->ends, &s->hs) != HS_SUCCESS))
        return fr_err_set(err, FR_E_INVALID, "detectors: cannot allocate scan scratch");
    return FR_OK;
}

void
fr_det_scratch_free(struct fr_det_scratch *s)
{
    if (s->hs != NULL)
        hs_free_scratch(s->hs);
    free(s->raw);
    free(s->hits);
    memset(s, 0, sizeof *s);
}

/* Keeps, per (detector, start), only the longest candidate: a long token
 * reports a match at every end offset, and they arrive in end order. */
static int
on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
    (void)flags;
    struct fr_det_scratch *s = ctx;
    size_t look = s->nraw < 8 ? s->nraw : 8;
    for (size_t i = 1; i <= look; i++) {
        struct fr_det_raw *r = &s->raw[s->nraw - i];
        if (r->det == id && r->start == from) {
            r->end = to;
            return 0;
        }
    }
    if (s->nraw == s->capraw) {
        s->capraw = s->capraw ? s->capraw * 2 : 64;
        s->raw = fr_realloc(s->raw, s->capraw * sizeof *s->raw);
    }
    s->raw[s->nraw++] = (struct fr_det_raw){.det = id, .start = from, .end = to};
    return 0;
}

static int
each_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
    (void)flags;
    struct {
        int (*cb)(unsigned, size_t, size_t, void *);
        void *ud;
    } *e = ctx;
    return e->cb(id, (size_t)from, (size_t)to, e->ud);
}

int
fr_detect_each(const struct fr_detect *d, struct fr_det_scratch *s, const char *text, size_t len,
               int (*cb)(unsigned det, size_t from, size_t to, void *ud), void *ud)
{
    if (d->db == NULL || len == 0)
        return FR_OK;
    struct each {
        int (*cb)(unsigned, size_t, size_t, void *);
        void *ud;
    } e = {cb, ud};
    hs_error_t hrc = hs_scan(d->ends, text, (unsigned)len, 0, s->hs, each_match, &e);
    return hrc == HS_SUCCESS || hrc == HS_SCAN_TERMINATED ? FR_OK : FR_E_INVALID;
}

int
fr_detect_raw(const struct fr_detect *d, struct fr_det_scratch *s, const char *text, size_t len)
{
    s->nraw = 0;
    if (d->db == NULL || len == 0)
        return FR_OK;
    /* Vectorscan takes an unsigned length; texts are bounded by the line limit. */
    hs_error_t hrc = hs_scan(d->db, text, (unsigned)len, 0, s->hs, on_match, s);
    return hrc == HS_SUCCESS ? FR_OK : FR_E_INVALID;
}

static bool
candidate_ok(const struct fr_det_def *def, const char *t, size_t len, size_t start, size_t end)
{
    for (size_t i = 0; i < def->n_not_after; i++) {
        size_t k = strlen(def->not_after[i]);
        if (k <= start && memcmp(t + start - k, def->not_after[i], k) == 0)
            return false;
    }
    return def->validate == NULL || def->validate->check(t, len, start, end);
}

static int
hit_cmp(const void *a, const void *b)
{
    const struct fr_det_hit *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1; /* longer first */
    return x->det < y->det ? -1 : x->det > y->det;
}

void
fr_detect_resolve(const struct fr_detect *d, struct fr_det_scratch *s, const char *text, size_t len,
                  unsigned classes)
{
    s->nhits = 0;
    for (size_t i = 0; i < s->nraw; i++) {
        const struct fr_det_raw *r = &s->raw[i];
        const struct fr_det_def *def = &d->defs[r->det];
        if (!(def->klass & classes) || !candidate_ok(def, text, len, r->start, r->end))
            continue;
        if (s->nhits == s->caphits) {
            s->caphits = s->caphits ? s->caphits * 2 : 16;
            s->hits = fr_realloc(s->hits, s->caphits * sizeof *s->hits);
        }
        s->hits[s->nhits++] = (struct fr_det_hit){.det = r->det, .start = r->start, .end = r->end};
    }
    if (s->nhits < 2)
        return;
    qsort(s->hits, s->nhits, sizeof *s->hits, hit_cmp);
    size_t w = 0;
    for (size_t i = 1; i < s->nhits; i++) {
        if (s->hits[i].start < s->hits[w].end) {
            if (s->hits[i].end > s->hits[w].end)
                s->hits[w].end = s->hits[i].end; /* overlap: one merged span */
        } else {
            s->hits[++w] = s->hits[i];
        }
    }
    s->nhits = w + 1;
}
