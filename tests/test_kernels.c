/* Every kernel against a slow double-precision reference written here with
 * obvious loops. Attention is checked over tile sizes, lengths that are not
 * multiples of a tile, continuation with a cache (n_q < n_kv), grouped-query
 * ratios, head sizes, sliding windows, SelfExtend and odd position layouts.
 *
 * Tolerances: the kernels compute in float (BLAS sgemm, float accumulators), the
 * references in double on the same float inputs. Outputs are compared as
 * |got - ref| / max(|ref|, floor) with the floor at a tenth of the data's scale
 * (values in [-1, 1]); rope must agree to 1e-6, rmsnorm and swiglu to 1e-5, and
 * attention to 5e-5: its logits reach ~10 here on purpose (to exercise the
 * running-max rescaling), and float dot products of 128 terms of size ~3 carry
 * ~2e-6 absolute error into them; observed worst case 2.3e-5. */
#include <criterion/criterion.h>
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"
#include "testutil.h"
#include "threadpool.h"

static void fill_uniform(float *x, size_t n, float amplitude, unsigned long long *rng) {
    for (size_t i = 0; i < n; i++) x[i] = amplitude * test_rng_uniform(rng);
}

/* ---------------- rmsnorm, swiglu, log_softmax ---------------- */

Test(kernels, rmsnorm_matches_reference) {
    unsigned long long rng = 11;
    int n = 300, rows = 5;
    float *x = malloc(sizeof(float) * n * rows), *w = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n * rows);
    double *ref = malloc(sizeof(double) * n * rows);
    fill_uniform(x, (size_t)n * rows, 3.0f, &rng);
    fill_uniform(w, (size_t)n, 2.0f, &rng);
    float eps = 1e-5f;
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
        double rms = sqrt(ss / n + (double)eps);
        for (int i = 0; i < n; i++) ref[r * n + i] = x[r * n + i] / rms * w[i];
    }
    rmsnorm(y, x, w, n, rows, eps);
    double err = max_rel_err(y, ref, (size_t)n * rows, 1e-3);
    cr_assert_lt(err, 1e-5, "rmsnorm rel err %g", err);
    rmsnorm(x, x, w, n, rows, eps);   /* in place */
    err = max_rel_err(x, ref, (size_t)n * rows, 1e-3);
    cr_assert_lt(err, 1e-5, "in-place rmsnorm rel err %g", err);
    free(x); free(w); free(y); free(ref);
}

Test(kernels, swiglu_matches_reference) {
    unsigned long long rng = 12;
    enum { N = 1000 };
    float g[N], u[N], out[N];
    double ref[N];
    fill_uniform(g, N, 12.0f, &rng);
    fill_uniform(u, N, 2.0f, &rng);
    for (int i = 0; i < N; i++) ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    swiglu(out, g, u, N);
    double err = max_rel_err(out, ref, N, 1e-4);
    cr_assert_lt(err, 1e-5, "swiglu rel err %g", err);
}

/* ---------------- rope ---------------- */

/* Rotates one head vector in double: pair i is (2i, 2i+1) for NORM, (i, i+n_rot/2) for NEOX. */
static void ref_rope_head(double *x, int n_rot, double pos, const float *inv_freq, double mscale,
                          enum rope_style style) {
    for (int i = 0; i < n_rot / 2; i++) {
        int a = style == ROPE_NEOX ? i : 2 * i;
        int b = style == ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
        double angle = pos * (double)inv_freq[i];
        double c = cos(angle) * mscale, s = sin(angle) * mscale;
        double x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

static void check_rope(enum rope_style style, int head_dim, int n_rot) {
    unsigned long long rng = 21 + (unsigned long long)style * 7 + (unsigned long long)n_rot;
    int n_tokens = 9, n_heads = 3;
    size_t stride = (size_t)n_heads * head_dim + 5;   /* padding after the heads must stay untouched */
    size_t total = stride * n_tokens;
    float *x = malloc(sizeof(float) * total), *orig = malloc(sizeof(float) * total);
    double *ref = malloc(sizeof(double) * total);
    float inv_freq[64];
    int32_t pos[9] = { 0, 1, 7, 100, 4095, 4096, 32767, 100000, 262143 };
    for (int i = 0; i < n_rot / 2; i++)   /* a typical spectrum, jittered */
        inv_freq[i] = (float)(pow(10000.0, -2.0 * i / n_rot) * (1.0 + 0.3 * test_rng_uniform(&rng)));
    fill_uniform(x, total, 1.5f, &rng);
    memcpy(orig, x, sizeof(float) * total);
    float mscale = 1.2345f;
    for (size_t i = 0; i < total; i++) ref[i] = x[i];
    for (int t = 0; t < n_tokens; t++)
        for (int h = 0; h < n_heads; h++)
            ref_rope_head(ref + t * stride + (size_t)h * head_dim, n_rot, pos[t], inv_freq, mscale, style);
    rope_apply(x, n_tokens, stride, n_heads, head_dim, n_rot, pos, inv_freq, mscale, style);
    double err = max_rel_err(x, ref, total, 0.1);
    cr_assert_lt(err, 1e-6, "rope style %d head_dim %d n_rot %d: rel err %g", style, head_dim, n_rot, err);
    for (int t = 0; t < n_tokens; t++)
        for (size_t i = 0; i < stride; i++) {
            size_t h_dim = i % (size_t)head_dim;
            int outside = i >= (size_t)n_heads * head_dim || h_dim >= (size_t)n_rot;
            if (outside)
                cr_assert_eq(x[t * stride + i], orig[t * stride + i], "dim %zu of token %d changed", i, t);
        }
    free(x); free(orig); free(ref);
}

Test(kernels, rope_norm_and_neox) {
    check_rope(ROPE_NORM, 64, 64);
    check_rope(ROPE_NEOX, 64, 64);
    check_rope(ROPE_NORM, 64, 48);
    check_rope(ROPE_NEOX, 64, 48);
    check_rope(ROPE_NEOX, 32, 8);
}

/* The two styles pair different dimensions: NORM turns (0,1) together, NEOX (0, n_rot/2). */
Test(kernels, rope_pairing) {
    float inv_freq[2] = { 1.0f, 0.0f };
    int32_t pos[1] = { 1 };
    float x[4] = { 1, 0, 0, 0 };
    rope_apply(x, 1, 4, 1, 4, 4, pos, inv_freq, 1.0f, ROPE_NORM);
    cr_assert_float_eq(x[1], (float)sin(1.0), 1e-6);
    cr_assert_float_eq(x[2], 0.0f, 1e-9);
    float y[4] = { 1, 0, 0, 0 };
    rope_apply(y, 1, 4, 1, 4, 4, pos, inv_freq, 1.0f, ROPE_NEOX);
    cr_assert_float_eq(y[2], (float)sin(1.0), 1e-6);
    cr_assert_float_eq(y[1], 0.0f, 1e-9);
}

/* ---------------- KV cache conversion ---------------- */

/* An IEEE half decoded in double from its fields (independent of quant.c). */
static double ref_half(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h >> 15 ? -v : v;
}

/* The half nearest to x, ties to an even mantissa, |x| >= 65520 to infinity: a binary
 * search over the decoded halves (they increase with their bits). */
static uint16_t ref_round_half(double x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double ax = fabs(x);
    if (ax >= 65520.0) return sign | 0x7c00;
    unsigned lo = 0, hi = 0x7bff;   /* the largest h with ref_half(h) <= ax */
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        if (ref_half((uint16_t)mid) <= ax) lo = mid;
        else hi = mid - 1;
    }
    if (lo == 0x7bff) return sign | 0x7bff;
    double below = ax - ref_half((uint16_t)lo), above = ref_half((uint16_t)(lo + 1)) - ax;
    unsigned h = below < above ? lo : above < below ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return sign | (uint16_t)h;
}

static uint16_t read_u16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

/* Value x of a cache row of type t, decoded here: f16 a half; q8_0 blocks of an fp16
 * scale d and 32 int8 q, value d*q. */
static double ref_kv_value(enum kv_type t, const uint8_t *row, size_t x) {
    if (t == KV_F16) return ref_half(read_u16(row + 2 * x));
    const uint8_t *block = row + x / 32 * 34;
    return ref_half(read_u16(block)) * (double)(int8_t)block[2 + x % 32];
}

Test(kv_cache, f16_rounds_to_nearest_even) {
    enum { N = 20000 };
    float *x = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    unsigned long long rng = 99;
    size_t n = 0;
    /* every exact midpoint between neighbouring halves over a range of exponents (ties),
     * the subnormal halves, and the edges of the range */
    for (unsigned b = 0; b < 0x7bff && n < 4000; b += 17) x[n++] = (float)((ref_half((uint16_t)b) + ref_half((uint16_t)(b + 1))) / 2);
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, 2.98e-8f, 5.96e-8f, 6.1e-5f,
                           -6.1e-5f, 1.0f, 1.00048828125f, 3.0e38f, -1e-30f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) x[n++] = edges[i];
    while (n < N) {   /* random floats over the halves' range and beyond */
        int e = (int)(test_rng_next(&rng) % 50) - 30;
        x[n++] = (float)ldexp(test_rng_uniform(&rng), e);
    }
    kv_quantize_rows(KV_F16, x, h, N, 1);
    kv_dequantize(KV_F16, h, back, N);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = ref_round_half((double)x[i]);
        cr_assert_eq(h[i], want, "f16 of %.9g: 0x%04x, nearest-even half 0x%04x", (double)x[i], h[i], want);
        cr_assert(back[i] == (float)ref_half(h[i]), "f16 0x%04x read back as %.9g, is %.9g", h[i], (double)back[i],
                  ref_half(h[i]));
    }
    free(x); free(back); free(h);
}

Test(kv_cache, q8_0_blocks_match_double_reference) {
    enum { ROW = 64, ROWS = 400 };
    float *x = malloc(sizeof(float) * ROW * ROWS), *back = malloc(sizeof(float) * ROW * ROWS);
    size_t rb = kv_row_bytes(KV_Q8_0, ROW);
    cr_assert_eq(rb, 68u);
    cr_assert_eq(kv_row_bytes(KV_Q8_0, 48), 0u, "48 values are not whole q8_0 blocks");
    cr_assert_eq(kv_row_bytes(KV_F16, 48), 96u);
    uint8_t *q = malloc(rb * ROWS);
    unsigned long long rng = 7;
    for (int r = 0; r < ROWS; r++) {
        float amp = (float)ldexp(1.0, (int)(test_rng_next(&rng) % 24) - 12);
        for (int i = 0; i < ROW; i++) x[r * ROW + i] = amp * test_rng_uniform(&rng);
        if (r % 5 == 1) for (int i = 0; i < 32; i++) x[r * ROW + i] = 0.0f;         /* an all-zero block */
        if (r % 5 == 2) x[r * ROW + 3] = 50 * amp;                                    /* one outlier */
        if (r % 5 == 3) for (int i = 0; i < ROW; i++) x[r * ROW + i] = (float)((i % 9) - 4) * amp;   /* exact ties */
    }
    kv_quantize_rows(KV_Q8_0, x, q, ROW, ROWS);
    for (int r = 0; r < ROWS; r++) {
        kv_dequantize(KV_Q8_0, q + (size_t)r * rb, back + (size_t)r * ROW, ROW);
        for (int b = 0; b < ROW / 32; b++) {
            const float *xb = x + r * ROW + b * 32;
            const uint8_t *blk = q + (size_t)r * rb + (size_t)b * 34;
            double amax = 0;
            for (int i = 0; i < 32; i++) amax = fmax(amax, fabs((double)xb[i]));
            /* the scale: amax/127 rounded to the nearest half (the float division before it
             * may land on the other side of a midpoint: then either neighbour is right) */
            uint16_t dh = read_u16(blk), want = ref_round_half(amax / 127);
            double d = ref_half(dh);
            if (dh != want) {
                double mid = (d + ref_half(want)) / 2;
                cr_assert(abs((int)dh - (int)want) == 1 && fabs(amax / 127 - mid) <= 1e-6 * mid,
                          "row %d block %d: scale 0x%04x, want 0x%04x (amax %.9g)", r, b, dh, want, amax);
            }
            for (int i = 0; i < 32; i++) {
                int got = (int8_t)blk[2 + i];
                double t = d > 0 ? (double)xb[i] / d : 0;
                double want_q = fmin(127, fmax(-127, nearbyint(t)));
                bool near_tie = fabs(fabs(t - trunc(t)) - 0.5) < 1e-5;
                cr_assert(got == want_q || (near_tie && fabs(got - t) <= 0.5 + 1e-5),
                          "row %d block %d value %d: %.9g / d %.9g = %.6f quantized to %d, nearest is %.0f", r, b, i,
                          (double)xb[i], d, t, got, want_q);
                cr_assert(back[r * ROW + b * 32 + i] == (float)(d * got), "q8_0 read back wrong at row %d value %d", r,
                          b * 32 + i);
            }
        }
    }
    free(x); free(back); free(q);
}

/* ---------------- attention ---------------- */

struct attn_case {
    int n_q, n_kv, n_heads, n_kv_heads, head_dim;
    int tile_q, tile_k, window;
    int se_group, se_window;        /* SelfExtend G and W; G == 0: off */
    int threads;
    float amplitude;                /* of q and k: larger makes sharper softmaxes */
    int positions;                  /* 0: contiguous, last n_q of the n_kv are queries; see below */
    enum kv_type k_type, v_type;    /* the caches' types (0: f32) */
};
enum { POS_CONTIGUOUS = 0, POS_SHUFFLED_KEYS = 1, POS_GAPS = 2 };

/* Inverse frequencies for the test's own rope (SelfExtend needs real rotations). */
static void test_inv_freq(float *f, int head_dim) {
    for (int i = 0; i < head_dim / 2; i++) f[i] = (float)pow(10000.0, -2.0 * i / head_dim);
}

/* Rotates rows of raw (n x heads x d) at positions pos, in double; writes both precisions. */
static void rotate_rows(double *outd, float *outf, const float *raw, int n, int heads, int d, const int64_t *pos,
                        const float *inv_freq) {
    for (int t = 0; t < n; t++)
        for (int h = 0; h < heads; h++) {
            size_t o = ((size_t)t * heads + h) * d;
            for (int c = 0; c < d; c++) outd[o + c] = raw[o + c];
            ref_rope_head(outd + o, d, (double)pos[t], inv_freq, 1.0, ROPE_NEOX);
            /* The reference then works on exactly the floats the kernel gets. */
            for (int c = 0; c < d; c++) outd[o + c] = outf[o + c] = (float)outd[o + c];
        }
}

static double floor_div(int64_t a, int64_t b) { return (double)(a >= 0 ? a / b : -((-a + b - 1) / b)); }

static void run_attn_case(struct attn_case c) {
    unsigned long long rng = 1000003ULL * (unsigned long long)(c.n_q * 131 + c.n_kv * 7 + c.head_dim + c.tile_k)
                             + (unsigned long long)(c.n_heads * 17 + c.window * 3 + c.se_group * 5 + 1);
    int d = c.head_dim, H = c.n_heads, KH = c.n_kv_heads;
    size_t qn = (size_t)c.n_q * H * d, kn = (size_t)c.n_kv * KH * d;
    float *q_raw = malloc(sizeof(float) * qn), *k_raw = malloc(sizeof(float) * kn);
    float *q = malloc(sizeof(float) * qn), *k = malloc(sizeof(float) * kn), *v = malloc(sizeof(float) * kn);
    float *qg = malloc(sizeof(float) * qn), *kg = malloc(sizeof(float) * kn);
    double *qd = malloc(sizeof(double) * qn), *kd = malloc(sizeof(double) * kn);
    double *qgd = malloc(sizeof(double) * qn), *kgd = malloc(sizeof(double) * kn);
    float *out = malloc(sizeof(float) * qn);
    double *ref = malloc(sizeof(double) * qn);
    double *score = malloc(sizeof(double) * (size_t)c.n_kv);
    int32_t *q_pos = malloc(sizeof(int32_t) * (size_t)c.n_q), *k_pos = malloc(sizeof(int32_t) * (size_t)(c.n_kv + 1));
    int64_t *pq = malloc(sizeof(int64_t) * (size_t)c.n_q), *pk = malloc(sizeof(int64_t) * (size_t)(c.n_kv + 1));
    float inv_freq[64];
    test_inv_freq(inv_freq, d);

    /* Positions: keys 0..n_kv-1 (or with gaps, or shuffled), queries the last n_q keys. */
    for (int j = 0; j < c.n_kv; j++) k_pos[j] = c.positions == POS_GAPS ? 3 * j + (j % 2) : j;
    for (int i = 0; i < c.n_q; i++) q_pos[i] = k_pos[c.n_kv - c.n_q + i];
    if (c.positions == POS_SHUFFLED_KEYS)   /* the cache holds keys in any order: no tile order to rely on */
        for (int j = c.n_kv - 1; j > 0; j--) {
            int r = (int)(test_rng_next(&rng) % (unsigned long long)(j + 1));
            int32_t t = k_pos[j]; k_pos[j] = k_pos[r]; k_pos[r] = t;
        }

    fill_uniform(q_raw, qn, c.amplitude, &rng);
    fill_uniform(k_raw, kn, c.amplitude, &rng);
    fill_uniform(v, kn, 1.0f, &rng);
    for (int i = 0; i < c.n_q; i++) pq[i] = q_pos[i];
    for (int j = 0; j < c.n_kv; j++) pk[j] = k_pos[j];
    rotate_rows(qd, q, q_raw, c.n_q, H, d, pq, inv_freq);
    rotate_rows(kd, k, k_raw, c.n_kv, KH, d, pk, inv_freq);
    if (c.se_group) {   /* SelfExtend grouped positions, built explicitly */
        int64_t G = c.se_group, W = c.se_window;
        for (int i = 0; i < c.n_q; i++) pq[i] = (int64_t)floor_div(q_pos[i], G) + W - (int64_t)floor_div(W, G);
        for (int j = 0; j < c.n_kv; j++) pk[j] = (int64_t)floor_div(k_pos[j], G);
        rotate_rows(qgd, qg, q_raw, c.n_q, H, d, pq, inv_freq);
        rotate_rows(kgd, kg, k_raw, c.n_kv, KH, d, pk, inv_freq);
    }
    /* f16/q8_0 caches: stored by the backend's converter (its rounding is checked by the
     * kv_cache tests); the reference reads the stored values back with its own decoder. */
    double *vd = malloc(sizeof(double) * kn);
    for (size_t i = 0; i < kn; i++) vd[i] = v[i];
    void *kc = k, *kgc = kg, *vc = v;
    size_t kvd = (size_t)KH * d;
    if (c.k_type != KV_F32) {
        size_t rb = kv_row_bytes(c.k_type, kvd);
        kc = malloc(rb * (size_t)c.n_kv + 1);
        kgc = malloc(rb * (size_t)c.n_kv + 1);
        kv_quantize_rows(c.k_type, k, kc, kvd, (size_t)c.n_kv);
        kv_quantize_rows(c.k_type, kg, kgc, kvd, (size_t)c.n_kv);
        for (int j = 0; j < c.n_kv; j++)
            for (size_t x = 0; x < kvd; x++) {
                kd[(size_t)j * kvd + x] = ref_kv_value(c.k_type, (const uint8_t *)kc + (size_t)j * rb, x);
                if (c.se_group) kgd[(size_t)j * kvd + x] = ref_kv_value(c.k_type, (const uint8_t *)kgc + (size_t)j * rb, x);
            }
    }
    if (c.v_type != KV_F32) {
        size_t rb = kv_row_bytes(c.v_type, kvd);
        vc = malloc(rb * (size_t)c.n_kv + 1);
        kv_quantize_rows(c.v_type, v, vc, kvd, (size_t)c.n_kv);
        for (int j = 0; j < c.n_kv; j++)
            for (size_t x = 0; x < kvd; x++)
                vd[(size_t)j * kvd + x] = ref_kv_value(c.v_type, (const uint8_t *)vc + (size_t)j * rb, x);
    }

    /* Reference: an explicit row of scores per (query, head), softmax in double. */
    double scale = 1.0 / sqrt((double)d);
    for (int i = 0; i < c.n_q; i++)
        for (int h = 0; h < H; h++) {
            int kvh = h / (H / KH);
            const double *qi = qd + ((size_t)i * H + h) * d, *qgi = qgd + ((size_t)i * H + h) * d;
            double max = -INFINITY;
            for (int j = 0; j < c.n_kv; j++) {
                int64_t dist = (int64_t)q_pos[i] - k_pos[j];
                int visible = dist >= 0 && (c.window == 0 || dist < c.window);
                if (!visible) { score[j] = -INFINITY; continue; }
                int far = c.se_group && dist >= c.se_window;
                const double *qq = far ? qgi : qi;
                const double *kk = (far ? kgd : kd) + ((size_t)j * KH + kvh) * d;
                double dot = 0;
                for (int e = 0; e < d; e++) dot += qq[e] * kk[e];
                score[j] = dot * scale;
                if (score[j] > max) max = score[j];
            }
            double *r = ref + ((size_t)i * H + h) * d;
            for (int e = 0; e < d; e++) r[e] = 0;
            if (max == -INFINITY) continue;   /* no visible key: zeros */
            double sum = 0;
            for (int j = 0; j < c.n_kv; j++) {
                if (score[j] == -INFINITY) continue;
                double p = exp(score[j] - max);
                sum += p;
                for (int e = 0; e < d; e++) r[e] += p * vd[((size_t)j * KH + kvh) * d + e];
            }
            for (int e = 0; e < d; e++) r[e] /= sum;
        }

    char tp_err[256];
    struct threadpool *tp = threadpool_create(c.threads, tp_err, sizeof tp_err);
    cr_assert_not_null(tp, "%s", tp_err);
    for (size_t i = 0; i < qn; i++) out[i] = NAN;   /* every output must be written */
    struct attn_args a = {
        .n_q = c.n_q, .n_kv = c.n_kv, .n_heads = H, .n_kv_heads = KH, .head_dim = d,
        .q = q, .q_stride = (size_t)H * d, .k = kc, .v = vc, .kv_stride = (size_t)KH * d,
        .k_type = c.k_type, .v_type = c.v_type,
        .q_group = c.se_group ? qg : NULL, .k_group = c.se_group ? kgc : NULL, .group_window = c.se_window,
        .q_pos = q_pos, .k_pos = k_pos, .scale = (float)scale, .window = c.window,
        .tile_q = c.tile_q, .tile_k = c.tile_k, .out = out, .out_stride = (size_t)H * d,
    };
    char msg[256];
    cr_assert_eq(attn_forward(&a, tp, msg, sizeof msg), 0, "%s", msg);
    threadpool_free(tp);

    for (size_t i = 0; i < qn; i++)   /* max_rel_err would pass over a NaN */
        cr_assert(isfinite(out[i]), "output %zu not written or not finite (n_q=%d n_kv=%d heads=%d/%d)", i, c.n_q,
                  c.n_kv, H, KH);
    double err = max_rel_err(out, ref, qn, 0.1);
    if (getenv("CTX_TEST_VERBOSE")) fprintf(stderr, "err %.3g n_q=%d n_kv=%d d=%d\n", err, c.n_q, c.n_kv, d);
    cr_assert_lt(err, 5e-5,
                 "attention n_q=%d n_kv=%d heads=%d/%d d=%d tiles=%d/%d window=%d SE(G=%d,W=%d) threads=%d pos=%d: "
                 "rel err %g (caches %s/%s)", c.n_q, c.n_kv, H, KH, d, c.tile_q, c.tile_k, c.window, c.se_group,
                 c.se_window, c.threads, c.positions, err, kv_type_name(c.k_type), kv_type_name(c.v_type));
    if (kc != k) { free(kc); free(kgc); }
    if (vc != v) free(vc);
    free(vd);

    free(q_raw); free(k_raw); free(q); free(k); free(v); free(qg); free(kg);
    free(qd); free(kd); free(qgd); free(kgd); free(out); free(ref); free(score);
    free(q_pos); free(k_pos); free(pq); free(pk);
}

static struct attn_case base_case(int n_q, int n_kv) {
    return (struct attn_case){ .n_q = n_q, .n_kv = n_kv, .n_heads = 4, .n_kv_heads = 2, .head_dim = 32,
                               .threads = 2, .amplitude = 3.0f };
}

Test(attention, tiles_and_lengths) {
    openblas_set_num_threads(1);
    int tiles[][2] = { { 0, 0 }, { 16, 16 }, { 32, 32 }, { 64, 64 }, { 7, 13 }, { 13, 7 }, { 1, 5 }, { 64, 16 } };
    int lengths[] = { 1, 5, 100, 257 };
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++)
        for (size_t n = 0; n < sizeof lengths / sizeof lengths[0]; n++) {
            struct attn_case c = base_case(lengths[n], lengths[n]);
            c.tile_q = tiles[t][0];
            c.tile_k = tiles[t][1];
            c.threads = 1 + (int)((t + n) % 3);
            run_attn_case(c);
        }
}

Test(attention, continuing_with_cache) {
    openblas_set_num_threads(1);
    int n_qs[] = { 1, 5, 100, 256 };
    int tiles[][2] = { { 0, 0 }, { 16, 32 }, { 7, 13 } };
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < 4; i++) {
            struct attn_case c = base_case(n_qs[i], 257);
            c.tile_q = tiles[t][0];
            c.tile_k = tiles[t][1];
            run_attn_case(c);
        }
}

Test(attention, grouped_query_ratios_and_head_dims) {
    openblas_set_num_threads(1);
    int ratios[] = { 1, 2, 4, 8 };
    int dims[] = { 8, 32, 64, 128 };
    for (size_t r = 0; r < 4; r++)
        for (size_t d = 0; d < 4; d++) {
            struct attn_case c = base_case(100, 100);
            c.n_kv_heads = r == 0 ? 3 : 1 + (int)(d % 2);
            c.n_heads = c.n_kv_heads * ratios[r];
            c.head_dim = dims[d];
            c.tile_q = d == 1 ? 13 : 0;
            c.tile_k = d == 1 ? 32 : 0;
            c.threads = 1 + (int)(r % 3);
            run_attn_case(c);
        }
    /* decode shape: one query against a long cache, every ratio */
    for (size_t r = 0; r < 4; r++) {
        struct attn_case c = base_case(1, 1000);
        c.n_kv_heads = 2;
        c.n_heads = 2 * ratios[r];
        c.head_dim = 64;
        run_attn_case(c);
    }
}

Test(attention, sliding_window) {
    openblas_set_num_threads(1);
    int windows[] = { 1, 3, 64, 1000 };
    int tiles[][2] = { { 0, 0 }, { 16, 16 }, { 7, 13 } };
    for (size_t w = 0; w < 4; w++)
        for (size_t t = 0; t < 3; t++) {
            struct attn_case c = base_case(257, 257);
            c.window = windows[w];
            c.tile_q = tiles[t][0];
            c.tile_k = tiles[t][1];
            run_attn_case(c);
            c.n_q = 5;   /* continuing with a cache */
            run_attn_case(c);
        }
}

Test(attention, selfextend) {
    openblas_set_num_threads(1);
    int se[][2] = { { 2, 4 }, { 4, 16 }, { 8, 32 }, { 3, 7 }, { 2, 0 }, { 4, 300 } };
    int tiles[][2] = { { 0, 0 }, { 16, 16 }, { 7, 13 }, { 32, 64 } };
    for (size_t s = 0; s < sizeof se / sizeof se[0]; s++)
        for (size_t t = 0; t < 4; t++) {
            struct attn_case c = base_case(257, 257);
            c.se_group = se[s][0];
            c.se_window = se[s][1];
            c.tile_q = tiles[t][0];
            c.tile_k = tiles[t][1];
            c.threads = 1 + (int)(t % 2);
            run_attn_case(c);
            c.n_q = 3;   /* continuing with a cache */
            run_attn_case(c);
        }
    /* SelfExtend together with a sliding window and GQA 4 */
    struct attn_case c = base_case(200, 200);
    c.se_group = 4; c.se_window = 32; c.window = 100; c.n_heads = 8; c.tile_q = 16; c.tile_k = 16;
    run_attn_case(c);
}

Test(attention, position_layouts) {
    openblas_set_num_threads(1);
    for (int layout = POS_SHUFFLED_KEYS; layout <= POS_GAPS; layout++)
        for (int w = 0; w < 2; w++) {
            struct attn_case c = base_case(100, 257);
            c.positions = layout;
            c.window = w ? 50 : 0;
            c.tile_q = 16;
            c.tile_k = 16;
            run_attn_case(c);
            c.se_group = 4;
            c.se_window = 24;
            run_attn_case(c);
        }
}

/* Few queries, many threads: key tiles are split among tasks and merged. */
Test(attention, split_kv_decode) {
    openblas_set_num_threads(1);
    int n_kvs[] = { 100, 1000 };
    for (int nk = 0; nk < 2; nk++)
        for (int kh = 1; kh <= 2; kh++)
            for (int variant = 0; variant < 4; variant++) {
                struct attn_case c = base_case(variant % 2 ? 3 : 1, n_kvs[nk]);
                c.n_kv_heads = kh;
                c.n_heads = 4 * kh;
                c.threads = 4;
                c.tile_k = variant < 2 ? 16 : 0;
                if (variant == 1) c.window = 50;            /* most splits see nothing */
                if (variant == 3) { c.se_group = 4; c.se_window = 40; }
                run_attn_case(c);
            }
}

/* Queries that come before every key see nothing: their rows are zero, and the
 * other rows are unaffected. */
Test(attention, fully_masked_rows_are_zero) {
    openblas_set_num_threads(1);
    enum { NQ = 4, NKV = 40, D = 16 };
    static float q[NQ * D], k[NKV * D], v[NKV * D], out[NQ * D];
    unsigned long long rng = 5;
    fill_uniform(q, NQ * D, 1, &rng);
    fill_uniform(k, NKV * D, 1, &rng);
    fill_uniform(v, NKV * D, 1, &rng);
    int32_t q_pos[NQ] = { 3, 9, 10, 60 }, k_pos[NKV];
    for (int j = 0; j < NKV; j++) k_pos[j] = 10 + j;
    for (int i = 0; i < NQ * D; i++) out[i] = NAN;
    struct attn_args a = {
        .n_q = NQ, .n_kv = NKV, .n_heads = 1, .n_kv_heads = 1, .head_dim = D,
        .q = q, .q_stride = D, .k = k, .v = v, .kv_stride = D, .q_pos = q_pos, .k_pos = k_pos,
        .scale = 0.25f, .tile_q = 2, .tile_k = 8, .out = out, .out_stride = D,
    };
    char err[256];
    cr_assert_eq(attn_forward(&a, NULL, err, sizeof err), 0, "%s", err);
    for (int e = 0; e < 2 * D; e++) cr_assert_eq(out[e], 0.0f, "rows of queries before every key must be 0");
    for (int e = 0; e < D; e++)   /* query at 10 sees exactly key 0 */
        cr_assert_float_eq(out[2 * D + e], v[e], 1e-6);
    for (int e = 3 * D; e < 4 * D; e++) cr_assert(isfinite(out[e]));
}

Test(attention, rejects_bad_arguments) {
    float q[8] = { 0 }, k[8] = { 0 }, v[8] = { 0 }, out[8] = { 7, 7, 7, 7, 7, 7, 7, 7 };
    int32_t pos[2] = { 0, 1 };
    struct attn_args a = {
        .n_q = 2, .n_kv = 2, .n_heads = 3, .n_kv_heads = 2, .head_dim = 2,
        .q = q, .q_stride = 6, .k = k, .v = v, .kv_stride = 4, .q_pos = pos, .k_pos = pos,
        .scale = 1, .out = out, .out_stride = 6,
    };
    char err[256] = "";
    cr_assert_eq(attn_forward(&a, NULL, err, sizeof err), -1);   /* 3 heads over 2 kv heads: refused, nothing written */
    cr_assert(strstr(err, "attention: ") != NULL, "%s", err);
    for (int i = 0; i < 8; i++) cr_assert_eq(out[i], 7.0f);
    a.n_heads = 2; a.q_stride = 1;   /* stride too small */
    cr_assert_eq(attn_forward(&a, NULL, err, sizeof err), -1);
    for (int i = 0; i < 8; i++) cr_assert_eq(out[i], 7.0f);
}

Test(attention, f16_and_q8_0_caches) {
    openblas_set_num_threads(1);
    const enum kv_type types[][2] = {{KV_F16, KV_F16}, {KV_Q8_0, KV_Q8_0}, {KV_F16, KV_Q8_0}, {KV_Q8_0, KV_F32}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        struct attn_case cases[] = {base_case(257, 257), base_case(100, 300), base_case(1, 1000), base_case(64, 700),
                                    base_case(130, 400)};
        cases[1].tile_k = 32;
        cases[2].threads = 2;                                          /* split-KV decode */
        cases[3].se_group = 4; cases[3].se_window = 64;                /* SelfExtend (grouped keys converted too) */
        cases[4].window = 50; cases[4].n_heads = 8; cases[4].n_kv_heads = 1; cases[4].head_dim = 64; cases[4].tile_q = 7;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cases[i].k_type = types[t][0];
            cases[i].v_type = types[t][1];
            run_attn_case(cases[i]);
        }
    }
}

Test(attention, q8_0_cache_needs_whole_blocks_per_head) {
    float q[48] = {0}, k[48] = {0}, out[48];
    int32_t pos[1] = {0};
    struct attn_args a = {
        .n_q = 1, .n_kv = 1, .n_heads = 1, .n_kv_heads = 1, .head_dim = 48,
        .q = q, .q_stride = 48, .k = k, .v = k, .kv_stride = 48, .k_type = KV_Q8_0, .q_pos = pos, .k_pos = pos,
        .scale = 1, .out = out, .out_stride = 48,
    };
    char msg[256] = "";
    struct threadpool *tp = threadpool_create(1, msg, sizeof msg);
    cr_assert_not_null(tp);
    cr_assert_eq(attn_forward(&a, tp, msg, sizeof msg), -1);
    cr_assert(strstr(msg, "q8_0") && !strchr(msg, '\n'), "%s", msg);
    threadpool_free(tp);
}
