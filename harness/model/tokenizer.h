/* Tokenizers read from GGUF metadata (tokenizer.ggml.*):
 *  - "llama": SentencePiece-style BPE over scored pieces, "▁" for spaces,
 *    byte fallback through <0xXX> pieces (Llama 1/2, Mistral, TinyStories).
 *  - "gpt2": byte-level BPE with ranked merges and a regex pre-tokenizer chosen
 *    by tokenizer.ggml.pre ("default"/"gpt-2", "llama-bpe"/Llama 3, "qwen2").
 * Both reproduce llama.cpp's ids for the same vocabulary. */
#ifndef CTX_TOKENIZER_H
#define CTX_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct gguf;

enum tokenizer_kind { TOKENIZER_SPM, TOKENIZER_GPT2 };

struct tokenizer;

/* NULL + one-line reason in err on failure (missing keys, bad arrays, unknown model). */
struct tokenizer *tokenizer_load(const struct gguf *g, char *err, size_t errlen);
void tokenizer_free(struct tokenizer *t);

enum tokenizer_kind tokenizer_kind(const struct tokenizer *t);
const char *tokenizer_pre_name(const struct tokenizer *t);  /* pre-tokenizer in use ("spm" for SPM) */
int32_t tokenizer_n_vocab(const struct tokenizer *t);
int32_t tokenizer_bos(const struct tokenizer *t);   /* -1 if the vocabulary has none */
int32_t tokenizer_eos(const struct tokenizer *t);
/* Whether the model expects BOS at the start of a sequence (tokenizer.ggml.add_bos_token,
 * defaulting as llama.cpp does: true for SPM, false for GPT-2 unless set). */
bool tokenizer_add_bos_default(const struct tokenizer *t);

/* Encodes len bytes of UTF-8 text. BOS is prepended only if add_bos is true.
 * On success returns 0 and a malloc'd array in *ids (caller frees) of *n ids.
 * SPM: as llama.cpp with add_space_prefix (a leading space is added to the text). */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                     int32_t **ids, size_t *n);

/* The raw vocabulary string of a token (as stored in the GGUF). */
const char *tokenizer_piece(const struct tokenizer *t, int32_t id, size_t *len);
/* The bytes a token stands for in text ("▁" -> ' ', <0x0A> -> '\n', GPT-2 byte
 * characters -> bytes; control tokens -> empty). Writes at most cap bytes and returns
 * the full length. */
size_t tokenizer_decode_token(const struct tokenizer *t, int32_t id, char *buf, size_t cap);

#endif
