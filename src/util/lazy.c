/*
 * lazy.c - dlopen a library on first use and fill a struct of function
 * pointers from its symbols (see lazy.h for why and how).
 */
#include "util/lazy.h"

#include "cgrad_internal.h"

#include <dlfcn.h>

/* Every field of a lazy table is one function pointer; dlsym hands back a
 * void *, which POSIX guarantees converts to a function pointer. The
 * bytes are copied, so that no function pointer is read as an object one. */
typedef void (*any_fn)(void);

static cg_status load(cg_lazy_lib *lib, const char *who) {
    size_t n = 0;
    while (lib->symbols[n]) n++;
    const char *name = lib->sonames[0];
    if (n * sizeof(any_fn) != lib->table_size || sizeof(void *) != sizeof(any_fn))
        return cg_fail(CG_ERR_ARG, "%s: the function table for %s does not match its names", who,
                       name);
    /* RTLD_LOCAL: the library's symbols stay out of the global namespace,
     * so nothing else can bind to them by accident. The first name's
     * failure is the one reported: it is the library the package installs. */
    void *h = NULL;
    char first_why[256] = "";
    for (size_t i = 0; !h && lib->sonames[i]; i++) {
        h = dlopen(lib->sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (h) name = lib->sonames[i];
        else if (i == 0) snprintf(first_why, sizeof first_why, "%s", dlerror());
    }
    if (!h)
        return cg_fail(CG_ERR_IO, "%s: cannot load %s (Debian package %s): %s", who, name,
                       lib->package, first_why[0] ? first_why : "unknown reason");
    for (size_t i = 0; i < n; i++) {
        dlerror();
        void *p = dlsym(h, lib->symbols[i]);
        const char *why = dlerror();
        if (!p || why) {
            cg_status st = cg_fail(CG_ERR_IO, "%s: %s has no %s (too old a version?): %s", who,
                                   name, lib->symbols[i], why ? why : "NULL symbol");
            dlclose(h);
            return st;
        }
        memcpy((unsigned char *)lib->table + i * sizeof(any_fn), &p, sizeof p);
    }
    return CG_OK;
}

cg_status cg_lazy_load(cg_lazy_lib *lib, const char *who) {
    pthread_mutex_lock(&lib->lock);
    if (!lib->tried) {
        lib->tried = true;
        lib->status = load(lib, who);
        if (lib->status != CG_OK)
            snprintf(lib->message, sizeof lib->message, "%s", cg_last_error());
    }
    cg_status st = lib->status;
    pthread_mutex_unlock(&lib->lock);
    /* Every caller of a failed load gets the message, on its own thread. */
    return st == CG_OK ? CG_OK : cg_fail(st, "%s", lib->message);
}
