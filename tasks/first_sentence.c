/* First-sentence retrieval (LLaMA 2 Long, arXiv 2309.16039, section 4.1): a document that
 * fills the context, then a question asking for its first sentence. The model must reach
 * back across the whole window. The paper publishes no prompt, text source or sample
 * count; the prompt here is ctxbench's own (datasets/first_sentence/prompt.txt) and is
 * labelled so in every result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "decode.h"
#include "input.h"
#include "scoring.h"
#include "settings.h"
#include "task.h"
#include "task_util.h"
#include "textbuf.h"
#include "tokenizer.h"

/* In struct fs_opts order (read_opts copies them by index). */
static const struct task_setting fs_settings[] = {
    {"samples", TASK_SETTING_INT, 4, 1, 1000, NULL, NULL, "prompts per cell, from starting points spread over the text"},
    {"max_new_tokens", TASK_SETTING_INT, 48, 4, 1024, NULL, NULL,
     "answer budget (or the reference's tokens if more)"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
static const char *const prompt_label = "ctxbench's own prompt; the paper does not publish one";
#define MIN_WORDS 4     /* a first sentence shorter than this (a heading) is skipped */
#define MAX_WORDS 60    /* ... and one longer than this too */

struct fs_opts {
    long samples, max_new;
};

static int read_opts(const char *text, struct fs_opts *o, char *err, size_t errlen) {
    long v[2];
    if (task_settings_read(fs_settings, "first_sentence", text, v, err, errlen) != 0) return -1;
    o->samples = v[0];
    o->max_new = v[1];
    return 0;
}

static int fs_check(const char *settings, char *err, size_t errlen) {
    struct fs_opts o;
    return read_opts(settings, &o, err, errlen);
}

/* Each sample: a prompt of about L - max_new tokens, then at most max_new decode steps.
 * Tokenizing: a 64 KB probe of the source once per cell (~16k tokens), then per sample a
 * binary search over the text's length, about 18 prompts of up to L tokens. */
static void fs_work(int length, const char *settings, struct task_work *w) {
    struct fs_opts o;
    char err[256];
    if (read_opts(settings, &o, err, sizeof err) != 0) return;
    task_work_sequences(w, (double)o.samples, length - (double)o.max_new, (double)o.max_new);
    w->tokenized += 16384 + 18.0 * length * (double)o.samples;
}

/* The template: comment lines (#...) dropped, one final newline dropped, {text} once. */
static char *load_prompt(char *path, size_t cap, size_t *text_at, char *err, size_t errlen) {
    if (dataset_repo_file("first_sentence/prompt.txt", path, cap, err, errlen) != 0) return NULL;
    size_t n;
    char *raw = dataset_read_text(path, &n, err, errlen);
    if (!raw) return NULL;
    char *out = malloc(n + 1);
    if (!out) {
        free(raw);
        snprintf(err, errlen, "first_sentence: out of memory");
        return NULL;
    }
    size_t k = 0;
    for (char *p = raw; *p;) {
        char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) + 1 : strlen(p);
        if (p[0] != '#') {
            memcpy(out + k, p, len);
            k += len;
        }
        p += len;
    }
    if (k && out[k - 1] == '\n') k--;
    out[k] = 0;
    free(raw);
    char *at = strstr(out, "{text}");
    if (!at || strstr(at + 6, "{text}")) {
        snprintf(err, errlen, "%s: the template must hold {text} exactly once", path);
        free(out);
        return NULL;
    }
    *text_at = (size_t)(at - out);
    return out;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int count_words(const char *s, size_t n) {
    int w = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_ws(s[i]) && (i == 0 || is_ws(s[i - 1]))) w++;
    return w;
}

/* A good first sentence: MIN_WORDS..MAX_WORDS words (not a heading, not a run-on). */
static bool good_sentence(const char *s, size_t n) {
    int w = count_words(s, first_sentence_len(s, n));
    return w >= MIN_WORDS && w <= MAX_WORDS;
}

/* Where a sample starts, at or after pos and before limit: preferably a paragraph start
 * (after a blank line; so never inside a quotation), else a sentence start, with a good
 * first sentence. SIZE_MAX if there is none. */
static size_t sample_start(const char *s, size_t n, size_t pos, size_t limit) {
    for (size_t p = pos; p < limit; p++) {
        bool para = p == 0 || (p >= 2 && s[p - 1] == '\n' && s[p - 2] == '\n');
        if (para && !is_ws(s[p]) && good_sentence(s + p, n - p)) return p;
    }
    if (pos > 0) pos += first_sentence_len(s + pos, n - pos);   /* finish the sentence pos is in */
    for (int tries = 0; tries < 100000 && pos < limit; tries++) {
        while (pos < n && is_ws(s[pos])) pos++;
        if (pos >= limit) break;
        if (good_sentence(s + pos, n - pos)) return pos;
        pos += first_sentence_len(s + pos, n - pos);
    }
    return (size_t)-1;
}

/* template with {text} = doc[0..cut) into b */
static void build(struct textbuf *b, const char *tpl, size_t text_at, const char *doc, size_t cut) {
    textbuf_clear(b);
    textbuf_append(b, tpl, text_at);
    textbuf_append(b, doc, cut);
    textbuf_puts(b, tpl + text_at + 6);
}

/* Early stop: the answer holds a whole sentence (an end followed by more text). */
struct sentence_stop {
    const struct tokenizer *tok;
    struct textbuf text;
};
static bool sentence_complete(void *arg, const int32_t *gen, int n) {
    struct sentence_stop *st = arg;
    tokens_to_text(st->tok, gen, n, &st->text);
    if (st->text.oom) return true;
    size_t len = st->text.n;
    while (len && is_ws(st->text.s[len - 1])) len--;
    size_t start = 0;
    while (start < len && is_ws(st->text.s[start])) start++;
    return start < len && first_sentence_len(st->text.s, st->text.n) < st->text.n;
}

/* text[0..n) with whitespace runs made single spaces and the ends trimmed, into b */
static void one_line(struct textbuf *b, const char *s, size_t n) {
    textbuf_clear(b);
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        if (is_ws(s[i])) {
            space = b->n > 0;
            continue;
        }
        if (space) textbuf_puts(b, " ");
        space = false;
        textbuf_append(b, s + i, 1);
    }
    if (!b->s) textbuf_puts(b, "");
}

/* The text samples are cut from: the dataset's documents joined by blank lines, as the
 * file had them, with what sizing a sample needs to know about it. */
struct fs_source {
    struct textbuf text;
    long overhead;      /* prompt tokens of the template with no text */
    double cpt;         /* characters per token of the text (a 64 KB probe) */
    long need_chars;    /* characters that should fill the length, with a margin */
};

/* Joins the documents and measures the text, so each sample's binary search starts near
 * its answer; a text too short for the length is refused here, before any forward pass. */
static int prepare_source(const struct dataset *ds, const struct tokenizer *tok, const char *tpl, size_t text_at,
                          int L, struct textbuf *b, struct fs_source *so, char *err, size_t errlen) {
    struct textbuf *src = &so->text;
    for (int d = 0; d < ds->n_docs; d++) {
        if (d) textbuf_puts(src, "\n\n");
        textbuf_append(src, ds->docs[d], ds->doc_len[d]);
    }
    if (src->oom) {
        snprintf(err, errlen, "first_sentence: out of memory");
        return -1;
    }
    /* the answer budget: max_new generated tokens, and room for the reference if longer */
    build(b, tpl, text_at, "", 0);
    so->overhead = prompt_token_count(tok, b);
    /* chars per token of the source, to size the text that fills the length */
    size_t probe = src->n < 65536 ? src->n : 65536;
    int32_t *ids;
    size_t nids;
    if (tokenizer_encode(tok, src->s, probe, false, &ids, &nids) != 0) {
        snprintf(err, errlen, "first_sentence: could not tokenize the prompt");
        return -1;
    }
    free(ids);
    so->cpt = nids ? (double)probe / (double)nids : 4.0;
    so->need_chars = (long)((L - so->overhead) * so->cpt * 1.25) + 64;
    if (so->overhead < 0 || (long)src->n < so->need_chars / 2) {
        snprintf(err, errlen, "first_sentence: dataset '%s' (%s) has about %.0f tokens; length %d needs about %ld",
                 ECHO(ds->spec), ECHO(ds->path), src->n / so->cpt, L, (long)(L - so->overhead));
        return -1;
    }
    return 0;
}

/* Sample i's first byte: from a point spread evenly over the text (rotated by the seed)
 * to the next good start, so samples are deterministic and differ between seeds. */
static int pick_start(const struct fs_source *so, const struct task_ctx *ctx, int i, int S, const struct dataset *ds,
                      size_t *start, char *err, size_t errlen) {
    const struct textbuf *src = &so->text;
    double phase = fmod((double)(ctx->seed % 1000003) * 0.6180339887498949, 1.0);
    size_t span = src->n > (size_t)so->need_chars ? src->n - (size_t)so->need_chars : 1;
    size_t pos = (size_t)(((double)i + phase) / S * (double)span);
    *start = sample_start(src->s, src->n, pos, span > 1 ? span : src->n);
    if (*start == (size_t)-1) *start = sample_start(src->s, src->n, 0, src->n);
    if (*start == (size_t)-1) {
        snprintf(err, errlen, "first_sentence: dataset '%s' has no sentence of %d..%d words", ECHO(ds->spec),
                 MIN_WORDS, MAX_WORDS);
        return -1;
    }
    return 0;
}

/* The reference's tokens as they follow the prompt's suffix (teacher forced): tokenized
 * together with the suffix, whose own tokens (suffix_ids) are then cut off; 0 tokens
 * when the tokenizer merges across the seam (no reference NLL then). */
static int reference_tokens(const struct tokenizer *tok, const char *suffix, const int32_t *suffix_ids, size_t nsuf,
                            const char *ref, struct textbuf *b, int32_t **target, int *n_target, char *err,
                            size_t errlen) {
    textbuf_clear(b);
    textbuf_puts(b, suffix);
    textbuf_puts(b, " ");
    textbuf_puts(b, ref);
    size_t nt;
    free(*target);
    *target = NULL;
    if (b->oom || tokenizer_encode(tok, b->s, b->n, false, target, &nt) != 0) {
        snprintf(err, errlen, "first_sentence: could not tokenize the prompt");
        return -1;
    }
    *n_target = nt > nsuf && memcmp(*target, suffix_ids, nsuf * sizeof **target) == 0 ? (int)(nt - nsuf) : 0;
    return 0;
}

/* The prompt (*prompt, *np, BOS as the model expects it) holding the longest text from
 * doc, cut at a word boundary, that fits in limit tokens: widened by doubling, then a
 * binary search over its length, since tokens grow with the text only roughly. */
static int fit_text(const struct tokenizer *tok, const char *tpl, size_t text_at, const char *doc, size_t avail,
                    size_t sent_len, const struct fs_source *so, long limit, int L, const struct dataset *ds,
                    struct textbuf *b, int32_t **prompt, size_t *np, char *err, size_t errlen) {
    size_t lo = 0, hi = avail < (size_t)so->need_chars ? avail : (size_t)so->need_chars;
    for (;;) {   /* widen until the text overflows the limit or runs out */
        build(b, tpl, text_at, doc, hi);
        long n = prompt_token_count(tok, b);
        if (n < 0) goto tok_fail;
        if (n > limit) break;
        lo = hi;
        if (hi == avail) break;
        hi = avail - hi > hi ? 2 * hi : avail;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        build(b, tpl, text_at, doc, mid);
        long n = prompt_token_count(tok, b);
        if (n < 0) goto tok_fail;
        if (n <= limit) lo = mid;
        else hi = mid;
    }
    size_t cut = lo;
    while (cut > sent_len && !is_ws(doc[cut])) cut--;   /* whole words */
    while (cut > 0 && is_ws(doc[cut - 1])) cut--;
    build(b, tpl, text_at, doc, cut);
    free(*prompt);
    *prompt = NULL;
    if (b->oom || tokenizer_encode(tok, b->s, b->n, tokenizer_add_bos_default(tok), prompt, np) != 0) goto tok_fail;
    if (cut == avail && (long)*np < limit - 16) {
        snprintf(err, errlen, "first_sentence: dataset '%s' (%s) runs out of text: %zu prompt tokens, length %d "
                 "needs %ld", ECHO(ds->spec), ECHO(ds->path), *np, L, limit);
        return -1;
    }
    if ((long)*np > limit) {
        snprintf(err, errlen, "first_sentence: prompt of %zu tokens exceeds %ld", *np, limit);
        return -1;
    }
    return 0;
tok_fail:
    snprintf(err, errlen, "first_sentence: could not tokenize the prompt");
    return -1;
}

/* The cell's scores, per sample, and the counts its means are made of. */
struct fs_tally {
    int S;
    double *rouge, *exact, *rnll, *starts;   /* per sample */
    double *prefill_tps;                     /* per sample: prompt tokens / seconds of its forward pass */
    long forward, prompt_total, gen_total;
    struct textbuf examples;                 /* the first answers beside their references */
    struct sample_log samples;               /* per sample: reference, the whole answer, ROUGE-L */
};

/* Scores sample i's answer (its text decoded into b, cut at its first sentence) against
 * the reference: ROUGE-L F1, the same words, and the reference's mean NLL. */
static int score_sample(struct fs_tally *ty, int i, const struct tokenizer *tok, const int32_t *gen, int n_gen,
                        const struct textbuf *ref, double target_nll, int n_target, struct textbuf *b,
                        struct textbuf *ans, char *err, size_t errlen) {
    tokens_to_text(tok, gen, n_gen, b);
    if (b->oom) {
        snprintf(err, errlen, "first_sentence: out of memory");
        return -1;
    }
    one_line(ans, b->s, first_sentence_len(b->s, b->n));
    ty->rouge[i] = rouge_l_f1(ans->s, ref->s);
    ty->exact[i] = words_equal(ans->s, ref->s);
    ty->rnll[i] = n_target > 0 ? target_nll / n_target : NAN;
    if (i < 3) {
        char rec[600];
        snprintf(rec, sizeof rec, "%s[%d] ref: %.200s | got: %.200s", ty->examples.n ? " " : "", i, ref->s, ans->s);
        textbuf_puts(&ty->examples, rec);
    }
    char id[32];
    snprintf(id, sizeof id, "sample=%d", i);
    sample_log_add(&ty->samples, id, ref->s, b->s, ty->rouge[i]);
    return 0;
}

/* Every sample: a start, its reference, the prompt that fills the length, greedy
 * decoding with the reference teacher forced, and its scores. */
static int run_samples(const struct task_ctx *ctx, const struct fs_opts *o, const char *tpl, size_t text_at,
                       const struct dataset *ds, const struct fs_source *so, struct fs_tally *ty, struct cell_plan *cp,
                       char *err, size_t errlen) {
    const struct tokenizer *tok = ctx->rt->model->tok;
    const int L = ctx->length, S = ty->S, max_new = (int)o->max_new;
    const struct textbuf *src = &so->text;
    struct textbuf b = {0}, ref = {0}, ans = {0};
    struct sentence_stop stop = {tok, {0}};
    struct session *s = NULL;
    int32_t *prompt = NULL, *suffix_ids = NULL, *target = NULL, *gen = malloc((size_t)max_new * sizeof *gen);
    int rc = -1;
    size_t nsuf;
    const char *suffix = tpl + text_at + 6;
    if (!gen) {
        snprintf(err, errlen, "first_sentence: out of memory");
        goto out;
    }
    if (tokenizer_encode(tok, suffix, strlen(suffix), false, &suffix_ids, &nsuf) != 0) {
        snprintf(err, errlen, "first_sentence: could not tokenize the prompt");
        goto out;
    }
    struct task_progress tp;
    s = task_session_new(ctx, L, &tp, err, errlen);
    if (!s) goto out;
    for (int i = 0; i < S; i++) {
        /* a sample runs about L forward tokens: the prompt fills the length but the answer */
        task_progress_step(&tp, (double)i / S, (double)(i + 1) / S, ty->forward, L);
        size_t start;
        if (pick_start(so, ctx, i, S, ds, &start, err, errlen) != 0) goto out;
        ty->starts[i] = (double)start;
        const char *doc = src->s + start;
        size_t avail = src->n - start;
        size_t sent_len = first_sentence_len(doc, avail);
        one_line(&ref, doc, sent_len);
        int n_target;
        if (reference_tokens(tok, suffix, suffix_ids, nsuf, ref.s, &b, &target, &n_target, err, errlen) != 0) goto out;
        int budget = n_target > max_new ? n_target : max_new;
        long limit = (long)L - budget;
        if (limit <= so->overhead) {
            snprintf(err, errlen, "first_sentence: length %d leaves no room for text (prompt %ld + answer %d tokens)",
                     L, so->overhead, budget);
            goto out;
        }
        size_t np;
        if (fit_text(tok, tpl, text_at, doc, avail, sent_len, so, limit, L, ds, &b, &prompt, &np, err, errlen) != 0)
            goto out;
        struct decode_request rq = {.prompt = prompt,
                                    .n_prompt = (int)np,
                                    .target = target + nsuf,
                                    .n_target = n_target,
                                    .max_new = max_new,
                                    .eos = tokenizer_eos(tok),
                                    .stop = sentence_complete,
                                    .stop_arg = &stop};
        struct decode_result dr = {.gen = gen};
        if (cell_plan_decode(cp, ctx, s, &rq, &dr, err, errlen) != 0) goto out;
        ty->forward += dr.forward_tokens;
        ty->prompt_total += (long)np;
        ty->prefill_tps[i] = dr.prefill_s > 0 ? (double)np / dr.prefill_s : NAN;
        ty->gen_total += dr.n_gen;
        if (score_sample(ty, i, tok, gen, dr.n_gen, &ref, dr.target_nll, n_target, &b, &ans, err, errlen) != 0)
            goto out;
        if (ctx->progress) ctx->progress(ctx->progress_arg, (double)(i + 1) / S, ty->forward);
    }
    rc = 0;
out:
    if (s) session_free(s);
    textbuf_free(&b);
    textbuf_free(&ref);
    textbuf_free(&ans);
    textbuf_free(&stop.text);
    free(prompt);
    free(suffix_ids);
    free(target);
    free(gen);
    return rc;
}

/* Means over the samples first (ROUGE-L is the headline), then the per-sample arrays and
 * what the prompts were made of and from. */
static int write_results(const struct fs_tally *ty, const char *tpl_path, const struct dataset *ds,
                         const char *method_note, struct result *out, char *err, size_t errlen) {
    const int S = ty->S;
    double mr = 0, me = 0, mn = 0;
    int nn = 0;
    for (int i = 0; i < S; i++) {
        mr += ty->rouge[i] / S;
        me += ty->exact[i] / S;
        if (!isnan(ty->rnll[i])) mn += ty->rnll[i], nn++;
    }
    struct result_sink k = {out, 0};
    sink_scalar(&k, "rouge_l", mr);
    sink_scalar(&k, "exact_match", me);
    sink_scalar(&k, "reference_nll", nn ? mn / nn : NAN);
    sink_scalar(&k, "samples", S);
    sink_scalar(&k, "prompt_tokens", (double)ty->prompt_total / S);
    sink_scalar(&k, "answer_tokens", (double)ty->gen_total / S);
    sink_scalar(&k, "tokens", (double)ty->forward);
    sink_array(&k, "rouge_l_by_sample", ty->rouge, S);
    sink_array(&k, "exact_by_sample", ty->exact, S);
    sink_array(&k, "reference_nll_by_sample", ty->rnll, S);
    sink_array(&k, "start_byte_by_sample", ty->starts, S);
    sink_array(&k, "timing_tokens_per_s", ty->prefill_tps, S);
    sink_text(&k, "prompt", prompt_label);
    sink_text(&k, "prompt_file", tpl_path);
    sink_text(&k, "examples", ty->examples.s && !ty->examples.oom ? ty->examples.s : "");
    sink_text(&k, "dataset_path", ds->path);
    sink_text(&k, "dataset_sha256", ds->sha256);
    sink_text(&k, "method_note", method_note);
    if (!k.failed && sample_log_write(&ty->samples, out) != 0) k.failed = 1;
    return sink_finish(&k, "first_sentence", err, errlen);
}

static int fs_run(const struct task_ctx *ctx, struct result *out, char *err, size_t errlen) {
    struct fs_opts o;
    if (read_opts(ctx->settings, &o, err, errlen) != 0) return -1;
    const struct tokenizer *tok = ctx->rt->model->tok;
    if (!tok) {
        snprintf(err, errlen, "first_sentence: the model has no tokenizer");
        return -1;
    }
    char tpl_path[1024];
    size_t text_at;
    char *tpl = load_prompt(tpl_path, sizeof tpl_path, &text_at, err, errlen);
    if (!tpl) return -1;
    struct dataset own;
    const struct dataset *ds = task_dataset(ctx, "tinystories", &own, err, errlen);
    if (!ds) {
        free(tpl);
        return -1;
    }
    const int S = (int)o.samples;
    struct fs_tally ty = {.S = S};
    double **arrays[] = {&ty.rouge, &ty.exact, &ty.rnll, &ty.starts, &ty.prefill_tps};
    bool oom = false;
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) oom |= !(*arrays[i] = calloc((size_t)S, sizeof(double)));
    struct fs_source so = {0};
    struct textbuf b = {0};
    struct cell_plan cp;
    cell_plan_init(&cp);
    int rc = -1;
    if (oom) snprintf(err, errlen, "first_sentence: out of memory");
    else if (prepare_source(ds, tok, tpl, text_at, ctx->length, &b, &so, err, errlen) == 0 &&
             run_samples(ctx, &o, tpl, text_at, ds, &so, &ty, &cp, err, errlen) == 0 &&
             write_results(&ty, tpl_path, ds, cp.plan.note, out, err, errlen) == 0)
        rc = 0;
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(*arrays[i]);
    textbuf_free(&ty.examples);
    sample_log_free(&ty.samples);
    textbuf_free(&so.text);
    textbuf_free(&b);
    free(tpl);
    dataset_free(&own);
    return rc;
}

static const char *const fs_limit[] = {"samples", NULL};

const struct task task_first_sentence = {
    .name = "first_sentence",
    .summary = "first-sentence retrieval (LLaMA 2 Long): ROUGE-L F1 of the recalled first sentence",
    .help =
        "LLaMA 2 Long's synthetic FIRST-SENTENCE-RETRIEVAL probe (arXiv 2309.16039, section 4.1). The paper\n"
        "publishes no prompt, text source or sample count: the prompt is ctxbench's own prompt; the paper does\n"
        "not publish one (datasets/first_sentence/prompt.txt: the document, a blank line, \"What is the first\n"
        "sentence of the text above? Answer:\").\n"
        "Each sample takes the dataset's text (documents joined by blank lines) from the first paragraph start\n"
        "(else sentence start) after a starting point; the points are spread evenly over the text and rotated\n"
        "by the seed (deterministic). A start whose first sentence has fewer than 4 or more than 60 words (a\n"
        "heading) moves on to the next one. The text\n"
        "is cut at a word boundary so the prompt fills the length minus the answer budget (max_new_tokens, or\n"
        "the reference's tokens if more).\n"
        "Scoring: greedy decoding (at most max_new_tokens, stopping once a sentence is complete), cut at the\n"
        "first sentence end ('.', '!' or '?' followed by whitespace, not after Mr./Mrs./Dr./St./... or a single\n"
        "capital initial; or a blank line). ROUGE-L F1 in [0, 1] (the paper plots 0-100) over words as Google's\n"
        "rouge-score makes them: lower-cased, every run of characters other than a-z, 0-9 (and non-ASCII bytes)\n"
        "separates words, so punctuation is ignored. exact_match = the same word sequence. reference_nll = mean\n"
        "per-token NLL of the true first sentence after the prompt, teacher forced.\n"
        "Settings: samples=4 max_new_tokens=48.\n"
        "Results: rouge_l, exact_match, reference_nll, samples, prompt_tokens, answer_tokens, tokens (forward-pass\n"
        "tokens), per-sample arrays, prompt (the label above), prompt_file, examples (first answers),\n"
        "dataset_path, dataset_sha256. Default data: tinystories (what the TinyStories models can read; use\n"
        "books for Llama-class models).",
    .default_data = "tinystories",
    .settings = fs_settings,
    .limit_settings = fs_limit,
    .check = fs_check,
    .session_tokens = task_session_is_length,
    .work = fs_work,
    .run = fs_run,
};
