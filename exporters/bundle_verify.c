/*
 * exporters/bundle_verify.c - reading a bundle's members and verifying it:
 * the manifest's signature, then every member's size and SHA-256.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/mem.h"
#include "exporters/archive_dl.h"
#include "exporters/bundle_int.h"
#include "exporters/render.h"
#include "retention/retention.h"

static const char *
or_(const char *a, const char *b)
{
    return a ? a : b;
}

/*
 * Reading is strict and bounded: every member must be a regular file whose
 * name appears once (a second manifest.json, a symlink or a device entry is
 * an error, not skipped), and nothing is read whole into memory beyond the
 * caller's cap; member data is hashed as it streams.
 */

/* The largest members read into memory: the manifest, its signature, summary.md. */
#define MANIFEST_MAX ((size_t)16 << 20)
#define SIG_MAX ((size_t)1024)
#define MEMBER_MAX ((size_t)256 << 20)

struct reader {
    struct archive *a;
    const char *path;
    json_t *names; /* names seen so far: each may appear once */
};

static void
reader_close(struct reader *r)
{
    if (r->a != NULL)
        archive_read_free(r->a);
    r->a = NULL;
    json_decref(r->names);
    r->names = NULL;
}

/* Opens the bundle at path; on failure nothing is left open (reader_close may still be
   called). */
static int
reader_open(struct reader *r, const char *path, struct fr_err *err)
{
    r->a = NULL;
    r->path = path;
    r->names = json_object();
    int rc = fr_archive_load(err); /* opened now, not at every start (core/dl.h) */
    if (rc == FR_OK) {
        r->a = archive_read_new();
        archive_read_support_filter_zstd(r->a);
        archive_read_support_format_tar(r->a);
        if (archive_read_open_filename(r->a, path, 65536) != ARCHIVE_OK)
            rc = fr_err_set(err, FR_E_IO, "bundle %s: %s", path, archive_error_string(r->a));
    }
    if (rc != FR_OK)
        reader_close(r);
    return rc;
}

/* The next member's header: FR_OK, FR_E_NOTFOUND at the end, or why the bundle is refused. */
static int
reader_next(struct reader *r, const char **name, int64_t *size, struct fr_err *err)
{
    struct archive_entry *e;
    int ar = archive_read_next_header(r->a, &e);
    if (ar == ARCHIVE_EOF)
        return FR_E_NOTFOUND;
    if (ar != ARCHIVE_OK)
        return fr_err_set(err, FR_E_VALUE, "bundle %s: %s", r->path, archive_error_string(r->a));
    *name = archive_entry_pathname(e);
    *size = archive_entry_size(e);
    if (*name == NULL || **name == '\0')
        return fr_err_set(err, FR_E_VALUE, "bundle %s: a member has no name", r->path);
    if (archive_entry_filetype(e) != AE_IFREG)
        return fr_err_set(err, FR_E_VALUE,
                          "bundle %s: member %s is not a regular file (a link or device entry "
                          "is never part of a bundle)",
                          r->path, *name);
    if (*size < 0)
        return fr_err_set(err, FR_E_VALUE, "bundle %s: member %s has a bad size", r->path, *name);
    if (json_object_get(r->names, *name) != NULL)
        return fr_err_set(err, FR_E_VALUE,
                          "bundle %s: member %s appears twice (only one can have been signed)",
                          r->path, *name);
    json_object_set_new(r->names, *name, json_true());
    return FR_OK;
}

/* The current member's data into a new buffer (NUL-terminated); refused past max bytes. */
static int
reader_slurp(struct reader *r, const char *name, int64_t size, size_t max, char **data, size_t *len,
             struct fr_err *err)
{
    if ((uint64_t)size > max)
        return fr_err_set(err, FR_E_LIMIT, "bundle %s: member %s is %lld bytes, over %zu", r->path,
                          name, (long long)size, max);
    char *buf = fr_malloc((size_t)size + 1);
    la_ssize_t got = archive_read_data(r->a, buf, (size_t)size);
    if (got != (la_ssize_t)size) {
        free(buf);
        return fr_err_set(err, FR_E_VALUE, "bundle %s: member %s is truncated", r->path, name);
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return FR_OK;
}

/* Reads the named members (NULL-terminated names, caps and outputs); each must be present. */
static int
read_members(const char *path, const char *const *names, const size_t *caps, char **data,
             size_t *lens, struct fr_err *err)
{
    struct reader r;
    int rc = reader_open(&r, path, err);
    const char *name;
    int64_t size;
    while (rc == FR_OK && (rc = reader_next(&r, &name, &size, err)) == FR_OK) {
        for (size_t i = 0; names[i] != NULL; i++)
            if (data[i] == NULL && strcmp(name, names[i]) == 0)
                rc = reader_slurp(&r, name, size, caps[i], &data[i], &lens[i], err);
    }
    if (rc == FR_E_NOTFOUND)
        rc = FR_OK; /* the end */
    for (size_t i = 0; rc == FR_OK && names[i] != NULL; i++)
        if (data[i] == NULL)
            rc = fr_err_set(err, FR_E_NOTFOUND, "bundle %s has no %s", path, names[i]);
    reader_close(&r);
    if (rc != FR_OK)
        for (size_t i = 0; names[i] != NULL; i++) {
            free(data[i]);
            data[i] = NULL;
        }
    return rc;
}

int
fr_bundle_member(const char *path, const char *name, char **data, size_t *len, struct fr_err *err)
{
    const char *names[] = {name, NULL};
    size_t caps[] = {MEMBER_MAX}, lens[1] = {0};
    char *out[1] = {NULL};
    int rc = read_members(path, names, caps, out, lens, err);
    if (rc == FR_OK) {
        *data = out[0];
        *len = lens[0];
    }
    return rc;
}

/* Streams the current member through SHA-256, refusing a byte past want_bytes. */
static int
hash_member(struct reader *r, const char *name, int64_t size, json_t *want, struct fr_err *err)
{
    json_int_t want_bytes = json_integer_value(json_object_get(want, "bytes"));
    if (size != want_bytes) /* before reading a byte of it */
        return fr_err_set(err, FR_E_VALUE, "bundle %s: %s is %lld bytes, the manifest says %lld",
                          r->path, name, (long long)size, (long long)want_bytes);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    char buf[65536];
    int rc = FR_OK;
    int64_t total = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(r->a, buf, sizeof buf);
        if (n < 0) {
            rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s: %s", r->path, name,
                            archive_error_string(r->a));
            break;
        }
        if (n == 0)
            break;
        total += n;
        if (total > want_bytes) {
            rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s is longer than the manifest says",
                            r->path, name);
            break;
        }
        EVP_DigestUpdate(sha, buf, (size_t)n);
    }
    unsigned char md[32];
    char mdhex[65];
    EVP_DigestFinal_ex(sha, md, NULL);
    EVP_MD_CTX_free(sha);
    if (rc != FR_OK)
        return rc;
    fr_hex_encode(md, 32, mdhex);
    if (total != want_bytes ||
        strcmp(mdhex, or_(json_string_value(json_object_get(want, "sha256")), "")) != 0)
        return fr_err_set(err, FR_E_VALUE,
                          "bundle %s: %s does not match its SHA-256 in the manifest", r->path,
                          name);
    return FR_OK;
}

static int
check_signature(const char *path, EVP_PKEY *pub, const char *mtext, size_t mlen,
                const char *sigtext, size_t slen, struct fr_err *err)
{
    unsigned char sig[64];
    size_t siglen = 0;
    while (slen > 0 && (sigtext[slen - 1] == '\n' || sigtext[slen - 1] == '\r'))
        slen--;
    if (slen != 128)
        return fr_err_set(err, FR_E_VALUE, "bundle %s: manifest.sig is not one Ed25519 signature",
                          path);
    for (; siglen < 64; siglen++) {
        int hi = fr_hex_digit(sigtext[2 * siglen]), lo = fr_hex_digit(sigtext[2 * siglen + 1]);
        if (hi < 0 || lo < 0)
            return fr_err_set(err, FR_E_VALUE, "bundle %s: manifest.sig is not hex", path);
        sig[siglen] = (unsigned char)(hi << 4 | lo);
    }
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pub) == 1 &&
             EVP_DigestVerify(mc, sig, siglen, (const unsigned char *)mtext, mlen) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok)
        return fr_err_set(err, FR_E_VALUE,
                          "bundle %s: manifest.json: the signature does not verify with this "
                          "public key (wrong key, or the manifest was changed)",
                          path);
    return FR_OK;
}

int
fr_bundle_verify(const char *path, EVP_PKEY *pub, struct fr_err *err)
{
    /* the signed manifest first (bounded reads); nothing else is read before it verifies */
    const char *names[] = {"manifest.json", "manifest.sig", NULL};
    size_t caps[] = {MANIFEST_MAX, SIG_MAX}, lens[2] = {0, 0};
    char *text[2] = {NULL, NULL};
    int rc = read_members(path, names, caps, text, lens, err);
    if (rc == FR_OK)
        rc = check_signature(path, pub, text[0], lens[0], text[1], lens[1], err);
    json_t *m = rc == FR_OK ? json_loadb(text[0], lens[0], JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (rc == FR_OK && !json_is_array(json_object_get(m, "files")))
        rc = fr_err_set(err, FR_E_VALUE, "bundle %s: manifest.json has no file list", path);
    json_t *files = json_object();
    size_t i;
    json_t *f;
    if (rc == FR_OK)
        json_array_foreach(json_object_get(m, "files"), i, f)
        {
            const char *name = json_string_value(json_object_get(f, "name"));
            if (name == NULL || json_object_get(files, name) != NULL) {
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: manifest.json lists a file twice",
                                path);
                break;
            }
            json_object_set(files, name, f);
        }
    /* then every member: exactly the manifest's list (and the manifest and its signature),
       each hashed as it streams */
    struct reader r;
    if (rc == FR_OK)
        rc = reader_open(&r, path, err);
    if (rc == FR_OK) {
        const char *name;
        int64_t size;
        while (rc == FR_OK && (rc = reader_next(&r, &name, &size, err)) == FR_OK) {
            if (strcmp(name, "manifest.json") == 0 || strcmp(name, "manifest.sig") == 0)
                continue;
            json_t *want = json_object_get(files, name);
            if (want == NULL)
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s is not listed in the manifest",
                                path, name);
            else
                rc = hash_member(&r, name, size, want, err);
        }
        if (rc == FR_E_NOTFOUND)
            rc = FR_OK;
        const char *fname;
        json_t *v;
        json_object_foreach(files, fname, v)
        {
            if (rc == FR_OK && json_object_get(r.names, fname) == NULL)
                rc = fr_err_set(err, FR_E_VALUE, "bundle %s: %s is missing", path, fname);
        }
        reader_close(&r);
    }
    json_decref(files);
    json_decref(m);
    free(text[0]);
    free(text[1]);
    return rc;
}
