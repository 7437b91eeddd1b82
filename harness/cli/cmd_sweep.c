/* ctxbench sweep: every (method, task, length) cell on one model into an HDF5 file,
 * resumable: cells already done in the file are not run again. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "input.h"
#include "method.h"
#include "settings.h"
#include "task.h"
#include "atomic_file.h"
#include "store.h"
#include "store_json.h"
#include "sweep.h"

static const char *help =
    "usage: ctxbench sweep -m MODEL -o OUT.h5 [--methods LIST] [--tasks LIST] [--lengths SPEC] [options]\n"
    "Runs every cell (method x task x length) on MODEL and writes each to OUT.h5 as soon as it is\n"
    "done. Rerunning the same command skips the cells already done (and retries failed and\n"
    "skipped ones), so an interrupted sweep resumes where it stopped. Schema: results/README.md.\n"
    "  -m, --model FILE        GGUF model\n"
    "  -o, --out FILE          results file (HDF5; created if absent)\n"
    "      --methods LIST      method specs, e.g. yarn:factor=4,pi,abf, or all (default: all)\n"
    "      --rope-scaling-json J, --hf-config FILE  one more method: a Hugging Face rope_scaling\n"
    "                          dict, or a config.json's (alone: that method only; see ctxbench ppl --help)\n"
    "      --tasks LIST        task names, e.g. ppl,passkey, or all (default: all)\n"
    "      --lengths SPEC      e.g. 4k:128k (doubling), 512,1k,2k, 1x:32x (x = trained context);\n"
    "                          each length in 4..16777216 (16384k) (default: 1x:32x)\n"
    "      --data SPEC         dataset for every task that reads one: a named dataset, a path, or\n"
    "                          a path under ../shared/datasets (default: each task's own)\n"
    "      --task-opt T:K=V,.. settings for task T (repeatable; several separated by ';').\n"
    "                          A key given twice: the later value wins\n"
    "      --seed N            seed handed to every cell (default 1)\n"
    "  -t, --threads N         worker threads of the CPU backend (default: all cores)\n"
    "      --backend NAME      cpu | opencl | auto (default auto: a GPU through OpenCL if there\n"
    "                          is one, else the CPU)\n"
    "      --device N          the backend's device N (ctxbench info --backend NAME lists them)\n"
    "  -ctk, --cache-type-k T  the KV cache's type for keys: f32 (default), f16, q8_0; recorded\n"
    "                          in every cell (cache_type_k), in its key unless f32\n"
    "  -ctv, --cache-type-v T  the same for values (make sweep KV=T sets both)\n"
    "      --cache-dir DIR     where tasks may cache tokenized texts (default: none)\n"
    "      --mem-limit MIB     memory a cell's session may take (default: the device's free\n"
    "                          memory: MemAvailable for the CPU)\n"
    "      --limit N           at most N windows (ppl max_windows), trials per depth (passkey)\n"
    "                          or samples (first_sentence) per cell: that setting becomes\n"
    "                          min(its value, N), and the cell records limit = N\n"
    "      --output-path F.json  also write the whole results file as JSON when the sweep ends\n"
    "                          (interrupted or not; schema results/results.schema.json)\n"
    "      --log-samples       with --output-path: each cell's per-sample records too\n"
    "      --shard I/N         run only the I-th of N shares of the grid (1 <= I <= N), balanced by\n"
    "                          the cells' estimated cost and the same on every machine (a job array\n"
    "                          gives each task one share and its own OUT.h5; ctxbench merge joins\n"
    "                          them; ctxbench slurm does both)\n"
    "      --dry-run           print every cell with its session memory and estimated time\n"
    "                          (from a ~2 s calibration of this model and threads) and the\n"
    "                          total on stdout; run nothing, write nothing\n"
    "Cells whose session needs more memory than that are recorded as skipped (a sweep names\n"
    "them in a warning before it starts); a cell that\n"
    "fails is recorded with its error and the sweep goes on. Ctrl-C finishes the current cell\n"
    "and stops; a second Ctrl-C abandons it. Exit status: 0 all cells done or skipped, 1 some\n"
    "failed or an error, 2 bad arguments, 130 interrupted.\n";

/* A signal handler can reach nothing but process-wide state: these two flags are the
 * only such state in ctxbench. interrupts counts SIGINT/SIGTERM; writing is set by the
 * sweep while a cell is written, when exiting would waste the finished cell. */
static volatile sig_atomic_t interrupts, writing;

static void on_signal(int sig) {
    (void)sig;
    interrupts++;
    if (interrupts == 1) {
        static const char msg[] = "\nctxbench: interrupted: finishing the current cell (Ctrl-C again to abandon it)\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
    } else if (!writing) {
        static const char msg[] =
            "\nctxbench: current cell abandoned; finished cells are in the file, rerun the command to resume\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
        _exit(130);
    }
}

static const struct task *find_task(const char *name) {
    for (int i = 0; registry_tasks[i]; i++)
        if (strcmp(registry_tasks[i]->name, name) == 0) return registry_tasks[i];
    return NULL;
}

static void task_names(char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; registry_tasks[i]; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", registry_tasks[i]->name);
    }
    if (!buf[0]) snprintf(buf, cap, "(none in this build)");
}

/* "ppl,passkey" or "all" into tasks[] (no settings yet). */
static int parse_tasks(const char *list, struct sweep_task **out, int *n_out, char *err, size_t errlen) {
    int cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    for (int i = 0; registry_tasks[i]; i++) cap++;
    struct sweep_task *t = calloc((size_t)cap, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = 0;
    char names[512];
    task_names(names, sizeof names);
    if (strcmp(list, "all") == 0) {
        for (int i = 0; registry_tasks[i]; i++) t[n++].task = registry_tasks[i];
    } else {
        for (const char *p = list;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
            const struct task *tk = len < 63 ? find_task(name) : NULL;
            if (!tk) {
                snprintf(err, errlen, "unknown task '%s' (tasks: %s)", ECHO_N(p, len), names);
                free(t);
                return -1;
            }
            for (int i = 0; i < n; i++)
                if (t[i].task == tk) {
                    snprintf(err, errlen, "task '%s' listed twice in '%s'", name, ECHO(list));
                    free(t);
                    return -1;
                }
            t[n++].task = tk;
            if (!comma) break;
            p = comma + 1;
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "no tasks (tasks: %s)", names);
        free(t);
        return -1;
    }
    *out = t;
    *n_out = n;
    return 0;
}

/* Appends one --task-opt value ("T:k=v,...;U:k=v") to the raw settings of its tasks. */
static int add_task_opts(const char *opt, struct sweep_task *t, int n, char (*raw)[2048], char *err,
                         size_t errlen) {
    for (const char *p = opt; *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (len > 0) {
            if (!colon || colon == p) {
                snprintf(err, errlen, "--task-opt '%s': expected TASK:key=value,...", ECHO_N(p, len));
                return -1;
            }
            char name[64];
            size_t nl = (size_t)(colon - p);
            snprintf(name, sizeof name, "%.*s", (int)(nl < 63 ? nl : 63), p);
            const struct task *tk = nl < 63 ? find_task(name) : NULL;
            if (!tk) {
                char names[512];
                task_names(names, sizeof names);
                snprintf(err, errlen, "--task-opt: unknown task '%s' (tasks: %s)", ECHO_N(p, nl), names);
                return -1;
            }
            int i = 0;
            while (i < n && t[i].task != tk) i++;
            if (i == n) {
                fprintf(stderr, "ctxbench: note: --task-opt for %s ignored (not among --tasks)\n", name);
            } else {
                size_t used = strlen(raw[i]);
                int w = snprintf(raw[i] + used, 2048 - used, "%s%.*s", used ? "," : "", (int)(len - nl - 1), colon + 1);
                if (w < 0 || (size_t)w >= 2048 - used) {
                    snprintf(err, errlen, "--task-opt for %s: settings too long", name);
                    return -1;
                }
            }
        }
        if (!semi) break;
        p = semi + 1;
    }
    return 0;
}

/* --limit N: the task's limit settings (task.h) are lowered in turn so their product is at
 * most N, each appended to the raw settings (a later key wins) only when that lowers it, so
 * a limit at or above what the cell does leaves the cell (and its id) as without it. */
static int apply_limit(const struct task *tk, char *raw, long limit, long *recorded, char *err, size_t errlen) {
    if (!tk->limit_settings || !tk->settings) return 0;
    long values[SETTINGS_MAX];
    char e2[900];
    if (task_settings_read(tk->settings, tk->name, raw, values, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "task %s: %s", tk->name, e2);
        return -1;
    }
    *recorded = limit;
    long product = 1;
    for (int j = 0; tk->limit_settings[j]; j++) {
        int k = 0;
        while (tk->settings[k].name && strcmp(tk->settings[k].name, tk->limit_settings[j]) != 0) k++;
        if (!tk->settings[k].name) continue;
        long cap = limit / product;
        if (cap < 1) cap = 1;
        long v = values[k] < cap ? values[k] : cap;
        product *= v;
        if (v == values[k]) continue;
        size_t used = strlen(raw);
        int w = snprintf(raw + used, 2048 - used, "%s%s=%ld", used ? "," : "", tk->settings[k].name, v);
        if (w < 0 || (size_t)w >= 2048 - used) {
            snprintf(err, errlen, "--task-opt for %s: settings too long", tk->name);
            return -1;
        }
    }
    return 0;
}

/* The results file as JSON at json_out, written beside it and renamed into place. */
static int write_json(const char *results, const char *json_out, bool samples, char *err, size_t errlen) {
    struct store_cell *cells;
    int n;
    if (store_read(results, samples, &cells, &n, err, errlen) != 0) return -1;
    struct atomic_file af = {0};
    FILE *f = stdout;
    bool to_stdout = strcmp(json_out, "-") == 0;
    if (!to_stdout) {
        if (atomic_file_open(&af, json_out, results, err, errlen) != 0) {
            store_cells_free(cells, n);
            return -1;
        }
        f = af.f;
    }
    int rc = store_write_json(f, cells, n, results, samples);
    store_cells_free(cells, n);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory writing %s", json_out);
        if (!to_stdout) atomic_file_discard(&af);
        return -1;
    }
    if (to_stdout) return fflush(stdout) == 0 ? 0 : (snprintf(err, errlen, "error writing standard output"), -1);
    return atomic_file_commit(&af, err, errlen);
}

/* Every registered method with its defaults: "baseline,pi,ntk,...". */
static int all_methods(struct method_spec **out, int *n, char *err, size_t errlen) {
    char list[2048] = "";
    for (int i = 0; registry_methods[i]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "", registry_methods[i]->name);
    }
    return method_spec_list_parse(list, out, n, err, errlen);
}

int cmd_sweep(int argc, char **argv) { return cmd_sweep_with(argc, argv, NULL, NULL); }

int cmd_sweep_with(int argc, char **argv, int (*instead)(struct runtime *, const struct sweep_config *, void *),
                   void *arg) {
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
                                             {"threads", required_argument, 0, 't'},
                                             {"backend", required_argument, 0, 1001}, {"device", required_argument, 0, 1008},
                                             {"out", required_argument, 0, 'o'},
                                             {"methods", required_argument, 0, 2001},
                                             {"tasks", required_argument, 0, 2002},
                                             {"lengths", required_argument, 0, 2003},
                                             {"data", required_argument, 0, 2004},
                                             {"task-opt", required_argument, 0, 2005},
                                             {"seed", required_argument, 0, 2006},
                                             {"cache-dir", required_argument, 0, 2007},
                                             {"mem-limit", required_argument, 0, 2008},
                                             {"dry-run", no_argument, 0, 2009},
                                             {"limit", required_argument, 0, 2010},
                                             {"output-path", required_argument, 0, 2011},
                                             {"log-samples", no_argument, 0, 2012},
                                             {"shard", required_argument, 0, 2013},
                                             {"rope-scaling-json", required_argument, 0, 1009},
                                             {"hf-config", required_argument, 0, 1010},
                                             {"cache-type-k", required_argument, 0, 1017},
                                             {"cache-type-v", required_argument, 0, 1018},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    struct run_opts ro;
    run_opts_init(&ro);
    const char *out = NULL, *methods_text = NULL, *tasks_text = "all", *lengths_text = "1x:32x", *data = NULL;
    const char *cache_dir = NULL, *json_out = NULL;
    long limit = 0;
    bool log_samples = false;
    const char **task_opts = calloc((size_t)argc + 1, sizeof *task_opts);
    int n_task_opts = 0;
    long seed = 1, mem_mib = 0;
    int opt, dry_run = 0, shard = 0, n_shards = 0;
    if (!task_opts) return 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "m:t:o:h", longopts, NULL)) != -1) {
        int r = (opt == 'm' || opt == 't' || opt == 1001 || opt == 1008 || opt == 1009 || opt == 1010 || opt == 1017 ||
                 opt == 1018)
                    ? cli_run_opt(&ro, opt, optarg) : 0;
        if (r < 0) { free(task_opts); return 2; }
        if (r > 0) continue;
        switch (opt) {
        case 'o': out = optarg; break;
        case 2001: methods_text = optarg; break;
        case 2002: tasks_text = optarg; break;
        case 2003: lengths_text = optarg; break;
        case 2004: data = optarg; break;
        case 2005: task_opts[n_task_opts++] = optarg; break;
        case 2006:
            if (!parse_int(optarg, 0, 0x7fffffffL, &seed)) {
                fprintf(stderr, "ctxbench: --seed expects an integer in 0..2147483647, got '%s'\n", ECHO(optarg));
                free(task_opts);
                return 2;
            }
            break;
        case 2007: cache_dir = optarg; break;
        case 2008:
            if (!parse_int(optarg, 1, 1L << 30, &mem_mib)) {
                fprintf(stderr, "ctxbench: --mem-limit expects MiB in 1..2^30, got '%s'\n", ECHO(optarg));
                free(task_opts);
                return 2;
            }
            break;
        case 2009: dry_run = 1; break;
        case 2010:
            if (!parse_int(optarg, 1, 1L << 30, &limit)) {
                fprintf(stderr, "ctxbench: --limit expects an integer in 1..2^30, got '%s'\n", ECHO(optarg));
                free(task_opts);
                return 2;
            }
            break;
        case 2011: json_out = optarg; break;
        case 2012: log_samples = true; break;
        case 2013: {
            char e[512];
            if (sweep_parse_shard(optarg, &shard, &n_shards, e, sizeof e) != 0) {
                fprintf(stderr, "ctxbench: %s\n", e);
                free(task_opts);
                return 2;
            }
            break;
        }
        case 'h': fputs(help, stdout); free(task_opts); return 0;
        default: fputs(help, stderr); free(task_opts); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ctxbench: unexpected argument '%s'\n", ECHO(argv[optind]));
        free(task_opts);
        return 2;
    }
    if (log_samples && !json_out) {
        fprintf(stderr, "ctxbench: --log-samples needs --output-path FILE.json\n");
        free(task_opts);
        return 2;
    }
    if (!ro.model || !out) {
        fprintf(stderr, "ctxbench: sweep needs -m MODEL and -o OUT.h5 (see ctxbench sweep --help)\n");
        free(task_opts);
        return 2;
    }

    /* Everything that can be checked without the model, checked first. */
    char err[1024];
    int rc = 2, n_methods = 0, n_tasks = 0, n_lengths = 0;
    struct method_spec *methods = NULL;
    struct sweep_task *tasks = NULL;
    int *lengths = NULL;
    char (*raw)[2048] = NULL;
    struct runtime rt = {0};
    bool opened = false;
    const bool hf = ro.rope_scaling_json || ro.hf_config;
    if (methods_text && strcmp(methods_text, "all") == 0) methods_text = NULL;
    if (hf && !methods_text) {   /* a Hugging Face rope_scaling alone: that one method */
        methods = malloc(sizeof *methods);
        if (!methods) { snprintf(err, sizeof err, "out of memory"); goto fail; }
    } else if ((methods_text ? method_spec_list_parse(methods_text, &methods, &n_methods, err, sizeof err)
                             : all_methods(&methods, &n_methods, err, sizeof err)) != 0) {
        goto fail;
    }
    if (hf) {   /* the method the dict or config.json names, after --methods' (its rope_theta is checked at open) */
        struct method_spec *more = realloc(methods, (size_t)(n_methods + 1) * sizeof *methods);
        if (!more) { snprintf(err, sizeof err, "out of memory"); goto fail; }
        methods = more;
        if (cli_method_spec(&ro, &methods[n_methods], err, sizeof err) != 0) goto fail;
        n_methods++;
    }
    if (parse_tasks(tasks_text, &tasks, &n_tasks, err, sizeof err) != 0 ||
        sweep_parse_lengths(lengths_text, 512, &lengths, &n_lengths, err, sizeof err) != 0)
        goto fail;
    free(lengths);
    lengths = NULL;
    raw = calloc((size_t)n_tasks, sizeof *raw);
    if (!raw) { snprintf(err, sizeof err, "out of memory"); goto fail; }
    for (int i = 0; i < n_task_opts; i++)
        if (add_task_opts(task_opts[i], tasks, n_tasks, raw, err, sizeof err) != 0) goto fail;
    for (int i = 0; i < n_tasks; i++) {
        const struct task *tk = tasks[i].task;
        char e2[900];
        if (limit > 0 && apply_limit(tk, raw[i], limit, &tasks[i].limit, err, sizeof err) != 0) goto fail;
        if (sweep_canonical_settings(raw[i], tasks[i].settings, sizeof tasks[i].settings, e2, sizeof e2) != 0) {
            snprintf(err, sizeof err, "--task-opt for %s: %s", tk->name, e2);
            goto fail;
        }
        if (tk->check && tk->check(tasks[i].settings, e2, sizeof e2) != 0) {
            snprintf(err, sizeof err, "task %s: %s", tk->name, e2);
            goto fail;
        }
        /* a task without a default dataset reads none (passkey builds its own text) */
        const char *d = !tk->default_data ? "" : data ? data : tk->default_data;
        if ((size_t)snprintf(tasks[i].data, sizeof tasks[i].data, "%s", d) >= sizeof tasks[i].data) {
            snprintf(err, sizeof err, "task %s: dataset path is longer than %zu bytes", tk->name,
                     sizeof tasks[i].data - 1);
            goto fail;
        }
        char path[4096];
        if (d[0] && sweep_data_path(d, path, sizeof path, e2, sizeof e2) != 0) {
            snprintf(err, sizeof err, "task %s: %s", tk->name, e2);
            goto fail;
        }
    }
    /* the output must be writable before any work starts (a dry run never writes it) */
    if (!dry_run) {
        if (json_out && strcmp(json_out, "-") != 0 &&
            check_not_input(json_out, "--output-path", out, err, sizeof err) != 0)
            goto fail;
        struct store *probe = store_open(out, err, sizeof err);
        if (!probe) { rc = 1; goto fail; }
        store_close(probe);
    }
    rc = 1;
    if (cli_open(&ro, &rt, err, sizeof err) != 0) goto fail;
    opened = true;
    if (sweep_parse_lengths(lengths_text, rt.model->cfg.ctx_train, &lengths, &n_lengths, err, sizeof err) != 0) {
        rc = 2;
        goto fail;
    }

    struct sweep_config cfg = {.model_path = ro.model,
                               .methods = methods,
                               .n_methods = n_methods,
                               .tasks = tasks,
                               .n_tasks = n_tasks,
                               .lengths = lengths,
                               .n_lengths = n_lengths,
                               .out_path = out,
                               .seed = (uint64_t)seed,
                               .cache_dir = cache_dir,
                               .mem_limit = (size_t)mem_mib << 20,
                               .stop = &interrupts,
                               .writing = &writing,
                               .log = dry_run ? stdout : stderr,
                               .dry_run = dry_run,
                               .shard = shard,
                               .n_shards = n_shards};
    if (instead) {   /* ctxbench slurm: the grid, checked and opened as a sweep would, planned not run */
        rc = instead(&rt, &cfg, arg);
        goto done;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct sweep_summary sum;
    int r = sweep_run(&rt, &cfg, &sum, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (r != 0) goto fail;
    if (dry_run) {
        rc = 0;
        goto done;
    }
    fprintf(stderr, "sweep: %d cells: %d done before, %d done, %d skipped, %d failed -> %s\n", sum.total, sum.cached,
            sum.done, sum.skipped, sum.failed, ECHO(out));
    if (sum.interrupted) {
        fprintf(stderr, "ctxbench: sweep interrupted; the finished cells are in %s, rerun the same command to resume\n",
                ECHO(out));
        rc = 130;
    } else {
        rc = sum.failed ? 1 : 0;
    }
    if (json_out && write_json(out, json_out, log_samples, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s (the results are in %s)\n", err, ECHO(out));
        rc = 1;
    } else if (json_out && strcmp(json_out, "-") != 0) {
        fprintf(stderr, "sweep: every cell of %s as JSON%s -> %s\n", ECHO(out), log_samples ? " with samples" : "",
                ECHO(json_out));
    }
    goto done;
fail:
    fprintf(stderr, "ctxbench: %s\n", err);
done:
    if (opened) runtime_close(&rt);
    free(methods);
    free(tasks);
    free(lengths);
    free(raw);
    free(task_opts);
    return rc;
}
