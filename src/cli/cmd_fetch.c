/*
 * cmd_fetch.c - `cgrad fetch NAME|URL`: downloads a dataset into the cache
 * once (fastai's untar_data) and prints where it is, so a script can do
 *     root=$(cgrad fetch mnist_sample) && cgrad train --data "$root"
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cgrad.h"
#include "cli/commands.h"
#include "cli/options.h"

static const char USAGE[] =
    "usage: cgrad fetch NAME|URL [options]\n"
    "  Downloads and unpacks a dataset into the cache (once; later runs reuse\n"
    "  it) and prints the dataset's folder on stdout.\n"
    "  NAME is one of the known datasets (--list); a URL is any http(s):// or\n"
    "  file:// .tgz/.tar.gz/.zip archive.\n";

int cg_cmd_fetch(int argc, char **argv) {
    const char *cache = NULL, *name = NULL, *sha = NULL;
    int64_t size = 0;
    bool list = false, force = false, quiet = false;
    cg_opt opts[] = {
        {"--list", CG_OPT_FLAG, &list, 0, 0, NULL, false,
         "print the known names and their URLs, then stop", NULL},
        {"--cache", CG_OPT_STR, &cache, 0, 0, NULL, false,
         "cache folder (default $CGRAD_HOME, else\n$XDG_CACHE_HOME/cgrad, else ~/.cache/cgrad)",
         "DIR"},
        {"--name", CG_OPT_STR, &name, 0, 0, NULL, false,
         "folder name in the cache (default: from NAME or the URL)", "NAME"},
        {"--sha256", CG_OPT_STR, &sha, 0, 0, NULL, false,
         "refuse the archive unless its SHA-256 is HEX", "HEX"},
        {"--size", CG_OPT_INT, &size, 1, (double)CG_FETCH_MAX_BYTES, NULL, false,
         "refuse the archive unless it is BYTES long", "BYTES"},
        {"--force", CG_OPT_FLAG, &force, 0, 0, NULL, false, "download again even if cached",
         NULL},
        {"--quiet", CG_OPT_FLAG, &quiet, 0, 0, NULL, false,
         "no progress bar (drawn only when stderr is a terminal)", NULL},
    };
    const char *what[1] = {NULL};
    int n = 0;
    int rc = cg_opts_parse("fetch", USAGE, argc, argv, opts, CG_NOPTS(opts), what, 1, &n);
    if (rc != CG_OPTS_CONTINUE) return rc;

    if (list) {
        for (int i = 0; cg_dataset_name(i); i++)
            printf("%-14s %s\n", cg_dataset_name(i), cg_dataset_url(cg_dataset_name(i)));
        return CG_EXIT_OK;
    }
    if (n != 1) return cg_usage_error("fetch", "give one dataset NAME or URL (see --list)");

    cg_fetch_options opt = {.cache_dir = cache, .name = name, .quiet = quiet, .force = force,
                            .expected_size = size, .sha256 = sha};
    char dir[PATH_MAX];
    if (cg_fetch(what[0], dir, sizeof dir, &opt) != CG_OK) {
        /* The library's message starts "fetch: "; "cgrad fetch: " says it already. */
        const char *msg = cg_last_error();
        if (strncmp(msg, "fetch: ", 7) == 0) msg += 7;
        fprintf(stderr, "cgrad fetch: %s\n", msg);
        return CG_EXIT_FAIL;
    }
    printf("%s\n", dir);
    return CG_EXIT_OK;
}
