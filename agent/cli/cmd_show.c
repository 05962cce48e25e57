/*
 * agent/cli/cmd_show.c - `flightrec show CONV_ID`: the joined, ordered view of
 * one conversation. Events come in (ts_ms, seq, insert order) order; the
 * table shows the normalized columns plus a one-line gist per kind, and
 * --json gives every event back in the wire format with the normalized
 * fields under "flightrec". --raw (with the raw-mode key) shows the
 * unredacted payloads that raw mode sealed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli/cli.h"
#include "collectors/collector.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "core/wire.h"
#include "exporters/render.h"
#include "redact/redact.h"
#include "retention/hot/archive.h"
#include "retention/hot/store.h"
#include "retention/retention.h"

#define SHOW_PREFIXED_MAX 5 /* conversations named when an id is not found */

struct show_ctx {
    bool json;
    json_t *events; /* --json: the answer's object, its conversation (the events are rows) */
    /* every event as its compact JSON text and its order's keys, hot and archived (a tree per
       event held ~4.8 KB each: 960 MB and 12 s for a conversation of 200k events) */
    struct fr_render_texts rows;
    int n;
    const struct fr_keyring *raw_key; /* --raw: the raw-mode key file's keys; NULL = off */
    unsigned raw_failed;
    struct fr_err raw_err;
    bool lookup;         /* by trace, request or session id: rows of many conversations */
    int64_t indexed;     /* the conversation index's event count */
    bool ndjson;         /* one event per line */
    bool text;           /* also the (redacted) message text of each event */
    char last_conv[256]; /* lookup: the conversation of the row printed last */
    /* the table's structure: events grouped by turn, spans nested under their parent */
    char last_turn[256];
    int64_t turn_start_ms;
    json_t *depths; /* span_id -> nesting depth of the spans shown so far */
    int depth;      /* of the row being printed */
};

struct erased_find {
    char subject[33];
    struct fr_err *err;
    const char *conv;
};

static int
erased_row(void *ud, const struct fr_erasure_row *r)
{
    struct erased_find *e = ud;
    if (strcmp(r->subject, e->subject) != 0)
        return 0;
    char t[32];
    fr_time_format(r->ts_ms, t, sizeof t);
    fr_err_set(e->err, FR_E_NOTFOUND,
               "conversation %s was erased at %s%s%s%s: nothing of it is kept "
               "(flightrec erase --list)",
               e->conv, t, r->reason ? " (reason: " : "", r->reason ? r->reason : "",
               r->reason ? ")" : "");
    return 1;
}

/* Says when and why an erased conversation was erased (err, FR_E_NOTFOUND). */
static void
erased_say(struct fr_store *st, const char *conv, struct fr_err *err)
{
    struct erased_find e = {.err = err, .conv = conv};
    /* a fleet store keeps no erasure log to say when: that it was is said anyway */
    fr_err_set(err, FR_E_NOTFOUND, "conversation %s was erased: nothing of it is kept", conv);
    if (fr_store_erase_subject(st, conv, e.subject, NULL) == FR_OK)
        fr_store_erasures(st, false, erased_row, &e, NULL);
}

/* The unredacted line of r when raw mode sealed one (caller frees); NULL otherwise. */
static char *
show_unseal(struct show_ctx *c, const struct fr_event_row *r, size_t *len)
{
    if (c->raw_key == NULL || r->raw == NULL)
        return NULL;
    unsigned char *pt;
    char aad[1200];
    size_t alen =
        fr_raw_aad(r->ids[FR_ID_CONV], r->ids[FR_ID_EVENT], r->ts_ms, r->kind, aad, sizeof aad);
    if (fr_unseal_ring(c->raw_key, aad, alen, r->raw, r->raw_len, &pt, len, &c->raw_err) != FR_OK) {
        c->raw_failed++;
        return NULL;
    }
    return (char *)pt;
}

static json_t *
show_event_json(struct show_ctx *c, const struct fr_event_row *r)
{
    size_t rawlen = 0;
    char *raw = show_unseal(c, r, &rawlen);
    json_t *ev = fr_render_event(r, raw, rawlen);
    free(raw);
    return ev;
}

/* Appends " key=value" for an integer field of obj when present. */
static void
show_int(char *buf, size_t size, const json_t *obj, const char *key, const char *label)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, " %s=%" JSON_INTEGER_FORMAT, label, json_integer_value(v));
    }
}

static void
show_str(char *buf, size_t size, const json_t *obj, const char *key, const char *label)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s != NULL) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, " %s=%.60s", label, s);
    }
}

bool
fr_cli_finish_note(const struct fr_event_row *r, const json_t *data, char *note, size_t n)
{
    note[0] = '\0';
    if (r->error_code != NULL || r->kind == NULL || strcmp(r->kind, "provider") != 0)
        return false;
    const char *fin = json_string_value(json_object_get(data, "finish_reason"));
    const char *what = fr_finish_shortfall(fr_finish_meaning(fin));
    if (what != NULL)
        snprintf(note, n, "the answer %s (finish_reason %.60s)", what, fin);
    return what != NULL;
}

/*
 * A one-line gist of an event for the table; in note, what a successful
 * provider call's finish reason says went wrong with its answer (cut at the
 * token limit, filtered), "" when nothing did.
 */
static void
show_gist(const struct fr_event_row *r, char *buf, size_t size, char *note, size_t nsize)
{
    buf[0] = note[0] = '\0';
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *data = json_object_get(body, "data");
    if (strcmp(r->kind, "provider") == 0) {
        snprintf(buf, size, "%s/%s", r->provider ? r->provider : "?", r->model ? r->model : "?");
        json_t *usage = json_object_get(data, "usage");
        show_int(buf, size, usage, "input_tokens", "in");
        show_int(buf, size, usage, "output_tokens", "out");
        show_str(buf, size, data, "finish_reason", "finish");
        show_int(buf, size, data, "retries", "retries");
        fr_cli_finish_note(r, data, note, nsize);
    } else if (strcmp(r->kind, "tool") == 0) {
        snprintf(buf, size, "%s", r->tool ? r->tool : "?");
        show_str(buf, size, data, "tool_call_id", "call");
    } else if (strcmp(r->kind, "transport") == 0) {
        show_str(buf, size, data, "proto", "proto");
        show_str(buf, size, data, "method", "method");
        show_str(buf, size, data, "path", "path");
        show_str(buf, size, data, "reason", "reason");
    } else if (strcmp(r->kind, "middleware") == 0) {
        show_str(buf, size, data, "step", "step");
    } else if (strcmp(r->kind, "turn") == 0) {
        if (r->ids[FR_ID_TURN])
            snprintf(buf, size, "turn=%s", r->ids[FR_ID_TURN]);
        if (r->ids[FR_ID_RUNTIME_KEY]) {
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, " runtime=%s", r->ids[FR_ID_RUNTIME_KEY]);
        }
    } else if (strcmp(r->kind, "timeline") == 0) {
        show_str(buf, size, data, "entity_kind", "entity");
        show_str(buf, size, data, "entity_id", "id");
        show_int(buf, size, data, "version", "v");
    } else if (strcmp(r->kind, "sem") == 0) {
        show_str(buf, size, data, "source", "source");
        show_str(buf, size, data, "stream_id", "stream");
    } else if (strcmp(r->kind, "runtime") == 0) {
        show_int(buf, size, data, "rss_bytes", "rss");
        show_int(buf, size, data, "threads", "threads");
        show_int(buf, size, data, "open_fds", "fds");
    } else if (strcmp(r->kind, "error") == 0) {
        show_str(buf, size, data, "where", "where");
    }
    json_decref(body);
}

static int64_t
ev_int(const json_t *ev, const char *k, int64_t dflt)
{
    const json_t *v = json_object_get(ev, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* Hot and archived rows are gathered as text, then ordered together. */
static int
show_collect(void *ud, const struct fr_event_row *r)
{
    struct show_ctx *c = ud;
    c->n++;
    json_t *ev = show_event_json(c, r);
    int64_t id = ev_int(json_object_get(ev, "flightrec"), "id", 0);
    size_t len;
    char *text = fr_json_text(ev, JSON_COMPACT, &len);
    if (text == NULL) /* jansson's tree holds text that is not UTF-8: said, not shown */
        fprintf(stderr, "flightrec show: event %lld (store id) not shown: its text is not UTF-8\n",
                (long long)id);
    else
        fr_render_texts_add(&c->rows, ev_int(ev, "ts_ms", 0), ev_int(ev, "seq", -1), id, text, len);
    json_decref(ev);
    return 0;
}

static size_t
shown_count(const struct show_ctx *c)
{
    return c->rows.n;
}

static void show_row_table(struct show_ctx *c, const struct fr_event_row *r);

/* Prints a gathered event as a table row. */
static void
show_json_row(struct show_ctx *c, json_t *ev)
{
    json_t *meta = json_incref(json_object_get(ev, "flightrec"));
    json_object_del(ev, "flightrec");
    char *body = json_dumps(ev, JSON_COMPACT);
    struct fr_event_row r = {0};
    r.ts_ms = ev_int(ev, "ts_ms", 0);
    r.kind = json_string_value(json_object_get(ev, "kind"));
    r.has_seq = json_is_integer(json_object_get(ev, "seq"));
    r.seq = ev_int(ev, "seq", 0);
    r.status = json_string_value(json_object_get(meta, "status"));
    r.provider = json_string_value(json_object_get(meta, "provider"));
    r.model = json_string_value(json_object_get(meta, "model"));
    r.tool = json_string_value(json_object_get(meta, "tool"));
    for (int i = 0; i < FR_ID_COUNT; i++)
        r.ids[i] = json_string_value(json_object_get(ev, fr_id_names[i]));
    r.has_duration = json_is_integer(json_object_get(meta, "duration_ms"));
    r.duration_ms = ev_int(meta, "duration_ms", 0);
    r.error_code = json_string_value(json_object_get(meta, "error_code"));
    r.error_message = json_string_value(json_object_get(meta, "error_message"));
    r.tier = json_string_value(json_object_get(meta, "tier"));
    r.body = body;
    r.body_len = strlen(body);
    /* nesting: a span under its parent (parent_span_id), depth + 1 */
    const char *parent = json_string_value(json_object_get(ev, "parent_span_id"));
    json_t *pd = parent && c->depths ? json_object_get(c->depths, parent) : NULL;
    c->depth = pd ? (int)json_integer_value(pd) + 1 : 0;
    if (c->depth > 8)
        c->depth = 8;
    if (c->depths && r.ids[FR_ID_SPAN])
        json_object_set_new(c->depths, r.ids[FR_ID_SPAN], json_integer(c->depth));
    show_row_table(c, &r);
    if (json_is_true(json_object_get(meta, "raw")))
        fr_cli_printf("%14sraw: %s\n", "", body);
    free(body);
    json_object_set_new(ev, "flightrec", meta);
}

/* One text field under a row: "    label: text", cut to 600 bytes at a character boundary. */
static void
show_text_line(const char *label, const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    char *owned = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT);
    const char *t = owned ? owned : json_string_value(v);
    size_t n = strlen(t), cut = n > 600 ? fr_utf8_cut(t, 600) : n;
    fr_cli_printf("%16s%s: %.*s%s\n", "", label, (int)cut, t, cut < n ? " [...]" : "");
    free(owned);
}

/* One part of a message's content: its text; a tool call as name(arguments); a tool's answer
   or anything else as its JSON. The GenAI conventions' parts ({"type":"text","content"},
   "tool_call" with "name" and "arguments", "tool_call_response" with "response"), OpenAI's and
   the Vercel AI SDK's ({"type":"text","text"}, "tool-call" with "toolName" and "input",
   "tool-result" with "output"). */
static void
show_part(const char *role, const json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    const json_t *text = json_object_get(part, "text");
    if (text == NULL &&
        (type == NULL || strcmp(type, "text") == 0 || strcmp(type, "reasoning") == 0))
        text = json_object_get(part, "content");
    const char *name = json_string_value(json_object_get(part, "name"));
    name = name ? name : json_string_value(json_object_get(part, "toolName"));
    const json_t *args = json_object_get(part, "arguments");
    args = args ? args : json_object_get(part, "input");
    if (json_is_string(text)) {
        show_text_line(role, text);
    } else if (name != NULL &&
               (type == NULL ? args != NULL
                             : strstr(type, "call") != NULL && strstr(type, "response") == NULL)) {
        char *a = args == NULL           ? NULL
                  : json_is_string(args) ? fr_strdup(json_string_value(args))
                                         : json_dumps(args, JSON_COMPACT);
        json_t *line = json_sprintf("%s(%s)", name, a ? a : "");
        show_text_line(role, line);
        json_decref(line);
        free(a);
    } else {
        const json_t *answer = json_object_get(part, "response");
        answer = answer ? answer : json_object_get(part, "output");
        show_text_line(role, answer ? answer : part);
    }
}

/* The text of a chat message: a string, or the parts of a content array (or of the GenAI
   conventions' "parts"). */
static void
show_message(const json_t *m, const char *role_else)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    role = role ? role : role_else;
    const json_t *content = json_object_get(m, "content");
    if (!json_is_array(content) && json_is_array(json_object_get(m, "parts")))
        content = json_object_get(m, "parts");
    bool said = true;
    if (json_is_array(content)) {
        size_t i;
        const json_t *part;
        json_array_foreach(content, i, part) show_part(role, part);
    } else if (content != NULL && !json_is_null(content)) {
        show_text_line(role, content);
    } else {
        said = false;
    }
    if (json_is_array(json_object_get(m, "tool_calls"))) { /* calls asked for, after any text */
        size_t i;
        const json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), i, tc)
        {
            const json_t *fn = json_object_get(tc, "function");
            if (!json_is_object(fn)) { /* {name, arguments} or {toolName, input} */
                show_part(role, tc);
                continue;
            }
            const char *name = json_string_value(json_object_get(fn, "name")),
                       *args = json_string_value(json_object_get(fn, "arguments"));
            char *line = fr_asprintf("%s(%s)", name ? name : "?", args ? args : "");
            json_t *s = json_string(line);
            show_text_line(role, s);
            json_decref(s);
            free(line);
        }
    } else if (!said) {
        show_text_line(role, m);
    }
}

void
fr_cli_show_text(const struct fr_event_row *r)
{
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *data = json_object_get(body, "data");
    if (r->kind && strcmp(r->kind, "provider") == 0) {
        size_t i;
        json_t *m;
        json_t *sys = json_object_get(json_object_get(data, "request"), "system");
        if (json_is_array(sys))
            json_array_foreach(sys, i, m) show_part("system", m);
        else
            show_text_line("system", sys);
        json_array_foreach(json_object_get(json_object_get(data, "request"), "messages"), i, m)
            show_message(m, "?");
        json_t *resp = json_object_get(data, "response");
        json_t *choice = json_array_get(json_object_get(resp, "choices"), 0);
        if (choice != NULL) {
            show_message(json_object_get(choice, "message"), "assistant");
        } else {
            json_array_foreach(json_object_get(resp, "messages"), i, m)
                show_message(m, "assistant");
            if (json_object_get(resp, "content") != NULL ||
                json_is_array(json_object_get(resp, "tool_calls"))) {
                json_t *said = json_object(); /* the answer's text and the calls it asked for */
                json_object_set(said, "content", json_object_get(resp, "content"));
                json_object_set(said, "tool_calls", json_object_get(resp, "tool_calls"));
                show_message(said, "assistant");
                json_decref(said);
            } else if (!json_is_array(json_object_get(resp, "messages"))) {
                show_text_line("response", resp);
            }
        }
    } else if (r->kind && strcmp(r->kind, "tool") == 0) {
        show_text_line("args", json_object_get(data, "args"));
        show_text_line("result", json_object_get(data, "result"));
    } else if (r->kind && strcmp(r->kind, "middleware") == 0) {
        show_text_line("prompt before", json_object_get(data, "prompt_before"));
        show_text_line("prompt after", json_object_get(data, "prompt_after"));
        show_text_line("rationale", json_object_get(data, "rationale"));
    }
    json_decref(body);
}

static void
show_row_table(struct show_ctx *c, const struct fr_event_row *r)
{
    const char *conv = r->ids[FR_ID_CONV] ? r->ids[FR_ID_CONV] : "-";
    if (c->lookup && strcmp(conv, c->last_conv) != 0) {
        fr_cli_printf("-- conversation %s\n", conv);
        snprintf(c->last_conv, sizeof c->last_conv, "%s", conv);
    }
    /* events grouped by turn: a line where one begins; offsets from its start show what
       overlapped */
    const char *turn = r->ids[FR_ID_TURN];
    if (!c->lookup && turn != NULL && strcmp(turn, c->last_turn) != 0) {
        fr_cli_printf("%-13s turn %s\n", "", turn);
        snprintf(c->last_turn, sizeof c->last_turn, "%s", turn);
        c->turn_start_ms = r->ts_ms;
    }
    char ts[32], seq[24] = "-", dur[24] = "", gist[256];
    fr_time_format(r->ts_ms, ts, sizeof ts);
    if (r->has_seq)
        snprintf(seq, sizeof seq, "%lld", (long long)r->seq);
    if (r->has_duration)
        snprintf(dur, sizeof dur, "%lldms", (long long)r->duration_ms);
    char inner[200], note[160];
    show_gist(r, inner, sizeof inner, note, sizeof note);
    char indent[40] = "";
    for (int d = 0; d < c->depth; d++)
        strcat(indent, d + 1 == c->depth ? "└ " : "  ");
    const char *said = inner + strspn(inner, " "); /* one space between the columns' parts */
    if (!c->lookup && turn != NULL && c->last_turn[0] != '\0')
        snprintf(gist, sizeof gist, "%s+%lldms %s", indent,
                 (long long)(r->ts_ms - c->turn_start_ms), said);
    else
        snprintf(gist, sizeof gist, "%s%s", indent, said);
    char tag[16] = "";
    if (r->tier && strcmp(r->tier, "hot") != 0)
        snprintf(tag, sizeof tag, gist[0] != '\0' ? "[%s] " : "[%s]", r->tier);
    size_t g = strlen(gist);
    while (g > 0 && gist[g - 1] == ' ') /* a gist that is empty after its offset */
        gist[--g] = '\0';
    fr_cli_printf("%-13s %-12s %5s  %-14s %8s  %s%s\n", ts + 11, r->kind ? r->kind : "?", seq,
                  r->status ? r->status : "-", dur, tag, gist);
    if (r->error_code)
        fr_cli_printf("%14s!! %s: %s\n", "", r->error_code, r->error_message);
    else if (note[0] != '\0') /* not a failure, but what the user saw was not the answer */
        fr_cli_printf("%14s~~ %s\n", "", note);
    if (c->text)
        fr_cli_show_text(r);
}

/* The event table's column heading, after a blank line. */
/* Prints text (a value dumped with JSON_INDENT(2)) with indent spaces before every line but
   the first: a nested value as jansson lays it out at that depth. */
static void
show_indented(const char *text, int indent)
{
    for (const char *l = text, *nl; *l; l = nl + 1) {
        nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        if (l != text)
            fr_cli_printf("\n%*s", indent, "");
        fr_cli_printf("%.*s", (int)n, l);
        if (nl == NULL)
            break;
    }
}

/*
 * --json: out's members (the conversation) and then "events", written as json_dumpf(...,
 * JSON_INDENT(2)) writes the whole object, but one event at a time from its text: the tree of
 * a 200k-event conversation held 960 MB.
 */
static void
show_json_out(const json_t *out, const struct show_ctx *c)
{
    fr_cli_printf("{");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)out, k, v)
    {
        json_t *ks = json_string(k);
        char *key = json_dumps(ks, JSON_ENCODE_ANY);
        char *val = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
        json_decref(ks);
        fr_cli_printf("\n  %s: ", key);
        show_indented(val ? val : "null", 2);
        fr_cli_printf(",");
        free(key);
        free(val);
    }
    fr_cli_printf("\n  \"events\": [");
    for (size_t i = 0; i < c->rows.n; i++) {
        json_t *ev = fr_wire_load_body(c->rows.v[i].text, c->rows.v[i].len);
        char *t = ev ? json_dumps(ev, JSON_INDENT(2)) : NULL;
        fr_cli_printf(i ? ",\n    " : "\n    ");
        show_indented(t ? t : "null", 4);
        free(t);
        json_decref(ev);
    }
    fr_cli_printf(c->rows.n ? "\n  ]\n}\n" : "]\n}\n");
}

static void
show_table_heading(void)
{
    fr_cli_printf("\n%-13s %-12s %5s  %-14s %8s  %s\n", "TIME (UTC)", "KIND", "SEQ", "STATUS",
                  "DUR", "DETAIL");
}

/* The ids of conversations that start with the one asked for, separated by ", ". */
struct prefixed {
    char text[400];
    int n;
};

static int
prefixed_add(void *ud, const struct fr_conv_row *r)
{
    struct prefixed *x = ud;
    if (++x->n <= SHOW_PREFIXED_MAX) {
        size_t at = strlen(x->text);
        snprintf(x->text + at, sizeof x->text - at, "%s%s", at > 0 ? ", " : "", r->conv_id);
    }
    return 0;
}

/* No conversation conv_id: said with the conversations whose id starts with it (an id cut
   short when copied from a log line or a chat), so the next command is the right one. */
static void
not_found(struct fr_store *st, const char *conv_id, struct fr_err *err)
{
    struct prefixed x = {.n = 0};
    struct fr_conv_filter pf = {.id_prefix = conv_id, .limit = SHOW_PREFIXED_MAX + 1};
    struct fr_err ignored = {0};
    if (fr_store_conversations(st, &pf, prefixed_add, &x, &ignored) != FR_OK || x.n == 0)
        fr_err_set(err, FR_E_NOTFOUND, "no conversation %s", conv_id);
    else if (x.n == 1)
        fr_err_set(err, FR_E_NOTFOUND,
                   "no conversation %s; did you mean %s? (the one conversation whose id starts "
                   "with it)",
                   conv_id, x.text);
    else
        fr_err_set(err, FR_E_NOTFOUND,
                   "no conversation %s; conversations whose id starts with it: %s%s", conv_id,
                   x.text,
                   x.n > SHOW_PREFIXED_MAX ? ", ... (flightrec conversations --prefix)" : "");
}

static int
show_header(void *ud, const struct fr_conv_row *r)
{
    struct show_ctx *c = ud;
    c->indexed = r->event_count;
    if (c->ndjson)
        return 0; /* events only, one per line */
    if (c->json) {
        json_t *o = fr_render_conv(r);
        json_object_set_new(c->events, "conversation", o);
        return 0;
    }
    char a[32], b[32];
    fr_cli_printf("conversation %s  status=%s  runtime=%s  session=%s\n", r->conv_id, r->status,
                  r->runtime_key ? r->runtime_key : "-", r->session_id ? r->session_id : "-");
    fr_cli_printf("  %s .. %s  events=%lld  errors=%lld%s\n",
                  fr_time_format(r->created_ms, a, sizeof a),
                  fr_time_format(r->last_activity_ms, b, sizeof b), (long long)r->event_count,
                  (long long)r->error_count, r->panic ? "  PANIC" : "");
    if (r->last_error_code)
        fr_cli_printf("  last error: %s: %s\n", r->last_error_code, r->last_error_message);
    show_table_heading();
    return 0;
}

static void
show_usage(FILE *out)
{
    fprintf(out,
            "usage: flightrec show [OPTIONS] CONV_ID\n"
            "       flightrec show [OPTIONS] --trace-id T | --request-id R | --session-id S\n\n"
            "Shows one conversation's events in order (time, then seq, then arrival), or\n"
            "every event carrying a trace, request or session id (across conversations,\n"
            "each row under its conversation).\n\n"
            "options:\n"
            "  --ndjson      one event per line, wire format with \"flightrec\" (jq)\n"
            "  --text        under each event, its (redacted) message text: the\n"
            "                system instructions, prompt messages and response of a\n"
            "                provider call (a tool call asked for as name(args)), a\n"
            "                tool's arguments and result, a middleware's prompts\n"
            "  --trace-id T, --request-id R, --session-id S\n"
            "                look the events up by that id (indexed)\n"
            "  --db PATH     database (default $FLIGHTREC_DB or ./var/flightrec.db), or\n"
            "                the fleet store: postgres://... (also --store; docs/fleet.md)\n"
            "  --kind K      only events of kind K (provider, tool, turn, ...)\n"
            "  --errors      only events carrying an error\n"
            "  --since T     at or after T (2026-02-17T19:44Z, 15m, 2h, 3d, epoch ms)\n"
            "  --until T     before T\n"
            "  --last N      only the last N events (of those the filters keep)\n"
            "  --offset N, --limit N\n"
            "                only the events from the N-th (0 = the first) on, at most\n"
            "                --limit of them: a long conversation page by page (a\n"
            "                conversation wholly in hot reads only the page)\n"
            "  --json        one JSON object: the conversation and its events in the\n"
            "                wire format, normalized fields under \"flightrec\"\n"
            "  --raw         also show the unredacted payloads raw mode stored (needs\n"
            "                the raw-mode key: --raw-key FILE or $FLIGHTREC_RAW_KEY)\n"
            "  --raw-key F   the raw-mode key file\n"
            "  -h, --help    this help\n"
            "Under a row, \"!! CODE: message\" is its failure; \"~~\" a provider call\n"
            "that succeeded but whose answer stopped at the token limit or was\n"
            "filtered or refused (its finish_reason; stats --by finish counts them).\n"
            "Exit status: 0 shown, 4 no such conversation, 3 store failure or a raw\n"
            "payload that the key given cannot open.\n");
}

int
fr_cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 'd'},
        {"kind", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"raw", no_argument, NULL, 'r'},
        {"raw-key", required_argument, NULL, 'K'},
        {"ndjson", no_argument, NULL, 'N'},
        {"text", no_argument, NULL, 'X'},
        {"trace-id", required_argument, NULL, 'T'},
        {"request-id", required_argument, NULL, 'R'},
        {"session-id", required_argument, NULL, 'S'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'l'},
        {"errors", no_argument, NULL, 'E'},
        {"last", required_argument, NULL, 'L'},
        {"offset", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = fr_cli_default_db();
    struct fr_event_filter f = {0};
    struct show_ctx c = {0};
    bool raw = false;
    const char *raw_key = getenv("FLIGHTREC_RAW_KEY");
    struct fr_keyring key;
    struct fr_cli_query q = {.db = db, .limit = -1};
    long long last = -1, offset = -1;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int handled =
            ch == 'l' || ch == 's' || ch == 'u' ? fr_cli_query_opt("show", ch, optarg, &q) : 0;
        if (handled < 0)
            return FR_EXIT_USAGE;
        if (handled > 0)
            continue;
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 'E':
            f.errors_only = true;
            break;
        case 'L':
        case 'O': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || (ch == 'L' && v == 0)) {
                fprintf(stderr, "flightrec show: --%s: expected %s, got '%s'\n",
                        ch == 'L' ? "last" : "offset",
                        ch == 'L' ? "a number of events, 1 or more" : "an event number, 0 or more",
                        optarg);
                return FR_EXIT_USAGE;
            }
            *(ch == 'L' ? &last : &offset) = v;
            break;
        }
        case 'k':
            if (fr_kind_parse(optarg) < 0) {
                fprintf(stderr, "flightrec show: --kind: unknown kind '%s'\n", optarg);
                return FR_EXIT_USAGE;
            }
            f.kind = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'r':
            raw = true;
            break;
        case 'K':
            raw_key = optarg;
            break;
        case 'N':
            c.ndjson = true;
            break;
        case 'X':
            c.text = true;
            break;
        case 'T':
        case 'R':
        case 'S':
            if (f.id_value != NULL) {
                fprintf(stderr,
                        "flightrec show: give one of --trace-id, --request-id, --session-id\n");
                return FR_EXIT_USAGE;
            }
            f.id_field = ch == 'T' ? FR_ID_TRACE : ch == 'R' ? FR_ID_REQUEST : FR_ID_SESSION;
            f.id_value = optarg;
            break;
        case 'h':
            show_usage(stdout);
            return FR_EXIT_OK;
        default:
            show_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (last > 0 && (offset >= 0 || q.limit >= 0)) {
        fprintf(stderr, "flightrec show: --last takes the end of the events: not with --offset "
                        "or --limit\n");
        return FR_EXIT_USAGE;
    }
    f.since_ms = q.since_ms;
    f.until_ms = q.until_ms;
    bool sliced = last > 0 || offset >= 0 || q.limit >= 0;
    bool lookup = f.id_value != NULL && optind == argc;
    if (!lookup && optind != argc - 1) {
        fprintf(stderr, "flightrec show: expected one CONV_ID (or --trace-id, --request-id, "
                        "--session-id)\n");
        show_usage(stderr);
        return FR_EXIT_USAGE;
    }
    f.conv_id = lookup ? NULL : argv[optind];
    c.lookup = lookup;
    if (raw) {
        if (raw_key == NULL || *raw_key == '\0') {
            fprintf(stderr, "flightrec show: --raw needs the raw-mode key: --raw-key FILE or "
                            "$FLIGHTREC_RAW_KEY\n");
            return FR_EXIT_USAGE;
        }
        int kx = fr_cli_load_keyring("show", raw_key, &key);
        if (kx != FR_EXIT_OK)
            return kx;
        c.raw_key = &key;
    }
    struct fr_store *st;
    int ex = fr_cli_open_store("show", db, false, &st);
    if (ex != FR_EXIT_OK)
        return ex;
    struct fr_err err = {0};
    int rc;
    bool unindexed = false;
    json_t *out = NULL;
    if (c.json) {
        out = json_object();
        c.events = out;
    }
    if (lookup) {
        rc = FR_OK;
        if (!c.json && !c.ndjson) {
            fr_cli_printf("events with %s %s\n", fr_id_names[f.id_field], f.id_value);
            show_table_heading();
        }
    } else {
        rc = fr_store_conversation(st, f.conv_id, show_header, &c, &err);
        if (rc == FR_E_NOTFOUND && fr_store_is_erased(st, f.conv_id)) {
            erased_say(st, f.conv_id, &err);
        } else if (rc == FR_E_NOTFOUND) {
            /* not indexed here (a database rebuilt from its archive, or from a bucket): its
               events may still be in the archive */
            unindexed = true;
            rc = FR_OK;
        }
    }
    size_t cold_skipped = 0;
    bool partial = false;
    c.depths = json_object();
    /* older events may have moved to the warm (or, with the cold key, cold) tier */
    struct fr_archive_keys keys;
    bool has_policy;
    fr_cli_archive_keys("show", db, &keys, &has_policy);
    int64_t total = 0;
    if (rc == FR_OK && !sliced) {
        rc = has_policy ? fr_tier_events(st, &f, &keys, show_collect, &c, &cold_skipped, &err)
                        : fr_store_events(st, &f, show_collect, &c, &err);
    } else if (rc == FR_OK) {
        f.offset = last > 0 ? -last : offset > 0 ? offset : 0; /* < 0: the last ones */
        f.limit = last <= 0 && q.limit > 0 ? q.limit : 0;
        /* only the slice when the conversation is wholly in hot (or no archive is kept), else
           every tier and the slice taken here */
        bool whole = false;
        rc = has_policy ? fr_tier_events_page(st, &f, &keys, show_collect, &c, &total, &whole,
                                              &cold_skipped, &err)
                        : fr_store_events_page(st, &f, show_collect, &c, &total, &err);
        if (rc == FR_OK && whole)
            fr_render_texts_page(&c.rows, f.offset, f.limit);
        int64_t first = f.offset < 0 ? total - (int64_t)c.rows.n : f.offset;
        if (rc == FR_OK && c.json) { /* which slice of how many */
            json_object_set_new(out, "total_events", json_integer(total));
            json_object_set_new(out, "offset", json_integer(first < total ? first : total));
        }
        if (rc == FR_OK && total > (int64_t)c.rows.n)
            fprintf(stderr,
                    "flightrec show: %zu of %lld events shown (from event %lld; --offset, "
                    "--limit, --last)\n",
                    c.rows.n, (long long)total, (long long)first);
    }
    fr_archive_keys_wipe(&keys);
    if (rc == FR_OK) {
        fr_render_texts_sort(&c.rows);
        if (lookup && shown_count(&c) == 0) {
            fprintf(stderr, "flightrec show: no event with %s %s\n", fr_id_names[f.id_field],
                    f.id_value);
            rc = FR_E_NOTFOUND;
        }
        if (unindexed && shown_count(&c) == 0) {
            not_found(st, f.conv_id, &err);
            rc = err.code;
        } else if (unindexed) {
            fprintf(stderr,
                    "flightrec show: %s is no longer in the conversation index (its days were "
                    "pruned from the fleet store, or the database was rebuilt from its archive): "
                    "its %zu events are read from the archive\n",
                    f.conv_id, shown_count(&c));
            if (c.json)
                json_object_set_new(out, "conversation", json_null());
            else if (!c.ndjson)
                fr_cli_printf("conversation %s  (not indexed)\n", f.conv_id);
            if (!c.json && !c.ndjson)
                show_table_heading();
        }
        if (rc != FR_OK) {
            /* said below */
        } else if (c.json) {
            show_json_out(out, &c);
        } else if (c.ndjson) {
            for (size_t i = 0; i < c.rows.n; i++)
                fr_cli_printf("%s\n", c.rows.v[i].text);
        } else {
            for (size_t i = 0; i < c.rows.n; i++) {
                json_t *ev = fr_wire_load_body(c.rows.v[i].text, c.rows.v[i].len);
                if (ev != NULL)
                    show_json_row(&c, ev);
                json_decref(ev);
            }
        }
        /* what is there is shown; what is missing is said, with why, and the exit says it */
        if (cold_skipped > 0) {
            fprintf(stderr,
                    "flightrec show: PARTIAL: %zu archive segment(s) not read (cold without the "
                    "cold key, or unreadable: named above); events may be missing\n",
                    cold_skipped);
            partial = true;
        }
        size_t shown = sliced ? (size_t)total : shown_count(&c);
        if (!lookup && f.kind == NULL && !f.errors_only && !f.since_ms && !f.until_ms &&
            c.indexed > (int64_t)shown) {
            fprintf(stderr,
                    "flightrec show: PARTIAL: the conversation had %lld events, %zu are kept: the "
                    "others were deleted by retention (past cold.max_age) or are in segments "
                    "not read\n",
                    (long long)c.indexed, shown);
            partial = true;
        }
    }
    fr_render_texts_free(&c.rows);
    json_decref(c.depths);

    if (rc != FR_OK)
        fprintf(stderr, "flightrec show: %s\n", err.msg);
    json_decref(out);
    fr_store_close(st);
    fr_key_wipe(&key, sizeof key);
    if (rc == FR_OK && c.raw_failed > 0) {
        fprintf(stderr, "flightrec show: %u raw payloads not shown: %s\n", c.raw_failed,
                c.raw_err.msg);
        return FR_EXIT_FAIL;
    }
    if (rc == FR_OK && partial)
        return FR_EXIT_PARTIAL;
    return fr_cli_exit_for(rc);
}
