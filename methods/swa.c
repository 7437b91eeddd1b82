/* Sliding-window attention (as in Mistral 7B v0.1) applied to any model. */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_WINDOW };

static int plan_swa(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                    char *err, size_t errlen) {
    (void)err; (void)errlen;
    int window = isnan(values[P_WINDOW]) ? ctx->cfg->ctx_train : (int)values[P_WINDOW];
    rope_from_metadata(ctx->cfg, out);
    out->swa_window = window;
    out->used[P_WINDOW] = window;
    char text[80];
    snprintf(text, sizeof text, "window %d keys (including itself)%s", window,
             isnan(values[P_WINDOW]) ? ", = context_length" : "");
    plan_note_append(out, text);
    return 0;
}

const struct method method_swa = {
    .name = "swa",
    .summary = "Sliding-window attention: each query sees the last `window` keys (model's own RoPE)",
    .help =
        "Query at position i sees key j iff 0 <= i - j < W: W keys including itself (llama.cpp\n"
        "is_masked_swa, HF eager/sdpa masks, vLLM). HF's old flash-attention path used W+1 keys;\n"
        "we do not. RoPE is the model's own, as method baseline. Default W = the model's context_length,\n"
        "so no relative distance beyond the trained range is ever seen.",
    .n_params = 1,
    .params = {
        {"window", MPARAM_INT, NAN, 1, 16777216, "W, keys per query including itself; default context_length"},
    },
    .plan = plan_swa,
};
