/*
 * redact/keyname.c - see keyname.h: whether an object key names a
 * credential, by what its words mean.
 *
 * A key is split into lower-case words at every character that is not a
 * letter or digit (snake_case, kebab-case, dotted.names), at a lower-to-
 * upper change (camelCase), before the last capital of a capital run
 * followed by a lower-case letter (APIKey -> api key) and between letters
 * and digits. The words are then read for a trigger (password, secret,
 * token, <qualifier> key, cookie, authorization, credential, ...); the
 * words around it decide: a quantity or a tokenizer's special token before
 * "token" (max_tokens, eos_token), or a word after the trigger that names
 * something about the credential rather than the credential itself
 * (token_type, api_key_id, password_policy), make the key harmless.
 *
 * Every verdict is listed in tests/data/secret_keys.tsv (a table of key
 * names and their expected verdicts, tested by tests/test_redact.c,
 * test_redact_key_names_by_meaning).
 */
#include "redact/keyname.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define KN_WORDS 16
#define KN_WORD 40

struct words {
    char w[KN_WORDS][KN_WORD];
    int n;
};

static void
push(struct words *ws, const char *s, size_t len)
{
    if (len == 0 || ws->n == KN_WORDS)
        return;
    if (len >= KN_WORD)
        len = KN_WORD - 1;
    for (size_t i = 0; i < len; i++)
        ws->w[ws->n][i] = (char)tolower((unsigned char)s[i]);
    ws->w[ws->n][len] = '\0';
    ws->n++;
}

static void
split(const char *key, struct words *ws)
{
    ws->n = 0;
    size_t start = 0, i = 0;
    for (; key[i] != '\0'; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!isalnum(c)) {
            push(ws, key + start, i - start);
            start = i + 1;
            continue;
        }
        if (i == start)
            continue;
        unsigned char p = (unsigned char)key[i - 1];
        unsigned char nx = (unsigned char)key[i + 1];
        bool cut = (islower(p) && isupper(c)) || (isalpha(p) && isdigit(c)) ||
                   (isdigit(p) && isalpha(c)) || (isupper(p) && isupper(c) && islower(nx));
        if (cut) {
            push(ws, key + start, i - start);
            start = i;
        }
    }
    push(ws, key + start, i - start);
}

static bool
in(const char *w, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(w, *set) == 0)
            return true;
    return false;
}

static bool
ends_with(const char *w, const char *suffix)
{
    size_t n = strlen(w), m = strlen(suffix);
    return n >= m && strcmp(w + n - m, suffix) == 0;
}

/* Words after a trigger that make the key about the credential, not the credential. */
static const char *const about[] = {
    "id",          "ids",      "name",      "names",     "type",     "types",      "kind",
    "path",        "paths",    "file",      "filename",  "dir",      "url",        "uri",
    "urls",        "endpoint", "host",      "domain",    "env",      "var",        "field",
    "label",       "length",   "len",       "size",      "count",    "counts",     "limit",
    "limits",      "usage",    "budget",    "expiry",    "expires",  "expiration", "expired",
    "ttl",         "lifetime", "age",       "created",   "updated",  "rotated",    "rotation",
    "version",     "format",   "algorithm", "alg",       "provider", "method",     "mode",
    "scheme",      "required", "enabled",   "disabled",  "present",  "configured", "valid",
    "policy",      "policies", "strength",  "prefix",    "location", "ref",        "arn",
    "region",      "status",   "error",     "errors",    "message",  "index",      "per",
    "rate",        "second",   "seconds",   "in",        "at",       "ms",         "scope",
    "scopes",      "issuer",   "audience",  "header",    "param",    "parameter",  "source",
    "store",       "manager",  "reset",     "changed",   "min",      "max",        "rules",
    "fingerprint", "hint",     "set",       "exists",    "missing",  "mask",       "masked",
    "redacted",    "last4",    "digest",    "sha256",    "hashed",   "outcome",    "outcomes",
    "result",      "results",  "success",   "succeeded", "failed",   "failure",    "failures",
    "decision",    "verdict",  "state",     "allowed",   "denied",   "reason",     "latency",
    "duration",    "time",     "timeout",   "attempts",  "retries",  "level",      "strategy",
    "flow",        "step",     "stage",     "ok",        "check",    NULL,
};

/* Words before "token" that make it a count, a cursor or a tokenizer's token. */
static const char *const not_a_token[] = {
    "max",     "min",        "num",      "number",    "total",     "prompt",    "completion",
    "input",   "output",     "cached",   "reasoning", "remaining", "used",      "context",
    "n",       "per",        "page",     "next",      "prev",      "previous",  "continuation",
    "cursor",  "pagination", "sync",     "resume",    "stop",      "end",       "start",
    "special", "bos",        "eos",      "pad",       "unk",       "sep",       "cls",
    "mask",    "first",      "last",     "new",       "audio",     "image",     "text",
    "tool",    "byte",       "thinking", "accepted",  "rejected",  "predicted", "cache",
    "single",  "one",        "each",     "every",     "ai",        "gen",       NULL,
};

/* Words before "key" that make it a credential (api_key, private_key, ...). */
static const char *const key_kinds[] = {
    "api",     "access",     "secret",  "private",     "signing",   "sign",        "encryption",
    "encrypt", "master",     "client",  "auth",        "license",   "licence",     "subscription",
    "account", "service",    "app",     "application", "ssh",       "gpg",         "pgp",
    "session", "webhook",    "hmac",    "shared",      "consumer",  "integration", "deploy",
    "root",    "admin",      "crypto",  "cipher",      "aes",       "rsa",         "jwt",
    "token",   "decryption", "storage", "openai",      "anthropic", "stripe",      NULL,
};

/* One word that is a credential key on its own (apikey, privatekey, ...). */
static const char *const key_words[] = {
    "apikey",     "accesskey",  "privatekey",      "secretkey", "signingkey", "masterkey",
    "licensekey", "sshkey",     "subscriptionkey", "clientkey", "authkey",    "encryptionkey",
    "hmackey",    "sessionkey", "xapikey",         "appkey",    "servicekey", NULL,
};

/* Words that flag a boolean or a question about a credential, never the credential. */
static const char *const flags[] = {
    "has", "is", "use", "uses", "with", "no", "needs", "requires", "should", "can", "allow", NULL,
};

/* Session cookies named by the framework that sets them. */
static const char *const session_cookies[] = {
    "jsessionid", "phpsessid", "sessid", "aspsessionid", NULL,
};

/* Words before "pass" that make it a password (db_pass), not a verdict (test pass). */
static const char *const pass_owners[] = {
    "db", "user", "basic", "sasl", "smtp", "ftp", "proxy", "mysql", "pg", "redis", "admin", NULL,
};

static const char *const auth_words[] = {
    "authorization", "authorisation",      "auth", "oauth", "bearer", "authn",
    "xauth",         "proxyauthorization", NULL,
};
static const char *const code_words[] = {"otp", "totp", "hotp", "cvv", "cvc", "pin", NULL};
static const char *const credential_tokens[] = {
    "auth", "access", "refresh", "api", "bearer", "session", "id", "oauth", "csrf", "xsrf", NULL,
};

/*
 * Whether word i of ws is a trigger; *len is how many words it spans
 * (1, or 2 for "<kind> key", "connection string"), *rule names it.
 */
static bool
trigger(const struct words *ws, int i, int *len, const char **rule)
{
    const char *w = ws->w[i];
    const char *prev = i > 0 ? ws->w[i - 1] : "";
    const char *next = i + 1 < ws->n ? ws->w[i + 1] : "";
    *len = 1;
    if ((strstr(w, "password") != NULL && strcmp(w, "passwordless") != 0) ||
        strstr(w, "passwd") != NULL || strstr(w, "passphrase") != NULL || strcmp(w, "pwd") == 0 ||
        strcmp(w, "passcode") == 0 ||
        (strcmp(w, "pass") == 0 && (ws->n == 1 || in(prev, pass_owners)))) {
        *rule = "password";
        return true;
    }
    if (ends_with(w, "secret") || ends_with(w, "secrets")) {
        *rule = "secret";
        return true;
    }
    if (ends_with(w, "token")) { /* token, githubtoken, accesstoken, ... */
        if (strcmp(w, "token") == 0 && in(prev, not_a_token))
            return false;
        *rule = "token";
        return true;
    }
    if (ends_with(w, "tokens")) {
        bool cred = strcmp(w, "tokens") == 0
                        ? in(prev, credential_tokens)
                        : strstr(w, "access") || strstr(w, "auth") || strstr(w, "refresh");
        if (!cred)
            return false;
        *rule = "token";
        return true;
    }
    if ((strcmp(w, "key") == 0 || strcmp(w, "keys") == 0) && i > 0 && in(prev, key_kinds)) {
        *rule = "credential key";
        return true;
    }
    if (in(w, key_words)) {
        *rule = "credential key";
        return true;
    }
    if (ends_with(w, "cookie") || ends_with(w, "cookies")) { /* cookie, setcookie, ... */
        *rule = "cookie";
        return true;
    }
    if (in(w, session_cookies) || (strcmp(w, "sid") == 0 && strcmp(prev, "connect") == 0)) {
        *rule = "session cookie";
        return true;
    }
    if (in(w, auth_words)) {
        *rule = "authorization";
        return true;
    }
    if (strncmp(w, "credential", 10) == 0 || strcmp(w, "creds") == 0 || strcmp(w, "cred") == 0) {
        *rule = "credential";
        return true;
    }
    if (strcmp(w, "dsn") == 0 || strcmp(w, "connstr") == 0 ||
        (strcmp(w, "connection") == 0 && strcmp(next, "string") == 0)) {
        *len = strcmp(w, "connection") == 0 ? 2 : 1;
        *rule = "connection string";
        return true;
    }
    if (in(w, code_words)) {
        *rule = "one-time code or pin";
        return true;
    }
    if (strcmp(w, "mfa") == 0 && strcmp(next, "code") == 0) {
        *len = 2;
        *rule = "one-time code or pin";
        return true;
    }
    return false;
}

/*
 * Most keys hold none of the letter triples a trigger starts with: one
 * cheap pass rejects them before any splitting.
 */
static bool
maybe_secret(const char *key)
{
    static const char *const starts[] = {"pas", "pwd", "sec", "tok", "key", "coo", "aut",
                                         "den", "eds", "dsn", "onn", "otp", "pin", "cvv",
                                         "cvc", "mfa", "bea", "ssi", "sid", NULL};
    for (const char *p = key; p[0] && p[1] && p[2]; p++) {
        char a = (char)tolower((unsigned char)p[0]);
        if (strchr("psktcadeoxmb", a) == NULL)
            continue;
        char t[4] = {a, (char)tolower((unsigned char)p[1]), (char)tolower((unsigned char)p[2]),
                     '\0'};
        if (in(t, starts))
            return true;
    }
    return false;
}

const char *
fr_key_secret_rule(const char *key)
{
    if (!maybe_secret(key))
        return NULL;
    struct words ws;
    split(key, &ws);
    const char *found = NULL;
    int at = -1, span = 1;
    for (int i = 0; i < ws.n; i++) {
        int len;
        const char *rule;
        if (trigger(&ws, i, &len, &rule)) {
            found = rule;
            at = i;
            span = len;
        }
    }
    if (found == NULL)
        return NULL;
    for (int i = 0; i < at; i++)
        if (in(ws.w[i], flags))
            return NULL;
    for (int i = at + span; i < ws.n; i++)
        if (in(ws.w[i], about))
            return NULL;
    return found;
}
