/* SelfExtend (datamllab/LongLM, arXiv 2401.01325): neighbour attention with plain positions
 * inside a window, grouped (floor-divided) positions beyond it, merged in one softmax. The
 * plan carries G and W; the engine computes the grouped positions from token positions. */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_GROUP, P_WINDOW };

/* Largest relative distance a grouped query/key pair reaches over positions 0..n-1. */
static long long grouped_reach(int n, int group, int window) {
    return (long long)(n - 1) / group + window - window / group;
}

static int plan_selfextend(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                           char *err, size_t errlen) {
    int L = ctx->cfg->ctx_train, n = ctx->target_len;
    int window = isnan(values[P_WINDOW]) ? (L / 4 < 1024 ? (L / 4 > 0 ? L / 4 : 1) : 1024)
                                         : (int)values[P_WINDOW];
    int group;
    if (!isnan(values[P_GROUP])) {
        group = (int)values[P_GROUP];
    } else {
        /* The smallest G whose largest grouped distance stays inside the trained range. */
        for (group = 1; group <= 65536 && grouped_reach(n, group, window) > L - 1; group++) {}
        if (group > 65536) {
            snprintf(err, errlen, "selfextend: no group size fits target_len %d into context_length %d with "
                     "window %d; pass a smaller window= or an explicit group=", n, L, window);
            return -1;
        }
    }
    rope_from_metadata(ctx->cfg, out);
    /* G = 1 makes the grouped positions the plain ones: exactly plain attention, so skip it. */
    out->se_group = group > 1 ? group : 0;
    out->se_window = group > 1 ? window : 0;
    out->used[P_GROUP] = group;
    out->used[P_WINDOW] = window;
    long long reach = grouped_reach(n, group, window);
    char text[160];
    snprintf(text, sizeof text, "G %d%s, W %d%s; largest grouped distance at %d tokens: %lld%s%s", group,
             isnan(values[P_GROUP]) ? " (fitted)" : "", window, isnan(values[P_WINDOW]) ? " (default)" : "",
             n, reach, reach > L - 1 ? " > trained range" : "", group == 1 ? "; G 1 = plain attention" : "");
    plan_note_append(out, text);
    return 0;
}

const struct method method_selfextend = {
    .name = "selfextend",
    .summary = "SelfExtend: plain positions within `window`, floor(p/group) positions beyond",
    .help =
        "LongLM self_extend_forward (prefill), positions as the engine computes them from token\n"
        "positions p (query i, key j):\n"
        "  neighbour: q_pos = i, k_pos = j, used where 0 <= i - j < W\n"
        "  grouped:   q_pos = floor(i/G) + W - floor(W/G), k_pos = floor(j/G), used where i - j >= W\n"
        "  both logits (q.k/sqrt(d), the model's own RoPE) meet in one softmax row.\n"
        "Integer W//G as in the legacy patch and the fixed Llama_4_40 eager path (Llama.py still has\n"
        "float W/G; they differ only when W % G != 0). LongLM always shifts by W - W//G; its\n"
        "`shift = 0 when max position < W` case only arises when no pair is grouped.\n"
        "Defaults: W = min(1024, L/4) (LongLM's 1024 is L/4 for 4k Llama-2); G = the smallest\n"
        "group for which the largest grouped distance floor((n-1)/G) + W - W//G <= L - 1 with\n"
        "n = target_len, fitted per cell and recorded (LongLM's own default is G = 8; its README\n"
        "suggests more headroom: (1/2~2/3) L > W + (n-W)/G). G = 1 is plain attention and the plan\n"
        "turns SelfExtend off. Not llama.cpp's --grp-attn-n/-w (a different algorithm).\n"
        "scale_base (query log-scaling) is not implemented.",
    .n_params = 2,
    .params = {
        {"group", MPARAM_INT, NAN, 1, 65536, "G, group size; default fitted to target_len (see help)"},
        {"window", MPARAM_INT, NAN, 1, 16777216, "W, neighbour window; default min(1024, L/4)"},
    },
    .plan = plan_selfextend,
};
