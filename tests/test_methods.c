/* Extension methods: frequency tables and mscale against the published formulas
 * (evaluated here in double with plain loops), plan-level identities, and spec parsing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "method.h"
#include "testutil.h"

static const int head_dims[] = {64, 128};
static const int orig_lens[] = {512, 4096};
static const double factors[] = {2, 4, 8, 32};
#define TOL 1e-6

static struct model_config make_cfg(int d, double base, int ctx_train) {
    struct model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch_name, sizeof c.arch_name, "llama");
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = d;
    c.dim = 4 * d;
    c.n_rot = d;
    c.ctx_train = ctx_train;
    c.rope_base = base;
    snprintf(c.rope_scaling.type, sizeof c.rope_scaling.type, "none");
    return c;
}

/* Parses and plans `spec`; every failure here is a test failure. */
static struct method_plan plan_of(const char *spec, const struct model_config *c, int target_len, int seq_len) {
    struct method_spec s;
    struct method_plan p;
    char err[512] = "";
    cr_assert_eq(method_spec_parse(spec, &s, err, sizeof err), 0, "parse %s: %s", spec, err);
    struct method_ctx ctx = {.cfg = c, .target_len = target_len, .seq_len = seq_len};
    cr_assert_eq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "plan %s: %s", spec, err);
    cr_assert_eq(p.n_freq, c->n_rot / 2);
    return p;
}

/* ---- reference formulas (METHODS.md), double precision ---- */

static void ref_rope(double base, int d, double *out) {
    for (int i = 0; i < d / 2; i++) out[i] = 1.0 / pow(base, (double)(2 * i) / (double)d);
}

static void ref_pi(double base, int d, double s, double *out) {
    ref_rope(base, d, out);
    for (int i = 0; i < d / 2; i++) out[i] /= s;
}

static void ref_ntk(double base, int d, double s, double *out) {
    ref_rope(base * pow(s, (double)d / (double)(d - 2)), d, out);
}

static void ref_dynamic(double base, int d, double s, double L, double seq_len, double *out) {
    double l = seq_len > L ? seq_len : L;
    ref_rope(base * pow(s * l / L - (s - 1), (double)d / (double)(d - 2)), d, out);
}

/* HF _compute_yarn_parameters: correction dims with floor/ceil, linear ramp over the index. */
static double ref_yarn(double base, int d, double s, double L, double *out) {
    double dim_fast = d * log(L / (32.0 * 2 * M_PI)) / (2 * log(base));
    double dim_slow = d * log(L / (1.0 * 2 * M_PI)) / (2 * log(base));
    double low = floor(dim_fast), high = ceil(dim_slow);
    if (low < 0) low = 0;
    if (high > d - 1) high = d - 1;
    if (low == high) high += 0.001;
    for (int i = 0; i < d / 2; i++) {
        double ramp = (i - low) / (high - low);
        if (ramp < 0) ramp = 0;
        if (ramp > 1) ramp = 1;
        double theta = 1.0 / pow(base, (double)(2 * i) / (double)d);
        out[i] = theta / s * ramp + theta * (1 - ramp);
    }
    return s > 1 ? 0.1 * log(s) + 1 : 1.0;
}

/* HF _compute_llama3_parameters: three wavelength bands. */
static void ref_llama3(double base, int d, double s, double lo_f, double hi_f, double L, double *out) {
    for (int i = 0; i < d / 2; i++) {
        double theta = 1.0 / pow(base, (double)(2 * i) / (double)d);
        double wl = 2 * M_PI / theta;
        if (wl > L / lo_f) out[i] = theta / s;
        else if (wl < L / hi_f) out[i] = theta;
        else {
            double sm = (L / wl - lo_f) / (hi_f - lo_f);
            out[i] = (1 - sm) * theta / s + sm * theta;
        }
    }
}

static char spec_buf[128];
static const char *specf(const char *fmt, double v) {
    snprintf(spec_buf, sizeof spec_buf, fmt, v);
    return spec_buf;
}

static void check_table(const char *what, const struct method_plan *p, const double *ref, int n) {
    double e = max_rel_err(p->inv_freq, ref, (size_t)n, 1e-300);
    cr_assert(e < TOL, "%s: inv_freq max rel err %g", what, e);
}

/* ---- formula tests over the grid ---- */

Test(methods, formulas_over_grid) {
    double ref[ROPE_MAX_FREQ];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int f = 0; f < 4; f++) {
                int d = head_dims[a], L = orig_lens[b];
                double s = factors[f];
                struct model_config c = make_cfg(d, 10000, L);
                char what[96];
                snprintf(what, sizeof what, "d %d L %d s %g", d, L, s);
                struct method_plan p;

                p = plan_of(specf("pi:factor=%g", s), &c, L, L);
                ref_pi(10000, d, s, ref);
                check_table(what, &p, ref, d / 2);
                cr_assert_eq(p.mscale, 1.0f);

                p = plan_of(specf("ntk:factor=%g", s), &c, L, L);
                ref_ntk(10000, d, s, ref);
                check_table(what, &p, ref, d / 2);
                cr_assert_eq(p.mscale, 1.0f);

                /* dynamic at three lengths: below, at and beyond L */
                int lens[] = {L / 2, L, (int)(s * L), 3 * L + 17};
                for (int k = 0; k < 4; k++) {
                    p = plan_of(specf("dynamic_ntk:factor=%g", s), &c, L, lens[k]);
                    ref_dynamic(10000, d, s, L, lens[k], ref);
                    check_table(what, &p, ref, d / 2);
                    cr_assert_eq(p.mscale, 1.0f);
                }

                p = plan_of(specf("yarn:factor=%g", s), &c, L, L);
                double ms = ref_yarn(10000, d, s, L, ref);
                check_table(what, &p, ref, d / 2);
                cr_assert(fabs(p.mscale - ms) / ms < TOL, "%s: yarn mscale %g want %g", what, p.mscale, ms);

                /* The default factor is derived from the cell's length: target = s*L gives s. */
                p = plan_of("yarn", &c, (int)(s * L), (int)(s * L));
                check_table(what, &p, ref, d / 2);
                cr_assert(fabs(p.used[0] - s) == 0, "%s: derived factor %g", what, p.used[0]);
                cr_assert(strstr(p.note, "factor derived") != NULL, "%s", p.note);
                p = plan_of("pi", &c, (int)(s * L), (int)(s * L));
                ref_pi(10000, d, s, ref);
                check_table(what, &p, ref, d / 2);
                p = plan_of("ntk", &c, (int)(s * L), 1);
                ref_ntk(10000, d, s, ref);
                check_table(what, &p, ref, d / 2);

                p = plan_of(specf("llama3:factor=%g", s), &c, L, L);
                ref_llama3(10000, d, s, 1, 4, L, ref);
                check_table(what, &p, ref, d / 2);
                cr_assert_eq(p.mscale, 1.0f);
                p = plan_of(specf("llama3:factor=%g,low_freq_factor=2,high_freq_factor=16", s), &c, L, L);
                ref_llama3(10000, d, s, 2, 16, L, ref);
                check_table(what, &p, ref, d / 2);

                p = plan_of("abf", &c, L, L);
                ref_rope(500000, d, ref);
                check_table(what, &p, ref, d / 2);
                cr_assert_eq(p.mscale, 1.0f);
            }
}

/* Worked values from METHODS.md section 5 (d 128, b 1e4, L 4096): ramp over [20, 46],
 * mscale 1.0693 (s 2), 1.2773 (s 16), 1.3466 (s 32). */
Test(methods, yarn_worked_values) {
    struct model_config c = make_cfg(128, 10000, 4096);
    const double s_list[] = {2, 16, 32}, ms_list[] = {1.0693, 1.2773, 1.3466};
    for (int k = 0; k < 3; k++) {
        struct method_plan p = plan_of(specf("yarn:factor=%g", s_list[k]), &c, 4096, 4096);
        cr_assert(fabs(p.mscale - ms_list[k]) < 6e-5, "mscale %g", p.mscale);
        for (int i = 0; i < 64; i++) {
            double theta = pow(10000, -i / 64.0);
            double want = i <= 20 ? theta : i >= 46 ? theta / s_list[k] : NAN;
            if (!isnan(want))
                cr_assert(fabs(p.inv_freq[i] - want) / want < TOL, "i %d: %g want %g", i, p.inv_freq[i], want);
        }
        /* strictly between the two ends inside the ramp */
        double t30 = pow(10000, -30 / 64.0);
        cr_assert(p.inv_freq[30] < t30 && p.inv_freq[30] > t30 / s_list[k]);
    }
    /* explicit attention_factor overrides; beta values move the ramp */
    struct method_plan p = plan_of("yarn:factor=4,attention_factor=1.5", &c, 4096, 4096);
    cr_assert_eq(p.mscale, 1.5f);
    p = plan_of("yarn:factor=4,beta_fast=64,beta_slow=2", &c, 4096, 4096);
    double lo = floor(128 * log(4096 / (64 * 2 * M_PI)) / (2 * log(10000)));
    double hi = ceil(128 * log(4096 / (2 * 2 * M_PI)) / (2 * log(10000)));
    cr_assert_eq(lo, 16);   /* 16.13 -> 16 */
    cr_assert_eq(hi, 41);   /* 40.21 -> 41 */
    for (int i = 0; i < 64; i++) {
        double theta = pow(10000, -i / 64.0), r = fmin(1, fmax(0, (i - lo) / (hi - lo)));
        double want = theta / 4 * r + theta * (1 - r);
        cr_assert(fabs(p.inv_freq[i] - want) / want < TOL, "i %d", i);
    }
    /* truncate=0: no floor/ceil */
    p = plan_of("yarn:factor=4,truncate=0", &c, 4096, 4096);
    lo = 128 * log(4096 / (32 * 2 * M_PI)) / (2 * log(10000));
    hi = 128 * log(4096 / (1 * 2 * M_PI)) / (2 * log(10000));
    for (int i = 0; i < 64; i++) {
        double theta = pow(10000, -i / 64.0), r = fmin(1, fmax(0, (i - lo) / (hi - lo)));
        double want = theta / 4 * r + theta * (1 - r);
        cr_assert(fabs(p.inv_freq[i] - want) / want < TOL, "truncate=0 i %d", i);
    }
}

/* ---- plan-level identities ---- */

static void assert_same_table(const struct method_plan *a, const struct method_plan *b, const char *what) {
    cr_assert_eq(a->n_freq, b->n_freq, "%s", what);
    cr_assert(memcmp(a->inv_freq, b->inv_freq, sizeof(float) * (size_t)a->n_freq) == 0,
              "%s: inverse frequencies differ from baseline", what);
    cr_assert(memcmp(&a->mscale, &b->mscale, sizeof(float)) == 0, "%s: mscale %g vs %g", what, a->mscale,
              b->mscale);
}

Test(methods, identities_with_baseline) {
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int d = head_dims[a], L = orig_lens[b];
            struct model_config c = make_cfg(d, 10000, L);
            struct method_plan base = plan_of("baseline", &c, 4 * L, 4 * L);
            double ref[ROPE_MAX_FREQ];
            ref_rope(10000, d, ref);
            check_table("baseline", &base, ref, d / 2);
            cr_assert_eq(base.mscale, 1.0f);
            cr_assert_eq(base.swa_window, 0);
            cr_assert_eq(base.se_group, 0);

            const char *same[] = {"pi:factor=1", "ntk:factor=1", "yarn:factor=1", "abf:rope_theta=10000",
                                  "swa", "selfextend:group=1", "swa:window=7", "selfextend:group=8,window=64",
                                  "llama3:factor=1"};
            for (size_t k = 0; k < sizeof same / sizeof *same; k++) {
                struct method_plan p = plan_of(same[k], &c, 4 * L, 4 * L);
                assert_same_table(&p, &base, same[k]);
            }
            /* A derived factor of 1 (target <= L) is also the identity. */
            const char *derived[] = {"pi", "ntk", "yarn", "dynamic_ntk", "llama3"};
            for (int k = 0; k < 5; k++) {
                struct method_plan p = plan_of(derived[k], &c, L, L);
                assert_same_table(&p, &base, derived[k]);
                cr_assert_eq(p.used[0], 1.0);
            }
            /* dynamic NTK equals baseline while seq_len <= L, whatever the factor */
            const char *dyn[] = {"dynamic_ntk", "dynamic_ntk:factor=2", "dynamic_ntk:factor=3.7",
                                 "dynamic_ntk:factor=32"};
            int lens[] = {1, L / 3, L - 1, L};
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++) {
                    struct method_plan p = plan_of(dyn[k], &c, 8 * L, lens[j]);
                    assert_same_table(&p, &base, dyn[k]);
                }
            struct method_plan p = plan_of("dynamic_ntk", &c, 8 * L, L + 1);
            cr_assert(p.inv_freq[d / 2 - 1] < base.inv_freq[d / 2 - 1], "dynamic must change past L");
        }
}

Test(methods, depends_on_seq_len_flags) {
    for (const struct method *const *m = registry_methods; *m; m++)
        cr_assert_eq((*m)->depends_on_seq_len, strcmp((*m)->name, "dynamic_ntk") == 0, "%s", (*m)->name);
}

Test(methods, windows) {
    struct model_config c = make_cfg(64, 10000, 512);
    struct method_plan p = plan_of("swa", &c, 2048, 2048);
    cr_assert_eq(p.swa_window, 512);
    cr_assert_eq(p.used[0], 512);
    p = plan_of("swa:window=100", &c, 2048, 2048);
    cr_assert_eq(p.swa_window, 100);
    cr_assert_eq(p.se_group, 0);

    p = plan_of("selfextend:group=8,window=1024", &c, 2048, 2048);
    cr_assert_eq(p.se_group, 8);
    cr_assert_eq(p.se_window, 1024);
    cr_assert_eq(p.swa_window, 0);
    cr_assert_eq(p.used[0], 8);
    cr_assert_eq(p.used[1], 1024);

    /* Defaults: W = min(1024, L/4); G the smallest with floor((n-1)/G) + W - W//G <= L-1. */
    const int Ls[] = {512, 4096, 8192}, ns[] = {513, 2048, 5000, 16384, 32768};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 5; b++) {
            int L = Ls[a], n = ns[b];
            struct model_config cl = make_cfg(64, 10000, L);
            p = plan_of("selfextend", &cl, n, n);
            if (n <= L) {   /* G fitted to 1: plain attention, SelfExtend off */
                cr_assert_eq(p.used[0], 1);
                cr_assert_eq(p.se_group, 0);
                continue;
            }
            int W = L / 4 < 1024 ? L / 4 : 1024, G = p.se_group;
            cr_assert_eq(p.se_window, W, "L %d", L);
            cr_assert_eq(p.used[1], W);
            cr_assert_eq(p.used[0], G);
            cr_assert(G >= 2, "L %d n %d: G %d", L, n, G);
            cr_assert((n - 1) / G + W - W / G <= L - 1, "L %d n %d: G %d does not fit", L, n, G);
            cr_assert((n - 1) / (G - 1) + W - W / (G - 1) > L - 1, "L %d n %d: G %d not the smallest", L, n, G);
            cr_assert(strstr(p.note, "fitted") != NULL, "%s", p.note);
        }
    /* n <= L: G fitted to 1, which is plain attention: SelfExtend off */
    p = plan_of("selfextend", &c, 512, 512);
    cr_assert_eq(p.used[0], 1);
    cr_assert_eq(p.se_group, 0);
    /* a window that leaves no room in the trained range */
    struct method_spec s;
    char err[512];
    cr_assert_eq(method_spec_parse("selfextend:window=600", &s, err, sizeof err), 0);
    struct method_ctx ctx = {.cfg = &c, .target_len = 4096, .seq_len = 4096};
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "window") != NULL, "%s", err);
}

Test(methods, baseline_reads_metadata) {
    struct model_config c = make_cfg(128, 10000, 16384);
    double ref[ROPE_MAX_FREQ];
    snprintf(c.rope_scaling.type, sizeof c.rope_scaling.type, "linear");
    c.rope_scaling.factor = 4;
    struct method_plan p = plan_of("baseline", &c, 16384, 16384);
    ref_pi(10000, 128, 4, ref);
    check_table("linear metadata", &p, ref, 64);
    cr_assert(strstr(p.note, "linear") != NULL, "%s", p.note);
    /* swa and selfextend start from the model's own table too */
    struct method_plan q = plan_of("swa:window=64", &c, 16384, 16384);
    assert_same_table(&q, &p, "swa on a linear-scaled model");

    snprintf(c.rope_scaling.type, sizeof c.rope_scaling.type, "yarn");
    c.rope_scaling.factor = 4;
    c.rope_scaling.original_ctx = 4096;
    p = plan_of("baseline", &c, 16384, 16384);
    double ms = ref_yarn(10000, 128, 4, 4096, ref);
    check_table("yarn metadata", &p, ref, 64);
    cr_assert(fabs(p.mscale - ms) < 1e-6);
    cr_assert(strstr(p.note, "yarn") != NULL, "%s", p.note);

    snprintf(c.rope_scaling.type, sizeof c.rope_scaling.type, "longrope");
    p = plan_of("baseline", &c, 16384, 16384);
    ref_rope(10000, 128, ref);
    check_table("unsupported metadata", &p, ref, 64);
    cr_assert(strstr(p.note, "NOT applied") != NULL, "%s", p.note);
}

/* ---- parsing ---- */

static struct method_spec parse_ok(const char *text) {
    struct method_spec s;
    char err[512] = "";
    cr_assert_eq(method_spec_parse(text, &s, err, sizeof err), 0, "%s: %s", text, err);
    return s;
}

static void parse_bad(const char *text, char *err, size_t errlen) {
    struct method_spec s;
    err[0] = '\0';
    cr_assert_neq(method_spec_parse(text, &s, err, errlen), 0, "'%s' should be rejected", text);
    cr_assert(err[0] != '\0' && strchr(err, '\n') == NULL, "'%s': want a one-line message", text);
}

Test(parse, good_specs) {
    struct method_spec s = parse_ok("yarn");
    cr_assert_str_eq(s.method->name, "yarn");
    cr_assert_str_eq(s.text, "yarn");
    for (int i = 0; i < METHOD_MAX_PARAMS; i++) cr_assert(isnan(s.values[i]));

    s = parse_ok("yarn:factor=8");
    cr_assert_eq(s.values[0], 8);
    cr_assert_str_eq(s.text, "yarn:factor=8");

    s = parse_ok(" yarn : beta_slow=2 , factor=2.5 ");
    cr_assert_str_eq(s.text, "yarn:factor=2.5,beta_slow=2");
    cr_assert_eq(s.values[0], 2.5);
    cr_assert_eq(s.values[3], 2);

    s = parse_ok("selfextend:group=8,window=1024");
    cr_assert_str_eq(s.text, "selfextend:group=8,window=1024");
    s = parse_ok("selfextend:window=1024,group=8");
    cr_assert_str_eq(s.text, "selfextend:group=8,window=1024");

    s = parse_ok("swa:window=1e3");
    cr_assert_str_eq(s.text, "swa:window=1000");
    s = parse_ok("pi:factor=1.1");
    cr_assert_str_eq(s.text, "pi:factor=1.1");
    s = parse_ok("abf:rope_theta=1000000");
    cr_assert_str_eq(s.text, "abf:rope_theta=1000000");
    cr_assert_eq(s.values[0], 1e6);

    /* the canonical text parses back to the same spec */
    struct method_spec t = parse_ok("yarn:factor=3.14159,original_max_position_embeddings=2048,truncate=0");
    struct method_spec u = parse_ok(t.text);
    cr_assert_str_eq(u.text, t.text);
    cr_assert(memcmp(u.values, t.values, sizeof u.values) == 0 || (u.values[0] == t.values[0]));
    for (int i = 0; i < METHOD_MAX_PARAMS; i++)
        cr_assert(isnan(t.values[i]) ? isnan(u.values[i]) : t.values[i] == u.values[i]);
}

Test(parse, unknown_method_lists_methods) {
    char err[1024];
    parse_bad("nosuch:factor=2", err, sizeof err);
    cr_assert(strstr(err, "unknown method 'nosuch'") != NULL, "%s", err);
    int n = 0;
    for (const struct method *const *m = registry_methods; *m; m++, n++)
        cr_assert(strstr(err, (*m)->name) != NULL, "'%s' missing from: %s", (*m)->name, err);
    cr_assert_geq(n, 8);
    parse_bad("YARN", err, sizeof err);
    cr_assert(strstr(err, "unknown method") != NULL, "%s", err);
}

Test(parse, unknown_parameter_lists_parameters) {
    char err[1024];
    parse_bad("yarn:scale=2", err, sizeof err);
    cr_assert(strstr(err, "unknown parameter 'scale'") != NULL, "%s", err);
    const struct method *y = method_find("yarn");
    cr_assert_not_null(y);
    for (int i = 0; i < y->n_params; i++)
        cr_assert(strstr(err, y->params[i].name) != NULL, "'%s' missing from: %s", y->params[i].name, err);
    cr_assert(strstr(err, "[1, 65536]") != NULL, "range missing: %s", err);
    parse_bad("baseline:factor=2", err, sizeof err);
    cr_assert(strstr(err, "unknown parameter") != NULL && strstr(err, "none") != NULL, "%s", err);
}

Test(parse, out_of_range_and_non_integer) {
    char err[1024];
    parse_bad("yarn:factor=0.5", err, sizeof err);
    cr_assert(strstr(err, "factor=0.5") && strstr(err, "out of range") && strstr(err, "[1, 65536]"), "%s", err);
    parse_bad("yarn:truncate=2", err, sizeof err);
    cr_assert(strstr(err, "truncate=2") && strstr(err, "[0, 1]"), "%s", err);
    parse_bad("swa:window=0", err, sizeof err);
    cr_assert(strstr(err, "window=0") && strstr(err, "out of range"), "%s", err);
    parse_bad("selfextend:group=2.5", err, sizeof err);
    cr_assert(strstr(err, "group=2.5") && strstr(err, "not an integer") && strstr(err, "int in [1, 65536]"),
              "%s", err);
    parse_bad("pi:original_max_position_embeddings=4096.5", err, sizeof err);
    cr_assert(strstr(err, "not an integer"), "%s", err);
}

Test(parse, malformed) {
    char err[1024];
    const char *bad[] = {"", "   ", ":factor=2", "yarn:", "yarn:factor", "yarn:factor=", "yarn:=2",
                         "yarn:factor=abc", "yarn:factor=2x", "yarn:factor=nan", "yarn:factor=inf",
                         "yarn:factor=2,", "yarn:factor=2,,beta_fast=3", "yarn:factor=2:3",
                         "yarn:factor=2,factor=3", "yarn:beta_fast=1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) parse_bad(bad[i], err, sizeof err);
    parse_bad("yarn:factor=abc", err, sizeof err);
    cr_assert(strstr(err, "'abc'") && strstr(err, "factor") && strstr(err, "[1, 65536]"), "%s", err);
    parse_bad("yarn:factor", err, sizeof err);
    cr_assert(strstr(err, "malformed") && strstr(err, "beta_fast"), "%s", err);
    parse_bad("yarn:factor=2,factor=3", err, sizeof err);
    cr_assert(strstr(err, "twice"), "%s", err);
    parse_bad(":factor=2", err, sizeof err);
    cr_assert(strstr(err, "baseline") && strstr(err, "selfextend"), "%s", err);
    /* a tiny error buffer truncates, never overflows */
    char small[8];
    struct method_spec s;
    cr_assert_neq(method_spec_parse("nosuch", &s, small, sizeof small), 0);
    cr_assert_eq(strlen(small), 7);
}

static void list_ok(const char *text, int want_n, const char *const *want) {
    struct method_spec *specs = NULL;
    int n = -1;
    char err[1024] = "";
    cr_assert_eq(method_spec_list_parse(text, &specs, &n, err, sizeof err), 0, "%s: %s", text, err);
    cr_assert_eq(n, want_n, "%s: %d methods", text, n);
    for (int i = 0; i < n; i++) cr_assert_str_eq(specs[i].text, want[i], "%s: item %d", text, i);
    free(specs);
}

static void list_bad(const char *text, const char *want_in_err) {
    struct method_spec *specs = (struct method_spec *)1;
    int n = -1;
    char err[1024] = "";
    cr_assert_neq(method_spec_list_parse(text, &specs, &n, err, sizeof err), 0, "'%s' should be rejected", text);
    cr_assert_null(specs);
    cr_assert_eq(n, 0);
    cr_assert(strstr(err, want_in_err) != NULL, "'%s': %s", text, err);
}

Test(parse, lists) {
    list_ok("selfextend:group=8,window=1024,yarn:factor=4,pi", 3,
            (const char *const[]){"selfextend:group=8,window=1024", "yarn:factor=4", "pi"});
    list_ok("baseline,pi,ntk,dynamic_ntk,yarn,abf,selfextend,swa,llama3", 9,
            (const char *const[]){"baseline", "pi", "ntk", "dynamic_ntk", "yarn", "abf", "selfextend", "swa",
                                  "llama3"});
    list_ok("yarn,factor=4", 1, (const char *const[]){"yarn:factor=4"});
    list_ok("yarn:factor=2,yarn:factor=4,beta_fast=16", 2,
            (const char *const[]){"yarn:factor=2", "yarn:factor=4,beta_fast=16"});
    list_ok(" pi , swa:window=64 ", 2, (const char *const[]){"pi", "swa:window=64"});
    list_ok("abf", 1, (const char *const[]){"abf"});

    list_bad("", "empty");
    list_bad("factor=2,pi", "before any method");
    list_bad("pi,,ntk", "empty item");
    list_bad("pi,", "empty item");
    list_bad("pi,pi", "twice");
    list_bad("yarn:factor=2,factor=2", "twice");
    list_bad("pi,yarn:bogus=1", "unknown parameter 'bogus'");
    list_bad("pi,nosuch", "unknown method 'nosuch'");
    list_bad("pi:factor=0", "out of range");
}

/* ---- planner checks ---- */

Test(plan, rejects_bad_configs_and_derived_values) {
    struct method_spec s = parse_ok("pi");
    struct method_plan p;
    char err[512];
    const int bad_rot[] = {0, 3, -2, 2 * ROPE_MAX_FREQ + 2};
    for (int i = 0; i < 4; i++) {
        struct model_config c = make_cfg(64, 10000, 512);
        c.n_rot = bad_rot[i];
        struct method_ctx ctx = {.cfg = &c, .target_len = 512, .seq_len = 512};
        cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "n_rot %d", bad_rot[i]);
        cr_assert(strstr(err, "n_rot") != NULL, "%s", err);
    }
    struct model_config c = make_cfg(2 * ROPE_MAX_FREQ, 10000, 512);
    struct method_ctx ctx = {.cfg = &c, .target_len = 512, .seq_len = 512};
    cr_assert_eq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p.n_freq, ROPE_MAX_FREQ);

    /* a derived factor outside the parameter's range is refused like a given one */
    c = make_cfg(64, 10000, 1);
    ctx = (struct method_ctx){.cfg = &c, .target_len = 100000, .seq_len = 1};
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "derived factor") != NULL, "%s", err);

    c = make_cfg(64, 10000, 512);
    ctx.target_len = 0;
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    c.rope_base = 0;
    ctx.target_len = 512;
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);

    /* hand-built specs are range-checked too */
    c = make_cfg(64, 10000, 512);
    s.values[0] = 0.25;
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "out of range") != NULL, "%s", err);

    /* ntk needs d > 2; yarn needs beta_fast > beta_slow */
    c = make_cfg(2, 10000, 512);
    s = parse_ok("ntk:factor=2");
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    c = make_cfg(64, 10000, 512);
    s = parse_ok("yarn:beta_fast=1,beta_slow=2");
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "beta_fast") != NULL, "%s", err);
    s = parse_ok("llama3:low_freq_factor=4,high_freq_factor=4");
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "high_freq_factor") != NULL, "%s", err);
}

Test(plan, used_values_and_forward_view) {
    struct model_config c = make_cfg(64, 10000, 512);
    struct method_plan p = plan_of("yarn", &c, 2048, 2048);
    cr_assert_eq(p.used[0], 4);        /* factor derived 2048/512 */
    cr_assert_eq(p.used[1], 512);      /* original_max_position_embeddings */
    cr_assert_eq(p.used[2], 32);
    cr_assert_eq(p.used[3], 1);
    cr_assert(fabs(p.used[4] - (0.1 * log(4) + 1)) < 1e-12);
    cr_assert_eq(p.used[5], 1);
    cr_assert(strstr(p.note, "2048/512") != NULL, "%s", p.note);
    for (int i = 6; i < METHOD_MAX_PARAMS; i++) cr_assert(isnan(p.used[i]));

    p = plan_of("selfextend:group=4,window=32", &c, 2048, 2048);
    struct forward_plan f = method_forward_plan(&p);
    cr_assert_eq(f.inv_freq, p.inv_freq);
    cr_assert_eq(f.mscale, p.mscale);
    cr_assert_eq(f.se_group, 4);
    cr_assert_eq(f.se_window, 32);
    cr_assert_eq(f.swa_window, 0);
    p = plan_of("swa:window=9", &c, 2048, 2048);
    f = method_forward_plan(&p);
    cr_assert_eq(f.swa_window, 9);
}

Test(plan, every_method_plans_with_defaults) {
    struct model_config c = make_cfg(64, 10000, 512);
    for (const struct method *const *m = registry_methods; *m; m++) {
        struct method_plan p = plan_of((*m)->name, &c, 2048, 2048);
        for (int i = 0; i < (*m)->n_params; i++)
            cr_assert(!isnan(p.used[i]), "%s: used[%d] not reported", (*m)->name, i);
        cr_assert(p.note[0] != '\0', "%s: no note", (*m)->name);
        cr_assert((*m)->summary && (*m)->help && (*m)->plan);
    }
}

/* A parameter's declared default is written once, in its method's table. For every method
 * and every parameter with a declared (non-NAN) default, leaving the parameter out and
 * giving the table's default explicitly must give bit-identical plans, and the plan must
 * report the table's value as used: a planner that falls back on a constant of its own
 * that differs from its table fails here. */
Test(plan, declared_defaults_are_the_tables) {
    struct { int d; double base; int L, target_len, seq_len; } cells[] = {
        {64, 10000, 512, 2048, 2048},     /* extended 4x */
        {128, 500000, 4096, 8192, 1000},  /* seq_len < L: dynamic_ntk at its base */
        {128, 10000, 4096, 4096, 4096},   /* no extension */
    };
    int n_checked = 0;
    for (size_t k = 0; k < sizeof cells / sizeof cells[0]; k++) {
        struct model_config c = make_cfg(cells[k].d, cells[k].base, cells[k].L);
        for (const struct method *const *mp = registry_methods; *mp; mp++) {
            const struct method *m = *mp;
            struct method_plan implicit = plan_of(m->name, &c, cells[k].target_len, cells[k].seq_len);
            for (int i = 0; i < m->n_params; i++) {
                const struct method_param *par = &m->params[i];
                if (isnan(par->def)) continue;
                char spec[160];
                snprintf(spec, sizeof spec, "%s:%s=%.17g", m->name, par->name, par->def);
                struct method_plan explicit = plan_of(spec, &c, cells[k].target_len, cells[k].seq_len);
                cr_assert_eq(implicit.used[i], par->def, "%s: %s used %.17g when not given, table default %.17g",
                             m->name, par->name, implicit.used[i], par->def);
                cr_assert(memcmp(implicit.inv_freq, explicit.inv_freq, sizeof implicit.inv_freq) == 0,
                          "%s: inv_freq differs between the default and %s", m->name, spec);
                cr_assert(memcmp(&implicit.mscale, &explicit.mscale, sizeof implicit.mscale) == 0,
                          "%s: mscale %.9g by default, %.9g with %s", m->name, (double)implicit.mscale,
                          (double)explicit.mscale, spec);
                cr_assert(implicit.swa_window == explicit.swa_window && implicit.se_group == explicit.se_group &&
                          implicit.se_window == explicit.se_window, "%s: windows differ with %s", m->name, spec);
                cr_assert(memcmp(implicit.used, explicit.used, sizeof implicit.used) == 0,
                          "%s: used values differ between the default and %s", m->name, spec);
                n_checked++;
            }
        }
    }
    cr_assert(n_checked > 0, "no method declares a default: the test checked nothing");
}

/* A method of this test only (not in the registry): its planner writes the values it was
 * handed into the note, so the test sees what method_plan passes to a plan hook. */
static int plan_show_values(const struct method_ctx *ctx, const double *values, struct method_plan *out,
                            char *err, size_t errlen) {
    (void)err; (void)errlen;
    for (int i = 0; i < ctx->cfg->n_rot / 2; i++) out->inv_freq[i] = 1.0f;
    snprintf(out->note, sizeof out->note, "%g %g %g", values[0], values[1], values[2]);
    for (int i = 0; i < 3; i++) out->used[i] = isnan(values[i]) ? 5 : values[i];   /* 5: "derived" */
    return 0;
}

static struct method show_values_method(double def_a) {
    struct method m = {
        .name = "show_values",
        .summary = "test method",
        .help = "writes the values its planner receives into the note",
        .n_params = 3,
        .params = {
            {"a", MPARAM_FLOAT, def_a, 1, 10, "declared default"},
            {"b", MPARAM_INT, NAN, 1, 10, "derived default"},
            {"c", MPARAM_INT, 3, 1, 10, "declared default"},
        },
        .plan = plan_show_values,
    };
    return m;
}

/* method_plan applies declared defaults before the hook runs: the hook gets the user's
 * value, else the table's default, and NAN only where the default is derived. A declared
 * default is checked against its range like a given value. */
Test(plan, hook_receives_declared_defaults) {
    struct model_config c = make_cfg(64, 10000, 512);
    struct method_ctx ctx = {.cfg = &c, .target_len = 512, .seq_len = 512};
    struct method m = show_values_method(2);
    struct method_spec s;
    memset(&s, 0, sizeof s);
    s.method = &m;
    for (int i = 0; i < METHOD_MAX_PARAMS; i++) s.values[i] = NAN;
    s.values[2] = 7;
    struct method_plan p;
    char err[512] = "";
    cr_assert_eq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.note, "2 nan 7");
    cr_assert(p.used[0] == 2 && p.used[1] == 5 && p.used[2] == 7);
    cr_assert(isnan(s.values[0]) && isnan(s.values[1]), "the caller's spec was changed");

    s.values[0] = 4;
    s.values[2] = NAN;
    cr_assert_eq(method_plan(&s, &ctx, &p, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.note, "4 nan 3");

    /* a table default outside its own range is refused, in one line naming it */
    m = show_values_method(20);
    s.values[0] = NAN;
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "show_values: default a=20 is out of range") != NULL, "%s", err);
    cr_assert(strchr(err, '\n') == NULL, "%s", err);
    m = show_values_method(NAN);
    m.params[2].def = 2.5;   /* not an integer, for an INT parameter */
    cr_assert_neq(method_plan(&s, &ctx, &p, err, sizeof err), 0);
    cr_assert(strstr(err, "default c=2.5 is not an integer") != NULL, "%s", err);
}

Test(listing, print_all_names_everything) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    method_print_all(f);
    fclose(f);
    for (const struct method *const *m = registry_methods; *m; m++) {
        cr_assert(strstr(buf, (*m)->summary) != NULL, "%s summary missing", (*m)->name);
        for (int i = 0; i < (*m)->n_params; i++)
            cr_assert(strstr(buf, (*m)->params[i].name) != NULL, "%s.%s missing", (*m)->name,
                      (*m)->params[i].name);
    }
    cr_assert(strstr(buf, "default derived") != NULL);
    cr_assert(strstr(buf, "[1, 65536]") != NULL);
    free(buf);
}

Test(methods, model_sliding_window_applies_under_every_method) {
    struct model_config c = make_cfg(128, 10000, 4096);
    c.sliding_window = 1024;
    const char *specs[] = {"baseline", "pi", "yarn", "selfextend", "dynamic_ntk"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct method_plan p = plan_of(specs[i], &c, 8192, 8192);
        cr_assert_eq(p.swa_window, 1024, "%s: window %d", specs[i], p.swa_window);
        cr_assert(strstr(p.note, "sliding window 1024") != NULL, "%s: %s", specs[i], p.note);
    }
    struct method_plan q = plan_of("swa:window=64", &c, 8192, 8192);
    cr_assert_eq(q.swa_window, 64, "an explicit swa window wins over the model's");
    c.sliding_window = 0;
    struct method_plan r = plan_of("baseline", &c, 8192, 8192);
    cr_assert_eq(r.swa_window, 0);
}

/* A file's rope_freqs (llama.cpp freq_factors) are part of the model's own frequencies:
 * every method's table is its table without them divided by ff_i, exactly what
 * llama.cpp computes under the same settings, and llama3, whose bands would apply a
 * second set of factors, is refused. */
Test(methods, file_rope_freqs_divide_every_method_and_llama3_is_refused) {
    struct model_config plain = make_cfg(128, 500000, 8192);
    float ff[64];
    for (int i = 0; i < 64; i++) ff[i] = i < 20 ? 1.0f : i < 40 ? 1.0f + 7.0f * (float)(i - 20) / 20.0f : 8.0f;
    struct model_config c = plain;
    c.rope_freqs = ff;
    for (const struct method *const *m = registry_methods; *m; m++) {
        if ((*m)->own_freq_factors) continue;
        struct method_plan without = plan_of((*m)->name, &plain, 32768, 32768);
        struct method_plan with = plan_of((*m)->name, &c, 32768, 32768);
        cr_assert(!without.rope_freqs_applied && with.rope_freqs_applied, "%s", (*m)->name);
        cr_assert(strstr(with.note, "rope_freqs applied") != NULL, "%s: %s", (*m)->name, with.note);
        cr_assert(strstr(with.note, "[1, 8]") != NULL, "%s: %s", (*m)->name, with.note);
        cr_assert(strstr(with.note, "plain RoPE") == NULL, "%s: %s", (*m)->name, with.note);
        double ref[64];
        for (int i = 0; i < 64; i++) ref[i] = (double)without.inv_freq[i] / ff[i];
        double e = max_rel_err(with.inv_freq, ref, 64, 1e-300);
        cr_assert(e < 1e-7, "%s: inv_freq / rope_freqs max rel err %g", (*m)->name, e);
        cr_assert_eq(with.mscale, without.mscale, "%s", (*m)->name);
    }
    /* the factors apply against the published formula too, not only against our own table */
    struct method_plan p = plan_of("pi:factor=4", &c, 32768, 32768);
    double ref[64];
    ref_pi(500000, 128, 4, ref);
    for (int i = 0; i < 64; i++) ref[i] /= ff[i];
    cr_assert(max_rel_err(p.inv_freq, ref, 64, 1e-300) < TOL);

    struct method_spec s;
    struct method_plan q;
    char err[512] = "";
    cr_assert_eq(method_spec_parse("llama3:factor=8", &s, err, sizeof err), 0, "%s", err);
    cr_assert(s.method->own_freq_factors);
    struct method_ctx ctx = {.cfg = &c, .target_len = 32768, .seq_len = 32768};
    cr_assert_neq(method_plan(&s, &ctx, &q, err, sizeof err), 0, "llama3 scaled the file's factors again");
    cr_assert(strstr(err, "rope_freqs.weight") && strstr(err, "twice"), "%s", err);
    ctx.cfg = &plain;
    cr_assert_eq(method_plan(&s, &ctx, &q, err, sizeof err), 0, "%s", err);
}

/* ---- Hugging Face names and rope_scaling dicts ---- */

Test(hf, aliases_are_the_methods) {
    const char *alias[][2] = {{"linear", "pi"}, {"dynamic", "dynamic_ntk"}, {"default", "baseline"}};
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(method_find(alias[i][0]), "%s", alias[i][0]);
        cr_assert_eq(method_find(alias[i][0]), method_find(alias[i][1]), "%s", alias[i][0]);
    }
    /* specs record the method's own name, so results do not depend on the spelling */
    struct method_spec s = parse_ok("linear:factor=4");
    cr_assert_str_eq(s.text, "pi:factor=4");
    s = parse_ok("dynamic:factor=2");
    cr_assert_str_eq(s.text, "dynamic_ntk:factor=2");
    s = parse_ok("default");
    cr_assert_str_eq(s.text, "baseline");
    struct method_spec *list = NULL;
    int n = 0;
    char err[1024] = "";
    cr_assert_eq(method_spec_list_parse("linear:factor=2,default,dynamic", &list, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[0].text, "pi:factor=2");
    cr_assert_str_eq(list[1].text, "baseline");
    cr_assert_str_eq(list[2].text, "dynamic_ntk");
    free(list);
    list_bad("pi:factor=2,linear:factor=2", "listed twice");
    parse_bad("lineal", err, sizeof err);
    cr_assert(strstr(err, "linear = pi") && strstr(err, "dynamic = dynamic_ntk"), "%s", err);
    /* the listing names them */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    method_print_all(f);
    fclose(f);
    cr_assert(strstr(buf, "linear    = pi\n") && strstr(buf, "dynamic   = dynamic_ntk\n") &&
              strstr(buf, "default   = baseline\n"), "%s", buf);
    free(buf);
}

static struct method_spec hf_ok(const char *json, double max_pos, const char *want_text) {
    struct method_spec s;
    char err[1024] = "";
    cr_assert_eq(method_spec_from_hf_json(json, max_pos, &s, err, sizeof err), 0, "%s: %s", json, err);
    cr_assert_str_eq(s.text, want_text, "%s", json);
    return s;
}

static void hf_bad(const char *json, const char *want_in_err) {
    struct method_spec s;
    char err[1024] = "";
    cr_assert_neq(method_spec_from_hf_json(json, NAN, &s, err, sizeof err), 0, "%s accepted", json);
    cr_assert(strstr(err, want_in_err) && !strchr(err, '\n'), "%s: want '%s' in one line: %s", json, want_in_err,
              err);
}

/* The plan of an HF dict is the plan of the explicit spec, bit for bit, and that plan is
 * HF's formula (the references above). */
static void hf_same_plan(const struct method_spec *s, const char *explicit_spec, const struct model_config *c) {
    struct method_plan p, q;
    char err[512] = "";
    struct method_ctx ctx = {.cfg = c, .target_len = 16384, .seq_len = 16384};
    cr_assert_eq(method_plan(s, &ctx, &p, err, sizeof err), 0, "%s", err);
    q = plan_of(explicit_spec, c, 16384, 16384);
    assert_same_table(&p, &q, explicit_spec);
}

Test(hf, each_key_maps_with_hf_semantics) {
    struct model_config c = make_cfg(128, 10000, 4096);
    double ref[ROPE_MAX_FREQ];
    struct method_spec s = hf_ok("{\"rope_type\":\"default\"}", NAN, "baseline");
    hf_same_plan(&s, "baseline", &c);

    /* linear: inv_freq / factor; the legacy "type" key; original_max_position_embeddings
     * is accepted and unused, as in HF */
    s = hf_ok("{\"type\":\"linear\",\"factor\":4}", NAN, "pi:factor=4");
    hf_same_plan(&s, "pi:factor=4", &c);
    struct method_plan p = plan_of(s.text, &c, 16384, 16384);
    ref_pi(10000, 128, 4, ref);
    check_table("hf linear", &p, ref, 64);
    hf_ok("{\"rope_type\":\"linear\",\"factor\":2.5,\"original_max_position_embeddings\":1024}", 2048,
          "pi:factor=2.5");

    /* dynamic: L = config.max_position_embeddings (the dict's original_max_position_embeddings
     * is not read by HF's dynamic) */
    s = hf_ok("{\"rope_type\":\"dynamic\",\"factor\":2}", NAN, "dynamic_ntk:factor=2");
    hf_same_plan(&s, "dynamic_ntk:factor=2", &c);
    s = hf_ok("{\"rope_type\":\"dynamic\",\"factor\":2,\"original_max_position_embeddings\":1024}", 2048,
              "dynamic_ntk:factor=2,original_max_position_embeddings=2048");
    p = plan_of(s.text, &c, 16384, 16384);
    ref_dynamic(10000, 128, 2, 2048, 16384, ref);
    check_table("hf dynamic", &p, ref, 64);

    /* yarn: every key; absent original_max_position_embeddings = config.max_position_embeddings */
    s = hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":4096}", 32768,
              "yarn:factor=4,original_max_position_embeddings=4096");
    hf_same_plan(&s, "yarn:factor=4,original_max_position_embeddings=4096", &c);
    p = plan_of(s.text, &c, 16384, 16384);
    double mscale = ref_yarn(10000, 128, 4, 4096, ref);
    check_table("hf yarn", &p, ref, 64);
    cr_assert_float_eq(p.mscale, mscale, 1e-6);
    hf_ok("{\"rope_type\":\"yarn\",\"factor\":4}", 2048, "yarn:factor=4,original_max_position_embeddings=2048");
    hf_ok("{\"rope_type\":\"yarn\",\"factor\":4}", NAN, "yarn:factor=4");
    /* beta_fast/beta_slow: `get(k) or default`, so 0 and null are HF's 32 and 1 */
    s = hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"beta_fast\":0,\"beta_slow\":null}", NAN, "yarn:factor=4");
    hf_same_plan(&s, "yarn:factor=4,beta_fast=32,beta_slow=1", &c);
    s = hf_ok("{\"rope_type\":\"yarn\",\"factor\":8,\"beta_fast\":16,\"beta_slow\":2}", NAN,
              "yarn:factor=8,beta_fast=16,beta_slow=2");
    hf_same_plan(&s, "yarn:factor=8,beta_fast=16,beta_slow=2", &c);
    /* attention_factor overrides mscale; null means the default 0.1 ln s + 1 */
    s = hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"attention_factor\":1.5}", NAN, "yarn:factor=4,attention_factor=1.5");
    p = plan_of(s.text, &c, 16384, 16384);
    cr_assert_eq(p.mscale, 1.5f);
    hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"attention_factor\":null}", NAN, "yarn:factor=4");
    /* truncate: a boolean; null is falsy in HF (`if truncate:`) */
    hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"truncate\":true}", NAN, "yarn:factor=4,truncate=1");
    s = hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"truncate\":false}", NAN, "yarn:factor=4,truncate=0");
    hf_same_plan(&s, "yarn:factor=4,truncate=0", &c);
    hf_ok("{\"rope_type\":\"yarn\",\"factor\":4,\"truncate\":null}", NAN, "yarn:factor=4,truncate=0");

    /* llama3: all four keys, as Llama 3.1's config has them */
    struct model_config c3 = make_cfg(128, 500000, 8192);
    s = hf_ok("{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
              "\"original_max_position_embeddings\":8192}", 131072,
              "llama3:factor=8,low_freq_factor=1,high_freq_factor=4,original_max_position_embeddings=8192");
    hf_same_plan(&s, "llama3:factor=8,low_freq_factor=1,high_freq_factor=4,original_max_position_embeddings=8192", &c3);
    ref_llama3(500000, 128, 8, 1, 4, 8192, ref);
    p = plan_of(s.text, &c3, 16384, 16384);
    check_table("hf llama3", &p, ref, 64);
    /* a value that is not a short decimal reaches the method unchanged */
    hf_ok("{\"type\":\"linear\",\"factor\":3.3333333333333335}", NAN, "pi:factor=3.3333333333333335");
}

Test(hf, refusals_say_why_in_one_line) {
    hf_bad("{\"rope_type\":\"longrope\",\"factor\":4,\"long_factor\":[1],\"short_factor\":[1]}", "LongRoPE");
    hf_bad("{\"type\":\"su\",\"factor\":4}", "LongRoPE");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":40,\"mscale\":1.0,\"mscale_all_dim\":1.0}", "DeepSeek");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":40,\"mscale_all_dim\":0.707}", "mscale_all_dim");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":4,\"low_freq_factor\":1}", "key 'low_freq_factor'");
    hf_bad("{\"rope_type\":\"linear\",\"factor\":4,\"beta_fast\":32}", "key 'beta_fast'");
    hf_bad("{\"rope_type\":\"default\",\"factor\":4}", "key 'factor'");
    hf_bad("{\"rope_type\":\"ntk\",\"factor\":4}", "unknown rope_type 'ntk'");
    hf_bad("{\"factor\":4}", "neither rope_type nor type");
    hf_bad("{\"rope_type\":\"yarn\",\"type\":\"linear\",\"factor\":4}", "disagree");
    hf_bad("{\"rope_type\":\"linear\"}", "requires factor");
    hf_bad("{\"rope_type\":\"dynamic\",\"factor\":null}", "requires factor");
    hf_bad("{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4}",
           "requires original_max_position_embeddings");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":\"4\"}", "factor must be a number");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":4,\"truncate\":1}", "truncate must be true or false");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":4,\"factor\":8}", "given twice");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":0.5}", "factor=0.5 is out of range");
    hf_bad("{\"rope_type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":4096.5}", "not an integer");
    hf_bad("{\"rope_type\":\"yarn\",", "ends early");
    hf_bad("{\"rope_type\":\"yarn\"} x", "near 'x'");
    hf_bad("[\"yarn\"]", "must be a JSON object");
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

Test(hf, config_json) {
    char dir[] = "/tmp/ctxbench-hf-XXXXXX", path[256], err[1024] = "";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct method_spec s;
    double theta = 0;
    /* transformers 4.x: rope_scaling beside rope_theta and max_position_embeddings */
    write_file(path, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,\"max_position_embeddings\":32768,"
                     "\"rope_scaling\":{\"factor\":8.0,\"type\":\"yarn\"},\"rope_theta\":10000.0,"
                     "\"nested\":{\"a\":[1,2,{\"b\":null}]}}");
    cr_assert_eq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.text, "yarn:factor=8,original_max_position_embeddings=32768");
    cr_assert_eq(theta, 10000.0);
    /* v5: rope_parameters holds rope_theta too */
    write_file(path, "{\"max_position_embeddings\":8192,\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":2,"
                     "\"rope_theta\":500000}}");
    cr_assert_eq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.text, "dynamic_ntk:factor=2,original_max_position_embeddings=8192");
    cr_assert_eq(theta, 500000.0);
    /* no scaling: the model's own RoPE; no rope_theta: NAN */
    write_file(path, "{\"rope_scaling\":null}");
    cr_assert_eq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.text, "baseline");
    cr_assert(isnan(theta));
    /* refusals name the file */
    write_file(path, "{\"rope_scaling\":{\"type\":\"linear\",\"factor\":2},\"rope_parameters\":{\"rope_type\":\"default\"}}");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "both rope_scaling and rope_parameters") && strstr(err, path), "%s", err);
    write_file(path, "{\"rope_theta\":10000,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":20000}}");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "rope_theta differs"), "%s", err);
    write_file(path, "{\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":4}}");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, path) && strstr(err, "LongRoPE") && !strchr(err, '\n'), "%s", err);
    write_file(path, "{\"rope_theta\":\"big\"}");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "rope_theta must be a number"), "%s", err);
    write_file(path, "{\"rope_scaling\":");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "not a JSON object (") && !strchr(err, '\n'), "%s", err);
    write_file(path, "{\"rope_scaling\": nul}");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "not a JSON object (malformed near 'nul}')"), "%s", err);
    write_file(path, "[{\"rope_scaling\": null}]");
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, "not a JSON object") && !strstr(err, "malformed") && !strchr(err, '\n'), "%s", err);
    unlink(path);
    cr_assert_neq(method_spec_from_hf_config(path, &s, &theta, err, sizeof err), 0);
    cr_assert(strstr(err, path), "%s", err);
    rmdir(dir);
}
