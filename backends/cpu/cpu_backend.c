/* CPU backend: the kernels of backend.h on host memory. Matrix products go through
 * OpenBLAS sgemm (single-threaded inside our own pthread pool, which splits each
 * product by output rows); attention is the tiled online-softmax kernel of
 * attention.c; the rest are the reference kernels of kernels.c. Weights stay in their
 * file's type (the mapped file: no F32 copy of the model); a product dequantizes each
 * thread's block of weight rows into its scratch just before that block's sgemm. The
 * blocks are the same whether a matrix is F32 in the file, dequantized at load or per
 * block, so every path hands sgemm the same numbers in the same shapes and gives the
 * same bits.
 * Parameters: threads=N (default: all cores), tile_q=N, tile_k=N (attention tiles,
 * default: the kernel's choice), f32_budget=BYTES (dequantize the whole model to F32 at
 * load when it fits in BYTES: more memory, no dequantization per product; default 0,
 * never). */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "gguf.h"
#include "host.h"
#include "kernels.h"
#include "model.h"
#include "quant.h"
#include "threadpool.h"

/* Tokens pushed through all layers at once: large enough for sgemm to reach its
 * peak, small enough that activations stay a few MB. */
#define CHUNK_TOKENS 512

/* Rows scored against one block of the output matrix (see cpu_score), and the logits
 * of one such block: SCORE_ROWS x score_vocab floats within SCORE_LOGITS_BYTES. */
#define SCORE_ROWS 512
#define SCORE_LOGITS_BYTES ((size_t)16 << 20)

/* OpenBLAS declares these in its own cblas.h; repeated so other BLAS headers work. */
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);

/* A weight matrix W [rows = out features][cols = in features]. */
struct linear {
    const struct gguf_tensor *t;
    int rows, cols;
    const float *f32;     /* F32 weights (mapped file or dequantized copy), or NULL */
    float *owned;         /* the dequantized copy we must free */
    size_t row_bytes;     /* bytes of one raw row */
};

struct cpu_layer {
    const float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    struct linear wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct backend {
    const struct model *m;
    int n_threads, tile_q, tile_k;
    size_t f32_budget;        /* 0 = keep the file's types */
    struct threadpool *tp;
    struct cpu_layer *layers;
    struct linear output;
    const float *output_norm;
    size_t f32_bytes;     /* the F32 copies of weights (f32_budget) */
    size_t held_bytes;    /* the scratch and scoring buffers below, as allocated */
    float *scratch_w;     /* per-thread dequantization buffers: n_threads x the largest block x its cols */
    size_t scratch_w_per_thread;
    /* scoring (cpu_score): up to SCORE_ROWS gathered rows x one block of score_vocab
     * vocabulary rows at a time */
    int score_vocab;      /* vocabulary rows per block */
    float *logits;        /* [SCORE_ROWS][score_vocab] logits of one block */
    float *score_x;       /* [SCORE_ROWS][dim] gathered rows, when they are not contiguous */
    int *score_row;       /* [SCORE_ROWS] position of each gathered row */
    int32_t *score_target;/* [SCORE_ROWS] its target, < 0: none (the last row's logits only) */
    double *score_max, *score_sum;   /* [SCORE_ROWS] running log-sum-exp of each row */
    float *score_tlogit;  /* [SCORE_ROWS] logit of each row's target */
    char error[256];      /* the first kernel error since the last sync, "" if none */
};

/* Device memory on the CPU: host memory. */
struct dbuf {
    float *p;
    size_t n;             /* elements */
};



/* ---- weights ---------------------------------------------------------- */


/* Rows of W per task of a product of `rows` rows: a few blocks per thread, whole
 * multiples of 16. */
static int matmul_block(int rows, int n_threads) {
    int block = (rows + 4 * n_threads - 1) / (4 * n_threads);
    block = (block + 15) / 16 * 16;
    return block < 16 ? 16 : block;
}

/* Rows dequantized per task at load. */
#define DEQUANT_ROWS 64

/* Dequantizes a whole matrix into L->owned, blocks of rows spread over the pool. */
struct dequant_job {
    struct linear *L;
    int block;
};

static void dequant_task(void *ctx, int task, int thread) {
    (void)thread;
    struct dequant_job *j = ctx;
    struct linear *L = j->L;
    int r1 = (task + 1) * j->block < L->rows ? (task + 1) * j->block : L->rows;
    for (int r = task * j->block; r < r1; r++)
        dequantize_row(L->t->type, (const uint8_t *)L->t->data + (size_t)r * L->row_bytes,
                       L->owned + (size_t)r * L->cols, (size_t)L->cols);
}

static int linear_init(struct backend *e, struct linear *L, const struct gguf_tensor *t, bool keep_f32,
                       char *err, size_t errlen) {
    L->t = t;
    L->cols = (int)t->ne[0];
    L->rows = (int)t->ne[1];
    L->row_bytes = ggml_row_bytes(t->type, t->ne[0]);
    if (t->type == GGML_TYPE_F32) {
        L->f32 = t->data;
        return 0;
    }
    if (!keep_f32) return 0;
    size_t n = (size_t)L->rows * L->cols;
    L->owned = malloc(n * sizeof(float));
    if (!L->owned) {
        snprintf(err, errlen, "out of memory dequantizing %.*s (%zu MB)", (int)t->name.len, t->name.ptr,
                 n * 4 >> 20);
        return -1;
    }
    struct dequant_job j = {L, DEQUANT_ROWS};
    threadpool_run(e->tp, (L->rows + DEQUANT_ROWS - 1) / DEQUANT_ROWS, dequant_task, &j);
    L->f32 = L->owned;
    e->f32_bytes += n * sizeof(float);
    return 0;
}

static uint64_t quantized_elems(const struct gguf_tensor *t) {
    return t->type == GGML_TYPE_F32 ? 0 : t->ne[0] * t->ne[1];
}

/* Frees an engine, also one that cpu_create left half built. */
static void cpu_destroy(struct backend *e) {
    if (!e) return;
    if (e->layers)
        for (int l = 0; l < e->m->cfg.n_layers; l++) {
            struct cpu_layer *L = &e->layers[l];
            free(L->wq.owned); free(L->wk.owned); free(L->wv.owned); free(L->wo.owned);
            free(L->w_gate.owned); free(L->w_up.owned); free(L->w_down.owned);
        }
    free(e->output.owned);
    free(e->layers);
    free(e->scratch_w);
    free(e->logits);
    free(e->score_x);
    free(e->score_row);
    free(e->score_target);
    free(e->score_max);
    free(e->score_sum);
    free(e->score_tlogit);
    if (e->tp) threadpool_free(e->tp);
    free(e);
}

static const char *const cpu_params[] = {"threads", "tile_q", "tile_k", "f32_budget", NULL};

/* Vocabulary rows per scoring block: whole multiples of 16, at most the vocabulary. */
static int score_vocab_for(const struct model_config *c) {
    size_t v = SCORE_LOGITS_BYTES / (SCORE_ROWS * sizeof(float)) / 16 * 16;
    return v < (size_t)c->n_vocab ? (int)v : c->n_vocab;
}

/* malloc, counted in held_bytes. */
static void *held_alloc(struct backend *e, size_t bytes) {
    e->held_bytes += bytes;
    return malloc(bytes);
}

static struct backend *cpu_create(const struct model *m, const char *params, char *err, size_t errlen) {
    const struct model_config *c = &m->cfg;
    long threads, tile_q, tile_k, budget;
    if (backend_params_check("cpu", params, cpu_params, err, errlen) ||
        backend_param_long("cpu", params, "threads", 1, 1024, 0, &threads, err, errlen) ||
        backend_param_long("cpu", params, "tile_q", 1, 1 << 16, 0, &tile_q, err, errlen) ||
        backend_param_long("cpu", params, "tile_k", 1, 1 << 16, 0, &tile_k, err, errlen) ||
        backend_param_long("cpu", params, "f32_budget", 1, LONG_MAX, 0, &budget, err, errlen))
        return NULL;
    struct backend *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->m = m;
    e->n_threads = (int)threads;
    e->tile_q = (int)tile_q;
    e->tile_k = (int)tile_k;
    e->f32_budget = (size_t)budget;
    if (e->n_threads <= 0) e->n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (e->n_threads <= 0) e->n_threads = 1;
    openblas_set_num_threads(1);
    e->tp = threadpool_create(e->n_threads, err, errlen);
    if (!e->tp) goto fail;   /* err says why: a thread limit is not "out of memory" */
    e->layers = calloc((size_t)c->n_layers, sizeof *e->layers);
    if (!e->layers) goto oom;

    /* Weights stay in the file's types unless f32_budget asks for an F32 copy that fits:
     * dequantizing a block per product costs a few percent of a prefill (make bench). */
    uint64_t q_elems = quantized_elems(m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct gguf_tensor *ts[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) q_elems += quantized_elems(ts[i]);
    }
    bool keep_f32 = e->f32_budget > 0 && q_elems * sizeof(float) <= e->f32_budget;

    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        struct cpu_layer *L = &e->layers[l];
        L->attn_norm = w->attn_norm->data;
        L->ffn_norm = w->ffn_norm->data;
        L->bq = w->bq ? w->bq->data : NULL;
        L->bk = w->bk ? w->bk->data : NULL;
        L->bv = w->bv ? w->bv->data : NULL;
        if (linear_init(e, &L->wq, w->wq, keep_f32, err, errlen) || linear_init(e, &L->wk, w->wk, keep_f32, err, errlen) ||
            linear_init(e, &L->wv, w->wv, keep_f32, err, errlen) || linear_init(e, &L->wo, w->wo, keep_f32, err, errlen) ||
            linear_init(e, &L->w_gate, w->w_gate, keep_f32, err, errlen) ||
            linear_init(e, &L->w_up, w->w_up, keep_f32, err, errlen) ||
            linear_init(e, &L->w_down, w->w_down, keep_f32, err, errlen))
            goto fail;
    }
    if (linear_init(e, &e->output, m->output, keep_f32, err, errlen)) goto fail;
    e->output_norm = m->output_norm->data;

    /* scratch for the largest block of any matrix not held as F32 */
    for (int l = -1; l < c->n_layers; l++) {
        const struct cpu_layer *L = l >= 0 ? &e->layers[l] : NULL;
        const struct linear *ls[] = {L ? &L->wq : &e->output, L ? &L->wk : NULL, L ? &L->wv : NULL, L ? &L->wo : NULL,
                                     L ? &L->w_gate : NULL, L ? &L->w_up : NULL, L ? &L->w_down : NULL};
        for (int i = 0; i < 7; i++) {
            if (!ls[i] || ls[i]->f32) continue;
            /* the output matrix is multiplied one scoring block of rows at a time */
            int rows = ls[i] == &e->output ? score_vocab_for(c) : ls[i]->rows;
            size_t need = (size_t)matmul_block(rows, e->n_threads) * ls[i]->cols;
            if (need > e->scratch_w_per_thread) e->scratch_w_per_thread = need;
        }
    }
    /* held_alloc counts each buffer as it allocates it: what cpu_device reports */
    e->scratch_w =
        held_alloc(e, (e->scratch_w_per_thread ? e->scratch_w_per_thread : 1) * e->n_threads * sizeof(float));
    e->score_vocab = score_vocab_for(c);
    e->logits = held_alloc(e, (size_t)SCORE_ROWS * e->score_vocab * sizeof(float));
    e->score_x = held_alloc(e, (size_t)SCORE_ROWS * c->dim * sizeof(float));
    e->score_row = held_alloc(e, SCORE_ROWS * sizeof *e->score_row);
    e->score_target = held_alloc(e, SCORE_ROWS * sizeof *e->score_target);
    e->score_max = held_alloc(e, SCORE_ROWS * sizeof *e->score_max);
    e->score_sum = held_alloc(e, SCORE_ROWS * sizeof *e->score_sum);
    e->score_tlogit = held_alloc(e, SCORE_ROWS * sizeof *e->score_tlogit);
    if (!e->scratch_w || !e->logits || !e->score_x || !e->score_row || !e->score_target || !e->score_max ||
        !e->score_sum || !e->score_tlogit)
        goto oom;
    return e;
oom:
    snprintf(err, errlen, "out of memory creating the CPU engine");
fail:
    cpu_destroy(e);
    return NULL;
}

/* ---- y[n][ldy] = x[n][cols] . W[row0 .. row0+nrows)^T, split over threads by blocks of W rows ---- */

struct matmul_job {
    struct backend *e;
    const struct linear *L;
    const float *x;
    float *y;                /* y[t][0] is row row0's output for token t */
    int n, ldy, block, row0, row_end;
};

static void matmul_task(void *ctx, int task, int thread) {
    struct matmul_job *j = ctx;
    const struct linear *L = j->L;
    int r0 = j->row0 + task * j->block;
    int nr = j->row_end - r0 < j->block ? j->row_end - r0 : j->block;
    const float *w;
    int ldw = L->cols;
    if (L->f32) {
        w = L->f32 + (size_t)r0 * L->cols;
    } else {
        float *buf = j->e->scratch_w + (size_t)thread * j->e->scratch_w_per_thread;
        for (int r = 0; r < nr; r++)
            dequantize_row(L->t->type, (const uint8_t *)L->t->data + (size_t)(r0 + r) * L->row_bytes,
                           buf + (size_t)r * L->cols, (size_t)L->cols);
        w = buf;
    }
    float *y = j->y + (r0 - j->row0);
    if (j->n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, nr, L->cols, 1.0f, w, ldw, j->x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, nr, L->cols, 1.0f, j->x, L->cols, w, ldw, 0.0f,
                    y, j->ldy);
}

static void matmul_rows(struct backend *e, const struct linear *L, int row0, int nrows, const float *x, int n,
                        float *y, int ldy) {
    /* the same blocks for every weight type: see the top of the file */
    int block = matmul_block(nrows, threadpool_size(e->tp));
    struct matmul_job j = {e, L, x, y, n, ldy, block, row0, row0 + nrows};
    threadpool_run(e->tp, (nrows + block - 1) / block, matmul_task, &j);
}

static void matmul(struct backend *e, const struct linear *L, const float *x, int n, float *y) {
    matmul_rows(e, L, 0, L->rows, x, n, y, L->rows);
}


/* ---- device, buffers -------------------------------------------------- */

static const char *cpu_unavailable(void) { return NULL; }
static int cpu_auto_rank(void) { return 0; }   /* any device backend that can run is preferred */

static void cpu_list_devices(FILE *f) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    size_t avail = host_mem_available();
    fprintf(f, "cpu: device 0: %ld cores, %lld MiB memory", cores,
            pages > 0 && page > 0 ? (long long)((size_t)pages * (size_t)page >> 20) : -1LL);
    if (avail != SIZE_MAX) fprintf(f, " (%zu MiB available)", avail >> 20);
    fprintf(f, "\n");
}

static void cpu_device(const struct backend *e, struct device_info *out) {
    /* OpenBLAS's kernels (chosen by CPU model, or by OPENBLAS_CORETYPE) set the product
     * rate and the last bits of every product: part of what ran */
    const char *core = openblas_get_corename();
    snprintf(out->name, sizeof out->name, "CPU (%d threads, OpenBLAS %s)", e->n_threads, core ? core : "?");
    int n = snprintf(out->params, sizeof out->params, "threads=%d", e->n_threads);
    if (e->tile_q && n > 0 && (size_t)n < sizeof out->params)
        n += snprintf(out->params + n, sizeof out->params - n, ",tile_q=%d", e->tile_q);
    if (e->tile_k && n > 0 && (size_t)n < sizeof out->params)
        n += snprintf(out->params + n, sizeof out->params - n, ",tile_k=%d", e->tile_k);
    if (e->f32_budget && n > 0 && (size_t)n < sizeof out->params)
        snprintf(out->params + n, sizeof out->params - n, ",f32_budget=%zu", e->f32_budget);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    out->mem_total = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
    out->mem_free = host_mem_available();
    out->max_buffer = SIZE_MAX;
    out->n_threads = e->n_threads;
    out->model_bytes = e->f32_bytes + e->held_bytes;
}

static const char *cpu_cannot_run(const struct backend *e, const struct forward_plan *plan,
                                  const struct kv_types *kv) {
    (void)e; (void)plan; (void)kv;
    return NULL;   /* every plan, every cache type (the engine checks that the model's heads fit q8_0) */
}

static void set_error(struct backend *e, const char *msg) {
    if (!e->error[0]) snprintf(e->error, sizeof e->error, "%s", msg);
}

static struct dbuf *cpu_alloc(struct backend *e, size_t n, char *err, size_t errlen) {
    (void)e;
    struct dbuf *d = malloc(sizeof *d);
    if (d) d->p = malloc((n ? n : 1) * sizeof(float));
    if (!d || !d->p) {
        snprintf(err, errlen, "out of memory for a buffer of %zu MB", n * sizeof(float) >> 20);
        free(d);
        return NULL;
    }
    d->n = n;
    return d;
}

static void cpu_release(struct backend *e, struct dbuf *d) {
    (void)e;
    free(d->p);
    free(d);
}

static void cpu_write(struct backend *e, struct dbuf *d, size_t off, const void *src, size_t n) {
    (void)e;
    memcpy(d->p + off, src, n * sizeof(float));
}

static int cpu_sync(struct backend *e, char *err, size_t errlen);

static int cpu_read(struct backend *e, const struct dbuf *d, size_t off, void *dst, size_t n, char *err,
                    size_t errlen) {
    if (cpu_sync(e, err, errlen) != 0) return -1;
    memcpy(dst, d->p + off, n * sizeof(float));
    return 0;
}

static void cpu_copy(struct backend *e, struct dbuf *dst, size_t dst_off, const struct dbuf *src, size_t src_off,
                     size_t n) {
    (void)e;
    memcpy(dst->p + dst_off, src->p + src_off, n * sizeof(float));
}

static int cpu_sync(struct backend *e, char *err, size_t errlen) {
    if (!e->error[0]) return 0;
    snprintf(err, errlen, "%s", e->error);
    e->error[0] = 0;
    return -1;
}

/* ---- kernels ---------------------------------------------------------- */

static const struct linear *weight(const struct backend *e, int layer, enum weight_id w) {
    if (w == W_OUTPUT) return &e->output;
    const struct cpu_layer *L = &e->layers[layer];
    const struct linear *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return ws[w];
}

static const float *vec(const struct backend *e, int layer, enum vec_id v) {
    if (v == V_OUTPUT_NORM) return e->output_norm;
    const struct cpu_layer *L = &e->layers[layer];
    const float *vs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv};
    return vs[v];
}

static void cpu_embed(struct backend *e, struct dbuf *x, const int32_t *tokens, int n) {
    const struct gguf_tensor *t = e->m->tok_embd;
    const int dim = e->m->cfg.dim;
    size_t rb = ggml_row_bytes(t->type, (uint64_t)dim);
    for (int i = 0; i < n; i++)
        dequantize_row(t->type, (const uint8_t *)t->data + (size_t)tokens[i] * rb, x->p + (size_t)i * dim,
                       (size_t)dim);
}

/* The per-row and elementwise kernels run over the pool in blocks of rows (or of
 * ELEM_BLOCK values): alone on one thread they were a few percent of a prefill's cycles
 * and twice that of its wall time on two. Each row is computed as it was on one thread. */
#define ROW_BLOCK 16
#define ELEM_BLOCK 16384

enum rows_op { ROWS_RMSNORM, ROWS_ROPE, ROWS_ADD, ROWS_SWIGLU };

struct rows_job {
    const struct backend *e;
    enum rows_op op;
    float *y;            /* rmsnorm: out; rope: rows at an offset; add: x; swiglu: gate */
    const float *x;      /* rmsnorm: in; add: y; swiglu: up */
    const float *w;      /* rmsnorm: weight; rope: the cos/sin table */
    size_t n, block;     /* rows (rmsnorm, rope) or values (add, swiglu), and per task */
    int n_heads;         /* rope */
};

static void rows_task(void *ctx, int task, int thread) {
    (void)thread;
    const struct rows_job *j = ctx;
    const struct model_config *c = &j->e->m->cfg;
    size_t i0 = (size_t)task * j->block, cnt = j->n - i0 < j->block ? j->n - i0 : j->block;
    switch (j->op) {
    case ROWS_RMSNORM:
        rmsnorm(j->y + i0 * c->dim, j->x + i0 * c->dim, j->w, c->dim, (int)cnt, (float)c->rms_eps);
        break;
    case ROWS_ROPE: {
        size_t stride = (size_t)j->n_heads * c->head_dim;
        rope_apply_table(j->y + i0 * stride, (int)cnt, stride, j->n_heads, c->head_dim, c->n_rot,
                         j->w + i0 * (size_t)(c->n_rot / 2) * 2, c->rope_style);
        break;
    }
    case ROWS_ADD:
        for (size_t i = i0; i < i0 + cnt; i++) j->y[i] += j->x[i];
        break;
    case ROWS_SWIGLU:
        swiglu(j->y + i0, j->y + i0, j->x + i0, cnt);
        break;
    }
}

static void rows_run(struct backend *e, struct rows_job *j) {
    j->e = e;
    j->block = j->op == ROWS_ADD || j->op == ROWS_SWIGLU ? ELEM_BLOCK : ROW_BLOCK;
    size_t tasks = (j->n + j->block - 1) / j->block;
    if (tasks == 1) rows_task(j, 0, 0);   /* a decode step: not worth waking the pool */
    else if (tasks > 1) threadpool_run(e->tp, (int)tasks, rows_task, j);
}

static void cpu_rmsnorm(struct backend *e, struct dbuf *y, const struct dbuf *x, int layer, enum vec_id w, int n) {
    struct rows_job j = {.op = ROWS_RMSNORM, .y = y->p, .x = x->p, .w = vec(e, layer, w), .n = (size_t)n};
    rows_run(e, &j);
}

static void cpu_matmul(struct backend *e, struct dbuf *y, size_t y_off, const struct dbuf *x, int layer,
                       enum weight_id w, int n) {
    matmul(e, weight(e, layer, w), x->p, n, y->p + y_off);
}

static void cpu_add_bias(struct backend *e, struct dbuf *y, size_t y_off, int layer, enum vec_id w, int n) {
    const struct model_config *c = &e->m->cfg;
    const int width = (w == V_BQ ? c->n_heads : c->n_kv_heads) * c->head_dim;
    const float *bias = vec(e, layer, w);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < width; i++) y->p[y_off + (size_t)t * width + i] += bias[i];
}

static void cpu_rope(struct backend *e, struct dbuf *x, size_t off, int n, int n_heads, const struct dbuf *cos_sin) {
    struct rows_job j = {.op = ROWS_ROPE, .y = x->p + off, .w = cos_sin->p, .n = (size_t)n, .n_heads = n_heads};
    rows_run(e, &j);
}

static void cpu_attention(struct backend *e, const struct attn_call *a) {
    const struct model_config *c = &e->m->cfg;
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t k_off = a->kv_row * kv_row_bytes(a->kv.k, kvd), v_off = a->kv_row * kv_row_bytes(a->kv.v, kvd);
    struct attn_args args = {
        .n_q = a->n_q, .n_kv = a->n_kv,
        .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
        .q = a->q->p, .q_stride = qd,
        .k = (const uint8_t *)a->k->p + k_off, .v = (const uint8_t *)a->v->p + v_off, .kv_stride = kvd,
        .k_type = a->kv.k, .v_type = a->kv.v,
        .q_group = a->q_group ? a->q_group->p : NULL,
        .k_group = a->k_group ? (const uint8_t *)a->k_group->p + k_off : NULL,
        .group_window = a->group_window,
        .q_pos = (const int32_t *)a->q_pos->p, .k_pos = (const int32_t *)a->k_pos->p,
        .scale = a->scale, .window = a->window,
        .tile_q = e->tile_q, .tile_k = e->tile_k,
        .out = a->out->p, .out_stride = qd,
    };
    char msg[256];
    if (!e->error[0] && attn_forward(&args, e->tp, msg, sizeof msg) != 0) set_error(e, msg);
}

/* Rows are spread over the pool in blocks: quantizing a 512-token chunk of a wide
 * model's keys is a few MB of work per layer. */
struct kv_store_job {
    struct dbuf *cache;
    enum kv_type t;
    size_t row, width;
    const float *src;
    int n, block;
};

static void kv_store_task(void *ctx, int task, int thread) {
    (void)thread;
    struct kv_store_job *j = ctx;
    int r0 = task * j->block, nr = j->n - r0 < j->block ? j->n - r0 : j->block;
    size_t rb = kv_row_bytes(j->t, j->width);
    kv_quantize_rows(j->t, j->src + (size_t)r0 * j->width, (uint8_t *)j->cache->p + (j->row + (size_t)r0) * rb,
                     j->width, (size_t)nr);
}

static void cpu_kv_store(struct backend *e, struct dbuf *cache, enum kv_type t, size_t row, const struct dbuf *src,
                         int n) {
    const struct model_config *c = &e->m->cfg;
    struct kv_store_job j = {cache, t, row, (size_t)c->n_kv_heads * c->head_dim, src->p, n, 64};
    threadpool_run(e->tp, (n + j.block - 1) / j.block, kv_store_task, &j);
}

static void cpu_add(struct backend *e, struct dbuf *x, const struct dbuf *y, size_t n) {
    struct rows_job j = {.op = ROWS_ADD, .y = x->p, .x = y->p, .n = n};
    rows_run(e, &j);
}

static void cpu_swiglu(struct backend *e, struct dbuf *gate, const struct dbuf *up, size_t n) {
    struct rows_job j = {.op = ROWS_SWIGLU, .y = gate->p, .x = up->p, .n = n};
    rows_run(e, &j);
}

/* Per-row log-probabilities of the targets. The rows that need the vocabulary (a target,
 * or the last row when its logits are asked for) are gathered, up to SCORE_ROWS at a time,
 * and projected onto one block of score_vocab vocabulary rows after another: each block of
 * the output matrix is dequantized once per SCORE_ROWS positions (not once per few hundred
 * positions, as a block of positions x the whole vocabulary would need), rows without a
 * target cost nothing, and each row keeps a running log-sum-exp over the blocks (in double,
 * rescaled when a block raises the row's maximum: the same sum as max-then-sum over the
 * whole row, up to rounding). Never n x vocab: SCORE_ROWS x score_vocab logits at most. */
struct lse_job {
    const float *logits;    /* [n_rows][n_cols]: one vocabulary block of the gathered rows */
    int n_cols, v0;         /* the block's width and its first vocabulary id */
    const int32_t *targets; /* [n_rows] target of each gathered row, < 0: none */
    double *max, *sum;      /* [n_rows] running maximum and sum of exp(logit - max) */
    float *target_logit;    /* [n_rows] the target's logit once its block has been seen */
};

static void lse_task(void *ctx, int row, int thread) {
    (void)thread;
    const struct lse_job *j = ctx;
    const float *l = j->logits + (size_t)row * j->n_cols;
    double m = -INFINITY;
    for (int i = 0; i < j->n_cols; i++)
        if (l[i] > m) m = l[i];
    if (m > j->max[row]) {
        j->sum[row] *= exp(j->max[row] - m);   /* 0 while the row has seen no block */
        j->max[row] = m;
    }
    double s = 0, mx = j->max[row];
    for (int i = 0; i < j->n_cols; i++) s += exp((double)l[i] - mx);
    j->sum[row] += s;
    int32_t t = j->targets[row];
    if (t >= j->v0 && t < j->v0 + j->n_cols) j->target_logit[row] = l[t - j->v0];
}

static int cpu_score(struct backend *e, const struct dbuf *x, int n, const int32_t *targets, float *logprob,
                     float *last_logits, char *err, size_t errlen) {
    if (cpu_sync(e, err, errlen) != 0) return -1;
    const struct model_config *c = &e->m->cfg;
    /* rows without a target get 0 (score_block_needed's rule, the same on every backend) */
    bool any = score_block_needed(targets, logprob, 0, n, last_logits != NULL);
    for (int r = 0; any && r < n;) {
        /* gather the next SCORE_ROWS rows that need the vocabulary */
        int ng = 0;
        for (; r < n && ng < SCORE_ROWS; r++) {
            bool last = last_logits && r == n - 1;
            int32_t t = targets ? targets[r] : -1;   /* ids were checked by the engine */
            if (t < 0 && !last) continue;
            e->score_row[ng] = r;
            e->score_target[ng] = t;
            e->score_max[ng] = -INFINITY;
            e->score_sum[ng] = 0;
            e->score_tlogit[ng] = 0;
            ng++;
        }
        if (ng == 0) break;
        const float *xg = x->p + (size_t)e->score_row[0] * c->dim;
        if (e->score_row[ng - 1] - e->score_row[0] != ng - 1) {   /* not one contiguous run: copy */
            for (int i = 0; i < ng; i++)
                memcpy(e->score_x + (size_t)i * c->dim, x->p + (size_t)e->score_row[i] * c->dim,
                       (size_t)c->dim * sizeof(float));
            xg = e->score_x;
        }
        bool has_last = last_logits && e->score_row[ng - 1] == n - 1;
        for (int v0 = 0; v0 < c->n_vocab; v0 += e->score_vocab) {
            int nv = c->n_vocab - v0 < e->score_vocab ? c->n_vocab - v0 : e->score_vocab;
            matmul_rows(e, &e->output, v0, nv, xg, ng, e->logits, nv);
            struct lse_job j = {e->logits, nv, v0, e->score_target, e->score_max, e->score_sum, e->score_tlogit};
            threadpool_run(e->tp, ng, lse_task, &j);
            if (has_last) memcpy(last_logits + v0, e->logits + (size_t)(ng - 1) * nv, (size_t)nv * sizeof(float));
        }
        if (logprob)
            for (int i = 0; i < ng; i++)
                if (e->score_target[i] >= 0)
                    logprob[e->score_row[i]] =
                        (float)((double)e->score_tlogit[i] - e->score_max[i] - log(e->score_sum[i]));
    }
    return 0;
}

const struct backend_ops backend_cpu = {
    .name = "cpu",
    .params_help = "threads=N, tile_q=N, tile_k=N, f32_budget=BYTES (F32 copy of the weights at load if it fits; "
                   "default none)",
    .unavailable = cpu_unavailable,
    .auto_rank = cpu_auto_rank,
    .list_devices = cpu_list_devices,
    .create = cpu_create,
    .destroy = cpu_destroy,
    .device = cpu_device,
    .cannot_run = cpu_cannot_run,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .write = cpu_write,
    .read = cpu_read,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .add = cpu_add,
    .swiglu = cpu_swiglu,
    .score = cpu_score,
};
