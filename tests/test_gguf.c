/* GGUF reader tests: real files from ../shared, writer->reader round trips,
 * and rejection of corrupt files (each must fail with a specific message). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "gguf.h"
#include "testutil.h"

static struct gguf *open_shared(const char *rel) {
    char path[1024], err[512];
    struct gguf *g = gguf_open(shared_path(path, sizeof path, rel), err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    return g;
}

Test(gguf_shared, stories260k_metadata_and_tensors) {
    struct gguf *g = open_shared("models/stories260K.gguf");
    uint64_t v;
    cr_expect_eq(g->version, 3);
    cr_assert(gguf_get_u64(g, "llama.context_length", &v)); cr_expect_eq(v, 512);
    cr_assert(gguf_get_u64(g, "llama.embedding_length", &v)); cr_expect_eq(v, 64);
    cr_assert(gguf_get_u64(g, "llama.block_count", &v)); cr_expect_eq(v, 5);
    cr_assert(gguf_get_u64(g, "llama.attention.head_count", &v)); cr_expect_eq(v, 8);
    cr_assert(gguf_get_u64(g, "llama.attention.head_count_kv", &v)); cr_expect_eq(v, 4);
    cr_assert(gguf_get_u64(g, "llama.feed_forward_length", &v)); cr_expect_eq(v, 172);
    double eps;
    cr_assert(gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps));
    cr_expect(fabs(eps - 1e-5) < 1e-10);
    struct gguf_str s;
    cr_assert(gguf_get_str(g, "general.architecture", &s));
    cr_expect(gguf_str_eq(s, "llama"));
    cr_expect(!gguf_get_u64(g, "general.architecture", &v), "a string is not an integer");
    cr_expect(!gguf_get_u64(g, "no.such.key", &v));

    const struct gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
    cr_assert(tok != NULL);
    cr_assert_eq(tok->type, GGUF_TYPE_ARRAY);
    cr_assert_eq(tok->v.arr.type, GGUF_TYPE_STRING);
    cr_assert_eq(tok->v.arr.n, 512);
    cr_expect(gguf_str_eq(gguf_arr_str(tok, 0), "<unk>"));
    cr_expect(gguf_str_eq(gguf_arr_str(tok, 1), "<s>"));
    cr_expect(gguf_str_eq(gguf_arr_str(tok, 2), "</s>"));

    cr_expect_eq(g->n_tensors, 3 + 9 * 5);   /* embd, output_norm, output + 9 per layer */
    const struct gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    cr_assert(t != NULL);
    cr_expect_eq(t->type, GGML_TYPE_F32);
    cr_expect_eq(t->n_dims, 2);
    cr_expect_eq(t->ne[0], 64); cr_expect_eq(t->ne[1], 512);
    cr_expect_eq(t->nbytes, 64 * 512 * 4);
    t = gguf_find_tensor(g, "blk.4.ffn_down.weight");
    cr_assert(t != NULL);
    cr_expect_eq(t->ne[0], 172); cr_expect_eq(t->ne[1], 64);
    t = gguf_find_tensor(g, "blk.0.attn_k.weight");
    cr_assert(t != NULL);
    cr_expect_eq(t->ne[0], 64); cr_expect_eq(t->ne[1], 32);
    cr_expect(gguf_find_tensor(g, "blk.5.attn_q.weight") == NULL);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *ti = &g->tensors[i];
        cr_expect((const uint8_t *)ti->data >= g->map + g->data_offset);
        cr_expect((const uint8_t *)ti->data + ti->nbytes <= g->map + g->size);
        cr_expect_eq(ti->offset % g->alignment, 0);
    }
    /* The RMS-norm weights of a trained model are not all zero or garbage. */
    t = gguf_find_tensor(g, "output_norm.weight");
    const float *w = t->data;
    double sum = 0;
    for (int i = 0; i < 64; i++) { cr_assert(isfinite(w[i])); sum += fabs(w[i]); }
    cr_expect(sum > 1.0);
    gguf_close(g);
}

Test(gguf_shared, other_models_and_vocab_files) {
    struct gguf *g = open_shared("models/stories3M.gguf");
    uint64_t v;
    cr_assert(gguf_get_u64(g, "llama.embedding_length", &v)); cr_expect_eq(v, 192);
    cr_expect_eq(g->n_tensors, 3 + 9 * 6);
    gguf_close(g);

    g = open_shared("models/llama-2-tiny-random.gguf");
    const struct gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    cr_assert(t != NULL);
    cr_expect_eq(t->type, GGML_TYPE_F16);
    cr_expect_eq(t->ne[0], 8); cr_expect_eq(t->ne[1], 32000);
    cr_expect_eq(t->nbytes, 8 * 32000 * 2);
    gguf_close(g);

    g = open_shared("models/vocab/ggml-vocab-llama-spm.gguf");
    cr_expect_eq(g->n_tensors, 0);
    const struct gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.add_bos_token");
    cr_assert(kv != NULL);
    cr_expect_eq(kv->type, GGUF_TYPE_BOOL);
    cr_expect_eq(kv->v.u64, 1);
    kv = gguf_find_kv(g, "tokenizer.ggml.tokens");
    cr_assert(kv != NULL);
    cr_expect_eq(kv->v.arr.n, 32000);
    gguf_close(g);

    g = open_shared("models/vocab/ggml-vocab-gpt-2.gguf");
    kv = gguf_find_kv(g, "tokenizer.ggml.merges");
    cr_assert(kv != NULL);
    cr_expect_eq(kv->v.arr.n, 50000);
    cr_expect(gguf_str_eq(gguf_arr_str(kv, 0), "Ġ t"));
    gguf_close(g);
}

Test(gguf_reject, not_gguf_and_missing) {
    char path[1024], err[512];
    cr_expect(gguf_open(shared_path(path, sizeof path, "models/stories260K.bin"), err, sizeof err) == NULL);
    cr_expect(strstr(err, "not a GGUF file") != NULL, "%s", err);
    cr_expect(strstr(err, "stories260K.bin") != NULL, "%s", err);
    cr_expect(gguf_open("/nonexistent/x.gguf", err, sizeof err) == NULL);
    cr_expect(strstr(err, "/nonexistent/x.gguf: cannot open") != NULL, "%s", err);
}
