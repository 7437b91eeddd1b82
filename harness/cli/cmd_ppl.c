/* ctxbench ppl -m MODEL -f TEXT -c CTX: perplexity, run by the perplexity task itself
 * (tasks/ppl.c), so this command and a sweep's ppl cell give the same number for the
 * same text and settings. By default the task's `windows` protocol: non-overlapping
 * windows of BOS followed by CTX-1 text tokens, every prediction scored; --protocol picks
 * any of the task's protocols (YaRN sliding windows, LongLoRA, llama.cpp's
 * llama-perplexity), with its --stride and --truncate. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "host.h"
#include "input.h"
#include "progress.h"
#include "task.h"

static const char *help =
    "usage: ctxbench ppl -m MODEL -f TEXT -c CTX [--chunks N] [--protocol P] [options]\n"
    "Perplexity with windows of CTX tokens, printing PPL and tokens/s: the ppl task (`ctxbench\n"
    "sweep --tasks ppl --task-opt ppl:protocol=P` gives the same number for the same text).\n"
    "By default protocol windows: non-overlapping windows of BOS + CTX-1 text tokens, every\n"
    "next-token prediction scored.\n"
    "  -f, --file FILE         text file (UTF-8, at most 1 GiB), read as one document (a BOM\n"
    "                          stripped, CRLF made LF, surrounding whitespace trimmed); or any\n"
    "                          dataset that sweep --data takes (its documents' tokens in a row)\n"
    "  -c, --ctx-size N        window length in tokens, 4..16777216 (default: the model's\n"
    "                          trained context)\n"
    "      --chunks N          evaluate at most N windows (default: all)\n"
    "      --protocol P        windows | yarn | longlora | llamacpp (tasks/README.md): yarn's\n"
    "                          per-document sliding windows, LongLoRA's strided windows,\n"
    "                          llama-perplexity's chunks scored from CTX/2 (default windows)\n"
    "      --stride N          yarn and longlora: window starts every N tokens (default 256)\n"
    "      --truncate          yarn: one window per document, its first CTX-1 tokens\n" CLI_RUN_HELP;

/* The task's progress and notes, shown as this command always showed them: the progress
 * line starts when the forward passes do (after the task's opening note), and the
 * tokens/s printed at the end count from there, not from reading and tokenizing the text. */
struct ppl_view {
    struct progress pg;
    bool begun;
    double t0;
};

static void on_begin(void *arg, const char *what) {
    struct ppl_view *v = arg;
    char label[160];
    snprintf(label, sizeof label, "ppl %s", what);
    progress_begin(&v->pg, 0, label);
    v->begun = true;
    v->t0 = host_monotonic_s();
}

static void on_progress(void *arg, double frac, long tokens) {
    struct ppl_view *v = arg;
    if (v->begun) progress_update(&v->pg, frac, tokens);
}

static void on_note(void *arg, const char *line) {
    struct ppl_view *v = arg;
    progress_note(&v->pg, line);   /* clears the bar first */
}

static double scalar(const struct result *r, const char *name) {
    const struct result_item *it = result_find(r, name);
    return it && it->kind == RESULT_SCALAR ? it->value : NAN;
}

int cmd_ppl(int argc, char **argv) {
    static const struct option longopts[] = {CLI_RUN_LONGOPTS,
                                             {"file", required_argument, 0, 'f'},
                                             {"ctx-size", required_argument, 0, 'c'},
                                             {"chunks", required_argument, 0, 2001},
                                             {"protocol", required_argument, 0, 2002},
                                             {"stride", required_argument, 0, 2003},
                                             {"truncate", no_argument, 0, 2004},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    struct run_opts ro;
    run_opts_init(&ro);
    const char *file = NULL, *protocol = "windows";
    long ctx = 0, max_chunks = -1, stride = 0;
    bool truncate = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "m:t:f:c:h", longopts, NULL)) != -1) {
        int r = cli_run_opt(&ro, opt, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (opt == 'f') file = optarg;
        else if (opt == 'c') {
            /* the task's length bounds: a window scores at least BOS + 3 text tokens */
            if (!parse_int(optarg, TASK_MIN_LENGTH, TASK_MAX_LENGTH, &ctx)) {
                fprintf(stderr, "ctxbench: -c expects a window length in %d..%d, got '%s'\n", TASK_MIN_LENGTH,
                        TASK_MAX_LENGTH, ECHO(optarg));
                return 2;
            }
        } else if (opt == 2001) {
            if (!parse_int(optarg, 1, 1L << 30, &max_chunks)) {
                fprintf(stderr, "ctxbench: --chunks expects a positive count, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 2002) protocol = optarg;
        else if (opt == 2003) {
            if (!parse_int(optarg, 1, 1 << 24, &stride)) {
                fprintf(stderr, "ctxbench: --stride expects a token count in 1..16777216, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 2004) truncate = true;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (!file || !ro.model) { fputs(help, stderr); return 2; }
    char err[1024];
    struct method_spec spec;
    if (cli_method_spec(&ro, &spec, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 2; }
    const struct task *ppl = task_find("ppl");
    if (!ppl) { fprintf(stderr, "ctxbench: this build has no ppl task\n"); return 1; }
    /* every window (the settings' largest caps) unless --chunks says fewer; the protocol
     * and its options are the task's settings, checked by the task before anything loads */
    char settings[256], extra[64] = "";
    if (strpbrk(protocol, ",=;") || strlen(protocol) > 32) {
        fprintf(stderr, "ctxbench: --protocol '%s' is not one of windows, yarn, longlora, llamacpp\n", ECHO(protocol));
        return 2;
    }
    if (stride > 0) snprintf(extra, sizeof extra, ",stride=%ld", stride);
    if (truncate) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",truncate=1");
    snprintf(settings, sizeof settings, "protocol=%s,max_windows=%ld,max_tokens=%lld%s", protocol,
             max_chunks > 0 ? max_chunks : 1L << 30, 1LL << 40, extra);
    if (ppl->check && ppl->check(settings, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 2;
    }
    /* the text first: a file that cannot be read fails before the model is loaded */
    struct dataset ds;
    if (dataset_load(file, &ds, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 1; }
    struct runtime rt;
    if (cli_open(&ro, &rt, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        dataset_free(&ds);
        return 1;
    }
    if (ctx == 0) ctx = rt.model->cfg.ctx_train;
    struct ppl_view view = {0};
    progress_init(&view.pg, stderr, isatty(fileno(stderr)), 0, NULL, 0);
    struct task_ctx tc = {.rt = &rt,
                          .method = &spec,
                          .length = (int)ctx,
                          .data = file,
                          .settings = settings,
                          .seed = 1,
                          .progress = on_progress,
                          .progress_arg = &view,
                          .dataset = &ds,
                          .begin = on_begin,
                          .note = on_note,
                          .note_arg = &view};
    struct result res = {0};
    int rc = 1;
    if (ppl->run(&tc, &res, err, sizeof err) != 0) {
        char line[1100];
        snprintf(line, sizeof line, "ctxbench: %s", err);
        progress_note(&view.pg, line);
    } else {
        double el = host_monotonic_s() - view.t0, scored = scalar(&res, "tokens_scored");
        if (view.begun) progress_end(&view.pg, "done");
        printf("method %s ctx %ld windows %.0f tokens %.0f ppl %.4f nll %.6f tokens/s %.1f protocol %s cache %s/%s\n",
               spec.text, ctx, scalar(&res, "windows"), scored, scalar(&res, "ppl"), scalar(&res, "nll"), scored / el,
               protocol, kv_type_name(rt.kv.k), kv_type_name(rt.kv.v));
        rc = 0;
    }
    result_free(&res);
    runtime_close(&rt);
    dataset_free(&ds);
    return rc;
}
