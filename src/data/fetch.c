/*
 * fetch.c - downloading a dataset archive into the cache the way fastai's
 * untar_data does: name -> URL, download, verify, unpack, publish.
 *
 * The cache only ever shows complete datasets. A download goes to a
 * hidden temp file beside its final place, unpacks into a hidden temp
 * folder, and the dataset appears under its name by one rename(2), which
 * is atomic within a file system. A run killed at any point leaves only
 * hidden ".NAME.*" litter, never a half dataset under NAME.
 *
 * Nothing here trusts the server: the transfer has connect and stall
 * timeouts and a size limit, the archive is checked against the size and
 * SHA-256 we expect when we know them, and extract.c refuses entries that
 * would land outside the dataset's folder.
 */
#include "cgrad_internal.h"
#include "data/fetch_internal.h"
#include "util/file.h"
#include "util/lazy.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libcurl and libcrypto, loaded when a download starts (util/lazy.h). */
#define CURL_FNS(X)                                                           \
    X(global_init, curl_global_init, CURLcode, (long))                        \
    X(easy_init, curl_easy_init, CURL *, (void))                              \
    X(easy_setopt, curl_easy_setopt, CURLcode, (CURL *, CURLoption, ...))     \
    X(easy_perform, curl_easy_perform, CURLcode, (CURL *))                    \
    X(easy_cleanup, curl_easy_cleanup, void, (CURL *))                        \
    X(easy_strerror, curl_easy_strerror, const char *, (CURLcode))
CG_LAZY_TABLE(curl_fns, curl, CURL_FNS, "libcurl4", "libcurl.so.4", "libcurl.so");

#define CRYPTO_FNS(X)                                                                        \
    X(md_ctx_new, EVP_MD_CTX_new, EVP_MD_CTX *, (void))                                      \
    X(md_ctx_free, EVP_MD_CTX_free, void, (EVP_MD_CTX *))                                    \
    X(sha256, EVP_sha256, const EVP_MD *, (void))                                            \
    X(digest_init, EVP_DigestInit_ex, int, (EVP_MD_CTX *, const EVP_MD *, ENGINE *))         \
    X(digest_update, EVP_DigestUpdate, int, (EVP_MD_CTX *, const void *, size_t))            \
    X(digest_final, EVP_DigestFinal_ex, int, (EVP_MD_CTX *, unsigned char *, unsigned int *))
CG_LAZY_TABLE(crypto_fns, crypto, CRYPTO_FNS, "libssl3", "libcrypto.so.3", "libcrypto.so.1.1",
              "libcrypto.so");

/* ---- known datasets ---- */

/* Sizes are from fastai's fastai/data/checks.txt (it records MD5, not
 * SHA-256, so only the size is checked for these). */
static const struct {
    const char *name, *url;
    int64_t size;
} known[] = {
    {"mnist_sample", "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz", 3214948},
    {"mnist_tiny", "https://s3.amazonaws.com/fast-ai-sample/mnist_tiny.tgz", 342207},
    {"mnist", "https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz", 15683414},
};
#define N_KNOWN ((int)(sizeof known / sizeof known[0]))

const char *cg_known_dataset_url(const char *name, int64_t *size) {
    for (int i = 0; name && i < N_KNOWN; i++) {
        if (strcmp(name, known[i].name) == 0) {
            if (size) *size = known[i].size;
            return known[i].url;
        }
    }
    return NULL;
}

const char *cg_dataset_url(const char *name) { return cg_known_dataset_url(name, NULL); }

const char *cg_fetch_source_url(const char *url, char *buf, size_t size) {
    const char *mirror = getenv("CGRAD_MIRROR");
    if (!mirror || !*mirror) return url;
    const char *file = strrchr(url, '/');
    size_t n = strlen(mirror);
    bool slash = n > 0 && mirror[n - 1] == '/';
    int w = snprintf(buf, size, "%s%s", mirror, slash ? file + 1 : file);
    return w > 0 && (size_t)w < size ? buf : url;
}

const char *cg_dataset_name(int i) { return i >= 0 && i < N_KNOWN ? known[i].name : NULL; }

/* ---- the cache folder ---- */

static bool set_path(char *buf, size_t size, const char *a, const char *b) {
    int n = snprintf(buf, size, "%s%s", a, b);
    return n > 0 && (size_t)n < size;
}

const char *cg_cache_dir(char *buf, size_t size) {
    const char *home = getenv("CGRAD_HOME");
    if (home && *home) {
        if (set_path(buf, size, home, "")) return buf;
        cg_fail(CG_ERR_ARG, "cache: CGRAD_HOME is longer than %zu bytes", size);
        return NULL;
    }
    /* The XDG spec says a relative XDG_CACHE_HOME is invalid and ignored. */
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') {
        if (set_path(buf, size, xdg, "/cgrad")) return buf;
        cg_fail(CG_ERR_ARG, "cache: XDG_CACHE_HOME is longer than %zu bytes", size);
        return NULL;
    }
    home = getenv("HOME");
    struct passwd pw, *found = NULL;
    char pwbuf[1024];
    if ((!home || !*home) && getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &found) == 0 && found)
        home = found->pw_dir;
    if (!home || !*home) {
        cg_fail(CG_ERR_ARG, "cache: no home folder; set CGRAD_HOME to a folder for downloads");
        return NULL;
    }
    if (set_path(buf, size, home, "/.cache/cgrad")) return buf;
    cg_fail(CG_ERR_ARG, "cache: the home folder path is longer than %zu bytes", size);
    return NULL;
}

/* ---- names ---- */

static bool is_url(const char *s) { return strstr(s, "://") != NULL; }

/* A cache folder name: letters, digits, '.', '_', '-', not starting with
 * '.' (hidden names are our temp files), so it can never climb or nest. */
static bool name_ok(const char *s, size_t n) {
    if (n == 0 || n > 128 || s[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The URL's file name less its archive extension: .../mnist_tiny.tgz?x -> mnist_tiny. */
static cg_status name_from_url(const char *url, char *out, size_t size) {
    static const char *ext[] = {".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz",
                                ".txz",    ".tar", ".zip"};
    const char *path = strstr(url, "://") + 3;
    size_t end = strcspn(path, "?#");
    const char *base = path;
    for (size_t i = 0; i < end; i++)
        if (path[i] == '/') base = path + i + 1;
    size_t n = (size_t)(path + end - base);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strncmp(base + n - e, ext[i], e) == 0) {
            n -= e;
            break;
        }
    }
    if (!name_ok(base, n) || n >= size)
        return cg_fail(CG_ERR_ARG,
                       "fetch: cannot name a cache folder after %s; give a name (letters, digits, "
                       "'.', '_', '-') in the options",
                       url);
    memcpy(out, base, n);
    out[n] = '\0';
    return CG_OK;
}

/* ---- SHA-256 ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool parse_sha256(const char *hex, unsigned char out[32]) {
    if (strlen(hex) != 64) return false;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static void sha256_hex(const unsigned char d[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- the download ---- */

typedef struct download {
    FILE *file;
    int64_t bytes, limit;
    bool over_limit, write_failed;
    EVP_MD_CTX *md; /* hashes the bytes as they arrive: no second read */
    /* progress bar */
    const char *label;
    double last_draw;
    bool drawn;
} download;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user) {
    download *d = user;
    size_t n = size * nmemb;
    /* Stops a server that lies about (or omits) Content-Length; returning
     * short makes curl fail with CURLE_WRITE_ERROR. */
    if (d->bytes + (int64_t)n > d->limit) {
        d->over_limit = true;
        return 0;
    }
    if (fwrite(ptr, 1, n, d->file) != n) {
        d->write_failed = true;
        return 0;
    }
    if (d->md) crypto.digest_update(d->md, ptr, n);
    d->bytes += (int64_t)n;
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw_bar(download *d, int64_t total, int64_t now) {
    enum { W = 30 };
    char bar[W + 1];
    double mib = 1024.0 * 1024.0;
    if (total > 0) {
        int fill = (int)((double)W * (double)now / (double)total);
        if (fill > W) fill = W;
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
        bar[W] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%% %.1f/%.1f MiB", d->label, bar,
                (int)(100.0 * (double)now / (double)total), (double)now / mib, (double)total / mib);
    } else {
        fprintf(stderr, "\r%s %.1f MiB", d->label, (double)now / mib);
    }
    fflush(stderr);
    d->drawn = true;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)ultotal, (void)ulnow;
    download *d = user;
    double t = now_s();
    /* Ten frames a second is smooth enough and keeps a fast local copy
     * from spending its time on terminal writes. */
    if (dlnow > 0 && (t - d->last_draw >= 0.1 || (dltotal > 0 && dlnow == dltotal))) {
        d->last_draw = t;
        draw_bar(d, (int64_t)dltotal, (int64_t)dlnow);
    }
    return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static void init_curl(void) { curl_init_result = curl.global_init(CURL_GLOBAL_DEFAULT); }

/* Downloads url into file; fills sha (when md) and reports every failure
 * with the URL and curl's own reason. */
static cg_status download_to(const char *url, FILE *file, const char *label,
                             const cg_fetch_options *o, int64_t limit, unsigned char sha[32]) {
    if (cg_lazy_load(&curl_lib, "fetch") != CG_OK || cg_lazy_load(&crypto_lib, "fetch") != CG_OK)
        return cg_last_status();
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK)
        return cg_fail(CG_ERR_NET, "fetch: cannot start libcurl: %s",
                       curl.easy_strerror(curl_init_result));
    download d = {.file = file, .limit = limit, .label = label, .last_draw = -1.0};
    d.md = crypto.md_ctx_new();
    CURL *c = curl.easy_init();
    if (!d.md || !c || crypto.digest_init(d.md, crypto.sha256(), NULL) != 1) {
        crypto.md_ctx_free(d.md);
        if (c) curl.easy_cleanup(c);
        return cg_fail(CG_ERR_NOMEM, "fetch: out of memory starting a download");
    }
    char err[CURL_ERROR_SIZE] = "";
    long connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
    long stall_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
    bool bar = !o->quiet && isatty(STDERR_FILENO);

    curl.easy_setopt(c, CURLOPT_URL, url);
    curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl.easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl.easy_setopt(c, CURLOPT_FAILONERROR, 1L); /* a 404 page is not an archive */
    curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_s);
    /* Under 1000 bytes/s for stall_s seconds counts as hung. */
    curl.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1000L);
    curl.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limit);
    curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* timeouts without SIGALRM: thread-safe */
    curl.easy_setopt(c, CURLOPT_USERAGENT, "cgrad/" CG_VERSION);
    curl.easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl.easy_setopt(c, CURLOPT_WRITEDATA, &d);
    if (bar) {
        curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl.easy_setopt(c, CURLOPT_XFERINFODATA, &d);
        curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl.easy_perform(c);
    if (d.drawn) fputc('\n', stderr);
    curl.easy_cleanup(c);
    unsigned int len = 0;
    bool hashed = crypto.digest_final(d.md, sha, &len) == 1 && len == 32;
    crypto.md_ctx_free(d.md);
    if (fflush(file) != 0) d.write_failed = true;

    if (d.over_limit || rc == CURLE_FILESIZE_EXCEEDED)
        return cg_fail(CG_ERR_NET,
                       "fetch: cannot download %s: it is larger than the %lld-byte limit", url,
                       (long long)limit);
    if (d.write_failed)
        return cg_fail(CG_ERR_IO, "fetch: cannot download %s: writing to the cache failed: %s", url,
                       strerror(errno));
    if (rc != CURLE_OK)
        return cg_fail(CG_ERR_NET, "fetch: cannot download %s: %s (curl: %s)", url,
                       err[0] ? err : curl.easy_strerror(rc), curl.easy_strerror(rc));
    if (!hashed) return cg_fail(CG_ERR_NOMEM, "fetch: SHA-256 of %s failed", url);
    if (o->expected_size > 0 && d.bytes != o->expected_size)
        return cg_fail(CG_ERR_FORMAT,
                       "fetch: %s: got %lld bytes, expected %lld (a truncated or changed download)",
                       url, (long long)d.bytes, (long long)o->expected_size);
    return CG_OK;
}

/* ---- publishing ---- */

/* CACHE/.NAME.KIND-XXXXXX: hidden (never taken for a dataset) and named
 * after the dataset, so litter from a killed run says what it was. */
static bool temp_name(char *buf, size_t size, const char *cache, const char *name,
                      const char *kind) {
    int n = snprintf(buf, size, "%s/.%s.%s-XXXXXX", cache, name, kind);
    return n > 0 && (size_t)n < size;
}

/* The folder the dataset lives in inside the unpacked tree: fastai's
 * archives hold one top folder (mnist_sample/...), which becomes the
 * dataset root; an archive of loose files is its own root. */
static cg_status dataset_root(const char *tmp, char *root, size_t size) {
    DIR *dir = opendir(tmp);
    if (!dir) return cg_fail(CG_ERR_IO, "fetch: cannot read %s: %s", tmp, strerror(errno));
    char only[NAME_MAX + 1] = "";
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n++ == 0) snprintf(only, sizeof only, "%s", de->d_name);
    }
    closedir(dir);
    struct stat st;
    if (n == 1 && snprintf(root, size, "%s/%s", tmp, only) < (int)size && lstat(root, &st) == 0 &&
        S_ISDIR(st.st_mode))
        return CG_OK;
    snprintf(root, size, "%s", tmp);
    return CG_OK;
}

/* Moves the unpacked tree to `final` with one rename. With `force`, an
 * older copy is first renamed aside (so `final` is never missing a part)
 * and removed after. If another process published the same dataset
 * first, its copy wins and ours is dropped. */
static cg_status publish(const char *tmp, const char *final, const char *cache, const char *name,
                         bool force) {
    char root[PATH_MAX], old[PATH_MAX] = "";
    cg_status s = dataset_root(tmp, root, sizeof root);
    if (s != CG_OK) return s;
    struct stat st;
    if (force && lstat(final, &st) == 0) {
        if (!temp_name(old, sizeof old, cache, name, "old") || !mkdtemp(old) || rmdir(old) != 0 ||
            rename(final, old) != 0)
            return cg_fail(CG_ERR_IO, "fetch: cannot move the old %s aside: %s", final,
                           strerror(errno));
    }
    if (rename(root, final) != 0) {
        int e = errno;
        if ((e == EEXIST || e == ENOTEMPTY) && stat(final, &st) == 0 && S_ISDIR(st.st_mode))
            return CG_OK; /* someone else's finished copy; the caller drops ours */
        if (old[0]) rename(old, final); /* put the old copy back */
        return cg_fail(CG_ERR_IO, "fetch: cannot move the dataset to %s: %s", final, strerror(e));
    }
    if (old[0]) cg_rmtree(old);
    return CG_OK;
}

/* A killed run leaves its .NAME.download-, .extract- or .old- entry
 * behind. A live run keeps writing to its own, so one untouched for an
 * hour belongs to a dead run and is removed before NAME is fetched again. */
#define CG_LITTER_AGE_S 3600

static void sweep_litter(const char *cache, const char *name) {
    static const char *kinds[] = {"download-", "extract-", "old-"};
    char prefix[200], p[PATH_MAX];
    int pn = snprintf(prefix, sizeof prefix, ".%s.", name);
    DIR *dir = opendir(cache);
    if (!dir || pn <= 0 || (size_t)pn >= sizeof prefix) {
        if (dir) closedir(dir);
        return;
    }
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strncmp(de->d_name, prefix, (size_t)pn) != 0) continue;
        const char *rest = de->d_name + pn;
        bool ours = false;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            ours |= strncmp(rest, kinds[i], strlen(kinds[i])) == 0;
        struct stat st;
        int n = snprintf(p, sizeof p, "%s/%s", cache, de->d_name);
        if (!ours || n <= 0 || (size_t)n >= sizeof p || lstat(p, &st) != 0) continue;
        if (now - st.st_mtime >= CG_LITTER_AGE_S) cg_rmtree(p);
    }
    closedir(dir);
}

/* ---- the whole fetch ---- */

/* Everything after naming: download to a temp file, verify, unpack to a
 * temp folder, publish; all temp files removed whatever happens. */
static cg_status fetch_into(const char *url, const char *cache, const char *name, const char *final,
                            const cg_fetch_options *o) {
    unsigned char want[32], got[32];
    if (o->sha256 && !parse_sha256(o->sha256, want))
        return cg_fail(CG_ERR_ARG, "fetch: expected SHA-256 '%s' is not 64 hex digits", o->sha256);
    int64_t limit = o->max_bytes > 0 ? o->max_bytes : CG_FETCH_MAX_BYTES;

    char file[PATH_MAX], tmp[PATH_MAX] = "";
    if (!temp_name(file, sizeof file, cache, name, "download"))
        return cg_fail(CG_ERR_ARG, "fetch: cache path too long: %s", cache);
    int fd = mkstemp(file);
    if (fd < 0)
        return cg_fail(CG_ERR_IO, "fetch: cannot create a file in %s: %s", cache, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(file);
        return cg_fail(CG_ERR_IO, "fetch: cannot write %s: %s", file, strerror(errno));
    }
    cg_status s = download_to(url, f, name, o, limit, got);
    if (fclose(f) != 0 && s == CG_OK)
        s = cg_fail(CG_ERR_IO, "fetch: cannot write %s: %s", file, strerror(errno));
    if (s == CG_OK && o->sha256 && memcmp(want, got, 32) != 0) {
        char hex[65];
        sha256_hex(got, hex);
        s = cg_fail(CG_ERR_FORMAT,
                    "fetch: %s: SHA-256 is %s, expected %s (a corrupt or changed download)", url,
                    hex, o->sha256);
    }
    if (s == CG_OK) {
        if (!temp_name(tmp, sizeof tmp, cache, name, "extract") || !mkdtemp(tmp)) {
            s = cg_fail(CG_ERR_IO, "fetch: cannot create a folder in %s: %s", cache,
                        strerror(errno));
            tmp[0] = '\0';
        }
    }
    if (s == CG_OK) s = cg_archive_extract(file, tmp, url, &(cg_extract_opts){.own_checks = true});
    unlink(file); /* the archive is not kept: the unpacked tree is the cache */
    if (s == CG_OK) s = publish(tmp, final, cache, name, o->force);
    if (tmp[0]) cg_rmtree(tmp);
    return s;
}

cg_status cg_fetch_plain(const char *name_or_url, char *out_dir, size_t out_size,
                         const cg_fetch_options *opt) {
    cg_fetch_options o = opt ? *opt : (cg_fetch_options){0};
    if (!name_or_url || !*name_or_url || !out_dir || out_size == 0)
        return cg_fail(CG_ERR_ARG, "fetch: needs a dataset name or URL and an output buffer");

    /* Resolve what to download and the folder name it gets. */
    char name[160], cache[PATH_MAX], final[PATH_MAX], mirrored[2048];
    const char *url = name_or_url;
    int64_t known_size = 0;
    if (is_url(name_or_url)) {
        if (!o.name && name_from_url(url, name, sizeof name) != CG_OK) return cg_last_status();
    } else {
        url = cg_known_dataset_url(name_or_url, &known_size);
        if (url) url = cg_fetch_source_url(url, mirrored, sizeof mirrored);
        if (!url) {
            char list[256] = "";
            for (int i = 0; i < N_KNOWN; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         known[i].name);
            return cg_fail(CG_ERR_ARG, "fetch: unknown dataset '%s' (known: %s; or give a URL)",
                           name_or_url, list);
        }
        snprintf(name, sizeof name, "%s", name_or_url);
        if (o.expected_size <= 0) o.expected_size = known_size;
    }
    if (o.name) {
        if (!name_ok(o.name, strlen(o.name)))
            return cg_fail(CG_ERR_ARG,
                           "fetch: '%s' cannot be a cache folder name (letters, digits, '.', '_', "
                           "'-'; not starting with '.')",
                           o.name);
        snprintf(name, sizeof name, "%s", o.name);
    }
    if (o.cache_dir && *o.cache_dir) {
        if (!set_path(cache, sizeof cache, o.cache_dir, ""))
            return cg_fail(CG_ERR_ARG, "fetch: cache path too long");
    } else if (!cg_cache_dir(cache, sizeof cache)) {
        return cg_last_status();
    }
    if (snprintf(final, sizeof final, "%s/%s", cache, name) >= (int)sizeof final)
        return cg_fail(CG_ERR_ARG, "fetch: cache path too long: %s", cache);
    if (strlen(final) >= out_size)
        return cg_fail(CG_ERR_ARG, "fetch: the path %s does not fit the %zu-byte buffer", final,
                       out_size);

    /* A complete copy is there (publish makes it appear whole or not at all). */
    struct stat st;
    if (!o.force && stat(final, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return cg_fail(CG_ERR_IO, "fetch: %s exists but is not a folder", final);
        snprintf(out_dir, out_size, "%s", final);
        return CG_OK;
    }
    cg_status s = cg_make_dirs("fetch", cache);
    if (s == CG_OK) {
        sweep_litter(cache, name);
        s = fetch_into(url, cache, name, final, &o);
    }
    if (s != CG_OK) return s;
    snprintf(out_dir, out_size, "%s", final);
    return CG_OK;
}

/* cg_last_error() holds 511 characters; a message cut there would lose
 * the hint, the part a user acts on. */
#define CG_ERROR_MAX 511

cg_status cg_fail_with_hint(cg_status status, const char *prefix, const char *reason,
                            const char *name) {
    char hint[256];
    int nh = snprintf(hint, sizeof hint, CG_DATA_HINT_FMT, name);
    int room = CG_ERROR_MAX - (int)strlen(prefix) - nh - 2;
    if (room < 0) room = 0;
    return cg_fail(status, "%s%.*s. %s", prefix, room, reason, hint);
}

cg_status cg_fetch(const char *name_or_url, char *out_dir, size_t out_size,
                   const cg_fetch_options *opt) {
    cg_status s = cg_fetch_plain(name_or_url, out_dir, out_size, opt);
    if (s == CG_OK || s == CG_ERR_ARG) return s;
    /* The dataset is not usable; say how to use a copy on disk instead.
     * The message is copied first: cg_fail rewrites the buffer it lives in. */
    char msg[1024], name[160] = "NAME";
    snprintf(msg, sizeof msg, "%s", cg_last_error());
    if (opt && opt->name) snprintf(name, sizeof name, "%s", opt->name);
    else if (!is_url(name_or_url)) snprintf(name, sizeof name, "%s", name_or_url);
    else name_from_url(name_or_url, name, sizeof name);
    return cg_fail_with_hint(s, "", msg, name);
}
