/* Tokenizer tests: llama.cpp's own test vectors for the SPM and GPT-2
 * vocabularies, the TinyStories vocabularies against a slow llama2.c-style
 * reference that reads its pieces from the separate tok*.bin files, decode
 * round trips, the Llama 3 / Qwen2 / GPT-2 pre-tokenizer splits on strings
 * whose split follows by hand from the regexes, and load errors. */
#include <criterion/criterion.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "gguf.h"
#include "gguf_write.h"
#include "tokenizer.h"
#include "unicode.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

struct loaded {
    struct gguf *g;
    struct tokenizer *t;
};

static struct loaded load(const char *rel) {
    char path[1024], err[512] = "";
    shared_path(path, sizeof path, rel);
    struct loaded l;
    l.g = gguf_open(path, err, sizeof err);
    cr_assert(l.g, "gguf_open %s: %s", path, err);
    l.t = tokenizer_load(l.g, err, sizeof err);
    cr_assert(l.t, "tokenizer_load %s: %s", path, err);
    return l;
}

static void unload(struct loaded l) {
    tokenizer_free(l.t);
    gguf_close(l.g);
}

/* ---- llama.cpp's test vectors ------------------------------------------- */

/* Splits the .inp as llama.cpp's test-tokenizer-0 does (on "\n__ggml_vocab_test__\n",
 * the text after the last separator being one more case only if non-empty) and
 * checks every case against the matching line of the .out. */
static void check_vocab_vectors(const char *rel_gguf) {
    struct loaded l = load(rel_gguf);
    char rel[512];
    size_t inp_len, out_len;
    snprintf(rel, sizeof rel, "%s.inp", rel_gguf);
    char path[1024];
    char *inp = read_file(shared_path(path, sizeof path, rel), &inp_len);
    snprintf(rel, sizeof rel, "%s.out", rel_gguf);
    char *out = read_file(shared_path(path, sizeof path, rel), &out_len);

    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);
    char *outp = out;
    int n_cases = 0, n_bad = 0;
    for (size_t pos = 0; pos < inp_len;) {
        char *next = strstr(inp + pos, sep);
        size_t case_len = next ? (size_t)(next - (inp + pos)) : inp_len - pos;

        /* the expected ids: the next line of the .out */
        cr_assert(*outp, "%s: more inputs than output lines", rel_gguf);
        char *eol = strchr(outp, '\n');
        if (eol) *eol = '\0';
        int32_t want[1024];
        size_t n_want = 0;
        for (char *s = outp; *s;) {
            while (*s == ' ') s++;
            if (!*s) break;
            cr_assert(n_want < 1024);
            want[n_want++] = (int32_t)strtol(s, &s, 10);
        }
        outp = eol ? eol + 1 : outp + strlen(outp);

        int32_t *ids;
        size_t n;
        cr_assert_eq(tokenizer_encode(l.t, inp + pos, case_len, false, &ids, &n), 0);
        bool same = n == n_want;
        for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        if (!same) {
            n_bad++;
            fprintf(stderr, "%s case %d '%.*s': got", rel_gguf, n_cases, (int)case_len, inp + pos);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n   want");
            for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        free(ids);
        n_cases++;
        if (!next) break;
        pos = (size_t)(next - inp) + sep_len;
    }
    cr_expect_eq(*outp, '\0', "%s: more output lines than inputs", rel_gguf);
    cr_expect_eq(n_cases, 46, "%s: %d cases", rel_gguf, n_cases);
    cr_expect_eq(n_bad, 0, "%s: %d of %d cases differ from llama.cpp", rel_gguf, n_bad, n_cases);
    free(inp);
    free(out);
    unload(l);
}

Test(tokenizer, llama_spm_vectors) { check_vocab_vectors("models/vocab/ggml-vocab-llama-spm.gguf"); }
Test(tokenizer, gpt2_vectors) { check_vocab_vectors("models/vocab/ggml-vocab-gpt-2.gguf"); }

Test(tokenizer, vocab_properties) {
    struct loaded spm = load("models/vocab/ggml-vocab-llama-spm.gguf");
    cr_expect_eq(tokenizer_kind(spm.t), TOKENIZER_SPM);
    cr_expect_str_eq(tokenizer_pre_name(spm.t), "spm");
    cr_expect_eq(tokenizer_n_vocab(spm.t), 32000);
    cr_expect_eq(tokenizer_bos(spm.t), 1);
    cr_expect_eq(tokenizer_eos(spm.t), 2);
    cr_expect(tokenizer_add_bos_default(spm.t));
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(spm.t, "Hello", 5, true, &ids, &n), 0);
    cr_assert_eq(n, 2);
    cr_expect_eq(ids[0], 1);
    free(ids);
    cr_assert_eq(tokenizer_encode(spm.t, "", 0, true, &ids, &n), 0);
    cr_expect_eq(n, 1);   /* empty text: BOS only, no space prefix */
    free(ids);
    size_t pl;
    const char *p = tokenizer_piece(spm.t, 1, &pl);
    cr_expect(pl == 3 && memcmp(p, "<s>", 3) == 0);
    char buf[16];
    cr_expect_eq(tokenizer_decode_token(spm.t, 1, buf, sizeof buf), 0);        /* control */
    cr_expect_eq(tokenizer_decode_token(spm.t, 3 + 0x0A, buf, sizeof buf), 1); /* <0x0A> */
    cr_expect_eq(buf[0], '\n');
    unload(spm);

    struct loaded g2 = load("models/vocab/ggml-vocab-gpt-2.gguf");
    cr_expect_eq(tokenizer_kind(g2.t), TOKENIZER_GPT2);
    cr_expect_str_eq(tokenizer_pre_name(g2.t), "gpt-2");
    cr_expect_eq(tokenizer_n_vocab(g2.t), 50257);
    cr_expect_eq(tokenizer_bos(g2.t), 50256);
    cr_expect(!tokenizer_add_bos_default(g2.t));
    unload(g2);
}

/* ---- TinyStories vocabularies against a slow reference ------------------ */

/* llama2.c's tokenizer file: int max_len, then per piece: float score, int len,
 * bytes (spaces stored as ' ', not U+2581). */
struct ref_entry {
    const char *piece;
    int id;
};

struct ref_vocab {
    int n;
    char **piece;
    float *score;
    struct ref_entry *sorted;   /* ordered by (piece bytes, id), for binary search */
};

static int cmp_entry(const void *a, const void *b) {
    const struct ref_entry *x = a, *y = b;
    int c = strcmp(x->piece, y->piece);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static struct ref_vocab ref_load(const char *rel) {
    char path[1024];
    size_t len;
    char *buf = read_file(shared_path(path, sizeof path, rel), &len);
    struct ref_vocab v = { 0, NULL, NULL, NULL };
    int cap = 0;
    size_t pos = 4;
    while (pos + 8 <= len) {
        float s;
        int32_t n;
        memcpy(&s, buf + pos, 4);
        memcpy(&n, buf + pos + 4, 4);
        pos += 8;
        cr_assert(n >= 0 && n < 64 && pos + (size_t)n <= len);   /* ref_find relies on n < 64 */
        if (v.n == cap) {
            cap = cap ? 2 * cap : 512;
            v.piece = realloc(v.piece, (size_t)cap * sizeof *v.piece);
            v.score = realloc(v.score, (size_t)cap * sizeof *v.score);
        }
        v.piece[v.n] = strndup(buf + pos, (size_t)n);
        v.score[v.n] = s;
        v.n++;
        pos += (size_t)n;
    }
    free(buf);
    v.sorted = malloc((size_t)v.n * sizeof *v.sorted);
    for (int i = 0; i < v.n; i++) v.sorted[i] = (struct ref_entry){ v.piece[i], i };
    qsort(v.sorted, (size_t)v.n, sizeof *v.sorted, cmp_entry);
    return v;
}

static void ref_free(struct ref_vocab v) {
    for (int i = 0; i < v.n; i++) free(v.piece[i]);
    free(v.piece);
    free(v.score);
    free(v.sorted);
}

/* Binary search for s[0..n); the last of duplicates, as llama.cpp's map keeps it. */
static int ref_find(const struct ref_vocab *v, const char *s, size_t n) {
    char key[64];
    if (n >= sizeof key) return -1;   /* longer than any piece here */
    memcpy(key, s, n);
    key[n] = '\0';
    int lo = 0, hi = v->n;   /* first position whose piece is > key */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(v->sorted[mid].piece, key) <= 0) lo = mid + 1; else hi = mid;
    }
    return lo > 0 && strcmp(v->sorted[lo - 1].piece, key) == 0 ? v->sorted[lo - 1].id : -1;
}

/* The obvious quadratic BPE: " " + text as UTF-8 characters (bytes 3+b when a
 * character is no piece), then repeatedly merge the adjacent pair whose
 * concatenation is the highest-scoring piece, leftmost among equals. */
static size_t ref_encode(const struct ref_vocab *v, const char *text, int32_t *out, size_t cap) {
    size_t len = strlen(text);
    char *s = malloc(len + 2);
    s[0] = ' ';
    memcpy(s + 1, text, len + 1);
    len++;
    /* each symbol is a [start, end) slice of s with its id */
    size_t *st = malloc(len * sizeof *st), *en = malloc(len * sizeof *en);
    int *id = malloc(len * sizeof *id);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xF0) cl = 4; else if (c >= 0xE0) cl = 3; else if (c >= 0xC0) cl = 2;
        if (cl > len - i) cl = len - i;
        int k = ref_find(v, s + i, cl);
        if (k >= 0) { st[n] = i; en[n] = i + cl; id[n] = k; n++; }
        else for (size_t j = 0; j < cl; j++) { st[n] = i + j; en[n] = i + j + 1; id[n] = 3 + (unsigned char)s[i + j]; n++; }
        i += cl;
    }
    for (;;) {
        float best = -1e30f;
        int best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (en[i] != st[i + 1]) continue;   /* byte-fallback neighbours never merge */
            int k = ref_find(v, s + st[i], en[i + 1] - st[i]);
            if (k >= 0 && v->score[k] > best) { best = v->score[k]; best_id = k; best_i = i; }
        }
        if (best_id < 0) break;
        en[best_i] = en[best_i + 1];
        id[best_i] = best_id;
        memmove(st + best_i + 1, st + best_i + 2, (n - best_i - 2) * sizeof *st);
        memmove(en + best_i + 1, en + best_i + 2, (n - best_i - 2) * sizeof *en);
        memmove(id + best_i + 1, id + best_i + 2, (n - best_i - 2) * sizeof *id);
        n--;
    }
    cr_assert(n <= cap);
    for (size_t i = 0; i < n; i++) out[i] = id[i];
    free(st); free(en); free(id); free(s);
    return n;
}

/* Ids for "Once upon a time" and n_lines lines of TinyStories text equal the reference. */
static void check_against_reference(const char *rel_gguf, const char *rel_bin, int n_lines) {
    struct loaded l = load(rel_gguf);
    struct ref_vocab v = ref_load(rel_bin);
    cr_assert_eq(v.n, tokenizer_n_vocab(l.t), "%s has %d pieces", rel_bin, v.n);

    int32_t want[4096];
    int32_t *ids;
    size_t n;
    size_t nw = ref_encode(&v, "Once upon a time", want, 4096);
    cr_assert_eq(tokenizer_encode(l.t, "Once upon a time", 16, true, &ids, &n), 0);
    cr_assert_eq(n, nw + 1);
    cr_expect_eq(ids[0], 1);
    for (size_t i = 0; i < nw; i++) cr_expect_eq(ids[i + 1], want[i], "token %zu", i);
    free(ids);

    char path[1024];
    size_t len;
    char *text = read_file(shared_path(path, sizeof path, "datasets/tinystories/TinyStories-valid-first1000.txt"), &len);
    int checked = 0, bad = 0;
    for (char *line = text; line && *line && checked < n_lines;) {
        char *eol = strchr(line, '\n');
        if (eol) *eol = '\0';
        if (*line && strlen(line) < 1500) {
            nw = ref_encode(&v, line, want, 4096);
            cr_assert_eq(tokenizer_encode(l.t, line, strlen(line), false, &ids, &n), 0);
            bool same = n == nw;
            for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
            if (!same && bad++ < 3) fprintf(stderr, "%s: line differs: %s\n", rel_gguf, line);
            free(ids);
            checked++;
        }
        line = eol ? eol + 1 : NULL;
    }
    cr_expect_eq(bad, 0, "%s: %d of %d lines differ from the reference", rel_gguf, bad, checked);
    cr_expect_eq(checked, n_lines);
    free(text);
    ref_free(v);
    unload(l);
}

Test(tokenizer, stories260k_matches_reference, .timeout = 60) {
    check_against_reference("models/stories260K.gguf", "models/tok512.bin", 500);
}

Test(tokenizer, stories3m_matches_reference, .timeout = 60) {
    check_against_reference("models/stories3M.gguf", "models/tok4096.bin", 500);
}

/* "Once upon a time" written out once (as the reference above gives it from
 * tok512.bin and tok4096.bin), so a change on either side shows up here. */
Test(tokenizer, once_upon_a_time) {
    const char *models[2] = { "models/stories260K.gguf", "models/stories3M.gguf" };
    const int32_t want[5] = { 1, 403, 407, 261, 378 };   /* <s> ▁Once ▁upon ▁a ▁time */
    for (int m = 0; m < 2; m++) {
        struct loaded l = load(models[m]);
        int32_t *ids;
        size_t n;
        cr_assert_eq(tokenizer_encode(l.t, "Once upon a time", 16, true, &ids, &n), 0);
        cr_assert_eq(n, 5, "%s: %zu ids", models[m], n);
        for (size_t i = 0; i < n; i++) cr_expect_eq(ids[i], want[i], "%s: id %zu", models[m], i);
        char joined[256] = "";
        for (size_t i = 1; i < n; i++) {
            size_t pl;
            const char *p = tokenizer_piece(l.t, ids[i], &pl);
            strncat(joined, p, pl);
        }
        cr_expect_str_eq(joined, "▁Once▁upon▁a▁time");
        free(ids);
        unload(l);
    }
}

/* ---- decode round trips and speed --------------------------------------- */

static char *decode_all(const struct tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 1024, k = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        char piece[256];
        size_t pl = tokenizer_decode_token(t, ids[i], piece, sizeof piece);
        cr_assert(pl <= sizeof piece);
        if (k + pl + 1 > cap) { cap = 2 * (k + pl + 1); out = realloc(out, cap); }
        memcpy(out + k, piece, pl);
        k += pl;
    }
    out[k] = '\0';
    *len = k;
    return out;
}

/* The whole 1 MB stories file: decoding gives the text back. (How fast encoding is
 * belongs to make bench, not to a test: these machines are shared and noisy.) */
static void check_round_trip(const char *rel_gguf, const char *rel_text, bool spm) {
    struct loaded l = load(rel_gguf);
    char path[1024];
    size_t len;
    char *text = read_file(shared_path(path, sizeof path, rel_text), &len);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(l.t, text, len, true, &ids, &n), 0);
    cr_assert_gt(n, len / 10);
    size_t dl;
    char *back = decode_all(l.t, ids, n, &dl);   /* BOS decodes to nothing */
    const char *b = back;
    if (spm) { cr_assert_eq(back[0], ' '); b++; dl--; }   /* the added space prefix */
    cr_expect_eq(dl, len);
    cr_expect(memcmp(b, text, len < dl ? len : dl) == 0, "%s: decode(encode(text)) differs", rel_gguf);
    free(back);
    free(ids);
    free(text);
    unload(l);
}

Test(tokenizer, round_trip_stories260k, .timeout = 60) {
    check_round_trip("models/stories260K.gguf", "datasets/tinystories/stories_sampled.txt", true);
}
Test(tokenizer, round_trip_llama_spm_book, .timeout = 60) {
    check_round_trip("models/vocab/ggml-vocab-llama-spm.gguf", "datasets/books/frankenstein.txt", true);
}
Test(tokenizer, round_trip_gpt2_book, .timeout = 60) {
    check_round_trip("models/vocab/ggml-vocab-gpt-2.gguf", "datasets/books/frankenstein.txt", false);
}

/* Bytes outside any piece fall back to <0xXX> and decode back; malformed
 * UTF-8 survives the SPM round trip byte for byte. */
Test(tokenizer, spm_byte_fallback) {
    struct loaded l = load("models/stories260K.gguf");
    const char text[] = "a\xC3\xA9\xF0\x9F\xA6\x99 \xFF\x80z";
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(l.t, text, sizeof text - 1, false, &ids, &n), 0);
    size_t dl;
    char *back = decode_all(l.t, ids, n, &dl);
    cr_expect_eq(dl, sizeof text);   /* plus the prefix space */
    cr_expect(memcmp(back + 1, text, sizeof text - 1) == 0);
    bool has_ff = false;
    for (size_t i = 0; i < n; i++) has_ff |= ids[i] == 3 + 0xFF;
    cr_expect(has_ff, "0xFF should be the byte piece <0xFF>");
    free(back);
    free(ids);
    unload(l);
}

/* ---- pre-tokenizer splits ------------------------------------------------ */

/* Splits utf8 and compares the words with the '|'-separated expectation. */
static void expect_split(enum pretok_kind kind, const char *utf8, const char *want) {
    size_t len = strlen(utf8), n = 0;
    uint32_t cps[512];
    for (size_t off = 0; off < len;) {
        size_t used;
        cr_assert(n < 512);
        cps[n++] = utf8_decode(utf8 + off, len - off, &used);
        off += used;
    }
    size_t *lens, n_words;
    cr_assert_eq(pretok_split(kind, cps, n, &lens, &n_words), 0);
    char got[2048] = "";
    size_t k = 0, start = 0;
    for (size_t w = 0; w < n_words; w++) {
        if (w) got[k++] = '|';
        for (size_t i = start; i < start + lens[w]; i++) {
            char u[4];
            size_t ul = utf8_encode(cps[i], u);
            memcpy(got + k, u, ul);
            k += ul;
        }
        start += lens[w];
    }
    got[k] = '\0';
    cr_expect_eq(start, n);
    cr_expect_str_eq(got, want, "kind %d on '%s'", (int)kind, utf8);
    free(lens);
}

Test(tokenizer, split_llama3) {
    enum pretok_kind k = PRETOK_LLAMA3;
    expect_split(k, "Hello world", "Hello| world");
    expect_split(k, "I'm it's we'LL they'Re", "I|'m| it|'s| we|'LL| they|'Re");
    expect_split(k, "'hello", "'hello");                        /* no contraction: [^\r\n\pL\pN]?\pL+ */
    expect_split(k, "1234567 x12", "123|456|7| x|12");
    expect_split(k, "a  b", "a| | b");                          /* \s+(?!\S) leaves one space to the word */
    expect_split(k, "a   ", "a|   ");                           /* trailing spaces: one word */
    expect_split(k, "a\n\nb", "a|\n\n|b");                      /* \s*[\r\n]+ */
    expect_split(k, "a \n  b", "a| \n| | b");                   /* up to the last newline, then spaces */
    expect_split(k, "x...\n\ny", "x|...\n\n|y");                /*  ?[^\s\pL\pN]+[\r\n]* */
    expect_split(k, "hi !!? ok", "hi| !!?| ok");
    expect_split(k, "\tword", "\tword");
    expect_split(k, "\nword", "\n|word");                       /* a newline never leads a word */
    expect_split(k, "Привет, мир", "Привет|,| мир");
    expect_split(k, "日本語123", "日本語|123");
    expect_split(k, "٣٤٥٦", "٣٤٥|٦");                           /* Arabic-Indic digits are \pN */
    expect_split(k, "naïve café", "naïve| café");
    expect_split(k, "e\xCC\x81t\xC3\xA9", "e|\xCC\x81t\xC3\xA9"); /* a combining mark is not \pL */
    expect_split(k, "", "");
}

Test(tokenizer, split_qwen2) {
    enum pretok_kind k = PRETOK_QWEN2;
    expect_split(k, "1234 x12", "1|2|3|4| x|1|2");               /* \pN one at a time */
    expect_split(k, "I'M here's", "I|'M| here|'s");
    expect_split(k, "a  b\r\n c", "a| | b|\r\n| c");
    expect_split(k, "(x)", "(x|)");                             /* [^\r\n\pL\pN]?\pL+ takes "(x" */
}

Test(tokenizer, split_gpt2) {
    enum pretok_kind k = PRETOK_GPT2;
    expect_split(k, "I'm it's we'LL", "I|'m| it|'s| we|'|LL");   /* case sensitive */
    expect_split(k, "1234567 x12", "1234567| x|12");
    expect_split(k, "a  b", "a| | b");
    expect_split(k, "a\n\nb", "a|\n|\n|b");                  /* no newline rule: \s+(?!\S) then \s+ */
    expect_split(k, "hi !!? ok", "hi| !!?| ok");
    expect_split(k, "\tword", "\t|word");
}

Test(tokenizer, split_default_chain) {
    enum pretok_kind k = PRETOK_DEFAULT;
    /* punctuation runs split first, then GPT-2, then \pN+, then ASCII digit triples */
    expect_split(k, "a+b=12345", "a|+|b|=|123|45");
    expect_split(k, "hello, world", "hello|,| world");
}

/* ---- Llama 3 / Qwen2 end to end on a small hand-built vocabulary --------- */

/* GPT-2 byte characters for ' ' and '\n'. */
#define G_SPACE "\xC4\xA0"
#define G_NL "\xC4\x8A"

static const char *tmp_gguf_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/ctxbench_tok_%s_%d.gguf", tag, (int)getpid());
    return buf;
}

/* Writes a byte-level vocabulary: the 256 byte characters, then extra pieces and merges. */
static void write_bpe_vocab(const char *path, const char *pre, const char *const *extra, int n_extra,
                            const char *const *merges, int n_merges) {
    struct gguf_writer *w = gguf_writer_new();
    const char *tokens[512];
    char chars[256][4];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        /* the GPT-2 byte alphabet, built here from its definition */
        int cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
            int m = 0;
            for (int c = 0; c < b; c++) m += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
            cp = 256 + m;
        }
        memset(chars[b], 0, 4);
        if (cp < 0x80) chars[b][0] = (char)cp;
        else { chars[b][0] = (char)(0xC0 | cp >> 6); chars[b][1] = (char)(0x80 | (cp & 0x3F)); }
        tokens[n++] = chars[b];
    }
    for (int i = 0; i < n_extra; i++) tokens[n++] = extra[i];
    gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_add_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, (uint64_t)n);
    gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, (uint64_t)n_merges);
    char err[256];
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
}

static void expect_ids(struct tokenizer *t, const char *text, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(t, text, strlen(text), false, &ids, &n), 0);
    bool same = n == n_want;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "'%s': got", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    cr_expect(same, "ids for '%s'", text);
    free(ids);
}

static struct tokenizer *load_tmp(const char *path, struct gguf **g) {
    char err[256];
    *g = gguf_open(path, err, sizeof err);
    cr_assert(*g, "%s", err);
    struct tokenizer *t = tokenizer_load(*g, err, sizeof err);
    cr_assert(t, "%s", err);
    return t;
}

/* Pieces 256.. "ab", " ab", "abc", "12", "123", "xyz" (no merge builds "xyz"), and
 * the merges that build the rest; a token id below 256 is the byte itself. */
static const char *const small_extra[] = { "ab", G_SPACE "ab", "abc", "12", "123", "xyz" };
static const char *const small_merges[] = { "a b", G_SPACE " ab", "ab c", "1 2", "12 3" };

Test(tokenizer, llama3_small_vocab) {
    char path[256];
    tmp_gguf_path(path, sizeof path, "l3");
    write_bpe_vocab(path, "llama-bpe", small_extra, 6, small_merges, 5);
    struct gguf *g;
    struct tokenizer *t = load_tmp(path, &g);
    cr_expect_str_eq(tokenizer_pre_name(t), "llama-bpe");
    cr_expect(tokenizer_add_bos_default(t));   /* llama.cpp's default for llama-bpe */
    cr_expect_eq(tokenizer_bos(t), -1);
    /* words: "xyz" | " ab" | " abc" | " " | "123" | "4"; a word that is a whole piece
     * is taken as is (ignore_merges), so "xyz" is one token without a merge for it */
    expect_ids(t, "xyz ab abc 1234", (int32_t[]){ 261, 257, 257, 'c', ' ', 260, '4' }, 7);
    char buf[8];
    cr_expect_eq(tokenizer_decode_token(t, 257, buf, sizeof buf), 3);
    cr_expect(memcmp(buf, " ab", 3) == 0);
    cr_expect_eq(tokenizer_decode_token(t, 10, buf, sizeof buf), 1);   /* byte 0x0A */
    cr_expect_eq(buf[0], '\n');
    tokenizer_free(t);
    gguf_close(g);
    unlink(path);
}

Test(tokenizer, qwen2_small_vocab) {
    char path[256];
    tmp_gguf_path(path, sizeof path, "q2");
    write_bpe_vocab(path, "qwen2", small_extra, 6, small_merges, 5);
    struct gguf *g;
    struct tokenizer *t = load_tmp(path, &g);
    cr_expect_str_eq(tokenizer_pre_name(t), "qwen2");
    cr_expect(!tokenizer_add_bos_default(t));
    /* one digit per word, and merges only: "xyz" stays three bytes */
    expect_ids(t, "xyz ab abc 1234", (int32_t[]){ 'x', 'y', 'z', 257, 257, 'c', ' ', '1', '2', '3', '4' }, 11);
    tokenizer_free(t);
    gguf_close(g);
    unlink(path);
}

/* A tiny SPM vocabulary: the space prefix can be turned off, a character with
 * neither a piece nor a byte piece becomes <unk>, and of two equal pieces the
 * later id is used (llama.cpp's map keeps the last). */
static void write_spm_vocab(const char *path, int add_space_prefix) {
    const char *tokens[] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "b", "\xE2\x96\x81" "a", "a" };
    float scores[] = { 0, 0, 0, -1, -2, -2, -1, -1, -3 };
    int32_t types[] = { 2, 3, 3, 1, 1, 1, 1, 1, 1 };
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, 9);
    gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 9);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 9);
    if (add_space_prefix >= 0) gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", add_space_prefix);
    char err[256];
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
}

Test(tokenizer, spm_small_vocab) {
    char path[256];
    tmp_gguf_path(path, sizeof path, "spm");
    for (int prefix = -1; prefix <= 1; prefix++) {
        write_spm_vocab(path, prefix);
        struct gguf *g;
        struct tokenizer *t = load_tmp(path, &g);
        if (prefix == 0) expect_ids(t, "a bc", (int32_t[]){ 8, 6, 0 }, 3);     /* a ▁b <unk> */
        else expect_ids(t, "a bc", (int32_t[]){ 7, 6, 0 }, 3);                 /* ▁a ▁b <unk> */
        tokenizer_free(t);
        gguf_close(g);
    }
    unlink(path);
}

/* ---- load errors ---------------------------------------------------------- */

/* Writes a GGUF with the given tokenizer keys (NULL to leave one out) and
 * expects tokenizer_load to fail with a message containing `needle`. */
struct bad_vocab {
    const char *model;
    int n_tokens, n_scores, n_types;
    bool merges;
    const char *pre;
    int64_t bos;   /* -2: absent */
};

static void expect_load_error(const struct bad_vocab *b, const char *needle) {
    char path[256], err[512] = "";
    tmp_gguf_path(path, sizeof path, "bad");
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_add_str(w, "general.architecture", "llama");
    const char *tokens[8] = { "<unk>", "<s>", "</s>", "a", "b", "ab", "c", "d" };
    float scores[8] = { 0, 0, 0, -1, -2, -3, -4, -5 };
    int32_t types[8] = { 2, 3, 3, 1, 1, 1, 1, 1 };
    const char *merges[1] = { "a b" };
    if (b->model) gguf_writer_add_str(w, "tokenizer.ggml.model", b->model);
    if (b->n_tokens >= 0) gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, (uint64_t)b->n_tokens);
    if (b->n_scores >= 0) gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)b->n_scores);
    if (b->n_types >= 0) gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)b->n_types);
    if (b->merges) gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, 1);
    if (b->pre) gguf_writer_add_str(w, "tokenizer.ggml.pre", b->pre);
    if (b->bos != -2) gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)b->bos);
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    struct gguf *g = gguf_open(path, err, sizeof err);
    cr_assert(g, "%s", err);
    struct tokenizer *t = tokenizer_load(g, err, sizeof err);
    cr_expect_null(t, "expected an error containing '%s'", needle);
    if (t) tokenizer_free(t);
    cr_expect(strstr(err, needle) != NULL, "error '%s' should mention '%s'", err, needle);
    cr_expect(strchr(err, '\n') == NULL, "one line: '%s'", err);
    gguf_close(g);
    unlink(path);
}

Test(tokenizer, load_errors) {
    /* a well-formed vocabulary loads, so each failure below is the one change */
    {
        char path[256], err[512];
        tmp_gguf_path(path, sizeof path, "good");
        struct gguf_writer *w = gguf_writer_new();
        const char *tokens[4] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81" };
        float scores[4] = { 0, 0, 0, -1 };
        gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
        gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, 4);
        gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 4);
        cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
        gguf_writer_free(w);
        struct gguf *g;
        struct tokenizer *t = load_tmp(path, &g);
        cr_expect_eq(tokenizer_bos(t), 1);   /* SPM defaults without keys */
        cr_expect_eq(tokenizer_eos(t), 2);
        tokenizer_free(t);
        gguf_close(g);
        unlink(path);
    }
    struct bad_vocab none = { NULL, -1, -1, -1, false, NULL, -2 };
    expect_load_error(&none, "tokenizer.ggml.model");
    struct bad_vocab no_tokens = { "llama", -1, 8, 8, false, NULL, -2 };
    expect_load_error(&no_tokens, "tokenizer.ggml.tokens");
    struct bad_vocab short_scores = { "llama", 8, 7, 8, false, NULL, -2 };
    expect_load_error(&short_scores, "tokenizer.ggml.scores has 7 entries but there are 8 tokens");
    struct bad_vocab long_types = { "llama", 7, 7, 8, false, NULL, -2 };
    expect_load_error(&long_types, "tokenizer.ggml.token_type has 8 entries but there are 7 tokens");
    struct bad_vocab no_scores = { "llama", 8, -1, 8, false, NULL, -2 };
    expect_load_error(&no_scores, "tokenizer.ggml.scores missing");
    struct bad_vocab no_merges = { "gpt2", 8, -1, 8, false, "gpt-2", -2 };
    expect_load_error(&no_merges, "tokenizer.ggml.merges missing");
    struct bad_vocab bad_pre = { "gpt2", 8, -1, 8, true, "klingon", -2 };
    expect_load_error(&bad_pre, "unsupported tokenizer.ggml.pre 'klingon'");
    struct bad_vocab bad_model = { "bert", 8, 8, 8, false, NULL, -2 };
    expect_load_error(&bad_model, "unsupported tokenizer.ggml.model 'bert'");
    /* names from the file are echoed escaped: the message stays one line */
    struct bad_vocab newline_pre = { "gpt2", 8, -1, 8, true, "kl\ningon", -2 };
    expect_load_error(&newline_pre, "unsupported tokenizer.ggml.pre 'kl\\ningon'");
    struct bad_vocab newline_model = { "be\nrt", 8, 8, 8, false, NULL, -2 };
    expect_load_error(&newline_model, "unsupported tokenizer.ggml.model 'be\\nrt'");
    struct bad_vocab bad_bos = { "llama", 8, 8, 8, false, NULL, 8 };
    expect_load_error(&bad_bos, "bos_token_id");
}
