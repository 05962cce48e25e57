/*
 * core/crypto.h - the keys and primitives every stage shares, all through
 * OpenSSL: key files (64 hex digits, owner-only), keyed hash tokens
 * (HMAC-SHA256) and sealing (AES-256-GCM). The redaction stage hashes and
 * seals values with them, retention seals cold blocks, exporters unseal.
 */
#ifndef FR_CORE_CRYPTO_H
#define FR_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define FR_KEY_LEN 32

/* Wipes key material (OPENSSL_cleanse: a store the compiler cannot drop as dead). */
void fr_key_wipe(void *p, size_t len);

/*
 * Where a key file is: `given` when set, else the environment variable
 * `env` (may be NULL) when set, else keys/<name> in the folder of `db`.
 * Caller frees.
 */
char *fr_key_path(const char *db, const char *given, const char *env, const char *name);

/*
 * Loads a key file (64 hex digits). When absent and create is true, makes
 * one with random bytes, owner-only permissions (and its directory, 0700);
 * *created (may be NULL) says so. Refuses a file readable by group or others.
 */
int fr_key_load(const char *path, bool create, unsigned char key[FR_KEY_LEN], bool *created,
                struct fr_err *err);

#define FR_TOKEN_LEN 21 /* "hmac:" + 16 hex digits */

/* The keyed token of data: "hmac:" + first 16 hex digits of HMAC-SHA256. */
void fr_hmac_token(const unsigned char key[FR_KEY_LEN], const void *data, size_t len,
                   char out[FR_TOKEN_LEN + 1]);

/*
 * AES-256-GCM with a random 96-bit nonce per call. The sealed form is
 * "FRR2" | key id (8 bytes of SHA-256 of the key) | nonce | tag (16) |
 * ciphertext, bound to associated data: the magic and key id, and aad,
 * which says where the blob belongs (a row, a segment's header and block
 * index). fr_unseal fails with FR_E_VALUE, saying so, when the key is not
 * the one it was sealed with, the bytes were altered or the blob was moved
 * to where other aad applies. Blobs of the older "FRR1" form (no aad) are
 * still read.
 */
/* Bytes a sealed blob has beyond its plaintext (magic, key id, nonce, tag). */
#define FR_SEAL_OVERHEAD 40

int fr_seal(const unsigned char key[FR_KEY_LEN], const void *aad, size_t aadlen, const void *pt,
            size_t len, unsigned char **out, size_t *outlen, struct fr_err *err);
int fr_unseal(const unsigned char key[FR_KEY_LEN], const void *aad, size_t aadlen,
              const void *sealed, size_t len, unsigned char **out, size_t *outlen,
              struct fr_err *err);

/*
 * The associated data of an event's sealed raw payload: its stored
 * conversation id, event id, time and kind, so a payload moved to another
 * row does not open there.
 */
size_t fr_raw_aad(const char *conv_id, const char *event_id, int64_t ts_ms, const char *kind,
                  char *out, size_t cap);

#endif
