/* The model's own RoPE, exactly as its GGUF describes it: the base from rope.freq_base,
 * when rope.scaling.* says so the linear or YaRN scaling the model was fine-tuned with,
 * and the file's rope_freqs divisors (applied by method_plan, as for every method). The reference every other method is compared against. */
#include <math.h>
#include <string.h>

#include "method.h"
#include "rope_common.h"

static int plan_baseline(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                         char *err, size_t errlen) {
    (void)values; (void)err; (void)errlen;
    rope_from_metadata(ctx->cfg, out);
    return 0;
}

const struct method method_baseline = {
    .name = "baseline",
    .summary = "The model's own RoPE (rope.freq_base, any linear/yarn rope.scaling, the rope_freqs tensor)",
    .help =
        "theta_i = base^(-2i/d), i < d/2, d = n_rot, base = rope.freq_base (HF\n"
        "_compute_default_rope_parameters); attention factor 1.\n"
        "If the GGUF says rope.scaling.type = linear with a factor s: theta_i / s (HF \"linear\").\n"
        "If it says yarn with a factor: the YaRN table of method yarn with beta_fast 32, beta_slow 1,\n"
        "L = rope.scaling.original_context_length (context_length when absent, as llama.cpp does; wrong\n"
        "for YaRN fine-tunes that omit the key) and mscale = rope.scaling.attn_factor when present\n"
        "(taken as HF attention_factor) else 0.1 ln s + 1. Other scaling types are not applied and\n"
        "the plan note says so. The metadata used is written into the plan note.\n"
        "If the file has a rope_freqs tensor (Llama 3.1 conversions): theta_i / rope_freqs[i], as\n"
        "llama.cpp does; every other method starts from those frequencies too (methods/README.md).",
    .n_params = 0,
    .plan = plan_baseline,
};
