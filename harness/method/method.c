/* Method registry: finding methods by name, parsing "name:k=v,..." specs and lists of
 * them, and running a method's planner with the checks every method shares (ranges,
 * integral INT values, the rotary table size). The methods themselves live in methods/. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"
#include "input.h"

#define SPEC_TEXT_MAX 256   /* sizeof(struct method_spec.text) */

static void fail(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* Hugging Face rope_type names of methods that ctxbench names otherwise: accepted wherever
 * a method name is, and resolved to the method itself (its name is what specs and results
 * record). A constant table, not a registry: an alias is not a method. */
static const struct {
    const char *alias, *name;
} method_aliases[] = {
    {"default", "baseline"},
    {"linear", "pi"},
    {"dynamic", "dynamic_ntk"},
};

const struct method *method_find(const char *name) {
    if (!name) return NULL;
    for (const struct method *const *m = registry_methods; *m; m++)
        if (strcmp((*m)->name, name) == 0) return *m;
    for (size_t i = 0; i < sizeof method_aliases / sizeof method_aliases[0]; i++)
        if (strcmp(method_aliases[i].alias, name) == 0) {
            for (const struct method *const *m = registry_methods; *m; m++)
                if (strcmp((*m)->name, method_aliases[i].name) == 0) return *m;
        }
    return NULL;
}

/* Shortest "%g" text that reads back as the same double, so canonical specs round-trip. */
static void format_value(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) < 1e9) { snprintf(buf, cap, "%.0f", v); return; }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void method_names(char *buf, size_t cap) {
    buf[0] = '\0';
    for (const struct method *const *m = registry_methods; *m; m++)
        text_append(buf, cap, "%s%s", m == registry_methods ? "" : ", ", (*m)->name);
    text_append(buf, cap, " (Hugging Face names:");
    for (size_t i = 0; i < sizeof method_aliases / sizeof method_aliases[0]; i++)
        text_append(buf, cap, "%s %s = %s", i ? "," : "", method_aliases[i].alias, method_aliases[i].name);
    text_append(buf, cap, ")");
}

static void param_describe(const struct method_param *p, char *buf, size_t cap) {
    char lo[32], hi[32], def[32];
    format_value(p->min, lo, sizeof lo);
    format_value(p->max, hi, sizeof hi);
    if (isnan(p->def)) snprintf(def, sizeof def, "derived");
    else format_value(p->def, def, sizeof def);
    snprintf(buf, cap, "%s (%s in [%s, %s], default %s)", p->name,
             p->type == MPARAM_INT ? "int" : "float", lo, hi, def);
}

static void param_list(const struct method *m, char *buf, size_t cap) {
    buf[0] = '\0';
    if (m->n_params == 0) { text_append(buf, cap, "none"); return; }
    for (int i = 0; i < m->n_params; i++) {
        char one[160];
        param_describe(&m->params[i], one, sizeof one);
        text_append(buf, cap, "%s%s", i ? ", " : "", one);
    }
}

/* Checks one value against its parameter: integral for INT, inside [min, max]. */
static int param_check(const struct method *m, const struct method_param *p, double v,
                       const char *what, char *err, size_t errlen) {
    char desc[160], val[32];
    param_describe(p, desc, sizeof desc);
    format_value(v, val, sizeof val);
    if (!isfinite(v)) {
        fail(err, errlen, "%s: %s%s=%s is not a finite number; expected %s", m->name, what, p->name, val, desc);
        return -1;
    }
    if (p->type == MPARAM_INT && v != floor(v)) {
        fail(err, errlen, "%s: %s%s=%s is not an integer; expected %s", m->name, what, p->name, val, desc);
        return -1;
    }
    if (v < p->min || v > p->max) {
        fail(err, errlen, "%s: %s%s=%s is out of range; expected %s", m->name, what, p->name, val, desc);
        return -1;
    }
    return 0;
}

/* Copies [s, e) into dst without surrounding blanks. Returns 0, or -1 if it does not fit. */
static int copy_trimmed(char *dst, size_t cap, const char *s, const char *e) {
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if ((size_t)(e - s) >= cap) return -1;
    memcpy(dst, s, (size_t)(e - s));
    dst[e - s] = '\0';
    return 0;
}

static int spec_canonical(struct method_spec *s, char *err, size_t errlen) {
    const struct method *m = s->method;
    char text[SPEC_TEXT_MAX * 2];
    snprintf(text, sizeof text, "%s", m->name);
    int first = 1;
    for (int i = 0; i < m->n_params; i++) {
        if (isnan(s->values[i])) continue;
        char val[32];
        format_value(s->values[i], val, sizeof val);
        text_append(text, sizeof text, "%s%s=%s", first ? ":" : ",", m->params[i].name, val);
        first = 0;
    }
    if (strlen(text) >= sizeof s->text) {
        fail(err, errlen, "%s: method spec longer than %zu characters", m->name, sizeof s->text - 1);
        return -1;
    }
    memcpy(s->text, text, strlen(text) + 1);
    return 0;
}

/* One "k=v" item of a spec. */
static int spec_param(struct method_spec *s, const char *item, const char *end, char *err, size_t errlen) {
    const struct method *m = s->method;
    char params[1024];
    const char *eq = memchr(item, '=', (size_t)(end - item));
    char key[64], val[64];
    const char *shown = ECHO_N(item, (size_t)(end - item));
    if (!eq) {
        param_list(m, params, sizeof params);
        fail(err, errlen, "%s: malformed parameter '%s' (expected name=value); parameters: %s", m->name, shown, params);
        return -1;
    }
    if (copy_trimmed(key, sizeof key, item, eq) != 0 || key[0] == '\0') {
        param_list(m, params, sizeof params);
        fail(err, errlen, "%s: malformed parameter '%s' (expected name=value); parameters: %s", m->name, shown, params);
        return -1;
    }
    int idx = -1;
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, key) == 0) idx = i;
    if (idx < 0) {
        param_list(m, params, sizeof params);
        fail(err, errlen, "%s: unknown parameter '%s'; parameters: %s", m->name, ECHO(key), params);
        return -1;
    }
    const struct method_param *p = &m->params[idx];
    char desc[160];
    param_describe(p, desc, sizeof desc);
    if (!isnan(s->values[idx])) {
        fail(err, errlen, "%s: parameter '%s' given twice", m->name, key);
        return -1;
    }
    if (copy_trimmed(val, sizeof val, eq + 1, end) != 0) {
        fail(err, errlen, "%s: value of %s is too long; expected %s", m->name, key, desc);
        return -1;
    }
    char *stop = NULL;
    double v = val[0] ? strtod(val, &stop) : NAN;
    if (val[0] == '\0' || *stop != '\0' || !isfinite(v)) {
        fail(err, errlen, "%s: bad value '%s' for %s; expected %s", m->name, ECHO(val), key, desc);
        return -1;
    }
    if (param_check(m, p, v, "", err, errlen) != 0) return -1;
    s->values[idx] = v;
    return 0;
}

int method_spec_parse(const char *text, struct method_spec *out, char *err, size_t errlen) {
    if (!text || !out) { fail(err, errlen, "method spec missing"); return -1; }
    memset(out, 0, sizeof *out);
    for (int i = 0; i < METHOD_MAX_PARAMS; i++) out->values[i] = NAN;

    const char *colon = strchr(text, ':');
    const char *name_end = colon ? colon : text + strlen(text);
    char name[64], names[1024];
    if (copy_trimmed(name, sizeof name, text, name_end) != 0 || name[0] == '\0') {
        method_names(names, sizeof names);
        fail(err, errlen, "malformed method spec '%s' (expected name or name:k=v,...); methods: %s", ECHO(text),
             names);
        return -1;
    }
    out->method = method_find(name);
    if (!out->method) {
        method_names(names, sizeof names);
        fail(err, errlen, "unknown method '%s'; methods: %s", ECHO(name), names);
        return -1;
    }
    if (colon) {
        const char *p = colon + 1;
        if (strchr(p, ':')) {
            fail(err, errlen, "%s: malformed method spec '%s' (one ':' per method)", name, ECHO(text));
            return -1;
        }
        for (;;) {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            if (spec_param(out, p, end, err, errlen) != 0) return -1;
            if (!comma) break;
            p = comma + 1;
        }
    }
    return spec_canonical(out, err, errlen);
}

static int is_blank(const char *s, const char *e) {
    for (; s < e; s++) if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

/* Items are separated by ','. An item with ':' or without '=' starts a method; an item
 * "k=v" (no ':') adds a parameter to the method before it. Each method's items are
 * joined back and parsed by method_spec_parse. */
int method_spec_list_parse(const char *text, struct method_spec **out, int *n, char *err, size_t errlen) {
    if (!out || !n) { fail(err, errlen, "method list: no output"); return -1; }
    *out = NULL;
    *n = 0;
    if (!text || is_blank(text, text + strlen(text))) {
        fail(err, errlen, "empty method list");
        return -1;
    }
    size_t len = strlen(text);
    int n_items = 1;
    for (size_t i = 0; i < len; i++) n_items += text[i] == ',';

    struct method_spec *specs = calloc((size_t)n_items, sizeof *specs);
    char *group = malloc(len + 1);       /* one method's items, joined back with ',' */
    if (!specs || !group) {
        free(specs); free(group);
        fail(err, errlen, "method list: out of memory");
        return -1;
    }
    int count = 0;
    size_t glen = 0;
    int group_has_params = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        if (is_blank(p, end)) {
            fail(err, errlen, "method list '%s': empty item", ECHO(text));
            goto fail;
        }
        int starts_method = memchr(p, ':', (size_t)(end - p)) || !memchr(p, '=', (size_t)(end - p));
        if (!starts_method && glen == 0) {
            fail(err, errlen, "method list '%s': parameter '%s' comes before any method", ECHO(text),
                 ECHO_N(p, (size_t)(end - p)));
            goto fail;
        }
        if (starts_method && glen > 0) {   /* finish the previous method */
            group[glen] = '\0';
            if (method_spec_parse(group, &specs[count], err, errlen) != 0) goto fail;
            count++;
            glen = 0;
        }
        if (glen > 0) group[glen++] = group_has_params ? ',' : ':';
        group_has_params = glen > 0 || memchr(p, ':', (size_t)(end - p)) != NULL;
        memcpy(group + glen, p, (size_t)(end - p));
        glen += (size_t)(end - p);
        if (!comma) break;
        p = comma + 1;
    }
    group[glen] = '\0';
    if (method_spec_parse(group, &specs[count], err, errlen) != 0) goto fail;
    count++;
    for (int i = 0; i < count; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(specs[i].text, specs[j].text) == 0) {
                fail(err, errlen, "method list: '%s' is listed twice", specs[i].text);
                goto fail;
            }
    free(group);
    *out = specs;
    *n = count;
    return 0;
fail:
    free(specs);
    free(group);
    return -1;
}

int method_plan(const struct method_spec *spec, const struct method_ctx *ctx, struct method_plan *out,
                char *err, size_t errlen) {
    if (!spec || !spec->method || !ctx || !ctx->cfg || !out) {
        fail(err, errlen, "method_plan: missing method, context or model config");
        return -1;
    }
    const struct method *m = spec->method;
    const struct model_config *c = ctx->cfg;
    if (c->n_rot < 2 || c->n_rot % 2 != 0 || c->n_rot / 2 > ROPE_MAX_FREQ) {
        fail(err, errlen, "%s: rotary dimension n_rot=%d must be even and in [2, %d]", m->name, c->n_rot,
             2 * ROPE_MAX_FREQ);
        return -1;
    }
    if (!(c->rope_base > 1) || !isfinite(c->rope_base)) {
        fail(err, errlen, "%s: RoPE base %g must be a finite number > 1", m->name, c->rope_base);
        return -1;
    }
    if (c->ctx_train < 1) {
        fail(err, errlen, "%s: model context_length %d must be >= 1", m->name, c->ctx_train);
        return -1;
    }
    if (ctx->target_len < 1 || ctx->seq_len < 0) {
        fail(err, errlen, "%s: target_len=%d must be >= 1 and seq_len=%d >= 0", m->name, ctx->target_len,
             ctx->seq_len);
        return -1;
    }
    /* Specs are normally parsed (and so checked) already; hand-built ones are checked here. */
    for (int i = 0; i < m->n_params; i++)
        if (!isnan(spec->values[i]) && param_check(m, &m->params[i], spec->values[i], "", err, errlen) != 0)
            return -1;

    if (c->rope_freqs && m->own_freq_factors) {
        fail(err, errlen, "%s: the model file already carries per-frequency factors (rope_freqs.weight, as llama.cpp "
             "stores Llama 3.1's llama3 scaling); %s on top would scale the frequencies twice (baseline applies the "
             "file's factors)", m->name, m->name);
        return -1;
    }

    /* Declared defaults are applied here, once, from the table; a planner never repeats
     * them. What stays NAN is a parameter the user did not give whose default is derived
     * (def = NAN): that one the planner computes from the model or the lengths. */
    double values[METHOD_MAX_PARAMS];
    for (int i = 0; i < METHOD_MAX_PARAMS; i++) values[i] = NAN;
    for (int i = 0; i < m->n_params; i++) {
        const struct method_param *p = &m->params[i];
        if (!isnan(spec->values[i])) {
            values[i] = spec->values[i];
        } else if (!isnan(p->def)) {
            if (param_check(m, p, p->def, "default ", err, errlen) != 0) return -1;
            values[i] = p->def;
        }
    }

    memset(out, 0, sizeof *out);
    out->mscale = 1.0f;
    for (int i = 0; i < METHOD_MAX_PARAMS; i++) out->used[i] = NAN;
    out->n_freq = c->n_rot / 2;
    if (m->plan(ctx, values, out, err, errlen) != 0) return -1;
    out->n_freq = c->n_rot / 2;
    /* The file's rope_freqs are part of the model's own frequencies, theta_i / ff_i
     * (llama.cpp divides by them under every scaling). Every method here is linear in
     * theta_i frequency by frequency, so dividing its table is the same as starting it
     * from theta_i / ff_i; methods for which that is not so set own_freq_factors and were
     * refused above. */
    if (c->rope_freqs) {
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < out->n_freq; i++) {
            double ff = c->rope_freqs[i];
            out->inv_freq[i] = (float)((double)out->inv_freq[i] / ff);
            lo = ff < lo ? ff : lo;
            hi = ff > hi ? ff : hi;
        }
        out->rope_freqs_applied = true;
        size_t used = strlen(out->note);
        snprintf(out->note + used, sizeof out->note - used, "%sfile's rope_freqs applied (theta_i / ff_i, ff in "
                 "[%.6g, %.6g])", used ? "; " : "", lo, hi);
    }

    /* Derived values must obey the same ranges as given ones. */
    for (int i = 0; i < m->n_params; i++)
        if (param_check(m, &m->params[i], out->used[i], "derived ", err, errlen) != 0) return -1;
    for (int i = 0; i < out->n_freq; i++)
        if (!isfinite(out->inv_freq[i]) || !(out->inv_freq[i] > 0)) {
            fail(err, errlen, "%s: inverse frequency %d is %g, not a positive number", m->name, i,
                 (double)out->inv_freq[i]);
            return -1;
        }
    /* A model trained with sliding-window attention keeps it under every method, as its
     * metadata says, unless the method sets a window of its own. */
    if (c->sliding_window > 0 && out->swa_window == 0) {
        out->swa_window = c->sliding_window;
        size_t used = strlen(out->note);
        snprintf(out->note + used, sizeof out->note - used, "%smodel's sliding window %d (attention.sliding_window)",
                 used ? "; " : "", c->sliding_window);
    }
    if (!isfinite(out->mscale) || !(out->mscale > 0) || out->swa_window < 0 || out->se_group < 0 ||
        out->se_window < 0 || (out->se_group > 0 && out->se_window < 1)) {
        fail(err, errlen, "%s: planner returned an invalid plan (mscale %g, window %d, group %d/%d)", m->name,
             (double)out->mscale, out->swa_window, out->se_group, out->se_window);
        return -1;
    }
    return 0;
}

struct forward_plan method_forward_plan(const struct method_plan *p) {
    struct forward_plan f = {
        .inv_freq = p->inv_freq,
        .mscale = p->mscale,
        .swa_window = p->swa_window,
        .se_group = p->se_group,
        .se_window = p->se_window,
    };
    return f;
}

/* Prints help text indented by `indent` spaces, keeping its own line breaks. */
static void print_indented(FILE *f, const char *text, int indent) {
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "%*s%.*s\n", len ? indent : 0, "", len, p);
        if (!nl) break;
        p = nl + 1;
    }
}

void method_print_all(FILE *f) {
    fprintf(f, "Methods (spec: name or name:param=value,...; list: spec,spec,... see methods/README.md)\n");
    for (const struct method *const *mp = registry_methods; *mp; mp++) {
        const struct method *m = *mp;
        fprintf(f, "\n%s%s\n  %s\n", m->name, m->depends_on_seq_len ? "  (re-planned per sequence length)" : "",
                m->summary);
        if (m->n_params == 0) fprintf(f, "  parameters: none\n");
        for (int i = 0; i < m->n_params; i++) {
            const struct method_param *p = &m->params[i];
            char lo[32], hi[32], def[32];
            format_value(p->min, lo, sizeof lo);
            format_value(p->max, hi, sizeof hi);
            if (isnan(p->def)) snprintf(def, sizeof def, "derived");
            else format_value(p->def, def, sizeof def);
            fprintf(f, "  %-34s %-5s [%s, %s]  default %s\n", p->name, p->type == MPARAM_INT ? "int" : "float",
                    lo, hi, def);
            if (p->help) print_indented(f, p->help, 6);
        }
        if (m->help) print_indented(f, m->help, 2);
    }
    fprintf(f, "\nAliases (Hugging Face rope_type names, accepted wherever a method name is; results record the "
            "method's own name)\n");
    for (size_t i = 0; i < sizeof method_aliases / sizeof method_aliases[0]; i++)
        if (method_find(method_aliases[i].alias))
            fprintf(f, "  %-9s = %s\n", method_aliases[i].alias, method_aliases[i].name);
}
