/* ctxbench plot: a sweep's figures as PNG and SVG. plot.c writes the data files;
 * this file finds the gnuplot scripts and runs gnuplot once per figure and format. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "input.h"
#include "plot.h"

extern char **environ;

static const char *help =
    "usage: ctxbench plot RESULTS.h5 [-o DIR] [options]\n"
    "Draws a sweep's figures with gnuplot as PNG and SVG, and writes the data behind each one next\n"
    "to it (DIR/<figure>.dat: one block per method, with a comment header naming the columns) and\n"
    "its caption (DIR/<figure>.caption.txt, also in the SVG's <desc>: model hash, protocol, data,\n"
    "settings, git revision, the series and the notes):\n"
    "  ppl_vs_length         perplexity vs context length, per method (task ppl)\n"
    "  loss_by_position      mean NLL per position bin, every method at the longest length (ppl)\n"
    "  loss_by_position_<m>  the same for method m, one line per length (ppl)\n"
    "  passkey_heatmap       passkey accuracy by length x key depth, one panel per method\n"
    "  passkey_heatmap_<m>   the same for the graded measures the results hold (digit_accuracy,\n"
    "                        key_nll)\n"
    "  passkey_accuracy      passkey exact-match accuracy vs length, 95% Wilson intervals\n"
    "  first_sentence_rouge  first-sentence retrieval ROUGE-L F1 vs length, per method\n"
    "  cost_<task>           throughput (tokens/s) and peak memory (MiB) vs length, per method\n"
    "Only done cells are drawn. Skipped and failed cells, and tasks absent from the file, are\n"
    "listed as notes (printed and kept in DIR/notes.txt). When a file holds one task for several\n"
    "models or settings, the figure names get _2, _3, ...\n"
    "  -o, --out DIR            output directory (default plots/out/<RESULTS name without .h5>)\n"
    "      --passkey-metric M   accuracy (default), digit_accuracy or token_accuracy\n"
    "      --loss-logx          loss-by-position figures with a log2 position axis (the start of\n"
    "                           the window, where a method's trained range lies, spread out)\n"
    "      --scripts DIR        the gnuplot scripts (default: plots/ beside the binary's build\n"
    "                           directory, else ./plots)\n"
    "      --gnuplot PROG       the gnuplot program (default gnuplot)\n"
    "      --data-only          write the data files and notes, run no gnuplot\n";

/* mkdir -p. */
static int make_dirs(const char *path, char *err, size_t errlen) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "output directory name too long");
        return -1;
    }
    for (char *s = buf + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char saved = *s;
        *s = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory %s: %s", ECHO(buf), strerror(errno));
            return -1;
        }
        *s = saved;
        if (!saved) break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", ECHO(path));
        return -1;
    }
    return 0;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* plots/ next to the directory holding the binary (build/ctxbench -> plots/), so the
 * command works from any working directory; else ./plots. */
static void default_scripts(char *out, size_t cap) {
    char exe[PATH_MAX], probe[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/../plots/common.gp", exe);
            char *real = is_file(probe) ? realpath(probe, NULL) : NULL;   /* a tidy path for messages */
            char *slash2 = real ? strrchr(real, '/') : NULL;
            if (slash2) *slash2 = 0;
            bool ok = slash2 && snprintf(out, cap, "%s", real) < (int)cap;
            free(real);
            if (ok) return;
        }
    }
    snprintf(out, cap, "plots");
}

/* Runs PROG with argv, stdout to /dev/null when quiet; returns its wait status (see
 * describe_status), or -1 with errno set when the program could not be started. */
static int run_prog(const char *prog, char *const argv[], bool quiet) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet) posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        errno = e;
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return status;
}

static bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

/* "exited with status 3", "killed by signal 11 (Segmentation fault)". */
static void describe_status(int status, char *buf, size_t cap) {
    if (status < 0) snprintf(buf, cap, "could not be started: %s", strerror(errno));
    else if (WIFEXITED(status)) snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else snprintf(buf, cap, "ended with wait status 0x%x", (unsigned)status);
}

static void xml_escaped(struct textbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '&') textbuf_puts(b, "&amp;");
        else if (ch == '<') textbuf_puts(b, "&lt;");
        else if (ch == '>') textbuf_puts(b, "&gt;");
        else if (ch < 0x20 && ch != '\n' && ch != '\t') textbuf_puts(b, " ");   /* not allowed in XML 1.0 */
        else textbuf_append(b, &s[i], 1);
    }
}

/* The SVG carries its caption: gnuplot's <title>Gnuplot</title> becomes the figure's
 * title (the caption's first line) and its <desc> the whole caption, so a figure
 * copied out of the directory still says what it shows and where it came from. */
static int svg_embed_caption(const char *path, const char *caption, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    struct textbuf in = {0}, out = {0};
    char buf[65536];
    size_t n;
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", ECHO(path), strerror(errno));
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) textbuf_append(&in, buf, n);
    bool read_err = ferror(f);
    fclose(f);
    const char *t0 = in.s ? strstr(in.s, "<title>") : NULL;
    const char *t1 = t0 ? strstr(t0, "</title>") : NULL;
    const char *d0 = t1 ? strstr(t1, "<desc>") : NULL;
    const char *d1 = d0 ? strstr(d0, "</desc>") : NULL;
    if (read_err || in.oom || !d1) {
        textbuf_free(&in);
        snprintf(err, errlen, "gnuplot's SVG %s has no <title> and <desc> to hold the caption", ECHO(path));
        return -1;
    }
    textbuf_append(&out, in.s, (size_t)(t0 - in.s));
    textbuf_puts(&out, "<title>");
    xml_escaped(&out, caption, strcspn(caption, "\n"));
    textbuf_append(&out, t1, (size_t)(d0 - t1));
    textbuf_puts(&out, "<desc>");
    xml_escaped(&out, caption, strlen(caption));
    textbuf_append(&out, d0 + 6, (size_t)(d1 - d0 - 6));
    textbuf_puts(&out, d1);
    textbuf_free(&in);
    f = out.oom ? NULL : fopen(path, "wb");
    bool ok = f && fwrite(out.s, 1, out.n, f) == out.n;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) snprintf(err, errlen, "cannot write %s: %s", ECHO(path), out.oom ? "out of memory" : strerror(errno));
    textbuf_free(&out);
    return ok ? 0 : -1;
}

/* One figure in one format: gnuplot -e "plotdir=...; term=...; out=...; <vars>" SCRIPT.
 * gnuplot draws into a temporary file beside the figure, renamed over it when complete,
 * so a kill or a failure leaves the previous figure, never a truncated one. */
static int draw(const char *gnuplot, const char *scripts, const char *results, const struct plot_job *job,
                const char *term) {
    struct textbuf e = {0};
    char out[PATH_MAX + 8], script[PATH_MAX + 64], err[1024];
    snprintf(out, sizeof out, "%s.%s", job->out, term);
    snprintf(script, sizeof script, "%s/%s", scripts, job->script);
    struct atomic_file af;
    if (atomic_file_open(&af, out, results, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return -1;
    }
    fclose(af.f);   /* gnuplot writes the file */
    af.f = NULL;
    /* single-quoted gnuplot strings: '' is a quote; paths have no control characters */
    const char *names[3] = {"plotdir", "term", "out"};
    const char *values[3] = {scripts, term, atomic_file_write_path(&af)};
    for (int k = 0; k < 3; k++) {
        textbuf_puts(&e, names[k]);
        textbuf_puts(&e, "='");
        for (const char *s = values[k]; *s; s++) textbuf_puts(&e, *s == '\'' ? "''" : (char[2]){*s, 0});
        textbuf_puts(&e, "'; ");
    }
    textbuf_puts(&e, job->vars);
    if (e.oom) {
        textbuf_free(&e);
        atomic_file_discard(&af);
        fprintf(stderr, "ctxbench: out of memory\n");
        return -1;
    }
    char *argv[] = {(char *)gnuplot, "-e", e.s, script, NULL};
    int status = run_prog(gnuplot, argv, false);
    textbuf_free(&e);
    struct stat st;
    char how[160];
    describe_status(status, how, sizeof how);
    if (!exited_ok(status)) {
        fprintf(stderr, "ctxbench: gnuplot could not draw %s (%s): %s %s\n", ECHO(out), ECHO(script), gnuplot, how);
        atomic_file_discard(&af);
        return -1;
    }
    if (stat(atomic_file_write_path(&af), &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "ctxbench: gnuplot could not draw %s (%s): %s %s but wrote nothing\n", ECHO(out),
                ECHO(script), gnuplot, how);
        atomic_file_discard(&af);
        return -1;
    }
    if (strcmp(term, "svg") == 0 && job->caption &&
        svg_embed_caption(atomic_file_write_path(&af), job->caption, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        atomic_file_discard(&af);
        return -1;
    }
    if (atomic_file_commit(&af, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return -1;
    }
    return 0;
}

int cmd_plot(int argc, char **argv) {
    static const struct option longopts[] = {{"out", required_argument, 0, 'o'},
                                             {"passkey-metric", required_argument, 0, 1001},
                                             {"scripts", required_argument, 0, 1002},
                                             {"gnuplot", required_argument, 0, 1003},
                                             {"data-only", no_argument, 0, 1004},
                                             {"loss-logx", no_argument, 0, 1005},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    const char *out = NULL, *scripts = NULL, *gnuplot = "gnuplot";
    struct plot_opts po = {.passkey_metric = "accuracy"};
    bool data_only = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        if (opt == 'o') out = optarg;
        else if (opt == 1001) po.passkey_metric = optarg;
        else if (opt == 1002) scripts = optarg;
        else if (opt == 1003) gnuplot = optarg;
        else if (opt == 1004) data_only = true;
        else if (opt == 1005) po.loss_logx = true;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (optind != argc - 1) {
        fputs(help, stderr);
        return 2;
    }
    const char *results = argv[optind];
    char dir[PATH_MAX], script_dir[PATH_MAX], err[1024];
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
    } else {   /* plots/out/<basename without .h5> */
        const char *base = strrchr(results, '/') ? strrchr(results, '/') + 1 : results;
        size_t n = strlen(base);
        if (n > 3 && strcmp(base + n - 3, ".h5") == 0) n -= 3;
        if (n == 0 || n > 200) {
            fprintf(stderr, "ctxbench: cannot make an output directory name from '%s'; give -o DIR\n",
                    ECHO(results));
            return 2;
        }
        snprintf(dir, sizeof dir, "plots/out/%.*s", (int)n, base);
    }
    if (scripts) snprintf(script_dir, sizeof script_dir, "%s", scripts);
    else default_scripts(script_dir, sizeof script_dir);
    if (strcmp(po.passkey_metric, "accuracy") && strcmp(po.passkey_metric, "digit_accuracy") &&
        strcmp(po.passkey_metric, "token_accuracy")) {
        fprintf(stderr, "ctxbench: --passkey-metric %s: use accuracy, digit_accuracy or token_accuracy\n",
                ECHO(po.passkey_metric));
        return 2;
    }
    if (access(results, R_OK) != 0) {
        fprintf(stderr, "ctxbench: cannot read %s: %s\n", ECHO(results), strerror(errno));
        return 1;
    }
    if (check_not_input(dir, "output directory", results, err, sizeof err) != 0 ||
        check_fd_not_input(STDOUT_FILENO, "standard output", results, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    if (make_dirs(dir, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    struct plot_plan plan;
    if (plot_prepare(results, dir, &po, &plan, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    /* the notes: printed, and kept beside the figures */
    char notes_path[PATH_MAX + 16];
    snprintf(notes_path, sizeof notes_path, "%s/notes.txt", dir);
    struct atomic_file nf;
    int rc = 0;
    if (atomic_file_open(&nf, notes_path, results, err, sizeof err) == 0) {
        fputs(plan.notes.s ? plan.notes.s : "", nf.f);
        if (atomic_file_commit(&nf, err, sizeof err) != 0) rc = 1;
    } else {
        rc = 1;
    }
    if (rc) fprintf(stderr, "ctxbench: %s\n", err);
    for (const char *s = plan.notes.s; s && *s;) {
        const char *e = strchr(s, '\n');
        int len = e ? (int)(e - s) : (int)strlen(s);
        printf("note: %.*s\n", len, s);
        s += len + (e != NULL);
    }
    if (data_only) {
        printf("%d figure data files in %s (--data-only: not drawn)\n", plan.n_jobs, dir);
    } else if (plan.n_jobs > 0) {
        char probe[PATH_MAX + 16];
        snprintf(probe, sizeof probe, "%s/common.gp", script_dir);
        char *version[] = {(char *)gnuplot, "--version", NULL};
        if (!exited_ok(run_prog(gnuplot, version, true))) {
            fprintf(stderr, "ctxbench: %s not found or not working (Debian: apt-get install gnuplot-nox); "
                    "the data files are in %s\n", ECHO(gnuplot), ECHO(dir));
            rc = 1;
        } else if (!is_file(probe)) {
            fprintf(stderr, "ctxbench: no gnuplot scripts in %s (give --scripts DIR, the checkout's plots/)\n",
                    ECHO(script_dir));
            rc = 1;
        } else {
            int drawn = 0;
            for (int i = 0; i < plan.n_jobs; i++) {
                bool ok = draw(gnuplot, script_dir, results, &plan.jobs[i], "png") == 0;
                ok &= draw(gnuplot, script_dir, results, &plan.jobs[i], "svg") == 0;
                if (!ok) { rc = 1; continue; }
                drawn++;
                const char *name = strrchr(plan.jobs[i].out, '/') ? strrchr(plan.jobs[i].out, '/') + 1 : plan.jobs[i].out;
                printf("  %s.png  %s.svg  %s.dat\n", name, name, name);
            }
            printf("%d of %d figures drawn (PNG + SVG) in %s\n", drawn, plan.n_jobs, dir);
        }
    } else {
        printf("nothing to plot in %s\n", ECHO(results));
    }
    plot_plan_free(&plan);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
