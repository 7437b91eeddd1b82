/* ctxbench: measure how RoPE context-extension methods behave past a model's
 * trained context. This file only dispatches to the subcommands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "input.h"

/* Declared here, not in cli.h, so this command's file stands alone. */

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"info", "show a GGUF model's architecture, shapes, types, RoPE settings and tokenizer", cmd_info},
    {"tokenize", "print the token ids and pieces of a text", cmd_tokenize},
    {"generate", "greedy generation from a prompt (sanity check)", cmd_generate},
    {"ppl", "perplexity over non-overlapping windows of a text file", cmd_ppl},
    {"methods", "list the context-extension methods and their parameters", cmd_methods},
    {"tasks", "list the tasks and their settings (type, range, default)", cmd_tasks},
    {"synth", "write a random-weight GGUF of a given shape and type", cmd_synth},
    {"bench", "prefill speed, attention share and peak memory of a model", cmd_bench},
    {"sweep", "run methods x tasks x lengths on a model into an HDF5 file (resumable)", cmd_sweep},
    {"merge", "join results files (a job array's shards) into one, refusing conflicting cells", cmd_merge},
    {"slurm", "run a sweep as a Slurm job array of shards and a dependent merge (sbatch)", cmd_slurm},
    {"export", "write a sweep's HDF5 results as CSV", cmd_export},
    {"report", "Markdown tables (method x length) of a sweep's headline metrics", cmd_report},
    {"plot", "PNG + SVG figures (gnuplot) and their data files from a sweep's HDF5 results", cmd_plot},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ctxbench COMMAND [options]   (ctxbench COMMAND --help for each)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    /* A write past the file size limit (ulimit -f) fails with EFBIG and takes the same
     * error path as a full disk, instead of the default SIGXFSZ killing the process
     * without a word. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli_llamacpp_aliases(argc - 1, argv + 1);
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "ctxbench: unknown command '%s'\n", ECHO(argv[1]));
    usage(stderr);
    return 2;
}
