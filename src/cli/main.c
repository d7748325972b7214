/*
 * main.c - the `cgrad` program: finds the subcommand and runs it.
 *
 *   cgrad --version | --help | help [CMD] | CMD [args...]
 *
 * Exit status: 0 ok, 1 the work failed, 2 a wrong command line.
 */
#include <stdio.h>
#include <string.h>

#include "cgrad.h"
#include "cli/commands.h"
#include "cli/options.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

/* In the order a reader of fastbook chapter 4 meets them. */
static const command COMMANDS[] = {
    {"fetch", cg_cmd_fetch, "download a dataset into the cache (fastai's untar_data)"},
    {"walkthrough", cg_cmd_walkthrough, "the article, step by step, computed on the real data"},
    {"show", cg_cmd_show, "draw an image in the terminal, or a grid of the data to a file"},
    {"baseline", cg_cmd_baseline, "the pixel-similarity baseline: nearest 'ideal' 3 or 7"},
    {"train", cg_cmd_train, "train a model (linear, mlp, cnn, resnet, any --arch); mpirun: on N ranks"},
    {"eval", cg_cmd_eval, "a saved model's accuracy on the validation images"},
    {"predict", cg_cmd_predict, "classify PNG images with a saved model"},
    {"serve", cg_cmd_serve, "a web page to draw a digit on and see the model's guess"},
    {"lr-find", cg_cmd_lr_find, "fastai's learning-rate finder: suggests an lr to train with"},
    {"interpret", cg_cmd_interpret, "a saved model's confusion matrix and top losses"},
    {"plot", cg_cmd_plot, "draw a function or a model's weights as a PNG or SVG picture"},
};
#define N_COMMANDS ((int)(sizeof COMMANDS / sizeof COMMANDS[0]))

static void usage(FILE *f) {
    fprintf(f,
            "usage: cgrad COMMAND [options]\n"
            "cgrad %s - fastbook chapter 4 (a digit classifier) in C, and what fastai does next\n\n"
            "commands:\n",
            CG_VERSION);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f,
            "\n'cgrad help COMMAND' or 'cgrad COMMAND --help' shows a command's options.\n"
            "Data: --data PATH, else $CGRAD_DATA/NAME, else the cache, NAME being --dataset\n"
            "(mnist_sample by default, mnist_tiny, mnist); --classes 3,7 keeps those classes.\n"
            "Decoded image folders are cached in the cache's images/ (CGRAD_NO_CACHE=1: off).\n"
            "Exit status: 0 ok, 1 failure, 2 bad usage.\n");
}

static const command *find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

static int unknown(const char *name) {
    fprintf(stderr, "cgrad: unknown command '%s' (see 'cgrad --help')\n", name);
    return CG_EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CG_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("cgrad %s (gemm kernel: %s)\n", CG_VERSION, cg_gemm_kernel_name());
        return CG_EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        usage(stdout);
        return CG_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc > 3) {
            fprintf(stderr, "cgrad help: give one command (see 'cgrad --help')\n");
            return CG_EXIT_USAGE;
        }
        const command *c = find(argv[2]);
        if (!c) return unknown(argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->run(2, help_argv);
    }
    const command *c = find(cmd);
    if (!c) return unknown(cmd);
    return c->run(argc - 1, argv + 1);
}
