/* The HDF5 results store, CSV export and report, and the sweep's input checks.
 * Cells written with the store API are read back with the raw HDF5 API here (not with
 * store_read), the CSV is parsed back with libcsv, and bad inputs must give one clear
 * line and a non-zero status. */
#include <criterion/criterion.h>
#include <csv.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "result.h"
#include "store.h"
#include "store_json.h"
#include "task.h"
#include "sweep.h"
#include "testutil.h"
#include "testutil_sys.h"

/* ------------------------------------------------------------------ helpers */

/* A string attribute read with the raw API (variable or fixed length). */
static char *raw_attr_str(hid_t loc, const char *name) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "attribute %s", name);
    hid_t t = H5Aget_type(a);
    cr_assert_eq(H5Tget_class(t), H5T_STRING, "attribute %s is a string", name);
    cr_assert_gt(H5Tis_variable_str(t), 0, "attribute %s is a variable-length string", name);
    char *v = NULL;
    cr_assert_geq(H5Aread(a, t, &v), 0);
    char *copy = strdup(v);
    H5free_memory(v);
    H5Tclose(t);
    H5Aclose(a);
    return copy;
}

static double raw_attr_f64(hid_t loc, const char *name) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "attribute %s", name);
    double v = NAN;
    cr_assert_geq(H5Aread(a, H5T_NATIVE_DOUBLE, &v), 0);
    H5Aclose(a);
    return v;
}

static long long raw_attr_i64(hid_t loc, const char *name) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "attribute %s", name);
    hid_t t = H5Aget_type(a);
    cr_assert_eq(H5Tget_class(t), H5T_INTEGER, "attribute %s is an integer", name);
    H5Tclose(t);
    long long v = 0;
    cr_assert_geq(H5Aread(a, H5T_NATIVE_LLONG, &v), 0);
    H5Aclose(a);
    return v;
}

/* Three cells: a done one with every kind of item, a skipped one, a failed one. */
static const double nll[6] = {0.5, -1.25, 3e-300, 1e300, -0.0, 7.0 / 3.0};
static const double curve[5] = {1, 2, 3, 4, 5.5};

static void write_three(const char *path) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, "ppl", 3.14159265358979), 0);
    cr_assert_eq(result_array(&r, "nll", nll, 3, 2), 0);
    cr_assert_eq(result_array(&r, "curve", curve, 5, 1), 0);
    cr_assert_eq(result_text(&r, "gen", "ok \xff\xc3 \xe2\x82\xac, \"quoted\""), 0);
    cr_assert_eq(result_scalar(&r, "tokens", 4096), 0);
    struct store_attr at[] = {
        {.name = "key", .kind = STORE_STR, .s = "k-done"},
        {.name = "method", .kind = STORE_STR, .s = "yarn:factor=4"},
        {.name = "task", .kind = STORE_STR, .s = "ppl"},
        {.name = "task_settings", .kind = STORE_STR, .s = "a=1,note=\"x, y\""},
        {.name = "length", .kind = STORE_I64, .i = 2048},
        {.name = "wall_s", .kind = STORE_F64, .f = 1.5},
        {.name = "headline", .kind = STORE_STR, .s = "ppl"},
    };
    cr_assert_eq(store_put(st, "ppl.yarn:factor=4.L2048.aaaa", CELL_DONE, at, 7, &r, err, sizeof err), 0, "%s", err);
    at[0].s = "k-skip";
    at[4].i = 4096;
    struct store_attr skip_at[8];
    memcpy(skip_at, at, sizeof at);
    skip_at[7] = (struct store_attr){.name = "error", .kind = STORE_STR, .s = "needs 9 MiB, 1 MiB available"};
    cr_assert_eq(store_put(st, "ppl.yarn:factor=4.L4096.bbbb", CELL_SKIPPED, skip_at, 8, NULL, err, sizeof err), 0);
    /* a failed cell first written as failed, then replaced by a later attempt */
    skip_at[0].s = "k-fail";
    skip_at[1].s = "pi";
    skip_at[4].i = 2048;
    skip_at[7].s = "first attempt";
    cr_assert_eq(store_put(st, "ppl.pi.L2048.cccc", CELL_FAILED, skip_at, 8, NULL, err, sizeof err), 0);
    skip_at[7].s = "pi: factor out of range";
    cr_assert_eq(store_put(st, "ppl.pi.L2048.cccc", CELL_FAILED, skip_at, 8, NULL, err, sizeof err), 0);
    cr_assert_eq(store_count(st, CELL_DONE), 1);
    cr_assert_eq(store_count(st, CELL_FAILED), 1);
    cr_assert_eq(store_cell_status(st, "ppl.pi.L2048.cccc"), CELL_FAILED);
    cr_assert_eq(store_cell_status(st, "nope"), CELL_ABSENT);
    store_close(st);
    result_free(&r);
}

/* ------------------------------------------------------------------ raw HDF5 */

Test(store, cells_read_back_with_raw_hdf5) {
    char dir[64], path[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    write_three(path);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    char *fmt = raw_attr_str(f, "format");
    cr_expect_str_eq(fmt, "ctxbench-results");
    free(fmt);
    cr_expect_eq(raw_attr_i64(f, "schema_version"), 1);

    hid_t g = H5Gopen2(f, "/cells/ppl.yarn:factor=4.L2048.aaaa", H5P_DEFAULT);
    cr_assert_geq(g, 0);
    char *s = raw_attr_str(g, "status");
    cr_expect_str_eq(s, "done");
    free(s);
    s = raw_attr_str(g, "task_settings");
    cr_expect_str_eq(s, "a=1,note=\"x, y\"");
    free(s);
    cr_expect_eq(raw_attr_i64(g, "length"), 2048);
    cr_expect_eq(raw_attr_f64(g, "wall_s"), 1.5);

    hid_t r = H5Gopen2(g, "results", H5P_DEFAULT);
    cr_assert_geq(r, 0);
    cr_expect_eq(raw_attr_f64(r, "ppl"), 3.14159265358979);
    cr_expect_eq(raw_attr_f64(r, "tokens"), 4096);
    s = raw_attr_str(r, "gen");   /* broken UTF-8 bytes become U+FFFD, valid ones stay */
    cr_expect_str_eq(s, "ok \xef\xbf\xbd\xef\xbf\xbd \xe2\x82\xac, \"quoted\"");
    free(s);

    hid_t d = H5Dopen2(r, "nll", H5P_DEFAULT);
    cr_assert_geq(d, 0);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    cr_expect(dims[0] == 3 && dims[1] == 2);
    double back[6];
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back), 0);
    cr_expect_eq(memcmp(back, nll, sizeof back), 0, "the 2-D array is stored bit for bit");
    H5Sclose(sp);
    H5Dclose(d);

    d = H5Dopen2(r, "curve", H5P_DEFAULT);
    sp = H5Dget_space(d);
    cr_expect_eq(H5Sget_simple_extent_ndims(sp), 1, "a one-column array is 1-D");
    double c[5];
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c), 0);
    cr_expect_eq(memcmp(c, curve, sizeof c), 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Gclose(r);
    H5Gclose(g);

    g = H5Gopen2(f, "/cells/ppl.pi.L2048.cccc", H5P_DEFAULT);
    cr_assert_geq(g, 0);
    s = raw_attr_str(g, "status");
    cr_expect_str_eq(s, "failed");
    free(s);
    s = raw_attr_str(g, "error");
    cr_expect_str_eq(s, "pi: factor out of range", "a retried cell holds its latest attempt");
    free(s);
    cr_expect_eq(H5Lexists(g, "results", H5P_DEFAULT), 0, "no results group for a failed cell");
    H5Gclose(g);
    hsize_t n_cells = 0;
    hid_t cells = H5Gopen2(f, "/cells", H5P_DEFAULT);
    H5G_info_t gi;
    cr_assert_geq(H5Gget_info(cells, &gi), 0);
    n_cells = gi.nlinks;
    cr_expect_eq(n_cells, 3);
    H5Gclose(cells);
    H5Fclose(f);

    /* and h5dump, which knows nothing of ctxbench, reads it */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "h5dump -A '%s' > /dev/null 2>&1", path);
    cr_expect_eq(system(cmd), 0, "h5dump reads the file");
    test_rm_rf(dir);
}

Test(store, store_read_returns_what_was_written) {
    char dir[64], path[128], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    write_three(path);
    struct store_cell *cells;
    int n;
    cr_assert_eq(store_read(path, true, &cells, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    /* sorted by id */
    cr_expect_str_eq(cells[0].id, "ppl.pi.L2048.cccc");
    cr_expect_str_eq(cells[2].id, "ppl.yarn:factor=4.L4096.bbbb");
    const struct store_cell *c = &cells[1];
    cr_expect_eq(c->status, CELL_DONE);
    cr_expect_eq(cells[2].status, CELL_SKIPPED);
    cr_expect_str_eq(c->attrs[0].name, "status", "attributes come back in creation order");
    char buf[64];
    cr_expect_str_eq(store_attr_text(c, "length", buf, sizeof buf), "2048");
    const struct result_item *it = result_find(&c->res, "ppl");
    cr_assert_not_null(it);
    cr_expect_eq(it->value, 3.14159265358979);
    it = result_find(&c->res, "nll");
    cr_assert_not_null(it);
    cr_expect(it->kind == RESULT_ARRAY && it->rows == 3 && it->cols == 2);
    cr_expect_eq(memcmp(it->data, nll, sizeof nll), 0);
    cr_expect_eq(c->res.items[0].kind, RESULT_SCALAR, "items keep their order: scalars and texts first");
    cr_expect_str_eq(c->res.items[0].name, "ppl");
    store_cells_free(cells, n);
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ CSV */

struct csv_rows {
    char *f[200][20];
    int n_fields[200];
    int n;
};

static void on_field(void *s, size_t len, void *arg) {
    struct csv_rows *r = arg;
    if (r->n < 200 && r->n_fields[r->n] < 20) r->f[r->n][r->n_fields[r->n]++] = strndup(s ? s : "", len);
}
static void on_row(int c, void *arg) {
    (void)c;
    struct csv_rows *r = arg;
    if (r->n < 200) r->n++;
}

static void parse_csv(const char *path, struct csv_rows *rows) {
    memset(rows, 0, sizeof *rows);
    size_t len;
    char err[256];
    char *text = input_read_file(path, &len, err, sizeof err);
    cr_assert_not_null(text, "%s", err);
    struct csv_parser p;
    cr_assert_eq(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
    cr_assert_eq(csv_parse(&p, text, len, on_field, on_row, rows), len, "CSV parses: %s", csv_strerror(csv_error(&p)));
    cr_assert_eq(csv_fini(&p, on_field, on_row, rows), 0);
    csv_free(&p);
    free(text);
}

static void free_rows(struct csv_rows *r) {
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->n_fields[i]; j++) free(r->f[i][j]);
}

static int col(const struct csv_rows *r, const char *name) {
    for (int j = 0; j < r->n_fields[0]; j++)
        if (strcmp(r->f[0][j], name) == 0) return j;
    cr_assert_fail("no column %s", name);
    return -1;
}

Test(store, csv_long_round_trip) {
    char dir[64], path[128], csvp[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(csvp, sizeof csvp, "%s/r.csv", dir);
    write_three(path);
    char *argv[] = {"export", path, "-o", csvp, NULL};
    cr_assert_eq(cmd_export(4, argv), 0);
    struct csv_rows r;
    parse_csv(csvp, &r);
    /* header + 2 scalars of the done cell + 1 row each for the skipped and failed cells */
    cr_assert_eq(r.n, 5, "rows: %d", r.n);
    int cc = col(&r, "cell"), cm = col(&r, "metric"), cv = col(&r, "value"), cs = col(&r, "status"),
        ce = col(&r, "error"), ct = col(&r, "task_settings"), cl = col(&r, "length");
    for (int i = 1; i < r.n; i++) cr_expect_eq(r.n_fields[i], r.n_fields[0], "row %d has every column", i);
    int seen = 0;
    for (int i = 1; i < r.n; i++) {
        if (strcmp(r.f[i][cc], "ppl.yarn:factor=4.L2048.aaaa") == 0) {
            cr_expect_str_eq(r.f[i][cs], "done");
            cr_expect_str_eq(r.f[i][ct], "a=1,note=\"x, y\"", "quotes and commas survive");
            cr_expect_str_eq(r.f[i][cl], "2048");
            double want = strcmp(r.f[i][cm], "ppl") == 0 ? 3.14159265358979 : 4096;
            cr_expect(strcmp(r.f[i][cm], "ppl") == 0 || strcmp(r.f[i][cm], "tokens") == 0);
            cr_expect_eq(strtod(r.f[i][cv], NULL), want, "value %s exact", r.f[i][cv]);
            seen++;
        } else if (strcmp(r.f[i][cc], "ppl.pi.L2048.cccc") == 0) {
            cr_expect_str_eq(r.f[i][cs], "failed");
            cr_expect_str_eq(r.f[i][cm], "");
            cr_expect_str_eq(r.f[i][ce], "pi: factor out of range");
            seen++;
        } else {
            cr_expect_str_eq(r.f[i][cs], "skipped");
            cr_expect_str_eq(r.f[i][ce], "needs 9 MiB, 1 MiB available");
            seen++;
        }
    }
    cr_expect_eq(seen, 4);
    free_rows(&r);
    /* numbers are bare, texts quoted (results/README.md) */
    char *text = test_read_text(csvp);
    cr_expect_not_null(strstr(text, "\"done\""), "%s", text);
    cr_expect_not_null(strstr(text, ",2048,"), "length is written: %s", text);
    cr_expect_null(strstr(text, "\"2048\""), "length is a bare number: %s", text);
    cr_expect_null(strstr(text, "\"4096\""), "length is a bare number: %s", text);
    free(text);
    test_rm_rf(dir);
}

Test(store, csv_wide_round_trip) {
    char dir[64], path[128], csvp[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(csvp, sizeof csvp, "%s/r.csv", dir);
    write_three(path);
    char *argv[] = {"export", "--wide", path, "-o", csvp, NULL};
    cr_assert_eq(cmd_export(5, argv), 0);
    struct csv_rows r;
    parse_csv(csvp, &r);
    cr_assert_eq(r.n, 4, "header + one row per cell");
    int cc = col(&r, "cell"), cp = col(&r, "ppl"), ct = col(&r, "tokens"), cw = col(&r, "wall_s");
    for (int i = 1; i < r.n; i++) {
        bool done = strcmp(r.f[i][cc], "ppl.yarn:factor=4.L2048.aaaa") == 0;
        if (done) {
            cr_expect_eq(strtod(r.f[i][cp], NULL), 3.14159265358979);
            cr_expect_eq(strtod(r.f[i][ct], NULL), 4096);
        } else {
            cr_expect_str_eq(r.f[i][cp], "", "no value where the cell has none");
        }
        cr_expect_eq(strtod(r.f[i][cw], NULL), 1.5);
    }
    free_rows(&r);
    test_rm_rf(dir);
}

/* Runs fn's output into a file and returns it. */
static char *capture_stdout(int (*fn)(int, char **), int argc, char **argv, int *rc, const char *dir) {
    char out[160];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    dup2(fd, 1);
    close(fd);
    *rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    size_t len;
    char err[256];
    char *text = input_read_file(out, &len, err, sizeof err);
    cr_assert_not_null(text);
    return text;
}

Test(store, report_markdown_table) {
    char dir[64], path[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    write_three(path);
    char *argv[] = {"report", path, NULL};
    int rc;
    char *text = capture_stdout(cmd_report, 2, argv, &rc, dir);
    cr_assert_eq(rc, 0);
    cr_expect_not_null(strstr(text, "### ppl: ppl"), "%s", text);
    cr_expect_not_null(strstr(text, "| method | 2048 | 4096 |"), "%s", text);
    cr_expect_not_null(strstr(text, "| yarn:factor=4 | 3.142 | skip |"), "%s", text);
    cr_expect_not_null(strstr(text, "| pi | fail | |"), "%s", text);
    cr_expect_not_null(strstr(text, "- failed pi at 2048: pi: factor out of range"), "%s", text);
    free(text);
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ bad inputs */

Test(store, bad_files_give_clear_errors) {
    char dir[64], path[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    cr_expect_null(store_open("/nonexistent-dir/x.h5", err, sizeof err));
    cr_expect_not_null(strstr(err, "cannot write results to /nonexistent-dir/x.h5"), "%s", err);
    cr_expect_null(store_open(dir, err, sizeof err));
    cr_expect_not_null(strstr(err, "is a directory"), "%s", err);

    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    cr_expect_null(store_open(path, err, sizeof err), "a non-HDF5 file is not overwritten");
    cr_expect_not_null(strstr(err, "is not an HDF5 file"), "%s", err);
    struct store_cell *cells;
    int n;
    cr_expect_eq(store_read(path, false, &cells, &n, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "is not an HDF5 file"), "%s", err);

    snprintf(path, sizeof path, "%s/other.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    cr_expect_null(store_open(path, err, sizeof err));
    cr_expect_not_null(strstr(err, "not a ctxbench results file"), "%s", err);

    snprintf(path, sizeof path, "%s/missing.h5", dir);
    cr_expect_eq(store_read(path, false, &cells, &n, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "No such file"), "%s", err);

    /* one writer at a time */
    snprintf(path, sizeof path, "%s/busy.h5", dir);
    struct store *a = store_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_expect_null(store_open(path, err, sizeof err));
    cr_expect_not_null(strstr(err, "being written by another ctxbench process"), "%s", err);
    store_close(a);
    struct store *b = store_open(path, err, sizeof err);
    cr_expect_not_null(b, "the lock is released on close: %s", err);
    store_close(b);
    test_rm_rf(dir);
}

Test(store, unwritable_directory) {
    if (geteuid() == 0) {   /* root writes anywhere: use a path under a regular file instead */
        char dir[64], path[160], err[512];
        test_temp_dir(dir, sizeof dir, "store");
        snprintf(path, sizeof path, "%s/file", dir);
        FILE *f = fopen(path, "w");
        fclose(f);
        snprintf(path, sizeof path, "%s/file/x.h5", dir);
        cr_expect_null(store_open(path, err, sizeof err));
        cr_expect_not_null(strstr(err, "Not a directory"), "%s", err);
        test_rm_rf(dir);
        return;
    }
    char dir[64], path[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    chmod(dir, 0555);
    snprintf(path, sizeof path, "%s/x.h5", dir);
    cr_expect_null(store_open(path, err, sizeof err));
    cr_expect_not_null(strstr(err, "Permission denied"), "%s", err);
    chmod(dir, 0755);
    test_rm_rf(dir);
}

Test(store, lengths_parse) {
    int *v, n;
    char err[512];
    cr_assert_eq(sweep_parse_lengths("4k:128k", 512, &v, &n, err, sizeof err), 0, "%s", err);
    int want1[] = {4096, 8192, 16384, 32768, 65536, 131072};
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) cr_expect_eq(v[i], want1[i]);
    free(v);
    cr_assert_eq(sweep_parse_lengths("2k,512,1k,512", 512, &v, &n, err, sizeof err), 0, "%s", err);
    int want2[] = {512, 1024, 2048};
    cr_assert_eq(n, 3, "sorted, duplicates dropped");
    for (int i = 0; i < n; i++) cr_expect_eq(v[i], want2[i]);
    free(v);
    cr_assert_eq(sweep_parse_lengths("1x:32x", 512, &v, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) cr_expect_eq(v[i], 512 << i);
    free(v);
    cr_assert_eq(sweep_parse_lengths("1000:5000,0.5x", 2048, &v, &n, err, sizeof err), 0, "%s", err);
    int want3[] = {1000, 1024, 2000, 4000};
    cr_assert_eq(n, 4, "a range stops at the last doubling <= its end");
    for (int i = 0; i < n; i++) cr_expect_eq(v[i], want3[i]);
    free(v);
    const char *bad[] = {"", "4q", "k", "x", "0", "1", "-512", "1e3", "0x200", "4k:", ":4k", "8k:4k", "512,,1k",
                         "1.5", "32M", "4k:8k:16k", " 512"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        cr_expect_eq(sweep_parse_lengths(bad[i], 512, &v, &n, err, sizeof err), -1, "'%s' rejected", bad[i]);
        cr_expect(strstr(err, "length") != NULL, "'%s': message names lengths: %s", bad[i], err);
        cr_expect_null(strchr(err, '\n'));
    }
}

Test(store, settings_canonical_and_data_paths) {
    char out[256], err[512], path[512];
    cr_assert_eq(sweep_canonical_settings("windows=4,protocol=yarn,windows=2", out, sizeof out, err, sizeof err), 0,
                 "%s", err);
    cr_expect_str_eq(out, "protocol=yarn,windows=2", "sorted, the later value wins");
    cr_assert_eq(sweep_canonical_settings("", out, sizeof out, err, sizeof err), 0);
    cr_expect_str_eq(out, "");
    cr_expect_eq(sweep_canonical_settings("windows", out, sizeof out, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "windows"), "%s", err);
    cr_expect_eq(sweep_canonical_settings("a=1,,b=2", out, sizeof out, err, sizeof err), -1);

    setenv("CTXBENCH_SHARED", getenv("CTXBENCH_SHARED") ? getenv("CTXBENCH_SHARED") : "../shared", 1);
    cr_expect_eq(sweep_data_path("tinystories", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(sweep_data_path("no_such_dataset", path, sizeof path, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "dataset 'no_such_dataset' not found"), "%s", err);
}

/* ------------------------------------------------------------------ the command line */

/* Runs `ctxbench ARGS...` ($CTXBENCH_BIN, set by make test) with stderr into a file;
 * returns the exit status and the stderr text (malloc'd). */
static char *run_ctxbench(const char *const *args, const char *dir, int *status) {
    char errp[160];
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    pid_t pid = ctxbench_spawn(args, errp, true);
    int st;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return test_read_text(errp);
}

Test(store, sweep_command_rejects_bad_inputs) {
    char dir[64], out[128], model[512], bad_out[160];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(out, sizeof out, "%s/x.h5", dir);
    shared_path(model, sizeof model, "models/stories260K.gguf");
    snprintf(bad_out, sizeof bad_out, "%s/no/such/dir/x.h5", dir);
    struct {
        const char *args[16];
        int status;
        const char *says;
    } cases[] = {
        {{"sweep", "-m", model, "-o", out, "--methods", "nope", NULL}, 2, "unknown method 'nope'"},
        {{"sweep", "-m", model, "-o", out, "--methods", "yarn:factor=0", NULL}, 2, "factor"},
        {{"sweep", "-m", model, "-o", out, "--tasks", "ppl,nope", NULL}, 2, "unknown task 'nope' (tasks: "},
        {{"sweep", "-m", model, "-o", out, "--lengths", "4k:1k", NULL}, 2, "bad length range '4k:1k'"},
        {{"sweep", "-m", model, "-o", out, "--lengths", "12q", NULL}, 2, "bad length '12q'"},
        {{"sweep", "-m", model, "-o", out, "--tasks", "ppl", "--data", "no_such_data", NULL}, 2,
         "dataset 'no_such_data' not found"},
        {{"sweep", "-m", model, "-o", out, "--tasks", "ppl", "--task-opt", "ppl:bogus=1", NULL}, 2, "bogus"},
        {{"sweep", "-m", model, "-o", out, "--tasks", "ppl", "--task-opt", "nope:a=1", NULL}, 2,
         "--task-opt: unknown task 'nope'"},
        {{"sweep", "-m", model, "-o", bad_out, "--tasks", "ppl", NULL}, 1, "cannot write results to"},
        {{"sweep", "-m", "/no/model.gguf", "-o", out, "--tasks", "ppl", NULL}, 1, "/no/model.gguf"},
        {{"sweep", "-m", model, "--tasks", "ppl", NULL}, 2, "needs -m MODEL and -o OUT.h5"},
        {{"export", "/no/such.h5", NULL}, 1, "/no/such.h5: No such file or directory"},
        {{"report", model, NULL}, 1, "is not an HDF5 file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        char *text = run_ctxbench(cases[i].args, dir, &status);
        cr_expect_eq(status, cases[i].status, "case %zu: exit %d, stderr: %s", i, status, text);
        cr_expect_not_null(strstr(text, cases[i].says), "case %zu: stderr says '%s': %s", i, cases[i].says, text);
        char *nl = strchr(text, '\n');
        cr_expect(nl && nl[1] == 0, "case %zu: one line: %s", i, text);
        free(text);
    }
    cr_expect_neq(access(out, F_OK), 0, "no results file is created by a rejected sweep");
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ never losing results */

/* Runs ctxbench ARGS with stdout appended to `out_path` (a shell's `>> out_path`) and
 * stderr into DIR/stderr.txt; returns the exit status and the stderr text. */
static char *run_ctxbench_stdout_to(const char *const *args, const char *out_path, const char *dir, int *status) {
    char errp[160];
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_APPEND);
        if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
        close(fd);
        pid_t inner = ctxbench_spawn(args, errp, false);
        int st;
        waitpid(inner, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126);
    }
    *status = test_wait_status(pid);
    return test_read_text(errp);
}

static bool same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read_bytes(a, &na), *y = test_read_bytes(b, &nb);
    bool same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void copy_bytes(const char *from, const char *to) {
    size_t n;
    char *x = test_read_bytes(from, &n);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(x, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    free(x);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

Test(store, output_that_is_the_results_file_is_refused) {
    char dir[64], path[128], keep[128], slink[128], hlink[128], dotted[192], sub[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(keep, sizeof keep, "%s/keep.bin", dir);
    snprintf(slink, sizeof slink, "%s/link.h5", dir);
    snprintf(hlink, sizeof hlink, "%s/hard.h5", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(dotted, sizeof dotted, "%s/sub/../r.h5", dir);
    write_three(path);
    copy_bytes(path, keep);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(symlink("r.h5", slink), 0);
    cr_assert_eq(link(path, hlink), 0);
    /* the same file by its name, another spelling, a symbolic link, a hard link; in both directions */
    struct {
        const char *args[8];
    } cases[] = {
        {{"export", path, "-o", path, NULL}},
        {{"export", path, "--wide", "-o", dotted, NULL}},
        {{"export", path, "-o", slink, NULL}},
        {{"export", slink, "-o", path, NULL}},
        {{"export", path, "-o", hlink, NULL}},
        {{"plot", path, "-o", path, "--data-only", NULL}},
        {{"plot", hlink, "-o", slink, "--data-only", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        char *text = run_ctxbench(cases[i].args, dir, &status);
        cr_expect_eq(status, 1, "case %zu: exit %d: %s", i, status, text);
        cr_expect_not_null(strstr(text, "is the results file"), "case %zu: %s", i, text);
        char *nl = strchr(text, '\n');
        cr_expect(nl && nl[1] == 0, "case %zu: one line: %s", i, text);
        free(text);
        cr_assert(same_bytes(path, keep), "case %zu: the results file is untouched", i);
    }
    /* standard output appended to the results file (`>> r.h5`) */
    const char *const to_stdout[][4] = {{"export", path, NULL}, {"report", path, NULL}};
    for (size_t i = 0; i < 2; i++) {
        int status;
        char *text = run_ctxbench_stdout_to(to_stdout[i], slink, dir, &status);
        cr_expect_eq(status, 1, "%s to the results file: exit %d: %s", to_stdout[i][0], status, text);
        cr_expect_not_null(strstr(text, "standard output is the results file"), "%s", text);
        free(text);
        cr_assert(same_bytes(path, keep), "%s: the results file is untouched", to_stdout[i][0]);
    }
    struct stat sb;
    cr_expect(lstat(slink, &sb) == 0 && S_ISLNK(sb.st_mode), "the link is still a link");
    test_rm_rf(dir);
}

/* One cell with a given key, written through `path`. */
static int put_one(const char *path, const char *id, char *err, size_t errlen) {
    struct store *st = store_open(path, err, errlen);
    if (!st) return -1;
    struct store_attr at[] = {{.name = "key", .kind = STORE_STR, .s = (char *)id}};
    int rc = store_put(st, id, CELL_FAILED, at, 1, NULL, err, errlen);
    store_close(st);
    return rc;
}

static int cell_count(const char *path) {
    struct store_cell *cells;
    int n;
    char err[512];
    cr_assert_eq(store_read(path, false, &cells, &n, err, sizeof err), 0, "%s", err);
    store_cells_free(cells, n);
    return n;
}

Test(store, results_through_a_symbolic_link) {
    char dir[64], real_dir[96], real[160], link_path[128], dangling[128], target[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(real_dir, sizeof real_dir, "%s/data", dir);
    cr_assert_eq(mkdir(real_dir, 0755), 0);
    snprintf(real, sizeof real, "%s/r.h5", real_dir);
    snprintf(link_path, sizeof link_path, "%s/r.h5", dir);
    write_three(real);
    cr_assert_eq(symlink("data/r.h5", link_path), 0);

    /* a writer on the target and one through the link contend for one lock */
    struct store *a = store_open(real, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_expect_null(store_open(link_path, err, sizeof err), "a second writer through the link is refused");
    cr_expect_not_null(strstr(err, "being written by another ctxbench process"), "%s", err);
    store_close(a);
    a = store_open(link_path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_expect_null(store_open(real, err, sizeof err), "a second writer on the target is refused");
    store_close(a);

    /* a cell written through the link lands in the target; the link stays a link */
    cr_assert_eq(put_one(link_path, "via.link", err, sizeof err), 0, "%s", err);
    struct stat sb;
    cr_expect(lstat(link_path, &sb) == 0 && S_ISLNK(sb.st_mode), "the link is still a symbolic link");
    cr_expect(lstat(real, &sb) == 0 && S_ISREG(sb.st_mode));
    cr_expect_eq(cell_count(real), 4, "the target has the three cells and the new one");
    cr_expect_eq(test_count_tmp(dir) + test_count_tmp(real_dir), 0);

    /* a link to a file not there yet: the file is created where the link points */
    snprintf(dangling, sizeof dangling, "%s/new.h5", dir);
    snprintf(target, sizeof target, "%s/fresh.h5", real_dir);
    cr_assert_eq(symlink("data/fresh.h5", dangling), 0);
    cr_assert_eq(put_one(dangling, "first", err, sizeof err), 0, "%s", err);
    cr_expect(lstat(dangling, &sb) == 0 && S_ISLNK(sb.st_mode), "the dangling link is still a link");
    cr_expect(lstat(target, &sb) == 0 && S_ISREG(sb.st_mode), "the file is created at the link's target");
    cr_expect_eq(cell_count(target), 1);

    /* export through links: the CSV replaces the link's target, the link stays */
    char csv_link[128], csv_real[160];
    snprintf(csv_link, sizeof csv_link, "%s/out.csv", dir);
    snprintf(csv_real, sizeof csv_real, "%s/out.csv", real_dir);
    write_text(csv_real, "previous\n");
    cr_assert_eq(symlink("data/out.csv", csv_link), 0);
    char *argv[] = {"export", link_path, "-o", csv_link, NULL};
    cr_assert_eq(cmd_export(4, argv), 0);
    cr_expect(lstat(csv_link, &sb) == 0 && S_ISLNK(sb.st_mode), "the CSV link is still a link");
    char *text = test_read_text(csv_real);
    cr_expect_not_null(strstr(text, "via.link"), "%s", text);
    free(text);
    test_rm_rf(dir);
}

/* Sets the root attribute schema_version of a results file: an integer, a string, or none. */
static void set_schema(const char *path, const char *kind, long long v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    if (H5Aexists(f, "schema_version") > 0) cr_assert_geq(H5Adelete(f, "schema_version"), 0);
    hid_t space = H5Screate(H5S_SCALAR);
    if (strcmp(kind, "int") == 0) {
        hid_t a = H5Acreate2(f, "schema_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert_geq(H5Awrite(a, H5T_NATIVE_LLONG, &v), 0);
        H5Aclose(a);
    } else if (strcmp(kind, "str") == 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 2);
        hid_t a = H5Acreate2(f, "schema_version", t, space, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert_geq(H5Awrite(a, t, "1"), 0);
        H5Aclose(a);
        H5Tclose(t);
    }
    H5Sclose(space);
    cr_assert_geq(H5Fclose(f), 0);
}

Test(store, other_schema_versions_are_refused) {
    char dir[64], path[128], plots[128], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(plots, sizeof plots, "%s/plots", dir);
    write_three(path);
    struct {
        const char *kind;
        long long v;
        const char *says;
    } versions[] = {
        {"int", 2, "has results schema version 2; this ctxbench reads version 1 only (use the newer ctxbench"},
        {"int", 0, "has results schema version 0; this ctxbench reads version 1 only"},
        {"str", 0, "has no readable schema_version"},
        {"none", 0, "has no readable schema_version"},
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        set_schema(path, versions[i].kind, versions[i].v);
        struct store_cell *cells;
        int n;
        cr_expect_eq(store_read(path, false, &cells, &n, err, sizeof err), -1, "case %zu: readers refuse it", i);
        cr_expect_not_null(strstr(err, versions[i].says), "case %zu: %s", i, err);
        cr_expect_null(store_open(path, err, sizeof err), "case %zu: a sweep does not resume into it", i);
        cr_expect_not_null(strstr(err, versions[i].says), "case %zu: %s", i, err);
        const char *const cmds[][8] = {{"export", path, NULL}, {"report", path, NULL},
                                       {"plot", path, "-o", plots, "--data-only", NULL}};
        for (int c = 0; c < 3; c++) {
            int status;
            char *text = run_ctxbench(cmds[c], dir, &status);
            cr_expect_eq(status, 1, "case %zu %s: exit %d: %s", i, cmds[c][0], status, text);
            cr_expect_not_null(strstr(text, versions[i].says), "case %zu %s: %s", i, cmds[c][0], text);
            char *nl = strchr(text, '\n');
            cr_expect(nl && nl[1] == 0, "case %zu %s: one line: %s", i, cmds[c][0], text);
            free(text);
        }
    }
    set_schema(path, "int", 1);
    cr_expect_eq(cell_count(path), 3, "version 1 reads again");
    test_rm_rf(dir);
}

Test(store, mode_is_kept_and_read_only_files_are_not_written) {
    char dir[64], path[128], csv[128], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    umask(022);
    write_three(path);
    struct stat sb;
    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_eq(put_one(path, "more", err, sizeof err), 0, "%s", err);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 07777, 0640, "mode %04o kept across the copy and rename", (unsigned)(sb.st_mode & 07777));
    cr_assert_eq(chmod(path, 0604), 0);
    cr_assert_eq(put_one(path, "more2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 07777, 0604, "mode %04o kept", (unsigned)(sb.st_mode & 07777));

    /* read-only: not written, even by root, and the file stays as it was */
    cr_assert_eq(chmod(path, 0440), 0);
    cr_expect_null(store_open(path, err, sizeof err));
    cr_expect_not_null(strstr(err, "is read-only (mode 0440)"), "%s", err);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 07777, 0440);
    cr_expect_eq(cell_count(path), 5, "still readable");

    /* export keeps the mode of the CSV it replaces and does not replace a read-only one */
    write_text(csv, "previous\n");
    cr_assert_eq(chmod(csv, 0600), 0);
    char *argv[] = {"export", path, "-o", csv, NULL};
    cr_assert_eq(cmd_export(4, argv), 0);
    cr_assert_eq(stat(csv, &sb), 0);
    cr_expect_eq(sb.st_mode & 07777, 0600, "CSV mode %04o kept", (unsigned)(sb.st_mode & 07777));
    write_text(csv, "previous\n");
    cr_assert_eq(chmod(csv, 0444), 0);
    const char *const args[] = {"export", path, "-o", csv, NULL};
    int status;
    char *text = run_ctxbench(args, dir, &status);
    cr_expect_eq(status, 1, "%s", text);
    cr_expect_not_null(strstr(text, "read-only"), "%s", text);
    free(text);
    text = test_read_text(csv);
    cr_expect_str_eq(text, "previous\n");
    free(text);
    test_rm_rf(dir);
}

Test(store, failed_export_keeps_the_previous_csv) {
    char dir[64], path[128], csv[128], devfull[160];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    write_three(path);
    write_text(csv, "previous\n");
    /* ulimit -f: the CSV (about 700 bytes) does not fit in 300; stderr does */
    char errp[160];
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    const char *const args[] = {"export", path, "-o", csv, NULL};
    int status = test_wait_status(ctxbench_spawn_limited(args, errp, true, 300));
    char *text = test_read_text(errp);
    cr_expect_eq(status, 1, "a write past the size limit is an error, not SIGXFSZ (status %d): %s", status, text);
    cr_expect_not_null(strstr(text, "File too large"), "%s", text);
    free(text);
    text = test_read_text(csv);
    cr_expect_str_eq(text, "previous\n", "the previous CSV is intact");
    free(text);
    cr_expect_eq(test_count_tmp(dir), 0, "no temporary file left");
    /* a full device (written in place: there is nothing to replace) */
    if (access("/dev/full", W_OK) == 0) {
        snprintf(devfull, sizeof devfull, "/dev/full");
        const char *const full[] = {"export", path, "-o", devfull, NULL};
        int st;
        text = run_ctxbench(full, dir, &st);
        cr_expect_eq(st, 1, "%s", text);
        cr_expect_not_null(strstr(text, "No space left on device"), "%s", text);
        free(text);
    }
    test_rm_rf(dir);
}

/* `export -o -` writes to standard output, as `-` means for most tools: it used to create
 * a file named "-" in the working directory. */
Test(store, export_dash_is_standard_output) {
    char dir[64], path[128], cmd[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    write_three(path);
    char *bin = realpath(ctxbench_bin(), NULL);
    cr_assert_not_null(bin);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export r.h5 -o - > out.csv", dir, bin);
    free(bin);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/-", dir);
    cr_assert_neq(access(cmd, F_OK), 0, "a file named '-' was written");
    snprintf(cmd, sizeof cmd, "%s/out.csv", dir);
    char *text = test_read_text(cmd);
    cr_assert(strncmp(text, "\"cell\",", 7) == 0 && strstr(text, "ppl.yarn:factor=4.L2048.aaaa"), "%s", text);
    free(text);
    test_rm_rf(dir);
}

/* ---- i13-results: export's provenance columns and row order; report's decimals and filters ---- */

/* One done cell with the attributes a sweep writes that export and report read. */
static void put_cell(struct store *st, const char *id, const char *method, const char *task, long long length,
                     double factor, const char *metric, double value, const char *metric2, double value2) {
    char err[512];
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, metric, value), 0);
    if (metric2) cr_assert_eq(result_scalar(&r, metric2, value2), 0);
    struct store_attr at[] = {
        {.name = "key", .kind = STORE_STR, .s = (char *)id},
        {.name = "method", .kind = STORE_STR, .s = (char *)method},
        {.name = "task", .kind = STORE_STR, .s = (char *)task},
        {.name = "length", .kind = STORE_I64, .i = length},
        {.name = "headline", .kind = STORE_STR, .s = (char *)metric},
        {.name = "git_rev", .kind = STORE_STR, .s = "0123456789ab-dirty"},
        {.name = "method.factor", .kind = STORE_F64, .f = factor},
        {.name = "method_note", .kind = STORE_STR, .s = "factor derived"},
        {.name = "method.beta_fast", .kind = STORE_F64, .f = 32},
        {.name = "peak_rss_mib", .kind = STORE_F64, .f = 12.5},
    };
    cr_assert_eq(store_put(st, id, CELL_DONE, at, 10, &r, err, sizeof err), 0, "%s", err);
    result_free(&r);
}

/* Cells whose id order, and whose lengths as text, differ from the order export promises. */
static void write_grid(const char *path) {
    char err[512];
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    put_cell(st, "a", "yarn", "ppl", 16384, 32, "ppl", 12.3456, NULL, 0);
    put_cell(st, "b", "yarn", "ppl", 1536, 3, "ppl", 3.14159, NULL, 0);
    put_cell(st, "c", "abf", "ppl", 1536, 0.1, "ppl", 1234.5, NULL, 0);
    put_cell(st, "d", "yarn", "passkey", 2048, 4, "accuracy", 0.5, "key_nll", 0.25);
    put_cell(st, "e", "abf", "passkey", 512, 1, "accuracy", 1, "key_nll", 0.125);
    store_close(st);
}

Test(store, export_rows_sorted_with_method_params_memory_and_revision) {
    char dir[64], path[128], csvp[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(csvp, sizeof csvp, "%s/r.csv", dir);
    write_grid(path);
    char *argv[] = {"export", path, "-o", csvp, NULL};
    cr_assert_eq(cmd_export(4, argv), 0);
    struct csv_rows r;
    parse_csv(csvp, &r);
    /* method, task, then length as a number: 1536 before 16384 */
    const char *const want_cells[] = {"e", "e", "c", "d", "d", "b", "a"};
    cr_assert_eq(r.n, 8, "rows: %d", r.n);
    int cc = col(&r, "cell"), cp = col(&r, "method_params"), cm = col(&r, "peak_rss_mib"), cg = col(&r, "git_rev");
    for (int i = 1; i < r.n; i++) cr_expect_str_eq(r.f[i][cc], want_cells[i - 1], "row %d", i);
    cr_expect_str_eq(r.f[6][cp], "factor=3,beta_fast=32", "the method's parameters as used");
    cr_expect_str_eq(r.f[3][cp], "factor=0.1,beta_fast=32", "shortest exact form");
    cr_expect_str_eq(r.f[1][cm], "12.5");
    cr_expect_str_eq(r.f[1][cg], "0123456789ab-dirty");
    free_rows(&r);

    char *wargv[] = {"export", "--wide", path, "-o", csvp, NULL};
    cr_assert_eq(cmd_export(5, wargv), 0);
    parse_csv(csvp, &r);
    const char *const want_wide[] = {"e", "c", "d", "b", "a"};
    cr_assert_eq(r.n, 6, "rows: %d", r.n);
    cc = col(&r, "cell"), cp = col(&r, "method_params"), cg = col(&r, "git_rev");
    for (int i = 1; i < r.n; i++) cr_expect_str_eq(r.f[i][cc], want_wide[i - 1], "wide row %d", i);
    cr_expect_str_eq(r.f[5][cp], "factor=32,beta_fast=32");
    cr_expect_str_eq(r.f[5][cg], "0123456789ab-dirty");
    free_rows(&r);
    test_rm_rf(dir);
}

Test(store, report_columns_have_one_number_of_decimals_and_filters) {
    char dir[64], path[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    write_grid(path);
    int rc;
    char *argv[] = {"report", path, NULL};
    char *text = capture_stdout(cmd_report, 2, argv, &rc, dir);
    cr_assert_eq(rc, 0);
    /* column 1536 holds 3.14159 and 1234.5: both with 3 decimals, not 3.142 beside 1234 */
    cr_expect_not_null(strstr(text, "| yarn | 3.142 | 12.35 |"), "%s", text);
    cr_expect_not_null(strstr(text, "| abf | 1234.500 | |"), "%s", text);
    cr_expect_not_null(strstr(text, "| abf | 1.000 | |"), "%s", text);
    cr_expect_not_null(strstr(text, "| yarn | | 0.5000 |"), "%s", text);
    free(text);

    char *targv[] = {"report", "--task", "passkey", path, NULL};
    text = capture_stdout(cmd_report, 4, targv, &rc, dir);
    cr_assert_eq(rc, 0);
    cr_expect_not_null(strstr(text, "### passkey: accuracy"), "%s", text);
    cr_expect_null(strstr(text, "### ppl"), "%s", text);
    free(text);

    char *margv[] = {"report", "--metric", "key_nll", path, NULL};
    text = capture_stdout(cmd_report, 4, margv, &rc, dir);
    cr_assert_eq(rc, 0);
    cr_expect_not_null(strstr(text, "### passkey: key_nll"), "%s", text);
    cr_expect_not_null(strstr(text, "| abf | 0.1250 | |"), "%s", text);
    cr_expect_null(strstr(text, "### ppl"), "only tables that have the metric: %s", text);
    free(text);

    const char *const bad[][6] = {{"report", "--metric", "nosuch", path, NULL}, {"report", "--task", "nosuch", path, NULL}};
    const char *const why[] = {"has the metric nosuch", "holds no cells of task nosuch"};
    for (int k = 0; k < 2; k++) {
        int st;
        text = run_ctxbench(bad[k], dir, &st);
        cr_expect_eq(st, 1, "%s", text);
        cr_expect_not_null(strstr(text, why[k]), "%s", text);
        free(text);
    }
    test_rm_rf(dir);
}

/* Per-sample records go through the store and come out of the JSON as they went in: a
 * backslash and a line break inside a generated text survive the one-line-per-sample
 * texts, bytes that are not UTF-8 become U+FFFD, and a NaN score is null. */
Test(store, json_samples_round_trip) {
    char dir[64], path[128], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    struct sample_log log = {0};
    sample_log_add(&log, "depth=0.00,trial=0", "12345", "a\\b\nc \"q\"", 1);
    sample_log_add(&log, "depth=1.00,trial=0", "67890", "bad \xff byte", NAN);
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, "accuracy", 0.5), 0);
    cr_assert_eq(sample_log_write(&log, &r), 0);
    sample_log_free(&log);
    struct store_attr at[] = {
        {.name = "method", .kind = STORE_STR, .s = "baseline"},
        {.name = "task", .kind = STORE_STR, .s = "passkey"},
        {.name = "length", .kind = STORE_I64, .i = 256},
    };
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    cr_assert_eq(store_put(st, "passkey.baseline.L256.x", CELL_DONE, at, 3, &r, err, sizeof err), 0, "%s", err);
    store_close(st);
    result_free(&r);
    struct store_cell *cells;
    int n;
    cr_assert_eq(store_read(path, true, &cells, &n, err, sizeof err), 0, "%s", err);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(store_write_json(f, cells, n, path, true), 0);
    fclose(f);
    store_cells_free(cells, n);
    cr_expect_not_null(strstr(text, "{\"id\": \"depth=0.00,trial=0\", \"expected\": \"12345\", "
                                    "\"generated\": \"a\\\\b\\nc \\\"q\\\"\", \"score\": 1}"), "%s", text);
    cr_expect_not_null(strstr(text, "\"generated\": \"bad \xef\xbf\xbd byte\", \"score\": null}"), "%s", text);
    cr_expect_null(strstr(text, "\"sample_id\""), "sample texts are not repeated under texts: %s", text);
    free(text);
    test_rm_rf(dir);
}

/* ------------------------------------------------------------------ the journal */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Cell i of the journal tests: a done cell whose values are a function of i. */
static void put_numbered(struct store *st, int i, int n_array) {
    char id[64], key[32], err[512];
    snprintf(id, sizeof id, "toy.m%d.L%d", i % 7, i);
    snprintf(key, sizeof key, "key-%d", i);
    double *a = malloc((size_t)n_array * sizeof *a);
    cr_assert_not_null(a);
    for (int k = 0; k < n_array; k++) a[k] = i + k / 8.0;
    struct result r = {0};
    cr_assert_eq(result_scalar(&r, "score", i * 0.5), 0);
    cr_assert_eq(result_array(&r, "curve", a, n_array, 1), 0);
    cr_assert_eq(result_text(&r, "note", "\xff ok"), 0);
    struct store_attr at[] = {{.name = "key", .kind = STORE_STR, .s = key},
                              {.name = "length", .kind = STORE_I64, .i = i},
                              {.name = "wall_s", .kind = STORE_F64, .f = -0.0}};
    cr_assert_eq(store_put(st, id, CELL_DONE, at, 3, &r, err, sizeof err), 0, "%s", err);
    result_free(&r);
    free(a);
}

/* Every cell in the file is cell i as put_numbered wrote it; returns the count. */
static int check_numbered(const char *path, int n_array) {
    struct store_cell *cells;
    int n;
    char err[512], buf[64];
    cr_assert_eq(store_read(path, true, &cells, &n, err, sizeof err), 0, "the file opens: %s", err);
    for (int c = 0; c < n; c++) {
        int i = atoi(store_attr_text(&cells[c], "length", buf, sizeof buf));
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_str_eq(store_attr_text(&cells[c], "key", buf, sizeof buf), key);
        cr_assert_str_eq(cells[c].attrs[0].name, "status");
        const struct store_attr *w = store_cell_attr(&cells[c], "wall_s");
        cr_assert(w && w->kind == STORE_F64 && w->f == 0 && signbit(w->f), "-0.0 kept");
        const struct result_item *s = result_find(&cells[c].res, "score"), *a = result_find(&cells[c].res, "curve"),
                                 *t = result_find(&cells[c].res, "note");
        cr_assert(s && a && t, "cell %s has its items", cells[c].id);
        cr_assert_eq(s->value, i * 0.5);
        cr_assert_str_eq(t->text, "\xef\xbf\xbd ok", "texts as HDF5 stores them");
        cr_assert_eq(a->rows, n_array);
        for (int k = 0; k < n_array; k++) cr_assert_eq(a->data[k], i + k / 8.0);
        cr_assert_eq(cells[c].res.items[2].kind, RESULT_ARRAY, "arrays after scalars and texts");
    }
    store_cells_free(cells, n);
    return n;
}

/* Cells in the HDF5 file itself (raw API: the journal not counted). */
static int h5_cells(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "HDF5 opens %s", path);
    hid_t g = H5Gopen2(f, "/cells", H5P_DEFAULT);
    H5G_info_t gi;
    cr_assert_geq(H5Gget_info(g, &gi), 0);
    H5Gclose(g);
    H5Fclose(f);
    return (int)gi.nlinks;
}

/* A writer that journals `n` cells and dies without folding them (as a kill does). */
static void journal_and_die(const char *path, int first, int n) {
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char err[512];
        struct store *st = store_open(path, err, sizeof err);
        if (!st) _exit(1);
        for (int i = first; i < first + n; i++) put_numbered(st, i, 16);
        _exit(0);
    }
    cr_assert_eq(test_wait_status(pid), 0);
}

Test(store, journaled_cells_are_read_and_folded) {
    char dir[64], path[128], journal[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/j.h5", dir);
    snprintf(journal, sizeof journal, "%s.journal", path);
    journal_and_die(path, 0, 5);
    cr_expect_eq(access(journal, F_OK), 0, "the cells are in the journal");
    cr_expect_eq(h5_cells(path), 0, "the HDF5 file exists from the first cell on, and opens");
    cr_expect_eq(check_numbered(path, 16), 5, "readers see journaled cells");
    /* a later record of a cell replaces the earlier one */
    journal_and_die(path, 3, 4);
    cr_expect_eq(check_numbered(path, 16), 7);
    /* the next writer folds: the HDF5 file alone holds them, the journal is gone */
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    cr_expect_eq(store_count(st, CELL_DONE), 7);
    cr_expect_neq(access(journal, F_OK), 0, "folded on open");
    cr_expect_eq(h5_cells(path), 7);
    put_numbered(st, 9, 16);
    store_close(st);
    cr_expect_neq(access(journal, F_OK), 0, "folded on close");
    cr_expect_eq(h5_cells(path), 8);
    cr_expect_eq(check_numbered(path, 16), 8);
    /* report (and export, plot) fold a journal a killed writer left */
    journal_and_die(path, 20, 2);
    char out[8192], args[600];
    snprintf(args, sizeof args, "report '%s'", path);
    cr_expect_eq(ctxbench_run(args, out, sizeof out), 0, "%s", out);
    cr_expect_neq(access(journal, F_OK), 0, "report folded the journal: %s", out);
    cr_expect_eq(h5_cells(path), 10);
    test_rm_rf(dir);
}

Test(store, torn_last_record_is_ignored_and_cut) {
    char dir[64], path[128], journal[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/t.h5", dir);
    snprintf(journal, sizeof journal, "%s.journal", path);
    journal_and_die(path, 0, 2);
    struct stat two;
    cr_assert_eq(stat(journal, &two), 0);
    unlink(journal);
    unlink(path);
    journal_and_die(path, 0, 3);   /* the same two records, then a third */
    size_t full_len;
    char *full = test_read_bytes(journal, &full_len);
    size_t rec = full_len - (size_t)two.st_size;
    /* the third record cut anywhere (its header, payload, checksum), or one byte of it changed */
    size_t cuts[] = {1, 4, 11, 12, 20, rec / 2, rec - 8, rec - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0] + 1; k++) {
        FILE *f = fopen(journal, "wb");
        cr_assert_not_null(f);
        if (k < sizeof cuts / sizeof cuts[0]) {
            cr_assert_eq(fwrite(full, 1, (size_t)two.st_size + cuts[k], f), (size_t)two.st_size + cuts[k]);
        } else {
            full[two.st_size + rec / 2] ^= 0x10;
            cr_assert_eq(fwrite(full, 1, full_len, f), full_len);
        }
        fclose(f);
        cr_expect_eq(check_numbered(path, 16), 2, "the torn record is not a cell (cut %zu)", k);
    }
    /* a writer cuts the torn end off and appends after the whole records */
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    cr_expect_eq(store_count(st, CELL_DONE), 2);
    put_numbered(st, 7, 16);
    store_close(st);
    cr_expect_eq(check_numbered(path, 16), 3);
    cr_expect_eq(h5_cells(path), 3);
    free(full);
    test_rm_rf(dir);
}

Test(store, sigkill_at_any_moment_keeps_every_finished_cell) {
    /* A writer putting cells as fast as it can, killed at random moments again and again
     * (inside appends, syncs and folds): after every kill the file opens, holds every cell
     * the writer had finished before, and each cell is whole. */
    char dir[64], path[128];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/k.h5", dir);
    unsigned long long rng = 99;
    int last = 0, kills = 0;
    for (int round = 0; round < 25; round++) {
        int pipefd[2];
        cr_assert_eq(pipe(pipefd), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {   /* reports each finished cell's number on the pipe */
            close(pipefd[0]);
            char err[512];
            struct store *st = store_open(path, err, sizeof err);
            if (!st) _exit(1);
            for (int i = store_count(st, CELL_DONE); i < 100000; i++) {
                put_numbered(st, i, 2000);
                if (write(pipefd[1], &i, sizeof i) != sizeof i) _exit(1);
            }
            _exit(0);
        }
        close(pipefd[1]);
        usleep((useconds_t)(test_rng_next(&rng) % 80000));
        kill(pid, SIGKILL);
        int status, finished = last, i;
        waitpid(pid, &status, 0);
        while (read(pipefd[0], &i, sizeof i) == sizeof i) finished = i + 1;
        close(pipefd[0]);
        kills += WIFSIGNALED(status);
        if (access(path, F_OK) != 0) continue;
        h5_cells(path);   /* HDF5 opens it */
        int n = check_numbered(path, 2000);
        cr_assert_geq(n, finished, "every finished cell survives the kill (round %d: %d of %d)", round, n, finished);
        last = n;
    }
    cr_expect_gt(kills, 10, "the writer was really killed (%d)", kills);
    cr_expect_gt(last, 0);
    cr_log_info("%d kills, %d cells", kills, last);
    test_rm_rf(dir);
}

Test(store, ten_thousand_cells_cost_the_same_each, .timeout = 600) {
    /* 10,000 cells with a 512-value array each: writing a cell costs the same whatever the
     * file already holds. Checked by what is written, not by the clock (a shared disk makes
     * timings noise; `make bench` prints them: ctxbench bench --store): after the first
     * cell the HDF5 file is never rewritten (same inode, same size) and each later cell adds
     * one journal record of the same size as the first, give or take its longer id. */
    char dir[64], path[128], journal[160], err[512];
    test_temp_dir(dir, sizeof dir, "store");
    snprintf(path, sizeof path, "%s/big.h5", dir);
    snprintf(journal, sizeof journal, "%s.journal", path);
    struct store *st = store_open(path, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    enum { N = 10000, BLOCK = 1000 };
    static double t[N];
    struct stat h5_first, journal_first, h5_last, journal_last;
    for (int i = 0; i < N; i++) {
        double t0 = host_monotonic_s();
        put_numbered(st, i, 512);
        t[i] = host_monotonic_s() - t0;
        if (i == 0) cr_assert(stat(path, &h5_first) == 0 && stat(journal, &journal_first) == 0, "file and journal");
    }
    cr_assert(stat(path, &h5_last) == 0 && stat(journal, &journal_last) == 0);
    cr_expect(h5_last.st_ino == h5_first.st_ino && h5_last.st_size == h5_first.st_size,
              "the HDF5 file is not rewritten per cell (size %lld -> %lld)", (long long)h5_first.st_size,
              (long long)h5_last.st_size);
    double per_cell = (double)journal_last.st_size / N;
    cr_expect(per_cell >= journal_first.st_size && per_cell <= journal_first.st_size + 16,
              "one record per cell: first %lld bytes, mean %.1f", (long long)journal_first.st_size, per_cell);
    double t0 = host_monotonic_s();
    cr_assert_eq(store_fold(st, err, sizeof err), 0, "%s", err);
    double fold = host_monotonic_s() - t0;
    store_close(st);
    cr_expect_neq(access(journal, F_OK), 0, "the fold removes the journal");
    qsort(t, BLOCK, sizeof t[0], cmp_double);
    qsort(t + N - BLOCK, BLOCK, sizeof t[0], cmp_double);
    cr_log_info("median put: first 1000 cells %.3f ms, last 1000 %.3f ms; fold of 10000 cells %.2f s (timings: "
                "information only)", t[BLOCK / 2] * 1e3, t[N - BLOCK / 2] * 1e3, fold);
    cr_expect_eq(h5_cells(path), N);
    test_rm_rf(dir);
}
