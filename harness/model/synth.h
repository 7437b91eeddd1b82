/* Random-weight llama-family models written as GGUF, for speed and memory
 * measurements at real shapes without downloading real weights. The file
 * uses llama.cpp's tensor names and metadata keys, carries a small
 * SentencePiece-style vocabulary (control tokens, 256 byte pieces, filler
 * pieces), and is written tensor by tensor, so a 7B-sized file never has to
 * fit in memory. The same spec and seed always give the same bytes. */
#ifndef CTX_SYNTH_H
#define CTX_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* A 1-D tensor written after the standard ones: rope_freqs.weight as a Llama 3.1
 * conversion carries it, llama's optional attention biases, or a tensor a loader must
 * refuse (tests). */
struct synth_extra {
    const char *name;       /* the tensor name, e.g. "rope_freqs.weight" or "blk.0.attn_q.bias" */
    uint64_t ne0;           /* elements */
    uint32_t type;          /* ggml type the values are stored as (a multiple of its block size) */
    const float *values;    /* ne0 values, or NULL for random normal values with weight_std */
};

struct synth_spec {
    char arch[16];          /* "llama" or "qwen2" (qwen2 adds q/k/v biases) */
    int dim;                /* embedding_length */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int ffn_dim;
    int n_vocab;            /* >= 259: <unk> <s> </s> and 256 byte pieces come first */
    int ctx_train;          /* context_length */
    double rope_base;       /* rope.freq_base */
    double rms_eps;         /* 0: 1e-5 */
    uint32_t weight_type;   /* ggml type of token_embd, output and every layer matrix; norms and biases are F32 */
    bool tied_output;       /* true: no output.weight (the embedding is reused) */
    double weight_std;      /* 0: 0.02 */
    double norm_std;        /* norm weights 1 + norm_std x normal noise (0: all ones, as trained models start) */
    uint64_t seed;
    const struct synth_extra *extra;   /* n_extra tensors written after the standard ones */
    int n_extra;
};

/* Fills *s with a named shape ("tiny", "small", "tinyllama", "llama2-7b",
 * "mistral-7b", "qwen2-0.5b"), weight type F16 and seed 1. Returns false for
 * an unknown name. */
bool synth_preset(const char *name, struct synth_spec *s);
/* The preset names, NULL-terminated, for help text. */
extern const char *const synth_preset_names[];

/* Checks the spec (sizes positive and consistent, rows a multiple of the
 * weight type's block size). Returns 0, or -1 with a one-line reason. */
int synth_check(const struct synth_spec *s, char *err, size_t errlen);

/* Writes the model. Returns 0, or -1 with a one-line reason (no partial file is left). */
int synth_write(const char *path, const struct synth_spec *s, char *err, size_t errlen);

#endif
