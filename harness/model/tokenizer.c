/* Tokenizers from GGUF metadata (see tokenizer.h). Both kinds are the same
 * greedy BPE loop: cut the text into symbols, put every adjacent pair that
 * the vocabulary knows into a priority queue, and repeatedly merge the best
 * pair, re-queuing the new pairs on either side. They differ in what "best"
 * means (SPM: highest piece score; GPT-2: lowest merge rank), in how text
 * becomes symbols (SPM: UTF-8 characters of the whole text with spaces as
 * "▁"; GPT-2: characters of byte-encoded words from a regex pre-tokenizer) and
 * in the fallback for symbols without a piece (SPM: <0xXX> byte pieces).
 * Ties go to the leftmost pair, as in llama.cpp, so the ids match it. */
#include "tokenizer.h"
#include "gguf.h"
#include "unicode.h"
#include "input.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum token_type {
    TOKEN_UNDEFINED = 0, TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6
};

/* An open-addressing hash table of byte strings stored in a text arena: maps a
 * piece to its token id, or a merge "left right" (stored as left+right with the
 * split position) to its rank. Slots hold entry index + 1 (0 = empty). */
struct str_table {
    uint32_t *slot;
    size_t mask;
};

/* GPT-2's byte characters lie in U+0021..U+0143. */
#define GPT2_CHARS 0x144

/* Longest text encode accepts: symbol offsets and indices are 32-bit, and a
 * byte-encoded GPT-2 word takes up to 8 bytes per codepoint. */
#define MAX_TEXT_BYTES ((size_t)1 << 27)

struct tokenizer {
    enum tokenizer_kind kind;
    enum pretok_kind pre;
    const char *pre_name;
    int32_t n_vocab;
    char *piece_text;          /* every piece, back to back */
    uint64_t *piece_off;       /* n_vocab + 1 offsets into piece_text */
    float *score;              /* per token (SPM priorities; 0 when absent) */
    uint8_t *type;             /* per token, enum token_type */
    struct str_table pieces;   /* piece -> token id (the last of duplicates wins, as in llama.cpp) */
    /* GPT-2 merges, rank = index: merge_text holds left+right, merge_off the n+1 offsets,
     * merge_split the length of left. */
    size_t n_merges;
    char *merge_text;
    uint64_t *merge_off;
    uint32_t *merge_split;
    struct str_table merges;   /* the first of duplicate merges wins, as in llama.cpp */
    int32_t bos, eos, unk;
    bool add_bos;
    bool add_space_prefix;     /* SPM */
    bool ignore_merges;        /* GPT-2 (Llama 3): a word that is a whole piece is taken as is */
    int32_t byte_piece[256];   /* SPM: token of <0xXX> (or of the single byte), -1 if none */
    char byte_char[256][2];    /* GPT-2: the UTF-8 of the character standing for each byte */
    uint8_t byte_char_len[256];
    int16_t char_byte[GPT2_CHARS];   /* GPT-2: the byte each character U+0000..U+0143 stands for, or -1 */
};

/* ---- hashing ------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t len, size_t split) {
    uint64_t h = 1469598103934665603ull ^ (split * 0x9E3779B97F4A7C15ull);   /* FNV-1a, salted */
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h ^ (h >> 29);
}

static bool table_init(struct str_table *t, size_t n_entries) {
    size_t cap = 16;
    while (cap < 2 * n_entries) cap *= 2;
    t->slot = calloc(cap, sizeof *t->slot);
    t->mask = cap - 1;
    return t->slot != NULL;
}

static const char *piece_ptr(const struct tokenizer *t, size_t id, size_t *len) {
    *len = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
    return t->piece_text + t->piece_off[id];
}

static const char *merge_ptr(const struct tokenizer *t, size_t r, size_t *len) {
    *len = (size_t)(t->merge_off[r + 1] - t->merge_off[r]);
    return t->merge_text + t->merge_off[r];
}

static int32_t piece_lookup(const struct tokenizer *t, const char *s, size_t len) {
    for (size_t i = hash_bytes(s, len, 0) & t->pieces.mask;; i = (i + 1) & t->pieces.mask) {
        uint32_t e = t->pieces.slot[i];
        if (!e) return -1;
        size_t plen;
        const char *p = piece_ptr(t, e - 1, &plen);
        if (plen == len && memcmp(p, s, len) == 0) return (int32_t)(e - 1);
    }
}

/* Inserts token id; a later duplicate replaces an earlier one. */
static void piece_insert(struct tokenizer *t, uint32_t id) {
    size_t len;
    const char *s = piece_ptr(t, id, &len);
    for (size_t i = hash_bytes(s, len, 0) & t->pieces.mask;; i = (i + 1) & t->pieces.mask) {
        uint32_t e = t->pieces.slot[i];
        size_t plen;
        const char *p = e ? piece_ptr(t, e - 1, &plen) : NULL;
        if (!e || (plen == len && memcmp(p, s, len) == 0)) {
            t->pieces.slot[i] = id + 1;
            return;
        }
    }
}

/* Rank of merging left = s[0..split) with right = s[split..len), or -1. */
static int64_t merge_rank(const struct tokenizer *t, const char *s, size_t len, size_t split) {
    for (size_t i = hash_bytes(s, len, split) & t->merges.mask;; i = (i + 1) & t->merges.mask) {
        uint32_t e = t->merges.slot[i];
        if (!e) return -1;
        size_t mlen;
        const char *m = merge_ptr(t, e - 1, &mlen);
        if (mlen == len && t->merge_split[e - 1] == split && memcmp(m, s, len) == 0) return (int64_t)(e - 1);
    }
}

static void merge_insert(struct tokenizer *t, uint32_t r) {
    size_t len, split = t->merge_split[r];
    const char *s = merge_ptr(t, r, &len);
    for (size_t i = hash_bytes(s, len, split) & t->merges.mask;; i = (i + 1) & t->merges.mask) {
        uint32_t e = t->merges.slot[i];
        if (!e) { t->merges.slot[i] = r + 1; return; }
        size_t mlen;
        const char *m = merge_ptr(t, e - 1, &mlen);
        if (mlen == len && t->merge_split[e - 1] == split && memcmp(m, s, len) == 0) return;
    }
}

/* ---- loading ------------------------------------------------------------ */

static struct tokenizer *fail(struct tokenizer *t, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    tokenizer_free(t);
    return NULL;
}

/* An array-valued key with elements of type want, or NULL (and why in *why). */
static const struct gguf_kv *find_array(const struct gguf *g, const char *key, enum gguf_value_type want,
                                        const char **why) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    *why = NULL;
    if (!kv) { *why = "missing"; return NULL; }
    if (kv->type != GGUF_TYPE_ARRAY) { *why = "not an array"; return NULL; }
    if (kv->v.arr.type != want) { *why = "has the wrong element type"; return NULL; }
    return kv;
}

/* A special token id key: absent -> dflt; the 0xFFFFFFFF "none" marker -> -1;
 * out of range -> error. */
static bool special_id(const struct gguf *g, const char *key, int32_t dflt, int32_t n_vocab, int32_t *out) {
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) { *out = dflt < n_vocab ? dflt : -1; return true; }
    uint64_t v;
    if (kv->type == GGUF_TYPE_INT32 || kv->type == GGUF_TYPE_INT64) {
        if (kv->v.i64 == -1) { *out = -1; return true; }
    }
    if (!gguf_get_u64(g, key, &v)) return false;
    if (v == 0xFFFFFFFFu) { *out = -1; return true; }
    if (v >= (uint64_t)n_vocab) return false;
    *out = (int32_t)v;
    return true;
}

static bool get_bool(const struct gguf *g, const char *key, bool dflt) {
    uint64_t v;
    return gguf_get_u64(g, key, &v) ? v != 0 : dflt;
}

/* The pre-tokenizer names llama.cpp knows for the splits implemented here. */
static bool pick_pre(const char *name, enum pretok_kind *kind, const char **canon, bool *llama3_defaults) {
    static const struct { const char *name; enum pretok_kind kind; const char *canon; bool llama3; } known[] = {
        { "default", PRETOK_DEFAULT, "default", false },
        { "gpt-2", PRETOK_GPT2, "gpt-2", false },
        { "llama-bpe", PRETOK_LLAMA3, "llama-bpe", true },
        { "llama3", PRETOK_LLAMA3, "llama-bpe", true },
        { "llama-v3", PRETOK_LLAMA3, "llama-bpe", true },
        { "qwen2", PRETOK_QWEN2, "qwen2", false },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) == 0) {
            *kind = known[i].kind;
            *canon = known[i].canon;
            *llama3_defaults = known[i].llama3;
            return true;
        }
    }
    return false;
}

/* GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes take codepoints 256, 257, ... in byte order. */
static uint32_t gpt2_byte_codepoint(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return 256 + n;
}

/* Copies n strings of a string array into one arena with n+1 offsets. */
static bool copy_strings(const struct gguf_kv *kv, char **text, uint64_t **off) {
    uint64_t n = kv->v.arr.n, total = 0;
    for (uint64_t i = 0; i < n; i++) total += gguf_arr_str(kv, i).len;   /* bounded by the file size */
    *text = malloc(total ? total : 1);
    *off = malloc((n + 1) * sizeof **off);
    if (!*text || !*off) return false;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s = gguf_arr_str(kv, i);
        (*off)[i] = pos;
        memcpy(*text + pos, s.ptr, s.len);
        pos += s.len;
    }
    (*off)[n] = pos;
    return true;
}

static bool load_merges(struct tokenizer *t, const struct gguf_kv *kv) {
    t->n_merges = kv->v.arr.n;
    uint64_t total = 0;
    for (uint64_t i = 0; i < t->n_merges; i++) total += gguf_arr_str(kv, i).len;
    t->merge_text = malloc(total ? total : 1);
    t->merge_off = malloc((t->n_merges + 1) * sizeof *t->merge_off);
    t->merge_split = malloc((t->n_merges ? t->n_merges : 1) * sizeof *t->merge_split);
    if (!t->merge_text || !t->merge_off || !t->merge_split || !table_init(&t->merges, t->n_merges)) return false;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < t->n_merges; i++) {
        struct gguf_str s = gguf_arr_str(kv, i);
        /* "left right", split at the first space after the first byte (a left part
         * may itself start with a space); no space: an empty pair that never matches */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        size_t left = sp ? (size_t)(sp - s.ptr) : 0;
        size_t right = sp ? s.len - left - 1 : 0;
        t->merge_off[i] = pos;
        memcpy(t->merge_text + pos, s.ptr, left);
        if (right) memcpy(t->merge_text + pos + left, sp + 1, right);
        t->merge_split[i] = (uint32_t)left;
        pos += left + right;
    }
    t->merge_off[t->n_merges] = pos;
    for (uint64_t i = 0; i < t->n_merges; i++) merge_insert(t, (uint32_t)i);
    return true;
}

struct tokenizer *tokenizer_load(const struct gguf *g, char *err, size_t errlen) {
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) return fail(NULL, err, errlen, "tokenizer: out of memory");
    const char *why;

    struct gguf_str model;
    if (!gguf_get_str(g, "tokenizer.ggml.model", &model))
        return fail(t, err, errlen, "tokenizer: no tokenizer.ggml.model string in %s (a GGUF without a vocabulary?)", g->path);
    if (gguf_str_eq(model, "llama")) t->kind = TOKENIZER_SPM;
    else if (gguf_str_eq(model, "gpt2")) t->kind = TOKENIZER_GPT2;
    else return fail(t, err, errlen, "tokenizer: unsupported tokenizer.ggml.model '%s' (only 'llama' and 'gpt2')",
                     ECHO_N(model.ptr, model.len > 64 ? 64 : model.len));

    const struct gguf_kv *tokens = find_array(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &why);
    if (!tokens) return fail(t, err, errlen, "tokenizer: tokenizer.ggml.tokens %s (need an array of strings)", why);
    if (tokens->v.arr.n == 0 || tokens->v.arr.n >= 0x7FFFFFFF)
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.tokens has %llu entries", (unsigned long long)tokens->v.arr.n);
    t->n_vocab = (int32_t)tokens->v.arr.n;
    size_t nv = (size_t)t->n_vocab;

    const struct gguf_kv *scores = find_array(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &why);
    if (!scores && (t->kind == TOKENIZER_SPM || strcmp(why, "missing") != 0))
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.scores %s (need an array of float32)", why);
    if (scores && scores->v.arr.n != nv)
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.scores has %llu entries but there are %zu tokens",
                    (unsigned long long)scores->v.arr.n, nv);
    const struct gguf_kv *types = find_array(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &why);
    if (!types && strcmp(why, "missing") != 0)
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.token_type %s (need an array of int32)", why);
    if (types && types->v.arr.n != nv)
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.token_type has %llu entries but there are %zu tokens",
                    (unsigned long long)types->v.arr.n, nv);
    const struct gguf_kv *merges = NULL;
    if (t->kind == TOKENIZER_GPT2) {
        merges = find_array(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &why);
        if (!merges) return fail(t, err, errlen, "tokenizer: tokenizer.ggml.merges %s (need an array of strings)", why);
        if (merges->v.arr.n >= 0x7FFFFFFF) return fail(t, err, errlen, "tokenizer: too many merges");
    }

    t->score = calloc(nv, sizeof *t->score);
    t->type = malloc(nv);
    if (!t->score || !t->type || !copy_strings(tokens, &t->piece_text, &t->piece_off) || !table_init(&t->pieces, nv))
        return fail(t, err, errlen, "tokenizer: out of memory for %zu tokens", nv);
    for (size_t i = 0; i < nv; i++) {
        if (scores) memcpy(&t->score[i], scores->v.arr.data + 4 * i, 4);   /* the map may be unaligned */
        int32_t ty = TOKEN_NORMAL;
        if (types) memcpy(&ty, types->v.arr.data + 4 * i, 4);
        t->type[i] = (uint8_t)(ty >= TOKEN_UNDEFINED && ty <= TOKEN_BYTE ? ty : TOKEN_UNDEFINED);
        piece_insert(t, (uint32_t)i);
    }
    if (merges && !load_merges(t, merges)) return fail(t, err, errlen, "tokenizer: out of memory for the merges");

    bool spm = t->kind == TOKENIZER_SPM;
    if (!special_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, t->n_vocab, &t->bos))
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.bos_token_id is not a token id below %d", t->n_vocab);
    if (!special_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, t->n_vocab, &t->eos))
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.eos_token_id is not a token id below %d", t->n_vocab);
    if (!special_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, t->n_vocab, &t->unk))
        return fail(t, err, errlen, "tokenizer: tokenizer.ggml.unknown_token_id is not a token id below %d", t->n_vocab);

    if (spm) {
        t->pre = PRETOK_DEFAULT;   /* unused */
        t->pre_name = "spm";
        t->add_bos = get_bool(g, "tokenizer.ggml.add_bos_token", true);
        t->add_space_prefix = get_bool(g, "tokenizer.ggml.add_space_prefix", true);
        for (unsigned b = 0; b < 256; b++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            int32_t id = piece_lookup(t, hex, 6);
            if (id < 0) { char c = (char)b; id = piece_lookup(t, &c, 1); }
            t->byte_piece[b] = id;
        }
    } else {
        struct gguf_str pre;
        char name[64] = "default";   /* llama.cpp's choice when the key is missing */
        if (gguf_get_str(g, "tokenizer.ggml.pre", &pre)) {
            if (pre.len >= sizeof name)
                return fail(t, err, errlen, "tokenizer: unsupported tokenizer.ggml.pre (%llu bytes long)", (unsigned long long)pre.len);
            memcpy(name, pre.ptr, pre.len);
            name[pre.len] = '\0';
        }
        bool llama3 = false;
        if (!pick_pre(name, &t->pre, &t->pre_name, &llama3))
            return fail(t, err, errlen, "tokenizer: unsupported tokenizer.ggml.pre '%s' (known: default, gpt-2, llama-bpe, qwen2)", ECHO(name));
        t->ignore_merges = llama3;
        t->add_bos = get_bool(g, "tokenizer.ggml.add_bos_token", llama3);
        for (size_t c = 0; c < GPT2_CHARS; c++) t->char_byte[c] = -1;
        for (unsigned b = 0; b < 256; b++) {
            char buf[4];
            uint32_t cp = gpt2_byte_codepoint(b);
            t->byte_char_len[b] = (uint8_t)utf8_encode(cp, buf);
            memcpy(t->byte_char[b], buf, t->byte_char_len[b]);
            t->char_byte[cp] = (int16_t)b;
        }
    }
    return t;
}

void tokenizer_free(struct tokenizer *t) {
    if (!t) return;
    free(t->piece_text);
    free(t->piece_off);
    free(t->score);
    free(t->type);
    free(t->pieces.slot);
    free(t->merge_text);
    free(t->merge_off);
    free(t->merge_split);
    free(t->merges.slot);
    free(t);
}

enum tokenizer_kind tokenizer_kind(const struct tokenizer *t) { return t->kind; }
const char *tokenizer_pre_name(const struct tokenizer *t) { return t->pre_name; }
int32_t tokenizer_n_vocab(const struct tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const struct tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const struct tokenizer *t) { return t->eos; }
bool tokenizer_add_bos_default(const struct tokenizer *t) { return t->add_bos; }

/* ---- the BPE loop ------------------------------------------------------- */

/* A symbol is a slice [off, off+len) of the text being merged, in a doubly
 * linked list of live symbols; merged-away symbols have len 0. */
struct symbol {
    int32_t prev, next;
    uint32_t off, len;
};

/* A candidate merge of two adjacent symbols; size is their combined length
 * when queued, so a stale entry (either side changed since) is recognised. */
struct bigram {
    int32_t left, right;
    double priority;   /* SPM: piece score; GPT-2: -rank */
    uint32_t size;
};

struct bigram_heap {
    struct bigram *b;
    size_t n, cap;
};

/* Higher priority first; between equals the leftmost pair. */
static bool better(const struct bigram *x, const struct bigram *y) {
    return x->priority > y->priority || (x->priority == y->priority && x->left < y->left);
}

static bool heap_push(struct bigram_heap *h, struct bigram v) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        struct bigram *p = realloc(h->b, cap * sizeof *p);
        if (!p) return false;
        h->b = p;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && better(&v, &h->b[(i - 1) / 2])) {
        h->b[i] = h->b[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->b[i] = v;
    return true;
}

static struct bigram heap_pop(struct bigram_heap *h) {
    struct bigram top = h->b[0], last = h->b[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && better(&h->b[c + 1], &h->b[c])) c++;
        if (!better(&h->b[c], &last)) break;
        h->b[i] = h->b[c];
        i = c;
    }
    if (h->n) h->b[i] = last;
    return top;
}

/* What one merge session works on. */
struct bpe_session {
    const struct tokenizer *t;
    const char *text;
    struct symbol *sym;
    size_t n_sym, cap_sym;
    struct bigram_heap heap;
};

/* Queues the pair (left, right) if the vocabulary can merge it. */
static bool try_pair(struct bpe_session *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const struct symbol *l = &s->sym[left], *r = &s->sym[right];
    const char *p = s->text + l->off;
    size_t size = (size_t)l->len + r->len;
    double priority;
    if (s->t->kind == TOKENIZER_SPM) {
        int32_t id = piece_lookup(s->t, p, size);
        if (id < 0) return true;
        priority = s->t->score[id];
    } else {
        int64_t rank = merge_rank(s->t, p, size, l->len);
        if (rank < 0) return true;
        priority = -(double)rank;
    }
    return heap_push(&s->heap, (struct bigram){ left, right, priority, (uint32_t)size });
}

/* Cuts text[0..len) into UTF-8 characters (by lead byte, as llama.cpp does)
 * and merges until no queued pair remains. */
static bool bpe_merge(struct bpe_session *s, const char *text, size_t len) {
    s->text = text;
    s->n_sym = 0;
    s->heap.n = 0;
    if (len > s->cap_sym) {
        struct symbol *p = realloc(s->sym, len * sizeof *p);
        if (!p) return false;
        s->sym = p;
        s->cap_sym = len;
    }
    for (size_t off = 0; off < len;) {
        size_t n = utf8_len_from_lead((unsigned char)text[off]);
        if (n > len - off) n = len - off;
        int32_t i = (int32_t)s->n_sym++;
        s->sym[i] = (struct symbol){ i - 1, off + n == len ? -1 : i + 1, (uint32_t)off, (uint32_t)n };
        off += n;
    }
    for (size_t i = 1; i < s->n_sym; i++)
        if (!try_pair(s, (int32_t)i - 1, (int32_t)i)) return false;
    while (s->heap.n) {
        struct bigram b = heap_pop(&s->heap);
        struct symbol *l = &s->sym[b.left], *r = &s->sym[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.size) continue;   /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = b.left;
        if (!try_pair(s, l->prev, b.left) || !try_pair(s, b.left, l->next)) return false;
    }
    return true;
}

/* A growing list of output ids. */
struct id_list {
    int32_t *id;
    size_t n, cap;
};

static bool id_push(struct id_list *o, int32_t id) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *p = realloc(o->id, cap * sizeof *p);
        if (!p) return false;
        o->id = p;
        o->cap = cap;
    }
    o->id[o->n++] = id;
    return true;
}

/* ---- SentencePiece-style ------------------------------------------------ */

static bool encode_spm(const struct tokenizer *t, const char *text, size_t len, struct id_list *out) {
    if (len == 0) return true;   /* no space prefix for empty text, as llama.cpp */
    /* " " + text with every space escaped as U+2581 */
    size_t spaces = t->add_space_prefix;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t n = len + t->add_space_prefix + 2 * spaces;
    char *buf = malloc(n);
    if (!buf) return false;
    size_t k = 0;
    for (size_t i = 0; i < len + t->add_space_prefix; i++) {
        char c = t->add_space_prefix ? (i == 0 ? ' ' : text[i - 1]) : text[i];
        if (c == ' ') { memcpy(buf + k, "\xE2\x96\x81", 3); k += 3; }
        else buf[k++] = c;
    }
    struct bpe_session s = { .t = t };
    bool ok = bpe_merge(&s, buf, n);
    for (int32_t i = 0; ok && s.n_sym && i >= 0; i = s.sym[i].next) {
        const struct symbol *y = &s.sym[i];
        int32_t id = piece_lookup(t, buf + y->off, y->len);
        if (id >= 0) { ok = id_push(out, id); continue; }
        /* no piece: one byte piece per byte (merged symbols always have a piece) */
        for (uint32_t j = 0; ok && j < y->len; j++) {
            int32_t b = t->byte_piece[(unsigned char)buf[y->off + j]];
            if (b < 0) b = t->unk;
            ok = b >= 0 && id_push(out, b);
        }
    }
    free(s.sym);
    free(s.heap.b);
    free(buf);
    return ok;
}

/* ---- GPT-2 byte-level --------------------------------------------------- */

static bool encode_gpt2(const struct tokenizer *t, const char *text, size_t len, struct id_list *out) {
    if (len == 0) return true;
    uint32_t *cps = malloc(len * sizeof *cps);
    if (!cps) return false;
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t used;
        cps[n++] = utf8_decode(text + off, len - off, &used);
        off += used;
    }
    size_t *words = NULL, n_words = 0;
    if (pretok_split(t->pre, cps, n, &words, &n_words) != 0) { free(cps); return false; }

    struct bpe_session s = { .t = t };
    char *wbuf = NULL;
    size_t wcap = 0;
    bool ok = true;
    size_t start = 0;
    for (size_t w = 0; ok && w < n_words; w++) {
        /* the word's UTF-8, each byte replaced by its GPT-2 character (at most 2 bytes each) */
        size_t need = 8 * words[w];
        if (need > wcap) {
            char *p = realloc(wbuf, need);
            if (!p) { ok = false; break; }
            wbuf = p;
            wcap = need;
        }
        size_t wl = 0;
        for (size_t i = start; i < start + words[w]; i++) {
            char u[4];
            size_t ul = utf8_encode(cps[i], u);
            for (size_t j = 0; j < ul; j++) {
                unsigned char b = (unsigned char)u[j];
                memcpy(wbuf + wl, t->byte_char[b], t->byte_char_len[b]);
                wl += t->byte_char_len[b];
            }
        }
        start += words[w];
        if (t->ignore_merges) {
            int32_t id = piece_lookup(t, wbuf, wl);
            if (id >= 0) { ok = id_push(out, id); continue; }
        }
        if (!bpe_merge(&s, wbuf, wl)) { ok = false; break; }
        for (int32_t i = 0; ok && s.n_sym && i >= 0; i = s.sym[i].next) {
            const struct symbol *y = &s.sym[i];
            int32_t id = piece_lookup(t, wbuf + y->off, y->len);
            if (id >= 0) { ok = id_push(out, id); continue; }
            /* llama.cpp's fallback: any single bytes of the symbol that are pieces */
            for (uint32_t j = 0; ok && j < y->len; j++) {
                int32_t b = piece_lookup(t, wbuf + y->off + j, 1);
                if (b >= 0) ok = id_push(out, b);
            }
        }
    }
    free(wbuf);
    free(s.sym);
    free(s.heap.b);
    free(words);
    free(cps);
    return ok;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                     int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (len > MAX_TEXT_BYTES) return -1;
    if (add_bos && t->bos < 0) return -1;
    struct id_list out = { 0 };
    bool ok = !add_bos || id_push(&out, t->bos);
    if (ok) ok = t->kind == TOKENIZER_SPM ? encode_spm(t, text, len, &out) : encode_gpt2(t, text, len, &out);
    if (!ok) { free(out.id); return -1; }
    if (!out.id) out.id = malloc(sizeof *out.id);   /* a freeable array even for no ids */
    if (!out.id) return -1;
    *ids = out.id;
    *n = out.n;
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

const char *tokenizer_piece(const struct tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) { *len = 0; return ""; }
    return piece_ptr(t, (size_t)id, len);
}

/* Appends bytes to buf while there is room; counts them all. */
static void put(char *buf, size_t cap, size_t *k, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, (*k)++)
        if (*k < cap) buf[*k] = s[i];
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t tokenizer_decode_token(const struct tokenizer *t, int32_t id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return 0;
    size_t len, k = 0;
    const char *p = piece_ptr(t, (size_t)id, &len);
    switch (t->type[id]) {
    case TOKEN_USER_DEFINED:
        put(buf, cap, &k, p, len);
        return k;
    case TOKEN_BYTE:
        if (t->kind == TOKENIZER_SPM && len == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>' &&
            hexval(p[3]) >= 0 && hexval(p[4]) >= 0) {
            char b = (char)(hexval(p[3]) * 16 + hexval(p[4]));
            put(buf, cap, &k, &b, 1);
            return k;
        }
        break;   /* not a <0xXX> piece: decode as text */
    case TOKEN_NORMAL:
        break;
    default:     /* control, unknown, unused, undefined: nothing to print */
        return 0;
    }
    if (t->kind == TOKENIZER_SPM) {
        for (size_t i = 0; i < len;) {
            if (len - i >= 3 && memcmp(p + i, "\xE2\x96\x81", 3) == 0) { put(buf, cap, &k, " ", 1); i += 3; }
            else put(buf, cap, &k, p + i++, 1);
        }
        return k;
    }
    /* GPT-2: each character stands for one byte; others are copied as they are */
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t cp = utf8_decode(p + i, len - i, &used);
        int b = cp < GPT2_CHARS && used > 0 ? t->char_byte[cp] : -1;
        if (b >= 0) { char c = (char)b; put(buf, cap, &k, &c, 1); }
        else put(buf, cap, &k, p + i, used);
        i += used;
    }
    return k;
}
