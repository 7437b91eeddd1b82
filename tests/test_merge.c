/* ctxbench merge: the union of results files, refused conflicts, every attribute and array
 * kept, idempotence (byte-for-byte equal export), a merge killed with SIGKILL, missing
 * cells named; and shards of a real sweep merged equal the sweep run in one process. The
 * files are written with the store API and checked with store_read. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "result.h"
#include "store.h"
#include "sweep.h"
#include "testutil.h"
#include "testutil_sys.h"

TestSuite(merge, .timeout = 120);

/* Cell i (an array of n_array values, every kind of attribute); `variant` changes its
 * result, `host` only where it ran (and its timings). */
static void put_cell(struct store *st, int i, int n_array, double variant, const char *host) {
    char id[64], key[32], err[512];
    snprintf(id, sizeof id, "toy.m%d.L%d.%04x", i % 3, i, i * 7919 % 65536);
    snprintf(key, sizeof key, "key-%d", i);
    double *a = malloc((size_t)n_array * sizeof *a), m[6] = {1, 2, 3, 4, 5, 6.5};
    cr_assert_not_null(a);
    for (int k = 0; k < n_array; k++) a[k] = i + k / 4.0;
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, "score", i * 0.5 + variant), 0);
    cr_assert_eq(result_array(&r, "curve", a, n_array, 1), 0);
    cr_assert_eq(result_array(&r, "matrix", m, 3, 2), 0);
    cr_assert_eq(result_text(&r, "text", "sample, \"quoted\""), 0);
    /* a timing: run-specific like the host, so it differs with it */
    double timing[2] = {1000 + host[strlen(host) - 1], 2000 + host[strlen(host) - 1]};
    cr_assert_eq(result_array(&r, "timing_tokens_per_s", timing, 2, 1), 0);
    struct store_attr at[] = {{.name = "key", .kind = STORE_STR, .s = key},
                              {.name = "length", .kind = STORE_I64, .i = i},
                              {.name = "method.factor", .kind = STORE_F64, .f = 4},
                              {.name = "extra_from_a_newer_ctxbench", .kind = STORE_STR, .s = "kept"},
                              {.name = "host", .kind = STORE_STR, .s = (char *)host},
                              {.name = "wall_s", .kind = STORE_F64, .f = i + 0.25}};
    cr_assert_eq(store_put(st, id, CELL_DONE, at, 6, &r, err, sizeof err), 0, "%s", err);
    result_free(&r);
    free(a);
}

/* A results file with cells first..last-1. */
static void make_file(const char *path, int first, int last, int n_array, double variant, const char *host) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    for (int i = first; i < last; i++) put_cell(st, i, n_array, variant, host);
    store_close(st);
}

static int n_cells(const char *path) {
    struct store_cell *c;
    int n;
    char err[512];
    cr_assert_eq(store_read(path, false, &c, &n, err, sizeof err), 0, "%s", err);
    store_cells_free(c, n);
    return n;
}

/* Every attribute (run-specific ones too) and item of a equal in b. */
static void expect_identical(const struct store_cell *a, const struct store_cell *b) {
    char why[256];
    cr_assert(store_cells_same(a, b, why, sizeof why), "%s: %s", a->id, why);
    cr_assert_eq(a->n_attrs, b->n_attrs, "%s", a->id);
    for (int k = 0; k < a->n_attrs; k++) {
        char x[64], y[64];
        cr_assert_str_eq(a->attrs[k].name, b->attrs[k].name, "attributes in the same order");
        cr_assert_str_eq(store_attr_text(a, a->attrs[k].name, x, sizeof x),
                         store_attr_text(b, a->attrs[k].name, y, sizeof y));
    }
    cr_assert_eq(a->res.n, b->res.n);
}

static int merge(const char *args, char *out, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "merge %s", args);
    return ctxbench_run(cmd, out, cap);
}

Test(merge, union_keeps_every_attribute_and_array_and_is_idempotent) {
    char dir[64], a[128], b[128], o[128], args[512], out[4096], err[512];
    test_temp_dir(dir, sizeof dir, "merge");
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(b, sizeof b, "%s/b.h5", dir);
    snprintf(o, sizeof o, "%s/o.h5", dir);
    make_file(a, 0, 6, 50, 0, "node-a");
    make_file(b, 4, 10, 50, 0, "node-b");   /* cells 4, 5 in both: the same result, another host */
    snprintf(args, sizeof args, "'%s' '%s' '%s'", o, a, b);
    cr_assert_eq(merge(args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "merge: 10 cells"), "%s", out);
    struct store_cell *ca, *cb, *co;
    int na, nb, no;
    cr_assert_eq(store_read(a, true, &ca, &na, err, sizeof err), 0);
    cr_assert_eq(store_read(b, true, &cb, &nb, err, sizeof err), 0);
    cr_assert_eq(store_read(o, true, &co, &no, err, sizeof err), 0);
    cr_assert_eq(no, 10);
    for (int i = 0; i < no; i++) {   /* each cell as its first file has it: every attribute, every array */
        const struct store_cell *src = NULL;
        for (int k = 0; k < na && !src; k++)
            if (strcmp(ca[k].id, co[i].id) == 0) src = &ca[k];
        for (int k = 0; k < nb && !src; k++)
            if (strcmp(cb[k].id, co[i].id) == 0) src = &cb[k];
        cr_assert_not_null(src);
        expect_identical(src, &co[i]);
        const struct result_item *m = result_find(&co[i].res, "matrix");
        cr_assert(m && m->rows == 3 && m->cols == 2 && m->data[5] == 6.5, "2-D arrays kept");
    }
    store_cells_free(ca, na);
    store_cells_free(cb, nb);
    store_cells_free(co, no);
    /* merging again changes nothing: the export (every cell, every sample) is the same bytes */
    char j1[160], j2[160];
    snprintf(j1, sizeof j1, "%s/1.json", dir);
    snprintf(j2, sizeof j2, "%s/2.json", dir);
    snprintf(args, sizeof args, "export --json --log-samples '%s' -o '%s'", o, j1);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "'%s' '%s' '%s'", o, a, b);
    cr_assert_eq(merge(args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "(10 already in"), "%s", out);
    snprintf(args, sizeof args, "'%s' '%s'", o, o);   /* a file merged with itself */
    cr_assert_eq(merge(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "export --json --log-samples '%s' -o '%s'", o, j2);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    size_t l1, l2;
    char *t1 = test_read_bytes(j1, &l1), *t2 = test_read_bytes(j2, &l2);
    cr_expect(l1 == l2 && memcmp(t1, t2, l1) == 0, "the export is byte for byte the same after merging again");
    free(t1);
    free(t2);
    snprintf(args, sizeof args, "merge --compare '%s' '%s'", o, a);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 1, "--compare sees the difference: %s", out);
    test_rm_rf(dir);
}

Test(merge, conflicting_cells_are_refused_and_out_is_untouched) {
    char dir[64], a[128], b[128], o[128], args[512], out[4096];
    test_temp_dir(dir, sizeof dir, "merge");
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(b, sizeof b, "%s/b.h5", dir);
    snprintf(o, sizeof o, "%s/o.h5", dir);
    make_file(a, 0, 4, 20, 0, "x");
    make_file(b, 3, 6, 20, 1e-9, "x");   /* cell 3: another score */
    make_file(o, 10, 12, 20, 0, "x");
    size_t l0;
    char *before = test_read_bytes(o, &l0);
    snprintf(args, sizeof args, "'%s' '%s' '%s'", o, a, b);
    cr_assert_eq(merge(args, out, sizeof out), 1, "%s", out);
    cr_expect_not_null(strstr(out, "cell toy.m0.L3."), "names the cell: %s", out);
    cr_expect_not_null(strstr(out, "result 'score' differs"), "says what differs: %s", out);
    cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
    size_t l1;
    char *after = test_read_bytes(o, &l1);
    cr_expect(l0 == l1 && memcmp(before, after, l0) == 0, "OUT is untouched");
    free(before);
    free(after);
    /* a new OUT is not created either */
    snprintf(args, sizeof args, "'%s/new.h5' '%s' '%s'", dir, a, b);
    cr_assert_eq(merge(args, out, sizeof out), 1, "%s", out);
    char p[160];
    snprintf(p, sizeof p, "%s/new.h5", dir);
    cr_expect_neq(access(p, F_OK), 0);
    /* bad arguments */
    cr_expect_eq(merge("only-one.h5", out, sizeof out), 2, "%s", out);
    snprintf(args, sizeof args, "'%s' '%s/missing.h5'", o, dir);
    cr_expect_eq(merge(args, out, sizeof out), 1, "%s", out);
    cr_expect_not_null(strstr(out, "missing.h5"), "%s", out);
    test_rm_rf(dir);
}

Test(merge, missing_expected_cells_are_named) {
    char dir[64], a[128], o[128], ids[128], args[512], out[4096];
    test_temp_dir(dir, sizeof dir, "merge");
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(o, sizeof o, "%s/o.h5", dir);
    snprintf(ids, sizeof ids, "%s/ids.txt", dir);
    make_file(a, 0, 3, 4, 0, "x");
    FILE *f = fopen(ids, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 5; i++) fprintf(f, "toy.m%d.L%d.%04x\n", i % 3, i, i * 7919 % 65536);
    fclose(f);
    snprintf(args, sizeof args, "'%s' '%s' --expect '%s'", o, a, ids);
    cr_assert_eq(merge(args, out, sizeof out), 1, "%s", out);
    cr_expect_not_null(strstr(out, "2 of the 5 expected cells missing (toy.m0.L3."), "%s", out);
    cr_expect_eq(n_cells(o), 3, "the partial file is written, and said to be partial");
    make_file(a, 3, 5, 4, 0, "x");
    cr_assert_eq(merge(args, out, sizeof out), 0, "complete now: %s", out);
    test_rm_rf(dir);
}

Test(merge, sigkill_during_merge_leaves_old_or_new, .timeout = 300) {
    /* Inputs of ~16 MB, so a merge takes a while; killed at random moments, OUT holds
     * either its old 2 cells or the whole union of 62, and always opens. */
    char dir[64], a[128], b[128], o[128], errp[160];
    test_temp_dir(dir, sizeof dir, "merge");
    snprintf(a, sizeof a, "%s/a.h5", dir);
    snprintf(b, sizeof b, "%s/b.h5", dir);
    snprintf(o, sizeof o, "%s/o.h5", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    make_file(a, 0, 30, 30000, 0, "x");
    make_file(b, 30, 60, 30000, 0, "x");
    make_file(o, 100, 102, 10, 0, "x");
    /* how long one merge takes here, to kill the others anywhere inside it */
    char copy[160];
    snprintf(copy, sizeof copy, "%s/timed.h5", dir);
    const char *const timed[] = {"merge", copy, a, b, NULL};
    double t0 = host_monotonic_s();
    cr_assert_eq(test_wait_status(ctxbench_spawn(timed, errp, true)), 0);
    useconds_t span = (useconds_t)((host_monotonic_s() - t0) * 1.2e6) + 1000;
    unsigned long long rng = 7;
    int old = 0, new = 0, kills = 0;
    for (int round = 0; round < 30 && !(old && new && kills >= 6); round++) {
        const char *const args[] = {"merge", o, a, b, NULL};
        pid_t pid = ctxbench_spawn(args, errp, true);
        usleep((useconds_t)(test_rng_next(&rng) % span));
        kill(pid, SIGKILL);
        kills += test_wait_status(pid) == 1000 + SIGKILL;
        int n = n_cells(o);
        cr_assert(n == 2 || n == 62, "old or new, never between: %d cells", n);
        if (n == 2) old++;
        else new++;
        if (n == 62) {   /* the old file again for the next round */
            unlink(o);
            make_file(o, 100, 102, 10, 0, "x");
        }
    }
    cr_expect_gt(kills, 0, "some merges were killed");
    cr_log_info("%d kills: %d left the old file, %d the new", kills, old, new);
    const char *const args[] = {"merge", o, a, b, NULL};
    cr_assert_eq(test_wait_status(ctxbench_spawn(args, errp, true)), 0);
    cr_expect_eq(n_cells(o), 62);
    cr_expect_eq(test_count_tmp(dir), 0, "no temporary file left");
    test_rm_rf(dir);
}

Test(merge, shards_merged_equal_the_sweep_in_one_process, .timeout = 240) {
    /* stories260K, 3 methods x ppl and passkey x 3 lengths: once in one process, once as 3
     * shards merged. Cell for cell the same (run-specific attributes aside). */
    char dir[64], model[512], all[128], merged[128], args[4096], out[8192];
    test_temp_dir(dir, sizeof dir, "merge");
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(all, sizeof all, "%s/all.h5", dir);
    snprintf(merged, sizeof merged, "%s/merged.h5", dir);
    const char *grid = "--methods baseline,pi:factor=2,yarn:factor=4 --tasks ppl,passkey --lengths 256:1k "
                       "--task-opt 'ppl:max_windows=2;passkey:depths=1,trials=1' -t 1";
    snprintf(args, sizeof args, "sweep -m '%s' %s -o '%s'", model, grid, all);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    char shards[512] = "";
    for (int s = 1; s <= 3; s++) {
        snprintf(args, sizeof args, "sweep -m '%s' %s -o '%s/s%d.h5' --shard %d/3", model, grid, dir, s, s);
        cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
        cr_expect_not_null(strstr(out, "of the 18 cells"), "%s", out);
        text_append(shards, sizeof shards, " '%s/s%d.h5'", dir, s);
    }
    snprintf(args, sizeof args, "merge '%s'%s", merged, shards);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "merge --compare '%s' '%s'", all, merged);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "the same 18 cells"), "%s", out);
    /* and the comparison can fail: one shard short */
    snprintf(args, sizeof args, "merge --compare '%s' '%s/s1.h5'", all, dir);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 1, "%s", out);
    test_rm_rf(dir);
}

Test(merge, slurm_scripts_and_resubmission_of_missing_shards_only, .timeout = 240) {
    /* sbatch is the one program ctxbench slurm talks to: here a stand-in script that records
     * its arguments and prints a job id as sbatch --parsable does (scripts/slurm_ci.sh runs
     * the real one). */
    char dir[64], model[512], args[4096], out[16384], fake[160], calls[160], work[160];
    test_temp_dir(dir, sizeof dir, "slurm");
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(fake, sizeof fake, "%s/sbatch", dir);
    snprintf(calls, sizeof calls, "%s/calls.txt", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    FILE *f = fopen(fake, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\necho \"$*\" >> '%s'\necho 4242\n", calls);
    fclose(f);
    chmod(fake, 0755);
    const char *grid = "--methods baseline,pi:factor=2 --tasks ppl,passkey --lengths 256:512 "
                       "--task-opt 'ppl:max_windows=1;passkey:depths=1,trials=1' -t 1";
    snprintf(args, sizeof args,
             "slurm -m '%s' %s -o '%s/r.h5' --shards 3 --work-dir '%s' --partition p1 --account a1 --qos q1 "
             "--sbatch-extra '--constraint=x' --dry-run",
             model, grid, dir, work);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    const char *want[] = {"#SBATCH --array=1,2,3", "#SBATCH --partition=p1", "#SBATCH --account=a1", "#SBATCH --qos=q1",
                          "#SBATCH --constraint=x", "#SBATCH --mem=", "#SBATCH --time=", "/logs/shard-%a.err",
                          "--shard \"$SLURM_ARRAY_TASK_ID/3\"", " merge ", "--expect", "--dependency=afterany"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(out, want[i]), "'%s' in: %s", want[i], out);
    cr_expect_null(strstr(out, "--gres"), "no GPU on the CPU backend");
    cr_expect_neq(access(work, F_OK), 0, "a dry run writes nothing");
    /* submitted: the array, then the merge depending on it */
    snprintf(args, sizeof args, "slurm -m '%s' %s -o '%s/r.h5' --shards 3 --work-dir '%s'", model, grid, dir, work);
    char cmd[4400];
    setenv("CTXBENCH_SBATCH", fake, 1);
    cr_assert_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    char *log = test_read_text(calls);
    cr_expect(strstr(log, "array.sbatch") && strstr(log, "--dependency=afterany:4242") && strstr(log, "merge.sbatch"),
              "%s", log);
    free(log);
    /* shard 1 done by hand (as its array task would): a resubmission runs shards 2 and 3 only */
    char script[256];
    snprintf(script, sizeof script, "%s/array.sbatch", work);
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=1 bash '%s' 2>/dev/null", script);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s --dry-run", args);
    cr_assert_eq(ctxbench_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "#SBATCH --array=2,3"), "%s", out);
    for (int s = 2; s <= 3; s++) {
        snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=%d bash '%s' 2>/dev/null", s, script);
        cr_assert_eq(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "%s --dry-run", args);
    cr_assert_eq(ctxbench_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "every shard is complete"), "%s", out);
    /* the merge script joins them, every expected cell present */
    snprintf(cmd, sizeof cmd, "bash '%s/merge.sbatch' 2>&1", work);
    cr_expect_eq(test_shell_output(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "merge: 8 cells"), "%s", out);
    /* bad values: one line, status 2 */
    snprintf(args, sizeof args, "slurm -m '%s' -o '%s/r.h5' --shards 0", model, dir);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 2, "%s", out);
    cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
    snprintf(args, sizeof args, "slurm -m '%s' -o '%s/r.h5' --shards 2 --shard 1/2", model, dir);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 2, "%s", out);
    test_rm_rf(dir);
}
