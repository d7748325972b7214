/*
 * fetch_internal.h - what fetch.c, extract.c, locate.c and their tests share.
 */
#ifndef CGRAD_FETCH_INTERNAL_H
#define CGRAD_FETCH_INTERNAL_H

#include "cgrad.h"

/* Limits on what one archive may unpack to. A 2 GiB download of zeros
 * gzips to a few MiB, so the download limit alone does not bound the disk. */
#define CG_EXTRACT_MAX_BYTES ((int64_t)8 << 30)
#define CG_EXTRACT_MAX_ENTRIES 2000000

typedef struct cg_extract_opts {
    /* Our own name and link-target checks (layer 1). Off only in the tests
     * that show libarchive's ARCHIVE_EXTRACT_SECURE_* flags (layer 2) hold
     * on their own; fetch always runs with them on. */
    bool own_checks;
    int64_t max_bytes;   /* 0: CG_EXTRACT_MAX_BYTES   */
    int64_t max_entries; /* 0: CG_EXTRACT_MAX_ENTRIES */
} cg_extract_opts;

/*
 * Unpacks archive_path (.tar, .tgz/.tar.gz, .tar.bz2, .tar.xz or .zip)
 * into the existing, empty folder dest_dir. Refuses the whole archive at
 * the first entry that would land outside dest_dir, and at any device,
 * fifo or socket entry; `label` (the URL) names the archive in messages.
 * On failure dest_dir may hold part of the archive: the caller removes it.
 */
cg_status cg_archive_extract(const char *archive_path, const char *dest_dir, const char *label,
                             const cg_extract_opts *opt);

/* True if `name` (an archive entry's path) stays inside the folder it is
 * unpacked into: relative, no ".." component. *depth gets the number of
 * folders above the entry ("a/b/c" -> 2). `why` gets the reason when false. */
bool cg_archive_name_ok(const char *name, int *depth, const char **why);
/* True if a symlink at an entry `depth` folders down, pointing at
 * `target`, resolves inside the unpack folder. */
bool cg_archive_symlink_ok(const char *target, int depth, const char **why);

/* rm -rf path, never following symlinks. Returns 0 or -1 (errno set). */
int cg_rmtree(const char *path);

/* The URL a known dataset name downloads from, and what fastai's
 * checks.txt says its size is (0 = unknown); NULL for unknown names. */
const char *cg_known_dataset_url(const char *name, int64_t *size);

/* Where a known dataset's `url` is really fetched from: itself, or with
 * CGRAD_MIRROR=BASE set, BASE/FILE (FILE = the URL's last part), for
 * machines that reach only a local mirror. Returns url or buf. */
const char *cg_fetch_source_url(const char *url, char *buf, size_t size);

/* cg_fetch without the closing hint about data on disk (locate.c writes
 * its own message around it). */
cg_status cg_fetch_plain(const char *name_or_url, char *out_dir, size_t out_size,
                         const cg_fetch_options *opt);

/* The sentence every "no data" message ends with (%s: the dataset name). */
#define CG_DATA_HINT_FMT \
    "To use data already on disk: pass --data PATH, or set CGRAD_DATA=DIR (DIR holding %s/)"

/* Formats prefix + reason + the hint into the error message, cutting the
 * reason (never the hint) to fit cg_last_error's buffer. */
cg_status cg_fail_with_hint(cg_status status, const char *prefix, const char *reason,
                            const char *name);

#endif
