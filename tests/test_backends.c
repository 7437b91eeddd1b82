/* Backend conformance: every kernel of backend.h on every backend this build has and this
 * machine can run, against double-precision references written here (op by op), then
 * whole models on every backend other than the CPU against the CPU backend: per-position
 * log-probabilities of stories260K and stories3M under every registered method, and
 * synthetic models of every weight type. A backend that cannot run here is skipped with
 * its one-line reason, unless CTXBENCH_REQUIRE_BACKENDS names it (CI sets "opencl":
 * PoCL runs every OpenCL kernel on the CPU). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "engine.h"
#include "gguf.h"
#include "method.h"
#include "model.h"
#include "quant.h"
#include "rope_table.h"
#include "runtime.h"
#include "synth.h"
#include "testutil.h"
#include "tokenizer.h"

static char err[512];

/* ------------------------------------------------------------------ which backends */

static bool required(const char *name) {
    const char *req = getenv("CTXBENCH_REQUIRE_BACKENDS");
    if (!req) return false;
    size_t n = strlen(name);
    for (const char *p = req; (p = strstr(p, name)); p += n)
        if ((p == req || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return true;
    return false;
}

/* The backends to check here: every one that can run (cpu included for the op tests). A
 * required one that cannot run fails the test; any other is reported and left out. */
static int runnable_backends(const struct backend_ops **out, bool with_cpu) {
    int n = 0;
    for (int i = 0; backend_list[i]; i++) {
        const struct backend_ops *be = backend_list[i];
        if (!with_cpu && strcmp(be->name, "cpu") == 0) continue;
        const char *why = be->unavailable();
        if (why) {
            cr_assert(!required(be->name), "backend %s is required (CTXBENCH_REQUIRE_BACKENDS) but cannot run: %s",
                      be->name, why);
            cr_log_warn("backend %s skipped: %s", be->name, why);
            continue;
        }
        out[n++] = be;
    }
    const char *req = getenv("CTXBENCH_REQUIRE_BACKENDS");
    if (req)   /* a required backend this build does not have at all */
        for (const char *p = req; *p;) {
            size_t len = strcspn(p, ",");
            bool found = false;
            for (int i = 0; backend_list[i]; i++)
                found |= strlen(backend_list[i]->name) == len && strncmp(backend_list[i]->name, p, len) == 0;
            cr_assert(found, "backend %.*s is required (CTXBENCH_REQUIRE_BACKENDS) but this build does not have it",
                      (int)len, p);
            p += len + (p[len] == ',');
        }
    return n;
}

/* ------------------------------------------------------------------ models */

static void write_model(char *path, const char *arch, uint32_t type, bool tied, int n_vocab) {
    strcpy(path, "/tmp/ctxbench-backend-model-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    struct synth_spec sp;
    cr_assert(synth_preset("tiny", &sp));   /* dim 256, 4 heads over 2 kv heads (GQA), head_dim 64 */
    snprintf(sp.arch, sizeof sp.arch, "%s", arch);
    sp.weight_type = type;
    sp.tied_output = tied;
    sp.weight_std = 0.08;
    sp.norm_std = 0.3;   /* norm weights that differ, so a wrong one shows */
    sp.n_vocab = n_vocab;
    cr_assert_eq(synth_write(path, &sp, err, sizeof err), 0, "%s", err);
}

static void write_tiny(char *path, const char *arch, uint32_t type, bool tied) {
    write_model(path, arch, type, tied, 300);
}

/* A backend on a model, with helpers to move arrays in and out. */
struct dev {
    const struct backend_ops *ops;
    struct backend *b;
    const struct model *m;
};

static struct dev dev_open(const struct backend_ops *ops, const struct model *m) {
    struct dev d = {ops, NULL, m};
    d.b = ops->create(m, strcmp(ops->name, "cpu") == 0 ? "threads=2" : "", err, sizeof err);
    cr_assert(d.b, "%s: %s", ops->name, err);
    return d;
}

static struct dbuf *put(struct dev *d, const void *host, size_t n) {
    struct dbuf *buf = d->ops->alloc(d->b, n, err, sizeof err);
    cr_assert(buf, "%s: %s", d->ops->name, err);
    if (host) d->ops->write(d->b, buf, 0, host, n);
    return buf;
}

static float *get(struct dev *d, const struct dbuf *buf, size_t off, size_t n) {
    float *out = malloc(n * sizeof(float) + 1);
    cr_assert(out);
    cr_assert_eq(d->ops->read(d->b, buf, off, out, n, err, sizeof err), 0, "%s: %s", d->ops->name, err);
    return out;
}

static float *random_floats(size_t n, float amplitude, unsigned long long seed) {
    float *x = malloc(n * sizeof(float) + 1);
    cr_assert(x);
    unsigned long long s = seed;
    for (size_t i = 0; i < n; i++) x[i] = amplitude * test_rng_uniform(&s);
    return x;
}

/* A weight tensor of the model in double (dequantized by the reference decoder). */
static double *tensor_f64(const struct gguf_tensor *t, int *rows, int *cols) {
    *cols = (int)t->ne[0];
    *rows = t->n_dims > 1 ? (int)t->ne[1] : 1;
    double *w = malloc((size_t)*rows * *cols * sizeof(double));
    float *row = malloc((size_t)*cols * sizeof(float));
    cr_assert(w && row);
    size_t rb = ggml_row_bytes(t->type, (uint64_t)*cols);
    for (int r = 0; r < *rows; r++) {
        dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, row, (size_t)*cols);
        for (int c = 0; c < *cols; c++) w[(size_t)r * *cols + c] = row[c];
    }
    free(row);
    return w;
}

static const struct gguf_tensor *weight_tensor(const struct model *m, int layer, enum weight_id w) {
    if (w == W_OUTPUT) return m->output;
    const struct layer_weights *L = &m->layers[layer];
    const struct gguf_tensor *ts[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    return ts[w];
}

/* |got - want| <= tol * max(|want|, floor) everywhere (NaN fails). */
static void expect_close(const char *what, const char *backend, const float *got, const double *want, size_t n,
                         double tol, double floor_) {
    double worst = max_rel_err(got, want, n, floor_);
    cr_assert(worst <= tol, "%s on %s: max relative error %.3g > %.3g", what, backend, worst, tol);
}

/* ------------------------------------------------------------------ op by op */

/* fn on every backend, for a llama and a qwen2 (q/k/v biases, NEOX pairs) F32 model, a
 * llama with F16 matrices (kept F16 on a device and widened per product), and a llama with
 * a 9000-token vocabulary (its scoring runs in more than one block of rows). */
static void with_models(void (*fn)(struct dev *, const struct model *, const char *arch)) {
    const struct backend_ops *bes[16];
    int nb = runnable_backends(bes, true);
    const struct { const char *arch, *label; uint32_t type; int vocab; } ms[] = {
        {"llama", "llama", GGML_TYPE_F32, 300}, {"qwen2", "qwen2", GGML_TYPE_F32, 300},
        {"llama", "llama-f16", GGML_TYPE_F16, 300}, {"llama", "llama-vocab9000", GGML_TYPE_F32, 9000}};
    for (int a = 0; a < 4; a++) {
        char path[64];
        write_model(path, ms[a].arch, ms[a].type, false, ms[a].vocab);
        struct model *m = model_load(path, err, sizeof err);
        cr_assert(m, "%s", err);
        for (int i = 0; i < nb; i++) {
            struct dev d = dev_open(bes[i], m);
            fn(&d, m, ms[a].label);
            d.ops->destroy(d.b);
        }
        model_free(m);
        unlink(path);
    }
}

static void check_embed_norm_bias(struct dev *d, const struct model *m, const char *arch) {
    const struct model_config *c = &m->cfg;
    const int n = 37, dim = c->dim;
    int32_t tokens[37];
    for (int t = 0; t < n; t++) tokens[t] = (t * 97 + 5) % c->n_vocab;
    struct dbuf *x = put(d, NULL, (size_t)n * dim);
    d->ops->embed(d->b, x, tokens, n);
    float *got = get(d, x, 0, (size_t)n * dim);
    int rows, cols;
    double *emb = tensor_f64(m->tok_embd, &rows, &cols);
    double *want = malloc((size_t)n * dim * sizeof(double));
    for (int t = 0; t < n; t++)
        for (int i = 0; i < dim; i++) want[(size_t)t * dim + i] = emb[(size_t)tokens[t] * dim + i];
    expect_close("embed", d->ops->name, got, want, (size_t)n * dim, 0, 1e-30);
    free(got);

    /* rmsnorm of every weight vector, in place and out of place */
    float *xin = random_floats((size_t)n * dim, 2.0f, 11);
    d->ops->write(d->b, x, 0, xin, (size_t)n * dim);
    struct dbuf *y = put(d, NULL, (size_t)n * dim);
    const enum vec_id norms[] = {V_ATTN_NORM, V_FFN_NORM, V_OUTPUT_NORM};
    for (int k = 0; k < 3; k++) {
        const struct gguf_tensor *wt = norms[k] == V_OUTPUT_NORM ? m->output_norm
                                       : norms[k] == V_ATTN_NORM ? m->layers[1].attn_norm : m->layers[1].ffn_norm;
        const float *w = wt->data;
        for (int t = 0; t < n; t++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double)xin[(size_t)t * dim + i] * xin[(size_t)t * dim + i];
            double inv = 1.0 / sqrt(ss / dim + c->rms_eps);
            for (int i = 0; i < dim; i++) want[(size_t)t * dim + i] = xin[(size_t)t * dim + i] * inv * w[i];
        }
        d->ops->rmsnorm(d->b, y, x, 1, norms[k], n);
        got = get(d, y, 0, (size_t)n * dim);
        expect_close("rmsnorm", d->ops->name, got, want, (size_t)n * dim, 2e-6, 1e-3);
        free(got);
    }
    d->ops->rmsnorm(d->b, x, x, 1, V_ATTN_NORM, n);   /* in place: the same numbers */
    got = get(d, x, 0, (size_t)n * dim);
    {
        const float *w = m->layers[1].attn_norm->data;
        for (int t = 0; t < n; t++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double)xin[(size_t)t * dim + i] * xin[(size_t)t * dim + i];
            double inv = 1.0 / sqrt(ss / dim + c->rms_eps);
            for (int i = 0; i < dim; i++) want[(size_t)t * dim + i] = xin[(size_t)t * dim + i] * inv * w[i];
        }
        expect_close("rmsnorm in place", d->ops->name, got, want, (size_t)n * dim, 2e-6, 1e-3);
    }
    free(got);

    if (strcmp(arch, "qwen2") == 0) {   /* biases, added at an offset into a larger buffer */
        const int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
        const struct { enum vec_id v; int width; const struct gguf_tensor *t; } bs[] = {
            {V_BQ, qd, m->layers[0].bq}, {V_BK, kvd, m->layers[0].bk}, {V_BV, kvd, m->layers[0].bv}};
        for (int k = 0; k < 3; k++) {
            const size_t off = 3 * (size_t)bs[k].width, total = off + (size_t)n * bs[k].width + 5;
            float *base = random_floats(total, 1.0f, 21 + k);
            struct dbuf *buf = put(d, base, total);
            d->ops->add_bias(d->b, buf, off, 0, bs[k].v, n);
            got = get(d, buf, 0, total);
            double *wb = malloc(total * sizeof(double));
            const float *bias = bs[k].t->data;
            for (size_t i = 0; i < total; i++)
                wb[i] = base[i] + (i >= off && i < off + (size_t)n * bs[k].width ? bias[(i - off) % bs[k].width] : 0);
            expect_close("add_bias", d->ops->name, got, wb, total, 1e-7, 1e-3);
            free(got); free(wb); free(base);
            d->ops->release(d->b, buf);
        }
    }
    free(emb); free(want); free(xin);
    d->ops->release(d->b, x);
    d->ops->release(d->b, y);
}

Test(ops, embed_rmsnorm_bias, .timeout = 300) { with_models(check_embed_norm_bias); }

static void check_matmul(struct dev *d, const struct model *m, const char *arch) {
    if (strcmp(arch, "llama-vocab9000") == 0) return;
    const int ns[] = {1, 37};
    for (int w = W_Q; w <= W_OUTPUT; w++) {
        int rows, cols;
        double *W = tensor_f64(weight_tensor(m, 1, (enum weight_id)w), &rows, &cols);
        for (int k = 0; k < 2; k++) {
            const int n = ns[k];
            const size_t y_off = 2 * (size_t)rows, total = y_off + (size_t)n * rows + 7;
            float *x = random_floats((size_t)n * cols, 1.0f, 31 + w);
            float *guard = random_floats(total, 1.0f, 41 + w);
            struct dbuf *xb = put(d, x, (size_t)n * cols), *yb = put(d, guard, total);
            d->ops->matmul(d->b, yb, y_off, xb, 1, (enum weight_id)w, n);
            float *got = get(d, yb, 0, total);
            double *want = malloc(total * sizeof(double));
            for (size_t i = 0; i < total; i++) want[i] = guard[i];   /* outside [y_off, +n*rows): untouched */
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double s = 0;
                    for (int c = 0; c < cols; c++) s += (double)x[(size_t)t * cols + c] * W[(size_t)r * cols + c];
                    want[y_off + (size_t)t * rows + r] = s;
                }
            char what[64];
            snprintf(what, sizeof what, "matmul of weight %d with %d rows", w, n);
            expect_close(what, d->ops->name, got, want, total, 3e-5, 0.1);   /* |y| ~ 0.7; float sums of up to 512 terms */
            free(got); free(want); free(x); free(guard);
            d->ops->release(d->b, xb);
            d->ops->release(d->b, yb);
        }
        free(W);
    }
}

Test(ops, matmul_every_weight, .timeout = 300) { with_models(check_matmul); }

/* kv_store: rows converted into a cache at a row offset, the rest of the cache untouched;
 * every backend stores f32 (a copy) and says in cannot_run which other cache types it
 * cannot run; those it can are read back within their rounding (f16: half an ulp of
 * 11 bits; q8_0: half a scale step; the exact bits are checked in test_kernels). */
static void check_kv_store(struct dev *d, const struct model *m, const char *arch) {
    if (strcmp(arch, "llama") != 0) return;
    const struct model_config *c = &m->cfg;
    const size_t kvd = (size_t)c->n_kv_heads * c->head_dim;
    const int n = 37, row0 = 5;
    const enum kv_type types[] = {KV_F32, KV_F16, KV_Q8_0};
    float inv[64] = {0};
    struct forward_plan plan = {.inv_freq = inv, .mscale = 1};
    float *rows = random_floats((size_t)n * kvd, 3.0f, 77);
    struct dbuf *src = put(d, rows, (size_t)n * kvd);
    for (int k = 0; k < 3; k++) {
        const enum kv_type t = types[k];
        const char *why = d->ops->cannot_run(d->b, &plan, &(struct kv_types){t, t});
        if (t == KV_F32) cr_assert_null(why, "%s refuses an f32 cache: %s", d->ops->name, why);
        if (why) {
            cr_log_info("%s: %s cache refused: %s", d->ops->name, kv_type_name(t), why);
            cr_assert(!strchr(why, '\n') && strstr(why, "f32"), "%s", why);
            continue;
        }
        const size_t rb = kv_row_bytes(t, kvd), elems = ((size_t)(row0 + n + 3) * rb + 3) / 4;
        float *guard = random_floats(elems, 1.0f, 78 + k);
        struct dbuf *cache = put(d, guard, elems);
        d->ops->kv_store(d->b, cache, t, (size_t)row0, src, n);
        float *got = get(d, cache, 0, elems);
        const uint8_t *gb = (const uint8_t *)got, *guard_b = (const uint8_t *)guard;
        cr_assert(memcmp(gb, guard_b, (size_t)row0 * rb) == 0, "%s %s: rows before the stored ones changed",
                  d->ops->name, kv_type_name(t));
        const size_t end = (size_t)(row0 + n) * rb;
        cr_assert(memcmp(gb + end, guard_b + end, elems * 4 - end) == 0, "%s %s: rows after the stored ones changed",
                  d->ops->name, kv_type_name(t));
        float *back = malloc(kvd * sizeof(float));
        const uint32_t gt = t == KV_F32 ? GGML_TYPE_F32 : t == KV_F16 ? GGML_TYPE_F16 : GGML_TYPE_Q8_0;
        for (int r = 0; r < n; r++) {
            dequantize_row(gt, gb + (size_t)(row0 + r) * rb, back, kvd);
            for (size_t i = 0; i < kvd; i++) {
                double x = rows[(size_t)r * kvd + i], amax = 0;
                for (size_t b = i / 32 * 32; t == KV_Q8_0 && b < i / 32 * 32 + 32; b++)
                    amax = fmax(amax, fabs(rows[(size_t)r * kvd + b]));
                double bound = t == KV_F32 ? 0 : t == KV_F16 ? fabs(x) * 0x1p-11 + 0x1p-25 : amax / 127 * 0.51 + 1e-7;
                cr_assert(fabs(back[i] - x) <= bound, "%s %s row %d value %zu: %.9g stored as %.9g", d->ops->name,
                          kv_type_name(t), r, i, x, (double)back[i]);
            }
        }
        free(back); free(got); free(guard);
        d->ops->release(d->b, cache);
    }
    free(rows);
    d->ops->release(d->b, src);
}

Test(ops, kv_store_and_cache_types, .timeout = 300) { with_models(check_kv_store); }

static void check_rope_elementwise(struct dev *d, const struct model *m, const char *arch) {
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "qwen2") != 0) return;
    const struct model_config *c = &m->cfg;
    const int n = 29, half = c->n_rot / 2;
    /* rope on queries at an offset, from a table of scattered positions */
    const int heads = c->n_heads, width = heads * c->head_dim;
    int32_t pos[29];
    float inv[ROPE_MAX_FREQ];
    for (int t = 0; t < n; t++) pos[t] = (t * 7919) % 100000;
    for (int i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * i / c->n_rot);
    float *cs = malloc((size_t)n * half * 2 * sizeof(float));
    rope_cos_sin(cs, pos, n, inv, half, 1.1f);
    const size_t off = (size_t)width, total = off + (size_t)n * width;
    float *x = random_floats(total, 1.0f, 51);
    struct dbuf *xb = put(d, x, total), *csb = put(d, cs, (size_t)n * half * 2);
    d->ops->rope(d->b, xb, off, n, heads, csb);
    float *got = get(d, xb, 0, total);
    double *want = malloc(total * sizeof(double));
    for (size_t i = 0; i < total; i++) want[i] = x[i];
    const int step = c->rope_style == ROPE_NEOX ? 1 : 2, partner = c->rope_style == ROPE_NEOX ? half : 1;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++) {
                size_t a = off + (size_t)t * width + (size_t)h * c->head_dim + (size_t)i * step, b = a + partner;
                double co = cs[((size_t)t * half + i) * 2], si = cs[((size_t)t * half + i) * 2 + 1];
                want[a] = x[a] * co - x[b] * si;
                want[b] = x[a] * si + x[b] * co;
            }
    expect_close("rope", d->ops->name, got, want, total, 2e-5, 1e-2);
    free(got);

    /* add, swiglu, copy */
    const size_t ne = 1000;
    float *p = random_floats(ne, 3.0f, 61), *q = random_floats(ne, 3.0f, 62);
    struct dbuf *pb = put(d, p, ne), *qb = put(d, q, ne);
    d->ops->add(d->b, pb, qb, ne);
    got = get(d, pb, 0, ne);
    for (size_t i = 0; i < ne; i++) want[i] = (double)p[i] + q[i];
    expect_close("add", d->ops->name, got, want, ne, 1e-7, 1e-3);
    free(got);
    d->ops->write(d->b, pb, 0, p, ne);
    d->ops->swiglu(d->b, pb, qb, ne);
    got = get(d, pb, 0, ne);
    for (size_t i = 0; i < ne; i++) want[i] = p[i] / (1.0 + exp(-(double)p[i])) * q[i];
    expect_close("swiglu", d->ops->name, got, want, ne, 1e-5, 1e-3);
    free(got);
    d->ops->copy(d->b, pb, 100, qb, 300, 500);
    got = get(d, pb, 100, 500);
    for (size_t i = 0; i < 500; i++) want[i] = q[300 + i];
    expect_close("copy", d->ops->name, got, want, 500, 0, 1e-30);
    free(got);
    d->ops->write(d->b, pb, 700, p, 200);   /* a write at an offset leaves the rest alone */
    got = get(d, pb, 0, ne);
    for (size_t i = 0; i < ne; i++) want[i] = i >= 700 && i < 900 ? p[i - 700] : i >= 100 && i < 600 ? q[200 + i] : 0;
    for (size_t i = 0; i < 100; i++) want[i] = got[i];   /* swiglu's output, checked above */
    for (size_t i = 600; i < 700; i++) want[i] = got[i];
    for (size_t i = 900; i < ne; i++) want[i] = got[i];
    expect_close("write at an offset", d->ops->name, got, want, ne, 0, 1e-30);
    free(got);
    free(p); free(q); free(x); free(cs); free(want);
    d->ops->release(d->b, pb); d->ops->release(d->b, qb); d->ops->release(d->b, xb); d->ops->release(d->b, csb);
}

Test(ops, rope_add_swiglu_copy, .timeout = 300) { with_models(check_rope_elementwise); }

/* ------------------------------------------------------------------ attention */

struct attn_case {
    int n_q, n_kv, window, se_group_window;   /* se_group_window > 0: SelfExtend copies */
    size_t kv_rows_before;                     /* the call's cache starts this many rows into the buffer */
    struct kv_types kv;                        /* the caches' types (zero: f32) */
};

/* A cache of n values (whole rows) of type t on the device, converted by the reference
 * converters of quant.c; `rounded` gets the values it holds, which the reference then uses
 * (the cache's conversion is kv_store's, tested above). */
static struct dbuf *put_cache(struct dev *d, const float *vals, size_t n, enum kv_type t, float *rounded) {
    if (t == KV_F32) {
        memcpy(rounded, vals, n * sizeof(float));
        return put(d, vals, n);
    }
    const uint32_t gt = t == KV_F16 ? GGML_TYPE_F16 : GGML_TYPE_Q8_0;
    const size_t bytes = kv_row_bytes(t, n);
    cr_assert(bytes > 0, "%zu values do not fill whole %s blocks", n, kv_type_name(t));
    uint8_t *raw = calloc(bytes + 4, 1);
    cr_assert(raw);
    quantize_row(gt, vals, raw, n);
    dequantize_row(gt, raw, rounded, n);
    struct dbuf *b = put(d, raw, (bytes + 3) / 4);
    free(raw);
    return b;
}

static void check_attention_case(struct dev *d, const struct model *m, struct attn_case ac) {
    const struct model_config *c = &m->cfg;
    const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const size_t kv_off = ac.kv_rows_before * kvd, kv_total = kv_off + (size_t)ac.n_kv * kvd;
    float *q = random_floats((size_t)ac.n_q * qd, 1.5f, 71), *qg = random_floats((size_t)ac.n_q * qd, 1.5f, 72);
    float *k0 = random_floats(kv_total, 1.5f, 73), *kg0 = random_floats(kv_total, 1.5f, 74);
    float *v0 = random_floats(kv_total, 1.0f, 75);
    float *k = malloc(kv_total * sizeof(float) + 1), *kg = malloc(kv_total * sizeof(float) + 1);
    float *v = malloc(kv_total * sizeof(float) + 1);
    int32_t *qpos = malloc((size_t)ac.n_q * sizeof(int32_t)), *kpos = malloc((size_t)ac.n_kv * sizeof(int32_t));
    for (int j = 0; j < ac.n_kv; j++) kpos[j] = j;
    for (int i = 0; i < ac.n_q; i++) qpos[i] = ac.n_kv - ac.n_q + i;   /* the newest rows, as in a forward pass */
    const bool se = ac.se_group_window > 0;
    struct dbuf *qb = put(d, q, (size_t)ac.n_q * qd), *qgb = put(d, qg, (size_t)ac.n_q * qd);
    struct dbuf *kb = put_cache(d, k0, kv_total, ac.kv.k, k), *kgb = put_cache(d, kg0, kv_total, ac.kv.k, kg);
    struct dbuf *vb = put_cache(d, v0, kv_total, ac.kv.v, v);
    struct dbuf *qpb = put(d, qpos, (size_t)ac.n_q), *kpb = put(d, kpos, (size_t)ac.n_kv);
    struct dbuf *ob = put(d, NULL, (size_t)ac.n_q * qd);
    const float scale = 1.0f / sqrtf((float)hd);
    d->ops->attention(d->b, &(struct attn_call){
        .n_q = ac.n_q, .n_kv = ac.n_kv, .q = qb, .k = kb, .v = vb, .kv_row = ac.kv_rows_before, .kv = ac.kv,
        .q_group = se ? qgb : NULL, .k_group = se ? kgb : NULL, .group_window = ac.se_group_window,
        .q_pos = qpb, .k_pos = kpb, .scale = scale, .window = ac.window, .out = ob});
    float *got = get(d, ob, 0, (size_t)ac.n_q * qd);
    /* the reference: every logit, then a plain softmax, in double */
    double *want = calloc((size_t)ac.n_q * qd, sizeof(double)), *logit = malloc((size_t)ac.n_kv * sizeof(double));
    for (int i = 0; i < ac.n_q; i++)
        for (int h = 0; h < c->n_heads; h++) {
            const int g = h / (c->n_heads / c->n_kv_heads);
            double mx = -INFINITY;
            for (int j = 0; j < ac.n_kv; j++) {
                const int dist = qpos[i] - kpos[j];
                logit[j] = NAN;
                if (dist < 0 || (ac.window > 0 && dist >= ac.window)) continue;
                const bool grouped = se && dist >= ac.se_group_window;
                const float *qq = (grouped ? qg : q) + (size_t)i * qd + (size_t)h * hd;
                const float *kk = (grouped ? kg : k) + kv_off + (size_t)j * kvd + (size_t)g * hd;
                double s = 0;
                for (int e = 0; e < hd; e++) s += (double)qq[e] * kk[e];
                logit[j] = s * scale;
                if (logit[j] > mx) mx = logit[j];
            }
            double sum = 0;
            for (int j = 0; j < ac.n_kv; j++)
                if (!isnan(logit[j])) sum += exp(logit[j] - mx);
            double *o = want + (size_t)i * qd + (size_t)h * hd;
            for (int j = 0; j < ac.n_kv; j++) {
                if (isnan(logit[j])) continue;
                const double p = exp(logit[j] - mx) / sum;
                for (int e = 0; e < hd; e++) o[e] += p * v[kv_off + (size_t)j * kvd + (size_t)g * hd + e];
            }
        }
    char what[160];
    snprintf(what, sizeof what, "attention n_q %d n_kv %d window %d SelfExtend window %d cache offset %zu rows, "
             "caches %s/%s", ac.n_q, ac.n_kv, ac.window, ac.se_group_window, ac.kv_rows_before, kv_type_name(ac.kv.k),
             kv_type_name(ac.kv.v));
    expect_close(what, d->ops->name, got, want, (size_t)ac.n_q * qd, 2e-5, 5e-2);
    free(got); free(want); free(logit); free(q); free(qg); free(k); free(kg); free(v); free(qpos); free(kpos);
    free(k0); free(kg0); free(v0);
    struct dbuf *bufs[] = {qb, qgb, kb, kgb, vb, qpb, kpb, ob};
    for (int i = 0; i < 8; i++) d->ops->release(d->b, bufs[i]);
}

static void check_attention(struct dev *d, const struct model *m, const char *arch) {
    if (strcmp(arch, "llama") != 0) return;   /* the kernel depends on neither the weights nor the architecture */
    const struct attn_case cases[] = {
        {1, 1, 0, 0, 0, {KV_F32, KV_F32}},        /* one token */
        {1, 300, 0, 0, 5, {KV_F32, KV_F32}},      /* a decode step over a long cache, at an offset */
        {5, 70, 0, 0, 0, {KV_F32, KV_F32}},       /* partial key tiles */
        {37, 37, 0, 0, 0, {KV_F32, KV_F32}},      /* a prompt, causal within itself */
        {67, 200, 0, 0, 3, {KV_F32, KV_F32}},     /* query rows not a multiple of any work-group */
        {40, 130, 16, 0, 0, {KV_F32, KV_F32}},    /* sliding window */
        {40, 130, 1, 0, 0, {KV_F32, KV_F32}},     /* window 1: itself only */
        {48, 150, 0, 8, 2, {KV_F32, KV_F32}},     /* SelfExtend: neighbours exact, the rest grouped, one softmax */
        {48, 150, 24, 8, 0, {KV_F32, KV_F32}},    /* SelfExtend and a window together */
        /* rounded caches (K, V or both) at row offsets, against the values they hold */
        {1, 300, 0, 0, 5, {KV_F16, KV_F16}},
        {67, 200, 0, 0, 3, {KV_F16, KV_F32}},
        {40, 130, 16, 0, 1, {KV_F32, KV_F16}},
        {48, 150, 0, 8, 7, {KV_F16, KV_F16}},   /* SelfExtend's grouped keys in f16 too */
        /* q8_0 caches, alone and beside the others */
        {1, 300, 0, 0, 5, {KV_Q8_0, KV_Q8_0}},
        {67, 200, 0, 0, 3, {KV_Q8_0, KV_F16}},
        {40, 130, 16, 0, 1, {KV_F32, KV_Q8_0}},
        {48, 150, 0, 8, 7, {KV_Q8_0, KV_F32}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float inv[64] = {0};
        struct forward_plan plan = {.inv_freq = inv, .mscale = 1};
        const char *why = d->ops->cannot_run(d->b, &plan, &cases[i].kv);
        if (why) {   /* a backend may refuse a cache type, never f32 */
            cr_assert(cases[i].kv.k != KV_F32 || cases[i].kv.v != KV_F32, "%s: %s", d->ops->name, why);
            cr_log_info("%s: %s/%s caches refused: %s", d->ops->name, kv_type_name(cases[i].kv.k),
                        kv_type_name(cases[i].kv.v), why);
            continue;
        }
        check_attention_case(d, m, cases[i]);
    }
}

Test(ops, attention_tiles_gqa_swa_selfextend, .timeout = 300) { with_models(check_attention); }

/* ------------------------------------------------------------------ scoring */

static void check_score(struct dev *d, const struct model *m, const char *arch) {
    if (strcmp(arch, "qwen2") == 0) return;
    const struct model_config *c = &m->cfg;
    const int n = strcmp(arch, "llama-vocab9000") == 0 ? 600 : 37, dim = c->dim, V = c->n_vocab;
    float *x = random_floats((size_t)n * dim, 1.0f, 81);
    struct dbuf *xb = put(d, x, (size_t)n * dim);
    int32_t *targets = malloc((size_t)n * sizeof(int32_t));
    for (int t = 0; t < n; t++) targets[t] = t % 5 == 3 ? -1 : (t * 131 + 7) % V;
    float *logprob = malloc((size_t)n * sizeof(float)), *last = malloc((size_t)V * sizeof(float));
    cr_assert_eq(d->ops->score(d->b, xb, n, targets, logprob, last, err, sizeof err), 0, "%s: %s", d->ops->name, err);
    int rows, cols;
    double *W = tensor_f64(m->output, &rows, &cols);
    double *want_lp = malloc((size_t)n * sizeof(double)), *want_last = malloc((size_t)V * sizeof(double));
    double *lg = malloc((size_t)V * sizeof(double));
    for (int t = 0; t < n; t++) {
        double mx = -INFINITY, sum = 0;
        for (int r = 0; r < V; r++) {
            double s = 0;
            for (int e = 0; e < dim; e++) s += (double)x[(size_t)t * dim + e] * W[(size_t)r * dim + e];
            lg[r] = s;
            if (s > mx) mx = s;
        }
        for (int r = 0; r < V; r++) sum += exp(lg[r] - mx);
        want_lp[t] = targets[t] < 0 ? 0 : lg[targets[t]] - mx - log(sum);
        if (t == n - 1) memcpy(want_last, lg, (size_t)V * sizeof(double));
    }
    expect_close("score: log-probabilities", d->ops->name, logprob, want_lp, (size_t)n, 1e-5, 1.0);
    expect_close("score: last logits", d->ops->name, last, want_last, (size_t)V, 1e-4, 1e-1);
    /* no targets and no logits: nothing to do, and no error */
    cr_assert_eq(d->ops->score(d->b, xb, n, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    /* no targets but a logprob array: every row 0, even in the block projected for the last logits */
    for (int t = 0; t < n; t++) logprob[t] = NAN;
    cr_assert_eq(d->ops->score(d->b, xb, n, NULL, logprob, last, err, sizeof err), 0, "%s", err);
    for (int t = 0; t < n; t++) cr_assert(logprob[t] == 0.0f, "%s: row %d without a target holds %g", d->ops->name, t,
                                         logprob[t]);
    free(x); free(last); free(W); free(want_last); free(lg); free(targets); free(logprob); free(want_lp);
    d->ops->release(d->b, xb);
}

Test(ops, score_blocks_targets_and_last_logits, .timeout = 300) { with_models(check_score); }

/* ------------------------------------------------------------------ whole models */

/* The plan of a method spec for n tokens of rt's model stretched to target_len; the
 * returned forward plan points into *plan, which must outlive it. */
static struct forward_plan plan_method(const struct runtime *rt, const char *method, int target_len, int n,
                                       struct method_plan *plan) {
    struct method_spec spec;
    cr_assert_eq(method_spec_parse(method, &spec, err, sizeof err), 0, "%s", err);
    struct method_ctx mctx = {.cfg = &rt->model->cfg, .target_len = target_len, .seq_len = n};
    cr_assert_eq(method_plan(&spec, &mctx, plan, err, sizeof err), 0, "%s: %s", method, err);
    return method_forward_plan(plan);
}

/* Per-position log-probabilities of n tokens under a method spec, on backend `be`. */
static float *model_logprobs_kv(const char *model_path, const char *backend, const char *method, int target_len,
                                const int32_t *ids, int n, const struct kv_types *kv) {
    struct runtime rt;
    cr_assert_eq(runtime_open(&rt, model_path, backend, strcmp(backend, "cpu") == 0 ? "threads=2" : "", kv, err,
                              sizeof err), 0, "%s", err);
    struct method_plan plan;
    struct forward_plan fp = plan_method(&rt, method, target_len, n, &plan);
    struct session *s = session_new(rt.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    float *lp = malloc((size_t)n * sizeof(float));
    /* two calls, the second continuing from the cache, as tasks do */
    const int first = n / 3;
    cr_assert_eq(session_eval(s, ids, NULL, first, &fp, ids + 1, lp, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_eval(s, ids + first, NULL, n - 1 - first, &fp, ids + first + 1, lp + first, NULL, err,
                              sizeof err), 0, "%s", err);
    session_free(s);
    runtime_close(&rt);
    return lp;
}

static float *model_logprobs(const char *model_path, const char *backend, const char *method, int target_len,
                             const int32_t *ids, int n) {
    return model_logprobs_kv(model_path, backend, method, target_len, ids, n, NULL);
}

static int32_t *story_ids(const struct model *m, int n) {
    char p[512];
    FILE *f = fopen(shared_path(p, sizeof p, "datasets/tinystories/TinyStories-valid-first1000.txt"), "rb");
    cr_assert(f, "%s", p);
    static char text[200000];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    int32_t *ids = NULL;
    size_t got = 0;
    cr_assert_eq(tokenizer_encode(m->tok, text, len, true, &ids, &got), 0);
    cr_assert(got >= (size_t)n, "only %zu tokens", got);
    return ids;
}

static void model_vs_cpu(const char *rel, int n, const struct kv_types *kv) {
    const struct backend_ops *bes[16];
    int nb = runnable_backends(bes, false);
    if (nb == 0) cr_skip_test("no backend besides cpu can run here");
    char path[512];
    shared_path(path, sizeof path, rel);
    struct model *m = model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    int32_t *ids = story_ids(m, n);
    const int target = 2 * m->cfg.ctx_train;   /* beyond the trained length: every method does something */
    model_free(m);
    for (int mi = 0; registry_methods[mi]; mi++) {
        const char *method = registry_methods[mi]->name;
        float *ref = model_logprobs_kv(path, "cpu", method, target, ids, n, kv);
        /* With a rounded cache the bound grows by what the rounding itself moves on the
         * CPU (cpu with this cache vs cpu with f32): two backends' keys differ by ~1e-7
         * before rounding, and a value next to a rounding boundary then lands on
         * different f16 neighbours; a wrong offset or conversion moves log-probs by far more. */
        double bound = 1e-4, rounding = 0;
        if (kv && (kv->k != KV_F32 || kv->v != KV_F32)) {
            float *ref32 = model_logprobs_kv(path, "cpu", method, target, ids, n, NULL);
            for (int t = 0; t < n - 1; t++) rounding = fmax(rounding, fabs((double)ref[t] - ref32[t]));
            bound += rounding;
            free(ref32);
        }
        for (int b = 0; b < nb; b++) {
            float inv[64] = {0};
            struct forward_plan fp = {.inv_freq = inv, .mscale = 1};
            struct runtime rt;
            cr_assert_eq(runtime_open(&rt, path, bes[b]->name, "", kv, err, sizeof err), 0, "%s", err);
            const char *why = engine_cannot_run(rt.engine, &fp);
            char whys[256];
            snprintf(whys, sizeof whys, "%s", why ? why : "");
            runtime_close(&rt);
            if (why) {
                cr_log_info("%s on %s: %s", rel, bes[b]->name, whys);
                continue;
            }
            float *got = model_logprobs_kv(path, bes[b]->name, method, target, ids, n, kv);
            double worst = 0;
            int at = -1;
            for (int t = 0; t < n - 1; t++) {
                double dlt = fabs((double)got[t] - ref[t]);
                if (!(dlt <= worst)) worst = dlt, at = t;
            }
            cr_log_info("%s %s on %s, %s/%s cache: max |dlogp| %.2g vs cpu (bound %.2g: 1e-4 + the cache's rounding "
                        "on the cpu, %.2g)", rel, method, bes[b]->name, kv_type_name(kv ? kv->k : KV_F32),
                        kv_type_name(kv ? kv->v : KV_F32), worst, bound, rounding);
            cr_assert(worst <= bound, "%s, method %s, backend %s: log-prob differs from the CPU by %.3g at position %d "
                      "(bound %.3g)", rel, method, bes[b]->name, worst, at, bound);
            free(got);
        }
        free(ref);
    }
    free(ids);
}

Test(models, stories260K_every_method_matches_cpu, .timeout = 900) {
    model_vs_cpu("models/stories260K.gguf", 1024, NULL);
}

Test(models, stories3M_every_method_matches_cpu, .timeout = 900) {
    model_vs_cpu("models/stories3M.gguf", 1024, NULL);
}

/* f16 and q8_0 caches, where a backend keeps them (converted as the CPU converts them) */
Test(models, stories3M_f16_cache_matches_cpu, .timeout = 900) {
    model_vs_cpu("models/stories3M.gguf", 1024, &(struct kv_types){KV_F16, KV_F16});
}

Test(models, stories3M_q8_0_cache_matches_cpu, .timeout = 900) {
    model_vs_cpu("models/stories3M.gguf", 1024, &(struct kv_types){KV_Q8_0, KV_Q8_0});
}

Test(models, every_weight_type_matches_cpu, .timeout = 900) {
    const struct backend_ops *bes[16];
    int nb = runnable_backends(bes, false);
    if (nb == 0) cr_skip_test("no backend besides cpu can run here");
    const uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                              GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    const int n = 48;
    int32_t ids[48];
    for (int t = 0; t < n; t++) ids[t] = (t * 37 + 11) % 300;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        for (int variant = 0; variant < 2; variant++) {   /* llama separate output; qwen2 tied, biases, NEOX */
            char path[64];
            write_tiny(path, variant ? "qwen2" : "llama", types[k], variant == 1);
            float *ref = model_logprobs(path, "cpu", "baseline", 512, ids, n);
            for (int b = 0; b < nb; b++) {
                float *got = model_logprobs(path, bes[b]->name, "baseline", 512, ids, n);
                for (int t = 0; t < n - 1; t++)
                    cr_assert(fabs((double)got[t] - ref[t]) <= 1e-4,
                              "weight type %u (%s) on %s: position %d log-prob %.7g vs cpu %.7g", types[k],
                              variant ? "qwen2" : "llama", bes[b]->name, t, got[t], ref[t]);
                free(got);
            }
            free(ref);
            unlink(path);
        }
}

/* An eval that needs few outputs (a passkey's answer, a prompt's last logits) carries only
 * those rows through the last layer (engine.c, forward_chunk). Here, on every backend: the
 * same tokens with every position scored, and with a few positions scored (scattered, a
 * run, rows far down a chunk, none at all in some chunks) plus the last logits; the scored
 * positions must agree with the full pass, the others be 0, the logits agree. Three chunks
 * of 512 in two calls, methods whose attention depends on each query's own position
 * (baseline, SelfExtend's grouped queries, SWA's window). */
static bool sparse_scored(int t) {
    return t >= 600 && (t % 211 == 7 || (t > 600 && t < 604) || (t >= 700 && t < 712) || t == 1020 || t == 1098);
}

static void eval_two_calls(struct runtime *rt, const char *method, const int32_t *ids, int n, bool sparse,
                           float *lp, float *logits) {
    struct method_plan plan;
    struct forward_plan fp = plan_method(rt, method, 2 * rt->model->cfg.ctx_train, n, &plan);
    struct session *s = session_new(rt->engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t *targets = malloc((size_t)n * sizeof(int32_t));
    for (int t = 0; t < n - 1; t++) targets[t] = !sparse || sparse_scored(t) ? ids[t + 1] : -1;
    targets[n - 1] = -1;
    const int first = 600;   /* a whole chunk and a part; with sparse targets neither has an output row */
    cr_assert_eq(session_eval(s, ids, NULL, first, &fp, targets, lp, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(session_eval(s, ids + first, NULL, n - first, &fp, targets + first, lp + first, logits, err,
                              sizeof err), 0, "%s", err);
    free(targets);
    session_free(s);
}

Test(models, only_the_rows_scored_pass_the_last_layer, .timeout = 600) {
    const struct backend_ops *bes[16];
    int nb = runnable_backends(bes, true);
    char path[512];
    shared_path(path, sizeof path, "models/stories260K.gguf");
    const int n = 1100;
    const char *methods[] = {"baseline", "selfextend", "swa"};
    for (int b = 0; b < nb; b++) {
        struct runtime rt;
        cr_assert_eq(runtime_open(&rt, path, bes[b]->name, strcmp(bes[b]->name, "cpu") == 0 ? "threads=2" : "", NULL,
                                  err, sizeof err), 0, "%s", err);
        int32_t *ids = story_ids(rt.model, n);
        const int nv = rt.model->cfg.n_vocab;
        float *full = malloc(sizeof(float) * n), *part = malloc(sizeof(float) * n);
        float *full_logits = malloc(sizeof(float) * nv), *part_logits = malloc(sizeof(float) * nv);
        for (size_t mi = 0; mi < sizeof methods / sizeof methods[0]; mi++) {
            eval_two_calls(&rt, methods[mi], ids, n, false, full, full_logits);
            eval_two_calls(&rt, methods[mi], ids, n, true, part, part_logits);
            int scored = 0;
            for (int t = 0; t < n; t++) {
                bool want = t < n - 1 && sparse_scored(t);
                scored += want;
                if (want)
                    cr_assert(fabs((double)part[t] - full[t]) <= 1e-5, "%s on %s: position %d log-prob %.7g, %.7g with "
                              "every position scored", methods[mi], bes[b]->name, t, part[t], full[t]);
                else
                    cr_assert_eq(part[t], 0.0f, "%s on %s: position %d is not scored but has %g", methods[mi],
                                 bes[b]->name, t, part[t]);
            }
            cr_assert_eq(scored, 20);
            for (int v = 0; v < nv; v++)
                cr_assert(fabs((double)part_logits[v] - full_logits[v]) <= 1e-4, "%s on %s: last logit %d %.7g vs %.7g",
                          methods[mi], bes[b]->name, v, part_logits[v], full_logits[v]);
        }
        free(full); free(part); free(full_logits); free(part_logits); free(ids);
        runtime_close(&rt);
    }
}

/* ------------------------------------------------------------------ auto */

/* How many shared objects this process has mapped (lines of /proc/self/maps naming a
 * ".so" file, each counted once per distinct path). */
static int mapped_libraries(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert(f, "cannot read /proc/self/maps");
    static char seen[256][256];
    int n = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path || !strstr(path, ".so")) continue;
        path[strcspn(path, "\n")] = 0;
        bool dup = false;
        for (int i = 0; i < n && !dup; i++) dup = strcmp(seen[i], path) == 0;
        if (!dup && n < 256) snprintf(seen[n++], sizeof seen[0], "%s", path);
    }
    fclose(f);
    return n;
}

/* --backend auto asks every backend whether it can run here on every run; a backend that
 * runs on a driver (OpenCL: the ICD loader opens every vendor's library, PoCL brings
 * LLVM, about 60 MB) must answer without loading it into the process, which then runs on
 * the CPU backend. Checked by the libraries mapped: none new after auto; and the check can
 * see a driver: asking OpenCL directly maps it. */
Test(auto_choice, loads_no_driver_into_the_process) {
    int before = mapped_libraries();
    const struct backend_ops *chosen = backend_find("auto", err, sizeof err);
    cr_assert(chosen, "%s", err);
    int after = mapped_libraries();
    cr_assert_eq(after, before, "choosing a backend mapped %d more libraries into the process", after - before);
    const struct backend_ops *ocl = NULL;
    for (int i = 0; backend_list[i]; i++)
        if (strcmp(backend_list[i]->name, "opencl") == 0) ocl = backend_list[i];
    if (!ocl) cr_skip_test("this build has no OpenCL backend (auto chose %s)", chosen->name);
    if (ocl->unavailable()) {
        cr_assert(!required("opencl"), "opencl is required but cannot run");
        cr_skip_test("no OpenCL platform here (auto chose %s)", chosen->name);
    }
    cr_assert_gt(mapped_libraries(), after, "asking OpenCL in this process mapped no driver library: the check above "
                 "could not have seen one");
    /* PoCL alone (a CPU device) never wins auto; a GPU or accelerator does */
    cr_log_info("auto chose %s; OpenCL devices: %s", chosen->name, chosen == ocl ? "a GPU or accelerator" : "CPU only");
}

/* ------------------------------------------------------------------ parameter strings */

Test(params, parsed_strictly_with_one_line_errors) {
    static const char *const known[] = {"threads", "device", NULL};
    long v;
    cr_assert_eq(backend_params_check("x", "threads=2,device=1", known, err, sizeof err), 0, "%s", err);
    cr_assert_eq(backend_params_check("x", "", known, err, sizeof err), 0);
    cr_assert_eq(backend_params_check("x", NULL, known, err, sizeof err), 0);
    cr_assert_eq(backend_params_check("x", "thread=2", known, err, sizeof err), -1);
    cr_assert(strstr(err, "'thread=2'") && strstr(err, "threads, device") && !strchr(err, '\n'), "%s", err);
    cr_assert_eq(backend_params_check("x", "threads=", known, err, sizeof err), -1);
    cr_assert_eq(backend_params_check("x", "threads", known, err, sizeof err), -1);
    cr_assert_eq(backend_param_long("x", "threads=2,threads=3", "threads", 1, 8, 0, &v, err, sizeof err), 0);
    cr_assert_eq(v, 3, "the last value given wins");
    cr_assert_eq(backend_param_long("x", "device=1", "threads", 1, 8, 7, &v, err, sizeof err), 0);
    cr_assert_eq(v, 7, "absent: the default");
    const char *bad[] = {"threads=9", "threads=0", "threads=2x", "threads= 2", "threads=\t2", "threads=-1",
                         /* 64 characters: cut to 63 it would read as a valid 2 */
                         "threads=0000000000000000000000000000000000000000000000000000000000000025"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(backend_param_long("x", bad[i], "threads", 1, 8, 0, &v, err, sizeof err), -1, "%s accepted",
                     bad[i]);
        cr_assert(strstr(err, "threads=") && strstr(err, "1..8"), "%s", err);
    }
}
