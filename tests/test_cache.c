/*
 * test_cache.c - cg_dataset_load_folder_cached: the cache gives the plain
 * loader's result bit for bit, is really read on a second load, follows
 * changes to the folder, survives corrupt files and unwritable folders;
 * and the CRC-32 that checks it.
 */
#include "testutil.h"
#include "util/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char *join(char *buf, const char *a, const char *b) {
    int n = snprintf(buf, 1024, "%s/%s", a, b);
    assert_true(n > 0 && n < 1024);
    return buf;
}

static void make_dir(const char *path) { assert_int_equal(mkdir(path, 0755), 0); }

/* A 4x3 image whose pixels depend on seed. */
static void write_img(const char *path, int seed) {
    uint8_t px[12];
    for (int i = 0; i < 12; i++) px[i] = (uint8_t)(seed * 37 + i * 19);
    if (cg_png_write_gray(path, px, 4, 3) != CG_OK) fail_msg("%s", cg_last_error());
}

/* ROOT/{seven,three}/<n>.png, three images each; *cache an empty folder. */
static const char *make_folder(char *cache) {
    static char root[1024];
    char d[1024], p[1024];
    const char *tmp = cg_test_tmpdir();
    join(root, tmp, "imgs");
    make_dir(root);
    join(cache, tmp, "cache");
    make_dir(cache);
    make_dir(join(d, root, "seven"));
    make_dir(join(d, root, "three"));
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d.png", i);
        write_img(join(p, join(d, root, "seven"), name), i);
        write_img(join(p, join(d, root, "three"), name), 10 + i);
    }
    return root;
}

static void assert_same(const cg_dataset *a, const cg_dataset *b) {
    assert_int_equal(a->n_classes, b->n_classes);
    assert_memory_equal(a->class_names, b->class_names, sizeof a->class_names);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->x->numel, b->x->numel);
    assert_int_equal(a->y->numel, b->y->numel);
    assert_memory_equal(a->x->data, b->x->data, (size_t)a->x->numel * sizeof(float));
    assert_memory_equal(a->y->data, b->y->data, (size_t)a->y->numel * sizeof(float));
    assert_memory_equal(a->pixels, b->pixels, (size_t)a->x->numel);
    cg_assert_batches_match(a);
}

static void load_cached(cg_dataset *ds, const char *root, const char *cache) {
    if (cg_dataset_load_folder_cached(ds, root, cache) != CG_OK) fail_msg("%s", cg_last_error());
}

/* The cache files in dir; the last one's path in *last. */
static int count_cache_files(const char *dir, char *last) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "images-", 7) == 0 && len == 7 + 16 + 6 &&
            strcmp(e->d_name + len - 6, ".cgimg") == 0) {
            n++;
            if (last) join(last, dir, e->d_name);
        } else if (e->d_name[0] != '.') {
            fail_msg("stray file %s in the cache folder", e->d_name);
        }
    }
    closedir(d);
    return n;
}

/* Replaces a file's bytes with junk of the same size, keeping its mtime:
 * its cache key does not change, but its PNG can no longer be decoded. */
static void trash_keeping_key(const char *path) {
    struct stat s;
    assert_int_equal(stat(path, &s), 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    for (off_t i = 0; i < s.st_size; i++) fputc('x', f);
    fclose(f);
    struct timespec t[2] = {s.st_atim, s.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void test_cache_written_then_read(void **state) {
    (void)state;
    char cache[1024], file[1024], p[1024];
    const char *root = make_folder(cache);
    cg_dataset ref, a, b;
    if (cg_dataset_load_folder(&ref, root) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(count_cache_files(cache, NULL), 0);
    load_cached(&a, root, cache);
    assert_same(&a, &ref);
    assert_int_equal(count_cache_files(cache, file), 1);
    struct stat s1, s2;
    assert_int_equal(stat(file, &s1), 0);

    /* With a PNG ruined (same size and mtime), only the cache can give the
     * original pixels: the plain loader now fails. */
    trash_keeping_key(join(p, root, "three/1.png"));
    cg_dataset bad;
    assert_int_not_equal(cg_dataset_load_folder(&bad, root), CG_OK);
    load_cached(&b, root, cache);
    assert_same(&b, &ref);
    assert_int_equal(stat(file, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino); /* not rewritten */
    assert_int_equal(count_cache_files(cache, NULL), 1);
    cg_dataset_free(&ref);
    cg_dataset_free(&a);
    cg_dataset_free(&b);
}

static void test_cache_key_follows_changes(void **state) {
    (void)state;
    char cache[1024], p[1024];
    const char *root = make_folder(cache);
    cg_dataset ds, ref;
    load_cached(&ds, root, cache);
    cg_dataset_free(&ds);
    assert_int_equal(count_cache_files(cache, NULL), 1);

    /* New contents, same name and size: new pixels, from a new cache file. */
    write_img(join(p, root, "seven/2.png"), 99);
    struct timespec t[2] = {{0, UTIME_OMIT}, {1000000000, 123}};
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
    load_cached(&ds, root, cache);
    assert_int_equal(cg_dataset_load_folder(&ref, root), CG_OK);
    assert_same(&ds, &ref);
    cg_dataset_free(&ds);
    cg_dataset_free(&ref);
    assert_int_equal(count_cache_files(cache, NULL), 2);

    /* Only the mtime changes (by 1 ns): another key. */
    t[1].tv_nsec = 124;
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
    load_cached(&ds, root, cache);
    cg_dataset_free(&ds);
    assert_int_equal(count_cache_files(cache, NULL), 3);

    /* An added file: another key, and the new image is there. */
    write_img(join(p, root, "three/3.png"), 42);
    load_cached(&ds, root, cache);
    assert_int_equal(ds.x->shape[0], 7);
    assert_int_equal(cg_dataset_load_folder(&ref, root), CG_OK);
    assert_same(&ds, &ref);
    cg_dataset_free(&ds);
    cg_dataset_free(&ref);
    assert_int_equal(count_cache_files(cache, NULL), 4);

    /* A removed file: another key again. */
    assert_int_equal(unlink(join(p, root, "seven/0.png")), 0);
    load_cached(&ds, root, cache);
    assert_int_equal(ds.x->shape[0], 6);
    assert_int_equal(cg_dataset_load_folder(&ref, root), CG_OK);
    assert_same(&ds, &ref);
    cg_dataset_free(&ds);
    cg_dataset_free(&ref);
    assert_int_equal(count_cache_files(cache, NULL), 5);
}

typedef enum {
    FLIP_MIDDLE,
    FLIP_COUNT,
    FLIP_CRC,
    TRUNCATE_HALF,
    TRUNCATE_HEADER,
    EMPTY,
    EXTRA_BYTE,
    N_DAMAGE
} damage;

static void apply(const char *file, damage d, const uint8_t *good, size_t len) {
    uint8_t *bytes = malloc(len + 1);
    assert_non_null(bytes);
    memcpy(bytes, good, len);
    size_t out = len;
    switch (d) {
    case FLIP_MIDDLE: bytes[len / 2] ^= 0x10; break;
    case FLIP_COUNT: bytes[16 + 6] ^= 0x40; break; /* n becomes huge */
    case FLIP_CRC: bytes[len - 1] ^= 1; break;
    case TRUNCATE_HALF: out = len / 2; break;
    case TRUNCATE_HEADER: out = 10; break;
    case EMPTY: out = 0; break;
    case EXTRA_BYTE: bytes[len] = 0; out = len + 1; break;
    default: break;
    }
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, out, f), out);
    fclose(f);
    free(bytes);
}

static void test_cache_corrupt_file_ignored(void **state) {
    (void)state;
    char cache[1024], file[1024];
    const char *root = make_folder(cache);
    cg_dataset ref, ds;
    if (cg_dataset_load_folder(&ref, root) != CG_OK) fail_msg("%s", cg_last_error());
    load_cached(&ds, root, cache);
    cg_dataset_free(&ds);
    assert_int_equal(count_cache_files(cache, file), 1);
    size_t len;
    uint8_t *good = cg_test_read_file(file, &len);
    assert_non_null(good);
    for (int d = 0; d < N_DAMAGE; d++) {
        apply(file, (damage)d, good, len);
        load_cached(&ds, root, cache);
        assert_same(&ds, &ref);
        assert_string_equal(cg_last_error(), ""); /* silent */
        cg_dataset_free(&ds);
        /* Rewritten whole. */
        size_t len2;
        uint8_t *again = cg_test_read_file(file, &len2);
        assert_non_null(again);
        assert_int_equal(len2, len);
        assert_memory_equal(again, good, len);
        free(again);
        assert_int_equal(count_cache_files(cache, NULL), 1);
    }
    free(good);
    cg_dataset_free(&ref);
}

static void test_cache_unwritable_or_null(void **state) {
    (void)state;
    char cache[1024], p[1024];
    const char *root = make_folder(cache);
    cg_dataset ref, ds;
    if (cg_dataset_load_folder(&ref, root) != CG_OK) fail_msg("%s", cg_last_error());
    /* A folder that is not there, and a "folder" that is a file (nothing
     * can be created in either, even as root). */
    const char *bad[2] = {join(p, cache, "absent"), root};
    char file_dir[1024];
    join(file_dir, root, "seven/0.png");
    bad[1] = file_dir;
    for (int k = 0; k < 2; k++) {
        load_cached(&ds, root, bad[k]);
        assert_same(&ds, &ref);
        assert_string_equal(cg_last_error(), "");
        cg_dataset_free(&ds);
    }
    load_cached(&ds, root, NULL);
    assert_same(&ds, &ref);
    cg_dataset_free(&ds);
    assert_int_equal(count_cache_files(cache, NULL), 0);
    cg_dataset_free(&ref);
}

static void test_cache_errors_as_plain(void **state) {
    (void)state;
    char cache[1024], p[1024];
    const char *root = make_folder(cache);
    cg_dataset ds;
    assert_int_equal(cg_dataset_load_folder_cached(&ds, join(p, root, "absent"), cache), CG_ERR_IO);
    assert_null(ds.x);
    /* A broken PNG with no cache yet is the plain loader's error. */
    trash_keeping_key(join(p, root, "seven/1.png"));
    assert_int_not_equal(cg_dataset_load_folder_cached(&ds, root, cache), CG_OK);
    assert_non_null(strstr(cg_last_error(), "seven/1.png"));
    assert_null(ds.x);
    assert_int_equal(count_cache_files(cache, NULL), 0);
}

static void test_real_cached_equals_plain(void **state) {
    (void)state;
    const char *data = cg_test_data_dir();
    if (!data) skip();
    char dir[1024], cache[1024];
    snprintf(dir, sizeof dir, "%s/mnist_sample/train", data);
    join(cache, cg_test_tmpdir(), "cache");
    make_dir(cache);
    cg_dataset ref, cold, warm;
    if (cg_dataset_load_folder(&ref, dir) != CG_OK) fail_msg("%s", cg_last_error());
    load_cached(&cold, dir, cache);
    assert_int_equal(count_cache_files(cache, NULL), 1);
    load_cached(&warm, dir, cache);
    assert_int_equal(ref.x->shape[0], 12396);
    assert_same(&cold, &ref);
    assert_same(&warm, &ref);
    cg_dataset_free(&ref);
    cg_dataset_free(&cold);
    cg_dataset_free(&warm);
}

/* The CRC that checks a cache (and a model file) is zlib's CRC-32 of the
 * whole buffer, whether it is computed in one piece or, from 1 MiB on, in
 * one piece per thread joined by crc32_combine. */
static void test_crc32_in_pieces(void **state) {
    (void)state;
    const size_t sizes[] = {0, 1, 4095, ((size_t)1 << 20) - 1, (size_t)1 << 20, (3u << 20) + 7};
    const size_t most = (3u << 20) + 7;
    uint8_t *buf = malloc(most);
    assert_non_null(buf);
    for (size_t i = 0; i < most; i++) buf[i] = (uint8_t)(i * 2654435761u >> 13);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int nt = 1; nt <= 3; nt++) {
            cg_set_num_threads(nt);
            uLong want = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)sizes[s]);
            if (cg_crc32(buf, sizes[s]) != (uint32_t)want)
                fail_msg("%zu bytes on %d threads: CRC %08x, zlib says %08lx", sizes[s], nt,
                         cg_crc32(buf, sizes[s]), want);
        }
    cg_set_num_threads(0);
    free(buf);
}

int main(void) {
    /* Nothing here may touch the user's cache. */
    setenv("CGRAD_HOME", cg_test_tmpdir(), 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_written_then_read),
        cmocka_unit_test(test_cache_key_follows_changes),
        cmocka_unit_test(test_cache_corrupt_file_ignored),
        cmocka_unit_test(test_cache_unwritable_or_null),
        cmocka_unit_test(test_cache_errors_as_plain),
        cmocka_unit_test(test_real_cached_equals_plain),
        cmocka_unit_test(test_crc32_in_pieces),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
