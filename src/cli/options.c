/*
 * options.c - parsing the options of a cgrad command (see options.h).
 */
#include "cli/options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cg_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cgrad %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'cgrad help %s')\n", cmd);
    va_end(ap);
    return CG_EXIT_USAGE;
}

int cg_cmd_fail(const char *cmd) {
    const char *msg = cg_last_error();
    fprintf(stderr, "cgrad %s: %s\n", cmd, msg && *msg ? msg : "failed");
    return CG_EXIT_FAIL;
}

/* "between 1 and 100000", "greater than 0 and at most 1000" */
static void describe_range(const cg_opt *o, char *buf, size_t size) {
    snprintf(buf, size, "%s %g and %s %g", o->min_exclusive ? "greater than" : "at least", o->min,
             "at most", o->max);
}

/* The value of option o from text v; CG_OPTS_CONTINUE or CG_EXIT_USAGE. */
static int set_value(const char *cmd, const cg_opt *o, const char *v) {
    char *end = NULL;
    char range[96];
    switch (o->type) {
    case CG_OPT_FLAG:
        *(bool *)o->out = true;
        return CG_OPTS_CONTINUE;
    case CG_OPT_STR:
        if (!*v) return cg_usage_error(cmd, "%s needs a non-empty value", o->name);
        *(const char **)o->out = v;
        return CG_OPTS_CONTINUE;
    case CG_OPT_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno == ERANGE || (double)x < o->min || (double)x > o->max) {
            snprintf(range, sizeof range, "from %.0f to %.0f", o->min, o->max);
            return cg_usage_error(cmd, "%s expects a whole number %s, got '%s'", o->name, range, v);
        }
        *(int64_t *)o->out = (int64_t)x;
        return CG_OPTS_CONTINUE;
    }
    case CG_OPT_U64: {
        errno = 0;
        /* strtoull would quietly wrap "-1" to 2^64-1. */
        unsigned long long x = *v == '-' ? 0 : strtoull(v, &end, 10);
        if (!*v || *v == '-' || *end || errno == ERANGE)
            return cg_usage_error(cmd, "%s expects a whole number from 0 to %llu, got '%s'",
                                  o->name, (unsigned long long)UINT64_MAX, v);
        *(uint64_t *)o->out = (uint64_t)x;
        return CG_OPTS_CONTINUE;
    }
    case CG_OPT_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        bool low = o->min_exclusive ? !(x > o->min) : !(x >= o->min);
        if (!*v || *end || !isfinite(x) || low || x > o->max) {
            describe_range(o, range, sizeof range);
            return cg_usage_error(cmd, "%s expects a number %s, got '%s'", o->name, range, v);
        }
        *(double *)o->out = x;
        return CG_OPTS_CONTINUE;
    }
    case CG_OPT_CHOICE: {
        /* Walk "a|b|c" comparing whole words. */
        int i = 0;
        size_t vlen = strlen(v);
        for (const char *c = o->choices; *c; i++) {
            size_t len = strcspn(c, "|");
            if (len == vlen && strncmp(c, v, len) == 0) {
                *(int *)o->out = i;
                return CG_OPTS_CONTINUE;
            }
            c += len + (c[len] == '|');
        }
        return cg_usage_error(cmd, "%s expects one of %s, got '%s'", o->name, o->choices, v);
    }
    }
    return cg_usage_error(cmd, "%s: unknown option type", o->name);
}

/* "--lr X", "--model linear|mlp", "--json" */
static void option_words(const cg_opt *o, char *buf, size_t size) {
    static const char *const type_word[] = {
        [CG_OPT_FLAG] = NULL, [CG_OPT_STR] = "TEXT", [CG_OPT_INT] = "N",
        [CG_OPT_U64] = "N",   [CG_OPT_FLOAT] = "X",  [CG_OPT_CHOICE] = NULL,
    };
    const char *value = o->metavar ? o->metavar : o->type == CG_OPT_CHOICE ? o->choices
                                                                          : type_word[o->type];
    snprintf(buf, size, "%s%s%s", o->name, value ? " " : "", value ? value : "");
}

void cg_opts_print_help(FILE *f, const cg_opt *opts, int n_opts) {
    enum { COLUMN = 22 };
    for (int k = 0; k < n_opts; k++) {
        if (!opts[k].help) continue;
        char words[128];
        option_words(&opts[k], words, sizeof words);
        /* The help text after the option, its own line breaks indented. */
        int pad = (int)strlen(words) < COLUMN - 3 ? COLUMN - 2 - (int)strlen(words) : 0;
        if (pad)
            fprintf(f, "  %s%*s", words, pad, "");
        else
            fprintf(f, "  %s\n%*s", words, COLUMN, "");
        for (const char *h = opts[k].help; *h; h++) {
            fputc(*h, f);
            if (*h == '\n' && h[1]) fprintf(f, "%*s", COLUMN, "");
        }
        fputc('\n', f);
    }
}

int cg_opts_parse(const char *cmd, const char *usage, int argc, char **argv, const cg_opt *opts,
                  int n_opts, const char **positional, int max_positional, int *n_positional) {
    int npos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') { /* "-" alone is a positional (stdin) */
            if (npos >= max_positional)
                return cg_usage_error(cmd, "unexpected argument '%s'", a);
            positional[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            cg_opts_print_help(stdout, opts, n_opts);
            return CG_EXIT_OK;
        }
        /* "--name=value" or "--name value" */
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const cg_opt *o = NULL;
        for (int k = 0; k < n_opts && !o; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, a, name_len) == 0)
                o = &opts[k];
        if (!o) return cg_usage_error(cmd, "unknown option '%.*s'", (int)name_len, a);
        const char *value = NULL;
        if (o->type == CG_OPT_FLAG) {
            if (eq) return cg_usage_error(cmd, "%s takes no value", o->name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return cg_usage_error(cmd, "%s needs a value", o->name);
        }
        int rc = set_value(cmd, o, value);
        if (rc != CG_OPTS_CONTINUE) return rc;
    }
    if (n_positional) *n_positional = npos;
    return CG_OPTS_CONTINUE;
}

cg_status cg_cli_dataset_root(const cg_data_opts *o, char *out, size_t size) {
    /* --data, else $CGRAD_DATA/NAME, else the cache, else a download. */
    const char *name = o->dataset ? o->dataset : "mnist_sample";
    return cg_locate_dataset(name, o->data, true, out, size);
}

cg_status cg_cli_data_root(const char *data_opt, char *out, size_t size) {
    return cg_cli_dataset_root(&(cg_data_opts){.data = data_opt}, out, size);
}

double cg_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
