/* fuzz_archive.c - libFuzzer target: archive entry names and link targets.
 *
 * The bytes are read as an archive (any format libarchive knows) and every
 * entry's path and link target goes through the checks fetch relies on;
 * the bytes are also checked directly as a name and as a link target.
 * An accepted name or target must never be able to leave the unpack
 * folder: we re-derive that independently and abort if the checks say
 * "safe" for something that is not. */
#include "data/fetch_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks `path` from `depth` folders below the root; false if it is
 * absolute or climbs above the root at any point. */
static bool stays_inside(const char *path, int depth) {
    if (path[0] == '/') return false;
    int level = depth;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (--level < 0) return false;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            level++;
        }
        if (!end) break;
        p = end + 1;
    }
    return true;
}

static void check_name_and_target(const char *name, const char *target) {
    int depth = 0;
    const char *why = NULL;
    if (name && cg_archive_name_ok(name, &depth, &why)) {
        if (!stays_inside(name, 0)) abort();
        if (target && cg_archive_symlink_ok(target, depth, &why) && !stays_inside(target, depth))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 1. the bytes as one name and, split at the first NUL, a link target */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t first = strlen(text);
    check_name_and_target(text, first < size ? text + first + 1 : text);
    free(text);

    /* 2. the bytes as an archive */
    struct archive *a = archive_read_new();
    if (!a) return 0;
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_memory(a, data, size) == ARCHIVE_OK) {
        struct archive_entry *e;
        for (int i = 0; i < 64 && archive_read_next_header(a, &e) == ARCHIVE_OK; i++) {
            const char *link = archive_entry_symlink(e);
            check_name_and_target(archive_entry_pathname(e), link);
            const char *hard = archive_entry_hardlink(e);
            if (hard) check_name_and_target(hard, NULL);
        }
    }
    archive_read_free(a);
    return 0;
}
