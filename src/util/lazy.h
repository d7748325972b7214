/*
 * lazy.h - shared libraries that cgrad loads on first use (dlopen).
 *
 * libcurl, libarchive and OpenSSL's libcrypto serve `cgrad fetch` only,
 * and libmicrohttpd `cgrad serve` only, but linked in they are loaded by
 * every run: with what they pull in (Kerberos, LDAP, GnuTLS, ICU, ...)
 * that is 47 shared objects and several times the start-up time of a
 * program without them (bench/README.md, "Figures behind source
 * comments"). So the commands that need
 * them load them when they first call in, and `cgrad train` never does.
 *
 * A user of a library declares its functions once, as an X-macro list of
 * (field, symbol, return type, parameter list); CG_LAZY_TABLE makes from it
 * a struct of typed function pointers `var`, its table of symbol names and
 * the loader state `var_lib`:
 *
 *     #define CURL_FNS(X) X(easy_init, curl_easy_init, CURL *, (void)) ...
 *     CG_LAZY_TABLE(curl_fns, curl, CURL_FNS, "libcurl4", "libcurl.so.4", "libcurl.so");
 *
 * The names after the package are tried in order: the runtime library's
 * soname first, then others that have the same functions (OpenSSL 1.1's
 * libcrypto.so.1.1), then the -dev package's plain .so, which exists
 * wherever cgrad was built.
 *
 *     if (cg_lazy_load(&curl_lib, "fetch") != CG_OK) return cg_last_status();
 *     CURL *c = curl.easy_init();
 */
#ifndef CGRAD_UTIL_LAZY_H
#define CGRAD_UTIL_LAZY_H

#include "cgrad.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define CG_LAZY_FIELD(field, symbol, ret, params) ret(*field) params;
#define CG_LAZY_NAME(field, symbol, ret, params) #symbol,

typedef struct cg_lazy_lib {
    const char *const *sonames; /* what dlopen is given, in order; NULL-terminated */
    const char *package;        /* the Debian package that has it, for the message */
    const char *const *symbols; /* NULL-terminated, in the order of the struct's fields */
    void *table;                /* the struct of function pointers */
    size_t table_size;          /* its sizeof: checked against the names */
    pthread_mutex_t lock;
    bool tried;
    cg_status status;      /* of the one attempt: a failure is remembered */
    char message[512];
} cg_lazy_lib;

#define CG_LAZY_LIB(package, names, table, ...)                                              \
    {(const char *const[]){__VA_ARGS__, NULL}, (package), (names), &(table), sizeof(table),   \
     PTHREAD_MUTEX_INITIALIZER, false, CG_OK, ""}

/* The struct type `type`, its one instance `var`, the names and var_lib. */
#define CG_LAZY_TABLE(type, var, LIST, package, ...)                                  \
    typedef struct type {                                                             \
        LIST(CG_LAZY_FIELD)                                                           \
    } type;                                                                           \
    static type var;                                                                  \
    static const char *const var##_names[] = {LIST(CG_LAZY_NAME) NULL};               \
    static cg_lazy_lib var##_lib = CG_LAZY_LIB(package, var##_names, var, __VA_ARGS__)

/* Loads the library (the first of its names that dlopen finds) and every
 * symbol, once; later calls return the first answer. On failure: CG_ERR_IO
 * and a message naming `who` (the op), the library, dlerror()'s reason and
 * the package to install. The library
 * stays loaded until exit. Thread-safe. */
cg_status cg_lazy_load(cg_lazy_lib *lib, const char *who);

#endif
