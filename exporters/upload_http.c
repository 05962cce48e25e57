/*
 * exporters/upload_http.c - the HTTP(S) uploader (libcurl): PUT (a
 * pre-signed object-store URL) or POST multipart/form-data, optional S3
 * SigV4 signing, TLS verified by default, the Idempotency-Key carrying the
 * file's SHA-256. One attempt per call; exporters/upload.c retries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "exporters/uploader.h"
#include "retention/curl_dl.h"

struct hdr_ctx {
    long retry_after_s;
};

/*
 * Retry-After is seconds or an HTTP-date (RFC 9110 10.2.3); a date in the
 * past is 0. Seconds are capped at a day, so later arithmetic cannot overflow.
 */
static long
retry_after(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        errno = 0;
        long s = strtol(v, NULL, 10);
        return errno == ERANGE || s > 86400 ? 86400 : s;
    }
    char date[128];
    snprintf(date, sizeof date, "%.*s", (int)strcspn(v, "\r\n"), v);
    time_t when = curl_getdate(date, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    return when <= now ? 0 : when - now > 86400 ? 86400 : (long)(when - now);
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    struct hdr_ctx *h = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[160];
        snprintf(v, sizeof v, "%.*s", (int)(len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1),
                 p + 12);
        h->retry_after_s = retry_after(v);
    }
    return len;
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

struct prog_ctx {
    fr_upload_progress fn;
    void *ud;
};

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    struct prog_ctx *p = ud;
    if (p->fn)
        p->fn(p->ud, (uint64_t)ulnow, (uint64_t)ultotal);
    return 0;
}

/* One curl handle for one attempt (the caller frees hl, mime and fp). */
static CURL *
http_handle(const struct fr_upload_target *t, const char *url, const char *path, const char *sha256,
            uint64_t size, struct curl_slist **hl, curl_mime **mime, FILE **fp)
{
    CURL *c = curl_easy_init();
    char idem[100];
    snprintf(idem, sizeof idem, "Idempotency-Key: sha256-%s", sha256);
    *hl = curl_slist_append(*hl, idem);
    for (size_t i = 0; i < t->nheaders; i++)
        *hl = curl_slist_append(*hl, t->headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (t->method == FR_UPLOAD_PUT) {
        *fp = fopen(path, "rb");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, *fp);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        *hl = curl_slist_append(*hl, "Content-Type: application/zstd");
    } else {
        *mime = curl_mime_init(c);
        curl_mimepart *part = curl_mime_addpart(*mime);
        curl_mime_name(part, "bundle");
        curl_mime_filedata(part, path);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, *mime);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (t->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
    if (t->client_cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, t->client_cert);
    if (t->client_key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, t->client_key);
    if (t->aws_sigv4) {
        /* S3 wants the payload hash header; the body is not part of the signature */
        *hl = curl_slist_append(*hl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, t->aws_sigv4);
        curl_easy_setopt(c, CURLOPT_USERPWD, t->aws_user);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hl);
    return c;
}

static int
http_send(const struct fr_upload_target *t, const char *url, const char *path, const char *sha256,
          uint64_t size, fr_upload_progress progress, void *ud, struct fr_upload_attempt *a)
{
    struct fr_err lerr = {0};
    if (fr_curl_load(&lerr) != FR_OK) { /* opened now, not at every start (core/dl.h) */
        snprintf(a->why, sizeof a->why, "%.*s", (int)sizeof a->why - 1, lerr.msg);
        a->retry = false;
        return FR_E_CONFIG;
    }
    struct curl_slist *hl = NULL;
    curl_mime *mime = NULL;
    FILE *fp = NULL;
    CURL *c = http_handle(t, url, path, sha256, size, &hl, &mime, &fp);
    struct hdr_ctx h = {-1};
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    struct prog_ctx pc = {progress, ud};
    if (progress) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pc);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cr = curl_easy_perform(c);
    long status = 0;
    if (cr == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_mime_free(mime);
    if (fp)
        fclose(fp);
    curl_easy_cleanup(c);
    a->status = status;
    a->retry_after_s = h.retry_after_s;
    if (cr == CURLE_OK && status >= 200 && status < 300)
        return FR_OK;
    if (cr != CURLE_OK) {
        snprintf(a->why, sizeof a->why, "%s", curl_easy_strerror(cr));
        /* a certificate the CA does not vouch for will not change on retry */
        a->retry = cr != CURLE_PEER_FAILED_VERIFICATION && cr != CURLE_SSL_CACERT_BADFILE &&
                   cr != CURLE_URL_MALFORMAT && cr != CURLE_UNSUPPORTED_PROTOCOL;
    } else {
        snprintf(a->why, sizeof a->why, "HTTP %ld", status);
        a->retry = status == 408 || status == 429 || status >= 500;
    }
    return FR_E_IO;
}

const struct fr_uploader fr_uploader_http = {
    .name = "http",
    .description = "HTTP(S) PUT or POST with libcurl, optional S3 SigV4",
    .schemes = "http,https",
    .init = NULL,
    .destroy = NULL,
    .send = http_send,
};
