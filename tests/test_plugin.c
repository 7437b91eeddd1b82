/* Drop-in methods: a copy of the source tree with one extra file methods/zz_test.c must
 * build, and the generated registry must list the new method without any other edit.
 * Runs from the repository root (as `make test` does). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char zz_method[] =
    "/* Throw-away method written by tests/test_plugin.c. */\n"
    "#include <math.h>\n"
    "#include \"method.h\"\n"
    "static int plan_zz(const struct method_ctx *ctx, const double *values, struct method_plan *out,\n"
    "                   char *err, size_t errlen) {\n"
    "    (void)err; (void)errlen;\n"
    "    double k = isnan(values[0]) ? 2 : values[0];\n"
    "    for (int i = 0; i < ctx->cfg->n_rot / 2; i++) out->inv_freq[i] = (float)k;\n"
    "    out->used[0] = k;\n"
    "    return 0;\n"
    "}\n"
    "const struct method method_zz_test = {\n"
    "    .name = \"zz_test\", .summary = \"plugin test method\", .help = \"constant frequencies\",\n"
    "    .n_params = 1, .params = {{\"k\", MPARAM_FLOAT, 2, 1, 10, \"the frequency\"}},\n"
    "    .plan = plan_zz,\n"
    "};\n";

/* Linked against the copy's library: the new method is found, parsed and planned. A plain
 * main, not Criterion (a Criterion runner started from inside a Criterion test aborts). */
static const char zz_check[] =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include \"method.h\"\n"
    "#define CHECK(c) do { if (!(c)) { fprintf(stderr, \"failed: %s\\n\", #c); return 1; } } while (0)\n"
    "int main(void) {\n"
    "    const struct method *m = method_find(\"zz_test\");\n"
    "    CHECK(m != NULL);\n"
    "    int n = 0;\n"
    "    for (const struct method *const *p = registry_methods; *p; p++) n += *p == m;\n"
    "    CHECK(n == 1);\n"
    "    CHECK(method_find(\"baseline\") != NULL);\n"
    "    struct method_spec s; struct method_plan plan; char err[256];\n"
    "    CHECK(method_spec_parse(\"zz_test:k=3\", &s, err, sizeof err) == 0);\n"
    "    struct model_config c; memset(&c, 0, sizeof c);\n"
    "    c.n_rot = 8; c.rope_base = 10000; c.ctx_train = 16;\n"
    "    struct method_ctx ctx = {.cfg = &c, .target_len = 16, .seq_len = 16};\n"
    "    CHECK(method_plan(&s, &ctx, &plan, err, sizeof err) == 0);\n"
    "    CHECK(plan.inv_freq[3] == 3.0f && plan.n_freq == 4);\n"
    "    puts(\"zz_test registered\");\n"
    "    return 0;\n"
    "}\n";

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Runs a shell command, returns its exit status (or -1). */
static int run(const char *cmd) {
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* The copied tree, removed after the test whether it passed or failed. */
static char plugin_dir[64];

static void remove_plugin_dir(void) {
    if (!plugin_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", plugin_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", plugin_dir);
    plugin_dir[0] = 0;
}

/* The copy is built as this build was (make test passes its compiler, target and extra
 * flags on), unoptimised so it takes seconds, by a fresh make (not the parent's jobserver). */
#define COPY_MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 CC=\"${CTXBENCH_CC:-cc}\" " \
    "ARCH=\"${CTXBENCH_ARCH:--march=native}\" OPT=\"-O0 ${CTXBENCH_ARCH:--march=native}\" " \
    "CFLAGS=\"${CTXBENCH_CFLAGS:-}\""

Test(plugin, drop_in_method_is_registered, .timeout = 300, .fini = remove_plugin_dir) {
    cr_assert_eq(access("Makefile", R_OK), 0, "run from the repository root");
    cr_assert_eq(access("scripts/gen_registry.sh", R_OK), 0);
    snprintf(plugin_dir, sizeof plugin_dir, "/tmp/ctxbench_plugin_XXXXXX");
    cr_assert_not_null(mkdtemp(plugin_dir));
    const char *dir = plugin_dir;
    char cmd[4096], path[512];

    /* The sources the build reads, as they are in this checkout. */
    snprintf(cmd, sizeof cmd,
             "cp -r harness backends methods scripts Makefile %s/ && mkdir -p %s/tasks %s/tests && "
             "if [ -d tasks ]; then cp -r tasks/. %s/tasks/; fi && cp tests/testutil.h %s/tests/",
             dir, dir, dir, dir, dir);
    cr_assert_eq(run(cmd), 0, "copying the tree failed");
    snprintf(path, sizeof path, "%s/methods/zz_test.c", dir);
    cr_assert_eq(write_file(path, zz_method), 0);
    snprintf(path, sizeof path, "%s/tests/test_zzcheck.c", dir);
    cr_assert_eq(write_file(path, zz_check), 0);

    snprintf(cmd, sizeof cmd,
             "cd %s && " COPY_MAKE " BUILD=%s/build %s/build/tests/test_zzcheck > %s/make.log 2>&1",
             dir, dir, dir, dir);
    int rc = run(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -20 %s/make.log >&2", dir);
        run(cmd);
    }
    cr_assert_eq(rc, 0, "build of the copied tree with methods/zz_test.c failed (log above)");

    snprintf(cmd, sizeof cmd, "grep -q '&method_zz_test,' %s/build/gen/registry_list.c", dir);
    cr_assert_eq(run(cmd), 0, "generated registry does not list method_zz_test");
    snprintf(cmd, sizeof cmd, "grep -q '&method_baseline,' %s/build/gen/registry_list.c", dir);
    cr_assert_eq(run(cmd), 0, "generated registry lost method_baseline");

    snprintf(cmd, sizeof cmd, "%s/build/tests/test_zzcheck >&2", dir);
    cr_assert_eq(run(cmd), 0, "the copy's library does not find/plan zz_test (output above)");

    /* The CLI listing shows the new method too. */
    snprintf(cmd, sizeof cmd,
             "cd %s && " COPY_MAKE " BUILD=%s/build %s/build/ctxbench > %s/make2.log 2>&1 || "
             "{ tail -20 %s/make2.log >&2; exit 1; }",
             dir, dir, dir, dir, dir);
    cr_assert_eq(run(cmd), 0, "build of the copied tree's ctxbench failed (log above)");
    snprintf(cmd, sizeof cmd, "%s/build/ctxbench methods > %s/methods.txt 2>&1", dir, dir);
    cr_assert_eq(run(cmd), 0, "`ctxbench methods` failed");
    snprintf(cmd, sizeof cmd, "grep -q '^zz_test' %s/methods.txt && grep -q '^baseline' %s/methods.txt",
             dir, dir);
    cr_assert_eq(run(cmd), 0, "`ctxbench methods` does not list zz_test");
}
