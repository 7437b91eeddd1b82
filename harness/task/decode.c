/* Greedy decoding with a teacher-forced reference, sharing passes while they agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "host.h"

double decode_nll(const float *logits, int n_vocab, int32_t id) {
    double mx = logits[0];
    for (int v = 1; v < n_vocab; v++)
        if (logits[v] > mx) mx = logits[v];
    double sum = 0;
    for (int v = 0; v < n_vocab; v++) sum += exp((double)logits[v] - mx);
    return -(((double)logits[id] - mx) - log(sum));
}

int32_t decode_argmax(const float *logits, int n_vocab) {
    int32_t best = 0;
    for (int32_t v = 1; v < n_vocab; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

int decode_greedy_scored(struct runtime *rt, struct session *s, const struct forward_plan *fp,
                         const struct decode_request *rq, struct decode_result *out, char *err, size_t errlen) {
    const int n_vocab = rt->model->cfg.n_vocab;
    out->n_gen = 0;
    out->target_nll = 0;
    out->forward_tokens = 0;
    out->prefill_s = 0;
    if (rq->n_prompt < 1 || rq->n_target < 0 || rq->max_new < 0) {
        snprintf(err, errlen, "decode: empty prompt or negative counts");
        return -1;
    }
    for (int i = 0; i < rq->n_target; i++)
        if (rq->target[i] < 0 || rq->target[i] >= n_vocab) {
            snprintf(err, errlen, "decode: target id %d outside the vocabulary", rq->target[i]);
            return -1;
        }
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    float *logprob = malloc(((size_t)rq->n_target + 1) * sizeof *logprob);
    int rc = -1;
    if (!logits || !logprob) {
        snprintf(err, errlen, "decode: out of memory");
        goto out;
    }
    session_reset(s);
    double t0 = host_monotonic_s();
    if (session_eval(s, rq->prompt, NULL, rq->n_prompt, fp, NULL, NULL, logits, err, errlen) != 0) goto out;
    out->prefill_s = host_monotonic_s() - t0;
    out->forward_tokens += rq->n_prompt;
    bool stopped = rq->max_new == 0;
    /* Shared path: the context is prompt + target[0..i) = prompt + gen[0..i). */
    for (int i = 0;; i++) {
        if (i < rq->n_target) out->target_nll += decode_nll(logits, n_vocab, rq->target[i]);
        if (!stopped) {
            int32_t g = decode_argmax(logits, n_vocab);
            out->gen[out->n_gen++] = g;
            stopped = g == rq->eos || out->n_gen >= rq->max_new ||
                      (rq->stop && rq->stop(rq->stop_arg, out->gen, out->n_gen));
        }
        bool need_teacher = i + 1 < rq->n_target, need_gen = !stopped;
        int32_t next;
        if (need_teacher && need_gen) {
            if (out->gen[out->n_gen - 1] != rq->target[i]) {
                /* They part here. Finish the target in this session: feed target[i..n-1)
                 * with targets target[i+1..n). */
                int n = rq->n_target - 1 - i;
                if (session_eval(s, rq->target + i, NULL, n, fp, rq->target + i + 1, logprob, NULL, err, errlen) != 0)
                    goto out;
                out->forward_tokens += n;
                for (int k = 0; k < n; k++) out->target_nll -= logprob[k];
                /* Then the greedy continuation: rewind to the shared prefix prompt + gen[0..i)
                 * and go on from gen[i]. */
                session_truncate(s, rq->n_prompt + i);
                while (!stopped) {
                    int32_t last = out->gen[out->n_gen - 1];
                    if (session_eval(s, &last, NULL, 1, fp, NULL, NULL, logits, err, errlen) != 0) goto out;
                    out->forward_tokens++;
                    int32_t g = decode_argmax(logits, n_vocab);
                    out->gen[out->n_gen++] = g;
                    stopped = g == rq->eos || out->n_gen >= rq->max_new ||
                              (rq->stop && rq->stop(rq->stop_arg, out->gen, out->n_gen));
                }
                break;
            }
            next = rq->target[i];
        } else if (need_teacher) next = rq->target[i];
        else if (need_gen) next = out->gen[out->n_gen - 1];
        else break;
        if (session_eval(s, &next, NULL, 1, fp, NULL, NULL, logits, err, errlen) != 0) goto out;
        out->forward_tokens++;
    }
    rc = 0;
out:
    free(logits);
    free(logprob);
    return rc;
}
