/* Causal attention, tiled, with an online softmax (FlashAttention-2 style).
 *
 * Work is split into tasks of (kv head, query tile). A task stacks the queries of
 * every query head that reads this kv head (grouped-query attention), so each K
 * and V tile is read once for the whole group, and walks the key tiles keeping,
 * per query row, the running maximum logit, the running sum of exponentials and
 * an unnormalised output accumulator; when the maximum grows, sum and accumulator
 * are rescaled. Nothing of size n_q x n_kv ever exists. Both tile products
 * (Q K^T and P V) are single-threaded OpenBLAS sgemm calls inside the task.
 *
 * Key tiles whose every pair is masked (ahead of the queries, or out of the
 * sliding window) are skipped, decided from the position range of each tile (so
 * no ordering of positions is assumed), and causal attention costs about half of
 * full and a sliding window O(n * window). Only tiles with a mix of visible and
 * hidden pairs pay for element masks, after being trimmed to the keys that some
 * query of the task can see.
 *
 * Decode (one query, long cache) has too few (query tile, kv head) units to feed
 * the threads, so their key tiles are split among several tasks whose partial
 * softmaxes are merged afterwards (split-KV). Scratch is allocated per call and
 * sized from the tile sizes: per thread, a few rows x head_dim and rows x tile_k
 * buffers.
 *
 * An f16 or q8_0 cache is converted to F32 one (key tile, kv head) at a time, into
 * the task's scratch, just before its product; the products and the softmax are the
 * same as for an f32 cache, which is read in place.
 *
 * SelfExtend: a tile whose pairs are all neighbours (distance < group_window)
 * needs only Q K^T, one whose pairs are all far needs only Qg Kg^T, and only the
 * tiles straddling the boundary compute both and pick per pair. */
#include "kernels.h"
#include "threadpool.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Default tile sizes (measured: see scripts/bench_attn.c). A task's query rows are
 * tile_q positions times the query heads of one kv group. */
#define DEFAULT_TASK_ROWS 128   /* tile_q defaults to this / (query heads per kv head) */
#define DEFAULT_TILE_K 128

/* ---- Vectors for the softmax rows (GCC/Clang vector extensions). ----
 *
 * A vector is as wide as the target's registers (16 floats with AVX-512, 8 with
 * AVX2, 4 with SSE or NEON), so no target pays for vectors it cannot hold and no
 * vector crosses an ABI the target lacks. The arithmetic does not depend on that
 * width: every element goes through the same operations in the same order, and
 * the one reduction that rounds (the row sum) keeps 16 partial sums, lane l
 * summing elements l, l + 16, l + 32, ..., folded in one fixed tree. So the kernel
 * gives the same bits on every x86-64 and aarch64 target. */

#if defined(__AVX512F__)
#define VLANES 16
#elif defined(__AVX2__)
#define VLANES 8
#else
#define VLANES 4
#endif
#define SUM_LANES 16                     /* partial sums of a row sum, on every target */
#define VPARTS (SUM_LANES / VLANES)      /* vectors per 16 elements */

typedef float vf32 __attribute__((vector_size(VLANES * 4)));
typedef int32_t vi32 __attribute__((vector_size(VLANES * 4)));

#define VEC_INLINE static inline __attribute__((always_inline))

VEC_INLINE vf32 vload(const float *p) { vf32 v; memcpy(&v, p, sizeof v); return v; }
VEC_INLINE void vstore(float *p, vf32 v) { memcpy(p, &v, sizeof v); }
VEC_INLINE vf32 vselect(vi32 mask, vf32 yes, vf32 no) {
    return (vf32)((mask & (vi32)yes) | (~mask & (vi32)no));
}

/* exp(x) for x <= 88 (the softmax only asks for x <= 0), to about 2 ulp;
 * exactly 0 below -87 (and for -inf). Cephes expf: x = n ln2 + r with
 * |r| <= ln2/2, exp(r) by a degree-7 polynomial, 2^n by building the float
 * exponent. libm's expf does not vectorise here, and the softmax needs one exp
 * per logit. */
VEC_INLINE vf32 vexp(vf32 x) {
    const vf32 zero = { 0 };
    vi32 underflow = x < -87.0f;
    x = vselect(underflow, zero, x);                    /* keep the arithmetic finite */
    const float round_magic = 12582912.0f;              /* 1.5 * 2^23: rounds to an integer */
    vf32 n = (x * 1.44269504088896341f + round_magic) - round_magic;
    vf32 r = x - n * 0.693359375f - n * -2.12194440e-4f;
    vf32 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    vf32 e = p * r * r + r + 1.0f;
    vi32 two_n = (__builtin_convertvector(n, vi32) + 127) << 23;
    return (vf32)((vi32)(e * (vf32)two_n) & ~underflow);
}

VEC_INLINE vf32 vmax(vf32 a, vf32 b) { return vselect(a > b, a, b); }

/* Elements [0, n) of p (n < VLANES: the tail of a row), padded with -inf (exp gives 0). */
VEC_INLINE vf32 vload_tail(const float *p, int n) {
    float buf[VLANES];
    for (int i = 0; i < VLANES; i++) buf[i] = i < n ? p[i] : -INFINITY;
    return vload(buf);
}

/* dst[i] = src[i] * factor (dst may be src). */
static void scale_row(float *dst, const float *src, int n, float factor) {
    int i = 0;
    for (; i + VLANES <= n; i += VLANES) vstore(dst + i, vload(src + i) * factor);
    for (; i < n; i++) dst[i] = src[i] * factor;
}

/* The largest of s[0..n) (a maximum is exact: any order gives the same value). */
static float row_max(const float *s, int n) {
    vf32 m = vload_tail(s, 0);                          /* all -inf */
    int j = 0;
    for (; j + VLANES <= n; j += VLANES) m = vmax(m, vload(s + j));
    if (j < n) m = vmax(m, vload_tail(s + j, n - j));
    float best = m[0];
    for (int l = 1; l < VLANES; l++) best = m[l] > best ? m[l] : best;
    return best;
}

/* s[j] = exp(s[j] - max); returns the sum: 16 partial sums (see above) folded
 * halves onto halves, ((l + 8) onto l, then + 4, + 2, + 1). */
static float exp_row(float *s, int n, float max) {
    vf32 sum[VPARTS];
    memset(sum, 0, sizeof sum);
    int j = 0;
    for (; j + SUM_LANES <= n; j += SUM_LANES)
        for (int p = 0; p < VPARTS; p++) {
            vf32 e = vexp(vload(s + j + p * VLANES) - max);
            vstore(s + j + p * VLANES, e);
            sum[p] += e;
        }
    for (int p = 0; p < VPARTS && j + p * VLANES < n; p++) {   /* the last n % 16 elements */
        int k = j + p * VLANES, left = n - k;
        vf32 e = vexp((left >= VLANES ? vload(s + k) : vload_tail(s + k, left)) - max);
        memcpy(s + k, &e, (size_t)(left < VLANES ? left : VLANES) * sizeof(float));
        sum[p] += e;
    }
    float lanes[SUM_LANES];
    for (int p = 0; p < VPARTS; p++) vstore(lanes + p * VLANES, sum[p]);
    for (int half = SUM_LANES / 2; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) lanes[l] += lanes[l + half];
    return lanes[0];
}

/* ---- The plan of one call and the tasks ---- */

struct pos_range { int64_t lo, hi; };   /* min and max position in a tile */

struct attn_plan {
    const struct attn_args *a;
    int group_size;              /* query heads per kv head */
    int tile_q, tile_k;          /* query positions per task, keys per key tile */
    int n_qtiles, n_ktiles;
    int selfextend;
    struct pos_range *k_range;   /* n_ktiles */
    float *scratch;              /* one slice of slice_floats per thread */
    size_t slice_floats;
    /* Split-KV (decode-like calls with fewer (query tile, kv head) units than
     * threads): each unit's visible key tiles are shared among n_splits tasks,
     * which leave their running max, sum and accumulator in `partial` for a merge. */
    int n_splits;
    float *partial;              /* one slot of partial_floats per task */
    size_t partial_floats;       /* rows_max * (2 + head_dim) */
    size_t rows_max;
};

/* A thread's buffers for one task, carved from its scratch slice. */
struct tile_bufs {
    float *q, *qg;               /* rows x head_dim: queries times scale (qg: grouped) */
    float *acc;                  /* rows x head_dim: unnormalised output */
    float *s, *sg;               /* rows x tile_k: logits, then probabilities (sg: grouped logits) */
    float *m, *l;                /* rows: running max logit, running sum of exp */
    float *kt, *vt;              /* tile_k x head_dim: a K or V tile of an f16/q8_0 cache as F32 */
};

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }   /* keeps slices 64-byte aligned */

static size_t carve_bufs(struct tile_bufs *b, float *base, size_t rows, size_t head_dim, size_t tile_k,
                         int selfextend, int convert_k, int convert_v) {
    size_t off = 0;
    float *p = base;
#define TAKE(field, n) do { b->field = p ? p + off : NULL; off += round16(n); } while (0)
    TAKE(q, rows * head_dim);
    TAKE(acc, rows * head_dim);
    TAKE(s, rows * tile_k);
    TAKE(m, rows);
    TAKE(l, rows);
    if (selfextend) { TAKE(qg, rows * head_dim); TAKE(sg, rows * tile_k); }
    else { b->qg = b->sg = NULL; }
    if (convert_k) TAKE(kt, tile_k * head_dim);
    else b->kt = NULL;
    if (convert_v) TAKE(vt, tile_k * head_dim);
    else b->vt = NULL;
#undef TAKE
    return off;
}

enum visibility { NONE_VISIBLE, ALL_VISIBLE, SOME_VISIBLE };

/* Which pairs between queries in positions q and keys in positions k can see each other. */
static enum visibility tile_visibility(struct pos_range q, struct pos_range k, int window) {
    if (k.lo > q.hi) return NONE_VISIBLE;                       /* all keys ahead of all queries */
    if (window > 0 && q.lo - k.hi >= window) return NONE_VISIBLE; /* all keys out of every window */
    if (k.hi <= q.lo && (window == 0 || q.hi - k.lo < window)) return ALL_VISIBLE;
    return SOME_VISIBLE;
}

/* S (rows x nk, leading dim ld) = A (rows x d) . K^T, K rows ldk apart. */
static void logits_gemm(float *s, int ld, const float *a_rows, int rows, const float *k, int ldk, int nk, int d) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, d, 1.0f, a_rows, d, k, ldk, 0.0f, s, ld);
}

/* Rows [j0, j0 + nk) of kv head kvh of a cache as F32 rows *ld apart: an f32 cache in
 * place, another converted into buf (nk x head_dim). */
static const float *kv_tile(const struct attn_args *a, const void *cache, enum kv_type t, int j0, int nk, int kvh,
                            float *buf, int *ld) {
    int d = a->head_dim;
    if (t == KV_F32) {
        *ld = (int)a->kv_stride;
        return (const float *)cache + (size_t)j0 * a->kv_stride + (size_t)kvh * d;
    }
    size_t rb = kv_row_bytes(t, a->kv_stride);
    const uint8_t *p = (const uint8_t *)cache + (size_t)j0 * rb + kv_row_bytes(t, (size_t)kvh * d);
    for (int j = 0; j < nk; j++) kv_dequantize(t, p + (size_t)j * rb, buf + (size_t)j * d, (size_t)d);
    *ld = d;
    return buf;
}

/* Element masks on one tile: hidden pairs get -inf; with SelfExtend straddling
 * the boundary, far pairs take the grouped logit. Row r of query i is i*G + h. */
static void mask_tile(const struct attn_plan *p, const struct tile_bufs *b, int i0, int nq, int j0, int nk,
                      int use_grouped) {
    const struct attn_args *a = p->a;
    int G = p->group_size, ld = p->tile_k;
    for (int i = 0; i < nq; i++) {
        int64_t qp = a->q_pos[i0 + i];
        for (int h = 0; h < G; h++) {
            size_t row = (size_t)(i * G + h) * ld;
            float *s = b->s + row;
            for (int j = 0; j < nk; j++) {
                int64_t dist = qp - a->k_pos[j0 + j];
                if (dist < 0 || (a->window > 0 && dist >= a->window)) s[j] = -INFINITY;
                else if (use_grouped && dist >= a->group_window) s[j] = b->sg[row + j];
            }
        }
    }
}

/* Folds one tile of logits into the running softmax of each row: s becomes the
 * probabilities (relative to the new running max), acc and l are rescaled. */
static void online_softmax_update(const struct tile_bufs *b, int rows, int nk, int ld, int d) {
    for (int r = 0; r < rows; r++) {
        float *s = b->s + (size_t)r * ld;
        float tile_max = row_max(s, nk);
        if (tile_max == -INFINITY) {              /* nothing visible in this row of the tile */
            memset(s, 0, (size_t)nk * sizeof *s);
            continue;
        }
        float old_max = b->m[r];
        float new_max = tile_max > old_max ? tile_max : old_max;
        float sum = exp_row(s, nk, new_max);
        if (new_max != old_max) {
            float alpha = expf(old_max - new_max);   /* 0 on the row's first visible tile */
            scale_row(b->acc + (size_t)r * d, b->acc + (size_t)r * d, d, alpha);
            b->l[r] *= alpha;
            b->m[r] = new_max;
        }
        b->l[r] += sum;
    }
}

static void attn_task(void *ctx, int task, int thread) {
    const struct attn_plan *p = ctx;
    const struct attn_args *a = p->a;
    int d = a->head_dim, G = p->group_size, ld = p->tile_k;

    /* The last query tiles see the most keys: hand them out first so the
     * dynamic schedule ends with short tasks. */
    int split = task % p->n_splits, unit = task / p->n_splits;
    int kvh = unit % a->n_kv_heads;
    int qt = p->n_qtiles - 1 - unit / a->n_kv_heads;
    int i0 = qt * p->tile_q;
    int nq = a->n_q - i0 < p->tile_q ? a->n_q - i0 : p->tile_q;
    int rows = nq * G;

    struct tile_bufs b;
    carve_bufs(&b, p->scratch + (size_t)thread * p->slice_floats, (size_t)rows, (size_t)d, (size_t)ld,
               p->selfextend, a->k_type != KV_F32, a->v_type != KV_F32);

    /* Stack the group's queries, row i*G + h, pre-multiplied by the logit scale. */
    struct pos_range qr = { INT64_MAX, INT64_MIN };
    for (int i = 0; i < nq; i++) {
        int64_t pos = a->q_pos[i0 + i];
        if (pos < qr.lo) qr.lo = pos;
        if (pos > qr.hi) qr.hi = pos;
        for (int h = 0; h < G; h++) {
            size_t src = (size_t)(i0 + i) * a->q_stride + (size_t)(kvh * G + h) * d;
            scale_row(b.q + (size_t)(i * G + h) * d, a->q + src, d, a->scale);
            if (p->selfextend) scale_row(b.qg + (size_t)(i * G + h) * d, a->q_group + src, d, a->scale);
        }
    }
    memset(b.acc, 0, (size_t)rows * d * sizeof(float));
    for (int r = 0; r < rows; r++) { b.m[r] = -INFINITY; b.l[r] = 0; }

    /* With split-KV this task takes its share [share_lo, share_hi) of the
     * unit's visible key tiles, counted in order. */
    int share_lo = 0, share_hi = INT32_MAX, n_seen = 0;
    if (p->n_splits > 1) {
        int n_visible = 0;
        for (int kt = 0; kt < p->n_ktiles; kt++)
            n_visible += tile_visibility(qr, p->k_range[kt], a->window) != NONE_VISIBLE;
        share_lo = (int)((int64_t)n_visible * split / p->n_splits);
        share_hi = (int)((int64_t)n_visible * (split + 1) / p->n_splits);
    }

    for (int kt = 0; kt < p->n_ktiles && n_seen < share_hi; kt++) {
        struct pos_range kr = p->k_range[kt];
        enum visibility vis = tile_visibility(qr, kr, a->window);
        if (vis == NONE_VISIBLE) continue;
        if (n_seen++ < share_lo) continue;
        int j0 = kt * p->tile_k;
        int nk = a->n_kv - j0 < p->tile_k ? a->n_kv - j0 : p->tile_k;
        if (vis == SOME_VISIBLE) {
            /* Trim the tile to the span of keys some query of this task may see
             * (on the diagonal that is often a small part of it). */
            int first = nk, last = -1;
            for (int j = 0; j < nk; j++) {
                int64_t kp = a->k_pos[j0 + j];
                if (kp <= qr.hi && (a->window == 0 || qr.lo - kp < a->window)) {
                    if (first == nk) first = j;
                    last = j;
                }
            }
            if (last < 0) continue;
            j0 += first;
            nk = last - first + 1;
        }
        int straddles = 0, ldk;
        const float *kt;
        if (!p->selfextend || qr.hi - kr.lo < a->group_window) {
            kt = kv_tile(a, a->k, a->k_type, j0, nk, kvh, b.kt, &ldk);
            logits_gemm(b.s, ld, b.q, rows, kt, ldk, nk, d);
        } else if (qr.lo - kr.hi >= a->group_window) {
            kt = kv_tile(a, a->k_group, a->k_type, j0, nk, kvh, b.kt, &ldk);
            logits_gemm(b.s, ld, b.qg, rows, kt, ldk, nk, d);
        } else {
            kt = kv_tile(a, a->k, a->k_type, j0, nk, kvh, b.kt, &ldk);
            logits_gemm(b.s, ld, b.q, rows, kt, ldk, nk, d);
            kt = kv_tile(a, a->k_group, a->k_type, j0, nk, kvh, b.kt, &ldk);
            logits_gemm(b.sg, ld, b.qg, rows, kt, ldk, nk, d);
            straddles = 1;
        }
        if (vis == SOME_VISIBLE || straddles) mask_tile(p, &b, i0, nq, j0, nk, straddles);

        online_softmax_update(&b, rows, nk, ld, d);
        int ldv;
        const float *vt = kv_tile(a, a->v, a->v_type, j0, nk, kvh, b.vt, &ldv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, nk, 1.0f, b.s, ld, vt, ldv, 1.0f, b.acc, d);
    }

    if (p->n_splits > 1) {   /* leave the running state for merge_task */
        float *slot = p->partial + (size_t)task * p->partial_floats;
        memcpy(slot, b.m, (size_t)rows * sizeof(float));
        memcpy(slot + p->rows_max, b.l, (size_t)rows * sizeof(float));
        memcpy(slot + 2 * p->rows_max, b.acc, (size_t)rows * d * sizeof(float));
        return;
    }

    /* Normalise; a row that saw no key at all stays zero. */
    for (int i = 0; i < nq; i++)
        for (int h = 0; h < G; h++) {
            int r = i * G + h;
            float inv = b.l[r] > 0 ? 1.0f / b.l[r] : 0.0f;
            scale_row(a->out + (size_t)(i0 + i) * a->out_stride + (size_t)(kvh * G + h) * d,
                      b.acc + (size_t)r * d, d, inv);
        }
}

/* Split-KV: combines the n_splits partial softmaxes of one (query tile, kv head)
 * unit, each rescaled from its own running max to the common one. */
static void merge_task(void *ctx, int unit, int thread) {
    (void)thread;
    const struct attn_plan *p = ctx;
    const struct attn_args *a = p->a;
    int d = a->head_dim, G = p->group_size;
    int kvh = unit % a->n_kv_heads;
    int qt = p->n_qtiles - 1 - unit / a->n_kv_heads;
    int i0 = qt * p->tile_q;
    int nq = a->n_q - i0 < p->tile_q ? a->n_q - i0 : p->tile_q;
    const float *slots = p->partial + (size_t)unit * p->n_splits * p->partial_floats;

    for (int i = 0; i < nq; i++)
        for (int h = 0; h < G; h++) {
            int r = i * G + h;
            float *dst = a->out + (size_t)(i0 + i) * a->out_stride + (size_t)(kvh * G + h) * d;
            float max = -INFINITY;
            for (int s = 0; s < p->n_splits; s++) {
                float m = slots[s * p->partial_floats + r];
                if (m > max) max = m;
            }
            memset(dst, 0, (size_t)d * sizeof(float));
            if (max == -INFINITY) continue;   /* no split saw a key */
            float sum = 0;
            for (int s = 0; s < p->n_splits; s++) {
                const float *slot = slots + s * p->partial_floats;
                if (slot[r] == -INFINITY) continue;
                float w = expf(slot[r] - max);
                sum += w * slot[p->rows_max + r];
                const float *acc = slot + 2 * p->rows_max + (size_t)r * d;
                for (int c = 0; c < d; c++) dst[c] += w * acc[c];
            }
            scale_row(dst, dst, d, 1.0f / sum);
        }
}

/* One line naming the first thing wrong with the arguments, or NULL. */
static const char *attn_args_problem(const struct attn_args *a) {
    if (a->n_q < 0 || a->n_kv < 0) return "negative token count";
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->head_dim <= 0) return "head counts and head_dim must be positive";
    if (a->n_heads % a->n_kv_heads != 0) return "n_heads is not a multiple of n_kv_heads";
    if (a->tile_q < 0 || a->tile_k < 0) return "negative tile size";
    if (a->window < 0) return "negative sliding window";
    if (!a->q || !a->k || !a->v || !a->out || !a->q_pos || (a->n_kv > 0 && !a->k_pos)) return "missing buffer";
    if (a->q_stride < (size_t)a->n_heads * a->head_dim || a->out_stride < (size_t)a->n_heads * a->head_dim)
        return "query/output row stride smaller than n_heads * head_dim";
    if (a->kv_stride < (size_t)a->n_kv_heads * a->head_dim) return "kv row stride smaller than n_kv_heads * head_dim";
    if (a->kv_stride > INT32_MAX) return "kv row stride too large for BLAS";
    if ((a->k_type != KV_F32 && a->k_type != KV_F16 && a->k_type != KV_Q8_0) ||
        (a->v_type != KV_F32 && a->v_type != KV_F16 && a->v_type != KV_Q8_0))
        return "unknown KV cache type";
    if ((a->k_type == KV_Q8_0 || a->v_type == KV_Q8_0) && (a->head_dim % 32 || a->kv_stride % 32))
        return "a q8_0 cache needs head_dim and the row stride multiples of 32";
    if ((a->q_group == NULL) != (a->k_group == NULL)) return "SelfExtend needs both q_group and k_group";
    if (a->q_group && a->group_window < 0) return "negative SelfExtend group window";
    return NULL;
}

int attn_forward(const struct attn_args *a, struct threadpool *tp, char *err, size_t errlen) {
    const char *problem = attn_args_problem(a);
    if (problem) {
        snprintf(err, errlen, "attention: %s", problem);
        return -1;
    }
    if (a->n_q == 0) return 0;

    struct attn_plan p = { .a = a, .group_size = a->n_heads / a->n_kv_heads, .selfextend = a->q_group != NULL };
    p.tile_q = a->tile_q > 0 ? a->tile_q : DEFAULT_TASK_ROWS / p.group_size;
    if (p.tile_q < 1) p.tile_q = 1;
    if (p.tile_q > a->n_q) p.tile_q = a->n_q;
    p.tile_k = a->tile_k > 0 ? a->tile_k : DEFAULT_TILE_K;
    if (p.tile_k > a->n_kv) p.tile_k = a->n_kv > 0 ? a->n_kv : 1;
    p.n_qtiles = (a->n_q + p.tile_q - 1) / p.tile_q;
    p.n_ktiles = (a->n_kv + p.tile_k - 1) / p.tile_k;

    if ((int64_t)p.n_qtiles * a->n_kv_heads > INT32_MAX) {
        snprintf(err, errlen, "attention: too many tasks (%d query tiles x %d kv heads)", p.n_qtiles, a->n_kv_heads);
        return -1;
    }
    int n_threads = threadpool_size(tp);
    size_t rows = (size_t)p.tile_q * p.group_size;
    int units = p.n_qtiles * a->n_kv_heads;
    p.n_splits = 1;
    if (units < n_threads && p.n_ktiles >= 4) {   /* too few units to keep the threads busy */
        int want = (2 * n_threads + units - 1) / units;
        int most = p.n_ktiles / 2;                  /* at least two key tiles per split */
        p.n_splits = want < most ? want : most;
    }
    p.rows_max = rows;
    p.partial_floats = rows * (2 + (size_t)a->head_dim);
    struct tile_bufs sizing;
    p.slice_floats = carve_bufs(&sizing, NULL, rows, (size_t)a->head_dim, (size_t)p.tile_k, p.selfextend,
                                a->k_type != KV_F32, a->v_type != KV_F32);
    p.k_range = malloc((size_t)p.n_ktiles * sizeof *p.k_range + 1);
    p.scratch = aligned_alloc(64, (size_t)n_threads * p.slice_floats * sizeof(float));
    if (p.n_splits > 1) p.partial = malloc((size_t)units * p.n_splits * p.partial_floats * sizeof(float));
    if (!p.k_range || !p.scratch || (p.n_splits > 1 && !p.partial)) {
        snprintf(err, errlen, "attention: out of memory for %zu floats of tile scratch",
                 (size_t)n_threads * p.slice_floats);
        free(p.k_range);
        free(p.scratch);
        free(p.partial);
        return -1;
    }
    for (int kt = 0; kt < p.n_ktiles; kt++) {
        struct pos_range r = { INT64_MAX, INT64_MIN };
        int64_t j1 = (int64_t)(kt + 1) * p.tile_k < a->n_kv ? (int64_t)(kt + 1) * p.tile_k : a->n_kv;
        for (int64_t j = (int64_t)kt * p.tile_k; j < j1; j++) {
            if (a->k_pos[j] < r.lo) r.lo = a->k_pos[j];
            if (a->k_pos[j] > r.hi) r.hi = a->k_pos[j];
        }
        p.k_range[kt] = r;
    }

    threadpool_run(tp, units * p.n_splits, attn_task, &p);
    if (p.n_splits > 1) threadpool_run(tp, units, merge_task, &p);
    free(p.k_range);
    free(p.scratch);
    free(p.partial);
    return 0;
}
