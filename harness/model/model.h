/* A llama-family model as read from GGUF: hyperparameters from metadata and the
 * weight tensors (still in the mapped file, any supported type). Backends turn
 * this into whatever they compute with. */
#ifndef CTX_MODEL_H
#define CTX_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* How the rotated dimensions are paired (as llama.cpp's rope modes):
 * NORM (llama): pairs (2i, 2i+1); NEOX (qwen2, HF rotate_half): pairs (i, i + n_rot/2). */
enum rope_style { ROPE_NORM = 0, ROPE_NEOX = 2 };

#define ROPE_MAX_FREQ 512       /* n_rot/2 upper bound; model_load rejects larger */

struct gguf;
struct gguf_tensor;
struct tokenizer;

enum model_arch { ARCH_LLAMA, ARCH_QWEN2 };

/* rope.scaling.* keys as the GGUF carries them (type "none" when absent). */
struct rope_scaling_meta {
    char type[32];            /* "none", "linear", "yarn", ... */
    double factor;            /* 0 when absent */
    int64_t original_ctx;     /* rope.scaling.original_context_length, 0 when absent */
    double attn_factor;       /* rope.scaling.attn_factor, 0 when absent */
    double yarn_log_multiplier; /* rope.scaling.yarn_log_multiplier, 0 when absent */
};

struct model_config {
    enum model_arch arch;
    char arch_name[32];
    int dim;            /* embedding_length */
    int n_layers;       /* block_count */
    int n_heads;        /* attention.head_count */
    int n_kv_heads;     /* attention.head_count_kv (defaults to n_heads) */
    int head_dim;       /* dim / n_heads (or attention.key_length) */
    int n_rot;          /* rope.dimension_count (defaults to head_dim) */
    int ffn_dim;        /* feed_forward_length */
    int n_vocab;
    int ctx_train;      /* context_length: the trained context */
    double rope_base;   /* rope.freq_base (default 10000) */
    double rms_eps;     /* attention.layer_norm_rms_epsilon */
    int sliding_window; /* attention.sliding_window, 0 when absent */
    enum rope_style rope_style;
    struct rope_scaling_meta rope_scaling;
    bool tied_output;   /* output.weight absent: token_embd reused */
    /* rope_freqs.weight (Llama 3.1 conversions; llama.cpp freq_factors): n_rot/2 divisors,
     * each finite and > 0, of the model's own inverse frequencies, theta_i =
     * base^(-2i/n_rot) / rope_freqs[i]. Points into the mapped file; NULL when absent. */
    const float *rope_freqs;
};

struct layer_weights {
    const struct gguf_tensor *attn_norm, *wq, *wk, *wv, *wo;
    const struct gguf_tensor *bq, *bk, *bv;  /* all three (qwen2; llama files may have them) or all NULL */
    const struct gguf_tensor *ffn_norm, *w_gate, *w_up, *w_down;
};

struct model {
    struct gguf *gguf;
    struct model_config cfg;
    struct tokenizer *tok;          /* NULL if the file has no vocabulary */
    const struct gguf_tensor *tok_embd, *output_norm, *output;  /* output == tok_embd when tied */
    struct layer_weights *layers;   /* n_layers */
    uint64_t n_params;
    char weight_type[16];           /* most common matrix type, for reports */
};

/* Opens, validates shapes against the config, loads the tokenizer. Every tensor in the
 * file must be one the loader reads (a llama or qwen2 tensor it knows, at a layer below
 * block_count): anything else is refused by name rather than silently ignored.
 * NULL + one-line reason on failure. */
struct model *model_load(const char *path, char *err, size_t errlen);
/* The same from an open GGUF (e.g. gguf_open_memory), which the model takes over:
 * model_free closes it, and so does a failure here. */
struct model *model_from_gguf(struct gguf *g, char *err, size_t errlen);
void model_free(struct model *m);

/* The model's own RoPE inverse frequencies, base^(-2i/n_rot) / rope_freqs[i] (no divisor
 * when the file has no rope_freqs), i < n_rot/2, into out. */
void model_default_inv_freq(const struct model_config *c, double base, float *out);

#endif
