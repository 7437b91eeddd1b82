/* Hugging Face rope scaling dicts (config.json's rope_scaling, transformers v5's
 * rope_parameters) as ctxbench method specs. Each HF key maps to the method parameter of
 * the same name, so the spec computes the table HF's _compute_*_parameters does (in double,
 * see methods/README.md); HF's defaults apply where HF applies them (`get(k) or default`
 * treats 0 and null as absent). What no method here computes is refused, never
 * approximated. JSON is parsed by cJSON (Debian libcjson-dev). */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "input.h"
#include "method.h"

#define HF_CONFIG_MAX_BYTES (16u << 20)   /* a config.json is a few KiB */
#define HF_MAX_KEYS 6

static void fail(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

enum hf_read {
    HF_AS_GIVEN,        /* rope_scaling[k]: required keys must be numbers, null = absent */
    HF_OR_DEFAULT,      /* rope_scaling.get(k) or default: 0 and null mean the default */
    HF_BOOL,            /* truncate: a JSON boolean; null is falsy in HF (no floor/ceil) */
    HF_IGNORED,         /* a key HF accepts for this rope_type but does not compute with */
};

struct hf_key {
    const char *name;   /* HF key = the method's parameter name */
    bool required;      /* HF indexes rope_scaling[k] (KeyError without it) */
    enum hf_read read;
};

struct hf_type {
    const char *rope_type, *method;
    /* HF takes L from config.max_position_embeddings: always (dynamic), or when the dict
     * has no original_max_position_embeddings (yarn) */
    bool orig_from_config;
    int n_keys;
    struct hf_key keys[HF_MAX_KEYS];
};

static const struct hf_type hf_types[] = {
    {"default", "baseline", false, 0, {{0}}},
    {"linear", "pi", false, 2,
     {{"factor", true, HF_AS_GIVEN}, {"original_max_position_embeddings", false, HF_IGNORED}}},
    {"dynamic", "dynamic_ntk", true, 2,
     {{"factor", true, HF_AS_GIVEN}, {"original_max_position_embeddings", false, HF_IGNORED}}},
    {"yarn", "yarn", true, 6,
     {{"factor", true, HF_AS_GIVEN},
      {"original_max_position_embeddings", false, HF_AS_GIVEN},
      {"attention_factor", false, HF_AS_GIVEN},
      {"beta_fast", false, HF_OR_DEFAULT},
      {"beta_slow", false, HF_OR_DEFAULT},
      {"truncate", false, HF_BOOL}}},
    {"llama3", "llama3", false, 4,
     {{"factor", true, HF_AS_GIVEN},
      {"low_freq_factor", true, HF_AS_GIVEN},
      {"high_freq_factor", true, HF_AS_GIVEN},
      {"original_max_position_embeddings", true, HF_AS_GIVEN}}},
};
#define N_HF_TYPES (sizeof hf_types / sizeof hf_types[0])


static void type_keys(const struct hf_type *t, char *buf, size_t cap) {
    buf[0] = '\0';
    text_append(buf, cap, "rope_type");
    for (int i = 0; i < t->n_keys; i++) text_append(buf, cap, ", %s", t->keys[i].name);
}

/* The rope_type: "rope_type", or the legacy "type" (HF reads rope_type, else type). */
static const struct hf_type *hf_type_of(const cJSON *rs, char *err, size_t errlen) {
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    const cJSON *legacy = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (rt && !cJSON_IsString(rt)) { fail(err, errlen, "rope_scaling: rope_type must be a string"); return NULL; }
    if (legacy && !cJSON_IsString(legacy)) { fail(err, errlen, "rope_scaling: type must be a string"); return NULL; }
    if (rt && legacy && strcmp(rt->valuestring, legacy->valuestring) != 0) {
        fail(err, errlen, "rope_scaling: rope_type '%s' and type '%s' disagree", ECHO(rt->valuestring),
             ECHO(legacy->valuestring));
        return NULL;
    }
    const char *name = rt ? rt->valuestring : legacy ? legacy->valuestring : NULL;
    if (!name) { fail(err, errlen, "rope_scaling has neither rope_type nor type"); return NULL; }
    for (size_t i = 0; i < N_HF_TYPES; i++)
        if (strcmp(hf_types[i].rope_type, name) == 0) return &hf_types[i];
    if (strcmp(name, "longrope") == 0 || strcmp(name, "su") == 0)
        fail(err, errlen, "rope_scaling: rope_type '%s' (Phi-3 LongRoPE: per-frequency long_factor/short_factor "
             "lists chosen by sequence length) is not a ctxbench method", name);
    else
        fail(err, errlen, "rope_scaling: unknown rope_type '%s'; ctxbench maps default, linear, dynamic, yarn, "
             "llama3", ECHO(name));
    return NULL;
}

static int hf_map(const cJSON *rs, double max_pos, bool allow_theta, struct method_spec *out, char *err,
                  size_t errlen) {
    if (!cJSON_IsObject(rs)) { fail(err, errlen, "rope_scaling must be a JSON object"); return -1; }
    const struct hf_type *t = hf_type_of(rs, err, errlen);
    if (!t) return -1;
    char text[512], keys[256];
    snprintf(text, sizeof text, "%s", t->method);
    bool have_orig = false;
    int n_given = 0;
    for (const cJSON *it = rs->child; it; it = it->next) {
        const char *k = it->string;
        if (!k) { fail(err, errlen, "rope_scaling: a member without a name"); return -1; }
        if (cJSON_GetObjectItemCaseSensitive(rs, k) != it) {
            fail(err, errlen, "rope_scaling: key '%s' given twice", ECHO(k));
            return -1;
        }
        if (strcmp(k, "rope_type") == 0 || strcmp(k, "type") == 0) continue;
        if (allow_theta && strcmp(k, "rope_theta") == 0) continue;   /* v5 rope_parameters: read by the caller */
        const struct hf_key *key = NULL;
        for (int i = 0; i < t->n_keys; i++)
            if (strcmp(t->keys[i].name, k) == 0) key = &t->keys[i];
        if (!key) {
            type_keys(t, keys, sizeof keys);
            if (strcmp(t->rope_type, "yarn") == 0 && (strcmp(k, "mscale") == 0 || strcmp(k, "mscale_all_dim") == 0))
                fail(err, errlen, "rope_scaling: yarn's %s (DeepSeek: attention_factor = get_mscale(factor, mscale) "
                     "/ get_mscale(factor, mscale_all_dim)) is not implemented; give attention_factor instead", k);
            else
                fail(err, errlen, "rope_scaling: key '%s' is not one ctxbench honours for rope_type %s; keys: %s",
                     ECHO(k), t->rope_type, keys);
            return -1;
        }
        if (key->read == HF_IGNORED) continue;
        double v;
        if (key->read == HF_BOOL) {
            if (!cJSON_IsBool(it) && !cJSON_IsNull(it)) {
                fail(err, errlen, "rope_scaling: %s must be true or false", k);
                return -1;
            }
            v = cJSON_IsTrue(it) ? 1 : 0;
        } else {
            if (cJSON_IsNull(it)) continue;   /* HF: None is the default (or a missing required key, below) */
            if (!cJSON_IsNumber(it)) {
                fail(err, errlen, "rope_scaling: %s must be a number", k);
                return -1;
            }
            v = it->valuedouble;
            if (key->read == HF_OR_DEFAULT && v == 0) continue;
        }
        text_append(text, sizeof text, "%s%s=%.17g", n_given++ ? "," : ":", k, v);
        if (strcmp(k, "original_max_position_embeddings") == 0) have_orig = true;
    }
    for (int i = 0; i < t->n_keys; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(rs, t->keys[i].name);
        if (t->keys[i].required && (!it || cJSON_IsNull(it))) {
            fail(err, errlen, "rope_scaling: rope_type %s requires %s", t->rope_type, t->keys[i].name);
            return -1;
        }
    }
    if (t->orig_from_config && !have_orig && !isnan(max_pos))
        text_append(text, sizeof text, "%soriginal_max_position_embeddings=%.17g", n_given++ ? "," : ":", max_pos);
    if (strlen(text) + 1 >= sizeof text) { fail(err, errlen, "rope_scaling: too long"); return -1; }
    char why[768];
    if (method_spec_parse(text, out, why, sizeof why) != 0) {
        fail(err, errlen, "rope_scaling (rope_type %s): %s", t->rope_type, why);
        return -1;
    }
    return 0;
}

int method_spec_from_hf_json(const char *json, double max_position_embeddings, struct method_spec *out,
                             char *err, size_t errlen) {
    if (!json || !out) { fail(err, errlen, "rope_scaling missing"); return -1; }
    const char *end = NULL;
    cJSON *rs = cJSON_ParseWithOpts(json, &end, true);
    if (!rs) {
        fail(err, errlen, "rope_scaling JSON is malformed %s%s%s", end && *end ? "near '" : "(it ends early)",
             end && *end ? ECHO(end) : "", end && *end ? "'" : "");
        return -1;
    }
    int rc = hf_map(rs, max_position_embeddings, false, out, err, errlen);
    cJSON_Delete(rs);
    return rc;
}

int method_spec_from_hf_config(const char *path, struct method_spec *out, double *rope_theta, char *err,
                               size_t errlen) {
    size_t len = 0;
    char why[512];
    char *text = input_read_file_max(path, HF_CONFIG_MAX_BYTES, &len, why, sizeof why);
    if (!text) { fail(err, errlen, "%s", why); return -1; }
    const char *end = NULL;
    cJSON *cfg = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!cfg || !cJSON_IsObject(cfg)) {
        bool bad = !cfg && end && end < text + len;   /* cJSON's error position; at the end: cut short */
        fail(err, errlen, "%s: not a JSON object%s%s%s", ECHO(path), !cfg ? (bad ? " (malformed near '" :
             " (it ends early)") : "", bad ? ECHO_N(end, (size_t)(text + len - end)) : "", bad ? "')" : "");
        cJSON_Delete(cfg);
        free(text);
        return -1;
    }
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    const cJSON *mpe = cJSON_GetObjectItemCaseSensitive(cfg, "max_position_embeddings");
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(cfg, "rope_theta");
    int rc = -1;
    if (scaling && !cJSON_IsNull(scaling) && params && !cJSON_IsNull(params)) {
        fail(err, errlen, "%s: has both rope_scaling and rope_parameters; which one transformers reads depends on "
             "its version", ECHO(path));
        goto done;
    }
    const cJSON *rs = params && !cJSON_IsNull(params) ? params : scaling;
    if (rs && cJSON_IsObject(rs)) {
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(rs, "rope_theta");
        if (rs == params && inner) {
            if (theta && !(cJSON_IsNumber(theta) && cJSON_IsNumber(inner) && theta->valuedouble == inner->valuedouble)) {
                fail(err, errlen, "%s: rope_theta differs between the config and its rope_parameters", ECHO(path));
                goto done;
            }
            theta = inner;
        }
    }
    if (mpe && !cJSON_IsNull(mpe) && !cJSON_IsNumber(mpe)) {
        fail(err, errlen, "%s: max_position_embeddings must be a number", ECHO(path));
        goto done;
    }
    if (theta && !cJSON_IsNull(theta) && !(cJSON_IsNumber(theta) && theta->valuedouble > 1 &&
                                           isfinite(theta->valuedouble))) {
        fail(err, errlen, "%s: rope_theta must be a number > 1", ECHO(path));
        goto done;
    }
    double max_pos = mpe && cJSON_IsNumber(mpe) ? mpe->valuedouble : NAN;
    if (!rs || cJSON_IsNull(rs)) {
        rc = method_spec_parse("baseline", out, err, errlen);
    } else {
        char why2[900];
        rc = hf_map(rs, max_pos, rs == params, out, why2, sizeof why2);
        if (rc != 0) fail(err, errlen, "%s: %s", ECHO(path), why2);
    }
    if (rc == 0 && rope_theta) *rope_theta = theta && cJSON_IsNumber(theta) ? theta->valuedouble : NAN;
done:
    cJSON_Delete(cfg);
    free(text);
    return rc;
}
