/* Methods that reduce to the model's own RoPE must give the same logits as baseline
 * through the whole forward pass on stories260K, bit for bit; methods that do not reduce
 * must change them (so the plan really reaches the engine). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "method.h"
#include "model.h"
#include "runtime.h"
#include "testutil.h"

#define N_TOK 400   /* below the 512-token training context of stories260K */

static struct runtime rt;
static char err[512];
static int32_t tokens[N_TOK];
static int32_t targets[N_TOK];   /* tokens shifted by one; the last is not scored (-1) */

static void open_260k(void) {
    char p[1024];
    const char *o = "threads=2";
    cr_assert_eq(runtime_open(&rt, shared_path(p, sizeof p, "models/stories260K.gguf"), "cpu", o, NULL, err, sizeof err),
                 0, "%s", err);
    cr_assert_gt(rt.model->cfg.ctx_train, N_TOK, "the test assumes N_TOK < context_length");
    unsigned long long rng = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < N_TOK; i++) tokens[i] = (int32_t)(test_rng_next(&rng) % (unsigned)rt.model->cfg.n_vocab);
    tokens[0] = 1;   /* BOS */
    for (int i = 0; i < N_TOK; i++) targets[i] = i + 1 < N_TOK ? tokens[i + 1] : -1;
}

static void close_260k(void) { runtime_close(&rt); }

TestSuite(identity, .init = open_260k, .fini = close_260k, .timeout = 120);

struct result {
    float logprob[N_TOK];   /* log p(tokens[t+1] | ..t), t < n-1; [n-1] = 0 */
    float *last_logits;     /* n_vocab */
};

/* Plans `spec` for a cell of target_len with the whole sequence (n <= N_TOK) as one pass,
 * evaluates the n tokens and keeps every position's log-probability and the last logits. */
static void run_spec(const char *spec, int target_len, int n, struct result *r) {
    struct method_spec s;
    struct method_plan plan;
    cr_assert_eq(method_spec_parse(spec, &s, err, sizeof err), 0, "%s", err);
    struct method_ctx ctx = {.cfg = &rt.model->cfg, .target_len = target_len, .seq_len = n};
    cr_assert_eq(method_plan(&s, &ctx, &plan, err, sizeof err), 0, "%s: %s", spec, err);
    struct forward_plan fp = method_forward_plan(&plan);
    struct session *ss = session_new(rt.engine, n, err, sizeof err);
    cr_assert_not_null(ss, "%s", err);
    r->last_logits = malloc(sizeof(float) * (size_t)rt.model->cfg.n_vocab);
    cr_assert_not_null(r->last_logits);
    cr_assert_eq(session_eval(ss, tokens, NULL, n, &fp, targets, r->logprob, r->last_logits, err, sizeof err),
                 0, "%s: %s", spec, err);
    session_free(ss);
}

static bool same_result(const struct result *a, const struct result *b, int n) {
    return memcmp(a->logprob, b->logprob, sizeof(float) * (size_t)(n - 1)) == 0 &&
           memcmp(a->last_logits, b->last_logits, sizeof(float) * (size_t)rt.model->cfg.n_vocab) == 0;
}

static double max_logprob_diff(const struct result *a, const struct result *b, int n) {
    double worst = 0;
    for (int t = 0; t < n - 1; t++) worst = fmax(worst, fabs((double)a->logprob[t] - b->logprob[t]));
    return worst;
}

Test(identity, reducing_methods_equal_baseline_bitwise) {
    int n = N_TOK, L = rt.model->cfg.ctx_train;
    struct result base, r;
    run_spec("baseline", n, n, &base);
    char abf[64], se[64], swa[64];
    snprintf(abf, sizeof abf, "abf:rope_theta=%.17g", rt.model->cfg.rope_base);
    snprintf(se, sizeof se, "selfextend:group=4,window=%d", n);      /* W >= length: all neighbours */
    snprintf(swa, sizeof swa, "swa:window=%d", n);                   /* window >= length: full causal */
    const char *same[] = {"pi:factor=1", "ntk:factor=1", "yarn:factor=1", "llama3:factor=1", abf,
                          "dynamic_ntk", "dynamic_ntk:factor=4", "pi", "yarn", "ntk", se, swa, "swa"};
    for (size_t k = 0; k < sizeof same / sizeof *same; k++) {
        run_spec(same[k], L, n, &r);   /* target_len = L: derived factors are 1 */
        cr_assert(same_result(&r, &base, n), "%s differs from baseline: max |dlogp| %g", same[k],
                  max_logprob_diff(&r, &base, n));
        free(r.last_logits);
    }
    free(base.last_logits);
}

Test(identity, non_reducing_methods_change_the_logits) {
    int n = N_TOK, L = rt.model->cfg.ctx_train;
    struct result base, r;
    run_spec("baseline", n, n, &base);
    const char *differ[] = {"pi:factor=2", "ntk:factor=4", "yarn:factor=4", "abf", "selfextend:group=4,window=64",
                            "swa:window=64", "yarn:factor=1,attention_factor=1.2"};
    for (size_t k = 0; k < sizeof differ / sizeof *differ; k++) {
        run_spec(differ[k], L, n, &r);
        double d = max_logprob_diff(&r, &base, n);
        cr_assert_gt(d, 1e-3, "%s leaves the log-probabilities unchanged (max diff %g)", differ[k], d);
        free(r.last_logits);
    }
    /* a window only matters past it: with W = 64 the first 64 positions are untouched */
    run_spec("swa:window=64", L, n, &r);
    cr_assert(memcmp(r.logprob, base.logprob, sizeof(float) * 64) == 0, "swa changed positions inside its window");
    free(r.last_logits);
    run_spec("selfextend:group=4,window=64", L, n, &r);
    cr_assert(memcmp(r.logprob, base.logprob, sizeof(float) * 64) == 0,
              "selfextend changed positions inside its neighbour window");
    free(r.last_logits);
    free(base.last_logits);
}
