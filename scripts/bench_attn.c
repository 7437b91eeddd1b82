/* Attention micro-benchmark: GFLOP/s of attn_forward against the sgemm peak
 * measured in the same process with the same threads.
 *
 *   cc -std=c11 -O2 -march=native -D_GNU_SOURCE -Ibackends/cpu -Iharness/base -Iharness/model \
 *      -I/usr/include/x86_64-linux-gnu/openblas-pthread scripts/bench_attn.c \
 *      backends/cpu/attention.c harness/base/threadpool.c -lopenblas -lm -pthread -o bench_attn
 *   ./bench_attn [threads] [sweep]
 *
 * Shape (default): head_dim 64, 32 query heads over 4 kv heads, n = 2048 causal.
 * Causal flops counted as 4 * n * n / 2 * head_dim * heads (the two products
 * over the visible half). "sweep" also times a grid of tile sizes. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "threadpool.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
}

/* Peak: each pool thread multiplies its own size x size matrices. */
struct gemm_job { int size; float **a, **b, **c; int reps; };
static void gemm_task(void *ctx, int task, int thread) {
    (void)task;
    struct gemm_job *j = ctx;
    for (int r = 0; r < j->reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->size, j->size, j->size, 1.0f, j->a[thread], j->size,
                    j->b[thread], j->size, 0.0f, j->c[thread], j->size);
}

static double sgemm_peak(struct threadpool *tp, int size) {
    int nt = threadpool_size(tp);
    float *a[64], *b[64], *c[64];
    for (int t = 0; t < nt; t++) {
        size_t n = (size_t)size * size;
        a[t] = malloc(n * sizeof(float)); b[t] = malloc(n * sizeof(float)); c[t] = malloc(n * sizeof(float));
        fill(a[t], n, 1u + (unsigned)t); fill(b[t], n, 7u + (unsigned)t);
    }
    /* Best of several timed runs: the machine may be shared. */
    struct gemm_job j = { size, a, b, c, (int)(2e9 / (2.0 * size * size * size)) + 1 };
    double best = 1e30;
    for (int r = 0; r < 8; r++) {
        double t0 = now();
        threadpool_run(tp, nt, gemm_task, &j);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    double dt = best;
    for (int t = 0; t < nt; t++) { free(a[t]); free(b[t]); free(c[t]); }
    return 2.0 * size * size * size * j.reps * nt / dt * 1e-9;
}

struct shape { int n_q, n_kv, n_heads, n_kv_heads, d, window, se_group, se_window; };

/* Seconds per attn_forward call (best of a few). */
static double time_attention(struct threadpool *tp, struct shape s, int tile_q, int tile_k) {
    size_t qn = (size_t)s.n_q * s.n_heads * s.d, kn = (size_t)s.n_kv * s.n_kv_heads * s.d;
    float *q = malloc(qn * sizeof(float)), *k = malloc(kn * sizeof(float)), *v = malloc(kn * sizeof(float));
    float *out = malloc(qn * sizeof(float));
    int32_t *q_pos = malloc((size_t)s.n_q * sizeof(int32_t)), *k_pos = malloc((size_t)s.n_kv * sizeof(int32_t));
    fill(q, qn, 3); fill(k, kn, 5); fill(v, kn, 9);
    for (int j = 0; j < s.n_kv; j++) k_pos[j] = j;
    for (int i = 0; i < s.n_q; i++) q_pos[i] = s.n_kv - s.n_q + i;
    struct attn_args a = {
        .n_q = s.n_q, .n_kv = s.n_kv, .n_heads = s.n_heads, .n_kv_heads = s.n_kv_heads, .head_dim = s.d,
        .q = q, .q_stride = (size_t)s.n_heads * s.d, .k = k, .v = v, .kv_stride = (size_t)s.n_kv_heads * s.d,
        .q_group = s.se_group ? q : NULL, .k_group = s.se_group ? k : NULL, .group_window = s.se_window,
        .q_pos = q_pos, .k_pos = k_pos, .scale = 0.125f, .window = s.window,
        .tile_q = tile_q, .tile_k = tile_k, .out = out, .out_stride = (size_t)s.n_heads * s.d,
    };
    double best = 1e30;   /* best of several: the machine may be shared */
    char err[256];
    int reps = s.n_q == 1 ? 50 : 6;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (attn_forward(&a, tp, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); exit(1); }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    free(q); free(k); free(v); free(out); free(q_pos); free(k_pos);
    return best;
}

/* Flops of the two products over visible pairs, for contiguous positions. */
static double attention_flops(struct shape s) {
    double pairs = 0;
    for (int i = 0; i < s.n_q; i++) {
        double visible = s.n_kv - s.n_q + i + 1;
        if (s.window > 0 && visible > s.window) visible = s.window;
        pairs += visible;
    }
    return 4.0 * pairs * s.d * s.n_heads;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int sweep = argc > 2 && strcmp(argv[2], "sweep") == 0;
    openblas_set_num_threads(1);
    char err[256];
    struct threadpool *tp = threadpool_create(threads, err, sizeof err);
    if (!tp) {
        fprintf(stderr, "bench_attn: %s\n", err);
        return 1;
    }

    double peak = sgemm_peak(tp, 1024);
    double peak_tile = sgemm_peak(tp, 128);
    printf("threads %d  sgemm peak: %.1f GFLOP/s (1024^3), %.1f GFLOP/s (128^3)\n", threads, peak, peak_tile);

    struct shape causal = { 2048, 2048, 32, 4, 64, 0, 0, 0 };
    double f = attention_flops(causal);
    double t = time_attention(tp, causal, 0, 0);
    printf("prefill n=2048 causal, default tiles: %.2f ms  %.1f GFLOP/s  (%.0f%% of sgemm peak)\n", t * 1e3,
           f / t * 1e-9, 100 * f / t * 1e-9 / peak);

    if (sweep) {
        int tq[] = { 4, 8, 16, 32, 64 }, tk[] = { 32, 64, 128, 256, 512 };
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++) {
                double ts = time_attention(tp, causal, tq[a], tk[b]);
                printf("  tile_q %3d (rows %4d) tile_k %3d: %.1f GFLOP/s\n", tq[a], tq[a] * 8, tk[b], f / ts * 1e-9);
            }
    }

    struct shape others[] = {
        { 512, 8192, 32, 4, 64, 0, 0, 0 },       /* a 512-token chunk over a long cache */
        { 512, 16384, 32, 4, 64, 0, 0, 0 },      /* ... and a longer one (2k-16k: issue 14's range) */
        { 2048, 2048, 32, 4, 64, 0, 4, 512 },    /* SelfExtend G=4 W=512 */
        { 8192, 8192, 32, 4, 64, 1024, 0, 0 },   /* sliding window 1024 */
        { 1, 16384, 32, 4, 64, 0, 0, 0 },        /* decode against 16k */
        { 2048, 2048, 32, 32, 64, 0, 0, 0 },     /* no GQA */
        { 2048, 2048, 16, 2, 128, 0, 0, 0 },     /* head_dim 128 */
    };
    const char *names[] = { "chunk 512 over 8192", "chunk 512 over 16384", "SelfExtend G4 W512 n=2048", "SWA 1024 n=8192",
                            "decode 1 x 16384", "MHA 32/32 n=2048", "d=128 16/2 n=2048" };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        double fi = attention_flops(others[i]);
        double ti = time_attention(tp, others[i], 0, 0);
        printf("%-26s %8.3f ms  %6.1f GFLOP/s", names[i], ti * 1e3, fi / ti * 1e-9);
        if (others[i].n_q == 1)   /* decode is a stream over K and V */
            printf("  %.1f GB/s of K+V", 2.0 * others[i].n_kv * others[i].n_kv_heads * others[i].d * 4 / ti * 1e-9);
        printf("\n");
    }
    threadpool_free(tp);
    return 0;
}
