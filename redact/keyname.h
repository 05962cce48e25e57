/*
 * redact/keyname.h - credentials named only by their key: whether an
 * object key means a password, secret, token, credential key, cookie,
 * authorization, credential, connection string or one-time code, by the
 * words it is made of (db_password, githubToken, X-Auth-Token, PGPASSWORD,
 * AWS_SECRET_ACCESS_KEY, session_cookie, private_key_pem, clientSecret),
 * while the LLM's counters and a credential's attributes stay what they are
 * (max_tokens, prompt_tokens, token_count, eos_token, token_type,
 * api_key_id, password_policy).
 */
#ifndef FR_REDACT_KEYNAME_H
#define FR_REDACT_KEYNAME_H

/* The rule that makes key a credential's name ("password", "token", ...), or NULL. */
const char *fr_key_secret_rule(const char *key);

#endif
