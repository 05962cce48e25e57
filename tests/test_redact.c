/*
 * tests/test_redact.c - the redaction stage: no detectable secret or
 * personal datum reaches the database file or its WAL, near-misses stay,
 * keyed hashes correlate, raw mode round-trips only with its key, policies
 * merge and fail with file:line, key files are owner-only.
 */
#include "tests/support/support.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "redact/keyname.h"
#include "redact/redact.h"
#include "tests/support/secrets.h"

/* ---- the corpus (tests/support/secrets.h): every secret kind x every free-text field x every
 * surrounding ---- */

/* Surroundings: the secret in prose, at the start, at the end, quoted, in a
 * JSON document held in a string, in a URL, in a code block, after a flag in
 * an argument list held in a string. */
#define NSURR 8

static char *
surround(int how, const char *x)
{
    switch (how) {
    case 0:
        return fr_asprintf("Here is the thing: %s -- please keep it safe.", x);
    case 1:
        return fr_asprintf("%s is what I have", x);
    case 2:
        return fr_asprintf("my value is %s", x);
    case 3:
        return fr_asprintf("the config says \"%s\" and also '%s'", x, x);
    case 4: {
        json_t *doc = json_pack("{s:{s:s},s:i}", "config", "value", x, "n", 1);
        char *inner = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return inner;
    }
    case 5:
        return fr_asprintf("see https://example.com/callback?token=%s&next=/home", x);
    case 6:
        return fr_asprintf("```bash\nexport API_KEY=%s\ncurl https://api.example.com\n```", x);
    default: {
        json_t *argv = json_pack("[s,s,s,s]", "deploy", "--token", x, "--verbose");
        char *inner = json_dumps(argv, JSON_COMPACT);
        json_decref(argv);
        return inner;
    }
    }
}

/* Free-text fields: the event around a text, one per field kind. */
#define NFIELDS 15

static json_t *
event_with(int field, const char *t, int n)
{
    char conv[32];
    snprintf(conv, sizeof conv, "conv-%d", n % 50);
    json_t *ev =
        json_pack("{s:s,s:I,s:s,s:s+}", "conv_id", conv, "ts_ms", (json_int_t)(1760000000000LL + n),
                  "kind", "provider", "event_id", "e-", conv);
    json_object_set_new(ev, "event_id", json_sprintf("e-%d", n));
    switch (field) {
    case 0:
        json_object_set_new(ev, "data",
                            json_pack("{s:s,s:s,s:{s:[{s:s,s:s}]}}", "provider", "openai", "model",
                                      "gpt-4o", "request", "messages", "role", "user", "content",
                                      t));
        break;
    case 1:
        json_object_set_new(ev, "data", json_pack("{s:{s:s}}", "response", "content", t));
        break;
    case 2:
    case 3:
        json_object_set_new(ev, "kind", json_string("tool"));
        json_object_set_new(ev, "data",
                            field == 2
                                ? json_pack("{s:s,s:{s:s}}", "name", "search", "args", "query", t)
                                : json_pack("{s:s,s:s}", "name", "search", "result", t));
        break;
    case 4:
    case 5:
    case 6:
        json_object_set_new(ev, "kind", json_string("middleware"));
        json_object_set_new(ev, "data",
                            json_pack("{s:s,s:s}", "step", "guard",
                                      field == 4   ? "prompt_before"
                                      : field == 5 ? "prompt_after"
                                                   : "rationale",
                                      t));
        break;
    case 7:
        json_object_set_new(ev, "error", json_pack("{s:s,s:i}", "message", t, "http_status", 500));
        break;
    case 8:
        json_object_set_new(ev, "error", json_pack("{s:s,s:s}", "message", "boom", "stack", t));
        break;
    case 9:
        json_object_set_new(ev, "error",
                            json_pack("{s:s,s:[s,s]}", "message", "boom", "cause", "first", t));
        break;
    case 10:
        json_object_set_new(ev, "kind", json_string("turn"));
        json_object_set_new(
            ev, "data",
            json_pack("{s:s,s:{s:[{s:s}]}}", "phase", "final", "payload", "blocks", "text", t));
        break;
    case 11:
        json_object_set_new(ev, "kind", json_string("timeline"));
        json_object_set_new(ev, "data",
                            json_pack("{s:s,s:i,s:{s:s}}", "entity_id", "msg-1", "version", n,
                                      "payload", "text", t));
        break;
    case 13:
    case 14:
        json_object_set_new(ev, "kind", json_string("transport"));
        json_object_set_new(
            ev, "data",
            field == 13 ? json_pack("{s:s,s:s,s:i}", "proto", "http", "path", t, "status", 200)
                        : json_pack("{s:s,s:s,s:{s:s}}", "proto", "http", "path", "/v1/chat",
                                    "headers", "X-Forwarded-For", t));
        break;
    default:
        json_object_set_new(ev, "kind", json_string("sem"));
        json_object_set_new(ev, "data",
                            json_pack("{s:s,s:{s:s}}", "type", "llm.delta", "data", "delta", t));
        break;
    }
    return ev;
}

static char *
slurp(const char *path, size_t *len)
{
    char *s;
    if (fr_read_file(path, &s, len, NULL) != FR_OK) {
        *len = 0;
        return NULL;
    }
    return s;
}

/* Fails naming the needle when any of them is in the file's raw bytes. */
static void
assert_file_clean(const char *path, bool must_exist)
{
    size_t len;
    char *bytes = slurp(path, &len);
    if (bytes == NULL) {
        if (must_exist)
            fail_msg("%s missing", path);
        return;
    }
    for (size_t s = 0; s < NSECRETS; s++)
        for (int k = 0; k < 3 && secrets[s].needles[k]; k++)
            if (memmem(bytes, len, secrets[s].needles[k], strlen(secrets[s].needles[k])))
                fail_msg("%s holds secret #%zu in clear (%.6s...)", path, s, secrets[s].needles[k]);
    free(bytes);
}

static int
count_rows(void *ud, const struct fr_event_row *r)
{
    size_t *n = ud;
    (*n)++;
    if (strstr(r->body, "[REDACTED:") == NULL)
        fail_msg("event %lld was stored without any redaction: %.200s", (long long)r->id, r->body);
    return 0;
}

static void
test_redact_corpus_never_reaches_disk(void **state)
{
    struct t_store_fx *f = *state;
    size_t total = NSECRETS * NFIELDS * NSURR, n = 0;
    char **lines = fr_calloc(total, sizeof *lines);
    for (size_t s = 0; s < NSECRETS; s++)
        for (int fld = 0; fld < NFIELDS; fld++)
            for (int how = 0; how < NSURR; how++) {
                char *text = surround(how, secrets[s].text);
                json_t *ev = event_with(fld, text, (int)n);
                lines[n++] = json_dumps(ev, JSON_COMPACT);
                json_decref(ev);
                free(text);
            }
    /* in batches, so the WAL holds real pages before any checkpoint */
    for (size_t at = 0; at < total; at += 500)
        t_ingest(f->st, (const char *const *)lines + at, total - at < 500 ? total - at : 500);
    size_t stored = 0;
    struct fr_event_filter all = {0};
    assert_int_equal(fr_store_events(f->st, &all, count_rows, &stored, NULL), FR_OK);
    assert_int_equal(stored, total);

    char *wal = fr_asprintf("%s-wal", f->path);
    assert_file_clean(f->path, true);
    assert_file_clean(wal, true); /* the store is open: its WAL exists */
    fr_store_close(f->st);
    f->st = NULL;
    assert_file_clean(f->path, true);
    assert_file_clean(wal, false);
    free(wal);
    for (size_t i = 0; i < total; i++)
        free(lines[i]);
    free(lines);
}

/* A secret hidden behind JSON escapes in the producer's bytes is still found. */
static void
test_redact_escaped_secret_is_found(void **state)
{
    (void)state;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                       "\"data\":{\"result\":\"key=\\u0073k-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE\\n\"}}";
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_null(strstr(rec.body, "Zq8XbN3kLm5PqR7sT9vW2yA4cE"));
    assert_non_null(strstr(rec.body, "[REDACTED:openai_key]"));
    fr_record_clear(&rec);
}

/* ---- near misses and the false-positive rate ---- */

static void
test_redact_near_misses_stay(void **state)
{
    (void)state;
    static const char *const benign[] = {
        "I used sk-learn and scikit-learn for this, see sk- prefixes in the docs",
        "the task-1234567890abcdefghij is done",
        "card test number 1234 5678 9012 3456 fails Luhn",
        "call 1234567890123456 a random digit run",
        "upgrade to version 1.2.3.4 today",
        "release v10.0.0.1 is out",
        "the meeting is at 12:30:45 tomorrow",
        "OID 1.3.6.1.4.1 identifies the vendor",
        "use std::vector and Foo::bar in C++",
        "order #12345678 shipped on 2024-10-12",
        "ISBN 978-3-16-148410-0",
        "the Bearer of bad news",
        "contact root@localhost for help",
        "ghp_short is not a token",
        "AKIA is a prefix, AKIAshort too",
        "password: see the vault",
        "price 1,234,567.89 USD, 3.14159 pi",
        "timestamps 1760000000000 and 1700000000",
        "eyJ is how base64 JSON starts",
        "a::b and dead::beef in Rust paths",
        "set max_tokens: 4096 and \"max_tokens\": 2048, \"input_tokens\": 31337",
        "tokenizer: cl100k_base_with_extras_v2",
        "the secretary: Margaret Thompson-Whitfield",
        "secret_santa_assignments_for_december_2026",
        "cache key-d41d8cd98f00b204e9800998ecf8427e expired",
        "SKU AB12 CDEF GHIJ KLMN is back in stock",
        "GB00 WEST 1234 5698 7654 32 has a wrong check",
        "call hf_hub_download and hf_transfer first",
        "part 900-12-3456 and 000-12-3456 are not SSNs",
        "\"next_page_token\": \"\" ends the list",
        "docker run -u 1000:1000 image and the cookie: chocolate chip",
        "MTAwMDAwMDAwMDAwMDAwMDAw is base64 of digits, and a.b.c dotted names",
        "NzY1NDMy.abcdef.ghijklmnopqrstuvwxyz0123456789 is too short an id",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 and "
        "id 550e8400-e29b-41d4-a716-446655440000, key-3ax6xnjp29 short, monkey-business",
        "the password is required. Your password was incorrect, try again; the password is NULL",
        "the password is $DB_PASSWORD, the passcode is ******** and the password is "
        "<your-password>",
        "password is case-sensitive and the passphrase was {passphrase} or %s; password is wrong!",
        "the password isn't set and the password is well_known, see redis://cache:6379/0",
        "das Passwort ist falsch, le mot de passe est incorrect, la contrase\xc3\xb1"
        "a es obligatoria",
        "mysql -h db-primary -P 3306 -u app -p then ssh -p 2222 deploy@host, auth: required",
        "https://example.com/list?page=2&sort=signature_date&sig=short",
    };
    struct fr_redactor *r = t_redactor();
    for (size_t i = 0; i < sizeof benign / sizeof *benign; i++) {
        char *out;
        size_t n;
        size_t hits = fr_redact_text(r, benign[i], strlen(benign[i]), FR_DET_ALL, &out, &n);
        if (hits != 0)
            fail_msg("near-miss %zu was redacted: %s -> %s", i, benign[i], out);
    }
}

/*
 * False positives on normal chat text: tests/data/benign_chat.txt is
 * realistic assistant traffic (code, logs, dates, versions, prices, ids)
 * with no secret and no personal datum. docs/redaction.md reports the rate.
 */
static void
test_redact_false_positive_rate(void **state)
{
    (void)state;
    size_t len;
    char *text = slurp(FR_TEST_DATA "/benign_chat.txt", &len);
    assert_non_null(text);
    struct fr_redactor *r = t_redactor();
    size_t lines = 0, hit_lines = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *out;
        size_t n;
        lines++;
        if (fr_redact_text(r, line, strlen(line), FR_DET_ALL, &out, &n) > 0) {
            hit_lines++;
            print_message("false positive: %s\n  -> %s\n", line, out);
            free(out);
        }
    }
    free(text);
    print_message("benign corpus: %zu lines, %zu with a false positive\n", lines, hit_lines);
    assert_true(lines >= 200);
    assert_int_equal(hit_lines, 0);
}

/* ---- keyed hashes ---- */

static struct fr_redactor *
redactor_with(const char *yaml, const unsigned char *key)
{
    struct fr_policy *p;
    struct fr_redactor *r;
    struct fr_err err = {0};
    if (fr_policy_load_text(yaml, strlen(yaml), "test.yaml", &p, &err) != FR_OK)
        fail_msg("policy: %s", err.msg);
    if (fr_redactor_new(p, key, &r, &err) != FR_OK)
        fail_msg("redactor: %s", err.msg);
    return r;
}

static char *
redact_line(struct fr_redactor *r, const char *line)
{
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.red = r;
    struct fr_record rec;
    struct fr_err err = {0};
    if (fr_ingest_prepare(line, strlen(line), &cfg, NULL, &rec, &err) != FR_OK)
        fail_msg("prepare: %s", err.msg);
    char *body = fr_strdup(rec.body);
    fr_record_clear(&rec);
    return body;
}

/* The digests of the seen-clean cache: one key per fr_digest128_new (random, so two caches
   never agree), the same key for a context duplicated for another thread. */
static void
test_redact_digest128_keyed(void **state)
{
    (void)state;
    struct fr_digest128 *d = fr_digest128_new();
    assert_non_null(d);
    struct fr_digest128 *same = fr_digest128_dup(d), *other = fr_digest128_new();
    assert_non_null(same);
    assert_non_null(other);
    static const char text[] = "a long message of a conversation, sent again at every turn";
    uint64_t a[2], b[2], c[2], e[2], x[2];
    assert_true(fr_digest128(d, text, sizeof text - 1, a));
    assert_true(fr_digest128(d, text, sizeof text - 1, b)); /* again: the context restarts */
    assert_true(fr_digest128(same, text, sizeof text - 1, c));
    assert_true(fr_digest128(other, text, sizeof text - 1, e));
    assert_true(fr_digest128(d, text, sizeof text - 2, x)); /* one byte less */
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
    assert_memory_not_equal(a, e, sizeof a);
    assert_memory_not_equal(a, x, sizeof a);
    assert_false(a[0] == 0 && a[1] == 0);
    assert_true(fr_digest128(d, "", 0, x));
    assert_null(fr_digest128_dup(NULL));
    fr_digest128_free(d);
    fr_digest128_free(same);
    fr_digest128_free(other);
    fr_digest128_free(NULL);
}

static void
test_redact_keyed_hash_correlates(void **state)
{
    (void)state;
    char a[FR_TOKEN_LEN + 1], b[FR_TOKEN_LEN + 1], c[FR_TOKEN_LEN + 1];
    unsigned char other[FR_KEY_LEN] = {42};
    struct fr_token_key tk, tko;
    fr_token_key_init(&tk, t_key);
    fr_token_key_init(&tko, other);
    fr_hmac_token(&tk, "jane@example.org", 16, a);
    fr_hmac_token(&tk, "jane@example.org", 16, b);
    fr_hmac_token(&tko, "jane@example.org", 16, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), FR_TOKEN_LEN);
    /* the token names its key: "hmac:" + 4 hex digits of the key id + ":" + 16 hex digits */
    char kid[FR_KEY_ID_HEX + 1];
    fr_key_id_hex(t_key, kid);
    assert_memory_equal(a, "hmac:", 5);
    assert_memory_equal(a + 5, kid, 4);
    assert_int_equal(a[9], ':');
    assert_memory_not_equal(a + 5, c + 5, 4);

    /* through a policy: hashed detector hits, same value in two conversations */
    const char *yaml = "scan_replacement: hash\n";
    struct fr_redactor *r1 = redactor_with(yaml, t_key), *r2 = redactor_with(yaml, other);
    const char *l1 = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c1\","
                     "\"data\":{\"result\":\"mail jane@example.org now\"}}";
    const char *l2 = "{\"kind\":\"tool\",\"ts_ms\":1760000000001,\"conv_id\":\"c2\","
                     "\"data\":{\"args\":{\"to\":\"jane@example.org\"}}}";
    char *b1 = redact_line(r1, l1), *b2 = redact_line(r1, l2), *b3 = redact_line(r2, l1);
    char want[64];
    snprintf(want, sizeof want, "[email:%s]", a);
    assert_non_null(strstr(b1, want));
    assert_non_null(strstr(b2, want));
    assert_null(strstr(b3, want));
    assert_null(strstr(b1, "jane@"));
    free(b1);
    free(b2);
    free(b3);
    fr_redactor_free(r1);
    fr_redactor_free(r2);
}

/* ---- actions, tags, secret keys ---- */

static void
test_redact_actions_and_tags(void **state)
{
    (void)state;
    struct fr_redactor *r = redactor_with("actions: {pii: 'truncate:12', secret: hash}\n"
                                          "fields:\n"
                                          "  - {kind: tool, path: data.args.notes, tag: secret}\n"
                                          "  - {kind: tool, path: data.args.debug, tag: public}\n"
                                          "  - {kind: tool, path: note, tag: public}\n",
                                          t_key);
    /* producer tags raise (data.result -> secret) but never lower (data.args.q stays pii) */
    const char *line =
        "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c1\","
        "\"note\":\"key sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE\","
        "\"tags\":{\"data.result\":\"secret\",\"data.args.q\":\"public\"},"
        "\"data\":{\"name\":\"t\",\"result\":\"top secret answer\","
        "\"args\":{\"q\":\"write to bob@example.com please, thanks a lot\","
        "\"notes\":\"internal notes\",\"debug\":\"key sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE\","
        "\"headers\":{\"Authorization\":\"opaque\",\"X-Trace\":\"abc\"},"
        "\"password\":12345678901}}}";
    char *body = redact_line(r, line);
    json_t *ev = json_loads(body, 0, NULL);
    assert_non_null(ev);
    json_t *d = json_object_get(ev, "data");
    json_t *args = json_object_get(d, "args");
    /* secret -> hash: a token, never the text */
    assert_int_equal(strncmp(json_string_value(json_object_get(d, "result")), "hmac:", 5), 0);
    assert_int_equal(strncmp(json_string_value(json_object_get(args, "notes")), "hmac:", 5), 0);
    /* a secret key name makes the value secret, numbers included */
    json_t *hdr = json_object_get(args, "headers");
    assert_int_equal(strncmp(json_string_value(json_object_get(hdr, "Authorization")), "hmac:", 5),
                     0);
    assert_string_equal(json_string_value(json_object_get(hdr, "X-Trace")), "abc");
    assert_true(json_is_string(json_object_get(args, "password")));
    /* pii -> truncate:12 after scanning: the email is gone before the cut */
    const char *q = json_string_value(json_object_get(args, "q"));
    assert_int_equal(strncmp(q, "write to [RE", 12), 0);
    assert_non_null(strstr(q, "[TRUNCATED:"));
    /* a rule cannot lower what a rule above it says: debug stays pii */
    assert_non_null(strstr(json_string_value(json_object_get(args, "debug")), "[TRUNCATED:"));
    /* public -> keep, but secret detectors still run */
    assert_string_equal(json_string_value(json_object_get(ev, "note")),
                        "key [REDACTED:openai_key]");
    assert_null(strstr(body, "bob@"));
    json_decref(ev);
    free(body);
    fr_redactor_free(r);

    r = redactor_with("actions: {pii: drop}\n", t_key);
    body = redact_line(r, "{\"kind\":\"transport\",\"ts_ms\":1760000000000,\"conv_id\":\"c1\","
                          "\"data\":{\"method\":\"GET\",\"path\":\"/x\",\"status\":200,"
                          "\"client_ip\":\"198.51.100.23\",\"user_agent\":\"curl/8\"}}");
    assert_null(strstr(body, "client_ip"));
    assert_null(strstr(body, "user_agent"));
    assert_non_null(strstr(body, "\"method\":\"GET\""));
    free(body);
    fr_redactor_free(r);
}

/*
 * Credentials named only by their key: tests/data/secret_keys.tsv lists
 * key names with their verdict (a few hundred: every way a chat server, an
 * SDK or an environment names a password, secret, token, credential key,
 * cookie or authorization, and the LLM counters, tokenizer tokens, cursors
 * and credential attributes that must stay). Each is checked against the
 * rule, then through the redactor as a tool argument: a secret's value is
 * hashed whole (numbers included), any other value is kept byte for byte.
 */
static void
test_redact_key_names_by_meaning(void **state)
{
    (void)state;
    size_t len;
    char *text = slurp(FR_TEST_DATA "/secret_keys.tsv", &len);
    assert_non_null(text);
    struct fr_redactor *r = redactor_with("", t_key);
    size_t n = 0, secrets = 0, wrong = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        const char *key = line, *want = tab + 1;
        bool secret = strcmp(want, "secret") == 0;
        assert_true(secret || strcmp(want, "keep") == 0);
        n++;
        secrets += secret;
        const char *rule = fr_key_secret_rule(key);
        /* the exact secret_keys of the built-in policy count as well */
        char *ev = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                               "\"data\":{\"name\":\"t\",\"args\":{\"%s\":\"opaque-value-123\","
                               "\"inner-9z\":{\"%s\":4321}}}}",
                               key, key);
        char *body = redact_line(r, ev);
        bool kept = strstr(body, "opaque-value-123") != NULL && strstr(body, ":4321") != NULL;
        bool hashed = strstr(body, "opaque-value-123") == NULL && strstr(body, "4321") == NULL;
        if ((secret && !hashed) || (!secret && !kept)) {
            print_message("%s: want %s, rule says %s, redactor stored %s\n", key, want,
                          rule ? rule : "(none)", body);
            wrong++;
        }
        free(body);
        free(ev);
    }
    free(text);
    fr_redactor_free(r);
    print_message("%zu key names (%zu credentials), %zu wrong\n", n, secrets, wrong);
    assert_true(n >= 200);
    assert_int_equal(wrong, 0);
}

/*
 * Duplicate keys cannot smuggle a secret to disk: the parsed tree keeps the
 * last value, so a line whose first "data" held the secret needed no
 * change and its raw bytes (both values) would be stored. Such a line is
 * refused, naming the byte but not the key or value; inside a JSON array
 * body (stored from the redacted tree, never raw) the last value is what
 * is stored.
 */
static void
test_redact_duplicate_keys_never_smuggle(void **state)
{
    (void)state;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                       "\"data\":{\"args\":\"AKIAIOSFODNN7EXAMPLE 4242 4242 4242 4242\"},"
                       "\"data\":{\"args\":\"ok\"}}";
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, &rec, &err), FR_E_SYNTAX);
    assert_non_null(strstr(err.msg, "duplicate key"));
    assert_null(strstr(err.msg, "data"));
    assert_null(strstr(err.msg, "AKIA"));
    /* nested too */
    const char *nested =
        "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
        "\"data\":{\"name\":\"t\",\"args\":{\"q\":\"sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE\","
        "\"q\":\"fine\"}}}";
    assert_int_equal(t_prepare(nested, &rec, &err), FR_E_SYNTAX);
    /* an array element: taken as a tree, stored re-serialized */
    json_t *el = json_loads(line, 0, NULL);
    assert_non_null(el);
    assert_int_equal(fr_ingest_prepare_tree(el, t_cfg(), NULL, &rec, &err), FR_OK);
    assert_null(strstr(rec.body, "AKIA"));
    assert_null(strstr(rec.body, "4242"));
    fr_record_clear(&rec);
}

/*
 * The keys of tags are scanned like every key: a token used as a tag's path
 * is replaced in the stored body; a bad tag is refused naming its position,
 * never its key.
 */
static void
test_redact_tag_keys_scanned(void **state)
{
    (void)state;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                       "\"tags\":{\"ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5\":\"public\"},"
                       "\"data\":{\"name\":\"t\"}}";
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_null(strstr(rec.body, "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"));
    assert_non_null(strstr(rec.body, "[REDACTED:github_token]"));
    fr_record_clear(&rec);
    const char *bad = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                      "\"tags\":{\"ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5\":\"top\"}}";
    assert_int_equal(t_prepare(bad, &rec, &err), FR_E_VALUE);
    assert_null(strstr(err.msg, "ghp_"));
    assert_non_null(strstr(err.msg, "tags: entry 1"));
}

/* Ids are public, but one holding what a detector knows is hashed whole (stable, so
 * grouping works); a producer's own top-level fields are scanned as pii. */
static void
test_redact_ids_and_attributes(void **state)
{
    (void)state;
    struct fr_redactor *r = redactor_with("", t_key);
    char *b1 = redact_line(r, "{\"kind\":\"tool\",\"ts_ms\":1760000000000,"
                              "\"conv_id\":\"jane.doe@example.com\",\"session_id\":\"s-000001\","
                              "\"note\":\"mail jane.doe@example.com\",\"data\":{\"name\":\"t\"}}");
    char *b2 = redact_line(r, "{\"kind\":\"tool\",\"ts_ms\":1760000000001,"
                              "\"conv_id\":\"jane.doe@example.com\",\"data\":{\"name\":\"t\"}}");
    assert_null(strstr(b1, "jane.doe"));
    assert_null(strstr(b2, "jane.doe"));
    json_t *j1 = json_loads(b1, 0, NULL), *j2 = json_loads(b2, 0, NULL);
    const char *c1 = json_string_value(json_object_get(j1, "conv_id"));
    assert_int_equal(strncmp(c1, "hmac:", 5), 0);
    assert_string_equal(c1, json_string_value(json_object_get(j2, "conv_id")));
    assert_string_equal(json_string_value(json_object_get(j1, "session_id")), "s-000001");
    assert_string_equal(json_string_value(json_object_get(j1, "note")), "mail [REDACTED:email]");
    json_decref(j1);
    json_decref(j2);
    free(b1);
    free(b2);
    fr_redactor_free(r);
}

/*
 * A worker remembers short texts its scans found nothing in and does not
 * scan them again (redact.c): thousands of distinct secrets among repeated
 * clean words, more than its slots, are each still found (a slot is reused
 * only for the very same text), and a secret that repeats is found every
 * time. An anchored custom detector matches a whole value wherever the value
 * sits in the event, and a line of one, but not the same text inside prose.
 */
static void
test_redact_known_clean_texts(void **state)
{
    (void)state;
    struct fr_redactor *r = redactor_with("detectors:\n"
                                          "  - name: ticket\n"
                                          "    class: secret\n"
                                          "    pattern: '^TKT-[0-9]{4}$'\n",
                                          t_key);
    for (int i = 0; i < 3000; i++) {
        char secret[40], word[16], line[512];
        snprintf(secret, sizeof secret, "sk-%08dQwErTyUiOpAsDfGh", i * 7919);
        snprintf(word, sizeof word, "w%d", i % 40);
        snprintf(line, sizeof line,
                 "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"c-%d\",\"data\":{"
                 "\"name\":\"t\",\"role\":\"user\",\"word\":\"%s\",\"key\":\"%s\","
                 "\"again\":\"sk-REPEATEDsecretKEY0123456\",\"ticket\":\"TKT-%04d\","
                 "\"lines\":\"see below\\nTKT-5678\",\"note\":\"ticket TKT-1234 inline\"}}",
                 1760000000000LL + i, i % 9, word, secret, i % 10000);
        char *b = redact_line(r, line);
        if (strstr(b, secret) != NULL || strstr(b, "REPEATEDsecret") != NULL)
            fail_msg("event %d: a secret was kept: %s", i, b);
        json_t *j = json_loads(b, 0, NULL);
        json_t *d = json_object_get(j, "data");
        assert_string_equal(json_string_value(json_object_get(d, "word")), word);
        assert_string_equal(json_string_value(json_object_get(d, "role")), "user");
        if (strncmp(json_string_value(json_object_get(d, "ticket")), "TKT-", 4) == 0)
            fail_msg("event %d: the anchored detector missed a whole value: %s", i, b);
        assert_null(strstr(json_string_value(json_object_get(d, "lines")), "5678"));
        assert_string_equal(json_string_value(json_object_get(d, "note")),
                            "ticket TKT-1234 inline");
        json_decref(j);
        free(b);
    }
    fr_redactor_free(r);
}

/* fr_redact_event on one event line; its counts added to *c. */
static char *
redact_counted(struct fr_redactor *r, const char *line, struct fr_redact_counts *c)
{
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    struct fr_event ev;
    struct fr_err err = {0};
    if (fr_wire_parse(line, strlen(line), &lim, &ev, &err) != FR_OK)
        fail_msg("parse: %s", err.msg);
    bool changed;
    assert_int_equal(fr_redact_event(r, &ev, c, NULL, NULL, &changed, &err), FR_OK);
    char *out = json_dumps(ev.root, JSON_COMPACT);
    fr_event_clear(&ev);
    return out;
}

/*
 * A provider request carries its conversation's history again at every
 * turn (redact.c, the seen-clean texts): a long message found clean is not
 * scanned again, by any worker of the redactor, and the counts say how much
 * was not; a message that held a secret is scanned and redacted every time
 * it comes back, and so is one that differs from a clean one in a single
 * character. Another redactor (another policy, or after a restart) knows
 * nothing of the first one's texts.
 */
static void
test_redact_known_clean_history(void **state)
{
    (void)state;
    static const char sys[] =
        "You are a careful assistant for the support team of an airline group.";
    static const char u1[] = "My flight to Lisbon was cancelled yesterday, so what can I do now?";
    static const char a1[] =
        "I am sorry to hear that. You can rebook on the next flight at no cost.";
    static const char u2[] =
        "Please rebook me, my key is sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ ok";
    /* u1 with one character changed and a mail address in place of a word */
    static const char u1x[] =
        "My flight to Lisbon was cancelled yesterday, so what can I do n@w.pt?";
    struct fr_redactor *r = redactor_with("", t_key);
    char line[2048];
#define TURN(n, msgs)                                                                              \
    snprintf(line, sizeof line,                                                                    \
             "{\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"c-h\",\"data\":{\"provider\":"   \
             "\"openai\",\"model\":\"gpt-4o\",\"request\":{\"messages\":[%s]}}}",                  \
             1771357445000LL + (n), msgs)
#define MSG(role, text) "{\"role\":\"" role "\",\"content\":\"" text "\"}"
    struct fr_redact_counts c1, c2, c3, c4;
    fr_redact_counts_init(&c1, r);
    fr_redact_counts_init(&c2, r);
    fr_redact_counts_init(&c3, r);
    fr_redact_counts_init(&c4, r);
    char msgs[1536];
    snprintf(msgs, sizeof msgs, MSG("system", "%s") "," MSG("user", "%s"), sys, u1);
    TURN(1, msgs);
    free(redact_counted(r, line, &c1));
    assert_int_equal(c1.bytes_known, 0); /* nothing was seen before the first event */
    /* the second turn: the first two messages again (not scanned), an answer and a secret */
    snprintf(
        msgs, sizeof msgs,
        MSG("system", "%s") "," MSG("user", "%s") "," MSG("assistant", "%s") "," MSG("user", "%s"),
        sys, u1, a1, u2);
    TURN(2, msgs);
    char *b2 = redact_counted(r, line, &c2);
    assert_true(c2.bytes_known >= sizeof sys + sizeof u1); /* each text and its newline */
    assert_null(strstr(b2, "Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ"));
    assert_non_null(strstr(b2, a1));
    free(b2);
    /* the third: the secret comes back (redacted again), and u1 nearly (a new text, scanned) */
    snprintf(msgs, sizeof msgs,
             MSG("system", "%s") "," MSG("user", "%s") "," MSG("assistant", "%s") "," MSG(
                 "user", "%s") "," MSG("user", "%s"),
             sys, u1, a1, u2, u1x);
    TURN(3, msgs);
    char *b3 = redact_counted(r, line, &c3);
    assert_null(strstr(b3, "Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ"));
    assert_null(strstr(b3, "n@w.pt"));
    assert_non_null(strstr(b3, u1)); /* the clean one kept as it was */
    assert_true(c3.bytes_known >= sizeof sys + sizeof u1 + sizeof a1);
    assert_true(c3.bytes_scanned >= sizeof u2 + sizeof u1x);
    /* another redactor: every long text scanned again, the same result */
    struct fr_redactor *r2 = redactor_with("", t_key);
    char *b4 = redact_counted(r2, line, &c4);
    assert_string_equal(b4, b3);
    assert_int_equal(c4.bytes_known, 0);
    free(b3);
    free(b4);
#undef TURN
#undef MSG
    fr_redact_counts_free(&c1);
    fr_redact_counts_free(&c2);
    fr_redact_counts_free(&c3);
    fr_redact_counts_free(&c4);
    fr_redactor_free(r2);
    fr_redactor_free(r);
}

/* Fails naming the first of the n secrets the redacted body still holds. */
static void
assert_none_kept(const char *body, const char *const *secrets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(body, secrets[i]) != NULL)
            fail_msg("%s was kept: %s", secrets[i], body);
}

/*
 * A command line as an array of arguments: the flag before an argument says it is a
 * credential (--password, --token, --api-key; -u and --user when it holds user:password),
 * and a value that starts with "-u user:password" is one too. Flags that name something else
 * (--max-tokens, --token-file, --user with a name alone) leave their argument as it is.
 */
static void
test_redact_argv_flags(void **state)
{
    (void)state;
    struct fr_redactor *r = redactor_with("", t_key);
    char *b = redact_line(
        r, "{\"kind\":\"tool\",\"ts_ms\":1771357445000,\"conv_id\":\"c-argv\",\"data\":{"
           "\"name\":\"shell\",\"args\":{\"argv\":[\"curl\",\"-u\",\"admin:Hunter2pass\","
           "\"--user\",\"bob\",\"--password\",\"Pw0rd7781\",\"--max-tokens\",\"4096\","
           "\"--token\",\"tok_7fQ2mZ\",\"--api-key\",\"K3y9Zt\",\"--token-file\",\"/etc/tok\","
           "\"--password\",{\"nested\":1},\"--user\"],"
           "\"cmd\":\"-u deploy:S3cretPass https://ci.example.com\"}}}");
    json_t *j = json_loads(b, 0, NULL);
    assert_non_null(j);
    json_t *args = json_object_get(json_object_get(j, "data"), "args");
    json_t *argv = json_object_get(args, "argv");
    static const char *const kept[] = {"curl",       "-u",           "--user",  "bob",
                                       "--password", "--max-tokens", "4096",    "--token",
                                       "--api-key",  "--token-file", "/etc/tok"};
    static const size_t kept_at[] = {0, 1, 3, 4, 5, 7, 8, 9, 11, 13, 14};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        assert_string_equal(json_string_value(json_array_get(argv, kept_at[i])), kept[i]);
    static const char *const secret[] = {"Hunter2pass", "Pw0rd7781", "tok_7fQ2mZ", "K3y9Zt",
                                         "S3cretPass"};
    assert_none_kept(b, secret, sizeof secret / sizeof *secret);
    /* an object after a credential's flag is walked as it is; a flag at the end is harmless */
    assert_true(json_is_object(json_array_get(argv, 16)));
    assert_string_equal(json_string_value(json_array_get(argv, 17)), "--user");
    assert_non_null(
        strstr(json_string_value(json_object_get(args, "cmd")), "https://ci.example.com"));
    json_decref(j);
    free(b);
    fr_redactor_free(r);
}

/*
 * A string that holds JSON (a tool call's arguments, as OpenAI-shaped responses carry them) is
 * walked as JSON: the key-name rules, the argv flags and the detectors reach each value inside
 * it, also in JSON held in a string inside it, and the string is written back, compact, only
 * when something in it changed; one that changed nothing stays byte for byte. What is not one
 * JSON object or array, or names a key twice, is scanned as text as before.
 */
static void
test_redact_json_in_strings(void **state)
{
    (void)state;
    struct fr_redactor *r = redactor_with("", t_key);
    char *b = redact_line(
        r,
        "{\"kind\":\"provider\",\"ts_ms\":1771357445000,\"conv_id\":\"c-json\",\"data\":{"
        "\"provider\":\"openai\",\"response\":{\"tool_calls\":[{\"id\":\"call_1\",\"function\":{"
        "\"name\":\"db\",\"arguments\":\"{\\\"token\\\":\\\"abc123\\\",\\\"argv\\\":[\\\"mysql\\\","
        "\\\"--password\\\",\\\"pw9911\\\"],\\\"note\\\":\\\"mail jo@example.com\\\","
        "\\\"inner\\\":\\\"{\\\\\\\"api_key\\\\\\\":\\\\\\\"k-1\\\\\\\"}\\\",\\\"n\\\":1.50}\"}},"
        "{\"id\":\"call_2\",\"function\":{\"name\":\"weather\",\"arguments\":"
        "\"{ \\\"city\\\" : \\\"Lisbon\\\",  \\\"days\\\": 1.50 }\"}}],"
        "\"dup\":\"{\\\"password\\\":\\\"x1\\\",\\\"password\\\":\\\"hunter22\\\"}\","
        "\"notjson\":\"{call me at jo@example.com}\"}}}");
    json_t *j = json_loads(b, 0, NULL);
    assert_non_null(j);
    json_t *data = json_object_get(j, "data");
    json_t *calls = json_object_get(json_object_get(data, "response"), "tool_calls");
    const char *args = json_string_value(
        json_object_get(json_object_get(json_array_get(calls, 0), "function"), "arguments"));
    static const char *const secret[] = {"abc123", "pw9911", "jo@example.com", "k-1", "hunter22"};
    assert_none_kept(b, secret, sizeof secret / sizeof *secret);
    /* still JSON, its clean values kept, the inner JSON text too */
    json_t *a = json_loads(args, 0, NULL);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "argv"), 1)),
                        "--password");
    assert_string_equal(json_string_value(json_object_get(a, "note")), "mail [REDACTED:email]");
    json_t *inner = json_loads(json_string_value(json_object_get(a, "inner")), 0, NULL);
    assert_non_null(inner);
    assert_string_equal(json_string_value(json_object_get(inner, "api_key")), "[REDACTED:secret]");
    json_decref(inner);
    json_decref(a);
    /* nothing changed in the second call's arguments: as sent, spaces and 1.50 included */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(calls, 1), "function"), "arguments")),
                        "{ \"city\" : \"Lisbon\",  \"days\": 1.50 }");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(data, "response"), "notjson")),
        "{call me at [REDACTED:email]}");
    json_decref(j);
    free(b);
    fr_redactor_free(r);
}

/* A policy with an anchored detector says what its anchors mean in its JSON (and so in its id,
   which events record): ^ and $ outside a class and unescaped, not [^...], \\^ or [$]. */
static void
test_redact_policy_anchors_marked(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        bool anchored;
    } cases[] = {
        {"^TKT-[0-9]{4}$", true}, {"TKT-[0-9]{4}$", true}, {"(?:a|^b)", true},
        {"[^\\s]+x", false},      {"a\\^b\\$", false},     {"[$^]x", false},
        {"[]^]x", false},         {"[^]$]x", false},       {"(?:x|y)$", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = fr_asprintf("include_builtin_detectors: false\n"
                                 "detectors:\n  - name: d\n    class: secret\n"
                                 "    pattern: '%s'\n",
                                 cases[i].pattern);
        struct fr_redactor *r = redactor_with(yaml, t_key);
        bool marked = strstr(fr_policy_json(fr_redactor_policy(r)), "\"anchors\"") != NULL;
        if (marked != cases[i].anchored)
            fail_msg("'%s': marked %d, want %d", cases[i].pattern, marked, cases[i].anchored);
        fr_redactor_free(r);
        free(yaml);
    }
    /* the built-in policy has one since 2026-12-07 (cli_credential: "-u user:password" at the
       start of a value) */
    struct fr_redactor *r = redactor_with("", t_key);
    assert_non_null(strstr(fr_policy_json(fr_redactor_policy(r)), "\"anchors\":\"per value\""));
    fr_redactor_free(r);
}

/* ---- policies ---- */

static void
t_expect_policy_error(const char *yaml, const char *want)
{
    struct fr_policy *p = NULL;
    struct fr_redactor *r = NULL;
    struct fr_err err = {0};
    int rc = fr_policy_load_text(yaml, strlen(yaml), "user.yaml", &p, &err);
    if (rc == FR_OK) {
        rc = fr_redactor_new(p, t_key, &r, &err);
        fr_redactor_free(r);
    }
    assert_int_equal(rc, FR_E_CONFIG);
    if (strstr(err.msg, want) == NULL)
        fail_msg("expected '%s' in: %s", want, err.msg);
}

static void
test_redact_policy_errors_name_line(void **state)
{
    (void)state;
    t_expect_policy_error("actions:\n  pii: shred\n",
                          "user.yaml:2: actions: unknown action 'shred'");
    t_expect_policy_error("actions:\n  pii: 'truncate:x'\n", "user.yaml:2");
    t_expect_policy_error("actions:\n  topsecret: keep\n", "'topsecret' is not a tag");
    t_expect_policy_error("colour: blue\n", "user.yaml:1: unknown key 'colour'");
    t_expect_policy_error("disable: [nonesuch]\n", "no detector named 'nonesuch'");
    t_expect_policy_error("fields:\n  - {kind: bogus, path: data.x, tag: pii}\n",
                          "user.yaml:2: fields: kind 'bogus'");
    t_expect_policy_error("detectors:\n  - {name: broken, pattern: 'a(b'}\n",
                          "user.yaml:2: detector 'broken': pattern:");
    t_expect_policy_error("detectors:\n  - {name: nopat}\n", "needs 'name' and 'pattern'");
    t_expect_policy_error("fields: [\n", "user.yaml:");
}

static void
test_redact_policy_merge_and_id(void **state)
{
    (void)state;
    struct fr_redactor *r =
        redactor_with("disable: [email]\n"
                      "detectors:\n"
                      "  - {name: ticket, class: secret, pattern: 'TICKET-[0-9]{6}'}\n",
                      t_key);
    assert_string_not_equal(fr_policy_id(fr_redactor_policy(r)),
                            fr_policy_id(fr_redactor_policy(t_redactor())));
    assert_int_equal(strlen(fr_policy_id(fr_redactor_policy(r))), 16);
    char *out = NULL;
    size_t n;
    const char *t = "TICKET-123456 from a@example.com";
    assert_int_equal(fr_redact_text(r, t, strlen(t), FR_DET_ALL, &out, &n), 1);
    assert_string_equal(out, "[REDACTED:ticket] from a@example.com");
    free(out);
    fr_redactor_free(r);

    /* starting from nothing: no detector at all */
    r = redactor_with("include_builtin_detectors: false\n", t_key);
    assert_int_equal(fr_redactor_detectors(r), 0);
    assert_int_equal(fr_redact_text(r, t, strlen(t), FR_DET_ALL, &out, &n), 0);
    fr_redactor_free(r);
}

/* The agent compiles detectors in a child process and loads the serialized databases: the
   same matches as compiled here, and a bad pattern named the same way. */
static void
test_redact_compile_isolated(void **state)
{
    (void)state;
    const char *yaml =
        "detectors:\n  - {name: ticket, class: secret, pattern: 'TICKET-[0-9]{6}'}\n";
    const char *texts[] = {
        "TICKET-123456 from a@example.com, key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "card 4111 1111 1111 1111 and +1 415 555 0100, host 10.1.2.3",
        "nothing to see here",
    };
    struct fr_redactor *here = redactor_with(yaml, t_key);
    fr_redact_isolate_compile(true);
    size_t before = fr_redact_isolated_compiles();
    struct fr_redactor *child = redactor_with(yaml, t_key);
    assert_int_equal(fr_redact_isolated_compiles(), before + 1);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *a = NULL, *b = NULL;
        size_t na, nb;
        size_t ha = fr_redact_text(here, texts[i], strlen(texts[i]), FR_DET_ALL, &a, &na);
        size_t hb = fr_redact_text(child, texts[i], strlen(texts[i]), FR_DET_ALL, &b, &nb);
        assert_int_equal(ha, hb);
        assert_string_equal(a ? a : texts[i], b ? b : texts[i]);
        free(a);
        free(b);
    }
    char *out = NULL;
    size_t n;
    assert_true(fr_redact_text(child, texts[0], strlen(texts[0]), FR_DET_ALL, &out, &n) >= 2);
    assert_non_null(strstr(out, "[REDACTED:ticket]"));
    free(out);
    t_expect_policy_error("detectors:\n  - {name: broken, pattern: 'a(b'}\n",
                          "user.yaml:2: detector 'broken': pattern:");
    assert_int_equal(fr_redact_isolated_compiles(), before + 2);
    fr_redact_isolate_compile(false);
    fr_redactor_free(child);
    fr_redactor_free(here);
}

/* ---- raw mode and keys ---- */

struct raw_copy {
    unsigned char *raw;
    size_t len;
    char aad[256]; /* where the row says it belongs */
    size_t alen;
};

static int
grab_raw(void *ud, const struct fr_event_row *r)
{
    struct raw_copy *c = ud;
    if (r->raw != NULL) {
        c->raw = fr_malloc(r->raw_len);
        memcpy(c->raw, r->raw, r->raw_len);
        c->len = r->raw_len;
        c->alen = fr_raw_aad(r->ids[FR_ID_CONV], r->ids[FR_ID_EVENT], r->ts_ms, r->kind, c->aad,
                             sizeof c->aad);
    }
    return 0;
}

static void
test_redact_raw_mode_round_trip(void **state)
{
    struct t_store_fx *f = *state;
    unsigned char rawkey[FR_KEY_LEN] = {7, 7, 7}, wrong[FR_KEY_LEN] = {8};
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.raw_key = rawkey;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"raw1\","
                       "\"data\":{\"result\":\"token ghp_R4nd0mT0k3nV4lu3Abcdefghij1234567890\"}}";
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(fr_ingest_prepare(line, strlen(line), &cfg, NULL, &rec, &err), FR_OK);
    assert_non_null(rec.raw);
    assert_int_equal(fr_ingest_commit(f->st, &rec, 1, fr_now_ms(), NULL, &err), FR_OK);
    fr_record_clear(&rec);
    assert_file_clean(f->path, true); /* sealed: the token is not in the file */

    struct fr_event_filter q = {.conv_id = "raw1"};
    struct raw_copy copy = {0};
    assert_int_equal(fr_store_events(f->st, &q, grab_raw, &copy, &err), FR_OK);
    assert_non_null(copy.raw);
    unsigned char *pt = NULL;
    size_t len = 0;
    assert_int_equal(fr_unseal(rawkey, copy.aad, copy.alen, copy.raw, copy.len, &pt, &len, &err),
                     FR_OK);
    assert_int_equal(len, strlen(line));
    assert_memory_equal(pt, line, len);
    free(pt);
    /* without the key nothing comes back */
    assert_int_equal(fr_unseal(wrong, copy.aad, copy.alen, copy.raw, copy.len, &pt, &len, &err),
                     FR_E_VALUE);
    assert_null(pt);
    /* moved to another row (another conversation, event or time), it does not open */
    char other[256];
    size_t olen = fr_raw_aad("raw2", NULL, 1760000000000, "tool", other, sizeof other);
    assert_int_equal(fr_unseal(rawkey, other, olen, copy.raw, copy.len, &pt, &len, &err),
                     FR_E_VALUE);
    assert_null(pt);
    olen = fr_raw_aad("raw1", NULL, 1760000000001, "tool", other, sizeof other);
    assert_int_equal(fr_unseal(rawkey, other, olen, copy.raw, copy.len, &pt, &len, &err),
                     FR_E_VALUE);
    /* a flipped byte fails authentication */
    copy.raw[copy.len - 1] ^= 1;
    assert_int_equal(fr_unseal(rawkey, copy.aad, copy.alen, copy.raw, copy.len, &pt, &len, &err),
                     FR_E_VALUE);
    assert_null(pt);
    free(copy.raw);

    /* raw mode off (the default): nothing sealed */
    assert_int_equal(t_prepare(line, &rec, &err), FR_OK);
    assert_null(rec.raw);
    fr_record_clear(&rec);
}

static void
test_redact_key_file_owner_only(void **state)
{
    (void)state;
    char *dir = t_tmpdir();
    char *path = t_path(dir, "keys/sub/hmac.key");
    unsigned char k1[FR_KEY_LEN], k2[FR_KEY_LEN];
    bool created = false;
    struct fr_err err = {0};
    assert_int_equal(fr_key_load(path, false, k1, &created, &err), FR_E_IO);
    assert_int_equal(fr_key_load(path, true, k1, &created, &err), FR_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fr_key_load(path, true, k2, &created, &err), FR_OK);
    assert_false(created);
    assert_memory_equal(k1, k2, FR_KEY_LEN);
    chmod(path, 0644);
    assert_int_equal(fr_key_load(path, true, k2, NULL, &err), FR_E_CONFIG);
    assert_non_null(strstr(err.msg, "chmod 600"));
    chmod(path, 0600);
    FILE *fp = fopen(path, "w");
    fputs("not a key\n", fp);
    fclose(fp);
    assert_int_equal(fr_key_load(path, true, k2, NULL, &err), FR_E_CONFIG);
    t_rmtree(dir);
    free(dir);
    free(path);
}

/* The policy that redacted an event is recorded with it. */
static void
test_redact_policy_recorded_with_events(void **state)
{
    struct t_store_fx *f = *state;
    const struct fr_policy *p = fr_redactor_policy(t_redactor());
    struct fr_err err = {0};
    assert_int_equal(fr_store_policy(f->st, fr_policy_id(p), fr_policy_json(p), 1, &err), FR_OK);
    assert_int_equal(fr_store_policy(f->st, fr_policy_id(p), fr_policy_json(p), 2, &err), FR_OK);
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"p1\"}";
    t_ingest(f->st, &line, 1);
    fr_store_close(f->st);
    f->st = NULL;
    char *cmd = fr_asprintf("sqlite3 %s \"SELECT e.policy = p.id, length(p.policy) > 100 FROM "
                            "events e JOIN redaction_policies p ON p.id = e.policy\"",
                            f->path);
    char *out = NULL;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_string_equal(out, "1|1\n");
    free(out);
    free(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redact_corpus_never_reaches_disk, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test(test_redact_escaped_secret_is_found),
        cmocka_unit_test(test_redact_near_misses_stay),
        cmocka_unit_test(test_redact_false_positive_rate),
        cmocka_unit_test(test_redact_keyed_hash_correlates),
        cmocka_unit_test(test_redact_digest128_keyed),
        cmocka_unit_test(test_redact_actions_and_tags),
        cmocka_unit_test(test_redact_ids_and_attributes),
        cmocka_unit_test(test_redact_known_clean_texts),
        cmocka_unit_test(test_redact_known_clean_history),
        cmocka_unit_test(test_redact_argv_flags),
        cmocka_unit_test(test_redact_json_in_strings),
        cmocka_unit_test(test_redact_policy_anchors_marked),
        cmocka_unit_test(test_redact_policy_errors_name_line),
        cmocka_unit_test(test_redact_policy_merge_and_id),
        cmocka_unit_test(test_redact_compile_isolated),
        cmocka_unit_test_setup_teardown(test_redact_raw_mode_round_trip, t_store_setup,
                                        t_store_teardown),
        cmocka_unit_test(test_redact_key_file_owner_only),
        cmocka_unit_test(test_redact_key_names_by_meaning),
        cmocka_unit_test(test_redact_duplicate_keys_never_smuggle),
        cmocka_unit_test(test_redact_tag_keys_scanned),
        cmocka_unit_test_setup_teardown(test_redact_policy_recorded_with_events, t_store_setup,
                                        t_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
