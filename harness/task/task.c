/* The task registry: tasks/NAME.c files listed at build time (scripts/gen_registry.sh),
 * and the settings tables every task reads its settings with. */
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "task.h"

const struct task *task_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; registry_tasks[i]; i++)
        if (strcmp(registry_tasks[i]->name, name) == 0) return registry_tasks[i];
    return NULL;
}

int task_settings_read(const struct task_setting *table, const char *who, const char *text, long *values,
                       char *err, size_t errlen) {
    const char *keys[SETTINGS_MAX + 1];
    int n = 0;
    while (table[n].name && n < SETTINGS_MAX) {
        keys[n] = table[n].name;
        n++;
    }
    keys[n] = NULL;
    struct settings s;
    if (settings_parse_checked(text, who, keys, &s, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++) {
        const struct task_setting *t = &table[i];
        if (t->type == TASK_SETTING_CHOICE) {
            int idx;
            if (settings_choice(&s, t->name, t->choices, (int)t->def, &idx, err, errlen) != 0) return -1;
            values[i] = idx;
        } else if (settings_int(&s, t->name, t->def, t->min, t->max, &values[i], err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

void task_print_all(FILE *f) {
    fprintf(f, "Tasks (--tasks a,b; settings: --task-opt 'task:key=value,...;task:...'; see tasks/README.md)\n");
    for (int i = 0; registry_tasks[i]; i++) {
        const struct task *t = registry_tasks[i];
        fprintf(f, "\n%s\n  %s\n", t->name, t->summary);
        if (t->default_data && t->default_data[0]) fprintf(f, "  default data: %s\n", t->default_data);
        if (!t->settings || !t->settings[0].name) fprintf(f, "  settings: none\n");
        for (const struct task_setting *s = t->settings; s && s->name; s++) {
            char range[256], def[64];
            if (s->type == TASK_SETTING_CHOICE) {
                size_t at = 0;
                range[0] = '\0';
                for (int c = 0; s->choices[c] && at < sizeof range; c++)
                    at += (size_t)snprintf(range + at, sizeof range - at, "%s%s", c ? "|" : "", s->choices[c]);
                snprintf(def, sizeof def, "%s", s->def_text ? s->def_text : s->choices[s->def]);
            } else {
                snprintf(range, sizeof range, "[%ld, %ld]", s->min, s->max);
                if (s->def_text) snprintf(def, sizeof def, "%s", s->def_text);
                else snprintf(def, sizeof def, "%ld", s->def);
            }
            fprintf(f, "  %-16s %-6s %-28s default %s\n", s->name, s->type == TASK_SETTING_CHOICE ? "choice" : "int",
                    range, def);
            if (s->help) fprintf(f, "      %s\n", s->help);
        }
    }
}

/* One line of a sample text: '\\' and line breaks escaped so each sample stays one line. */
static void put_line(struct textbuf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\') textbuf_append(b, "\\\\", 2);
        else if (*p == '\n') textbuf_append(b, "\\n", 2);
        else textbuf_append(b, p, 1);
    }
    textbuf_append(b, "\n", 1);
}

void sample_log_add(struct sample_log *l, const char *id, const char *expected, const char *generated, double score) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        double *grown = realloc(l->score, (size_t)cap * sizeof *grown);
        if (!grown) {
            l->oom = true;
            return;
        }
        l->score = grown;
        l->cap = cap;
    }
    l->score[l->n++] = score;
    put_line(&l->ids, id);
    put_line(&l->expected, expected);
    put_line(&l->generated, generated);
}

int sample_log_write(const struct sample_log *l, struct result *r) {
    if (l->oom || l->ids.oom || l->expected.oom || l->generated.oom) return -1;
    if (l->n == 0) return 0;
    if (result_text(r, "sample_id", l->ids.s) != 0 || result_text(r, "sample_expected", l->expected.s) != 0 ||
        result_text(r, "sample_generated", l->generated.s) != 0 ||
        result_array(r, "sample_score", l->score, l->n, 1) != 0)
        return -1;
    return 0;
}

void sample_log_free(struct sample_log *l) {
    textbuf_free(&l->ids);
    textbuf_free(&l->expected);
    textbuf_free(&l->generated);
    free(l->score);
    memset(l, 0, sizeof *l);
}
