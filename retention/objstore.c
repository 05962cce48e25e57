/*
 * retention/objstore.c - see objstore.h. Objects are addressed path-style
 * (<url>/<name>), which S3, MinIO, Ceph RGW and s3rver all accept.
 */
#include "retention/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "retention/curl_dl.h"

#define OBJ_CONNECT_MS 10000L
#define OBJ_LOW_SPEED_BYTES 1024L /* slower than 1 KiB/s for 60 s: the transfer failed */
#define OBJ_LOW_SPEED_S 60L
#define OBJ_ATTEMPTS 3

struct body {
    char buf[512]; /* the start of an error response (S3: <Error><Code>…) */
    size_t n;
    FILE *fp; /* GET: where the object goes */
    EVP_MD_CTX *sha;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t len = size * n;
    if (b->fp != NULL) {
        EVP_DigestUpdate(b->sha, p, len);
        return fwrite(p, 1, len, b->fp);
    }
    size_t take = len < sizeof b->buf - 1 - b->n ? len : sizeof b->buf - 1 - b->n;
    memcpy(b->buf + b->n, p, take);
    b->n += take;
    b->buf[b->n] = '\0';
    return len;
}

/* The S3 error code of a response body (<Code>…</Code>), or "". */
static void
s3_code(const char *body, char *out, size_t cap)
{
    out[0] = '\0';
    const char *a = strstr(body, "<Code>");
    const char *z = a ? strstr(a, "</Code>") : NULL;
    if (a && z && (size_t)(z - a - 6) < cap)
        snprintf(out, cap, " (%.*s)", (int)(z - a - 6), a + 6);
}

/* One request; *status gets the HTTP status (0: none). The credentials never reach a log. */
static int
obj_request(const struct fr_objstore *o, const char *method, const char *name, FILE *upload,
            curl_off_t upload_size, struct body *b, long *status, struct fr_err *err)
{
    *status = 0;
    int lrc = fr_curl_load(err); /* opened now, not at every start (core/dl.h) */
    if (lrc != FR_OK)
        return lrc;
    char *url = fr_asprintf("%s/%s", o->url, name);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char *userpwd = NULL;
    int rc = FR_OK;
    if (c == NULL) {
        free(url);
        return fr_err_set(err, FR_E_IO, "bucket: cannot start a transfer");
    }
    if (o->access_key_env != NULL && o->access_key_env[0] != '\0') {
        const char *ak = getenv(o->access_key_env);
        const char *sk = o->secret_key_env ? getenv(o->secret_key_env) : NULL;
        if (ak == NULL || sk == NULL) {
            rc = fr_err_set(err, FR_E_CONFIG,
                            "bucket %s: the credentials are not set: environment variables %s "
                            "and %s (bucket.access_key_env, bucket.secret_key_env)",
                            o->url, o->access_key_env,
                            o->secret_key_env ? o->secret_key_env : "(none)");
            goto out;
        }
        userpwd = fr_asprintf("%s:%s", ak, sk);
        char sig[128];
        snprintf(sig, sizeof sig, "aws:amz:%s:s3",
                 o->region && o->region[0] ? o->region : "us-east-1");
        /* S3 wants the payload hash header; the body is not part of the signature */
        hl = curl_slist_append(hl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sig);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (upload != NULL) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, upload_size);
        hl = curl_slist_append(hl, "Content-Type: application/octet-stream");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, OBJ_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, OBJ_LOW_SPEED_BYTES);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, OBJ_LOW_SPEED_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (o->ca_file != NULL && o->ca_file[0] != '\0')
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    CURLcode cr = CURLE_OK;
    /* a throttled or briefly failing endpoint (S3's 503 SlowDown, a dropped connection) is
       asked again twice, 0.2 s then 0.8 s later; what will not change is not */
    for (int attempt = 0; attempt < OBJ_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            usleep((useconds_t)(200000 << (2 * (attempt - 1))));
            if (upload != NULL)
                rewind(upload);
            if (b->fp != NULL) {
                fflush(b->fp);
                if (ftruncate(fileno(b->fp), 0) != 0)
                    break;
                rewind(b->fp);
                EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL);
            }
            b->n = 0;
            b->buf[0] = '\0';
        }
        *status = 0;
        cr = curl_easy_perform(c);
        if (cr == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        bool again = cr == CURLE_OK
                         ? *status == 408 || *status == 429 || *status >= 500
                         : cr != CURLE_URL_MALFORMAT && cr != CURLE_UNSUPPORTED_PROTOCOL &&
                               cr != CURLE_PEER_FAILED_VERIFICATION &&
                               cr != CURLE_SSL_CACERT_BADFILE && cr != CURLE_LOGIN_DENIED &&
                               cr != CURLE_WRITE_ERROR && cr != CURLE_READ_ERROR;
        if (!again)
            break;
    }
    if (cr != CURLE_OK)
        rc = fr_err_set(err, FR_E_IO, "bucket %s %s/%s: %s (tried %d times)", method, o->url, name,
                        curl_easy_strerror(cr), OBJ_ATTEMPTS);
out:
    if (userpwd != NULL) {
        OPENSSL_cleanse(userpwd, strlen(userpwd));
        free(userpwd);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
    return rc;
}

static int
status_error(const struct fr_objstore *o, const char *method, const char *name, long status,
             const struct body *b, struct fr_err *err)
{
    char code[96];
    s3_code(b->fp ? "" : b->buf, code, sizeof code);
    /* only a GET's 404 means "no such object"; a PUT's is a bucket that does not exist */
    bool gone = status == 404 && strcmp(method, "GET") == 0;
    return fr_err_set(err, gone ? FR_E_NOTFOUND : FR_E_IO, "bucket %s %s/%s: HTTP %ld%s", method,
                      o->url, name, status, code);
}

int
fr_objstore_put(const struct fr_objstore *o, const char *name, const char *file, struct fr_err *err)
{
    FILE *fp = fopen(file, "rb");
    struct stat sb;
    if (fp == NULL || fstat(fileno(fp), &sb) != 0) {
        int rc = fr_err_set(err, FR_E_IO, "bucket PUT %s: cannot read %s: %s", name, file,
                            strerror(errno));
        if (fp)
            fclose(fp);
        return rc;
    }
    struct body b = {0};
    long status;
    int rc = obj_request(o, "PUT", name, fp, (curl_off_t)sb.st_size, &b, &status, err);
    fclose(fp);
    if (rc == FR_OK && (status < 200 || status >= 300))
        rc = status_error(o, "PUT", name, status, &b, err);
    return rc;
}

int
fr_objstore_delete(const struct fr_objstore *o, const char *name, struct fr_err *err)
{
    struct body b = {0};
    long status;
    int rc = obj_request(o, "DELETE", name, NULL, 0, &b, &status, err);
    if (rc == FR_OK && status != 404 && (status < 200 || status >= 300))
        rc = status_error(o, "DELETE", name, status, &b, err);
    return rc;
}

int
fr_objstore_get(const struct fr_objstore *o, const char *name, const char *file, const char *sha256,
                struct fr_err *err)
{
    /* a name of its own (readers on several threads may fetch the same segment at once);
       ".seg.tmp": one left by a kill is removed by the next reconciliation */
    char *tmp = fr_asprintf("%s.XXXXXX.seg.tmp", file);
    int fd = mkstemps(tmp, 8);
    struct body b = {0};
    b.fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (b.fp == NULL) {
        int rc = fr_err_set(err, FR_E_IO, "bucket GET %s: cannot write %s: %s", name, tmp,
                            strerror(errno));
        if (fd >= 0)
            close(fd);
        free(tmp);
        return rc;
    }
    b.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(b.sha, EVP_sha256(), NULL);
    long status;
    int rc = obj_request(o, "GET", name, NULL, 0, &b, &status, err);
    if (rc == FR_OK && (status < 200 || status >= 300)) {
        struct body e = {0}; /* the error body went to the file: not worth reading back */
        rc = status_error(o, "GET", name, status, &e, err);
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(b.sha, md, &mdlen);
    EVP_MD_CTX_free(b.sha);
    char hex[65];
    fr_hex_encode(md, 32, hex);
    if (rc == FR_OK && sha256 != NULL && sha256[0] != '\0' && strcmp(hex, sha256) != 0)
        rc = fr_err_set(err, FR_E_AUTH,
                        "bucket GET %s/%s: the object's SHA-256 is %.16s…, not the %.16s… "
                        "uploaded: it was altered or replaced in the bucket",
                        o->url, name, hex, sha256);
    if (fflush(b.fp) != 0 || fsync(fileno(b.fp)) != 0) {
        if (rc == FR_OK)
            rc = fr_err_set(err, FR_E_IO, "bucket GET %s: cannot write %s: %s", name, tmp,
                            strerror(errno));
    }
    fclose(b.fp);
    if (rc == FR_OK && rename(tmp, file) != 0)
        rc = fr_err_set(err, FR_E_IO, "bucket GET %s: cannot rename into %s: %s", name, file,
                        strerror(errno));
    if (rc != FR_OK)
        unlink(tmp);
    else {
        char *dir = fr_strdup(file);
        char *slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            fr_fsync_dir(dir);
        }
        free(dir);
    }
    free(tmp);
    return rc;
}

int
fr_objstore_file_sha256(const char *path, char out[65], struct fr_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return fr_err_set(err, FR_E_IO, "cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    unsigned char buf[65536], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        EVP_DigestUpdate(c, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    if (bad)
        return fr_err_set(err, FR_E_IO, "cannot read %s", path);
    fr_hex_encode(md, 32, out);
    return FR_OK;
}

/* ---- the BUCKET file ---- */

static char *
str_or_null(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? fr_strdup(s) : NULL;
}

int
fr_objstate_load(const char *dir, struct fr_objstate *s, struct fr_err *err)
{
    memset(s, 0, sizeof *s);
    char *path = fr_asprintf("%s/BUCKET", dir);
    if (access(path, F_OK) != 0) {
        free(path);
        s->objects = json_object();
        return FR_OK;
    }
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j == NULL || !json_is_object(json_object_get(j, "objects"))) {
        int rc = fr_err_set(err, FR_E_SYNTAX, "%s: line %d: %s", path, je.line,
                            j ? "no \"objects\"" : je.text);
        json_decref(j);
        free(path);
        s->objects = json_object();
        return rc;
    }
    s->cfg.url = str_or_null(j, "url");
    s->cfg.region = str_or_null(j, "region");
    s->cfg.access_key_env = str_or_null(j, "access_key_env");
    s->cfg.secret_key_env = str_or_null(j, "secret_key_env");
    s->cfg.ca_file = str_or_null(j, "ca_file");
    s->objects = json_incref(json_object_get(j, "objects"));
    json_decref(j);
    free(path);
    return FR_OK;
}

int
fr_objstate_save(const char *dir, const struct fr_objstate *s, struct fr_err *err)
{
    json_t *j =
        json_pack("{s:i,s:s?,s:s?,s:s?,s:s?,s:s?,s:O}", "version", 1, "url", s->cfg.url, "region",
                  s->cfg.region, "access_key_env", s->cfg.access_key_env, "secret_key_env",
                  s->cfg.secret_key_env, "ca_file", s->cfg.ca_file, "objects", s->objects);
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(j);
    char *path = fr_asprintf("%s/BUCKET", dir);
    int rc = fr_write_file_atomic(path, text, strlen(text), err);
    free(path);
    free(text);
    return rc;
}

void
fr_objstate_clear(struct fr_objstate *s)
{
    free(s->cfg.url);
    free(s->cfg.region);
    free(s->cfg.access_key_env);
    free(s->cfg.secret_key_env);
    free(s->cfg.ca_file);
    json_decref(s->objects);
    memset(s, 0, sizeof *s);
}

bool
fr_objstore_stamp(const char *path, char *buf, size_t cap, int64_t *mtime_ms)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return false;
    snprintf(buf, cap, "%lld:%llu:%lld.%09ld", (long long)sb.st_size, (unsigned long long)sb.st_ino,
             (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
    if (mtime_ms != NULL)
        *mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    return true;
}

/* path's folder and file name (the caller frees *dir). */
static const char *
split(const char *path, char **dir)
{
    const char *slash = strrchr(path, '/');
    *dir = slash ? fr_strndup(path, (size_t)(slash - path)) : fr_strdup(".");
    return slash ? slash + 1 : path;
}

static json_t *
listed(const struct fr_objstate *s, const char *name)
{
    return s->cfg.url != NULL ? json_object_get(s->objects, name) : NULL;
}

/*
 * The BUCKET file as last read, per process: readers ask for every segment
 * of a listing or a scrub pass, so the file is parsed again only when it
 * changed (its stamp: a save renames a new file in).
 */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *dir;
    char stamp[96];
    struct fr_objstate s;
    bool valid;
} cache;

static void
cfg_free(struct fr_objstore *c)
{
    free(c->url);
    free(c->region);
    free(c->access_key_env);
    free(c->secret_key_env);
    free(c->ca_file);
    memset(c, 0, sizeof *c);
}

/*
 * Whether dir's BUCKET lists name; cfg (if given) gets a copy of its bucket
 * (free with cfg_free), sha (if given) the SHA-256 uploaded ("" when none).
 */
static bool
lookup(const char *dir, const char *name, struct fr_objstore *cfg, char sha[65])
{
    char *path = fr_asprintf("%s/BUCKET", dir), stamp[96];
    bool exists = fr_objstore_stamp(path, stamp, sizeof stamp, NULL);
    free(path);
    if (!exists)
        return false;
    pthread_mutex_lock(&cache_mu);
    if (!cache.valid || strcmp(cache.dir, dir) != 0 || strcmp(cache.stamp, stamp) != 0) {
        if (cache.dir != NULL)
            fr_objstate_clear(&cache.s);
        free(cache.dir);
        cache.valid = fr_objstate_load(dir, &cache.s, NULL) == FR_OK;
        cache.dir = fr_strdup(dir);
        snprintf(cache.stamp, sizeof cache.stamp, "%s", stamp);
    }
    json_t *o = cache.valid ? listed(&cache.s, name) : NULL;
    if (o != NULL && sha != NULL) {
        const char *v = json_string_value(json_object_get(o, "sha256"));
        snprintf(sha, 65, "%s", v ? v : "");
    }
    if (o != NULL && cfg != NULL) {
        const struct fr_objstore *c = &cache.s.cfg;
        *cfg = (struct fr_objstore){fr_strdup(c->url), c->region ? fr_strdup(c->region) : NULL,
                                    c->access_key_env ? fr_strdup(c->access_key_env) : NULL,
                                    c->secret_key_env ? fr_strdup(c->secret_key_env) : NULL,
                                    c->ca_file ? fr_strdup(c->ca_file) : NULL};
    }
    pthread_mutex_unlock(&cache_mu);
    return o != NULL;
}

bool
fr_objstore_remote(const char *path)
{
    char *dir;
    const char *name = split(path, &dir);
    bool yes = lookup(dir, name, NULL, NULL);
    free(dir);
    return yes;
}

int
fr_objstore_fetch(const char *path, struct fr_err *err)
{
    char *dir;
    const char *name = split(path, &dir);
    struct fr_objstore cfg;
    char sha[65];
    int rc = FR_E_NOTFOUND;
    if (lookup(dir, name, &cfg, sha)) {
        fr_log(FR_LOG_INFO, "retention", "fetching %s from %s", name, cfg.url);
        rc = fr_objstore_get(&cfg, name, path, sha, err);
        cfg_free(&cfg);
    }
    free(dir);
    return rc;
}

int
fr_objstore_repair(const char *path, struct fr_err *err)
{
    char *dir;
    const char *name = split(path, &dir);
    struct fr_objstore cfg = {0};
    char want[65] = "", have[65];
    struct fr_err lerr = {0};
    int rc = FR_E_NOTFOUND;
    bool listed_here = lookup(dir, name, &cfg, want);
    if (listed_here && want[0] != '\0' && fr_objstore_file_sha256(path, have, &lerr) == FR_OK &&
        strcmp(have, want) != 0) {
        char *q = fr_asprintf("%s/quarantine", dir);
        char *aside = fr_asprintf("%s/%s.%lld", q, name, (long long)time(NULL));
        for (int k = 1; access(aside, F_OK) == 0; k++) { /* one bad copy never replaces another */
            free(aside);
            aside = fr_asprintf("%s/%s.%lld-%d", q, name, (long long)time(NULL), k);
        }
        if ((mkdir(q, 0700) != 0 && errno != EEXIST) || rename(path, aside) != 0) {
            rc = fr_err_set(err, FR_E_IO, "cannot move %s aside: %s", path, strerror(errno));
        } else {
            fr_log(FR_LOG_WARN, "retention",
                   "%s: its bytes are not those uploaded to %s (moved to %s); fetching the "
                   "bucket's copy",
                   path, cfg.url, aside);
            rc = fr_objstore_get(&cfg, name, path, want, err);
            if (rc != FR_OK)
                rename(aside, path); /* nothing better at hand: the bad file stays named */
        }
        free(aside);
        free(q);
    }
    if (listed_here)
        cfg_free(&cfg);
    free(dir);
    return rc;
}
