/* Fuzzes the text parsers of the command line and the sweep: method specs and lists
 * (harness/method/method.c), task settings (harness/task/settings.c, each task's check hook), the
 * llama.cpp-style --rope-* flags and strict numbers (harness/cli/cli.c), --lengths and the
 * canonical settings text (harness/sweep/sweep.c), Hugging Face rope_scaling dicts and
 * config.json files (harness/method/hf_rope.c), and `ctxbench sweep`'s own --methods /
 * --tasks / --task-opt / --lengths / --data handling up to the point where it would
 * open the output file (harness/cli/cmd_sweep.c). The first byte picks the parser, the rest
 * is its text; for the sweep, lines are the option values. Checks beyond "no crash":
 * errors are one line, canonical texts parse back to themselves, lengths come sorted,
 * distinct and in range, and plans have finite, positive frequencies. */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>

#include "cli.h"
#include "fuzz_util.h"
#include "method.h"
#include "task.h"
#include "settings.h"
#include "sweep.h"

/* The messages quote the text they reject, as typed: a newline typed into an argument
 * comes back in the message. One line is checked when the text has no control bytes. */
static bool quoted_controls;

static void check_error(const char *err) {
    if (quoted_controls) FUZZ_CHECK(err[0] != '\0', "an error without a reason");
    else fuzz_check_error(err);
}

/* The stories260K shape: head_dim 8, 4 rotary frequencies, trained at 512 tokens. */
static const struct model_config cfg = {
    .arch = ARCH_LLAMA, .arch_name = "llama", .dim = 64, .n_layers = 5, .n_heads = 8, .n_kv_heads = 4,
    .head_dim = 8, .n_rot = 8, .ffn_dim = 172, .n_vocab = 512, .ctx_train = 512, .rope_base = 10000,
    .rms_eps = 1e-5, .rope_scaling = {.type = "none"},
};

static void check_plan(const struct method_spec *spec, int len) {
    char err[512];
    struct method_ctx ctx = {.cfg = &cfg, .target_len = len, .seq_len = len};
    struct method_plan plan;
    if (method_plan(spec, &ctx, &plan, err, sizeof err) != 0) {
        check_error(err);
        return;
    }
    FUZZ_CHECK(plan.n_freq > 0 && plan.n_freq <= ROPE_MAX_FREQ, "%s: n_freq %d", spec->text, plan.n_freq);
    for (int f = 0; f < plan.n_freq; f++)
        FUZZ_CHECK(isfinite(plan.inv_freq[f]) && plan.inv_freq[f] > 0, "%s: inv_freq[%d] = %g", spec->text, f,
                   plan.inv_freq[f]);
    FUZZ_CHECK(isfinite(plan.mscale) && plan.mscale > 0, "%s: mscale %g", spec->text, plan.mscale);
}

/* A parsed spec's canonical text parses to the same spec. */
static void check_canonical(const struct method_spec *spec) {
    char err[512];
    struct method_spec again;
    FUZZ_CHECK(method_spec_parse(spec->text, &again, err, sizeof err) == 0, "canonical '%s' rejected: %s",
               spec->text, err);
    FUZZ_CHECK(again.method == spec->method && strcmp(again.text, spec->text) == 0, "'%s' reparses as '%s'",
               spec->text, again.text);
    for (int i = 0; i < spec->method->n_params; i++)
        FUZZ_CHECK((isnan(spec->values[i]) && isnan(again.values[i])) || spec->values[i] == again.values[i],
                   "'%s': parameter %d changed on reparse", spec->text, i);
}

static void fuzz_method(const char *text, int len) {
    char err[512];
    struct method_spec spec;
    if (method_spec_parse(text, &spec, err, sizeof err) != 0) {
        check_error(err);
        return;
    }
    check_canonical(&spec);
    check_plan(&spec, len);
}

static void fuzz_method_list(const char *text, int len) {
    char err[512];
    struct method_spec *specs;
    int n;
    if (method_spec_list_parse(text, &specs, &n, err, sizeof err) != 0) {
        check_error(err);
        return;
    }
    for (int i = 0; i < n; i++) {
        check_canonical(&specs[i]);
        check_plan(&specs[i], len);
    }
    free(specs);
}

static void fuzz_settings(const char *text) {
    char err[512], canon[1024];
    struct settings s;
    if (settings_parse(text, &s, err, sizeof err) != 0) check_error(err);
    else {
        static const char *const choices[] = {"a", "bb", "ccc", NULL};
        for (int i = 0; i < s.n; i++) {
            long l;
            double d;
            int c;
            if (settings_int(&s, s.kv[i].key, 0, -1000, 1000, &l, err, sizeof err) != 0) check_error(err);
            if (settings_double(&s, s.kv[i].key, 0, -1e9, 1e9, &d, err, sizeof err) != 0) check_error(err);
            else FUZZ_CHECK(isfinite(d), "%s", s.kv[i].val);
            if (settings_choice(&s, s.kv[i].key, choices, 0, &c, err, sizeof err) != 0) check_error(err);
            FUZZ_CHECK(settings_get(&s, s.kv[i].key) != NULL, "key %s lost", s.kv[i].key);
        }
        static const char *const valid[] = {"max_tokens", "depths", "trials", NULL};
        if (settings_check_keys(&s, "fuzz", valid, err, sizeof err) != 0) check_error(err);
    }
    /* Canonical settings are a fixed point. */
    if (sweep_canonical_settings(text, canon, sizeof canon, err, sizeof err) != 0) {
        check_error(err);
        return;
    }
    char again[1024];
    FUZZ_CHECK(sweep_canonical_settings(canon, again, sizeof again, err, sizeof err) == 0, "'%s' rejected: %s",
               canon, err);
    FUZZ_CHECK(strcmp(again, canon) == 0, "'%s' canonicalises to '%s'", canon, again);
}

static void fuzz_task_settings(const char *text, int len) {
    char err[512];
    for (int i = 0; registry_tasks[i]; i++) {
        const struct task *t = registry_tasks[i];
        if (t->check && t->check(text, err, sizeof err) != 0) {
            check_error(err);
            continue;
        }
        if (t->session_tokens) FUZZ_CHECK(t->session_tokens(len, text) > 0, "%s: session_tokens <= 0", t->name);
    }
}

static void fuzz_lengths(const char *text, int ctx_train) {
    char err[512];
    int *v, n;
    if (sweep_parse_lengths(text, ctx_train, &v, &n, err, sizeof err) != 0) {
        check_error(err);
        return;
    }
    FUZZ_CHECK(n >= 1 && n <= SWEEP_MAX_LENGTHS, "%d lengths", n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(v[i] >= 2 && v[i] <= (16 << 20), "length %d", v[i]);
        FUZZ_CHECK(i == 0 || v[i] > v[i - 1], "lengths not sorted and distinct");
    }
    free(v);
}

/* --method / --rope-scaling / --rope-scale / --rope-freq-base, one "OPT VALUE" per line. */
static void fuzz_run_opts(char *text) {
    struct run_opts o;
    run_opts_init(&o);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int opt = 1002 + (unsigned char)line[0] % 6;   /* 1002..1007 */
        if (cli_run_opt(&o, opt, line + 1) < 0) return;
    }
    char err[512];
    struct method_spec spec;
    if (cli_method_spec(&o, &spec, err, sizeof err) != 0) check_error(err);
    else check_canonical(&spec);
}

static void fuzz_numbers(const char *text) {
    long l;
    double d;
    if (parse_int(text, -1000000, 1000000, &l)) FUZZ_CHECK(l >= -1000000 && l <= 1000000, "%ld", l);
    if (parse_double(text, &d)) FUZZ_CHECK(isfinite(d), "parse_double('%s') = %g", text, d);
}

/* `ctxbench sweep` with lines as --methods, --tasks, --task-opt, --lengths, --data. The
 * output lies in a folder that does not exist, so the command stops at the output
 * check, before any model or file is opened for writing. */
static void fuzz_sweep_cli(char *text) {
    static const char *const flags[] = {"--methods", "--tasks", "--task-opt", "--lengths", "--data", "--task-opt"};
    char *argv[32] = {"sweep", "-m", "/nonexistent-ctxbench-fuzz/model.gguf", "-o",
                      "/nonexistent-ctxbench-fuzz/out.h5"};
    int argc = 5;
    char *line = text;
    for (size_t f = 0; f < sizeof flags / sizeof flags[0] && line; f++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            argv[argc++] = (char *)flags[f];
            argv[argc++] = line;
        }
        line = nl ? nl + 1 : NULL;
    }
    argv[argc] = NULL;
    int rc = cmd_sweep(argc, argv);
    FUZZ_CHECK(rc == 1 || rc == 2, "sweep returned %d without a writable output", rc);
}

/* A Hugging Face rope_scaling dict (or, with the low bit of byte 2, a whole config.json
 * in a file): a mapped spec is an ordinary spec (its canonical text parses back, it plans). */
static void fuzz_hf(const char *text, size_t n, int len, bool as_config, bool known_max_pos) {
    char err[512];
    struct method_spec spec;
    int rc;
    if (as_config) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/ctxbench-fuzz-hf-%ld.json", (long)getpid());
        FILE *f = fopen(path, "wb");
        if (!f) fuzz_setup_failed(path, strerror(errno));
        fwrite(text, 1, n, f);
        fclose(f);
        double theta;
        rc = method_spec_from_hf_config(path, &spec, &theta, err, sizeof err);
        unlink(path);
    } else {
        rc = method_spec_from_hf_json(text, known_max_pos ? (double)len : NAN, &spec, err, sizeof err);
    }
    if (rc != 0) {
        check_error(err);
        return;
    }
    check_canonical(&spec);
    check_plan(&spec, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    /* byte 0: the parser; bytes 1-2: a length or trained context for those that take one */
    int len = 2 + (data[1] | data[2] << 8) * 16;
    char *text = fuzz_cstr(data + 3, size - 3);
    quoted_controls = false;
    for (const char *c = text; *c; c++) quoted_controls |= (unsigned char)*c < 0x20 || *c == 0x7f;
    switch (data[0] % 9) {
    case 0: fuzz_method(text, len); break;
    case 1: fuzz_method_list(text, len); break;
    case 2: fuzz_settings(text); break;
    case 3: fuzz_task_settings(text, len); break;
    case 4: fuzz_lengths(text, len); break;
    case 5: fuzz_run_opts(text); break;
    case 6: fuzz_numbers(text); break;
    case 8: fuzz_hf(text, size - 3, len, data[2] & 1, data[1] & 1); break;
    default: fuzz_sweep_cli(text); break;
    }
    free(text);
    return 0;
}
