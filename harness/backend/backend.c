/* The backend registry and the parameter strings backends are created with (backend.h). */
#include "backend.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"

const char *kv_type_name(enum kv_type t) {
    switch (t) {
    case KV_F32: return "f32";
    case KV_F16: return "f16";
    case KV_Q8_0: return "q8_0";
    }
    return "?";
}

bool kv_type_parse(const char *s, enum kv_type *out) {
    static const enum kv_type all[] = {KV_F32, KV_F16, KV_Q8_0};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, kv_type_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* q8_0: ggml's block of 32 values, an fp16 scale then 32 int8 */
#define KV_Q8_0_BLOCK 32
#define KV_Q8_0_BLOCK_BYTES 34

size_t kv_row_bytes(enum kv_type t, size_t n) {
    switch (t) {
    case KV_F32: return n > SIZE_MAX / 4 ? 0 : n * 4;
    case KV_F16: return n > SIZE_MAX / 2 ? 0 : n * 2;
    case KV_Q8_0: return n % KV_Q8_0_BLOCK ? 0 : n / KV_Q8_0_BLOCK * KV_Q8_0_BLOCK_BYTES;
    }
    return 0;
}

const char *kv_type_unfit(enum kv_type t, int head_dim, char *why, size_t cap) {
    if (t == KV_Q8_0 && head_dim % KV_Q8_0_BLOCK != 0) {
        snprintf(why, cap, "a q8_0 KV cache needs head_dim a multiple of %d (blocks of a head), the model's is %d",
                 KV_Q8_0_BLOCK, head_dim);
        return why;
    }
    return NULL;
}

const struct backend_ops *backend_find(const char *name, char *err, size_t errlen) {
    if (!name || strcmp(name, "auto") == 0) {
        const struct backend_ops *best = NULL;
        int best_rank = -1;
        for (int i = 0; backend_list[i]; i++) {
            int rank = backend_list[i]->auto_rank();   /* < 0 where it cannot run */
            if (rank > best_rank) best = backend_list[i], best_rank = rank;
        }
        if (!best) snprintf(err, errlen, "no backend of this build can run on this machine");
        return best;
    }
    for (int i = 0; backend_list[i]; i++)
        if (strcmp(backend_list[i]->name, name) == 0) {
            const char *why = backend_list[i]->unavailable();
            if (why) {
                snprintf(err, errlen, "backend %s cannot run here: %s", name, why);
                return NULL;
            }
            return backend_list[i];
        }
    char names[128] = "";
    for (int i = 0; backend_list[i]; i++) {
        strncat(names, " ", sizeof names - strlen(names) - 1);
        strncat(names, backend_list[i]->name, sizeof names - strlen(names) - 1);
    }
    snprintf(err, errlen, "unknown backend '%s' (this build has:%s, auto)", ECHO(name), names);
    return NULL;
}

/* The next "key=value" item of params at *p: key and value spans; false at the end. */
static bool next_item(const char **p, const char **key, size_t *klen, const char **val, size_t *vlen) {
    const char *s = *p;
    if (!s || !*s) return false;
    const char *end = strchr(s, ',');
    if (!end) end = s + strlen(s);
    const char *eq = memchr(s, '=', (size_t)(end - s));
    *key = s;
    *klen = eq ? (size_t)(eq - s) : (size_t)(end - s);
    *val = eq ? eq + 1 : end;
    *vlen = eq ? (size_t)(end - eq - 1) : 0;
    *p = *end ? end + 1 : end;
    return true;
}

long backend_param(const char *params, const char *key, char *val, size_t vlen) {
    const char *p = params, *k, *v;
    size_t kl, vl;
    long found = -1;
    while (next_item(&p, &k, &kl, &v, &vl))
        if (kl == strlen(key) && memcmp(k, key, kl) == 0) {   /* the last one wins */
            snprintf(val, vlen, "%.*s", (int)vl, v);
            found = (long)vl;
        }
    return found;
}

int backend_params_check(const char *backend, const char *params, const char *const *known, char *err,
                         size_t errlen) {
    const char *p = params, *k, *v;
    size_t kl, vl;
    while (next_item(&p, &k, &kl, &v, &vl)) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = kl == strlen(known[i]) && memcmp(k, known[i], kl) == 0;
        if (!ok || vl == 0) {
            char names[160] = "";
            for (int i = 0; known[i]; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, known[i], sizeof names - strlen(names) - 1);
            }
            size_t item = vl ? (size_t)(v + vl - k) : kl;
            snprintf(err, errlen, "backend %s: '%s' is not KEY=VALUE with KEY one of %s", backend, ECHO_N(k, item),
                     names);
            return -1;
        }
    }
    return 0;
}

int backend_param_long(const char *backend, const char *params, const char *key, long lo, long hi, long def,
                       long *out, char *err, size_t errlen) {
    char val[64];
    *out = def;
    long len = backend_param(params, key, val, sizeof val);
    if (len < 0) return 0;
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (len >= (long)sizeof val || errno || end == val || *end || isspace((unsigned char)val[0]) || v < lo || v > hi) {
        snprintf(err, errlen, "backend %s: %s=%s is not a whole number in %ld..%ld", backend, key, ECHO(val), lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}


bool score_block_needed(const int32_t *targets, float *logprob, int r0, int nr, bool need_last) {
    bool need_scores = false;
    for (int r = 0; r < nr; r++) {
        bool scored = targets && targets[r0 + r] >= 0;
        need_scores |= scored;
        if (logprob && !scored) logprob[r0 + r] = 0.0f;
    }
    return need_scores || need_last;
}
