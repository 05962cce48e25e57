/*
 * agent/cli/cmd_ingest.c - `flightrec ingest FILE|-`: stores NDJSON events.
 *
 * Every line is judged alone: a bad line is reported (line number, field,
 * reason) and the lines around it are still stored. This thread reads and
 * prepares lines (parse, collect, redact) while the writer thread commits
 * the previous batches (agent/writer.h); a line counts as accepted only
 * once its batch has committed.
 * Summary and errors go to stderr; the exit status is 0 only if every line
 * was accepted (1 if some were rejected, 3 if the store failed).
 */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/body.h"
#include "agent/cli/cli.h"
#include "agent/cli/zinput.h"
#include "agent/ingest.h"
#include "agent/writer.h"
#include "collectors/taxonomy.h"
#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/linereader.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/wire.h"
#include "redact/redact.h"

struct ingest_run {
    struct fr_store *store;
    struct fr_writer *writer;
    struct fr_batch *cur; /* batch being filled by this thread */
    size_t batch;
    uint64_t lines, rejected, misnamed; /* misnamed: prepared with a misnamed envelope field */
    _Atomic uint64_t accepted, duplicates, erased; /* updated by the writer thread */
    atomic_bool failed;
    pthread_mutex_t fail_mu;
    char fail_msg[600];              /* first store failure, under fail_mu */
    uint64_t by_code[1 - FR_RC_MIN]; /* rejected lines per -rc */
    uint64_t max_errors;             /* per-line errors printed */
    bool check;                      /* --check: lines validated and redacted, none stored */
    bool progress;
    double started, last_progress;
    struct fr_redactor *red;
    struct fr_redact_counts counts; /* this (the reading) thread's */
};

static void
ingest_usage(FILE *out)
{
    fprintf(out, "usage: flightrec ingest [OPTIONS] FILE|-\n\n"
                 "Reads NDJSON events (wire format v1) from FILE or stdin and stores them.\n"
                 "A gzip or zstd input (told by its first bytes) is read decompressed. A JSON\n"
                 "array of events, or pretty-printed events one after another (jq .), is read\n"
                 "whole (up to 256 MiB). Bad lines are reported with line number (or array\n"
                 "element), field and reason; the others are stored. Prints a summary on\n"
                 "stderr. Exit status: 0 all accepted, 1 some lines rejected, 2 usage error,\n"
                 "3 input or store failure.\n\n"
                 "With --check nothing is stored and no database or key file is needed: each\n"
                 "line goes through the same validation, classification and redaction, and is\n"
                 "reported as above (a producer's output checked in its CI).\n\n"
                 "options:\n"
                 "  --db PATH          database (default $FLIGHTREC_DB or ./var/flightrec.db)\n"
                 "  --batch N          events per transaction (default 1000)\n"
                 "  --max-line BYTES   longest accepted line (default 1048576)\n"
                 "  --max-depth N      deepest accepted JSON nesting (default 64)\n"
                 "  --errors N         per-line errors to print (default 20, 0 for none)\n"
                 "  --check            validate only: store nothing, exit 0 when every line\n"
                 "                     would be accepted, 1 when some would be rejected\n"
                 "  --taxonomy FILE    error-taxonomy rules tried before the built-in ones\n"
                 "                     (default $FLIGHTREC_TAXONOMY)\n"
                 "  --redaction FILE   redaction policy merged over the built-in one\n"
                 "                     (default $FLIGHTREC_REDACTION; see configs/redaction.yaml)\n"
                 "  --hmac-key FILE    key of the keyed hashes (default $FLIGHTREC_HMAC_KEY or\n"
                 "                     hmac.key in the keys folder; created if absent)\n"
                 "  --raw              also store each redacted line unredacted, encrypted\n"
                 "                     (AES-256-GCM) with the --raw-key key; off by default\n"
                 "  --raw-key FILE     raw-mode key (default $FLIGHTREC_RAW_KEY; created if\n"
                 "                     absent); keep it away from the database\n"
                 "  --no-progress      no progress line, even on a terminal\n"
                 "  -h, --help         this help\n");
}

static int
ingest_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || *s == '-' || v < min || v > max) {
        fprintf(stderr,
                "flightrec ingest: %s: expected a whole number from %llu to %llu, got '%s'\n", opt,
                (unsigned long long)min, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* A rejected event, said as "WHERE N: why" (where: "line", or "element" of an array). */
static void
ingest_reject_at(struct ingest_run *r, const char *where, uint64_t n, const struct fr_err *err)
{
    r->rejected++;
    r->by_code[-err->code]++;
    if (r->rejected <= r->max_errors) {
        if (r->progress)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s %llu: %s\n", where, (unsigned long long)n, err->msg);
    }
}

static void
ingest_reject(struct ingest_run *r, uint64_t line, const struct fr_err *err)
{
    ingest_reject_at(r, "line", line, err);
}

/* An event stored with a warning (a key that most likely meant an envelope field it lacks,
   ...): where it is ("line", or "element" of an array) and n. */
static void
ingest_misnamed(struct ingest_run *r, const char *where, uint64_t n, const struct fr_record *rec)
{
    if (++r->misnamed > r->max_errors)
        return;
    char text[360];
    if (r->progress)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "%s %llu: warning: %s\n", where, (unsigned long long)n,
            fr_wire_warning_text(rec->misnamed, rec->misnamed_field, rec->mended_at, text,
                                 sizeof text));
}

/* A batch and its first and last lines, which its failure names (the writer clears the
   records before it tells) */
struct ingest_batch {
    struct fr_batch b;
    uint64_t first, last;
};

/* Writer thread: the batch has committed (or failed). */
static void
ingest_done(struct fr_batch *b, void *ud)
{
    struct ingest_run *r = ud;
    struct ingest_batch *ib = (struct ingest_batch *)b;
    if (b->rc == FR_OK) {
        atomic_fetch_add(&r->accepted, b->n);
        atomic_fetch_add(&r->duplicates, b->duplicates);
        atomic_fetch_add(&r->erased, b->erased);
    } else if (!atomic_exchange(&r->failed, true)) {
        pthread_mutex_lock(&r->fail_mu);
        snprintf(r->fail_msg, sizeof r->fail_msg, "storing lines %llu-%llu failed: %s",
                 (unsigned long long)ib->first, (unsigned long long)ib->last, b->err.msg);
        pthread_mutex_unlock(&r->fail_mu);
    }
    free(b->recs);
    free(ib);
}

static struct fr_batch *
ingest_new_batch(struct ingest_run *r)
{
    struct ingest_batch *ib = fr_calloc(1, sizeof *ib);
    struct fr_batch *b = &ib->b;
    b->recs = fr_calloc(r->batch, sizeof *b->recs);
    b->done = ingest_done;
    b->ud = r;
    return b;
}

/* Hands the current batch to the writer (waiting for room) and starts a new one. */
static void
ingest_submit(struct ingest_run *r)
{
    if (r->cur->n == 0)
        return;
    struct ingest_batch *ib = (struct ingest_batch *)r->cur;
    ib->first = r->cur->recs[0].line;
    ib->last = r->cur->recs[r->cur->n - 1].line;
    fr_writer_submit(r->writer, r->cur, true);
    r->cur = ingest_new_batch(r);
}

static void
ingest_show_progress(struct ingest_run *r, uint64_t bytes)
{
    double now = fr_mono_s();
    if (now - r->last_progress < 0.25)
        return;
    r->last_progress = now;
    double el = now - r->started;
    fprintf(stderr, "\r\033[K%llu lines, %.1f MB, %llu accepted, %llu rejected, %.0f lines/s",
            (unsigned long long)r->lines, (double)bytes / 1e6,
            (unsigned long long)atomic_load(&r->accepted), (unsigned long long)r->rejected,
            el > 0 ? (double)r->lines / el : 0.0);
}

static void
ingest_summary(struct ingest_run *r, const char *path)
{
    double el = fr_mono_s() - r->started;
    if (r->progress)
        fputs("\r\033[K", stderr);
    if (r->rejected > r->max_errors)
        fprintf(stderr, "... %llu more rejected lines not shown (use --errors N)\n",
                (unsigned long long)(r->rejected - r->max_errors));
    if (r->check)
        fprintf(stderr, "checked %s: %llu lines, %llu valid, %llu rejected; nothing stored\n", path,
                (unsigned long long)r->lines, (unsigned long long)atomic_load(&r->accepted),
                (unsigned long long)r->rejected);
    else
        fprintf(stderr,
                "ingested %s: %llu lines, %llu accepted (%llu already stored), %llu rejected, "
                "%.2f s, %.0f events/s\n",
                path, (unsigned long long)r->lines, (unsigned long long)atomic_load(&r->accepted),
                (unsigned long long)atomic_load(&r->duplicates), (unsigned long long)r->rejected,
                el, el > 0 ? (double)atomic_load(&r->accepted) / el : 0.0);
    if (r->misnamed > 0)
        fprintf(stderr,
                "%llu events %s with a warning (a misnamed or missing envelope field, "
                "conversation_id for conv_id, ...; a ts_ms ahead of the clock; a value kept in "
                "another form; a duration over a day; the first %llu are shown above): "
                "docs/wire-format.md, \"Misnamed fields\"\n",
                (unsigned long long)r->misnamed, r->check ? "would be stored" : "stored",
                (unsigned long long)(r->misnamed < r->max_errors ? r->misnamed : r->max_errors));
    if (atomic_load(&r->erased) > 0)
        fprintf(stderr,
                "%llu events refused: an erased conversation or value (flightrec erase --list)\n",
                (unsigned long long)atomic_load(&r->erased));
    const struct fr_redact_counts *c = &r->counts;
    fprintf(stderr, "redaction (policy %s): %llu events %s",
            fr_policy_id(fr_redactor_policy(r->red)), (unsigned long long)c->events_changed,
            r->check ? "would change" : "changed");
    for (size_t i = 0; i < c->ndetectors; i++)
        if (c->hits[i] > 0)
            fprintf(stderr, " %s=%llu", fr_redactor_detector_name(r->red, i),
                    (unsigned long long)c->hits[i]);
    for (int a = FR_ACT_MASK; a < FR_ACT_COUNT; a++)
        if (c->actions[a] > 0)
            fprintf(stderr, " %s=%llu", fr_action_name(a), (unsigned long long)c->actions[a]);
    fputc('\n', stderr);
    if (r->rejected > 0) {
        fputs("rejected by reason:", stderr);
        for (int i = 0; i < 1 - FR_RC_MIN; i++)
            if (r->by_code[i] > 0)
                fprintf(stderr, " %s=%llu", fr_rc_name(-i), (unsigned long long)r->by_code[i]);
        fputc('\n', stderr);
    }
}

/* What the command line says. */
struct ingest_opts {
    const char *db, *path, *taxonomy, *raw_key;
    struct fr_ingest_cfg cfg;
    uint64_t batch, max_errors;
    bool no_progress, raw, check;
    struct fr_cli_redact ro;
};

/* Parses argv into o; returns -1 to go on, else the exit status. */
static int
ingest_parse(int argc, char **argv, struct ingest_opts *o)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"batch", required_argument, NULL, 'b'},
        {"max-line", required_argument, NULL, 'L'},
        {"max-depth", required_argument, NULL, 'D'},
        {"errors", required_argument, NULL, 'e'},
        {"no-progress", no_argument, NULL, 'P'},
        {"check", no_argument, NULL, 'C'},
        {"taxonomy", required_argument, NULL, 'T'},
        {"redaction", required_argument, NULL, 'R'},
        {"hmac-key", required_argument, NULL, 'K'},
        {"raw", no_argument, NULL, 'W'},
        {"raw-key", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_wire_limits *lim = &o->cfg.lim;
    uint64_t v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'b':
            if (ingest_parse_u64("--batch", optarg, 1, 100000, &o->batch) != 0)
                return FR_EXIT_USAGE;
            break;
        case 'L':
            if (ingest_parse_u64("--max-line", optarg, 64, 64 << 20, &v) != 0)
                return FR_EXIT_USAGE;
            lim->max_line = v;
            break;
        case 'D':
            if (ingest_parse_u64("--max-depth", optarg, 2, 1000, &v) != 0)
                return FR_EXIT_USAGE;
            lim->max_depth = (int)v;
            break;
        case 'e':
            if (ingest_parse_u64("--errors", optarg, 0, UINT32_MAX, &o->max_errors) != 0)
                return FR_EXIT_USAGE;
            break;
        case 'P':
            o->no_progress = true;
            break;
        case 'C':
            o->check = true;
            break;
        case 'T':
            o->taxonomy = optarg;
            break;
        case 'R':
            o->ro.policy = optarg;
            break;
        case 'K':
            o->ro.hmac_key = optarg;
            break;
        case 'W':
            o->raw = true;
            break;
        case 'X':
            o->raw_key = optarg;
            break;
        case 'h':
            ingest_usage(stdout);
            return FR_EXIT_OK;
        default:
            ingest_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "flightrec ingest: expected one FILE (or - for stdin)\n");
        ingest_usage(stderr);
        return FR_EXIT_USAGE;
    }
    o->path = argv[optind];
    if (o->check && o->raw) {
        fprintf(stderr, "flightrec ingest: --check stores nothing: not with --raw\n");
        return FR_EXIT_USAGE;
    }
    if (o->raw && (o->raw_key == NULL || *o->raw_key == '\0')) {
        fprintf(stderr, "flightrec ingest: --raw needs --raw-key FILE (or $FLIGHTREC_RAW_KEY): "
                        "the raw key must be chosen, not defaulted next to the data\n");
        return FR_EXIT_USAGE;
    }
    return -1;
}

/* The record prepared at r->cur->recs[r->cur->n], of line lineno (where: "line", or
   "element" of an array): warned about when it has a misnamed field, then counted (--check)
   or batched. */
static void
ingest_take(struct ingest_run *r, const char *where, uint64_t lineno)
{
    struct fr_record *rec = &r->cur->recs[r->cur->n];
    rec->line = lineno;
    if (rec->misnamed != NULL)
        ingest_misnamed(r, where, lineno, rec);
    if (r->check) { /* valid: counted, not kept */
        atomic_fetch_add(&r->accepted, 1);
        fr_record_clear(rec);
    } else if (++r->cur->n == r->batch) {
        ingest_submit(r);
    }
}

/* Input read whole (ingest_whole) is read up to this: a hand-written file, an export or
   `jq .`'s output; a stream of events is NDJSON. */
#define INGEST_WHOLE_MAX ((size_t)256 << 20)

struct ingest_whole_ctx {
    struct ingest_run *r;
    uint64_t first; /* the input's line of the text's line 1 */
    bool array;     /* a JSON array: its events numbered by element */
};

static void
ingest_whole_reject(void *ud, size_t line, const struct fr_err *e)
{
    struct ingest_whole_ctx *c = ud;
    if (c->array) /* a broken element's error names its line */
        ingest_reject_at(c->r, "element", line, e);
    else
        ingest_reject(c->r, c->first + line - 1, e);
}

/*
 * Whether the input, whose first line this is, is read whole rather than by lines: a JSON
 * array of events (no NDJSON line starts with '['; one with an element per line included),
 * or pretty-printed events (a first line that opens an object it does not close) when the
 * next line does not start an event of its own as an NDJSON line does (a stream whose first
 * line was cut short is read by lines: nothing after it waits or is lost). *array: it
 * starts a JSON array.
 */
static bool
ingest_whole(struct fr_linereader *lr, const char *line, size_t len, bool *array)
{
    size_t at = 0;
    while (at < len && (line[at] == ' ' || line[at] == '\t'))
        at++;
    *array = at < len && line[at] == '[';
    if (*array)
        return true;
    if (!fr_wire_line_opens(line, len))
        return false;
    size_t n;
    const char *rest = fr_linereader_rest(lr, line, &n), *end = rest + n;
    const char *p = memchr(rest, '\n', n);
    while (p != NULL && ++p < end) { /* the next line that is not blank */
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *next = p;
        size_t k = (size_t)((nl ? nl : end) - p);
        if (fr_wire_line(&next, &k))
            return next[0] != '{';
        p = nl;
    }
    return true;
}

/*
 * The input from line (its line lineno: see ingest_whole) to its end,
 * read whole and framed as a POST /v1/events body is (agent/body.c): a JSON array (its events
 * numbered by element), pretty-printed events one after another (each numbered by the line
 * it starts on), or NDJSON with its per-line errors when it does not parse so.
 */
static int
ingest_whole_read(struct ingest_run *r, struct fr_linereader *lr, int fd, const char *line,
                  uint64_t lineno, bool array, const struct ingest_opts *o)
{
    size_t have, more;
    const char *rest = fr_linereader_rest(lr, line, &have);
    char *tail;
    bool over;
    bool ok = fr_fd_read_max(fd, INGEST_WHOLE_MAX - have, &tail, &more, &over);
    if (!ok) {
        if (over)
            fprintf(stderr,
                    "flightrec ingest: %s: a JSON array or pretty-printed events (read "
                    "whole) over %zu MiB; write it as NDJSON, one event per line (jq -c "
                    "'.[]' FILE for an array, jq -c . FILE otherwise)\n",
                    o->path, INGEST_WHOLE_MAX >> 20);
        else
            perror(o->path);
        free(tail);
        return FR_EXIT_FAIL;
    }
    size_t n = have + more;
    char *buf = fr_malloc(n + 1);
    memcpy(buf, rest, have);
    memcpy(buf + have, tail, more);
    free(tail);
    struct fr_body_result res = {0};
    struct ingest_whole_ctx c = {r, lineno, array};
    fr_body_prepare(buf, n, &o->cfg, &r->counts, &res, ingest_whole_reject, NULL, &c);
    free(buf);
    r->lines += res.received;            /* events, here */
    for (size_t k = 0; k < res.n; k++) { /* moved into batches: not cleared here */
        r->cur->recs[r->cur->n] = res.recs[k];
        ingest_take(r, c.array ? "element" : "line",
                    c.array ? res.recs[k].line : lineno + res.recs[k].line - 1);
    }
    free(res.recs);
    return FR_EXIT_OK;
}

/* Reads every line of fd into batches for the writer; returns the exit status so far. */
static int
ingest_read(struct ingest_run *r, int fd, const struct ingest_opts *o)
{
    const struct fr_wire_limits *lim = &o->cfg.lim;
    struct fr_err err = {0};
    struct fr_zinput *z; /* a gzip or zstd input: read decompressed */
    char pre[4];
    size_t npre;
    if (fr_zinput_open(fd, &z, &fd, pre, &npre, &err) != FR_OK) {
        fprintf(stderr, "flightrec ingest: %s: %s\n", o->path, err.msg);
        return FR_EXIT_FAIL;
    }
    struct fr_linereader *lr = fr_linereader_new(fd, lim->max_line);
    fr_linereader_preload(lr, pre, npre);
    const char *line;
    size_t len;
    bool too_long;
    uint64_t lineno;
    int rc = 0, status = FR_EXIT_OK;
    while (!atomic_load(&r->failed) &&
           (rc = fr_linereader_next(lr, &line, &len, &too_long, &lineno)) == 1) {
        if (too_long) {
            r->lines++;
            fr_err_set(&err, FR_E_LIMIT, "line is %zu bytes, over the %zu byte limit", len,
                       lim->max_line);
            ingest_reject(r, lineno, &err);
            continue;
        }
        if (!fr_wire_line(&line, &len))
            continue;
        bool array;
        if (r->lines == 0 && ingest_whole(lr, line, len, &array)) { /* the rest read whole */
            status = ingest_whole_read(r, lr, fd, line, lineno, array, o);
            break;
        }
        r->lines++;
        struct fr_record *rec = &r->cur->recs[r->cur->n];
        if (fr_ingest_prepare(line, len, &o->cfg, &r->counts, rec, &err) != FR_OK) {
            ingest_reject(r, lineno, &err);
            continue;
        }
        ingest_take(r, "line", lineno);
        if (r->progress && (r->lines & 1023) == 0)
            ingest_show_progress(r, fr_linereader_bytes(lr));
    }
    if (rc < 0) {
        perror(o->path);
        status = FR_EXIT_FAIL;
    }
    fr_linereader_free(lr);
    if (fr_zinput_close(z, &err) != FR_OK) { /* what was read before it is kept */
        fprintf(stderr, "flightrec ingest: %s: %s\n", o->path, err.msg);
        status = FR_EXIT_FAIL;
    }
    return status;
}

/* --check: fd's lines prepared as ingest would (validated, classified, redacted), none stored. */
static int
ingest_check_file(int fd, const struct ingest_opts *o)
{
    struct ingest_run r = {
        .batch = 1, .max_errors = o->max_errors, .red = o->cfg.red, .check = true};
    fr_redact_counts_init(&r.counts, o->cfg.red);
    r.cur = ingest_new_batch(&r); /* one slot, prepared into and cleared */
    r.progress = !o->no_progress && isatty(STDERR_FILENO);
    r.started = r.last_progress = fr_mono_s();
    int status = ingest_read(&r, fd, o);
    free(r.cur->recs);
    free(r.cur);
    ingest_summary(&r, o->path);
    if (status == FR_EXIT_OK && r.rejected > 0)
        status = FR_EXIT_REJECTED;
    fr_redact_counts_free(&r.counts);
    return status;
}

/* Stores fd's events into the store at o->db with the redactor and taxonomy in o->cfg. */
static int
ingest_run_file(int fd, const struct ingest_opts *o)
{
    if (o->check)
        return ingest_check_file(fd, o);
    struct ingest_run r = {.batch = o->batch, .max_errors = o->max_errors, .red = o->cfg.red};
    const struct fr_policy *pol = fr_redactor_policy(o->cfg.red);
    struct fr_err err = {0};
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.background_checkpoint = true; /* the batches never wait for a checkpoint */
    so.background_training = true;   /* nor for a body dictionary */
    if (fr_store_open(o->db, &so, &r.store, &err) != FR_OK ||
        fr_store_policy(r.store, fr_policy_id(pol), fr_policy_json(pol), fr_now_ms(), &err) !=
            FR_OK) {
        fprintf(stderr, "flightrec ingest: %s\n", err.msg);
        fr_store_close(r.store);
        return FR_EXIT_FAIL;
    }
    fr_redact_counts_init(&r.counts, o->cfg.red);
    pthread_mutex_init(&r.fail_mu, NULL);
    /* four batches in flight: the reader stays ahead without unbounded memory */
    r.writer = fr_writer_new(r.store, 4 * o->batch, o->batch);
    r.cur = ingest_new_batch(&r);
    r.progress = !o->no_progress && isatty(STDERR_FILENO);
    r.started = r.last_progress = fr_mono_s();
    int status = ingest_read(&r, fd, o);
    ingest_submit(&r);
    fr_writer_free(r.writer); /* commits what is queued, then stops */
    for (size_t i = 0; i < r.cur->n; i++)
        fr_record_clear(&r.cur->recs[i]);
    free(r.cur->recs);
    free(r.cur);
    if (atomic_load(&r.failed)) {
        fprintf(stderr, "flightrec ingest: %s\n", r.fail_msg);
        status = FR_EXIT_FAIL;
    }
    ingest_summary(&r, o->path);
    if (status == FR_EXIT_OK && r.rejected > 0)
        status = FR_EXIT_REJECTED;
    pthread_mutex_destroy(&r.fail_mu);
    fr_store_close(r.store);
    fr_redact_counts_free(&r.counts);
    return status;
}

int
fr_cmd_ingest(int argc, char **argv)
{
    struct ingest_opts o = {.db = fr_cli_default_db(),
                            .taxonomy = getenv("FLIGHTREC_TAXONOMY"),
                            .raw_key = getenv("FLIGHTREC_RAW_KEY"),
                            .batch = 1000,
                            .max_errors = 20};
    fr_wire_limits_default(&o.cfg.lim);
    int st = ingest_parse(argc, argv, &o);
    if (st >= 0)
        return st;
    o.ro.db = o.db;
    o.ro.create_key = !o.check; /* it stores hashed data (--check: a temporary key) */
    o.ro.quiet = o.check;       /* no hash is shown: the temporary key needs no word */
    struct fr_redactor *red;
    int crc = fr_cli_redactor("ingest", &o.ro, &red);
    if (crc != FR_EXIT_OK)
        return crc;
    unsigned char rawkey[FR_KEY_LEN];
    if (o.raw && (crc = fr_cli_load_key("ingest", o.raw_key, true, rawkey)) != FR_EXIT_OK) {
        fr_redactor_free(red);
        return crc;
    }
    o.cfg.red = red;
    o.cfg.raw_key = o.raw ? rawkey : NULL;
    struct fr_taxonomy *tax;
    struct fr_err err = {0};
    int status = FR_EXIT_USAGE;
    if (fr_taxonomy_load(o.taxonomy && *o.taxonomy ? o.taxonomy : NULL, &tax, &err) != FR_OK) {
        fprintf(stderr, "flightrec ingest: %s\n", err.msg);
    } else {
        o.cfg.tax = tax;
        int fd = strcmp(o.path, "-") == 0 ? STDIN_FILENO : open(o.path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            perror(o.path);
            status = FR_EXIT_FAIL;
        } else {
            status = ingest_run_file(fd, &o);
            if (fd != STDIN_FILENO)
                close(fd);
        }
        fr_taxonomy_free(tax);
    }
    fr_redactor_free(red);
    fr_key_wipe(rawkey, sizeof rawkey);
    return status;
}
