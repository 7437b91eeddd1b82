/* Static "NTK-aware" scaling: a larger RoPE base, no fine-tuning assumed. */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_FACTOR, P_ORIG };

static int plan_ntk(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                    char *err, size_t errlen) {
    int d = ctx->cfg->n_rot;
    if (d <= 2) {
        snprintf(err, errlen, "ntk: needs n_rot > 2 (the exponent is d/(d-2)), model has %d", d);
        return -1;
    }
    double orig = rope_orig_len(ctx, values[P_ORIG]);
    double factor = rope_factor(ctx, values[P_FACTOR], orig, out->note, sizeof out->note);
    double base = ctx->cfg->rope_base * pow(factor, (double)d / (d - 2));
    rope_plain(base, d, out->inv_freq);
    out->used[P_FACTOR] = factor;
    out->used[P_ORIG] = orig;
    char text[80];
    snprintf(text, sizeof text, "base %.9g -> %.9g", ctx->cfg->rope_base, base);
    plan_note_append(out, text);
    return 0;
}

const struct method method_ntk = {
    .name = "ntk",
    .summary = "Static NTK-aware scaling: base * factor^(d/(d-2))",
    .help =
        "b' = b * s^(d/(d-2)), theta'_i = b'^(-2i/d), d = n_rot; attention factor 1\n"
        "(jquesnelle/yarn LlamaNTKScaledRotaryEmbedding; YaRN paper eq. 16). The lowest frequency\n"
        "is divided by exactly s, the highest is unchanged. Not a released HF rope_type (HF users\n"
        "edit rope_theta); not the b*s variant without the exponent. Default s = max(1, target_len/L).",
    .n_params = 2,
    .params = {
        {"factor", MPARAM_FLOAT, NAN, 1, 65536, "scale s; default max(1, target_len / L)"},
        {"original_max_position_embeddings", MPARAM_INT, NAN, 1, 16777216,
         "L, the trained context (only for the default factor); default the model's context_length"},
    },
    .plan = plan_ntk,
};
