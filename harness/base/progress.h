/* Progress on stderr, for a sweep's cells and for the standalone commands (ppl,
 * generate). On a terminal: one bar redrawn in place (cell i/N, the cell's share done,
 * tokens/s, time left). Otherwise (a log file, CI): plain lines, one when a cell starts,
 * one every PROGRESS_LOG_EVERY_S while it runs, one when it ends. The environment
 * variable CTXBENCH_PROGRESS_INTERVAL (seconds, >= 0) replaces both intervals (tests set
 * 0 to see every report). Reports arrive from inside the forward passes (per chunk and
 * decode step, see task_progress), so a long cell is never silent for long. */
#ifndef CTX_PROGRESS_H
#define CTX_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

/* A cell still to run, for the time-left estimate: cells of one group (a task) are
 * assumed to cost a + b L + c L^2 seconds at length L (token-capped work plus attention),
 * fitted to that group's finished cells. */
struct progress_cell {
    int group;       /* 0 .. PROGRESS_MAX_GROUPS-1 */
    double length;
};

#define PROGRESS_MAX_GROUPS 32
#define PROGRESS_LOG_EVERY_S 5.0    /* plain lines (not a terminal) */
#define PROGRESS_DRAW_EVERY_S 0.2   /* the bar on a terminal */

struct progress_fit {
    int n;              /* cells */
    int n_lengths;      /* distinct lengths seen, counted up to 3 */
    double lengths[3];
    double sx[5];       /* sums of x^k, x = length / 1024 */
    double sxt[3];      /* sums of t x^k */
};

/* Adds a finished cell; predicts the seconds of a cell of `length` (NaN with no data).
 * With one length seen, time is taken as proportional to length; with two, a line;
 * with three or more, the quadratic (or the line when the quadratic has a negative term). */
void progress_fit_add(struct progress_fit *g, double length, double seconds);
double progress_fit_predict(const struct progress_fit *g, double length);

struct progress {
    FILE *f;
    bool tty;
    int n_cells;                      /* cells in the grid; 0 = one job, no "[i/N]" */
    double interval;                  /* seconds between lines or redraws */
    const struct progress_cell *todo; /* the cells this run will compute, in order (caller's) */
    int n_todo, next;                 /* next: index in todo of the cell after the current one */
    struct progress_fit fit[PROGRESS_MAX_GROUPS];
    /* the current cell */
    int index;                        /* 1-based position in the grid */
    char label[160];
    struct progress_cell cur;
    double t_start, t_last_draw, frac;
    long tokens;
    bool drawn;                       /* a bar is on screen (tty) and must be cleared first */
};

/* tty: draw a bar (pass isatty(fileno(f))). todo: the cells that will run, in order
 * (NULL, 0 for a single job). */
void progress_init(struct progress *p, FILE *f, bool tty, int n_cells, const struct progress_cell *todo, int n_todo);
/* Seconds between reports: CTXBENCH_PROGRESS_INTERVAL when set to a number >= 0, else
 * the default for a terminal (tty) or a log. */
double progress_interval(bool tty);
/* Starts the next cell of todo; index is its 1-based position in the whole grid. */
void progress_begin(struct progress *p, int index, const char *label);
/* frac in [0, 1] of the current cell, tokens evaluated in it so far. */
void progress_update(struct progress *p, double frac, long tokens);

/* A backend session's progress hook (session_set_progress) for one job of `total`
 * forward tokens: pass progress_on_tokens with a struct progress_tokens as its arg. */
struct progress_tokens {
    struct progress *p;
    long done, total;
};
void progress_on_tokens(void *arg, int n_tokens);
/* Ends the current cell with a one-line outcome ("done, ppl = 3.21", "skipped: ..."). */
void progress_end(struct progress *p, const char *outcome);
/* A line of text that does not garble the bar. */
void progress_note(struct progress *p, const char *text);
/* Estimated seconds for the cells after the current one (NaN before any cell ended). */
double progress_time_left(const struct progress *p);
/* "1h02m", "3m05s", "12s", "2.5s" into buf. */
const char *progress_duration(double seconds, char *buf, size_t cap);

#endif
