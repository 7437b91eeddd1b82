/* The engine: a model on a backend, and sessions (a KV cache on the device) that run
 * tokens through the model. The forward pass is written once here, as a flat list of
 * backend kernel calls per layer; methods and tasks talk to this interface and a
 * struct forward_plan, and never learn which backend runs. */
#ifndef CTX_ENGINE_H
#define CTX_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "forward_plan.h"

struct model;
struct engine;
struct session;

/* Where a session's time went, accumulated over its eval calls (reset with the session).
 * On an asynchronous backend t_attn and t_matmul count the time to queue the work. */
struct eval_stats {
    double t_total, t_attn, t_matmul;  /* seconds; t_matmul includes the vocabulary projection */
    long tokens;
};

/* Errors: every operation that can fail returns NULL or -1 with a one-line reason in
 * err, and says below what state it leaves behind. No failure leaves a session or an
 * engine half changed: each is either unchanged or was never created. */

/* The model on backend `be` with its parameter string (see backend.h), its sessions'
 * KV caches of types kv (NULL: f32 for both). NULL + reason. A cache type the model's
 * heads cannot hold (q8_0 with head_dim not a multiple of 32) is not an error here:
 * engine_cannot_run says why for every plan, and session_new refuses. */
struct engine *engine_create(const struct backend_ops *be, const struct model *m, const char *params,
                             const struct kv_types *kv, char *err, size_t errlen);
struct kv_types engine_kv_types(const struct engine *e);
void engine_destroy(struct engine *e);
const struct backend_ops *engine_backend(const struct engine *e);
void engine_device(const struct engine *e, struct device_info *out);
/* NULL if this engine can run the plan with its cache types, else why not. */
const char *engine_cannot_run(const struct engine *e, const struct forward_plan *plan);
/* Bytes of device memory a session of n tokens needs beyond the weights under `plan`
 * (NULL: a plain plan), with the engine's cache types, for "does it fit" checks before
 * any work. */
size_t engine_session_bytes(const struct engine *e, int n_tokens, const struct forward_plan *plan);

/* NULL if the largest buffer a session of n tokens needs (its KV cache) fits the device's
 * largest allowed buffer; otherwise why not (written into why). The total is checked
 * against engine_session_bytes. */
const char *engine_session_too_big(const struct engine *e, int n_tokens, char *why, size_t cap);

/* A KV cache for up to max_tokens positions. On error: NULL, the engine unchanged. */
struct session *session_new(struct engine *e, int max_tokens, char *err, size_t errlen);
void session_free(struct session *s);
void session_reset(struct session *s);      /* forget all tokens; cannot fail */
/* Forget every token after the first n: decoding can branch from a shared prefix
 * without re-running it. n outside [0, n_past) changes nothing. */
void session_truncate(struct session *s, int n);
int session_n_past(const struct session *s);
void session_stats(const struct session *s, struct eval_stats *out);
/* For benchmarks only: the session as if n tokens at positions 0..n-1 were cached (an empty
 * session before), their keys and values in every layer small pseudo-random numbers stored
 * in the cache's types, not a model's. A following eval then costs what it costs at depth
 * n (attention over n cached keys) without computing the prefix. Its results mean nothing.
 * 0, or -1 + reason (n outside [0, max_tokens], a session already used). */
int session_fill_synthetic(struct session *s, int n, char *err, size_t errlen);
/* From now on each eval calls fn(arg, n) after every chunk of its work, n = the tokens
 * that chunk ran, so a long eval shows progress; fn = NULL stops it. fn must not call
 * back into the session. */
void session_set_progress(struct session *s, void (*fn)(void *arg, int n_tokens), void *arg);
/* Appends n tokens at positions pos[i] (NULL: n_past + i) and runs them through the
 * model under `plan`.
 * targets (may be NULL): for each i, the id whose log-probability after token i is
 *   written to logprob[i] (target < 0: logprob[i] = 0, not scored).
 * last_logits (may be NULL): n_vocab logits after the last token.
 * Returns 0, or -1 with a reason in err. Every input (token and target ids, positions
 * >= 0, room in the session, the plan) is checked before anything is computed. After
 * an error the session is unchanged (the same n_past, cached tokens, SelfExtend state
 * and stats) and may be used as if the call had not been made; only the contents of
 * logprob and last_logits are unspecified. */
int session_eval(struct session *s, const int32_t *tokens, const int32_t *pos, int n,
                 const struct forward_plan *plan, const int32_t *targets, float *logprob, float *last_logits,
                 char *err, size_t errlen);

#endif
