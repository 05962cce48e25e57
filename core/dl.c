/*
 * core/dl.c - a shared library opened the first time it is needed (dl.h).
 */
#include "core/dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pthread_once runs a function without an argument: the library being loaded, per thread */
static _Thread_local struct fr_dl *dl_loading;

static void
dl_open(void)
{
    struct fr_dl *d = dl_loading;
    /* never closed: its functions stay in the table for the life of the process */
    void *h = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(d->msg, sizeof d->msg, "%s, needed for %s, could not be opened: %s", d->soname,
                 d->purpose, why ? why : "unknown reason");
        d->rc = FR_E_CONFIG;
        return;
    }
    const char *missing = NULL;
    if (!d->fill(h, &missing)) {
        snprintf(d->msg, sizeof d->msg, "%s, needed for %s, lacks the function %s (too old?)",
                 d->soname, d->purpose, missing ? missing : "?");
        d->rc = FR_E_CONFIG;
        return;
    }
    d->rc = FR_OK;
}

int
fr_dl_load(struct fr_dl *d, struct fr_err *err)
{
    dl_loading = d;
    pthread_once(&d->once, dl_open);
    dl_loading = NULL;
    return d->rc == FR_OK ? FR_OK : fr_err_set(err, d->rc, "%s", d->msg);
}

void
fr_dl_need(struct fr_dl *d)
{
    struct fr_err err = {0};
    if (fr_dl_load(d, &err) != FR_OK) {
        fprintf(stderr, "flightrec: %s\n", err.msg);
        exit(70); /* EX_SOFTWARE: the caller should have checked fr_dl_load */
    }
}

fr_dl_fn
fr_dl_sym(void *handle, const char *name)
{
    void *p = dlsym(handle, name);
    fr_dl_fn f;
    memcpy(&f, &p, sizeof f); /* POSIX: dlsym's result may be used as a function pointer */
    return f;
}
