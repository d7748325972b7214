/*
 * extract.c - unpacking a downloaded archive without letting it write
 * outside the folder it is unpacked into (libarchive).
 *
 * An archive from the network is untrusted. An entry can try to escape
 * with an absolute name ("/etc/x"), a name that climbs ("a/../../x"), a
 * symlink that points out and an entry written through it ("l -> /etc"
 * then "l/x"), or a hard link to a file outside. Two independent layers
 * stop these:
 *   1. our own check of every name and link target before anything of
 *      the entry is written (cg_archive_name_ok, cg_archive_symlink_ok);
 *   2. libarchive's ARCHIVE_EXTRACT_SECURE_SYMLINKS (never write through a
 *      symlink) and ARCHIVE_EXTRACT_SECURE_NODOTDOT (no ".." anywhere).
 * libarchive resolves relative names against the process's working
 * folder, and a library must not chdir (other threads share it), so each
 * name is prefixed with the destination's real path. That is why
 * ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot be set, and why layer 1
 * refuses absolute names itself (with layer 1 off, an absolute name
 * still lands inside, below the prefix). The destination goes through
 * realpath() so that a symlink in its own path (a symlinked home or
 * cache folder) does not trip SECURE_SYMLINKS.
 */
/* nftw() is an X/Open extension. */
#define _XOPEN_SOURCE 700

#include "cgrad_internal.h"
#include "data/fetch_internal.h"
#include "util/lazy.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

/* libarchive, loaded when an archive is first unpacked (util/lazy.h). */
#define ARCHIVE_FNS(X)                                                                         \
    X(entry_copy_hardlink, archive_entry_copy_hardlink, void,                                  \
      (struct archive_entry *, const char *))                                                  \
    X(entry_copy_pathname, archive_entry_copy_pathname, void,                                  \
      (struct archive_entry *, const char *))                                                  \
    X(entry_filetype, archive_entry_filetype, __LA_MODE_T, (struct archive_entry *))           \
    X(entry_hardlink, archive_entry_hardlink, const char *, (struct archive_entry *))          \
    X(entry_pathname, archive_entry_pathname, const char *, (struct archive_entry *))          \
    X(entry_perm, archive_entry_perm, __LA_MODE_T, (struct archive_entry *))                   \
    X(entry_set_perm, archive_entry_set_perm, void, (struct archive_entry *, __LA_MODE_T))     \
    X(entry_size, archive_entry_size, la_int64_t, (struct archive_entry *))                    \
    X(entry_symlink, archive_entry_symlink, const char *, (struct archive_entry *))            \
    X(error_string, archive_error_string, const char *, (struct archive *))                    \
    X(read_data_block, archive_read_data_block, int,                                           \
      (struct archive *, const void **, size_t *, la_int64_t *))                               \
    X(read_free, archive_read_free, int, (struct archive *))                                   \
    X(read_new, archive_read_new, struct archive *, (void))                                    \
    X(read_next_header, archive_read_next_header, int,                                         \
      (struct archive *, struct archive_entry **))                                             \
    X(read_open_filename, archive_read_open_filename, int,                                     \
      (struct archive *, const char *, size_t))                                                \
    X(read_support_filter_all, archive_read_support_filter_all, int, (struct archive *))       \
    X(read_support_format_gnutar, archive_read_support_format_gnutar, int, (struct archive *)) \
    X(read_support_format_tar, archive_read_support_format_tar, int, (struct archive *))       \
    X(read_support_format_zip, archive_read_support_format_zip, int, (struct archive *))       \
    X(write_close, archive_write_close, int, (struct archive *))                               \
    X(write_data_block, archive_write_data_block, la_ssize_t,                                  \
      (struct archive *, const void *, size_t, la_int64_t))                                    \
    X(write_disk_new, archive_write_disk_new, struct archive *, (void))                        \
    X(write_disk_set_options, archive_write_disk_set_options, int, (struct archive *, int))    \
    X(write_finish_entry, archive_write_finish_entry, int, (struct archive *))                 \
    X(write_free, archive_write_free, int, (struct archive *))                                 \
    X(write_header, archive_write_header, int, (struct archive *, struct archive_entry *))
CG_LAZY_TABLE(archive_fns, ar, ARCHIVE_FNS, "libarchive13", "libarchive.so.13", "libarchive.so");

/* ---- layer 1: names and link targets ---- */

/* Calls fn(component, length) for each component of a '/'-separated
 * path, skipping empty ones ("a//b") and "."; stops at the first false. */
typedef bool (*component_fn)(const char *s, size_t n, void *ctx);

static bool each_component(const char *path, component_fn fn, void *ctx) {
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        const char *start = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.')) continue;
        if (!fn(start, n, ctx)) return false;
    }
    return true;
}

static bool is_dotdot(const char *s, size_t n) { return n == 2 && s[0] == '.' && s[1] == '.'; }

static bool count_plain(const char *s, size_t n, void *ctx) {
    if (is_dotdot(s, n)) return false;
    (*(int *)ctx)++;
    return true;
}

bool cg_archive_name_ok(const char *name, int *depth, const char **why) {
    int n = 0;
    if (!name) {
        *why = "has no name (or one that is not valid text)";
        return false;
    }
    if (name[0] == '/') {
        *why = "is an absolute path";
        return false;
    }
    if (!each_component(name, count_plain, &n)) {
        *why = "climbs out of the folder with '..'";
        return false;
    }
    if (depth) *depth = n > 0 ? n - 1 : 0;
    return true;
}

/*
 * A relative target resolves from the link's own folder, `depth` levels
 * below the root. Leading ".." steps climb real folders (the link's
 * parents were made by us, never through a symlink), so up to `depth` of
 * them stay inside. A ".." after a plain component is refused: that
 * component may itself be a symlink ("s -> ." then "t -> s/..") and
 * ".." would then climb from wherever s points, which no lexical check
 * can follow. Without such a "..", each link points at or below the
 * folder it sits in, so chains of links cannot leave the root either.
 */
typedef struct link_walk {
    int depth;
    bool seen_plain, bad_order;
} link_walk;

static bool walk_link(const char *s, size_t n, void *ctx) {
    link_walk *w = ctx;
    if (is_dotdot(s, n)) {
        if (w->seen_plain) {
            w->bad_order = true;
            return false;
        }
        return --w->depth >= 0;
    }
    w->seen_plain = true;
    return true;
}

bool cg_archive_symlink_ok(const char *target, int depth, const char **why) {
    if (!target || !target[0]) {
        *why = "is a symlink with an empty target";
        return false;
    }
    if (target[0] == '/') {
        *why = "is a symlink to an absolute path";
        return false;
    }
    link_walk w = {depth, false, false};
    if (!each_component(target, walk_link, &w)) {
        *why = w.bad_order ? "is a symlink whose target has '..' after a folder name"
                           : "is a symlink that points outside the folder";
        return false;
    }
    return true;
}

/* ---- removal ---- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int cg_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    /* FTW_DEPTH: children before their folder; FTW_PHYS: a symlink is
     * removed, never followed. */
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- layer 2 and the copy loop ---- */

/* dest + "/" + name into buf; false if it does not fit. */
static bool join(char *buf, size_t size, const char *dest, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dest, name);
    return n > 0 && (size_t)n < size;
}

/* Copies the current entry's data, counting bytes against the limit. */
static cg_status copy_data(struct archive *in, struct archive *out, const char *label,
                           const char *name, int64_t *total, int64_t limit) {
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = ar.read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF) return CG_OK;
        if (r < ARCHIVE_WARN)
            return cg_fail(CG_ERR_FORMAT,
                           "fetch: %s: reading '%s': %s (corrupt or truncated archive)", label,
                           name, ar.error_string(in));
        *total += (int64_t)size;
        if (*total > limit)
            return cg_fail(
                CG_ERR_FORMAT,
                "fetch: %s: unpacks to more than %lld bytes; refused (a decompression bomb?)",
                label, (long long)limit);
        if (ar.write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
            return cg_fail(CG_ERR_IO, "fetch: %s: writing '%s': %s", label, name,
                           ar.error_string(out));
    }
}

/* Checks one entry (layer 1), points it below dest and writes it. */
static cg_status extract_entry(struct archive *in, struct archive *out, struct archive_entry *e,
                               const char *dest, const char *label, bool own_checks,
                               int64_t *total, int64_t limit) {
    const char *name = ar.entry_pathname(e);
    const char *why = NULL;
    int depth = 0;
    char path[PATH_MAX], link[PATH_MAX], shown[256];
    /* Kept for messages: the entry's own string changes below. */
    snprintf(shown, sizeof shown, "%s", name ? name : "(unnamed)");

    mode_t type = ar.entry_filetype(e);
    const char *hard = ar.entry_hardlink(e);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !hard)
        return cg_fail(
            CG_ERR_FORMAT,
            "fetch: %s: entry '%s' is a device, fifo or socket; refused (a dataset holds "
            "only files, folders and links)",
            label, shown);
    if (own_checks) {
        if (!cg_archive_name_ok(name, &depth, &why))
            return cg_fail(CG_ERR_FORMAT, "fetch: %s: entry '%s' %s; refused the whole archive",
                           label, shown, why);
        if (hard && !cg_archive_name_ok(hard, NULL, &why))
            return cg_fail(CG_ERR_FORMAT,
                           "fetch: %s: entry '%s' is a hard link to '%s', which %s; refused the "
                           "whole archive",
                           label, shown, hard, why);
        if (type == AE_IFLNK && !hard &&
            !cg_archive_symlink_ok(ar.entry_symlink(e), depth, &why))
            return cg_fail(CG_ERR_FORMAT,
                           "fetch: %s: entry '%s' %s ('%s'); refused the whole archive", label,
                           shown, why, ar.entry_symlink(e));
    } else if (!name) {
        return cg_fail(CG_ERR_FORMAT, "fetch: %s: an entry has no usable name", label);
    }
    if (!join(path, sizeof path, dest, name) || (hard && !join(link, sizeof link, dest, hard)))
        return cg_fail(CG_ERR_FORMAT, "fetch: %s: entry '%s': path too long", label, shown);
    ar.entry_copy_pathname(e, path);
    if (hard) ar.entry_copy_hardlink(e, link);
    /* Modes from the archive could make a folder unwritable (so we could
     * neither fill nor remove it) or a file setuid; a dataset needs none. */
    if (type == AE_IFDIR) ar.entry_set_perm(e, 0755);
    else if (type == AE_IFREG) ar.entry_set_perm(e, (ar.entry_perm(e) & 0111) ? 0755 : 0644);

    if (ar.write_header(out, e) < ARCHIVE_WARN)
        return cg_fail(CG_ERR_FORMAT, "fetch: %s: entry '%s' refused: %s", label, shown,
                       ar.error_string(out));
    if (ar.entry_size(e) > 0 || type == AE_IFREG) {
        cg_status s = copy_data(in, out, label, shown, total, limit);
        if (s != CG_OK) return s;
    }
    if (ar.write_finish_entry(out) < ARCHIVE_WARN)
        return cg_fail(CG_ERR_IO, "fetch: %s: finishing '%s': %s", label, shown,
                       ar.error_string(out));
    return CG_OK;
}

cg_status cg_archive_extract(const char *archive_path, const char *dest_dir, const char *label,
                             const cg_extract_opts *opt) {
    cg_extract_opts o = opt ? *opt : (cg_extract_opts){.own_checks = true};
    int64_t max_bytes = o.max_bytes > 0 ? o.max_bytes : CG_EXTRACT_MAX_BYTES;
    int64_t max_entries = o.max_entries > 0 ? o.max_entries : CG_EXTRACT_MAX_ENTRIES;
    char dest[PATH_MAX];
    if (!realpath(dest_dir, dest))
        return cg_fail(CG_ERR_IO, "fetch: cannot resolve folder %s: %s", dest_dir, strerror(errno));
    if (cg_lazy_load(&ar_lib, "fetch") != CG_OK) return cg_last_status();

    struct archive *in = ar.read_new();
    struct archive *out = ar.write_disk_new();
    if (!in || !out) {
        ar.read_free(in);
        ar.write_free(out);
        return cg_fail(CG_ERR_NOMEM, "fetch: out of memory starting libarchive");
    }
    ar.read_support_filter_all(in);
    ar.read_support_format_tar(in);
    ar.read_support_format_gnutar(in);
    ar.read_support_format_zip(in);
    ar.write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);

    cg_status s = CG_OK;
    if (ar.read_open_filename(in, archive_path, 1 << 16) != ARCHIVE_OK) {
        s = cg_fail(CG_ERR_FORMAT, "fetch: %s: not an archive cgrad can read: %s", label,
                    ar.error_string(in));
        goto done;
    }
    int64_t total = 0, entries = 0;
    for (;;) {
        struct archive_entry *e;
        int r = ar.read_next_header(in, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            s = cg_fail(CG_ERR_FORMAT, "fetch: %s: %s (corrupt or truncated archive)", label,
                        ar.error_string(in));
            goto done;
        }
        if (++entries > max_entries) {
            s = cg_fail(CG_ERR_FORMAT, "fetch: %s: more than %lld entries; refused", label,
                        (long long)max_entries);
            goto done;
        }
        s = extract_entry(in, out, e, dest, label, o.own_checks, &total, max_bytes);
        if (s != CG_OK) goto done;
    }
    if (entries == 0) {
        s = cg_fail(CG_ERR_FORMAT, "fetch: %s: the archive is empty", label);
        goto done;
    }
    /* Close applies the folder times that libarchive defers to the end. */
    if (ar.write_close(out) < ARCHIVE_WARN)
        s = cg_fail(CG_ERR_IO, "fetch: %s: %s", label, ar.error_string(out));
done:
    ar.read_free(in);
    ar.write_free(out);
    return s;
}
