/* CPU backend: the llama forward pass over a chunk of tokens at a time.
 * Matrix products go through OpenBLAS sgemm (single-threaded inside our own
 * pthread pool, which splits each product by output rows); attention is the
 * tiled online-softmax kernel in kernels.c. Memory for a session of n tokens is
 * the KV cache (n x layers x kv_dim x 2 floats, twice the keys for SelfExtend)
 * plus activations for one chunk, never n x n or n x vocab. */
#include <cblas.h>
#include <math.h>
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
/* Weight rows dequantized per task when a matrix is not kept as F32. */
#define ROW_BLOCK 64

/* OpenBLAS declares this in its own cblas.h; repeated so other BLAS headers work. */
void openblas_set_num_threads(int n);

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

struct engine {
    const struct model *m;
    struct engine_opts opts;
    struct threadpool *tp;
    struct cpu_layer *layers;
    struct linear output;
    const float *output_norm;
    size_t f32_bytes;
    float *scratch_w;     /* per-thread dequantization buffers: n_threads x ROW_BLOCK x max_cols */
    size_t scratch_w_per_thread;
};

struct session {
    struct engine *e;
    int max_tokens, n_past;
    float *k_cache, *v_cache;  /* [layer][max_tokens][kv_dim] */
    float *kg_cache;           /* SelfExtend grouped-position keys, allocated on first use */
    int32_t *pos;              /* positions of cached tokens */
    int se_group, se_window;   /* the SelfExtend setting kg_cache was built with */
    /* chunk activations */
    float *x, *xb, *q, *qg, *k, *v, *att, *hb, *hb2, *logits;
    int32_t *qpos, *gpos, *gkpos;  /* chunk positions; SelfExtend's grouped query and key positions */
    int logits_rows;
    struct eval_stats stats;
    void (*progress)(void *arg, int n_tokens);   /* called after each chunk (session_set_progress) */
    void *progress_arg;
};


/* ---- weights ---------------------------------------------------------- */


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

static int linear_init(struct engine *e, struct linear *L, const struct gguf_tensor *t, bool keep_f32,
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
    struct dequant_job j = {L, ROW_BLOCK};
    threadpool_run(e->tp, (L->rows + ROW_BLOCK - 1) / ROW_BLOCK, dequant_task, &j);
    L->f32 = L->owned;
    e->f32_bytes += n * sizeof(float);
    return 0;
}

static uint64_t quantized_elems(const struct gguf_tensor *t) {
    return t->type == GGML_TYPE_F32 ? 0 : t->ne[0] * t->ne[1];
}

/* Frees an engine, also one that cpu_create left half built. */
static void cpu_destroy(struct engine *e) {
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
    if (e->tp) threadpool_free(e->tp);
    free(e);
}

static struct engine *cpu_create(const struct model *m, const struct engine_opts *o, char *err, size_t errlen) {
    const struct model_config *c = &m->cfg;
    struct engine *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->m = m;
    e->opts = *o;
    if (e->opts.n_threads <= 0) e->opts.n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (e->opts.n_threads <= 0) e->opts.n_threads = 1;
    openblas_set_num_threads(1);
    e->tp = threadpool_create(e->opts.n_threads, err, errlen);
    if (!e->tp) goto fail;   /* err says why: a thread limit is not "out of memory" */
    e->layers = calloc((size_t)c->n_layers, sizeof *e->layers);
    if (!e->layers) goto oom;

    /* Keep quantized matrices as F32 when that fits comfortably: sgemm on F32 is
     * the fastest path; otherwise rows are dequantized block by block per product. */
    uint64_t q_elems = quantized_elems(m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct gguf_tensor *ts[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) q_elems += quantized_elems(ts[i]);
    }
    size_t budget = o->f32_budget ? o->f32_budget : host_mem_available() / 2;
    bool keep_f32 = q_elems * sizeof(float) <= budget;

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

    int max_cols = c->dim > c->ffn_dim ? c->dim : c->ffn_dim;
    if (c->n_heads * c->head_dim > max_cols) max_cols = c->n_heads * c->head_dim;
    e->scratch_w_per_thread = (size_t)ROW_BLOCK * max_cols;
    e->scratch_w = malloc(e->scratch_w_per_thread * e->opts.n_threads * sizeof(float));
    if (!e->scratch_w) goto oom;
    return e;
oom:
    snprintf(err, errlen, "out of memory creating the CPU engine");
fail:
    cpu_destroy(e);
    return NULL;
}

/* ---- y[n][rows] = x[n][cols] . W^T, split over threads by blocks of W rows ---- */

struct matmul_job {
    struct engine *e;
    const struct linear *L;
    const float *x;
    float *y;
    int n, ldy, block;
};

static void matmul_task(void *ctx, int task, int thread) {
    struct matmul_job *j = ctx;
    const struct linear *L = j->L;
    int r0 = task * j->block;
    int nr = L->rows - r0 < j->block ? L->rows - r0 : j->block;
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
    if (j->n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, nr, L->cols, 1.0f, w, ldw, j->x, 1, 0.0f, j->y + r0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, nr, L->cols, 1.0f, j->x, L->cols, w, ldw, 0.0f,
                    j->y + r0, j->ldy);
}

static void matmul(struct session *s, const struct linear *L, const float *x, int n, float *y) {
    struct engine *e = s->e;
    double t0 = host_monotonic_s();
    int nt = threadpool_size(e->tp);
    /* F32 weights: a few large blocks per thread; quantized: ROW_BLOCK (the scratch size). */
    int block = ROW_BLOCK;
    if (L->f32) {
        block = (L->rows + 4 * nt - 1) / (4 * nt);
        block = (block + 15) / 16 * 16;
        if (block < 16) block = 16;
    }
    struct matmul_job j = {e, L, x, y, n, L->rows, block};
    threadpool_run(e->tp, (L->rows + block - 1) / block, matmul_task, &j);
    s->stats.t_matmul += host_monotonic_s() - t0;
}

/* ---- sessions --------------------------------------------------------- */

static size_t kv_floats(const struct model_config *c, int n) {
    return (size_t)c->n_layers * (size_t)n * (size_t)c->n_kv_heads * c->head_dim;
}

static size_t chunk_floats(const struct model_config *c) {
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    return (size_t)CHUNK_TOKENS * (2 * c->dim + 3 * qd + 3 * kvd + 2 * c->ffn_dim);
}

static size_t logits_rows_for(const struct model_config *c) {
    size_t rows = ((size_t)16 << 20) / ((size_t)c->n_vocab * sizeof(float));
    if (rows < 1) rows = 1;
    if (rows > CHUNK_TOKENS) rows = CHUNK_TOKENS;
    return rows;
}

static size_t cpu_session_bytes(const struct engine *e, int n, const struct forward_plan *plan) {
    const struct model_config *c = &e->m->cfg;
    size_t kv_copies = plan && plan->se_group > 0 ? 3 : 2;   /* K, V, and SelfExtend's grouped K */
    return (kv_copies * kv_floats(c, n) + chunk_floats(c) + logits_rows_for(c) * c->n_vocab) * sizeof(float) +
           (size_t)n * sizeof(int32_t);
}

static void cpu_session_free(struct session *s) {
    if (!s) return;
    free(s->k_cache); free(s->v_cache); free(s->kg_cache); free(s->pos);
    free(s->x); free(s->xb); free(s->q); free(s->qg); free(s->k); free(s->v); free(s->att);
    free(s->hb); free(s->hb2); free(s->logits); free(s->qpos); free(s->gpos); free(s->gkpos);
    free(s);
}

static struct session *cpu_session_new(struct engine *e, int max_tokens, char *err, size_t errlen) {
    const struct model_config *c = &e->m->cfg;
    if (max_tokens <= 0) {
        snprintf(err, errlen, "session length %d must be positive", max_tokens);
        return NULL;
    }
    /* Linux overcommits: a session that does not fit would be killed mid-run, not
     * refused by malloc, so say so up front. */
    size_t need = cpu_session_bytes(e, max_tokens, NULL), avail = host_mem_available();
    if (need > avail) {
        snprintf(err, errlen, "a %d-token session needs %zu MB (KV cache and activations) but only %zu MB are available",
                 max_tokens, need >> 20, avail >> 20);
        return NULL;
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->e = e;
    s->max_tokens = max_tokens;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t B = CHUNK_TOKENS;
    s->logits_rows = (int)logits_rows_for(c);
    s->k_cache = malloc(kv_floats(c, max_tokens) * sizeof(float));
    s->v_cache = malloc(kv_floats(c, max_tokens) * sizeof(float));
    s->pos = malloc((size_t)max_tokens * sizeof(int32_t));
    s->x = malloc(B * c->dim * sizeof(float));
    s->xb = malloc(B * c->dim * sizeof(float));
    s->q = malloc(B * qd * sizeof(float));
    s->qg = malloc(B * qd * sizeof(float));
    s->k = malloc(B * kvd * sizeof(float));
    s->v = malloc(B * kvd * sizeof(float));
    s->att = malloc(B * qd * sizeof(float));
    s->hb = malloc(B * c->ffn_dim * sizeof(float));
    s->hb2 = malloc(B * c->ffn_dim * sizeof(float));
    s->logits = malloc((size_t)s->logits_rows * c->n_vocab * sizeof(float));
    s->qpos = malloc(B * sizeof(int32_t));
    s->gpos = malloc(B * sizeof(int32_t));
    s->gkpos = malloc(B * sizeof(int32_t));
    if (!s->k_cache || !s->v_cache || !s->pos || !s->x || !s->xb || !s->q || !s->qg || !s->k || !s->v || !s->att ||
        !s->hb || !s->hb2 || !s->logits || !s->qpos || !s->gpos || !s->gkpos)
        goto oom;
    return s;
oom:
    snprintf(err, errlen, "out of memory for a %d-token session (needs about %zu MB)", max_tokens,
             cpu_session_bytes(e, max_tokens, NULL) >> 20);
    cpu_session_free(s);
    return NULL;
}

static void cpu_session_reset(struct session *s) {
    s->n_past = 0;
    memset(&s->stats, 0, sizeof s->stats);
}
static void cpu_session_truncate(struct session *s, int n) {
    if (n >= 0 && n < s->n_past) s->n_past = n;
}
static void cpu_session_stats(const struct session *s, struct eval_stats *out) { *out = s->stats; }
static int cpu_session_n_past(const struct session *s) { return s->n_past; }

/* SelfExtend grouped positions: keys at floor(p/G); queries shifted by W - W/G
 * (integer division) so the grouped region starts where the neighbour window ends. */
static int32_t se_key_pos(int32_t p, int G) { return p / G; }
static int32_t se_query_pos(int32_t p, int G, int W) { return p / G + W - W / G; }

/* Runs tokens [0, n) of this chunk (all at positions already in s->qpos) through the model. */
static int forward_chunk(struct session *s, const int32_t *tokens, int n, const struct forward_plan *plan,
                         char *err, size_t errlen) {
    struct engine *e = s->e;
    const struct model *m = e->m;
    const struct model_config *c = &m->cfg;
    const int dim = c->dim, hd = c->head_dim;
    const int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const bool se = plan->se_group > 0;
    const int start = s->n_past;
    float *x = s->x;

    for (int t = 0; t < n; t++) {   /* ids were checked by eval_check */
        size_t rb = ggml_row_bytes(m->tok_embd->type, (uint64_t)dim);
        dequantize_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + (size_t)tokens[t] * rb,
                       x + (size_t)t * dim, (size_t)dim);
    }
    for (int t = 0; t < n; t++) s->pos[start + t] = s->qpos[t];
    if (se)
        for (int t = 0; t < n; t++) {
            s->gpos[t] = se_query_pos(s->qpos[t], plan->se_group, plan->se_window);
            s->gkpos[t] = se_key_pos(s->qpos[t], plan->se_group);
        }

    for (int l = 0; l < c->n_layers; l++) {
        const struct cpu_layer *L = &e->layers[l];
        float *kc = s->k_cache + ((size_t)l * s->max_tokens + start) * kvd;
        float *vc = s->v_cache + ((size_t)l * s->max_tokens + start) * kvd;

        rmsnorm(s->xb, x, L->attn_norm, dim, n, (float)c->rms_eps);
        matmul(s, &L->wq, s->xb, n, s->q);
        matmul(s, &L->wk, s->xb, n, kc);
        matmul(s, &L->wv, s->xb, n, vc);
        if (L->bq)
            for (int t = 0; t < n; t++) {
                for (int i = 0; i < qd; i++) s->q[(size_t)t * qd + i] += L->bq[i];
                for (int i = 0; i < kvd; i++) kc[(size_t)t * kvd + i] += L->bk[i];
                for (int i = 0; i < kvd; i++) vc[(size_t)t * kvd + i] += L->bv[i];
            }
        if (se) {
            /* Grouped copies are rotated from the same unrotated q and k. */
            float *kg = s->kg_cache + ((size_t)l * s->max_tokens + start) * kvd;
            memcpy(s->qg, s->q, (size_t)n * qd * sizeof(float));
            memcpy(kg, kc, (size_t)n * kvd * sizeof(float));
            rope_apply(s->qg, n, qd, c->n_heads, hd, c->n_rot, s->gpos, plan->inv_freq, plan->mscale, c->rope_style);
            rope_apply(kg, n, kvd, c->n_kv_heads, hd, c->n_rot, s->gkpos, plan->inv_freq, plan->mscale, c->rope_style);
        }
        rope_apply(s->q, n, qd, c->n_heads, hd, c->n_rot, s->qpos, plan->inv_freq, plan->mscale, c->rope_style);
        rope_apply(kc, n, kvd, c->n_kv_heads, hd, c->n_rot, s->qpos, plan->inv_freq, plan->mscale, c->rope_style);

        struct attn_args a = {
            .n_q = n, .n_kv = start + n,
            .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = hd,
            .q = s->q, .q_stride = (size_t)qd,
            .k = s->k_cache + (size_t)l * s->max_tokens * kvd,
            .v = s->v_cache + (size_t)l * s->max_tokens * kvd,
            .kv_stride = (size_t)kvd,
            .q_group = se ? s->qg : NULL,
            .k_group = se ? s->kg_cache + (size_t)l * s->max_tokens * kvd : NULL,
            .group_window = plan->se_window,
            .q_pos = s->qpos, .k_pos = s->pos,
            .scale = 1.0f / sqrtf((float)hd),
            .window = plan->swa_window,
            .tile_q = e->opts.tile_q, .tile_k = e->opts.tile_k,
            .out = s->att, .out_stride = (size_t)qd,
        };
        double t0 = host_monotonic_s();
        if (attn_forward(&a, e->tp, err, errlen) != 0) return -1;
        s->stats.t_attn += host_monotonic_s() - t0;
        matmul(s, &L->wo, s->att, n, s->xb);
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += s->xb[i];

        rmsnorm(s->xb, x, L->ffn_norm, dim, n, (float)c->rms_eps);
        matmul(s, &L->w_gate, s->xb, n, s->hb);
        matmul(s, &L->w_up, s->xb, n, s->hb2);
        swiglu(s->hb, s->hb, s->hb2, (size_t)n * c->ffn_dim);
        matmul(s, &L->w_down, s->hb, n, s->xb);
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += s->xb[i];
    }
    rmsnorm(x, x, e->output_norm, dim, n, (float)c->rms_eps);
    return 0;
}

/* Per-row log-probabilities of the targets, the vocabulary projection done in
 * blocks of logits_rows so n x vocab is never held. */
struct lsm_job {
    const float *logits;
    int n_vocab;
    const int32_t *targets;
    float *logprob;
};

static void lsm_task(void *ctx, int row, int thread) {
    (void)thread;
    struct lsm_job *j = ctx;
    int32_t t = j->targets[row];
    j->logprob[row] = t < 0 ? 0.0f : (float)log_softmax_at(j->logits + (size_t)row * j->n_vocab, j->n_vocab, t);
}

static void score_chunk(struct session *s, int n, const int32_t *targets, float *logprob, float *last_logits) {
    struct engine *e = s->e;
    const struct model_config *c = &e->m->cfg;
    for (int r0 = 0; r0 < n; r0 += s->logits_rows) {
        int nr = n - r0 < s->logits_rows ? n - r0 : s->logits_rows;
        bool need_last = last_logits && r0 + nr == n;
        bool need_scores = false;
        if (targets)
            for (int r = 0; r < nr; r++) need_scores |= targets[r0 + r] >= 0;
        if (!need_scores && !need_last) {
            if (logprob)
                for (int r = 0; r < nr; r++) logprob[r0 + r] = 0.0f;
            continue;
        }
        matmul(s, &e->output, s->x + (size_t)r0 * c->dim, nr, s->logits);
        if (targets) {   /* ids were checked by eval_check */
            struct lsm_job j = {s->logits, c->n_vocab, targets + r0, logprob + r0};
            threadpool_run(e->tp, nr, lsm_task, &j);
        }
        if (need_last) memcpy(last_logits, s->logits + (size_t)(nr - 1) * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    }
}

/* Checks everything eval is given before anything is computed or changed, so that bad
 * input leaves the session exactly as it was. */
static int eval_check(const struct session *s, const int32_t *tokens, const int32_t *pos, int n,
                      const struct forward_plan *plan, const int32_t *targets, const float *logprob, char *err,
                      size_t errlen) {
    const struct model_config *c = &s->e->m->cfg;
    if (n <= 0) {
        snprintf(err, errlen, "nothing to evaluate (%d tokens)", n);
        return -1;
    }
    if (!tokens || !plan || !plan->inv_freq) {
        snprintf(err, errlen, "eval: no %s given", !tokens ? "tokens" : "plan or frequency table");
        return -1;
    }
    if (n > s->max_tokens - s->n_past) {
        snprintf(err, errlen, "%d tokens do not fit in the session (%d of %d positions used)", n, s->n_past,
                 s->max_tokens);
        return -1;
    }
    if (targets && !logprob) {
        snprintf(err, errlen, "targets given without a logprob buffer");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab) {
            snprintf(err, errlen, "token id %d at batch index %d is outside the vocabulary (0..%d)", tokens[i], i,
                     c->n_vocab - 1);
            return -1;
        }
        if (targets && targets[i] >= c->n_vocab) {
            snprintf(err, errlen, "target id %d at batch index %d is outside the vocabulary (0..%d, or < 0 for "
                     "not scored)", targets[i], i, c->n_vocab - 1);
            return -1;
        }
        if (pos && pos[i] < 0) {
            snprintf(err, errlen, "position %d at batch index %d is negative", pos[i], i);
            return -1;
        }
    }
    if (!isfinite(plan->mscale) || !(plan->mscale > 0) || plan->swa_window < 0 || plan->se_group < 0) {
        snprintf(err, errlen, "invalid forward plan (mscale %g, window %d, SelfExtend group %d)", (double)plan->mscale,
                 plan->swa_window, plan->se_group);
        return -1;
    }
    if (plan->se_group > 0) {
        if (plan->se_window <= 0) {
            snprintf(err, errlen, "SelfExtend needs a positive neighbour window");
            return -1;
        }
        if (s->n_past > 0 && (s->se_group != plan->se_group || s->se_window != plan->se_window)) {
            /* The grouped keys of the tokens already cached were made with other settings, or never. */
            snprintf(err, errlen, "SelfExtend cannot start or change in the middle of a session (%d tokens cached)",
                     s->n_past);
            return -1;
        }
    }
    return 0;
}

static int cpu_eval(struct session *s, const int32_t *tokens, const int32_t *pos, int n,
                    const struct forward_plan *plan, const int32_t *targets, float *logprob, float *last_logits,
                    char *err, size_t errlen) {
    const struct model_config *c = &s->e->m->cfg;
    if (eval_check(s, tokens, pos, n, plan, targets, logprob, err, errlen) != 0) return -1;
    if (plan->se_group > 0 && !s->kg_cache) {
        size_t bytes = kv_floats(c, s->max_tokens) * sizeof(float), avail = host_mem_available();
        if (bytes > avail) {
            snprintf(err, errlen, "SelfExtend's grouped key cache needs %zu MB but only %zu MB are available",
                     bytes >> 20, avail >> 20);
            return -1;
        }
        s->kg_cache = malloc(bytes);
        if (!s->kg_cache) {
            snprintf(err, errlen, "out of memory for SelfExtend's grouped key cache (%zu MB)", bytes >> 20);
            return -1;
        }
    }
    /* A failure past this point (attention scratch) rolls back to here: tokens are only
     * ever written at positions >= n_past, so restoring these leaves the session as it was. */
    const int n_past0 = s->n_past, se_group0 = s->se_group, se_window0 = s->se_window;
    const struct eval_stats stats0 = s->stats;
    /* Without SelfExtend the grouped keys are not kept up to date from here on. */
    s->se_group = plan->se_group;
    s->se_window = plan->se_group > 0 ? plan->se_window : 0;
    double t0 = host_monotonic_s();
    for (int done = 0; done < n;) {
        int nc = n - done < CHUNK_TOKENS ? n - done : CHUNK_TOKENS;
        for (int t = 0; t < nc; t++) s->qpos[t] = pos ? pos[done + t] : s->n_past + t;
        if (forward_chunk(s, tokens + done, nc, plan, err, errlen) != 0) {
            s->n_past = n_past0;
            s->se_group = se_group0;
            s->se_window = se_window0;
            s->stats = stats0;
            return -1;
        }
        score_chunk(s, nc, targets ? targets + done : NULL, logprob ? logprob + done : NULL,
                    done + nc == n ? last_logits : NULL);
        s->n_past += nc;
        done += nc;
        if (s->progress) s->progress(s->progress_arg, nc);
    }
    s->stats.t_total += host_monotonic_s() - t0;
    s->stats.tokens += n;
    return 0;
}

static void cpu_session_set_progress(struct session *s, void (*fn)(void *arg, int n_tokens), void *arg) {
    s->progress = fn;
    s->progress_arg = fn ? arg : NULL;
}

const struct backend_ops cpu_backend = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .session_new = cpu_session_new,
    .session_free = cpu_session_free,
    .session_reset = cpu_session_reset,
    .session_truncate = cpu_session_truncate,
    .session_n_past = cpu_session_n_past,
    .eval = cpu_eval,
    .session_bytes = cpu_session_bytes,
    .session_stats = cpu_session_stats,
    .session_set_progress = cpu_session_set_progress,
};
