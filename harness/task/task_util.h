/* The plumbing every task repeats around its own measurement: the session size hook,
 * the method plan kept per sequence length, prompt token counts and a result writer
 * that checks for a full table once at the end. What a task measures stays in
 * tasks/NAME.c; this file holds only what is the same in all of them. */
#ifndef CTX_TASK_UTIL_H
#define CTX_TASK_UTIL_H

#include <stddef.h>

#include "dataset.h"
#include "decode.h"
#include "method.h"
#include "result.h"
#include "task.h"
#include "textbuf.h"
#include "tokenizer.h"

/* The session_tokens hook of a task whose session holds exactly the cell's length:
 * its prompt and answer are sized to fit in it. */
int task_session_is_length(int length, const char *settings);

/* The method's plan for the sequences of one cell. It is made for the first sequence
 * and made again only when the method depends on the sequence length and that changed. */
struct cell_plan {
    struct method_plan plan;   /* plan.note goes into the result ("" before any plan) */
    struct forward_plan fp;    /* what the backend runs; points into plan */
    int seq_len;               /* the length it was made for; -1 = none yet */
};
void cell_plan_init(struct cell_plan *cp);
/* Makes cp->fp right for a sequence of seq_len tokens of this cell (method_ctx target_len =
 * the cell's length). 0, or -1 + the method's reason. */
int cell_plan_for(struct cell_plan *cp, const struct task_ctx *ctx, int seq_len, char *err, size_t errlen);

/* Greedy decoding with the reference's NLL (decode_greedy_scored) on session s, with the
 * method planned for the prompt's length: a generation task's seq_len is its prompt. */
int cell_plan_decode(struct cell_plan *cp, const struct task_ctx *ctx, struct session *s,
                     const struct decode_request *rq, struct decode_result *dr, char *err, size_t errlen);

/* Progress from inside a cell's forward passes. The task cuts the cell into steps (a
 * window, a trial) and says which share of the cell each covers and how many forward
 * tokens it should take; the session reports every chunk and decode step it runs
 * (backend session_set_progress), which moves the cell's fraction through the step's
 * share, so a 32k-token prefill shows progress while it runs, not after. */
struct task_progress {
    const struct task_ctx *ctx;
    double lo, hi;   /* the share of the cell the current step covers */
    long expect;     /* forward tokens the step should take (> 0) */
    long base;       /* forward tokens of the cell before this step */
    long done;       /* forward tokens run in this step so far */
};
/* A session of max_tokens positions for the cell (backend session_new) that reports
 * into tp when the cell has a progress callback (tp may be NULL: no reports). NULL +
 * reason when the session cannot be made. */
struct session *task_session_new(const struct task_ctx *ctx, int max_tokens, struct task_progress *tp, char *err,
                                 size_t errlen);
/* Starts a step covering [lo, hi] of the cell, expected to run `expect` forward tokens,
 * after `tokens_before` forward tokens of the cell; reports lo. */
void task_progress_step(struct task_progress *tp, double lo, double hi, long tokens_before, long expect);

/* The cell's dataset: ctx->dataset when the caller has read it, else ctx->data (or, when
 * that is NULL, default_spec) read into *own. Call dataset_free(own) afterwards in either
 * case. NULL + the dataset's one-line reason when it cannot be read. */
const struct dataset *task_dataset(const struct task_ctx *ctx, const char *default_spec, struct dataset *own,
                                   char *err, size_t errlen);

/* ctx->begin and ctx->note (printf format), when the cell has them. */
void task_begin(const struct task_ctx *ctx, const char *fmt, ...);
void task_note(const struct task_ctx *ctx, const char *fmt, ...);

/* Adds `times` sequences to w, each a prefill of n_prefill tokens from an empty session
 * followed by n_decode single-token steps, with their attention pairs (causal: token i
 * attends i + 1 keys). */
void task_work_sequences(struct task_work *w, double times, double n_prefill, double n_decode);

/* Tokens of the prompt text in b, with BOS as the model expects it; -1 when b ran out of
 * memory or the text does not tokenize. */
long prompt_token_count(const struct tokenizer *tok, const struct textbuf *b);

/* The text of n token ids, each decoded in turn (tokenizer_decode_token), into b in place
 * of what it held: how a task reads a generated answer, whole however long its pieces.
 * b->oom is set when memory ran out (the text is then incomplete). */
void tokens_to_text(const struct tokenizer *tok, const int32_t *ids, int n, struct textbuf *b);

/* Writes items into a result and remembers whether any failed (table full, out of memory,
 * name taken), so a task writes everything and checks once. */
struct result_sink {
    struct result *r;
    int failed;
};
void sink_scalar(struct result_sink *k, const char *name, double v);
void sink_array(struct result_sink *k, const char *name, const double *v, int n);
void sink_text(struct result_sink *k, const char *name, const char *v);
/* 0, or (after a failed write) -1 + "<who>: could not store the results ..." with the
 * result freed. */
int sink_finish(struct result_sink *k, const char *who, char *err, size_t errlen);

#endif
