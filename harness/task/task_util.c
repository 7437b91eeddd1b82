/* The plumbing every task repeats around its own measurement (see task_util.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_util.h"

int task_session_is_length(int length, const char *settings) {
    (void)settings;
    return length;
}

void cell_plan_init(struct cell_plan *cp) {
    memset(cp, 0, sizeof *cp);
    cp->seq_len = -1;
}

int cell_plan_for(struct cell_plan *cp, const struct task_ctx *ctx, int seq_len, char *err, size_t errlen) {
    if (cp->seq_len >= 0 && (!ctx->method->method->depends_on_seq_len || cp->seq_len == seq_len)) return 0;
    struct method_ctx mc = {.cfg = &ctx->rt->model->cfg, .target_len = ctx->length, .seq_len = seq_len};
    if (method_plan(ctx->method, &mc, &cp->plan, err, errlen) != 0) return -1;
    cp->fp = method_forward_plan(&cp->plan);
    cp->seq_len = seq_len;
    return 0;
}

int cell_plan_decode(struct cell_plan *cp, const struct task_ctx *ctx, struct session *s,
                     const struct decode_request *rq, struct decode_result *dr, char *err, size_t errlen) {
    if (cell_plan_for(cp, ctx, rq->n_prompt, err, errlen) != 0) return -1;
    return decode_greedy_scored(ctx->rt, s, &cp->fp, rq, dr, err, errlen);
}

static void report(const struct task_progress *tp) {
    double share = tp->done >= tp->expect ? 1 : (double)tp->done / (double)tp->expect;
    tp->ctx->progress(tp->ctx->progress_arg, tp->lo + (tp->hi - tp->lo) * share, tp->base + tp->done);
}

/* The session's hook: n more forward tokens of the current step are done. */
static void on_tokens(void *arg, int n) {
    struct task_progress *tp = arg;
    tp->done += n;
    report(tp);
}

struct session *task_session_new(const struct task_ctx *ctx, int max_tokens, struct task_progress *tp, char *err,
                                 size_t errlen) {
    struct session *s = session_new(ctx->rt->engine, max_tokens, err, errlen);
    if (s && tp && ctx->progress) {
        *tp = (struct task_progress){.ctx = ctx, .lo = 0, .hi = 1, .expect = 1};
        session_set_progress(s, on_tokens, tp);
    } else if (tp) {
        *tp = (struct task_progress){0};
    }
    return s;
}

void task_progress_step(struct task_progress *tp, double lo, double hi, long tokens_before, long expect) {
    if (!tp->ctx) return;   /* no progress callback */
    tp->lo = lo;
    tp->hi = hi;
    tp->base = tokens_before;
    tp->expect = expect > 0 ? expect : 1;
    tp->done = 0;
    report(tp);
}

const struct dataset *task_dataset(const struct task_ctx *ctx, const char *default_spec, struct dataset *own,
                                   char *err, size_t errlen) {
    memset(own, 0, sizeof *own);
    if (ctx->dataset) return ctx->dataset;
    return dataset_load(ctx->data ? ctx->data : default_spec, own, err, errlen) == 0 ? own : NULL;
}

void task_begin(const struct task_ctx *ctx, const char *fmt, ...) {
    if (!ctx->begin) return;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ctx->begin(ctx->note_arg, what);
}

void task_note(const struct task_ctx *ctx, const char *fmt, ...) {
    if (!ctx->note) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ctx->note(ctx->note_arg, line);
}

void task_work_sequences(struct task_work *w, double times, double n_prefill, double n_decode) {
    /* a length too short for the prompt does no work (the task refuses it) */
    if (!(n_prefill > 0)) n_prefill = 0;
    if (!(n_decode > 0)) n_decode = 0;
    w->prefill_tokens += times * n_prefill;
    w->decode_steps += times * n_decode;
    /* sum over i < n_prefill of (i + 1), then each step attends everything before it and itself */
    w->attn_pairs += times * (n_prefill * (n_prefill + 1) / 2 + n_decode * n_prefill + n_decode * (n_decode + 1) / 2);
}

long prompt_token_count(const struct tokenizer *tok, const struct textbuf *b) {
    if (b->oom) return -1;
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(tok, b->s, b->n, tokenizer_add_bos_default(tok), &ids, &n) != 0) return -1;
    free(ids);
    return (long)n;
}

void tokens_to_text(const struct tokenizer *tok, const int32_t *ids, int n, struct textbuf *b) {
    textbuf_clear(b);
    char piece[64];
    for (int i = 0; i < n && !b->oom; i++) {
        size_t l = tokenizer_decode_token(tok, ids[i], piece, sizeof piece);
        if (l <= sizeof piece) {
            textbuf_append(b, piece, l);
            continue;
        }
        /* a piece longer than the buffer (a user-defined token): decode it again whole */
        char *big = malloc(l);
        if (big) {
            tokenizer_decode_token(tok, ids[i], big, l);
            textbuf_append(b, big, l);
        } else {
            b->oom = true;
        }
        free(big);
    }
    if (!b->s && !b->oom) textbuf_puts(b, "");   /* no tokens: an empty string, not NULL */
}

void sink_scalar(struct result_sink *k, const char *name, double v) { k->failed |= result_scalar(k->r, name, v) != 0; }
void sink_array(struct result_sink *k, const char *name, const double *v, int n) {
    k->failed |= result_array(k->r, name, v, n, 1) != 0;
}
void sink_text(struct result_sink *k, const char *name, const char *v) { k->failed |= result_text(k->r, name, v) != 0; }

int sink_finish(struct result_sink *k, const char *who, char *err, size_t errlen) {
    if (!k->failed) return 0;
    snprintf(err, errlen, "%s: could not store the results (table full or out of memory)", who);
    result_free(k->r);
    return -1;
}
