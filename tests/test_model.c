/* Whole-model checks on stories260K: the CPU forward pass against a naive
 * double-precision forward pass written here from the llama definition, chunked
 * and cached evaluation against one-shot evaluation, and greedy generation against
 * the text quoted in ../shared/SOURCES.md. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "gguf.h"
#include "method.h"
#include "model.h"
#include "quant.h"
#include "runtime.h"
#include "synth.h"
#include "testutil.h"
#include "tokenizer.h"

static double *tensor_f64(const struct gguf_tensor *t) {
    size_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    float *f = malloc(n * sizeof *f);
    double *out = malloc(n * sizeof *out);
    cr_assert(f && out);
    dequantize_row(t->type, t->data, f, n);
    for (size_t i = 0; i < n; i++) out[i] = f[i];
    free(f);
    return out;
}

/* y[r] = sum_c W[r][c] x[c], W stored [rows][cols] (ne0 = cols) */
static void ref_matvec(const double *W, const double *x, double *y, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

static void ref_rmsnorm(const double *x, const double *w, double *y, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * w[i];
}

/* Rotates each head at position p: adjacent pairs (2i, 2i+1) for llama GGUFs,
 * halves (i, i + n_rot/2) for NEOX-style architectures (qwen2). freq_factors (NULL:
 * none) divide the frequencies, as llama.cpp does with a file's rope_freqs tensor:
 * angle = p * base^(-2i/n_rot) / freq_factors[i]. */
static void ref_rope(double *v, int n_heads, int hd, int n_rot, int p, double base, const double *freq_factors,
                     bool neox) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < n_rot / 2; i++) {
            double ang = p * pow(base, -2.0 * i / n_rot) / (freq_factors ? freq_factors[i] : 1.0);
            double *a = v + h * hd + (neox ? i : 2 * i), *b = neox ? a + n_rot / 2 : a + 1;
            double x0 = *a, x1 = *b;
            *a = x0 * cos(ang) - x1 * sin(ang);
            *b = x0 * sin(ang) + x1 * cos(ang);
        }
}

/* logprob[t] = log p(tokens[t+1] | tokens[0..t]) for t < n-1. */
static void ref_forward(const struct model *m, const int32_t *tokens, int n, double *logprob) {
    const struct model_config *c = &m->cfg;
    int D = c->dim, hd = c->head_dim, H = c->n_heads, KVH = c->n_kv_heads, F = c->ffn_dim, V = c->n_vocab;
    int qd = H * hd, kvd = KVH * hd;
    double *emb = tensor_f64(m->tok_embd), *onorm = tensor_f64(m->output_norm), *wout = tensor_f64(m->output);
    double *K = malloc(sizeof(double) * (size_t)c->n_layers * n * kvd);
    double *Vc = malloc(sizeof(double) * (size_t)c->n_layers * n * kvd);
    double *x = malloc(sizeof(double) * D), *xb = malloc(sizeof(double) * D), *q = malloc(sizeof(double) * qd);
    double *att = malloc(sizeof(double) * qd), *tmp = malloc(sizeof(double) * D), *g = malloc(sizeof(double) * F);
    double *u = malloc(sizeof(double) * F), *sc = malloc(sizeof(double) * n), *logits = malloc(sizeof(double) * V);
    bool neox = c->rope_style == ROPE_NEOX;
    /* Read from the file here, not from the loader's config: the reference must not
     * share the code it checks. */
    const struct gguf_tensor *rf = gguf_find_tensor(m->gguf, "rope_freqs.weight");
    double *freq_factors = rf ? tensor_f64(rf) : NULL;
    double **W = calloc((size_t)c->n_layers * 12, sizeof(double *));
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *lw = &m->layers[l];
        const struct gguf_tensor *ts[12] = {lw->attn_norm, lw->wq, lw->wk, lw->wv, lw->wo, lw->ffn_norm,
                                            lw->w_gate, lw->w_up, lw->w_down, lw->bq, lw->bk, lw->bv};
        for (int i = 0; i < 12; i++) W[l * 12 + i] = ts[i] ? tensor_f64(ts[i]) : NULL;
    }
    for (int t = 0; t < n; t++) {
        memcpy(x, emb + (size_t)tokens[t] * D, sizeof(double) * D);
        for (int l = 0; l < c->n_layers; l++) {
            double **w = W + l * 12;
            double *kt = K + ((size_t)l * n + t) * kvd, *vt = Vc + ((size_t)l * n + t) * kvd;
            ref_rmsnorm(x, w[0], xb, D, c->rms_eps);
            ref_matvec(w[1], xb, q, qd, D);
            ref_matvec(w[2], xb, kt, kvd, D);
            ref_matvec(w[3], xb, vt, kvd, D);
            if (w[9])
                for (int i = 0; i < qd; i++) q[i] += w[9][i];
            if (w[10])
                for (int i = 0; i < kvd; i++) kt[i] += w[10][i], vt[i] += w[11][i];
            ref_rope(q, H, hd, c->n_rot, t, c->rope_base, freq_factors, neox);
            ref_rope(kt, KVH, hd, c->n_rot, t, c->rope_base, freq_factors, neox);
            for (int h = 0; h < H; h++) {
                int kh = h / (H / KVH);
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[h * hd + i] * K[((size_t)l * n + j) * kvd + kh * hd + i];
                    sc[j] = s / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += sc[j] / sum * Vc[((size_t)l * n + j) * kvd + kh * hd + i];
                    att[h * hd + i] = o;
                }
            }
            ref_matvec(w[4], att, tmp, D, qd);
            for (int i = 0; i < D; i++) x[i] += tmp[i];
            ref_rmsnorm(x, w[5], xb, D, c->rms_eps);
            ref_matvec(w[6], xb, g, F, D);
            ref_matvec(w[7], xb, u, F, D);
            for (int i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_matvec(w[8], g, tmp, D, F);
            for (int i = 0; i < D; i++) x[i] += tmp[i];
        }
        if (t + 1 < n) {
            ref_rmsnorm(x, onorm, xb, D, c->rms_eps);
            ref_matvec(wout, xb, logits, V, D);
            double mx = -INFINITY, sum = 0;
            for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
            for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
            logprob[t] = logits[tokens[t + 1]] - mx - log(sum);
        }
    }
    for (int i = 0; i < c->n_layers * 12; i++) free(W[i]);
    free(W); free(emb); free(onorm); free(wout); free(K); free(Vc); free(x); free(xb); free(q); free(att);
    free(tmp); free(g); free(u); free(sc); free(logits); free(freq_factors);
}

static struct runtime rt;
static char err[512];

static void open_260k(void) {
    char p[1024];
    const char *o = "threads=2";
    cr_assert_eq(runtime_open(&rt, shared_path(p, sizeof p, "models/stories260K.gguf"), "cpu", o, NULL, err, sizeof err), 0,
                 "%s", err);
}

static struct forward_plan baseline_plan(float *inv) {
    model_default_inv_freq(&rt.model->cfg, rt.model->cfg.rope_base, inv);
    return (struct forward_plan){.inv_freq = inv, .mscale = 1.0f};
}

static int32_t *story_tokens(int n) {
    char p[1024];
    size_t len;
    FILE *f = fopen(shared_path(p, sizeof p, "datasets/tinystories/TinyStories-valid-first1000.txt"), "rb");
    cr_assert(f);
    char *text = malloc(65536);
    len = fread(text, 1, 65535, f);
    text[len] = 0;
    fclose(f);
    int32_t *ids;
    size_t nt;
    cr_assert_eq(tokenizer_encode(rt.model->tok, text, len, true, &ids, &nt), 0);
    cr_assert_geq(nt, (size_t)n);
    free(text);
    return ids;
}

static void close_260k(void) { runtime_close(&rt); }

TestSuite(model, .init = open_260k, .fini = close_260k, .timeout = 120);

Test(model, forward_matches_double_reference) {
    const int n = 300;
    int32_t *ids = story_tokens(n);
    float inv[64];
    struct forward_plan fp = baseline_plan(inv);
    struct session *s = session_new(rt.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    float *lp = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    cr_assert_eq(session_eval(s, ids, NULL, n - 1, &fp, ids + 1, lp, NULL, err, sizeof err), 0, "%s", err);
    ref_forward(rt.model, ids, n, ref);
    double worst = 0, sum = 0, sum_ref = 0;
    for (int t = 0; t < n - 1; t++) {
        double d = fabs(lp[t] - ref[t]);
        if (d > worst) worst = d;
        sum += lp[t];
        sum_ref += ref[t];
    }
    /* float32 activations over 5 layers: per-token log-prob within 2e-3 nats absolute,
     * mean NLL within 1e-4 relative. */
    cr_assert_lt(worst, 2e-3, "max |logprob - reference| = %g", worst);
    cr_assert_lt(fabs(sum - sum_ref) / fabs(sum_ref), 1e-4, "mean nll %g vs %g", -sum / (n - 1), -sum_ref / (n - 1));
    printf("forward vs double reference: max |dlogp| = %.2e, mean NLL %.5f vs %.5f\n", worst, -sum / (n - 1),
           -sum_ref / (n - 1));
    session_free(s);
    free(lp); free(ref); free(ids);
}

Test(model, chunked_and_cached_eval_match_one_shot) {
    const int n = 700; /* more than one internal chunk of 512 */
    int32_t *ids = story_tokens(n);
    float inv[64];
    struct forward_plan fp = baseline_plan(inv);
    struct session *s = session_new(rt.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    cr_assert_eq(session_eval(s, ids, NULL, n - 1, &fp, ids + 1, a, NULL, err, sizeof err), 0, "%s", err);
    session_reset(s);
    int pieces[] = {1, 37, 200, 300, 161};
    int done = 0;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(session_eval(s, ids + done, NULL, pieces[i], &fp, ids + done + 1, b + done, NULL, err, sizeof err), 0,
                     "%s", err);
        done += pieces[i];
    }
    cr_assert_eq(done, n - 1);
    for (int t = 0; t < n - 1; t++) cr_assert_float_eq(a[t], b[t], 2e-4, "position %d: %g vs %g", t, a[t], b[t]);
    session_free(s);
    free(a); free(b); free(ids);
}

Test(model, greedy_generation_matches_documented_text) {
    const char *expect = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                         "One day, she saw a big, red ball. She wanted to play with it, but it was too high.";
    const char *prompt = "Once upon a time";
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(rt.model->tok, prompt, strlen(prompt), true, &ids, &n), 0);
    float inv[64];
    struct forward_plan fp = baseline_plan(inv);
    struct session *s = session_new(rt.engine, 256, err, sizeof err);
    cr_assert(s);
    int V = rt.model->cfg.n_vocab;
    float *logits = malloc(sizeof(float) * V);
    cr_assert_eq(session_eval(s, ids, NULL, (int)n, &fp, NULL, NULL, logits, err, sizeof err), 0, "%s", err);
    char out[2048];
    size_t ol = strlen(prompt);
    memcpy(out, prompt, ol);
    while (ol < strlen(expect)) {
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        ol += tokenizer_decode_token(rt.model->tok, best, out + ol, sizeof out - ol - 1);
        cr_assert_eq(session_eval(s, &best, NULL, 1, &fp, NULL, NULL, logits, err, sizeof err), 0, "%s", err);
    }
    out[ol] = 0;
    cr_assert_eq(strncmp(out, expect, strlen(expect)), 0, "generated: %s", out);
    session_free(s);
    free(logits); free(ids);
}

/* Synthetic models exercise what stories260K cannot: quantized weights (checked through
 * the reference decoder in test_quant), qwen2's biases and NEOX rotation, tied output,
 * the path that dequantizes weight rows block by block instead of keeping F32, and
 * the optional tensors of real llama files (extra: q/k/v biases, rope_freqs). */
static void write_tiny(char *path, const char *arch, uint32_t type, bool tied, const struct synth_extra *extra,
                       int n_extra) {
    strcpy(path, "/tmp/ctxbench-test-model-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    struct synth_spec sp;
    cr_assert(synth_preset("tiny", &sp));
    snprintf(sp.arch, sizeof sp.arch, "%s", arch);
    sp.weight_type = type;
    sp.tied_output = tied;
    sp.weight_std = 0.08;   /* large enough that attention is far from uniform */
    sp.n_vocab = 300;
    sp.extra = extra;
    sp.n_extra = n_extra;
    cr_assert_eq(synth_write(path, &sp, err, sizeof err), 0, "%s", err);
}

/* The model's own RoPE as method baseline plans it (what ppl and sweep run). */
static struct method_plan baseline_method_plan(const struct model *m) {
    struct method_spec spec;
    struct method_plan plan;
    cr_assert_eq(method_spec_parse("baseline", &spec, err, sizeof err), 0, "%s", err);
    struct method_ctx mctx = {.cfg = &m->cfg, .target_len = m->cfg.ctx_train, .seq_len = 40};
    cr_assert_eq(method_plan(&spec, &mctx, &plan, err, sizeof err), 0, "%s", err);
    return plan;
}

static void synthetic_extra_vs_reference(const char *arch, uint32_t type, bool tied, size_t f32_budget,
                                         const struct synth_extra *extra, int n_extra) {
    char path[64];
    write_tiny(path, arch, type, tied, extra, n_extra);
    struct runtime r;
    char o[64];
    if (f32_budget) snprintf(o, sizeof o, "threads=2,f32_budget=%zu", f32_budget);
    else snprintf(o, sizeof o, "threads=2");
    cr_assert_eq(runtime_open(&r, path, "cpu", o, NULL, err, sizeof err), 0, "%s", err);
    const int n = 40, n_vocab = r.model->cfg.n_vocab;
    int32_t ids[40];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % n_vocab;
    float lp[40];
    struct method_plan plan = baseline_method_plan(r.model);
    struct forward_plan fp = method_forward_plan(&plan);
    struct session *s = session_new(r.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(session_eval(s, ids, NULL, n - 1, &fp, ids + 1, lp, NULL, err, sizeof err), 0, "%s", err);
    double ref[40];
    ref_forward(r.model, ids, n, ref);
    for (int t = 0; t < n - 1; t++)
        cr_assert_float_eq(lp[t], ref[t], 1e-3 + 1e-4 * fabs(ref[t]), "%s type %u position %d: %g vs %g", arch, type,
                           t, lp[t], ref[t]);
    session_free(s);
    runtime_close(&r);
    unlink(path);
}

static void synthetic_vs_reference(const char *arch, uint32_t type, bool tied, size_t f32_budget) {
    synthetic_extra_vs_reference(arch, type, tied, f32_budget, NULL, 0);
}

Test(synthetic, llama_q4k_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_Q4_K, false, 0);
}
Test(synthetic, llama_q8_0_tied_rowwise_dequant_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_Q8_0, true, 1);   /* 1 byte budget: no F32 copies */
}
Test(synthetic, llama_q6k_rowwise_dequant_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_Q6_K, false, 1);
}
Test(synthetic, qwen2_bias_neox_matches_reference, .timeout = 60) {
    synthetic_vs_reference("qwen2", GGML_TYPE_F16, false, 0);
}
Test(synthetic, qwen2_q5k_tied_rowwise_dequant_matches_reference, .timeout = 60) {
    synthetic_vs_reference("qwen2", GGML_TYPE_Q5_K, true, 1);
}
Test(synthetic, llama_bf16_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_BF16, false, 0);
}
Test(synthetic, llama_q4_0_rowwise_dequant_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_Q4_0, false, 1);
}
Test(synthetic, llama_f32_matches_reference, .timeout = 60) {
    synthetic_vs_reference("llama", GGML_TYPE_F32, false, 0);
}

Test(model, selfextend_needs_its_grouped_keys_from_the_start) {
    float inv[64];
    struct forward_plan plain = baseline_plan(inv), se = plain;
    se.se_group = 4;
    se.se_window = 16;
    cr_assert_gt(engine_session_bytes(rt.engine, 1024, &se), engine_session_bytes(rt.engine, 1024, NULL),
                 "SelfExtend's grouped key cache must be counted");
    struct session *s = session_new(rt.engine, 64, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t ids[8] = {1, 403, 407, 261, 378, 30, 31, 32};
    cr_assert_eq(session_eval(s, ids, NULL, 4, &plain, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    err[0] = 0;
    cr_assert_eq(session_eval(s, ids + 4, NULL, 4, &se, NULL, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "SelfExtend cannot start") != NULL, "%s", err);
    session_reset(s);   /* from the start it is fine, and so is going on with it */
    cr_assert_eq(session_eval(s, ids, NULL, 4, &se, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_eval(s, ids + 4, NULL, 4, &se, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    session_free(s);
}

/* ---- what the file says is what is computed (issue 10) ---- */

/* Llama 3.1 conversions carry rope_freqs.weight: n_rot/2 divisors of the rotary
 * frequencies. Factors well away from 1 on the high frequencies too, so dropping
 * them changes every log-prob. */
#define TINY_N_FREQ 32   /* the tiny preset: head size 64 */
static void tiny_freq_factors(float *ff) {
    for (int i = 0; i < TINY_N_FREQ; i++) ff[i] = 1.0f + 1.5f * (float)(i % 3) + 0.25f * (float)i / TINY_N_FREQ;
}

Test(synthetic, llama_rope_freqs_applied_as_the_reference_does, .timeout = 60) {
    float ff[TINY_N_FREQ];
    tiny_freq_factors(ff);
    struct synth_extra x = {"rope_freqs.weight", TINY_N_FREQ, GGML_TYPE_F32, ff};
    synthetic_extra_vs_reference("llama", GGML_TYPE_F16, false, 0, &x, 1);
}

Test(synthetic, llama_qkv_biases_match_reference, .timeout = 60) {
    const int dim = 256, kv_dim = 128;   /* tiny: 4 heads of 64, 2 KV heads */
    struct synth_extra x[6] = {
        {"blk.0.attn_q.bias", dim, GGML_TYPE_F32, NULL}, {"blk.0.attn_k.bias", kv_dim, GGML_TYPE_F32, NULL},
        {"blk.0.attn_v.bias", kv_dim, GGML_TYPE_F32, NULL}, {"blk.1.attn_q.bias", dim, GGML_TYPE_F32, NULL},
        {"blk.1.attn_k.bias", kv_dim, GGML_TYPE_F32, NULL}, {"blk.1.attn_v.bias", kv_dim, GGML_TYPE_F32, NULL},
    };
    synthetic_extra_vs_reference("llama", GGML_TYPE_F16, false, 0, x, 6);
}

/* Writes the tiny model with `extra` and expects loading to fail with an error that
 * contains each of the NULL-terminated `want` strings, on one line. */
static void expect_load_error(const char *arch, const struct synth_extra *extra, int n_extra, const char *const *want) {
    char path[64];
    write_tiny(path, arch, GGML_TYPE_F16, false, extra, n_extra);
    err[0] = 0;
    struct model *m = model_load(path, err, sizeof err);
    unlink(path);
    cr_assert_null(m, "%s with %s loaded", arch, extra[0].name);
    for (const char *const *w = want; *w; w++) cr_assert(strstr(err, *w) != NULL, "'%s' not in: %s", *w, err);
    cr_assert(strchr(err, '\n') == NULL, "not one line: %s", err);
}

Test(loader, qkv_biases_come_all_three_or_none) {
    struct synth_extra q = {"blk.1.attn_q.bias", 256, GGML_TYPE_F32, NULL};
    expect_load_error("llama", &q, 1, (const char *const[]){"blk.1", "attn_k.bias", "all three or none", NULL});
    struct synth_extra qk[2] = {{"blk.0.attn_q.bias", 256, GGML_TYPE_F32, NULL},
                                {"blk.0.attn_k.bias", 128, GGML_TYPE_F32, NULL}};
    expect_load_error("llama", qk, 2, (const char *const[]){"blk.0", "attn_v.bias", NULL});
    struct synth_extra v = {"blk.0.attn_v.bias", 128, GGML_TYPE_F32, NULL};
    expect_load_error("llama", &v, 1, (const char *const[]){"blk.0", "attn_q.bias", NULL});
}

Test(loader, tensors_it_does_not_use_are_refused_by_name) {
    /* llama.cpp's optional output and MLP biases, a layer beyond block_count, a stray name */
    const char *names[] = {"blk.0.attn_output.bias", "blk.1.ffn_down.bias", "blk.2.attn_norm.weight", "output.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct synth_extra x = {names[i], 256, GGML_TYPE_F32, NULL};
        expect_load_error("llama", &x, 1, (const char *const[]){names[i], NULL});
    }
    /* qwen2 in llama.cpp has no rope_freqs: a file with one is not a qwen2 we know */
    float ff[TINY_N_FREQ];
    tiny_freq_factors(ff);
    struct synth_extra rf = {"rope_freqs.weight", TINY_N_FREQ, GGML_TYPE_F32, ff};
    expect_load_error("qwen2", &rf, 1, (const char *const[]){"rope_freqs.weight", NULL});
}

Test(loader, rope_freqs_is_validated) {
    float ff[2 * TINY_N_FREQ];
    for (int i = 0; i < 2 * TINY_N_FREQ; i++) ff[i] = 2.0f;
    struct synth_extra x = {"rope_freqs.weight", TINY_N_FREQ + 1, GGML_TYPE_F32, ff};
    expect_load_error("llama", &x, 1, (const char *const[]){"rope_freqs.weight", "32", NULL});
    x.ne0 = TINY_N_FREQ;
    x.type = GGML_TYPE_F16;
    expect_load_error("llama", &x, 1, (const char *const[]){"rope_freqs.weight", "F32", NULL});
    x.type = GGML_TYPE_F32;
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (int b = 0; b < 4; b++) {
        ff[7] = bad[b];
        expect_load_error("llama", &x, 1, (const char *const[]){"rope_freqs.weight", "[7]", NULL});
    }
}

Test(loader, rope_freqs_reach_every_method_and_llama3_refuses) {
    float ff[TINY_N_FREQ];
    tiny_freq_factors(ff);
    struct synth_extra x = {"rope_freqs.weight", TINY_N_FREQ, GGML_TYPE_F32, ff};
    char path[64];
    write_tiny(path, "llama", GGML_TYPE_F16, false, &x, 1);
    struct model *m = model_load(path, err, sizeof err);
    unlink(path);
    cr_assert_not_null(m, "%s", err);
    struct method_plan p = baseline_method_plan(m);
    cr_assert(strstr(p.note, "rope_freqs") != NULL, "baseline does not say it used the file's factors: %s", p.note);
    cr_assert(strstr(p.note, "plain RoPE") == NULL, "%s", p.note);
    for (int i = 0; i < TINY_N_FREQ; i++) {
        double want = pow(m->cfg.rope_base, -2.0 * i / m->cfg.n_rot) / ff[i];
        cr_assert(fabs(p.inv_freq[i] - want) <= 3e-7 * want, "frequency %d: %g vs %g", i, p.inv_freq[i], want);
    }
    struct method_spec spec;
    cr_assert_eq(method_spec_parse("llama3:factor=8", &spec, err, sizeof err), 0, "%s", err);
    struct method_ctx mctx = {.cfg = &m->cfg, .target_len = 4096, .seq_len = 4096};
    err[0] = 0;
    cr_assert_neq(method_plan(&spec, &mctx, &p, err, sizeof err), 0, "llama3 applied on top of rope_freqs");
    cr_assert(strstr(err, "llama3") && strstr(err, "rope_freqs"), "%s", err);
    model_free(m);
}

/* ---- a failed eval leaves the session as it was ---- */

Test(model, failed_eval_leaves_the_session_unchanged) {
    /* The batch spans two internal chunks (512 tokens) and the bad input sits in the
     * second, so nothing may be computed before all input is checked. */
    const int n_prefix = 20, n = 600, bad_at = 550;
    int32_t *ids = story_tokens(n_prefix + n + 1);
    float inv[64];
    struct forward_plan fp = baseline_plan(inv);
    float *want = malloc(sizeof(float) * (n_prefix + n)), *got = malloc(sizeof(float) * (n_prefix + n));
    int32_t *bad = malloc(sizeof(int32_t) * n), *pos = malloc(sizeof(int32_t) * n);
    cr_assert(want && got && bad && pos);

    struct session *fresh = session_new(rt.engine, n_prefix + n, err, sizeof err);
    cr_assert(fresh, "%s", err);
    cr_assert_eq(session_eval(fresh, ids, NULL, n_prefix, &fp, ids + 1, want, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_eval(fresh, ids + n_prefix, NULL, n, &fp, ids + n_prefix + 1, want + n_prefix, NULL, err,
                             sizeof err), 0, "%s", err);
    session_free(fresh);

    struct session *s = session_new(rt.engine, n_prefix + n, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(session_eval(s, ids, NULL, n_prefix, &fp, ids + 1, got, NULL, err, sizeof err), 0, "%s", err);
    struct eval_stats before;
    session_stats(s, &before);
    const int32_t bad_ids[] = {-1, rt.model->cfg.n_vocab, 1 << 30};
    for (int b = 0; b < 3; b++) {
        memcpy(bad, ids + n_prefix, sizeof(int32_t) * n);
        bad[bad_at] = bad_ids[b];
        err[0] = 0;
        cr_assert_eq(session_eval(s, bad, NULL, n, &fp, ids + n_prefix + 1, got + n_prefix, NULL, err, sizeof err), -1);
        cr_assert(strstr(err, "token id") != NULL, "%s", err);
        cr_assert_eq(session_n_past(s), n_prefix, "a failed eval advanced the session to %d",
                     session_n_past(s));
    }
    /* a target outside the vocabulary (negative ones mean "not scored") */
    memcpy(bad, ids + n_prefix + 1, sizeof(int32_t) * n);
    bad[bad_at] = rt.model->cfg.n_vocab;
    err[0] = 0;
    cr_assert_eq(session_eval(s, ids + n_prefix, NULL, n, &fp, bad, got + n_prefix, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "target id") != NULL, "%s", err);
    cr_assert_eq(session_n_past(s), n_prefix);
    /* a negative position */
    for (int i = 0; i < n; i++) pos[i] = n_prefix + i;
    pos[bad_at] = -5;
    err[0] = 0;
    cr_assert_eq(session_eval(s, ids + n_prefix, pos, n, &fp, ids + n_prefix + 1, got + n_prefix, NULL, err,
                             sizeof err), -1);
    cr_assert(strstr(err, "position") != NULL, "%s", err);
    cr_assert_eq(session_n_past(s), n_prefix);
    struct eval_stats after;
    session_stats(s, &after);
    cr_assert_eq(after.tokens, before.tokens, "failed evals were counted");

    /* the same session goes on as if nothing had happened, bit for bit */
    cr_assert_eq(session_eval(s, ids + n_prefix, NULL, n, &fp, ids + n_prefix + 1, got + n_prefix, NULL, err,
                             sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(got, want, sizeof(float) * (n_prefix + n)), 0, "log-probs differ from a fresh session");
    session_free(s);
    free(want); free(got); free(bad); free(pos); free(ids);
}

/* ---- a thread that cannot be created is reported as such ---- */

Test(runtime, thread_creation_failure_is_named, .timeout = 60) {
    char model[1024];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* RLIMIT_NPROC binds only unprivileged users: as root, become nobody first. At
         * limit 1 the process itself uses the whole allowance, so no thread can start. */
        close(fds[0]);
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
        struct rlimit one = {1, 1};
        if (setrlimit(RLIMIT_NPROC, &one) != 0) _exit(4);
        struct runtime r;
        const char *o = "threads=4";
        char msg[512] = "";
        int rc = runtime_open(&r, model, "cpu", o, NULL, msg, sizeof msg);
        if (rc == 0) runtime_close(&r);
        if (write(fds[1], msg, strlen(msg)) < 0) _exit(5);
        _exit(rc == 0 ? 6 : 0);   /* _exit: no leak check, which would need a thread of its own */
    }
    close(fds[1]);
    char got[512];
    ssize_t len = read(fds[0], got, sizeof got - 1);
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died");
    cr_assert_eq(WEXITSTATUS(status), 0, "child status %d (3/4: could not set up the limit, 6: engine created)",
                 WEXITSTATUS(status));
    got[len > 0 ? len : 0] = 0;
    char want[256];
    snprintf(want, sizeof want, "cannot create worker thread 1 of 4: %s", strerror(EAGAIN));
    cr_assert(strstr(got, want) != NULL, "expected '%s' in: %s", want, got);
    cr_assert(strstr(got, "out of memory") == NULL, "%s", got);
}

/* Found by fuzz/fuzz_gguf: GGUF allows general.alignment 1, so an F32 tensor may start
 * at any byte, and the backend reads F32 norms and matrices in place through float
 * pointers (undefined behaviour when misaligned). The same bytes one byte off in memory
 * stand for such a file here: the loader must refuse them, and accept them aligned. */
Test(model_load, misaligned_f32_tensors_are_rejected) {
    char path[] = "/tmp/ctxbench-test-model-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    struct synth_spec sp;
    cr_assert(synth_preset("tiny", &sp));
    sp.dim = 8, sp.n_layers = 1, sp.n_heads = 2, sp.n_kv_heads = 1, sp.ffn_dim = 8, sp.n_vocab = 260;
    sp.weight_type = GGML_TYPE_F32;
    /* rope_freqs is read (its values checked) before the other tensors: it must be
     * checked for alignment before that read too */
    const float ones[2] = {1, 1};
    const struct synth_extra rope_freqs = {"rope_freqs.weight", 2, GGML_TYPE_F32, ones};
    sp.extra = &rope_freqs;
    sp.n_extra = 1;
    cr_assert_eq(synth_write(path, &sp, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n + 1);   /* malloc's alignment: buf is aligned, buf + 1 is not */
    cr_assert_eq(fread(buf + 1, 1, n, f), n);
    fclose(f);
    unlink(path);

    struct gguf *g = gguf_open_memory(buf + 1, n, "off-by-one.gguf", err, sizeof err);
    cr_assert(g, "%s", err);   /* a valid GGUF image: the reader does not care */
    cr_assert_null(model_from_gguf(g, err, sizeof err));
    cr_assert(strstr(err, "off-by-one.gguf: F32 tensor rope_freqs.weight") && strstr(err, "not 4-byte aligned"),
              "%s", err);
    cr_assert_null(strchr(err, '\n'));

    memmove(buf, buf + 1, n);
    g = gguf_open_memory(buf, n, "aligned.gguf", err, sizeof err);
    cr_assert(g, "%s", err);
    struct model *m = model_from_gguf(g, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_assert_eq(m->cfg.dim, 8);
    model_free(m);
    free(buf);
}

/* KV cache types on stories3M (README "KV cache types"), over four 512-token windows
 * (the trained context) of TinyStories, the last 16 tokens of each fed one at a time
 * (decode: split-KV attention over the cache), against the f32 cache. Measured on this
 * test's 2044 positions: f16 worst |d log-prob| 8.0e-3, mean 7.7e-4 (550 positions over
 * 1e-3), perplexity 0.004%; q8_0 worst 0.32, perplexity 0.09%. So f16 meets the 0.1%
 * perplexity bound but not 1e-3 per position, and the default stays f32 (README). The
 * bounds asserted are those measurements with about 2x margin, so a conversion that got
 * worse (or stopped being applied: f16 must change something) fails. */
static void kv_window_logprobs(const struct kv_types *kv, int n_windows, int W, float *lp) {
    struct runtime r;
    char p[1024];
    cr_assert_eq(runtime_open(&r, shared_path(p, sizeof p, "models/stories3M.gguf"), "cpu", "threads=2", kv, err,
                              sizeof err), 0, "%s", err);
    FILE *f = fopen(shared_path(p, sizeof p, "datasets/tinystories/TinyStories-valid-first1000.txt"), "rb");
    cr_assert(f);
    char *text = malloc(65536);
    size_t len = fread(text, 1, 65535, f);
    text[len] = 0;
    fclose(f);
    int32_t *ids;
    size_t nt;
    cr_assert_eq(tokenizer_encode(r.model->tok, text, len, false, &ids, &nt), 0);
    cr_assert_geq(nt, (size_t)(n_windows * (W - 1) + 1));
    float inv[64];
    model_default_inv_freq(&r.model->cfg, r.model->cfg.rope_base, inv);
    struct forward_plan fp = {.inv_freq = inv, .mscale = 1.0f};
    struct session *s = session_new(r.engine, W, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t *win = malloc(sizeof(int32_t) * (size_t)(W + 1));
    const int decode = 16;
    for (int w = 0; w < n_windows; w++) {
        win[0] = tokenizer_bos(r.model->tok);
        memcpy(win + 1, ids + (size_t)w * (W - 1), sizeof(int32_t) * (size_t)W);   /* W-1 inputs + the last target */
        session_reset(s);
        float *out = lp + (size_t)w * (W - 1);
        cr_assert_eq(session_eval(s, win, NULL, W - 1 - decode, &fp, win + 1, out, NULL, err, sizeof err), 0, "%s", err);
        for (int t = W - 1 - decode; t < W - 1; t++)
            cr_assert_eq(session_eval(s, win + t, NULL, 1, &fp, win + t + 1, out + t, NULL, err, sizeof err), 0, "%s", err);
    }
    session_free(s);
    free(win); free(ids); free(text);
    runtime_close(&r);
}

static void kv_compare(const float *a, const float *b, int n, double *worst, double *ppl_rel) {
    double sa = 0, sb = 0;
    *worst = 0;
    for (int i = 0; i < n; i++) {
        *worst = fmax(*worst, fabs((double)a[i] - b[i]));
        sa += a[i];
        sb += b[i];
    }
    *ppl_rel = fabs(exp(-sb / n) / exp(-sa / n) - 1);
}

Test(kv_cache, stories3M_f16_and_q8_0_against_f32, .timeout = 300) {
    const int n_windows = 4, W = 512, n = n_windows * (W - 1);
    float *lp32 = malloc(sizeof(float) * (size_t)n), *lp16 = malloc(sizeof(float) * (size_t)n),
          *lp8 = malloc(sizeof(float) * (size_t)n);
    kv_window_logprobs(&(struct kv_types){KV_F32, KV_F32}, n_windows, W, lp32);
    kv_window_logprobs(&(struct kv_types){KV_F16, KV_F16}, n_windows, W, lp16);
    kv_window_logprobs(&(struct kv_types){KV_Q8_0, KV_Q8_0}, n_windows, W, lp8);
    double worst16, rel16, worst8, rel8;
    kv_compare(lp32, lp16, n, &worst16, &rel16);
    kv_compare(lp32, lp8, n, &worst8, &rel8);
    cr_log_info("stories3M, %d positions: f16 cache: worst |dlogprob| %.3g, ppl rel %.3g; q8_0: %.3g, %.3g", n, worst16,
                rel16, worst8, rel8);
    double mean16 = 0;
    for (int i = 0; i < n; i++) mean16 += fabs((double)lp32[i] - lp16[i]) / n;
    if (getenv("CTX_TEST_VERBOSE"))
        fprintf(stderr, "kv f16: worst %.3g mean %.3g ppl rel %.3g; q8_0: worst %.3g ppl rel %.3g\n", worst16, mean16,
                rel16, worst8, rel8);
    cr_assert_lt(rel16, 1e-3, "f16 cache: perplexity differs from f32's by %.3g%% (bound 0.1%%)", 100 * rel16);
    cr_assert_lt(worst16, 2e-2, "f16 cache: a log-prob differs from f32's by %g (measured 8.0e-3)", worst16);
    cr_assert_lt(mean16, 2e-3, "f16 cache: log-probs differ from f32's by %g on average (measured 7.7e-4)", mean16);
    cr_assert_lt(worst8, 0.6, "q8_0 cache: a log-prob differs from f32's by %g (measured 0.32)", worst8);
    cr_assert_lt(rel8, 2e-3, "q8_0 cache: perplexity differs from f32's by %.3g%% (measured 0.09%%)", 100 * rel8);
    cr_assert(worst16 > 0, "an f16 cache that changes nothing was not used");
    free(lp32); free(lp16); free(lp8);
}

/* A session's memory follows its cache types: K and V of n positions cost layers x n x
 * kv_dim x (4 + 4) bytes as f32, (2 + 2) as f16, (34 + 34)/32 as q8_0. */
Test(kv_cache, session_bytes_follow_the_cache_types) {
    struct runtime r[3];
    char p[1024];
    const struct kv_types kv[3] = {{KV_F32, KV_F32}, {KV_F16, KV_F16}, {KV_Q8_0, KV_F16}};
    size_t bytes[3];
    const int n = 4096;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(runtime_open(&r[i], shared_path(p, sizeof p, "models/stories3M.gguf"), "cpu", "threads=1", &kv[i],
                                  err, sizeof err), 0, "%s", err);
        bytes[i] = engine_session_bytes(r[i].engine, n, NULL);
    }
    const struct model_config *c = &r[0].model->cfg;
    size_t cells = (size_t)c->n_layers * n * c->n_kv_heads * c->head_dim;
    cr_expect_eq(bytes[0] - bytes[1], cells * 4, "f16 K and V save 2 + 2 bytes a value");
    cr_expect_eq(bytes[1] - bytes[2], cells * 2 - cells / 32 * 34, "a q8_0 K costs 34 bytes per 32 values");
    /* and a session of the f16 engine really allocates that (it runs) */
    struct session *s = session_new(r[1].engine, 64, err, sizeof err);
    cr_assert(s, "%s", err);
    session_free(s);
    for (int i = 0; i < 3; i++) runtime_close(&r[i]);
}

/* Weights stay in their file's type and are dequantized a block at a time inside each
 * product; with f32_budget the whole model is dequantized at load instead. Both hand
 * sgemm the same rows in the same blocks, so prefill and decode give the same bits. */
static void eval_bits(const char *path, const char *params, float *lp, float *logits) {
    struct runtime r;
    cr_assert_eq(runtime_open(&r, path, "cpu", params, NULL, err, sizeof err), 0, "%s", err);
    const int n = 40, n_vocab = r.model->cfg.n_vocab;
    int32_t ids[40];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % n_vocab;
    struct method_plan plan = baseline_method_plan(r.model);
    struct forward_plan fp = method_forward_plan(&plan);
    struct session *s = session_new(r.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(session_eval(s, ids, NULL, n - 4, &fp, ids + 1, lp, NULL, err, sizeof err), 0, "%s", err);
    for (int t = n - 4; t < n - 1; t++)   /* decode: one row, sgemv */
        cr_assert_eq(session_eval(s, ids + t, NULL, 1, &fp, ids + t + 1, lp + t, logits, err, sizeof err), 0, "%s", err);
    session_free(s);
    runtime_close(&r);
}

Test(synthetic, weights_per_block_give_the_bits_of_weights_dequantized_at_load, .timeout = 120) {
    const uint32_t types[] = {GGML_TYPE_Q8_0, GGML_TYPE_F16, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_BF16};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        for (int tied = 0; tied < 2; tied++) {
            char path[64];
            write_tiny(path, "llama", types[k], tied, NULL, 0);
            float lp_block[40] = {0}, lp_load[40] = {0}, lg_block[300], lg_load[300];
            for (int threads = 1; threads <= 2; threads++) {
                char o1[64], o2[96];
                snprintf(o1, sizeof o1, "threads=%d", threads);
                snprintf(o2, sizeof o2, "threads=%d,f32_budget=1000000000", threads);
                eval_bits(path, o1, lp_block, lg_block);
                eval_bits(path, o2, lp_load, lg_load);
                cr_assert(memcmp(lp_block, lp_load, sizeof lp_block) == 0 && memcmp(lg_block, lg_load, sizeof lg_block) == 0,
                          "type %u tied %d threads %d: per-block dequantization changed the numbers", types[k], tied,
                          threads);
            }
            unlink(path);
        }
}

/* bench --depth: a synthetic fill leaves the session at n tokens, and an eval after it
 * runs at positions n.. (a filled session cannot be filled again). */
Test(kv_cache, synthetic_fill_sets_the_depth) {
    struct runtime r;
    char p[1024];
    cr_assert_eq(runtime_open(&r, shared_path(p, sizeof p, "models/stories3M.gguf"), "cpu", "threads=2",
                              &(struct kv_types){KV_Q8_0, KV_F16}, err, sizeof err), 0, "%s", err);
    float inv[64];
    model_default_inv_freq(&r.model->cfg, r.model->cfg.rope_base, inv);
    struct forward_plan fp = {.inv_freq = inv, .mscale = 1.0f};
    struct session *s = session_new(r.engine, 700, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(session_fill_synthetic(s, 701, err, sizeof err), -1);
    cr_assert_eq(session_fill_synthetic(s, 600, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_n_past(s), 600);
    cr_assert_eq(session_fill_synthetic(s, 10, err, sizeof err), -1);
    cr_assert(strstr(err, "empty session") && !strchr(err, '\n'), "%s", err);
    int32_t ids[100], tg[100];
    float lp[100];
    for (int i = 0; i < 100; i++) ids[i] = 10 + i, tg[i] = 11 + i;
    cr_assert_eq(session_eval(s, ids, NULL, 100, &fp, tg, lp, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_n_past(s), 700);
    for (int i = 0; i < 100; i++) cr_assert(isfinite(lp[i]) && lp[i] <= 0, "position %d: %g", 600 + i, lp[i]);
    session_free(s);
    runtime_close(&r);
}
