/* Tasks: the result table, the scoring arithmetic on hand-made cases (ROUGE-L against
 * hand-computed values and a slow full-table LCS, digit extraction, sentence cutting,
 * loss-by-position bins), each perplexity protocol's window layout on tiny synthetic
 * token streams, greedy decoding with a teacher-forced reference against a naive loop,
 * and one end-to-end run of each task on stories260K. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "decode.h"
#include "method.h"
#include "result.h"
#include "runtime.h"
#include "scoring.h"
#include "task.h"
#include "task_util.h"
#include "testutil.h"
#include "tokenizer.h"

/* ---- result table ---- */

Test(result, items_are_copied_found_and_freed) {
    struct result r = {0};
    double v[6] = {1, 2, 3, 4, 5, 6};
    char text[] = "hello";
    cr_assert_eq(result_scalar(&r, "ppl", 4.5), 0);
    cr_assert_eq(result_array(&r, "grid", v, 2, 3), 0);
    cr_assert_eq(result_text(&r, "note", text), 0);
    v[0] = 99;
    text[0] = 'J';
    const struct result_item *a = result_find(&r, "grid");
    cr_assert_not_null(a);
    cr_assert_eq(a->kind, RESULT_ARRAY);
    cr_assert_eq(a->rows, 2);
    cr_assert_eq(a->cols, 3);
    cr_assert_eq(a->data[0], 1);
    cr_assert_eq(a->data[5], 6);
    cr_assert_str_eq(result_find(&r, "note")->text, "hello");
    cr_assert_eq(result_find(&r, "ppl")->value, 4.5);
    cr_assert_null(result_find(&r, "absent"));
    cr_assert_eq(result_scalar(&r, "ppl", 1), -1);   /* taken */
    char longname[RESULT_NAME_MAX + 1];
    memset(longname, 'x', RESULT_NAME_MAX);
    longname[RESULT_NAME_MAX] = 0;
    cr_assert_eq(result_scalar(&r, longname, 1), -1);
    longname[RESULT_NAME_MAX - 1] = 0;   /* the longest that fits */
    cr_assert_eq(result_scalar(&r, longname, 1), 0);
    cr_assert_eq(result_scalar(&r, "", 1), -1);
    cr_assert_eq(result_array(&r, "bad", v, 0, 3), -1);
    cr_assert_eq(result_text(&r, "nul", NULL), -1);
    cr_assert_eq(r.n, 4);
    for (int i = r.n; i < RESULT_MAX_ITEMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        cr_assert_eq(result_scalar(&r, name, i), 0);
    }
    cr_assert_eq(result_scalar(&r, "onemore", 1), -1);   /* full */
    result_free(&r);
    cr_assert_eq(r.n, 0);
    cr_assert_null(result_find(&r, "ppl"));
}

/* ---- pass-key scoring ---- */

Test(scoring, digits_and_digit_accuracy) {
    char d[16];
    cr_assert_eq(first_digits(" 72498. Remember", d, sizeof d), 5);
    cr_assert_str_eq(d, "72498");
    cr_assert_eq(first_digits("the key is\n 7 2498", d, sizeof d), 1);
    cr_assert_str_eq(d, "7");
    cr_assert_eq(first_digits("no digits here", d, sizeof d), 0);
    cr_assert_str_eq(d, "");
    cr_assert_eq(first_digits("x12345678901234567890", d, 6), 5);   /* truncated to the buffer */
    cr_assert_str_eq(d, "12345");
    cr_assert_float_eq(digit_accuracy("72498", "72498"), 1.0, 0);
    cr_assert_float_eq(digit_accuracy("72598", "72498"), 0.8, 1e-12);
    cr_assert_float_eq(digit_accuracy("724", "72498"), 0.6, 1e-12);      /* missing digits are wrong */
    cr_assert_float_eq(digit_accuracy("7249811", "72498"), 1.0, 1e-12);  /* extra digits ignored */
    cr_assert_float_eq(digit_accuracy("", "72498"), 0.0, 0);
    cr_assert_float_eq(digit_accuracy("27498", "72498"), 0.6, 1e-12);    /* position by position */
}

Test(scoring, rng_is_deterministic_and_in_range) {
    uint64_t a = 42, b = 42;
    for (int i = 0; i < 1000; i++) {
        long x = score_rng_range(&a, 10000, 99999);
        cr_assert_eq(x, score_rng_range(&b, 10000, 99999));
        cr_assert(x >= 10000 && x <= 99999);
    }
}

/* ---- sentences and ROUGE-L ---- */

static void check_first(const char *text, const char *want) {
    size_t n = first_sentence_len(text, strlen(text));
    cr_assert_eq(n, strlen(want), "'%s': cut at %zu ('%.*s'), want '%s'", text, n, (int)n, text, want);
    cr_assert_eq(strncmp(text, want, n), 0);
}

Test(scoring, first_sentence_cut) {
    check_first("Once upon a time. Then more.", "Once upon a time.");
    check_first("Mr. Smith went home. Then he slept.", "Mr. Smith went home.");
    check_first("He said \"Hi!\" She left.", "He said \"Hi!\"");
    check_first("Pi is 3.14 today. Yes.", "Pi is 3.14 today.");
    check_first("J. R. R. Tolkien wrote. Yes", "J. R. R. Tolkien wrote.");
    check_first("What?! No.", "What?!");
    check_first("CHAPTER I\n\nIt was dark.", "CHAPTER I");
    check_first("A line\nbreak is no end. Ok", "A line\nbreak is no end.");
    check_first("No end at all", "No end at all");
    check_first("Ends at the end.", "Ends at the end.");
    check_first("\xE2\x80\x9C" "Curly!\xE2\x80\x9D" " she said. Then", "\xE2\x80\x9C" "Curly!\xE2\x80\x9D");
    check_first("  Leading space. Next", "  Leading space.");
}

/* Slow ROUGE-L: full (n+1) x (m+1) LCS table over words split the same documented way. */
static double slow_rouge(const char *const *c, int nc, const char *const *r, int nr) {
    if (nc == 0 || nr == 0) return 0;
    int *t = calloc((size_t)(nc + 1) * (size_t)(nr + 1), sizeof *t);
    for (int i = 1; i <= nc; i++)
        for (int j = 1; j <= nr; j++) {
            int *cell = &t[i * (nr + 1) + j];
            if (strcmp(c[i - 1], r[j - 1]) == 0) *cell = t[(i - 1) * (nr + 1) + j - 1] + 1;
            else {
                int up = t[(i - 1) * (nr + 1) + j], left = t[i * (nr + 1) + j - 1];
                *cell = up > left ? up : left;
            }
        }
    int lcs = t[nc * (nr + 1) + nr];
    free(t);
    if (lcs == 0) return 0;
    double p = (double)lcs / nc, rc = (double)lcs / nr;
    return 2 * p * rc / (p + rc);
}

Test(scoring, rouge_l_hand_computed) {
    /* LCS the,cat,on,the,mat = 5 of 6 and 6: F1 = 5/6 */
    cr_assert_float_eq(rouge_l_f1("the cat sat on the mat", "the cat is on the mat"), 5.0 / 6.0, 1e-12);
    /* case and punctuation do not count */
    cr_assert_float_eq(rouge_l_f1("The Cat!", "the cat"), 1.0, 1e-12);
    /* reversed: LCS 1 of 4 and 4 */
    cr_assert_float_eq(rouge_l_f1("a b c d", "d c b a"), 0.25, 1e-12);
    /* police,the,gunman: 3/4 and 3/4 */
    cr_assert_float_eq(rouge_l_f1("police killed the gunman", "police kill the gunman"), 0.75, 1e-12);
    /* P = 1, R = 1/2: F1 = 2/3 */
    cr_assert_float_eq(rouge_l_f1("x y", "x y z w"), 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(rouge_l_f1("", "x"), 0.0, 0);
    cr_assert_float_eq(rouge_l_f1("...", "x"), 0.0, 0);
    cr_assert_float_eq(rouge_l_f1("q", "x"), 0.0, 0);
    /* "don't" is two words, don + t; "Lily's" is lily + s */
    cr_assert_float_eq(rouge_l_f1("don't", "don t"), 1.0, 1e-12);
    cr_assert_float_eq(rouge_l_f1("Lily's dog", "lily dog"), 2 * (2.0 / 3) * 1 / (2.0 / 3 + 1), 1e-12);
    cr_assert(words_equal("Once upon a time, there was Lily.", "once upon a time there was lily"));
    cr_assert(!words_equal("Once upon a time", "once upon a time there"));
    cr_assert(words_equal("", "!!"));
}

Test(scoring, rouge_l_matches_slow_lcs_on_random_words) {
    static const char *const vocab[] = {"a", "b", "c", "d", "e"};
    unsigned long long s = 7;
    for (int trial = 0; trial < 300; trial++) {
        int nc = (int)(test_rng_next(&s) % 12), nr = (int)(test_rng_next(&s) % 12);
        const char *cw[12], *rw[12];
        char cand[64] = "", ref[64] = "";
        for (int i = 0; i < nc; i++) {
            cw[i] = vocab[test_rng_next(&s) % 5];
            strcat(cand, i ? " " : "");
            strcat(cand, cw[i]);
        }
        for (int i = 0; i < nr; i++) {
            rw[i] = vocab[test_rng_next(&s) % 5];
            strcat(ref, i ? ", " : "");   /* punctuation between words must not matter */
            strcat(ref, rw[i]);
        }
        double want = slow_rouge(cw, nc, rw, nr);
        cr_assert_float_eq(rouge_l_f1(cand, ref), want, 1e-12, "'%s' vs '%s'", cand, ref);
    }
}

/* ---- loss by position ---- */

Test(scoring, position_bins) {
    struct pos_bins b;
    cr_assert_eq(pos_bins_init(&b, 4, 10), 0);
    /* bin = floor(p * 4 / 10): p 0-2 -> 0, 3-4 -> 1, 5-7 -> 2, 8-9 -> 3 */
    for (int p = 0; p < 10; p++) pos_bins_add(&b, p, p);
    pos_bins_add(&b, 10, 1000);   /* out of range: ignored */
    pos_bins_add(&b, -1, 1000);
    double mean[4];
    pos_bins_mean(&b, mean);
    cr_assert_float_eq(mean[0], (0 + 1 + 2) / 3.0, 1e-12);
    cr_assert_float_eq(mean[1], (3 + 4) / 2.0, 1e-12);
    cr_assert_float_eq(mean[2], (5 + 6 + 7) / 3.0, 1e-12);
    cr_assert_float_eq(mean[3], (8 + 9) / 2.0, 1e-12);
    cr_assert_eq(b.count[0] + b.count[1] + b.count[2] + b.count[3], 10);
    pos_bins_free(&b);
    cr_assert_eq(pos_bins_init(&b, 8, 4), 0);   /* more bins than positions: some stay empty */
    pos_bins_add(&b, 1, 2.5);
    double m8[8];
    pos_bins_mean(&b, m8);
    cr_assert_float_eq(m8[2], 2.5, 0);
    cr_assert(isnan(m8[0]) && isnan(m8[1]) && isnan(m8[7]));
    pos_bins_free(&b);
    cr_assert_eq(pos_bins_init(&b, 0, 10), -1);
}

/* ---- perplexity window layouts ---- */

static struct ppl_window win[256];

static int64_t layout(enum ppl_protocol p, int L, int S, bool trunc, int64_t min_doc, const int64_t *ds, int nd) {
    struct ppl_layout_opts o = {p, L, S, trunc, min_doc};
    int64_t n = ppl_layout(&o, ds, nd, win, 256);
    cr_assert(n <= 256);
    return n;
}

static void want_window(int k, int64_t start, int n_text, bool bos, int score_from, int doc) {
    cr_assert_eq(win[k].start, start, "window %d start %lld", k, (long long)win[k].start);
    cr_assert_eq(win[k].n_text, n_text, "window %d n_text %d", k, win[k].n_text);
    cr_assert_eq(win[k].bos, bos, "window %d bos", k);
    cr_assert_eq(win[k].score_from, score_from, "window %d score_from %d", k, win[k].score_from);
    cr_assert_eq(win[k].doc, doc, "window %d doc %d", k, win[k].doc);
}

Test(ppl_layout, windows_protocol) {
    int64_t ds[] = {0, 10};
    /* L = 4: BOS + 3 tokens, windows at 0, 3, 6 (9 <= 10); 10th token unused */
    cr_assert_eq(layout(PPL_WINDOWS, 4, 0, false, 0, ds, 1), 3);
    for (int k = 0; k < 3; k++) want_window(k, 3 * k, 3, true, 0, -1);
    int64_t two[] = {0, 4, 9};   /* documents form one stream */
    cr_assert_eq(layout(PPL_WINDOWS, 4, 0, false, 0, two, 2), 3);
    want_window(1, 3, 3, true, 0, -1);
    cr_assert_eq(layout(PPL_WINDOWS, 12, 0, false, 0, ds, 1), 0);
}

Test(ppl_layout, llamacpp_protocol) {
    int64_t ds[] = {0, 10};
    /* s = BOS + 10 ids = 11 tokens, n_ctx 4: chunks s[0,4), s[4,8); first = 2, so prediction 2
     * (of s[3]) counts. Chunk k's text is ids[4k, 4k+3): s[4k+1..4k+4) with s[i] = ids[i-1]. */
    cr_assert_eq(layout(PPL_LLAMACPP, 4, 0, false, 0, ds, 1), 2);
    want_window(0, 0, 3, true, 2, -1);
    want_window(1, 4, 3, true, 2, -1);
    int64_t ds11[] = {0, 11};   /* 12 tokens with BOS: three chunks */
    cr_assert_eq(layout(PPL_LLAMACPP, 4, 0, false, 0, ds11, 1), 3);
    want_window(2, 8, 3, true, 2, -1);
}

Test(ppl_layout, longlora_protocol) {
    int64_t ds[] = {0, 20};
    /* range(0, 20 - 5, 3) = 0,3,6,9,12, the last dropped */
    cr_assert_eq(layout(PPL_LONGLORA, 5, 3, false, 0, ds, 1), 4);
    for (int k = 0; k < 4; k++) want_window(k, 3 * k, 5, false, 0, -1);
    int64_t ds16[] = {0, 16};   /* range(0, 11, 3) = 0,3,6,9 -> 3 windows */
    cr_assert_eq(layout(PPL_LONGLORA, 5, 3, false, 0, ds16, 1), 3);
    int64_t ds6[] = {0, 6};     /* range(0, 1, 3) = 0 -> none after the drop */
    cr_assert_eq(layout(PPL_LONGLORA, 5, 3, false, 0, ds6, 1), 0);
}

Test(ppl_layout, yarn_protocol_hand_case) {
    int64_t ds[] = {0, 10, 13};
    /* L = 5 (4 text tokens), S = 2. Doc 0 (10 tokens): b=0 end 4 (score 4); b=2 end 6 (score the
     * last 2 of 4); b=4 end 8; b=6 end 10 -> stop. Doc 1 (3 tokens): one window, all scored. */
    cr_assert_eq(layout(PPL_YARN, 5, 2, false, 0, ds, 2), 5);
    want_window(0, 0, 4, true, 0, 0);
    want_window(1, 2, 4, true, 2, 0);
    want_window(2, 4, 4, true, 2, 0);
    want_window(3, 6, 4, true, 2, 0);
    want_window(4, 10, 3, true, 0, 1);
    cr_assert_eq(layout(PPL_YARN, 5, 2, false, 4, ds, 2), 4);   /* doc 1 shorter than min_doc */
    /* S = 6 > L-1: windows at 0 and 6, each scored whole; tokens 4 and 5 are never scored */
    cr_assert_eq(layout(PPL_YARN, 5, 6, false, 0, ds, 1), 2);
    want_window(0, 0, 4, true, 0, 0);
    want_window(1, 6, 4, true, 0, 0);
    /* truncate: the first L-1 tokens of each document */
    cr_assert_eq(layout(PPL_YARN, 5, 4, true, 0, ds, 2), 2);
    want_window(0, 0, 4, true, 0, 0);
    want_window(1, 10, 3, true, 0, 1);
    cr_assert_eq(layout(PPL_YARN, 5, 4, true, 4, ds, 2), 1);
    /* bad options */
    cr_assert_eq(layout(PPL_YARN, 5, 0, false, 0, ds, 2), -1);
    cr_assert_eq(layout(PPL_WINDOWS, 1, 1, false, 0, ds, 2), -1);
}

/* Every token of every used document is predicted exactly once under yarn, and the
 * windows protocol predicts a contiguous prefix of the stream exactly once. */
Test(ppl_layout, yarn_scores_each_token_once) {
    unsigned long long s = 99;
    for (int trial = 0; trial < 200; trial++) {
        int nd = 1 + (int)(test_rng_next(&s) % 4);
        int64_t ds[5] = {0};
        for (int d = 0; d < nd; d++) ds[d + 1] = ds[d] + 1 + (int64_t)(test_rng_next(&s) % 40);
        int L = 2 + (int)(test_rng_next(&s) % 12), S = 1 + (int)(test_rng_next(&s) % (unsigned)(L - 1));
        int hits[200] = {0};
        struct ppl_layout_opts o = {PPL_YARN, L, S, false, 0};
        int64_t n = ppl_layout(&o, ds, nd, win, 256);
        cr_assert(n > 0 && n <= 256, "n = %lld", (long long)n);
        for (int64_t k = 0; k < n; k++) {
            int seq_n = win[k].bos + win[k].n_text;
            cr_assert(seq_n <= L);
            for (int j = win[k].score_from; j < seq_n - 1; j++) {
                int i = j + 1 - win[k].bos;   /* the predicted token's index in the window's text */
                cr_assert(i >= 0);
                hits[win[k].start + i]++;
            }
            /* the window lies inside its document */
            cr_assert(win[k].start >= ds[win[k].doc] && win[k].start + win[k].n_text <= ds[win[k].doc + 1]);
        }
        for (int64_t t = 0; t < ds[nd]; t++) cr_assert_eq(hits[t], 1, "token %lld scored %d times", (long long)t, hits[t]);
    }
}

/* ---- model-backed tests (stories260K) ---- */

static struct runtime rt;
static bool rt_open;

static void open_model(void) {
    char path[512], err[512];
    const char *o = "threads=2";
    cr_assert_eq(runtime_open(&rt, shared_path(path, sizeof path, "models/stories260K.gguf"), "auto", o, NULL, err,
                              sizeof err),
                 0, "%s", err);
    rt_open = true;
}
static void close_model(void) {
    if (rt_open) runtime_close(&rt);
    rt_open = false;
}

static int32_t argmax(const float *x, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* decode_greedy_scored against a naive greedy loop and a naive teacher-forced pass. */
static void check_decode(const int32_t *prompt, int np, const int32_t *target, int nt, int max_new) {
    char err[512];
    int nv = rt.model->cfg.n_vocab;
    struct method_spec spec;
    cr_assert_eq(method_spec_parse("baseline", &spec, err, sizeof err), 0);
    struct method_ctx mc = {.cfg = &rt.model->cfg, .target_len = 512, .seq_len = np};
    struct method_plan plan;
    cr_assert_eq(method_plan(&spec, &mc, &plan, err, sizeof err), 0);
    struct forward_plan fp = method_forward_plan(&plan);
    int cap = np + (nt > max_new ? nt : max_new);
    struct session *s = session_new(rt.engine, cap, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    int32_t gen[64];
    struct decode_request rq = {prompt, np, target, nt, max_new, -1, NULL, NULL};
    struct decode_result dr = {.gen = gen};
    cr_assert_eq(decode_greedy_scored(&rt, s, &fp, &rq, &dr, err, sizeof err), 0, "%s", err);
    /* naive greedy */
    float *logits = malloc((size_t)nv * sizeof *logits);
    session_reset(s);
    cr_assert_eq(session_eval(s, prompt, NULL, np, &fp, NULL, NULL, logits, err, sizeof err), 0);
    cr_assert_eq(dr.n_gen, max_new);
    for (int i = 0; i < max_new; i++) {
        int32_t g = argmax(logits, nv);
        cr_assert_eq(dr.gen[i], g, "token %d: %d vs %d", i, dr.gen[i], g);
        if (i + 1 < max_new) cr_assert_eq(session_eval(s, &g, NULL, 1, &fp, NULL, NULL, logits, err, sizeof err), 0);
    }
    /* naive teacher forcing: prompt + target[0..nt-1) with targets shifted; double log-softmax */
    int32_t seq[600], tg[600];
    float lp[600];
    memcpy(seq, prompt, (size_t)np * sizeof *seq);
    memcpy(seq + np, target, (size_t)nt * sizeof *seq);
    for (int i = 0; i < np + nt - 1; i++) tg[i] = i >= np - 1 ? seq[i + 1] : -1;
    session_reset(s);
    cr_assert_eq(session_eval(s, seq, NULL, np + nt - 1, &fp, tg, lp, NULL, err, sizeof err), 0);
    double want = 0;
    for (int i = np - 1; i < np + nt - 1; i++) want -= lp[i];
    cr_assert(fabs(dr.target_nll - want) <= 1e-3 * (1 + fabs(want)), "nll %.6f vs %.6f", dr.target_nll, want);
    free(logits);
    session_free(s);
}

Test(decode, greedy_and_teacher_forced_match_naive_loops, .init = open_model, .fini = close_model) {
    const char *text = "Once upon a time, there was a little girl";
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(rt.model->tok, text, strlen(text), true, &ids, &n), 0);
    /* the greedy continuation itself, from a plain argmax loop */
    int32_t greedy[8];
    {
        char err[256];
        struct method_spec spec;
        cr_assert_eq(method_spec_parse("baseline", &spec, err, sizeof err), 0);
        struct method_ctx mc = {.cfg = &rt.model->cfg, .target_len = 512, .seq_len = (int)n};
        struct method_plan plan;
        cr_assert_eq(method_plan(&spec, &mc, &plan, err, sizeof err), 0);
        struct forward_plan fp = method_forward_plan(&plan);
        struct session *s = session_new(rt.engine, (int)n + 8, err, sizeof err);
        float *logits = malloc((size_t)rt.model->cfg.n_vocab * sizeof *logits);
        cr_assert_eq(session_eval(s, ids, NULL, (int)n, &fp, NULL, NULL, logits, err, sizeof err), 0);
        for (int i = 0; i < 8; i++) {
            greedy[i] = argmax(logits, rt.model->cfg.n_vocab);
            cr_assert_eq(session_eval(s, &greedy[i], NULL, 1, &fp, NULL, NULL, logits, err, sizeof err), 0);
        }
        free(logits);
        session_free(s);
    }
    check_decode(ids, (int)n, greedy, 6, 6);          /* target = greedy: one shared path */
    int32_t parted[6];
    memcpy(parted, greedy, sizeof parted);
    parted[2] = (parted[2] + 7) % rt.model->cfg.n_vocab;   /* they part at the third token */
    check_decode(ids, (int)n, parted, 6, 5);
    parted[0] = (greedy[0] + 3) % rt.model->cfg.n_vocab;   /* they part at once */
    check_decode(ids, (int)n, parted, 6, 8);
    check_decode(ids, (int)n, greedy, 8, 3);          /* a target longer than the generation */
    free(ids);
}

/* The one token-to-text helper: the pieces in order give back the text that was encoded
 * (SPM adds one leading space), bytes spelled by <0xXX> tokens included. */
Test(tasks, tokens_to_text_gives_back_the_encoded_text, .init = open_model, .fini = close_model) {
    const char text[] = "Once upon a time, 123 ducks said \"Hello!\"\n\nThe end. \xC3\xBC\xE4\xBD\xA0";
    int32_t *ids;
    size_t n;
    cr_assert_eq(tokenizer_encode(rt.model->tok, text, sizeof text - 1, false, &ids, &n), 0);
    struct textbuf b = {0};
    tokens_to_text(rt.model->tok, ids, (int)n, &b);
    cr_assert(!b.oom);
    cr_assert_eq(b.n, sizeof text);
    cr_assert_eq(b.s[0], ' ');
    cr_assert_str_eq(b.s + 1, text);
    /* a control token (BOS) reads as nothing; no tokens give an empty string, not NULL */
    int32_t bos_then[2] = {tokenizer_bos(rt.model->tok), ids[0]};
    tokens_to_text(rt.model->tok, bos_then, 2, &b);
    cr_assert_str_eq(b.s, " Once");
    textbuf_free(&b);
    tokens_to_text(rt.model->tok, ids, 0, &b);
    cr_assert_not_null(b.s);
    cr_assert_str_eq(b.s, "");
    textbuf_free(&b);
    free(ids);
}

static int run_task_method(const char *name, const char *method, int length, const char *data,
                           const char *settings, const char *cache_dir, struct result *r, char *err, size_t errlen) {
    const struct task *t = task_find(name);
    cr_assert_not_null(t, "task %s", name);
    struct method_spec spec;
    cr_assert_eq(method_spec_parse(method, &spec, err, errlen), 0);
    cr_assert_eq(t->check(settings, err, errlen), 0, "%s", err);
    cr_assert(t->session_tokens(length, settings) >= length);
    struct task_ctx ctx = {.rt = &rt, .method = &spec, .length = length, .data = data, .settings = settings,
                           .seed = 1, .cache_dir = cache_dir};
    memset(r, 0, sizeof *r);
    return t->run(&ctx, r, err, errlen);
}

static int run_task_cached(const char *name, int length, const char *data, const char *settings,
                           const char *cache_dir, struct result *r, char *err, size_t errlen) {
    return run_task_method(name, "baseline", length, data, settings, cache_dir, r, err, errlen);
}

static int run_task(const char *name, int length, const char *data, const char *settings, struct result *r,
                    char *err, size_t errlen) {
    return run_task_cached(name, length, data, settings, NULL, r, err, errlen);
}

static double scalar(const struct result *r, const char *name) {
    const struct result_item *it = result_find(r, name);
    cr_assert_not_null(it, "no result %s", name);
    cr_assert_eq(it->kind, RESULT_SCALAR);
    return it->value;
}

Test(tasks, registry) {
    cr_assert_not_null(task_find("ppl"));
    cr_assert_not_null(task_find("passkey"));
    cr_assert_not_null(task_find("first_sentence"));
    cr_assert_null(task_find("nope"));
    cr_assert_null(task_find(NULL));
}

Test(tasks, settings_are_checked) {
    char err[512];
    const struct task *ppl = task_find("ppl"), *pk = task_find("passkey"), *fs = task_find("first_sentence");
    cr_assert_eq(ppl->check("", err, sizeof err), 0);
    cr_assert_eq(ppl->check(NULL, err, sizeof err), 0);
    cr_assert_eq(ppl->check("protocol=yarn,truncate=1,stride=128", err, sizeof err), 0, "%s", err);
    cr_assert_eq(ppl->check("protocol=windows,truncate=1", err, sizeof err), -1);
    cr_assert_eq(ppl->check("protocol=sliding", err, sizeof err), -1);
    cr_assert(strstr(err, "windows, yarn, longlora, llamacpp"), "%s", err);
    cr_assert_eq(ppl->check("strid=3", err, sizeof err), -1);
    cr_assert(strstr(err, "stride") && strstr(err, "max_windows"), "%s", err);
    cr_assert_eq(pk->check("variant=selfextend,depths=3,trials=1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(pk->check("depths=0", err, sizeof err), -1);
    cr_assert_eq(fs->check("samples=2,max_new_tokens=16", err, sizeof err), 0, "%s", err);
    cr_assert_eq(fs->check("samples=x", err, sizeof err), -1);
}

/* Every window or prompt of a cell has its own forward-pass rate (the spread over
 * repeats the cost figure draws): one per unit, each a positive, finite rate. */
static void expect_unit_rates(const struct result *r, int n_units) {
    const struct result_item *t = result_find(r, "timing_tokens_per_s");
    cr_assert(t && t->kind == RESULT_ARRAY, "timing_tokens_per_s missing");
    cr_expect_eq(t->rows, n_units);
    for (int i = 0; i < t->rows; i++) cr_expect(isfinite(t->data[i]) && t->data[i] > 0, "rate %d: %g", i, t->data[i]);
}

/* The windows protocol's NLL, recomputed here window by window through the backend. */
Test(tasks, ppl_windows_end_to_end, .init = open_model, .fini = close_model) {
    struct result r;
    char err[512];
    const int L = 256;
    cr_assert_eq(run_task("ppl", L, "tinystories-sampled", "max_windows=3,bins=8", &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(scalar(&r, "windows"), 3);
    expect_unit_rates(&r, 3);
    cr_assert_eq(scalar(&r, "tokens_scored"), 3 * (L - 1));
    cr_assert_eq(scalar(&r, "tokens"), 3 * (L - 1));
    double nll = scalar(&r, "nll");
    cr_assert_float_eq(scalar(&r, "ppl"), exp(nll), 1e-9 * exp(nll));
    cr_assert_str_eq(result_find(&r, "protocol")->text, "windows");
    const struct result_item *bins = result_find(&r, "nll_by_pos"), *edges = result_find(&r, "nll_by_pos_edges");
    cr_assert_eq(bins->rows, 8);
    cr_assert_eq(edges->rows, 9);
    cr_assert_float_eq(edges->data[8], L, 0);
    /* independent: tokens of the dataset's documents, concatenated, windows of BOS + L-1 */
    struct dataset ds;
    cr_assert_eq(dataset_load("tinystories-sampled", &ds, err, sizeof err), 0, "%s", err);
    int32_t stream[3 * 255 + 1];
    int have = 0;
    for (int d = 0; d < ds.n_docs && have < 3 * (L - 1); d++) {
        int32_t *ids;
        size_t n;
        cr_assert_eq(tokenizer_encode(rt.model->tok, ds.docs[d], ds.doc_len[d], false, &ids, &n), 0);
        for (size_t i = 0; i < n && have < 3 * (L - 1); i++) stream[have++] = ids[i];
        free(ids);
    }
    dataset_free(&ds);
    struct method_spec spec;
    method_spec_parse("baseline", &spec, err, sizeof err);
    struct method_ctx mc = {.cfg = &rt.model->cfg, .target_len = L, .seq_len = L};
    struct method_plan plan;
    method_plan(&spec, &mc, &plan, err, sizeof err);
    struct forward_plan fp = method_forward_plan(&plan);
    struct session *s = session_new(rt.engine, L, err, sizeof err);
    double sum = 0, by_bin[8] = {0};
    int count[8] = {0};
    for (int w = 0; w < 3; w++) {
        int32_t seq[256];
        float lp[256];
        seq[0] = tokenizer_bos(rt.model->tok);
        memcpy(seq + 1, stream + w * (L - 1), (size_t)(L - 1) * sizeof *seq);
        session_reset(s);
        cr_assert_eq(session_eval(s, seq, NULL, L - 1, &fp, seq + 1, lp, NULL, err, sizeof err), 0);
        for (int j = 0; j < L - 1; j++) {
            sum -= lp[j];
            by_bin[(j + 1) * 8 / L] -= lp[j];
            count[(j + 1) * 8 / L]++;
        }
    }
    session_free(s);
    cr_assert_float_eq(nll, sum / (3 * (L - 1)), 1e-9);
    for (int b = 0; b < 8; b++) cr_assert_float_eq(bins->data[b], by_bin[b] / count[b], 1e-9);
    cr_assert(nll > 0.3 && nll < 3, "stories260K on its own samples: nll %.3f", nll);
    result_free(&r);
}

Test(tasks, ppl_other_protocols_end_to_end, .init = open_model, .fini = close_model) {
    struct result r;
    char err[512];
    const struct {
        const char *settings, *protocol;
        double scored;
    } cases[] = {
        {"protocol=llamacpp,max_windows=2", "llamacpp", 2 * (256 - 1 - 128)},
        {"protocol=longlora,stride=128,max_windows=2", "longlora", 2 * 255},
        /* per document: two windows of the first document, the second scoring 128 new tokens */
        {"protocol=yarn,stride=128,max_windows=2,max_docs=1", "yarn", 255 + 128},
        {"protocol=yarn,truncate=1,max_windows=2", "yarn", 2 * 255},
    };
    /* the children's books, tokenized once into a cache the later runs read */
    char cache[] = "/tmp/ctxbench-test-tasks-cache-XXXXXX";
    cr_assert_not_null(mkdtemp(cache));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(run_task_cached("ppl", 256, "children", cases[i].settings, cache, &r, err, sizeof err), 0,
                     "%s: %s", cases[i].settings, err);
        cr_assert_str_eq(result_find(&r, "protocol")->text, cases[i].protocol);
        cr_assert_eq(scalar(&r, "tokens_scored"), cases[i].scored, "%s: %g scored", cases[i].settings,
                     scalar(&r, "tokens_scored"));
        double ppl = scalar(&r, "ppl");
        cr_assert(isfinite(ppl) && ppl > 1, "%s: ppl %g", cases[i].settings, ppl);
        cr_assert_eq(scalar(&r, "corpus_from_cache"), i > 0);
        result_free(&r);
    }
    /* max_tokens caps forward-pass tokens: 600 fits two windows of 255 */
    cr_assert_eq(run_task_cached("ppl", 256, "children", "max_tokens=600", cache, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(scalar(&r, "windows"), 2);
    result_free(&r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    cr_assert_eq(system(cmd), 0);
}

/* protocol=llamacpp against llama.cpp itself: `llama-perplexity -m stories260K.gguf -f
 * tinystories/stories_sampled.txt -c C -b 1024 --chunks 10 -ctk f32 -ctv f32` (llama.cpp
 * build 4748, c392e50, F32 KV cache so the cache's F16 rounding does not enter) printed these
 * final estimates; the file is read as one document, as llama-perplexity reads it. */
Test(tasks, ppl_llamacpp_protocol_reproduces_llama_perplexity, .init = open_model, .fini = close_model) {
    const struct {
        const char *method;
        int length;
        double ppl;
    } ref[] = {
        {"baseline", 512, 4.5949},
        {"baseline", 1024, 4.6607},
        {"pi:factor=2", 1024, 12.4245},   /* --rope-scaling linear --rope-scale 2 */
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        struct result r;
        char err[512];
        cr_assert_eq(run_task_method("ppl", ref[i].method, ref[i].length, "tinystories/stories_sampled.txt",
                                     "protocol=llamacpp,max_windows=10", NULL, &r, err, sizeof err),
                     0, "%s", err);
        double ppl = scalar(&r, "ppl");
        cr_assert(fabs(ppl - ref[i].ppl) <= 1e-4 + 1e-5 * ref[i].ppl, "%s at %d: %.5f, llama.cpp %.4f",
                  ref[i].method, ref[i].length, ppl, ref[i].ppl);
        cr_assert_eq(scalar(&r, "windows"), 10);
        result_free(&r);
    }
}

Test(tasks, ppl_too_short_data_is_a_clear_error, .init = open_model, .fini = close_model) {
    char path[] = "/tmp/ctxbench-test-tasks-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "Once upon a time there was a cat. The end.";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct result r;
    char err[512];
    cr_assert_eq(run_task("ppl", 256, path, "", &r, err, sizeof err), -1);
    cr_assert(strstr(err, path) && strstr(err, "tokens") && strstr(err, "256"), "%s", err);
    cr_assert_eq(run_task("ppl", 256, path, "protocol=yarn", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "no document"), "%s", err);
    cr_assert_eq(run_task("ppl", 256, "/nonexistent.txt", "", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent.txt"), "%s", err);
    /* the tokens a stream protocol says it needs are the fewest that lay out a window */
    const struct {
        const char *settings;
        enum ppl_protocol p;
        int stride;
    } need[] = {{"", PPL_WINDOWS, 0}, {"protocol=llamacpp", PPL_LLAMACPP, 0},
                {"protocol=longlora,stride=100", PPL_LONGLORA, 100}};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        cr_assert_eq(run_task("ppl", 256, path, need[i].settings, &r, err, sizeof err), -1);
        const char *at = strstr(err, "needs at least ");
        long long n = 0;
        cr_assert(at && sscanf(at, "needs at least %lld", &n) == 1, "%s", err);
        int64_t enough[] = {0, n}, short_by_one[] = {0, n - 1};
        struct ppl_layout_opts o = {need[i].p, 256, need[i].stride, false, 0};
        cr_expect_gt(ppl_layout(&o, enough, 1, NULL, 0), 0, "%s: %lld tokens lay out no window", need[i].settings, n);
        cr_expect_eq(ppl_layout(&o, short_by_one, 1, NULL, 0), 0, "%s: %lld tokens are enough", need[i].settings,
                     n - 1);
    }
    unlink(path);
}

Test(tasks, passkey_end_to_end, .init = open_model, .fini = close_model) {
    struct result r;
    char err[512];
    cr_assert_eq(run_task("passkey", 256, NULL, "depths=3,trials=2", &r, err, sizeof err), 0, "%s", err);
    double acc = scalar(&r, "accuracy"), dacc = scalar(&r, "digit_accuracy");
    cr_assert(acc >= 0 && acc <= 1 && dacc >= acc - 1e-12 && dacc <= 1);
    cr_assert_eq(scalar(&r, "trials"), 6);
    double pt = scalar(&r, "prompt_tokens");
    cr_assert(pt > 200 && pt <= 256 - 9, "prompt tokens %g", pt);
    double knll = scalar(&r, "key_nll");
    cr_assert(isfinite(knll) && knll > 0);
    const struct result_item *depth = result_find(&r, "depth"), *act = result_find(&r, "depth_actual");
    cr_assert_eq(depth->rows, 3);
    cr_assert_float_eq(depth->data[0], 0, 0);
    cr_assert_float_eq(depth->data[1], 0.5, 1e-12);
    cr_assert_float_eq(depth->data[2], 1, 0);
    cr_assert(act->data[0] < act->data[1] && act->data[1] < act->data[2]);
    cr_assert(fabs(act->data[1] - 0.5) < 0.1, "middle depth reached %g", act->data[1]);
    cr_assert_eq(result_find(&r, "accuracy_by_depth")->rows, 3);
    expect_unit_rates(&r, 6);
    cr_assert_str_eq(result_find(&r, "variant")->text, "yarn");
    cr_assert(strstr(result_find(&r, "answers")->text, "0.50:"));
    result_free(&r);
    cr_assert_eq(run_task("passkey", 256, NULL, "variant=selfextend,depths=1,trials=1", &r, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_eq(result_find(&r, "variant")->text, "selfextend");
    result_free(&r);
    cr_assert_eq(run_task("passkey", 40, NULL, "", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "length 40"), "%s", err);
}

Test(tasks, first_sentence_end_to_end, .init = open_model, .fini = close_model) {
    struct result r;
    char err[512];
    cr_assert_eq(run_task("first_sentence", 256, NULL, "samples=2,max_new_tokens=24", &r, err, sizeof err), 0, "%s",
                 err);
    double rl = scalar(&r, "rouge_l"), em = scalar(&r, "exact_match");
    cr_assert(rl >= 0 && rl <= 1 && em >= 0 && em <= rl + 1e-12);
    double pt = scalar(&r, "prompt_tokens");
    cr_assert(pt > 150 && pt <= 256 - 24, "prompt tokens %g", pt);
    cr_assert(isfinite(scalar(&r, "reference_nll")));
    cr_assert_eq(result_find(&r, "rouge_l_by_sample")->rows, 2);
    expect_unit_rates(&r, 2);
    cr_assert(strstr(result_find(&r, "prompt")->text, "does not publish"));
    cr_assert(strstr(result_find(&r, "examples")->text, "ref: "));
    result_free(&r);
}
