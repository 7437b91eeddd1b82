/* "k=v,k=v" task settings. Parsing is strict (a typo must not silently fall back to a
 * default and produce a plausible but wrong number), and a value is validated where a
 * task reads it, against the range that task documents. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "input.h"

static int is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

int settings_parse(const char *text, struct settings *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (!text) return 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len == 0) {
            snprintf(err, errlen, "settings '%s': empty item (expected k=v,k=v)", ECHO(text));
            return -1;
        }
        if (!eq) {
            snprintf(err, errlen, "settings '%s': '%s' is not key=value", ECHO(text), ECHO_N(p, len));
            return -1;
        }
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        if (klen == 0 || klen >= SETTINGS_KEY_MAX) {
            snprintf(err, errlen, "settings '%s': key in '%s' is empty or longer than %d characters", ECHO(text),
                     ECHO_N(p, len), SETTINGS_KEY_MAX - 1);
            return -1;
        }
        for (size_t i = 0; i < klen; i++)
            if (!is_key_char(p[i])) {
                snprintf(err, errlen, "settings '%s': key '%s' may hold only a-z, 0-9 and _", ECHO(text),
                         ECHO_N(p, klen));
                return -1;
            }
        if (vlen == 0 || vlen >= SETTINGS_VAL_MAX) {
            snprintf(err, errlen, "settings '%s': value of '%s' is empty or longer than %d characters", ECHO(text),
                     ECHO_N(p, klen), SETTINGS_VAL_MAX - 1);
            return -1;
        }
        for (int i = 0; i < s->n; i++)
            if (strlen(s->kv[i].key) == klen && memcmp(s->kv[i].key, p, klen) == 0) {
                snprintf(err, errlen, "settings '%s': key '%s' given twice", ECHO(text), ECHO_N(p, klen));
                return -1;
            }
        if (s->n >= SETTINGS_MAX) {
            snprintf(err, errlen, "settings '%s': more than %d items", ECHO(text), SETTINGS_MAX);
            return -1;
        }
        struct setting *kv = &s->kv[s->n++];
        memcpy(kv->key, p, klen);
        kv->key[klen] = 0;
        memcpy(kv->val, eq + 1, vlen);
        kv->val[vlen] = 0;
        if (!end) break;
        p = end + 1;
        if (!*p) {
            snprintf(err, errlen, "settings '%s': trailing comma", ECHO(text));
            return -1;
        }
    }
    return 0;
}

/* "a, b, c" into buf. */
static void join_list(const char *const *list, char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; list[i]; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", list[i]);
    }
}

int settings_check_keys(const struct settings *s, const char *who, const char *const *valid, char *err,
                        size_t errlen) {
    for (int i = 0; i < s->n; i++) {
        int ok = 0;
        for (int j = 0; valid[j] && !ok; j++) ok = strcmp(s->kv[i].key, valid[j]) == 0;
        if (!ok) {
            char names[512];
            join_list(valid, names, sizeof names);
            snprintf(err, errlen, "%s: unknown setting '%s' (valid: %s)", who, ECHO(s->kv[i].key),
                     valid[0] ? names : "none");
            return -1;
        }
    }
    return 0;
}

int settings_parse_checked(const char *text, const char *who, const char *const *valid, struct settings *s,
                           char *err, size_t errlen) {
    char inner[400];
    if (settings_parse(text, s, inner, sizeof inner) != 0) {
        snprintf(err, errlen, "%s: %s", who, inner);
        return -1;
    }
    return settings_check_keys(s, who, valid, err, errlen);
}

const char *settings_get(const struct settings *s, const char *key) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->kv[i].key, key) == 0) return s->kv[i].val;
    return NULL;
}

int settings_int(const struct settings *s, const char *key, long def, long lo, long hi, long *out, char *err,
                 size_t errlen) {
    const char *v = settings_get(s, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);   /* strtol skips leading blanks: refuse them here */
    if (errno || end == v || *end || isspace((unsigned char)v[0]) || x < lo || x > hi) {
        snprintf(err, errlen, "setting %s=%s: expected a whole number in %ld..%ld", key, ECHO(v), lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int settings_double(const struct settings *s, const char *key, double def, double lo, double hi, double *out,
                    char *err, size_t errlen) {
    const char *v = settings_get(s, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || isspace((unsigned char)v[0]) || !isfinite(x) || x < lo || x > hi) {
        snprintf(err, errlen, "setting %s=%s: expected a number in [%g, %g]", key, ECHO(v), lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int settings_choice(const struct settings *s, const char *key, const char *const *choices, int def_index,
                    int *out, char *err, size_t errlen) {
    const char *v = settings_get(s, key);
    if (!v) {
        *out = def_index;
        return 0;
    }
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    char names[512];
    join_list(choices, names, sizeof names);
    snprintf(err, errlen, "setting %s=%s: expected one of %s", key, ECHO(v), names);
    return -1;
}
