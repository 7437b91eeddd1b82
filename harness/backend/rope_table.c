#include "rope_table.h"

#include <math.h>
#include <stddef.h>

void rope_cos_sin(float *cs, const int32_t *pos, int n, const float *inv_freq, int half, float mscale) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            /* Positions reach 10^5 and beyond: a float angle would lose the low-frequency
             * pairs' precision, so compute it in double. */
            double angle = (double)pos[t] * (double)inv_freq[i];
            cs[((size_t)t * half + i) * 2] = (float)(cos(angle) * mscale);
            cs[((size_t)t * half + i) * 2 + 1] = (float)(sin(angle) * mscale);
        }
}
