/* The training script's exporter round-trips: scripts/train_model.py writes a tiny randomly
 * initialised llama as GGUF together with the next-token log-probabilities PyTorch computes
 * for it, and ctxbench, loading the file with no special case, gives the same log-probability
 * for every token of the vocabulary at every position (to 1e-4). A wrong rotation layout
 * (GGUF llama rotates adjacent pairs), a transposed weight, a swapped kv-head grouping or a
 * wrong norm epsilon each break it. Needs python3-torch (scripts/install_deps.sh installs it);
 * CTXBENCH_PYTHON names the interpreter (default python3). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "method.h"
#include "model.h"
#include "runtime.h"
#include "testutil.h"

static char err[512];

/* The repository root: the tests run as build/tests/NAME, or from the root itself. */
static void repo_root(char *out, size_t cap) {
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(n > 0);
    exe[n] = 0;
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        cr_assert(slash);
        *slash = 0;
    }
    snprintf(out, cap, "%s", exe);
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/scripts/train_model.py", out);
    if (access(probe, R_OK) != 0) snprintf(out, cap, ".");
}

Test(train_export, pytorch_and_ctxbench_agree_on_every_log_probability, .timeout = 120) {
    char root[1024], dir[] = "/tmp/ctx_roundtrip_XXXXXX", cmd[4096];
    repo_root(root, sizeof root);
    cr_assert(mkdtemp(dir));
    const char *py = getenv("CTXBENCH_PYTHON");
    char vocab[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s/scripts/train_model.py' roundtrip --out-dir '%s' --vocab '%s' 2>&1",
             py && *py ? py : "python3", root, dir, shared_path(vocab, sizeof vocab, "models/stories260K.gguf"));
    int rc = system(cmd);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
              "train_model.py roundtrip failed (is python3-torch installed? scripts/install_deps.sh): %s", cmd);

    char path[1100];
    snprintf(path, sizeof path, "%s/roundtrip.ids", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    int32_t ids[256];
    int n = 0;
    while (n < 256 && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    cr_assert(n >= 16, "only %d ids", n);

    snprintf(path, sizeof path, "%s/roundtrip.gguf", dir);
    struct runtime rt;
    const char *o = "threads=1";
    cr_assert_eq(runtime_open(&rt, path, "cpu", o, NULL, err, sizeof err), 0, "%s", err);
    const int V = rt.model->cfg.n_vocab;
    double *want = malloc(sizeof(double) * (size_t)n * V);
    cr_assert(want);
    snprintf(path, sizeof path, "%s/roundtrip.logprobs", dir);
    f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    cr_assert_eq(fread(want, sizeof(double), (size_t)n * V, f), (size_t)n * V, "short %s", path);
    fclose(f);

    struct method_spec spec;
    struct method_plan plan;
    cr_assert_eq(method_spec_parse("baseline", &spec, err, sizeof err), 0, "%s", err);
    struct method_ctx mctx = {.cfg = &rt.model->cfg, .target_len = rt.model->cfg.ctx_train, .seq_len = n};
    cr_assert_eq(method_plan(&spec, &mctx, &plan, err, sizeof err), 0, "%s", err);
    struct forward_plan fp = method_forward_plan(&plan);
    struct session *s = session_new(rt.engine, n, err, sizeof err);
    cr_assert(s, "%s", err);
    float *logits = malloc(sizeof(float) * V);
    cr_assert(logits);
    double worst = 0, spread = 0;
    for (int t = 0; t < n; t++) {
        cr_assert_eq(session_eval(s, ids + t, NULL, 1, &fp, NULL, NULL, logits, err, sizeof err), 0, "%s", err);
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
        for (int v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
        double lo = INFINITY, hi = -INFINITY;
        for (int v = 0; v < V; v++) {
            double lp = (double)logits[v] - mx - log(sum), ref = want[(size_t)t * V + v];
            cr_assert(isfinite(lp) && isfinite(ref), "position %d token %d: %g vs %g", t, v, lp, ref);
            double d = fabs(lp - ref);
            worst = d > worst ? d : worst;
            cr_assert(d <= 1e-4, "position %d token %d: ctxbench %.7f, PyTorch %.7f", t, v, lp, ref);
            lo = ref < lo ? ref : lo;
            hi = ref > hi ? ref : hi;
        }
        spread = hi - lo > spread ? hi - lo : spread;
    }
    /* the random model must not be near-uniform, or the check would say little */
    cr_assert(spread > 2.0, "PyTorch log-probabilities span only %g: the test model is too flat", spread);
    cr_log_info("largest |difference| %.2e over %d positions x %d tokens", worst, n, V);
    free(logits);
    free(want);
    session_free(s);
    runtime_close(&rt);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", dir);
}
