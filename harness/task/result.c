/* A task's measurements for one cell: a small fixed table of named items.
 * Arrays and texts are copied so the caller's buffers can be freed at once. */
#include <stdlib.h>
#include <string.h>

#include "result.h"

/* The next free item, or NULL when the table is full or the name is unusable/taken. */
static struct result_item *new_item(struct result *r, const char *name, enum result_kind kind) {
    if (!r || !name || r->n < 0 || r->n >= RESULT_MAX_ITEMS) return NULL;
    size_t len = strlen(name);
    if (len == 0 || len >= RESULT_NAME_MAX) return NULL;
    if (result_find(r, name)) return NULL;
    struct result_item *it = &r->items[r->n];
    memset(it, 0, sizeof *it);
    memcpy(it->name, name, len + 1);
    it->kind = kind;
    return it;
}

int result_scalar(struct result *r, const char *name, double v) {
    struct result_item *it = new_item(r, name, RESULT_SCALAR);
    if (!it) return -1;
    it->value = v;
    r->n++;
    return 0;
}

int result_array(struct result *r, const char *name, const double *v, int rows, int cols) {
    if (rows < 1 || cols < 1 || !v || (size_t)rows > ((size_t)-1 / sizeof(double)) / (size_t)cols) return -1;
    struct result_item *it = new_item(r, name, RESULT_ARRAY);
    if (!it) return -1;
    size_t bytes = (size_t)rows * (size_t)cols * sizeof(double);
    it->data = malloc(bytes);
    if (!it->data) return -1;
    memcpy(it->data, v, bytes);
    it->rows = rows;
    it->cols = cols;
    r->n++;
    return 0;
}

int result_text(struct result *r, const char *name, const char *s) {
    if (!s) return -1;
    struct result_item *it = new_item(r, name, RESULT_TEXT);
    if (!it) return -1;
    size_t len = strlen(s);
    it->text = malloc(len + 1);
    if (!it->text) return -1;
    memcpy(it->text, s, len + 1);
    r->n++;
    return 0;
}

const struct result_item *result_find(const struct result *r, const char *name) {
    if (!r || !name) return NULL;
    for (int i = 0; i < r->n && i < RESULT_MAX_ITEMS; i++)
        if (strcmp(r->items[i].name, name) == 0) return &r->items[i];
    return NULL;
}

void result_free(struct result *r) {
    if (!r) return;
    for (int i = 0; i < r->n && i < RESULT_MAX_ITEMS; i++) {
        free(r->items[i].data);
        free(r->items[i].text);
    }
    memset(r, 0, sizeof *r);
}
