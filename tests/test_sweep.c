/* The grid runner: resume after a real SIGKILL (between cells and during writes),
 * skipped and failed cells, and the stop flag. The task here is a toy defined in this
 * file whose results are a known function of the cell, so every stored value can be
 * checked; the model is stories260K (only its config and memory estimate are used). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "settings.h"
#include "store.h"
#include "sweep.h"
#include "sweep_plan.h"
#include "task_util.h"
#include "testutil.h"
#include "testutil_sys.h"

/* ------------------------------------------------------------------ the toy task */

/* settings: sleep_ms (per cell), array (length of the stored array), fail_at (a length
 * whose cell fails). */
static int toy_tokens(int length, const char *settings) {
    (void)settings;
    return length;
}

static double toy_score(int length, uint64_t seed, const char *method) {
    return length * 1.5 + (double)seed + (double)strlen(method) / 8;
}

static int toy_run(const struct task_ctx *ctx, struct result *out, char *err, size_t errlen) {
    struct settings s;
    long sleep_ms, n_array, fail_at;
    if (settings_parse(ctx->settings, &s, err, errlen) != 0 ||
        settings_int(&s, "sleep_ms", 0, 0, 10000, &sleep_ms, err, errlen) != 0 ||
        settings_int(&s, "array", 4, 1, 1 << 22, &n_array, err, errlen) != 0 ||
        settings_int(&s, "fail_at", 0, 0, 1 << 24, &fail_at, err, errlen) != 0)
        return -1;
    if (ctx->length == fail_at) {
        snprintf(err, errlen, "toy: told to fail at %ld", fail_at);
        return -1;
    }
    for (int step = 1; step <= 10; step++) {
        struct timespec ts = {0, sleep_ms * 100000L};
        nanosleep(&ts, NULL);
        if (ctx->progress) ctx->progress(ctx->progress_arg, step / 10.0, (long)ctx->length * step / 10);
    }
    double *a = malloc((size_t)n_array * sizeof *a);
    if (!a) return -1;
    for (long i = 0; i < n_array; i++) a[i] = ctx->length + i * 0.25;
    int rc = result_scalar(out, "score", toy_score(ctx->length, ctx->seed, ctx->method->text)) |
             result_array(out, "curve", a, (int)n_array, 1) | result_text(out, "method", ctx->method->text);
    free(a);
    return rc ? -1 : 0;
}

static const struct task toy_task = {
    .name = "toy",
    .summary = "test task",
    .help = "",
    .default_data = NULL,
    .check = NULL,
    .session_tokens = toy_tokens,
    .run = toy_run,
};

/* ------------------------------------------------------------------ helpers */

struct grid {
    struct method_spec *methods;
    int n_methods;
    struct sweep_task task;
    int lengths[8];
    int n_lengths;
};

static void make_grid(struct grid *g, const char *methods, const char *settings, int n_lengths) {
    char err[512];
    memset(g, 0, sizeof *g);
    cr_assert_eq(method_spec_list_parse(methods, &g->methods, &g->n_methods, err, sizeof err), 0, "%s", err);
    g->task.task = &toy_task;
    snprintf(g->task.settings, sizeof g->task.settings, "%s", settings);
    for (int i = 0; i < n_lengths; i++) g->lengths[i] = 64 << i;
    g->n_lengths = n_lengths;
}

static struct sweep_config config(const struct grid *g, const char *model, const char *out) {
    return (struct sweep_config){.model_path = model,
                                 .methods = g->methods,
                                 .n_methods = g->n_methods,
                                 .tasks = &g->task,
                                 .n_tasks = 1,
                                 .lengths = g->lengths,
                                 .n_lengths = g->n_lengths,
                                 .out_path = out,
                                 .seed = 7,
                                 .log = NULL};
}

static void open_model(struct runtime *rt, char *model, size_t cap) {
    char err[512];
    shared_path(model, cap, "models/stories260K.gguf");
    const char *eo = "threads=1";
    cr_assert_eq(runtime_open(rt, model, "cpu", eo, NULL, err, sizeof err), 0, "%s", err);
}

static double cell_num(const struct store_cell *c, const char *name) {
    const struct store_attr *a = store_cell_attr(c, name);
    cr_assert_not_null(a, "cell %s has %s", c->id, name);
    return a->kind == STORE_F64 ? a->f : (double)a->i;
}

/* Every done cell in the file holds exactly the toy's values for its key. Returns the
 * number of done cells; fails the test on any wrong value. */
static int check_file(const char *path, int n_array) {
    struct store_cell *cells;
    int n, done = 0;
    char err[512], buf[64];
    cr_assert_eq(store_read(path, true, &cells, &n, err, sizeof err), 0, "the file opens cleanly: %s", err);
    for (int i = 0; i < n; i++) {
        const struct store_cell *c = &cells[i];
        if (c->status != CELL_DONE) continue;
        done++;
        int length = (int)cell_num(c, "length");
        const char *method = store_attr_text(c, "method", buf, sizeof buf);
        const struct result_item *s = result_find(&c->res, "score"), *a = result_find(&c->res, "curve");
        cr_assert(s && a, "cell %s has its results", c->id);
        cr_assert_eq(s->value, toy_score(length, 7, method), "cell %s score", c->id);
        cr_assert_eq(a->rows, n_array);
        for (int k = 0; k < n_array; k++) cr_assert_eq(a->data[k], length + k * 0.25, "cell %s curve[%d]", c->id, k);
    }
    store_cells_free(cells, n);
    return done;
}

static int count_done(const char *path) {
    struct store_cell *cells;
    int n, done = 0;
    char err[512];
    if (access(path, F_OK) != 0) return 0;
    if (store_read(path, false, &cells, &n, err, sizeof err) != 0) return -1;
    for (int i = 0; i < n; i++) done += cells[i].status == CELL_DONE;
    store_cells_free(cells, n);
    return done;
}

/* ------------------------------------------------------------------ tests */

Test(sweep, resume_after_sigkill_between_cells) {
    char dir[64], out[128], model[512], err[512];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/s.h5", dir);
    struct grid g;
    make_grid(&g, "baseline,pi:factor=2", "sleep_ms=40", 5);   /* 10 cells of ~40 ms */
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct sweep_config cfg = config(&g, model, out);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct sweep_summary sum;
        _exit(sweep_run(&rt, &cfg, &sum, err, sizeof err) == 0 ? 0 : 1);
    }
    /* kill it once three cells are in the file */
    int done = 0;
    for (int t = 0; t < 2000 && done < 3; t++) {
        usleep(2000);
        done = count_done(out);
        cr_assert_geq(done, 0, "the file always opens while being written");
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "the sweep was killed, not finished");
    int before = check_file(out, 4);
    cr_assert(before >= 3 && before < 10, "%d cells done before the kill", before);

    /* remember when each finished cell ran */
    struct store_cell *cells;
    int n;
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0);
    double started[16];
    char ids[16][STORE_ID_MAX + 1];
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", cells[i].id);
        started[i] = cell_num(&cells[i], "started_unix");
    }
    int n_before = n;
    store_cells_free(cells, n);

    struct sweep_summary sum;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect_eq(sum.total, 10);
    cr_expect_eq(sum.cached, before, "finished cells are not recomputed");
    cr_expect_eq(sum.done, 10 - before);
    cr_expect_eq(check_file(out, 4), 10);
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0);
    cr_assert_eq(n, 10);
    for (int k = 0; k < n_before; k++)
        for (int i = 0; i < n; i++)
            if (strcmp(cells[i].id, ids[k]) == 0 && cells[i].status == CELL_DONE)
                cr_expect_eq(cell_num(&cells[i], "started_unix"), started[k], "cell %s kept its timestamp", ids[k]);
    /* provenance of a cell */
    char buf[64];
    cr_expect_str_eq(store_attr_text(&cells[0], "model", buf, sizeof buf), "stories260K.gguf");
    cr_expect_eq(strlen(store_attr_text(&cells[0], "model_sha256", buf, sizeof buf)), 64);
    cr_expect_str_eq(store_attr_text(&cells[0], "ctxbench_version", buf, sizeof buf), CTXBENCH_VERSION);
    cr_expect_str_eq(store_attr_text(&cells[0], "headline", buf, sizeof buf), "score");
    cr_expect_eq(cell_num(&cells[0], "ctx_train"), 512);
    store_cells_free(cells, n);

    /* a third run finds everything done */
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect_eq(sum.cached, 10);
    cr_expect_eq(sum.done, 0);
    runtime_close(&rt);
    free(g.methods);
    test_rm_rf(dir);
}

Test(sweep, sigkill_during_writes_never_tears_the_file) {
    /* Cells with no compute and a 160 kB array each, so most of the time goes to writing:
     * killing at random moments lands inside store_put again and again (the delays
     * grow with the file, so later kills still land at every stage of a write). */
    char dir[64], out[128], model[512], err[512];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/w.h5", dir);
    struct grid g;
    make_grid(&g, "baseline,pi:factor=2,pi:factor=3,pi:factor=4,pi:factor=5,ntk:factor=2,ntk:factor=3,ntk:factor=4",
              "array=20000", 4);   /* 32 cells */
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct sweep_config cfg = config(&g, model, out);
    unsigned long long rng = 12345;
    int last = 0, kills = 0, mid_write = 0, journaled = 0;
    char tmp[160], journal[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(journal, sizeof journal, "%s.journal", out);
    for (int round = 0; round < 60 && last < 32; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            struct sweep_summary sum;
            _exit(sweep_run(&rt, &cfg, &sum, err, sizeof err) == 0 ? 0 : 1);
        }
        if (round % 2 == 0) {
            usleep((useconds_t)(test_rng_next(&rng) % (10000 + 1000 * (unsigned)round)));
        } else {   /* wait until a write has begun (its temporary copy exists), then kill */
            for (int spin = 0; spin < 200000 && access(tmp, F_OK) != 0; spin++) usleep(10);
            usleep((useconds_t)(test_rng_next(&rng) % 3000));
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        kills += WIFSIGNALED(status);
        mid_write += WIFSIGNALED(status) && access(tmp, F_OK) == 0;
        journaled += WIFSIGNALED(status) && access(journal, F_OK) == 0;   /* cells not yet folded */
        if (access(out, F_OK) != 0) continue;   /* killed before the first cell landed */
        int done = check_file(out, 20000);
        cr_assert_geq(done, last, "no finished cell is ever lost");
        last = done;
    }
    cr_expect_gt(kills, 3, "the sweep was really killed several times (%d)", kills);
    cr_expect_gt(mid_write + journaled, 0, "some kills left cells in the journal or landed in a fold (%d, %d)",
                 journaled, mid_write);
    cr_log_info("%d kills, %d inside a fold, %d with journaled cells", kills, mid_write, journaled);
    struct sweep_summary sum;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect_eq(sum.cached + sum.done, 32);
    cr_expect_eq(check_file(out, 20000), 32);
    cr_expect_neq(access(tmp, F_OK), 0, "no temporary copy left behind");
    cr_expect_neq(access(journal, F_OK), 0, "the finished sweep folded its journal");
    runtime_close(&rt);
    free(g.methods);
    test_rm_rf(dir);
}

Test(sweep, skipped_and_failed_cells_are_recorded_and_retried) {
    char dir[64], out[128], model[512], err[512], buf[64];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/f.h5", dir);
    struct grid g;
    make_grid(&g, "baseline", "fail_at=128", 3);   /* 64 ok, 128 fails, 256 ok */
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct sweep_config cfg = config(&g, model, out);
    /* a memory limit between the 128- and 256-token sessions' needs */
    size_t b128 = engine_session_bytes(rt.engine, 128, NULL), b256 = engine_session_bytes(rt.engine, 256, NULL);
    cr_assert_lt(b128, b256);
    cfg.mem_limit = (b128 + b256) / 2;
    struct sweep_summary sum;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect(sum.done == 1 && sum.failed == 1 && sum.skipped == 1, "done %d failed %d skipped %d", sum.done,
              sum.failed, sum.skipped);
    struct store_cell *cells;
    int n;
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0);
    cr_assert_eq(n, 3);
    for (int i = 0; i < n; i++) {
        int L = (int)cell_num(&cells[i], "length");
        const char *e = store_attr_text(&cells[i], "error", buf, sizeof buf);
        if (L == 64) cr_expect_eq(cells[i].status, CELL_DONE);
        if (L == 128) {
            cr_expect_eq(cells[i].status, CELL_FAILED);
            cr_expect_str_eq(e, "toy: told to fail at 128");
        }
        if (L == 256) {
            cr_expect_eq(cells[i].status, CELL_SKIPPED);
            cr_expect_not_null(strstr(e, "256-token session"), "%s", e);
        }
    }
    store_cells_free(cells, n);
    /* the rerun keeps the done cell and tries the other two again */
    cfg.mem_limit = 0;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect(sum.cached == 1 && sum.done == 1 && sum.failed == 1, "cached %d done %d failed %d", sum.cached, sum.done,
              sum.failed);
    runtime_close(&rt);
    free(g.methods);
    test_rm_rf(dir);
}

Test(sweep, stop_flag_and_distinct_keys) {
    char dir[64], out[128], model[512], err[512];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/k.h5", dir);
    struct grid g;
    make_grid(&g, "baseline", "", 2);
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct sweep_config cfg = config(&g, model, out);
    volatile sig_atomic_t stop = 1;
    cfg.stop = &stop;
    struct sweep_summary sum;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect(sum.interrupted && sum.done == 0, "a raised stop flag runs nothing");
    stop = 0;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect_eq(sum.done, 2);
    /* another seed or other settings are other cells */
    cfg.seed = 8;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect(sum.cached == 0 && sum.done == 2);
    snprintf(g.task.settings, sizeof g.task.settings, "array=5");
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    cr_expect(sum.cached == 0 && sum.done == 2);
    cr_expect_eq(count_done(out), 6);
    runtime_close(&rt);
    free(g.methods);
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ the real command */

/* Starts `ctxbench sweep` ($CTXBENCH_BIN, set by make test) on stories260K with the ppl
 * task; stderr goes to DIR/stderr.txt. */
static pid_t start_sweep(const char *dir, const char *out) {
    char model[512], errp[160];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    const char *const args[] = {"sweep", "-m", model, "--methods", "baseline,pi:factor=2,yarn:factor=4", "--tasks", "ppl",
                                "--lengths", "256:2k", "--task-opt", "ppl:max_windows=6", "-t", "1", "-o", out, NULL};
    return ctxbench_spawn(args, errp, false);
}

static int wait_status(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

/* Waits until the file holds at least `want` done cells (or the process ended). */
static int wait_cells(const char *out, int want, pid_t pid) {
    int done = 0;
    for (int t = 0; t < 20000 && done < want; t++) {
        usleep(1000);
        done = count_done(out);
        cr_assert_geq(done, 0, "the file opens cleanly while the sweep runs");
        if (waitpid(pid, NULL, WNOHANG) == pid) cr_assert_fail("the sweep ended before %d cells", want);
    }
    return done;
}

Test(sweep, command_resumes_after_sigkill) {
    char dir[64], out[128], errp[160], err[512];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/b.h5", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    pid_t pid = start_sweep(dir, out);
    wait_cells(out, 2, pid);
    kill(pid, SIGKILL);
    cr_assert_eq(wait_status(pid), 1000 + SIGKILL, "killed mid-sweep");

    struct store_cell *cells;
    int n;
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0, "%s", err);
    int before = 0;
    double started[16];
    char ids[16][STORE_ID_MAX + 1];
    for (int i = 0; i < n && i < 16; i++)
        if (cells[i].status == CELL_DONE) {
            snprintf(ids[before], sizeof ids[before], "%s", cells[i].id);
            started[before++] = cell_num(&cells[i], "started_unix");
        }
    store_cells_free(cells, n);
    cr_assert(before >= 2 && before < 12, "%d of 12 cells done at the kill", before);

    pid = start_sweep(dir, out);
    cr_assert_eq(wait_status(pid), 0, "the rerun finishes");
    char *text = test_read_text(errp);
    char want[64];
    snprintf(want, sizeof want, "12 cells, %d already done", before);
    cr_expect_not_null(strstr(text, want), "%s", text);
    free(text);
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0, "%s", err);
    cr_expect_eq(n, 12);
    int matched = 0;
    for (int i = 0; i < n; i++) {
        cr_expect_eq(cells[i].status, CELL_DONE, "%s", cells[i].id);
        const struct result_item *ppl = result_find(&cells[i].res, "ppl");
        cr_expect(ppl && ppl->value > 1 && ppl->value < 600, "%s has a perplexity", cells[i].id);
        for (int k = 0; k < before; k++)
            if (strcmp(cells[i].id, ids[k]) == 0) {
                cr_expect_eq(cell_num(&cells[i], "started_unix"), started[k], "%s not recomputed", ids[k]);
                matched++;
            }
    }
    cr_expect_eq(matched, before);
    store_cells_free(cells, n);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' > /dev/null 2>&1", out);
    cr_expect_eq(system(cmd), 0, "h5dump opens the file");
    test_rm_rf(dir);
}

Test(sweep, command_ctrl_c_finishes_the_cell_and_exits_130) {
    char dir[64], out[128], errp[160];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/c.h5", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    pid_t pid = start_sweep(dir, out);
    wait_cells(out, 1, pid);
    kill(pid, SIGINT);
    cr_assert_eq(wait_status(pid), 130, "an interrupted sweep exits with 130");
    char *text = test_read_text(errp);
    cr_expect_not_null(strstr(text, "interrupted: finishing the current cell"), "%s", text);
    cr_expect_not_null(strstr(text, "rerun the same command to resume"), "%s", text);
    free(text);
    int done = count_done(out);
    cr_expect(done >= 1 && done < 12, "%d cells done", done);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    cr_expect_neq(access(tmp, F_OK), 0, "no temporary copy left");
    pid = start_sweep(dir, out);
    cr_assert_eq(wait_status(pid), 0);
    cr_expect_eq(count_done(out), 12);
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ a full disk */

/* `ctxbench sweep` of baseline on stories260K, ppl over one window, at `lengths`, under
 * a file size limit (ulimit -f); stderr into DIR/stderr.txt. The exit status, or 1000 +
 * the signal that ended it. */
static int small_sweep(const char *dir, const char *out, const char *lengths, rlim_t max_file_bytes) {
    char model[512], errp[160];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    const char *const args[] = {"sweep", "-m", model, "--methods", "baseline", "--tasks", "ppl", "--lengths", lengths,
                                "--task-opt", "ppl:max_windows=1", "-t", "1", "-o", out, NULL};
    return test_wait_status(ctxbench_spawn_limited(args, errp, true, max_file_bytes));
}

/* The file holds the done cell `id`, started at `started`, and at most the one cell after
 * it: where the limit struck decides whether that cell's journal record was written (then
 * the fold into the HDF5 file failed and the journal keeps it) or not. */
static void expect_one_cell(const char *out, const char *id, double started) {
    struct store_cell *cells;
    int n;
    char err[512];
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0, "the file opens cleanly: %s", err);
    cr_expect(n == 1 || n == 2, "%d cells", n);
    int found = 0;
    for (int i = 0; i < n; i++) {
        cr_expect_eq(cells[i].status, CELL_DONE);
        if (strcmp(cells[i].id, id) != 0) continue;
        found++;
        cr_expect_eq(cell_num(&cells[i], "started_unix"), started, "the earlier cell is the same cell");
    }
    cr_expect_eq(found, 1, "the earlier cell is kept");
    store_cells_free(cells, n);
}

static void first_cell(const char *out, char *id, size_t cap, double *started) {
    struct store_cell *cells;
    int n;
    char err[512];
    cr_assert_eq(store_read(out, false, &cells, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    snprintf(id, cap, "%s", cells[0].id);
    *started = cell_num(&cells[0], "started_unix");
    store_cells_free(cells, n);
}

/* A write that fails for a file size limit (EFBIG, SIGXFSZ ignored) or a full disk
 * (ENOSPC): the command says so in one line and exits 1, the earlier cells are intact
 * and no temporary copy is left. */
static void expect_clean_failure(int status, const char *dir, const char *out, const char *says, const char *id,
                                 double started) {
    char errp[160], tmp[160];
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    char *text = test_read_text(errp);
    cr_expect_eq(status, 1, "exit status %d (1000 + signal when killed): %s", status, text);
    const char *line = strstr(text, "ctxbench: ");
    cr_expect(line && strstr(line, says) && strchr(line, '\n') == line + strlen(line) - 1, "one line saying '%s': %s",
              says, text);
    free(text);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    cr_expect_neq(access(tmp, F_OK), 0, "no temporary copy left");
    expect_one_cell(out, id, started);
}

Test(sweep, command_file_size_limit_is_an_error_not_a_crash) {
    char dir[64], out[128], id[STORE_ID_MAX + 1];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/f.h5", dir);
    cr_assert_eq(small_sweep(dir, out, "256", RLIM_INFINITY), 0);
    double started;
    first_cell(out, id, sizeof id, &started);
    struct stat sb;
    cr_assert_eq(stat(out, &sb), 0);
    /* room for the file as it is, not for the next cell (about 18 KiB) */
    int status = small_sweep(dir, out, "256,512", (rlim_t)sb.st_size + 1);
    expect_clean_failure(status, dir, out, "File too large", id, started);
    cr_expect_eq(test_count_tmp(dir), 0);
    cr_assert_eq(small_sweep(dir, out, "256,512", RLIM_INFINITY), 0, "the sweep resumes once there is room");
    cr_expect_eq(count_done(out), 2);
    test_rm_rf(dir);
}

Test(sweep, command_disk_full_is_an_error_not_a_crash) {
    char dir[64], mnt[96], out[128], filler[128], cmd[256], id[STORE_ID_MAX + 1];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=512k ctxbench-test '%s' 2>/dev/null", mnt);
    if (system(cmd) != 0) {
        test_rm_rf(dir);
        cr_skip_test("a full disk needs a small tmpfs, and mount -t tmpfs is not permitted here");
    }
    snprintf(out, sizeof out, "%s/f.h5", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    int first = small_sweep(dir, out, "256", RLIM_INFINITY);
    double started = 0;
    struct stat sb;
    int status = -1;
    if (first == 0 && stat(out, &sb) == 0) {
        first_cell(out, id, sizeof id, &started);
        /* fill the file system, then free room for a copy of the file but not for the next cell */
        int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        static const char block[4096];
        off_t filled = 0;
        while (fd >= 0 && write(fd, block, sizeof block) == (ssize_t)sizeof block) filled += (off_t)sizeof block;
        off_t room = (sb.st_size + 4095) / 4096 * 4096 + 4096;
        if (fd >= 0 && filled > room && ftruncate(fd, filled - room) == 0) status = small_sweep(dir, out, "256,512", RLIM_INFINITY);
        if (fd >= 0) close(fd);
    }
    int tmp_left = test_count_tmp(mnt);
    if (status == 1 || status >= 1000) {   /* the checks read the file before it goes with the tmpfs */
        expect_clean_failure(status, dir, out, "No space left on device", id, started);
    }
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(first, 0, "the first sweep on the tmpfs");
    cr_expect_eq(status, 1, "the sweep on the full disk: status %d", status);
    cr_expect_eq(tmp_left, 0, "no temporary copy left");
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ progress */

static void fit_add(struct progress_fit *g, double l, double t) { progress_fit_add(g, l, t); }

Test(sweep, progress_fit_predicts) {
    struct progress_fit g;
    memset(&g, 0, sizeof g);
    cr_expect(isnan(progress_fit_predict(&g, 512)));
    fit_add(&g, 512, 2);
    cr_expect_float_eq(progress_fit_predict(&g, 2048), 8, 1e-12, "one length: proportional");
    fit_add(&g, 1024, 3);
    fit_add(&g, 1024, 3);
    cr_expect_float_eq(progress_fit_predict(&g, 4096), 1 + 4096 / 512.0, 1e-9, "two lengths: the line 1 + L/512");
    /* t = 0.5 + 0.25 x + 2 x^2, x = L/1024, exact at four lengths: the quadratic is recovered */
    memset(&g, 0, sizeof g);
    for (int L = 512; L <= 4096; L *= 2) {
        double x = L / 1024.0;
        fit_add(&g, L, 0.5 + 0.25 * x + 2 * x * x);
    }
    double x = 16;
    cr_expect_float_eq(progress_fit_predict(&g, 16384), 0.5 + 0.25 * x + 2 * x * x, 1e-6, "quadratic");
    /* times that fall with length: no negative prediction */
    memset(&g, 0, sizeof g);
    fit_add(&g, 512, 5);
    fit_add(&g, 1024, 4);
    fit_add(&g, 2048, 3);
    cr_expect_geq(progress_fit_predict(&g, 65536), 0);
}

Test(sweep, progress_time_left_and_lines) {
    struct progress_cell todo[] = {{0, 2048}, {0, 4096}, {1, 1024}, {2, 1000}};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    struct progress p;
    progress_init(&p, f, false, 10, todo, 4);
    cr_expect(isnan(progress_time_left(&p)), "nothing known before the first cell");
    /* task 0: 2 s at 512, 3 s at 1024 -> 1 + L/512; task 1: one length, 4 s at 512 -> 4 L/512 */
    fit_add(&p.fit[0], 512, 2);
    fit_add(&p.fit[0], 1024, 3);
    fit_add(&p.fit[1], 512, 4);
    /* task 2 has no finished cell: the others' average rate, (2+3+4) s / (512+1024+512) tokens */
    double want = (1 + 2048 / 512.0) + (1 + 4096 / 512.0) + 4 * 1024 / 512.0 + 9.0 / 2048 * 1000;
    cr_expect(fabs(progress_time_left(&p) - want) < 1e-9 * want, "%g vs %g", progress_time_left(&p), want);
    progress_begin(&p, 3, "ppl baseline L=2048");
    cr_expect(fabs(progress_time_left(&p) - (want - 5)) < 1e-9 * want, "the current cell is not in what is left");
    progress_update(&p, 0.5, 100);
    progress_end(&p, "done, ppl = 3");
    cr_expect_eq(p.fit[0].n, 3, "the finished cell joins its task's fit");
    fclose(f);
    cr_expect_not_null(strstr(buf, "[3/10] ppl baseline L=2048 ...") , "%s", buf);
    cr_expect_not_null(strstr(buf, "[3/10] ppl baseline L=2048: done, ppl = 3 ("), "%s", buf);
    cr_expect_null(strchr(buf, '\r'), "no bar when not on a terminal");
    free(buf);
    char d[32];
    cr_expect_str_eq(progress_duration(2.54, d, sizeof d), "2.5s");
    cr_expect_str_eq(progress_duration(185, d, sizeof d), "3m05s");
    cr_expect_str_eq(progress_duration(3720, d, sizeof d), "1h02m");
    cr_expect_str_eq(progress_duration(NAN, d, sizeof d), "?");
}

/* ------------------------------------------------------------------ the length rule */

/* One rule for --lengths, checked by the parser and stated exactly in its message and in
 * `sweep --help`: TASK_MIN_LENGTH..TASK_MAX_LENGTH. Lengths below the minimum used to
 * pass the parser and fail later in ppl; the message promised "16M", which no spelling
 * reached. */
Test(sweep, lengths_rule_checked_once_and_stated) {
    int *v, n;
    char err[512];
    cr_assert_eq(TASK_MIN_LENGTH, 4);
    cr_assert_eq(TASK_MAX_LENGTH, 16777216);
    const char *bad[] = {"2", "3", "2:8", "3,512", "16777217", "16385k", "32769x", "8,16777218"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        cr_expect_eq(sweep_parse_lengths(bad[i], 512, &v, &n, err, sizeof err), -1, "'%s' rejected", bad[i]);
        cr_expect(strstr(err, "4 <= length <= 16777216 (16384k)"), "'%s': %s", bad[i], err);
    }
    struct {
        const char *text;
        int n, first, last;
    } good[] = {{"4", 1, 4, 4}, {"4:16", 3, 4, 16}, {"16384k", 1, 16777216, 16777216},
                {"16777216", 1, 16777216, 16777216}, {"32768x", 1, 16777216, 16777216}, {"0.0078125x", 1, 4, 4}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_assert_eq(sweep_parse_lengths(good[i].text, 512, &v, &n, err, sizeof err), 0, "%s: %s", good[i].text, err);
        cr_expect(n == good[i].n && v[0] == good[i].first && v[n - 1] == good[i].last, "%s", good[i].text);
        free(v);
    }
    char out[16384];
    cr_assert_eq(ctxbench_run("sweep --help", out, sizeof out), 0);
    cr_expect(strstr(out, "each length in 4..16777216 (16384k)"), "%s", out);
}

/* The shortest length the parser lets through is one a task really runs at. */
Test(sweep, shortest_length_runs, .timeout = 120) {
    char dir[256], model[512], out[400], cmd[1200], log[16384];
    test_temp_dir(dir, sizeof dir, "sweep_minlen");
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(out, sizeof out, "%s/min.h5", dir);
    snprintf(cmd, sizeof cmd,
             "sweep -m %s --methods baseline --tasks ppl --lengths %d --task-opt ppl:max_windows=2 -t 1 -o %s", model,
             TASK_MIN_LENGTH, out);
    cr_assert_eq(ctxbench_run(cmd, log, sizeof log), 0, "%s", log);
    cr_expect_eq(count_done(out), 1, "%s", log);
    test_rm_rf(dir);
}

/* The token counts of the plain progress lines "LABEL: P%, T tokens, ..." of one cell in
 * text, in order; returns how many (at most cap). */
static int progress_tokens(const char *text, const char *label, long *tokens, int cap) {
    char pat[200];
    snprintf(pat, sizeof pat, "%s: ", label);
    int n = 0;
    for (const char *p = strstr(text, pat); p && n < cap; p = strstr(p + 1, pat)) {
        double pct;
        long t;
        if (sscanf(p + strlen(pat), "%lf%%, %ld tokens", &pct, &t) == 2) tokens[n++] = t;
    }
    return n;
}

Test(sweep, progress_comes_from_inside_prefill_and_decode) {
    /* A real passkey cell at 2048 tokens: its prompt is one eval of four 512-token chunks,
     * then single-token decode steps. The task itself reports only after the trial, so
     * lines at 512, 1024, 1536 tokens can only come from inside the prefill, and lines
     * one token apart from the decode steps. Interval 0: every report is printed. */
    setenv("CTXBENCH_PROGRESS_INTERVAL", "0", 1);
    char dir[64], out[128], model[512], err[512];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/p.h5", dir);
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct method_spec *methods;
    int n_methods;
    cr_assert_eq(method_spec_list_parse("baseline", &methods, &n_methods, err, sizeof err), 0, "%s", err);
    struct sweep_task task = {.task = task_find("passkey")};
    cr_assert_not_null(task.task);
    snprintf(task.settings, sizeof task.settings, "depths=1");
    int length = 2048;
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    cr_assert_not_null(log);
    struct sweep_config cfg = {.model_path = model, .methods = methods, .n_methods = n_methods, .tasks = &task,
                               .n_tasks = 1, .lengths = &length, .n_lengths = 1, .out_path = out, .seed = 1,
                               .log = log};
    struct sweep_summary sum;
    cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
    fclose(log);
    cr_assert_eq(sum.done, 1, "%s", buf);
    long tok[4096];
    int n = progress_tokens(buf, "[1/1] passkey baseline L=2048", tok, 4096);
    bool chunk[4] = {0};
    int decode_steps = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0) cr_expect_geq(tok[i], tok[i - 1], "tokens never go back");
        for (int c = 1; c <= 3; c++) chunk[c] |= tok[i] == 512L * c;
        decode_steps += i > 0 && tok[i] == tok[i - 1] + 1;
    }
    cr_expect(chunk[1] && chunk[2] && chunk[3], "a line after each prefill chunk:\n%s", buf);
    cr_expect_geq(decode_steps, 3, "lines from the decode steps:\n%s", buf);
    cr_expect_lt(strstr(buf, "tokens"), strstr(buf, ": done"), "the lines come before the cell ends");
    free(buf);
    free(methods);
    runtime_close(&rt);
    test_rm_rf(dir);
}

Test(sweep, progress_interval_from_the_environment) {
    unsetenv("CTXBENCH_PROGRESS_INTERVAL");
    cr_expect_eq(progress_interval(false), PROGRESS_LOG_EVERY_S);
    cr_expect_eq(progress_interval(true), PROGRESS_DRAW_EVERY_S);
    cr_expect_leq(PROGRESS_LOG_EVERY_S, 5, "a log hears from a running cell every few seconds");
    setenv("CTXBENCH_PROGRESS_INTERVAL", "0.5", 1);
    cr_expect_eq(progress_interval(false), 0.5);
    setenv("CTXBENCH_PROGRESS_INTERVAL", "soon", 1);
    cr_expect_eq(progress_interval(false), PROGRESS_LOG_EVERY_S, "a bad value keeps the default");
    setenv("CTXBENCH_PROGRESS_INTERVAL", "-1", 1);
    cr_expect_eq(progress_interval(true), PROGRESS_DRAW_EVERY_S);
}

Test(sweep, ppl_and_generate_commands_report_inside_the_forward_pass) {
    setenv("CTXBENCH_PROGRESS_INTERVAL", "0", 1);
    char model[512], text[512], args[4096];
    static char out[65536];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    shared_path(text, sizeof text, "datasets/children/alice_in_wonderland.txt");
    /* one window of 2048: four chunks in one eval */
    snprintf(args, sizeof args, "ppl -m '%s' -f '%s' -c 2048 --chunks 1 -t 1", model, text);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    long tok[256];
    int n = progress_tokens(out, "ppl 1 windows of 2048", tok, 256);
    bool mid = false;
    for (int i = 0; i < n; i++) mid |= tok[i] == 1024;
    cr_expect(mid, "a line halfway through the window's eval:\n%s", out);
    cr_expect_not_null(strstr(out, "ppl 1 windows of 2048: done"), "%s", out);
    /* a prompt of over 512 tokens: a line between its chunks, then the decode steps */
    char prompt[2048] = "";
    for (int i = 0; i < 150; i++) strcat(prompt, "The cat sat. ");
    snprintf(args, sizeof args, "generate -m '%s' -p '%s' -n 5 -t 1", model, prompt);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    char label[64];
    const char *pre = strstr(out, "prefill ");
    cr_assert_not_null(pre, "%s", out);
    cr_assert_eq(sscanf(pre, "prefill %63[0-9] prompt tokens", label), 1, "%s", out);
    char full[96];
    snprintf(full, sizeof full, "prefill %s prompt tokens", label);
    n = progress_tokens(out, full, tok, 256);
    mid = false;
    for (int i = 0; i < n; i++) mid |= tok[i] == 512;
    cr_expect(atol(label) > 512 && mid, "a line after the first chunk of the prompt:\n%s", out);
    n = progress_tokens(out, "generate 5 tokens", tok, 256);
    cr_expect_geq(n, 3, "lines from the decode steps (stdout is not a terminal):\n%s", out);
}

/* ------------------------------------------------------------------ dry run */

static int count_lines_with(const char *text, const char *what) {
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

Test(sweep, dry_run_lists_every_cell_and_writes_nothing) {
    char dir[64], out[128], model[512], args[2048];
    static char text[1 << 16];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/d.h5", dir);
    shared_path(model, sizeof model, "models/stories260K.gguf");
    /* 2 methods x 2 tasks x 3 lengths; a 1M-token session is gigabytes, over 64 MiB */
    snprintf(args, sizeof args,
             "sweep -m '%s' --methods baseline,pi:factor=2 --tasks ppl,passkey --lengths 256,512,1048576 "
             "--task-opt 'ppl:max_windows=2;passkey:depths=1' --mem-limit 64 -t 1 -o '%s' --dry-run",
             model, out);
    cr_assert_eq(ctxbench_run(args, text, sizeof text), 0, "%s", text);
    cr_expect_eq(access(out, F_OK), -1, "no results file");
    cr_expect_eq(count_lines_with(text, "/12] "), 12, "every cell listed:\n%s", text);
    cr_expect_eq(count_lines_with(text, "L=1048576 ("), 4, "%s", text);
    cr_expect_eq(count_lines_with(text, "will be skipped: needs "), 4, "the 1M cells named as too big:\n%s", text);
    cr_expect_not_null(strstr(text, "[ 1/12] ppl baseline L=256 (max_windows=2): session 256 tokens, "), "%s", text);
    cr_expect_not_null(strstr(text, "12 cells: 0 done before, 8 to run, estimated "), "%s", text);
    cr_expect_not_null(strstr(text, "4 will not run: ppl baseline L=1048576, ppl pi:factor=2 L=1048576"), "%s", text);
    cr_expect_not_null(strstr(text, "Nothing was run or written."), "%s", text);
    cr_expect_null(strstr(text, "tokens, ETA"), "no cell ran:\n%s", text);

    /* A real run of a part of the grid: the sweep warns about the cell that will not fit
     * before it starts; the dry run then counts the done cells and leaves the file as it was. */
    snprintf(args, sizeof args,
             "sweep -m '%s' --methods baseline --tasks ppl --lengths 256,1048576 --task-opt 'ppl:max_windows=2' "
             "--mem-limit 64 -t 1 -o '%s'", model, out);
    cr_assert_eq(ctxbench_run(args, text, sizeof text), 0, "%s", text);
    const char *warn = strstr(text, "sweep: warning: 1 cell will be skipped, its session needs more than the 64 MiB "
                                    "available: ppl baseline L=1048576 (");
    cr_expect_not_null(warn, "%s", text);
    cr_expect(warn && warn < strstr(text, "[1/2] ppl baseline L=256 ..."), "the warning comes first:\n%s", text);
    cr_expect_not_null(strstr(text, "1 done, 1 skipped"), "%s", text);
    struct stat before, after;
    cr_assert_eq(stat(out, &before), 0);
    char *bytes_before = test_read_text(out);
    snprintf(args, sizeof args,
             "sweep -m '%s' --methods baseline,pi:factor=2 --tasks ppl,passkey --lengths 256,512,1048576 "
             "--task-opt 'ppl:max_windows=2;passkey:depths=1' --mem-limit 64 -t 1 -o '%s' --dry-run",
             model, out);
    cr_assert_eq(ctxbench_run(args, text, sizeof text), 0, "%s", text);
    cr_expect_not_null(strstr(text, "[ 1/12] ppl baseline L=256 (max_windows=2): done before"), "%s", text);
    cr_expect_not_null(strstr(text, "12 cells: 1 done before, 7 to run"), "%s", text);
    cr_assert_eq(stat(out, &after), 0);
    cr_expect(before.st_mtime == after.st_mtime && before.st_size == after.st_size &&
                  before.st_ino == after.st_ino, "the results file is untouched");
    free(bytes_before);
    test_rm_rf(dir);
}

Test(sweep, cell_time_estimate_prices_the_tasks_work) {
    /* the causal pairs of task_work_sequences against a plain count */
    struct task_work w = {0};
    task_work_sequences(&w, 2, 100, 7);
    double pairs = 0;
    for (int i = 0; i < 107; i++) pairs += i + 1;
    cr_expect_float_eq(w.attn_pairs, 2 * pairs, 1e-9);
    cr_expect_float_eq(w.prefill_tokens, 200, 0);
    cr_expect_float_eq(w.decode_steps, 14, 0);
    /* ppl at 4096 with max_tokens=16384: four windows of 4095 forward tokens */
    struct sweep_task t = {.task = task_find("ppl")};
    snprintf(t.settings, sizeof t.settings, "max_tokens=16384");
    struct sweep_rates r = {.token_s = 1e-4, .pair_s = 1e-8, .step_s = 1e-3, .tokenize_s = 1e-6};
    double want = 4 * (4095 * 1e-4 + 4095.0 * 4096 / 2 * 1e-8);
    cr_expect_float_eq(sweep_cell_seconds(&r, &t, 4096), want, 1e-9 * want);
    /* a length too short for a passkey prompt is no work, not negative work (it used to
     * lower the dry run's total) */
    struct sweep_task pk = {.task = task_find("passkey")};
    snprintf(pk.settings, sizeof pk.settings, "depths=2,trials=1");
    cr_expect_geq(sweep_cell_seconds(&r, &pk, TASK_MIN_LENGTH), 0);
    struct task_work short_work = {0};
    task_work_sequences(&short_work, 1, -9, 13);
    cr_expect(short_work.prefill_tokens == 0 && short_work.attn_pairs >= 0, "%g %g", short_work.prefill_tokens,
              short_work.attn_pairs);
    /* the toy task gives no work: unknown */
    struct sweep_task toy = {.task = &toy_task};
    cr_expect(isnan(sweep_cell_seconds(&r, &toy, 4096)));
    /* the calibration measures positive rates on a real model */
    struct runtime rt;
    char model[512], err[512];
    open_model(&rt, model, sizeof model);
    cr_assert_eq(sweep_calibrate(&rt, &r, err, sizeof err), 0, "%s", err);
    cr_expect(r.token_s > 0 && r.pair_s > 0 && r.step_s > 0 && r.tokenize_s > 0 && r.chunk_s > 0, "%g %g %g %g",
              r.token_s, r.pair_s, r.step_s, r.tokenize_s);
    cr_expect_geq(r.context, 1024 + 8);
    runtime_close(&rt);
}

/* ------------------------------------------------------------------ shards */

Test(sweep, shards_partition_the_grid_balanced_by_cost) {
    char model[512], err[512];
    struct grid g;
    make_grid(&g, "baseline,pi:factor=2,pi:factor=3,ntk:factor=2,yarn:factor=4", "", 6);   /* 30 cells, 64..2048 */
    struct runtime rt;
    open_model(&rt, model, sizeof model);
    struct sweep_config cfg = config(&g, model, "/nonexistent/unused.h5");
    for (int n_shards = 1; n_shards <= 7; n_shards++) {
        struct sweep_cell_info *a, *b;
        int n, n2;
        cr_assert_eq(sweep_list_cells(&rt, &cfg, n_shards, &a, &n, err, sizeof err), 0, "%s", err);
        cr_assert_eq(sweep_list_cells(&rt, &cfg, n_shards, &b, &n2, err, sizeof err), 0, "%s", err);
        cr_assert_eq(n, 30);
        double load[8] = {0}, biggest = 0;
        for (int c = 0; c < n; c++) {
            cr_assert(a[c].shard >= 0 && a[c].shard < n_shards, "each cell in exactly one share");
            cr_assert_eq(a[c].shard, b[c].shard, "the same shares every time");
            cr_assert_gt(a[c].cost, 0);
            load[a[c].shard] += a[c].cost;
            if (a[c].cost > biggest) biggest = a[c].cost;
        }
        double lo = load[0], hi = load[0];
        for (int s = 1; s < n_shards; s++) {
            lo = load[s] < lo ? load[s] : lo;
            hi = load[s] > hi ? load[s] : hi;
        }
        /* greedy LPT: no share exceeds the lightest by more than one cell's cost */
        cr_expect_leq(hi - lo, biggest * (1 + 1e-12), "%d shares: loads %g..%g, largest cell %g", n_shards, lo, hi,
                      biggest);
        /* cost, not count: the 2048-token cells weigh 32 times the 64-token ones */
        cr_expect_gt(a[29].cost, 20 * a[0].cost);
        free(a);
        free(b);
    }
    /* a real sweep of each share into its own file: together exactly the grid */
    char dir[64], out[3][128];
    test_temp_dir(dir, sizeof dir, "sweep");
    int total = 0;
    for (int s = 1; s <= 3; s++) {
        snprintf(out[s - 1], sizeof out[s - 1], "%s/shard%d.h5", dir, s);
        cfg.out_path = out[s - 1];
        cfg.shard = s;
        cfg.n_shards = 3;
        struct sweep_summary sum;
        cr_assert_eq(sweep_run(&rt, &cfg, &sum, err, sizeof err), 0, "%s", err);
        cr_expect_eq(sum.done, sum.total);
        total += check_file(out[s - 1], 4);
    }
    cr_expect_eq(total, 30, "the shares together are the grid");
    struct sweep_cell_info *a;
    int n;
    cr_assert_eq(sweep_list_cells(&rt, &cfg, 3, &a, &n, err, sizeof err), 0, "%s", err);
    for (int c = 0; c < n; c++) {
        struct store_cell *cells;
        int m;
        cr_assert_eq(store_read(out[a[c].shard], false, &cells, &m, err, sizeof err), 0, "%s", err);
        int found = 0;
        for (int k = 0; k < m; k++) found += strcmp(cells[k].id, a[c].id) == 0;
        cr_expect_eq(found, 1, "cell %s in its share's file", a[c].id);
        store_cells_free(cells, m);
    }
    free(a);
    runtime_close(&rt);
    free(g.methods);
    test_rm_rf(dir);
}

Test(sweep, shard_argument_is_checked) {
    char out[2048];
    const char *bad[] = {"0/3", "4/3", "3", "x/2", "1/0", "-1/3", "1/3x", "1/100001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "sweep -m none.gguf -o /tmp/none.h5 --shard '%s'", bad[i]);
        int rc = ctxbench_run(args, out, sizeof out);
        cr_expect_eq(rc, 2, "--shard %s: %s", bad[i], out);
        cr_expect(strstr(out, "expected I/N") && strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
    }
}

/* The KV cache types join the cell key only when not both f32: every f32 cell keeps the
 * key (and id) it had before cache types existed, and an f16 or q8_0 cell is another. */
Test(sweep, cache_types_in_the_key_only_when_not_f32) {
    struct grid g;
    make_grid(&g, "baseline", "", 1);
    char k0[2048], i0[256], k32[2048], i32[256], k16[2048], i16[256], kq[2048], iq[256];
    const char *sha = "5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c";
    sweep_cell_key(sha, "cpu", NULL, &g.methods[0], &g.task, "", 512, 1, k0, sizeof k0, i0, sizeof i0);
    sweep_cell_key(sha, "cpu", &(struct kv_types){KV_F32, KV_F32}, &g.methods[0], &g.task, "", 512, 1, k32,
                   sizeof k32, i32, sizeof i32);
    sweep_cell_key(sha, "cpu", &(struct kv_types){KV_F16, KV_F16}, &g.methods[0], &g.task, "", 512, 1, k16,
                   sizeof k16, i16, sizeof i16);
    sweep_cell_key(sha, "cpu", &(struct kv_types){KV_F32, KV_Q8_0}, &g.methods[0], &g.task, "", 512, 1, kq, sizeof kq,
                   iq, sizeof iq);
    char legacy[2048];
    snprintf(legacy, sizeof legacy, "model_sha256=%s;backend=cpu;method=baseline;task=%s;settings=;data=;data_sha256=;"
             "length=512;seed=1", sha, g.task.task->name);
    cr_expect_str_eq(k32, legacy);
    cr_expect_str_eq(k0, k32);
    cr_expect_str_eq(i0, i32);
    cr_expect(strstr(k16, ";cache_type_k=f16;cache_type_v=f16"), "%s", k16);
    cr_expect(strstr(kq, ";cache_type_k=f32;cache_type_v=q8_0"), "%s", kq);
    cr_expect_str_neq(i16, i32);
    cr_expect_str_neq(iq, i32);
    cr_expect_str_neq(iq, i16);
    free(g.methods);
}

/* The dry run sizes a cell by its KV cache type: stories3M at 65536 tokens needs a 192 MiB
 * f32 cache (6 layers x 64 values x 2 x 4 bytes a token) and 96 MiB in f16, so under a
 * 160 MiB limit the f32 cell is skipped and the f16 cell runs; the memory line before the
 * cells names the cache and the weights. */
Test(sweep, dry_run_sizes_cells_by_the_cache_type, .timeout = 120) {
    char dir[64], out[128], model[512], args[2048];
    static char text[1 << 16];
    test_temp_dir(dir, sizeof dir, "sweep");
    snprintf(out, sizeof out, "%s/kv.h5", dir);
    shared_path(model, sizeof model, "models/stories3M.gguf");
    const char *types[] = {"f32", "f16"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args,
                 "sweep -m '%s' --methods baseline --tasks ppl --lengths 65536 --task-opt 'ppl:max_windows=1' "
                 "--mem-limit 160 -t 1 -ctk %s -ctv %s -o '%s' --dry-run", model, types[i], types[i], out);
        cr_assert_eq(ctxbench_run(args, text, sizeof text), 0, "%s", text);
        char want[128];
        snprintf(want, sizeof want, "(65536 tokens, KV cache %s/%s)", types[i], types[i]);
        const char *mem = strstr(text, "memory: weights 15 MiB (F32, kept in the file's types) + backend ");
        cr_expect(mem && strstr(mem, want) && mem < strstr(text, "[1/1]"), "the memory line first:\n%s", text);
        if (i == 0) {
            cr_expect_not_null(strstr(text, "will be skipped: needs "), "%s", text);
            cr_expect_not_null(strstr(text, ": more than the 160 MiB of --mem-limit"), "%s", text);
        } else {
            cr_expect_not_null(strstr(text, "[1/1] ppl baseline L=65536 (max_windows=1): session 65536 tokens, "), "%s",
                               text);
            cr_expect_not_null(strstr(text, ": fits in the 160 MiB of --mem-limit"), "%s", text);
        }
    }
    cr_expect_eq(access(out, F_OK), -1, "no results file");
    test_rm_rf(dir);
}
