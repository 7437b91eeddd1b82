/* ctxbench generate -m MODEL -p PROMPT -n N: greedy decoding, for sanity checks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "decode.h"
#include "input.h"
#include "progress.h"
#include "tokenizer.h"

static const char *help =
    "usage: ctxbench generate -m MODEL -p PROMPT [-n N] [options]\n"
    "Greedy (argmax) decoding of N new tokens (default 64) after PROMPT; stops at EOS.\n"
    "  -p, --prompt TEXT       the prompt (BOS added as the model's tokenizer says)\n"
    "  -n, --n-predict N       tokens to generate\n" CLI_RUN_HELP;

int cmd_generate(int argc, char **argv) {
    static const struct option longopts[] = {CLI_RUN_LONGOPTS,
                                             {"prompt", required_argument, 0, 'p'},
                                             {"n-predict", required_argument, 0, 'n'},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    struct run_opts ro;
    run_opts_init(&ro);
    const char *prompt = NULL;
    long n_predict = 64;
    int opt;
    while ((opt = getopt_long(argc, argv, "m:t:p:n:h", longopts, NULL)) != -1) {
        int r = cli_run_opt(&ro, opt, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (opt == 'p') prompt = optarg;
        else if (opt == 'n') {
            if (!parse_int(optarg, 1, 1 << 20, &n_predict)) {
                fprintf(stderr, "ctxbench: -n expects a count in 1..1048576, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (!prompt || !ro.model) { fputs(help, stderr); return 2; }
    char err[512];
    struct method_spec spec;
    if (cli_method_spec(&ro, &spec, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 2; }
    struct runtime rt;
    if (cli_open(&ro, &rt, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 1; }
    int rc = 1;
    const struct model_config *c = &rt.model->cfg;
    struct tokenizer *tok = rt.model->tok;
    int32_t *ids = NULL;
    float *logits = NULL;
    struct session *s = NULL;
    size_t n;
    if (!tok) { fprintf(stderr, "ctxbench: %s has no tokenizer\n", ro.model); goto out; }
    if (tokenizer_encode(tok, prompt, strlen(prompt), tokenizer_add_bos_default(tok), &ids, &n) != 0 || n == 0) {
        fprintf(stderr, "ctxbench: could not tokenize the prompt\n");
        goto out;
    }
    int total = (int)n + (int)n_predict;
    struct method_ctx mctx = {.cfg = c, .target_len = total, .seq_len = (int)n};
    struct method_plan plan;
    if (method_plan(&spec, &mctx, &plan, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); goto out; }
    struct forward_plan fp = method_forward_plan(&plan);
    s = session_new(rt.engine, total, err, sizeof err);
    logits = malloc((size_t)c->n_vocab * sizeof(float));
    if (!s || !logits) { fprintf(stderr, "ctxbench: %s\n", s ? "out of memory" : err); goto out; }
    struct progress pg;
    struct progress_tokens pp = {&pg, 0, (long)n};
    char label[96];
    progress_init(&pg, stderr, isatty(fileno(stderr)), 0, NULL, 0);
    snprintf(label, sizeof label, "prefill %zu prompt tokens", n);
    session_set_progress(s, progress_on_tokens, &pp);
    progress_begin(&pg, 0, label);
    int prefill = session_eval(s, ids, NULL, (int)n, &fp, NULL, NULL, logits, err, sizeof err);
    progress_end(&pg, prefill == 0 ? "done" : "failed");
    session_set_progress(s, NULL, NULL);
    if (prefill != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        goto out;
    }
    /* The text streams to stdout token by token: on a terminal that is the progress;
     * redirected, stderr gets progress lines for the decode steps. */
    bool decode_progress = !isatty(fileno(stdout));
    if (decode_progress) {
        snprintf(label, sizeof label, "generate %ld tokens", n_predict);
        progress_begin(&pg, 0, label);
    }
    fputs(prompt, stdout);
    char piece[256];
    for (long i = 0; i < n_predict; i++) {
        int32_t best = decode_argmax(logits, c->n_vocab);
        if (best == tokenizer_eos(tok)) break;
        size_t pl = tokenizer_decode_token(tok, best, piece, sizeof piece);
        fwrite(piece, 1, pl < sizeof piece ? pl : sizeof piece, stdout);
        fflush(stdout);
        if (session_eval(s, &best, NULL, 1, &fp, NULL, NULL, logits, err, sizeof err) != 0) {
            if (decode_progress) progress_end(&pg, "failed");
            fprintf(stderr, "\nctxbench: %s\n", err);
            goto out;
        }
        if (decode_progress) progress_update(&pg, (double)(i + 1) / (double)n_predict, i + 1);
    }
    if (decode_progress) progress_end(&pg, "done");
    printf("\n");
    rc = 0;
out:
    if (s) session_free(s);
    free(logits);
    free(ids);
    runtime_close(&rt);
    return rc;
}
