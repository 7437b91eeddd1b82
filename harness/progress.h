/* Sweep progress on stderr. On a terminal: one bar redrawn in place (cell i/N, the
 * cell's share done, tokens/s, time left). Otherwise (a log file, CI): plain lines,
 * one when a cell starts, one at most every 30 s while it runs, one when it ends. */
#ifndef CTX_PROGRESS_H
#define CTX_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

struct progress {
    FILE *f;
    bool tty;
    int n_cells;            /* cells in the grid */
    double work_left;       /* estimated work of the cells not yet run (arbitrary units) */
    double work_done;       /* work of the cells run so far in this process */
    double time_done;       /* seconds those cells took */
    /* the current cell */
    int index;              /* 1-based position in the grid */
    char label[160];
    double weight;          /* its estimated work */
    double t_start, t_last_draw, frac;
    long tokens;
    bool drawn;             /* a bar is on screen (tty) and must be cleared first */
};

/* tty: draw a bar (pass isatty(fileno(f))). work_total: the sum of the weights of the
 * cells that will run, used for the time-left estimate. */
void progress_init(struct progress *p, FILE *f, bool tty, int n_cells, double work_total);
void progress_begin(struct progress *p, int index, const char *label, double weight);
/* frac in [0, 1] of the current cell, tokens evaluated in it so far. */
void progress_update(struct progress *p, double frac, long tokens);
/* Ends the current cell with a one-line outcome ("done ppl=3.21", "skipped: ..."). */
void progress_end(struct progress *p, const char *outcome);
/* A line of text that does not garble the bar. */
void progress_note(struct progress *p, const char *text);
/* "1h02m", "3m05s", "12s" into buf. */
const char *progress_duration(double seconds, char *buf, size_t cap);

#endif
