/* The small per-row kernels of the forward pass: RMS norm, rotary embedding,
 * SwiGLU and the KV cache conversions. Attention lives in attention.c; scoring (the
 * log-softmax over vocabulary blocks) in cpu_backend.c. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

#include "quant.h"

void rmsnorm(float *y, const float *x, const float *w, int n, int n_rows, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        /* Sum of squares in double: rows are thousands of values wide. */
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float inv_rms = (float)(1.0 / sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) yr[i] = xr[i] * inv_rms * w[i];
    }
}

void rope_apply_table(float *x, int n_tokens, size_t row_stride, int n_heads, int head_dim, int n_rot,
                      const float *cs, enum rope_style style) {
    int half = n_rot / 2;
    /* NORM pairs neighbours (2i, 2i+1); NEOX pairs the two halves (i, i + n_rot/2). */
    int first_step = style == ROPE_NEOX ? 1 : 2;
    int partner_offset = style == ROPE_NEOX ? half : 1;
    for (int t = 0; t < n_tokens; t++) {
        float *row = x + (size_t)t * row_stride;
        for (int i = 0; i < half; i++) {
            float c = cs[((size_t)t * half + i) * 2], s = cs[((size_t)t * half + i) * 2 + 1];
            int a = i * first_step, b = a + partner_offset;
            for (int h = 0; h < n_heads; h++) {
                float *hx = row + (size_t)h * head_dim;
                float x0 = hx[a], x1 = hx[b];
                hx[a] = x0 * c - x1 * s;
                hx[b] = x0 * s + x1 * c;
            }
        }
    }
}

int rope_apply(float *x, int n_tokens, size_t row_stride, int n_heads, int head_dim, int n_rot,
               const int32_t *pos, const float *inv_freq, float mscale, enum rope_style style) {
    float *cs = malloc((size_t)n_tokens * (size_t)(n_rot / 2) * 2 * sizeof(float) + 1);
    if (!cs) return -1;
    rope_cos_sin(cs, pos, n_tokens, inv_freq, n_rot / 2, mscale);
    rope_apply_table(x, n_tokens, row_stride, n_heads, head_dim, n_rot, cs, style);
    free(cs);
    return 0;
}

/* The cache types are ggml's F32, F16 and Q8_0 layouts. */
static uint32_t kv_ggml_type(enum kv_type t) {
    return t == KV_F16 ? GGML_TYPE_F16 : t == KV_Q8_0 ? GGML_TYPE_Q8_0 : GGML_TYPE_F32;
}

void kv_quantize_rows(enum kv_type t, const float *src, void *dst, size_t n, size_t n_rows) {
    size_t rb = kv_row_bytes(t, n);
    for (size_t r = 0; r < n_rows; r++) quantize_row(kv_ggml_type(t), src + r * n, (uint8_t *)dst + r * rb, n);
}

void kv_dequantize(enum kv_type t, const void *src, float *dst, size_t n) {
    dequantize_row(kv_ggml_type(t), src, dst, n);
}

void swiglu(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
