/* Dynamic NTK (HF rope_type "dynamic"): the base grows with the sequence length, so the
 * plan is redone for every forward pass length. */
#include <math.h>
#include <string.h>

#include "method.h"
#include "rope_common.h"

enum { P_FACTOR, P_ORIG };

static int plan_dynamic_ntk(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                            char *err, size_t errlen) {
    int d = ctx->cfg->n_rot;
    if (d <= 2) {
        snprintf(err, errlen, "dynamic_ntk: needs n_rot > 2 (the exponent is d/(d-2)), model has %d", d);
        return -1;
    }
    double orig = rope_orig_len(ctx, values[P_ORIG]);
    double factor = values[P_FACTOR];
    int seq_len = ctx->seq_len > 0 ? ctx->seq_len : ctx->target_len;
    double len = seq_len > orig ? (double)seq_len : orig;          /* HF: max(seq_len, L) */
    /* len/orig is exactly 1 while l <= L, and then so is alpha: the plan is bitwise baseline */
    double alpha = factor * (len / orig) - (factor - 1);
    double base = ctx->cfg->rope_base * pow(alpha, (double)d / (d - 2));
    rope_plain(base, d, out->inv_freq);
    out->used[P_FACTOR] = factor;
    out->used[P_ORIG] = orig;
    snprintf(out->note, sizeof out->note, "seq_len %d%s: alpha %.9g, base %.9g -> %.9g", seq_len,
             ctx->seq_len > 0 ? "" : " (target_len, no seq_len given)", alpha, ctx->cfg->rope_base, base);
    return 0;
}

const struct method method_dynamic_ntk = {
    .name = "dynamic_ntk",
    .summary = "Dynamic NTK (HF \"dynamic\"): base grows with the sequence length beyond L",
    .help =
        "HF _compute_dynamic_ntk_parameters: l' = max(l, L),\n"
        "b' = b * (s*l'/L - (s-1))^(d/(d-2)), theta'_i = b'^(-2i/d); attention factor 1.\n"
        "Equals the model's own RoPE while l <= L. l = the number of positions in the forward pass:\n"
        "the whole window including BOS for perplexity, the prompt length for passkey and other\n"
        "generation tasks (the plan is not changed while generating). Keys are rotated with the\n"
        "plan of the pass that computes them.\n"
        "Default s = 1 (HF requires factor): alpha = l/L, so at l = target_len the base equals ntk's\n"
        "with its default factor. With s > 1, alpha at l = s*L is s*s - s + 1, not s.\n"
        "llama.cpp has no dynamic NTK; vLLM computes it once at l = s*L (static).",
    .n_params = 2,
    .params = {
        {"factor", MPARAM_FLOAT, 1, 1, 65536, "HF factor s"},
        {"original_max_position_embeddings", MPARAM_INT, NAN, 1, 16777216,
         "L, the trained context (HF max_position_embeddings); default the model's context_length"},
    },
    .depends_on_seq_len = true,
    .plan = plan_dynamic_ntk,
};
