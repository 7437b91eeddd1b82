/* Llama 3.1 frequency bands (HF rope_type "llama3"): low frequencies interpolated, high
 * frequencies kept, a linear blend in between. */
#include <math.h>

#include "method.h"
#include "rope_common.h"

enum { P_FACTOR, P_LOW, P_HIGH, P_ORIG };

static int plan_llama3(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                       char *err, size_t errlen) {
    double low = values[P_LOW], high = values[P_HIGH];
    if (!(high > low)) {
        snprintf(err, errlen, "llama3: high_freq_factor=%g must be greater than low_freq_factor=%g", high, low);
        return -1;
    }
    double orig = rope_orig_len(ctx, values[P_ORIG]);
    double factor = rope_factor(ctx, values[P_FACTOR], orig, out->note, sizeof out->note);
    double low_wavelen = orig / low, high_wavelen = orig / high;
    int d = ctx->cfg->n_rot, n_low = 0, n_mid = 0;
    for (int i = 0; i < d / 2; i++) {
        double theta = rope_theta(ctx->cfg->rope_base, d, i), interp = theta / factor;
        double wavelen = 2 * M_PI / theta, f;
        if (wavelen > low_wavelen) {          /* low band: PI */
            f = interp;
            n_low++;
        } else if (wavelen < high_wavelen) {  /* high band: unchanged */
            f = theta;
        } else {                              /* blend, smooth = 0 at low_wavelen, 1 at high_wavelen */
            double smooth = (orig / wavelen - low) / (high - low);
            f = interp + (theta - interp) * smooth;   /* = (1-smooth) theta/s + smooth theta */
            n_mid++;
        }
        out->inv_freq[i] = (float)f;
    }
    out->used[P_FACTOR] = factor;
    out->used[P_LOW] = low;
    out->used[P_HIGH] = high;
    out->used[P_ORIG] = orig;
    char text[96];
    snprintf(text, sizeof text, "%d interpolated, %d blended, %d kept of %d frequencies", n_low, n_mid,
             d / 2 - n_low - n_mid, d / 2);
    plan_note_append(out, text);
    return 0;
}

const struct method method_llama3 = {
    .name = "llama3",
    .summary = "Llama 3.1 scaling (HF \"llama3\"): PI on low frequencies, none on high, blend between",
    .help =
        "HF _compute_llama3_parameters: wl_i = 2 pi / theta_i, low_wl = L/low_freq_factor,\n"
        "high_wl = L/high_freq_factor;\n"
        "  wl_i > low_wl  -> theta_i / s\n"
        "  wl_i < high_wl -> theta_i\n"
        "  else           -> (1-sm) theta_i/s + sm theta_i, sm = (L/wl_i - low_freq_factor) /\n"
        "                    (high_freq_factor - low_freq_factor)\n"
        "Attention factor 1. Evaluated in double (HF: float32). Llama-3.1's config: factor 8, 1, 4,\n"
        "L 8192, base 500000. Default s = max(1, target_len / L).\n"
        "llama.cpp stores these divisors in the GGUF as the rope_freqs tensor (Llama 3.1\n"
        "conversions), and every method, baseline included, then starts from the file's\n"
        "frequencies. llama3 is refused on such a file: its bands would scale the frequencies a\n"
        "second time. Use baseline there (the file's own llama3 scaling), or another method on top.",
    .n_params = 4,
    .params = {
        {"factor", MPARAM_FLOAT, NAN, 1, 65536, "scale s; default max(1, target_len / L)"},
        {"low_freq_factor", MPARAM_FLOAT, 1, 0.001, 1000, "wavelengths above L/low_freq_factor are interpolated"},
        {"high_freq_factor", MPARAM_FLOAT, 4, 0.001, 1000, "wavelengths below L/high_freq_factor are kept"},
        {"original_max_position_embeddings", MPARAM_INT, NAN, 1, 16777216,
         "L, the trained context; default the model's context_length"},
    },
    .own_freq_factors = true,
    .plan = plan_llama3,
};
