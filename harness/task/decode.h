/* Greedy decoding after a prompt together with the teacher-forced log-likelihood of a
 * reference continuation, sharing the forward passes while the two agree. The generation
 * tasks need both: the greedy answer is what gets scored, and the reference's NLL is a
 * graded signal even for models too small to answer. */
#ifndef CTX_DECODE_H
#define CTX_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

struct decode_request {
    const int32_t *prompt;
    int n_prompt;
    const int32_t *target;     /* the reference continuation (may be NULL when n_target = 0) */
    int n_target;
    int max_new;               /* greedy tokens at most; generation also stops at EOS */
    int32_t eos;               /* -1 = none */
    /* Optional early stop after each generated token (e.g. the answer is complete). */
    bool (*stop)(void *arg, const int32_t *gen, int n_gen);
    void *stop_arg;
};

struct decode_result {
    int32_t *gen;              /* caller's buffer of max_new ids */
    int n_gen;
    double target_nll;         /* sum over the target's tokens of -log p(token | prompt, earlier targets) */
    long forward_tokens;       /* tokens run through the model */
    double prefill_s;          /* wall seconds of the prompt's forward pass (a timing: run-specific) */
};

/* Positions the session needs: n_prompt + max(n_target, max_new). Runs on `s` (reset
 * first) under plan fp. While the greedy tokens equal the target they share one pass;
 * when they part, the target is finished in this session, which is then truncated back
 * to the shared prefix for the greedy continuation. 0, or -1 + reason. */
int decode_greedy_scored(struct runtime *rt, struct session *s, const struct forward_plan *fp,
                         const struct decode_request *rq, struct decode_result *out, char *err, size_t errlen);

/* The id of the largest logit (the first one on ties): the greedy choice. */
int32_t decode_argmax(const float *logits, int n_vocab);

/* -log softmax(logits)[id] in double precision. */
double decode_nll(const float *logits, int n_vocab, int32_t id);

#endif
