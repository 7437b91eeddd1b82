/* ctxbench ppl -m MODEL -f TEXT -c CTX: perplexity over non-overlapping windows.
 * Each window is BOS followed by CTX-1 text tokens, and every prediction in the
 * window is scored; the richer protocols (YaRN sliding windows, LongLoRA, llama.cpp)
 * are the perplexity task's. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "input.h"
#include "progress.h"
#include "tokenizer.h"

static const char *help =
    "usage: ctxbench ppl -m MODEL -f TEXT -c CTX [--chunks N] [options]\n"
    "Perplexity over non-overlapping windows of CTX tokens (BOS + CTX-1 text tokens,\n"
    "every next-token prediction scored), printing PPL and tokens/s.\n"
    "  -f, --file FILE         text file (UTF-8, at most 1 GiB)\n"
    "  -c, --ctx-size N        window length in tokens (default: the model's trained context)\n"
    "      --chunks N          evaluate at most N windows (default: all)\n" CLI_RUN_HELP;

int cmd_ppl(int argc, char **argv) {
    static const struct option longopts[] = {CLI_RUN_LONGOPTS,
                                             {"file", required_argument, 0, 'f'},
                                             {"ctx-size", required_argument, 0, 'c'},
                                             {"chunks", required_argument, 0, 2001},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    struct run_opts ro;
    run_opts_init(&ro);
    const char *file = NULL;
    long ctx = 0, max_chunks = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "m:t:f:c:h", longopts, NULL)) != -1) {
        int r = cli_run_opt(&ro, opt, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (opt == 'f') file = optarg;
        else if (opt == 'c') {
            if (!parse_int(optarg, 2, 1 << 24, &ctx)) {
                fprintf(stderr, "ctxbench: -c expects a window length in 2..16777216, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 2001) {
            if (!parse_int(optarg, 1, 1L << 30, &max_chunks)) {
                fprintf(stderr, "ctxbench: --chunks expects a positive count, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (!file || !ro.model) { fputs(help, stderr); return 2; }
    char err[512];
    struct method_spec spec;
    if (cli_method_spec(&ro, &spec, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 2; }
    size_t len;
    char *text = read_file(file, &len, err, sizeof err);
    if (!text) { fprintf(stderr, "ctxbench: %s\n", err); return 1; }
    struct runtime rt;
    if (cli_open(&ro, &rt, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        free(text);
        return 1;
    }
    int rc = 1;
    const struct model_config *c = &rt.model->cfg;
    struct tokenizer *tok = rt.model->tok;
    int32_t *ids = NULL, *window = NULL;
    float *logprob = NULL;
    struct session *s = NULL;
    size_t n_ids;
    if (ctx == 0) ctx = c->ctx_train;
    if (!tok) { fprintf(stderr, "ctxbench: %s has no tokenizer\n", ECHO(ro.model)); goto out; }
    if (tokenizer_bos(tok) < 0) { fprintf(stderr, "ctxbench: the vocabulary has no BOS token\n"); goto out; }
    if (tokenizer_encode(tok, text, len, false, &ids, &n_ids) != 0) {
        fprintf(stderr, "ctxbench: could not tokenize %s\n", ECHO(file));
        goto out;
    }
    long n_windows = (long)(n_ids / (size_t)(ctx - 1));
    if (n_windows == 0) {
        fprintf(stderr, "ctxbench: %s has %zu tokens, fewer than one window of %ld\n", ECHO(file), n_ids, ctx - 1);
        goto out;
    }
    if (max_chunks > 0 && n_windows > max_chunks) n_windows = max_chunks;
    struct method_ctx mctx = {.cfg = c, .target_len = (int)ctx, .seq_len = (int)ctx};
    struct method_plan plan;
    if (method_plan(&spec, &mctx, &plan, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); goto out; }
    struct forward_plan fp = method_forward_plan(&plan);
    s = session_new(rt.engine, (int)ctx, err, sizeof err);
    window = malloc((size_t)ctx * sizeof *window);
    logprob = malloc((size_t)ctx * sizeof *logprob);
    if (!s || !window || !logprob) { fprintf(stderr, "ctxbench: %s\n", s ? "out of memory" : err); goto out; }
    fprintf(stderr, "ppl: %s, %zu tokens, %ld windows of %ld, method %s%s%s\n", ECHO(file), n_ids, n_windows, ctx,
            spec.text, plan.note[0] ? " — " : "", plan.note);
    struct progress pg;
    struct progress_tokens pp = {&pg, 0, n_windows * (ctx - 1)};
    char label[160];
    snprintf(label, sizeof label, "ppl %ld windows of %ld", n_windows, ctx);
    progress_init(&pg, stderr, isatty(fileno(stderr)), 0, NULL, 0);
    session_set_progress(s, progress_on_tokens, &pp);
    progress_begin(&pg, 0, label);
    double nll = 0, t0 = host_monotonic_s();
    long scored = 0;
    for (long w = 0; w < n_windows; w++) {
        window[0] = tokenizer_bos(tok);
        memcpy(window + 1, ids + (size_t)w * (ctx - 1), (size_t)(ctx - 1) * sizeof *window);
        session_reset(s);
        /* targets = the window shifted by one; the last position predicts nothing */
        int32_t *targets = window + 1;
        if (session_eval(s, window, NULL, (int)ctx - 1, &fp, targets, logprob, NULL, err, sizeof err) != 0) {
            char line[600];
            snprintf(line, sizeof line, "ctxbench: %s", err);
            progress_note(&pg, line);   /* clears the bar first */
            goto out;
        }
        double wn = 0;
        for (long i = 0; i < ctx - 1; i++) wn -= logprob[i];
        nll += wn;
        scored += ctx - 1;
        double el = host_monotonic_s() - t0;
        char line[256];
        snprintf(line, sizeof line, "[%ld/%ld] window ppl %.4f, running ppl %.4f, %.1f tokens/s", w + 1, n_windows,
                 exp(wn / (ctx - 1)), exp(nll / scored), (w + 1) * (ctx - 1) / el);
        progress_note(&pg, line);
    }
    progress_end(&pg, "done");
    double el = host_monotonic_s() - t0;
    printf("method %s ctx %ld windows %ld tokens %ld ppl %.4f nll %.6f tokens/s %.1f\n", spec.text, ctx, n_windows,
           scored, exp(nll / scored), nll / scored, scored / el);
    rc = 0;
out:
    if (s) session_free(s);
    free(window);
    free(logprob);
    free(ids);
    free(text);
    runtime_close(&rt);
    return rc;
}
