/*
 * test_fetch.c - downloading, checking and unpacking datasets, and finding
 * them on disk, against an HTTP server inside this test (libmicrohttpd on
 * 127.0.0.1, an ephemeral port). Nothing here reaches past loopback.
 *
 * Every archive is built here with libarchive's writer. Each bad case
 * checks three things: the status, a message naming the URL and the
 * reason, and that the cache shows nothing half-published (no dataset
 * folder, no leftover temp files).
 */
#include "testutil.h"

#include "data/fetch_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* snprintf that fails the test rather than cut a path short. */
static void pathf(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void pathf(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) fail_msg("path too long for its buffer: %s", buf);
}

/* ------------------------------------------------------------------ */
/* Archives                                                            */
/* ------------------------------------------------------------------ */

typedef struct ent {
    const char *path;
    char type; /* 'f' file, 'd' folder, 'l' symlink, 'h' hard link */
    const char *data; /* file contents or link target */
} ent;

typedef struct blob {
    unsigned char *data;
    size_t len;
} blob;

static blob build_archive(const ent *e, int n, bool zip) {
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (zip) {
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    }
    size_t cap = 1 << 20, used = 0;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *en = archive_entry_new();
        archive_entry_set_pathname(en, e[i].path);
        archive_entry_set_mtime(en, 1600000000, 0);
        size_t len = 0;
        switch (e[i].type) {
        case 'd':
            archive_entry_set_filetype(en, AE_IFDIR);
            archive_entry_set_perm(en, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(en, AE_IFLNK);
            archive_entry_set_perm(en, 0777);
            archive_entry_set_symlink(en, e[i].data);
            break;
        case 'h':
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0644);
            archive_entry_set_hardlink(en, e[i].data);
            break;
        default:
            len = strlen(e[i].data);
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0644);
            archive_entry_set_size(en, (la_int64_t)len);
        }
        assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
        if (len) assert_int_equal(archive_write_data(a, e[i].data, len), (la_ssize_t)len);
        archive_entry_free(en);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return (blob){buf, used};
}

static void sha256_hex(const blob *b, char out[65]) {
    unsigned char d[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(b->data, b->len, d, &n, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++) pathf(out + 2 * i, 3, "%02x", d[i]);
}

/* ------------------------------------------------------------------ */
/* The server                                                          */
/* ------------------------------------------------------------------ */

typedef enum mode {
    SERVE_FULL,     /* the blob, with Content-Length                         */
    SERVE_CUT,      /* announces the whole blob, closes after half of it     */
    SERVE_ENDLESS,  /* no Content-Length, 64 MiB of zeros (a lying server)   */
    SERVE_HUGE_LEN, /* Content-Length: 100 MiB                               */
    SERVE_STALL     /* headers, then nothing                                 */
} mode;

typedef struct route {
    const char *path;
    mode how;
    blob body;
    int hits;
} route;

enum {
    R_GOOD, R_ZIP, R_TRUNC, R_CORRUPT, R_DOTDOT, R_ABS, R_SYMOUT, R_SYMABS, R_THROUGH, R_HARD,
    R_CUT, R_ENDLESS, R_HUGE, R_STALL, R_MIRROR, N_ROUTES
};

static route routes[N_ROUTES];
static pthread_mutex_t hits_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stopping;
static struct MHD_Daemon *daemon_;
static int port;
static char root[256];    /* everything this run writes (short: paths derive from it) */
static char outside[300]; /* where escaping entries aim */

static ssize_t read_cut(void *cls, uint64_t pos, char *buf, size_t max) {
    const route *r = cls;
    size_t half = r->body.len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR; /* drop the connection */
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, r->body.data + pos, n);
    return (ssize_t)n;
}

static ssize_t read_zeros(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls;
    if (pos >= (uint64_t)64 << 20) return MHD_CONTENT_READER_END_OF_STREAM;
    if (max > 65536) max = 65536;
    memset(buf, 0, max);
    return (ssize_t)max;
}

/* Thread-per-connection mode, so blocking here stalls only this client. */
static ssize_t read_stall(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls, (void)pos, (void)buf, (void)max;
    for (int i = 0; i < 200 && !stopping; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req) {
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)req;
    route *r = NULL;
    for (int i = 0; i < N_ROUTES; i++)
        if (routes[i].path && strcmp(url, routes[i].path) == 0) r = &routes[i];
    struct MHD_Response *resp;
    unsigned int code = MHD_HTTP_OK;
    if (!r) {
        static const char nf[] = "not found";
        resp = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    } else {
        pthread_mutex_lock(&hits_lock);
        r->hits++;
        pthread_mutex_unlock(&hits_lock);
        switch (r->how) {
        case SERVE_CUT:
            resp = MHD_create_response_from_callback(r->body.len, 4096, read_cut, r, NULL);
            break;
        case SERVE_ENDLESS:
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, read_zeros, r, NULL);
            break;
        case SERVE_HUGE_LEN:
            resp =
                MHD_create_response_from_callback((uint64_t)100 << 20, 65536, read_zeros, r, NULL);
            break;
        case SERVE_STALL:
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stall, r, NULL);
            break;
        default:
            resp =
                MHD_create_response_from_buffer(r->body.len, r->body.data, MHD_RESPMEM_PERSISTENT);
        }
    }
    enum MHD_Result ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int hits(int i) {
    pthread_mutex_lock(&hits_lock);
    int h = routes[i].hits;
    pthread_mutex_unlock(&hits_lock);
    return h;
}

static const char *url_of(int i, char *buf, size_t size) {
    pathf(buf, size, "http://127.0.0.1:%d%s", port, routes[i].path);
    return buf;
}

static void set_route(int i, const char *path, mode how, blob body) {
    routes[i] = (route){path, how, body, 0};
}

static int group_setup(void **state) {
    (void)state;
    /* Loopback only, whatever proxy this machine is told to use. */
    const char *proxies[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++) unsetenv(proxies[i]);
    setenv("no_proxy", "*", 1);
    unsetenv("CGRAD_MIRROR");

    pathf(root, sizeof root, "/tmp/cgrad-fetch-XXXXXX");
    assert_non_null(mkdtemp(root));
    pathf(outside, sizeof outside, "%s/outside", root);
    assert_int_equal(mkdir(outside, 0755), 0);

    const ent good[] = {
        {"mnist_fake/", 'd', NULL},
        {"mnist_fake/labels.csv", 'f', "name,label\ntrain/3/0.txt,0\ntrain/7/1.txt,1\n"},
        {"mnist_fake/train/3/0.txt", 'f', "three"},
        {"mnist_fake/train/7/1.txt", 'f', "seven"},
        {"mnist_fake/first", 'l', "train/3/0.txt"},   /* a link that stays inside */
        {"mnist_fake/train/7/up", 'l', "../3/0.txt"}, /* climbs, but not out     */
        {"mnist_fake/copy", 'h', "mnist_fake/train/7/1.txt"},
    };
    blob g = build_archive(good, sizeof good / sizeof good[0], false);
    set_route(R_GOOD, "/good.tgz", SERVE_FULL, g);

    const ent flat[] = {{"a.txt", 'f', "alpha"}, {"sub/b.txt", 'f', "beta"}};
    set_route(R_ZIP, "/flat.zip", SERVE_FULL, build_archive(flat, 2, true));

    /* The first half of the good archive, served as if that were all of it. */
    blob t = {malloc(g.len / 2), g.len / 2};
    memcpy(t.data, g.data, t.len);
    set_route(R_TRUNC, "/trunc.tgz", SERVE_FULL, t);

    blob bad = {malloc(g.len), g.len};
    memcpy(bad.data, g.data, g.len);
    bad.data[g.len / 2] ^= 0x55;
    set_route(R_CORRUPT, "/corrupt.tgz", SERVE_FULL, bad);

    const ent dotdot[] = {{"evil/ok.txt", 'f', "fine"}, {"evil/../../escape.txt", 'f', "pwned"}};
    set_route(R_DOTDOT, "/dotdot.tgz", SERVE_FULL, build_archive(dotdot, 2, false));

    static char abs_name[PATH_MAX + 16];
    pathf(abs_name, sizeof abs_name, "%s/abs.txt", outside);
    const ent abs[] = {{"evil/ok.txt", 'f', "fine"}, {abs_name, 'f', "pwned"}};
    set_route(R_ABS, "/abs.tgz", SERVE_FULL, build_archive(abs, 2, false));

    const ent symout[] = {{"evil/", 'd', NULL},
                          {"evil/link", 'l', "../../../../../../../../../../../.."},
                          {"evil/link/pwned.txt", 'f', "pwned"}};
    set_route(R_SYMOUT, "/symout.tgz", SERVE_FULL, build_archive(symout, 3, false));

    const ent symabs[] = {{"evil/", 'd', NULL}, {"evil/link", 'l', outside},
                          {"evil/link/pwned.txt", 'f', "pwned"}};
    set_route(R_SYMABS, "/symabs.tgz", SERVE_FULL, build_archive(symabs, 3, false));

    /* "s -> ." is harmless, but "t -> s/.." is the parent of the root. */
    const ent through[] = {{"evil/", 'd', NULL}, {"evil/s", 'l', "."}, {"evil/t", 'l', "s/../.."}};
    set_route(R_THROUGH, "/through.tgz", SERVE_FULL, build_archive(through, 3, false));

    const ent hard[] = {{"evil/", 'd', NULL}, {"evil/h", 'h', "../outside/secret.txt"}};
    set_route(R_HARD, "/hard.tgz", SERVE_FULL, build_archive(hard, 2, false));

    blob c = {malloc(g.len), g.len};
    memcpy(c.data, g.data, g.len);
    set_route(R_CUT, "/cut.tgz", SERVE_CUT, c);
    set_route(R_ENDLESS, "/endless.tgz", SERVE_ENDLESS, (blob){0});
    set_route(R_HUGE, "/huge.tgz", SERVE_HUGE_LEN, (blob){0});
    set_route(R_STALL, "/stall.tgz", SERVE_STALL, (blob){0});
    blob m = {malloc(g.len), g.len};
    memcpy(m.data, g.data, g.len);
    set_route(R_MIRROR, "/mirror/mnist_tiny.tgz", SERVE_FULL, m);

    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    /* No MHD_USE_ERROR_LOG: the cut and refused transfers are on purpose. */
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                               0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(daemon_);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    port = info->port;
    assert_true(port > 0);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    stopping = 1;
    if (daemon_) MHD_stop_daemon(daemon_);
    for (int i = 0; i < N_ROUTES; i++) free(routes[i].body.data);
    cg_rmtree(root);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A fresh cache folder for one test, also made the default (CGRAD_HOME). */
static const char *new_cache(char *buf, size_t size) {
    char dir[PATH_MAX];
    pathf(dir, sizeof dir, "%s/t-XXXXXX", root);
    assert_non_null(mkdtemp(dir));
    pathf(buf, size, "%s/cache", dir);
    setenv("CGRAD_HOME", buf, 1);
    return buf;
}

static bool path_exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

static void assert_file(const char *dir, const char *rel, const char *want) {
    char p[PATH_MAX + 64], got[256] = "";
    pathf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f) fail_msg("%s is missing", p);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, want);
}

/* The cache holds exactly the listed names (NULL-terminated), so a failed
 * run left neither a dataset folder nor hidden temp files behind. */
static void assert_cache_holds(const char *cache, const char *const *names) {
    DIR *d = opendir(cache);
    if (!d) {
        if (names[0]) fail_msg("cache %s is missing", cache);
        return; /* never created: certainly nothing half-published */
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        bool ok = false;
        for (int i = 0; names[i]; i++) ok |= strcmp(de->d_name, names[i]) == 0;
        if (!ok) {
            closedir(d);
            fail_msg("cache %s holds unexpected '%s'", cache, de->d_name);
        }
    }
    closedir(d);
}

static void assert_cache_empty(const char *cache) {
    const char *none[] = {NULL};
    assert_cache_holds(cache, none);
}

static void assert_msg_has(const char *needle) {
    const char *msg = cg_last_error();
    if (!strstr(msg, needle)) fail_msg("message lacks \"%s\": %s", needle, msg);
}

/* Fetches route i into a fresh cache, expecting failure with `status`;
 * checks the message names the URL and `reason`, and that nothing is left. */
static void expect_refused(int i, cg_status status, const char *reason, cg_fetch_options o) {
    char cache[PATH_MAX], url[256], out[PATH_MAX];
    new_cache(cache, sizeof cache);
    o.cache_dir = cache;
    o.quiet = true;
    cg_clear_error();
    assert_int_equal(cg_fetch(url_of(i, url, sizeof url), out, sizeof out, &o), status);
    printf("  message: %s\n", cg_last_error());
    assert_msg_has(url);
    assert_msg_has(reason);
    assert_msg_has("--data PATH");
    assert_msg_has("CGRAD_DATA=DIR");
    assert_cache_empty(cache);
}

/* ------------------------------------------------------------------ */
/* Good downloads and the cache                                        */
/* ------------------------------------------------------------------ */

static void check_good_tree(const char *dir) {
    assert_file(dir, "labels.csv", "name,label\ntrain/3/0.txt,0\ntrain/7/1.txt,1\n");
    assert_file(dir, "train/3/0.txt", "three");
    assert_file(dir, "train/7/1.txt", "seven");
    assert_file(dir, "first", "three");
    assert_file(dir, "train/7/up", "three");
    assert_file(dir, "copy", "seven");
}

static void test_fetch_good_tgz(void **state) {
    (void)state;
    char cache[PATH_MAX], url[256], out[PATH_MAX], want[PATH_MAX + 16], sha[65];
    new_cache(cache, sizeof cache);
    sha256_hex(&routes[R_GOOD].body, sha);
    cg_fetch_options o = {.cache_dir = cache, .quiet = true, .sha256 = sha,
                          .expected_size = (int64_t)routes[R_GOOD].body.len};
    assert_int_equal(cg_fetch(url_of(R_GOOD, url, sizeof url), out, sizeof out, &o), CG_OK);
    /* The archive's top folder became the dataset root, named after the URL. */
    pathf(want, sizeof want, "%s/good", cache);
    assert_string_equal(out, want);
    check_good_tree(out);
    const char *names[] = {"good", NULL};
    assert_cache_holds(cache, names); /* no archive or temp folder left */
    /* Upper-case hex is the same digest. */
    for (char *p = sha; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    o.force = true;
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_OK);
}

static void test_fetch_cache_reused(void **state) {
    (void)state;
    char cache[PATH_MAX], url[256], out[PATH_MAX], out2[PATH_MAX];
    new_cache(cache, sizeof cache);
    url_of(R_GOOD, url, sizeof url);
    int before = hits(R_GOOD);
    /* NULL options: the cache is CGRAD_HOME, set by new_cache. */
    assert_int_equal(cg_fetch(url, out, sizeof out, NULL), CG_OK);
    assert_int_equal(hits(R_GOOD), before + 1);
    assert_int_equal(cg_fetch(url, out2, sizeof out2, NULL), CG_OK);
    assert_int_equal(hits(R_GOOD), before + 1); /* served from the cache */
    assert_string_equal(out, out2);

    /* force: downloads again and replaces the copy in one rename. */
    char marker[PATH_MAX + 16];
    pathf(marker, sizeof marker, "%s/marker", out);
    FILE *f = fopen(marker, "w");
    assert_non_null(f);
    fclose(f);
    cg_fetch_options o = {.force = true, .quiet = true};
    assert_int_equal(cg_fetch(url, out2, sizeof out2, &o), CG_OK);
    assert_int_equal(hits(R_GOOD), before + 2);
    assert_false(path_exists(marker));
    check_good_tree(out2);
    const char *names[] = {"good", NULL};
    assert_cache_holds(cache, names);

    /* A custom name; a name that could climb out is refused. */
    o = (cg_fetch_options){.name = "other", .quiet = true};
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_OK);
    check_good_tree(out);
    o.name = "../x";
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_ERR_ARG);
    o.name = ".hidden";
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_ERR_ARG);
    /* A buffer too small for the path is an error, not a cut path. */
    char tiny[8];
    assert_int_equal(cg_fetch(url, tiny, sizeof tiny, NULL), CG_ERR_ARG);
}

static void test_fetch_zip_without_top_folder(void **state) {
    (void)state;
    char cache[PATH_MAX], url[256], out[PATH_MAX];
    new_cache(cache, sizeof cache);
    cg_fetch_options o = {.cache_dir = cache, .quiet = true};
    assert_int_equal(cg_fetch(url_of(R_ZIP, url, sizeof url), out, sizeof out, &o), CG_OK);
    assert_file(out, "a.txt", "alpha");
    assert_file(out, "sub/b.txt", "beta");
    const char *names[] = {"flat", NULL};
    assert_cache_holds(cache, names);
}

/* A run killed mid-download leaves no dataset folder, only hidden litter;
 * the next run succeeds, and litter over an hour old is swept. */
static void test_fetch_killed_run(void **state) {
    (void)state;
    char cache[PATH_MAX], url[256], good[256], out[PATH_MAX], p[PATH_MAX + 64];
    new_cache(cache, sizeof cache);
    url_of(R_STALL, url, sizeof url);
    int before = hits(R_STALL);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cg_fetch_options o = {.cache_dir = cache, .name = "ds", .quiet = true};
        _exit(cg_fetch(url, out, sizeof out, &o) == CG_OK ? 0 : 1);
    }
    /* Kill it once the server has its request, so the download is open. */
    for (int i = 0; i < 500 && hits(R_STALL) == before; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(hits(R_STALL), before + 1);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    pathf(p, sizeof p, "%s/ds", cache);
    assert_false(path_exists(p));
    DIR *d = opendir(cache);
    assert_non_null(d);
    int litter = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, ".ds.download-", 13) == 0) litter++;
    closedir(d);
    assert_int_equal(litter, 1);

    /* Litter from an hour ago (and another dataset's, which stays). */
    const char *old_names[] = {".ds.download-AAAAAA", ".ds.extract-BBBBBB",
                               ".other.download-CCCCCC"};
    for (int i = 0; i < 3; i++) {
        pathf(p, sizeof p, "%s/%s", cache, old_names[i]);
        if (i == 1) {
            assert_int_equal(mkdir(p, 0755), 0);
            pathf(p, sizeof p, "%s/%s/half", cache, old_names[i]);
            FILE *f = fopen(p, "w");
            assert_non_null(f);
            fclose(f);
            pathf(p, sizeof p, "%s/%s", cache, old_names[i]);
        } else {
            FILE *f = fopen(p, "w");
            assert_non_null(f);
            fclose(f);
        }
        struct timespec t[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
        assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
    }
    cg_fetch_options o = {.cache_dir = cache, .name = "ds", .quiet = true};
    assert_int_equal(cg_fetch(url_of(R_GOOD, good, sizeof good), out, sizeof out, &o), CG_OK);
    check_good_tree(out);
    pathf(p, sizeof p, "%s/%s", cache, old_names[0]);
    assert_false(path_exists(p));
    pathf(p, sizeof p, "%s/%s", cache, old_names[1]);
    assert_false(path_exists(p));
    pathf(p, sizeof p, "%s/%s", cache, old_names[2]);
    assert_true(path_exists(p));
}

/* ------------------------------------------------------------------ */
/* Bad downloads                                                       */
/* ------------------------------------------------------------------ */

static void test_fetch_truncated(void **state) {
    (void)state;
    /* Size unknown: the unpacker finds the archive cut short. */
    expect_refused(R_TRUNC, CG_ERR_FORMAT, "truncated", (cg_fetch_options){0});
    /* Size known: caught before unpacking. */
    char want[64];
    pathf(want, sizeof want, "expected %zu", routes[R_GOOD].body.len);
    expect_refused(R_TRUNC, CG_ERR_FORMAT, want,
                   (cg_fetch_options){.expected_size = (int64_t)routes[R_GOOD].body.len});
}

static void test_fetch_wrong_checksum(void **state) {
    (void)state;
    char sha[65];
    sha256_hex(&routes[R_GOOD].body, sha); /* what the file should be */
    expect_refused(R_CORRUPT, CG_ERR_FORMAT, "SHA-256", (cg_fetch_options){.sha256 = sha});
    assert_msg_has(sha);
    /* Not a SHA-256 at all: a usage error before any download. */
    char cache[PATH_MAX], url[256], out[PATH_MAX];
    new_cache(cache, sizeof cache);
    int before = hits(R_GOOD);
    cg_fetch_options o = {.cache_dir = cache, .sha256 = "abc123", .quiet = true};
    assert_int_equal(cg_fetch(url_of(R_GOOD, url, sizeof url), out, sizeof out, &o), CG_ERR_ARG);
    assert_msg_has("64 hex digits");
    assert_int_equal(hits(R_GOOD), before);
}

static void test_fetch_dotdot_entry(void **state) {
    (void)state;
    expect_refused(R_DOTDOT, CG_ERR_FORMAT, "'..'", (cg_fetch_options){0});
    assert_msg_has("evil/../../escape.txt");
    char p[PATH_MAX + 32];
    pathf(p, sizeof p, "%s/escape.txt", root);
    assert_false(path_exists(p));
}

static void test_fetch_absolute_entry(void **state) {
    (void)state;
    expect_refused(R_ABS, CG_ERR_FORMAT, "absolute path", (cg_fetch_options){0});
    char p[PATH_MAX + 32];
    pathf(p, sizeof p, "%s/abs.txt", outside);
    assert_false(path_exists(p));
}

static void test_fetch_symlink_out(void **state) {
    (void)state;
    char p[PATH_MAX + 32];
    pathf(p, sizeof p, "%s/pwned.txt", outside);
    expect_refused(R_SYMOUT, CG_ERR_FORMAT, "points outside", (cg_fetch_options){0});
    expect_refused(R_SYMABS, CG_ERR_FORMAT, "symlink to an absolute path", (cg_fetch_options){0});
    expect_refused(R_THROUGH, CG_ERR_FORMAT, "'..' after a folder name", (cg_fetch_options){0});
    assert_false(path_exists(p));
}

static void test_fetch_hardlink_out(void **state) {
    (void)state;
    expect_refused(R_HARD, CG_ERR_FORMAT, "hard link to '../outside/secret.txt'",
                   (cg_fetch_options){0});
}

static void test_fetch_404(void **state) {
    (void)state;
    char cache[PATH_MAX], url[256], out[PATH_MAX];
    new_cache(cache, sizeof cache);
    pathf(url, sizeof url, "http://127.0.0.1:%d/missing.tgz", port);
    cg_fetch_options o = {.cache_dir = cache, .quiet = true};
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_ERR_NET);
    printf("  message: %s\n", cg_last_error());
    assert_msg_has(url);
    assert_msg_has("404");
    assert_msg_has("CGRAD_DATA=DIR (DIR holding missing/)");
    assert_cache_empty(cache);
}

static void test_fetch_interrupted(void **state) {
    (void)state;
    /* curl: "transfer closed with N bytes remaining to read". */
    expect_refused(R_CUT, CG_ERR_NET, "curl: ", (cg_fetch_options){0});
    assert_msg_has("remaining");
}

static void test_fetch_size_limit(void **state) {
    (void)state;
    /* No Content-Length: stopped by counting what arrives. */
    expect_refused(R_ENDLESS, CG_ERR_NET, "larger than the 1048576-byte limit",
                   (cg_fetch_options){.max_bytes = 1 << 20});
    /* A Content-Length over the limit: refused before the body. */
    expect_refused(R_HUGE, CG_ERR_NET, "larger than the 1048576-byte limit",
                   (cg_fetch_options){.max_bytes = 1 << 20});
}

static void test_fetch_stall_times_out(void **state) {
    (void)state;
    expect_refused(R_STALL, CG_ERR_NET, "curl: Timeout was reached",
                   (cg_fetch_options){.stall_timeout_s = 1});
}

static void test_fetch_offline(void **state) {
    (void)state;
    /* A loopback port nobody listens on: connection refused at once. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    char cache[PATH_MAX], url[256], out[PATH_MAX];
    new_cache(cache, sizeof cache);
    pathf(url, sizeof url, "http://127.0.0.1:%d/mnist_sample.tgz", ntohs(sa.sin_port));
    cg_fetch_options o = {.cache_dir = cache, .quiet = true, .connect_timeout_s = 5};
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_ERR_NET);
    printf("  message: %s\n", cg_last_error());
    assert_msg_has(url);
    assert_msg_has("curl: Couldn't connect to server");
    assert_msg_has("--data PATH");
    assert_msg_has("CGRAD_DATA=DIR (DIR holding mnist_sample/)");
    assert_cache_empty(cache);
}

static void test_fetch_names(void **state) {
    (void)state;
    assert_string_equal(cg_dataset_url("mnist_sample"),
                        "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz");
    assert_string_equal(cg_dataset_url("mnist_tiny"),
                        "https://s3.amazonaws.com/fast-ai-sample/mnist_tiny.tgz");
    assert_string_equal(cg_dataset_url("mnist"),
                        "https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz");
    assert_null(cg_dataset_url("cifar10"));
    int n = 0;
    while (cg_dataset_name(n)) n++;
    assert_int_equal(n, 3);
    assert_null(cg_dataset_name(-1));

    char out[PATH_MAX];
    assert_int_equal(cg_fetch("no_such_set", out, sizeof out, NULL), CG_ERR_ARG);
    assert_msg_has("mnist_sample, mnist_tiny, mnist");
    /* A URL with no usable file name needs an explicit name. */
    char url[256];
    pathf(url, sizeof url, "http://127.0.0.1:%d/", port);
    assert_int_equal(cg_fetch(url, out, sizeof out, NULL), CG_ERR_ARG);
    /* Query strings and extensions are not part of the name. */
    char cache[PATH_MAX], want[PATH_MAX + 16];
    new_cache(cache, sizeof cache);
    pathf(url, sizeof url, "http://127.0.0.1:%d/good.tgz?v=1#x", port);
    /* (the server ignores the query) */
    cg_fetch_options o = {.quiet = true};
    assert_int_equal(cg_fetch(url, out, sizeof out, &o), CG_OK);
    pathf(want, sizeof want, "%s/good", cache);
    assert_string_equal(out, want);

    /* A file:// URL works as well. */
    char file[PATH_MAX + 16], furl[PATH_MAX + 32];
    pathf(file, sizeof file, "%s/local.tar.gz", cache);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(routes[R_GOOD].body.data, 1, routes[R_GOOD].body.len, f),
                     routes[R_GOOD].body.len);
    fclose(f);
    pathf(furl, sizeof furl, "file://%s", file);
    assert_int_equal(cg_fetch(furl, out, sizeof out, &o), CG_OK);
    pathf(want, sizeof want, "%s/local", cache);
    assert_string_equal(out, want);
    check_good_tree(out);
}

/* ------------------------------------------------------------------ */
/* The unpacker's two layers, each on its own                          */
/* ------------------------------------------------------------------ */

static void test_name_checks(void **state) {
    (void)state;
    const char *why = NULL;
    int depth = -1;
    assert_true(cg_archive_name_ok("a/b/c.txt", &depth, &why));
    assert_int_equal(depth, 2);
    assert_true(cg_archive_name_ok("./a//b/", &depth, &why));
    assert_int_equal(depth, 1);
    assert_true(cg_archive_name_ok("a/..b/c..", &depth, &why)); /* dots inside names are fine */
    assert_false(cg_archive_name_ok("/etc/passwd", &depth, &why));
    assert_false(cg_archive_name_ok("a/../../b", &depth, &why));
    assert_false(cg_archive_name_ok("..", &depth, &why));
    assert_false(cg_archive_name_ok("a/..", &depth, &why)); /* even one that stays inside */
    assert_false(cg_archive_name_ok(NULL, &depth, &why));

    assert_true(cg_archive_symlink_ok("b/c", 0, &why));
    assert_true(cg_archive_symlink_ok("../x", 1, &why));
    assert_true(cg_archive_symlink_ok("./../../x/y", 2, &why));
    assert_false(cg_archive_symlink_ok("../x", 0, &why));
    assert_false(cg_archive_symlink_ok("../../x", 1, &why));
    assert_false(cg_archive_symlink_ok("/etc", 3, &why));
    assert_false(cg_archive_symlink_ok("", 3, &why));
    assert_false(cg_archive_symlink_ok("s/..", 3, &why));
    assert_false(cg_archive_symlink_ok("a/../b", 3, &why));
}

/* Unpacks route i's archive with our own checks off, so only libarchive's
 * ARCHIVE_EXTRACT_SECURE_* flags stand between it and the disk. */
static cg_status extract_unchecked(int i, char *dest, size_t size) {
    char file[512];
    pathf(file, sizeof file, "%s/t-XXXXXX", root);
    assert_non_null(mkdtemp(file));
    pathf(dest, size, "%s/dest", file);
    assert_int_equal(mkdir(dest, 0755), 0);
    strcat(file, "/a.tgz");
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    fwrite(routes[i].body.data, 1, routes[i].body.len, f);
    fclose(f);
    cg_extract_opts o = {.own_checks = false};
    cg_status s = cg_archive_extract(file, dest, routes[i].path, &o);
    printf("  %s: %s\n", routes[i].path, s == CG_OK ? "unpacked" : cg_last_error());
    return s;
}

static void test_libarchive_layer_alone(void **state) {
    (void)state;
    char dest[PATH_MAX], p[PATH_MAX + 512];
    /* SECURE_NODOTDOT */
    assert_int_equal(extract_unchecked(R_DOTDOT, dest, sizeof dest), CG_ERR_FORMAT);
    assert_msg_has("entry 'evil/../../escape.txt' refused: Path contains '..'");
    pathf(p, sizeof p, "%s/../escape.txt", dest);
    assert_false(path_exists(p));
    /* SECURE_SYMLINKS: the link is made, but nothing is written through it. */
    assert_int_equal(extract_unchecked(R_SYMABS, dest, sizeof dest), CG_ERR_FORMAT);
    assert_msg_has("Cannot extract through symlink");
    pathf(p, sizeof p, "%s/pwned.txt", outside);
    assert_false(path_exists(p));
    /* SECURE_NODOTDOT on a hard link's target. */
    assert_int_equal(extract_unchecked(R_HARD, dest, sizeof dest), CG_ERR_FORMAT);
    assert_msg_has("Path contains '..'");
    /* An absolute name lands below the destination, never at itself. */
    assert_int_equal(extract_unchecked(R_ABS, dest, sizeof dest), CG_OK);
    pathf(p, sizeof p, "%s/abs.txt", outside);
    assert_false(path_exists(p));
    pathf(p, sizeof p, "%s%s/abs.txt", dest, outside);
    assert_true(path_exists(p));
    /* The good archive passes with either layer alone. */
    assert_int_equal(extract_unchecked(R_GOOD, dest, sizeof dest), CG_OK);
    pathf(p, sizeof p, "%s/mnist_fake", dest);
    check_good_tree(p);
}

static void test_extract_limits(void **state) {
    (void)state;
    char dir[PATH_MAX], file[PATH_MAX + 16], dest[PATH_MAX + 16];
    pathf(dir, sizeof dir, "%s/t-XXXXXX", root);
    assert_non_null(mkdtemp(dir));
    pathf(file, sizeof file, "%s/a.tgz", dir);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    fwrite(routes[R_GOOD].body.data, 1, routes[R_GOOD].body.len, f);
    fclose(f);
    pathf(dest, sizeof dest, "%s/d1", dir);
    assert_int_equal(mkdir(dest, 0755), 0);
    cg_extract_opts o = {.own_checks = true, .max_bytes = 8}; /* labels.csv alone is more */
    assert_int_equal(cg_archive_extract(file, dest, "a.tgz", &o), CG_ERR_FORMAT);
    assert_msg_has("more than 8 bytes");
    pathf(dest, sizeof dest, "%s/d2", dir);
    assert_int_equal(mkdir(dest, 0755), 0);
    o = (cg_extract_opts){.own_checks = true, .max_entries = 3};
    assert_int_equal(cg_archive_extract(file, dest, "a.tgz", &o), CG_ERR_FORMAT);
    assert_msg_has("more than 3 entries");
    /* Not an archive at all. */
    pathf(file, sizeof file, "%s/junk.tgz", dir);
    f = fopen(file, "wb");
    assert_non_null(f);
    fputs("<html>this is not an archive</html>", f);
    fclose(f);
    pathf(dest, sizeof dest, "%s/d3", dir);
    assert_int_equal(mkdir(dest, 0755), 0);
    assert_int_equal(cg_archive_extract(file, dest, "junk.tgz", NULL), CG_ERR_FORMAT);
    assert_msg_has("junk.tgz");
}

/* ------------------------------------------------------------------ */
/* The cache folder and finding data                                   */
/* ------------------------------------------------------------------ */

static void test_cache_dir(void **state) {
    (void)state;
    char buf[PATH_MAX];
    setenv("CGRAD_HOME", "/x/home", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    setenv("HOME", "/x/user", 1);
    assert_string_equal(cg_cache_dir(buf, sizeof buf), "/x/home");
    unsetenv("CGRAD_HOME");
    assert_string_equal(cg_cache_dir(buf, sizeof buf), "/x/xdg/cgrad");
    setenv("XDG_CACHE_HOME", "relative", 1); /* invalid per the XDG spec: ignored */
    assert_string_equal(cg_cache_dir(buf, sizeof buf), "/x/user/.cache/cgrad");
    unsetenv("XDG_CACHE_HOME");
    assert_string_equal(cg_cache_dir(buf, sizeof buf), "/x/user/.cache/cgrad");
    char small[8];
    assert_null(cg_cache_dir(small, sizeof small));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
}

static void make_dataset(const char *dir, const char *tag) {
    char p[PATH_MAX + 32];
    pathf(p, sizeof p, "mkdir -p '%s'", dir);
    assert_int_equal(system(p), 0);
    pathf(p, sizeof p, "%s/tag", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(tag, f);
    fclose(f);
}

static void test_locate_order(void **state) {
    (void)state;
    char base[PATH_MAX], data[PATH_MAX + 16], cache[PATH_MAX + 16], p[PATH_MAX + 64],
        out[PATH_MAX];
    pathf(base, sizeof base, "%s/t-XXXXXX", root);
    assert_non_null(mkdtemp(base));
    pathf(data, sizeof data, "%s/data", base);
    pathf(cache, sizeof cache, "%s/cache", base);
    pathf(p, sizeof p, "%s/mine", base);
    make_dataset(p, "explicit");
    pathf(p, sizeof p, "%s/mnist_sample", data);
    make_dataset(p, "data");
    pathf(p, sizeof p, "%s/mnist_sample", cache);
    make_dataset(p, "cache");
    setenv("CGRAD_DATA", data, 1);
    setenv("CGRAD_HOME", cache, 1);

    /* 1. --data wins over everything. */
    pathf(p, sizeof p, "%s/mine", base);
    assert_int_equal(cg_locate_dataset("mnist_sample", p, false, out, sizeof out), CG_OK);
    assert_file(out, "tag", "explicit");
    /* ... and when it does not exist, that is the error: no fallback. */
    pathf(p, sizeof p, "%s/nope", base);
    assert_int_equal(cg_locate_dataset("mnist_sample", p, true, out, sizeof out), CG_ERR_IO);
    assert_msg_has(p);
    /* 2. $CGRAD_DATA/NAME over the cache. */
    assert_int_equal(cg_locate_dataset("mnist_sample", NULL, false, out, sizeof out), CG_OK);
    assert_file(out, "tag", "data");
    assert_int_equal(cg_locate_dataset("mnist_sample", "", false, out, sizeof out), CG_OK);
    assert_file(out, "tag", "data");
    /* 3. The cache when CGRAD_DATA lacks it or is unset. */
    pathf(p, sizeof p, "%s/other", base);
    setenv("CGRAD_DATA", p, 1);
    assert_int_equal(cg_locate_dataset("mnist_sample", NULL, false, out, sizeof out), CG_OK);
    assert_file(out, "tag", "cache");
    unsetenv("CGRAD_DATA");
    assert_int_equal(cg_locate_dataset("mnist_sample", NULL, false, out, sizeof out), CG_OK);
    assert_file(out, "tag", "cache");
    /* Names that are paths are refused. */
    assert_int_equal(cg_locate_dataset("../x", NULL, false, out, sizeof out), CG_ERR_ARG);
    assert_int_equal(cg_locate_dataset(NULL, NULL, false, out, sizeof out), CG_ERR_ARG);
}

static void test_locate_no_data_message(void **state) {
    (void)state;
    char cache[PATH_MAX], data[PATH_MAX + 16], out[PATH_MAX], mirror[128];
    new_cache(cache, sizeof cache);
    pathf(data, sizeof data, "%s/../data", cache);
    setenv("CGRAD_DATA", data, 1);

    /* Fetching off: one message with where it looked, the URL, what to do. */
    assert_int_equal(cg_locate_dataset("mnist_sample", NULL, false, out, sizeof out), CG_ERR_IO);
    printf("  message: %s\n", cg_last_error());
    assert_msg_has("dataset 'mnist_sample' not found");
    assert_msg_has("data/mnist_sample");
    assert_msg_has("https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz");
    assert_msg_has("turned off");
    assert_msg_has("--data PATH");
    assert_msg_has("CGRAD_DATA=DIR (DIR holding mnist_sample/)");
    /* An unknown name cannot be fetched at all. */
    assert_int_equal(cg_locate_dataset("my_digits", NULL, true, out, sizeof out), CG_ERR_IO);
    assert_msg_has("knows no URL");
    assert_msg_has("CGRAD_DATA=DIR (DIR holding my_digits/)");

    /* Fetching on, through a loopback mirror whose copy is not the real
     * one: the known size (fastai's) refuses it, and the message says so. */
    pathf(mirror, sizeof mirror, "http://127.0.0.1:%d/mirror", port);
    setenv("CGRAD_MIRROR", mirror, 1);
    int before = hits(R_MIRROR);
    assert_int_equal(cg_locate_dataset("mnist_tiny", NULL, true, out, sizeof out), CG_ERR_FORMAT);
    unsetenv("CGRAD_MIRROR");
    printf("  message: %s\n", cg_last_error());
    assert_int_equal(hits(R_MIRROR), before + 1);
    assert_msg_has("dataset 'mnist_tiny' not found");
    assert_msg_has("/mirror/mnist_tiny.tgz");
    assert_msg_has("expected 342207");
    assert_msg_has("CGRAD_DATA=DIR (DIR holding mnist_tiny/)");
    assert_cache_empty(cache);
    /* Exactly one copy of the hint: the message is one message. */
    const char *m = cg_last_error(), *first = strstr(m, "--data PATH");
    assert_non_null(first);
    assert_null(strstr(first + 1, "--data PATH"));
    unsetenv("CGRAD_DATA");
}

/* ------------------------------------------------------------------ */
/* The CLI                                                             */
/* ------------------------------------------------------------------ */

static void test_cli_fetch(void **state) {
    (void)state;
    const char *build = getenv("CGRAD_TEST_BUILD");
    char exe[PATH_MAX], cmd[PATH_MAX * 3 + 256], cache[PATH_MAX], url[256], line[PATH_MAX] = "";
    pathf(exe, sizeof exe, "%s/cgrad", build ? build : ".");
    if (!build || access(exe, X_OK) != 0) {
        printf("skipped: no cgrad program at %s\n", exe);
        skip();
    }
    new_cache(cache, sizeof cache);
    pathf(cmd, sizeof cmd, "'%s' fetch '%s' --cache '%s' 2>/dev/null", exe,
             url_of(R_GOOD, url, sizeof url), cache);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    int rc = pclose(p);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) != 0)
        fail_msg("'%s' exited %d (2: is 'fetch' missing from src/cli/main.c?)", cmd,
                 WEXITSTATUS(rc));
    line[strcspn(line, "\n")] = '\0';
    check_good_tree(line);
    /* A failure exits 1 with the reason on stderr. */
    pathf(cmd, sizeof cmd, "'%s' fetch 'http://127.0.0.1:%d/missing.tgz' --cache '%s' 2>&1", exe,
             port, cache);
    p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    rc = pclose(p);
    assert_int_equal(WEXITSTATUS(rc), 1);
    if (!strstr(line, "cgrad fetch: ") || !strstr(line, "404")) fail_msg("stderr: %s", line);
    /* --list names the known datasets. */
    pathf(cmd, sizeof cmd, "'%s' fetch --list", exe);
    p = popen(cmd, "r");
    assert_non_null(p);
    bool saw = false;
    while (fgets(line, sizeof line, p)) saw |= strstr(line, "mnist_sample") != NULL;
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    assert_true(saw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_good_tgz),
        cmocka_unit_test(test_fetch_cache_reused),
        cmocka_unit_test(test_fetch_zip_without_top_folder),
        cmocka_unit_test(test_fetch_killed_run),
        cmocka_unit_test(test_fetch_truncated),
        cmocka_unit_test(test_fetch_wrong_checksum),
        cmocka_unit_test(test_fetch_dotdot_entry),
        cmocka_unit_test(test_fetch_absolute_entry),
        cmocka_unit_test(test_fetch_symlink_out),
        cmocka_unit_test(test_fetch_hardlink_out),
        cmocka_unit_test(test_fetch_404),
        cmocka_unit_test(test_fetch_interrupted),
        cmocka_unit_test(test_fetch_size_limit),
        cmocka_unit_test(test_fetch_stall_times_out),
        cmocka_unit_test(test_fetch_offline),
        cmocka_unit_test(test_fetch_names),
        cmocka_unit_test(test_name_checks),
        cmocka_unit_test(test_libarchive_layer_alone),
        cmocka_unit_test(test_extract_limits),
        cmocka_unit_test(test_cache_dir),
        cmocka_unit_test(test_locate_order),
        cmocka_unit_test(test_locate_no_data_message),
        cmocka_unit_test(test_cli_fetch),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
