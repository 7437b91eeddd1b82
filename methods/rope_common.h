/* Formulas shared by several methods (baseline reads YaRN and linear metadata, so the
 * YaRN table cannot live only in yarn.c). Header-only so that a method stays one .c file
 * plus what it includes; nothing here keeps state. All arithmetic is double and each
 * frequency is rounded to float once, so methods that reduce to plain RoPE (factor 1,
 * the model's own base) give bit-identical tables. */
#ifndef CTX_ROPE_COMMON_H
#define CTX_ROPE_COMMON_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

/* Plain RoPE: theta_i = base^(-2i/d), i < d/2 (HF _compute_default_rope_parameters). */
static inline double rope_theta(double base, int d, int i) {
    return pow(base, -(2.0 * i) / d);
}

static inline void rope_plain(double base, int d, float *inv_freq) {
    for (int i = 0; i < d / 2; i++) inv_freq[i] = (float)rope_theta(base, d, i);
}

/* Linear interpolation (PI, HF "linear"): theta_i / s. */
static inline void rope_linear(double base, int d, double factor, float *inv_freq) {
    for (int i = 0; i < d / 2; i++) inv_freq[i] = (float)(rope_theta(base, d, i) / factor);
}

/* Default for `original_max_position_embeddings`: the model's trained context. */
static inline double rope_orig_len(const struct method_ctx *ctx, double given) {
    return isnan(given) ? (double)ctx->cfg->ctx_train : given;
}

/* Default for `factor` in pi/ntk/yarn: stretch the trained context to the cell's length,
 * never compress it: max(1, target_len / L). Writes how it was derived into note. */
static inline double rope_factor(const struct method_ctx *ctx, double given, double orig_len,
                                 char *note, size_t notelen) {
    if (!isnan(given)) return given;
    double f = (double)ctx->target_len / orig_len;
    if (f < 1) f = 1;
    snprintf(note, notelen, "factor derived: max(1, %d/%.0f) = %.9g", ctx->target_len, orig_len, f);
    return f;
}

/* HF's YaRN defaults: method yarn declares them as its parameters' defaults, and baseline
 * applies them to a file's yarn rope.scaling metadata, which has no such keys. */
#define YARN_BETA_FAST 32
#define YARN_BETA_SLOW 1
#define YARN_TRUNCATE 1

/* YaRN (HF _compute_yarn_parameters, identical to jquesnelle/yarn
 * LlamaYaRNScaledRotaryEmbedding). The correction dimensions are computed in double
 * (HF: Python math), the ramp over the index i in float32 (HF: torch.arange float32). */
static inline double yarn_correction_dim(double rotations, int d, double base, double orig_len) {
    return d * log(orig_len / (rotations * 2.0 * M_PI)) / (2.0 * log(base));
}

static inline void yarn_correction_range(double beta_fast, double beta_slow, int d, double base,
                                         double orig_len, int truncate, double *low, double *high) {
    double lo = yarn_correction_dim(beta_fast, d, base, orig_len);
    double hi = yarn_correction_dim(beta_slow, d, base, orig_len);
    if (truncate) { lo = floor(lo); hi = ceil(hi); }
    *low = lo > 0 ? lo : 0;
    *high = hi < d - 1 ? hi : d - 1;   /* HF clamps to d-1 although the ramp has d/2 entries */
}

/* attention_factor default: 0.1 ln(s) + 1, and 1 when s <= 1 (HF get_mscale). */
static inline double yarn_default_mscale(double factor) {
    return factor <= 1 ? 1.0 : 0.1 * log(factor) + 1.0;
}

static inline void rope_yarn(double base, int d, double factor, double orig_len, double beta_fast,
                             double beta_slow, int truncate, float *inv_freq) {
    double low, high;
    yarn_correction_range(beta_fast, beta_slow, d, base, orig_len, truncate, &low, &high);
    if (low == high) high += 0.001;   /* HF linear_ramp_factor: avoid a zero denominator */
    float lo_f = (float)low, span_f = (float)(high - low);
    for (int i = 0; i < d / 2; i++) {
        float ramp = ((float)i - lo_f) / span_f;
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float extrapolation = 1.0f - ramp;   /* HF inv_freq_extrapolation_factor */
        double theta = rope_theta(base, d, i), interp = theta / factor;
        /* = interp*(1-e) + theta*e, arranged so that factor 1 gives theta exactly */
        inv_freq[i] = (float)(interp + (theta - interp) * (double)extrapolation);
    }
}

/* The model's own RoPE as its metadata describes it (method baseline; swa and selfextend
 * start from it too): plain, linear or YaRN. Fills inv_freq, mscale and the note. */
static inline void rope_from_metadata(const struct model_config *c, struct method_plan *out) {
    const struct rope_scaling_meta *rs = &c->rope_scaling;
    int d = c->n_rot;
    if (strcmp(rs->type, "linear") == 0 && rs->factor > 0) {
        rope_linear(c->rope_base, d, rs->factor, out->inv_freq);
        snprintf(out->note, sizeof out->note, "metadata rope.scaling linear: base %.9g, inv_freq / %.9g",
                 c->rope_base, rs->factor);
    } else if (strcmp(rs->type, "yarn") == 0 && rs->factor > 0) {
        /* Without rope.scaling.original_context_length we fall back to context_length, as
         * llama.cpp does; for a YaRN fine-tune that is the extended length (METHODS.md 5.2). */
        double orig = rs->original_ctx > 0 ? (double)rs->original_ctx : (double)c->ctx_train;
        double mscale = rs->attn_factor > 0 ? rs->attn_factor : yarn_default_mscale(rs->factor);
        rope_yarn(c->rope_base, d, rs->factor, orig, YARN_BETA_FAST, YARN_BETA_SLOW, YARN_TRUNCATE, out->inv_freq);
        out->mscale = (float)mscale;
        snprintf(out->note, sizeof out->note, "metadata rope.scaling yarn: factor %.9g, original %.0f%s, "
                 "mscale %.9g%s", rs->factor, orig, rs->original_ctx > 0 ? "" : " (context_length fallback)",
                 mscale, rs->attn_factor > 0 ? " (attn_factor)" : "");
    } else {
        /* With a file's rope_freqs (method_plan divides by them) the table is not plain. */
        const char *kind = c->rope_freqs ? "RoPE" : "plain RoPE";
        rope_plain(c->rope_base, d, out->inv_freq);
        if (rs->type[0] && strcmp(rs->type, "none") != 0)
            snprintf(out->note, sizeof out->note, "metadata rope.scaling type '%.32s' (factor %g) NOT applied: "
                     "%s, base %.9g", rs->type, rs->factor, kind, c->rope_base);
        else
            snprintf(out->note, sizeof out->note, "%s, base %.9g", kind, c->rope_base);
    }
}

/* Appends "; text" (or text) to the plan note. */
static inline void plan_note_append(struct method_plan *out, const char *text) {
    size_t len = strlen(out->note);
    snprintf(out->note + len, sizeof out->note - len, "%s%s", len ? "; " : "", text);
}

#endif
