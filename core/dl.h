/*
 * core/dl.h - a shared library opened the first time it is needed.
 *
 * libcurl (uploads, the bucket mirror), libpq (the fleet store), libarchive
 * (incident bundles) and libmicrohttpd (the agent's HTTP server) brought 35
 * of the 51 libraries flightrec loaded (Kerberos, LDAP, GnuTLS and p11-kit,
 * ICU, libxml2 ...), all built to be bound at load: every process loaded
 * and relocated them at start, for features most runs never touch (2.9 MB
 * of the agent's resident memory; half the page faults of a CLI command's
 * start). So flightrec opens each with dlopen when a feature first needs
 * it, by the soname it was built against, and looks its functions up into
 * a table.
 *
 * A header per library (retention/hot/pq_dl.h, retention/curl_dl.h,
 * exporters/archive_dl.h, agent/api/mhd_dl.h) lists the functions used,
 * declares the table with the library's own prototypes, and defines each
 * function's name to call through it, so the code that uses the library
 * reads as if it were linked.
 * The feature's entry point calls the library's load function first and
 * fails with its message when the library cannot be opened; a call that
 * reaches the table without it (a bug) loads it there, or exits saying
 * which library and why.
 */
#ifndef FR_CORE_DL_H
#define FR_CORE_DL_H

#include "core/err.h"

#include <pthread.h>
#include <stdbool.h>

typedef void (*fr_dl_fn)(void);

struct fr_dl {
    const char *soname;  /* "libcurl.so.4": the library built against (CMakeLists.txt) */
    const char *purpose; /* "uploads and the bucket mirror": said when it cannot be opened */
    /* fills the library's table from handle (fr_dl_sym for each function); false with the
       name of the first function the library lacks */
    bool (*fill)(void *handle, const char **missing);
    /* private: the first load's outcome, kept for every later call */
    pthread_once_t once;
    int rc;
    char msg[400];
};

#define FR_DL_INIT(soname_, purpose_, fill_)                                                       \
    {                                                                                              \
        .soname = (soname_), .purpose = (purpose_), .fill = (fill_), .once = PTHREAD_ONCE_INIT     \
    }

/* Opens d's library once (later calls return the first outcome): FR_OK, or FR_E_CONFIG
   naming the library, what needs it and dlopen's reason (the package to install). */
int fr_dl_load(struct fr_dl *d, struct fr_err *err);

/* fr_dl_load for a call that must not fail: on failure prints its message and exits 70. */
void fr_dl_need(struct fr_dl *d);

/* The function name in handle, or NULL (dlsym's object pointer as a function pointer). */
fr_dl_fn fr_dl_sym(void *handle, const char *name);

/*
 * FR_DL_DECLARE(name, FUNCTIONS), in the library's header, after the library's own: the table
 * (struct fr_<name>_table, one pointer per function of the X-macro FUNCTIONS, typed by the
 * library's prototype), fr_<name>_load(err) (opens it once: FR_OK, or FR_E_CONFIG naming it
 * and why) and fr_<name>() (the table, loaded; exits naming the library if it cannot be, a
 * call made without fr_<name>_load first).
 */
#define FR_DL_FIELD(f) __typeof__(f) *f;
#define FR_DL_DECLARE(name, FUNCTIONS)                                                             \
    struct fr_##name##_table {                                                                     \
        FUNCTIONS(FR_DL_FIELD)                                                                     \
    };                                                                                             \
    int fr_##name##_load(struct fr_err *err);                                                      \
    const struct fr_##name##_table *fr_##name(void);

/*
 * FR_DL_DEFINE(name, FUNCTIONS, soname, purpose), in the library's one .c file, after its
 * header (with the header's redirections off): the table (struct fr_<name>_table, one field
 * per function of the X-macro FUNCTIONS), its fill, fr_<name>_load(err) and fr_<name>().
 */
#define FR_DL_FILL_ONE(f)                                                                          \
    if ((fr_dl_t->f = (__typeof__(fr_dl_t->f))fr_dl_sym(h, #f)) == NULL) {                         \
        *missing = #f;                                                                             \
        return false;                                                                              \
    }
#define FR_DL_DEFINE(name, FUNCTIONS, soname_, purpose_)                                           \
    static struct fr_##name##_table fr_##name##_dl_table;                                          \
    static bool fr_##name##_dl_fill(void *h, const char **missing)                                 \
    {                                                                                              \
        struct fr_##name##_table *fr_dl_t = &fr_##name##_dl_table;                                 \
        FUNCTIONS(FR_DL_FILL_ONE)                                                                  \
        return true;                                                                               \
    }                                                                                              \
    static struct fr_dl fr_##name##_dl = FR_DL_INIT(soname_, purpose_, fr_##name##_dl_fill);       \
    int fr_##name##_load(struct fr_err *err)                                                       \
    {                                                                                              \
        return fr_dl_load(&fr_##name##_dl, err);                                                   \
    }                                                                                              \
    const struct fr_##name##_table *fr_##name(void)                                                \
    {                                                                                              \
        fr_dl_need(&fr_##name##_dl);                                                               \
        return &fr_##name##_dl_table;                                                              \
    }

#endif
