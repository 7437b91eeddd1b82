/* ggml tensor types: names, block sizes, fp16/bf16 conversion, and the
 * dequantizers (hot path) and simple quantizers for the types ctxbench reads.
 *
 * Block layouts, as in ggml (all little-endian, fp16 = IEEE half):
 *   Q8_0 (34 B / 32):  fp16 d | int8 qs[32]                     x = d*q
 *   Q4_0 (18 B / 32):  fp16 d | u8 qs[16]                       x[j] = d*((qs[j]&15)-8), x[j+16] = d*((qs[j]>>4)-8)
 *   Q4_K (144 B / 256): fp16 d | fp16 dmin | u8 scales[12] | u8 qs[128]
 *       8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m:
 *       x = d*sc*q - dmin*m, q 4 bits; sub-blocks 2p and 2p+1 share qs[32p..32p+31]
 *       (low nibble, high nibble).
 *   Q5_K (176 B / 256): fp16 d | fp16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
 *       as Q4_K with a fifth bit: bit j of qh[l] is the high bit of element l of sub-block j.
 *   Q6_K (210 B / 256): u8 ql[128] | u8 qh[64] | int8 scales[16] | fp16 d
 *       16 sub-blocks of 16, x = d*scales[e/16]*(q-32), q 6 bits: in each half
 *       n (128 elements) element l+32k takes its low nibble from ql[64n + l + 32(k&1)]
 *       (low nibble for k<2, high for k>=2) and its top two bits from qh[32n+l] bits 2k..2k+1.
 * The 12 scale bytes of Q4_K/Q5_K hold eight 6-bit scales and eight 6-bit mins:
 *   j<4:  sc = s[j]&63, m = s[j+4]&63
 *   j>=4: sc = (s[j+4]&15) | (s[j-4]>>6)<<4, m = (s[j+4]>>4) | (s[j]>>6)<<4 */
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#endif

#define Q8_0_BYTES 34
#define Q4_0_BYTES 18
#define Q4_K_BYTES 144
#define Q5_K_BYTES 176
#define Q6_K_BYTES 210

/* ---------- type table ---------- */

const char *ggml_type_name(uint32_t type, char *buf, size_t buflen) {
    /* ggml's numbering; 4, 5, 31-33 and 36-38 were removed upstream. */
    static const char *const names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [6] = "Q5_0", [7] = "Q5_1",
        [8] = "Q8_0", [9] = "Q8_1", [10] = "Q2_K", [11] = "Q3_K", [12] = "Q4_K", [13] = "Q5_K",
        [14] = "Q6_K", [15] = "Q8_K", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
        [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S", [23] = "IQ4_XS",
        [24] = "I8", [25] = "I16", [26] = "I32", [27] = "I64", [28] = "F64", [29] = "IQ1_M",
        [30] = "BF16", [34] = "TQ1_0", [35] = "TQ2_0", [39] = "MXFP4",
    };
    if (type < sizeof names / sizeof names[0] && names[type]) return names[type];
    if (buf && buflen) {
        snprintf(buf, buflen, "type %u", type);
        return buf;
    }
    return "unknown type";
}

bool ggml_type_supported(uint32_t type) { return ggml_block_elems(type) != 0; }

size_t ggml_block_elems(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: return 1;
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: return 32;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return QK_K;
    default: return 0;
    }
}

size_t ggml_block_bytes(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: return 4;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return 2;
    case GGML_TYPE_Q8_0: return Q8_0_BYTES;
    case GGML_TYPE_Q4_0: return Q4_0_BYTES;
    case GGML_TYPE_Q4_K: return Q4_K_BYTES;
    case GGML_TYPE_Q5_K: return Q5_K_BYTES;
    case GGML_TYPE_Q6_K: return Q6_K_BYTES;
    default: return 0;
    }
}

size_t ggml_row_bytes(uint32_t type, uint64_t n) {
    size_t be = ggml_block_elems(type), bb = ggml_block_bytes(type);
    if (be == 0 || n % be != 0) return 0;
    uint64_t blocks = n / be;
    if (blocks > SIZE_MAX / bb) return 0;
    return (size_t)blocks * bb;
}

/* ---------- fp16 / bf16 ---------- */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Branch-free so loops over it vectorize: the 15 exponent+mantissa bits are
 * moved into float position and the exponent rebased by multiplying with
 * 2^112, which is exact for normals and turns half subnormals into float
 * normals; inf/nan keep an all-ones exponent. */
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t em = (uint32_t)(h & 0x7fff) << 13;
    uint32_t scaled = f32_bits(bits_f32(em) * 0x1p112f);
    uint32_t special = em | 0x7f800000u;
    uint32_t out = (h & 0x7c00) == 0x7c00 ? special : scaled;
    return bits_f32(out | sign);
}

static inline uint16_t read_half(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }
static inline void write_half(uint8_t *p, uint16_t h) { memcpy(p, &h, 2); }

float fp16_to_f32(uint16_t h) { return half_to_float(h); }

uint16_t f32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u)                       /* inf stays inf; nan stays a quiet nan */
        return sign | (x > 0x7f800000u ? (uint16_t)(0x7e00 | ((x >> 13) & 0x1ff)) : 0x7c00);
    if (x >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (x < 0x38800000u) {
        /* Below the smallest normal half (2^-14): adding 0.5 puts the value's
         * units of 2^-24 into the low mantissa bits of a float, rounded to
         * nearest even by the FPU. */
        float r = bits_f32(x) + 0.5f;
        return sign | (uint16_t)(f32_bits(r) - 0x3f000000u);
    }
    /* Normal: rebias the exponent, then round the 13 dropped mantissa bits to
     * nearest even; a carry out of the mantissa correctly bumps the exponent. */
    uint32_t odd = (x >> 13) & 1;
    x += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
    return sign | (uint16_t)(x >> 13);
}

float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---------- dequantization ---------- */

static void dequant_f16(const uint8_t *restrict src, float *restrict dst, size_t n) {
    size_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
#endif
    for (; i < n; i++) dst[i] = half_to_float(read_half(src + 2 * i));
}

static void dequant_bf16(const uint8_t *restrict src, float *restrict dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)          /* fixed-length inner loop: the compiler vectorizes it */
        for (int k = 0; k < 16; k++) dst[i + k] = bf16_to_f32(read_half(src + 2 * (i + k)));
    for (; i < n; i++) dst[i] = bf16_to_f32(read_half(src + 2 * i));
}

static void dequant_q8_0(const uint8_t *restrict src, float *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += Q8_0_BYTES, dst += 32) {
        const float d = half_to_float(read_half(src));
        const int8_t *q = (const int8_t *)(src + 2);
        for (int j = 0; j < 32; j++) dst[j] = d * (float)q[j];
    }
}

static void dequant_q4_0(const uint8_t *restrict src, float *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += Q4_0_BYTES, dst += 32) {
        const float d = half_to_float(read_half(src));
        const uint8_t *q = src + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)((q[j] & 0xF) - 8);
            dst[j + 16] = d * (float)((q[j] >> 4) - 8);
        }
    }
}

/* Unpacks the eight 6-bit scales and mins of a Q4_K/Q5_K block. */
static inline void unpack_scales_mins(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

/* The float operations below (d*sc, then *q, then -m) have exact products,
 * so each output is the correctly rounded value of d*sc*q - dmin*m. */
static void dequant_q4_k(const uint8_t *restrict src, float *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += Q4_K_BYTES, dst += QK_K) {
        const float d = half_to_float(read_half(src));
        const float dmin = half_to_float(read_half(src + 2));
        uint8_t sc[8], m[8];
        unpack_scales_mins(src + 4, sc, m);
        const uint8_t *q = src + 16;
        for (int p = 0; p < 4; p++) {
            const float d1 = d * sc[2 * p], m1 = dmin * m[2 * p];
            const float d2 = d * sc[2 * p + 1], m2 = dmin * m[2 * p + 1];
            float *y = dst + 64 * p;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)(q[32 * p + l] & 0xF) - m1;
                y[l + 32] = d2 * (float)(q[32 * p + l] >> 4) - m2;
            }
        }
    }
}

static void dequant_q5_k(const uint8_t *restrict src, float *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += Q5_K_BYTES, dst += QK_K) {
        const float d = half_to_float(read_half(src));
        const float dmin = half_to_float(read_half(src + 2));
        uint8_t sc[8], m[8];
        unpack_scales_mins(src + 4, sc, m);
        const uint8_t *qh = src + 16;
        const uint8_t *q = src + 48;
        for (int p = 0; p < 4; p++) {
            const float d1 = d * sc[2 * p], m1 = dmin * m[2 * p];
            const float d2 = d * sc[2 * p + 1], m2 = dmin * m[2 * p + 1];
            float *y = dst + 64 * p;
            for (int l = 0; l < 32; l++) {
                int lo = (q[32 * p + l] & 0xF) | (((qh[l] >> (2 * p)) & 1) << 4);
                int hi = (q[32 * p + l] >> 4) | (((qh[l] >> (2 * p + 1)) & 1) << 4);
                y[l] = d1 * (float)lo - m1;
                y[l + 32] = d2 * (float)hi - m2;
            }
        }
    }
}

static void dequant_q6_k(const uint8_t *restrict src, float *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += Q6_K_BYTES, dst += QK_K) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *sc = (const int8_t *)(src + 192);
        const float d = half_to_float(read_half(src + 208));
        for (int n = 0; n < 2; n++) {
            const uint8_t *l4 = ql + 64 * n, *h2 = qh + 32 * n;
            /* the 32 values of each quarter k share a scale per 16: sub-blocks 8n+2k and 8n+2k+1 */
            for (int half = 0; half < 2; half++) {
                const float s1 = d * sc[8 * n + half], s2 = d * sc[8 * n + 2 + half];
                const float s3 = d * sc[8 * n + 4 + half], s4 = d * sc[8 * n + 6 + half];
                float *y = dst + 128 * n + 16 * half;
                for (int i = 0; i < 16; i++) {
                    int l = 16 * half + i;
                    int q1 = ((l4[l] & 0xF) | (((h2[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((l4[l + 32] & 0xF) | (((h2[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
                    y[i] = s1 * (float)q1;
                    y[i + 32] = s2 * (float)q2;
                    y[i + 64] = s3 * (float)q3;
                    y[i + 96] = s4 * (float)q4;
                }
            }
        }
    }
}

void dequantize_row(uint32_t type, const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16: dequant_f16(s, dst, n); break;
    case GGML_TYPE_BF16: dequant_bf16(s, dst, n); break;
    case GGML_TYPE_Q8_0: dequant_q8_0(s, dst, n / 32); break;
    case GGML_TYPE_Q4_0: dequant_q4_0(s, dst, n / 32); break;
    case GGML_TYPE_Q4_K: dequant_q4_k(s, dst, n / QK_K); break;
    case GGML_TYPE_Q5_K: dequant_q5_k(s, dst, n / QK_K); break;
    case GGML_TYPE_Q6_K: dequant_q6_k(s, dst, n / QK_K); break;
    default: memset(dst, 0, n * sizeof(float)); break;  /* callers check ggml_type_supported first */
    }
}

/* ---------- quantization ---------- */

/* round(v) to nearest even, clamped to [lo, hi]; NaN maps to lo (fmaxf drops
 * it), so no NaN or out-of-range value reaches the int conversion. Adding and
 * subtracting 1.5*2^23 rounds a float of magnitude < 2^22 to an integer
 * without a libm call, which keeps the loops vectorizable. */
static inline int round_clamp(float v, int lo, int hi) {
    v = fminf(fmaxf(v, (float)lo), (float)hi);
    return (int)((v + 12582912.0f) - 12582912.0f);
}

static void quant_q8_0(const float *restrict x, uint8_t *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 32, dst += Q8_0_BYTES) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        uint16_t dh = f32_to_fp16(amax / 127.0f);
        float d = half_to_float(dh);
        float id = d > 0 ? 1.0f / d : 0.0f;
        write_half(dst, dh);
        for (int j = 0; j < 32; j++) dst[2 + j] = (uint8_t)(int8_t)round_clamp(x[j] * id, -127, 127);
    }
}

/* The value of largest magnitude is mapped to code 0 (-8*d), so one side of the
 * range is exact and the other reaches 7/8 of it, as in ggml's reference. */
static void quant_q4_0(const float *restrict x, uint8_t *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 32, dst += Q4_0_BYTES) {
        float amax = 0, vmax = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
        uint16_t dh = f32_to_fp16(vmax / -8.0f);
        float d = half_to_float(dh);
        float id = d != 0 ? 1.0f / d : 0.0f;
        write_half(dst, dh);
        for (int j = 0; j < 16; j++) {
            int lo = round_clamp(x[j] * id + 8.0f, 0, 15);
            int hi = round_clamp(x[j + 16] * id + 8.0f, 0, 15);
            dst[2 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* Shared by Q4_K and Q5_K: per 32-element sub-block an affine map x ~ d*sc*q - dmin*m
 * with q in [0, nmax]; sub-block scales and mins are 6-bit multiples of the
 * super-block d and dmin. Fills the packed scales, d, dmin and the codes q[256]. */
static void quant_k_affine(const float *x, int nmax, uint8_t *hdr /* d, dmin, scales[12] */, uint8_t q[QK_K]) {
    float scale[8], minv[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float lo = 0, hi = -INFINITY;       /* the min is kept <= 0: the format subtracts dmin*m >= 0 */
        for (int l = 0; l < 32; l++) { lo = fminf(lo, x[32 * j + l]); hi = fmaxf(hi, x[32 * j + l]); }
        scale[j] = (hi - lo) / (float)nmax;
        minv[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_min = fmaxf(max_min, minv[j]);
    }
    uint16_t dh = f32_to_fp16(max_scale / 63.0f), mh = f32_to_fp16(max_min / 63.0f);
    float d = half_to_float(dh), dmin = half_to_float(mh);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0 ? round_clamp(scale[j] / d, 0, 63) : 0);
        m[j] = (uint8_t)(dmin > 0 ? round_clamp(minv[j] / dmin, 0, 63) : 0);
    }
    write_half(hdr, dh);
    write_half(hdr + 2, mh);
    uint8_t *s = hdr + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
    for (int j = 0; j < 8; j++) {
        float ds = d * sc[j], off = dmin * m[j];
        float ids = ds > 0 ? 1.0f / ds : 0.0f;
        for (int l = 0; l < 32; l++) q[32 * j + l] = (uint8_t)round_clamp((x[32 * j + l] + off) * ids, 0, nmax);
    }
}

static void quant_q4_k(const float *restrict x, uint8_t *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK_K, dst += Q4_K_BYTES) {
        uint8_t q[QK_K];
        quant_k_affine(x, 15, dst, q);
        uint8_t *qs = dst + 16;
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                qs[32 * p + l] = (uint8_t)(q[64 * p + l] | (q[64 * p + 32 + l] << 4));
    }
}

static void quant_q5_k(const float *restrict x, uint8_t *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK_K, dst += Q5_K_BYTES) {
        uint8_t q[QK_K];
        quant_k_affine(x, 31, dst, q);
        uint8_t *qh = dst + 16, *qs = dst + 48;
        memset(qh, 0, 32);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) {
                int lo = q[64 * p + l], hi = q[64 * p + 32 + l];
                qs[32 * p + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                qh[l] |= (uint8_t)(((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
            }
    }
}

/* Symmetric: per 16-element sub-block a signed 8-bit multiple of d, codes in [-32, 31]. */
static void quant_q6_k(const float *restrict x, uint8_t *restrict dst, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK_K, dst += Q6_K_BYTES) {
        float scale[16], max_scale = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0;
            for (int l = 0; l < 16; l++) amax = fmaxf(amax, fabsf(x[16 * j + l]));
            scale[j] = amax / 31.0f;
            max_scale = fmaxf(max_scale, scale[j]);
        }
        uint16_t dh = f32_to_fp16(max_scale / 127.0f);
        float d = half_to_float(dh);
        uint8_t *ql = dst, *qh = dst + 128;
        int8_t *sc = (int8_t *)(dst + 192);
        write_half(dst + 208, dh);
        uint8_t q[QK_K];
        for (int j = 0; j < 16; j++) {
            sc[j] = (int8_t)(d > 0 ? round_clamp(scale[j] / d, 0, 127) : 0);
            float ds = d * sc[j];
            float ids = ds > 0 ? 1.0f / ds : 0.0f;
            for (int l = 0; l < 16; l++) q[16 * j + l] = (uint8_t)(round_clamp(x[16 * j + l] * ids, -32, 31) + 32);
        }
        memset(qh, 0, 64);
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *e = q + 128 * n + l;   /* e[0], e[32], e[64], e[96] */
                ql[64 * n + l] = (uint8_t)((e[0] & 0xF) | ((e[64] & 0xF) << 4));
                ql[64 * n + 32 + l] = (uint8_t)((e[32] & 0xF) | ((e[96] & 0xF) << 4));
                qh[32 * n + l] = (uint8_t)((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
            }
    }
}

void quantize_row(uint32_t type, const float *src, void *dst, size_t n) {
    uint8_t *d = dst;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16: for (size_t i = 0; i < n; i++) write_half(d + 2 * i, f32_to_fp16(src[i])); break;
    case GGML_TYPE_BF16: for (size_t i = 0; i < n; i++) write_half(d + 2 * i, f32_to_bf16(src[i])); break;
    case GGML_TYPE_Q8_0: quant_q8_0(src, d, n / 32); break;
    case GGML_TYPE_Q4_0: quant_q4_0(src, d, n / 32); break;
    case GGML_TYPE_Q4_K: quant_q4_k(src, d, n / QK_K); break;
    case GGML_TYPE_Q5_K: quant_q5_k(src, d, n / QK_K); break;
    case GGML_TYPE_Q6_K: quant_q6_k(src, d, n / QK_K); break;
    default: break;
    }
}
