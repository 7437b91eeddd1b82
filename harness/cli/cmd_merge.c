/* ctxbench merge: results files (a job array's shards, sweeps run on several machines)
 * joined into one, atomically, refusing two different results for one cell. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "input.h"
#include "store.h"

static const char *help =
    "usage: ctxbench merge OUT.h5 IN.h5... [--expect IDS.txt]\n"
    "       ctxbench merge --compare A.h5 B.h5\n"
    "Writes the union of the cells of OUT.h5 (when it exists) and every IN.h5 into OUT.h5: every\n"
    "attribute and array of each cell as it is, into a new file renamed over OUT.h5 (a kill leaves\n"
    "the old OUT.h5 or the new one). A cell in several files must hold the same result in each\n"
    "(the same attributes, results bit for bit; when and where it ran may differ: started, wall_s,\n"
    "host, threads, paths, build ...); two different results for one cell id stop the merge with\n"
    "the cell named and OUT.h5 untouched. A done cell wins over a failed or skipped attempt; of\n"
    "two failed or skipped attempts the later file's. Merging the same files again changes nothing.\n"
    "  --expect FILE   cell ids, one per line (ctxbench slurm writes them): every one must be in\n"
    "                  the merged file, done or skipped; the merged file is written either way and\n"
    "                  the missing and failed cells are named, with exit status 1\n"
    "  --compare       write nothing: whether A.h5 and B.h5 hold the same cells with the same\n"
    "                  results (as merge judges them: run-specific attributes aside); exit 0 when\n"
    "                  they do, 1 naming the first difference\n"
    "Exit status: 0 merged, 1 a conflict, an unreadable file or missing cells, 2 bad arguments.\n";

struct source_cell {
    struct store_cell *c;
    int file;   /* 0 = OUT's own cells, then the inputs in order */
};

static int cmp_source(const void *a, const void *b) {
    const struct source_cell *x = a, *y = b;
    int c = strcmp(x->c->id, y->c->id);
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

/* Appends up to `room` ids to a one-line list, then "and N more". */
static void list_id(char *buf, size_t cap, int *listed, const char *id) {
    if (*listed < 8) text_append(buf, cap, "%s%s", *listed ? ", " : "", id);
    (*listed)++;
}

/* --expect: ids one per line (blank lines ignored). */
static int read_expect(const char *path, char ***ids, int *n, char *err, size_t errlen) {
    size_t len;
    char *text = input_read_file(path, &len, err, errlen);
    if (!text) return -1;
    int cap = 0;
    *ids = NULL;
    *n = 0;
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (!*line) continue;
        if (strlen(line) > STORE_ID_MAX) {
            snprintf(err, errlen, "--expect %s: '%s' is not a cell id (longer than %d bytes)", ECHO(path), ECHO(line),
                     STORE_ID_MAX);
            goto fail;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **more = realloc(*ids, (size_t)cap * sizeof *more);
            if (!more) goto oom;
            *ids = more;
        }
        if (!((*ids)[*n] = strdup(line))) goto oom;
        (*n)++;
    }
    free(text);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    for (int i = 0; i < *n; i++) free((*ids)[i]);
    free(*ids);
    free(text);
    return -1;
}

static int cmp_id_key(const void *key, const void *cell) {
    return strcmp(key, ((const struct store_cell *)cell)->id);
}

/* --compare: both files' cells (store_read sorts them by id) side by side. */
static int compare_files(const char *a, const char *b) {
    struct store_cell *ca = NULL, *cb = NULL;
    int na = 0, nb = 0, rc = 1;
    char err[1024], why[512];
    if (store_read(a, true, &ca, &na, err, sizeof err) != 0 || store_read(b, true, &cb, &nb, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        goto out;
    }
    for (int i = 0, j = 0; i < na || j < nb;) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(ca[i].id, cb[j].id);
        if (c != 0) {
            fprintf(stderr, "ctxbench: merge --compare: cell %s is in %s only\n", ECHO(c < 0 ? ca[i].id : cb[j].id),
                    ECHO(c < 0 ? a : b));
            goto out;
        }
        if (!store_cells_same(&ca[i], &cb[j], why, sizeof why)) {
            fprintf(stderr, "ctxbench: merge --compare: cell %s differs: %s\n", ECHO(ca[i].id), why);
            goto out;
        }
        i++;
        j++;
    }
    fprintf(stderr, "merge --compare: the same %d cells in %s and %s\n", na, ECHO(a), ECHO(b));
    rc = 0;
out:
    store_cells_free(ca, na);
    store_cells_free(cb, nb);
    return rc;
}

int cmd_merge(int argc, char **argv) {
    static const struct option longopts[] = {{"expect", required_argument, 0, 2001},
                                             {"compare", no_argument, 0, 2002},
                                             {"help", no_argument, 0, 'h'},
                                             {0}};
    const char *expect = NULL;
    int opt;
    bool compare = false;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 2001) expect = optarg;
        else if (opt == 2002) compare = true;
        else if (opt == 'h') { fputs(help, stdout); return 0; }
        else { fputs(help, stderr); return 2; }
    }
    if (compare) {
        if (argc - optind != 2 || expect) {
            fprintf(stderr, "ctxbench: merge --compare takes two results files and nothing else\n");
            return 2;
        }
        return compare_files(argv[optind], argv[optind + 1]);
    }
    if (argc - optind < 2) {
        fprintf(stderr, "ctxbench: merge needs OUT.h5 and at least one IN.h5 (see ctxbench merge --help)\n");
        return 2;
    }
    const char *out = argv[optind];
    char **inputs = argv + optind + 1;
    int n_inputs = argc - optind - 1;
    char err[1024];
    int rc = 1, n_files = n_inputs + 1, n_all = 0, n_merged = 0, n_expect = 0;
    struct store_cell **files = calloc((size_t)n_files, sizeof *files);
    int *counts = calloc((size_t)n_files, sizeof *counts);
    struct source_cell *all = NULL;
    struct store_cell *merged = NULL;
    char **expected = NULL;
    struct store *st = NULL;
    if (!files || !counts) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (expect && read_expect(expect, &expected, &n_expect, err, sizeof err) != 0) goto fail;
    /* The lock first: no sweep may add cells to OUT while its cells are read and replaced. */
    if (!(st = store_open(out, err, sizeof err))) goto fail;
    if (store_count(st, CELL_DONE) + store_count(st, CELL_FAILED) + store_count(st, CELL_SKIPPED) > 0 &&
        store_read(out, true, &files[0], &counts[0], err, sizeof err) != 0)
        goto fail;
    for (int i = 0; i < n_inputs; i++) {
        if (store_read(inputs[i], true, &files[i + 1], &counts[i + 1], err, sizeof err) != 0) goto fail;
        n_all += counts[i + 1];
    }
    n_all += counts[0];
    all = calloc((size_t)(n_all ? n_all : 1), sizeof *all);
    merged = calloc((size_t)(n_all ? n_all : 1), sizeof *merged);
    if (!all || !merged) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    for (int f = 0, k = 0; f < n_files; f++)
        for (int i = 0; i < counts[f]; i++) all[k++] = (struct source_cell){&files[f][i], f};
    qsort(all, (size_t)n_all, sizeof *all, cmp_source);
    /* One cell per id: a done result (the same in every file that has one), else the latest attempt. */
    int from_out = 0;
    for (int i = 0; i < n_all;) {
        int j = i;
        while (j < n_all && strcmp(all[j].c->id, all[i].c->id) == 0) j++;
        int pick = -1;
        for (int k = i; k < j; k++) {
            if (all[k].c->status != CELL_DONE) continue;
            char why[512];
            if (pick < 0) pick = k;
            else if (!store_cells_same(all[pick].c, all[k].c, why, sizeof why)) {
                snprintf(err, sizeof err, "merge: cell %s has two different results (%s in %s and %s): not merging",
                         ECHO(all[i].c->id), why, ECHO(all[pick].file ? inputs[all[pick].file - 1] : out),
                         ECHO(all[k].file ? inputs[all[k].file - 1] : out));
                goto fail;
            }
        }
        if (pick < 0) pick = j - 1;
        from_out += all[pick].file == 0;
        merged[n_merged++] = *all[pick].c;   /* shallow: the files' cells own the memory */
        i = j;
    }
    /* the expected cells, before anything is written: the report comes with the file */
    char missing[1024] = "", failed[1024] = "";
    int n_missing = 0, n_failed = 0;
    for (int i = 0; i < n_expect; i++) {
        const struct store_cell *c = bsearch(expected[i], merged, (size_t)n_merged, sizeof *merged, cmp_id_key);
        if (!c) list_id(missing, sizeof missing, &n_missing, expected[i]);
        else if (c->status == CELL_FAILED) list_id(failed, sizeof failed, &n_failed, expected[i]);
    }
    if (store_replace(st, merged, n_merged, err, sizeof err) != 0) goto fail;
    fprintf(stderr, "merge: %d cells (%d already in %s, %d added) from %d file%s -> %s\n", n_merged, from_out,
            ECHO(out), n_merged - from_out, n_inputs, n_inputs == 1 ? "" : "s", ECHO(out));
    rc = 0;
    if (n_missing + n_failed > 0) {
        fprintf(stderr, "ctxbench: merge: %s is partial: %d of the %d expected cells missing%s%s%s, %d failed%s%s%s\n",
                ECHO(out), n_missing, n_expect, n_missing ? " (" : "", missing,
                n_missing > 8 ? " and more)" : n_missing ? ")" : "", n_failed, n_failed ? " (" : "", failed,
                n_failed > 8 ? " and more)" : n_failed ? ")" : "");
        rc = 1;
    }
    goto done;
fail:
    fprintf(stderr, "ctxbench: %s\n", err);
done:
    store_close(st);
    for (int f = 0; files && f < n_files; f++) store_cells_free(files[f], counts[f]);
    for (int i = 0; i < n_expect; i++) free(expected[i]);
    free(expected);
    free(files);
    free(counts);
    free(all);
    free(merged);
    return rc;
}
