/* ctxbench slurm: a sweep as a Slurm job array (one task per shard, `sweep --shard I/N`
 * into its own file) and a merge job that runs after it. ctxbench schedules nothing
 * itself: it writes two sbatch scripts and submits them. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "gguf.h"
#include "cli.h"
#include "input.h"
#include "store.h"
#include "sweep.h"
#include "sweep_plan.h"

static const char *help =
    "usage: ctxbench slurm [sweep options] -o OUT.h5 --shards N [slurm options] [--dry-run]\n"
    "Runs the sweep the sweep options describe (ctxbench sweep --help) as a Slurm job array: task I\n"
    "of N runs `ctxbench sweep ... --shard I/N` into WORK/shard-I.h5, and a merge job that starts\n"
    "when the array has ended (--dependency=afterany) joins the shards into OUT.h5 with\n"
    "`ctxbench merge --expect WORK/cells.txt` (a missing cell is named and the job fails).\n"
    "Each task's --mem and --time come from the dry run's estimates for its shard (session memory\n"
    "plus the weights, x1.25 + 512 MiB; estimated time x --time-factor + 5 min); --gres=gpu:1 when\n"
    "the backend is not the CPU. Submitting the same command again submits only the shards whose\n"
    "file lacks some of their cells (and each task skips the cells already done), then the merge.\n"
    "  --shards N            number of array tasks (1..10000)\n"
    "  --work-dir DIR        shard files, scripts and logs (default OUT.h5.slurm)\n"
    "  --partition P, --account A, --qos Q   #SBATCH options of your cluster\n"
    "  --sbatch-extra LINE   one more #SBATCH line for both jobs, e.g. '--constraint=a100'\n"
    "                        (repeatable)\n"
    "  --time-factor F       safety factor on the estimated time (default 3)\n"
    "  --dry-run             print both scripts and what would be submitted; write nothing\n"
    "$CTXBENCH_SBATCH names the sbatch program (default sbatch).\n";

struct slurm_opts {
    int n_shards;
    const char *work_dir, *partition, *account, *qos;
    const char **extra;
    int n_extra;
    double time_factor;
    bool dry_run;
    char **sweep_argv;   /* the sweep's own arguments, as given */
    int sweep_argc;
    char bin[PATH_MAX], cwd[PATH_MAX];
};

/* Appends s to buf as one shell word in single quotes (after a blank unless glued). */
static void shell_quote(char *buf, size_t cap, const char *s, bool glued) {
    text_append(buf, cap, glued ? "'" : " '");
    for (const char *p = s; *p; p++) {
        if (*p == '\'') text_append(buf, cap, "'\\''");
        else text_append(buf, cap, "%c", *p);
    }
    text_append(buf, cap, "'");
}
static void shell_word(char *buf, size_t cap, const char *s) { shell_quote(buf, cap, s, false); }

struct shard_plan {
    int cells, missing;       /* its cells; of them not done in its file */
    double seconds;           /* estimated time of the missing ones */
    size_t max_bytes;         /* largest session */
};

static void sbatch_common(char *s, size_t cap, const struct slurm_opts *o) {
    if (o->partition) text_append(s, cap, "#SBATCH --partition=%s\n", o->partition);
    if (o->account) text_append(s, cap, "#SBATCH --account=%s\n", o->account);
    if (o->qos) text_append(s, cap, "#SBATCH --qos=%s\n", o->qos);
    for (int i = 0; i < o->n_extra; i++)
        text_append(s, cap, "#SBATCH %s\n", o->extra[i]);
}

static int check_line(const char *what, const char *v, char *err, size_t errlen) {
    if (v && (!*v || strpbrk(v, "\n\r"))) {
        snprintf(err, errlen, "%s '%s': one non-empty line expected", what, ECHO(v));
        return -1;
    }
    return 0;
}

/* Runs an sbatch command line; the job id it prints (--parsable: "ID" or "ID;cluster"). */
static int submit(const char *cmd, long *job, char *err, size_t errlen) {
    FILE *p = popen(cmd, "r");
    char line[256] = "";
    if (!p) {
        snprintf(err, errlen, "cannot run sbatch: %s", strerror(errno));
        return -1;
    }
    if (!fgets(line, sizeof line, p)) line[0] = 0;
    int st = pclose(p);
    char *end;
    *job = strtol(line, &end, 10);
    if (st != 0 || end == line || *job <= 0) {
        line[strcspn(line, "\n")] = 0;
        snprintf(err, errlen, "sbatch failed (status %d%s%s): %s", st, line[0] ? ", printed " : "", ECHO(line), ECHO(cmd));
        return -1;
    }
    return 0;
}

static int write_text_file(const char *path, const char *text, char *err, size_t errlen) {
    struct atomic_file af = {0};
    if (atomic_file_open(&af, path, NULL, err, errlen) != 0) return -1;
    fputs(text, af.f);
    return atomic_file_commit(&af, err, errlen);
}

static int plan_and_submit(struct runtime *rt, const struct sweep_config *cfg, void *arg) {
    struct slurm_opts *o = arg;
    char err[2048];
    struct sweep_cell_info *cells = NULL;
    struct shard_plan *plan = calloc((size_t)o->n_shards, sizeof *plan);
    char *array = NULL, *merge = NULL, *ids = NULL;
    int n = 0, rc = 1;
    const size_t cap = 1 << 20;
    char work[PATH_MAX];
    if (o->work_dir) snprintf(work, sizeof work, "%s", o->work_dir);
    else snprintf(work, sizeof work, "%s.slurm", cfg->out_path);
    if (!plan || !(array = calloc(cap, 1)) || !(merge = calloc(cap, 1))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (sweep_list_cells(rt, cfg, o->n_shards, &cells, &n, err, sizeof err) != 0) goto fail;
    /* what each shard's file already holds, and what the rest needs */
    struct sweep_rates r;
    char why[512];
    bool timed = sweep_calibrate(rt, &r, why, sizeof why) == 0;
    size_t avail = cfg->mem_limit ? cfg->mem_limit : rt->device.mem_free;
    for (int s = 0; s < o->n_shards; s++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/shard-%d.h5", work, s + 1);
        struct store_cell *have = NULL;
        int n_have = 0;
        if (access(path, F_OK) == 0 && store_read(path, false, &have, &n_have, err, sizeof err) != 0) goto fail;
        for (int c = 0; c < n; c++) {
            if (cells[c].shard != s) continue;
            struct shard_plan *p = &plan[s];
            p->cells++;
            bool done = false;
            for (int k = 0; k < n_have && !done; k++) done = strcmp(have[k].id, cells[c].id) == 0 && have[k].status == CELL_DONE;
            const struct sweep_task *t = &cfg->tasks[cells[c].ti];
            int length = cfg->lengths[cells[c].li];
            struct cell_need need;
            sweep_cell_need(rt, t, &cfg->methods[cells[c].mi], length, avail, &need);
            if (need.bytes > p->max_bytes) p->max_bytes = need.bytes;
            if (done) continue;
            p->missing++;
            double sec = timed && need.fit == CELL_FITS ? sweep_cell_seconds(&r, t, length) : 0;
            p->seconds += isfinite(sec) ? sec : 60;   /* a task without an estimate: a minute */
        }
        store_cells_free(have, n_have);
    }
    size_t ids_cap = (size_t)n * (STORE_ID_MAX + 2) + 1, used = 0;
    if (!(ids = malloc(ids_cap))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    ids[0] = 0;
    for (int c = 0; c < n; c++) used += (size_t)snprintf(ids + used, ids_cap - used, "%s\n", cells[c].id);

    /* one array of the shards still missing cells, with the largest needs among them */
    char list[65536] = "";
    int todo = 0;
    double worst_s = 0;
    size_t worst_b = 0;
    for (int s = 0; s < o->n_shards; s++) {
        if (!plan[s].missing) continue;
        text_append(list, sizeof list, "%s%d", todo ? "," : "", s + 1);
        todo++;
        if (plan[s].seconds > worst_s) worst_s = plan[s].seconds;
        if (plan[s].max_bytes > worst_b) worst_b = plan[s].max_bytes;
    }
    const struct model *m = rt->model;
    /* the mapped file plus what the backend holds beside it (weights stay in the file's types) */
    double weights = (double)m->gguf->size + (double)rt->device.model_bytes;
    long mem_mib = (long)ceil(((double)worst_b + weights) * 1.25 / (1 << 20)) + 512;
    long minutes = (long)ceil(worst_s * o->time_factor / 60) + 5;
    bool gpu = strcmp(rt->be->name, "cpu") != 0;
    char name[64];
    const char *base = strrchr(cfg->out_path, '/');
    snprintf(name, sizeof name, "ctxbench-%.40s", base ? base + 1 : cfg->out_path);

    char cmd[16384] = "";
    text_append(array, cap, "#!/bin/bash\n# ctxbench slurm: shards %s of %d of the sweep into %s (written by ctxbench)\n",
                list[0] ? list : "(none)", o->n_shards, cfg->out_path);
    text_append(array, cap, "#SBATCH --job-name=%s\n#SBATCH --array=%s\n", name, list[0] ? list : "1");
    text_append(array, cap, "#SBATCH --output=%s/logs/shard-%%a.out\n#SBATCH --error=%s/logs/shard-%%a.err\n", work, work);
    text_append(array, cap, "#SBATCH --ntasks=1\n#SBATCH --mem=%ldM\n#SBATCH --time=%ld\n", mem_mib, minutes);
    if (!gpu && rt->device.n_threads > 0) text_append(array, cap, "#SBATCH --cpus-per-task=%d\n", rt->device.n_threads);
    if (gpu) text_append(array, cap, "#SBATCH --gres=gpu:1\n");
    sbatch_common(array, cap, o);
    text_append(array, cap, "set -eu\ncd");
    shell_word(array, cap, o->cwd);
    text_append(array, cap, "\n");
    const char *shared = getenv("CTXBENCH_SHARED");
    if (shared && *shared) {
        text_append(array, cap, "export CTXBENCH_SHARED=");
        shell_quote(array, cap, shared, true);
        text_append(array, cap, "\n");
    }
    text_append(array, cap, "exec");
    shell_word(array, cap, o->bin);
    text_append(array, cap, " sweep");
    for (int i = 0; i < o->sweep_argc; i++) shell_word(array, cap, o->sweep_argv[i]);
    text_append(array, cap, " -o");
    shell_word(array, cap, work);
    text_append(array, cap, "\"/shard-$SLURM_ARRAY_TASK_ID.h5\" --shard \"$SLURM_ARRAY_TASK_ID/%d\"\n", o->n_shards);

    text_append(merge, cap, "#!/bin/bash\n# ctxbench slurm: the %d shards joined into %s (written by ctxbench)\n",
                o->n_shards, cfg->out_path);
    text_append(merge, cap, "#SBATCH --job-name=%s-merge\n#SBATCH --output=%s/logs/merge.out\n#SBATCH --error=%s/logs/merge.err\n",
                name, work, work);
    text_append(merge, cap, "#SBATCH --ntasks=1\n#SBATCH --mem=%ldM\n#SBATCH --time=30\n", 2048L);
    sbatch_common(merge, cap, o);
    text_append(merge, cap, "set -eu\ncd");
    shell_word(merge, cap, o->cwd);
    text_append(merge, cap, "\nshards=()\nfor i in $(seq 1 %d); do\n  f=", o->n_shards);
    shell_quote(merge, cap, work, true);
    text_append(merge, cap, "\"/shard-$i.h5\"\n  if [ -e \"$f\" ]; then shards+=(\"$f\"); fi\ndone\n"
                            "[ ${#shards[@]} -gt 0 ] || { echo \"ctxbench slurm: no shard file in %s\" >&2; exit 1; }\nexec",
                work);
    shell_word(merge, cap, o->bin);
    text_append(merge, cap, " merge");
    shell_word(merge, cap, cfg->out_path);
    text_append(merge, cap, " \"${shards[@]}\" --expect");
    shell_word(merge, cap, work);
    text_append(merge, cap, "/cells.txt\n");

    const char *sbatch = getenv("CTXBENCH_SBATCH");
    if (!sbatch || !*sbatch) sbatch = "sbatch";
    fprintf(stderr, "slurm: %d cells in %d shards; %d shard%s to run (%s), each at most ~%.0f s estimated, "
            "%ld MiB, --time=%ld min%s\n", n, o->n_shards, todo, todo == 1 ? "" : "s", list[0] ? list : "none",
            worst_s, mem_mib, minutes, gpu ? ", --gres=gpu:1" : "");
    if (o->dry_run) {
        printf("### %s/array.sbatch\n%s\n### %s/merge.sbatch\n%s\n", work, array, work, merge);
        if (todo) printf("### would run: %s %s/array.sbatch, then %s --dependency=afterany:<array job> %s/merge.sbatch\n",
                         sbatch, work, sbatch, work);
        else printf("### would run: %s %s/merge.sbatch (every shard is complete)\n", sbatch, work);
        rc = 0;
        goto done;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs", work);
    if ((mkdir(work, 0777) != 0 && errno != EEXIST) || (mkdir(path, 0777) != 0 && errno != EEXIST)) {
        snprintf(err, sizeof err, "cannot create %s: %s", ECHO(path), strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/array.sbatch", work);
    if (write_text_file(path, array, err, sizeof err) != 0) goto fail;
    snprintf(path, sizeof path, "%s/merge.sbatch", work);
    if (write_text_file(path, merge, err, sizeof err) != 0) goto fail;
    snprintf(path, sizeof path, "%s/cells.txt", work);
    if (write_text_file(path, ids, err, sizeof err) != 0) goto fail;
    long job = 0, merge_job;
    if (todo) {
        snprintf(cmd, sizeof cmd, "%s --parsable", sbatch);
        snprintf(path, sizeof path, "%s/array.sbatch", work);
        shell_word(cmd, sizeof cmd, path);
        if (submit(cmd, &job, err, sizeof err) != 0) goto fail;
        printf("%ld\n", job);
    }
    snprintf(cmd, sizeof cmd, "%s --parsable", sbatch);
    if (todo) text_append(cmd, sizeof cmd, " --dependency=afterany:%ld", job);
    snprintf(path, sizeof path, "%s/merge.sbatch", work);
    shell_word(cmd, sizeof cmd, path);
    if (submit(cmd, &merge_job, err, sizeof err) != 0) goto fail;
    printf("%ld\n", merge_job);
    fprintf(stderr, "slurm: submitted array job %ld (shards %s) and merge job %ld -> %s\n", job, list[0] ? list : "none",
            merge_job, ECHO(cfg->out_path));
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ctxbench: %s\n", err);
done:
    free(cells);
    free(plan);
    free(array);
    free(merge);
    free(ids);
    return rc;
}

int cmd_slurm(int argc, char **argv) {
    struct slurm_opts o = {.time_factor = 3};
    char err[1024];
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    o.extra = calloc((size_t)argc + 1, sizeof *o.extra);
    if (!rest || !o.extra) return 1;
    int n_rest = 0, rc = 2;
    rest[n_rest++] = "slurm";
    /* slurm's own options out, the rest handed to the sweep's parser as given */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help, stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(a, "--dry-run") == 0) {
            o.dry_run = true;
            continue;
        }
        if (strcmp(a, "--shard") == 0) {
            fprintf(stderr, "ctxbench: slurm gives each array task its --shard; use --shards N\n");
            goto out;
        }
        const char *names[] = {"--shards", "--work-dir", "--partition", "--account", "--qos", "--sbatch-extra",
                               "--time-factor"};
        int k = 0;
        while (k < 7 && strcmp(a, names[k]) != 0) k++;
        if (k == 7) {
            rest[n_rest++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "ctxbench: %s needs a value\n", a);
            goto out;
        }
        i++;
        long x;
        switch (k) {
        case 0:
            if (!parse_int(v, 1, 10000, &x)) {
                fprintf(stderr, "ctxbench: --shards expects 1..10000, got '%s'\n", ECHO(v));
                goto out;
            }
            o.n_shards = (int)x;
            break;
        case 1: o.work_dir = v; break;
        case 2: o.partition = v; break;
        case 3: o.account = v; break;
        case 4: o.qos = v; break;
        case 5: o.extra[o.n_extra++] = v; break;
        case 6:
            if (!parse_double(v, &o.time_factor) || !(o.time_factor >= 1) || o.time_factor > 1000) {
                fprintf(stderr, "ctxbench: --time-factor expects a number in 1..1000, got '%s'\n", ECHO(v));
                goto out;
            }
            break;
        }
    }
    if (o.n_shards == 0) {
        fprintf(stderr, "ctxbench: slurm needs --shards N (see ctxbench slurm --help)\n");
        goto out;
    }
    if (check_line("--partition", o.partition, err, sizeof err) || check_line("--account", o.account, err, sizeof err) ||
        check_line("--qos", o.qos, err, sizeof err)) {
        fprintf(stderr, "ctxbench: %s\n", err);
        goto out;
    }
    for (int i = 0; i < o.n_extra; i++)
        if (check_line("--sbatch-extra", o.extra[i], err, sizeof err)) {
            fprintf(stderr, "ctxbench: %s\n", err);
            goto out;
        }
    /* the tasks run this very binary, from this directory */
    ssize_t len = readlink("/proc/self/exe", o.bin, sizeof o.bin - 1);
    if (len <= 0 || !getcwd(o.cwd, sizeof o.cwd)) {
        fprintf(stderr, "ctxbench: cannot find this program's path or the current directory\n");
        rc = 1;
        goto out;
    }
    o.bin[len] = 0;
    o.sweep_argv = rest + 1;
    o.sweep_argc = n_rest - 1;
    rc = cmd_sweep_with(n_rest, rest, plan_and_submit, &o);
out:
    free(rest);
    free(o.extra);
    return rc;
}
