/*
 * core/crypto.c - key files, keyed hash tokens (HMAC-SHA256) and sealing of
 * raw payloads (AES-256-GCM), all through OpenSSL.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"

/* Writes text to path atomically: a temporary file, fsync, then link (fails if path exists)
   or rename (replace). */
static int
key_write(const char *path, const char *text, size_t len, bool replace, bool *exists,
          struct fr_err *err)
{
    char *tmp = fr_asprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = fr_err_set(err, FR_E_IO, "key file %s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    ssize_t w = write(fd, text, len);
    int bad = w != (ssize_t)len || fsync(fd) != 0;
    close(fd);
    int rc = FR_OK;
    if (bad)
        rc = fr_err_set(err, FR_E_IO, "key file %s: cannot write", path);
    else if (replace ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        if (exists != NULL)
            *exists = errno == EEXIST;
        rc = fr_err_set(err, FR_E_IO, "key file %s: %s", path, strerror(errno));
    }
    unlink(tmp);
    free(tmp);
    if (rc == FR_OK) {
        char *copy = fr_strdup(path);
        fr_fsync_dir(dirname(copy));
        free(copy);
    }
    return rc;
}

static int
key_create(const char *path, unsigned char key[FR_KEY_LEN], bool *exists, struct fr_err *err)
{
    int rc = fr_mkdirs_for(path, 0700, err);
    if (rc != FR_OK)
        return rc;
    if (RAND_bytes(key, FR_KEY_LEN) != 1)
        return fr_err_set(err, FR_E_IO, "key file %s: no random bytes from OpenSSL", path);
    char text[2 * FR_KEY_LEN + 2];
    fr_hex_encode(key, FR_KEY_LEN, text);
    text[2 * FR_KEY_LEN] = '\n';
    rc = key_write(path, text, sizeof text - 1, false, exists, err);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

/* Parses a key file's text: 64 hex digits a line, '#' comments and blank lines skipped. */
static int
key_parse(const char *path, const char *text, size_t n, struct fr_keyring *ring, struct fr_err *err)
{
    ring->n = 0;
    int line = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && text[e] != '\n')
            e++;
        line++;
        size_t a = i, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        i = e + 1;
        if (a == b || text[a] == '#')
            continue;
        if (ring->n == FR_KEYRING_MAX)
            return fr_err_set(err, FR_E_CONFIG, "key file %s: more than %d keys", path,
                              FR_KEYRING_MAX);
        bool ok = b - a == 2 * FR_KEY_LEN;
        for (int k = 0; ok && k < FR_KEY_LEN; k++) {
            int hi = fr_hex_digit(text[a + 2 * k]), lo = fr_hex_digit(text[a + 2 * k + 1]);
            ok = hi >= 0 && lo >= 0;
            ring->key[ring->n][k] = (unsigned char)(hi << 4 | lo);
        }
        if (!ok) {
            OPENSSL_cleanse(ring, sizeof *ring);
            return fr_err_set(err, FR_E_CONFIG, "key file %s: line %d: expected %d hex digits",
                              path, line, 2 * FR_KEY_LEN);
        }
        ring->n++;
    }
    if (ring->n == 0)
        return fr_err_set(err, FR_E_CONFIG, "key file %s: no key (expected %d hex digits)", path,
                          2 * FR_KEY_LEN);
    return FR_OK;
}

int
fr_keyring_load(const char *path, bool create, struct fr_keyring *ring, bool *created,
                struct fr_err *err)
{
    memset(ring, 0, sizeof *ring);
    if (created != NULL)
        *created = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        bool exists = false;
        int rc = key_create(path, ring->key[0], &exists, err);
        if (rc == FR_OK) {
            ring->n = 1;
            if (created != NULL)
                *created = true;
            return rc;
        }
        if (!exists) /* else another process made it first: read that one */
            return rc;
        fd = open(path, O_RDONLY | O_CLOEXEC);
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
    char text[4096];
    size_t n = 0;
    for (ssize_t r; n < sizeof text && (r = read(fd, text + n, sizeof text - n)) != 0;) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    int rc = n == sizeof text ? fr_err_set(err, FR_E_CONFIG, "key file %s: too large", path)
                              : key_parse(path, text, n, ring, err);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

int
fr_key_load(const char *path, bool create, unsigned char key[FR_KEY_LEN], bool *created,
            struct fr_err *err)
{
    struct fr_keyring ring;
    int rc = fr_keyring_load(path, create, &ring, created, err);
    if (rc == FR_OK)
        memcpy(key, ring.key[0], FR_KEY_LEN);
    OPENSSL_cleanse(&ring, sizeof ring);
    return rc;
}

void
fr_key_id(const unsigned char key[FR_KEY_LEN], unsigned char id[8])
{
    unsigned char md[FR_SHA256_LEN];
    fr_sha256(key, FR_KEY_LEN, md);
    memcpy(id, md, 8);
}

void
fr_key_id_hex(const unsigned char key[FR_KEY_LEN], char out[FR_KEY_ID_HEX + 1])
{
    unsigned char id[8];
    fr_key_id(key, id);
    fr_hex_encode(id, 8, out);
}

const unsigned char *
fr_keyring_find(const struct fr_keyring *ring, const unsigned char id[8])
{
    for (size_t i = 0; ring != NULL && i < ring->n; i++) {
        unsigned char kid[8];
        fr_key_id(ring->key[i], kid);
        if (memcmp(kid, id, 8) == 0)
            return ring->key[i];
    }
    return NULL;
}

int
fr_key_rotate(const char *path, char new_id[FR_KEY_ID_HEX + 1], struct fr_err *err)
{
    struct fr_keyring ring;
    int rc = fr_keyring_load(path, false, &ring, NULL, err);
    if (rc != FR_OK)
        return rc;
    if (ring.n == FR_KEYRING_MAX) {
        OPENSSL_cleanse(&ring, sizeof ring);
        return fr_err_set(err, FR_E_LIMIT,
                          "key file %s: already holds %d keys; remove retired keys nothing "
                          "needs any more (the last lines) first",
                          path, FR_KEYRING_MAX);
    }
    unsigned char fresh[FR_KEY_LEN];
    if (RAND_bytes(fresh, sizeof fresh) != 1) {
        OPENSSL_cleanse(&ring, sizeof ring);
        return fr_err_set(err, FR_E_IO, "key file %s: no random bytes from OpenSSL", path);
    }
    char text[(2 * FR_KEY_LEN + 1) * (FR_KEYRING_MAX + 1) + 128];
    size_t n = 0;
    fr_hex_encode(fresh, FR_KEY_LEN, text);
    n += 2 * FR_KEY_LEN;
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "\n# retired keys below: kept to read what they sealed or hashed\n");
    for (size_t i = 0; i < ring.n; i++) {
        fr_hex_encode(ring.key[i], FR_KEY_LEN, text + n);
        n += 2 * FR_KEY_LEN;
        text[n++] = '\n';
    }
    rc = key_write(path, text, n, true, NULL, err);
    if (rc == FR_OK && new_id != NULL)
        fr_key_id_hex(fresh, new_id);
    OPENSSL_cleanse(text, sizeof text);
    OPENSSL_cleanse(fresh, sizeof fresh);
    OPENSSL_cleanse(&ring, sizeof ring);
    return rc;
}

/* SHA-256 looked up once: EVP_sha256() makes every EVP_Digest fetch its implementation again
   (0.99 vs 0.56 µs for 600 bytes here), and a provider event hashes two bodies. The fetched
   digest lives as long as the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

bool
fr_sha256(const void *data, size_t len, unsigned char out[FR_SHA256_LEN])
{
    pthread_once(&sha256_once, sha256_fetch);
    const EVP_MD *md = sha256_md != NULL ? sha256_md : EVP_sha256();
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, md, NULL) == 1 && n == FR_SHA256_LEN;
}

void
fr_token_key_init(struct fr_token_key *tk, const unsigned char key[FR_KEY_LEN])
{
    memcpy(tk->key, key, FR_KEY_LEN);
    char hex[FR_KEY_ID_HEX + 1];
    fr_key_id_hex(key, hex);
    memcpy(tk->id, hex, 4);
    tk->id[4] = '\0';
}

void
fr_hmac_token(const struct fr_token_key *tk, const void *data, size_t len,
              char out[FR_TOKEN_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), tk->key, FR_KEY_LEN, data, len, md, &mdlen);
    memcpy(out, "hmac:", 5);
    memcpy(out + 5, tk->id, 4);
    out[9] = ':';
    fr_hex_encode(md, 8, out + 10);
}

#define SEAL_MAGIC_V1 "FRR1" /* no associated data (read, never written) */
#define SEAL_MAGIC "FRR2"    /* bound to the caller's associated data */
#define SEAL_KEYID 8
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_HDR (4 + SEAL_KEYID + SEAL_NONCE + SEAL_TAG)

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
    fr_key_id(key, buf + 4);
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
    fr_key_id(key, id);
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

int
fr_unseal_ring(const struct fr_keyring *ring, const void *aad, size_t aadlen, const void *sealed,
               size_t len, unsigned char **out, size_t *outlen, struct fr_err *err)
{
    const unsigned char *b = sealed;
    const unsigned char *key = len >= SEAL_HDR ? fr_keyring_find(ring, b + 4) : NULL;
    if (key == NULL && len >= SEAL_HDR) {
        *out = NULL;
        char hex[2 * SEAL_KEYID + 1];
        fr_hex_encode(b + 4, SEAL_KEYID, hex);
        return fr_err_set(err, FR_E_VALUE,
                          "sealed data: sealed with key %s, which the key file "
                          "does not hold",
                          hex);
    }
    return fr_unseal(key ? key : ring->key[0], aad, aadlen, sealed, len, out, outlen, err);
}

size_t
fr_raw_aad(const char *conv_id, const char *event_id, int64_t ts_ms, const char *kind, char *out,
           size_t cap)
{
    int n = snprintf(out, cap, "raw\x1f%s\x1f%s\x1f%lld\x1f%s", conv_id ? conv_id : "",
                     event_id ? event_id : "", (long long)ts_ms, kind ? kind : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static char *keys_dir_configured; /* set once at start (fr_keys_dir_configure) */

void
fr_keys_dir_configure(const char *dir)
{
    free(keys_dir_configured);
    keys_dir_configured = dir && *dir ? fr_strdup(dir) : NULL;
}

char *
fr_keys_dir(void)
{
    const char *e = getenv("FLIGHTREC_KEYS_DIR");
    if (e != NULL && *e)
        return fr_strdup(e);
    if (keys_dir_configured != NULL)
        return fr_strdup(keys_dir_configured);
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return fr_asprintf("%s/flightrec/keys", xdg);
    const char *home = getenv("HOME");
    if (home != NULL && *home)
        return fr_asprintf("%s/.config/flightrec/keys", home);
    return fr_strdup("./keys");
}

char *
fr_key_path(const char *db, const char *given, const char *env, const char *name)
{
    if (given != NULL && *given)
        return fr_strdup(given);
    const char *e = env ? getenv(env) : NULL;
    if (e != NULL && *e)
        return fr_strdup(e);
    char *dir = fr_keys_dir();
    char *path = fr_asprintf("%s/%s", dir, name);
    free(dir);
    if (db == NULL || access(path, F_OK) == 0)
        return path;
    char *copy = fr_strdup(db);
    char *old = fr_asprintf("%s/keys/%s", dirname(copy), name);
    free(copy);
    if (access(old, F_OK) != 0) {
        free(old);
        return path;
    }
    static atomic_bool warned;
    if (!atomic_exchange(&warned, true))
        fr_log(FR_LOG_WARN, "keys",
               "using %s, beside the data (where earlier versions kept keys): a copy of the "
               "data folder carries it. Move the keys folder to %s (docs/security.md, Keys)",
               old, path);
    free(path);
    return old;
}

void
fr_key_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

/* ---- keyed digests for in-memory caches ---- */

/*
 * SipHash-1-3 (one compression round, three finalization rounds: the
 * variant hash tables use against chosen keys) with a 128-bit output. The
 * key is kept to start every digest with it, unless the context restarts
 * with its own key when given none (OpenSSL 3.0.x does; fr_digest128_new
 * checks that the two agree before it relies on it): that saves 40 ns a
 * digest.
 */
struct fr_digest128 {
    EVP_MAC_CTX *ctx;
    bool restarts; /* EVP_MAC_init(ctx, NULL, 0, NULL) restarts with the key */
    unsigned char key[16];
};

static bool
digest128_start(struct fr_digest128 *d, bool rekey)
{
    size_t size = 16;
    unsigned crounds = 1, drounds = 3;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &crounds),
                           OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &drounds),
                           OSSL_PARAM_construct_end()};
    if (!rekey)
        return EVP_MAC_init(d->ctx, NULL, 0, NULL) == 1;
    return EVP_MAC_init(d->ctx, d->key, sizeof d->key, params) == 1;
}

static bool
digest128_run(struct fr_digest128 *d, bool rekey, const void *data, size_t len, uint64_t out[2])
{
    size_t n = 0;
    unsigned char md[16];
    if (!digest128_start(d, rekey) || EVP_MAC_update(d->ctx, data, len) != 1 ||
        EVP_MAC_final(d->ctx, md, &n, sizeof md) != 1 || n != sizeof md)
        return false;
    memcpy(out, md, sizeof md);
    return true;
}

static struct fr_digest128 *
digest128_make(const unsigned char key[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (ctx == NULL)
        return NULL;
    struct fr_digest128 *d = fr_calloc(1, sizeof *d);
    d->ctx = ctx;
    memcpy(d->key, key, sizeof d->key);
    /* the same two texts with the key given, then restarted without it */
    static const char probe[2][24] = {"flightrec digest probe", "another probe, longer."};
    uint64_t keyed[2][2], restarted[2][2];
    if (!digest128_run(d, true, probe[0], sizeof probe[0], keyed[0]) ||
        !digest128_run(d, true, probe[1], sizeof probe[1], keyed[1])) {
        fr_digest128_free(d);
        return NULL;
    }
    d->restarts = digest128_run(d, false, probe[0], sizeof probe[0], restarted[0]) &&
                  digest128_run(d, false, probe[1], sizeof probe[1], restarted[1]) &&
                  memcmp(keyed, restarted, sizeof keyed) == 0;
    return d;
}

struct fr_digest128 *
fr_digest128_new(void)
{
    unsigned char key[16];
    struct fr_digest128 *d = RAND_bytes(key, sizeof key) == 1 ? digest128_make(key) : NULL;
    OPENSSL_cleanse(key, sizeof key);
    return d;
}

struct fr_digest128 *
fr_digest128_dup(const struct fr_digest128 *d)
{
    return d != NULL ? digest128_make(d->key) : NULL;
}

void
fr_digest128_free(struct fr_digest128 *d)
{
    if (d == NULL)
        return;
    EVP_MAC_CTX_free(d->ctx);
    OPENSSL_cleanse(d->key, sizeof d->key);
    free(d);
}

bool
fr_digest128(struct fr_digest128 *d, const void *data, size_t len, uint64_t out[2])
{
    return digest128_run(d, !d->restarts, data, len, out);
}
