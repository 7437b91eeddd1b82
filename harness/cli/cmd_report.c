/* ctxbench report: Markdown tables, method x length, of each task's headline metric. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "input.h"
#include "store.h"

static const char *help =
    "usage: ctxbench report RESULTS.h5 [--task NAME[,NAME...]] [--metric NAME]\n"
    "Prints one Markdown table per (model, task, settings, data, seed): a row per method, a\n"
    "column per length, each entry the cell's headline metric (the first scalar its task\n"
    "reported, named in the table title) or --metric NAME. 'skip' = skipped (not enough\n"
    "memory), 'fail' = failed (reasons listed below the table), empty = not run.\n"
    "Every number of a column has the same decimals: 4 significant digits of the column's\n"
    "smallest nonzero magnitude (at most 6 decimals).\n"
    "  --task NAMES   only the tables of these tasks\n"
    "  --metric NAME  this result scalar instead of the headline; only tables that have it\n";

/* The attributes that make cells comparable in one table. */
static const char *const group_keys[] = {"model_sha256", "task", "task_settings", "data", "seed", "backend"};
#define N_GROUP_KEYS (int)(sizeof group_keys / sizeof group_keys[0])

static bool same_group(const struct store_cell *a, const struct store_cell *b) {
    char ba[64], bb[64];
    for (int k = 0; k < N_GROUP_KEYS; k++)
        if (strcmp(store_attr_text(a, group_keys[k], ba, sizeof ba), store_attr_text(b, group_keys[k], bb, sizeof bb)))
            return false;
    return true;
}

static long cell_length(const struct store_cell *c) {
    const struct store_attr *a = store_cell_attr(c, "length");
    return a && a->kind == STORE_I64 ? (long)a->i : a && a->kind == STORE_F64 ? (long)a->f : -1;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Markdown table cells must not contain '|' or line breaks. */
static void md_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

/* Decimals for a column: 4 significant digits of its smallest nonzero finite magnitude,
 * within [0, 6], so 3.142 | 12.350 | 1234.500 line up and read alike down the column. */
static int column_decimals(const double *v, int n) {
    double smallest = INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] != 0 && fabs(v[i]) < smallest) smallest = fabs(v[i]);
    if (!isfinite(smallest)) return 3;
    int d = 3 - (int)floor(log10(smallest));
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

static const struct store_cell *find_cell(const struct store_cell *cells, const int *idx, int n, long length,
                                          const char *method) {
    char buf[256];
    for (int i = 0; i < n; i++)
        if (cell_length(&cells[idx[i]]) == length &&
            strcmp(store_attr_text(&cells[idx[i]], "method", buf, sizeof buf), method) == 0)
            return &cells[idx[i]];
    return NULL;
}

static void print_group(FILE *f, const struct store_cell *cells, const int *idx, int n, const char *metric) {
    char buf[64];
    const struct store_cell *first = &cells[idx[0]];
    const char *m = metric;
    for (int i = 0; !m && i < n; i++) {
        const char *h = store_attr_text(&cells[idx[i]], "headline", buf, sizeof buf);
        if (h[0]) m = h;
    }
    for (int i = 0; !m && i < n; i++)   /* files without the attribute: the first scalar */
        for (int j = 0; !m && j < cells[idx[i]].res.n; j++)
            if (cells[idx[i]].res.items[j].kind == RESULT_SCALAR) m = cells[idx[i]].res.items[j].name;
    if (!m) m = "(no scalar)";
    /* columns: the distinct lengths; rows: the distinct methods in file order */
    long *lens = malloc((size_t)n * sizeof *lens);
    const char **methods = malloc((size_t)n * sizeof *methods);
    double *column = malloc((size_t)n * sizeof *column);
    int *decimals = malloc((size_t)n * sizeof *decimals);
    if (!lens || !methods || !column || !decimals) {
        free(lens);
        free(methods);
        free(column);
        free(decimals);
        fprintf(stderr, "ctxbench: out of memory\n");
        return;
    }
    int n_lens = 0, n_methods = 0;
    for (int i = 0; i < n; i++) {
        long L = cell_length(&cells[idx[i]]);
        int k = 0;
        while (k < n_lens && lens[k] != L) k++;
        if (k == n_lens) lens[n_lens++] = L;
        const char *meth = store_attr_text(&cells[idx[i]], "method", buf, sizeof buf);
        k = 0;
        while (k < n_methods && strcmp(methods[k], meth) != 0) k++;
        if (k == n_methods) methods[n_methods++] = meth;
    }
    qsort(lens, (size_t)n_lens, sizeof *lens, cmp_long);
    for (int k = 0; k < n_lens; k++) {
        int n_values = 0;
        for (int r = 0; r < n_methods; r++) {
            const struct store_cell *c = find_cell(cells, idx, n, lens[k], methods[r]);
            const struct result_item *it = c && c->status == CELL_DONE ? result_find(&c->res, m) : NULL;
            if (it && it->kind == RESULT_SCALAR) column[n_values++] = it->value;
        }
        decimals[k] = column_decimals(column, n_values);
    }

    fprintf(f, "### %s: ", store_attr_text(first, "task", buf, sizeof buf));
    md_text(f, m);
    fprintf(f, " (model %s", store_attr_text(first, "model", buf, sizeof buf));
    const char *settings = store_attr_text(first, "task_settings", buf, sizeof buf);
    if (settings[0]) fprintf(f, ", settings %s", settings);
    const char *data = store_attr_text(first, "data", buf, sizeof buf);
    if (data[0]) fprintf(f, ", data %s", data);
    fprintf(f, ", seed %s)\n\n| method |", store_attr_text(first, "seed", buf, sizeof buf));
    for (int k = 0; k < n_lens; k++) fprintf(f, " %ld |", lens[k]);
    fputs("\n|---|", f);
    for (int k = 0; k < n_lens; k++) fputs("---:|", f);
    fputc('\n', f);
    for (int r = 0; r < n_methods; r++) {
        fputs("| ", f);
        md_text(f, methods[r]);
        fputs(" |", f);
        for (int k = 0; k < n_lens; k++) {
            const struct store_cell *c = find_cell(cells, idx, n, lens[k], methods[r]);
            const struct result_item *it = c ? result_find(&c->res, m) : NULL;
            if (!c) fputs(" |", f);
            else if (c->status == CELL_SKIPPED) fputs(" skip |", f);
            else if (c->status == CELL_FAILED) fputs(" fail |", f);
            else if (it && it->kind == RESULT_SCALAR) fprintf(f, " %.*f |", decimals[k], it->value);
            else fputs(" - |", f);
        }
        fputc('\n', f);
    }
    bool notes = false;
    for (int i = 0; i < n; i++) {
        const struct store_cell *c = &cells[idx[i]];
        if (c->status != CELL_FAILED && c->status != CELL_SKIPPED) continue;
        if (!notes) fputc('\n', f);
        notes = true;
        fprintf(f, "- %s %s at %ld: ", cell_status_name(c->status), store_attr_text(c, "method", buf, sizeof buf),
                cell_length(c));
        md_text(f, store_attr_text(c, "error", buf, sizeof buf));
        fputc('\n', f);
    }
    fputc('\n', f);
    free(lens);
    free(methods);
    free(column);
    free(decimals);
}

/* name is one of the comma-separated names in list. */
static bool in_list(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

static bool has_scalar(const struct store_cell *c, const char *name) {
    const struct result_item *it = result_find(&c->res, name);
    return it && it->kind == RESULT_SCALAR;
}

int cmd_report(int argc, char **argv) {
    static const struct option longopts[] = {
        {"metric", required_argument, 0, 1001}, {"task", required_argument, 0, 1002},
        {"help", no_argument, 0, 'h'}, {0}};
    const char *metric = NULL, *tasks = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 1001) metric = optarg;
        else if (opt == 1002) tasks = optarg;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    char err[1024];
    if (optind == argc - 1 && check_fd_not_input(STDOUT_FILENO, "standard output", argv[optind], err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    struct store_cell *cells;
    int n;
    int status = cli_read_results(argc, argv, help, &cells, &n);
    if (status != 0) return status;
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    bool *used = calloc((size_t)(n ? n : 1), sizeof *used);
    if (!idx || !used) {
        fprintf(stderr, "ctxbench: out of memory\n");
        free(idx);
        free(used);
        store_cells_free(cells, n);
        return 1;
    }
    if (n == 0) printf("%s holds no cells yet.\n", argv[optind]);
    /* --task drops the other tasks' cells; --metric drops the tables none of whose cells has it */
    char buf[256];
    int tables = 0, task_cells = 0;
    for (int i = 0; i < n; i++)
        if (tasks && !in_list(tasks, store_attr_text(&cells[i], "task", buf, sizeof buf))) used[i] = true;
        else task_cells++;
    for (int i = 0; i < n; i++) {
        if (used[i]) continue;
        int m = 0;
        bool has_metric = !metric;
        for (int j = i; j < n; j++)
            if (!used[j] && same_group(&cells[i], &cells[j])) {
                used[j] = true;
                idx[m++] = j;
                if (metric && has_scalar(&cells[j], metric)) has_metric = true;
            }
        if (!has_metric) continue;
        print_group(stdout, cells, idx, m, metric);
        tables++;
    }
    int rc = 0;
    if (n > 0 && tables == 0) {
        if (tasks && task_cells == 0) fprintf(stderr, "ctxbench: %s holds no cells of task %s\n", argv[optind], ECHO(tasks));
        else fprintf(stderr, "ctxbench: no cell%s%s of %s has the metric %s\n", tasks ? " of task " : "",
                     tasks ? ECHO(tasks) : "", argv[optind], ECHO(metric));
        rc = 1;
    }
    free(idx);
    free(used);
    store_cells_free(cells, n);
    return fflush(stdout) == 0 ? rc : 1;
}
