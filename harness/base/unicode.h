/* Unicode for the byte-level BPE pre-tokenizers: UTF-8 decoding with
 * llama.cpp's error behaviour, the codepoint classes the split rules test
 * (\p{L}, \p{N}, \p{P}, \s), and the splits themselves, each a hand-written
 * matcher equivalent to one of the pre-tokenizer regexes. */
#ifndef CTX_UNICODE_H
#define CTX_UNICODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define UNICODE_REPLACEMENT 0xFFFDu

/* Length of the UTF-8 sequence a lead byte announces (1 for stray continuation
 * bytes), from its high nibble alone: how llama.cpp cuts text into symbols. */
size_t utf8_len_from_lead(unsigned char lead);

/* Decodes one codepoint from s[0..len) (len > 0) and stores how many bytes it
 * used in *used. A malformed or truncated sequence yields U+FFFD and *used = 1. */
uint32_t utf8_decode(const char *s, size_t len, size_t *used);

/* Writes the UTF-8 form of cp (< 0x200000) into out and returns its length (1-4). */
size_t utf8_encode(uint32_t cp, char out[4]);

enum unicode_class { UCLASS_OTHER = 0, UCLASS_LETTER = 1, UCLASS_NUMBER = 2, UCLASS_PUNCT = 3 };

/* General category folded to L / N / P / everything else (Unicode 15.0). */
enum unicode_class unicode_class_of(uint32_t cp);
/* The Unicode White_Space property. */
bool unicode_is_space(uint32_t cp);

/* Pre-tokenizer regexes, by the name tokenizer.ggml.pre gives them:
 *  GPT2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *  LLAMA3:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *           | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *  QWEN2:   as LLAMA3 but \p{N} (one digit per word)
 *  DEFAULT: llama.cpp's fallback chain: [\p{P}\$\+<=>\^~\|]+ , then GPT2,
 *           then \p{N}+ , then [0-9][0-9][0-9] (each splitting the words of the last). */
enum pretok_kind { PRETOK_DEFAULT, PRETOK_GPT2, PRETOK_LLAMA3, PRETOK_QWEN2 };

/* Splits n codepoints into words. On success returns 0 and a malloc'd array in
 * *lens of *n_words word lengths (in codepoints, each > 0, summing to n); the
 * caller frees it. Returns -1 if memory runs out. */
int pretok_split(enum pretok_kind kind, const uint32_t *cps, size_t n, size_t **lens, size_t *n_words);

#endif
