/*
 * commands.h - the subcommands of the `cgrad` program, one file each
 * (src/cli/cmd_NAME.c), dispatched by main.c.
 *
 * Contract for every command:
 *  - argv[0] is the command's name, argv[1..argc) its arguments, parsed with
 *    cg_opts_parse (cli/options.h);
 *  - "-h"/"--help" prints its usage to stdout and returns 0 (that is what
 *    `cgrad help CMD` runs);
 *  - returns CG_EXIT_OK (0), CG_EXIT_FAIL (1, after "cgrad CMD: <why>" on
 *    stderr, see cg_cmd_fail) or CG_EXIT_USAGE (2, a wrong command line).
 */
#ifndef CGRAD_CLI_COMMANDS_H
#define CGRAD_CLI_COMMANDS_H

int cg_cmd_baseline(int argc, char **argv);    /* cmd_baseline.c    */
int cg_cmd_train(int argc, char **argv);       /* cmd_train.c       */
int cg_cmd_eval(int argc, char **argv);        /* cmd_eval.c        */
int cg_cmd_predict(int argc, char **argv);     /* cmd_predict.c     */
int cg_cmd_fetch(int argc, char **argv);       /* cmd_fetch.c       */
int cg_cmd_walkthrough(int argc, char **argv); /* cmd_walkthrough.c */
int cg_cmd_show(int argc, char **argv);        /* cmd_show.c        */
int cg_cmd_serve(int argc, char **argv);       /* cmd_serve.c (needs libmicrohttpd) */
int cg_cmd_lr_find(int argc, char **argv);     /* cmd_lr_find.c     */
int cg_cmd_interpret(int argc, char **argv);   /* cmd_interpret.c   */
int cg_cmd_plot(int argc, char **argv);        /* cmd_plot.c (needs libcairo)     */

#endif
