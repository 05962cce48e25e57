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
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/mem.h"
#include "redact/internal.h"

struct fr_detect {
    hs_database_t *db;             /* with start of match: for rewriting one value */
    hs_database_t *ends;           /* end offsets only (much cheaper): for finding the values */
    const struct fr_det_def *defs; /* borrowed from the policy */
    size_t n;
};

/* whether fr_detect_compile compiles in a child process (fr_redact_isolate_compile), and
   how many compilations a child did */
static atomic_bool isolate_compile;
static atomic_size_t isolated_compiles;

void
fr_redact_isolate_compile(bool on)
{
    atomic_store(&isolate_compile, on);
}

size_t
fr_redact_isolated_compiles(void)
{
    return atomic_load(&isolated_compiles);
}

/* Both databases of the patterns; on a failure *bad is the pattern at fault (or -1) and
   msg the reason. */
static bool
compile_both(const char **pats, unsigned *flags, const unsigned *ids, size_t n, hs_database_t **db,
             hs_database_t **ends, int *bad, char *msg, size_t cap)
{
    hs_compile_error_t *cerr = NULL;
    *db = *ends = NULL;
    /* multi-line: ^ and $ match at each value's start and end when the values of an event are
       scanned as one text, one per line (redact.c), and at its own lines' */
    for (size_t i = 0; i < n; i++)
        flags[i] = HS_FLAG_SOM_LEFTMOST | HS_FLAG_MULTILINE;
    hs_error_t hrc =
        hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, db, &cerr);
    if (hrc == HS_SUCCESS) {
        for (size_t i = 0; i < n; i++)
            flags[i] = HS_FLAG_MULTILINE;
        hrc = hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, ends, &cerr);
    }
    if (hrc == HS_SUCCESS)
        return true;
    *bad = cerr != NULL ? cerr->expression : -1;
    snprintf(msg, cap, "%s", cerr != NULL ? cerr->message : "unknown error");
    hs_free_compile_error(cerr);
    hs_free_database(*db);
    *db = NULL;
    return false;
}

/* The child's half: the databases serialized ("ok" answer) or the compile error, then
   everything freed (a clean exit under valgrind too). */
static void
compile_child(int fd, const char **pats, unsigned *flags, const unsigned *ids, size_t n)
{
    hs_database_t *dbs[2];
    int bad = -1;
    char msg[512];
    uint64_t hdr[2] = {0, 0};
    if (!compile_both(pats, flags, ids, n, &dbs[0], &dbs[1], &bad, msg, sizeof msg)) {
        hdr[0] = 1;
        hdr[1] = (uint64_t)(int64_t)bad;
        uint64_t len = strlen(msg);
        (void)(fr_fd_write_all(fd, hdr, sizeof hdr) && fr_fd_write_all(fd, &len, sizeof len) &&
               fr_fd_write_all(fd, msg, len));
        return;
    }
    bool ok = fr_fd_write_all(fd, hdr, sizeof hdr);
    for (int i = 0; i < 2; i++) {
        char *bytes = NULL;
        size_t len = 0;
        uint64_t l64 = 0;
        if (ok && hs_serialize_database(dbs[i], &bytes, &len) == HS_SUCCESS) {
            l64 = len;
            ok = fr_fd_write_all(fd, &l64, sizeof l64) && fr_fd_write_all(fd, bytes, len);
        } else {
            ok = false;
        }
        free(bytes); /* Vectorscan's misc allocator: malloc by default */
        hs_free_database(dbs[i]);
    }
}

/* A read answer: the next n bytes of buf[*at, len). */
static const char *
take(const char *buf, size_t len, size_t *at, size_t n)
{
    if (len - *at < n)
        return NULL;
    const char *p = buf + *at;
    *at += n;
    return p;
}

/*
 * The compilation in a child process: Vectorscan's compiler is most of its
 * library (4-5 MiB of code, and libstdc++'s) and leaves its heap fragmented;
 * a long-running agent only scans. The child compiles, serializes both
 * databases into a pipe and exits; this process deserializes them, so it
 * never touches the compiler's pages. Returns 1 compiled, 0 a compile error
 * (in bad, msg), -1 the child could not do it (then the caller compiles here).
 */
static int
compile_isolated(const char **pats, unsigned *flags, const unsigned *ids, size_t n,
                 hs_database_t **db, hs_database_t **ends, int *bad, char *msg, size_t cap)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        compile_child(fd[1], pats, flags, ids, n);
        close(fd[1]);
        _exit(0);
    }
    close(fd[1]);
    char *buf;
    size_t len;
    (void)fr_fd_read_all(fd[0], &buf, &len); /* a short answer fails to parse below */
    close(fd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    int rc = -1;
    size_t at = 0;
    const uint64_t *hdr = (const uint64_t *)(const void *)take(buf, len, &at, 2 * sizeof *hdr);
    const char *p;
    uint64_t l64;
    if (hdr != NULL && hdr[0] == 1 && (p = take(buf, len, &at, sizeof l64)) != NULL) {
        memcpy(&l64, p, sizeof l64);
        if ((p = take(buf, len, &at, l64)) != NULL) {
            *bad = (int)(int64_t)hdr[1];
            snprintf(msg, cap, "%.*s", (int)(l64 < cap ? l64 : cap - 1), p);
            rc = 0;
        }
    } else if (hdr != NULL && hdr[0] == 0) {
        hs_database_t **out[2] = {db, ends};
        rc = 1;
        for (int i = 0; i < 2 && rc == 1; i++) {
            if ((p = take(buf, len, &at, sizeof l64)) == NULL)
                rc = -1;
            else if (memcpy(&l64, p, sizeof l64),
                     (p = take(buf, len, &at, l64)) == NULL ||
                         hs_deserialize_database(p, (size_t)l64, out[i]) != HS_SUCCESS)
                rc = -1;
        }
        if (rc != 1) {
            hs_free_database(*db);
            hs_free_database(*ends);
            *db = *ends = NULL;
        }
    }
    free(buf);
    return rc;
}

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
        ids[i] = (unsigned)i;
    }
    int bad = -1, got = -1;
    char msg[512] = "";
    if (atomic_load(&isolate_compile)) {
        got = compile_isolated(pats, flags, ids, n, &d->db, &d->ends, &bad, msg, sizeof msg);
        if (got >= 0)
            atomic_fetch_add(&isolated_compiles, 1);
        else
            fr_log(FR_LOG_WARN, "redact",
                   "compiling the detectors in a child process failed; compiled here instead");
    }
    if (got < 0) /* not isolated, or the child failed: here */
        got = compile_both(pats, flags, ids, n, &d->db, &d->ends, &bad, msg, sizeof msg);
    free(pats);
    free(flags);
    free(ids);
    if (got == 0) {
        int rc;
        if (bad >= 0 && (size_t)bad < n)
            rc = fr_err_set(err, FR_E_CONFIG, "%s: detector '%s': pattern: %s", defs[bad].origin,
                            defs[bad].name, msg);
        else
            rc = fr_err_set(err, FR_E_CONFIG, "detectors: cannot compile: %s", msg);
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
