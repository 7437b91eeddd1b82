/* Fuzzes the GGUF reader, the model loader and the tokenizer built from the file's
 * metadata (harness/gguf/gguf.c, model.c, tokenizer.c), and every method's planner on the
 * hyperparameters the file declares: the input is a whole GGUF image, read in memory
 * through gguf_open_memory. Checks: a rejected file gets a one-line reason; an accepted
 * one has every metadata value, string, tensor and tokenizer piece inside the image,
 * norm vectors readable as the backend reads them (float *), and method plans with
 * finite, positive frequencies. */
#include <math.h>
#include <stdint.h>

#include "dataset.h"
#include "fuzz_util.h"
#include "gguf.h"
#include "method.h"
#include "model.h"
#include "method.h"
#include "tokenizer.h"

/* Touches every byte of [p, p+n) so ASan sees a range outside the input. */
static unsigned touch(const void *p, uint64_t n) {
    const volatile unsigned char *b = p;
    unsigned acc = 0;
    for (uint64_t i = 0; i < n; i++) acc += b[i];
    return acc;
}

static void walk_metadata(const struct gguf *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        touch(kv->key.ptr, kv->key.len);
        if (kv->type == GGUF_TYPE_STRING) touch(kv->v.str.ptr, kv->v.str.len);
        if (kv->type != GGUF_TYPE_ARRAY) continue;
        if (kv->v.arr.type == GGUF_TYPE_STRING) {
            for (uint64_t k = 0; k < kv->v.arr.n; k++) {
                struct gguf_str s = gguf_arr_str(kv, k);
                touch(s.ptr, s.len);
            }
        } else if (kv->v.arr.n > 0) {
            size_t es = gguf_type_size(kv->v.arr.type);
            FUZZ_CHECK(es > 0, "array of %s accepted", gguf_type_name(kv->v.arr.type));
            touch(kv->v.arr.data, es);   /* first and last element */
            touch(kv->v.arr.data + (kv->v.arr.n - 1) * es, es);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *t = &g->tensors[i];
        touch(t->name.ptr, t->name.len);
        FUZZ_CHECK(t->nbytes > 0, "tensor of 0 bytes accepted");
        const unsigned char *d = t->data;
        touch(d, 1);
        touch(d + t->nbytes - 1, 1);
    }
}

/* Reads an F32 vector the way cpu_backend.c does: through a float pointer. */
static float vector_sum(const struct gguf_tensor *t) {
    if (!t) return 0;
    const float *v = t->data;
    return v[0] + v[t->ne[0] - 1];
}

static void exercise_model(const struct model *m) {
    const struct model_config *c = &m->cfg;
    volatile float sink = vector_sum(m->output_norm);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        sink += vector_sum(w->attn_norm) + vector_sum(w->ffn_norm) + vector_sum(w->bq) + vector_sum(w->bk) +
                vector_sum(w->bv);
    }
    (void)sink;

    /* Every method with its defaults at the trained length and at 4x it. */
    char err[512];
    for (int i = 0; registry_methods[i]; i++) {
        struct method_spec spec;
        FUZZ_CHECK(method_spec_parse(registry_methods[i]->name, &spec, err, sizeof err) == 0, "%s", err);
        for (int mult = 1; mult <= 4; mult *= 4) {
            int len = c->ctx_train > (1 << 22) ? c->ctx_train : c->ctx_train * mult;
            struct method_ctx ctx = {.cfg = c, .target_len = len, .seq_len = len};
            struct method_plan plan;
            if (method_plan(&spec, &ctx, &plan, err, sizeof err) != 0) {
                fuzz_check_error(err);
                continue;
            }
            FUZZ_CHECK(plan.n_freq >= 0 && plan.n_freq <= ROPE_MAX_FREQ, "%s: n_freq %d", spec.text, plan.n_freq);
            for (int f = 0; f < plan.n_freq; f++)
                FUZZ_CHECK(isfinite(plan.inv_freq[f]) && plan.inv_freq[f] > 0, "%s: inv_freq[%d] = %g", spec.text,
                           f, plan.inv_freq[f]);
            FUZZ_CHECK(isfinite(plan.mscale) && plan.mscale > 0, "%s: mscale %g", spec.text, plan.mscale);
        }
    }

    if (!m->tok) return;
    const struct tokenizer *t = m->tok;
    int32_t nv = tokenizer_n_vocab(t);
    for (int32_t id = 0; id < nv; id++) {
        size_t len;
        const char *p = tokenizer_piece(t, id, &len);
        touch(p, len);
        char buf[8];
        size_t full = tokenizer_decode_token(t, id, buf, sizeof buf);
        touch(buf, full < sizeof buf ? full : sizeof buf);
    }
    static const char text[] = "Once upon a time, 123 ducks said \"Hello!\"\n\n  \xC3\xBC\xE4\xBD\xA0 \xF0\x9F\x98\x80.";
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(t, text, sizeof text - 1, tokenizer_bos(t) >= 0, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < nv, "id %d of %d", ids[i], nv);
        free(ids);
    }
    char hex[65];
    if (dataset_tokenizer_hash(m, hex, err, sizeof err) != 0) fuzz_check_error(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    struct gguf *g = gguf_open_memory(data, size, "fuzz.gguf", err, sizeof err);
    if (!g) {
        fuzz_check_error(err);
        return 0;
    }
    walk_metadata(g);
    struct model *m = model_from_gguf(g, err, sizeof err);
    if (!m) {
        fuzz_check_error(err);
        return 0;
    }
    exercise_model(m);
    model_free(m);
    return 0;
}
