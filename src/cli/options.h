/*
 * options.h - command-line options shared by every cgrad command.
 *
 * A command lists its options in a table and calls cg_opts_parse once:
 *
 *     const char *data = NULL; int64_t epochs = 20; bool json = false;
 *     cg_opt opts[] = {
 *         CG_OPT_DATA(&data),
 *         {"--epochs", CG_OPT_INT, &epochs, 1, 100000},
 *         CG_OPT_JSON(&json),
 *     };
 *     int rc = cg_opts_parse("train", USAGE, argc, argv, opts, CG_NOPTS(opts), NULL, 0, NULL);
 *     if (rc != CG_OPTS_CONTINUE) return rc;
 *
 * Both "--epochs 5" and "--epochs=5" work; "--" ends the options; "-h" and
 * "--help" print the command's usage to stdout. Numbers are checked whole
 * ("5x" is an error) and against their range, with a message naming the
 * option, the accepted range and what was given.
 */
#ifndef CGRAD_CLI_OPTIONS_H
#define CGRAD_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cgrad.h"

/* Exit codes of every command. */
#define CG_EXIT_OK 0
#define CG_EXIT_FAIL 1  /* the work failed: "cgrad CMD: <why>" on stderr */
#define CG_EXIT_USAGE 2 /* the command line is wrong */

/* cg_opts_parse's "carry on" (any other value is the exit code to return). */
#define CG_OPTS_CONTINUE (-1)

typedef enum cg_opt_type {
    CG_OPT_FLAG,   /* bool *: set to true when present              */
    CG_OPT_STR,    /* const char **: the argument as given           */
    CG_OPT_INT,    /* int64_t *: whole number in [min, max]          */
    CG_OPT_U64,    /* uint64_t *: 0 .. 2^64-1 (seeds)                */
    CG_OPT_FLOAT,  /* double *: finite number in [min, max]          */
    CG_OPT_CHOICE  /* int *: index of the argument in `choices`      */
} cg_opt_type;

typedef struct cg_opt {
    const char *name; /* "--lr" */
    cg_opt_type type;
    void *out;
    double min, max;      /* INT and FLOAT */
    const char *choices;  /* CHOICE: "l1|rmse" */
    bool min_exclusive;   /* FLOAT: the value must be > min, not >= */
    /* The option's line in --help (NULL: the command's usage text has it):
     * "--NAME VALUE  help", VALUE from `metavar`, else the choices, else
     * the type (N, X, TEXT). */
    const char *help;
    const char *metavar;
} cg_opt;

#define CG_NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define CG_OPT_DATA(p)                                                                      \
    {"--data", CG_OPT_STR, (p), 0, 0, NULL, false,                                         \
     "dataset root: train/ + valid/ (fastai), training/ + testing/\n"                      \
     "(mnist_png) of <class>/*.png, or MNIST's IDX files", "PATH"}
#define CG_OPT_SEED(p) {"--seed", CG_OPT_U64, (p), 0, 0, NULL, false, "random seed (42)", NULL}
#define CG_OPT_JSON(p) \
    {"--json", CG_OPT_FLAG, (p), 0, 0, NULL, false, "JSON instead of text", NULL}
#define CG_OPT_QUIET(p) \
    {"--quiet", CG_OPT_FLAG, (p), 0, 0, NULL, false, "no progress output", NULL}
#define CG_OPT_THREADS(p)                                                                   \
    {"--threads", CG_OPT_INT, (p), 0, 1024, NULL, false,                                   \
     "threads for the kernels (0: OpenMP's default)", NULL}

/*
 * Where a command's images come from, shared by train, eval and baseline
 * (read by cg_cli_load_data in cli_data.h):
 *   --data PATH     a dataset root (any layout cli_data.h lists)
 *   --dataset NAME  a dataset by name through cg_locate_dataset: mnist_sample
 *                   (the default), mnist_tiny, mnist; not with --data
 *   --classes A,B   keep only these classes, in this order (the first is the
 *                   label-1 class of the binary models, like "3")
 */
typedef struct cg_data_opts {
    const char *data, *dataset, *classes; /* NULL: not given */
} cg_data_opts;

#define CG_OPT_DATASET(p)                                                                   \
    {"--dataset", CG_OPT_STR, (p), 0, 0, NULL, false,                                      \
     "mnist_sample (default), mnist_tiny or mnist, found in\n"                             \
     "$CGRAD_DATA/NAME, else the cache, else downloaded", "NAME"}
#define CG_OPT_CLASSES(p)                                                                   \
    {"--classes", CG_OPT_STR, (p), 0, 0, NULL, false,                                      \
     "keep only these classes, in this order (e.g. 3,7)", "A,B[,...]"}
/* The three entries of an options table, for a cg_data_opts *s. */
#define CG_OPTS_DATA_SOURCE(s) CG_OPT_DATA(&(s)->data), CG_OPT_DATASET(&(s)->dataset), \
                               CG_OPT_CLASSES(&(s)->classes)
/*
 * Parses argv[1..argc) (argv[0] is the command's name) into the table.
 * Arguments that are not options go to positional[0..max_positional), their
 * count to *n_positional. Returns CG_OPTS_CONTINUE, or CG_EXIT_OK after
 * printing `usage` for --help, or CG_EXIT_USAGE after printing what is wrong
 * (prefixed "cgrad CMD: ") to stderr.
 */
int cg_opts_parse(const char *cmd, const char *usage, int argc, char **argv, const cg_opt *opts,
                  int n_opts, const char **positional, int max_positional, int *n_positional);

/* Writes the --help lines of the options that have a help text, in table
 * order, aligned; what --help prints after the command's usage text. */
void cg_opts_print_help(FILE *f, const cg_opt *opts, int n_opts);

/* Prints "cgrad CMD: <message>" and a hint to see `cgrad help CMD` on
 * stderr; returns CG_EXIT_USAGE. */
int cg_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "cgrad CMD: <cg_last_error()>" on stderr; returns CG_EXIT_FAIL. */
int cg_cmd_fail(const char *cmd);

/*
 * The dataset root a command should read, the one place that decides:
 * cg_locate_dataset(NAME, --data, ...), so --data PATH, else
 * $CGRAD_DATA/NAME, else the cache, else a download, where NAME is
 * --dataset or "mnist_sample". Writes it to out; on failure cg_last_error
 * says what to pass. cg_cli_data_root is the same for NAME mnist_sample.
 */
cg_status cg_cli_dataset_root(const cg_data_opts *o, char *out, size_t size);
cg_status cg_cli_data_root(const char *data_opt, char *out, size_t size);

/* Monotonic wall-clock seconds, for the "time"/"seconds" reports. */
double cg_cli_now(void);

#endif
