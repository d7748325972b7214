/* test_lazy.c - libraries loaded on first use (src/util/lazy.h): a table
 * filled from a real library, clear errors for a missing library and a
 * missing symbol (remembered, and told again to every caller), and the
 * point of it all: loading data does not map libcurl, libarchive,
 * libcrypto or libmicrohttpd into the process. */
#include "testutil.h"

#include "util/lazy.h"

#include <stdio.h>
#include <string.h>

/* zlib is linked into every cgrad program already, so it is there to load. */
#define ZLIB_FNS(X)                                             \
    X(version, zlibVersion, const char *, (void))               \
    X(crc32, crc32, unsigned long, (unsigned long, const unsigned char *, unsigned))
typedef struct zlib_fns {
    ZLIB_FNS(CG_LAZY_FIELD)
} zlib_fns;

static const char *const zlib_names[] = {ZLIB_FNS(CG_LAZY_NAME) NULL};

/* the first name is missing: the next one is tried */
static zlib_fns z;
static cg_lazy_lib z_lib =
    CG_LAZY_LIB("zlib1g", zlib_names, z, "libcgrad-no-such.so.1", "libz.so.1");

static void test_lazy_fills_the_table(void **state) {
    (void)state;
    cg_lazy_lib *lib = &z_lib;
    assert_int_equal(cg_lazy_load(lib, "test"), CG_OK);
    assert_non_null(z.version);
    assert_true(z.version()[0] == '1');
    /* CRC-32 of "123456789" is the standard check value 0xCBF43926. */
    assert_int_equal(z.crc32(0, (const unsigned char *)"123456789", 9), 0xCBF43926ul);
    assert_int_equal(cg_lazy_load(lib, "test"), CG_OK); /* again: no reload */
}

/* Every name missing: the message names the first (the package's soname). */
static zlib_fns none;
static cg_lazy_lib none_lib = CG_LAZY_LIB("no-such-package", zlib_names, none,
                                          "libcgrad-no-such-library.so.9", "libcgrad-no-such.so");

static void test_lazy_missing_library(void **state) {
    (void)state;
    cg_lazy_lib *lib = &none_lib;
    for (int attempt = 0; attempt < 2; attempt++) {
        assert_int_equal(cg_lazy_load(lib, "fetch"), CG_ERR_IO);
        const char *msg = cg_last_error();
        assert_non_null(strstr(msg, "fetch: cannot load libcgrad-no-such-library.so.9"));
        assert_non_null(strstr(msg, "no-such-package"));
    }
    assert_null(none.version);
}

#define BAD_FNS(X) \
    X(version, zlibVersion, const char *, (void)) X(nothing, cgrad_no_such_function, int, (void))
CG_LAZY_TABLE(bad_fns, t, BAD_FNS, "zlib1g", "libz.so.1");

static void test_lazy_missing_symbol(void **state) {
    (void)state;
    assert_int_equal(cg_lazy_load(&t_lib, "serve"), CG_ERR_IO);
    assert_non_null(strstr(cg_last_error(), "libz.so.1 has no cgrad_no_such_function"));
    assert_null(t.nothing);
}

/* A table whose size does not match its list of names is refused, not
 * written past its end. */
static struct {
    const char *(*version)(void);
} one;
static const char *const two[] = {"zlibVersion", "crc32", NULL};
static cg_lazy_lib one_lib = CG_LAZY_LIB("zlib1g", two, one, "libz.so.1");

static void test_lazy_table_mismatch(void **state) {
    (void)state;
    assert_int_equal(cg_lazy_load(&one_lib, "test"), CG_ERR_ARG);
    assert_null(one.version);
}

/* Whether /proc/self/maps names a file whose name contains `part`. */
static bool mapped(const char *part) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, part) != NULL;
    fclose(f);
    return found;
}

static void test_lazy_not_loaded_by_training_work(void **state) {
    (void)state;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) skip();
    fclose(f);
    /* a model, a forward pass and a model file: all but fetch and serve */
    const char *path = "test_lazy_model.cgm";
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    cg_model *m = cg_model_new(CG_MODEL_MLP, 784, 30, 1, CG_INIT_PYTORCH, 0.0f, &rng);
    assert_non_null(m);
    cg_scope_begin();
    cg_tensor *x = cg_tensor_rand((int64_t[]){4, 784}, 2, &rng);
    assert_non_null(cg_model_forward(m, x));
    cg_scope_end();
    assert_int_equal(cg_model_save(m, path), CG_OK);
    cg_model_free(m);
    m = cg_model_load(path);
    assert_non_null(m);
    cg_model_free(m);
    remove(path);
    const char *libs[] = {"libcurl", "libarchive", "libcrypto", "libmicrohttpd", "libcairo"};
    for (int i = 0; i < 5; i++)
        if (mapped(libs[i]))
            fail_msg("%s is mapped though nothing downloaded, served or drew", libs[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_fills_the_table),
        cmocka_unit_test(test_lazy_missing_library),
        cmocka_unit_test(test_lazy_missing_symbol),
        cmocka_unit_test(test_lazy_table_mismatch),
        cmocka_unit_test(test_lazy_not_loaded_by_training_work),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
