/* The seam between what is computed and where. Methods and tasks talk to a
 * `struct engine` and a `struct forward_plan`; they never learn which backend runs. */
#ifndef CTX_BACKEND_H
#define CTX_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct model;

/* What an extension method decides for one forward pass. The kernels know nothing
 * else about methods. */
struct forward_plan {
    const float *inv_freq;   /* n_rot/2 inverse frequencies */
    float mscale;            /* multiplies cos and sin (logits get mscale^2) */
    int swa_window;          /* >0: query sees keys with 0 <= q_pos - k_pos < window */
    int se_group;            /* SelfExtend group size G, 0 = off */
    int se_window;           /* SelfExtend neighbour window W */
};

struct engine_opts {
    int n_threads;
    int tile_q, tile_k;      /* attention tiles, 0 = defaults */
    size_t f32_budget;       /* bytes of dequantized F32 weights to keep; 0 = automatic */
};

struct engine;
struct session;

/* Where a session's time went, accumulated over its eval calls (reset with the session). */
struct eval_stats {
    double t_total, t_attn, t_matmul;  /* seconds */
    long tokens;
};

/* Errors: every operation that can fail returns NULL or -1 with a one-line reason in
 * err, and says below what state it leaves behind. No failure leaves a session or an
 * engine half changed: each is either unchanged or was never created. */
struct backend_ops {
    const char *name;
    /* An engine for the model (weights prepared, worker threads started). On error:
     * NULL, nothing to free (the reason names the cause: memory, a thread that could
     * not be created, ...). */
    struct engine *(*create)(const struct model *m, const struct engine_opts *o, char *err, size_t errlen);
    void (*destroy)(struct engine *e);
    /* A KV cache for up to max_tokens positions. On error: NULL, nothing to free, the
     * engine unchanged. */
    struct session *(*session_new)(struct engine *e, int max_tokens, char *err, size_t errlen);
    void (*session_free)(struct session *s);
    void (*session_reset)(struct session *s);      /* forget all tokens; cannot fail */
    /* Forget every token after the first n (n <= n_past): decoding can branch from a
     * shared prefix without re-running it. n outside [0, n_past) changes nothing. */
    void (*session_truncate)(struct session *s, int n);
    int (*session_n_past)(const struct session *s);
    /* Appends n tokens at positions pos[i] (NULL: n_past + i) and runs them through
     * the model under `plan`.
     * targets (may be NULL): for each i, the id whose log-probability after token i
     *   is written to logprob[i] (target < 0: logprob[i] = 0, not scored).
     * last_logits (may be NULL): n_vocab logits after the last token.
     * Returns 0, or -1 with a reason in err. Every input (token and target ids, positions
     * >= 0, room in the session, the plan) is checked before anything is computed. After
     * an error the session is unchanged (the same n_past, cached tokens, SelfExtend state
     * and stats) and may be used as if the call had not been made; only the contents of
     * logprob and last_logits are unspecified. */
    int (*eval)(struct session *s, const int32_t *tokens, const int32_t *pos, int n,
                const struct forward_plan *plan, const int32_t *targets, float *logprob,
                float *last_logits, char *err, size_t errlen);
    /* Bytes a session of n tokens needs beyond the weights under `plan` (NULL: a plain
     * plan), for "does it fit" checks before any work. */
    size_t (*session_bytes)(const struct engine *e, int n_tokens, const struct forward_plan *plan);
    void (*session_stats)(const struct session *s, struct eval_stats *out);
    /* Optional (NULL: the backend reports nothing). From now on each eval calls
     * fn(arg, n) after every piece of its work (a chunk of a long prompt, a decode step),
     * n = the tokens that piece ran, so a long eval shows progress while it runs; fn =
     * NULL stops it. fn must not call back into the session. */
    void (*session_set_progress)(struct session *s, void (*fn)(void *arg, int n_tokens), void *arg);
};

extern const struct backend_ops cpu_backend;

#endif
