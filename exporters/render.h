/*
 * exporters/render.h - stored rows as JSON, shared by the CLI's --json output
 * and the HTTP query API so both speak the same shapes (docs/api.md).
 */
#ifndef FR_EXPORTERS_RENDER_H
#define FR_EXPORTERS_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "retention/hot/store.h"

/* A conversation of the index. */
json_t *fr_render_conv(const struct fr_conv_row *r);

struct fr_summary_row;
/* What stays of a conversation whose detail retention deleted (archive.h). */
json_t *fr_render_summary(const struct fr_summary_row *r);

/*
 * An event in the wire format (its stored, redacted body) with the
 * normalized columns under "flightrec". raw (may be NULL) is the unsealed
 * raw-mode line to show instead of the body.
 */
json_t *fr_render_event(const struct fr_event_row *r, const char *raw, size_t rawlen);

/*
 * The same as fr_render_event(r, NULL, 0) as compact JSON text, without
 * parsing the stored body when it can be used as it is (allocated, never NULL; *len).
 * For large answers: no tree per event.
 */
char *fr_render_event_text(const struct fr_event_row *r, size_t *len);

/*
 * Events as text with the keys of their conversation order (time, sequence or -1, stored id):
 * the large answers (the API's conversation, `show`) order them without a tree per event.
 */
struct fr_render_text {
    int64_t ts_ms, seq, id;
    char *text;
    size_t len;
};

struct fr_render_texts {
    struct fr_render_text *v;
    size_t n, cap;
};

/* Appends text (malloc'd: the list owns it) with its keys. */
void fr_render_texts_add(struct fr_render_texts *l, int64_t ts_ms, int64_t seq, int64_t id,
                         char *text, size_t len);
/* Orders the list as fr_render_sort_events orders rendered events. */
void fr_render_texts_sort(struct fr_render_texts *l);
/* Sorts the list and keeps the page fr_store_events_page gives of the same events: from
   offset on (< 0: the last -offset), at most limit (0 = all); the others are freed. Returns
   where the page begins. */
size_t fr_render_texts_page(struct fr_render_texts *l, int64_t offset, int limit);
void fr_render_texts_free(struct fr_render_texts *l);

/* Orders rendered events of one conversation by (ts_ms, seq, stored id), in place. */
void fr_render_sort_events(json_t *events);
/* The same order, or its reverse (newest first) when newest_first. */
void fr_render_sort_events_dir(json_t *events, bool newest_first);

#endif
