/*
 * exporters/upload.c - see upload.h.
 */
#include "exporters/upload.h"

#include "exporters/bundle.h"
#include "exporters/uploader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/option.h"
#include "core/timeutil.h"
#include "core/yamlcfg.h"

/* ---- config ---- */

static void
target_free(struct fr_upload_target *t)
{
    free(t->name);
    free(t->url);
    for (size_t i = 0; i < t->nheaders; i++) {
        free(t->headers[i]);
        free(t->header_src ? t->header_src[i] : NULL);
    }
    free(t->headers);
    free(t->header_src);
    free(t->ca_file);
    free(t->client_cert);
    free(t->client_key);
    free(t->aws_sigv4);
    free(t->aws_access_key_env);
    free(t->aws_secret_key_env);
    if (t->aws_user)
        memset(t->aws_user, 0, strlen(t->aws_user));
    free(t->aws_user);
}

void
fr_upload_config_clear(struct fr_upload_config *c)
{
    for (size_t i = 0; i < c->ntargets; i++)
        target_free(&c->targets[i]);
    free(c->targets);
    free(c->outbox);
    memset(c, 0, sizeof *c);
}

const struct fr_upload_target *
fr_upload_target_find(const struct fr_upload_config *c, const char *name)
{
    for (size_t i = 0; i < c->ntargets; i++)
        if (strcmp(c->targets[i].name, name) == 0)
            return &c->targets[i];
    return NULL;
}

/*
 * A header's secret, read when its target uploads: from the environment
 * variable or the file ("env:VAR" / "file:PATH"). A file readable by group
 * or others is refused, like every key file.
 */
static int
secret_value(const struct fr_upload_target *t, const char *src, char **out, struct fr_err *err)
{
    *out = NULL;
    if (strncmp(src, "env:", 4) == 0) {
        const char *v = getenv(src + 4);
        if (v == NULL)
            return fr_err_set(err, FR_E_CONFIG,
                              "target %s: header value_env %s is not set in the environment",
                              t->name, src + 4);
        *out = fr_strdup(v);
        return FR_OK;
    }
    const char *file = src + 5;
    struct stat st;
    if (stat(file, &st) == 0 && (st.st_mode & 077))
        return fr_err_set(err, FR_E_CONFIG,
                          "target %s: header value_file %s is readable by group or others (mode "
                          "%03o); run chmod 600 %s",
                          t->name, file, (unsigned)(st.st_mode & 0777), file);
    size_t len;
    struct fr_err e2 = {0};
    if (fr_read_file(file, out, &len, &e2) != FR_OK)
        return fr_err_set(err, FR_E_CONFIG, "target %s: header value_file: %s", t->name, e2.msg);
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
        (*out)[--len] = '\0';
    return FR_OK;
}

/* t with its secrets read (headers, S3 credentials): what an upload sends; free with
   resolved_clear(). */
static int
resolve_target(const struct fr_upload_target *t, struct fr_upload_target *out, struct fr_err *err)
{
    *out = *t;
    out->headers = fr_calloc(t->nheaders ? t->nheaders : 1, sizeof *out->headers);
    out->header_src = NULL;
    out->aws_user = NULL;
    int rc = FR_OK;
    for (size_t i = 0; i < t->nheaders && rc == FR_OK; i++) {
        if (t->header_src == NULL || t->header_src[i] == NULL) {
            out->headers[i] = fr_strdup(t->headers[i]);
            continue;
        }
        char *secret;
        rc = secret_value(t, t->header_src[i], &secret, err);
        if (rc == FR_OK) {
            out->headers[i] = fr_asprintf("%s: %s", t->headers[i], secret);
            fr_key_wipe(secret, strlen(secret));
            free(secret);
        }
    }
    if (rc == FR_OK && t->aws_sigv4 != NULL) {
        const char *a = t->aws_access_key_env ? getenv(t->aws_access_key_env) : NULL;
        const char *s = t->aws_secret_key_env ? getenv(t->aws_secret_key_env) : NULL;
        if (a == NULL || s == NULL)
            rc = fr_err_set(err, FR_E_CONFIG,
                            "target %s: aws_sigv4 needs aws_access_key_env and "
                            "aws_secret_key_env naming set environment variables",
                            t->name);
        else
            out->aws_user = fr_asprintf("%s:%s", a, s);
    }
    return rc;
}

static void
resolved_clear(struct fr_upload_target *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (r->headers[i] != NULL)
            fr_key_wipe(r->headers[i], strlen(r->headers[i]));
        free(r->headers[i]);
    }
    free(r->headers);
    if (r->aws_user != NULL)
        fr_key_wipe(r->aws_user, strlen(r->aws_user));
    free(r->aws_user);
}

static int
parse_header(struct fr_yaml *y, yaml_node_t *h, struct fr_upload_target *t)
{
    if (h->type != YAML_MAPPING_NODE)
        return fr_yaml_fail(y, h, "headers: expected {name, value | value_env | value_file}");
    const char *name = NULL, *value = NULL, *env = NULL, *file = NULL;
    for (yaml_node_pair_t *p = h->data.mapping.pairs.start; p < h->data.mapping.pairs.top; p++) {
        const char *k = fr_yaml_scalar(fr_yaml_node(y, p->key));
        const char *v = fr_yaml_scalar(fr_yaml_node(y, p->value));
        if (k == NULL || v == NULL)
            return fr_yaml_fail(y, h, "headers: keys and values must be plain text");
        if (strcmp(k, "name") == 0)
            name = v;
        else if (strcmp(k, "value") == 0)
            value = v;
        else if (strcmp(k, "value_env") == 0)
            env = v;
        else if (strcmp(k, "value_file") == 0)
            file = v;
        else
            return fr_yaml_fail(y, fr_yaml_node(y, p->key),
                                "headers: unknown key '%s' (name, value, value_env, value_file)",
                                k);
    }
    if (name == NULL || (!value && !env && !file))
        return fr_yaml_fail(y, h, "headers: a header needs a name and a value source");
    /* a secret is read when this target uploads, not now: one target's missing secret
       never stops the others (or `outbox list`) */
    t->headers = fr_realloc(t->headers, (t->nheaders + 1) * sizeof *t->headers);
    t->header_src = fr_realloc(t->header_src, (t->nheaders + 1) * sizeof *t->header_src);
    t->headers[t->nheaders] = value ? fr_asprintf("%s: %s", name, value) : fr_strdup(name);
    t->header_src[t->nheaders] = value ? NULL
                                 : env ? fr_asprintf("env:%s", env)
                                       : fr_asprintf("file:%s", file);
    t->nheaders++;
    return FR_OK;
}

#define T(field) offsetof(struct fr_upload_target, field)
static const char *const upload_methods[] = {"put", "post", NULL};

/* Every key of a target (configs/upload.yaml documents them), read by core's option loader. */
static const struct fr_option target_opts[] = {
    {"targets", "name", FR_OPT_STR, "", T(name), 0, 0, NULL, "the name uploads refer to"},
    {"targets", "url", FR_OPT_STR, "", T(url), 0, 0, NULL,
     "http(s):// or file:// URL; {name} is the file's base name"},
    {"targets", "method", FR_OPT_ENUM, "put", T(method), 0, 0, upload_methods,
     "put (the file as the body) or post (multipart/form-data)"},
    {"targets", "ca_file", FR_OPT_STR, "", T(ca_file), 0, 0, NULL, "CA bundle to verify TLS"},
    {"targets", "client_cert", FR_OPT_STR, "", T(client_cert), 0, 0, NULL, "TLS client cert"},
    {"targets", "client_key", FR_OPT_STR, "", T(client_key), 0, 0, NULL, "TLS client key"},
    {"targets", "aws_sigv4", FR_OPT_STR, "", T(aws_sigv4), 0, 0, NULL,
     "S3 SigV4 signing, e.g. aws:amz:us-east-1:s3"},
    {"targets", "aws_access_key_env", FR_OPT_STR, "", T(aws_access_key_env), 0, 0, NULL,
     "environment variable holding the access key"},
    {"targets", "aws_secret_key_env", FR_OPT_STR, "", T(aws_secret_key_env), 0, 0, NULL,
     "environment variable holding the secret key"},
    {"targets", "timeout_ms", FR_OPT_INT, "300000", T(timeout_ms), 1, INT64_MAX / 2, NULL,
     "whole request"},
    {"targets", "connect_timeout_ms", FR_OPT_INT, "10000", T(connect_timeout_ms), 1, INT64_MAX / 2,
     NULL, "connection"},
    {"targets", "max_attempts", FR_OPT_INT, "6", T(max_attempts), 1, 100, NULL,
     "attempts before the upload waits in the outbox"},
    {"targets", "backoff_base_ms", FR_OPT_INT, "500", T(backoff_base_ms), 1, INT64_MAX / 2, NULL,
     "first backoff step"},
    {"targets", "backoff_max_ms", FR_OPT_INT, "60000", T(backoff_max_ms), 1, INT64_MAX / 2, NULL,
     "longest wait between attempts"},
    {0},
};

/* headers: a list, the one key of a target that is not an option. */
static int
target_headers(void *ud, struct fr_yaml *y, const char *section, const char *key, void *kn,
               void *vn_)
{
    struct fr_upload_target *t = ud;
    yaml_node_t *vn = vn_;
    (void)section;
    (void)kn;
    if (strcmp(key, "headers") != 0)
        return FR_E_NOTFOUND;
    if (vn->type != YAML_SEQUENCE_NODE)
        return fr_yaml_fail(y, vn, "headers: expected a list");
    int rc = FR_OK;
    for (yaml_node_item_t *it = vn->data.sequence.items.start;
         rc == FR_OK && it < vn->data.sequence.items.top; it++)
        rc = parse_header(y, fr_yaml_node(y, *it), t);
    return rc;
}

static int
parse_target(struct fr_yaml *y, yaml_node_t *n, struct fr_upload_target *t)
{
    memset(t, 0, sizeof *t);
    fr_options_defaults(target_opts, t);
    int rc = fr_options_load_node(target_opts, t, y, n, "targets", target_headers, t);
    char **optional[] = {&t->name,        &t->url,        &t->ca_file,
                         &t->client_cert, &t->client_key, &t->aws_sigv4};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        fr_option_unset_empty(optional[i]);
    const char *akey =
        t->aws_access_key_env && *t->aws_access_key_env ? t->aws_access_key_env : NULL;
    const char *asec =
        t->aws_secret_key_env && *t->aws_secret_key_env ? t->aws_secret_key_env : NULL;
    if (rc == FR_OK && (t->name == NULL || t->url == NULL))
        rc = fr_yaml_fail(y, n, "targets: a target needs 'name' and 'url'");
    if (rc == FR_OK && fr_uploader_for_url(t->url) == NULL)
        rc = fr_yaml_fail(y, n, "target %s: url: no uploader takes this scheme (http, https, file)",
                          t->name);
    if (rc == FR_OK && t->aws_sigv4 != NULL && (akey == NULL || asec == NULL))
        rc = fr_yaml_fail(y, n,
                          "target %s: aws_sigv4 needs aws_access_key_env and aws_secret_key_env "
                          "(the names of the variables; they are read when it uploads)",
                          t->name);
    return rc;
}

int
fr_upload_config_load(const char *path, struct fr_upload_config *c, struct fr_err *err)
{
    memset(c, 0, sizeof *c);
    c->outbox_max_bytes = (int64_t)1 << 30;
    struct fr_yaml y;
    int rc = fr_yaml_open_file(&y, path, err);
    if (rc != FR_OK)
        return rc;
    yaml_node_t *root = fr_yaml_root(&y);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        rc = fr_yaml_fail(&y, root, "expected a mapping (outbox, targets)");
    for (yaml_node_pair_t *p = rc == FR_OK ? root->data.mapping.pairs.start : NULL;
         rc == FR_OK && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = fr_yaml_node(&y, p->key), *vn = fr_yaml_node(&y, p->value);
        const char *k = fr_yaml_scalar(kn);
        if (k && strcmp(k, "outbox") == 0 && fr_yaml_scalar(vn)) {
            free(c->outbox);
            c->outbox = fr_strdup(fr_yaml_scalar(vn));
        } else if (k && strcmp(k, "outbox_max_bytes") == 0 && fr_yaml_scalar(vn)) {
            char *end;
            long long v = strtoll(fr_yaml_scalar(vn), &end, 10);
            if (*end != '\0' || v < 1)
                rc = fr_yaml_fail(&y, vn, "outbox_max_bytes: expected a positive whole number");
            else
                c->outbox_max_bytes = v;
        } else if (k && strcmp(k, "targets") == 0 && vn->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 rc == FR_OK && it < vn->data.sequence.items.top; it++) {
                c->targets = fr_realloc(c->targets, (c->ntargets + 1) * sizeof *c->targets);
                rc = parse_target(&y, fr_yaml_node(&y, *it), &c->targets[c->ntargets]);
                c->ntargets++;
            }
        } else {
            rc = fr_yaml_fail(&y, kn, "unknown key '%s' (outbox, outbox_max_bytes, targets)",
                              k ? k : "?");
        }
    }
    fr_yaml_close(&y);
    if (rc == FR_OK && c->outbox == NULL)
        c->outbox = fr_strdup("./var/outbox");
    if (rc != FR_OK)
        fr_upload_config_clear(c);
    return rc;
}

/* ---- one upload ---- */

/*
 * The file's SHA-256: from its "<path>.sha256" sidecar ("<hex> <size>",
 * written when flightrec made the file) when that is not older than the file
 * and names the same size, else computed.
 */
static int
file_sha256(const char *path, char out[65], uint64_t *size)
{
    char *side = fr_asprintf("%s.sha256", path), *text = NULL;
    size_t tl;
    struct stat fs, ss;
    if (stat(path, &fs) == 0 && stat(side, &ss) == 0 && ss.st_mtime >= fs.st_mtime &&
        fr_read_file(side, &text, &tl, NULL) == FR_OK) {
        unsigned long long n = 0;
        char hexv[65];
        if (sscanf(text, "%64s %llu", hexv, &n) == 2 && strlen(hexv) == 64 &&
            n == (unsigned long long)fs.st_size) {
            memcpy(out, hexv, 65);
            *size = n;
            free(text);
            free(side);
            return 0;
        }
    }
    free(text);
    free(side);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    char buf[65536];
    size_t n;
    *size = 0;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        EVP_DigestUpdate(c, buf, n);
        *size += n;
    }
    fclose(fp);
    unsigned char md[32];
    EVP_DigestFinal_ex(c, md, NULL);
    EVP_MD_CTX_free(c);
    fr_hex_encode(md, 32, out);
    return 0;
}

/*
 * How long to wait before attempt + 1: exponential backoff with full jitter,
 * or what the server asked for (429/503 with Retry-After), within
 * backoff_max_ms.
 */
static int64_t
backoff_ms(const struct fr_upload_target *t, int attempt, const struct fr_upload_attempt *a)
{
    int64_t cap = t->backoff_base_ms << (attempt - 1 < 20 ? attempt - 1 : 20);
    if (cap > t->backoff_max_ms || cap < 0)
        cap = t->backoff_max_ms;
    uint32_t r = 0;
    int64_t wait = cap; /* no randomness to be had: the whole step, no jitter */
    if (RAND_bytes((unsigned char *)&r, sizeof r) == 1)
        wait = cap > 0 ? (int64_t)(r % (uint64_t)cap) : 0;
    if (a->retry_after_s >= 0 && (a->status == 429 || a->status == 503)) {
        /* seconds, clamped before the multiplication: a huge value cannot overflow */
        long s = a->retry_after_s > 86400 ? 86400 : a->retry_after_s;
        wait = (int64_t)s * 1000;
        if (wait > t->backoff_max_ms)
            wait = t->backoff_max_ms;
    }
    return wait;
}

static char *
expand_url(const char *url, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *at = strstr(url, "{name}");
    if (at == NULL)
        return fr_strdup(url);
    return fr_asprintf("%.*s%s%s", (int)(at - url), url, base, at + 6);
}

int
fr_upload_file(const struct fr_upload_target *t, const char *path, fr_upload_progress progress,
               void *ud, struct fr_upload_result *res, struct fr_err *err)
{
    memset(res, 0, sizeof *res);
    char *url = expand_url(t->url, path);
    const struct fr_uploader *u = fr_uploader_for_url(url);
    if (u == NULL) {
        int rc =
            fr_err_set(err, FR_E_CONFIG, "target %s: no uploader for the URL's scheme", t->name);
        free(url);
        return rc;
    }
    char sha[65];
    uint64_t size;
    if (file_sha256(path, sha, &size) != 0) {
        free(url);
        return fr_err_set(err, FR_E_IO, "%s: %s", path, strerror(errno));
    }
    res->bytes = size;
    struct fr_upload_target rt;
    int rc = resolve_target(t, &rt, err);
    if (rc != FR_OK) {
        resolved_clear(&rt);
        free(url);
        return rc;
    }
    double t0 = fr_mono_s();
    rc = FR_E_IO;
    struct fr_upload_attempt at = {0};
    for (int attempt = 1; attempt <= t->max_attempts; attempt++) {
        res->attempts = attempt;
        at = (struct fr_upload_attempt){.retry_after_s = -1};
        rc = u->send(&rt, url, path, sha, size, progress, ud, &at);
        res->status = at.status;
        if (rc == FR_OK || !at.retry || attempt == t->max_attempts)
            break;
        usleep((useconds_t)(backoff_ms(t, attempt, &at) * 1000));
    }
    res->seconds = fr_mono_s() - t0;
    if (rc != FR_OK)
        fr_err_set(err, FR_E_IO, "upload of %s to %s failed after %d attempt(s): %s", path, t->name,
                   res->attempts, at.why);
    resolved_clear(&rt);
    free(url);
    return rc;
}

/* ---- outbox ---- */

/* Bytes of the regular files in dir. */
static int64_t
dir_bytes(const char *dir)
{
    int64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *p = fr_asprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (int64_t)st.st_size;
        free(p);
    }
    if (d)
        closedir(d);
    return total;
}

int
fr_outbox_add(const struct fr_upload_config *c, const char *path, const char *target,
              struct fr_err *err)
{
    const char *outbox = c->outbox;
    if (mkdir(outbox, 0700) != 0 && errno != EEXIST)
        return fr_err_set(err, FR_E_IO, "outbox %s: %s", outbox, strerror(errno));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    struct stat pst;
    if (stat(path, &pst) != 0)
        return fr_err_set(err, FR_E_IO, "%s: %s", path, strerror(errno));
    int64_t used = dir_bytes(outbox);
    if (c->outbox_max_bytes > 0 && used + (int64_t)pst.st_size > c->outbox_max_bytes)
        return fr_err_set(err, FR_E_LIMIT,
                          "outbox %s is full: %lld bytes queued, %s (%lld bytes) would pass "
                          "outbox_max_bytes (%lld); it stays at %s. Send or drop queued "
                          "uploads (flightrec outbox list|retry|drop), or raise the limit",
                          outbox, (long long)used, base, (long long)pst.st_size,
                          (long long)c->outbox_max_bytes, path);
    char *dst = fr_asprintf("%s/%s", outbox, base), *tmp = fr_asprintf("%s.tmp", dst);
    char *meta = fr_asprintf("%s.target", dst);
    char *data;
    size_t len;
    int rc = FR_OK;
    /* the hash sidecar goes along (a link, or nothing: then it is recomputed) */
    char *side = fr_asprintf("%s.sha256", path), *dside = fr_asprintf("%s.sha256", dst);
    unlink(dside);
    if (link(side, dside) != 0 && errno != ENOENT)
        unlink(dside);
    free(side);
    free(dside);
    /* same file system: a hard link is as durable as a copy, without copying */
    unlink(tmp);
    if (link(path, tmp) == 0) {
        FILE *m = fopen(meta, "w");
        bool ok = m && fprintf(m, "%s\n", target) > 0;
        if (m)
            ok = fclose(m) == 0 && ok;
        if (!ok || rename(tmp, dst) != 0 || fr_fsync_dir(outbox) != 0)
            rc = fr_err_set(err, FR_E_IO, "outbox %s: cannot queue %s: %s", outbox, base,
                            strerror(errno));
    } else if ((rc = fr_read_file(path, &data, &len, err)) == FR_OK) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = fd >= 0 && write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
        if (fd >= 0)
            close(fd);
        FILE *m = ok ? fopen(meta, "w") : NULL;
        ok = m && fprintf(m, "%s\n", target) > 0;
        if (m)
            ok = fclose(m) == 0 && ok;
        if (!ok || rename(tmp, dst) != 0 || fr_fsync_dir(outbox) != 0)
            rc = fr_err_set(err, FR_E_IO, "outbox %s: cannot queue %s: %s", outbox, base,
                            strerror(errno));
        free(data);
    }
    if (rc != FR_OK) {
        unlink(tmp);
        unlink(meta);
    }
    free(dst);
    free(tmp);
    free(meta);
    return rc;
}

int
fr_outbox_list(const char *outbox, struct fr_outbox_item **items, size_t *n, struct fr_err *err)
{
    *items = NULL;
    *n = 0;
    DIR *d = opendir(outbox);
    if (d == NULL)
        return errno == ENOENT ? FR_OK
                               : fr_err_set(err, FR_E_IO, "outbox %s: %s", outbox, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 7 && strcmp(e->d_name + len - 7, ".target") == 0) ||
            (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) ||
            (len > 6 && strcmp(e->d_name + len - 6, ".error") == 0) ||
            (len > 7 && strcmp(e->d_name + len - 7, ".sha256") == 0))
            continue;
        struct fr_outbox_item it = {0};
        it.file = fr_asprintf("%s/%s", outbox, e->d_name);
        char *meta = fr_asprintf("%s.target", it.file), *text = NULL;
        size_t tl;
        if (fr_read_file(meta, &text, &tl, NULL) == FR_OK) {
            text[strcspn(text, "\n")] = '\0';
            it.target = text;
        } else {
            it.target = fr_strdup("?");
        }
        free(meta);
        char *errf = fr_asprintf("%s.error", it.file), *etext = NULL;
        if (fr_read_file(errf, &etext, &tl, NULL) == FR_OK) {
            it.attempts = atoi(etext);
            char *sp = strchr(etext, ' ');
            it.last_error = fr_strdup(sp ? sp + 1 : "");
            it.last_error[strcspn(it.last_error, "\n")] = '\0';
            free(etext);
        }
        free(errf);
        *items = fr_realloc(*items, (*n + 1) * sizeof **items);
        (*items)[(*n)++] = it;
    }
    closedir(d);
    return FR_OK;
}

void
fr_outbox_items_free(struct fr_outbox_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].file);
        free(items[i].target);
        free(items[i].last_error);
    }
    free(items);
}

static void
outbox_remove(const char *file)
{
    char *meta = fr_asprintf("%s.target", file), *errf = fr_asprintf("%s.error", file);
    char *side = fr_asprintf("%s.sha256", file);
    unlink(file);
    unlink(meta);
    unlink(errf);
    unlink(side);
    free(meta);
    free(errf);
    free(side);
}

void
fr_outbox_record_failure(const char *queued, int attempts, const char *why)
{
    char *errf = fr_asprintf("%s.error", queued), *old = NULL;
    size_t len;
    int before = fr_read_file(errf, &old, &len, NULL) == FR_OK ? atoi(old) : 0;
    free(old);
    /* HTTP attempts, all of them: the first upload's and every retry's */
    char *text = fr_asprintf("%d %s\n", before + attempts, why);
    if (fr_write_file_atomic(errf, text, strlen(text), NULL) != FR_OK)
        fr_log(FR_LOG_WARN, "upload", "%s: cannot record the failed attempt", errf);
    free(text);
    free(errf);
}

int
fr_outbox_flush_stats(const struct fr_upload_config *c, struct fr_outbox_stats *st,
                      struct fr_err *err)
{
    memset(st, 0, sizeof *st);
    struct fr_outbox_item *items;
    size_t n;
    int rc = fr_outbox_list(c->outbox, &items, &n, err);
    for (size_t i = 0; rc == FR_OK && i < n; i++) {
        if (c->erased != NULL &&
            fr_bundle_holds_erased(items[i].file, c->erased, c->erased_ud, NULL, 0)) {
            fr_log(FR_LOG_WARN, "upload",
                   "%s holds an erased conversation: dropped from the outbox, not sent",
                   items[i].file);
            outbox_remove(items[i].file);
            continue;
        }
        const struct fr_upload_target *t = fr_upload_target_find(c, items[i].target);
        struct fr_err e2 = {0};
        struct fr_upload_result res = {0};
        int urc = t ? fr_upload_file(t, items[i].file, NULL, NULL, &res, &e2)
                    : fr_err_set(&e2, FR_E_CONFIG, "no upload target named %s", items[i].target);
        st->retries += res.attempts > 1 ? (size_t)res.attempts - 1 : 0;
        if (urc == FR_OK) {
            outbox_remove(items[i].file); /* only after a 2xx */
            st->sent++;
        } else {
            st->failed++;
            if (t == NULL)
                st->failed_config++;
            else if (res.status > 0)
                st->failed_http++;
            else
                st->failed_transport++;
            fr_outbox_record_failure(items[i].file, res.attempts > 0 ? res.attempts : 1, e2.msg);
        }
    }
    fr_outbox_items_free(items, n);
    return rc;
}

int
fr_outbox_flush(const struct fr_upload_config *c, size_t *sent, size_t *failed, struct fr_err *err)
{
    struct fr_outbox_stats st;
    int rc = fr_outbox_flush_stats(c, &st, err);
    *sent = st.sent;
    *failed = st.failed;
    return rc;
}

int
fr_outbox_drop(const char *outbox, const char *name, struct fr_err *err)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    char *file = fr_asprintf("%s/%s", outbox, base);
    if (access(file, F_OK) != 0) {
        free(file);
        return fr_err_set(err, FR_E_NOTFOUND, "outbox %s has no %s", outbox, base);
    }
    outbox_remove(file);
    free(file);
    return FR_OK;
}

int
fr_outbox_drop_erased(const char *outbox, bool (*erased)(void *ud, const char *conv_id), void *ud,
                      size_t *removed, struct fr_err *err)
{
    struct fr_outbox_item *items;
    size_t n;
    int rc = fr_outbox_list(outbox, &items, &n, err);
    for (size_t i = 0; rc == FR_OK && i < n; i++)
        if (fr_bundle_holds_erased(items[i].file, erased, ud, NULL, 0)) {
            outbox_remove(items[i].file); /* the bundle and its records */
            (*removed)++;
        }
    fr_outbox_items_free(items, n);
    return rc;
}

int
fr_erase_copies(const char *bundle_dir, const char *upload_config,
                bool (*erased)(void *ud, const char *conv_id), void *ud,
                struct fr_erased_copies *out, struct fr_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = fr_bundles_erase(bundle_dir, erased, ud, &out->bundles, err);
    if (rc != FR_OK || upload_config == NULL || upload_config[0] == '\0')
        return rc;
    struct fr_upload_config uc;
    rc = fr_upload_config_load(upload_config, &uc, err);
    if (rc != FR_OK)
        return rc;
    snprintf(out->outbox, sizeof out->outbox, "%s", uc.outbox);
    rc = fr_outbox_drop_erased(uc.outbox, erased, ud, &out->queued, err);
    fr_upload_config_clear(&uc);
    return rc;
}
