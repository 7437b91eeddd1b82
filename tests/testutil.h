/* Helpers shared by the Criterion tests: where ../shared is, and tolerance checks. */
#ifndef CTX_TESTUTIL_H
#define CTX_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* Path of a file under ../shared (CTXBENCH_SHARED overrides). Static buffer per call site. */
static inline const char *shared_path(char *buf, size_t cap, const char *rel) {
    const char *root = getenv("CTXBENCH_SHARED");
    snprintf(buf, cap, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}

/* Largest |a-b| / max(|b|, floor) over n values; a NaN anywhere gives +inf, so an
 * unwritten or poisoned output can never pass a tolerance check. */
static inline double max_rel_err(const float *a, const double *b, size_t n, double floor_) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double s = fabs(b[i]) > floor_ ? fabs(b[i]) : floor_;
        if (isnan(d)) return INFINITY;
        if (d / s > worst) worst = d / s;
    }
    return worst;
}

/* A deterministic xorshift generator so tests do not depend on libc's rand(). */
static inline unsigned long long test_rng_next(unsigned long long *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s;
}
static inline float test_rng_uniform(unsigned long long *s) {   /* [-1, 1) */
    return (float)((test_rng_next(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

#endif
