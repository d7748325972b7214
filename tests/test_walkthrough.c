/*
 * test_walkthrough.c - the narrated article and the examples, run as a user
 * runs them: the built `cgrad walkthrough`, `cgrad show` and
 * `example_article` programs (from $CGRAD_TEST_BUILD), with their printed
 * values checked against the article's and against what follows from the
 * data. The real-data checks need $CGRAD_DATA; without it they skip.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct run_result {
    char *out; /* stdout and stderr together, NUL-terminated */
    size_t len;
    int status; /* the exit code, or -1 if it did not exit normally */
} run_result;

/* Runs a shell command line, capturing its output. */
static run_result run_cmd(const char *cmdline) {
    run_result r = {0};
    FILE *p = popen(cmdline, "r");
    assert_non_null(p);
    size_t cap = 1 << 16;
    r.out = malloc(cap);
    assert_non_null(r.out);
    size_t got;
    while ((got = fread(r.out + r.len, 1, cap - r.len - 1, p)) > 0) {
        r.len += got;
        if (cap - r.len - 1 == 0) {
            cap *= 2;
            r.out = realloc(r.out, cap);
            assert_non_null(r.out);
        }
    }
    r.out[r.len] = '\0';
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

/* The build folder, or NULL (the test is skipped). */
static const char *build_dir(void) {
    const char *b = getenv("CGRAD_TEST_BUILD");
    if (!b || !*b) printf("skipped: CGRAD_TEST_BUILD is not set (ctest sets it)\n");
    return (b && *b) ? b : NULL;
}

static void assert_has(const run_result *r, const char *needle) {
    if (!strstr(r->out, needle)) fail_msg("output lacks \"%s\"; it was:\n%s", needle, r->out);
}

/* The line after the n-th (from 0) line that is exactly `prompt`, past
 * the cell's "... " continuation lines: what the cell printed. */
static const char *after_prompt(const run_result *r, const char *prompt, int nth) {
    const char *p = r->out;
    for (;;) {
        p = strstr(p, prompt);
        if (!p) fail_msg("no \"%s\" #%d in the output:\n%s", prompt, nth, r->out);
        bool whole = (p == r->out || p[-1] == '\n') && p[strlen(prompt)] == '\n';
        if (whole && nth-- == 0) break;
        p += strlen(prompt);
    }
    /* skip the prompt's own line and any "... " continuation lines */
    do {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    } while (strncmp(p, "... ", 4) == 0);
    return p;
}

/* A whole line as a string (in buf). */
static const char *line_at(const char *p, char *buf, size_t size) {
    size_t n = strcspn(p, "\n");
    if (n >= size) n = size - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* The value after "final accuracy: ". */
static double final_accuracy(const run_result *r) {
    const char *p = strstr(r->out, "final accuracy: ");
    if (!p) fail_msg("no final accuracy in:\n%s", r->out);
    return strtod(p + strlen("final accuracy: "), NULL);
}

/* Parses "tensor([ 3, 12, ...])" groups from a line: batch sizes into
 * sizes[], items into items[]; returns the batch count. */
static int parse_batches(const char *line, int *sizes, int max_batches, int *items, int max_items) {
    int nb = 0, ni = 0;
    const char *p = line;
    while ((p = strstr(p, "tensor([")) && *p && p < line + strcspn(line, "\n") + 1) {
        p += strlen("tensor([");
        assert_true(nb < max_batches);
        sizes[nb] = 0;
        while (*p && *p != ']') {
            char *end;
            long v = strtol(p, &end, 10);
            assert_true(end != p);
            assert_true(ni < max_items);
            items[ni++] = (int)v;
            sizes[nb]++;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
        nb++;
    }
    return nb;
}

/* Each of 0..n-1 exactly once among items[0..count). */
static void assert_permutation(const int *items, int count, int n) {
    assert_int_equal(count, n);
    int seen[64] = {0};
    for (int i = 0; i < count; i++) {
        assert_true(items[i] >= 0 && items[i] < n);
        seen[items[i]]++;
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1);
}

/* ------------------------------------------------------------------ */

static void test_walkthrough_article_values(void **state) {
    (void)state;
    const char *b = build_dir(), *d = cg_test_data_dir();
    if (!b || !d) skip();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/cgrad' walkthrough --data '%s/mnist_sample' --ascii 2>&1", b, d);
    run_result r = run_cmd(cmd);
    if (r.status != 0) fail_msg("walkthrough exited %d:\n%s", r.status, r.out);

    /* the article's shapes */
    assert_has(&r, "torch.Size([12396, 784]) torch.Size([12396, 1])");
    assert_has(&r, "(torch.Size([6131, 28, 28]), torch.Size([6265, 28, 28]))");
    assert_has(&r, "(torch.Size([2038, 784]), torch.Size([2038, 1]))");
    char line[512];
    assert_string_equal(line_at(after_prompt(&r, ">>> print(x.shape, y)", 0), line, sizeof line),
                        "torch.Size([784]) tensor([1])");
    assert_string_equal(line_at(after_prompt(&r, ">>> weights.shape", 0), line, sizeof line),
                        "torch.Size([784, 1])");

    /* dset[0] drawn in ASCII: 28 rows of 56 characters from the ramp, with ink */
    const char *pic = strstr(r.out, "# drawn with ASCII:\n");
    assert_non_null(pic);
    pic = strchr(pic, '\n') + 1;
    int ink = 0;
    for (int y = 0; y < 28; y++) {
        size_t n = strcspn(pic, "\n");
        assert_int_equal(n, 56);
        for (size_t i = 0; i < n; i++) {
            assert_non_null(strchr(" .:-=+*#%@", pic[i]));
            ink += pic[i] == '@';
        }
        pic += n + 1;
    }
    assert_true(ink > 20);

    /* one prediction two ways: elementwise-and-sum equals matmul */
    char by_sum[128], by_matmul[128];
    line_at(after_prompt(&r, ">>> (train_x[0]*weights.T).sum() + bias", 0), by_sum, sizeof by_sum);
    line_at(after_prompt(&r, ">>> train_x[0]@weights + bias", 0), by_matmul, sizeof by_matmul);
    double p_sum = strtod(strstr(by_sum, "tensor([") + 8, NULL);
    double p_mm = strtod(strstr(by_matmul, "tensor([") + 8, NULL);
    cg_assert_close(p_sum, p_mm, 2e-4, 1e-5, "sum vs matmul prediction");
    assert_non_null(strstr(by_sum, "grad_fn="));

    /* preds for all 12396 rows, summarised as torch does */
    const char *preds = after_prompt(&r, ">>> preds", 0);
    assert_memory_equal(preds, "tensor([[", 9);
    assert_non_null(strstr(preds, "        ...,\n"));

    /* the random model is near chance; a nudged weight leaves it unchanged */
    double acc0 = strtod(after_prompt(&r, ">>> corrects.float().mean().item()", 0), NULL);
    assert_true(acc0 > 0.2 && acc0 < 0.8);
    double acc1 = strtod(after_prompt(&r, ">>> preds = linear1(train_x)", 1), NULL);
    cg_assert_close(acc1, acc0, 1e-3, 0, "accuracy after weights[0] *= 1.0001");

    /* the book's small mnist_loss example, by hand: where([1,0,1]==1, 1-p, p)
     * = [0.1, 0.4, 0.8], mean 1.3/3 = 0.4333; with p3 = 0.8: 0.7/3 = 0.2333.
     * With sigmoid: s(0.9) = 0.71095, s(0.4) = 0.59869, s(0.2) = 0.54983,
     * s(0.8) = 0.68997: (0.28905 + 0.59869 + 0.45017)/3 = 0.4460 and
     * (0.28905 + 0.59869 + 0.31003)/3 = 0.3993. */
    assert_string_equal(
        line_at(after_prompt(&r, ">>> torch.where(trgts==1, 1-prds, prds)", 0), line, sizeof line),
        "tensor([0.1000, 0.4000, 0.8000])");
    assert_string_equal(
        line_at(after_prompt(&r, ">>> mnist_loss(prds,trgts)", 0), line, sizeof line),
        "tensor(0.4333)");
    assert_string_equal(
        line_at(after_prompt(&r, ">>> mnist_loss(tensor([0.9, 0.4, 0.8]),trgts)", 0), line,
                sizeof line),
        "tensor(0.2333)");
    assert_string_equal(
        line_at(after_prompt(
                    &r, ">>> mnist_loss(prds,trgts), mnist_loss(tensor([0.9, 0.4, 0.8]),trgts)", 0),
                line, sizeof line),
        "(tensor(0.4460), tensor(0.3993))");
    /* sigmoid written out and built in agree: 1/(1+e^4) = 0.0180, 1/(1+e^2) = 0.1192 */
    char mine[128], builtin[128];
    line_at(after_prompt(&r, ">>> sigmoid(tensor([-4., -2., 0., 2., 4.]))", 0), mine, sizeof mine);
    line_at(after_prompt(&r, ">>> torch.sigmoid(tensor([-4., -2., 0., 2., 4.]))", 0), builtin,
            sizeof builtin);
    assert_string_equal(mine, "tensor([0.0180, 0.1192, 0.5000, 0.8808, 0.9820])");
    assert_string_equal(builtin, mine);

    /* gradients of one mini-batch, then one SGD step lowers that batch's loss */
    const char *g = after_prompt(
        &r, ">>> weights.grad.shape, weights.grad.mean(), weights.grad.abs().mean(), bias.grad", 0);
    assert_memory_equal(g, "(torch.Size([784, 1]), tensor(", 30);
    const char *step = strstr(r.out, "# loss ");
    assert_non_null(step);
    double before = strtod(step + 7, NULL);
    double after = strtod(strstr(step, "-> ") + 3, NULL);
    assert_true(after < before);

    /* range(15) in shuffled batches of 5: each of 0..14 once, in 3 batches of 5 */
    int sizes[8], items[64];
    int nb = parse_batches(after_prompt(&r, ">>> list(dl)", 0), sizes, 8, items, 64);
    assert_int_equal(nb, 3);
    for (int i = 0; i < nb; i++) assert_int_equal(sizes[i], 5);
    assert_permutation(items, 15, 15);
    bool shuffled = false;
    for (int i = 0; i < 15; i++) shuffled |= items[i] != i;
    assert_true(shuffled);

    /* the indexed alphabet in batches of 6: 6,6,6,6,2, letters matching indices */
    const char *alpha = after_prompt(&r, ">>> list(dl)", 1);
    int total = 0, na = 0;
    int letters_idx[64];
    for (const char *q = alpha; (q = strstr(q, "(tensor([")) != NULL; na++) {
        int sz[1], it[8];
        assert_int_equal(parse_batches(q + 1, sz, 1, it, 8), 1);
        assert_int_equal(sz[0], na < 4 ? 6 : 2);
        const char *t = strstr(q, "]), (");
        assert_non_null(t);
        t += 5;
        for (int i = 0; i < sz[0]; i++) {
            char expect[8];
            snprintf(expect, sizeof expect, "'%c'", 'a' + it[i]);
            assert_memory_equal(t, expect, 3);
            t += 3 + (i + 1 < sz[0] ? 2 : 0);
            letters_idx[total++] = it[i];
        }
        q = t;
        if (na == 4) break;
    }
    assert_int_equal(na, 4);
    assert_permutation(letters_idx, total, 26);

    /* training: one line per epoch, then the book's ~97% */
    for (int e = 1; e <= 20; e++) {
        char want[32];
        snprintf(want, sizeof want, "epoch %2d  train loss ", e);
        assert_has(&r, want);
    }
    double acc = final_accuracy(&r);
    if (!(acc >= 0.96)) fail_msg("final accuracy %.4f below 0.96:\n%s", acc, r.out);
    assert_true(acc <= 1.0);
    free(r.out);
}

/* Same seed, same output; another seed, other weights. */
static void test_walkthrough_deterministic(void **state) {
    (void)state;
    const char *b = build_dir(), *d = cg_test_data_dir();
    if (!b || !d) skip();
    char cmd[4096];
    const char *fmt =
        "'%s/cgrad' walkthrough --data '%s/mnist_sample' --ascii --epochs 1 --seed %d 2>&1";
    snprintf(cmd, sizeof cmd, fmt, b, d, 7);
    run_result r1 = run_cmd(cmd), r2 = run_cmd(cmd);
    snprintf(cmd, sizeof cmd, fmt, b, d, 8);
    run_result r3 = run_cmd(cmd);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r3.status, 0);
    assert_string_equal(r1.out, r2.out);
    char l1[128], l3[128];
    line_at(after_prompt(&r1, ">>> bias", 0), l1, sizeof l1);
    line_at(after_prompt(&r3, ">>> bias", 0), l3, sizeof l3);
    assert_memory_equal(l1, "tensor([", 8);
    assert_string_not_equal(l1, l3);
    free(r1.out);
    free(r2.out);
    free(r3.out);
}

static void test_walkthrough_missing_data(void **state) {
    (void)state;
    const char *b = build_dir();
    if (!b) skip();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/cgrad' walkthrough --data /nonexistent/cgrad-data 2>&1", b);
    run_result r = run_cmd(cmd);
    assert_int_equal(r.status, 1);
    assert_has(&r, "/nonexistent/cgrad-data");
    free(r.out);
    snprintf(cmd, sizeof cmd, "'%s/cgrad' walkthrough --epochs lots 2>&1", b);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 2);
    assert_has(&r, "--epochs");
    free(r.out);
}

/* `cgrad show` in ASCII draws each pixel v as the ramp's v*10/256-th
 * character, twice across: checked against the PNG's own pixels. */
static void test_show_draws_digit(void **state) {
    (void)state;
    const char *b = build_dir(), *d = cg_test_data_dir();
    if (!b || !d) skip();
    char png[2048], cmd[4096];
    snprintf(png, sizeof png, "%s/mnist_sample/train/7/10002.png", d);
    uint8_t *px = NULL;
    int64_t w, h;
    assert_int_equal(cg_png_read_gray(png, &px, &w, &h), CG_OK);
    assert_int_equal(w, 28);
    assert_int_equal(h, 28);

    snprintf(cmd, sizeof cmd, "'%s/cgrad' show '%s' --ascii 2>&1", b, png);
    run_result r = run_cmd(cmd);
    if (r.status != 0) fail_msg("show exited %d:\n%s", r.status, r.out);
    assert_has(&r, "28x28");
    const char *p = r.out;
    for (int y = 0; y < 28; y++) {
        for (int x = 0; x < 28; x++) {
            char c = " .:-=+*#%@"[px[y * 28 + x] * 10 / 256];
            if (p[2 * x] != c || p[2 * x + 1] != c)
                fail_msg("pixel (%d,%d) = %d drawn as '%c%c', expected '%c%c'", x, y,
                         px[y * 28 + x], p[2 * x], p[2 * x + 1], c, c);
        }
        assert_int_equal(p[56], '\n');
        p += 57;
    }
    free(r.out);

    /* the Unicode modes, forced since ctest's stdout is no terminal */
    snprintf(cmd, sizeof cmd, "CGRAD_TERM=shade '%s/cgrad' show '%s' 2>&1", b, png);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    assert_has(&r, "\xe2\x96\x88"); /* full block: the strokes' ink */
    free(r.out);
    snprintf(cmd, sizeof cmd, "CGRAD_TERM=truecolor '%s/cgrad' show '%s' 2>&1", b, png);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    assert_has(&r, "\xe2\x96\x80");           /* upper half block */
    assert_has(&r, ";2;255;255;255m"); /* white ink somewhere, top or bottom */
    free(r.out);
    snprintf(cmd, sizeof cmd, "CGRAD_TERM=shade '%s/cgrad' show '%s' --ascii 2>&1", b, png);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "\xe2\x96")); /* --ascii wins */
    free(r.out);
    free(px);
}

static void test_show_errors(void **state) {
    (void)state;
    const char *b = build_dir();
    if (!b) skip();
    char cmd[4096], path[512];
    snprintf(cmd, sizeof cmd, "'%s/cgrad' show /nonexistent/digit.png 2>&1", b);
    run_result r = run_cmd(cmd);
    assert_int_equal(r.status, 1);
    assert_has(&r, "cgrad show: ");
    assert_has(&r, "/nonexistent/digit.png");
    free(r.out);

    snprintf(path, sizeof path, "%s/not-a.png", cg_test_tmpdir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is text, not a PNG\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s/cgrad' show '%s' 2>&1", b, path);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 1);
    assert_has(&r, "cgrad show: ");
    assert_has(&r, path);
    free(r.out);
    remove(path);

    snprintf(cmd, sizeof cmd, "'%s/cgrad' show 2>&1", b);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 2);
    free(r.out);
}

static void test_example_article(void **state) {
    (void)state;
    const char *b = build_dir(), *d = cg_test_data_dir();
    if (!b || !d) skip();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/example_article' '%s/mnist_sample' 2>&1", b, d);
    run_result r = run_cmd(cmd);
    if (r.status != 0) fail_msg("example_article exited %d:\n%s", r.status, r.out);
    assert_has(&r, "torch.Size([12396, 784]) torch.Size([12396, 1])");
    assert_has(&r, "torch.Size([784]) tensor([1])");
    assert_has(&r, "weights.shape: torch.Size([784, 1])");
    assert_has(&r, "mnist_loss(prds,trgts): tensor(0.4333)");
    assert_has(&r, "mnist_loss(tensor([0.9, 0.4, 0.8]),trgts): tensor(0.2333)");
    assert_has(&r, "mnist_loss with sigmoid(prds,trgts): tensor(0.4460)");
    /* list(dl) of range(15): three batches of five, 0..14 once */
    const char *l = strstr(r.out, "list(dl):");
    assert_non_null(l);
    int items[16], n = 0, batches = 0;
    for (const char *p = l + 9; *p && *p != '\n'; p++) {
        if (*p == '[') batches++;
        if (*p >= '0' && *p <= '9') {
            char *end;
            assert_true(n < 16);
            items[n++] = (int)strtol(p, &end, 10);
            p = end - 1;
        }
    }
    assert_int_equal(batches, 3);
    assert_permutation(items, n, 15);
    double acc = final_accuracy(&r);
    if (!(acc >= 0.96)) fail_msg("final accuracy %.4f below 0.96:\n%s", acc, r.out);
    free(r.out);

    /* no data: a message and exit 0 */
    snprintf(cmd, sizeof cmd, "'%s/example_article' /nonexistent/mnist_sample 2>&1", b);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    assert_has(&r, "no MNIST_SAMPLE data");
    free(r.out);
}

/* A linear model whose weights are 0 answers by its bias alone:
 * sigmoid(+5) = 0.9933 for the first class, sigmoid(-5) for the second. */
static void save_bias_model(const char *path, float bias, int64_t n_inputs) {
    cg_model *m = cg_model_new(CG_MODEL_LINEAR, n_inputs, 0, 1, CG_INIT_NORMAL, 1.0f, NULL);
    assert_non_null(m);
    for (int64_t i = 0; i < m->params[0]->numel; i++) m->params[0]->data[i] = 0.0f;
    m->params[1]->data[0] = bias;
    m->n_classes = 2;
    snprintf(m->class_names[0], CG_CLASS_NAME_MAX, "3");
    snprintf(m->class_names[1], CG_CLASS_NAME_MAX, "7");
    assert_int_equal(cg_model_save(m, path), CG_OK);
    cg_model_free(m);
}

/* examples/train_mnist.c, the C API's ten-digit program: it trains and its
 * model is what `cgrad eval` scores the same. */
static void test_example_train_mnist_ten_classes(void **state) {
    (void)state;
    const char *b = build_dir(), *data = cg_test_data_dir();
    if (!b || !data) skip();
    char model[512], cmd[4096];
    snprintf(model, sizeof model, "%s/mnist.cgm", cg_test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s/example_train_mnist' '%s/mnist' '%s' 2>&1", b, data, model);
    run_result r = run_cmd(cmd);
    if (r.status != 0) fail_msg("example_train_mnist exited %d:\n%s", r.status, r.out);
    assert_has(&r, "Total params: 101,770");
    const char *acc = strstr(r.out, "accuracy ");
    assert_non_null(acc);
    double a = strtod(acc + 9, NULL);
    printf("example_train_mnist: accuracy %.4f\n", a);
    assert_true(a >= 0.975);
    free(r.out);
    snprintf(cmd, sizeof cmd, "CGRAD_DATA='%s' '%s/cgrad' eval '%s' --dataset mnist 2>&1", data, b,
             model);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "%.4f", a);
    assert_has(&r, want);
    free(r.out);
}

static void test_example_embed(void **state) {
    (void)state;
    const char *b = build_dir();
    if (!b) skip();
    const char *dir = cg_test_tmpdir();
    char png[512], model[512], cmd[4096];
    snprintf(png, sizeof png, "%s/digit.png", dir);
    snprintf(model, sizeof model, "%s/model.cgm", dir);
    uint8_t pixels[28 * 28];
    for (int i = 0; i < 28 * 28; i++) pixels[i] = (uint8_t)(i % 251);
    assert_int_equal(cg_png_write_gray(png, pixels, 28, 28), CG_OK);

    save_bias_model(model, 5.0f, 28 * 28);
    snprintf(cmd, sizeof cmd, "'%s/example_embed' '%s' '%s' 2>&1", b, model, png);
    run_result r = run_cmd(cmd);
    if (r.status != 0) fail_msg("example_embed exited %d:\n%s", r.status, r.out);
    assert_has(&r, ": 3 (probability 0.9933)");
    free(r.out);

    save_bias_model(model, -5.0f, 28 * 28);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 0);
    assert_has(&r, ": 7 (probability 0.9933)");
    free(r.out);

    /* a model for other images: refused, naming both sizes */
    save_bias_model(model, 5.0f, 10);
    r = run_cmd(cmd);
    assert_int_equal(r.status, 1);
    assert_has(&r, "784 pixels; the model takes 10");
    free(r.out);
    remove(model);
    remove(png);
    remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walkthrough_article_values),
        cmocka_unit_test(test_walkthrough_deterministic),
        cmocka_unit_test(test_walkthrough_missing_data),
        cmocka_unit_test(test_show_draws_digit),
        cmocka_unit_test(test_show_errors),
        cmocka_unit_test(test_example_article),
        cmocka_unit_test(test_example_embed),
        cmocka_unit_test(test_example_train_mnist_ten_classes),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
