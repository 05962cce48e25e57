/*
 * core/crypto.c - key files, keyed hash tokens (HMAC-SHA256) and sealing of
 * raw payloads (AES-256-GCM), all through OpenSSL.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/mem.h"

static int
key_create(const char *path, unsigned char key[FR_KEY_LEN], struct fr_err *err)
{
    int rc = fr_mkdirs_for(path, 0700, err);
    if (rc != FR_OK)
        return rc;
    if (RAND_bytes(key, FR_KEY_LEN) != 1)
        return fr_err_set(err, FR_E_IO, "key file %s: no random bytes from OpenSSL", path);
    char text[2 * FR_KEY_LEN + 2];
    fr_hex_encode(key, FR_KEY_LEN, text);
    text[2 * FR_KEY_LEN] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fr_err_set(err, FR_E_IO, "key file %s: cannot create: %s", path, strerror(errno));
    ssize_t w = write(fd, text, sizeof text - 1);
    int bad = w != (ssize_t)(sizeof text - 1) || fsync(fd) != 0;
    close(fd);
    OPENSSL_cleanse(text, sizeof text);
    if (bad) {
        unlink(path);
        return fr_err_set(err, FR_E_IO, "key file %s: cannot write", path);
    }
    return FR_OK;
}

int
fr_key_load(const char *path, bool create, unsigned char key[FR_KEY_LEN], bool *created,
            struct fr_err *err)
{
    if (created != NULL)
        *created = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        int rc = key_create(path, key, err);
        if (rc == FR_OK && created != NULL)
            *created = true;
        return rc;
    }
    if (fd < 0)
        return fr_err_set(err, FR_E_IO, "key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fr_err_set(err, FR_E_IO, "key file %s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return fr_err_set(err, FR_E_CONFIG,
                          "key file %s: readable by group or others (mode %03o); "
                          "run chmod 600 %s",
                          path, (unsigned)(st.st_mode & 0777), path);
    }
    char text[2 * FR_KEY_LEN + 8];
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    int rc = FR_OK;
    if (n != 2 * FR_KEY_LEN) {
        rc = fr_err_set(err, FR_E_CONFIG, "key file %s: expected %d hex digits", path,
                        2 * FR_KEY_LEN);
    } else {
        for (int i = 0; i < FR_KEY_LEN && rc == FR_OK; i++) {
            int hi = fr_hex_digit(text[2 * i]), lo = fr_hex_digit(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                rc = fr_err_set(err, FR_E_CONFIG, "key file %s: expected %d hex digits", path,
                                2 * FR_KEY_LEN);
            else
                key[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

void
fr_hmac_token(const unsigned char key[FR_KEY_LEN], const void *data, size_t len,
              char out[FR_TOKEN_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, FR_KEY_LEN, data, len, md, &mdlen);
    memcpy(out, "hmac:", 5);
    fr_hex_encode(md, 8, out + 5);
}

#define SEAL_MAGIC_V1 "FRR1" /* no associated data (read, never written) */
#define SEAL_MAGIC "FRR2"    /* bound to the caller's associated data */
#define SEAL_KEYID 8
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_HDR (4 + SEAL_KEYID + SEAL_NONCE + SEAL_TAG)

static void
key_id(const unsigned char key[FR_KEY_LEN], unsigned char id[SEAL_KEYID])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(key, FR_KEY_LEN, md);
    memcpy(id, md, SEAL_KEYID);
}

/* GCM's associated data: the magic and key id, then the caller's (where the blob belongs). */
static int
seal_aad(EVP_CIPHER_CTX *c, bool enc, const unsigned char *hdr, const void *aad, size_t aadlen)
{
    int n;
    int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
        enc ? EVP_EncryptUpdate : EVP_DecryptUpdate;
    if (update(c, NULL, &n, hdr, 4 + SEAL_KEYID) != 1)
        return 0;
    return aadlen == 0 || update(c, NULL, &n, aad, (int)aadlen) == 1;
}

int
fr_seal(const unsigned char key[FR_KEY_LEN], const void *aad, size_t aadlen, const void *pt,
        size_t len, unsigned char **out, size_t *outlen, struct fr_err *err)
{
    *out = NULL;
    if (len > INT32_MAX || aadlen > INT32_MAX)
        return fr_err_set(err, FR_E_LIMIT, "seal: payload too large");
    unsigned char *buf = fr_malloc(SEAL_HDR + len);
    memcpy(buf, SEAL_MAGIC, 4);
    key_id(key, buf + 4);
    unsigned char *nonce = buf + 4 + SEAL_KEYID, *tag = nonce + SEAL_NONCE, *ct = tag + SEAL_TAG;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c != NULL && RAND_bytes(nonce, SEAL_NONCE) == 1 &&
                    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
                    seal_aad(c, true, buf, aad, aadlen) &&
                    EVP_EncryptUpdate(c, ct, &n, pt, (int)len) == 1 &&
                    EVP_EncryptFinal_ex(c, ct + n, &n) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        free(buf);
        return fr_err_set(err, FR_E_INVALID, "seal: AES-256-GCM encryption failed");
    }
    *out = buf;
    *outlen = SEAL_HDR + len;
    return FR_OK;
}

int
fr_unseal(const unsigned char key[FR_KEY_LEN], const void *aad, size_t aadlen, const void *sealed,
          size_t len, unsigned char **out, size_t *outlen, struct fr_err *err)
{
    *out = NULL;
    const unsigned char *b = sealed;
    bool v1 = len >= SEAL_HDR && memcmp(b, SEAL_MAGIC_V1, 4) == 0;
    if (len < SEAL_HDR || (!v1 && memcmp(b, SEAL_MAGIC, 4) != 0))
        return fr_err_set(err, FR_E_VALUE, "sealed data: not a sealed record");
    unsigned char id[SEAL_KEYID];
    key_id(key, id);
    if (memcmp(id, b + 4, SEAL_KEYID) != 0)
        return fr_err_set(err, FR_E_VALUE,
                          "sealed data: sealed with a different key than the one given");
    const unsigned char *nonce = b + 4 + SEAL_KEYID, *tag = nonce + SEAL_NONCE,
                        *ct = tag + SEAL_TAG;
    size_t ctlen = len - SEAL_HDR;
    unsigned char *pt = fr_malloc(ctlen + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    int ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
             (v1 || seal_aad(c, false, b, aad, aadlen)) &&
             EVP_DecryptUpdate(c, pt, &n, ct, (int)ctlen) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, (void *)tag) == 1 &&
             EVP_DecryptFinal_ex(c, pt + n, &m) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(pt, ctlen);
        free(pt);
        return fr_err_set(err, FR_E_VALUE,
                          "sealed data: authentication failed (altered, or not where it was "
                          "sealed for)");
    }
    pt[ctlen] = '\0';
    *out = pt;
    *outlen = ctlen;
    return FR_OK;
}

size_t
fr_raw_aad(const char *conv_id, const char *event_id, int64_t ts_ms, const char *kind, char *out,
           size_t cap)
{
    int n = snprintf(out, cap, "raw\x1f%s\x1f%s\x1f%lld\x1f%s", conv_id ? conv_id : "",
                     event_id ? event_id : "", (long long)ts_ms, kind ? kind : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

char *
fr_key_path(const char *db, const char *given, const char *env, const char *name)
{
    if (given != NULL && *given)
        return fr_strdup(given);
    const char *e = env ? getenv(env) : NULL;
    if (e != NULL && *e)
        return fr_strdup(e);
    char *copy = fr_strdup(db);
    char *path = fr_asprintf("%s/keys/%s", dirname(copy), name);
    free(copy);
    return path;
}

void
fr_key_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}
