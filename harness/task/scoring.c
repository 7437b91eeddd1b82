/* Window layouts, loss-by-position bins, pass-key digit scoring, sentence cutting and
 * ROUGE-L: the arithmetic of the tasks, free of models and files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scoring.h"

/* ---- perplexity windows ---- */

static void put_window(struct ppl_window *out, int64_t cap, int64_t k, int64_t start, int n_text, bool bos,
                       int score_from, int doc) {
    if (k < cap) out[k] = (struct ppl_window){start, n_text, bos, score_from, doc};
}

int64_t ppl_layout(const struct ppl_layout_opts *o, const int64_t *doc_start, int n_docs, struct ppl_window *out,
                   int64_t cap) {
    int L = o->length, S = o->stride;
    if (L < 2 || n_docs < 0 || (o->protocol == PPL_LLAMACPP && L < 4) ||
        ((o->protocol == PPL_YARN || o->protocol == PPL_LONGLORA) && S < 1))
        return -1;
    int64_t N = doc_start[n_docs] - doc_start[0], k = 0, base = doc_start[0];
    switch (o->protocol) {
    case PPL_WINDOWS:
        for (; (k + 1) * (L - 1) <= N; k++) put_window(out, cap, k, base + k * (L - 1), L - 1, true, 0, -1);
        return k;
    case PPL_LLAMACPP:
        /* s = BOS + ids has N + 1 tokens; chunk k's text is ids[kL, kL + L - 1) */
        for (; (k + 1) * (int64_t)L <= N + 1; k++) put_window(out, cap, k, base + k * L, L - 1, true, L / 2, -1);
        return k;
    case PPL_LONGLORA: {
        int64_t n_starts = N - L > 0 ? (N - L + S - 1) / S : 0;   /* len(range(0, N - L, S)) */
        if (n_starts > 0) n_starts--;                          /* the last start is dropped */
        for (; k < n_starts; k++) put_window(out, cap, k, base + k * S, L, false, 0, -1);
        return k;
    }
    case PPL_YARN:
        for (int d = 0; d < n_docs; d++) {
            int64_t nd = doc_start[d + 1] - doc_start[d];
            if (nd < 1 || nd < o->min_doc) continue;
            if (o->truncate) {
                int n_text = nd < L - 1 ? (int)nd : L - 1;
                put_window(out, cap, k++, doc_start[d], n_text, true, 0, d);
                continue;
            }
            int64_t prev_end = 0;
            for (int64_t b = 0; b < nd; b += S) {
                int64_t end = b + L - 1 < nd ? b + L - 1 : nd;
                int64_t trg = end - prev_end;
                int n_text = (int)(end - b);
                /* predictions 0 .. n_text-1 predict ids[b .. end); the last trg of them count
                 * (with S > L-1 that is all of them, and the tokens between windows go unscored,
                 * as in HF's loop) */
                int from = n_text - (int)trg;
                put_window(out, cap, k++, doc_start[d] + b, n_text, true, from > 0 ? from : 0, d);
                prev_end = end;
                if (end == nd) break;
            }
        }
        return k;
    }
    return -1;
}

bool ppl_mean_of_windows(enum ppl_protocol p) { return p == PPL_YARN || p == PPL_LONGLORA; }

int pos_bins_init(struct pos_bins *b, int n_bins, int length) {
    memset(b, 0, sizeof *b);
    if (n_bins < 1 || length < 1) return -1;
    b->sum = calloc((size_t)n_bins, sizeof *b->sum);
    b->count = calloc((size_t)n_bins, sizeof *b->count);
    if (!b->sum || !b->count) {
        pos_bins_free(b);
        return -1;
    }
    b->n_bins = n_bins;
    b->length = length;
    return 0;
}

void pos_bins_add(struct pos_bins *b, int position, double nll) {
    if (position < 0 || position >= b->length) return;
    int k = (int)((int64_t)position * b->n_bins / b->length);
    b->sum[k] += nll;
    b->count[k]++;
}

void pos_bins_mean(const struct pos_bins *b, double *mean) {
    for (int k = 0; k < b->n_bins; k++) mean[k] = b->count[k] ? b->sum[k] / (double)b->count[k] : NAN;
}

void pos_bins_free(struct pos_bins *b) {
    free(b->sum);
    free(b->count);
    memset(b, 0, sizeof *b);
}

/* ---- pass key ---- */

size_t first_digits(const char *text, char *out, size_t cap) {
    size_t k = 0;
    if (cap == 0) return 0;
    const char *p = text;
    while (*p && !(*p >= '0' && *p <= '9')) p++;
    while (*p >= '0' && *p <= '9') {
        if (k + 1 < cap) out[k++] = *p;
        p++;
    }
    out[k] = 0;
    return k;
}

double digit_accuracy(const char *answer_digits, const char *key) {
    size_t n = strlen(key), a = strlen(answer_digits), hit = 0;
    if (n == 0) return 0;
    for (size_t i = 0; i < n && i < a; i++) hit += answer_digits[i] == key[i];
    return (double)hit / (double)n;
}

uint64_t score_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

long score_rng_range(uint64_t *state, long lo, long hi) {
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (long)(score_rng_next(state) % span);   /* bias < span / 2^64: negligible */
}

/* ---- first sentence ---- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Is the word ending just before s[i] (the dot) an abbreviation or an initial? */
static bool abbreviation_before(const char *s, size_t i) {
    static const char *const abbr[] = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "rev", "gen", "col",
                                       "capt", "lt", "sgt", "hon", "messrs", "mme", "mlle", "vs", "e.g", "i.e",
                                       NULL};
    size_t b = i;
    while (b > 0 && !is_ws(s[b - 1]) && s[b - 1] != '(' && s[b - 1] != '"') b--;
    size_t len = i - b;
    if (len == 1 && s[b] >= 'A' && s[b] <= 'Z') return true;   /* an initial: "J. R. Smith" */
    if (len == 0 || len > 6) return false;
    char w[8];
    for (size_t k = 0; k < len; k++) w[k] = (char)(s[b + k] >= 'A' && s[b + k] <= 'Z' ? s[b + k] + 32 : s[b + k]);
    w[len] = 0;
    for (int k = 0; abbr[k]; k++)
        if (strcmp(w, abbr[k]) == 0) return true;
    return false;
}

size_t first_sentence_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && is_ws(s[i])) i++;
    for (; i < n; i++) {
        if (s[i] == '\n') {
            size_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
            if (j < n && s[j] == '\n') return i;   /* a blank line: a paragraph (or heading) ends */
            continue;
        }
        if (s[i] != '.' && s[i] != '!' && s[i] != '?') continue;
        size_t j = i + 1;
        while (j < n && (s[j] == '.' || s[j] == '!' || s[j] == '?')) j++;   /* "?!" or "..." */
        while (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == ')' || s[j] == ']' ||
                         (j + 2 < n && (unsigned char)s[j] == 0xE2 && (unsigned char)s[j + 1] == 0x80 &&
                          ((unsigned char)s[j + 2] == 0x9D || (unsigned char)s[j + 2] == 0x99))))
            j += (unsigned char)s[j] == 0xE2 ? 3 : 1;                     /* closing quotes: ” ’ */
        if (j < n && !is_ws(s[j])) continue;                               /* "3.14", "e.g.x" */
        if (s[i] == '.' && j == i + 1 && abbreviation_before(s, i)) continue;
        return j;
    }
    return n;
}

int rouge_words(const char *text, char **buf, char ***words) {
    size_t n = strlen(text);
    *buf = malloc(n + 1);
    *words = malloc((n / 2 + 1) * sizeof **words);   /* words are separated, so at most (n+1)/2 */
    if (!*buf || !*words) {
        free(*buf);
        free(*words);
        *buf = NULL;
        *words = NULL;
        return -1;
    }
    int count = 0;
    bool in_word = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
        (*buf)[i] = keep ? (char)c : 0;
        if (keep && !in_word) (*words)[count++] = *buf + i;
        in_word = keep;
    }
    (*buf)[n] = 0;
    return count;
}

double rouge_l_f1(const char *candidate, const char *reference) {
    char *cb, *rb, **cw, **rw;
    int nc = rouge_words(candidate, &cb, &cw);
    if (nc < 0) return NAN;
    int nr = rouge_words(reference, &rb, &rw);
    if (nr < 0) {
        free(cb);
        free(cw);
        return NAN;
    }
    double f1 = 0;
    /* LCS by dynamic programming over one row at a time */
    int *row = nc > 0 && nr > 0 ? calloc((size_t)nr + 1, sizeof *row) : NULL;
    if (nc > 0 && nr > 0 && !row) f1 = NAN;
    else if (row) {
        for (int i = 0; i < nc; i++) {
            int diag = 0;   /* row[j] of the previous candidate word */
            for (int j = 0; j < nr; j++) {
                int up = row[j + 1];
                row[j + 1] = strcmp(cw[i], rw[j]) == 0 ? diag + 1 : (up > row[j] ? up : row[j]);
                diag = up;
            }
        }
        int lcs = row[nr];
        if (lcs > 0) {
            double p = (double)lcs / nc, r = (double)lcs / nr;
            f1 = 2 * p * r / (p + r);
        }
    }
    free(row);
    free(cb);
    free(cw);
    free(rb);
    free(rw);
    return f1;
}

bool words_equal(const char *a, const char *b) {
    char *ab, *bb, **aw, **bw;
    int na = rouge_words(a, &ab, &aw);
    if (na < 0) return false;
    int nb = rouge_words(b, &bb, &bw);
    bool eq = nb == na;
    for (int i = 0; eq && i < na; i++) eq = strcmp(aw[i], bw[i]) == 0;
    if (nb >= 0) {
        free(bb);
        free(bw);
    }
    free(ab);
    free(aw);
    return eq;
}
