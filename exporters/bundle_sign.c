/*
 * exporters/bundle_sign.c - Ed25519 keys (generated owner-only, loaded with
 * a mode check), key ids and the manifest signature.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hex.h"
#include "exporters/bundle_int.h"

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

void
fr_bundle_key_id(EVP_PKEY *k, char out[17])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    unsigned char md[32];
    SHA256(der, n > 0 ? (size_t)n : 0, md);
    OPENSSL_free(der);
    fr_hex_encode(md, 8, out);
}

int
fr_bundle_sign(EVP_PKEY *k, const char *text, char sighex[2 * 64 + 2], struct fr_err *err)
{
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    int ok = mc != NULL && EVP_DigestSignInit(mc, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(mc, sig, &siglen, (const unsigned char *)text, strlen(text)) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok)
        return fr_err_set(err, FR_E_INVALID, "signing the manifest failed");
    fr_hex_encode(sig, siglen, sighex);
    sighex[2 * siglen] = '\n';
    sighex[2 * siglen + 1] = '\0';
    return FR_OK;
}
