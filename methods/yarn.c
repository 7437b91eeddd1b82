/* YaRN: NTK-by-parts interpolation plus an attention temperature (HF rope_type "yarn"). */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_FACTOR, P_ORIG, P_BETA_FAST, P_BETA_SLOW, P_ATTN, P_TRUNCATE };

static int plan_yarn(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                     char *err, size_t errlen) {
    double beta_fast = values[P_BETA_FAST], beta_slow = values[P_BETA_SLOW];
    if (!(beta_fast > beta_slow)) {
        snprintf(err, errlen, "yarn: beta_fast=%g must be greater than beta_slow=%g", beta_fast, beta_slow);
        return -1;
    }
    double orig = rope_orig_len(ctx, values[P_ORIG]);
    double factor = rope_factor(ctx, values[P_FACTOR], orig, out->note, sizeof out->note);
    double mscale = isnan(values[P_ATTN]) ? yarn_default_mscale(factor) : values[P_ATTN];
    int truncate = (int)values[P_TRUNCATE];
    int d = ctx->cfg->n_rot;
    rope_yarn(ctx->cfg->rope_base, d, factor, orig, beta_fast, beta_slow, truncate, out->inv_freq);
    out->mscale = (float)mscale;
    out->used[P_FACTOR] = factor;
    out->used[P_ORIG] = orig;
    out->used[P_BETA_FAST] = beta_fast;
    out->used[P_BETA_SLOW] = beta_slow;
    out->used[P_ATTN] = mscale;
    out->used[P_TRUNCATE] = truncate;
    double low, high;
    yarn_correction_range(beta_fast, beta_slow, d, ctx->cfg->rope_base, orig, truncate, &low, &high);
    char text[120];
    snprintf(text, sizeof text, "ramp dims [%.6g, %.6g], mscale %.9g (logits x %.9g)", low, high, mscale,
             mscale * mscale);
    plan_note_append(out, text);
    return 0;
}

const struct method method_yarn = {
    .name = "yarn",
    .summary = "YaRN (HF \"yarn\"): NTK-by-parts ramp between extrapolation and PI, plus mscale",
    .help =
        "HF _compute_yarn_parameters (v5 form: factor used as given) = jquesnelle/yarn\n"
        "LlamaYaRNScaledRotaryEmbedding:\n"
        "  dim(r) = d ln(L/(2 pi r)) / (2 ln b)                    (double)\n"
        "  low = max(floor(dim(beta_fast)), 0), high = min(ceil(dim(beta_slow)), d-1),\n"
        "  high += 0.001 if equal; ramp_i = clamp((i-low)/(high-low), 0, 1)  (float32, as HF)\n"
        "  theta'_i = theta_i/s * ramp_i + theta_i * (1 - ramp_i)\n"
        "  mscale = attention_factor, default 0.1 ln s + 1 (1 when s <= 1); it multiplies cos AND\n"
        "  sin, so the logits get mscale^2, as in HF, the yarn repo and llama.cpp.\n"
        "truncate=0 skips floor/ceil (newer HF, gpt-oss). Frequencies are evaluated in double and\n"
        "rounded once (HF blends in float32: ~1e-7 relative difference).\n"
        "Not implemented: DeepSeek mscale/mscale_all_dim; the older HF override factor :=\n"
        "max_position_embeddings/original. llama.cpp differs: its ramp denominator is\n"
        "max(0.001, high-low) and the correction dims are computed in float (logf); it applies\n"
        "mscale only when ext_factor != 0, and falls back to context_length when the GGUF has no\n"
        "original_context_length. Default s = max(1, target_len / L).",
    .n_params = 6,
    .params = {
        {"factor", MPARAM_FLOAT, NAN, 1, 65536, "scale s; default max(1, target_len / L)"},
        {"original_max_position_embeddings", MPARAM_INT, NAN, 1, 16777216,
         "L, the trained context; default the model's context_length"},
        {"beta_fast", MPARAM_FLOAT, YARN_BETA_FAST, 0.001, 100000,
         "rotations over L where the ramp starts (extrapolation)"},
        {"beta_slow", MPARAM_FLOAT, YARN_BETA_SLOW, 0.001, 100000,
         "rotations over L where the ramp ends (interpolation)"},
        {"attention_factor", MPARAM_FLOAT, NAN, 0.01, 100, "mscale on cos and sin; default 0.1 ln s + 1"},
        {"truncate", MPARAM_INT, YARN_TRUNCATE, 0, 1, "1: floor/ceil the correction dims (HF default)"},
    },
    .plan = plan_yarn,
};
