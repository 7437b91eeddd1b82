/* Writes random-weight llama/qwen2 GGUF files (see synth.h). Each tensor has
 * its own random stream derived from (seed, tensor index), generated and
 * quantized a chunk of rows at a time and streamed to the file. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"
#include "quant.h"

const char *const synth_preset_names[] = {
    "tiny", "small", "tinyllama", "llama2-7b", "mistral-7b", "qwen2-0.5b", NULL,
};

bool synth_preset(const char *name, struct synth_spec *s) {
    static const struct {
        const char *name, *arch;
        int dim, n_layers, n_heads, n_kv_heads, ffn_dim, n_vocab, ctx_train;
        double rope_base, rms_eps;
        bool tied;
    } presets[] = {
        { "tiny", "llama", 256, 2, 4, 2, 512, 512, 512, 10000, 1e-5, false },
        { "small", "llama", 512, 8, 8, 4, 1536, 32000, 4096, 10000, 1e-5, false },
        { "tinyllama", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000, 1e-5, false },
        { "llama2-7b", "llama", 4096, 32, 32, 32, 11008, 32000, 4096, 10000, 1e-5, false },
        { "mistral-7b", "llama", 4096, 32, 32, 8, 14336, 32000, 32768, 1e6, 1e-5, false },
        { "qwen2-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1e6, 1e-6, true },
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) != 0) continue;
        memset(s, 0, sizeof *s);
        snprintf(s->arch, sizeof s->arch, "%s", presets[i].arch);
        s->dim = presets[i].dim;
        s->n_layers = presets[i].n_layers;
        s->n_heads = presets[i].n_heads;
        s->n_kv_heads = presets[i].n_kv_heads;
        s->ffn_dim = presets[i].ffn_dim;
        s->n_vocab = presets[i].n_vocab;
        s->ctx_train = presets[i].ctx_train;
        s->rope_base = presets[i].rope_base;
        s->rms_eps = presets[i].rms_eps;
        s->tied_output = presets[i].tied;
        s->weight_type = GGML_TYPE_F16;
        s->weight_std = 0.02;
        s->seed = 1;
        return true;
    }
    return false;
}

int synth_check(const struct synth_spec *s, char *err, size_t errlen) {
#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)
    if (strcmp(s->arch, "llama") != 0 && strcmp(s->arch, "qwen2") != 0)
        BAD("synth: architecture '%s' is not supported (llama, qwen2)", s->arch);
    if (s->dim < 2 || s->dim > (1 << 16)) BAD("synth: dim %d is out of range [2, 65536]", s->dim);
    if (s->n_layers < 1 || s->n_layers > 1024) BAD("synth: n_layers %d is out of range [1, 1024]", s->n_layers);
    if (s->n_heads < 1 || s->dim % s->n_heads != 0) BAD("synth: dim %d is not a multiple of n_heads %d", s->dim, s->n_heads);
    if ((s->dim / s->n_heads) % 2 != 0) BAD("synth: head size %d is odd (RoPE rotates pairs)", s->dim / s->n_heads);
    if (s->n_kv_heads < 1 || s->n_heads % s->n_kv_heads != 0)
        BAD("synth: n_heads %d is not a multiple of n_kv_heads %d", s->n_heads, s->n_kv_heads);
    if (s->ffn_dim < 1 || s->ffn_dim > (1 << 18)) BAD("synth: ffn_dim %d is out of range [1, 262144]", s->ffn_dim);
    if (s->n_vocab < 259 || s->n_vocab > (1 << 22))
        BAD("synth: n_vocab %d is out of range [259, 4194304] (3 control and 256 byte tokens come first)", s->n_vocab);
    if (s->ctx_train < 1) BAD("synth: ctx_train %d must be positive", s->ctx_train);
    if (!(s->rope_base > 1.0) || !isfinite(s->rope_base)) BAD("synth: rope_base %g must be > 1", s->rope_base);
    if (s->rms_eps < 0 || s->rms_eps > 1) BAD("synth: rms_eps %g is out of range", s->rms_eps);
    if (!(s->weight_std >= 0) || s->weight_std > 10) BAD("synth: weight_std %g is out of range", s->weight_std);
    char tb[32];
    const char *tn = ggml_type_name(s->weight_type, tb, sizeof tb);
    if (!ggml_type_supported(s->weight_type))
        BAD("synth: weight type %s cannot be written (F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K)", tn);
    size_t be = ggml_block_elems(s->weight_type);
    if (s->dim % (int)be != 0) BAD("synth: dim %d is not a multiple of the %s block size %zu", s->dim, tn, be);
    if (s->ffn_dim % (int)be != 0)
        BAD("synth: ffn_dim %d is not a multiple of the %s block size %zu", s->ffn_dim, tn, be);
    if (s->n_extra < 0 || s->n_extra > 4096 || (s->n_extra > 0 && !s->extra))
        BAD("synth: %d extra tensors (at most 4096, and a list for any)", s->n_extra);
    for (int i = 0; i < s->n_extra; i++) {
        const struct synth_extra *x = &s->extra[i];
        if (!x->name || !x->name[0] || strlen(x->name) >= 64)
            BAD("synth: extra tensor %d needs a name of 1 to 63 characters", i);
        if (x->ne0 < 1 || x->ne0 > (1u << 20)) BAD("synth: extra tensor %s has %llu elements (1 to 2^20)", x->name,
                                                   (unsigned long long)x->ne0);
        if (!ggml_type_supported(x->type)) BAD("synth: extra tensor %s has a type that cannot be written", x->name);
        if (x->ne0 % ggml_block_elems(x->type) != 0)
            BAD("synth: extra tensor %s: %llu elements are not a multiple of the block size %zu", x->name,
                (unsigned long long)x->ne0, ggml_block_elems(x->type));
    }
#undef BAD
    return 0;
}

/* ---------- random numbers ---------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* xoshiro256+ state: fast, and plenty for weights. */
struct rng { uint64_t s[4]; };

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(struct rng *r) {
    uint64_t *s = r->s;
    uint64_t result = s[0] + s[3];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* n approximately normal values with standard deviation std: the sum of the
 * four 16-bit uniforms in one 64-bit draw (Irwin-Hall, variance 4/12 of the
 * 2^16 range), which is bell-shaped, bounded, and costs one draw per value. */
static void fill_normal(struct rng *r, float *x, size_t n, double std) {
    const double mean = 4 * 32767.5;
    const double sd = 65536.0 * sqrt(4.0 / 12.0);
    const float scale = (float)(std / sd);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = rng_next(r);
        uint32_t sum = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                       (uint32_t)(v >> 48);
        x[i] = (float)((double)sum - mean) * scale;
    }
}

/* ---------- the file ---------- */

enum fill_kind { FILL_NORMAL, FILL_ONES, FILL_GIVEN };

struct tensor_plan {
    char name[64];
    uint64_t ne0, ne1;      /* ne1 = 1: a vector */
    uint32_t type;
    enum fill_kind fill;
    const float *values;    /* FILL_GIVEN: ne0 * ne1 values */
};

/* llama.cpp's LLAMA_FTYPE for a file whose matrices are all of one type. */
static uint32_t file_type_of(uint32_t t) {
    switch (t) {
    case GGML_TYPE_F32: return 0;
    case GGML_TYPE_F16: return 1;
    case GGML_TYPE_Q4_0: return 2;
    case GGML_TYPE_Q8_0: return 7;
    case GGML_TYPE_Q4_K: return 14;   /* Q4_K_S */
    case GGML_TYPE_Q5_K: return 16;   /* Q5_K_S */
    case GGML_TYPE_Q6_K: return 18;
    case GGML_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* Piece i of the filler vocabulary: "▁" followed by i in bijective base 26
 * (a..z, aa..az, ...), so every piece is distinct. */
static void filler_piece(uint64_t i, char *buf, size_t cap) {
    char letters[16];
    int n = 0;
    uint64_t k = i + 1;
    while (k > 0 && n < (int)sizeof letters) {
        k--;
        letters[n++] = (char)('a' + k % 26);
        k /= 26;
    }
    size_t pos = (size_t)snprintf(buf, cap, "\xe2\x96\x81");
    for (int j = n - 1; j >= 0 && pos + 1 < cap; j--) buf[pos++] = letters[j];
    buf[pos < cap ? pos : cap - 1] = '\0';
}

static int add_vocab(struct gguf_writer *w, int n_vocab) {
    size_t n = (size_t)n_vocab;
    char **tokens = calloc(n, sizeof *tokens);
    float *scores = calloc(n, sizeof *scores);
    int32_t *types = calloc(n, sizeof *types);
    char *text = malloc(n * 24);   /* every piece fits in 24 bytes */
    int rc = -1;
    if (!tokens || !scores || !types || !text) goto out;
    for (size_t i = 0; i < n; i++) {
        char *p = text + 24 * i;
        tokens[i] = p;
        if (i == 0) { strcpy(p, "<unk>"); types[i] = 2; }
        else if (i == 1) { strcpy(p, "<s>"); types[i] = 3; }
        else if (i == 2) { strcpy(p, "</s>"); types[i] = 3; }
        else if (i < 259) { snprintf(p, 24, "<0x%02X>", (unsigned)(i - 3)); types[i] = 6; }
        else {
            filler_piece(i - 259, p, 24);
            types[i] = 1;
            scores[i] = -(float)(i - 259);   /* earlier pieces merge first */
        }
    }
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)tokens, n);
    gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, n);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false);
    rc = 0;
out:
    free(tokens);
    free(scores);
    free(types);
    free(text);
    return rc;
}

static void add_metadata(struct gguf_writer *w, const struct synth_spec *s) {
    const char *a = s->arch;
    char key[96], desc[512], tb[32];
    const char *tn = ggml_type_name(s->weight_type, tb, sizeof tb);
    int head_dim = s->dim / s->n_heads;
    snprintf(desc, sizeof desc,
             "ctxbench synthetic %s: dim %d, %d layers, %d heads, %d KV heads, ffn %d, vocab %d, ctx %d, "
             "rope base %g, %s weights (std %g), %s output, seed %llu",
             a, s->dim, s->n_layers, s->n_heads, s->n_kv_heads, s->ffn_dim, s->n_vocab, s->ctx_train, s->rope_base,
             tn, s->weight_std > 0 ? s->weight_std : 0.02, s->tied_output ? "tied" : "untied",
             (unsigned long long)s->seed);
    gguf_writer_add_str(w, "general.architecture", a);
    char name[160];
    snprintf(name, sizeof name, "ctxbench synthetic %s %dx%d %s seed %llu", a, s->dim, s->n_layers, tn,
             (unsigned long long)s->seed);
    gguf_writer_add_str(w, "general.name", name);
    gguf_writer_add_str(w, "general.description", desc);
    gguf_writer_add_u32(w, "general.file_type", file_type_of(s->weight_type));
    if (ggml_block_elems(s->weight_type) > 1) gguf_writer_add_u32(w, "general.quantization_version", 2);
    gguf_writer_add_u64(w, "ctxbench.synth.seed", s->seed);
#define AK(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    gguf_writer_add_u32(w, AK("context_length"), (uint32_t)s->ctx_train);
    gguf_writer_add_u32(w, AK("embedding_length"), (uint32_t)s->dim);
    gguf_writer_add_u32(w, AK("block_count"), (uint32_t)s->n_layers);
    gguf_writer_add_u32(w, AK("feed_forward_length"), (uint32_t)s->ffn_dim);
    gguf_writer_add_u32(w, AK("attention.head_count"), (uint32_t)s->n_heads);
    gguf_writer_add_u32(w, AK("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    gguf_writer_add_u32(w, AK("rope.dimension_count"), (uint32_t)head_dim);
    gguf_writer_add_f32(w, AK("rope.freq_base"), (float)s->rope_base);
    gguf_writer_add_f32(w, AK("attention.layer_norm_rms_epsilon"), (float)(s->rms_eps > 0 ? s->rms_eps : 1e-5));
    gguf_writer_add_u32(w, AK("vocab_size"), (uint32_t)s->n_vocab);
#undef AK
}

/* The tensors in llama.cpp's order. Returns the count, or 0 if out of memory. */
static size_t plan_tensors(const struct synth_spec *s, struct tensor_plan **out) {
    bool qwen = strcmp(s->arch, "qwen2") == 0;
    size_t per_layer = qwen ? 12 : 9;
    size_t n = 3 + per_layer * (size_t)s->n_layers + (size_t)s->n_extra;
    struct tensor_plan *p = calloc(n, sizeof *p);
    if (!p) return 0;
    const uint64_t dim = (uint64_t)s->dim, kv_dim = (uint64_t)(s->dim / s->n_heads) * (uint64_t)s->n_kv_heads;
    const uint64_t ffn = (uint64_t)s->ffn_dim, vocab = (uint64_t)s->n_vocab;
    const uint32_t wt = s->weight_type;
    size_t k = 0;
#define ADD(nm, a0, a1, ty, fl) \
    (snprintf(p[k].name, sizeof p[k].name, "%s", nm), p[k].ne0 = (a0), p[k].ne1 = (a1), p[k].type = (ty), \
     p[k].fill = (fl), k++)
    ADD("token_embd.weight", dim, vocab, wt, FILL_NORMAL);
    for (int l = 0; l < s->n_layers; l++) {
        char nm[64];
#define L(suffix) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), nm)
        ADD(L("attn_norm.weight"), dim, 1, GGML_TYPE_F32, FILL_ONES);
        ADD(L("attn_q.weight"), dim, dim, wt, FILL_NORMAL);
        ADD(L("attn_k.weight"), dim, kv_dim, wt, FILL_NORMAL);
        ADD(L("attn_v.weight"), dim, kv_dim, wt, FILL_NORMAL);
        if (qwen) {
            ADD(L("attn_q.bias"), dim, 1, GGML_TYPE_F32, FILL_NORMAL);
            ADD(L("attn_k.bias"), kv_dim, 1, GGML_TYPE_F32, FILL_NORMAL);
            ADD(L("attn_v.bias"), kv_dim, 1, GGML_TYPE_F32, FILL_NORMAL);
        }
        ADD(L("attn_output.weight"), dim, dim, wt, FILL_NORMAL);
        ADD(L("ffn_norm.weight"), dim, 1, GGML_TYPE_F32, FILL_ONES);
        ADD(L("ffn_gate.weight"), dim, ffn, wt, FILL_NORMAL);
        ADD(L("ffn_up.weight"), dim, ffn, wt, FILL_NORMAL);
        ADD(L("ffn_down.weight"), ffn, dim, wt, FILL_NORMAL);
#undef L
    }
    ADD("output_norm.weight", dim, 1, GGML_TYPE_F32, FILL_ONES);
    if (!s->tied_output) ADD("output.weight", dim, vocab, wt, FILL_NORMAL);
    for (int i = 0; i < s->n_extra; i++) {
        const struct synth_extra *x = &s->extra[i];
        p[k].values = x->values;
        ADD(x->name, x->ne0, 1, x->type, x->values ? FILL_GIVEN : FILL_NORMAL);
    }
#undef ADD
    *out = p;
    return k;
}

int synth_write(const char *path, const struct synth_spec *s, char *err, size_t errlen) {
    if (synth_check(s, err, errlen) != 0) return -1;
    struct tensor_plan *plan = NULL;
    size_t n_tensors = plan_tensors(s, &plan);
    struct gguf_writer *w = gguf_writer_new();
    float *rows = NULL;
    uint8_t *packed = NULL;
    int rc = -1;
    if (!n_tensors || !w) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    add_metadata(w, s);
    if (add_vocab(w, s->n_vocab) != 0) {
        snprintf(err, errlen, "%s: out of memory for the vocabulary", path);
        goto out;
    }
    for (size_t i = 0; i < n_tensors; i++) {
        const struct tensor_plan *t = &plan[i];
        uint64_t ne[2] = { t->ne0, t->ne1 };
        gguf_writer_add_tensor(w, t->name, t->ne1 > 1 ? 2 : 1, ne, t->type, NULL);
    }
    if (gguf_writer_begin(w, path, err, errlen) != 0) goto out;

    /* Rows are generated and encoded about a million values at a time. */
    const size_t chunk_elems = 1u << 20;
    size_t max_row = (size_t)(s->dim > s->ffn_dim ? s->dim : s->ffn_dim);
    size_t cap_elems = chunk_elems > max_row ? chunk_elems : max_row;
    rows = malloc(cap_elems * sizeof *rows);
    packed = malloc(cap_elems * sizeof(float));   /* no type is wider than F32 */
    if (!rows || !packed) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    const double std = s->weight_std > 0 ? s->weight_std : 0.02;
    for (size_t i = 0; i < n_tensors; i++) {
        const struct tensor_plan *t = &plan[i];
        struct rng r;
        rng_seed(&r, s->seed, (uint64_t)i + 1);
        size_t rows_per_chunk = cap_elems / (size_t)t->ne0;
        size_t row_bytes = ggml_row_bytes(t->type, t->ne0);
        for (uint64_t r0 = 0; r0 < t->ne1; r0 += rows_per_chunk) {
            size_t nr = (size_t)(t->ne1 - r0 < rows_per_chunk ? t->ne1 - r0 : rows_per_chunk);
            size_t n = nr * (size_t)t->ne0;
            if (t->fill == FILL_ONES) {
                if (s->norm_std > 0) fill_normal(&r, rows, n, s->norm_std);
                for (size_t j = 0; j < n; j++) rows[j] = s->norm_std > 0 ? 1.0f + rows[j] : 1.0f;
            }
            else if (t->fill == FILL_GIVEN)
                memcpy(rows, t->values + r0 * t->ne0, n * sizeof *rows);
            else
                fill_normal(&r, rows, n, std);
            /* rows are a whole number of blocks, so the chunk encodes as one long row */
            quantize_row(t->type, rows, packed, n);
            if (gguf_writer_append(w, packed, nr * row_bytes, err, errlen) != 0) goto out;
        }
    }
    if (gguf_writer_end(w, err, errlen) != 0) goto out;
    rc = 0;
out:
    gguf_writer_free(w);   /* removes the partial file if the stream did not end */
    free(plan);
    free(rows);
    free(packed);
    return rc;
}
