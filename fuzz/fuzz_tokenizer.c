/* Fuzzes the tokenizers (harness/model/tokenizer.c, unicode.c) with real vocabularies: the
 * SentencePiece one of stories260K.gguf, the 32000-token Llama SPM vocabulary and the
 * GPT-2 byte-level BPE one (../shared/models, see ../shared/SOURCES.md). The first byte
 * picks the vocabulary and whether BOS is added; the rest is the text, any bytes.
 * Checks: encoding succeeds, every id is in the vocabulary, BOS comes first exactly when
 * asked for, decoding is bounded by its buffer, and decoding the ids gives the text back,
 * for text in well-formed UTF-8 (for SPM: without the space prefix it adds, and without
 * U+2581, the character SPM spells spaces with). */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz_util.h"
#include "gguf.h"
#include "tokenizer.h"
#include "unicode.h"

static const char *const vocab_files[] = {
    "models/stories260K.gguf",
    "models/vocab/ggml-vocab-llama-spm.gguf",
    "models/vocab/ggml-vocab-gpt-2.gguf",
};
#define N_VOCABS (sizeof vocab_files / sizeof vocab_files[0])
static struct gguf *files[N_VOCABS];
static struct tokenizer *toks[N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[1024], err[512];
        files[i] = gguf_open(shared_path(path, sizeof path, vocab_files[i]), err, sizeof err);
        if (!files[i]) fuzz_setup_failed(path, err);
        toks[i] = tokenizer_load(files[i], err, sizeof err);
        if (!toks[i]) fuzz_setup_failed(path, err);
    }
    return 0;
}

/* UTF-8 that re-encodes to the same bytes: utf8_decode, like llama.cpp, turns malformed
 * bytes into U+FFFD and accepts overlong forms, and neither comes back as it was. */
static bool exact_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t used;
        uint32_t cp = utf8_decode((const char *)s + i, n - i, &used);
        char again[4];
        if (utf8_encode(cp, again) != used || memcmp(again, s + i, used) != 0) return false;
        i += used;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const struct tokenizer *t = toks[data[0] % N_VOCABS];
    bool add_bos = (data[0] & 0x80) && tokenizer_bos(t) >= 0;
    /* the text is its own exact-size heap block (the input is, too), not NUL-terminated */
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int32_t *ids;
    size_t n;
    FUZZ_CHECK(tokenizer_encode(t, text, len, add_bos, &ids, &n) == 0, "encode failed on %zu bytes", len);
    int32_t nv = tokenizer_n_vocab(t);
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < nv, "id %d of %d", ids[i], nv);
    if (add_bos) FUZZ_CHECK(n >= 1 && ids[0] == tokenizer_bos(t), "no BOS first");

    /* Decode: once into a buffer of the full length, and token by token into 2 bytes
     * (the returned length must not depend on the room given). */
    size_t cap = 4 * len + 64, k = 0;
    char *out = malloc(cap);
    FUZZ_CHECK(out != NULL, "out of memory");
    for (size_t i = add_bos ? 1 : 0; i < n; i++) {
        char small[2];
        size_t need = tokenizer_decode_token(t, ids[i], small, sizeof small);
        FUZZ_CHECK(k + need <= cap, "decoding grew past %zu bytes", cap);
        size_t got = tokenizer_decode_token(t, ids[i], out + k, cap - k);
        FUZZ_CHECK(got == need, "decode of %d: %zu bytes, then %zu", ids[i], need, got);
        k += got;
    }

    /* Round trip. SPM puts a space before the text (add_space_prefix) and decodes it. */
    const char *back = out;
    size_t back_len = k;
    if (tokenizer_kind(t) == TOKENIZER_SPM && len > 0 && back_len > 0 && back[0] == ' ') back++, back_len--;
    bool exact = exact_utf8(data + 1, len) &&
                 /* SPM spells a space as U+2581, so a U+2581 in the text comes back as a space */
                 (tokenizer_kind(t) == TOKENIZER_GPT2 || !memmem(text, len, "\xE2\x96\x81", 3));
    if (exact && memchr(text, 0, len) == NULL)
        FUZZ_CHECK(back_len == len && memcmp(back, text, len) == 0, "decode(encode(text)) != text (%zu -> %zu bytes)",
                   len, back_len);
    free(out);
    free(ids);
    return 0;
}
