/* The forward pass, once for every backend (engine.h): sessions own a KV cache and
 * one chunk's activations in device buffers, and each layer is a flat list of backend
 * kernel calls, as llm.c's gpt2_forward. Position maps (the tokens' positions, and
 * SelfExtend's grouped query and key positions) are computed here, on the host, from
 * the plan; the backends only receive them.
 *
 * Memory for a session of n tokens is the KV cache (n x layers x kv_dim values of K and
 * of V in the engine's cache types, a third copy of the keys for SelfExtend) plus
 * activations for one chunk, never n x n or n x vocab. Keys and values are computed in
 * F32 chunk buffers (projection, bias, rotation) and stored into the caches converted
 * (kv_store); with f32 caches that is a copy, so the numbers are those of an F32 cache
 * written in place. */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "model.h"
#include "rope_table.h"

/* Tokens pushed through all layers at once: large enough for the matrix products to
 * reach their peak, small enough that activations stay a few MB. */
#define CHUNK_TOKENS 512

struct engine {
    const struct backend_ops *ops;
    struct backend *b;
    const struct model *m;
    struct kv_types kv;             /* every session's cache types */
    char kv_unfit[192];             /* why the model's heads cannot use them, "" if they can */
};

/* One session: its device buffers (each field: shape, in elements) and host state. */
struct session {
    struct engine *e;
    int max_tokens, n_past;
    struct dbuf *k_cache, *v_cache; /* [n_layers][max_tokens] rows of kv_dim rotated keys, values, in the
                                       engine's cache types (kv_store's rows) */
    struct dbuf *kg_cache;          /* SelfExtend grouped-position keys, same shape; made on first use */
    struct dbuf *pos;               /* [max_tokens] int32 positions of the cached tokens */
    struct dbuf *x, *xb;            /* [CHUNK][dim] residual stream, normed / projected scratch */
    struct dbuf *kb, *vb, *kgb;     /* [CHUNK][kv_dim] the chunk's keys, values, SelfExtend grouped keys (F32) */
    struct dbuf *q, *qg;            /* [CHUNK][n_heads*head_dim] queries, SelfExtend grouped queries */
    struct dbuf *att;               /* [CHUNK][n_heads*head_dim] attention output */
    struct dbuf *hb, *hb2;          /* [CHUNK][ffn_dim] gate, up */
    struct dbuf *qpos;              /* [CHUNK] int32 the chunk's positions (attention's mask) */
    struct dbuf *cs, *cs_q, *cs_k;  /* [CHUNK][n_rot/2][2] rotations at the chunk's positions; SelfExtend's
                                       grouped query and key positions */
    int32_t *h_qpos, *h_gpos, *h_gkpos; /* host: the three position maps */
    int32_t *h_out_rows, *h_out_pos;    /* [CHUNK] host: the chunk rows whose output is needed, their positions */
    int32_t *h_out_tgt;                 /* [CHUNK] host: their targets (-1: the last row, logits only) */
    float *h_out_lp;                    /* [CHUNK] host: their log-probabilities */
    float *h_cs;                    /* host: one rotation table being made */
    int se_group, se_window;        /* the SelfExtend setting kg_cache was built with */
    struct eval_stats stats;
    void (*progress)(void *arg, int n_tokens);
    void *progress_arg;
};

/* ------------------------------------------------------------------ engine */

struct engine *engine_create(const struct backend_ops *be, const struct model *m, const char *params,
                             const struct kv_types *kv, char *err, size_t errlen) {
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory creating the engine");
        return NULL;
    }
    e->ops = be;
    e->m = m;
    e->kv = kv ? *kv : (struct kv_types){KV_F32, KV_F32};
    char why[192];
    if (kv_type_unfit(e->kv.k, m->cfg.head_dim, why, sizeof why) ||
        kv_type_unfit(e->kv.v, m->cfg.head_dim, why, sizeof why))
        snprintf(e->kv_unfit, sizeof e->kv_unfit, "%s", why);
    e->b = be->create(m, params, err, errlen);
    if (!e->b) {
        free(e);
        return NULL;
    }
    return e;
}

void engine_destroy(struct engine *e) {
    if (!e) return;
    e->ops->destroy(e->b);
    free(e);
}

const struct backend_ops *engine_backend(const struct engine *e) { return e->ops; }

void engine_device(const struct engine *e, struct device_info *out) {
    memset(out, 0, sizeof *out);
    e->ops->device(e->b, out);
}

struct kv_types engine_kv_types(const struct engine *e) { return e->kv; }

const char *engine_cannot_run(const struct engine *e, const struct forward_plan *plan) {
    if (e->kv_unfit[0]) return e->kv_unfit;
    return e->ops->cannot_run ? e->ops->cannot_run(e->b, plan, &e->kv) : NULL;
}

static size_t kv_dim(const struct model_config *c) { return (size_t)c->n_kv_heads * c->head_dim; }

/* Elements (4 bytes) of one cache of type t for n positions of every layer: whole
 * elements, as buffers count them. */
static size_t kv_elems(const struct model_config *c, enum kv_type t, int n) {
    size_t bytes = (size_t)c->n_layers * (size_t)n * kv_row_bytes(t, kv_dim(c));
    return (bytes + sizeof(float) - 1) / sizeof(float);
}

static size_t chunk_floats(const struct model_config *c) {
    size_t qd = (size_t)c->n_heads * c->head_dim;
    return (size_t)CHUNK_TOKENS * (2 * c->dim + 3 * qd + 3 * kv_dim(c) + 2 * c->ffn_dim + 1 + 3 * (size_t)c->n_rot);
}

size_t engine_session_bytes(const struct engine *e, int n, const struct forward_plan *plan) {
    const struct model_config *c = &e->m->cfg;
    size_t caches = kv_elems(c, e->kv.k, n) + kv_elems(c, e->kv.v, n);
    if (plan && plan->se_group > 0) caches += kv_elems(c, e->kv.k, n);   /* SelfExtend's grouped K */
    return (caches + chunk_floats(c)) * sizeof(float) + (size_t)n * sizeof(int32_t);
}

static size_t device_free(const struct engine *e) {
    struct device_info d;
    engine_device(e, &d);
    return d.mem_free;
}

const char *engine_session_too_big(const struct engine *e, int n_tokens, char *why, size_t cap) {
    struct device_info d;
    engine_device(e, &d);
    size_t k_elems = kv_elems(&e->m->cfg, e->kv.k, n_tokens), v_elems = kv_elems(&e->m->cfg, e->kv.v, n_tokens);
    size_t cache_bytes = (k_elems > v_elems ? k_elems : v_elems) * sizeof(float);   /* one buffer holds every layer */
    if (cache_bytes > d.max_buffer) {
        snprintf(why, cap, "a %d-token KV cache is one buffer of %zu MiB, more than the largest %s allows (%zu MiB)",
                 n_tokens, cache_bytes >> 20, d.name, d.max_buffer >> 20);
        return why;
    }
    return NULL;
}

/* ------------------------------------------------------------------ sessions */

void session_free(struct session *s) {
    if (!s) return;
    struct engine *e = s->e;
    struct dbuf *bufs[] = {s->k_cache, s->v_cache, s->kg_cache, s->pos, s->x, s->xb, s->kb, s->vb, s->kgb, s->q,
                           s->qg, s->att, s->hb, s->hb2, s->qpos, s->cs, s->cs_q, s->cs_k};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) e->ops->release(e->b, bufs[i]);
    free(s->h_qpos); free(s->h_gpos); free(s->h_gkpos); free(s->h_cs);
    free(s->h_out_rows); free(s->h_out_pos); free(s->h_out_tgt); free(s->h_out_lp);
    free(s);
}

struct session *session_new(struct engine *e, int max_tokens, char *err, size_t errlen) {
    const struct model_config *c = &e->m->cfg;
    if (max_tokens <= 0) {
        snprintf(err, errlen, "session length %d must be positive", max_tokens);
        return NULL;
    }
    if (e->kv_unfit[0]) {
        snprintf(err, errlen, "%s", e->kv_unfit);
        return NULL;
    }
    /* Linux overcommits: a session that does not fit would be killed mid-run, not
     * refused by malloc, so say so up front. */
    size_t need = engine_session_bytes(e, max_tokens, NULL), avail = device_free(e);
    if (need > avail) {
        snprintf(err, errlen, "a %d-token session needs %zu MB (KV cache and activations) but only %zu MB are available",
                 max_tokens, need >> 20, avail >> 20);
        return NULL;
    }
    if (engine_session_too_big(e, max_tokens, err, errlen)) return NULL;
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory for a %d-token session", max_tokens);
        return NULL;
    }
    s->e = e;
    s->max_tokens = max_tokens;
    const size_t qd = (size_t)c->n_heads * c->head_dim, B = CHUNK_TOKENS;
    struct { struct dbuf **d; size_t n; } want[] = {
        {&s->k_cache, kv_elems(c, e->kv.k, max_tokens)}, {&s->v_cache, kv_elems(c, e->kv.v, max_tokens)},
        {&s->pos, (size_t)max_tokens}, {&s->x, B * c->dim}, {&s->xb, B * c->dim}, {&s->kb, B * kv_dim(c)},
        {&s->vb, B * kv_dim(c)}, {&s->kgb, B * kv_dim(c)}, {&s->q, B * qd},
        {&s->qg, B * qd}, {&s->att, B * qd}, {&s->hb, B * c->ffn_dim}, {&s->hb2, B * c->ffn_dim},
        {&s->qpos, B}, {&s->cs, B * c->n_rot}, {&s->cs_q, B * c->n_rot}, {&s->cs_k, B * c->n_rot},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].d = e->ops->alloc(e->b, want[i].n, err, errlen);
        if (!*want[i].d) goto fail;
    }
    s->h_qpos = malloc(B * sizeof(int32_t));
    s->h_gpos = malloc(B * sizeof(int32_t));
    s->h_gkpos = malloc(B * sizeof(int32_t));
    s->h_cs = malloc(B * c->n_rot * sizeof(float));
    s->h_out_rows = malloc(B * sizeof(int32_t));
    s->h_out_pos = malloc(B * sizeof(int32_t));
    s->h_out_tgt = malloc(B * sizeof(int32_t));
    s->h_out_lp = malloc(B * sizeof(float));
    if (!s->h_qpos || !s->h_gpos || !s->h_gkpos || !s->h_cs || !s->h_out_rows || !s->h_out_pos || !s->h_out_tgt ||
        !s->h_out_lp) {
        snprintf(err, errlen, "out of memory for a %d-token session", max_tokens);
        goto fail;
    }
    return s;
fail:
    session_free(s);
    return NULL;
}

void session_reset(struct session *s) {
    s->n_past = 0;
    memset(&s->stats, 0, sizeof s->stats);
}
void session_truncate(struct session *s, int n) {
    if (n >= 0 && n < s->n_past) s->n_past = n;
}
void session_stats(const struct session *s, struct eval_stats *out) { *out = s->stats; }
int session_n_past(const struct session *s) { return s->n_past; }
void session_set_progress(struct session *s, void (*fn)(void *arg, int n_tokens), void *arg) {
    s->progress = fn;
    s->progress_arg = fn ? arg : NULL;
}

int session_fill_synthetic(struct session *s, int n, char *err, size_t errlen) {
    if (n < 0 || n > s->max_tokens || s->n_past != 0) {
        snprintf(err, errlen, "a synthetic fill of %d tokens needs an empty session of at least that many positions "
                 "(%d of %d used)", n, s->n_past, s->max_tokens);
        return -1;
    }
    const struct backend_ops *ops = s->e->ops;
    struct backend *b = s->e->b;
    const struct model_config *c = &s->e->m->cfg;
    const size_t kvd = kv_dim(c);
    float *rows = malloc((size_t)CHUNK_TOKENS * kvd * sizeof(float));
    if (!rows) {
        snprintf(err, errlen, "out of memory for a synthetic fill");
        return -1;
    }
    /* one chunk of values in [-1, 1) (xorshift), stored at every chunk of positions */
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)CHUNK_TOKENS * kvd; i++) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        rows[i] = (float)((double)(st >> 11) * 0x1p-52 - 1.0);
    }
    ops->write(b, s->kb, 0, rows, (size_t)CHUNK_TOKENS * kvd);
    for (int done = 0; done < n;) {
        int nc = n - done < CHUNK_TOKENS ? n - done : CHUNK_TOKENS;
        for (int t = 0; t < nc; t++) s->h_qpos[t] = done + t;
        ops->write(b, s->pos, (size_t)done, s->h_qpos, (size_t)nc);
        for (int l = 0; l < c->n_layers; l++) {
            size_t row = (size_t)l * s->max_tokens + (size_t)done;
            ops->kv_store(b, s->k_cache, s->e->kv.k, row, s->kb, nc);
            ops->kv_store(b, s->v_cache, s->e->kv.v, row, s->kb, nc);
        }
        done += nc;
    }
    free(rows);
    if (ops->sync(b, err, errlen) != 0) return -1;
    s->n_past = n;
    return 0;
}

/* ------------------------------------------------------------------ the forward pass */

/* SelfExtend grouped positions: keys at floor(p/G); queries shifted by W - W/G
 * (integer division) so the grouped region starts where the neighbour window ends. */
static int32_t se_key_pos(int32_t p, int G) { return p / G; }
static int32_t se_query_pos(int32_t p, int G, int W) { return p / G + W - W / G; }

/* The rotation table of n positions under the plan into dst. */
static void upload_rotations(struct session *s, struct dbuf *dst, const int32_t *pos, int n,
                             const struct forward_plan *plan) {
    const int half = s->e->m->cfg.n_rot / 2;
    rope_cos_sin(s->h_cs, pos, n, plan->inv_freq, half, plan->mscale);
    s->e->ops->write(s->e->b, dst, 0, s->h_cs, (size_t)n * half * 2);
}

/* The positions of a chunk of n tokens (h_qpos already filled) into the device: the
 * cache's position list, the chunk's, and the rotations at them; under SelfExtend also
 * the rotations at the grouped query and key positions. */
static void upload_positions(struct session *s, int n, const struct forward_plan *plan) {
    const struct backend_ops *ops = s->e->ops;
    struct backend *b = s->e->b;
    ops->write(b, s->qpos, 0, s->h_qpos, (size_t)n);
    ops->write(b, s->pos, (size_t)s->n_past, s->h_qpos, (size_t)n);
    upload_rotations(s, s->cs, s->h_qpos, n, plan);
    if (plan->se_group > 0) {
        for (int t = 0; t < n; t++) {
            s->h_gpos[t] = se_query_pos(s->h_qpos[t], plan->se_group, plan->se_window);
            s->h_gkpos[t] = se_key_pos(s->h_qpos[t], plan->se_group);
        }
        upload_rotations(s, s->cs_q, s->h_gpos, n, plan);
        upload_rotations(s, s->cs_k, s->h_gkpos, n, plan);
    }
}

/* Moves the rows rows[0..n_out) (ascending) of a buffer of `width`-element rows to rows
 * 0..n_out-1, in place. Rows only move down (rows[i] >= i), so copying in ascending order
 * never reads a row already overwritten; a run is copied in pieces that do not overlap,
 * as a device copy within one buffer must not. */
static void gather_rows(struct session *s, struct dbuf *d, size_t width, const int32_t *rows, int n_out) {
    const struct backend_ops *ops = s->e->ops;
    for (int i = 0; i < n_out;) {
        int run = 1;
        while (i + run < n_out && rows[i + run] == rows[i] + run) run++;
        const int src = rows[i], dst = i, step = src - dst;
        for (int k = 0; step > 0 && k < run; k += step) {
            int len = run - k < step ? run - k : step;
            ops->copy(s->e->b, d, (size_t)(dst + k) * width, d, (size_t)(src + k) * width, (size_t)len * width);
        }
        i += run;
    }
}

/* Runs the n tokens of this chunk (positions uploaded) through every layer. Only the
 * n_out rows listed in h_out_rows need an output (a target to score, or the last row's
 * logits); when that is fewer than n, the last layer still computes and caches every
 * row's keys and values, then carries on with those rows only (llama.cpp does the same:
 * a prompt's other rows would be computed and thrown away). The final normed rows end
 * in s->x: all n, or the n_out listed, in their order. */
static void forward_chunk(struct session *s, const int32_t *tokens, int n, int n_out,
                          const struct forward_plan *plan) {
    const struct backend_ops *ops = s->e->ops;
    struct backend *b = s->e->b;
    const struct model_config *c = &s->e->m->cfg;
    const size_t kvd = kv_dim(c), qd = (size_t)c->n_heads * c->head_dim;
    const bool se = plan->se_group > 0;
    const struct kv_types kv = s->e->kv;

    ops->embed(b, s->x, tokens, n);
    for (int l = 0; l < c->n_layers; l++) {
        const size_t layer_row = (size_t)l * s->max_tokens;          /* this layer's cache rows */
        const size_t new_row = layer_row + (size_t)s->n_past;        /* the chunk's rows in them */

        /* keys and values of every row, into the caches */
        ops->rmsnorm(b, s->xb, s->x, l, V_ATTN_NORM, n);
        double t0 = host_monotonic_s();
        ops->matmul(b, s->kb, 0, s->xb, l, W_K, n);
        ops->matmul(b, s->vb, 0, s->xb, l, W_V, n);
        s->stats.t_matmul += host_monotonic_s() - t0;
        const bool bias = s->e->m->layers[l].bq != NULL;   /* qwen2: all three biases, or none */
        if (bias) {
            ops->add_bias(b, s->kb, 0, l, V_BK, n);
            ops->add_bias(b, s->vb, 0, l, V_BV, n);
        }
        if (se) {   /* the grouped keys are rotated from the same unrotated k */
            ops->copy(b, s->kgb, 0, s->kb, 0, (size_t)n * kvd);
            ops->rope(b, s->kgb, 0, n, c->n_kv_heads, s->cs_k);
            ops->kv_store(b, s->kg_cache, kv.k, new_row, s->kgb, n);
        }
        ops->rope(b, s->kb, 0, n, c->n_kv_heads, s->cs);
        ops->kv_store(b, s->k_cache, kv.k, new_row, s->kb, n);
        ops->kv_store(b, s->v_cache, kv.v, new_row, s->vb, n);

        int nq = n;   /* the rows that go on */
        if (l == c->n_layers - 1 && n_out < n) {
            nq = n_out;
            if (nq == 0) return;
            gather_rows(s, s->x, (size_t)c->dim, s->h_out_rows, nq);
            gather_rows(s, s->xb, (size_t)c->dim, s->h_out_rows, nq);
            gather_rows(s, s->cs, (size_t)c->n_rot, s->h_out_rows, nq);
            if (se) gather_rows(s, s->cs_q, (size_t)c->n_rot, s->h_out_rows, nq);
            ops->write(b, s->qpos, 0, s->h_out_pos, (size_t)nq);
        }
        const size_t dim_n = (size_t)nq * c->dim, ffn_n = (size_t)nq * c->ffn_dim;

        /* queries and attention */
        t0 = host_monotonic_s();
        ops->matmul(b, s->q, 0, s->xb, l, W_Q, nq);
        s->stats.t_matmul += host_monotonic_s() - t0;
        if (bias) ops->add_bias(b, s->q, 0, l, V_BQ, nq);
        if (se) {   /* the grouped copy is rotated from the same unrotated q */
            ops->copy(b, s->qg, 0, s->q, 0, (size_t)nq * qd);
            ops->rope(b, s->qg, 0, nq, c->n_heads, s->cs_q);
        }
        ops->rope(b, s->q, 0, nq, c->n_heads, s->cs);
        t0 = host_monotonic_s();
        ops->attention(b, &(struct attn_call){
            .n_q = nq, .n_kv = s->n_past + n,
            .q = s->q, .k = s->k_cache, .v = s->v_cache, .kv_row = layer_row, .kv = kv,
            .q_group = se ? s->qg : NULL, .k_group = se ? s->kg_cache : NULL, .group_window = plan->se_window,
            .q_pos = s->qpos, .k_pos = s->pos,
            .scale = 1.0f / sqrtf((float)c->head_dim), .window = plan->swa_window,
            .out = s->att,
        });
        s->stats.t_attn += host_monotonic_s() - t0;
        t0 = host_monotonic_s();
        ops->matmul(b, s->xb, 0, s->att, l, W_O, nq);
        s->stats.t_matmul += host_monotonic_s() - t0;
        ops->add(b, s->x, s->xb, dim_n);

        /* feed-forward */
        ops->rmsnorm(b, s->xb, s->x, l, V_FFN_NORM, nq);
        t0 = host_monotonic_s();
        ops->matmul(b, s->hb, 0, s->xb, l, W_GATE, nq);
        ops->matmul(b, s->hb2, 0, s->xb, l, W_UP, nq);
        s->stats.t_matmul += host_monotonic_s() - t0;
        ops->swiglu(b, s->hb, s->hb2, ffn_n);
        t0 = host_monotonic_s();
        ops->matmul(b, s->xb, 0, s->hb, l, W_DOWN, nq);
        s->stats.t_matmul += host_monotonic_s() - t0;
        ops->add(b, s->x, s->xb, dim_n);
    }
    ops->rmsnorm(b, s->x, s->x, -1, V_OUTPUT_NORM, n_out);
}

/* Lists the rows of the chunk [done, done + nc) of an n-token eval that need an output
 * (h_out_rows, with their positions and targets): those with a target >= 0, and the
 * eval's last row when its logits are asked for. Returns how many. */
static int list_output_rows(struct session *s, int done, int nc, int n, const int32_t *targets,
                            const float *last_logits) {
    int k = 0;
    for (int t = 0; t < nc; t++) {
        int32_t target = targets ? targets[done + t] : -1;
        if (target >= 0 || (last_logits && done + t == n - 1)) {
            s->h_out_rows[k] = t;
            s->h_out_pos[k] = s->h_qpos[t];
            s->h_out_tgt[k] = target;
            k++;
        }
    }
    return k;
}

/* Scores the chunk [done, done + nc) after forward_chunk left its n_out output rows in
 * s->x; logprob of the chunk's other rows is 0, as score() writes for rows without a
 * target. */
static int score_chunk(struct session *s, int done, int nc, int n, int n_out, const int32_t *targets,
                       float *logprob, float *last_logits, char *err, size_t errlen) {
    const struct backend_ops *ops = s->e->ops;
    float *chunk_last = done + nc == n ? last_logits : NULL;
    if (n_out == nc)
        return ops->score(s->e->b, s->x, nc, targets ? targets + done : NULL, logprob ? logprob + done : NULL,
                          chunk_last, err, errlen);
    int rc = n_out == 0 ? ops->sync(s->e->b, err, errlen)
                        : ops->score(s->e->b, s->x, n_out, targets ? s->h_out_tgt : NULL, logprob ? s->h_out_lp : NULL,
                                     chunk_last, err, errlen);
    if (rc == 0 && logprob) {
        memset(logprob + done, 0, (size_t)nc * sizeof(float));
        for (int k = 0; k < n_out; k++) logprob[done + s->h_out_rows[k]] = s->h_out_lp[k];
    }
    return rc;
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
    const char *why = engine_cannot_run(s->e, plan);
    if (why) {
        snprintf(err, errlen, "backend %s cannot run this plan: %s", s->e->ops->name, why);
        return -1;
    }
    return 0;
}

int session_eval(struct session *s, const int32_t *tokens, const int32_t *pos, int n,
                 const struct forward_plan *plan, const int32_t *targets, float *logprob, float *last_logits,
                 char *err, size_t errlen) {
    struct engine *e = s->e;
    const struct model_config *c = &e->m->cfg;
    if (eval_check(s, tokens, pos, n, plan, targets, logprob, err, errlen) != 0) return -1;
    if (plan->se_group > 0 && !s->kg_cache) {
        size_t elems = kv_elems(c, e->kv.k, s->max_tokens), bytes = elems * sizeof(float), avail = device_free(e);
        if (bytes > avail) {
            snprintf(err, errlen, "SelfExtend's grouped key cache needs %zu MB but only %zu MB are available",
                     bytes >> 20, avail >> 20);
            return -1;
        }
        s->kg_cache = e->ops->alloc(e->b, elems, err, errlen);
        if (!s->kg_cache) return -1;
    }
    /* A failure past this point (a kernel's scratch, a device error) rolls back to here:
     * tokens are only ever written at positions >= n_past, so restoring these leaves the
     * session as it was. */
    const int n_past0 = s->n_past, se_group0 = s->se_group, se_window0 = s->se_window;
    const struct eval_stats stats0 = s->stats;
    /* Without SelfExtend the grouped keys are not kept up to date from here on. */
    s->se_group = plan->se_group;
    s->se_window = plan->se_group > 0 ? plan->se_window : 0;
    double t0 = host_monotonic_s();
    for (int done = 0; done < n;) {
        int nc = n - done < CHUNK_TOKENS ? n - done : CHUNK_TOKENS;
        for (int t = 0; t < nc; t++) s->h_qpos[t] = pos ? pos[done + t] : s->n_past + t;
        upload_positions(s, nc, plan);
        int n_out = list_output_rows(s, done, nc, n, targets, last_logits);
        forward_chunk(s, tokens + done, nc, n_out, plan);
        double t1 = host_monotonic_s();
        int rc = score_chunk(s, done, nc, n, n_out, targets, logprob, last_logits, err, errlen);
        s->stats.t_matmul += host_monotonic_s() - t1;
        if (rc != 0) {
            s->n_past = n_past0;
            s->se_group = se_group0;
            s->se_window = se_window0;
            s->stats = stats0;
            return -1;
        }
        s->n_past += nc;
        done += nc;
        if (s->progress) s->progress(s->progress_arg, nc);
    }
    s->stats.t_total += host_monotonic_s() - t0;
    s->stats.tokens += n;
    return 0;
}
