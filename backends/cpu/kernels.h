/* CPU kernels of the forward pass. Each one is checked in tests/ against a
 * double-precision reference. None of them knows about extension methods: the
 * methods reach them only through inverse-frequency tables, an mscale, positions
 * and the attention masks described by struct attn_args. */
#ifndef CTX_KERNELS_H
#define CTX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h" /* enum kv_type */
#include "model.h"   /* enum rope_style */
#include "rope_table.h"

struct threadpool;

/* y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for n_rows rows of n. y may alias x. */
void rmsnorm(float *y, const float *x, const float *w, int n, int n_rows, float eps);

/* Rotates the first n_rot dims of every head of n_tokens rows by the table cs of
 * rope_cos_sin (rope_table.h): pair i of token t by (cs[(t*half+i)*2], cs[...+1]).
 * x: row t, head h at x + t*row_stride + h*head_dim. */
void rope_apply_table(float *x, int n_tokens, size_t row_stride, int n_heads, int head_dim, int n_rot,
                      const float *cs, enum rope_style style);
/* The same from positions: pair i (0 <= i < n_rot/2) of token t turns by angle
 * pos[t]*inv_freq[i], cos and sin both multiplied by mscale. Angles computed in
 * double, applied in float. -1 if out of memory for the table (x unchanged). */
int rope_apply(float *x, int n_tokens, size_t row_stride, int n_heads, int head_dim, int n_rot,
               const int32_t *pos, const float *inv_freq, float mscale, enum rope_style style);

/* Causal attention with an online softmax over key tiles: no n_q x n_kv buffer.
 * Query i (position q_pos[i]) sees key j (position k_pos[j]) iff k_pos[j] <= q_pos[i]
 * and, when window > 0, q_pos[i] - k_pos[j] < window (sliding window: `window` keys
 * including itself).
 * SelfExtend: when q_group/k_group are non-NULL, the logit of a visible pair with
 * q_pos[i] - k_pos[j] < group_window uses (q, k) and otherwise (q_group, k_group);
 * both logits meet in one softmax row. Grouped-query attention: head h reads kv head
 * h / (n_heads / n_kv_heads).
 * Caches of type f16 or q8_0 (backend.h: row j at byte j * kv_row_bytes(type,
 * kv_stride), kv head g at kv_row_bytes(type, g*head_dim) in it) are converted to F32
 * a tile at a time as they are read; f32 caches are read in place. */
struct attn_args {
    int n_q, n_kv;
    int n_heads, n_kv_heads, head_dim;
    const float *q;          /* row i, head h at q + i*q_stride + h*head_dim */
    size_t q_stride;
    const void *k, *v;       /* row j, kv head g at value j*kv_stride + g*head_dim */
    size_t kv_stride;        /* values per cache row */
    enum kv_type k_type, v_type;   /* k_group's is k_type */
    const float *q_group;    /* SelfExtend grouped-position copies (same layout), or NULL */
    const void *k_group;
    int group_window;        /* SelfExtend neighbour window W */
    const int32_t *q_pos;    /* n_q positions */
    const int32_t *k_pos;    /* n_kv positions */
    float scale;             /* logit scale, 1/sqrt(head_dim) */
    int window;              /* 0: full causal */
    int tile_q, tile_k;      /* 0: defaults */
    float *out;              /* row i, head h at out + i*out_stride + h*head_dim */
    size_t out_stride;
};
/* Returns 0, or -1 with a one-line reason in err (bad arguments, out of memory); on
 * failure nothing is written to out. */
int attn_forward(const struct attn_args *a, struct threadpool *tp, char *err, size_t errlen);

/* Rows of n F32 values into a cache of type t (n a multiple of 32 for q8_0), and back:
 * dst and src hold kv_row_bytes(t, n) bytes per row (backend.h). */
void kv_quantize_rows(enum kv_type t, const float *src, void *dst, size_t n, size_t n_rows);
void kv_dequantize(enum kv_type t, const void *src, float *dst, size_t n);

/* out[i] = silu(gate[i]) * up[i] */
void swiglu(float *out, const float *gate, const float *up, size_t n);

#endif
