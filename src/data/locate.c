/*
 * locate.c - finding a dataset on disk before thinking of the network.
 *
 * The order is the user's intent, most explicit first: a --data PATH, then
 * $CGRAD_DATA/NAME (how CI and the tests point at a shared copy), then a
 * copy fetched earlier into the cache, and only then a download. A path
 * the user typed that does not exist is an error, never a reason to fall
 * back to something else silently.
 */
#include "cgrad_internal.h"
#include "data/fetch_internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* a + sep + b, where sep is "/" unless a ends in a space (a label);
 * false if it does not fit (a cut path must never be looked up). */
static bool join(char *buf, size_t size, const char *a, const char *b) {
    size_t n = strlen(a);
    const char *sep = (n == 0 || a[n - 1] == ' ' || !*b) ? "" : "/";
    int w = snprintf(buf, size, "%s%s%s", a, sep, b);
    return w >= 0 && (size_t)w < size;
}

static cg_status found(const char *path, char *out, size_t size) {
    if (strlen(path) >= size)
        return cg_fail(CG_ERR_ARG, "dataset: the path %s does not fit the %zu-byte buffer", path,
                       size);
    snprintf(out, size, "%s", path);
    return CG_OK;
}

cg_status cg_locate_dataset(const char *name, const char *explicit_path, bool allow_fetch,
                            char *out, size_t size) {
    if (!out || size == 0) return cg_fail(CG_ERR_ARG, "dataset: no output buffer");
    if (explicit_path && *explicit_path) {
        if (!exists(explicit_path))
            return cg_fail(CG_ERR_IO, "dataset: --data %s: %s", explicit_path, strerror(errno));
        return found(explicit_path, out, size);
    }
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cg_fail(CG_ERR_ARG, "dataset: '%s' is not a dataset name", name ? name : "(null)");

    /* What was looked at, for the message if nothing is found. */
    char path[PATH_MAX], looked[PATH_MAX * 2 + 64] = "";
    const char *data = getenv("CGRAD_DATA");
    if (data && *data) {
        if (join(path, sizeof path, data, name) && exists(path)) return found(path, out, size);
        join(looked, sizeof looked, "no ", path);
    } else {
        join(looked, sizeof looked, "CGRAD_DATA is not set", "");
    }
    char cache[PATH_MAX];
    bool have_cache = cg_cache_dir(cache, sizeof cache) != NULL;
    if (have_cache) {
        if (join(path, sizeof path, cache, name) && exists(path)) return found(path, out, size);
        size_t n = strlen(looked);
        join(looked + n, sizeof looked - n, ", no ", path);
    }

    char prefix[sizeof looked + 64];
    snprintf(prefix, sizeof prefix, "dataset '%s' not found (%s); ", name, looked);
    const char *url = cg_dataset_url(name);
    if (!url)
        return cg_fail_with_hint(CG_ERR_IO, prefix, "cgrad knows no URL to download it from", name);
    if (!allow_fetch) {
        char why[PATH_MAX], mirrored[2048];
        snprintf(why, sizeof why, "downloading it from %s is turned off",
                 cg_fetch_source_url(url, mirrored, sizeof mirrored));
        return cg_fail_with_hint(CG_ERR_IO, prefix, why, name);
    }
    cg_fetch_options opt = {.cache_dir = have_cache ? cache : NULL};
    cg_status s = cg_fetch_plain(name, out, size, &opt);
    if (s == CG_OK) return CG_OK;
    /* cg_fetch_plain's message names the URL and curl's reason. */
    char reason[1024];
    snprintf(reason, sizeof reason, "%s", cg_last_error());
    return cg_fail_with_hint(s, prefix, reason, name);
}
