/* ctxbench plot: the data files made from a hand-built results file (values, order
 * by length, left-out cells absent, notes), and, where gnuplot is installed, the
 * PNG and SVG figures drawn from them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"
#include "store.h"
#include "testutil.h"
#include "testutil_sys.h"

/* ------------------------------------------------------------------ building a results file */

/* One hand-made cell: what the sweep would record, reduced to what plots read. */
struct cell_spec {
    const char *task, *method, *settings;
    long length;
    enum cell_status status;
    double started;       /* started_unix */
    double tokens_per_s, peak_rss_mib;
    const char *error;
};

/* put_cell with more attributes (method_name, method.factor, ...). */
static void put_cell_with(struct store *st, const struct cell_spec *c, const struct result *r,
                          const struct store_attr *extra, int n_extra) {
    char id[STORE_ID_MAX + 1], key[256];
    snprintf(key, sizeof key, "task=%s;method=%s;length=%ld;settings=%s", c->task, c->method, c->length, c->settings);
    snprintf(id, sizeof id, "%s.%s.L%ld.%s", c->task, c->method, c->length, c->settings);
    struct store_attr at[] = {
        {.name = "key", .kind = STORE_STR, .s = key},
        {.name = "task", .kind = STORE_STR, .s = (char *)c->task},
        {.name = "task_settings", .kind = STORE_STR, .s = (char *)c->settings},
        {.name = "data", .kind = STORE_STR, .s = strcmp(c->task, "passkey") ? "tinystories" : ""},
        {.name = "length", .kind = STORE_I64, .i = c->length},
        {.name = "method", .kind = STORE_STR, .s = (char *)c->method},
        {.name = "model", .kind = STORE_STR, .s = "toy.gguf"},
        {.name = "model_sha256", .kind = STORE_STR, .s = "abc123"},
        {.name = "ctx_train", .kind = STORE_I64, .i = 512},
        {.name = "backend", .kind = STORE_STR, .s = "cpu"},
        {.name = "host", .kind = STORE_STR, .s = "testhost"},
        {.name = "threads", .kind = STORE_I64, .i = 2},
        {.name = "seed", .kind = STORE_I64, .i = 1},
        {.name = "started_unix", .kind = STORE_F64, .f = c->started},
        {.name = "tokens_per_s", .kind = STORE_F64, .f = c->tokens_per_s},
        {.name = "peak_rss_mib", .kind = STORE_F64, .f = c->peak_rss_mib},
        {.name = "git_rev", .kind = STORE_STR, .s = "0123456789ab"},
        {.name = "data_sha256", .kind = STORE_STR, .s = strcmp(c->task, "passkey") ? "feedface" : ""},
        {.name = "error", .kind = STORE_STR, .s = (char *)(c->error ? c->error : "")},
    };
    int n = (int)(sizeof at / sizeof at[0]) - (c->error ? 0 : 1);
    struct store_attr all[32];
    cr_assert_leq(n + n_extra, 32);
    memcpy(all, at, (size_t)n * sizeof at[0]);
    for (int k = 0; k < n_extra; k++) all[n + k] = extra[k];
    char err[512];
    cr_assert_eq(store_put(st, id, c->status, all, n + n_extra, c->status == CELL_DONE ? r : NULL, err, sizeof err), 0,
                 "%s", err);
}

static void put_cell(struct store *st, const struct cell_spec *c, const struct result *r) {
    put_cell_with(st, c, r, NULL, 0);
}

/* The ppl values the file holds, so the checks below compare with the inputs. */
static double ppl_of(int method, long L) { return (method == 0 ? 4.0 : 3.0) * (double)L / 512.0 + 0.125; }
static double rate_of(int method, long L) { return 10000.0 / (1 + method) - (double)L; }
static double bin_nll(int method, long L, int b) { return 1.0 + 0.5 * b + (double)L / 4096.0 + 0.01 * method; }

/* A ppl cell's results: ppl, nll and 4 position bins over [0, L); bin 2 has no tokens. */
static void ppl_result(struct result *r, int method, long L) {
    double nll[4], edges[5], count[4] = {10, 12, 0, 9};
    for (int b = 0; b < 4; b++) nll[b] = bin_nll(method, L, b);
    nll[2] = NAN;
    for (int b = 0; b <= 4; b++) edges[b] = (double)L * b / 4;
    cr_assert_eq(result_scalar(r, "ppl", ppl_of(method, L)), 0);
    cr_assert_eq(result_scalar(r, "nll", log(ppl_of(method, L))), 0);
    cr_assert_eq(result_scalar(r, "tokens_scored", 4 * (double)L), 0);
    cr_assert_eq(result_scalar(r, "windows", 4), 0);
    cr_assert_eq(result_array(r, "nll_by_pos", nll, 4, 1), 0);
    cr_assert_eq(result_array(r, "nll_by_pos_edges", edges, 5, 1), 0);
    cr_assert_eq(result_array(r, "nll_by_pos_count", count, 4, 1), 0);
    cr_assert_eq(result_text(r, "protocol", "windows"), 0);
}

static const double depths[3] = {0, 0.5, 1};
static double acc_of(int method, long L, int d) { return method == 0 ? (L <= 512 ? 1.0 : 0.5 * d / 2.0) : 0.25 * d; }

static double key_nll_of(int method, long L, int d) { return 0.5 + method + (double)L / 512 + 0.25 * d; }

static void passkey_result(struct result *r, int method, long L) {
    double acc[3];
    for (int d = 0; d < 3; d++) acc[d] = acc_of(method, L, d);
    cr_assert_eq(result_scalar(r, "accuracy", (acc[0] + acc[1] + acc[2]) / 3), 0);
    cr_assert_eq(result_scalar(r, "trials", 6), 0);
    cr_assert_eq(result_array(r, "depth", depths, 3, 1), 0);
    cr_assert_eq(result_array(r, "accuracy_by_depth", acc, 3, 1), 0);
    double knll[3];
    for (int d = 0; d < 3; d++) knll[d] = key_nll_of(method, L, d);
    cr_assert_eq(result_array(r, "key_nll_by_depth", knll, 3, 1), 0);
    cr_assert_eq(result_text(r, "variant", "yarn"), 0);
}

/* File A: ppl and passkey for baseline and yarn:factor=4 (yarn started first, so it
 * comes first), lengths written out of order, a skipped and a failed ppl cell at
 * 4096, a ppl cell whose perplexity is not finite, a failed passkey cell. No
 * first_sentence cells. */
static const long ppl_lengths[3] = {2048, 512, 1024};   /* the order they are written in */
static const char *const methods[2] = {"baseline", "yarn:factor=4"};

static void write_file_a(const char *path) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    for (int k = 0; k < 3; k++)
        for (int m = 0; m < 2; m++) {
            struct result r = {0};
            ppl_result(&r, m, ppl_lengths[k]);
            struct cell_spec c = {"ppl", methods[m], "max_tokens=4096", ppl_lengths[k], CELL_DONE,
                                  m == 0 ? 2000 + k : 1000 + k, rate_of(m, ppl_lengths[k]), 40 + m + k, NULL};
            put_cell(st, &c, &r);
            result_free(&r);
        }
    put_cell(st, &(struct cell_spec){"ppl", "yarn:factor=4", "max_tokens=4096", 4096, CELL_SKIPPED, 1005, NAN, NAN,
                                     "needs 9 MiB, 1 MiB available"}, NULL);
    put_cell(st, &(struct cell_spec){"ppl", "baseline", "max_tokens=4096", 4096, CELL_FAILED, 2005, NAN, NAN, "boom"},
             NULL);
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, "ppl", INFINITY), 0);
    put_cell(st, &(struct cell_spec){"ppl", "pi", "max_tokens=4096", 512, CELL_DONE, 3000, 5000, 41, NULL}, &r);
    result_free(&r);
    for (int m = 0; m < 2; m++)
        for (long L = 512; L <= 1024; L *= 2) {
            struct cell_spec c = {"passkey", methods[m], "depths=3,trials=2", L, CELL_DONE, m == 0 ? 2100 : 1100,
                                  rate_of(m, L), 50, NULL};
            if (m == 1 && L == 1024) {
                c.status = CELL_FAILED;
                c.error = "decoding failed";
            }
            passkey_result(&r, m, L);
            put_cell(st, &c, &r);
            result_free(&r);
        }
    store_close(st);
}

/* File B: first_sentence only, a method name with a quote and a space. */
static const double rouge_samples[3][3] = {{0.5, 0.25, 1.0}, {0.0, 0.1, 0.2}, {0.3, 0.3, 0.3}};
static const long fs_lengths[3] = {1024, 256, 512};

static void write_file_b(const char *path) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    for (int k = 0; k < 3; k++) {
        struct result r = {0};
        double mean = (rouge_samples[k][0] + rouge_samples[k][1] + rouge_samples[k][2]) / 3;
        cr_assert_eq(result_scalar(&r, "rouge_l", mean), 0);
        cr_assert_eq(result_scalar(&r, "exact_match", k == 2 ? 1 : 0), 0);
        cr_assert_eq(result_array(&r, "rouge_l_by_sample", rouge_samples[k], 3, 1), 0);
        cr_assert_eq(result_text(&r, "prompt", "test prompt"), 0);
        put_cell(st, &(struct cell_spec){"first_sentence", "o'brien x", "samples=3", fs_lengths[k], CELL_DONE, 10 + k,
                                         100, 30, NULL}, &r);
        result_free(&r);
    }
    store_close(st);
}

/* ------------------------------------------------------------------ reading .dat files */

#define MAX_BLOCKS 8
#define MAX_ROWS 64
#define MAX_COLS 12

struct block {
    char name[64];
    char style[96];   /* "# style: ..." after the block's name, without the prefix */
    int n_rows, n_cols;
    double v[MAX_ROWS][MAX_COLS];
};

struct dat {
    int n;
    struct block b[MAX_BLOCKS];
    char header[4096];   /* the comment lines before the first block */
};

/* Parses a figure's data file: blocks start at "# series: NAME", rows are numbers;
 * also checks that blocks are separated by two blank lines (gnuplot's index). */
static void read_dat(const char *dir, const char *name, struct dat *d) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s.dat", dir, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s exists", path);
    memset(d, 0, sizeof *d);
    int blanks = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n') {
            blanks++;
            continue;
        }
        if (strncmp(line, "# series: ", 10) == 0) {
            cr_assert_lt(d->n, MAX_BLOCKS);
            cr_assert_eq(d->n == 0 ? 0 : blanks, d->n == 0 ? 0 : 2, "%s: two blank lines between blocks", name);
            struct block *b = &d->b[d->n++];
            snprintf(b->name, sizeof b->name, "%.*s", (int)strcspn(line + 10, "\n"), line + 10);
        } else if (strncmp(line, "# style: ", 9) == 0 && d->n > 0) {
            snprintf(d->b[d->n - 1].style, sizeof d->b[0].style, "%.*s", (int)strcspn(line + 9, "\n"), line + 9);
        } else if (line[0] == '#') {
            if (d->n == 0) strncat(d->header, line, sizeof d->header - strlen(d->header) - 1);
        } else {
            cr_assert_gt(d->n, 0, "%s: data before the first block", name);
            struct block *b = &d->b[d->n - 1];
            cr_assert_lt(b->n_rows, MAX_ROWS);
            int c = 0;
            char *s = line, *e;
            for (; c < MAX_COLS; c++) {
                double x = strtod(s, &e);
                if (e == s) break;
                b->v[b->n_rows][c] = x;
                s = e;
            }
            if (b->n_rows == 0) b->n_cols = c;
            cr_assert_eq(c, b->n_cols, "%s: every row has the same columns", name);
            b->n_rows++;
        }
        blanks = 0;
    }
    fclose(f);
}

static const struct block *find_block(const struct dat *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->b[i].name, name) == 0) return &d->b[i];
    return NULL;
}

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-8 * fmax(1, fabs(b)); }

static void temp_dir(char *buf, size_t cap) {
    snprintf(buf, cap, "/tmp/ctxbench_plot_XXXXXX");
    cr_assert_not_null(mkdtemp(buf));
}

/* A test's folder: a temporary DIR, DIR/NAME.h5 for its results and DIR/out (made) for
 * the figures; the arrays as every test declares them (64, 128, 128). */
static void workspace(char dir[64], char h5[128], char out[128], const char *name) {
    temp_dir(dir, 64);
    snprintf(h5, 128, "%s/%s.h5", dir, name);
    snprintf(out, 128, "%s/out", dir);
    cr_assert_eq(mkdir(out, 0777), 0);
}

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static bool file_exists(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* ------------------------------------------------------------------ data extraction */

Test(plot, data_files_hold_the_done_cells_in_length_order) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "a");
    write_file_a(h5);
    struct plot_plan plan;
    struct plot_opts o = {.passkey_metric = "accuracy"};
    cr_assert_eq(plot_prepare(h5, out, &o, &plan, err, sizeof err), 0, "%s", err);

    /* figure 1: a block per method in sweep order (yarn ran first), lengths ascending,
     * the skipped/failed 4096 cells and pi's infinite perplexity absent */
    struct dat d;
    read_dat(out, "ppl_vs_length", &d);
    cr_assert_eq(d.n, 2);
    cr_expect_str_eq(d.b[0].name, "yarn:factor=4");
    cr_expect_str_eq(d.b[1].name, "baseline");
    for (int m = 0; m < 2; m++) {
        const struct block *b = find_block(&d, methods[m]);
        cr_assert_not_null(b);
        cr_assert_eq(b->n_rows, 3, "%s: 3 done lengths", methods[m]);
        for (int k = 0; k < 3; k++) {
            long L = 512L << k;
            cr_expect_eq(b->v[k][0], (double)L, "%s row %d: length %ld", methods[m], k, L);
            cr_expect(close_to(b->v[k][1], ppl_of(m, L)), "%s at %ld: ppl %g, wrote %g", methods[m], L, b->v[k][1],
                      ppl_of(m, L));
            cr_expect(close_to(b->v[k][2], log(ppl_of(m, L))));
            cr_expect_eq(b->v[k][3], 4.0 * L);
        }
    }
    cr_expect_null(find_block(&d, "pi"), "a perplexity that is not finite is not drawn on a log axis");
    cr_expect(strstr(d.header, "toy.gguf") && strstr(d.header, "trained context 512"), "header: %s", d.header);
    cr_expect(strstr(d.header, "# columns: length ppl"), "header: %s", d.header);

    /* figure 4a: bins of each method at the longest done length (2048), the empty bin left out */
    read_dat(out, "loss_by_position", &d);
    cr_assert_eq(d.n, 2);
    for (int m = 0; m < 2; m++) {
        const struct block *b = find_block(&d, methods[m]);
        cr_assert_not_null(b);
        cr_assert_eq(b->n_rows, 3, "bins with tokens only");
        static const int bins[3] = {0, 1, 3};
        for (int r = 0; r < 3; r++) {
            int bin = bins[r];
            cr_expect(close_to(b->v[r][0], 2048.0 * (bin + 0.5) / 4), "bin centre %g", b->v[r][0]);
            cr_expect(close_to(b->v[r][1], 2048.0 * bin / 4));
            cr_expect(close_to(b->v[r][2], 2048.0 * (bin + 1) / 4));
            cr_expect(close_to(b->v[r][3], bin_nll(m, 2048, bin)), "%s bin %d nll %g", methods[m], bin, b->v[r][3]);
        }
    }
    /* figure 4b: one block per length; the spec's ':' and '=' are not in the file name */
    read_dat(out, "loss_by_position_yarn_factor_4", &d);
    cr_assert_eq(d.n, 3);
    cr_expect_str_eq(d.b[0].name, "L=512");
    cr_expect_str_eq(d.b[2].name, "L=2048");
    cr_expect(close_to(d.b[0].v[0][3], bin_nll(1, 512, 0)));
    cr_expect(file_exists(out, "loss_by_position_baseline.dat"));

    /* figure 2: (length index, depth index, accuracy, length, depth %); yarn's failed 1024 cell absent */
    read_dat(out, "passkey_heatmap", &d);
    cr_assert_eq(d.n, 2);
    for (int m = 0; m < 2; m++) {
        const struct block *b = find_block(&d, methods[m]);
        cr_assert_not_null(b);
        int n_len = m == 0 ? 2 : 1;
        cr_assert_eq(b->n_rows, 3 * n_len, "%s: %d rows", methods[m], b->n_rows);
        for (int li = 0; li < n_len; li++)
            for (int di = 0; di < 3; di++) {
                const double *row = b->v[li * 3 + di];
                long L = 512L << li;
                cr_expect_eq(row[0], li);
                cr_expect_eq(row[1], di);
                cr_expect(close_to(row[2], acc_of(m, L, di)), "%s L=%ld depth %d: %g", methods[m], L, di, row[2]);
                cr_expect_eq(row[3], (double)L);
                cr_expect(close_to(row[4], 100 * depths[di]));
            }
    }

    /* the keys per cell and, for exact match, each cell's 95% Wilson interval */
    read_dat(out, "passkey_heatmap", &d);
    for (int r = 0; r < d.b[0].n_rows; r++) {
        const double *row = d.b[0].v[r];
        double lo, hi;
        plot_wilson(round(row[2] * 2), 2, &lo, &hi);
        cr_expect(row[5] == 2 && close_to(row[6], lo) && close_to(row[7], hi), "row %d: %g keys [%g, %g]", r, row[5],
                  row[6], row[7]);
    }
    /* figure 2c: the graded measure the results hold (key NLL), not the one they lack */
    read_dat(out, "passkey_heatmap_key_nll", &d);
    cr_assert_eq(d.n, 2);
    for (int m = 0; m < 2; m++) {
        const struct block *b = find_block(&d, methods[m]);
        cr_assert_not_null(b);
        for (int r = 0; r < b->n_rows; r++)
            cr_expect(close_to(b->v[r][2], key_nll_of(m, (long)b->v[r][3], (int)b->v[r][1])), "%s row %d: %g", methods[m],
                      r, b->v[r][2]);
    }
    cr_expect(!file_exists(out, "passkey_heatmap_digit_accuracy.dat"), "no digit accuracy in the results, no heatmap");

    /* figure 5: throughput and peak memory per length */
    read_dat(out, "cost_ppl", &d);
    const struct block *b = find_block(&d, "baseline");
    cr_assert_not_null(b);
    cr_assert_eq(b->n_rows, 3);
    for (int k = 0; k < 3; k++) {
        cr_expect(close_to(b->v[k][1], rate_of(0, 512L << k)));
        cr_expect_gt(b->v[k][2], 39);
    }
    cr_expect_not_null(find_block(&d, "pi"), "pi's cost is known even though its perplexity is not finite");
    /* the rates fall with the length (rate_of): nothing flagged */
    cr_expect(!strstr(plan.notes.s, "throughput rises"), "%s", plan.notes.s);

    /* notes: the left-out cells with their reasons, the absent task */
    const char *notes = plan.notes.s ? plan.notes.s : "";
    cr_expect(strstr(notes, "yarn:factor=4 at length 4096 left out (skipped: needs 9 MiB, 1 MiB available)"), "%s",
              notes);
    cr_expect(strstr(notes, "baseline at length 4096 left out (failed: boom)"), "%s", notes);
    cr_expect(strstr(notes, "passkey: yarn:factor=4 at length 1024 left out (failed"), "%s", notes);
    cr_expect(strstr(notes, "no first_sentence cells"), "%s", notes);
    cr_expect(strstr(notes, "pi@512"), "the infinite perplexity is noted: %s", notes);
    cr_expect(!file_exists(out, "first_sentence_rouge.dat"));

    /* the jobs: one per data file, each naming its script and data */
    cr_expect_eq(plan.n_jobs, 9, "ppl, loss x3, cost_ppl, passkey, passkey_accuracy, passkey key_nll, cost_passkey: got %d",
                 plan.n_jobs);
    bool heat = false;
    for (int i = 0; i < plan.n_jobs; i++) {
        cr_expect(strstr(plan.jobs[i].vars, "data='"), "%s", plan.jobs[i].vars);
        if (strcmp(plan.jobs[i].script, "passkey_heatmap.gp") == 0) {
            heat = true;
            cr_expect(strstr(plan.jobs[i].vars, "trained_x=0.5;"), "the line between 512 and 1k: %s",
                      plan.jobs[i].vars);
            cr_expect(strstr(plan.jobs[i].vars, "series='yarn:factor=4 baseline';"), "%s", plan.jobs[i].vars);
            bool nll = strstr(plan.jobs[i].vars, "metric='key_nll'") != NULL;
            /* the key NLL's colour scale runs to its largest value: yarn at 1024 is absent, baseline's
             * largest is at 1024, yarn's at 512 */
            double top = fmax(key_nll_of(0, 1024, 2), key_nll_of(1, 512, 2));
            char want[64];
            snprintf(want, sizeof want, "cbmax=%.17g;", nll ? top : 1.0);
            cr_expect(strstr(plan.jobs[i].vars, want), "%s: %s", want, plan.jobs[i].vars);
        }
    }
    cr_expect(heat);

    /* short titles; the provenance goes into NAME.caption.txt (and the job's caption) */
    for (int i = 0; i < plan.n_jobs; i++) {
        const char *t = strstr(plan.jobs[i].vars, "title='");
        cr_assert_not_null(t);
        size_t len = strcspn(t + 7, "'");
        cr_expect_lt(len, 60, "a short title: %.*s", (int)len, t + 7);
        cr_expect(plan.jobs[i].caption && strstr(plan.jobs[i].caption, "sha256 abc123"), "%s", plan.jobs[i].caption);
        const char *sub = strstr(plan.jobs[i].vars, "subtitle='");
        cr_expect(sub && strcspn(sub + 10, "'") < 100 && !strstr(plan.jobs[i].vars, "max_tokens=4096'"),
                  "the settings are in the caption, not the title: %s", plan.jobs[i].vars);
    }
    char *cap = test_read_text(strcat(strcpy((char[256]){0}, out), "/ppl_vs_length.caption.txt"));
    cr_assert_not_null(cap);
    cr_expect(strncmp(cap, "Perplexity vs context length.\n", 30) == 0, "%s", cap);
    static const char *const must[] = {"sha256 abc123", "trained context 512", "protocol windows", "max_tokens=4096",
                                       "seed 1", "tinystories", "sha256 feedface", "git revision 0123456789ab",
                                       "backend cpu", "yarn:factor=4: colour #009E73",
                                       "Not plotted (not done): yarn:factor=4@4096 (skipped)", "pi@512 (ppl inf)"};
    for (size_t k = 0; k < sizeof must / sizeof must[0]; k++)
        cr_expect(strstr(cap, must[k]), "caption has '%s': %s", must[k], cap);
    free(cap);
    cr_expect(file_exists(out, "passkey_heatmap.caption.txt") && file_exists(out, "cost_ppl.caption.txt"));
    plot_plan_free(&plan);
    remove_tree(dir);
}

Test(plot, rouge_standard_error_and_quoting) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "b");
    write_file_b(h5);
    struct plot_plan plan;
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    struct dat d;
    read_dat(out, "first_sentence_rouge", &d);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.b[0].name, "o'brien x");
    const struct block *b = &d.b[0];
    cr_assert_eq(b->n_rows, 3);
    static const int order[3] = {1, 2, 0};   /* 256, 512, 1024 */
    for (int r = 0; r < 3; r++) {
        const double *s = rouge_samples[order[r]];
        double mean = (s[0] + s[1] + s[2]) / 3, ss = 0;
        for (int k = 0; k < 3; k++) ss += (s[k] - mean) * (s[k] - mean);
        double se = sqrt(ss / 2) / sqrt(3);   /* sample sd over sqrt(n) */
        cr_expect_eq(b->v[r][0], (double)fs_lengths[order[r]]);
        cr_expect(close_to(b->v[r][1], mean));
        cr_expect(fabs(b->v[r][2] - se) < 1e-8, "row %d: stderr %g, expected %g", r, b->v[r][2], se);
        cr_expect_eq(b->v[r][3], 3);
    }
    const char *notes = plan.notes.s ? plan.notes.s : "";
    cr_expect(strstr(notes, "no ppl cells") && strstr(notes, "no passkey cells"), "%s", notes);
    /* the method's quote is doubled inside gnuplot's single quotes, the space made a word character */
    bool found = false;
    for (int i = 0; i < plan.n_jobs; i++)
        found |= strstr(plan.jobs[i].vars, "series='o''brien_x';") != NULL;
    cr_expect(found);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* Two settings of one task make two groups: the second group's figures get _2. A
 * group whose cells all failed gives no figure, only a note. */
Test(plot, groups_of_one_task_get_numbered_figures) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "g");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    static const char *const settings[2] = {"max_tokens=1000", "max_tokens=2000"};
    for (int s = 0; s < 2; s++)
        for (long L = 512; L <= 1024; L *= 2) {
            struct result r = {0};
            ppl_result(&r, s, L);
            put_cell(st, &(struct cell_spec){"ppl", "baseline", settings[s], L, CELL_DONE, 1, 100, 10, NULL}, &r);
            result_free(&r);
        }
    put_cell(st, &(struct cell_spec){"ppl", "baseline", "max_tokens=3000", 512, CELL_FAILED, 1, NAN, NAN, "x"}, NULL);
    store_close(st);
    struct plot_plan plan;
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    struct dat d1, d2;
    read_dat(out, "ppl_vs_length_1", &d1);
    read_dat(out, "ppl_vs_length_2", &d2);
    cr_assert_eq(d1.n, 1);
    cr_assert_eq(d2.n, 1);
    /* which file holds which settings is in its header; the values follow them */
    const struct dat *first = strstr(d1.header, settings[0]) ? &d1 : &d2;
    const struct dat *second = first == &d1 ? &d2 : &d1;
    cr_expect(strstr(second->header, settings[1]), "%s", second->header);
    cr_expect(close_to(first->b[0].v[1][1], ppl_of(0, 1024)));
    cr_expect(close_to(second->b[0].v[1][1], ppl_of(1, 1024)));
    cr_expect(!file_exists(out, "ppl_vs_length_3.dat"), "the all-failed group draws nothing");
    cr_expect(!file_exists(out, "ppl_vs_length.dat"));
    cr_expect(strstr(plan.notes.s, "no done cells"), "%s", plan.notes.s);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* A method's colour, dash and point shape follow its spec, not the sweep's order:
 * the same methods written in the opposite order get the same style in every figure.
 * Every method ctxbench has gets its own colour and shape; a spec with parameters is
 * told apart from the plain one. */
static void write_methods(const char *path, const char *const *specs, int n) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    for (int m = 0; m < n; m++)
        for (long L = 512; L <= 1024; L *= 2) {
            struct result r = {0};
            ppl_result(&r, m % 2, L);
            put_cell(st, &(struct cell_spec){"ppl", specs[m], "", L, CELL_DONE, 100 * m + (double)L / 512, 100, 10, NULL},
                     &r);
            result_free(&r);
        }
    store_close(st);
}

Test(plot, styles_follow_the_method_not_the_order) {
    static const char *const specs[] = {"yarn", "baseline", "pi:factor=4", "pi", "yarn:factor=8", "newmethod"};
    static const char *const reversed[] = {"newmethod", "yarn:factor=8", "pi", "pi:factor=4", "baseline", "yarn"};
    const int n = 6;
    char dir[64], h5[2][128], out[2][128], err[512];
    temp_dir(dir, sizeof dir);
    struct dat d[2];
    for (int f = 0; f < 2; f++) {
        snprintf(h5[f], sizeof h5[f], "%s/%d.h5", dir, f);
        snprintf(out[f], sizeof out[f], "%s/out%d", dir, f);
        cr_assert_eq(mkdir(out[f], 0777), 0);
        write_methods(h5[f], f == 0 ? specs : reversed, n);
        struct plot_plan plan;
        cr_assert_eq(plot_prepare(h5[f], out[f], NULL, &plan, err, sizeof err), 0, "%s", err);
        /* write_methods gives every other method the same losses: the loss figure says so */
        if (f == 0)
            cr_expect(strstr(plan.notes.s, "loss_by_position: identical losses: pi:factor=4 = yarn (the same curve)"), "%s",
                      plan.notes.s);
        plot_plan_free(&plan);
        read_dat(out[f], "ppl_vs_length", &d[f]);
        cr_assert_eq(d[f].n, n);
        cr_expect_str_eq(d[f].b[0].name, f == 0 ? specs[0] : reversed[0], "the files' orders differ");
    }
    for (int i = 0; i < n; i++) {
        const struct block *a = &d[0].b[i], *b = find_block(&d[1], a->name);
        cr_assert_not_null(b, "%s", a->name);
        cr_expect(strncmp(a->style, "color #", 7) == 0, "%s: style '%s'", a->name, a->style);
        cr_expect_str_eq(a->style, b->style, "%s: the same style in both files", a->name);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(a->style, d[0].b[j].style, "%s and %s look different", a->name, d[0].b[j].name);
    }
    /* the cost figure of the same file draws each method as the ppl figure does */
    struct dat cost;
    read_dat(out[0], "cost_ppl", &cost);
    for (int i = 0; i < n; i++)
        cr_expect_str_eq(find_block(&cost, specs[i])->style, find_block(&d[0], specs[i])->style, "%s", specs[i]);
    remove_tree(dir);

    /* every method ctxbench has: its own colour and its own point shape */
    static const char *const all[] = {"abf", "baseline", "dynamic_ntk", "llama3", "ntk", "pi", "selfextend", "swa", "yarn"};
    struct plot_style st[9];
    for (int i = 0; i < 9; i++) {
        plot_method_style(all[i], &st[i]);
        for (int j = 0; j < i; j++) {
            cr_expect_str_neq(st[i].color, st[j].color, "%s and %s: colours", all[i], all[j]);
            cr_expect_neq(st[i].point, st[j].point, "%s and %s: point shapes", all[i], all[j]);
        }
    }
    struct plot_style plain, given;
    plot_method_style("yarn", &plain);
    plot_method_style("yarn:factor=8", &given);
    cr_expect_str_eq(plain.color, given.color, "a spec keeps its method's colour");
    cr_expect(plain.dash != given.dash && plain.point != given.point, "but another dash and point shape");
}

/* The variables of the one figure job that runs `script` (the test fails unless exactly
 * one does). */
static const char *only_job_vars(const struct plot_plan *plan, const char *script) {
    const char *vars = NULL;
    int found = 0;
    for (int i = 0; i < plan->n_jobs; i++)
        if (strcmp(plan->jobs[i].script, script) == 0) {
            found++;
            vars = plan->jobs[i].vars;
        }
    cr_assert_eq(found, 1, "%d jobs run %s", found, script);
    return vars;
}

/* One configuration per curve. A spec without parameters derives its factor at each
 * length (the legend says "factor L/512"); a spec with one is fixed (the legend and the
 * targets give factor x 512). Curves equal by construction -- dynamic_ntk is ntk at
 * every length, every method is the baseline at 1x -- are drawn side by side and named. */
Test(plot, configurations_and_equal_curves_are_labelled) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "c");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    static const char *const specs[] = {"baseline", "ntk", "dynamic_ntk", "yarn", "pi:factor=4"};
    static const char *const names[] = {"baseline", "ntk", "dynamic_ntk", "yarn", "pi"};
    for (int m = 0; m < 5; m++)
        for (long L = 512; L <= 2048; L *= 2) {
            double factor = m == 4 ? 4 : m == 2 ? 1 : m == 0 ? NAN : (double)L / 512;
            /* at 512 every method but pi:factor=4 has the baseline's perplexity; ntk and
             * dynamic_ntk agree everywhere */
            double ppl = L == 512 && m < 4 ? 5.0 : 5.0 + (double)L / 512 * (m == 2 ? 1 : m + 1) + (m == 4 ? 0.5 : 0);
            if (m == 2) ppl = L == 512 ? 5.0 : 5.0 + (double)L / 512 * 2;
            struct store_attr extra[2] = {{.name = "method_name", .kind = STORE_STR, .s = (char *)names[m]},
                                          {.name = "method.factor", .kind = STORE_F64, .f = factor}};
            struct result r = {0};
            cr_assert_eq(result_scalar(&r, "ppl", ppl), 0);
            put_cell_with(st, &(struct cell_spec){"ppl", specs[m], "", L, CELL_DONE, m, 100, 10, NULL}, &r, extra,
                          m == 0 ? 1 : 2);
            result_free(&r);
        }
    store_close(st);
    struct plot_plan plan;
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    const char *vars = only_job_vars(&plan, "ppl_vs_length.gp");
    cr_expect(strstr(vars, "'yarn (factor L/512)'") && strstr(vars, "'ntk (factor L/512)'"), "%s", vars);
    cr_expect(strstr(vars, "'pi:factor=4 (fixed, target 2k)'"), "%s", vars);
    cr_expect(strstr(vars, "'baseline',") && strstr(vars, "'dynamic_ntk',"), "constant configurations: the name: %s", vars);
    cr_expect(strstr(vars, "targets='-1 -1 -1 -1 2048';"), "%s", vars);
    const char *notes = plan.notes.s ? plan.notes.s : "";
    cr_expect(strstr(notes, "dynamic_ntk = ntk at every length"), "%s", notes);
    cr_expect(strstr(notes, "at 512: baseline = ntk = dynamic_ntk = yarn") && !strstr(notes, "= pi"), "%s", notes);
    cr_expect(strstr(vars, "note2='identical values, drawn side by side: dynamic_ntk = ntk"), "%s", vars);

    struct dat d;
    read_dat(out, "ppl_vs_length", &d);
    cr_assert_eq(d.n, 5);
    const struct block *ntk = find_block(&d, "ntk"), *dyn = find_block(&d, "dynamic_ntk"),
                       *base = find_block(&d, "baseline"), *pi = find_block(&d, "pi:factor=4");
    cr_assert(ntk && dyn && base && pi);
    for (int k = 0; k < 3; k++) {
        cr_expect_eq(ntk->v[k][0], dyn->v[k][0], "the true lengths stay in column 1");
        cr_expect_neq(ntk->v[k][5], dyn->v[k][5], "row %d: equal curves are drawn apart", k);
        cr_expect_lt(fabs(log2(dyn->v[k][5] / dyn->v[k][0])), 0.2, "by a small nudge");
        cr_expect_eq(pi->v[k][5], pi->v[k][0], "a point no other method shares stays at its length");
    }
    cr_expect_neq(base->v[0][5], 512, "at 512 the baseline shares its value");
    cr_expect_eq(base->v[1][5], 1024);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* Wilson score intervals against published values (Newcombe, Stat Med 17:857, 1998,
 * table I: 95% intervals; and 0 of n: upper z^2 / (n + z^2)). */
Test(plot, wilson_intervals_match_published_values) {
    static const struct {
        double k, n, lo, hi;
    } cases[] = {
        {81, 263, 0.2553, 0.3662},     /* Newcombe's example 1 */
        {15, 148, 0.0624, 0.1605},     /* example 2 */
        {0, 20, 0.0, 0.1611},          /* example 3 */
        {1, 29, 0.0061, 0.1718},       /* example 4 */
        {5, 10, 0.2366, 0.7634},
        {0, 8, 0.0, 3.8414588 / (8 + 3.8414588)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double lo, hi;
        plot_wilson(cases[i].k, cases[i].n, &lo, &hi);
        cr_expect(fabs(lo - cases[i].lo) < 6e-5 && fabs(hi - cases[i].hi) < 6e-5, "%g/%g: [%.5f, %.5f], expected [%.4f, %.4f]",
                  cases[i].k, cases[i].n, lo, hi, cases[i].lo, cases[i].hi);
    }
    double lo, hi;
    plot_wilson(8, 8, &lo, &hi);
    cr_expect_eq(hi, 1.0);
    plot_wilson(1, 0, &lo, &hi);
    cr_expect(isnan(lo) && isnan(hi), "no trials: no interval");
}

/* Passkey accuracy per length with its Wilson interval and n; the sample size is on
 * the figure, and a small one is called small. */
Test(plot, passkey_accuracy_has_wilson_intervals_and_n) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "a");
    write_file_a(h5);
    struct plot_plan plan;
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    struct dat d;
    read_dat(out, "passkey_accuracy", &d);
    const struct block *b = find_block(&d, "baseline");
    cr_assert_not_null(b);
    cr_assert_eq(b->n_rows, 2);
    for (int r = 0; r < 2; r++) {
        long L = 512L << r;
        double acc = (acc_of(0, L, 0) + acc_of(0, L, 1) + acc_of(0, L, 2)) / 3, lo, hi;
        cr_expect_eq(b->v[r][0], (double)L);
        cr_expect(close_to(b->v[r][1], acc));
        plot_wilson(round(acc * 6), 6, &lo, &hi);
        cr_expect(close_to(b->v[r][2], lo) && close_to(b->v[r][3], hi), "row %d: [%g, %g]", r, b->v[r][2], b->v[r][3]);
        cr_expect_lt(b->v[r][2], acc + 1e-12);
        cr_expect_gt(b->v[r][3], acc - 1e-12);
        cr_expect_eq(b->v[r][4], 6, "n = the cell's trials");
    }
    const char *vars = only_job_vars(&plan, "passkey_accuracy.gp");
    cr_expect(strstr(vars, "nlabel='n = 6 keys per point';"), "%s", vars);
    cr_expect(strstr(vars, "note2='only n = 6 keys per point: the 95% Wilson intervals are wide';"), "%s", vars);
    plot_plan_free(&plan);

    /* first-sentence retrieval: n = 3 samples, called few; exact match with its interval */
    snprintf(h5, sizeof h5, "%s/b.h5", dir);
    write_file_b(h5);
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    read_dat(out, "first_sentence_rouge", &d);
    cr_assert_eq(d.b[0].n_cols, 7);
    double lo, hi;
    plot_wilson(3, 3, &lo, &hi);   /* the 512 cell: exact_match 1 over 3 samples */
    cr_expect(close_to(d.b[0].v[1][5], lo) && close_to(d.b[0].v[1][6], 1.0), "%g %g", d.b[0].v[1][5], d.b[0].v[1][6]);
    cr_expect(strstr(plan.jobs[0].vars, "nlabel='n = 3 samples per point';") &&
                  strstr(plan.jobs[0].vars, "note2='only n = 3 samples"),
              "%s", plan.jobs[0].vars);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* Work per token grows with the context: a throughput that rises with the length is
 * flagged as disturbed timings (the results hold no load average to say more). The
 * loss figures take a log position axis on request. */
Test(plot, rising_throughput_is_flagged_and_loss_takes_log_x) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "r");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    static const double rates[2][3] = {{1000, 900, 800}, {500, 1000, 400}};   /* yarn: 512 -> 1k rises */
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 3; k++) {
            struct result r = {0};
            ppl_result(&r, m, 512L << k);
            put_cell(st, &(struct cell_spec){"ppl", methods[m], "", 512L << k, CELL_DONE, m, rates[m][k], 10, NULL}, &r);
            result_free(&r);
        }
    store_close(st);
    struct plot_plan plan;
    struct plot_opts o = {.passkey_metric = "accuracy", .loss_logx = true};
    cr_assert_eq(plot_prepare(h5, out, &o, &plan, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(plan.notes.s, "cost_ppl: throughput rises with the length") &&
                  strstr(plan.notes.s, "yarn:factor=4 512->1k (500->1000 tokens/s)") && !strstr(plan.notes.s, "baseline 512"),
              "%s", plan.notes.s);
    int loss = 0;
    for (int i = 0; i < plan.n_jobs; i++) {
        if (strcmp(plan.jobs[i].script, "cost_vs_length.gp") == 0)
            cr_expect(strstr(plan.jobs[i].vars, "note2='tokens/s rises with length"), "%s", plan.jobs[i].vars);
        if (strcmp(plan.jobs[i].script, "loss_by_position.gp") == 0) {
            loss++;
            cr_expect(strstr(plan.jobs[i].vars, "logx=1;"), "%s", plan.jobs[i].vars);
        }
    }
    cr_expect_eq(loss, 3);
    char *cap = test_read_text(strcat(strcpy((char[256]){0}, out), "/cost_ppl.caption.txt"));
    cr_expect(cap && strstr(cap, "timings were disturbed"), "%s", cap);
    cr_expect(cap && !strstr(cap, "shared machine"), "no load recorded, no judgement: %s", cap);
    free(cap);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* A cell timed while the load average exceeded its own threads says so on its cost figure;
 * a cell alone on the machine (load = its 2 threads) does not. */
Test(plot, cost_names_a_shared_machine_from_the_load_average) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "r");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    static const double loads[3] = {2.0, 2.3, 5.5};   /* threads 2: only the last had company (3.5 more) */
    for (int k = 0; k < 3; k++) {
        struct result r = {0};
        ppl_result(&r, 0, 512L << k);
        struct store_attr load[] = {{.name = "load_avg_start", .kind = STORE_F64, .f = loads[k]},
                                    {.name = "load_avg_end", .kind = STORE_F64, .f = 2.0}};
        put_cell_with(st, &(struct cell_spec){"ppl", methods[0], "", 512L << k, CELL_DONE, k, 1000 - k, 10, NULL}, &r,
                      load, 2);
        result_free(&r);
    }
    store_close(st);
    struct plot_plan plan;
    struct plot_opts o = {.passkey_metric = "accuracy"};
    cr_assert_eq(plot_prepare(h5, out, &o, &plan, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(plan.notes.s, "cost_ppl: measured on a shared machine: in 1 of 3 cells the load average exceeded "
                                   "the cell's own threads by up to 3.5"), "%s", plan.notes.s);
    const char *vars = only_job_vars(&plan, "cost_vs_length.gp");
    cr_expect(strstr(vars, "note3='measured on a shared machine"), "%s", vars);
    char *dat = test_read_text(strcat(strcpy((char[256]){0}, out), "/cost_ppl.dat"));
    cr_expect(dat && strstr(dat, " 5.5 2 "), "the loads are in the figure's data: %s", dat);
    free(dat);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* The cost figure's throughput is the median over a cell's forward passes (its windows),
 * with the slowest and fastest as bars and n beside them; a cell without per-window
 * timings (an older results file) shows its overall rate, n = 0, and no spread. */
Test(plot, cost_shows_the_spread_over_repeated_forward_passes) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "r");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    /* 512: five windows, one NAN (a pass too short to time) left out -> median of 4 */
    static const double rates512[5] = {900, 1100, NAN, 700, 1300};
    static const double rates1k[3] = {500, 400, 450};
    for (int k = 0; k < 3; k++) {
        struct result r = {0};
        ppl_result(&r, 0, 512L << k);
        if (k == 0) cr_assert_eq(result_array(&r, "timing_tokens_per_s", rates512, 5, 1), 0);
        if (k == 1) cr_assert_eq(result_array(&r, "timing_tokens_per_s", rates1k, 3, 1), 0);
        put_cell(st, &(struct cell_spec){"ppl", methods[0], "", 512L << k, CELL_DONE, k, 250, 10, NULL}, &r);
        result_free(&r);
    }
    store_close(st);
    struct plot_plan plan;
    struct plot_opts o = {.passkey_metric = "accuracy"};
    cr_assert_eq(plot_prepare(h5, out, &o, &plan, err, sizeof err), 0, "%s", err);
    struct dat d;
    read_dat(out, "cost_ppl", &d);
    const struct block *b = find_block(&d, "baseline");
    cr_assert_not_null(b);
    cr_assert_eq(b->n_cols, 11);
    cr_assert_eq(b->n_rows, 3);
    /* columns 8-11 (0-based 7-10): median, min, max, n */
    cr_expect(close_to(b->v[0][7], 1000) && close_to(b->v[0][8], 700) && close_to(b->v[0][9], 1300) &&
                  b->v[0][10] == 4, "%g %g %g %g", b->v[0][7], b->v[0][8], b->v[0][9], b->v[0][10]);
    cr_expect(close_to(b->v[1][7], 450) && close_to(b->v[1][8], 400) && close_to(b->v[1][9], 500) &&
                  b->v[1][10] == 3);
    cr_expect(close_to(b->v[2][7], 250) && close_to(b->v[2][8], 250) && close_to(b->v[2][9], 250) &&
                  b->v[2][10] == 0, "no timings: the cell's rate, n 0");
    const char *vars = only_job_vars(&plan, "cost_vs_length.gp");
    cr_expect(strstr(vars, "nlabel='median of n = 0-4 forward passes per point, bars min-max'"), "%s", vars);
    char *cap = test_read_text(strcat(strcpy((char[256]){0}, out), "/cost_ppl.caption.txt"));
    cr_expect(cap && strstr(cap, "(a point with n < 2 has no spread to show)"), "%s", cap);
    free(cap);
    plot_plan_free(&plan);
    remove_tree(dir);
}

/* Identical ROUGE-L values of two methods are named in the caption and notes. */
Test(plot, identical_rouge_is_named) {
    char dir[64], h5[128], out[128], err[512];
    workspace(dir, h5, out, "f");
    struct store *st = store_open(h5, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    static const char *const specs[2] = {"baseline", "yarn"};
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2; k++) {
            struct result r = {0};
            double v = k == 0 ? 0.25 : 0.5 + 0.25 * m;   /* equal at 512 only */
            cr_assert_eq(result_scalar(&r, "rouge_l", v), 0);
            cr_assert_eq(result_scalar(&r, "samples", 1), 0);
            put_cell(st, &(struct cell_spec){"first_sentence", specs[m], "", 512L << k, CELL_DONE, m, 100, 10, NULL}, &r);
            result_free(&r);
        }
    store_close(st);
    struct plot_plan plan;
    cr_assert_eq(plot_prepare(h5, out, NULL, &plan, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(plan.notes.s, "identical ROUGE-L (drawn side by side): at 512: baseline = yarn") &&
                  !strstr(plan.notes.s, "at 1k"),
              "%s", plan.notes.s);
    char *cap = test_read_text(strcat(strcpy((char[256]){0}, out), "/first_sentence_rouge.caption.txt"));
    cr_expect(cap && strstr(cap, "at 512: baseline = yarn"), "%s", cap);
    free(cap);
    plot_plan_free(&plan);
    remove_tree(dir);
}

Test(plot, bad_inputs_give_errors) {
    char err[512], dir[64], path[128];
    struct plot_plan plan;
    temp_dir(dir, sizeof dir);
    cr_expect_neq(plot_prepare("/nonexistent/x.h5", dir, NULL, &plan, err, sizeof err), 0);
    cr_expect_gt(strlen(err), 0);
    snprintf(path, sizeof path, "%s/junk.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5", f);
    fclose(f);
    cr_expect_neq(plot_prepare(path, dir, NULL, &plan, err, sizeof err), 0);
    struct plot_opts o = {.passkey_metric = "key_nll"};
    cr_expect_neq(plot_prepare(path, dir, &o, &plan, err, sizeof err), 0);
    cr_expect(strstr(err, "key_nll"), "%s", err);
    remove_tree(dir);
}

/* ------------------------------------------------------------------ the command, with gnuplot */

/* Runs `ctxbench plot ARGS`; returns the exit status (-1: crashed), the output in out. */
static int run_plot(const char *args, char *out, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "plot %s", args);
    return ctxbench_run(full, out, cap);
}

static bool gnuplot_present(void) { return system("gnuplot --version >/dev/null 2>&1") == 0; }

static void expect_figure(const char *dir, const char *name) {
    char path[512];
    unsigned char head[8] = {0};
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s was drawn", path);
    size_t n = fread(head, 1, 8, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_expect(n == 8 && memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is a PNG", path);
    cr_expect_gt(size, 2000, "%s has content (%ld bytes)", path, size);
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s was drawn", path);
    char text[4096];
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_expect(strstr(text, "<svg"), "%s is an SVG", path);
}

Test(plot, command_draws_png_and_svg, .timeout = 60) {
    char dir[64], a[128], bfile[128], out[128], args[512], text[16384];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(bfile, sizeof bfile, "%s/b.h5", dir);
    snprintf(out, sizeof out, "%s/figs/a", dir);
    write_file_a(a);
    write_file_b(bfile);

    /* gnuplot missing: a clear error, the data files still written */
    snprintf(args, sizeof args, "%s -o %s --gnuplot /nonexistent/gnuplot", a, out);
    cr_expect_eq(run_plot(args, text, sizeof text), 1, "%s", text);
    cr_expect(strstr(text, "/nonexistent/gnuplot not found"), "%s", text);
    cr_expect(file_exists(out, "ppl_vs_length.dat"));

    /* an unreadable results file: one line, status 1 */
    snprintf(args, sizeof args, "%s/none.h5 -o %s", dir, out);
    cr_expect_eq(run_plot(args, text, sizeof text), 1, "%s", text);
    cr_expect(strstr(text, "cannot read") && strchr(text, '\n') == text + strlen(text) - 1, "%s", text);
    cr_expect_eq(run_plot("--passkey-metric nope x.h5", text, sizeof text), 2, "%s", text);

    if (!gnuplot_present()) {
        cr_log_warn("gnuplot is not installed: figures not checked (Debian: apt-get install gnuplot-nox)");
        remove_tree(dir);
        return;
    }
    snprintf(args, sizeof args, "%s -o %s", a, out);
    cr_assert_eq(run_plot(args, text, sizeof text), 0, "%s", text);
    cr_expect(strstr(text, "9 of 9 figures drawn"), "%s", text);
    cr_expect(strstr(text, "note: ppl: yarn:factor=4 at length 4096 left out"), "%s", text);
    cr_expect(!strstr(text, "arning"), "gnuplot is quiet: %s", text);
    static const char *const figs[] = {"ppl_vs_length", "loss_by_position", "loss_by_position_yarn_factor_4",
                                       "loss_by_position_baseline", "passkey_heatmap", "passkey_accuracy",
                                       "passkey_heatmap_key_nll", "cost_ppl", "cost_passkey"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) expect_figure(out, figs[i]);
    cr_expect(file_exists(out, "notes.txt"));
    /* the SVG carries the caption: its <title> is the figure's, its <desc> the provenance */
    char svg_path[256];
    snprintf(svg_path, sizeof svg_path, "%s/ppl_vs_length.svg", out);
    char *svg = test_read_text(svg_path);
    cr_assert_not_null(svg);
    cr_expect(strstr(svg, "<title>Perplexity vs context length.</title>"), "%.400s", svg);
    const char *desc = strstr(svg, "<desc>");
    cr_expect(desc && strstr(desc, "sha256 abc123") && strstr(desc, "git revision 0123456789ab") &&
                  strstr(desc, "</desc>") > strstr(desc, "sha256 abc123"),
              "%.2000s", svg);
    free(svg);

    /* a method name with a quote and a space reaches gnuplot intact */
    snprintf(out, sizeof out, "%s/figs/b", dir);
    snprintf(args, sizeof args, "%s -o %s", bfile, out);
    cr_assert_eq(run_plot(args, text, sizeof text), 0, "%s", text);
    expect_figure(out, "first_sentence_rouge");
    expect_figure(out, "cost_first_sentence");
    remove_tree(dir);
}

/* ------------------------------------------------------------------ failures leave whole files */

static void write_text_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

Test(plot, gnuplot_failures_name_the_real_status, .timeout = 60) {
    char dir[64], a[128], out[128], fake[128], args[512], text[16384], png[192];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(out, sizeof out, "%s/figs", dir);
    snprintf(fake, sizeof fake, "%s/fake-gnuplot", dir);
    snprintf(png, sizeof png, "%s/ppl_vs_length.png", out);
    write_file_a(a);
    cr_assert_eq(mkdir(out, 0755), 0);
    write_text_file(png, "previous figure\n", 0644);
    /* a gnuplot that answers --version and then fails in a given way */
    static const struct {
        const char *body, *says;
    } fakes[] = {
        {"kill -SEGV $$", "killed by signal 11 (Segmentation fault)"},
        {"exit 0", "exited with status 0 but wrote nothing"},
        {"exit 3", "exited with status 3"},
    };
    for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++) {
        char script[256];
        snprintf(script, sizeof script, "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\n%s\n", fakes[i].body);
        write_text_file(fake, script, 0755);
        snprintf(args, sizeof args, "%s -o %s --gnuplot %s", a, out, fake);
        cr_expect_eq(run_plot(args, text, sizeof text), 1, "%s", text);
        cr_expect(strstr(text, fakes[i].says), "case %zu says '%s': %s", i, fakes[i].says, text);
        cr_expect(!strstr(text, "exit status"), "case %zu: %s", i, text);
        cr_expect_eq(test_count_tmp(out), 0, "case %zu: no temporary figure left", i);
        char *kept = test_read_text(png);
        cr_expect_str_eq(kept, "previous figure\n", "case %zu: the previous figure stays whole", i);
        free(kept);
    }
    remove_tree(dir);
}

/* Every file in dir is either its previous text or its complete new content. */
struct snapshot {
    int n;
    char name[32][64];
    char *text[32];
};

static void snapshot(const char *dir, struct snapshot *s) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        cr_assert_lt(s->n, 32);
        char path[512];
        cr_assert_lt(strlen(e->d_name), sizeof s->name[0]);
        memcpy(s->name[s->n], e->d_name, strlen(e->d_name) + 1);
        snprintf(path, sizeof path, "%s/%s", dir, s->name[s->n]);
        s->text[s->n++] = test_read_text(path);
    }
    closedir(d);
}

static void snapshot_free(struct snapshot *s) {
    for (int i = 0; i < s->n; i++) free(s->text[i]);
}

Test(plot, failed_data_write_leaves_whole_files, .timeout = 60) {
    char dir[64], a[128], out[128], errp[160], path[256];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(out, sizeof out, "%s/figs", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    write_file_a(a);
    const char *const args[] = {"plot", a, "-o", out, "--data-only", NULL};
    cr_assert_eq(test_wait_status(ctxbench_spawn_limited(args, errp, true, RLIM_INFINITY)), 0);
    struct snapshot full, after;
    snapshot(out, &full);
    cr_assert_gt(full.n, 3);
    for (int i = 0; i < full.n; i++) {
        snprintf(path, sizeof path, "%s/%s", out, full.name[i]);
        write_text_file(path, "previous\n", 0644);
    }
    /* ulimit -f: the data files with their headers do not fit in 400 bytes */
    int status = test_wait_status(ctxbench_spawn_limited(args, errp, true, 400));
    char *text = test_read_text(errp);
    cr_expect_eq(status, 1, "a write past the size limit is an error, not SIGXFSZ (status %d): %s", status, text);
    cr_expect(strstr(text, "File too large"), "%s", text);
    free(text);
    cr_expect_eq(test_count_tmp(out), 0, "no temporary file left");
    snapshot(out, &after);
    cr_expect_eq(after.n, full.n);
    for (int i = 0; i < after.n; i++) {
        const char *whole = NULL;
        for (int j = 0; j < full.n; j++)
            if (strcmp(full.name[j], after.name[i]) == 0) whole = full.text[j];
        cr_expect(strcmp(after.text[i], "previous\n") == 0 || (whole && strcmp(after.text[i], whole) == 0),
                  "%s is whole: '%.60s'", after.name[i], after.text[i]);
    }
    snapshot_free(&full);
    snapshot_free(&after);
    remove_tree(dir);
}

/* The perplexity interval: none below 2 windows, a point when every window is the same,
 * and for 400 windows of equal size the normal-theory interval exp(mean +- 1.96 sd/sqrt(n))
 * of the token mean (computed here in double), which the bootstrap must approach. The
 * mean of window means is checked the same way with windows of unequal size. */
Test(plot, ppl_bootstrap_interval_matches_normal_theory) {
    double lo, hi;
    double one[1] = {10}, one_n[1] = {5};
    plot_ppl_bootstrap(one, one_n, 1, false, &lo, &hi);
    cr_expect(isnan(lo) && isnan(hi));
    double same[5] = {6, 6, 6, 6, 6}, same_n[5] = {4, 4, 4, 4, 4};
    plot_ppl_bootstrap(same, same_n, 5, false, &lo, &hi);
    cr_expect(fabs(lo - exp(1.5)) < 1e-12 && fabs(hi - exp(1.5)) < 1e-12, "%g %g", lo, hi);
    enum { N = 400 };
    double nll[N], scored[N], sum = 0, sum2 = 0;
    unsigned long long s = 12345;
    for (int w = 0; w < N; w++) {
        double mean_w = 2.0 + 0.8 * test_rng_uniform(&s);   /* each window's mean NLL */
        scored[w] = 100;
        nll[w] = mean_w * scored[w];
        sum += mean_w;
        sum2 += mean_w * mean_w;
    }
    double mean = sum / N, sd = sqrt((sum2 - N * mean * mean) / (N - 1)), se = sd / sqrt((double)N);
    plot_ppl_bootstrap(nll, scored, N, false, &lo, &hi);
    cr_expect(fabs(log(lo) - (mean - 1.96 * se)) < 0.15 * 1.96 * se && fabs(log(hi) - (mean + 1.96 * se)) < 0.15 * 1.96 * se,
              "token mean: [%g, %g] vs normal [%g, %g]", lo, hi, exp(mean - 1.96 * se), exp(mean + 1.96 * se));
    for (int w = 0; w < N; w++) {   /* unequal windows: the mean of window means ignores their size */
        scored[w] = 10 + w % 7 * 30;
        nll[w] = nll[w] / 100 * scored[w];
    }
    plot_ppl_bootstrap(nll, scored, N, true, &lo, &hi);
    cr_expect(fabs(log(lo) - (mean - 1.96 * se)) < 0.15 * 1.96 * se && fabs(log(hi) - (mean + 1.96 * se)) < 0.15 * 1.96 * se,
              "mean of window means: [%g, %g] vs normal [%g, %g]", lo, hi, exp(mean - 1.96 * se), exp(mean + 1.96 * se));
}
