/* ABF, "adjusted base frequency" (LLaMA 2 Long): a larger RoPE base. */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_THETA };

static int plan_abf(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                    char *err, size_t errlen) {
    (void)err; (void)errlen;
    double theta = values[P_THETA];
    rope_plain(theta, ctx->cfg->n_rot, out->inv_freq);
    out->used[P_THETA] = theta;
    snprintf(out->note, sizeof out->note, "base %.9g -> %.9g, no continual pretraining", ctx->cfg->rope_base,
             theta);
    return 0;
}

const struct method method_abf = {
    .name = "abf",
    .summary = "Adjusted base frequency: rope_theta 500000 (no continual pretraining)",
    .help =
        "theta_i = rope_theta^(-2i/d), attention factor 1 (LLaMA 2 Long, arXiv 2309.16039; HF\n"
        "rope_theta, llama.cpp --rope-freq-base). In the paper ABF is a training recipe: 400B tokens\n"
        "of continual pretraining at 16k-32k. Applied here at inference only, it is NTK-style\n"
        "extrapolation: label results \"ABF, no continual pretraining\".",
    .n_params = 1,
    .params = {
        {"rope_theta", MPARAM_FLOAT, 500000, 2, 1e12, "the new RoPE base"},
    },
    .plan = plan_abf,
};
