/*
 * file.h - what the binary file formats share (internal): little-endian
 * fields, zlib's CRC-32, atomic replacement of a file, mkdir -p.
 * Used by the model files (src/nn/model_file.c) and the decoded-image cache
 * (src/data/image_cache.c).
 */
#ifndef CGRAD_UTIL_FILE_H
#define CGRAD_UTIL_FILE_H

#include "cgrad_internal.h"

#include <sys/stat.h>

/* Little-endian, whatever the machine, so a file moves between machines. */
static inline uint8_t *cg_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static inline uint8_t *cg_put_i64(uint8_t *p, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(u >> (8 * i));
    return p + 8;
}

static inline uint32_t cg_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline int64_t cg_get_i64(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) u = u << 8 | p[i];
    return (int64_t)u;
}

/* zlib's crc32 (the gzip/PNG polynomial) of n bytes, any n. */
uint32_t cg_crc32(const uint8_t *p, size_t n);
/* The CRC of what `crc` covered followed by n more bytes (crc 0 for none):
 * for a file read in pieces. */
uint32_t cg_crc32_update(uint32_t crc, const uint8_t *p, size_t n);

/* What a file that is not a regular one is, for messages: "a FIFO",
 * "a folder", "a character device", ... */
const char *cg_file_kind(mode_t mode);

/*
 * Opens `name` (relative to dirfd; AT_FDCWD for a plain path) for reading,
 * refusing anything but a regular file: "op: PATH is not a regular file
 * (a FIFO)", -1 returned. The open itself is O_NONBLOCK, because a plain
 * open of a FIFO waits for a writer forever; the flag is cleared once fstat
 * has shown a regular file. `path` names the file in messages; st, when not
 * NULL, gets the fstat. Every file cgrad reads is opened through here.
 */
int cg_open_regular_at(const char *op, int dirfd, const char *name, const char *path,
                       struct stat *st);
int cg_open_regular(const char *op, const char *path, struct stat *st);

/*
 * Where a write to `path` lands, into out: path itself when nothing is
 * there or a regular file is; for a symbolic link to a regular file, the
 * file it points to (resolved, so the link keeps working after the write).
 * Anything else is refused ("op: PATH is not a regular file (a character
 * device); not replacing it"): renaming over /dev/null as root would
 * replace the system's. So is a link that points nowhere.
 */
cg_status cg_write_target(const char *op, const char *path, char *out, size_t size);

/*
 * Replaces `path` with `size` bytes, atomically: they go to a temporary
 * file in the target's folder (so rename cannot cross file systems), which
 * is flushed, fsync'd, made 0644 and renamed over the target; a crash leaves
 * the old file or the new one, never half of one. The target is
 * cg_write_target's: a symlink to a regular file is followed (the file it
 * points to is replaced, in its own folder); a FIFO, device, socket or
 * folder is refused. Errors start with "op: ".
 */
cg_status cg_write_file_atomic(const char *op, const char *path, const void *buf, size_t size);

/* mkdir -p: makes path and any missing parents (0755). */
cg_status cg_make_dirs(const char *op, const char *path);

#endif /* CGRAD_UTIL_FILE_H */
