/* Tasks as plugins, like methods: each file tasks/NAME.c defines
 * `const struct task task_NAME` and the build lists it (scripts/gen_registry.sh).
 * A task runs one cell — (model, method + parameters, task + settings, length) —
 * through the runtime it is given, and never learns which backend that is. */
#ifndef CTX_TASK_H
#define CTX_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "method.h"
#include "result.h"
#include "textbuf.h"
#include "runtime.h"

/* The lengths a cell may have, the one rule `sweep --lengths` checks (and states) up
 * front: no task runs below 4 tokens (ppl needs BOS and three text tokens to score a
 * window; the prompt tasks need far more and say so for their own reasons), and 16M
 * (2^24) is the context bound the whole harness uses (ppl -c, bench -c, method windows). */
#define TASK_MIN_LENGTH 4
#define TASK_MAX_LENGTH (1 << 24)

struct dataset;

struct task_ctx {
    struct runtime *rt;
    const struct method_spec *method;
    int length;                    /* the cell's context length in tokens */
    const char *data;              /* dataset: a name under ../shared/datasets or a path */
    const char *settings;          /* "k=v,k=v" task settings ("" = defaults) */
    uint64_t seed;
    const char *cache_dir;         /* where tokenized corpora may be cached; NULL = no cache */
    /* Optional progress report: fraction of this cell done and tokens evaluated so far. */
    void (*progress)(void *arg, double frac, long tokens);
    void *progress_arg;
    /* Optional: the dataset `data` names, already read by the caller, used instead of
     * reading it again (ctxbench ppl reads its text before it opens the model, so a bad
     * file fails fast). NULL: the task reads `data` itself. */
    const struct dataset *dataset;
    /* Optional, for a command that shows a single cell (NULL: none; both get note_arg):
     * `begin` once, when the cell has read its data and its forward passes start, with
     * what they are ("4 windows of 128"); `note`, one line of text at a time about the
     * cell (what it read, each step's result). */
    void (*begin)(void *arg, const char *what);
    void (*note)(void *arg, const char *line);
    void *note_arg;
};

/* The work of one cell, for time estimates before a sweep runs (sweep --dry-run): the
 * sweep prices each kind from a short measured calibration. Counts, not seconds, so a
 * task never needs to know the backend or the machine. */
struct task_work {
    double prefill_tokens;   /* tokens evaluated in batches (prompts, windows) */
    double decode_steps;     /* single-token evals (greedy and teacher-forced steps) */
    double attn_pairs;       /* (query, key) pairs all of them attend */
    double tokenized;        /* tokens of text the task tokenizes while building prompts */
};

/* One setting a task understands: the table is what the task reads its settings with
 * (task_settings_read) and what `ctxbench tasks` prints, so the two cannot disagree. */
enum task_setting_type { TASK_SETTING_INT, TASK_SETTING_CHOICE };
struct task_setting {
    const char *name;                 /* NULL ends a table */
    enum task_setting_type type;
    long def;                         /* INT: the default; CHOICE: index into choices */
    long min, max;                    /* INT: valid range, inclusive */
    const char *const *choices;       /* CHOICE: NULL-terminated */
    const char *def_text;             /* shown instead of def when the default is derived ("L-1") */
    const char *help;                 /* one line */
};

struct task {
    const char *name;
    const char *summary;             /* one line */
    const char *help;                /* protocol, settings with defaults, scoring, sources */
    const char *default_data;        /* dataset used when none is given */
    const struct task_setting *settings;   /* NULL-name-terminated table */
    /* The settings whose product is the number of windows, prompts or samples of a cell,
     * which `sweep --limit N` caps at N (lm-eval's --limit), each in turn to at most N / the
     * product of those before it (at least 1); NULL-terminated, NULL: no limit applies. */
    const char *const *limit_settings;
    /* Checks settings before a sweep starts; 0 or -1 + one-line reason listing valid keys. */
    int (*check)(const char *settings, char *err, size_t errlen);
    /* Positions one session of this task needs at `length` (prompt + generated tokens). */
    int (*session_tokens)(int length, const char *settings);
    /* Optional: adds the work of a cell at `length` to *w (settings already checked); data
     * is assumed long enough for the whole cell. NULL: no time estimate for this task. */
    void (*work)(int length, const char *settings, struct task_work *w);
    /* Runs the cell: 0 with results in *out, or -1 + one-line reason. */
    int (*run)(const struct task_ctx *ctx, struct result *out, char *err, size_t errlen);
};

/* Every task of this build, one per file in tasks/, NULL-terminated (generated). */
extern const struct task *const registry_tasks[];
const struct task *task_find(const char *name);

/* Reads settings text against a table: unknown keys, malformed items and values out of
 * range are one-line errors (settings.h) starting with `who`. values[i] is the value of
 * table[i] (a CHOICE as its index), its default when absent. 0, or -1 + reason. */
int task_settings_read(const struct task_setting *table, const char *who, const char *text, long *values,
                       char *err, size_t errlen);
/* Per-sample records of a retrieval task (sweep --log-samples shows them in the JSON):
 * result items sample_id, sample_expected, sample_generated (texts: one line per sample,
 * with '\' written "\\" and a line break "\n") and sample_score (an array). */
struct sample_log {
    struct textbuf ids, expected, generated;
    double *score;
    int n, cap;
    bool oom;
};
void sample_log_add(struct sample_log *l, const char *id, const char *expected, const char *generated, double score);
/* Adds the four items to r. 0, or -1 when memory ran out (now or while adding samples) or
 * the result is full. */
int sample_log_write(const struct sample_log *l, struct result *r);
void sample_log_free(struct sample_log *l);

/* Prints every task with its settings (name, type, range or choices, default, help). */
void task_print_all(FILE *f);

#endif
