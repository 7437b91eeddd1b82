/* The OpenCL backend's own kernels, OpenCL C 1.2 so that every vendor's driver (and PoCL
 * on the CPU) runs them. Matrix products are CLBlast's. Each kernel's CPU reference is
 * in backends/cpu (kernels.c, attention.c), and tests/test_backends.c checks them
 * against it op by op.
 * Built once per model with -DHEAD_DIM (the model's head size), -DTILE_K (keys per
 * attention tile in local memory) and -DWG (the work-group size of the row reductions,
 * a power of two). */

/* x[t][:] = table[tokens[t]][:]; one work-item per element. */
__kernel void embed_rows(__global float *x, __global const float *table, __global const int *tokens, int dim) {
    size_t i = get_global_id(0);
    size_t t = i / (size_t)dim, j = i % (size_t)dim;
    x[i] = table[(size_t)tokens[t] * (size_t)dim + j];
}

/* y[row] = x[row] / sqrt(mean(x[row]^2) + eps) * w; one work-group of WG per row; y may be x. */
__kernel void rmsnorm_rows(__global float *y, __global const float *x, __global const float *w, int dim, float eps) {
    __local float part[WG];
    const size_t row = get_group_id(0);
    const int lid = (int)get_local_id(0);
    __global const float *xr = x + row * (size_t)dim;
    __global float *yr = y + row * (size_t)dim;
    float ss = 0.0f;
    for (int i = lid; i < dim; i += WG) ss += xr[i] * xr[i];
    part[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv_rms = 1.0f / sqrt(part[0] / (float)dim + eps);
    for (int i = lid; i < dim; i += WG) yr[i] = xr[i] * inv_rms * w[i];
}

/* y[off + t*width + i] += bias[i]; one work-item per element of n rows. */
__kernel void add_bias_rows(__global float *y, ulong off, __global const float *bias, int width) {
    size_t i = get_global_id(0);
    y[off + i] += bias[i % (size_t)width];
}

/* Rotates pair i of head h of token t by cs[t][i] = (cos, sin): one work-item per
 * (t, h, i). NORM pairs (2i, 2i+1) (first_step 2, partner 1); NEOX pairs (i, i + n_pairs). */
__kernel void rope_rows(__global float *x, ulong off, __global const float *cs, int n_heads, int n_pairs,
                        int first_step, int partner) {
    size_t gid = get_global_id(0);
    const int i = (int)(gid % (size_t)n_pairs);
    gid /= (size_t)n_pairs;
    const int h = (int)(gid % (size_t)n_heads);
    const size_t t = gid / (size_t)n_heads;
    const float c = cs[(t * (size_t)n_pairs + (size_t)i) * 2], s = cs[(t * (size_t)n_pairs + (size_t)i) * 2 + 1];
    __global float *hx = x + off + t * (size_t)n_heads * HEAD_DIM + (size_t)h * HEAD_DIM;
    const int a = i * first_step, b = a + partner;
    const float x0 = hx[a], x1 = hx[b];
    hx[a] = x0 * c - x1 * s;
    hx[b] = x0 * s + x1 * c;
}

__kernel void add_rows(__global float *x, __global const float *y) {
    size_t i = get_global_id(0);
    x[i] += y[i];
}

/* gate = silu(gate) * up */
__kernel void swiglu_rows(__global float *gate, __global const float *up) {
    size_t i = get_global_id(0);
    const float g = gate[i];
    gate[i] = g / (1.0f + exp(-g)) * up[i];
}

/* Causal attention with an online softmax over tiles of TILE_K keys held in local
 * memory: no n_q x n_kv matrix anywhere. A work-group is a run of query rows of one
 * head (get_global_id(1)); its work-items load each key tile together, then each runs
 * its own query against it. Query i sees key j iff 0 <= q_pos[i] - k_pos[j] and, when
 * window > 0, q_pos[i] - k_pos[j] < window. SelfExtend (has_group): a visible pair at
 * distance >= group_window takes its logit from the grouped copies (qg, kg) instead,
 * in the same softmax row. Grouped-query heads: head h reads kv head h / (n_heads /
 * n_kv_heads).
 * The caches are f32, f16 (read with vload_half, core OpenCL 1.2: no cl_khr_fp16
 * needed) or q8_0: one kernel per pair of types, the same code otherwise. */
#define LOAD_F32(p, i) ((p)[i])
#define LOAD_F16(p, i) vload_half((i), (p))
/* q8_0: blocks of 32 values, an f16 scale then 32 int8; element i is in block i / 32
 * (rows are whole blocks: head_dim is a multiple of 32 for this type) */
#define Q8_0_BYTES 34
#define LOAD_Q8(p, i) (vload_half(0, (__global const half *)((p) + (size_t)((i) / 32) * Q8_0_BYTES)) * \
                       (float)(char)(p)[(size_t)((i) / 32) * Q8_0_BYTES + 2 + (i) % 32])
#define DEFINE_ATTENTION(NAME, KT, LOADK, VT, LOADV) \
__kernel void NAME(__global const float *q, __global const KT *k, __global const VT *v, ulong kv_off,     \
                   __global const float *qg, __global const KT *kg, int has_group, int group_window,      \
                   __global const int *q_pos, __global const int *k_pos, int n_q, int n_kv, int n_heads,  \
                   int n_kv_heads, float scale, int window, __global float *out) {                        \
    __local float k_tile[TILE_K * HEAD_DIM];                                                              \
    __local float v_tile[TILE_K * HEAD_DIM];                                                              \
    __local float kg_tile[TILE_K * HEAD_DIM];                                                             \
    __local int p_tile[TILE_K];                                                                           \
    const int lid = (int)get_local_id(0), wg = (int)get_local_size(0);                                    \
    const int i = (int)get_global_id(0);                                                                  \
    const int h = (int)get_global_id(1);                                                                  \
    const int kvh = h / (n_heads / n_kv_heads);                                                           \
    const size_t qd = (size_t)n_heads * HEAD_DIM, kvd = (size_t)n_kv_heads * HEAD_DIM;                    \
    const bool active = i < n_q;                                                                          \
                                                                                                          \
    float qr[HEAD_DIM], qgr[HEAD_DIM], acc[HEAD_DIM];                                                     \
    int qp = 0;                                                                                           \
    for (int d = 0; d < HEAD_DIM; d++) {                                                                  \
        qr[d] = active ? q[(size_t)i * qd + (size_t)h * HEAD_DIM + d] : 0.0f;                             \
        qgr[d] = active && has_group ? qg[(size_t)i * qd + (size_t)h * HEAD_DIM + d] : 0.0f;              \
        acc[d] = 0.0f;                                                                                    \
    }                                                                                                     \
    if (active) qp = q_pos[i];                                                                            \
    float m = -INFINITY, l = 0.0f;                                                                        \
                                                                                                          \
    for (int j0 = 0; j0 < n_kv; j0 += TILE_K) {                                                           \
        const int nk = min(TILE_K, n_kv - j0);                                                            \
        for (int idx = lid; idx < nk * HEAD_DIM; idx += wg) {                                             \
            const int jj = idx / HEAD_DIM, d = idx % HEAD_DIM;                                            \
            const size_t src = kv_off + (size_t)(j0 + jj) * kvd + (size_t)kvh * HEAD_DIM + d;             \
            k_tile[idx] = LOADK(k, src);                                                                  \
            v_tile[idx] = LOADV(v, src);                                                                  \
            if (has_group) kg_tile[idx] = LOADK(kg, src);                                                 \
        }                                                                                                 \
        for (int jj = lid; jj < nk; jj += wg) p_tile[jj] = k_pos[j0 + jj];                                \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                     \
        if (active)                                                                                       \
            for (int jj = 0; jj < nk; jj++) {                                                             \
                const int dist = qp - p_tile[jj];                                                         \
                if (dist < 0 || (window > 0 && dist >= window)) continue;                                 \
                float s = 0.0f;                                                                           \
                if (has_group && dist >= group_window)                                                    \
                    for (int d = 0; d < HEAD_DIM; d++) s += qgr[d] * kg_tile[jj * HEAD_DIM + d];          \
                else                                                                                      \
                    for (int d = 0; d < HEAD_DIM; d++) s += qr[d] * k_tile[jj * HEAD_DIM + d];            \
                s *= scale;                                                                               \
                if (s > m) {   /* a new maximum: rescale what was summed under the old one */             \
                    const float c = exp(m - s);                                                           \
                    l *= c;                                                                               \
                    for (int d = 0; d < HEAD_DIM; d++) acc[d] *= c;                                       \
                    m = s;                                                                                \
                }                                                                                         \
                const float p = exp(s - m);                                                               \
                l += p;                                                                                   \
                for (int d = 0; d < HEAD_DIM; d++) acc[d] += p * v_tile[jj * HEAD_DIM + d];               \
            }                                                                                             \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                     \
    }                                                                                                     \
    if (active) {                                                                                         \
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;                                                     \
        for (int d = 0; d < HEAD_DIM; d++) out[(size_t)i * qd + (size_t)h * HEAD_DIM + d] = acc[d] * inv; \
    }                                                                                                     \
}

DEFINE_ATTENTION(attention_f32_f32, float, LOAD_F32, float, LOAD_F32)
DEFINE_ATTENTION(attention_f32_f16, float, LOAD_F32, half, LOAD_F16)
DEFINE_ATTENTION(attention_f32_q8_0, float, LOAD_F32, uchar, LOAD_Q8)
DEFINE_ATTENTION(attention_f16_f32, half, LOAD_F16, float, LOAD_F32)
DEFINE_ATTENTION(attention_f16_f16, half, LOAD_F16, half, LOAD_F16)
DEFINE_ATTENTION(attention_f16_q8_0, half, LOAD_F16, uchar, LOAD_Q8)
DEFINE_ATTENTION(attention_q8_0_f32, uchar, LOAD_Q8, float, LOAD_F32)
DEFINE_ATTENTION(attention_q8_0_f16, uchar, LOAD_Q8, half, LOAD_F16)
DEFINE_ATTENTION(attention_q8_0_q8_0, uchar, LOAD_Q8, uchar, LOAD_Q8)

/* An f16 cache: rows of f32 values stored rounded to nearest even (as the CPU backend
 * stores them), from element off on. */
__kernel void store_f16(__global half *dst, ulong off, __global const float *src) {
    const size_t i = get_global_id(0);
    vstore_half_rte(src[i], off + i, dst);
}

/* A q8_0 cache: each block of 32 values as the CPU backend quantizes it (ggml's Q8_0):
 * d = amax / 127 rounded to f16, then each value times 1/d rounded to nearest even and
 * clamped to [-127, 127]. One work-item per block, from block block0 on. */
__kernel void store_q8_0(__global uchar *dst, ulong block0, __global const float *src) {
    const size_t b = get_global_id(0);
    __global const float *x = src + b * 32;
    __global uchar *o = dst + (block0 + b) * Q8_0_BYTES;
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[j]));
    vstore_half_rte(amax / 127.0f, 0, (__global half *)o);
    const float d = vload_half(0, (__global const half *)o);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) o[2 + j] = (uchar)(char)clamp(rint(x[j] * id), -127.0f, 127.0f);
}

/* out[row] = log-softmax of logits[row] at targets[row] (0 when the target is < 0); one
 * work-group of WG per row: the maximum, then the sum of exponentials, by tree reductions. */
__kernel void log_softmax_rows(__global const float *logits, int n_vocab, __global const int *targets,
                               __global float *out) {
    __local float part[WG];
    const size_t row = get_group_id(0);
    const int lid = (int)get_local_id(0);
    const int target = targets[row];
    if (target < 0) {   /* the same for the whole work-group: no barrier is skipped by only some */
        if (lid == 0) out[row] = 0.0f;
        return;
    }
    __global const float *lr = logits + row * (size_t)n_vocab;
    float mx = -INFINITY;
    for (int i = lid; i < n_vocab; i += WG) mx = fmax(mx, lr[i]);
    part[lid] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] = fmax(part[lid], part[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mx = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (int i = lid; i < n_vocab; i += WG) sum += exp(lr[i] - mx);
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[row] = lr[target] - mx - log(part[0]);
}

/* dst[i] = the F16 value src[i], exactly (an F16 weight matrix widened for a product). */
__kernel void widen_f16(__global float *dst, __global const half *src) {
    size_t i = get_global_id(0);
    dst[i] = vload_half(i, src);
}
