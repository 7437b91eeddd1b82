/* Perplexity at one context length, under one of four published protocols (YaRN sliding
 * windows, LongLoRA, llama.cpp, plain windows). The protocols disagree on what a window
 * holds and which predictions count, so the same model and text give different numbers:
 * the protocol is a setting and is stored with every result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "host.h"
#include "input.h"
#include "scoring.h"
#include "settings.h"
#include "task.h"
#include "task_util.h"
#include "tokenizer.h"

/* In enum ppl_protocol order. */
static const char *const protocols[] = {"windows", "yarn", "longlora", "llamacpp", NULL};
/* In struct ppl_opts order (read_opts copies them by index). */
static const struct task_setting ppl_settings[] = {
    {"protocol", TASK_SETTING_CHOICE, 0, 0, 0, protocols, NULL, "windows, stride and mean (tasks/README.md)"},
    {"stride", TASK_SETTING_INT, 256, 1, 1 << 24, NULL, NULL, "yarn, longlora: tokens between window starts"},
    {"truncate", TASK_SETTING_INT, 0, 0, 1, NULL, NULL, "yarn only: 1 = one window per document, its first L-1 tokens"},
    {"max_windows", TASK_SETTING_INT, 64, 1, 1L << 30, NULL, NULL, "at most this many windows per cell (the first)"},
    {"max_docs", TASK_SETTING_INT, 0, 0, 1L << 30, NULL, NULL, "the first N documents; 0 = all"},
    {"max_tokens", TASK_SETTING_INT, 32768, 2, 1L << 40, NULL, NULL,
     "forward-pass tokens per cell: the first windows that fit, at least one"},
    {"bins", TASK_SETTING_INT, 64, 1, 4096, NULL, NULL, "bins of nll_by_pos over [0, L)"},
    {"min_doc_tokens", TASK_SETTING_INT, -1, -1, 1L << 40, NULL, "L-1",
     "yarn: documents shorter than this are skipped; -1 = L-1"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
static const char *const protocol_detail[] = {
    "windows: one stream, non-overlapping windows of BOS + L-1 tokens, every prediction scored, token mean",
    "yarn: per document, windows of BOS + L-1 tokens every S tokens, only tokens new to a window scored, "
    "unweighted mean of per-window mean NLL (jquesnelle/yarn eval/perplexity.py)",
    "longlora: one stream, windows of L tokens (no BOS) every S tokens (last start dropped), whole-window loss, "
    "mean of window means (LongLoRA eval.py)",
    "llamacpp: BOS + stream cut into chunks of L, first token of each chunk replaced by BOS, predictions L/2..L-2 "
    "scored, token mean (llama-perplexity)",
};

struct ppl_opts {
    int protocol;
    long stride, truncate, max_windows, max_docs, max_tokens, bins, min_doc;
};

/* min_doc = -1: the default, L - 1 (a document shorter than a window is skipped). */
static int read_opts(const char *text, struct ppl_opts *o, char *err, size_t errlen) {
    long v[8];
    if (task_settings_read(ppl_settings, "ppl", text, v, err, errlen) != 0) return -1;
    o->protocol = (int)v[0];
    o->stride = v[1];
    o->truncate = v[2];
    o->max_windows = v[3];
    o->max_docs = v[4];
    o->max_tokens = v[5];
    o->bins = v[6];
    o->min_doc = v[7];
    if (o->truncate && o->protocol != PPL_YARN) {
        snprintf(err, errlen, "ppl: truncate=1 applies to protocol=yarn only");
        return -1;
    }
    return 0;
}

static int ppl_check(const char *settings, char *err, size_t errlen) {
    struct ppl_opts o;
    return read_opts(settings, &o, err, errlen);
}

/* Windows of about L tokens each (every protocol), as many as max_tokens allows (at least
 * one) up to max_windows: the data is assumed to hold them. */
static void ppl_work(int length, const char *settings, struct task_work *w) {
    struct ppl_opts o;
    char err[256];
    if (read_opts(settings, &o, err, sizeof err) != 0) return;
    double n_win = floor((double)o.max_tokens / length);
    n_win = n_win < 1 ? 1 : n_win > o.max_windows ? (double)o.max_windows : n_win;
    task_work_sequences(w, n_win, length - 1, 0);
}

/* One cell's windows over its corpus, and what evaluating them adds up to. */
struct ppl_cell {
    struct ppl_opts o;
    int L;
    struct ppl_layout_opts lo;
    int n_docs;                   /* documents taken (max_docs) */
    int64_t available;            /* windows the protocol lays out over them */
    struct ppl_window *win;       /* the windows evaluated: the first ones within the caps */
    int64_t n_win;
    struct cell_plan cp;
    /* evaluation */
    double sum_window_means, sum_nll;
    double *win_nll, *win_scored; /* [n_win] each window's summed NLL and scored tokens (for intervals) */
    double *win_tps;              /* [n_win] each window's forward tokens / seconds (a timing: run-specific) */
    long scored, forward;
    struct pos_bins bins;
};

/* Lays out the protocol's windows over the corpus and keeps the first ones within
 * max_windows and max_tokens. Kept apart from the evaluation because too little text is
 * the usual failure, and its message has to say what the protocol needed. */
static int plan_windows(struct ppl_cell *pc, const struct dataset *ds, const struct corpus *c, char *err,
                        size_t errlen) {
    const struct ppl_opts *o = &pc->o;
    const int L = pc->L;
    pc->n_docs = o->max_docs > 0 && o->max_docs < c->n_docs ? (int)o->max_docs : c->n_docs;
    pc->lo = (struct ppl_layout_opts){.protocol = (enum ppl_protocol)o->protocol,
                                      .length = L,
                                      .stride = o->truncate ? L - 1 : (int)o->stride,
                                      .truncate = o->truncate != 0,
                                      .min_doc = o->min_doc >= 0 ? o->min_doc : L - 1};
    pc->available = ppl_layout(&pc->lo, c->doc_start, pc->n_docs, NULL, 0);
    if (pc->available <= 0) {
        int64_t longest = 0;
        for (int d = 0; d < pc->n_docs; d++)
            if (corpus_doc_len(c, d) > longest) longest = corpus_doc_len(c, d);
        if (o->protocol == PPL_YARN)
            snprintf(err, errlen,
                     "ppl: dataset '%s' (%s) has no document of %lld tokens (longest %lld of %d documents); "
                     "protocol=yarn at length %d needs one (or set min_doc_tokens, or use a stream protocol)",
                     ECHO(ds->spec), ECHO(ds->path), (long long)pc->lo.min_doc, (long long)longest, pc->n_docs, L);
        else   /* the fewest tokens that lay out one window: L-1 text tokens after BOS; longlora's
                * two starts (range(0, N - L, S) less the last) need N - L > S */
            snprintf(err, errlen, "ppl: dataset '%s' (%s) has %lld tokens; protocol=%s at length %d needs at least %lld",
                     ECHO(ds->spec), ECHO(ds->path), (long long)(c->doc_start[pc->n_docs] - c->doc_start[0]),
                     protocols[o->protocol], L,
                     o->protocol == PPL_LONGLORA ? (long long)L + o->stride + 1 : (long long)L - 1);
        return -1;
    }
    int64_t n_win = pc->available < o->max_windows ? pc->available : o->max_windows;
    pc->win = malloc((size_t)n_win * sizeof *pc->win);
    if (!pc->win) {
        snprintf(err, errlen, "ppl: out of memory");
        return -1;
    }
    ppl_layout(&pc->lo, c->doc_start, pc->n_docs, pc->win, n_win);
    /* the token cap: whole windows while their forward passes fit, at least one */
    int64_t budget = 0, used = 0;
    for (; used < n_win; used++) {
        int64_t n = (int64_t)pc->win[used].bos + pc->win[used].n_text;
        if (used > 0 && budget + n > o->max_tokens) break;
        budget += n;
    }
    pc->n_win = used;
    return 0;
}

/* The protocol's mean NLL so far: over windows (yarn, longlora) or over tokens. */
static double mean_nll(const struct ppl_cell *pc, int64_t windows_done) {
    return ppl_mean_of_windows((enum ppl_protocol)pc->o.protocol) ? pc->sum_window_means / (double)windows_done
                                                                   : pc->sum_nll / (double)pc->scored;
}

/* Runs every window through one session and adds up its scored predictions: per window
 * (for the mean of window means), per token, and by position in the window. The plan
 * for the first window is made before the loop so that the cell's first note can name
 * the method as it was planned. */
static int eval_windows(struct ppl_cell *pc, const struct task_ctx *ctx, const struct dataset *ds,
                        const struct corpus *c, char *err, size_t errlen) {
    const int L = pc->L;
    const struct ppl_window *win = pc->win;
    struct session *s = NULL;
    int32_t *seq = malloc((size_t)L * sizeof *seq), *targets = malloc((size_t)L * sizeof *targets);
    float *logprob = malloc((size_t)L * sizeof *logprob);
    pc->win_nll = calloc((size_t)pc->n_win + 1, sizeof *pc->win_nll);
    pc->win_scored = calloc((size_t)pc->n_win + 1, sizeof *pc->win_scored);
    pc->win_tps = calloc((size_t)pc->n_win + 1, sizeof *pc->win_tps);
    int rc = -1;
    if (!seq || !targets || !logprob || !pc->win_nll || !pc->win_scored || !pc->win_tps || pos_bins_init(&pc->bins, (int)pc->o.bins < L ? (int)pc->o.bins : L, L) != 0) {
        snprintf(err, errlen, "ppl: out of memory");
        goto out;
    }
    long total_forward = 0;   /* the cell's forward tokens, for its progress */
    for (int64_t w = 0; w < pc->n_win; w++) total_forward += (long)win[w].bos + win[w].n_text - 1;
    struct task_progress tp;
    s = task_session_new(ctx, L, &tp, err, errlen);
    if (!s) goto out;
    /* the plan sees the whole window, BOS included, as HF's forward pass does */
    if (cell_plan_for(&pc->cp, ctx, win[0].bos + win[0].n_text, err, errlen) != 0) goto out;
    task_note(ctx, "ppl: %s, %lld tokens, %lld windows of %d, method %s%s%s", ECHO(ds->spec),
              (long long)(c->doc_start[pc->n_docs] - c->doc_start[0]), (long long)pc->n_win, L, ctx->method->text,
              pc->cp.plan.note[0] ? " — " : "", pc->cp.plan.note);
    task_begin(ctx, "%lld windows of %d", (long long)pc->n_win, L);
    int32_t bos = tokenizer_bos(ctx->rt->model->tok);
    double t0 = host_monotonic_s();
    for (int64_t w = 0; w < pc->n_win; w++) {
        const struct ppl_window *pw = &win[w];
        int n = pw->bos + pw->n_text;
        if (pw->bos) seq[0] = bos;
        memcpy(seq + pw->bos, c->ids + pw->start, (size_t)pw->n_text * sizeof *seq);
        if (cell_plan_for(&pc->cp, ctx, n, err, errlen) != 0) goto out;
        for (int j = 0; j < n - 1; j++) targets[j] = j >= pw->score_from ? seq[j + 1] : -1;
        session_reset(s);
        task_progress_step(&tp, (double)pc->forward / total_forward, (double)(pc->forward + n - 1) / total_forward,
                           pc->forward, n - 1);
        /* the last token predicts nothing scored, so it is not fed */
        double tw = host_monotonic_s();
        if (session_eval(s, seq, NULL, n - 1, &pc->cp.fp, targets, logprob, NULL, err, errlen) != 0) goto out;
        tw = host_monotonic_s() - tw;
        pc->win_tps[w] = tw > 0 ? (n - 1) / tw : NAN;
        double wsum = 0;
        int wn = 0;
        for (int j = pw->score_from; j < n - 1; j++) {
            double nll = -(double)logprob[j];
            wsum += nll;
            wn++;
            pos_bins_add(&pc->bins, j + 1, nll);
        }
        if (wn > 0) pc->sum_window_means += wsum / wn;
        pc->win_nll[w] = wsum;
        pc->win_scored[w] = wn;
        pc->sum_nll += wsum;
        pc->scored += wn;
        pc->forward += n - 1;
        if (ctx->progress) ctx->progress(ctx->progress_arg, (double)pc->forward / total_forward, pc->forward);
        if (ctx->note && pc->scored > 0)
            task_note(ctx, "[%lld/%lld] window ppl %.4f, running ppl %.4f, %.1f tokens/s", (long long)w + 1,
                      (long long)pc->n_win, wn > 0 ? exp(wsum / wn) : NAN, exp(mean_nll(pc, w + 1)),
                      pc->forward / (host_monotonic_s() - t0));
    }
    if (pc->scored == 0) {
        snprintf(err, errlen, "ppl: no prediction was scored (length %d, protocol %s)", L, protocols[pc->o.protocol]);
        goto out;
    }
    rc = 0;
out:
    if (s) session_free(s);
    free(seq);
    free(targets);
    free(logprob);
    return rc;
}

/* The cell's results: the protocol's mean first (the headline), then what it was made
 * of and from, so a number can be traced to its windows, text and tokenizer. */
static int write_results(const struct ppl_cell *pc, const struct dataset *ds, const struct corpus *c,
                         struct result *out, char *err, size_t errlen) {
    const int L = pc->L, nb = pc->bins.n_bins;
    double *tmp = malloc(((size_t)nb + 1) * sizeof *tmp);
    if (!tmp) {
        snprintf(err, errlen, "ppl: out of memory");
        return -1;
    }
    double nll_tok = pc->sum_nll / (double)pc->scored;
    double nll = mean_nll(pc, pc->n_win);
    int docs_used = 0;
    for (int64_t w = 0, last = -2; w < pc->n_win; w++)
        if (pc->win[w].doc != last) docs_used += pc->win[w].doc >= 0, last = pc->win[w].doc;

    struct result_sink k = {out, 0};
    sink_scalar(&k, "ppl", exp(nll));
    sink_scalar(&k, "nll", nll);
    sink_scalar(&k, "nll_token_mean", nll_tok);
    sink_scalar(&k, "tokens_scored", (double)pc->scored);
    sink_scalar(&k, "windows", (double)pc->n_win);
    sink_scalar(&k, "windows_available", (double)pc->available);
    sink_scalar(&k, "docs_used", (double)docs_used);
    sink_scalar(&k, "tokens", (double)pc->forward);
    sink_scalar(&k, "stride", (double)pc->lo.stride);
    sink_scalar(&k, "truncate", (double)pc->o.truncate);
    sink_scalar(&k, "corpus_tokens", (double)c->n_ids);
    sink_scalar(&k, "corpus_from_cache", c->from_cache);
    pos_bins_mean(&pc->bins, tmp);
    sink_array(&k, "nll_by_pos", tmp, nb);
    for (int b = 0; b < nb; b++) tmp[b] = (double)pc->bins.count[b];
    sink_array(&k, "nll_by_pos_count", tmp, nb);
    /* per window: what a bootstrap over windows resamples (the figures' intervals) */
    sink_array(&k, "nll_by_window", pc->win_nll, (int)pc->n_win);
    sink_array(&k, "scored_by_window", pc->win_scored, (int)pc->n_win);
    sink_array(&k, "timing_tokens_per_s", pc->win_tps, (int)pc->n_win);
    for (int b = 0; b <= nb; b++) tmp[b] = (double)L * b / nb;
    sink_array(&k, "nll_by_pos_edges", tmp, nb + 1);
    sink_text(&k, "protocol", protocols[pc->o.protocol]);
    sink_text(&k, "protocol_detail", protocol_detail[pc->o.protocol]);
    sink_text(&k, "dataset_path", ds->path);
    sink_text(&k, "dataset_sha256", ds->sha256);
    sink_text(&k, "tokenizer_sha256", c->tokenizer_sha256);
    sink_text(&k, "method_note", pc->cp.plan.note);
    free(tmp);
    return sink_finish(&k, "ppl", err, errlen);
}

static int ppl_run(const struct task_ctx *ctx, struct result *out, char *err, size_t errlen) {
    struct ppl_cell pc = {.L = ctx->length};
    if (read_opts(ctx->settings, &pc.o, err, errlen) != 0) return -1;
    const struct model *m = ctx->rt->model;
    if (pc.L < TASK_MIN_LENGTH) {
        snprintf(err, errlen, "ppl: length %d is too short (at least %d)", pc.L, TASK_MIN_LENGTH);
        return -1;
    }
    if (!m->tok || tokenizer_bos(m->tok) < 0) {
        snprintf(err, errlen, "ppl: the model has no tokenizer with a BOS token");
        return -1;
    }
    cell_plan_init(&pc.cp);
    struct dataset own;
    struct corpus c;
    memset(&c, 0, sizeof c);
    int rc = -1;
    const struct dataset *ds = task_dataset(ctx, "tinystories", &own, err, errlen);
    if (ds && corpus_load(ds, m, ctx->cache_dir, &c, err, errlen) == 0 && plan_windows(&pc, ds, &c, err, errlen) == 0 &&
        eval_windows(&pc, ctx, ds, &c, err, errlen) == 0 && write_results(&pc, ds, &c, out, err, errlen) == 0)
        rc = 0;
    pos_bins_free(&pc.bins);
    free(pc.win);
    free(pc.win_nll);
    free(pc.win_scored);
    free(pc.win_tps);
    corpus_free(&c);
    dataset_free(&own);
    return rc;
}

static const char *const ppl_limit[] = {"max_windows", NULL};

const struct task task_ppl = {
    .name = "ppl",
    .summary = "perplexity at the cell's length under a chosen protocol (windows, yarn, longlora, llamacpp)",
    .help =
        "Perplexity of the dataset's text with windows of L = the cell's length tokens.\n"
        "Protocols (setting protocol=, default windows):\n"
        "  windows   one stream (documents' tokens concatenated); non-overlapping windows of BOS + L-1\n"
        "            tokens; every prediction scored; token mean. Cheapest: the default.\n"
        "  yarn      per document (documents shorter than min_doc_tokens, default L-1, are skipped);\n"
        "            windows of BOS + up to L-1 tokens starting every stride tokens; only tokens no earlier\n"
        "            window scored count; ppl = exp(unweighted mean of per-window mean NLL)\n"
        "            (jquesnelle/yarn eval/perplexity.py). truncate=1: one window of the first L-1 tokens of\n"
        "            each document, all scored (YaRN's Proof-pile tables).\n"
        "  longlora  one stream; windows of L tokens, no BOS, starting every stride tokens, the last start\n"
        "            dropped; whole-window loss; mean of window means (LongLoRA eval.py; it uses e = 2.71828,\n"
        "            we use exp, a relative difference below 1e-6 per nat).\n"
        "  llamacpp  BOS + stream cut into chunks of L; each chunk starts with BOS in place of its first\n"
        "            token; predictions L/2 .. L-2 scored; token mean (llama-perplexity's default).\n"
        "Settings: protocol=windows stride=256 truncate=0 max_windows=64 max_docs=0 (all)\n"
        "  max_tokens=32768 (forward-pass tokens per cell: the first windows that fit, at least one)\n"
        "  bins=64 min_doc_tokens=L-1 (yarn).\n"
        "Windows and documents are taken in order (the first ones), so a cell is deterministic.\n"
        "The method is planned per window with seq_len = tokens in the window, BOS included.\n"
        "Results: ppl, nll (the protocol's mean), nll_token_mean, tokens_scored, windows,\n"
        "  windows_available, docs_used, tokens (forward-pass tokens), nll_by_pos (mean NLL of the\n"
        "  predicted token's position in its window, bins over [0, L); edges in nll_by_pos_edges,\n"
        "  counts in nll_by_pos_count), protocol, protocol_detail, dataset_path, dataset_sha256.\n"
        "Default data: tinystories.",
    .default_data = "tinystories",
    .settings = ppl_settings,
    .limit_settings = ppl_limit,
    .check = ppl_check,
    .session_tokens = task_session_is_length,
    .work = ppl_work,
    .run = ppl_run,
};
