/* Command-line plumbing shared by the subcommands: the flags every command that
 * runs a model understands (llama.cpp names where they exist) and the method spec
 * they resolve to. */
#ifndef CTX_CLI_H
#define CTX_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "method.h"
#include "runtime.h"

struct run_opts {
    const char *model;        /* -m */
    int threads;              /* -t */
    const char *backend;      /* --backend cpu|opencl|auto */
    int device;               /* --device N, -1 = the backend's default */
    const char *method;       /* --method SPEC */
    const char *rope_scaling; /* --rope-scaling none|linear|yarn */
    double rope_scale;        /* --rope-scale F */
    double rope_freq_base;    /* --rope-freq-base B */
    const char *rope_scaling_json; /* --rope-scaling-json '{"rope_type":...}' (HF rope_scaling) */
    const char *hf_config;    /* --hf-config config.json (its rope_scaling and rope_theta) */
    double rope_freq_scale;   /* --rope-freq-scale F = 1/factor, 0 = not given */
    /* llama.cpp's YaRN flags; NAN (orig: -1) = not given */
    long yarn_orig_ctx;       /* --yarn-orig-ctx N, 0 = the model's */
    double yarn_ext_factor;   /* --yarn-ext-factor E: -1 auto, 0 ramp off, 1 ramp on */
    double yarn_attn_factor;  /* --yarn-attn-factor A: mscale = A (1 + 0.1 ln s) */
    double yarn_beta_fast, yarn_beta_slow;
    int tile_q, tile_k;       /* --tile-q, --tile-k */
    struct kv_types kv;       /* -ctk/--cache-type-k, -ctv/--cache-type-v (default f32) */
    const char *backend_params; /* --backend-params K=V,... appended to the backend's parameters */
};

/* Long options understood by cli_run_opt, to splice into a command's getopt_long table. */
#define CLI_RUN_LONGOPTS                                                                          \
    {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},                 \
    {"backend", required_argument, 0, 1001}, {"method", required_argument, 0, 1002},              \
    {"rope-scaling", required_argument, 0, 1003}, {"rope-scale", required_argument, 0, 1004},     \
    {"rope-freq-base", required_argument, 0, 1005}, {"tile-q", required_argument, 0, 1006},       \
    {"tile-k", required_argument, 0, 1007}, {"device", required_argument, 0, 1008},                \
    {"rope-scaling-json", required_argument, 0, 1009}, {"hf-config", required_argument, 0, 1010},  \
    {"rope-freq-scale", required_argument, 0, 1011}, {"yarn-orig-ctx", required_argument, 0, 1012}, \
    {"yarn-ext-factor", required_argument, 0, 1013}, {"yarn-attn-factor", required_argument, 0, 1014}, \
    {"yarn-beta-fast", required_argument, 0, 1015}, {"yarn-beta-slow", required_argument, 0, 1016}, \
    {"cache-type-k", required_argument, 0, 1017}, {"cache-type-v", required_argument, 0, 1018}, \
    {"backend-params", required_argument, 0, 1019}, \
    {"grp-attn-n", required_argument, 0, 1030}, {"grp-attn-w", required_argument, 0, 1031}

#define CLI_RUN_HELP                                                                               \
    "  -m, --model FILE        GGUF model\n"                                                       \
    "  -t, --threads N         worker threads of the CPU backend (default: all cores)\n"           \
    "      --backend NAME      cpu | opencl | auto (default auto: a GPU through OpenCL if there\n" \
    "                          is one, else the CPU)\n"                                             \
    "      --device N          the backend's device N (ctxbench info --backend NAME lists them)\n" \
    "      --method SPEC       extension method, e.g. yarn:factor=8 (see `ctxbench methods`)\n"    \
    "      --rope-scaling T    llama.cpp style: none | linear | yarn (sets the method)\n"          \
    "      --rope-scale F      llama.cpp style: context scale factor for --rope-scaling\n"         \
    "      --rope-freq-base B  llama.cpp style: RoPE base (alone: method abf:rope_theta=B)\n"      \
    "      --rope-freq-scale F llama.cpp style: = --rope-scale 1/F\n"                              \
    "      --yarn-orig-ctx N, --yarn-beta-fast F, --yarn-beta-slow F, --yarn-attn-factor A,\n"     \
    "      --yarn-ext-factor E llama.cpp's YaRN flags with --rope-scaling yarn (yarn's\n"           \
    "                          original_max_position_embeddings, beta_fast, beta_slow,\n"         \
    "                          attention_factor = A (1 + 0.1 ln s); E 0 = pi, 1 or -1 = yarn)\n"  \
    "      --rope-scaling-json J  Hugging Face rope_scaling dict, e.g. '{\"rope_type\":\"yarn\",\n"       \
    "                          \"factor\":4}' (sets the method; see methods/README.md)\n"          \
    "      --hf-config FILE    a Hugging Face config.json: its rope_scaling sets the method, its\n" \
    "                          rope_theta must be the model's base\n"                             \
    "      --tile-q N, --tile-k N  the CPU backend's attention tiles (default: kernel's choice)\n"     \
    "  -ctk, --cache-type-k T  the KV cache's type for keys: f32 (default), f16, q8_0\n"           \
    "  -ctv, --cache-type-v T  the same for values (README: \"KV cache types\")\n"                   \
    "      --backend-params P  more of the backend's parameters, K=V,... (ctxbench info --backend\n" \
    "                          all lists them; e.g. cpu f32_budget=BYTES)\n"

void run_opts_init(struct run_opts *o);
/* llama.cpp's multi-letter single-dash flags -ctk and -ctv, which getopt would read as -c
 * with a value: rewritten in argv[1..argc) to --cache-type-k and --cache-type-v (up to a
 * "--"), before a command parses its options. */
void cli_llamacpp_aliases(int argc, char **argv);
/* Handles one getopt result if it is a run option: returns 1 if handled, 0 if not
 * one of ours, -1 on a bad value (message printed). */
int cli_run_opt(struct run_opts *o, int opt, const char *arg);
/* Resolves --method / --rope-* / --rope-scaling-json / --hf-config into a method spec
 * (default: baseline). */
int cli_method_spec(const struct run_opts *o, struct method_spec *spec, char *err, size_t errlen);
int cli_open(const struct run_opts *o, struct runtime *rt, char *err, size_t errlen);
/* The backend --backend names (auto resolved) and its parameter string from the run
 * options; NULL + reason when it cannot run here or an option does not apply. */
const struct backend_ops *cli_backend(const struct run_opts *o, char *params, size_t cap, char *err, size_t errlen);

/* Strict number parsing: the whole string must be a number in range. */
bool parse_int(const char *s, long lo, long hi, long *out);
bool parse_double(const char *s, double *out);

struct store_cell;
/* For the commands that take one RESULTS.h5 argument (export, report): the cells of the
 * file left after getopt (argv[optind]), read without arrays. 0, or the exit status to
 * return: 2 after printing usage to stderr when there is not exactly one argument, 1
 * after printing why the file could not be read. */
int cli_read_results(int argc, char **argv, const char *usage, struct store_cell **cells, int *n);

/* Subcommands: each returns the process exit status. */
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_methods(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_merge(int argc, char **argv);
struct sweep_config;
/* cmd_sweep, but with `instead` called on the opened runtime and the checked grid in place
 * of running it (ctxbench slurm); its return value is the exit status. */
int cmd_sweep_with(int argc, char **argv, int (*instead)(struct runtime *, const struct sweep_config *, void *),
                   void *arg);
int cmd_slurm(int argc, char **argv);

#endif
