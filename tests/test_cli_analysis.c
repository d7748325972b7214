/*
 * test_cli_analysis.c - `cgrad lr-find` and `cgrad interpret` end to end:
 * the built binary ($CGRAD_TEST_BUILD/cgrad) on MNIST_SAMPLE
 * ($CGRAD_DATA/mnist_sample; skipped without it). Their --json output is
 * checked to be well-formed JSON (a small validator below) with the keys
 * the README documents, and its figures against each other and `cgrad eval`.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Running the program                                                 */
/* ------------------------------------------------------------------ */

/* The shared runner (testutil.h), under this file's short names. */
typedef cg_test_run result;
#define data_root cg_test_sample_dir
#define run(...) cg_test_cgrad(0, __VA_ARGS__)
#define result_free cg_test_run_free
#define expect_status cg_test_expect_status

static const char *tmp(void) {
    static char dir[512];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    return dir;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_value(const char *p);

static const char *json_string(const char *p) {
    if (*p != '"') return NULL;
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i])) return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p) {
    const char *s = p;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (isdigit((unsigned char)*p))
        while (isdigit((unsigned char)*p)) p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        if (*++p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    return p > s ? p : NULL;
}

/* A container: items separated by commas until `close`; objects' items are
 * "key": value. */
static const char *json_items(const char *p, char close, bool object) {
    p = ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
        if (object) {
            if (!(p = json_string(p))) return NULL;
            p = ws(p);
            if (*p++ != ':') return NULL;
        }
        if (!(p = json_value(ws(p)))) return NULL;
        p = ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
        p = ws(p);
    }
}

static const char *json_value(const char *p) {
    p = ws(p);
    if (*p == '{') return json_items(p, '}', true);
    if (*p == '[') return json_items(p, ']', false);
    if (*p == '"') return json_string(p);
    for (const char *lit[] = {"true", "false", "null"}, **l = lit; l < lit + 3; l++)
        if (strncmp(p, *l, strlen(*l)) == 0) return p + strlen(*l);
    return json_number(p);
}

/* The whole text is one JSON value (and a newline). */
static void expect_json(const char *text, const char *what) {
    const char *end = json_value(text);
    if (!end || *ws(end) != '\0') fail_msg("%s: not well-formed JSON: %s", what, text);
}

/* The value of a top-level key of the object in text (NULL: absent). */
static const char *json_key(const char *text, const char *key) {
    const char *p = ws(text);
    assert_true(*p == '{');
    p = ws(p + 1);
    size_t klen = strlen(key);
    while (*p == '"') {
        const char *end = json_string(p);
        assert_non_null(end);
        bool match = (size_t)(end - p - 2) == klen && strncmp(p + 1, key, klen) == 0;
        p = ws(ws(end) + 1);
        if (match) return p;
        p = ws(json_value(p));
        if (*p == ',') p = ws(p + 1);
    }
    return NULL;
}

static double key_number(const char *text, const char *key) {
    const char *v = json_key(text, key);
    if (!v) fail_msg("no key \"%s\" in %s", key, text);
    return strtod(v, NULL);
}

/* The numbers of an array (flattening nested ones) into out; their count. */
static int64_t numbers(const char *v, double *out, int64_t cap) {
    assert_true(*v == '[');
    const char *end = json_value(v);
    int64_t n = 0;
    for (const char *p = v; p < end; p++) {
        if (*p == '-' || isdigit((unsigned char)*p)) {
            char *e;
            double x = strtod(p, &e);
            assert_true(n < cap);
            out[n++] = x;
            p = e - 1;
        } else if (*p == '"') {
            p = json_string(p) - 1; /* skip names: "3" is not a number here */
        }
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* lr-find                                                             */
/* ------------------------------------------------------------------ */

/* The article's linear model: JSON with the suggestions and the sweep,
 * exponential from 1e-7 over 100 batches, each suggestion one of its lrs
 * (minimum: a tenth of one), the same bytes on a second run. */
static void test_lr_find_json(void **state) {
    (void)state;
    const char *root = data_root();
    result r = run("lr-find --model linear --data '%s' --json", root);
    expect_status(&r, 0, "lr-find --json");
    expect_json(r.out, "lr-find --json");
    const char *keys[] = {"valley", "minimum", "steepest", "lrs", "losses", "n", "diverged"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_key(r.out, keys[i])) fail_msg("no \"%s\" in %s", keys[i], r.out);
    static double lrs[200], losses[200];
    int64_t n = numbers(json_key(r.out, "lrs"), lrs, 200);
    assert_int_equal(n, (int64_t)key_number(r.out, "n"));
    assert_int_equal(numbers(json_key(r.out, "losses"), losses, 200), n);
    assert_int_equal(n, 100); /* mnist_loss is bounded: it never blows up */
    for (int64_t i = 0; i < n; i++)
        cg_assert_close(lrs[i], 1e-7 * pow(1e8, (double)i / 100.0), 0, 1e-6, "lr");
    double valley = key_number(r.out, "valley"), minimum = key_number(r.out, "minimum"),
           steepest = key_number(r.out, "steepest");
    bool found[3] = {false};
    for (int64_t i = 0; i < n; i++) {
        found[0] |= lrs[i] == valley;
        found[1] |= lrs[i] / 10 == minimum || fabs(lrs[i] / 10 - minimum) < 1e-9 * minimum;
        found[2] |= lrs[i] == steepest;
    }
    assert_true(found[0] && found[1] && found[2]);
    printf("lr-find linear: valley %g, minimum %g, steepest %g\n", valley, minimum, steepest);
    assert_true(valley >= 0.01 && valley <= 10 && minimum >= 0.1 && minimum <= 10);
    result again = run("lr-find --model linear --data '%s' --json", root);
    expect_status(&again, 0, "lr-find again");
    assert_string_equal(r.out, again.out);
    result_free(&again);
    result_free(&r);
}

/* An mlp with Adam and cross-entropy blows up before 10: the sweep stops
 * early; the text names the three suggestions. */
static void test_lr_find_stops_and_prints(void **state) {
    (void)state;
    const char *root = data_root();
    result r = run("lr-find --model mlp --loss ce --data '%s' --json --num-it 120", root);
    expect_status(&r, 0, "lr-find mlp");
    expect_json(r.out, "lr-find mlp");
    assert_true(key_number(r.out, "n") < 120);
    assert_non_null(strstr(r.out, "\"diverged\":true"));
    result_free(&r);
    char png[600];
    snprintf(png, sizeof png, "%s/lr.png", tmp());
    r = run("lr-find --model mlp --loss ce --data '%s' --quiet --plot '%s'", root, png);
    expect_status(&r, 0, "lr-find text");
    for (const char *w[] = {"valley", "minimum", "steepest", "stopped"}, **p = w; p < w + 4; p++)
        if (!strstr(r.out, *p)) fail_msg("no \"%s\" in %s", *p, r.out);
    result_free(&r);
    int64_t w, h;
    cg_test_check_picture(png, &w, &h);
    assert_true(w == 640 && h == 480);
}

static void test_lr_find_usage(void **state) {
    (void)state;
    result r = run("lr-find --help");
    expect_status(&r, 0, "lr-find --help");
    for (const char *w[] = {"--model", "--arch", "--bs", "--opt", "--start-lr", "--end-lr",
                            "--num-it", "--json"},
                    **p = w;
         p < w + 8; p++)
        if (!strstr(r.out, *p)) fail_msg("lr-find --help lacks %s", *p);
    assert_null(strstr(r.out, "--epochs")); /* train's own */
    result_free(&r);
    /* No model, lrs the wrong way round, too few batches, train's own
     * option, two models, a picture that is not .png or .svg. */
    const char *bad[] = {"", "--model linear --start-lr 1 --end-lr 0.1",
                         "--model linear --num-it 3", "--model linear --epochs 3",
                         "--model linear --arch linear", "--model linear --plot lr.txt"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = run("lr-find %s", bad[i]);
        expect_status(&r, 2, bad[i]);
        if (!strstr(r.err, "cgrad lr-find:")) fail_msg("%s: says %s", bad[i], r.err);
        result_free(&r);
    }
}

/* ------------------------------------------------------------------ */
/* interpret                                                           */
/* ------------------------------------------------------------------ */

/* A model trained and saved, interpreted: the matrix's sum is the
 * validation set, its diagonal the count `cgrad eval` reports right; the
 * pairs are the matrix's cells; the top losses sorted. */
static void test_interpret_matches_eval(void **state) {
    (void)state;
    const char *root = data_root();
    char model[600];
    snprintf(model, sizeof model, "%s/lin.cgm", tmp());
    result r = run("train --model linear --epochs 3 --data '%s' --quiet --save '%s'", root, model);
    expect_status(&r, 0, "train");
    result_free(&r);
    result ev = run("eval '%s' --data '%s' --json", model, root);
    expect_status(&ev, 0, "eval");
    r = run("interpret '%s' --data '%s' --json --top 12", model, root);
    expect_status(&r, 0, "interpret --json");
    expect_json(r.out, "interpret --json");
    for (const char *k[] = {"classes", "confusion", "most_confused", "top_losses"}, **p = k;
         p < k + 4; p++)
        if (!json_key(r.out, *p)) fail_msg("no \"%s\" in %s", *p, r.out);
    assert_true(strncmp(json_key(r.out, "classes"), "[\"3\",\"7\"]", 9) == 0);
    double cm[4];
    assert_int_equal(numbers(json_key(r.out, "confusion"), cm, 4), 4);
    double n = key_number(ev.out, "n"), correct = key_number(ev.out, "correct");
    assert_true(cm[0] + cm[1] + cm[2] + cm[3] == n && n == 2038);
    assert_true(cm[0] + cm[3] == correct);
    assert_true(key_number(r.out, "accuracy") == key_number(ev.out, "accuracy"));
    printf("interpret: [[%g, %g], [%g, %g]], eval: %g/%g right\n", cm[0], cm[1], cm[2], cm[3],
           correct, n);
    /* most_confused: [["3","7",cm[1]], ["7","3",cm[2]]], most first. */
    double pairs[4];
    int64_t n_pairs = numbers(json_key(r.out, "most_confused"), pairs, 4);
    assert_int_equal(n_pairs, (cm[1] > 0) + (cm[2] > 0));
    if (n_pairs == 2) {
        assert_true(pairs[0] == fmax(cm[1], cm[2]) && pairs[1] == fmin(cm[1], cm[2]));
        const char *first = cm[1] >= cm[2] ? "[[\"3\",\"7\"," : "[[\"7\",\"3\",";
        assert_true(strncmp(json_key(r.out, "most_confused"), first, strlen(first)) == 0);
    }
    /* top_losses: 12 of {index, predicted, actual, loss, probability}, the
     * losses falling; mnist_loss of a wrong item is its probability. */
    const char *top = json_key(r.out, "top_losses");
    double prev = INFINITY;
    int items = 0;
    for (const char *p = strstr(top, "\"loss\":"); p; p = strstr(p + 1, "\"loss\":")) {
        double loss = strtod(p + 7, NULL);
        const char *pr = strstr(p, "\"probability\":");
        assert_non_null(pr);
        assert_true(loss <= prev && loss >= 0 && loss <= 1);
        prev = loss;
        items++;
    }
    assert_int_equal(items, 12);
    assert_non_null(strstr(top, "\"index\":"));
    assert_non_null(strstr(top, "\"predicted\":"));
    assert_non_null(strstr(top, "\"actual\":"));
    result_free(&r);
    result_free(&ev);

    char cm_png[600], top_png[600];
    snprintf(cm_png, sizeof cm_png, "%s/cm.png", tmp());
    snprintf(top_png, sizeof top_png, "%s/top.png", tmp());
    r = run("interpret '%s' --data '%s' --plot '%s' --plot-top-losses '%s'", model, root, cm_png,
            top_png);
    expect_status(&r, 0, "interpret");
    for (const char *w[] = {"confusion matrix", "most confused", "top 9 losses"}, **p = w;
         p < w + 3; p++)
        if (!strstr(r.out, *p)) fail_msg("no \"%s\" in %s", *p, r.out);
    result_free(&r);
    /* Two 80-pixel cells and labels; nine digits, three a row. */
    int64_t w, h;
    cg_test_check_picture(cm_png, &w, &h);
    assert_true(w >= 160 && w <= 160 + 200 && h >= 160 && h <= 160 + 200);
    cg_test_check_picture(top_png, &w, &h);
    assert_true(w >= 3 * 112 && w < 4 * 112 + 100 && h >= 3 * 112 && h < 3 * 200 + 100);
}

static void test_interpret_usage(void **state) {
    (void)state;
    result r = run("interpret");
    expect_status(&r, 2, "interpret with no model");
    result_free(&r);
    r = run("interpret --help");
    expect_status(&r, 0, "interpret --help");
    assert_non_null(strstr(r.out, "--top"));
    result_free(&r);
    const char *root = data_root();
    r = run("interpret '%s/absent.cgm' --data '%s' --plot cm.jpg", tmp(), root);
    expect_status(&r, 2, "interpret --plot cm.jpg");
    assert_non_null(strstr(r.err, "cm.jpg"));
    result_free(&r);
    r = run("interpret '%s/absent.cgm' --data '%s'", tmp(), root);
    expect_status(&r, 1, "interpret a missing file");
    assert_non_null(strstr(r.err, "absent.cgm"));
    result_free(&r);
}

int main(void) {
    /* clang-format off: one per line, as tests/CMakeLists.txt reads them */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_find_json),
        cmocka_unit_test(test_lr_find_stops_and_prints),
        cmocka_unit_test(test_lr_find_usage),
        cmocka_unit_test(test_interpret_matches_eval),
        cmocka_unit_test(test_interpret_usage),
    };
    /* clang-format on */
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
