/*
 * exporters/bundle.c - see bundle.h.
 */
#include "exporters/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/render.h"
#include "retention/retention.h"

/* ---- Ed25519 keys ---- */

int
fr_ed25519_generate(const char *priv_path, const char *pub_path, struct fr_err *err)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k == NULL)
        return fr_err_set(err, FR_E_INVALID, "Ed25519 key generation failed");
    int fd = open(priv_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = FR_OK;
    if (fp == NULL || PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) != 1)
        rc = fr_err_set(err, FR_E_IO, "%s: cannot write the private key: %s", priv_path,
                        strerror(errno));
    if (fp)
        fclose(fp);
    else if (fd >= 0)
        close(fd);
    if (rc == FR_OK) {
        fp = fopen(pub_path, "w");
        if (fp == NULL || PEM_write_PUBKEY(fp, k) != 1)
            rc = fr_err_set(err, FR_E_IO, "%s: cannot write the public key", pub_path);
        if (fp)
            fclose(fp);
    }
    EVP_PKEY_free(k);
    return rc;
}

int
fr_ed25519_load(const char *path, bool private_key, EVP_PKEY **out, struct fr_err *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return fr_err_set(err, FR_E_IO, "key %s: %s", path, strerror(errno));
    if (private_key && (st.st_mode & 077))
        return fr_err_set(err, FR_E_CONFIG,
                          "key %s: readable by group or others (mode %03o); run chmod 600 %s", path,
                          (unsigned)(st.st_mode & 0777), path);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return fr_err_set(err, FR_E_IO, "key %s: %s", path, strerror(errno));
    EVP_PKEY *k = private_key ? PEM_read_PrivateKey(fp, NULL, NULL, NULL)
                              : PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return fr_err_set(err, FR_E_CONFIG, "key %s: not an Ed25519 %s key in PEM", path,
                          private_key ? "private" : "public");
    }
    *out = k;
    return FR_OK;
}

static const char *
or_(const char *a, const char *b)
{
    return a ? a : b;
}

static void
hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* First 16 hex digits of SHA-256 of the DER public key. */
static void
key_id(EVP_PKEY *k, char out[17])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    unsigned char md[32];
    SHA256(der, n > 0 ? (size_t)n : 0, md);
    OPENSSL_free(der);
    hex(md, 8, out);
}

/* ---- gathering ---- */

struct gather {
    json_t *convs;  /* object used as a set of conv_ids */
    json_t *events; /* rendered events */
    json_t *tiers;  /* set */
    const struct fr_bundle_select *sel;
    const unsigned char *raw_key; /* --include-raw: the raw-mode key */
    json_t *raw;                  /* id -> sealed payload, base64 */
    size_t raw_failed;
};

static int
take_event(void *ud, const struct fr_event_row *r)
{
    struct gather *g = ud;
    json_array_append_new(g->events, fr_render_event(r, NULL, 0));
    if (g->raw_key != NULL && r->raw != NULL && r->raw_len > 0) {
        /* only with the key that opens it; it goes in still sealed */
        unsigned char *pt;
        size_t ptlen;
        if (fr_unseal(g->raw_key, r->raw, r->raw_len, &pt, &ptlen, NULL) == FR_OK) {
            OPENSSL_cleanse(pt, ptlen);
            free(pt);
            char *b64 = fr_malloc(4 * ((r->raw_len + 2) / 3) + 1);
            EVP_EncodeBlock((unsigned char *)b64, r->raw, (int)r->raw_len);
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)r->id);
            json_object_set_new(g->raw, key, json_string(b64));
            free(b64);
        } else {
            g->raw_failed++;
        }
    }
    json_object_set_new(g->tiers, r->tier ? r->tier : "hot", json_true());
    return 0;
}

/* Adds the conversation of a matching failure or trace event to the set. */
static int
take_conv(void *ud, const struct fr_event_row *r)
{
    struct gather *g = ud;
    if (g->sel->trace_id &&
        (!r->ids[FR_ID_TRACE] || strcmp(r->ids[FR_ID_TRACE], g->sel->trace_id) != 0))
        return 0;
    if (r->ids[FR_ID_CONV])
        json_object_set_new(g->convs, r->ids[FR_ID_CONV], json_true());
    return 0;
}

static int
conv_row(void *ud, const struct fr_conv_row *r)
{
    json_array_append_new(ud, fr_render_conv(r));
    return 0;
}

/* ---- building files ---- */

struct file {
    const char *name;
    char *data;
    size_t len, cap;
    size_t records;
};

static void
file_put(struct file *f, const char *s, size_t n)
{
    if (f->len + n + 1 > f->cap) {
        f->cap = (f->len + n + 1) * 2;
        f->data = fr_realloc(f->data, f->cap);
    }
    memcpy(f->data + f->len, s, n);
    f->len += n;
    f->data[f->len] = '\0';
}

static void
file_json(struct file *f, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    file_put(f, s, strlen(s));
    file_put(f, "\n", 1);
    f->records++;
    free(s);
}

static void file_printf(struct file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
file_printf(struct file *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n > 0)
        file_put(f, s, (size_t)n);
    free(s);
}

enum {
    F_CONVS,
    F_CONV_EVENTS,
    F_TURNS,
    F_TIMELINE,
    F_SEM,
    F_PROVIDER,
    F_TOOL,
    F_MIDDLEWARE,
    F_TRANSPORT,
    F_RUNTIME,
    F_ERRORS,
    F_REPLAY,
    F_RAW,
    F_SUMMARY,
    F_COUNT
};

static const char *const file_names[F_COUNT] = {
    "conversations.ndjson", "conversation_events.ndjson",
    "turns.ndjson",         "timeline.ndjson",
    "sem.ndjson",           "provider.ndjson",
    "tool.ndjson",          "middleware.ndjson",
    "transport.ndjson",     "runtime.ndjson",
    "errors.ndjson",        "replay.ndjson",
    "raw.ndjson",           "summary.md"};

static int
kind_file(const char *kind)
{
    static const struct {
        const char *kind;
        int file;
    } map[] = {{"conversation", F_CONV_EVENTS}, {"turn", F_TURNS},
               {"timeline", F_TIMELINE},        {"sem", F_SEM},
               {"provider", F_PROVIDER},        {"tool", F_TOOL},
               {"middleware", F_MIDDLEWARE},    {"transport", F_TRANSPORT},
               {"runtime", F_RUNTIME},          {"error", F_ERRORS}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (kind && strcmp(kind, map[i].kind) == 0)
            return map[i].file;
    return F_ERRORS;
}

static const char *
meta_str(const json_t *ev, const char *k)
{
    return json_string_value(json_object_get(json_object_get(ev, "flightrec"), k));
}

static int64_t
meta_int(const json_t *ev, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(ev, "flightrec"), k));
}

static int
dur_cmp(const void *a, const void *b)
{
    int64_t x = meta_int(*(json_t *const *)a, "duration_ms"),
            y = meta_int(*(json_t *const *)b, "duration_ms");
    return x < y ? 1 : x > y ? -1 : 0;
}

/* summary.md: what a person reads first. */
static void
write_summary(struct file *f, json_t *events, json_t *convs, const char *id, const char *sel_text)
{
    char ts[32], te[32];
    size_t n = json_array_size(events);
    file_printf(f, "# Incident bundle %s\n\nSelection: %s\n\n", id, sel_text);
    if (n > 0) {
        fr_time_format(json_integer_value(json_object_get(json_array_get(events, 0), "ts_ms")), ts,
                       sizeof ts);
        fr_time_format(json_integer_value(json_object_get(json_array_get(events, n - 1), "ts_ms")),
                       te, sizeof te);
        file_printf(f, "%zu events, %zu conversations, from %s to %s.\n\n", n,
                    json_array_size(convs), ts, te);
    } else {
        file_printf(f, "No events matched.\n\n");
    }
    file_printf(f, "## Conversations\n\n| conversation | status | events | errors | last error |\n"
                   "| --- | --- | --- | --- | --- |\n");
    size_t i;
    json_t *c;
    json_array_foreach(convs, i, c)
    {
        json_t *le = json_object_get(c, "last_error");
        file_printf(
            f, "| %s | %s | %lld | %lld | %s |\n", json_string_value(json_object_get(c, "conv_id")),
            json_string_value(json_object_get(c, "status")),
            (long long)json_integer_value(json_object_get(c, "event_count")),
            (long long)json_integer_value(json_object_get(c, "error_count")),
            le && json_is_object(le) ? json_string_value(json_object_get(le, "error_code")) : "-");
    }
    file_printf(f, "\n## Timeline of failures\n\n");
    json_t *codes = json_object(), *tools = json_object();
    json_t *ev;
    size_t failures = 0;
    json_array_foreach(events, i, ev)
    {
        const char *code = meta_str(ev, "error_code");
        if (code == NULL)
            continue;
        failures++;
        fr_time_format(json_integer_value(json_object_get(ev, "ts_ms")), ts, sizeof ts);
        if (failures <= 100)
            file_printf(f, "- %s `%s` %s — %s\n", ts,
                        json_string_value(json_object_get(ev, "conv_id"))
                            ? json_string_value(json_object_get(ev, "conv_id"))
                            : "-",
                        code, meta_str(ev, "error_message") ? meta_str(ev, "error_message") : "");
        json_object_set_new(codes, code,
                            json_integer(json_integer_value(json_object_get(codes, code)) + 1));
        const char *tool = meta_str(ev, "tool");
        if (tool)
            json_object_set_new(tools, tool,
                                json_integer(json_integer_value(json_object_get(tools, tool)) + 1));
    }
    if (failures == 0)
        file_printf(f, "No failures.\n");
    else if (failures > 100)
        file_printf(f, "- … %zu more in errors.ndjson\n", failures - 100);
    file_printf(f, "\n## Errors by code\n\n");
    const char *k;
    json_t *v;
    json_object_foreach(codes, k, v)
        file_printf(f, "- `%s`: %lld\n", k, (long long)json_integer_value(v));
    file_printf(f, "\n## Failing tools\n\n");
    if (json_object_size(tools) == 0)
        file_printf(f, "None.\n");
    json_object_foreach(tools, k, v)
        file_printf(f, "- `%s`: %lld failures\n", k, (long long)json_integer_value(v));
    /* slowest provider calls */
    json_t **prov = fr_malloc((n ? n : 1) * sizeof *prov);
    size_t np = 0;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "provider") == 0 &&
            json_is_integer(json_object_get(json_object_get(ev, "flightrec"), "duration_ms")))
            prov[np++] = ev;
    }
    qsort(prov, np, sizeof *prov, dur_cmp);
    file_printf(f, "\n## Slowest provider calls\n\n");
    if (np == 0)
        file_printf(f, "None with a duration.\n");
    for (size_t p = 0; p < np && p < 5; p++) {
        fr_time_format(json_integer_value(json_object_get(prov[p], "ts_ms")), ts, sizeof ts);
        file_printf(f, "- %s `%s` %s/%s: %lld ms\n", ts,
                    or_(json_string_value(json_object_get(prov[p], "conv_id")), "-"),
                    or_(meta_str(prov[p], "provider"), "?"), or_(meta_str(prov[p], "model"), "?"),
                    (long long)meta_int(prov[p], "duration_ms"));
    }
    free(prov);
    /* runtime peaks */
    int64_t max_rss = 0, max_threads = 0;
    double max_cpu = 0;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "runtime") != 0)
            continue;
        json_t *d = json_object_get(ev, "data");
        int64_t rss = json_integer_value(json_object_get(d, "rss_bytes"));
        int64_t th = json_integer_value(json_object_get(d, "threads"));
        double cpu = json_number_value(json_object_get(d, "cpu_pct"));
        max_rss = rss > max_rss ? rss : max_rss;
        max_threads = th > max_threads ? th : max_threads;
        max_cpu = cpu > max_cpu ? cpu : max_cpu;
    }
    file_printf(f, "\n## Runtime peaks in the window\n\n");
    if (max_rss == 0 && max_threads == 0)
        file_printf(f, "No runtime samples.\n");
    else
        file_printf(f, "- RSS %.1f MiB, CPU %.1f %%, threads %lld\n", (double)max_rss / 1048576.0,
                    max_cpu, (long long)max_threads);
    json_decref(codes);
    json_decref(tools);
}

struct anomaly_ctx {
    struct file *f;
    size_t n;
};

static int
anomaly_row(void *ud, const struct fr_anomaly_row *r)
{
    struct anomaly_ctx *c = ud;
    char ts[32];
    if (c->n++ < 50)
        file_printf(c->f, "- %s stream `%s`: %s at seq %lld (expected %lld)\n",
                    fr_time_format(r->ts_ms, ts, sizeof ts), r->stream_id, r->anomaly,
                    (long long)r->seq, (long long)r->expected);
    return 0;
}

/* ---- the container ---- */

static int
tar_add(struct archive *a, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, (time_t)(fr_now_ms() / 1000), 0);
    int rc = archive_write_header(a, e);
    if (rc == ARCHIVE_OK && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
        rc = ARCHIVE_FATAL;
    archive_entry_free(e);
    return rc == ARCHIVE_OK ? FR_OK : FR_E_IO;
}

int
fr_bundle_create(struct fr_store *st, const struct fr_bundle_select *sel,
                 const unsigned char *cold_key, const unsigned char *raw_key, EVP_PKEY *sign,
                 const char *out_path, struct fr_bundle_info *info, struct fr_err *err)
{
    memset(info, 0, sizeof *info);
    double t0 = fr_mono_s();
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return fr_err_set(err, FR_E_IO, "bundle: no random bytes from OpenSSL for its id");
    hex(rnd, sizeof rnd, info->id);
    struct gather g = {json_object(), json_array(), json_object(), sel, raw_key, json_object(), 0};
    size_t cold_skipped = 0;
    int rc = FR_OK;
    for (size_t i = 0; i < sel->nconvs; i++)
        json_object_set_new(g.convs, sel->convs[i], json_true());
    bool by_conv = sel->nconvs > 0 || sel->error_class || sel->error_code || sel->trace_id;
    if (sel->error_class || sel->error_code || sel->trace_id) {
        struct fr_event_filter f = {.since_ms = sel->since_ms,
                                    .until_ms = sel->until_ms,
                                    .error_class = sel->error_class,
                                    .error_code = sel->error_code};
        rc = fr_tier_events(st, &f, cold_key, take_conv, &g, &cold_skipped, err);
    }
    if (rc == FR_OK && by_conv) {
        const char *conv;
        json_t *v;
        json_object_foreach(g.convs, conv, v)
        {
            struct fr_event_filter f = {
                .conv_id = conv, .since_ms = sel->since_ms, .until_ms = sel->until_ms};
            size_t skipped = 0;
            rc = fr_tier_events(st, &f, cold_key, take_event, &g, &skipped, err);
            cold_skipped += skipped;
            if (rc != FR_OK)
                break;
        }
    } else if (rc == FR_OK) {
        struct fr_event_filter f = {.since_ms = sel->since_ms, .until_ms = sel->until_ms};
        rc = fr_tier_events(st, &f, cold_key, take_event, &g, &cold_skipped, err);
        size_t i;
        json_t *ev;
        json_array_foreach(g.events, i, ev)
        {
            const char *c = json_string_value(json_object_get(ev, "conv_id"));
            if (c)
                json_object_set_new(g.convs, c, json_true());
        }
    }
    fr_render_sort_events(g.events);
    /* runtime samples around the selected events: peaks near the failures */
    size_t n = json_array_size(g.events);
    if (rc == FR_OK && by_conv && n > 0) {
        int64_t lo = json_integer_value(json_object_get(json_array_get(g.events, 0), "ts_ms"));
        int64_t hi = json_integer_value(json_object_get(json_array_get(g.events, n - 1), "ts_ms"));
        struct fr_event_filter f = {
            .kind = "runtime", .since_ms = lo - 300000, .until_ms = hi + 300001};
        size_t skipped = 0;
        rc = fr_tier_events(st, &f, cold_key, take_event, &g, &skipped, err);
        fr_render_sort_events(g.events);
    }
    /* an event read both from hot and from a segment still leaving hot: keep one */
    json_t *seen = json_object();
    for (size_t i = 0; i < json_array_size(g.events);) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)meta_int(json_array_get(g.events, i), "id"));
        if (json_object_get(seen, key)) {
            json_array_remove(g.events, i);
            continue;
        }
        json_object_set_new(seen, key, json_true());
        i++;
    }
    json_decref(seen);
    n = json_array_size(g.events);

    struct file files[F_COUNT] = {0};
    for (int i = 0; i < F_COUNT; i++)
        files[i].name = file_names[i];
    json_t *convrows = json_array();
    json_t *policies = json_object();
    if (rc == FR_OK) {
        const char *conv;
        json_t *v;
        json_object_foreach(g.convs, conv, v)
        {
            /* a conversation the index no longer knows is fine; a failed read is not:
               a bundle is never signed over what could not be read */
            struct fr_err e2 = {0};
            int crc = fr_store_conversation(st, conv, conv_row, convrows, &e2);
            if (crc == FR_OK)
                file_json(&files[F_CONVS], json_array_get(convrows, json_array_size(convrows) - 1));
            else if (crc != FR_E_NOTFOUND && rc == FR_OK)
                rc = fr_err_set(err, crc, "bundle: reading conversation %s: %s", conv, e2.msg);
        }
        size_t i;
        json_t *ev;
        json_array_foreach(g.events, i, ev)
        {
            file_json(&files[kind_file(json_string_value(json_object_get(ev, "kind")))], ev);
            if (meta_str(ev, "error_code") &&
                strcmp(or_(json_string_value(json_object_get(ev, "kind")), ""), "error") != 0)
                file_json(&files[F_ERRORS], ev);
            const char *pol = meta_str(ev, "redaction_policy");
            if (pol)
                json_object_set_new(policies, pol, json_true());
            /* the replay: the stored envelope, as it can be ingested again */
            json_t *wire = json_deep_copy(ev);
            json_object_del(wire, "flightrec");
            file_json(&files[F_REPLAY], wire);
            json_decref(wire);
        }
        /* --include-raw: the sealed raw-mode payloads, still encrypted */
        const char *rid;
        json_t *sealed;
        json_object_foreach(g.raw, rid, sealed)
        {
            json_t *line = json_pack("{s:I,s:O}", "id", (json_int_t)atoll(rid), "sealed", sealed);
            file_json(&files[F_RAW], line);
            json_decref(line);
        }
        char sel_text[512];
        snprintf(sel_text, sizeof sel_text,
                 "%zu conversation(s) named, since %lld, until %lld, error class %s, error code "
                 "%s, trace %s",
                 sel->nconvs, (long long)sel->since_ms, (long long)sel->until_ms,
                 sel->error_class ? sel->error_class : "-", sel->error_code ? sel->error_code : "-",
                 sel->trace_id ? sel->trace_id : "-");
        write_summary(&files[F_SUMMARY], g.events, convrows, info->id, sel_text);
        file_printf(&files[F_SUMMARY], "\n## Ordering anomalies (SEM)\n\n");
        struct anomaly_ctx ac = {&files[F_SUMMARY], 0};
        json_object_foreach(g.convs, conv, v)
        {
            struct fr_err e2 = {0};
            int arc = fr_store_anomalies(st, conv, 0, anomaly_row, &ac, &e2);
            if (arc != FR_OK && rc == FR_OK)
                rc = fr_err_set(err, arc, "bundle: reading the ordering anomalies of %s: %s", conv,
                                e2.msg);
        }
        if (ac.n == 0)
            file_printf(&files[F_SUMMARY], "None.\n");
        if (cold_skipped > 0)
            file_printf(&files[F_SUMMARY],
                        "\n**%zu cold segments were not read (no cold key): older events may be "
                        "missing.**\n",
                        cold_skipped);
    }

    /* manifest.json and its signature */
    char kid[17];
    key_id(sign, kid);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *mfiles = json_array();
    for (int i = 0; i < F_COUNT; i++) {
        if (i == F_RAW && files[i].len == 0)
            continue;
        unsigned char md[32];
        char mdhex[65];
        SHA256((const unsigned char *)(files[i].data ? files[i].data : ""), files[i].len, md);
        hex(md, 32, mdhex);
        json_array_append_new(mfiles, json_pack("{s:s,s:s,s:I,s:I}", "name", files[i].name,
                                                "sha256", mdhex, "bytes", (json_int_t)files[i].len,
                                                "records", (json_int_t)files[i].records));
    }
    json_t *selj =
        json_pack("{s:[],s:I,s:I,s:o,s:o,s:o}", "convs", "since_ms", (json_int_t)sel->since_ms,
                  "until_ms", (json_int_t)sel->until_ms, "error_class",
                  sel->error_class ? json_string(sel->error_class) : json_null(), "error_code",
                  sel->error_code ? json_string(sel->error_code) : json_null(), "trace_id",
                  sel->trace_id ? json_string(sel->trace_id) : json_null());
    for (size_t i = 0; i < sel->nconvs; i++)
        json_array_append_new(json_object_get(selj, "convs"), json_string(sel->convs[i]));
    json_t *pols = json_array(), *tiers = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(policies, k, v) json_array_append_new(pols, json_string(k));
    json_object_foreach(g.tiers, k, v) json_array_append_new(tiers, json_string(k));
    json_t *manifest = json_pack(
        "{s:i,s:s,s:I,s:s,s:s,s:o,s:I,s:I,s:o,s:o,s:o,s:I,s:s}", "format", 1, "bundle_id", info->id,
        "created_ms", (json_int_t)fr_now_ms(), "agent_version", FR_VERSION, "host", host,
        "selection", selj, "events", (json_int_t)n, "conversations",
        (json_int_t)json_array_size(convrows), "files", mfiles, "redaction_policies", pols, "tiers",
        tiers, "cold_segments_skipped", (json_int_t)cold_skipped, "signing_key_id", kid);
    info->files = json_array_size(mfiles);
    char *mtext = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(manifest); /* and mfiles with it */
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    if (rc == FR_OK &&
        (EVP_DigestSignInit(mc, NULL, NULL, NULL, sign) != 1 ||
         EVP_DigestSign(mc, sig, &siglen, (const unsigned char *)mtext, strlen(mtext)) != 1))
        rc = fr_err_set(err, FR_E_INVALID, "signing the manifest failed");
    EVP_MD_CTX_free(mc);
    char sighex[2 * 64 + 2];
    hex(sig, siglen, sighex);
    sighex[2 * siglen] = '\n';
    sighex[2 * siglen + 1] = '\0';

    char *tmp = fr_asprintf("%s.tmp", out_path);
    if (rc == FR_OK) {
        struct archive *a = archive_write_new();
        archive_write_add_filter_zstd(a);
        archive_write_set_format_pax_restricted(a);
        if (archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
            rc = fr_err_set(err, FR_E_IO, "%s: %s", tmp, archive_error_string(a));
        } else {
            rc = tar_add(a, "manifest.json", mtext, strlen(mtext));
            if (rc == FR_OK)
                rc = tar_add(a, "manifest.sig", sighex, strlen(sighex));
            for (int i = 0; rc == FR_OK && i < F_COUNT; i++)
                if (!(i == F_RAW && files[i].len == 0))
                    rc =
                        tar_add(a, files[i].name, files[i].data ? files[i].data : "", files[i].len);
            if (archive_write_close(a) != ARCHIVE_OK && rc == FR_OK)
                rc = fr_err_set(err, FR_E_IO, "%s: %s", tmp, archive_error_string(a));
            else if (rc != FR_OK)
                fr_err_set(err, rc, "%s: writing the bundle failed", tmp);
        }
        archive_write_free(a);
    }
    /* durable before it has its name: a crash leaves the old file or the whole new one */
    if (rc == FR_OK) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            rc = fr_err_set(err, FR_E_IO, "fsync %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (rc == FR_OK && rename(tmp, out_path) != 0)
        rc = fr_err_set(err, FR_E_IO, "rename %s: %s", tmp, strerror(errno));
    if (rc == FR_OK) {
        char *dir = fr_strdup(out_path), *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        fr_fsync_dir(slash ? dir : ".");
        free(dir);
    }
    if (rc != FR_OK)
        unlink(tmp);
    free(tmp);
    struct stat sb;
    if (rc == FR_OK && stat(out_path, &sb) == 0) {
        info->bytes = (uint64_t)sb.st_size;
        /* "<hex> <size>" beside the bundle: uploads use it as the Idempotency-Key */
        char *data;
        size_t len;
        rc = fr_read_file(out_path, &data, &len, err);
        if (rc == FR_OK) {
            unsigned char md[32];
            char mdhex[65];
            SHA256((unsigned char *)data, len, md);
            hex(md, 32, mdhex);
            char *side = fr_asprintf("%s.sha256", out_path);
            char line[100];
            int ln = snprintf(line, sizeof line, "%s %zu\n", mdhex, len);
            rc = fr_write_file_atomic(side, line, (size_t)ln, err);
            free(side);
            free(data);
        }
    }
    info->events = n;
    info->conversations = json_array_size(convrows);
    info->seconds = fr_mono_s() - t0;
    for (int i = 0; i < F_COUNT; i++)
        free(files[i].data);
    free(mtext);
    json_decref(convrows);
    json_decref(policies);
    json_decref(g.convs);
    json_decref(g.events);
    json_decref(g.tiers);
    json_decref(g.raw);
    return rc;
}

/* ---- reading and verifying ---- */

/* Calls cb for every member with its bytes. */
static int
bundle_each(const char *path, int (*cb)(void *ud, const char *name, const char *data, size_t len),
            void *ud, struct fr_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    int rc = FR_OK;
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        rc = fr_err_set(err, FR_E_IO, "bundle %s: %s", path, archive_error_string(a));
    } else {
        struct archive_entry *e;
        int r;
        while (rc == FR_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
            la_int64_t size = archive_entry_size(e);
            if (size < 0 || size > (la_int64_t)1 << 32) {
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: member %s has a bad size", path,
                                archive_entry_pathname(e));
                break;
            }
            char *buf = fr_malloc((size_t)size + 1);
            la_ssize_t got = archive_read_data(a, buf, (size_t)size);
            if (got != (la_ssize_t)size) {
                free(buf);
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: member %s is truncated", path,
                                archive_entry_pathname(e));
                break;
            }
            buf[size] = '\0';
            rc = cb(ud, archive_entry_pathname(e), buf, (size_t)size);
            free(buf);
        }
        if (rc == FR_OK && r != ARCHIVE_EOF)
            rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s", path, archive_error_string(a));
    }
    archive_read_free(a);
    return rc;
}

struct member_ctx {
    const char *want;
    char *data;
    size_t len;
};

static int
member_cb(void *ud, const char *name, const char *data, size_t len)
{
    struct member_ctx *c = ud;
    if (c->data == NULL && strcmp(name, c->want) == 0) {
        c->data = fr_malloc(len + 1);
        memcpy(c->data, data, len);
        c->data[len] = '\0';
        c->len = len;
    }
    return 0;
}

int
fr_bundle_member(const char *path, const char *name, char **data, size_t *len, struct fr_err *err)
{
    struct member_ctx c = {name, NULL, 0};
    int rc = bundle_each(path, member_cb, &c, err);
    if (rc == FR_OK && c.data == NULL)
        rc = fr_err_set(err, FR_E_NOTFOUND, "bundle %s has no %s", path, name);
    if (rc != FR_OK) {
        free(c.data);
        return rc;
    }
    *data = c.data;
    *len = c.len;
    return FR_OK;
}

struct verify_ctx {
    json_t *files; /* from the manifest: name -> {sha256, bytes} */
    json_t *seen;
    const char *path;
    struct fr_err *err;
};

static int
verify_cb(void *ud, const char *name, const char *data, size_t len)
{
    struct verify_ctx *c = ud;
    if (strcmp(name, "manifest.json") == 0 || strcmp(name, "manifest.sig") == 0)
        return 0;
    json_t *want = json_object_get(c->files, name);
    if (want == NULL)
        return fr_err_set(c->err, FR_E_VALUE, "bundle %s: %s is not listed in the manifest",
                          c->path, name);
    unsigned char md[32];
    char mdhex[65];
    SHA256((const unsigned char *)data, len, md);
    hex(md, 32, mdhex);
    if (strcmp(mdhex, or_(json_string_value(json_object_get(want, "sha256")), "")) != 0 ||
        (json_int_t)len != json_integer_value(json_object_get(want, "bytes")))
        return fr_err_set(c->err, FR_E_VALUE,
                          "bundle %s: %s does not match its SHA-256 in the manifest", c->path,
                          name);
    json_object_set_new(c->seen, name, json_true());
    return 0;
}

int
fr_bundle_verify(const char *path, EVP_PKEY *pub, struct fr_err *err)
{
    char *mtext = NULL, *sigtext = NULL;
    size_t mlen, slen;
    int rc = fr_bundle_member(path, "manifest.json", &mtext, &mlen, err);
    if (rc == FR_OK)
        rc = fr_bundle_member(path, "manifest.sig", &sigtext, &slen, err);
    unsigned char sig[64];
    size_t siglen = 0;
    if (rc == FR_OK) {
        for (; siglen < 64 && 2 * siglen + 1 < slen; siglen++) {
            unsigned v;
            if (sscanf(sigtext + 2 * siglen, "%2x", &v) != 1)
                break;
            sig[siglen] = (unsigned char)v;
        }
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        int ok = siglen == 64 && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pub) == 1 &&
                 EVP_DigestVerify(mc, sig, siglen, (const unsigned char *)mtext, mlen) == 1;
        EVP_MD_CTX_free(mc);
        if (!ok)
            rc = fr_err_set(err, FR_E_VALUE,
                            "bundle %s: manifest.json: the signature does not verify with this "
                            "public key (wrong key, or the manifest was changed)",
                            path);
    }
    json_t *m = rc == FR_OK ? json_loadb(mtext, mlen, 0, NULL) : NULL;
    if (rc == FR_OK && m == NULL)
        rc = fr_err_set(err, FR_E_VALUE, "bundle %s: manifest.json does not parse", path);
    if (rc == FR_OK) {
        struct verify_ctx c = {json_object(), json_object(), path, err};
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(m, "files"), i, f)
            json_object_set(c.files, json_string_value(json_object_get(f, "name")), f);
        rc = bundle_each(path, verify_cb, &c, err);
        const char *name;
        json_t *v;
        json_object_foreach(c.files, name, v)
        {
            if (rc == FR_OK && !json_object_get(c.seen, name))
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s is missing", path, name);
        }
        json_decref(c.files);
        json_decref(c.seen);
    }
    json_decref(m);
    free(mtext);
    free(sigtext);
    return rc;
}
