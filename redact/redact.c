/*
 * redact/redact.c - applies the policy to an event's JSON tree.
 *
 * One walk gives every value its tag (field rules, secret key names,
 * producer tags; the highest wins) and applies whole-value actions (mask,
 * hash, drop). Every string that is kept in any form, every object key and
 * every long integer (card and phone numbers sent as numbers) is appended
 * to one buffer, separated by newlines, and the detectors run once over
 * that buffer. Only the values a candidate ends in are then rescanned on
 * their own (so boundaries and validators see exactly that value) and
 * rewritten. Structural changes (drops, renamed keys, numbers becoming
 * strings) are deferred until the walk is over.
 */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "core/wire.h"
#include "redact/internal.h"
#include "redact/keyname.h"

struct cand {
    json_t *node;   /* the value (for a key: the value under that key) */
    json_t *parent; /* object or array holding node */
    const char *key;
    size_t index;
    unsigned classes;
    size_t trunc; /* 0: none */
    enum fr_sensitivity tag;
    enum fr_action_type action;
    bool is_key, is_int, is_id, dirty;
    bool hit;           /* a detector matched in it (dirty: one of its classes did) */
    int clean_slot;     /* the worker's clean-text slot it fills if nothing matches; -1 none */
    uint64_t digest[2]; /* for the seen-clean slot it fills if clean; {0, 0}: none made */
    int sub;            /* the JSON text it sits in (worker's subs), -1 the event's own tree */
    size_t off, len;    /* the text in the worker's buffer */
    size_t path_off;    /* in paths, when explaining */
};

enum op_type { OP_DROP, OP_REPLACE, OP_RENAME };

struct op {
    enum op_type type;
    json_t *parent;
    char *key; /* owned copy */
    size_t index;
    json_t *value; /* OP_REPLACE: new value (owned); OP_RENAME: the value */
    char *newkey;  /* OP_RENAME */
};

/* Per-call working memory; pooled so threads never share one. */
/*
 * The key-name verdicts a worker has already computed: events of one
 * producer repeat the same few hundred keys, so splitting each into words
 * is done once per key, not once per occurrence. Direct-mapped by a hash.
 */
#define KEY_CACHE 1024
#define KEY_CACHE_LEN 40
struct key_verdict {
    char key[KEY_CACHE_LEN]; /* "" = empty slot */
    const char *rule;        /* static; NULL = not a credential's name */
};

/*
 * Short texts a worker's scans found no detector in: a producer's events
 * repeat their keys, roles, model and tool names, statuses and ids (47% of
 * the text of fr-gen's events is a string of under 32 bytes seen before), and
 * a text's matches depend on the text alone (each is scanned between
 * newlines, the detectors compiled multi-line: see fr_detect_compile), so a
 * text once found clean is not scanned again while its slot holds it.
 * Direct-mapped by a hash; the whole text is compared, never the hash alone.
 */
#define CLEAN_SLOTS 512
#define CLEAN_LEN 32 /* texts of 1 to 31 bytes */
struct clean_text {
    unsigned char len; /* 0 = empty slot */
    char text[CLEAN_LEN - 1];
};

/*
 * Longer texts found clean, shared by every worker of a redactor: a chat
 * server that calls a stateless provider API sends a conversation's whole
 * history again with every turn, so most of a long conversation's request
 * text was already scanned, once per earlier turn. Such a text is known by a
 * keyed 128-bit digest (fr_digest128: SipHash with a random key made for
 * this redactor, never stored), not by its bytes: holding the texts would
 * cost the memory the agent is not to spend. A text is taken as clean only
 * when all 128 bits of its digest equal a clean text's (the low bit is set
 * in every stored digest so an empty slot never matches): a chance of 2^-127
 * for two different texts, and nobody outside the process knows the key to
 * look for one. Direct-mapped, lock-free: a slot's two words are read and
 * written apart, and a torn read matches only what another 2^-64 chance
 * would. Texts of SEEN_MIN bytes or more; 16 bytes a slot.
 */
#define SEEN_SLOTS 32768
#define SEEN_MIN 64 /* shorter texts are mostly ids and names, unique or in the short cache */
struct seen_slot {
    _Atomic uint64_t a, b;
};

/*
 * A string that holds a JSON object or array (a tool call's arguments as an
 * OpenAI-shaped response carries them, an event's payload a producer
 * serialized once more): parsed and walked like the event's own values, so
 * the key-name rules and the argv flags reach inside it too, and written
 * back, compact, only if something in it changed. The owner is the JSON text
 * the string itself sits in (-1: the event's tree).
 */
#define SUB_MAX_BYTES (1u << 20) /* larger strings are scanned as text */
#define SUB_MAX_NEST 4           /* JSON in a string in JSON in a string ... */
#define SUB_MAX_DEPTH 64         /* as the wire's limit; deeper is scanned as text */
struct sub {
    json_t *outer; /* the string (borrowed: the tree holding it outlives the walk) */
    json_t *tree;  /* parsed from it (owned) */
    int owner;
    bool changed;
};

struct worker {
    struct key_verdict keys[KEY_CACHE];
    struct sub *subs;
    size_t nsubs, capsubs;
    struct fr_digest128 *digest; /* this worker's context of the redactor's seen key */
    struct clean_text clean[CLEAN_SLOTS];
    size_t nknown; /* bytes of this event's texts known clean (not in buf) */
    struct fr_det_scratch ds;
    struct cand *c;
    size_t nc, capc;
    char *buf;
    size_t nbuf, capbuf;
    struct op *ops;
    size_t nops, capops;
    struct fr_path_rule *tagrules;
    size_t ntagrules;
    const struct fr_path_rule **live;
    size_t nlive, caplive;
    char *path;
    size_t pathlen, cappath;
    char *paths;
    size_t npaths, cappaths;
    char *out;
    size_t nout, capout;
    struct worker *next;
};

struct fr_redactor {
    bool noop; /* nothing in the policy can change an event: skip the walk */
    struct fr_policy *policy;
    struct fr_detect *detect;
    struct fr_token_key tk;       /* the HMAC key and its id */
    char **secret_keys;           /* sorted, borrowed from policy */
    size_t key_min, key_max;      /* shortest and longest secret key name */
    unsigned char key_first[256]; /* 1 for each first letter of a secret key name */
    pthread_mutex_t lock;
    struct worker *free_workers;
    struct fr_digest128 *seen_key; /* NULL: no seen-clean cache (OpenSSL without SipHash) */
    struct seen_slot *seen;        /* SEEN_SLOTS */
};

/* Per-event state of a walk. */
struct walk {
    const char *rule; /* the key rule that tagged the value being walked, for explain */
    struct fr_redactor *r;
    struct worker *w;
    struct fr_redact_counts *counts;
    fr_redact_explain_fn explain;
    void *ud;
    bool changed;
    int sub;         /* the JSON text being walked (worker's subs), -1 the event's tree */
    unsigned nested; /* how many JSON texts deep */
};

/* A value changed: the event, and the JSON text it sits in. */
static void
mark_changed(struct walk *k, int sub)
{
    k->changed = true;
    if (sub >= 0)
        k->w->subs[sub].changed = true;
}

/* ---- small buffers ---- */

static void
grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    *p = fr_realloc(*p, c * elem);
    *cap = c;
}

static void
buf_put(char **b, size_t *n, size_t *cap, const char *s, size_t len)
{
    grow((void **)b, cap, *n + len + 1, 1);
    memcpy(*b + *n, s, len);
    *n += len;
    (*b)[*n] = '\0';
}

/* ---- redactor ---- */

static int
strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
fr_redactor_new(struct fr_policy *policy, const unsigned char key[FR_KEY_LEN],
                struct fr_redactor **out, struct fr_err *err)
{
    *out = NULL;
    struct fr_redactor *r = fr_calloc(1, sizeof *r);
    r->policy = policy;
    fr_token_key_init(&r->tk, key);
    pthread_mutex_init(&r->lock, NULL);
    if (policy->nsecret_keys > 1)
        qsort(policy->secret_keys, policy->nsecret_keys, sizeof *policy->secret_keys, strp_cmp);
    r->secret_keys = policy->secret_keys;
    r->key_min = SIZE_MAX;
    for (size_t i = 0; i < policy->nsecret_keys; i++) {
        size_t n = strlen(policy->secret_keys[i]);
        r->key_min = n < r->key_min ? n : r->key_min;
        r->key_max = n > r->key_max ? n : r->key_max;
        r->key_first[(unsigned char)policy->secret_keys[i][0]] = 1;
    }
    r->noop = policy->ndets == 0 && policy->nsecret_keys == 0;
    for (int t = 0; t < FR_SENS_COUNT; t++)
        if (policy->actions[t].type != FR_ACT_KEEP && policy->actions[t].type != FR_ACT_SCAN)
            r->noop = false;
    int rc = fr_detect_compile(policy->dets, policy->ndets, &r->detect, err);
    if (rc != FR_OK) {
        fr_redactor_free(r);
        return rc;
    }
    r->seen_key = fr_digest128_new();
    if (r->seen_key != NULL)
        r->seen = fr_calloc(SEEN_SLOTS, sizeof *r->seen);
    *out = r;
    return FR_OK;
}

static void
worker_free(struct worker *w)
{
    fr_det_scratch_free(&w->ds);
    fr_digest128_free(w->digest);
    free(w->subs);
    free(w->c);
    free(w->buf);
    free(w->ops);
    for (size_t i = 0; i < w->ntagrules; i++)
        fr_path_rule_free(&w->tagrules[i]);
    free(w->tagrules);
    free(w->live);
    free(w->path);
    free(w->paths);
    free(w->out);
    free(w);
}

void
fr_redactor_free(struct fr_redactor *r)
{
    if (r == NULL)
        return;
    while (r->free_workers != NULL) {
        struct worker *w = r->free_workers;
        r->free_workers = w->next;
        worker_free(w);
    }
    fr_detect_free(r->detect);
    fr_digest128_free(r->seen_key);
    free(r->seen);
    fr_policy_free(r->policy);
    pthread_mutex_destroy(&r->lock);
    OPENSSL_cleanse(&r->tk, sizeof r->tk);
    free(r);
}

const struct fr_policy *
fr_redactor_policy(const struct fr_redactor *r)
{
    return r->policy;
}

size_t
fr_redactor_detectors(const struct fr_redactor *r)
{
    return r->policy->ndets;
}

const char *
fr_redactor_detector_name(const struct fr_redactor *r, size_t i)
{
    return i < r->policy->ndets ? r->policy->dets[i].name : "?";
}

static struct worker *
worker_get(struct fr_redactor *r)
{
    pthread_mutex_lock(&r->lock);
    struct worker *w = r->free_workers;
    if (w != NULL)
        r->free_workers = w->next;
    pthread_mutex_unlock(&r->lock);
    if (w == NULL) {
        w = fr_calloc(1, sizeof *w);
        if (fr_det_scratch_init(r->detect, &w->ds, NULL) != FR_OK)
            abort(); /* only out of memory: as fr_malloc, not recoverable */
        w->digest = fr_digest128_dup(r->seen_key);
    }
    return w;
}

static void
worker_put(struct fr_redactor *r, struct worker *w)
{
    for (size_t i = 0; i < w->ntagrules; i++)
        fr_path_rule_free(&w->tagrules[i]);
    w->ntagrules = 0;
    pthread_mutex_lock(&r->lock);
    w->next = r->free_workers;
    r->free_workers = w;
    pthread_mutex_unlock(&r->lock);
}

/* ---- counters ---- */

void
fr_redact_counts_init(struct fr_redact_counts *c, const struct fr_redactor *r)
{
    memset(c, 0, sizeof *c);
    c->ndetectors = r->policy->ndets;
    c->hits = fr_calloc(c->ndetectors ? c->ndetectors : 1, sizeof *c->hits);
}

void
fr_redact_counts_add(struct fr_redact_counts *dst, const struct fr_redact_counts *src)
{
    for (size_t i = 0; i < dst->ndetectors && i < src->ndetectors; i++)
        dst->hits[i] += src->hits[i];
    for (int a = 0; a < FR_ACT_COUNT; a++)
        dst->actions[a] += src->actions[a];
    dst->events_changed += src->events_changed;
    dst->bytes_scanned += src->bytes_scanned;
    dst->bytes_known += src->bytes_known;
}

void
fr_redact_counts_free(struct fr_redact_counts *c)
{
    free(c->hits);
    memset(c, 0, sizeof *c);
}

/* ---- rewriting one text ---- */

/*
 * Rewrites text with the hits in w->ds (sorted, disjoint) into w->out,
 * reporting each through the walk (may be NULL for fr_redact_text).
 */
static void
replace_hits(struct fr_redactor *r, struct worker *w, const char *text, size_t len, struct walk *k,
             const struct cand *c)
{
    w->nout = 0;
    size_t at = 0;
    for (size_t i = 0; i < w->ds.nhits; i++) {
        const struct fr_det_hit *h = &w->ds.hits[i];
        const char *name = r->policy->dets[h->det].name;
        buf_put(&w->out, &w->nout, &w->capout, text + at, h->start - at);
        char token[FR_TOKEN_LEN + 1] = "";
        if (r->policy->replace_with_hash || (k && k->explain))
            fr_hmac_token(&r->tk, text + h->start, h->end - h->start, token);
        char rep[160];
        int n = r->policy->replace_with_hash ? snprintf(rep, sizeof rep, "[%s:%s]", name, token)
                                             : snprintf(rep, sizeof rep, "[REDACTED:%s]", name);
        buf_put(&w->out, &w->nout, &w->capout, rep, (size_t)n < sizeof rep ? (size_t)n : 0);
        at = h->end;
        if (k != NULL && k->counts != NULL && h->det < k->counts->ndetectors)
            k->counts->hits[h->det]++;
        if (k != NULL && k->explain != NULL) {
            struct fr_redact_hit hit = {.path = w->paths + c->path_off,
                                        .detector = name,
                                        .tag = c->tag,
                                        .action = c->action,
                                        .start = h->start,
                                        .end = h->end,
                                        .token = token};
            k->explain(k->ud, &hit);
        }
    }
    buf_put(&w->out, &w->nout, &w->capout, text + at, len - at);
}

size_t
fr_redact_text(struct fr_redactor *r, const char *text, size_t len, unsigned classes, char **out,
               size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    struct worker *w = worker_get(r);
    size_t n = 0;
    if (fr_detect_raw(r->detect, &w->ds, text, len) == FR_OK) {
        fr_detect_resolve(r->detect, &w->ds, text, len, classes);
        n = w->ds.nhits;
        if (n > 0) {
            replace_hits(r, w, text, len, NULL, NULL);
            *out = fr_strndup(w->out, w->nout);
            *outlen = w->nout;
        }
    }
    worker_put(r, w);
    return n;
}

/* ---- the walk ---- */

/* FNV-1a (32 bits) of s[0, n): the slot of a worker's caches. */
static uint32_t
cache_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* fr_key_secret_rule() through the worker's cache. */
static const char *
key_rule(struct worker *w, const char *key)
{
    size_t n = strnlen(key, KEY_CACHE_LEN);
    if (n >= KEY_CACHE_LEN)
        return fr_key_secret_rule(key);
    struct key_verdict *v = &w->keys[cache_hash(key, n) & (KEY_CACHE - 1)];
    if (v->key[0] != '\0' && memcmp(v->key, key, n + 1) == 0)
        return v->rule;
    v->rule = fr_key_secret_rule(key);
    memcpy(v->key, key, n + 1);
    return v->rule;
}

static bool
is_secret_key(const struct fr_redactor *r, const char *key)
{
    char low[64];
    /* most keys are rejected by their first letter or length, without a search */
    if (!r->key_first[(unsigned char)tolower((unsigned char)key[0])])
        return false;
    size_t n = strlen(key);
    if (n < r->key_min || n > r->key_max || n >= sizeof low)
        return false;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    const char *p = low;
    return bsearch(&p, r->secret_keys, r->policy->nsecret_keys, sizeof *r->secret_keys, strp_cmp) !=
           NULL;
}

static void
explain_action(struct walk *k, const char *path, enum fr_sensitivity tag, enum fr_action_type a,
               size_t len, const char *token)
{
    if (k->explain == NULL)
        return;
    struct fr_redact_hit hit = {.path = path,
                                .tag = tag,
                                .action = a,
                                .start = 0,
                                .end = len,
                                .token = token,
                                .rule = k->rule};
    k->explain(k->ud, &hit);
}

static struct op *
op_add(struct worker *w, enum op_type t, json_t *parent, const char *key, size_t index)
{
    grow((void **)&w->ops, &w->capops, w->nops + 1, sizeof *w->ops);
    struct op *o = &w->ops[w->nops++];
    *o = (struct op){
        .type = t, .parent = parent, .key = key ? fr_strdup(key) : NULL, .index = index};
    return o;
}

/* The clean-text slot of text[0, len), or -1 when it is too long to be kept. */
static int
clean_slot(const char *text, size_t len)
{
    if (len == 0 || len >= CLEAN_LEN)
        return -1;
    return (int)(cache_hash(text, len) & (CLEAN_SLOTS - 1));
}

/* The seen-clean slot of a digest. */
static struct seen_slot *
seen_slot(struct fr_redactor *r, const uint64_t d[2])
{
    return &r->seen[d[0] & (SEEN_SLOTS - 1)];
}

/* Whether a long text is known clean; else d is its digest ({0, 0} when none was made: the
   low bit of a digest made is set). */
static bool
seen_clean(struct walk *k, const char *text, size_t len, uint64_t d[2])
{
    if (k->w->digest == NULL || len < SEEN_MIN || !fr_digest128(k->w->digest, text, len, d)) {
        d[0] = d[1] = 0;
        return false;
    }
    d[1] |= 1;
    struct seen_slot *s = seen_slot(k->r, d);
    return atomic_load_explicit(&s->a, memory_order_relaxed) == d[0] &&
           atomic_load_explicit(&s->b, memory_order_relaxed) == d[1];
}

/* Adds the text to the event's scan; false when it need not be (known clean, no truncation). */
static bool
cand_add(struct walk *k, json_t *node, json_t *parent, const char *key, size_t index,
         const char *text, size_t len, enum fr_sensitivity tag, const struct fr_action *act,
         bool is_key, bool is_int)
{
    struct worker *w = k->w;
    size_t trunc = act->type == FR_ACT_TRUNCATE && !is_key ? act->n : 0;
    int slot = trunc == 0 ? clean_slot(text, len) : -1;
    uint64_t d[2] = {0, 0};
    if ((slot >= 0 && w->clean[slot].len == len && memcmp(w->clean[slot].text, text, len) == 0) ||
        (trunc == 0 && seen_clean(k, text, len, d))) {
        w->nknown += len + 1;
        return false;
    }
    grow((void **)&w->c, &w->capc, w->nc + 1, sizeof *w->c);
    struct cand *c = &w->c[w->nc++];
    *c = (struct cand){.node = node,
                       .parent = parent,
                       .key = key,
                       .index = index,
                       .classes = act->type == FR_ACT_SCAN || act->type == FR_ACT_TRUNCATE
                                      ? FR_DET_ALL
                                      : FR_DET_SECRET,
                       .trunc = trunc,
                       .clean_slot = slot,
                       .digest = {d[0], d[1]},
                       .sub = k->sub,
                       .tag = tag,
                       .action = act->type,
                       .is_key = is_key,
                       .is_int = is_int,
                       .off = w->nbuf,
                       .len = len};
    buf_put(&w->buf, &w->nbuf, &w->capbuf, text, len);
    buf_put(&w->buf, &w->nbuf, &w->capbuf, "\n", 1);
    if (k->explain != NULL) {
        c->path_off = w->npaths;
        buf_put(&w->paths, &w->npaths, &w->cappaths, w->path, w->pathlen);
        if (is_key)
            buf_put(&w->paths, &w->npaths, &w->cappaths, ".<key>", 6);
        buf_put(&w->paths, &w->npaths, &w->cappaths, "", 0);
        w->npaths++; /* keep the terminating NUL */
    }
    return true;
}

static void
path_push(struct worker *w, const char *seg, size_t *saved)
{
    *saved = w->pathlen;
    if (w->pathlen > 0)
        buf_put(&w->path, &w->pathlen, &w->cappath, ".", 1);
    buf_put(&w->path, &w->pathlen, &w->cappath, seg, strlen(seg));
}

static void
path_pop(struct worker *w, size_t saved)
{
    w->pathlen = saved;
    if (w->path != NULL)
        w->path[saved] = '\0';
}

static void walk_node(struct walk *k, json_t *node, json_t *parent, const char *key, size_t index,
                      size_t depth, enum fr_sensitivity tag, size_t lo, size_t hi);

/*
 * A command line given as an array of arguments (a tool's argv, a
 * subprocess call) names a credential by the flag before it: ["mysql",
 * "--password", "hunter2"], ["gh", "--token", "..."], ["curl", "-u",
 * "user:password"]. The detectors see each element alone, so the flag's
 * meaning is read here: an element that is a flag (one or two dashes, then
 * a name; no '=' or space, which the detectors see within the element)
 * whose name means a credential by the key-name rules makes the next string
 * element secret; -u and --user do when that element holds a ':'
 * (user:password; a user name alone is not a credential).
 */
#define ARGV_FLAG_MAX 40
static const char ARGV_USER[] = "the argument after -u/--user holds user:password";
static const char ARGV_CREDENTIAL[] = "the argument after a flag that names a credential";

static const char *
argv_flag(struct worker *w, const char *s, size_t len)
{
    if (len < 2 || len > ARGV_FLAG_MAX || s[0] != '-')
        return NULL;
    size_t dashes = s[1] == '-' ? 2 : 1;
    if (len == dashes || !isalpha((unsigned char)s[dashes]) || memchr(s, '=', len) != NULL ||
        memchr(s, ' ', len) != NULL)
        return NULL;
    const char *name = s + dashes;
    if ((dashes == 1 && strcmp(name, "u") == 0) || (dashes == 2 && strcmp(name, "user") == 0))
        return ARGV_USER;
    return key_rule(w, name) != NULL ? ARGV_CREDENTIAL : NULL;
}

static void
walk_children(struct walk *k, json_t *node, size_t depth, enum fr_sensitivity tag, size_t lo,
              size_t hi)
{
    if (json_is_object(node)) {
        const char *ck;
        json_t *cv;
        json_object_foreach(node, ck, cv) walk_node(k, cv, node, ck, 0, depth + 1, tag, lo, hi);
    } else if (json_is_array(node)) {
        size_t i;
        json_t *cv;
        const char *flag = NULL; /* the element before is a credential's flag: its rule */
        json_array_foreach(node, i, cv)
        {
            const char *outer = k->rule;
            enum fr_sensitivity t = tag;
            if (flag != NULL && json_is_string(cv) &&
                (flag != ARGV_USER || memchr(json_string_value(cv), ':', json_string_length(cv)))) {
                t = FR_SENS_SECRET;
                k->rule = flag;
            }
            walk_node(k, cv, node, NULL, i, depth + 1, t, lo, hi);
            k->rule = outer;
            flag = json_is_string(cv) && k->r->policy->key_words
                       ? argv_flag(k->w, json_string_value(cv), json_string_length(cv))
                       : NULL;
        }
    }
}

/* Whether text[0, len) may be one JSON object or array no deeper than max: its first and last
   bytes but spaces are {} or [], and its brackets outside strings nest at most max deep. */
static bool
json_text_shape(const char *t, size_t len, size_t max)
{
    size_t a = 0, b = len, depth = 0;
    while (a < b && isspace((unsigned char)t[a]))
        a++;
    while (b > a && isspace((unsigned char)t[b - 1]))
        b--;
    if (b - a < 2 || !((t[a] == '{' && t[b - 1] == '}') || (t[a] == '[' && t[b - 1] == ']')))
        return false;
    bool in_str = false;
    for (size_t i = a; i < b; i++) {
        char c = t[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* A string that holds a JSON object or array is walked as JSON (struct sub): true; false
   when it is not one (or too large, too deep, a key twice), to be scanned as text. */
static bool
walk_json_text(struct walk *k, json_t *node, size_t len, enum fr_sensitivity tag)
{
    struct worker *w = k->w;
    const char *text = json_string_value(node);
    unsigned char c0 = len > 0 ? (unsigned char)text[0] : 0;
    if ((c0 != '{' && c0 != '[' && !isspace(c0)) || len > SUB_MAX_BYTES ||
        k->nested >= SUB_MAX_NEST || !json_text_shape(text, len, SUB_MAX_DEPTH))
        return false;
    json_t *tree = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (tree == NULL)
        return false;
    grow((void **)&w->subs, &w->capsubs, w->nsubs + 1, sizeof *w->subs);
    int id = (int)w->nsubs++;
    w->subs[id] = (struct sub){.outer = node, .tree = tree, .owner = k->sub};
    int outer = k->sub;
    k->sub = id;
    k->nested++;
    size_t saved = 0;
    if (k->explain != NULL)
        path_push(w, "<json>", &saved);
    walk_children(k, tree, 0, tag, w->nlive, w->nlive); /* no field rule reaches inside */
    if (k->explain != NULL)
        path_pop(w, saved);
    k->nested--;
    k->sub = outer;
    return true;
}

/* After the event's changes: each JSON text something in changed is written back into its
   string, compact (innermost first, so an outer one takes the inner one's new text). */
static void
subs_finish(struct walk *k)
{
    struct worker *w = k->w;
    for (size_t i = w->nsubs; i-- > 0;) {
        struct sub *sb = &w->subs[i];
        if (sb->changed) {
            size_t n = 0;
            char *text = fr_json_text(sb->tree, JSON_COMPACT, &n);
            if (text != NULL)
                json_string_setn(sb->outer, text, n);
            else /* not expected of a tree parsed from text; never keep what it held */
                json_string_set(sb->outer, "[REDACTED:json]");
            free(text);
            if (sb->owner >= 0)
                w->subs[sb->owner].changed = true;
        }
        json_decref(sb->tree);
    }
    w->nsubs = 0;
}

static void
walk_leaf(struct walk *k, json_t *node, json_t *parent, const char *key, size_t index,
          enum fr_sensitivity tag, const struct fr_action *act)
{
    struct worker *w = k->w;
    const char *text;
    size_t len;
    char num[32];
    bool is_int = false;
    if (json_is_string(node)) {
        text = json_string_value(node);
        len = json_string_length(node);
    } else if (json_is_integer(node)) {
        json_int_t v = json_integer_value(node);
        bool whole =
            tag == FR_SENS_SECRET && (act->type == FR_ACT_MASK || act->type == FR_ACT_HASH);
        if (!whole && v < 1000000000 && v > -1000000000)
            return; /* too short to be a phone or card number (a secret's pin is not kept) */
        len = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, v);
        text = num;
        is_int = true;
    } else {
        return; /* reals, booleans, null carry nothing a detector knows */
    }
    if (act->type == FR_ACT_MASK || act->type == FR_ACT_HASH) {
        char token[FR_TOKEN_LEN + 1];
        fr_hmac_token(&k->r->tk, text, len, token);
        char label[32];
        snprintf(label, sizeof label, "[REDACTED:%s]", fr_sensitivity_name(tag));
        const char *rep = act->type == FR_ACT_MASK ? label : token;
        explain_action(k, w->path, tag, act->type, len, token);
        if (is_int) {
            op_add(w, OP_REPLACE, parent, key, index)->value = json_string(rep);
        } else {
            json_string_set(node, rep);
        }
        if (k->counts)
            k->counts->actions[act->type]++;
        mark_changed(k, k->sub);
        return;
    }
    if (!is_int && (act->type == FR_ACT_SCAN || act->type == FR_ACT_KEEP) &&
        walk_json_text(k, node, len, tag))
        return;
    cand_add(k, node, parent, key, index, text, len, tag, act, false, is_int);
}

static void
walk_node(struct walk *k, json_t *node, json_t *parent, const char *key, size_t index, size_t depth,
          enum fr_sensitivity tag, size_t lo, size_t hi)
{
    struct worker *w = k->w;
    char ibuf[24];
    const char *seg = key;
    if (seg == NULL) {
        snprintf(ibuf, sizeof ibuf, "%zu", index);
        seg = ibuf;
    }
    size_t nlo = w->nlive;
    for (size_t i = lo; i < hi; i++) {
        const struct fr_path_rule *rule = w->live[i];
        if (depth >= rule->nsegs)
            continue;
        const char *rs = rule->segs[depth];
        if (!(rs[0] == '*' && rs[1] == '\0') && (rs[0] != seg[0] || strcmp(rs, seg) != 0))
            continue;
        if (rule->nsegs == depth + 1) {
            if (rule->tag > tag)
                tag = rule->tag;
        } else {
            grow((void **)&w->live, &w->caplive, w->nlive + 1, sizeof *w->live);
            w->live[w->nlive++] = rule;
        }
    }
    size_t nhi = w->nlive;
    const char *outer_rule = k->rule;
    if (key != NULL && is_secret_key(k->r, key)) {
        tag = FR_SENS_SECRET;
        k->rule = "secret_keys";
    } else if (key != NULL && k->r->policy->key_words && tag != FR_SENS_SECRET &&
               (json_is_string(node) || json_is_number(node) || json_is_array(node))) {
        /* a credential named only by its key; an object under such a key is walked
           as it is, each of its own keys judged by itself */
        const char *rule = key_rule(w, key);
        if (rule != NULL) {
            tag = FR_SENS_SECRET;
            k->rule = rule;
        }
    }
    const struct fr_action *act = &k->r->policy->actions[tag];
    size_t saved = 0;
    if (k->explain != NULL)
        path_push(w, seg, &saved);
    if (act->type == FR_ACT_DROP) {
        op_add(w, OP_DROP, parent, key, index);
        explain_action(k, w->path, tag, act->type, 0, "");
        if (k->counts)
            k->counts->actions[FR_ACT_DROP]++;
        mark_changed(k, k->sub);
    } else {
        /* a key is text too: scanned (never masked) with its value's detectors */
        if (key != NULL && json_is_object(parent))
            cand_add(k, node, parent, key, 0, key, strlen(key), tag, act, true, false);
        if (json_is_object(node) || json_is_array(node))
            walk_children(k, node, depth, tag, nlo, nhi);
        else
            walk_leaf(k, node, parent, key, index, tag, act);
    }
    if (k->explain != NULL)
        path_pop(w, saved);
    w->nlive = nlo;
    k->rule = outer_rule;
}

/* The cand whose text holds buffer offset pos; cands are in buffer order. */
static struct cand *
cand_at(struct worker *w, size_t pos)
{
    size_t lo = 0, hi = w->nc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->c[mid].off + w->c[mid].len + 1 <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->nc ? &w->c[lo] : NULL;
}

static void
apply_cand(struct walk *k, struct cand *c)
{
    struct worker *w = k->w;
    const char *text = w->buf + c->off;
    size_t len = c->len;
    bool rewritten = false;
    if (c->dirty && fr_detect_raw(k->r->detect, &w->ds, text, len) == FR_OK) {
        fr_detect_resolve(k->r->detect, &w->ds, text, len, c->classes);
        if (w->ds.nhits > 0 && c->is_id) {
            /* an id holding a secret or personal datum: the whole id becomes its
               keyed hash, equal for equal ids, so joins and grouping still work */
            char token[FR_TOKEN_LEN + 1];
            fr_hmac_token(&k->r->tk, text, len, token);
            if (k->counts && w->ds.hits[0].det < k->counts->ndetectors)
                k->counts->hits[w->ds.hits[0].det]++;
            if (k->explain != NULL)
                explain_action(k, w->paths + c->path_off, c->tag, FR_ACT_HASH, len, token);
            w->nout = 0;
            buf_put(&w->out, &w->nout, &w->capout, token, strlen(token));
            c->action = FR_ACT_HASH;
            rewritten = true;
        } else if (w->ds.nhits > 0) {
            replace_hits(k->r, w, text, len, k, c);
            rewritten = true;
        }
    }
    if (c->trunc > 0 && (rewritten ? w->nout : len) > c->trunc) {
        if (!rewritten) {
            w->nout = 0;
            buf_put(&w->out, &w->nout, &w->capout, text, len);
            rewritten = true;
        }
        size_t orig = w->nout;
        w->nout = fr_utf8_cut(w->out, c->trunc);
        char mark[48];
        int n = snprintf(mark, sizeof mark, "[TRUNCATED:%zu]", orig);
        buf_put(&w->out, &w->nout, &w->capout, mark, (size_t)n);
        if (k->explain != NULL)
            explain_action(k, w->paths + c->path_off, c->tag, FR_ACT_TRUNCATE, len, "");
    }
    if (!rewritten)
        return;
    if (k->counts)
        k->counts->actions[c->action]++;
    mark_changed(k, c->sub);
    if (c->is_key)
        op_add(w, OP_RENAME, c->parent, c->key, 0)->newkey = fr_strndup(w->out, w->nout);
    else if (c->is_int)
        op_add(w, OP_REPLACE, c->parent, c->key, c->index)->value = json_stringn(w->out, w->nout);
    else
        json_string_setn(c->node, w->out, w->nout);
}

/*
 * Concatenated scan: every end offset of every match marks the value it
 * ends in. A match that runs on across the separator into the next value
 * also ends, at some offset, inside the value it started in whenever that
 * value alone holds a match, so each such value is marked and rescanned.
 */
static int
mark_dirty(unsigned det, size_t from, size_t to, void *ud)
{
    (void)from;
    struct walk *k = ud;
    struct worker *w = k->w;
    struct cand *c = cand_at(w, to > 0 ? to - 1 : 0);
    if (c == NULL)
        return 0;
    c->hit = true; /* whatever the class: the text is not clean */
    if (c->classes & k->r->policy->dets[det].klass)
        c->dirty = true;
    return 0;
}

static void
apply_ops(struct worker *w)
{
    for (size_t i = w->nops; i-- > 0;) {
        struct op *o = &w->ops[i];
        if (o->type == OP_DROP) {
            if (json_is_object(o->parent))
                json_object_del(o->parent, o->key);
            else
                json_array_remove(o->parent, o->index);
        } else if (o->type == OP_REPLACE) {
            if (json_is_object(o->parent))
                json_object_set_new(o->parent, o->key, o->value);
            else
                json_array_set_new(o->parent, o->index, o->value);
            o->value = NULL;
        } else {
            json_t *v = json_object_get(o->parent, o->key);
            if (v != NULL) {
                json_object_set(o->parent, o->newkey, v);
                json_object_del(o->parent, o->key);
            }
        }
        free(o->key);
        free(o->newkey);
        json_decref(o->value);
    }
    w->nops = 0;
}

/* Whether one of the live rules [0, n) names exactly the top-level field key. */
static bool
named_by_rule(const struct worker *w, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (w->live[i]->nsegs == 1 && strcmp(w->live[i]->segs[0], key) == 0)
            return true;
    return false;
}

int
fr_redact_event(struct fr_redactor *r, struct fr_event *ev, struct fr_redact_counts *counts,
                fr_redact_explain_fn explain, void *ud, bool *changed, struct fr_err *err)
{
    (void)err;
    *changed = false;
    if (r->noop)
        return FR_OK;
    struct worker *w = worker_get(r);
    struct walk k = {.r = r, .w = w, .counts = counts, .explain = explain, .ud = ud, .sub = -1};
    w->nc = w->nbuf = w->nops = w->nlive = w->npaths = w->pathlen = w->nknown = 0;
    /* the live rules at depth 0: the policy's for this kind, then the producer's tags */
    for (size_t i = 0; i < r->policy->nrules; i++) {
        const struct fr_path_rule *rule = &r->policy->rules[i];
        if (rule->kind < 0 || rule->kind == (int)ev->kind) {
            grow((void **)&w->live, &w->caplive, w->nlive + 1, sizeof *w->live);
            w->live[w->nlive++] = rule;
        }
    }
    if (ev->tags != NULL) {
        const char *path;
        json_t *t;
        w->tagrules =
            fr_realloc(w->tagrules, (json_object_size(ev->tags) + 1) * sizeof *w->tagrules);
        json_object_foreach(ev->tags, path, t)
        {
            int s = fr_sensitivity_parse(json_string_value(t) ? json_string_value(t) : "");
            if (s >= 0 && fr_path_rule_init(&w->tagrules[w->ntagrules], -1, path,
                                            (enum fr_sensitivity)s) == FR_OK)
                w->ntagrules++;
        }
        for (size_t i = 0; i < w->ntagrules; i++) {
            grow((void **)&w->live, &w->caplive, w->nlive + 1, sizeof *w->live);
            w->live[w->nlive++] = &w->tagrules[i];
        }
    }
    size_t nroot = w->nlive;
    const char *key;
    size_t klen;
    json_t *v, *idnode[FR_ID_COUNT] = {0};
    json_object_keylen_foreach(ev->root, key, klen, v)
    {
        int field = fr_wire_field(key, klen);
        if (field >= 0 && field < FR_ID_COUNT)
            idnode[field] = v; /* scanned below */
        if (field >= 0 && field != FR_WF_DATA && field != FR_WF_ERROR)
            continue; /* the envelope's ids, kind, times, tags: not walked */
        /* a producer's own top-level fields (kept as attributes) are of unknown
           content: scanned as pii at least, unless a rule names the field */
        enum fr_sensitivity tag = r->policy->default_tag;
        if (field < 0 && tag < FR_SENS_PII && !named_by_rule(w, nroot, key))
            tag = FR_SENS_PII;
        walk_node(&k, v, ev->root, key, 0, 0, tag, 0, nroot);
    }
    /* envelope ids are public (kept for joins), but one that holds what a
       detector recognises is hashed whole (apply_cand) */
    static const struct fr_action scan = {.type = FR_ACT_SCAN};
    /* the keys of tags are field paths, but a producer's text all the same: scanned like
       every other key (a hit is replaced in the key) */
    if (ev->tags != NULL) {
        json_object_foreach(ev->tags, key, v)
        {
            size_t saved;
            path_push(w, "tags", &saved);
            cand_add(&k, v, ev->tags, key, 0, key, strlen(key), FR_SENS_PUBLIC, &scan, true, false);
            path_pop(w, saved);
        }
    }
    for (size_t i = 0; i < FR_ID_COUNT; i++) {
        json_t *id = idnode[i];
        if (!json_is_string(id) || json_string_length(id) < 6)
            continue; /* nothing shorter is any detector's */
        size_t saved;
        path_push(w, fr_id_names[i], &saved);
        if (cand_add(&k, id, ev->root, fr_id_names[i], 0, json_string_value(id),
                     json_string_length(id), FR_SENS_PUBLIC, &scan, false, false))
            w->c[w->nc - 1].is_id = true;
        path_pop(w, saved);
    }
    /* one pass of every detector over all the text, then only the values hit */
    if (counts) {
        counts->bytes_scanned += w->nbuf;
        counts->bytes_known += w->nknown;
    }
    if (w->nc > 0)
        fr_detect_each(r->detect, &w->ds, w->buf, w->nbuf, mark_dirty, &k);
    for (size_t i = 0; i < w->nc; i++) {
        struct cand *c = &w->c[i];
        if (c->clean_slot >= 0 && !c->hit) { /* what nothing matched in is not scanned again */
            struct clean_text *t = &w->clean[c->clean_slot];
            t->len = (unsigned char)c->len;
            memcpy(t->text, w->buf + c->off, c->len);
        }
        if (c->digest[1] != 0 && !c->hit) {
            struct seen_slot *s = seen_slot(r, c->digest);
            atomic_store_explicit(&s->a, c->digest[0], memory_order_relaxed);
            atomic_store_explicit(&s->b, c->digest[1], memory_order_relaxed);
        }
        if (c->dirty || c->trunc > 0)
            apply_cand(&k, c);
    }
    apply_ops(w);
    subs_finish(&k);
    if (k.changed) /* the borrowed id pointers may point at replaced strings */
        for (size_t i = 0; i < FR_ID_COUNT; i++) {
            json_t *id = json_object_get(ev->root, fr_id_names[i]);
            ev->ids[i] = json_string_length(id) > 0 ? json_string_value(id) : NULL;
        }
    if (k.changed && counts)
        counts->events_changed++;
    *changed = k.changed;
    worker_put(r, w);
    return FR_OK;
}
