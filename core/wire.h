/*
 * core/wire.h - the ingest wire format, version 1 (../shared/spec/wire-format.md),
 * parsed into struct fr_event and rebuilt from stored records.
 *
 * fr_wire_parse() checks the envelope only (syntax, UTF-8, limits, `v`,
 * `kind`, `ts_ms`, ids, `seq`, `data`/`error`/`tags` shapes). The fields
 * inside `data` are the kind's collector's business (collectors/).
 */
#ifndef FR_CORE_WIRE_H
#define FR_CORE_WIRE_H

#include <stddef.h>

#include "core/err.h"
#include "core/event.h"

/* Input limits; every one is configurable, defaults from fr_wire_limits_default(). */
struct fr_wire_limits {
    size_t max_line;   /* bytes in one NDJSON line (default 1 MiB) */
    int max_depth;     /* JSON nesting depth (default 64) */
    size_t max_fields; /* JSON values in one event (default 10000) */
    size_t max_id_len; /* bytes in one envelope id (default 256) */
    size_t max_string; /* bytes in one JSON string or key (default 1 MiB) */
};

void fr_wire_limits_default(struct fr_wire_limits *lim);

/* The envelope's top-level fields: the ids first (fr_id_names' order, enum fr_id), then these. */
enum fr_wire_field {
    FR_WF_V = FR_ID_COUNT,
    FR_WF_KIND,
    FR_WF_TS,
    FR_WF_SEQ,
    FR_WF_DATA,
    FR_WF_ERROR,
    FR_WF_TAGS,
    FR_WF_COUNT
};

/* Which envelope field the top-level key[0, len) names (an enum fr_id, or an enum
   fr_wire_field), or -1: a producer's own field. */
int fr_wire_field(const char *key, size_t len);

/* The wire name of an envelope field (an enum fr_id or an enum fr_wire_field). */
const char *fr_wire_field_name(int field);

/*
 * The envelope field a producer's own top-level key[0, len) most likely
 * meant, or -1: another spelling of it ("conversation_id", "traceId",
 * "timestamp", "type", "payload", ...; docs/wire-format.md, "Misnamed
 * fields"). *spelled gets the key as a static string (never the producer's
 * bytes, so a message may quote it).
 */
int fr_wire_alias(const char *key, size_t len, const char **spelled);

/* What an accepted event with key (fr_wire_alias's spelling) but not the field it meant
   loses, as a one-line warning in out[0, cap); returns out. Two keys are not spellings:
   FR_WIRE_MISSING, the field is missing by any name (an event of kind error without its
   error); FR_WIRE_AHEAD, ts_ms is more than FR_WIRE_AHEAD_MS ahead of this process's clock;
   FR_WIRE_WIDE, the event held a number past 64 bits, kept as a string; FR_WIRE_HALF, a lone
   UTF-16 surrogate escape, stored as U+FFFD (fr_wire_parse_mend); FR_WIRE_BYTES, bytes that are
   not UTF-8, each stored as U+FFFD (fr_wire_parse_mend); FR_WIRE_LONG, the event's
   duration is more than FR_WIRE_LONG_MS (collectors/registry.c). */
const char *fr_wire_misnamed_text(const char *key, int field, char *out, size_t cap);

/* A ts_ms this far ahead of the clock is stored with a warning (a producer's clock, or its
   time zone added to UTC milliseconds). */
#define FR_WIRE_AHEAD_MS (24LL * 3600 * 1000)
extern const char FR_WIRE_MISSING[], FR_WIRE_AHEAD[], FR_WIRE_WIDE[], FR_WIRE_HALF[],
    FR_WIRE_BYTES[], FR_WIRE_LONG[];
/* A duration longer than this is stored with a warning (FR_WIRE_LONG): most likely nanoseconds,
   as Go's time.Duration marshals. */
#define FR_WIRE_LONG_MS (24LL * 3600 * 1000)

/* Oldest accepted ts_ms: anything smaller is most likely seconds, not ms. */
#define FR_WIRE_MIN_TS_MS 100000000000LL
/* First refused as too large (year 5138): anything from here is most likely microseconds
   (from 1e14) or nanoseconds (from 1e17), e.g. Go's UnixMicro()/UnixNano(). */
#define FR_WIRE_MAX_TS_MS 100000000000000LL

/*
 * One NDJSON line as the parser takes it: a UTF-8 byte order mark at its
 * start (written by some Windows tools; RFC 8259 lets a parser ignore it) and
 * a '\r' at its end (CRLF line ends) are dropped from *line and *len. False
 * when nothing but spaces, tabs and '\r' is left: a blank line, skipped and
 * not counted by every source.
 */
bool fr_wire_line(const char **line, size_t *len);

/*
 * Whether a line (as fr_wire_line left it) opens a JSON object it does not
 * close: it starts with '{' and, past trailing spaces, does not end with '}'
 * as every NDJSON line does. The first line of a pretty-printed event (`jq .`
 * or an editor's output).
 */
bool fr_wire_line_opens(const char *line, size_t len);

/* The length of a UTF-8 byte order mark at the start of buf (3), or 0. */
size_t fr_wire_bom(const char *buf, size_t len);

/*
 * Parses one event from buf[0, len) into ev (which must be zeroed). On
 * success ev owns the JSON; on failure ev is left cleared and err says which
 * field and why (the caller adds the line number).
 */
int fr_wire_parse(const char *buf, size_t len, const struct fr_wire_limits *lim,
                  struct fr_event *ev, struct fr_err *err);

/*
 * fr_wire_parse, mending what a common producer writes that the parser refuses
 * although the event is sound: a number past what a 64-bit integer or a
 * double holds (a Go uint64 of 2^63 or more: a hash, an id) in data, error,
 * tags or a producer's own top-level field, kept as a string of its digits
 * (fr_wire_widen); a lone UTF-16 surrogate escape (JavaScript's
 * JSON.stringify of a string cut inside an emoji), as U+FFFD
 * (fr_wire_unpair); a byte that is not part of valid UTF-8 (text in Latin-1
 * or Windows-1252, or cut inside a character by a byte count), as U+FFFD
 * (fr_utf8_sanitize). *mended then gets the mended text (caller frees;
 * *mended_len its length), the bytes to store for the event, and the event a
 * warning (FR_WIRE_WIDE, FR_WIRE_HALF or FR_WIRE_BYTES, as a misnamed
 * field's: the first kind mended). *mended is NULL when nothing was mended. A
 * number past 64 bits in an envelope field (ts_ms, seq, an id) is refused as
 * before; so is a line with a NUL byte.
 */
int fr_wire_parse_mend(const char *buf, size_t len, const struct fr_wire_limits *lim,
                       struct fr_event *ev, char **mended, size_t *mended_len, struct fr_err *err);

/* What fr_wire_parse_mend mends, as bits (a value can have more than one). */
enum fr_wire_mend {
    FR_MEND_NONE = 0,
    FR_MEND_WIDE = 1,  /* a number JSON readers cannot hold, NaN, Infinity (fr_wire_widen) */
    FR_MEND_HALF = 2,  /* a lone surrogate escape (fr_wire_unpair) */
    FR_MEND_BYTES = 4, /* bytes that are not UTF-8, each as U+FFFD (fr_utf8_sanitize_n) */
};

/* What of a parse error fr_wire_parse_mend mends (FR_MEND_NONE: neither). */
enum fr_wire_mend fr_json_error_mendable(const json_error_t *jerr);

/* The error fr_wire_parse gives for a text jansson refused as jerr says: the byte, and why in
   words a producer can act on (a number that does not fit, NaN, invalid UTF-8, ...). */
int fr_wire_syntax_error(const json_error_t *jerr, struct fr_err *err);

/* Writes \ufffd over each \uD800-\uDFFF escape of buf[0, len)'s strings that is not half of
   a pair (the same six bytes); returns how many. at (when not NULL): *at gets their offsets,
   in order (caller frees), *nat how many. */
size_t fr_wire_unpair(char *buf, size_t len, size_t **at, size_t *nat);

/*
 * buf[0, len) with each number that fr_wire_parse_mend keeps as a string
 * quoted (caller frees; *outlen its length), or NULL when it has none. top:
 * the depth of an event's members (1 for one event, 2 for a JSON array of
 * them). at (when not NULL): *at gets the offsets in the result where each
 * quoted number's opening quote is, in order (caller frees), *nat how many.
 */
char *fr_wire_widen(const char *buf, size_t len, int top, size_t *outlen, size_t **at, size_t *nat);

/*
 * text[0, len) with what why names mended, one kind (caller frees; *outlen its length, *count
 * how many it mended; *first, when first is not NULL, the offset in the result of the first
 * mend), or NULL when it has none: FR_MEND_WIDE quotes the numbers at depth top
 * (fr_wire_widen), FR_MEND_HALF writes U+FFFD over lone surrogate escapes (fr_wire_unpair),
 * FR_MEND_BYTES over bytes that are not UTF-8 (fr_utf8_sanitize_n). One step of
 * fr_wire_parse_mend, and of any reader that mends as it does.
 */
char *fr_wire_mend_once(const char *text, size_t len, enum fr_wire_mend why, int top,
                        size_t *outlen, size_t *count, size_t *first);

/*
 * The path of the value, or object key, that text[off] is in, text[0, len) one JSON value
 * (an event: its members named from the top, "data.messages[2].content"; a key that is
 * mended is named itself). Keys are written as they are in the text, at most 32 bytes of
 * each (a longer one: its first 12 and "..."); a path deeper than 16 levels ends in
 * ".."; all of it at most cap - 1 bytes, cut at a character. Returns the length written
 * (0: off is not inside any member).
 */
size_t fr_json_path_at(const char *text, size_t len, size_t off, char *out, size_t cap);

/* fr_wire_misnamed_text, after "PATH: " when at names where the value was mended (a
   record's mended_at; NULL or "": not known). */
const char *fr_wire_warning_text(const char *key, int field, const char *at, char *out, size_t cap);

/*
 * Validates and takes an already parsed envelope object (e.g. one element of
 * a JSON array body). Steals the reference to obj on success and on failure.
 */
int fr_wire_take(json_t *obj, const struct fr_wire_limits *lim, struct fr_event *ev,
                 struct fr_err *err);

/*
 * The stored body of an event is the whole envelope as compact JSON. When
 * nothing in the parsed tree was changed (no redaction hit), the producer's
 * bytes are stored as they came, which keeps unknown fields byte for byte
 * and saves re-serializing; otherwise the tree is serialized again.
 * fr_wire_dump() serializes ev->root; caller frees, *len gets the length.
 */
char *fr_wire_dump(const struct fr_event *ev, size_t *len);

/*
 * j serialized with jansson's flags into one allocation of its size (built on
 * the stack while it fits, not in a buffer grown from 16 bytes); NULL if
 * jansson fails (out of memory only). Caller frees; *len gets the length.
 */
char *fr_json_text(const json_t *j, size_t flags, size_t *len);

/*
 * Parses a stored body back into a wire-format envelope (a new reference),
 * or NULL when body is not a JSON object.
 */
json_t *fr_wire_load_body(const char *body, size_t body_len);

/*
 * The messages of a provider call sent apart (a part: OTLP log events, one
 * message each, a call's records of one export together) merged into an
 * event's data: the "messages" of part's "request" and "response" appended
 * to data's (created when missing), their other keys (system instructions,
 * ...) added where data has none. With resent, messages data holds already
 * are not added again: a part whose messages data holds as one run adds
 * nothing (an export sent twice), and one whose first messages data ends
 * with adds the rest; equal messages elsewhere in a call all stay. Without
 * it (a call's records of one export put together) every message is
 * appended. False, and nothing merged, when either is not an object.
 */
bool fr_wire_merge_part(json_t *data, const json_t *part, bool resent);

/* "a string", "an integer", ... for messages about a JSON value's type. */
const char *fr_json_type_phrase(const json_t *v);

/*
 * A JSON parser error's text without the producer's bytes it quotes
 * ("... near 'sk-...'" becomes "..."; "near end of file" stays): error
 * messages never echo input, which may hold a secret. Returns out.
 */
const char *fr_json_error_text(const json_error_t *jerr, char *out, size_t n);

#endif
