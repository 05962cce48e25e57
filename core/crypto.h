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
 * The keys folder, kept apart from the data so that a copy of the data
 * folder does not carry the keys that protect it: $FLIGHTREC_KEYS_DIR when
 * set, else the configuration's keys.dir (fr_keys_dir_configure), else
 * $XDG_CONFIG_HOME/flightrec/keys, else ~/.config/flightrec/keys. Caller frees.
 */
char *fr_keys_dir(void);
/* Sets the configuration's keys.dir for this process (NULL or "": none). */
void fr_keys_dir_configure(const char *dir);

/*
 * Where a key file is: `given` when set, else the environment variable
 * `env` (may be NULL) when set, else <keys folder>/<name>. A key that
 * exists only where versions before 0.3 kept it, keys/<name> in the folder
 * of `db` (may be NULL), is used from there, with a warning (once per
 * path) to move it. Caller frees.
 */
char *fr_key_path(const char *db, const char *given, const char *env, const char *name);

/*
 * A key file holds one or more keys, 64 hex digits a line ('#' comments and
 * blank lines allowed): the first is the current key, the ones after it are
 * retired keys kept to read what they sealed or hashed (fr_key_rotate).
 */
#define FR_KEYRING_MAX 16
#define FR_KEY_ID_HEX 16 /* hex digits of a key id: the first 8 bytes of SHA-256 of the key */

struct fr_keyring {
    size_t n;
    unsigned char key[FR_KEYRING_MAX][FR_KEY_LEN]; /* key[0]: current */
};

/*
 * Loads a key file's current key. When absent and create is true, makes
 * one with random bytes, owner-only permissions (and its directory, 0700);
 * *created (may be NULL) says so. Refuses a file readable by group or
 * others. Two processes creating the same key at once end with one key.
 */
int fr_key_load(const char *path, bool create, unsigned char key[FR_KEY_LEN], bool *created,
                struct fr_err *err);
/* Loads every key of a key file (the same checks); wipe with fr_key_wipe. */
int fr_keyring_load(const char *path, bool create, struct fr_keyring *ring, bool *created,
                    struct fr_err *err);
/* The key of the ring whose id (8 bytes) is id; NULL when none is. */
const unsigned char *fr_keyring_find(const struct fr_keyring *ring, const unsigned char id[8]);
/* A key's id: the first 8 bytes of its SHA-256, and as hex. */
void fr_key_id(const unsigned char key[FR_KEY_LEN], unsigned char id[8]);
void fr_key_id_hex(const unsigned char key[FR_KEY_LEN], char out[FR_KEY_ID_HEX + 1]);
/*
 * Rotation: a new random key becomes the file's first line, the keys it
 * had follow it (kept for reading). Written to a temporary file, synced and
 * renamed over the old one. new_id (may be NULL) gets the new key's id.
 */
int fr_key_rotate(const char *path, char new_id[FR_KEY_ID_HEX + 1], struct fr_err *err);

/* SHA-256 of data into out; false only if OpenSSL fails. */
#define FR_SHA256_LEN 32
bool fr_sha256(const void *data, size_t len, unsigned char out[FR_SHA256_LEN]);

/*
 * Keyed tokens: "hmac:" + 4 hex digits of the key's id + ":" + the first 16
 * hex digits of HMAC-SHA256(key, data). The id says which key made a token,
 * so tokens from before a rotation are told apart from new ones.
 */
#define FR_TOKEN_LEN 26

struct fr_token_key {
    unsigned char key[FR_KEY_LEN];
    char id[5]; /* the first 4 hex digits of the key's id */
};

void fr_token_key_init(struct fr_token_key *tk, const unsigned char key[FR_KEY_LEN]);
void fr_hmac_token(const struct fr_token_key *tk, const void *data, size_t len,
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
/* fr_unseal with the key of the ring that sealed the blob (its id says which). */
int fr_unseal_ring(const struct fr_keyring *ring, const void *aad, size_t aadlen,
                   const void *sealed, size_t len, unsigned char **out, size_t *outlen,
                   struct fr_err *err);

/*
 * A keyed 128-bit digest for a process's own caches (SipHash-1-3 through
 * OpenSSL): the key is random, made by fr_digest128_new, and never written
 * anywhere, so nobody outside the process can choose texts whose digests
 * agree. A digest is kept in memory only; two different texts share one
 * with a chance of 2^-128. One context per thread: fr_digest128_dup gives
 * another thread the same key.
 */
struct fr_digest128;
/* NULL when OpenSSL cannot give SipHash (a caller then does without its cache). */
struct fr_digest128 *fr_digest128_new(void);
struct fr_digest128 *fr_digest128_dup(const struct fr_digest128 *d);
void fr_digest128_free(struct fr_digest128 *d);
/* The digest of data[0, len) in out; false only if OpenSSL fails. */
bool fr_digest128(struct fr_digest128 *d, const void *data, size_t len, uint64_t out[2]);

/*
 * The associated data of an event's sealed raw payload: its stored
 * conversation id, event id, time and kind, so a payload moved to another
 * row does not open there.
 */
size_t fr_raw_aad(const char *conv_id, const char *event_id, int64_t ts_ms, const char *kind,
                  char *out, size_t cap);

#endif
