/* Tensor element types as numbered by ggml, their block layouts, and
 * conversion to float32. Quantizers exist for the types ctxbench writes
 * (synthetic models, tests): they follow the reference layouts, not
 * llama.cpp's search-based quantizers, which is fine for random weights. */
#ifndef CTX_QUANT_H
#define CTX_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum ggml_type {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15,
    GGML_TYPE_BF16 = 30,
};

#define QK_K 256
#define QK8_0 32
#define QK4_0 32

/* Name ("F32", "Q4_K", ...) of any ggml type number, or "type N" for unknown ones
 * (buffer is used only in that case). */
const char *ggml_type_name(uint32_t type, char *buf, size_t buflen);
/* true for the types ctxbench can read: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K */
bool ggml_type_supported(uint32_t type);
/* Elements per block and bytes per block (1 and sizeof element for float types).
 * Return 0 for unsupported types. */
size_t ggml_block_elems(uint32_t type);
size_t ggml_block_bytes(uint32_t type);
/* Bytes of a row of n elements (n must be a multiple of the block size); 0 if not representable. */
size_t ggml_row_bytes(uint32_t type, uint64_t n);

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);      /* round to nearest even */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);      /* round to nearest even */

/* Decode n elements (multiple of the block size) of `type` from src into dst. */
void dequantize_row(uint32_t type, const void *src, float *dst, size_t n);
/* Encode n floats into `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
 * dst must hold ggml_row_bytes(type, n). */
void quantize_row(uint32_t type, const float *src, void *dst, size_t n);

#endif
