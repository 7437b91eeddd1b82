/* The JSON form of a results file (store_json.h). Strings are escaped for JSON with bytes
 * that are not UTF-8 as U+FFFD; a number that is not finite (NaN: "not measured") is null,
 * since JSON has no NaN. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "store_json.h"
#include "task.h"
#include "unicode.h"

static long long cell_length(const struct store_cell *c) {
    const struct store_attr *a = store_cell_attr(c, "length");
    return a && a->kind == STORE_I64 ? (long long)a->i : a && a->kind == STORE_F64 ? (long long)a->f : -1;
}

int store_cell_order(const void *pa, const void *pb) {
    const struct store_cell *a = *(const struct store_cell *const *)pa, *b = *(const struct store_cell *const *)pb;
    static const char *const text_keys[] = {"method", "task"};
    char ba[256], bb[256];
    for (int k = 0; k < 2; k++) {
        int d = strcmp(store_attr_text(a, text_keys[k], ba, sizeof ba), store_attr_text(b, text_keys[k], bb, sizeof bb));
        if (d) return d;
    }
    long long la = cell_length(a), lb = cell_length(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a->id, b->id);
}

static void json_string_n(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch == '\n') {
            fputs("\\n", f);
            i++;
        } else if (ch == '\r') {
            fputs("\\r", f);
            i++;
        } else if (ch == '\t') {
            fputs("\\t", f);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
            i++;
        } else if (ch < 0x80) {
            fputc(ch, f);
            i++;
        } else {
            size_t used;
            uint32_t cp = utf8_decode(s + i, n - i, &used);
            if (cp == UNICODE_REPLACEMENT && used == 1) fputs("\\ufffd", f);
            else fwrite(s + i, 1, used, f);
            i += used;
        }
    }
    fputc('"', f);
}

static void json_string(FILE *f, const char *s) { json_string_n(f, s ? s : "", s ? strlen(s) : 0); }

static void json_number(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

static void json_attr_value(FILE *f, const struct store_attr *a) {
    if (!a) fputs("null", f);
    else if (a->kind == STORE_STR) json_string(f, a->s);
    else if (a->kind == STORE_I64) fprintf(f, "%lld", (long long)a->i);
    else json_number(f, a->f);
}

/* "name": value of the attribute (null when the cell lacks it), after a comma unless first. */
static void json_attr_member(FILE *f, const struct store_cell *c, const char *name, const char *key, bool *first) {
    fputs(*first ? "" : ", ", f);
    *first = false;
    json_string(f, key ? key : name);
    fputs(": ", f);
    json_attr_value(f, store_cell_attr(c, name));
}

static void json_attr_members(FILE *f, const struct store_cell *c, const char *const *names) {
    bool first = true;
    for (int k = 0; names[k]; k++) json_attr_member(f, c, names[k], NULL, &first);
}

/* The task's settings in effect (given ones, defaults for the rest) from the task's own
 * table; null when this build does not know the task or the settings no longer parse. */
static void json_settings_used(FILE *f, const struct store_cell *c) {
    char buf[64];
    const struct task *t = task_find(store_attr_text(c, "task", buf, sizeof buf));
    const struct store_attr *given = store_cell_attr(c, "task_settings");
    long values[SETTINGS_MAX];
    char err[256];
    if (!t || !t->settings ||
        task_settings_read(t->settings, t->name, given && given->kind == STORE_STR ? given->s : "", values, err,
                           sizeof err) != 0) {
        fputs("null", f);
        return;
    }
    fputc('{', f);
    for (int i = 0; t->settings[i].name; i++) {
        const struct task_setting *s = &t->settings[i];
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, s->name);
        fputs(": ", f);
        if (s->type == TASK_SETTING_CHOICE) json_string(f, s->choices[values[i]]);
        else fprintf(f, "%ld", values[i]);
    }
    fputc('}', f);
}

/* Line i of text (lines end with '\n'), unescaped: results/README.md's sample_* texts hold
 * one sample per line with '\' written "\\" and a line break "\n". */
static void json_sample_line(FILE *f, const char *text, int line) {
    const char *p = text;
    for (int i = 0; i < line && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) {
        fputs("null", f);
        return;
    }
    size_t n = strcspn(p, "\n");
    char *plain = malloc(n + 1);
    if (!plain) {
        fputs("null", f);
        return;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n && (p[i + 1] == 'n' || p[i + 1] == '\\')) {
            plain[out++] = p[i + 1] == 'n' ? '\n' : '\\';
            i++;
        } else {
            plain[out++] = p[i];
        }
    }
    json_string_n(f, plain, out);
    free(plain);
}

static void json_samples(FILE *f, const struct store_cell *c) {
    const struct result_item *score = result_find(&c->res, "sample_score");
    const struct result_item *ids = result_find(&c->res, "sample_id");
    const struct result_item *expected = result_find(&c->res, "sample_expected");
    const struct result_item *generated = result_find(&c->res, "sample_generated");
    if (!score || score->kind != RESULT_ARRAY || !score->data) {
        fputs("null", f);
        return;
    }
    int n = score->rows * score->cols;
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fputs(i ? ",\n        {" : "\n        {", f);
        fputs("\"id\": ", f);
        if (ids && ids->kind == RESULT_TEXT) json_sample_line(f, ids->text, i);
        else fprintf(f, "\"%d\"", i);
        fputs(", \"expected\": ", f);
        if (expected && expected->kind == RESULT_TEXT) json_sample_line(f, expected->text, i);
        else fputs("null", f);
        fputs(", \"generated\": ", f);
        if (generated && generated->kind == RESULT_TEXT) json_sample_line(f, generated->text, i);
        else fputs("null", f);
        fputs(", \"score\": ", f);
        json_number(f, score->data[i]);
        fputc('}', f);
    }
    fputs(n ? "\n      ]" : "]", f);
}

static const char *const provenance_attrs[] = {
    "model", "model_path", "model_size", "model_sha256", "arch", "n_params", "weight_type", "ctx_train",
    "data_path", "data_sha256", "backend", "device", "backend_params", "threads", "host", "git_rev",
    "ctxbench_version", "started", "started_unix", NULL};
static const char *const measurement_attrs[] = {"wall_s", "tokens", "tokens_per_s", "peak_rss_mib",
                                                "session_tokens", "session_mib", NULL};

static void json_cell(FILE *f, const struct store_cell *c, bool samples) {
    fputs("    {\n      \"id\": ", f);
    json_string(f, c->id);
    fputs(",\n      \"status\": ", f);
    json_string(f, cell_status_name(c->status));
    fputs(",\n      \"error\": ", f);
    json_attr_value(f, store_cell_attr(c, "error"));

    fputs(",\n      \"config\": {", f);
    bool first = true;
    static const char *const config_attrs[] = {"method", "method_name", NULL};
    for (int k = 0; config_attrs[k]; k++) json_attr_member(f, c, config_attrs[k], NULL, &first);
    fputs(", \"method_params\": {", f);
    bool first_param = true;
    for (int k = 0; k < c->n_attrs; k++) {
        const struct store_attr *a = &c->attrs[k];
        if (strncmp(a->name, "method.", 7) != 0) continue;
        fputs(first_param ? "" : ", ", f);
        first_param = false;
        json_string(f, a->name + 7);
        fputs(": ", f);
        json_attr_value(f, a);
    }
    fputc('}', f);
    static const char *const config_more[] = {"method_note", "task", "task_settings", NULL};
    for (int k = 0; config_more[k]; k++) json_attr_member(f, c, config_more[k], NULL, &first);
    fputs(", \"task_settings_used\": ", f);
    json_settings_used(f, c);
    static const char *const config_tail[] = {"data", "length", "seed", "limit", "cache_type_k", "cache_type_v", NULL};
    for (int k = 0; config_tail[k]; k++) json_attr_member(f, c, config_tail[k], NULL, &first);
    fputs("},\n      \"provenance\": {", f);
    json_attr_members(f, c, provenance_attrs);
    fputs("},\n      \"measurement\": {", f);
    json_attr_members(f, c, measurement_attrs);

    fputs("},\n      \"metrics\": {", f);
    first = true;
    for (int j = 0; j < c->res.n; j++) {
        const struct result_item *it = &c->res.items[j];
        if (it->kind != RESULT_SCALAR) continue;
        fputs(first ? "" : ", ", f);
        first = false;
        json_string(f, it->name);
        fputs(": ", f);
        json_number(f, it->value);
    }
    fputs("},\n      \"headline\": ", f);
    json_attr_value(f, store_cell_attr(c, "headline"));
    fputs(",\n      \"texts\": {", f);
    first = true;
    for (int j = 0; j < c->res.n; j++) {
        const struct result_item *it = &c->res.items[j];
        if (it->kind != RESULT_TEXT || strncmp(it->name, "sample_", 7) == 0) continue;
        fputs(first ? "" : ", ", f);
        first = false;
        json_string(f, it->name);
        fputs(": ", f);
        json_string(f, it->text);
    }
    fputc('}', f);
    if (samples) {
        fputs(",\n      \"samples\": ", f);
        json_samples(f, c);
    }
    fputs(",\n      \"attributes\": {", f);
    first = true;
    for (int k = 0; k < c->n_attrs; k++) {
        fputs(first ? "" : ", ", f);
        first = false;
        json_string(f, c->attrs[k].name);
        fputs(": ", f);
        json_attr_value(f, &c->attrs[k]);
    }
    fputs("}\n    }", f);
}

int store_write_json(FILE *f, const struct store_cell *cells, int n, const char *source, bool samples) {
    const struct store_cell **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return -1;
    for (int i = 0; i < n; i++) order[i] = &cells[i];
    qsort(order, (size_t)n, sizeof *order, store_cell_order);
    fprintf(f, "{\n  \"format\": \"%s\",\n  \"schema_version\": %d,\n  \"source\": ", STORE_JSON_FORMAT,
            STORE_JSON_SCHEMA_VERSION);
    json_string(f, source);
    fprintf(f, ",\n  \"store_schema_version\": %d,\n  \"samples_logged\": %s,\n  \"cells\": [", STORE_SCHEMA_VERSION,
            samples ? "true" : "false");
    for (int i = 0; i < n; i++) {
        fputs(i ? ",\n" : "\n", f);
        json_cell(f, order[i], samples);
    }
    fputs(n ? "\n  ]\n}\n" : "]\n}\n", f);
    free(order);
    return 0;
}
