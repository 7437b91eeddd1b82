/* Linear position interpolation (Chen et al. 2023; HF rope_type "linear"). */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_FACTOR, P_ORIG };

static int plan_pi(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                   char *err, size_t errlen) {
    (void)err; (void)errlen;
    double orig = rope_orig_len(ctx, values[P_ORIG]);
    double factor = rope_factor(ctx, values[P_FACTOR], orig, out->note, sizeof out->note);
    rope_linear(ctx->cfg->rope_base, ctx->cfg->n_rot, factor, out->inv_freq);
    out->used[P_FACTOR] = factor;
    out->used[P_ORIG] = orig;
    return 0;
}

const struct method method_pi = {
    .name = "pi",
    .summary = "Position interpolation (HF \"linear\"): inv_freq / factor",
    .help =
        "theta'_i = theta_i / s, i.e. position p is rotated as p/s (HF\n"
        "_compute_linear_scaling_rope_parameters: inv_freq /= factor; llama.cpp freq_scale = 1/s).\n"
        "Attention factor 1. Default s = max(1, target_len / L), a real number; LongLoRA rounds it\n"
        "up (ceil) - pass factor= to do the same.",
    .n_params = 2,
    .params = {
        {"factor", MPARAM_FLOAT, NAN, 1, 65536, "scale s; default max(1, target_len / L)"},
        {"original_max_position_embeddings", MPARAM_INT, NAN, 1, 16777216,
         "L, the trained context; default the model's context_length"},
    },
    .plan = plan_pi,
};
