/* Figures from a sweep's results: the data side (plot.h). Cells are grouped as
 * `ctxbench report` groups them (same model, task, settings, data, seed, backend);
 * each group gives its task's figures. A figure's .dat file holds one block per
 * series (two blank lines between blocks, so gnuplot's `index i` picks one), and its
 * comment header names the figure, the results file, the model, the task and every
 * column. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "plot.h"
#include "store.h"

/* Cells drawn in one figure agree on these (the same keys as `ctxbench report`). */
static const char *const group_keys[] = {"model_sha256", "task", "task_settings", "data", "seed", "backend"};
#define N_GROUP_KEYS (int)(sizeof group_keys / sizeof group_keys[0])

/* Below this many samples per point an interval says little; the figure says so. */
#define FEW_SAMPLES 10

/* A throughput this much above the previous (shorter) length's is flagged. */
#define RATE_RISE 1.10
/* Load average above a cell's own threads by more than this: another process shared the
 * cores while the cell was timed. */
#define LOAD_OTHER 0.5

/* The figure's note (drawn under the plot) is cut here; notes.txt has every line. */
#define FIGURE_NOTE_MAX 150

/* One line of a figure: a method (or, for the per-method loss figure, one length). */
struct series {
    const char *name;                 /* method spec */
    struct plot_style style;          /* from the spec alone (plot_method_style), unique in the group */
    char legend[200];                 /* the spec and how its configuration relates to the length */
    double target;                    /* the length a fixed spec was made for (factor x L), -1 if none */
    int n;
    const struct store_cell **cells;  /* its done cells, ascending length */
};

/* The cells of one (model, task, settings, data, seed, backend). */
struct group {
    const char *task;
    const struct store_cell **cells;
    int n;
    int ordinal, n_of_task;           /* figure names get _<ordinal> when a task has several groups */
    long ctx_train;                   /* trained context, -1 when unknown */
    long *lengths;                    /* every length in the group (done or not), ascending */
    int n_lengths;
    struct series *series;            /* methods with a done cell, in the file's method order */
    int n_series;
    struct textbuf left_out;          /* "pi@2048 (failed), ..." for the figure's note */
};

/* Everything plot_prepare works with. */
struct plotter {
    const char *results, *dir;
    const struct plot_opts *o;
    struct plot_plan *plan;
    struct store_cell *cells;
    int n_cells;
    const char **methods;             /* every method spec in the file, in the order the sweep ran them */
    int n_methods;
    char *err;
    size_t errlen;
};

/* ------------------------------------------------------------------ cell access */

static const char *attr_s(const struct store_cell *c, const char *name) {
    const struct store_attr *a = store_cell_attr(c, name);
    return a && a->kind == STORE_STR && a->s ? a->s : "";
}

static double attr_num(const struct store_cell *c, const char *name) {
    const struct store_attr *a = store_cell_attr(c, name);
    return !a ? NAN : a->kind == STORE_F64 ? a->f : a->kind == STORE_I64 ? (double)a->i : NAN;
}

static long cell_length(const struct store_cell *c) {
    double v = attr_num(c, "length");
    return isfinite(v) && v > 0 && v < 1e15 ? (long)v : -1;
}

static double res_scalar(const struct store_cell *c, const char *name) {
    const struct result_item *it = result_find(&c->res, name);
    return it && it->kind == RESULT_SCALAR ? it->value : NAN;
}

static const char *res_text(const struct store_cell *c, const char *name) {
    const struct result_item *it = result_find(&c->res, name);
    return it && it->kind == RESULT_TEXT && it->text ? it->text : NULL;
}

/* A 1-D array (or a single column), NULL when absent. */
static const double *res_array(const struct store_cell *c, const char *name, int *n) {
    const struct result_item *it = result_find(&c->res, name);
    if (!it || it->kind != RESULT_ARRAY || !it->data || it->cols != 1 || it->rows < 1) return NULL;
    *n = it->rows;
    return it->data;
}

/* ------------------------------------------------------------------ method styles */

/* The methods ctxbench has, each with its own colour and point shape. Okabe-Ito
 * (Wong, Nature Methods 8:441, 2011) has seven colours besides black that read on
 * white; its yellow does not, so the last two methods get greys of their own
 * lightness. Shapes: filled circle, square, triangles, diamond, pentagon, then star
 * and cross; a spec with parameters gets the open shape. dynamic_ntk is dashed: under
 * the windows protocol it draws the same numbers as ntk (methods/README.md). */
static const struct {
    const char *name, *color;
    int point, dash;
} method_styles[] = {
    {"baseline", "#000000", 7, 1},    {"pi", "#0072B2", 5, 1},         {"ntk", "#D55E00", 9, 1},
    {"dynamic_ntk", "#E69F00", 8, 2}, {"yarn", "#009E73", 13, 1},      {"llama3", "#CC79A7", 11, 1},
    {"abf", "#56B4E9", 15, 1},        {"selfextend", "#666666", 3, 1}, {"swa", "#A6A6A6", 2, 1},
};
/* A method not in the table (a new plugin) takes one of these by a hash of its name
 * (Paul Tol's muted scheme, also colour-blind safe). */
static const char *const extra_colors[] = {"#332288", "#117733", "#882255", "#44AA99", "#999933", "#AA4499"};
static const int extra_points[] = {4, 6, 10, 12, 14, 1};

/* FNV-1a: a fixed function of the text, the same on every machine and in every file. */
static unsigned long fnv1a(const char *s, size_t n) {
    unsigned long h = 2166136261UL;
    for (size_t i = 0; i < n && s[i]; i++) h = ((h ^ (unsigned char)s[i]) * 16777619UL) & 0xffffffffUL;
    return h;
}

void plot_method_style(const char *spec, struct plot_style *st) {
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    int k = 0, n = (int)(sizeof method_styles / sizeof method_styles[0]);
    while (k < n && !(strlen(method_styles[k].name) == name_len && strncmp(method_styles[k].name, spec, name_len) == 0))
        k++;
    int base_dash = 1;
    if (k < n) {
        snprintf(st->color, sizeof st->color, "%s", method_styles[k].color);
        st->point = method_styles[k].point;
        base_dash = method_styles[k].dash;
    } else {
        unsigned long h = fnv1a(spec, name_len);
        snprintf(st->color, sizeof st->color, "%s", extra_colors[h % 6]);
        st->point = extra_points[(h / 6) % 6];
        base_dash = 1 + (int)((h / 36) % 2);
    }
    st->dash = base_dash;
    if (colon && colon[1]) {   /* given parameters: an open shape and a dash chosen by them */
        if (st->point >= 5 && st->point % 2 == 1) st->point--;
        int d = 2 + (int)(fnv1a(colon + 1, (size_t)-1) % 3);   /* 2..4 */
        st->dash = d >= base_dash ? d + 1 : d;                  /* never the plain spec's dash */
    }
}

static bool same_group(const struct store_cell *a, const struct store_cell *b) {
    for (int k = 0; k < N_GROUP_KEYS; k++)
        if (strcmp(attr_s(a, group_keys[k]), attr_s(b, group_keys[k])) != 0) return false;
    /* seed is an integer attribute */
    double sa = attr_num(a, "seed"), sb = attr_num(b, "seed");
    return (isnan(sa) && isnan(sb)) || sa == sb;
}

/* ------------------------------------------------------------------ text helpers */

/* "512", "1k", "1.5k", "128k", "1M": tick labels a reader takes in at a glance. */
static void length_label(long L, char *buf, size_t cap) {
    if (L >= 1048576 && L % 1048576 == 0) snprintf(buf, cap, "%ldM", L / 1048576);
    else if (L >= 1024 && L % 1024 == 0) snprintf(buf, cap, "%ldk", L / 1024);
    else if (L >= 1024 && L % 512 == 0) snprintf(buf, cap, "%ld.5k", L / 1024);
    else snprintf(buf, cap, "%ld", L);
}

/* A gnuplot single-quoted string: no escapes are processed inside, '' is a quote.
 * Control characters and backquotes (command substitution) become spaces. */
static void gp_quote(struct textbuf *b, const char *s) {
    textbuf_puts(b, "'");
    for (; *s; s++) {
        if (*s == '\'') textbuf_puts(b, "''");
        else if ((unsigned char)*s < 0x20 || *s == '`' || *s == 0x7f) textbuf_puts(b, " ");
        else textbuf_append(b, s, 1);
    }
    textbuf_puts(b, "'");
}

static void var_str(struct textbuf *b, const char *name, const char *value) {
    textbuf_puts(b, name);
    textbuf_puts(b, "=");
    gp_quote(b, value);
    textbuf_puts(b, "; ");
}

static void var_num(struct textbuf *b, const char *name, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s=%.17g; ", name, isfinite(v) ? v : -1.0);
    textbuf_puts(b, buf);
}

/* A word for gnuplot's word(): whitespace would split it. */
static void add_word(struct textbuf *b, const char *w) {
    if (b->n) textbuf_puts(b, " ");
    for (; *w; w++) textbuf_append(b, (unsigned char)*w <= ' ' ? "_" : w, 1);
}

/* Data files, figures and notes.txt live side by side; names keep to [A-Za-z0-9._+-]. */
static void file_safe(const char *s, char *out, size_t cap) {
    size_t k = 0;
    for (; *s && k + 1 < cap; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '+' || ch == '-';
        out[k++] = ok ? ch : '_';
    }
    out[k] = 0;
}

/* One line of the notes; a line break inside (an error text) would split it. */
static void note(struct plotter *p, const char *line) {
    for (; *line; line++) textbuf_append(&p->plan->notes, (unsigned char)*line < 0x20 ? " " : line, 1);
    textbuf_puts(&p->plan->notes, "\n");
}

/* ------------------------------------------------------------------ grouping */

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The file's methods in the order the sweep ran them (earliest start first; cells
 * without a start time keep id order after those with one), so a method has the
 * same colour in every figure. */
static int order_methods(struct plotter *p) {
    p->methods = malloc((size_t)(p->n_cells ? p->n_cells : 1) * sizeof *p->methods);
    double *first = malloc((size_t)(p->n_cells ? p->n_cells : 1) * sizeof *first);
    if (!p->methods || !first) {
        free(first);
        return -1;
    }
    p->n_methods = 0;
    for (int i = 0; i < p->n_cells; i++) {
        const char *m = attr_s(&p->cells[i], "method");
        double t = attr_num(&p->cells[i], "started_unix");
        if (!isfinite(t)) t = INFINITY;
        int k = 0;
        while (k < p->n_methods && strcmp(p->methods[k], m) != 0) k++;
        if (k == p->n_methods) {
            p->methods[k] = m;
            first[k] = t;
            p->n_methods++;
        } else if (t < first[k]) {
            first[k] = t;
        }
    }
    for (int i = 1; i < p->n_methods; i++)   /* stable insertion sort by first start */
        for (int j = i; j > 0 && first[j] < first[j - 1]; j--) {
            double tt = first[j];
            first[j] = first[j - 1];
            first[j - 1] = tt;
            const char *tm = p->methods[j];
            p->methods[j] = p->methods[j - 1];
            p->methods[j - 1] = tm;
        }
    free(first);
    return 0;
}

static void group_free(struct group *g) {
    for (int s = 0; g->series && s < g->n; s++) free(g->series[s].cells);   /* every slot: calloc'd */
    free(g->series);
    free(g->lengths);
    textbuf_free(&g->left_out);
    g->series = NULL;
    g->lengths = NULL;
    g->n_series = g->n_lengths = 0;
}

static void series_legend(const struct group *g, struct series *se);

/* Lengths, series and the left-out list of a group whose cells are set. */
static int group_build(struct plotter *p, struct group *g) {
    char line[512];
    g->lengths = malloc((size_t)g->n * sizeof *g->lengths);
    g->series = calloc((size_t)g->n, sizeof *g->series);
    if (!g->lengths || !g->series) return -1;
    g->ctx_train = -1;
    for (int i = 0; i < g->n; i++) {
        const struct store_cell *c = g->cells[i];
        double ct = attr_num(c, "ctx_train");
        if (g->ctx_train < 0 && isfinite(ct) && ct > 0 && ct < 1e15) g->ctx_train = (long)ct;
        long L = cell_length(c);
        int k = 0;
        while (k < g->n_lengths && g->lengths[k] != L) k++;
        if (k == g->n_lengths && L > 0) g->lengths[g->n_lengths++] = L;
    }
    qsort(g->lengths, (size_t)g->n_lengths, sizeof *g->lengths, cmp_long);
    /* series in the file's method order; each one's done cells by ascending length */
    for (int m = 0; m < p->n_methods; m++) {
        struct series *s = &g->series[g->n_series];
        for (int i = 0; i < g->n; i++) {
            const struct store_cell *c = g->cells[i];
            if (strcmp(attr_s(c, "method"), p->methods[m]) != 0) continue;
            long L = cell_length(c);
            if (c->status != CELL_DONE || L <= 0) {
                const char *why = c->status == CELL_DONE ? "no valid length" : cell_status_name(c->status);
                snprintf(line, sizeof line, "%s: %s at length %ld left out (%s%s%s)", g->task, p->methods[m], L, why,
                         attr_s(c, "error")[0] ? ": " : "", attr_s(c, "error"));
                note(p, line);
                char brief[160];
                snprintf(brief, sizeof brief, "%s%s@%ld (%s)", g->left_out.n ? ", " : "", p->methods[m], L, why);
                textbuf_puts(&g->left_out, brief);
                continue;
            }
            if (!s->cells && !(s->cells = malloc((size_t)g->n * sizeof *s->cells))) return -1;
            int k = 0;
            while (k < s->n && cell_length(s->cells[k]) != L) k++;
            if (k < s->n) {   /* the same inputs but another data hash: keep the first */
                snprintf(line, sizeof line, "%s: %s at length %ld: a second cell (%s) left out, %s plotted", g->task,
                         p->methods[m], L, c->id, s->cells[k]->id);
                note(p, line);
                continue;
            }
            int j = s->n++;
            for (; j > 0 && cell_length(s->cells[j - 1]) > L; j--) s->cells[j] = s->cells[j - 1];
            s->cells[j] = c;
        }
        if (s->n > 0) {
            s->name = p->methods[m];
            plot_method_style(s->name, &s->style);
            /* two specs of one method whose parameters hash to the same dash: the later one
             * (in the file's order) takes the next dash, so no two lines look alike */
            for (bool clash = true; clash;) {
                clash = false;
                for (int o = 0; o < g->n_series; o++)
                    if (strcmp(g->series[o].style.color, s->style.color) == 0 && g->series[o].style.dash == s->style.dash &&
                        g->series[o].style.point == s->style.point) {
                        s->style.dash = s->style.dash % 5 + 1;
                        clash = true;
                    }
            }
            g->n_series++;
        }
    }
    for (int k = 0; k < g->n_series; k++) series_legend(g, &g->series[k]);
    return 0;
}

/* One configuration per curve, and the legend says which: a spec that gives no
 * parameter takes its derived defaults at each length (yarn at 2k is factor 4, at 4k
 * factor 8), which the legend shows as "yarn (factor L/512)" (or the range of the
 * parameter that varies: "selfextend (group 1-11 by length)"); a spec with parameters is one fixed configuration, and
 * the legend gives the length it targets (factor x trained length, SelfExtend's
 * (L - W + floor(W/G)) x G), also marked on the length axis. */
static void series_legend(const struct group *g, struct series *se) {
    const struct store_cell *c0 = se->cells[0];
    se->target = -1;
    snprintf(se->legend, sizeof se->legend, "%s", se->name);
    const char *varying = NULL;
    double lo = INFINITY, hi = -INFINITY;
    bool factor_is_ratio = g->ctx_train > 0;
    static const char *const prefer[] = {"factor", "group", "window", "rope_theta"};
    for (int pass = 0; pass < 2 && !varying; pass++)
        for (int a = 0; a < c0->n_attrs && !varying; a++) {
            const char *name = c0->attrs[a].name;
            if (strncmp(name, "method.", 7) != 0) continue;
            bool preferred = false;
            for (int k = 0; k < 4; k++) preferred |= strcmp(name + 7, prefer[k]) == 0;
            if (pass == 0 && !preferred) continue;
            double first = attr_num(c0, name);
            bool varies = false;
            for (int i = 1; i < se->n; i++) varies |= attr_num(se->cells[i], name) != first;
            if (!varies) continue;
            varying = name + 7;
            for (int i = 0; i < se->n; i++) {
                double v = attr_num(se->cells[i], name);
                lo = fmin(lo, v);
                hi = fmax(hi, v);
                double ratio = (double)cell_length(se->cells[i]) / (double)g->ctx_train;
                factor_is_ratio &= fabs(v - fmax(1, ratio)) < 1e-9 * fmax(1, ratio);
            }
        }
    if (varying && strcmp(varying, "factor") == 0 && factor_is_ratio)
        snprintf(se->legend, sizeof se->legend, "%s (factor L/%ld)", se->name, g->ctx_train);
    else if (varying)
        snprintf(se->legend, sizeof se->legend, "%s (%s %g-%g by length)", se->name, varying, lo, hi);
    if (!strchr(se->name, ':')) return;
    /* a fixed spec: the length it is made for */
    const char *m = attr_s(c0, "method_name");
    double L = attr_num(c0, "method.original_max_position_embeddings");
    if (!(L > 0)) L = (double)g->ctx_train;
    double f = attr_num(c0, "method.factor"), G = attr_num(c0, "method.group"), W = attr_num(c0, "method.window");
    if ((!strcmp(m, "pi") || !strcmp(m, "ntk") || !strcmp(m, "yarn") || !strcmp(m, "llama3")) && f > 0 && L > 0)
        se->target = f * L;
    else if (!strcmp(m, "selfextend") && G >= 1 && W >= 1 && g->ctx_train > 0)
        se->target = ((double)g->ctx_train - W + floor(W / G)) * G;
    if (se->target > 0 && se->target < 1e15 && !varying) {
        char lab[32];
        length_label((long)se->target, lab, sizeof lab);
        snprintf(se->legend, sizeof se->legend, "%s (fixed, target %s)", se->name, lab);
    } else {
        se->target = -1;
    }
}

/* ------------------------------------------------------------------ figure output */

/* A figure being written: its data file and the gnuplot variables that go with it. */
struct figure {
    char name[160];
    char path[4096];
    struct atomic_file af;   /* written beside path, renamed into place when finished */
    FILE *f;                 /* af.f */
    struct textbuf vars;
    struct textbuf series;           /* words: series titles */
    struct textbuf colors, dashes, points;   /* words: each series' style */
    struct textbuf legend;           /* gnuplot array items: each series' legend text */
    struct textbuf targets;          /* words: each series' target length, -1 for none */
    struct textbuf caption;          /* NAME.caption.txt: what, provenance, protocol (title_vars) */
    struct textbuf caption_series;   /* its series lines (block_begin) */
    struct textbuf caption_notes;    /* its notes (note_var, equal_var, figure text) */
    const char *results;
    int n_blocks;
};

static int figure_open(struct plotter *p, const struct group *g, struct figure *fig, const char *base,
                       const char *what) {
    memset(fig, 0, sizeof *fig);
    if (g->n_of_task > 1) snprintf(fig->name, sizeof fig->name, "%s_%d", base, g->ordinal);
    else snprintf(fig->name, sizeof fig->name, "%s", base);
    if ((size_t)snprintf(fig->path, sizeof fig->path, "%s/%s.dat", p->dir, fig->name) >= sizeof fig->path) {
        snprintf(p->err, p->errlen, "output directory name too long: %s", p->dir);
        return -1;
    }
    if (atomic_file_open(&fig->af, fig->path, p->results, p->err, p->errlen) != 0) return -1;
    fig->f = fig->af.f;
    fig->results = p->results;
    const struct store_cell *c = g->cells[0];
    fprintf(fig->f, "# ctxbench plot: %s\n# results: %s\n", what, p->results);
    fprintf(fig->f, "# model: %s (sha256 %s), trained context %ld tokens\n", attr_s(c, "model"),
            attr_s(c, "model_sha256"), g->ctx_train);
    fprintf(fig->f, "# task: %s; settings: %s; data: %s; seed: %.0f; backend: %s\n", g->task,
            attr_s(c, "task_settings")[0] ? attr_s(c, "task_settings") : "(defaults)",
            attr_s(c, "data")[0] ? attr_s(c, "data") : "(none)", attr_num(c, "seed"), attr_s(c, "backend"));
    if (g->left_out.n) fprintf(fig->f, "# left out (not done): %s\n", g->left_out.s);
    fputs("# one block per series, two blank lines apart (gnuplot: index i)\n", fig->f);
    return 0;
}

/* A block of the data file: one series. `st` NULL: a series without a method style
 * (one length of the per-method loss figure); the script colours it by its place. */
static void block_begin(struct figure *fig, const char *title, const struct plot_style *st, const char *legend,
                        double target) {
    if (fig->n_blocks++) fputs("\n\n", fig->f);
    fprintf(fig->f, "# series: %s\n", title);
    static const struct plot_style none = {"#000000", 1, 7};
    if (st) fprintf(fig->f, "# style: color %s dash %d point %d\n", st->color, st->dash, st->point);
    else st = &none;
    add_word(&fig->series, title);
    add_word(&fig->colors, st->color);
    char buf[16];
    snprintf(buf, sizeof buf, "%d", st->dash);
    add_word(&fig->dashes, buf);
    snprintf(buf, sizeof buf, "%d", st->point);
    add_word(&fig->points, buf);
    snprintf(buf, sizeof buf, "%.0f", target > 0 ? target : -1);
    add_word(&fig->targets, buf);
    if (fig->legend.n) textbuf_puts(&fig->legend, ",");
    gp_quote(&fig->legend, legend ? legend : title);
    textbuf_puts(&fig->caption_series, "  ");
    textbuf_puts(&fig->caption_series, legend ? legend : title);
    if (st != &none) {
        static const char *const dash_names[] = {"", "solid", "dashed", "dotted", "dash-dot", "dash-dot-dot"};
        char sty[96];
        snprintf(sty, sizeof sty, ": colour %s, %s line, point type %d", st->color,
                 st->dash >= 1 && st->dash <= 5 ? dash_names[st->dash] : "dashed", st->point);
        textbuf_puts(&fig->caption_series, sty);
    }
    textbuf_puts(&fig->caption_series, "\n");
}

/* The protocol words of a task's results: what a reader needs to know how a number
 * was made (the ppl protocol, the passkey prompt variant, the retrieval prompt). */
static void protocol_text(const struct group *g, char *buf, size_t cap) {
    buf[0] = 0;
    for (int s = 0; s < g->n_series && !buf[0]; s++) {
        const struct store_cell *c = g->series[s].cells[0];
        const char *t;
        if ((t = res_text(c, "protocol_detail"))) snprintf(buf, cap, "protocol %s", t);
        else if ((t = res_text(c, "protocol"))) snprintf(buf, cap, "protocol %s", t);
        else if ((t = res_text(c, "variant"))) snprintf(buf, cap, "prompt variant %s", t);
        else if ((t = res_text(c, "prompt"))) snprintf(buf, cap, "prompt: %s", t);
    }
}

/* Breaks `text` into at most three lines of about `width` characters, at "; " or ", "
 * (else at a space), as the gnuplot variables subtitle, subtitle2, subtitle3 (a
 * single-quoted gnuplot string cannot hold a line break). */
static void wrapped_vars(struct textbuf *v, const char *text, size_t width) {
    static const char *const names[3] = {"subtitle", "subtitle2", "subtitle3"};
    const char *s = text;
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(s);
        if (n > width && k < 2) {
            size_t cut = 0;
            for (size_t i = width / 2; i + 1 < width && i + 1 < n; i++)
                if ((s[i] == ';' || s[i] == ',') && s[i + 1] == ' ') cut = i + 1;
            for (size_t i = width / 2; !cut && i < width; i++)
                if (s[i] == ' ') cut = i;
            if (!cut) cut = width;
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(cut < sizeof line ? cut : sizeof line - 1), s);
            var_str(v, names[k], line);
            s += cut;
            while (*s == ' ') s++;
        } else if (n > width) {   /* the third line: what fits */
            char line[512];
            snprintf(line, sizeof line, "%.*s...", (int)(width - 3 < sizeof line - 4 ? width - 3 : sizeof line - 4), s);
            var_str(v, names[k], line);
            s += n;
        } else {
            var_str(v, names[k], s);
            s += n;
        }
    }
}

/* Every distinct value of a text attribute over the group's cells, ", "-separated
 * (a figure can mix builds: the reader should see that). */
static void distinct_attr(const struct group *g, const char *name, struct textbuf *out) {
    for (int i = 0; i < g->n; i++) {
        const char *v = attr_s(g->cells[i], name);
        if (!v[0]) continue;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(attr_s(g->cells[j], name), v) == 0;
        if (seen) continue;
        if (out->n) textbuf_puts(out, ", ");
        textbuf_puts(out, v);
    }
    if (!out->n) textbuf_puts(out, "unknown");
}

/* The title is short (what, the model and its trained context, the data): a paper's
 * figure. Everything else a reader needs to reproduce it -- the protocol, the model's
 * hash, the dataset's path and hash, settings, seed, backend, build revision --
 * goes into the caption file beside the figure and into the SVG's <desc>. */
static void title_vars(const struct group *g, struct figure *fig, const char *what) {
    struct textbuf *v = &fig->vars;
    const struct store_cell *c = g->cells[0];
    char line[1024], proto[600];
    var_str(v, "title", what);
    const char *model = attr_s(c, "model")[0] ? attr_s(c, "model") : "model ?";
    const char *data = attr_s(c, "data");
    char ctx[64] = "";
    if (g->ctx_train > 0) snprintf(ctx, sizeof ctx, " (trained at %ld tokens)", g->ctx_train);
    snprintf(line, sizeof line, "%s%s%s%s", model, ctx, data[0] ? ", data " : "", data);
    wrapped_vars(v, line, 96);
    protocol_text(g, proto, sizeof proto);
    struct textbuf *t = &fig->caption;
    textbuf_puts(t, what);
    textbuf_puts(t, ".\n");
    struct textbuf revs = {0}, versions = {0}, devices = {0};
    distinct_attr(g, "git_rev", &revs);
    distinct_attr(g, "ctxbench_version", &versions);
    distinct_attr(g, "device", &devices);
    char buf[4096];
    snprintf(buf, sizeof buf,
             "Model: %s (sha256 %s), trained context %ld tokens.\n"
             "Task: %s; %s%ssettings: %s; seed %.0f.\n"
             "Data: %s%s%s%s%s.\n"
             "Ran on: backend %s, device %s, %.0f threads, host %s.\n"
             "Built: ctxbench %s, git revision %s.\n"
             "Results file: %s (figure data: the .dat file beside this caption).\n",
             model, attr_s(c, "model_sha256")[0] ? attr_s(c, "model_sha256") : "unknown", g->ctx_train, g->task, proto,
             proto[0] ? "; " : "", attr_s(c, "task_settings")[0] ? attr_s(c, "task_settings") : "the task's defaults",
             attr_num(c, "seed"), data[0] ? data : "none (the task's own prompt)",
             attr_s(c, "data_path")[0] ? ", path " : "", attr_s(c, "data_path"),
             attr_s(c, "data_sha256")[0] ? ", sha256 " : "", attr_s(c, "data_sha256"), attr_s(c, "backend"),
             devices.s, attr_num(c, "threads"), attr_s(c, "host"), versions.s, revs.s, fig->results);
    textbuf_puts(t, buf);
    textbuf_free(&revs);
    textbuf_free(&versions);
    textbuf_free(&devices);
}

/* Length axis: the group's lengths as ticks, the range widened to show the trained
 * context, and the note listing what is not drawn. */
static void axis_vars(const struct group *g, struct textbuf *v) {
    struct textbuf lens = {0}, labels = {0};
    for (int k = 0; k < g->n_lengths; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", g->lengths[k]);
        add_word(&lens, buf);
        length_label(g->lengths[k], buf, sizeof buf);
        add_word(&labels, buf);
    }
    var_str(v, "lengths", lens.s ? lens.s : "");
    var_str(v, "lenlabels", labels.s ? labels.s : "");
    textbuf_free(&lens);
    textbuf_free(&labels);
    double lo = g->n_lengths ? (double)g->lengths[0] : 1, hi = g->n_lengths ? (double)g->lengths[g->n_lengths - 1] : 2;
    if (g->ctx_train > 0 && g->ctx_train < lo) lo = (double)g->ctx_train;
    if (g->ctx_train > 0 && g->ctx_train > hi) hi = (double)g->ctx_train;
    var_num(v, "xmin", lo / 1.25);
    var_num(v, "xmax", hi * 1.25);
    var_num(v, "ctx_train", (double)g->ctx_train);
}

static void note_var(struct figure *fig, const char *extra, const struct textbuf *left_out) {
    struct textbuf *v = &fig->vars;
    if (left_out && left_out->n) {
        textbuf_puts(&fig->caption_notes, "Not plotted (not done): ");
        textbuf_puts(&fig->caption_notes, left_out->s);
        textbuf_puts(&fig->caption_notes, ".\n");
    }
    if (extra && extra[0]) {
        textbuf_puts(&fig->caption_notes, extra);
        textbuf_puts(&fig->caption_notes, ".\n");
    }
    struct textbuf t = {0};
    if (left_out && left_out->n) {
        textbuf_puts(&t, "not plotted: ");
        textbuf_puts(&t, left_out->s);
    }
    if (extra && extra[0]) {
        if (t.n) textbuf_puts(&t, "; ");
        textbuf_puts(&t, extra);
    }
    if (t.n > FIGURE_NOTE_MAX) {   /* cut at a comma; the full list is in notes.txt */
        size_t cut = FIGURE_NOTE_MAX;
        while (cut > 20 && t.s[cut] != ',') cut--;
        t.s[cut] = 0;
        t.n = cut;
        textbuf_puts(&t, ", ... (see notes.txt)");
    }
    var_str(v, "note", t.s ? t.s : "");
    textbuf_free(&t);
}

static void figure_free_text(struct figure *fig) {
    textbuf_free(&fig->vars);
    textbuf_free(&fig->series);
    textbuf_free(&fig->colors);
    textbuf_free(&fig->dashes);
    textbuf_free(&fig->points);
    textbuf_free(&fig->legend);
    textbuf_free(&fig->targets);
    textbuf_free(&fig->caption);
    textbuf_free(&fig->caption_series);
    textbuf_free(&fig->caption_notes);
}

/* The second note line: which methods give identical values (find_equal). */
static void equal_var(struct figure *fig, const struct textbuf *equal, const char *what) {
    struct textbuf *v = &fig->vars;
    if (equal->n) {
        textbuf_puts(&fig->caption_notes, "Equal by construction (");
        textbuf_puts(&fig->caption_notes, what);
        textbuf_puts(&fig->caption_notes, "): ");
        textbuf_puts(&fig->caption_notes, equal->s);
        textbuf_puts(&fig->caption_notes, ".\n");
    }
    /* the whole line within FIGURE_NOTE_MAX characters (the width of a 1000-pixel figure in
     * the notes' small type), its label included */
    char line[FIGURE_NOTE_MAX + 120] = "";
    int room = FIGURE_NOTE_MAX - (int)strlen(what) - 2;
    if ((int)equal->n > room)
        snprintf(line, sizeof line, "%s: %.*s... (see notes.txt)", what, room > 40 ? room - 20 : 20, equal->s);
    else if (equal->n)
        snprintf(line, sizeof line, "%s: %s", what, equal->s);
    var_str(v, "note2", line);
}

/* n on the figure: `nlabel` ("n = 2 samples per point") for the axis or colour bar,
 * and, below FEW_SAMPLES, note2 says that the intervals say little. */
static void sample_size_var(struct figure *fig, double n_min, double n_max, const char *unit, const char *caveat) {
    char lab[96] = "", line[256] = "";
    if (n_max > 0 && n_min == n_max) snprintf(lab, sizeof lab, "n = %.0f %s per point", n_min, unit);
    else if (n_max > 0) snprintf(lab, sizeof lab, "n = %.0f-%.0f %s per point", n_min, n_max, unit);
    var_str(&fig->vars, "nlabel", lab);
    if (n_max > 0 && n_min < FEW_SAMPLES) {
        snprintf(line, sizeof line, "only %s: %s", lab, caveat);
        textbuf_puts(&fig->caption_notes, "Sample size: ");
        textbuf_puts(&fig->caption_notes, line);
        textbuf_puts(&fig->caption_notes, ".\n");
    } else if (lab[0]) {
        textbuf_puts(&fig->caption_notes, "Sample size: ");
        textbuf_puts(&fig->caption_notes, lab);
        textbuf_puts(&fig->caption_notes, ".\n");
    }
    var_str(&fig->vars, "note2", line);
}

/* Closes the data file and, if it has any block, queues the gnuplot job. */
static int figure_finish(struct plotter *p, struct figure *fig, const char *script) {
    fig->f = NULL;
    if (fig->n_blocks == 0) {
        atomic_file_discard(&fig->af);
        remove(fig->path);   /* the file of an earlier run, whose data this one no longer has */
        char line[256];
        snprintf(line, sizeof line, "%s: nothing to plot (no done cell has its data); figure skipped", fig->name);
        note(p, line);
        figure_free_text(fig);
        return 0;
    }
    if (atomic_file_commit(&fig->af, p->err, p->errlen) != 0) goto fail;
    /* the caption: provenance, then the series, then the notes */
    textbuf_puts(&fig->caption, "Series (colour-blind safe colours, each method its own point shape; a spec without "
                                "parameters takes its defaults at each length, and the legend names the one that "
                                "varies; a spec with parameters is one configuration, its target length ticked on the "
                                "length axis):\n");
    textbuf_puts(&fig->caption, fig->caption_series.s ? fig->caption_series.s : "");
    textbuf_puts(&fig->caption, fig->caption_notes.s ? fig->caption_notes.s : "");
    if (fig->caption.oom) goto oom;
    char cap_path[4096 + 16];
    size_t plen = strlen(fig->path);
    snprintf(cap_path, sizeof cap_path, "%.*s.caption.txt", (int)(plen - 4), fig->path);
    struct atomic_file caf;
    if (atomic_file_open(&caf, cap_path, p->results, p->err, p->errlen) != 0) goto fail;
    fputs(fig->caption.s, caf.f);
    if (atomic_file_commit(&caf, p->err, p->errlen) != 0) goto fail;
    struct plot_plan *plan = p->plan;
    if (plan->n_jobs == plan->cap_jobs) {
        int cap = plan->cap_jobs ? 2 * plan->cap_jobs : 16;
        struct plot_job *j = realloc(plan->jobs, (size_t)cap * sizeof *j);
        if (!j) goto oom;
        plan->jobs = j;
        plan->cap_jobs = cap;
    }
    var_str(&fig->vars, "data", fig->path);
    var_str(&fig->vars, "series", fig->series.s ? fig->series.s : "");
    var_str(&fig->vars, "colors", fig->colors.s ? fig->colors.s : "");
    var_str(&fig->vars, "dashes", fig->dashes.s ? fig->dashes.s : "");
    var_str(&fig->vars, "points", fig->points.s ? fig->points.s : "");
    var_str(&fig->vars, "targets", fig->targets.s ? fig->targets.s : "");
    char arr[64];
    snprintf(arr, sizeof arr, "array legend[%d] = [", fig->n_blocks);
    textbuf_puts(&fig->vars, arr);
    textbuf_puts(&fig->vars, fig->legend.s ? fig->legend.s : "");
    textbuf_puts(&fig->vars, "]; ");
    if (fig->vars.oom || fig->series.oom || fig->colors.oom || fig->dashes.oom || fig->points.oom || fig->legend.oom || fig->targets.oom)
        goto oom;
    struct plot_job *job = &plan->jobs[plan->n_jobs];
    memset(job, 0, sizeof *job);
    snprintf(job->script, sizeof job->script, "%s", script);
    size_t n = strlen(fig->path);
    job->out = malloc(n + 1);
    if (!job->out) goto oom;
    memcpy(job->out, fig->path, n - 4);   /* without ".dat" */
    job->out[n - 4] = 0;
    job->vars = fig->vars.s;
    fig->vars = (struct textbuf){0};
    job->caption = fig->caption.s;
    fig->caption = (struct textbuf){0};
    plan->n_jobs++;
    figure_free_text(fig);
    return 0;
oom:
    snprintf(p->err, p->errlen, "out of memory");
fail:
    figure_free_text(fig);
    return -1;
}

/* ------------------------------------------------------------------ the figures */

/* The 95% Wilson score interval of k successes in n trials (Wilson 1927): unlike
 * k/n +- 1.96 sd it stays inside [0, 1] and is not zero-width at 0/n or n/n, which
 * is where a passkey cell usually is. */
void plot_wilson(double k, double n, double *lo, double *hi) {
    if (!(n > 0) || !(k >= 0) || k > n) {
        *lo = *hi = NAN;
        return;
    }
    const double z = 1.959963984540054;
    double ph = k / n, z2n = z * z / n;
    double centre = (ph + z2n / 2) / (1 + z2n);
    double half = z / (1 + z2n) * sqrt(ph * (1 - ph) / n + z2n / (4 * n));
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
    if (k == 0) *lo = 0;   /* exact at the ends: no rounding below 0 or above 1 */
    if (k == n) *hi = 1;
}

static bool same_value(double a, double b) { return isfinite(a) && isfinite(b) && fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)); }

/* Curves equal by construction: every method at factor 1 is the baseline, and under
 * the windows protocol dynamic_ntk is ntk. Points of different series with the same
 * value at one length are drawn side by side (dodge[s * g->n + i] multiplies the
 * length of point i of series s), and `text` says which: "dynamic_ntk = ntk at every
 * length" for a pair equal wherever both have a value (two lengths or more), then
 * "at 512: baseline = pi = ..." for the other coincidences. */
static void find_equal(const struct group *g, const char *metric, double *dodge, struct textbuf *text) {
    for (int k = 0; k < g->n_series * g->n; k++) dodge[k] = 1;
    int ns = g->n_series;
    bool *whole = calloc((size_t)ns * (size_t)(ns ? ns : 1), sizeof *whole);   /* whole[a*ns+b]: a = b everywhere */
    int *member = malloc((size_t)(ns ? ns : 1) * sizeof *member);
    if (!whole || !member) {
        free(whole);
        free(member);
        return;
    }
    for (int a = 0; a < ns; a++)
        for (int b = a + 1; b < ns; b++) {
            int common = 0, equal = 0;
            for (int i = 0; i < g->series[a].n; i++)
                for (int j = 0; j < g->series[b].n; j++)
                    if (cell_length(g->series[a].cells[i]) == cell_length(g->series[b].cells[j])) {
                        double x = res_scalar(g->series[a].cells[i], metric), y = res_scalar(g->series[b].cells[j], metric);
                        if (!isfinite(x) || !isfinite(y)) continue;
                        common++;
                        equal += same_value(x, y);
                    }
            if (common >= 2 && equal == common) {
                whole[a * ns + b] = whole[b * ns + a] = true;
                char buf[240];
                snprintf(buf, sizeof buf, "%s%s = %s at every length", text->n ? "; " : "", g->series[b].name,
                         g->series[a].name);
                textbuf_puts(text, buf);
            }
        }
    for (int li = 0; li < g->n_lengths; li++) {
        long L = g->lengths[li];
        bool *done = calloc((size_t)(ns ? ns : 1), sizeof *done);
        if (!done) break;
        for (int a = 0; a < ns; a++) {
            if (done[a]) continue;
            int ia = -1;
            for (int i = 0; i < g->series[a].n; i++)
                if (cell_length(g->series[a].cells[i]) == L) ia = i;
            if (ia < 0) continue;
            double va = res_scalar(g->series[a].cells[ia], metric);
            int c = 0;
            member[c++] = a;
            for (int b = a + 1; b < ns; b++) {
                if (done[b]) continue;
                for (int j = 0; j < g->series[b].n; j++)
                    if (cell_length(g->series[b].cells[j]) == L && same_value(va, res_scalar(g->series[b].cells[j], metric))) {
                        member[c++] = b;
                        done[b] = true;
                    }
            }
            if (c < 2) continue;
            bool explained = true;   /* every member pair already said "at every length" */
            for (int x = 0; x < c; x++)
                for (int y = x + 1; y < c; y++) explained &= whole[member[x] * ns + member[y]];
            for (int x = 0; x < c; x++) {
                const struct series *se = &g->series[member[x]];
                for (int i = 0; i < se->n; i++)
                    if (cell_length(se->cells[i]) == L) dodge[member[x] * g->n + i] = pow(2, 0.035 * (x - (c - 1) / 2.0));
            }
            if (explained) continue;
            char lab[32], buf[160];
            length_label(L, lab, sizeof lab);
            snprintf(buf, sizeof buf, "%sat %s: ", text->n ? "; " : "", lab);
            textbuf_puts(text, buf);
            for (int x = 0; x < c; x++) {
                if (x) textbuf_puts(text, " = ");
                textbuf_puts(text, g->series[member[x]].name);
            }
        }
        free(done);
    }
    free(whole);
    free(member);
}

/* Figure 1: perplexity vs length, one line per method. */
/* A 95% percentile-bootstrap interval of a ppl cell's perplexity over its windows
 * (nll_by_window, scored_by_window): windows drawn with replacement, the protocol's own
 * mean recomputed (token mean, or the mean of window means for yarn and longlora).
 * Deterministic (a fixed generator per cell). NAN, NAN with fewer than 2 windows or
 * without the per-window arrays (results from before they were stored). */
#define BOOTSTRAP_RESAMPLES 2000
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void plot_ppl_bootstrap(const double *nll, const double *scored, int n, bool mean_of_windows, double *lo, double *hi) {
    *lo = *hi = NAN;
    if (n < 2) return;
    double *stat = malloc(BOOTSTRAP_RESAMPLES * sizeof *stat);
    if (!stat) return;
    unsigned long long s = 0x9E3779B97F4A7C15ULL ^ (unsigned long long)n;
    for (int b = 0; b < BOOTSTRAP_RESAMPLES; b++) {
        double sum = 0, tok = 0;
        for (int k = 0; k < n; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            int w = (int)(s % (unsigned long long)n);
            if (mean_of_windows) sum += scored[w] > 0 ? nll[w] / scored[w] : 0, tok += 1;
            else sum += nll[w], tok += scored[w];
        }
        stat[b] = tok > 0 ? exp(sum / tok) : NAN;
    }
    qsort(stat, BOOTSTRAP_RESAMPLES, sizeof *stat, cmp_dbl);
    *lo = stat[(int)(0.025 * BOOTSTRAP_RESAMPLES)];
    *hi = stat[(int)(0.975 * BOOTSTRAP_RESAMPLES) - 1];
    free(stat);
}

static void ppl_interval(const struct store_cell *c, double *lo, double *hi) {
    const struct result_item *nll = result_find(&c->res, "nll_by_window");
    const struct result_item *sc = result_find(&c->res, "scored_by_window");
    const char *proto = res_text(c, "protocol");
    *lo = *hi = NAN;
    if (!nll || !sc || nll->kind != RESULT_ARRAY || sc->kind != RESULT_ARRAY || nll->rows != sc->rows) return;
    bool mean_of_windows = proto && (strcmp(proto, "yarn") == 0 || strcmp(proto, "longlora") == 0);
    plot_ppl_bootstrap(nll->data, sc->data, nll->rows, mean_of_windows, lo, hi);
}

static int fig_ppl(struct plotter *p, const struct group *g) {
    struct figure fig;
    if (figure_open(p, g, &fig, "ppl_vs_length", "perplexity vs context length") != 0) return -1;
    fputs("# columns: length ppl nll tokens_scored windows x_drawn ppl_lo ppl_hi (x_drawn: the length, nudged apart "
          "where methods have the same perplexity; ppl_lo/hi: 95% bootstrap interval over the cell's windows, nan "
          "with fewer than 2)\n",
          fig.f);
    int few_windows = 0, n_points = 0;
    struct textbuf dropped = {0}, equal = {0};
    double *dodge = malloc((size_t)(g->n_series * g->n + 1) * sizeof *dodge);
    if (!dodge) {
        snprintf(p->err, p->errlen, "out of memory");
        figure_free_text(&fig);
        atomic_file_discard(&fig.af);
        return -1;
    }
    find_equal(g, "ppl", dodge, &equal);
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        bool begun = false;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            double ppl = res_scalar(c, "ppl");
            if (!(isfinite(ppl) && ppl > 0)) {   /* log axis: only finite positive values */
                char buf[160];
                snprintf(buf, sizeof buf, "%s%s@%ld (ppl %g)", dropped.n ? ", " : "", se->name, cell_length(c), ppl);
                textbuf_puts(&dropped, buf);
                continue;
            }
            if (!begun) block_begin(&fig, se->name, &se->style, se->legend, se->target);
            begun = true;
            double lo, hi;
            ppl_interval(c, &lo, &hi);
            if (!isfinite(lo)) few_windows++;
            n_points++;
            fprintf(fig.f, "%ld %.9g %.9g %.0f %.0f %.9g %.9g %.9g\n", cell_length(c), ppl, res_scalar(c, "nll"),
                    res_scalar(c, "tokens_scored"), res_scalar(c, "windows"), (double)cell_length(c) * dodge[s * g->n + i],
                    lo, hi);
        }
    }
    free(dodge);
    if (equal.n) {
        char line[2048];
        snprintf(line, sizeof line, "%s: identical perplexities (drawn side by side): %s", fig.name, equal.s);
        note(p, line);
    }
    if (dropped.n) {
        char line[1024];
        snprintf(line, sizeof line, "%s: not finite, left out: %s", fig.name, dropped.s);
        note(p, line);
    }
    if (few_windows) {
        char line[300];
        snprintf(line, sizeof line, "%s: %d point%s without an interval (one window, or results without per-window "
                 "values)", fig.name, few_windows, few_windows == 1 ? "" : "s");
        note(p, line);
        textbuf_puts(&fig.caption_notes, "Error bars: 95% bootstrap intervals over each cell's windows; ");
        textbuf_puts(&fig.caption_notes, line + strlen(fig.name) + 2);
        textbuf_puts(&fig.caption_notes, ".\n");
    } else {
        textbuf_puts(&fig.caption_notes, "Error bars: 95% bootstrap intervals over each cell's windows.\n");
    }
    var_num(&fig.vars, "has_ci", few_windows < n_points);
    title_vars(g, &fig, "Perplexity vs context length");
    axis_vars(g, &fig.vars);
    note_var(&fig, dropped.s, &g->left_out);
    equal_var(&fig, &equal, "identical values, drawn side by side");
    textbuf_free(&dropped);
    textbuf_free(&equal);
    return figure_finish(p, &fig, "ppl_vs_length.gp");
}

/* Writes the position bins of one ppl cell: center start end mean_nll count. */
static int write_bins(FILE *f, const struct store_cell *c) {
    int nb = 0, ne = 0, nc = 0;
    const double *nll = res_array(c, "nll_by_pos", &nb);
    const double *edges = res_array(c, "nll_by_pos_edges", &ne);
    const double *count = res_array(c, "nll_by_pos_count", &nc);
    if (!nll || !edges || ne != nb + 1 || (count && nc != nb)) return 0;
    int rows = 0;
    for (int b = 0; b < nb; b++) {
        if (!isfinite(nll[b]) || (count && !(count[b] > 0))) continue;
        fprintf(f, "%.9g %.9g %.9g %.9g %.0f\n", 0.5 * (edges[b] + edges[b + 1]), edges[b], edges[b + 1], nll[b],
                count ? count[b] : NAN);
        rows++;
    }
    return rows;
}

/* Figure 4: mean NLL per position bin, (a) every method at the longest length,
 * (b) for each method, one line per length. */
static int fig_loss(struct plotter *p, const struct group *g) {
    static const char *cols = "# columns: position_center bin_start bin_end mean_nll count (positions in the window, tokens)\n";
    /* (a) the longest length at which some method has the bins */
    long Lmax = -1;
    for (int s = 0; s < g->n_series; s++)
        for (int i = 0; i < g->series[s].n; i++) {
            int n;
            const struct store_cell *c = g->series[s].cells[i];
            if (res_array(c, "nll_by_pos", &n) && cell_length(c) > Lmax) Lmax = cell_length(c);
        }
    if (Lmax < 0) {
        char line[256];
        snprintf(line, sizeof line, "%s: no cell has nll_by_pos; loss-by-position figures skipped", g->task);
        note(p, line);
        return 0;
    }
    struct figure fig;
    char what[160];
    snprintf(what, sizeof what, "mean NLL by position at length %ld, one block per method", Lmax);
    if (figure_open(p, g, &fig, "loss_by_position", what) != 0) return -1;
    fputs(cols, fig.f);
    struct textbuf missing = {0}, equal = {0};
    const struct store_cell **drawn = calloc((size_t)g->n_series + 1, sizeof *drawn);
    if (!drawn) {
        snprintf(p->err, p->errlen, "out of memory");
        figure_free_text(&fig);
        atomic_file_discard(&fig.af);
        return -1;
    }
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        const struct store_cell *c = NULL;
        for (int i = 0; i < se->n; i++)
            if (cell_length(se->cells[i]) == Lmax) c = se->cells[i];
        int n;
        if (!c || !res_array(c, "nll_by_pos", &n)) {
            add_word(&missing, se->name);
            continue;
        }
        block_begin(&fig, se->name, &se->style, se->legend, se->target);
        write_bins(fig.f, c);
        drawn[s] = c;
    }
    /* curves that coincide (a curve drawn over another hides it): the same loss in every
     * bin, or in the bins up to some position (SWA and SelfExtend are the baseline while
     * no key is beyond their window) */
    for (int b = 0; b < g->n_series; b++)
        for (int a = 0; a < b; a++) {
            if (!drawn[a] || !drawn[b]) continue;
            int na = 0, nb = 0, ne = 0;
            const double *x = res_array(drawn[a], "nll_by_pos", &na), *y = res_array(drawn[b], "nll_by_pos", &nb);
            const double *edges = res_array(drawn[b], "nll_by_pos_edges", &ne);
            if (na != nb || !edges || ne != nb + 1) continue;
            int k = 0;
            while (k < na && (same_value(x[k], y[k]) || (isnan(x[k]) && isnan(y[k])))) k++;
            if (k == 0) continue;
            char buf[240];
            if (k == na)
                snprintf(buf, sizeof buf, "%s%s = %s (the same curve)", equal.n ? "; " : "", g->series[b].name,
                         g->series[a].name);
            else
                snprintf(buf, sizeof buf, "%s%s = %s up to position %.0f", equal.n ? "; " : "", g->series[b].name,
                         g->series[a].name, edges[k]);
            textbuf_puts(&equal, buf);
        }
    free(drawn);
    if (equal.n) {
        char line[2048];
        snprintf(line, sizeof line, "%s: identical losses: %s", fig.name, equal.s);
        note(p, line);
    }
    char extra[600] = "";
    if (missing.n) {
        snprintf(extra, sizeof extra, "no done cell at %ld: %s", Lmax, missing.s);
        char line[800];
        snprintf(line, sizeof line, "%s: %s", fig.name, extra);
        note(p, line);
    }
    textbuf_free(&missing);
    char t[260];
    snprintf(t, sizeof t, "Mean NLL by position at length %ld", Lmax);
    title_vars(g, &fig, t);
    var_num(&fig.vars, "ctx_train", g->ctx_train < Lmax ? (double)g->ctx_train : -1);   /* inside the axis only */
    var_num(&fig.vars, "xmax", (double)Lmax);
    var_num(&fig.vars, "by_length", 0);
    var_num(&fig.vars, "logx", p->o && p->o->loss_logx);
    note_var(&fig, extra, &g->left_out);
    equal_var(&fig, &equal, "identical losses, one line over the other");
    textbuf_free(&equal);
    if (figure_finish(p, &fig, "loss_by_position.gp") != 0) return -1;

    /* (b) each method with at least two lengths: one line per length */
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        int with_bins = 0, n;
        for (int i = 0; i < se->n; i++) with_bins += res_array(se->cells[i], "nll_by_pos", &n) != NULL;
        if (with_bins < 2) continue;
        char base[160], safe[100];
        file_safe(se->name, safe, sizeof safe);
        bool clash = false;   /* two specs that make the same file name */
        for (int o = 0; o < s; o++) {
            char other[100];
            file_safe(g->series[o].name, other, sizeof other);
            clash |= strcmp(other, safe) == 0;
        }
        if (clash) snprintf(base, sizeof base, "loss_by_position_%s_%d", safe, s + 1);
        else snprintf(base, sizeof base, "loss_by_position_%s", safe);
        snprintf(what, sizeof what, "mean NLL by position for method %s, one block per length", se->name);
        if (figure_open(p, g, &fig, base, what) != 0) return -1;
        fputs(cols, fig.f);
        long longest = 0;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            if (!res_array(c, "nll_by_pos", &n)) continue;
            char title[48];
            snprintf(title, sizeof title, "L=%ld", cell_length(c));
            block_begin(&fig, title, NULL, NULL, -1);
            write_bins(fig.f, c);
            longest = cell_length(c);
        }
        snprintf(t, sizeof t, "Mean NLL by position, %s", se->legend);
        title_vars(g, &fig, t);
        var_num(&fig.vars, "ctx_train", g->ctx_train < longest ? (double)g->ctx_train : -1);
        var_num(&fig.vars, "xmax", (double)longest);
        var_num(&fig.vars, "by_length", 1);
        var_num(&fig.vars, "logx", p->o && p->o->loss_logx);
        note_var(&fig, NULL, NULL);
        if (figure_finish(p, &fig, "loss_by_position.gp") != 0) return -1;
    }
    return 0;
}

/* Figure 2: passkey accuracy by (length, depth), one panel per method; `graded`: an
 * extra heatmap of a graded measure (digit accuracy, the key's NLL), drawn only when
 * the results hold it. */
static int fig_passkey(struct plotter *p, const struct group *g, const char *metric, bool graded) {
    char arr[64];
    snprintf(arr, sizeof arr, "%s_by_depth", metric);
    if (graded) {   /* an extra heatmap: only when the results hold its measure */
        bool any = false;
        int n;
        for (int s = 0; s < g->n_series && !any; s++)
            for (int i = 0; i < g->series[s].n && !any; i++) any = res_array(g->series[s].cells[i], arr, &n) != NULL;
        if (!any) return 0;
    }
    /* the depth grid: from the first done cell that has it */
    const double *depth = NULL;
    int nd = 0;
    for (int s = 0; s < g->n_series && !depth; s++)
        for (int i = 0; i < g->series[s].n && !depth; i++) depth = res_array(g->series[s].cells[i], "depth", &nd);
    if (!depth) {
        char line[256];
        snprintf(line, sizeof line, "%s: no cell has a depth array; heatmap skipped", g->task);
        note(p, line);
        return 0;
    }
    struct figure fig;
    char what[200];
    snprintf(what, sizeof what, "passkey %s by context length and key depth, one block per method", metric);
    char base[96];
    snprintf(base, sizeof base, graded ? "passkey_heatmap_%s" : "passkey_heatmap", metric);
    if (figure_open(p, g, &fig, base, what) != 0) return -1;
    fprintf(fig.f,
            "# columns: length_index depth_index %s length depth_percent keys wilson_lo wilson_hi (indices place the "
            "cells on an even grid; keys: trials per depth; wilson: 95%% Wilson interval, exact-match accuracy only)\n",
            metric);
    struct textbuf odd = {0};
    double trials = NAN, vmax = 0;
    bool binary = strcmp(metric, "accuracy") == 0;
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        bool begun = false;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            int n = 0, m = 0;
            const double *v = res_array(c, arr, &n);
            const double *d = res_array(c, "depth", &m);
            bool same = v && d && n == nd && m == nd;
            for (int k = 0; same && k < nd; k++) same = fabs(d[k] - depth[k]) < 1e-9;
            if (!same) {
                char buf[160];
                snprintf(buf, sizeof buf, "%s%s@%ld", odd.n ? ", " : "", se->name, cell_length(c));
                textbuf_puts(&odd, buf);
                continue;
            }
            if (!begun) block_begin(&fig, se->name, &se->style, se->legend, se->target);
            begun = true;
            if (isnan(trials)) trials = res_scalar(c, "trials");
            int li = 0;
            while (li < g->n_lengths && g->lengths[li] != cell_length(c)) li++;
            double keys = res_scalar(c, "trials") / nd;
            for (int k = 0; k < nd; k++) {
                double lo = NAN, hi = NAN;
                if (binary) plot_wilson(round(v[k] * keys), keys, &lo, &hi);
                if (isfinite(v[k])) vmax = fmax(vmax, v[k]);
                fprintf(fig.f, "%d %d %.9g %ld %.9g %.9g %.9g %.9g\n", li, k, v[k], cell_length(c), 100 * depth[k], keys,
                        lo, hi);
            }
        }
    }
    char extra[600] = "";
    if (odd.n) {
        snprintf(extra, sizeof extra, "no %s on the common depth grid: %s", arr, odd.s);
        char line[800];
        snprintf(line, sizeof line, "%s: %s", fig.name, extra);
        note(p, line);
    }
    textbuf_free(&odd);
    char t[160];
    snprintf(t, sizeof t, "Passkey retrieval (%s)",
             !strcmp(metric, "key_nll") ? "NLL of the key" : !strcmp(metric, "digit_accuracy") ? "digit accuracy"
             : !strcmp(metric, "token_accuracy") ? "token accuracy" : "exact match");
    title_vars(g, &fig, t);
    axis_vars(g, &fig.vars);
    struct textbuf dl = {0};
    for (int k = 0; k < nd; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", 100 * depth[k]);
        add_word(&dl, buf);
    }
    var_str(&fig.vars, "depths", dl.s ? dl.s : "");
    textbuf_free(&dl);
    /* the trained-context line between the last trained length and the next one */
    int k = 0;
    while (k < g->n_lengths && g->ctx_train > 0 && g->lengths[k] <= g->ctx_train) k++;
    var_num(&fig.vars, "trained_x", g->ctx_train > 0 && k > 0 && k < g->n_lengths ? k - 0.5 : -1);
    var_str(&fig.vars, "metric", metric);
    var_num(&fig.vars, "trials", trials);
    /* NLL has no upper bound: the colour scale runs to the largest value, low = good */
    var_num(&fig.vars, "cbmax", strcmp(metric, "key_nll") == 0 ? (vmax > 0 ? vmax : 1) : 1);
    note_var(&fig, extra, &g->left_out);
    double keys = trials / nd;
    if (binary && keys > 0) {
        double lo, hi;
        plot_wilson(0, keys, &lo, &hi);
        char cav[160];
        snprintf(cav, sizeof cav, "one cell's 95%% Wilson interval at 0/%.0f is 0-%.2f", keys, hi);
        sample_size_var(&fig, keys, keys, "keys", cav);
    } else {
        var_str(&fig.vars, "note2", "");
        var_str(&fig.vars, "nlabel", "");
    }
    return figure_finish(p, &fig, "passkey_heatmap.gp");
}

/* Figure 2b: passkey exact-match accuracy vs length (all depths together), with the
 * 95% Wilson interval over the cell's trials. */
static int fig_passkey_acc(struct plotter *p, const struct group *g) {
    struct figure fig;
    if (figure_open(p, g, &fig, "passkey_accuracy", "passkey exact-match accuracy vs context length") != 0) return -1;
    fputs("# columns: length accuracy wilson_lo wilson_hi trials key_nll (wilson: 95% Wilson score interval over the "
          "cell's trials, every depth)\n",
          fig.f);
    double n_min = INFINITY, n_max = 0;
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        bool begun = false;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            double acc = res_scalar(c, "accuracy"), n = res_scalar(c, "trials"), lo, hi;
            if (!isfinite(acc) || !(n > 0)) continue;
            if (!begun) block_begin(&fig, se->name, &se->style, se->legend, se->target);
            begun = true;
            plot_wilson(round(acc * n), n, &lo, &hi);
            n_min = fmin(n_min, n);
            n_max = fmax(n_max, n);
            fprintf(fig.f, "%ld %.9g %.9g %.9g %.0f %.9g\n", cell_length(c), acc, lo, hi, n, res_scalar(c, "key_nll"));
        }
    }
    title_vars(g, &fig, "Passkey retrieval");
    axis_vars(g, &fig.vars);
    note_var(&fig, NULL, &g->left_out);
    sample_size_var(&fig, n_min, n_max, "keys", "the 95% Wilson intervals are wide");
    return figure_finish(p, &fig, "passkey_accuracy.gp");
}

/* Figure 3: first-sentence retrieval ROUGE-L vs length, with the standard error
 * over samples. */
static int fig_rouge(struct plotter *p, const struct group *g) {
    struct figure fig;
    if (figure_open(p, g, &fig, "first_sentence_rouge", "first-sentence retrieval ROUGE-L F1 vs context length") != 0)
        return -1;
    fputs("# columns: length rouge_l stderr samples exact_match exact_lo exact_hi (stderr: sample sd / sqrt(samples), 0 "
          "for one sample; exact_lo, exact_hi: 95% Wilson interval of the exact-match rate)\n",
          fig.f);
    double n_min = INFINITY, n_max = 0;
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        bool begun = false;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            double r = res_scalar(c, "rouge_l");
            if (!isfinite(r)) continue;
            if (!begun) block_begin(&fig, se->name, &se->style, se->legend, se->target);
            begun = true;
            int n = 0;
            const double *v = res_array(c, "rouge_l_by_sample", &n);
            double se_ = 0;
            if (v && n > 1) {
                double mean = 0, ss = 0;
                for (int k = 0; k < n; k++) mean += v[k] / n;
                for (int k = 0; k < n; k++) ss += (v[k] - mean) * (v[k] - mean);
                se_ = sqrt(ss / (n - 1) / n);
            }
            double samples = v ? n : res_scalar(c, "samples");
            double em = res_scalar(c, "exact_match"), lo, hi;
            plot_wilson(round(em * samples), samples, &lo, &hi);
            if (isfinite(samples)) {
                n_min = fmin(n_min, samples);
                n_max = fmax(n_max, samples);
            }
            fprintf(fig.f, "%ld %.9g %.9g %.0f %.9g %.9g %.9g\n", cell_length(c), r, se_, samples, em, lo, hi);
        }
    }
    title_vars(g, &fig, "First-sentence retrieval");
    axis_vars(g, &fig.vars);
    note_var(&fig, NULL, &g->left_out);
    /* equal by construction here too (every method is the baseline at factor 1), or by
     * chance (few samples, several methods at 0): the methods are already drawn side by
     * side, so the caption and notes.txt say which */
    double *dodge = malloc((size_t)(g->n_series * g->n + 1) * sizeof *dodge);
    struct textbuf equal = {0};
    if (dodge) find_equal(g, "rouge_l", dodge, &equal);
    free(dodge);
    if (equal.n) {
        textbuf_puts(&fig.caption_notes,
                     "Identical ROUGE-L (equal by construction, or by chance with few samples), drawn side by side: ");
        textbuf_puts(&fig.caption_notes, equal.s);
        textbuf_puts(&fig.caption_notes, ".\n");
        char line[2048];
        snprintf(line, sizeof line, "%s: identical ROUGE-L (drawn side by side): %s", fig.name, equal.s);
        note(p, line);
    }
    textbuf_free(&equal);
    sample_size_var(&fig, n_min, n_max, "samples", "the error bars (1 s.e. over samples) are rough");
    return figure_finish(p, &fig, "first_sentence_rouge.gp");
}

/* A cell's forward-pass rates, one per window or prompt (timing_tokens_per_s: the same
 * work repeated, so their spread is the timing's own noise): the median and the extremes
 * of the finite ones and how many there are. Without them (results from before they were
 * recorded) the cell's overall rate stands in, with n = 0. */
static void unit_rates(const struct store_cell *c, double *med, double *lo, double *hi, int *n) {
    const struct result_item *r = result_find(&c->res, "timing_tokens_per_s");
    *n = 0;
    *med = *lo = *hi = attr_num(c, "tokens_per_s");
    if (!r || r->kind != RESULT_ARRAY || r->rows < 1) return;
    double *v = malloc((size_t)r->rows * sizeof *v);
    if (!v) return;
    int k = 0;
    for (int i = 0; i < r->rows; i++)
        if (isfinite(r->data[i]) && r->data[i] > 0) v[k++] = r->data[i];
    if (k > 0) {
        qsort(v, (size_t)k, sizeof *v, cmp_dbl);
        *med = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
        *lo = v[0];
        *hi = v[k - 1];
        *n = k;
    }
    free(v);
}

/* Figure 5: throughput and peak memory vs length, for any task. */
static int fig_cost(struct plotter *p, const struct group *g) {
    struct figure fig;
    char base[120], safe[80], what[160];
    file_safe(g->task, safe, sizeof safe);
    snprintf(base, sizeof base, "cost_%s", safe);
    snprintf(what, sizeof what, "throughput and peak memory vs context length (task %s)", g->task);
    if (figure_open(p, g, &fig, base, what) != 0) return -1;
    fputs("# columns: length tokens_per_s peak_rss_mib session_mib wall_s load_avg_start load_avg_end rate_median "
          "rate_min rate_max n_units (tokens_per_s: the cell's tokens over its wall time; rate_*: the forward passes "
          "of its windows or prompts, n_units of them, tokens over seconds each; n_units 0: not recorded, the "
          "cell's rate stands in)\n",
          fig.f);
    int n_min = INT_MAX, n_max = 0;
    for (int s = 0; s < g->n_series; s++) {
        const struct series *se = &g->series[s];
        bool begun = false;
        for (int i = 0; i < se->n; i++) {
            const struct store_cell *c = se->cells[i];
            double tps = attr_num(c, "tokens_per_s"), rss = attr_num(c, "peak_rss_mib");
            if (!isfinite(tps) && !isfinite(rss)) continue;
            if (!begun) block_begin(&fig, se->name, &se->style, se->legend, se->target);
            begun = true;
            double med, lo, hi;
            int nu;
            unit_rates(c, &med, &lo, &hi, &nu);
            if (nu < n_min) n_min = nu;
            if (nu > n_max) n_max = nu;
            fprintf(fig.f, "%ld %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %d\n", cell_length(c), tps, rss,
                    attr_num(c, "session_mib"), attr_num(c, "wall_s"), attr_num(c, "load_avg_start"),
                    attr_num(c, "load_avg_end"), med, lo, hi, nu);
        }
    }
    char t[160];
    snprintf(t, sizeof t, "Throughput and peak memory (task %s)", g->task);
    title_vars(g, &fig, t);
    axis_vars(g, &fig.vars);
    var_str(&fig.vars, "host", attr_s(g->cells[0], "host"));
    var_num(&fig.vars, "threads", attr_num(g->cells[0], "threads"));
    /* The spread over repeats: each cell's windows or prompts are the same forward pass run
     * again, so the bars (smallest to largest) show how steady the timing was. */
    char nlab[160] = "";
    if (n_max == 0)
        snprintf(nlab, sizeof nlab, "one timing per cell (no per-window timings recorded): no spread shown");
    else if (n_min == n_max)
        snprintf(nlab, sizeof nlab, "median of n = %d forward passes per point, bars min-max", n_min);
    else
        snprintf(nlab, sizeof nlab, "median of n = %d-%d forward passes per point, bars min-max", n_min == INT_MAX ? 0 : n_min,
                 n_max);
    var_str(&fig.vars, "nlabel", nlab);
    textbuf_puts(&fig.caption_notes, "Throughput: ");
    textbuf_puts(&fig.caption_notes, nlab);
    textbuf_puts(&fig.caption_notes, n_max > 0 && n_min < 2 ? " (a point with n < 2 has no spread to show).\n" : ".\n");
    note_var(&fig, NULL, &g->left_out);
    /* Perplexity is prefill only, and its work per token grows with the context, so a rate
     * (the one drawn) that rises with the length says the timings were disturbed (other
     * load on the machine, a cold first cell); the load averages below say whether the
     * machine was shared. Generation tasks are left alone: their decode steps cost more
     * per token than the prefill, and the prefill's share grows with the length. */
    struct textbuf rising = {0};
    for (int s = 0; s < g->n_series && strcmp(g->task, "ppl") == 0; s++) {
        const struct series *se = &g->series[s];
        double prev = NAN;
        long prev_len = 0;
        for (int i = 0; i < se->n; i++) {
            double tps, lo, hi;
            int nu;
            unit_rates(se->cells[i], &tps, &lo, &hi, &nu);
            if (!isfinite(tps)) continue;
            if (isfinite(prev) && tps > RATE_RISE * prev) {
                char a[32], b[32], buf[200];
                length_label(prev_len, a, sizeof a);
                length_label(cell_length(se->cells[i]), b, sizeof b);
                snprintf(buf, sizeof buf, "%s%s %s->%s (%.0f->%.0f tokens/s)", rising.n ? ", " : "", se->name, a, b, prev,
                         tps);
                textbuf_puts(&rising, buf);
            }
            prev = tps;
            prev_len = cell_length(se->cells[i]);
        }
    }
    if (rising.n) {
        char line[2048];
        snprintf(line, sizeof line, "%s: throughput rises with the length (timings disturbed: load or warm-up?): %s",
                 fig.name, rising.s);
        note(p, line);
        textbuf_puts(&fig.caption_notes, "Throughput rises with the length, which the work per token cannot do: the "
                                         "timings were disturbed (other load on the machine, whose load average each "
                                         "cell records from now on, or a cold first cell): ");
        textbuf_puts(&fig.caption_notes, rising.s);
        textbuf_puts(&fig.caption_notes, ".\n");
        char short_line[FIGURE_NOTE_MAX + 80];
        snprintf(short_line, sizeof short_line, "tokens/s rises with length (disturbed timings?): %.*s%s", FIGURE_NOTE_MAX - 40,
                 rising.s, rising.n > FIGURE_NOTE_MAX - 40 ? "... (see notes.txt)" : "");
        var_str(&fig.vars, "note2", short_line);
    } else {
        var_str(&fig.vars, "note2", "");
    }
    textbuf_free(&rising);
    /* A shared machine: the load average above the cell's own threads is other work
     * competing for the cores while the cell was timed (results from before the load was
     * recorded have none and are not judged). */
    double worst_other = 0;
    int n_loaded = 0, n_known = 0;
    for (int i = 0; i < g->n; i++) {
        const struct store_cell *c = g->cells[i];
        double a = attr_num(c, "load_avg_start"), b = attr_num(c, "load_avg_end"), th = attr_num(c, "threads");
        if (!isfinite(a) || !isfinite(b) || !isfinite(th)) continue;
        n_known++;
        double other = (a > b ? a : b) - th;
        if (other > LOAD_OTHER) n_loaded++;
        if (other > worst_other) worst_other = other;
    }
    if (n_loaded > 0) {
        char line[400];
        snprintf(line, sizeof line, "measured on a shared machine: in %d of %d cells the load average exceeded the "
                 "cell's own threads by up to %.1f", n_loaded, n_known, worst_other);
        char full[600];
        snprintf(full, sizeof full, "%s: %s", fig.name, line);
        note(p, full);
        textbuf_puts(&fig.caption_notes, line);
        textbuf_puts(&fig.caption_notes, " (other work competed for the cores: the times are upper bounds).\n");
        var_str(&fig.vars, "note3", line);
    } else {
        var_str(&fig.vars, "note3", "");
    }
    return figure_finish(p, &fig, "cost_vs_length.gp");
}

/* ------------------------------------------------------------------ driver */

static int draw_group(struct plotter *p, struct group *g) {
    if (group_build(p, g) != 0) {
        snprintf(p->err, p->errlen, "out of memory");
        return -1;
    }
    if (g->n_series == 0) {
        char line[256];
        snprintf(line, sizeof line, "%s (%s): no done cells; figures skipped", g->task, attr_s(g->cells[0], "model"));
        note(p, line);
        return 0;
    }
    int rc = 0;
    if (strcmp(g->task, "ppl") == 0) rc = fig_ppl(p, g) || fig_loss(p, g);
    else if (strcmp(g->task, "passkey") == 0) {
        const char *metric = p->o && p->o->passkey_metric ? p->o->passkey_metric : "accuracy";
        rc = fig_passkey(p, g, metric, false) || fig_passkey_acc(p, g);
        /* the graded measures, when the results hold them: nearer misses show there */
        static const char *const graded[] = {"digit_accuracy", "key_nll"};
        for (int k = 0; k < 2 && !rc; k++)
            if (strcmp(metric, graded[k]) != 0) rc = fig_passkey(p, g, graded[k], true);
    }
    else if (strcmp(g->task, "first_sentence") == 0) rc = fig_rouge(p, g);
    return rc ? -1 : fig_cost(p, g);
}

int plot_prepare(const char *results, const char *dir, const struct plot_opts *o, struct plot_plan *plan, char *err,
                 size_t errlen) {
    memset(plan, 0, sizeof *plan);
    if (o && o->passkey_metric && strcmp(o->passkey_metric, "accuracy") && strcmp(o->passkey_metric, "digit_accuracy") &&
        strcmp(o->passkey_metric, "token_accuracy")) {
        snprintf(err, errlen, "passkey metric '%s': use accuracy, digit_accuracy or token_accuracy", o->passkey_metric);
        return -1;
    }
    struct plotter p = {.results = results, .dir = dir, .o = o, .plan = plan, .err = err, .errlen = errlen};
    store_settle(results);   /* a killed writer's journal, folded when nobody writes the file */
    if (store_read(results, true, &p.cells, &p.n_cells, err, errlen) != 0) return -1;
    int rc = -1;
    struct group g = {0};
    bool *used = calloc((size_t)(p.n_cells ? p.n_cells : 1), sizeof *used);
    const struct store_cell **members = malloc((size_t)(p.n_cells ? p.n_cells : 1) * sizeof *members);
    if (!used || !members || order_methods(&p) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (p.n_cells == 0) note(&p, "the results file holds no cells yet; nothing to plot");
    static const char *const known[] = {"ppl", "passkey", "first_sentence"};
    static const char *const known_figs[] = {"ppl_vs_length and loss_by_position", "passkey_heatmap",
                                             "first_sentence_rouge"};
    for (int k = 0; k < 3; k++) {
        bool present = false;
        for (int i = 0; i < p.n_cells && !present; i++) present = strcmp(attr_s(&p.cells[i], "task"), known[k]) == 0;
        if (!present && p.n_cells) {
            char line[256];
            snprintf(line, sizeof line, "no %s cells in the file: %s skipped", known[k], known_figs[k]);
            note(&p, line);
        }
    }
    for (int i = 0; i < p.n_cells; i++) {
        if (used[i]) continue;
        g = (struct group){.task = attr_s(&p.cells[i], "task"), .cells = members};
        for (int j = i; j < p.n_cells; j++)
            if (!used[j] && same_group(&p.cells[i], &p.cells[j])) {
                used[j] = true;
                members[g.n++] = &p.cells[j];
            }
        /* groups of the same task before this one, and in all */
        for (int j = 0; j < p.n_cells; j++) {
            if (strcmp(attr_s(&p.cells[j], "task"), g.task) != 0) continue;
            bool first_of_group = true;   /* j starts a group if no earlier cell is in its group */
            for (int k = 0; k < j && first_of_group; k++) first_of_group = !same_group(&p.cells[k], &p.cells[j]);
            if (!first_of_group) continue;
            g.n_of_task++;
            if (j <= i) g.ordinal++;
        }
        if (draw_group(&p, &g) != 0) goto out;
        group_free(&g);
    }
    if (plan->notes.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    group_free(&g);
    free(used);
    free(members);
    free(p.methods);
    /* the plan's strings point into nothing from the cells: they can go */
    store_cells_free(p.cells, p.n_cells);
    if (rc != 0) plot_plan_free(plan);
    return rc;
}

void plot_plan_free(struct plot_plan *plan) {
    for (int i = 0; i < plan->n_jobs; i++) {
        free(plan->jobs[i].out);
        free(plan->jobs[i].vars);
        free(plan->jobs[i].caption);
    }
    free(plan->jobs);
    textbuf_free(&plan->notes);
    memset(plan, 0, sizeof *plan);
}
