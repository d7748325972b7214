/*
 * file.c - CRC-32, opening for reading, atomic file replacement and
 * mkdir -p (see file.h).
 */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* One piece, fed to zlib (whose length is a uInt) in 1 GiB chunks. */
static uLong crc_piece(uLong crc, const uint8_t *p, size_t n) {
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

uint32_t cg_crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    return (uint32_t)crc_piece(crc, p, n);
}

/* Below this, one thread: zlib's CRC runs at a few GB/s, so a 1 MiB buffer
 * is well under a millisecond and splitting smaller ones saves next to
 * nothing. */
#define CRC_PARALLEL_MIN ((size_t)1 << 20)
#define CRC_MAX_PIECES 16

/* Where piece t of `pieces` starts; the last one takes the remainder. */
static size_t piece_start(size_t n, int pieces, int t) {
    return t == pieces ? n : n / (size_t)pieces * (size_t)t;
}

uint32_t cg_crc32(const uint8_t *p, size_t n) {
    /* A cache of decoded images is 11 MB, checked on every load: its two
     * halves go to two threads (about twice as fast: bench/README.md,
     * "Load"), and crc32_combine joins them into exactly the CRC of the
     * whole. */
    int pieces = n >= CRC_PARALLEL_MIN ? cg_get_num_threads() : 1;
    if (pieces > CRC_MAX_PIECES) pieces = CRC_MAX_PIECES;
    if (pieces < 1) pieces = 1;
    uLong crc[CRC_MAX_PIECES] = {0};
#pragma omp parallel for num_threads(pieces) schedule(static) if (pieces > 1)
    for (int t = 0; t < pieces; t++) {
        const size_t a = piece_start(n, pieces, t);
        crc[t] = crc_piece(crc32(0L, Z_NULL, 0), p + a, piece_start(n, pieces, t + 1) - a);
    }
    uLong whole = crc[0];
    for (int t = 1; t < pieces; t++)
        whole = crc32_combine(whole, crc[t],
                              (z_off_t)(piece_start(n, pieces, t + 1) - piece_start(n, pieces, t)));
    return (uint32_t)whole;
}

/* Makes a rename durable: fsync of the folder that holds the new name.
 * Some file systems refuse to fsync a folder; the data itself is already
 * on disk then, so that is not an error. */
static void sync_parent_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

const char *cg_file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a file";
}

int cg_open_regular_at(const char *op, int dirfd, const char *name, const char *path,
                       struct stat *st) {
    struct stat s;
    if (!st) st = &s;
    int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        cg_fail(CG_ERR_IO, "%s: cannot open %s: %s", op, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        cg_fail(CG_ERR_IO, "%s: cannot stat %s: %s", op, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        cg_fail(CG_ERR_IO, "%s: %s is not a regular file (%s)", op, path,
                cg_file_kind(st->st_mode));
        return -1;
    }
    /* Regular files never block; readers that expect blocking reads get them. */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

int cg_open_regular(const char *op, const char *path, struct stat *st) {
    return cg_open_regular_at(op, AT_FDCWD, path, path, st);
}

cg_status cg_write_target(const char *op, const char *path, char *out, size_t size) {
    struct stat st;
    const char *target = path;
    char resolved[PATH_MAX];
    if (lstat(path, &st) != 0) {
        /* Nothing there (or no way there: mkstemp will say why). */
        st.st_mode = S_IFREG;
    } else if (S_ISLNK(st.st_mode)) {
        /* Followed, as cp and shell redirection do; resolved so the new file
         * is made beside the one it replaces and the link keeps working. */
        if (!realpath(path, resolved) || stat(resolved, &st) != 0)
            return cg_fail(CG_ERR_IO, "%s: %s is a symbolic link that points nowhere", op, path);
        target = resolved;
    }
    if (!S_ISREG(st.st_mode))
        return cg_fail(CG_ERR_IO, "%s: %s is not a regular file (%s); not replacing it", op, path,
                       cg_file_kind(st.st_mode));
    if (snprintf(out, size, "%s", target) >= (int)size)
        return cg_fail(CG_ERR_ARG, "%s: path too long: %s", op, target);
    return CG_OK;
}

cg_status cg_write_file_atomic(const char *op, const char *path_in, const void *buf, size_t size) {
    char path[PATH_MAX];
    if (cg_write_target(op, path_in, path, sizeof path) != CG_OK) return cg_last_status();
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return cg_fail(CG_ERR_NOMEM, "%s: out of memory", op);
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cg_status st = cg_fail(CG_ERR_IO, "%s: cannot create a temporary file next to %s: %s", op,
                               path, strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp makes the file 0600; ours are ordinary files. */
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(buf, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (f) {
        if (fclose(f) != 0) ok = false;
    } else {
        close(fd);
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return cg_fail(CG_ERR_IO, "%s: cannot write %s: %s", op, path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        cg_status st = cg_fail(CG_ERR_IO, "%s: cannot rename %s to %s: %s", op, tmp, path,
                               strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    sync_parent_dir(path);
    return CG_OK;
}

cg_status cg_make_dirs(const char *op, const char *path) {
    char p[4096];
    int len = snprintf(p, sizeof p, "%s", path);
    if (len <= 0 || (size_t)len >= sizeof p)
        return cg_fail(CG_ERR_ARG, "%s: path too long: %s", op, path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char keep = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return cg_fail(CG_ERR_IO, "%s: cannot create folder %s: %s", op, p, strerror(errno));
        *s = keep;
        if (keep == '\0') break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return cg_fail(CG_ERR_IO, "%s: %s is not a folder", op, path);
    return CG_OK;
}
