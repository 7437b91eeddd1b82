/* ctxbench bench: prefill speed and memory of one model, and the sgemm ceiling of
 * this machine measured in the same process, so figures can be read as ratios. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <math.h>

#include "backend.h"
#include "cli.h"
#include "host.h"
#include "input.h"
#include "store.h"

void openblas_set_num_threads(int n);

static const char *help =
    "usage: ctxbench bench [-m MODEL -c N[,N...]] [--sgemm] [options]\n"
    "Times one prefill of N tokens (random ids) per length and prints tokens/s, achieved\n"
    "GFLOP/s (2 x matrix parameters x tokens / time, the usual convention, counting the work\n"
    "done: with --logits last the last layer and the vocabulary projection run one row;\n"
    "attention flops are reported separately), the attention share of the time, the CPU\n"
    "seconds of the prefill (all threads: steadier than the rate on a machine shared with\n"
    "other work) and the process's peak RSS.\n"
    "  -c, --ctx LIST          comma-separated lengths (default 512)\n"
    "      --sgemm             also measure OpenBLAS sgemm GFLOP/s with -t threads (the ceiling)\n"
    "      --repeat N          best of N prefills per length (default 1)\n"
    "      --logits all|last   all (default): every position's log-probability of the next\n"
    "                          token, as perplexity needs (the vocabulary projection on all N);\n"
    "                          last: only the last position's logits, as a generation prompt\n"
    "                          and llama-bench's -p test compute them\n"
    "      --depth D           each prefill starts at position D, over a cache of D tokens filled\n"
    "                          with synthetic keys and values (not computed): the rate at depth,\n"
    "                          e.g. -c 512 --depth 32256 for the last chunk of a 32k window\n"
    "      --kernels           instead: the backend's matrix product (the model's largest layer\n"
    "                          matrix times 2048 rows) and its attention kernel (2048 causal\n"
    "                          queries, the model's heads) in GFLOP/s, each call timed to its\n"
    "                          end, attention as a share of the device's own product rate\n"
    "      --store N           instead: write N results-store cells (a 512-value array each) into\n"
    "                          a new file in --store-dir DIR (default /tmp) and print the time per\n"
    "                          cell written for each tenth of them, then the fold into HDF5\n" CLI_RUN_HELP;



/* Best of several 2048x2048x2048 sgemms, OpenBLAS using n threads. */
static double sgemm_gflops(int threads) {
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    for (long i = 0; i < (long)n * n; i++) { a[i] = (float)(i % 7) * 0.01f; b[i] = (float)(i % 5) * 0.02f; }
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = host_monotonic_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = host_monotonic_s() - t0;
        if (t < best) best = t;
    }
    openblas_set_num_threads(1);
    free(a); free(b); free(c);
    return 2.0 * n * n * n / best / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The results store's cost per cell as the file grows: N cells of the shape of a ppl cell
 * with a per-position curve, each put timed (append + sync), then the fold. */
static int bench_store(long n, const char *dir) {
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/ctxbench-bench-store-XXXXXX", dir);
    if (!mkdtemp(path)) {
        fprintf(stderr, "ctxbench: --store-dir %s: cannot create a directory there\n", ECHO(dir));
        return 1;
    }
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s", path);
    strncat(path, "/bench.h5", sizeof path - strlen(path) - 1);
    struct store *st = store_open(path, err, sizeof err);
    double *t = malloc((size_t)n * sizeof *t), curve[512];
    int rc = 1;
    if (!st || !t) {
        fprintf(stderr, "ctxbench: %s\n", st ? "out of memory" : err);
        goto out;
    }
    printf("store: %ld cells, a 512-value array and 3 scalars each, into %s\n", n, path);
    long block = n >= 10 ? n / 10 : 1;
    for (long i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "ppl.bench.L%ld.%012lx", i, (unsigned long)i * 2654435761u);
        for (int k = 0; k < 512; k++) curve[k] = 2.0 + (double)((i + k) % 97) / 97;
        struct result r = {0};
        result_scalar(&r, "ppl", 3.5);
        result_scalar(&r, "nll", 1.25);
        result_scalar(&r, "tokens", 512);
        result_array(&r, "nll_by_position", curve, 512, 1);
        struct store_attr at[] = {{.name = "key", .kind = STORE_STR, .s = id},
                                  {.name = "length", .kind = STORE_I64, .i = i},
                                  {.name = "wall_s", .kind = STORE_F64, .f = 0.5}};
        double t0 = host_monotonic_s();
        int w = store_put(st, id, CELL_DONE, at, 3, &r, err, sizeof err);
        t[i] = host_monotonic_s() - t0;
        result_free(&r);
        if (w != 0) {
            fprintf(stderr, "ctxbench: %s\n", err);
            goto out;
        }
        if ((i + 1) % block == 0 || i + 1 == n) {
            long from = i + 1 - ((i + 1) % block ? (i + 1) % block : block);
            double sum = 0;
            for (long k = from; k <= i; k++) sum += t[k];
            qsort(t + from, (size_t)(i + 1 - from), sizeof *t, cmp_double);
            printf("cells %6ld..%-6ld  mean %.3f ms/cell, median %.3f ms/cell\n", from + 1, i + 1,
                   1e3 * sum / (double)(i + 1 - from), 1e3 * t[from + (i - from) / 2]);
            fflush(stdout);
        }
    }
    double t0 = host_monotonic_s();
    if (store_fold(st, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        goto out;
    }
    struct stat sb;
    printf("fold of %ld cells into HDF5: %.2f s, file %.1f MB\n", n, host_monotonic_s() - t0,
           stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : 0.0);
    rc = 0;
out:
    store_close(st);
    free(t);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "ctxbench: could not remove %s\n", ECHO(tmpdir));
    return rc;
}

/* Seconds of the best of `reps` runs of fn, each timed to its end (sync). */
struct kernel_timing {
    const struct backend_ops *ops;
    struct backend *b;
};

static double best_time(struct kernel_timing *kt, void (*fn)(void *), void *arg, int reps, char *err, size_t errlen) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = host_monotonic_s();
        fn(arg);
        if (kt->ops->sync(kt->b, err, errlen) != 0) return -1;
        double t = host_monotonic_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

struct gemm_job {
    struct kernel_timing *kt;
    struct dbuf *x, *y;
    enum weight_id w;
    int n;
};
static void gemm_run(void *arg) {
    struct gemm_job *j = arg;
    j->kt->ops->matmul(j->kt->b, j->y, 0, j->x, 0, j->w, j->n);
}

struct attn_job {
    struct kernel_timing *kt;
    struct attn_call call;
};
static void attn_run(void *arg) {
    struct attn_job *j = arg;
    j->kt->ops->attention(j->kt->b, &j->call);
}

/* The backend's own kernels, timed on the model's shapes (bench --kernels). */
static int bench_kernels(const struct run_opts *ro) {
    char err[512], params[256];
    const struct backend_ops *be = cli_backend(ro, params, sizeof params, err, sizeof err);
    struct model *m = be ? model_load(ro->model, err, sizeof err) : NULL;
    struct backend *b = m ? be->create(m, params, err, sizeof err) : NULL;
    if (!b) {
        fprintf(stderr, "ctxbench: %s\n", err);
        model_free(m);
        return 1;
    }
    const struct model_config *c = &m->cfg;
    struct device_info dev = {0};
    be->device(b, &dev);
    struct kernel_timing kt = {be, b};
    const int n = 2048, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    /* the largest layer matrix: up (ffn x dim) or, for a wide model, the query projection */
    const enum weight_id w = (size_t)c->ffn_dim * c->dim >= (size_t)qd * c->dim ? W_UP : W_Q;
    const int rows = w == W_UP ? c->ffn_dim : qd, cols = c->dim;
    int rc = 1;
    struct dbuf *x = be->alloc(b, (size_t)n * (cols > qd ? cols : qd), err, sizeof err);
    struct dbuf *y = x ? be->alloc(b, (size_t)n * (rows > qd ? rows : qd), err, sizeof err) : NULL;
    struct dbuf *k = y ? be->alloc(b, (size_t)n * kvd, err, sizeof err) : NULL;
    struct dbuf *v = k ? be->alloc(b, (size_t)n * kvd, err, sizeof err) : NULL;
    struct dbuf *pos = v ? be->alloc(b, (size_t)n, err, sizeof err) : NULL;
    /* one host array fills every input: as wide as the widest of them, and 7 over (v is read from +7) */
    size_t widest = (size_t)(rows > qd ? rows : qd);
    if ((size_t)cols > widest) widest = (size_t)cols;
    const size_t host_elems = (size_t)n * widest + 7;
    float *host = pos ? malloc(host_elems * sizeof(float)) : NULL;
    if (!host) {
        fprintf(stderr, "ctxbench: %s\n", pos ? "out of memory" : err);
        goto out;
    }
    /* inputs of a realistic scale: small uniform values, positions 0..n-1 */
    unsigned long long s = 88172645463325252ULL;
    for (size_t i = 0; i < host_elems; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        host[i] = (float)((s >> 11) * (1.0 / 9007199254740992.0) - 0.5);
    }
    be->write(b, x, 0, host, (size_t)n * (cols > qd ? cols : qd));
    be->write(b, k, 0, host, (size_t)n * kvd);
    be->write(b, v, 0, host + 7, (size_t)n * kvd);
    int32_t *ip = (int32_t *)host;
    for (int i = 0; i < n; i++) ip[i] = i;
    be->write(b, pos, 0, ip, (size_t)n);
    struct gemm_job gj = {&kt, x, y, w, n};
    gemm_run(&gj);   /* the first call may compile kernels (OpenCL): not timed */
    double t_gemm = best_time(&kt, gemm_run, &gj, 3, err, sizeof err);
    struct attn_job aj = {&kt, {.n_q = n, .n_kv = n, .q = x, .k = k, .v = v, .q_pos = pos, .k_pos = pos,
                                .scale = 1.0f / sqrtf((float)c->head_dim), .out = y}};
    attn_run(&aj);
    double t_attn = t_gemm < 0 ? -1 : best_time(&kt, attn_run, &aj, 3, err, sizeof err);
    if (t_gemm < 0 || t_attn < 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        goto out;
    }
    double gemm = 2.0 * n * rows * cols / t_gemm / 1e9;
    double attn = 4.0 * c->n_heads * c->head_dim * ((double)n * (n + 1) / 2) / t_attn / 1e9;
    printf("kernels on %s (%s, %s): matrix product %d x %d x %d %.1f GFLOP/s; attention %d causal queries, "
           "%d heads / %d kv heads, head_dim %d: %.1f GFLOP/s = %.2f x the product rate\n",
           be->name, dev.name, dev.params, n, rows, cols, gemm, n, c->n_heads, c->n_kv_heads, c->head_dim, attn,
           attn / gemm);
    rc = 0;
out:
    free(host);
    struct dbuf *bufs[] = {x, y, k, v, pos};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) be->release(b, bufs[i]);
    be->destroy(b);
    model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {CLI_RUN_LONGOPTS,
                                             {"ctx", required_argument, 0, 'c'},
                                             {"sgemm", no_argument, 0, 2001},
                                             {"repeat", required_argument, 0, 2002},
                                             {"kernels", no_argument, 0, 2003},
                                             {"store", required_argument, 0, 2004},
                                             {"store-dir", required_argument, 0, 2005},
                                             {"depth", required_argument, 0, 2006},
                                             {"logits", required_argument, 0, 2007},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    struct run_opts ro;
    run_opts_init(&ro);
    const char *lens = "512";
    int do_sgemm = 0, do_kernels = 0, last_only = 0, opt;
    long repeat = 1, store_cells = 0, depth = 0;
    const char *store_dir = "/tmp";
    while ((opt = getopt_long(argc, argv, "m:t:c:h", longopts, NULL)) != -1) {
        int r = cli_run_opt(&ro, opt, optarg);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (opt == 'c') lens = optarg;
        else if (opt == 2001) do_sgemm = 1;
        else if (opt == 2003) do_kernels = 1;
        else if (opt == 2004) {
            if (!parse_int(optarg, 1, 10000000, &store_cells)) {
                fprintf(stderr, "ctxbench: --store expects a cell count in 1..10000000, got '%s'\n", ECHO(optarg));
                return 2;
            }
        } else if (opt == 2005) store_dir = optarg;
        else if (opt == 2006) {
            if (!parse_int(optarg, 0, 1 << 24, &depth)) {
                fprintf(stderr, "ctxbench: --depth expects a token count in 0..16777216, got '%s'\n", ECHO(optarg));
                return 2;
            }
        }
        else if (opt == 2007) {
            if (strcmp(optarg, "all") == 0) last_only = 0;
            else if (strcmp(optarg, "last") == 0) last_only = 1;
            else { fprintf(stderr, "ctxbench: --logits expects all or last, got '%s'\n", ECHO(optarg)); return 2; }
        }
        else if (opt == 2002) {
            if (!parse_int(optarg, 1, 100, &repeat)) { fprintf(stderr, "ctxbench: --repeat expects 1..100\n"); return 2; }
        } else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    int threads = ro.threads > 0 ? ro.threads : 0;
    if (do_sgemm) {
        printf("sgemm 2048^3 threads %d: %.1f GFLOP/s\n", threads ? threads : 1, sgemm_gflops(threads ? threads : 1));
        fflush(stdout);
    }
    if (store_cells) return bench_store(store_cells, store_dir);
    if (!ro.model) return do_sgemm ? 0 : (fputs(help, stderr), 2);
    if (do_kernels) return bench_kernels(&ro);

    char err[512];
    struct method_spec spec;
    if (cli_method_spec(&ro, &spec, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 2; }
    long ctxs[32];
    int n_ctx = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", lens);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n_ctx == 32 || !parse_int(tok, 2, 1 << 24, &ctxs[n_ctx])) {
            fprintf(stderr, "ctxbench: bad length '%s' in -c (comma-separated integers, at most 32)\n", ECHO(tok));
            return 2;
        }
        n_ctx++;
    }
    struct runtime rt;
    double t_load = host_monotonic_s();
    if (cli_open(&ro, &rt, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); return 1; }
    t_load = host_monotonic_s() - t_load;
    const struct model_config *c = &rt.model->cfg;
    /* matrix parameters touched per token: every layer matrix plus the output projection */
    double mat_params = (double)c->n_layers *
                            ((double)c->dim * (c->n_heads + 2 * c->n_kv_heads) * c->head_dim +
                             (double)c->n_heads * c->head_dim * c->dim + 3.0 * c->dim * c->ffn_dim) +
                        (double)c->dim * c->n_vocab;
    printf("model %s: %s, %.1fM matrix params, %s, load %.2fs, rss after load %.0f MB\n", ro.model, c->arch_name,
           mat_params / 1e6, rt.model->weight_type, t_load, host_peak_rss_mib());
    int rc = 0;
    for (int i = 0; i < n_ctx && rc == 0; i++) {
        int n = (int)ctxs[i];
        struct method_ctx mctx = {.cfg = c, .target_len = n, .seq_len = n};
        struct method_plan plan;
        if (method_plan(&spec, &mctx, &plan, err, sizeof err) != 0) { fprintf(stderr, "ctxbench: %s\n", err); rc = 1; break; }
        struct forward_plan fp = method_forward_plan(&plan);
        struct session *s = session_new(rt.engine, n + (int)depth, err, sizeof err);
        int32_t *ids = malloc(sizeof(int32_t) * n);
        int32_t *tg = malloc(sizeof(int32_t) * n);
        float *lp = malloc(sizeof(float) * n);
        float *last = last_only ? malloc(sizeof(float) * (size_t)c->n_vocab) : NULL;
        if (!s || !ids || !tg || !lp || (last_only && !last)) {
            fprintf(stderr, "ctxbench: %s\n", s ? "out of memory" : err);
            rc = 1;
        } else {
            unsigned long long st = 88172645463325252ULL;
            for (int t = 0; t < n; t++) {
                st ^= st << 13; st ^= st >> 7; st ^= st << 17;
                ids[t] = (int32_t)(st % (unsigned long long)c->n_vocab);
            }
            for (int t = 0; t < n; t++) tg[t] = t + 1 < n ? ids[t + 1] : -1;
            struct eval_stats best = {.t_total = 1e30};
            double best_cpu = 1e30;
            for (long r = 0; r < repeat && rc == 0; r++) {
                session_reset(s);
                double t_fill = host_monotonic_s();
                if (depth > 0 && session_fill_synthetic(s, (int)depth, err, sizeof err) != 0) {
                    fprintf(stderr, "ctxbench: %s\n", err);
                    rc = 1;
                    break;
                }
                if (depth > 0 && r == 0)
                    printf("synthetic cache of %ld tokens (KV cache %s/%s) filled in %.1fs\n", depth,
                           kv_type_name(rt.kv.k), kv_type_name(rt.kv.v), host_monotonic_s() - t_fill);
                double cpu0 = host_cpu_s();
                if (session_eval(s, ids, NULL, n, &fp, last_only ? NULL : tg, last_only ? NULL : lp, last, err,
                                 sizeof err) != 0) {
                    fprintf(stderr, "ctxbench: %s\n", err);
                    rc = 1;
                    break;
                }
                double cpu = host_cpu_s() - cpu0;
                struct eval_stats es;
                session_stats(s, &es);
                if (es.t_total < best.t_total) best = es;
                if (cpu < best_cpu) best_cpu = cpu;
            }
            if (rc == 0) {
                /* The work done: with the last logits only, the last layer computes every
                 * row's keys and values but the rest (queries, attention, output, FFN) and
                 * the vocabulary projection for the last row only (engine.c). */
                const double L = c->n_layers, vocab_params = (double)c->dim * c->n_vocab;
                const double layer_params = (mat_params - vocab_params) / L;
                const double kv_params = 2.0 * c->dim * c->n_kv_heads * c->head_dim;
                const double pairs = (double)n * (n + 1) / 2 + (double)n * depth;   /* causal query-key pairs */
                const double attn_unit = 2.0 * 2.0 * c->n_heads * c->head_dim;
                double attn_flops = attn_unit * L * pairs;
                double mat_flops = 2.0 * mat_params * n;
                if (last_only) {
                    attn_flops = attn_unit * ((L - 1) * pairs + (double)n + (double)depth);
                    mat_flops = 2.0 * ((L - 1) * layer_params * n + kv_params * n + (layer_params - kv_params) +
                                       vocab_params);
                }
                if (depth > 0) printf("at depth %ld: ", depth);
                printf("prefill n=%-6d %8.1f tokens/s  %7.1f GFLOP/s (matrix)  attention %4.1f%% of time "
                       "(%.1f GFLOP/s)  matmul %4.1f%%  cpu %.2fs  peak RSS %.0f MB  logits %s\n",
                       n, n / best.t_total, mat_flops / best.t_total / 1e9, 100 * best.t_attn / best.t_total,
                       best.t_attn > 0 ? attn_flops / best.t_attn / 1e9 : 0, 100 * best.t_matmul / best.t_total,
                       best_cpu, host_peak_rss_mib(), last_only ? "last" : "all");
                fflush(stdout);
            }
        }
        if (s) session_free(s);
        free(ids); free(tg); free(lp); free(last);
    }
    runtime_close(&rt);
    return rc;
}
