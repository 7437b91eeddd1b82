/* Before a sweep runs: what each cell needs (session memory under its method's plan)
 * and how long it should take (its task's work, priced by a short measured calibration
 * on this runtime). The sweep skips a cell that does not fit with the same numbers it
 * prints here, and `sweep --dry-run` lists them all without running or writing anything. */
#ifndef CTX_SWEEP_PLAN_H
#define CTX_SWEEP_PLAN_H

#include <stdbool.h>
#include <stdio.h>

#include "sweep.h"

/* CELL_TOO_BIG and CELL_UNSUPPORTED cells are skipped (recorded with the reason);
 * CELL_NO_PLAN cells fail (the method cannot plan this length). */
enum cell_fit { CELL_FITS, CELL_TOO_BIG, CELL_UNSUPPORTED, CELL_NO_PLAN };

struct cell_need {
    enum cell_fit fit;
    int tokens;                /* session positions (the task's session_tokens) */
    size_t bytes;              /* session memory under the plan (backend session_bytes) */
    struct method_plan plan;   /* valid unless CELL_NO_PLAN */
    char reason[1024];         /* why the cell will not run */
};

/* What cell (method m, task t, length) needs and whether it fits in `avail` bytes. */
void sweep_cell_need(const struct runtime *rt, const struct sweep_task *t, const struct method_spec *m, int length,
                     size_t avail, struct cell_need *out);

/* Seconds per unit of task work (struct task_work) on this runtime, measured. */
struct sweep_rates {
    double token_s;      /* per prefill token: the matrix work of a batched forward pass */
    double pair_s;       /* per attended (query, key) pair */
    double step_s;       /* per single-token eval, beyond its attention */
    double tokenize_s;   /* per token the tokenizer produces */
    double chunk_s;      /* measured: one 512-token forward pass from an empty session */
    int context;         /* the longest context the calibration ran */
    bool pair_from_flops; /* pair_s from the FLOP ratio (the timings could not separate it) */
    bool one_pass;       /* the first chunk took over a few seconds: it alone was timed, with one decode step */
};

/* Totals of a dry run (struct sweep_summary's plan), for job scripts. */
/* Times a few short evals on rt with its threads (a 512-token chunk, then more chunks up
 * to a few thousand tokens of context as ~1 s allows, each the fastest of its repeats;
 * then the median of eight decode steps) and the tokenizer, and fits the rates:
 * seconds = token_s x tokens + pair_s x pairs for the two prefills. About 2-3 s on a
 * small model. A model whose first chunk takes more than a few seconds (a 7B shape on a
 * few cores) is timed by that chunk and one decode step alone, split by FLOPs (one_pass).
 * 0, or -1 + reason. */
int sweep_calibrate(struct runtime *rt, struct sweep_rates *r, char *err, size_t errlen);

/* Estimated seconds of one cell of task t at `length`; NAN when the task gives no work. */
double sweep_cell_seconds(const struct sweep_rates *r, const struct sweep_task *t, int length);

/* A cell's nominal cost for sharding: its task's work (struct task_work) priced in
 * FLOPs from the model's shape (2 x parameters per prefill token or decode step, 4 x
 * layers x heads x head_dim per attended pair) instead of the timed calibration, so that
 * every node computes the same shares. A task without a work estimate: its session's
 * tokens as prefill. */
double sweep_cell_cost(const struct runtime *rt, const struct sweep_task *t, int length);

/* The cells of the grid, in run order (lengths, then tasks, then methods; index c),
 * that are not done[c] and whose session does not fit in avail bytes: one line on f,
 * "sweep: warning: N cells will be skipped ...", naming them. Nothing when all fit. */
void sweep_warn_skips(FILE *f, const struct runtime *rt, const struct sweep_config *cfg, const bool *done,
                      const bool *mine, size_t avail);

/* sweep_warn_skips and sweep_dry_run consider only the cells with mine[c] (NULL: all). */
/* The dry run: prints the memory of the run (weights, what the backend holds, the largest
 * session, against avail), calibrates, then prints every cell of the grid (task, method, length,
 * settings, session tokens and memory, estimated time, or why it will be skipped) and
 * the totals on f. Runs no cell and writes no file. sum: total, cached (done[]),
 * skipped (will not fit or has no plan). A failed calibration is reported on f and
 * leaves the times unknown. Returns 0. */
int sweep_dry_run(FILE *f, struct runtime *rt, const struct sweep_config *cfg, const bool *done, const bool *mine,
                  size_t avail, struct sweep_summary *sum);

#endif
