/* Context-extension methods as plugins. Each file methods/NAME.c defines
 * `const struct method method_NAME`; the build lists them (scripts/gen_registry.sh).
 * A method turns (model config, lengths, its parameters) into a struct method_plan:
 * the inverse-frequency table, the cos/sin scale, and the attention masks the
 * kernels understand. It never sees a backend. */
#ifndef CTX_METHOD_H
#define CTX_METHOD_H

#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>

#include "forward_plan.h"
#include "model.h"

#define METHOD_MAX_PARAMS 8
#define ROPE_MAX_FREQ 512       /* n_rot/2 upper bound; model_load rejects larger */

enum method_param_type { MPARAM_FLOAT, MPARAM_INT };

struct method_param {
    const char *name;            /* Hugging Face rope_scaling name where one exists */
    enum method_param_type type;
    double def;                  /* default; NAN = derived (from the model or the length), see help */
    double min, max;             /* valid range, inclusive */
    const char *help;
};

/* What a method may look at when it plans a forward pass. */
struct method_ctx {
    const struct model_config *cfg;
    int target_len;   /* the context length this cell evaluates (e.g. 8192 in a sweep) */
    int seq_len;      /* the current sequence length: tokens in this forward pass for perplexity
                         windows (BOS included), the prompt length for generation tasks */
};

struct method_plan {
    float inv_freq[ROPE_MAX_FREQ];
    int n_freq;
    float mscale;
    int swa_window;
    int se_group, se_window;
    double used[METHOD_MAX_PARAMS];  /* every parameter's value after defaults, in params[] order */
    bool rope_freqs_applied;         /* the file's rope_freqs divided inv_freq (the note says so too) */
    char note[256];                  /* e.g. "factor derived: 8192/512 = 16" or metadata used */
};

struct method {
    const char *name;
    const char *summary;                  /* one line for `ctxbench methods` */
    const char *help;                     /* reference, formulas, choices between references */
    int n_params;
    struct method_param params[METHOD_MAX_PARAMS];
    bool depends_on_seq_len;              /* plan must be redone when seq_len changes */
    /* The method computes per-frequency factors of its own (llama3's wavelength bands).
     * Every other method's table is divided by a file's rope_freqs like the model's own
     * frequencies; such a method is refused on a file that carries them instead, since
     * it would scale the frequencies twice (see methods/README.md). */
    bool own_freq_factors;
    /* values[i] is the user's value or NAN when not given. Returns 0, or -1 + reason. */
    int (*plan)(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                char *err, size_t errlen);
};

/* A method with the parameters the user gave ("yarn:factor=8,beta_fast=16"). */
struct method_spec {
    const struct method *method;
    double values[METHOD_MAX_PARAMS];     /* NAN where not given */
    char text[256];                       /* canonical text: name[:k=v,...] of the given values */
};

const struct method *method_find(const char *name);
/* Parses one spec. Errors list what is valid (methods, or the method's parameters and ranges). */
int method_spec_parse(const char *text, struct method_spec *out, char *err, size_t errlen);
/* Parses a list; see methods/README.md for the separator rule. *out is malloc'd. */
int method_spec_list_parse(const char *text, struct method_spec **out, int *n, char *err, size_t errlen);
/* Runs the method's planner and fills the plan. */
int method_plan(const struct method_spec *spec, const struct method_ctx *ctx, struct method_plan *out,
                char *err, size_t errlen);
/* The forward_plan view of a method_plan (pointers into it). */
struct forward_plan method_forward_plan(const struct method_plan *p);
/* Lists every method with its summary, parameters (type, range, default) and help. */
void method_print_all(FILE *f);

#endif
