/*
 * cmd_serve.c - `cgrad serve MODEL [--port N] [--host ADDR]`: a web page to
 * draw a digit on, and a saved model's verdict on each drawing.
 *
 *   GET  /         the page (cli/serve_page.h)
 *   GET  /model    {"kind":"linear","inputs":784,"classes":["3","7"]}
 *   GET  /healthz  {"status":"ok","kind":"linear","uptime_s":12.5,"requests":40}
 *                  for supervisors ("stopping", with 503, while it drains)
 *   POST /predict  the body is exactly 784 bytes (Content-Type
 *                  application/octet-stream, or none): a 28x28 image, row
 *                  after row, one byte per pixel, 0 = background .. 255 =
 *                  ink, as MNIST stores its digits. The answer is
 *                  {"class":"3","probability":0.97,"logit":3.47}, worked out
 *                  exactly as `cgrad predict` does for a PNG (pixel / 255;
 *                  sigmoid(logit) is the first class's probability).
 * Every error is JSON, {"error":"..."}: 400 a body of another size, an
 * ambiguous request (two Content-Lengths, or one beside Transfer-Encoding)
 * or a target with %-escapes or a query string; 404 an unknown path (paths
 * match exactly: no "/predict/", no "//model"); 405 a wrong method (with
 * the Allow header); 408 a request not in whole within --request-timeout;
 * 413 a body over 4 KiB; 415 another Content-Type; 503 "server busy" past
 * --max-connections (with Retry-After).
 *
 * One thread does everything: libmicrohttpd runs in "external select" mode,
 * driven by the pselect() loop below. That keeps cgrad's per-thread state
 * (grad mode, scopes, the buffer pool) on the main thread, so a request
 * needs no lock and everything is freed at exit. A prediction is one
 * 784-long dot product (or a small network), and MHD never blocks on a
 * slow client, so the thread only ever waits for the CPU; bench/README.md
 * ("Serving") has what that gives under load.
 *
 * Limits (what a client can hold, README "Reliability"): --per-ip
 * connections from one address (more are closed at once, by MHD);
 * --max-connections open at once, room made past that by closing those
 * with nothing in flight for SERVE_IDLE_GRACE_S (serve_conns.h), and when
 * every one has a request in flight, up to as many more accepted only to
 * be told 503 (past that MHD closes them); a deadline for each whole
 * request (serve_conns.h), which a client that trickles bytes cannot
 * stretch; stderr at most SERVE_LOG_PER_S lines a second (serve_log.h).
 *
 * Stopping: SIGINT and SIGTERM stay blocked except inside pselect, whose
 * mask lets them through. A signal therefore either interrupts pselect
 * (EINTR) or waits, pending, until the next one starts; none can slip in
 * between checking the flag and going to sleep. The first stops accepting
 * connections and lets the requests in flight finish (SERVE_DRAIN_S at
 * most; answers then say "Connection: close"); a second stops at once.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "cli/options.h"
#include "cli/serve_conns.h"
#include "cli/serve_log.h"
#include "cli/serve_page.h"
#include "util/lazy.h"

/* libmicrohttpd, loaded when the server starts (util/lazy.h): no other
 * command pays for loading it. */
#define MHD_FNS(X)                                                                          \
    X(start_daemon, MHD_start_daemon, struct MHD_Daemon *,                                  \
      (unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *, MHD_AccessHandlerCallback, \
       void *, ...))                                                                        \
    X(stop_daemon, MHD_stop_daemon, void, (struct MHD_Daemon *))                            \
    X(get_daemon_info, MHD_get_daemon_info, const union MHD_DaemonInfo *,                   \
      (struct MHD_Daemon *, enum MHD_DaemonInfoType, ...))                                  \
    X(get_fdset2, MHD_get_fdset2, enum MHD_Result,                                          \
      (struct MHD_Daemon *, fd_set *, fd_set *, fd_set *, MHD_socket *, unsigned int))      \
    X(get_timeout, MHD_get_timeout, enum MHD_Result,                                        \
      (struct MHD_Daemon *, MHD_UNSIGNED_LONG_LONG *))                                      \
    X(run_from_select, MHD_run_from_select, enum MHD_Result,                                \
      (struct MHD_Daemon *, const fd_set *, const fd_set *, const fd_set *))                \
    X(lookup_connection_value, MHD_lookup_connection_value, const char *,                   \
      (struct MHD_Connection *, enum MHD_ValueKind, const char *))                          \
    X(queue_response, MHD_queue_response, enum MHD_Result,                                  \
      (struct MHD_Connection *, unsigned int, struct MHD_Response *))                       \
    X(create_response_from_buffer, MHD_create_response_from_buffer, struct MHD_Response *,  \
      (size_t, void *, enum MHD_ResponseMemoryMode))                                        \
    X(destroy_response, MHD_destroy_response, void, (struct MHD_Response *))                \
    X(add_response_header, MHD_add_response_header, enum MHD_Result,                        \
      (struct MHD_Response *, const char *, const char *))                                  \
    X(quiesce_daemon, MHD_quiesce_daemon, MHD_socket, (struct MHD_Daemon *))                \
    X(get_connection_info, MHD_get_connection_info, const union MHD_ConnectionInfo *,       \
      (struct MHD_Connection *, enum MHD_ConnectionInfoType, ...))                          \
    X(get_connection_values, MHD_get_connection_values, int,                                \
      (struct MHD_Connection *, enum MHD_ValueKind, MHD_KeyValueIterator, void *))
CG_LAZY_TABLE(mhd_fns, mhd, MHD_FNS, "libmicrohttpd12", "libmicrohttpd.so.12", "libmicrohttpd.so");

static const char SERVE_USAGE[] =
    "usage: cgrad serve MODEL [--port N] [--host ADDR] [--per-ip N]\n"
    "                   [--max-connections N] [--request-timeout S]\n"
    "  Serves a page where you draw a digit with the mouse (or a finger) and\n"
    "  see what the model saved by 'cgrad train --save' calls it.\n"
    "  API: POST /predict with a 784-byte body (a 28x28 image, one byte per\n"
    "  pixel, 0 = background, 255 = ink, row after row) answers\n"
    "  {\"class\":\"3\",\"probability\":0.97,\"probabilities\":{...}};\n"
    "  GET /healthz answers {\"status\":\"ok\",...} for supervisors.\n"
    "  Stops on Ctrl-C (SIGINT) or SIGTERM once the requests in flight are\n"
    "  answered (at most 5 s; a second signal stops it at once).\n";

#define SERVE_SIDE 28
#define SERVE_PIXELS (SERVE_SIDE * SERVE_SIDE)
/* The largest body answered with anything but 413. */
#define SERVE_MAX_BODY 4096
/*
 * A body over SERVE_MAX_BODY but not over this is still read to its end
 * (and dropped) before the 413 goes out. Answering and hanging up while the
 * client is still sending would be quicker, but then the client's TCP stack
 * gets a reset, which may discard the answer before the client reads it. A
 * bigger declared Content-Length is refused at once (a client that sent
 * "Expect: 100-continue", as curl does for big bodies, has sent nothing
 * yet); a bigger chunked body has its connection cut.
 */
#define SERVE_MAX_DISCARD (1 << 20)
/* Past --max-connections, a connection with nothing in flight for this
 * long is closed to make room (serve_conns.h). Long enough for a client's
 * next request to arrive on a connection it just opened or was answered on. */
#define SERVE_IDLE_GRACE_S 1.0
/* Seconds the requests in flight get to finish after SIGTERM or SIGINT. */
#define SERVE_DRAIN_S 5.0

/* One request past its headers: a POST /predict being received, or a GET
 * page to answer once the request is in. */
typedef struct upload {
    int page;                  /* 1 + its index in PAGES; 0 for /predict */
    size_t len;                /* bytes received, of which the first ... */
    uint8_t px[SERVE_PIXELS];  /* ... SERVE_PIXELS are kept             */
} upload;

/* The server: one per process, as the signals that stop it are. */
static struct {
    cg_model *model;
    serve_conns conns;
    int max_connections; /* open at once (idle ones make room); then 503 */
    double started;      /* cg_serve_now() at the start, for the uptime */
    long served;         /* requests answered in full */
    bool stopping;       /* a stop signal came: draining */
} srv;

static volatile sig_atomic_t stop_signal, stop_signals;

static void on_stop(int sig) {
    stop_signal = sig;
    stop_signals = stop_signals + 1;
}

/* The connection's state (serve_conns.h); NULL if it could not be made. */
static serve_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *info =
        mhd.get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* Queues r (and stops the connection's request clock). A 503, and every
 * answer while the server drains, closes the connection after it. */
static enum MHD_Result send_response(struct MHD_Connection *c, unsigned int code,
                                     struct MHD_Response *r, const char *type, const char *allow) {
    if (!r) return MHD_NO;
    bool busy = code == MHD_HTTP_SERVICE_UNAVAILABLE;
    enum MHD_Result ok =
        mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) &&
        mhd.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") &&
        mhd.add_response_header(r, "X-Content-Type-Options", "nosniff") &&
        (!allow || mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow)) &&
        (!busy || mhd.add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1")) &&
        (!(busy || srv.stopping) || mhd.add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close"))
            ? mhd.queue_response(c, code, r)
            : MHD_NO;
    mhd.destroy_response(r);
    serve_conn *sc = conn_of(c);
    if (ok == MHD_YES && sc) cg_serve_conn_answering(sc);
    return ok;
}

/* Sends the JSON written to f, a stream from open_memstream(buf, len). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned int code, FILE *f, char **buf,
                                 size_t *len, const char *allow) {
    if (fclose(f) != 0) {
        free(*buf);
        return MHD_NO;
    }
    /* MUST_FREE: MHD free()s the buffer with the response. */
    struct MHD_Response *r = mhd.create_response_from_buffer(*len, *buf, MHD_RESPMEM_MUST_FREE);
    if (!r) free(*buf);
    return send_response(c, code, r, "application/json", allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned int code, const char *allow,
                                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned int code, const char *allow,
                                  const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return MHD_NO;
    fputs("{\"error\":", f);
    cg_json_string(f, msg);
    fputs("}\n", f);
    return send_json(c, code, f, &buf, &len, allow);
}

static enum MHD_Result send_page(struct MHD_Connection *c) {
    struct MHD_Response *r = mhd.create_response_from_buffer(
        sizeof SERVE_PAGE - 1, (void *)SERVE_PAGE, MHD_RESPMEM_PERSISTENT);
    /* The page needs nothing from anywhere else; say so, so that nothing
     * injected into it could load or send anything either. */
    if (r && !mhd.add_response_header(r, "Content-Security-Policy",
                                      "default-src 'none'; script-src 'unsafe-inline'; "
                                      "style-src 'unsafe-inline'; connect-src 'self'; "
                                      "base-uri 'none'; form-action 'none'; "
                                      "frame-ancestors 'none'")) {
        mhd.destroy_response(r);
        return MHD_NO;
    }
    return send_response(c, MHD_HTTP_OK, r, "text/html; charset=utf-8", NULL);
}

static void json_classes(FILE *f, const cg_model *m) {
    fputc('[', f);
    for (int i = 0; i < m->n_classes; i++) {
        if (i) fputc(',', f);
        cg_json_string(f, m->class_names[i]);
    }
    fputc(']', f);
}

static enum MHD_Result send_model(struct MHD_Connection *c, const cg_model *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return MHD_NO;
    fputs("{\"kind\":", f);
    cg_json_string(f, m->name);
    fprintf(f, ",\"inputs\":%lld,\"classes\":", (long long)m->n_inputs);
    json_classes(f, m);
    fputs("}\n", f);
    return send_json(c, MHD_HTTP_OK, f, &buf, &len, NULL);
}

/* For supervisors: alive, what it serves, for how long, how much. */
static enum MHD_Result send_health(struct MHD_Connection *c, const cg_model *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return MHD_NO;
    fprintf(f, "{\"status\":\"%s\",\"kind\":", srv.stopping ? "stopping" : "ok");
    cg_json_string(f, m->name);
    fprintf(f, ",\"uptime_s\":%.1f,\"requests\":%ld}\n", cg_serve_now() - srv.started,
            srv.served);
    return send_json(c, srv.stopping ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, f, &buf, &len,
                     NULL);
}

/* ------------------------------------------------------------------ */
/* Predictions                                                         */
/* ------------------------------------------------------------------ */

/* The model's call on one image, exactly as `cgrad predict` makes it
 * (cg_model_classify), as JSON: the class, its probability, every class's
 * probability and, for a two-class model with one output, its logit. */
static enum MHD_Result send_prediction(struct MHD_Connection *c, cg_model *m, const uint8_t *px) {
    double probs[CG_MAX_CLASSES], logit = 0.0;
    int cls = cg_model_classify(m, px, probs, &logit);
    if (cls < 0)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s", cg_last_error());
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return MHD_NO;
    fputs("{\"class\":", f);
    cg_json_string(f, m->class_names[cls]);
    fputs(",\"probability\":", f);
    cg_json_number(f, probs[cls]);
    if (m->n_outputs == 1) {
        fputs(",\"logit\":", f);
        cg_json_number(f, logit);
    }
    fputs(",\"probabilities\":{", f);
    for (int k = 0; k < m->n_classes; k++) {
        if (k) fputc(',', f);
        cg_json_string(f, m->class_names[k]);
        fputc(':', f);
        cg_json_number(f, probs[k]);
    }
    fputs("}}\n", f);
    return send_json(c, MHD_HTTP_OK, f, &buf, &len, NULL);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* "application/octet-stream", any case, parameters allowed. */
static bool is_octet_stream(const char *type) {
    static const char want[] = "application/octet-stream";
    size_t n = sizeof want - 1;
    return strncasecmp(type, want, n) == 0 && (type[n] == '\0' || type[n] == ';' ||
                                               type[n] == ' ' || type[n] == '\t');
}

/* The headers that say where a body ends. */
typedef struct framing {
    int lengths;          /* Content-Length headers */
    int encodings;        /* Transfer-Encoding headers */
    const char *encoding; /* the last one's value */
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) f->lengths++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->encodings++;
        f->encoding = value;
    }
    return MHD_YES;
}

/*
 * Why the request's framing is ambiguous, or NULL. Two Content-Lengths, or
 * one beside Transfer-Encoding, are read one way by one server and another
 * way by the next (a proxy in front): the gap that request smuggling uses.
 * RFC 9112 (6.3) lets a server refuse them, and that is the only safe
 * answer; "chunked" is the only transfer coding understood.
 */
static const char *ambiguous(struct MHD_Connection *c) {
    framing f = {0, 0, NULL};
    mhd.get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.lengths > 1) return "more than one Content-Length header";
    if (f.lengths && f.encodings) return "both Content-Length and Transfer-Encoding";
    if (f.encodings > 1 || (f.encodings && strcasecmp(f.encoding, "chunked") != 0))
        return "a Transfer-Encoding other than chunked";
    return NULL;
}

/*
 * The target as sent (see no_unescape): every path is plain ASCII, so one
 * with %-escapes is refused rather than decoded (decoding is how "%00"
 * cut a path short and "%2fmodel" reached /model); none takes a query.
 */
static enum MHD_Result check_target(struct MHD_Connection *c, const char *url, bool query,
                                    bool *done) {
    *done = true;
    if (strchr(url, '%'))
        return send_error(c, MHD_HTTP_BAD_REQUEST, NULL,
                          "the path has %%-escapes; the paths are /, /model, /healthz and "
                          "/predict, as they are");
    if (query)
        return send_error(c, MHD_HTTP_BAD_REQUEST, NULL,
                          "no page takes a query string ('?...'); the paths are /, /model, "
                          "/healthz and /predict");
    *done = false;
    return MHD_YES;
}

/* The pages read with GET (or HEAD). */
static const char *const PAGES[] = {"/", "/model", "/healthz"};
#define N_PAGES 3

/* 1 + url's index in PAGES; 0 if it is none of them. */
static int page_of(const char *url) {
    for (int k = 0; k < N_PAGES; k++)
        if (strcmp(url, PAGES[k]) == 0) return k + 1;
    return 0;
}

static enum MHD_Result send_get_page(struct MHD_Connection *c, int page) {
    return page == 1 ? send_page(c) : page == 2 ? send_model(c, srv.model)
                                                : send_health(c, srv.model);
}

/*
 * MHD calls this once the headers are in (*req still NULL), once for each
 * piece of the body (*size > 0), and once at the end (*size == 0). A
 * response queued at the first call ends the request there: MHD drops any
 * body and closes the connection. That is how every error but a wrong body
 * is answered, and a body too big to read at all (see SERVE_MAX_DISCARD).
 * A GET page is answered at the end: answered earlier, its connection
 * would be closed too, and not kept alive for the next request.
 *
 * url is the path exactly as sent (no_unescape), without the query.
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **req) {
    (void)cls, (void)version;
    upload *u = *req;
    if (!u) {
        serve_conn *sc = conn_of(c);
        cg_serve_conns_shed_idle(&srv.conns, cg_serve_now());
        int live = cg_serve_conns_live(&srv.conns);
        if (live > srv.max_connections)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                              "server busy: %d requests in flight, it serves %d at once; "
                              "try again in a second",
                              live, srv.max_connections);
        const char *why = ambiguous(c);
        if (why) return send_error(c, MHD_HTTP_BAD_REQUEST, NULL, "ambiguous request: %s", why);
        bool done = false;
        enum MHD_Result ret = check_target(c, url, sc && sc->query, &done);
        if (done) return ret;
        bool get =
            strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        int page = page_of(url);
        if (page && !get)
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                              "%s is read with GET, not %s", page > 1 ? url : "the page", method);
        if (page) {
            if (!(u = calloc(1, sizeof *u))) return MHD_NO;
            u->page = page;
            *req = u;
            return MHD_YES;
        }
        if (strcmp(url, "/predict") != 0)
            return send_error(c, MHD_HTTP_NOT_FOUND, NULL,
                              "no such page: there are GET /, GET /model, GET /healthz and "
                              "POST /predict");
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST",
                              "/predict takes POST (with %d bytes), not %s", SERVE_PIXELS,
                              method);
        const char *type =
            mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (type && !is_octet_stream(type))
            return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                              "/predict takes application/octet-stream: %d bytes, one per pixel",
                              SERVE_PIXELS);
        /* MHD has already refused a malformed Content-Length. */
        const char *cl =
            mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > SERVE_MAX_DISCARD)
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                              "a body of %s bytes; /predict takes %d (at most %d)", cl,
                              SERVE_PIXELS, SERVE_MAX_BODY);
        if (!(u = calloc(1, sizeof *u))) return MHD_NO;
        *req = u;
        return MHD_YES;
    }
    if (*size > 0) {
        if (u->len < SERVE_PIXELS && !u->page) {
            size_t keep = SERVE_PIXELS - u->len < *size ? SERVE_PIXELS - u->len : *size;
            memcpy(u->px + u->len, data, keep);
        }
        u->len += *size;
        *size = 0;
        return u->len <= SERVE_MAX_DISCARD ? MHD_YES : MHD_NO;
    }
    if (u->page) return send_get_page(c, u->page); /* a body sent with GET is ignored */
    if (u->len > SERVE_MAX_BODY)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                          "a body of %zu bytes; /predict takes %d (at most %d)", u->len,
                          SERVE_PIXELS, SERVE_MAX_BODY);
    if (u->len != SERVE_PIXELS)
        return send_error(c, MHD_HTTP_BAD_REQUEST, NULL,
                          "/predict takes %d bytes (a %dx%d image, one byte per pixel, row after "
                          "row), got %zu",
                          SERVE_PIXELS, SERVE_SIDE, SERVE_SIDE, u->len);
    return send_prediction(c, srv.model, u->px);
}

static void request_done(void *cls, struct MHD_Connection *c, void **req,
                         enum MHD_RequestTerminationCode why) {
    (void)cls;
    free(*req);
    *req = NULL;
    if (why == MHD_REQUEST_TERMINATED_COMPLETED_OK) srv.served++;
    serve_conn *sc = conn_of(c);
    if (sc) cg_serve_conn_finished(sc, cg_serve_now());
}

/* A connection opens or closes: its state (serve_conns.h) is made or freed. */
static void connection_event(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode what) {
    (void)cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Out of memory: the connection is served, without a deadline. */
        *socket_context = info ? cg_serve_conn_open(&srv.conns, info->connect_fd, cg_serve_now())
                               : NULL;
    } else if (what == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        cg_serve_conn_close(&srv.conns, *socket_context);
        *socket_context = NULL;
    }
}

/* A request line is in (MHD's "URI log" hook, its first sight of a
 * request): the request is in flight, and its target (as sent) is noted. */
static void *request_line(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)cls;
    serve_conn *sc = conn_of(c);
    if (sc) cg_serve_conn_started(sc, uri);
    return NULL;
}

/* Leaves every %-escape as it is: the handler sees the path as sent. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls, (void)c;
    return strlen(s);
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    cg_serve_vlog(fmt, ap);
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

/* host (a numeric IPv4 or IPv6 address, or "localhost") and port as a
 * socket address. No name lookups: what is listened on is what was typed. */
static bool parse_host(const char *host, int port, struct sockaddr_storage *addr) {
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0) return false;
    bool ok = res->ai_addrlen <= sizeof *addr &&
              (res->ai_family == AF_INET || res->ai_family == AF_INET6);
    if (ok) {
        memset(addr, 0, sizeof *addr);
        memcpy(addr, res->ai_addr, res->ai_addrlen);
        if (res->ai_family == AF_INET)
            ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    return ok;
}

static bool is_loopback(const struct sockaddr_storage *addr) {
    if (addr->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) ||
           (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* The first stop signal: no new connections; the requests in flight get
 * until *drain_until. */
static void begin_stop(struct MHD_Daemon *d, double *drain_until) {
    srv.stopping = true;
    *drain_until = cg_serve_now() + SERVE_DRAIN_S;
    MHD_socket listener = mhd.quiesce_daemon(d);
    if (listener != MHD_INVALID_SOCKET) close(listener);
}

/*
 * Serves until a stop signal and then until the requests in flight are
 * answered (or the drain time is up, or a second signal came); false if the
 * event loop itself fails. *unfinished: requests in flight when it ended.
 */
static bool run_loop(struct MHD_Daemon *d, const sigset_t *wait_mask, int *unfinished) {
    double drain_until = 0.0;
    for (;;) {
        if (stop_signal && !srv.stopping) begin_stop(d, &drain_until);
        double now = cg_serve_now();
        double next_deadline = cg_serve_conns_sweep(&srv.conns, now);
        if (srv.stopping) {
            *unfinished = cg_serve_conns_in_flight(&srv.conns);
            if (*unfinished == 0 || now >= drain_until || stop_signals > 1) return true;
        }
        fd_set rs, ws, es;
        FD_ZERO(&rs);
        FD_ZERO(&ws);
        FD_ZERO(&es);
        MHD_socket max = 0;
        if (mhd.get_fdset2(d, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES) {
            cg_fail(CG_ERR_STATE, "serve: too many open connections to wait on");
            return false;
        }
        /* Sleep until MHD has work, a request's deadline or the drain's end. */
        MHD_UNSIGNED_LONG_LONG ms = 0;
        double wait_s = mhd.get_timeout(d, &ms) == MHD_YES ? (double)ms / 1000.0 : -1.0;
        if (next_deadline >= 0 && (wait_s < 0 || next_deadline < wait_s)) wait_s = next_deadline;
        if (srv.stopping && (wait_s < 0 || drain_until - now < wait_s)) wait_s = drain_until - now;
        struct timespec ts, *tsp = NULL;
        if (wait_s >= 0) {
            wait_s += 0.001; /* past the deadline, not just short of it */
            ts.tv_sec = (time_t)wait_s;
            ts.tv_nsec = (long)((wait_s - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        if (pselect(max + 1, &rs, &ws, &es, tsp, wait_mask) < 0) {
            if (errno == EINTR) continue;
            cg_fail(CG_ERR_IO, "serve: waiting for connections failed: %s", strerror(errno));
            return false;
        }
        mhd.run_from_select(d, &rs, &ws, &es);
    }
}

int cg_cmd_serve(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = NULL;
    int64_t port = 8000, per_ip = 64, max_conns = 256, timeout_s = 10;
    int n_pos = 0;
    cg_opt opts[] = {
        {"--port", CG_OPT_INT, &port, 0, 65535, NULL, false,
         "TCP port (default 8000; 0 picks a free one, printed)", NULL},
        {"--host", CG_OPT_STR, &host, 0, 0, NULL, false,
         "IP address to listen on (default 127.0.0.1: this machine\n"
         "only; ::1 for IPv6; 0.0.0.0 or :: opens it to the network,\n"
         "with no authentication)", "ADDR"},
        {"--per-ip", CG_OPT_INT, &per_ip, 1, 400, NULL, false,
         "connections one client address may hold (default 64; more\n"
         "are closed at once; behind a proxy, all come from its address)", NULL},
        {"--max-connections", CG_OPT_INT, &max_conns, 1, 400, NULL, false,
         "connections open at once (default 256): idle ones are closed\n"
         "to make room; when all are busy, as many again are answered\n"
         "503 \"server busy\", and any beyond closed", NULL},
        {"--request-timeout", CG_OPT_INT, &timeout_s, 1, 3600, NULL, false,
         "seconds a client has to send a whole request, headers and\n"
         "body, and that an idle connection is kept (default 10)", "S"},
    };
    int rc =
        cg_opts_parse("serve", SERVE_USAGE, argc, argv, opts, CG_NOPTS(opts), &path, 1, &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (n_pos != 1) return cg_usage_error("serve", "give the model file to serve");
    struct sockaddr_storage addr;
    if (!parse_host(host, (int)port, &addr))
        return cg_usage_error("serve",
                              "--host expects an IP address such as 127.0.0.1 or ::1, got '%s'",
                              host);

    /* A model of other inputs is refused from its header, unread. */
    cg_model *m = cg_model_load_for(path, SERVE_PIXELS);
    if (!m && cg_last_status() == CG_ERR_SHAPE) {
        char why[512];
        snprintf(why, sizeof why, "%s", cg_last_error());
        cg_fail(CG_ERR_SHAPE, "%s: the page sends gray %dx%d drawings", why, SERVE_SIDE,
                SERVE_SIDE);
    }
    if (!m || cg_cli_check_model(m, path, NULL) != CG_OK) {
        cg_model_free(m);
        return cg_cmd_fail("serve");
    }
    if (cg_lazy_load(&mhd_lib, "serve") != CG_OK) {
        cg_model_free(m);
        return cg_cmd_fail("serve");
    }

    /* SIGINT/SIGTERM: blocked from here on except inside pselect (see the
     * top of this file). Blocked before MHD starts, so no thread it might
     * make could take them instead. */
    sigset_t stops, old_mask, wait_mask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
    wait_mask = old_mask;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    struct sigaction sa = {0}, old_int, old_term, old_pipe;
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A client that hangs up mid-answer must not kill the server. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    stop_signal = stop_signals = 0;
    bool grad = cg_set_grad_enabled(false);
    memset(&srv, 0, sizeof srv);
    srv.model = m;
    srv.max_connections = (int)max_conns;
    srv.conns.deadline_s = (double)timeout_s;
    srv.conns.keep = (int)max_conns;
    srv.conns.idle_grace_s = SERVE_IDLE_GRACE_S;
    srv.started = cg_serve_now();

    /* MHD's connection limit is the hard one: up to max_conns more than
     * are served get a 503 rather than a silent close. Its timeout (idle,
     * restarted by every byte) only matters while an answer is sent; the
     * request's own deadline is serve_conns.h's, and comes first (MHD's,
     * were it due at the same time, would close with no 408). */
    bool v6 = addr.ss_family == AF_INET6;
    struct MHD_Daemon *d = mhd.start_daemon(
        MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), (uint16_t)port, NULL, NULL, handle, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, so it gets every message */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(2 * max_conns),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)timeout_s + 1,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, connection_event, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, request_line, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_END);
    if (!d) {
        cg_fail(CG_ERR_IO, "cannot listen on %s port %lld (see above)", host, (long long)port);
        rc = cg_cmd_fail("serve");
    } else {
        const union MHD_DaemonInfo *info = mhd.get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (info) port = info->port;
        if (!is_loopback(&addr))
            fprintf(stderr,
                    "cgrad serve: listening on %s, open to other machines; anyone who can "
                    "reach it can use it\n",
                    host);
        printf("serving http://%s%s%s:%lld/ (Ctrl-C to stop)\n", v6 ? "[" : "", host,
               v6 ? "]" : "", (long long)port);
        fflush(stdout);
        int unfinished = 0;
        rc = run_loop(d, &wait_mask, &unfinished) ? CG_EXIT_OK : cg_cmd_fail("serve");
        mhd.stop_daemon(d);
        cg_serve_conns_clear(&srv.conns);
        cg_serve_log_flush();
        if (rc == CG_EXIT_OK)
            fprintf(stderr, "cgrad serve: stopped on %s; requests served: %ld, unfinished: %d\n",
                    stop_signal == SIGINT ? "SIGINT" : "SIGTERM", srv.served, unfinished);
    }

    cg_set_grad_enabled(grad);
    /* Unblocked while on_stop is still the handler: a second Ctrl-C that
     * came in meanwhile only sets the flag again. */
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    cg_model_free(m);
    return rc;
}
