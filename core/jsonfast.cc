/*
 * core/jsonfast.cc - see jsonfast.h. The project's one C++ file: simdjson's
 * DOM parser behind a C function, no exception crossing it.
 */
#include "core/jsonfast.h"

#include <cstring>
#include <mutex>
#include <new>
#include <simdjson.h>
#include <string_view>

namespace
{

/* A parser and the padded copy of the line it reads (simdjson reads up to
   SIMDJSON_PADDING bytes past a document's end). */
struct slot {
    simdjson::dom::parser parser{FR_JSON_FAST_MAX};
    char buf[FR_JSON_FAST_MAX + simdjson::SIMDJSON_PADDING];
};

/* Parsers kept between lines: as many as threads parse at once, at most POOL_MAX (each
   holds ~15 bytes per byte of the longest line it read, <= 16 KiB: ~0.25 MiB); a thread
   past them makes one for its line and deletes it after. */
constexpr int POOL_MAX = 4;
std::mutex pool_mu;
slot *pool[POOL_MAX];
int npool;
/* Parsers for whole documents (fr_json_fast_load_doc) kept between them while sized for at
   most FR_JSON_FAST_DOC_KEEP bytes, at most DOC_POOL_MAX (the threads that parse an OTLP
   export at once, mostly); a thread that finds none makes its own. */
constexpr size_t FR_JSON_FAST_DOC_KEEP = 1024 * 1024;
constexpr int DOC_POOL_MAX = 2;
simdjson::dom::parser *doc_pool[DOC_POOL_MAX];
int ndoc;

slot *
take()
{
    {
        std::lock_guard<std::mutex> g(pool_mu);
        if (npool > 0)
            return pool[--npool];
    }
    return new (std::nothrow) slot;
}

void
give(slot *s)
{
    {
        std::lock_guard<std::mutex> g(pool_mu);
        if (npool < POOL_MAX) {
            pool[npool++] = s;
            return;
        }
    }
    delete s;
}

json_t *build_object(simdjson::dom::element o, const char *skip);

/* The jansson value of e; NULL when jansson would refuse it or read it differently
   (jsonfast.h), or memory ran out. */
json_t *
build(simdjson::dom::element e)
{
    using simdjson::dom::element_type;
    switch (e.type()) {
    case element_type::OBJECT:
        return build_object(e, nullptr);
    case element_type::ARRAY: {
        json_t *a = json_array();
        if (a == nullptr)
            return nullptr;
        for (simdjson::dom::element x : simdjson::dom::array(e)) {
            json_t *v = build(x);
            if (v == nullptr || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return nullptr;
            }
        }
        return a;
    }
    case element_type::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        if (std::memchr(s.data(), 0, s.size()) != nullptr) /* \u0000: jansson refuses it */
            return nullptr;
        return json_stringn_nocheck(s.data(), s.size()); /* UTF-8 checked by simdjson */
    }
    case element_type::INT64:
        return json_integer(e.get_int64().value_unsafe());
    case element_type::UINT64: /* past int64: jansson's "too big integer" */
        return nullptr;
    case element_type::DOUBLE:
        return json_real(e.get_double().value_unsafe());
    case element_type::BOOL:
        return json_boolean(e.get_bool().value_unsafe());
    case element_type::NULL_VALUE:
        return json_null();
    }
    return nullptr;
}

/* The tree of the document in padded (len bytes, then SIMDJSON_PADDING of zeros); NULL as
   fr_json_fast_load's. */
json_t *
load_padded(simdjson::dom::parser &parser, const char *padded, size_t len)
{
    json_t *tree = nullptr;
    simdjson::dom::element root;
    /* simdjson reports errors by value (MEMALLOC included); nothing here throws */
    if (!parser.parse(padded, len, false).get(root) &&
        (root.type() == simdjson::dom::element_type::OBJECT ||
         root.type() == simdjson::dom::element_type::ARRAY))
        tree = build(root);
    return tree;
}

} // namespace

extern "C" json_t *
fr_json_fast_load_doc(const char *buf, size_t len)
{
    if (len <= FR_JSON_FAST_MAX)
        return fr_json_fast_load(buf, len);
    if (len > FR_JSON_FAST_DOC_MAX || (unsigned char)buf[0] == 0xef)
        return nullptr;
    char *padded = static_cast<char *>(std::malloc(len + simdjson::SIMDJSON_PADDING));
    if (padded == nullptr)
        return nullptr;
    std::memcpy(padded, buf, len);
    std::memset(padded + len, 0, simdjson::SIMDJSON_PADDING);
    /* a kept parser, or one for this document alone: its tape and indexes are reserved for
       len bytes (~15 per byte) but touched only as far as the document's values reach (~3
       per byte of OTLP JSON). Kept after it when sized for at most FR_JSON_FAST_DOC_KEEP
       (a new parser per 0.5 MB export, mapped and unmapped, cost 10-25% of an OTLP/JSON
       span's agent CPU); else freed, and given back to the system (daemon.c's mmap
       threshold) */
    simdjson::dom::parser *parser = nullptr;
    {
        std::lock_guard<std::mutex> g(pool_mu);
        if (ndoc > 0)
            parser = doc_pool[--ndoc];
    }
    json_t *tree = nullptr;
    if (parser == nullptr)
        parser = new (std::nothrow) simdjson::dom::parser;
    if (parser != nullptr)
        tree = load_padded(*parser, padded, len);
    std::free(padded);
    if (parser != nullptr && parser->capacity() <= FR_JSON_FAST_DOC_KEEP) {
        std::lock_guard<std::mutex> g(pool_mu);
        if (ndoc < DOC_POOL_MAX) {
            doc_pool[ndoc++] = parser;
            parser = nullptr;
        }
    }
    delete parser;
    return tree;
}

/* ---- a document read out in parts (fr_json_fast_parts_open) ---- */

struct fr_json_fast_parts {
    simdjson::dom::parser parser;
    char *padded = nullptr;
    const char *keys[3]; /* the caller's: outer, middle, inner (it keeps them) */
    simdjson::dom::array::iterator r, r_end; /* the outer list */
    bool in_r = false;                       /* inside *r: s, s_end are its middle list */
    simdjson::dom::array::iterator s, s_end;
    bool s_none = false; /* *r has no middle list */
    bool in_s = false;   /* inside *s: k, k_end are its inner list */
    simdjson::dom::array::iterator k, k_end;
    bool k_none = false; /* *s has no inner list */
    ~fr_json_fast_parts()
    {
        std::free(padded);
    }
};

namespace
{
/* The list under key in object o (found: true), an empty one when o has no such key; false
   when o is no object or the value is no list. */
bool
list_of(simdjson::dom::element o, std::string_view key, simdjson::dom::array &out, bool &has)
{
    simdjson::dom::object obj;
    if (o.get_object().get(obj))
        return false;
    simdjson::dom::element v;
    has = !obj.at_key(key).get(v);
    return !has || !v.get_array().get(out);
}

/* Object o as jansson's tree (NULL as build()'s), without its member skip (if not NULL),
   which must then be named once. */
json_t *
build_object(simdjson::dom::element o, const char *skip)
{
    json_t *out = json_object();
    if (out == nullptr)
        return nullptr;
    bool skipped = false;
    for (simdjson::dom::key_value_pair f : simdjson::dom::object(o)) {
        std::string_view k = f.key;
        if (skip != nullptr && k == skip) { /* a list given apart; named twice: as any key */
            if (skipped) {
                json_decref(out);
                return nullptr;
            }
            skipped = true;
            continue;
        }
        /* a NUL in a key: jansson refuses it; a duplicate: refused (JSON_REJECT_DUPLICATES) */
        if (std::memchr(k.data(), 0, k.size()) != nullptr ||
            json_object_getn(out, k.data(), k.size()) != nullptr) {
            json_decref(out);
            return nullptr;
        }
        json_t *v = build(f.value);
        if (v == nullptr || json_object_setn_new_nocheck(out, k.data(), k.size(), v) != 0) {
            json_decref(out);
            return nullptr;
        }
    }
    return out;
}

/* Whether every outer element is an object whose middle key, if any, holds a list of
   objects whose inner key, if any, holds a list: the shape parts are cut from. */
bool
shaped(simdjson::dom::array outer, const char *const keys[3])
{
    for (simdjson::dom::element e : outer) {
        simdjson::dom::array mid, in;
        bool has;
        if (!list_of(e, keys[1], mid, has))
            return false;
        if (!has) /* no middle list (a default array is not to be walked) */
            continue;
        for (simdjson::dom::element m : mid)
            if (!list_of(m, keys[2], in, has))
                return false;
    }
    return true;
}
} // namespace

extern "C" struct fr_json_fast_parts *
fr_json_fast_parts_open(const char *buf, size_t len, const char *outer, const char *middle,
                        const char *inner)
{
    if (len > FR_JSON_FAST_DOC_MAX || len == 0 || (unsigned char)buf[0] == 0xef)
        return nullptr;
    auto *p = new (std::nothrow) fr_json_fast_parts;
    if (p == nullptr)
        return nullptr;
    p->keys[0] = outer;
    p->keys[1] = middle;
    p->keys[2] = inner;
    p->padded = static_cast<char *>(std::malloc(len + simdjson::SIMDJSON_PADDING));
    simdjson::dom::element root;
    simdjson::dom::array list;
    bool has = false;
    if (p->padded != nullptr) {
        std::memcpy(p->padded, buf, len);
        std::memset(p->padded + len, 0, simdjson::SIMDJSON_PADDING);
    }
    /* simdjson reports errors by value (MEMALLOC included); nothing here throws */
    if (p->padded == nullptr || p->parser.parse(p->padded, len, false).get(root) ||
        !list_of(root, p->keys[0], list, has) || !has || !shaped(list, p->keys)) {
        delete p;
        return nullptr;
    }
    /* the root's other members are not read: a part holds the outer list only; one named
       twice is left to jansson, whose reader takes the last (simdjson's at_key, the first) */
    size_t named = 0;
    for (simdjson::dom::key_value_pair f : simdjson::dom::object(root))
        named += f.key == std::string_view(p->keys[0]);
    if (named != 1) {
        delete p;
        return nullptr;
    }
    p->r = list.begin();
    p->r_end = list.end();
    return p;
}

extern "C" json_t *
fr_json_fast_parts_next(struct fr_json_fast_parts *p, size_t max, int *bad)
{
    *bad = 0;
    if (p->r == p->r_end)
        return nullptr;
    json_t *doc = json_object(), *outs = json_array();
    bool ok = doc != nullptr && outs != nullptr &&
              json_object_set_new_nocheck(doc, p->keys[0], outs) == 0;
    size_t n = 0;
    for (; ok && p->r != p->r_end && n < max; ++p->r, p->in_r = false) {
        simdjson::dom::element r = *p->r;
        bool has;
        if (!p->in_r) {
            simdjson::dom::array mid;
            list_of(r, p->keys[1], mid, has); /* shaped() saw it */
            p->s_none = !has;
            if (has) {
                p->s = mid.begin();
                p->s_end = mid.end();
            }
            p->in_r = true;
            p->in_s = false;
        }
        json_t *ro = build_object(r, p->keys[1]), *mids = json_array();
        if (ro == nullptr || mids == nullptr ||
            json_object_set_new_nocheck(ro, p->keys[1], mids) != 0) {
            if (ro == nullptr)
                json_decref(mids);
            json_decref(ro);
            ok = false;
            break;
        }
        if (json_array_append_new(outs, ro) != 0) /* the list owns it: freed with doc */
            ok = false;
        for (; ok && !p->s_none && p->s != p->s_end && n < max; ++p->s, p->in_s = false) {
            simdjson::dom::element m = *p->s;
            if (!p->in_s) {
                simdjson::dom::array in;
                list_of(m, p->keys[2], in, has);
                p->k_none = !has;
                if (has) {
                    p->k = in.begin();
                    p->k_end = in.end();
                }
                p->in_s = true;
            }
            json_t *mo = build_object(m, p->keys[2]), *ins = json_array();
            if (mo == nullptr || ins == nullptr ||
                json_object_set_new_nocheck(mo, p->keys[2], ins) != 0) {
                if (mo == nullptr)
                    json_decref(ins);
                json_decref(mo);
                ok = false;
                break;
            }
            if (json_array_append_new(mids, mo) != 0)
                ok = false;
            for (; ok && !p->k_none && p->k != p->k_end && n < max; ++p->k, n++) {
                json_t *v = build(*p->k);
                ok = v != nullptr && json_array_append_new(ins, v) == 0;
            }
            if (!ok || (!p->k_none && p->k != p->k_end))
                break; /* full: the next part goes on in this middle element */
        }
        if (!ok || (!p->s_none && p->s != p->s_end))
            break;
    }
    if (!ok) {
        if (outs != nullptr && doc == nullptr)
            json_decref(outs);
        json_decref(doc);
        *bad = 1;
        return nullptr;
    }
    return doc;
}

extern "C" void
fr_json_fast_parts_close(struct fr_json_fast_parts *p)
{
    delete p;
}

extern "C" json_t *
fr_json_fast_load(const char *buf, size_t len)
{
    /* a byte-order mark: left to jansson, which refuses it */
    if (len > FR_JSON_FAST_MAX || (len > 0 && (unsigned char)buf[0] == 0xef))
        return nullptr;
    slot *s = take();
    if (s == nullptr)
        return nullptr;
    std::memcpy(s->buf, buf, len);
    /* simdjson's SIMD loads read the padding; defined bytes keep valgrind's checks quiet */
    std::memset(s->buf + len, 0, simdjson::SIMDJSON_PADDING);
    json_t *tree = load_padded(s->parser, s->buf, len);
    give(s);
    return tree;
}
