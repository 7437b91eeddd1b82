/* What a task measured in one cell: named scalars, arrays (1-D or 2-D) and texts.
 * Storage writes whatever is here without knowing the task, so a new task needs no
 * change to the HDF5 or CSV code. */
#ifndef CTX_RESULT_H
#define CTX_RESULT_H

#include <stddef.h>

#define RESULT_MAX_ITEMS 64
#define RESULT_NAME_MAX 48

enum result_kind { RESULT_SCALAR, RESULT_ARRAY, RESULT_TEXT };

struct result_item {
    char name[RESULT_NAME_MAX];
    enum result_kind kind;
    double value;         /* RESULT_SCALAR */
    double *data;         /* RESULT_ARRAY: rows x cols, row-major (cols = 1 for 1-D) */
    int rows, cols;
    char *text;           /* RESULT_TEXT */
};

struct result {
    int n;
    struct result_item items[RESULT_MAX_ITEMS];
};

/* Each returns 0, or -1 when full, out of memory, or the name is taken or too long.
 * Arrays and texts are copied. */
int result_scalar(struct result *r, const char *name, double v);
int result_array(struct result *r, const char *name, const double *v, int rows, int cols);
int result_text(struct result *r, const char *name, const char *s);
const struct result_item *result_find(const struct result *r, const char *name);
void result_free(struct result *r);   /* frees copies; *r is empty again */

#endif
