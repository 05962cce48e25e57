/*
 * retention/record.c - see record.h.
 */
#include "retention/record.h"

#include <string.h>

#include "retention/internal.h"

static const char *
str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

json_t *
fr_warm_event_new(const struct fr_event_row *r, json_t *body, const char *segment_policy)
{
    /* kind, ts_ms, seq and the ids are in the body; the policy is the segment's unless it differs
     */
    json_t *rec = json_pack("{s:s,s:I,s:I,s:o}", "t", "event", "id", (json_int_t)r->id,
                            "ingested_ms", (json_int_t)r->ingested_ms, "body", body);
    const char *policy =
        r->policy && (segment_policy == NULL || strcmp(r->policy, segment_policy) != 0) ? r->policy
                                                                                        : NULL;
    const char *cols[] = {"status",      "provider",   "model",         "tool",
                          "error_class", "error_code", "error_message", "policy"};
    const char *vals[] = {r->status,      r->provider,   r->model,         r->tool,
                          r->error_class, r->error_code, r->error_message, policy};
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        if (vals[i] != NULL)
            json_object_set_new(rec, cols[i], json_string(vals[i]));
    if (r->has_duration)
        json_object_set_new(rec, "duration_ms", json_integer(r->duration_ms));
    return rec;
}

json_t *
fr_warm_conversation_new(const struct fr_warm_conv *c, json_t *codes, json_t *models)
{
    json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "t", "conversation", "conv_id",
                          c->conv_id, "first_ms", (json_int_t)c->first_ms, "last_ms",
                          (json_int_t)c->last_ms, "events", (json_int_t)c->events, "errors",
                          (json_int_t)c->errors, "input_tokens", (json_int_t)c->input_tokens,
                          "output_tokens", (json_int_t)c->output_tokens, "error_codes", codes);
    if (models != NULL)
        json_object_set_new(r, "models", models);
    return r;
}

static json_t *
stat_json(const struct fr_warm_stat *s)
{
    return json_pack("{s:f,s:f,s:f}", "min", s->min, "avg", s->avg, "max", s->max);
}

json_t *
fr_warm_runtime_minute_new(const struct fr_warm_runtime *m)
{
    return json_pack("{s:s,s:I,s:I,s:s,s:I,s:o,s:o,s:o,s:o}", "t", "runtime_minute", "ts_ms",
                     (json_int_t)m->minute_ms, "pid", (json_int_t)m->pid, "process",
                     m->process ? m->process : "", "samples", (json_int_t)m->samples, "rss_bytes",
                     stat_json(&m->rss_bytes), "cpu_pct", stat_json(&m->cpu_pct), "threads",
                     stat_json(&m->threads), "open_fds", stat_json(&m->open_fds));
}

static void
event_row(struct fr_warm_record *r, const char *segment_policy)
{
    json_t *j = r->root, *body = r->body;
    struct fr_event_row *row = &r->row;
    row->id = json_integer_value(json_object_get(j, "id"));
    row->ts_ms = json_integer_value(json_object_get(body, "ts_ms"));
    row->ingested_ms = json_integer_value(json_object_get(j, "ingested_ms"));
    row->kind = str(body, "kind");
    json_t *seq = json_object_get(body, "seq");
    row->has_seq = json_is_integer(seq);
    row->seq = json_integer_value(seq);
    for (int i = 0; i < FR_ID_COUNT; i++)
        row->ids[i] = str(body, fr_id_names[i]);
    row->status = str(j, "status");
    row->provider = str(j, "provider");
    row->model = str(j, "model");
    row->tool = str(j, "tool");
    json_t *dur = json_object_get(j, "duration_ms");
    row->has_duration = json_is_integer(dur);
    row->duration_ms = json_integer_value(dur);
    row->error_class = str(j, "error_class");
    row->error_code = str(j, "error_code");
    row->error_message = str(j, "error_message");
    row->policy = str(j, "policy") ? str(j, "policy") : segment_policy;
}

int
fr_warm_record_parse(const char *json, size_t len, const char *segment_policy,
                     struct fr_warm_record *out, struct fr_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    out->root = json_loadb(json, len, 0, &jerr);
    if (out->root == NULL)
        return fr_err_set(err, FR_E_VALUE, "warm record is not JSON: %s", jerr.text);
    const char *t = str(out->root, "t");
    if (t != NULL && strcmp(t, "event") == 0) {
        out->type = FR_WARM_EVENT;
        out->body = json_object_get(out->root, "body");
        event_row(out, segment_policy);
    } else if (t != NULL && strcmp(t, "conversation") == 0) {
        out->type = FR_WARM_CONVERSATION;
    } else if (t != NULL && strcmp(t, "runtime_minute") == 0) {
        out->type = FR_WARM_RUNTIME_MINUTE;
    }
    return FR_OK;
}

void
fr_warm_record_clear(struct fr_warm_record *r)
{
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

void
fr_ret_record_key(const char *json, size_t len, struct fr_ret_rec_key *k)
{
    k->j = json_loadb(json, len, 0, NULL);
    json_t *body = json_object_get(k->j, "body");
    k->conv = json_string_value(json_object_get(k->j, "conv_id"));
    if (k->conv == NULL)
        k->conv = json_string_value(json_object_get(body, "conv_id"));
    k->trace = json_string_value(json_object_get(body, "trace_id"));
    /* the time the warm writer gave it: an event's ts_ms, a runtime minute's
       ts_ms, a conversation summary's last_ms */
    json_t *ts = json_object_get(body ? body : k->j, "ts_ms");
    if (ts == NULL)
        ts = json_object_get(k->j, "last_ms");
    k->ts = json_integer_value(ts);
}

void
fr_ret_record_key_clear(struct fr_ret_rec_key *k)
{
    json_decref(k->j);
    k->j = NULL;
    k->conv = NULL;
    k->trace = NULL;
}
