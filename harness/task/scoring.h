/* The pure parts of the tasks, kept apart so tests can check them on hand-made cases:
 * where perplexity windows go and which predictions they score, loss-vs-position bins,
 * pass-key digit scoring, sentence cutting and ROUGE-L. No model, no I/O. */
#ifndef CTX_SCORING_H
#define CTX_SCORING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- perplexity windows ---- */

enum ppl_protocol { PPL_WINDOWS, PPL_YARN, PPL_LONGLORA, PPL_LLAMACPP };

/* One forward pass. Its sequence is [BOS if bos] + ids[start .. start + n_text); with
 * n = bos + n_text tokens, prediction j (0 <= j < n - 1) is the log-probability of
 * sequence token j + 1 given tokens 0..j, and predictions score_from .. n - 2 count. */
struct ppl_window {
    int64_t start;
    int n_text;
    bool bos;
    int score_from;
    int doc;         /* the document (per-document protocols), -1 for a stream */
};

struct ppl_layout_opts {
    enum ppl_protocol protocol;
    int length;          /* L: tokens in each window's sequence, BOS included */
    int stride;          /* S for yarn and longlora */
    bool truncate;       /* yarn: one window of L - 1 tokens per document, all scored */
    int64_t min_doc;     /* yarn: documents with fewer tokens are skipped */
};

/* Lays out the windows over documents whose tokens start at doc_start[0..n_docs]
 * (a stream protocol reads them as one concatenated stream). Writes at most cap windows
 * (the first ones, in order) and returns how many exist in total, or -1 for bad options.
 *   windows:  stream; window k = BOS + ids[k(L-1), (k+1)(L-1)); every prediction scored.
 *   llamacpp: stream s = BOS + ids cut into chunks s[kL, (k+1)L), the first token of each
 *             chunk replaced by BOS; predictions L/2 .. L-2 scored (llama-perplexity).
 *   longlora: stream; windows ids[b, b+L) for b = 0, S, 2S, ... < N - L, the last start
 *             dropped; no BOS; every prediction scored (LongLoRA eval.py).
 *   yarn:     per document of N_d tokens: windows BOS + ids[b, min(b+L-1, N_d)) for
 *             b = 0, S, 2S, ... until a window reaches the end; only the tokens not scored
 *             by an earlier window are scored (jquesnelle/yarn eval/perplexity.py). */
int64_t ppl_layout(const struct ppl_layout_opts *o, const int64_t *doc_start, int n_docs, struct ppl_window *out,
                   int64_t cap);

/* Whether the protocol averages per-window means (yarn, longlora) rather than tokens. */
bool ppl_mean_of_windows(enum ppl_protocol p);

/* Loss by position: bin b covers target positions [b*L/n_bins, (b+1)*L/n_bins) of a
 * sequence of length L (position = index in the window's sequence of the predicted token). */
struct pos_bins {
    int n_bins, length;
    double *sum;     /* n_bins */
    long *count;     /* n_bins */
};
int pos_bins_init(struct pos_bins *b, int n_bins, int length);
void pos_bins_add(struct pos_bins *b, int position, double nll);
/* mean[b] = sum/count, NAN for an empty bin. */
void pos_bins_mean(const struct pos_bins *b, double *mean);
void pos_bins_free(struct pos_bins *b);

/* ---- pass key ---- */

/* The first run of ASCII digits in text into out (NUL-terminated, at most cap-1 digits);
 * returns its length (0 = no digit). */
size_t first_digits(const char *text, char *out, size_t cap);
/* Fraction of the key's digits matched position by position by the answer's digits
 * (missing digits count as wrong, extra digits are ignored). */
double digit_accuracy(const char *answer_digits, const char *key);

/* A small deterministic generator (splitmix64) for keys and sample positions. */
uint64_t score_rng_next(uint64_t *state);
/* Uniform integer in [lo, hi]. */
long score_rng_range(uint64_t *state, long lo, long hi);

/* ---- first sentence ---- */

/* Length of the first sentence of s[0..n): up to and including the first '.', '!' or '?'
 * (with closing quotes or brackets after it) that is followed by whitespace or the end,
 * and is not the dot of a common abbreviation (Mr., Mrs., Dr., St., ...) or of a single
 * capital initial; a blank line also ends a sentence. Leading whitespace is included. */
size_t first_sentence_len(const char *s, size_t n);

/* Words for ROUGE-L, as Google's rouge-score tokenizer makes them: ASCII lower-cased,
 * every run of characters other than a-z, 0-9 (and bytes >= 0x80, so UTF-8 letters stay)
 * is a separator. Returns the number of words; words[i] points into buf (a lowered copy,
 * with separators replaced by NUL). Both arrays are malloc'd (free them); -1 on no memory. */
int rouge_words(const char *text, char **buf, char ***words);
/* ROUGE-L F1 in [0, 1] between a candidate and a reference: LCS over the words above,
 * P = LCS/|cand|, R = LCS/|ref|, F1 = 2PR/(P+R); 0 when either is empty. NAN on no memory. */
double rouge_l_f1(const char *candidate, const char *reference);
/* Same word sequences (the normalised exact match). */
bool words_equal(const char *a, const char *b);

#endif
