/*
 * test_serve.c - `cgrad serve` end to end. The built program
 * ($CGRAD_TEST_BUILD/cgrad) is started on 127.0.0.1 with --port 0, the port
 * it picked is read from its first line, and libcurl talks to it. Only
 * loopback addresses are used, and every wait is bounded: the start (the
 * first line), each request (curl's timeouts), and the exit after a signal;
 * a server that a failed check leaves running is killed by the teardown.
 *
 * The model is made here (cg_model_new with chosen weights, cg_model_save),
 * so the checks need no data; with $CGRAD_DATA set, one test also trains a
 * real model with `cgrad train` and sends it real validation digits.
 *
 * The limits (per address, busy, deadlines) are checked with raw sockets,
 * some bound to other loopback addresses (127.0.0.2, ...: all of 127/8 is
 * this machine on Linux) to stand for other clients.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define PIXELS 784
#define START_TIMEOUT_S 20.0 /* generous: sanitizer and valgrind runs are slow */
#define EXIT_TIMEOUT_S 10.0
#define REQUEST_TIMEOUT_S 10L

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* The server of the running test (-1: none), its stdout, and its port. */
static pid_t server_pid = -1;
static int server_out = -1;
static int server_port;
static char server_err[600]; /* its stderr, a file */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define cgrad_bin cg_test_cgrad_bin /* testutil.h */

static char *read_file_text(const char *path) {
    FILE *f = fopen(path, "rb");
    char *s = calloc(1, 1 << 16);
    assert_non_null(s);
    if (f) {
        size_t n = fread(s, 1, (1 << 16) - 1, f);
        s[n] = '\0';
        fclose(f);
    }
    return s;
}

/* Starts argv[0..] (cgrad's arguments) with stdout to a pipe (*out_fd, or
 * /dev/null when out_fd is NULL) and stderr to err_path. */
static pid_t spawn(const char *const *args, int *out_fd, const char *err_path) {
    const char *argv[16] = {cgrad_bin()};
    int n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n < 15);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    int fds[2] = {-1, -1};
    if (out_fd) assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = out_fd ? fds[1] : open("/dev/null", O_WRONLY);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
            dup2(err, 2) < 0)
            _exit(126);
        if (out_fd) close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out_fd) {
        close(fds[1]);
        *out_fd = fds[0];
    }
    return pid;
}

/* The exit status of pid (-1 if a signal ended it), waiting at most
 * timeout_s; past that it is killed and the test fails. */
static int wait_exit(pid_t pid, double timeout_s, const char *what) {
    double end = now_s() + timeout_s;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        assert_true(r == 0 || (r < 0 && errno == EINTR));
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("%s: still running after %.0f s", what, timeout_s);
        }
        struct timespec ms10 = {0, 10000000L};
        nanosleep(&ms10, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `cgrad ARGS...` run to its end: exit status, and its stderr in *err. */
static int run_to_exit(const char *const *args, char **err) {
    char path[600];
    snprintf(path, sizeof path, "%s/run.err", cg_test_tmpdir());
    pid_t pid = spawn(args, NULL, path);
    int st = wait_exit(pid, 300.0, args[0]);
    *err = read_file_text(path);
    return st;
}

/* Reads fd into buf (NUL-terminated) until EOF, or a newline if
 * line_only; false if that takes past `timeout_s` or the data do not fit. */
static bool read_until(int fd, char *buf, size_t size, bool line_only, double timeout_s) {
    size_t len = 0;
    double end = now_s() + timeout_s;
    buf[0] = '\0';
    while (!(line_only && strchr(buf, '\n'))) {
        int left_ms = (int)((end - now_s()) * 1000.0);
        struct pollfd p = {fd, POLLIN, 0};
        int r = left_ms > 0 ? poll(&p, 1, left_ms) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || len + 1 >= size) return false;
        ssize_t got = read(fd, buf + len, size - 1 - len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return !line_only;
        len += (size_t)got;
        buf[len] = '\0';
    }
    return true;
}

/* Starts `cgrad serve MODEL --port 0 --host 127.0.0.1 [OPTION VALUE]`
 * (option NULL: none) and reads the port from its first line,
 * "serving http://127.0.0.1:PORT/ (Ctrl-C to stop)". */
static void start_server_with(const char *model, const char *option, const char *value) {
    snprintf(server_err, sizeof server_err, "%s/serve.err", cg_test_tmpdir());
    const char *args[] = {"serve", model, "--port", "0", "--host", "127.0.0.1", option, value,
                          NULL};
    server_pid = spawn(args, &server_out, server_err);
    char line[512];
    if (!read_until(server_out, line, sizeof line, true, START_TIMEOUT_S)) {
        char *err = read_file_text(server_err);
        fail_msg("cgrad serve printed no line within %.0f s (it printed '%s'); stderr:\n%s",
                 START_TIMEOUT_S, line, err);
    }
    static const char prefix[] = "serving http://127.0.0.1:";
    if (strncmp(line, prefix, sizeof prefix - 1) != 0) fail_msg("unexpected first line: %s", line);
    char *rest = NULL;
    long port = strtol(line + sizeof prefix - 1, &rest, 10);
    assert_true(port > 0 && port < 65536);
    if (strncmp(rest, "/ (Ctrl-C to stop)\n", 19) != 0) fail_msg("unexpected first line: %s", line);
    server_port = (int)port;
}

static void start_server(const char *model) { start_server_with(model, NULL, NULL); }

/* Sends sig to the server; its exit status (it must exit in time). */
static int stop_server(int sig) {
    assert_int_equal(kill(server_pid, sig), 0);
    int st = wait_exit(server_pid, EXIT_TIMEOUT_S, "cgrad serve after a signal");
    server_pid = -1;
    close(server_out);
    server_out = -1;
    return st;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */
/* ------------------------------------------------------------------ */

typedef struct reply {
    CURLcode rc; /* CURLE_OK: an answer came back */
    long code;
    char body[16384];
    size_t len;
    char type[128];  /* Content-Type */
    char allow[64];  /* Allow        */
    char retry[16];  /* Retry-After  */
    long connects;   /* new connections the request made (0: one kept alive was reused) */
    char csp[512];   /* Content-Security-Policy */
} reply;

/* One handle per test: later requests reuse its kept-alive connection. */
static CURL *curl;

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    reply *r = arg;
    size_t bytes = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, data, bytes < room ? bytes : room);
    r->len += bytes < room ? bytes : room;
    r->body[r->len] = '\0';
    return bytes;
}

typedef struct source {
    const uint8_t *p;
    size_t left;
} source;

static size_t on_read(char *buf, size_t size, size_t n, void *arg) {
    source *s = arg;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    return k;
}

static void copy_header(const char *name, char *out, size_t size) {
    struct curl_header *h = NULL;
    out[0] = '\0';
    if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        snprintf(out, size, "%s", h->value);
}

/* How a body goes: with Content-Length, at once; with Content-Length after
 * "Expect: 100-continue" (only once the server says go on); chunked. */
typedef enum { PLAIN, EXPECT, CHUNKED } body_mode;

/*
 * METHOD PATH with an optional body. type NULL sends no Content-Type.
 * Returns the response (static: valid until the next request), with rc
 * saying whether one came back; see request().
 */
static reply *try_request(const char *method, const char *path, const void *body, size_t len,
                          const char *type, body_mode mode) {
    static reply r;
    memset(&r, 0, sizeof r);
    if (!curl) {
        curl = curl_easy_init();
        assert_non_null(curl);
    }
    curl_easy_reset(curl);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", server_port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*"); /* loopback, whatever proxy is set */
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    struct curl_slist *h = NULL;
    char type_h[160];
    snprintf(type_h, sizeof type_h, "Content-Type:%s%s", type ? " " : "", type ? type : "");
    source src = {body, len};
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        h = curl_slist_append(h, type_h); /* "Content-Type:" alone: none sent */
        h = curl_slist_append(h, mode == EXPECT ? "Expect: 100-continue" : "Expect:");
        if (mode == CHUNKED) {
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(curl, CURLOPT_READDATA, &src);
        } else {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        if (strcmp(method, "POST") != 0) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    r.rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.connects);
    copy_header("Content-Type", r.type, sizeof r.type);
    copy_header("Allow", r.allow, sizeof r.allow);
    copy_header("Retry-After", r.retry, sizeof r.retry);
    copy_header("Content-Security-Policy", r.csp, sizeof r.csp);
    return &r;
}

/* try_request that fails the test when no answer comes back. */
static reply *request(const char *method, const char *path, const void *body, size_t len,
                      const char *type, body_mode mode) {
    reply *r = try_request(method, path, body, len, type, mode);
    if (r->rc != CURLE_OK) fail_msg("%s %s: %s", method, path, curl_easy_strerror(r->rc));
    return r;
}

static reply *post(const void *body, size_t len) {
    return request("POST", "/predict", body, len, "application/octet-stream", PLAIN);
}

static void expect_code(const reply *r, long code, const char *what) {
    if (r->code != code)
        fail_msg("%s: status %ld, expected %ld; body: %s", what, r->code, code, r->body);
}

/* An error answer: the status, JSON, an "error" message containing `needle`. */
static void expect_error(const reply *r, long code, const char *needle, const char *what) {
    expect_code(r, code, what);
    if (strncmp(r->type, "application/json", 16) != 0)
        fail_msg("%s: Content-Type %s", what, r->type);
    if (strncmp(r->body, "{\"error\":\"", 10) != 0 || !strstr(r->body, needle))
        fail_msg("%s: expected a JSON error mentioning '%s', got: %s", what, needle, r->body);
}

/* The string value of "key" in a flat JSON object (into buf). */
static const char *json_str(const char *body, const char *key, char *buf, size_t size) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(body, pat);
    if (!p) fail_msg("no \"%s\" string in %s", key, body);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    assert_true(n < size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* The raw text of the number after "key": (into buf). */
static const char *json_raw(const char *body, const char *key, char *buf, size_t size) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    if (!p) fail_msg("no \"%s\" in %s", key, body);
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    assert_true(n > 0 && n < size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static double json_num(const char *body, const char *key) {
    char buf[64];
    return strtod(json_raw(body, key, buf, sizeof buf), NULL);
}

/* A TCP connection to the server from loopback address `from` (a client
 * of its own: "127.0.0.2" ...), or -1 when connecting fails. Skips the
 * test if the address cannot be used at all. */
static int raw_connect(const char *from) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, from, &a.sin_addr), 1);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        printf("skipped: cannot bind to %s: %s\n", from, strerror(errno));
        close(s);
        skip();
    }
    a.sin_port = htons((uint16_t)server_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static void raw_send(int s, const void *data, size_t len) {
    assert_int_equal(send(s, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* What the server sends on s until it closes it, at most timeout_s
 * (NUL-terminated in buf); false if it is still open then. A reset counts
 * as closed. */
static bool raw_read_to_close(int s, char *buf, size_t size, double timeout_s) {
    size_t len = 0;
    double end = now_s() + timeout_s;
    buf[0] = '\0';
    for (;;) {
        int left_ms = (int)((end - now_s()) * 1000.0);
        struct pollfd p = {s, POLLIN, 0};
        int r = left_ms > 0 ? poll(&p, 1, left_ms) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        char tmp[4096];
        ssize_t got = recv(s, tmp, sizeof tmp, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return true;
        size_t keep = (size_t)got < size - 1 - len ? (size_t)got : size - 1 - len;
        memcpy(buf + len, tmp, keep);
        len += keep;
        buf[len] = '\0';
    }
}

/* One request sent raw on a fresh connection: the whole answer (the
 * server closes the connection after an error, or when asked to). */
static const char *raw_request(const char *text, const void *body, size_t body_len) {
    static char answer[4096];
    int s = raw_connect("127.0.0.1");
    assert_true(s >= 0);
    raw_send(s, text, strlen(text));
    if (body_len) raw_send(s, body, body_len);
    if (!raw_read_to_close(s, answer, sizeof answer, REQUEST_TIMEOUT_S))
        fail_msg("no answer, or the connection kept open, for: %s", text);
    close(s);
    return answer;
}

/* Whether s is still open: nothing to read, no end of stream, no error. */
static bool still_open(int s) {
    struct pollfd p = {s, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

/* The lines of text. */
static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++) n++;
    return n;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

/*
 * A linear 3-vs-7 model that reads ink on the left half as a 3 and ink on
 * the right half as a 7: w = +0.02 for columns 0..13, -0.02 for 14..27,
 * b = 0.1. Saved to DIR/m.cgm; the model is returned for checking.
 */
static cg_model *make_model(char *path, size_t size) {
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    cg_model *m = cg_model_new(CG_MODEL_LINEAR, PIXELS, 0, 1, CG_INIT_NORMAL, 1.0f, &rng);
    assert_non_null(m);
    for (int i = 0; i < PIXELS; i++) m->params[0]->data[i] = i % 28 < 14 ? 0.02f : -0.02f;
    m->params[1]->data[0] = 0.1f;
    m->n_classes = 2;
    strcpy(m->class_names[0], "3");
    strcpy(m->class_names[1], "7");
    snprintf(path, size, "%s/m.cgm", cg_test_tmpdir());
    assert_int_equal(cg_model_save(m, path), CG_OK);
    return m;
}

/* What the server should answer for px, computed here the way
 * `cgrad predict` does. */
static void expected(cg_model *m, const uint8_t *px, const char **cls, double *prob, float *logit) {
    bool grad = cg_set_grad_enabled(false);
    cg_scope_begin();
    int64_t shape[2] = {1, PIXELS};
    cg_tensor *x = cg_tensor_new(shape, 2);
    assert_non_null(x);
    for (int i = 0; i < PIXELS; i++) x->data[i] = (float)px[i] / 255.0f;
    cg_tensor *z = cg_model_forward(m, x);
    cg_tensor *p = cg_tensor_sigmoid(z);
    assert_non_null(p);
    double s = p->data[0];
    *cls = m->class_names[s > 0.5 ? 0 : 1];
    *prob = s > 0.5 ? s : 1.0 - s;
    *logit = z->data[0];
    cg_scope_end();
    cg_set_grad_enabled(grad);
}

/* The server's answer for px agrees with the model computed here: the same
 * class, the same float logit, the same probability to the digits sent. */
static void check_prediction(cg_model *m, const uint8_t *px, const char *want_class) {
    reply *r = post(px, PIXELS);
    expect_code(r, 200, "POST /predict");
    if (strncmp(r->type, "application/json", 16) != 0) fail_msg("Content-Type %s", r->type);
    const char *cls;
    double prob;
    float logit;
    expected(m, px, &cls, &prob, &logit);
    char got[64];
    assert_string_equal(json_str(r->body, "class", got, sizeof got), cls);
    if (want_class) assert_string_equal(cls, want_class);
    assert_true((float)json_num(r->body, "logit") == logit);
    cg_assert_close(json_num(r->body, "probability"), prob, 0.0, 1e-8, "probability");
    assert_true(prob >= 0.5 && prob <= 1.0);
}

static int teardown(void **state) {
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    if (server_out >= 0) close(server_out);
    server_out = -1;
    curl_easy_cleanup(curl);
    curl = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* GET / is the drawing page, self-contained; GET /model names the classes. */
static void test_serve_page(void **state) {
    (void)state;
    char path[600];
    cg_model_free(make_model(path, sizeof path));
    start_server(path);

    reply *r = request("GET", "/", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "GET /");
    assert_string_equal(r->type, "text/html; charset=utf-8");
    const char *needles[] = {"<!doctype html>", "<canvas id=\"pad\" width=\"280\" height=\"280\"",
                             ">Clear</button>", "fetch(\"predict\"", "application/octet-stream",
                             "aria-live", "pointerdown", "</html>"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (!strstr(r->body, needles[i])) fail_msg("the page lacks '%s'", needles[i]);
    /* Nothing loaded from elsewhere, and the policy header forbids it. */
    const char *outside[] = {"src=", "href=", "@import", "url(", "//cdn", "https:"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        if (strstr(r->body, outside[i])) fail_msg("the page refers to '%s'", outside[i]);
    if (!strstr(r->csp, "default-src 'none'")) fail_msg("Content-Security-Policy: '%s'", r->csp);
    size_t page_len = r->len;
    assert_true(page_len > 1000 && page_len < sizeof r->body - 1);

    r = request("HEAD", "/", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "HEAD /");
    assert_int_equal(r->len, 0);

    r = request("GET", "/model", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "GET /model");
    assert_string_equal(r->body,
                        "{\"kind\":\"linear\",\"inputs\":784,\"classes\":[\"3\",\"7\"]}\n");

    assert_int_equal(stop_server(SIGTERM), 0);
}

/* A model of ten classes (a small MLP of random weights): /model lists the
 * classes, /predict answers every class's probability, the softmax of the
 * outputs, and names the most probable, as cg_model_classify does. */
static void test_serve_many_classes(void **state) {
    (void)state;
    cg_rng rng;
    cg_rng_seed(&rng, 11);
    const int64_t in = PIXELS;
    cg_model *m = cg_model_from_spec("linear:16,relu,linear", "mlp", &in, 1, 10, CG_INIT_KAIMING,
                                     0.0f, &rng);
    assert_non_null(m);
    m->n_classes = 10;
    for (int c = 0; c < 10; c++) snprintf(m->class_names[c], CG_CLASS_NAME_MAX, "d%d", c);
    char path[600];
    snprintf(path, sizeof path, "%s/m10.cgm", cg_test_tmpdir());
    assert_int_equal(cg_model_save(m, path), CG_OK);
    start_server(path);

    reply *r = request("GET", "/model", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "GET /model");
    if (!strstr(r->body, "\"classes\":[\"d0\",\"d1\",\"d2\"") || !strstr(r->body, "\"d9\"]"))
        fail_msg("/model: %s", r->body);

    uint8_t px[PIXELS];
    for (int i = 0; i < PIXELS; i++) px[i] = (uint8_t)((i * 37) % 256);
    double probs[10];
    int best = cg_model_classify(m, px, probs, NULL);
    assert_true(best >= 0);
    r = post(px, PIXELS);
    expect_code(r, 200, "POST /predict, ten classes");
    char got[64];
    assert_string_equal(json_str(r->body, "class", got, sizeof got), m->class_names[best]);
    const char *all = strstr(r->body, "\"probabilities\":{");
    assert_non_null(all);
    double total = 0.0;
    for (int c = 0; c < 10; c++) {
        double p = json_num(all, m->class_names[c]);
        cg_assert_close(p, probs[c], 0.0, 1e-8, "a class's probability");
        total += p;
    }
    cg_assert_close(total, 1.0, 1e-6, 0, "probabilities sum to 1");
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* Predictions are the model's, exactly; the connection is reused. */
static void test_serve_predicts(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server(path);

    uint8_t px[PIXELS];
    memset(px, 0, sizeof px);
    check_prediction(m, px, "3"); /* blank: just b = 0.1 > 0, a weak 3 */
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 255 : 0;
    check_prediction(m, px, "3");
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 0 : 200;
    check_prediction(m, px, "7");
    cg_rng rng;
    cg_rng_seed(&rng, 11);
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < PIXELS; i++) px[i] = (uint8_t)cg_rng_below(&rng, 256);
        check_prediction(m, px, NULL);
    }
    /* Chunked, and with no Content-Type at all: the same answer. */
    reply *r = post(px, PIXELS);
    assert_true(r->len < 256);
    char first[256];
    memcpy(first, r->body, r->len + 1);
    r = request("POST", "/predict", px, PIXELS, "application/octet-stream", CHUNKED);
    expect_code(r, 200, "chunked POST");
    assert_string_equal(r->body, first);
    r = request("POST", "/predict", px, PIXELS, NULL, PLAIN);
    expect_code(r, 200, "POST without Content-Type");
    assert_string_equal(r->body, first);

    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* Wrong sizes, too big, wrong type, path or method: each its JSON error,
 * and the server goes on serving. */
static void test_serve_rejects_bad_requests(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server(path);

    size_t big = 3 << 20;
    uint8_t *junk = malloc(big);
    assert_non_null(junk);
    for (size_t i = 0; i < big; i++) junk[i] = (uint8_t)(i * 7);

    size_t sizes[] = {0, 1, 783, 785, 1568, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char what[64], needle[32];
        snprintf(what, sizeof what, "a body of %zu bytes", sizes[i]);
        snprintf(needle, sizeof needle, "got %zu", sizes[i]);
        expect_error(post(junk, sizes[i]), 400, needle, what);
        expect_error(post(junk, sizes[i]), 400, "takes 784 bytes", what);
    }
    /* Over 4 KiB: 413. Up to 1 MiB the body is read (and dropped) first,
     * chunked or not; a bigger Content-Length is refused before the client
     * sends it, if it waits for "100 Continue". */
    expect_error(post(junk, 4097), 413, "a body of 4097 bytes", "4097 bytes");
    expect_error(post(junk, 1 << 20), 413, "a body of 1048576 bytes", "1 MiB");
    const char *oct = "application/octet-stream";
    expect_error(request("POST", "/predict", junk, 8192, oct, CHUNKED), 413, "a body of 8192 bytes",
                 "8 KiB chunked");
    expect_error(request("POST", "/predict", junk, big, oct, EXPECT), 413,
                 "a body of 3145728 bytes", "3 MiB after Expect: 100-continue");
    /* 3 MiB chunked: the connection is cut; nothing else comes back. */
    reply *r = try_request("POST", "/predict", junk, big, oct, CHUNKED);
    if (r->rc == CURLE_OK) fail_msg("3 MiB chunked: answered %ld %s", r->code, r->body);
    expect_error(request("POST", "/predict", junk, PIXELS, "application/json", PLAIN), 415,
                 "application/octet-stream", "a JSON Content-Type");
    expect_error(
        request("POST", "/predict", junk, PIXELS, "application/x-www-form-urlencoded", PLAIN), 415,
        "application/octet-stream", "a form");

    r = request("GET", "/nope", NULL, 0, NULL, PLAIN);
    expect_error(r, 404, "no such page", "GET /nope");
    expect_error(request("POST", "/predict/", junk, PIXELS, "application/octet-stream", PLAIN), 404,
                 "no such page", "POST /predict/");
    struct {
        const char *method, *path, *allow;
    } wrong[] = {{"GET", "/predict", "POST"},  {"PUT", "/predict", "POST"},
                 {"DELETE", "/predict", "POST"}, {"POST", "/", "GET, HEAD"},
                 {"PUT", "/model", "GET, HEAD"}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        bool body = strcmp(wrong[i].method, "GET") != 0 && strcmp(wrong[i].method, "DELETE") != 0;
        r = request(wrong[i].method, wrong[i].path, body ? junk : NULL, body ? PIXELS : 0,
                    "application/octet-stream", PLAIN);
        expect_error(r, 405, "not ", wrong[i].method);
        assert_string_equal(r->allow, wrong[i].allow);
    }

    /* A client that sends half a request and stalls holds up nobody. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)server_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    static const char partial[] =
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 784\r\n\r\n0123456789";
    assert_int_equal(send(s, partial, sizeof partial - 1, MSG_NOSIGNAL),
                     (ssize_t)(sizeof partial - 1));

    uint8_t px[PIXELS];
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 0 : 255;
    check_prediction(m, px, "7");

    /* And SIGTERM stops the server with that connection still open (once
     * the 5 s that a request in flight is given to finish are up). */
    assert_int_equal(stop_server(SIGTERM), 0);
    close(s);
    free(junk);
    cg_model_free(m);
}

/* Ctrl-C (SIGINT) stops it cleanly too, with a kept-alive connection open. */
static void test_serve_sigint(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server(path);
    uint8_t px[PIXELS] = {0};
    check_prediction(m, px, "3");
    assert_int_equal(stop_server(SIGINT), 0);
    char *err = read_file_text(server_err);
    assert_string_equal(err, "cgrad serve: stopped on SIGINT; requests served: 1, unfinished: 0\n");
    free(err);
    cg_model_free(m);
}

/* Command-line mistakes exit 2, a model it cannot serve or a port in use 1. */
static void test_serve_usage_and_failures(void **state) {
    (void)state;
    char path[600];
    cg_model_free(make_model(path, sizeof path));
    char bad_model[700];
    snprintf(bad_model, sizeof bad_model, "%s/mlp3.cgm", cg_test_tmpdir());
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    cg_model *m3 = cg_model_new(CG_MODEL_LINEAR, 100, 0, 1, CG_INIT_NORMAL, 1.0f, &rng);
    assert_non_null(m3);
    m3->n_classes = 2;
    strcpy(m3->class_names[0], "a");
    strcpy(m3->class_names[1], "b");
    assert_int_equal(cg_model_save(m3, bad_model), CG_OK);
    cg_model_free(m3);

    struct {
        const char *args[8];
        int status;
        const char *message;
    } cases[] = {
        {{"serve", NULL}, 2, "give the model file"},
        {{"serve", path, "--port", "65536", NULL},
         2,
         "--port expects a whole number from 0 to 65535"},
        {{"serve", path, "--port", "-1", NULL}, 2, "--port"},
        {{"serve", path, "--host", "example.com", NULL}, 2, "--host expects an IP address"},
        {{"serve", path, "--host", "127.0.0.300", NULL}, 2, "--host expects an IP address"},
        {{"serve", path, "extra", NULL}, 2, "unexpected argument 'extra'"},
        {{"serve", "/nonexistent/m.cgm", "--port", "0", NULL},
         1,
         "cgrad serve: model: cannot open"},
        {{"serve", bad_model, "--port", "0", NULL}, 1, "takes items of 100 (100 numbers); this needs 784: the page sends gray 28x28"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int st = run_to_exit(cases[i].args, &err);
        if (st != cases[i].status || !strstr(err, cases[i].message))
            fail_msg("case %zu: exit %d (expected %d), stderr:\n%s(expected '%s')", i, st,
                     cases[i].status, err, cases[i].message);
        free(err);
    }

    /* A second server on the first one's port: a clear failure, exit 1. */
    start_server(path);
    char port[16];
    snprintf(port, sizeof port, "%d", server_port);
    const char *again[] = {"serve", path, "--port", port, NULL};
    char *err = NULL;
    int st = run_to_exit(again, &err);
    assert_int_equal(st, 1);
    if (!strstr(err, "cgrad serve: cannot listen on 127.0.0.1 port"))
        fail_msg("port in use: stderr:\n%s", err);
    free(err);
    assert_int_equal(stop_server(SIGTERM), 0);
}

/* Clients that hold connections and send nothing (or a byte now and then)
 * do not lock others out: each address may hold --per-ip connections (the
 * rest are closed at once), and many addresses together stay under the
 * global limit, so a real client is still answered. */
static void test_serve_idle_clients_lock_nobody_out(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    uint8_t px[PIXELS];
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 0 : 255;

    /* Defaults: 40 idle connections from each of two addresses. */
    start_server(path);
    enum { HELD = 80, PER_IP = 8 };
    int held[HELD];
    for (int i = 0; i < HELD; i++) {
        held[i] = raw_connect(i < HELD / 2 ? "127.0.0.2" : "127.0.0.3");
        assert_true(held[i] >= 0);
        /* Half of them have sent part of a request line. */
        if (i % 2) raw_send(held[i], "POST /pre", 9);
    }
    check_prediction(m, px, "7");
    for (int i = 0; i < HELD; i++) close(held[i]);
    assert_int_equal(stop_server(SIGTERM), 0);

    /* --per-ip 8: of 40 connections from one address, 8 stay open. */
    start_server_with(path, "--per-ip", "8");
    for (int i = 0; i < HELD / 2; i++) held[i] = raw_connect("127.0.0.2");
    /* Every connection past the limit is accepted and closed at once; the
     * first ones stay. */
    for (int i = PER_IP; i < HELD / 2; i++) {
        char buf[64];
        if (held[i] >= 0 && !raw_read_to_close(held[i], buf, sizeof buf, 5.0))
            fail_msg("connection %d from one address was kept (--per-ip %d)", i + 1, PER_IP);
    }
    for (int i = 0; i < PER_IP; i++) assert_true(held[i] >= 0 && still_open(held[i]));
    check_prediction(m, px, "7");
    for (int i = 0; i < HELD / 2; i++)
        if (held[i] >= 0) close(held[i]);
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* A request must be in whole within --request-timeout, however its bytes
 * trickle in: a client sending a byte every 0.2 s gets 408 and is closed;
 * an idle connection is closed (with nothing to say). Other clients are
 * served meanwhile. */
static void test_serve_slow_sender_deadline(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    const double deadline = 2.0;
    start_server_with(path, "--request-timeout", "2");
    double t0 = now_s();
    int idle = raw_connect("127.0.0.2");
    int slow = raw_connect("127.0.0.3");
    assert_true(idle >= 0 && slow >= 0);
    static const char head[] = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n\r\n";
    raw_send(slow, head, sizeof head - 1);
    /* A byte every 0.2 s: each restarts an idle timeout, never the deadline. */
    bool cut = false;
    char buf[1024];
    int sent = 0;
    while (!cut && now_s() - t0 < deadline + 5.0) {
        if (send(slow, "x", 1, MSG_NOSIGNAL) == 1) sent++;
        cut = raw_read_to_close(slow, buf, sizeof buf, 0.2);
    }
    double took = now_s() - t0;
    if (!cut) fail_msg("a client trickling a byte every 0.2 s was kept %.1f s", took);
    if (took < deadline - 0.1)
        fail_msg("cut after %.2f s, before the %.0f s deadline", took, deadline);
    assert_true(sent > 3 && sent < PIXELS);
    if (strncmp(buf, "HTTP/1.1 408 ", 13) != 0 ||
        !strstr(buf, "did not arrive in whole within 2 s"))
        fail_msg("the slow client got: %s", buf);
    /* The idle one is closed too, without an answer. */
    if (!raw_read_to_close(idle, buf, sizeof buf, 3.0)) fail_msg("an idle connection was kept");
    assert_string_equal(buf, "");
    close(idle);
    close(slow);
    uint8_t px[PIXELS] = {0};
    check_prediction(m, px, "3");
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* Past --max-connections, with every connection in the middle of a
 * request, a request is answered 503 "server busy" with Retry-After (not a
 * silent close), and served again once clients leave. */
static void test_serve_busy_answers_503(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server_with(path, "--max-connections", "3");
    /* "Expect: 100-continue": the server's "100 Continue" says that it has
     * taken the request in, so all three are in flight before the fourth. */
    static const char head[] = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n"
                               "Expect: 100-continue\r\n\r\n";
    int held[3];
    for (int i = 0; i < 3; i++) {
        assert_true((held[i] = raw_connect("127.0.0.2")) >= 0);
        raw_send(held[i], head, sizeof head - 1);
        char line[64];
        if (!read_until(held[i], line, sizeof line, true, REQUEST_TIMEOUT_S) ||
            strncmp(line, "HTTP/1.1 100 ", 13) != 0)
            fail_msg("request %d: no 100 Continue: '%s'", i + 1, line);
    }
    uint8_t px[PIXELS] = {0};
    reply *r = post(px, PIXELS);
    expect_error(r, 503, "server busy: 4 requests in flight", "a fourth connection");
    assert_string_equal(r->retry, "1");
    for (int i = 0; i < 3; i++) assert_true(still_open(held[i]));
    for (int i = 0; i < 3; i++) close(held[i]);
    /* The server sees the closes on its next turn: a few tries at most. */
    for (int tries = 0; (r = post(px, PIXELS))->code == 503 && tries < 50; tries++) {
        struct timespec ms20 = {0, 20000000L};
        nanosleep(&ms20, NULL);
    }
    expect_code(r, 200, "POST /predict once the others left");
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* Idle connections never fill the server: past --max-connections those
 * with no request in flight for a second are closed, oldest first, to make
 * room, so a real request is served, not told 503 or dropped. */
static void test_serve_idle_connections_make_room(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server_with(path, "--max-connections", "3");
    enum { IDLE = 8 };
    int idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        assert_true((idle[i] = raw_connect("127.0.0.2")) >= 0);
        if (i % 2) raw_send(idle[i], "GET /mod", 8); /* an unfinished request line */
    }
    /* Past the second a connection may wait for its first request. */
    struct timespec wait = {1, 500000000L};
    nanosleep(&wait, NULL);
    uint8_t px[PIXELS];
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 0 : 255;
    check_prediction(m, px, "7");
    /* The oldest were closed for the newer ones: at most 3 are left. */
    int left = 0;
    for (int i = 0; i < IDLE; i++) {
        char buf[64];
        left += !raw_read_to_close(idle[i], buf, sizeof buf, i < IDLE - 3 ? 5.0 : 0.2);
        close(idle[i]);
    }
    assert_true(left <= 3);
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* A flood of refused connections does not flood stderr: at most 10 lines
 * a second, then one line counting the rest. */
static void test_serve_log_is_rate_limited(void **state) {
    (void)state;
    char path[600];
    cg_model_free(make_model(path, sizeof path));
    start_server_with(path, "--per-ip", "1");
    double t0 = now_s();
    int first = raw_connect("127.0.0.2");
    assert_true(first >= 0);
    enum { FLOOD = 300 };
    for (int i = 0; i < FLOOD; i++) {
        int s = raw_connect("127.0.0.2"); /* refused by the server: a log line each */
        if (s >= 0) {
            char buf[16];
            raw_read_to_close(s, buf, sizeof buf, 5.0);
            close(s);
        }
    }
    close(first);
    assert_int_equal(stop_server(SIGTERM), 0);
    double took = now_s() - t0;
    char *err = read_file_text(server_err);
    int lines = count_lines(err);
    /* 10 a second, over the seconds the flood spanned (counting the
     * partial ones at both ends), and the line saying it stopped. */
    int most = 10 * ((int)took + 2) + 1;
    if (lines > most)
        fail_msg("%d lines of stderr in %.1f s (at most %d):\n%s", lines, took, most, err);
    if (took < 5.0 && !strstr(err, " messages suppressed (more than 10 a second)"))
        fail_msg("no 'messages suppressed' line after %d refusals:\n%s", FLOOD, err);
    free(err);
}

/* Ambiguous requests are refused (400), and only exact paths are pages. */
static void test_serve_strict_requests(void **state) {
    (void)state;
    char path[600];
    cg_model_free(make_model(path, sizeof path));
    start_server(path);
    uint8_t px[PIXELS] = {0};
    struct {
        const char *text;
        bool body;
        const char *status, *needle;
    } cases[] = {
        {"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\nContent-Length: 10\r\n\r\n",
         true, "400", "more than one Content-Length"},
        {"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\nContent-Length: 784\r\n\r\n",
         true, "400", "more than one Content-Length"},
        {"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         true, "400", "both Content-Length and Transfer-Encoding"},
        {"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false,
         "400", "other than chunked"},
        {"GET /model%00 HTTP/1.1\r\nHost: x\r\n\r\n", false, "400", "%-escapes"},
        {"GET /model%00.html HTTP/1.1\r\nHost: x\r\n\r\n", false, "400", "%-escapes"},
        {"GET /%2fmodel HTTP/1.1\r\nHost: x\r\n\r\n", false, "400", "%-escapes"},
        {"GET /%6dodel HTTP/1.1\r\nHost: x\r\n\r\n", false, "400", "%-escapes"},
        {"GET //model HTTP/1.1\r\nHost: x\r\n\r\n", false, "404", "no such page"},
        {"GET /model/ HTTP/1.1\r\nHost: x\r\n\r\n", false, "404", "no such page"},
        {"GET /model?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", false, "400", "query string"},
        {"POST /predict? HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n\r\n", true, "400",
         "query string"},
        {"POST /predict/ HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n\r\n", true, "404",
         "no such page"},
        {"GET /model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, "200",
         "\"kind\":\"linear\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *a = raw_request(cases[i].text, px, cases[i].body ? PIXELS : 0);
        char status[16];
        snprintf(status, sizeof status, "HTTP/1.1 %s ", cases[i].status);
        if (strncmp(a, status, strlen(status)) != 0 || !strstr(a, cases[i].needle))
            fail_msg("case %zu: expected %s with '%s', got:\n%s", i, cases[i].status,
                     cases[i].needle, a);
    }
    assert_int_equal(stop_server(SIGTERM), 0);
}

/* GET /healthz: status, model kind, uptime, requests answered. */
static void test_serve_healthz(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    start_server(path);
    reply *r = request("GET", "/healthz", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "GET /healthz");
    char buf[64];
    assert_string_equal(json_str(r->body, "status", buf, sizeof buf), "ok");
    assert_string_equal(json_str(r->body, "kind", buf, sizeof buf), "linear");
    double uptime = json_num(r->body, "uptime_s");
    assert_true(uptime >= 0.0 && uptime < 600.0);
    assert_true(json_num(r->body, "requests") == 0.0);
    uint8_t px[PIXELS] = {0};
    for (int i = 0; i < 3; i++) check_prediction(m, px, "3");
    r = request("GET", "/healthz", NULL, 0, NULL, PLAIN);
    /* The first /healthz and three predictions. */
    assert_true(json_num(r->body, "requests") == 4.0);
    /* GETs keep the connection alive, as POSTs do (a supervisor polls). */
    assert_int_equal(r->connects, 0);
    r = request("GET", "/", NULL, 0, NULL, PLAIN);
    expect_code(r, 200, "GET / after /healthz");
    assert_int_equal(r->connects, 0);
    r = request("GET", "/model", NULL, 0, NULL, PLAIN);
    assert_int_equal(r->connects, 0);
    r = request("POST", "/healthz", px, PIXELS, "application/octet-stream", PLAIN);
    expect_error(r, 405, "not POST", "POST /healthz");
    assert_string_equal(r->allow, "GET, HEAD");
    assert_int_equal(stop_server(SIGTERM), 0);
    cg_model_free(m);
}

/* SIGTERM: no new connections, the request in flight is answered, then
 * exit 0 with a line; a second signal stops at once, unfinished or not. */
static void test_serve_graceful_stop(void **state) {
    (void)state;
    char path[600];
    cg_model *m = make_model(path, sizeof path);
    uint8_t px[PIXELS];
    for (int i = 0; i < PIXELS; i++) px[i] = i % 28 < 14 ? 0 : 255;
    static const char head[] = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 784\r\n\r\n";

    start_server(path);
    int s = raw_connect("127.0.0.1");
    assert_true(s >= 0);
    raw_send(s, head, sizeof head - 1);
    raw_send(s, px, 100);
    struct timespec ms100 = {0, 100000000L};
    nanosleep(&ms100, NULL);
    assert_int_equal(kill(server_pid, SIGTERM), 0);
    /* New connections are refused (once the signal is handled). */
    double end = now_s() + 5.0;
    int other;
    while ((other = raw_connect("127.0.0.1")) >= 0 && now_s() < end) {
        close(other);
        nanosleep(&ms100, NULL);
    }
    if (other >= 0) fail_msg("still accepting connections 5 s after SIGTERM");
    raw_send(s, px + 100, PIXELS - 100);
    char answer[4096];
    assert_true(raw_read_to_close(s, answer, sizeof answer, REQUEST_TIMEOUT_S));
    close(s);
    if (strncmp(answer, "HTTP/1.1 200 ", 13) != 0 || !strstr(answer, "\"class\":\"7\"") ||
        !strstr(answer, "Connection: close"))
        fail_msg("the request in flight got:\n%s", answer);
    assert_int_equal(wait_exit(server_pid, EXIT_TIMEOUT_S, "cgrad serve after SIGTERM"), 0);
    server_pid = -1;
    char *err = read_file_text(server_err);
    assert_string_equal(err,
                        "cgrad serve: stopped on SIGTERM; requests served: 1, unfinished: 0\n");
    free(err);
    close(server_out);
    server_out = -1;

    /* A request that never finishes: a second SIGTERM ends the wait. */
    start_server(path);
    s = raw_connect("127.0.0.1");
    assert_true(s >= 0);
    raw_send(s, head, sizeof head - 1);
    nanosleep(&ms100, NULL);
    assert_int_equal(kill(server_pid, SIGTERM), 0);
    nanosleep(&ms100, NULL);
    assert_true(still_open(s));
    assert_int_equal(stop_server(SIGTERM), 0);
    err = read_file_text(server_err);
    assert_string_equal(err,
                        "cgrad serve: stopped on SIGTERM; requests served: 0, unfinished: 1\n");
    free(err);
    close(s);
    cg_model_free(m);
}

/* The first n PNG names of dir, sorted, as full paths in out[]. */
static int first_pngs(const char *dir, char out[][700], int n) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    char names[64][256];
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || len >= 256 || strcmp(e->d_name + len - 4, ".png") != 0) continue;
        /* Keep the n smallest names seen so far (insertion into a sorted list). */
        int at = count < n ? count : n;
        while (at > 0 && strcmp(names[at - 1], e->d_name) > 0) at--;
        if (at >= n) continue;
        int last = count < n ? count : n - 1;
        memmove(names[at + 1], names[at], (size_t)(last - at) * sizeof names[0]);
        snprintf(names[at], sizeof names[0], "%s", e->d_name);
        if (count < n) count++;
    }
    closedir(d);
    assert_true(strlen(dir) < 400); /* so that "%.400s/%.255s" cuts nothing */
    for (int i = 0; i < count; i++) snprintf(out[i], 700, "%.400s/%.255s", dir, names[i]);
    return count;
}

/* A linear model trained by `cgrad train` on the real 3s and 7s: the
 * server calls real validation digits what `cgrad predict` calls them. */
static void test_serve_real_digits(void **state) {
    (void)state;
    const char *data = cg_test_data_dir();
    if (!data) skip();
    char root[600], model[700];
    snprintf(root, sizeof root, "%s/mnist_sample", data);
    snprintf(model, sizeof model, "%s/lin.cgm", cg_test_tmpdir());
    const char *train[] = {"train", "--model", "linear", "--data", root, "--seed", "1",
                           "--epochs", "5", "--quiet", "--save", model, NULL};
    char *err = NULL;
    int st = run_to_exit(train, &err);
    if (st != 0) fail_msg("cgrad train: exit %d\n%s", st, err);
    free(err);
    start_server(model);

    int right = 0, total = 0;
    for (int c = 0; c < 2; c++) {
        const char *digit = c ? "7" : "3";
        char dir[700], files[5][700];
        snprintf(dir, sizeof dir, "%s/valid/%s", root, digit);
        int n = first_pngs(dir, files, 5);
        assert_int_equal(n, 5);
        for (int i = 0; i < n; i++) {
            uint8_t *px = NULL;
            int64_t w = 0, h = 0;
            assert_int_equal(cg_png_read_gray(files[i], &px, &w, &h), CG_OK);
            assert_true(w == 28 && h == 28);
            reply *r = post(px, PIXELS);
            free(px);
            expect_code(r, 200, files[i]);
            char cls[64], prob[64];
            json_str(r->body, "class", cls, sizeof cls);
            json_raw(r->body, "probability", prob, sizeof prob);
            right += strcmp(cls, digit) == 0;
            total++;
            if (i == 0 && strcmp(cls, digit) != 0)
                fail_msg("%s: the server says %s (%s)", files[i], cls, r->body);

            /* `cgrad predict --json` on the PNG: the same class and digits. */
            char out_path[700];
            snprintf(out_path, sizeof out_path, "%s/predict.out", cg_test_tmpdir());
            int fd = -1;
            const char *pred[] = {"predict", model, files[i], "--json", NULL};
            char err_path[700];
            snprintf(err_path, sizeof err_path, "%s/predict.err", cg_test_tmpdir());
            pid_t pid = spawn(pred, &fd, err_path);
            char line[2048];
            bool done = read_until(fd, line, sizeof line, false, 60.0);
            close(fd);
            assert_int_equal(wait_exit(pid, 60.0, "cgrad predict"), 0);
            assert_true(done);
            char pcls[64], pprob[64];
            assert_string_equal(json_str(line, "class", pcls, sizeof pcls), cls);
            assert_string_equal(json_raw(line, "probability", pprob, sizeof pprob), prob);
        }
    }
    if (right < total - 1) fail_msg("only %d of %d real digits called right", right, total);
    assert_int_equal(stop_server(SIGTERM), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_serve_page, teardown),
    cmocka_unit_test_teardown(test_serve_predicts, teardown),
    cmocka_unit_test_teardown(test_serve_many_classes, teardown),
    cmocka_unit_test_teardown(test_serve_rejects_bad_requests, teardown),
    cmocka_unit_test_teardown(test_serve_sigint, teardown),
    cmocka_unit_test_teardown(test_serve_usage_and_failures, teardown),
    cmocka_unit_test_teardown(test_serve_real_digits, teardown),
    cmocka_unit_test_teardown(test_serve_idle_clients_lock_nobody_out, teardown),
    cmocka_unit_test_teardown(test_serve_slow_sender_deadline, teardown),
    cmocka_unit_test_teardown(test_serve_busy_answers_503, teardown),
    cmocka_unit_test_teardown(test_serve_idle_connections_make_room, teardown),
    cmocka_unit_test_teardown(test_serve_log_is_rate_limited, teardown),
    cmocka_unit_test_teardown(test_serve_strict_requests, teardown),
    cmocka_unit_test_teardown(test_serve_healthz, teardown),
    cmocka_unit_test_teardown(test_serve_graceful_stop, teardown),
};

static int group_setup(void **state) {
    (void)state;
    /* The test talks to its own child only; SIGPIPE would end it if the
     * server hung up while a body was being sent. */
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void) {
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
