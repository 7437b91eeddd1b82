#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"
#include "store.h"

void run_opts_init(struct run_opts *o) {
    memset(o, 0, sizeof *o);
    o->backend = "auto";
    o->device = -1;
    o->yarn_orig_ctx = -1;
    o->yarn_ext_factor = o->yarn_attn_factor = o->yarn_beta_fast = o->yarn_beta_slow = NAN;
}

void cli_llamacpp_aliases(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-ctk") == 0) argv[i] = (char *)"--cache-type-k";
        else if (strcmp(argv[i], "-ctv") == 0) argv[i] = (char *)"--cache-type-v";
    }
}

bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);   /* strtol skips leading blanks: refuse them here */
    if (errno || end == s || *end || isspace((unsigned char)s[0]) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isspace((unsigned char)s[0]) || !isfinite(v)) return false;
    *out = v;
    return true;
}

int cli_run_opt(struct run_opts *o, int opt, const char *arg) {
    long v;
    switch (opt) {
    case 'm': o->model = arg; return 1;
    case 't':
        if (!parse_int(arg, 1, 1024, &v)) {
            fprintf(stderr, "ctxbench: -t expects a thread count in 1..1024, got '%s'\n", ECHO(arg));
            return -1;
        }
        o->threads = (int)v;
        return 1;
    case 1001: o->backend = arg; return 1;
    case 1002: o->method = arg; return 1;
    case 1003: o->rope_scaling = arg; return 1;
    case 1004:
        if (!parse_double(arg, &o->rope_scale) || o->rope_scale <= 0) {
            fprintf(stderr, "ctxbench: --rope-scale expects a positive number, got '%s'\n", ECHO(arg));
            return -1;
        }
        return 1;
    case 1005:
        if (!parse_double(arg, &o->rope_freq_base) || o->rope_freq_base <= 1) {
            fprintf(stderr, "ctxbench: --rope-freq-base expects a number > 1, got '%s'\n", ECHO(arg));
            return -1;
        }
        return 1;
    case 1006:
    case 1007:
        if (!parse_int(arg, 1, 1 << 16, &v)) {
            fprintf(stderr, "ctxbench: tile sizes must be in 1..65536, got '%s'\n", ECHO(arg));
            return -1;
        }
        if (opt == 1006) o->tile_q = (int)v; else o->tile_k = (int)v;
        return 1;
    case 1011:
        if (!parse_double(arg, &o->rope_freq_scale) || !(o->rope_freq_scale > 0)) {
            fprintf(stderr, "ctxbench: --rope-freq-scale expects a positive number, got '%s'\n", ECHO(arg));
            return -1;
        }
        return 1;
    case 1012:
        if (!parse_int(arg, 0, 16777216, &o->yarn_orig_ctx)) {
            fprintf(stderr, "ctxbench: --yarn-orig-ctx expects a context length in 0..16777216 (0: the model's), "
                    "got '%s'\n", ECHO(arg));
            return -1;
        }
        return 1;
    case 1013:
        if (!parse_double(arg, &o->yarn_ext_factor) || (o->yarn_ext_factor < 0 && o->yarn_ext_factor != -1)) {
            fprintf(stderr, "ctxbench: --yarn-ext-factor expects -1 (auto) or a number >= 0, got '%s'\n", ECHO(arg));
            return -1;
        }
        return 1;
    case 1014:
    case 1015:
    case 1016: {
        double *dst = opt == 1014 ? &o->yarn_attn_factor : opt == 1015 ? &o->yarn_beta_fast : &o->yarn_beta_slow;
        if (!parse_double(arg, dst) || !(*dst > 0)) {
            fprintf(stderr, "ctxbench: --%s expects a positive number, got '%s'\n",
                    opt == 1014 ? "yarn-attn-factor" : opt == 1015 ? "yarn-beta-fast" : "yarn-beta-slow", ECHO(arg));
            return -1;
        }
        return 1;
    }
    case 1017:
    case 1018:
        if (!kv_type_parse(arg, opt == 1017 ? &o->kv.k : &o->kv.v)) {
            fprintf(stderr, "ctxbench: --cache-type-%c (-ct%c) expects one of " KV_TYPE_NAMES ", got '%s'\n",
                    opt == 1017 ? 'k' : 'v', opt == 1017 ? 'k' : 'v', ECHO(arg));
            return -1;
        }
        return 1;
    case 1019: o->backend_params = arg; return 1;
    case 1030:
    case 1031:
        /* llama.cpp's self-extend divides the cached keys' positions as batches arrive: a
         * different algorithm from LongLM's, whose numbers are not SelfExtend's. */
        fprintf(stderr, "ctxbench: --%s: llama.cpp's group attention (KV-cache positions divided as batches "
                "arrive) is not implemented; LongLM's SelfExtend, a different algorithm, is --method "
                "selfextend:group=N,window=W (methods/README.md)\n", opt == 1030 ? "grp-attn-n" : "grp-attn-w");
        return -1;
    case 1009: o->rope_scaling_json = arg; return 1;
    case 1010: o->hf_config = arg; return 1;
    case 1008:
        if (!parse_int(arg, 0, 1023, &v)) {
            fprintf(stderr, "ctxbench: --device expects a device index in 0..1023, got '%s'\n", ECHO(arg));
            return -1;
        }
        o->device = (int)v;
        return 1;
    default: return 0;
    }
}

/* Whether any llama.cpp RoPE flag was given: together they name one method. */
static bool llamacpp_rope_flags(const struct run_opts *o) {
    return o->rope_scaling || o->rope_scale > 0 || o->rope_freq_base > 0 || o->rope_freq_scale > 0 ||
           o->yarn_orig_ctx >= 0 || !isnan(o->yarn_ext_factor) || !isnan(o->yarn_attn_factor) ||
           !isnan(o->yarn_beta_fast) || !isnan(o->yarn_beta_slow);
}

/* llama.cpp's flags as the spec they compute (llama.cpp src/llama-context.cpp and ggml's
 * rope_yarn): freq_scale = 1/s; ext_factor < 0 means 1 under yarn and 0 otherwise; the
 * YaRN ramp and mscale *= 1 + 0.1 ln s apply iff ext_factor != 0, and the cos/sin scale
 * is then yarn_attn_factor (1 + 0.1 ln s); with ext_factor 0 the table is linear
 * interpolation and the scale yarn_attn_factor. */
static int llamacpp_spec(const struct run_opts *o, char *text, size_t cap, char *err, size_t errlen) {
    if (o->rope_scale > 0 && o->rope_freq_scale > 0) {
        snprintf(err, errlen, "--rope-scale S and --rope-freq-scale F both give the factor (F = 1/S): give one");
        return -1;
    }
    double scale = o->rope_scale > 0 ? o->rope_scale : o->rope_freq_scale > 0 ? 1.0 / o->rope_freq_scale : 0;
    const char *type = o->rope_scaling;
    if (!type) type = scale > 0 ? "linear" : "none";
    if (strcmp(type, "dynamic") == 0) {
        snprintf(err, errlen, "--rope-scaling dynamic: llama.cpp has no dynamic NTK; ctxbench's is --method "
                 "dynamic_ntk[:factor=S] (Hugging Face \"dynamic\")");
        return -1;
    }
    if (strcmp(type, "none") != 0 && strcmp(type, "linear") != 0 && strcmp(type, "yarn") != 0) {
        snprintf(err, errlen, "--rope-scaling '%s' is not one of none, linear, yarn", ECHO(type));
        return -1;
    }
    bool yarn_flags = o->yarn_orig_ctx >= 0 || !isnan(o->yarn_attn_factor) || !isnan(o->yarn_beta_fast) ||
                      !isnan(o->yarn_beta_slow);
    bool ext_given = !isnan(o->yarn_ext_factor) && o->yarn_ext_factor >= 0;
    if (strcmp(type, "none") == 0) {
        if (yarn_flags || ext_given) {
            snprintf(err, errlen, "--yarn-* flags apply with --rope-scaling yarn");
            return -1;
        }
        if (o->rope_freq_base > 0) snprintf(text, cap, "abf:rope_theta=%.17g", o->rope_freq_base);
        else snprintf(text, cap, "baseline");
        return 0;
    }
    if (o->rope_freq_base > 0) {
        snprintf(err, errlen, "--rope-freq-base with --rope-scaling %s is not a ctxbench method; use --method", type);
        return -1;
    }
    double ext = ext_given ? o->yarn_ext_factor : strcmp(type, "yarn") == 0 ? 1 : 0;
    if (ext != 0 && ext != 1) {
        snprintf(err, errlen, "--yarn-ext-factor %g: ctxbench's yarn mixes extrapolation in fully (1) or not at all "
                 "(0, = pi); a partial mix is not a method", ext);
        return -1;
    }
    if (ext == 0) {   /* the ramp is off: linear interpolation, scaled by yarn_attn_factor alone */
        if (yarn_flags) {
            snprintf(err, errlen, "--yarn-orig-ctx/--yarn-beta-*/--yarn-attn-factor apply with the YaRN ramp on "
                     "(--rope-scaling yarn, --yarn-ext-factor 1)");
            return -1;
        }
        snprintf(text, cap, "pi");
        if (scale > 0) snprintf(text, cap, "pi:factor=%.17g", scale);
        return 0;
    }
    size_t n = (size_t)snprintf(text, cap, "yarn");
    char sep = ':';
#define ADD(...)                                                                  \
    do {                                                                          \
        if (n < cap) n += (size_t)snprintf(text + n, cap - n, "%c", sep);         \
        if (n < cap) n += (size_t)snprintf(text + n, cap - n, __VA_ARGS__);       \
        sep = ',';                                                                \
    } while (0)
    if (scale > 0) ADD("factor=%.17g", scale);
    if (o->yarn_orig_ctx > 0) ADD("original_max_position_embeddings=%ld", o->yarn_orig_ctx);
    if (!isnan(o->yarn_beta_fast)) ADD("beta_fast=%.17g", o->yarn_beta_fast);
    if (!isnan(o->yarn_beta_slow)) ADD("beta_slow=%.17g", o->yarn_beta_slow);
    if (!isnan(o->yarn_attn_factor) && o->yarn_attn_factor != 1) {
        if (!(scale > 0)) {
            snprintf(err, errlen, "--yarn-attn-factor multiplies 1 + 0.1 ln s: give the factor too (--rope-scale S "
                     "or --rope-freq-scale 1/S)");
            return -1;
        }
        ADD("attention_factor=%.17g", o->yarn_attn_factor * (scale > 1 ? 0.1 * log(scale) + 1 : 1));
    }
#undef ADD
    if (n >= cap) { snprintf(err, errlen, "llama.cpp flags: method spec too long"); return -1; }
    return 0;
}

int cli_method_spec(const struct run_opts *o, struct method_spec *spec, char *err, size_t errlen) {
    char text[256];
    if (o->rope_scaling_json || o->hf_config) {
        const char *which = o->hf_config ? "--hf-config" : "--rope-scaling-json";
        if ((o->rope_scaling_json && o->hf_config) || o->method || llamacpp_rope_flags(o)) {
            snprintf(err, errlen, "%s cannot be combined with --method, --rope-scaling-json/--hf-config or the "
                     "llama.cpp --rope-*/--yarn-* flags: it sets the method", which);
            return -1;
        }
        if (o->hf_config) return method_spec_from_hf_config(o->hf_config, spec, NULL, err, errlen);
        return method_spec_from_hf_json(o->rope_scaling_json, NAN, spec, err, errlen);
    }
    if (o->method) {
        if (llamacpp_rope_flags(o)) {
            snprintf(err, errlen, "--method cannot be combined with the llama.cpp --rope-*/--yarn-* flags");
            return -1;
        }
        return method_spec_parse(o->method, spec, err, errlen);
    }
    if (llamacpp_spec(o, text, sizeof text, err, errlen) != 0) return -1;
    return method_spec_parse(text, spec, err, errlen);
}

const struct backend_ops *cli_backend(const struct run_opts *o, char *params, size_t cap, char *err, size_t errlen) {
    const struct backend_ops *be = backend_find(o->backend, err, errlen);
    if (!be) return NULL;
    /* -t and --tile-q/-k are the CPU backend's parameters (another backend does not
     * compute with host threads: they do not apply), --device the others' */
    size_t n = 0;
    bool cpu = strcmp(be->name, "cpu") == 0;
    if (cpu && o->device > 0) {
        snprintf(err, errlen, "--device %d: the cpu backend has one device, 0", o->device);
        return NULL;
    }
    const char *key[] = {"threads", "tile_q", "tile_k", "device"};
    const int val[] = {cpu ? o->threads : 0, cpu ? o->tile_q : 0, cpu ? o->tile_k : 0, cpu ? -1 : o->device};
    params[0] = 0;
    for (int i = 0; i < 4; i++)
        if (val[i] > (i == 3 ? -1 : 0) && n < cap)
            n += (size_t)snprintf(params + n, cap - n, "%s%s=%d", n ? "," : "", key[i], val[i]);
    if (o->backend_params && o->backend_params[0] && n < cap)
        n += (size_t)snprintf(params + n, cap - n, "%s%s", n ? "," : "", o->backend_params);
    if (n >= cap) {
        snprintf(err, errlen, "--backend-params '%s': the backend's parameters are too long", ECHO(o->backend_params));
        return NULL;
    }
    return be;
}

int cli_open(const struct run_opts *o, struct runtime *rt, char *err, size_t errlen) {
    if (!o->model) {
        snprintf(err, errlen, "no model given (-m FILE)");
        return -1;
    }
    /* a config's rope_theta is the base its rope_scaling applies to: a spec starts from the
     * model's own base, so a different one would silently be another model's table */
    double theta = NAN;
    struct method_spec unused;
    if (o->hf_config && method_spec_from_hf_config(o->hf_config, &unused, &theta, err, errlen) != 0) return -1;
    char params[256];
    const struct backend_ops *be = cli_backend(o, params, sizeof params, err, errlen);
    if (!be) return -1;
    if (runtime_open(rt, o->model, be->name, params, &o->kv, err, errlen) != 0) return -1;
    if (!isnan(theta) && (float)theta != (float)rt->model->cfg.rope_base) {
        snprintf(err, errlen, "--hf-config %s: rope_theta %.9g is not the model's rope.freq_base %.9g; ctxbench "
                 "applies rope_scaling to the model's own base (a different base alone: --method abf:rope_theta=%.9g)",
                 ECHO(o->hf_config), theta, rt->model->cfg.rope_base, theta);
        runtime_close(rt);
        return -1;
    }
    return 0;
}

int cli_read_results(int argc, char **argv, const char *usage, struct store_cell **cells, int *n) {
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return 2;
    }
    char err[1024];
    store_settle(argv[optind]);   /* a killed writer's journal, folded when nobody writes the file */
    if (store_read(argv[optind], false, cells, n, err, sizeof err) != 0) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return 1;
    }
    return 0;
}
