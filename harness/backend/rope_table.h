/* The rotation every backend applies, as a table: the engine computes it once per chunk
 * and position map (on the host, in double), and the backends' rope kernels only
 * multiply. Pair i of token t turns by angle pos[t] * inv_freq[i]; cos and sin are both
 * multiplied by mscale (HF attention_scaling, so logits get mscale^2). */
#ifndef CTX_ROPE_TABLE_H
#define CTX_ROPE_TABLE_H

#include <stdint.h>

/* cs[(t * half + i) * 2] = cos, [... + 1] = sin, for t < n, i < half (= n_rot / 2). */
void rope_cos_sin(float *cs, const int32_t *pos, int n, const float *inv_freq, int half, float mscale);

#endif
