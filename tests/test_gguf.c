/* GGUF reader tests: real files from ../shared, writer->reader round trips,
 * and rejection of corrupt files (each must fail with a specific message). */
#include <criterion/criterion.h>
#include <stdint.h>

#include <unistd.h>

#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"
#include "synth.h"
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

/* ---------- helpers ---------- */

/* A fresh directory per test (Criterion may run tests in parallel processes). */
static void temp_dir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/ctxbench_test_gguf_XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
}

static void write_bytes(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    cr_assert(b != NULL);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* The kv with that key, which must exist with that type. */
static const struct gguf_kv *KV(const struct gguf *g, const struct gguf_kv **out, const char *key,
                                enum gguf_value_type t) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    cr_assert(kv != NULL, "%s missing", key);
    cr_expect_eq(kv->type, t, "%s type", key);
    return *out = kv;
}

/* The elements of the array with that key, which must have that element type and count. */
static const uint8_t *ARR(const struct gguf *g, const struct gguf_kv **out, const char *key,
                          enum gguf_value_type t, uint64_t n) {
    const struct gguf_kv *kv = KV(g, out, key, GGUF_TYPE_ARRAY);
    cr_expect_eq(kv->v.arr.type, t, "%s element type", key);
    cr_assert_eq(kv->v.arr.n, n, "%s count", key);
    return kv->v.arr.data;
}

/* ---------- writer -> reader round trip ---------- */

Test(gguf_roundtrip, every_metadata_type) {
    char dir[64], path[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/meta.gguf", dir);
    struct gguf_writer *w = gguf_writer_new();
    cr_assert(w != NULL);
    gguf_writer_add_u8(w, "s.u8", 250);
    gguf_writer_add_i8(w, "s.i8", -128);
    gguf_writer_add_u16(w, "s.u16", 65535);
    gguf_writer_add_i16(w, "s.i16", -32768);
    gguf_writer_add_u32(w, "s.u32", 4294967295u);
    gguf_writer_add_i32(w, "s.i32", INT32_MIN);
    gguf_writer_add_u64(w, "s.u64", UINT64_MAX);
    gguf_writer_add_i64(w, "s.i64", INT64_MIN);
    gguf_writer_add_f32(w, "s.f32", -1.5e30f);
    gguf_writer_add_f64(w, "s.f64", 3.141592653589793);
    gguf_writer_add_bool(w, "s.bool", true);
    gguf_writer_add_bool(w, "s.false", false);
    gguf_writer_add_str(w, "s.str", "h\xc3\xa9llo \xe2\x96\x81world");
    gguf_writer_add_str(w, "s.empty", "");
    gguf_writer_add_strn(w, "s.nul", "a\0b", 3);
    const uint8_t au8[] = { 0, 1, 255 };
    const int8_t ai8[] = { -1, 127 };
    const uint16_t au16[] = { 7, 65535 };
    const int16_t ai16[] = { -300, 300, 0 };
    const uint32_t au32[] = { 1, 2, 3, 4000000000u };
    const int32_t ai32[] = { -5, 6 };
    const uint64_t au64[] = { UINT64_MAX, 0 };
    const int64_t ai64[] = { INT64_MIN, INT64_MAX, -1 };
    const float af32[] = { 0.25f, -0.0f, 1e-40f };
    const double af64[] = { 1e300, -2.5 };
    const uint8_t abool[] = { 1, 0, 1, 1 };
    const char *astr[] = { "<unk>", "", "\xe2\x96\x81the", "x y" };
    gguf_writer_add_array(w, "a.u8", GGUF_TYPE_UINT8, au8, 3);
    gguf_writer_add_array(w, "a.i8", GGUF_TYPE_INT8, ai8, 2);
    gguf_writer_add_array(w, "a.u16", GGUF_TYPE_UINT16, au16, 2);
    gguf_writer_add_array(w, "a.i16", GGUF_TYPE_INT16, ai16, 3);
    gguf_writer_add_array(w, "a.u32", GGUF_TYPE_UINT32, au32, 4);
    gguf_writer_add_array(w, "a.i32", GGUF_TYPE_INT32, ai32, 2);
    gguf_writer_add_array(w, "a.u64", GGUF_TYPE_UINT64, au64, 2);
    gguf_writer_add_array(w, "a.i64", GGUF_TYPE_INT64, ai64, 3);
    gguf_writer_add_array(w, "a.f32", GGUF_TYPE_FLOAT32, af32, 3);
    gguf_writer_add_array(w, "a.f64", GGUF_TYPE_FLOAT64, af64, 2);
    gguf_writer_add_array(w, "a.bool", GGUF_TYPE_BOOL, abool, 4);
    gguf_writer_add_array(w, "a.empty", GGUF_TYPE_UINT32, NULL, 0);
    gguf_writer_add_str_array(w, "a.str", astr, 4);
    gguf_writer_add_str_array(w, "a.str_empty", NULL, 0);
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);

    struct gguf *g = gguf_open(path, err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    cr_expect_eq(g->version, 3);
    cr_expect_eq(g->n_kv, 29);
    cr_expect_eq(g->n_tensors, 0);
    const struct gguf_kv *kv;
    cr_expect_eq(KV(g, &kv, "s.u8", GGUF_TYPE_UINT8)->v.u64, 250);
    cr_expect_eq(KV(g, &kv, "s.i8", GGUF_TYPE_INT8)->v.i64, -128);
    cr_expect_eq(KV(g, &kv, "s.u16", GGUF_TYPE_UINT16)->v.u64, 65535);
    cr_expect_eq(KV(g, &kv, "s.i16", GGUF_TYPE_INT16)->v.i64, -32768);
    cr_expect_eq(KV(g, &kv, "s.u32", GGUF_TYPE_UINT32)->v.u64, 4294967295u);
    cr_expect_eq(KV(g, &kv, "s.i32", GGUF_TYPE_INT32)->v.i64, INT32_MIN);
    cr_expect_eq(KV(g, &kv, "s.u64", GGUF_TYPE_UINT64)->v.u64, UINT64_MAX);
    cr_expect_eq(KV(g, &kv, "s.i64", GGUF_TYPE_INT64)->v.i64, INT64_MIN);
    cr_expect_eq(KV(g, &kv, "s.f32", GGUF_TYPE_FLOAT32)->v.f64, (double)-1.5e30f);
    cr_expect_eq(KV(g, &kv, "s.f64", GGUF_TYPE_FLOAT64)->v.f64, 3.141592653589793);
    cr_expect_eq(KV(g, &kv, "s.bool", GGUF_TYPE_BOOL)->v.u64, 1);
    cr_expect_eq(KV(g, &kv, "s.false", GGUF_TYPE_BOOL)->v.u64, 0);
    cr_expect(gguf_str_eq(KV(g, &kv, "s.str", GGUF_TYPE_STRING)->v.str, "h\xc3\xa9llo \xe2\x96\x81world"));
    cr_expect_eq(KV(g, &kv, "s.empty", GGUF_TYPE_STRING)->v.str.len, 0);
    KV(g, &kv, "s.nul", GGUF_TYPE_STRING);
    cr_expect(kv->v.str.len == 3 && memcmp(kv->v.str.ptr, "a\0b", 3) == 0);

    /* typed getters */
    uint64_t u;
    double f;
    struct gguf_str s;
    cr_expect(gguf_get_u64(g, "s.u8", &u) && u == 250);
    cr_expect(gguf_get_u64(g, "s.u64", &u) && u == UINT64_MAX);
    cr_expect(!gguf_get_u64(g, "s.i32", &u), "negative values are not counts");
    cr_expect(!gguf_get_u64(g, "s.f32", &u));
    cr_expect(gguf_get_f64(g, "s.f64", &f) && f == 3.141592653589793);
    cr_expect(gguf_get_f64(g, "s.f32", &f) && f == (double)-1.5e30f);
    cr_expect(!gguf_get_f64(g, "s.u32", &f));
    cr_expect(gguf_get_str(g, "s.empty", &s) && s.len == 0);
    cr_expect(!gguf_get_str(g, "a.str", &s));

    cr_expect(memcmp(ARR(g, &kv, "a.u8", GGUF_TYPE_UINT8, 3), au8, sizeof au8) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.i8", GGUF_TYPE_INT8, 2), ai8, sizeof ai8) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.u16", GGUF_TYPE_UINT16, 2), au16, sizeof au16) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.i16", GGUF_TYPE_INT16, 3), ai16, sizeof ai16) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.u32", GGUF_TYPE_UINT32, 4), au32, sizeof au32) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.i32", GGUF_TYPE_INT32, 2), ai32, sizeof ai32) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.u64", GGUF_TYPE_UINT64, 2), au64, sizeof au64) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.i64", GGUF_TYPE_INT64, 3), ai64, sizeof ai64) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.f32", GGUF_TYPE_FLOAT32, 3), af32, sizeof af32) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.f64", GGUF_TYPE_FLOAT64, 2), af64, sizeof af64) == 0);
    cr_expect(memcmp(ARR(g, &kv, "a.bool", GGUF_TYPE_BOOL, 4), abool, sizeof abool) == 0);
    ARR(g, &kv, "a.empty", GGUF_TYPE_UINT32, 0);
    ARR(g, &kv, "a.str", GGUF_TYPE_STRING, 4);
    for (int i = 0; i < 4; i++) cr_expect(gguf_str_eq(gguf_arr_str(kv, (uint64_t)i), astr[i]), "a.str[%d]", i);
    cr_expect_eq(gguf_arr_str(kv, 4).len, 0, "out of range gives an empty string");
    ARR(g, &kv, "a.str_empty", GGUF_TYPE_STRING, 0);
    gguf_close(g);
    unlink(path);
    rmdir(dir);
}

Test(gguf_roundtrip, tensors_of_every_type_and_alignment) {
    static const uint32_t types[] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                      GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
    enum { NT = sizeof types / sizeof types[0] };
    static const uint32_t aligns[] = { 32, 1, 64, 4096 };
    char dir[64], path[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.gguf", dir);
    unsigned long long rng = 0x1234567ULL;
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
        struct gguf_writer *w = gguf_writer_new();
        cr_assert_eq(gguf_writer_set_alignment(w, aligns[ai]), 0);
        gguf_writer_add_str(w, "general.architecture", "llama");
        uint8_t *data[NT];
        uint64_t ne[NT][4];
        uint32_t nd[NT];
        size_t nbytes[NT];
        for (int i = 0; i < NT; i++) {
            /* shapes of 1 to 4 dimensions; rows a multiple of the block size */
            nd[i] = 1 + (uint32_t)(i % 4);
            ne[i][0] = ggml_block_elems(types[i]) * (1 + i % 3);
            ne[i][1] = 3; ne[i][2] = 2; ne[i][3] = 1 + (uint64_t)i % 2;
            size_t rows = 1;
            for (uint32_t d = 1; d < nd[i]; d++) rows *= ne[i][d];
            nbytes[i] = ggml_row_bytes(types[i], ne[i][0]) * rows;
            data[i] = malloc(nbytes[i]);
            for (size_t b = 0; b < nbytes[i]; b++) data[i][b] = (uint8_t)test_rng_next(&rng);
            char name[32];
            snprintf(name, sizeof name, "blk.%d.w", i);
            cr_assert_eq(gguf_writer_add_tensor(w, name, nd[i], ne[i], types[i], data[i]), 0);
        }
        cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
        gguf_writer_free(w);

        struct gguf *g = gguf_open(path, err, sizeof err);
        cr_assert(g != NULL, "%s", err);
        cr_expect_eq(g->alignment, aligns[ai]);
        cr_expect_eq(g->data_offset % aligns[ai], 0);
        cr_expect_eq(g->n_tensors, NT);
        for (int i = 0; i < NT; i++) {
            char name[32];
            snprintf(name, sizeof name, "blk.%d.w", i);
            const struct gguf_tensor *t = gguf_find_tensor(g, name);
            cr_assert(t != NULL);
            cr_expect_eq(t->type, types[i]);
            cr_expect_eq(t->n_dims, nd[i]);
            for (uint32_t d = 0; d < 4; d++) cr_expect_eq(t->ne[d], d < nd[i] ? ne[i][d] : 1);
            cr_expect_eq(t->nbytes, nbytes[i]);
            cr_expect_eq(t->offset % aligns[ai], 0);
            cr_expect_eq(((const uint8_t *)t->data - g->map) % aligns[ai], 0);
            cr_expect(memcmp(t->data, data[i], nbytes[i]) == 0, "tensor %d bytes", i);
            free(data[i]);
        }
        gguf_close(g);
    }
    unlink(path);
    rmdir(dir);
}

Test(gguf_roundtrip, streaming_writer_checks_sizes) {
    char dir[64], path[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.gguf", dir);
    float a[64], b[32];
    for (int i = 0; i < 64; i++) a[i] = (float)i;
    for (int i = 0; i < 32; i++) b[i] = -(float)i;
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_add_tensor(w, "a", 2, (uint64_t[]){ 32, 2 }, GGML_TYPE_F32, NULL);
    gguf_writer_add_tensor(w, "b", 1, (uint64_t[]){ 32 }, GGML_TYPE_F32, NULL);
    cr_expect_eq(gguf_writer_tensor_nbytes(w, 0), 256);
    cr_expect_neq(gguf_writer_write(w, path, err, sizeof err), 0, "tensors without data");
    cr_expect(strstr(err, "has no data") != NULL, "%s", err);
    cr_assert_eq(gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    /* odd chunking across the tensor boundary */
    cr_assert_eq(gguf_writer_append(w, a, 100, err, sizeof err), 0);
    cr_assert_eq(gguf_writer_append(w, (uint8_t *)a + 100, 156, err, sizeof err), 0);
    cr_assert_eq(gguf_writer_append(w, b, 64, err, sizeof err), 0);
    cr_expect_neq(gguf_writer_end(w, err, sizeof err), 0, "incomplete");
    cr_expect(strstr(err, "incomplete") != NULL, "%s", err);
    cr_assert_eq(gguf_writer_append(w, (uint8_t *)b + 64, 64, err, sizeof err), 0);
    cr_expect_neq(gguf_writer_append(w, b, 1, err, sizeof err), 0, "too much data");
    cr_assert_eq(gguf_writer_end(w, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    struct gguf *g = gguf_open(path, err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    cr_expect(memcmp(gguf_find_tensor(g, "a")->data, a, sizeof a) == 0);
    cr_expect(memcmp(gguf_find_tensor(g, "b")->data, b, sizeof b) == 0);
    gguf_close(g);

    /* add-time errors surface at write time */
    w = gguf_writer_new();
    gguf_writer_add_u32(w, "k", 1);
    cr_expect_neq(gguf_writer_add_u32(w, "k", 2), 0);
    cr_expect_neq(gguf_writer_write(w, path, err, sizeof err), 0);
    cr_expect(strstr(err, "duplicate metadata key 'k'") != NULL, "%s", err);
    gguf_writer_free(w);
    w = gguf_writer_new();
    cr_expect_neq(gguf_writer_add_tensor(w, "q", 1, (uint64_t[]){ 100 }, GGML_TYPE_Q4_K, NULL), 0);
    cr_expect_neq(gguf_writer_write(w, path, err, sizeof err), 0);
    cr_expect(strstr(err, "not a multiple") != NULL, "%s", err);
    gguf_writer_free(w);
    unlink(path);
    rmdir(dir);
}

/* ---------- rejection of corrupt files ---------- */

/* The base file, laid out by hand so the tests can patch exact fields:
 *   0 magic, 4 version, 8 n_tensors (2), 16 n_kv (4)
 *   24  kv "k.u32": 24 key len, 32 key, 37 type, 41 value
 *   45  kv "k.arr": 45 key len, 53 key, 58 type, 62 elem type, 66 count (3), 74 three u32
 *   86  kv "k.str": 86 key len, 94 key, 99 type, 103 string len, 111 "hello"
 *   116 kv "k.sarr": 116 key len, 124 key, 130 type, 134 elem type, 138 count (2),
 *       146 len 2, 154 "ab", 156 len 3, 164 "cde"
 *   167 tensor "t0": 167 name len, 175 name, 177 n_dims (2), 181 ne0 (32), 189 ne1 (2), 197 type, 201 offset (0)
 *   209 tensor "t1": 209 name len, 217 name, 219 n_dims (1), 223 ne0 (32), 231 type, 235 offset (256)
 *   243 padding, 256 data: t0 256 bytes, t1 128 bytes -> 640 */
enum { OFF_NT = 8, OFF_NKV = 16, OFF_K0_LEN = 24, OFF_K0_TYPE = 37, OFF_K1_KEY = 53, OFF_ARR_ELEM = 62,
       OFF_ARR_COUNT = 66, OFF_STR_LEN = 103, OFF_SARR_COUNT = 138, OFF_SARR_S1_LEN = 156,
       OFF_T0_NAME_LEN = 167, OFF_T0_NDIMS = 177, OFF_T0_NE0 = 181, OFF_T0_NE1 = 189, OFF_T0_TYPE = 197,
       OFF_T0_OFFSET = 201, OFF_T1_NAME = 217, OFF_T1_OFFSET = 235, BASE_SIZE = 640 };

struct fixture {
    char dir[64], base[128], bad[128];
    uint8_t *bytes;
    size_t size;
};

static void make_base(struct fixture *fx) {
    char err[512];
    temp_dir(fx->dir, sizeof fx->dir);
    snprintf(fx->base, sizeof fx->base, "%s/base.gguf", fx->dir);
    snprintf(fx->bad, sizeof fx->bad, "%s/bad.gguf", fx->dir);
    struct gguf_writer *w = gguf_writer_new();
    const uint32_t arr[3] = { 10, 20, 30 };
    const char *strs[2] = { "ab", "cde" };
    float t0[64], t1[32];
    for (int i = 0; i < 64; i++) t0[i] = (float)i * 0.5f;
    for (int i = 0; i < 32; i++) t1[i] = (float)-i;
    gguf_writer_add_u32(w, "k.u32", 7);
    gguf_writer_add_array(w, "k.arr", GGUF_TYPE_UINT32, arr, 3);
    gguf_writer_add_str(w, "k.str", "hello");
    gguf_writer_add_str_array(w, "k.sarr", strs, 2);
    gguf_writer_add_tensor(w, "t0", 2, (uint64_t[]){ 32, 2 }, GGML_TYPE_F32, t0);
    gguf_writer_add_tensor(w, "t1", 1, (uint64_t[]){ 32 }, GGML_TYPE_F32, t1);
    cr_assert_eq(gguf_writer_write(w, fx->base, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    fx->bytes = read_bytes(fx->base, &fx->size);
    cr_assert_eq(fx->size, BASE_SIZE);
    /* the layout above is what the writer produced */
    struct gguf *g = gguf_open(fx->base, err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    cr_assert_eq(g->data_offset, 256);
    cr_assert_eq(gguf_find_tensor(g, "t1")->offset, 256);
    cr_assert_eq(gguf_find_kv(g, "k.sarr")->v.arr.n, 2);
    gguf_close(g);
    cr_assert_eq(fx->bytes[OFF_T1_NAME], 't');
    cr_assert_eq(fx->bytes[OFF_T0_NDIMS], 2);
    cr_assert_eq(fx->bytes[OFF_T0_NE0], 32);
    cr_assert_eq(fx->bytes[OFF_T1_OFFSET + 1], 1);
}

static void free_base(struct fixture *fx) {
    unlink(fx->base);
    unlink(fx->bad);
    rmdir(fx->dir);
    free(fx->bytes);
}

/* Opens `n` bytes of b as a file: must fail, with a one-line message naming the file and containing want. */
static void expect_reject_bytes(struct fixture *fx, const uint8_t *b, size_t n, const char *want, const char *what) {
    char err[512];
    write_bytes(fx->bad, b, n);
    struct gguf *g = gguf_open(fx->bad, err, sizeof err);
    cr_expect(g == NULL, "%s: opened", what);
    if (g) { gguf_close(g); return; }
    cr_expect(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
    cr_expect(strncmp(err, fx->bad, strlen(fx->bad)) == 0, "%s: message does not name the file: %s", what, err);
    cr_expect(strchr(err, '\n') == NULL, "%s: multi-line message", what);
}

static void expect_reject64(struct fixture *fx, size_t off, uint64_t v, const char *want) {
    uint8_t *b = malloc(fx->size);
    memcpy(b, fx->bytes, fx->size);
    put_le64(b + off, v);
    char what[64];
    snprintf(what, sizeof what, "u64 %llu at %zu", (unsigned long long)v, off);
    expect_reject_bytes(fx, b, fx->size, want, what);
    free(b);
}

static void expect_reject32(struct fixture *fx, size_t off, uint32_t v, const char *want) {
    uint8_t *b = malloc(fx->size);
    memcpy(b, fx->bytes, fx->size);
    put_le32(b + off, v);
    char what[64];
    snprintf(what, sizeof what, "u32 %u at %zu", v, off);
    expect_reject_bytes(fx, b, fx->size, want, what);
    free(b);
}

Test(gguf_reject, magic_and_version) {
    struct fixture fx;
    make_base(&fx);
    uint8_t *b = malloc(fx.size);
    memcpy(b, fx.bytes, fx.size);
    b[0] = 'X';
    expect_reject_bytes(&fx, b, fx.size, "not a GGUF file", "magic");
    free(b);
    expect_reject32(&fx, 4, 1, "version 1 is not supported");
    expect_reject32(&fx, 4, 0, "version 0 is not supported");
    expect_reject32(&fx, 4, 4, "version 4 is not supported");
    expect_reject32(&fx, 4, 0x03000000u, "big-endian");
    /* version 2 has the same layout and is accepted */
    memcpy(b = malloc(fx.size), fx.bytes, fx.size);
    put_le32(b + 4, 2);
    write_bytes(fx.bad, b, fx.size);
    char err[512];
    struct gguf *g = gguf_open(fx.bad, err, sizeof err);
    cr_expect(g != NULL, "%s", err);
    if (g) cr_expect_eq(g->version, 2);
    gguf_close(g);
    free(b);
    free_base(&fx);
}

Test(gguf_reject, truncated_anywhere) {
    struct fixture fx;
    make_base(&fx);
    char err[512];
    /* Every cut in the header region (every byte) and every 7th byte in the data. */
    for (size_t cut = 0; cut < fx.size; cut += cut < 256 ? 1 : 7) {
        write_bytes(fx.bad, fx.bytes, cut);
        struct gguf *g = gguf_open(fx.bad, err, sizeof err);
        cr_expect(g == NULL, "cut at %zu opened", cut);
        if (g) { gguf_close(g); continue; }
        cr_expect(strstr(err, "truncated") || strstr(err, "too small") || strstr(err, "cannot fit"),
                  "cut at %zu: %s", cut, err);
        cr_expect(strchr(err, '\n') == NULL);
    }
    write_bytes(fx.bad, fx.bytes, 600);
    cr_expect(gguf_open(fx.bad, err, sizeof err) == NULL);
    cr_expect(strstr(err, "tensor 't1'") && strstr(err, "past the end"), "%s", err);
    free_base(&fx);
}

Test(gguf_reject, absurd_counts_and_lengths) {
    struct fixture fx;
    make_base(&fx);
    expect_reject64(&fx, OFF_NKV, UINT64_MAX, "metadata count");
    expect_reject64(&fx, OFF_NKV, 1ULL << 40, "metadata count");
    expect_reject64(&fx, OFF_NKV, 100, "metadata count");
    expect_reject64(&fx, OFF_NT, UINT64_MAX, "tensor count");
    expect_reject64(&fx, OFF_NT, 1ULL << 33, "tensor count");
    expect_reject64(&fx, OFF_K0_LEN, UINT64_MAX, "length");
    expect_reject64(&fx, OFF_K0_LEN, 1000, "truncated");
    expect_reject64(&fx, OFF_K0_LEN, 0, "empty");
    expect_reject64(&fx, OFF_STR_LEN, 1ULL << 60, "truncated");
    expect_reject64(&fx, OFF_SARR_S1_LEN, UINT64_MAX - 3, "truncated");
    expect_reject64(&fx, OFF_ARR_COUNT, 1ULL << 62, "cannot fit");
    expect_reject64(&fx, OFF_ARR_COUNT, UINT64_MAX, "cannot fit");
    expect_reject64(&fx, OFF_SARR_COUNT, 1ULL << 61, "cannot fit");
    expect_reject64(&fx, OFF_SARR_COUNT, 1000, "cannot fit");
    expect_reject64(&fx, OFF_T0_NAME_LEN, UINT64_MAX, "truncated");
    expect_reject64(&fx, OFF_T0_NAME_LEN, 0, "empty name");
    expect_reject32(&fx, OFF_K0_TYPE, 13, "not a GGUF value type");
    expect_reject32(&fx, OFF_K0_TYPE, 0xffffffffu, "not a GGUF value type");
    expect_reject32(&fx, OFF_ARR_ELEM, GGUF_TYPE_ARRAY, "array of arrays");
    expect_reject32(&fx, OFF_ARR_ELEM, 77, "not a GGUF value type");
    free_base(&fx);
}

Test(gguf_reject, bad_tensor_infos) {
    struct fixture fx;
    make_base(&fx);
    expect_reject32(&fx, OFF_T0_NDIMS, 5, "dimensions (must be 1 to 4)");
    expect_reject32(&fx, OFF_T0_NDIMS, 0, "dimensions (must be 1 to 4)");
    expect_reject32(&fx, OFF_T0_NDIMS, 0xffffffffu, "dimensions");
    expect_reject64(&fx, OFF_T0_NE0, 0, "invalid dimension 0 = 0");
    expect_reject64(&fx, OFF_T0_NE1, UINT64_MAX, "invalid dimension 1");
    expect_reject64(&fx, OFF_T0_NE1, 1ULL << 40, "past the end");
    expect_reject64(&fx, OFF_T0_NE1, (1ULL << 58) - 1, "too large");   /* 2^63-32 elements fit, 4x that bytes do not */
    {   /* product of dimensions overflows */
        uint8_t *b = malloc(fx.size);
        memcpy(b, fx.bytes, fx.size);
        put_le64(b + OFF_T0_NE0, 1ULL << 40);
        put_le64(b + OFF_T0_NE1, 1ULL << 40);
        expect_reject_bytes(&fx, b, fx.size, "overflow", "ne0*ne1 = 2^80");
        free(b);
    }
    expect_reject32(&fx, OFF_T0_TYPE, 99, "tensor 't0' has unknown type 99");
    expect_reject32(&fx, OFF_T0_TYPE, GGML_TYPE_Q3_K,
                    "tensor 't0' has type Q3_K, which ctxbench does not read (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K)");
    expect_reject32(&fx, OFF_T0_TYPE, 4, "unknown type 4");
    expect_reject32(&fx, OFF_T0_TYPE, GGML_TYPE_Q4_K, "not a multiple of the Q4_K block size 256");
    expect_reject64(&fx, OFF_T1_OFFSET, 260, "not a multiple of the alignment 32");
    expect_reject64(&fx, OFF_T1_OFFSET, 1ULL << 40, "past the end");
    expect_reject64(&fx, OFF_T1_OFFSET, UINT64_MAX - 31, "past the end");
    expect_reject64(&fx, OFF_T0_OFFSET, 384, "past the end");
    free_base(&fx);
}

Test(gguf_reject, duplicates_and_alignment) {
    struct fixture fx;
    make_base(&fx);
    uint8_t *b = malloc(fx.size);
    memcpy(b, fx.bytes, fx.size);
    memcpy(b + OFF_K1_KEY, "k.u32", 5);
    expect_reject_bytes(&fx, b, fx.size, "duplicate metadata key 'k.u32'", "duplicate key");
    memcpy(b, fx.bytes, fx.size);
    memcpy(b + OFF_T1_NAME, "t0", 2);
    expect_reject_bytes(&fx, b, fx.size, "duplicate tensor name 't0'", "duplicate tensor");
    free(b);

    static const struct { uint32_t v; bool as_i32; const char *want; } cases[] = {
        { 0, false, "not a power of two" }, { 48, false, "not a power of two" },
        { 1u << 31, false, "not a power of two" }, { 64, true, "expected an unsigned integer" },
    };
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gguf_writer *w = gguf_writer_new();
        if (cases[i].as_i32) gguf_writer_add_i32(w, "general.alignment", (int32_t)cases[i].v);
        else gguf_writer_add_u32(w, "general.alignment", cases[i].v);
        cr_assert_eq(gguf_writer_write(w, fx.bad, err, sizeof err), 0, "%s", err);
        gguf_writer_free(w);
        cr_expect(gguf_open(fx.bad, err, sizeof err) == NULL);
        cr_expect(strstr(err, cases[i].want) != NULL, "alignment %u: %s", cases[i].v, err);
    }
    free_base(&fx);
}

/* Random corruption of the header region must never crash or read out of
 * bounds (run under ASan by `make check-asan`); a file that still opens must
 * have all tensor data inside the map. */
Test(gguf_reject, random_corruption_never_crashes) {
    struct fixture fx;
    make_base(&fx);
    uint8_t *b = malloc(fx.size);
    unsigned long long rng = 0x9e3779b97f4a7c15ULL;
    char err[512];
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(b, fx.bytes, fx.size);
        int flips = 1 + (int)(test_rng_next(&rng) % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)(test_rng_next(&rng) % 256);
            uint64_t r = test_rng_next(&rng);
            b[pos] = (r & 0x100) ? (uint8_t)r : (uint8_t)(b[pos] ^ (1u << (r % 8)));
        }
        write_bytes(fx.bad, b, fx.size);
        err[0] = '\0';
        struct gguf *g = gguf_open(fx.bad, err, sizeof err);
        if (!g) {
            cr_expect(strncmp(err, fx.bad, strlen(fx.bad)) == 0 && strchr(err, '\n') == NULL, "%s", err);
            continue;
        }
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const struct gguf_tensor *t = &g->tensors[i];
            cr_expect((const uint8_t *)t->data >= g->map + g->data_offset);
            cr_expect((const uint8_t *)t->data + t->nbytes <= g->map + g->size);
        }
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const struct gguf_kv *kv = &g->kv[i];
            if (kv->type == GGUF_TYPE_ARRAY && kv->v.arr.type == GGUF_TYPE_STRING)
                for (uint64_t j = 0; j < kv->v.arr.n; j++) {
                    struct gguf_str s = gguf_arr_str(kv, j);
                    cr_expect((const uint8_t *)s.ptr + s.len <= g->map + g->size);
                }
        }
        gguf_close(g);
    }
    free(b);
    free_base(&fx);
}

/* ---------- synthetic models ---------- */

static struct synth_spec small_spec(const char *arch, uint32_t type) {
    struct synth_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.arch, sizeof s.arch, "%s", arch);
    s.dim = 256; s.n_layers = 2; s.n_heads = 4; s.n_kv_heads = 2; s.ffn_dim = 512;
    s.n_vocab = 300; s.ctx_train = 128; s.rope_base = 10000; s.weight_type = type; s.seed = 5;
    return s;
}

/* Mean and standard deviation of a whole tensor, decoded. */
static void tensor_stats(const struct gguf_tensor *t, double *mean, double *sd) {
    size_t n = (size_t)t->ne[0], rows = (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    size_t rb = ggml_row_bytes(t->type, n);
    float *row = malloc(n * sizeof *row);
    double s1 = 0, s2 = 0;
    for (size_t r = 0; r < rows; r++) {
        dequantize_row(t->type, (const uint8_t *)t->data + r * rb, row, n);
        for (size_t i = 0; i < n; i++) { s1 += row[i]; s2 += (double)row[i] * row[i]; }
    }
    free(row);
    double cnt = (double)n * rows;
    *mean = s1 / cnt;
    *sd = sqrt(s2 / cnt - *mean * *mean);
}

Test(synth, every_weight_type_round_trips) {
    static const uint32_t types[] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                      GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
    char dir[64], path[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/synth.gguf", dir);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        struct synth_spec s = small_spec("llama", types[ti]);
        cr_assert_eq(synth_write(path, &s, err, sizeof err), 0, "%s", err);
        struct gguf *g = gguf_open(path, err, sizeof err);
        cr_assert(g != NULL, "%s", err);
        uint64_t v;
        struct gguf_str str;
        cr_expect(gguf_get_str(g, "general.architecture", &str) && gguf_str_eq(str, "llama"));
        cr_expect(gguf_get_u64(g, "llama.embedding_length", &v) && v == 256);
        cr_expect(gguf_get_u64(g, "llama.block_count", &v) && v == 2);
        cr_expect(gguf_get_u64(g, "llama.attention.head_count", &v) && v == 4);
        cr_expect(gguf_get_u64(g, "llama.attention.head_count_kv", &v) && v == 2);
        cr_expect(gguf_get_u64(g, "llama.feed_forward_length", &v) && v == 512);
        cr_expect(gguf_get_u64(g, "llama.context_length", &v) && v == 128);
        cr_expect(gguf_get_u64(g, "llama.rope.dimension_count", &v) && v == 64);
        double base;
        cr_expect(gguf_get_f64(g, "llama.rope.freq_base", &base) && base == 10000);
        cr_expect(gguf_get_str(g, "general.name", &str) && str.len > 0);
        cr_expect_eq(g->n_tensors, 3 + 9 * 2);

        static const struct { const char *name; uint64_t ne0, ne1; bool matrix; } want[] = {
            { "token_embd.weight", 256, 300, true }, { "output.weight", 256, 300, true },
            { "output_norm.weight", 256, 1, false }, { "blk.1.attn_norm.weight", 256, 1, false },
            { "blk.0.attn_q.weight", 256, 256, true }, { "blk.0.attn_k.weight", 256, 128, true },
            { "blk.1.attn_v.weight", 256, 128, true }, { "blk.1.attn_output.weight", 256, 256, true },
            { "blk.0.ffn_norm.weight", 256, 1, false }, { "blk.0.ffn_gate.weight", 256, 512, true },
            { "blk.1.ffn_up.weight", 256, 512, true }, { "blk.1.ffn_down.weight", 512, 256, true },
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const struct gguf_tensor *t = gguf_find_tensor(g, want[i].name);
            cr_assert(t != NULL, "%s missing", want[i].name);
            cr_expect_eq(t->ne[0], want[i].ne0, "%s", want[i].name);
            cr_expect_eq(t->ne[1], want[i].ne1, "%s", want[i].name);
            cr_expect_eq(t->type, want[i].matrix ? types[ti] : GGML_TYPE_F32, "%s", want[i].name);
            double mean, sd;
            tensor_stats(t, &mean, &sd);
            if (want[i].matrix) {
                cr_expect(fabs(mean) < 0.002 && sd > 0.017 && sd < 0.023, "%s type %zu: mean %g sd %g",
                          want[i].name, ti, mean, sd);
            } else {
                cr_expect(mean == 1.0 && sd == 0.0, "%s: norms are ones", want[i].name);
            }
        }
        const struct gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
        cr_assert(tok && tok->type == GGUF_TYPE_ARRAY && tok->v.arr.n == 300);
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 0), "<unk>"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 1), "<s>"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 2), "</s>"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 3), "<0x00>"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 258), "<0xFF>"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 259), "\xe2\x96\x81" "a"));
        cr_expect(gguf_str_eq(gguf_arr_str(tok, 259 + 26), "\xe2\x96\x81" "aa"));
        const struct gguf_kv *tt = gguf_find_kv(g, "tokenizer.ggml.token_type");
        cr_assert(tt && tt->v.arr.type == GGUF_TYPE_INT32 && tt->v.arr.n == 300);
        const struct gguf_kv *sc = gguf_find_kv(g, "tokenizer.ggml.scores");
        cr_assert(sc && sc->v.arr.type == GGUF_TYPE_FLOAT32 && sc->v.arr.n == 300);
        gguf_close(g);
    }
    unlink(path);
    rmdir(dir);
}

Test(synth, qwen2_tied_deterministic_and_checked) {
    char dir[64], a[128], b[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    struct synth_spec s = small_spec("qwen2", GGML_TYPE_Q8_0);
    s.tied_output = true;
    cr_assert_eq(synth_write(a, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(synth_write(b, &s, err, sizeof err), 0, "%s", err);
    size_t na, nb;
    uint8_t *ba = read_bytes(a, &na), *bb = read_bytes(b, &nb);
    cr_expect(na == nb && memcmp(ba, bb, na) == 0, "same spec and seed, same bytes");
    free(bb);
    s.seed = 6;
    cr_assert_eq(synth_write(b, &s, err, sizeof err), 0, "%s", err);
    bb = read_bytes(b, &nb);
    cr_expect(na == nb && memcmp(ba, bb, na) != 0, "another seed, other weights");
    free(ba);
    free(bb);

    struct gguf *g = gguf_open(a, err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    cr_expect(gguf_find_tensor(g, "output.weight") == NULL, "tied output");
    cr_expect_eq(g->n_tensors, 2 + 12 * 2);
    const struct gguf_tensor *t = gguf_find_tensor(g, "blk.1.attn_k.bias");
    cr_assert(t != NULL);
    cr_expect_eq(t->type, GGML_TYPE_F32);
    cr_expect_eq(t->ne[0], 128);
    cr_expect_eq(t->n_dims, 1);
    uint64_t v;
    cr_expect(gguf_get_u64(g, "qwen2.embedding_length", &v) && v == 256);
    gguf_close(g);

    /* invalid specs are rejected with a reason and leave no file */
    unlink(b);
    struct synth_spec x = small_spec("llama", GGML_TYPE_Q4_K);
    x.dim = 96; x.n_heads = 4; x.n_kv_heads = 2;
    cr_expect_neq(synth_write(b, &x, err, sizeof err), 0);
    cr_expect(strstr(err, "dim 96 is not a multiple of the Q4_K block size 256") != NULL, "%s", err);
    x = small_spec("llama", GGML_TYPE_Q8_0);
    x.n_kv_heads = 3;
    cr_expect_neq(synth_write(b, &x, err, sizeof err), 0);
    cr_expect(strstr(err, "not a multiple of n_kv_heads 3") != NULL, "%s", err);
    x = small_spec("gpt2", GGML_TYPE_Q8_0);
    cr_expect_neq(synth_write(b, &x, err, sizeof err), 0);
    cr_expect(strstr(err, "architecture 'gpt2'") != NULL, "%s", err);
    x = small_spec("llama", GGML_TYPE_Q3_K);
    cr_expect_neq(synth_write(b, &x, err, sizeof err), 0);
    cr_expect(strstr(err, "Q3_K cannot be written") != NULL, "%s", err);
    x = small_spec("llama", GGML_TYPE_F16);
    x.n_vocab = 100;
    cr_expect_neq(synth_write(b, &x, err, sizeof err), 0);
    cr_expect(strstr(err, "n_vocab 100") != NULL, "%s", err);
    cr_expect(access(b, F_OK) != 0, "no file written for a bad spec");
    x = small_spec("llama", GGML_TYPE_F16);
    cr_expect_neq(synth_write("/nonexistent-dir/x.gguf", &x, err, sizeof err), 0);
    cr_expect(strstr(err, "/nonexistent-dir/x.gguf: cannot create") != NULL, "%s", err);

    for (int i = 0; synth_preset_names[i]; i++) {
        cr_expect(synth_preset(synth_preset_names[i], &x), "%s", synth_preset_names[i]);
        x.weight_type = GGML_TYPE_Q8_0;
        cr_expect_eq(synth_check(&x, err, sizeof err), 0, "%s: %s", synth_preset_names[i], err);
    }
    cr_expect(!synth_preset("no-such-model", &x));
    unlink(a);
    rmdir(dir);
}

Test(synth, extra_tensors_written_as_given_and_checked) {
    char dir[64], a[128], err[512];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    struct synth_spec s = small_spec("llama", GGML_TYPE_F16);
    float ff[32];
    for (int i = 0; i < 32; i++) ff[i] = 1.0f + 0.5f * (float)i;
    struct synth_extra x[2] = {{"rope_freqs.weight", 32, GGML_TYPE_F32, ff}, {"blk.0.attn_q.bias", 256, GGML_TYPE_F32, NULL}};
    s.extra = x;
    s.n_extra = 2;
    cr_assert_eq(synth_write(a, &s, err, sizeof err), 0, "%s", err);
    struct gguf *g = gguf_open(a, err, sizeof err);
    cr_assert(g != NULL, "%s", err);
    const struct gguf_tensor *t = gguf_find_tensor(g, "rope_freqs.weight");
    cr_assert(t && t->type == GGML_TYPE_F32 && t->n_dims == 1 && t->ne[0] == 32);
    cr_expect_eq(memcmp(t->data, ff, sizeof ff), 0, "values written as given");
    t = gguf_find_tensor(g, "blk.0.attn_q.bias");
    cr_assert(t && t->ne[0] == 256);
    gguf_close(g);
    unlink(a);

    struct synth_extra bad = {"", 4, GGML_TYPE_F32, NULL};
    s.extra = &bad;
    s.n_extra = 1;
    cr_expect_neq(synth_write(a, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "extra tensor 0 needs a name") != NULL, "%s", err);
    bad = (struct synth_extra){"x.weight", 0, GGML_TYPE_F32, NULL};
    cr_expect_neq(synth_write(a, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "x.weight has 0 elements") != NULL, "%s", err);
    bad = (struct synth_extra){"x.weight", 40, GGML_TYPE_Q8_0, NULL};
    cr_expect_neq(synth_write(a, &s, err, sizeof err), 0);
    cr_expect(strstr(err, "not a multiple of the block size 32") != NULL, "%s", err);
    bad = (struct synth_extra){"output_norm.weight", 256, GGML_TYPE_F32, NULL};   /* a name already written */
    cr_expect_neq(synth_write(a, &s, err, sizeof err), 0);
    cr_expect(access(a, F_OK) != 0, "no file written for a bad spec");
    rmdir(dir);
}
