/* The grid runner: every cell (model, method + parameters, task + settings, length)
 * of one model's sweep, each written to the results file (store.h) the moment it
 * finishes. Cells already done in the file are not run again, so an interrupted
 * sweep resumes by running the same command. */
#ifndef CTX_SWEEP_H
#define CTX_SWEEP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "method.h"
#include "store.h"
#include "runtime.h"
#include "task.h"

#define CTXBENCH_VERSION "0.1.0"
#define SWEEP_MAX_LENGTHS 64

/* The git revision the binary was built from ("unknown" outside a checkout). */
const char *ctxbench_git_rev(void);

/* One task of the grid with its settings and data. */
struct sweep_task {
    const struct task *task;
    char settings[1024];   /* canonical "k=v,..." sorted by key ("" = the task's defaults) */
    char data[512];        /* dataset name or path handed to the task ("" = none) */
    long limit;            /* sweep --limit N (recorded as the cell attribute `limit`); 0 = none */
};

struct sweep_config {
    const char *model_path;
    const struct method_spec *methods;
    int n_methods;
    const struct sweep_task *tasks;
    int n_tasks;
    const int *lengths;
    int n_lengths;
    const char *out_path;
    uint64_t seed;
    const char *cache_dir;               /* handed to tasks; NULL = none */
    size_t mem_limit;                    /* bytes a session may take; 0 = MemAvailable before each cell */
    /* Ctrl-C: nonzero *stop ends the sweep after the current cell; *writing is nonzero
     * while a cell is being written, so a signal handler knows not to exit then. */
    const volatile sig_atomic_t *stop;
    volatile sig_atomic_t *writing;
    FILE *log;                           /* progress and notes (stderr); NULL = silent */
    /* Print every cell with its memory and estimated time on log (sweep_plan.h) and
     * stop: no cell runs and the results file is neither created nor changed. */
    int dry_run;
    /* Run only share `shard` (1..n_shards) of the grid (sweep_list_cells); n_shards 0 = all. */
    int shard, n_shards;
};

struct sweep_summary {
    int total;        /* cells in the grid */
    int cached;       /* already done in the file before this run */
    int done, skipped, failed;   /* a dry run: skipped = cells that will not run */
    int interrupted;  /* stopped early by *stop */
    /* a dry run: estimated seconds of the cells to run (NAN: unknown) and the largest
     * session among them (bytes) */
    double est_seconds;
    size_t max_session_bytes;
};

/* Runs the grid on an open runtime. Returns 0 when every cell was attempted or it was
 * interrupted (see *sum), -1 + reason when the sweep could not start or a cell could
 * not be written. */
int sweep_run(struct runtime *rt, const struct sweep_config *cfg, struct sweep_summary *sum, char *err,
              size_t errlen);

/* A cell of the grid, in run order (lengths, then tasks, then methods). */
struct sweep_cell_info {
    char id[STORE_ID_MAX + 1];
    int li, ti, mi;     /* its length, task and method */
    double cost;        /* nominal cost for sharding (sweep_cell_cost) */
    int shard;          /* 0-based share of n_shards; 0 without sharding */
};

/* Every cell of cfg's grid (cfg->shard ignored) with its id and, for n_shards > 0, its
 * share: greedy longest-processing-time over the cells sorted by nominal cost (largest
 * first, ties by id), each to the share with the least cost so far (ties: the lowest
 * share). The same on every machine: the cost is priced from the model's shape, not
 * timed. *out malloc'd. 0, or -1 + reason. */
int sweep_list_cells(struct runtime *rt, const struct sweep_config *cfg, int n_shards, struct sweep_cell_info **out,
                     int *n, char *err, size_t errlen);

/* "I/N" with 1 <= I <= N <= 100000. 0, or -1 + a one-line reason naming the text. */
int sweep_parse_shard(const char *text, int *shard, int *n_shards, char *err, size_t errlen);

/* Lengths: a comma list of items, each N, Nk (x1024) or Nx (x the trained context),
 * or A:B = A, 2A, 4A, ... up to B. "4k:128k", "512,1k,2k", "1x:32x". Sorted, without
 * duplicates, each in [TASK_MIN_LENGTH, TASK_MAX_LENGTH] = [4, 16777216]; anything else
 * is an error stating that rule. *out is malloc'd. */
int sweep_parse_lengths(const char *text, int ctx_train, int **out, int *n, char *err, size_t errlen);

/* Canonical settings text: items sorted by key, later items replacing earlier ones with
 * the same key ("b=1,a=2,b=3" -> "a=2,b=3"). 0, or -1 + reason. */
int sweep_canonical_settings(const char *text, char *out, size_t cap, char *err, size_t errlen);

/* Where a dataset spec resolves (dataset_resolve: a named dataset, a path, or a path
 * under $CTXBENCH_SHARED/datasets). 0, or -1 + reason. */
int sweep_data_path(const char *name, char *path, size_t cap, char *err, size_t errlen);

/* The cell key (every input that defines the cell, as text) and the cell's group name:
 * task.method.L<length>.<12 hex digits of the key's SHA-256>. The KV cache types are in
 * the key only when either is not f32, so the cells of f32 caches keep the identities
 * they had before cache types existed. */
void sweep_cell_key(const char *model_sha256, const char *backend, const struct kv_types *kv,
                    const struct method_spec *m, const struct sweep_task *t, const char *data_sha256, int length,
                    uint64_t seed, char *key, size_t keycap, char *id, size_t idcap);

#endif
