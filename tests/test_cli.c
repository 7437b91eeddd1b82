/* The command-line program on bad input: one clear line on stderr naming the
 * problem and a non-zero exit, never a crash; and --help for every subcommand. */
#include <criterion/criterion.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "testutil.h"
#include "testutil_sys.h"

/* Runs `ctxbench ARGS` and insists it exited normally: bad input must never crash it. */
static int run(char *out, size_t cap, const char *args) {
    int rc = ctxbench_run(args, out, cap);
    cr_assert_neq(rc, -1, "ctxbench %s did not exit normally (signal?)", args);
    return rc;
}

static char model[1024], text[1024];

static void paths(void) {
    shared_path(model, sizeof model, "models/stories260K.gguf");
    shared_path(text, sizeof text, "datasets/tinystories/TinyStories-valid-first1000.txt");
}

TestSuite(cli, .init = paths, .timeout = 60);

Test(cli, every_subcommand_has_help) {
    const char *cmds[] = {"info", "tokenize", "generate", "ppl", "methods", "tasks", "synth", "bench", "sweep", "plot", "export", "report"};
    char out[16384];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_expect_eq(run(out, sizeof out, args), 0, "%s", args);
        cr_expect(strstr(out, "usage") || strstr(out, "Usage") || strstr(out, "ctxbench"), "%s: %s", args, out);
    }
    cr_expect_eq(run(out, sizeof out, "--help"), 0);
    cr_expect_neq(run(out, sizeof out, "frobnicate"), 0);
    cr_expect(strstr(out, "unknown command 'frobnicate'"), "%s", out);
}

Test(cli, missing_and_corrupt_models_are_clear_errors) {
    char out[16384], args[4096];
    cr_expect_eq(run(out, sizeof out, "info /nonexistent/model.gguf"), 1);
    cr_expect(strstr(out, "/nonexistent/model.gguf"), "%s", out);

    /* A truncated copy of a real model. */
    char trunc[] = "/tmp/ctxbench-cli-XXXXXX";
    int fd = mkstemp(trunc);
    cr_assert(fd >= 0);
    FILE *src = fopen(model, "rb"), *dst = fdopen(fd, "wb");
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, src);
    fwrite(buf, 1, got, dst);
    fclose(src);
    fclose(dst);
    snprintf(args, sizeof args, "info %s", trunc);
    cr_expect_eq(run(out, sizeof out, args), 1);
    cr_expect(strstr(out, "ctxbench: ") && strchr(out, '\n') == out + strlen(out) - 1, "want one line: %s", out);
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 64", trunc, text);
    cr_expect_eq(run(out, sizeof out, args), 1);
    unlink(trunc);
}

Test(cli, bad_options_are_clear_errors) {
    char out[16384], args[4096];
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 64 --method nosuch", model, text);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "nosuch") && strstr(out, "yarn"), "should name the method and list valid ones: %s", out);
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 64 --method yarn:fator=2", model, text);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "fator") && strstr(out, "factor"), "%s", out);
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 12x", model, text);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "12x"), "%s", out);
    snprintf(args, sizeof args, "ppl -m %s -f /nonexistent.txt -c 64", model);
    cr_expect_eq(run(out, sizeof out, args), 1);
    cr_expect(strstr(out, "/nonexistent.txt"), "%s", out);
    snprintf(args, sizeof args, "ppl -m %s -f /dev/null -c 64", model);
    cr_expect_eq(run(out, sizeof out, args), 1);
    cr_expect(strstr(out, "/dev/null") && strstr(out, "holds no text"), "%s", out);
    snprintf(args, sizeof args, "generate -m %s -p hi -n 4 --backend tpu", model);
    cr_expect_eq(run(out, sizeof out, args), 1);
    cr_expect(strstr(out, "unknown backend 'tpu'"), "%s", out);
    cr_expect_eq(run(out, sizeof out, "ppl -m M -f F -t ' 2'"), 2);   /* numbers are strict: no blanks */
    cr_expect(strstr(out, "got ' 2'"), "%s", out);
    cr_expect_eq(run(out, sizeof out, "synth --preset nosuch -o /tmp/x.gguf"), 2);
    cr_expect(strstr(out, "unknown preset 'nosuch'"), "%s", out);
    /* KV cache types, by llama.cpp's -ctk/-ctv and the long names, in ppl and sweep */
    cr_expect_eq(run(out, sizeof out, "ppl -m M -f F -ctk f8"), 2);
    cr_expect(strstr(out, "--cache-type-k (-ctk) expects one of f32, f16, q8_0, got 'f8'") &&
              strchr(out, '\n') == strrchr(out, '\n'), "one line naming the types: %s", out);
    cr_expect_eq(run(out, sizeof out, "sweep -m M -o /tmp/never.h5 --cache-type-v Q8_0"), 2);
    cr_expect(strstr(out, "--cache-type-v (-ctv) expects one of f32, f16, q8_0, got 'Q8_0'"), "%s", out);
}

/* -ctk/-ctv reach the engine: the ppl line names the cache, and an f16 cache gives a
 * perplexity within 0.1% of the f32 cache's. */
Test(cli, ppl_cache_types) {
    char out[16384], args[4096];
    double p32 = 0, p16 = 0;
    char k[16], v[16];
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 128 --chunks 2 -t 1", model, text);
    cr_assert_eq(run(out, sizeof out, args), 0, "%s", out);
    const char *line = strstr(out, "method baseline");
    cr_assert(line && sscanf(strstr(line, " ppl ") + 5, "%lf", &p32) == 1 && strstr(line, "cache f32/f32"), "%s", out);
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 128 --chunks 2 -t 1 -ctk f16 --cache-type-v f16", model, text);
    cr_assert_eq(run(out, sizeof out, args), 0, "%s", out);
    line = strstr(out, "method baseline");
    cr_assert(line && sscanf(strstr(line, " ppl ") + 5, "%lf", &p16) == 1, "%s", out);
    cr_assert(sscanf(strstr(line, " cache ") + 7, "%15[^/]/%15s", k, v) == 2, "%s", line);
    cr_expect_str_eq(k, "f16");
    cr_expect_str_eq(v, "f16");
    cr_expect(fabs(p16 / p32 - 1) < 1e-3, "f16 %g vs f32 %g", p16, p32);
}

/* Runs a shell command line with $BIN set to the ctxbench under test, output into out.
 * Returns the exit status, or -1 when the shell did not exit normally. */
static int run_sh(char *out, size_t cap, const char *script) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "BIN='%s'; export BIN; { %s ; } 2>&1", ctxbench_bin(), script);
    return test_shell_output(cmd, out, cap);
}

/* ctxbench ppl is the ppl task's windows protocol: its line shows the numbers a sweep's
 * ppl cell stores for the same text, model and length, even for a text the dataset reader
 * has to clean (a BOM, CRLF line ends, blank lines at the end). */
Test(cli, ppl_prints_what_the_ppl_task_computes) {
    char dir[256], path[512], h5[512], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_ppl");
    snprintf(path, sizeof path, "%s/text.txt", dir);
    snprintf(h5, sizeof h5, "%s/cells.h5", dir);
    FILE *src = fopen(text, "rb"), *dst = fopen(path, "wb");
    cr_assert(src && dst);
    fputs("\xEF\xBB\xBF", dst);
    for (int c, n = 0; n < 20000 && (c = fgetc(src)) != EOF; n++) {
        if (c == '\n') fputc('\r', dst);
        fputc(c, dst);
    }
    fputs("\r\n\r\n\r\n", dst);
    fclose(src);
    fclose(dst);
    snprintf(script, sizeof script,
             "\"$BIN\" ppl -m %s -f %s -c 128 --chunks 3 -t 2 2>/dev/null && "
             "\"$BIN\" sweep -m %s --methods baseline --tasks ppl --lengths 128 --data %s "
             "--task-opt ppl:max_windows=3 -t 2 -o %s >/dev/null 2>&1 && "
             "\"$BIN\" export %s | awk -F, '{gsub(/\"/, \"\")} $11 ~ /^(ppl|nll|windows|tokens_scored)$/ {print $11, $12}'",
             model, path, model, path, h5, h5);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    char printed_ppl[32], printed_nll[32];
    long windows = 0, tokens = 0;
    const char *line = strstr(out, "method baseline ctx 128 ");
    cr_assert(line && sscanf(line, "method baseline ctx 128 windows %ld tokens %ld ppl %31s nll %31s", &windows,
                             &tokens, printed_ppl, printed_nll) == 4,
              "%s", out);
    double v[4] = {NAN, NAN, NAN, NAN};
    const char *names[4] = {"ppl", "nll", "windows", "tokens_scored"};
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n%s ", names[i]);
        const char *at = strstr(out, want);
        cr_assert(at && sscanf(at + strlen(want), "%lf", &v[i]) == 1, "no %s in: %s", names[i], out);
    }
    char stored_ppl[32], stored_nll[32];
    snprintf(stored_ppl, sizeof stored_ppl, "%.4f", v[0]);
    snprintf(stored_nll, sizeof stored_nll, "%.6f", v[1]);
    cr_expect_str_eq(printed_ppl, stored_ppl);
    cr_expect_str_eq(printed_nll, stored_nll);
    cr_expect_eq(windows, 3);
    cr_expect_eq((double)windows, v[2]);
    cr_expect_eq((double)tokens, v[3]);
    test_rm_rf(dir);
}

Test(cli, ppl_and_tokenize_run) {
    char out[16384], args[4096];
    snprintf(args, sizeof args, "ppl -m %s -f %s -c 128 --chunks 2 -t 2", model, text);
    cr_assert_eq(run(out, sizeof out, args), 0, "%s", out);
    double ppl = 0;
    const char *p = strstr(out, " ppl ");
    cr_assert(p && sscanf(p, " ppl %lf", &ppl) == 1, "%s", out);
    cr_expect(ppl > 1.5 && ppl < 20, "stories260K on its own distribution: ppl %g", ppl);
    /* on stderr: what it read, a line per window, and the progress label's last line */
    cr_expect(strstr(out, "tokens, 2 windows of 128, method baseline") && strstr(out, "[2/2] window ppl ") &&
              strstr(out, "ppl 2 windows of 128: done"), "%s", out);
    snprintf(args, sizeof args, "tokenize %s \"Once upon a time\" --ids-only", model);
    cr_assert_eq(run(out, sizeof out, args), 0, "%s", out);
    cr_expect_str_eq(out, "1 403 407 261 378\n");
}


static bool one_line(const char *s) { return strchr(s, '\n') == s + strlen(s) - 1; }

Test(cli, file_reads_are_bounded) {
    /* The limit, lowered for the test, holds for pipes and devices (read up to it, then
     * refused) and for regular files (refused before reading). ppl reads the text before
     * it opens the model, so a missing model keeps a failed check fast. */
    char out[16384], script[4096], big[] = "/tmp/ctxbench-cli-big-XXXXXX";
    cr_assert_eq(setenv("CTXBENCH_MAX_FILE_BYTES", "100000", 1), 0);
    snprintf(script, sizeof script, "head -c 300000 /dev/zero | \"$BIN\" ppl -m /nonexistent.gguf -f /dev/stdin -c 64");
    cr_expect_eq(run_sh(out, sizeof out, script), 1);
    cr_expect(strstr(out, "/dev/stdin: more than the 100000 bytes") && one_line(out), "%s", out);
    snprintf(script, sizeof script, "head -c 300000 /dev/zero | \"$BIN\" tokenize -f /dev/stdin %s", model);
    cr_expect_eq(run_sh(out, sizeof out, script), 1);
    cr_expect(strstr(out, "/dev/stdin: more than the 100000 bytes") && one_line(out), "%s", out);
    /* /dev/zero never ends. Should the limit ever stop working, the address-space limit
     * (or ASan's allocation cap) turns the runaway read into an error, not a dead machine. */
#if defined(__SANITIZE_ADDRESS__)
    const char *guard = "ASAN_OPTIONS=\"$ASAN_OPTIONS:max_allocation_size_mb=256:allocator_may_return_null=1\"";
#else
    const char *guard = "ulimit -v 2097152;";
#endif
    snprintf(script, sizeof script, "%s \"$BIN\" ppl -m /nonexistent.gguf -f /dev/zero -c 64", guard);
    cr_expect_eq(run_sh(out, sizeof out, script), 1);
    cr_expect(strstr(out, "/dev/zero: more than the 100000 bytes") && one_line(out), "%s", out);
    int fd = mkstemp(big);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, 100001), 0);
    close(fd);
    snprintf(script, sizeof script, "\"$BIN\" ppl -m /nonexistent.gguf -f %s -c 64", big);
    cr_expect_eq(run_sh(out, sizeof out, script), 1);
    cr_expect(strstr(out, "100001 bytes, more than the 100000 bytes") && one_line(out), "%s", out);
    unlink(big);
    /* at the limit is fine: a 100000-byte text tokenizes */
    snprintf(script, sizeof script, "head -c 100000 %s | \"$BIN\" tokenize --ids-only -f /dev/stdin %s | wc -w", text,
             model);
    cr_expect_eq(run_sh(out, sizeof out, script), 0);
    cr_expect(atoi(out) > 10000, "%s", out);
}

/* Messages that echo input stay one line: a newline or escape sequence in an argument,
 * a path or a CSV header shows escaped, and a huge argument is cut. */
Test(cli, echoed_input_is_escaped_and_cut) {
    char out[16384], args[8192];
    struct {
        const char *args, *shows;
        bool usage_follows;   /* the error line is followed by the usage text */
    } cases[] = {
        {"frob\"$(printf '\\nx')\"", "unknown command 'frob\\nx'", true},
        {"ppl -m M -f F -t \"$(printf '1\\n2')\"", "got '1\\n2'", false},
        {"ppl -m M -f F -c \"$(printf '64\\r\\n5')\"", "got '64\\r\\n5'", false},
        {"ppl -m M -f F --rope-scaling \"$(printf 'li\\nnear')\"", "--rope-scaling 'li\\nnear'", false},
        {"ppl -m M -f F --method \"$(printf 'yarn:fa\\nctor=2')\"", "unknown parameter 'fa\\nctor'", false},
        {"ppl -m M -f F --method \"$(printf 'ya\\nrn')\"", "unknown method 'ya\\nrn'", false},
        {"ppl -m M -f \"$(printf '/nonexistent/a\\nb.txt')\" -c 64", "'/nonexistent/a\\nb.txt' not found", false},
        {"info \"$(printf '/nonexistent/m\\033[2J.gguf')\"", "/nonexistent/m\\x1B[2J.gguf", false},
        {"sweep -m M -o O --lengths \"$(printf '1k\\n2k')\"", "bad length '1k\\n2k'", false},
        {"sweep -m M -o O --tasks \"$(printf 'pp\\nl')\"", "unknown task 'pp\\nl'", false},
        {"sweep -m M -o O --task-opt \"$(printf 'ppl:stri\\nde=1')\"", "key 'stri\\nde'", false},
        {"sweep -m M -o O --seed \"$(printf '1\\t2')\"", "got '1\\t2'", false},
        {"synth --preset \"$(printf 'tiny\\nllama')\" -o /tmp/x.gguf", "unknown preset 'tiny\\nllama'", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_neq(run(out, sizeof out, cases[i].args), 0, "%s", cases[i].args);
        const char *hit = strstr(out, cases[i].shows), *eol = strchr(out, '\n');
        cr_expect(hit && hit < eol, "%s: want %s in the first line of: %s", cases[i].args, cases[i].shows, out);
        cr_expect(cases[i].usage_follows || one_line(out), "%s: not one line: %s", cases[i].args, out);
    }
    /* a 5000-character argument is cut, not echoed whole */
    char big[5001];
    memset(big, 'z', 5000);
    big[5000] = 0;
    snprintf(args, sizeof args, "ppl -m M -f F -t %s", big);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "zzz...'") && strlen(out) < 400 && one_line(out), "%zu: %.200s", strlen(out), out);
}

/* ---- i13-results: `ctxbench tasks`, export/report columns, JSON results ---- */
#include "task.h"

/* Every setting of every task's table is what its check hook enforces: the bounds and
 * each choice are accepted, one past a bound and an unknown choice are refused naming
 * the key. So `ctxbench tasks` (which prints the table) cannot drift from the tasks. */
Test(cli, task_settings_tables_are_what_tasks_check) {
    char err[512], text[256];
    int n_tasks = 0;
    for (int i = 0; registry_tasks[i]; i++, n_tasks++) {
        const struct task *t = registry_tasks[i];
        cr_assert(t->settings, "%s has no settings table", t->name);
        cr_expect_eq(t->check("", err, sizeof err), 0, "%s defaults: %s", t->name, err);
        for (const struct task_setting *s = t->settings; s->name; s++) {
            if (s->type == TASK_SETTING_CHOICE) {
                for (int c = 0; s->choices[c]; c++) {
                    snprintf(text, sizeof text, "%s=%s", s->name, s->choices[c]);
                    /* ppl's truncate applies to yarn only; every choice alone is valid */
                    cr_expect_eq(t->check(text, err, sizeof err), 0, "%s %s: %s", t->name, text, err);
                }
                snprintf(text, sizeof text, "%s=nosuchchoice", s->name);
                cr_expect_eq(t->check(text, err, sizeof err), -1, "%s %s accepted", t->name, text);
                continue;
            }
            long ok[] = {s->min, s->max}, bad[] = {s->min - 1, s->max + 1};
            for (int k = 0; k < 2; k++) {
                /* truncate=1 needs protocol=yarn: give it where the task's own rule asks */
                const char *extra = strcmp(s->name, "truncate") == 0 ? ",protocol=yarn" : "";
                snprintf(text, sizeof text, "%s=%ld%s", s->name, ok[k], extra);
                cr_expect_eq(t->check(text, err, sizeof err), 0, "%s %s: %s", t->name, text, err);
                snprintf(text, sizeof text, "%s=%ld%s", s->name, bad[k], extra);
                cr_expect_eq(t->check(text, err, sizeof err), -1, "%s %s accepted", t->name, text);
                cr_expect(strstr(err, s->name), "%s %s: error does not name the key: %s", t->name, text, err);
            }
        }
    }
    cr_expect_geq(n_tasks, 3);
}

/* `ctxbench tasks` lists every task and each setting with its type, range and default. */
Test(cli, tasks_lists_every_setting) {
    char out[32768];
    cr_assert_eq(run(out, sizeof out, "tasks"), 0, "%s", out);
    for (int i = 0; registry_tasks[i]; i++) {
        const struct task *t = registry_tasks[i];
        char head[128];
        snprintf(head, sizeof head, "\n%s\n", t->name);
        cr_expect(strstr(out, head), "task %s missing: %s", t->name, out);
    }
    cr_expect(strstr(out, "depths           int    [1, 101]                     default 10\n"), "%s", out);
    cr_expect(strstr(out, "variant          choice yarn|longlora|selfextend     default yarn\n"), "%s", out);
    cr_expect(strstr(out, "min_doc_tokens   int    [-1, 1099511627776]          default L-1\n"), "%s", out);
    cr_expect(strstr(out, "max_new_tokens   int    [4, 1024]                    default 48\n"), "%s", out);
    cr_expect_eq(run(out, sizeof out, "tasks --help"), 0);
    cr_expect(strstr(out, "usage: ctxbench tasks"), "%s", out);
    cr_expect_eq(run(out, sizeof out, "tasks extra"), 2);
    cr_expect(strstr(out, "takes no arguments"), "%s", out);
}

/* The python that make test uses (Debian's, with python3-jsonschema: scripts/install_deps.sh). */
static const char *python(void) {
    const char *py = getenv("CTXBENCH_PYTHON");
    return py && *py ? py : "python3";
}

/* The repository root (results/results.schema.json): the tests run as build/tests/NAME. */
static void repo_file(char *out, size_t cap, const char *rel) {
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(n > 0);
    exe[n] = 0;
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        cr_assert(slash);
        *slash = 0;
    }
    snprintf(out, cap, "%.511s/%.256s", exe, rel);
    if (access(out, R_OK) != 0) snprintf(out, cap, "%s", rel);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Checks a results JSON against results/results.schema.json and what the sweep asked for:
 * --limit 2 recorded and applied through each task's own settings, the method parameters
 * as used, provenance. Prints OK or the first problem. */
static const char *const json_check_py =
    "import json, sys, jsonschema\n"
    "schema = json.load(open(sys.argv[1]))\n"
    "jsonschema.Draft202012Validator.check_schema(schema)\n"
    "doc = json.load(open(sys.argv[2]))\n"
    "errs = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)\n"
    "if errs: sys.exit('schema: %s at %s' % (errs[0].message, list(errs[0].absolute_path)))\n"
    "bad = json.loads(json.dumps(doc)); del bad['cells'][0]['config']\n"
    "if jsonschema.Draft202012Validator(schema).is_valid(bad): sys.exit('schema accepts a cell without config')\n"
    "cells = doc['cells']\n"
    "assert len(cells) == 6, len(cells)\n"
    "order = [(c['config']['method'], c['config']['task']) for c in cells]\n"
    "assert order == sorted(order), order\n"
    "for c in cells:\n"
    "    cf, used = c['config'], c['config']['task_settings_used']\n"
    "    assert c['status'] == 'done', c['error']\n"
    "    assert cf['limit'] == 2 and cf['length'] == 256 and cf['seed'] == 1, cf\n"
    "    t = cf['task']\n"
    "    n = used['max_windows'] if t == 'ppl' else used['depths'] * used['trials'] if t == 'passkey' \\\n"
    "        else used['samples']\n"
    "    assert n == 2, (cf['task'], used)\n"
    "    done = {'ppl': 'windows', 'passkey': 'trials', 'first_sentence': 'samples'}[cf['task']]\n"
    "    assert c['metrics'][done] == 2, (cf['task'], c['metrics'])\n"
    "    if cf['method_name'] == 'yarn':\n"
    "        assert cf['method_params']['factor'] == 1 and 'beta_fast' in cf['method_params'], cf\n"
    "    p = c['provenance']\n"
    "    assert p['backend'] == 'cpu' and len(p['model_sha256']) == 64 and p['git_rev'], p\n"
    "    assert c['headline'] in c['metrics'], c['headline']\n"
    "print('OK')\n";

Test(cli, sweep_output_path_json_matches_the_schema_with_limit, .timeout = 120) {
    char dir[256], h5[300], json[300], json2[300], py[300], schema[1024], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_json");
    snprintf(h5, sizeof h5, "%s/r.h5", dir);
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(json2, sizeof json2, "%s/export.json", dir);
    snprintf(py, sizeof py, "%s/check.py", dir);
    write_file(py, json_check_py);
    repo_file(schema, sizeof schema, "results/results.schema.json");
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --methods yarn,baseline --tasks ppl,passkey,first_sentence --lengths 256 "
             "--data %s --limit 2 --task-opt 'ppl:max_tokens=2000' -t 2 -o %s --output-path %s >/dev/null 2>&1 && "
             "\"$BIN\" export %s --json -o %s && cmp %s %s && '%s' %s %s %s",
             model, text, h5, json, h5, json2, json, json2, python(), py, schema, json);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    cr_expect(strstr(out, "OK\n"), "%s", out);
    test_rm_rf(dir);
}

/* Bad uses of the new flags are one-line errors before any work. */
Test(cli, json_and_limit_flags_are_checked) {
    char out[16384], args[2048];
    snprintf(args, sizeof args, "sweep -m %s -o /tmp/x.h5 --log-samples", model);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "--log-samples needs --output-path"), "%s", out);
    snprintf(args, sizeof args, "sweep -m %s -o /tmp/x.h5 --limit 0", model);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "--limit expects an integer"), "%s", out);
    /* the JSON may not replace the results file, by any name; nothing is created */
    char dir[256], h5[300];
    test_temp_dir(dir, sizeof dir, "cli_flags");
    snprintf(h5, sizeof h5, "%s/r.h5", dir);
    snprintf(args, sizeof args, "sweep -m %s -o %s --output-path %s/./r.h5 --tasks ppl --lengths 64", model, h5, dir);
    cr_expect_eq(run(out, sizeof out, args), 2);
    cr_expect(strstr(out, "r.h5") && strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
    cr_expect_neq(access(h5, F_OK), 0, "the results file was created");
    test_rm_rf(dir);
    cr_expect_eq(run(out, sizeof out, "export /tmp/none.h5 --json --wide"), 2);
    cr_expect(strstr(out, "exclude each other"), "%s", out);
    cr_expect_eq(run(out, sizeof out, "export /tmp/none.h5 --log-samples"), 2);
    cr_expect(strstr(out, "--log-samples needs --json"), "%s", out);
}

/* --log-samples: each retrieval cell's records match its own scores (the mean of the
 * per-sample scores is the headline), passkey's expected answers are its keys, and a task
 * that keeps no samples (ppl) has null. */
static const char *const samples_check_py =
    "import json, sys, jsonschema\n"
    "schema = json.load(open(sys.argv[1]))\n"
    "doc = json.load(open(sys.argv[2]))\n"
    "jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)\n"
    "assert doc['samples_logged'] is True\n"
    "for c in doc['cells']:\n"
    "    t, m, s = c['config']['task'], c['metrics'], c['samples']\n"
    "    if t == 'ppl':\n"
    "        assert s is None, s\n"
    "        continue\n"
    "    n = m['trials'] if t == 'passkey' else m['samples']\n"
    "    assert len(s) == n == 2, (t, len(s), n)\n"
    "    assert len({r['id'] for r in s}) == n, s\n"
    "    head = m['accuracy'] if t == 'passkey' else m['rouge_l']\n"
    "    assert abs(sum(r['score'] for r in s) / n - head) < 1e-12, (t, s, head)\n"
    "    for r in s:\n"
    "        assert isinstance(r['generated'], str) and r['expected'], r\n"
    "        if t == 'passkey': assert r['expected'].isdigit() and len(r['expected']) == 5, r\n"
    "print('OK')\n";

Test(cli, sweep_log_samples_records_each_sample, .timeout = 120) {
    char dir[256], h5[300], json[300], py[300], schema[1024], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_samples");
    snprintf(h5, sizeof h5, "%s/r.h5", dir);
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(py, sizeof py, "%s/check.py", dir);
    write_file(py, samples_check_py);
    repo_file(schema, sizeof schema, "results/results.schema.json");
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --methods baseline --tasks ppl,passkey,first_sentence --lengths 256 --data %s "
             "--limit 2 -t 2 -o %s --output-path %s --log-samples >/dev/null 2>&1 && '%s' %s %s %s",
             model, text, h5, json, python(), py, schema, json);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    cr_expect(strstr(out, "OK\n"), "%s", out);
    test_rm_rf(dir);
}

/* The Python examples in results/README.md run as written on a real sweep's files (its
 * paths results/x.h5 and results/x.json replaced by the sweep's): pandas over the JSON,
 * h5py over the HDF5 file. */
static const char *const readme_py =
    "import contextlib, io, re, sys\n"
    "readme, h5, js = sys.argv[1:4]\n"
    "blocks = re.findall(r'```python\\n(.*?)```', open(readme).read(), re.S)\n"
    "assert len(blocks) >= 2, len(blocks)\n"
    "for code in blocks:\n"
    "    code = code.replace('results/x.h5', h5).replace('results/x.json', js)\n"
    "    out = io.StringIO()\n"
    "    with contextlib.redirect_stdout(out):\n"
    "        exec(compile(code, 'results/README.md', 'exec'), {})\n"
    "    print('--- block'); print(out.getvalue(), end='')\n";

Test(cli, results_readme_python_examples_run, .timeout = 120) {
    char dir[256], h5[300], json[300], py[300], readme[1024], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_readme");
    snprintf(h5, sizeof h5, "%s/x.h5", dir);
    snprintf(json, sizeof json, "%s/x.json", dir);
    snprintf(py, sizeof py, "%s/run.py", dir);
    write_file(py, readme_py);
    repo_file(readme, sizeof readme, "results/README.md");
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --methods baseline,pi:factor=2 --tasks ppl --lengths 128,256 --data %s "
             "--limit 2 -t 2 -o %s --output-path %s >/dev/null 2>&1 && '%s' %s %s %s %s",
             model, text, h5, json, python(), py, readme, h5, json);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    /* pandas: a method x length table of ppl; h5py: a line per done cell */
    cr_expect(strstr(out, "config.length") && strstr(out, "config.method"), "%s", out);
    const char *table = strstr(out, "config.method");
    cr_expect(table && strstr(table, "\nbaseline ") && strstr(table, "\npi:factor=2 "), "%s", out);
    cr_expect(strstr(out, "\nbaseline 128 ppl ") && strstr(out, "\npi:factor=2 256 ppl "), "%s", out);
    test_rm_rf(dir);
}

/* A --limit at or above what a cell does leaves the cell as it was (same id: a resumed
 * sweep finds it done), also when the setting it caps is the task's default (ppl's
 * max_windows, 64); one below makes a new cell with the lowered setting. */
Test(cli, limit_changes_a_cell_only_when_it_lowers_it, .timeout = 60) {
    char dir[256], h5[300], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_limit");
    snprintf(h5, sizeof h5, "%s/r.h5", dir);
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --methods baseline --tasks ppl --lengths 32 --data %s -t 1 -o %s >/dev/null 2>&1 && "
             "\"$BIN\" sweep -m %s --methods baseline --tasks ppl --lengths 32 --data %s --limit 64 -t 1 -o %s 2>&1 "
             "| grep '^sweep: ' && "
             "\"$BIN\" sweep -m %s --methods baseline --tasks ppl --lengths 32 --data %s --limit 2 -t 1 -o %s 2>&1 "
             "| grep '^sweep: ' && \"$BIN\" export %s | grep -c '\"windows\"'",
             model, text, h5, model, text, h5, model, text, h5, h5);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    cr_expect(strstr(out, "sweep: 1 cells: 1 done before, 0 done"), "limit 64 = the default: the same cell: %s", out);
    cr_expect(strstr(out, "sweep: 1 cells: 0 done before, 1 done"), "limit 2: a new cell: %s", out);
    cr_expect(strstr(out, "\n2\n"), "two cells in the file: %s", out);
    test_rm_rf(dir);
}

/* Hugging Face's rope_scaling, as a dict or in a config.json, runs the method it maps to:
 * the same printed numbers as the explicit --method; a config whose rope_theta is not the
 * model's base, or a dict that cannot be honoured, is one line and a non-zero exit. */
Test(cli, hugging_face_rope_scaling) {
    char dir[256], cfg[512], bad[512], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_hf");
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(bad, sizeof bad, "%s/other.json", dir);
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fputs("{\"max_position_embeddings\": 128, \"rope_theta\": 10000.0,\n"
          " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}\n", f);
    fclose(f);
    f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("{\"rope_theta\": 500000, \"rope_scaling\": null}", f);
    fclose(f);
    const char *how[] = {"--hf-config CFG",
                         "--rope-scaling-json '{\"rope_type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":128}'",
                         "--method yarn:factor=4,original_max_position_embeddings=128"};
    char lines[3][1024];
    for (int i = 0; i < 3; i++) {
        char opt[512];
        snprintf(opt, sizeof opt, "%s", how[i]);
        if (strncmp(opt, "--hf-config", 11) == 0) snprintf(opt, sizeof opt, "--hf-config %.400s", cfg);
        snprintf(script, sizeof script, "\"$BIN\" ppl -m %s -f %s -c 256 --chunks 1 -t 2 %s 2>/dev/null", model, text,
                 opt);
        cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s: %s", how[i], out);
        char *cut = strstr(out, " tokens/s");
        const char *want = "method yarn:factor=4,original_max_position_embeddings=128 ctx 256 ";
        cr_assert(strncmp(out, want, strlen(want)) == 0 && cut,
                  "%s: %s", how[i], out);
        *cut = 0;
        snprintf(lines[i], sizeof lines[i], "%.1000s", out);
    }
    cr_expect_str_eq(lines[0], lines[2]);
    cr_expect_str_eq(lines[1], lines[2]);
    /* the HF alias prints the method's own name */
    snprintf(script, sizeof script, "\"$BIN\" ppl -m %s -f %s -c 256 --chunks 1 -t 2 --method linear:factor=2 2>/dev/null",
             model, text);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    cr_expect(strncmp(out, "method pi:factor=2 ctx 256 ", strlen("method pi:factor=2 ctx 256 ")) == 0, "%s", out);

    snprintf(script, sizeof script, "\"$BIN\" ppl -m %s -f %s -c 256 --hf-config %s", model, text, bad);
    cr_expect_eq(run_sh(out, sizeof out, script), 1);
    cr_expect(strstr(out, "rope_theta 500000 is not the model's rope.freq_base 10000") && one_line(out), "%s", out);
    snprintf(script, sizeof script, "\"$BIN\" ppl -m %s -f %s --method pi --rope-scaling-json '{\"type\":\"linear\"}'",
             model, text);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "--rope-scaling-json cannot be combined with --method") && one_line(out), "%s", out);
    snprintf(script, sizeof script, "\"$BIN\" ppl -m %s -f %s --rope-scaling-json '{\"rope_type\":\"longrope\"}'",
             model, text);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "LongRoPE") && one_line(out), "%s", out);
    snprintf(script, sizeof script, "\"$BIN\" generate -m %s -p hi -n 2 --hf-config %s/none.json", model, dir);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "none.json") && one_line(out), "%s", out);
    test_rm_rf(dir);
}

/* llama.cpp's RoPE flags resolve to the spec they compute, through the same getopt table
 * and handlers as every run command. */
static int spec_from_flags(const char *args, struct method_spec *spec, char *err, size_t errlen) {
    static const struct option longopts[] = {CLI_RUN_LONGOPTS, {0}};
    char buf[1024];
    snprintf(buf, sizeof buf, "ctxbench %s", args);
    char *argv[64];
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    struct run_opts ro;
    run_opts_init(&ro);
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "m:t:", longopts, NULL)) != -1)
        if (cli_run_opt(&ro, opt, optarg) != 1) return -2;
    return cli_method_spec(&ro, spec, err, errlen);
}

static void flags_ok(const char *args, const char *want) {
    struct method_spec s;
    char err[1024] = "";
    cr_assert_eq(spec_from_flags(args, &s, err, sizeof err), 0, "%s: %s", args, err);
    cr_expect_str_eq(s.text, want, "%s", args);
}

static void flags_bad(const char *args, int want_rc, const char *want_in_err) {
    struct method_spec s;
    char err[1024] = "";
    cr_expect_eq(spec_from_flags(args, &s, err, sizeof err), want_rc, "%s accepted", args);
    cr_expect(want_rc == -2 || (strstr(err, want_in_err) && !strchr(err, '\n')), "%s: want '%s': %s", args,
              want_in_err, err);
}

/* bench --logits: every position scored (perplexity's work, the default) or the last
 * position's logits only (a prompt's work, what llama-bench -p times); anything else is
 * a one-line error. */
Test(cli, bench_logits_all_or_last) {
    char out[4096], args[2400];
    const char *modes[] = {"", "--logits all", "--logits last"}, *want[] = {"logits all", "logits all", "logits last"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "bench -m %s -c 64 -t 1 %s", model, modes[i]);
        cr_expect_eq(run(out, sizeof out, args), 0, "%s: %s", args, out);
        cr_expect(strstr(out, "prefill n=64") && strstr(out, want[i]), "%s: %s", args, out);
    }
    snprintf(args, sizeof args, "bench -m %s -c 64 --logits first", model);
    cr_expect_eq(run(out, sizeof out, args), 2, "%s", args);
    cr_expect(strstr(out, "--logits expects all or last, got 'first'") && strchr(out, '\n') == out + strlen(out) - 1,
              "%s", out);
}

/* llama.cpp's --grp-attn-n/-w name an algorithm ctxbench does not implement: refused
 * with a pointer to the nearest method, not run as something else. */
Test(cli, llamacpp_group_attention_is_refused_with_a_pointer) {
    char out[4096], args[2400];
    for (int w = 0; w < 2; w++) {
        snprintf(args, sizeof args, "ppl -m %s -f %s -c 128 --chunks 1 %s 4", model, text,
                 w ? "--grp-attn-w" : "--grp-attn-n");
        cr_expect_eq(run(out, sizeof out, args), 2, "%s", args);
        cr_expect(strstr(out, w ? "--grp-attn-w: llama.cpp's group attention" : "--grp-attn-n: llama.cpp's group attention") &&
                      strstr(out, "selfextend:group=N,window=W") && !strstr(out, "PPL"),
                  "%s", out);
    }
}

Test(cli, llamacpp_rope_flags_are_the_specs_they_compute) {
    flags_ok("", "baseline");
    flags_ok("--rope-scaling yarn --rope-scale 4", "yarn:factor=4");
    /* --rope-freq-scale F is --rope-scale 1/F */
    flags_ok("--rope-scaling yarn --rope-freq-scale 0.25", "yarn:factor=4");
    flags_ok("--rope-freq-scale 0.5", "pi:factor=2");
    flags_ok("--rope-scaling linear --rope-freq-scale 0.125", "pi:factor=8");
    /* YaRN's parameters; --yarn-orig-ctx 0 is llama.cpp's "the model's" */
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 2048",
             "yarn:factor=4,original_max_position_embeddings=2048");
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 0", "yarn:factor=4");
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-beta-fast 16 --yarn-beta-slow 2",
             "yarn:factor=4,beta_fast=16,beta_slow=2");
    /* ext_factor: -1 = auto (1 under yarn, 0 otherwise); the ramp is on iff it is not 0,
     * under any --rope-scaling: 0 is linear interpolation, 1 with linear is YaRN */
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-ext-factor -1", "yarn:factor=4");
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-ext-factor 1", "yarn:factor=4");
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-ext-factor 0", "pi:factor=4");
    flags_ok("--rope-scaling linear --rope-scale 4 --yarn-ext-factor 1", "yarn:factor=4");
    flags_ok("--rope-scaling linear --rope-scale 4 --yarn-ext-factor -1", "pi:factor=4");
    /* yarn_attn_factor multiplies llama.cpp's 1 + 0.1 ln s: the cos/sin scale is their product */
    flags_ok("--rope-scaling yarn --rope-scale 4 --yarn-attn-factor 1", "yarn:factor=4");
    struct method_spec s;
    char err[1024] = "";
    cr_assert_eq(spec_from_flags("--rope-scaling yarn --rope-freq-scale 0.125 --yarn-attn-factor 0.9", &s, err,
                                 sizeof err), 0, "%s", err);
    struct model_config c;
    memset(&c, 0, sizeof c);
    c.n_rot = 64;
    c.ctx_train = 4096;
    c.rope_base = 10000;
    snprintf(c.rope_scaling.type, sizeof c.rope_scaling.type, "none");
    struct method_ctx ctx = {.cfg = &c, .target_len = 8192, .seq_len = 8192};
    struct method_plan p;
    cr_assert_eq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "%s", err);
    cr_expect_eq(p.mscale, (float)(0.9 * (1.0 + 0.1 * log(8.0))), "mscale %.9g", p.mscale);
    cr_expect_eq(p.used[0], 8.0);

    flags_bad("--rope-scaling dynamic", -1, "--method dynamic_ntk");
    flags_bad("--rope-scaling dynamic --rope-scale 2", -1, "llama.cpp has no dynamic NTK");
    flags_bad("--rope-scaling yarn --yarn-ext-factor 0.5", -1, "partial mix");
    flags_bad("--yarn-beta-fast 16", -1, "apply with --rope-scaling yarn");
    flags_bad("--rope-scale 2 --yarn-orig-ctx 1024", -1, "YaRN ramp on");
    flags_bad("--rope-scaling yarn --rope-scale 2 --yarn-ext-factor 0 --yarn-attn-factor 2", -1, "YaRN ramp on");
    flags_bad("--rope-scale 2 --rope-freq-scale 0.5", -1, "give one");
    flags_bad("--rope-scaling yarn --yarn-attn-factor 2", -1, "give the factor too");
    flags_bad("--method yarn --yarn-beta-fast 16", -1, "--method cannot be combined");
    flags_bad("--rope-scaling-json {\"type\":\"linear\",\"factor\":2} --rope-freq-scale 0.5", -1, "cannot be combined");
    flags_bad("--yarn-ext-factor -2", -2, "");
    flags_bad("--yarn-orig-ctx -5", -2, "");
    flags_bad("--rope-freq-scale 0", -2, "");
    flags_bad("--yarn-beta-slow nan", -2, "");
}

/* ppl --protocol P prints what a sweep's ppl cell with ppl:protocol=P stores, for every
 * protocol of the task (and its stride and truncate options). */
Test(cli, ppl_protocol_is_the_sweep_cells_protocol, .timeout = 240) {
    char dir[256], path[512], h5[512], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_protocol");
    snprintf(path, sizeof path, "%s/text.txt", dir);
    snprintf(script, sizeof script, "head -c 30000 %s > %s", text, path);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    struct {
        const char *flags, *settings, *method;
        long windows;
    } cases[] = {
        {"--protocol windows", "protocol=windows", "baseline", 3},
        {"--protocol yarn --stride 64", "protocol=yarn,stride=64", "baseline", 3},
        {"--protocol yarn --truncate", "protocol=yarn,truncate=1", "baseline", 1},
        {"--protocol longlora --stride 96", "protocol=longlora,stride=96", "pi:factor=2", 3},
        {"--protocol llamacpp", "protocol=llamacpp", "yarn:factor=2", 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(h5, sizeof h5, "%s/cells%zu.h5", dir, c);
        snprintf(script, sizeof script,
                 "\"$BIN\" ppl -m %s -f %s -c 128 --chunks 3 -t 2 --method %s %s 2>/dev/null && "
                 "\"$BIN\" sweep -m %s --methods %s --tasks ppl --lengths 128 --data %s "
                 "--task-opt ppl:%s,max_windows=3 -t 2 -o %s >/dev/null 2>&1 && "
                 "\"$BIN\" export %s | python3 -c 'import csv,sys\n"
                 "for r in csv.DictReader(sys.stdin): print(r[\"metric\"], r[\"value\"]); print(\"settings\", "
                 "r[\"task_settings\"])'",
                 model, path, cases[c].method, cases[c].flags, model, cases[c].method, path, cases[c].settings, h5, h5);
        cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s: %s", cases[c].flags, out);
        char printed_ppl[32], printed_nll[32], printed_protocol[32], head[300];
        long windows = 0, tokens = 0;
        snprintf(head, sizeof head, "method %s ctx 128 windows %%ld tokens %%ld ppl %%31s nll %%31s tokens/s %%*s "
                 "protocol %%31s", cases[c].method);
        cr_assert(sscanf(out, head, &windows, &tokens, printed_ppl, printed_nll, printed_protocol) == 5, "%s: %s",
                  cases[c].flags, out);
        double v[4] = {NAN, NAN, NAN, NAN};
        const char *names[4] = {"ppl", "nll", "windows", "tokens_scored"};
        for (int i = 0; i < 4; i++) {
            char want[64];
            snprintf(want, sizeof want, "\n%s ", names[i]);
            const char *at = strstr(out, want);
            cr_assert(at && sscanf(at + strlen(want), "%lf", &v[i]) == 1, "no %s in: %s", names[i], out);
        }
        char stored_ppl[32], stored_nll[32];
        snprintf(stored_ppl, sizeof stored_ppl, "%.4f", v[0]);
        snprintf(stored_nll, sizeof stored_nll, "%.6f", v[1]);
        cr_expect_str_eq(printed_ppl, stored_ppl, "%s", cases[c].flags);
        cr_expect_str_eq(printed_nll, stored_nll, "%s", cases[c].flags);
        cr_expect_eq(windows, cases[c].windows, "%s", cases[c].flags);
        cr_expect_eq((double)windows, v[2], "%s", cases[c].flags);
        cr_expect_eq((double)tokens, v[3], "%s", cases[c].flags);
        /* the cell ran the protocol asked for, and ppl says which one it ran */
        char want_protocol[64];
        snprintf(want_protocol, sizeof want_protocol, "protocol=%s", printed_protocol);
        const char *cell = strstr(out, "\nsettings ");
        cr_expect(strncmp(cases[c].settings, want_protocol, strlen(want_protocol)) == 0 && cell &&
                  strstr(cell, want_protocol), "%s: %s", cases[c].flags, out);
    }
    /* the task's own checks, before the model loads */
    snprintf(script, sizeof script, "\"$BIN\" ppl -m /nonexistent.gguf -f %s --protocol nosuch", path);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "protocol=nosuch: expected one of windows, yarn, longlora, llamacpp") && one_line(out), "%s",
              out);
    snprintf(script, sizeof script, "\"$BIN\" ppl -m /nonexistent.gguf -f %s --truncate", path);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "truncate=1 applies to protocol=yarn only") && one_line(out), "%s", out);
    snprintf(script, sizeof script, "\"$BIN\" ppl -m /nonexistent.gguf -f %s --protocol 'yarn,stride=1'", path);
    cr_expect_eq(run_sh(out, sizeof out, script), 2);
    cr_expect(strstr(out, "--protocol 'yarn,stride=1' is not one of") && one_line(out), "%s", out);
    test_rm_rf(dir);
}

/* A sweep takes a Hugging Face rope_scaling like --methods takes a spec: the same cell (its
 * method text is the spec the dict maps to) and the same perplexity; a dict ctxbench cannot
 * honour stops the sweep before its results file exists. */
Test(cli, sweep_takes_a_hugging_face_rope_scaling) {
    char dir[256], a[512], b[512], c[512], out[16384], script[8192];
    test_temp_dir(dir, sizeof dir, "cli_sweep_hf");
    snprintf(a, sizeof a, "%s/hf.h5", dir);
    snprintf(b, sizeof b, "%s/spec.h5", dir);
    snprintf(c, sizeof c, "%s/refused.h5", dir);
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --rope-scaling-json '{\"rope_type\":\"yarn\",\"factor\":4}' --tasks ppl --lengths 1k "
             "-t 1 --task-opt ppl:max_tokens=2048 -o %s | tail -1 && "
             "\"$BIN\" sweep -m %s --methods yarn:factor=4 --tasks ppl --lengths 1k -t 1 --task-opt ppl:max_tokens=2048 "
             "-o %s | tail -1 && \"$BIN\" export %s | cut -d, -f4,11,12 | grep ppl && \"$BIN\" export %s | cut -d, -f4,11,12 "
             "| grep ppl",
             model, a, model, b, a, b);
    cr_assert_eq(run_sh(out, sizeof out, script), 0, "%s", out);
    char *first = strstr(out, "\"yarn:factor=4\",\"ppl\",");
    cr_assert(first, "%s", out);
    char *second = strstr(first + 1, "\"yarn:factor=4\",\"ppl\",");
    cr_assert(second, "%s", out);
    cr_expect_eq(strncmp(first, second, strcspn(first, "\n")), 0, "the same cell and value: %s", out);
    snprintf(script, sizeof script,
             "\"$BIN\" sweep -m %s --rope-scaling-json '{\"rope_type\":\"longrope\",\"factor\":4}' --tasks ppl "
             "--lengths 1k -o %s; echo \"rc=$?\"; test -e %s && echo exists",
             model, c, c);
    run_sh(out, sizeof out, script);
    cr_expect(strstr(out, "longrope") && strstr(out, "rc=2") && !strstr(out, "exists"), "%s", out);
    test_rm_rf(dir);
}
