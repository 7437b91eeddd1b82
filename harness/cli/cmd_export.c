/* ctxbench export: a results file as CSV (libcsv quoting), long or wide. */
#include <csv.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "store.h"
#include "store_json.h"

static const char *help =
    "usage: ctxbench export RESULTS.h5 [-o OUT.csv] [--wide | --json [--log-samples]]\n"
    "Writes the cells of a results file as CSV (RFC 4180 quoting; numbers exact, shortest form).\n"
    "Long form (default): one row per cell and result scalar:\n"
    "  cell,model,model_sha256,method,task,task_settings,data,length,seed,status,metric,value,\n"
    "  error,wall_s,tokens_per_s,peak_rss_mib,method_params,git_rev,cache_type_k,cache_type_v\n"
    "  a skipped or failed cell has one row with empty metric and value and the reason in error;\n"
    "  method_params = every method parameter as used, defaults and derived values filled in\n"
    "  (\"factor=16,beta_fast=32,...\"); cache_type_k/v = the KV cache types (f32 for cells\n"
    "  written before they were recorded).\n"
    "Wide form (--wide): one row per cell, the same leading columns (no metric/value), then\n"
    "  error,wall_s,tokens_per_s,peak_rss_mib,method_params,git_rev,cache_type_k,cache_type_v and\n"
    "  one column per result\n"
    "  scalar name (empty where a cell lacks it).\n"
    "Rows are sorted by method, task, then length (numerically).\n"
    "JSON (--json): one document, every cell with its configuration, provenance, metrics and\n"
    "  texts (schema: results/results.schema.json); --log-samples adds each cell's per-sample\n"
    "  records (prompt id, expected, generated, score) where its task wrote them.\n"
    "  -o, --out FILE   output file (default, or -: stdout); written beside FILE and renamed into place,\n"
    "                   never the results file itself\n";

static const char *const key_cols[] = {"cell", "model", "model_sha256", "method", "task", "task_settings",
                                       "data", "length", "seed", "status"};
#define N_KEY_COLS (int)(sizeof key_cols / sizeof key_cols[0])

static void put_text(FILE *f, const char *s, bool first) {
    if (!first) fputc(',', f);
    csv_fwrite(f, s, strlen(s));
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double. */
static void put_num(FILE *f, double v) {
    if (isnan(v)) {
        fputs(",nan", f);
        return;
    }
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fprintf(f, ",%s", buf);
}

/* A numeric provenance attribute, bare; empty when the cell has none. */
static void put_attr_num(FILE *f, const struct store_cell *c, const char *name) {
    const struct store_attr *a = store_cell_attr(c, name);
    if (a && a->kind == STORE_F64) put_num(f, a->f);
    else if (a && a->kind == STORE_I64) fprintf(f, ",%lld", (long long)a->i);
    else fputc(',', f);
}

/* The key columns: texts quoted, numbers (length, seed) bare as results/README.md says. */
static void put_key(FILE *f, const struct store_cell *c) {
    put_text(f, c->id, true);
    for (int k = 1; k < N_KEY_COLS - 1; k++) {
        const struct store_attr *a = store_cell_attr(c, key_cols[k]);
        if (a && a->kind != STORE_STR) put_attr_num(f, c, key_cols[k]);
        else put_text(f, a && a->s ? a->s : "", false);
    }
    put_text(f, cell_status_name(c->status), false);
}

/* The method.<param> attributes (the parameters as used) as "k=v,k=v", in the order the
 * sweep wrote them, numbers in the shortest exact form; "" when the cell has none. */
static void put_method_params(FILE *f, const struct store_cell *c) {
    char text[1024];
    size_t at = 0;
    text[0] = '\0';
    for (int k = 0; k < c->n_attrs && at < sizeof text; k++) {
        const struct store_attr *a = &c->attrs[k];
        if (strncmp(a->name, "method.", 7) != 0 || a->kind == STORE_STR) continue;
        char num[40];
        if (a->kind == STORE_I64) snprintf(num, sizeof num, "%lld", (long long)a->i);
        else if (isnan(a->f)) snprintf(num, sizeof num, "nan");
        else
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(num, sizeof num, "%.*g", digits, a->f);
                if (strtod(num, NULL) == a->f) break;
            }
        at += (size_t)snprintf(text + at, sizeof text - at, "%s%s=%s", at ? "," : "", a->name + 7, num);
    }
    put_text(f, text, false);
}

/* The columns after error in both forms: timings, memory, the method as used, the build. */
static void put_provenance(FILE *f, const struct store_cell *c) {
    char buf[64];
    put_attr_num(f, c, "wall_s");
    put_attr_num(f, c, "tokens_per_s");
    put_attr_num(f, c, "peak_rss_mib");
    put_method_params(f, c);
    put_text(f, store_attr_text(c, "git_rev", buf, sizeof buf), false);
    /* cells written before cache types were recorded ran with f32 caches */
    put_text(f, store_cell_attr(c, "cache_type_k") ? store_attr_text(c, "cache_type_k", buf, sizeof buf) : "f32", false);
    put_text(f, store_cell_attr(c, "cache_type_v") ? store_attr_text(c, "cache_type_v", buf, sizeof buf) : "f32", false);
}

static void header(FILE *f, const char *const *extra, int n_extra) {
    for (int k = 0; k < N_KEY_COLS; k++) put_text(f, key_cols[k], k == 0);
    for (int k = 0; k < n_extra; k++) put_text(f, extra[k], false);
}

static void header_more(FILE *f, const char *const *cols, int n) {
    for (int k = 0; k < n; k++) put_text(f, cols[k], false);
}

static const char *const provenance_cols[] = {"wall_s", "tokens_per_s", "peak_rss_mib", "method_params",
                                              "git_rev", "cache_type_k", "cache_type_v"};
#define N_PROVENANCE_COLS (int)(sizeof provenance_cols / sizeof provenance_cols[0])

static void write_long(FILE *f, const struct store_cell *const *cells, int n) {
    static const char *const extra[] = {"metric", "value", "error"};
    header(f, extra, 3);
    header_more(f, provenance_cols, N_PROVENANCE_COLS);
    fputs("\r\n", f);
    char buf[64];
    for (int i = 0; i < n; i++) {
        const struct store_cell *c = cells[i];
        int rows = 0;
        for (int j = 0; j <= c->res.n; j++) {
            const struct result_item *it = j < c->res.n ? &c->res.items[j] : NULL;
            if (it && it->kind != RESULT_SCALAR) continue;
            if (!it && rows > 0) break;   /* the empty row is only for cells without scalars */
            put_key(f, c);
            put_text(f, it ? it->name : "", false);
            if (it) put_num(f, it->value);
            else fputc(',', f);
            put_text(f, store_attr_text(c, "error", buf, sizeof buf), false);
            put_provenance(f, c);
            fputs("\r\n", f);
            rows++;
        }
    }
}

static int write_wide(FILE *f, const struct store_cell *const *cells, int n) {
    /* the union of scalar names, in first-seen order */
    int cap = 0, n_names = 0;
    for (int i = 0; i < n; i++) cap += cells[i]->res.n;
    const char **names = malloc((size_t)(cap ? cap : 1) * sizeof *names);
    if (!names) return -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cells[i]->res.n; j++) {
            const struct result_item *it = &cells[i]->res.items[j];
            if (it->kind != RESULT_SCALAR) continue;
            int k = 0;
            while (k < n_names && strcmp(names[k], it->name) != 0) k++;
            if (k == n_names) names[n_names++] = it->name;
        }
    static const char *const extra[] = {"error"};
    header(f, extra, 1);
    header_more(f, provenance_cols, N_PROVENANCE_COLS);
    for (int k = 0; k < n_names; k++) put_text(f, names[k], false);
    fputs("\r\n", f);
    char buf[64];
    for (int i = 0; i < n; i++) {
        const struct store_cell *c = cells[i];
        put_key(f, c);
        put_text(f, store_attr_text(c, "error", buf, sizeof buf), false);
        put_provenance(f, c);
        for (int k = 0; k < n_names; k++) {
            const struct result_item *it = result_find(&c->res, names[k]);
            if (it && it->kind == RESULT_SCALAR) put_num(f, it->value);
            else fputc(',', f);
        }
        fputs("\r\n", f);
    }
    free(names);
    return 0;
}

int cmd_export(int argc, char **argv) {
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'}, {"wide", no_argument, 0, 1001}, {"json", no_argument, 0, 1002},
        {"log-samples", no_argument, 0, 1003}, {"help", no_argument, 0, 'h'}, {0}};
    const char *out = NULL;
    bool wide = false, json = false, samples = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        if (opt == 'o') out = strcmp(optarg, "-") == 0 ? NULL : optarg;   /* -o - : standard output */
        else if (opt == 1001) wide = true;
        else if (opt == 1002) json = true;
        else if (opt == 1003) samples = true;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if ((wide && json) || (samples && !json)) {
        fprintf(stderr, "ctxbench: %s\n", wide && json ? "--wide and --json exclude each other"
                                                        : "--log-samples needs --json (CSV holds no per-sample records)");
        return 2;
    }
    /* The output is checked before anything is read: it must not be the results file
     * (by any path), and it is written beside its destination and renamed into place. */
    const char *input = optind == argc - 1 ? argv[optind] : NULL;
    char err[1024];
    struct atomic_file af = {0};
    FILE *f = stdout;
    if (input && out && atomic_file_open(&af, out, input, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    if (input && !out && check_fd_not_input(STDOUT_FILENO, "standard output", input, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    if (out) f = af.f;
    struct store_cell *cells;
    int n;
    int status;
    if (json && input) {   /* the per-sample scores are arrays: read them too */
        store_settle(input);   /* a killed writer's journal, folded when nobody writes the file */
        status = store_read(input, samples, &cells, &n, err, sizeof err) == 0 ? 0 : 1;
        if (status) fprintf(stderr, "ctxbench: %s\n", err);
    } else {
        status = cli_read_results(argc, argv, help, &cells, &n);
    }
    if (status != 0) {
        atomic_file_discard(&af);
        return status;
    }
    int rc = 0;
    const struct store_cell **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (order) {
        for (int i = 0; i < n; i++) order[i] = &cells[i];
        qsort(order, (size_t)n, sizeof *order, store_cell_order);
        if (json) rc = store_write_json(f, cells, n, input, samples);
        else if (wide) rc = write_wide(f, order, n);
        else write_long(f, order, n);
    } else {
        rc = -1;
    }
    free(order);
    store_cells_free(cells, n);
    if (rc != 0) {
        fprintf(stderr, "ctxbench: out of memory\n");
        atomic_file_discard(&af);
        return 1;
    }
    if (out) {
        if (atomic_file_commit(&af, err, sizeof err) != 0) {
            fprintf(stderr, "ctxbench: %s\n", err);
            return 1;
        }
    } else if (ferror(f) || fflush(f) != 0) {
        fprintf(stderr, "ctxbench: error writing standard output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
