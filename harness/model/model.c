/* Reads a llama-family model's hyperparameters and weight tensors from GGUF and
 * checks every shape against them, so the forward pass can trust the sizes. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"
#include "input.h"

/* "<arch>.<suffix>" */
static const char *arch_key(char *buf, size_t cap, const char *arch, const char *suffix) {
    snprintf(buf, cap, "%s.%s", arch, suffix);
    return buf;
}

static bool get_int(const struct gguf *g, const char *arch, const char *suffix, int64_t lo, int64_t hi,
                    int *out, bool required, char *err, size_t errlen) {
    char key[128];
    uint64_t v;
    arch_key(key, sizeof key, arch, suffix);
    if (!gguf_get_u64(g, key, &v)) {
        if (!required) return true;
        snprintf(err, errlen, "%s: missing or non-integer metadata key %s", g->path, key);
        return false;
    }
    if ((int64_t)v < lo || (int64_t)v > hi) {
        snprintf(err, errlen, "%s: metadata %s = %lld is outside [%lld, %lld]", g->path, key,
                 (long long)v, (long long)lo, (long long)hi);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool get_float(const struct gguf *g, const char *arch, const char *suffix, double *out) {
    char key[128];
    return gguf_get_f64(g, arch_key(key, sizeof key, arch, suffix), out);
}

static int read_config(const struct gguf *g, struct model_config *c, char *err, size_t errlen) {
    struct gguf_str s;
    memset(c, 0, sizeof *c);
    if (!gguf_get_str(g, "general.architecture", &s)) {
        snprintf(err, errlen, "%s: missing general.architecture", g->path);
        return -1;
    }
    if (s.len >= sizeof c->arch_name) s.len = sizeof c->arch_name - 1;
    memcpy(c->arch_name, s.ptr, s.len);
    c->arch_name[s.len] = 0;
    if (strcmp(c->arch_name, "llama") == 0) {
        c->arch = ARCH_LLAMA;
        c->rope_style = ROPE_NORM;
    } else if (strcmp(c->arch_name, "qwen2") == 0) {
        c->arch = ARCH_QWEN2;
        c->rope_style = ROPE_NEOX;
    } else {
        snprintf(err, errlen, "%s: architecture '%s' is not supported (supported: llama, qwen2)", g->path,
                 ECHO(c->arch_name));
        return -1;
    }
    const char *a = c->arch_name;
    const int64_t big = 1 << 20;
    if (!get_int(g, a, "embedding_length", 1, big, &c->dim, true, err, errlen) ||
        !get_int(g, a, "block_count", 1, 4096, &c->n_layers, true, err, errlen) ||
        !get_int(g, a, "attention.head_count", 1, 4096, &c->n_heads, true, err, errlen) ||
        !get_int(g, a, "feed_forward_length", 1, big, &c->ffn_dim, true, err, errlen) ||
        !get_int(g, a, "context_length", 1, 1 << 26, &c->ctx_train, true, err, errlen))
        return -1;
    c->n_kv_heads = c->n_heads;
    if (!get_int(g, a, "attention.head_count_kv", 1, 4096, &c->n_kv_heads, false, err, errlen)) return -1;
    if (c->dim % c->n_heads != 0) {
        snprintf(err, errlen, "%s: embedding_length %d is not a multiple of head_count %d", g->path, c->dim,
                 c->n_heads);
        return -1;
    }
    c->head_dim = c->dim / c->n_heads;
    if (!get_int(g, a, "attention.key_length", 1, 4096, &c->head_dim, false, err, errlen)) return -1;
    if (c->n_heads % c->n_kv_heads != 0) {
        snprintf(err, errlen, "%s: head_count %d is not a multiple of head_count_kv %d", g->path, c->n_heads,
                 c->n_kv_heads);
        return -1;
    }
    c->n_rot = c->head_dim;
    if (!get_int(g, a, "rope.dimension_count", 2, 4096, &c->n_rot, false, err, errlen)) return -1;
    if (c->n_rot > c->head_dim || c->n_rot % 2 != 0 || c->n_rot / 2 > ROPE_MAX_FREQ) {
        snprintf(err, errlen, "%s: rope.dimension_count %d must be even and at most the head size %d", g->path,
                 c->n_rot, c->head_dim);
        return -1;
    }
    c->rope_base = 10000.0;
    get_float(g, a, "rope.freq_base", &c->rope_base);
    if (!(c->rope_base > 1.0) || !isfinite(c->rope_base)) {
        snprintf(err, errlen, "%s: rope.freq_base %g is not a valid RoPE base", g->path, c->rope_base);
        return -1;
    }
    c->rms_eps = 1e-5;
    get_float(g, a, "attention.layer_norm_rms_epsilon", &c->rms_eps);
    if (!(c->rms_eps > 0) || c->rms_eps > 1) {
        snprintf(err, errlen, "%s: attention.layer_norm_rms_epsilon %g is out of range", g->path, c->rms_eps);
        return -1;
    }
    if (!get_int(g, a, "attention.sliding_window", 0, 1 << 26, &c->sliding_window, false, err, errlen))
        return -1;

    struct rope_scaling_meta *rs = &c->rope_scaling;
    strcpy(rs->type, "none");
    char key[128];
    if (gguf_get_str(g, arch_key(key, sizeof key, a, "rope.scaling.type"), &s)) {
        size_t n = s.len < sizeof rs->type - 1 ? s.len : sizeof rs->type - 1;
        memcpy(rs->type, s.ptr, n);
        rs->type[n] = 0;
    }
    get_float(g, a, "rope.scaling.factor", &rs->factor);
    double scale_linear = 0;   /* older GGUFs: rope.scale_linear */
    if (rs->factor == 0 && get_float(g, a, "rope.scale_linear", &scale_linear) && scale_linear > 0) {
        rs->factor = scale_linear;
        strcpy(rs->type, "linear");
    }
    uint64_t orig = 0;
    if (gguf_get_u64(g, arch_key(key, sizeof key, a, "rope.scaling.original_context_length"), &orig))
        rs->original_ctx = (int64_t)orig;
    get_float(g, a, "rope.scaling.attn_factor", &rs->attn_factor);
    get_float(g, a, "rope.scaling.yarn_log_multiplier", &rs->yarn_log_multiplier);
    if (rs->factor < 0 || !isfinite(rs->factor)) {
        snprintf(err, errlen, "%s: rope.scaling.factor %g is invalid", g->path, rs->factor);
        return -1;
    }
    return 0;
}

/* Finds a tensor, marks it as read (used[i] for g->tensors[i]) and checks its shape is
 * exactly (ne0, ne1) (ne1 = 1 for vectors). */
static const struct gguf_tensor *want(const struct gguf *g, bool *used, const char *name, uint64_t ne0,
                                      uint64_t ne1, bool required, char *err, size_t errlen, bool *ok) {
    const struct gguf_tensor *t = gguf_find_tensor(g, name);
    if (t) used[t - g->tensors] = true;
    if (!t) {
        if (required) {
            snprintf(err, errlen, "%s: missing tensor %s", g->path, name);
            *ok = false;
        }
        return NULL;
    }
    uint64_t n1 = t->n_dims >= 2 ? t->ne[1] : 1;
    bool extra = t->n_dims > 2 && (t->ne[2] != 1 || (t->n_dims > 3 && t->ne[3] != 1));
    if (t->ne[0] != ne0 || n1 != ne1 || extra) {
        snprintf(err, errlen, "%s: tensor %s has shape [%llu, %llu], expected [%llu, %llu]", g->path, name,
                 (unsigned long long)t->ne[0], (unsigned long long)n1, (unsigned long long)ne0,
                 (unsigned long long)ne1);
        *ok = false;
        return NULL;
    }
    return t;
}

/* False + reason when t is an F32 tensor whose data is not 4-byte aligned. */
static bool f32_aligned(const struct gguf *g, const struct gguf_tensor *t, char *err, size_t errlen) {
    if (!t || t->type != GGML_TYPE_F32 || (uintptr_t)t->data % sizeof(float) == 0) return true;
    snprintf(err, errlen,
             "%s: F32 tensor %.*s is not 4-byte aligned (file offset %llu, general.alignment %llu); "
             "ctxbench reads F32 tensors in place",
             g->path, (int)t->name.len, t->name.ptr, (unsigned long long)((const uint8_t *)t->data - g->map),
             (unsigned long long)g->alignment);
    return false;
}

/* rope_freqs.weight (llama.cpp LLM_TENSOR_ROPE_FREQS, written by convert_hf_to_gguf for
 * Llama 3.1's "llama3" rope scaling): n_rot/2 F32 divisors of the rotary frequencies,
 * theta_i = base^(-2i/n_rot) / rope_freqs[i]. NULL when absent; false + err when unusable. */
static bool read_rope_freqs(const struct gguf *g, bool *used, const struct model_config *c, const float **out,
                            char *err, size_t errlen) {
    bool ok = true;
    const struct gguf_tensor *t = want(g, used, "rope_freqs.weight", (uint64_t)c->n_rot / 2, 1, false, err, errlen, &ok);
    *out = NULL;
    if (!ok || !t) return ok;
    if (t->type != GGML_TYPE_F32) {
        char tb[16];
        snprintf(err, errlen, "%s: tensor rope_freqs.weight is %s; it must be F32", g->path,
                 ggml_type_name(t->type, tb, sizeof tb));
        return false;
    }
    if (!f32_aligned(g, t, err, errlen)) return false;   /* read in place below and by every plan */
    const float *f = t->data;
    for (int i = 0; i < c->n_rot / 2; i++)
        if (!isfinite(f[i]) || !(f[i] > 0)) {
            snprintf(err, errlen, "%s: rope_freqs.weight[%d] = %g is not a finite positive frequency divisor", g->path,
                     i, (double)f[i]);
            return false;
        }
    *out = f;
    return true;
}

static uint64_t tensor_elems(const struct gguf_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

struct model *model_load(const char *path, char *err, size_t errlen) {
    struct gguf *g = gguf_open(path, err, errlen);
    return g ? model_from_gguf(g, err, errlen) : NULL;
}

struct model *model_from_gguf(struct gguf *g, char *err, size_t errlen) {
    const char *path = g->path;
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        gguf_close(g);
        return NULL;
    }
    m->gguf = g;
    struct model_config *c = &m->cfg;
    bool *used = NULL;   /* used[i]: g->tensors[i] was read */
    if (read_config(g, c, err, errlen) != 0) goto fail;

    /* Every tensor of the file must be read: one the loader does not know would be
     * dropped, and a different model than the file describes measured. */
    used = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *used);
    if (!used) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    bool ok = true;
    const uint64_t q_dim = (uint64_t)c->n_heads * c->head_dim, kv_dim = (uint64_t)c->n_kv_heads * c->head_dim;
    const struct gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims < 2) {
        snprintf(err, errlen, "%s: missing 2-D tensor token_embd.weight", path);
        goto fail;
    }
    if (emb->ne[1] > (1u << 24)) {
        snprintf(err, errlen, "%s: token_embd.weight has an absurd vocabulary of %llu rows", path,
                 (unsigned long long)emb->ne[1]);
        goto fail;
    }
    c->n_vocab = (int)emb->ne[1];
    m->tok_embd = want(g, used, "token_embd.weight", c->dim, c->n_vocab, true, err, errlen, &ok);
    m->output_norm = want(g, used, "output_norm.weight", c->dim, 1, true, err, errlen, &ok);
    m->output = want(g, used, "output.weight", c->dim, c->n_vocab, false, err, errlen, &ok);
    if (!ok) goto fail;
    c->tied_output = m->output == NULL;
    if (!m->output) m->output = m->tok_embd;
    /* llama.cpp reads rope_freqs for llama only (its qwen2 graph has no frequency factors). */
    if (c->arch == ARCH_LLAMA && !read_rope_freqs(g, used, c, &c->rope_freqs, err, errlen)) goto fail;

    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (int l = 0; l < c->n_layers && ok; l++) {
        struct layer_weights *w = &m->layers[l];
        char name[96];
#define T(field, suffix, ne0, ne1, req) \
    (snprintf(name, sizeof name, "blk.%d." suffix, l), w->field = want(g, used, name, ne0, ne1, req, err, errlen, &ok))
        T(attn_norm, "attn_norm.weight", c->dim, 1, true);
        T(wq, "attn_q.weight", c->dim, q_dim, true);
        T(wk, "attn_k.weight", c->dim, kv_dim, true);
        T(wv, "attn_v.weight", c->dim, kv_dim, true);
        T(wo, "attn_output.weight", q_dim, c->dim, true);
        T(ffn_norm, "ffn_norm.weight", c->dim, 1, true);
        T(w_gate, "ffn_gate.weight", c->dim, c->ffn_dim, true);
        T(w_up, "ffn_up.weight", c->dim, c->ffn_dim, true);
        T(w_down, "ffn_down.weight", c->ffn_dim, c->dim, true);
        bool bias = c->arch == ARCH_QWEN2;   /* qwen2 always has them; llama files may */
        T(bq, "attn_q.bias", q_dim, 1, bias);
        T(bk, "attn_k.bias", kv_dim, 1, bias);
        T(bv, "attn_v.bias", kv_dim, 1, bias);
#undef T
        int n_bias = (w->bq != NULL) + (w->bk != NULL) + (w->bv != NULL);
        if (ok && n_bias != 0 && n_bias != 3) {
            /* The forward pass adds all three or none; llama.cpp would add some and not
             * others, which no trained model does. */
            snprintf(err, errlen, "%s: blk.%d has %s but no %s; q/k/v biases come all three or none", path, l,
                     w->bq ? "attn_q.bias" : w->bk ? "attn_k.bias" : "attn_v.bias",
                     !w->bq ? "attn_q.bias" : !w->bk ? "attn_k.bias" : "attn_v.bias");
            ok = false;
        }
    }
    if (!ok) goto fail;
    uint64_t n_unknown = 0, first_unknown = 0;
    for (uint64_t i = g->n_tensors; i-- > 0;)
        if (!used[i]) n_unknown++, first_unknown = i;
    if (n_unknown) {
        const struct gguf_tensor *t = &g->tensors[first_unknown];
        snprintf(err, errlen, "%s: tensor %.*s is not one ctxbench reads for %s (%llu such tensor%s): it would be "
                 "ignored and a different model measured", path, (int)t->name.len, t->name.ptr, c->arch_name,
                 (unsigned long long)n_unknown, n_unknown == 1 ? "" : "s");
        goto fail;
    }
    free(used);
    used = NULL;

    /* Norm vectors and biases are used as float directly. */
    for (int l = 0; l < c->n_layers; l++) {
        const struct gguf_tensor *vecs[] = {m->layers[l].attn_norm, m->layers[l].ffn_norm, m->layers[l].bq,
                                            m->layers[l].bk, m->layers[l].bv};
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
            if (vecs[i] && vecs[i]->type != GGML_TYPE_F32) {
                snprintf(err, errlen, "%s: tensor %.*s must be F32", path, (int)vecs[i]->name.len,
                         vecs[i]->name.ptr);
                goto fail;
            }
    }
    if (m->output_norm->type != GGML_TYPE_F32) {
        snprintf(err, errlen, "%s: tensor output_norm.weight must be F32", path);
        goto fail;
    }

    /* F32 tensors are read in place through float pointers, which needs 4-byte alignment;
     * a file with general.alignment 1 or 2 may place them anywhere. */
    bool aligned = f32_aligned(g, m->tok_embd, err, errlen) && f32_aligned(g, m->output_norm, err, errlen) &&
                   f32_aligned(g, m->output, err, errlen);
    for (int l = 0; l < c->n_layers && aligned; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct gguf_tensor *used[] = {w->attn_norm, w->wq, w->wk,       w->wv,     w->wo,   w->bq,
                                            w->bk,        w->bv, w->ffn_norm, w->w_gate, w->w_up, w->w_down};
        for (size_t i = 0; i < sizeof used / sizeof used[0] && aligned; i++)
            aligned = f32_aligned(g, used[i], err, errlen);
    }
    if (!aligned) goto fail;

    /* Parameter count and the dominant matrix type, for reports. */
    uint64_t by_type[64] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t n = tensor_elems(&g->tensors[i]);
        m->n_params += n;
        if (g->tensors[i].n_dims >= 2 && g->tensors[i].type < 64) by_type[g->tensors[i].type] += n;
    }
    int best = 0;
    for (int t = 0; t < 64; t++)
        if (by_type[t] > by_type[best]) best = t;
    char buf[16];
    snprintf(m->weight_type, sizeof m->weight_type, "%s", ggml_type_name((uint32_t)best, buf, sizeof buf));

    if (gguf_find_kv(g, "tokenizer.ggml.model")) {
        m->tok = tokenizer_load(g, err, errlen);
        if (!m->tok) goto fail;
        if (tokenizer_n_vocab(m->tok) != c->n_vocab) {
            snprintf(err, errlen, "%s: tokenizer has %d tokens but token_embd.weight has %d rows", path,
                     tokenizer_n_vocab(m->tok), c->n_vocab);
            goto fail;
        }
    }
    return m;
fail:
    free(used);
    model_free(m);
    return NULL;
}

void model_free(struct model *m) {
    if (!m) return;
    if (m->tok) tokenizer_free(m->tok);
    free(m->layers);
    gguf_close(m->gguf);
    free(m);
}

void model_default_inv_freq(const struct model_config *c, double base, float *out) {
    for (int i = 0; i < c->n_rot / 2; i++)
        out[i] = (float)(pow(base, -2.0 * i / c->n_rot) / (c->rope_freqs ? (double)c->rope_freqs[i] : 1.0));
}
