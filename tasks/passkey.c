/* Pass-key retrieval (the Landmark Attention prompt that YaRN, LongLoRA and SelfExtend
 * use): a 5-digit key hidden in repeated filler, at a grid of depths, each depth measured
 * in tokens. The greedy answer is scored by its digits; the key's teacher-forced NLL gives
 * a graded signal for models too small to answer. The prompt texts are data
 * (datasets/passkey/VARIANT.txt), not code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "decode.h"
#include "scoring.h"
#include "settings.h"
#include "task.h"
#include "task_util.h"
#include "textbuf.h"
#include "tokenizer.h"

static const char *const variants[] = {"yarn", "longlora", "selfextend", NULL};
/* In struct pk_opts order (read_opts copies them by index). */
static const struct task_setting pk_settings[] = {
    {"variant", TASK_SETTING_CHOICE, 0, 0, 0, variants, NULL, "prompt texts: datasets/passkey/VARIANT.txt"},
    {"depths", TASK_SETTING_INT, 10, 1, 101, NULL, NULL, "depths evenly spaced over [0, 1] (one: 0.5)"},
    {"trials", TASK_SETTING_INT, 1, 1, 1000, NULL, NULL, "keys per depth"},
    {"digits", TASK_SETTING_INT, 5, 1, 9, NULL, NULL, "digits of each key"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};
#define MAX_SENTENCES 32
#define EXTRA_NEW_TOKENS 4   /* answer budget beyond the key's digits: a space, punctuation */

struct pk_opts {
    int variant;
    long depths, trials, digits;
};

static int read_opts(const char *text, struct pk_opts *o, char *err, size_t errlen) {
    long v[4];
    if (task_settings_read(pk_settings, "passkey", text, v, err, errlen) != 0) return -1;
    o->variant = (int)v[0];
    o->depths = v[1];
    o->trials = v[2];
    o->digits = v[3];
    return 0;
}

static int pk_check(const char *settings, char *err, size_t errlen) {
    struct pk_opts o;
    return read_opts(settings, &o, err, errlen);
}

/* Each trial: a prompt of about L - max_new tokens, then at most max_new decode steps.
 * Tokenizing: the filler count is searched once per cell (about four prompts) and each
 * trial places its key with about four more. */
static void pk_work(int length, const char *settings, struct task_work *w) {
    struct pk_opts o;
    char err[256];
    if (read_opts(settings, &o, err, sizeof err) != 0) return;
    double trials = (double)o.depths * o.trials, max_new = (double)o.digits + EXTRA_NEW_TOKENS;
    task_work_sequences(w, trials, length - max_new, max_new);
    w->tokenized += 4.0 * length * (1 + trials);
}

/* ---- the prompt template ---- */

struct pk_template {
    char instruction[1024], filler[1024], filler_join[64], join[64], key_line[512], question[512];
    char sentence[MAX_SENTENCES][256];
    int n_sentences;
    char path[1024];
};

/* value with \n, \s, \\ expanded into out; false if it does not fit or has a bad escape */
static bool unescape(const char *v, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\\') {
            if (++i >= n) return false;
            c = v[i] == 'n' ? '\n' : v[i] == 's' ? ' ' : v[i] == '\\' ? '\\' : 0;
            if (!c) return false;
        }
        if (k + 1 >= cap) return false;
        out[k++] = c;
    }
    out[k] = 0;
    return true;
}

static int load_template(const char *path, struct pk_template *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s", path);
    size_t len;
    char *text = dataset_read_text(path, &len, err, errlen);
    if (!text) return -1;
    struct {
        const char *name;
        char *dst;
        size_t cap;
        bool seen;
    } field[] = {{"instruction", t->instruction, sizeof t->instruction, 0},
                 {"filler", t->filler, sizeof t->filler, 0},
                 {"filler_join", t->filler_join, sizeof t->filler_join, 0},
                 {"join", t->join, sizeof t->join, 0},
                 {"key_line", t->key_line, sizeof t->key_line, 0},
                 {"question", t->question, sizeof t->question, 0}};
    const int n_fields = (int)(sizeof field / sizeof field[0]);
    int rc = -1, line_no = 0;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        line_no++;
        char *line = p;
        p = eol ? eol + 1 : p + n;
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        if (n == 0 || line[0] == '#') continue;
        char *eq = memchr(line, '=', n);
        if (!eq) {
            snprintf(err, errlen, "%s line %d: expected name = value", path, line_no);
            goto out;
        }
        char *ke = eq;
        while (ke > line && ke[-1] == ' ') ke--;
        char *v = eq + 1;
        if (v < line + n && *v == ' ') v++;   /* one space after '=' belongs to the syntax */
        int f = 0;
        while (f < n_fields && !(strlen(field[f].name) == (size_t)(ke - line) &&
                                 memcmp(field[f].name, line, (size_t)(ke - line)) == 0))
            f++;
        if (f == n_fields) {
            snprintf(err, errlen, "%s line %d: unknown name '%.*s' (valid: instruction, filler, filler_join, join, "
                     "key_line, question)", path, line_no, (int)(ke - line), line);
            goto out;
        }
        if (!unescape(v, (size_t)(line + n - v), field[f].dst, field[f].cap)) {
            snprintf(err, errlen, "%s line %d: value of %s is too long or has a bad escape (\\n \\s \\\\)", path,
                     line_no, field[f].name);
            goto out;
        }
        field[f].seen = true;
    }
    for (int f = 0; f < n_fields; f++)
        if (!field[f].seen) {
            snprintf(err, errlen, "%s: no %s", path, field[f].name);
            goto out;
        }
    if (!strstr(t->key_line, "{key}")) {
        snprintf(err, errlen, "%s: key_line has no {key}", path);
        goto out;
    }
    /* the filler's sentences: split after ". " (and "! ", "? ") */
    const char *s = t->filler;
    while (*s) {
        const char *e = s;
        while (*e && !((*e == '.' || *e == '!' || *e == '?') && e[1] == ' ')) e++;
        if (*e) e++;
        size_t n = (size_t)(e - s);
        if (t->n_sentences >= MAX_SENTENCES || n >= sizeof t->sentence[0]) {
            snprintf(err, errlen, "%s: filler has more than %d sentences or too long a sentence", path, MAX_SENTENCES);
            goto out;
        }
        memcpy(t->sentence[t->n_sentences], s, n);
        t->sentence[t->n_sentences++][n] = 0;
        s = e;
        while (*s == ' ') s++;
    }
    if (t->n_sentences == 0) {
        snprintf(err, errlen, "%s: empty filler", path);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* The first n sentences of the endless filler: sentences joined by spaces, whole
 * repetitions of the filler by filler_join. */
static void put_filler(struct textbuf *b, const struct pk_template *t, long n) {
    for (long i = 0; i < n; i++) {
        if (i > 0) textbuf_puts(b, i % t->n_sentences == 0 ? t->filler_join : " ");
        textbuf_puts(b, t->sentence[i % t->n_sentences]);
    }
}

/* instruction, filler(a), key line, filler(b), question, joined by join. With b < 0 the
 * text stops after the join that follows filler(a): what comes before the key line. */
static void build_prompt(struct textbuf *b, const struct pk_template *t, long a, long after, const char *key) {
    textbuf_clear(b);
    textbuf_puts(b, t->instruction);
    textbuf_puts(b, t->join);
    put_filler(b, t, a);
    textbuf_puts(b, t->join);
    if (after < 0) return;
    for (const char *p = t->key_line; *p;) {
        const char *k = strstr(p, "{key}");
        if (!k) {
            textbuf_puts(b, p);
            break;
        }
        textbuf_append(b, p, (size_t)(k - p));
        textbuf_puts(b, key);
        p = k + 5;
    }
    textbuf_puts(b, t->join);
    put_filler(b, t, after);
    textbuf_puts(b, t->join);
    textbuf_puts(b, t->question);
}

/* Early stop: a run of digits has ended (a non-digit after it) in the decoded answer. */
struct digit_stop {
    const struct tokenizer *tok;
    struct textbuf text;
};
static bool answer_complete(void *arg, const int32_t *gen, int n) {
    struct digit_stop *d = arg;
    tokens_to_text(d->tok, gen, n, &d->text);
    if (d->text.oom) return true;   /* cannot be read: stop, the scoring reports it */
    const char *p = d->text.s;
    while (*p && !(*p >= '0' && *p <= '9')) p++;
    if (!*p) return false;
    while (*p >= '0' && *p <= '9') p++;
    return *p != 0;
}

/* How much filler fills a prompt of at most P tokens, found once per cell with a key of
 * the right width (every key then has the same digits count). */
struct filler_fit {
    long sentences;        /* N: filler sentences in every prompt */
    double per_sentence;   /* tokens a filler sentence adds, measured over 64 of them */
    long before0;          /* prompt tokens before the key line with no filler before it */
};

/* The most filler sentences whose prompt fits in P tokens: a first guess from the
 * measured tokens per sentence, then down until it fits and up while the next one fits,
 * since tokenization makes the count only roughly linear in the sentences. */
static int fit_filler(const struct pk_template *t, const struct tokenizer *tok, int digits, int L, long P,
                      struct textbuf *b, struct filler_fit *f, char *err, size_t errlen) {
    char key0[16];
    memset(key0, '5', (size_t)digits);
    key0[digits] = 0;
    build_prompt(b, t, 0, 0, key0);
    long f0 = prompt_token_count(tok, b);
    if (f0 < 0 || f0 > P) {
        snprintf(err, errlen, "passkey: length %d leaves %ld prompt tokens; the prompt without filler needs %ld", L, P,
                 f0);
        return -1;
    }
    build_prompt(b, t, 32, 32, key0);
    long f64 = prompt_token_count(tok, b);
    double per_sentence = f64 > f0 ? (double)(f64 - f0) / 64.0 : 1.0;
    long N = (long)((double)(P - f0) / per_sentence);
    for (int guard = 0; guard < 200 && N > 0; guard++) {   /* down until it fits */
        build_prompt(b, t, N / 2, N - N / 2, key0);
        long n = prompt_token_count(tok, b);
        if (n < 0) goto tok_fail;
        if (n <= P) break;
        long over = (long)((double)(n - P) / per_sentence);
        N -= over > 1 ? over : 1;
    }
    if (N < 0) N = 0;
    for (int guard = 0; guard < 200; guard++) {   /* up while the next one fits */
        build_prompt(b, t, (N + 1) / 2, N + 1 - (N + 1) / 2, key0);
        long n = prompt_token_count(tok, b);
        if (n < 0) goto tok_fail;
        if (n > P) break;
        N++;
    }
    build_prompt(b, t, 0, -1, key0);
    *f = (struct filler_fit){.sentences = N, .per_sentence = per_sentence, .before0 = prompt_token_count(tok, b)};
    return 0;
tok_fail:
    snprintf(err, errlen, "passkey: could not tokenize the prompt");
    return -1;
}

/* The key of trial tr at depth index di: it depends on (seed, depth index, trial) only,
 * so every length and method sees the same keys. */
static void trial_key(uint64_t seed, int di, int tr, int digits, char key[16]) {
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + (uint64_t)di * 1000003u + (uint64_t)tr;
    long lo = 1;
    for (int k = 1; k < digits; k++) lo *= 10;
    snprintf(key, 16, "%ld", score_rng_range(&st, digits == 1 ? 0 : lo, lo * 10 - 1));
}

/* One trial's prompt ids (*prompt, *n, BOS as the model expects it) with the key line
 * where the tokens before it are about depth x the prompt's tokens, placed by whole
 * filler sentences (a guess and one correction step); *before is the tokens that came
 * before it. A prompt over P tokens drops filler after the key, then before it. */
static int place_key(const struct pk_template *t, const struct tokenizer *tok, const struct filler_fit *f,
                     double depth, const char *key, int L, long P, struct textbuf *b, int32_t **prompt, size_t *n,
                     long *before, char *err, size_t errlen) {
    const long N = f->sentences;
    build_prompt(b, t, N / 2, N - N / 2, key);
    long total = prompt_token_count(tok, b);
    long a = lround((depth * total - f->before0) / f->per_sentence);
    a = a < 0 ? 0 : a > N ? N : a;
    build_prompt(b, t, a, -1, key);
    long at = prompt_token_count(tok, b);
    a += lround((depth * total - at) / f->per_sentence);   /* one correction step */
    a = a < 0 ? 0 : a > N ? N : a;
    long after = N - a;
    int32_t *ids = NULL;
    for (;;) {
        build_prompt(b, t, a, after, key);
        free(ids);
        ids = NULL;
        if (b->oom || tokenizer_encode(tok, b->s, b->n, tokenizer_add_bos_default(tok), &ids, n) != 0) {
            snprintf(err, errlen, "passkey: could not tokenize the prompt");
            return -1;
        }
        if ((long)*n <= P || (a == 0 && after == 0)) break;
        if (after > 0) after--;
        else a--;
    }
    if ((long)*n > P) {
        snprintf(err, errlen, "passkey: the prompt needs %zu tokens, more than the %ld that length %d leaves", *n, P,
                 L);
        free(ids);
        return -1;
    }
    *prompt = ids;
    build_prompt(b, t, a, -1, key);
    *before = prompt_token_count(tok, b);
    return 0;
}

/* The key's tokens as they follow the question (*answer holds question + key; the key's
 * are the *n_ans after the question's nq): tokenized together, since a tokenizer may
 * join a space and a digit differently than the key alone. */
static int answer_tokens(const struct pk_template *t, const struct tokenizer *tok, const int32_t *q_ids, size_t nq,
                         const char *key, int max_new, struct textbuf *b, int32_t **answer, int *n_ans, char *err,
                         size_t errlen) {
    textbuf_clear(b);
    textbuf_puts(b, t->question);
    if (b->n && b->s[b->n - 1] != ' ') textbuf_puts(b, " ");
    textbuf_puts(b, key);
    size_t nqa;
    free(*answer);
    *answer = NULL;
    if (b->oom || tokenizer_encode(tok, b->s, b->n, false, answer, &nqa) != 0) {
        snprintf(err, errlen, "passkey: could not tokenize the prompt");
        return -1;
    }
    if (nqa <= nq || memcmp(*answer, q_ids, nq * sizeof *q_ids) != 0) {
        snprintf(err, errlen, "passkey: the tokenizer merges the question's end with the key; cannot "
                 "separate the answer's tokens");
        return -1;
    }
    *n_ans = (int)(nqa - nq);
    if (*n_ans > max_new) {
        snprintf(err, errlen, "passkey: the key takes %d tokens, more than the %d-token answer budget", *n_ans,
                 max_new);
        return -1;
    }
    return 0;
}

/* The cell's scores: per depth (means over its trials) and over all trials. */
struct pk_tally {
    int D, K;
    double *acc, *dacc, *tacc, *knll, *dact, *dval;   /* per depth */
    int n_exact;
    double sum_dacc, sum_tacc, sum_knll;
    long forward, prompt_tokens;
    double *prefill_tps;      /* per trial (depth-major): prompt tokens / seconds of its forward pass */
    struct textbuf answers;   /* "depth:key->digits" per trial */
    struct sample_log samples;   /* per trial: key, the whole answer, exact */
};

/* Scores one trial's greedy answer (its text in b) against the key: exact digits, digits
 * matched in place, the key's token ids at the start, and the key's teacher-forced NLL. */
static int score_trial(struct pk_tally *ty, int di, int tr, double depth, const char *key, const struct tokenizer *tok,
                       const int32_t *gen, const struct decode_result *dr, const int32_t *key_ids, int n_ans,
                       struct textbuf *b, char *err, size_t errlen) {
    const int K = ty->K;
    char digits[64];
    tokens_to_text(tok, gen, dr->n_gen, b);
    if (b->oom) {
        snprintf(err, errlen, "passkey: out of memory");
        return -1;
    }
    first_digits(b->s, digits, sizeof digits);
    bool exact = strcmp(digits, key) == 0;
    double da = digit_accuracy(digits, key);
    bool tok_match = dr->n_gen >= n_ans && memcmp(gen, key_ids, (size_t)n_ans * sizeof *gen) == 0;
    double nll = dr->target_nll / n_ans;
    ty->acc[di] += exact / (double)K;
    ty->dacc[di] += da / K;
    ty->tacc[di] += tok_match / (double)K;
    ty->knll[di] += nll / K;
    ty->n_exact += exact;
    ty->sum_dacc += da;
    ty->sum_tacc += tok_match;
    ty->sum_knll += nll;
    /* a short record of each answer, digits only so the text stays one line */
    char rec[96];
    snprintf(rec, sizeof rec, "%s%.2f:%s->%s", ty->answers.n ? " " : "", depth, key, digits[0] ? digits : "-");
    textbuf_puts(&ty->answers, rec);
    char id[64];
    snprintf(id, sizeof id, "depth=%.2f,trial=%d", depth, tr);
    sample_log_add(&ty->samples, id, key, b->s, exact);
    return 0;
}

/* Means over all trials first (accuracy is the headline), then the per-depth arrays and
 * what the prompts were made of. */
static int write_results(const struct pk_tally *ty, const struct pk_opts *o, const struct pk_template *t,
                         const struct filler_fit *f, int max_new, const char *method_note, struct result *out,
                         char *err, size_t errlen) {
    const int D = ty->D, total_trials = ty->D * ty->K;
    struct result_sink k = {out, 0};
    sink_scalar(&k, "accuracy", (double)ty->n_exact / total_trials);
    sink_scalar(&k, "digit_accuracy", ty->sum_dacc / total_trials);
    sink_scalar(&k, "token_accuracy", ty->sum_tacc / total_trials);
    sink_scalar(&k, "key_nll", ty->sum_knll / total_trials);
    sink_scalar(&k, "trials", total_trials);
    sink_scalar(&k, "prompt_tokens", (double)ty->prompt_tokens / total_trials);
    sink_scalar(&k, "filler_sentences", (double)f->sentences);
    sink_scalar(&k, "max_new_tokens", max_new);
    sink_scalar(&k, "tokens", (double)ty->forward);
    sink_array(&k, "depth", ty->dval, D);
    sink_array(&k, "depth_actual", ty->dact, D);
    sink_array(&k, "accuracy_by_depth", ty->acc, D);
    sink_array(&k, "digit_accuracy_by_depth", ty->dacc, D);
    sink_array(&k, "token_accuracy_by_depth", ty->tacc, D);
    sink_array(&k, "key_nll_by_depth", ty->knll, D);
    sink_array(&k, "timing_tokens_per_s", ty->prefill_tps, total_trials);
    sink_text(&k, "variant", variants[o->variant]);
    sink_text(&k, "prompt_file", t->path);
    sink_text(&k, "answers", ty->answers.oom || !ty->answers.s ? "" : ty->answers.s);
    sink_text(&k, "method_note", method_note);
    if (!k.failed && sample_log_write(&ty->samples, out) != 0) k.failed = 1;
    return sink_finish(&k, "passkey", err, errlen);
}

/* Every trial: a prompt of its key at its depth, greedy decoding with the key as the
 * teacher-forced reference, and its scores. */
static int run_trials(const struct task_ctx *ctx, const struct pk_opts *o, const struct pk_template *t,
                      const struct filler_fit *f, struct pk_tally *ty, struct cell_plan *cp, char *err,
                      size_t errlen) {
    const struct tokenizer *tok = ctx->rt->model->tok;
    const int L = ctx->length, D = ty->D, K = ty->K;
    const int max_new = (int)o->digits + EXTRA_NEW_TOKENS;
    const long P = (long)L - max_new;
    struct textbuf b = {0};
    struct digit_stop stop = {tok, {0}};
    struct session *s = NULL;
    int32_t *prompt = NULL, *answer = NULL, *q_ids = NULL, *gen = malloc((size_t)max_new * sizeof *gen);
    int rc = -1;
    size_t nq;
    if (!gen) {
        snprintf(err, errlen, "passkey: out of memory");
        goto out;
    }
    /* The question's tokens, to find the answer's tokens after it. */
    if (tokenizer_encode(tok, t->question, strlen(t->question), false, &q_ids, &nq) != 0) {
        snprintf(err, errlen, "passkey: could not tokenize the prompt");
        goto out;
    }
    struct task_progress tp;
    s = task_session_new(ctx, L, &tp, err, errlen);
    if (!s) goto out;
    for (int di = 0; di < D; di++) {
        double depth = D == 1 ? 0.5 : (double)di / (D - 1);
        ty->dval[di] = depth;
        for (int tr = 0; tr < K; tr++) {
            /* a trial runs about L forward tokens: the prompt fills the length but the answer */
            task_progress_step(&tp, (double)(di * K + tr) / (D * K), (double)(di * K + tr + 1) / (D * K), ty->forward,
                               L);
            char key[16];
            trial_key(ctx->seed, di, tr, (int)o->digits, key);
            size_t n;
            long before;
            free(prompt);
            prompt = NULL;
            if (place_key(t, tok, f, depth, key, L, P, &b, &prompt, &n, &before, err, errlen) != 0) goto out;
            ty->dact[di] += (double)before / (double)n / K;
            int n_ans;
            if (answer_tokens(t, tok, q_ids, nq, key, max_new, &b, &answer, &n_ans, err, errlen) != 0) goto out;
            struct decode_request rq = {.prompt = prompt,
                                        .n_prompt = (int)n,
                                        .target = answer + nq,
                                        .n_target = n_ans,
                                        .max_new = max_new,
                                        .eos = tokenizer_eos(tok),
                                        .stop = answer_complete,
                                        .stop_arg = &stop};
            struct decode_result dr = {.gen = gen};
            if (cell_plan_decode(cp, ctx, s, &rq, &dr, err, errlen) != 0) goto out;
            ty->forward += dr.forward_tokens;
            ty->prompt_tokens += (long)n;
            ty->prefill_tps[di * K + tr] = dr.prefill_s > 0 ? (double)n / dr.prefill_s : NAN;
            if (score_trial(ty, di, tr, depth, key, tok, gen, &dr, answer + nq, n_ans, &b, err, errlen) != 0) goto out;
            if (ctx->progress) ctx->progress(ctx->progress_arg, (double)(di * K + tr + 1) / (D * K), ty->forward);
        }
    }
    rc = 0;
out:
    if (s) session_free(s);
    textbuf_free(&b);
    textbuf_free(&stop.text);
    free(prompt);
    free(answer);
    free(q_ids);
    free(gen);
    return rc;
}

static int pk_run(const struct task_ctx *ctx, struct result *out, char *err, size_t errlen) {
    struct pk_opts o;
    if (read_opts(ctx->settings, &o, err, errlen) != 0) return -1;
    const struct tokenizer *tok = ctx->rt->model->tok;
    if (!tok) {
        snprintf(err, errlen, "passkey: the model has no tokenizer");
        return -1;
    }
    char rel[64], path[1024];
    snprintf(rel, sizeof rel, "passkey/%s.txt", variants[o.variant]);
    if (dataset_repo_file(rel, path, sizeof path, err, errlen) != 0) return -1;
    struct pk_template *t = malloc(sizeof *t);
    if (!t) {
        snprintf(err, errlen, "passkey: out of memory");
        return -1;
    }
    if (load_template(path, t, err, errlen) != 0) {
        free(t);
        return -1;
    }
    const int D = (int)o.depths, max_new = (int)o.digits + EXTRA_NEW_TOKENS;
    struct pk_tally ty = {.D = D, .K = (int)o.trials};
    double **arrays[] = {&ty.acc, &ty.dacc, &ty.tacc, &ty.knll, &ty.dact, &ty.dval};
    bool oom = false;
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) oom |= !(*arrays[i] = calloc((size_t)D, sizeof(double)));
    oom |= !(ty.prefill_tps = calloc((size_t)D * (size_t)ty.K, sizeof(double)));
    struct textbuf b = {0};
    struct filler_fit f;
    struct cell_plan cp;
    cell_plan_init(&cp);
    int rc = -1;
    if (oom) snprintf(err, errlen, "passkey: out of memory");
    else if (fit_filler(t, tok, (int)o.digits, ctx->length, (long)ctx->length - max_new, &b, &f, err, errlen) == 0 &&
             run_trials(ctx, &o, t, &f, &ty, &cp, err, errlen) == 0 &&
             write_results(&ty, &o, t, &f, max_new, cp.plan.note, out, err, errlen) == 0)
        rc = 0;
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(*arrays[i]);
    free(ty.prefill_tps);
    textbuf_free(&ty.answers);
    sample_log_free(&ty.samples);
    textbuf_free(&b);
    free(t);
    return rc;
}

static const char *const pk_limit[] = {"depths", "trials", NULL};

const struct task task_passkey = {
    .name = "passkey",
    .summary = "pass-key retrieval over a depth grid (Landmark/YaRN/LongLoRA/SelfExtend prompt), exact digits + key NLL",
    .help =
        "The Landmark Attention pass-key prompt: an instruction, filler (\"The grass is green. The sky is blue.\n"
        "...\") repeated to fill the cell's length, the line \"The pass key is NNNNN. Remember it. NNNNN is the\n"
        "pass key.\" at a chosen depth, and \"What is the pass key? The pass key is\". The texts are data in\n"
        "datasets/passkey/VARIANT.txt: yarn (default; jquesnelle/yarn eval/passkey.py), longlora (same words,\n"
        "LongLoRA passkey_retrivial.py), selfextend (datamllab/LongLM: \"memorize it\", filler lines joined by\n"
        "newlines, a trailing space after the question).\n"
        "Grid: `depths` depths evenly spaced over [0, 1] (one depth: 0.5); depth = the fraction of the prompt's\n"
        "tokens that come before the key line (placed by whole filler sentences; depth_actual reports what was\n"
        "reached). `trials` keys per depth, each `digits` digits, drawn from (seed, depth index, trial), so every\n"
        "method and length sees the same keys. The prompt fills the length minus the answer budget\n"
        "(digits + 4 tokens).\n"
        "Scoring: greedy decoding (at most digits + 4 tokens, stopping once a run of digits has ended); exact =\n"
        "the first run of digits in the answer equals the key; digit accuracy = key digits matched position by\n"
        "position; token accuracy = the answer starts with the key's token ids (LongLoRA's criterion); key NLL\n"
        "= mean per-token NLL of the key's tokens after the question, teacher forced (graded even when a model\n"
        "cannot answer).\n"
        "Settings: variant=yarn depths=10 trials=1 digits=5 (raise trials for tighter estimates).\n"
        "Results: accuracy, digit_accuracy, token_accuracy, key_nll (means over all trials), per-depth arrays\n"
        "accuracy_by_depth, digit_accuracy_by_depth, token_accuracy_by_depth, key_nll_by_depth with depth and\n"
        "depth_actual; prompt_tokens, filler_sentences, tokens (forward-pass tokens), variant, prompt_file,\n"
        "answers (depth:key->digits for each trial). No dataset is read.",
    .default_data = NULL,
    .settings = pk_settings,
    .limit_settings = pk_limit,
    .check = pk_check,
    .session_tokens = task_session_is_length,
    .work = pk_work,
    .run = pk_run,
};
