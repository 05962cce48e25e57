/*
 * tests/test_bundle.c - incident bundles: verify passes; a flipped byte in
 * any member fails naming that member; a wrong key fails; replay.ndjson
 * ingested into a fresh store reproduces the conversation view; nothing
 * unredacted goes in; the summary says what failed.
 */
#include "tests/support/support.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "exporters/bundle.h"
#include "exporters/render.h"
#include "exporters/upload.h"
#include "redact/redact.h"

struct bfx {
    char *dir, *bundle, *priv, *pub;
    struct fr_store *st;
    EVP_PKEY *key;
};

static const char *const events[] = {
    "{\"kind\":\"conversation\",\"ts_ms\":1771357445100,\"conv_id\":\"b-1\","
    "\"data\":{\"status\":\"active\"}}",
    "{\"kind\":\"provider\",\"ts_ms\":1771357445200,\"conv_id\":\"b-1\",\"seq\":1,"
    "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"request\":{\"messages\":[{"
    "\"role\":\"user\",\"content\":\"key sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ\"}]}},"
    "\"error\":{\"http_status\":429,\"message\":\"429 Too Many Requests\"}}",
    "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"b-1\",\"seq\":2,"
    "\"data\":{\"name\":\"search\",\"status\":\"timeout\",\"duration_ms\":30000}}",
    "{\"kind\":\"tool\",\"ts_ms\":1771357445400,\"conv_id\":\"b-2\","
    "\"data\":{\"name\":\"other\"}}",
};

static int
bsetup(void **state)
{
    struct bfx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    f->bundle = t_path(f->dir, "incident.tar.zst");
    f->priv = t_path(f->dir, "sign.pem");
    f->pub = t_path(f->dir, "sign.pub.pem");
    f->st = t_store_open(f->dir, "hot.db");
    t_ingest(f->st, events, sizeof events / sizeof *events);
    struct fr_err err = {0};
    assert_int_equal(fr_ed25519_generate(f->priv, f->pub, &err), FR_OK);
    assert_int_equal(fr_ed25519_load(f->priv, true, &f->key, &err), FR_OK);
    *state = f;
    return 0;
}

static int
bteardown(void **state)
{
    struct bfx *f = *state;
    fr_store_close(f->st);
    EVP_PKEY_free(f->key);
    t_rmtree(f->dir);
    free(f->dir);
    free(f->bundle);
    free(f->priv);
    free(f->pub);
    free(f);
    return 0;
}

static void
create(struct bfx *f)
{
    const char *convs[] = {"b-1"};
    struct fr_bundle_select sel = {.convs = convs, .nconvs = 1};
    struct fr_bundle_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, NULL, f->key, f->bundle, &info, &err),
                     FR_OK);
    assert_int_equal(info.events, 3);
    assert_int_equal(info.conversations, 1);
}

static EVP_PKEY *
pubkey(const char *path)
{
    EVP_PKEY *k;
    struct fr_err err = {0};
    assert_int_equal(fr_ed25519_load(path, false, &k, &err), FR_OK);
    return k;
}

/* What rebuild() does to a bundle besides copying it. */
enum smuggle { FLIP_BYTE_IN, EXTRA_MANIFEST, SYMLINK_FOR, DEVICE_FOR, HUGE_FOR };

/*
 * Rewrites the bundle: every member copied, and then one hostile change: a
 * byte of member `name` flipped, a second manifest.json appended, member `name` replaced by a
 * symlink or a character device (size 0), or by 64 MiB of zeros (compressing to almost nothing: a
 * reader that trusted sizes would allocate them).
 */
static void
rebuild(const char *path, enum smuggle how, const char *name)
{
    char *copy = fr_asprintf("%s.orig", path);
    rename(path, copy);
    struct archive *in = archive_read_new(), *out = archive_write_new();
    archive_read_support_filter_zstd(in);
    archive_read_support_format_tar(in);
    assert_int_equal(archive_read_open_filename(in, copy, 65536), ARCHIVE_OK);
    archive_write_add_filter_zstd(out);
    archive_write_set_format_pax_restricted(out);
    assert_int_equal(archive_write_open_filename(out, path), ARCHIVE_OK);
    struct archive_entry *e;
    while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
        size_t n = (size_t)archive_entry_size(e);
        char *buf = fr_malloc(n + 1);
        archive_read_data(in, buf, n);
        buf[n] = '\0';
        const char *mname = archive_entry_pathname(e);
        if (how == FLIP_BYTE_IN && name != NULL && strcmp(mname, name) == 0 && n > 0)
            buf[n / 2] ^= 1;
        if (name != NULL && strcmp(mname, name) == 0 && how != EXTRA_MANIFEST &&
            how != FLIP_BYTE_IN) {
            struct archive_entry *x = archive_entry_new();
            archive_entry_set_pathname(x, mname);
            if (how == SYMLINK_FOR) {
                archive_entry_set_filetype(x, AE_IFLNK);
                archive_entry_set_symlink(x, "/etc/passwd");
                archive_entry_set_size(x, 0);
                archive_write_header(out, x);
            } else if (how == DEVICE_FOR) {
                archive_entry_set_filetype(x, AE_IFCHR);
                archive_entry_set_rdev(x, 0x0103); /* /dev/null's numbers */
                archive_entry_set_size(x, 0);
                archive_write_header(out, x);
            } else {
                size_t big = (size_t)64 << 20;
                archive_entry_set_filetype(x, AE_IFREG);
                archive_entry_set_perm(x, 0600);
                archive_entry_set_size(x, (la_int64_t)big);
                archive_write_header(out, x);
                char *zeros = fr_calloc(1, 1 << 20);
                for (size_t k = 0; k < big >> 20; k++)
                    archive_write_data(out, zeros, 1 << 20);
                free(zeros);
            }
            archive_entry_free(x);
        } else {
            archive_write_header(out, e);
            archive_write_data(out, buf, n);
        }
        free(buf);
    }
    if (how == EXTRA_MANIFEST) { /* a second, different manifest after the signed one */
        struct archive_entry *x = archive_entry_new();
        archive_entry_set_pathname(x, "manifest.json");
        archive_entry_set_filetype(x, AE_IFREG);
        archive_entry_set_perm(x, 0600);
        static const char fake[] = "{\"files\":[]}";
        archive_entry_set_size(x, sizeof fake - 1);
        archive_write_header(out, x);
        archive_write_data(out, fake, sizeof fake - 1);
        archive_entry_free(x);
    }
    archive_read_free(in);
    archive_write_close(out);
    archive_write_free(out);
    unlink(copy);
    free(copy);
}

/*
 * incident verify accepts only what was signed: exactly one manifest and
 * one signature, regular files only, nothing beyond the list; a member
 * whose size is not the manifest's is refused before its data is read, so
 * a small bundle cannot make the reader allocate gigabytes.
 */
static void
test_bundle_verify_refuses_smuggled_members(void **state)
{
    struct bfx *f = *state;
    EVP_PKEY *pub = pubkey(f->pub);
    struct fr_err err = {0};
    static const struct {
        enum smuggle how;
        const char *name, *want;
    } cases[] = {
        {EXTRA_MANIFEST, NULL, "appears twice"},
        {SYMLINK_FOR, "summary.md", "not a regular file"},
        {DEVICE_FOR, "summary.md", "not a regular file"},
        {SYMLINK_FOR, "manifest.sig", "not a regular file"},
        {HUGE_FOR, "summary.md", "the manifest says"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        create(f);
        assert_int_equal(fr_bundle_verify(f->bundle, pub, &err), FR_OK);
        rebuild(f->bundle, cases[i].how, cases[i].name);
        int rc = fr_bundle_verify(f->bundle, pub, &err);
        if (rc == FR_OK || strstr(err.msg, cases[i].want) == NULL)
            fail_msg("case %zu: verify said %s: %s", i, fr_rc_name(rc), err.msg);
    }
    /* reading one member is bounded and strict as well */
    create(f);
    rebuild(f->bundle, HUGE_FOR, "replay.ndjson");
    char *text = NULL;
    size_t len;
    assert_int_equal(fr_bundle_member(f->bundle, "summary.md", &text, &len, &err), FR_OK);
    free(text);
    EVP_PKEY_free(pub);
}

static void
test_bundle_verify_and_tampering(void **state)
{
    struct bfx *f = *state;
    create(f);
    EVP_PKEY *pub = pubkey(f->pub);
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_verify(f->bundle, pub, &err), FR_OK);
    /* the hash sidecar (the uploads' Idempotency-Key) is the file's SHA-256 */
    char *side = fr_asprintf("%s.sha256", f->bundle), *text, *data;
    size_t tl, dl;
    assert_int_equal(fr_read_file(side, &text, &tl, NULL), FR_OK);
    assert_int_equal(fr_read_file(f->bundle, &data, &dl, NULL), FR_OK);
    unsigned char md[32];
    char want[80];
    SHA256((unsigned char *)data, dl, md);
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    snprintf(want + 64, sizeof want - 64, " %zu\n", dl);
    assert_string_equal(text, want);
    free(text);
    free(data);
    free(side);
    /* another key: the signature does not verify */
    char *p2 = t_path(f->dir, "other.pem"), *q2 = t_path(f->dir, "other.pub.pem");
    assert_int_equal(fr_ed25519_generate(p2, q2, &err), FR_OK);
    EVP_PKEY *other = pubkey(q2);
    assert_int_equal(fr_bundle_verify(f->bundle, other, &err), FR_E_VALUE);
    assert_non_null(strstr(err.msg, "signature does not verify"));
    EVP_PKEY_free(other);
    free(p2);
    free(q2);
    /* a flipped byte in any member is found and named */
    static const char *const members[] = {"provider.ndjson", "summary.md", "replay.ndjson",
                                          "tool.ndjson", "manifest.json"};
    for (size_t i = 0; i < sizeof members / sizeof *members; i++) {
        create(f);
        rebuild(f->bundle, FLIP_BYTE_IN, members[i]);
        assert_int_equal(fr_bundle_verify(f->bundle, pub, &err), FR_E_VALUE);
        if (strstr(err.msg, members[i]) == NULL)
            fail_msg("tampering with %s reported as: %s", members[i], err.msg);
    }
    EVP_PKEY_free(pub);
}

static int
view_row(void *ud, const struct fr_event_row *r)
{
    json_t *ev = fr_render_event(r, NULL, 0);
    json_object_del(ev, "flightrec");
    json_array_append_new(ud, ev);
    return 0;
}

static void
test_bundle_replay_reproduces_the_view(void **state)
{
    struct bfx *f = *state;
    create(f);
    char *replay;
    size_t len;
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_member(f->bundle, "replay.ndjson", &replay, &len, &err), FR_OK);
    /* nothing unredacted went in */
    assert_null(strstr(replay, "Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ"));
    assert_non_null(strstr(replay, "[REDACTED:openai_key]"));
    char *dir2 = t_tmpdir();
    struct fr_store *fresh = t_store_open(dir2, "fresh.db");
    const char *lines[16];
    size_t n = 0;
    for (char *l = strtok(replay, "\n"); l && n < 16; l = strtok(NULL, "\n"))
        lines[n++] = l;
    t_ingest(fresh, lines, n);
    struct fr_event_filter q = {.conv_id = "b-1"};
    json_t *a = json_array(), *b = json_array();
    assert_int_equal(fr_store_events(f->st, &q, view_row, a, &err), FR_OK);
    assert_int_equal(fr_store_events(fresh, &q, view_row, b, &err), FR_OK);
    assert_int_equal(json_array_size(a), 3);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    fr_store_close(fresh);
    t_rmtree(dir2);
    free(dir2);
    free(replay);
    /* the summary names the failures */
    char *summary;
    assert_int_equal(fr_bundle_member(f->bundle, "summary.md", &summary, &len, &err), FR_OK);
    assert_non_null(strstr(summary, "provider.rate_limited"));
    assert_non_null(strstr(summary, "tool.timeout"));
    assert_null(strstr(summary, "b-2"));
    /* an open range reads as one, not "since 0, until 0" */
    assert_non_null(strstr(summary, "from the beginning to now"));
    assert_null(strstr(summary, "since 0"));
    assert_non_null(strstr(summary, "## Answers cut short\n\nNone:"));
    free(summary);
    char *manifest;
    assert_int_equal(fr_bundle_member(f->bundle, "manifest.json", &manifest, &len, &err), FR_OK);
    json_t *m = json_loads(manifest, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(m, "events")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "tiers"), 0)), "hot");
    assert_int_equal(json_array_size(json_object_get(m, "redaction_policies")), 1);
    json_decref(m);
    free(manifest);
}

static void
test_bundle_select_by_error_code(void **state)
{
    struct bfx *f = *state;
    struct fr_bundle_select sel = {.error_code = "tool.timeout"};
    struct fr_bundle_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, NULL, f->key, f->bundle, &info, &err),
                     FR_OK);
    assert_int_equal(info.conversations, 1); /* b-1 only: b-2 has no such failure */
    assert_int_equal(info.events, 3);
}

/*
 * The summary lists the calls that succeeded but whose answer did not reach the
 * user whole (filtered, stopped at the token limit), by what their finish
 * reason means; a complete answer and a failure are not among them.
 */
static void
test_bundle_summary_lists_answers_cut_short(void **state)
{
    struct bfx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"provider\",\"ts_ms\":1771357446000,\"conv_id\":\"c-3\",\"data\":{"
        "\"model\":\"gemini-2.5-pro\",\"status\":\"ok\",\"finish_reason\":\"SAFETY\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357446100,\"conv_id\":\"c-3\",\"data\":{"
        "\"model\":\"gpt-4o\",\"status\":\"ok\",\"finish_reason\":\"stop\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357446200,\"conv_id\":\"c-3\",\"data\":{"
        "\"model\":\"claude\",\"status\":\"ok\",\"finish_reason\":\"max_tokens\"}}",
        "{\"kind\":\"provider\",\"ts_ms\":1771357446300,\"conv_id\":\"c-3\",\"data\":{"
        "\"model\":\"gpt-4o\",\"finish_reason\":\"length\"},\"error\":{\"message\":\"stream "
        "reset\"}}",
    };
    t_ingest(f->st, lines, sizeof lines / sizeof *lines);
    const char *convs[] = {"c-3"};
    struct fr_bundle_select sel = {.convs = convs, .nconvs = 1};
    struct fr_bundle_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, NULL, f->key, f->bundle, &info, &err),
                     FR_OK);
    char *summary;
    size_t len;
    assert_int_equal(fr_bundle_member(f->bundle, "summary.md", &summary, &len, &err), FR_OK);
    const char *sec = strstr(summary, "## Answers cut short\n\n");
    assert_non_null(sec);
    const char *end = strstr(sec + 3, "\n## ");
    assert_non_null(end);
    char *part = fr_strndup(sec, (size_t)(end - sec));
    assert_non_null(strstr(part, "`c-3` gemini-2.5-pro: filtered (finish_reason `SAFETY`)"));
    assert_non_null(strstr(part, "`c-3` claude: truncated (finish_reason `max_tokens`)"));
    assert_null(strstr(part, "stop"));   /* complete */
    assert_null(strstr(part, "length")); /* a failure: listed with the failures */
    free(part);
    free(summary);
}

/*
 * summary.md quotes producers' strings as they came: a '|' in a conversation id
 * must not split its table row, a newline in an error message must not end its
 * list item, a backtick must not close the code span around an id.
 */
static void
test_bundle_summary_quotes_markdown_safely(void **state)
{
    struct bfx *f = *state;
    const char *lines[] = {
        "{\"kind\":\"tool\",\"ts_ms\":1771357446000,\"conv_id\":\"p|q`r\\ns\",\"data\":{"
        "\"name\":\"grep|x\",\"status\":\"timeout\",\"duration_ms\":30000},\"error\":{"
        "\"message\":\"\\u001b[31mdeadline | exceeded\\tafter 30 s\\nstack\"}}",
    };
    t_ingest(f->st, lines, sizeof lines / sizeof *lines);
    const char *convs[] = {"p|q`r\ns"};
    struct fr_bundle_select sel = {.convs = convs, .nconvs = 1};
    struct fr_bundle_info info;
    struct fr_err err = {0};
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, NULL, f->key, f->bundle, &info, &err),
                     FR_OK);
    assert_int_equal(info.events, 1);
    char *summary;
    size_t len;
    assert_int_equal(fr_bundle_member(f->bundle, "summary.md", &summary, &len, &err), FR_OK);
    /* the table row: the pipe escaped, the newline written visibly, five cells */
    assert_non_null(strstr(summary, "\n| p\\|q`r\\x0as | "));
    /* the failure's list item: one line, the id in a fence of two backticks, no control
       character (the escape sequence's ESC written visibly, as the CLI shows it) */
    assert_non_null(strstr(
        summary, " ``p|q`r\\x0as`` tool.timeout — \\x1b[31mdeadline | exceeded\tafter 30 s\n"));
    assert_null(strchr(summary, '\x1b'));
    assert_non_null(strstr(summary, "- `grep|x`: 1 failures\n"));
    free(summary);
}

/* --include-raw: the sealed raw payloads go in still encrypted, only with their key. */
static void
test_bundle_include_raw(void **state)
{
    struct bfx *f = *state;
    unsigned char rawkey[32] = {5, 5, 5}, wrong[32] = {6};
    struct fr_ingest_cfg cfg = *t_cfg();
    cfg.raw_key = rawkey;
    const char *line = "{\"kind\":\"tool\",\"ts_ms\":1771357445500,\"conv_id\":\"r-1\","
                       "\"data\":{\"result\":\"mail jane@example.org\"}}";
    struct fr_record rec;
    struct fr_err err = {0};
    assert_int_equal(fr_ingest_prepare(line, strlen(line), &cfg, NULL, &rec, &err), FR_OK);
    assert_int_equal(fr_ingest_commit(f->st, &rec, 1, 1, NULL, &err), FR_OK);
    fr_record_clear(&rec);
    const char *convs[] = {"r-1"};
    struct fr_bundle_select sel = {.convs = convs, .nconvs = 1};
    struct fr_bundle_info info;
    /* without --include-raw: no raw member at all */
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, NULL, f->key, f->bundle, &info, &err),
                     FR_OK);
    char *text;
    size_t len;
    assert_int_equal(fr_bundle_member(f->bundle, "raw.ndjson", &text, &len, &err), FR_E_NOTFOUND);
    /* with a key that does not open them: still none */
    struct fr_keyring wrong_ring = {.n = 1}, ring = {.n = 2};
    memcpy(wrong_ring.key[0], wrong, 32);
    assert_int_equal(
        fr_bundle_create(f->st, &sel, NULL, &wrong_ring, f->key, f->bundle, &info, &err), FR_OK);
    assert_int_equal(fr_bundle_member(f->bundle, "raw.ndjson", &text, &len, &err), FR_E_NOTFOUND);
    /* with the key file, rotated since (a new key first, the sealing one retired after it):
       sealed, and it opens back to the original line */
    memcpy(ring.key[0], wrong, 32);
    memcpy(ring.key[1], rawkey, 32);
    assert_int_equal(fr_bundle_create(f->st, &sel, NULL, &ring, f->key, f->bundle, &info, &err),
                     FR_OK);
    assert_int_equal(fr_bundle_member(f->bundle, "raw.ndjson", &text, &len, &err), FR_OK);
    assert_null(strstr(text, "jane@example.org"));
    json_t *j = json_loads(text, 0, NULL);
    const char *b64 = json_string_value(json_object_get(j, "sealed"));
    assert_non_null(b64);
    unsigned char *sealed = fr_malloc(strlen(b64));
    int n = EVP_DecodeBlock(sealed, (const unsigned char *)b64, (int)strlen(b64));
    size_t slen = (size_t)n - (strlen(b64) >= 2 && b64[strlen(b64) - 2] == '=' ? 2
                               : b64[strlen(b64) - 1] == '='                   ? 1
                                                                               : 0);
    unsigned char *pt;
    size_t ptlen;
    char aad[256];
    size_t alen = fr_raw_aad("r-1", NULL, 1771357445500, "tool", aad, sizeof aad);
    assert_int_equal(fr_unseal(rawkey, aad, alen, sealed, slen, &pt, &ptlen, &err), FR_OK);
    assert_int_equal(ptlen, strlen(line));
    assert_memory_equal(pt, line, ptlen);
    free(pt);
    free(sealed);
    json_decref(j);
    free(text);
    EVP_PKEY *pub = pubkey(f->pub);
    assert_int_equal(fr_bundle_verify(f->bundle, pub, &err), FR_OK);
    EVP_PKEY_free(pub);
}

static bool
erased_b1(void *ud, const char *conv)
{
    (void)ud;
    return strcmp(conv, "b-1") == 0;
}

/*
 * A queued bundle holding a conversation erased since it was queued is
 * dropped from the outbox, never sent; fr_bundles_erase removes such
 * bundles from a folder and leaves the others.
 */
static void
test_bundle_of_erased_conversation_not_sent(void **state)
{
    struct bfx *f = *state;
    create(f);
    char *yaml = t_path(f->dir, "upload.yaml"), *outbox = t_path(f->dir, "outbox");
    FILE *fp = fopen(yaml, "w");
    /* a target nothing listens on: an attempt would fail and keep the bundle queued */
    fprintf(fp,
            "outbox: %s\ntargets:\n  - name: t\n    url: http://127.0.0.1:9/u/{name}\n"
            "    max_attempts: 1\n",
            outbox);
    fclose(fp);
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, f->bundle, "t", &err), FR_OK);
    char conv[64] = "";
    assert_true(fr_bundle_holds_erased(f->bundle, erased_b1, NULL, conv, sizeof conv));
    assert_string_equal(conv, "b-1");
    c.erased = erased_b1;
    struct fr_outbox_stats st;
    assert_int_equal(fr_outbox_flush_stats(&c, &st, &err), FR_OK);
    assert_int_equal(st.sent + st.failed, 0); /* not tried */
    struct fr_outbox_item *items;
    size_t n;
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 0);
    fr_outbox_items_free(items, n);
    /* what an erasure does to the outbox: the queued bundle holding it goes */
    assert_int_equal(fr_outbox_add(&c, f->bundle, "t", &err), FR_OK);
    size_t dropped = 0;
    assert_int_equal(fr_outbox_drop_erased(c.outbox, erased_b1, NULL, &dropped, &err), FR_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(fr_outbox_list(c.outbox, &items, &n, &err), FR_OK);
    assert_int_equal(n, 0);
    fr_outbox_items_free(items, n);
    /* the folder form: the bundle holding it goes */
    size_t removed = 0;
    assert_int_equal(fr_bundles_erase(f->dir, erased_b1, NULL, &removed, &err), FR_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(access(f->bundle, F_OK), -1);
    fr_upload_config_clear(&c);
    free(yaml);
    free(outbox);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bundle_of_erased_conversation_not_sent, bsetup,
                                        bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_verify_refuses_smuggled_members, bsetup,
                                        bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_verify_and_tampering, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_replay_reproduces_the_view, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_select_by_error_code, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_include_raw, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_summary_quotes_markdown_safely, bsetup,
                                        bteardown),
        cmocka_unit_test_setup_teardown(test_bundle_summary_lists_answers_cut_short, bsetup,
                                        bteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
