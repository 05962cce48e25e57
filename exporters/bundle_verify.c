/*
 * exporters/bundle_verify.c - reading a bundle's members and verifying it:
 * the manifest's signature, then every member's size and SHA-256.
 */
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/mem.h"
#include "exporters/bundle_int.h"
#include "exporters/render.h"
#include "retention/retention.h"

static const char *
or_(const char *a, const char *b)
{
    return a ? a : b;
}

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
    fr_hex_encode(md, 32, mdhex);
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
