/* Quantization tests. Each block type has a reference decoder written here
 * from the byte layout, element by element in double precision; random
 * blocks must decode to exactly the same floats through dequantize_row (every
 * product in the formats is exact in float, so the only rounding is the
 * final one). Quantizers are checked by decoding their output with these
 * reference decoders and bounding the error. fp16/bf16 conversions are
 * checked against exhaustive tables and a nearest-value search. */
#include <criterion/criterion.h>
#include <float.h>
#include <stdint.h>

#include "quant.h"
#include "testutil.h"

/* ---------- reference half / bfloat16 ---------- */

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
static double ref_half(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, -24);                 /* subnormal: m * 2^-24 */
    else v = ldexp(1.0 + m / 1024.0, e - 15);
    return sign ? -v : v;
}

/* bfloat16: the top 16 bits of a float32 (8 exponent bits, bias 127, 7 mantissa). */
static double ref_bf16(uint16_t h) {
    int sign = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, -133);                /* m * 2^-7 * 2^-126 */
    else v = ldexp(1.0 + m / 128.0, e - 127);
    return sign ? -v : v;
}

/* Nearest representable value to x among `count` ascending non-negative
 * values vals[k] whose code is k (code parity = mantissa parity), ties to
 * the even code. `over` is the value just past the largest finite one (the
 * first value that would be representable with more exponent range); x at
 * or beyond the midpoint to it rounds to the infinity code `count`. */
static unsigned ref_round(double x, const double *vals, unsigned count, double over) {
    double last = vals[count - 1];
    if (x >= (last + over) / 2) {
        if (x == (last + over) / 2 && ((count - 1) & 1) == 0) return count - 1;
        return count;
    }
    unsigned lo = 0, hi = count - 1;            /* vals[lo] <= x < vals[hi] or x == vals[count-1] */
    if (x >= last) return count - 1;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (vals[mid] <= x) lo = mid; else hi = mid;
    }
    double dl = x - vals[lo], dh = vals[hi] - x;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

static double half_vals[0x7c00];   /* every non-negative finite half, by code */

static void fill_half_vals(void) {
    for (unsigned k = 0; k < 0x7c00; k++) half_vals[k] = ref_half((uint16_t)k);
}

static uint16_t ref_to_half(float f) {
    if (half_vals[1] == 0) fill_half_vals();
    if (isnan(f)) return 0x7e00;
    double x = fabs((double)f);
    unsigned code = ref_round(x, half_vals, 0x7c00, 65536.0);
    return (uint16_t)((signbit(f) ? 0x8000 : 0) | code);
}

static uint16_t ref_to_bf16(float f) {
    /* candidates: the truncation toward zero and the next code up; compare in double */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)(u >> 16) & 0x8000;
    uint16_t lo = (uint16_t)((u >> 16) & 0x7fff), hi = (uint16_t)(lo + 1);
    if (isinf(f)) return sign | 0x7f80;
    double x = fabs((double)f);
    double vlo = ref_bf16(lo);
    double vhi = hi == 0x7f80 ? ldexp(1.0, 128) : ref_bf16(hi);   /* rounding up past the max gives inf */
    double dl = x - vlo, dh = vhi - x;
    uint16_t r = dl < dh ? lo : dh < dl ? hi : (lo & 1) ? hi : lo;
    return sign | r;
}

static float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

Test(fp16, every_half_decodes_exactly) {
    for (uint32_t h = 0; h < 65536; h++) {
        double want = ref_half((uint16_t)h);
        float got = fp16_to_f32((uint16_t)h);
        if (isnan(want)) { cr_assert(isnan(got), "0x%04x", h); continue; }
        cr_assert_eq((double)got, want, "0x%04x: %.9g vs %.9g", h, (double)got, want);
        cr_assert_eq(signbit(got) != 0, (h >> 15) != 0, "sign of 0x%04x", h);
    }
}

Test(fp16, encode_rounds_to_nearest_even) {
    fill_half_vals();
    /* every half value, the midpoints between neighbours (ties) and one float either side of them */
    for (uint32_t k = 0; k < 0x7c00; k++) {
        double a = half_vals[k], b = k + 1 < 0x7c00 ? half_vals[k + 1] : 65536.0;
        float pts[4] = { (float)a, (float)((a + b) / 2), 0, 0 };
        pts[2] = nextafterf(pts[1], -INFINITY);
        pts[3] = nextafterf(pts[1], INFINITY);
        for (int i = 0; i < 4; i++)
            for (int s = 0; s < 2; s++) {
                float f = s ? -pts[i] : pts[i];
                cr_assert_eq(f32_to_fp16(f), ref_to_half(f), "f=%a", (double)f);
            }
    }
    /* exact round trip of every finite half */
    for (uint32_t h = 0; h < 65536; h++)
        if (((h >> 10) & 31) != 31) cr_assert_eq(f32_to_fp16(fp16_to_f32((uint16_t)h)), h, "0x%04x", h);
    /* random float bit patterns over the whole range, including nan and inf */
    unsigned long long rng = 42;
    for (int i = 0; i < 300000; i++) {
        float f = bits_to_float((uint32_t)test_rng_next(&rng));
        uint16_t got = f32_to_fp16(f);
        if (isnan(f)) {
            cr_assert(((got >> 10) & 31) == 31 && (got & 1023) != 0, "nan -> 0x%04x", got);
            continue;
        }
        cr_assert_eq(got, ref_to_half(f), "f=%a", (double)f);
    }
    cr_expect_eq(f32_to_fp16(INFINITY), 0x7c00);
    cr_expect_eq(f32_to_fp16(-INFINITY), 0xfc00);
    cr_expect_eq(f32_to_fp16(65504.0f), 0x7bff);
    cr_expect_eq(f32_to_fp16(65519.996f), 0x7bff);
    cr_expect_eq(f32_to_fp16(65520.0f), 0x7c00);    /* tie between 65504 (odd) and 2^16: to inf */
    cr_expect_eq(f32_to_fp16(-0.0f), 0x8000);
    cr_expect_eq(f32_to_fp16(0x1p-25f), 0x0000);    /* tie between 0 and the smallest subnormal: to 0 */
    cr_expect_eq(f32_to_fp16(0x1.8p-24f), 0x0002);  /* tie between 1 and 2 subnormal units: to 2 */
    cr_expect_eq(f32_to_fp16(1e-30f), 0x0000);
    cr_expect_eq(f32_to_fp16(FLT_MIN / 4), 0x0000);  /* a float subnormal */
}

Test(bf16, decode_and_encode) {
    for (uint32_t h = 0; h < 65536; h++) {
        double want = ref_bf16((uint16_t)h);
        float got = bf16_to_f32((uint16_t)h);
        if (isnan(want)) cr_assert(isnan(got), "0x%04x", h);
        else cr_assert_eq((double)got, want, "0x%04x", h);
    }
    unsigned long long rng = 7;
    for (int i = 0; i < 300000; i++) {
        /* random bits, and values whose low 16 bits are exactly a tie */
        uint32_t u = (uint32_t)test_rng_next(&rng);
        if (i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u;
        float f = bits_to_float(u);
        uint16_t got = f32_to_bf16(f);
        if (isnan(f)) {
            cr_assert(((got >> 7) & 255) == 255 && (got & 127) != 0, "nan -> 0x%04x", got);
            continue;
        }
        cr_assert_eq(got, ref_to_bf16(f), "f=%a (0x%08x)", (double)f, u);
    }
    cr_expect_eq(f32_to_bf16(FLT_MAX), 0x7f80);          /* rounds up past the largest bf16 */
    cr_expect_eq(f32_to_bf16(bits_to_float(0x3f808000u)), 0x3f80); /* tie, even stays */
    cr_expect_eq(f32_to_bf16(bits_to_float(0x3f818000u)), 0x3f82); /* tie, odd rounds up */
}

/* ---------- reference block decoders ---------- */

static double rd_half(const uint8_t *p) { return ref_half((uint16_t)(p[0] | p[1] << 8)); }

/* Q8_0, 34 bytes: fp16 d, then 32 signed bytes; x = d*q. */
static void ref_q8_0(const uint8_t *b, double *y) {
    double d = rd_half(b);
    for (int e = 0; e < 32; e++) y[e] = d * (double)(int8_t)b[2 + e];
}

/* Q4_0, 18 bytes: fp16 d, then 16 bytes; element e<16 is the low nibble of byte e,
 * element e>=16 the high nibble of byte e-16; x = d*(nibble-8). */
static void ref_q4_0(const uint8_t *b, double *y) {
    double d = rd_half(b);
    for (int e = 0; e < 32; e++) {
        int nib = e < 16 ? (b[2 + e] & 15) : (b[2 + e - 16] >> 4);
        y[e] = d * (nib - 8);
    }
}

/* The 6-bit scale and min of sub-block j from the 12 packed bytes s:
 * sub-blocks 0-3 keep theirs in the low 6 bits of s[j] (scale) and s[j+4] (min);
 * sub-blocks 4-7 keep the low 4 bits in s[j+4] (scale: low nibble, min: high
 * nibble) and the top 2 bits in the top bits of s[j-4] (scale) and s[j] (min). */
static void ref_k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] % 64;
        *m = s[j + 4] % 64;
    } else {
        *sc = (s[j + 4] % 16) + 16 * (s[j - 4] / 64);
        *m = (s[j + 4] / 16) + 16 * (s[j] / 64);
    }
}

/* Q4_K, 144 bytes: fp16 d, fp16 dmin, 12 scale bytes, 128 quant bytes. Element e
 * is in sub-block j = e/32; sub-blocks 2p and 2p+1 share bytes 32p..32p+31 of the
 * quants (even sub-block: low nibble, odd: high nibble). x = d*sc*q - dmin*m. */
static void ref_q4_k(const uint8_t *b, double *y) {
    double d = rd_half(b), dmin = rd_half(b + 2);
    const uint8_t *s = b + 4, *qs = b + 16;
    for (int e = 0; e < 256; e++) {
        int j = e / 32, sc, m;
        ref_k_scale_min(s, j, &sc, &m);
        uint8_t byte = qs[32 * (j / 2) + e % 32];
        int q = (j % 2 == 0) ? byte % 16 : byte / 16;
        y[e] = d * sc * q - dmin * m;
    }
}

/* Q5_K, 176 bytes: as Q4_K with 32 high-bit bytes qh before the 128 quant bytes:
 * bit j of qh[e%32] is bit 4 of element e (j = e/32). */
static void ref_q5_k(const uint8_t *b, double *y) {
    double d = rd_half(b), dmin = rd_half(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
    for (int e = 0; e < 256; e++) {
        int j = e / 32, sc, m;
        ref_k_scale_min(s, j, &sc, &m);
        uint8_t byte = qs[32 * (j / 2) + e % 32];
        int q = (j % 2 == 0) ? byte % 16 : byte / 16;
        int high = (qh[e % 32] >> j) & 1;
        q += 16 * high;
        y[e] = d * sc * q - dmin * m;
    }
}

/* Q6_K, 210 bytes: 128 low-nibble bytes ql, 64 high-bit bytes qh, 16 signed
 * scales, fp16 d. Element e = 128n + 32k + l (n half, k quarter 0-3, l 0-31):
 * low 4 bits from ql[64n + l + 32*(k%2)] (low nibble for k<2, high for k>=2),
 * bits 4-5 from bits 2k..2k+1 of qh[32n + l]; x = d*scales[e/16]*(q-32). */
static void ref_q6_k(const uint8_t *b, double *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    double d = rd_half(b + 208);
    for (int e = 0; e < 256; e++) {
        int n = e / 128, k = (e % 128) / 32, l = e % 32;
        uint8_t lowbyte = ql[64 * n + l + 32 * (k % 2)];
        int low = k < 2 ? lowbyte % 16 : lowbyte / 16;
        int high = (qh[32 * n + l] >> (2 * k)) & 3;
        int q = low + 16 * high - 32;
        y[e] = d * sc[e / 16] * q;
    }
}

struct qtype {
    uint32_t type;
    const char *name;
    size_t elems, bytes;
    void (*ref)(const uint8_t *, double *);
    size_t half_offsets[2];   /* byte offsets of its fp16 scale fields (SIZE_MAX: none) */
    double max_err;           /* quantize+decode error bound, as a fraction of the block's max |x| */
    double max_code;          /* largest |(sub-block scale) * code| in units of the fp16 scale d */
    double rms_err;           /* bound on RMS error / RMS of gaussian data */
};

static const struct qtype qtypes[] = {
    { GGML_TYPE_Q8_0, "Q8_0", 32, 34, ref_q8_0, { 0, SIZE_MAX }, 0.0050, 127, 0.0065 },
    { GGML_TYPE_Q4_0, "Q4_0", 32, 18, ref_q4_0, { 0, SIZE_MAX }, 0.1265, 8, 0.095 },
    { GGML_TYPE_Q4_K, "Q4_K", 256, 144, ref_q4_k, { 0, 2 }, 0.095, 63 * 15 + 63, 0.09 },
    { GGML_TYPE_Q5_K, "Q5_K", 256, 176, ref_q5_k, { 0, 2 }, 0.058, 63 * 31 + 63, 0.045 },
    { GGML_TYPE_Q6_K, "Q6_K", 256, 210, ref_q6_k, { 208, SIZE_MAX }, 0.021, 127 * 32, 0.023 },
};
#define N_QTYPES (sizeof qtypes / sizeof qtypes[0])

/* A random finite half; exponents kept moderate so values stay far from overflow. */
static uint16_t random_scale(unsigned long long *rng) {
    uint16_t h = (uint16_t)test_rng_next(rng);
    int e = (int)(test_rng_next(rng) % 20);   /* 0 (subnormal) .. 19 (2^4) */
    return (uint16_t)((h & 0x83ff) | (e << 10));
}

Test(quant, type_table) {
    char buf[32];
    for (size_t i = 0; i < N_QTYPES; i++) {
        cr_expect(ggml_type_supported(qtypes[i].type));
        cr_expect_str_eq(ggml_type_name(qtypes[i].type, buf, sizeof buf), qtypes[i].name);
        cr_expect_eq(ggml_block_elems(qtypes[i].type), qtypes[i].elems);
        cr_expect_eq(ggml_block_bytes(qtypes[i].type), qtypes[i].bytes);
        cr_expect_eq(ggml_row_bytes(qtypes[i].type, qtypes[i].elems * 7), qtypes[i].bytes * 7);
        cr_expect_eq(ggml_row_bytes(qtypes[i].type, qtypes[i].elems + 1), 0);
    }
    cr_expect(ggml_type_supported(GGML_TYPE_F32) && ggml_type_supported(GGML_TYPE_F16) &&
              ggml_type_supported(GGML_TYPE_BF16));
    cr_expect_eq(ggml_row_bytes(GGML_TYPE_F32, 5), 20);
    cr_expect_eq(ggml_row_bytes(GGML_TYPE_F16, 5), 10);
    cr_expect_eq(ggml_row_bytes(GGML_TYPE_BF16, 5), 10);
    cr_expect(!ggml_type_supported(GGML_TYPE_Q3_K));
    cr_expect(!ggml_type_supported(GGML_TYPE_Q4_1));
    cr_expect(!ggml_type_supported(99));
    cr_expect_eq(ggml_block_bytes(GGML_TYPE_Q3_K), 0);
    cr_expect_eq(ggml_row_bytes(GGML_TYPE_Q3_K, 256), 0);
    cr_expect_eq(ggml_row_bytes(GGML_TYPE_Q8_0, UINT64_MAX - 31), 0, "overflow is not representable");
    cr_expect_str_eq(ggml_type_name(GGML_TYPE_Q3_K, buf, sizeof buf), "Q3_K");
    cr_expect_str_eq(ggml_type_name(GGML_TYPE_BF16, buf, sizeof buf), "BF16");
    cr_expect_str_eq(ggml_type_name(99, buf, sizeof buf), "type 99");
    cr_expect_str_eq(ggml_type_name(4, buf, sizeof buf), "type 4");
}

Test(quant, random_blocks_decode_exactly) {
    unsigned long long rng = 0xdecafbadULL;
    enum { NB = 37 };   /* several blocks per row, decoded in one call */
    for (size_t t = 0; t < N_QTYPES; t++) {
        const struct qtype *q = &qtypes[t];
        size_t n = NB * q->elems;
        uint8_t *blocks = malloc(NB * q->bytes);
        float *got = malloc(n * sizeof *got);
        double want[256];
        for (int rep = 0; rep < 40; rep++) {
            for (size_t i = 0; i < NB * q->bytes; i++) blocks[i] = (uint8_t)test_rng_next(&rng);
            for (size_t b = 0; b < NB; b++)
                for (int k = 0; k < 2; k++)
                    if (q->half_offsets[k] != SIZE_MAX) {
                        uint16_t h = random_scale(&rng);
                        memcpy(blocks + b * q->bytes + q->half_offsets[k], &h, 2);
                    }
            dequantize_row(q->type, blocks, got, n);
            for (size_t b = 0; b < NB; b++) {
                q->ref(blocks + b * q->bytes, want);
                for (size_t e = 0; e < q->elems; e++) {
                    float w = (float)want[e];
                    cr_assert(got[b * q->elems + e] == w, "%s block %zu elem %zu: %.9g vs %.9g", q->name, b, e,
                              (double)got[b * q->elems + e], want[e]);
                }
            }
        }
        free(blocks);
        free(got);
    }
}

Test(quant, float_rows_decode) {
    unsigned long long rng = 99;
    enum { N = 1000 + 5 };  /* not a multiple of the vector width */
    uint16_t h[N];
    float got[N], src[N];
    for (int i = 0; i < N; i++) h[i] = (uint16_t)test_rng_next(&rng);
    dequantize_row(GGML_TYPE_F16, h, got, N);
    for (int i = 0; i < N; i++) {
        double w = ref_half(h[i]);
        if (isnan(w)) cr_assert(isnan(got[i]));
        else cr_assert_eq((double)got[i], w, "F16 elem %d", i);
    }
    dequantize_row(GGML_TYPE_BF16, h, got, N);
    for (int i = 0; i < N; i++) {
        double w = ref_bf16(h[i]);
        if (isnan(w)) cr_assert(isnan(got[i]));
        else cr_assert_eq((double)got[i], w, "BF16 elem %d", i);
    }
    for (int i = 0; i < N; i++) src[i] = test_rng_uniform(&rng) * 100.0f;
    dequantize_row(GGML_TYPE_F32, src, got, N);
    cr_assert(memcmp(got, src, sizeof src) == 0);
    /* quantize_row for the float types is the scalar conversion */
    uint16_t enc[N];
    float back[N];
    quantize_row(GGML_TYPE_F16, src, enc, N);
    for (int i = 0; i < N; i++) cr_assert_eq(enc[i], ref_to_half(src[i]));
    quantize_row(GGML_TYPE_BF16, src, enc, N);
    for (int i = 0; i < N; i++) cr_assert_eq(enc[i], ref_to_bf16(src[i]));
    quantize_row(GGML_TYPE_F32, src, back, N);
    cr_assert(memcmp(back, src, sizeof src) == 0);
}

/* A test signal: gaussian-ish by default, with per-block variations that
 * stress the scale choice (zeros, constants, one sign, outliers, tiny values). */
static void fill_signal(float *x, size_t n, size_t block, double scale, unsigned long long *rng) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < 4; k++) s += test_rng_uniform(rng);
        x[i] = (float)(s * scale);
    }
    for (size_t b0 = 0; b0 < n; b0 += block) {
        int kind = (int)((b0 / block) % 8);
        float *xb = x + b0;
        switch (kind) {
        case 1: for (size_t i = 0; i < block; i++) xb[i] = 0; break;
        case 2: for (size_t i = 0; i < block; i++) xb[i] = (float)(0.37 * scale); break;
        case 3: for (size_t i = 0; i < block; i++) xb[i] = -fabsf(xb[i]) - (float)(0.01 * scale); break;
        case 4: for (size_t i = 0; i < block; i++) xb[i] = fabsf(xb[i]) + (float)(0.5 * scale); break;
        case 5: xb[block / 3] = (float)(30 * scale); break;
        case 6: for (size_t i = 0; i < block; i++) xb[i] *= 1e-3f; break;
        case 7: for (size_t i = 0; i < block; i++) xb[i] *= (i % 16 < 8) ? 10.0f : 0.01f; break;
        default: break;
        }
    }
}

Test(quant, quantize_then_reference_decode_within_bounds) {
    unsigned long long rng = 0xfeedULL;
    enum { NB = 48 };
    for (size_t t = 0; t < N_QTYPES; t++) {
        const struct qtype *q = &qtypes[t];
        size_t n = NB * q->elems;
        float *x = malloc(n * sizeof *x);
        uint8_t *blocks = malloc(NB * q->bytes);
        float *fast = malloc(n * sizeof *fast);
        double dec[256];
        /* unit-scale data, weight-like data (std 0.02), and data at the bottom of fp16's range */
        static const double scales[] = { 1.0, 1.0, 0.02, 1e-3 };
        for (int rep = 0; rep < 4; rep++) {
            fill_signal(x, n, q->elems, scales[rep], &rng);
            quantize_row(q->type, x, blocks, n);
            dequantize_row(q->type, blocks, fast, n);
            double se = 0, sx = 0;
            for (size_t b = 0; b < NB; b++) {
                const float *xb = x + b * q->elems;
                q->ref(blocks + b * q->bytes, dec);   /* the layout must be what the reference reads */
                double amax = 0;
                for (size_t e = 0; e < q->elems; e++) amax = fmax(amax, fabs(xb[e]));
                for (size_t e = 0; e < q->elems; e++) {
                    double err = fabs(dec[e] - xb[e]);
                    /* fp16 stores a scale only to within 2^-25 absolute (subnormals), so
                     * tiny blocks get that much slack per unit of code */
                    double slack = q->max_code * 0x1p-25;
                    cr_assert(err <= q->max_err * amax + slack, "%s block %zu (kind %zu) elem %zu: x=%g decoded %g (amax %g)",
                              q->name, b, b % 8, e, (double)xb[e], dec[e], amax);
                    cr_assert_eq(fast[b * q->elems + e], (float)dec[e]);
                    if (b % 8 == 0) { se += err * err; sx += (double)xb[e] * xb[e]; }
                }
                if (amax == 0)
                    for (size_t e = 0; e < q->elems; e++) cr_assert_eq(dec[e], 0.0, "%s zero block", q->name);
            }
            double rel = sqrt(se / sx);
            if (getenv("QUANT_VERBOSE")) fprintf(stderr, "%s scale %g: rms rel err %.4f\n", q->name, scales[rep], rel);
            if (scales[rep] < 0.01) continue;   /* fp16 subnormal scales: only the max bound applies */
            cr_expect(rel <= q->rms_err, "%s: RMS error %.4f of RMS signal exceeds %.4f", q->name, rel, q->rms_err);
            cr_expect(rel > q->rms_err / 20, "%s: RMS error %.2g implausibly small", q->name, rel);
        }
        free(x);
        free(blocks);
        free(fast);
    }
}

Test(quant, quantize_handles_non_finite_input) {
    /* nan and inf must not reach a float->int conversion (undefined behaviour);
     * for the 32-element types, blocks without them must still be right. */
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)i / 256.0f - 0.3f;
    x[5] = NAN;
    x[77] = INFINITY;
    uint8_t blocks[256 / 32 * 34 + 256];
    float y[256];
    for (size_t t = 0; t < N_QTYPES; t++) {
        quantize_row(qtypes[t].type, x, blocks, 256);
        dequantize_row(qtypes[t].type, blocks, y, 256);
        if (qtypes[t].elems != 32) continue;
        for (int b = 3; b < 8; b++)   /* blocks 0 and 2 hold the nan and the inf */
            for (int e = 0; e < 32; e++)
                cr_expect(fabsf(y[32 * b + e] - x[32 * b + e]) <= qtypes[t].max_err * 0.7f,
                          "%s elem %d", qtypes[t].name, 32 * b + e);
    }
}
