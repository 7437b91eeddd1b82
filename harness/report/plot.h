/* Figures from a sweep's results file: the data side. plot_prepare reads the HDF5
 * results (results/README.md), writes one gnuplot-readable .dat file per figure into
 * the output directory (a comment header says what each block and column is), and
 * returns the list of gnuplot runs that draw them (scripts in plots/, see
 * plots/README.md). Drawing is cmd_plot.c's job, so the data can be checked without
 * gnuplot.
 *
 * Beside each DIR/<figure>.dat goes DIR/<figure>.caption.txt: the figure's
 * provenance (model and its hash, task protocol, dataset path and hash, settings,
 * seed, backend, git revision), its series and its notes.
 *
 * Only `done` cells are plotted. Skipped and failed cells, figures whose task is not
 * in the file, and anything else left out become notes (one line each). */
#ifndef CTX_PLOT_H
#define CTX_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "textbuf.h"

struct plot_opts {
    const char *passkey_metric;   /* the heatmap shows <metric>_by_depth (default "accuracy") */
    bool loss_logx;               /* loss-by-position figures: log2 position axis */
};

/* One figure: gnuplot runs `script` (a file name in the scripts directory) with the
 * statements in `vars` (given with -e before the script; they set data=, title=, ...),
 * plus term= and out= for each output format. */
struct plot_job {
    char script[48];
    char *out;     /* output path without extension: DIR/name */
    char *vars;    /* gnuplot statements, ';'-separated */
    char *caption; /* the figure's caption (also DIR/name.caption.txt): for the SVG's <desc> */
};

struct plot_plan {
    int n_jobs, cap_jobs;
    struct plot_job *jobs;
    struct textbuf notes;   /* one line per note, each ending in '\n' */
};

/* Writes DIR/<figure>.dat for every figure the results allow and fills `plan`.
 * DIR must exist. Returns 0, or -1 with a one-line reason (unreadable results file,
 * a data file that cannot be written, out of memory). */
int plot_prepare(const char *results, const char *dir, const struct plot_opts *o, struct plot_plan *plan,
                 char *err, size_t errlen);
void plot_plan_free(struct plot_plan *plan);

/* How a method is drawn in every figure of every results file: the colour and point
 * shape come from the method's name (Okabe-Ito colours, colour-blind safe; each
 * method its own shape, so lines stay apart in grey print), the dash and an open
 * point shape from the spec's parameters (a spec with none is solid, filled). The
 * same spec always gets the same style; the sweep's order plays no part. */
struct plot_style {
    char color[8];   /* "#RRGGBB" */
    int dash;        /* gnuplot dash type: 1 solid, 2 dashed, 3 dotted, 4 dash-dot, 5 dash-dot-dot */
    int point;       /* gnuplot point type */
};
void plot_method_style(const char *spec, struct plot_style *st);

/* The 95% Wilson score interval of k successes in n trials; NaN when n <= 0. */
void plot_wilson(double k, double n, double *lo, double *hi);
/* 95% percentile-bootstrap interval of a perplexity over n windows (summed NLL and scored
 * tokens per window), recomputing the token mean or (mean_of_windows) the mean of window
 * means; NAN, NAN when n < 2. Deterministic. */
void plot_ppl_bootstrap(const double *nll, const double *scored, int n, bool mean_of_windows, double *lo, double *hi);

#endif
