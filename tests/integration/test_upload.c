/*
 * tests/integration/test_upload.c - bundle uploads against a real HTTP
 * server on loopback (libmicrohttpd, plain and TLS with a CA and
 * certificate generated here with OpenSSL): success, 500 then success, 429
 * with Retry-After, connection reset mid-body, a slow server hitting the
 * timeout, a final 4xx, multipart POST, TLS with an unknown CA refused and
 * accepted with it, and the outbox keeping a bundle until a 2xx.
 */
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/upload.h"

/* What the server answers, request by request: an HTTP status, or a mode. */
enum { SLOW = -1, RESET = -2 };

struct server {
    struct MHD_Daemon *d;
    int port;
    int script[8];
    int nscript;
    int retry_after; /* seconds, sent with 429/503 */
    bool retry_date; /* send it as an HTTP-date (RFC 9110) instead of seconds */
    pthread_mutex_t mu;
    int requests;
    char *last_body;
    size_t last_len;
    char idem[128];
    char method[8];
    char ctype[128];
};

struct conn {
    char *body;
    size_t len;
    int n; /* request number */
};

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)url;
    (void)version;
    struct server *s = cls;
    struct conn *k = *ctx;
    if (k == NULL) {
        k = fr_calloc(1, sizeof *k);
        pthread_mutex_lock(&s->mu);
        k->n = s->requests++;
        pthread_mutex_unlock(&s->mu);
        *ctx = k;
        return MHD_YES;
    }
    int what = k->n < s->nscript ? s->script[k->n] : 200;
    if (*upload_size > 0) {
        if (what == RESET && k->len > 0)
            return MHD_NO; /* drop the connection in the middle of the body */
        k->body = fr_realloc(k->body, k->len + *upload_size + 1);
        memcpy(k->body + k->len, upload, *upload_size);
        k->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (what == RESET)
        return MHD_NO;
    if (what == SLOW) {
        sleep(2);
        what = 200;
    }
    pthread_mutex_lock(&s->mu);
    free(s->last_body);
    s->last_body = k->body;
    s->last_len = k->len;
    k->body = NULL;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    snprintf(s->idem, sizeof s->idem, "%s", h ? h : "");
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(s->ctype, sizeof s->ctype, "%s", h ? h : "");
    snprintf(s->method, sizeof s->method, "%s", method);
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(3, "ok\n", MHD_RESPMEM_PERSISTENT);
    if ((what == 429 || what == 503) && s->retry_after > 0) {
        char ra[64];
        if (s->retry_date) {
            time_t when = time(NULL) + s->retry_after;
            struct tm tm;
            gmtime_r(&when, &tm);
            strftime(ra, sizeof ra, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        } else {
            snprintf(ra, sizeof ra, "%d", s->retry_after);
        }
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)what, r);
    MHD_destroy_response(r);
    return rc;
}

static void
done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *k = *ctx;
    if (k) {
        free(k->body);
        free(k);
        *ctx = NULL;
    }
}

static void
server_start(struct server *s, const char *cert, const char *key)
{
    pthread_mutex_init(&s->mu, NULL);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (cert)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_NOTIFY_COMPLETED, done, s,
                            cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
                            MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    assert_non_null(s->d);
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void
server_stop(struct server *s)
{
    MHD_stop_daemon(s->d);
    free(s->last_body);
    pthread_mutex_destroy(&s->mu);
}

struct ufx {
    char *dir, *file;
    char sha[65];
    char *data;
    size_t len;
};

static int
usetup(void **state)
{
    struct ufx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    f->file = t_path(f->dir, "incident-1.tar.zst");
    f->len = 300000;
    f->data = fr_malloc(f->len);
    for (size_t i = 0; i < f->len; i++)
        f->data[i] = (char)(i * 7 + i / 13);
    FILE *fp = fopen(f->file, "wb");
    fwrite(f->data, 1, f->len, fp);
    fclose(fp);
    unsigned char md[32];
    SHA256((unsigned char *)f->data, f->len, md);
    for (int i = 0; i < 32; i++)
        snprintf(f->sha + 2 * i, 3, "%02x", md[i]);
    *state = f;
    return 0;
}

static int
uteardown(void **state)
{
    struct ufx *f = *state;
    t_rmtree(f->dir);
    free(f->dir);
    free(f->file);
    free(f->data);
    free(f);
    return 0;
}

static struct fr_upload_target
target(struct server *s, const char *scheme)
{
    struct fr_upload_target t = {.name = "test",
                                 .method = FR_UPLOAD_PUT,
                                 .timeout_ms = 1000,
                                 .connect_timeout_ms = 1000,
                                 .max_attempts = 3,
                                 .backoff_base_ms = 1,
                                 .backoff_max_ms = 5000};
    t.url = fr_asprintf("%s://localhost:%d/upload/{name}", scheme, s->port);
    return t;
}

static void
test_upload_success_idempotency_and_body(void **state)
{
    struct ufx *f = *state;
    struct server s = {.nscript = 1, .script = {201}};
    server_start(&s, NULL, NULL);
    struct fr_upload_target t = target(&s, "http");
    struct fr_upload_result res;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.status, 201);
    assert_int_equal(res.attempts, 1);
    assert_string_equal(s.method, "PUT");
    assert_int_equal(s.last_len, f->len);
    assert_memory_equal(s.last_body, f->data, f->len);
    char want[100];
    snprintf(want, sizeof want, "sha256-%s", f->sha);
    assert_string_equal(s.idem, want);
    free(t.url);
    server_stop(&s);
}

static void
test_upload_retries(void **state)
{
    struct ufx *f = *state;
    struct fr_err err = {0};
    struct fr_upload_result res;
    /* 500, then success */
    struct server s = {.nscript = 2, .script = {500, 200}};
    server_start(&s, NULL, NULL);
    struct fr_upload_target t = target(&s, "http");
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.attempts, 2);
    assert_memory_equal(s.last_body, f->data, f->len);
    free(t.url);
    server_stop(&s);
    /* 429 with Retry-After: 1 is honoured (backoff alone would wait ~1 ms) */
    struct server s2 = {.nscript = 2, .script = {429, 200}, .retry_after = 1};
    server_start(&s2, NULL, NULL);
    t = target(&s2, "http");
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.attempts, 2);
    assert_true(res.seconds >= 0.9);
    free(t.url);
    server_stop(&s2);
    /* the same as an HTTP-date, two seconds ahead: waited for, not read as 0 */
    struct server s2d = {.nscript = 2, .script = {503, 200}, .retry_after = 2, .retry_date = true};
    server_start(&s2d, NULL, NULL);
    t = target(&s2d, "http");
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.attempts, 2);
    assert_true(res.seconds >= 0.9); /* a date has one-second resolution */
    free(t.url);
    server_stop(&s2d);
    /* the connection dropped in the middle of the body, then success */
    struct server s3 = {.nscript = 2, .script = {RESET, 200}};
    server_start(&s3, NULL, NULL);
    t = target(&s3, "http");
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.attempts, 2);
    assert_int_equal(s3.last_len, f->len);
    free(t.url);
    server_stop(&s3);
    /* a slow server: every try hits the timeout; the error says so */
    struct server s4 = {.nscript = 3, .script = {SLOW, SLOW, SLOW}};
    server_start(&s4, NULL, NULL);
    t = target(&s4, "http");
    t.max_attempts = 2;
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_E_IO);
    assert_int_equal(res.attempts, 2);
    assert_non_null(strstr(err.msg, "Timeout"));
    free(t.url);
    server_stop(&s4);
    /* a 4xx other than 408/429 is final: no retry, the status is named */
    struct server s5 = {.nscript = 1, .script = {403}};
    server_start(&s5, NULL, NULL);
    t = target(&s5, "http");
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_E_IO);
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(err.msg, "HTTP 403"));
    free(t.url);
    server_stop(&s5);
}

static void
test_upload_multipart_post(void **state)
{
    struct ufx *f = *state;
    struct server s = {.nscript = 1, .script = {200}};
    server_start(&s, NULL, NULL);
    struct fr_upload_target t = target(&s, "http");
    t.method = FR_UPLOAD_POST;
    struct fr_upload_result res;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_string_equal(s.method, "POST");
    assert_non_null(strstr(s.ctype, "multipart/form-data"));
    assert_true(s.last_len > f->len);
    assert_non_null(memmem(s.last_body, s.last_len, f->data, f->len));
    assert_non_null(memmem(s.last_body, s.last_len, "name=\"bundle\"", 13));
    free(t.url);
    server_stop(&s);
}

/* A self-signed certificate for localhost, acting as its own CA. */
static void
make_cert(char **cert_pem, char **key_pem)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "CA:TRUE");
    X509_add_ext(x, bc, -1);
    X509_EXTENSION_free(bc);
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long n1 = BIO_get_mem_data(b, &p);
    *cert_pem = fr_strndup(p, (size_t)n1);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    n1 = BIO_get_mem_data(b, &p);
    *key_pem = fr_strndup(p, (size_t)n1);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void
test_upload_tls_unknown_ca_refused(void **state)
{
    struct ufx *f = *state;
    assert_int_equal(MHD_is_feature_supported(MHD_FEATURE_TLS), MHD_YES);
    char *cert, *key;
    make_cert(&cert, &key);
    struct server s = {.nscript = 0};
    server_start(&s, cert, key);
    struct fr_upload_target t = target(&s, "https");
    struct fr_upload_result res;
    struct fr_err err = {0};
    /* the system CAs do not know this one: refused, and not retried */
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_E_IO);
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(err.msg, "certificate"));
    assert_int_equal(s.last_len, 0);
    /* with the CA given, it goes through */
    char *ca = t_path(f->dir, "ca.pem");
    FILE *fp = fopen(ca, "w");
    fputs(cert, fp);
    fclose(fp);
    t.ca_file = ca;
    assert_int_equal(fr_upload_file(&t, f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(s.last_len, f->len);
    free(ca);
    free(t.url);
    server_stop(&s);
    free(cert);
    free(key);
}

/* ---- S3 SigV4 against s3rver (npm, package-lock.json) on loopback ---- */

static size_t
collect_body(char *p, size_t size, size_t n, void *ud)
{
    struct {
        char *p;
        size_t n;
    } *b = ud;
    b->p = fr_realloc(b->p, b->n + size * n + 1);
    memcpy(b->p + b->n, p, size * n);
    b->n += size * n;
    return size * n;
}

static void
test_upload_s3_sigv4(void **state)
{
    struct ufx *f = *state;
    char *data = t_path(f->dir, "s3data");
    int port = 0;
    pid_t pid = t_s3rver_start(data, "incidents", &port);
    /* s3rver's account: access key id and secret S3RVER */
    setenv("FR_TEST_S3_KEY", "S3RVER", 1);
    setenv("FR_TEST_S3_SECRET", "S3RVER", 1);
    char *yaml = t_path(f->dir, "s3.yaml");
    FILE *fp = fopen(yaml, "w");
    fprintf(fp,
            "outbox: %s/outbox\ntargets:\n  - name: s3\n"
            "    url: http://127.0.0.1:%d/incidents/{name}\n"
            "    aws_sigv4: \"aws:amz:us-east-1:s3\"\n    aws_access_key_env: FR_TEST_S3_KEY\n"
            "    aws_secret_key_env: FR_TEST_S3_SECRET\n    max_attempts: 2\n",
            f->dir, port);
    fclose(fp);
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    struct fr_upload_result res;
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "s3"), f->file, NULL, NULL, &res, &err), FR_OK);
    /* read the object back (signed too) and compare byte for byte */
    CURL *h = curl_easy_init();
    char *url = fr_asprintf("http://127.0.0.1:%d/incidents/incident-1.tar.zst", port);
    struct {
        char *p;
        size_t n;
    } body = {NULL, 0};
    struct curl_slist *hl = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(h, CURLOPT_USERPWD, "S3RVER:S3RVER");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    assert_int_equal(body.n, f->len);
    assert_memory_equal(body.p, f->data, f->len);
    free(body.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    free(url);
    fr_upload_config_clear(&c);
    /* an access key the server does not know: refused, named, not retried */
    setenv("FR_TEST_S3_KEY", "NOBODY", 1);
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "s3"), f->file, NULL, NULL, &res, &err), FR_E_IO);
    assert_non_null(strstr(err.msg, "HTTP 403"));
    assert_int_equal(res.attempts, 1);
    fr_upload_config_clear(&c);
    t_s3rver_stop(pid);
    free(yaml);
    free(data);
}

static void
test_outbox_keeps_until_2xx(void **state)
{
    struct ufx *f = *state;
    struct server s = {.nscript = 1, .script = {503}};
    server_start(&s, NULL, NULL);
    char *yaml = t_path(f->dir, "upload.yaml"), *outbox = t_path(f->dir, "outbox");
    FILE *fp = fopen(yaml, "w");
    fprintf(fp,
            "outbox: %s\ntargets:\n  - name: loop\n    url: http://127.0.0.1:%d/u/{name}\n"
            "    max_attempts: 1\n    headers:\n      - {name: X-Token, value_env: "
            "FR_TEST_UPLOAD_TOKEN}\n"
            "  - name: plain\n    url: http://127.0.0.1:%d/u/{name}\n    max_attempts: 1\n"
            "  - name: filed\n    url: http://127.0.0.1:%d/u/{name}\n    max_attempts: 1\n"
            "    headers:\n      - {name: X-Token, value_file: %s/token}\n",
            outbox, s.port, s.port, s.port, f->dir);
    fclose(fp);
    setenv("FR_TEST_UPLOAD_TOKEN", "t0k", 1);
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, f->file, "loop", &err), FR_OK);
    size_t sent, failed;
    /* 503: it stays, with the attempt and the error recorded */
    assert_int_equal(fr_outbox_flush(&c, &sent, &failed, &err), FR_OK);
    assert_int_equal(sent, 0);
    assert_int_equal(failed, 1);
    struct fr_outbox_item *items;
    size_t n;
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].target, "loop");
    assert_int_equal(items[0].attempts, 1);
    assert_non_null(strstr(items[0].last_error, "HTTP 503"));
    fr_outbox_items_free(items, n);
    /* a fresh load (as after a restart) finds it and sends it: then it is gone */
    fr_upload_config_clear(&c);
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_flush(&c, &sent, &failed, &err), FR_OK);
    assert_int_equal(sent, 1);
    assert_int_equal(s.last_len, f->len);
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 0);
    fr_outbox_items_free(items, n);
    /* a missing secret is read when its target uploads: it fails that target's uploads,
       naming the variable, and no other target's (nor the configuration) */
    unsetenv("FR_TEST_UPLOAD_TOKEN");
    fr_upload_config_clear(&c);
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, f->file, "loop", &err), FR_OK);
    assert_int_equal(fr_outbox_flush(&c, &sent, &failed, &err), FR_OK);
    assert_int_equal(failed, 1);
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(items[0].last_error, "FR_TEST_UPLOAD_TOKEN is not set"));
    fr_outbox_items_free(items, n);
    struct fr_upload_result res;
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "plain"), f->file, NULL, NULL, &res, &err), FR_OK);
    /* a value_file readable by others is refused like a key file, when it is used */
    char *tok = t_path(f->dir, "token");
    FILE *tf = fopen(tok, "w");
    fputs("s3cr3t-t0ken\n", tf);
    fclose(tf);
    chmod(tok, 0644);
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "filed"), f->file, NULL, NULL, &res, &err),
        FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(strstr(err.msg, "s3cr3t"));
    chmod(tok, 0600);
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "filed"), f->file, NULL, NULL, &res, &err), FR_OK);
    free(tok);
    fr_upload_config_clear(&c);
    free(yaml);
    free(outbox);
    server_stop(&s);
}

/* A full outbox refuses a bundle with a clear error (the bundle stays where
 * it is); once a queued upload is sent or dropped, it takes it. An
 * unreachable target names the curl error and keeps the bundle queued. */
static void
test_outbox_full_and_unreachable_target(void **state)
{
    struct ufx *f = *state;
    char *yaml = t_path(f->dir, "upload.yaml"), *outbox = t_path(f->dir, "outbox");
    FILE *fp = fopen(yaml, "w");
    /* port 1 on loopback: nothing listens there */
    fprintf(fp,
            "outbox: %s\noutbox_max_bytes: %zu\ntargets:\n  - name: down\n"
            "    url: http://127.0.0.1:1/u/{name}\n    max_attempts: 2\n"
            "    backoff_base_ms: 10\n",
            outbox, f->len + f->len / 2);
    fclose(fp);
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, f->file, "down", &err), FR_OK);
    /* the second bundle would pass the limit */
    char *second = t_path(f->dir, "second.tar.zst");
    fp = fopen(second, "w");
    fwrite(f->data, 1, f->len, fp);
    fclose(fp);
    assert_int_equal(fr_outbox_add(&c, second, "down", &err), FR_E_LIMIT);
    assert_non_null(strstr(err.msg, "is full"));
    assert_non_null(strstr(err.msg, "outbox_max_bytes"));
    assert_non_null(strstr(err.msg, second)); /* where the bundle still is */
    assert_int_equal(access(second, R_OK), 0);
    /* the target is unreachable: the error names it, the upload stays queued */
    size_t sent, failed;
    assert_int_equal(fr_outbox_flush(&c, &sent, &failed, &err), FR_OK);
    assert_int_equal(sent, 0);
    assert_int_equal(failed, 1);
    struct fr_outbox_item *items;
    size_t n;
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 1);
    if (strstr(items[0].last_error, "onnect") == NULL)
        fail_msg("the error does not say the target could not be reached: %s", items[0].last_error);
    /* room again: dropped (or sent), the outbox takes the next one */
    const char *name = strrchr(items[0].file, '/');
    assert_int_equal(fr_outbox_drop(c.outbox, name ? name + 1 : items[0].file, &err), FR_OK);
    fr_outbox_items_free(items, n);
    assert_int_equal(fr_outbox_add(&c, second, "down", &err), FR_OK);
    fr_upload_config_clear(&c);
    free(second);
    free(yaml);
    free(outbox);
}

/*
 * The file uploader (file:///dir/{name}): the same bytes land under the
 * target's name with no temporary file left; a missing directory is one
 * attempt, not retried; a scheme no uploader takes is a config error.
 */
static void
test_upload_file_target(void **state)
{
    struct ufx *f = *state;
    char *dest = t_path(f->dir, "share");
    assert_int_equal(mkdir(dest, 0700), 0);
    char *yaml = t_path(f->dir, "upload.yaml"), *outbox = t_path(f->dir, "outbox");
    FILE *fp = fopen(yaml, "w");
    fprintf(fp,
            "outbox: %s\ntargets:\n  - name: share\n    url: file://%s/{name}\n"
            "  - name: gone\n    url: file://%s/nope/{name}\n    max_attempts: 5\n"
            "    backoff_base_ms: 1\n",
            outbox, dest, dest);
    fclose(fp);
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    struct fr_upload_result res;
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "share"), f->file, NULL, NULL, &res, &err), FR_OK);
    assert_int_equal(res.attempts, 1);
    assert_int_equal(res.bytes, f->len);
    char *copy = t_path(dest, "incident-1.tar.zst"), *data;
    size_t len;
    assert_int_equal(fr_read_file(copy, &data, &len, NULL), FR_OK);
    assert_int_equal(len, f->len);
    assert_memory_equal(data, f->data, len);
    free(data);
    char *ls = fr_asprintf("ls -A %s | wc -l", dest), *out = NULL;
    t_run(ls, &out, NULL);
    assert_int_equal(atoi(out), 1); /* no temporary file beside it */
    free(out);
    free(ls);
    memset(&err, 0, sizeof err);
    assert_int_equal(
        fr_upload_file(fr_upload_target_find(&c, "gone"), f->file, NULL, NULL, &res, &err),
        FR_E_IO);
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(err.msg, "directory does not exist"));
    fr_upload_config_clear(&c);
    fp = fopen(yaml, "w");
    fprintf(fp, "outbox: %s\ntargets:\n  - name: x\n    url: ftp://example/{name}\n", outbox);
    fclose(fp);
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "no uploader takes this scheme"));
    assert_non_null(strstr(err.msg, "upload.yaml:3"));
    free(copy);
    free(dest);
    free(yaml);
    free(outbox);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_success_idempotency_and_body, usetup,
                                        uteardown),
        cmocka_unit_test_setup_teardown(test_upload_retries, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_upload_multipart_post, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_upload_tls_unknown_ca_refused, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_outbox_keeps_until_2xx, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_outbox_full_and_unreachable_target, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_upload_s3_sigv4, usetup, uteardown),
        cmocka_unit_test_setup_teardown(test_upload_file_target, usetup, uteardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
