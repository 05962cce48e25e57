/*
 * tests/support/support.c - see support.h.
 */
#include "tests/support/support.h"
#include "agent/otlp/otlp.pb-c.h"

#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <snappy-c.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/ingest.h"
#include "agent/metrics.h"
#include "bench/gen.h"
#include "collectors/taxonomy.h"
#include "core/crc32c.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "redact/redact.h"
#include "retention/hot/sqlite_body.h"

char *
t_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = fr_asprintf("%s/frtest-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpl) == NULL)
        fail_msg("mkdtemp failed");
    /* keys of this test (and of the processes it starts) stay in its folder, never in the
       user's ~/.config/flightrec/keys */
    char *keys = fr_asprintf("%s/keys", tmpl);
    setenv("FLIGHTREC_KEYS_DIR", keys, 1);
    free(keys);
    return tmpl;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
t_rmtree(const char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
t_path(const char *dir, const char *name)
{
    return fr_asprintf("%s/%s", dir, name);
}

const unsigned char t_key[32] = "flightrec-test-key-0123456789abc";

struct fr_redactor *
t_redactor(void)
{
    static struct fr_redactor *red;
    if (red == NULL) {
        struct fr_err err = {0};
        struct fr_policy *p;
        if (fr_policy_load(NULL, &p, &err) != FR_OK ||
            fr_redactor_new(p, t_key, &red, &err) != FR_OK)
            fail_msg("built-in redaction policy: %s", err.msg);
    }
    return red;
}

const struct fr_ingest_cfg *
t_cfg(void)
{
    static struct fr_ingest_cfg cfg;
    static struct fr_taxonomy *tax;
    if (tax == NULL) {
        struct fr_err err = {0};
        if (fr_taxonomy_load(NULL, &tax, &err) != FR_OK)
            fail_msg("built-in taxonomy: %s", err.msg);
        fr_wire_limits_default(&cfg.lim);
        cfg.tax = tax;
        cfg.red = t_redactor();
    }
    return &cfg;
}

int
t_prepare(const char *json, struct fr_record *rec, struct fr_err *err)
{
    return fr_ingest_prepare(json, strlen(json), t_cfg(), NULL, rec, err);
}

long
t_metric(struct fr_metrics *m, const char *line)
{
    struct fr_metrics_gauges g = {0};
    size_t len;
    char *text = fr_metrics_render(m, &g, &len);
    char *want = fr_asprintf("\n%s ", line);
    const char *at = strstr(text, want);
    long v = at ? atol(at + strlen(want)) : -1;
    free(want);
    free(text);
    return v;
}

void
t_ingest(struct fr_store *st, const char *const *lines, size_t n)
{
    struct fr_record *recs = fr_calloc(n, sizeof *recs);
    struct fr_err err = {0};
    for (size_t i = 0; i < n; i++)
        if (t_prepare(lines[i], &recs[i], &err) != FR_OK)
            fail_msg("line %zu did not prepare: %s", i + 1, err.msg);
    if (fr_ingest_commit(st, recs, n, fr_now_ms(), NULL, &err) != FR_OK)
        fail_msg("commit failed: %s", err.msg);
    for (size_t i = 0; i < n; i++)
        fr_record_clear(&recs[i]);
    free(recs);
}

struct fr_store *
t_store_open(const char *dir, const char *name)
{
    char *path = t_path(dir, name);
    struct fr_store *st = NULL;
    struct fr_err err = {0};
    if (fr_store_open(path, NULL, &st, &err) != FR_OK)
        fail_msg("store open: %s", err.msg);
    free(path);
    return st;
}

int
t_store_setup(void **state)
{
    struct t_store_fx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    f->st = t_store_open(f->dir, "hot.db");
    f->path = t_path(f->dir, "hot.db");
    *state = f;
    return 0;
}

int
t_store_teardown(void **state)
{
    struct t_store_fx *f = *state;
    fr_store_close(f->st);
    t_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static char *
t_slurp(FILE *f)
{
    size_t cap = 4096, n = 0;
    char *buf = fr_malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2)
            buf = fr_realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    return buf;
}

int
t_run(const char *cmd, char **out, char **err)
{
    char errpath[] = "/tmp/frtest-stderr-XXXXXX";
    int fd = mkstemp(errpath);
    close(fd);
    char *full = fr_asprintf("%s 2>%s", cmd, errpath);
    FILE *p = popen(full, "r");
    free(full);
    if (p == NULL)
        fail_msg("popen failed");
    char *o = t_slurp(p);
    int status = pclose(p);
    FILE *e = fopen(errpath, "r");
    char *es = e ? t_slurp(e) : fr_strdup("");
    if (e)
        fclose(e);
    unlink(errpath);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = es;
    else
        free(es);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void
t_ingest_generated(struct fr_store *st, const char *dir, uint64_t n)
{
    char *file = t_path(dir, "gen.ndjson");
    FILE *fp = fopen(file, "w");
    struct fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.events = n;
    go.seed = 11;
    fr_gen_write(fp, &go);
    fclose(fp);
    fp = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    const char *batch[250];
    char *owned[250];
    size_t k = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        line[len - 1] = '\0';
        owned[k] = fr_strdup(line);
        batch[k] = owned[k];
        if (++k == 250) {
            t_ingest(st, batch, k);
            for (size_t i = 0; i < k; i++)
                free(owned[i]);
            k = 0;
        }
    }
    t_ingest(st, batch, k);
    for (size_t i = 0; i < k; i++)
        free(owned[i]);
    free(line);
    fclose(fp);
    free(file);
}

int
t_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

int
t_hold_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

void
t_flip_middle_byte(const char *path)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, len / 2, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, len / 2, SEEK_SET);
    fputc(ch ^ 0x20, fp);
    fclose(fp);
}

static bool
port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

pid_t
t_s3rver_start(const char *data_dir, const char *bucket, int *port)
{
    char *bin = fr_asprintf("%s/node_modules/.bin/s3rver", FR_SOURCE_DIR);
    assert_int_equal(access(bin, X_OK), 0); /* installed by scripts/npm-deps.sh (npm ci) */
    if (*port == 0)
        *port = t_free_port();
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", *port);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, "-d", data_dir, "-a", "127.0.0.1", "-p", p, "--configure-bucket", bucket,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !port_open(*port); i++)
        usleep(50000);
    assert_true(port_open(*port));
    free(bin);
    return pid;
}

void
t_s3rver_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

unsigned
t_seed(const char *test)
{
    const char *env = getenv("FR_TEST_SEED");
    unsigned seed;
    if (env != NULL && *env) {
        seed = (unsigned)strtoul(env, NULL, 10);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)(ts.tv_sec ^ ts.tv_nsec ^ getpid());
    }
    fprintf(stderr, "%s: seed %u (FR_TEST_SEED=%u repeats this run)\n", test, seed, seed);
    return seed;
}

uint8_t *
t_otlp_pb_traces(const char *conv, size_t *len)
{
    static uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                              0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static uint8_t sid[8] = {0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    FrOtlp__AnyValue v[4];
    FrOtlp__KeyValue kv[4];
    FrOtlp__KeyValue *kvp[4];
    const char *keys[4] = {"gen_ai.operation.name", "gen_ai.system", "gen_ai.conversation.id",
                           "gen_ai.usage.input_tokens"};
    const char *vals[3] = {"chat", "openai", conv};
    for (int i = 0; i < 4; i++) {
        fr_otlp__any_value__init(&v[i]);
        fr_otlp__key_value__init(&kv[i]);
        if (i < 3) {
            v[i].value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
            v[i].string_value = (char *)vals[i];
        } else {
            v[i].value_case = FR_OTLP__ANY_VALUE__VALUE_INT_VALUE;
            v[i].int_value = 77;
        }
        kv[i].key = (char *)keys[i];
        kv[i].value = &v[i];
        kvp[i] = &kv[i];
    }
    FrOtlp__Span sp = FR_OTLP__SPAN__INIT, *spp = &sp;
    sp.trace_id = (ProtobufCBinaryData){16, tid};
    sp.span_id = (ProtobufCBinaryData){8, sid};
    sp.name = "chat";
    sp.start_time_unix_nano = 1771357445201000000ull;
    sp.end_time_unix_nano = 1771357446401000000ull;
    sp.n_attributes = 4;
    sp.attributes = kvp;
    FrOtlp__Span bad = FR_OTLP__SPAN__INIT, *badp = &bad; /* no start time: rejected */
    FrOtlp__Span *spans[2] = {spp, badp};
    return t_otlp_pb_pack(spans, 2, len);
}

uint8_t *
t_otlp_pb_layout(size_t nres, const size_t *nscopes, const size_t *nspans, t_pb_span_fill fill,
                 void *ud, size_t *len)
{
    size_t nsc = 0, total = 0;
    for (size_t r = 0; r < nres; r++)
        nsc += nscopes[r];
    for (size_t k = 0; k < nsc; k++)
        total += nspans[k];
    struct t_pb_span *fs = fr_calloc(total + 1, sizeof *fs);
    FrOtlp__Span *sp = fr_calloc(total + 1, sizeof *sp), **spp = fr_calloc(total + 1, sizeof *spp);
    FrOtlp__AnyValue *av = fr_calloc(4 * total + 1, sizeof *av);
    FrOtlp__KeyValue *kv = fr_calloc(4 * total + 1, sizeof *kv), **kvp;
    kvp = fr_calloc(4 * total + 1, sizeof *kvp);
    FrOtlp__Status *st = fr_calloc(total + 1, sizeof *st);
    for (size_t i = 0; i < total; i++) {
        fill(i, &fs[i], ud);
        fr_otlp__span__init(&sp[i]);
        sp[i].name = fs[i].name;
        sp[i].trace_id = (ProtobufCBinaryData){16, fs[i].trace};
        sp[i].span_id = (ProtobufCBinaryData){8, fs[i].span};
        sp[i].start_time_unix_nano = (1771357445201ull + i) * 1000000ull;
        sp[i].end_time_unix_nano = sp[i].start_time_unix_nano + 5000000ull;
        for (size_t a = 0; a < fs[i].nattr; a++) {
            FrOtlp__AnyValue *v = &av[4 * i + a];
            FrOtlp__KeyValue *k = &kv[4 * i + a];
            fr_otlp__any_value__init(v);
            fr_otlp__key_value__init(k);
            v->value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = fs[i].vals[a];
            k->key = (char *)fs[i].keys[a];
            k->value = v;
            kvp[4 * i + a] = k;
        }
        sp[i].n_attributes = fs[i].nattr;
        sp[i].attributes = &kvp[4 * i];
        if (fs[i].status != 0) {
            fr_otlp__status__init(&st[i]);
            st[i].code = fs[i].status;
            st[i].message = (char *)fs[i].status_msg;
            sp[i].status = &st[i];
        }
        spp[i] = &sp[i];
    }
    FrOtlp__ScopeSpans *ss = fr_calloc(nsc + 1, sizeof *ss),
                       **ssp = fr_calloc(nsc + 1, sizeof *ssp);
    for (size_t k = 0, at = 0; k < nsc; at += nspans[k], k++) {
        fr_otlp__scope_spans__init(&ss[k]);
        ss[k].n_spans = nspans[k];
        ss[k].spans = &spp[at];
        ssp[k] = &ss[k];
    }
    FrOtlp__ResourceSpans *rs = fr_calloc(nres + 1, sizeof *rs), **rsp;
    rsp = fr_calloc(nres + 1, sizeof *rsp);
    FrOtlp__Resource *res = fr_calloc(nres + 1, sizeof *res);
    FrOtlp__KeyValue *rkv = fr_calloc(nres + 1, sizeof *rkv), **rkvp;
    rkvp = fr_calloc(nres + 1, sizeof *rkvp);
    FrOtlp__AnyValue *rav = fr_calloc(nres + 1, sizeof *rav);
    char(*rname)[24] = fr_calloc(nres + 1, sizeof *rname);
    for (size_t r = 0, at = 0; r < nres; at += nscopes[r], r++) {
        snprintf(rname[r], sizeof rname[r], "r%zu", r);
        fr_otlp__any_value__init(&rav[r]);
        rav[r].value_case = FR_OTLP__ANY_VALUE__VALUE_STRING_VALUE;
        rav[r].string_value = rname[r];
        fr_otlp__key_value__init(&rkv[r]);
        rkv[r].key = "service.name";
        rkv[r].value = &rav[r];
        rkvp[r] = &rkv[r];
        fr_otlp__resource__init(&res[r]);
        res[r].n_attributes = 1;
        res[r].attributes = &rkvp[r];
        fr_otlp__resource_spans__init(&rs[r]);
        rs[r].resource = &res[r];
        rs[r].n_scope_spans = nscopes[r];
        rs[r].scope_spans = &ssp[at];
        rsp[r] = &rs[r];
    }
    FrOtlp__ExportTraceServiceRequest req = FR_OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = nres;
    req.resource_spans = rsp;
    *len = fr_otlp__export_trace_service_request__get_packed_size(&req);
    uint8_t *buf = fr_malloc(*len + 1);
    fr_otlp__export_trace_service_request__pack(&req, buf);
    void *owned[] = {fs, sp, spp, av, kv, kvp, st, ss, ssp, rs, rsp, res, rkv, rkvp, rav, rname};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
        free(owned[i]);
    return buf;
}

uint8_t *
t_otlp_pb_pack(FrOtlp__Span **spans, size_t n, size_t *len)
{
    FrOtlp__ScopeSpans ss = FR_OTLP__SCOPE_SPANS__INIT, *ssp = &ss;
    ss.n_spans = n;
    ss.spans = spans;
    FrOtlp__ResourceSpans rs = FR_OTLP__RESOURCE_SPANS__INIT, *rsp = &rs;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    FrOtlp__ExportTraceServiceRequest r = FR_OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    r.n_resource_spans = 1;
    r.resource_spans = &rsp;
    *len = fr_otlp__export_trace_service_request__get_packed_size(&r);
    uint8_t *buf = fr_malloc(*len);
    fr_otlp__export_trace_service_request__pack(&r, buf);
    return buf;
}

long
sql_long(const char *db, const char *sql, char *text, size_t n)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* a running agent's connection that closes (a job's) may hold the database exclusively for
       a moment (its last-connection checkpoint): wait, as any reader with a timeout would */
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(fr_sqlite_body_functions(h), SQLITE_OK); /* stored bodies as text */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        if (text)
            snprintf(text, n, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

uint8_t *
t_snappy_framed(const void *msg, size_t len, size_t *out_len)
{
    size_t cap = 10 + 8 + len / 65536 * 8 + snappy_max_compressed_length(len) + len + 64;
    uint8_t *out = fr_malloc(cap);
    memcpy(out, "\xff\x06\x00\x00sNaPpY", 10);
    size_t n = 10;
    const uint8_t *m = msg;
    for (size_t at = 0, i = 0; at < len || i == 0; i++) {
        size_t take = len - at < 65536 ? len - at : 65536;
        uint32_t crc = fr_crc32c_masked(m + at, take);
        uint8_t *h = out + n;
        size_t clen;
        if (i % 3 == 1 || take < 64) { /* stored */
            h[0] = 0x01;
            memcpy(h + 8, m + at, take);
            clen = take;
        } else {
            h[0] = 0x00;
            clen = cap - n - 8;
            assert_int_equal(snappy_compress((const char *)m + at, take, (char *)h + 8, &clen),
                             SNAPPY_OK);
        }
        clen += 4;
        h[1] = (uint8_t)clen, h[2] = (uint8_t)(clen >> 8), h[3] = (uint8_t)(clen >> 16);
        h[4] = (uint8_t)crc, h[5] = (uint8_t)(crc >> 8), h[6] = (uint8_t)(crc >> 16);
        h[7] = (uint8_t)(crc >> 24);
        n += 4 + clen;
        at += take;
        if (i == 0) { /* padding, which a reader skips */
            memcpy(out + n, "\xfe\x02\x00\x00\x00\x00", 6);
            n += 6;
        }
    }
    *out_len = n;
    return out;
}
